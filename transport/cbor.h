/* transport/cbor.h: the subset of CBOR (RFC 8949) that SMP needs.  The
 * decoder turns a message into a flat, bounded array of items that can be
 * searched by map key; it accepts definite and indefinite-length maps and
 * arrays, and refuses what SMP never sends (chunked strings, tags other
 * than skipped ones, reserved encodings) rather than guess.  The encoder
 * writes definite-length maps into a caller's buffer. */
#ifndef TP_CBOR_H
#define TP_CBOR_H

#include <stddef.h>
#include <stdint.h>

#include "station/base/error.h"

enum tp_cbor_type {
	TP_CBOR_UINT,   /* u = the value */
	TP_CBOR_NINT,   /* the value is -1 - u */
	TP_CBOR_BYTES,  /* ptr, u = length */
	TP_CBOR_TEXT,   /* ptr, u = length (UTF-8 is not checked) */
	TP_CBOR_ARRAY,  /* u = number of elements */
	TP_CBOR_MAP,    /* u = number of pairs; keys and values alternate */
	TP_CBOR_FALSE,
	TP_CBOR_TRUE,
	TP_CBOR_NULL,
	TP_CBOR_UNDEF,
	TP_CBOR_FLOAT,  /* half, single or double: kept as a skipped value */
};

struct tp_cbor_item {
	uint8_t type;       /* enum tp_cbor_type */
	uint64_t u;
	const uint8_t *ptr; /* into the decoded buffer, which must outlive it */
	uint32_t end;       /* index of the first item after this one and all
			       it contains: children are [i + 1, end) */
};

/* Decode exactly one item (with everything nested in it) filling `buf`.
 * At most `cap` items and 16 levels of nesting; anything more, trailing
 * bytes, a truncated item, a chunked string, a break outside an
 * indefinite container, a map with an odd number of entries, or a length
 * past the buffer is STN_E_PROTOCOL with `where` and the byte offset in the
 * message.  Tags are skipped (their content kept).  *n items are filled. */
int tp_cbor_decode(const uint8_t *buf, size_t len, struct tp_cbor_item *items,
		   size_t cap, size_t *n, const char *where,
		   struct stn_diag *d);

/* The value that follows text key `key` in the map at items[map], or -1
 * when the map has no such key (or items[map] is no map).  A key given
 * twice is ambiguous: -2. */
long tp_cbor_map_get(const struct tp_cbor_item *items, size_t n, size_t map,
		     const char *key);

/* Element k of the array at items[arr] (or the k-th key of a map), or -1. */
long tp_cbor_child(const struct tp_cbor_item *items, size_t n, size_t arr,
		   uint64_t k);

/* A writer into a caller's buffer.  A write that does not fit sets
 * `overflow` and writes nothing more; check it once at the end. */
struct tp_cbor_writer {
	uint8_t *buf;
	size_t cap, len;
	int overflow;
};

void tp_cbor_writer_init(struct tp_cbor_writer *w, uint8_t *buf, size_t cap);
void tp_cbor_put_map(struct tp_cbor_writer *w, uint64_t pairs);
void tp_cbor_put_array(struct tp_cbor_writer *w, uint64_t count);
void tp_cbor_put_uint(struct tp_cbor_writer *w, uint64_t v);
void tp_cbor_put_int(struct tp_cbor_writer *w, int64_t v);
void tp_cbor_put_text(struct tp_cbor_writer *w, const char *s);
void tp_cbor_put_bytes(struct tp_cbor_writer *w, const void *p, size_t len);
void tp_cbor_put_bool(struct tp_cbor_writer *w, int v);
/* Indefinite-length map or array, closed by tp_cbor_put_break (zcbor, and
 * so many Zephyr devices, write image lists this way). */
void tp_cbor_put_map_indef(struct tp_cbor_writer *w);
void tp_cbor_put_array_indef(struct tp_cbor_writer *w);
void tp_cbor_put_break(struct tp_cbor_writer *w);
/* Encoded size of a byte string header for `len` bytes (1, 2, 3, 5 or 9). */
size_t tp_cbor_head_size(uint64_t len);

#endif
