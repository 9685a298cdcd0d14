/* transport/sim_identity.c: the device side of formats §9 for the
 * simulators (sim_identity.h), over OpenSSL's libcrypto so that it shares
 * no code with the station's mbedTLS checks: a station that accepts what
 * this signs, and a simulator that accepts what the station signs, agree
 * on plain §2 signatures (DER, SHA-256 over the record's exact bytes). */
#include "transport/sim_identity.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "station/base/error.h"
#include "station/base/fileio.h"
#include "station/base/hex.h"
#include "station/base/rfc3339.h"
#include "station/base/sha256.h"
#include "transport/devmsg.h"

/* formats §2: role OIDs live under this UUID arc; `.4` is the station. */
#define ROLE_ARC "2.25.220105586949796384984797284338591255574"
#define STATION_ROLE ROLE_ARC ".4"
#define NONCE_LEN 32
#define NONCE_HEX (2 * NONCE_LEN)
#define AUTHZ_TTL 600    /* formats §9: expires 10 minutes after issue */
#define AUTHZ_IMAGES 64  /* as many as a manifest may name */
#define PEM_MAX (64 * 1024)

struct sim_image {
	unsigned slot;
	uint64_t size;
	uint8_t sha256[CU_SHA256_LEN];
};

struct sim_identity {
	EVP_PKEY *key;   /* the device key */
	EVP_PKEY *wrong; /* SIM_ID_WRONG_KEY: a fresh key the cert lacks */
	X509_STORE *anchors;
	size_t ncerts;
	uint8_t *cert[TP_MSG_CERTS_MAX]; /* DER, leaf first */
	size_t cert_len[TP_MSG_CERTS_MAX];
	unsigned faults;
	/* This session: set by sim_id_attest. */
	int attested;
	char nonce_hex[NONCE_HEX + 1];     /* the station's, as attested */
	char challenge_hex[NONCE_HEX + 1]; /* ours */
	/* SIM_ID_REPLAY: the first attestation ever made, and its words. */
	struct tp_signed_msg *first;
	char first_nonce[NONCE_HEX + 1], first_challenge[NONCE_HEX + 1];
	/* The kept authorization. */
	int authorized;
	size_t nimages;
	struct sim_image images[AUTHZ_IMAGES];
};

static void say(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* libcrypto's newest error, for a message; clears the queue. */
static const char *ssl_cause(void)
{
	static __thread char buf[160];
	unsigned long e = ERR_peek_last_error();

	if (!e)
		snprintf(buf, sizeof(buf), "no detail");
	else
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

int sim_id_fault_parse(const char *name, unsigned *bit)
{
	static const struct {
		const char *name;
		unsigned bit;
	} faults[] = {
		{"wrong-key", SIM_ID_WRONG_KEY},
		{"replay", SIM_ID_REPLAY},
		{"lying-receipt", SIM_ID_LYING_RECEIPT},
		{"refuse-auth", SIM_ID_REFUSE_AUTH},
	};

	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		if (strcmp(name, faults[i].name) == 0) {
			*bit = faults[i].bit;
			return 0;
		}
	return -1;
}

/*
 * PEM input: text that starts with "-----BEGIN" is the PEM itself, else a
 * file's path.  A file is read into a buffer of ours (not stdio's), so that
 * a key's PEM can be wiped when it has been parsed.
 */
struct pem_src {
	char *buf; /* the file's bytes, or NULL for inline text */
	size_t len;
	BIO *bio;
};

static int pem_open(const char *src, struct pem_src *p, const char *what,
		    char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	if (strncmp(src, "-----BEGIN", 10) == 0) {
		p->bio = BIO_new_mem_buf(src, -1);
	} else {
		int fd = open(src, O_RDONLY | O_CLOEXEC);
		int rc = fd < 0 ? -1 : stn_read_all(fd, PEM_MAX, &p->buf,
						    &p->len);
		int e = errno;
		if (fd >= 0)
			close(fd);
		if (rc) {
			say(err, errlen, "cannot read the %s %s: %s", what,
			    src, strerror(e));
			return -1;
		}
		p->bio = BIO_new_mem_buf(p->buf, (int)p->len);
	}
	if (!p->bio) {
		say(err, errlen, "out of memory reading the %s", what);
		if (p->buf) {
			OPENSSL_cleanse(p->buf, p->len);
			free(p->buf);
		}
		return -1;
	}
	return 0;
}

static void pem_close(struct pem_src *p)
{
	BIO_free(p->bio);
	if (p->buf) {
		OPENSSL_cleanse(p->buf, p->len);
		free(p->buf);
	}
	memset(p, 0, sizeof(*p));
}

/* Every certificate of a PEM source, in order; 0 when none. */
static STACK_OF(X509) *pem_certs(BIO *bio)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	X509 *x;

	if (!sk)
		return NULL;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)))
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			sk_X509_pop_free(sk, X509_free);
			return NULL;
		}
	ERR_clear_error(); /* the end of the input reads as "no start line" */
	return sk;
}

void sim_id_free(struct sim_identity *s)
{
	if (!s)
		return;
	EVP_PKEY_free(s->key);
	EVP_PKEY_free(s->wrong);
	X509_STORE_free(s->anchors);
	for (size_t i = 0; i < s->ncerts; i++)
		free(s->cert[i]);
	free(s->first);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

int sim_id_load(const char *key_pem, const char *chain_pem,
		const char *anchor_pem, unsigned faults,
		struct sim_identity **out, char *err, size_t errlen)
{
	struct sim_identity *s = calloc(1, sizeof(*s));
	struct pem_src p;
	STACK_OF(X509) *chain = NULL, *anchors = NULL;
	int rc = -1;

	*out = NULL;
	if (!s) {
		say(err, errlen, "out of memory");
		return -1;
	}
	s->faults = faults;
	if (pem_open(key_pem, &p, "device key", err, errlen))
		goto out;
	s->key = PEM_read_bio_PrivateKey(p.bio, NULL, NULL, NULL);
	pem_close(&p);
	if (!s->key) {
		say(err, errlen, "the device key is not a PEM private key: %s",
		    ssl_cause());
		goto out;
	}

	if (pem_open(chain_pem, &p, "certificate chain", err, errlen))
		goto out;
	chain = pem_certs(p.bio);
	pem_close(&p);
	if (!chain || sk_X509_num(chain) < 1 ||
	    sk_X509_num(chain) > TP_MSG_CERTS_MAX) {
		say(err, errlen, "the certificate chain must hold 1 to %d PEM "
		    "certificates", TP_MSG_CERTS_MAX);
		goto out;
	}
	/* Only the wrong-key fault signs with a key the certificate lacks. */
	if (X509_check_private_key(sk_X509_value(chain, 0), s->key) != 1) {
		say(err, errlen, "the device key does not match the chain's "
		    "first certificate");
		ERR_clear_error();
		goto out;
	}
	for (int i = 0; i < sk_X509_num(chain); i++) {
		unsigned char *der = NULL;
		int n = i2d_X509(sk_X509_value(chain, i), &der);
		if (n <= 0 || n > TP_MSG_CERT_MAX) {
			OPENSSL_free(der);
			say(err, errlen, "certificate %d of the chain is over "
			    "%d bytes DER or cannot be encoded", i + 1,
			    TP_MSG_CERT_MAX);
			goto out;
		}
		s->cert[s->ncerts] = malloc((size_t)n);
		if (!s->cert[s->ncerts]) {
			OPENSSL_free(der);
			say(err, errlen, "out of memory");
			goto out;
		}
		memcpy(s->cert[s->ncerts], der, (size_t)n);
		OPENSSL_free(der);
		s->cert_len[s->ncerts++] = (size_t)n;
	}

	if (pem_open(anchor_pem, &p, "fleet anchor", err, errlen))
		goto out;
	anchors = pem_certs(p.bio);
	pem_close(&p);
	if (!anchors || sk_X509_num(anchors) < 1) {
		say(err, errlen, "the fleet anchor file holds no PEM "
		    "certificate");
		goto out;
	}
	if (!(s->anchors = X509_STORE_new())) {
		say(err, errlen, "out of memory");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(anchors); i++)
		if (X509_STORE_add_cert(s->anchors,
					sk_X509_value(anchors, i)) != 1) {
			say(err, errlen, "fleet anchor %d: %s", i + 1,
			    ssl_cause());
			goto out;
		}

	if (faults & SIM_ID_WRONG_KEY) {
		s->wrong = EVP_EC_gen("P-256");
		if (!s->wrong) {
			say(err, errlen, "cannot make the wrong key: %s",
			    ssl_cause());
			goto out;
		}
	}
	*out = s;
	s = NULL;
	rc = 0;
out:
	sk_X509_pop_free(chain, X509_free);
	sk_X509_pop_free(anchors, X509_free);
	sim_id_free(s);
	return rc;
}

/* DER signature over SHA-256 of data, as `openssl dgst -sha256 -sign`
 * makes it (ECDSA: the DER SEQUENCE of r and s; RSA: PKCS #1 v1.5). */
static int sign(EVP_PKEY *k, const char *data, size_t len, uint8_t *sig,
		size_t cap, size_t *sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t n = 0;
	int rc = -1;

	if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) != 1 ||
	    EVP_DigestSign(ctx, NULL, &n, (const unsigned char *)data,
			   len) != 1 || n > cap ||
	    EVP_DigestSign(ctx, sig, &n, (const unsigned char *)data,
			   len) != 1)
		goto out;
	*sig_len = n;
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

/* One "key = value" line into m's record (tp_msg_take checks it). */
static int add_line(struct tp_signed_msg *m, const char *key,
		    const char *value)
{
	char line[1200];
	struct stn_diag d;
	int n = snprintf(line, sizeof(line), "%s = %s", key, value);

	stn_diag_init(&d);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -1;
	return tp_msg_take(m, line, (size_t)n, "record", &d) ? -1 : 0;
}

/* Sign m's record (with the wrong key under that fault) and add certs. */
static int seal(const struct sim_identity *s, struct tp_signed_msg *m,
		int with_certs)
{
	EVP_PKEY *k = (s->faults & SIM_ID_WRONG_KEY) ? s->wrong : s->key;

	if (sign(k, m->record, m->record_len, m->sig, sizeof(m->sig),
		 &m->sig_len))
		return -1;
	m->has_sig = 1;
	for (size_t i = 0; with_certs && i < s->ncerts; i++) {
		memcpy(m->cert[i], s->cert[i], s->cert_len[i]);
		m->cert_len[i] = s->cert_len[i];
		m->ncerts = i + 1;
	}
	return 0;
}

/* m's lines, then `tail` (may be NULL), each ended by eol, malloc'd. */
static int render(const struct tp_signed_msg *m, const char *tail,
		  const char *eol, char **out, size_t *len)
{
	struct stn_diag d;
	char *text, *more;
	size_t n, tl = tail ? strlen(tail) : 0, el = strlen(eol);

	stn_diag_init(&d);
	if (tp_msg_format(m, eol, &text, &n, &d))
		return -1;
	if (tail) {
		if (!(more = realloc(text, n + tl + el + 1))) {
			free(text);
			return -1;
		}
		text = more;
		memcpy(text + n, tail, tl);
		memcpy(text + n + tl, eol, el);
		n += tl + el;
		text[n] = '\0';
	}
	*out = text;
	*len = n;
	return 0;
}

/* "error TEXT" ended by eol, malloc'd. */
static int error_answer(const char *text, const char *eol, char **out,
			size_t *len)
{
	size_t n = strlen("error ") + strlen(text) + strlen(eol);
	char *buf = malloc(n + 1);

	if (!buf)
		return -1;
	snprintf(buf, n + 1, "error %s%s", text, eol);
	*out = buf;
	*len = n;
	return 0;
}

static int is_hex64(const char *s)
{
	uint8_t b[NONCE_LEN];

	return strlen(s) == NONCE_HEX && cu_hex_parse(s, NONCE_LEN, b) == 0;
}

static void forget_authorization(struct sim_identity *s)
{
	s->authorized = 0;
	s->nimages = 0;
}

/* The station-attest-1 record for this session's nonce and challenge. */
static int make_attestation(const struct sim_identity *s,
			    const struct sim_id_claim *c,
			    struct tp_signed_msg *m)
{
	char seq[24];

	tp_msg_init(m);
	if (add_line(m, "format", "station-attest-1") ||
	    add_line(m, "model", c->model) ||
	    (c->hardware && add_line(m, "hardware", c->hardware)) ||
	    add_line(m, "serial", c->serial))
		return -1;
	if (c->has_sequence) {
		snprintf(seq, sizeof(seq), "%llu",
			 (unsigned long long)c->sequence);
		if (add_line(m, "sequence", seq))
			return -1;
	}
	if ((c->version && add_line(m, "version", c->version)) ||
	    add_line(m, "nonce", s->nonce_hex) ||
	    add_line(m, "challenge", s->challenge_hex))
		return -1;
	return seal(s, m, 1);
}

int sim_id_attest(struct sim_identity *s, const struct sim_id_claim *c,
		  const char *nonce_hex, const char *eol, char **out,
		  size_t *len)
{
	struct tp_signed_msg *m;
	uint8_t ch[NONCE_LEN];
	int rc;

	*out = NULL;
	*len = 0;
	/* A new attestation is a new session: what was authorized before is
	 * not authorized now. */
	forget_authorization(s);
	s->attested = 0;
	if ((s->faults & SIM_ID_REPLAY) && s->first) {
		/* Ignore the nonce: the old answer, with its old words. */
		memcpy(s->nonce_hex, s->first_nonce, sizeof(s->nonce_hex));
		memcpy(s->challenge_hex, s->first_challenge,
		       sizeof(s->challenge_hex));
		s->attested = 1;
		return render(s->first, "ok", eol, out, len);
	}
	if (!is_hex64(nonce_hex))
		return error_answer("bad nonce", eol, out, len);
	if (RAND_bytes(ch, sizeof(ch)) != 1) {
		ERR_clear_error();
		return error_answer("no randomness for a challenge", eol, out,
				    len);
	}
	memcpy(s->nonce_hex, nonce_hex, NONCE_HEX + 1);
	cu_hex(ch, sizeof(ch), s->challenge_hex);
	if (!(m = malloc(sizeof(*m))))
		return -1;
	if (make_attestation(s, c, m)) {
		free(m);
		return error_answer("cannot make the attestation", eol, out,
				    len);
	}
	s->attested = 1;
	rc = render(m, "ok", eol, out, len);
	if (rc == 0 && (s->faults & SIM_ID_REPLAY)) {
		s->first = m; /* the answer replayed from now on */
		memcpy(s->first_nonce, s->nonce_hex, sizeof(s->first_nonce));
		memcpy(s->first_challenge, s->challenge_hex,
		       sizeof(s->first_challenge));
		return 0;
	}
	free(m);
	return rc;
}

/* ---- the authorization: formats §1 text, station-install-1 (§9) ---- */

#define TOP_KEYS 10
static const char *const top_keys[TOP_KEYS] = {
	"format", "station", "site", "technician", "device",
	"challenge", "bundle", "sequence", "issued", "expires",
};
#define IMG_KEYS 3
static const char *const img_keys[IMG_KEYS] = {"slot", "size", "sha256"};

struct authz {
	const char *top[TOP_KEYS];
	size_t nimg;
	const char *label[AUTHZ_IMAGES];
	const char *img[AUTHZ_IMAGES][IMG_KEYS];
};

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Trim blanks from both ends of [p, end) in place; returns the start. */
static char *trim(char *p, char *end)
{
	while (p < end && is_blank(*p))
		p++;
	while (end > p && is_blank(end[-1]))
		end--;
	*end = '\0';
	return p;
}

/* Keys [a-z][a-z0-9-]{0,31}; labels [a-z0-9][a-z0-9-]{0,31} (§1). */
static int name_ok(const char *s, int digit_first)
{
	size_t n = strlen(s);

	if (n < 1 || n > 32 ||
	    !((s[0] >= 'a' && s[0] <= 'z') ||
	      (digit_first && s[0] >= '0' && s[0] <= '9')))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

static int key_index(const char *const *keys, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(keys[i], key) == 0)
			return (int)i;
	return -1;
}

/*
 * Parse text (a private copy: tokens point into it) as §1 says, against
 * the station-install-1 schema: `format` first, each top key once and
 * required, `[image LABEL]` sections with slot, size and sha256 once each,
 * x- keys ignored, anything else refused.
 */
static int authz_parse(char *text, struct authz *a, char *err, size_t errlen)
{
	char *p = text;
	unsigned lineno = 0;
	int in_image = 0, seen_key = 0;

	memset(a, 0, sizeof(*a));
	while (*p) {
		char *nl = strchr(p, '\n');
		char *end = nl ? nl : p + strlen(p);
		char *line, *eq, *key, *value;
		const char **slot;
		int k;

		lineno++;
		line = trim(p, end);
		p = nl ? nl + 1 : end;
		if (!*line || *line == '#')
			continue;
		if (*line == '[') {
			size_t n = strlen(line);
			char *name, *label, *sp;
			if (line[n - 1] != ']') {
				say(err, errlen, "authorization line %u: bad "
				    "section header", lineno);
				return -1;
			}
			name = trim(line + 1, line + n - 1);
			for (sp = name; *sp && !is_blank(*sp); sp++)
				;
			label = *sp ? trim(sp, sp + strlen(sp)) : sp;
			*sp = '\0';
			if (strcmp(name, "image") || !name_ok(label, 1)) {
				say(err, errlen, "authorization line %u: "
				    "unknown section (want [image LABEL])",
				    lineno);
				return -1;
			}
			if (!seen_key) {
				say(err, errlen, "the authorization's first "
				    "key is not format");
				return -1;
			}
			for (size_t i = 0; i < a->nimg; i++)
				if (strcmp(a->label[i], label) == 0) {
					say(err, errlen, "authorization: "
					    "[image %s] given twice", label);
					return -1;
				}
			if (a->nimg == AUTHZ_IMAGES) {
				say(err, errlen, "authorization: more than "
				    "%d images", AUTHZ_IMAGES);
				return -1;
			}
			a->label[a->nimg++] = label;
			in_image = 1;
			continue;
		}
		if (!(eq = strchr(line, '='))) {
			say(err, errlen, "authorization line %u: not a key = "
			    "value line", lineno);
			return -1;
		}
		key = trim(line, eq);
		value = trim(eq + 1, eq + 1 + strlen(eq + 1));
		if (!name_ok(key, 0)) {
			say(err, errlen, "authorization line %u: bad key",
			    lineno);
			return -1;
		}
		if (!*value || strlen(value) > 1024) {
			say(err, errlen, "authorization line %u: value must "
			    "be 1 to 1024 characters", lineno);
			return -1;
		}
		if (!seen_key && (strcmp(key, "format") ||
				  strcmp(value, "station-install-1"))) {
			say(err, errlen, "not a station-install-1 "
			    "authorization (format must come first)");
			return -1;
		}
		seen_key = 1;
		if (strncmp(key, "x-", 2) == 0)
			continue; /* vendor extension (§1) */
		if (in_image) {
			k = key_index(img_keys, IMG_KEYS, key);
			slot = k < 0 ? NULL : &a->img[a->nimg - 1][k];
		} else {
			k = key_index(top_keys, TOP_KEYS, key);
			slot = k < 0 ? NULL : &a->top[k];
		}
		if (!slot && in_image) {
			say(err, errlen, "authorization: unknown key %s in "
			    "[image %s]", key, a->label[a->nimg - 1]);
			return -1;
		}
		if (!slot) {
			say(err, errlen, "authorization: unknown key %s", key);
			return -1;
		}
		if (*slot) {
			say(err, errlen, "authorization: key %s given twice",
			    key);
			return -1;
		}
		*slot = value;
	}
	for (int i = 0; i < TOP_KEYS; i++)
		if (!a->top[i]) {
			say(err, errlen, "authorization: missing key %s",
			    top_keys[i]);
			return -1;
		}
	if (a->nimg == 0) {
		say(err, errlen, "authorization names no image");
		return -1;
	}
	for (size_t i = 0; i < a->nimg; i++)
		for (int k = 0; k < IMG_KEYS; k++)
			if (!a->img[i][k]) {
				say(err, errlen, "authorization: [image %s] "
				    "has no %s", a->label[i], img_keys[k]);
				return -1;
			}
	return 0;
}

/* Decimal without sign or leading zeros (one spelling per number). */
static int parse_u64(const char *v, uint64_t max, uint64_t *out)
{
	uint64_t n = 0;

	if (!*v || (v[0] == '0' && v[1]))
		return -1;
	for (; *v; v++) {
		if (*v < '0' || *v > '9')
			return -1;
		unsigned dgt = (unsigned)(*v - '0');
		if (n > (max - dgt) / 10)
			return -1;
		n = n * 10 + dgt;
	}
	*out = n;
	return 0;
}

/* The leaf's EKU holds the station role and no other role of the arc
 * (formats §2: one key, one duty). */
static int station_role(X509 *leaf, char *err, size_t errlen)
{
	EXTENDED_KEY_USAGE *eku;
	int has = 0, other = 0, crit = 0;

	eku = X509_get_ext_d2i(leaf, NID_ext_key_usage, &crit, NULL);
	if (!eku) {
		ERR_clear_error();
		say(err, errlen, "the authorization's signer holds no role "
		    "(no extended key usage)");
		return -1;
	}
	for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
		char oid[128];
		int n = OBJ_obj2txt(oid, sizeof(oid),
				    sk_ASN1_OBJECT_value(eku, i), 1);
		if (n <= 0 || (size_t)n >= sizeof(oid))
			continue;
		if (strcmp(oid, STATION_ROLE) == 0)
			has = 1;
		else if (strncmp(oid, ROLE_ARC ".", sizeof(ROLE_ARC)) == 0)
			other = 1;
	}
	EXTENDED_KEY_USAGE_free(eku);
	if (!has) {
		say(err, errlen, "the authorization's signer does not hold "
		    "the station role");
		return -1;
	}
	if (other) {
		say(err, errlen, "the authorization's signer holds more "
		    "than one role");
		return -1;
	}
	return 0;
}

/* Certificates of m as X509s, leaf first. */
static STACK_OF(X509) *msg_certs(const struct tp_signed_msg *m, char *err,
				 size_t errlen)
{
	STACK_OF(X509) *sk = sk_X509_new_null();

	if (!sk) {
		say(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < m->ncerts; i++) {
		const unsigned char *p = m->cert[i];
		X509 *x = d2i_X509(NULL, &p, (long)m->cert_len[i]);
		if (!x || p != m->cert[i] + m->cert_len[i] ||
		    !sk_X509_push(sk, x)) {
			X509_free(x);
			ERR_clear_error();
			say(err, errlen, "the authorization's certificate "
			    "%zu is not one DER certificate", i + 1);
			sk_X509_pop_free(sk, X509_free);
			return NULL;
		}
	}
	return sk;
}

/* The signature over the record with the leaf's key, then the chain to
 * the fleet anchor at `now`, then the role. */
static int authz_signer(const struct sim_identity *s,
			const struct tp_signed_msg *m, int64_t now, char *err,
			size_t errlen)
{
	STACK_OF(X509) *certs = msg_certs(m, err, errlen);
	X509_STORE_CTX *ctx = NULL;
	EVP_MD_CTX *md = NULL;
	X509 *leaf;
	EVP_PKEY *pub;
	int rc = -1;

	if (!certs)
		return -1;
	leaf = sk_X509_value(certs, 0);
	pub = X509_get0_pubkey(leaf);
	if (!pub || !(md = EVP_MD_CTX_new()) ||
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) != 1 ||
	    EVP_DigestVerify(md, m->sig, m->sig_len,
			     (const unsigned char *)m->record,
			     m->record_len) != 1) {
		say(err, errlen, "the authorization's signature does not "
		    "verify");
		goto out;
	}
	if (X509_check_ca(leaf) != 0) {
		say(err, errlen, "the authorization's signer is a CA");
		goto out;
	}
	if (!(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE)) {
		say(err, errlen, "the authorization's signer lacks key usage "
		    "digitalSignature");
		goto out;
	}
	if (station_role(leaf, err, errlen))
		goto out;
	if (!(ctx = X509_STORE_CTX_new()) ||
	    X509_STORE_CTX_init(ctx, s->anchors, leaf, certs) != 1) {
		say(err, errlen, "out of memory checking the chain");
		goto out;
	}
	X509_STORE_CTX_set_time(ctx, 0, (time_t)now);
	if (X509_verify_cert(ctx) != 1) {
		say(err, errlen, "the authorization's signer does not chain "
		    "to the fleet anchor: %s",
		    X509_verify_cert_error_string(
			    X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
	rc = 0;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	EVP_MD_CTX_free(md);
	sk_X509_pop_free(certs, X509_free);
	return rc;
}

/* Lines of block (LF or CR LF ended, the last may lack it) into m. */
static int take_block(struct tp_signed_msg *m, const char *block, size_t len,
		      char *err, size_t errlen)
{
	struct stn_diag d;
	size_t pos = 0;

	stn_diag_init(&d);
	tp_msg_init(m);
	while (pos < len) {
		const char *line = block + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;
		pos += n + (nl ? 1 : 0);
		if (n && line[n - 1] == '\r')
			n--;
		if (tp_msg_take(m, line, n, "authorization", &d)) {
			say(err, errlen, "bad authorization: %.200s", d.text);
			return -1;
		}
	}
	if (!tp_msg_complete(m)) {
		say(err, errlen, "the authorization is not signed");
		return -1;
	}
	if (m->ncerts == 0) {
		say(err, errlen, "the authorization carries no certificate");
		return -1;
	}
	return 0;
}

static int authz_judge(struct sim_identity *s, const struct sim_id_claim *c,
		       const struct tp_signed_msg *m, char *text,
		       int64_t now, char *err, size_t errlen)
{
	struct authz a;
	int64_t issued, expires;
	uint64_t u;

	if (authz_parse(text, &a, err, errlen) ||
	    authz_signer(s, m, now, err, errlen))
		return -1;
	if (strcmp(a.top[4], c->serial) != 0) {
		say(err, errlen, "the authorization is for device %.64s, not "
		    "this one", a.top[4]);
		return -1;
	}
	if (strcmp(a.top[5], s->challenge_hex) != 0) {
		say(err, errlen, "the authorization's challenge is not this "
		    "session's");
		return -1;
	}
	if (parse_u64(a.top[7], UINT64_MAX, &u)) {
		say(err, errlen, "authorization: sequence is not a number");
		return -1;
	}
	if (cu_time_parse(a.top[8], &issued) ||
	    cu_time_parse(a.top[9], &expires)) {
		say(err, errlen, "authorization: issued and expires must be "
		    "RFC 3339 UTC times");
		return -1;
	}
	if (expires <= issued || expires - issued > AUTHZ_TTL) {
		say(err, errlen, "the authorization's lifetime is not within "
		    "%d seconds", AUTHZ_TTL);
		return -1;
	}
	if (now < issued) {
		say(err, errlen, "the authorization is not yet valid");
		return -1;
	}
	if (now >= expires) {
		say(err, errlen, "the authorization has expired");
		return -1;
	}
	for (size_t i = 0; i < a.nimg; i++) {
		struct sim_image *im = &s->images[i];
		if (parse_u64(a.img[i][0], UINT32_MAX, &u)) {
			say(err, errlen, "authorization: [image %s] slot is "
			    "not a number", a.label[i]);
			return -1;
		}
		im->slot = (unsigned)u;
		if (parse_u64(a.img[i][1], UINT64_MAX, &im->size) ||
		    cu_digest_parse(a.img[i][2], im->sha256)) {
			say(err, errlen, "authorization: [image %s] size or "
			    "sha256 is malformed", a.label[i]);
			return -1;
		}
		for (size_t j = 0; j < i; j++)
			if (s->images[j].slot == im->slot) {
				say(err, errlen, "authorization: slot %u "
				    "named twice", im->slot);
				return -1;
			}
	}
	s->nimages = a.nimg;
	s->authorized = 1;
	return 0;
}

int sim_id_authorize(struct sim_identity *s, const struct sim_id_claim *c,
		     const char *block, size_t len, int64_t now, char *err,
		     size_t errlen)
{
	struct tp_signed_msg *m;
	char *text = NULL;
	int rc = -1;

	forget_authorization(s); /* a failed attempt leaves none behind */
	if (s->faults & SIM_ID_REFUSE_AUTH) {
		say(err, errlen, "authorization refused");
		return -1;
	}
	if (!s->attested) {
		say(err, errlen, "no attestation in this session");
		return -1;
	}
	if (!(m = malloc(sizeof(*m)))) {
		say(err, errlen, "out of memory");
		return -1;
	}
	if (take_block(m, block, len, err, errlen))
		goto out;
	if (!(text = strdup(m->record))) {
		say(err, errlen, "out of memory");
		goto out;
	}
	rc = authz_judge(s, c, m, text, now, err, errlen);
	if (rc)
		forget_authorization(s);
out:
	free(text);
	free(m);
	return rc;
}

static const struct sim_image *authorized(const struct sim_identity *s,
					  unsigned slot)
{
	for (size_t i = 0; s->authorized && i < s->nimages; i++)
		if (s->images[i].slot == slot)
			return &s->images[i];
	return NULL;
}

int sim_id_may_receive(const struct sim_identity *s, unsigned slot,
		       uint64_t size, char *err, size_t errlen)
{
	const struct sim_image *im = authorized(s, slot);

	if (!s->authorized) {
		say(err, errlen, "no authorization");
		return -1;
	}
	if (!im) {
		say(err, errlen, "slot %u not authorized", slot);
		return -1;
	}
	if (im->size != size) {
		say(err, errlen, "size differs from the authorization");
		return -1;
	}
	return 0;
}

int sim_id_check_stored(const struct sim_identity *s, unsigned slot,
			const uint8_t sha256[32], char *err, size_t errlen)
{
	const struct sim_image *im = authorized(s, slot);

	if (!s->authorized) {
		say(err, errlen, "no authorization");
		return -1;
	}
	if (!im) {
		say(err, errlen, "slot %u not authorized", slot);
		return -1;
	}
	if (memcmp(im->sha256, sha256, CU_SHA256_LEN) != 0) {
		say(err, errlen, "what was stored differs from the "
		    "authorized image");
		return -1;
	}
	return 0;
}

int sim_id_receipt(struct sim_identity *s, const struct sim_id_claim *c,
		   unsigned slot, uint64_t size, const uint8_t sha256[32],
		   const char *eol, char **out, size_t *len, char *err,
		   size_t errlen)
{
	struct tp_signed_msg *m;
	char num[24], hex[CU_SHA256_HEX_LEN + 1];
	int rc = -1;

	*out = NULL;
	*len = 0;
	if (!s->attested) {
		say(err, errlen, "no attestation in this session");
		return -1;
	}
	if (s->faults & SIM_ID_LYING_RECEIPT) {
		const struct sim_image *im = authorized(s, slot);
		if (!im) {
			say(err, errlen, "slot %u not authorized", slot);
			return -1;
		}
		size = im->size; /* the lie: what was asked, not stored */
		sha256 = im->sha256;
	}
	if (!(m = malloc(sizeof(*m)))) {
		say(err, errlen, "out of memory");
		return -1;
	}
	tp_msg_init(m);
	if (add_line(m, "format", "station-receipt-1") ||
	    add_line(m, "device", c->serial) ||
	    add_line(m, "nonce", s->nonce_hex) ||
	    add_line(m, "challenge", s->challenge_hex))
		goto bad;
	snprintf(num, sizeof(num), "%u", slot);
	if (add_line(m, "slot", num))
		goto bad;
	snprintf(num, sizeof(num), "%llu", (unsigned long long)size);
	cu_hex(sha256, CU_SHA256_LEN, hex);
	if (add_line(m, "size", num) || add_line(m, "sha256", hex) ||
	    seal(s, m, 0))
		goto bad;
	if (render(m, NULL, eol, out, len)) {
		say(err, errlen, "out of memory");
		goto out;
	}
	rc = 0;
	goto out;
bad:
	say(err, errlen, "cannot make the receipt");
out:
	free(m);
	return rc;
}
