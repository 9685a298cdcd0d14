/* station/device_fake.h: a device for tests, in the same transport table
 * as the real ones (station/device_internal.h).  SPEC `fake:NAME` opens
 * the unit a test attached under NAME; the scheme exists only after
 * stn_fake_register, which nothing but tests calls, so a station in the
 * field never reaches it.  Each unit has fault countdowns, as SQLite's
 * test_vfs injects an I/O error after N calls, and keeps what it received
 * so that a test compares bytes. */
#ifndef STN_DEVICE_FAKE_H
#define STN_DEVICE_FAKE_H

#include <stddef.h>
#include <stdint.h>

#include "custody/manifest.h"
#include "station/device.h"

struct stn_diag;

struct stn_fake_image {
	unsigned slot;
	char file[256];
	uint8_t *data; /* malloc'd; what arrived, also of a failed write */
	size_t len;
};

/* Owned by the test; the fake only fills the "what happened" part. */
struct stn_fake_unit {
	char name[64];		 /* SPEC fake:NAME */
	struct cu_identity id;	 /* what identify reports */
	/* faults: -1 (or 0 for the flags) means none */
	int fail_identify;	 /* identify fails (STN_E_PROTOCOL) */
	int images_before_fail;	 /* this many writes succeed, the next fails
				    (STN_E_IO) ... */
	int64_t bytes_before_fail; /* ... after taking this many of its bytes
				      (-1: all of them) */
	int wrong_digest_image;	 /* the write with this index reports a
				    digest of other bytes */
	int fail_boot;		 /* boot fails (STN_E_DEVICE) */
	enum stn_proof proof[CU_MAX_IMAGES]; /* what write i reports;
						default STN_PROOF_NONE */
	/* what happened */
	int opened, identified, booted;
	size_t writes; /* write calls, the failed one included */
	struct stn_fake_image got[CU_MAX_IMAGES];
};

/* No faults, proof STN_PROOF_DEVICE_SHA for every image, identity from the
 * arguments (hardware may be NULL; sequence unknown). */
void stn_fake_unit_init(struct stn_fake_unit *u, const char *name,
			const char *model, const char *hardware,
			const char *serial);
/* Frees what the unit received.  NULL is fine. */
void stn_fake_unit_fini(struct stn_fake_unit *u);

/* Put the fake in the transport table.  Errors: those of
 * stn_device_register. */
int stn_fake_register(struct stn_diag *d);
/* Make u reachable as fake:u->name (until stn_fake_detach_all; u is
 * borrowed).  Up to 16 units; call before the installs start. */
int stn_fake_attach(struct stn_fake_unit *u, struct stn_diag *d);
void stn_fake_detach_all(void);

#endif
