/* media/stage.h: copy a bundle from media into the station's private staging
 * area, hashing each image in the same pass, so that verification and the
 * push both use bytes the media can no longer change (no TOCTOU).  Nothing
 * on the media is trusted: no symlinks, no special files, no names the
 * formats do not give, counts and sizes capped.
 *
 * The staged directory has exactly the bundle layout of formats §3
 * (custody/layout.h):
 *   manifest, manifest[.LABEL].sig/.pem     (phase one)
 *   custody/NN.rec[.LABEL].sig/.pem         (phase one; NN two or more digits)
 *   tokens/NAME.tok[.LABEL].sig/.pem        (phase one; NAME a §1 label)
 *   crl/NAME.pem                            (phase one)
 *   the images the manifest names           (phase two)
 * Anything else on the media is ignored.  Staged files are read-only. */
#ifndef MD_STAGE_H
#define MD_STAGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "custody/layout.h" /* the names, rules and caps staging obeys */

struct stn_diag;
struct cu_source;

struct md_progress {
	/* Called as bytes are copied; `file` is the name in the bundle. */
	void (*update)(void *ctx, const char *file, uint64_t done,
		       uint64_t total);
	void *ctx;
};

/* How staging reads file contents from the media: read(2) unless given.
 * Tests substitute a fake that fails after a countdown, as media pulled
 * mid-copy would.  `read` behaves as read(2): bytes, 0 at the end, or -1
 * with errno set. */
struct md_io {
	ssize_t (*read)(void *ctx, int fd, void *buf, size_t len);
	void *ctx;
};

struct md_stage;

/*
 * Phase one: open the bundle directory in src_dir (held open until
 * md_stage_free, so it cannot be swapped between phases), make a fresh
 * private directory under staging_root (created 0700 when absent; an
 * existing one must be a directory owned by this user with no group or
 * other access, never a symlink), and copy the small files: the manifest
 * (parsed from the staged copy), at most CU_MAX_SIGNATURES
 * `manifest[.LABEL].sig` each with its `.pem` when present, then custody/,
 * tokens/ and crl/ as laid out above (at most CU_MAX_CUSTODY,
 * CU_MAX_TOKENS, CU_MAX_CRLS files, CU_MAX_FILE_SIGNATURES signatures
 * each, every file at most CU_SIDECAR_MAX bytes and all together at most
 * CU_SMALL_TOTAL_MAX).  A `.pem` is copied only beside its `.sig`; a `.sig`
 * only beside its file.  Every file is opened relative to its directory's
 * descriptor with O_NOFOLLOW and must be a regular file; custody/, tokens/
 * and crl/ must be real directories when present.  Images are not read
 * yet, so a caller can refuse an unsigned bundle before copying them.
 * Errors: STN_E_USAGE (not a directory, no manifest), STN_E_UNSAFE
 * (symlink, special file), STN_E_TOOBIG (a cap), STN_E_SYNTAX (manifest
 * malformed), STN_E_IO (media or staging trouble, e.g. media pulled),
 * STN_E_NOMEM; d names the file (its media path).  On error nothing is
 * left in the staging area.
 */
int md_stage_begin(const char *src_dir, const char *staging_root,
		   struct md_stage **out, struct stn_diag *d);
/* The same, reading file contents through io (NULL: read(2)).  io is
 * borrowed and must outlive the stage. */
int md_stage_begin_io(const char *src_dir, const char *staging_root,
		      const struct md_io *io, struct md_stage **out,
		      struct stn_diag *d);

/*
 * Phase two: copy every image the manifest names, hashing in the same
 * pass (on a second thread, overlapping the hash with the reads and
 * writes; memory stays two 1 MiB buffers whatever the size).  Sizes are
 * checked (each at most CU_IMAGE_MAX, all at most CU_BUNDLE_MAX) and free
 * space is checked before the first byte.  Images that are missing,
 * symlinks, not regular or of the wrong size are not copied but
 * remembered, so verification reports them as check 3 with the media
 * path.  Errors: STN_E_IO (read error on the media, e.g. pulled mid-copy,
 * naming the media file; staging full, naming the staged file),
 * STN_E_TOOBIG.  After an error the stage is spoiled: its measure answers
 * STN_E_IO for every image and md_stage_images refuses to run again, so a
 * half-staged bundle is never used; md_stage_free it.
 */
int md_stage_images(struct md_stage *s, const struct md_progress *progress,
		    struct stn_diag *d);

/*
 * Encrypted images (formats §10).  Phase one also copies keys/NAME.key
 * (cu_layout_key_name; at most CU_MAX_KEYFILES of CU_KEYFILE_MAX each).
 * Phase two copies an encrypted image as it is (ciphertext), hashing it,
 * and checks `cipher-sha256` on that copy: a tampered ciphertext is its
 * image's check 3 problem (STN_E_IMAGE) and is never decrypted.  Only
 * then does it ask `keys` for the content key and decrypt the staged copy
 * in memory while hashing the plaintext (a second pass over the staged
 * file, never writing plaintext; memory stays flat), so the measure
 * answers the plaintext's size and digest.  A content_key failure becomes
 * that image's check 3 problem with its words.  keys NULL: every
 * encrypted image's problem is "no delivery key".  The key buffer is
 * wiped after each image.
 */
struct cu_image;
struct md_keys {
	int (*content_key)(void *ctx, const struct cu_image *img,
			   uint8_t key[32], struct stn_diag *d);
	void *ctx;
};
int md_stage_images_keys(struct md_stage *s,
			 const struct md_progress *progress,
			 const struct md_keys *keys, struct stn_diag *d);

/* Both phases. */
int md_stage_bundle(const char *src_dir, const char *staging_root,
		    const struct md_progress *progress, struct md_stage **out,
		    struct stn_diag *d);

/* The private directory holding the staged copy (borrowed). */
const char *md_stage_dir(const struct md_stage *s);
/* The staged bundle as verification reads it (cu_bundle_open): the staged
 * directory, named by its media path, the manifest phase one parsed from
 * the staged copy, and a measure that answers from what phase two hashed
 * (images are read once; before phase two, or after it failed, every image
 * answers STN_E_IO).  Borrowed, valid while s lives. */
const struct cu_source *md_stage_source(const struct md_stage *s);

/*
 * Keep the staged copy after md_stage_free (policy: e.g. for an auditor).
 * Renames STAGING_ROOT/stage-XXXXXX to STAGING_ROOT/kept-XXXXXX now, so
 * md_stage_dir changes, and md_stage_sweep never removes it.  Errors:
 * STN_E_IO.
 */
int md_stage_keep(struct md_stage *s, struct stn_diag *d);

/* Remove the staged copy (unless kept) and free.  NULL is fine. */
void md_stage_free(struct md_stage *s);

/*
 * Remove staged copies left by a station that stopped without cleaning up
 * (crash, power loss): every STAGING_ROOT/stage-* directory that no live
 * stage holds (each live stage holds a lock on its directory).  Kept
 * copies are left alone.  *removed (may be NULL) receives the count.
 * Errors: STN_E_UNSAFE (staging root not ours, as md_stage_begin), STN_E_IO.
 */
int md_stage_sweep(const char *staging_root, unsigned *removed,
		   struct stn_diag *d);

#endif
