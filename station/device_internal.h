/* station/device_internal.h: the table behind station/device.h.  Each
 * transport is one file (station/device_console.c, device_ymodem.c,
 * device_smp.c, device_usb.c) that fills one struct stn_device_ops, with a
 * private state of the size it declares, as libusb's usbi_os_backend does;
 * station/device.c finds the row by the SPEC's scheme and keeps what every
 * transport shares: the hashing of what is sent and the proof rule.  The
 * core never asks which transport it has. */
#ifndef STN_DEVICE_INTERNAL_H
#define STN_DEVICE_INTERNAL_H

#include <stddef.h>

#include "station/config.h"
#include "station/device.h"
#include "transport/devmsg.h" /* struct tp_signed_msg */
#include "transport/ymodem.h" /* struct tp_source, struct tp_progress */

/* One image on its way to a device.  Before the backend sees it, the
 * staged copy was hashed from `fd` and matches the manifest; whatever the
 * backend reads from `src` is hashed again and checked after it returns. */
struct stn_image_send {
	const struct cu_image *img;
	int fd;		   /* the staged copy; inspect it with pread only;
			      -1 for an image staged encrypted (formats
			      §10): only src gives its plaintext */
	const char *shown; /* names the file in messages */
	const struct tp_source *src;
	const struct tp_progress *prog;
	/* Where the device's signed receipt goes, when it sends one
	 * (formats §9): fill it and set *has_receipt.  NULL: not wanted. */
	struct tp_signed_msg *receipt;
	int *has_receipt;
};

/*
 * One transport.  Every verb returns 0 or an STN_E_* code with d naming
 * the device and the cause; the contracts are station/device.h's, minus
 * what device.c does for all of them.
 *
 * The identity work (issue 13) adds its steps here, one slot each, NULL
 * for a transport that has no command for it (plain YMODEM, SMP), which
 * device.c reports as "cannot attest" rather than asking the backend:
 * attest (a nonce in, a signed record and certificate chain out),
 * authorize (send a signed block before the first image) and a receipt
 * after each image (in struct stn_write_result).
 */
struct stn_device_ops {
	const char *scheme;    /* the SPEC's prefix, without ':' */
	const char *transport; /* the journal's `transport` field */
	size_t priv_size;      /* bytes of stn_device_priv(dev), zeroed */
	/* The SPEC's form, `rest` being what follows "scheme:"; touches
	 * nothing (a typo is a usage error before any work). */
	int (*spec_check)(const char *spec, const char *rest,
			  struct stn_diag *d);
	/* Open dev->rest.  On failure device.c still calls close, so a
	 * half-open state needs no cleanup of its own. */
	int (*open)(struct stn_device *dev, const struct stn_config *cfg,
		    struct stn_diag *d);
	/* Fill *id (a record the device sends is parsed; fields it or the
	 * configuration give are set with cu_identity_set). */
	int (*identify)(struct stn_device *dev, struct cu_identity *id,
			struct stn_diag *d);
	/* Send one image from s->src and say what proof the device gave:
	 * r->proof, and r->device_sha256 unless the proof is NONE.  device.c
	 * compares that digest with the manifest's and fills r->bytes. */
	int (*write)(struct stn_device *dev, const struct stn_image_send *s,
		     struct stn_write_result *r, struct stn_diag *d);
	/* Identity (formats §9).  NULL: the transport has no command for
	 * it (plain YMODEM, SMP), which device.c reports as
	 * STN_E_NOATTEST.  attest returns STN_E_NOATTEST also when the
	 * device says it knows no `attest`.  authorize: STN_E_AUTHORIZATION
	 * when the device refuses. */
	int (*attest)(struct stn_device *dev, const uint8_t *nonce,
		      struct tp_signed_msg *out, struct stn_diag *d);
	int (*authorize)(struct stn_device *dev,
			 const struct tp_signed_msg *authz,
			 struct stn_diag *d);
	/* Whether an attached device can attest (DFU: it has station-info);
	 * NULL: whenever attest is set. */
	int (*can_attest)(const struct stn_device *dev);
	/* 1 for a transport that can prove nothing (plain YMODEM). */
	int cannot_prove;
	/* Start the new image(s); NULL: the transport has no such step. */
	int (*boot)(struct stn_device *dev, struct stn_diag *d);
	/* Release what open got, however far it got; NULL: nothing. */
	void (*close)(struct stn_device *dev);
};

struct stn_device {
	const struct stn_device_ops *ops;
	char name[4200];  /* the SPEC, for messages and the journal */
	const char *rest; /* in name: what follows "scheme:" */
	int identified;	  /* identify succeeded; write needs it */
	_Alignas(max_align_t) unsigned char priv[]; /* ops->priv_size */
};

static inline void *stn_device_priv(struct stn_device *dev)
{
	return dev->priv;
}

/* Add a transport to the table (the fake of tests; station/device_fake.h).
 * Call it before any device is opened, from one thread; adding the same
 * row again is a no-op.  Errors: STN_E_USAGE (the scheme is taken by
 * another row, or the table is full). */
int stn_device_register(const struct stn_device_ops *ops, struct stn_diag *d);

/* Helpers for serial backends. */

/* spec_check of a serial port: an absolute path. */
int stn_device_path_check(const char *spec, const char *rest,
			  struct stn_diag *d);

/* The [port] section for dev->rest (NULL when there is none: 115200 8N1
 * without flow control) and the line settings to open it with.  A port
 * configured for another mode is refused (STN_E_USAGE): its identity would
 * come from the wrong place and its proof would be misreported. */
int stn_device_port(const struct stn_device *dev,
		    const struct stn_config *cfg, enum stn_port_mode mode,
		    const struct stn_port **port, unsigned *baud, int *rtscts,
		    struct stn_diag *d);

/* The state a console or plain-YMODEM backend keeps: it must be the
 * first member of that backend's private state. */
struct stn_serial_line {
	const struct stn_port *port; /* borrowed from the configuration */
	struct tp_serial *serial;
};

/* Open dev->rest as a serial line with its [port]'s settings (above);
 * close releases it.  Errors: those of stn_device_port and
 * tp_serial_open. */
int stn_device_line_open(struct stn_device *dev, const struct stn_config *cfg,
			 enum stn_port_mode mode, struct stn_diag *d);
void stn_device_line_close(struct stn_device *dev);

#endif
