/* SPDX-License-Identifier: MIT */
/*
 * BULK frames on the secure channel (docs/protocol.md section 4.2): values
 * of CDT_BULK_MIN .. MSG_BULKF_MAX bytes sealed end to end travel as BULK
 * frames right behind their message, through the ring, the socket and the
 * queue, in order with everything else; a receiver holds the message until
 * its last frame is in, and refuses every frame out of place or of the
 * wrong size, as it refuses any other malformed frame.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "chan-util.h"
#include "chan.h"
#include "keys.h"
#include "msg.h"
#include "ring.h"

#define WAIT_MS 10000

/* n pattern bytes, different for every seed. */
static uint8_t *pattern(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n ? n : 1);
	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + seed);
	return p;
}

/* EVENT "t.e" with bytes arguments "v0".. of lens[i] (and an fd argument
 * when fd >= 0), sealed as a layer sends it: values from CDT_BULK_MIN on
 * leave the message. */
static cdt_msg *bulk_msg(uint64_t seed, const size_t *lens, size_t n, int fd)
{
	cdt_msg *m, *s = NULL;
	char name[] = "v0";

	assert_int_equal(cdt_msg_new(CDT_KIND_EVENT, 0, "t.e", &m), 0);
	assert_int_equal(cdt_msg_add_u64(m, "seed", seed), 0);
	for (size_t i = 0; i < n; i++, name[1]++) {
		uint8_t *p = pattern(lens[i], (unsigned)(seed + i));
		assert_int_equal(cdt_msg_add_bytes(m, name, p, lens[i]), 0);
		free(p);
	}
	if (fd >= 0)
		assert_int_equal(cdt_msg_add_fd(m, "zfd", fd), 0);
	assert_int_equal(msg_bulk_seal(m, &s), 0);
	if (!s)
		return m;
	cdt_msg_free(m);
	return s;
}

/* got is bulk_msg(seed, lens, n) as received: resolve it and compare. */
static void bulk_check(cdt_msg *got, uint64_t seed, const size_t *lens, size_t n)
{
	char name[] = "v0";
	uint64_t v;
	size_t framed = 0;

	/* Each value of a BULK frame's size came in one. */
	for (size_t i = 0; i < n; i++)
		framed += lens[i] >= CDT_BULK_MIN && lens[i] <= MSG_BULKF_MAX;
	assert_int_equal(got->nbulkf, framed);
	assert_int_equal(msg_bulk_resolve(got), 0);
	assert_int_equal(got->nbulkf, 0);
	assert_int_equal(cdt_msg_get_u64(got, "seed", &v), 0);
	assert_int_equal(v, seed);
	for (size_t i = 0; i < n; i++, name[1]++) {
		const uint8_t *p;
		size_t len;
		uint8_t *want = pattern(lens[i], (unsigned)(seed + i));
		assert_int_equal(cdt_msg_get_bytes(got, name, &p, &len), 0);
		assert_int_equal(len, lens[i]);
		assert_memory_equal(p, want, len);
		free(want);
	}
}

/* A broker/layer pair, with the rings on when ring is true. */
static void pair(const cdt_keys *k, bool ring, cdt_chan **ret_b, cdt_chan **ret_l)
{
	pair_new(k, ret_b, ret_l);
	cdt_chan_set_queue_cap(*ret_b, 64u << 20);
	cdt_chan_set_queue_cap(*ret_l, 64u << 20);
	if (!ring)
		return;
	assert_int_equal(chan_ring_offer(*ret_b), 0);
	/* The offer reaches the layer with the first message. */
	size_t lens[] = {10};
	cdt_msg *m = bulk_msg(0, lens, 1, -1), *got = NULL;
	assert_int_equal(cdt_chan_send(*ret_b, m), 0);
	assert_int_equal(pump(*ret_b, *ret_l, &got), 0);
	cdt_msg_free(got);
	got = NULL;
	assert_int_equal(cdt_chan_send(*ret_l, m), 0);
	assert_int_equal(pump(*ret_l, *ret_b, &got), 0);
	cdt_msg_free(got);
	cdt_msg_free(m);
	assert_true((*ret_b)->ring->rx_on && (*ret_l)->ring->rx_on);
}

/* Receive on rx, flushing tx and waiting for it as needed. */
static cdt_msg *take(cdt_chan *tx, cdt_chan *rx)
{
	for (;;) {
		cdt_msg *got = NULL;
		int r = pump(tx, rx, &got);
		if (r == 0)
			return got;
		assert_int_equal(r, -EAGAIN);
		struct pollfd p = {.fd = cdt_chan_fd(tx), .events = POLLOUT};
		assert_int_equal(poll(&p, 1, WAIT_MS), 1);
	}
}

static const size_t shapes[][4] = {
	{CDT_BULK_MIN, 0, 0, 0},
	{MSG_BULKF_MAX, 0, 0, 0},
	{CDT_BULK_MIN - 1, 0, 0, 0},  /* inline */
	{MSG_BULKF_MAX + 1, 0, 0, 0}, /* memfd */
	{CDT_BULK_MIN, 7, MSG_BULKF_MAX + 1, 20000},
	{30000, 30001, 30002, 30003},
};
static const size_t nshape[] = {1, 1, 1, 1, 4, 4};
#define NSHAPES (sizeof(nshape) / sizeof(nshape[0]))

/* Every shape both ways, back to back (so the ring fills, frames take the
 * socket and then the queue), through the rings and over the socket only. */
static void test_bulk_in_order(void **state)
{
	(void)state;
	for (size_t s = 0; s < 2; s++) {
		if (!suite_ok(test_suites[s]))
			continue;
		for (int ring = 0; ring < 2; ring++) {
			cdt_keys *k = keys_fixed(test_suites[s]);
			size_t before = fd_count();
			cdt_chan *b, *l;
			pair(k, ring, &b, &l);
			int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			assert_true(fd >= 0);
			const size_t rounds = 5;
			for (size_t i = 0; i < rounds * NSHAPES; i++) {
				size_t j = i % NSHAPES;
				cdt_msg *m = bulk_msg(i, shapes[j], nshape[j], j == 4 ? fd : -1);
				assert_int_equal(cdt_chan_send(b, m), 0);
				assert_int_equal(cdt_chan_send(l, m), 0);
				cdt_msg_free(m);
			}
			assert_true(cdt_chan_want_write(b));
			for (size_t i = 0; i < rounds * NSHAPES; i++) {
				size_t j = i % NSHAPES;
				cdt_msg *got = take(b, l);
				bulk_check(got, i, shapes[j], nshape[j]);
				assert_int_equal(cdt_msg_nfds(got), j == 4);
				cdt_msg_free(got);
				got = take(l, b);
				bulk_check(got, i, shapes[j], nshape[j]);
				cdt_msg_free(got);
			}
			cdt_msg *got = NULL;
			assert_int_equal(cdt_chan_recv(l, &got), -EAGAIN);
			assert_false(cdt_chan_rx_partial(l));
			close(fd);
			cdt_chan_free(b);
			cdt_chan_free(l);
			assert_int_equal(fd_count(), before);
			cdt_keys_free(k);
		}
	}
}

/* A hostile broker's raw socket against a layer channel, and the sealed
 * wire of one message with BULK frames. */
struct raw {
	cdt_keys *keys;
	cdt_chan *layer;
	int fd;
	struct aead_key *b2l;
	cdt_msg *msg;
	uint8_t *data; /* its DATA frame, sealed under counter 0 */
	size_t data_len;
};

static void raw_setup(struct raw *r, size_t nbulk)
{
	const size_t lens[] = {CDT_BULK_MIN, MSG_BULKF_MAX};
	r->keys = keys_fixed(CDT_SUITE_XCHACHA20POLY1305);
	raw_new(r->keys, &r->layer, &r->fd);
	assert_int_equal(aead_key_new(r->keys, AEAD_ID_BROKER_TO_LAYER, &r->b2l), 0);
	r->msg = bulk_msg(1, lens, nbulk, -1);
	assert_int_equal(r->msg->nbulkf, nbulk);
	size_t frames = 0;
	r->data = seal_msg(r->b2l, 0, r->msg, NULL, &r->data_len, &frames);
	assert_int_equal(frames, 1);
}

static void raw_free(struct raw *r)
{
	cdt_chan_free(r->layer);
	close(r->fd);
	aead_key_free(r->b2l);
	cdt_msg_free(r->msg);
	free(r->data);
	cdt_keys_free(r->keys);
}

/* A copy of the k-th BULK frame of the message, len bytes long (cut or
 * padded), header fixed up to say so when fix is true. */
static uint8_t *bulk_frame(const struct raw *r, size_t k, size_t len, bool fix)
{
	const uint8_t *p;
	size_t n;
	msg_bulkf_frame(r->msg, k, &p, &n);
	uint8_t *f = calloc(1, len);
	assert_non_null(f);
	memcpy(f, p, n < len ? n : len);
	if (fix)
		le32_put(f + 4, (uint32_t)(len - FRAME_HEADER_SIZE));
	return f;
}

static void inject_bulk(const struct raw *r, size_t k)
{
	const uint8_t *p;
	size_t n;
	msg_bulkf_frame(r->msg, k, &p, &n);
	inject(r->fd, p, n, NULL, 0);
}

static int recv_one(cdt_chan *c)
{
	cdt_msg *got = NULL;
	int e = cdt_chan_recv(c, &got);
	if (e == 0)
		cdt_msg_free(got);
	else
		assert_null(got);
	return e;
}

/* The message waits for its frames: nothing is delivered half. */
static void test_bulk_partial(void **state)
{
	(void)state;
	size_t before = fd_count();
	struct raw r;
	const size_t lens[] = {CDT_BULK_MIN, MSG_BULKF_MAX};

	raw_setup(&r, 2);
	inject(r.fd, r.data, r.data_len, NULL, 0);
	assert_int_equal(recv_one(r.layer), -EAGAIN);
	assert_true(cdt_chan_rx_partial(r.layer));
	inject_bulk(&r, 0);
	assert_int_equal(recv_one(r.layer), -EAGAIN);
	assert_true(cdt_chan_rx_partial(r.layer));
	inject_bulk(&r, 1);
	cdt_msg *got = NULL;
	assert_int_equal(cdt_chan_recv(r.layer, &got), 0);
	assert_false(cdt_chan_rx_partial(r.layer));
	bulk_check(got, 1, lens, 2);
	cdt_msg_free(got);
	/* The next frame is sealed under counter 3: the BULK frames took 1
	 * and 2. */
	cdt_msg *m = msg_bytes(5, 3);
	size_t len;
	uint8_t *w = seal_msg(r.b2l, 3, m, NULL, &len, NULL);
	inject(r.fd, w, len, NULL, 0);
	assert_int_equal(cdt_chan_recv(r.layer, &got), 0);
	msg_check_bytes(got, 5, 3);
	cdt_msg_free(got);
	free(w);
	cdt_msg_free(m);
	raw_free(&r);
	assert_int_equal(fd_count(), before);
}

/* One way to get a BULK frame wrong: what follows the DATA frame. */
enum misstep {
	SHORT,	    /* one byte short, header saying so */
	LONG,	    /* one byte long */
	HDR_LIES,   /* right length, header one byte short */
	MORE,	    /* flag MORE */
	VERSION,    /* version 2 */
	NFDS,	    /* nfds 1, with an fd */
	DATA_AGAIN, /* the next message instead */
	FIN,	    /* a FIN instead */
	SECOND,	    /* the first right, the second one byte short */
	HANGUP,	    /* the peer closes */
};

static int misstep(enum misstep what)
{
	struct raw r;
	size_t n = CDT_BULK_MIN + MSG_BULKF_OVERHEAD;
	uint8_t *f = NULL;
	int fd = -1;

	raw_setup(&r, what == SECOND ? 2 : 1);
	inject(r.fd, r.data, r.data_len, NULL, 0);
	switch (what) {
	case SHORT:
		f = bulk_frame(&r, 0, n - 1, true);
		inject(r.fd, f, n - 1, NULL, 0);
		break;
	case LONG:
		f = bulk_frame(&r, 0, n + 1, true);
		inject(r.fd, f, n + 1, NULL, 0);
		break;
	case HDR_LIES:
		f = bulk_frame(&r, 0, n, false);
		le32_put(f + 4, (uint32_t)(n - FRAME_HEADER_SIZE - 1));
		inject(r.fd, f, n, NULL, 0);
		break;
	case MORE:
		f = bulk_frame(&r, 0, n, false);
		f[2] = FRAME_F_MORE;
		inject(r.fd, f, n, NULL, 0);
		break;
	case VERSION:
		f = bulk_frame(&r, 0, n, false);
		f[0] = 2;
		inject(r.fd, f, n, NULL, 0);
		break;
	case NFDS:
		f = bulk_frame(&r, 0, n, false);
		f[3] = 1;
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		inject(r.fd, f, n, &fd, 1);
		close(fd);
		break;
	case DATA_AGAIN: {
		size_t len;
		f = seal_msg(r.b2l, 1, r.msg, NULL, &len, NULL);
		inject(r.fd, f, len, NULL, 0);
		break;
	}
	case FIN:
		f = calloc(1, FRAME_OVERHEAD);
		assert_non_null(f);
		frame_seal(r.b2l, 1, FRAME_FIN, 0, 0, f + FRAME_HEADER_SIZE, 0, f);
		inject(r.fd, f, FRAME_OVERHEAD, NULL, 0);
		break;
	case SECOND: {
		size_t n2 = MSG_BULKF_MAX + MSG_BULKF_OVERHEAD;
		inject_bulk(&r, 0);
		f = bulk_frame(&r, 1, n2 - 1, true);
		inject(r.fd, f, n2 - 1, NULL, 0);
		break;
	}
	case HANGUP:
		shutdown(r.fd, SHUT_RDWR);
		break;
	}
	int e;
	do
		e = recv_one(r.layer);
	while (e == -EAGAIN && what == SECOND);
	/* The error sticks, and nothing half-received stays behind. */
	assert_int_equal(recv_one(r.layer), e);
	free(f);
	raw_free(&r);
	return e;
}

static void test_bulk_missteps(void **state)
{
	(void)state;
	size_t before = fd_count();
	assert_int_equal(misstep(SHORT), -CDT_E_PROTO);
	assert_int_equal(misstep(LONG), -CDT_E_PROTO);
	assert_int_equal(misstep(HDR_LIES), -CDT_E_PROTO);
	assert_int_equal(misstep(MORE), -CDT_E_PROTO);
	assert_int_equal(misstep(VERSION), -CDT_E_VERSION);
	assert_int_equal(misstep(NFDS), -CDT_E_PROTO);
	assert_int_equal(misstep(DATA_AGAIN), -CDT_E_PROTO);
	assert_int_equal(misstep(FIN), -CDT_E_PROTO);
	assert_int_equal(misstep(SECOND), -CDT_E_PROTO);
	assert_int_equal(misstep(HANGUP), -CDT_E_EOF);
	assert_int_equal(fd_count(), before);
}

/* A BULK frame behind no message, or behind one that announced none. */
static void test_bulk_unannounced(void **state)
{
	(void)state;
	struct raw r;

	raw_setup(&r, 1);
	inject_bulk(&r, 0);
	assert_int_equal(recv_one(r.layer), -CDT_E_PROTO);
	raw_free(&r);

	raw_setup(&r, 1);
	cdt_msg *m = msg_bytes(5, 3);
	size_t len;
	uint8_t *w = seal_msg(r.b2l, 0, m, NULL, &len, NULL);
	inject(r.fd, w, len, NULL, 0);
	inject_bulk(&r, 0);
	assert_int_equal(recv_one(r.layer), 0);
	assert_int_equal(recv_one(r.layer), -CDT_E_PROTO);
	free(w);
	cdt_msg_free(m);
	raw_free(&r);
}

/* A message whose values, opened, would make it longer than CDT_MSG_MAX
 * is refused when it arrives: every copy the broker made of it would be
 * too big for its receiver's queue. */
static void test_bulk_resolved_too_big(void **state)
{
	(void)state;
	cdt_keys *k = keys_fixed(CDT_SUITE_XCHACHA20POLY1305);
	const size_t lens[] = {MSG_BULKF_MAX, MSG_BULKF_MAX};
	size_t before = fd_count();
	cdt_msg *frames = bulk_msg(4, lens, 2, -1), *m, *got = NULL;
	cdt_chan *b, *l;

	assert_int_equal(frames->nbulkf, 2);
	assert_int_equal(cdt_msg_new(CDT_KIND_EVENT, 0, "t.e", &m), 0);
	for (int fits = 1; fits >= 0; fits--) {
		/* Inline bytes filling the message up to its limit, less what
		 * the two values need once opened when it fits. */
		size_t room = CDT_MSG_MAX - 400 - (fits ? 2 * (4 + MSG_BULKF_MAX) : 0);
		uint8_t *big = calloc(1, room);
		assert_non_null(big);
		cdt_msg_free(m);
		assert_int_equal(cdt_msg_new(CDT_KIND_EVENT, 0, "t.e", &m), 0);
		assert_int_equal(cdt_msg_add_bytes(m, "a", big, room), 0);
		assert_int_equal(msg_copy_bulk(m, frames, "v0"), 0);
		assert_int_equal(msg_copy_bulk(m, frames, "v1"), 0);
		free(big);
		pair(k, false, &b, &l);
		assert_int_equal(cdt_chan_send(b, m), 0);
		if (fits) {
			got = take(b, l);
			assert_int_equal(msg_bulk_resolve(got), 0);
			assert_true(cdt_msg_encode(got, NULL, 0) <= (long)CDT_MSG_MAX);
			cdt_msg_free(got);
		} else {
			int e;
			do
				e = pump(b, l, &got);
			while (e == -EAGAIN && cdt_chan_want_write(b));
			assert_int_equal(e, -CDT_E_TOO_BIG);
		}
		cdt_chan_free(b);
		cdt_chan_free(l);
	}
	cdt_msg_free(m);
	cdt_msg_free(frames);
	cdt_keys_free(k);
	assert_int_equal(fd_count(), before);
}

/* Through the ring, a BULK frame goes straight into the waiting message's
 * store: one of the right length but a wrong header is refused there. */
static void test_bulk_ring_bad_header(void **state)
{
	(void)state;
	const size_t lens[] = {CDT_BULK_MIN};
	for (int what = 0; what < 3; what++) {
		cdt_keys *k = keys_fixed(CDT_SUITE_XCHACHA20POLY1305);
		size_t before = fd_count();
		cdt_chan *b, *l;
		pair(k, true, &b, &l);
		cdt_msg *m = bulk_msg(9, lens, 1, -1);
		size_t dlen, n;
		const uint8_t *p;
		uint8_t *w = seal_msg(b->tx, b->tx_ctr, m, NULL, &dlen, NULL);
		msg_bulkf_frame(m, 0, &p, &n);
		uint8_t *f = malloc(n);
		assert_non_null(f);
		memcpy(f, p, n);
		if (what == 1)
			f[2] = FRAME_F_MORE;
		if (what == 2)
			f[1] = FRAME_DATA;
		assert_int_equal(ring_put(&b->ring->tx, b->tx_ctr, w, dlen), 0);
		assert_int_equal(ring_put(&b->ring->tx, b->tx_ctr + 1, f, n), 0);
		assert_int_equal(write(b->ring->kick_out, "\1\1", 2), 2);
		cdt_msg *got = NULL;
		int e = cdt_chan_recv(l, &got);
		if (what == 0) {
			assert_int_equal(e, 0);
			bulk_check(got, 9, lens, 1);
			cdt_msg_free(got);
		} else {
			assert_int_equal(e, -CDT_E_PROTO);
			assert_false(cdt_chan_rx_partial(l));
		}
		free(f);
		free(w);
		cdt_msg_free(m);
		cdt_chan_free(b);
		cdt_chan_free(l);
		assert_int_equal(fd_count(), before);
		cdt_keys_free(k);
	}
}

/* A message decoded on its own lacks its BULK frames: it cannot be sent,
 * and the channel stays usable. */
static void test_bulk_send_incomplete(void **state)
{
	(void)state;
	cdt_keys *k = keys_fixed(CDT_SUITE_XCHACHA20POLY1305);
	const size_t lens[] = {CDT_BULK_MIN};
	cdt_msg *m = bulk_msg(3, lens, 1, -1), *d = NULL, *got = NULL;
	cdt_chan *b, *l;
	uint8_t enc[256];

	long n = cdt_msg_encode(m, enc, sizeof(enc));
	assert_true(n > 0);
	assert_int_equal(cdt_msg_decode(enc, (size_t)n, NULL, 0, &d), 0);
	pair(k, true, &b, &l);
	assert_int_equal(cdt_chan_send(b, d), -EINVAL);
	assert_int_equal(cdt_chan_send(b, m), 0);
	got = take(b, l);
	bulk_check(got, 3, lens, 1);
	cdt_msg_free(got);
	cdt_msg_free(d);
	cdt_msg_free(m);
	cdt_chan_free(b);
	cdt_chan_free(l);
	cdt_keys_free(k);
}

/* The channel never opens a BULK frame: a tampered body reaches the
 * message, and opening the value there fails. */
static void test_bulk_body_tampered(void **state)
{
	(void)state;
	struct raw r;
	size_t n = CDT_BULK_MIN + MSG_BULKF_OVERHEAD;

	for (size_t pos = FRAME_HEADER_SIZE; pos < n; pos += n / 5) {
		raw_setup(&r, 1);
		uint8_t *f = bulk_frame(&r, 0, n, false);
		f[pos] ^= 0x10;
		inject(r.fd, r.data, r.data_len, NULL, 0);
		inject(r.fd, f, n, NULL, 0);
		cdt_msg *got = NULL;
		assert_int_equal(cdt_chan_recv(r.layer, &got), 0);
		assert_int_equal(msg_bulk_resolve(got), -CDT_E_AUTH);
		cdt_msg_free(got);
		free(f);
		raw_free(&r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bulk_in_order),
		cmocka_unit_test(test_bulk_partial),
		cmocka_unit_test(test_bulk_missteps),
		cmocka_unit_test(test_bulk_unannounced),
		cmocka_unit_test(test_bulk_body_tampered),
		cmocka_unit_test(test_bulk_send_incomplete),
		cmocka_unit_test(test_bulk_ring_bad_header),
		cmocka_unit_test(test_bulk_resolved_too_big),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
