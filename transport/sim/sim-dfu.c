/* transport/sim/sim-dfu.c: a USB DFU 1.1 device that is a real USB device
 * to the kernel.  It serves the USB/IP protocol on 127.0.0.1, so that
 * `usbip attach` (the vhci-hcd driver) imports it and the kernel's USB
 * stack enumerates it like any device on a port; the station, dfu-util and
 * lsusb then reach it through usbfs.  It stores what it receives so a test
 * can compare it byte for byte, and it can be told to fail the way real
 * devices fail.  USB/IP: Documentation/usb/usbip_protocol.rst in Linux. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "station/base/hex.h"
#include "station/base/sha256.h"
#include "transport/dfu.h"
#include "station/base/monotime.h"
#include "transport/sim_identity.h"
#include "transport/sim_log.h"
#include "station/base/fileio.h"

static const char usage_text[] =
	"usage: sim-dfu --store DIR [options]\n"
	"\n"
	"Serves one simulated USB DFU device over USB/IP on 127.0.0.1 until\n"
	"SIGTERM.  Import it with `usbip attach -r 127.0.0.1 -b BUSID` (or\n"
	"--attach).  Images written to alternate setting N are stored, at the\n"
	"end of manifestation, in DIR/slot-N.bin.\n"
	"  --port N          TCP port (default 3240)\n"
	"  --busid ID        USB/IP bus id (default 1-1)\n"
	"  --vid HEX --pid HEX  ids in DFU mode (default 1209:5744)\n"
	"  --runtime-pid HEX start in run-time mode with this product id;\n"
	"                    DFU_DETACH then a bus reset (or, with\n"
	"                    --will-detach, the device itself) switches to\n"
	"                    DFU mode, and a reset after manifestation back\n"
	"  --serial S        iSerialNumber (default SN-D001); --no-serial:\n"
	"                    none\n"
	"  --product S       iProduct (default TX-200)\n"
	"  --bcd HEX         bcdDevice (default 0240)\n"
	"  --alts N          writable alternate settings slot-0.. (default 1)\n"
	"  --info FILE       add an alternate setting named `station-info`\n"
	"                    (in DFU and in run-time mode) whose UPLOAD is\n"
	"                    FILE (an identity record); an\n"
	"                    image starting `#station-sim-image sequence=N\n"
	"                    version=V` updates those lines at manifestation\n"
	"  --transfer-size N wTransferSize (default 4096)\n"
	"  --not-tolerant    bitManifestationTolerant 0: after manifestation\n"
	"                    wait for a reset (dfuMANIFEST-WAIT-RESET)\n"
	"  --will-detach     bitWillDetach 1\n"
	"  --no-upload       bitCanUpload 0\n"
	"  --poll-ms N       report dfuDNBUSY with bwPollTimeout N after each\n"
	"                    block (a device that programs flash)\n"
	"  --manifest-ms N   bwPollTimeout of dfuMANIFEST (default 0)\n"
	"  --attach          run `usbip attach` itself whenever it is ready to\n"
	"                    be imported (at start, after it left the bus)\n"
	"  --ready FILE      write FILE once listening\n"
	"Identity (formats §9; needs --info): station-info takes commands\n"
	"(`attest NONCE`, `authorize`...`end`), and images need a valid\n"
	"authorization; each manifested image leaves a signed receipt there\n"
	"  --device-key PEM  the device key\n"
	"  --device-cert PEM its certificate chain, leaf first\n"
	"  --fleet-anchor PEM  CA certificates authorizations must chain to\n"
	"  --misbehave NAME  wrong-key, replay, lying-receipt, refuse-auth\n"
	"                    (repeatable)\n"
	"Faults:\n"
	"  --stall-at N      stall the DNLOAD of block N (errWRITE)\n"
	"  --vanish-at N     leave the bus when block N arrives (unplug)\n"
	"  --replug-ms N     after --vanish-at, come back after N ms\n"
	"  --long-busy-at N --long-busy-ms M  block N is busy for M ms\n"
	"  --verify-error    fail manifestation with errVERIFY\n"
	"  --corrupt-upload  flip one byte in the middle of every slot upload\n"
	"  --store-other     store every image with its middle byte flipped:\n"
	"                    a device that stored other bytes than it got\n"
	"                    (its receipt, honest or lying, and its uploads\n"
	"                    follow what it stored)\n"
	"  --strict-polls    stall a GETSTATUS that comes before the\n"
	"                    bwPollTimeout it was given has passed\n";

/* USB/IP protocol constants (usbip_protocol.rst). */
#define USBIP_VERSION 0x0111
#define OP_REQ_DEVLIST 0x8005
#define OP_REP_DEVLIST 0x0005
#define OP_REQ_IMPORT 0x8003
#define OP_REP_IMPORT 0x0003
#define CMD_SUBMIT 1
#define CMD_UNLINK 2
#define RET_SUBMIT 3
#define RET_UNLINK 4
#define USB_SPEED_HIGH 3

#define MAX_ALTS 8
#define MAX_IMAGE (64u * 1024 * 1024)

struct slot {
	uint8_t *data;
	size_t len;
};

struct sim {
	/* configuration */
	const char *store, *info, *ready, *busid;
	int port;
	uint16_t vid, pid, runtime_pid, bcd;
	int start_runtime;
	const char *serial, *product, *manufacturer;
	unsigned alts;
	uint16_t transfer_size;
	int tolerant, will_detach, can_upload;
	unsigned poll_ms, manifest_ms;
	int attach;
	long stall_at, vanish_at, long_busy_at;
	unsigned long_busy_ms, replug_ms;
	int verify_error, corrupt_upload, store_other, strict_polls;
	const char *key, *cert, *anchor;
	unsigned faults;
	struct sim_identity *id; /* NULL: a device without a key */

	/* the device */
	int runtime;		/* 1: run-time mode */
	int configured;
	unsigned alt;
	uint8_t state, status;
	uint8_t *dl;		/* the download in progress */
	size_t dl_len, dl_cap;
	long blocks;		/* blocks of the download in progress */
	unsigned expect_block;
	unsigned busy_ms;	/* busy time of the block just taken */
	int busy_told;
	int64_t busy_until;	/* monotonic ms */
	const uint8_t *up;	/* the upload in progress */
	size_t up_len, up_pos;
	uint8_t *up_copy;
	struct slot slots[MAX_ALTS];
	int vanish_now, leave_now;
	unsigned long early_polls, total_blocks;

	/* station-info: a DFU target of its own, in both modes */
	uint8_t istate, istatus;
	unsigned iexpect;
	char *cmd;		/* the command being downloaded */
	size_t cmd_len;
	char *ans;		/* the answer the next UPLOAD returns; NULL:
				   the identity record */
	size_t ans_len;
	uint8_t *iup;		/* the upload in progress */
	size_t iup_len, iup_pos;
	int authorized;		/* the last authorization was accepted */
};

#define logf_(...) tp_sim_logf("sim-dfu", __VA_ARGS__)

/* ---- I/O ---------------------------------------------------------------- */

static volatile sig_atomic_t g_stop;

static int read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR && !g_stop)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* ---- descriptors -------------------------------------------------------- */

/* station-info follows the image settings in DFU mode and the one
 * run-time setting in run-time mode. */
static unsigned info_alt(const struct sim *s)
{
	return s->info ? (s->runtime ? 1 : s->alts) : MAX_ALTS + 1;
}

static unsigned nalts(const struct sim *s)
{
	return (s->runtime ? 1 : s->alts) + (s->info ? 1 : 0);
}

static uint16_t cur_pid(const struct sim *s)
{
	return s->runtime ? s->runtime_pid : s->pid;
}

static size_t device_desc(const struct sim *s, uint8_t *b)
{
	const uint8_t d[18] = {
		18, 1, 0x00, 0x02, 0, 0, 0, 64,
		(uint8_t)s->vid, (uint8_t)(s->vid >> 8),
		(uint8_t)cur_pid(s), (uint8_t)(cur_pid(s) >> 8),
		(uint8_t)s->bcd, (uint8_t)(s->bcd >> 8),
		1, 2, (uint8_t)(s->serial ? 3 : 0), 1,
	};
	memcpy(b, d, sizeof(d));
	return sizeof(d);
}

static size_t config_desc(const struct sim *s, uint8_t *b)
{
	uint8_t attrs = TP_DFU_CAN_DNLOAD;
	size_t n = 9;

	if (s->can_upload)
		attrs |= TP_DFU_CAN_UPLOAD;
	if (s->tolerant)
		attrs |= TP_DFU_MANIFEST_TOLERANT;
	if (s->will_detach)
		attrs |= TP_DFU_WILL_DETACH;
	for (unsigned a = 0; a < nalts(s); a++) {
		const uint8_t intf[9] = {9, 4, 0, (uint8_t)a, 0, 0xfe, 0x01,
					 (uint8_t)(s->runtime ? 1 : 2),
					 (uint8_t)(4 + a)};
		/* The functional descriptor follows each alternate setting,
		 * as many devices do; DFU 1.1 4.2.3 allows it anywhere in
		 * the DFU interface. */
		const uint8_t func[9] = {9, TP_DFU_FUNC_DESC_TYPE, attrs,
					 0xe8, 0x03,
					 (uint8_t)s->transfer_size,
					 (uint8_t)(s->transfer_size >> 8),
					 0x10, 0x01};
		memcpy(b + n, intf, 9);
		memcpy(b + n + 9, func, 9);
		n += 18;
	}
	const uint8_t cfg[9] = {9, 2, (uint8_t)n, (uint8_t)(n >> 8), 1, 1, 0,
				0x80, 50};
	memcpy(b, cfg, 9);
	return n;
}

static size_t string_desc(const struct sim *s, unsigned idx, uint8_t *b,
			  int *ok)
{
	char name[64];
	const char *str = NULL;
	size_t n = 2;

	*ok = 1;
	if (idx == 0) {
		b[0] = 4, b[1] = 3, b[2] = 0x09, b[3] = 0x04;
		return 4;
	}
	if (idx == 1)
		str = s->manufacturer;
	else if (idx == 2)
		str = s->product;
	else if (idx == 3 && s->serial)
		str = s->serial;
	else if (idx >= 4 && idx < 4 + nalts(s)) {
		if (idx - 4 == info_alt(s))
			str = "station-info";
		else {
			snprintf(name, sizeof(name), s->runtime ? "dfu-runtime"
								: "slot-%u",
				 idx - 4);
			str = name;
		}
	}
	if (!str) {
		*ok = 0;
		return 0;
	}
	for (const char *p = str; *p && n < 254; p++) {
		b[n++] = (uint8_t)*p;
		b[n++] = 0;
	}
	b[0] = (uint8_t)n;
	b[1] = 3;
	return n;
}

/* struct usbip_usb_device (312 bytes), big-endian. */
static void usbip_device(const struct sim *s, uint8_t *b)
{
	memset(b, 0, 312);
	snprintf((char *)b, 256, "/sys/devices/platform/sim-dfu/%s",
		 s->busid);
	snprintf((char *)b + 256, 32, "%s", s->busid);
	put32(b + 288, 1);		/* busnum */
	put32(b + 292, 2);		/* devnum */
	put32(b + 296, USB_SPEED_HIGH);
	put16(b + 300, s->vid);
	put16(b + 302, cur_pid(s));
	put16(b + 304, s->bcd);
	b[306] = 0, b[307] = 0, b[308] = 0; /* class at interface level */
	b[309] = 1;			/* bConfigurationValue */
	b[310] = 1;			/* bNumConfigurations */
	b[311] = 1;			/* bNumInterfaces */
}

/* ---- the device's store ------------------------------------------------- */

static void load_slots(struct sim *s)
{
	for (unsigned a = 0; a < s->alts; a++) {
		char path[4200];
		FILE *f;
		long len;

		snprintf(path, sizeof(path), "%s/slot-%u.bin", s->store, a);
		f = fopen(path, "rb");
		if (!f)
			continue;
		if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 &&
		    fseek(f, 0, SEEK_SET) == 0) {
			s->slots[a].data = malloc((size_t)len);
			if (s->slots[a].data &&
			    fread(s->slots[a].data, 1, (size_t)len, f) ==
				    (size_t)len)
				s->slots[a].len = (size_t)len;
		}
		fclose(f);
	}
}

static int write_file(const char *path, const void *data, size_t len)
{
	char tmp[4300];
	FILE *f;
	int ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "wb");
	if (!f)
		return -1;
	ok = fwrite(data, 1, len, f) == len;
	ok &= fclose(f) == 0;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0, r;

	if (!f)
		return NULL;
	do {
		if (n == cap) {
			uint8_t *nb = realloc(buf, cap = cap * 2 + 4096);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
	} while (r > 0);
	fclose(f);
	*len = n;
	return buf;
}

/* An image that begins "#station-sim-image sequence=N version=V" sets
 * those lines of the identity record, as new firmware would report. */
static void install_identity(struct sim *s, const uint8_t *img, size_t len)
{
	static const char tag[] = "#station-sim-image sequence=";
	char seq[24] = "", ver[130] = "", out[65536];
	size_t used = 0, rlen = 0;
	const char *nl;
	char *rec, *line, *save = NULL;

	if (!s->info || len < sizeof(tag) || memcmp(img, tag, sizeof(tag) - 1))
		return;
	nl = memchr(img, '\n', len < 256 ? len : 256);
	if (!nl)
		return;
	if (sscanf((const char *)img + sizeof(tag) - 1,
		   "%23[0-9] version=%129[!-~]", seq, ver) < 1)
		return;
	rec = (char *)slurp(s->info, &rlen);
	if (!rec)
		return;
	rec = realloc(rec, rlen + 1);
	rec[rlen] = '\0';
	for (line = strtok_r(rec, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		const char *k = line + strspn(line, " \t");
		if (!strncmp(k, "sequence", 8) || !strncmp(k, "version", 7))
			continue;
		used += (size_t)snprintf(out + used, sizeof(out) - used,
					 "%s\n", line);
	}
	used += (size_t)snprintf(out + used, sizeof(out) - used,
				 "sequence = %s\n", seq);
	if (ver[0])
		used += (size_t)snprintf(out + used, sizeof(out) - used,
					 "version = %s\n", ver);
	free(rec);
	if (used < sizeof(out) && write_file(s->info, out, used) == 0)
		logf_("identity: sequence = %s version = %s", seq, ver);
}

/* ---- identity (formats §9) on the station-info setting ---------------- */

/* What the device claims: the fields of its identity record (--info),
 * read afresh, as an installed image may have changed them. */
struct claim {
	char text[8192];
	struct sim_id_claim c;
};

static int load_claim(const struct sim *s, struct claim *cl)
{
	size_t len = 0;
	uint8_t *rec = slurp(s->info, &len);
	char *line, *save = NULL;

	memset(cl, 0, sizeof(*cl));
	if (!rec)
		return -1;
	if (len >= sizeof(cl->text))
		len = sizeof(cl->text) - 1;
	memcpy(cl->text, rec, len);
	free(rec);
	for (line = strtok_r(cl->text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '='), *k = line, *v, *e;

		if (!eq || *k == '#')
			continue;
		for (e = eq; e > k && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		*e = '\0';
		v = eq + 1 + strspn(eq + 1, " \t");
		if ((e = strchr(v, '#')))
			*e = '\0';
		for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t' ||
						 e[-1] == '\r');
		     e--)
			;
		*e = '\0';
		if (!strcmp(k, "model"))
			cl->c.model = v;
		else if (!strcmp(k, "hardware"))
			cl->c.hardware = v;
		else if (!strcmp(k, "serial"))
			cl->c.serial = v;
		else if (!strcmp(k, "version"))
			cl->c.version = v;
		else if (!strcmp(k, "sequence")) {
			cl->c.has_sequence = 1;
			cl->c.sequence = strtoull(v, NULL, 10);
		}
	}
	return cl->c.model && cl->c.serial ? 0 : -1;
}

/* The next UPLOAD of station-info returns text (taken over) instead of
 * the identity record. */
static void set_answer(struct sim *s, char *text, size_t len)
{
	free(s->ans);
	s->ans = text;
	s->ans_len = len;
}

static void answer_text(struct sim *s, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	set_answer(s, strndup(buf, (size_t)n), (size_t)n);
	logf_("station-info answers: %.*s", n && buf[n - 1] == '\n' ? n - 1 : n,
	      buf);
}

/* A command has been downloaded and "manifests": answer it. */
static void info_command(struct sim *s)
{
	static const char att[] = "attest ", auth[] = "authorize\n",
			  end[] = "end\n";
	struct claim cl;
	char err[300], *out = NULL;
	size_t n = s->cmd_len, olen = 0;

	if (load_claim(s, &cl) != 0) {
		answer_text(s, "error no identity record\n");
		return;
	}
	if (n > sizeof(att) && !memcmp(s->cmd, att, sizeof(att) - 1) &&
	    s->cmd[n - 1] == '\n') {
		s->cmd[n - 1] = '\0';
		sim_id_attest(s->id, &cl.c, s->cmd + sizeof(att) - 1, "\n",
			      &out, &olen);
		logf_("attest: answered %zu bytes", olen);
		set_answer(s, out, olen);
		s->authorized = 0; /* a new session needs a new one */
		return;
	}
	if (n >= sizeof(auth) - 1 + sizeof(end) - 1 &&
	    !memcmp(s->cmd, auth, sizeof(auth) - 1) &&
	    !memcmp(s->cmd + n - (sizeof(end) - 1), end, sizeof(end) - 1)) {
		s->authorized =
			sim_id_authorize(s->id, &cl.c, s->cmd + sizeof(auth) - 1,
					 n - (sizeof(auth) - 1) -
						 (sizeof(end) - 1),
					 (int64_t)time(NULL), err,
					 sizeof(err)) == 0;
		if (s->authorized)
			answer_text(s, "ok\n");
		else
			answer_text(s, "error %s\n", err);
		return;
	}
	answer_text(s, "error unknown command\n");
}

/* The receipt for what slot `alt` now holds, left for the station. */
static void make_receipt(struct sim *s, unsigned alt, const uint8_t *data,
			 size_t len, const uint8_t digest[CU_SHA256_LEN])
{
	char err[300], hex[CU_SHA256_HEX_LEN + 1], *out = NULL, *all;
	size_t olen = 0;
	struct claim cl;

	(void)data;
	if (load_claim(s, &cl) != 0) {
		answer_text(s, "error no identity record\n");
		return;
	}
	if (sim_id_receipt(s->id, &cl.c, alt, len, digest, "\n", &out, &olen,
			   err, sizeof(err)) != 0) {
		answer_text(s, "error %s\n", err);
		return;
	}
	cu_hex(digest, CU_SHA256_LEN, hex);
	all = realloc(out, olen + 16 + sizeof(hex));
	if (!all) {
		free(out);
		answer_text(s, "error out of memory\n");
		return;
	}
	olen += (size_t)sprintf(all + olen, "ok sha256=%s\n", hex);
	set_answer(s, all, olen);
	logf_("receipt for slot %u ready (%zu bytes)", alt, olen);
}

/* station-info's own DFU state machine (DFU 1.1 6.1 and 6.2 as for an
 * image, but the "manifestation" of a download is answering it).  A
 * device without a key takes no commands: it stalls every DNLOAD. */
static int info_stall(struct sim *s, uint8_t status)
{
	s->istate = TP_DFU_ERROR;
	if (s->istatus == TP_DFU_OK)
		s->istatus = status;
	return -32;
}

static int info_request(struct sim *s, uint8_t req, uint16_t value,
			uint8_t *data, size_t len)
{
	size_t n;

	switch (req) {
	case TP_DFU_DNLOAD:
		if (s->istate != TP_DFU_IDLE && s->istate != TP_DFU_DNLOAD_IDLE)
			return info_stall(s, TP_DFU_ERR_STALLEDPKT);
		if (!s->id)
			return info_stall(s, TP_DFU_ERR_TARGET);
		if (len == 0) {
			if (s->istate == TP_DFU_IDLE)
				return info_stall(s, TP_DFU_ERR_NOTDONE);
			s->istate = TP_DFU_MANIFEST_SYNC;
			return 0;
		}
		if (s->istate == TP_DFU_IDLE) {
			s->cmd_len = 0;
			s->iexpect = 0;
		}
		if (value != s->iexpect || len > s->transfer_size)
			return info_stall(s, TP_DFU_ERR_FILE);
		if (s->cmd_len + len > 65536)
			return info_stall(s, TP_DFU_ERR_ADDRESS);
		memcpy(s->cmd + s->cmd_len, data, len);
		s->cmd_len += len;
		s->iexpect = (s->iexpect + 1) & 0xffff;
		s->istate = TP_DFU_DNLOAD_SYNC;
		return 0;
	case TP_DFU_GETSTATUS: {
		uint8_t report;

		if (len < 6)
			return info_stall(s, TP_DFU_ERR_STALLEDPKT);
		switch (s->istate) {
		case TP_DFU_DNLOAD_SYNC:
			s->istate = TP_DFU_DNLOAD_IDLE;
			break;
		case TP_DFU_MANIFEST_SYNC:
			info_command(s);
			s->istate = TP_DFU_MANIFEST;
			break;
		case TP_DFU_MANIFEST:
			s->istate = TP_DFU_IDLE;
			break;
		}
		report = s->istate;
		data[0] = s->istatus;
		data[1] = data[2] = data[3] = 0;
		data[4] = report;
		data[5] = 0;
		return 6;
	}
	case TP_DFU_UPLOAD:
		if (len > s->transfer_size)
			return info_stall(s, TP_DFU_ERR_STALLEDPKT);
		if (s->istate == TP_DFU_IDLE) {
			free(s->iup);
			if (s->ans) { /* the pending answer, once */
				s->iup = (uint8_t *)s->ans;
				s->iup_len = s->ans_len;
				s->ans = NULL;
			} else {
				s->iup = slurp(s->info, &s->iup_len);
				if (!s->iup)
					return info_stall(s, TP_DFU_ERR_FILE);
			}
			s->iup_pos = 0;
			s->istate = TP_DFU_UPLOAD_IDLE;
		} else if (s->istate != TP_DFU_UPLOAD_IDLE) {
			return info_stall(s, TP_DFU_ERR_STALLEDPKT);
		}
		n = s->iup_len - s->iup_pos;
		if (n > len)
			n = len;
		memcpy(data, s->iup + s->iup_pos, n);
		s->iup_pos += n;
		if (n < len)
			s->istate = TP_DFU_IDLE;
		return (int)n;
	case TP_DFU_CLRSTATUS:
		if (s->istate != TP_DFU_ERROR)
			return info_stall(s, TP_DFU_ERR_STALLEDPKT);
		s->istate = TP_DFU_IDLE;
		s->istatus = TP_DFU_OK;
		return 0;
	case TP_DFU_ABORT:
		if (s->istate == TP_DFU_ERROR || s->istate == TP_DFU_MANIFEST)
			return info_stall(s, TP_DFU_ERR_STALLEDPKT);
		s->istate = TP_DFU_IDLE;
		return 0;
	case TP_DFU_GETSTATE:
		data[0] = s->istate;
		return 1;
	default:
		return info_stall(s, TP_DFU_ERR_STALLEDPKT);
	}
}

static void manifest_image(struct sim *s)
{
	uint8_t digest[CU_SHA256_LEN];
	char hex[CU_SHA256_HEX_LEN + 1], path[4200];
	struct slot *sl = &s->slots[s->alt];

	if (s->store_other && s->dl_len) {
		s->dl[s->dl_len / 2] ^= 0x5a;
		logf_("fault: slot %u stored with a wrong byte at offset %zu",
		      s->alt, s->dl_len / 2);
	}
	if (cu_sha256(s->dl, s->dl_len, digest) != 0) {
		/* The image stays unmanifested: the station sees a failure. */
		logf_("cannot hash the downloaded image");
		return;
	}
	cu_hex(digest, sizeof(digest), hex);
	free(sl->data);
	sl->data = s->dl;
	sl->len = s->dl_len;
	s->dl = NULL;
	s->dl_len = s->dl_cap = 0;
	snprintf(path, sizeof(path), "%s/slot-%u.bin", s->store, s->alt);
	if (write_file(path, sl->data, sl->len) != 0)
		logf_("cannot store %s: %s", path, strerror(errno));
	logf_("manifest: slot %u %zu bytes in %ld blocks sha256 %s "
	      "(early polls %lu)", s->alt, sl->len, s->blocks, hex,
	      s->early_polls);
	if (s->id)
		make_receipt(s, s->alt, sl->data, sl->len, digest);
	if (s->alt == 0)
		install_identity(s, sl->data, sl->len);
}

/* ---- DFU ---------------------------------------------------------------- */

/* A refused request: the pipe stalls and, in DFU mode, the device goes to
 * dfuERROR (DFU 1.1 6.1.2). */
static int stall(struct sim *s, uint8_t status)
{
	if (!s->runtime) {
		s->state = TP_DFU_ERROR;
		if (s->status == TP_DFU_OK)
			s->status = status;
	}
	return -32; /* -EPIPE */
}

static void reset_download(struct sim *s)
{
	free(s->dl);
	s->dl = NULL;
	s->dl_len = s->dl_cap = 0;
	s->blocks = 0;
	s->expect_block = 0;
}

static int dfu_dnload(struct sim *s, uint16_t block, const uint8_t *data,
		      size_t len)
{
	if (s->state != TP_DFU_IDLE && s->state != TP_DFU_DNLOAD_IDLE)
		return stall(s, TP_DFU_ERR_STALLEDPKT);
	if (len == 0) {
		char err[200];

		if (s->state == TP_DFU_IDLE) /* nothing to end */
			return stall(s, TP_DFU_ERR_NOTDONE);
		if (s->id && sim_id_may_receive(s->id, s->alt, s->dl_len, err,
						sizeof(err)) != 0) {
			logf_("refused: %zu bytes for slot %u: %s", s->dl_len,
			      s->alt, err);
			reset_download(s);
			return stall(s, TP_DFU_ERR_TARGET);
		}
		s->state = TP_DFU_MANIFEST_SYNC;
		logf_("download end after %ld blocks (%zu bytes)", s->blocks,
		      s->dl_len);
		return 0;
	}
	if (s->state == TP_DFU_IDLE)
		reset_download(s);
	if (s->id && !s->authorized) {
		/* formats §9: nothing is written without an authorization */
		logf_("refused: block %u to slot %u without an authorization",
		      block, s->alt);
		return stall(s, TP_DFU_ERR_WRITE);
	}
	if (len > s->transfer_size)
		return stall(s, TP_DFU_ERR_STALLEDPKT);
	if (block != s->expect_block) {
		logf_("block %u arrived when %u was expected", block,
		      s->expect_block);
		return stall(s, TP_DFU_ERR_FILE);
	}
	if (s->blocks == s->vanish_at) {
		logf_("fault: leaving the bus at block %ld", s->blocks);
		s->vanish_now = 1;
		return 0;
	}
	if (s->blocks == s->stall_at) {
		logf_("fault: stalling block %ld (errWRITE)", s->blocks);
		return stall(s, TP_DFU_ERR_WRITE);
	}
	if (s->dl_len + len > MAX_IMAGE)
		return stall(s, TP_DFU_ERR_ADDRESS);
	if (s->dl_len + len > s->dl_cap) {
		size_t cap = (s->dl_len + len) * 2;
		uint8_t *nb = realloc(s->dl, cap);
		if (!nb)
			return stall(s, TP_DFU_ERR_UNKNOWN);
		s->dl = nb;
		s->dl_cap = cap;
	}
	memcpy(s->dl + s->dl_len, data, len);
	s->dl_len += len;
	s->busy_ms = s->blocks == s->long_busy_at ? s->long_busy_ms
						  : s->poll_ms;
	s->busy_told = 0;
	s->blocks++;
	s->total_blocks++;
	s->expect_block = (s->expect_block + 1) & 0xffff;
	s->state = TP_DFU_DNLOAD_SYNC;
	return 0;
}

static int dfu_getstatus(struct sim *s, uint8_t *b)
{
	uint8_t report;
	unsigned poll = 0;

	if (s->runtime) {
		report = s->state;
		goto answer;
	}
	switch (s->state) {
	case TP_DFU_DNLOAD_SYNC:
	case TP_DFU_DNBUSY:
		if (s->busy_ms && !s->busy_told) {
			/* Programming: come back in bwPollTimeout. */
			s->busy_told = 1;
			s->busy_until = stn_mono_ms() + s->busy_ms;
			s->state = TP_DFU_DNBUSY;
			report = TP_DFU_DNBUSY;
			poll = s->busy_ms;
			goto answer;
		}
		if (s->busy_ms && stn_mono_ms() < s->busy_until) {
			s->early_polls++;
			logf_("early GETSTATUS: %" PRId64 " ms before the "
			      "bwPollTimeout given had passed",
			      s->busy_until - stn_mono_ms());
			if (s->strict_polls)
				return stall(s, TP_DFU_ERR_STALLEDPKT);
			report = TP_DFU_DNBUSY;
			poll = (unsigned)(s->busy_until - stn_mono_ms());
			goto answer;
		}
		s->state = TP_DFU_DNLOAD_IDLE;
		break;
	case TP_DFU_MANIFEST_SYNC:
		if (s->verify_error) {
			logf_("fault: manifestation fails with errVERIFY");
			s->state = TP_DFU_ERROR;
			s->status = TP_DFU_ERR_VERIFY;
			reset_download(s);
			break;
		}
		manifest_image(s);
		s->state = TP_DFU_MANIFEST;
		report = TP_DFU_MANIFEST;
		poll = s->manifest_ms;
		goto answer;
	case TP_DFU_MANIFEST:
		s->state = s->tolerant ? TP_DFU_IDLE
				       : TP_DFU_MANIFEST_WAIT_RESET;
		break;
	default:
		break;
	}
	report = s->state;
answer:
	b[0] = s->status;
	b[1] = (uint8_t)poll;
	b[2] = (uint8_t)(poll >> 8);
	b[3] = (uint8_t)(poll >> 16);
	b[4] = report;
	b[5] = 0;
	return 6;
}

static int dfu_upload(struct sim *s, uint16_t block, uint8_t *out,
		      size_t len)
{
	size_t n;

	(void)block;
	if (!s->can_upload)
		return stall(s, TP_DFU_ERR_STALLEDPKT);
	if (len > s->transfer_size)
		return stall(s, TP_DFU_ERR_STALLEDPKT);
	if (s->state == TP_DFU_IDLE) {
		struct slot *sl = &s->slots[s->alt];

		free(s->up_copy);
		s->up_copy = malloc(sl->len ? sl->len : 1);
		if (!s->up_copy)
			return stall(s, TP_DFU_ERR_UNKNOWN);
		memcpy(s->up_copy, sl->data, sl->len);
		s->up_len = sl->len;
		if (s->corrupt_upload && sl->len) {
			s->up_copy[sl->len / 2] ^= 0x5a;
			logf_("fault: upload of slot %u carries a wrong byte "
			      "at offset %zu", s->alt, sl->len / 2);
		}
		s->up = s->up_copy;
		s->up_pos = 0;
		s->state = TP_DFU_UPLOAD_IDLE;
	} else if (s->state != TP_DFU_UPLOAD_IDLE) {
		return stall(s, TP_DFU_ERR_STALLEDPKT);
	}
	n = s->up_len - s->up_pos;
	if (n > len)
		n = len;
	memcpy(out, s->up + s->up_pos, n);
	s->up_pos += n;
	if (n < len) {
		s->state = TP_DFU_IDLE;
		logf_("upload of alternate setting %u: %zu bytes", s->alt,
		      s->up_len);
	}
	return (int)n;
}

/* A class request to the DFU interface.  Returns the bytes of an IN
 * answer (or 0), or -32 for a stall. */
static int dfu_request(struct sim *s, uint8_t req, uint16_t value,
		       uint8_t *data, size_t len)
{
	if (s->alt == info_alt(s))
		return info_request(s, req, value, data, len);
	if (s->runtime) {
		switch (req) {
		case TP_DFU_GETSTATUS:
			return len < 6 ? stall(s, 0) : dfu_getstatus(s, data);
		case TP_DFU_GETSTATE:
			data[0] = s->state;
			return 1;
		case TP_DFU_DETACH:
			logf_("DFU_DETACH (wTimeout %u ms)%s", value,
			      s->will_detach ? ": leaving the bus" : "");
			s->state = TP_DFU_APP_DETACH;
			if (s->will_detach)
				s->leave_now = 1;
			return 0;
		default:
			return stall(s, 0);
		}
	}
	switch (req) {
	case TP_DFU_DNLOAD:
		return dfu_dnload(s, value, data, len);
	case TP_DFU_UPLOAD:
		return dfu_upload(s, value, data, len);
	case TP_DFU_GETSTATUS:
		return len < 6 ? stall(s, TP_DFU_ERR_STALLEDPKT)
			       : dfu_getstatus(s, data);
	case TP_DFU_CLRSTATUS:
		if (s->state != TP_DFU_ERROR)
			return stall(s, TP_DFU_ERR_STALLEDPKT);
		s->state = TP_DFU_IDLE;
		s->status = TP_DFU_OK;
		reset_download(s);
		return 0;
	case TP_DFU_GETSTATE:
		data[0] = s->state;
		return 1;
	case TP_DFU_ABORT:
		switch (s->state) {
		case TP_DFU_IDLE:
		case TP_DFU_DNLOAD_SYNC:
		case TP_DFU_DNLOAD_IDLE:
		case TP_DFU_MANIFEST_SYNC:
		case TP_DFU_UPLOAD_IDLE:
			s->state = TP_DFU_IDLE;
			reset_download(s);
			return 0;
		default:
			return stall(s, TP_DFU_ERR_STALLEDPKT);
		}
	default:
		return stall(s, TP_DFU_ERR_STALLEDPKT);
	}
}

/* The bus was reset: a device waiting for it starts its firmware; a
 * run-time device that was detached comes back in DFU mode. */
static void bus_reset(struct sim *s)
{
	s->configured = 0;
	s->alt = 0;
	s->istate = TP_DFU_IDLE; /* a command cut by the reset is dropped */
	s->istatus = TP_DFU_OK;
	if (s->runtime && s->state == TP_DFU_APP_DETACH) {
		s->runtime = 0;
		s->state = TP_DFU_IDLE;
		s->status = TP_DFU_OK;
		logf_("bus reset: now in DFU mode (%04x:%04x)", s->vid, s->pid);
	} else if (!s->runtime && s->start_runtime &&
		   (s->state == TP_DFU_MANIFEST_WAIT_RESET ||
		    s->state == TP_DFU_IDLE)) {
		s->runtime = 1;
		s->state = TP_DFU_APP_IDLE;
		s->status = TP_DFU_OK;
		logf_("bus reset: running the firmware (%04x:%04x)", s->vid,
		      s->runtime_pid);
	} else {
		if (!s->runtime) {
			s->state = TP_DFU_IDLE;
			s->status = TP_DFU_OK;
		}
		reset_download(s);
		logf_("bus reset");
	}
}

/* One control transfer.  Returns the IN length, 0, or -32 (stall). */
static int control(struct sim *s, const uint8_t setup[8], uint8_t *data)
{
	uint8_t type = setup[0], req = setup[1];
	uint16_t value = (uint16_t)(setup[2] | setup[3] << 8);
	uint16_t index = (uint16_t)(setup[4] | setup[5] << 8);
	uint16_t length = (uint16_t)(setup[6] | setup[7] << 8);
	uint8_t buf[1024];
	size_t n = 0;
	int ok = 1;

	if ((type & 0x60) == 0x20) { /* class */
		if ((type & 0x1f) != 1 || (index & 0xff) != 0)
			return -32;
		return dfu_request(s, req, value, data, length);
	}
	if ((type & 0x60) != 0)
		return -32;
	switch (req) {
	case 6: /* GET_DESCRIPTOR */
		switch (value >> 8) {
		case 1:
			/* The kernel reads the device descriptor when it
			 * enumerates a port, after each reset: once the
			 * device was configured, this is a reset. */
			if (s->configured)
				bus_reset(s);
			n = device_desc(s, buf);
			break;
		case 2:
			n = config_desc(s, buf);
			break;
		case 3:
			n = string_desc(s, value & 0xff, buf, &ok);
			break;
		default:
			ok = 0;
		}
		if (!ok)
			return -32;
		if (n > length)
			n = length;
		memcpy(data, buf, n);
		return (int)n;
	case 9: /* SET_CONFIGURATION */
		s->configured = (value & 0xff) == 1;
		s->alt = 0;
		return 0;
	case 8: /* GET_CONFIGURATION */
		data[0] = (uint8_t)s->configured;
		return length ? 1 : 0;
	case 11: /* SET_INTERFACE */
		if ((index & 0xff) != 0 || value >= nalts(s))
			return -32;
		s->alt = value;
		return 0;
	case 10: /* GET_INTERFACE */
		data[0] = (uint8_t)s->alt;
		return length ? 1 : 0;
	case 0: /* GET_STATUS */
		if (length < 2)
			return -32;
		data[0] = data[1] = 0;
		return 2;
	case 1: /* CLEAR_FEATURE */
	case 3: /* SET_FEATURE */
	case 5: /* SET_ADDRESS */
		return 0;
	default:
		return -32;
	}
}

/* ---- USB/IP ------------------------------------------------------------- */

/* Serve URBs of one import until the connection ends or the device
 * leaves the bus.  Returns 1 when the device left on its own. */
static int serve(struct sim *s, int fd)
{
	uint8_t hdr[48], out[48];
	uint8_t *data = malloc(65536);

	if (!data)
		return 0;
	for (;;) {
		uint32_t cmd, seq, dir, ep, len;
		int rc = 0;

		if (read_all(fd, hdr, sizeof(hdr)) != 0) {
			logf_("the host closed the connection");
			free(data);
			return 0;
		}
		cmd = get32(hdr);
		seq = get32(hdr + 4);
		dir = get32(hdr + 12);
		ep = get32(hdr + 16);
		memset(out, 0, sizeof(out));
		put32(out + 4, seq);
		if (cmd == CMD_UNLINK) {
			/* Every URB is answered before the next is read, so
			 * the one to unlink is already done. */
			put32(out, RET_UNLINK);
			if (stn_write_all(fd, out, sizeof(out)) != 0)
				break;
			continue;
		}
		if (cmd != CMD_SUBMIT) {
			logf_("unknown USB/IP command %" PRIu32, cmd);
			break;
		}
		len = get32(hdr + 24);
		if (len > 65536) {
			logf_("URB of %" PRIu32 " bytes refused", len);
			break;
		}
		if (dir == 0 && len && read_all(fd, data, len) != 0)
			break;
		if (ep != 0)
			rc = -32;
		else
			rc = control(s, hdr + 40, data);
		if (s->vanish_now) {
			free(data);
			return 1;
		}
		if (rc > (int)len)
			rc = (int)len;
		put32(out, RET_SUBMIT);
		put32(out + 20, rc < 0 ? (uint32_t)rc : 0);
		put32(out + 24, rc < 0 ? 0 : dir == 0 ? len : (uint32_t)rc);
		if (dir == 1 && rc > 0) {
			/* Header and data in one segment, as a real USB/IP
			 * server's socket would usually carry them. */
			struct iovec iov[2] = {{out, sizeof(out)},
					       {data, (size_t)rc}};
			ssize_t n = writev(fd, iov, 2);
			size_t want = sizeof(out) + (size_t)rc;
			if (n < 0)
				n = 0;
			if ((size_t)n < sizeof(out) &&
			    stn_write_all(fd, out + n, sizeof(out) - (size_t)n))
				break;
			if ((size_t)n < want &&
			    stn_write_all(fd,
				      data + ((size_t)n > sizeof(out)
						      ? (size_t)n - sizeof(out)
						      : 0),
				      (size_t)rc -
					      ((size_t)n > sizeof(out)
						       ? (size_t)n - sizeof(out)
						       : 0)))
				break;
		} else if (stn_write_all(fd, out, sizeof(out)) != 0) {
			break;
		}
		if (s->leave_now) {
			free(data);
			return 1;
		}
	}
	free(data);
	return 0;
}

static void spawn_attach(const struct sim *s)
{
	char port[16];
	pid_t pid;

	snprintf(port, sizeof(port), "%d", s->port);
	pid = fork();
	if (pid == 0) {
		execlp("usbip", "usbip", "--tcp-port", port, "attach", "-r",
		       "127.0.0.1", "-b", s->busid, (char *)NULL);
		_exit(127);
	}
	if (pid < 0)
		logf_("cannot start usbip attach: %s", strerror(errno));
}

static void handle(struct sim *s, int fd)
{
	uint8_t op[8], busid[32], dev[312], rep[8];
	uint16_t code;

	if (read_all(fd, op, sizeof(op)) != 0)
		return;
	code = (uint16_t)(op[2] << 8 | op[3]);
	put16(rep, USBIP_VERSION);
	put32(rep + 4, 0);
	if (code == OP_REQ_DEVLIST) {
		uint8_t n[4], intf[4] = {0xfe, 0x01, 0, 0};
		intf[2] = (uint8_t)(s->runtime ? 1 : 2);
		put16(rep + 2, OP_REP_DEVLIST);
		put32(n, 1);
		usbip_device(s, dev);
		(void)(stn_write_all(fd, rep, 8) || stn_write_all(fd, n, 4) ||
		       stn_write_all(fd, dev, sizeof(dev)) ||
		       stn_write_all(fd, intf, 4));
		return;
	}
	if (code != OP_REQ_IMPORT || read_all(fd, busid, sizeof(busid)) != 0)
		return;
	put16(rep + 2, OP_REP_IMPORT);
	if (strncmp((const char *)busid, s->busid, sizeof(busid)) != 0) {
		put32(rep + 4, 1);
		(void)stn_write_all(fd, rep, 8);
		return;
	}
	usbip_device(s, dev);
	if (stn_write_all(fd, rep, 8) || stn_write_all(fd, dev, sizeof(dev)))
		return;
	logf_("imported as %04x:%04x (%s mode)", s->vid, cur_pid(s),
	      s->runtime ? "run-time" : "DFU");
	s->configured = 0;
	s->alt = 0;
	if (serve(s, fd)) {
		/* The device left the bus: the connection drops, as a cable
		 * pulled out; a detaching device comes back in DFU mode. */
		if (s->leave_now) {
			s->leave_now = 0;
			s->runtime = 0;
			s->state = TP_DFU_IDLE;
			s->status = TP_DFU_OK;
			shutdown(fd, SHUT_RDWR);
			usleep(200 * 1000);
			if (s->attach)
				spawn_attach(s);
		} else {
			s->vanish_now = 0;
			s->vanish_at = -1;
			reset_download(s);
			s->state = TP_DFU_IDLE;
			shutdown(fd, SHUT_RDWR);
			if (s->replug_ms) {
				usleep(s->replug_ms * 1000);
				if (s->attach)
					spawn_attach(s);
			}
		}
	}
	logf_("import ended (blocks so far %lu, early polls %lu)",
	      s->total_blocks, s->early_polls);
}

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static unsigned long num(const char *opt, const char *v, int base,
			 unsigned long max)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, base);
	if (errno || *end || end == v || n > max) {
		fprintf(stderr, "sim-dfu: bad value for %s: %s\n", opt, v);
		exit(2);
	}
	return n;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"store", required_argument, NULL, 's'},
		{"port", required_argument, NULL, 'P'},
		{"busid", required_argument, NULL, 'b'},
		{"vid", required_argument, NULL, 'v'},
		{"pid", required_argument, NULL, 'p'},
		{"runtime-pid", required_argument, NULL, 'r'},
		{"serial", required_argument, NULL, 'S'},
		{"no-serial", no_argument, NULL, 'N'},
		{"product", required_argument, NULL, 'o'},
		{"bcd", required_argument, NULL, 'B'},
		{"alts", required_argument, NULL, 'a'},
		{"info", required_argument, NULL, 'i'},
		{"transfer-size", required_argument, NULL, 't'},
		{"not-tolerant", no_argument, NULL, 'T'},
		{"will-detach", no_argument, NULL, 'W'},
		{"no-upload", no_argument, NULL, 'U'},
		{"poll-ms", required_argument, NULL, 'l'},
		{"manifest-ms", required_argument, NULL, 'm'},
		{"attach", no_argument, NULL, 'A'},
		{"ready", required_argument, NULL, 'R'},
		{"stall-at", required_argument, NULL, '1'},
		{"vanish-at", required_argument, NULL, '2'},
		{"replug-ms", required_argument, NULL, '3'},
		{"long-busy-at", required_argument, NULL, '4'},
		{"long-busy-ms", required_argument, NULL, '5'},
		{"verify-error", no_argument, NULL, '6'},
		{"corrupt-upload", no_argument, NULL, '7'},
		{"store-other", no_argument, NULL, '9'},
		{"strict-polls", no_argument, NULL, '8'},
		{"device-key", required_argument, NULL, 'K'},
		{"device-cert", required_argument, NULL, 'C'},
		{"fleet-anchor", required_argument, NULL, 'F'},
		{"misbehave", required_argument, NULL, 'M'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	struct sim s = {
		.busid = "1-1", .port = 3240, .vid = 0x1209, .pid = 0x5744,
		.bcd = 0x0240, .serial = "SN-D001", .product = "TX-200",
		.manufacturer = "station sim", .alts = 1,
		.transfer_size = 4096, .tolerant = 1, .can_upload = 1,
		.stall_at = -1, .vanish_at = -1, .long_busy_at = -1,
	};
	struct sockaddr_in addr = {0};
	struct sigaction sa = {0};
	int c, lfd, one = 1;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': s.store = optarg; break;
		case 'P': s.port = (int)num("--port", optarg, 10, 65535); break;
		case 'b': s.busid = optarg; break;
		case 'v': s.vid = (uint16_t)num("--vid", optarg, 16, 0xffff); break;
		case 'p': s.pid = (uint16_t)num("--pid", optarg, 16, 0xffff); break;
		case 'r':
			s.runtime_pid = (uint16_t)num("--runtime-pid", optarg,
						      16, 0xffff);
			s.start_runtime = 1;
			break;
		case 'S': s.serial = optarg; break;
		case 'N': s.serial = NULL; break;
		case 'o': s.product = optarg; break;
		case 'B': s.bcd = (uint16_t)num("--bcd", optarg, 16, 0xffff); break;
		case 'a': s.alts = (unsigned)num("--alts", optarg, 10, MAX_ALTS - 1); break;
		case 'i': s.info = optarg; break;
		case 't':
			s.transfer_size = (uint16_t)num("--transfer-size",
							optarg, 10, 65535);
			break;
		case 'T': s.tolerant = 0; break;
		case 'W': s.will_detach = 1; break;
		case 'U': s.can_upload = 0; break;
		case 'l': s.poll_ms = (unsigned)num("--poll-ms", optarg, 10, 0xffffff); break;
		case 'm': s.manifest_ms = (unsigned)num("--manifest-ms", optarg, 10, 0xffffff); break;
		case 'A': s.attach = 1; break;
		case 'R': s.ready = optarg; break;
		case '1': s.stall_at = (long)num("--stall-at", optarg, 10, 1u << 30); break;
		case '2': s.vanish_at = (long)num("--vanish-at", optarg, 10, 1u << 30); break;
		case '3': s.replug_ms = (unsigned)num("--replug-ms", optarg, 10, 600000); break;
		case '4': s.long_busy_at = (long)num("--long-busy-at", optarg, 10, 1u << 30); break;
		case '5': s.long_busy_ms = (unsigned)num("--long-busy-ms", optarg, 10, 0xffffff); break;
		case '6': s.verify_error = 1; break;
		case '7': s.corrupt_upload = 1; break;
		case '9': s.store_other = 1; break;
		case '8': s.strict_polls = 1; break;
		case 'K': s.key = optarg; break;
		case 'C': s.cert = optarg; break;
		case 'F': s.anchor = optarg; break;
		case 'M': {
			unsigned bit;
			if (sim_id_fault_parse(optarg, &bit) != 0) {
				fprintf(stderr, "sim-dfu: unknown --misbehave "
						"%s\n", optarg);
				return 2;
			}
			s.faults |= bit;
			break;
		}
		case 'h': fputs(usage_text, stdout); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (!s.store || optind != argc || s.alts == 0 ||
	    s.transfer_size == 0) {
		fputs(usage_text, stderr);
		return 2;
	}
	if ((s.key || s.cert || s.anchor || s.faults) &&
	    !(s.key && s.cert && s.anchor && s.info)) {
		fprintf(stderr, "sim-dfu: a device key needs --device-key, "
				"--device-cert, --fleet-anchor and --info\n");
		return 2;
	}
	if (s.key) {
		char err[300];
		if (sim_id_load(s.key, s.cert, s.anchor, s.faults, &s.id, err,
				sizeof(err)) != 0) {
			fprintf(stderr, "sim-dfu: %s\n", err);
			return 2;
		}
	}
	s.cmd = malloc(65536);
	if (!s.cmd)
		return 1;
	s.istate = TP_DFU_IDLE;
	s.runtime = s.start_runtime;
	s.state = s.runtime ? TP_DFU_APP_IDLE : TP_DFU_IDLE;
	load_slots(&s);

	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = SA_NOCLDWAIT; /* usbip attach children reap themselves */
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)s.port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(lfd, 4)) {
		logf_("cannot listen on 127.0.0.1:%d: %s", s.port,
		      strerror(errno));
		return 1;
	}
	logf_("listening on 127.0.0.1:%d, bus id %s, %04x:%04x serial %s",
	      s.port, s.busid, s.vid, cur_pid(&s),
	      s.serial ? s.serial : "(none)");
	if (s.ready)
		write_file(s.ready, "ready\n", 6);
	if (s.attach)
		spawn_attach(&s);
	while (!g_stop) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		handle(&s, fd);
		close(fd);
	}
	logf_("stopped: %lu blocks taken, %lu early polls", s.total_blocks,
	      s.early_polls);
	close(lfd);
	sim_id_free(s.id);
	free(s.cmd);
	free(s.ans);
	free(s.iup);
	return 0;
}
