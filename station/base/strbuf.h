/* station/base/strbuf.h: a growable byte buffer with a sticky out-of-memory
 * flag, so that code building a long text (journal bodies, reports) checks
 * for failure once, at the end.  The contents stay NUL-terminated. */
#ifndef STN_STRBUF_H
#define STN_STRBUF_H

#include <stddef.h>

struct stn_buf {
	char *p;    /* owned; free() it */
	size_t len, cap;
	int oom;    /* set once an append failed; later appends do nothing */
};

void stn_buf_add(struct stn_buf *b, const void *s, size_t n);
void stn_buf_str(struct stn_buf *b, const char *s);
/* printf-style; never truncates (long output is formatted twice). */
void stn_buf_fmt(struct stn_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
