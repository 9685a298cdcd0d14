/* transport/sim/sim-serial.c: a serial device on a pseudo-terminal for the
 * tests and the demo.  It speaks the station console with YMODEM uploads
 * (spec/devices.md) or, in ymodem mode, only receives files the way a
 * bootloader's `loady` does, and stores what it gets so a test can compare
 * it byte for byte. */
#include <dirent.h>
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
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "station/base/hex.h"
#include "station/base/sha256.h"
#include "station/base/error.h"
#include "transport/devmsg.h"
#include "transport/serial.h"
#include "transport/sim_identity.h"
#include "transport/sim_line.h"
#include "transport/ymodem.h"
#include "station/base/monotime.h"
#include "transport/sim_log.h"

#define IDENTITY_MAX (64 * 1024) /* the text record limit, formats §1 */
#define LINE_CAP 1200
/* An authorization's lines: a base64 certificate is the longest. */
#define AUTH_LINE_CAP (TP_MSG_LINE_MAX + 2)
/* The whole block between `authorize` and `end`: devmsg's caps, as the
 * station sends it, with room for CRs. */
#define AUTH_BLOCK_MAX (64 * 1024)
#define AUTH_LINES_MAX (TP_MSG_LINES_MAX + TP_MSG_CERTS_MAX + 8)
#define SLOT_MAX 255
#define DEFAULT_MAX_SIZE (64ULL * 1024 * 1024)

/*
 * Demo and test images may begin with the line
 *
 *     #station-sim-image sequence=N version=V\n
 *
 * (N decimal, V printable without spaces).  On `boot` the simulator
 * "installs" such an image: it rewrites `sequence` and `version` in its
 * identity file, as a real device would report its new firmware.
 */
static const char image_tag[] = "#station-sim-image sequence=";

static const char usage_text[] =
	"usage: sim-serial --identity FILE --store DIR [--link PATH]\n"
	"                  [--max-size BYTES] [--wrong-sha] [--slow MS]\n"
	"                  [--mode console|ymodem] [--baud N] [--drop-at N]\n"
	"                  [--drop-ms MS] [--corrupt-block K] [--nak-every N]\n"
	"                  [--ack-delay MS]\n"
	"                  [--device-key K --device-cert CHAIN\n"
	"                   --fleet-anchor PEM [--misbehave NAME]...]\n"
	"                  [--no-attest]\n"
	"\n"
	"Creates a pseudo-terminal, prints `pty PATH` on stdout and serves\n"
	"sessions on it until SIGTERM or SIGINT.\n"
	"  --identity FILE  station-device-1 record answered to `info`\n"
	"                   (needed in console mode)\n"
	"  --store DIR      where received images go: DIR/slot-N.bin in\n"
	"                   console mode, DIR/received.bin in ymodem mode\n"
	"  --link PATH      also make PATH a symlink to the pty\n"
	"  --max-size N     refuse images over N bytes (default 64 MiB)\n"
	"  --wrong-sha      answer `receive` with a wrong sha256\n"
	"  --slow MS        wait MS milliseconds before every console line\n"
	"                   it sends (to try the station's timeouts)\n"
	"  --mode M         console (default) or ymodem (plain receiver,\n"
	"                   like U-Boot's loady)\n"
	"Faults of a real line and device:\n"
	"  --baud N         pace the line like a UART at N baud (10 bits a\n"
	"                   byte, both directions)\n"
	"  --drop-at N      drop the line (the pty hangs up, the link goes\n"
	"                   away) when the station has sent N bytes; it\n"
	"                   comes back after --drop-ms (default 1000)\n"
	"  --corrupt-block K  YMODEM data block K arrives damaged the first\n"
	"                   time (the receiver NAKs it)\n"
	"  --nak-every N    NAK the first copy of every Nth data block\n"
	"  --ack-delay MS   wait MS before each YMODEM answer\n"
	"Device identity (formats §9; console mode):\n"
	"  --device-key K   the device key (PEM); with --device-cert (PEM\n"
	"                   chain, leaf first) and --fleet-anchor (PEM CA\n"
	"                   certificates) the device answers `attest`,\n"
	"                   takes `authorize`..`end`, refuses `receive`\n"
	"                   without a valid authorization for that slot and\n"
	"                   size, and signs a receipt before `ok sha256=`;\n"
	"                   an image whose digest is not the authorized one\n"
	"                   is answered with `error`\n"
	"  --misbehave NAME wrong-key, replay, lying-receipt or refuse-auth\n"
	"                   (transport/sim_identity.h); repeatable\n"
	"  --no-attest      answer `attest` with `error unknown command` even\n"
	"                   with a key (a device without attestation)\n"
	"With --wrong-sha the device acts as if it stored other bytes: its\n"
	"`ok sha256=`, its receipt and its authorization check all see the\n"
	"digest with its first byte flipped.\n"
	"On `boot`, every stored slot image (in slot order) that begins with\n"
	"the line `#station-sim-image sequence=N version=V` sets `sequence`\n"
	"and `version` in the identity file (rewritten via a temp file).\n";

struct sim {
	const char *identity;
	const char *store;
	const char *link;
	uint64_t max_size;
	int wrong_sha;
	unsigned slow_ms;
	int ymodem_mode;
	uint64_t corrupt_block, nak_every;
	int ack_delay_ms;
	struct sim_identity *id; /* NULL: a device without a key */
	int no_attest;
	unsigned faults; /* enum sim_id_fault bits */
	struct tp_simline *wire;
	struct tp_serial *line;
	int last_rc;
};

/* What the signal handler removes; written before the handler can see a
 * path, read only by the handler. */
static char g_link[PATH_MAX];
static char g_tmp[PATH_MAX];
static volatile sig_atomic_t g_tmp_live;

static void on_signal(int sig)
{
	(void)sig;
	if (g_tmp_live)
		unlink(g_tmp);
	if (g_link[0])
		unlink(g_link);
	_exit(0);
}

#define logf_(...) tp_sim_logf("sim-serial", __VA_ARGS__)

static int reply(struct sim *sim, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int reply(struct sim *sim, const char *fmt, ...)
{
	char buf[LINE_CAP];
	struct stn_diag d;
	va_list ap;
	int n;

	if (sim->slow_ms)
		stn_sleep_ms(sim->slow_ms);
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n > sizeof(buf) - 3)
		n = (int)sizeof(buf) - 3;
	memcpy(buf + n, "\r\n", 2);
	stn_diag_init(&d);
	if (tp_serial_write(sim->line, buf, (size_t)n + 2, 5000, &d)) {
		logf_("cannot answer: %s", d.text);
		return -1;
	}
	return 0;
}

/* Lines already ended by CR LF (an attestation, a receipt), one write per
 * line so that --slow paces them as it paces reply(). */
static int send_lines(struct sim *sim, const char *buf, size_t len)
{
	struct stn_diag d;

	while (len) {
		const char *nl = memchr(buf, '\n', len);
		size_t n = nl ? (size_t)(nl - buf) + 1 : len;

		if (sim->slow_ms)
			stn_sleep_ms(sim->slow_ms);
		stn_diag_init(&d);
		if (tp_serial_write(sim->line, buf, n, 5000, &d)) {
			logf_("cannot answer: %s", d.text);
			return -1;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* The whole identity file, NUL terminated, or NULL (logged). */
static char *read_identity(const char *path)
{
	char *buf = malloc(IDENTITY_MAX + 1);
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (!buf || fd < 0) {
		logf_("%s: %s", path, fd < 0 ? strerror(errno) : "no memory");
		goto fail;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, IDENTITY_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			logf_("%s: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > IDENTITY_MAX) {
			logf_("%s: larger than %d bytes", path, IDENTITY_MAX);
			goto fail;
		}
	}
	close(fd);
	buf[len] = '\0';
	return buf;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static void cmd_info(struct sim *sim)
{
	char *text = read_identity(sim->identity);
	char *save = NULL;
	int lines = 0;

	if (!text) {
		reply(sim, "error identity unavailable");
		return;
	}
	/* Normalised `key = value`; comments and blank lines stay home. */
	for (char *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char *t = trim(l), *eq = strchr(t, '=');

		if (*t == '\0' || *t == '#' || !eq)
			continue;
		*eq = '\0';
		if (reply(sim, "%s = %s", trim(t), trim(eq + 1)))
			break;
		lines++;
	}
	free(text);
	reply(sim, "ok");
	logf_("info: sent %d identity lines", lines);
}

/* Write `data` to path through a temp file and rename, so a reader sees
 * the old or the new file, never half of one. */
static int replace_file(const char *path, const char *data, size_t len)
{
	char tmp[PATH_MAX];
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp))
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	while (len) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		data += n;
		len -= (size_t)n;
	}
	if (len || fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
		if (len)
			close(fd);
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Set sequence and version in the identity file, keeping its other lines. */
static int set_identity(struct sim *sim, const char *seq, const char *ver)
{
	char *text = read_identity(sim->identity);
	char *out = NULL;
	char *save = NULL;
	size_t len = 0, cap;
	int have_seq = 0, have_ver = 0;
	int rc = -1;

	if (!text)
		return -1;
	cap = strlen(text) + 2 * LINE_CAP;
	out = malloc(cap);
	if (!out)
		goto out;
	for (char *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char key[64];
		const char *t = l;
		size_t k = 0;

		while (*t == ' ' || *t == '\t')
			t++;
		while (k < sizeof(key) - 1 && t[k] && t[k] != ' ' &&
		       t[k] != '\t' && t[k] != '=') {
			key[k] = t[k];
			k++;
		}
		key[k] = '\0';
		if (strcmp(key, "sequence") == 0 && strchr(l, '=')) {
			len += (size_t)snprintf(out + len, cap - len,
						"sequence = %s\n", seq);
			have_seq = 1;
		} else if (strcmp(key, "version") == 0 && strchr(l, '=')) {
			len += (size_t)snprintf(out + len, cap - len,
						"version = %s\n", ver);
			have_ver = 1;
		} else {
			len += (size_t)snprintf(out + len, cap - len, "%s\n", l);
		}
		if (len >= cap)
			goto out;
	}
	if (!have_seq)
		len += (size_t)snprintf(out + len, cap - len, "sequence = %s\n",
					seq);
	if (len < cap && !have_ver)
		len += (size_t)snprintf(out + len, cap - len, "version = %s\n",
					ver);
	if (len >= cap)
		goto out;
	rc = replace_file(sim->identity, out, len);
out:
	free(text);
	free(out);
	return rc;
}

/* The tag line of a stored image: 0 and seq/ver filled, or -1. */
static int read_tag(const char *path, char seq[32], char ver[128])
{
	char head[256];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *p, *nl, *sp;

	if (fd < 0)
		return -1;
	n = read(fd, head, sizeof(head) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	head[n] = '\0';
	nl = memchr(head, '\n', (size_t)n);
	if (!nl || strncmp(head, image_tag, sizeof(image_tag) - 1) != 0)
		return -1;
	*nl = '\0';
	p = head + sizeof(image_tag) - 1;
	sp = strchr(p, ' ');
	if (!sp || sp == p || (size_t)(sp - p) >= 32 ||
	    strspn(p, "0123456789") != (size_t)(sp - p) ||
	    strncmp(sp, " version=", 9) != 0)
		return -1;
	*sp = '\0';
	sp += 9;
	if (*sp == '\0' || strlen(sp) >= 128 || strpbrk(sp, " \t"))
		return -1;
	for (const char *c = sp; *c; c++)
		if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
			return -1;
	strcpy(seq, p);
	strcpy(ver, sp);
	return 0;
}

static void cmd_boot(struct sim *sim)
{
	char path[PATH_MAX];
	char seq[32], ver[128];
	unsigned char present[SLOT_MAX + 1] = {0};
	DIR *dir = opendir(sim->store);
	struct dirent *e;
	int applied = 0;

	if (!dir) {
		logf_("boot: %s: %s", sim->store, strerror(errno));
		reply(sim, "error store unavailable");
		return;
	}
	while ((e = readdir(dir))) {
		unsigned slot;
		int end = 0;

		if (sscanf(e->d_name, "slot-%u.bin%n", &slot, &end) == 1 &&
		    e->d_name[end] == '\0' && slot <= SLOT_MAX)
			present[slot] = 1;
	}
	closedir(dir);
	for (unsigned slot = 0; slot <= SLOT_MAX; slot++) {
		if (!present[slot])
			continue;
		snprintf(path, sizeof(path), "%s/slot-%u.bin", sim->store, slot);
		if (read_tag(path, seq, ver) != 0)
			continue;
		if (set_identity(sim, seq, ver) != 0) {
			logf_("boot: cannot update %s: %s", sim->identity,
			      strerror(errno));
			reply(sim, "error cannot update identity");
			return;
		}
		logf_("boot: slot %u installs sequence %s version %s", slot,
		      seq, ver);
		applied++;
	}
	logf_("boot: %d tagged image(s) applied", applied);
	reply(sim, "ok");
}

/* SHA-256 of the file behind fd, read from the start, as the device
 * believes it (first byte flipped with --wrong-sha): dig and its hex. */
static int hash_fd(int fd, uint8_t dig[CU_SHA256_LEN],
		   char hex[CU_SHA256_HEX_LEN + 1], int wrong)
{
	uint8_t buf[65536];
	struct cu_sha256 *h = cu_sha256_new();
	int rc = -1;

	if (!h || lseek(fd, 0, SEEK_SET) < 0)
		goto out;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		if (cu_sha256_update(h, buf, (size_t)n))
			goto out;
	}
	if (cu_sha256_final(h, dig))
		goto out;
	if (wrong)
		dig[0] ^= 0xff;
	cu_hex(dig, CU_SHA256_LEN, hex);
	rc = 0;
out:
	cu_sha256_free(h);
	return rc;
}

/* Receive one file into a temp file in the store; when it arrived whole
 * and (if `want` is given) has that size, it is renamed to `final`, so an
 * image stored earlier is only ever replaced by a complete one.  Returns 0
 * with the hash in hex, 1 on a size mismatch, -1 with the reason in `why`. */
/* The YMODEM fault modes: a block's first copy handled as damaged. */
static int block_fault(void *ctx, uint64_t index, unsigned arrival)
{
	struct sim *sim = ctx;

	if (arrival != 1)
		return 0;
	if (sim->corrupt_block == index) {
		logf_("fault: block %" PRIu64 " arrives damaged", index);
		return 1;
	}
	if (sim->nak_every && index % sim->nak_every == 0) {
		logf_("fault: block %" PRIu64 " NAKed", index);
		return 1;
	}
	return 0;
}

static int take_file(struct sim *sim, const char *final, int start_ms,
		     const uint64_t *want, uint8_t dig[CU_SHA256_LEN],
		     char hex[CU_SHA256_HEX_LEN + 1], char *why, size_t why_cap)
{
	struct tp_ymodem_opts opts = {.start_timeout_ms = start_ms,
				      .block_fault = block_fault,
				      .fault_ctx = sim,
				      .answer_delay_ms = sim->ack_delay_ms};
	struct stn_diag d;
	char name[256];
	uint64_t size = 0;
	int fd;
	int rc;

	stn_diag_init(&d);
	g_tmp_live = 0;
	snprintf(g_tmp, sizeof(g_tmp), "%s/.incoming.XXXXXX", sim->store);
	fd = mkostemp(g_tmp, O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, why_cap, "store: %s", strerror(errno));
		return -1;
	}
	g_tmp_live = 1;
	rc = tp_ymodem_receive(sim->line, fd, sim->max_size, name,
			       sizeof(name), &size, &opts, &d);
	sim->last_rc = rc;
	if (rc) {
		snprintf(why, why_cap, "%.400s", d.text);
		/* Let the rest of an aborted transfer pass before the
		 * console answers again. */
		if (rc != STN_E_NODEVICE)
			tp_serial_drain_quiet(sim->line, 500, 5000);
		goto fail;
	}
	if (want && size != *want) {
		logf_("'%s': YMODEM announced %" PRIu64 " bytes, not %" PRIu64,
		      name, size, *want);
		close(fd);
		unlink(g_tmp);
		g_tmp_live = 0;
		return 1;
	}
	if (hash_fd(fd, dig, hex, sim->wrong_sha) || fsync(fd) < 0) {
		snprintf(why, why_cap, "store: %s", strerror(errno));
		goto fail;
	}
	close(fd);
	if (rename(g_tmp, final) < 0) {
		snprintf(why, why_cap, "store: %s", strerror(errno));
		unlink(g_tmp);
		g_tmp_live = 0;
		return -1;
	}
	g_tmp_live = 0;
	logf_("received '%s' (%" PRIu64 " bytes) -> %s sha256=%s%s", name,
	      size, final, hex, sim->wrong_sha ? " (reported wrong)" : "");
	return 0;
fail:
	close(fd);
	unlink(g_tmp);
	g_tmp_live = 0;
	return -1;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long x;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*v = x;
	return 0;
}

/* The identity the device claims, read from its identity file as `info`
 * answers it, for the records it signs. */
struct claim {
	struct sim_id_claim c;
	char model[LINE_CAP], hardware[LINE_CAP], serial[LINE_CAP],
		version[LINE_CAP];
};

static int load_claim(struct sim *sim, struct claim *cl)
{
	char *text = read_identity(sim->identity);
	char *save = NULL;

	memset(cl, 0, sizeof(*cl));
	if (!text)
		return -1;
	for (char *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char *t = trim(l), *eq = strchr(t, '='), *k, *v;

		if (*t == '\0' || *t == '#' || !eq)
			continue;
		*eq = '\0';
		k = trim(t);
		v = trim(eq + 1);
		if (strcmp(k, "model") == 0)
			snprintf(cl->model, sizeof(cl->model), "%s", v);
		else if (strcmp(k, "hardware") == 0)
			snprintf(cl->hardware, sizeof(cl->hardware), "%s", v);
		else if (strcmp(k, "serial") == 0)
			snprintf(cl->serial, sizeof(cl->serial), "%s", v);
		else if (strcmp(k, "version") == 0)
			snprintf(cl->version, sizeof(cl->version), "%s", v);
		else if (strcmp(k, "sequence") == 0 &&
			 parse_u64(v, &cl->c.sequence) == 0)
			cl->c.has_sequence = 1;
	}
	free(text);
	cl->c.model = cl->model;
	cl->c.serial = cl->serial;
	cl->c.hardware = cl->hardware[0] ? cl->hardware : NULL;
	cl->c.version = cl->version[0] ? cl->version : NULL;
	return 0;
}

/* `attest NONCE` (formats §9): the signed record, the chain, `ok`. */
static void cmd_attest(struct sim *sim, const char *nonce_hex)
{
	struct claim cl;
	char *out = NULL;
	size_t len = 0;

	if (load_claim(sim, &cl)) {
		reply(sim, "error identity unavailable");
		return;
	}
	if (sim_id_attest(sim->id, &cl.c, nonce_hex, "\r\n", &out, &len)) {
		reply(sim, "error cannot attest");
		return;
	}
	logf_("attest: %zu bytes of answer", len);
	send_lines(sim, out, len);
	free(out);
}

/* `authorize`, the lines, `end`: read the block whole, then judge it, so
 * that the answer comes once, after `end`. */
static void cmd_authorize(struct sim *sim)
{
	char *block = malloc(AUTH_BLOCK_MAX), *line = malloc(AUTH_LINE_CAP);
	char err[512];
	size_t len = 0;
	int lines = 0, ended = 0;
	struct claim cl;

	if (!block || !line) {
		reply(sim, "error out of memory");
		goto out;
	}
	while (lines++ < AUTH_LINES_MAX) {
		struct stn_diag d;
		size_t n;

		stn_diag_init(&d);
		if (tp_serial_readline(sim->line, line, AUTH_LINE_CAP, 10000,
				       &d)) {
			logf_("authorize: %s", d.text);
			break;
		}
		if (strcmp(line, "end") == 0) {
			ended = 1;
			break;
		}
		n = strlen(line);
		if (len + n + 1 > AUTH_BLOCK_MAX)
			break;
		memcpy(block + len, line, n);
		len += n;
		block[len++] = '\n';
	}
	if (!ended) {
		tp_serial_drain_quiet(sim->line, 200, 2000);
		reply(sim, "error bad authorization block");
		goto out;
	}
	if (load_claim(sim, &cl)) {
		reply(sim, "error identity unavailable");
		goto out;
	}
	if (sim_id_authorize(sim->id, &cl.c, block, len, (int64_t)time(NULL),
			     err, sizeof(err))) {
		logf_("authorize: refused: %s", err);
		reply(sim, "error %s", err);
		goto out;
	}
	logf_("authorize: accepted");
	reply(sim, "ok");
out:
	free(block);
	free(line);
}

/* formats §9: the receipt for what was stored, then the verdict.  An
 * honest device that stored other bytes than it was authorized for says
 * so; a lying one (SIM_ID_LYING_RECEIPT) signs the authorized digest. */
static void send_receipt(struct sim *sim, unsigned slot, uint64_t size,
			 const uint8_t dig[CU_SHA256_LEN], const char *hex)
{
	struct claim cl;
	char err[512] = "";
	char *out = NULL;
	size_t len = 0;

	if (sim_id_check_stored(sim->id, slot, dig, err, sizeof(err)) &&
	    !(sim->faults & SIM_ID_LYING_RECEIPT)) {
		logf_("receive: %s", err);
		reply(sim, "error %s", err);
		return;
	}
	if (load_claim(sim, &cl) ||
	    sim_id_receipt(sim->id, &cl.c, slot, size, dig, "\r\n", &out,
			   &len, err, sizeof(err))) {
		logf_("receive: no receipt: %s", err);
		reply(sim, "error cannot sign a receipt");
		return;
	}
	if (send_lines(sim, out, len) == 0)
		reply(sim, "ok sha256=%s", hex);
	free(out);
}

static void cmd_receive(struct sim *sim, char *args)
{
	char *save = NULL;
	char *a = strtok_r(args, " \t", &save);
	char *b = strtok_r(NULL, " \t", &save);
	char *c = strtok_r(NULL, " \t", &save);
	uint64_t slot, want;
	int rc;
	char final[PATH_MAX], hex[CU_SHA256_HEX_LEN + 1], why[512];
	uint8_t dig[CU_SHA256_LEN];

	if (c || parse_u64(a, &slot) || parse_u64(b, &want) ||
	    slot > SLOT_MAX) {
		reply(sim, "error usage: receive SLOT SIZE (SLOT 0..%d)",
		      SLOT_MAX);
		return;
	}
	if (want > sim->max_size) {
		logf_("receive: %" PRIu64 " bytes refused (max %" PRIu64 ")",
		      want, sim->max_size);
		reply(sim, "error image of %" PRIu64 " bytes exceeds the %"
		      PRIu64 "-byte slot", want, sim->max_size);
		return;
	}
	if (sim->id && sim_id_may_receive(sim->id, (unsigned)slot, want, why,
					  sizeof(why))) {
		logf_("receive: not authorized: %s", why);
		reply(sim, "error not authorized: %s", why);
		return;
	}
	snprintf(final, sizeof(final), "%s/slot-%" PRIu64 ".bin", sim->store,
		 slot);
	logf_("receive: slot %" PRIu64 ", %" PRIu64 " bytes: ready", slot,
	      want);
	if (reply(sim, "ready"))
		return;
	/* The station starts sending as soon as it reads `ready`. */
	rc = take_file(sim, final, 30000, &want, dig, hex, why, sizeof(why));
	if (rc < 0) {
		logf_("receive: failed: %s", why);
		reply(sim, "error transfer failed: %s", why);
	} else if (rc > 0) {
		reply(sim, "error size mismatch");
	} else if (sim->id) {
		send_receipt(sim, (unsigned)slot, want, dig, hex);
	} else {
		reply(sim, "ok sha256=%s", hex);
	}
}

static void serve_console(struct sim *sim)
{
	char line[LINE_CAP];

	for (;;) {
		struct stn_diag d;
		char *cmd;
		int rc;

		stn_diag_init(&d);
		rc = tp_serial_readline(sim->line, line, sizeof(line), -1, &d);
		if (rc == STN_E_PROTOCOL) {
			logf_("bad line: %s", d.text);
			tp_serial_drain_quiet(sim->line, 200, 2000);
			reply(sim, "error bad line");
			continue;
		}
		if (rc == STN_E_NODEVICE) {
			logf_("line dropped: %s; waiting for it", d.text);
			sim->line = tp_simline_device(sim->wire);
			continue;
		}
		if (rc) {
			logf_("line failed: %s", d.text);
			return;
		}
		cmd = trim(line);
		/* Stray control bytes (a CAN from an aborted transfer) are
		 * not part of a command. */
		while ((unsigned char)*cmd && (unsigned char)*cmd < 0x20)
			cmd++;
		if (*cmd == '\0')
			continue; /* an empty line is no command */
		if (strcmp(cmd, "info") == 0)
			cmd_info(sim);
		else if (strncmp(cmd, "receive", 7) == 0 &&
			 (cmd[7] == ' ' || cmd[7] == '\0'))
			cmd_receive(sim, cmd + 7);
		else if (strcmp(cmd, "boot") == 0)
			cmd_boot(sim);
		else if (sim->id && !sim->no_attest &&
			 strncmp(cmd, "attest ", 7) == 0)
			cmd_attest(sim, cmd + 7);
		else if (sim->id && strcmp(cmd, "authorize") == 0)
			cmd_authorize(sim);
		else {
			logf_("unknown command: %.80s", cmd);
			reply(sim, "error unknown command");
		}
	}
}

/* Like U-Boot's loady after the user typed it: receive, store, repeat.
 * The sender's file name is logged, never used as a path. */
static void serve_ymodem(struct sim *sim)
{
	char final[PATH_MAX], hex[CU_SHA256_HEX_LEN + 1], why[512];
	uint8_t dig[CU_SHA256_LEN];

	snprintf(final, sizeof(final), "%s/received.bin", sim->store);
	for (;;) {
		if (take_file(sim, final, INT_MAX, NULL, dig, hex, why,
			      sizeof(why)) == 0)
			continue;
		logf_("ymodem: failed: %s", why);
		if (sim->last_rc == STN_E_NODEVICE) {
			logf_("line dropped; waiting for it");
			sim->line = tp_simline_device(sim->wire);
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"identity", required_argument, NULL, 'i'},
		{"store", required_argument, NULL, 's'},
		{"link", required_argument, NULL, 'l'},
		{"max-size", required_argument, NULL, 'm'},
		{"wrong-sha", no_argument, NULL, 'w'},
		{"slow", required_argument, NULL, 'S'},
		{"mode", required_argument, NULL, 'M'},
		{"baud", required_argument, NULL, 'b'},
		{"drop-at", required_argument, NULL, 'D'},
		{"drop-ms", required_argument, NULL, 'T'},
		{"corrupt-block", required_argument, NULL, 'C'},
		{"nak-every", required_argument, NULL, 'N'},
		{"ack-delay", required_argument, NULL, 'A'},
		{"device-key", required_argument, NULL, 'K'},
		{"device-cert", required_argument, NULL, 'P'},
		{"fleet-anchor", required_argument, NULL, 'F'},
		{"misbehave", required_argument, NULL, 'X'},
		{"no-attest", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct sim sim = {.max_size = DEFAULT_MAX_SIZE};
	struct tp_simline_opts lo = {0};
	struct sigaction sa;
	struct stn_diag d;
	struct stat st;
	const char *key = NULL, *chain = NULL, *anchor = NULL;
	char pts[PATH_MAX];
	uint64_t v;
	int opt;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'i': sim.identity = optarg; break;
		case 's': sim.store = optarg; break;
		case 'l': sim.link = optarg; break;
		case 'w': sim.wrong_sha = 1; break;
		case 'S': {
			uint64_t ms;

			if (parse_u64(optarg, &ms) || ms > 600000) {
				fprintf(stderr, "sim-serial: bad --slow\n");
				return 2;
			}
			sim.slow_ms = (unsigned)ms;
			break;
		}
		case 'm':
			if (parse_u64(optarg, &sim.max_size)) {
				fprintf(stderr, "sim-serial: bad --max-size\n");
				return 2;
			}
			break;
		case 'b':
		case 'D':
		case 'T':
		case 'C':
		case 'N':
		case 'A':
			if (parse_u64(optarg, &v) ||
			    (opt == 'b' && (v < 300 || v > 4000000)) ||
			    ((opt == 'T' || opt == 'A') && v > 600000) ||
			    (opt == 'N' && v == 0)) {
				fprintf(stderr, "sim-serial: bad value for "
						"option -%c\n", opt);
				return 2;
			}
			if (opt == 'b')
				lo.baud = (unsigned)v;
			else if (opt == 'D')
				lo.drop_at = v;
			else if (opt == 'T')
				lo.drop_ms = (int)v;
			else if (opt == 'C')
				sim.corrupt_block = v;
			else if (opt == 'N')
				sim.nak_every = v;
			else
				sim.ack_delay_ms = (int)v;
			break;
		case 'M':
			if (strcmp(optarg, "ymodem") == 0)
				sim.ymodem_mode = 1;
			else if (strcmp(optarg, "console") != 0) {
				fprintf(stderr, "sim-serial: bad --mode\n");
				return 2;
			}
			break;
		case 'K': key = optarg; break;
		case 'P': chain = optarg; break;
		case 'F': anchor = optarg; break;
		case 'n': sim.no_attest = 1; break;
		case 'X': {
			unsigned bit;

			if (sim_id_fault_parse(optarg, &bit)) {
				fprintf(stderr, "sim-serial: unknown "
						"--misbehave %s\n", optarg);
				return 2;
			}
			sim.faults |= bit;
			break;
		}
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			fputs(usage_text, stderr);
			return 2;
		}
	}
	if (optind != argc || !sim.store ||
	    (!sim.ymodem_mode && !sim.identity)) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (stat(sim.store, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "sim-serial: %s: not a directory\n", sim.store);
		return 2;
	}
	if ((key || chain || anchor || sim.faults) &&
	    (!key || !chain || !anchor || sim.ymodem_mode)) {
		fprintf(stderr, "sim-serial: a device key needs --device-key, "
				"--device-cert and --fleet-anchor, in console "
				"mode\n");
		return 2;
	}
	if (key) {
		char err[512];

		if (sim_id_load(key, chain, anchor, sim.faults, &sim.id, err,
				sizeof(err))) {
			fprintf(stderr, "sim-serial: device identity: %s\n",
				err);
			return 2;
		}
	}
	if (sim.link && strlen(sim.link) >= sizeof(g_link)) {
		fprintf(stderr, "sim-serial: --link path too long\n");
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	stn_diag_init(&d);
	if (tp_simline_start(sim.link, &lo, pts, sizeof(pts), &sim.wire, &d)) {
		logf_("%s: %s", d.where, d.text);
		return 1;
	}
	if (sim.link)
		strcpy(g_link, sim.link);
	sim.line = tp_simline_device(sim.wire);
	printf("pty %s\n", pts);
	fflush(stdout);
	logf_("%s mode on %s%s%s, %u baud%s", sim.ymodem_mode ? "ymodem"
							       : "console",
	      pts, sim.link ? " via " : "", sim.link ? sim.link : "", lo.baud,
	      lo.baud ? "" : " (unpaced)");
	if (sim.ymodem_mode)
		serve_ymodem(&sim);
	else
		serve_console(&sim);
	/* Only reached when the line itself failed. */
	if (g_link[0])
		unlink(g_link);
	return 1;
}
