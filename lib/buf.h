/* SPDX-License-Identifier: MIT */
/*
 * Bounded buffers shared by the codec and the channel.
 *
 *  - struct buf: a growable byte buffer with a hard maximum fixed at init.
 *    Growth never passes the maximum (-E2BIG) and every size computation is
 *    checked, so a peer-supplied length can never wrap or exhaust memory.
 *  - struct reader: a cursor over borrowed bytes.  Every get_* either
 *    consumes exactly what it returns or fails with -CDT_E_TRUNCATED and
 *    leaves the cursor where it was, so parsers can check the result and
 *    stop without tracking partial reads.
 *  - le*_put / le*_get: little-endian helpers for fixed storage.
 *
 * All integers on Conduit's wire are little-endian.
 */
#ifndef CONDUIT_BUF_H
#define CONDUIT_BUF_H

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "conduit/conduit.h"

struct buf {
	uint8_t *data; /* malloc'd, NULL while empty-and-unallocated */
	size_t len;    /* bytes in use */
	size_t cap;    /* bytes allocated */
	size_t max;    /* hard limit on len, fixed at init */
};

/* Empty buffer that will never hold more than max bytes.  Allocates nothing. */
void buf_init(struct buf *b, size_t max);
/* Releases the storage and leaves an empty buffer with the same maximum.
 * Accepts NULL. */
void buf_free(struct buf *b);
/* Same as buf_free but wipes the bytes first (for plaintext). Accepts NULL. */
void buf_free_wipe(struct buf *b);
/* Forget the contents, keep the storage. */
void buf_clear(struct buf *b);
/* Make room for n more bytes.  -E2BIG when len + n would pass the maximum
 * (or overflow), -ENOMEM; the buffer is unchanged on failure. */
int buf_reserve(struct buf *b, size_t n);
/* Append n bytes (copies).  Same errors as buf_reserve; nothing is appended
 * on failure.  p may be NULL when n is 0. */
int buf_append(struct buf *b, const void *p, size_t n);
/* Append n bytes and hand back a pointer to them for the caller to fill
 * (valid until the buffer next grows). */
int buf_append_space(struct buf *b, size_t n, uint8_t **ret_ptr);
int buf_put_u8(struct buf *b, uint8_t v);
int buf_put_u16(struct buf *b, uint16_t v);
int buf_put_u32(struct buf *b, uint32_t v);
int buf_put_u64(struct buf *b, uint64_t v);
/* Drop the first n bytes (n <= len), e.g. after a partial send. */
void buf_consume(struct buf *b, size_t n);

struct reader {
	const uint8_t *p; /* borrowed */
	size_t len;
	size_t pos; /* always <= len */
};

/* Through memcpy and the byte order conversions, each of these is one
 * load or store on the machines Conduit runs on, and still correct on a
 * big-endian one. */
static inline void le16_put(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static inline void le32_put(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static inline void le64_put(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static inline uint16_t le16_get(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static inline uint32_t le32_get(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static inline uint64_t le64_get(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

/* The reader is inline: a decode calls it a few times per argument, and
 * each call is a bounds check and a load. */
static inline void reader_init(struct reader *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->pos = 0;
}

/* Bytes not yet consumed. */
static inline size_t reader_left(const struct reader *r)
{
	return r->len - r->pos;
}

/* Consume n bytes and point *ret at them inside the reader's input (no
 * copy).  -CDT_E_TRUNCATED when fewer than n remain. */
static inline int reader_get_bytes(struct reader *r, size_t n, const uint8_t **ret)
{
	/* Compare on the trusted side: left is computed from our own cursor. */
	if (n > reader_left(r))
		return -CDT_E_TRUNCATED;
	*ret = r->p + r->pos;
	r->pos += n;
	return 0;
}

static inline int reader_skip(struct reader *r, size_t n)
{
	const uint8_t *p;
	return reader_get_bytes(r, n, &p);
}

/* 0, or -CDT_E_TRUNCATED with the cursor unchanged. */
static inline int reader_get_u8(struct reader *r, uint8_t *ret)
{
	const uint8_t *p;
	int e = reader_get_bytes(r, 1, &p);
	if (e == 0)
		*ret = p[0];
	return e;
}

static inline int reader_get_u16(struct reader *r, uint16_t *ret)
{
	const uint8_t *p;
	int e = reader_get_bytes(r, 2, &p);
	if (e == 0)
		*ret = le16_get(p);
	return e;
}

static inline int reader_get_u32(struct reader *r, uint32_t *ret)
{
	const uint8_t *p;
	int e = reader_get_bytes(r, 4, &p);
	if (e == 0)
		*ret = le32_get(p);
	return e;
}

static inline int reader_get_u64(struct reader *r, uint64_t *ret)
{
	const uint8_t *p;
	int e = reader_get_bytes(r, 8, &p);
	if (e == 0)
		*ret = le64_get(p);
	return e;
}

#endif
