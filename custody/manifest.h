/* custody/manifest.h: the bundle manifest (formats §3) and the device
 * identity record (devices.md), parsed into plain structs.  Parsing checks
 * form only; whether a bundle may go onto a device is custody/verify.h. */
#ifndef CU_MANIFEST_H
#define CU_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "custody/layout.h"
#include "station/base/sha256.h"

struct stn_diag;

#define CU_MAX_HARDWARE 32

#define CU_IV_LEN 16 /* AES-CTR initial counter block (formats §10) */

struct cu_image {
	char label[33];
	char file[CU_FILE_NAME_MAX + 1];
	uint64_t size;                 /* plaintext size */
	uint8_t sha256[CU_SHA256_LEN]; /* plaintext digest */
	unsigned slot;
	/* formats §10: `cipher = aes-256-ctr`, `iv` and `cipher-sha256`
	 * come together or not at all; the file on the media is then the
	 * ciphertext (as long as the plaintext, CTR). */
	int encrypted;
	uint8_t iv[CU_IV_LEN];
	uint8_t cipher_sha256[CU_SHA256_LEN];
};

struct cu_manifest {
	uint8_t id[CU_SHA256_LEN]; /* bundle id: SHA-256 of the bytes */
	char id_hex[CU_SHA256_HEX_LEN + 1];
	char name[65];
	char version[129]; /* 32 characters, up to 4 bytes each */
	uint64_t sequence;
	int64_t created, expires;
	char model[257];
	char hardware[CU_MAX_HARDWARE][65];
	size_t nhardware; /* 0: any hardware revision */
	struct cu_image images[CU_MAX_IMAGES];
	size_t nimages; /* in file order: the install order */
};

/* Parse manifest bytes; `path` names it in messages.  Errors: STN_E_SYNTAX
 * (FILE:LINE and the rule), STN_E_TOOBIG, STN_E_NOMEM. */
int cu_manifest_parse(const void *buf, size_t len, const char *path,
		      struct cu_manifest **out, struct stn_diag *d);
/* Read DIR/manifest (a regular file, at most CU_RECORD_MAX bytes, never
 * through a symlink) and parse it, naming SHOWN/manifest in messages
 * (shown NULL: dir).  Errors: as cu_record_read and cu_manifest_parse. */
int cu_manifest_load(const char *dir, const char *shown,
		     struct cu_manifest **out, struct stn_diag *d);
void cu_manifest_free(struct cu_manifest *m); /* NULL is fine */
/* The bundle id of DIR/manifest (formats §3: SHA-256 of its bytes),
 * without parsing it.  Errors: as cu_record_read, STN_E_INTERNAL. */
int cu_manifest_id(const char *dir, uint8_t id[CU_SHA256_LEN],
		   struct stn_diag *d);

/* Render a manifest as text exactly as `station bundle create` writes it.
 * Returns a malloc'd NUL-terminated string or NULL when out of memory. */
char *cu_manifest_render(const struct cu_manifest *m);

struct cu_identity {
	char model[257];
	char hardware[65]; /* "" when the device reports none */
	char serial[65];
	char version[129];
	uint64_t sequence;
	int has_sequence;
};

/* Parse a station-device-1 record.  Any problem, a missing serial number
 * included, is STN_E_IDENTITY naming the source and the rule. */
int cu_identity_parse(const void *buf, size_t len, const char *source,
		      struct cu_identity *out, struct stn_diag *d);

/* Fill *out from the fields a transport gathered (descriptors, SMP OS
 * info, configuration), with the rules of the record and no control
 * characters: the device chooses these strings.  hardware and version may
 * be NULL or ""; the sequence is left unknown.  Errors: STN_E_IDENTITY
 * naming `source` and the rule. */
int cu_identity_set(struct cu_identity *out, const char *model,
		    const char *hardware, const char *serial,
		    const char *version, const char *source,
		    struct stn_diag *d);

#endif
