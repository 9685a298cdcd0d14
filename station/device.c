/* station/device.c: what every transport shares.  A SPEC's scheme picks a
 * row of the transport table (station/device_internal.h); this file checks
 * the staged image before a byte is sent, hashes exactly what goes on the
 * wire, and holds the proof rule: a digest the device reports must be the
 * manifest's. */
#include "station/device_internal.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "station/base/aes_ctr.h"
#include "station/base/hex.h"
#include "station/base/sha256.h"
#include "station/base/error.h"
#include "transport/serial.h"
#include "station/base/fileio.h"

extern const struct stn_device_ops stn_device_console_ops;
extern const struct stn_device_ops stn_device_ymodem_ops;
extern const struct stn_device_ops stn_device_smp_ops;
extern const struct stn_device_ops stn_device_usb_ops;

/* The SPEC table: production rows, then what stn_device_register added. */
#define MAX_BACKENDS 8
static const struct stn_device_ops *backends[MAX_BACKENDS] = {
	&stn_device_console_ops, &stn_device_ymodem_ops, &stn_device_smp_ops,
	&stn_device_usb_ops};
static size_t nbackends = 4;

const char *stn_proof_name(enum stn_proof p)
{
	switch (p) {
	case STN_PROOF_IMAGE_HASH: return "image-hash";
	case STN_PROOF_DEVICE_SHA: return "device-sha256";
	case STN_PROOF_READBACK: return "readback";
	case STN_PROOF_DEVICE_SIGNED: return "device-signed";
	default: return "none";
	}
}

int stn_device_register(const struct stn_device_ops *ops, struct stn_diag *d)
{
	for (size_t i = 0; i < nbackends; i++) {
		if (backends[i] == ops)
			return 0;
		if (strcmp(backends[i]->scheme, ops->scheme) == 0)
			return stn_fail(d, STN_E_USAGE, ops->scheme,
					"device scheme %s: is taken",
					ops->scheme);
	}
	if (nbackends == MAX_BACKENDS)
		return stn_fail(d, STN_E_USAGE, ops->scheme,
				"the device table is full");
	backends[nbackends++] = ops;
	return 0;
}

/* The row for spec's scheme, and what follows "scheme:". */
static int spec_parse(const char *spec, const struct stn_device_ops **ops,
		      const char **rest, struct stn_diag *d)
{
	for (size_t i = 0; i < nbackends; i++) {
		size_t n = strlen(backends[i]->scheme);

		if (strncmp(spec, backends[i]->scheme, n) == 0 &&
		    spec[n] == ':') {
			*ops = backends[i];
			*rest = spec + n + 1;
			return backends[i]->spec_check(spec, *rest, d);
		}
	}
	return stn_fail(d, STN_E_USAGE, spec,
			"device SPEC must be serial:/dev/ttyX, "
			"ymodem:/dev/ttyX, smp:/dev/ttyX or usb:...");
}

int stn_device_spec_check(const char *spec, struct stn_diag *d)
{
	const struct stn_device_ops *ops;
	const char *rest;

	return spec_parse(spec, &ops, &rest, d);
}

int stn_device_path_check(const char *spec, const char *rest,
			  struct stn_diag *d)
{
	if (rest[0] != '/' || strlen(rest) >= 4096)
		return stn_fail(d, STN_E_USAGE, spec,
				"serial device path must be absolute");
	return 0;
}

int stn_device_port(const struct stn_device *dev,
		    const struct stn_config *cfg, enum stn_port_mode mode,
		    const struct stn_port **port, unsigned *baud, int *rtscts,
		    struct stn_diag *d)
{
	static const char *const modes[] = {"console", "ymodem", "smp"};
	static const char *const schemes[] = {"serial", "ymodem", "smp"};
	const struct stn_port *p = stn_config_port(cfg, dev->rest);

	if (p && p->mode != mode)
		return stn_fail(d, STN_E_USAGE, dev->name,
				"[port %s] is configured as mode = %s; use "
				"%s:%s", p->label, modes[p->mode],
				schemes[p->mode], dev->rest);
	*port = p;
	*baud = p ? p->baud : 115200;
	*rtscts = p ? p->rtscts : 0;
	return 0;
}

int stn_device_line_open(struct stn_device *dev, const struct stn_config *cfg,
			 enum stn_port_mode mode, struct stn_diag *d)
{
	struct stn_serial_line *line = stn_device_priv(dev);
	unsigned baud;
	int rtscts, rc;

	if ((rc = stn_device_port(dev, cfg, mode, &line->port, &baud, &rtscts,
				  d)))
		return rc;
	return tp_serial_open(dev->rest, baud, rtscts, &line->serial, d);
}

void stn_device_line_close(struct stn_device *dev)
{
	struct stn_serial_line *line = stn_device_priv(dev);

	tp_serial_close(line->serial);
}

int stn_device_open(const struct stn_config *cfg, const char *spec,
		    struct stn_device **out, struct stn_diag *d)
{
	const struct stn_device_ops *ops;
	struct stn_device *dev;
	const char *rest;
	int rc;

	if ((rc = spec_parse(spec, &ops, &rest, d)))
		return rc;
	dev = calloc(1, sizeof(*dev) + ops->priv_size);
	if (!dev)
		return stn_fail(d, STN_E_NOMEM, spec, "opening device");
	dev->ops = ops;
	snprintf(dev->name, sizeof(dev->name), "%s", spec);
	dev->rest = dev->name + (rest - spec);
	if ((rc = ops->open(dev, cfg, d))) {
		stn_device_close(dev);
		return rc;
	}
	*out = dev;
	return 0;
}

void stn_device_close(struct stn_device *dev)
{
	if (!dev)
		return;
	if (dev->ops->close)
		dev->ops->close(dev);
	free(dev);
}

const char *stn_device_name(const struct stn_device *dev)
{
	return dev->name;
}

const char *stn_device_transport(const struct stn_device *dev)
{
	return dev->ops->transport;
}

int stn_device_identify(struct stn_device *dev, struct cu_identity *id,
			struct stn_diag *d)
{
	int rc = dev->ops->identify(dev, id, d);

	dev->identified |= rc == 0;
	return rc;
}

/* Streams the staged image and hashes exactly what goes on the wire.  An
 * image staged encrypted (formats §10) is decrypted as it is read, in the
 * transport's own buffer: the plaintext is never written anywhere. */
struct hashing_source {
	int fd;
	const char *path;
	struct cu_ctr *ctr; /* NULL: the staged copy is the plaintext */
	struct cu_sha256 *h;
	uint64_t sent;
	struct stn_diag *d;
	const int *stop; /* the install's interrupt flag, or NULL */
};

/* Every transport reads the image through this source one block at a
 * time, so a stop requested here ends any of them between blocks, through
 * its own error path (YMODEM cancels the receiver, DFU aborts). */
static int hashing_read(void *ctx, void *buf, size_t len, size_t *got)
{
	struct hashing_source *src = ctx;
	ssize_t n;
	int sig = src->stop ? __atomic_load_n(src->stop, __ATOMIC_RELAXED) : 0;

	if (sig)
		return stn_fail(src->d, STN_E_INTERRUPTED, src->path,
				"interrupted by signal %d (%s) after %llu "
				"bytes: the device holds a partial image", sig,
				sig == SIGINT ? "SIGINT" : sig == SIGTERM
				? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "?",
				(unsigned long long)src->sent);

	n = stn_read_retry(src->fd, buf, len);
	if (n < 0)
		return stn_fail(src->d, STN_E_IO, src->path,
				"read from staging: %s", strerror(errno));
	if (src->ctr && cu_ctr_apply(src->ctr, buf, buf, (size_t)n))
		return stn_fail(src->d, STN_E_INTERNAL, src->path,
				"decrypting what is sent failed");
	if (cu_sha256_update(src->h, buf, (size_t)n))
		return stn_fail(src->d, STN_E_INTERNAL, src->path,
				"hashing what is sent failed");
	src->sent += (uint64_t)n;
	*got = (size_t)n;
	return 0;
}

static void progress_adapter(void *ctx, uint64_t done, uint64_t total)
{
	const struct stn_device_progress *p = ctx;
	if (p && p->update)
		p->update(p->ctx, done, total);
}

/* Hashes the whole staged file from fd and rewinds it. */
static int prehash(int fd, const char *shown, uint8_t out[CU_SHA256_LEN],
		   struct stn_diag *d)
{
	int rc = cu_sha256_fd(fd, CU_IMAGE_MAX, shown, out, NULL, d);

	if (rc == 0 && lseek(fd, 0, SEEK_SET) != 0)
		rc = stn_fail(d, STN_E_IO, shown, "rewind staged copy: %s",
			      strerror(errno));
	return rc;
}

/* The same for a staged ciphertext: hashes its plaintext, decrypting a
 * block at a time into a buffer wiped afterwards, and rewinds. */
static int prehash_plain(int fd, const char *shown, const uint8_t *key,
			 const uint8_t iv[CU_IV_LEN],
			 uint8_t out[CU_SHA256_LEN], struct stn_diag *d)
{
	struct cu_ctr *ctr = cu_ctr_new(key, iv);
	struct cu_sha256 *h = cu_sha256_new();
	uint8_t *buf = malloc(1u << 16);
	uint64_t total = 0;
	int rc = 0;

	if (!ctr || !h || !buf) {
		rc = stn_fail(d, STN_E_NOMEM, shown, "decrypting");
		goto out;
	}
	for (;;) {
		ssize_t n = stn_read_retry(fd, buf, 1u << 16);
		if (n < 0) {
			rc = stn_fail(d, STN_E_IO, shown,
				      "read from staging: %s",
				      strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (total > CU_IMAGE_MAX) {
			rc = stn_fail(d, STN_E_TOOBIG, shown,
				      "staged copy is larger than an image "
				      "may be");
			goto out;
		}
		if (cu_ctr_apply(ctr, buf, buf, (size_t)n) ||
		    cu_sha256_update(h, buf, (size_t)n)) {
			rc = stn_fail(d, STN_E_INTERNAL, shown,
				      "decrypting the staged copy failed");
			goto out;
		}
	}
	if ((rc = cu_sha256_final(h, out)))
		rc = stn_fail(d, rc, shown, "hashing the staged copy failed");
	else if (lseek(fd, 0, SEEK_SET) != 0)
		rc = stn_fail(d, STN_E_IO, shown, "rewind staged copy: %s",
			      strerror(errno));
out:
	if (buf)
		explicit_bzero(buf, 1u << 16);
	free(buf);
	cu_sha256_free(h);
	cu_ctr_free(ctr); /* wipes */
	return rc;
}

int stn_device_write(struct stn_device *dev, const struct cu_image *img,
		     const char *path, const char *shown,
		     const struct stn_device_progress *prog,
		     struct stn_write_result *res, struct stn_diag *d)
{
	return stn_device_write_key(dev, img, path, shown, NULL, prog, res, d);
}

int stn_device_write_key(struct stn_device *dev, const struct cu_image *img,
			 const char *path, const char *shown,
			 const uint8_t *content_key,
			 const struct stn_device_progress *prog,
			 struct stn_write_result *res, struct stn_diag *d)
{
	struct hashing_source hs = {.fd = -1, .path = shown, .d = d};
	struct tp_source src = {hashing_read, &hs};
	struct stn_device_progress pcopy = {NULL, NULL, NULL};
	struct tp_progress tprog = {progress_adapter, &pcopy};
	struct stn_image_send send = {img, -1, shown, &src, &tprog, NULL,
				      NULL};
	struct stn_write_result r;
	uint8_t sent[CU_SHA256_LEN];
	char want[CU_SHA256_HEX_LEN + 1], sent_hex[CU_SHA256_HEX_LEN + 1];
	int rc;

	if (!dev->identified)
		return stn_fail(d, STN_E_INTERNAL, dev->name,
				"write before identify");
	if (!img->encrypted != !content_key)
		return stn_fail(d, STN_E_INTERNAL, shown,
				"image %s is %s but a content key was %s",
				img->label,
				img->encrypted ? "encrypted" : "plain",
				content_key ? "given" : "not given");
	memset(&r, 0, sizeof(r));
	r.receipt = res->receipt;
	send.receipt = res->receipt;
	send.has_receipt = &r.has_receipt;
	if (prog)
		pcopy = *prog;
	hs.stop = pcopy.stop;
	cu_hex(img->sha256, sizeof(img->sha256), want);
	hs.h = cu_sha256_new();
	if (!hs.h)
		return stn_fail(d, STN_E_NOMEM, shown, "hashing");
	hs.fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (hs.fd < 0) {
		rc = stn_fail(d, STN_E_IO, shown, "open staged copy: %s",
			      strerror(errno));
		goto out;
	}
	/* Verified once while staging; checked again here, from the very
	 * descriptor the transfer reads, before any byte leaves: no path
	 * from unverified bytes to a device, even if staging was touched. */
	if ((rc = content_key ? prehash_plain(hs.fd, shown, content_key,
					      img->iv, sent, d)
			      : prehash(hs.fd, shown, sent, d)))
		goto out;
	if (memcmp(sent, img->sha256, sizeof(sent)) != 0) {
		cu_hex(sent, sizeof(sent), sent_hex);
		rc = stn_fail(d, STN_E_IMAGE, shown,
			      "staged copy hashes to %s, manifest says %s: "
			      "nothing sent", sent_hex, want);
		goto out;
	}
	if (content_key) {
		/* Decrypted from the first block; a backend that inspects
		 * the file itself (SMP's MCUboot check) gets none, since the
		 * file holds ciphertext (device_internal.h). */
		if (!(hs.ctr = cu_ctr_new(content_key, img->iv))) {
			rc = stn_fail(d, STN_E_NOMEM, shown, "decrypting");
			goto out;
		}
	} else {
		send.fd = hs.fd;
	}
	if ((rc = dev->ops->write(dev, &send, &r, d)))
		goto out;
	r.bytes = hs.sent;
	if ((rc = cu_sha256_final(hs.h, sent))) {
		rc = stn_fail(d, rc, shown, "hashing what was sent failed");
		goto out;
	}
	cu_hex(sent, sizeof(sent), sent_hex);
	if (memcmp(sent, img->sha256, sizeof(sent)) != 0) {
		rc = stn_fail(d, STN_E_IMAGE, shown,
			      "bytes sent hash to %s, manifest says %s: the "
			      "staged copy changed during the transfer",
			      sent_hex, want);
		goto out;
	}
	/* The proof rule: a digest of what the device stored must be the
	 * manifest's.  (IMAGE_HASH carries the image's own hash, which the
	 * SMP backend matched against the device's list itself.) */
	if ((r.proof == STN_PROOF_DEVICE_SHA ||
	     r.proof == STN_PROOF_READBACK) &&
	    strcmp(r.device_sha256, want) != 0) {
		rc = stn_fail(d, STN_E_VERIFY_DEVICE, dev->name,
			      "image %s: device stored sha256 %s, manifest "
			      "says %s", img->label, r.device_sha256, want);
		goto out;
	}
	*res = r;
out:
	res->has_receipt = r.has_receipt;
	if (hs.fd >= 0)
		close(hs.fd);
	cu_ctr_free(hs.ctr); /* wipes */
	cu_sha256_free(hs.h);
	return rc;
}

int stn_device_can_attest(const struct stn_device *dev)
{
	if (!dev->ops->attest)
		return 0;
	return dev->ops->can_attest ? dev->ops->can_attest(dev) : 1;
}

int stn_device_can_prove(const struct stn_device *dev)
{
	return !dev->ops->cannot_prove;
}

int stn_device_attest(struct stn_device *dev, const uint8_t *nonce,
		      struct tp_signed_msg *out, struct stn_diag *d)
{
	if (!dev->identified)
		return stn_fail(d, STN_E_INTERNAL, dev->name,
				"attest before identify");
	if (!stn_device_can_attest(dev))
		return stn_fail(d, STN_E_NOATTEST, dev->name,
				"the %s transport has no command to prove a "
				"device's identity", dev->ops->transport);
	tp_msg_init(out);
	return dev->ops->attest(dev, nonce, out, d);
}

int stn_device_authorize(struct stn_device *dev,
			 const struct tp_signed_msg *authz,
			 struct stn_diag *d)
{
	if (!dev->ops->authorize)
		return stn_fail(d, STN_E_NOATTEST, dev->name,
				"the %s transport cannot carry an install "
				"authorization", dev->ops->transport);
	return dev->ops->authorize(dev, authz, d);
}

int stn_device_boot(struct stn_device *dev, struct stn_diag *d)
{
	return dev->ops->boot ? dev->ops->boot(dev, d) : 0;
}
