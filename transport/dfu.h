/* transport/dfu.h: the host side of USB DFU 1.1 (USB Device Firmware
 * Upgrade, revision 1.1) as a state machine over an abstract control
 * channel, so that every state and error path can be driven by a scripted
 * fake in tests and by libusb (transport/usb.h) for real devices.  It knows
 * the class requests, the device states and status codes, the functional
 * descriptor, and the download, manifestation and upload sequences of
 * DFU 1.1 chapter 6.  It never prints; progress goes through callbacks. */
#ifndef TP_DFU_H
#define TP_DFU_H

#include <stddef.h>
#include <stdint.h>

#include "station/base/error.h"
#include "transport/ymodem.h" /* struct tp_source, struct tp_progress */

/* Class requests (DFU 1.1 table 3.2), bRequest values. */
enum tp_dfu_request {
	TP_DFU_DETACH = 0,
	TP_DFU_DNLOAD = 1,
	TP_DFU_UPLOAD = 2,
	TP_DFU_GETSTATUS = 3,
	TP_DFU_CLRSTATUS = 4,
	TP_DFU_GETSTATE = 5,
	TP_DFU_ABORT = 6,
};

/* Device states (DFU 1.1 section 6.1.2), bState values. */
enum tp_dfu_state {
	TP_DFU_APP_IDLE = 0,
	TP_DFU_APP_DETACH = 1,
	TP_DFU_IDLE = 2,
	TP_DFU_DNLOAD_SYNC = 3,
	TP_DFU_DNBUSY = 4,
	TP_DFU_DNLOAD_IDLE = 5,
	TP_DFU_MANIFEST_SYNC = 6,
	TP_DFU_MANIFEST = 7,
	TP_DFU_MANIFEST_WAIT_RESET = 8,
	TP_DFU_UPLOAD_IDLE = 9,
	TP_DFU_ERROR = 10,
};

/* Status codes (DFU 1.1 section 6.1.2), bStatus values. */
enum tp_dfu_status_code {
	TP_DFU_OK = 0x00,
	TP_DFU_ERR_TARGET = 0x01,
	TP_DFU_ERR_FILE = 0x02,
	TP_DFU_ERR_WRITE = 0x03,
	TP_DFU_ERR_ERASE = 0x04,
	TP_DFU_ERR_CHECK_ERASED = 0x05,
	TP_DFU_ERR_PROG = 0x06,
	TP_DFU_ERR_VERIFY = 0x07,
	TP_DFU_ERR_ADDRESS = 0x08,
	TP_DFU_ERR_NOTDONE = 0x09,
	TP_DFU_ERR_FIRMWARE = 0x0a,
	TP_DFU_ERR_VENDOR = 0x0b,
	TP_DFU_ERR_USBR = 0x0c,
	TP_DFU_ERR_POR = 0x0d,
	TP_DFU_ERR_UNKNOWN = 0x0e,
	TP_DFU_ERR_STALLEDPKT = 0x0f,
};

/* "dfuIDLE", "errVERIFY": the spec's names, for messages (static). */
const char *tp_dfu_state_name(unsigned state);
const char *tp_dfu_status_name(unsigned status);

/* The DFU functional descriptor (DFU 1.1 section 4.1.3, type 0x21). */
#define TP_DFU_FUNC_DESC_TYPE 0x21
#define TP_DFU_CAN_DNLOAD 0x01
#define TP_DFU_CAN_UPLOAD 0x02
#define TP_DFU_MANIFEST_TOLERANT 0x04
#define TP_DFU_WILL_DETACH 0x08

/* Linux usbfs takes control transfers of at most 4096 bytes, so larger
 * wTransferSize values are capped (dfu-util does the same). */
#define TP_DFU_MAX_TRANSFER 4096

struct tp_dfu_func {
	uint8_t attributes;     /* TP_DFU_CAN_DNLOAD | ... */
	uint16_t detach_ms;     /* wDetachTimeOut */
	uint16_t transfer_size; /* wTransferSize as the device gives it */
	uint16_t version;       /* bcdDFUVersion, e.g. 0x0110 */
};

/* Parse a functional descriptor (bLength, bDescriptorType 0x21, ...).
 * DFU 1.0 devices send 7 bytes without bcdDFUVersion (taken as 0x0100).
 * Errors: STN_E_PROTOCOL (too short, wrong type or length, wTransferSize
 * 0), naming `name`. */
int tp_dfu_func_parse(const void *desc, size_t len, const char *name,
		      struct tp_dfu_func *out, struct stn_diag *d);

/*
 * The control channel to one DFU interface.  `control` makes one class
 * request to the interface (bmRequestType 0x21 out, 0xA1 in): `in` says
 * the direction, `value` is wValue, buf/len the data stage (len 0: none).
 * It returns 0 with *got the bytes moved, or:
 *   STN_E_DEVICE   the device stalled the request (it refused it);
 *   STN_E_NODEVICE the device is gone (unplugged, re-enumerated);
 *   STN_E_TIMEOUT  no answer within timeout_ms;
 *   STN_E_IO       anything else;
 * with `d` naming the device and the cause.  `sleep_ms` waits (a fake
 * records it instead); `now_ms` reads a monotonic clock in milliseconds
 * (a fake advances it in sleep_ms).
 */
struct tp_dfu_io {
	int (*control)(void *ctx, int in, uint8_t request, uint16_t value,
		       void *buf, size_t len, size_t *got, int timeout_ms,
		       struct stn_diag *d);
	void (*sleep_ms)(void *ctx, unsigned ms);
	uint64_t (*now_ms)(void *ctx);
	void *ctx;
};

/* Zeros mean the defaults.  Control requests are answered quickly by
 * devices; it is the work between them (an erase) that is slow, and DFU
 * lets the device say how slow through bwPollTimeout, so the limits on
 * waiting are separate. */
struct tp_dfu_opts {
	int timeout_ms;       /* one control request: 5000 */
	int busy_max_ms;      /* one block busy (dfuDNBUSY) in all: 120000,
				 an erase of a large sector can take tens of
				 seconds */
	int manifest_max_ms;  /* manifestation in all: 300000 */
	unsigned transfer_size; /* bytes a block; 0: the descriptor's value;
				   always capped at TP_DFU_MAX_TRANSFER */
};

/* GETSTATUS answer (DFU 1.1 section 6.1.2). */
struct tp_dfu_status {
	uint8_t status;       /* enum tp_dfu_status_code */
	uint32_t poll_ms;     /* bwPollTimeout */
	uint8_t state;        /* enum tp_dfu_state */
	uint8_t string_index; /* iString */
};

/* Counters for tests and benchmarks. */
struct tp_dfu_stats {
	unsigned requests;   /* control requests made */
	unsigned blocks;     /* DNLOAD blocks with data */
	unsigned polls;      /* GETSTATUS requests */
	uint64_t slept_ms;   /* time spent waiting on bwPollTimeout */
	unsigned recoveries; /* CLRSTATUS/ABORT sent to reach dfuIDLE */
};

/* How manifestation ended (DFU 1.1 section 7). */
enum tp_dfu_manifest {
	TP_DFU_MANIFEST_DONE_IDLE = 0, /* manifestation tolerant: the device
					  is back in dfuIDLE and may be read
					  back */
	TP_DFU_MANIFEST_DONE_RESET,    /* dfuMANIFEST-WAIT-RESET: the host
					  must reset the bus */
	TP_DFU_MANIFEST_DONE_GONE,     /* a device that is not manifestation
					  tolerant left the bus by itself */
};

struct tp_dfu;

/* A state machine for one DFU interface (the one io->control talks to)
 * whose functional descriptor is f.  `name` (copied) names the device in every message.
 * `io` is copied; its ctx stays the caller's.  Errors: STN_E_NOMEM,
 * STN_E_USAGE (no io->control). */
int tp_dfu_new(const struct tp_dfu_io *io, const struct tp_dfu_func *f,
	       const char *name, const struct tp_dfu_opts *opts,
	       struct tp_dfu **out, struct stn_diag *d);
void tp_dfu_free(struct tp_dfu *dfu); /* NULL is fine */

/* The block size in use: wTransferSize capped at TP_DFU_MAX_TRANSFER (or
 * the opts value, capped the same way). */
unsigned tp_dfu_transfer_size(const struct tp_dfu *dfu);
void tp_dfu_stats(const struct tp_dfu *dfu, struct tp_dfu_stats *st);

/* Single requests.  GETSTATUS must answer 6 bytes (STN_E_PROTOCOL
 * otherwise); GETSTATE 1. */
int tp_dfu_get_status(struct tp_dfu *dfu, struct tp_dfu_status *st,
		      struct stn_diag *d);
int tp_dfu_get_state(struct tp_dfu *dfu, uint8_t *state, struct stn_diag *d);
int tp_dfu_clear_status(struct tp_dfu *dfu, struct stn_diag *d);
int tp_dfu_abort(struct tp_dfu *dfu, struct stn_diag *d);

/* DFU_DETACH with wTimeout = the descriptor's wDetachTimeOut (capped at
 * 5000 ms), for a run-time device in appIDLE.  The caller then resets the
 * bus unless the device has TP_DFU_WILL_DETACH, and finds it again. */
int tp_dfu_detach(struct tp_dfu *dfu, struct stn_diag *d);

/* Bring a DFU-mode device to dfuIDLE from wherever an earlier, interrupted
 * session left it (DFU 1.1 section 6.1.2 and appendix A): dfuERROR is
 * cleared with CLRSTATUS; dfuDNLOAD-IDLE, dfuUPLOAD-IDLE, dfuDNLOAD-SYNC
 * and dfuMANIFEST-SYNC are left with ABORT; dfuDNBUSY and dfuMANIFEST are
 * waited out by bwPollTimeout.  Errors: STN_E_DEVICE when the device is in
 * run-time mode (appIDLE, appDETACH), waits for a reset
 * (dfuMANIFEST-WAIT-RESET) or does not reach dfuIDLE after four tries
 * (the message names the state and status it stayed in); the channel's
 * errors. */
int tp_dfu_ready(struct tp_dfu *dfu, struct stn_diag *d);

/*
 * Download `size` bytes from src (DFU 1.1 section 6.1), starting in
 * dfuIDLE (call tp_dfu_ready first): blocks of tp_dfu_transfer_size bytes
 * (the last may be short) numbered from 0 and wrapping at 65535, each
 * followed by GETSTATUS until dfuDNLOAD-IDLE, waiting exactly bwPollTimeout
 * between polls while the device reports dfuDNBUSY (or dfuDNLOAD-SYNC);
 * then a zero-length DNLOAD and the manifestation phase, polled the same
 * way, ending as *how says.  `prog` (may be NULL) is told after each block.
 *
 * Errors, each naming the device, the block and the device's status:
 * STN_E_USAGE (the device cannot download, size 0), STN_E_IO (src gave
 * fewer or more bytes than size, or failed: its own code), STN_E_DEVICE
 * (a block or the end was refused: a stall or dfuERROR with the status the
 * device gave, after which CLRSTATUS is sent), STN_E_VERIFY_DEVICE (the
 * device reported errVERIFY, errCHECK_ERASED or errFIRMWARE: it stored
 * something it does not accept), STN_E_TIMEOUT (busy longer than
 * busy_max_ms or manifesting longer than manifest_max_ms),
 * STN_E_PROTOCOL (a state the sequence does not allow), STN_E_NODEVICE
 * (the device went away, except as TP_DFU_MANIFEST_DONE_GONE).
 */
int tp_dfu_download(struct tp_dfu *dfu, const struct tp_source *src,
		    uint64_t size, const struct tp_progress *prog,
		    enum tp_dfu_manifest *how, struct stn_diag *d);

/* Where uploaded bytes go. */
struct tp_sink {
	int (*write)(void *ctx, const void *buf, size_t len);
	void *ctx;
};

/*
 * Upload from dfuIDLE (DFU 1.1 section 6.2): UPLOAD blocks numbered from 0
 * until the device sends a short block (its end) or `max` bytes have come,
 * whichever is first; then the device is brought back to dfuIDLE (ABORT
 * when it still had more).  Bytes beyond max are not passed on.  *got is
 * the number passed to `out`.  Errors: STN_E_USAGE (the device cannot
 * upload), STN_E_DEVICE (refused), the channel's errors, and the sink's.
 */
int tp_dfu_upload(struct tp_dfu *dfu, uint64_t max, const struct tp_sink *out,
		  uint64_t *got, const struct tp_progress *prog,
		  struct stn_diag *d);

/*
 * The `station-info` alternate setting (spec/devices.md "USB"; docs/usb.md
 * "Identity over DFU").  `info` is a state machine over that setting (the
 * caller selected it; transport/usb.h tp_usb_info_run), whose descriptor
 * bits are taken as able to download and upload and manifestation
 * tolerant: the setting answers every command in dfuIDLE.  A command is
 * one download, as an image is (blocks of the transfer size, a zero-length
 * DNLOAD, manifestation back to dfuIDLE), and its answer one upload, read
 * until the device's short block; without a command pending an UPLOAD
 * returns the identity record.  Answers over TP_DFU_INFO_MAX - 1 bytes are
 * STN_E_PROTOCOL.
 */
#define TP_DFU_INFO_MAX 65536

struct tp_signed_msg; /* transport/devmsg.h */

/* Send cmd (cmd_len bytes, > 0) and read the answer into buf (cap bytes,
 * NUL-terminated; *len without the NUL).  Errors: those of tp_dfu_ready,
 * tp_dfu_download and tp_dfu_upload; STN_E_PROTOCOL when the setting does
 * not return to dfuIDLE or the answer is too long. */
int tp_dfu_info_command(struct tp_dfu *info, const char *cmd, size_t cmd_len,
			char *buf, size_t cap, size_t *len,
			struct stn_diag *d);

/* `attest HEX(nonce)`: *out gets the signed answer, unjudged.  Errors:
 * STN_E_NOATTEST (the setting refuses commands, or the device answers
 * `error ...`: it knows no attestation), STN_E_PROTOCOL (an answer that
 * is not a signed record with `sig` and `ok`), the transfer errors. */
int tp_dfu_attest(struct tp_dfu *info, const uint8_t nonce[32],
		  struct tp_signed_msg *out, struct stn_diag *d);

/* `authorize`, the lines of authz (tp_msg_format with "\n"), `end`; the
 * answer must be `ok`.  Errors: STN_E_AUTHORIZATION (the device answers
 * `error TEXT`, its words in the message, or refuses the download),
 * STN_E_PROTOCOL (any other answer), STN_E_USAGE (authz unsigned), the
 * transfer errors. */
int tp_dfu_authorize(struct tp_dfu *info, const struct tp_signed_msg *authz,
		     struct stn_diag *d);

/* UPLOAD the receipt the device made at the end of manifestation: the
 * station-receipt-1 record, `sig`, and `ok sha256=HEX`, whose 64 lowercase
 * hex digits go to sha256_hex.  *out is unjudged.  Errors: STN_E_PROOF
 * (the device answers `error TEXT` instead of a receipt), STN_E_PROTOCOL
 * (no signed record, no `ok sha256=HEX`), the transfer errors. */
int tp_dfu_receipt(struct tp_dfu *info, struct tp_signed_msg *out,
		   char sha256_hex[65], struct stn_diag *d);

#endif
