/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "chan-util.h"
#include "keys.h"
#include "selfcheck.h"

const enum cdt_suite test_suites[2] = {CDT_SUITE_XCHACHA20POLY1305, CDT_SUITE_AES256GCM};

bool suite_ok(enum cdt_suite s)
{
	return s != CDT_SUITE_AES256GCM || crypto_aead_aes256gcm_is_available();
}

cdt_keys *keys_fixed(enum cdt_suite suite)
{
	uint8_t secret[KEYS_SECRET_SIZE];
	cdt_keys *k = NULL;
	for (int i = 0; i < KEYS_SECRET_SIZE; i++)
		secret[i] = (uint8_t)i;
	assert_int_equal(keys_from_secret(secret, suite, &k), 0);
	return k;
}

void pair_new(const cdt_keys *keys, cdt_chan **ret_broker, cdt_chan **ret_layer)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(cdt_chan_new(sv[0], keys, CDT_ROLE_BROKER, ret_broker), 0);
	assert_int_equal(cdt_chan_new(sv[1], keys, CDT_ROLE_LAYER, ret_layer), 0);
}

void raw_new(const cdt_keys *keys, cdt_chan **ret_layer, int *ret_raw)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(cdt_chan_new(sv[1], keys, CDT_ROLE_LAYER, ret_layer), 0);
	*ret_raw = sv[0];
}

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 31 + (i >> 16));
}

cdt_msg *msg_bytes(uint64_t id, size_t n)
{
	cdt_msg *m = NULL;
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, id, "t.x", &m), 0);
	if (n == SIZE_MAX)
		return m;
	uint8_t *p = malloc(n ? n : 1);
	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = pattern(i);
	assert_int_equal(cdt_msg_add_bytes(m, "b", p, n), 0);
	free(p);
	return m;
}

size_t msg_bytes_overhead(void)
{
	cdt_msg *m = msg_bytes(1, 0);
	long n = cdt_msg_encode(m, NULL, 0);
	cdt_msg_free(m);
	assert_true(n > 0);
	return (size_t)n;
}

void msg_check_bytes(const cdt_msg *msg, uint64_t id, size_t n)
{
	assert_int_equal(cdt_msg_kind(msg), CDT_KIND_CALL);
	assert_int_equal(cdt_msg_call_id(msg), id);
	assert_string_equal(cdt_msg_name(msg), "t.x");
	if (n == SIZE_MAX) {
		assert_int_equal(cdt_msg_nargs(msg), 0);
		return;
	}
	const uint8_t *p;
	size_t len;
	assert_int_equal(cdt_msg_get_bytes(msg, "b", &p, &len), 0);
	assert_int_equal(len, n);
	for (size_t i = 0; i < n; i++)
		if (p[i] != pattern(i))
			fail_msg("byte %zu differs", i);
}

uint8_t *seal_msg(const struct aead_key *key, uint64_t ctr, const cdt_msg *msg, const int *ids_of,
		  size_t *ret_len, size_t *ret_frames)
{
	size_t nfds = cdt_msg_nfds(msg);
	size_t prefix = FRAME_LEN_SIZE + nfds * FRAME_ID_SIZE;
	long len = cdt_msg_encode(msg, NULL, 0);
	assert_true(len > 0);
	size_t plen = prefix + (size_t)len;
	uint8_t *plain = malloc(plen);
	size_t frames = (plen + CDT_FRAME_PLAIN_MAX - 1) / CDT_FRAME_PLAIN_MAX;
	uint8_t *wire = malloc(plen + frames * FRAME_OVERHEAD);
	assert_non_null(plain);
	assert_non_null(wire);
	assert_int_equal(cdt_msg_encode(msg, plain + prefix, (size_t)len), len);
	le32_put(plain, (uint32_t)len);
	for (size_t i = 0; i < nfds; i++) {
		struct stat st;
		assert_int_equal(fstat(ids_of[i], &st), 0);
		frame_id_write(&st, plain + FRAME_LEN_SIZE + i * FRAME_ID_SIZE);
	}
	size_t w = 0;
	for (size_t off = 0; off < plen; off += CDT_FRAME_PLAIN_MAX) {
		size_t n = plen - off > CDT_FRAME_PLAIN_MAX ? CDT_FRAME_PLAIN_MAX : plen - off;
		w += frame_seal(key, ctr++, FRAME_DATA, n < plen - off ? FRAME_F_MORE : 0,
				off == 0 ? (uint8_t)nfds : 0, plain + off, n, wire + w);
	}
	free(plain);
	*ret_len = w;
	if (ret_frames)
		*ret_frames = frames;
	return wire;
}

void inject(int raw, const uint8_t *p, size_t len, const int *fds, size_t nfds)
{
	union {
		struct cmsghdr align;
		uint8_t buf[CMSG_SPACE(sizeof(int) * 253)];
	} cbuf;
	struct iovec iov = {.iov_base = (void *)p, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	assert_true(nfds <= 253);
	if (nfds) {
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	assert_int_equal(sendmsg(raw, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

size_t fd_count(void)
{
	size_t n;
	assert_int_equal(selfcheck_fd_count(0, &n), 0);
	return n;
}

int pump(cdt_chan *tx, cdt_chan *rx, cdt_msg **ret_msg)
{
	for (;;) {
		int r = cdt_chan_flush(tx);
		if (r < 0 && r != -EAGAIN)
			return r;
		r = cdt_chan_recv(rx, ret_msg);
		if (r != -EAGAIN)
			return r;
		if (!cdt_chan_want_write(tx))
			return -EAGAIN;
	}
}
