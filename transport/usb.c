/* transport/usb.c: USB DFU devices through libusb-1.0 (see usb.h).  Every
 * search enumerates with a fresh libusb context: libusb learns of devices
 * that appear later only through udevd's broadcasts, which an appliance
 * (or a test guest) may not run, while a new context reads sysfs. */
#include "transport/usb.h"
#include "station/base/monotime.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/netlink.h>

#include <libusb.h>

#define DEFAULT_REFIND_MS 10000
#define STRING_TIMEOUT_MS 1000
#define MAX_IFACES 4 /* DFU interfaces per device that we report */
#define INFO_MAX 65536

struct tp_usb {
	libusb_context *ctx;
	libusb_device_handle *h;
	struct tp_usb_found f;
	struct tp_usb_opts o;
	struct tp_dfu *dfu;
	int claimed;
	char name[256];
};

/* ---- libusb errors ------------------------------------------------------ */

/* libusb's name for the cause stays in the text; the code says what the
 * station can do about it. */
static int usb_err(struct stn_diag *d, int lerr, const char *where,
		   const char *what)
{
	int code;
	const char *why;

	switch (lerr) {
	case LIBUSB_ERROR_NO_DEVICE:
		code = STN_E_NODEVICE, why = "the device is gone";
		break;
	case LIBUSB_ERROR_NOT_FOUND:
		code = STN_E_NODEVICE, why = "the device or interface is gone";
		break;
	case LIBUSB_ERROR_PIPE:
		code = STN_E_DEVICE, why = "the device stalled the request";
		break;
	case LIBUSB_ERROR_TIMEOUT:
		code = STN_E_TIMEOUT, why = "no answer in time";
		break;
	case LIBUSB_ERROR_ACCESS:
		code = STN_E_DEVICE,
		why = "permission denied (a udev rule or root is needed)";
		break;
	case LIBUSB_ERROR_BUSY:
		code = STN_E_DEVICE, why = "another program has claimed it";
		break;
	case LIBUSB_ERROR_NO_MEM:
		code = STN_E_NOMEM, why = "out of memory";
		break;
	case LIBUSB_ERROR_OVERFLOW:
		code = STN_E_PROTOCOL, why = "the device sent more than asked";
		break;
	default:
		code = STN_E_IO, why = "USB transfer failed";
		break;
	}
	if (!what) /* the caller names the request */
		return stn_fail(d, code, where, "%s (%s)", why,
				libusb_error_name(lerr));
	return stn_fail(d, code, where, "%s: %s (%s)", what, why,
			libusb_error_name(lerr));
}

/* ---- describing a device ------------------------------------------------ */

static void read_string(libusb_device_handle *h, uint8_t idx, char *buf,
			size_t cap)
{
	int n;

	buf[0] = '\0';
	if (!h || idx == 0)
		return;
	n = libusb_get_string_descriptor_ascii(h, idx, (unsigned char *)buf,
					       (int)cap);
	if (n < 0)
		buf[0] = '\0';
	else
		buf[(size_t)n < cap ? (size_t)n : cap - 1] = '\0';
}

/* The first DFU functional descriptor among `extra` bytes. */
static int find_func(const unsigned char *p, int len, struct tp_dfu_func *f)
{
	while (len >= 2 && p[0] >= 2 && p[0] <= len) {
		if (p[1] == TP_DFU_FUNC_DESC_TYPE &&
		    tp_dfu_func_parse(p, p[0], "", f, NULL) == 0)
			return 1;
		len -= p[0];
		p += p[0];
	}
	return 0;
}

static int is_dfu(const struct libusb_interface_descriptor *a)
{
	return a->bInterfaceClass == 0xfe && a->bInterfaceSubClass == 0x01 &&
	       (a->bInterfaceProtocol == 0x01 || a->bInterfaceProtocol == 0x02);
}

/* Fill up to cap entries for the DFU interfaces of dev; *n how many. */
static void describe(libusb_device *dev, struct tp_usb_found *out,
		     size_t cap, size_t *n)
{
	struct libusb_device_descriptor dd;
	libusb_device_handle *h = NULL;
	uint8_t ports[8];
	char problem[256] = "";
	size_t used = 0;
	int np, rc;

	*n = 0;
	if (libusb_get_device_descriptor(dev, &dd) != 0)
		return;
	for (uint8_t c = 0; c < dd.bNumConfigurations && *n < cap; c++) {
		struct libusb_config_descriptor *cfg;

		if (libusb_get_config_descriptor(dev, c, &cfg) != 0)
			continue;
		for (int i = 0; i < cfg->bNumInterfaces && *n < cap; i++) {
			const struct libusb_interface *it = &cfg->interface[i];
			struct tp_usb_found *f = &out[*n];

			if (it->num_altsetting < 1 || !is_dfu(&it->altsetting[0]))
				continue;
			memset(f, 0, sizeof(*f));
			f->iface = it->altsetting[0].bInterfaceNumber;
			f->runtime = it->altsetting[0].bInterfaceProtocol == 1;
			f->nalts = (unsigned)it->num_altsetting;
			f->info_alt = -1;
			for (int a = 0; a < it->num_altsetting && !f->has_func;
			     a++)
				f->has_func = find_func(it->altsetting[a].extra,
							it->altsetting[a]
								.extra_length,
							&f->func);
			if (!f->has_func)
				f->has_func = find_func(cfg->extra,
							cfg->extra_length,
							&f->func);
			if (!h && !problem[0] && (rc = libusb_open(dev, &h)))
				snprintf(problem, sizeof(problem),
					 "cannot open it to read its strings: "
					 "%s", libusb_error_name(rc));
			for (int a = 0; a < it->num_altsetting && h; a++) {
				char s[64];
				read_string(h, it->altsetting[a].iInterface, s,
					    sizeof(s));
				if (strcmp(s, "station-info") == 0) {
					f->info_alt =
						it->altsetting[a]
							.bAlternateSetting;
					break;
				}
			}
			(*n)++;
		}
		libusb_free_config_descriptor(cfg);
	}
	if (*n == 0) {
		if (h)
			libusb_close(h);
		return;
	}
	for (size_t k = 0; k < *n; k++) {
		struct tp_usb_found *f = &out[k];

		f->vid = dd.idVendor;
		f->pid = dd.idProduct;
		f->bcd_device = dd.bcdDevice;
		f->bus = libusb_get_bus_number(dev);
		f->address = libusb_get_device_address(dev);
		used = (size_t)snprintf(f->port, sizeof(f->port), "%u",
					f->bus);
		np = libusb_get_port_numbers(dev, ports, sizeof(ports));
		for (int p = 0; p < np && used < sizeof(f->port); p++)
			used += (size_t)snprintf(f->port + used,
						 sizeof(f->port) - used,
						 "%c%u", p ? '.' : '-',
						 ports[p]);
		if (k == 0) {
			read_string(h, dd.iSerialNumber, f->serial,
				    sizeof(f->serial));
			read_string(h, dd.iProduct, f->product,
				    sizeof(f->product));
			read_string(h, dd.iManufacturer, f->manufacturer,
				    sizeof(f->manufacturer));
		} else {
			memcpy(f->serial, out[0].serial, sizeof(f->serial));
			memcpy(f->product, out[0].product,
			       sizeof(f->product));
			memcpy(f->manufacturer, out[0].manufacturer,
			       sizeof(f->manufacturer));
		}
		if (problem[0])
			snprintf(f->problem, sizeof(f->problem), "%s",
				 problem);
		else if (!f->has_func)
			snprintf(f->problem, sizeof(f->problem),
				 "no DFU functional descriptor");
	}
	if (h)
		libusb_close(h);
}

static int new_ctx(libusb_context **ctx, struct stn_diag *d)
{
	int rc = libusb_init(ctx);

	if (rc)
		return usb_err(d, rc, "usb", "starting libusb");
	return 0;
}

/* Every DFU interface, with the libusb device it belongs to (referenced
 * in devs[], which the caller frees with libusb_free_device_list). */
struct found_list {
	struct tp_usb_found *f;
	libusb_device **dev; /* per entry, borrowed from the list */
	size_t n, cap;
	libusb_device **list;
};

static int enumerate(libusb_context *ctx, struct found_list *fl,
		     struct stn_diag *d)
{
	ssize_t nd;

	memset(fl, 0, sizeof(*fl));
	nd = libusb_get_device_list(ctx, &fl->list);
	if (nd < 0)
		return usb_err(d, (int)nd, "usb", "listing USB devices");
	for (ssize_t i = 0; i < nd; i++) {
		struct tp_usb_found tmp[MAX_IFACES];
		size_t n;

		describe(fl->list[i], tmp, MAX_IFACES, &n);
		if (n == 0)
			continue;
		if (fl->n + n > fl->cap) {
			size_t cap = (fl->n + n) * 2;
			void *nf = realloc(fl->f, cap * sizeof(*fl->f));
			if (!nf)
				return stn_fail(d, STN_E_NOMEM, "usb", "scan");
			fl->f = nf;
			void *ndv = realloc(fl->dev, cap * sizeof(*fl->dev));
			if (!ndv)
				return stn_fail(d, STN_E_NOMEM, "usb", "scan");
			fl->dev = ndv;
			fl->cap = cap;
		}
		for (size_t k = 0; k < n; k++) {
			fl->f[fl->n] = tmp[k];
			fl->dev[fl->n] = fl->list[i];
			fl->n++;
		}
	}
	return 0;
}

static void found_list_free(struct found_list *fl)
{
	free(fl->f);
	free(fl->dev);
	if (fl->list)
		libusb_free_device_list(fl->list, 1);
}

int tp_usb_scan(struct tp_usb_found **out, size_t *n, struct stn_diag *d)
{
	libusb_context *ctx;
	struct found_list fl;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = new_ctx(&ctx, d)))
		return rc;
	fl.list = NULL;
	rc = enumerate(ctx, &fl, d);
	if (rc == 0) {
		*out = fl.f;
		*n = fl.n;
		fl.f = NULL;
	}
	found_list_free(&fl);
	libusb_exit(ctx);
	return rc;
}

/* ---- opening ------------------------------------------------------------ */

static int matches(const struct tp_usb_match *m, const struct tp_usb_found *f)
{
	if (m->serial && strcmp(m->serial, f->serial) != 0)
		return 0;
	if (m->vid >= 0 && m->vid != f->vid)
		return 0;
	if (m->pid >= 0 && m->pid != f->pid)
		return 0;
	if (m->bus && (m->bus != f->bus || m->address != f->address))
		return 0;
	return 1;
}

static void describe_match(const struct tp_usb_match *m, char *buf,
			   size_t cap)
{
	if (m->serial)
		snprintf(buf, cap, "serial number %s", m->serial);
	else if (m->bus)
		snprintf(buf, cap, "bus %d address %d", m->bus, m->address);
	else
		snprintf(buf, cap, "ids %04x:%04x", m->vid & 0xffff,
			 m->pid & 0xffff);
}

static int control(void *ctx, int in, uint8_t request, uint16_t value,
		   void *buf, size_t len, size_t *got, int timeout_ms,
		   struct stn_diag *d)
{
	struct tp_usb *u = ctx;
	int r, cfg;

	r = libusb_control_transfer(
		u->h,
		(uint8_t)((in ? LIBUSB_ENDPOINT_IN : LIBUSB_ENDPOINT_OUT) |
			  LIBUSB_REQUEST_TYPE_CLASS |
			  LIBUSB_RECIPIENT_INTERFACE),
		request, value, u->f.iface, buf, (uint16_t)len,
		(unsigned)timeout_ms);
	if (r >= 0) {
		*got = (size_t)r;
		return 0;
	}
	/* A transfer cut short by an unplug can surface as a plain I/O
	 * error: ask the device whether it is still there. */
	if (r != LIBUSB_ERROR_PIPE && r != LIBUSB_ERROR_NO_DEVICE &&
	    libusb_get_configuration(u->h, &cfg) == LIBUSB_ERROR_NO_DEVICE)
		r = LIBUSB_ERROR_NO_DEVICE;
	(void)request; /* transport/dfu.c puts the request in the message */
	return usb_err(d, r, u->name, NULL);
}

static void io_sleep(void *ctx, unsigned ms)
{
	(void)ctx;
	stn_sleep_ms(ms);
}

static uint64_t io_now(void *ctx)
{
	(void)ctx;
	return stn_mono_ms();
}

static void release(struct tp_usb *u)
{
	tp_dfu_free(u->dfu);
	u->dfu = NULL;
	if (u->h) {
		if (u->claimed)
			libusb_release_interface(u->h, u->f.iface);
		libusb_close(u->h);
	}
	u->h = NULL;
	u->claimed = 0;
	if (u->ctx)
		libusb_exit(u->ctx);
	u->ctx = NULL;
}

/* Find the one match in a fresh enumeration and open it into u. */
static int attach(struct tp_usb *u, const struct tp_usb_match *m,
		  struct stn_diag *d)
{
	struct found_list fl = {0};
	struct tp_dfu_io io = {control, io_sleep, io_now, u};
	char what[200], seen[600] = "";
	size_t hit = 0, nhit = 0, used = 0;
	int rc;

	if ((rc = new_ctx(&u->ctx, d)))
		return rc;
	if ((rc = enumerate(u->ctx, &fl, d)))
		goto out;
	for (size_t i = 0; i < fl.n; i++) {
		if (used < sizeof(seen))
			used += (size_t)snprintf(
				seen + used, sizeof(seen) - used,
				"%s%04x:%04x serial %s (%s mode) at %s",
				i ? "; " : "", fl.f[i].vid, fl.f[i].pid,
				fl.f[i].serial[0] ? fl.f[i].serial : "(none)",
				fl.f[i].runtime ? "run-time" : "DFU",
				fl.f[i].port);
		if (matches(m, &fl.f[i])) {
			if (nhit == 0)
				hit = i;
			nhit++;
		}
	}
	describe_match(m, what, sizeof(what));
	if (nhit == 0) {
		rc = stn_fail(d, STN_E_NODEVICE, u->name,
			      "no USB DFU device with %s is connected (%s)",
			      what, fl.n ? seen : "no DFU devices at all");
		goto out;
	}
	if (nhit > 1) {
		/* Which unit is meant is not clear: an identity problem,
		 * never a guess. */
		rc = stn_fail(d, STN_E_IDENTITY, u->name,
			      "%zu USB DFU devices match %s: name one by "
			      "serial number, usb:SERIAL (%s)",
			      nhit, what, seen);
		goto out;
	}
	u->f = fl.f[hit];
	if (!u->f.has_func) {
		rc = stn_fail(d, STN_E_PROTOCOL, u->name,
			      "%04x:%04x at %s has a DFU interface without "
			      "a DFU functional descriptor",
			      u->f.vid, u->f.pid, u->f.port);
		goto out;
	}
	if ((rc = libusb_open(fl.dev[hit], &u->h))) {
		u->h = NULL;
		rc = usb_err(d, rc, u->name, "opening the device");
		goto out;
	}
	libusb_set_auto_detach_kernel_driver(u->h, 1);
	if ((rc = libusb_claim_interface(u->h, u->f.iface))) {
		rc = usb_err(d, rc, u->name, "claiming the DFU interface");
		goto out;
	}
	u->claimed = 1;
	/* Alternate setting 0 is where an image for slot 0 goes; some
	 * devices also need the request to start DFU at all. */
	if (!u->f.runtime && u->f.nalts > 1 &&
	    (rc = libusb_set_interface_alt_setting(u->h, u->f.iface, 0))) {
		rc = usb_err(d, rc, u->name, "selecting alternate setting 0");
		goto out;
	}
	rc = tp_dfu_new(&io, &u->f.func, u->name, &u->o.dfu, &u->dfu, d);
out:
	found_list_free(&fl);
	if (rc)
		release(u);
	return rc;
}

int tp_usb_open(const struct tp_usb_match *m, const struct tp_usb_opts *o,
		const char *name, struct tp_usb **out, struct stn_diag *d)
{
	struct tp_usb *u = calloc(1, sizeof(*u));
	int rc;

	if (!u)
		return stn_fail(d, STN_E_NOMEM, name, "opening");
	if (o)
		u->o = *o;
	snprintf(u->name, sizeof(u->name), "%s", name);
	if ((rc = attach(u, m, d))) {
		free(u);
		return rc;
	}
	*out = u;
	return 0;
}

void tp_usb_close(struct tp_usb *u)
{
	if (!u)
		return;
	release(u);
	free(u);
}

const struct tp_usb_found *tp_usb_info(const struct tp_usb *u)
{
	return &u->f;
}

struct tp_dfu *tp_usb_dfu(struct tp_usb *u)
{
	return u->dfu;
}

int tp_usb_set_alt(struct tp_usb *u, unsigned alt, struct stn_diag *d)
{
	char what[64];
	int rc;

	if (alt >= u->f.nalts)
		return stn_fail(d, STN_E_USAGE, u->name,
				"the DFU interface has no alternate setting "
				"%u (it has %u)", alt, u->f.nalts);
	if (!u->h)
		return stn_fail(d, STN_E_NODEVICE, u->name,
				"the device is not open");
	rc = libusb_set_interface_alt_setting(u->h, u->f.iface, (int)alt);
	if (rc) {
		snprintf(what, sizeof(what), "selecting alternate setting %u",
			 alt);
		return usb_err(d, rc, u->name, what);
	}
	return 0;
}

struct buf_sink {
	char *buf;
	size_t cap, len;
	int over;
};

static int buf_write(void *ctx, const void *data, size_t len)
{
	struct buf_sink *b = ctx;

	if (b->len + len >= b->cap) {
		b->over = 1;
		len = b->cap - 1 - b->len;
	}
	memcpy(b->buf + b->len, data, len);
	b->len += len;
	return 0;
}

int tp_usb_read_info(struct tp_usb *u, char *buf, size_t cap, size_t *len,
		     struct stn_diag *d)
{
	struct buf_sink b = {buf, cap, 0, 0};
	struct tp_sink sink = {buf_write, &b};
	struct tp_dfu_func fn;
	struct tp_dfu *info;
	struct tp_dfu_io io = {control, io_sleep, io_now, u};
	uint64_t got = 0;
	int rc, rc2;

	if (u->f.info_alt < 0)
		return stn_fail(d, STN_E_USAGE, u->name,
				"no station-info alternate setting");
	if (cap < 2)
		return stn_fail(d, STN_E_USAGE, u->name, "buffer too small");
	if ((rc = tp_usb_set_alt(u, (unsigned)u->f.info_alt, d)))
		return rc;
	/* The identity is read whatever bitCanUpload says about images. */
	fn = u->f.func;
	fn.attributes |= TP_DFU_CAN_UPLOAD;
	if ((rc = tp_dfu_new(&io, &fn, u->name, &u->o.dfu, &info, d)))
		return rc;
	rc = tp_dfu_ready(info, d);
	if (rc == 0)
		rc = tp_dfu_upload(info, cap, &sink, &got, NULL, d);
	tp_dfu_free(info);
	rc2 = tp_usb_set_alt(u, 0, rc ? NULL : d);
	if (rc == 0 && b.over)
		rc = stn_fail(d, STN_E_IDENTITY, u->name,
			      "the station-info record is longer than %zu "
			      "bytes", cap - 1);
	if (rc)
		return rc;
	if (rc2)
		return rc2;
	buf[b.len] = '\0';
	*len = b.len;
	return 0;
}

int tp_usb_info_run(struct tp_usb *u,
		    int (*fn)(struct tp_dfu *info, void *ctx,
			      struct stn_diag *d),
		    void *ctx, struct stn_diag *d)
{
	struct tp_dfu_io io = {control, io_sleep, io_now, u};
	struct tp_dfu_func fn_desc;
	struct tp_dfu *info;
	int rc, rc2;

	if (u->f.info_alt < 0)
		return stn_fail(d, STN_E_USAGE, u->name,
				"no station-info alternate setting");
	if ((rc = tp_usb_set_alt(u, (unsigned)u->f.info_alt, d)))
		return rc;
	/* Commands and answers go whatever the bits say about images. */
	fn_desc = u->f.func;
	fn_desc.attributes |= TP_DFU_CAN_DNLOAD | TP_DFU_CAN_UPLOAD |
			      TP_DFU_MANIFEST_TOLERANT;
	if ((rc = tp_dfu_new(&io, &fn_desc, u->name, &u->o.dfu, &info, d)))
		return rc;
	rc = fn(info, ctx, d);
	tp_dfu_free(info);
	/* Alternate setting 0 again, as after open (a run-time interface
	 * has only the one it started in and the station-info one). */
	rc2 = tp_usb_set_alt(u, 0, rc ? NULL : d);
	return rc ? rc : rc2;
}

/* Wait for the same unit (vendor id and serial number) to come back in
 * the wanted mode, and open it. */
static int refind(struct tp_usb *u, int want_runtime, unsigned extra_ms,
		  struct stn_diag *d)
{
	struct tp_usb_found was = u->f;
	struct tp_usb_match m = {was.serial, was.vid, -1, 0, 0};
	uint64_t limit = (uint64_t)(u->o.refind_ms > 0 ? u->o.refind_ms
						       : DEFAULT_REFIND_MS) +
			 extra_ms;
	uint64_t start = stn_mono_ms();
	struct stn_diag ld;
	int rc;

	release(u);
	for (;;) {
		stn_sleep_ms(100);
		stn_diag_init(&ld);
		rc = attach(u, &m, &ld);
		if (rc == 0 && u->f.runtime == want_runtime)
			return 0;
		if (rc == 0)
			release(u);
		/* Still the old enumeration, or not back yet. */
		if (rc && rc != STN_E_NODEVICE)
			return stn_fail(d, rc, ld.where, "%s", ld.text);
		if (stn_mono_ms() - start > limit)
			break;
	}
	return stn_fail(d, STN_E_NODEVICE, u->name,
			"%04x:%04x serial %s did not come back in %s mode "
			"within %" PRIu64 " ms", was.vid, was.pid, was.serial,
			want_runtime ? "run-time" : "DFU", limit);
}

int tp_usb_detach(struct tp_usb *u, struct stn_diag *d)
{
	struct stn_diag ld;
	int rc;

	if (!u->f.runtime)
		return stn_fail(d, STN_E_USAGE, u->name,
				"the device is already in DFU mode");
	if (!u->f.serial[0])
		return stn_fail(d, STN_E_USAGE, u->name,
				"a run-time device without a serial number "
				"cannot be found again after DFU_DETACH");
	stn_diag_init(&ld);
	rc = tp_dfu_detach(u->dfu, &ld);
	/* A device that detaches itself may leave before it answers. */
	if (rc && !((u->f.func.attributes & TP_DFU_WILL_DETACH) &&
		    (rc == STN_E_NODEVICE || rc == STN_E_IO)))
		return stn_fail(d, rc, ld.where, "DFU_DETACH: %s", ld.text);
	if (!(u->f.func.attributes & TP_DFU_WILL_DETACH)) {
		rc = libusb_reset_device(u->h);
		/* NOT_FOUND: it re-enumerated as another device, as a
		 * detached DFU device does. */
		if (rc && rc != LIBUSB_ERROR_NOT_FOUND &&
		    rc != LIBUSB_ERROR_NO_DEVICE)
			return usb_err(d, rc, u->name,
				       "bus reset after DFU_DETACH");
	}
	return refind(u, 0, u->f.func.detach_ms, d);
}

int tp_usb_reset(struct tp_usb *u, int again, struct stn_diag *d)
{
	int rc;

	if (!u->h)
		return again ? refind(u, 0, 0, d) : 0;
	if (u->claimed) {
		libusb_release_interface(u->h, u->f.iface);
		u->claimed = 0;
	}
	rc = libusb_reset_device(u->h);
	if (rc && rc != LIBUSB_ERROR_NOT_FOUND && rc != LIBUSB_ERROR_NO_DEVICE)
		return usb_err(d, rc, u->name, "bus reset");
	if (again)
		return refind(u, 0, 0, d);
	release(u);
	return 0;
}

/* ---- hot-plug ----------------------------------------------------------- */

struct known {
	char devpath[1024];
	struct tp_usb_found f;
};

struct tp_usb_monitor {
	int fd;
	tp_usb_event_fn fn;
	void *ctx;
	struct known *k;
	size_t nk, capk;
};

static int remember(struct tp_usb_monitor *m, const char *devpath,
		    const struct tp_usb_found *f)
{
	if (m->nk == m->capk) {
		size_t cap = m->capk * 2 + 8;
		void *nk = realloc(m->k, cap * sizeof(*m->k));
		if (!nk)
			return -1;
		m->k = nk;
		m->capk = cap;
	}
	snprintf(m->k[m->nk].devpath, sizeof(m->k[m->nk].devpath), "%s",
		 devpath);
	m->k[m->nk].f = *f;
	m->nk++;
	return 0;
}

/* sysfs path of a libusb device: /devices/... is what uevents carry. */
static void devpath_of(const struct tp_usb_found *f, char *buf, size_t cap)
{
	char link[256], target[1024];
	ssize_t n;

	snprintf(link, sizeof(link), "/sys/bus/usb/devices/%s", f->port);
	n = readlink(link, target, sizeof(target) - 1);
	buf[0] = '\0';
	if (n <= 0)
		return;
	target[n] = '\0';
	/* "../../../devices/platform/vhci_hcd.0/usb1/1-1" */
	const char *p = strstr(target, "/devices/");
	snprintf(buf, cap, "%s", p ? p : target);
}

int tp_usb_monitor_new(tp_usb_event_fn fn, void *ctx,
		       struct tp_usb_monitor **out, struct stn_diag *d)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = 1};
	struct tp_usb_monitor *m = calloc(1, sizeof(*m));
	struct tp_usb_found *list = NULL;
	size_t n = 0;
	int rc;

	if (!m)
		return stn_fail(d, STN_E_NOMEM, "usb", "monitor");
	m->fn = fn;
	m->ctx = ctx;
	m->fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		       NETLINK_KOBJECT_UEVENT);
	if (m->fd < 0 || bind(m->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		rc = stn_fail(d, STN_E_IO, "usb",
			      "cannot listen for kernel uevents: %s",
			      strerror(errno));
		tp_usb_monitor_free(m);
		return rc;
	}
	if ((rc = tp_usb_scan(&list, &n, d))) {
		tp_usb_monitor_free(m);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		char dp[1024];
		devpath_of(&list[i], dp, sizeof(dp));
		if (dp[0] && remember(m, dp, &list[i]) != 0) {
			free(list);
			tp_usb_monitor_free(m);
			return stn_fail(d, STN_E_NOMEM, "usb", "monitor");
		}
	}
	free(list);
	*out = m;
	return 0;
}

void tp_usb_monitor_free(struct tp_usb_monitor *m)
{
	if (!m)
		return;
	if (m->fd >= 0)
		close(m->fd);
	free(m->k);
	free(m);
}

int tp_usb_monitor_fd(const struct tp_usb_monitor *m)
{
	return m->fd;
}

static const char *prop(const char *msg, size_t len, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i < len;) {
		const char *s = msg + i;
		size_t sl = strnlen(s, len - i);
		if (sl > kl && memcmp(s, key, kl) == 0 && s[kl] == '=')
			return s + kl + 1;
		i += sl + 1;
	}
	return NULL;
}

static void uevent(struct tp_usb_monitor *m, const char *msg, size_t len)
{
	const char *action = prop(msg, len, "ACTION");
	const char *devpath = prop(msg, len, "DEVPATH");
	const char *sub = prop(msg, len, "SUBSYSTEM");
	const char *type = prop(msg, len, "DEVTYPE");
	const char *busnum = prop(msg, len, "BUSNUM");
	const char *devnum = prop(msg, len, "DEVNUM");

	if (!action || !devpath || !sub || strcmp(sub, "usb") != 0 || !type ||
	    strcmp(type, "usb_device") != 0)
		return;
	if (strcmp(action, "remove") == 0) {
		for (size_t i = 0; i < m->nk;) {
			if (strcmp(m->k[i].devpath, devpath) == 0) {
				struct tp_usb_found f = m->k[i].f;
				m->k[i] = m->k[--m->nk];
				m->fn(m->ctx, TP_USB_LEFT, &f);
			} else {
				i++;
			}
		}
		return;
	}
	if (strcmp(action, "add") != 0 || !busnum || !devnum)
		return;
	{
		struct tp_usb_found *list = NULL;
		size_t n = 0;
		unsigned bus = (unsigned)atoi(busnum);
		unsigned addr = (unsigned)atoi(devnum);

		if (tp_usb_scan(&list, &n, NULL) != 0)
			return;
		for (size_t i = 0; i < n; i++) {
			if (list[i].bus != bus || list[i].address != addr)
				continue;
			if (remember(m, devpath, &list[i]) == 0)
				m->fn(m->ctx, TP_USB_ARRIVED, &list[i]);
		}
		free(list);
	}
}

int tp_usb_monitor_dispatch(struct tp_usb_monitor *m, int timeout_ms,
			    struct stn_diag *d)
{
	struct pollfd p = {m->fd, POLLIN, 0};
	char buf[8192];
	int rc;

	do
		rc = poll(&p, 1, timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return stn_fail(d, STN_E_IO, "usb", "poll: %s",
				strerror(errno));
	for (;;) {
		struct sockaddr_nl from = {0};
		struct iovec iov = {buf, sizeof(buf) - 1};
		struct msghdr mh = {.msg_name = &from,
				    .msg_namelen = sizeof(from),
				    .msg_iov = &iov,
				    .msg_iovlen = 1};
		ssize_t n = recvmsg(m->fd, &mh, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0 && errno == ENOBUFS)
			continue; /* events were lost; the next ones count */
		if (n < 0)
			return stn_fail(d, STN_E_IO, "usb",
					"reading uevents: %s",
					strerror(errno));
		buf[n] = '\0';
		/* Only the kernel (port id 0) speaks for devices; its
		 * messages start "ACTION@DEVPATH". */
		if (from.nl_pid == 0 && memchr(buf, '@', (size_t)n))
			uevent(m, buf, (size_t)n);
	}
}
