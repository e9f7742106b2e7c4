/* SPDX-License-Identifier: MIT */
/*
 * The secure channel over shared-memory rings (docs/protocol.md section
 * 3.1): honest traffic after the switch, every way a frame can leave the
 * ring for the socket or the queue, FIN and EOF; then a hostile broker
 * holding the raw socket and the ring, a hostile layer moving its tail,
 * and malformed offers.  Every attack must leave the channel unusable and
 * every fd closed once the channel is freed.
 */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "chan-util.h"
#include "chan.h"
#include "keys.h"
#include "ring.h"

#define OFFER_PLEN    (3 * FRAME_ID_SIZE + 8)
/* Bound for every wait in here: far beyond any honest delay, and only
 * ever reached when the code under test hangs. */
#define WAIT_MS	      10000
#define REC_SIZE(len) (RING_REC_HDR + (((uint32_t)(len) + 7u) & ~7u))

static void recv_check(cdt_chan *tx, cdt_chan *rx, uint64_t id, size_t n)
{
	cdt_msg *got = NULL;
	assert_int_equal(pump(tx, rx, &got), 0);
	msg_check_bytes(got, id, n);
	cdt_msg_free(got);
}

static void send_bytes(cdt_chan *chan, uint64_t id, size_t n)
{
	cdt_msg *m = msg_bytes(id, n);
	assert_int_equal(cdt_chan_send(chan, m), 0);
	cdt_msg_free(m);
}

/* A broker/layer pair with the rings on in both directions. */
static void ring_pair(const cdt_keys *k, cdt_chan **ret_b, cdt_chan **ret_l)
{
	pair_new(k, ret_b, ret_l);
	assert_int_equal(chan_ring_offer(*ret_b), 0);
	send_bytes(*ret_b, 1, 10);
	recv_check(*ret_b, *ret_l, 1, 10);
	send_bytes(*ret_l, 2, 10);
	recv_check(*ret_l, *ret_b, 2, 10);
	assert_true((*ret_b)->ring->rx_on && (*ret_b)->ring->tx_on);
	assert_true((*ret_l)->ring->rx_on && (*ret_l)->ring->tx_on);
}

/* The n for which msg_bytes(id, n) is sealed into a frame of flen bytes. */
static size_t bytes_for_frame(size_t flen)
{
	for (size_t n = flen - FRAME_OVERHEAD - FRAME_LEN_SIZE - msg_bytes_overhead() - 8;; n++) {
		cdt_msg *m = msg_bytes(1, n);
		long e = cdt_msg_encode(m, NULL, 0);
		cdt_msg_free(m);
		size_t got = FRAME_OVERHEAD + FRAME_LEN_SIZE + (size_t)e;
		if (got == flen)
			return n;
		assert_true(got < flen);
	}
}

static void test_switch(void **state)
{
	(void)state;
	for (size_t s = 0; s < 2; s++) {
		if (!suite_ok(test_suites[s]))
			continue;
		cdt_keys *k = keys_fixed(test_suites[s]);
		size_t before = fd_count();
		cdt_chan *b, *l;

		pair_new(k, &b, &l);
		assert_int_equal(chan_ring_offer(l), -EINVAL);
		assert_int_equal(chan_ring_offer(b), 0);
		assert_int_equal(chan_ring_offer(b), -EBUSY);
		assert_true(b->ring->tx_on && !b->ring->rx_on);
		/* Until the layer acknowledges, the broker waits on the socket. */
		assert_int_equal(cdt_chan_fd(b), b->fd);
		for (uint64_t i = 1; i <= 20; i++)
			send_bytes(b, i, 100 * i);
		uint32_t head = atomic_load(&b->ring->tx.ctl->head);
		assert_true(head > 0);
		for (uint64_t i = 1; i <= 20; i++)
			recv_check(b, l, i, 100 * i);
		assert_true(l->ring->rx_on && l->ring->tx_on);
		assert_int_equal(atomic_load(&l->ring->rx.ctl->tail), head);
		for (uint64_t i = 1; i <= 20; i++)
			send_bytes(l, i, 50 * i);
		assert_true(atomic_load(&l->ring->tx.ctl->head) > 0);
		for (uint64_t i = 1; i <= 20; i++)
			recv_check(l, b, i, 50 * i);
		assert_true(b->ring->rx_on);
		assert_int_not_equal(cdt_chan_fd(b), b->fd);
		assert_int_not_equal(cdt_chan_fd(l), l->fd);
		cdt_msg *got = NULL;
		assert_int_equal(cdt_chan_recv(b, &got), -EAGAIN);
		assert_int_equal(cdt_chan_recv(l, &got), -EAGAIN);
		/* Request and answer with the blocking helpers. */
		send_bytes(b, 77, 33);
		assert_int_equal(cdt_chan_recv_wait(l, &got, WAIT_MS), 0);
		msg_check_bytes(got, 77, 33);
		cdt_msg_free(got);
		send_bytes(l, 78, 34);
		assert_int_equal(cdt_chan_recv_wait(b, &got, -1), 0);
		msg_check_bytes(got, 78, 34);
		cdt_msg_free(got);
		cdt_chan_free(b);
		cdt_chan_free(l);
		assert_int_equal(fd_count(), before);
		cdt_keys_free(k);
	}
}

static cdt_msg *msg_fd(uint64_t id, int fd)
{
	cdt_msg *m = NULL;
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, id, "t.x", &m), 0);
	assert_int_equal(cdt_msg_add_fd(m, "fd", fd), 0);
	return m;
}

/* Frames with fds take the socket, frames over RING_REC_MAX too; those
 * at exactly RING_REC_MAX stay in the ring.  All arrive in order. */
static void test_socket_frames_in_order(void **state)
{
	(void)state;
	size_t at_max = bytes_for_frame(RING_REC_MAX);
	for (size_t s = 0; s < 2; s++) {
		if (!suite_ok(test_suites[s]))
			continue;
		cdt_keys *k = keys_fixed(test_suites[s]);
		size_t before = fd_count();
		cdt_chan *b, *l, *pair[2][2];
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		struct stat want;
		assert_int_equal(fstat(fd, &want), 0);

		ring_pair(k, &b, &l);
		pair[0][0] = b, pair[0][1] = l, pair[1][0] = l, pair[1][1] = b;
		for (size_t d = 0; d < 2; d++) {
			cdt_chan *tx = pair[d][0], *rx = pair[d][1];
			uint32_t h0 = atomic_load(&tx->ring->tx.ctl->head);
			send_bytes(tx, 10, at_max);
			uint32_t h1 = atomic_load(&tx->ring->tx.ctl->head);
			assert_int_equal(h1 - h0, RING_REC_HDR + RING_REC_MAX);
			send_bytes(tx, 11, at_max + 1);
			assert_int_equal(atomic_load(&tx->ring->tx.ctl->head), h1);
			cdt_msg *m = msg_fd(12, fd);
			assert_int_equal(cdt_chan_send(tx, m), 0);
			cdt_msg_free(m);
			assert_int_equal(atomic_load(&tx->ring->tx.ctl->head), h1);
			send_bytes(tx, 13, 5);
			m = msg_fd(14, fd);
			assert_int_equal(cdt_chan_send(tx, m), 0);
			cdt_msg_free(m);
			send_bytes(tx, 15, at_max + 1);
			send_bytes(tx, 16, 0);

			recv_check(tx, rx, 10, at_max);
			recv_check(tx, rx, 11, at_max + 1);
			for (uint64_t id = 12; id <= 14; id++) {
				if (id == 13) {
					recv_check(tx, rx, 13, 5);
					continue;
				}
				cdt_msg *got = NULL;
				struct stat st;
				int rfd;
				assert_int_equal(pump(tx, rx, &got), 0);
				assert_int_equal(cdt_msg_call_id(got), id);
				assert_int_equal(cdt_msg_take_fd(got, "fd", &rfd), 0);
				assert_int_equal(fstat(rfd, &st), 0);
				assert_int_equal(st.st_ino, want.st_ino);
				assert_int_equal(st.st_dev, want.st_dev);
				close(rfd);
				cdt_msg_free(got);
			}
			recv_check(tx, rx, 15, at_max + 1);
			recv_check(tx, rx, 16, 0);
		}
		close(fd);
		cdt_chan_free(b);
		cdt_chan_free(l);
		assert_int_equal(fd_count(), before);
		cdt_keys_free(k);
	}
}

/* Far more than a ring's worth without reading: the ring fills, then the
 * socket, then the queue; poll() on cdt_chan_fd() says when to flush. */
static void test_overflow(void **state)
{
	(void)state;
	for (size_t s = 0; s < 2; s++) {
		if (!suite_ok(test_suites[s]))
			continue;
		cdt_keys *k = keys_fixed(test_suites[s]);
		size_t before = fd_count();
		cdt_chan *b, *l;
		uint64_t n = 0, extra = 0;
		size_t total = 0;

		ring_pair(k, &b, &l);
		int bfd = cdt_chan_fd(b);
		assert_true(bfd >= 0);
		cdt_chan_set_queue_cap(b, 64u << 20);
		/* Sizes vary so that records wrap at different offsets. */
		while (extra < 40) {
			n++;
			send_bytes(b, n, 1000 + (n * 37) % 3000);
			total += 1000 + (n * 37) % 3000;
			if (cdt_chan_want_write(b))
				extra++;
		}
		assert_true(total > 2 * RING_DATA_SIZE);
		assert_true(cdt_chan_queued(b) > 0);
		struct pollfd pfd = {.fd = bfd, .events = POLLIN};
		for (uint64_t i = 1; i <= n;) {
			cdt_msg *got = NULL;
			int r = cdt_chan_recv(l, &got);
			if (r == 0) {
				msg_check_bytes(got, i, 1000 + (i * 37) % 3000);
				cdt_msg_free(got);
				i++;
				continue;
			}
			assert_int_equal(r, -EAGAIN);
			/* Everything announced was read: the socket is empty
			 * and the queue must be able to move. */
			assert_true(cdt_chan_want_write(b));
			assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
			r = cdt_chan_flush(b);
			assert_true(r == 0 || r == -EAGAIN);
		}
		assert_false(cdt_chan_want_write(b));
		assert_int_equal(cdt_chan_queued(b), 0);
		/* With the queue gone, the set no longer wakes for room. */
		assert_int_equal(poll(&pfd, 1, 0), 0);
		cdt_msg *got = NULL;
		assert_int_equal(cdt_chan_recv(l, &got), -EAGAIN);
		cdt_chan_free(b);
		cdt_chan_free(l);
		assert_int_equal(fd_count(), before);
		cdt_keys_free(k);
	}
}

/* Messages of several 64 KiB frames (each over RING_REC_MAX) mixed with
 * ring-sized ones, both ways. */
static void test_multiframe(void **state)
{
	(void)state;
	const size_t sizes[] = {3 * 65536 + 7, 10, CDT_FRAME_PLAIN_MAX, 5 * 65536, 1};
	for (size_t s = 0; s < 2; s++) {
		if (!suite_ok(test_suites[s]))
			continue;
		cdt_keys *k = keys_fixed(test_suites[s]);
		cdt_chan *b, *l;
		ring_pair(k, &b, &l);
		cdt_chan_set_queue_cap(b, 16u << 20);
		cdt_chan_set_queue_cap(l, 16u << 20);
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			send_bytes(b, i + 1, sizes[i]);
			send_bytes(l, i + 1, sizes[i]);
		}
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			recv_check(b, l, i + 1, sizes[i]);
			recv_check(l, b, i + 1, sizes[i]);
		}
		cdt_chan_free(b);
		cdt_chan_free(l);
		cdt_keys_free(k);
	}
}

static void test_fin(void **state)
{
	(void)state;
	for (size_t s = 0; s < 2; s++) {
		if (!suite_ok(test_suites[s]))
			continue;
		cdt_keys *k = keys_fixed(test_suites[s]);
		cdt_chan *b, *l;
		cdt_msg *got = NULL;
		ring_pair(k, &b, &l);
		send_bytes(b, 5, 5);
		uint32_t h0 = atomic_load(&b->ring->tx.ctl->head);
		assert_int_equal(cdt_chan_close(b), 0);
		/* The FIN went through the ring. */
		assert_int_equal(atomic_load(&b->ring->tx.ctl->head) - h0,
				 RING_REC_HDR + ((FRAME_OVERHEAD + 7) & ~7u));
		recv_check(b, l, 5, 5);
		assert_int_equal(cdt_chan_recv(l, &got), -CDT_E_CLOSED);
		assert_int_equal(cdt_chan_recv(l, &got), -CDT_E_CLOSED);
		/* The layer may still answer, and close in turn. */
		send_bytes(l, 6, 6);
		assert_int_equal(cdt_chan_close(l), 0);
		recv_check(l, b, 6, 6);
		assert_int_equal(cdt_chan_recv_wait(b, &got, WAIT_MS), -CDT_E_CLOSED);
		assert_null(got);
		cdt_chan_free(b);
		cdt_chan_free(l);
		cdt_keys_free(k);
	}
}

/* The peer's process dies: its socket end closes without a FIN.  Frames
 * sent before still arrive, then -CDT_E_EOF, for every way to receive. */
static void test_eof(void **state)
{
	(void)state;
	for (size_t s = 0; s < 2; s++) {
		if (!suite_ok(test_suites[s]))
			continue;
		cdt_keys *k = keys_fixed(test_suites[s]);
		size_t before = fd_count();
		for (int how = 0; how < 6; how++) {
			cdt_chan *b, *l, *gone, *left;
			cdt_msg *got = NULL;
			ring_pair(k, &b, &l);
			/* Even hows: the broker dies; odd: the layer. */
			gone = how % 2 ? l : b;
			left = how % 2 ? b : l;
			send_bytes(gone, 9, 9);
			cdt_chan_free(gone);
			assert_int_equal(cdt_chan_recv(left, &got), 0);
			msg_check_bytes(got, 9, 9);
			cdt_msg_free(got);
			got = NULL;
			/* A hang would kill the test with SIGALRM. */
			alarm(60);
			switch (how / 2) {
			case 0:
				assert_int_equal(cdt_chan_recv(left, &got), -CDT_E_EOF);
				break;
			case 1:
				assert_int_equal(cdt_chan_recv_wait(left, &got, WAIT_MS),
						 -CDT_E_EOF);
				break;
			default:
				assert_int_equal(cdt_chan_recv_wait(left, &got, -1), -CDT_E_EOF);
				break;
			}
			alarm(0);
			assert_null(got);
			assert_int_equal(cdt_chan_recv(left, &got), -CDT_E_EOF);
			cdt_chan_free(left);
		}
		assert_int_equal(fd_count(), before);
		cdt_keys_free(k);
	}
}

/* A layer sleeping in a receive with a deadline wakes when the broker's
 * process exits, at once, not at the deadline: it waits on its pipe alone,
 * whose write end closes with the broker. */
static void test_timed_wait_wakes_on_exit(void **state)
{
	(void)state;
	cdt_keys *k = keys_fixed(test_suites[0]);
	size_t before = fd_count();
	cdt_chan *b, *l;
	cdt_msg *got = NULL;

	ring_pair(k, &b, &l);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cdt_chan_free(l);
		usleep(100 * 1000); /* the layer is asleep by now */
		_exit(0);
	}
	cdt_chan_free(b);
	int64_t t0 = chan_now_ms();
	alarm(120);
	assert_int_equal(cdt_chan_recv_wait(l, &got, 60 * 1000), -CDT_E_EOF);
	alarm(0);
	assert_true(chan_now_ms() - t0 < 30 * 1000);
	assert_null(got);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cdt_chan_free(l);
	assert_int_equal(fd_count(), before);
	cdt_keys_free(k);
}

/* Broker and layer in two processes: the blocking helpers wake on the
 * other's announcements, a message larger than ring and socket together
 * goes through, and the broker's exit without FIN ends the session. */
static void test_cross_process(void **state)
{
	(void)state;
	for (size_t s = 0; s < 2; s++) {
		if (!suite_ok(test_suites[s]))
			continue;
		cdt_keys *k = keys_fixed(test_suites[s]);
		size_t before = fd_count();
		cdt_chan *b, *l;
		cdt_msg *got = NULL, *big = msg_bytes(4, 3000000), *small = msg_bytes(5, 50);
		ring_pair(k, &b, &l);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			cdt_chan_free(l);
			int r = cdt_chan_send_wait(b, small, WAIT_MS);
			if (r == 0)
				r = cdt_chan_send_wait(b, big, WAIT_MS);
			if (r == 0)
				r = cdt_chan_recv_wait(b, &got, WAIT_MS);
			if (r == 0 && cdt_msg_call_id(got) != 6)
				r = -EBADMSG;
			cdt_msg_free(got);
			cdt_msg_free(big);
			cdt_msg_free(small);
			cdt_chan_free(b);
			cdt_keys_free(k);
			_exit(r == 0 ? 0 : 1);
		}
		cdt_chan_free(b);
		alarm(120);
		assert_int_equal(cdt_chan_recv_wait(l, &got, -1), 0);
		msg_check_bytes(got, 5, 50);
		cdt_msg_free(got);
		assert_int_equal(cdt_chan_recv_wait(l, &got, -1), 0);
		msg_check_bytes(got, 4, 3000000);
		cdt_msg_free(got);
		cdt_msg *answer = msg_bytes(6, 60);
		assert_int_equal(cdt_chan_send_wait(l, answer, WAIT_MS), 0);
		cdt_msg_free(answer);
		got = NULL;
		assert_int_equal(cdt_chan_recv_wait(l, &got, -1), -CDT_E_EOF);
		alarm(0);
		assert_null(got);
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		cdt_msg_free(big);
		cdt_msg_free(small);
		cdt_chan_free(l);
		assert_int_equal(fd_count(), before);
		cdt_keys_free(k);
	}
}

/* A layer with frames of its own still queued when the offer arrives
 * cannot switch: its acknowledgement would overtake them.  The protocol
 * says so (section 3.1) and the layer refuses. */
static void test_offer_behind_queue(void **state)
{
	(void)state;
	cdt_keys *k = keys_fixed(test_suites[0]);
	size_t before = fd_count();
	cdt_chan *b, *l;
	cdt_msg *got = NULL;
	uint64_t n = 0;

	pair_new(k, &b, &l);
	assert_int_equal(chan_ring_offer(b), 0);
	cdt_chan_set_queue_cap(l, 16u << 20);
	while (!cdt_chan_want_write(l))
		send_bytes(l, ++n, 30000);
	assert_int_equal(cdt_chan_recv(l, &got), -CDT_E_PROTO);
	assert_null(l->ring);
	assert_int_equal(cdt_chan_flush(l), -CDT_E_PROTO);
	cdt_chan_free(b);
	cdt_chan_free(l);
	assert_int_equal(fd_count(), before);
	cdt_keys_free(k);
}

/* ---- A hostile layer writing its ring (direction 1) directly ---- */

static void layer_kick(cdt_chan *l)
{
	uint64_t one = 1;
	assert_int_equal(write(l->ring->kick_out, &one, sizeof(one)), sizeof(one));
}

/* After an attack on the broker: the error sticks, for receive and send,
 * also with an honest frame behind it. */
static void broker_dead(cdt_chan *b, cdt_chan *l, int err)
{
	cdt_msg *got = NULL, *m = msg_bytes(9, 9);
	assert_int_equal(cdt_chan_recv(b, &got), err);
	size_t len;
	uint8_t *w = seal_msg(l->tx, l->tx_ctr, m, NULL, &len, NULL);
	(void)ring_put(&l->ring->tx, l->tx_ctr, w, len);
	free(w);
	layer_kick(l);
	assert_int_equal(cdt_chan_recv(b, &got), err);
	assert_int_equal(cdt_chan_recv_wait(b, &got, WAIT_MS), err);
	assert_null(got);
	assert_int_equal(cdt_chan_send(b, m), err);
	cdt_msg_free(m);
}

static void test_hostile_layer(void **state)
{
	(void)state;
	for (int how = 0; how < 8; how++) {
		cdt_keys *k = keys_fixed(test_suites[0]);
		size_t before = fd_count();
		cdt_chan *b, *l;
		cdt_msg *got = NULL, *m = msg_bytes(7, 70);
		size_t len;
		int err = -CDT_E_PROTO;

		ring_pair(k, &b, &l);
		struct ring *tx = &l->ring->tx;
		uint8_t *w = seal_msg(l->tx, l->tx_ctr, m, NULL, &len, NULL);
		switch (how) {
		case 0: /* an announcement without a frame */
			break;
		case 1: /* a forged record under the right counter */
			w[FRAME_HEADER_SIZE] ^= 0x80;
			assert_int_equal(ring_put(tx, l->tx_ctr, w, len), 0);
			err = -CDT_E_AUTH;
			break;
		case 2: /* a record under the wrong counter */
			assert_int_equal(ring_put(tx, l->tx_ctr + 1, w, len), 0);
			break;
		case 3: /* the same frame twice: the second is a replay */
			assert_int_equal(ring_put(tx, l->tx_ctr, w, len), 0);
			layer_kick(l);
			assert_int_equal(cdt_chan_recv(b, &got), 0);
			msg_check_bytes(got, 7, 70);
			cdt_msg_free(got);
			got = NULL;
			assert_int_equal(ring_put(tx, l->tx_ctr + 1, w, len), 0);
			err = -CDT_E_AUTH;
			break;
		case 4: /* head more than a ring ahead */
			atomic_store(&tx->ctl->head,
				     atomic_load(&tx->ctl->head) + RING_DATA_SIZE + 8);
			break;
		case 5: /* head moved backwards */
			atomic_store(&tx->ctl->head, atomic_load(&tx->ctl->head) - 8);
			break;
		case 6: /* a record over RING_REC_MAX, all of it published */
			assert_int_equal(ring_put(tx, l->tx_ctr, w, len), 0);
			le32_put(tx->data + ((tx->head - REC_SIZE(len)) & (RING_DATA_SIZE - 1)),
				 RING_REC_MAX + 1);
			atomic_store(&tx->ctl->head, tx->head - REC_SIZE(len) + RING_DATA_SIZE);
			break;
		default: /* a frame header that lies about its length */
			w[4] ^= 1;
			assert_int_equal(ring_put(tx, l->tx_ctr, w, len), 0);
			break;
		}
		free(w);
		layer_kick(l);
		int r = cdt_chan_recv(b, &got);
		if (how == 7)
			err = r;
		assert_true(err < 0 && cdt_err_is_peer(err));
		assert_int_equal(r, err);
		broker_dead(b, l, err);
		cdt_msg_free(m);
		cdt_chan_free(b);
		cdt_chan_free(l);
		assert_int_equal(fd_count(), before);
		cdt_keys_free(k);
	}
}

/* A hostile layer leaves a datagram nobody announced on the socket and
 * shuts its end, keeping its eventfds: the socket stays readable and hung
 * up, so a receive that answered "nothing yet" would have an event loop
 * woken by the hang-up forever.  Both receives must see the end. */
static void test_hup_behind_datagram(void **state)
{
	(void)state;
	for (int how = 0; how < 3; how++) {
		cdt_keys *k = keys_fixed(test_suites[0]);
		size_t before = fd_count();
		cdt_chan *b, *l;
		cdt_msg *got = NULL;
		static const uint8_t junk[] = "unannounced";

		ring_pair(k, &b, &l);
		assert_int_equal(send(l->fd, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
		assert_int_equal(shutdown(l->fd, SHUT_RDWR), 0);
		struct pollfd pfd = {.fd = b->fd};
		assert_int_equal(poll(&pfd, 1, 0), 1);
		assert_true(pfd.revents & POLLHUP);
		/* A hang would kill the test with SIGALRM. */
		alarm(60);
		switch (how) {
		case 0:
			assert_int_equal(cdt_chan_recv(b, &got), -CDT_E_EOF);
			break;
		case 1:
			assert_int_equal(cdt_chan_recv_wait(b, &got, WAIT_MS), -CDT_E_EOF);
			break;
		default:
			assert_int_equal(cdt_chan_recv_wait(b, &got, -1), -CDT_E_EOF);
			break;
		}
		alarm(0);
		assert_null(got);
		cdt_chan_free(b);
		cdt_chan_free(l);
		assert_int_equal(fd_count(), before);
		cdt_keys_free(k);
	}
}

/* The eventfds are shared open files: a hostile layer can clear
 * O_NONBLOCK on the one it announces on.  The broker's receive that finds
 * nothing announced must still return at once instead of blocking in
 * read() and stalling every other layer. */
static void test_blocking_eventfd(void **state)
{
	(void)state;
	cdt_keys *k = keys_fixed(test_suites[0]);
	size_t before = fd_count();
	cdt_chan *b, *l;
	cdt_msg *got = NULL;

	ring_pair(k, &b, &l);
	assert_int_equal(fcntl(l->ring->kick_out, F_SETFL, 0), 0);
	send_bytes(l, 3, 30);
	/* A hang would kill the test with SIGALRM. */
	alarm(60);
	assert_int_equal(cdt_chan_recv(b, &got), 0);
	msg_check_bytes(got, 3, 30);
	cdt_msg_free(got);
	got = NULL;
	assert_int_equal(cdt_chan_recv(b, &got), -EAGAIN);
	assert_int_equal(chan_recv_more(b, &got), -EAGAIN);
	alarm(0);
	assert_null(got);
	cdt_chan_free(b);
	cdt_chan_free(l);
	assert_int_equal(fd_count(), before);
	cdt_keys_free(k);
}

/* A hostile layer releases room the broker never published: the broker's
 * next send fails, and every later one. */
static void test_hostile_tail(void **state)
{
	(void)state;
	const int32_t moves[] = {8, RING_DATA_SIZE, -8};
	for (size_t i = 0; i < sizeof(moves) / sizeof(moves[0]); i++) {
		cdt_keys *k = keys_fixed(test_suites[0]);
		size_t before = fd_count();
		cdt_chan *b, *l;
		cdt_msg *m = msg_bytes(3, 3);
		ring_pair(k, &b, &l);
		/* A second round: the broker has seen the first one released. */
		send_bytes(b, 2, 2);
		recv_check(b, l, 2, 2);
		struct ring_ctl *ctl = l->ring->rx.ctl;
		uint32_t head = atomic_load(&ctl->head);
		uint32_t seen = b->ring->tx.tail;
		assert_int_equal(atomic_load(&ctl->tail), head);
		assert_true(seen > 0 && seen < head);
		atomic_store(&ctl->tail,
			     moves[i] < 0 ? seen - (uint32_t)-moves[i] : head + (uint32_t)moves[i]);
		assert_int_equal(cdt_chan_send(b, m), -CDT_E_PROTO);
		assert_int_equal(cdt_chan_send(b, m), -CDT_E_PROTO);
		assert_int_equal(cdt_chan_flush(b), -CDT_E_PROTO);
		cdt_msg_free(m);
		cdt_chan_free(b);
		cdt_chan_free(l);
		assert_int_equal(fd_count(), before);
		cdt_keys_free(k);
	}
}

/* ---- A hostile broker: the raw socket, the memfd and the eventfds ---- */

struct evil {
	cdt_keys *keys;
	cdt_chan *layer;
	int raw;
	struct aead_key *b2l;
	struct aead_key *l2b;
	uint64_t ctr; /* next broker->layer counter */
	int fds[3];   /* memfd, broker->layer pipe (read end), layer->broker eventfd */
	int kick;     /* broker->layer pipe, write end */
	uint8_t *shm;
	struct ring tx;
	size_t before;
};

static int memfd_new(size_t size, unsigned seals)
{
	int fd = memfd_create("test-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	if (seals)
		assert_int_equal(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

static void evil_new(struct evil *e)
{
	e->keys = keys_fixed(test_suites[0]);
	e->before = fd_count();
	raw_new(e->keys, &e->layer, &e->raw);
	assert_int_equal(aead_key_new(e->keys, AEAD_ID_BROKER_TO_LAYER, &e->b2l), 0);
	assert_int_equal(aead_key_new(e->keys, AEAD_ID_LAYER_TO_BROKER, &e->l2b), 0);
	e->ctr = 0;
	e->fds[0] = memfd_new(RING_SHM_SIZE, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	/* As chan_ring_offer() makes them; the layer cannot tell, and works
	 * with counting ones too (then it reads several announcements). */
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	e->fds[1] = p[0];
	e->kick = p[1];
	e->fds[2] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
	assert_true(e->fds[2] >= 0);
	e->shm = mmap(NULL, RING_SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, e->fds[0], 0);
	assert_true(e->shm != MAP_FAILED);
	ring_init(&e->tx, e->shm, 0);
}

static void evil_free(struct evil *e)
{
	cdt_chan_free(e->layer);
	close(e->raw);
	for (size_t i = 0; i < 3; i++)
		close(e->fds[i]);
	close(e->kick);
	munmap(e->shm, RING_SHM_SIZE);
	aead_key_free(e->b2l);
	aead_key_free(e->l2b);
	cdt_keys_free(e->keys);
	assert_int_equal(fd_count(), e->before);
}

/* An offer: fds as sent, identities of ids[0..2], the geometry, plen
 * bytes of plaintext (zero-padded or cut), sealed with key. */
static void offer_inject(struct evil *e, const struct aead_key *key, const int *fds, size_t nfds,
			 const int *ids, uint32_t size, uint32_t rec_max, size_t plen)
{
	uint8_t plain[OFFER_PLEN + 8] = {0}, wire[sizeof(plain) + FRAME_OVERHEAD];
	for (size_t i = 0; i < 3; i++) {
		struct stat st;
		assert_int_equal(fstat(ids[i], &st), 0);
		frame_id_write(&st, plain + i * FRAME_ID_SIZE);
	}
	le32_put(plain + 3 * FRAME_ID_SIZE, size);
	le32_put(plain + 3 * FRAME_ID_SIZE + 4, rec_max);
	assert_true(plen <= sizeof(plain));
	size_t n = frame_seal(key, e->ctr++, FRAME_RING, 0, (uint8_t)nfds, plain, plen, wire);
	inject(e->raw, wire, n, fds, nfds);
}

static void evil_offer(struct evil *e)
{
	offer_inject(e, e->b2l, e->fds, 3, e->fds, RING_DATA_SIZE, RING_REC_MAX, OFFER_PLEN);
}

/* The layer takes the offer and acknowledges it over the socket. */
static void evil_switch(struct evil *e)
{
	uint8_t ack[FRAME_MAX];
	struct frame_header h;
	cdt_msg *got = NULL;

	evil_offer(e);
	assert_int_equal(cdt_chan_recv(e->layer, &got), -EAGAIN);
	assert_true(e->layer->ring && e->layer->ring->rx_on && e->layer->ring->tx_on);
	ssize_t n = recv(e->raw, ack, sizeof(ack), MSG_DONTWAIT);
	assert_int_equal(n, FRAME_OVERHEAD);
	assert_int_equal(frame_header_parse(ack, (size_t)n, &h), 0);
	assert_int_equal(h.type, FRAME_RING);
	assert_int_equal(h.nfds, 0);
	assert_int_equal(frame_open(e->l2b, 0, ack, (size_t)n, ack + FRAME_HEADER_SIZE), 0);
}

static void evil_kick(struct evil *e)
{
	uint8_t one = 1;
	assert_int_equal(write(e->kick, &one, 1), 1);
}

/* Put msg sealed with ctr into the ring under the label label. */
static void evil_put(struct evil *e, uint64_t ctr, uint64_t label, const cdt_msg *msg)
{
	size_t len, frames;
	uint8_t *w = seal_msg(e->b2l, ctr, msg, NULL, &len, &frames);
	assert_int_equal(frames, 1);
	assert_int_equal(ring_put(&e->tx, label, w, len), 0);
	free(w);
	evil_kick(e);
}

/* After a detected attack: the error sticks, even for a valid frame. */
static void assert_dead(struct evil *e, int err)
{
	cdt_msg *got = NULL, *m = msg_bytes(99, 3);
	assert_int_equal(cdt_chan_recv(e->layer, &got), err);
	evil_put(e, e->ctr, e->ctr, m);
	assert_int_equal(cdt_chan_recv(e->layer, &got), err);
	assert_int_equal(cdt_chan_recv_wait(e->layer, &got, WAIT_MS), err);
	assert_null(got);
	assert_int_equal(cdt_chan_send(e->layer, m), err);
	cdt_msg_free(m);
}

static void test_evil_ring(void **state)
{
	(void)state;
	struct evil e;
	cdt_msg *got = NULL, *m = msg_bytes(1, 40);

	/* The honest path first: a frame in the ring, one on the socket. */
	evil_new(&e);
	evil_switch(&e);
	assert_int_equal(cdt_chan_recv(e.layer, &got), -EAGAIN);
	evil_put(&e, e.ctr, e.ctr, m);
	e.ctr++;
	assert_int_equal(cdt_chan_recv(e.layer, &got), 0);
	msg_check_bytes(got, 1, 40);
	cdt_msg_free(got);
	size_t len;
	uint8_t *w = seal_msg(e.b2l, e.ctr++, m, NULL, &len, NULL);
	inject(e.raw, w, len, NULL, 0);
	free(w);
	/* Not announced: not read. */
	assert_int_equal(cdt_chan_recv(e.layer, &got), -EAGAIN);
	evil_kick(&e);
	assert_int_equal(cdt_chan_recv(e.layer, &got), 0);
	msg_check_bytes(got, 1, 40);
	cdt_msg_free(got);
	evil_free(&e);

	/* An announcement without a frame. */
	evil_new(&e);
	evil_switch(&e);
	evil_kick(&e);
	assert_int_equal(cdt_chan_recv(e.layer, &got), -CDT_E_PROTO);
	assert_dead(&e, -CDT_E_PROTO);
	evil_free(&e);

	/* A forged record with the right counter: one ciphertext bit. */
	evil_new(&e);
	evil_switch(&e);
	w = seal_msg(e.b2l, e.ctr, m, NULL, &len, NULL);
	w[len - 1] ^= 1;
	assert_int_equal(ring_put(&e.tx, e.ctr, w, len), 0);
	free(w);
	evil_kick(&e);
	assert_int_equal(cdt_chan_recv(e.layer, &got), -CDT_E_AUTH);
	assert_dead(&e, -CDT_E_AUTH);
	evil_free(&e);

	/* A record with a wrong counter, nothing on the socket. */
	const uint64_t wrong[] = {0, 2, UINT64_MAX};
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		evil_new(&e);
		evil_switch(&e);
		evil_put(&e, e.ctr, wrong[i], m);
		assert_int_equal(cdt_chan_recv(e.layer, &got), -CDT_E_PROTO);
		assert_dead(&e, -CDT_E_PROTO);
		evil_free(&e);
	}

	/* A replayed record: the same bytes again, under the old counter
	 * (not the frame expected, none on the socket) or the new one. */
	for (int relabel = 0; relabel < 2; relabel++) {
		evil_new(&e);
		evil_switch(&e);
		w = seal_msg(e.b2l, e.ctr, m, NULL, &len, NULL);
		assert_int_equal(ring_put(&e.tx, e.ctr, w, len), 0);
		evil_kick(&e);
		assert_int_equal(cdt_chan_recv(e.layer, &got), 0);
		cdt_msg_free(got);
		assert_int_equal(ring_put(&e.tx, e.ctr + (uint64_t)relabel, w, len), 0);
		free(w);
		e.ctr++;
		evil_kick(&e);
		int err = relabel ? -CDT_E_AUTH : -CDT_E_PROTO;
		assert_int_equal(cdt_chan_recv(e.layer, &got), err);
		assert_dead(&e, err);
		evil_free(&e);
	}

	/* A ring record that is not a frame at all. */
	got = NULL;
	evil_new(&e);
	evil_switch(&e);
	uint8_t junk[FRAME_OVERHEAD] = {0};
	assert_int_equal(ring_put(&e.tx, e.ctr, junk, sizeof(junk)), 0);
	evil_kick(&e);
	assert_true(cdt_chan_recv(e.layer, &got) < 0 && got == NULL);
	evil_free(&e);

	/* The shared control word says more than a ring's worth. */
	evil_new(&e);
	evil_switch(&e);
	atomic_store(&e.tx.ctl->head, RING_DATA_SIZE + 8);
	evil_kick(&e);
	assert_int_equal(cdt_chan_recv(e.layer, &got), -CDT_E_PROTO);
	evil_free(&e);
	cdt_msg_free(m);
}

/* A second offer after the switch, over the socket or inside the ring. */
static void test_evil_second_offer(void **state)
{
	(void)state;
	struct evil e;
	cdt_msg *got = NULL;

	evil_new(&e);
	evil_switch(&e);
	int mp[2];
	assert_int_equal(pipe2(mp, O_CLOEXEC), 0);
	int more[3] = {memfd_new(RING_SHM_SIZE, F_SEAL_SHRINK | F_SEAL_GROW), mp[0],
		       eventfd(0, EFD_CLOEXEC)};
	offer_inject(&e, e.b2l, more, 3, more, RING_DATA_SIZE, RING_REC_MAX, OFFER_PLEN);
	for (size_t i = 0; i < 3; i++)
		close(more[i]);
	close(mp[1]);
	/* Not announced: the layer does not even look. */
	assert_int_equal(cdt_chan_recv(e.layer, &got), -EAGAIN);
	evil_kick(&e);
	assert_int_equal(cdt_chan_recv(e.layer, &got), -CDT_E_PROTO);
	assert_dead(&e, -CDT_E_PROTO);
	evil_free(&e);

	evil_new(&e);
	evil_switch(&e);
	uint8_t wire[FRAME_OVERHEAD];
	frame_seal(e.b2l, e.ctr, FRAME_RING, 0, 0, NULL, 0, wire);
	assert_int_equal(ring_put(&e.tx, e.ctr, wire, sizeof(wire)), 0);
	e.ctr++;
	evil_kick(&e);
	assert_int_equal(cdt_chan_recv(e.layer, &got), -CDT_E_PROTO);
	assert_dead(&e, -CDT_E_PROTO);
	evil_free(&e);
}

/* One malformed offer: the layer refuses it with err, closes every fd
 * that came with it, and stays on the socket. */
#define bad_offer(...) bad_offer_at(__LINE__, __VA_ARGS__)
static void bad_offer_at(int line, const int *fds, size_t nfds, const int *ids, uint32_t size,
			 uint32_t rec_max, size_t plen, int err)
{
	struct evil e;
	cdt_msg *got = NULL;
	evil_new(&e);
	offer_inject(&e, e.b2l, fds ? fds : e.fds, nfds, ids ? ids : e.fds, size, rec_max, plen);
	int r = cdt_chan_recv(e.layer, &got);
	if (r != err)
		fail_msg("offer at line %d: %s, want %s", line, cdt_strerror(r), cdt_strerror(err));
	assert_null(e.layer->ring);
	assert_dead(&e, err);
	evil_free(&e);
}

static void test_evil_offer(void **state)
{
	(void)state;
	size_t before = fd_count();

	/* Geometry: each word off by one either way. */
	bad_offer(NULL, 3, NULL, RING_DATA_SIZE * 2, RING_REC_MAX, OFFER_PLEN, -CDT_E_VERSION);
	bad_offer(NULL, 3, NULL, RING_DATA_SIZE - 1, RING_REC_MAX, OFFER_PLEN, -CDT_E_VERSION);
	bad_offer(NULL, 3, NULL, RING_DATA_SIZE, RING_REC_MAX + 1, OFFER_PLEN, -CDT_E_VERSION);
	bad_offer(NULL, 3, NULL, RING_DATA_SIZE, RING_REC_MAX - 1, OFFER_PLEN, -CDT_E_VERSION);
	/* Truncated, trailing, empty. */
	bad_offer(NULL, 3, NULL, RING_DATA_SIZE, RING_REC_MAX, OFFER_PLEN - 1, -CDT_E_PROTO);
	bad_offer(NULL, 3, NULL, RING_DATA_SIZE, RING_REC_MAX, OFFER_PLEN + 1, -CDT_E_PROTO);
	bad_offer(NULL, 0, NULL, RING_DATA_SIZE, RING_REC_MAX, 0, -CDT_E_PROTO);
	/* Two fds, and four. */
	bad_offer(NULL, 2, NULL, RING_DATA_SIZE, RING_REC_MAX, OFFER_PLEN, -CDT_E_PROTO);
	int ev = eventfd(0, EFD_CLOEXEC);
	struct evil tmp;
	evil_new(&tmp);
	int four[4] = {tmp.fds[0], tmp.fds[1], tmp.fds[2], ev};
	bad_offer(four, 4, tmp.fds, RING_DATA_SIZE, RING_REC_MAX, OFFER_PLEN, -CDT_E_PROTO);

	/* The memfd: not sealed against shrinking (or growing), or its size
	 * one page off. */
	const struct {
		size_t size;
		unsigned seals;
	} mem[] = {
		{RING_SHM_SIZE, 0},
		{RING_SHM_SIZE, F_SEAL_GROW | F_SEAL_SEAL},
		{RING_SHM_SIZE, F_SEAL_SHRINK | F_SEAL_SEAL},
		{RING_SHM_SIZE - 4096, F_SEAL_SHRINK | F_SEAL_GROW},
		{RING_SHM_SIZE + 4096, F_SEAL_SHRINK | F_SEAL_GROW},
		{RING_SHM_SIZE - 1, F_SEAL_SHRINK | F_SEAL_GROW},
		{0, F_SEAL_SHRINK | F_SEAL_GROW},
		{RING_SHM_SIZE, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE},
		{RING_SHM_SIZE, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE},
	};
	for (size_t i = 0; i < sizeof(mem) / sizeof(mem[0]); i++) {
		int fds[3] = {memfd_new(mem[i].size, mem[i].seals), tmp.fds[1], tmp.fds[2]};
		bad_offer(fds, 3, fds, RING_DATA_SIZE, RING_REC_MAX, OFFER_PLEN, -CDT_E_FD);
		close(fds[0]);
	}
	/* The right memfd, reopened read-only: the layer cannot map it
	 * for writing. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", tmp.fds[0]);
	int ro[3] = {open(path, O_RDONLY | O_CLOEXEC), tmp.fds[1], tmp.fds[2]};
	assert_true(ro[0] >= 0);
	bad_offer(ro, 3, ro, RING_DATA_SIZE, RING_REC_MAX, OFFER_PLEN, -CDT_E_FD);
	close(ro[0]);

	/* In the pipe's slot: its write end, an eventfd, a socket, /dev/null
	 * or the memfd; in the eventfd's slot: either end of a pipe, a
	 * socket, /dev/null or the memfd. */
	int p[2], sp[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	const int wrong[2][5] = {{p[1], ev, sp[0], null, tmp.fds[0]},
				 {p[0], p[1], sp[0], null, tmp.fds[0]}};
	for (size_t slot = 1; slot < 3; slot++) {
		for (size_t i = 0; i < 5; i++) {
			int fds[3] = {tmp.fds[0], tmp.fds[1], tmp.fds[2]};
			fds[slot] = wrong[slot - 1][i];
			bad_offer(fds, 3, fds, RING_DATA_SIZE, RING_REC_MAX, OFFER_PLEN, -CDT_E_FD);
		}
	}
	int swapped[3] = {tmp.fds[1], tmp.fds[0], tmp.fds[2]};
	bad_offer(swapped, 3, swapped, RING_DATA_SIZE, RING_REC_MAX, OFFER_PLEN, -CDT_E_FD);
	/* The identity of another memfd, as good as the one passed.  (The
	 * two eventfds cannot be told apart this way: every eventfd is the
	 * same anonymous inode.) */
	int other = memfd_new(RING_SHM_SIZE, F_SEAL_SHRINK | F_SEAL_GROW);
	int ids[3] = {other, tmp.fds[1], tmp.fds[2]};
	bad_offer(tmp.fds, 3, ids, RING_DATA_SIZE, RING_REC_MAX, OFFER_PLEN, -CDT_E_FD);
	close(other);
	close(p[0]);
	close(p[1]);
	close(sp[0]);
	close(sp[1]);
	close(null);
	evil_free(&tmp);
	close(ev);
	assert_int_equal(fd_count(), before);
}

/* The broker hears no offer, and only one acknowledgement. */
static void test_broker_refuses(void **state)
{
	(void)state;
	for (int how = 0; how < 4; how++) {
		struct evil e;
		cdt_chan *b;
		cdt_msg *got = NULL;
		int sv[2];

		evil_new(&e);
		assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
		assert_int_equal(cdt_chan_new(sv[0], e.keys, CDT_ROLE_BROKER, &b), 0);
		/* The raw end now plays the layer: it seals with l2b. */
		int raw = e.raw;
		e.raw = sv[1];
		if (how >= 2)
			assert_int_equal(chan_ring_offer(b), 0);
		switch (how) {
		case 0: /* an offer to the broker */
		case 2: /* the same, after the broker offered */
			offer_inject(&e, e.l2b, e.fds, 3, e.fds, RING_DATA_SIZE, RING_REC_MAX,
				     OFFER_PLEN);
			break;
		case 1: { /* an acknowledgement of nothing */
			uint8_t ack[FRAME_OVERHEAD];
			frame_seal(e.l2b, e.ctr++, FRAME_RING, 0, 0, NULL, 0, ack);
			inject(e.raw, ack, sizeof(ack), NULL, 0);
			break;
		}
		default: { /* an acknowledgement with a byte in it */
			uint8_t x = 0, ack[1 + FRAME_OVERHEAD];
			frame_seal(e.l2b, e.ctr++, FRAME_RING, 0, 0, &x, 1, ack);
			inject(e.raw, ack, sizeof(ack), NULL, 0);
			break;
		}
		}
		assert_int_equal(cdt_chan_recv(b, &got), -CDT_E_PROTO);
		assert_int_equal(cdt_chan_recv(b, &got), -CDT_E_PROTO);
		assert_null(got);
		cdt_chan_free(b);
		close(e.raw);
		e.raw = raw;
		evil_free(&e);
	}

	/* A second acknowledgement, after a real one. */
	cdt_keys *k = keys_fixed(test_suites[0]);
	size_t before = fd_count();
	cdt_chan *b, *l;
	cdt_msg *got = NULL;
	ring_pair(k, &b, &l);
	uint8_t ack[FRAME_OVERHEAD];
	frame_seal(l->tx, l->tx_ctr++, FRAME_RING, 0, 0, NULL, 0, ack);
	inject(l->fd, ack, sizeof(ack), NULL, 0);
	uint64_t one = 1;
	assert_int_equal(write(l->ring->kick_out, &one, sizeof(one)), sizeof(one));
	assert_int_equal(cdt_chan_recv(b, &got), -CDT_E_PROTO);
	cdt_chan_free(b);
	cdt_chan_free(l);
	assert_int_equal(fd_count(), before);
	cdt_keys_free(k);
}

/* A layer that makes every fd it holds blocking and never reads cannot
 * make the broker block: the broker announces through a pipe whose write
 * end is its own open file, so its sends end in backpressure (-ENOBUFS),
 * never in a write that waits.  With a shared eventfd the layer could
 * clear O_NONBLOCK and fill the counter, and the broker's next
 * announcement blocked for good. */
static void test_layer_cannot_block_broker(void **state)
{
	(void)state;
	cdt_keys *k = keys_fixed(test_suites[0]);
	size_t before = fd_count();
	cdt_chan *b, *l;
	int r = 0;

	ring_pair(k, &b, &l);
	assert_int_equal(fcntl(l->ring->kick_in, F_SETFL, 0), 0);
	assert_int_equal(fcntl(l->ring->kick_out, F_SETFL, 0), 0);
	assert_int_equal(fcntl(l->fd, F_SETFL, 0), 0);
	/* The smallest pipe there is. */
	assert_true(fcntl(l->ring->kick_in, F_SETPIPE_SZ, 4096) >= 4096);
	alarm(60);
	for (uint64_t i = 1; i < 1000000 && r == 0; i++) {
		cdt_msg *m = msg_bytes(i, 64);
		r = cdt_chan_send(b, m);
		cdt_msg_free(m);
	}
	alarm(0);
	assert_int_equal(r, -ENOBUFS);
	cdt_chan_free(b);
	cdt_chan_free(l);
	cdt_keys_free(k);
	assert_int_equal(fd_count(), before);
}

int main(void)
{
	/* The broker side of a ring announces through a pipe (chan.h). */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_switch),
		cmocka_unit_test(test_socket_frames_in_order),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_multiframe),
		cmocka_unit_test(test_fin),
		cmocka_unit_test(test_eof),
		cmocka_unit_test(test_timed_wait_wakes_on_exit),
		cmocka_unit_test(test_cross_process),
		cmocka_unit_test(test_offer_behind_queue),
		cmocka_unit_test(test_hostile_tail),
		cmocka_unit_test(test_hostile_layer),
		cmocka_unit_test(test_hup_behind_datagram),
		cmocka_unit_test(test_blocking_eventfd),
		cmocka_unit_test(test_layer_cannot_block_broker),
		cmocka_unit_test(test_evil_ring),
		cmocka_unit_test(test_evil_second_offer),
		cmocka_unit_test(test_evil_offer),
		cmocka_unit_test(test_broker_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
