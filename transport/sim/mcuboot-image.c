/* transport/sim/mcuboot-image.c: wrap a file as an MCUboot image (header,
 * body, an optional protected TLV area, and the SHA256 TLV), so that the
 * tests, the demo and the benchmark can make images for the SMP simulator
 * without MCUboot's imgtool.  Unsigned: the simulator checks the hash, as
 * MCUboot does before it boots an image, and nothing more. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "station/base/sha256.h"
#include "transport/mcuboot.h"

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v & 0xffff);
	put16(p + 2, v >> 16);
}

int main(int argc, char **argv)
{
	unsigned major = 0, minor = 0, rev = 0, build = 0;
	uint8_t hdr[32] = {0}, prot[12], tlv[4 + 4 + 32], dig[32];
	int protect = 0, argi = 1;
	struct cu_sha256 *h;
	uint8_t *body = NULL;
	size_t len = 0, cap = 0;
	FILE *in, *out;

	if (argc > 2 && strcmp(argv[1], "--version") == 0) {
		if (sscanf(argv[2], "%u.%u.%u+%u", &major, &minor, &rev,
			   &build) < 3 || major > 255 || minor > 255 ||
		    rev > 65535) {
			fprintf(stderr, "mcuboot-image: bad version %s\n",
				argv[2]);
			return 2;
		}
		argi = 3;
	}
	if (argc > argi && strcmp(argv[argi], "--protected") == 0) {
		protect = 1;
		argi++;
	}
	if (argc - argi != 2) {
		fputs("usage: mcuboot-image [--version MAJ.MIN.REV[+BUILD]] "
		      "[--protected] BODY OUT\n", stderr);
		return 2;
	}
	in = fopen(argv[argi], "rb");
	if (!in) {
		fprintf(stderr, "mcuboot-image: %s: %s\n", argv[argi],
			strerror(errno));
		return 1;
	}
	for (;;) {
		size_t n;

		if (len == cap) {
			uint8_t *nb = realloc(body, cap ? cap * 2 : 65536);

			if (!nb)
				return 1;
			body = nb;
			cap = cap ? cap * 2 : 65536;
		}
		n = fread(body + len, 1, cap - len, in);
		if (n == 0)
			break;
		len += n;
	}
	fclose(in);
	put32(hdr, TP_MCUBOOT_MAGIC);
	put16(hdr + 8, sizeof(hdr));
	put16(hdr + 10, protect ? sizeof(prot) : 0);
	put32(hdr + 12, (uint32_t)len);
	hdr[20] = (uint8_t)major;
	hdr[21] = (uint8_t)minor;
	put16(hdr + 22, rev);
	put32(hdr + 24, build);
	/* A protected area with one security-counter TLV (type 0x50). */
	put16(prot, TP_MCUBOOT_TLV_PROT_INFO);
	put16(prot + 2, sizeof(prot));
	put16(prot + 4, 0x50);
	put16(prot + 6, 4);
	put32(prot + 8, 1);
	h = cu_sha256_new();
	if (!h)
		return 1;
	int hrc = cu_sha256_update(h, hdr, sizeof(hdr));
	if (!hrc)
		hrc = cu_sha256_update(h, body, len);
	if (!hrc && protect)
		hrc = cu_sha256_update(h, prot, sizeof(prot));
	if (!hrc)
		hrc = cu_sha256_final(h, dig);
	cu_sha256_free(h);
	if (hrc)
		return 1;
	put16(tlv, TP_MCUBOOT_TLV_INFO);
	put16(tlv + 2, sizeof(tlv));
	put16(tlv + 4, TP_MCUBOOT_TLV_SHA256);
	put16(tlv + 6, 32);
	memcpy(tlv + 8, dig, 32);
	out = fopen(argv[argi + 1], "wb");
	if (!out || fwrite(hdr, 1, sizeof(hdr), out) != sizeof(hdr) ||
	    fwrite(body, 1, len, out) != len ||
	    (protect && fwrite(prot, 1, sizeof(prot), out) != sizeof(prot)) ||
	    fwrite(tlv, 1, sizeof(tlv), out) != sizeof(tlv) ||
	    fclose(out) != 0) {
		fprintf(stderr, "mcuboot-image: %s: %s\n", argv[argi + 1],
			strerror(errno));
		return 1;
	}
	free(body);
	return 0;
}
