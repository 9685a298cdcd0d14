/* media/stage.h: copy a bundle from media into the station's private staging
 * area, hashing each image in the same pass, so that verification and the
 * push both use bytes the media can no longer change (no TOCTOU).  Nothing
 * on the media is trusted: no symlinks, no special files, no names the
 * manifest did not give, sizes capped. */
#ifndef MD_STAGE_H
#define MD_STAGE_H

#include <stddef.h>
#include <stdint.h>

struct stn_diag;
struct cu_measure;

#define MD_IMAGE_MAX (4ULL << 30)   /* per image */
#define MD_BUNDLE_MAX (16ULL << 30) /* all images of one bundle */
#define MD_SIDECAR_MAX (64 * 1024)  /* .sig, .pem and other small files */

struct md_progress {
	/* Called as bytes are copied; `file` is the name in the bundle. */
	void (*update)(void *ctx, const char *file, uint64_t done,
		       uint64_t total);
	void *ctx;
};

struct md_stage;

/*
 * Stage the bundle in src_dir under staging_root (created 0700 when
 * absent) in a fresh private directory.  Copies the manifest, its .sig and
 * .pem files and every image the manifest names; images that are missing,
 * symlinks, not regular or of the wrong size are not copied but remembered,
 * so verification reports them as check 3 with the media path.  Free space
 * is checked before any image is copied.  Errors: STN_E_IO (media or
 * staging area unreadable, short of space; names the file), STN_E_SYNTAX
 * (manifest unreadable as a manifest), STN_E_UNSAFE, STN_E_TOOBIG.
 */
int md_stage_bundle(const char *src_dir, const char *staging_root,
		    const struct md_progress *progress, struct md_stage **out,
		    struct stn_diag *d);

/* The private directory holding the staged copy (borrowed). */
const char *md_stage_dir(const struct md_stage *s);
/* A measure for cu_bundle_verify that answers from what staging hashed:
 * images are read once.  Borrowed, valid while s lives. */
const struct cu_measure *md_stage_measure(const struct md_stage *s);
/* Remove the staged copy and free.  NULL is fine. */
void md_stage_free(struct md_stage *s);

#endif
