/* transport/usb.h: USB DFU devices through libusb-1.0: finding the DFU
 * interfaces on the bus (DFU mode and run-time), opening one by serial
 * number or VID:PID, the control channel the DFU state machine
 * (transport/dfu.h) runs on, DFU_DETACH with the re-enumeration that
 * follows, bus resets, and hot-plug events.  The only file of the project
 * that includes libusb.h is usb.c; libusb errors come out as STN_E_* codes
 * whose text keeps libusb's own name for the cause. */
#ifndef TP_USB_H
#define TP_USB_H

#include <stddef.h>
#include <stdint.h>

#include "station/base/error.h"
#include "transport/dfu.h"

/* One DFU interface found on the bus.  Strings are what the device's
 * string descriptors say (ASCII; libusb turns other characters into '?');
 * the caller decides whether they are fit for an identity. */
struct tp_usb_found {
	uint16_t vid, pid, bcd_device;
	uint8_t bus, address;
	char port[32];		/* "1-1.2": bus, then the port numbers */
	char serial[128];	/* "" when iSerialNumber is 0 */
	char product[128];	/* iProduct, "" when none */
	char manufacturer[128];
	int runtime;		/* 1: run-time interface (protocol 1),
				   0: DFU mode (protocol 2) */
	uint8_t iface;		/* bInterfaceNumber */
	unsigned nalts;		/* alternate settings of that interface */
	int info_alt;		/* the alternate setting whose interface
				   string is exactly "station-info"; -1 */
	int has_func;		/* the functional descriptor was found */
	struct tp_dfu_func func;
	char problem[256];	/* why something could not be read (e.g.
				   "cannot open: LIBUSB_ERROR_ACCESS"); "" */
};

/* Every DFU interface on the bus now (a fresh enumeration: devices that
 * appeared after an earlier call are seen even without udevd).  *out is
 * NULL when there are none; free it with free().  Errors: STN_E_IO (libusb
 * cannot start), STN_E_NOMEM. */
int tp_usb_scan(struct tp_usb_found **out, size_t *n, struct stn_diag *d);

/* Which device to open: every criterion given must hold. */
struct tp_usb_match {
	const char *serial; /* exact; NULL: any */
	int vid, pid;	    /* -1: any */
	int bus, address;   /* 0: any */
};

/* Zeros mean the defaults. */
struct tp_usb_opts {
	struct tp_dfu_opts dfu;
	int refind_ms; /* how long a device may take to come back after a
			  detach or reset: 10000 plus its wDetachTimeOut */
};

struct tp_usb;

/* Open the one DFU interface that matches, claim it and select alternate
 * setting 0.  `name` (copied) names it in messages, e.g. "usb:SN-0001".
 * Errors: STN_E_NODEVICE (none matches; the text lists what is there),
 * STN_E_IDENTITY (more than one matches: the text lists them),
 * STN_E_PROTOCOL (no functional descriptor), STN_E_DEVICE (cannot open or
 * claim it, e.g. LIBUSB_ERROR_ACCESS or LIBUSB_ERROR_BUSY), STN_E_IO. */
int tp_usb_open(const struct tp_usb_match *m, const struct tp_usb_opts *o,
		const char *name, struct tp_usb **out, struct stn_diag *d);
void tp_usb_close(struct tp_usb *u); /* NULL is fine */

/* What was found when the device was (last) opened (borrowed). */
const struct tp_usb_found *tp_usb_info(const struct tp_usb *u);
/* The DFU state machine over this device (borrowed; replaced when the
 * device is found again after a detach or reset). */
struct tp_dfu *tp_usb_dfu(struct tp_usb *u);

/* SET_INTERFACE to alternate setting `alt` of the DFU interface.  Errors:
 * STN_E_USAGE (no such setting), the channel's errors. */
int tp_usb_set_alt(struct tp_usb *u, unsigned alt, struct stn_diag *d);

/* UPLOAD the `station-info` alternate setting (at most cap-1 bytes, NUL
 * terminated) and return to alternate setting 0.  Errors: STN_E_USAGE (no
 * such setting), STN_E_IDENTITY (longer than cap-1), the DFU errors. */
int tp_usb_read_info(struct tp_usb *u, char *buf, size_t cap, size_t *len,
		     struct stn_diag *d);

/* Run fn on the `station-info` alternate setting (transport/dfu.h, "The
 * station-info setting"): select it, hand fn a state machine over it that
 * may download and upload and is manifestation tolerant whatever the
 * descriptor says for images, then return to alternate setting 0.  Works
 * in run-time mode too, for a device that shows the setting there (a
 * vendor extension, as the setting itself is).  Returns fn's result, or
 * STN_E_USAGE (no such setting), STN_E_NOMEM, the channel's errors. */
int tp_usb_info_run(struct tp_usb *u,
		    int (*fn)(struct tp_dfu *info, void *ctx,
			      struct stn_diag *d),
		    void *ctx, struct stn_diag *d);

/* Run-time device to DFU mode (DFU 1.1 section 5.1): DFU_DETACH, a bus
 * reset unless the device detaches itself (bitWillDetach), then find the
 * same unit again by vendor id and serial number in DFU mode (its product
 * id usually changes) and open it.  Errors: STN_E_USAGE (not a run-time
 * device, or no serial number to find it by), STN_E_NODEVICE (it did not
 * come back in time), the open errors. */
int tp_usb_detach(struct tp_usb *u, struct stn_diag *d);

/* USB bus reset (after manifestation a device waits for one to start its
 * firmware).  The device re-enumerating, and so vanishing from this
 * handle, is the expected outcome and not an error.  When `refind`, the
 * same unit must come back in DFU mode and is opened again (to write
 * another image).  Errors: STN_E_NODEVICE (refind and it did not come
 * back), STN_E_IO. */
int tp_usb_reset(struct tp_usb *u, int refind, struct stn_diag *d);

/* Hot-plug: kernel uevents for USB devices (NETLINK_KOBJECT_UEVENT), so
 * arrivals and departures are seen with or without udevd.  A device that
 * arrives is enumerated and reported if it has a DFU interface; one that
 * leaves is reported with what was known about it.  A device with more
 * than one DFU interface is reported once per interface. */
enum tp_usb_event { TP_USB_ARRIVED, TP_USB_LEFT };

typedef void (*tp_usb_event_fn)(void *ctx, enum tp_usb_event ev,
				const struct tp_usb_found *f);

struct tp_usb_monitor;

/* Start watching; devices already present are remembered, not reported.
 * Errors: STN_E_IO (no netlink socket). */
int tp_usb_monitor_new(tp_usb_event_fn fn, void *ctx,
		       struct tp_usb_monitor **out, struct stn_diag *d);
void tp_usb_monitor_free(struct tp_usb_monitor *m); /* NULL is fine */
/* A descriptor to poll for input, for an event loop. */
int tp_usb_monitor_fd(const struct tp_usb_monitor *m);
/* Wait up to timeout_ms (0: do not wait, <0: no limit) for uevents and
 * report what they mean through the callback.  Errors: STN_E_IO. */
int tp_usb_monitor_dispatch(struct tp_usb_monitor *m, int timeout_ms,
			    struct stn_diag *d);

#endif
