/* custody/chain.h: the chain of custody (formats §4).  Each party that hands
 * the media on signs one record; together they form a hash chain from the
 * release to the technician at the station.  This module parses records,
 * checks every rule of the chain (each failure naming the record), and
 * appends the next record for `station custody add`. */
#ifndef CU_CHAIN_H
#define CU_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "custody/layout.h"
#include "station/base/sha256.h"

struct stn_diag;
struct cu_trust;
struct cu_key;
struct cu_manifest;

#define CU_MAX_HOPS CU_MAX_CUSTODY /* one custody/NN.rec per hop */
#define CU_CLOCK_SKEW 300    /* seconds allowed between parties' clocks */

struct cu_hop {
	unsigned index;
	char file[40];   /* "custody/03.rec" */
	char from[129];  /* CN of the signer */
	char to[129];    /* CN or technician id of the receiver */
	int64_t time;
	char place[257]; /* "" when not given */
	char seal[129];  /* "" when not given */
};

struct cu_chain {
	struct cu_hop hops[CU_MAX_HOPS];
	size_t n;
};

struct cu_custody_rules {
	unsigned max_hops;      /* policy max-custody-hops */
	int64_t max_age;        /* policy max-custody-age, seconds */
	const char *technician; /* signed in at the station; NULL: nobody */
	/* 1: the last `to` is not judged (release engineering checks a
	 * chain before any technician holds it; `verify --trust`). */
	int open_end;
};

/* Parse one record's bytes (form only).  bundle and previous receive the
 * digests it names.  Errors: STN_E_SYNTAX naming FILE:LINE. */
int cu_custody_parse(const void *buf, size_t len, const char *path,
		     struct cu_hop *hop, uint8_t bundle[CU_SHA256_LEN],
		     uint8_t previous[CU_SHA256_LEN], struct stn_diag *d);

/*
 * Check the chain in bundle_dir/custody/ against manifest m at time `at`
 * (the session start): indices 1..N without gaps, N <= max_hops; each
 * record names this bundle; each `previous` matches (the bundle id for
 * record 1, else SHA-256 of the previous record's bytes); each is signed by
 * a custody-role certificate whose CN equals `from`; record k's `from`
 * equals record k-1's `to`; times never decrease, the first is not before
 * the manifest's created, the last not after `at` + 5 minutes; the first
 * is within max_age of `at`; the last `to` is the technician (unless
 * rules->open_end).  Messages
 * name files under shown_dir (NULL: bundle_dir).  Fills *out (what was
 * read, for display) even on failure.  Errors: STN_E_CUSTODY naming the
 * record and the rule; STN_E_SYNTAX for a malformed record; signature
 * problems with their own codes (STN_E_ROLE, STN_E_CHAIN, ...).
 */
int cu_custody_verify(const char *bundle_dir, const char *shown_dir,
		      const struct cu_manifest *m, const struct cu_trust *trust,
		      const struct cu_custody_rules *rules, int64_t at,
		      struct cu_chain *out, struct stn_diag *d);

/*
 * cu_custody_verify without a trust store, for `custody add` run with no
 * anchors at hand: every rule except the records' signatures (indices,
 * this bundle, `previous`, from = the previous to, times, hops, age, and
 * the end as rules say).  Never a substitute for cu_custody_verify at a
 * station.  Errors: as cu_custody_verify's, less the signature ones.
 */
int cu_custody_check_links(const char *bundle_dir, const char *shown_dir,
			   const struct cu_manifest *m,
			   const struct cu_custody_rules *rules, int64_t at,
			   struct cu_chain *out, struct stn_diag *d);

/*
 * Append the next record to bundle_dir/custody/ (created if absent): from
 * = the key's certificate CN, which must be the current holder (the last
 * record's `to`; anyone may write record 1), to, time = now, place and
 * seal optional.  Writes NN.rec and signs it (NN.rec.sig, NN.rec.pem).
 * `written` receives the record's path.  Errors: STN_E_USAGE (not the
 * holder, bad value, chain full), STN_E_IO, and those of reading the
 * existing chain (STN_E_SYNTAX, STN_E_CUSTODY).
 */
int cu_custody_append(const char *bundle_dir, struct cu_key *key,
		      const char *to, const char *place, const char *seal,
		      int64_t now, char *written, size_t cap,
		      struct stn_diag *d);

#endif
