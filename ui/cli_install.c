/* ui/cli_install.c: `station verify` and `station push`, thin over
 * station/install.h: parse options, call the core, print what it found. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "station/base/rfc3339.h"
#include "station/base/error.h"
#include "station/config.h"
#include "station/identity_words.h"
#include "station/install.h"
#include "station/release.h"
#include "station/session.h"
#include "ui/cli.h"

static const char verify_usage[] =
	"usage: station verify [--config FILE] [--technician ID] "
	"[--device FILE]\n"
	"                      [--reinstall] [--json] BUNDLE\n"
	"       station verify --trust FILE [--crl DIR] [--threshold N] "
	"[--json] BUNDLE\n"
	"  --trust: release engineering's check with no station "
	"configuration: signatures\n"
	"  (N distinct release keys, default 1), validity at this clock, "
	"images\n"
	"  (encrypted ones by cipher-sha256 only) and custody records if "
	"any.\n";
static const char push_usage[] =
	"usage: station push [--config FILE] [--json] --technician ID "
	"--device SPEC\n"
	"                    [--device SPEC]... [--reinstall] BUNDLE\n"
	"  Several --device options install on the devices at once, one "
	"outcome line\n"
	"  each; the exit code is the worst outcome's (refused over device "
	"error).\n"
	"  SPEC: serial:/dev/ttyX (console device), ymodem:/dev/ttyX "
	"(plain YMODEM,\n"
	"        identity from [port]), smp:/dev/ttyX (MCUmgr), usb:SERIAL "
	"or\n"
	"        usb:VID:PID (DFU)\n"
	"  Progress (on stderr) shows bytes, rate and time left: one updating "
	"line on\n"
	"  a terminal, else a line every 10% or 5 seconds.\n";
const char *const ui_verify_usage = verify_usage;
const char *const ui_push_usage = push_usage;

/* The outcome to show for check c: with a device, checks 2, 4, 5 and 6
 * are the device's (a token may have waived them); NULL: not shown. */
static const struct cu_check_result *shown_check(const struct stn_outcome *rep,
						 int c)
{
	int device_ran = rep->have_device && rep->device.target.outcome;

	switch (c) {
	case CU_CHECK_SIGNATURES:
		return device_ran && rep->device.signatures.outcome
			       ? &rep->device.signatures
			       : cu_bundle_check(rep->bundle, c);
	case CU_CHECK_ATTESTATION:
		return device_ran && rep->device.attestation.outcome
			       ? &rep->device.attestation
			       : NULL;
	case CU_CHECK_TARGET:
		return device_ran ? &rep->device.target : NULL;
	case CU_CHECK_SEQUENCE:
		return device_ran ? &rep->device.sequence : NULL;
	case CU_CHECK_VALIDITY:
		return device_ran ? &rep->device.validity
				  : cu_bundle_check(rep->bundle, c);
	case CU_CHECK_CUSTODY:
		return device_ran ? &rep->device.custody
				  : cu_bundle_check(rep->bundle, c);
	default:
		return cu_bundle_check(rep->bundle, (enum cu_check)c);
	}
}

/* `verify --trust`: what the bundle was judged against, for the output. */
struct trust_view {
	const char *anchors;
	unsigned threshold;
	int64_t at;
	size_t sealed; /* encrypted images checked on their ciphertext */
};

static void print_checks(FILE *f, const struct stn_outcome *rep,
			 const struct trust_view *tv)
{
	const struct cu_manifest *m = cu_bundle_manifest(rep->bundle);
	char t[CU_TIME_LEN + 1];
	size_t n;
	const struct cu_signer *sg = cu_bundle_signers(rep->bundle, &n);

	cu_time_format(m->expires, t);
	fprintf(f, "bundle    %s %s (sequence %llu) for %s\n",
		UI_SAFE(m->name), UI_SAFE(m->version),
		(unsigned long long)m->sequence, UI_SAFE(m->model));
	fprintf(f, "id        %s\n", m->id_hex);
	fprintf(f, "expires   %s\n", t);
	fprintf(f, "signers  ");
	for (size_t i = 0; i < n; i++)
		fprintf(f, " %s", UI_SAFE(sg[i].cn));
	fprintf(f, "%s\n", n ? "" : " (none valid)");
	for (int c = 0; c < CU_NCHECKS; c++) {
		const struct cu_check_result *r = shown_check(rep, c);
		if (!r)
			continue;
		fprintf(f, "  %-11s %-12s %s\n", cu_check_name((enum cu_check)c),
			cu_outcome_name(r->outcome), UI_SAFE(r->diag.text));
	}
	{
		const struct cu_chain *ch = cu_bundle_chain(rep->bundle);
		for (size_t i = 0; i < ch->n; i++) {
			cu_time_format(ch->hops[i].time, t);
			fprintf(f, "custody   %s  %s -> %s%s%s\n", t,
				UI_SAFE(ch->hops[i].from),
				UI_SAFE(ch->hops[i].to),
				ch->hops[i].seal[0] ? "  seal " : "",
				UI_SAFE(ch->hops[i].seal));
		}
	}
	{
		size_t nt;
		const struct cu_token *tk = cu_bundle_tokens(rep->bundle, &nt);
		char w[64];
		for (size_t i = 0; i < nt; i++)
			fprintf(f, "token     %s waives %s: %s\n",
				UI_SAFE(tk[i].file),
				cu_waiver_names(tk[i].waive, w, sizeof(w)),
				tv ? "not judged here (a station judges "
				     "tokens per device)"
				   : UI_SAFE(tk[i].problem.code
						     ? tk[i].problem.text
						     : tk[i].reason));
	}
	if (tv && cu_bundle_check(rep->bundle, CU_CHECK_CUSTODY)->outcome ==
			  CU_NOT_REQUIRED)
		fprintf(f, "note      no custody/ directory: custody not "
			"checked\n");
	if (tv && tv->sealed)
		fprintf(f, "warning   %zu encrypted image(s): only the "
			"ciphertext was checked; the plaintext\n"
			"          was NOT checked (no delivery key here)\n",
			tv->sealed);
}

static void print_json(FILE *f, const struct stn_outcome *rep, int rc,
		       const struct stn_diag *d, const struct trust_view *tv)
{
	fprintf(f, "{\"verdict\":\"%s\"", rc ? "refused" : "accepted");
	if (tv) {
		char t[CU_TIME_LEN + 1];
		cu_time_format(tv->at, t);
		fputs(",\"trust\":", f);
		ui_json_string(f, tv->anchors);
		fprintf(f, ",\"threshold\":%u,\"checked_at\":\"%s\","
			"\"plaintext_unchecked\":%zu", tv->threshold, t,
			tv->sealed);
	}
	if (rc) {
		fprintf(f, ",\"rule\":");
		ui_json_string(f, stn_err_rule(rc));
		fprintf(f, ",\"where\":");
		ui_json_string(f, d->where);
		fprintf(f, ",\"reason\":");
		ui_json_string(f, d->text);
	}
	if (rep->bundle) {
		const struct cu_manifest *m = cu_bundle_manifest(rep->bundle);
		fprintf(f, ",\"bundle\":{\"id\":\"%s\",\"name\":", m->id_hex);
		ui_json_string(f, m->name);
		fprintf(f, ",\"version\":");
		ui_json_string(f, m->version);
		fprintf(f, ",\"sequence\":%llu,\"model\":",
			(unsigned long long)m->sequence);
		ui_json_string(f, m->model);
		fprintf(f, "},\"checks\":[");
		int first = 1;
		for (int c = 0; c < CU_NCHECKS; c++) {
			const struct cu_check_result *r = shown_check(rep, c);
			if (!r)
				continue;
			fprintf(f, "%s{\"check\":\"%s\",\"outcome\":\"%s\"",
				first ? "" : ",",
				cu_check_name((enum cu_check)c),
				cu_outcome_name(r->outcome));
			if (r->outcome == CU_FAILED) {
				fprintf(f, ",\"rule\":");
				ui_json_string(f, stn_err_rule(r->diag.code));
			}
			fprintf(f, ",\"where\":");
			ui_json_string(f, r->diag.where);
			fprintf(f, ",\"detail\":");
			ui_json_string(f, r->diag.text);
			fputc('}', f);
			first = 0;
		}
		fputc(']', f);
		const struct cu_chain *ch = cu_bundle_chain(rep->bundle);
		fputs(",\"custody\":[", f);
		for (size_t i = 0; i < ch->n; i++) {
			char t[CU_TIME_LEN + 1];
			cu_time_format(ch->hops[i].time, t);
			fprintf(f, "%s{\"index\":%u,\"from\":", i ? "," : "",
				ch->hops[i].index);
			ui_json_string(f, ch->hops[i].from);
			fputs(",\"to\":", f);
			ui_json_string(f, ch->hops[i].to);
			fprintf(f, ",\"time\":\"%s\",\"seal\":", t);
			ui_json_string(f, ch->hops[i].seal);
			fputs(",\"place\":", f);
			ui_json_string(f, ch->hops[i].place);
			fputc('}', f);
		}
		size_t nt;
		const struct cu_token *tk = cu_bundle_tokens(rep->bundle, &nt);
		fputs("],\"tokens\":[", f);
		for (size_t i = 0; i < nt; i++) {
			char w[64];
			int applied = 0;
			for (size_t k = 0; k < rep->device.napplied; k++)
				applied |= rep->device.applied[k] == i;
			fprintf(f, "%s{\"file\":", i ? "," : "");
			ui_json_string(f, tk[i].file);
			fputs(",\"id\":", f);
			ui_json_string(f, tk[i].id);
			fputs(",\"waives\":", f);
			ui_json_string(f, cu_waiver_names(tk[i].waive, w,
							  sizeof(w)));
			fputs(",\"reason\":", f);
			ui_json_string(f, tk[i].reason);
			fprintf(f, ",\"applied\":%s,\"problem\":",
				applied ? "true" : "false");
			ui_json_string(f, tk[i].problem.code
						  ? tk[i].problem.text
						  : "");
			fputc('}', f);
		}
		fputc(']', f);
	}
	fputs("}\n", f);
}

/* verify: no phase lines (its report says what ran), only the staging
 * copy's progress, and only once it has taken a second. */
static void verify_phase(void *ctx, enum stn_phase p, const char *detail)
{
	struct ui_progress *v = ctx;

	(void)p;
	(void)detail;
	ui_progress_end(v);
	ui_progress_begin(v, v->tty);
}

static void verify_progress(void *ctx, enum stn_phase p, uint64_t done,
			    uint64_t total)
{
	if (p == STN_PHASE_STAGE)
		ui_progress_update(ctx, done, total);
}

/* `verify --trust FILE`: no configuration is read, no session opened,
 * nothing journaled (docs/release.md, docs/decisions.md). */
static int verify_trust(const char *anchors, const char *crl_dir,
			unsigned threshold, int json, const char *dir)
{
	struct trust_view tv = {anchors, threshold, (int64_t)time(NULL), 0};
	struct cu_bundle *b = NULL;
	struct stn_outcome rep;
	struct stn_diag d;
	char t[CU_TIME_LEN + 1];
	int rc;

	stn_diag_init(&d);
	stn_outcome_init(&rep);
	rc = stn_release_verify(anchors, crl_dir, threshold, tv.at, dir, &b,
				&d);
	rep.bundle = b;
	if (b)
		tv.sealed = cu_bundle_sealed(b);
	if (json) {
		print_json(stdout, &rep, rc, &d, &tv);
	} else if (b) {
		cu_time_format(tv.at, t);
		printf("trust     %s alone\n", UI_SAFE(anchors));
		printf("          no station configuration read; nothing "
		       "journaled\n");
		printf("checked   at %s (this clock), release threshold %u\n",
		       t, threshold);
		print_checks(stdout, &rep, &tv);
		if (rc == 0)
			printf("verdict   accepted for release (target, "
			       "sequence, tokens: per device)\n");
	}
	cu_bundle_free(b);
	rep.bundle = NULL;
	stn_outcome_fini(&rep);
	return rc ? ui_report("verify", &d) : 0;
}

int ui_cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"technician", required_argument, NULL, 't'},
		{"device", required_argument, NULL, 'd'},
		{"reinstall", no_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'},
		{"trust", required_argument, NULL, 'T'},
		{"crl", required_argument, NULL, 'L'},
		{"threshold", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *config = NULL, *tech = NULL, *devfile = NULL;
	const char *trust = NULL, *crl = NULL, *threshold_s = NULL;
	unsigned long threshold = 1;
	char *end;
	int json = 0, reinstall = 0, c, rc;
	struct ui_progress view = {.tty = isatty(2), .last_pct = -1,
				   .quiet_ms = 1000};
	struct stn_events ev = {verify_phase, verify_progress, &view};
	struct stn_session *s = NULL;
	struct stn_outcome rep;
	struct stn_diag d;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 't': tech = optarg; break;
		case 'd': devfile = optarg; break;
		case 'r': reinstall = 1; break;
		case 'j': json = 1; break;
		case 'T': trust = optarg; break;
		case 'L': crl = optarg; break;
		case 'n': threshold_s = optarg; break;
		case 'h': fputs(verify_usage, stdout); return 0;
		default: return ui_usage_error(verify_usage, "bad option");
		}
	}
	if (optind != argc - 1)
		return ui_usage_error(verify_usage, "give exactly one BUNDLE");
	if (!trust && (crl || threshold_s))
		return ui_usage_error(verify_usage,
				      "--crl and --threshold go with --trust");
	if (trust) {
		/* The bundle alone: anything of a station is a mistake. */
		if (config || tech || devfile || reinstall)
			return ui_usage_error(verify_usage,
					      "--trust checks the bundle alone: "
					      "no --config, --technician, "
					      "--device or --reinstall");
		if (threshold_s) {
			errno = 0;
			threshold = strtoul(threshold_s, &end, 10);
			if (errno || end == threshold_s || *end ||
			    threshold < 1 || threshold > 64 ||
			    threshold_s[0] == '-')
				return ui_usage_error(verify_usage,
						      "bad --threshold '%s': "
						      "1 to 64",
						      threshold_s);
		}
		return verify_trust(trust, crl, (unsigned)threshold, json,
				    argv[optind]);
	}
	stn_diag_init(&d);
	stn_outcome_init(&rep);
	rc = stn_session_open(ui_config_path(config), tech, "verify", 0, &s,
			      &d);
	if (rc)
		return ui_report("verify", &d);
	ui_warn_session("verify", s);
	rc = stn_verify(s, argv[optind], devfile, reinstall, &ev, &rep, &d);
	ui_progress_end(&view);
	if (json)
		print_json(stdout, &rep, rc, &d, NULL);
	else if (rep.bundle)
		print_checks(stdout, &rep, NULL);
	if (!json && rc == 0)
		printf("verdict   accepted%s\n",
		       devfile ? " for this device" : " (no device given)");
	stn_session_close(s, rc);
	stn_outcome_fini(&rep);
	return rc ? ui_report("verify", &d) : 0;
}

/* Each phase on its own line, then its progress (ui/common.h). */
static void push_phase(void *ctx, enum stn_phase p, const char *detail)
{
	struct ui_progress *v = ctx;

	ui_progress_end(v);
	ui_progress_begin(v, v->tty);
	if (p != STN_PHASE_DONE)
		fprintf(stderr, "  %-8s %s\n", stn_phase_name(p),
			UI_SAFE(detail));
}

static void push_progress(void *ctx, enum stn_phase p, uint64_t done,
			  uint64_t total)
{
	(void)p;
	ui_progress_update(ctx, done, total);
}

#define PUSH_DEVICES_MAX 16

/* One device of a push to several at once. */
struct push_one {
	struct stn_session *s;
	const struct stn_prepared *prep;
	const char *spec;
	int reinstall;
	pthread_t thread;
	int started;
	int rc;
	struct stn_outcome rep;
	struct stn_diag d;
};

static void *push_one_run(void *arg)
{
	struct push_one *o = arg;

	o->rc = stn_install(o->s, o->prep, o->spec, o->reinstall, NULL,
			    &o->rep, &o->d);
	return NULL;
}

/* What an install found out about the device's identity, for people. */
static void print_identity(FILE *f, const char *prefix,
			   const struct stn_outcome *rep)
{
	char text[900];

	if (!rep->have_device || !rep->ident.cls)
		return;
	stn_identity_text(&rep->ident, text, sizeof(text));
	fprintf(f, "%sidentity: %s (class %s)\n", prefix, UI_SAFE(text),
		UI_SAFE(rep->ident.cls->label));
	/* A unit that tried and failed: what the screen says, cause first
	 * and what to do (station/identity_words.h). */
	if (rep->ident.state == CU_ATTEST_FAILED) {
		stn_identity_words(&rep->ident, NULL, text, sizeof(text));
		fprintf(f, "%s%s\n", prefix, UI_SAFE(text));
	}
}

static void print_installed(FILE *f, const char *prefix,
			    const struct stn_outcome *rep)
{
	const struct cu_manifest *m = cu_bundle_manifest(rep->bundle);

	fprintf(f, "%sinstalled %s %s (sequence %llu) on %s serial %s; "
		"proof: %s\n", prefix, UI_SAFE(m->name), UI_SAFE(m->version),
		(unsigned long long)m->sequence, UI_SAFE(rep->identity.model),
		UI_SAFE(rep->identity.serial), stn_proof_name(rep->proof));
	print_identity(f, prefix, rep);
	/* devices.md: say where the installed sequence came from. */
	if (rep->installed.source == CU_SEQ_JOURNAL)
		fprintf(f, "%snote: the device does not report its sequence; "
			"%llu was taken from this station's journal\n", prefix,
			(unsigned long long)rep->installed.sequence);
	else if (rep->installed.source == CU_SEQ_UNKNOWN)
		fprintf(f, "%snote: the device does not report its sequence "
			"and this station never installed on it: "
			"anti-rollback could not be checked\n", prefix);
	if (rep->proof == STN_PROOF_NONE)
		fprintf(f, "%swarning: this transport cannot read back; the "
			"install is recorded as unproven\n", prefix);
}

/* Worst first: a refusal (a rule failed) outranks a device error, which
 * outranks success. */
static int worse(int a, int b)
{
	static const int rank[] = {[STN_EXIT_OK] = 0, [STN_EXIT_IO] = 1,
				   [STN_EXIT_REFUSED] = 2,
				   [STN_EXIT_USAGE] = 3};
	int ea = stn_err_exit(a), eb = stn_err_exit(b);
	return rank[eb] > rank[ea] ? b : a;
}

static void print_push_json(FILE *f, struct push_one *o, size_t n)
{
	fputs("{\"devices\":[", f);
	for (size_t i = 0; i < n; i++) {
		char text[900] = "";
		fprintf(f, "%s{\"device\":", i ? "," : "");
		ui_json_string(f, o[i].spec);
		fprintf(f, ",\"outcome\":\"%s\"",
			o[i].rc ? "failed" : "installed");
		if (o[i].rc) {
			fputs(",\"rule\":", f);
			ui_json_string(f, stn_err_rule(o[i].rc));
			fputs(",\"where\":", f);
			ui_json_string(f, o[i].d.where);
			fputs(",\"reason\":", f);
			ui_json_string(f, o[i].d.text);
		} else {
			fprintf(f, ",\"proof\":\"%s\"",
				stn_proof_name(o[i].rep.proof));
		}
		if (o[i].rep.have_device) {
			fputs(",\"serial\":", f);
			ui_json_string(f, o[i].rep.identity.serial);
			fputs(",\"model\":", f);
			ui_json_string(f, o[i].rep.identity.model);
		}
		if (o[i].rep.ident.cls) {
			stn_identity_text(&o[i].rep.ident, text, sizeof(text));
			fputs(",\"class\":", f);
			ui_json_string(f, o[i].rep.ident.cls->label);
			fprintf(f, ",\"attestation\":\"%s\",\"identity\":",
				stn_attest_state_name(o[i].rep.ident.state));
			ui_json_string(f, text);
		}
		fputc('}', f);
	}
	fputs("]}\n", f);
}

/* Several devices: stage and verify once, install on each in its own
 * thread (station/install.h), then one outcome line per device. */
static int push_many(struct stn_session *s, const char *dir,
		     const char **specs, size_t n, int reinstall, int json,
		     struct stn_diag *d)
{
	struct stn_prepared *prep = NULL;
	struct push_one *o = calloc(n, sizeof(*o));
	int rc, worst = 0;

	if (!o)
		return stn_fail(d, STN_E_NOMEM, dir, "push");
	rc = stn_prepare(s, dir, NULL, &prep, d);
	if (!prep || (rc && stn_err_exit(rc) != STN_EXIT_REFUSED)) {
		free(o);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		o[i].s = s;
		o[i].prep = prep;
		o[i].spec = specs[i];
		o[i].reinstall = reinstall;
		stn_outcome_init(&o[i].rep);
		stn_diag_init(&o[i].d);
		if (pthread_create(&o[i].thread, NULL, push_one_run, &o[i]))
			o[i].rc = stn_fail(&o[i].d, STN_E_NOMEM, specs[i],
					   "cannot start a thread");
		else
			o[i].started = 1;
	}
	for (size_t i = 0; i < n; i++)
		if (o[i].started)
			pthread_join(o[i].thread, NULL);
	if (json)
		print_push_json(stdout, o, n);
	for (size_t i = 0; i < n; i++) {
		char prefix[200];
		snprintf(prefix, sizeof(prefix), "%s: ", UI_SAFE(specs[i]));
		if (!json && o[i].rc == 0)
			print_installed(stdout, prefix, &o[i].rep);
		else if (!json)
			printf("%s%s (rule %s): %s: %s\n", prefix,
			       stn_err_exit(o[i].rc) == STN_EXIT_REFUSED
				       ? "refused" : "failed",
			       stn_err_rule(o[i].rc), UI_SAFE(o[i].d.where),
			       UI_SAFE(o[i].d.text));
		if (!json && o[i].rc)
			print_identity(stdout, prefix, &o[i].rep);
		if (o[i].rc && worse(worst, o[i].rc) == o[i].rc) {
			worst = o[i].rc;
			*d = o[i].d;
		}
	}
	for (size_t i = 0; i < n; i++)
		stn_outcome_fini(&o[i].rep);
	stn_prepared_free(prep);
	free(o);
	return worst;
}

int ui_cmd_push(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"technician", required_argument, NULL, 't'},
		{"device", required_argument, NULL, 'd'},
		{"reinstall", no_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *config = NULL, *tech = NULL, *specs[PUSH_DEVICES_MAX];
	struct ui_progress view = {.tty = isatty(2), .last_pct = -1};
	struct stn_events ev = {push_phase, push_progress, &view};
	struct stn_session *s = NULL;
	struct stn_outcome rep;
	struct stn_diag d;
	size_t nspecs = 0;
	int reinstall = 0, json = 0, c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 't': tech = optarg; break;
		case 'd':
			if (nspecs == PUSH_DEVICES_MAX)
				return ui_usage_error(push_usage,
						      "at most 16 --device");
			specs[nspecs++] = optarg;
			break;
		case 'r': reinstall = 1; break;
		case 'j': json = 1; break;
		case 'h': fputs(push_usage, stdout); return 0;
		default: return ui_usage_error(push_usage, "bad option");
		}
	}
	if (!tech || !nspecs)
		return ui_usage_error(push_usage,
				      "--technician and --device are required");
	if (optind != argc - 1)
		return ui_usage_error(push_usage, "give exactly one BUNDLE");
	stn_diag_init(&d);
	stn_outcome_init(&rep);
	/* A mistyped SPEC is a usage error before any work or journaling. */
	for (size_t i = 0; i < nspecs; i++) {
		if (stn_device_spec_check(specs[i], &d))
			return ui_report("push", &d);
		for (size_t k = 0; k < i; k++)
			if (strcmp(specs[i], specs[k]) == 0)
				return ui_usage_error(push_usage,
						      "a device is named twice");
	}
	/* From here a signal stops the install cleanly: journaled as failed
	 * (rule interrupted), session ended, then main ends by it. */
	ui_catch_signals();
	rc = stn_session_open(ui_config_path(config), tech, "push", 0, &s, &d);
	if (rc)
		return ui_report("push", &d);
	ui_warn_session("push", s);
	if (nspecs > 1 || json) {
		rc = push_many(s, argv[optind], specs, nspecs, reinstall, json,
			       &d);
		stn_session_close(s, rc);
		return rc ? ui_report("push", &d) : 0;
	}
	rc = stn_push(s, argv[optind], specs[0], reinstall, &ev, &rep, &d);
	ui_progress_end(&view);
	if (rc == 0)
		print_installed(stdout, "", &rep);
	else
		print_identity(stderr, "", &rep);
	stn_session_close(s, rc);
	stn_outcome_fini(&rep);
	return rc ? ui_report("push", &d) : 0;
}
