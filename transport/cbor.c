/* transport/cbor.c: a bounded CBOR decoder into a flat item array and a
 * small encoder.  Every length read from the wire is checked against what
 * is left of the buffer before it is used; nesting and item counts are
 * capped, so a hostile device can make the decoder fail but not run long
 * or write out of bounds. */
#include "transport/cbor.h"

#include <string.h>

#define MAX_DEPTH 16
#define BREAK 0xff

struct dec {
	const uint8_t *b;
	size_t len, pos;
	struct tp_cbor_item *it;
	size_t cap, n;
	const char *where;
	struct stn_diag *d;
};

static int bad(struct dec *x, const char *what)
{
	return stn_fail(x->d, STN_E_PROTOCOL, x->where,
			"CBOR: %s at byte %zu", what, x->pos);
}

/* The initial byte and its argument; *indef for additional info 31. */
static int head(struct dec *x, uint8_t *major, uint8_t *ai, uint64_t *val,
		int *indef)
{
	uint8_t ib;

	if (x->pos >= x->len)
		return bad(x, "message ends inside an item");
	ib = x->b[x->pos++];
	*major = ib >> 5;
	*ai = ib & 31;
	*val = 0;
	*indef = 0;
	if (*ai < 24) {
		*val = *ai;
	} else if (*ai <= 27) {
		size_t nb = (size_t)1 << (*ai - 24);

		if (x->len - x->pos < nb)
			return bad(x, "message ends inside an item's length");
		for (size_t i = 0; i < nb; i++)
			*val = (*val << 8) | x->b[x->pos++];
	} else if (*ai <= 30) {
		return bad(x, "reserved additional information");
	} else {
		*indef = 1;
	}
	return 0;
}

static int item(struct dec *x, int depth);

/* Children of an array (per = 1) or map (per = 2). */
static int children(struct dec *x, int depth, uint64_t count, int indef,
		    int per, uint64_t *got)
{
	uint64_t k = 0;
	int rc;

	if (!indef) {
		for (k = 0; k < count; k++)
			for (int e = 0; e < per; e++)
				if ((rc = item(x, depth + 1)))
					return rc;
		*got = count;
		return 0;
	}
	for (;;) {
		if (x->pos >= x->len)
			return bad(x, "indefinite-length item has no break");
		if (x->b[x->pos] == BREAK) {
			x->pos++;
			break;
		}
		if ((rc = item(x, depth + 1)))
			return rc;
		k++;
	}
	if (per == 2 && k % 2)
		return bad(x, "map has a key without a value");
	*got = k / (uint64_t)per;
	return 0;
}

static int item(struct dec *x, int depth)
{
	struct tp_cbor_item *t;
	uint8_t major = 0, ai = 0;
	uint64_t val, got = 0;
	size_t me;
	int indef;
	int rc;

	if (depth > MAX_DEPTH)
		return bad(x, "nesting deeper than 16 levels");
	if (x->n >= x->cap)
		return bad(x, "more items than the decoder allows");
	me = x->n++;
	t = &x->it[me];
	memset(t, 0, sizeof(*t));
	if ((rc = head(x, &major, &ai, &val, &indef)))
		return rc;
	switch (major) {
	case 0:
	case 1:
		if (indef)
			return bad(x, "indefinite integer");
		t->type = major == 0 ? TP_CBOR_UINT : TP_CBOR_NINT;
		t->u = val;
		break;
	case 2:
	case 3:
		if (indef)
			return bad(x, "chunked (indefinite-length) string");
		if (val > x->len - x->pos)
			return bad(x, "string runs past the end of the message");
		t->type = major == 2 ? TP_CBOR_BYTES : TP_CBOR_TEXT;
		t->ptr = x->b + x->pos;
		t->u = val;
		x->pos += (size_t)val;
		break;
	case 4:
	case 5:
		t->type = major == 4 ? TP_CBOR_ARRAY : TP_CBOR_MAP;
		if ((rc = children(x, depth, val, indef, major == 4 ? 1 : 2,
				   &got)))
			return rc;
		x->it[me].u = got;
		break;
	case 6:
		if (indef)
			return bad(x, "indefinite tag");
		/* The tag says how to read its content; SMP uses none, so
		 * the content stands for itself. */
		x->n--;
		return item(x, depth + 1);
	default:
		if (indef)
			return bad(x, "break outside an indefinite-length item");
		if (ai == 20)
			t->type = TP_CBOR_FALSE;
		else if (ai == 21)
			t->type = TP_CBOR_TRUE;
		else if (ai == 22)
			t->type = TP_CBOR_NULL;
		else if (ai == 23)
			t->type = TP_CBOR_UNDEF;
		else if (ai >= 25 && ai <= 27)
			t->type = TP_CBOR_FLOAT;
		else
			return bad(x, "unassigned simple value");
		break;
	}
	x->it[me].end = (uint32_t)x->n;
	return 0;
}

int tp_cbor_decode(const uint8_t *buf, size_t len, struct tp_cbor_item *items,
		   size_t cap, size_t *n, const char *where,
		   struct stn_diag *d)
{
	struct dec x = {.b = buf, .len = len, .it = items, .cap = cap,
			.where = where, .d = d};
	int rc;

	if (cap > UINT32_MAX)
		x.cap = UINT32_MAX;
	if ((rc = item(&x, 0)))
		return rc;
	if (x.pos != len)
		return bad(&x, "bytes after the message's one item");
	*n = x.n;
	return 0;
}

long tp_cbor_child(const struct tp_cbor_item *items, size_t n, size_t arr,
		   uint64_t k)
{
	size_t i, stride;

	if (arr >= n || (items[arr].type != TP_CBOR_ARRAY &&
			 items[arr].type != TP_CBOR_MAP))
		return -1;
	stride = items[arr].type == TP_CBOR_MAP ? 2 : 1;
	i = arr + 1;
	for (uint64_t j = 0; i < items[arr].end; j++) {
		if (j == k * stride)
			return (long)i;
		i = items[i].end;
	}
	return -1;
}

long tp_cbor_map_get(const struct tp_cbor_item *items, size_t n, size_t map,
		     const char *key)
{
	size_t klen = strlen(key);
	long found = -1;
	size_t i;

	if (map >= n || items[map].type != TP_CBOR_MAP)
		return -1;
	i = map + 1;
	while (i < items[map].end) {
		size_t v = items[i].end;

		if (v >= items[map].end)
			break;
		if (items[i].type == TP_CBOR_TEXT && items[i].u == klen &&
		    memcmp(items[i].ptr, key, klen) == 0) {
			if (found >= 0)
				return -2;
			found = (long)v;
		}
		i = items[v].end;
	}
	return found;
}

void tp_cbor_writer_init(struct tp_cbor_writer *w, uint8_t *buf, size_t cap)
{
	w->buf = buf;
	w->cap = cap;
	w->len = 0;
	w->overflow = 0;
}

size_t tp_cbor_head_size(uint64_t v)
{
	if (v < 24)
		return 1;
	if (v <= 0xff)
		return 2;
	if (v <= 0xffff)
		return 3;
	if (v <= 0xffffffffu)
		return 5;
	return 9;
}

static void put_raw(struct tp_cbor_writer *w, const void *p, size_t n)
{
	if (w->overflow || n > w->cap - w->len) {
		w->overflow = 1;
		return;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void put_head(struct tp_cbor_writer *w, uint8_t major, uint64_t v)
{
	uint8_t h[9];
	size_t n = tp_cbor_head_size(v);

	if (n == 1) {
		h[0] = (uint8_t)(major << 5 | v);
	} else {
		static const uint8_t ai[] = {0, 24, 25, 0, 26, 0, 0, 0, 27};

		h[0] = (uint8_t)(major << 5 | ai[n - 1]);
		for (size_t i = 1; i < n; i++)
			h[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	}
	put_raw(w, h, n);
}

void tp_cbor_put_map(struct tp_cbor_writer *w, uint64_t pairs)
{
	put_head(w, 5, pairs);
}

void tp_cbor_put_array(struct tp_cbor_writer *w, uint64_t count)
{
	put_head(w, 4, count);
}

void tp_cbor_put_uint(struct tp_cbor_writer *w, uint64_t v)
{
	put_head(w, 0, v);
}

void tp_cbor_put_int(struct tp_cbor_writer *w, int64_t v)
{
	if (v >= 0)
		put_head(w, 0, (uint64_t)v);
	else
		put_head(w, 1, (uint64_t)(-(v + 1)));
}

void tp_cbor_put_text(struct tp_cbor_writer *w, const char *s)
{
	size_t n = strlen(s);

	put_head(w, 3, n);
	put_raw(w, s, n);
}

void tp_cbor_put_bytes(struct tp_cbor_writer *w, const void *p, size_t len)
{
	put_head(w, 2, len);
	put_raw(w, p, len);
}

void tp_cbor_put_bool(struct tp_cbor_writer *w, int v)
{
	uint8_t b = v ? 0xf5 : 0xf4;

	put_raw(w, &b, 1);
}

void tp_cbor_put_map_indef(struct tp_cbor_writer *w)
{
	uint8_t b = 0xbf;

	put_raw(w, &b, 1);
}

void tp_cbor_put_array_indef(struct tp_cbor_writer *w)
{
	uint8_t b = 0x9f;

	put_raw(w, &b, 1);
}

void tp_cbor_put_break(struct tp_cbor_writer *w)
{
	uint8_t b = BREAK;

	put_raw(w, &b, 1);
}
