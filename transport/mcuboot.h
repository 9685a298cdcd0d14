/* transport/mcuboot.h: the MCUboot image format, as far as the station needs
 * it to predict what an SMP device will report for an image it was sent:
 * the header's version and the image hash (SHA-256 over the header, the
 * body and the protected TLVs, carried in the image's own SHA256 TLV). */
#ifndef TP_MCUBOOT_H
#define TP_MCUBOOT_H

#include <stddef.h>
#include <stdint.h>

#include "station/base/error.h"

#define TP_MCUBOOT_MAGIC 0x96f3b83du
#define TP_MCUBOOT_HDR_MIN 32
#define TP_MCUBOOT_TLV_INFO 0x6907u      /* unprotected TLV area */
#define TP_MCUBOOT_TLV_PROT_INFO 0x6908u /* protected TLV area */
#define TP_MCUBOOT_TLV_SHA256 0x10u

struct tp_mcuboot_info {
	uint8_t hash[32];  /* the SHA256 TLV's value */
	char version[48];  /* "major.minor.revision", ".build" when nonzero */
	uint32_t hdr_size, img_size, protect_size;
	uint64_t hashed;   /* bytes the hash covers */
};

/* Inspect the image in fd (size bytes from offset 0; the file position is
 * left where it is, reads use pread): the header magic, a header of at
 * least 32 bytes, header, body and both TLV areas inside the file, and a
 * 32-byte SHA256 TLV.  With `verify`, the hash is also recomputed over the
 * bytes it covers and must equal the TLV (what MCUboot checks before it
 * boots an image).  Any failure is STN_E_IMAGE naming `shown` and what is
 * wrong, or STN_E_IO when fd cannot be read. */
int tp_mcuboot_inspect(int fd, uint64_t size, int verify, const char *shown,
		       struct tp_mcuboot_info *out, struct stn_diag *d);

#endif
