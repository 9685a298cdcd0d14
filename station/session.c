/* station/session.c: configuration, trust and journal for one run. */
#include "station/session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "custody/sha256.h"
#include "custody/sig.h"
#include "custody/trust.h"
#include "station/config.h"
#include "station/error.h"

struct stn_session {
	struct stn_config *cfg;
	struct cu_trust *trust;
	struct stn_journal *journal;
	int64_t start;
	char id[33];
	char *technician;
	char staging[4200];
	unsigned flags;
};

/* The data directory holds the journal and staging: it must be ours
 * alone, or another user could swap what we verified. */
static int make_private_dir(const char *path, struct stn_diag *d)
{
	struct stat st;

	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return stn_fail(d, STN_E_CONFIG, path,
				"cannot create data directory: %s",
				strerror(errno));
	if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return stn_fail(d, STN_E_CONFIG, path,
				"data path is not a directory (a symlink?)");
	if (st.st_uid != geteuid() || (st.st_mode & 022))
		return stn_fail(d, STN_E_CONFIG, path,
				"data directory must be owned by this user and "
				"not writable by others (it is %03o, uid %u)",
				(unsigned)(st.st_mode & 0777),
				(unsigned)st.st_uid);
	return 0;
}

int stn_session_open(const char *config_path, const char *technician,
		     const char *command, unsigned flags,
		     struct stn_session **out, struct stn_diag *d)
{
	struct stn_session *s;
	uint8_t rnd[16];
	char path[4200];
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return stn_fail(d, STN_E_NOMEM, config_path, "session");
	s->flags = flags;
	/* The session start is read once: every expiry check in this run
	 * uses it, not the time of the check (formats §6). */
	s->start = (int64_t)time(NULL);
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		rc = stn_fail(d, STN_E_IO, "getrandom", "%s", strerror(errno));
		goto fail;
	}
	cu_hex(rnd, sizeof(rnd), s->id);

	if ((rc = stn_config_load(config_path, &s->cfg, d)))
		goto fail;
	if (technician) {
		if (!stn_config_technician(s->cfg, technician)) {
			rc = stn_fail(d, STN_E_TECHNICIAN, config_path,
				      "technician '%s' has no [technician %s] "
				      "section", technician, technician);
			goto fail;
		}
		if (!(s->technician = strdup(technician))) {
			rc = stn_fail(d, STN_E_NOMEM, config_path, "session");
			goto fail;
		}
	}
	if ((rc = cu_trust_load(s->cfg->anchors, s->cfg->crl_dir, &s->trust,
				d))) {
		if (stn_err_exit(rc) != STN_EXIT_IO)
			rc = stn_recode(d, STN_E_CONFIG);
		goto fail;
	}
	cu_trust_set_stale_crl_refuse(s->trust, s->cfg->stale_crl_refuse);
	if (s->cfg->cert) {
		struct cu_signer me;
		struct stn_diag why;
		stn_diag_init(&why);
		if (cu_cert_check(s->trust, s->cfg->cert, CU_ROLE_STATION,
				  s->start, &me, &why)) {
			rc = stn_fail(d, STN_E_CONFIG, s->cfg->cert,
				      "station certificate unusable: %s",
				      why.text);
			goto fail;
		}
	}
	if ((rc = make_private_dir(s->cfg->data, d)))
		goto fail;
	snprintf(s->staging, sizeof(s->staging), "%s/staging", s->cfg->data);
	snprintf(path, sizeof(path), "%s/journal.db", s->cfg->data);
	if ((rc = stn_journal_open(path, &s->journal, d)))
		goto fail;
	if (!(flags & STN_SESSION_QUIET)) {
		const struct stn_field f[] = {
			{"station", s->cfg->id},
			{"site", s->cfg->site},
			{"command", command},
			{"technician", technician ? technician : "-"},
		};
		if ((rc = stn_session_log(s, "session-start", f, 4, d)))
			goto fail;
	}
	*out = s;
	return 0;
fail:
	s->flags |= STN_SESSION_QUIET; /* nothing started, nothing to end */
	stn_session_close(s, rc);
	return rc;
}

void stn_session_close(struct stn_session *s, int result)
{
	if (!s)
		return;
	if (s->journal && !(s->flags & STN_SESSION_QUIET)) {
		struct stn_diag d;
		char code[16];
		const struct stn_field f[] = {
			{"result", result ? stn_err_rule(result) : "ok"},
			{"code", code},
		};
		snprintf(code, sizeof(code), "%d", result);
		stn_diag_init(&d);
		/* Nothing to do if this fails: the journal reports the
		 * session as unterminated, which is the truth. */
		(void)stn_session_log(s, "session-end", f, 2, &d);
	}
	stn_journal_close(s->journal);
	cu_trust_free(s->trust);
	stn_config_free(s->cfg);
	free(s->technician);
	free(s);
}

const struct stn_config *stn_session_config(const struct stn_session *s)
{
	return s->cfg;
}

const struct cu_trust *stn_session_trust(const struct stn_session *s)
{
	return s->trust;
}

struct stn_journal *stn_session_journal(struct stn_session *s)
{
	return s->journal;
}

int64_t stn_session_start(const struct stn_session *s)
{
	return s->start;
}

const char *stn_session_id(const struct stn_session *s)
{
	return s->id;
}

const char *stn_session_technician(const struct stn_session *s)
{
	return s->technician;
}

const char *stn_session_staging(const struct stn_session *s)
{
	return s->staging;
}

int stn_session_log(struct stn_session *s, const char *type,
		    const struct stn_field *fields, size_t nfields,
		    struct stn_diag *d)
{
	struct stn_diag why;
	int rc;

	stn_diag_init(&why);
	rc = stn_journal_append(s->journal, (int64_t)time(NULL), type, s->id,
				fields, nfields, NULL, &why);
	if (rc)
		return stn_refail(d, STN_E_JOURNAL, why.where,
				  "cannot journal %s: %s", type, why.text);
	return 0;
}
