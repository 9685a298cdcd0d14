/* station/release.h: release engineering's side, writing a bundle
 * directory: images copied in and hashed, and a manifest that the strict
 * parser accepts (signing is custody/sign.h, cu_sign_file). */
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
};

/* Create outdir (it must not exist), copy the images in, hashing them as
 * they are copied, and write outdir/manifest.  The manifest is parsed back
 * before it is written, so nothing the station would refuse as malformed
 * leaves here.  On failure outdir is removed.  Errors: STN_E_USAGE (bad
 * value, naming the option), STN_E_IO. */
int stn_release_create(const struct stn_release *rel, const char *outdir,
		       struct stn_diag *d);

#endif
