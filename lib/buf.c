/* SPDX-License-Identifier: MIT */
/* Bounded buffers and a truncation-checked reader; see buf.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "buf.h"
#include "conduit/conduit.h"

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void buf_free(struct buf *b)
{
	if (!b)
		return;
	free(b->data);
	buf_init(b, b->max);
}

void buf_free_wipe(struct buf *b)
{
	if (!b)
		return;
	if (b->data)
		sodium_memzero(b->data, b->cap);
	buf_free(b);
}

void buf_clear(struct buf *b)
{
	b->len = 0;
}

int buf_reserve(struct buf *b, size_t n)
{
	size_t need;
	if (__builtin_add_overflow(b->len, n, &need) || need > b->max)
		return -E2BIG;
	if (need <= b->cap)
		return 0;
	/* Grow geometrically so a run of small appends stays linear, but never
	 * allocate past the hard maximum. */
	size_t cap = b->cap < 64 ? 64 : b->cap;
	while (cap < need) {
		if (__builtin_mul_overflow(cap, 2, &cap)) {
			cap = need;
			break;
		}
	}
	if (cap > b->max)
		cap = b->max;
	uint8_t *p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int buf_append_space(struct buf *b, size_t n, uint8_t **ret_ptr)
{
	int r = buf_reserve(b, n);
	if (r < 0)
		return r;
	*ret_ptr = b->data + b->len;
	b->len += n;
	return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	uint8_t *dst;
	int r = buf_append_space(b, n, &dst);
	if (r < 0)
		return r;
	if (n)
		memcpy(dst, p, n);
	return 0;
}

int buf_put_u8(struct buf *b, uint8_t v)
{
	return buf_append(b, &v, 1);
}

int buf_put_u16(struct buf *b, uint16_t v)
{
	uint8_t *p;
	int r = buf_append_space(b, 2, &p);
	if (r == 0)
		le16_put(p, v);
	return r;
}

int buf_put_u32(struct buf *b, uint32_t v)
{
	uint8_t *p;
	int r = buf_append_space(b, 4, &p);
	if (r == 0)
		le32_put(p, v);
	return r;
}

int buf_put_u64(struct buf *b, uint64_t v)
{
	uint8_t *p;
	int r = buf_append_space(b, 8, &p);
	if (r == 0)
		le64_put(p, v);
	return r;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}
