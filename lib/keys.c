/* SPDX-License-Identifier: MIT */
/*
 * Per-spawn secrets and the key blob that carries one to a layer over an
 * inherited fd (docs/protocol.md section 2).  The secret only ever lives in
 * sodium_malloc memory or in short-lived stack copies that are wiped.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "keys.h"

static const uint8_t keys_magic[4] = {'C', 'D', 'T', 'K'};

int cdt_init(void)
{
	/* sodium_init() is idempotent and thread-safe: 0 first time, 1 after. */
	return sodium_init() < 0 ? -EIO : 0;
}

enum cdt_suite keys_suite_resolve(enum cdt_suite suite)
{
	if (suite != CDT_SUITE_AUTO)
		return suite;
	return crypto_aead_aes256gcm_is_available() ? CDT_SUITE_AES256GCM
						    : CDT_SUITE_XCHACHA20POLY1305;
}

static int keys_suite_check(enum cdt_suite suite)
{
	switch (suite) {
	case CDT_SUITE_XCHACHA20POLY1305:
		return 0;
	case CDT_SUITE_AES256GCM:
		return crypto_aead_aes256gcm_is_available() ? 0 : -ENOTSUP;
	case CDT_SUITE_AUTO:
		break;
	}
	return -EINVAL;
}

static int keys_alloc(enum cdt_suite suite, cdt_keys **ret_keys)
{
	int r = cdt_init();
	if (r < 0)
		return r;
	suite = keys_suite_resolve(suite);
	r = keys_suite_check(suite);
	if (r < 0)
		return r;
	cdt_keys *keys = sodium_malloc(sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	keys->suite = suite;
	*ret_keys = keys;
	return 0;
}

int cdt_keys_new(enum cdt_suite suite, cdt_keys **ret_keys)
{
	cdt_keys *keys;
	int r = keys_alloc(suite, &keys);
	if (r < 0)
		return r;
	randombytes_buf(keys->secret, sizeof(keys->secret));
	*ret_keys = keys;
	return 0;
}

int keys_from_secret(const uint8_t secret[KEYS_SECRET_SIZE], enum cdt_suite suite,
		     cdt_keys **ret_keys)
{
	cdt_keys *keys;
	int r = keys_alloc(suite, &keys);
	if (r < 0)
		return r;
	memcpy(keys->secret, secret, KEYS_SECRET_SIZE);
	*ret_keys = keys;
	return 0;
}

void cdt_keys_free(cdt_keys *keys)
{
	/* sodium_free() wipes the region before unmapping it. */
	sodium_free(keys);
}

enum cdt_suite cdt_keys_suite(const cdt_keys *keys)
{
	return keys->suite;
}

static void keys_blob_write(const cdt_keys *keys, uint8_t blob[KEYS_BLOB_SIZE])
{
	memcpy(blob, keys_magic, sizeof(keys_magic));
	blob[4] = KEYS_BLOB_VERSION;
	blob[5] = (uint8_t)keys->suite;
	blob[6] = 0;
	blob[7] = 0;
	memcpy(blob + 8, keys->secret, KEYS_SECRET_SIZE);
}

int keys_blob_parse(const uint8_t *blob, size_t len, cdt_keys **ret_keys)
{
	if (len < KEYS_BLOB_SIZE)
		return -CDT_E_TRUNCATED;
	if (len > KEYS_BLOB_SIZE)
		return -CDT_E_TRAILING;
	if (memcmp(blob, keys_magic, sizeof(keys_magic)) != 0)
		return -CDT_E_PROTO;
	if (blob[4] != KEYS_BLOB_VERSION)
		return -CDT_E_VERSION;
	if (blob[6] != 0 || blob[7] != 0)
		return -CDT_E_PROTO;
	/* AUTO is a local choice: the blob always names the suite in use. */
	if (blob[5] != CDT_SUITE_XCHACHA20POLY1305 && blob[5] != CDT_SUITE_AES256GCM)
		return -CDT_E_VALUE;
	return keys_from_secret(blob + 8, (enum cdt_suite)blob[5], ret_keys);
}

/* write() to a pipe whose reader is gone raises SIGPIPE, and the library
 * never raises signals: block it for the call and consume the one the
 * write generated (unless one was already pending for someone else). */
static ssize_t keys_write_pipe(int fd, const uint8_t *p, size_t len)
{
	sigset_t pipe_set, old, pending;
	bool was_pending;
	ssize_t n;
	int saved;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	n = write(fd, p, len);
	saved = errno;
	if (n < 0 && saved == EPIPE && !was_pending) {
		const struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return n;
}

/* send() with MSG_NOSIGNAL so a vanished reader is -EPIPE, not SIGPIPE; a
 * pipe cannot take flags. */
static ssize_t keys_write(int fd, const uint8_t *p, size_t len, bool *is_sock)
{
	if (*is_sock) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n >= 0 || errno != ENOTSOCK)
			return n;
		*is_sock = false;
	}
	return keys_write_pipe(fd, p, len);
}

static int keys_wait(int fd, short events)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	for (;;) {
		int n = poll(&pfd, 1, -1);
		if (n >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

int cdt_keys_send(const cdt_keys *keys, int fd)
{
	uint8_t blob[KEYS_BLOB_SIZE];
	bool is_sock = true;
	size_t off = 0;
	int r = 0;

	if (!keys || fd < 0)
		return -EINVAL;
	keys_blob_write(keys, blob);
	while (off < sizeof(blob)) {
		ssize_t n = keys_write(fd, blob + off, sizeof(blob) - off, &is_sock);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			r = keys_wait(fd, POLLOUT);
			if (r < 0)
				goto out;
			continue;
		}
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			goto out;
		}
		off += (size_t)n;
	}
out:
	sodium_memzero(blob, sizeof(blob));
	return r;
}

int cdt_keys_recv(int fd, cdt_keys **ret_keys)
{
	/* One byte more than a blob: reading it proves trailing data. */
	uint8_t blob[KEYS_BLOB_SIZE + 1];
	size_t got = 0;
	int r = 0;

	if (fd < 0 || !ret_keys)
		return -EINVAL;
	/* Read to EOF (the broker closes its end after sending) so that
	 * anything after the blob is seen and rejected. */
	while (got < sizeof(blob)) {
		ssize_t n = read(fd, blob + got, sizeof(blob) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			r = keys_wait(fd, POLLIN);
			if (r < 0)
				goto out;
			continue;
		}
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	r = keys_blob_parse(blob, got, ret_keys);
out:
	sodium_memzero(blob, sizeof(blob));
	return r;
}
