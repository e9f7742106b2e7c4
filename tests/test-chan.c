/* SPDX-License-Identifier: MIT */
/* The secure channel: round trips, test vectors, fds, FIN/EOF, backpressure
 * and non-blocking behaviour.  Attacks are in test-chan-attack.c. */
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "chan-util.h"
#include "chan.h"
#include "keys.h"

static void roundtrip(const cdt_keys *keys, size_t n)
{
	cdt_chan *b, *l;
	cdt_msg *m = msg_bytes(42, n), *got = NULL;
	pair_new(keys, &b, &l);
	int r = cdt_chan_send(b, m);
	assert_true(r == 0);
	assert_int_equal(pump(b, l, &got), 0);
	msg_check_bytes(got, 42, n);
	cdt_msg_free(got);
	/* And back the other way, on the other direction's key. */
	assert_int_equal(cdt_chan_send(l, m), 0);
	assert_int_equal(pump(l, b, &got), 0);
	msg_check_bytes(got, 42, n);
	cdt_msg_free(got);
	assert_int_equal(cdt_chan_recv(l, &got), -EAGAIN);
	assert_int_equal(cdt_chan_queued(b), 0);
	cdt_msg_free(m);
	cdt_chan_free(b);
	cdt_chan_free(l);
}

static void test_roundtrip_sizes(void **state)
{
	(void)state;
	size_t ov = msg_bytes_overhead();
	/* n such that the first frame's plaintext is exactly P bytes */
	size_t at64k = CDT_FRAME_PLAIN_MAX - FRAME_LEN_SIZE - ov;
	const size_t sizes[] = {SIZE_MAX,
				0,
				64,
				at64k - 1,
				at64k,
				at64k + 1,
				3 * 65536 + 7,
				CDT_FRAME_PLAIN_MAX * 2 - FRAME_LEN_SIZE - ov};
	for (size_t s = 0; s < 2; s++) {
		if (!suite_ok(test_suites[s]))
			continue;
		cdt_keys *k;
		assert_int_equal(cdt_keys_new(test_suites[s], &k), 0);
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			roundtrip(k, sizes[i]);
		cdt_keys_free(k);
	}
}

static void test_roundtrip_16mib(void **state)
{
	(void)state;
	size_t max = CDT_MSG_MAX - msg_bytes_overhead();
	for (size_t s = 0; s < 2; s++) {
		if (!suite_ok(test_suites[s]))
			continue;
		cdt_keys *k;
		assert_int_equal(cdt_keys_new(test_suites[s], &k), 0);
		roundtrip(k, max);
		cdt_keys_free(k);
	}
	/* One byte more cannot even be built. */
	cdt_msg *m = msg_bytes(1, max);
	assert_int_equal(cdt_msg_encode(m, NULL, 0), CDT_MSG_MAX);
	assert_int_equal(cdt_msg_add_bool(m, "c", true), -E2BIG);
	cdt_msg_free(m);
}

/* Fixed secret 00..1f, broker -> layer, counter 0: CALL "t.x" id 1 with
 * bytes "b" = 00 01 02 03; counter 1: FIN.  docs/protocol.md section 7. */
static const char *const vec_data[2] = {
	/* XChaCha20-Poly1305 */
	"010100002f000000ee15b36ad011314edab1640ace0a298320b3230dc4fc28a3efa682dc507ba809b59a7e"
	"117921d27786d20da02d01d5",
	/* AES-256-GCM */
	"010100002f0000001db5ad72a8d8eb9d6026e03828ea3717ec1ea2905a36172890fc2ac292ae2f2c421dda"
	"61042b02ed2a15c47a7da2a1",
};
static const char *const vec_fin[2] = {
	"0102000010000000f861aff883a226a44983fefebfeaf9e3",
	"0102000010000000147f11492cf61dd71005ff0128536e4b",
};

static void to_hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

static void test_vectors(void **state)
{
	(void)state;
	for (size_t s = 0; s < 2; s++) {
		if (!suite_ok(test_suites[s]))
			continue;
		cdt_keys *k = keys_fixed(test_suites[s]);
		cdt_chan *b, *l;
		cdt_msg *m, *got;
		uint8_t dg[256];
		char hex[513];
		int sv[2];
		assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
		assert_int_equal(cdt_chan_new(sv[0], k, CDT_ROLE_BROKER, &b), 0);
		assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 1, "t.x", &m), 0);
		assert_int_equal(cdt_msg_add_bytes(m, "b", "\x00\x01\x02\x03", 4), 0);
		assert_int_equal(cdt_chan_send(b, m), 0);
		assert_int_equal(cdt_chan_close(b), 0);
		ssize_t n = recv(sv[1], dg, sizeof(dg), 0);
		assert_true(n > 0);
		to_hex(dg, (size_t)n, hex);
		if (getenv("CDT_PRINT_VECTORS"))
			printf("suite %d data %s\n", test_suites[s], hex);
		assert_string_equal(hex, vec_data[s]);
		/* The layer side opens the very same bytes. */
		int lv[2];
		assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, lv), 0);
		assert_int_equal(cdt_chan_new(lv[1], k, CDT_ROLE_LAYER, &l), 0);
		inject(lv[0], dg, (size_t)n, NULL, 0);
		n = recv(sv[1], dg, sizeof(dg), 0);
		assert_int_equal(n, FRAME_OVERHEAD);
		to_hex(dg, (size_t)n, hex);
		if (getenv("CDT_PRINT_VECTORS"))
			printf("suite %d fin %s\n", test_suites[s], hex);
		assert_string_equal(hex, vec_fin[s]);
		inject(lv[0], dg, (size_t)n, NULL, 0);
		assert_int_equal(cdt_chan_recv(l, &got), 0);
		const uint8_t *p;
		size_t len;
		assert_int_equal(cdt_msg_get_bytes(got, "b", &p, &len), 0);
		assert_int_equal(len, 4);
		assert_memory_equal(p, "\x00\x01\x02\x03", 4);
		cdt_msg_free(got);
		assert_int_equal(cdt_chan_recv(l, &got), -CDT_E_CLOSED);
		close(sv[1]);
		close(lv[0]);
		cdt_msg_free(m);
		cdt_chan_free(b);
		cdt_chan_free(l);
		cdt_keys_free(k);
	}
}

static void test_fin_then_closed(void **state)
{
	(void)state;
	cdt_keys *k = keys_fixed(CDT_SUITE_XCHACHA20POLY1305);
	cdt_chan *b, *l;
	cdt_msg *m = msg_bytes(7, 10), *got;
	pair_new(k, &b, &l);
	assert_int_equal(cdt_chan_send(b, m), 0);
	assert_int_equal(cdt_chan_close(b), 0);
	assert_int_equal(cdt_chan_close(b), 0); /* idempotent */
	assert_int_equal(cdt_chan_send(b, m), -CDT_E_CLOSED);
	/* Messages before the FIN still arrive, then CLOSED for good. */
	assert_int_equal(cdt_chan_recv(l, &got), 0);
	msg_check_bytes(got, 7, 10);
	cdt_msg_free(got);
	assert_int_equal(cdt_chan_recv(l, &got), -CDT_E_CLOSED);
	assert_int_equal(cdt_chan_recv(l, &got), -CDT_E_CLOSED);
	/* Half-close: the layer may still answer. */
	assert_int_equal(cdt_chan_send(l, m), 0);
	assert_int_equal(cdt_chan_recv(b, &got), 0);
	cdt_msg_free(got);
	cdt_msg_free(m);
	cdt_chan_free(b);
	cdt_chan_free(l);
	cdt_keys_free(k);
}

static void test_eof_without_fin(void **state)
{
	(void)state;
	cdt_keys *k = keys_fixed(CDT_SUITE_XCHACHA20POLY1305);
	cdt_chan *b, *l;
	cdt_msg *got;
	pair_new(k, &b, &l);
	cdt_chan_free(b);
	assert_int_equal(cdt_chan_recv(l, &got), -CDT_E_EOF);
	assert_int_equal(cdt_chan_recv(l, &got), -CDT_E_EOF);
	cdt_msg *m = msg_bytes(1, 1);
	assert_int_equal(cdt_chan_send(l, m), -CDT_E_EOF);
	cdt_chan_free(l);

	/* EOF in the middle of a message is truncation, not a clean close. */
	pair_new(k, &b, &l);
	cdt_msg_free(m);
	m = msg_bytes(1, 3000000);
	assert_int_equal(cdt_chan_send(b, m), 0);
	assert_int_equal(cdt_chan_recv(l, &got), -EAGAIN);
	assert_true(cdt_chan_rx_partial(l));
	cdt_chan_free(b);
	assert_int_equal(cdt_chan_recv(l, &got), -CDT_E_EOF);
	cdt_chan_free(l);
	cdt_msg_free(m);
	cdt_keys_free(k);
}

static void test_send_after_peer_gone(void **state)
{
	(void)state;
	cdt_keys *k = keys_fixed(CDT_SUITE_XCHACHA20POLY1305);
	cdt_chan *b, *l;
	cdt_msg *m = msg_bytes(1, 1);
	pair_new(k, &b, &l);
	cdt_chan_free(l);
	/* MSG_NOSIGNAL: -EPIPE, no SIGPIPE (which would kill the test). */
	assert_int_equal(cdt_chan_send(b, m), -EPIPE);
	assert_int_equal(cdt_chan_send(b, m), -EPIPE);
	assert_int_equal(cdt_chan_flush(b), -EPIPE);
	cdt_chan_free(b);
	cdt_msg_free(m);
	cdt_keys_free(k);
}

static int open_kind(int i, int *extra)
{
	int p[2];
	switch (i) {
	case 0:
		return open("/dev/null", O_RDONLY | O_CLOEXEC);
	case 1:
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		*extra = p[1];
		return p[0];
	case 2:
		return open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	default:
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p), 0);
		*extra = p[1];
		return p[0];
	}
}

static void test_pass_fds(void **state)
{
	(void)state;
	cdt_keys *k = keys_fixed(CDT_SUITE_AES256GCM);
	size_t before = fd_count();
	for (int nfds = 1; nfds <= CDT_FDS_MAX; nfds++) {
		cdt_chan *b, *l;
		cdt_msg *m, *got;
		int fds[CDT_FDS_MAX], extra[CDT_FDS_MAX];
		pair_new(k, &b, &l);
		assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 5, "dev.open", &m), 0);
		for (int i = 0; i < nfds; i++) {
			char name[8];
			extra[i] = -1;
			fds[i] = open_kind(i, &extra[i]);
			assert_true(fds[i] >= 0);
			snprintf(name, sizeof(name), "f%d", i);
			assert_int_equal(cdt_msg_add_fd(m, name, fds[i]), 0);
		}
		assert_int_equal(cdt_chan_send(b, m), 0);
		assert_int_equal(cdt_chan_recv(l, &got), 0);
		assert_int_equal(cdt_msg_nfds(got), nfds);
		for (int i = 0; i < nfds; i++) {
			char name[8];
			struct cdt_arg a;
			struct stat s1, s2;
			snprintf(name, sizeof(name), "f%d", i);
			assert_int_equal(cdt_msg_find(got, name, &a), 0);
			assert_int_equal(a.type, CDT_TYPE_FD);
			assert_int_equal(fstat(fds[i], &s1), 0);
			assert_int_equal(fstat(a.v.fd, &s2), 0);
			assert_int_equal(s1.st_dev, s2.st_dev);
			assert_int_equal(s1.st_ino, s2.st_ino);
			assert_true(fcntl(a.v.fd, F_GETFD) & FD_CLOEXEC);
		}
		cdt_msg_free(got);
		cdt_msg_free(m);
		for (int i = 0; i < nfds; i++) {
			close(fds[i]);
			if (extra[i] >= 0)
				close(extra[i]);
		}
		cdt_chan_free(b);
		cdt_chan_free(l);
	}
	/* A fifth fd is refused when the message is built. */
	cdt_msg *m;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 5, "dev.open", &m), 0);
	for (int i = 0; i < CDT_FDS_MAX; i++) {
		char name[8];
		snprintf(name, sizeof(name), "f%d", i);
		assert_int_equal(cdt_msg_add_fd(m, name, fd), 0);
	}
	assert_int_equal(cdt_msg_add_fd(m, "f9", fd), -E2BIG);
	cdt_msg_free(m);
	close(fd);
	assert_int_equal(fd_count(), before);
	cdt_keys_free(k);
}

/* The peer does not read: sends queue up to the cap, never beyond, then
 * everything arrives in order once it drains. */
static void test_backpressure(void **state)
{
	(void)state;
	cdt_keys *k = keys_fixed(CDT_SUITE_XCHACHA20POLY1305);
	const size_t caps[] = {0, 100000, 1000000};
	for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
		cdt_chan *b, *l;
		cdt_msg *got;
		uint64_t sent = 0;
		pair_new(k, &b, &l);
		if (caps[c])
			cdt_chan_set_queue_cap(b, caps[c]);
		size_t cap = caps[c] ? caps[c] : chan_wire_size(CDT_MSG_MAX, CDT_FDS_MAX);
		int r;
		for (;;) {
			cdt_msg *m = msg_bytes(sent + 1, 30000);
			r = cdt_chan_send(b, m);
			cdt_msg_free(m);
			assert_true(cdt_chan_queued(b) <= cap);
			if (r == -ENOBUFS)
				break;
			assert_int_equal(r, 0);
			sent++;
			assert_true(sent < 100000);
		}
		assert_true(cdt_chan_want_write(b));
		size_t q = cdt_chan_queued(b);
		assert_int_equal(cdt_chan_flush(b), -EAGAIN);
		/* Refused: nothing queued, counter unchanged (the next frame opens). */
		assert_int_equal(cdt_chan_queued(b), q);
		/* FIN goes in behind them even at the cap; it waits its turn. */
		assert_int_equal(cdt_chan_close(b), -EAGAIN);
		assert_int_equal(cdt_chan_queued(b), q + FRAME_OVERHEAD);
		for (uint64_t i = 1; i <= sent; i++) {
			assert_int_equal(pump(b, l, &got), 0);
			msg_check_bytes(got, i, 30000);
			cdt_msg_free(got);
		}
		assert_int_equal(pump(b, l, &got), -CDT_E_CLOSED);
		assert_int_equal(cdt_chan_flush(b), 0);
		assert_false(cdt_chan_want_write(b));
		assert_int_equal(cdt_chan_queued(b), 0);
		cdt_msg *m = msg_bytes(sent + 1, 5);
		assert_int_equal(cdt_chan_send(b, m), -CDT_E_CLOSED);
		cdt_msg_free(m);
		cdt_chan_free(b);
		cdt_chan_free(l);
	}
	cdt_keys_free(k);
}

/* fds of a message that has to wait in the queue are duplicated: the
 * caller may close its own right after cdt_chan_send(). */
static void test_queued_fds(void **state)
{
	(void)state;
	cdt_keys *k = keys_fixed(CDT_SUITE_AES256GCM);
	cdt_chan *b, *l;
	cdt_msg *m, *got;
	size_t before = fd_count();
	uint64_t n = 0;
	struct stat want, st;
	pair_new(k, &b, &l);
	while (!cdt_chan_want_write(b)) {
		m = msg_bytes(++n, 30000);
		assert_int_equal(cdt_chan_send(b, m), 0);
		cdt_msg_free(m);
	}
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_int_equal(fstat(fd, &want), 0);
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, ++n, "t.x", &m), 0);
	assert_int_equal(cdt_msg_add_fd(m, "fd", fd), 0);
	assert_int_equal(cdt_chan_send(b, m), 0);
	cdt_msg_free(m);
	close(fd);
	for (uint64_t i = 1; i < n; i++) {
		assert_int_equal(pump(b, l, &got), 0);
		msg_check_bytes(got, i, 30000);
		cdt_msg_free(got);
	}
	assert_int_equal(pump(b, l, &got), 0);
	assert_int_equal(cdt_msg_call_id(got), n);
	assert_int_equal(cdt_msg_take_fd(got, "fd", &fd), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_ino, want.st_ino);
	assert_int_equal(st.st_dev, want.st_dev);
	close(fd);
	cdt_msg_free(got);
	cdt_chan_free(b);
	cdt_chan_free(l);
	cdt_keys_free(k);
	assert_int_equal(fd_count(), before);
}

/* Local refusals (a message that cannot be encoded) leave the channel as
 * it was: the next message still goes through. */
static void test_local_errors_not_fatal(void **state)
{
	(void)state;
	cdt_keys *k = keys_fixed(CDT_SUITE_XCHACHA20POLY1305);
	cdt_chan *b, *l;
	cdt_msg *m, *got;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC), taken;
	pair_new(k, &b, &l);
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 1, "t.x", &m), 0);
	assert_int_equal(cdt_msg_add_fd(m, "fd", fd), 0);
	assert_int_equal(cdt_msg_take_fd(m, "fd", &taken), 0);
	assert_int_equal(cdt_chan_send(b, m), -EBADF);
	assert_int_equal(cdt_chan_send(b, NULL), -EINVAL);
	assert_int_equal(cdt_chan_recv(l, NULL), -EINVAL);
	cdt_msg_free(m);
	close(taken);
	close(fd);
	m = msg_bytes(2, 10);
	assert_int_equal(cdt_chan_send(b, m), 0);
	assert_int_equal(cdt_chan_recv(l, &got), 0);
	msg_check_bytes(got, 2, 10);
	cdt_msg_free(got);
	cdt_msg_free(m);
	cdt_chan_free(b);
	cdt_chan_free(l);
	cdt_keys_free(k);
}

/* A message larger than the cap is refused even on an empty queue. */
static void test_cap_smaller_than_message(void **state)
{
	(void)state;
	cdt_keys *k = keys_fixed(CDT_SUITE_XCHACHA20POLY1305);
	cdt_chan *b, *l;
	cdt_msg *m = msg_bytes(1, 100), *got;
	pair_new(k, &b, &l);
	long len = cdt_msg_encode(m, NULL, 0);
	size_t wire = chan_wire_size((size_t)len, 0);
	cdt_chan_set_queue_cap(b, wire - 1);
	assert_int_equal(cdt_chan_send(b, m), -ENOBUFS);
	cdt_chan_set_queue_cap(b, wire);
	assert_int_equal(cdt_chan_send(b, m), 0);
	assert_int_equal(cdt_chan_recv(l, &got), 0);
	cdt_msg_free(got);
	cdt_msg_free(m);
	cdt_chan_free(b);
	cdt_chan_free(l);
	cdt_keys_free(k);
}

static void test_nonblocking(void **state)
{
	(void)state;
	cdt_keys *k = keys_fixed(CDT_SUITE_XCHACHA20POLY1305);
	cdt_chan *b, *l;
	cdt_msg *got, *m = msg_bytes(3, 1000);
	pair_new(k, &b, &l);
	assert_int_equal(cdt_chan_recv(l, &got), -EAGAIN);
	assert_int_equal(cdt_chan_recv(l, &got), -EAGAIN);
	assert_false(cdt_chan_rx_partial(l));
	assert_int_equal(cdt_chan_flush(b), 0);
	assert_false(cdt_chan_want_write(b));
	/* Blocking socket, yet every non-blocking call returned -EAGAIN. */
	assert_false(fcntl(cdt_chan_fd(l), F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(cdt_chan_fd(l), F_GETFD) & FD_CLOEXEC);
	/* Blocking helpers: nothing there within 0 ms is a timeout. */
	assert_int_equal(cdt_chan_recv_wait(l, &got, 0), -ETIMEDOUT);
	assert_int_equal(cdt_chan_send_wait(b, m, -1), 0);
	assert_int_equal(cdt_chan_recv_wait(l, &got, -1), 0);
	msg_check_bytes(got, 3, 1000);
	cdt_msg_free(got);
	cdt_msg_free(m);
	/* A message bigger than the socket buffer through the helpers, with
	 * the reader in a child process. */
	m = msg_bytes(4, 3000000);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int r = cdt_chan_recv_wait(l, &got, 20000);
		if (r == 0) {
			msg_check_bytes(got, 4, 3000000);
			cdt_msg_free(got);
		}
		cdt_msg_free(m);
		cdt_chan_free(b);
		cdt_chan_free(l);
		cdt_keys_free(k);
		_exit(r == 0 ? 0 : 1);
	}
	assert_int_equal(cdt_chan_send_wait(b, m, 20000), 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cdt_msg_free(m);

	/* On an O_NONBLOCK socket the blocking receive falls back to poll().
	 * A fresh pair: the reader child above consumed frames this process's
	 * copy of l never saw, so its counter is behind (and must be). */
	cdt_chan_free(b);
	cdt_chan_free(l);
	pair_new(k, &b, &l);
	int fl = fcntl(cdt_chan_fd(l), F_GETFL);
	assert_int_equal(fcntl(cdt_chan_fd(l), F_SETFL, fl | O_NONBLOCK), 0);
	m = msg_bytes(5, 100);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int r = cdt_chan_send_wait(b, m, 20000);
		cdt_msg_free(m);
		cdt_chan_free(b);
		cdt_chan_free(l);
		cdt_keys_free(k);
		_exit(r == 0 ? 0 : 1);
	}
	assert_int_equal(cdt_chan_recv_wait(l, &got, -1), 0);
	msg_check_bytes(got, 5, 100);
	cdt_msg_free(got);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cdt_msg_free(m);
	cdt_chan_free(b);
	cdt_chan_free(l);
	cdt_keys_free(k);
}

/* Request then answer with a deadline: the receive waits before reading
 * (the answer is rarely there yet), and still takes an answer that is
 * already there, answers that arrive later, and times out on none. */
static void test_request_answer(void **state)
{
	(void)state;
	cdt_keys *k = keys_fixed(CDT_SUITE_XCHACHA20POLY1305);
	cdt_chan *b, *l;
	cdt_msg *got, *m = msg_bytes(7, 64), *big = msg_bytes(8, 200000);
	int st;
	pair_new(k, &b, &l);
	/* Answer already waiting. */
	assert_int_equal(cdt_chan_send_wait(l, m, 1000), 0);
	assert_int_equal(cdt_chan_recv_wait(b, &got, 1000), 0);
	cdt_msg_free(got);
	assert_int_equal(cdt_chan_send_wait(b, m, 1000), 0);
	assert_int_equal(cdt_chan_recv_wait(l, &got, 1000), 0);
	msg_check_bytes(got, 7, 64);
	cdt_msg_free(got);
	/* No answer: the deadline holds. */
	assert_int_equal(cdt_chan_send_wait(l, m, 1000), 0);
	assert_int_equal(cdt_chan_recv_wait(l, &got, 0), -ETIMEDOUT);
	assert_int_equal(cdt_chan_recv_wait(b, &got, 1000), 0);
	cdt_msg_free(got);
	/* Answers from another process, one of several frames. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int r = 0;
		for (int i = 0; i < 50 && r == 0; i++) {
			r = cdt_chan_recv_wait(b, &got, 20000);
			if (r == 0) {
				cdt_msg_free(got);
				r = cdt_chan_send_wait(b, i % 10 ? m : big, 20000);
			}
		}
		cdt_msg_free(m);
		cdt_msg_free(big);
		cdt_chan_free(b);
		cdt_chan_free(l);
		cdt_keys_free(k);
		_exit(r == 0 ? 0 : 1);
	}
	for (int i = 0; i < 50; i++) {
		assert_int_equal(cdt_chan_send_wait(l, m, 20000), 0);
		assert_int_equal(cdt_chan_recv_wait(l, &got, 20000), 0);
		msg_check_bytes(got, i % 10 ? 7 : 8, i % 10 ? 64 : 200000);
		cdt_msg_free(got);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cdt_msg_free(m);
	cdt_msg_free(big);
	cdt_chan_free(b);
	cdt_chan_free(l);
	cdt_keys_free(k);
}

static void test_new_bad_socket(void **state)
{
	(void)state;
	cdt_keys *k = keys_fixed(CDT_SUITE_XCHACHA20POLY1305);
	cdt_chan *c = NULL;
	int sv[2];
	size_t before = fd_count();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(cdt_chan_new(sv[0], k, CDT_ROLE_BROKER, &c), -EPROTOTYPE);
	close(sv[1]);
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_int_equal(cdt_chan_new(fd, k, CDT_ROLE_BROKER, &c), -ENOTSOCK);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(cdt_chan_new(sv[0], k, (enum cdt_role)3, &c), -EINVAL);
	close(sv[1]);
	assert_null(c);
	/* The channel owned every fd it was given, also on failure. */
	assert_int_equal(fd_count(), before);
	cdt_chan_free(NULL);
	cdt_keys_free(k);
}

/* Free with frames and fds still queued and half a message received: the
 * sanitizer and valgrind runs check that nothing leaks. */
static void test_free_busy(void **state)
{
	(void)state;
	cdt_keys *k = keys_fixed(CDT_SUITE_AES256GCM);
	cdt_chan *b, *l;
	cdt_msg *m, *got;
	size_t before = fd_count();
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pair_new(k, &b, &l);
	cdt_keys_free(k); /* the channel keeps its own derived keys */
	m = msg_bytes(1, 1000000);
	assert_int_equal(cdt_chan_send(b, m), 0);
	assert_int_equal(cdt_chan_send(b, m), 0);
	assert_true(cdt_chan_queued(b) > 0);
	assert_int_equal(cdt_chan_recv(l, &got), -EAGAIN);
	assert_true(cdt_chan_rx_partial(l));
	cdt_msg_free(m);
	/* fds in the queue too */
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 6, "with.fd", &m), 0);
	assert_int_equal(cdt_msg_add_fd(m, "fd", fd), 0);
	assert_int_equal(cdt_chan_send(b, m), 0);
	cdt_msg_free(m);
	close(fd);
	cdt_chan_free(b);
	cdt_chan_free(l);
	assert_int_equal(fd_count(), before);
}

/* One ready event per frame: over the rings, a poller that takes one
 * message per wake-up (the broker) or a bounded batch must be woken again
 * while frames wait.  Reading every announcement at once left pipelined
 * frames unannounced and stalled them for seconds. */
static int ring_recv_polled(cdt_chan *chan, int fd, cdt_msg **ret_msg)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r = poll(&p, 1, 2000);
	assert_int_equal(r, 1);
	return cdt_chan_recv(chan, ret_msg);
}

static void test_ring_level_triggered(void **state)
{
	cdt_keys *keys = keys_fixed(suite_ok(test_suites[1]) ? test_suites[1] : test_suites[0]);
	cdt_chan *b, *l;
	cdt_msg *m = NULL;
	enum { N = 64 };

	(void)state;
	pair_new(keys, &b, &l);
	assert_int_equal(chan_ring_offer(b), 0);
	/* The layer takes the offer and acknowledges; the broker reads the
	 * acknowledgement off the socket. */
	assert_int_equal(cdt_chan_recv(l, &m), -EAGAIN);
	assert_int_equal(cdt_chan_recv(b, &m), -EAGAIN);
	assert_true(b->ring && b->ring->rx_on && l->ring && l->ring->rx_on);

	for (uint64_t i = 1; i <= N; i++) {
		cdt_msg *out = msg_bytes(i, 16);
		assert_int_equal(cdt_chan_send(b, out), 0);
		cdt_msg_free(out);
	}
	for (uint64_t i = 1; i <= N; i++) {
		assert_int_equal(ring_recv_polled(l, cdt_chan_fd(l), &m), 0);
		msg_check_bytes(m, i, 16);
		cdt_msg_free(m);
	}
	for (uint64_t i = 1; i <= N; i++) {
		cdt_msg *out = msg_bytes(i, 16);
		assert_int_equal(cdt_chan_send(l, out), 0);
		cdt_msg_free(out);
	}
	for (uint64_t i = 1; i <= N; i++) {
		assert_int_equal(ring_recv_polled(b, chan_rx_fd(b), &m), 0);
		msg_check_bytes(m, i, 16);
		cdt_msg_free(m);
	}
	/* Nothing is left announced, and nothing is there. */
	struct pollfd p = {.fd = chan_rx_fd(b), .events = POLLIN};
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(cdt_chan_recv(b, &m), -EAGAIN);
	cdt_chan_free(b);
	cdt_chan_free(l);
	cdt_keys_free(keys);
}

int main(void)
{
	/* The broker side of a ring announces through a pipe (chan.h). */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_sizes),
		cmocka_unit_test(test_roundtrip_16mib),
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_fin_then_closed),
		cmocka_unit_test(test_eof_without_fin),
		cmocka_unit_test(test_send_after_peer_gone),
		cmocka_unit_test(test_pass_fds),
		cmocka_unit_test(test_backpressure),
		cmocka_unit_test(test_queued_fds),
		cmocka_unit_test(test_local_errors_not_fatal),
		cmocka_unit_test(test_cap_smaller_than_message),
		cmocka_unit_test(test_nonblocking),
		cmocka_unit_test(test_request_answer),
		cmocka_unit_test(test_new_bad_socket),
		cmocka_unit_test(test_free_busy),
		cmocka_unit_test(test_ring_level_triggered),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
