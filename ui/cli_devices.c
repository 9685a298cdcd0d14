/* ui/cli_devices.c: `station devices`: the connected USB DFU devices with
 * their identity, and with --watch their arrivals and departures as the
 * station core reports them. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "station/device.h"
#include "station/base/error.h"
#include "ui/cli.h"
#include "station/base/monotime.h"

static const char devices_usage[] =
	"usage: station devices [--config FILE] [--json] [--watch SECONDS]\n"
	"  lists connected USB DFU devices (VID:PID, mode, port, identity)\n"
	"  and the SPEC to push to each; --watch then reports devices that\n"
	"  arrive or leave for SECONDS\n";

static void print_text(FILE *f, const char *event,
		       const struct stn_device_seen *s)
{
	char seq[24] = "-";

	fprintf(f, "%s%s  %s %s  port %s", event, UI_SAFE(s->spec), s->ids,
		s->mode, UI_SAFE(s->port));
	if (!s->identified) {
		fprintf(f, "  unidentified: %s\n", UI_SAFE(s->problem));
		return;
	}
	if (s->id.has_sequence)
		snprintf(seq, sizeof(seq), "%" PRIu64, s->id.sequence);
	fprintf(f, "  serial %s  model %s  hardware %s  sequence %s  "
		   "version %s  (identity from %s)\n",
		UI_SAFE(s->id.serial), UI_SAFE(s->id.model),
		UI_SAFE(s->id.hardware[0] ? s->id.hardware : "-"), seq,
		UI_SAFE(s->id.version[0] ? s->id.version : "-"), s->source);
}

static void print_json(FILE *f, const struct stn_device_seen *s)
{
	fputs("{\"spec\":", f);
	ui_json_string(f, s->spec);
	fputs(",\"transport\":", f);
	ui_json_string(f, s->transport);
	fputs(",\"ids\":", f);
	ui_json_string(f, s->ids);
	fputs(",\"mode\":", f);
	ui_json_string(f, s->mode);
	fputs(",\"port\":", f);
	ui_json_string(f, s->port);
	if (s->identified) {
		fputs(",\"identity_source\":", f);
		ui_json_string(f, s->source);
		fputs(",\"serial\":", f);
		ui_json_string(f, s->id.serial);
		fputs(",\"model\":", f);
		ui_json_string(f, s->id.model);
		fputs(",\"hardware\":", f);
		ui_json_string(f, s->id.hardware);
		fputs(",\"version\":", f);
		ui_json_string(f, s->id.version);
		if (s->id.has_sequence)
			fprintf(f, ",\"sequence\":%" PRIu64, s->id.sequence);
		else
			fputs(",\"sequence\":null", f);
	} else {
		fputs(",\"problem\":", f);
		ui_json_string(f, s->problem);
	}
	fputc('}', f);
}

struct watch_view {
	int json;
};

static void on_event(void *ctx, enum stn_device_event ev,
		     const struct stn_device_seen *s)
{
	struct watch_view *v = ctx;
	const char *what = ev == STN_DEVICE_ARRIVED ? "arrived" : "left";

	if (v->json) {
		printf("{\"event\":\"%s\",\"device\":", what);
		print_json(stdout, s);
		puts("}");
	} else if (ev == STN_DEVICE_ARRIVED) {
		print_text(stdout, "arrived ", s);
	} else {
		printf("left    %s  %s %s  port %s\n", UI_SAFE(s->spec),
		       s->ids, s->mode, UI_SAFE(s->port));
	}
	fflush(stdout);
}

static int watch(struct stn_device_watch *w, int seconds)
{
	int64_t end = stn_mono_ms() + (int64_t)seconds * 1000;
	struct stn_diag d;
	int rc = 0;

	stn_diag_init(&d);
	for (;;) {
		int64_t left = end - stn_mono_ms();

		if (left <= 0)
			break;
		if ((rc = stn_device_watch_dispatch(w, (int)left, &d)))
			break;
	}
	return rc ? ui_report("devices", &d) : 0;
}

int ui_cmd_devices(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"watch", required_argument, NULL, 'w'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	struct stn_device_seen *list = NULL;
	struct stn_device_watch *w = NULL;
	struct watch_view v = {0};
	struct stn_diag d;
	size_t n = 0;
	int json = 0, seconds = -1, c, rc;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': break; /* listing needs no configuration */
		case 'j': json = 1; break;
		case 'w':
			seconds = (int)strtol(optarg, &end, 10);
			if (*end || seconds < 1 || seconds > 86400)
				return ui_usage_error(devices_usage,
						      "--watch takes 1 to "
						      "86400 seconds");
			break;
		case 'h': fputs(devices_usage, stdout); return 0;
		default: return ui_usage_error(devices_usage, "bad option");
		}
	}
	if (optind != argc)
		return ui_usage_error(devices_usage, "no arguments expected");
	stn_diag_init(&d);
	/* Watch before listing, so that no device that arrives in between
	 * is missed by both. */
	v.json = json;
	if (seconds > 0 && stn_device_watch_new(on_event, &v, &w, &d))
		return ui_report("devices", &d);
	if (stn_device_list(&list, &n, &d)) {
		stn_device_watch_free(w);
		return ui_report("devices", &d);
	}
	if (json) {
		fputc('[', stdout);
		for (size_t i = 0; i < n; i++) {
			if (i)
				fputc(',', stdout);
			print_json(stdout, &list[i]);
		}
		fputs("]\n", stdout);
	} else if (n == 0) {
		puts("no USB DFU devices connected");
	} else {
		for (size_t i = 0; i < n; i++)
			print_text(stdout, "", &list[i]);
	}
	free(list);
	fflush(stdout);
	rc = w ? watch(w, seconds) : 0;
	stn_device_watch_free(w);
	return rc;
}
