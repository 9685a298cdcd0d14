/* custody/layout.h: the bundle directory's layout (formats §3, §4, §5, §6)
 * as one set of names, name rules and caps.  Staging copies by these rules,
 * discovery looks by them and the trust checks read by them, so a file one
 * of them takes is a file the others expect.  Pure: no I/O. */
#ifndef CU_LAYOUT_H
#define CU_LAYOUT_H

#include <stddef.h>

/* Names in the bundle directory. */
#define CU_LAYOUT_MANIFEST "manifest"
#define CU_LAYOUT_CUSTODY "custody" /* custody/NN.rec, formats §4 */
#define CU_LAYOUT_TOKENS "tokens"   /* tokens/NAME.tok, formats §5 */
#define CU_LAYOUT_CRL "crl"         /* crl/NAME.pem, formats §6 */
#define CU_LAYOUT_KEYS "keys"       /* keys/NAME.key, formats §10 */

/* Caps.  Sizes in bytes; the manifest, a text record, is CU_RECORD_MAX
 * (custody/record.h, formats §1). */
#define CU_SIDECAR_MAX (64 * 1024)   /* record, token, CRL, .sig, .pem */
#define CU_IMAGE_MAX (4ULL << 30)    /* one image */
#define CU_BUNDLE_MAX (16ULL << 30)  /* all images of one bundle */
#define CU_SMALL_TOTAL_MAX (16 << 20) /* manifest and every small file */
#define CU_MAX_IMAGES 64             /* [image] sections in a manifest */
#define CU_MAX_SIGNATURES 16         /* .sig files beside a manifest */
#define CU_MAX_FILE_SIGNATURES 4     /* .sig files beside a record, token */
#define CU_MAX_CUSTODY 99            /* custody/NN.rec files */
#define CU_MAX_TOKENS 64             /* tokens/NAME.tok files */
#define CU_MAX_CRLS 16               /* crl/NAME.pem files */
#define CU_MAX_KEYFILES 256          /* keys/NAME.key files (images x
					recipients) */
#define CU_KEYFILE_MAX 4096          /* one keys/NAME.key */
#define CU_DIR_ENTRIES_MAX 10000     /* entries read from one directory */
/* Staging refuses (STN_E_TOOBIG) the bundle directory, or its custody/,
 * tokens/ or crl/, when readdir gives more than CU_DIR_ENTRIES_MAX entries
 * ("." and ".." count), with this text; discovery (media/discover.h)
 * applies the same rule so a listing shows the refusal verify will hit. */
#define CU_DIR_ENTRIES_WHY "more than %d entries in one directory"
#define CU_FILE_NAME_MAX 128         /* an image's file name */
#define CU_FILE_CHARS "A-Za-z0-9._-" /* ... and its characters (§3) */
#define CU_LAYOUT_NAME_MAX 96 /* longer names are none of ours: labels
				 are 32 characters at most */

/* Is name an image file name a manifest may give (formats §3): 1 to
 * CU_FILE_NAME_MAX of CU_FILE_CHARS, no leading '.', and not the manifest's
 * or its signatures' names?  Returns NULL when it is, else the rule it
 * breaks (static text). */
const char *cu_layout_image_name(const char *name);

/* custody/NN.rec: NN two to eight digits (formats §4; eight keeps names
 * short, CU_MAX_CUSTODY bounds the index far below).  *index (may be
 * NULL) receives NN's value. */
int cu_layout_custody_name(const char *name, unsigned long *index);
/* tokens/NAME.tok and crl/NAME.pem: NAME a §1 label. */
int cu_layout_token_name(const char *name);
int cu_layout_crl_name(const char *name);
/* keys/NAME.key: NAME as a section label ([a-z0-9][a-z0-9-]{0,31}) or
 * with dots ([a-z0-9][a-z0-9.-]{0,63}), ".key" appended. */
int cu_layout_key_name(const char *name);
int cu_layout_manifest_name(const char *name);

/* Is name a detached signature (formats §2) of a file is_primary accepts:
 * F.sig or F.LABEL.sig?  Writes F into primary (CU_LAYOUT_NAME_MAX bytes). */
int cu_layout_sig_of(const char *name, int (*is_primary)(const char *),
		     char primary[CU_LAYOUT_NAME_MAX]);
/* The same for the signer's chain beside it: F.pem or F.LABEL.pem. */
int cu_layout_chain_of(const char *name, int (*is_primary)(const char *),
		       char primary[CU_LAYOUT_NAME_MAX]);

#endif
