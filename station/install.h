/* station/install.h: the station's two decisions as flows.  Verify stages a
 * bundle and judges it (for a device, when an identity is given); push does
 * the same and then installs, image by image, and calls the install good
 * only with proof.  Both journal every step and refusal, and report
 * progress through callbacks: nothing here prints. */
#ifndef STN_INSTALL_H
#define STN_INSTALL_H

#include <stddef.h>
#include <stdint.h>

#include "custody/devid.h"
#include "custody/manifest.h"
#include "custody/verify.h"
#include "station/device.h"

struct stn_diag;
struct stn_session;

enum stn_phase {
	STN_PHASE_STAGE = 0, /* copying from media, hashing */
	STN_PHASE_VERIFY,    /* signatures, validity, images */
	STN_PHASE_IDENTIFY,  /* asking the device who it is */
	STN_PHASE_CHECK,     /* target and sequence */
	STN_PHASE_WRITE,     /* sending an image */
	STN_PHASE_BOOT,      /* starting the new image */
	STN_PHASE_DONE,
};

const char *stn_phase_name(enum stn_phase p);

struct stn_events {
	/* A phase begins; detail is e.g. the image label.  May be NULL. */
	void (*phase)(void *ctx, enum stn_phase p, const char *detail);
	/* Bytes done of total within the current phase.  May be NULL. */
	void (*progress)(void *ctx, enum stn_phase p, uint64_t done,
			 uint64_t total);
	void *ctx;
};

struct stn_prepared;
struct stn_class;

/* How one device's identity stands (formats §9): the class its model
 * chose, what the identity step found, and the verified attestation when
 * it was proven. */
struct stn_identity_proof {
	const struct stn_class *cls; /* borrowed from the configuration */
	enum cu_attest_state state;
	struct cu_attestation att; /* state CU_ATTEST_PROVEN */
	char why[600];             /* ABSENT or FAILED: the reason */
};

/* "proven", "failed", "absent", "not-asked" */
const char *stn_attest_state_name(enum cu_attest_state s);

/* One line for people, at most cap-1 bytes: "proven: TX-200 SN-0001
 * (Acme TX-200 Device CA)", "unproven: the device cannot attest; class
 * tx200 allows it (attestation = optional)", "not proven: <why>". */
void stn_identity_text(const struct stn_identity_proof *p, char *buf,
		       size_t cap);

/*
 * Open the device named by spec, identify it and, unless its class says
 * attestation = none (or `force` asks anyway), have it attest to a fresh
 * nonce; journals device-attested (not in a quiet session).  For
 * `station devices --attest` and front ends' device lists.  Returns 0
 * whatever the attestation found (see p->state); errors are those of
 * opening and identifying the device.
 */
int stn_identify_and_prove(struct stn_session *s, const char *spec, int force,
			   struct cu_identity *id, struct stn_identity_proof *p,
			   struct stn_diag *d);

/* What a verify or push found: every check's outcome, so a front end can
 * show all of them.  Fill with stn_outcome_init; free with stn_outcome_fini. */
struct stn_outcome {
	const struct cu_bundle *bundle; /* NULL: manifest unreadable */
	struct stn_prepared *owned;     /* freed by stn_outcome_fini */
	int have_device;
	struct cu_identity identity; /* the attested record's when proven */
	struct stn_identity_proof ident;
	int authorized; /* an install authorization was handed over */
	struct cu_installed installed;
	struct cu_device_verdict device;
	/* push only */
	size_t images_written;
	enum stn_proof proof; /* the weakest proof among the images */
	int booted;
};

void stn_outcome_init(struct stn_outcome *r);
void stn_outcome_fini(struct stn_outcome *r);

/*
 * Stage the bundle in dir and verify it at the session start.  Images are
 * copied only once the release signatures have passed, so an unsigned
 * bundle cannot make the station write more than its manifest and
 * signature files.  When identity_path is not NULL it names a device
 * identity record (station-device-1) to check the bundle against; every
 * check then runs and the first failure in the spec's order is reported.
 * Journals bundle-verified or bundle-refused, and device-refused.  Returns
 * 0 when accepted, else the first failure's code with d naming the rule and
 * the file.
 */
int stn_verify(struct stn_session *s, const char *dir,
	       const char *identity_path, int allow_reinstall,
	       const struct stn_events *ev, struct stn_outcome *rep,
	       struct stn_diag *d);

/*
 * Verify, open the device named by spec, identify it, check it, write each
 * image from the staged copy, require the device's proof where the
 * transport has one, boot.  Nothing is written to a device unless every
 * check passed.  Returns 0 or the first failure's code.  (stn_prepare plus
 * stn_install, for one device.)
 */
int stn_push(struct stn_session *s, const char *dir, const char *spec,
	     int allow_reinstall, const struct stn_events *ev,
	     struct stn_outcome *rep, struct stn_diag *d);

/*
 * Stage and verify a bundle once, for any number of devices.  Returns 0
 * when every bundle check passed, else the first failure.  A failure that
 * no device check can come before (checks 1 to 3, an unreadable bundle) is
 * journaled here and makes every stn_install refuse at once; a custody
 * failure (check 6) is left to each device's verdict, where checks 4 and 5
 * come first in the spec's order.  *out is set whenever the manifest could
 * be read (free it with stn_prepared_free, after every stn_install on it
 * has returned).
 */
int stn_prepare(struct stn_session *s, const char *dir,
		const struct stn_events *ev, struct stn_prepared **out,
		struct stn_diag *d);
const struct cu_bundle *stn_prepared_bundle(const struct stn_prepared *p);
void stn_prepared_free(struct stn_prepared *p); /* NULL is fine */

/*
 * Identify one device and run the device checks against a prepared bundle
 * without writing anything or journaling (the verdict a front end shows
 * before the technician chooses; the push journals its own).  Returns 0
 * when the device could be installed, else the first failure with d
 * naming the rule; rep is filled as far as it got.  Thread-safe like
 * stn_install.
 */
int stn_inspect(struct stn_session *s, const struct stn_prepared *p,
		const char *spec, struct stn_outcome *rep, struct stn_diag *d);

/*
 * Identify, check and install on one device from a prepared bundle.
 * Several calls may run at once in different threads, for different
 * devices, on the same session and prepared bundle: one failing never
 * affects another.  rep->bundle borrows the prepared bundle.
 */
int stn_install(struct stn_session *s, const struct stn_prepared *p,
		const char *spec, int allow_reinstall,
		const struct stn_events *ev, struct stn_outcome *rep,
		struct stn_diag *d);

/*
 * Ask every install in this process to stop (signal is the signal number,
 * non-zero): a write stops before its next block, an install not yet
 * writing does not start, and each journals install-failed with rule
 * `interrupted` (STN_E_INTERRUPTED).  Async-signal-safe: one atomic store,
 * so a signal handler may call it.  stn_install_interrupted returns the
 * signal asked for, 0 when none; stn_install_interrupt(0) clears it (a
 * test, or a new run in the same process).
 */
void stn_install_interrupt(int signal);
int stn_install_interrupted(void);

#endif
