/* SPDX-License-Identifier: MIT */
/* Bulk arguments (lib/msg-bulk.c, docs/protocol.md sections 4.1 and 4.2):
 * the BULK and BULKF wire types at their limits (length min-1/min/max/max+1,
 * truncated at every byte, fd index out of range, shared, reordered),
 * sealing and resolving round trips through a memfd and through a BULK
 * frame, every memfd the receiver must refuse, and tampered frames. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "conduit/conduit.h"
#include "msg.h"
#include "selfcheck.h"

#define SEALS_ALL (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

static size_t count_fds(void)
{
	size_t n = 0;
	assert_int_equal(selfcheck_fd_count(getpid(), &n), 0);
	return n;
}

static int memfd_of(size_t size, int seals)
{
	int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	if (seals)
		assert_int_equal(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

/* A CALL "m" with args "a".."": each BULK of lens[i] with fd index idx[i]. */
static void raw_bulk(struct buf *b, size_t n, const uint64_t *lens, const uint8_t *idx)
{
	buf_clear(b);
	assert_int_equal(buf_put_u8(b, 1), 0);
	assert_int_equal(buf_put_u8(b, CDT_KIND_CALL), 0);
	assert_int_equal(buf_put_u16(b, (uint16_t)n), 0);
	assert_int_equal(buf_put_u64(b, 1), 0);
	assert_int_equal(buf_put_u8(b, 1), 0);
	assert_int_equal(buf_append(b, "m", 1), 0);
	for (size_t i = 0; i < n; i++) {
		char name = (char)('a' + i);
		assert_int_equal(buf_put_u8(b, 1), 0);
		assert_int_equal(buf_append(b, &name, 1), 0);
		assert_int_equal(buf_put_u8(b, MSG_TYPE_BULK), 0);
		assert_int_equal(buf_put_u64(b, lens[i]), 0);
		for (size_t k = 0; k < MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE; k++)
			assert_int_equal(buf_put_u8(b, (uint8_t)k), 0);
		assert_int_equal(buf_put_u8(b, idx[i]), 0);
	}
}

/* Decode with nfds fresh fds; every fd is closed whatever the result. */
static int dec(const struct buf *b, size_t nfds)
{
	int fds[CDT_FDS_MAX + 1];
	cdt_msg *m = NULL;
	size_t before = count_fds();
	for (size_t i = 0; i < nfds; i++)
		fds[i] = memfd_of(0, 0);
	int r = cdt_msg_decode(b->data, b->len, fds, nfds, &m);
	if (r == 0) {
		/* Re-encodes to the same bytes: the encoding is canonical. */
		uint8_t *e = malloc(b->len);
		assert_non_null(e);
		assert_int_equal(cdt_msg_encode(m, e, b->len), (long)b->len);
		assert_memory_equal(e, b->data, b->len);
		free(e);
		/* The broker's view: bytes of that length, no data. */
		struct cdt_arg a;
		assert_int_equal(cdt_msg_arg(m, 0, &a), 0);
		assert_int_equal(a.type, CDT_TYPE_BYTES);
		assert_null(a.v.bytes.ptr);
		assert_true(msg_is_bulk(m, "a"));
		assert_int_equal(cdt_msg_get_bytes(m, "a", NULL, NULL), -EMEDIUMTYPE);
		cdt_msg_free(m);
	}
	assert_int_equal(count_fds(), before);
	return r;
}

static void test_wire_limits(void **state)
{
	(void)state;
	struct buf b;
	uint8_t idx[CDT_FDS_MAX + 1] = {0, 1, 2, 3, 4};
	uint64_t len[CDT_FDS_MAX + 1];

	buf_init(&b, CDT_MSG_MAX);
	for (size_t i = 0; i <= CDT_FDS_MAX; i++)
		len[i] = CDT_BULK_MIN;
	/* The length: CDT_BULK_MIN .. CDT_MSG_MAX. */
	len[0] = CDT_BULK_MIN - 1;
	raw_bulk(&b, 1, len, idx);
	assert_int_equal(dec(&b, 1), -CDT_E_VALUE);
	len[0] = CDT_BULK_MIN;
	raw_bulk(&b, 1, len, idx);
	assert_int_equal(dec(&b, 1), 0);
	len[0] = CDT_MSG_MAX;
	raw_bulk(&b, 1, len, idx);
	assert_int_equal(dec(&b, 1), 0);
	len[0] = (uint64_t)CDT_MSG_MAX + 1;
	raw_bulk(&b, 1, len, idx);
	assert_int_equal(dec(&b, 1), -CDT_E_VALUE);
	len[0] = UINT64_MAX;
	raw_bulk(&b, 1, len, idx);
	assert_int_equal(dec(&b, 1), -CDT_E_VALUE);
	len[0] = CDT_BULK_MIN;

	/* Truncated anywhere inside the value, or a byte too many. */
	raw_bulk(&b, 1, len, idx);
	size_t full = b.len;
	for (size_t cut = 1; cut <= MSG_BULK_VALUE_SIZE; cut++) {
		struct buf t;
		buf_init(&t, CDT_MSG_MAX);
		assert_int_equal(buf_append(&t, b.data, full - cut), 0);
		assert_int_equal(dec(&t, 1), -CDT_E_TRUNCATED);
		buf_free(&t);
	}
	assert_int_equal(buf_put_u8(&b, 0), 0);
	assert_int_equal(dec(&b, 1), -CDT_E_TRAILING);

	/* fds: the index must be the next one, and the fd there. */
	idx[0] = 1;
	raw_bulk(&b, 1, len, idx);
	assert_int_equal(dec(&b, 1), -CDT_E_FD); /* out of range */
	assert_int_equal(dec(&b, 2), -CDT_E_FD); /* skips fd 0 */
	idx[0] = 0;
	raw_bulk(&b, 1, len, idx);
	assert_int_equal(dec(&b, 0), -CDT_E_FD); /* no fd at all */
	assert_int_equal(dec(&b, 2), -CDT_E_FD); /* an fd left over */
	idx[1] = 0;
	raw_bulk(&b, 2, len, idx);
	assert_int_equal(dec(&b, 2), -CDT_E_FD); /* two args, one fd */
	idx[0] = 1;
	raw_bulk(&b, 2, len, idx);
	assert_int_equal(dec(&b, 2), -CDT_E_FD); /* swapped */
	for (size_t i = 0; i <= CDT_FDS_MAX; i++)
		idx[i] = (uint8_t)i;
	raw_bulk(&b, CDT_FDS_MAX, len, idx);
	assert_int_equal(dec(&b, CDT_FDS_MAX), 0); /* max */
	raw_bulk(&b, CDT_FDS_MAX + 1, len, idx);
	assert_int_equal(dec(&b, CDT_FDS_MAX), -CDT_E_LIMIT); /* max + 1 */
	buf_free(&b);
}

enum carrier { NONE, MEMFD, FRAME };

/* What the channel does for a received message: attach the BULK frames
 * of the message it was encoded from, in order. */
static void attach_frames(cdt_msg *to, const cdt_msg *from)
{
	for (size_t k = 0; k < from->nbulkf; k++) {
		const uint8_t *p;
		size_t n;
		msg_bulkf_frame(from, k, &p, &n);
		assert_int_equal(msg_bulkf_want(to), n);
		assert_int_equal(msg_bulkf_attach(to, p, n), 0);
	}
	assert_int_equal(msg_bulkf_want(to), 0);
}

/* Decode enc as the receiver of a message sent from src would: its fd (a
 * duplicate) and its BULK frames. */
static cdt_msg *receive(const uint8_t *enc, size_t len, const cdt_msg *src)
{
	int fd = -1;
	size_t nfds = cdt_msg_nfds(src);
	cdt_msg *m;
	if (nfds)
		fd = fcntl(cdt_msg_fds(src)[0], F_DUPFD_CLOEXEC, 3);
	assert_int_equal(cdt_msg_decode(enc, len, &fd, nfds, &m), 0);
	attach_frames(m, src);
	return m;
}

/* Seal a value of n bytes through scratch, carry it and open it: the same
 * bytes come out. */
static void scratch_roundtrip(struct buf *scratch, size_t n, uint8_t salt)
{
	uint8_t *data = malloc(n);
	cdt_msg *m, *sealed = NULL, *wire;
	const uint8_t *p;
	size_t got;

	assert_non_null(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (uint8_t)(i * 13 + salt);
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 5, "x.y", &m), 0);
	assert_int_equal(cdt_msg_add_bytes(m, "data", data, n), 0);
	assert_int_equal(msg_bulk_seal_scratch(m, scratch, &sealed), 0);
	assert_non_null(sealed);
	/* Only ciphertext stays behind in the kept buffer. */
	if (scratch->data && n > MSG_BULKF_MAX) {
		assert_true(scratch->cap >= n + 16);
		assert_null(memmem(scratch->data, n + 16, data, 64));
		assert_null(memmem(scratch->data, n + 16, data + n / 2, 64));
	}
	long len = cdt_msg_encode(sealed, NULL, 0);
	assert_true(len > 0);
	uint8_t *enc = malloc((size_t)len);
	assert_non_null(enc);
	assert_int_equal(cdt_msg_encode(sealed, enc, (size_t)len), len);
	wire = receive(enc, (size_t)len, sealed);
	assert_int_equal(msg_bulk_resolve(wire), 0);
	assert_int_equal(cdt_msg_get_bytes(wire, "data", &p, &got), 0);
	assert_int_equal(got, n);
	assert_memory_equal(p, data, n);
	cdt_msg_free(wire);
	cdt_msg_free(sealed);
	cdt_msg_free(m);
	free(enc);
	free(data);
}

/* A layer seals memfd values through a buffer it keeps: the second value
 * reuses the first one's, values in BULK frames never touch it, and one
 * over MSG_BULK_SCRATCH_KEEP does not stay allocated. */
static void test_seal_scratch(void **state)
{
	struct buf scratch;
	size_t before = count_fds();

	(void)state;
	buf_init(&scratch, CDT_MSG_MAX + 16);
	scratch_roundtrip(&scratch, 16384, 1); /* a BULK frame */
	assert_null(scratch.data);
	scratch_roundtrip(&scratch, MSG_BULKF_MAX + 1, 2);
	assert_non_null(scratch.data);
	scratch_roundtrip(&scratch, 1024 * 1024, 3);
	const uint8_t *kept = scratch.data;
	assert_true(scratch.cap >= 1024 * 1024 + 16);
	scratch_roundtrip(&scratch, 1024 * 1024, 4);
	assert_ptr_equal(scratch.data, kept);
	scratch_roundtrip(&scratch, 1000000, 5);
	assert_ptr_equal(scratch.data, kept);
	scratch_roundtrip(&scratch, MSG_BULK_SCRATCH_KEEP + 1, 6);
	assert_null(scratch.data);
	assert_int_equal(scratch.cap, 0);
	scratch_roundtrip(&scratch, MSG_BULK_SCRATCH_KEEP - 16, 7);
	assert_true(scratch.cap <= MSG_BULK_SCRATCH_KEEP);
	assert_non_null(scratch.data);
	buf_free(&scratch);
	assert_int_equal(count_fds(), before);
}

/* seal, encode, decode (the broker), copy (forward), encode, decode,
 * resolve (the callee): the same bytes at the end. */
static void roundtrip(size_t n, enum carrier expect)
{
	uint8_t *data = malloc(n);
	cdt_msg *m, *sealed = NULL, *wire, *fwd, *wire2;
	size_t before = count_fds();

	assert_non_null(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 5, "x.y", &m), 0);
	assert_int_equal(cdt_msg_add_bytes(m, "data", data, n), 0);
	assert_int_equal(cdt_msg_add_u64(m, "z", 9), 0);
	assert_int_equal(msg_bulk_seal(m, &sealed), 0);
	if (expect == NONE) {
		assert_null(sealed);
		cdt_msg_free(m);
		free(data);
		return;
	}
	assert_non_null(sealed);
	assert_int_equal(cdt_msg_nfds(sealed), expect == MEMFD);
	assert_int_equal(sealed->nbulkf, expect == FRAME);
	assert_true(msg_is_bulk(sealed, "data"));

	long len = cdt_msg_encode(sealed, NULL, 0);
	assert_true(len > 0 && len < 200);
	uint8_t *enc = malloc((size_t)len);
	assert_int_equal(cdt_msg_encode(sealed, enc, (size_t)len), len);
	wire = receive(enc, (size_t)len, sealed);
	assert_int_equal(msg_bulk_check(wire), 0);

	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 6, "x.y", &fwd), 0);
	assert_int_equal(msg_copy_bulk(fwd, wire, "data"), 0);
	assert_int_equal(msg_copy_bulk(fwd, wire, "z"), -ENOENT);
	assert_int_equal(cdt_msg_add_u64(fwd, "z", 9), 0);
	assert_int_equal(cdt_msg_encode(fwd, enc, (size_t)len), cdt_msg_encode(fwd, NULL, 0));
	wire2 = receive(enc, (size_t)cdt_msg_encode(fwd, NULL, 0), fwd);
	assert_int_equal(msg_bulk_resolve(wire2), 0);
	const uint8_t *p;
	size_t got;
	assert_int_equal(cdt_msg_get_bytes(wire2, "data", &p, &got), 0);
	assert_int_equal(got, n);
	assert_memory_equal(p, data, n);
	assert_int_equal(cdt_msg_nfds(wire2), 0);
	assert_int_equal(wire2->nbulkf, 0);
	/* Resolved, it encodes as the inline message would. */
	assert_int_equal(cdt_msg_encode(wire2, NULL, 0), cdt_msg_encode(m, NULL, 0));
	assert_int_equal(msg_bulk_resolve(wire2), 0); /* nothing left: no-op */

	/* The broker's copy of a whole argument list carries the value on
	 * unread too. */
	cdt_msg *all, *wire3;
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 7, "x.y", &all), 0);
	assert_int_equal(msg_copy_args(all, wire), 0);
	assert_int_equal(cdt_msg_encode(all, enc, (size_t)len), len);
	wire3 = receive(enc, (size_t)len, all);
	assert_int_equal(msg_bulk_resolve(wire3), 0);
	assert_int_equal(cdt_msg_get_bytes(wire3, "data", &p, &got), 0);
	assert_int_equal(got, n);
	assert_memory_equal(p, data, n);
	cdt_msg_free(wire3);
	if (expect == FRAME) {
		/* A received message's frames end its store: the copy
		 * borrows them, and opening the copy leaves them as they are. */
		const uint8_t *fw, *fa;
		size_t lw, la;
		msg_bulkf_frame(wire, 0, &fw, &lw);
		msg_bulkf_frame(all, 0, &fa, &la);
		assert_ptr_equal(fw, fa);
		assert_int_equal(lw, la);
		assert_true(all->store_len < wire->store_len);
		uint8_t *before_open = malloc(lw);
		assert_non_null(before_open);
		memcpy(before_open, fw, lw);
		assert_int_equal(cdt_msg_add_u64(all, "zz", 1), 0); /* the copy may grow */
		assert_int_equal(msg_bulk_resolve(all), 0);
		assert_int_equal(cdt_msg_get_bytes(all, "data", &p, &got), 0);
		assert_int_equal(got, n);
		assert_memory_equal(p, data, n);
		assert_memory_equal(fw, before_open, lw);
		free(before_open);
	}
	cdt_msg_free(all);

	cdt_msg_free(wire2);
	cdt_msg_free(fwd);
	cdt_msg_free(wire);
	cdt_msg_free(sealed);
	cdt_msg_free(m);
	free(enc);
	free(data);
	assert_int_equal(count_fds(), before);
}

static void test_roundtrip(void **state)
{
	(void)state;
	roundtrip(0, NONE);
	roundtrip(CDT_BULK_MIN - 1, NONE);
	roundtrip(CDT_BULK_MIN, FRAME);
	roundtrip(MSG_BULKF_MAX, FRAME);
	roundtrip(MSG_BULKF_MAX + 1, MEMFD);
	roundtrip(1024 * 1024, MEMFD);
	/* The longest value the message can carry inline. */
	roundtrip(CDT_MSG_MAX - 64, MEMFD);
}

/* A memfd bulk value takes an fd only where one is left for the fd
 * arguments; a value that fits a BULK frame needs none. */
static void test_fd_budget(void **state)
{
	(void)state;
	static uint8_t big[MSG_BULKF_MAX + 1];
	cdt_msg *m, *s = NULL;
	char name[] = "a";

	assert_int_equal(cdt_msg_new(CDT_KIND_EVENT, 0, "e", &m), 0);
	for (size_t i = 0; i < CDT_FDS_MAX + 1; i++, name[0]++)
		assert_int_equal(cdt_msg_add_bytes(m, name, big, sizeof(big)), 0);
	assert_int_equal(cdt_msg_add_bytes(m, "f", big, CDT_BULK_MIN), 0);
	assert_int_equal(cdt_msg_add_bytes(m, "g", big, MSG_BULKF_MAX), 0);
	assert_int_equal(cdt_msg_add_fd(m, "zfd", 0), 0);
	assert_int_equal(msg_bulk_seal(m, &s), 0);
	assert_non_null(s);
	assert_int_equal(cdt_msg_nfds(s), CDT_FDS_MAX);
	size_t nbulk = 0;
	name[0] = 'a';
	for (size_t i = 0; i < CDT_FDS_MAX + 1; i++, name[0]++)
		nbulk += msg_is_bulk(s, name);
	assert_int_equal(nbulk, CDT_FDS_MAX - 1);
	assert_true(msg_is_bulk(s, "f"));
	assert_true(msg_is_bulk(s, "g"));
	assert_int_equal(s->nbulkf, 2);
	cdt_msg_free(s);
	cdt_msg_free(m);
}

/* A CALL "m" with n BULKF args "aa", "ab", ... of lens[i]; key and id
 * bytes 0, 1, 2, ... */
static void raw_bulkf(struct buf *b, size_t n, const uint64_t *lens)
{
	buf_clear(b);
	assert_int_equal(buf_put_u8(b, 1), 0);
	assert_int_equal(buf_put_u8(b, CDT_KIND_CALL), 0);
	assert_int_equal(buf_put_u16(b, (uint16_t)n), 0);
	assert_int_equal(buf_put_u64(b, 1), 0);
	assert_int_equal(buf_put_u8(b, 1), 0);
	assert_int_equal(buf_append(b, "m", 1), 0);
	for (size_t i = 0; i < n; i++) {
		/* "aa", "ab", ...: sorted */
		char name[2] = {(char)('a' + i / 26), (char)('a' + i % 26)};
		assert_int_equal(buf_put_u8(b, 2), 0);
		assert_int_equal(buf_append(b, name, 2), 0);
		assert_int_equal(buf_put_u8(b, MSG_TYPE_BULKF), 0);
		assert_int_equal(buf_put_u64(b, lens[i]), 0);
		for (size_t k = 0; k < MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE; k++)
			assert_int_equal(buf_put_u8(b, (uint8_t)k), 0);
	}
}

/* Decode b (nfds memfds) as a message of BULKF args; checks what holds
 * for every such message before its frames arrive. */
static int dec_f(const struct buf *b, size_t nfds)
{
	int fds[1];
	cdt_msg *m = NULL;
	size_t before = count_fds();
	for (size_t i = 0; i < nfds; i++)
		fds[i] = memfd_of(0, 0);
	int r = cdt_msg_decode(b->data, b->len, fds, nfds, &m);
	if (r == 0) {
		uint8_t *e = malloc(b->len);
		assert_non_null(e);
		assert_int_equal(cdt_msg_encode(m, e, b->len), (long)b->len);
		assert_memory_equal(e, b->data, b->len);
		free(e);
		assert_int_equal(cdt_msg_nfds(m), 0);
		struct cdt_arg a;
		assert_int_equal(cdt_msg_arg(m, 0, &a), 0);
		assert_int_equal(a.type, CDT_TYPE_BYTES);
		assert_null(a.v.bytes.ptr);
		assert_true(msg_is_bulk(m, a.name));
		assert_int_equal(cdt_msg_get_bytes(m, a.name, NULL, NULL), -EMEDIUMTYPE);
		/* No frame yet: neither the broker nor a layer may go on. */
		assert_int_equal(msg_bulkf_want(m), a.v.bytes.len + MSG_BULKF_OVERHEAD);
		assert_int_equal(msg_bulk_check(m), -CDT_E_PROTO);
		assert_int_equal(msg_bulk_resolve(m), -CDT_E_PROTO);
		cdt_msg_free(m);
	}
	assert_int_equal(count_fds(), before);
	return r;
}

static void test_bulkf_wire_limits(void **state)
{
	(void)state;
	struct buf b;
	uint64_t len[CDT_ARGS_MAX + 1];

	buf_init(&b, CDT_MSG_MAX);
	for (size_t i = 0; i <= CDT_ARGS_MAX; i++)
		len[i] = CDT_BULK_MIN;
	/* The length: CDT_BULK_MIN .. MSG_BULKF_MAX (longer: a memfd). */
	const uint64_t bad[] = {0, CDT_BULK_MIN - 1, MSG_BULKF_MAX + 1, CDT_MSG_MAX, UINT64_MAX};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len[0] = bad[i];
		raw_bulkf(&b, 1, len);
		assert_int_equal(dec_f(&b, 0), -CDT_E_VALUE);
	}
	len[0] = MSG_BULKF_MAX;
	raw_bulkf(&b, 1, len);
	assert_int_equal(dec_f(&b, 0), 0);
	len[0] = CDT_BULK_MIN;
	raw_bulkf(&b, 1, len);
	assert_int_equal(dec_f(&b, 0), 0);
	/* It carries no fd: one passed with it is an error. */
	assert_int_equal(dec_f(&b, 1), -CDT_E_FD);

	/* Truncated anywhere inside the value, or a byte too many. */
	size_t full = b.len;
	for (size_t cut = 1; cut <= MSG_BULKF_VALUE_SIZE; cut++) {
		struct buf t;
		buf_init(&t, CDT_MSG_MAX);
		assert_int_equal(buf_append(&t, b.data, full - cut), 0);
		assert_int_equal(dec_f(&t, 0), -CDT_E_TRUNCATED);
		buf_free(&t);
	}
	assert_int_equal(buf_put_u8(&b, 0), 0);
	assert_int_equal(dec_f(&b, 0), -CDT_E_TRAILING);

	/* As many as a message has arguments; one more is the argument limit. */
	raw_bulkf(&b, CDT_ARGS_MAX, len);
	assert_int_equal(dec_f(&b, 0), 0);
	raw_bulkf(&b, CDT_ARGS_MAX + 1, len);
	assert_int_equal(dec_f(&b, 0), -CDT_E_LIMIT);
	buf_free(&b);
}

/* Frames attach in argument order, each only at its exact length; the
 * value opens only with its own key and id. */
static void test_bulkf_attach(void **state)
{
	(void)state;
	struct buf b;
	const uint64_t lens[] = {CDT_BULK_MIN, MSG_BULKF_MAX};
	uint8_t *frame = calloc(1, MSG_BULKF_MAX + MSG_BULKF_OVERHEAD + 1);
	cdt_msg *m;

	assert_non_null(frame);
	buf_init(&b, CDT_MSG_MAX);
	raw_bulkf(&b, 2, lens);
	assert_int_equal(cdt_msg_decode(b.data, b.len, NULL, 0, &m), 0);
	size_t first = CDT_BULK_MIN + MSG_BULKF_OVERHEAD;
	size_t second = MSG_BULKF_MAX + MSG_BULKF_OVERHEAD;
	assert_int_equal(msg_bulkf_want(m), first);
	assert_int_equal(msg_bulkf_missing(m), 2);
	assert_int_equal(msg_bulkf_attach(m, frame, first - 1), -EINVAL);
	assert_int_equal(msg_bulkf_attach(m, frame, first + 1), -EINVAL);
	assert_int_equal(msg_bulkf_attach(m, frame, second), -EINVAL);
	assert_int_equal(msg_bulkf_attach(m, frame, first), 0);
	assert_int_equal(msg_bulkf_want(m), second);
	assert_int_equal(msg_bulkf_missing(m), 1);
	assert_int_equal(msg_bulk_check(m), -CDT_E_PROTO); /* one still missing */
	assert_int_equal(msg_bulkf_attach(m, frame, second), 0);
	assert_int_equal(msg_bulkf_want(m), 0);
	assert_int_equal(msg_bulkf_missing(m), 0);
	assert_int_equal(msg_bulkf_attach(m, frame, first), -EINVAL); /* none left */
	assert_int_equal(msg_bulk_check(m), 0);
	/* Zeros are not what this key sealed. */
	assert_int_equal(msg_bulk_resolve(m), -CDT_E_AUTH);
	cdt_msg_free(m);
	buf_free(&b);
	free(frame);
}

/* One flipped bit in a BULK frame's ciphertext or tag, or in the key or
 * id its message carries, is refused. */
static void test_bulkf_tamper(void **state)
{
	(void)state;
	static uint8_t data[MSG_BULKF_MAX];
	cdt_msg *m, *s = NULL, *w;
	uint8_t enc[256];
	const uint8_t *fp;
	size_t flen;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	assert_int_equal(cdt_msg_new(CDT_KIND_EVENT, 0, "e", &m), 0);
	assert_int_equal(cdt_msg_add_bytes(m, "a", data, sizeof(data)), 0);
	assert_int_equal(msg_bulk_seal(m, &s), 0);
	assert_int_equal(s->nbulkf, 1);
	long len = cdt_msg_encode(s, enc, sizeof(enc));
	assert_true(len > 0);
	msg_bulkf_frame(s, 0, &fp, &flen);
	assert_int_equal(flen, sizeof(data) + MSG_BULKF_OVERHEAD);
	/* The header says BULK, no flags, no fds, and the body's length. */
	assert_int_equal(fp[0], 1);
	assert_int_equal(fp[1], 3);
	assert_int_equal(fp[2], 0);
	assert_int_equal(fp[3], 0);
	assert_int_equal(le32_get(fp + 4), flen - 8);
	uint8_t *f = malloc(flen);
	assert_non_null(f);
	memcpy(f, fp, flen);
	for (size_t pos = 8; pos < flen; pos += (flen - 8) / 9) {
		assert_int_equal(cdt_msg_decode(enc, (size_t)len, NULL, 0, &w), 0);
		f[pos] ^= 1;
		assert_int_equal(msg_bulkf_attach(w, f, flen), 0);
		f[pos] ^= 1;
		assert_int_equal(msg_bulk_resolve(w), -CDT_E_AUTH);
		cdt_msg_free(w);
	}
	/* The last byte of the tag, too. */
	f[flen - 1] ^= 1;
	assert_int_equal(cdt_msg_decode(enc, (size_t)len, NULL, 0, &w), 0);
	assert_int_equal(msg_bulkf_attach(w, f, flen), 0);
	assert_int_equal(msg_bulk_resolve(w), -CDT_E_AUTH);
	cdt_msg_free(w);
	f[flen - 1] ^= 1;
	/* The key and the id at the end of the message. */
	size_t kid = (size_t)len - MSG_BULK_ID_SIZE - MSG_BULK_KEY_SIZE;
	for (size_t k = kid; k < (size_t)len; k += 5) {
		enc[k] ^= 0x80;
		assert_int_equal(cdt_msg_decode(enc, (size_t)len, NULL, 0, &w), 0);
		enc[k] ^= 0x80;
		assert_int_equal(msg_bulkf_attach(w, f, flen), 0);
		assert_int_equal(msg_bulk_resolve(w), -CDT_E_AUTH);
		cdt_msg_free(w);
	}
	/* Untouched, it opens to the bytes sealed. */
	assert_int_equal(cdt_msg_decode(enc, (size_t)len, NULL, 0, &w), 0);
	assert_int_equal(msg_bulkf_attach(w, f, flen), 0);
	assert_int_equal(msg_bulk_resolve(w), 0);
	const uint8_t *p;
	size_t n;
	assert_int_equal(cdt_msg_get_bytes(w, "a", &p, &n), 0);
	assert_int_equal(n, sizeof(data));
	assert_memory_equal(p, data, n);
	cdt_msg_free(w);
	free(f);
	cdt_msg_free(s);
	cdt_msg_free(m);
}

/* A BULKF key in a decoded message's inline store is wiped when the
 * arriving frame moves the store to the heap. */
static void test_bulkf_key_wiped_on_move(void **state)
{
	(void)state;
	struct buf b;
	const uint64_t lens[] = {CDT_BULK_MIN};
	uint8_t *frame = calloc(1, CDT_BULK_MIN + MSG_BULKF_OVERHEAD);
	uint8_t key[MSG_BULK_KEY_SIZE], zero[MSG_BULK_KEY_SIZE] = {0};
	cdt_msg *m;
	struct cdt_arg a;

	assert_non_null(frame);
	buf_init(&b, CDT_MSG_MAX);
	raw_bulkf(&b, 1, lens);
	assert_int_equal(cdt_msg_decode(b.data, b.len, NULL, 0, &m), 0);
	assert_int_equal(cdt_msg_arg(m, 0, &a), 0);
	/* The store holds "aa\0", then the key and the id. */
	const uint8_t *old_key = (const uint8_t *)a.name + 3;
	for (size_t k = 0; k < sizeof(key); k++)
		key[k] = (uint8_t)k;
	assert_memory_equal(old_key, key, sizeof(key));
	assert_int_equal(msg_bulkf_attach(m, frame, CDT_BULK_MIN + MSG_BULKF_OVERHEAD), 0);
	assert_memory_equal(old_key, zero, sizeof(zero));
	uint8_t e[256];
	assert_int_equal(cdt_msg_encode(m, e, sizeof(e)), (long)b.len);
	assert_memory_equal(e, b.data, b.len);
	cdt_msg_free(m);
	buf_free(&b);
	free(frame);
}

/* A message of one bulk arg of n bytes on fd, with key/id from a sealed
 * message (so only the memfd is wrong). */
static int resolve_with(int fd, uint64_t n)
{
	struct buf b;
	uint8_t idx[1] = {0};
	cdt_msg *m;
	int r;

	buf_init(&b, CDT_MSG_MAX);
	raw_bulk(&b, 1, &n, idx);
	r = cdt_msg_decode(b.data, b.len, &fd, 1, &m);
	buf_free(&b);
	assert_int_equal(r, 0);
	r = msg_bulk_check(m);
	int r2 = msg_bulk_resolve(m);
	if (r < 0)
		assert_int_equal(r2, r); /* the receiver checks again */
	cdt_msg_free(m);
	return r2;
}

static void test_refused_memfds(void **state)
{
	(void)state;
	const uint64_t n = CDT_BULK_MIN;
	size_t before = count_fds();
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	close(p[1]);
	assert_int_equal(resolve_with(p[0], n), -CDT_E_FD);
	int fd = memfd_create("t", MFD_CLOEXEC); /* cannot be sealed */
	assert_int_equal(ftruncate(fd, (off_t)(n + 16)), 0);
	assert_int_equal(resolve_with(fd, n), -CDT_E_FD);
	assert_int_equal(resolve_with(memfd_of(n + 16, 0), n), -CDT_E_FD);
	const int one[] = {F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE, F_SEAL_SEAL};
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(resolve_with(memfd_of(n + 16, SEALS_ALL & ~one[i]), n), -CDT_E_FD);
	assert_int_equal(resolve_with(memfd_of(n + 16, SEALS_ALL | F_SEAL_FUTURE_WRITE), n),
			 -CDT_E_FD);
	assert_int_equal(resolve_with(memfd_of(n + 15, SEALS_ALL), n), -CDT_E_FD);
	assert_int_equal(resolve_with(memfd_of(n + 17, SEALS_ALL), n), -CDT_E_FD);
	assert_int_equal(resolve_with(memfd_of(n, SEALS_ALL), n), -CDT_E_FD);
	/* Sealed right but not sealed by this key: authentication fails. */
	assert_int_equal(resolve_with(memfd_of(n + 16, SEALS_ALL), n), -CDT_E_AUTH);
	assert_int_equal(count_fds(), before);
}

/* One flipped bit anywhere (ciphertext, tag, key, id, length) is refused. */
static void test_tamper(void **state)
{
	(void)state;
	static uint8_t data[MSG_BULKF_MAX + 1];
	cdt_msg *m, *s = NULL, *w;
	uint8_t enc[256];
	size_t before = count_fds();

	assert_int_equal(cdt_msg_new(CDT_KIND_EVENT, 0, "e", &m), 0);
	assert_int_equal(cdt_msg_add_bytes(m, "a", data, sizeof(data)), 0);
	assert_int_equal(msg_bulk_seal(m, &s), 0);
	long len = cdt_msg_encode(s, enc, sizeof(enc));
	assert_true(len > 0);
	int src = cdt_msg_fds(s)[0];
	size_t size = sizeof(data) + 16;
	uint8_t *orig = malloc(size);
	assert_int_equal(pread(src, orig, size, 0), (ssize_t)size);
	/* Mutated copies of the memfd, same seals and size. */
	for (size_t pos = 0; pos < size; pos += size / 7) {
		int fd = memfd_of(0, 0);
		orig[pos] ^= 1;
		assert_int_equal(pwrite(fd, orig, size, 0), (ssize_t)size);
		orig[pos] ^= 1;
		assert_int_equal(fcntl(fd, F_ADD_SEALS, SEALS_ALL), 0);
		assert_int_equal(cdt_msg_decode(enc, (size_t)len, &fd, 1, &w), 0);
		assert_int_equal(msg_bulk_resolve(w), -CDT_E_AUTH);
		cdt_msg_free(w);
	}
	/* The key and the id in the message (the length is covered by the
	 * size check and the associated data). */
	size_t kid = (size_t)len - 1 - MSG_BULK_ID_SIZE - MSG_BULK_KEY_SIZE;
	for (size_t k = kid; k < (size_t)len - 1; k += 5) {
		int fd = fcntl(src, F_DUPFD_CLOEXEC, 3);
		enc[k] ^= 0x80;
		assert_int_equal(cdt_msg_decode(enc, (size_t)len, &fd, 1, &w), 0);
		enc[k] ^= 0x80;
		assert_int_equal(msg_bulk_resolve(w), -CDT_E_AUTH);
		cdt_msg_free(w);
	}
	/* Untouched, it opens. */
	int fd = fcntl(src, F_DUPFD_CLOEXEC, 3);
	assert_int_equal(cdt_msg_decode(enc, (size_t)len, &fd, 1, &w), 0);
	assert_int_equal(msg_bulk_resolve(w), 0);
	cdt_msg_free(w);
	free(orig);
	cdt_msg_free(s);
	cdt_msg_free(m);
	assert_int_equal(count_fds(), before);
}

/* A decoded bulk key lives in the store inside the message's allocation;
 * when an add moves the store to the heap, the key left behind is wiped
 * and the moved one still encodes.  The view taken before the add points
 * at the old place, which stays readable while the message lives. */
static void test_key_wiped_on_move(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, CDT_MSG_MAX);
	const uint64_t lens[] = {CDT_BULK_MIN};
	const uint8_t idx[] = {0};
	raw_bulk(&b, 1, lens, idx);
	int fd = memfd_of(0, 0);
	cdt_msg *m;
	assert_int_equal(cdt_msg_decode(b.data, b.len, &fd, 1, &m), 0);
	struct cdt_arg a;
	assert_int_equal(cdt_msg_arg(m, 0, &a), 0);
	/* The store holds "a\0", then the key and the id. */
	const uint8_t *old_key = (const uint8_t *)a.name + 2;
	uint8_t key[MSG_BULK_KEY_SIZE], zero[MSG_BULK_KEY_SIZE] = {0};
	for (size_t k = 0; k < sizeof(key); k++)
		key[k] = (uint8_t)k;
	assert_memory_equal(old_key, key, sizeof(key));

	uint8_t big[1000];
	memset(big, 'z', sizeof(big));
	assert_int_equal(cdt_msg_add_bytes(m, "z", big, sizeof(big)), 0);
	assert_memory_equal(old_key, zero, sizeof(zero));
	/* The key moved with the store: the bulk argument encodes as it came. */
	long n = cdt_msg_encode(m, NULL, 0);
	assert_true(n > 0);
	uint8_t *e = malloc((size_t)n);
	assert_non_null(e);
	assert_int_equal(cdt_msg_encode(m, e, (size_t)n), n);
	/* header 13 + "m" 1, then name_len, "a", type, u64 length: the key */
	assert_memory_equal(e + 13 + 1 + 3 + 8, key, sizeof(key));
	free(e);
	cdt_msg_free(m);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wire_limits),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_seal_scratch),
		cmocka_unit_test(test_fd_budget),
		cmocka_unit_test(test_refused_memfds),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_key_wiped_on_move),
		cmocka_unit_test(test_bulkf_wire_limits),
		cmocka_unit_test(test_bulkf_attach),
		cmocka_unit_test(test_bulkf_tamper),
		cmocka_unit_test(test_bulkf_key_wiped_on_move),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
