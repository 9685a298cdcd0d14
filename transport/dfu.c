/* transport/dfu.c: DFU 1.1 host state machine (see dfu.h).  Section
 * numbers refer to the USB Device Class Specification for Device Firmware
 * Upgrade, version 1.1. */
#include "transport/dfu.h"
#include "station/base/monotime.h"
#include "transport/devmsg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_BUSY_MAX_MS 120000
#define DEFAULT_MANIFEST_MAX_MS 300000
/* DFU_DETACH's wTimeout: how long the device waits for our bus reset.
 * The descriptor's wDetachTimeOut is the most it accepts; we need at most
 * a few seconds to reset (and more would only delay a device that was
 * detached in error). */
#define DETACH_MAX_MS 5000
/* Leaving a stale state takes at most ERROR -> CLRSTATUS -> IDLE or
 * X-IDLE -> ABORT -> IDLE; a few more rounds absorb busy states. */
#define READY_ROUNDS 8

struct tp_dfu {
	struct tp_dfu_io io;
	struct tp_dfu_func func;
	struct tp_dfu_opts o;
	unsigned xfer;
	struct tp_dfu_stats st;
	char name[256];
};

const char *tp_dfu_state_name(unsigned state)
{
	static const char *const names[] = {
		"appIDLE",	  "appDETACH",	      "dfuIDLE",
		"dfuDNLOAD-SYNC", "dfuDNBUSY",	      "dfuDNLOAD-IDLE",
		"dfuMANIFEST-SYNC", "dfuMANIFEST",    "dfuMANIFEST-WAIT-RESET",
		"dfuUPLOAD-IDLE", "dfuERROR",
	};
	return state < sizeof(names) / sizeof(names[0]) ? names[state]
							: "unknown state";
}

const char *tp_dfu_status_name(unsigned status)
{
	static const char *const names[] = {
		"OK",	      "errTARGET", "errFILE",	  "errWRITE",
		"errERASE",   "errCHECK_ERASED", "errPROG", "errVERIFY",
		"errADDRESS", "errNOTDONE", "errFIRMWARE", "errVENDOR",
		"errUSBR",    "errPOR",	   "errUNKNOWN",  "errSTALLEDPKT",
	};
	return status < sizeof(names) / sizeof(names[0]) ? names[status]
							 : "unknown status";
}

int tp_dfu_func_parse(const void *desc, size_t len, const char *name,
		      struct tp_dfu_func *out, struct stn_diag *d)
{
	const uint8_t *p = desc;
	struct tp_dfu_func f;

	/* DFU 1.0 descriptors stop before bcdDFUVersion (7 bytes). */
	if (len < 7 || p[0] < 7 || p[0] > len)
		return stn_fail(d, STN_E_PROTOCOL, name,
				"DFU functional descriptor is %zu bytes "
				"(bLength %u); at least 7 are needed", len,
				len ? p[0] : 0);
	if (p[1] != TP_DFU_FUNC_DESC_TYPE)
		return stn_fail(d, STN_E_PROTOCOL, name,
				"DFU functional descriptor has type 0x%02x, "
				"not 0x21", p[1]);
	f.attributes = p[2];
	f.detach_ms = (uint16_t)(p[3] | p[4] << 8);
	f.transfer_size = (uint16_t)(p[5] | p[6] << 8);
	f.version = p[0] >= 9 ? (uint16_t)(p[7] | p[8] << 8) : 0x0100;
	if (f.transfer_size == 0)
		return stn_fail(d, STN_E_PROTOCOL, name,
				"DFU functional descriptor gives wTransferSize "
				"0: the device cannot take a block");
	*out = f;
	return 0;
}

static void default_sleep(void *ctx, unsigned ms)
{
	(void)ctx;
	stn_sleep_ms(ms);
}

static uint64_t default_now(void *ctx)
{
	(void)ctx;
	return (uint64_t)stn_mono_ms();
}

int tp_dfu_new(const struct tp_dfu_io *io, const struct tp_dfu_func *f,
	       const char *name, const struct tp_dfu_opts *opts,
	       struct tp_dfu **out, struct stn_diag *d)
{
	struct tp_dfu *dfu;

	if (!io || !io->control || !f)
		return stn_fail(d, STN_E_USAGE, name, "DFU without a channel");
	dfu = calloc(1, sizeof(*dfu));
	if (!dfu)
		return stn_fail(d, STN_E_NOMEM, name, "DFU state");
	dfu->io = *io;
	if (!dfu->io.sleep_ms)
		dfu->io.sleep_ms = default_sleep;
	if (!dfu->io.now_ms)
		dfu->io.now_ms = default_now;
	dfu->func = *f;
	if (opts)
		dfu->o = *opts;
	if (dfu->o.timeout_ms <= 0)
		dfu->o.timeout_ms = DEFAULT_TIMEOUT_MS;
	if (dfu->o.busy_max_ms <= 0)
		dfu->o.busy_max_ms = DEFAULT_BUSY_MAX_MS;
	if (dfu->o.manifest_max_ms <= 0)
		dfu->o.manifest_max_ms = DEFAULT_MANIFEST_MAX_MS;
	dfu->xfer = dfu->o.transfer_size ? dfu->o.transfer_size
					 : f->transfer_size;
	if (dfu->xfer > TP_DFU_MAX_TRANSFER)
		dfu->xfer = TP_DFU_MAX_TRANSFER;
	if (dfu->xfer == 0)
		dfu->xfer = 1;
	snprintf(dfu->name, sizeof(dfu->name), "%s", name ? name : "usb");
	*out = dfu;
	return 0;
}

void tp_dfu_free(struct tp_dfu *dfu)
{
	free(dfu);
}

unsigned tp_dfu_transfer_size(const struct tp_dfu *dfu)
{
	return dfu->xfer;
}

void tp_dfu_stats(const struct tp_dfu *dfu, struct tp_dfu_stats *st)
{
	*st = dfu->st;
}

static int req(struct tp_dfu *dfu, int in, uint8_t request, uint16_t value,
	       void *buf, size_t len, size_t *got, struct stn_diag *d)
{
	size_t n = 0;
	int rc;

	dfu->st.requests++;
	rc = dfu->io.control(dfu->io.ctx, in, request, value, buf, len, &n,
			     dfu->o.timeout_ms, d);
	if (rc == 0 && got)
		*got = n;
	return rc;
}

static uint64_t now(struct tp_dfu *dfu)
{
	return dfu->io.now_ms(dfu->io.ctx);
}

static void wait_ms(struct tp_dfu *dfu, unsigned ms)
{
	if (ms == 0)
		return;
	dfu->io.sleep_ms(dfu->io.ctx, ms);
	dfu->st.slept_ms += ms;
}

int tp_dfu_get_status(struct tp_dfu *dfu, struct tp_dfu_status *st,
		      struct stn_diag *d)
{
	uint8_t b[6];
	size_t got = 0;
	int rc;

	dfu->st.polls++;
	if ((rc = req(dfu, 1, TP_DFU_GETSTATUS, 0, b, sizeof(b), &got, d)))
		return rc;
	if (got != sizeof(b))
		return stn_fail(d, STN_E_PROTOCOL, dfu->name,
				"GETSTATUS answered %zu bytes, not 6", got);
	st->status = b[0];
	st->poll_ms = (uint32_t)b[1] | (uint32_t)b[2] << 8 |
		      (uint32_t)b[3] << 16;
	st->state = b[4];
	st->string_index = b[5];
	return 0;
}

int tp_dfu_get_state(struct tp_dfu *dfu, uint8_t *state, struct stn_diag *d)
{
	size_t got = 0;
	int rc;

	if ((rc = req(dfu, 1, TP_DFU_GETSTATE, 0, state, 1, &got, d)))
		return rc;
	if (got != 1)
		return stn_fail(d, STN_E_PROTOCOL, dfu->name,
				"GETSTATE answered %zu bytes, not 1", got);
	return 0;
}

int tp_dfu_clear_status(struct tp_dfu *dfu, struct stn_diag *d)
{
	return req(dfu, 0, TP_DFU_CLRSTATUS, 0, NULL, 0, NULL, d);
}

int tp_dfu_abort(struct tp_dfu *dfu, struct stn_diag *d)
{
	return req(dfu, 0, TP_DFU_ABORT, 0, NULL, 0, NULL, d);
}

int tp_dfu_detach(struct tp_dfu *dfu, struct stn_diag *d)
{
	unsigned ms = dfu->func.detach_ms;

	if (ms > DETACH_MAX_MS || ms == 0)
		ms = ms ? DETACH_MAX_MS : 1000;
	return req(dfu, 0, TP_DFU_DETACH, (uint16_t)ms, NULL, 0, NULL, d);
}

/* Prefix a channel failure with what we were doing; keeps its code. */
static int failed(struct stn_diag *d, int rc, const struct stn_diag *ld,
		  const char *fmt_what)
{
	return stn_fail(d, rc, ld->where, "%s: %s", fmt_what, ld->text);
}

/* A status that means the device does not accept what it was given
 * (rather than that it could not write it). */
static int status_code(uint8_t status)
{
	switch (status) {
	case TP_DFU_ERR_VERIFY:
	case TP_DFU_ERR_CHECK_ERASED:
	case TP_DFU_ERR_FIRMWARE:
		return STN_E_VERIFY_DEVICE;
	default:
		return STN_E_DEVICE;
	}
}

/* The device refused `what` (a stall or dfuERROR): learn its status,
 * clear the error so the next session starts clean, and report it. */
static int refused(struct tp_dfu *dfu, const char *what,
		   const struct tp_dfu_status *known, struct stn_diag *d)
{
	struct tp_dfu_status st;
	struct stn_diag ld;
	int rc;

	stn_diag_init(&ld);
	if (known) {
		st = *known;
	} else if ((rc = tp_dfu_get_status(dfu, &st, &ld))) {
		return stn_fail(d, rc == STN_E_NODEVICE ? rc : STN_E_DEVICE,
				dfu->name,
				"%s: the device refused it (stall), then "
				"GETSTATUS failed: %s", what, ld.text);
	}
	if (st.state == TP_DFU_ERROR) {
		stn_diag_init(&ld);
		(void)tp_dfu_clear_status(dfu, &ld);
	}
	return stn_fail(d, status_code(st.status), dfu->name,
			"%s: the device refused it: status %s (%u), state %s",
			what, tp_dfu_status_name(st.status), st.status,
			tp_dfu_state_name(st.state));
}

int tp_dfu_ready(struct tp_dfu *dfu, struct stn_diag *d)
{
	struct tp_dfu_status st = {0};
	struct stn_diag ld;
	uint64_t start = now(dfu);
	int rc, stalled = 0;

	for (int round = 0; round < READY_ROUNDS; round++) {
		stn_diag_init(&ld);
		rc = tp_dfu_get_status(dfu, &st, &ld);
		if (rc == STN_E_DEVICE && !stalled) {
			/* Some devices stall GETSTATUS while in an error
			 * they want cleared first. */
			stalled = 1;
			stn_diag_init(&ld);
			if ((rc = tp_dfu_clear_status(dfu, &ld)))
				return failed(d, rc, &ld,
					      "GETSTATUS stalled, CLRSTATUS");
			dfu->st.recoveries++;
			continue;
		}
		if (rc)
			return failed(d, rc, &ld, "GETSTATUS");
		switch (st.state) {
		case TP_DFU_IDLE:
			return 0;
		case TP_DFU_ERROR:
			rc = tp_dfu_clear_status(dfu, &ld);
			dfu->st.recoveries++;
			break;
		case TP_DFU_DNLOAD_SYNC:
		case TP_DFU_DNLOAD_IDLE:
		case TP_DFU_MANIFEST_SYNC:
		case TP_DFU_UPLOAD_IDLE:
			rc = tp_dfu_abort(dfu, &ld);
			dfu->st.recoveries++;
			break;
		case TP_DFU_DNBUSY:
		case TP_DFU_MANIFEST:
			if (now(dfu) - start + st.poll_ms >
			    (uint64_t)dfu->o.busy_max_ms)
				return stn_fail(d, STN_E_TIMEOUT, dfu->name,
						"still in %s after %d ms",
						tp_dfu_state_name(st.state),
						dfu->o.busy_max_ms);
			wait_ms(dfu, st.poll_ms);
			break;
		case TP_DFU_APP_IDLE:
		case TP_DFU_APP_DETACH:
			return stn_fail(d, STN_E_DEVICE, dfu->name,
					"the device is in run-time mode (%s), "
					"not DFU mode",
					tp_dfu_state_name(st.state));
		case TP_DFU_MANIFEST_WAIT_RESET:
			return stn_fail(d, STN_E_DEVICE, dfu->name,
					"the device waits for a USB reset "
					"(dfuMANIFEST-WAIT-RESET)");
		default:
			return stn_fail(d, STN_E_PROTOCOL, dfu->name,
					"GETSTATUS reports state %u, which DFU "
					"1.1 does not define", st.state);
		}
		if (rc)
			return failed(d, rc, &ld,
				      st.state == TP_DFU_ERROR
					      ? "recovering from dfuERROR: "
						"CLRSTATUS"
					      : "leaving an earlier transfer: "
						"ABORT");
	}
	return stn_fail(d, STN_E_DEVICE, dfu->name,
			"did not reach dfuIDLE: still in %s, status %s",
			tp_dfu_state_name(st.state),
			tp_dfu_status_name(st.status));
}

/* Fill buf with exactly len bytes from src, or say how many came. */
static int fill(const struct tp_source *src, uint8_t *buf, size_t len,
		size_t *got)
{
	size_t have = 0, n;
	int rc;

	while (have < len) {
		n = 0;
		if ((rc = src->read(src->ctx, buf + have, len - have, &n)))
			return rc;
		if (n == 0)
			break;
		have += n;
	}
	*got = have;
	return 0;
}

/* The next block, read from the source while the device is busy with the
 * current one: time that would otherwise be spent asleep. */
struct prefetch {
	const struct tp_source *src;
	uint8_t *buf;
	size_t want, got;
	int rc, done;
};

/* After one DNLOAD block: poll until the device has taken it. */
static int wait_block(struct tp_dfu *dfu, unsigned block, uint64_t offset,
		      struct prefetch *pf, struct stn_diag *d)
{
	struct tp_dfu_status st;
	struct stn_diag ld;
	char what[96];
	uint64_t start = now(dfu);
	int rc;

	snprintf(what, sizeof(what), "block %u (offset %" PRIu64 ")", block,
		 offset);
	for (;;) {
		stn_diag_init(&ld);
		if ((rc = tp_dfu_get_status(dfu, &st, &ld))) {
			if (rc == STN_E_DEVICE)
				return refused(dfu, what, NULL, d);
			return stn_fail(d, rc, ld.where, "%s: GETSTATUS: %s",
					what, ld.text);
		}
		switch (st.state) {
		case TP_DFU_DNLOAD_IDLE:
			return 0;
		case TP_DFU_DNBUSY:
		case TP_DFU_DNLOAD_SYNC:
			/* Section 6.1.1: the host does not talk to the device
			 * again before bwPollTimeout has passed, and need not
			 * wait longer. */
			if (now(dfu) - start + st.poll_ms >
			    (uint64_t)dfu->o.busy_max_ms)
				return stn_fail(d, STN_E_TIMEOUT, dfu->name,
						"%s: busy for more than %d ms "
						"(the device asks for %" PRIu32
						" ms more)",
						what, dfu->o.busy_max_ms,
						st.poll_ms);
			{
				uint64_t t = now(dfu), spent;

				if (pf && !pf->done) {
					pf->rc = fill(pf->src, pf->buf,
						      pf->want, &pf->got);
					pf->done = 1;
				}
				spent = now(dfu) - t;
				wait_ms(dfu, st.poll_ms > spent
						     ? (unsigned)(st.poll_ms -
								  spent)
						     : 0);
			}
			break;
		case TP_DFU_ERROR:
			return refused(dfu, what, &st, d);
		default:
			return stn_fail(d, STN_E_PROTOCOL, dfu->name,
					"%s: after DNLOAD the device is in %s "
					"(status %s)", what,
					tp_dfu_state_name(st.state),
					tp_dfu_status_name(st.status));
		}
	}
}

/* Section 7: after the zero-length DNLOAD, GETSTATUS drives the device
 * through dfuMANIFEST-SYNC and dfuMANIFEST to dfuIDLE (tolerant) or
 * dfuMANIFEST-WAIT-RESET.  A device that is not tolerant may stop
 * answering once it manifests, or leave the bus. */
static int manifest(struct tp_dfu *dfu, enum tp_dfu_manifest *how,
		    struct stn_diag *d)
{
	int tolerant = dfu->func.attributes & TP_DFU_MANIFEST_TOLERANT;
	struct tp_dfu_status st;
	struct stn_diag ld;
	uint64_t start = now(dfu);
	int rc, manifesting = 0;

	for (;;) {
		stn_diag_init(&ld);
		rc = tp_dfu_get_status(dfu, &st, &ld);
		if (rc == STN_E_NODEVICE && !tolerant) {
			*how = TP_DFU_MANIFEST_DONE_GONE;
			return 0;
		}
		if (rc && !tolerant && manifesting && rc != STN_E_PROTOCOL) {
			/* "The device will not be able to communicate via
			 * USB after Manifestation" (bitManifestationTolerant
			 * 0): silence here is the expected end. */
			*how = TP_DFU_MANIFEST_DONE_RESET;
			return 0;
		}
		if (rc == STN_E_DEVICE)
			return refused(dfu, "manifestation", NULL, d);
		if (rc)
			return stn_fail(d, rc, ld.where,
					"manifestation: GETSTATUS: %s%s",
					ld.text,
					rc == STN_E_NODEVICE
						? " (the device says it is "
						  "manifestation tolerant, so "
						  "it should have stayed)"
						: "");
		switch (st.state) {
		case TP_DFU_IDLE:
			*how = TP_DFU_MANIFEST_DONE_IDLE;
			return 0;
		case TP_DFU_MANIFEST_WAIT_RESET:
			*how = TP_DFU_MANIFEST_DONE_RESET;
			return 0;
		case TP_DFU_MANIFEST:
			manifesting = 1;
			/* fall through */
		case TP_DFU_MANIFEST_SYNC:
			if (now(dfu) - start + st.poll_ms >
			    (uint64_t)dfu->o.manifest_max_ms)
				return stn_fail(d, STN_E_TIMEOUT, dfu->name,
						"manifestation took more than "
						"%d ms (still %s)",
						dfu->o.manifest_max_ms,
						tp_dfu_state_name(st.state));
			wait_ms(dfu, st.poll_ms);
			break;
		case TP_DFU_ERROR:
			return refused(dfu, "manifestation", &st, d);
		default:
			return stn_fail(d, STN_E_PROTOCOL, dfu->name,
					"manifestation: the device is in %s "
					"(status %s)",
					tp_dfu_state_name(st.state),
					tp_dfu_status_name(st.status));
		}
	}
}

int tp_dfu_download(struct tp_dfu *dfu, const struct tp_source *src,
		    uint64_t size, const struct tp_progress *prog,
		    enum tp_dfu_manifest *how, struct stn_diag *d)
{
	uint8_t *bufs = NULL, *buf, extra;
	struct prefetch pf = {src, NULL, 0, 0, 0, 0};
	struct stn_diag ld;
	uint64_t done = 0;
	unsigned block = 0;
	size_t got;
	int rc, cur = 0;

	if (!(dfu->func.attributes & TP_DFU_CAN_DNLOAD))
		return stn_fail(d, STN_E_USAGE, dfu->name,
				"the device does not take downloads "
				"(bitCanDnload is 0)");
	if (size == 0)
		return stn_fail(d, STN_E_USAGE, dfu->name,
				"an empty image cannot be downloaded: a "
				"zero-length DNLOAD ends the transfer");
	bufs = malloc(2 * (size_t)dfu->xfer);
	if (!bufs)
		return stn_fail(d, STN_E_NOMEM, dfu->name, "DFU block");
	while (done < size) {
		size_t want = size - done < dfu->xfer ? (size_t)(size - done)
						       : dfu->xfer;
		char what[96];

		buf = bufs + (size_t)cur * dfu->xfer;
		if (pf.done) { /* read while the device was busy */
			rc = pf.rc;
			got = pf.got;
		} else {
			rc = fill(src, buf, want, &got);
		}
		if (rc)
			goto out;
		if (got != want) {
			rc = stn_fail(d, STN_E_IO, dfu->name,
				      "the image ended after %" PRIu64
				      " of %" PRIu64 " bytes",
				      done + got, size);
			goto out;
		}
		stn_diag_init(&ld);
		rc = req(dfu, 0, TP_DFU_DNLOAD, (uint16_t)block, buf, want,
			 NULL, &ld);
		snprintf(what, sizeof(what), "block %u (offset %" PRIu64 ")",
			 block, done);
		if (rc == STN_E_DEVICE) {
			rc = refused(dfu, what, NULL, d);
			goto out;
		}
		if (rc) {
			rc = stn_fail(d, rc, ld.where, "%s: DNLOAD: %s", what,
				      ld.text);
			goto out;
		}
		/* Arm the read of the next block into the other buffer. */
		pf.buf = bufs + (size_t)(cur ^ 1) * dfu->xfer;
		pf.want = size - done - want < dfu->xfer
				  ? (size_t)(size - done - want)
				  : dfu->xfer;
		pf.done = pf.want == 0; /* nothing left to read ahead */
		pf.got = 0;
		pf.rc = 0;
		if ((rc = wait_block(dfu, block, done, pf.want ? &pf : NULL,
				     d)))
			goto out;
		pf.done = pf.done && pf.want;
		cur ^= 1;
		dfu->st.blocks++;
		done += want;
		block = (block + 1) & 0xffff; /* wBlockNum wraps (6.1.1) */
		if (prog && prog->update)
			prog->update(prog->ctx, done, size);
	}
	/* The source must end exactly here, or the manifest's size and the
	 * bytes disagree: do not let the device manifest a short image. */
	if ((rc = fill(src, &extra, 1, &got)))
		goto out;
	if (got) {
		rc = stn_fail(d, STN_E_IO, dfu->name,
			      "the image is longer than %" PRIu64
			      " bytes: not ending the download", size);
		goto out;
	}
	/* Section 6.1.1: a DNLOAD with wLength 0 ends the transfer. */
	stn_diag_init(&ld);
	rc = req(dfu, 0, TP_DFU_DNLOAD, (uint16_t)block, NULL, 0, NULL, &ld);
	if (rc == STN_E_NODEVICE &&
	    !(dfu->func.attributes & TP_DFU_MANIFEST_TOLERANT)) {
		*how = TP_DFU_MANIFEST_DONE_GONE;
		rc = 0;
		goto out;
	}
	if (rc == STN_E_DEVICE) {
		rc = refused(dfu, "the final zero-length DNLOAD", NULL, d);
		goto out;
	}
	if (rc) {
		rc = stn_fail(d, rc, ld.where,
			      "the final zero-length DNLOAD: %s", ld.text);
		goto out;
	}
	rc = manifest(dfu, how, d);
out:
	free(bufs);
	return rc;
}

int tp_dfu_upload(struct tp_dfu *dfu, uint64_t max, const struct tp_sink *out,
		  uint64_t *got, const struct tp_progress *prog,
		  struct stn_diag *d)
{
	uint8_t *buf;
	struct stn_diag ld;
	uint64_t done = 0;
	unsigned block = 0;
	int rc = 0, ended = 0;

	if (!(dfu->func.attributes & TP_DFU_CAN_UPLOAD))
		return stn_fail(d, STN_E_USAGE, dfu->name,
				"the device cannot upload (bitCanUpload is "
				"0)");
	buf = malloc(dfu->xfer);
	if (!buf)
		return stn_fail(d, STN_E_NOMEM, dfu->name, "DFU block");
	while (done < max) {
		size_t n = 0, pass;
		char what[96];

		stn_diag_init(&ld);
		rc = req(dfu, 1, TP_DFU_UPLOAD, (uint16_t)block, buf,
			 dfu->xfer, &n, &ld);
		snprintf(what, sizeof(what),
			 "upload block %u (offset %" PRIu64 ")", block, done);
		if (rc == STN_E_DEVICE) {
			rc = refused(dfu, what, NULL, d);
			goto out;
		}
		if (rc) {
			rc = stn_fail(d, rc, ld.where, "%s: %s", what, ld.text);
			goto out;
		}
		pass = max - done < n ? (size_t)(max - done) : n;
		if (pass && (rc = out->write(out->ctx, buf, pass)))
			goto out;
		done += pass;
		if (prog && prog->update)
			prog->update(prog->ctx, done, max);
		/* Section 6.2: a block shorter than wLength is the last;
		 * the device is back in dfuIDLE. */
		if (n < dfu->xfer) {
			ended = 1;
			break;
		}
		block = (block + 1) & 0xffff;
	}
	if (!ended) {
		/* We have what we asked for; the device may have more. */
		stn_diag_init(&ld);
		if ((rc = tp_dfu_abort(dfu, &ld))) {
			rc = stn_fail(d, rc, ld.where,
				      "ending the upload with ABORT: %s",
				      ld.text);
			goto out;
		}
	}
	*got = done;
out:
	free(buf);
	return rc;
}

/* ---- the station-info setting ------------------------------------------ */

struct mem_source {
	const char *p;
	size_t len, pos;
};

static int mem_source_read(void *ctx, void *buf, size_t len, size_t *got)
{
	struct mem_source *m = ctx;
	size_t n = m->len - m->pos < len ? m->len - m->pos : len;

	memcpy(buf, m->p + m->pos, n);
	m->pos += n;
	*got = n;
	return 0;
}

struct text_sink {
	char *buf;
	size_t cap, len;
};

static int text_sink_write(void *ctx, const void *data, size_t len)
{
	struct text_sink *t = ctx;

	/* tp_dfu_upload passes at most `max`, one less than cap. */
	memcpy(t->buf + t->len, data, len);
	t->len += len;
	return 0;
}

/* UPLOAD the setting's answer; one byte more than fits is asked for, so
 * an answer that does not fit is seen rather than cut. */
static int info_upload(struct tp_dfu *info, char *buf, size_t cap,
		       size_t *len, struct stn_diag *d)
{
	char *tmp = malloc(cap + 1);
	struct text_sink t = {tmp, cap + 1, 0}; /* max = cap below */
	struct tp_sink sink = {text_sink_write, &t};
	uint64_t got = 0;
	int rc;

	if (!tmp)
		return stn_fail(d, STN_E_NOMEM, info->name, "station-info");
	rc = tp_dfu_upload(info, cap, &sink, &got, NULL, d);
	if (rc == 0 && got >= cap)
		rc = stn_fail(d, STN_E_PROTOCOL, info->name,
			      "the station-info answer is longer than %zu "
			      "bytes", cap - 1);
	if (rc == 0) {
		memcpy(buf, tmp, t.len);
		buf[t.len] = '\0';
		*len = t.len;
	}
	free(tmp);
	return rc;
}

int tp_dfu_info_command(struct tp_dfu *info, const char *cmd, size_t cmd_len,
			char *buf, size_t cap, size_t *len, struct stn_diag *d)
{
	struct mem_source m = {cmd, cmd_len, 0};
	struct tp_source src = {mem_source_read, &m};
	enum tp_dfu_manifest how;
	int rc;

	if (cap < 2)
		return stn_fail(d, STN_E_USAGE, info->name, "buffer too small");
	if ((rc = tp_dfu_ready(info, d)) ||
	    (rc = tp_dfu_download(info, &src, cmd_len, NULL, &how, d)))
		return rc;
	if (how != TP_DFU_MANIFEST_DONE_IDLE)
		return stn_fail(d, STN_E_PROTOCOL, info->name,
				"after a command the station-info setting "
				"must return to dfuIDLE with its answer, but "
				"it %s", how == TP_DFU_MANIFEST_DONE_RESET
						 ? "waits for a reset"
						 : "left the bus");
	return info_upload(info, buf, cap, len, d);
}

int tp_dfu_attest(struct tp_dfu *info, const uint8_t nonce[32],
		  struct tp_signed_msg *out, struct stn_diag *d)
{
	static const char hexd[] = "0123456789abcdef";
	char cmd[7 + 64 + 2], where[300];
	char *buf = malloc(TP_DFU_INFO_MAX);
	struct stn_diag ld;
	size_t len = 0;
	int rc;

	if (!buf)
		return stn_fail(d, STN_E_NOMEM, info->name, "attestation");
	memcpy(cmd, "attest ", 7);
	for (int i = 0; i < 32; i++) {
		cmd[7 + 2 * i] = hexd[nonce[i] >> 4];
		cmd[8 + 2 * i] = hexd[nonce[i] & 15];
	}
	cmd[71] = '\n';
	cmd[72] = '\0';
	snprintf(where, sizeof(where), "%s station-info", info->name);
	stn_diag_init(&ld);
	rc = tp_dfu_info_command(info, cmd, 72, buf, TP_DFU_INFO_MAX, &len,
				 &ld);
	/* A station-info setting that refuses every download is that of a
	 * device without a key (it predates attestation): it did not try. */
	if (rc == STN_E_DEVICE)
		rc = stn_fail(d, STN_E_NOATTEST, where,
			      "the device takes no attest command: %s",
			      ld.text);
	else if (rc)
		rc = stn_fail(d, rc, ld.where, "attest: %s", ld.text);
	if (rc)
		goto out;
	stn_diag_init(&ld);
	rc = tp_msg_parse_block(out, buf, len, NULL, 0, where, &ld);
	if (rc == STN_E_DEVICE)
		rc = stn_fail(d, STN_E_NOATTEST, where,
			      "the device cannot attest: %s", ld.text);
	else if (rc)
		rc = stn_fail(d, rc, ld.where, "attestation answer: %s",
			      ld.text);
	else if (!tp_msg_complete(out))
		rc = stn_fail(d, STN_E_PROTOCOL, where,
			      "the attestation answer is not a signed "
			      "record (no record or no `sig` line)");
out:
	free(buf);
	return rc;
}

int tp_dfu_authorize(struct tp_dfu *info, const struct tp_signed_msg *authz,
		     struct stn_diag *d)
{
	static const char head[] = "authorize\n", tail[] = "end\n";
	char *lines = NULL, *cmd = NULL, answer[2048], term[64], where[300];
	struct tp_signed_msg *m = NULL;
	struct stn_diag ld;
	size_t n = 0, len = 0;
	int rc;

	snprintf(where, sizeof(where), "%s station-info", info->name);
	if ((rc = tp_msg_format(authz, "\n", &lines, &n, d)))
		return rc;
	cmd = malloc(sizeof(head) + n + sizeof(tail));
	m = malloc(sizeof(*m));
	if (!cmd || !m) {
		rc = stn_fail(d, STN_E_NOMEM, where, "authorization");
		goto out;
	}
	memcpy(cmd, head, sizeof(head) - 1);
	memcpy(cmd + sizeof(head) - 1, lines, n);
	memcpy(cmd + sizeof(head) - 1 + n, tail, sizeof(tail));
	stn_diag_init(&ld);
	rc = tp_dfu_info_command(info, cmd, sizeof(head) - 1 + n +
					    sizeof(tail) - 1,
				 answer, sizeof(answer), &len, &ld);
	if (rc == STN_E_DEVICE)
		rc = stn_fail(d, STN_E_AUTHORIZATION, where,
			      "the device refused the authorization: %s",
			      ld.text);
	else if (rc)
		rc = stn_fail(d, rc, ld.where, "authorize: %s", ld.text);
	if (rc)
		goto out;
	stn_diag_init(&ld);
	rc = tp_msg_parse_block(m, answer, len, term, sizeof(term), where,
				&ld);
	if (rc == STN_E_DEVICE)
		rc = stn_fail(d, STN_E_AUTHORIZATION, where,
			      "the device refused the authorization: %s",
			      ld.text);
	else if (rc)
		rc = stn_fail(d, rc, ld.where, "authorization answer: %s",
			      ld.text);
	else if (m->record_len || m->has_sig || strcmp(term, "ok") != 0)
		rc = stn_fail(d, STN_E_PROTOCOL, where,
			      "the device answered the authorization with "
			      "more than `ok`");
out:
	free(lines);
	free(cmd);
	free(m);
	return rc;
}

int tp_dfu_receipt(struct tp_dfu *info, struct tp_signed_msg *out,
		   char sha256_hex[65], struct stn_diag *d)
{
	static const char ok[] = "ok sha256=";
	char *buf = malloc(TP_DFU_INFO_MAX), term[128], where[300];
	struct stn_diag ld;
	size_t len = 0;
	int rc;

	if (!buf)
		return stn_fail(d, STN_E_NOMEM, info->name, "receipt");
	snprintf(where, sizeof(where), "%s station-info", info->name);
	stn_diag_init(&ld);
	rc = tp_dfu_ready(info, &ld);
	if (rc == 0)
		rc = info_upload(info, buf, TP_DFU_INFO_MAX, &len, &ld);
	if (rc) {
		rc = stn_fail(d, rc, ld.where, "reading the receipt: %s",
			      ld.text);
		goto out;
	}
	stn_diag_init(&ld);
	rc = tp_msg_parse_block(out, buf, len, term, sizeof(term), where, &ld);
	if (rc == STN_E_DEVICE)
		rc = stn_fail(d, STN_E_PROOF, where,
			      "the device sent no receipt for what it stored: "
			      "%s", ld.text);
	else if (rc)
		rc = stn_fail(d, rc, ld.where, "receipt: %s", ld.text);
	else if (!tp_msg_complete(out))
		rc = stn_fail(d, STN_E_PROTOCOL, where,
			      "the receipt is not a signed record (no record "
			      "or no `sig` line)");
	else if (strlen(term) != sizeof(ok) - 1 + 64 ||
		 memcmp(term, ok, sizeof(ok) - 1) != 0 ||
		 strspn(term + sizeof(ok) - 1, "0123456789abcdef") != 64)
		rc = stn_fail(d, STN_E_PROTOCOL, where,
			      "the receipt ends with `%s`, not `ok sha256=` "
			      "and 64 hex digits", term);
	else
		memcpy(sha256_hex, term + sizeof(ok) - 1, 65);
out:
	free(buf);
	return rc;
}
