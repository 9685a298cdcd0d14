/* station/device.c: the transports behind station/device.h.  Serial
 * console devices are asked who they are and report a SHA-256 of what they
 * stored; plain YMODEM targets (bootloaders like U-Boot's loady) know
 * nothing, so their identity comes from configuration and their installs
 * are recorded as unproven. */
#include "station/device.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "custody/sha256.h"
#include "station/config.h"
#include "station/error.h"
#include "transport/console.h"
#include "transport/serial.h"
#include "transport/ymodem.h"

enum dev_kind { DEV_CONSOLE, DEV_YMODEM };

struct stn_device {
	enum dev_kind kind;
	char name[4200];
	char path[4096];
	struct tp_serial *serial;
	const struct stn_port *port; /* borrowed from the configuration */
};

const char *stn_proof_name(enum stn_proof p)
{
	switch (p) {
	case STN_PROOF_DEVICE_SHA: return "device-sha256";
	case STN_PROOF_READBACK: return "readback";
	default: return "none";
	}
}

static int spec_parse(const char *spec, enum dev_kind *kind,
		      const char **path, struct stn_diag *d)
{
	if (strncmp(spec, "serial:", 7) == 0) {
		*kind = DEV_CONSOLE;
		*path = spec + 7;
	} else if (strncmp(spec, "ymodem:", 7) == 0) {
		*kind = DEV_YMODEM;
		*path = spec + 7;
	} else if (strncmp(spec, "usb:", 4) == 0) {
		return stn_fail(d, STN_E_USAGE, spec,
				"USB DFU devices are not supported by this "
				"build yet");
	} else {
		return stn_fail(d, STN_E_USAGE, spec,
				"device SPEC must be serial:/dev/ttyX, "
				"ymodem:/dev/ttyX or usb:...");
	}
	if ((*path)[0] != '/' || strlen(*path) >= 4096)
		return stn_fail(d, STN_E_USAGE, spec,
				"serial device path must be absolute");
	return 0;
}

int stn_device_spec_check(const char *spec, struct stn_diag *d)
{
	enum dev_kind kind;
	const char *path;

	return spec_parse(spec, &kind, &path, d);
}

int stn_device_open(const struct stn_config *cfg, const char *spec,
		    struct stn_device **out, struct stn_diag *d)
{
	struct stn_device *dev;
	const char *path;
	enum dev_kind kind;
	unsigned baud = 115200;
	int rtscts = 0, rc;

	if ((rc = spec_parse(spec, &kind, &path, d)))
		return rc;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return stn_fail(d, STN_E_NOMEM, spec, "opening device");
	dev->kind = kind;
	snprintf(dev->name, sizeof(dev->name), "%s", spec);
	snprintf(dev->path, sizeof(dev->path), "%s", path);
	dev->port = stn_config_port(cfg, path);
	/* A port configured as a plain bootloader must not be spoken to as a
	 * console (or the reverse): its identity would come from the wrong
	 * place and its proof would be misreported. */
	if (dev->port && (dev->port->mode == STN_PORT_YMODEM) !=
				 (kind == DEV_YMODEM)) {
		rc = stn_fail(d, STN_E_USAGE, spec,
			      "[port %s] is configured as mode = %s; use %s:%s",
			      dev->port->label,
			      dev->port->mode == STN_PORT_YMODEM ? "ymodem"
								 : "console",
			      dev->port->mode == STN_PORT_YMODEM ? "ymodem"
								 : "serial",
			      path);
		free(dev);
		return rc;
	}
	if (dev->port) {
		baud = dev->port->baud;
		rtscts = dev->port->rtscts;
	}
	if (kind == DEV_YMODEM && (!dev->port || !dev->port->serial)) {
		free(dev);
		return stn_fail(d, STN_E_IDENTITY, spec,
				"a plain YMODEM target cannot report its "
				"identity: configure a [port] section with "
				"path = %s, model and serial", path);
	}
	rc = tp_serial_open(path, baud, rtscts, &dev->serial, d);
	if (rc) {
		free(dev);
		return rc;
	}
	*out = dev;
	return 0;
}

void stn_device_close(struct stn_device *dev)
{
	if (!dev)
		return;
	tp_serial_close(dev->serial);
	free(dev);
}

const char *stn_device_name(const struct stn_device *dev)
{
	return dev->name;
}

const char *stn_device_transport(const struct stn_device *dev)
{
	return dev->kind == DEV_CONSOLE ? "serial-console" : "ymodem";
}

int stn_device_identify(struct stn_device *dev, struct cu_identity *id,
			struct stn_diag *d)
{
	char text[8192];
	int rc;

	if (dev->kind == DEV_YMODEM) {
		char rec[4096];
		const struct stn_port *p = dev->port;
		int n = snprintf(rec, sizeof(rec),
				 "format = station-device-1\nmodel = %s\n"
				 "serial = %s\n%s%s%s",
				 p->model, p->serial,
				 p->hardware ? "hardware = " : "",
				 p->hardware ? p->hardware : "",
				 p->hardware ? "\n" : "");
		char where[4200];
		snprintf(where, sizeof(where), "[port %s] in configuration",
			 p->label);
		if (n < 0 || (size_t)n >= sizeof(rec))
			return stn_fail(d, STN_E_IDENTITY, where,
					"identity too long");
		return cu_identity_parse(rec, (size_t)n, where, id, d);
	}
	rc = tp_console_info(dev->serial, text, sizeof(text), d);
	if (rc)
		return rc;
	return cu_identity_parse(text, strlen(text), dev->name, id, d);
}

/* Streams the staged image and hashes exactly what goes on the wire. */
struct hashing_source {
	int fd;
	const char *path;
	struct cu_sha256 *h;
	uint64_t sent;
	struct stn_diag *d;
};

static int hashing_read(void *ctx, void *buf, size_t len, size_t *got)
{
	struct hashing_source *src = ctx;
	ssize_t n;

	do
		n = read(src->fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return stn_fail(src->d, STN_E_IO, src->path,
				"read from staging: %s", strerror(errno));
	cu_sha256_update(src->h, buf, (size_t)n);
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
	struct cu_sha256 *h = cu_sha256_new();
	uint8_t *buf = malloc(1 << 16);
	int rc = 0;

	if (!h || !buf) {
		rc = stn_fail(d, STN_E_NOMEM, shown, "hashing");
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, 1 << 16);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = stn_fail(d, STN_E_IO, shown,
				      "read staged copy: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		cu_sha256_update(h, buf, (size_t)n);
	}
	cu_sha256_final(h, out);
	if (lseek(fd, 0, SEEK_SET) != 0)
		rc = stn_fail(d, STN_E_IO, shown, "rewind staged copy: %s",
			      strerror(errno));
out:
	cu_sha256_free(h);
	free(buf);
	return rc;
}

int stn_device_write(struct stn_device *dev, const struct cu_image *img,
		     const char *path, const char *shown,
		     const struct stn_device_progress *prog,
		     struct stn_write_result *res, struct stn_diag *d)
{
	struct hashing_source hs = {.fd = -1, .path = shown, .d = d};
	struct tp_source src = {hashing_read, &hs};
	struct stn_device_progress pcopy = {NULL, NULL};
	struct tp_progress tprog = {progress_adapter, &pcopy};
	struct stn_write_result r;
	uint8_t sent[CU_SHA256_LEN];
	char want[CU_SHA256_HEX_LEN + 1], sent_hex[CU_SHA256_HEX_LEN + 1];
	int rc;

	memset(&r, 0, sizeof(r));
	if (prog)
		pcopy = *prog;
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
	if ((rc = prehash(hs.fd, shown, sent, d)))
		goto out;
	if (memcmp(sent, img->sha256, sizeof(sent)) != 0) {
		cu_hex(sent, sizeof(sent), sent_hex);
		rc = stn_fail(d, STN_E_IMAGE, shown,
			      "staged copy hashes to %s, manifest says %s: "
			      "nothing sent", sent_hex, want);
		goto out;
	}
	if (dev->kind == DEV_CONSOLE) {
		rc = tp_console_receive(dev->serial, img->slot, img->file,
					img->size, &src, &tprog,
					r.device_sha256, d);
		r.proof = STN_PROOF_DEVICE_SHA;
	} else {
		rc = tp_ymodem_send(dev->serial, img->file, img->size, &src,
				    NULL, &tprog, d);
		r.proof = STN_PROOF_NONE;
	}
	if (rc)
		goto out;
	r.bytes = hs.sent;
	cu_sha256_final(hs.h, sent);
	cu_hex(sent, sizeof(sent), sent_hex);
	if (memcmp(sent, img->sha256, sizeof(sent)) != 0) {
		rc = stn_fail(d, STN_E_IMAGE, shown,
			      "bytes sent hash to %s, manifest says %s: the "
			      "staged copy changed during the transfer",
			      sent_hex, want);
		goto out;
	}
	if (r.proof == STN_PROOF_DEVICE_SHA &&
	    strcmp(r.device_sha256, want) != 0) {
		rc = stn_fail(d, STN_E_VERIFY_DEVICE, dev->name,
			      "image %s: device stored sha256 %s, manifest "
			      "says %s", img->label, r.device_sha256, want);
		goto out;
	}
	*res = r;
out:
	if (hs.fd >= 0)
		close(hs.fd);
	cu_sha256_free(hs.h);
	return rc;
}

int stn_device_boot(struct stn_device *dev, struct stn_diag *d)
{
	if (dev->kind != DEV_CONSOLE)
		return 0;
	return tp_console_boot(dev->serial, d);
}
