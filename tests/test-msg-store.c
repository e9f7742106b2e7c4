/* SPDX-License-Identifier: MIT */
/*
 * Where a message keeps its arguments (lib/msg.c, lib/msg-codec.c): the
 * table and store that start inside the message's own allocation and move
 * to the heap when they fill, the name tables, and msg_copy_args(), the
 * broker's copy of a whole argument list.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conduit/conduit.h"
#include "msg.h"

static uint8_t *enc(const cdt_msg *m, size_t *ret_len)
{
	long n = cdt_msg_encode(m, NULL, 0);
	assert_true(n > 0);
	uint8_t *b = malloc((size_t)n);
	assert_non_null(b);
	assert_int_equal(cdt_msg_encode(m, b, (size_t)n), n);
	*ret_len = (size_t)n;
	return b;
}

static bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* The rules as docs/protocol.md section 4 states them, written the long
 * way, to check the tables against. */
static bool ref_arg_char(unsigned char c, bool first)
{
	if (c >= 'a' && c <= 'z')
		return true;
	if (c == '_')
		return true;
	return !first && c >= '0' && c <= '9';
}

static bool ref_method_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Every byte value in every position of short names. */
static void test_name_tables(void **state)
{
	(void)state;
	for (unsigned c = 0; c < 256; c++) {
		char s[4] = {'a', 'b', 'c', 0};
		for (size_t pos = 0; pos < 3; pos++) {
			memcpy(s, "abc", 3);
			s[pos] = (char)c;
			bool want = true;
			for (size_t i = 0; i < 3; i++)
				want = want && ref_arg_char((unsigned char)s[i], i == 0);
			assert_int_equal(msg_arg_name_valid(s, 3), want);
			/* The NUL-terminated path of cdt_msg_add_*. */
			cdt_msg *m;
			assert_int_equal(cdt_msg_new(CDT_KIND_EVENT, 0, "ev", &m), 0);
			/* As a C string a NUL ends the name: a shorter one. */
			bool swant = c == 0 ? pos > 0 : want;
			int r = cdt_msg_add_bool(m, s, true);
			assert_int_equal(r, swant ? 0 : -EINVAL);
			cdt_msg_free(m);

			bool mwant = true;
			for (size_t i = 0; i < 3; i++)
				mwant = mwant && ref_method_char((unsigned char)s[i]);
			/* A dot is allowed only between segments. */
			if (c == '.')
				mwant = pos == 1;
			assert_int_equal(msg_name_valid(s, 3), mwant);
		}
	}
	assert_false(msg_name_valid("a..b", 4));
	assert_false(msg_name_valid(".ab", 3));
	assert_false(msg_name_valid("ab.", 3));
	assert_true(msg_name_valid("a.b-c.d_9", 9));
}

/* Names at exactly CDT_NAME_MAX and one past, through the one-pass scan. */
static void test_name_length_scan(void **state)
{
	(void)state;
	char name[CDT_NAME_MAX + 2];
	cdt_msg *m;
	assert_int_equal(cdt_msg_new(CDT_KIND_EVENT, 0, "ev", &m), 0);
	memset(name, 'x', sizeof(name));
	name[CDT_NAME_MAX] = '\0';
	assert_int_equal(cdt_msg_add_u64(m, name, 1), 0);
	name[CDT_NAME_MAX] = 'x';
	name[CDT_NAME_MAX + 1] = '\0';
	assert_int_equal(cdt_msg_add_u64(m, name, 1), -EINVAL);
	assert_int_equal(cdt_msg_add_u64(m, "", 1), -EINVAL);
	/* A valid prefix followed by a bad byte is not a shorter name. */
	assert_int_equal(cdt_msg_add_u64(m, "ok!", 1), -EINVAL);
	assert_int_equal(cdt_msg_nargs(m), 1);
	cdt_msg_free(m);
}

/* Past the inline table and store, out of order, up to the argument limit
 * and one past: lookups, encoding and decoding agree all the way. */
static void test_growth(void **state)
{
	(void)state;
	cdt_msg *m;
	char name[16], val[40];
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 9, "grow.test", &m), 0);
	for (int i = 0; i < CDT_ARGS_MAX; i++) {
		/* Descending: every insertion goes to the front. */
		snprintf(name, sizeof(name), "a%02d", CDT_ARGS_MAX - 1 - i);
		int n = snprintf(val, sizeof(val), "value number %d of the test", i);
		assert_int_equal(cdt_msg_add_string(m, name, val, (size_t)n), 0);
	}
	assert_int_equal(cdt_msg_add_bool(m, "z", true), -E2BIG);
	assert_int_equal(cdt_msg_nargs(m), CDT_ARGS_MAX);
	for (int i = 0; i < CDT_ARGS_MAX; i++) {
		struct cdt_arg g;
		snprintf(name, sizeof(name), "a%02d", i);
		assert_int_equal(cdt_msg_arg(m, (size_t)i, &g), 0);
		assert_string_equal(g.name, name);
		int n = snprintf(val, sizeof(val), "value number %d of the test",
				 CDT_ARGS_MAX - 1 - i);
		assert_int_equal(g.v.str.len, (size_t)n);
		assert_memory_equal(g.v.str.ptr, val, (size_t)n);
	}
	size_t len, len2;
	uint8_t *b = enc(m, &len);
	cdt_msg *d;
	assert_int_equal(cdt_msg_decode(b, len, NULL, 0, &d), 0);
	uint8_t *b2 = enc(d, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(b, b2, len);
	/* At the limit, a decoded message refuses one more too. */
	assert_int_equal(cdt_msg_add_bool(d, "z", true), -E2BIG);
	free(b);
	free(b2);
	cdt_msg_free(d);
	cdt_msg_free(m);
}

/* A decoded message's table and store are sized from the wire; adding
 * moves both to the heap, and everything reads the same after. */
static void test_decoded_then_grown(void **state)
{
	(void)state;
	cdt_msg *m, *d;
	assert_int_equal(cdt_msg_new(CDT_KIND_EVENT, 0, "ev.x", &m), 0);
	assert_int_equal(cdt_msg_add_bytes(m, "m", "mm", 2), 0);
	size_t len;
	uint8_t *b = enc(m, &len);
	assert_int_equal(cdt_msg_decode(b, len, NULL, 0, &d), 0);
	char name[8];
	uint8_t big[600];
	memset(big, 0xab, sizeof(big));
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		assert_int_equal(cdt_msg_add_bytes(d, name, big, sizeof(big) - (size_t)i), 0);
	}
	const uint8_t *p;
	size_t plen;
	assert_int_equal(cdt_msg_get_bytes(d, "m", &p, &plen), 0);
	assert_int_equal(plen, 2);
	assert_memory_equal(p, "mm", 2);
	assert_int_equal(cdt_msg_get_bytes(d, "k19", &p, &plen), 0);
	assert_int_equal(plen, sizeof(big) - 19);
	free(b);
	cdt_msg_free(d);
	cdt_msg_free(m);
}

static cdt_msg *every_type(int fd)
{
	cdt_msg *m;
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 5, "svc.do", &m), 0);
	assert_int_equal(cdt_msg_add_bool(m, "b", true), 0);
	assert_int_equal(cdt_msg_add_i64(m, "i", -3), 0);
	assert_int_equal(cdt_msg_add_u64(m, "u", 7), 0);
	assert_int_equal(cdt_msg_add_double(m, "d", 0.5), 0);
	assert_int_equal(cdt_msg_add_string(m, "s", "héllo", 6), 0);
	assert_int_equal(cdt_msg_add_bytes(m, "y", "\0\1\2", 3), 0);
	assert_int_equal(cdt_msg_add_fd(m, "f", fd), 0);
	return m;
}

/* The copy encodes exactly as the source with the copy's header, for a
 * built and for a decoded source, and owns fds of its own. */
static void test_copy_args(void **state)
{
	(void)state;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	cdt_msg *src = every_type(fd);
	size_t slen;
	uint8_t *sb = enc(src, &slen);
	int pass = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	cdt_msg *dec;
	assert_int_equal(cdt_msg_decode(sb, slen, &pass, 1, &dec), 0);

	const cdt_msg *sources[] = {src, dec};
	for (size_t k = 0; k < 2; k++) {
		cdt_msg *dst;
		assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 77, "svc.do", &dst), 0);
		assert_int_equal(msg_copy_args(dst, sources[k]), 0);
		assert_int_equal(cdt_msg_nfds(dst), 1);
		int copy_fd = cdt_msg_fds(dst)[0];
		assert_int_not_equal(copy_fd, cdt_msg_fds(sources[k])[0]);
		assert_true(fd_is_open(copy_fd));
		assert_true(fcntl(copy_fd, F_GETFD) & FD_CLOEXEC);
		size_t dlen;
		uint8_t *db = enc(dst, &dlen);
		assert_int_equal(dlen, slen);
		/* Header: version, kind, nargs, then the call id differs. */
		assert_memory_equal(db, sb, 4);
		assert_memory_equal(db + 12, sb + 12, slen - 12);
		/* And the copy can be added to like any message. */
		assert_int_equal(cdt_msg_add_string(dst, "_caller", "me", 2), 0);
		const char *s;
		assert_int_equal(cdt_msg_get_string(dst, "s", &s, NULL), 0);
		assert_string_equal(s, "héllo");
		free(db);
		cdt_msg_free(dst);
		assert_false(fd_is_open(copy_fd));
	}
	/* The sources still own theirs. */
	assert_true(fd_is_open(cdt_msg_fds(dec)[0]));
	free(sb);
	cdt_msg_free(dec);
	cdt_msg_free(src);
	close(fd);
}

static void test_copy_args_refused(void **state)
{
	(void)state;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	cdt_msg *src = every_type(fd), *dst, *empty;
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 1, "x", &dst), 0);
	assert_int_equal(cdt_msg_add_bool(dst, "a", true), 0);
	/* Only into a message without arguments. */
	assert_int_equal(msg_copy_args(dst, src), -EINVAL);
	assert_int_equal(msg_copy_args(NULL, src), -EINVAL);
	assert_int_equal(msg_copy_args(dst, NULL), -EINVAL);
	cdt_msg_free(dst);
	/* Nothing to copy is a copy. */
	assert_int_equal(cdt_msg_new(CDT_KIND_REPLY, 1, NULL, &empty), 0);
	assert_int_equal(cdt_msg_new(CDT_KIND_REPLY, 2, NULL, &dst), 0);
	assert_int_equal(msg_copy_args(dst, empty), 0);
	assert_int_equal(cdt_msg_nargs(dst), 0);
	cdt_msg_free(dst);
	cdt_msg_free(empty);
	/* A moved-out fd: nothing faithful to copy. */
	int taken;
	assert_int_equal(cdt_msg_take_fd(src, "f", &taken), 0);
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 1, "x", &dst), 0);
	assert_int_equal(msg_copy_args(dst, src), -EBADF);
	assert_int_equal(cdt_msg_nargs(dst), 0);
	cdt_msg_free(dst);
	close(taken);
	cdt_msg_free(src);
	close(fd);
}

/* The copy may not pass CDT_MSG_MAX: exactly the maximum is fine, a longer
 * name on the copy makes it one byte too many. */
static void test_copy_args_max(void **state)
{
	(void)state;
	cdt_msg *src, *dst;
	assert_int_equal(cdt_msg_new(CDT_KIND_EVENT, 0, "e", &src), 0);
	/* header 13 + name 1 + (1 + 1 + 1 + 4 + n) */
	size_t n = CDT_MSG_MAX - 13 - 1 - 7;
	uint8_t *big = calloc(1, n);
	assert_non_null(big);
	assert_int_equal(cdt_msg_add_bytes(src, "b", big, n), 0);
	assert_int_equal(cdt_msg_encode(src, NULL, 0), (long)CDT_MSG_MAX);

	assert_int_equal(cdt_msg_new(CDT_KIND_EVENT, 0, "f", &dst), 0);
	assert_int_equal(msg_copy_args(dst, src), 0);
	assert_int_equal(cdt_msg_encode(dst, NULL, 0), (long)CDT_MSG_MAX);
	cdt_msg_free(dst);

	assert_int_equal(cdt_msg_new(CDT_KIND_EVENT, 0, "ff", &dst), 0);
	assert_int_equal(msg_copy_args(dst, src), -E2BIG);
	assert_int_equal(cdt_msg_nargs(dst), 0);
	assert_int_equal(cdt_msg_encode(dst, NULL, 0), 13 + 2);
	cdt_msg_free(dst);
	cdt_msg_free(src);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_tables),   cmocka_unit_test(test_name_length_scan),
		cmocka_unit_test(test_growth),	      cmocka_unit_test(test_decoded_then_grown),
		cmocka_unit_test(test_copy_args),     cmocka_unit_test(test_copy_args_refused),
		cmocka_unit_test(test_copy_args_max),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
