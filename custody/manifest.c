/* custody/manifest.c: manifests and device identity records on top of the
 * strict record parser.  Every value is checked for form here so that later
 * code can trust the struct. */
#include "custody/manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "custody/record.h"
#include "station/base/hex.h"
#include "station/base/rfc3339.h"
#include "station/base/error.h"

static const struct cu_key_rule man_top[] = {
	{"format", CU_REQUIRED},  {"name", CU_REQUIRED},
	{"version", CU_REQUIRED}, {"sequence", CU_REQUIRED},
	{"created", CU_REQUIRED}, {"expires", CU_REQUIRED},
	{NULL, 0}};
static const struct cu_key_rule man_target[] = {
	{"model", CU_REQUIRED}, {"hardware", CU_OPTIONAL}, {NULL, 0}};
/* slot is required: defaulting it would pick a flash region on the
 * release engineer's behalf. */
static const struct cu_key_rule man_image[] = {
	{"file", CU_REQUIRED},   {"size", CU_REQUIRED},
	{"sha256", CU_REQUIRED}, {"slot", CU_REQUIRED},
	{"cipher", CU_OPTIONAL}, {"iv", CU_OPTIONAL},
	{"cipher-sha256", CU_OPTIONAL},
	{NULL, 0}};
static const struct cu_section_rule man_rules[] = {
	{"", CU_NO_LABEL, 1, 1, man_top},
	{"target", CU_NO_LABEL, 1, 1, man_target},
	{"image", CU_LABELLED, 1, CU_MAX_IMAGES, man_image},
	{NULL, 0, 0, 0, NULL}};

static int man_error(struct stn_diag *d, const struct cu_record *r,
		     const struct cu_section *s, const char *key,
		     const char *text)
{
	return cu_record_fail(d, STN_E_SYNTAX, r, s, key, "%s", text);
}

/* Splits a blank-separated list of tokens of the given class. */
static int split_list(const char *v, char out[][65], size_t max, size_t *n)
{
	char buf[1025 * 4];
	char *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", v);
	*n = 0;
	for (tok = strtok_r(buf, " \t", &save); tok;
	     tok = strtok_r(NULL, " \t", &save)) {
		if (*n == max || strlen(tok) > 64 ||
		    !cu_chars_in(tok, "A-Za-z0-9._-"))
			return -1;
		for (size_t i = 0; i < *n; i++)
			if (strcmp(out[i], tok) == 0)
				return -1;
		strcpy(out[(*n)++], tok);
	}
	return *n ? 0 : -1;
}

static int printable_len_ok(const char *v, size_t maxchars)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		n += (*p & 0xc0) != 0x80; /* count UTF-8 lead bytes */
	return n >= 1 && n <= maxchars;
}

/* formats §10: the cipher fields of an encrypted image.  All three or none:
 * a manifest naming a cipher without its IV, or an IV without the
 * ciphertext's digest, is a release mistake, never a plain image. */
#define MAN_CIPHER "aes-256-ctr"
static const char *const cipher_keys[] = {"cipher", "iv", "cipher-sha256"};

static int parse_cipher(const struct cu_record *r, const struct cu_section *s,
			struct cu_image *img, struct stn_diag *d)
{
	char missing[64] = "";
	const char *v;
	size_t have = 0;
	int rc;

	for (size_t i = 0; i < 3; i++) {
		if (cu_section_get(s, cipher_keys[i])) {
			have++;
			continue;
		}
		snprintf(missing + strlen(missing),
			 sizeof(missing) - strlen(missing), "%s'%s'",
			 missing[0] ? " and " : "", cipher_keys[i]);
	}
	if (have == 0)
		return 0; /* a plain image */
	if (have < 3)
		return cu_record_fail(d, STN_E_SYNTAX, r, s, NULL,
				      "an encrypted image needs 'cipher', "
				      "'iv' and 'cipher-sha256': %s missing",
				      missing);
	if ((rc = cu_get_str(r, s, "cipher", &v, d)))
		return rc;
	if (strcmp(v, MAN_CIPHER) != 0)
		return cu_record_fail(d, STN_E_SYNTAX, r, s, "cipher",
				      "'cipher' must be " MAN_CIPHER
				      ", not '%.40s'",
				      v);
	if ((rc = cu_get_str(r, s, "iv", &v, d)))
		return rc;
	if (strlen(v) != 2 * CU_IV_LEN ||
	    cu_hex_parse(v, CU_IV_LEN, img->iv) != 0)
		return cu_record_fail(d, STN_E_SYNTAX, r, s, "iv",
				      "'iv' must be 32 lowercase hex digits");
	if ((rc = cu_get_digest(r, s, "cipher-sha256", img->cipher_sha256,
				d)))
		return rc;
	img->encrypted = 1;
	return 0;
}

static int parse_image(const struct cu_record *r, const struct cu_section *s,
		       struct cu_image *img, struct stn_diag *d)
{
	const char *file, *why;
	uint64_t slot;
	int rc;

	snprintf(img->label, sizeof(img->label), "%s", s->label);
	if ((rc = cu_get_token(r, s, "file", CU_FILE_CHARS, CU_FILE_NAME_MAX,
			       &file, d)))
		return rc;
	if ((why = cu_layout_image_name(file)))
		return man_error(d, r, s, "file", why);
	snprintf(img->file, sizeof(img->file), "%s", file);
	if ((rc = cu_get_u64(r, s, "size", &img->size, d)) ||
	    (rc = cu_get_digest(r, s, "sha256", img->sha256, d)) ||
	    (rc = cu_get_u64(r, s, "slot", &slot, d)))
		return rc;
	if (slot > 255)
		return man_error(d, r, s, "slot", "'slot' must be 0 to 255");
	img->slot = (unsigned)slot;
	return parse_cipher(r, s, img, d);
}

int cu_manifest_parse(const void *buf, size_t len, const char *path,
		      struct cu_manifest **out, struct stn_diag *d)
{
	struct cu_record *r = NULL;
	struct cu_manifest *m = NULL;
	const struct cu_section *top, *target;
	const char *v;
	int rc;

	if ((rc = cu_record_parse(buf, len, path, &r, d)) ||
	    (rc = cu_record_check(r, man_rules, "station-bundle-1", d)))
		goto out;
	m = calloc(1, sizeof(*m));
	if (!m) {
		rc = stn_fail(d, STN_E_NOMEM, path, "parsing manifest");
		goto out;
	}
	if ((rc = cu_sha256(buf, len, m->id))) {
		rc = stn_fail(d, rc, path, "bundle id: %s", stn_strerror(rc));
		goto out;
	}
	cu_hex(m->id, sizeof(m->id), m->id_hex);
	top = cu_record_section(r, 0);
	if ((rc = cu_get_token(r, top, "name", "a-z0-9._-", 64, &v, d)))
		goto out;
	snprintf(m->name, sizeof(m->name), "%s", v);
	if ((rc = cu_get_str(r, top, "version", &v, d)))
		goto out;
	if (!printable_len_ok(v, 32)) {
		rc = man_error(d, r, top, "version",
			       "'version' must be 1 to 32 characters");
		goto out;
	}
	snprintf(m->version, sizeof(m->version), "%s", v);
	if ((rc = cu_get_u64(r, top, "sequence", &m->sequence, d)) ||
	    (rc = cu_get_time(r, top, "created", &m->created, d)) ||
	    (rc = cu_get_time(r, top, "expires", &m->expires, d)))
		goto out;
	if (m->expires <= m->created) {
		rc = man_error(d, r, top, "expires",
			       "'expires' must be after 'created'");
		goto out;
	}
	target = cu_record_find(r, "target", NULL);
	if ((rc = cu_get_str(r, target, "model", &v, d)))
		goto out;
	if (!printable_len_ok(v, 64)) {
		rc = man_error(d, r, target, "model",
			       "'model' must be 1 to 64 characters");
		goto out;
	}
	snprintf(m->model, sizeof(m->model), "%s", v);
	if ((v = cu_section_get(target, "hardware")) &&
	    split_list(v, m->hardware, CU_MAX_HARDWARE, &m->nhardware)) {
		rc = man_error(d, r, target, "hardware",
			       "'hardware' must be distinct revisions of "
			       "[A-Za-z0-9._-] separated by blanks");
		goto out;
	}
	for (size_t i = 1; i < cu_record_nsections(r); i++) {
		const struct cu_section *s = cu_record_section(r, i);
		if (strcmp(s->name, "image") != 0)
			continue;
		if ((rc = parse_image(r, s, &m->images[m->nimages], d)))
			goto out;
		m->nimages++;
	}
	*out = m;
	m = NULL;
out:
	cu_manifest_free(m);
	cu_record_free(r);
	return rc;
}

void cu_manifest_free(struct cu_manifest *m)
{
	free(m);
}

int cu_manifest_id(const char *dir, uint8_t id[CU_SHA256_LEN],
		   struct stn_diag *d)
{
	char path[4096];
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	if ((size_t)snprintf(path, sizeof(path), "%s/" CU_LAYOUT_MANIFEST,
			     dir) >= sizeof(path))
		return stn_fail(d, STN_E_USAGE, dir, "bundle path too long");
	if ((rc = cu_record_read(path, &buf, &len, d)))
		return rc;
	rc = cu_sha256(buf, len, id);
	free(buf);
	if (rc)
		return stn_fail(d, rc, path, "hashing: %s", stn_strerror(rc));
	return 0;
}

int cu_manifest_load(const char *dir, const char *shown,
		     struct cu_manifest **out, struct stn_diag *d)
{
	char path[4096], where[4096];
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	if ((size_t)snprintf(path, sizeof(path), "%s/" CU_LAYOUT_MANIFEST,
			     dir) >= sizeof(path) ||
	    (size_t)snprintf(where, sizeof(where), "%s/" CU_LAYOUT_MANIFEST,
			     shown ? shown : dir) >= sizeof(where))
		return stn_fail(d, STN_E_USAGE, dir, "bundle path too long");
	rc = cu_record_read(path, &buf, &len, d);
	if (rc == 0)
		rc = cu_manifest_parse(buf, len, where, out, d);
	free(buf);
	return rc;
}

char *cu_manifest_render(const struct cu_manifest *m)
{
	char created[CU_TIME_LEN + 1], expires[CU_TIME_LEN + 1];
	char hex[CU_SHA256_HEX_LEN + 1];
	char *text = NULL, *next;
	size_t cap = 1024 + m->nimages * 512 + m->nhardware * 80;
	size_t n;

	text = malloc(cap);
	if (!text)
		return NULL;
	cu_time_format(m->created, created);
	cu_time_format(m->expires, expires);
	n = (size_t)snprintf(text, cap,
			     "format = station-bundle-1\n"
			     "name = %s\nversion = %s\nsequence = %llu\n"
			     "created = %s\nexpires = %s\n\n"
			     "[target]\nmodel = %s\n",
			     m->name, m->version,
			     (unsigned long long)m->sequence, created, expires,
			     m->model);
	if (m->nhardware) {
		n += (size_t)snprintf(text + n, cap - n, "hardware =");
		for (size_t i = 0; i < m->nhardware; i++)
			n += (size_t)snprintf(text + n, cap - n, " %s",
					      m->hardware[i]);
		n += (size_t)snprintf(text + n, cap - n, "\n");
	}
	for (size_t i = 0; i < m->nimages; i++) {
		const struct cu_image *img = &m->images[i];
		cu_hex(img->sha256, sizeof(img->sha256), hex);
		n += (size_t)snprintf(text + n, cap - n,
				      "\n[image %s]\nfile = %s\nsize = %llu\n"
				      "sha256 = %s\nslot = %u\n",
				      img->label, img->file,
				      (unsigned long long)img->size, hex,
				      img->slot);
		if (img->encrypted) {
			char iv[2 * CU_IV_LEN + 1];
			cu_hex(img->iv, sizeof(img->iv), iv);
			cu_hex(img->cipher_sha256, sizeof(img->cipher_sha256),
			       hex);
			n += (size_t)snprintf(text + n, cap - n,
					      "cipher = " MAN_CIPHER "\n"
					      "iv = %s\ncipher-sha256 = %s\n",
					      iv, hex);
		}
	}
	if (n >= cap) { /* cannot happen with the caps above; fail closed */
		free(text);
		return NULL;
	}
	next = realloc(text, n + 1);
	return next ? next : text;
}

/* The identity rules, shared by a record (cu_identity_parse) and by the
 * fields a transport gathered (cu_identity_set). */
#define ID_SERIAL_CHARS "A-Za-z0-9._:-"
#define ID_HARDWARE_CHARS "A-Za-z0-9._-"
#define ID_TOKEN_MAX 64
#define ID_MODEL_MAX 64
#define ID_VERSION_MAX 32

static const struct cu_key_rule id_top[] = {
	{"format", CU_REQUIRED},  {"model", CU_REQUIRED},
	{"hardware", CU_OPTIONAL}, {"serial", CU_OPTIONAL},
	{"sequence", CU_OPTIONAL}, {"version", CU_OPTIONAL},
	{NULL, 0}};
static const struct cu_section_rule id_rules[] = {
	{"", CU_NO_LABEL, 1, 1, id_top}, {NULL, 0, 0, 0, NULL}};

int cu_identity_parse(const void *buf, size_t len, const char *source,
		      struct cu_identity *out, struct stn_diag *d)
{
	struct cu_record *r = NULL;
	struct cu_identity id;
	struct stn_diag inner;
	const struct cu_section *top;
	const char *v;
	int rc;

	memset(&id, 0, sizeof(id));
	stn_diag_init(&inner);
	if ((rc = cu_record_parse(buf, len, source, &r, &inner)) ||
	    (rc = cu_record_check(r, id_rules, "station-device-1", &inner)))
		goto out;
	top = cu_record_section(r, 0);
	/* devices.md: a device without a serial number is refused. */
	if (!cu_section_get(top, "serial")) {
		rc = stn_fail(&inner, STN_E_IDENTITY, source,
			      "device reports no serial number");
		goto out;
	}
	if ((rc = cu_get_token(r, top, "serial", ID_SERIAL_CHARS,
			       ID_TOKEN_MAX, &v, &inner)))
		goto out;
	snprintf(id.serial, sizeof(id.serial), "%s", v);
	if ((rc = cu_get_str(r, top, "model", &v, &inner)))
		goto out;
	if (!printable_len_ok(v, ID_MODEL_MAX)) {
		rc = stn_fail(&inner, STN_E_IDENTITY, source,
			      "model must be 1 to 64 characters");
		goto out;
	}
	snprintf(id.model, sizeof(id.model), "%s", v);
	if (cu_section_get(top, "hardware")) {
		if ((rc = cu_get_token(r, top, "hardware", ID_HARDWARE_CHARS,
				       ID_TOKEN_MAX,
				       &v, &inner)))
			goto out;
		snprintf(id.hardware, sizeof(id.hardware), "%s", v);
	}
	if ((v = cu_section_get(top, "version"))) {
		if (!printable_len_ok(v, ID_VERSION_MAX)) {
			rc = stn_fail(&inner, STN_E_IDENTITY, source,
				      "version must be 1 to 32 characters");
			goto out;
		}
		snprintf(id.version, sizeof(id.version), "%s", v);
	}
	if (cu_section_get(top, "sequence")) {
		if ((rc = cu_get_u64(r, top, "sequence", &id.sequence, &inner)))
			goto out;
		id.has_sequence = 1;
	}
	*out = id;
out:
	if (rc)
		stn_fail(d, STN_E_IDENTITY, inner.where, "%s", inner.text);
	cu_record_free(r);
	return rc ? STN_E_IDENTITY : 0;
}

int cu_identity_set(struct cu_identity *out, const char *model,
		    const char *hardware, const char *serial,
		    const char *version, const char *source,
		    struct stn_diag *d)
{
	struct cu_identity id;

	memset(&id, 0, sizeof(id));
	/* devices.md: a device without a serial number is refused. */
	if (!serial || !serial[0])
		return stn_fail(d, STN_E_IDENTITY, source,
				"device reports no serial number");
	if (strlen(serial) > ID_TOKEN_MAX ||
	    !cu_chars_in(serial, ID_SERIAL_CHARS))
		return stn_fail(d, STN_E_IDENTITY, source,
				"serial must be 1 to %d characters of [%s]",
				ID_TOKEN_MAX, ID_SERIAL_CHARS);
	/* cu_value_ok: what a record line could carry (no control
	 * characters), which is what these strings used to go through. */
	if (!model || !cu_value_ok(model) ||
	    !printable_len_ok(model, ID_MODEL_MAX))
		return stn_fail(d, STN_E_IDENTITY, source,
				"model must be 1 to %d characters",
				ID_MODEL_MAX);
	if (hardware && hardware[0] &&
	    (strlen(hardware) > ID_TOKEN_MAX ||
	     !cu_chars_in(hardware, ID_HARDWARE_CHARS)))
		return stn_fail(d, STN_E_IDENTITY, source,
				"hardware must be 1 to %d characters of [%s]",
				ID_TOKEN_MAX, ID_HARDWARE_CHARS);
	if (version && version[0] &&
	    (!cu_value_ok(version) ||
	     !printable_len_ok(version, ID_VERSION_MAX)))
		return stn_fail(d, STN_E_IDENTITY, source,
				"version must be 1 to %d characters",
				ID_VERSION_MAX);
	snprintf(id.model, sizeof(id.model), "%s", model);
	snprintf(id.serial, sizeof(id.serial), "%s", serial);
	if (hardware)
		snprintf(id.hardware, sizeof(id.hardware), "%s", hardware);
	if (version)
		snprintf(id.version, sizeof(id.version), "%s", version);
	*out = id;
	return 0;
}
