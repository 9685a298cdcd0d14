/* custody/chain.c: custody records and the rules of the chain (formats
 * §4).  Every rule failure names the record file and says which rule. */
#include "custody/chain.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custody/manifest.h"
#include "custody/record.h"
#include "station/base/hex.h"
#include "station/base/rfc3339.h"
#include "custody/sig.h"
#include "custody/sign.h"
#include "custody/signed.h"
#include "station/base/error.h"

static const struct cu_key_rule rec_keys[] = {
	{"format", CU_REQUIRED}, {"bundle", CU_REQUIRED},
	{"index", CU_REQUIRED},  {"previous", CU_REQUIRED},
	{"from", CU_REQUIRED},   {"to", CU_REQUIRED},
	{"time", CU_REQUIRED},   {"place", CU_OPTIONAL},
	{"seal", CU_OPTIONAL},   {NULL, 0}};
static const struct cu_section_rule rec_rules[] = {
	{"", CU_NO_LABEL, 1, 1, rec_keys}, {NULL, 0, 0, 0, NULL}};

/* Party names: a certificate CN or a technician id, printable, no blanks
 * at either end (they are compared byte for byte). */
static int party_ok(const char *v)
{
	return strlen(v) <= 128 && cu_value_ok(v);
}

int cu_custody_parse(const void *buf, size_t len, const char *path,
		     struct cu_hop *hop, uint8_t bundle[CU_SHA256_LEN],
		     uint8_t previous[CU_SHA256_LEN], struct stn_diag *d)
{
	struct cu_record *r = NULL;
	const struct cu_section *top;
	struct cu_hop h;
	uint64_t index;
	const char *v;
	int rc;

	memset(&h, 0, sizeof(h));
	if ((rc = cu_record_parse(buf, len, path, &r, d)) ||
	    (rc = cu_record_check(r, rec_rules, "station-custody-1", d)))
		goto out;
	top = cu_record_section(r, 0);
	if ((rc = cu_get_digest(r, top, "bundle", bundle, d)) ||
	    (rc = cu_get_digest(r, top, "previous", previous, d)) ||
	    (rc = cu_get_u64(r, top, "index", &index, d)) ||
	    (rc = cu_get_time(r, top, "time", &h.time, d)))
		goto out;
	if (index < 1 || index > CU_MAX_HOPS) {
		char where[4200];
		snprintf(where, sizeof(where), "%s:%u", path,
			 cu_section_line(top, "index"));
		rc = stn_fail(d, STN_E_SYNTAX, where,
			      "'index' must be 1 to %d", CU_MAX_HOPS);
		goto out;
	}
	h.index = (unsigned)index;
	static const char *const party_keys[] = {"from", "to"};
	for (int i = 0; i < 2; i++) {
		if ((rc = cu_get_str(r, top, party_keys[i], &v, d)))
			goto out;
		if (!party_ok(v)) {
			char where[4200];
			snprintf(where, sizeof(where), "%s:%u", path,
				 cu_section_line(top, party_keys[i]));
			rc = stn_fail(d, STN_E_SYNTAX, where,
				      "'%s' must be 1 to 128 printable "
				      "characters", party_keys[i]);
			goto out;
		}
		snprintf(i ? h.to : h.from, sizeof(h.to), "%s", v);
	}
	if ((v = cu_section_get(top, "place")))
		snprintf(h.place, sizeof(h.place), "%.256s", v);
	if ((v = cu_section_get(top, "seal")))
		snprintf(h.seal, sizeof(h.seal), "%.128s", v);
	*hop = h;
out:
	cu_record_free(r);
	return rc;
}

/* Lists custody/NN.rec (cu_layout_custody_name) by index.  Two files for one
 * index (01.rec and 001.rec) are an error: which one counts would be a
 * guess.  names[i] is the file for index i+1 or NULL for a gap. */
static int list_records(const char *cdir, const char *shown,
			char *names[CU_MAX_HOPS], unsigned *maxidx,
			struct stn_diag *d)
{
	DIR *dh = opendir(cdir);
	struct dirent *e;
	unsigned top = 0;
	int rc = 0;

	memset(names, 0, sizeof(char *) * CU_MAX_HOPS);
	if (!dh) {
		if (errno == ENOENT) {
			*maxidx = 0;
			return 0;
		}
		return stn_fail(d, STN_E_IO, shown, "cannot list: %s",
				strerror(errno));
	}
	while ((e = readdir(dh))) {
		unsigned long idx;

		if (!cu_layout_custody_name(e->d_name, &idx))
			continue; /* not NN.rec: ignored */
		if (idx < 1 || idx > CU_MAX_HOPS) {
			rc = stn_fail(d, STN_E_CUSTODY, shown,
				      "%s: custody index must be 1 to %d",
				      e->d_name, CU_MAX_HOPS);
			break;
		}
		if (names[idx - 1]) {
			rc = stn_fail(d, STN_E_CUSTODY, shown,
				      "%s and %s both claim index %lu",
				      names[idx - 1], e->d_name, idx);
			break;
		}
		if (!(names[idx - 1] = strdup(e->d_name))) {
			rc = stn_fail(d, STN_E_NOMEM, shown, "listing");
			break;
		}
		if (idx > top)
			top = (unsigned)idx;
	}
	closedir(dh);
	*maxidx = top;
	return rc;
}

static void free_names(char *names[CU_MAX_HOPS])
{
	for (int i = 0; i < CU_MAX_HOPS; i++)
		free(names[i]);
}

static int rule(struct stn_diag *d, const char *shown_file, const char *fmt,
		...) __attribute__((format(printf, 3, 4)));

/* A custody rule failed on one record. */
static int rule(struct stn_diag *d, const char *shown_file, const char *fmt,
		...)
{
	char text[900];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return stn_fail(d, STN_E_CUSTODY, shown_file, "%s", text);
}

/* cu_custody_verify, and with trust NULL cu_custody_check_links: every
 * rule but the records' signatures. */
static int walk_chain(const char *bundle_dir, const char *shown_dir,
		      const struct cu_manifest *m, const struct cu_trust *trust,
		      const struct cu_custody_rules *rules, int64_t at,
		      struct cu_chain *out, struct stn_diag *d)
{
	char *names[CU_MAX_HOPS];
	char cdir[4200], shown_cdir[4200];
	uint8_t prev_digest[CU_SHA256_LEN];
	char t1[CU_TIME_LEN + 1], t2[CU_TIME_LEN + 1];
	unsigned n = 0;
	int rc;

	if (!shown_dir)
		shown_dir = bundle_dir;
	out->n = 0;
	snprintf(cdir, sizeof(cdir), "%s/" CU_LAYOUT_CUSTODY, bundle_dir);
	snprintf(shown_cdir, sizeof(shown_cdir), "%s/" CU_LAYOUT_CUSTODY,
		 shown_dir);
	if ((rc = list_records(cdir, shown_cdir, names, &n, d)))
		goto out;
	if (n == 0) {
		rc = rule(d, shown_cdir,
			  "no custody records: the chain from release to the "
			  "technician is missing");
		goto out;
	}
	if (n > rules->max_hops) {
		rc = rule(d, shown_cdir,
			  "%u records, more than max-custody-hops %u", n,
			  rules->max_hops);
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		if (!names[i]) {
			rc = rule(d, shown_cdir,
				  "gap: no record with index %u (records run "
				  "to %u)", i + 1, n);
			goto out;
		}
	}
	memcpy(prev_digest, m->id, sizeof(prev_digest));
	for (unsigned i = 0; i < n; i++) {
		struct cu_hop *h = &out->hops[i];
		uint8_t bundle[CU_SHA256_LEN], previous[CU_SHA256_LEN];
		uint8_t digest[CU_SHA256_LEN];
		char path[4400], shown[4400];
		uint8_t *buf = NULL;
		size_t len = 0;
		struct cu_sigset sigs;
		size_t k;

		snprintf(path, sizeof(path), "%s/%s", cdir, names[i]);
		snprintf(shown, sizeof(shown), "%s/%s", shown_cdir, names[i]);
		if ((rc = cu_record_read(path, &buf, &len, d)))
			goto out;
		if ((rc = cu_sha256(buf, len, digest)))
			rc = stn_fail(d, rc, shown, "hashing: %s",
				      stn_strerror(rc));
		else
			rc = cu_custody_parse(buf, len, shown, h, bundle,
					      previous, d);
		free(buf);
		if (rc)
			goto out;
		snprintf(h->file, sizeof(h->file), CU_LAYOUT_CUSTODY "/%s",
			 names[i]);
		out->n = i + 1;
		if (h->index != i + 1) {
			rc = rule(d, shown, "says index %u but is file %s "
				  "(records reordered?)", h->index, names[i]);
			goto out;
		}
		if (memcmp(bundle, m->id, sizeof(bundle)) != 0) {
			char hex[CU_SHA256_HEX_LEN + 1];
			cu_hex(bundle, sizeof(bundle), hex);
			rc = rule(d, shown, "is for another bundle: names "
				  "%.16s..., this bundle is %.16s...", hex,
				  m->id_hex);
			goto out;
		}
		if (memcmp(previous, prev_digest, sizeof(previous)) != 0) {
			rc = rule(d, shown, "previous does not match %s "
				  "(chain broken or records edited)",
				  i == 0 ? "the bundle id"
					 : "the SHA-256 of the previous record");
			goto out;
		}
		memcpy(prev_digest, digest, sizeof(prev_digest));
		/* Signed by a custody key whose CN is `from` (the signer is
		 * who hands the media on). */
		if (!trust)
			goto linked;
		rc = cu_signed_verify(cdir, names[i], shown_cdir, digest, trust,
				      CU_ROLE_CUSTODY, at, &sigs, d);
		if (rc)
			goto out;
		for (k = 0; k < sigs.n; k++)
			if (strcmp(sigs.signers[k].cn, h->from) == 0)
				break;
		if (k == sigs.n) {
			if (sigs.nfiles == 0)
				rc = rule(d, shown, "is not signed");
			else if (sigs.n == 0)
				rc = stn_fail(d, sigs.first_fail.code,
					      sigs.first_fail.where, "%s",
					      sigs.first_fail.text);
			else
				rc = rule(d, shown, "signer CN %s does not "
					  "match from %s", sigs.signers[0].cn,
					  h->from);
			goto out;
		}
	linked:
		if (i > 0 && strcmp(h->from, out->hops[i - 1].to) != 0) {
			rc = rule(d, shown, "from %s, but record %02u handed "
				  "the media to %s", h->from, i,
				  out->hops[i - 1].to);
			goto out;
		}
		if (i > 0 && h->time < out->hops[i - 1].time) {
			cu_time_format(h->time, t1);
			cu_time_format(out->hops[i - 1].time, t2);
			rc = rule(d, shown, "time %s is before record %02u's "
				  "%s: time goes backwards", t1, i, t2);
			goto out;
		}
	}
	{
		const struct cu_hop *first = &out->hops[0];
		const struct cu_hop *last = &out->hops[n - 1];
		char sf[4400], sl[4400];

		snprintf(sf, sizeof(sf), "%s/%s", shown_dir, first->file);
		snprintf(sl, sizeof(sl), "%s/%s", shown_dir, last->file);
		if (first->time < m->created) {
			cu_time_format(first->time, t1);
			cu_time_format(m->created, t2);
			rc = rule(d, sf, "time %s is before the bundle was "
				  "created (%s)", t1, t2);
			goto out;
		}
		if (last->time > at + CU_CLOCK_SKEW) {
			cu_time_format(last->time, t1);
			cu_time_format(at, t2);
			rc = rule(d, sl, "time %s is after the session start "
				  "%s (more than 5 minutes ahead)", t1, t2);
			goto out;
		}
		if (at - first->time > rules->max_age) {
			cu_time_format(first->time, t1);
			rc = rule(d, sf, "chain too old: began %s, more than "
				  "max-custody-age (%lld days) before the "
				  "session", t1,
				  (long long)(rules->max_age / 86400));
			goto out;
		}
		if (rules->open_end) {
			rc = 0;
			goto out;
		}
		if (!rules->technician) {
			rc = rule(d, sl, "ends with %s, and no technician is "
				  "signed in to receive it", last->to);
			goto out;
		}
		if (strcmp(last->to, rules->technician) != 0) {
			rc = rule(d, sl, "last holder is %s, not the "
				  "technician signed in (%s)", last->to,
				  rules->technician);
			goto out;
		}
	}
	rc = 0;
out:
	free_names(names);
	return rc;
}

int cu_custody_verify(const char *bundle_dir, const char *shown_dir,
		      const struct cu_manifest *m, const struct cu_trust *trust,
		      const struct cu_custody_rules *rules, int64_t at,
		      struct cu_chain *out, struct stn_diag *d)
{
	/* Never a chain judged without its signatures by mistake. */
	if (!trust)
		return stn_fail(d, STN_E_INTERNAL, bundle_dir,
				"custody verified without a trust store");
	return walk_chain(bundle_dir, shown_dir, m, trust, rules, at, out, d);
}

int cu_custody_check_links(const char *bundle_dir, const char *shown_dir,
			   const struct cu_manifest *m,
			   const struct cu_custody_rules *rules, int64_t at,
			   struct cu_chain *out, struct stn_diag *d)
{
	return walk_chain(bundle_dir, shown_dir, m, NULL, rules, at, out, d);
}

int cu_custody_append(const char *bundle_dir, struct cu_key *key,
		      const char *to, const char *place, const char *seal,
		      int64_t now, char *written, size_t cap,
		      struct stn_diag *d)
{
	char *names[CU_MAX_HOPS];
	char cdir[4200], path[4400];
	char t[CU_TIME_LEN + 1], prevhex[CU_SHA256_HEX_LEN + 1];
	char text[2048];
	uint8_t id[CU_SHA256_LEN], digest[CU_SHA256_LEN];
	uint8_t *buf = NULL;
	size_t len = 0;
	unsigned n = 0;
	const char *me = cu_key_cn(key);
	int rc;

	if (!party_ok(to) || (place && (!cu_value_ok(place) ||
					strlen(place) > 256)) ||
	    (seal && (!cu_value_ok(seal) || strlen(seal) > 128)))
		return stn_fail(d, STN_E_USAGE, "--to/--place/--seal",
				"values must be printable, without control "
				"characters (to and seal at most 128, place "
				"256)");
	if ((rc = cu_manifest_id(bundle_dir, id, d)))
		return rc;
	snprintf(cdir, sizeof(cdir), "%s/custody", bundle_dir);
	if (mkdir(cdir, 0755) != 0 && errno != EEXIST)
		return stn_fail(d, STN_E_IO, cdir, "cannot create: %s",
				strerror(errno));
	if ((rc = list_records(cdir, cdir, names, &n, d)))
		goto out;
	for (unsigned i = 0; i < n; i++)
		if (!names[i]) {
			rc = stn_fail(d, STN_E_CUSTODY, cdir,
				      "gap: no record with index %u", i + 1);
			goto out;
		}
	if (n == CU_MAX_HOPS) {
		rc = stn_fail(d, STN_E_USAGE, cdir, "the chain is full");
		goto out;
	}
	cu_hex(id, sizeof(id), prevhex);
	if (n > 0) {
		struct cu_hop last;
		uint8_t b[CU_SHA256_LEN], p[CU_SHA256_LEN];
		snprintf(path, sizeof(path), "%s/%s", cdir, names[n - 1]);
		if ((rc = cu_record_read(path, &buf, &len, d)))
			goto out;
		if ((rc = cu_sha256(buf, len, digest)))
			rc = stn_fail(d, rc, path, "hashing: %s",
				      stn_strerror(rc));
		else
			rc = cu_custody_parse(buf, len, path, &last, b, p, d);
		free(buf);
		buf = NULL;
		if (rc)
			goto out;
		/* Only the current holder can hand the media on: a custody
		 * rule, so a refusal (1), not a usage error (spec/cli.md). */
		if (strcmp(last.to, me) != 0) {
			rc = stn_fail(d, STN_E_CUSTODY, path,
				      "the media was handed to %s, not to you "
				      "(certificate CN %s)", last.to, me);
			goto out;
		}
		cu_hex(digest, sizeof(digest), prevhex);
	}
	cu_time_format(now, t);
	{
		char idhex[CU_SHA256_HEX_LEN + 1];
		cu_hex(id, sizeof(id), idhex);
		int w = snprintf(text, sizeof(text),
				 "format = station-custody-1\nbundle = %s\n"
				 "index = %u\nprevious = %s\nfrom = %s\n"
				 "to = %s\ntime = %s\n%s%s%s%s%s%s",
				 idhex, n + 1, prevhex, me, to, t,
				 place ? "place = " : "", place ? place : "",
				 place ? "\n" : "", seal ? "seal = " : "",
				 seal ? seal : "", seal ? "\n" : "");
		if (w < 0 || (size_t)w >= sizeof(text)) {
			rc = stn_fail(d, STN_E_USAGE, cdir, "record too long");
			goto out;
		}
	}
	snprintf(path, sizeof(path), "%s/%02u.rec", cdir, n + 1);
	if ((rc = cu_record_write_new(path, text, d)))
		goto out;
	if ((rc = cu_sign_file(key, path, NULL, d))) {
		unlink(path);
		goto out;
	}
	snprintf(written, cap, "%s", path);
out:
	free(buf);
	free_names(names);
	return rc;
}
