/* station/config.h: station.conf (formats §8), read strictly: an unknown key,
 * a bad value or an unreadable file stops the program with FILE:LINE and the
 * problem; the station never runs with a half-read configuration.  Relative
 * paths in the file are taken relative to the file's own directory. */
#ifndef STN_CONFIG_H
#define STN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct stn_diag;

/* smp: MCUmgr over the console framing (docs/serial.md); model and serial
 * are optional there, the device reports its board. */
enum stn_port_mode {
	STN_PORT_CONSOLE = 0,
	STN_PORT_YMODEM = 1,
	STN_PORT_SMP = 2,
};

struct stn_port {
	char *label;
	char *path;
	unsigned baud;
	int rtscts;
	enum stn_port_mode mode;
	char *model, *hardware, *serial; /* identity of plain-YMODEM ports,
					    fill-ins for smp ports */
	/* smp ports (docs/serial.md "Timings"); 0: the defaults there */
	unsigned reset_timeout_ms; /* reset-timeout: answer after a reset
				      that test-boots a new image */
	unsigned recovery_wait_ms; /* recovery-wait: after an image written
				      straight to the primary slot */
	unsigned line;                   /* for messages */
};

/* [usb]: DFU limits (docs/usb.md "Timeouts"); 0: the transport's
 * default. */
struct stn_usb_limits {
	int request_timeout_ms;  /* request-timeout: one control request */
	int busy_timeout_ms;	 /* busy-timeout: one block busy in all */
	int manifest_timeout_ms; /* manifest-timeout: manifestation in all */
	int reappear_timeout_ms; /* reappear-timeout: back on the bus after
				    a detach or reset, plus wDetachTimeOut */
};

struct stn_technician {
	char *id;
	char *name;
	char *pin; /* "pbkdf2-sha256$ITER$SALTHEX$HASHHEX" or NULL */
};

/* [class NAME] (formats §8): policy per kind of device, chosen by model.
 * Every value is resolved at load: what the section leaves out is the
 * [trust] default. */
enum stn_attest_policy {
	STN_ATTEST_NONE = 0,
	STN_ATTEST_OPTIONAL,
	STN_ATTEST_REQUIRED,
};

/* "none", "optional", "required" */
const char *stn_attest_policy_name(enum stn_attest_policy p);

/* The [trust] defaults of formats §8, for the configuration and for the
 * commands that run without one (release engineering's checks). */
#define STN_DEFAULT_RELEASE_THRESHOLD 1
#define STN_DEFAULT_MAX_TOKEN_TTL (72 * 3600)
#define STN_DEFAULT_MAX_CUSTODY_AGE (30 * 86400)
#define STN_DEFAULT_MAX_CUSTODY_HOPS 8

struct stn_class {
	char *label;
	char **models; /* nmodels, each as written */
	size_t nmodels;
	char *device_anchors; /* PEM file of the device CAs; NULL: none */
	enum stn_attest_policy attestation;
	int proof_required; /* proof = required */
	unsigned release_threshold;
	int require_custody;
	int64_t max_token_ttl, max_custody_age;
	unsigned max_custody_hops;
	unsigned waivable; /* enum cu_waiver bits (custody/token.h) */
	unsigned line;
};

struct stn_config {
	char *path;
	/* [station] */
	char *id, *site, *key, *cert, *data, *media;
	char *delivery_key, *delivery_cert; /* formats §10; NULL: none */
	int mount_media; /* appliance mode: mount removable media read-only */
	/* report-media: where report sticks (a file STATION-REPORTS at the
	 * top) are mounted read-write; NULL: none, reports go to media.
	 * Only with mount_media; neither inside media nor containing it. */
	char *report_media;
	int keep_staged; /* keep staged copies after the session */
	/* The text UI's sign-in policy (docs/decisions.md "Sign-in"):
	 * signin-attempts failed sign-ins (default 5) lock that id for
	 * signin-lockout seconds (default 15m); a technician who pressed no
	 * key for idle-signout seconds (default 10m) is signed out. */
	unsigned signin_attempts;
	int64_t signin_lockout, idle_signout;
	/* [trust] */
	char *anchors, *crl_dir;
	unsigned release_threshold;
	int64_t max_token_ttl, max_custody_age;
	unsigned max_custody_hops;
	int require_custody;
	int stale_crl_refuse;
	struct stn_technician *techs;
	size_t ntechs;
	struct stn_port *ports;
	size_t nports;
	struct stn_usb_limits usb;
	struct stn_class *classes;
	size_t nclasses;
	/* The policy of a device whose model no class names: the [trust]
	 * values, attestation none, proof allowed, every waiver
	 * (label "default", models and device_anchors NULL). */
	struct stn_class default_class;
};

/* The default path: $STATION_CONFIG, else /etc/station/station.conf. */
const char *stn_config_default_path(void);
/* Errors: STN_E_CONFIG (naming FILE:LINE), STN_E_NOMEM.  Checks that the
 * files it names (anchors, key, cert, crl directory) can be opened; the
 * certificate's role is checked by whoever loads the trust store. */
int stn_config_load(const char *path, struct stn_config **out,
		    struct stn_diag *d);
void stn_config_free(struct stn_config *c); /* NULL is fine */

/* Borrowed lookups; NULL when absent. */
const struct stn_technician *stn_config_technician(const struct stn_config *c,
						   const char *id);
const struct stn_port *stn_config_port(const struct stn_config *c,
				       const char *path);
/* The class whose models include `model` (exact match), else
 * &c->default_class; never NULL. */
const struct stn_class *stn_config_class(const struct stn_config *c,
					 const char *model);

#endif
