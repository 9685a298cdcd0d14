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

struct stn_config {
	char *path;
	/* [station] */
	char *id, *site, *key, *cert, *data, *media;
	int mount_media; /* appliance mode: mount removable media read-only */
	int keep_staged; /* keep staged copies after the session */
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

#endif
