/* ui/cli_media.c: `station media`: the media mounted under the configured
 * media root and the bundles found on them, side by side, with what was
 * refused or ignored and why.  --watch keeps listing as media come and go
 * (the kernel wakes it; it does not poll); --mount, in appliance mode as
 * root, also mounts removable devices read-only as they appear.  Every
 * string from the media is printed with control characters replaced, so a
 * crafted directory name cannot drive the terminal. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "station/base/rfc3339.h"
#include "media/discover.h"
#include "station/config.h"
#include "station/base/error.h"
#include "station/media_watch.h"
#include "station/session.h"
#include "ui/cli.h"

static const char media_usage[] =
	"usage: station media [--config FILE] [--json] [--watch [--mount]]\n"
	"  --watch  keep listing as media appear and disappear (until "
	"interrupted)\n"
	"  --mount  appliance mode (root): mount removable devices "
	"read-only\n";
const char *const ui_media_usage = media_usage;

/* Media bytes on a terminal: controls become '?'. */
struct listing {
	struct md_mount_entry media[32];
	size_t nmedia;
};

static void add_medium(void *ctx, const struct md_mount_entry *m)
{
	struct listing *l = ctx;

	if (l->nmedia < sizeof(l->media) / sizeof(l->media[0]))
		l->media[l->nmedia++] = *m;
}

static const char *note_kind(enum md_note_kind k)
{
	return k == MD_NOTE_REFUSED  ? "refused"
	       : k == MD_NOTE_LIMIT ? "partial"
				    : "ignored";
}

static void print_text(const char *root, const struct listing *l,
		       const struct md_discovery *disc)
{
	int wn = 4, wv = 7;

	printf("media root %s\n", root);
	for (size_t i = 0; i < l->nmedia; i++) {
		printf("medium   ");
		ui_put_untrusted(stdout, l->media[i].path);
		printf("  %s", UI_SAFE(l->media[i].fstype));
		if (l->media[i].source[0]) {
			putchar(' ');
			ui_put_untrusted(stdout, l->media[i].source);
		}
		printf("%s\n", l->media[i].readonly ? "  read-only"
						     : "  read-write");
	}
	if (!disc->nbundles) {
		printf("no bundles found\n");
	} else {
		for (size_t i = 0; i < disc->nbundles; i++) {
			int n = (int)strlen(disc->bundles[i].name);
			int v = (int)strlen(disc->bundles[i].version);
			wn = n > wn ? n : wn;
			wv = v > wv ? v : wv;
		}
		printf("%-*s  %-*s  %10s  %6s  %4s  %s\n", wn, "NAME", wv,
		       "VERSION", "SEQUENCE", "IMAGES", "SIGS", "BUNDLE");
	}
	for (size_t i = 0; i < disc->nbundles; i++) {
		const struct md_bundle *b = &disc->bundles[i];
		char exp[CU_TIME_LEN + 1];

		printf("%s%*s  ", UI_SAFE(b->name),
		       wn - (int)strlen(b->name), "");
		ui_put_untrusted(stdout, b->version);
		printf("%*s  %10llu  %6zu  %4zu  ",
		       wv - (int)strlen(b->version), "",
		       (unsigned long long)b->sequence, b->nimages,
		       b->nsignatures);
		ui_put_untrusted(stdout, b->path);
		cu_time_format(b->expires, exp);
		printf("\n%*s  id %.16s  %llu bytes  expires %s%s%s%s\n", wn,
		       "", b->id_hex, (unsigned long long)b->bytes, exp,
		       b->has_custody ? "  custody" : "",
		       b->has_tokens ? "  tokens" : "",
		       b->has_crl ? "  crl" : "");
		if (b->image_problem) {
			printf("%*s  problem: ", wn, "");
			ui_put_untrusted(stdout, b->image_note);
			putchar('\n');
		}
	}
	for (size_t i = 0; i < disc->nnotes; i++) {
		const struct md_note *n = &disc->notes[i];
		printf("%s  ", note_kind(n->kind));
		ui_put_untrusted(stdout, n->path);
		printf(": ");
		if (n->code && n->kind != MD_NOTE_IGNORED)
			printf("rule %s: ", stn_err_rule(n->code));
		ui_put_untrusted(stdout, n->text);
		putchar('\n');
	}
	if (disc->notes_dropped)
		printf("partial  %zu more notes not shown\n",
		       disc->notes_dropped);
}

static void print_json(const char *root, const struct listing *l,
		       const struct md_discovery *disc)
{
	printf("{\"root\":");
	ui_json_string(stdout, root);
	printf(",\"media\":[");
	for (size_t i = 0; i < l->nmedia; i++) {
		printf("%s{\"path\":", i ? "," : "");
		ui_json_string(stdout, l->media[i].path);
		printf(",\"fstype\":");
		ui_json_string(stdout, l->media[i].fstype);
		printf(",\"source\":");
		ui_json_string(stdout, l->media[i].source);
		printf(",\"readonly\":%s}",
		       l->media[i].readonly ? "true" : "false");
	}
	printf("],\"bundles\":[");
	for (size_t i = 0; i < disc->nbundles; i++) {
		const struct md_bundle *b = &disc->bundles[i];
		char t[CU_TIME_LEN + 1];

		printf("%s{\"path\":", i ? "," : "");
		ui_json_string(stdout, b->path);
		printf(",\"medium\":");
		ui_json_string(stdout, b->medium);
		printf(",\"id\":\"%s\",\"name\":", b->id_hex);
		ui_json_string(stdout, b->name);
		printf(",\"version\":");
		ui_json_string(stdout, b->version);
		printf(",\"sequence\":%llu,\"model\":",
		       (unsigned long long)b->sequence);
		ui_json_string(stdout, b->model);
		cu_time_format(b->created, t);
		printf(",\"created\":\"%s\"", t);
		cu_time_format(b->expires, t);
		printf(",\"expires\":\"%s\",\"images\":%zu,\"bytes\":%llu,"
		       "\"signatures\":%zu,\"custody\":%s,\"tokens\":%s,"
		       "\"crl\":%s,\"problem\":",
		       t, b->nimages, (unsigned long long)b->bytes,
		       b->nsignatures, b->has_custody ? "true" : "false",
		       b->has_tokens ? "true" : "false",
		       b->has_crl ? "true" : "false");
		ui_json_string(stdout, b->image_problem ? b->image_note : "");
		putchar('}');
	}
	printf("],\"notes\":[");
	for (size_t i = 0; i < disc->nnotes; i++) {
		const struct md_note *n = &disc->notes[i];
		printf("%s{\"kind\":\"%s\",\"rule\":", i ? "," : "",
		       note_kind(n->kind));
		ui_json_string(stdout, n->code ? stn_err_rule(n->code) : "");
		printf(",\"path\":");
		ui_json_string(stdout, n->path);
		printf(",\"text\":");
		ui_json_string(stdout, n->text);
		putchar('}');
	}
	printf("],\"notes_dropped\":%zu}\n", disc->notes_dropped);
}

static int list_once(const char *root, int json, struct stn_diag *d)
{
	struct md_discovery *disc = NULL;
	struct listing l;
	int rc;

	l.nmedia = 0;
	if ((rc = md_mounts_under(root, NULL, add_medium, &l, d)) ||
	    (rc = md_discover(root, 0, &disc, d)))
		return rc;
	if (json)
		print_json(root, &l, disc);
	else
		print_text(root, &l, disc);
	md_discovery_free(disc);
	fflush(stdout);
	return 0;
}

/* ---- --watch -------------------------------------------------------------- */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void on_media(void *ctx, enum md_media_event ev,
		     const struct md_mount_entry *m)
{
	int *changed = ctx;

	*changed = 1;
	printf("event    %s ", ev == MD_MEDIA_ADDED	? "media-added"
				 : ev == MD_MEDIA_REMOVED ? "media-removed"
							  : "media-changed");
	ui_put_untrusted(stdout, m->path);
	if (m->fstype[0])
		printf(" (%s)", UI_SAFE(m->fstype));
	putchar('\n');
}

static void on_mounted(void *ctx, const char *dev, const char *path,
		       const char *fstype)
{
	(void)ctx;
	printf("event    mounted /dev/%s at ", UI_SAFE(dev));
	ui_put_untrusted(stdout, path);
	printf(" (%s, read-only, nosuid, nodev, noexec)\n", UI_SAFE(fstype));
}

static void on_unmounted(void *ctx, const char *dev, const char *path)
{
	(void)ctx;
	printf("event    unmounted /dev/%s from ", UI_SAFE(dev));
	ui_put_untrusted(stdout, path);
	putchar('\n');
}

static void on_refused(void *ctx, const char *dev, const struct stn_diag *why)
{
	(void)ctx;
	printf("event    not mounted /dev/%s: ", UI_SAFE(dev));
	ui_put_untrusted(stdout, why->text);
	putchar('\n');
}

/* The core's media watch (station/media_watch.h) does the watching, the
 * mounting and the journaling; this loop only waits and prints.  A medium
 * that cannot be journaled stops the watch: nothing goes unrecorded. */
static int watch_loop(struct stn_session *s, const char *root, int json,
		      int do_mount, struct stn_diag *d)
{
	int changed = 1, rc;
	const struct stn_media_events ev = {on_media, on_mounted, on_unmounted,
					    on_refused, NULL, &changed};
	struct stn_media_watch *w = NULL;
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: the wait returns */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((rc = stn_media_watch_new(root, do_mount, &ev, &w, d)))
		return rc;
	while (!stop) {
		if ((rc = stn_media_watch_run(w, s, changed ? 0 : -1, d)) < 0)
			break;
		if (changed) {
			changed = 0;
			if ((rc = list_once(root, json, d)))
				break;
		}
	}
	if (rc > 0)
		rc = 0;
	stn_media_watch_free(w, s); /* unmounts what it mounted */
	return rc;
}

int ui_cmd_media(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"watch", no_argument, NULL, 'w'},
		{"mount", no_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *config = NULL;
	int json = 0, watch = 0, do_mount = 0, c, rc;
	struct stn_session *s = NULL;
	struct stn_diag d;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'j': json = 1; break;
		case 'w': watch = 1; break;
		case 'm': do_mount = 1; break;
		case 'h': fputs(media_usage, stdout); return 0;
		default: return ui_usage_error(media_usage, "bad option");
		}
	}
	if (optind != argc)
		return ui_usage_error(media_usage, "unexpected argument");
	if (do_mount && !watch)
		return ui_usage_error(media_usage, "--mount needs --watch");
	stn_diag_init(&d);
	/* A listing decides and records nothing; a watch journals every
	 * medium it sees, in a session of its own. */
	rc = stn_session_open(ui_config_path(config), NULL,
			      watch ? "media --watch" : "media",
			      watch ? 0 : STN_SESSION_QUIET, &s, &d);
	if (rc)
		return ui_report("media", &d);
	if (watch)
		ui_warn_session("media", s);
	{
		const char *root = stn_session_config(s)->media;
		rc = watch ? watch_loop(s, root, json, do_mount, &d)
			   : list_once(root, json, &d);
	}
	stn_session_close(s, rc);
	return rc ? ui_report("media", &d) : 0;
}
