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

#endif
