/* SPDX-License-Identifier: MIT */
/*
 * Frame rings on a private buffer (docs/protocol.md section 3.1): honest
 * round trips, wrap-around, the size limits, and a hostile peer writing the
 * control words and the data area directly.  The buffer is exactly
 * RING_SHM_SIZE bytes from malloc(), and the hostile cases use direction 1,
 * whose data area ends the allocation: a read past it is an ASan report.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "ring.h"

#define REC_SIZE(len) (RING_REC_HDR + (((uint32_t)(len) + 7u) & ~7u))

struct fixture {
	uint8_t *shm;
	struct ring prod;
	struct ring cons;
	uint8_t *in;
	uint8_t *out;
};

static uint8_t *shm_new(uint32_t start, unsigned dir)
{
	uint8_t *shm = malloc(RING_SHM_SIZE);
	assert_non_null(shm);
	memset(shm, 0, RING_SHM_SIZE);
	struct ring_ctl *ctl = (struct ring_ctl *)(shm + RING_CTL_OFF(dir));
	atomic_store(&ctl->head, start);
	atomic_store(&ctl->tail, start);
	return shm;
}

/* Both ends of direction dir, with the counters starting at start. */
static void fx_new(struct fixture *fx, uint32_t start, unsigned dir)
{
	fx->shm = shm_new(start, dir);
	ring_init(&fx->prod, fx->shm, dir);
	ring_init(&fx->cons, fx->shm, dir);
	fx->in = malloc(RING_REC_MAX + 1);
	fx->out = malloc(RING_REC_MAX + 1);
	assert_non_null(fx->in);
	assert_non_null(fx->out);
	for (size_t i = 0; i < RING_REC_MAX + 1; i++)
		fx->in[i] = (uint8_t)(i * 7 + 3);
}

static void fx_free(struct fixture *fx)
{
	free(fx->shm);
	free(fx->in);
	free(fx->out);
}

static struct ring_ctl *fx_ctl(struct fixture *fx, unsigned dir)
{
	return (struct ring_ctl *)(fx->shm + RING_CTL_OFF(dir));
}

/* Take the next record and check it is frame fx->in[0..len) with ctr. */
static void take_check(struct fixture *fx, uint64_t ctr, size_t len)
{
	uint64_t c = 0;
	size_t l = 0;
	assert_int_equal(ring_peek(&fx->cons, &c, &l), 1);
	assert_int_equal(c, ctr);
	assert_int_equal(l, len);
	memset(fx->out, 0xee, len);
	ring_take(&fx->cons, fx->out);
	assert_memory_equal(fx->out, fx->in, len);
}

static void test_roundtrip(void **state)
{
	(void)state;
	struct fixture fx;
	uint64_t c = 99;
	size_t l = 99;

	for (unsigned dir = 0; dir < 2; dir++) {
		fx_new(&fx, 0, dir);
		/* Empty: 0, the out-params untouched. */
		assert_int_equal(ring_peek(&fx.cons, &c, &l), 0);
		assert_int_equal(c, 99);
		assert_int_equal(l, 99);
		const size_t lens[] = {1, 7, 8, 9, 100, FRAME_OVERHEAD, 4096};
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
			assert_int_equal(ring_put(&fx.prod, 1000 + i, fx.in, lens[i]), 0);
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
			take_check(&fx, 1000 + i, lens[i]);
		assert_int_equal(ring_peek(&fx.cons, &c, &l), 0);
		/* Both control words end where the producer left them. */
		assert_int_equal(atomic_load(&fx_ctl(&fx, dir)->head),
				 atomic_load(&fx_ctl(&fx, dir)->tail));
		/* The other direction was not written. */
		assert_int_equal(atomic_load(&fx_ctl(&fx, 1 - dir)->head), 0);
		fx_free(&fx);
	}
}

static void test_counter_carried(void **state)
{
	(void)state;
	struct fixture fx;
	const uint64_t ctrs[] = {0, 1, 0xfffffffful, 0x100000000ull, UINT64_MAX - 1, UINT64_MAX};

	fx_new(&fx, 0, 1);
	for (size_t i = 0; i < sizeof(ctrs) / sizeof(ctrs[0]); i++) {
		assert_int_equal(ring_put(&fx.prod, ctrs[i], fx.in, 24), 0);
		take_check(&fx, ctrs[i], 24);
	}
	fx_free(&fx);
}

/* The record header split across the end of the data area, then the body;
 * the free-running counters also cross 2^32 on the way. */
static void test_wrap(void **state)
{
	(void)state;
	struct fixture fx;
	const uint32_t starts[] = {
		RING_DATA_SIZE - 8,	       /* header split 8 | 8 */
		RING_DATA_SIZE - 4 * 8,	       /* header whole, body split */
		RING_DATA_SIZE - RING_REC_HDR, /* header at the end, body from 0 */
		UINT32_MAX - 7,		       /* header split, counters wrap */
		UINT32_MAX - 23,	       /* body split, counters wrap */
	};

	for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
		fx_new(&fx, starts[s], 1);
		assert_int_equal(ring_put(&fx.prod, 7, fx.in, 100), 0);
		assert_int_equal(ring_put(&fx.prod, 8, fx.in, RING_REC_MAX), 0);
		take_check(&fx, 7, 100);
		take_check(&fx, 8, RING_REC_MAX);
		assert_int_equal(atomic_load(&fx_ctl(&fx, 1)->tail),
				 (uint32_t)(starts[s] + REC_SIZE(100) + REC_SIZE(RING_REC_MAX)));
		fx_free(&fx);
	}
}

static void test_rec_max(void **state)
{
	(void)state;
	struct fixture fx;
	uint64_t c;
	size_t l;

	fx_new(&fx, 0, 1);
	assert_int_equal(ring_put(&fx.prod, 1, fx.in, RING_REC_MAX + 1), -EMSGSIZE);
	assert_int_equal(ring_put(&fx.prod, 1, fx.in, SIZE_MAX), -EMSGSIZE);
	/* Empty: a record the consumer would refuse. */
	assert_int_equal(ring_put(&fx.prod, 1, fx.in, 0), -EINVAL);
	/* Refused without a trace. */
	assert_int_equal(ring_peek(&fx.cons, &c, &l), 0);
	assert_int_equal(ring_put(&fx.prod, 1, fx.in, RING_REC_MAX), 0);
	take_check(&fx, 1, RING_REC_MAX);
	fx_free(&fx);
}

static void test_full(void **state)
{
	(void)state;
	struct fixture fx;

	/* Two largest records fill the ring exactly. */
	_Static_assert(2 * REC_SIZE(RING_REC_MAX) == RING_DATA_SIZE, "two records fill a ring");
	fx_new(&fx, 0, 1);
	assert_int_equal(ring_put(&fx.prod, 1, fx.in, RING_REC_MAX), 0);
	assert_int_equal(ring_put(&fx.prod, 2, fx.in, RING_REC_MAX), 0);
	assert_int_equal(ring_put(&fx.prod, 3, fx.in, 1), -EAGAIN);
	take_check(&fx, 1, RING_REC_MAX);
	assert_int_equal(ring_put(&fx.prod, 3, fx.in, RING_REC_MAX), 0);
	assert_int_equal(ring_put(&fx.prod, 4, fx.in, 1), -EAGAIN);
	take_check(&fx, 2, RING_REC_MAX);
	take_check(&fx, 3, RING_REC_MAX);
	fx_free(&fx);

	/* Small records: exactly the capacity, then one byte too many. */
	fx_new(&fx, 0, 1);
	size_t n = RING_DATA_SIZE / REC_SIZE(16);
	_Static_assert(RING_DATA_SIZE % REC_SIZE(16) == 0, "32-byte records fill a ring");
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ring_put(&fx.prod, i, fx.in, 16), 0);
	assert_int_equal(ring_put(&fx.prod, n, fx.in, 1), -EAGAIN);
	take_check(&fx, 0, 16);
	/* One record's room: a larger one still does not fit. */
	assert_int_equal(ring_put(&fx.prod, n, fx.in, 17), -EAGAIN);
	assert_int_equal(ring_put(&fx.prod, n, fx.in, 16), 0);
	assert_int_equal(ring_put(&fx.prod, n + 1, fx.in, 1), -EAGAIN);
	for (size_t i = 1; i <= n; i++)
		take_check(&fx, i, 16);
	fx_free(&fx);
}

/* ---- Hostile producer: head and records written directly ---- */

static void rec_write(struct fixture *fx, uint32_t pos, uint32_t len, uint32_t rsvd, uint64_t ctr)
{
	uint8_t hdr[RING_REC_HDR];
	le32_put(hdr, len);
	le32_put(hdr + 4, rsvd);
	le64_put(hdr + 8, ctr);
	for (size_t i = 0; i < sizeof(hdr); i++)
		fx->cons.data[(pos + i) & (RING_DATA_SIZE - 1)] = hdr[i];
}

static void head_set(struct fixture *fx, uint32_t head)
{
	atomic_store(&fx_ctl(fx, 1)->head, head);
}

static void peek_proto(struct fixture *fx)
{
	uint64_t c = 5;
	size_t l = 5;
	assert_int_equal(ring_peek(&fx->cons, &c, &l), -CDT_E_PROTO);
	assert_int_equal(c, 5);
	assert_int_equal(l, 5);
}

static void test_hostile_head(void **state)
{
	(void)state;
	struct fixture fx;
	const uint32_t starts[] = {0, RING_DATA_SIZE - 8, UINT32_MAX - 7};

	for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
		uint32_t t = starts[s];
		uint64_t c;
		size_t l;

		/* Exactly a ring ahead, two valid records: accepted. */
		fx_new(&fx, t, 1);
		rec_write(&fx, t, RING_REC_MAX, 0, 1);
		rec_write(&fx, t + REC_SIZE(RING_REC_MAX), RING_REC_MAX, 0, 2);
		head_set(&fx, t + RING_DATA_SIZE);
		assert_int_equal(ring_peek(&fx.cons, &c, &l), 1);
		assert_int_equal(l, RING_REC_MAX);
		ring_take(&fx.cons, fx.out);
		fx_free(&fx);

		/* One byte more than a ring, and far more: refused. */
		const uint32_t ahead[] = {RING_DATA_SIZE + 1, RING_DATA_SIZE + 8, 0x80000000u,
					  UINT32_MAX};
		for (size_t a = 0; a < sizeof(ahead) / sizeof(ahead[0]); a++) {
			fx_new(&fx, t, 1);
			rec_write(&fx, t, 8, 0, 1);
			head_set(&fx, t + ahead[a]);
			peek_proto(&fx);
			fx_free(&fx);
		}

		/* Head moved backwards, still ahead of tail. */
		fx_new(&fx, t, 1);
		rec_write(&fx, t, 8, 0, 1);
		rec_write(&fx, t + REC_SIZE(8), 8, 0, 2);
		rec_write(&fx, t + 2 * REC_SIZE(8), 8, 0, 3);
		head_set(&fx, t + 3 * REC_SIZE(8));
		assert_int_equal(ring_peek(&fx.cons, &c, &l), 1);
		ring_take(&fx.cons, fx.out);
		head_set(&fx, t + 2 * REC_SIZE(8));
		peek_proto(&fx);
		/* Behind tail. */
		head_set(&fx, t);
		peek_proto(&fx);
		fx_free(&fx);
	}
}

static void test_hostile_record(void **state)
{
	(void)state;
	struct fixture fx;
	uint64_t c;
	size_t l;
	const uint32_t t = RING_DATA_SIZE - 8; /* the header straddles the end */

	/* Fewer than a header published: 1, 8 and 15 bytes. */
	const uint32_t short_pub[] = {1, 8, RING_REC_HDR - 1};
	for (size_t i = 0; i < sizeof(short_pub) / sizeof(short_pub[0]); i++) {
		fx_new(&fx, t, 1);
		rec_write(&fx, t, 8, 0, 1);
		head_set(&fx, t + short_pub[i]);
		peek_proto(&fx);
		fx_free(&fx);
	}

	/* A header and nothing else: a record has at least one byte. */
	fx_new(&fx, t, 1);
	rec_write(&fx, t, 8, 0, 1);
	head_set(&fx, t + RING_REC_HDR);
	peek_proto(&fx);
	fx_free(&fx);

	/* Reserved word not zero (each byte of it). */
	for (unsigned b = 0; b < 4; b++) {
		fx_new(&fx, t, 1);
		rec_write(&fx, t, 8, 1u << (8 * b), 1);
		head_set(&fx, t + REC_SIZE(8));
		peek_proto(&fx);
		fx_free(&fx);
	}

	/* len 0, len RING_REC_MAX + 1, len with the top bit, with a full
	 * ring published so that only the length is wrong. */
	const uint32_t bad_len[] = {0, RING_REC_MAX + 1, RING_DATA_SIZE, 0x80000000u, UINT32_MAX};
	for (size_t i = 0; i < sizeof(bad_len) / sizeof(bad_len[0]); i++) {
		fx_new(&fx, t, 1);
		rec_write(&fx, t, bad_len[i], 0, 1);
		head_set(&fx, t + RING_DATA_SIZE);
		peek_proto(&fx);
		fx_free(&fx);
	}

	/* Record longer than what is published: the padded size is what
	 * must be there, so 100 needs 120 bytes, not 116. */
	const uint32_t lens[] = {1, 100, RING_REC_MAX};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		fx_new(&fx, t, 1);
		rec_write(&fx, t, lens[i], 0, 1);
		head_set(&fx, t + REC_SIZE(lens[i]) - 1);
		peek_proto(&fx);
		head_set(&fx, t + RING_REC_HDR + lens[i]);
		if (REC_SIZE(lens[i]) != RING_REC_HDR + lens[i])
			peek_proto(&fx);
		fx_free(&fx);
		/* Exactly published: accepted and copied in full. */
		fx_new(&fx, t, 1);
		rec_write(&fx, t, lens[i], 0, 1);
		head_set(&fx, t + REC_SIZE(lens[i]));
		assert_int_equal(ring_peek(&fx.cons, &c, &l), 1);
		assert_int_equal(l, lens[i]);
		ring_take(&fx.cons, fx.out);
		assert_int_equal(atomic_load(&fx_ctl(&fx, 1)->tail), t + REC_SIZE(lens[i]));
		fx_free(&fx);
	}
}

/* The producer rewrites a record between peek and take: the take copies
 * the length peek checked, never one read again from shared memory. */
static void test_hostile_rewrite(void **state)
{
	(void)state;
	struct fixture fx;
	uint64_t c;
	size_t l;
	uint32_t t = RING_DATA_SIZE - RING_REC_HDR - 8;

	fx_new(&fx, t, 1);
	rec_write(&fx, t, 8, 0, 1);
	head_set(&fx, t + REC_SIZE(8));
	assert_int_equal(ring_peek(&fx.cons, &c, &l), 1);
	assert_int_equal(l, 8);
	rec_write(&fx, t, UINT32_MAX, 0, 1);
	memset(fx.out, 0, RING_REC_MAX + 1);
	ring_take(&fx.cons, fx.out);
	/* Nothing beyond the 8 bytes was written. */
	for (size_t i = 8; i < RING_REC_MAX + 1; i++)
		assert_int_equal(fx.out[i], 0);
	assert_int_equal(atomic_load(&fx_ctl(&fx, 1)->tail), t + REC_SIZE(8));
	fx_free(&fx);
}

/* ---- Hostile consumer: tail written directly ---- */

static void tail_set(struct fixture *fx, uint32_t tail)
{
	atomic_store(&fx_ctl(fx, 1)->tail, tail);
}

static void test_hostile_tail(void **state)
{
	(void)state;
	struct fixture fx;
	const uint32_t starts[] = {0, RING_DATA_SIZE - 8, UINT32_MAX - 7};

	for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
		uint32_t t = starts[s];
		uint32_t head = t + 2 * REC_SIZE(8);

		/* Tail at head exactly: everything released, fine. */
		fx_new(&fx, t, 1);
		assert_int_equal(ring_put(&fx.prod, 1, fx.in, 8), 0);
		assert_int_equal(ring_put(&fx.prod, 2, fx.in, 8), 0);
		tail_set(&fx, head);
		assert_int_equal(ring_put(&fx.prod, 3, fx.in, 8), 0);
		fx_free(&fx);

		/* Tail ahead of head: by one byte, by a record, by a ring. */
		const uint32_t ahead[] = {1, 8, REC_SIZE(8), RING_DATA_SIZE, 0x80000000u};
		for (size_t a = 0; a < sizeof(ahead) / sizeof(ahead[0]); a++) {
			fx_new(&fx, t, 1);
			assert_int_equal(ring_put(&fx.prod, 1, fx.in, 8), 0);
			assert_int_equal(ring_put(&fx.prod, 2, fx.in, 8), 0);
			tail_set(&fx, head + ahead[a]);
			assert_int_equal(ring_put(&fx.prod, 3, fx.in, 8), -CDT_E_PROTO);
			/* Nothing was published. */
			assert_int_equal(atomic_load(&fx_ctl(&fx, 1)->head), head);
			fx_free(&fx);
		}

		/* Tail moved backwards after the producer saw it move on. */
		fx_new(&fx, t, 1);
		assert_int_equal(ring_put(&fx.prod, 1, fx.in, 8), 0);
		assert_int_equal(ring_put(&fx.prod, 2, fx.in, 8), 0);
		take_check(&fx, 1, 8);
		assert_int_equal(ring_put(&fx.prod, 3, fx.in, 8), 0);
		tail_set(&fx, t);
		assert_int_equal(ring_put(&fx.prod, 4, fx.in, 8), -CDT_E_PROTO);
		tail_set(&fx, t + REC_SIZE(8) - 8);
		assert_int_equal(ring_put(&fx.prod, 4, fx.in, 8), -CDT_E_PROTO);
		fx_free(&fx);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),      cmocka_unit_test(test_counter_carried),
		cmocka_unit_test(test_wrap),	       cmocka_unit_test(test_rec_max),
		cmocka_unit_test(test_full),	       cmocka_unit_test(test_hostile_head),
		cmocka_unit_test(test_hostile_record), cmocka_unit_test(test_hostile_rewrite),
		cmocka_unit_test(test_hostile_tail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
