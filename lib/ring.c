/* SPDX-License-Identifier: MIT */
/* Frame rings in shared memory (docs/protocol.md section 3.1). */
#include <errno.h>
#include <string.h>

#include "buf.h"
#include "ring.h"

#define RING_MASK (RING_DATA_SIZE - 1)

static uint32_t ring_rec_size(size_t len)
{
	/* len <= RING_REC_MAX: no overflow. */
	return RING_REC_HDR + (((uint32_t)len + 7u) & ~7u);
}

/* Copy n bytes into the ring at position pos, wrapping at the end. */
static void ring_copy_in(uint8_t *data, uint32_t pos, const uint8_t *src, size_t n)
{
	size_t off = pos & RING_MASK;
	size_t first = RING_DATA_SIZE - off < n ? RING_DATA_SIZE - off : n;
	memcpy(data + off, src, first);
	memcpy(data, src + first, n - first);
}

static void ring_copy_out(const uint8_t *data, uint32_t pos, uint8_t *dst, size_t n)
{
	size_t off = pos & RING_MASK;
	size_t first = RING_DATA_SIZE - off < n ? RING_DATA_SIZE - off : n;
	memcpy(dst, data + off, first);
	memcpy(dst + first, data, n - first);
}

void ring_init(struct ring *r, uint8_t *shm, unsigned dir)
{
	r->ctl = (struct ring_ctl *)(shm + RING_CTL_OFF(dir));
	r->data = shm + RING_DATA_OFF(dir);
	r->head = atomic_load_explicit(&r->ctl->head, memory_order_acquire);
	r->tail = atomic_load_explicit(&r->ctl->tail, memory_order_acquire);
	r->len = 0;
}

int ring_put(struct ring *r, uint64_t counter, const uint8_t *frame, size_t len)
{
	uint8_t hdr[RING_REC_HDR];
	uint32_t tail, used, need;

	if (len > RING_REC_MAX)
		return -EMSGSIZE;
	/* The consumer refuses an empty record: never write one. */
	if (len == 0)
		return -EINVAL;
	need = ring_rec_size(len);
	tail = atomic_load_explicit(&r->ctl->tail, memory_order_acquire);
	/* The consumer may only release what was published. */
	used = r->head - tail;
	if (used > RING_DATA_SIZE || used > r->head - r->tail)
		return -CDT_E_PROTO;
	r->tail = tail;
	if (need > RING_DATA_SIZE - used)
		return -EAGAIN;
	le32_put(hdr, (uint32_t)len);
	le32_put(hdr + 4, 0);
	le64_put(hdr + 8, counter);
	ring_copy_in(r->data, r->head, hdr, sizeof(hdr));
	ring_copy_in(r->data, r->head + RING_REC_HDR, frame, len);
	r->head += need;
	atomic_store_explicit(&r->ctl->head, r->head, memory_order_release);
	return 0;
}

int ring_peek(struct ring *r, uint64_t *ret_counter, size_t *ret_len)
{
	uint8_t hdr[RING_REC_HDR];
	uint32_t head, used, len;

	head = atomic_load_explicit(&r->ctl->head, memory_order_acquire);
	used = head - r->tail;
	/* The producer may only add, and at most a ring's worth. */
	if (used > RING_DATA_SIZE || head - r->head > RING_DATA_SIZE)
		return -CDT_E_PROTO;
	r->head = head;
	if (used == 0)
		return 0;
	if (used < RING_REC_HDR)
		return -CDT_E_PROTO;
	ring_copy_out(r->data, r->tail, hdr, sizeof(hdr));
	len = le32_get(hdr);
	if (le32_get(hdr + 4) != 0 || len == 0 || len > RING_REC_MAX || ring_rec_size(len) > used)
		return -CDT_E_PROTO;
	r->len = len;
	*ret_counter = le64_get(hdr + 8);
	*ret_len = len;
	return 1;
}

void ring_take(struct ring *r, uint8_t *out)
{
	ring_copy_out(r->data, r->tail + RING_REC_HDR, out, r->len);
	r->tail += ring_rec_size(r->len);
	r->len = 0;
	atomic_store_explicit(&r->ctl->tail, r->tail, memory_order_release);
}
