/* transport/devmsg.h: the signed records a station-aware device and the
 * station exchange as lines (spec/devices.md; formats §9): the record's
 * own lines, then `sig BASE64` (the DER signature), then zero or more
 * `cert BASE64` lines (DER certificates, leaf first).  The console carries
 * them line by line, the DFU `station-info` setting as one block; both
 * parse with tp_msg_take and write with tp_msg_format.  Nothing here
 * judges a signature: custody/devid.h does, over exactly the bytes kept
 * in `record`.  Every cap is checked; a device's answer never overruns. */
#ifndef TP_DEVMSG_H
#define TP_DEVMSG_H

#include <stddef.h>
#include <stdint.h>

struct stn_diag;

#define TP_MSG_RECORD_MAX 16384 /* record bytes, every line's LF counted */
#define TP_MSG_LINES_MAX 288   /* record lines: an authorization for
				  CU_MAX_IMAGES images needs 266 */
#define TP_MSG_LINE_MAX 6000   /* one line as sent (a base64 cert) */
#define TP_MSG_SIG_MAX 1024    /* DER signature (RSA-4096: 512) */
#define TP_MSG_CERTS_MAX 4     /* leaf and up to three intermediates */
#define TP_MSG_CERT_MAX 4096   /* one DER certificate */

struct tp_signed_msg {
	/* The record as signed: each line followed by one LF (formats §1),
	 * the line's CR not included; NUL after record_len. */
	char record[TP_MSG_RECORD_MAX + 1];
	size_t record_len;
	unsigned nlines;
	int has_sig;
	uint8_t sig[TP_MSG_SIG_MAX];
	size_t sig_len;
	size_t ncerts;
	size_t cert_len[TP_MSG_CERTS_MAX];
	uint8_t cert[TP_MSG_CERTS_MAX][TP_MSG_CERT_MAX];
};

void tp_msg_init(struct tp_signed_msg *m);

/*
 * Take one line of an answer (len bytes, without its CR LF; the caller
 * has removed the terminator line such as `ok` or `end`).  Before the
 * `sig` line every line is a record line (empty lines are not taken: a
 * record that is signed has none); then exactly one `sig BASE64`; then
 * `cert BASE64` lines.  Returns 0, or STN_E_PROTOCOL naming `where` and
 * what is wrong: a line over TP_MSG_LINE_MAX, a control character or NUL
 * in a record line, the record over its caps, base64 that is not
 * canonical (station/base/base64.h) or over its cap, a record line after
 * `sig`, a second `sig`, a `cert` before `sig` or beyond TP_MSG_CERTS_MAX.
 */
int tp_msg_take(struct tp_signed_msg *m, const char *line, size_t len,
		const char *where, struct stn_diag *d);

/* Whether the answer is complete enough to judge: a record and a `sig`. */
int tp_msg_complete(const struct tp_signed_msg *m);

/*
 * The lines of m as a sender writes them: the record's lines, `sig B64`
 * and one `cert B64` per certificate, each ended by `eol` ("\r\n" on the
 * console, "\n" in a DFU block).  *out is malloc'd and NUL-terminated;
 * *len excludes the NUL.  Errors: STN_E_NOMEM; STN_E_USAGE for a message
 * without a signature.
 */
int tp_msg_format(const struct tp_signed_msg *m, const char *eol, char **out,
		  size_t *len, struct stn_diag *d);

/*
 * Parse a whole block (the DFU `station-info` UPLOAD, or a test's text):
 * lines ended by "\n" or "\r\n", taken with tp_msg_take until the
 * terminator line: `ok`, or `ok ` followed by more (a receipt's
 * `ok sha256=HEX`), which is copied into term (term_cap bytes with the
 * NUL; may be NULL); nothing may follow it but empty lines.  A block
 * without the terminator is STN_E_PROTOCOL.  A block whose first line is
 * `error` or starts with `error ` is STN_E_DEVICE carrying the device's
 * text (sanitised: printable ASCII only).
 */
int tp_msg_parse_block(struct tp_signed_msg *m, const char *buf, size_t len,
		       char *term, size_t term_cap, const char *where,
		       struct stn_diag *d);

#endif
