/* ui/cli_devices.c: `station devices`: every connected device, USB DFU
 * and the configured serial ports, with its identity and device class,
 * with --attest whether it proved who it is (formats §9), and with --watch
 * the USB arrivals and departures as the station core reports them. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "station/config.h"
#include "station/device.h"
#include "station/base/error.h"
#include "station/identity_words.h"
#include "station/install.h"
#include "station/session.h"
#include "ui/cli.h"
#include "station/base/monotime.h"

static const char devices_usage[] =
	"usage: station devices [--config FILE] [--attest] [--json]\n"
	"                       [--watch SECONDS]\n"
	"  lists connected USB DFU devices (VID:PID, mode, port) and the\n"
	"  configured serial ports ([port] sections), each with its identity,\n"
	"  its device class and the SPEC to push to it; a port that does not\n"
	"  answer is listed with its problem.  --attest asks each device to\n"
	"  prove its identity with its device certificate (journaled as\n"
	"  device-attested) and says whether it did; exit 1 when one failed\n"
	"  or cannot prove it and its class requires it.  --watch then\n"
	"  reports USB devices that arrive or leave for SECONDS\n";
const char *const ui_devices_usage = devices_usage;

/* One device as listed: a USB unit or a configured port. */
struct row {
	const struct stn_device_seen *usb; /* NULL: a configured port */
	const struct stn_port *port;       /* NULL: a USB unit */
	char spec[300];
	int identified;
	struct cu_identity id;
	const char *source; /* where the identity came from */
	char problem[400];  /* why there is no identity */
	const struct stn_class *cls;
	int attested; /* --attest asked it */
	struct stn_identity_proof proof;
};

static const char *port_scheme(enum stn_port_mode m)
{
	switch (m) {
	case STN_PORT_YMODEM: return "ymodem";
	case STN_PORT_SMP: return "smp";
	default: return "serial";
	}
}

static void print_identity(FILE *f, const struct row *r)
{
	char seq[24] = "-";

	if (r->id.has_sequence)
		snprintf(seq, sizeof(seq), "%" PRIu64, r->id.sequence);
	fprintf(f, "  serial %s  model %s  hardware %s  sequence %s  "
		   "version %s  (identity from %s)  class %s",
		UI_SAFE(r->id.serial), UI_SAFE(r->id.model),
		UI_SAFE(r->id.hardware[0] ? r->id.hardware : "-"), seq,
		UI_SAFE(r->id.version[0] ? r->id.version : "-"), r->source,
		UI_SAFE(r->cls->label));
}

/* A USB arrival as --watch reports it. */
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

static void print_row_text(FILE *f, const struct row *r)
{
	if (r->usb)
		fprintf(f, "%s  %s %s  port %s", UI_SAFE(r->spec), r->usb->ids,
			r->usb->mode, UI_SAFE(r->usb->port));
	else
		fprintf(f, "%s  port %s", UI_SAFE(r->spec),
			UI_SAFE(r->port->label));
	if (!r->identified)
		fprintf(f, "  unidentified: %s\n", UI_SAFE(r->problem));
	else {
		print_identity(f, r);
		fputc('\n', f);
	}
	if (r->attested && r->identified) {
		char line[800];
		stn_identity_text(&r->proof, line, sizeof(line));
		fprintf(f, "    identity %s\n", UI_SAFE(line));
	}
}

static void json_field(FILE *f, const char *key, const char *value)
{
	fprintf(f, ",\"%s\":", key);
	ui_json_string(f, value);
}

static void print_json(FILE *f, const struct stn_device_seen *s)
{
	fputs("{\"spec\":", f);
	ui_json_string(f, s->spec);
	json_field(f, "transport", s->transport);
	json_field(f, "ids", s->ids);
	json_field(f, "mode", s->mode);
	json_field(f, "port", s->port);
	if (s->identified) {
		json_field(f, "identity_source", s->source);
		json_field(f, "serial", s->id.serial);
		json_field(f, "model", s->id.model);
		json_field(f, "hardware", s->id.hardware);
		json_field(f, "version", s->id.version);
		if (s->id.has_sequence)
			fprintf(f, ",\"sequence\":%" PRIu64, s->id.sequence);
		else
			fputs(",\"sequence\":null", f);
	} else {
		json_field(f, "problem", s->problem);
	}
	fputc('}', f);
}

/* The attestation object of formats §9 for scripts: state, the class
 * policy, the certificate when proven, the reason when not. */
static void print_attestation_json(FILE *f, const struct row *r)
{
	const struct stn_identity_proof *p = &r->proof;
	int proven = p->state == CU_ATTEST_PROVEN;

	fprintf(f, ",\"attestation\":{\"state\":\"%s\"",
		stn_attest_state_name(p->state));
	json_field(f, "policy",
		   stn_attest_policy_name(p->cls ? p->cls->attestation
						 : r->cls->attestation));
	json_field(f, "cert-subject", proven ? p->att.cert_subject : "");
	json_field(f, "cert-issuer", proven ? p->att.cert_issuer : "");
	json_field(f, "cert-serial", proven ? p->att.cert_serial : "");
	json_field(f, "reason", proven ? "" : p->why);
	fputc('}', f);
}

static void print_row_json(FILE *f, const struct row *r)
{
	fputs("{\"spec\":", f);
	ui_json_string(f, r->spec);
	if (r->usb) {
		json_field(f, "transport", r->usb->transport);
		json_field(f, "ids", r->usb->ids);
		json_field(f, "mode", r->usb->mode);
		json_field(f, "port", r->usb->port);
	} else {
		json_field(f, "transport", port_scheme(r->port->mode));
		json_field(f, "label", r->port->label);
		json_field(f, "path", r->port->path);
	}
	if (r->identified) {
		json_field(f, "identity_source", r->source);
		json_field(f, "serial", r->id.serial);
		json_field(f, "model", r->id.model);
		json_field(f, "hardware", r->id.hardware);
		json_field(f, "version", r->id.version);
		if (r->id.has_sequence)
			fprintf(f, ",\"sequence\":%" PRIu64, r->id.sequence);
		else
			fputs(",\"sequence\":null", f);
		json_field(f, "class", r->cls->label);
		if (r->attested)
			print_attestation_json(f, r);
	} else {
		json_field(f, "problem", r->problem);
	}
	fputc('}', f);
}

/* Ask one device who it is, and with a session whether it proves it.  A
 * device that does not answer keeps its problem; nothing here aborts the
 * listing. */
static void identify_row(const struct stn_config *cfg, struct stn_session *s,
			 struct row *r)
{
	struct stn_diag d;
	int rc;

	stn_diag_init(&d);
	if (s) {
		/* Asked even where the class says attestation = none: the
		 * technician asked whether it can prove itself. */
		rc = stn_identify_and_prove(s, r->spec, 1, &r->id, &r->proof,
					    &d);
		r->attested = rc == 0;
		r->source = r->usb ? r->usb->source : "device";
	} else if (r->usb) {
		rc = r->usb->identified ? 0 : STN_E_IDENTITY;
		if (rc)
			snprintf(r->problem, sizeof(r->problem), "%s",
				 r->usb->problem);
		r->id = r->usb->id;
		r->source = r->usb->source;
	} else {
		struct stn_device *dev = NULL;
		rc = stn_device_open(cfg, r->spec, &dev, &d);
		if (rc == 0)
			rc = stn_device_identify(dev, &r->id, &d);
		stn_device_close(dev);
		r->source = r->port->mode == STN_PORT_YMODEM ? "configuration"
							      : "device";
	}
	if (rc && d.code)
		stn_diag_format(&d, r->problem, sizeof(r->problem));
	r->identified = rc == 0;
	if (r->identified)
		r->cls = stn_config_class(cfg, r->id.model);
}

/* 1 when a listed device did not prove itself where it must (a failed
 * attestation, or none where its class requires one): the rule
 * `attestation` failed for it (spec/cli.md, exit 1). */
static int refused(const struct row *r)
{
	char words[400];
	enum stn_id_verdict v;

	if (!r->attested)
		return 0;
	v = stn_identity_words(&r->proof, NULL, words, sizeof(words));
	return v == STN_ID_NOT_GENUINE || v == STN_ID_UNPROVEN;
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
		{"attest", no_argument, NULL, 'a'},
		{"json", no_argument, NULL, 'j'},
		{"watch", required_argument, NULL, 'w'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	struct stn_device_seen *list = NULL;
	struct stn_device_watch *w = NULL;
	struct stn_config *own = NULL;
	const struct stn_config *cfg;
	struct stn_session *s = NULL;
	struct watch_view v = {0};
	struct row *rows = NULL;
	const char *config = NULL;
	struct stn_diag d;
	size_t n = 0, nrows = 0;
	int json = 0, attest = 0, seconds = -1, c, rc = 0;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'a': attest = 1; break;
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
	/* The ports and the classes come from the configuration; proving
	 * needs a session (the nonce's time, the device anchors, the
	 * journal that records each attestation). */
	if (attest) {
		if (stn_session_open(ui_config_path(config), NULL, "devices", 0,
				     &s, &d))
			return ui_report("devices", &d);
		ui_warn_session("devices", s);
		cfg = stn_session_config(s);
	} else {
		if (stn_config_load(ui_config_path(config), &own, &d))
			return ui_report("devices", &d);
		cfg = own;
	}
	/* Watch before listing, so that no device that arrives in between
	 * is missed by both. */
	v.json = json;
	if (seconds > 0 && stn_device_watch_new(on_event, &v, &w, &d)) {
		rc = ui_report("devices", &d);
		goto out;
	}
	if (stn_device_list(&list, &n, &d)) {
		rc = ui_report("devices", &d);
		goto out;
	}
	rows = calloc(n + cfg->nports + 1, sizeof(*rows));
	if (!rows) {
		rc = ui_usage_error(NULL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++, nrows++) {
		rows[nrows].usb = &list[i];
		snprintf(rows[nrows].spec, sizeof(rows[nrows].spec), "%s",
			 list[i].spec);
	}
	for (size_t i = 0; i < cfg->nports; i++, nrows++) {
		rows[nrows].port = &cfg->ports[i];
		snprintf(rows[nrows].spec, sizeof(rows[nrows].spec), "%s:%.280s",
			 port_scheme(cfg->ports[i].mode), cfg->ports[i].path);
	}
	for (size_t i = 0; i < nrows; i++) {
		identify_row(cfg, s, &rows[i]);
		if (refused(&rows[i]))
			rc = STN_EXIT_REFUSED;
	}
	if (json) {
		fputc('[', stdout);
		for (size_t i = 0; i < nrows; i++) {
			if (i)
				fputc(',', stdout);
			print_row_json(stdout, &rows[i]);
		}
		fputs("]\n", stdout);
	} else if (nrows == 0) {
		puts("no USB DFU device connected and no [port] configured");
	} else {
		for (size_t i = 0; i < nrows; i++)
			print_row_text(stdout, &rows[i]);
	}
	fflush(stdout);
	if (w) {
		int wrc = watch(w, seconds);
		if (wrc)
			rc = wrc;
	}
out:
	free(rows);
	free(list);
	stn_device_watch_free(w);
	stn_session_close(s, rc == STN_EXIT_REFUSED ? STN_E_ATTESTATION : 0);
	stn_config_free(own);
	return rc;
}
