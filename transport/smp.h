/* transport/smp.h: the Simple Management Protocol (MCUmgr) over a serial
 * line, as Zephyr applications and MCUboot's serial recovery speak it: the
 * console framing (0x06 0x09 start, 0x04 0x14 continuation, base64, a
 * CRC-16, frames of at most 127 bytes), and the verbs the station needs to
 * identify a device and put an image on it: buffer size, OS information,
 * image state, upload with offset resume, test, confirm and reset. */
#ifndef TP_SMP_H
#define TP_SMP_H

#include <stddef.h>
#include <stdint.h>

#include "station/base/error.h"
#include "transport/serial.h"
#include "transport/ymodem.h" /* struct tp_source, struct tp_progress */

/*
 * Every verb sends one request and waits for the response with its
 * sequence number; lines that are not SMP frames (a device's log output on
 * the same UART) and responses to earlier requests are skipped.  A request
 * that gets no answer is sent again (with a new sequence number) up to
 * `retries` times; a late answer to an earlier try of the same request is
 * taken as well (a device slower than the timeout still gets through).  When the line itself goes away (a USB adapter pulled
 * out) and the transport was opened by path, it waits up to reconnect_ms
 * for the path to come back, reopens it and sends the request again: the
 * device keeps its state, so an upload goes on from the device's offset.
 *
 * Errors: STN_E_TIMEOUT (no answer after every try), STN_E_NODEVICE (the
 * line is gone and did not come back), STN_E_PROTOCOL (a frame or CBOR
 * body that breaks the protocol, a response that contradicts the request),
 * STN_E_DEVICE (the device answered with a nonzero rc: the text names the
 * group, the code and its MCUmgr name), STN_E_IO.  Every message names the
 * device.
 */

struct tp_smp;

/* Zeros mean the defaults: timeout 2500 ms per answer plus the time the
 * request and an answer take on the wire at the line's baud rate, 5 tries,
 * 30000 ms to wait for a dropped line to come back. */
struct tp_smp_opts {
	int timeout_ms;
	int retries;
	int reconnect_ms;
};

/* Open the serial port at path (tp_serial_open's rules and errors). */
int tp_smp_open(const char *path, unsigned baud, int rtscts,
		const struct tp_smp_opts *opts, struct tp_smp **out,
		struct stn_diag *d);
/* Speak SMP over an open line (tests); takes ownership of s, also when this
 * fails.  Such a transport cannot reconnect: a dropped line is final. */
int tp_smp_from_serial(struct tp_serial *s, const struct tp_smp_opts *opts,
		       struct tp_smp **out, struct stn_diag *d);
void tp_smp_close(struct tp_smp *m); /* NULL is fine */
const char *tp_smp_name(const struct tp_smp *m); /* borrowed */

/* Counters since open, for tests and benchmarks. */
struct tp_smp_stats {
	unsigned requests;   /* requests answered */
	unsigned resends;    /* requests sent again after no answer */
	unsigned reconnects; /* times the line came back after a drop */
	unsigned skipped;    /* lines and frames that were not our answer */
};
void tp_smp_stats(const struct tp_smp *m, struct tp_smp_stats *st);

/* MCUmgr parameters (OS group, command 6): the device's receive buffer size
 * and count.  A device that does not know the command (MCUboot's serial
 * recovery) is not an error: *buf_size = 0. */
int tp_smp_params(struct tp_smp *m, unsigned *buf_size, unsigned *buf_count,
		  struct stn_diag *d);

/* OS/application information (OS group, command 7) for `format` (e.g. "i"
 * for the hardware platform, i.e. the board; "n" for the node name).  The
 * answer is copied into out (cap includes the NUL); one longer than cap-1,
 * or holding control characters, is STN_E_PROTOCOL. */
int tp_smp_os_info(struct tp_smp *m, const char *format, char *out,
		   size_t cap, struct stn_diag *d);

/* One entry of the image state list. */
struct tp_smp_image {
	unsigned image;        /* image number (0 when the device omits it) */
	unsigned slot;         /* 0 primary, 1 secondary */
	char version[48];
	uint8_t hash[32];
	int has_hash;
	int bootable, pending, confirmed, active, permanent;
};
#define TP_SMP_MAX_IMAGES 8

/* Image state read (image group, command 0): up to TP_SMP_MAX_IMAGES
 * entries (more is STN_E_PROTOCOL).  An entry without slot or version, or
 * with a hash that is not 32 bytes, is STN_E_PROTOCOL. */
int tp_smp_image_state(struct tp_smp *m, struct tp_smp_image *imgs,
		       size_t *n, struct stn_diag *d);

/* Image state write: mark the image whose hash is `hash` for a test boot
 * (confirm = 0) or confirm it (confirm = 1; hash NULL confirms the running
 * image).  The resulting list is returned as by tp_smp_image_state. */
int tp_smp_image_set(struct tp_smp *m, const uint8_t hash[32], int confirm,
		     struct tp_smp_image *imgs, size_t *n, struct stn_diag *d);

struct tp_smp_upload_result {
	int match;            /* 1 or 0: the device's "match" (its SHA-256 of
				 what it stored against ours); -1 when the
				 device does not say */
	uint64_t resumed_at;  /* the device's offset after the first request:
				 > 0 when it resumed an earlier upload */
	unsigned chunk;       /* data bytes of a full request after the first,
				 at the image's last offset (where the CBOR
				 offset is widest) */
};

/* Upload `size` bytes from src as image number `image`.  The first request
 * carries the length and `sha256` (of all the bytes: the device uses it to
 * recognise an upload it can resume, and may answer "match" at the end).
 * Each answer's `off` is honoured: the next request starts where the
 * device says it needs data, within what was sent; an offset beyond the
 * bytes sent, before the previous answer's offset (the device lost data),
 * or past the size is STN_E_PROTOCOL, as is a device that stops advancing.
 * Each request is sized to the device's buffer (tp_smp_params; 512 bytes
 * when it does not say) by tp_smp_upload_chunk.  src is read exactly once, front to back: a source that
 * ends early or goes on is STN_E_IO.  Progress is called after each answer.
 * res may be NULL. */
int tp_smp_upload(struct tp_smp *m, unsigned image, uint64_t size,
		  const uint8_t sha256[32], const struct tp_source *src,
		  const struct tp_progress *prog,
		  struct tp_smp_upload_result *res, struct stn_diag *d);

/* ---- upload request sizing, exposed for the tests ----
 *
 * Zephyr's serial transport base64-decodes the 2-byte length, the SMP
 * message and the 2-byte CRC into ONE buffer of buf_size bytes (the
 * "buf_size" of MCUmgr parameters): a request is taken only when its
 * message (header and body) is at most buf_size - TP_SMP_SERIAL_OVERHEAD
 * bytes; a larger one is dropped without an answer. */
#define TP_SMP_SERIAL_OVERHEAD 4

/* The fields of one upload request besides its data. */
struct tp_smp_upload_req {
	int first;          /* the first request also carries image, len, sha */
	unsigned image;
	uint64_t len;       /* the whole image's size */
	const uint8_t *sha; /* 32 bytes; used only when first */
	uint64_t off;
};

/* Encode the CBOR body of an upload request carrying dlen bytes of data
 * into body.  Returns the body's length, or 0 when cap is too small. */
size_t tp_smp_upload_body(const struct tp_smp_upload_req *rq,
			  const uint8_t *data, size_t dlen, uint8_t *body,
			  size_t cap);

/* The largest number of data bytes such that the request (8-byte header
 * and body, every field counted at its real CBOR length) is at most
 * buf_size - TP_SMP_SERIAL_OVERHEAD bytes and at most TP_SMP_PACKET_MAX;
 * 0 when not even one byte fits. */
size_t tp_smp_upload_chunk(unsigned buf_size,
			   const struct tp_smp_upload_req *rq);

/* Reset (OS group, command 5).  The device restarts into whatever its
 * bootloader chooses; it may not answer again for a while. */
int tp_smp_reset(struct tp_smp *m, struct stn_diag *d);

/* After a reset: send echo requests, each waiting only 500 ms (plus wire
 * time), until the device answers one (an answer that refuses the echo
 * counts: the device is up) or max_ms have passed (STN_E_TIMEOUT).  A line
 * that drops meanwhile (USB devices re-enumerate) is reconnected as for
 * any request. */
int tp_smp_await_ready(struct tp_smp *m, int max_ms, struct stn_diag *d);

/* ---- framing, exposed for the simulator and the tests ---- */

#define TP_SMP_HDR 8
#define TP_SMP_FRAME_MAX 127   /* whole frame: marker, base64, newline */
#define TP_SMP_PACKET_MAX 8192 /* largest SMP message either side accepts */

enum {
	TP_SMP_OP_READ = 0,
	TP_SMP_OP_READ_RSP = 1,
	TP_SMP_OP_WRITE = 2,
	TP_SMP_OP_WRITE_RSP = 3,
};
enum { TP_SMP_GROUP_OS = 0, TP_SMP_GROUP_IMAGE = 1 };
enum {
	TP_SMP_OS_ECHO = 0,
	TP_SMP_OS_RESET = 5,
	TP_SMP_OS_PARAMS = 6,
	TP_SMP_OS_INFO = 7,
	TP_SMP_IMAGE_STATE = 0,
	TP_SMP_IMAGE_UPLOAD = 1,
};

/* Frame one SMP message (header and body, len bytes) for the console:
 * length, message and CRC-16 in base64, cut into frames of at most 127
 * bytes.  Returns the bytes written to out, or 0 when cap is too small or
 * len is over TP_SMP_PACKET_MAX. */
size_t tp_smp_frame(const uint8_t *msg, size_t len, uint8_t *out, size_t cap);

/* Reassembles messages from lines read off the console. */
struct tp_smp_rx {
	uint8_t buf[TP_SMP_PACKET_MAX + 4];
	size_t have;   /* decoded bytes so far (length field included) */
	int active;    /* a start frame was seen */
};

/* Feed one line (without its newline; a CR at its end is ignored).
 * Returns 1 with the message (header and body, CRC checked and removed) in
 * msg and len when the line completed one; 0 when more frames are needed or
 * the line was not an SMP frame; -1 when the line was a broken frame or
 * completed a message whose length or CRC is wrong (the partial message is
 * dropped; *why says what was wrong). */
int tp_smp_rx_line(struct tp_smp_rx *rx, const char *line, size_t n,
		   const uint8_t **msg, size_t *len, const char **why);

#endif
