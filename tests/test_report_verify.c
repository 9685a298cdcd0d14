/* tests/test_report_verify.c: `station report verify` (docs/auditor.md,
 * station/report_verify.c), which needs no session: continuity with an
 * earlier report, and every kind of tampering named with its reason:
 * edits without a new signature, re-signing by keys without the station
 * role, and (with the station's own key) removed, moved, edited and
 * recomputed events; unsafe, unsigned and missing files. */
#include "tests/report_fixture.h"

#include "station/base/rfc3339.h"

static void a_gap_between_exports_shows_and_fails_continuity(void **state)
{
	struct fx *f = *state;
	struct stn_report_exported a, b;
	struct stn_report_info *i;
	char da[4200], db[4200];

	subdir(f, "a", da, sizeof(da));
	subdir(f, "b", db, sizeof(db));
	add_plain(f, 10); /* event k at base + 10 k */
	export_ok(f, da, 0, f->base + 50, &a);
	assert_int_equal(a.last, 5);
	export_ok(f, db, f->base + 80, 0, &b);
	assert_int_equal(b.first, 8);
	assert_int_equal(b.gap_first, 6);
	assert_int_equal(b.gap_last, 7);
	i = verify_ok(f, b.json, NULL);
	assert_int_equal(i->gap_first, 6);
	assert_int_equal(i->gap_last, 7);
	stn_report_info_free(i);
	verify_refused(f, b.json, a.json, STN_E_CHAINBROKEN,
		       "events 6..7 are in neither report");
}

static void an_overlap_that_agrees_verifies_and_an_earlier_start_does_not(
	void **state)
{
	struct fx *f = *state;
	struct stn_report_exported a, b, c;
	struct stn_report_info *i;
	char da[4200], db[4200], dc[4200];

	subdir(f, "a", da, sizeof(da));
	subdir(f, "b", db, sizeof(db));
	subdir(f, "c", dc, sizeof(dc));
	add_plain(f, 10);
	export_ok(f, da, 0, f->base + 50, &a);    /* 1..5 */
	export_ok(f, db, f->base + 30, 0, &b);    /* 3..11 */
	assert_int_equal(b.first, 3);
	i = verify_ok(f, b.json, a.json);
	assert_int_equal(i->overlap, 3);
	stn_report_info_free(i);
	/* c starts at event 1; its previous export is b (3..11). */
	export_ok(f, dc, f->base + 1, 0, &c);
	assert_int_equal(c.first, 1);
	verify_refused(f, c.json, b.json, STN_E_CHAINBROKEN,
		       "starts at event 1, before");
}

static void an_earlier_report_that_is_not_the_previous_export_is_refused(
	void **state)
{
	struct fx *f = *state;
	struct stn_report_exported a, b, c;
	char da[4200], db[4200], dc[4200];

	subdir(f, "a", da, sizeof(da));
	subdir(f, "b", db, sizeof(db));
	subdir(f, "c", dc, sizeof(dc));
	add_plain(f, 2);
	export_ok(f, da, 0, 0, &a);
	add_plain(f, 2);
	export_ok(f, db, 0, 0, &b);
	add_plain(f, 2);
	export_ok(f, dc, 0, 0, &c);
	verify_refused(f, c.json, a.json, STN_E_CHAINBROKEN,
		       "is not the previous export");
	verify_refused(f, a.json, b.json, STN_E_CHAINBROKEN,
		       "names no previous export");
}


struct doc {
	char *line[64];
	int n;
};

static void doc_load(struct doc *doc, const char *path)
{
	char *text = slurp(path, NULL), *save = NULL, *l;

	doc->n = 0;
	for (l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		assert_true(doc->n < 64);
		doc->line[doc->n++] = strdup(l);
	}
	free(text);
}

static void doc_free(struct doc *doc)
{
	for (int i = 0; i < doc->n; i++)
		free(doc->line[i]);
	doc->n = 0;
}

static void doc_save(const struct doc *doc, const char *path)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	for (int i = 0; i < doc->n; i++)
		fprintf(fp, "%s\n", doc->line[i]);
	assert_int_equal(fclose(fp), 0);
}

/* Replace the first `from` in line k by `to`. */
static void doc_sub(struct doc *doc, int k, const char *from, const char *to)
{
	char *l = doc->line[k], *at = strstr(l, from), *n;
	size_t a, lf = strlen(from), lt = strlen(to);

	if (!at)
		fail_msg("line %d has no \"%s\"", k + 1, from);
	a = (size_t)(at - l);
	n = malloc(strlen(l) - lf + lt + 1);
	assert_non_null(n);
	memcpy(n, l, a);
	memcpy(n + a, to, lt);
	strcpy(n + a + lt, at + lf);
	free(l);
	doc->line[k] = n;
}

static void doc_del(struct doc *doc, int k)
{
	free(doc->line[k]);
	memmove(&doc->line[k], &doc->line[k + 1],
		(size_t)(doc->n - k - 1) * sizeof(doc->line[0]));
	doc->n--;
}

static void doc_insert(struct doc *doc, int k, const char *line)
{
	assert_true(doc->n < 64);
	memmove(&doc->line[k + 1], &doc->line[k],
		(size_t)(doc->n - k) * sizeof(doc->line[0]));
	doc->line[k] = strdup(line);
	doc->n++;
}

/* Replace the last n bytes of line k by `to`. */
static void doc_tail(struct doc *doc, int k, size_t n, const char *to)
{
	char *l = doc->line[k], *r;
	size_t keep = strlen(l) - n;

	r = malloc(keep + strlen(to) + 1);
	assert_non_null(r);
	memcpy(r, l, keep);
	strcpy(r + keep, to);
	free(l);
	doc->line[k] = r;
}

static void doc_swap(struct doc *doc, int a, int b)
{
	char *t = doc->line[a];

	doc->line[a] = doc->line[b];
	doc->line[b] = t;
}

/* The value of "key":"..." in line k (no escapes in what we look up). */
static void doc_get(const struct doc *doc, int k, const char *key, char *out,
		    size_t cap)
{
	char pat[64];
	const char *at;
	size_t n;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	at = strstr(doc->line[k], pat);
	assert_non_null(at);
	at += strlen(pat);
	n = strcspn(at, "\"");
	assert_true(n < cap);
	memcpy(out, at, n);
	out[n] = '\0';
}

/* The body of event line k, decoded from its JSON string. */
static void doc_body(const struct doc *doc, int k, char *out, size_t cap)
{
	const char *p = strstr(doc->line[k], ",\"body\":\"");
	size_t n = 0;

	assert_non_null(p);
	for (p += 9; *p != '"'; p++) {
		assert_true(n + 1 < cap);
		if (*p == '\\') {
			p++;
			assert_true(*p == '"' || *p == '\\');
		}
		out[n++] = *p;
	}
	out[n] = '\0';
}

/* What a forger with the station's key does after editing event line k:
 * recompute its hash from the stored prev and its (edited) body. */
static void doc_rehash(struct doc *doc, int k)
{
	char prev[65], hash[65], body[4096], calc[65];

	doc_get(doc, k, "prev", prev, sizeof(prev));
	doc_get(doc, k, "hash", hash, sizeof(hash));
	doc_body(doc, k, body, sizeof(body));
	assert_int_equal(stn_canon_hash(prev, body, strlen(body), calc), 0);
	doc_sub(doc, k, hash, calc);
}

static void sign_with(const struct fx *f, const char *path, const char *who)
{
	struct cu_key *k = NULL;
	struct stn_diag d = {0};
	char key[4300], cert[4300];

	snprintf(key, sizeof(key), "%s/pki/%s.key", f->dir, who);
	snprintf(cert, sizeof(cert), "%s/pki/%s.pem", f->dir, who);
	assert_int_equal(cu_key_load(key, cert, &k, &d), 0);
	assert_int_equal(cu_sign_file(k, path, NULL, &d), 0);
	cu_key_free(k);
}

enum edit {
	E_CHAR, E_DEL, E_SWAP, E_FIELD, E_TIME, E_TYPE, E_BODY, E_REHASH,
	E_COUNT, E_LASTHASH, E_MEMBER, E_MISSING, E_EXTRA, E_TRAIL, E_ESCAPE,
	E_FORMAT, E_STATION, E_DUP, E_ORDER, E_NONE, E_GARBAGE,
};

static const struct {
	const char *what;
	enum edit edit;
	const char *signer; /* NULL: keep the station's old signature */
	int code;
	const char *text;
} tamperings[] = {
	{"one byte edited, not re-signed", E_CHAR, NULL, STN_E_SIGNATURE,
	 "does not verify over the file's SHA-256"},
	{"garbage under the old signature", E_GARBAGE, NULL, STN_E_SIGNATURE,
	 "does not verify over the file's SHA-256"},
	{"re-signed by a release key", E_CHAR, "release1", STN_E_ROLE,
	 "holds role release, not station"},
	{"re-signed by a custody key", E_NONE, "custody1", STN_E_ROLE,
	 "holds role custody, not station"},
	{"re-signed by a two-role key", E_NONE, "tworole", STN_E_TWOROLES,
	 "one key may hold one station role"},
	{"re-signed by a key from another root", E_NONE, "other-release",
	 STN_E_CHAIN, ""},
	{"an event removed", E_DEL, "station", STN_E_CHAINBROKEN,
	 "event 4 follows event 2: events must run on without a gap"},
	{"two events swapped", E_SWAP, "station", STN_E_CHAINBROKEN,
	 "event 4 follows event 2"},
	{"an event repeated", E_DUP, "station", STN_E_CHAINBROKEN,
	 "event 3 follows event 3"},
	{"a shown field edited", E_FIELD, "station", STN_E_CHAINBROKEN,
	 "event 3: its body does not match the fields shown for it"},
	{"a shown time edited", E_TIME, "station", STN_E_CHAINBROKEN,
	 "event 3: its body does not match the time shown for it"},
	{"a shown type edited", E_TYPE, "station", STN_E_CHAINBROKEN,
	 "event 3: its body does not match the type shown for it"},
	{"shown fields reordered", E_ORDER, "station", STN_E_CHAINBROKEN,
	 "event 3: its body does not match the fields shown for it"},
	{"a body edited", E_BODY, "station", STN_E_CHAINBROKEN,
	 "event 3: hash does not match its body"},
	{"an event rewritten with its hash recomputed", E_REHASH, "station",
	 STN_E_CHAINBROKEN, "event 4: prev does not name event 3"},
	{"the header's count edited", E_COUNT, "station", STN_E_CHAINBROKEN,
	 "header: first 1, last 6 and count 7 do not agree"},
	{"the header's last hash edited", E_LASTHASH, "station",
	 STN_E_CHAINBROKEN, "header: the last hash is not event 6's hash"},
	{"an unknown member", E_MEMBER, "station", STN_E_SYNTAX,
	 "line 1: report: member \"colour\" where \"station\" belongs"},
	{"a member missing", E_MISSING, "station", STN_E_SYNTAX,
	 "line 1: report: member \"exported\" where \"site\" belongs"},
	{"an unknown member in an event", E_EXTRA, "station", STN_E_SYNTAX,
	 "line 4: event 3: unknown member \"x\" after \"body\""},
	{"bytes after the end", E_TRAIL, "station", STN_E_SYNTAX,
	 "bytes after the end of the report"},
	{"an escape the station never writes", E_ESCAPE, "station",
	 STN_E_SYNTAX, "escape \\n is not one the station writes"},
	{"another format version", E_FORMAT, "station", STN_E_SYNTAX,
	 "format is \"station-report-2\""},
	{"another station's name", E_STATION, "station", STN_E_SIGNATURE,
	 "signed by station CN STN-0042, but the report is for station "
	 "STN-0099"},
};

static void make_base_report(struct fx *f, struct stn_report_exported *x)
{
	struct stn_field a[] = {{"serial", "SN-1"}, {"model", "TX-200"},
				{"note", "line1\nline2"}};

	add_plain(f, 2);
	add(f, "install-finished", "S-2", a, 3);
	add_plain(f, 3);
	export_ok(f, f->out, 0, 0, x);
	assert_int_equal(x->last, 6);
}

static void verify_names_each_tampering_with_its_reason(void **state)
{
	struct fx *f = *state;
	struct stn_report_exported x;
	char path[4300], sigp[4400], pemp[4400], cmd[20000];

	make_base_report(f, &x);
	/* Line 1 is the header; event k is on line k + 1 (index k). */
	for (size_t t = 0; t < sizeof(tamperings) / sizeof(tamperings[0]);
	     t++) {
		struct doc doc;
		char v[128];

		doc_load(&doc, x.json);
		switch (tamperings[t].edit) {
		case E_CHAR: doc_sub(&doc, 3, "\"SN-1\"", "\"SN-7\""); break;
		case E_DEL: doc_del(&doc, 3); break;
		case E_SWAP: doc_swap(&doc, 3, 4); break;
		case E_DUP: doc_insert(&doc, 4, doc.line[3]); break;
		case E_FIELD:
			doc_sub(&doc, 3, "\"model\":\"TX-200\"",
				"\"model\":\"TX-300\"");
			break;
		case E_TIME:
			doc_get(&doc, 3, "time", v, sizeof(v));
			doc_sub(&doc, 3, v, "2001-01-01T00:00:00Z");
			break;
		case E_TYPE:
			doc_sub(&doc, 3, "\"type\":\"install-finished\"",
				"\"type\":\"install-failed\"");
			break;
		case E_ORDER:
			doc_sub(&doc, 3, "\"serial\":\"SN-1\",\"model\":\"TX-200\"",
				"\"model\":\"TX-200\",\"serial\":\"SN-1\"");
			break;
		case E_BODY:
			doc_sub(&doc, 3, "\\\"model\\\":\\\"TX-200\\\"",
				"\\\"model\\\":\\\"TX-300\\\"");
			break;
		case E_REHASH:
			doc_sub(&doc, 3, "\"model\":\"TX-200\"",
				"\"model\":\"TX-300\"");
			doc_sub(&doc, 3, "\\\"model\\\":\\\"TX-200\\\"",
				"\\\"model\\\":\\\"TX-300\\\"");
			doc_rehash(&doc, 3);
			break;
		case E_COUNT: doc_sub(&doc, 0, "\"count\":6", "\"count\":7"); break;
		case E_LASTHASH:
			doc_get(&doc, 0, "hash", v, sizeof(v)); /* first.hash */
			doc_sub(&doc, 0, x.last_hash, v);
			break;
		case E_MEMBER:
			doc_sub(&doc, 0, ",\"station\":", ",\"colour\":\"red\","
							  "\"station\":");
			break;
		case E_MISSING: doc_sub(&doc, 0, ",\"site\":\"plant-7\"", ""); break;
		case E_EXTRA: doc_tail(&doc, 3, 2, ",\"x\":\"1\"},"); break;
		case E_TRAIL:
			doc.line[doc.n++] = strdup("");
			break;
		case E_ESCAPE: doc_sub(&doc, 3, "\\u000a", "\\n"); break;
		case E_FORMAT:
			doc_sub(&doc, 0, "station-report-1", "station-report-2");
			break;
		case E_STATION: doc_sub(&doc, 0, "\"STN-0042\"", "\"STN-0099\""); break;
		case E_NONE: break;
		case E_GARBAGE:
			/* Signature first: what a file says is not read
			 * until its signature holds. */
			doc_free(&doc);
			doc.line[doc.n++] = strdup("{\"format\":\"no\"");
			break;
		}
		snprintf(path, sizeof(path), "%s/tamper-%zu.json", f->t, t);
		doc_save(&doc, path);
		doc_free(&doc);
		snprintf(sigp, sizeof(sigp), "%s.sig", path);
		snprintf(pemp, sizeof(pemp), "%s.pem", path);
		if (tamperings[t].signer) {
			sign_with(f, path, tamperings[t].signer);
		} else {
			snprintf(cmd, sizeof(cmd), "cp '%s.sig' '%s' && cp "
				 "'%s.pem' '%s'", x.json, sigp, x.json, pemp);
			assert_int_equal(system(cmd), 0);
		}
		{
			struct stn_report_info *i = NULL;
			struct stn_diag d = {0};
			int rc = stn_report_verify(stn_session_trust(f->s),
						   path, NULL, &i, &d);

			if (rc != tamperings[t].code ||
			    !strstr(d.text, tamperings[t].text))
				fail_msg("%s: got %d (%s) \"%s\", want %d "
					 "\"%s\"", tamperings[t].what, rc,
					 stn_err_rule(rc), d.text,
					 tamperings[t].code,
					 tamperings[t].text);
			print_message("      %-44s rule %s: %s\n",
				      tamperings[t].what, stn_err_rule(rc),
				      d.text);
			assert_null(i);
			/* Signature problems name the .sig or .pem; the
			 * rest name the report. */
			if (rc == STN_E_CHAINBROKEN || rc == STN_E_SYNTAX)
				assert_string_equal(d.where, path);
		}
	}
	/* The untouched report still verifies. */
	stn_report_info_free(verify_ok(f, x.json, NULL));
}

static void a_cut_tail_verifies_alone_but_breaks_the_next_continuity(
	void **state)
{
	struct fx *f = *state;
	struct stn_report_exported a, b;
	struct doc doc;
	char da[4200], db[4200], h5[65];

	/* With the station's key a forger can drop the newest events and
	 * fix the header: the report alone cannot show it, the next one
	 * does. */
	subdir(f, "a", da, sizeof(da));
	subdir(f, "b", db, sizeof(db));
	add_plain(f, 6);
	export_ok(f, da, 0, 0, &a);
	add_plain(f, 2);
	export_ok(f, db, 0, 0, &b);
	doc_load(&doc, a.json);
	doc_get(&doc, 5, "hash", h5, sizeof(h5));
	doc_del(&doc, 6);
	doc_tail(&doc, 5, 1, "");
	doc_sub(&doc, 0, "\"last\":{\"seq\":6", "\"last\":{\"seq\":5");
	doc_sub(&doc, 0, a.last_hash, h5);
	doc_sub(&doc, 0, "\"count\":6", "\"count\":5");
	doc_save(&doc, a.json);
	doc_free(&doc);
	sign_with(f, a.json, "station");
	stn_report_info_free(verify_ok(f, a.json, NULL));
	verify_refused(f, b.json, a.json, STN_E_CHAINBROKEN,
		       "is not the previous export");
}

static void verify_refuses_a_symlink_a_fifo_a_missing_sig_and_a_huge_file(
	void **state)
{
	struct fx *f = *state;
	struct stn_report_exported x;
	char p[4300], q[4400];
	int fd;

	add_plain(f, 2);
	export_ok(f, f->out, 0, 0, &x);
	snprintf(p, sizeof(p), "%s/link.json", f->t);
	assert_int_equal(symlink(x.json, p), 0);
	verify_refused(f, p, NULL, STN_E_UNSAFE, "symbolic link");
	snprintf(p, sizeof(p), "%s/fifo.json", f->t);
	assert_int_equal(mkfifo(p, 0600), 0);
	verify_refused(f, p, NULL, STN_E_UNSAFE, "not a regular file");
	snprintf(p, sizeof(p), "%s/huge.json", f->t);
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, STN_REPORT_MAX + 1), 0);
	close(fd);
	verify_refused(f, p, NULL, STN_E_TOOBIG, "more than a report may have");
	snprintf(q, sizeof(q), "%s.sig", x.json);
	assert_int_equal(unlink(q), 0);
	/* Unsigned or missing: a refusal (exit 1), not an I/O error. */
	verify_refused(f, x.json, NULL, STN_E_SIGNATURE,
		       "missing: the report is not signed");
	snprintf(q, sizeof(q), "%s.pem", x.json);
	assert_int_equal(unlink(q), 0);
	verify_refused(f, x.json, NULL, STN_E_SIGNATURE,
		       "the report is not signed");
	verify_refused(f, "/nonexistent/report.json", NULL, STN_E_SIGNATURE,
		       "no report here");
}

/* ---- identity (formats §9): records signed with the openssl CLI ---- */

#define NONCE "6e6f6e63652d6f662d7468652d73746174696f6e2d3031323334353637383961"
#define CHALLENGE \
	"6368616c6c656e67652d6f662d7468652d6465766963652d3031323334353637"
#define OTHER_NONCE \
	"0000000000000000000000000000000000000000000000000000000000000001"
#define BUNDLE "b1d0000000000000000000000000000000000000000000000000000000000042"
#define IMG_SHA "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

struct signed_rec {
	char record[2048], sig[512], chain[8192];
};

static void read_into(const char *path, char *out, size_t cap)
{
	size_t n;
	char *b = slurp(path, &n);

	assert_true(n < cap);
	memcpy(out, b, n + 1);
	free(b);
}

/* Signs `record` as a device or the station would (formats §2): openssl
 * dgst over the exact bytes with pki/KEY.key; the chain is pki/CHAIN.pem. */
static void sign_rec(const struct fx *f, const char *key, const char *chain,
		     const char *record, struct signed_rec *out)
{
	char rec[4300], sig[4300], cmd[20000];

	snprintf(out->record, sizeof(out->record), "%s", record);
	snprintf(rec, sizeof(rec), "%s/rec.txt", f->t);
	snprintf(sig, sizeof(sig), "%s/rec.b64", f->t);
	th_write_str(rec, record);
	snprintf(cmd, sizeof(cmd),
		 "openssl dgst -sha256 -sign '%s/pki/%s.key' '%s' | "
		 "base64 -w0 >'%s'", f->dir, key, rec, sig);
	assert_int_equal(system(cmd), 0);
	read_into(sig, out->sig, sizeof(out->sig));
	snprintf(rec, sizeof(rec), "%s/pki/%s.pem", f->dir, chain);
	read_into(rec, out->chain, sizeof(out->chain));
}

/* What one identity report gets wrong (ID_GOOD: nothing). */
enum id_fault {
	ID_GOOD,
	ID_TAMPERED_RECEIPT,   /* the receipt's record edited after signing */
	ID_OTHER_DEVICE,       /* the receipt signed by dev2's key */
	ID_OTHER_NONCE,        /* the receipt signed for another nonce */
	ID_NONSTATION_AUTHZ,   /* the authorization signed by release1 */
	ID_FORGED_AUTHZ,       /* dev1's key under the station's chain */
	ID_OTHER_SERIAL_CERT,  /* SN-0001 attested with dev-other's chain */
};

/* One install of image app on SN-0001 in session S-id: session-start,
 * device-attested, install-authorized, image-receipt, session-end, as the
 * install flow journals them; exported; returns the report's path. */
static void identity_report(struct fx *f, enum id_fault fault,
			    struct stn_report_exported *x)
{
	struct signed_rec at, az, rc;
	char text[2048], issued[CU_TIME_LEN + 1], expires[CU_TIME_LEN + 1];
	const char *S = "S-id";

	/* Every event lies within the certificates' validity (from a day
	 * ago): the authorization's chain is checked at its issued time. */
	f->base = stn_session_start(f->s) - 3600;
	cu_time_format(f->base, issued);
	cu_time_format(f->base + 600, expires);
	sign_rec(f, fault == ID_OTHER_SERIAL_CERT ? "dev-other" : "dev1",
		 fault == ID_OTHER_SERIAL_CERT ? "dev-other" : "dev1",
		 "format = station-attest-1\nmodel = TX-200\nhardware = revB\n"
		 "serial = SN-0001\nsequence = 41\nversion = 2.4.0\n"
		 "nonce = " NONCE "\nchallenge = " CHALLENGE "\n",
		 &at);
	snprintf(text, sizeof(text),
		 "format = station-install-1\nstation = STN-0042\n"
		 "site = plant-7\ntechnician = ana\ndevice = SN-0001\n"
		 "challenge = " CHALLENGE "\nbundle = " BUNDLE "\n"
		 "sequence = 42\nissued = %s\nexpires = %s\n[image app]\n"
		 "slot = 0\nsize = 5\nsha256 = " IMG_SHA "\n",
		 issued, expires);
	sign_rec(f,
		 fault == ID_NONSTATION_AUTHZ ? "release1"
		 : fault == ID_FORGED_AUTHZ  ? "dev1"
					     : "station",
		 fault == ID_NONSTATION_AUTHZ ? "release1" : "station", text,
		 &az);
	sign_rec(f, fault == ID_OTHER_DEVICE ? "dev2" : "dev1", "dev1",
		 fault == ID_OTHER_NONCE
			 ? "format = station-receipt-1\ndevice = SN-0001\n"
			   "nonce = " OTHER_NONCE "\nchallenge = " CHALLENGE
			   "\nslot = 0\nsize = 5\nsha256 = " IMG_SHA "\n"
			 : "format = station-receipt-1\ndevice = SN-0001\n"
			   "nonce = " NONCE "\nchallenge = " CHALLENGE
			   "\nslot = 0\nsize = 5\nsha256 = " IMG_SHA "\n",
		 &rc);
	if (fault == ID_TAMPERED_RECEIPT) /* one digit of the digest */
		rc.record[strlen(rc.record) - 2] ^= 1;
	{
		struct stn_field start[] = {{"station", "STN-0042"},
					    {"site", "plant-7"},
					    {"command", "push"},
					    {"technician", "ana"}};
		struct stn_field att[] = {
			{"device", "serial:/dev/ttyUSB0"},
			{"serial", "SN-0001"},
			{"model", "TX-200"},
			{"class", "tx"},
			{"policy", "required"},
			{"result", "proven"},
			{"cert-subject", "CN=TX-200 SN-0001, serialNumber=SN-0001"},
			{"cert-issuer", "CN=Acme TX-200 Device CA"},
			{"cert-serial", "1001"},
			{"nonce", NONCE},
			{"challenge", CHALLENGE},
			{"record", at.record},
			{"sig", at.sig},
			{"chain", at.chain}};
		struct stn_field auth[] = {{"device", "serial:/dev/ttyUSB0"},
					   {"serial", "SN-0001"},
					   {"bundle", BUNDLE},
					   {"challenge", CHALLENGE},
					   {"issued", issued},
					   {"expires", expires},
					   {"record", az.record},
					   {"sig", az.sig},
					   {"chain", az.chain}};
		struct stn_field rcp[] = {{"device", "serial:/dev/ttyUSB0"},
					  {"serial", "SN-0001"},
					  {"bundle", BUNDLE},
					  {"image", "app"},
					  {"slot", "0"},
					  {"size", "5"},
					  {"sha256", IMG_SHA},
					  {"result", "matches"},
					  {"record", rc.record},
					  {"sig", rc.sig}};
		struct stn_field end[] = {{"result", "ok"}, {"code", "0"}};

		add(f, "session-start", S, start, 4);          /* 1 */
		add(f, "device-attested", S, att, 14);         /* 2 */
		add(f, "install-authorized", S, auth, 9);      /* 3 */
		add(f, "image-receipt", S, rcp, 10);           /* 4 */
		add(f, "session-end", S, end, 2);              /* 5 */
	}
	export_ok(f, f->out, 0, 0, x);
}

static void a_report_with_signed_identity_records_verifies_and_shows_them(
	void **state)
{
	struct fx *f = *state;
	struct stn_report_exported x;
	struct stn_report_info *i;

	identity_report(f, ID_GOOD, &x);
	i = verify_ok(f, x.json, NULL);
	/* attestation, authorization, receipt */
	assert_int_equal(i->identity_checked, 3);
	assert_int_equal(i->identity_unchecked, 0);
	assert_int_equal(i->nsessions, 1);
	assert_non_null(strstr(i->sessions[0].identity,
			       "SN-0001 proven by certificate CN=TX-200 "
			       "SN-0001"));
	assert_non_null(strstr(i->sessions[0].identity,
			       "SN-0001 receipt for image app: proof "
			       "device-signed, matches"));
	stn_report_info_free(i);
	/* The readable summary says the same for people. */
	{
		char *sum = slurp(x.summary, NULL);

		assert_non_null(strstr(sum, "Identity    SN-0001 proven by "
					    "certificate CN=TX-200 SN-0001"));
		free(sum);
	}
}

static const struct {
	const char *what;
	enum id_fault fault;
	const char *text;
} id_faults[] = {
	{"a receipt record edited after signing", ID_TAMPERED_RECEIPT,
	 "event 4 (image-receipt): the signature of its record does not "
	 "verify with the first certificate of the device chain of event 2"},
	{"a receipt signed by another device's key", ID_OTHER_DEVICE,
	 "event 4 (image-receipt): the signature of its record does not "
	 "verify with the first certificate of the device chain of event 2"},
	{"a receipt for another nonce", ID_OTHER_NONCE,
	 "event 4 (image-receipt): its record is for device SN-0001, nonce "
	 OTHER_NONCE},
	{"an authorization signed by a release key", ID_NONSTATION_AUTHZ,
	 "event 3 (install-authorized): its chain is not a station "
	 "certificate the trust anchors accept"},
	{"an authorization signed by a device key under the station's chain",
	 ID_FORGED_AUTHZ,
	 "event 3 (install-authorized): the signature of its record does not "
	 "verify with the first certificate of its own (the station's) chain"},
	{"an attestation whose certificate names another serial",
	 ID_OTHER_SERIAL_CERT,
	 "event 2 (device-attested): the device certificate"},
};

static void verify_names_each_bad_identity_record(void **state)
{
	struct fx *f = *state;

	for (size_t k = 0; k < sizeof(id_faults) / sizeof(id_faults[0]); k++) {
		struct stn_report_exported x;

		print_message("  %s\n", id_faults[k].what);
		/* A fresh journal for each: setup's station, a new data dir. */
		teardown(state);
		setup(state);
		identity_report(f, id_faults[k].fault, &x);
		verify_refused(f, x.json, NULL, STN_E_CHAINBROKEN,
			       id_faults[k].text);
		{
			struct stn_report_info *i = NULL;
			struct stn_diag d = {0};

			stn_report_verify(stn_session_trust(f->s), x.json,
					  NULL, &i, &d);
			print_message("      %s\n", d.text);
		}
	}
}

/* A receipt whose attestation lies before the report's first event (an
 * install across two exports) cannot be checked from this report alone:
 * it verifies, is counted unchecked, and never shows as proven. */
static void a_receipt_whose_attestation_is_in_an_earlier_report_is_unchecked(
	void **state)
{
	struct fx *f = *state;
	struct stn_report_exported x, y;
	struct stn_report_info *i;
	char db[4200];

	identity_report(f, ID_GOOD, &x);
	subdir(f, "b", db, sizeof(db));
	/* events 3.. only: the authorization and receipt without their
	 * attestation */
	export_ok(f, db, f->base + 30, 0, &y);
	assert_int_equal(y.first, 3);
	i = verify_ok(f, y.json, NULL);
	assert_int_equal(i->identity_unchecked, 2);
	assert_int_equal(i->identity_first_unchecked, 3);
	stn_report_info_free(i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(a_gap_between_exports_shows_and_fails_continuity),
		T(an_overlap_that_agrees_verifies_and_an_earlier_start_does_not),
		T(an_earlier_report_that_is_not_the_previous_export_is_refused),
		T(verify_names_each_tampering_with_its_reason),
		T(a_cut_tail_verifies_alone_but_breaks_the_next_continuity),
		T(verify_refuses_a_symlink_a_fifo_a_missing_sig_and_a_huge_file),
		T(a_report_with_signed_identity_records_verifies_and_shows_them),
		T(verify_names_each_bad_identity_record),
		T(a_receipt_whose_attestation_is_in_an_earlier_report_is_unchecked),
#undef T
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
