/* custody/delivery.c: the key files of encrypted delivery (formats §10)
 * and the station's delivery key, over libcrypto.  The certificate's role
 * and chain are decided by custody/sig.c (mbedTLS) like every other role;
 * what libcrypto does here is only the key agreement, HKDF, AES key wrap
 * and RSA-OAEP, the same code `openssl pkeyutl`, `kdf` and `enc` run. */
#include "custody/delivery.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "custody/layout.h"
#include "custody/record.h"
#include "custody/sig.h"
#include "custody/x509_internal.h"
#include "station/base/base64.h"
#include "station/base/error.h"
#include "station/base/hex.h"
#include "station/base/sha256.h"

#define KEYFILE_FORMAT "station-key-1"
#define HKDF_INFO "station-key-1" /* formats §10 */
#define WRAPPED_ECDH_LEN (CU_CONTENT_KEY_LEN + 8) /* RFC 3394 §2.2.1 */
#define RID_SHOWN 16 /* hex digits of a recipient id in messages */

struct cu_delivery_key {
	EVP_PKEY *pkey;
	uint8_t rid[CU_SHA256_LEN];
};

/* ---- key files ---- */

static const struct cu_key_rule keyfile_keys[] = {
	{"format", CU_REQUIRED},    {"image", CU_REQUIRED},
	{"recipient", CU_REQUIRED}, {"method", CU_REQUIRED},
	{"ephemeral", CU_OPTIONAL}, {"wrapped", CU_REQUIRED},
	{NULL, 0},
};
static const struct cu_section_rule keyfile_rules[] = {
	{"", CU_NO_LABEL, 1, 1, keyfile_keys},
	{NULL, 0, 0, 0, NULL},
};

static int get_b64(const struct cu_record *r, const struct cu_section *s,
		   const char *key, uint8_t *out, size_t cap, size_t *len,
		   struct stn_diag *d)
{
	const char *v;
	int rc = cu_get_str(r, s, key, &v, d);

	if (rc)
		return rc;
	if (stn_b64_decode(v, strlen(v), out, cap, len) != 0 || *len == 0)
		return cu_record_fail(d, STN_E_SYNTAX, r, s, key,
				      "%s must be canonical base64 of at most "
				      "%zu bytes",
				      key, cap);
	return 0;
}

int cu_keyfile_parse(const void *buf, size_t len, const char *where,
		     struct cu_keyfile *out, struct stn_diag *d)
{
	struct cu_record *r = NULL;
	const struct cu_section *s;
	struct cu_keyfile kf;
	const char *v;
	int rc;

	memset(&kf, 0, sizeof(kf));
	snprintf(kf.file, sizeof(kf.file), "%s", where);
	rc = cu_record_parse(buf, len, where, &r, d);
	if (rc)
		goto out;
	rc = cu_record_check(r, keyfile_rules, KEYFILE_FORMAT, d);
	if (rc)
		goto out;
	s = cu_record_section(r, 0);
	rc = cu_get_str(r, s, "image", &v, d);
	if (rc)
		goto out;
	if (!cu_label_ok(v, strlen(v))) {
		rc = cu_record_fail(d, STN_E_SYNTAX, r, s, "image",
				    "image must be an [image] label "
				    "([a-z0-9][a-z0-9-]{0,31})");
		goto out;
	}
	snprintf(kf.image, sizeof(kf.image), "%s", v);
	rc = cu_get_digest(r, s, "recipient", kf.recipient, d);
	if (rc)
		goto out;
	rc = cu_get_str(r, s, "method", &v, d);
	if (rc)
		goto out;
	if (strcmp(v, "ecdh-p256") == 0) {
		kf.method = CU_WRAP_ECDH_P256;
	} else if (strcmp(v, "rsa-oaep-sha256") == 0) {
		kf.method = CU_WRAP_RSA_OAEP_SHA256;
	} else {
		rc = cu_record_fail(d, STN_E_SYNTAX, r, s, "method",
				    "method must be ecdh-p256 or "
				    "rsa-oaep-sha256");
		goto out;
	}
	if (kf.method == CU_WRAP_ECDH_P256) {
		if (!cu_section_get(s, "ephemeral")) {
			rc = cu_record_fail(d, STN_E_SYNTAX, r, s, NULL,
					    "method ecdh-p256 requires key "
					    "ephemeral");
			goto out;
		}
		rc = get_b64(r, s, "ephemeral", kf.ephemeral,
			     sizeof(kf.ephemeral), &kf.ephemeral_len, d);
		if (rc)
			goto out;
	} else if (cu_section_get(s, "ephemeral")) {
		rc = cu_record_fail(d, STN_E_SYNTAX, r, s, "ephemeral",
				    "method rsa-oaep-sha256 takes no "
				    "ephemeral key");
		goto out;
	}
	rc = get_b64(r, s, "wrapped", kf.wrapped, sizeof(kf.wrapped),
		     &kf.wrapped_len, d);
	if (rc)
		goto out;
	if (kf.method == CU_WRAP_ECDH_P256 &&
	    kf.wrapped_len != WRAPPED_ECDH_LEN) {
		rc = cu_record_fail(d, STN_E_SYNTAX, r, s, "wrapped",
				    "an ecdh-p256 wrapped key is %d bytes "
				    "(AES key wrap of 32), not %zu",
				    WRAPPED_ECDH_LEN, kf.wrapped_len);
		goto out;
	}
	*out = kf;
out:
	cu_record_free(r);
	return rc;
}

/* ---- certificates and keys ---- */

/* libcrypto's error queue as one line, for messages; clears it. */
static const char *ossl_why(char *buf, size_t size)
{
	unsigned long e = ERR_get_error();

	if (!e)
		snprintf(buf, size, "no detail");
	else
		ERR_error_string_n(e, buf, size);
	ERR_clear_error();
	return buf;
}

/* The leaf of a PEM chain file: its DER hashed into rid (the recipient
 * id: the first PEM block's bytes, as `openssl x509 -outform DER` writes
 * them), parsed into *leaf. */
static int read_leaf(const char *path, int io_code, X509 **leaf,
		     uint8_t rid[CU_SHA256_LEN], struct stn_diag *d)
{
	unsigned char *pem = NULL, *der = NULL;
	const unsigned char *p;
	char *name = NULL, *header = NULL, why[160];
	size_t plen;
	long dlen = 0;
	BIO *bio = NULL;
	X509 *x = NULL;
	int rc;

	struct stn_diag e;

	stn_diag_init(&e);
	rc = cu_x509_read_capped(path, CU_CHAIN_MAX, "certificate chain",
				 STN_E_UNSAFE, &pem, &plen, &e);
	if (rc)
		return stn_fail(d, rc == STN_E_NOMEM ? rc : io_code, path,
				"%.300s", e.text);
	bio = BIO_new_mem_buf(pem, (int)plen);
	if (!bio) {
		rc = stn_fail(d, STN_E_NOMEM, path, "reading the certificate");
		goto out;
	}
	if (PEM_read_bio(bio, &name, &header, &der, &dlen) != 1 ||
	    strcmp(name, PEM_STRING_X509) != 0) {
		rc = stn_fail(d, io_code, path,
			      "no PEM certificate at the start of the file "
			      "(%s)",
			      name ? name : ossl_why(why, sizeof(why)));
		goto out;
	}
	p = der;
	x = d2i_X509(NULL, &p, dlen);
	if (!x || p != der + dlen) {
		rc = stn_fail(d, io_code, path,
			      "the first certificate does not parse (%s)",
			      ossl_why(why, sizeof(why)));
		goto out;
	}
	rc = cu_sha256(der, (size_t)dlen, rid);
	if (rc) {
		rc = stn_fail(d, rc, path, "hashing the certificate");
		goto out;
	}
	*leaf = x;
	x = NULL;
out:
	ERR_clear_error();
	X509_free(x);
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	BIO_free(bio);
	free(pem);
	return rc;
}

/* Which wrap method a key takes; 0 when none (P-384, RSA < 2048, ...). */
static enum cu_wrap_method method_of(EVP_PKEY *k, char *desc, size_t size)
{
	char group[64] = "";
	size_t glen = 0;

	if (EVP_PKEY_is_a(k, "RSA")) {
		snprintf(desc, size, "an RSA-%d key", EVP_PKEY_get_bits(k));
		return EVP_PKEY_get_bits(k) >= 2048 ? CU_WRAP_RSA_OAEP_SHA256
						    : 0;
	}
	if (EVP_PKEY_is_a(k, "EC")) {
		if (EVP_PKEY_get_group_name(k, group, sizeof(group), &glen) != 1)
			snprintf(group, sizeof(group), "an unnamed curve");
		snprintf(desc, size, "an EC key on %s", group);
		return strcmp(group, SN_X9_62_prime256v1) == 0
			       ? CU_WRAP_ECDH_P256
			       : 0;
	}
	snprintf(desc, size, "a %s key", EVP_PKEY_get0_type_name(k));
	return 0;
}

static int no_passphrase(char *buf, int size, int rw, void *u)
{
	(void)buf, (void)size, (void)rw, (void)u;
	return -1; /* an encrypted key is refused, never prompted for */
}

int cu_delivery_load(const char *key_path, const char *cert_path,
		     const struct cu_trust *trust, int64_t at,
		     struct cu_delivery_key **out, struct stn_diag *d)
{
	struct cu_delivery_key *k = NULL;
	struct stn_diag why;
	unsigned char *pem = NULL;
	size_t plen = 0;
	char desc[64], ebuf[160];
	X509 *leaf = NULL;
	BIO *bio = NULL;
	int rc;

	stn_diag_init(&why);
	if (cu_cert_check(trust, cert_path, CU_ROLE_DELIVERY, at, NULL,
			  &why) != 0) {
		rc = stn_fail(d, STN_E_CONFIG, cert_path,
			      "delivery certificate refused: %.300s",
			      why.text);
		goto out;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		rc = stn_fail(d, STN_E_NOMEM, key_path, "delivery key");
		goto out;
	}
	rc = read_leaf(cert_path, STN_E_CONFIG, &leaf, k->rid, d);
	if (rc)
		goto out;
	rc = cu_x509_read_capped(key_path, CU_CHAIN_MAX, "delivery key",
				 STN_E_UNSAFE, &pem, &plen, &why);
	if (rc) {
		rc = rc == STN_E_NOMEM ? stn_fail(d, rc, key_path, "%s",
						  why.text)
				       : stn_fail(d, STN_E_CONFIG, key_path,
						  "%.300s", why.text);
		goto out;
	}
	bio = BIO_new_mem_buf(pem, (int)plen);
	if (!bio ||
	    !(k->pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase,
						 NULL))) {
		rc = stn_fail(d, STN_E_CONFIG, key_path,
			      "delivery key is not an unencrypted PEM private "
			      "key (%s)",
			      ossl_why(ebuf, sizeof(ebuf)));
		goto out;
	}
	if (!method_of(k->pkey, desc, sizeof(desc))) {
		rc = stn_fail(d, STN_E_CONFIG, key_path,
			      "delivery key is %s; accepted are P-256 and RSA "
			      "of 2048 bits or more",
			      desc);
		goto out;
	}
	if (EVP_PKEY_eq(k->pkey, X509_get0_pubkey(leaf)) != 1) {
		rc = stn_fail(d, STN_E_CONFIG, key_path,
			      "delivery key does not match the certificate "
			      "%s",
			      cert_path);
		goto out;
	}
	*out = k;
	k = NULL;
	rc = 0;
out:
	ERR_clear_error();
	cu_delivery_free(k);
	X509_free(leaf);
	BIO_free(bio);
	if (pem) {
		OPENSSL_cleanse(pem, plen);
		free(pem);
	}
	return rc;
}

void cu_delivery_free(struct cu_delivery_key *k)
{
	if (!k)
		return;
	/* EVP_PKEY_free clears the private scalar or RSA factors
	 * (BN_clear_free) before freeing them. */
	EVP_PKEY_free(k->pkey);
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}

const uint8_t *cu_delivery_recipient(const struct cu_delivery_key *k)
{
	return k->rid;
}

/* ---- the two methods (formats §10) ---- */

/* KEK = HKDF-SHA256(ikm Z, no salt, info "station-key-1", 32 bytes): with
 * no salt RFC 5869 §2.2 uses HashLen zero octets, as `openssl kdf` does. */
static int kek_of(const uint8_t *z, size_t zlen, uint8_t kek[32])
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t n = 32;
	int ok;

	ok = c && EVP_PKEY_derive_init(c) == 1 &&
	     EVP_PKEY_CTX_set_hkdf_md(c, EVP_sha256()) == 1 &&
	     EVP_PKEY_CTX_set1_hkdf_key(c, z, (int)zlen) == 1 &&
	     EVP_PKEY_CTX_add1_hkdf_info(c, (const unsigned char *)HKDF_INFO,
					 (int)strlen(HKDF_INFO)) == 1 &&
	     EVP_PKEY_derive(c, kek, &n) == 1 && n == 32;
	EVP_PKEY_CTX_free(c);
	return ok ? 0 : -1;
}

/* Z = ECDH(mine, peer), the peer's point checked on the curve. */
static int ecdh(EVP_PKEY *mine, EVP_PKEY *peer, uint8_t z[32])
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(mine, NULL);
	size_t n = 32;
	int ok;

	ok = c && EVP_PKEY_derive_init(c) == 1 &&
	     EVP_PKEY_derive_set_peer_ex(c, peer, 1) == 1 &&
	     EVP_PKEY_derive(c, z, &n) == 1 && n == 32;
	EVP_PKEY_CTX_free(c);
	return ok ? 0 : -1;
}

/* RFC 3394 key wrap with the default IV A6A6A6A6A6A6A6A6; `enc` 1 wraps
 * (32 bytes in, 40 out), 0 unwraps and checks the integrity value. */
static int keywrap(int enc, const uint8_t kek[32], const uint8_t *in,
		   size_t inlen, uint8_t *out, size_t *outlen)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, m = 0, ok;

	if (!c)
		return -1;
	EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	ok = EVP_CipherInit_ex(c, EVP_aes_256_wrap(), NULL, kek, NULL, enc) ==
		     1 &&
	     EVP_CipherUpdate(c, out, &n, in, (int)inlen) == 1 && n > 0 &&
	     EVP_CipherFinal_ex(c, out + n, &m) == 1;
	EVP_CIPHER_CTX_free(c);
	if (!ok)
		return -1;
	*outlen = (size_t)(n + m);
	return 0;
}

/* RSA-OAEP with SHA-256 and MGF1-SHA-256 (RFC 8017 §7.1). */
static EVP_PKEY_CTX *oaep_ctx(EVP_PKEY *k, int enc)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);

	if (c && (enc ? EVP_PKEY_encrypt_init(c) : EVP_PKEY_decrypt_init(c)) ==
			 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()) == 1 &&
	    EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()) == 1)
		return c;
	EVP_PKEY_CTX_free(c);
	return NULL;
}

static const char *method_name(enum cu_wrap_method m)
{
	return m == CU_WRAP_ECDH_P256 ? "ecdh-p256" : "rsa-oaep-sha256";
}

int cu_delivery_unwrap(const struct cu_delivery_key *k,
		       const struct cu_keyfile *kf,
		       uint8_t key[CU_CONTENT_KEY_LEN], struct stn_diag *d)
{
	uint8_t z[32], kek[32], tmp[512];
	size_t n = sizeof(tmp);
	EVP_PKEY *eph = NULL;
	EVP_PKEY_CTX *c = NULL;
	const unsigned char *p;
	char desc[64];
	int rc = 0;

	if (memcmp(kf->recipient, k->rid, CU_SHA256_LEN) != 0)
		return stn_fail(d, STN_E_USAGE, kf->file,
				"key file is for another recipient");
	if (method_of(k->pkey, desc, sizeof(desc)) != kf->method)
		return stn_fail(d, STN_E_IMAGE, kf->file,
				"wrapped key does not open: method %s cannot "
				"be used with this station's %s",
				method_name(kf->method), desc);
	if (kf->method == CU_WRAP_ECDH_P256) {
		p = kf->ephemeral;
		eph = d2i_PUBKEY(NULL, &p, (long)kf->ephemeral_len);
		if (!eph || p != kf->ephemeral + kf->ephemeral_len ||
		    method_of(eph, desc, sizeof(desc)) != CU_WRAP_ECDH_P256) {
			rc = stn_fail(d, STN_E_IMAGE, kf->file,
				      "wrapped key does not open: the "
				      "ephemeral key is not a P-256 public "
				      "key");
			goto out;
		}
		if (ecdh(k->pkey, eph, z) != 0) {
			rc = stn_fail(d, STN_E_IMAGE, kf->file,
				      "wrapped key does not open: ECDH with "
				      "the ephemeral key fails");
			goto out;
		}
		if (kek_of(z, sizeof(z), kek) != 0) {
			rc = stn_fail(d, STN_E_INTERNAL, kf->file,
				      "HKDF-SHA256 fails");
			goto out;
		}
		if (keywrap(0, kek, kf->wrapped, kf->wrapped_len, tmp, &n) !=
			    0 ||
		    n != CU_CONTENT_KEY_LEN) {
			rc = stn_fail(d, STN_E_IMAGE, kf->file,
				      "wrapped key does not open: the AES key "
				      "wrap integrity check fails (a wrong or "
				      "tampered key file)");
			goto out;
		}
	} else {
		c = oaep_ctx(k->pkey, 0);
		if (!c) {
			rc = stn_fail(d, STN_E_INTERNAL, kf->file,
				      "RSA-OAEP setup fails");
			goto out;
		}
		if (EVP_PKEY_decrypt(c, tmp, &n, kf->wrapped,
				     kf->wrapped_len) != 1 ||
		    n != CU_CONTENT_KEY_LEN) {
			rc = stn_fail(d, STN_E_IMAGE, kf->file,
				      "wrapped key does not open: RSA-OAEP "
				      "decryption fails (a wrong or tampered "
				      "key file)");
			goto out;
		}
	}
	memcpy(key, tmp, CU_CONTENT_KEY_LEN);
out:
	ERR_clear_error();
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(eph);
	OPENSSL_cleanse(z, sizeof(z));
	OPENSSL_cleanse(kek, sizeof(kek));
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return rc;
}

/* ---- picking the key file of an image ---- */

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir/keys that cu_layout_key_name accepts, sorted (so the
 * same bundle is always read in the same order).  A missing keys/ is an
 * empty list. */
static int list_keys(const char *keys, const char *shown_keys, char ***names,
		     size_t *count, struct stn_diag *d)
{
	DIR *dir = opendir(keys);
	struct dirent *e;
	char **v = NULL;
	size_t n = 0, seen = 0;
	int rc = 0;

	*names = NULL;
	*count = 0;
	if (!dir)
		return errno == ENOENT ? 0
				       : stn_fail(d, STN_E_IO, shown_keys,
						  "cannot list: %s",
						  strerror(errno));
	v = calloc(CU_MAX_KEYFILES, sizeof(*v));
	if (!v) {
		rc = stn_fail(d, STN_E_NOMEM, shown_keys, "listing");
		goto out;
	}
	while ((e = readdir(dir))) {
		if (++seen > CU_DIR_ENTRIES_MAX) {
			rc = stn_fail(d, STN_E_TOOBIG, shown_keys,
				      CU_DIR_ENTRIES_WHY, CU_DIR_ENTRIES_MAX);
			goto out;
		}
		if (!cu_layout_key_name(e->d_name))
			continue;
		if (n == CU_MAX_KEYFILES) {
			rc = stn_fail(d, STN_E_TOOBIG, shown_keys,
				      "more than %d key files",
				      CU_MAX_KEYFILES);
			goto out;
		}
		if (!(v[n] = strdup(e->d_name))) {
			rc = stn_fail(d, STN_E_NOMEM, shown_keys, "listing");
			goto out;
		}
		n++;
	}
	qsort(v, n, sizeof(*v), by_name);
out:
	closedir(dir);
	if (rc) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return rc;
	}
	*names = v;
	*count = n;
	return 0;
}

/* Append ", 3f2a9c1d..." (RID_SHOWN hex digits) to the list unless it is
 * there already. */
static void add_recipient(char *list, size_t size, const uint8_t *rid)
{
	char hex[CU_SHA256_LEN * 2 + 1], item[RID_SHOWN + 4];
	size_t o = strlen(list);

	cu_hex(rid, CU_SHA256_LEN, hex);
	snprintf(item, sizeof(item), "%.*s...", RID_SHOWN, hex);
	if (strstr(list, item))
		return;
	snprintf(list + o, size - o, "%s%s", o ? ", " : "", item);
}

int cu_delivery_key_for(const struct cu_delivery_key *k, const char *dir,
			const char *shown, const struct cu_image *img,
			uint8_t key[CU_CONTENT_KEY_LEN], struct stn_diag *d)
{
	char keys[4200], shown_keys[600], path[4400], where[700];
	char found[400] = "", mine[CU_SHA256_LEN * 2 + 1];
	char **names = NULL;
	size_t count = 0, len;
	unsigned char *buf = NULL;
	struct cu_keyfile kf;
	struct stn_diag e;
	int rc, done = 0;

	snprintf(keys, sizeof(keys), "%s/%s", dir, CU_LAYOUT_KEYS);
	snprintf(shown_keys, sizeof(shown_keys), "%s/%s", shown,
		 CU_LAYOUT_KEYS);
	rc = list_keys(keys, shown_keys, &names, &count, d);
	if (rc)
		return rc;
	for (size_t i = 0; i < count && !done; i++) {
		snprintf(path, sizeof(path), "%s/%s", keys, names[i]);
		snprintf(where, sizeof(where), "%s/%s", shown_keys, names[i]);
		stn_diag_init(&e);
		rc = cu_x509_read_capped(path, CU_KEYFILE_MAX, "key file",
					 STN_E_UNSAFE, &buf, &len, &e);
		if (rc) {
			rc = stn_fail(d, rc, where, "%.300s", e.text);
			goto out;
		}
		rc = cu_keyfile_parse(buf, len, where, &kf, d);
		free(buf);
		buf = NULL;
		if (rc)
			goto out;
		if (strcmp(kf.image, img->label) != 0)
			continue;
		add_recipient(found, sizeof(found), kf.recipient);
		if (!k || memcmp(kf.recipient, k->rid, CU_SHA256_LEN) != 0)
			continue;
		/* kf.file holds 79 characters; the message names the whole
		 * path under `shown`. */
		stn_diag_init(&e);
		rc = cu_delivery_unwrap(k, &kf, key, &e);
		OPENSSL_cleanse(&kf, sizeof(kf));
		if (rc) {
			rc = stn_fail(d, rc, where, "%.300s", e.text);
			goto out;
		}
		done = 1;
	}
	if (done) {
		rc = 0;
	} else if (!k) {
		rc = stn_fail(d, STN_E_IMAGE, shown_keys,
			      "image %s is encrypted for %s; this station has "
			      "no delivery key configured",
			      img->label, found[0] ? found : "no recipient");
	} else {
		cu_hex(k->rid, CU_SHA256_LEN, mine);
		rc = stn_fail(d, STN_E_IMAGE, shown_keys,
			      "image %s is encrypted for %s; this station's "
			      "delivery certificate is %.*s...",
			      img->label, found[0] ? found : "no recipient",
			      RID_SHOWN, mine);
	}
out:
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
	return rc;
}

/* ---- release side ---- */

/* The station roles a leaf carries (libcrypto's reading of the EKU, used
 * only when no trust store is given). */
static unsigned leaf_roles(X509 *x)
{
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL,
						   NULL);
	unsigned mask = 0;

	for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku); i++) {
		const ASN1_OBJECT *o = sk_ASN1_OBJECT_value(eku, i);
		size_t olen = OBJ_length(o), len = 0;

		for (int r = CU_ROLE_RELEASE; r <= CU_ROLE_DELIVERY; r++) {
			const uint8_t *oid = cu_role_oid((enum cu_role)r, &len);

			if (oid && len == olen &&
			    memcmp(OBJ_get0_data(o), oid, len) == 0)
				mask |= 1u << r;
		}
	}
	EXTENDED_KEY_USAGE_free(eku);
	return mask;
}

int cu_delivery_wrap(const char *cert_path, const struct cu_trust *trust,
		     int64_t at, const char *label,
		     const uint8_t key[CU_CONTENT_KEY_LEN], char *out,
		     size_t cap, size_t *out_len, uint8_t rid[CU_SHA256_LEN],
		     struct stn_diag *d)
{
	uint8_t id[CU_SHA256_LEN], z[32], kek[32], wrapped[512];
	uint8_t spki[256];
	char b64w[STN_B64_LEN(512) + 1], b64e[STN_B64_LEN(256) + 1];
	char hex[CU_SHA256_LEN * 2 + 1], desc[64];
	size_t wlen = sizeof(wrapped);
	unsigned char *sp;
	struct stn_diag why;
	EVP_PKEY *pub, *eph = NULL;
	EVP_PKEY_CTX *c = NULL;
	enum cu_wrap_method m;
	X509 *leaf = NULL;
	unsigned mask;
	int rc, n, slen;

	if (!cu_label_ok(label, strlen(label)))
		return stn_fail(d, STN_E_USAGE, label,
				"image label must be [a-z0-9][a-z0-9-]{0,31}");
	if (trust) {
		stn_diag_init(&why);
		if (cu_cert_check(trust, cert_path, CU_ROLE_DELIVERY, at, NULL,
				  &why) != 0)
			return stn_fail(d, STN_E_USAGE, cert_path,
					"not a delivery certificate: %.300s",
					why.text);
	}
	rc = read_leaf(cert_path, STN_E_IO, &leaf, id, d);
	if (rc)
		return rc;
	mask = leaf_roles(leaf);
	if (mask != 1u << CU_ROLE_DELIVERY) {
		char held[80] = "";
		size_t o = 0;
		for (int r = CU_ROLE_RELEASE; r <= CU_ROLE_DELIVERY; r++)
			if (mask & (1u << r))
				o += (size_t)snprintf(held + o,
						      sizeof(held) - o, "%s%s",
						      o ? " and " : "",
						      cu_role_name(
							      (enum cu_role)r));
		if (mask)
			rc = stn_fail(d, STN_E_USAGE, cert_path,
				      "not a delivery certificate: its leaf "
				      "holds the %s role%s%s", held,
				      strchr(held, ' ') ? "s" : "",
				      mask & (1u << CU_ROLE_DELIVERY)
					      ? " (one key, one duty)" : "");
		else
			rc = stn_fail(d, STN_E_USAGE, cert_path,
				      "not a delivery certificate: its leaf "
				      "holds no station role");
		goto out;
	}
	pub = X509_get0_pubkey(leaf);
	m = pub ? method_of(pub, desc, sizeof(desc)) : 0;
	if (!m) {
		rc = stn_fail(d, STN_E_USAGE, cert_path,
			      "delivery certificate has %s; keys are wrapped "
			      "for P-256 and RSA of 2048 bits or more",
			      pub ? desc : "no readable key");
		goto out;
	}
	if (m == CU_WRAP_ECDH_P256) {
		eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		sp = spki;
		slen = eph ? i2d_PUBKEY(eph, NULL) : -1;
		if (slen <= 0 || (size_t)slen > sizeof(spki) ||
		    i2d_PUBKEY(eph, &sp) != slen || ecdh(eph, pub, z) != 0 ||
		    kek_of(z, sizeof(z), kek) != 0 ||
		    keywrap(1, kek, key, CU_CONTENT_KEY_LEN, wrapped, &wlen) !=
			    0 ||
		    wlen != WRAPPED_ECDH_LEN) {
			rc = stn_fail(d, STN_E_INTERNAL, cert_path,
				      "ECDH key wrap fails");
			goto out;
		}
		stn_b64_encode(spki, (size_t)slen, b64e);
	} else {
		c = oaep_ctx(pub, 1);
		if (!c || EVP_PKEY_encrypt(c, wrapped, &wlen, key,
					   CU_CONTENT_KEY_LEN) != 1) {
			rc = stn_fail(d, STN_E_INTERNAL, cert_path,
				      "RSA-OAEP encryption fails");
			goto out;
		}
	}
	stn_b64_encode(wrapped, wlen, b64w);
	cu_hex(id, CU_SHA256_LEN, hex);
	n = snprintf(out, cap,
		     "format = " KEYFILE_FORMAT "\nimage = %s\n"
		     "recipient = %s\nmethod = %s\n%s%s%swrapped = %s\n",
		     label, hex, method_name(m),
		     m == CU_WRAP_ECDH_P256 ? "ephemeral = " : "",
		     m == CU_WRAP_ECDH_P256 ? b64e : "",
		     m == CU_WRAP_ECDH_P256 ? "\n" : "", b64w);
	if (n < 0 || (size_t)n >= cap) {
		rc = stn_fail(d, STN_E_INTERNAL, cert_path,
			      "key file does not fit %zu bytes", cap);
		goto out;
	}
	*out_len = (size_t)n;
	if (rid)
		memcpy(rid, id, CU_SHA256_LEN);
	rc = 0;
out:
	ERR_clear_error();
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(eph);
	X509_free(leaf);
	OPENSSL_cleanse(z, sizeof(z));
	OPENSSL_cleanse(kek, sizeof(kek));
	return rc;
}
