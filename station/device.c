/* station/device.c: the transports behind station/device.h.  Serial
 * console devices are asked who they are and report a SHA-256 of what they
 * stored; plain YMODEM targets (bootloaders like U-Boot's loady) know
 * nothing, so their identity comes from configuration and their installs
 * are recorded as unproven.  SMP (MCUmgr) devices report their board and
 * running image, take uploads into a slot, and prove an install by the
 * image hash they list and the image they run after a reset. */
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
#include "transport/mcuboot.h"
#include "transport/serial.h"
#include "transport/smp.h"
#include "transport/usb.h"
#include "transport/ymodem.h"

enum dev_kind { DEV_CONSOLE, DEV_YMODEM, DEV_SMP, DEV_USB };

/* After an SMP reset the device boots (MCUboot may swap slots first, which
 * takes tens of seconds on large slots) before it answers again. */
#define SMP_BOOT_WAIT_MS 90000
/* An image written straight to the primary slot (MCUboot serial recovery)
 * needs no test and no confirm, and the application it boots may speak no
 * SMP at all: it is given this long to answer, then left to run. */
#define SMP_DIRECT_WAIT_MS 5000

struct smp_written {
	unsigned image;
	uint8_t hash[32];
	int tested; /* went to the secondary slot for a test boot */
};

struct stn_device {
	enum dev_kind kind;
	char name[4200];
	char path[4096];
	struct tp_serial *serial;
	struct tp_smp *smp;
	struct smp_written written[CU_MAX_IMAGES];
	size_t nwritten;
	const struct stn_port *port; /* borrowed from the configuration */
	struct usb_dev *usb;	     /* DEV_USB: the USB DFU section below */
};

/* USB DFU devices: the section at the end of this file. */
struct usb_dev;
static int usb_spec_check(const char *spec, struct stn_diag *d);
static int usb_open(const char *spec, struct stn_device **out,
		    struct stn_diag *d);
static void usb_close(struct usb_dev *ud);
static int usb_identify(struct stn_device *dev, struct cu_identity *id,
			struct stn_diag *d);
static int usb_write(struct stn_device *dev, const struct cu_image *img,
		     const struct tp_source *src,
		     const struct tp_progress *prog,
		     struct stn_write_result *r, struct stn_diag *d);
static int usb_boot(struct stn_device *dev, struct stn_diag *d);

const char *stn_proof_name(enum stn_proof p)
{
	switch (p) {
	case STN_PROOF_IMAGE_HASH: return "image-hash";
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
	} else if (strncmp(spec, "smp:", 4) == 0) {
		*kind = DEV_SMP;
		*path = spec + 4;
	} else if (strncmp(spec, "usb:", 4) == 0) {
		*kind = DEV_USB;
		*path = spec + 4;
		return usb_spec_check(spec, d); /* no path: a serial or ids */
	} else {
		return stn_fail(d, STN_E_USAGE, spec,
				"device SPEC must be serial:/dev/ttyX, "
				"ymodem:/dev/ttyX, smp:/dev/ttyX or usb:...");
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

static enum dev_kind port_kind(const struct stn_port *p)
{
	return p->mode == STN_PORT_YMODEM ? DEV_YMODEM
	       : p->mode == STN_PORT_SMP  ? DEV_SMP
					  : DEV_CONSOLE;
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
	if (kind == DEV_USB) /* found by serial or ids: no [port] applies */
		return usb_open(spec, out, d);
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
	if (dev->port && port_kind(dev->port) != kind) {
		static const char *const modes[] = {"console", "ymodem", "smp"};
		static const char *const specs[] = {"serial", "ymodem", "smp"};

		rc = stn_fail(d, STN_E_USAGE, spec,
			      "[port %s] is configured as mode = %s; use %s:%s",
			      dev->port->label, modes[port_kind(dev->port)],
			      specs[port_kind(dev->port)], path);
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
	if (kind == DEV_SMP)
		rc = tp_smp_open(path, baud, rtscts, NULL, &dev->smp, d);
	else
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
	tp_smp_close(dev->smp);
	usb_close(dev->usb);
	free(dev);
}

const char *stn_device_name(const struct stn_device *dev)
{
	return dev->name;
}

const char *stn_device_transport(const struct stn_device *dev)
{
	return dev->kind == DEV_CONSOLE ? "serial-console"
	       : dev->kind == DEV_SMP	? "smp"
	       : dev->kind == DEV_USB	? "usb-dfu"
					: "ymodem";
}

/* The running image of image 0: the active entry, else slot 0. */
static const struct tp_smp_image *running(const struct tp_smp_image *imgs,
					  size_t n, unsigned image)
{
	const struct tp_smp_image *slot0 = NULL;

	for (size_t i = 0; i < n; i++) {
		if (imgs[i].image != image)
			continue;
		if (imgs[i].active)
			return &imgs[i];
		if (imgs[i].slot == 0)
			slot0 = &imgs[i];
	}
	return slot0;
}

static int smp_identify(struct stn_device *dev, struct cu_identity *id,
			struct stn_diag *d)
{
	const struct stn_port *p = dev->port;
	struct tp_smp_image imgs[TP_SMP_MAX_IMAGES];
	const struct tp_smp_image *run;
	struct stn_diag ld;
	char board[128], node[128], rec[2048];
	const char *model, *serial;
	size_t n;
	int len, rc;

	stn_diag_init(&ld);
	rc = tp_smp_os_info(dev->smp, "i", board, sizeof(board), &ld);
	if (rc == STN_E_DEVICE && p && p->model) {
		board[0] = '\0'; /* no OS info (serial recovery): configured */
	} else if (rc == STN_E_DEVICE) {
		return stn_fail(d, STN_E_IDENTITY, dev->name,
				"the device does not report its board (%s): "
				"configure a [port] section with path = %s "
				"and model", ld.text, dev->path);
	} else if (rc) {
		return stn_fail(d, rc, ld.where, "%s", ld.text);
	}
	if (board[0] && p && p->model && strcmp(board, p->model) != 0)
		return stn_fail(d, STN_E_IDENTITY, dev->name,
				"the device reports board '%s', but [port %s] "
				"says model = %s", board, p->label, p->model);
	if (!board[0] && !(p && p->model))
		return stn_fail(d, STN_E_IDENTITY, dev->name,
				"the device reports an empty board name: "
				"configure a [port] section with path = %s "
				"and model", dev->path);
	model = board[0] ? board : p->model;
	if ((rc = tp_smp_image_state(dev->smp, imgs, &n, d)))
		return rc;
	run = running(imgs, n, 0);
	serial = p && p->serial ? p->serial : NULL;
	if (!serial) {
		stn_diag_init(&ld);
		rc = tp_smp_os_info(dev->smp, "n", node, sizeof(node), &ld);
		if (rc && rc != STN_E_DEVICE)
			return stn_fail(d, rc, ld.where, "%s", ld.text);
		if (rc == 0 && node[0] && strcmp(node, "unknown") != 0)
			serial = node;
	}
	if (!serial)
		return stn_fail(d, STN_E_IDENTITY, dev->name,
				"the device reports no serial number (OS info "
				"node name): configure a [port] section with "
				"path = %s and serial", dev->path);
	len = snprintf(rec, sizeof(rec),
		       "format = station-device-1\nmodel = %s\nserial = %s\n"
		       "%s%s%s%s%s%s",
		       model, serial, p && p->hardware ? "hardware = " : "",
		       p && p->hardware ? p->hardware : "",
		       p && p->hardware ? "\n" : "", run ? "version = " : "",
		       run ? run->version : "", run ? "\n" : "");
	if (len < 0 || (size_t)len >= sizeof(rec))
		return stn_fail(d, STN_E_IDENTITY, dev->name,
				"identity too long");
	return cu_identity_parse(rec, (size_t)len, dev->name, id, d);
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
	if (dev->kind == DEV_SMP)
		return smp_identify(dev, id, d);
	if (dev->kind == DEV_USB)
		return usb_identify(dev, id, d);
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
		if (cu_sha256_update(h, buf, (size_t)n))
			break;
	}
	if (cu_sha256_final(h, out)) {
		rc = stn_fail(d, STN_E_INTERNAL, shown, "hashing failed");
		goto out;
	}
	if (lseek(fd, 0, SEEK_SET) != 0)
		rc = stn_fail(d, STN_E_IO, shown, "rewind staged copy: %s",
			      strerror(errno));
out:
	cu_sha256_free(h);
	free(buf);
	return rc;
}

static const struct tp_smp_image *with_hash(const struct tp_smp_image *imgs,
					    size_t n, unsigned image,
					    const uint8_t hash[32])
{
	for (size_t i = 0; i < n; i++)
		if (imgs[i].image == image && imgs[i].has_hash &&
		    memcmp(imgs[i].hash, hash, 32) == 0)
			return &imgs[i];
	return NULL;
}

/* "slot 0 <hash> 1.2.3, slot 1 <hash> 1.2.4" for messages. */
static void list_images(const struct tp_smp_image *imgs, size_t n,
			char *buf, size_t cap)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < cap; i++) {
		char hex[65] = "(no hash)";

		if (imgs[i].has_hash)
			cu_hex(imgs[i].hash, 32, hex);
		used += (size_t)snprintf(buf + used, cap - used,
					 "%simage %u slot %u %s %s",
					 i ? ", " : "", imgs[i].image,
					 imgs[i].slot, imgs[i].version, hex);
	}
	if (n == 0)
		snprintf(buf, cap, "no images");
}

/* Upload one MCUboot image, find it in the device's list by the hash the
 * station computed, and mark it for a test boot when it went to the
 * secondary slot.  The proof is what the device itself confirmed. */
static int smp_write(struct stn_device *dev, const struct cu_image *img,
		     int fd, const char *shown, const struct tp_source *src,
		     const struct tp_progress *prog,
		     struct stn_write_result *r, struct stn_diag *d)
{
	struct tp_mcuboot_info info;
	struct tp_smp_upload_result up;
	struct tp_smp_image imgs[TP_SMP_MAX_IMAGES];
	const struct tp_smp_image *e;
	char hex[65], want[65], list[600];
	size_t n;
	int rc;

	/* Before a byte is sent: a file that is no MCUboot image, or whose
	 * own hash does not check, would never boot. */
	if ((rc = tp_mcuboot_inspect(fd, img->size, 1, shown, &info, d)))
		return rc;
	cu_hex(info.hash, 32, hex);
	cu_hex(img->sha256, sizeof(img->sha256), want);
	if ((rc = tp_smp_upload(dev->smp, img->slot, img->size, img->sha256,
				src, prog, &up, d)))
		return rc;
	if (up.match == 0)
		return stn_fail(d, STN_E_VERIFY_DEVICE, dev->name,
				"image %s: the device says what it stored does "
				"not match sha256 %s", img->label, want);
	if ((rc = tp_smp_image_state(dev->smp, imgs, &n, d)))
		return rc;
	e = with_hash(imgs, n, img->slot, info.hash);
	if (!e) {
		list_images(imgs, n, list, sizeof(list));
		return stn_fail(d, STN_E_VERIFY_DEVICE, dev->name,
				"image %s: after the upload the device lists "
				"no image %u with hash %s (it lists: %s)",
				img->label, img->slot, hex, list);
	}
	if (e->slot != 0 && !e->pending) {
		if ((rc = tp_smp_image_set(dev->smp, info.hash, 0, imgs, &n,
					   d)))
			return rc;
		e = with_hash(imgs, n, img->slot, info.hash);
		if (!e || !e->pending)
			return stn_fail(d, STN_E_VERIFY_DEVICE, dev->name,
					"image %s: the device did not mark "
					"hash %s for a test boot", img->label,
					hex);
	}
	if (dev->nwritten < CU_MAX_IMAGES) {
		dev->written[dev->nwritten].image = img->slot;
		dev->written[dev->nwritten].tested = e->slot != 0;
		memcpy(dev->written[dev->nwritten].hash, info.hash, 32);
		dev->nwritten++;
	}
	if (up.match == 1) {
		r->proof = STN_PROOF_DEVICE_SHA;
		memcpy(r->device_sha256, want, sizeof(want));
	} else {
		r->proof = STN_PROOF_IMAGE_HASH;
		memcpy(r->device_sha256, hex, sizeof(hex));
	}
	return 0;
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
	if (dev->kind == DEV_SMP) {
		rc = smp_write(dev, img, hs.fd, shown, &src, &tprog, &r, d);
	} else if (dev->kind == DEV_USB) {
		rc = usb_write(dev, img, &src, &tprog, &r, d);
	} else if (dev->kind == DEV_CONSOLE) {
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
	if (hs.fd >= 0)
		close(hs.fd);
	cu_sha256_free(hs.h);
	return rc;
}

/* Reset, wait until the device answers again, check that it runs what was
 * written, and confirm it. */
static int smp_boot(struct stn_device *dev, struct stn_diag *d)
{
	struct tp_smp_image imgs[TP_SMP_MAX_IMAGES];
	struct stn_diag ld;
	char list[600];
	size_t n = 0;
	int tested = 0;
	int rc;

	for (size_t i = 0; i < dev->nwritten; i++)
		tested |= dev->written[i].tested;
	if ((rc = tp_smp_reset(dev->smp, d)))
		return rc;
	stn_diag_init(&ld);
	rc = tp_smp_await_ready(dev->smp, tested ? SMP_BOOT_WAIT_MS
						 : SMP_DIRECT_WAIT_MS, &ld);
	if (rc == STN_E_TIMEOUT && !tested)
		return 0; /* MCUboot checks the image it boots; nothing to
			     confirm, and the application may not answer */
	if (rc)
		return stn_fail(d, rc, ld.where, "%s", ld.text);
	stn_diag_init(&ld);
	if ((rc = tp_smp_image_state(dev->smp, imgs, &n, &ld)))
		return stn_fail(d, rc, ld.where, "after the reset: %s",
				ld.text);
	for (size_t i = 0; i < dev->nwritten; i++) {
		const struct smp_written *w = &dev->written[i];
		const struct tp_smp_image *run = running(imgs, n, w->image);
		char hex[65];

		cu_hex(w->hash, 32, hex);
		if (!run || !run->has_hash || memcmp(run->hash, w->hash, 32)) {
			list_images(imgs, n, list, sizeof(list));
			return stn_fail(d, STN_E_VERIFY_DEVICE, dev->name,
					"after the reset image %u does not run "
					"the uploaded hash %s: the bootloader "
					"did not take it (it lists: %s)",
					w->image, hex, list);
		}
		if (run->confirmed || !w->tested)
			continue;
		if ((rc = tp_smp_image_set(dev->smp, w->hash, 1, imgs, &n, d)))
			return rc;
		run = running(imgs, n, w->image);
		if (!run || !run->confirmed)
			return stn_fail(d, STN_E_VERIFY_DEVICE, dev->name,
					"image %u hash %s runs but the device "
					"did not confirm it", w->image, hex);
	}
	return 0;
}

int stn_device_boot(struct stn_device *dev, struct stn_diag *d)
{
	if (dev->kind == DEV_SMP)
		return smp_boot(dev, d);
	if (dev->kind == DEV_USB)
		return usb_boot(dev, d);
	if (dev->kind != DEV_CONSOLE)
		return 0;
	return tp_console_boot(dev->serial, d);
}

/* ---- USB DFU (devices.md "USB"; docs/usb.md) ------------------------------
 * Everything USB-specific of the device layer is here; the rest of this
 * file only dispatches to it. */

struct usb_dev {
	struct tp_usb *u;
	struct cu_identity id;	/* what identify found; the checks used it */
	int identified;
	int need_reset;		/* the last image left the device waiting in
				   dfuMANIFEST-WAIT-RESET */
	int gone;		/* it left the bus after manifestation */
};

/* usb:VID:PID is exactly four and four hex digits; anything else after
 * "usb:" is a serial number. */
static int usb_ids(const char *s, int *vid, int *pid)
{
	unsigned v, p;
	int n = 0;

	if (strlen(s) != 9 || s[4] != ':' ||
	    strspn(s, "0123456789abcdefABCDEF") != 4 ||
	    strspn(s + 5, "0123456789abcdefABCDEF") != 4 ||
	    sscanf(s, "%4x:%4x%n", &v, &p, &n) != 2 || n != 9)
		return 0;
	*vid = (int)v;
	*pid = (int)p;
	return 1;
}

static int printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

static int usb_spec_check(const char *spec, struct stn_diag *d)
{
	const char *rest = spec + 4;
	int vid, pid;

	if (usb_ids(rest, &vid, &pid))
		return 0;
	if (!rest[0] || strlen(rest) > 126 || !printable(rest))
		return stn_fail(d, STN_E_USAGE, spec,
				"USB SPEC must be usb:SERIAL (printable, at "
				"most 126 characters) or usb:VID:PID (four "
				"hex digits each)");
	return 0;
}

/* Control-request limits: defaults suit most devices; a device whose
 * erase outlasts them needs longer (STATION_DFU_TIMEOUT_MS for one
 * request, STATION_DFU_BUSY_MS for one block's busy time). */
static int env_ms(const char *name)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v || !*v)
		return 0;
	n = strtol(v, &end, 10);
	return *end || n <= 0 || n > 3600000 ? 0 : (int)n;
}

static int usb_open(const char *spec, struct stn_device **out,
		    struct stn_diag *d)
{
	struct tp_usb_match m = {NULL, -1, -1, 0, 0};
	struct tp_usb_opts o;
	struct stn_device *dev;
	int rc;

	memset(&o, 0, sizeof(o));
	o.dfu.timeout_ms = env_ms("STATION_DFU_TIMEOUT_MS");
	o.dfu.busy_max_ms = env_ms("STATION_DFU_BUSY_MS");
	if (!usb_ids(spec + 4, &m.vid, &m.pid))
		m.serial = spec + 4;
	dev = calloc(1, sizeof(*dev));
	if (!dev || !(dev->usb = calloc(1, sizeof(*dev->usb)))) {
		free(dev);
		return stn_fail(d, STN_E_NOMEM, spec, "opening device");
	}
	dev->kind = DEV_USB;
	snprintf(dev->name, sizeof(dev->name), "%s", spec);
	if ((rc = tp_usb_open(&m, &o, spec, &dev->usb->u, d))) {
		free(dev->usb);
		free(dev);
		return rc;
	}
	*out = dev;
	return 0;
}

static void usb_close(struct usb_dev *ud)
{
	if (!ud)
		return;
	tp_usb_close(ud->u);
	free(ud);
}

/* The identity of an open device, and where it came from.  The device
 * chooses every string here, so each is checked before it goes into a
 * record (a newline in iProduct must not become a `sequence` line). */
static int usb_identity(struct tp_usb *u, const char *name,
			struct cu_identity *id, const char **source,
			struct stn_diag *d)
{
	const struct tp_usb_found *f = tp_usb_info(u);
	char where[300], rec[1024];
	int n, rc;

	if (f->info_alt >= 0 && !f->runtime) {
		char *buf = malloc(65536);
		size_t len = 0;

		if (!buf)
			return stn_fail(d, STN_E_NOMEM, name, "identity");
		*source = "station-info";
		snprintf(where, sizeof(where), "%s station-info", name);
		rc = tp_usb_read_info(u, buf, 65536, &len, d);
		if (rc == 0)
			rc = cu_identity_parse(buf, len, where, id, d);
		free(buf);
		if (rc)
			return rc;
		/* Two identities that disagree: believe neither. */
		if (f->serial[0] && strcmp(f->serial, id->serial) != 0)
			return stn_fail(d, STN_E_IDENTITY, where,
					"says serial %s, but the device's "
					"iSerialNumber is %s", id->serial,
					f->serial);
		return 0;
	}
	*source = "descriptors";
	if (!f->serial[0])
		return stn_fail(d, STN_E_IDENTITY, name,
				"%04x:%04x at %s has no serial number "
				"(iSerialNumber) and no station-info setting: "
				"a device without a serial number is refused",
				f->vid, f->pid, f->port);
	if (!f->product[0])
		return stn_fail(d, STN_E_IDENTITY, name,
				"%04x:%04x serial %s has no product string "
				"(iProduct) to take as its model", f->vid,
				f->pid, f->serial);
	if (!printable(f->serial) || !printable(f->product))
		return stn_fail(d, STN_E_IDENTITY, name,
				"the device's serial or product string holds "
				"control characters");
	n = snprintf(rec, sizeof(rec),
		     "format = station-device-1\nmodel = %s\nserial = %s\n"
		     "version = %x.%02x\n",
		     f->product, f->serial, f->bcd_device >> 8,
		     f->bcd_device & 0xff);
	snprintf(where, sizeof(where), "%s descriptors", name);
	if (n < 0 || (size_t)n >= sizeof(rec))
		return stn_fail(d, STN_E_IDENTITY, where, "identity too long");
	return cu_identity_parse(rec, (size_t)n, where, id, d);
}

static int usb_identify(struct stn_device *dev, struct cu_identity *id,
			struct stn_diag *d)
{
	const char *source;
	int rc = usb_identity(dev->usb->u, dev->name, id, &source, d);

	if (rc == 0) {
		dev->usb->id = *id;
		dev->usb->identified = 1;
	}
	return rc;
}

/* A run-time device goes to DFU mode before its first image; after the
 * re-enumeration it must still be the unit whose identity was checked. */
static int usb_to_dfu_mode(struct stn_device *dev, struct stn_diag *d)
{
	struct usb_dev *ud = dev->usb;
	struct cu_identity now;
	const char *source;
	int rc;

	if ((rc = tp_usb_detach(ud->u, d)))
		return rc;
	if (tp_usb_info(ud->u)->info_alt < 0)
		return 0; /* re-found by its serial number: the same unit */
	if ((rc = usb_identity(ud->u, dev->name, &now, &source, d)))
		return rc;
	if (strcmp(now.serial, ud->id.serial) != 0 ||
	    strcmp(now.model, ud->id.model) != 0 ||
	    strcmp(now.hardware, ud->id.hardware) != 0)
		return stn_fail(d, STN_E_IDENTITY, dev->name,
				"in DFU mode the device says it is %s %s "
				"serial %s, but it was checked as %s %s "
				"serial %s: nothing written",
				now.model, now.hardware, now.serial,
				ud->id.model, ud->id.hardware, ud->id.serial);
	return 0;
}

struct hash_sink {
	struct cu_sha256 *h;
	int rc; /* hashing failed: the upload stops, the caller says why */
};

static int hash_write(void *ctx, const void *buf, size_t len)
{
	struct hash_sink *hs = ctx;
	return hs->rc = cu_sha256_update(hs->h, buf, len);
}

/* Download into the alternate setting img->slot, then read it back when
 * the device can upload and is back in dfuIDLE. */
static int usb_write(struct stn_device *dev, const struct cu_image *img,
		     const struct tp_source *src,
		     const struct tp_progress *prog,
		     struct stn_write_result *r, struct stn_diag *d)
{
	struct usb_dev *ud = dev->usb;
	const struct tp_usb_found *f;
	enum tp_dfu_manifest how;
	struct hash_sink hs = {NULL, 0};
	struct tp_sink sink = {hash_write, &hs};
	uint8_t back[CU_SHA256_LEN];
	char want[CU_SHA256_HEX_LEN + 1];
	uint64_t got = 0;
	int rc;

	if (!ud->identified)
		return stn_fail(d, STN_E_INTERNAL, dev->name,
				"write before identify");
	if (ud->gone)
		return stn_fail(d, STN_E_NODEVICE, dev->name,
				"the device left the bus after the previous "
				"image and cannot take image %s", img->label);
	if (tp_usb_info(ud->u)->runtime && (rc = usb_to_dfu_mode(dev, d)))
		return rc;
	if (ud->need_reset) {
		/* The previous image waits for a reset to manifest. */
		if ((rc = tp_usb_reset(ud->u, 1, d)))
			return rc;
		ud->need_reset = 0;
	}
	f = tp_usb_info(ud->u);
	if (img->slot >= f->nalts || (int)img->slot == f->info_alt)
		return stn_fail(d, STN_E_TARGET, dev->name,
				"image %s is for slot %u, but the device's DFU "
				"interface takes images in alternate settings "
				"0 to %u%s", img->label, img->slot,
				f->nalts - 1 - (f->info_alt >= 0),
				(int)img->slot == f->info_alt
					? " (that one is station-info)"
					: "");
	if (f->nalts > 1 && (rc = tp_usb_set_alt(ud->u, img->slot, d)))
		return rc;
	if ((rc = tp_dfu_ready(tp_usb_dfu(ud->u), d)) ||
	    (rc = tp_dfu_download(tp_usb_dfu(ud->u), src, img->size, prog,
				  &how, d)))
		return rc;
	ud->need_reset = how == TP_DFU_MANIFEST_DONE_RESET;
	ud->gone = how == TP_DFU_MANIFEST_DONE_GONE;
	r->proof = STN_PROOF_NONE;
	if (how != TP_DFU_MANIFEST_DONE_IDLE ||
	    !(f->func.attributes & TP_DFU_CAN_UPLOAD))
		return 0; /* nothing can be read back: the caller says so */
	hs.h = cu_sha256_new();
	if (!hs.h)
		return stn_fail(d, STN_E_NOMEM, dev->name, "read back");
	rc = tp_dfu_upload(tp_usb_dfu(ud->u), img->size, &sink, &got, NULL, d);
	if (hs.rc || (rc == 0 && (rc = cu_sha256_final(hs.h, back))))
		rc = stn_fail(d, hs.rc ? hs.rc : rc, dev->name,
			      "hashing the read-back failed");
	cu_sha256_free(hs.h);
	if (rc)
		return rc;
	cu_hex(back, sizeof(back), r->device_sha256);
	cu_hex(img->sha256, sizeof(img->sha256), want);
	if (got != img->size)
		return stn_fail(d, STN_E_VERIFY_DEVICE, dev->name,
				"image %s: reading back slot %u gave %llu "
				"bytes, the image has %llu", img->label,
				img->slot, (unsigned long long)got,
				(unsigned long long)img->size);
	if (strcmp(r->device_sha256, want) != 0)
		return stn_fail(d, STN_E_VERIFY_DEVICE, dev->name,
				"image %s: read back from slot %u, sha256 %s, "
				"manifest says %s", img->label, img->slot,
				r->device_sha256, want);
	r->proof = STN_PROOF_READBACK;
	return 0;
}

/* DFU 1.1 section 7: a bus reset ends dfuMANIFEST-WAIT-RESET, and starts
 * the new firmware of a tolerant device that is back in dfuIDLE. */
static int usb_boot(struct stn_device *dev, struct stn_diag *d)
{
	struct usb_dev *ud = dev->usb;

	if (ud->gone)
		return 0; /* it already left to run its firmware */
	ud->need_reset = 0;
	return tp_usb_reset(ud->u, 0, d);
}

static void usb_seen(const struct tp_usb_found *f, struct stn_device_seen *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->transport, sizeof(s->transport), "usb-dfu");
	snprintf(s->ids, sizeof(s->ids), "%04x:%04x", f->vid, f->pid);
	snprintf(s->mode, sizeof(s->mode), "%s",
		 f->runtime ? "run-time" : "dfu");
	snprintf(s->port, sizeof(s->port), "%s", f->port);
	if (f->serial[0] && printable(f->serial) && strlen(f->serial) < 127)
		snprintf(s->spec, sizeof(s->spec), "usb:%s", f->serial);
	else
		snprintf(s->spec, sizeof(s->spec), "usb:%s", s->ids);
	s->source = f->info_alt >= 0 && !f->runtime ? "station-info"
						     : "descriptors";
}

/* Fill s for one found interface: open it (by its bus address, so two
 * devices with one serial number are still told apart) and identify. */
static void usb_describe(const struct tp_usb_found *f,
			 struct stn_device_seen *s)
{
	struct tp_usb_match m = {NULL, -1, -1, f->bus, f->address};
	struct tp_usb *u = NULL;
	struct stn_diag ld;
	const char *source;

	usb_seen(f, s);
	stn_diag_init(&ld);
	if (f->problem[0]) {
		snprintf(s->problem, sizeof(s->problem), "%s", f->problem);
		return;
	}
	if (tp_usb_open(&m, NULL, s->spec, &u, &ld) == 0 &&
	    usb_identity(u, s->spec, &s->id, &source, &ld) == 0)
		s->identified = 1;
	else
		snprintf(s->problem, sizeof(s->problem), "%.399s", ld.text);
	tp_usb_close(u);
}

int stn_device_list(struct stn_device_seen **out, size_t *n,
		    struct stn_diag *d)
{
	struct tp_usb_found *f = NULL;
	struct stn_device_seen *s;
	size_t nf = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = tp_usb_scan(&f, &nf, d)) || nf == 0) {
		free(f);
		return rc;
	}
	s = calloc(nf, sizeof(*s));
	if (!s) {
		free(f);
		return stn_fail(d, STN_E_NOMEM, "usb", "device list");
	}
	for (size_t i = 0; i < nf; i++)
		usb_describe(&f[i], &s[i]);
	free(f);
	*out = s;
	*n = nf;
	return 0;
}

struct stn_device_watch {
	struct tp_usb_monitor *m;
	stn_device_event_fn fn;
	void *ctx;
};

static void watch_event(void *ctx, enum tp_usb_event ev,
			const struct tp_usb_found *f)
{
	struct stn_device_watch *w = ctx;
	struct stn_device_seen s;

	if (ev == TP_USB_ARRIVED) {
		usb_describe(f, &s);
	} else {
		usb_seen(f, &s);
		snprintf(s.problem, sizeof(s.problem), "left the bus");
	}
	w->fn(w->ctx, ev == TP_USB_ARRIVED ? STN_DEVICE_ARRIVED
					   : STN_DEVICE_LEFT, &s);
}

int stn_device_watch_new(stn_device_event_fn fn, void *ctx,
			 struct stn_device_watch **out, struct stn_diag *d)
{
	struct stn_device_watch *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return stn_fail(d, STN_E_NOMEM, "usb", "device watch");
	w->fn = fn;
	w->ctx = ctx;
	if ((rc = tp_usb_monitor_new(watch_event, w, &w->m, d))) {
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}

void stn_device_watch_free(struct stn_device_watch *w)
{
	if (!w)
		return;
	tp_usb_monitor_free(w->m);
	free(w);
}

int stn_device_watch_fd(const struct stn_device_watch *w)
{
	return tp_usb_monitor_fd(w->m);
}

int stn_device_watch_dispatch(struct stn_device_watch *w, int timeout_ms,
			      struct stn_diag *d)
{
	return tp_usb_monitor_dispatch(w->m, timeout_ms, d);
}
