/* SPDX-License-Identifier: MIT */
/*
 * How each side of a ring channel is woken (docs/protocol.md section 3.1):
 * the broker's loop never reads announcements (chan_ring_edge) and takes
 * frames straight from the ring, so nothing a layer does to the eventfd
 * they share reaches it; a layer with nothing to send and no deadline
 * sleeps in read() on its pipe and still answers "nothing yet" at once to
 * a non-blocking receive afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "chan-util.h"
#include "chan.h"
#include "keys.h"
#include "ring.h"

static void send_bytes(cdt_chan *chan, uint64_t id, size_t n)
{
	cdt_msg *m = msg_bytes(id, n);
	assert_int_equal(cdt_chan_send(chan, m), 0);
	cdt_msg_free(m);
}

static void recv_bytes(cdt_chan *chan, uint64_t id, size_t n)
{
	cdt_msg *got = NULL;
	assert_int_equal(cdt_chan_recv(chan, &got), 0);
	msg_check_bytes(got, id, n);
	cdt_msg_free(got);
}

/* A broker in edge mode (set right after its offer, as the broker does)
 * and a layer, the rings on both ways. */
static void edge_pair(const cdt_keys *k, cdt_chan **ret_b, cdt_chan **ret_l)
{
	cdt_msg *got = NULL;

	pair_new(k, ret_b, ret_l);
	assert_int_equal(chan_ring_offer(*ret_b), 0);
	assert_int_equal(chan_ring_edge(*ret_b), 0);
	send_bytes(*ret_b, 1, 10);
	assert_int_equal(pump(*ret_b, *ret_l, &got), 0);
	msg_check_bytes(got, 1, 10);
	cdt_msg_free(got);
	got = NULL;
	send_bytes(*ret_l, 2, 10);
	assert_int_equal(pump(*ret_l, *ret_b, &got), 0);
	msg_check_bytes(got, 2, 10);
	cdt_msg_free(got);
	assert_true((*ret_b)->ring->rx_on && (*ret_b)->ring->rx_edge);
	assert_true((*ret_l)->ring->rx_on && !(*ret_l)->ring->rx_edge);
}

/* What the layer announced and the broker never took (drains it). */
static uint64_t announced(cdt_chan *l)
{
	uint64_t n = 0, v;

	/* The eventfd counts in semaphore mode: one per read. */
	while (read(l->ring->kick_out, &v, sizeof(v)) == sizeof(v))
		n++;
	assert_int_equal(errno, EAGAIN);
	return n;
}

static void test_edge_refused(void **state)
{
	cdt_keys *k = keys_fixed(test_suites[0]);
	size_t before = fd_count();
	cdt_chan *b, *l;

	(void)state;
	assert_int_equal(chan_ring_edge(NULL), -EINVAL);
	pair_new(k, &b, &l);
	/* No ring offered yet, and never on a layer's channel. */
	assert_int_equal(chan_ring_edge(b), -EINVAL);
	assert_false(chan_ring_pending(b));
	assert_int_equal(chan_ring_offer(b), 0);
	assert_int_equal(chan_ring_edge(l), -EINVAL);
	assert_int_equal(chan_ring_edge(b), 0);
	/* A record written into the broker's receiving ring before the
	 * layer acknowledged it is nothing the broker reads yet: not work
	 * pending (else its loop would call it again every turn, never
	 * sleeping). */
	struct ring in;
	ring_init(&in, b->ring->shm, 1);
	const uint8_t rec[FRAME_OVERHEAD] = {1};
	assert_int_equal(ring_put(&in, 0, rec, sizeof(rec)), 0);
	assert_false(b->ring->rx_on);
	assert_false(chan_ring_pending(b));
	cdt_msg *got = NULL;
	assert_int_equal(cdt_chan_recv(b, &got), -EAGAIN);
	cdt_chan_free(b);
	cdt_chan_free(l);
	cdt_keys_free(k);
	assert_int_equal(fd_count(), before);
}

/* Ring frames and a socket frame (it carries an fd) arrive in order; the
 * broker never read one announcement; chan_ring_pending says exactly when
 * a frame waits in the ring. */
static void test_edge_order(void **state)
{
	cdt_keys *k = keys_fixed(test_suites[0]);
	size_t before = fd_count();
	cdt_chan *b, *l;
	cdt_msg *m = NULL, *got = NULL;
	int efd = eventfd(0, EFD_CLOEXEC);

	(void)state;
	assert_true(efd >= 0);
	edge_pair(k, &b, &l);
	assert_false(chan_ring_pending(b));
	send_bytes(l, 3, 30);
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 4, "t.fd", &m), 0);
	assert_int_equal(cdt_msg_add_fd(m, "f", efd), 0);
	assert_int_equal(cdt_chan_send(l, m), 0);
	cdt_msg_free(m);
	send_bytes(l, 5, 50);
	send_bytes(l, 6, 60);

	assert_true(chan_ring_pending(b));
	recv_bytes(b, 3, 30);
	/* Frame 4 went over the socket: the ring's next record is frame 5. */
	assert_true(chan_ring_pending(b));
	assert_int_equal(cdt_chan_recv(b, &got), 0);
	assert_int_equal(cdt_msg_call_id(got), 4);
	assert_int_equal(cdt_msg_nfds(got), 1);
	cdt_msg_free(got);
	got = NULL;
	recv_bytes(b, 5, 50);
	assert_true(chan_ring_pending(b));
	recv_bytes(b, 6, 60);
	assert_false(chan_ring_pending(b));
	assert_int_equal(cdt_chan_recv(b, &got), -EAGAIN);
	assert_int_equal(chan_recv_more(b, &got), -EAGAIN);
	assert_null(got);
	/* Five announcements (frame 2 of the setup and frames 3-6), none
	 * taken. */
	assert_int_equal(announced(l), 5);
	close(efd);
	cdt_chan_free(b);
	cdt_chan_free(l);
	cdt_keys_free(k);
	assert_int_equal(fd_count(), before);
}

/* Announcements without frames, on an eventfd the layer made blocking and
 * then filled to its limit: the broker's receive says "nothing yet" at
 * once every time, keeps the channel, and takes the next honest frame
 * even though the layer can no longer announce it. */
static void test_edge_hostile_announcements(void **state)
{
	cdt_keys *k = keys_fixed(test_suites[0]);
	size_t before = fd_count();
	cdt_chan *b, *l;
	cdt_msg *got = NULL;
	uint64_t one = 1, most = UINT64_MAX - 1;

	(void)state;
	edge_pair(k, &b, &l);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(write(l->ring->kick_out, &one, sizeof(one)), sizeof(one));
	assert_int_equal(cdt_chan_recv(b, &got), -EAGAIN);
	assert_false(chan_ring_pending(b));
	send_bytes(l, 3, 30);
	recv_bytes(b, 3, 30);

	assert_true(announced(l) > 0);
	assert_int_equal(fcntl(l->ring->kick_out, F_SETFL, 0), 0);
	assert_int_equal(write(l->ring->kick_out, &most, sizeof(most)), sizeof(most));
	/* A hang would kill the test with SIGALRM. */
	alarm(60);
	assert_int_equal(cdt_chan_recv(b, &got), -EAGAIN);
	assert_int_equal(chan_recv_more(b, &got), -EAGAIN);
	/* The frame goes into the ring; its announcement could only block. */
	cdt_msg *m = msg_bytes(4, 40);
	size_t len;
	uint8_t *w = seal_msg(l->tx, l->tx_ctr, m, NULL, &len, NULL);
	assert_int_equal(ring_put(&l->ring->tx, l->tx_ctr, w, len), 0);
	free(w);
	cdt_msg_free(m);
	assert_true(chan_ring_pending(b));
	recv_bytes(b, 4, 40);
	assert_int_equal(cdt_chan_recv(b, &got), -EAGAIN);
	alarm(0);
	assert_null(got);
	cdt_chan_free(b);
	cdt_chan_free(l);
	cdt_keys_free(k);
	assert_int_equal(fd_count(), before);
}

/* A later frame in the ring while the one before it is nowhere is a
 * violation; so is a forged record; a hang-up, also in the middle of a
 * message that takes the socket, is the end. */
static void test_edge_violations(void **state)
{
	(void)state;
	for (int how = 0; how < 4; how++) {
		cdt_keys *k = keys_fixed(test_suites[0]);
		size_t before = fd_count();
		cdt_chan *b, *l;
		cdt_msg *got = NULL, *m = msg_bytes(7, how == 3 ? 3 * CDT_FRAME_PLAIN_MAX : 70);
		size_t len, frames;
		int want = -CDT_E_PROTO;

		edge_pair(k, &b, &l);
		uint8_t *w = seal_msg(l->tx, l->tx_ctr, m, NULL, &len, &frames);
		switch (how) {
		case 0: /* skips a counter */
			assert_int_equal(ring_put(&l->ring->tx, l->tx_ctr + 1, w, len), 0);
			break;
		case 1: /* forged bytes under the right counter */
			w[FRAME_HEADER_SIZE] ^= 0x80;
			assert_int_equal(ring_put(&l->ring->tx, l->tx_ctr, w, len), 0);
			want = -CDT_E_AUTH;
			break;
		case 2: /* hangs up */
			assert_int_equal(shutdown(l->fd, SHUT_RDWR), 0);
			want = -CDT_E_EOF;
			break;
		default: /* the first frame of three, then hangs up */
			assert_true(frames >= 2);
			assert_int_equal(send(l->fd, w, FRAME_MAX, 0), FRAME_MAX);
			assert_int_equal(shutdown(l->fd, SHUT_RDWR), 0);
			want = -CDT_E_EOF;
			break;
		}
		free(w);
		alarm(60);
		assert_int_equal(cdt_chan_recv(b, &got), want);
		assert_int_equal(cdt_chan_recv(b, &got), want);
		alarm(0);
		assert_null(got);
		cdt_msg_free(m);
		cdt_chan_free(b);
		cdt_chan_free(l);
		cdt_keys_free(k);
		assert_int_equal(fd_count(), before);
	}
}

/* A layer's blocking receive sleeps in read() on its pipe until a frame
 * comes (here from another process, a moment later), and the pipe is
 * non-blocking again for the next non-blocking receive, which says
 * "nothing yet" instead of sleeping.  Once the broker is gone, the pipe's
 * end of file ends a sleeping receive. */
static void test_layer_sleeps(void **state)
{
	cdt_keys *k = keys_fixed(test_suites[0]);
	size_t before = fd_count();
	cdt_chan *b, *l;
	cdt_msg *got = NULL;
	pid_t pid;
	int st;

	(void)state;
	edge_pair(k, &b, &l);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const struct timespec t = {0, 100 * 1000 * 1000};
		cdt_msg *m = msg_bytes(3, 30);
		nanosleep(&t, NULL);
		_exit(cdt_chan_send(b, m) == 0 ? 0 : 1);
	}
	alarm(60);
	assert_int_equal(cdt_chan_recv_wait(l, &got, -1), 0);
	msg_check_bytes(got, 3, 30);
	cdt_msg_free(got);
	got = NULL;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_true(l->ring->kick_block);
	assert_int_equal(fcntl(l->ring->kick_in, F_GETFL) & O_NONBLOCK, 0);
	assert_int_equal(cdt_chan_recv(l, &got), -EAGAIN);
	assert_false(l->ring->kick_block);
	assert_int_equal(fcntl(l->ring->kick_in, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
	cdt_chan_free(b);
	assert_int_equal(cdt_chan_recv_wait(l, &got, -1), -CDT_E_EOF);
	alarm(0);
	assert_null(got);
	cdt_chan_free(l);
	cdt_keys_free(k);
	assert_int_equal(fd_count(), before);
}

int main(void)
{
	/* The broker side of a ring announces through a pipe (chan.h). */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edge_refused),
		cmocka_unit_test(test_edge_order),
		cmocka_unit_test(test_edge_hostile_announcements),
		cmocka_unit_test(test_edge_violations),
		cmocka_unit_test(test_layer_sleeps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
