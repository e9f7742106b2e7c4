/* SPDX-License-Identifier: MIT */
/* Bulk arguments (lib/msg-bulk.c, docs/protocol.md section 4.1): the BULK
 * wire type at its limits (length min-1/min/max/max+1, truncated at every
 * byte, fd index out of range, shared, reordered), sealing and resolving
 * round trips, and every memfd the receiver must refuse. */
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

/* seal, encode, decode (the broker), copy (forward), encode, decode,
 * resolve (the callee): the same bytes at the end. */
static void roundtrip(size_t n, bool expect_bulk)
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
	if (!expect_bulk) {
		assert_null(sealed);
		cdt_msg_free(m);
		free(data);
		return;
	}
	assert_non_null(sealed);
	assert_int_equal(cdt_msg_nfds(sealed), 1);
	assert_true(msg_is_bulk(sealed, "data"));

	long len = cdt_msg_encode(sealed, NULL, 0);
	assert_true(len > 0 && len < 200);
	uint8_t *enc = malloc((size_t)len);
	assert_int_equal(cdt_msg_encode(sealed, enc, (size_t)len), len);
	int fd = fcntl(cdt_msg_fds(sealed)[0], F_DUPFD_CLOEXEC, 3);
	assert_int_equal(cdt_msg_decode(enc, (size_t)len, &fd, 1, &wire), 0);
	assert_int_equal(msg_bulk_check(wire), 0);

	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 6, "x.y", &fwd), 0);
	assert_int_equal(msg_copy_bulk(fwd, wire, "data"), 0);
	assert_int_equal(msg_copy_bulk(fwd, wire, "z"), -ENOENT);
	assert_int_equal(cdt_msg_add_u64(fwd, "z", 9), 0);
	assert_int_equal(cdt_msg_encode(fwd, enc, (size_t)len), cdt_msg_encode(fwd, NULL, 0));
	fd = fcntl(cdt_msg_fds(fwd)[0], F_DUPFD_CLOEXEC, 3);
	assert_int_equal(cdt_msg_decode(enc, (size_t)cdt_msg_encode(fwd, NULL, 0), &fd, 1, &wire2),
			 0);
	assert_int_equal(msg_bulk_resolve(wire2), 0);
	const uint8_t *p;
	size_t got;
	assert_int_equal(cdt_msg_get_bytes(wire2, "data", &p, &got), 0);
	assert_int_equal(got, n);
	assert_memory_equal(p, data, n);
	assert_int_equal(cdt_msg_nfds(wire2), 0);
	/* Resolved, it encodes as the inline message would. */
	assert_int_equal(cdt_msg_encode(wire2, NULL, 0), cdt_msg_encode(m, NULL, 0));
	assert_int_equal(msg_bulk_resolve(wire2), 0); /* nothing left: no-op */

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
	roundtrip(0, false);
	roundtrip(CDT_BULK_MIN - 1, false);
	roundtrip(CDT_BULK_MIN, true);
	roundtrip(1024 * 1024, true);
	/* The longest value the message can carry inline. */
	roundtrip(CDT_MSG_MAX - 64, true);
}

/* A bulk value takes an fd only where one is left for the fd arguments. */
static void test_fd_budget(void **state)
{
	(void)state;
	static uint8_t big[CDT_BULK_MIN];
	cdt_msg *m, *s = NULL;
	char name[] = "a";

	assert_int_equal(cdt_msg_new(CDT_KIND_EVENT, 0, "e", &m), 0);
	for (size_t i = 0; i < CDT_FDS_MAX + 1; i++, name[0]++)
		assert_int_equal(cdt_msg_add_bytes(m, name, big, sizeof(big)), 0);
	assert_int_equal(cdt_msg_add_fd(m, "zfd", 0), 0);
	assert_int_equal(msg_bulk_seal(m, &s), 0);
	assert_non_null(s);
	assert_int_equal(cdt_msg_nfds(s), CDT_FDS_MAX);
	size_t nbulk = 0;
	name[0] = 'a';
	for (size_t i = 0; i < CDT_FDS_MAX + 1; i++, name[0]++)
		nbulk += msg_is_bulk(s, name);
	assert_int_equal(nbulk, CDT_FDS_MAX - 1);
	cdt_msg_free(s);
	cdt_msg_free(m);
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
	static uint8_t data[CDT_BULK_MIN + 1];
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
		cmocka_unit_test(test_wire_limits), cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_fd_budget),   cmocka_unit_test(test_refused_memfds),
		cmocka_unit_test(test_tamper),	    cmocka_unit_test(test_key_wiped_on_move),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
