/* station/release.h: release engineering's side, writing a bundle
 * directory: images copied in and hashed (or encrypted for delivery
 * certificates, formats §10), and a manifest that the strict parser
 * accepts (signing is custody/sign.h, cu_sign_file). */
#ifndef STN_RELEASE_H
#define STN_RELEASE_H

#include <stddef.h>
#include <stdint.h>

struct stn_diag;

struct stn_release_image {
	const char *label; /* [a-z0-9][a-z0-9-]{0,31} */
	const char *path;  /* source file; its base name becomes `file` */
	unsigned slot;
};

struct stn_release {
	const char *name, *version, *model;
	uint64_t sequence;
	int64_t created, expires;
	const char *const *hardware;
	size_t nhardware;
	const struct stn_release_image *images;
	size_t nimages;
	/* Delivery certificates (PEM chains, leaf first) to encrypt for
	 * (formats §10); none: the images travel in the clear. */
	const char *const *recipients;
	size_t nrecipients;
};

/* Create outdir (it must not exist), copy the images in, hashing them as
 * they are copied, and write outdir/manifest.  With recipients, each image
 * is encrypted instead (AES-256-CTR under a fresh content key and IV) into
 * FILE.enc, the plaintext and the ciphertext hashed in the same pass, and
 * its content key is wrapped for each recipient into
 * keys/LABEL.RID8.key (RID8: the first 8 hex digits of the recipient id);
 * the plaintext is never written and the content keys are wiped.  Every
 * recipient is checked (a delivery-role certificate, P-256 or RSA) before
 * anything is written.  The manifest is parsed back before it is written,
 * so nothing the station would refuse as malformed leaves here.  On
 * failure outdir is removed.  Errors: STN_E_USAGE (bad value, naming the
 * option or the file; a recipient that is not a delivery certificate),
 * STN_E_IO, STN_E_NOMEM, STN_E_INTERNAL. */
int stn_release_create(const struct stn_release *rel, const char *outdir,
		       struct stn_diag *d);

/*
 * Release engineering's check before the media leaves (`station verify
 * --trust`; docs/release.md): the bundle in dir judged against the
 * anchors in anchors_pem alone (and the CRLs in crl_dir, may be NULL),
 * with no station configuration, journal or data directory: check 1 with
 * `threshold` distinct release keys (>= 1), check 2 at `at` (the clock
 * now), check 3 with encrypted images held to their cipher-sha256 only
 * (cu_bundle_verify_sealed: no delivery key here), and check 6 when the
 * bundle has a custody/ directory, every rule of formats §4 but the last
 * holder (no technician holds it yet).  Tokens are read but not judged:
 * they belong to devices and stations.  Policy limits are the [trust]
 * defaults (station/config.h).  *out is set whenever the manifest could
 * be read (cu_bundle_free it).  Returns 0 or the first failure in the
 * spec's order; STN_E_USAGE for threshold 0, STN_E_CONFIG for unusable
 * anchors or CRLs.
 */
struct cu_bundle;
int stn_release_verify(const char *anchors_pem, const char *crl_dir,
		       unsigned threshold, int64_t at, const char *dir,
		       struct cu_bundle **out, struct stn_diag *d);

/*
 * What `token issue` and `custody add` check before they write (formats
 * §2, §4, §5), with what is at hand: the signing chain (PEM text, named
 * `cert_path`) holds exactly the role the document needs (cu_cert_duty_pem;
 * with anchors_pem not NULL, cu_cert_check_pem against them at `at`).
 * Errors: those of cu_cert_duty_pem and cu_cert_check_pem, and
 * STN_E_CONFIG for unusable anchors.
 */
enum cu_role;
int stn_release_signer_check(const char *chain_pem, const char *cert_path,
			     enum cu_role role, const char *anchors_pem,
			     int64_t at, struct stn_diag *d);
/* A token's lifetime against policy max-token-ttl (formats §5, §8): over
 * it, STN_E_TOKEN at `where` naming --ttl and the limit (every station
 * with that
 * policy would refuse the token). */
int stn_release_token_ttl(int64_t ttl, int64_t max_ttl, const char *where,
			  struct stn_diag *d);
/*
 * The custody chain already in bundle dir, before a record is added: with
 * anchors_pem, cu_custody_verify (signatures to those anchors) at `at`,
 * else cu_custody_check_links; the last holder is not judged (the new
 * record's signer must be it; cu_custody_append checks that).  No
 * records: nothing to check.  *checked_sigs says whether signatures were
 * checked.  Errors: as those functions, and the manifest's.
 */
int stn_release_custody_check(const char *dir, const char *anchors_pem,
			      int64_t at, int *checked_sigs,
			      struct stn_diag *d);

#endif
