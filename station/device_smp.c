/* station/device_smp.c: SMP (MCUmgr) devices, Zephyr and MCUboot
 * (devices.md "Serial: SMP"; docs/serial.md).  They report their board and
 * running image, take uploads into a slot, and prove an install by the
 * image hash they list and the image they run after a reset. */
#include "station/device_internal.h"

#include <stdio.h>
#include <string.h>

#include "station/base/hex.h"
#include "station/base/sha256.h"
#include "station/base/error.h"
#include "transport/mcuboot.h"
#include "transport/smp.h"

/* After an SMP reset the device boots (MCUboot may swap slots first, which
 * takes tens of seconds on large slots) before it answers again; [port]
 * reset-timeout overrides it. */
#define SMP_BOOT_WAIT_MS 90000
/* An image written straight to the primary slot (MCUboot serial recovery)
 * needs no test and no confirm, and the application it boots may speak no
 * SMP at all: it is given this long to answer, then left to run ([port]
 * recovery-wait). */
#define SMP_DIRECT_WAIT_MS 5000

struct smp_written {
	unsigned image;
	uint8_t hash[32];
	int tested; /* went to the secondary slot for a test boot */
};

struct smp_dev {
	const struct stn_port *port; /* borrowed from the configuration */
	struct tp_smp *smp;
	struct smp_written written[CU_MAX_IMAGES];
	size_t nwritten;
};

static int smp_open(struct stn_device *dev, const struct stn_config *cfg,
		    struct stn_diag *d)
{
	struct smp_dev *sd = stn_device_priv(dev);
	unsigned baud;
	int rtscts, rc;

	if ((rc = stn_device_port(dev, cfg, STN_PORT_SMP, &sd->port, &baud,
				  &rtscts, d)))
		return rc;
	return tp_smp_open(dev->rest, baud, rtscts, NULL, &sd->smp, d);
}

static void smp_close(struct stn_device *dev)
{
	struct smp_dev *sd = stn_device_priv(dev);

	tp_smp_close(sd->smp);
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
	struct smp_dev *sd = stn_device_priv(dev);
	const struct stn_port *p = sd->port;
	struct tp_smp_image imgs[TP_SMP_MAX_IMAGES];
	const struct tp_smp_image *run;
	struct stn_diag ld;
	char board[128], node[128];
	const char *model, *serial;
	size_t n;
	int rc;

	stn_diag_init(&ld);
	rc = tp_smp_os_info(sd->smp, "i", board, sizeof(board), &ld);
	if (rc == STN_E_DEVICE && p && p->model) {
		board[0] = '\0'; /* no OS info (serial recovery): configured */
	} else if (rc == STN_E_DEVICE) {
		return stn_fail(d, STN_E_IDENTITY, dev->name,
				"the device does not report its board (%s): "
				"configure a [port] section with path = %s "
				"and model", ld.text, dev->rest);
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
				"and model", dev->rest);
	model = board[0] ? board : p->model;
	if ((rc = tp_smp_image_state(sd->smp, imgs, &n, d)))
		return rc;
	run = running(imgs, n, 0);
	serial = p && p->serial ? p->serial : NULL;
	if (!serial) {
		stn_diag_init(&ld);
		rc = tp_smp_os_info(sd->smp, "n", node, sizeof(node), &ld);
		if (rc && rc != STN_E_DEVICE)
			return stn_fail(d, rc, ld.where, "%s", ld.text);
		if (rc == 0 && node[0] && strcmp(node, "unknown") != 0)
			serial = node;
	}
	if (!serial)
		return stn_fail(d, STN_E_IDENTITY, dev->name,
				"the device reports no serial number (OS info "
				"node name): configure a [port] section with "
				"path = %s and serial", dev->rest);
	return cu_identity_set(id, model, p ? p->hardware : NULL, serial,
			       run ? run->version : NULL, dev->name, d);
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
static int smp_write(struct stn_device *dev, const struct stn_image_send *s,
		     struct stn_write_result *r, struct stn_diag *d)
{
	struct smp_dev *sd = stn_device_priv(dev);
	const struct cu_image *img = s->img;
	struct tp_mcuboot_info info;
	struct tp_smp_upload_result up;
	struct tp_smp_image imgs[TP_SMP_MAX_IMAGES];
	const struct tp_smp_image *e;
	char hex[65], want[65], list[600];
	size_t n;
	int rc;

	/* The MCUboot check reads the staged file, which for an image
	 * delivered encrypted (formats §10) is ciphertext. */
	if (s->fd < 0)
		return stn_fail(d, STN_E_USAGE, s->shown,
				"image %s is delivered encrypted: the SMP "
				"transport checks MCUboot images from the "
				"staged file and takes plain images only",
				img->label);
	/* Before a byte is sent: a file that is no MCUboot image, or whose
	 * own hash does not check, would never boot. */
	if ((rc = tp_mcuboot_inspect(s->fd, img->size, 1, s->shown, &info, d)))
		return rc;
	cu_hex(info.hash, 32, hex);
	cu_hex(img->sha256, sizeof(img->sha256), want);
	if ((rc = tp_smp_upload(sd->smp, img->slot, img->size, img->sha256,
				s->src, s->prog, &up, d)))
		return rc;
	if (up.match == 0)
		return stn_fail(d, STN_E_VERIFY_DEVICE, dev->name,
				"image %s: the device says what it stored does "
				"not match sha256 %s", img->label, want);
	if ((rc = tp_smp_image_state(sd->smp, imgs, &n, d)))
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
		if ((rc = tp_smp_image_set(sd->smp, info.hash, 0, imgs, &n,
					   d)))
			return rc;
		e = with_hash(imgs, n, img->slot, info.hash);
		if (!e || !e->pending)
			return stn_fail(d, STN_E_VERIFY_DEVICE, dev->name,
					"image %s: the device did not mark "
					"hash %s for a test boot", img->label,
					hex);
	}
	if (sd->nwritten < CU_MAX_IMAGES) {
		sd->written[sd->nwritten].image = img->slot;
		sd->written[sd->nwritten].tested = e->slot != 0;
		memcpy(sd->written[sd->nwritten].hash, info.hash, 32);
		sd->nwritten++;
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

/* Reset, wait until the device answers again, check that it runs what was
 * written, and confirm it. */
static int smp_boot(struct stn_device *dev, struct stn_diag *d)
{
	struct smp_dev *sd = stn_device_priv(dev);
	const struct stn_port *p = sd->port;
	struct tp_smp_image imgs[TP_SMP_MAX_IMAGES];
	struct stn_diag ld;
	char list[600];
	size_t n = 0;
	unsigned wait_ms;
	int tested = 0;
	int rc;

	for (size_t i = 0; i < sd->nwritten; i++)
		tested |= sd->written[i].tested;
	if ((rc = tp_smp_reset(sd->smp, d)))
		return rc;
	stn_diag_init(&ld);
	if (tested)
		wait_ms = p && p->reset_timeout_ms ? p->reset_timeout_ms
						   : SMP_BOOT_WAIT_MS;
	else
		wait_ms = p && p->recovery_wait_ms ? p->recovery_wait_ms
						   : SMP_DIRECT_WAIT_MS;
	rc = tp_smp_await_ready(sd->smp, (int)wait_ms, &ld);
	if (rc == STN_E_TIMEOUT && !tested)
		return 0; /* MCUboot checks the image it boots; nothing to
			     confirm, and the application may not answer */
	if (rc)
		return stn_fail(d, rc, ld.where, "%s", ld.text);
	stn_diag_init(&ld);
	if ((rc = tp_smp_image_state(sd->smp, imgs, &n, &ld)))
		return stn_fail(d, rc, ld.where, "after the reset: %s",
				ld.text);
	for (size_t i = 0; i < sd->nwritten; i++) {
		const struct smp_written *w = &sd->written[i];
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
		if ((rc = tp_smp_image_set(sd->smp, w->hash, 1, imgs, &n, d)))
			return rc;
		run = running(imgs, n, w->image);
		if (!run || !run->confirmed)
			return stn_fail(d, STN_E_VERIFY_DEVICE, dev->name,
					"image %u hash %s runs but the device "
					"did not confirm it", w->image, hex);
	}
	return 0;
}

const struct stn_device_ops stn_device_smp_ops = {
	.scheme = "smp",
	.transport = "smp",
	.priv_size = sizeof(struct smp_dev),
	.spec_check = stn_device_path_check,
	.open = smp_open,
	.identify = smp_identify,
	.write = smp_write,
	.boot = smp_boot,
	.close = smp_close,
};
