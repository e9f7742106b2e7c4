/* SPDX-License-Identifier: MIT */
/*
 * Attacks on the secure channel from a peer holding the raw socket: every
 * tamper, replay, reorder, drop, reflection, foreign key, bad header and fd
 * trick is detected, nothing is delivered, the channel stays unusable and
 * no received fd survives.
 */
#include <errno.h>
#include <fcntl.h>
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

struct victim {
	cdt_keys *keys;
	cdt_chan *layer;
	int raw;
	struct aead_key *b2l; /* what the broker would seal with */
	struct aead_key *l2b;
};

static void victim_new(struct victim *v, enum cdt_suite suite)
{
	v->keys = keys_fixed(suite);
	raw_new(v->keys, &v->layer, &v->raw);
	assert_int_equal(aead_key_new(v->keys, AEAD_ID_BROKER_TO_LAYER, &v->b2l), 0);
	assert_int_equal(aead_key_new(v->keys, AEAD_ID_LAYER_TO_BROKER, &v->l2b), 0);
}

static void victim_free(struct victim *v)
{
	cdt_chan_free(v->layer);
	close(v->raw);
	aead_key_free(v->b2l);
	aead_key_free(v->l2b);
	cdt_keys_free(v->keys);
}

/* After a detected attack: the error sticks, even for a valid frame. */
static void assert_dead(struct victim *v, int err, uint64_t next_ctr)
{
	cdt_msg *got = NULL, *m = msg_bytes(99, 3);
	size_t len;
	uint8_t *w = seal_msg(v->b2l, next_ctr, m, NULL, &len, NULL);
	inject(v->raw, w, len, NULL, 0);
	assert_int_equal(cdt_chan_recv(v->layer, &got), err);
	assert_int_equal(cdt_chan_recv(v->layer, &got), err);
	assert_null(got);
	assert_int_equal(cdt_chan_send(v->layer, m), err);
	free(w);
	cdt_msg_free(m);
}

static int recv_one(struct victim *v)
{
	cdt_msg *got = NULL;
	int r = cdt_chan_recv(v->layer, &got);
	if (r == 0)
		cdt_msg_free(got);
	else
		assert_null(got);
	return r;
}

static void test_flip_every_byte(void **state)
{
	(void)state;
	for (size_t s = 0; s < 2; s++) {
		if (!suite_ok(test_suites[s]))
			continue;
		cdt_msg *m = msg_bytes(1, 40);
		size_t len;
		struct victim v0;
		victim_new(&v0, test_suites[s]);
		uint8_t *w = seal_msg(v0.b2l, 0, m, NULL, &len, NULL);
		victim_free(&v0);
		for (size_t i = 0; i < len; i++) {
			for (int bit = 0; bit < 8; bit += 7) {
				struct victim v;
				victim_new(&v, test_suites[s]);
				w[i] ^= (uint8_t)(1u << bit);
				inject(v.raw, w, len, NULL, 0);
				w[i] ^= (uint8_t)(1u << bit);
				int r = recv_one(&v);
				assert_true(cdt_err_is_peer(r));
				/* Past the header, only the AEAD can notice. */
				if (i >= FRAME_HEADER_SIZE)
					assert_int_equal(r, -CDT_E_AUTH);
				assert_dead(&v, r, 1);
				victim_free(&v);
			}
		}
		free(w);
		cdt_msg_free(m);
	}
}

static void test_truncate(void **state)
{
	(void)state;
	cdt_msg *m = msg_bytes(1, 40);
	size_t len;
	struct victim v0;
	victim_new(&v0, CDT_SUITE_XCHACHA20POLY1305);
	uint8_t *w = seal_msg(v0.b2l, 0, m, NULL, &len, NULL);
	victim_free(&v0);
	for (size_t cut = 0; cut < len; cut++) {
		struct victim v;
		victim_new(&v, CDT_SUITE_XCHACHA20POLY1305);
		inject(v.raw, w, cut, NULL, 0);
		int r = recv_one(&v);
		/* An empty record reads as EOF; anything else breaks the header. */
		assert_int_equal(r, cut == 0		      ? -CDT_E_EOF
				    : cut < FRAME_HEADER_SIZE ? -CDT_E_TRUNCATED
							      : -CDT_E_PROTO);
		assert_dead(&v, r, 1);
		victim_free(&v);
	}
	/* Short ciphertext with a consistent header: clen < tag. */
	for (uint32_t clen = 0; clen < AEAD_TAG_SIZE; clen++) {
		struct victim v;
		victim_new(&v, CDT_SUITE_XCHACHA20POLY1305);
		uint8_t f[FRAME_OVERHEAD] = {1, FRAME_DATA, 0, 0};
		le32_put(f + 4, clen);
		inject(v.raw, f, FRAME_HEADER_SIZE + clen, NULL, 0);
		assert_int_equal(recv_one(&v), -CDT_E_PROTO);
		victim_free(&v);
	}
	free(w);
	cdt_msg_free(m);
}

/* Two messages, delivered as the sequence given by order (frame indexes). */
static int play(enum cdt_suite suite, const int *order, size_t n, int *ret_delivered)
{
	struct victim v;
	uint8_t *w[3];
	size_t len[3];
	victim_new(&v, suite);
	for (int i = 0; i < 3; i++) {
		cdt_msg *m = msg_bytes((uint64_t)i + 1, 10);
		w[i] = seal_msg(v.b2l, (uint64_t)i, m, NULL, &len[i], NULL);
		cdt_msg_free(m);
	}
	int r = 0;
	*ret_delivered = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		inject(v.raw, w[order[i]], len[order[i]], NULL, 0);
		r = recv_one(&v);
		if (r == 0)
			(*ret_delivered)++;
	}
	if (r < 0)
		assert_dead(&v, r, 3);
	for (int i = 0; i < 3; i++)
		free(w[i]);
	victim_free(&v);
	return r;
}

static void test_replay_reorder_drop(void **state)
{
	(void)state;
	static const int ok[] = {0, 1, 2}, replay[] = {0, 0}, replay_late[] = {0, 1, 0},
			 reorder[] = {1, 0}, drop[] = {0, 2}, drop_first[] = {1};
	int d;
	for (size_t s = 0; s < 2; s++) {
		enum cdt_suite su = test_suites[s];
		if (!suite_ok(su))
			continue;
		assert_int_equal(play(su, ok, 3, &d), 0);
		assert_int_equal(d, 3);
		assert_int_equal(play(su, replay, 2, &d), -CDT_E_AUTH);
		assert_int_equal(d, 1);
		assert_int_equal(play(su, replay_late, 3, &d), -CDT_E_AUTH);
		assert_int_equal(d, 2);
		assert_int_equal(play(su, reorder, 2, &d), -CDT_E_AUTH);
		assert_int_equal(d, 0);
		assert_int_equal(play(su, drop, 2, &d), -CDT_E_AUTH);
		assert_int_equal(d, 1);
		assert_int_equal(play(su, drop_first, 1, &d), -CDT_E_AUTH);
		assert_int_equal(d, 0);
	}
}

/* The layer's own frame sent back to it, and a frame from another session. */
static void test_reflect_and_foreign_session(void **state)
{
	(void)state;
	for (size_t s = 0; s < 2; s++) {
		if (!suite_ok(test_suites[s]))
			continue;
		struct victim v;
		victim_new(&v, test_suites[s]);
		cdt_msg *m = msg_bytes(1, 10);
		uint8_t dg[256];
		assert_int_equal(cdt_chan_send(v.layer, m), 0);
		ssize_t n = recv(v.raw, dg, sizeof(dg), 0);
		assert_true(n > 0);
		inject(v.raw, dg, (size_t)n, NULL, 0);
		assert_int_equal(recv_one(&v), -CDT_E_AUTH);
		victim_free(&v);

		victim_new(&v, test_suites[s]);
		cdt_keys *other;
		struct aead_key *ok;
		size_t len;
		assert_int_equal(cdt_keys_new(test_suites[s], &other), 0);
		assert_int_equal(aead_key_new(other, AEAD_ID_BROKER_TO_LAYER, &ok), 0);
		uint8_t *w = seal_msg(ok, 0, m, NULL, &len, NULL);
		inject(v.raw, w, len, NULL, 0);
		assert_int_equal(recv_one(&v), -CDT_E_AUTH);
		assert_dead(&v, -CDT_E_AUTH, 1);
		free(w);
		aead_key_free(ok);
		cdt_keys_free(other);
		victim_free(&v);
		cdt_msg_free(m);
	}
}

/* Frames with the right keys but headers or plaintexts the protocol
 * forbids: a compromised peer can seal anything. */
static int forge(uint8_t type, uint8_t flags, uint8_t nfds, const uint8_t *plain, size_t plen,
		 const int *fds, size_t nattach)
{
	struct victim v;
	uint8_t *f = malloc(plen + FRAME_OVERHEAD);
	assert_non_null(f);
	victim_new(&v, CDT_SUITE_AES256GCM);
	size_t n = frame_seal(v.b2l, 0, type, flags, nfds, plain, plen, f);
	inject(v.raw, f, n, fds, nattach);
	int r = recv_one(&v);
	if (r < 0 && r != -EAGAIN)
		assert_dead(&v, r, 1);
	victim_free(&v);
	free(f);
	return r;
}

static void test_forged_headers_and_lengths(void **state)
{
	(void)state;
	uint8_t *p = calloc(1, CDT_FRAME_PLAIN_MAX + 1);
	cdt_msg *m = msg_bytes(1, 10);
	long enc = cdt_msg_encode(m, p + 4, CDT_FRAME_PLAIN_MAX);
	assert_true(enc > 0);
	le32_put(p, (uint32_t)enc);
	size_t good = 4 + (size_t)enc;
	assert_int_equal(forge(FRAME_DATA, 0, 0, p, good, NULL, 0), 0);
	/* A BULK frame behind no message that announced one */
	assert_int_equal(forge(FRAME_BULK, 0, 0, p, good, NULL, 0), -CDT_E_PROTO);
	assert_int_equal(forge(0, 0, 0, p, good, NULL, 0), -CDT_E_KIND);
	assert_int_equal(forge(200, 0, 0, p, good, NULL, 0), -CDT_E_KIND);
	assert_int_equal(forge(FRAME_DATA, 2, 0, p, good, NULL, 0), -CDT_E_PROTO);
	assert_int_equal(forge(FRAME_DATA, 0x81, 0, p, good, NULL, 0), -CDT_E_PROTO);
	/* FIN with a body */
	assert_int_equal(forge(FRAME_FIN, 0, 0, p, 1, NULL, 0), -CDT_E_PROTO);
	/* MORE on a frame that is not full, or on one that completes */
	assert_int_equal(forge(FRAME_DATA, FRAME_F_MORE, 0, p, good, NULL, 0), -CDT_E_PROTO);
	/* msg_len: 0, one past the body, one short, CDT_MSG_MAX + 1, 2^32 - 1 */
	le32_put(p, 0);
	assert_int_equal(forge(FRAME_DATA, 0, 0, p, good, NULL, 0), -CDT_E_PROTO);
	le32_put(p, (uint32_t)enc + 1);
	assert_int_equal(forge(FRAME_DATA, 0, 0, p, good, NULL, 0), -CDT_E_TRUNCATED);
	le32_put(p, (uint32_t)enc - 1);
	assert_int_equal(forge(FRAME_DATA, 0, 0, p, good, NULL, 0), -CDT_E_TRAILING);
	le32_put(p, CDT_MSG_MAX + 1);
	assert_int_equal(forge(FRAME_DATA, FRAME_F_MORE, 0, p, CDT_FRAME_PLAIN_MAX, NULL, 0),
			 -CDT_E_TOO_BIG);
	le32_put(p, UINT32_MAX);
	assert_int_equal(forge(FRAME_DATA, FRAME_F_MORE, 0, p, CDT_FRAME_PLAIN_MAX, NULL, 0),
			 -CDT_E_TOO_BIG);
	/* CDT_MSG_MAX itself is accepted (then waits for more). */
	le32_put(p, CDT_MSG_MAX);
	assert_int_equal(forge(FRAME_DATA, FRAME_F_MORE, 0, p, CDT_FRAME_PLAIN_MAX, NULL, 0),
			 -EAGAIN);
	/* Plaintext shorter than msg_len + identities */
	assert_int_equal(forge(FRAME_DATA, 0, 0, p, 3, NULL, 0), -CDT_E_TRUNCATED);
	/* Authentic framing around a body the decoder rejects */
	le32_put(p, 2);
	p[4] = 9;
	assert_int_equal(forge(FRAME_DATA, 0, 0, p, 6, NULL, 0), -CDT_E_VERSION);
	p[4] = CDT_PROTOCOL_VERSION;
	p[5] = CDT_KIND_CALL;
	assert_int_equal(forge(FRAME_DATA, 0, 0, p, 6, NULL, 0), -CDT_E_TRUNCATED);
	free(p);
	cdt_msg_free(m);
}

/* A datagram at exactly the maximum is read whole; one byte more is
 * MSG_TRUNC. */
static void test_datagram_max(void **state)
{
	(void)state;
	struct victim v;
	uint8_t *p = calloc(1, FRAME_MAX + 1);
	uint8_t *f = calloc(1, FRAME_MAX + 1);
	victim_new(&v, CDT_SUITE_XCHACHA20POLY1305);
	cdt_msg *m = msg_bytes(1, 2 * CDT_FRAME_PLAIN_MAX - 200);
	size_t len, frames;
	uint8_t *w = seal_msg(v.b2l, 0, m, NULL, &len, &frames);
	assert_int_equal(frames, 2);
	/* first frame: exactly FRAME_MAX bytes */
	assert_int_equal(le32_get(w + 4) + FRAME_HEADER_SIZE, FRAME_MAX);
	inject(v.raw, w, FRAME_MAX, NULL, 0);
	assert_int_equal(recv_one(&v), -EAGAIN);
	assert_true(cdt_chan_rx_partial(v.layer));
	inject(v.raw, w + FRAME_MAX, len - FRAME_MAX, NULL, 0);
	assert_int_equal(recv_one(&v), 0);
	victim_free(&v);

	victim_new(&v, CDT_SUITE_XCHACHA20POLY1305);
	memcpy(f, w, FRAME_MAX);
	le32_put(f + 4, CDT_FRAME_PLAIN_MAX + AEAD_TAG_SIZE + 1);
	inject(v.raw, f, FRAME_MAX + 1, NULL, 0);
	assert_int_equal(recv_one(&v), -CDT_E_TOO_BIG);
	assert_dead(&v, -CDT_E_TOO_BIG, 1);
	victim_free(&v);
	free(w);
	free(p);
	free(f);
	cdt_msg_free(m);
}

/* A peer announces 16 MiB and trickles: the receiver's buffer follows what
 * arrived (at most twice that), not what was announced. */
static void test_announced_size_not_allocated(void **state)
{
	(void)state;
	struct victim v;
	uint8_t *p = calloc(1, CDT_FRAME_PLAIN_MAX);
	uint8_t *f = malloc(FRAME_MAX);
	assert_non_null(p);
	assert_non_null(f);
	victim_new(&v, CDT_SUITE_AES256GCM);
	le32_put(p, CDT_MSG_MAX);
	size_t n = frame_seal(v.b2l, 0, FRAME_DATA, FRAME_F_MORE, 0, p, CDT_FRAME_PLAIN_MAX, f);
	inject(v.raw, f, n, NULL, 0);
	assert_int_equal(recv_one(&v), -EAGAIN);
	assert_true(cdt_chan_rx_partial(v.layer));
	assert_int_equal(v.layer->reasm_len, CDT_MSG_MAX);
	assert_int_equal(v.layer->reasm_cap, CHAN_REASM_FIRST);
	for (uint64_t c = 1; c <= 20; c++) {
		memset(p, (int)c, CDT_FRAME_PLAIN_MAX);
		n = frame_seal(v.b2l, c, FRAME_DATA, FRAME_F_MORE, 0, p, CDT_FRAME_PLAIN_MAX, f);
		inject(v.raw, f, n, NULL, 0);
		assert_int_equal(recv_one(&v), -EAGAIN);
		assert_true(v.layer->reasm_cap >= v.layer->reasm_off);
		assert_true(v.layer->reasm_cap <= 2 * v.layer->reasm_off ||
			    v.layer->reasm_cap == CHAN_REASM_FIRST);
	}
	assert_int_equal(v.layer->reasm_off, 21 * (size_t)CDT_FRAME_PLAIN_MAX - FRAME_LEN_SIZE);
	victim_free(&v);
	free(p);
	free(f);
}

/* Inside a multi-frame message: FIN, a new first frame with fds, a
 * continuation that overruns msg_len or ends early. */
static void test_sequence_violations(void **state)
{
	(void)state;
	cdt_msg *m = msg_bytes(1, 3 * CDT_FRAME_PLAIN_MAX);
	uint8_t *cont = calloc(1, CDT_FRAME_PLAIN_MAX + 1);
	uint8_t fr[FRAME_MAX + 1];
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	size_t before = fd_count();
	for (int c = 0; c < 6; c++) {
		struct victim v;
		size_t len, frames;
		victim_new(&v, CDT_SUITE_XCHACHA20POLY1305);
		uint8_t *w = seal_msg(v.b2l, 0, m, NULL, &len, &frames);
		assert_int_equal(frames, 4);
		inject(v.raw, w, FRAME_MAX, NULL, 0);
		assert_int_equal(recv_one(&v), -EAGAIN);
		size_t n;
		int want;
		const int *fds = NULL;
		size_t nattach = 0;
		switch (c) {
		case 0: /* FIN mid-message */
			n = frame_seal(v.b2l, 1, FRAME_FIN, 0, 0, cont, 0, fr);
			want = -CDT_E_PROTO;
			break;
		case 1: /* fds announced on a continuation */
			n = frame_seal(v.b2l, 1, FRAME_DATA, FRAME_F_MORE, 1, cont,
				       CDT_FRAME_PLAIN_MAX, fr);
			fds = &fd;
			nattach = 1;
			want = -CDT_E_PROTO;
			break;
		case 2: /* an fd attached to a continuation, not announced */
			memcpy(fr, w + FRAME_MAX, FRAME_MAX);
			n = FRAME_MAX;
			fds = &fd;
			nattach = 1;
			want = -CDT_E_FD;
			break;
		case 3: /* ends early: MORE clear, but bytes are missing */
			n = frame_seal(v.b2l, 1, FRAME_DATA, 0, 0, cont, 100, fr);
			want = -CDT_E_TRUNCATED;
			break;
		case 4: /* MORE on a short continuation */
			n = frame_seal(v.b2l, 1, FRAME_DATA, FRAME_F_MORE, 0, cont, 100, fr);
			want = -CDT_E_PROTO;
			break;
		default: /* the real next frame: fine */
			memcpy(fr, w + FRAME_MAX, FRAME_MAX);
			n = FRAME_MAX;
			want = -EAGAIN;
			break;
		}
		inject(v.raw, fr, n, fds, nattach);
		assert_int_equal(recv_one(&v), want);
		if (want != -EAGAIN) {
			assert_false(cdt_chan_rx_partial(v.layer));
			assert_dead(&v, want, 2);
		}
		free(w);
		victim_free(&v);
	}
	assert_int_equal(fd_count(), before);
	close(fd);
	free(cont);
	cdt_msg_free(m);
}

static void test_fd_mismatch(void **state)
{
	(void)state;
	int dn = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	size_t before = fd_count();
	cdt_msg *m;
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 1, "dev.open", &m), 0);
	assert_int_equal(cdt_msg_add_fd(m, "fd", dn), 0);
	for (int c = 0; c < 4; c++) {
		struct victim v;
		size_t len;
		int ids_of = c == 0 ? p[0] : dn; /* case 0: swapped fd */
		victim_new(&v, CDT_SUITE_AES256GCM);
		uint8_t *w = seal_msg(v.b2l, 0, m, &ids_of, &len, NULL);
		int att[2] = {dn, dn};
		int want;
		switch (c) {
		case 0: /* identities say pipe, the kernel delivered /dev/null */
			inject(v.raw, w, len, att, 1);
			want = -CDT_E_FD;
			break;
		case 1: /* fd announced, none attached */
			inject(v.raw, w, len, NULL, 0);
			want = -CDT_E_FD;
			break;
		case 2: /* one extra fd */
			inject(v.raw, w, len, att, 2);
			want = -CDT_E_FD;
			break;
		default: /* the honest frame */
			inject(v.raw, w, len, att, 1);
			want = 0;
			break;
		}
		assert_int_equal(recv_one(&v), want);
		if (want)
			assert_dead(&v, want, 1);
		free(w);
		victim_free(&v);
	}
	cdt_msg_free(m);
	assert_int_equal(fd_count(), before);
	close(dn);
	close(p[0]);
	close(p[1]);
}

/* MSG_CTRUNC with 253 fds, SCM_CREDENTIALS, and thousands of error cases
 * with fds attached: the fd table returns to where it was. */
static void test_fd_floods_leak_nothing(void **state)
{
	(void)state;
	int fds[253];
	int dn = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (int i = 0; i < 253; i++)
		fds[i] = dn;
	size_t before = fd_count();
	cdt_msg *m = msg_bytes(1, 10);
	for (int iter = 0; iter < 2000; iter++) {
		struct victim v;
		size_t len;
		victim_new(&v, CDT_SUITE_XCHACHA20POLY1305);
		uint8_t *w = seal_msg(v.b2l, 0, m, NULL, &len, NULL);
		size_t nattach = iter % 4 == 0 ? 253 : (size_t)(iter % 7) + 1;
		if (iter % 3 == 0)
			w[len - 1] ^= 1; /* and a bad tag on top */
		inject(v.raw, w, len, fds, nattach);
		int r = recv_one(&v);
		assert_int_equal(r, -CDT_E_FD);
		free(w);
		victim_free(&v);
	}
	assert_int_equal(fd_count(), before);

	/* SCM_CREDENTIALS: delivered only to a receiver that asked for them;
	 * the channel never does, and refuses them if someone turns it on. */
	struct victim v;
	size_t len;
	int one = 1;
	victim_new(&v, CDT_SUITE_XCHACHA20POLY1305);
	uint8_t *w = seal_msg(v.b2l, 0, m, NULL, &len, NULL);
	union {
		struct cmsghdr align;
		uint8_t buf[CMSG_SPACE(sizeof(struct ucred))];
	} cbuf;
	struct ucred cred = {.pid = getpid(), .uid = getuid(), .gid = getgid()};
	struct iovec iov = {.iov_base = w, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf.buf,
			    .msg_controllen = sizeof(cbuf.buf)};
	memset(&cbuf, 0, sizeof(cbuf));
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_CREDENTIALS;
	cm->cmsg_len = CMSG_LEN(sizeof(cred));
	memcpy(CMSG_DATA(cm), &cred, sizeof(cred));
	assert_int_equal(sendmsg(v.raw, &mh, MSG_NOSIGNAL), (ssize_t)len);
	assert_int_equal(recv_one(&v), 0);
	assert_int_equal(
		setsockopt(cdt_chan_fd(v.layer), SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
	free(w);
	w = seal_msg(v.b2l, 1, m, NULL, &len, NULL);
	iov.iov_base = w;
	assert_int_equal(sendmsg(v.raw, &mh, MSG_NOSIGNAL), (ssize_t)len);
	assert_int_equal(recv_one(&v), -CDT_E_FD);
	free(w);
	victim_free(&v);
	cdt_msg_free(m);
	assert_int_equal(fd_count(), before);
	close(dn);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flip_every_byte),
		cmocka_unit_test(test_truncate),
		cmocka_unit_test(test_replay_reorder_drop),
		cmocka_unit_test(test_reflect_and_foreign_session),
		cmocka_unit_test(test_forged_headers_and_lengths),
		cmocka_unit_test(test_datagram_max),
		cmocka_unit_test(test_announced_size_not_allocated),
		cmocka_unit_test(test_sequence_violations),
		cmocka_unit_test(test_fd_mismatch),
		cmocka_unit_test(test_fd_floods_leak_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
