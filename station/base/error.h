/* station/base/error.h: the one project-wide list of error codes, their exit
 * classes, rule names and messages, plus a small diagnostic carrier so that
 * every refusal can name the rule that failed and the file it failed on.
 * This header includes nothing of ours; every module may include it. */
#ifndef STN_ERROR_H
#define STN_ERROR_H

#include <stddef.h>

/* Exit codes of the station command (spec/cli.md). */
enum stn_exit {
	STN_EXIT_OK = 0,      /* done or accepted */
	STN_EXIT_REFUSED = 1, /* a rule failed */
	STN_EXIT_USAGE = 2,   /* usage or configuration error */
	STN_EXIT_IO = 3,      /* I/O or device error a retry might cure */
};

/*
 * X(NAME, value, exit class, rule, message)
 * Values are stable: the journal stores them.  `rule` is the short name a
 * refusal carries ("signature", "images", ...); operators and tests match it.
 */
#define STN_ERROR_LIST(X)                                                      \
	X(OK, 0, STN_EXIT_OK, "ok", "ok")                                      \
	X(NOMEM, -1, STN_EXIT_IO, "resources", "out of memory")                \
	X(IO, -2, STN_EXIT_IO, "io", "input/output error")                     \
	X(USAGE, -3, STN_EXIT_USAGE, "usage", "usage error")                   \
	X(CONFIG, -4, STN_EXIT_USAGE, "config", "configuration error")         \
	X(INTERNAL, -5, STN_EXIT_IO, "internal", "internal error")             \
	X(SYNTAX, -10, STN_EXIT_REFUSED, "record", "malformed record")         \
	X(UNSAFE, -11, STN_EXIT_REFUSED, "media-path",                         \
	  "unsafe file on media")                                              \
	X(TOOBIG, -12, STN_EXIT_REFUSED, "size-cap",                           \
	  "file exceeds its size cap")                                         \
	X(SIGNATURE, -20, STN_EXIT_REFUSED, "signature",                       \
	  "signature does not verify")                                         \
	X(CHAIN, -21, STN_EXIT_REFUSED, "chain",                               \
	  "certificate chain does not verify to a trust anchor")               \
	X(ROLE, -22, STN_EXIT_REFUSED, "role",                                 \
	  "signer does not hold the required role")                            \
	X(TWOROLES, -23, STN_EXIT_REFUSED, "one-key-one-duty",                 \
	  "certificate carries more than one station role")                    \
	X(ALGORITHM, -24, STN_EXIT_REFUSED, "algorithm",                       \
	  "signature algorithm or key size not accepted")                      \
	X(THRESHOLD, -25, STN_EXIT_REFUSED, "threshold",                       \
	  "too few valid release signatures")                                  \
	X(VALIDITY, -30, STN_EXIT_REFUSED, "expired",                          \
	  "bundle is not valid at the session start time")                     \
	X(IMAGE, -31, STN_EXIT_REFUSED, "images",                              \
	  "image does not match the manifest")                                 \
	X(TARGET, -32, STN_EXIT_REFUSED, "target",                             \
	  "device does not match the bundle's target")                         \
	X(DOWNGRADE, -33, STN_EXIT_REFUSED, "downgrade",                       \
	  "bundle sequence is not newer than the installed one")               \
	X(REINSTALL, -34, STN_EXIT_REFUSED, "reinstall",                       \
	  "equal sequence: a reinstall needs the technician's confirmation")   \
	X(CUSTODY, -35, STN_EXIT_REFUSED, "custody",                           \
	  "custody chain incomplete")                                          \
	X(TOKEN, -36, STN_EXIT_REFUSED, "token", "exception token refused")    \
	X(IDENTITY, -37, STN_EXIT_REFUSED, "identity",                         \
	  "device identity unusable")                                          \
	X(TECHNICIAN, -38, STN_EXIT_REFUSED, "technician",                     \
	  "unknown technician")                                                \
	X(CLOCK, -39, STN_EXIT_REFUSED, "clock",                               \
	  "station clock is behind the trusted-time floor")                    \
	X(VERIFY_DEVICE, -40, STN_EXIT_REFUSED, "install-proof",               \
	  "device stored bytes that differ from the image")                    \
	X(ATTESTATION, -47, STN_EXIT_REFUSED, "attestation",                   \
	  "device did not prove its identity")                                 \
	X(NOATTEST, -48, STN_EXIT_REFUSED, "attestation",                      \
	  "device cannot attest (no device key)")                              \
	X(PROOF, -49, STN_EXIT_REFUSED, "proof",                               \
	  "install not proven as its class requires")                          \
	X(AUTHORIZATION, -52, STN_EXIT_REFUSED, "authorization",               \
	  "device refused the station's install authorization")                \
	X(DEVICE, -41, STN_EXIT_IO, "device", "device error")                  \
	X(TIMEOUT, -42, STN_EXIT_IO, "device", "device did not answer in time") \
	X(PROTOCOL, -43, STN_EXIT_IO, "device", "device protocol error")       \
	X(CANCELLED, -44, STN_EXIT_IO, "device", "transfer cancelled")         \
	X(NODEVICE, -45, STN_EXIT_IO, "device", "device is gone")              \
	X(INTERRUPTED, -46, STN_EXIT_IO, "interrupted",                        \
	  "the station was interrupted (a signal) and stopped the install")    \
	X(JOURNAL, -50, STN_EXIT_IO, "journal", "journal error")               \
	X(CHAINBROKEN, -51, STN_EXIT_REFUSED, "journal-chain",                 \
	  "journal hash chain is broken")

enum stn_err {
#define STN_X_ENUM(name, value, exit, rule, msg) STN_E_##name = (value),
	STN_ERROR_LIST(STN_X_ENUM)
#undef STN_X_ENUM
};

/* Static strings for a code; unknown codes get "unknown error". */
const char *stn_strerror(int code);
const char *stn_err_rule(int code);
/* Exit class of a code (enum stn_exit); unknown codes map to STN_EXIT_IO. */
int stn_err_exit(int code);

/*
 * A diagnostic: the code, where it happened (a file, "file:line", a device)
 * and what exactly was wrong.  Caller-owned; zero-initialise or stn_diag_init.
 * It is filled only together with a returned code, and travels with it.
 * Sizes fit the use (1.5 KiB; it was 5.2 KiB, and a device verdict holds
 * four): the longest place the test suites produce is 77 bytes and the
 * longest text 215; 511 bytes hold a media path several levels deep.  A
 * longer place keeps its end (the file's name) behind "...".  Texts that quote another diagnostic bound
 * the quote (%.300s) so their own words survive.
 */
struct stn_diag {
	int code;
	char where[512];
	char text[1024];
};

void stn_diag_init(struct stn_diag *d);
/* Record a failure and return `code`, so callers can `return stn_fail(...)`.
 * `d` may be NULL.  `where` may be NULL.  The first failure recorded wins
 * unless stn_diag_init is called again: the root cause is what matters. */
int stn_fail(struct stn_diag *d, int code, const char *where, const char *fmt,
	     ...) __attribute__((format(printf, 4, 5)));
/* Same, but overwrite whatever is recorded (used when wrapping a cause). */
int stn_refail(struct stn_diag *d, int code, const char *where,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Re-class a recorded failure (e.g. a record error inside station.conf is a
 * configuration error), keeping where and text.  Returns code; NULL is fine. */
int stn_recode(struct stn_diag *d, int code);
/* "rule RULE: WHERE: TEXT" (parts that are empty are left out). */
void stn_diag_format(const struct stn_diag *d, char *buf, size_t size);

#endif
