/* transport/sim/sim-smp.c: a Zephyr/MCUboot device that speaks SMP (MCUmgr)
 * over a pseudo-terminal, for the tests, the demo and the benchmark.  It
 * keeps two slots of image 0 as files in its store (slot-0.bin, the running
 * image; slot-1.bin, where uploads go), answers OS information, MCUmgr
 * parameters, image state read and write (test, confirm), upload with
 * offsets (resuming an interrupted upload as Zephyr does) and reset, on
 * which it behaves like MCUboot: a pending image whose hash checks is
 * swapped in for a test boot, an unconfirmed test image is reverted.  Its
 * fault modes are those of sim-serial, in SMP terms. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "station/base/sha256.h"
#include "station/base/error.h"
#include "transport/cbor.h"
#include "transport/mcuboot.h"
#include "transport/serial.h"
#include "transport/sim_line.h"
#include "transport/smp.h"
#include "station/base/monotime.h"
#include "transport/sim_log.h"

#define MAX_ITEMS 256
#define LINE_CAP 512
/* MCUboot's serial recovery reads requests into 1 KiB by default. */
#define RECOVERY_BUF 1024
#define RC_EINVAL 3
#define RC_ENOENT 5
#define RC_EBADSTATE 6
#define RC_EMSGSIZE 7
#define RC_ENOTSUP 8

static const char usage_text[] =
	"usage: sim-smp --store DIR [--link PATH] [--primary IMAGE]\n"
	"               [--board NAME] [--node NAME] [--buf-size N]\n"
	"               [--no-info] [--no-match] [--max-size BYTES]\n"
	"               [--boot-ms MS] [--baud N] [--drop-at N] [--drop-ms MS]\n"
	"               [--corrupt-request K] [--nak-every N] [--slow MS]\n"
	"               [--wrong-sha] [--log-noise] [--recovery]\n"
	"               [--mute-after-reset]\n"
	"\n"
	"Creates a pseudo-terminal, prints `pty PATH` on stdout and answers\n"
	"SMP requests on it until SIGTERM or SIGINT.\n"
	"  --store DIR        slot-0.bin (running image), slot-1.bin (upload)\n"
	"  --primary IMAGE    the MCUboot image installed in slot 0 at start\n"
	"  --board NAME       OS info 'i' (hardware platform); default\n"
	"                     tx200_nrf52840\n"
	"  --node NAME        OS info 'n' (node name); default \"unknown\"\n"
	"  --buf-size N       MCUmgr parameter buf_size (default 2048); 0:\n"
	"                     parameters unsupported, 1 KiB requests, as\n"
	"                     MCUboot's serial recovery\n"
	"  --no-info          OS info unsupported (rc 8), as serial recovery\n"
	"  --no-match         the last upload answer carries no \"match\"\n"
	"  --boot-ms MS       silent time after a reset (default 300)\n"
	"  --recovery         MCUboot serial recovery: uploads are written\n"
	"                     straight to slot 0, no OS info, parameters,\n"
	"                     match or image state write (rc 8)\n"
	"  --mute-after-reset the image it boots speaks no SMP: after a\n"
	"                     reset nothing is answered any more\n"
	"Faults:\n"
	"  --baud N           pace the line like a UART at N baud\n"
	"  --drop-at N        drop the line when the station has sent N bytes;\n"
	"                     it comes back after --drop-ms (default 1000),\n"
	"                     the device keeps its upload state\n"
	"  --corrupt-request K  upload request K arrives damaged (bad CRC) and\n"
	"                     is dropped without an answer\n"
	"  --nak-every N      every Nth upload request is not taken (the answer\n"
	"                     repeats the old offset)\n"
	"  --slow MS          wait MS before every answer\n"
	"  --wrong-sha        report image hashes with a flipped byte, and\n"
	"                     \"match\": false\n"
	"  --log-noise        print log lines between answers, as a device\n"
	"                     sharing its console UART does\n";

struct slot {
	int present;
	int pending, permanent, confirmed;
};

struct sim {
	const char *store;
	const char *primary;
	const char *board;
	const char *node;
	unsigned buf_size;
	int no_info, no_match, wrong_sha, log_noise;
	int recovery; /* MCUboot serial recovery: uploads go to slot 0 */
	int mute_after_reset, muted; /* the booted application has no SMP */
	uint64_t max_size;
	int boot_ms, slow_ms;
	uint64_t corrupt_request, nak_every;
	struct tp_simline *wire;
	struct tp_serial *line;
	struct slot slot[2];
	/* the upload in progress */
	int up_active;
	int up_fd;
	uint64_t up_len, up_off;
	uint8_t up_sha[32];
	size_t up_sha_len;
	uint64_t up_requests, up_bytes_rx, up_seen;
	int64_t up_t0; /* when the upload's first request arrived, ms */
	/* the request being answered */
	struct tp_cbor_item it[MAX_ITEMS];
	size_t nit;
};

static char g_link[PATH_MAX];

static void on_signal(int sig)
{
	(void)sig;
	if (g_link[0])
		unlink(g_link);
	_exit(0);
}

#define logf_(...) tp_sim_logf("sim-smp", __VA_ARGS__)

static void slot_path(const struct sim *sim, int k, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/slot-%d.bin", sim->store, k);
}

/* The image in slot k as the device reports it (the hash from its TLV, not
 * recomputed, as img_mgmt does); -1 when the slot holds no valid image. */
static int slot_info(const struct sim *sim, int k, int verify,
		     struct tp_mcuboot_info *info)
{
	char path[PATH_MAX];
	struct stat st;
	int fd, rc;

	slot_path(sim, k, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fstat(fd, &st) == 0
		     ? tp_mcuboot_inspect(fd, (uint64_t)st.st_size, verify,
					  path, info, NULL)
		     : -1;
	close(fd);
	return rc ? -1 : 0;
}

static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n = 0;

	while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			n = -1;
			break;
		}
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0)
		n = -1;
	return in < 0 || out < 0 || n < 0 ? -1 : 0;
}

/* ---- answers ---- */

static void send_answer(struct sim *sim, const uint8_t *req,
			const uint8_t *body, size_t blen)
{
	uint8_t msg[TP_SMP_HDR + TP_SMP_PACKET_MAX];
	uint8_t wire[(TP_SMP_PACKET_MAX + 16) * 4 / 3 + 512];
	struct stn_diag d;
	size_t n;

	if (sim->slow_ms)
		stn_sleep_ms(sim->slow_ms);
	if (sim->log_noise) {
		static const char noise[] =
			"[00:00:01.234,000] <inf> app: still alive\r\n";

		tp_serial_write(sim->line, noise, sizeof(noise) - 1, 2000,
				NULL);
	}
	msg[0] = (uint8_t)((req[0] & 0x18) | ((req[0] & 7) + 1));
	msg[1] = 0;
	msg[2] = (uint8_t)(blen >> 8);
	msg[3] = (uint8_t)blen;
	memcpy(msg + 4, req + 4, 4); /* group, sequence, command */
	memcpy(msg + TP_SMP_HDR, body, blen);
	n = tp_smp_frame(msg, TP_SMP_HDR + blen, wire, sizeof(wire));
	stn_diag_init(&d);
	if (!n || tp_serial_write(sim->line, wire, n, 5000, &d))
		logf_("cannot answer: %s", n ? d.text : "does not frame");
}

static void answer_rc(struct sim *sim, const uint8_t *req, unsigned rc)
{
	uint8_t body[16];
	struct tp_cbor_writer w;

	tp_cbor_writer_init(&w, body, sizeof(body));
	tp_cbor_put_map(&w, 1);
	tp_cbor_put_text(&w, "rc");
	tp_cbor_put_uint(&w, rc);
	send_answer(sim, req, body, w.len);
}

/* The image list, written with indefinite-length containers as zcbor
 * does, so the station's decoder meets them. */
static void answer_images(struct sim *sim, const uint8_t *req)
{
	uint8_t body[1024];
	struct tp_cbor_writer w;

	tp_cbor_writer_init(&w, body, sizeof(body));
	tp_cbor_put_map_indef(&w);
	tp_cbor_put_text(&w, "images");
	tp_cbor_put_array_indef(&w);
	for (int k = 0; k < 2; k++) {
		struct tp_mcuboot_info info;

		if (!sim->slot[k].present || slot_info(sim, k, 0, &info))
			continue;
		if (sim->wrong_sha)
			info.hash[0] ^= 0xff;
		tp_cbor_put_map_indef(&w);
		tp_cbor_put_text(&w, "image");
		tp_cbor_put_uint(&w, 0);
		tp_cbor_put_text(&w, "slot");
		tp_cbor_put_uint(&w, (uint64_t)k);
		tp_cbor_put_text(&w, "version");
		tp_cbor_put_text(&w, info.version);
		tp_cbor_put_text(&w, "hash");
		tp_cbor_put_bytes(&w, info.hash, 32);
		tp_cbor_put_text(&w, "bootable");
		tp_cbor_put_bool(&w, 1);
		tp_cbor_put_text(&w, "pending");
		tp_cbor_put_bool(&w, sim->slot[k].pending);
		tp_cbor_put_text(&w, "confirmed");
		tp_cbor_put_bool(&w, sim->slot[k].confirmed);
		tp_cbor_put_text(&w, "active");
		tp_cbor_put_bool(&w, k == 0);
		tp_cbor_put_text(&w, "permanent");
		tp_cbor_put_bool(&w, sim->slot[k].permanent);
		tp_cbor_put_break(&w);
	}
	tp_cbor_put_break(&w);
	tp_cbor_put_text(&w, "splitStatus");
	tp_cbor_put_uint(&w, 0);
	tp_cbor_put_break(&w);
	send_answer(sim, req, body, w.len);
}

static long field(struct sim *sim, const char *key, int type)
{
	long i = tp_cbor_map_get(sim->it, sim->nit, 0, key);

	return i >= 0 && sim->it[i].type == type ? i : -1;
}

/* ---- commands ---- */

static void os_info(struct sim *sim, const uint8_t *req)
{
	uint8_t body[512];
	char out[400] = "";
	struct tp_cbor_writer w;
	long f = field(sim, "format", TP_CBOR_TEXT);

	if (sim->no_info) {
		answer_rc(sim, req, RC_ENOTSUP);
		return;
	}
	for (uint64_t k = 0; f >= 0 && k < sim->it[f].u; k++) {
		const char *part;

		switch (sim->it[f].ptr[k]) {
		case 'i': part = sim->board; break;
		case 'n': part = sim->node; break;
		case 's': part = "Zephyr"; break;
		case 'o': part = "Zephyr"; break;
		default:
			answer_rc(sim, req, RC_EINVAL);
			return;
		}
		if (strlen(out) + strlen(part) + 2 > sizeof(out)) {
			answer_rc(sim, req, RC_EMSGSIZE);
			return;
		}
		if (*out)
			strcat(out, " ");
		strcat(out, part);
	}
	tp_cbor_writer_init(&w, body, sizeof(body));
	tp_cbor_put_map(&w, 1);
	tp_cbor_put_text(&w, "output");
	tp_cbor_put_text(&w, out);
	send_answer(sim, req, body, w.len);
}

static void params(struct sim *sim, const uint8_t *req)
{
	uint8_t body[64];
	struct tp_cbor_writer w;

	if (!sim->buf_size) {
		answer_rc(sim, req, RC_ENOTSUP);
		return;
	}
	tp_cbor_writer_init(&w, body, sizeof(body));
	tp_cbor_put_map(&w, 2);
	tp_cbor_put_text(&w, "buf_size");
	tp_cbor_put_uint(&w, sim->buf_size);
	tp_cbor_put_text(&w, "buf_count");
	tp_cbor_put_uint(&w, 4);
	send_answer(sim, req, body, w.len);
}

static int slot_with_hash(struct sim *sim, const uint8_t *hash)
{
	for (int k = 0; k < 2; k++) {
		struct tp_mcuboot_info info;

		if (sim->slot[k].present && slot_info(sim, k, 0, &info) == 0 &&
		    memcmp(info.hash, hash, 32) == 0)
			return k;
	}
	return -1;
}

static void image_set(struct sim *sim, const uint8_t *req)
{
	long h = field(sim, "hash", TP_CBOR_BYTES);
	long c = tp_cbor_map_get(sim->it, sim->nit, 0, "confirm");
	int confirm = c >= 0 && sim->it[c].type == TP_CBOR_TRUE;
	int k = 0;

	if (h >= 0 && sim->it[h].u != 32) {
		answer_rc(sim, req, RC_EINVAL);
		return;
	}
	if (h >= 0 && (k = slot_with_hash(sim, sim->it[h].ptr)) < 0) {
		logf_("image state: no slot holds that hash");
		answer_rc(sim, req, RC_ENOENT);
		return;
	}
	if (h < 0 && !confirm) {
		answer_rc(sim, req, RC_EINVAL);
		return;
	}
	if (k == 0 && confirm) {
		sim->slot[0].confirmed = 1;
		logf_("image state: slot 0 confirmed");
	} else if (k == 0) {
		answer_rc(sim, req, RC_EBADSTATE);
		return;
	} else {
		sim->slot[1].pending = 1;
		sim->slot[1].permanent = confirm;
		logf_("image state: slot 1 pending (%s)",
		      confirm ? "permanent" : "test");
	}
	answer_images(sim, req);
}

static int swap_slots(struct sim *sim)
{
	char a[PATH_MAX], b[PATH_MAX], t[PATH_MAX + 8];
	struct slot s0 = sim->slot[0];

	slot_path(sim, 0, a, sizeof(a));
	slot_path(sim, 1, b, sizeof(b));
	snprintf(t, sizeof(t), "%s.swap", a);
	if (rename(a, t) < 0 || rename(b, a) < 0 || rename(t, b) < 0)
		return -1;
	sim->slot[0] = sim->slot[1];
	sim->slot[1] = s0;
	return 0;
}

/* What MCUboot does at boot, then the quiet time a reboot takes. */
static void do_reset(struct sim *sim)
{
	struct tp_mcuboot_info info;

	if (sim->slot[1].present && sim->slot[1].pending) {
		if (slot_info(sim, 1, 1, &info) != 0) {
			logf_("boot: slot 1 fails its hash check; staying on "
			      "slot 0");
			sim->slot[1].pending = 0;
		} else if (swap_slots(sim) == 0) {
			sim->slot[0].pending = 0;
			sim->slot[0].confirmed = sim->slot[0].permanent;
			sim->slot[1].pending = sim->slot[1].permanent = 0;
			logf_("boot: swapped in version %s (%s)", info.version,
			      sim->slot[0].confirmed ? "permanent" : "test");
		}
	} else if (sim->slot[0].present && !sim->slot[0].confirmed &&
		   sim->slot[1].present) {
		if (swap_slots(sim) == 0) {
			sim->slot[0].confirmed = 1;
			sim->slot[1].pending = sim->slot[1].permanent = 0;
			logf_("boot: test image not confirmed; reverted");
		}
	} else {
		logf_("boot: slot 0 as before");
	}
	sim->up_active = 0;
	stn_sleep_ms(sim->boot_ms);
	tp_serial_drain_input(sim->line);
	tp_serial_write(sim->line, "*** Booting Zephyr OS ***\r\n", 27, 2000,
			NULL);
}

static void upload_done(struct sim *sim, const uint8_t *req)
{
	char tmp[PATH_MAX + 16], final[PATH_MAX];
	uint8_t body[64], buf[65536], dig[32];
	struct tp_cbor_writer w;
	struct cu_sha256 *h = cu_sha256_new();
	int match = 0;
	ssize_t n;

	snprintf(tmp, sizeof(tmp), "%s/.upload", sim->store);
	slot_path(sim, sim->recovery ? 0 : 1, final, sizeof(final));
	if (!h || lseek(sim->up_fd, 0, SEEK_SET) < 0) {
		answer_rc(sim, req, 1);
		cu_sha256_free(h);
		return;
	}
	int hrc = 0;
	while (!hrc && (n = read(sim->up_fd, buf, sizeof(buf))) > 0)
		hrc = cu_sha256_update(h, buf, (size_t)n);
	if (!hrc)
		hrc = cu_sha256_final(h, dig);
	cu_sha256_free(h);
	if (hrc) /* a digest that was not computed matches nothing */
		memset(dig, 0, sizeof(dig));
	fsync(sim->up_fd);
	close(sim->up_fd);
	sim->up_fd = -1;
	sim->up_active = 0;
	if (rename(tmp, final) < 0) {
		answer_rc(sim, req, 1);
		return;
	}
	if (sim->recovery)
		sim->slot[0] = (struct slot){.present = 1, .confirmed = 1,
					     .permanent = 1};
	else
		sim->slot[1] = (struct slot){.present = 1};
	match = sim->up_sha_len == 32 && memcmp(dig, sim->up_sha, 32) == 0 &&
		!sim->wrong_sha;
	logf_("upload complete: %" PRIu64 " bytes in %" PRIu64
	      " requests, %" PRIu64 " data bytes received in all%s "
	      "(%" PRId64 " ms from the first request)",
	      sim->up_len, sim->up_requests, sim->up_bytes_rx,
	      sim->no_match ? "" : match ? ", match" : ", no match",
	      stn_mono_ms() - sim->up_t0);
	tp_cbor_writer_init(&w, body, sizeof(body));
	tp_cbor_put_map(&w, sim->no_match ? 2 : 3);
	tp_cbor_put_text(&w, "rc");
	tp_cbor_put_uint(&w, 0);
	tp_cbor_put_text(&w, "off");
	tp_cbor_put_uint(&w, sim->up_len);
	if (!sim->no_match) {
		tp_cbor_put_text(&w, "match");
		tp_cbor_put_bool(&w, match);
	}
	send_answer(sim, req, body, w.len);
}

static void answer_off(struct sim *sim, const uint8_t *req)
{
	uint8_t body[32];
	struct tp_cbor_writer w;

	tp_cbor_writer_init(&w, body, sizeof(body));
	tp_cbor_put_map(&w, 2);
	tp_cbor_put_text(&w, "rc");
	tp_cbor_put_uint(&w, 0);
	tp_cbor_put_text(&w, "off");
	tp_cbor_put_uint(&w, sim->up_off);
	send_answer(sim, req, body, w.len);
}

static void upload(struct sim *sim, const uint8_t *req)
{
	long off_i = field(sim, "off", TP_CBOR_UINT);
	long data_i = field(sim, "data", TP_CBOR_BYTES);
	long len_i = field(sim, "len", TP_CBOR_UINT);
	long sha_i = field(sim, "sha", TP_CBOR_BYTES);
	long img_i = field(sim, "image", TP_CBOR_UINT);
	uint64_t off, dlen;

	if (off_i < 0 || data_i < 0 || (img_i >= 0 && sim->it[img_i].u != 0)) {
		answer_rc(sim, req, RC_EINVAL);
		return;
	}
	off = sim->it[off_i].u;
	dlen = sim->it[data_i].u;
	sim->up_seen++;
	if (off == 0) {
		const uint8_t *sha = sha_i >= 0 ? sim->it[sha_i].ptr : NULL;
		size_t sha_len = sha_i >= 0 && sim->it[sha_i].u <= 32
					 ? (size_t)sim->it[sha_i].u : 0;
		char tmp[PATH_MAX + 16];

		if (len_i < 0 || sim->it[len_i].u > sim->max_size) {
			answer_rc(sim, req, RC_EINVAL);
			return;
		}
		if (sim->up_active && sha_len && sha_len == sim->up_sha_len &&
		    memcmp(sha, sim->up_sha, sha_len) == 0 &&
		    sim->it[len_i].u == sim->up_len && sim->up_off > 0) {
			logf_("upload: resuming at off=%" PRIu64, sim->up_off);
			answer_off(sim, req);
			return;
		}
		if (sim->up_active)
			close(sim->up_fd);
		snprintf(tmp, sizeof(tmp), "%s/.upload", sim->store);
		sim->up_fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
				  0644);
		if (sim->up_fd < 0) {
			answer_rc(sim, req, 1);
			return;
		}
		sim->up_active = 1;
		sim->up_len = sim->it[len_i].u;
		sim->up_off = 0;
		sim->up_sha_len = sha_len;
		if (sha_len)
			memcpy(sim->up_sha, sha, sha_len);
		sim->up_requests = sim->up_bytes_rx = 0;
		sim->up_t0 = stn_mono_ms();
		/* A new upload replaces what its slot held. */
		sim->slot[sim->recovery ? 0 : 1] = (struct slot){0};
		logf_("upload: new, %" PRIu64 " bytes", sim->up_len);
	} else if (!sim->up_active) {
		answer_rc(sim, req, RC_EINVAL);
		return;
	}
	sim->up_requests++;
	sim->up_bytes_rx += dlen;
	if (off != sim->up_off) {
		logf_("upload: off=%" PRIu64 " is not %" PRIu64 "; data dropped",
		      off, sim->up_off);
		answer_off(sim, req);
		return;
	}
	if (off + dlen > sim->up_len) {
		answer_rc(sim, req, RC_EINVAL);
		return;
	}
	if (sim->nak_every && sim->up_seen % sim->nak_every == 0) {
		logf_("fault: upload request at off=%" PRIu64 " not taken", off);
		answer_off(sim, req);
		return;
	}
	if (pwrite(sim->up_fd, sim->it[data_i].ptr, (size_t)dlen,
		   (off_t)off) != (ssize_t)dlen) {
		answer_rc(sim, req, 1);
		return;
	}
	sim->up_off += dlen;
	if (sim->up_off == sim->up_len)
		upload_done(sim, req);
	else
		answer_off(sim, req);
}

static void dispatch(struct sim *sim, const uint8_t *msg, size_t len)
{
	unsigned op = msg[0] & 7, group = (unsigned)msg[4] << 8 | msg[5];
	uint8_t id = msg[7];
	size_t blen = (size_t)msg[2] << 8 | msg[3];
	struct stn_diag d;

	if (sim->muted)
		return;
	if (len < TP_SMP_HDR || blen != len - TP_SMP_HDR ||
	    (op != 0 && op != 2)) {
		logf_("dropped a malformed request");
		return;
	}
	if (group == TP_SMP_GROUP_IMAGE && id == TP_SMP_IMAGE_UPLOAD &&
	    sim->corrupt_request &&
	    sim->up_seen + 1 == sim->corrupt_request) {
		sim->corrupt_request = 0;
		sim->up_seen++;
		logf_("fault: upload request %" PRIu64 " arrives damaged "
		      "(CRC); dropped", sim->up_seen);
		return;
	}
	stn_diag_init(&d);
	if (tp_cbor_decode(msg + TP_SMP_HDR, blen, sim->it, MAX_ITEMS,
			   &sim->nit, "request", &d) ||
	    sim->it[0].type != TP_CBOR_MAP) {
		logf_("bad CBOR: %s", d.text);
		answer_rc(sim, msg, RC_EINVAL);
		return;
	}
	if (group == TP_SMP_GROUP_OS && id == TP_SMP_OS_ECHO) {
		long t = field(sim, "d", TP_CBOR_TEXT);
		uint8_t body[300];
		char text[256] = "";
		struct tp_cbor_writer w;

		if (t >= 0 && sim->it[t].u < sizeof(text))
			memcpy(text, sim->it[t].ptr, (size_t)sim->it[t].u);
		tp_cbor_writer_init(&w, body, sizeof(body));
		tp_cbor_put_map(&w, 1);
		tp_cbor_put_text(&w, "r");
		tp_cbor_put_text(&w, text);
		send_answer(sim, msg, body, w.len);
	} else if (group == TP_SMP_GROUP_OS && id == TP_SMP_OS_RESET &&
		   op == TP_SMP_OP_WRITE) {
		uint8_t body[] = {0xa0};

		send_answer(sim, msg, body, sizeof(body));
		logf_("reset");
		do_reset(sim);
		sim->muted = sim->mute_after_reset;
	} else if (group == TP_SMP_GROUP_OS && id == TP_SMP_OS_PARAMS) {
		params(sim, msg);
	} else if (group == TP_SMP_GROUP_OS && id == TP_SMP_OS_INFO) {
		os_info(sim, msg);
	} else if (group == TP_SMP_GROUP_IMAGE && id == TP_SMP_IMAGE_STATE) {
		if (op != TP_SMP_OP_READ && sim->recovery)
			answer_rc(sim, msg, RC_ENOTSUP);
		else if (op == TP_SMP_OP_READ)
			answer_images(sim, msg);
		else
			image_set(sim, msg);
	} else if (group == TP_SMP_GROUP_IMAGE && id == TP_SMP_IMAGE_UPLOAD &&
		   op == TP_SMP_OP_WRITE) {
		upload(sim, msg);
	} else {
		answer_rc(sim, msg, RC_ENOTSUP);
	}
}

/* ---- reassembly, as Zephyr's serial transport does it ----
 *
 * Facts from zephyr subsys/mgmt/mcumgr/transport/src/serial_util.c,
 * mcumgr_serial_process_frag() and mcumgr_serial_decode_frag(): every frame
 * of a packet is base64-decoded into the free tail of ONE net_buf taken
 * from the SMP packet pool (smp_packet_alloc() in transport/src/smp.c), whose
 * size is CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE, the value os_mgmt reports as
 * "buf_size" (os_mgmt_mcumgr_params() in grp/os_mgmt/src/os_mgmt.c).  After
 * the first frame the 2-byte length is pulled from the front
 * (net_buf_pull_be16), which does not give its room back to the tail, so
 * length, SMP message and CRC-16 share buf_size bytes: a message is taken
 * only when it is at most buf_size - 4 bytes.  base64_decode() (lib/base64)
 * refuses with -ENOMEM a frame whose decoded bytes exceed the tail room, and
 * then the whole packet is freed without an answer.  A start frame resets
 * the buffer; a continuation frame with nothing before it is dropped; more
 * bytes than the length says, or a CRC (CRC-16/ITU-T over the packet and
 * its CRC) that is not zero, drop the packet.  The UART driver
 * (uart_mcumgr.c, uart_mcumgr_rx_byte()) ignores a line longer than its
 * CONFIG_UART_MCUMGR_RX_BUF_SIZE (128 by default) bytes.  MCUboot's serial
 * recovery is treated alike with its 1 KiB buffer. */

#define ZEPHYR_LINE_MAX 128 /* CONFIG_UART_MCUMGR_RX_BUF_SIZE default */

struct zrx {
	uint8_t *buf;    /* buf_size bytes: the net_buf */
	size_t size;     /* buf_size */
	size_t head;     /* bytes pulled from the front (the length) */
	size_t len;      /* bytes held after head */
	size_t pkt_len;  /* from the length field: message and CRC */
	int active;
};

static int zb64(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static void zrx_drop(struct zrx *z, const char *why)
{
	logf_("dropped a request: %s", why);
	z->active = 0;
	z->head = z->len = 0;
}

/* Decode base64 text into the tail room, refusing (as base64_decode's
 * -ENOMEM) when the decoded bytes do not all fit. */
static int zrx_decode(struct zrx *z, const uint8_t *p, size_t n)
{
	size_t pad = 0, out;

	if (n == 0 || n % 4)
		return -1;
	if (p[n - 1] == '=')
		pad = p[n - 2] == '=' ? 2 : 1;
	out = n / 4 * 3 - pad;
	if (out > z->size - z->head - z->len)
		return -2;
	for (size_t i = 0; i < n; i += 4) {
		uint32_t w = 0;

		for (int k = 0; k < 4; k++) {
			int v = zb64(p[i + k]);

			if (v < 0 && !(p[i + k] == '=' && i + 4 == n && k >= 2))
				return -1;
			if (v < 0 && k == 2 && p[i + 3] != '=')
				return -1;
			w = w << 6 | (uint32_t)(v < 0 ? 0 : v);
		}
		z->buf[z->head + z->len++] = (uint8_t)(w >> 16);
		if (i + 4 < n || pad < 2)
			z->buf[z->head + z->len++] = (uint8_t)(w >> 8);
		if (i + 4 < n || pad < 1)
			z->buf[z->head + z->len++] = (uint8_t)w;
	}
	return 0;
}

/* One line from the UART: 1 with the message (header and body) when it
 * completes one, else 0. */
static int zrx_line(struct zrx *z, const char *line, size_t n,
		    const uint8_t **msg, size_t *len)
{
	const uint8_t *p = (const uint8_t *)line;
	int start;
	int rc;

	/* The line as the driver holds it includes its newline. */
	if (n + 1 > ZEPHYR_LINE_MAX)
		return 0;
	if (n >= 2 && p[0] == 0x06 && p[1] == 0x09) {
		start = 1;
		z->active = 1;
		z->head = z->len = z->pkt_len = 0;
	} else if (n >= 2 && p[0] == 0x04 && p[1] == 0x14) {
		start = 0;
		if (!z->active || z->len == 0) {
			z->active = 0;
			return 0;
		}
	} else {
		return 0; /* a line that is no SMP frame */
	}
	if (n && p[n - 1] == '\r')
		n--; /* base64_decode skips CR before LF */
	rc = zrx_decode(z, p + 2, n - 2);
	if (rc == -2) {
		char why[160];

		snprintf(why, sizeof(why),
			 "length, packet and CRC need %zu bytes, the buffer "
			 "holds %zu", 2 + (z->pkt_len ? z->pkt_len : 0),
			 z->size);
		zrx_drop(z, why);
		return 0;
	}
	if (rc) {
		zrx_drop(z, "frame is not base64");
		return 0;
	}
	if (start) {
		if (z->len < 2) {
			zrx_drop(z, "start frame without a length");
			return 0;
		}
		z->pkt_len = (size_t)z->buf[0] << 8 | z->buf[1];
		z->head = 2;
		z->len -= 2;
	}
	if (z->len < z->pkt_len)
		return 0;
	if (z->len > z->pkt_len) {
		zrx_drop(z, "frames carry more than the packet length");
		return 0;
	}
	if (z->len < 2 ||
	    tp_crc16_xmodem(z->buf + z->head, z->len - 2) !=
		    ((uint16_t)z->buf[z->head + z->len - 2] << 8 |
		     z->buf[z->head + z->len - 1])) {
		zrx_drop(z, "CRC mismatch");
		return 0;
	}
	z->active = 0;
	*msg = z->buf + z->head;
	*len = z->len - 2;
	z->head = z->len = 0;
	return 1;
}

static void serve(struct sim *sim)
{
	struct zrx z = {0};
	char line[LINE_CAP];

	z.size = sim->buf_size ? sim->buf_size : RECOVERY_BUF;
	if (!(z.buf = malloc(z.size)))
		return;
	for (;;) {
		const uint8_t *msg;
		struct stn_diag d;
		size_t len;
		int rc;

		stn_diag_init(&d);
		rc = tp_serial_readline(sim->line, line, sizeof(line), -1, &d);
		if (rc == STN_E_NODEVICE) {
			logf_("line dropped; waiting for it");
			sim->line = tp_simline_device(sim->wire);
			z.active = 0;
			continue;
		}
		if (rc == STN_E_PROTOCOL) {
			/* longer than LINE_CAP: the driver ignores it */
			continue;
		}
		if (rc) {
			logf_("line failed: %s", d.text);
			free(z.buf);
			return;
		}
		if (zrx_line(&z, line, strlen(line), &msg, &len) == 1)
			dispatch(sim, msg, len);
	}
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"store", required_argument, NULL, 's'},
		{"link", required_argument, NULL, 'l'},
		{"primary", required_argument, NULL, 'p'},
		{"board", required_argument, NULL, 'B'},
		{"node", required_argument, NULL, 'n'},
		{"buf-size", required_argument, NULL, 'z'},
		{"no-info", no_argument, NULL, 'I'},
		{"no-match", no_argument, NULL, 'M'},
		{"max-size", required_argument, NULL, 'm'},
		{"boot-ms", required_argument, NULL, 'o'},
		{"baud", required_argument, NULL, 'b'},
		{"drop-at", required_argument, NULL, 'D'},
		{"drop-ms", required_argument, NULL, 'T'},
		{"corrupt-request", required_argument, NULL, 'C'},
		{"nak-every", required_argument, NULL, 'N'},
		{"slow", required_argument, NULL, 'S'},
		{"wrong-sha", no_argument, NULL, 'w'},
		{"log-noise", no_argument, NULL, 'L'},
		{"recovery", no_argument, NULL, 'R'},
		{"mute-after-reset", no_argument, NULL, 'U'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct sim sim = {.board = "tx200_nrf52840", .node = "unknown",
			  .buf_size = 2048, .boot_ms = 300,
			  .max_size = 64ULL << 20, .up_fd = -1};
	struct tp_simline_opts lo = {0};
	const char *link = NULL;
	struct sigaction sa;
	struct stn_diag d;
	struct stat st;
	char pts[PATH_MAX], path[PATH_MAX];
	uint64_t v;
	int opt;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': sim.store = optarg; break;
		case 'l': link = optarg; break;
		case 'p': sim.primary = optarg; break;
		case 'B': sim.board = optarg; break;
		case 'n': sim.node = optarg; break;
		case 'I': sim.no_info = 1; break;
		case 'M': sim.no_match = 1; break;
		case 'w': sim.wrong_sha = 1; break;
		case 'L': sim.log_noise = 1; break;
		case 'U': sim.mute_after_reset = 1; break;
		case 'R':
			sim.recovery = sim.no_info = sim.no_match = 1;
			sim.buf_size = 0;
			break;
		case 'z': case 'm': case 'o': case 'b': case 'D': case 'T':
		case 'C': case 'N': case 'S':
			if (parse_u64(optarg, &v) ||
			    (opt == 'z' && v && (v < 128 || v > 8192)) ||
			    (opt == 'b' && (v < 300 || v > 4000000)) ||
			    ((opt == 'o' || opt == 'T' || opt == 'S') &&
			     v > 600000) ||
			    (opt == 'N' && v == 0)) {
				fprintf(stderr, "sim-smp: bad value for "
						"option -%c\n", opt);
				return 2;
			}
			if (opt == 'z') sim.buf_size = (unsigned)v;
			else if (opt == 'm') sim.max_size = v;
			else if (opt == 'o') sim.boot_ms = (int)v;
			else if (opt == 'b') lo.baud = (unsigned)v;
			else if (opt == 'D') lo.drop_at = v;
			else if (opt == 'T') lo.drop_ms = (int)v;
			else if (opt == 'C') sim.corrupt_request = v;
			else if (opt == 'N') sim.nak_every = v;
			else sim.slow_ms = (int)v;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			fputs(usage_text, stderr);
			return 2;
		}
	}
	if (optind != argc || !sim.store) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (stat(sim.store, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "sim-smp: %s: not a directory\n", sim.store);
		return 2;
	}
	if (link && strlen(link) >= sizeof(g_link)) {
		fprintf(stderr, "sim-smp: --link path too long\n");
		return 2;
	}
	if (sim.primary) {
		struct tp_mcuboot_info info;

		slot_path(&sim, 0, path, sizeof(path));
		if (copy_file(sim.primary, path) ||
		    slot_info(&sim, 0, 1, &info)) {
			fprintf(stderr, "sim-smp: %s: not a valid MCUboot "
					"image\n", sim.primary);
			return 2;
		}
		sim.slot[0] = (struct slot){.present = 1, .confirmed = 1,
					    .permanent = 1};
	}
	slot_path(&sim, 1, path, sizeof(path));
	unlink(path);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	stn_diag_init(&d);
	if (tp_simline_start(link, &lo, pts, sizeof(pts), &sim.wire, &d)) {
		logf_("%s: %s", d.where, d.text);
		return 1;
	}
	if (link)
		strcpy(g_link, link);
	sim.line = tp_simline_device(sim.wire);
	printf("pty %s\n", pts);
	fflush(stdout);
	logf_("SMP on %s%s%s, board %s, buf_size %u, %u baud", pts,
	      link ? " via " : "", link ? link : "", sim.board, sim.buf_size,
	      lo.baud);
	serve(&sim);
	if (g_link[0])
		unlink(g_link);
	return 1;
}
