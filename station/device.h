/* station/device.h: one face for every transport.  A device is opened from
 * a SPEC (spec/cli.md: serial:/dev/ttyX, ymodem:/dev/ttyX, usb:SERIAL,
 * usb:VID:PID; and smp:/dev/ttyX for MCUmgr devices, docs/serial.md), tells
 * who it is, takes images one at a time with whatever proof its transport
 * can give, and is told to start the new image.  Each transport is one
 * row of the table in station/device_internal.h. */
#ifndef STN_DEVICE_H
#define STN_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "custody/manifest.h"

struct stn_diag;
struct stn_config;

/* Ordered from weakest to strongest: an install's proof is the weakest of
 * its images'. */
enum stn_proof {
	STN_PROOF_NONE = 0,   /* the transport cannot read back (plain YMODEM) */
	STN_PROOF_IMAGE_HASH, /* SMP: the device lists the image with the hash
				 the station computed from the bytes it sent
				 (the image's own SHA256 TLV, read back from
				 the slot; MCUboot checks the whole image
				 against it before booting it) */
	STN_PROOF_DEVICE_SHA, /* the device reported SHA-256 of what it stored
				 (SMP: it answered "match" to the manifest's
				 SHA-256) */
	STN_PROOF_READBACK,   /* the station read the image back (DFU UPLOAD) */
	STN_PROOF_DEVICE_SIGNED, /* the attested device signed a receipt for
				    exactly the manifest's bytes (formats
				    §9), judged by station/install.c */
};

/* "none", "image-hash", "device-sha256", "readback", "device-signed" */
const char *stn_proof_name(enum stn_proof p);

struct tp_signed_msg; /* transport/devmsg.h */

struct stn_write_result {
	/* In: where a receipt goes (NULL: not wanted).  Out: has_receipt
	 * when the device sent one (formats §9), not yet judged. */
	struct tp_signed_msg *receipt;
	int has_receipt;
	enum stn_proof proof;
	char device_sha256[CU_SHA256_HEX_LEN + 1]; /* when proof != NONE; for
						      IMAGE_HASH the image
						      hash the device listed */
	uint64_t bytes;
};

struct stn_device_progress {
	void (*update)(void *ctx, uint64_t done, uint64_t total);
	void *ctx;
	/* When not NULL and non-zero (read atomically; the signal number),
	 * the write stops before its next block: STN_E_INTERRUPTED. */
	const int *stop;
};

struct stn_device;

/* Check the form of a SPEC without touching anything, so a typo is a usage
 * error before any work is done.  Errors: STN_E_USAGE. */
int stn_device_spec_check(const char *spec, struct stn_diag *d);

/* Open the device named by spec.  Serial ports take baud, flow control and
 * (for plain YMODEM; serial and hardware for SMP) identity from the [port]
 * section with the same path;
 * a SPEC whose kind differs from that port's configured mode is refused.
 * Errors: STN_E_USAGE (bad spec, unsupported transport, mode mismatch),
 * STN_E_IDENTITY
 * (plain YMODEM port without configured identity), STN_E_NODEVICE,
 * STN_E_IO. */
int stn_device_open(const struct stn_config *cfg, const char *spec,
		    struct stn_device **out, struct stn_diag *d);
void stn_device_close(struct stn_device *dev); /* NULL is fine */

/* "serial:/dev/pts/3": for messages and the journal (borrowed). */
const char *stn_device_name(const struct stn_device *dev);
const char *stn_device_transport(const struct stn_device *dev);

/* Learn the identity: asked of the device (console), or from
 * configuration (plain YMODEM, no sequence), or both (SMP: model from OS
 * info 'i', else [port] model; a [port] model that differs from the
 * board is refused; version from the running image; serial from [port]
 * serial, else OS info 'n'; no sequence).  Errors: STN_E_IDENTITY,
 * STN_E_TIMEOUT, STN_E_PROTOCOL, STN_E_NODEVICE. */
int stn_device_identify(struct stn_device *dev, struct cu_identity *id,
			struct stn_diag *d);

/*
 * Send one image from the staged file at `path` (`shown` names it in
 * messages, e.g. its media path).  The file is opened once and hashed
 * before a byte is sent: if it no longer matches img->sha256 nothing is
 * sent (STN_E_IMAGE).  The bytes are hashed again as they are sent, from the
 * same descriptor, and must match again.  When the device reports a digest
 * that differs from img->sha256 the result is STN_E_VERIFY_DEVICE.  *res is
 * filled on success; on failure only res->has_receipt is (the receipt a
 * device signed before its digest or read-back gave it away is evidence).
 */
int stn_device_write(struct stn_device *dev, const struct cu_image *img,
		     const char *path, const char *shown,
		     const struct stn_device_progress *prog,
		     struct stn_write_result *res, struct stn_diag *d);

/* The same for an image staged encrypted (img->encrypted, formats §10):
 * the staged file is the ciphertext; it is decrypted with content_key as
 * it is read, before it is hashed and sent, so the pre-send check and the
 * hash of what is sent are over the plaintext, as for any image, and
 * plaintext only ever exists in the transfer's buffers. */
int stn_device_write_key(struct stn_device *dev, const struct cu_image *img,
			 const char *path, const char *shown,
			 const uint8_t *content_key,
			 const struct stn_device_progress *prog,
			 struct stn_write_result *res, struct stn_diag *d);

/*
 * Device identity (formats §9; spec/devices.md).  stn_device_can_attest
 * says whether the transport has an `attest` command at all (console; USB
 * DFU with a `station-info` setting); plain YMODEM and SMP have none.
 * stn_device_can_prove says whether it can prove an install at all (read
 * back, a device digest or receipts): plain YMODEM cannot.
 */
int stn_device_can_attest(const struct stn_device *dev);
int stn_device_can_prove(const struct stn_device *dev);

/* Ask the device to attest to `nonce` (32 bytes); *out gets its answer,
 * unjudged.  Errors: STN_E_NOATTEST (the transport has no such command,
 * or the device answered that it knows none: a device without a key),
 * STN_E_PROTOCOL (an answer that is not a signed record: the caller
 * treats a device that tried and failed as failed), STN_E_TIMEOUT,
 * STN_E_NODEVICE, STN_E_IO. */
int stn_device_attest(struct stn_device *dev, const uint8_t *nonce,
		      struct tp_signed_msg *out, struct stn_diag *d);

/* Hand the device its install authorization (record, sig, the station's
 * certificates) before the first image.  Errors: STN_E_AUTHORIZATION (the
 * device refused it; its words in the message), STN_E_NOATTEST (the
 * transport cannot carry it), transport errors. */
int stn_device_authorize(struct stn_device *dev,
			 const struct tp_signed_msg *authz,
			 struct stn_diag *d);

/* Start the new image (console `boot`; SMP: reset, wait for the device to
 * answer again, check that it runs each image written, by hash, and
 * confirm it: STN_E_VERIFY_DEVICE when it runs another image, e.g. because
 * MCUboot refused the new one); a no-op where the transport has no such
 * step. */
int stn_device_boot(struct stn_device *dev, struct stn_diag *d);

/*
 * USB DFU devices (usb:SERIAL or usb:VID:PID; docs/usb.md).  Identity
 * comes from a `station-info` alternate setting when the device has one
 * (its UPLOAD is the identity record), else from the descriptors: serial
 * = iSerialNumber, model = iProduct, version = bcdDevice; no sequence.  A
 * run-time device is identified without being disturbed and detached into
 * DFU mode only when the first image is written; it must then still be the
 * unit that was checked.  An image's slot is the DFU alternate setting it
 * goes to.  Proof is STN_PROOF_READBACK (UPLOAD and SHA-256) when the
 * device can upload and stays in dfuIDLE after manifestation, else
 * STN_PROOF_NONE.  A device that goes away mid-transfer ends the write with
 * STN_E_NODEVICE.
 */

/* One device as `station devices` shows it. */
struct stn_device_seen {
	char spec[140];	     /* what to give push: usb:SERIAL, else
				usb:VID:PID */
	char transport[16];  /* "usb-dfu" */
	char ids[10];	     /* "1209:5744" */
	char mode[10];	     /* "dfu" or "run-time" */
	char port[32];	     /* "1-1.2" */
	const char *source;  /* "station-info" or "descriptors" (static) */
	int identified;	     /* id is valid */
	struct cu_identity id;
	char problem[400];   /* why there is no identity; "" */
};

/* Every USB DFU device connected now.  *out is NULL when there is none;
 * free it with free().  Errors: STN_E_IO, STN_E_NOMEM. */
int stn_device_list(struct stn_device_seen **out, size_t *n,
		    struct stn_diag *d);

/* Hot-plug, for the station core's event loop: arrivals and departures of
 * USB DFU devices, as kernel uevents report them (with or without udevd).
 * Devices present when watching starts are not reported. */
enum stn_device_event { STN_DEVICE_ARRIVED, STN_DEVICE_LEFT };

typedef void (*stn_device_event_fn)(void *ctx, enum stn_device_event ev,
				    const struct stn_device_seen *dev);

struct stn_device_watch;

int stn_device_watch_new(stn_device_event_fn fn, void *ctx,
			 struct stn_device_watch **out, struct stn_diag *d);
void stn_device_watch_free(struct stn_device_watch *w); /* NULL is fine */
/* Poll this for input, then call dispatch. */
int stn_device_watch_fd(const struct stn_device_watch *w);
/* Wait up to timeout_ms (0: no wait, <0: no limit) and deliver events.
 * Errors: STN_E_IO. */
int stn_device_watch_dispatch(struct stn_device_watch *w, int timeout_ms,
			      struct stn_diag *d);

#endif
