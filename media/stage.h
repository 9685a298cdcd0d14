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
#define MD_SIDECAR_MAX (64 * 1024)  /* the manifest, a .sig or a .pem */
#define MD_MAX_SIGNATURES 16        /* .sig files beside one manifest */

struct md_progress {
	/* Called as bytes are copied; `file` is the name in the bundle. */
	void (*update)(void *ctx, const char *file, uint64_t done,
		       uint64_t total);
	void *ctx;
};

struct md_stage;

/*
 * Phase one: open the bundle directory in src_dir (held open until
 * md_stage_free, so it cannot be swapped between phases), make a fresh
 * private directory under staging_root (created 0700 when absent; an
 * existing one must be a directory owned by this user with no group or
 * other access, never a symlink), and copy the manifest and its signature
 * files: at most MD_MAX_SIGNATURES `manifest[.LABEL].sig`, each with its
 * `.pem` when present.  Nothing else is read yet, so a caller can refuse an
 * unsigned bundle before copying its images.  Errors: STN_E_USAGE (not a
 * directory, no manifest), STN_E_UNSAFE, STN_E_TOOBIG, STN_E_SYNTAX
 * (manifest malformed), STN_E_IO (media or staging trouble, naming the
 * file).  On error nothing is left in the staging area.
 */
int md_stage_begin(const char *src_dir, const char *staging_root,
		   struct md_stage **out, struct stn_diag *d);

/*
 * Phase two: copy every image the manifest names, hashing in the same
 * pass.  Sizes are checked (each at most MD_IMAGE_MAX, all at most
 * MD_BUNDLE_MAX) and free space is checked before the first byte.  Images
 * that are missing, symlinks, not regular or of the wrong size are not
 * copied but remembered, so verification reports them as check 3 with the
 * media path.  Staged files are made read-only.  Errors: STN_E_IO (read
 * error on the media, e.g. pulled mid-copy; staging full), STN_E_TOOBIG.
 */
int md_stage_images(struct md_stage *s, const struct md_progress *progress,
		    struct stn_diag *d);

/* Both phases. */
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
