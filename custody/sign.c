/* custody/sign.c: signing with the station's own key over mbedTLS 2.28:
 * loading a private key with its chain, and writing the detached .sig and
 * .pem pair (formats §2) that custody/sig.c verifies. */
#include "custody/sign.h"

#include "custody/devid.h"

#include "custody/record.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/x509_crt.h>

#include "station/base/sha256.h"
#include "custody/x509_internal.h"
#include "station/base/error.h"
#include "station/base/fileio.h"

struct cu_key {
	mbedtls_pk_context pk;
	char *chain; /* PEM as loaded, NUL-terminated */
	size_t chain_len;
	char cn[128]; /* the leaf's subject CN: who signs */
	mbedtls_x509_crt certs; /* the chain parsed, leaf first */
};

void cu_key_free(struct cu_key *k)
{
	if (!k)
		return;
	mbedtls_pk_free(&k->pk); /* zeroizes the key's numbers */
	mbedtls_x509_crt_free(&k->certs);
	free(k->chain);
	mbedtls_platform_zeroize(k, sizeof(*k));
	free(k);
}

int cu_key_load(const char *key_path, const char *cert_path,
		struct cu_key **out, struct stn_diag *d)
{
	struct cu_key *k;
	mbedtls_x509_crt *chain;
	unsigned char *buf = NULL;
	size_t len = 0;
	char ebuf[128], desc[64], cn[128];
	int rc, ret;

	k = calloc(1, sizeof(*k));
	if (!k)
		return stn_fail(d, STN_E_NOMEM, key_path, "cannot hold a key");
	mbedtls_pk_init(&k->pk);
	mbedtls_x509_crt_init(&k->certs);
	chain = &k->certs;
	rc = cu_x509_read_capped(key_path, CU_CHAIN_MAX, "private key",
				 STN_E_UNSAFE, &buf, &len, d);
	if (rc)
		goto out;
	ret = mbedtls_pk_parse_key(&k->pk, buf, len + 1, NULL, 0);
	mbedtls_platform_zeroize(buf, len + 1);
	free(buf);
	buf = NULL;
	if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED) {
		rc = stn_fail(d, STN_E_CONFIG, key_path,
			      "private key is encrypted; the station needs it "
			      "unencrypted");
		goto out;
	}
	if (ret != 0) {
		rc = stn_fail(d, STN_E_CONFIG, key_path,
			      "private key does not parse: %s",
			      cu_x509_strerror(ret, ebuf, sizeof(ebuf)));
		goto out;
	}
	if (!cu_x509_key_accepted(&k->pk, desc, sizeof(desc))) {
		rc = stn_fail(d, STN_E_CONFIG, key_path,
			      "private key is %s; the station signs with "
			      "ECDSA P-256, P-384 or RSA of 2048 bits or more",
			      desc);
		goto out;
	}
	rc = cu_x509_read_capped(cert_path, CU_CHAIN_MAX, "certificate chain",
				 STN_E_UNSAFE, &buf, &len, d);
	if (rc)
		goto out;
	rc = cu_x509_parse_chain(buf, len, cert_path, STN_E_CONFIG, chain, d);
	if (rc)
		goto out;
	if (mbedtls_pk_check_pair(&chain->pk, &k->pk) != 0) {
		if (cu_x509_leaf_cn(chain, cert_path, cn, sizeof(cn),
				    NULL) != 0)
			snprintf(cn, sizeof(cn), "(no usable CN)");
		rc = stn_fail(d, STN_E_CONFIG, key_path,
			      "private key does not match the certificate CN "
			      "%s in %s",
			      cn, cert_path);
		goto out;
	}
	/* Custody records and tokens name their signer by CN (§4, §5). */
	if ((rc = cu_x509_leaf_cn(chain, cert_path, k->cn, sizeof(k->cn), d)))
		goto out;
	k->chain = (char *)buf;
	k->chain_len = len;
	buf = NULL;
	*out = k;
	k = NULL;
out:
	free(buf);
	cu_key_free(k);
	return rc;
}

int cu_key_sign(struct cu_key *k, const uint8_t digest[32], uint8_t *sig,
		size_t cap, size_t *sig_len, struct stn_diag *d)
{
	static const char pers[] = "station cu_key_sign";
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	unsigned char buf[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
	size_t len = 0;
	char ebuf[128];
	int rc = 0, ret;

	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
				    (const unsigned char *)pers,
				    sizeof(pers) - 1);
	if (ret != 0) {
		rc = stn_fail(d, STN_E_INTERNAL, NULL,
			      "cannot seed the random generator: %s",
			      cu_x509_strerror(ret, ebuf, sizeof(ebuf)));
		goto out;
	}
	/* With a deterministic ECDSA build the generator only blinds. */
	ret = mbedtls_pk_sign(&k->pk, MBEDTLS_MD_SHA256, digest, CU_SHA256_LEN,
			      buf, &len, mbedtls_ctr_drbg_random, &drbg);
	if (ret != 0) {
		rc = stn_fail(d, STN_E_INTERNAL, NULL, "signing failed: %s",
			      cu_x509_strerror(ret, ebuf, sizeof(ebuf)));
		goto out;
	}
	if (len > cap) {
		rc = stn_fail(d, STN_E_USAGE, NULL,
			      "signature needs %zu bytes, the buffer holds %zu",
			      len, cap);
		goto out;
	}
	memcpy(sig, buf, len);
	*sig_len = len;
out:
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&entropy);
	return rc;
}

const char *cu_key_cn(const struct cu_key *k)
{
	return k->cn;
}

const char *cu_key_chain_pem(const struct cu_key *k, size_t *len)
{
	if (len)
		*len = k->chain_len;
	return k->chain;
}

int cu_key_chain_der(const struct cu_key *k, const uint8_t **der,
		     size_t *len, size_t max, size_t *n, struct stn_diag *d)
{
	size_t i = 0;

	for (const mbedtls_x509_crt *c = &k->certs; c && c->raw.p;
	     c = c->next) {
		if (i == max)
			return stn_fail(d, STN_E_INTERNAL, k->cn,
					"the station's certificate chain holds "
					"more than %zu certificates",
					max);
		der[i] = c->raw.p;
		len[i] = c->raw.len;
		i++;
	}
	if (i == 0)
		return stn_fail(d, STN_E_INTERNAL, k->cn,
				"the station key has no certificate");
	*n = i;
	return 0;
}

static int hash_file(const char *path, uint8_t digest[CU_SHA256_LEN],
		     struct stn_diag *d)
{
	struct stat st;
	int fd = -1, rc;

	rc = cu_x509_open_regular(path, STN_E_UNSAFE, &fd, &st, d);
	if (rc)
		return rc;
	rc = cu_sha256_fd(fd, UINT64_MAX - 1, path, digest, NULL, d);
	close(fd);
	return rc;
}

/* A crash must leave either the old file or the whole new one, never part:
 * an auditor may be handed whatever is on disk. */
static int write_replace(const char *target, const void *data, size_t len,
			 struct stn_diag *d)
{
	/* Signatures and chains are public: 0644. */
	return stn_replace_durable(target, 0644, data, len, d);
}

int cu_sign_file(struct cu_key *k, const char *path, const char *label,
		 struct stn_diag *d)
{
	char sig_path[PATH_MAX], pem_path[PATH_MAX];
	const char *dot = label ? "." : "", *lab = label ? label : "";
	uint8_t digest[CU_SHA256_LEN], sig[CU_SIG_MAX];
	size_t sig_len;
	int rc;

	if (label && !cu_label_ok(label, strlen(label)))
		return stn_fail(d, STN_E_USAGE, path,
				"signature label \"%s\" does not match "
				"[a-z0-9][a-z0-9-]{0,31}",
				label);
	if (snprintf(sig_path, sizeof(sig_path), "%s%s%s.sig", path, dot,
		     lab) >= (int)sizeof(sig_path) ||
	    snprintf(pem_path, sizeof(pem_path), "%s%s%s.pem", path, dot,
		     lab) >= (int)sizeof(pem_path))
		return stn_fail(d, STN_E_USAGE, path, "path too long");
	rc = hash_file(path, digest, d);
	if (rc)
		return rc;
	rc = cu_key_sign(k, digest, sig, sizeof(sig), &sig_len, d);
	if (rc)
		return rc;
	/* The .pem first: a reader that sees a .sig finds its chain. */
	rc = write_replace(pem_path, k->chain, k->chain_len, d);
	if (rc)
		return rc;
	return write_replace(sig_path, sig, sig_len, d);
}
