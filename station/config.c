/* station/config.c: strict loading of station.conf (formats §8). */
#include "station/config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custody/record.h"
#include "custody/sign.h"
#include "custody/token.h"
#include "custody/trust.h"
#include "station/base/error.h"
#include "station/base/fileio.h"

static const struct cu_key_rule station_keys[] = {
	{"id", CU_REQUIRED},   {"site", CU_REQUIRED}, {"key", CU_OPTIONAL},
	{"cert", CU_OPTIONAL}, {"data", CU_REQUIRED}, {"media", CU_OPTIONAL},
	{"mount-media", CU_OPTIONAL}, {"keep-staged", CU_OPTIONAL},
	{"report-media", CU_OPTIONAL},
	{"delivery-key", CU_OPTIONAL}, {"delivery-cert", CU_OPTIONAL},
	{"signin-attempts", CU_OPTIONAL}, {"signin-lockout", CU_OPTIONAL},
	{"idle-signout", CU_OPTIONAL},
	{NULL, 0}};
static const struct cu_key_rule trust_keys[] = {
	{"anchors", CU_REQUIRED},
	{"crl", CU_OPTIONAL},
	{"release-threshold", CU_OPTIONAL},
	{"max-token-ttl", CU_OPTIONAL},
	{"max-custody-age", CU_OPTIONAL},
	{"max-custody-hops", CU_OPTIONAL},
	{"require-custody", CU_OPTIONAL},
	{"stale-crl", CU_OPTIONAL},
	{NULL, 0}};
static const struct cu_key_rule tech_keys[] = {
	{"name", CU_REQUIRED}, {"pin", CU_OPTIONAL}, {NULL, 0}};
static const struct cu_key_rule port_keys[] = {
	{"path", CU_REQUIRED},     {"baud", CU_OPTIONAL},
	{"mode", CU_OPTIONAL},     {"model", CU_OPTIONAL},
	{"hardware", CU_OPTIONAL}, {"serial", CU_OPTIONAL},
	{"flow", CU_OPTIONAL},     {"reset-timeout", CU_OPTIONAL},
	{"recovery-wait", CU_OPTIONAL}, {NULL, 0}};
static const struct cu_key_rule usb_keys[] = {
	{"request-timeout", CU_OPTIONAL},  {"busy-timeout", CU_OPTIONAL},
	{"manifest-timeout", CU_OPTIONAL}, {"reappear-timeout", CU_OPTIONAL},
	{NULL, 0}};
static const struct cu_key_rule class_keys[] = {
	{"model", CU_REQUIRED},
	{"device-anchors", CU_OPTIONAL},
	{"attestation", CU_OPTIONAL},
	{"proof", CU_OPTIONAL},
	{"release-threshold", CU_OPTIONAL},
	{"require-custody", CU_OPTIONAL},
	{"max-token-ttl", CU_OPTIONAL},
	{"max-custody-age", CU_OPTIONAL},
	{"max-custody-hops", CU_OPTIONAL},
	{"waivable", CU_OPTIONAL},
	{NULL, 0}};
static const struct cu_key_rule no_keys[] = {{NULL, 0}};
static const struct cu_section_rule conf_rules[] = {
	{"", CU_NO_LABEL, 0, 1, no_keys},
	{"station", CU_NO_LABEL, 1, 1, station_keys},
	{"trust", CU_NO_LABEL, 1, 1, trust_keys},
	{"technician", CU_LABELLED, 0, 1000, tech_keys},
	{"port", CU_LABELLED, 0, 64, port_keys},
	{"usb", CU_NO_LABEL, 0, 1, usb_keys},
	{"class", CU_LABELLED, 0, 64, class_keys},
	{NULL, 0, 0, 0, NULL}};

const char *stn_config_default_path(void)
{
	const char *env = getenv("STATION_CONFIG");
	return env && *env ? env : "/etc/station/station.conf";
}

static int conf_error(struct stn_diag *d, const struct cu_record *r,
		      const struct cu_section *s, const char *key,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* A configuration error at the line of `key` (or of its section). */
static int conf_error(struct stn_diag *d, const struct cu_record *r,
		      const struct cu_section *s, const char *key,
		      const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = cu_record_failv(d, STN_E_CONFIG, r, s, key, fmt, ap);
	va_end(ap);
	return rc;
}

/* Resolve a path value against the configuration file's directory. */
static char *conf_path(const char *confdir, const char *value)
{
	char *out = NULL;

	if (value[0] == '/')
		return strdup(value);
	if (asprintf(&out, "%s/%s", confdir, value) < 0)
		return NULL;
	return out;
}

static int dup_opt(const struct cu_section *s, const char *key, char **out)
{
	const char *v = cu_section_get(s, key);

	*out = NULL;
	if (!v)
		return 0;
	*out = strdup(v);
	return *out ? 0 : -1;
}

static int path_opt(const char *confdir, const struct cu_section *s,
		    const char *key, char **out)
{
	const char *v = cu_section_get(s, key);

	*out = NULL;
	if (!v)
		return 0;
	*out = conf_path(confdir, v);
	return *out ? 0 : -1;
}

static int must_open(struct stn_diag *d, const struct cu_record *r,
		     const struct cu_section *s, const char *key,
		     const char *path, int want_dir)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return conf_error(d, r, s, key, "cannot use %s: %s", path,
				  strerror(errno));
	if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
		return conf_error(d, r, s, key, "%s is not a %s", path,
				  want_dir ? "directory" : "regular file");
	if (access(path, R_OK) != 0)
		return conf_error(d, r, s, key, "cannot read %s: %s", path,
				  strerror(errno));
	return 0;
}

/* The station key is first used at a report export, hours into a shift:
 * a key that is no key, belongs to another certificate, or a certificate
 * that names another station must stop the station now (formats §8), not
 * then.  The certificate's role is checked with the trust store (session
 * open). */
static int check_station_key(const struct stn_config *c,
			     const struct cu_record *r,
			     const struct cu_section *s, struct stn_diag *d)
{
	struct cu_key *k = NULL;
	struct stn_diag why;
	int rc;

	stn_diag_init(&why);
	rc = cu_key_load(c->key, c->cert, &k, &why);
	if (rc == STN_E_NOMEM)
		return stn_fail(d, rc, c->key, "%s", why.text);
	if (rc) {
		/* cu_key_load names the key file in `where` for key
		 * problems; its text says what (the mismatch names the
		 * certificate). */
		return conf_error(d, r, s, "key", "station key unusable: %s "
				  "(%s)", why.text, why.where);
	}
	if (strcmp(cu_key_cn(k), c->id) != 0)
		rc = conf_error(d, r, s, "cert",
				"station certificate CN %.64s is not the "
				"station id %.64s (%s): reports and "
				"authorizations name the station by both",
				cu_key_cn(k), c->id, c->cert);
	cu_key_free(k);
	return rc;
}

static int signin_policy(const struct cu_record *r, const struct cu_section *s,
			 struct stn_config *c, struct stn_diag *d);

/* path with "//", "/./" and "/../" taken out, as text: the directories
 * need not exist yet (the appliance makes them at boot).  NULL: no
 * memory. */
static char *lexical_path(const char *path)
{
	size_t n = strlen(path), o = 0;
	char *out = malloc(n + 2);
	const char *p = path;

	if (!out)
		return NULL;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == 0 || (len == 1 && p[0] == '.')) {
			/* nothing */
		} else if (len == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else {
			out[o++] = '/';
			memcpy(out + o, p, len);
			o += len;
		}
		p += len;
		if (*p == '/')
			p++;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return out;
}


/* The same path, through symlinks where it exists (realpath), else as
 * text. */
static char *canonical_path(const char *path)
{
	char *real = realpath(path, NULL);

	return real ? real : lexical_path(path);
}

/* report-media (docs/media.md "Report sticks"): the station mounts report
 * sticks itself, so only in appliance mode; and a report stick must never
 * be a bundle source, nor the media root below a writable stick. */
static int check_report_media(const struct stn_config *c,
			      const struct cu_record *r,
			      const struct cu_section *s, struct stn_diag *d)
{
	char *rep, *med;
	int rc = 0;

	if (!c->mount_media)
		return conf_error(d, r, s, "report-media", "%s",
				  "report-media needs mount-media = yes: "
				  "the station mounts report sticks itself");
	rep = canonical_path(c->report_media);
	med = canonical_path(c->media);
	if (!rep || !med)
		rc = stn_fail(d, STN_E_NOMEM, c->path, "report-media");
	else if (stn_path_within(rep, med))
		rc = conf_error(d, r, s, "report-media",
				"report-media %s is inside media %s: a report "
				"stick must never be a bundle source",
				c->report_media, c->media);
	else if (stn_path_within(med, rep))
		rc = conf_error(d, r, s, "report-media",
				"report-media %s contains media %s: a report "
				"stick must never be a bundle source",
				c->report_media, c->media);
	free(rep);
	free(med);
	return rc;
}

static int load_station(struct stn_config *c, const struct cu_record *r,
			const char *confdir, struct stn_diag *d)
{
	const struct cu_section *s = cu_record_find(r, "station", NULL);
	const char *v;
	int rc;

	if ((rc = cu_get_token(r, s, "id", "A-Za-z0-9._-", 64, &v, d)))
		return stn_recode(d, STN_E_CONFIG);
	if (!(c->id = strdup(v)))
		return STN_E_NOMEM;
	if ((rc = cu_get_token(r, s, "site", "A-Za-z0-9._-", 64, &v, d)))
		return stn_recode(d, STN_E_CONFIG);
	if (!(c->site = strdup(v)))
		return STN_E_NOMEM;
	if (path_opt(confdir, s, "key", &c->key) ||
	    path_opt(confdir, s, "cert", &c->cert) ||
	    path_opt(confdir, s, "data", &c->data) ||
	    path_opt(confdir, s, "media", &c->media) ||
	    path_opt(confdir, s, "report-media", &c->report_media) ||
	    path_opt(confdir, s, "delivery-key", &c->delivery_key) ||
	    path_opt(confdir, s, "delivery-cert", &c->delivery_cert))
		return STN_E_NOMEM;
	if (!c->media && !(c->media = strdup("/media")))
		return STN_E_NOMEM;
	if (cu_section_get(s, "mount-media") &&
	    cu_get_bool(r, s, "mount-media", &c->mount_media, d))
		return stn_recode(d, STN_E_CONFIG);
	if (c->report_media && (rc = check_report_media(c, r, s, d)))
		return rc;
	if (cu_section_get(s, "keep-staged") &&
	    cu_get_bool(r, s, "keep-staged", &c->keep_staged, d))
		return stn_recode(d, STN_E_CONFIG);
	c->signin_attempts = 5;
	c->signin_lockout = 15 * 60;
	c->idle_signout = 10 * 60;
	if ((rc = signin_policy(r, s, c, d)))
		return rc;
	if (!c->key != !c->cert)
		return conf_error(d, r, s, c->key ? "key" : "cert",
				  "%s", "key and cert must be given together");
	if (c->key && (rc = must_open(d, r, s, "key", c->key, 0)))
		return rc;
	if (c->cert && (rc = must_open(d, r, s, "cert", c->cert, 0)))
		return rc;
	/* The delivery key (formats §10) is checked against its
	 * certificate and the trust store when the session opens
	 * (cu_delivery_load): both are needed to know the role. */
	if (!c->delivery_key != !c->delivery_cert)
		return conf_error(d, r, s,
				  c->delivery_key ? "delivery-key"
						  : "delivery-cert",
				  "%s", "delivery-key and delivery-cert must "
				  "be given together");
	if (c->delivery_key &&
	    ((rc = must_open(d, r, s, "delivery-key", c->delivery_key, 0)) ||
	     (rc = must_open(d, r, s, "delivery-cert", c->delivery_cert, 0))))
		return rc;
	return c->key ? check_station_key(c, r, s, d) : 0;
}

/* An optional count key within [lo, hi]; *out keeps its value when the
 * key is absent. */
static int count_opt(const struct cu_record *r, const struct cu_section *s,
		     const char *key, unsigned lo, unsigned hi, unsigned *out,
		     struct stn_diag *d)
{
	uint64_t u;

	if (!cu_section_get(s, key))
		return 0;
	if (cu_get_u64(r, s, key, &u, d))
		return stn_recode(d, STN_E_CONFIG);
	if (u < lo || u > hi)
		return conf_error(d, r, s, key, "%s must be %u to %u", key, lo,
				  hi);
	*out = (unsigned)u;
	return 0;
}

/* The text UI's sign-in policy (docs/decisions.md "Sign-in"): failed
 * sign-ins before a technician id is locked, for how long, and the idle
 * time after which a signed-in technician is signed out.  Bounded so that
 * a typo cannot switch the guard off. */
static int signin_policy(const struct cu_record *r, const struct cu_section *s,
			 struct stn_config *c, struct stn_diag *d)
{
	static const struct {
		const char *key;
		int64_t lo, hi;
	} spans[] = {{"signin-lockout", 60, 86400}, {"idle-signout", 60, 86400}};
	int64_t *dst[] = {&c->signin_lockout, &c->idle_signout};
	int rc;

	if ((rc = count_opt(r, s, "signin-attempts", 1, 100,
			    &c->signin_attempts, d)))
		return rc;
	for (size_t i = 0; i < sizeof(spans) / sizeof(spans[0]); i++) {
		if (!cu_section_get(s, spans[i].key))
			continue;
		if (cu_get_duration(r, s, spans[i].key, dst[i], d))
			return stn_recode(d, STN_E_CONFIG);
		if (*dst[i] < spans[i].lo || *dst[i] > spans[i].hi)
			return conf_error(d, r, s, spans[i].key,
					  "%s must be 1m to 24h", spans[i].key);
	}
	return 0;
}

/* The policy keys [trust] and [class] share; what s leaves out keeps the
 * value already in the fields (the defaults, or [trust]'s for a class). */
static int policy_keys(const struct cu_record *r, const struct cu_section *s,
		       unsigned *threshold, unsigned *hops, int64_t *token_ttl,
		       int64_t *custody_age, int *require_custody,
		       struct stn_diag *d)
{
	int rc;

	if ((rc = count_opt(r, s, "release-threshold", 1, 16, threshold, d)) ||
	    (rc = count_opt(r, s, "max-custody-hops", 1, 99, hops, d)))
		return rc;
	rc = 0;
	if (cu_section_get(s, "max-token-ttl"))
		rc = cu_get_duration(r, s, "max-token-ttl", token_ttl, d);
	if (!rc && cu_section_get(s, "max-custody-age"))
		rc = cu_get_duration(r, s, "max-custody-age", custody_age, d);
	if (!rc && cu_section_get(s, "require-custody"))
		rc = cu_get_bool(r, s, "require-custody", require_custody, d);
	return rc ? stn_recode(d, STN_E_CONFIG) : 0;
}

static int load_trust(struct stn_config *c, const struct cu_record *r,
		      const char *confdir, struct stn_diag *d)
{
	const struct cu_section *s = cu_record_find(r, "trust", NULL);
	const char *v;
	int rc;

	if (path_opt(confdir, s, "anchors", &c->anchors) ||
	    path_opt(confdir, s, "crl", &c->crl_dir))
		return STN_E_NOMEM;
	if ((rc = must_open(d, r, s, "anchors", c->anchors, 0)))
		return rc;
	if (c->crl_dir && (rc = must_open(d, r, s, "crl", c->crl_dir, 1)))
		return rc;

	c->release_threshold = STN_DEFAULT_RELEASE_THRESHOLD;
	c->max_token_ttl = STN_DEFAULT_MAX_TOKEN_TTL;
	c->max_custody_age = STN_DEFAULT_MAX_CUSTODY_AGE;
	c->max_custody_hops = STN_DEFAULT_MAX_CUSTODY_HOPS;
	c->require_custody = 1;
	c->stale_crl_refuse = 0;
	if ((rc = policy_keys(r, s, &c->release_threshold,
			      &c->max_custody_hops, &c->max_token_ttl,
			      &c->max_custody_age, &c->require_custody, d)))
		return rc;
	if ((v = cu_section_get(s, "stale-crl"))) {
		if (strcmp(v, "refuse") == 0)
			c->stale_crl_refuse = 1;
		else if (strcmp(v, "warn") != 0)
			return conf_error(d, r, s, "stale-crl", "%s",
					  "stale-crl must be warn or refuse");
	}
	return 0;
}

const char *stn_attest_policy_name(enum stn_attest_policy p)
{
	switch (p) {
	case STN_ATTEST_NONE: return "none";
	case STN_ATTEST_OPTIONAL: return "optional";
	case STN_ATTEST_REQUIRED: return "required";
	}
	return "unknown";
}

/* The policy of a device no class names (formats §8): [trust]'s. */
static int fill_default_class(struct stn_config *c)
{
	struct stn_class *k = &c->default_class;

	if (!(k->label = strdup("default")))
		return STN_E_NOMEM;
	k->attestation = STN_ATTEST_NONE;
	k->proof_required = 0;
	k->release_threshold = c->release_threshold;
	k->require_custody = c->require_custody;
	k->max_token_ttl = c->max_token_ttl;
	k->max_custody_age = c->max_custody_age;
	k->max_custody_hops = c->max_custody_hops;
	k->waivable = CU_WAIVE_ALL;
	return 0;
}

/* The device anchors are first used when a device attests, maybe hours
 * into a shift: a file that is not a usable set of CA certificates stops
 * the start instead (formats §8, "checks them when it starts"). */
static int check_device_anchors(const struct stn_class *k,
				const struct cu_record *r,
				const struct cu_section *s, struct stn_diag *d)
{
	struct cu_trust *t = NULL;
	struct stn_diag why;
	int rc;

	if ((rc = must_open(d, r, s, "device-anchors", k->device_anchors, 0)))
		return rc;
	stn_diag_init(&why);
	rc = cu_trust_load(k->device_anchors, NULL, &t, &why);
	cu_trust_free(t);
	if (rc == STN_E_NOMEM)
		return stn_fail(d, rc, k->device_anchors, "%s", why.text);
	if (rc)
		return conf_error(d, r, s, "device-anchors",
				  "device anchors of class %s unusable: "
				  "%.300s (%.200s)", k->label, why.text,
				  why.where);
	return 0;
}

/* Each model of a class's `model` line: 1 to 64 characters (as a
 * device's identity record allows), named by no class before. */
static int class_models(struct stn_config *c, struct stn_class *k,
			const struct cu_record *r, const struct cu_section *s,
			struct stn_diag *d)
{
	const char *v = cu_section_get(s, "model");
	char buf[CU_VALUE_MAX + 1];
	char *save = NULL, *w;
	size_t n = 0;

	snprintf(buf, sizeof(buf), "%s", v);
	for (w = strtok_r(buf, " \t", &save); w;
	     w = strtok_r(NULL, " \t", &save))
		n++;
	if (!n)
		return conf_error(d, r, s, "model", "class %s names no model",
				  k->label);
	if (!(k->models = calloc(n, sizeof(*k->models))))
		return STN_E_NOMEM;
	snprintf(buf, sizeof(buf), "%s", v);
	for (w = strtok_r(buf, " \t", &save); w;
	     w = strtok_r(NULL, " \t", &save)) {
		if (strlen(w) > 64)
			return conf_error(d, r, s, "model",
					  "model must be 1 to 64 characters");
		/* A model in two classes would leave the policy of its
		 * devices to the order of the file (formats §8).  k is
		 * classes[nclasses], not yet counted. */
		for (size_t i = 0; i <= c->nclasses; i++) {
			const struct stn_class *o = &c->classes[i];
			for (size_t j = 0; j < o->nmodels; j++) {
				if (strcmp(o->models[j], w) != 0)
					continue;
				if (o == k)
					return conf_error(
						d, r, s, "model",
						"model %.64s is named twice "
						"in class %s", w, k->label);
				return conf_error(
					d, r, s, "model",
					"model %.64s is named by class %s "
					"(%s:%u) and class %s: a device "
					"has one class", w, o->label,
					cu_record_name(r), o->line, k->label);
			}
		}
		if (!(k->models[k->nmodels++] = strdup(w)))
			return STN_E_NOMEM;
	}
	return 0;
}

static int load_class(struct stn_config *c, struct stn_class *k,
		      const struct cu_record *r, const struct cu_section *s,
		      const char *confdir, struct stn_diag *d)
{
	const char *v;
	int rc;

	/* What the section leaves out is [trust]'s (formats §8). */
	k->release_threshold = c->release_threshold;
	k->require_custody = c->require_custody;
	k->max_token_ttl = c->max_token_ttl;
	k->max_custody_age = c->max_custody_age;
	k->max_custody_hops = c->max_custody_hops;
	k->waivable = CU_WAIVE_ALL;
	k->line = cu_section_line(s, "model");
	if (!(k->label = strdup(s->label)))
		return STN_E_NOMEM;
	if ((rc = class_models(c, k, r, s, d)))
		return rc;
	if ((v = cu_section_get(s, "attestation"))) {
		if (strcmp(v, "required") == 0)
			k->attestation = STN_ATTEST_REQUIRED;
		else if (strcmp(v, "optional") == 0)
			k->attestation = STN_ATTEST_OPTIONAL;
		else if (strcmp(v, "none") != 0)
			return conf_error(d, r, s, "attestation", "%s",
					  "attestation must be none, optional "
					  "or required");
	}
	if ((v = cu_section_get(s, "proof"))) {
		if (strcmp(v, "required") == 0)
			k->proof_required = 1;
		else if (strcmp(v, "allowed") != 0)
			return conf_error(d, r, s, "proof", "%s",
					  "proof must be required or allowed");
	}
	if ((rc = policy_keys(r, s, &k->release_threshold,
			      &k->max_custody_hops, &k->max_token_ttl,
			      &k->max_custody_age, &k->require_custody, d)))
		return rc;
	/* `none` is ours (docs/decisions.md): a class where no token may
	 * waive anything, which §5's word list cannot say. */
	if ((v = cu_section_get(s, "waivable"))) {
		if (strcmp(v, "none") == 0)
			k->waivable = 0;
		else if (cu_waiver_parse(v, &k->waivable))
			return conf_error(d, r, s, "waivable", "%s",
					  "waivable must list downgrade, "
					  "expired, target, custody or "
					  "attestation, or be none");
	}
	if (path_opt(confdir, s, "device-anchors", &k->device_anchors))
		return STN_E_NOMEM;
	if (k->device_anchors) {
		if ((rc = check_device_anchors(k, r, s, d)))
			return rc;
	} else if (k->attestation != STN_ATTEST_NONE) {
		/* Nothing could ever attest: under `required` no device of
		 * the class could be installed, under `optional` every
		 * attestation would fail. */
		return conf_error(d, r, s, "attestation",
				  "attestation = %s in class %s needs "
				  "device-anchors: no device could prove its "
				  "identity",
				  stn_attest_policy_name(k->attestation),
				  k->label);
	}
	return 0;
}

static int load_classes(struct stn_config *c, const struct cu_record *r,
			const char *confdir, struct stn_diag *d)
{
	size_t ns = cu_record_nsections(r);
	int rc;

	if (fill_default_class(c))
		return STN_E_NOMEM;
	if (!(c->classes = calloc(ns, sizeof(*c->classes))))
		return STN_E_NOMEM;
	for (size_t i = 1; i < ns; i++) {
		const struct cu_section *s = cu_record_section(r, i);
		if (strcmp(s->name, "class") != 0)
			continue;
		/* Counted even when it fails half-filled, so that
		 * stn_config_free frees what it holds. */
		rc = load_class(c, &c->classes[c->nclasses], r, s, confdir, d);
		c->nclasses++;
		if (rc)
			return rc;
	}
	return 0;
}

/* A device timing: a duration of 1 s to 1 h, kept in milliseconds (0 when
 * the key is absent: the transport's default). */
static int timing_ms(const struct cu_record *r, const struct cu_section *s,
		     const char *key, int *out, struct stn_diag *d)
{
	int64_t v;

	if (!s || !cu_section_get(s, key))
		return 0;
	if (cu_get_duration(r, s, key, &v, d))
		return stn_recode(d, STN_E_CONFIG);
	if (v < 1 || v > 3600)
		return conf_error(d, r, s, key, "%s must be 1s to 1h", key);
	*out = (int)v * 1000;
	return 0;
}

static int load_usb(struct stn_config *c, const struct cu_record *r,
		    struct stn_diag *d)
{
	const struct cu_section *s = cu_record_find(r, "usb", NULL);
	struct stn_usb_limits *u = &c->usb;
	int rc;

	if ((rc = timing_ms(r, s, "request-timeout", &u->request_timeout_ms,
			    d)) ||
	    (rc = timing_ms(r, s, "busy-timeout", &u->busy_timeout_ms, d)) ||
	    (rc = timing_ms(r, s, "manifest-timeout", &u->manifest_timeout_ms,
			    d)) ||
	    (rc = timing_ms(r, s, "reappear-timeout", &u->reappear_timeout_ms,
			    d)))
		return rc;
	return 0;
}

/* The SMP timings of one port: only an smp port waits for a reset. */
static int port_timings(struct stn_port *p, const struct cu_record *r,
			const struct cu_section *s, struct stn_diag *d)
{
	static const char *const keys[] = {"reset-timeout", "recovery-wait"};
	int ms[2] = {0, 0};
	int rc;

	for (size_t i = 0; i < 2; i++) {
		if (cu_section_get(s, keys[i]) && p->mode != STN_PORT_SMP)
			return conf_error(d, r, s, keys[i],
					  "%s applies to mode = smp only",
					  keys[i]);
		if ((rc = timing_ms(r, s, keys[i], &ms[i], d)))
			return rc;
	}
	p->reset_timeout_ms = (unsigned)ms[0];
	p->recovery_wait_ms = (unsigned)ms[1];
	return 0;
}

/* "pbkdf2-sha256$ITER$SALTHEX$HASHHEX": checked here so a typo is found at
 * start-up, not when a technician first signs in. */
static int pin_ok(const char *v)
{
	const char *p = v;
	size_t n;

	if (strncmp(p, "pbkdf2-sha256$", 14) != 0)
		return 0;
	p += 14;
	n = strspn(p, "0123456789");
	if (n < 4 || n > 9 || p[n] != '$')
		return 0;
	p += n + 1;
	n = strspn(p, "0123456789abcdef");
	if (n < 16 || p[n] != '$')
		return 0;
	p += n + 1;
	n = strspn(p, "0123456789abcdef");
	return n == 64 && p[n] == '\0';
}

static int load_lists(struct stn_config *c, const struct cu_record *r,
		      struct stn_diag *d)
{
	size_t ns = cu_record_nsections(r);
	uint64_t u;
	const char *v;
	int rc;

	c->techs = calloc(ns, sizeof(*c->techs));
	c->ports = calloc(ns, sizeof(*c->ports));
	if (!c->techs || !c->ports)
		return STN_E_NOMEM;
	for (size_t i = 1; i < ns; i++) {
		const struct cu_section *s = cu_record_section(r, i);

		if (strcmp(s->name, "technician") == 0) {
			struct stn_technician *t = &c->techs[c->ntechs++];
			if (!(t->id = strdup(s->label)) ||
			    dup_opt(s, "name", &t->name) ||
			    dup_opt(s, "pin", &t->pin))
				return STN_E_NOMEM;
			if (t->pin && !pin_ok(t->pin))
				return conf_error(
					d, r, s, "pin", "%s",
					"pin must be pbkdf2-sha256$ITER$SALTHEX$"
					"HASHHEX (lowercase hex, 64-digit hash)");
			continue;
		}
		if (strcmp(s->name, "port") != 0)
			continue;
		struct stn_port *p = &c->ports[c->nports++];
		p->line = s->line;
		p->baud = 115200;
		if (!(p->label = strdup(s->label)) ||
		    dup_opt(s, "path", &p->path) ||
		    dup_opt(s, "model", &p->model) ||
		    dup_opt(s, "hardware", &p->hardware) ||
		    dup_opt(s, "serial", &p->serial))
			return STN_E_NOMEM;
		for (size_t k = 0; k + 1 < c->nports; k++)
			if (strcmp(c->ports[k].path, p->path) == 0)
				return conf_error(d, r, s, "path",
						  "port path %s is configured "
						  "twice", p->path);
		if (cu_section_get(s, "baud")) {
			static const unsigned bauds[] = {
				9600, 19200, 38400, 57600, 115200, 230400,
				460800, 921600};
			int ok = 0;
			if (cu_get_u64(r, s, "baud", &u, d))
				return stn_recode(d, STN_E_CONFIG);
			for (size_t b = 0; b < sizeof(bauds) / sizeof(*bauds);
			     b++)
				ok |= u == bauds[b];
			if (!ok)
				return conf_error(d, r, s, "baud", "%s",
						  "baud must be one of 9600 "
						  "19200 38400 57600 115200 "
						  "230400 460800 921600");
			p->baud = (unsigned)u;
		}
		if ((v = cu_section_get(s, "flow"))) {
			if (strcmp(v, "rtscts") == 0)
				p->rtscts = 1;
			else if (strcmp(v, "none") != 0)
				return conf_error(d, r, s, "flow", "%s",
						  "flow must be none or rtscts");
		}
		if ((v = cu_section_get(s, "mode"))) {
			if (strcmp(v, "ymodem") == 0)
				p->mode = STN_PORT_YMODEM;
			else if (strcmp(v, "smp") == 0)
				p->mode = STN_PORT_SMP;
			else if (strcmp(v, "console") != 0)
				return conf_error(d, r, s, "mode", "%s",
						  "mode must be console, "
						  "ymodem or smp");
		}
		/* A plain-YMODEM target cannot tell us who it is, so the
		 * configuration must (devices.md), with the same rules a
		 * device's own identity record follows. */
		if (p->mode == STN_PORT_YMODEM && (!p->model || !p->serial))
			return conf_error(d, r, s, NULL, "%s",
					  "a ymodem port needs model and serial");
		if (p->model && strlen(p->model) > 64)
			return conf_error(d, r, s, "model", "%s",
					  "model must be 1 to 64 characters");
		if (p->serial && (strlen(p->serial) > 64 ||
				  !cu_chars_in(p->serial, "A-Za-z0-9._:-")))
			return conf_error(d, r, s, "serial", "%s",
					  "serial must be 1 to 64 characters "
					  "of [A-Za-z0-9._:-]");
		if (p->hardware && (strlen(p->hardware) > 64 ||
				    !cu_chars_in(p->hardware, "A-Za-z0-9._-")))
			return conf_error(d, r, s, "hardware", "%s",
					  "hardware must be 1 to 64 characters "
					  "of [A-Za-z0-9._-]");
		if ((rc = port_timings(p, r, s, d)))
			return rc;
	}
	return 0;
}

int stn_config_load(const char *path, struct stn_config **out,
		    struct stn_diag *d)
{
	struct cu_record *r = NULL;
	struct stn_config *c = NULL;
	char *confdir = NULL, *slash;
	int rc;

	rc = cu_record_load(path, &r, d);
	if (rc) {
		/* Every problem reading station.conf is a configuration
		 * error (exit 2), whatever the record layer called it. */
		if (d && d->code)
			stn_recode(d, STN_E_CONFIG);
		return STN_E_CONFIG;
	}
	rc = cu_record_check(r, conf_rules, NULL, d);
	if (rc) {
		rc = stn_recode(d, STN_E_CONFIG);
		goto out;
	}
	c = calloc(1, sizeof(*c));
	confdir = strdup(path);
	if (!c || !confdir || !(c->path = strdup(path))) {
		rc = stn_fail(d, STN_E_NOMEM, path, "loading configuration");
		goto out;
	}
	slash = strrchr(confdir, '/');
	if (slash)
		*slash = slash == confdir ? (slash[1] = '\0', '/') : '\0';
	else
		strcpy(confdir, ".");
	if ((rc = load_station(c, r, confdir, d)) ||
	    (rc = load_trust(c, r, confdir, d)) ||
	    (rc = load_lists(c, r, d)) || (rc = load_usb(c, r, d)) ||
	    (rc = load_classes(c, r, confdir, d))) {
		if (rc == STN_E_NOMEM)
			stn_fail(d, rc, path, "loading configuration");
		goto out;
	}
	*out = c;
	c = NULL;
out:
	free(confdir);
	stn_config_free(c);
	cu_record_free(r);
	return rc;
}

static void class_fini(struct stn_class *k)
{
	for (size_t i = 0; i < k->nmodels; i++)
		free(k->models[i]);
	free(k->models);
	free(k->label);
	free(k->device_anchors);
}

void stn_config_free(struct stn_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->ntechs; i++) {
		free(c->techs[i].id);
		free(c->techs[i].name);
		free(c->techs[i].pin);
	}
	for (size_t i = 0; i < c->nports; i++) {
		free(c->ports[i].label);
		free(c->ports[i].path);
		free(c->ports[i].model);
		free(c->ports[i].hardware);
		free(c->ports[i].serial);
	}
	for (size_t i = 0; i < c->nclasses; i++)
		class_fini(&c->classes[i]);
	class_fini(&c->default_class);
	free(c->classes);
	free(c->techs);
	free(c->ports);
	free(c->path);
	free(c->id);
	free(c->site);
	free(c->key);
	free(c->cert);
	free(c->delivery_key);
	free(c->delivery_cert);
	free(c->data);
	free(c->media);
	free(c->report_media);
	free(c->anchors);
	free(c->crl_dir);
	free(c);
}

const struct stn_technician *stn_config_technician(const struct stn_config *c,
						   const char *id)
{
	for (size_t i = 0; i < c->ntechs; i++)
		if (strcmp(c->techs[i].id, id) == 0)
			return &c->techs[i];
	return NULL;
}

const struct stn_port *stn_config_port(const struct stn_config *c,
				       const char *path)
{
	for (size_t i = 0; i < c->nports; i++)
		if (strcmp(c->ports[i].path, path) == 0)
			return &c->ports[i];
	return NULL;
}

const struct stn_class *stn_config_class(const struct stn_config *c,
					 const char *model)
{
	for (size_t i = 0; i < c->nclasses; i++)
		for (size_t j = 0; j < c->classes[i].nmodels; j++)
			if (strcmp(c->classes[i].models[j], model) == 0)
				return &c->classes[i];
	return &c->default_class;
}
