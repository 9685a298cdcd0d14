/* tests/test_dfu.c: the DFU 1.1 host state machine (transport/dfu.h)
 * against a scripted fake device on the control channel.  The fake keeps
 * the device states of DFU 1.1 section 6.1.2, logs every request, and
 * lets a test inject each fault a real device can show (a stall, dfuERROR
 * with a status, long busy, vanishing, odd answers), so every path of the
 * machine runs without hardware. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "station/base/error.h"
#include "transport/devmsg.h"
#include "transport/dfu.h"

struct logged {
	int in;
	uint8_t req;
	uint16_t value;
	size_t len;
	int timeout;
	uint64_t at; /* fake clock when the request was made */
};

struct fake {
	/* the device */
	uint8_t state, status;
	int tolerant;
	unsigned poll_ms;	/* bwPollTimeout while busy */
	unsigned busy_polls;	/* DNBUSY answers after each block */
	unsigned busy_left;
	unsigned blocks;	/* DNLOAD blocks taken */
	int stall_block;	/* -1: none; DNLOAD of this block stalls */
	int error_block;	/* -1: none; GETSTATUS after it: dfuERROR */
	uint8_t error_status;
	unsigned manifest_polls; /* dfuMANIFEST answers before the end */
	unsigned manifest_ms;
	int manifest_error;	 /* status at manifestation; 0: none */
	int manifest_gone;	 /* non-tolerant: leaves the bus at the end */
	int manifest_silent;	 /* non-tolerant: stops answering (timeout) */
	int gone_at;		 /* request number (from 1) that finds the
				    device gone; 0: never */
	int gone;
	int short_status;	 /* GETSTATUS answers 5 bytes */
	int odd_state_after_block; /* GETSTATUS after a block: dfuUPLOAD-IDLE */
	int stall_getstatus_once;
	/* station-info: what the device answers once a command (in mem)
	 * has manifested; NULL: the upload stays as set */
	const char *answer;
	/* memory */
	uint8_t *mem;
	size_t mem_len, mem_cap;
	const uint8_t *upload;
	size_t upload_len, upload_pos;
	/* the log */
	struct logged *log;
	size_t nlog, caplog;
	uint64_t clock;
	uint64_t slept;
	unsigned nsleeps;
	uint16_t *blocknums;
	size_t nblocknums, capblocknums;
};

static void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->state = TP_DFU_IDLE;
	f->tolerant = 1;
	f->stall_block = -1;
	f->error_block = -1;
}

static void fake_fini(struct fake *f)
{
	free(f->mem);
	free(f->log);
	free(f->blocknums);
}

static void grow(void **p, size_t *cap, size_t need, size_t each)
{
	if (need <= *cap)
		return;
	*cap = need * 2 + 16;
	*p = realloc(*p, *cap * each);
	assert_non_null(*p);
}

static int stall(struct fake *f, struct stn_diag *d)
{
	f->state = TP_DFU_ERROR;
	if (f->status == TP_DFU_OK)
		f->status = TP_DFU_ERR_STALLEDPKT;
	return stn_fail(d, STN_E_DEVICE, "fake", "pipe stalled");
}

static int fake_control(void *ctx, int in, uint8_t request, uint16_t value,
			void *buf, size_t len, size_t *got, int timeout_ms,
			struct stn_diag *d)
{
	struct fake *f = ctx;
	uint8_t *b = buf;

	f->clock += 1;
	if (f->gone || (f->gone_at && (int)f->nlog + 1 >= f->gone_at)) {
		f->gone = 1;
		return stn_fail(d, STN_E_NODEVICE, "fake", "no such device");
	}
	grow((void **)&f->log, &f->caplog, f->nlog + 1, sizeof(*f->log));
	f->log[f->nlog++] = (struct logged){in, request, value, len,
					    timeout_ms, f->clock};
	*got = 0;
	switch (request) {
	case TP_DFU_DNLOAD:
		if (f->state != TP_DFU_IDLE && f->state != TP_DFU_DNLOAD_IDLE)
			return stall(f, d);
		if (len == 0) {
			f->state = TP_DFU_MANIFEST_SYNC;
			return 0;
		}
		if ((int)f->blocks == f->stall_block) {
			f->status = TP_DFU_ERR_WRITE;
			return stall(f, d);
		}
		grow((void **)&f->blocknums, &f->capblocknums,
		     f->nblocknums + 1, sizeof(*f->blocknums));
		f->blocknums[f->nblocknums++] = value;
		grow((void **)&f->mem, &f->mem_cap, f->mem_len + len, 1);
		memcpy(f->mem + f->mem_len, buf, len);
		f->mem_len += len;
		f->blocks++;
		f->busy_left = f->busy_polls;
		f->state = TP_DFU_DNLOAD_SYNC;
		*got = len;
		return 0;
	case TP_DFU_GETSTATUS: {
		uint8_t report, status;
		unsigned poll = 0;

		if (f->stall_getstatus_once) {
			f->stall_getstatus_once = 0;
			return stn_fail(d, STN_E_DEVICE, "fake", "stall");
		}
		if (f->state == TP_DFU_DNLOAD_SYNC) {
			if ((int)f->blocks - 1 == f->error_block) {
				f->state = TP_DFU_ERROR;
				f->status = f->error_status;
			} else if (f->busy_left) {
				f->busy_left--;
				report = TP_DFU_DNBUSY;
				poll = f->poll_ms;
				goto answer;
			} else if (f->odd_state_after_block) {
				f->state = TP_DFU_UPLOAD_IDLE;
			} else {
				f->state = TP_DFU_DNLOAD_IDLE;
			}
		} else if (f->state == TP_DFU_MANIFEST_SYNC ||
			   f->state == TP_DFU_MANIFEST) {
			if (f->manifest_error) {
				f->state = TP_DFU_ERROR;
				f->status = (uint8_t)f->manifest_error;
			} else if (f->manifest_polls) {
				f->manifest_polls--;
				f->state = TP_DFU_MANIFEST;
				report = TP_DFU_MANIFEST;
				poll = f->manifest_ms;
				goto answer;
			} else if (f->tolerant) {
				f->state = TP_DFU_IDLE;
				if (f->answer) {
					f->upload = (const uint8_t *)f->answer;
					f->upload_len = strlen(f->answer);
				}
			} else if (f->manifest_gone) {
				f->gone = 1;
				return stn_fail(d, STN_E_NODEVICE, "fake",
						"no such device");
			} else if (f->manifest_silent) {
				return stn_fail(d, STN_E_TIMEOUT, "fake",
						"timed out");
			} else {
				f->state = TP_DFU_MANIFEST_WAIT_RESET;
			}
		}
		report = f->state;
	answer:
		status = f->status;
		if (len < 6)
			return stall(f, d);
		b[0] = status;
		b[1] = (uint8_t)poll;
		b[2] = (uint8_t)(poll >> 8);
		b[3] = (uint8_t)(poll >> 16);
		b[4] = report;
		b[5] = 0;
		*got = f->short_status ? 5 : 6;
		return 0;
	}
	case TP_DFU_CLRSTATUS:
		if (f->state != TP_DFU_ERROR)
			return stall(f, d);
		f->state = TP_DFU_IDLE;
		f->status = TP_DFU_OK;
		return 0;
	case TP_DFU_ABORT:
		switch (f->state) {
		case TP_DFU_IDLE:
		case TP_DFU_DNLOAD_SYNC:
		case TP_DFU_DNLOAD_IDLE:
		case TP_DFU_MANIFEST_SYNC:
		case TP_DFU_UPLOAD_IDLE:
			f->state = TP_DFU_IDLE;
			return 0;
		default:
			return stall(f, d);
		}
	case TP_DFU_UPLOAD: {
		size_t n;

		if (f->state != TP_DFU_IDLE && f->state != TP_DFU_UPLOAD_IDLE)
			return stall(f, d);
		if (f->state == TP_DFU_IDLE)
			f->upload_pos = 0;
		n = f->upload_len - f->upload_pos;
		if (n > len)
			n = len;
		memcpy(buf, f->upload + f->upload_pos, n);
		f->upload_pos += n;
		f->state = n < len ? TP_DFU_IDLE : TP_DFU_UPLOAD_IDLE;
		*got = n;
		return 0;
	}
	case TP_DFU_GETSTATE:
		b[0] = f->state;
		*got = 1;
		return 0;
	case TP_DFU_DETACH:
		if (f->state != TP_DFU_APP_IDLE)
			return stall(f, d);
		f->state = TP_DFU_APP_DETACH;
		return 0;
	default:
		return stall(f, d);
	}
}

static void fake_sleep(void *ctx, unsigned ms)
{
	struct fake *f = ctx;

	f->clock += ms;
	f->slept += ms;
	f->nsleeps++;
}

static uint64_t fake_now(void *ctx)
{
	return ((struct fake *)ctx)->clock;
}

/* An in-memory image source. */
struct mem_src {
	const uint8_t *p;
	size_t len, pos;
	size_t chunk; /* at most this much a read (0: any) */
	struct fake *clock; /* when set, each read costs read_ms of it */
	unsigned read_ms;
};

static int mem_read(void *ctx, void *buf, size_t len, size_t *got)
{
	struct mem_src *m = ctx;
	size_t n = m->len - m->pos;

	if (n > len)
		n = len;
	if (m->chunk && n > m->chunk)
		n = m->chunk;
	memcpy(buf, m->p + m->pos, n);
	m->pos += n;
	*got = n;
	if (m->clock)
		m->clock->clock += m->read_ms;
	return 0;
}

struct mem_sink {
	uint8_t *p;
	size_t len, cap;
};

static int sink_write(void *ctx, const void *buf, size_t len)
{
	struct mem_sink *s = ctx;

	grow((void **)&s->p, &s->cap, s->len + len, 1);
	memcpy(s->p + s->len, buf, len);
	s->len += len;
	return 0;
}

static uint8_t *pattern(size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + (i >> 8));
	return p;
}

static const struct tp_dfu_func func_tolerant = {
	.attributes = TP_DFU_CAN_DNLOAD | TP_DFU_CAN_UPLOAD |
		      TP_DFU_MANIFEST_TOLERANT,
	.detach_ms = 1000,
	.transfer_size = 1024,
	.version = 0x0110,
};

static struct tp_dfu *open_dfu(struct fake *f, const struct tp_dfu_func *fn,
			       const struct tp_dfu_opts *o)
{
	struct tp_dfu_io io = {fake_control, fake_sleep, fake_now, f};
	struct tp_dfu *dfu = NULL;
	struct stn_diag d;

	stn_diag_init(&d);
	assert_int_equal(tp_dfu_new(&io, fn, "usb:SN-T1", o, &dfu, &d), 0);
	return dfu;
}

static int download(struct tp_dfu *dfu, const uint8_t *img, size_t len,
		    uint64_t size, enum tp_dfu_manifest *how,
		    struct stn_diag *d)
{
	struct mem_src m = {img, len, 0, 0, NULL, 0};
	struct tp_source src = {mem_read, &m};

	stn_diag_init(d);
	return tp_dfu_download(dfu, &src, size, NULL, how, d);
}

static size_t count_req(const struct fake *f, uint8_t req)
{
	size_t n = 0;

	for (size_t i = 0; i < f->nlog; i++)
		n += f->log[i].req == req;
	return n;
}

/* ---- the functional descriptor ---------------------------------------- */

static void func_parse_reads_a_dfu_1_1_descriptor(void **state)
{
	const uint8_t desc[9] = {9, 0x21, 0x0b, 0xe8, 0x03, 0x00, 0x08, 0x10,
				 0x01};
	struct tp_dfu_func f;
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_func_parse(desc, 9, "dev", &f, &d), 0);
	assert_int_equal(f.attributes, 0x0b);
	assert_int_equal(f.detach_ms, 1000);
	assert_int_equal(f.transfer_size, 2048);
	assert_int_equal(f.version, 0x0110);
}

static void func_parse_takes_a_dfu_1_0_descriptor_without_version(void **state)
{
	const uint8_t desc[7] = {7, 0x21, 0x01, 0xff, 0x00, 0x40, 0x00};
	struct tp_dfu_func f;
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_func_parse(desc, 7, "dev", &f, &d), 0);
	assert_int_equal(f.transfer_size, 64);
	assert_int_equal(f.version, 0x0100);
}

static void func_parse_refuses_short_wrong_type_and_zero_block_size(
	void **state)
{
	const uint8_t shortd[5] = {5, 0x21, 1, 0, 0};
	const uint8_t wrong[9] = {9, 0x24, 1, 0, 0, 0, 4, 0x10, 1};
	const uint8_t zero[9] = {9, 0x21, 1, 0, 0, 0, 0, 0x10, 1};
	struct tp_dfu_func f;
	struct stn_diag d;

	(void)state;
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_func_parse(shortd, 5, "dev", &f, &d),
			 STN_E_PROTOCOL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_func_parse(wrong, 9, "dev", &f, &d),
			 STN_E_PROTOCOL);
	assert_non_null(strstr(d.text, "type 0x24"));
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_func_parse(zero, 9, "dev", &f, &d),
			 STN_E_PROTOCOL);
	assert_non_null(strstr(d.text, "wTransferSize 0"));
	assert_string_equal(d.where, "dev");
}

static void transfer_size_is_capped_at_4096(void **state)
{
	struct tp_dfu_func fn = func_tolerant;
	struct tp_dfu_opts o = {.transfer_size = 65535};
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	fn.transfer_size = 65535;
	dfu = open_dfu(&f, &fn, NULL);
	assert_int_equal(tp_dfu_transfer_size(dfu), 4096);
	tp_dfu_free(dfu);
	dfu = open_dfu(&f, &func_tolerant, &o);
	assert_int_equal(tp_dfu_transfer_size(dfu), 4096);
	tp_dfu_free(dfu);
	fake_fini(&f);
}

/* ---- download --------------------------------------------------------- */

static void download_sends_blocks_from_zero_each_followed_by_getstatus(
	void **state)
{
	size_t len = 3 * 1024 + 100;
	uint8_t *img = pattern(len);
	enum tp_dfu_manifest how = 99;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	dfu = open_dfu(&f, &func_tolerant, NULL);
	assert_int_equal(download(dfu, img, len, len, &how, &d), 0);
	assert_int_equal(how, TP_DFU_MANIFEST_DONE_IDLE);
	assert_int_equal(f.mem_len, len);
	assert_memory_equal(f.mem, img, len);
	/* DNLOAD 0, GETSTATUS, DNLOAD 1, GETSTATUS, ... DNLOAD 4 (empty),
	 * GETSTATUS -> dfuIDLE. */
	assert_int_equal(f.nlog, 10);
	for (unsigned b = 0; b < 4; b++) {
		assert_int_equal(f.log[2 * b].req, TP_DFU_DNLOAD);
		assert_int_equal(f.log[2 * b].value, b);
		assert_int_equal(f.log[2 * b].len, b < 3 ? 1024 : 100);
		assert_int_equal(f.log[2 * b + 1].req, TP_DFU_GETSTATUS);
	}
	assert_int_equal(f.log[8].req, TP_DFU_DNLOAD);
	assert_int_equal(f.log[8].len, 0);
	assert_int_equal(f.log[8].value, 4);
	assert_int_equal(f.nsleeps, 0);
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(img);
}

static void download_takes_a_source_that_gives_bytes_in_small_pieces(
	void **state)
{
	size_t len = 5000;
	uint8_t *img = pattern(len);
	struct mem_src m = {img, len, 0, 7, NULL, 0};
	struct tp_source src = {mem_read, &m};
	enum tp_dfu_manifest how;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	dfu = open_dfu(&f, &func_tolerant, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_download(dfu, &src, len, NULL, &how, &d), 0);
	assert_int_equal(f.nblocknums, 5);
	assert_int_equal(f.log[0].len, 1024); /* blocks are always full */
	assert_memory_equal(f.mem, img, len);
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(img);
}

static void block_numbers_wrap_after_65535(void **state)
{
	struct tp_dfu_func fn = func_tolerant;
	size_t len = 65536 + 3;
	uint8_t *img = pattern(len);
	enum tp_dfu_manifest how;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	fn.transfer_size = 1;
	dfu = open_dfu(&f, &fn, NULL);
	assert_int_equal(download(dfu, img, len, len, &how, &d), 0);
	assert_int_equal(f.nblocknums, len);
	assert_int_equal(f.blocknums[0], 0);
	assert_int_equal(f.blocknums[65535], 65535);
	assert_int_equal(f.blocknums[65536], 0);
	assert_int_equal(f.blocknums[65538], 2);
	/* The zero-length DNLOAD carries the next number, 3. */
	assert_int_equal(f.log[f.nlog - 2].len, 0);
	assert_int_equal(f.log[f.nlog - 2].value, 3);
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(img);
}

static void download_waits_exactly_bw_poll_timeout_while_busy(void **state)
{
	size_t len = 4 * 1024;
	uint8_t *img = pattern(len);
	enum tp_dfu_manifest how;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;
	struct tp_dfu_stats st;

	(void)state;
	fake_init(&f);
	f.poll_ms = 37;
	f.busy_polls = 2;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	assert_int_equal(download(dfu, img, len, len, &how, &d), 0);
	/* Two busy answers a block, each waited out exactly once. */
	assert_int_equal(f.nsleeps, 8);
	assert_int_equal(f.slept, 8 * 37);
	/* No request reached the device before the timeout it asked for had
	 * passed: each GETSTATUS after a busy one is 37 ms later. */
	for (size_t i = 1; i < f.nlog; i++)
		if (f.log[i].req == TP_DFU_GETSTATUS &&
		    f.log[i - 1].req == TP_DFU_GETSTATUS)
			assert_true(f.log[i].at - f.log[i - 1].at >= 37);
	tp_dfu_stats(dfu, &st);
	assert_int_equal(st.slept_ms, 8 * 37);
	assert_int_equal(st.blocks, 4);
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(img);
}

static void the_next_block_is_read_while_the_device_is_busy(void **state)
{
	size_t len = 4 * 1024;
	uint8_t *img = pattern(len);
	enum tp_dfu_manifest how;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.poll_ms = 37;
	f.busy_polls = 1;
	struct mem_src m = {img, len, 0, 0, &f, 10};
	struct tp_source src = {mem_read, &m};
	dfu = open_dfu(&f, &func_tolerant, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_download(dfu, &src, len, NULL, &how, &d), 0);
	assert_memory_equal(f.mem, img, len);
	/* Blocks 0-2: the 10 ms read of the next block counts towards the
	 * 37 ms wait; block 3 has no next block. */
	assert_int_equal(f.slept, 3 * 27 + 37);
	for (size_t i = 1; i < f.nlog; i++)
		if (f.log[i].req == TP_DFU_GETSTATUS &&
		    f.log[i - 1].req == TP_DFU_GETSTATUS)
			assert_true(f.log[i].at - f.log[i - 1].at >= 37);
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(img);
}

static void download_gives_up_when_busy_longer_than_allowed(void **state)
{
	struct tp_dfu_opts o = {.busy_max_ms = 1000};
	uint8_t *img = pattern(2048);
	enum tp_dfu_manifest how;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.poll_ms = 400;
	f.busy_polls = 100;
	dfu = open_dfu(&f, &func_tolerant, &o);
	assert_int_equal(download(dfu, img, 2048, 2048, &how, &d),
			 STN_E_TIMEOUT);
	assert_non_null(strstr(d.text, "block 0 (offset 0): busy for more "
				       "than 1000 ms"));
	assert_string_equal(d.where, "usb:SN-T1");
	assert_true(f.slept <= 1000);
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(img);
}

static void control_requests_carry_the_configured_timeout(void **state)
{
	struct tp_dfu_opts o = {.timeout_ms = 12345};
	uint8_t *img = pattern(100);
	enum tp_dfu_manifest how;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	dfu = open_dfu(&f, &func_tolerant, &o);
	assert_int_equal(download(dfu, img, 100, 100, &how, &d), 0);
	for (size_t i = 0; i < f.nlog; i++)
		assert_int_equal(f.log[i].timeout, 12345);
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(img);
}

static void a_stalled_block_names_block_and_status_and_clears_the_error(
	void **state)
{
	uint8_t *img = pattern(8192);
	enum tp_dfu_manifest how;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.stall_block = 3;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	assert_int_equal(download(dfu, img, 8192, 8192, &how, &d),
			 STN_E_DEVICE);
	assert_string_equal(d.where, "usb:SN-T1");
	assert_non_null(strstr(d.text, "block 3 (offset 3072): the device "
				       "refused it: status errWRITE (3), "
				       "state dfuERROR"));
	/* CLRSTATUS left the device ready for the next session. */
	assert_int_equal(f.log[f.nlog - 1].req, TP_DFU_CLRSTATUS);
	assert_int_equal(f.state, TP_DFU_IDLE);
	assert_int_equal(count_req(&f, TP_DFU_DNLOAD), 4);
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(img);
}

static void dfu_error_after_a_block_is_reported_with_its_status(void **state)
{
	uint8_t *img = pattern(4096);
	enum tp_dfu_manifest how;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.error_block = 1;
	f.error_status = TP_DFU_ERR_ADDRESS;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	assert_int_equal(download(dfu, img, 4096, 4096, &how, &d),
			 STN_E_DEVICE);
	assert_non_null(strstr(d.text, "block 1 (offset 1024): the device "
				       "refused it: status errADDRESS"));
	assert_int_equal(f.state, TP_DFU_IDLE);
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(img);
}

static void a_device_that_vanishes_mid_transfer_is_no_device(void **state)
{
	uint8_t *img = pattern(8192);
	enum tp_dfu_manifest how;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.gone_at = 7; /* DNLOAD of block 3 */
	dfu = open_dfu(&f, &func_tolerant, NULL);
	assert_int_equal(download(dfu, img, 8192, 8192, &how, &d),
			 STN_E_NODEVICE);
	assert_non_null(strstr(d.text, "block 3 (offset 3072): DNLOAD: no "
				       "such device"));
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(img);
}

static void an_unexpected_state_after_a_block_is_a_protocol_error(
	void **state)
{
	uint8_t *img = pattern(100);
	enum tp_dfu_manifest how;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.odd_state_after_block = 1;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	assert_int_equal(download(dfu, img, 100, 100, &how, &d),
			 STN_E_PROTOCOL);
	assert_non_null(strstr(d.text, "after DNLOAD the device is in "
				       "dfuUPLOAD-IDLE"));
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(img);
}

static void a_short_getstatus_answer_is_a_protocol_error(void **state)
{
	struct tp_dfu_status st;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.short_status = 1;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_get_status(dfu, &st, &d), STN_E_PROTOCOL);
	assert_non_null(strstr(d.text, "GETSTATUS answered 5 bytes"));
	tp_dfu_free(dfu);
	fake_fini(&f);
}

static void download_refuses_a_source_shorter_or_longer_than_the_size(
	void **state)
{
	uint8_t *img = pattern(3000);
	enum tp_dfu_manifest how;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	dfu = open_dfu(&f, &func_tolerant, NULL);
	assert_int_equal(download(dfu, img, 2000, 3000, &how, &d), STN_E_IO);
	assert_non_null(strstr(d.text, "ended after 2000 of 3000 bytes"));
	/* Never ended: no zero-length DNLOAD, so nothing manifests. */
	for (size_t i = 0; i < f.nlog; i++)
		assert_false(f.log[i].req == TP_DFU_DNLOAD && f.log[i].len == 0);
	tp_dfu_free(dfu);
	fake_fini(&f);

	fake_init(&f);
	dfu = open_dfu(&f, &func_tolerant, NULL);
	assert_int_equal(download(dfu, img, 3000, 2048, &how, &d), STN_E_IO);
	assert_non_null(strstr(d.text, "longer than 2048 bytes"));
	for (size_t i = 0; i < f.nlog; i++)
		assert_false(f.log[i].req == TP_DFU_DNLOAD && f.log[i].len == 0);
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(img);
}

static void download_is_refused_when_the_device_cannot_download(void **state)
{
	struct tp_dfu_func fn = func_tolerant;
	uint8_t img[10] = {0};
	enum tp_dfu_manifest how;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	fn.attributes = TP_DFU_CAN_UPLOAD;
	dfu = open_dfu(&f, &fn, NULL);
	assert_int_equal(download(dfu, img, 10, 10, &how, &d), STN_E_USAGE);
	assert_non_null(strstr(d.text, "bitCanDnload is 0"));
	assert_int_equal(f.nlog, 0);
	tp_dfu_free(dfu);
	fake_fini(&f);
}

/* ---- manifestation ---------------------------------------------------- */

static void a_tolerant_device_manifests_back_to_idle(void **state)
{
	uint8_t *img = pattern(100);
	enum tp_dfu_manifest how = 99;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.manifest_polls = 3;
	f.manifest_ms = 250;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	assert_int_equal(download(dfu, img, 100, 100, &how, &d), 0);
	assert_int_equal(how, TP_DFU_MANIFEST_DONE_IDLE);
	assert_int_equal(f.slept, 750);
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(img);
}

static void a_device_that_is_not_tolerant_ends_waiting_for_reset(
	void **state)
{
	struct tp_dfu_func fn = func_tolerant;
	uint8_t *img = pattern(100);
	enum tp_dfu_manifest how = 99;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.tolerant = 0;
	f.manifest_polls = 1;
	f.manifest_ms = 10;
	fn.attributes &= (uint8_t)~TP_DFU_MANIFEST_TOLERANT;
	dfu = open_dfu(&f, &fn, NULL);
	assert_int_equal(download(dfu, img, 100, 100, &how, &d), 0);
	assert_int_equal(how, TP_DFU_MANIFEST_DONE_RESET);
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(img);
}

static void a_device_that_is_not_tolerant_may_go_silent_or_leave(
	void **state)
{
	struct tp_dfu_func fn = func_tolerant;
	uint8_t *img = pattern(100);
	enum tp_dfu_manifest how = 99;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fn.attributes &= (uint8_t)~TP_DFU_MANIFEST_TOLERANT;
	fake_init(&f);
	f.tolerant = 0;
	f.manifest_polls = 1;
	f.manifest_gone = 1;
	dfu = open_dfu(&f, &fn, NULL);
	assert_int_equal(download(dfu, img, 100, 100, &how, &d), 0);
	assert_int_equal(how, TP_DFU_MANIFEST_DONE_GONE);
	tp_dfu_free(dfu);
	fake_fini(&f);

	fake_init(&f);
	f.tolerant = 0;
	f.manifest_polls = 1;
	f.manifest_silent = 1;
	dfu = open_dfu(&f, &fn, NULL);
	assert_int_equal(download(dfu, img, 100, 100, &how, &d), 0);
	assert_int_equal(how, TP_DFU_MANIFEST_DONE_RESET);
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(img);
}

static void a_tolerant_device_that_vanishes_while_manifesting_fails(
	void **state)
{
	uint8_t *img = pattern(100);
	enum tp_dfu_manifest how;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.gone_at = 5; /* DNLOAD 0, GETSTATUS, DNLOAD end, GETSTATUS, gone */
	f.manifest_polls = 2;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	assert_int_equal(download(dfu, img, 100, 100, &how, &d),
			 STN_E_NODEVICE);
	assert_non_null(strstr(d.text, "manifestation tolerant"));
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(img);
}

static void err_verify_at_manifestation_is_a_verify_failure(void **state)
{
	uint8_t *img = pattern(100);
	enum tp_dfu_manifest how;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.manifest_error = TP_DFU_ERR_VERIFY;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	assert_int_equal(download(dfu, img, 100, 100, &how, &d),
			 STN_E_VERIFY_DEVICE);
	assert_non_null(strstr(d.text, "manifestation: the device refused "
				       "it: status errVERIFY (7)"));
	assert_int_equal(f.state, TP_DFU_IDLE); /* cleared */
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(img);
}

static void manifestation_that_never_ends_times_out(void **state)
{
	struct tp_dfu_opts o = {.manifest_max_ms = 5000};
	uint8_t *img = pattern(100);
	enum tp_dfu_manifest how;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.manifest_polls = 1000;
	f.manifest_ms = 1000;
	dfu = open_dfu(&f, &func_tolerant, &o);
	assert_int_equal(download(dfu, img, 100, 100, &how, &d),
			 STN_E_TIMEOUT);
	assert_non_null(strstr(d.text, "manifestation took more than 5000"));
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(img);
}

/* ---- recovery at start ------------------------------------------------ */

static void ready_clears_dfu_error_with_clrstatus(void **state)
{
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.state = TP_DFU_ERROR;
	f.status = TP_DFU_ERR_WRITE;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_ready(dfu, &d), 0);
	assert_int_equal(f.log[1].req, TP_DFU_CLRSTATUS);
	assert_int_equal(f.state, TP_DFU_IDLE);
	tp_dfu_free(dfu);
	fake_fini(&f);
}

static void ready_aborts_an_interrupted_download_or_upload(void **state)
{
	const uint8_t stale[] = {TP_DFU_DNLOAD_IDLE, TP_DFU_UPLOAD_IDLE,
				 TP_DFU_DNLOAD_SYNC, TP_DFU_MANIFEST_SYNC};

	(void)state;
	for (size_t i = 0; i < sizeof(stale); i++) {
		struct stn_diag d;
		struct fake f;
		struct tp_dfu *dfu;

		fake_init(&f);
		f.state = stale[i];
		f.manifest_polls = 0;
		dfu = open_dfu(&f, &func_tolerant, NULL);
		stn_diag_init(&d);
		assert_int_equal(tp_dfu_ready(dfu, &d), 0);
		assert_int_equal(f.state, TP_DFU_IDLE);
		if (stale[i] == TP_DFU_DNLOAD_IDLE ||
		    stale[i] == TP_DFU_UPLOAD_IDLE)
			assert_int_equal(count_req(&f, TP_DFU_ABORT), 1);
		tp_dfu_free(dfu);
		fake_fini(&f);
	}
}

static void ready_clears_a_device_that_stalls_getstatus(void **state)
{
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.state = TP_DFU_ERROR;
	f.stall_getstatus_once = 1;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_ready(dfu, &d), 0);
	assert_int_equal(f.state, TP_DFU_IDLE);
	tp_dfu_free(dfu);
	fake_fini(&f);
}

static void ready_refuses_run_time_mode_and_a_device_awaiting_reset(
	void **state)
{
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.state = TP_DFU_APP_IDLE;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_ready(dfu, &d), STN_E_DEVICE);
	assert_non_null(strstr(d.text, "run-time mode (appIDLE)"));
	tp_dfu_free(dfu);
	fake_fini(&f);

	fake_init(&f);
	f.state = TP_DFU_MANIFEST_WAIT_RESET;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_ready(dfu, &d), STN_E_DEVICE);
	assert_non_null(strstr(d.text, "dfuMANIFEST-WAIT-RESET"));
	tp_dfu_free(dfu);
	fake_fini(&f);
}

/* A device that reports a state DFU 1.1 does not have: protocol error;
 * one that keeps reporting an error it will not clear: a device error. */
static int sticky_control(void *ctx, int in, uint8_t request, uint16_t value,
			  void *buf, size_t len, size_t *got, int timeout_ms,
			  struct stn_diag *d)
{
	uint8_t *b = buf;
	int *mode = ctx;

	(void)in, (void)value, (void)timeout_ms, (void)d;
	*got = 0;
	if (request == TP_DFU_GETSTATUS && len >= 6) {
		memset(b, 0, 6);
		b[0] = TP_DFU_ERR_ERASE;
		b[4] = *mode ? 42 : TP_DFU_ERROR;
		*got = 6;
	}
	return 0;
}

static void ready_gives_up_on_a_state_that_never_settles(void **state)
{
	int mode = 0;
	struct tp_dfu_io io = {sticky_control, fake_sleep, NULL, NULL};
	struct tp_dfu *dfu;
	struct stn_diag d;

	(void)state;
	io.ctx = &mode;
	io.sleep_ms = NULL;
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_new(&io, &func_tolerant, "usb:X", NULL, &dfu,
				    &d), 0);
	assert_int_equal(tp_dfu_ready(dfu, &d), STN_E_DEVICE);
	assert_non_null(strstr(d.text, "did not reach dfuIDLE: still in "
				       "dfuERROR, status errERASE"));
	mode = 1;
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_ready(dfu, &d), STN_E_PROTOCOL);
	assert_non_null(strstr(d.text, "state 42"));
	tp_dfu_free(dfu);
}

static void ready_waits_out_a_busy_device(void **state)
{
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.state = TP_DFU_DNLOAD_SYNC;
	f.busy_left = 2;
	f.poll_ms = 50;
	f.blocks = 1;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_ready(dfu, &d), 0);
	/* dfuDNBUSY twice, each waited out by its bwPollTimeout; then the
	 * block completes (dfuDNLOAD-IDLE) and is abandoned with ABORT. */
	assert_int_equal(f.slept, 100);
	assert_int_equal(count_req(&f, TP_DFU_ABORT), 1);
	assert_int_equal(f.state, TP_DFU_IDLE);
	tp_dfu_free(dfu);
	fake_fini(&f);
}

/* ---- detach and upload ------------------------------------------------ */

static void detach_sends_the_device_timeout_capped(void **state)
{
	struct tp_dfu_func fn = func_tolerant;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.state = TP_DFU_APP_IDLE;
	fn.detach_ms = 60000;
	dfu = open_dfu(&f, &fn, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_detach(dfu, &d), 0);
	assert_int_equal(f.log[0].req, TP_DFU_DETACH);
	assert_int_equal(f.log[0].value, 5000);
	assert_int_equal(f.state, TP_DFU_APP_DETACH);
	tp_dfu_free(dfu);
	fake_fini(&f);
}

static void upload_reads_until_the_device_sends_a_short_block(void **state)
{
	size_t len = 2500;
	uint8_t *img = pattern(len);
	struct mem_sink s = {0};
	struct tp_sink sink = {sink_write, &s};
	uint64_t got = 0;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.upload = img;
	f.upload_len = len;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_upload(dfu, 1 << 20, &sink, &got, NULL, &d),
			 0);
	assert_int_equal(got, len);
	assert_memory_equal(s.p, img, len);
	assert_int_equal(f.nlog, 3); /* 1024, 1024, 452 */
	assert_int_equal(f.log[2].value, 2);
	assert_int_equal(f.state, TP_DFU_IDLE);
	assert_int_equal(count_req(&f, TP_DFU_ABORT), 0);
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(s.p);
	free(img);
}

static void upload_stops_at_the_size_asked_and_aborts(void **state)
{
	size_t len = 8192;
	uint8_t *img = pattern(len);
	struct mem_sink s = {0};
	struct tp_sink sink = {sink_write, &s};
	uint64_t got = 0;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.upload = img;
	f.upload_len = len;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_upload(dfu, 3000, &sink, &got, NULL, &d), 0);
	assert_int_equal(got, 3000);
	assert_int_equal(s.len, 3000);
	assert_memory_equal(s.p, img, 3000);
	assert_int_equal(f.log[f.nlog - 1].req, TP_DFU_ABORT);
	assert_int_equal(f.state, TP_DFU_IDLE);
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(s.p);
	free(img);
}

static void upload_is_refused_when_the_device_cannot_upload(void **state)
{
	struct tp_dfu_func fn = func_tolerant;
	struct mem_sink s = {0};
	struct tp_sink sink = {sink_write, &s};
	uint64_t got;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	fn.attributes = TP_DFU_CAN_DNLOAD;
	dfu = open_dfu(&f, &fn, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_upload(dfu, 10, &sink, &got, NULL, &d),
			 STN_E_USAGE);
	assert_non_null(strstr(d.text, "bitCanUpload is 0"));
	tp_dfu_free(dfu);
	fake_fini(&f);
}

static void an_upload_the_device_refuses_is_reported(void **state)
{
	struct mem_sink s = {0};
	struct tp_sink sink = {sink_write, &s};
	uint64_t got;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.state = TP_DFU_DNLOAD_IDLE; /* UPLOAD is not allowed here */
	dfu = open_dfu(&f, &func_tolerant, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_upload(dfu, 10, &sink, &got, NULL, &d),
			 STN_E_DEVICE);
	assert_non_null(strstr(d.text, "upload block 0 (offset 0): the "
				       "device refused it: status "
				       "errSTALLEDPKT"));
	tp_dfu_free(dfu);
	fake_fini(&f);
}

static void names_of_states_and_statuses_follow_the_spec(void **state)
{
	(void)state;
	assert_string_equal(tp_dfu_state_name(TP_DFU_DNBUSY), "dfuDNBUSY");
	assert_string_equal(tp_dfu_state_name(10), "dfuERROR");
	assert_string_equal(tp_dfu_state_name(11), "unknown state");
	assert_string_equal(tp_dfu_status_name(TP_DFU_ERR_CHECK_ERASED),
			    "errCHECK_ERASED");
	assert_string_equal(tp_dfu_status_name(16), "unknown status");
}

/* ---- the station-info setting: attest, authorize, receipts ---- */

static const uint8_t nonce32[32] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
	0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5,
	0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff};

static const char attest_answer[] =
	"format = station-attest-1\nmodel = TX-200\nserial = SN-0001\n"
	"nonce = 000102030405060708090a0b0c0d0e0ff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff\n"
	"challenge = 1111111111111111111111111111111111111111111111111111111111111111\n"
	"sig AQID\ncert BAUG\ncert BwgJ\nok\n";

/* The requests made, as a string of letters: D DNLOAD with data, Z the
 * zero-length DNLOAD, S GETSTATUS, U UPLOAD, A ABORT, C CLRSTATUS. */
static void request_letters(const struct fake *f, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < f->nlog && o + 1 < cap; i++) {
		const struct logged *l = &f->log[i];
		char c = '?';

		switch (l->req) {
		case TP_DFU_DNLOAD: c = l->len ? 'D' : 'Z'; break;
		case TP_DFU_GETSTATUS: c = 'S'; break;
		case TP_DFU_UPLOAD: c = 'U'; break;
		case TP_DFU_ABORT: c = 'A'; break;
		case TP_DFU_CLRSTATUS: c = 'C'; break;
		}
		out[o++] = c;
	}
	out[o] = '\0';
}

static struct tp_signed_msg *new_msg(void)
{
	struct tp_signed_msg *m = malloc(sizeof(*m));

	assert_non_null(m);
	tp_msg_init(m);
	return m;
}

static void attest_downloads_the_nonce_then_uploads_the_signed_answer(
	void **state)
{
	struct tp_signed_msg *m = new_msg();
	char seq[64];
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.answer = attest_answer;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_attest(dfu, nonce32, m, &d), 0);
	/* One download (the command in one block, then the zero-length end
	 * and manifestation back to dfuIDLE), then one upload. */
	assert_int_equal(f.mem_len, 72);
	assert_memory_equal(f.mem,
			    "attest 000102030405060708090a0b0c0d0e0f"
			    "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff\n", 72);
	request_letters(&f, seq, sizeof(seq));
	assert_string_equal(seq, "SDSZSU");
	assert_true(tp_msg_complete(m));
	assert_int_equal(m->nlines, 5);
	assert_int_equal(m->sig_len, 3);
	assert_int_equal(m->ncerts, 2);
	assert_memory_equal(m->cert[1], "\x07\x08\x09", 3);
	assert_non_null(strstr(m->record, "serial = SN-0001\n"));
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(m);
}

static void attest_answered_with_error_is_a_device_without_attestation(
	void **state)
{
	struct tp_signed_msg *m = new_msg();
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.answer = "error no device key\n";
	dfu = open_dfu(&f, &func_tolerant, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_attest(dfu, nonce32, m, &d), STN_E_NOATTEST);
	assert_non_null(strstr(d.text, "cannot attest"));
	assert_non_null(strstr(d.text, "no device key"));
	assert_non_null(strstr(d.where, "station-info"));
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(m);
}

static void attest_refused_by_a_read_only_station_info_is_no_attestation(
	void **state)
{
	struct tp_signed_msg *m = new_msg();
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f); /* a setting that predates attestation: it stalls */
	f.stall_block = 0;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_attest(dfu, nonce32, m, &d), STN_E_NOATTEST);
	assert_non_null(strstr(d.text, "takes no attest command"));
	assert_non_null(strstr(d.text, "errWRITE"));
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(m);
}

static void attest_answers_that_are_not_signed_records_are_protocol_errors(
	void **state)
{
	static const char *const bad[] = {
		"format = station-attest-1\nserial = SN-0001\nok\n", /* no sig */
		"format = station-attest-1\nsig AQID\n",     /* no `ok` */
		"format = station-device-1\nserial = SN-0001\n", /* identity */
		"format = station-attest-1\nsig AQJ=\nok\n", /* sloppy b64 */
	};
	struct tp_signed_msg *m = new_msg();

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct stn_diag d;
		struct fake f;
		struct tp_dfu *dfu;

		fake_init(&f);
		f.answer = bad[i];
		dfu = open_dfu(&f, &func_tolerant, NULL);
		stn_diag_init(&d);
		assert_int_equal(tp_dfu_attest(dfu, nonce32, m, &d),
				 STN_E_PROTOCOL);
		tp_dfu_free(dfu);
		fake_fini(&f);
	}
	free(m);
}

/* An authorization as the station makes it: record, sig, two
 * certificates of 900 bytes (base64 1200 each): over one 1024-byte block. */
static struct tp_signed_msg *authz_msg(void)
{
	static const char rec[] =
		"format = station-install-1\nstation = STN-0042\n"
		"device = SN-0001\n";
	struct tp_signed_msg *m = new_msg();

	memcpy(m->record, rec, sizeof(rec));
	m->record_len = sizeof(rec) - 1;
	m->nlines = 3;
	m->has_sig = 1;
	m->sig_len = 70;
	memset(m->sig, 0x30, m->sig_len);
	m->ncerts = 2;
	for (int i = 0; i < 2; i++) {
		m->cert_len[i] = 900;
		memset(m->cert[i], 0x41 + i, 900);
	}
	return m;
}

static void authorize_sends_the_block_over_several_dnloads_and_takes_ok(
	void **state)
{
	struct tp_signed_msg *m = authz_msg();
	char *lines = NULL, *want;
	size_t n = 0;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.answer = "ok\n";
	dfu = open_dfu(&f, &func_tolerant, NULL); /* 1024-byte blocks */
	stn_diag_init(&d);
	if (tp_dfu_authorize(dfu, m, &d) != 0)
		fail_msg("%s: %s", d.where, d.text);
	assert_int_equal(tp_msg_format(m, "\n", &lines, &n, &d), 0);
	want = malloc(n + 20);
	assert_non_null(want);
	snprintf(want, n + 20, "authorize\n%send\n", lines);
	assert_int_equal(f.mem_len, strlen(want));
	assert_memory_equal(f.mem, want, f.mem_len);
	assert_int_equal(f.blocks, (f.mem_len + 1023) / 1024);
	assert_true(f.blocks >= 3);
	for (size_t i = 0; i < f.nblocknums; i++)
		assert_int_equal(f.blocknums[i], i);
	free(lines);
	free(want);
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(m);
}

static void authorize_refused_by_the_device_names_its_words(void **state)
{
	struct tp_signed_msg *m = authz_msg();
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.answer = "error challenge is not this session's\n";
	dfu = open_dfu(&f, &func_tolerant, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_authorize(dfu, m, &d), STN_E_AUTHORIZATION);
	assert_non_null(strstr(d.text, "refused the authorization"));
	assert_non_null(strstr(d.text, "challenge is not this session's"));
	tp_dfu_free(dfu);
	fake_fini(&f);
	/* A device that stalls the block refuses it as well. */
	fake_init(&f);
	f.stall_block = 1;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_authorize(dfu, m, &d), STN_E_AUTHORIZATION);
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(m);
}

static void authorize_takes_nothing_but_ok_as_consent(void **state)
{
	static const char *const bad[] = {"okay\n", "format = x\nok\n", "",
					  "ok sha256=00\n"};
	struct tp_signed_msg *m = authz_msg();

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct stn_diag d;
		struct fake f;
		struct tp_dfu *dfu;

		fake_init(&f);
		f.answer = bad[i];
		dfu = open_dfu(&f, &func_tolerant, NULL);
		stn_diag_init(&d);
		assert_int_equal(tp_dfu_authorize(dfu, m, &d), STN_E_PROTOCOL);
		tp_dfu_free(dfu);
		fake_fini(&f);
	}
	free(m);
}

#define RECEIPT_SHA "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

static void receipt_is_uploaded_with_its_digest(void **state)
{
	static const char text[] =
		"format = station-receipt-1\ndevice = SN-0001\nslot = 0\n"
		"sig AQID\nok sha256=" RECEIPT_SHA "\n";
	struct tp_signed_msg *m = new_msg();
	char hex[65] = "", seq[16];
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	fake_init(&f);
	f.upload = (const uint8_t *)text;
	f.upload_len = sizeof(text) - 1;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_receipt(dfu, m, hex, &d), 0);
	assert_string_equal(hex, RECEIPT_SHA);
	assert_int_equal(m->nlines, 3);
	assert_true(tp_msg_complete(m));
	request_letters(&f, seq, sizeof(seq));
	assert_string_equal(seq, "SU"); /* no command: only an upload */
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(m);
}

static void receipt_refused_or_malformed_fails(void **state)
{
	static const struct {
		const char *text;
		int rc;
		const char *says;
	} cases[] = {
		{"error nothing stored\n", STN_E_PROOF, "nothing stored"},
		/* no pending receipt: the identity record comes back */
		{"format = station-device-1\nserial = SN-0001\n", STN_E_PROTOCOL,
		 "without `ok`"},
		{"format = station-receipt-1\nsig AQID\nok\n", STN_E_PROTOCOL,
		 "not `ok sha256=`"},
		{"format = station-receipt-1\nsig AQID\nok sha256=ABC\n",
		 STN_E_PROTOCOL, "64 hex digits"},
		{"format = station-receipt-1\nok sha256=" RECEIPT_SHA "\n",
		 STN_E_PROTOCOL, "not a signed record"},
	};
	struct tp_signed_msg *m = new_msg();

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char hex[65] = "";
		struct stn_diag d;
		struct fake f;
		struct tp_dfu *dfu;

		fake_init(&f);
		f.upload = (const uint8_t *)cases[i].text;
		f.upload_len = strlen(cases[i].text);
		dfu = open_dfu(&f, &func_tolerant, NULL);
		stn_diag_init(&d);
		assert_int_equal(tp_dfu_receipt(dfu, m, hex, &d), cases[i].rc);
		assert_non_null(strstr(d.text, cases[i].says));
		assert_string_equal(hex, "");
		tp_dfu_free(dfu);
		fake_fini(&f);
	}
	free(m);
}

static void an_answer_longer_than_the_cap_is_not_cut_but_refused(
	void **state)
{
	char *big = malloc(TP_DFU_INFO_MAX + 10), buf[100];
	size_t len = 0;
	struct stn_diag d;
	struct fake f;
	struct tp_dfu *dfu;

	(void)state;
	assert_non_null(big);
	memset(big, 'a', TP_DFU_INFO_MAX + 9);
	big[TP_DFU_INFO_MAX + 9] = '\0';
	fake_init(&f);
	f.answer = big;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_info_command(dfu, "x\n", 2, buf, sizeof(buf),
					     &len, &d),
			 STN_E_PROTOCOL);
	assert_non_null(strstr(d.text, "longer than 99 bytes"));
	/* exactly 99 bytes fit */
	big[99] = '\0';
	tp_dfu_free(dfu);
	fake_fini(&f);
	fake_init(&f);
	f.answer = big;
	dfu = open_dfu(&f, &func_tolerant, NULL);
	stn_diag_init(&d);
	assert_int_equal(tp_dfu_info_command(dfu, "x\n", 2, buf, sizeof(buf),
					     &len, &d),
			 0);
	assert_int_equal(len, 99);
	tp_dfu_free(dfu);
	fake_fini(&f);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(func_parse_reads_a_dfu_1_1_descriptor),
		cmocka_unit_test(
			func_parse_takes_a_dfu_1_0_descriptor_without_version),
		cmocka_unit_test(
			func_parse_refuses_short_wrong_type_and_zero_block_size),
		cmocka_unit_test(transfer_size_is_capped_at_4096),
		cmocka_unit_test(
			download_sends_blocks_from_zero_each_followed_by_getstatus),
		cmocka_unit_test(
			download_takes_a_source_that_gives_bytes_in_small_pieces),
		cmocka_unit_test(block_numbers_wrap_after_65535),
		cmocka_unit_test(download_waits_exactly_bw_poll_timeout_while_busy),
		cmocka_unit_test(the_next_block_is_read_while_the_device_is_busy),
		cmocka_unit_test(download_gives_up_when_busy_longer_than_allowed),
		cmocka_unit_test(control_requests_carry_the_configured_timeout),
		cmocka_unit_test(
			a_stalled_block_names_block_and_status_and_clears_the_error),
		cmocka_unit_test(
			dfu_error_after_a_block_is_reported_with_its_status),
		cmocka_unit_test(a_device_that_vanishes_mid_transfer_is_no_device),
		cmocka_unit_test(
			an_unexpected_state_after_a_block_is_a_protocol_error),
		cmocka_unit_test(a_short_getstatus_answer_is_a_protocol_error),
		cmocka_unit_test(
			download_refuses_a_source_shorter_or_longer_than_the_size),
		cmocka_unit_test(
			download_is_refused_when_the_device_cannot_download),
		cmocka_unit_test(a_tolerant_device_manifests_back_to_idle),
		cmocka_unit_test(
			a_device_that_is_not_tolerant_ends_waiting_for_reset),
		cmocka_unit_test(
			a_device_that_is_not_tolerant_may_go_silent_or_leave),
		cmocka_unit_test(
			a_tolerant_device_that_vanishes_while_manifesting_fails),
		cmocka_unit_test(
			err_verify_at_manifestation_is_a_verify_failure),
		cmocka_unit_test(manifestation_that_never_ends_times_out),
		cmocka_unit_test(ready_clears_dfu_error_with_clrstatus),
		cmocka_unit_test(ready_aborts_an_interrupted_download_or_upload),
		cmocka_unit_test(ready_clears_a_device_that_stalls_getstatus),
		cmocka_unit_test(
			ready_refuses_run_time_mode_and_a_device_awaiting_reset),
		cmocka_unit_test(ready_gives_up_on_a_state_that_never_settles),
		cmocka_unit_test(ready_waits_out_a_busy_device),
		cmocka_unit_test(detach_sends_the_device_timeout_capped),
		cmocka_unit_test(
			upload_reads_until_the_device_sends_a_short_block),
		cmocka_unit_test(upload_stops_at_the_size_asked_and_aborts),
		cmocka_unit_test(upload_is_refused_when_the_device_cannot_upload),
		cmocka_unit_test(an_upload_the_device_refuses_is_reported),
		cmocka_unit_test(names_of_states_and_statuses_follow_the_spec),
		cmocka_unit_test(
			attest_downloads_the_nonce_then_uploads_the_signed_answer),
		cmocka_unit_test(
			attest_answered_with_error_is_a_device_without_attestation),
		cmocka_unit_test(
			attest_refused_by_a_read_only_station_info_is_no_attestation),
		cmocka_unit_test(
			attest_answers_that_are_not_signed_records_are_protocol_errors),
		cmocka_unit_test(
			authorize_sends_the_block_over_several_dnloads_and_takes_ok),
		cmocka_unit_test(authorize_refused_by_the_device_names_its_words),
		cmocka_unit_test(authorize_takes_nothing_but_ok_as_consent),
		cmocka_unit_test(receipt_is_uploaded_with_its_digest),
		cmocka_unit_test(receipt_refused_or_malformed_fails),
		cmocka_unit_test(
			an_answer_longer_than_the_cap_is_not_cut_but_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
