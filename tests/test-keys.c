/* SPDX-License-Identifier: MIT */
/* Per-spawn secrets and the key blob (docs/protocol.md section 2). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "conduit/conduit.h"
#include "keys.h"

static void blob_fixed(uint8_t blob[KEYS_BLOB_SIZE], uint8_t suite)
{
	memcpy(blob, "CDTK", 4);
	blob[4] = 1;
	blob[5] = suite;
	blob[6] = 0;
	blob[7] = 0;
	for (int i = 0; i < 32; i++)
		blob[8 + i] = (uint8_t)i;
}

/* Write len bytes into a pipe, close the write end, run cdt_keys_recv. */
static int recv_bytes(const uint8_t *p, size_t len, cdt_keys **ret)
{
	int pfd[2];
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	if (len)
		assert_int_equal(write(pfd[1], p, len), (ssize_t)len);
	close(pfd[1]);
	int r = cdt_keys_recv(pfd[0], ret);
	close(pfd[0]);
	return r;
}

static void test_init_idempotent(void **state)
{
	(void)state;
	assert_int_equal(cdt_init(), 0);
	assert_int_equal(cdt_init(), 0);
}

static void test_new_suites(void **state)
{
	(void)state;
	cdt_keys *k = NULL;
	assert_int_equal(cdt_keys_new(CDT_SUITE_XCHACHA20POLY1305, &k), 0);
	assert_int_equal(cdt_keys_suite(k), CDT_SUITE_XCHACHA20POLY1305);
	cdt_keys_free(k);

	assert_int_equal(cdt_keys_new(CDT_SUITE_AUTO, &k), 0);
	assert_int_equal(cdt_keys_suite(k), crypto_aead_aes256gcm_is_available()
						    ? CDT_SUITE_AES256GCM
						    : CDT_SUITE_XCHACHA20POLY1305);
	cdt_keys_free(k);

	k = NULL;
	int r = cdt_keys_new(CDT_SUITE_AES256GCM, &k);
	if (crypto_aead_aes256gcm_is_available()) {
		assert_int_equal(r, 0);
		assert_int_equal(cdt_keys_suite(k), CDT_SUITE_AES256GCM);
		cdt_keys_free(k);
	} else {
		assert_int_equal(r, -ENOTSUP);
		assert_null(k);
	}
	assert_int_equal(cdt_keys_new((enum cdt_suite)3, &k), -EINVAL);
	cdt_keys_free(NULL);
}

static void test_fresh_secrets_differ(void **state)
{
	(void)state;
	cdt_keys *a, *b;
	assert_int_equal(cdt_keys_new(CDT_SUITE_AUTO, &a), 0);
	assert_int_equal(cdt_keys_new(CDT_SUITE_AUTO, &b), 0);
	assert_memory_not_equal(a->secret, b->secret, KEYS_SECRET_SIZE);
	cdt_keys_free(a);
	cdt_keys_free(b);
}

static void roundtrip(int fds[2], enum cdt_suite suite)
{
	cdt_keys *k, *got = NULL;
	assert_int_equal(cdt_keys_new(suite, &k), 0);
	assert_int_equal(cdt_keys_send(k, fds[1]), 0);
	close(fds[1]);
	assert_int_equal(cdt_keys_recv(fds[0], &got), 0);
	close(fds[0]);
	assert_int_equal(cdt_keys_suite(got), cdt_keys_suite(k));
	assert_memory_equal(got->secret, k->secret, KEYS_SECRET_SIZE);
	cdt_keys_free(k);
	cdt_keys_free(got);
}

static void test_send_recv_pipe_and_socket(void **state)
{
	(void)state;
	int fds[2];
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	roundtrip(fds, CDT_SUITE_XCHACHA20POLY1305);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
	roundtrip(fds, CDT_SUITE_AUTO);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds), 0);
	roundtrip(fds, CDT_SUITE_AUTO);
	/* Non-blocking read end: the reader waits instead of failing. */
	assert_int_equal(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
	roundtrip(fds, CDT_SUITE_AUTO);
}

static void test_blob_exact(void **state)
{
	(void)state;
	uint8_t blob[KEYS_BLOB_SIZE];
	cdt_keys *k = NULL;
	blob_fixed(blob, CDT_SUITE_XCHACHA20POLY1305);
	assert_int_equal(recv_bytes(blob, sizeof(blob), &k), 0);
	assert_int_equal(cdt_keys_suite(k), CDT_SUITE_XCHACHA20POLY1305);
	assert_memory_equal(k->secret, blob + 8, KEYS_SECRET_SIZE);

	/* What cdt_keys_send writes is exactly the documented layout. */
	int pfd[2];
	uint8_t out[KEYS_BLOB_SIZE + 1];
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	assert_int_equal(cdt_keys_send(k, pfd[1]), 0);
	close(pfd[1]);
	assert_int_equal(read(pfd[0], out, sizeof(out)), KEYS_BLOB_SIZE);
	close(pfd[0]);
	assert_memory_equal(out, blob, KEYS_BLOB_SIZE);
	cdt_keys_free(k);
}

static void test_blob_every_short_length(void **state)
{
	(void)state;
	uint8_t blob[KEYS_BLOB_SIZE];
	blob_fixed(blob, CDT_SUITE_XCHACHA20POLY1305);
	for (size_t len = 0; len < KEYS_BLOB_SIZE; len++) {
		cdt_keys *k = NULL;
		assert_int_equal(recv_bytes(blob, len, &k), -CDT_E_TRUNCATED);
		assert_null(k);
	}
}

static void test_blob_trailing(void **state)
{
	(void)state;
	uint8_t blob[KEYS_BLOB_SIZE + 1];
	cdt_keys *k = NULL;
	blob_fixed(blob, CDT_SUITE_XCHACHA20POLY1305);
	blob[KEYS_BLOB_SIZE] = 0;
	assert_int_equal(recv_bytes(blob, sizeof(blob), &k), -CDT_E_TRAILING);
	assert_null(k);
}

static void test_blob_bad_fields(void **state)
{
	(void)state;
	uint8_t blob[KEYS_BLOB_SIZE];
	cdt_keys *k = NULL;

	blob_fixed(blob, CDT_SUITE_XCHACHA20POLY1305);
	blob[0] = 'X';
	assert_int_equal(recv_bytes(blob, sizeof(blob), &k), -CDT_E_PROTO);
	blob_fixed(blob, CDT_SUITE_XCHACHA20POLY1305);
	blob[3] = 'k';
	assert_int_equal(recv_bytes(blob, sizeof(blob), &k), -CDT_E_PROTO);
	blob_fixed(blob, CDT_SUITE_XCHACHA20POLY1305);
	blob[4] = 0;
	assert_int_equal(recv_bytes(blob, sizeof(blob), &k), -CDT_E_VERSION);
	blob[4] = 2;
	assert_int_equal(recv_bytes(blob, sizeof(blob), &k), -CDT_E_VERSION);
	/* AUTO is never on the wire; 3 and up are unknown. */
	blob_fixed(blob, CDT_SUITE_AUTO);
	assert_int_equal(recv_bytes(blob, sizeof(blob), &k), -CDT_E_VALUE);
	blob_fixed(blob, 3);
	assert_int_equal(recv_bytes(blob, sizeof(blob), &k), -CDT_E_VALUE);
	blob_fixed(blob, 0xff);
	assert_int_equal(recv_bytes(blob, sizeof(blob), &k), -CDT_E_VALUE);
	blob_fixed(blob, CDT_SUITE_XCHACHA20POLY1305);
	blob[6] = 1;
	assert_int_equal(recv_bytes(blob, sizeof(blob), &k), -CDT_E_PROTO);
	blob_fixed(blob, CDT_SUITE_XCHACHA20POLY1305);
	blob[7] = 0x80;
	assert_int_equal(recv_bytes(blob, sizeof(blob), &k), -CDT_E_PROTO);
	assert_null(k);
}

static void test_recv_bad_fd(void **state)
{
	(void)state;
	cdt_keys *k = NULL;
	assert_int_equal(cdt_keys_recv(-1, &k), -EINVAL);
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(cdt_keys_recv(fd, &k), -EBADF);
	close(fd);
	assert_null(k);
}

static void test_send_to_closed_pipe(void **state)
{
	(void)state;
	cdt_keys *k;
	int pfd[2];
	assert_int_equal(cdt_keys_new(CDT_SUITE_AUTO, &k), 0);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	close(pfd[0]);
	/* SIGPIPE stays at its default: were the library to raise it, the
	 * test would die.  A pipe first, then a socket. */
	signal(SIGPIPE, SIG_DFL);
	assert_int_equal(cdt_keys_send(k, pfd[1]), -EPIPE);
	close(pfd[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pfd), 0);
	close(pfd[0]);
	assert_int_equal(cdt_keys_send(k, pfd[1]), -EPIPE);
	close(pfd[1]);
	cdt_keys_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_idempotent),
		cmocka_unit_test(test_new_suites),
		cmocka_unit_test(test_fresh_secrets_differ),
		cmocka_unit_test(test_send_recv_pipe_and_socket),
		cmocka_unit_test(test_blob_exact),
		cmocka_unit_test(test_blob_every_short_length),
		cmocka_unit_test(test_blob_trailing),
		cmocka_unit_test(test_blob_bad_fields),
		cmocka_unit_test(test_recv_bad_fd),
		cmocka_unit_test(test_send_to_closed_pipe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
