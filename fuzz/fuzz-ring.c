/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the frame rings (docs/protocol.md section 3.1) with the shared
 * memory in the hands of the input.
 *
 * Input: u32 LE head, u32 LE tail (the control words of the ring before
 * either side attaches), then a script of operations, one byte each plus
 * its operands; bit 3 of the byte is a per-operation option:
 *   0 peek, and take when a record is there
 *   1 put u16 LE len bytes (pattern seed u8) as the producer
 *   2 the peer writes head: u32 LE, added to head with the option
 *   3 the peer writes tail: the same
 *   4 the peer writes data: u16 LE offset (from the consumer's tail with
 *     the option), u8 n, n bytes, wrapping at the end of the data area
 *   5 peek twice, the two answers must agree
 *   6 both sides attach again (ring_init)
 *   7 put RING_REC_MAX bytes (RING_REC_MAX + 1 with the option)
 * The ring is direction 1, whose data area ends the allocation, so a read
 * past it is a sanitizer report; a record is copied to the very end of a
 * buffer, so a byte more is one too.  Every record ring_peek() accepts must have
 * 0 < len <= RING_REC_MAX and fit in what is published.  As long as the
 * peer has written nothing, the rings must behave as a FIFO: what the
 * producer put comes out in order, byte for byte, -EAGAIN only when the
 * record does not fit, and never -CDT_E_PROTO.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DIR	   1
#define FIFO_MAX   (RING_DATA_SIZE / RING_REC_HDR)
#define PATTERN_SZ (RING_REC_MAX + 1 + 256)

struct rec {
	uint64_t ctr;
	uint32_t len;
	uint8_t seed;
};

struct fuzz_state {
	uint8_t *shm;
	struct ring prod;
	struct ring cons;
	struct ring_ctl *ctl;
	bool tampered; /* the peer wrote something: no FIFO oracle any more */
	struct rec fifo[FIFO_MAX];
	size_t fifo_head;
	size_t fifo_len;
	uint32_t used; /* bytes the FIFO's records take in the ring */
	uint64_t next_ctr;
};

static uint8_t pattern[PATTERN_SZ];
/* Static, not malloc'ed per input: the sanitizer puts a redzone after a
 * global too, and the quarantine does not fill with 136 KiB blocks. */
static uint8_t shm[RING_SHM_SIZE];
static struct fuzz_state state;
static uint8_t outbuf[RING_REC_MAX];

static void check(bool ok)
{
	if (!ok)
		abort();
}

static uint32_t rec_size(uint32_t len)
{
	return RING_REC_HDR + ((len + 7u) & ~7u);
}

static void do_put(struct fuzz_state *s, size_t len, uint8_t seed)
{
	uint64_t ctr = s->next_ctr++;
	int r = ring_put(&s->prod, ctr, pattern + seed, len);

	check(r == 0 || r == -EAGAIN || r == -EMSGSIZE || r == -EINVAL || r == -CDT_E_PROTO);
	check((r == -EMSGSIZE) == (len > RING_REC_MAX));
	check((r == -EINVAL) == (len == 0));
	if (s->tampered)
		return;
	check(r != -CDT_E_PROTO);
	if (r == -EMSGSIZE || r == -EINVAL)
		return;
	uint32_t need = rec_size((uint32_t)len);
	check((r == -EAGAIN) == (need > RING_DATA_SIZE - s->used));
	if (r < 0)
		return;
	check(s->fifo_len < FIFO_MAX);
	s->fifo[(s->fifo_head + s->fifo_len++) % FIFO_MAX] =
		(struct rec){.ctr = ctr, .len = (uint32_t)len, .seed = seed};
	s->used += need;
}

/* Peek: the answer, checked against the limits and the FIFO. */
static int do_peek(struct fuzz_state *s, uint64_t *ctr, size_t *len)
{
	uint32_t head = atomic_load_explicit(&s->ctl->head, memory_order_relaxed);
	int r = ring_peek(&s->cons, ctr, len);

	check(r == 0 || r == 1 || r == -CDT_E_PROTO);
	if (r == 1) {
		check(*len > 0 && *len <= RING_REC_MAX);
		check(rec_size((uint32_t)*len) <= (uint32_t)(head - s->cons.tail));
	}
	if (!s->tampered) {
		check(r != -CDT_E_PROTO);
		check((r == 1) == (s->fifo_len > 0));
		if (r == 1) {
			const struct rec *f = &s->fifo[s->fifo_head];
			check(*ctr == f->ctr && *len == f->len);
		}
	}
	return r;
}

static void do_take(struct fuzz_state *s, size_t len)
{
	/* The record's len bytes end where the buffer ends: one byte more
	 * is a global-buffer-overflow report, and nothing is allocated per
	 * record for the sanitizer's quarantine to hold. */
	uint8_t *out = outbuf + sizeof(outbuf) - len;
	ring_take(&s->cons, out);
	if (!s->tampered) {
		const struct rec *f = &s->fifo[s->fifo_head];
		check(memcmp(out, pattern + f->seed, len) == 0);
		s->used -= rec_size(f->len);
		s->fifo_head = (s->fifo_head + 1) % FIFO_MAX;
		s->fifo_len--;
	}
}

static void ctl_write(_Atomic uint32_t *w, uint32_t v, bool rel)
{
	atomic_store_explicit(w, rel ? atomic_load_explicit(w, memory_order_relaxed) + v : v,
			      memory_order_relaxed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_state *s;
	size_t p = 8;

	if (size < 8)
		return 0;
	if (pattern[1] == 0)
		for (size_t i = 0; i < PATTERN_SZ; i++)
			pattern[i] = (uint8_t)(i * 131 + 7);
	s = &state;
	memset(s, 0, sizeof(*s));
	memset(shm, 0, sizeof(shm));
	s->shm = shm;
	s->ctl = (struct ring_ctl *)(s->shm + RING_CTL_OFF(DIR));
	atomic_store(&s->ctl->head, le32_get(data));
	atomic_store(&s->ctl->tail, le32_get(data + 4));
	s->tampered = le32_get(data) != le32_get(data + 4);
	ring_init(&s->prod, s->shm, DIR);
	ring_init(&s->cons, s->shm, DIR);

	while (p < size) {
		uint8_t op = data[p++];
		bool opt = op & 8;
		uint64_t ctr, ctr2;
		size_t len, len2;

		switch (op & 7) {
		case 0:
			if (do_peek(s, &ctr, &len) == 1)
				do_take(s, len);
			break;
		case 1:
			if (size - p < 3)
				goto out;
			do_put(s, le16_get(data + p), data[p + 2]);
			p += 3;
			break;
		case 2:
		case 3:
			if (size - p < 4)
				goto out;
			ctl_write((op & 7) == 2 ? &s->ctl->head : &s->ctl->tail, le32_get(data + p),
				  opt);
			p += 4;
			s->tampered = true;
			break;
		case 4: {
			if (size - p < 3)
				goto out;
			uint32_t off = le16_get(data + p) + (opt ? s->cons.tail : 0);
			size_t n = data[p + 2];
			p += 3;
			if (n > size - p)
				n = size - p;
			for (size_t i = 0; i < n; i++)
				s->cons.data[(off + i) & (RING_DATA_SIZE - 1)] = data[p + i];
			p += n;
			s->tampered = true;
			break;
		}
		case 5: {
			int r1 = do_peek(s, &ctr, &len);
			int r2 = do_peek(s, &ctr2, &len2);
			/* Nothing changed in between: the same answer. */
			check(r1 == r2);
			if (r1 == 1 && r2 == 1)
				check(ctr == ctr2 && len == len2);
			break;
		}
		case 6:
			ring_init(&s->prod, s->shm, DIR);
			ring_init(&s->cons, s->shm, DIR);
			break;
		default:
			do_put(s, RING_REC_MAX + (opt ? 1 : 0), (uint8_t)p);
			break;
		}
	}
out:
	return 0;
}
