/* transport/mcuboot.c: reading an MCUboot image's header and TLV trailer.
 * Every offset and length comes from the file, so each is checked against
 * the file's size before it is used. */
#include "transport/mcuboot.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "station/base/hex.h"
#include "station/base/sha256.h"

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static int read_at(int fd, void *buf, size_t len, uint64_t off,
		   const char *shown, struct stn_diag *d)
{
	size_t have = 0;

	while (have < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + have, len - have,
				  (off_t)(off + have));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return stn_fail(d, STN_E_IO, shown, "read: %s",
					strerror(errno));
		if (n == 0)
			return stn_fail(d, STN_E_IMAGE, shown,
					"MCUboot image ends at byte %" PRIu64,
					off + have);
		have += (size_t)n;
	}
	return 0;
}

static int bad(struct stn_diag *d, const char *shown, const char *what)
{
	return stn_fail(d, STN_E_IMAGE, shown, "not a usable MCUboot image: %s",
			what);
}

static int hash_range(int fd, uint64_t len, const char *shown,
		      uint8_t out[32], struct stn_diag *d)
{
	struct cu_sha256 *h = cu_sha256_new();
	uint8_t *buf = malloc(1 << 16);
	uint64_t off = 0;
	int rc = 0;

	if (!h || !buf) {
		rc = stn_fail(d, STN_E_NOMEM, shown, "hashing");
		goto out;
	}
	while (off < len) {
		size_t n = len - off > (1 << 16) ? (1 << 16)
						 : (size_t)(len - off);

		if ((rc = read_at(fd, buf, n, off, shown, d)))
			goto out;
		if ((rc = cu_sha256_update(h, buf, n)))
			break;
		off += n;
	}
	if (rc == 0)
		rc = cu_sha256_final(h, out);
	if (rc)
		rc = stn_fail(d, rc, shown, "hashing: %s", stn_strerror(rc));
out:
	cu_sha256_free(h);
	free(buf);
	return rc;
}

int tp_mcuboot_inspect(int fd, uint64_t size, int verify, const char *shown,
		       struct tp_mcuboot_info *out, struct stn_diag *d)
{
	struct tp_mcuboot_info info;
	uint8_t hdr[32], tlv[4];
	uint64_t pos, end;
	uint32_t build;
	int found = 0;
	int rc;

	memset(&info, 0, sizeof(info));
	if (size < TP_MCUBOOT_HDR_MIN)
		return bad(d, shown, "shorter than an MCUboot header");
	if ((rc = read_at(fd, hdr, sizeof(hdr), 0, shown, d)))
		return rc;
	if (le32(hdr) != TP_MCUBOOT_MAGIC)
		return bad(d, shown, "no MCUboot header magic (0x96f3b83d); "
				     "an SMP device boots only MCUboot images");
	info.hdr_size = le16(hdr + 8);
	info.protect_size = le16(hdr + 10);
	info.img_size = le32(hdr + 12);
	if (info.hdr_size < TP_MCUBOOT_HDR_MIN)
		return bad(d, shown, "header size below 32 bytes");
	pos = (uint64_t)info.hdr_size + info.img_size;
	if (pos + info.protect_size + 4 > size)
		return bad(d, shown, "header and body run past the end of "
				     "the file");
	if (info.protect_size) {
		if ((rc = read_at(fd, tlv, 4, pos, shown, d)))
			return rc;
		if (le16(tlv) != TP_MCUBOOT_TLV_PROT_INFO ||
		    le16(tlv + 2) != info.protect_size)
			return bad(d, shown, "protected TLV area does not "
					     "match the header");
	}
	info.hashed = pos + info.protect_size;
	pos = info.hashed;
	if ((rc = read_at(fd, tlv, 4, pos, shown, d)))
		return rc;
	if (le16(tlv) != TP_MCUBOOT_TLV_INFO)
		return bad(d, shown, "no TLV area after the image body");
	end = pos + le16(tlv + 2);
	if (end > size || le16(tlv + 2) < 4)
		return bad(d, shown, "TLV area runs past the end of the file");
	for (pos += 4; pos + 4 <= end;) {
		uint16_t type, len;

		if ((rc = read_at(fd, tlv, 4, pos, shown, d)))
			return rc;
		type = le16(tlv);
		len = le16(tlv + 2);
		if (pos + 4 + len > end)
			return bad(d, shown, "a TLV runs past its area");
		if (type == TP_MCUBOOT_TLV_SHA256) {
			if (len != 32 || found)
				return bad(d, shown, "SHA256 TLV is not one "
						     "32-byte value");
			if ((rc = read_at(fd, info.hash, 32, pos + 4, shown,
					  d)))
				return rc;
			found = 1;
		}
		pos += 4 + (uint64_t)len;
	}
	if (pos != end)
		return bad(d, shown, "TLV area ends inside a TLV");
	if (!found)
		return bad(d, shown, "no SHA256 TLV");
	if (verify) {
		uint8_t dig[32];
		char have[65], want[65];

		if ((rc = hash_range(fd, info.hashed, shown, dig, d)))
			return rc;
		if (memcmp(dig, info.hash, 32) != 0) {
			cu_hex(dig, 32, have);
			cu_hex(info.hash, 32, want);
			return stn_fail(d, STN_E_IMAGE, shown,
					"MCUboot image hashes to %s, its SHA256 "
					"TLV says %s", have, want);
		}
	}
	build = le32(hdr + 24);
	if (build)
		snprintf(info.version, sizeof(info.version), "%u.%u.%u.%" PRIu32,
			 hdr[20], hdr[21], le16(hdr + 22), build);
	else
		snprintf(info.version, sizeof(info.version), "%u.%u.%u",
			 hdr[20], hdr[21], le16(hdr + 22));
	*out = info;
	return 0;
}
