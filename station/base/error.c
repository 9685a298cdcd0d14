/* station/base/error.c: messages for the error list and the diagnostic
 * carrier. */
#include "station/base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct err_entry {
	int code;
	int exit;
	const char *rule;
	const char *msg;
};

static const struct err_entry err_table[] = {
#define STN_X_ROW(name, value, exit, rule, msg) {value, exit, rule, msg},
	STN_ERROR_LIST(STN_X_ROW)
#undef STN_X_ROW
};

static const struct err_entry *err_find(int code)
{
	for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++)
		if (err_table[i].code == code)
			return &err_table[i];
	return NULL;
}

const char *stn_strerror(int code)
{
	const struct err_entry *e = err_find(code);
	return e ? e->msg : "unknown error";
}

const char *stn_err_rule(int code)
{
	const struct err_entry *e = err_find(code);
	return e ? e->rule : "internal";
}

int stn_err_exit(int code)
{
	const struct err_entry *e = err_find(code);
	return e ? e->exit : STN_EXIT_IO;
}

void stn_diag_init(struct stn_diag *d)
{
	if (d)
		memset(d, 0, sizeof(*d));
}

static int diag_vset(struct stn_diag *d, int code, const char *where,
		     const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

static int diag_vset(struct stn_diag *d, int code, const char *where,
		     const char *fmt, va_list ap)
{
	/* Format into locals first: callers may pass d->where or d->text
	 * as arguments (wrapping a cause), and snprintf into its own source
	 * is undefined. */
	char w[sizeof(d->where)], t[sizeof(d->text)];

	size_t wl = where ? strlen(where) : 0;

	if (wl < sizeof(w))
		snprintf(w, sizeof(w), "%s", where ? where : "");
	else /* keep the end: it names the file */
		snprintf(w, sizeof(w), "...%s", where + wl - (sizeof(w) - 4));
	if (fmt)
		vsnprintf(t, sizeof(t), fmt, ap);
	else
		snprintf(t, sizeof(t), "%s", stn_strerror(code));
	d->code = code;
	memcpy(d->where, w, sizeof(w));
	memcpy(d->text, t, sizeof(t));
	return code;
}

int stn_fail(struct stn_diag *d, int code, const char *where, const char *fmt,
	     ...)
{
	va_list ap;

	if (!d || d->code != 0)
		return code;
	va_start(ap, fmt);
	diag_vset(d, code, where, fmt, ap);
	va_end(ap);
	return code;
}

int stn_refail(struct stn_diag *d, int code, const char *where,
	       const char *fmt, ...)
{
	va_list ap;

	if (!d)
		return code;
	va_start(ap, fmt);
	diag_vset(d, code, where, fmt, ap);
	va_end(ap);
	return code;
}

int stn_recode(struct stn_diag *d, int code)
{
	if (d)
		d->code = code;
	return code;
}

void stn_diag_format(const struct stn_diag *d, char *buf, size_t size)
{
	const char *text = d->text[0] ? d->text : stn_strerror(d->code);

	if (d->where[0])
		snprintf(buf, size, "rule %s: %s: %s", stn_err_rule(d->code),
			 d->where, text);
	else
		snprintf(buf, size, "rule %s: %s", stn_err_rule(d->code), text);
}
