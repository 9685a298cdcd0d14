/* media/discover.h: find the bundles on removable media (formats §3: a
 * directory holding a file named `manifest`) so a front end can list them
 * side by side.  Discovery only reads directories and manifests, bounded in
 * depth, entries and sizes; it trusts nothing it finds and decides nothing:
 * a bundle is staged (media/stage.h) and verified before any use, and the
 * listing is shown to people, never fed to a check.
 *
 * Skipped silently: names starting with `.` (macOS `._*`, `.Trashes`,
 * `.Spotlight-V100`, `.fseventsd`, Unix hidden files) and the Windows
 * folders `System Volume Information` and `$RECYCLE.BIN`.  Noted, never
 * followed or opened: symbolic links, device nodes, FIFOs and sockets.
 * Refused, with the reason: a bundle whose manifest is a symlink, not a
 * regular file, over 64 KiB, unreadable or malformed, and one whose
 * directory (or custody/, tokens/, crl/) staging would refuse for holding
 * more than CU_DIR_ENTRIES_MAX entries (custody/layout.h: the same rule and
 * words, so the listing shows what verify will say). */
#ifndef MD_DISCOVER_H
#define MD_DISCOVER_H

#include <stddef.h>
#include <stdint.h>

#include "station/base/sha256.h"

struct stn_diag;

#define MD_DISCOVER_DEPTH 4    /* levels below the media root searched */
#define MD_DISCOVER_BUNDLES 64 /* bundles listed; more is noted */
#define MD_DISCOVER_NOTES 64   /* notes kept; more are counted */
#define MD_DISCOVER_DIRS 2000  /* directories opened in one scan */

/* A bundle found; every string is from the media, shown, never trusted. */
struct md_bundle {
	char path[4096];   /* the bundle directory */
	char medium[4096]; /* the mount point it is on, or the media root */
	char name[65];
	char version[129];
	uint64_t sequence;
	char model[257];
	int64_t created, expires;
	char id_hex[CU_SHA256_HEX_LEN + 1]; /* SHA-256 of the manifest bytes */
	size_t nimages;
	uint64_t bytes;	    /* sum of the image sizes the manifest states */
	size_t nsignatures; /* `manifest[.LABEL].sig` files beside it */
	int has_custody, has_tokens, has_crl; /* those directories exist */
	/* A first look at the images (no byte read): code 0 when each is a
	 * regular file of the stated size; else the first problem, which
	 * staging and check 3 will report again. */
	int image_problem;
	char image_note[512];
};

enum md_note_kind {
	MD_NOTE_REFUSED = 1, /* a directory with a manifest that is unusable */
	MD_NOTE_IGNORED,     /* a symlink or special file, not followed */
	MD_NOTE_LIMIT,	     /* a bound was reached; the listing is partial */
};

struct md_note {
	enum md_note_kind kind;
	int code; /* STN_E_* for REFUSED and LIMIT */
	char path[4096];
	char text[512];
};

struct md_discovery {
	struct md_bundle *bundles; /* sorted by path */
	size_t nbundles;
	struct md_note *notes; /* in the order found */
	size_t nnotes;
	size_t notes_dropped; /* over MD_DISCOVER_NOTES */
};

/*
 * Scan root (the configured media root, which may itself be a symlink the
 * administrator set up; nothing below it is followed) for bundles down to
 * max_depth levels (0 means MD_DISCOVER_DEPTH; root itself is level 0, so a
 * bundle at ROOT/stick/bundle is level 2).  A directory holding a manifest
 * is a bundle and is not searched further.  Problems with what is on the
 * media become notes, not errors.  Errors: STN_E_CONFIG (root missing or
 * not a directory), STN_E_IO (root unreadable), STN_E_NOMEM.  On success
 * *out is a new discovery to free with md_discovery_free.
 */
int md_discover(const char *root, unsigned max_depth, struct md_discovery **out,
		struct stn_diag *d);
void md_discovery_free(struct md_discovery *disc); /* NULL is fine */

#endif
