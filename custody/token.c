/* custody/token.c: exception tokens (formats §5).  A token is an exception
 * to the rules, so it is held to stricter ones: an exception-role signer
 * that did not sign the bundle, this bundle, this site and station, a short
 * and current lifetime, and (in the station) one use per device. */
#include "custody/token.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custody/manifest.h"
#include "custody/record.h"
#include "station/base/hex.h"
#include "station/base/rfc3339.h"
#include "custody/sign.h"
#include "custody/signed.h"

static const struct cu_key_rule tok_keys[] = {
	{"format", CU_REQUIRED}, {"id", CU_REQUIRED},
	{"bundle", CU_REQUIRED}, {"waive", CU_REQUIRED},
	{"devices", CU_REQUIRED}, {"site", CU_OPTIONAL},
	{"station", CU_OPTIONAL}, {"issued", CU_REQUIRED},
	{"expires", CU_REQUIRED}, {"reason", CU_REQUIRED},
	{NULL, 0}};
static const struct cu_section_rule tok_rules[] = {
	{"", CU_NO_LABEL, 1, 1, tok_keys}, {NULL, 0, 0, 0, NULL}};

static const struct {
	const char *name;
	unsigned bit;
} waivers[] = {{"downgrade", CU_WAIVE_DOWNGRADE},
	       {"expired", CU_WAIVE_EXPIRED},
	       {"target", CU_WAIVE_TARGET},
	       {"custody", CU_WAIVE_CUSTODY},
	       {"attestation", CU_WAIVE_ATTESTATION}};

const char *cu_waiver_names(unsigned waive, char *buf, size_t cap)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(waivers) / sizeof(*waivers); i++) {
		if (!(waive & waivers[i].bit))
			continue;
		int n = snprintf(buf + used, cap - used, "%s%s",
				 used ? " " : "", waivers[i].name);
		/* A short buffer keeps whole words only: a cut word could
		 * read as another waiver. */
		if (n < 0 || (size_t)n >= cap - used) {
			buf[used] = '\0';
			break;
		}
		used += (size_t)n;
	}
	return buf;
}

int cu_waiver_parse(const char *words, unsigned *waive)
{
	char buf[1100];
	char *save = NULL, *w;
	unsigned bits = 0;

	if (strlen(words) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", words);
	for (w = strtok_r(buf, " \t", &save); w;
	     w = strtok_r(NULL, " \t", &save)) {
		size_t i;
		for (i = 0; i < sizeof(waivers) / sizeof(*waivers); i++)
			if (strcmp(w, waivers[i].name) == 0)
				break;
		if (i == sizeof(waivers) / sizeof(*waivers))
			return -1;
		bits |= waivers[i].bit;
	}
	if (!bits)
		return -1;
	*waive = bits;
	return 0;
}

static int tok_error(struct stn_diag *d, const struct cu_record *r,
		     const struct cu_section *s, const char *key,
		     const char *text)
{
	return cu_record_fail(d, STN_E_SYNTAX, r, s, key, "%s", text);
}

int cu_token_parse(const void *buf, size_t len, const char *path,
		   struct cu_token *t, uint8_t bundle[CU_SHA256_LEN],
		   struct stn_diag *d)
{
	struct cu_record *r = NULL;
	const struct cu_section *top;
	struct cu_token tok;
	const char *v;
	int rc;

	memset(&tok, 0, sizeof(tok));
	if ((rc = cu_record_parse(buf, len, path, &r, d)) ||
	    (rc = cu_record_check(r, tok_rules, "station-token-1", d)))
		goto out;
	top = cu_record_section(r, 0);
	if ((rc = cu_get_token(r, top, "id", "0-9a-f", 32, &v, d)))
		goto out;
	if (strlen(v) != 32) {
		rc = tok_error(d, r, top, "id",
			       "'id' must be 32 lowercase hex digits");
		goto out;
	}
	snprintf(tok.id, sizeof(tok.id), "%s", v);
	if ((rc = cu_get_digest(r, top, "bundle", bundle, d)) ||
	    (rc = cu_get_str(r, top, "waive", &v, d)))
		goto out;
	if (cu_waiver_parse(v, &tok.waive)) {
		rc = tok_error(d, r, top, "waive",
			       "'waive' must list downgrade, expired, target, "
			       "custody or attestation");
		goto out;
	}
	if ((rc = cu_get_str(r, top, "devices", &v, d)))
		goto out;
	{
		char buf2[1100];
		char *save = NULL, *w;
		snprintf(buf2, sizeof(buf2), "%s", v);
		for (w = strtok_r(buf2, " \t", &save); w;
		     w = strtok_r(NULL, " \t", &save)) {
			if (tok.ndevices == CU_TOKEN_DEVICES ||
			    strlen(w) > 64 ||
			    !cu_chars_in(w, "A-Za-z0-9._:-")) {
				rc = tok_error(d, r, top, "devices",
					       "'devices' must be serial "
					       "numbers of [A-Za-z0-9._:-], "
					       "at most 64");
				goto out;
			}
			strcpy(tok.devices[tok.ndevices++], w);
		}
	}
	static const char *const opt[] = {"site", "station"};
	for (int i = 0; i < 2; i++) {
		if (!cu_section_get(top, opt[i]))
			continue;
		if ((rc = cu_get_token(r, top, opt[i], "A-Za-z0-9._-", 64, &v,
				       d)))
			goto out;
		snprintf(i ? tok.station : tok.site, sizeof(tok.site), "%s",
			 v);
	}
	if ((rc = cu_get_time(r, top, "issued", &tok.issued, d)) ||
	    (rc = cu_get_time(r, top, "expires", &tok.expires, d)) ||
	    (rc = cu_get_str(r, top, "reason", &v, d)))
		goto out;
	if (tok.expires <= tok.issued) {
		rc = tok_error(d, r, top, "expires",
			       "'expires' must be after 'issued'");
		goto out;
	}
	snprintf(tok.reason, sizeof(tok.reason), "%s", v);
	*t = tok;
out:
	cu_record_free(r);
	return rc;
}

int cu_token_names(const struct cu_token *t, const char *serial)
{
	for (size_t i = 0; i < t->ndevices; i++)
		if (strcmp(t->devices[i], serial) == 0)
			return 1;
	return 0;
}

/* The device-independent rules for one token; sets t->problem. */
static void check_token(const char *tdir, const char *shown_tdir,
			const char *name, const char *shown,
			const struct cu_manifest *m,
			const struct cu_sigset *manifest_signers,
			const struct cu_trust *trust,
			const struct cu_token_rules *rules, int64_t at,
			struct cu_token *t)
{
	char path[4400], t1[CU_TIME_LEN + 1], t2[CU_TIME_LEN + 1];
	uint8_t *buf = NULL, bundle[CU_SHA256_LEN], digest[CU_SHA256_LEN];
	struct stn_diag *p = &t->problem;
	struct cu_sigset sigs;
	size_t len = 0;
	char file[80];
	int hrc;

	snprintf(file, sizeof(file), CU_LAYOUT_TOKENS "/%.60s", name);
	if (snprintf(path, sizeof(path), "%s/%s", tdir, name) >=
	    (int)sizeof(path)) {
		stn_fail(p, STN_E_TOOBIG, file, "path too long");
		snprintf(t->file, sizeof(t->file), "%s", file);
		return;
	}
	if (cu_record_read(path, &buf, &len, p)) {
		snprintf(t->file, sizeof(t->file), "%s", file);
		return;
	}
	if ((hrc = cu_sha256(buf, len, digest))) {
		stn_fail(p, hrc, shown, "hashing: %s", stn_strerror(hrc));
		free(buf);
		snprintf(t->file, sizeof(t->file), "%s", file);
		return;
	}
	if (cu_token_parse(buf, len, shown, t, bundle, p)) {
		free(buf);
		snprintf(t->file, sizeof(t->file), "%s", file);
		return;
	}
	free(buf);
	snprintf(t->file, sizeof(t->file), "%s", file);
	if (cu_signed_verify(tdir, name, shown_tdir, digest, trust,
			     CU_ROLE_EXCEPTION, at, &sigs, p))
		return;
	if (sigs.n == 0) {
		if (sigs.nfiles == 0)
			stn_fail(p, STN_E_TOKEN, shown, "is not signed");
		else
			*p = sigs.first_fail;
		return;
	}
	t->signer = sigs.signers[0];
	/* One key, one duty, across documents too: whoever signed the
	 * bundle cannot also grant exceptions to it. */
	for (size_t i = 0; i < sigs.n; i++)
		if (cu_sigset_has_key(manifest_signers,
				      sigs.signers[i].key_id)) {
			stn_fail(p, STN_E_TOKEN, shown,
				 "signed by %s, who also signed the manifest: "
				 "an exception cannot come from the release "
				 "signer", sigs.signers[i].cn);
			return;
		}
	if (memcmp(bundle, m->id, sizeof(bundle)) != 0) {
		char hex[CU_SHA256_HEX_LEN + 1];
		cu_hex(bundle, sizeof(bundle), hex);
		stn_fail(p, STN_E_TOKEN, shown,
			 "is for another bundle: names %.16s..., this bundle "
			 "is %.16s...", hex, m->id_hex);
		return;
	}
	if (t->site[0] && strcmp(t->site, rules->site) != 0) {
		stn_fail(p, STN_E_TOKEN, shown,
			 "is for site %s, this station is at %s", t->site,
			 rules->site);
		return;
	}
	if (t->station[0] && strcmp(t->station, rules->station) != 0) {
		stn_fail(p, STN_E_TOKEN, shown,
			 "is for station %s, this is %s", t->station,
			 rules->station);
		return;
	}
	if (t->expires - t->issued > rules->max_ttl) {
		stn_fail(p, STN_E_TOKEN, shown,
			 "lifetime %lld s is over policy max-token-ttl %lld s",
			 (long long)(t->expires - t->issued),
			 (long long)rules->max_ttl);
		return;
	}
	cu_time_format(at, t2);
	if (at < t->issued - CU_TOKEN_SKEW) {
		cu_time_format(t->issued, t1);
		stn_fail(p, STN_E_TOKEN, shown,
			 "not valid before %s; session started %s", t1, t2);
		return;
	}
	if (at >= t->expires) {
		cu_time_format(t->expires, t1);
		stn_fail(p, STN_E_TOKEN, shown,
			 "expired at %s; session started %s", t1, t2);
		return;
	}
}

int cu_tokens_load(const char *bundle_dir, const char *shown_dir,
		   const struct cu_manifest *m,
		   const struct cu_sigset *manifest_signers,
		   const struct cu_trust *trust,
		   const struct cu_token_rules *rules, int64_t at,
		   struct cu_token **out, size_t *n, struct stn_diag *d)
{
	char tdir[4200], shown_tdir[4200];
	struct cu_token *toks = NULL;
	struct dirent *e;
	size_t count = 0;
	DIR *dh;

	if (!shown_dir)
		shown_dir = bundle_dir;
	snprintf(tdir, sizeof(tdir), "%s/" CU_LAYOUT_TOKENS, bundle_dir);
	snprintf(shown_tdir, sizeof(shown_tdir), "%s/" CU_LAYOUT_TOKENS,
		 shown_dir);
	*out = NULL;
	*n = 0;
	dh = opendir(tdir);
	if (!dh)
		return errno == ENOENT ? 0
				       : stn_fail(d, STN_E_IO, shown_tdir,
						  "cannot list: %s",
						  strerror(errno));
	toks = calloc(CU_MAX_TOKENS, sizeof(*toks));
	if (!toks) {
		closedir(dh);
		return stn_fail(d, STN_E_NOMEM, shown_tdir, "tokens");
	}
	while ((e = readdir(dh))) {
		char shown[4400];

		if (!cu_layout_token_name(e->d_name))
			continue;
		if (count == CU_MAX_TOKENS) {
			closedir(dh);
			free(toks);
			return stn_fail(d, STN_E_TOOBIG, shown_tdir,
					"more than %d tokens", CU_MAX_TOKENS);
		}
		/* Only a name for messages: a cut one still names the token,
		 * and the token is checked all the same. */
		if (snprintf(shown, sizeof(shown), "%s/%s", shown_tdir,
			     e->d_name) >= (int)sizeof(shown))
			memcpy(shown + sizeof(shown) - 4, "...", 4);
		check_token(tdir, shown_tdir, e->d_name, shown, m,
			    manifest_signers, trust, rules, at, &toks[count]);
		count++;
	}
	closedir(dh);
	*out = toks;
	*n = count;
	return 0;
}

int cu_token_issue(const char *bundle_dir, struct cu_key *key,
		   unsigned waive, const char *const *devices,
		   size_t ndevices, const char *site, const char *station,
		   int64_t now, int64_t ttl, const char *reason,
		   const char *name, char *written, size_t cap,
		   struct stn_diag *d)
{
	char tdir[4200], path[4400], text[4096], waives[64];
	char devs[CU_TOKEN_DEVICES * 66] = "";
	char idhex[33], bhex[CU_SHA256_HEX_LEN + 1];
	char t1[CU_TIME_LEN + 1], t2[CU_TIME_LEN + 1], auto_name[16];
	uint8_t rnd[16], id[CU_SHA256_LEN];
	size_t used = 0;
	int rc, w;

	if (ttl <= 0)
		return stn_fail(d, STN_E_USAGE, "--ttl", "must be positive");
	if (!waive || ndevices < 1 || ndevices > CU_TOKEN_DEVICES)
		return stn_fail(d, STN_E_USAGE, "--waive/--device",
				"give at least one waiver and 1 to %d devices",
				CU_TOKEN_DEVICES);
	for (size_t i = 0; i < ndevices; i++) {
		if (strlen(devices[i]) > 64 ||
		    !cu_chars_in(devices[i], "A-Za-z0-9._:-") ||
		    !devices[i][0])
			return stn_fail(d, STN_E_USAGE, "--device",
					"'%s' is not a serial number of "
					"[A-Za-z0-9._:-]", devices[i]);
		used += (size_t)snprintf(devs + used, sizeof(devs) - used,
					 "%s%s", i ? " " : "", devices[i]);
	}
	if (!cu_value_ok(reason) || strlen(reason) > 1024)
		return stn_fail(d, STN_E_USAGE, "--reason",
				"1 to 1024 printable characters");
	if ((site && (!site[0] || strlen(site) > 64 ||
		      !cu_chars_in(site, "A-Za-z0-9._-"))) ||
	    (station && (!station[0] || strlen(station) > 64 ||
			 !cu_chars_in(station, "A-Za-z0-9._-"))))
		return stn_fail(d, STN_E_USAGE, "--site/--station",
				"[A-Za-z0-9._-], at most 64");
	if (name && !cu_label_ok(name, strlen(name)))
		return stn_fail(d, STN_E_USAGE, "--name",
				"[a-z0-9][a-z0-9-]{0,31}");
	if ((rc = cu_manifest_id(bundle_dir, id, d)))
		return rc;
	cu_hex(id, sizeof(id), bhex);
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return stn_fail(d, STN_E_IO, "getrandom", "%s",
				strerror(errno));
	cu_hex(rnd, sizeof(rnd), idhex);
	if (!name) {
		snprintf(auto_name, sizeof(auto_name), "tok-%.8s", idhex);
		name = auto_name;
	}
	cu_time_format(now, t1);
	cu_time_format(now + ttl, t2);
	w = snprintf(text, sizeof(text),
		     "format = station-token-1\nid = %s\nbundle = %s\n"
		     "waive = %s\ndevices = %s\n%s%s%s%s%s%s"
		     "issued = %s\nexpires = %s\nreason = %s\n",
		     idhex, bhex, cu_waiver_names(waive, waives, sizeof(waives)),
		     devs, site ? "site = " : "", site ? site : "",
		     site ? "\n" : "", station ? "station = " : "",
		     station ? station : "", station ? "\n" : "", t1, t2,
		     reason);
	if (w < 0 || (size_t)w >= sizeof(text))
		return stn_fail(d, STN_E_USAGE, "--reason", "token too long");
	snprintf(tdir, sizeof(tdir), "%s/tokens", bundle_dir);
	if (mkdir(tdir, 0755) != 0 && errno != EEXIST)
		return stn_fail(d, STN_E_IO, tdir, "cannot create: %s",
				strerror(errno));
	snprintf(path, sizeof(path), "%s/%s.tok", tdir, name);
	if ((rc = cu_record_write_new(path, text, d)))
		return rc;
	if ((rc = cu_sign_file(key, path, NULL, d))) {
		unlink(path);
		return rc;
	}
	snprintf(written, cap, "%s", path);
	return 0;
}
