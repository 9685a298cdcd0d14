/* station/device_usb.c: USB DFU 1.1 devices over libusb (devices.md
 * "USB"; docs/usb.md): identified by a station-info alternate setting or
 * their descriptors, attested, authorized and receipted over that setting
 * (formats §9), detached from run-time mode when the first image is
 * written, and proven by reading the image back.  Also the listing and
 * hot-plug events of `station devices`, which only USB has. */
#include "station/device_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "station/base/hex.h"
#include "station/base/sha256.h"
#include "station/base/error.h"
#include "transport/dfu.h"
#include "transport/usb.h"

struct usb_dev {
	struct tp_usb *u;
	struct cu_identity id;	/* what identify found; the checks used it */
	int need_reset;		/* the last image left the device waiting in
				   dfuMANIFEST-WAIT-RESET */
	int gone;		/* it left the bus after manifestation */
	int attested;		/* it answered `attest`: every re-enumeration
				   must show the same unit's station-info */
	int authorized;		/* it took an authorization: it owes a
				   receipt for each image */
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

static int usb_spec_check(const char *spec, const char *rest,
			  struct stn_diag *d)
{
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

static int usb_open(struct stn_device *dev, const struct stn_config *cfg,
		    struct stn_diag *d)
{
	struct usb_dev *ud = stn_device_priv(dev);
	struct tp_usb_match m = {NULL, -1, -1, 0, 0};
	struct tp_usb_opts o;

	memset(&o, 0, sizeof(o));
	o.dfu.timeout_ms = cfg->usb.request_timeout_ms;
	o.dfu.busy_max_ms = cfg->usb.busy_timeout_ms;
	o.dfu.manifest_max_ms = cfg->usb.manifest_timeout_ms;
	o.refind_ms = cfg->usb.reappear_timeout_ms;
	if (!usb_ids(dev->rest, &m.vid, &m.pid))
		m.serial = dev->rest;
	return tp_usb_open(&m, &o, dev->name, &ud->u, d);
}

static void usb_close(struct stn_device *dev)
{
	struct usb_dev *ud = stn_device_priv(dev);

	tp_usb_close(ud->u);
}

/* The identity of an open device, and where it came from.  The device
 * chooses every string here, so each is checked before it goes into a
 * record (a newline in iProduct must not become a `sequence` line). */
static int usb_identity(struct tp_usb *u, const char *name,
			struct cu_identity *id, const char **source,
			struct stn_diag *d)
{
	const struct tp_usb_found *f = tp_usb_info(u);
	char where[300], version[16];
	int rc;

	if (f->info_alt >= 0) {
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
	snprintf(version, sizeof(version), "%x.%02x", f->bcd_device >> 8,
		 f->bcd_device & 0xff);
	snprintf(where, sizeof(where), "%s descriptors", name);
	return cu_identity_set(id, f->product, NULL, f->serial, version, where,
			       d);
}

static int usb_identify(struct stn_device *dev, struct cu_identity *id,
			struct stn_diag *d)
{
	struct usb_dev *ud = stn_device_priv(dev);
	const char *source;
	int rc = usb_identity(ud->u, dev->name, id, &source, d);

	if (rc == 0)
		ud->id = *id;
	return rc;
}

/* After a re-enumeration (DFU_DETACH, or the bus reset between two
 * images) the device must still be the unit whose identity was checked
 * and, once it attested, still show station-info: its challenge is the
 * device's for this power-on, and a detach or reset is not a power cycle,
 * so the unit keeps it; but only station-info can say it is that unit. */
static int usb_same_unit(struct stn_device *dev, const char *after,
			 struct stn_diag *d)
{
	struct usb_dev *ud = stn_device_priv(dev);
	struct cu_identity now;
	const char *source;
	int rc;

	if (tp_usb_info(ud->u)->info_alt < 0) {
		if (!ud->attested)
			return 0; /* re-found by its serial number */
		return stn_fail(d, STN_E_IDENTITY, dev->name,
				"after %s the device that attested as serial "
				"%s shows no station-info setting: it cannot "
				"be confirmed as the same unit, nothing "
				"written", after, ud->id.serial);
	}
	if ((rc = usb_identity(ud->u, dev->name, &now, &source, d)))
		return rc;
	if (strcmp(now.serial, ud->id.serial) != 0 ||
	    strcmp(now.model, ud->id.model) != 0 ||
	    strcmp(now.hardware, ud->id.hardware) != 0)
		return stn_fail(d, STN_E_IDENTITY, dev->name,
				"after %s the device says it is %s %s "
				"serial %s, but it was checked as %s %s "
				"serial %s: nothing written", after,
				now.model, now.hardware, now.serial,
				ud->id.model, ud->id.hardware, ud->id.serial);
	return 0;
}

/* A run-time device goes to DFU mode before its first image. */
static int usb_to_dfu_mode(struct stn_device *dev, struct stn_diag *d)
{
	struct usb_dev *ud = stn_device_priv(dev);
	int rc;

	if ((rc = tp_usb_detach(ud->u, d)))
		return rc;
	return usb_same_unit(dev, "DFU_DETACH", d);
}

/* ---- identity over station-info (formats §9; docs/usb.md) ---- */

static int usb_can_attest(const struct stn_device *dev)
{
	const struct usb_dev *ud = (const void *)dev->priv;

	return tp_usb_info(ud->u)->info_alt >= 0;
}

struct attest_call {
	const uint8_t *nonce;
	struct tp_signed_msg *out;
};

static int attest_on_info(struct tp_dfu *info, void *ctx, struct stn_diag *d)
{
	struct attest_call *c = ctx;

	return tp_dfu_attest(info, c->nonce, c->out, d);
}

static int usb_attest(struct stn_device *dev, const uint8_t *nonce,
		      struct tp_signed_msg *out, struct stn_diag *d)
{
	struct usb_dev *ud = stn_device_priv(dev);
	struct attest_call c = {nonce, out};
	int rc;

	if (tp_usb_info(ud->u)->info_alt < 0)
		return stn_fail(d, STN_E_NOATTEST, dev->name,
				"the device has no station-info setting to "
				"attest on");
	if ((rc = tp_usb_info_run(ud->u, attest_on_info, &c, d)))
		return rc;
	ud->attested = 1;
	return 0;
}

struct authorize_call {
	const struct tp_signed_msg *authz;
};

static int authorize_on_info(struct tp_dfu *info, void *ctx,
			     struct stn_diag *d)
{
	struct authorize_call *c = ctx;

	return tp_dfu_authorize(info, c->authz, d);
}

static int usb_authorize(struct stn_device *dev,
			 const struct tp_signed_msg *authz, struct stn_diag *d)
{
	struct usb_dev *ud = stn_device_priv(dev);
	struct authorize_call c = {authz};
	int rc;

	if (tp_usb_info(ud->u)->info_alt < 0)
		return stn_fail(d, STN_E_NOATTEST, dev->name,
				"the device has no station-info setting to "
				"take an authorization");
	if ((rc = tp_usb_info_run(ud->u, authorize_on_info, &c, d)))
		return rc;
	ud->authorized = 1;
	return 0;
}

struct receipt_call {
	struct tp_signed_msg *out;
	char sha256[CU_SHA256_HEX_LEN + 1];
};

static int receipt_on_info(struct tp_dfu *info, void *ctx, struct stn_diag *d)
{
	struct receipt_call *c = ctx;

	return tp_dfu_receipt(info, c->out, c->sha256, d);
}

struct hash_sink {
	struct cu_sha256 *h;
	int rc;
};

static int hash_write(void *ctx, const void *buf, size_t len)
{
	struct hash_sink *hs = ctx;

	return hs->rc = cu_sha256_update(hs->h, buf, len);
}

/* Download into the alternate setting img->slot, then read it back when
 * the device can upload and is back in dfuIDLE. */
static int usb_write(struct stn_device *dev, const struct stn_image_send *s,
		     struct stn_write_result *r, struct stn_diag *d)
{
	const struct cu_image *img = s->img;
	struct usb_dev *ud = stn_device_priv(dev);
	const struct tp_usb_found *f;
	enum tp_dfu_manifest how;
	struct hash_sink hs = {NULL};
	struct tp_sink sink = {hash_write, &hs};
	uint8_t back[CU_SHA256_LEN];
	char want[CU_SHA256_HEX_LEN + 1];
	uint64_t got = 0;
	int rc;

	if (ud->gone)
		return stn_fail(d, STN_E_NODEVICE, dev->name,
				"the device left the bus after the previous "
				"image and cannot take image %s", img->label);
	if (tp_usb_info(ud->u)->runtime && (rc = usb_to_dfu_mode(dev, d)))
		return rc;
	if (ud->need_reset) {
		/* The previous image waits for a reset to manifest. */
		if ((rc = tp_usb_reset(ud->u, 1, d)) ||
		    (rc = usb_same_unit(dev, "the bus reset", d)))
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
	    (rc = tp_dfu_download(tp_usb_dfu(ud->u), s->src, img->size, s->prog,
				  &how, d)))
		return rc;
	ud->need_reset = how == TP_DFU_MANIFEST_DONE_RESET;
	ud->gone = how == TP_DFU_MANIFEST_DONE_GONE;
	r->proof = STN_PROOF_NONE;
	if (how != TP_DFU_MANIFEST_DONE_IDLE)
		return 0; /* nothing can be read back: the caller says so;
			     nor can the receipt be fetched (docs/usb.md) */
	if (ud->authorized && s->receipt) {
		/* The device made its receipt as it manifested. */
		struct receipt_call rc_call = {s->receipt, ""};

		if ((rc = tp_usb_info_run(ud->u, receipt_on_info, &rc_call,
					  d)))
			return rc;
		*s->has_receipt = 1;
		memcpy(r->device_sha256, rc_call.sha256,
		       sizeof(r->device_sha256));
		r->proof = STN_PROOF_DEVICE_SHA; /* until read back */
	}
	if (!(f->func.attributes & TP_DFU_CAN_UPLOAD))
		return 0;
	hs.h = cu_sha256_new();
	if (!hs.h)
		return stn_fail(d, STN_E_NOMEM, dev->name, "read back");
	rc = tp_dfu_upload(tp_usb_dfu(ud->u), img->size, &sink, &got, NULL, d);
	if (hs.rc || (rc == 0 && (rc = cu_sha256_final(hs.h, back))))
		rc = stn_fail(d, hs.rc ? hs.rc : rc, dev->name,
			      "hashing the read-back image failed");
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
	struct usb_dev *ud = stn_device_priv(dev);

	if (ud->gone)
		return 0; /* it already left to run its firmware */
	ud->need_reset = 0;
	return tp_usb_reset(ud->u, 0, d);
}

const struct stn_device_ops stn_device_usb_ops = {
	.scheme = "usb",
	.transport = "usb-dfu",
	.priv_size = sizeof(struct usb_dev),
	.spec_check = usb_spec_check,
	.open = usb_open,
	.identify = usb_identify,
	.write = usb_write,
	.attest = usb_attest,
	.authorize = usb_authorize,
	.can_attest = usb_can_attest,
	.boot = usb_boot,
	.close = usb_close,
};

/* ---- `station devices` and hot-plug: USB DFU devices as they come ---- */

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
	s->source = f->info_alt >= 0 ? "station-info" : "descriptors";
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
