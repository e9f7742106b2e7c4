/* SPDX-License-Identifier: MIT */
/* The message codec: building, the canonical encoding, every limit at max
 * and max+1, every decoder rejection, fd ownership, and randomized
 * round trips and mutations. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "conduit/conduit.h"
#include "selfcheck.h"

/* docs/protocol.md section 7, vector M1. */
static const char vector_hex[] =
	"010205000807060504030201097461672e777269746505666f7263650101036c6f67"
	"0700037261770602000000dead03746167050500000074616e6b310576616c756504"
	"0000000000404540";

static size_t unhex(const char *hex, uint8_t *out)
{
	size_t n = strlen(hex) / 2;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

static int devnull(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

static int count_fds(void)
{
	size_t n;
	assert_int_equal(selfcheck_fd_count(0, &n), 0);
	return (int)n;
}

static bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* Encode into a fresh malloc'd buffer. */
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

/* ---- Hand-built encodings, to reach what the encoder never produces ---- */

static void raw_init(struct buf *b)
{
	buf_init(b, CDT_MSG_MAX + 64);
}

static void raw_hdr(struct buf *b, uint8_t ver, uint8_t kind, uint16_t nargs, uint64_t id,
		    const char *name)
{
	size_t n = strlen(name);
	assert_int_equal(buf_put_u8(b, ver), 0);
	assert_int_equal(buf_put_u8(b, kind), 0);
	assert_int_equal(buf_put_u16(b, nargs), 0);
	assert_int_equal(buf_put_u64(b, id), 0);
	assert_int_equal(buf_put_u8(b, (uint8_t)n), 0);
	assert_int_equal(buf_append(b, name, n), 0);
}

static void raw_arg(struct buf *b, const char *name, uint8_t type)
{
	size_t n = strlen(name);
	assert_int_equal(buf_put_u8(b, (uint8_t)n), 0);
	assert_int_equal(buf_append(b, name, n), 0);
	assert_int_equal(buf_put_u8(b, type), 0);
}

static void raw_data(struct buf *b, const void *p, size_t len)
{
	assert_int_equal(buf_put_u32(b, (uint32_t)len), 0);
	assert_int_equal(buf_append(b, p, len), 0);
}

/* Decode p[0..len) with nfds fresh fds; on failure check every fd was
 * closed, on success check the re-encoding is the input.  Returns the
 * decoder's result. */
static int dec_n(const uint8_t *p, size_t len, size_t nfds)
{
	int fds[CDT_FDS_MAX + 2];
	assert_true(nfds <= CDT_FDS_MAX + 2);
	for (size_t i = 0; i < nfds; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	cdt_msg *m = NULL;
	int r = cdt_msg_decode(p, len, fds, nfds, &m);
	if (r < 0) {
		assert_null(m);
		for (size_t i = 0; i < nfds; i++)
			assert_false(fd_is_open(fds[i]));
		return r;
	}
	assert_int_equal(cdt_msg_nfds(m), nfds);
	size_t elen;
	uint8_t *e = enc(m, &elen);
	assert_int_equal(elen, len);
	assert_memory_equal(e, p, len);
	free(e);
	cdt_msg_free(m);
	for (size_t i = 0; i < nfds; i++)
		assert_false(fd_is_open(fds[i]));
	return r;
}

static int dec(const struct buf *b, size_t nfds)
{
	return dec_n(b->data, b->len, nfds);
}

static cdt_msg *vector_msg(int fd)
{
	cdt_msg *m;
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 0x0102030405060708u, "tag.write", &m), 0);
	/* Added out of order on purpose: the encoding sorts. */
	assert_int_equal(cdt_msg_add_double(m, "value", 42.5), 0);
	assert_int_equal(cdt_msg_add_string(m, "tag", "tank1", 5), 0);
	assert_int_equal(cdt_msg_add_bool(m, "force", true), 0);
	assert_int_equal(cdt_msg_add_fd(m, "log", fd), 0);
	assert_int_equal(cdt_msg_add_bytes(m, "raw", "\xde\xad", 2), 0);
	return m;
}

static void test_vector(void **state)
{
	(void)state;
	uint8_t want[128];
	size_t want_len = unhex(vector_hex, want);
	int fd = devnull();
	cdt_msg *m = vector_msg(fd);
	size_t len;
	uint8_t *b = enc(m, &len);
	assert_int_equal(len, want_len);
	assert_memory_equal(b, want, len);
	assert_int_equal(cdt_msg_nfds(m), 1);
	cdt_msg_free(m);

	int pass = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	cdt_msg *d;
	assert_int_equal(cdt_msg_decode(want, want_len, &pass, 1, &d), 0);
	assert_int_equal(cdt_msg_kind(d), CDT_KIND_CALL);
	assert_true(cdt_msg_call_id(d) == 0x0102030405060708u);
	assert_string_equal(cdt_msg_name(d), "tag.write");
	assert_int_equal(cdt_msg_nargs(d), 5);
	bool bv;
	double dv;
	const char *s;
	size_t sl;
	const uint8_t *p;
	assert_int_equal(cdt_msg_get_bool(d, "force", &bv), 0);
	assert_true(bv);
	assert_int_equal(cdt_msg_get_double(d, "value", &dv), 0);
	assert_true(dv == 42.5);
	assert_int_equal(cdt_msg_get_string(d, "tag", &s, &sl), 0);
	assert_string_equal(s, "tank1");
	assert_int_equal(sl, 5);
	assert_int_equal(cdt_msg_get_bytes(d, "raw", &p, &sl), 0);
	assert_int_equal(sl, 2);
	assert_memory_equal(p, "\xde\xad", 2);
	int got;
	assert_int_equal(cdt_msg_take_fd(d, "log", &got), 0);
	assert_int_equal(got, pass);
	assert_int_equal(cdt_msg_take_fd(d, "log", &got), -EBADF);
	assert_int_equal(cdt_msg_encode(d, b, len), -EBADF);
	cdt_msg_free(d);
	assert_true(fd_is_open(pass));
	close(pass);
	close(fd);
	free(b);
}

/* Thousands of failing decodes with fds attached leave the fd table as it
 * was: the decoder owns the fds in every case. */
static void test_decode_failure_closes_fds(void **state)
{
	(void)state;
	uint8_t good[128];
	size_t good_len = unhex(vector_hex, good);
	int base = devnull();
	int before = count_fds();
	for (int i = 0; i < 4000; i++) {
		int fds[CDT_FDS_MAX + 1];
		size_t nfds = (size_t)(i % (CDT_FDS_MAX + 2));
		for (size_t k = 0; k < nfds; k++)
			fds[k] = fcntl(base, F_DUPFD_CLOEXEC, 3);
		uint8_t b[128];
		memcpy(b, good, good_len);
		size_t len = good_len;
		switch (i % 4) {
		case 0: /* truncated */
			len = (size_t)i % good_len;
			break;
		case 1: /* trailing */
			len++;
			break;
		case 2: /* bad version */
			b[0] = 2;
			break;
		case 3: /* corrupt a byte of the body */
			b[13 + (size_t)i % (good_len - 13)] ^= 0xff;
			break;
		}
		cdt_msg *m = NULL;
		int r = cdt_msg_decode(b, len, fds, nfds, &m);
		if (r == 0) {
			/* A corruption may still decode (e.g. a value byte). */
			cdt_msg_free(m);
			continue;
		}
		assert_true(cdt_err_is_peer(r));
		assert_null(m);
		for (size_t k = 0; k < nfds; k++)
			assert_false(fd_is_open(fds[k]));
	}
	assert_int_equal(count_fds(), before);
	close(base);
}

static void test_new_kind_rules(void **state)
{
	(void)state;
	cdt_msg *m = NULL;
	static const struct {
		enum cdt_kind kind;
		uint64_t id;
		const char *name;
		int want;
	} cases[] = {
		{CDT_KIND_HELLO, 0, NULL, 0},
		{CDT_KIND_HELLO, 0, "", 0},
		{CDT_KIND_HELLO, 1, NULL, -EINVAL},
		{CDT_KIND_HELLO, 0, "x", -EINVAL},
		{CDT_KIND_CALL, 1, "tag.write", 0},
		{CDT_KIND_CALL, 0, "tag.write", -EINVAL},
		{CDT_KIND_CALL, 1, NULL, -EINVAL},
		{CDT_KIND_CALL, 1, "", -EINVAL},
		{CDT_KIND_REPLY, 1, NULL, 0},
		{CDT_KIND_REPLY, 0, NULL, -EINVAL},
		{CDT_KIND_REPLY, 1, "x", -EINVAL},
		{CDT_KIND_ERROR, UINT64_MAX, "policy.denied", 0},
		{CDT_KIND_ERROR, 0, "policy.denied", -EINVAL},
		{CDT_KIND_ERROR, 1, "", -EINVAL},
		{CDT_KIND_EVENT, 0, "alarm", 0},
		{CDT_KIND_EVENT, 1, "alarm", -EINVAL},
		{CDT_KIND_EVENT, 0, NULL, -EINVAL},
		{CDT_KIND_SUBSCRIBE, 0, "alarm", 0},
		{CDT_KIND_SUBSCRIBE, 5, "alarm", -EINVAL},
		{CDT_KIND_SUBSCRIBE, 0, "", -EINVAL},
		{(enum cdt_kind)0, 0, NULL, -EINVAL},
		{(enum cdt_kind)7, 0, "x", -EINVAL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = cdt_msg_new(cases[i].kind, cases[i].id, cases[i].name, &m);
		assert_int_equal(r, cases[i].want);
		if (r == 0) {
			assert_int_equal(cdt_msg_kind(m), cases[i].kind);
			assert_true(cdt_msg_call_id(m) == cases[i].id);
			assert_string_equal(cdt_msg_name(m), cases[i].name ? cases[i].name : "");
			cdt_msg_free(m);
		}
	}
	cdt_msg_free(NULL);
}

static void test_names(void **state)
{
	(void)state;
	char n64[65], n65[66];
	memset(n64, 'a', 64);
	n64[64] = '\0';
	memset(n65, 'a', 65);
	n65[65] = '\0';
	static const char *const good_msg[] = {"a", "tag.write", "a.b.c", "x-1_y.z9",
					       "0", "-",	 "_"};
	static const char *const bad_msg[] = {".a",	   "a.",	"a..b",	     ".",
					      "Tag",	   "tag.Write", "tag write", "tag/x",
					      "t\xc3\xa9", "tag\t"};
	cdt_msg *m;
	for (size_t i = 0; i < sizeof(good_msg) / sizeof(good_msg[0]); i++) {
		assert_int_equal(cdt_msg_new(CDT_KIND_EVENT, 0, good_msg[i], &m), 0);
		cdt_msg_free(m);
	}
	for (size_t i = 0; i < sizeof(bad_msg) / sizeof(bad_msg[0]); i++)
		assert_int_equal(cdt_msg_new(CDT_KIND_EVENT, 0, bad_msg[i], &m), -EINVAL);
	assert_int_equal(cdt_msg_new(CDT_KIND_EVENT, 0, n65, &m), -EINVAL);
	assert_int_equal(cdt_msg_new(CDT_KIND_EVENT, 0, n64, &m), 0);
	assert_string_equal(cdt_msg_name(m), n64);

	static const char *const good_arg[] = {"a", "_", "tag", "tank10", "_9", "a_b_c"};
	static const char *const bad_arg[] = {"",    "A",   "Tag", "9a",
					      "a.b", "a-b", "a b", "\xc3\xa9"};
	for (size_t i = 0; i < sizeof(good_arg) / sizeof(good_arg[0]); i++)
		assert_int_equal(cdt_msg_add_bool(m, good_arg[i], true), 0);
	for (size_t i = 0; i < sizeof(bad_arg) / sizeof(bad_arg[0]); i++)
		assert_int_equal(cdt_msg_add_bool(m, bad_arg[i], true), -EINVAL);
	assert_int_equal(cdt_msg_add_bool(m, n65, true), -EINVAL);
	assert_int_equal(cdt_msg_add_bool(m, n64, true), 0);
	assert_int_equal(cdt_msg_add_u64(m, "tag", 1), -EEXIST);
	assert_int_equal(cdt_msg_add_bool(m, NULL, true), -EINVAL);
	size_t len;
	uint8_t *b = enc(m, &len);
	assert_int_equal(dec_n(b, len, 0), 0);
	free(b);
	cdt_msg_free(m);
}

static void test_getters(void **state)
{
	(void)state;
	cdt_msg *m;
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 9, "m", &m), 0);
	assert_int_equal(cdt_msg_add_i64(m, "i", INT64_MIN), 0);
	assert_int_equal(cdt_msg_add_u64(m, "u", UINT64_MAX), 0);
	assert_int_equal(cdt_msg_add_string(m, "s", NULL, 0), 0);
	assert_int_equal(cdt_msg_add_bytes(m, "b", NULL, 0), 0);
	assert_int_equal(cdt_msg_add_string(m, "bad", "a\0b", 3), -EINVAL);
	assert_int_equal(cdt_msg_add_string(m, "bad", "\xc0\xaf", 2), -EINVAL);
	assert_int_equal(cdt_msg_add_string(m, "bad", NULL, 1), -EINVAL);
	assert_int_equal(cdt_msg_add_fd(m, "fd", -1), -EBADF);
	int64_t i;
	uint64_t u;
	bool b;
	const char *s;
	size_t len;
	const uint8_t *p;
	struct cdt_arg a;
	assert_int_equal(cdt_msg_get_i64(m, "i", &i), 0);
	assert_true(i == INT64_MIN);
	assert_int_equal(cdt_msg_get_u64(m, "u", &u), 0);
	assert_true(u == UINT64_MAX);
	assert_int_equal(cdt_msg_get_string(m, "s", &s, NULL), 0);
	assert_string_equal(s, "");
	assert_int_equal(cdt_msg_get_bytes(m, "b", &p, &len), 0);
	assert_int_equal(len, 0);
	assert_int_equal(cdt_msg_get_bool(m, "i", &b), -EMEDIUMTYPE);
	assert_int_equal(cdt_msg_get_u64(m, "i", &u), -EMEDIUMTYPE);
	assert_int_equal(cdt_msg_get_string(m, "b", &s, &len), -EMEDIUMTYPE);
	assert_int_equal(cdt_msg_get_bool(m, "x", &b), -ENOENT);
	assert_int_equal(cdt_msg_get_bool(m, "I", &b), -ENOENT); /* case-sensitive */
	assert_int_equal(cdt_msg_find(m, "i ", &a), -ENOENT);
	assert_int_equal(cdt_msg_find(m, "", &a), -ENOENT);
	int fd;
	assert_int_equal(cdt_msg_take_fd(m, "i", &fd), -EMEDIUMTYPE);
	assert_int_equal(cdt_msg_take_fd(m, "nope", &fd), -ENOENT);
	/* Canonical order: b, i, s, u. */
	assert_int_equal(cdt_msg_nargs(m), 4);
	const char *order[] = {"b", "i", "s", "u"};
	for (size_t k = 0; k < 4; k++) {
		assert_int_equal(cdt_msg_arg(m, k, &a), 0);
		assert_string_equal(a.name, order[k]);
	}
	assert_int_equal(cdt_msg_arg(m, 4, &a), -ERANGE);
	assert_int_equal(cdt_msg_find(m, "u", &a), 0);
	assert_int_equal(a.type, CDT_TYPE_U64);
	cdt_msg_free(m);
}

static void test_encode_small_cap(void **state)
{
	(void)state;
	int fd = devnull();
	cdt_msg *m = vector_msg(fd);
	uint8_t b[128];
	memset(b, 0x5a, sizeof(b));
	long n = cdt_msg_encode(m, b, 75);
	assert_int_equal(n, 76);
	for (size_t i = 0; i < sizeof(b); i++)
		assert_int_equal(b[i], 0x5a); /* nothing written */
	assert_int_equal(cdt_msg_encode(m, NULL, 0), 76);
	assert_int_equal(cdt_msg_encode(m, b, 76), 76);
	assert_int_equal(cdt_msg_encode(NULL, b, 76), -EINVAL);
	cdt_msg_free(m);
	close(fd);
}

static void test_args_limit(void **state)
{
	(void)state;
	cdt_msg *m;
	char name[8];
	assert_int_equal(cdt_msg_new(CDT_KIND_EVENT, 0, "e", &m), 0);
	for (int i = 0; i < CDT_ARGS_MAX; i++) {
		snprintf(name, sizeof(name), "a%02d", i);
		assert_int_equal(cdt_msg_add_u64(m, name, (uint64_t)i), 0);
	}
	assert_int_equal(cdt_msg_add_u64(m, "z", 0), -E2BIG); /* 65th */
	assert_int_equal(cdt_msg_nargs(m), CDT_ARGS_MAX);
	size_t len;
	uint8_t *b = enc(m, &len);
	assert_int_equal(dec_n(b, len, 0), 0); /* 64 decodes */
	cdt_msg_free(m);

	/* nargs 65 on the wire, arguments present: rejected as a limit. */
	struct buf r;
	raw_init(&r);
	raw_hdr(&r, 1, CDT_KIND_EVENT, CDT_ARGS_MAX + 1, 0, "e");
	assert_int_equal(buf_append(&r, b + 14, len - 14), 0);
	raw_arg(&r, "z", CDT_TYPE_BOOL);
	assert_int_equal(buf_put_u8(&r, 0), 0);
	assert_int_equal(dec(&r, 0), -CDT_E_LIMIT);
	buf_clear(&r);
	raw_hdr(&r, 1, CDT_KIND_EVENT, UINT16_MAX, 0, "e");
	assert_int_equal(dec(&r, 0), -CDT_E_LIMIT);
	buf_free(&r);
	free(b);
}

static void test_name_limit_wire(void **state)
{
	(void)state;
	char n64[65], n65[66];
	memset(n64, 'a', 64);
	n64[64] = '\0';
	memset(n65, 'a', 65);
	n65[65] = '\0';
	struct buf r;
	raw_init(&r);
	raw_hdr(&r, 1, CDT_KIND_EVENT, 0, 0, n64);
	assert_int_equal(dec(&r, 0), 0);
	buf_clear(&r);
	raw_hdr(&r, 1, CDT_KIND_EVENT, 0, 0, n65);
	assert_int_equal(dec(&r, 0), -CDT_E_NAME);
	buf_clear(&r);
	raw_hdr(&r, 1, CDT_KIND_EVENT, 1, 0, "e");
	raw_arg(&r, n64, CDT_TYPE_BOOL);
	assert_int_equal(buf_put_u8(&r, 1), 0);
	assert_int_equal(dec(&r, 0), 0);
	buf_clear(&r);
	raw_hdr(&r, 1, CDT_KIND_EVENT, 1, 0, "e");
	raw_arg(&r, n65, CDT_TYPE_BOOL);
	assert_int_equal(buf_put_u8(&r, 1), 0);
	assert_int_equal(dec(&r, 0), -CDT_E_NAME);
	/* A name length of 255 with only a few bytes behind it. */
	buf_clear(&r);
	raw_hdr(&r, 1, CDT_KIND_EVENT, 0, 0, "e");
	r.data[12] = 255;
	assert_int_equal(dec(&r, 0), -CDT_E_NAME);
	buf_free(&r);
}

static void test_bad_names_wire(void **state)
{
	(void)state;
	static const char *const bad_msg[] = {".a",  "a.",	  "a..b",     ".",
					      "Tag", "tag write", "t\xc3\xa9"};
	static const char *const bad_arg[] = {"A", "Tag", "9a", "a.b", "a-b", "a b", "\xc3\xa9"};
	struct buf r;
	raw_init(&r);
	for (size_t i = 0; i < sizeof(bad_msg) / sizeof(bad_msg[0]); i++) {
		buf_clear(&r);
		raw_hdr(&r, 1, CDT_KIND_CALL, 0, 1, bad_msg[i]);
		assert_int_equal(dec(&r, 0), -CDT_E_NAME);
	}
	/* NUL inside a name, which strlen-based code would truncate. */
	buf_clear(&r);
	raw_hdr(&r, 1, CDT_KIND_CALL, 0, 1, "ab");
	r.data[r.len - 1] = 0;
	assert_int_equal(dec(&r, 0), -CDT_E_NAME);
	for (size_t i = 0; i < sizeof(bad_arg) / sizeof(bad_arg[0]); i++) {
		buf_clear(&r);
		raw_hdr(&r, 1, CDT_KIND_CALL, 1, 1, "m");
		raw_arg(&r, bad_arg[i], CDT_TYPE_BOOL);
		assert_int_equal(buf_put_u8(&r, 0), 0);
		assert_int_equal(dec(&r, 0), -CDT_E_NAME);
	}
	/* Empty argument name. */
	buf_clear(&r);
	raw_hdr(&r, 1, CDT_KIND_CALL, 1, 1, "m");
	assert_int_equal(buf_put_u8(&r, 0), 0);
	assert_int_equal(buf_put_u8(&r, CDT_TYPE_BOOL), 0);
	assert_int_equal(buf_put_u8(&r, 0), 0);
	assert_int_equal(dec(&r, 0), -CDT_E_NAME);
	buf_free(&r);
}

static void test_order_wire(void **state)
{
	(void)state;
	static const struct {
		const char *a, *b;
		int want;
	} cases[] = {
		{"a", "b", 0},
		{"tank1", "tank10", 0}, /* a proper prefix first */
		{"tank10", "tank1", -CDT_E_DUPLICATE},
		{"b", "a", -CDT_E_DUPLICATE},
		{"a", "a", -CDT_E_DUPLICATE},
		{"_", "a", 0},			/* '_' (0x5f) sorts before 'a' */
		{"a_", "a0", -CDT_E_DUPLICATE}, /* '0' (0x30) before '_' */
	};
	struct buf r;
	raw_init(&r);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_clear(&r);
		raw_hdr(&r, 1, CDT_KIND_CALL, 2, 1, "m");
		raw_arg(&r, cases[i].a, CDT_TYPE_BOOL);
		assert_int_equal(buf_put_u8(&r, 0), 0);
		raw_arg(&r, cases[i].b, CDT_TYPE_U64);
		assert_int_equal(buf_put_u64(&r, 0), 0);
		assert_int_equal(dec(&r, 0), cases[i].want);
	}
	/* Duplicate further apart than neighbours cannot occur when each
	 * neighbour pair ascends, so a, b, a fails at the second step. */
	buf_clear(&r);
	raw_hdr(&r, 1, CDT_KIND_CALL, 3, 1, "m");
	raw_arg(&r, "a", CDT_TYPE_BOOL);
	assert_int_equal(buf_put_u8(&r, 0), 0);
	raw_arg(&r, "b", CDT_TYPE_BOOL);
	assert_int_equal(buf_put_u8(&r, 0), 0);
	raw_arg(&r, "a", CDT_TYPE_BOOL);
	assert_int_equal(buf_put_u8(&r, 0), 0);
	assert_int_equal(dec(&r, 0), -CDT_E_DUPLICATE);
	buf_free(&r);
}

static void test_empty_and_version(void **state)
{
	(void)state;
	cdt_msg *m = NULL;
	assert_int_equal(cdt_msg_decode(NULL, 0, NULL, 0, &m), -CDT_E_TRUNCATED);
	assert_null(m);
	struct buf r;
	raw_init(&r);
	static const uint8_t versions[] = {0, 2, 255};
	for (size_t i = 0; i < sizeof(versions); i++) {
		buf_clear(&r);
		raw_hdr(&r, versions[i], CDT_KIND_CALL, 0, 1, "m");
		assert_int_equal(dec(&r, 0), -CDT_E_VERSION);
	}
	buf_clear(&r);
	raw_hdr(&r, 1, CDT_KIND_CALL, 0, 1, "m");
	assert_int_equal(dec(&r, 0), 0);
	buf_free(&r);
}

static void test_every_kind_byte(void **state)
{
	(void)state;
	struct buf r;
	raw_init(&r);
	for (unsigned k = 0; k < 256; k++) {
		bool known = k >= CDT_KIND_HELLO && k <= CDT_KIND_SUBSCRIBE;
		bool id = k == CDT_KIND_CALL || k == CDT_KIND_REPLY || k == CDT_KIND_ERROR;
		bool name = k != CDT_KIND_HELLO && k != CDT_KIND_REPLY;
		/* Right call_id and name for the kind: only the kind decides. */
		buf_clear(&r);
		raw_hdr(&r, 1, (uint8_t)k, 0, id ? 77 : 0, name ? "x.y" : "");
		assert_int_equal(dec(&r, 0), known ? 0 : -CDT_E_KIND);
		if (!known)
			continue;
		/* Wrong call_id. */
		buf_clear(&r);
		raw_hdr(&r, 1, (uint8_t)k, 0, id ? 0 : 1, name ? "x.y" : "");
		assert_int_equal(dec(&r, 0), -CDT_E_VALUE);
		/* Wrong name presence. */
		buf_clear(&r);
		raw_hdr(&r, 1, (uint8_t)k, 0, id ? 77 : 0, name ? "" : "x.y");
		assert_int_equal(dec(&r, 0), -CDT_E_NAME);
	}
	buf_free(&r);
}

static void test_every_type_byte(void **state)
{
	(void)state;
	struct buf r;
	raw_init(&r);
	for (unsigned t = 0; t < 256; t++) {
		buf_clear(&r);
		raw_hdr(&r, 1, CDT_KIND_CALL, 1, 1, "m");
		raw_arg(&r, "a", (uint8_t)t);
		size_t nfds = 0;
		switch (t) {
		case CDT_TYPE_BOOL:
			assert_int_equal(buf_put_u8(&r, 1), 0);
			break;
		case CDT_TYPE_I64:
		case CDT_TYPE_U64:
		case CDT_TYPE_DOUBLE:
			assert_int_equal(buf_put_u64(&r, 0), 0);
			break;
		case CDT_TYPE_STRING:
		case CDT_TYPE_BYTES:
			raw_data(&r, "hi", 2);
			break;
		case CDT_TYPE_FD:
			assert_int_equal(buf_put_u8(&r, 0), 0);
			nfds = 1;
			break;
		case 8: /* BULK (protocol 4.1): length, key, id, fd index */
			assert_int_equal(buf_put_u64(&r, CDT_BULK_MIN), 0);
			for (size_t k = 0; k < 48; k++)
				assert_int_equal(buf_put_u8(&r, 0), 0);
			assert_int_equal(buf_put_u8(&r, 0), 0);
			nfds = 1;
			break;
		case 9: /* BULKF (protocol 4.2): length, key, id */
			assert_int_equal(buf_put_u64(&r, CDT_BULK_MIN), 0);
			for (size_t k = 0; k < 48; k++)
				assert_int_equal(buf_put_u8(&r, 0), 0);
			break;
		default:
			/* Something a lax decoder might take for a value. */
			assert_int_equal(buf_put_u64(&r, 0), 0);
			break;
		}
		bool known = t >= CDT_TYPE_BOOL && t <= 9;
		assert_int_equal(dec(&r, nfds), known ? 0 : -CDT_E_TYPE);
	}
	buf_free(&r);
}

static void test_values(void **state)
{
	(void)state;
	struct buf r;
	raw_init(&r);
	for (unsigned v = 0; v < 256; v++) {
		buf_clear(&r);
		raw_hdr(&r, 1, CDT_KIND_CALL, 1, 1, "m");
		raw_arg(&r, "a", CDT_TYPE_BOOL);
		assert_int_equal(buf_put_u8(&r, (uint8_t)v), 0);
		assert_int_equal(dec(&r, 0), v <= 1 ? 0 : -CDT_E_VALUE);
	}
	static const struct {
		uint64_t bits;
		int want;
	} dbl[] = {
		{0x7ff8000000000000u, 0},	     /* the canonical NaN */
		{0x7ff0000000000000u, 0},	     /* +inf */
		{0xfff0000000000000u, 0},	     /* -inf */
		{0x8000000000000000u, 0},	     /* -0.0 */
		{0x0000000000000001u, 0},	     /* smallest subnormal */
		{0x7fefffffffffffffu, 0},	     /* DBL_MAX */
		{0x7ff8000000000001u, -CDT_E_VALUE}, /* quiet NaN, payload */
		{0xfff8000000000000u, -CDT_E_VALUE}, /* negative quiet NaN */
		{0x7ff0000000000001u, -CDT_E_VALUE}, /* signalling NaN */
		{0x7fffffffffffffffu, -CDT_E_VALUE},
		{0xffffffffffffffffu, -CDT_E_VALUE},
	};
	for (size_t i = 0; i < sizeof(dbl) / sizeof(dbl[0]); i++) {
		buf_clear(&r);
		raw_hdr(&r, 1, CDT_KIND_CALL, 1, 1, "m");
		raw_arg(&r, "d", CDT_TYPE_DOUBLE);
		assert_int_equal(buf_put_u64(&r, dbl[i].bits), 0);
		assert_int_equal(dec(&r, 0), dbl[i].want);
	}
	/* The encoder turns every NaN into the canonical one. */
	cdt_msg *m;
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 1, "m", &m), 0);
	uint64_t payload = 0xfff4000000000123u;
	double nan_in;
	memcpy(&nan_in, &payload, sizeof(nan_in));
	assert_int_equal(cdt_msg_add_double(m, "d", nan_in), 0);
	size_t len;
	uint8_t *b = enc(m, &len);
	assert_true(le64_get(b + len - 8) == 0x7ff8000000000000u);
	assert_int_equal(dec_n(b, len, 0), 0);
	double d;
	assert_int_equal(cdt_msg_get_double(m, "d", &d), 0);
	assert_true(isnan(d));
	free(b);
	cdt_msg_free(m);

	/* Invalid UTF-8 and NUL in a string on the wire. */
	static const char *const bad[] = {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
					  "\x80",     "\xe2\x82",     "a\0b"};
	static const size_t bad_len[] = {2, 3, 4, 1, 2, 3};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_clear(&r);
		raw_hdr(&r, 1, CDT_KIND_CALL, 1, 1, "m");
		raw_arg(&r, "s", CDT_TYPE_STRING);
		raw_data(&r, bad[i], bad_len[i]);
		assert_int_equal(dec(&r, 0), -CDT_E_UTF8);
		/* The same bytes are fine as bytes. */
		r.data[r.len - bad_len[i] - 5] = CDT_TYPE_BYTES;
		assert_int_equal(dec(&r, 0), 0);
	}
	buf_free(&r);
}

static void test_string_lengths(void **state)
{
	(void)state;
	struct buf r;
	raw_init(&r);
	static const uint32_t lens[] = {5, 6, 7, 100, 0x7fffffff, 0x80000000, 0xffffffff};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (uint8_t t = CDT_TYPE_STRING; t <= CDT_TYPE_BYTES; t++) {
			buf_clear(&r);
			raw_hdr(&r, 1, CDT_KIND_CALL, 1, 1, "m");
			raw_arg(&r, "s", t);
			assert_int_equal(buf_put_u32(&r, lens[i]), 0);
			assert_int_equal(buf_append(&r, "hello", 5), 0);
			/* Exactly the bytes left decodes; one more is truncation. */
			assert_int_equal(dec(&r, 0), lens[i] == 5 ? 0 : -CDT_E_TRUNCATED);
		}
	}
	/* A shorter length leaves trailing bytes. */
	buf_clear(&r);
	raw_hdr(&r, 1, CDT_KIND_CALL, 1, 1, "m");
	raw_arg(&r, "s", CDT_TYPE_STRING);
	assert_int_equal(buf_put_u32(&r, 4), 0);
	assert_int_equal(buf_append(&r, "hello", 5), 0);
	assert_int_equal(dec(&r, 0), -CDT_E_TRAILING);
	buf_free(&r);
}

static void test_msg_max(void **state)
{
	(void)state;
	/* header 13 + name 1, argument: name_len 1 + name 1 + type 1 + len 4 */
	const size_t overhead = 13 + 1 + 1 + 1 + 1 + 4;
	size_t big = CDT_MSG_MAX - overhead;
	uint8_t *payload = calloc(1, big + 1);
	assert_non_null(payload);
	cdt_msg *m;
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 1, "m", &m), 0);
	assert_int_equal(cdt_msg_add_bytes(m, "b", payload, big + 1), -E2BIG);
	assert_int_equal(cdt_msg_nargs(m), 0);
	assert_int_equal(cdt_msg_add_bytes(m, "b", payload, big), 0);
	assert_int_equal(cdt_msg_encode(m, NULL, 0), CDT_MSG_MAX);
	/* Nothing more fits, not even a bool. */
	assert_int_equal(cdt_msg_add_bool(m, "c", true), -E2BIG);
	assert_int_equal(cdt_msg_add_string(m, "s", "", 0), -E2BIG);
	size_t len;
	uint8_t *b = enc(m, &len);
	assert_int_equal(len, CDT_MSG_MAX);
	assert_int_equal(dec_n(b, len, 0), 0);
	cdt_msg_free(m);
	free(b);

	/* max + 1 on the wire: refused on the length alone. */
	b = calloc(1, (size_t)CDT_MSG_MAX + 1);
	assert_non_null(b);
	b[0] = 1;
	assert_int_equal(dec_n(b, (size_t)CDT_MSG_MAX + 1, 2), -CDT_E_TOO_BIG);
	free(b);
	assert_int_equal(cdt_msg_add_bytes(NULL, "b", payload, 1), -EINVAL);

	/* The same with a string: exactly max, then one byte more. */
	memset(payload, 'x', big + 1);
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 1, "m", &m), 0);
	assert_int_equal(cdt_msg_add_string(m, "s", (const char *)payload, big + 1), -E2BIG);
	assert_int_equal(cdt_msg_add_string(m, "s", (const char *)payload, big), 0);
	assert_int_equal(cdt_msg_encode(m, NULL, 0), CDT_MSG_MAX);
	const char *s;
	size_t slen;
	assert_int_equal(cdt_msg_get_string(m, "s", &s, &slen), 0);
	assert_int_equal(slen, big);
	assert_int_equal(s[big], '\0');
	cdt_msg_free(m);
	free(payload);
}

static void test_fds(void **state)
{
	(void)state;
	int base = devnull();
	int before = count_fds();
	cdt_msg *m;
	assert_int_equal(cdt_msg_new(CDT_KIND_CALL, 1, "m", &m), 0);
	/* Added out of order: fds follow the argument order, not add order. */
	assert_int_equal(cdt_msg_add_fd(m, "d", base), 0);
	assert_int_equal(cdt_msg_add_fd(m, "b", base), 0);
	assert_int_equal(cdt_msg_add_fd(m, "a", base), 0);
	assert_int_equal(cdt_msg_add_fd(m, "c", base), 0);
	assert_int_equal(cdt_msg_add_fd(m, "e", base), -E2BIG); /* fifth */
	assert_int_equal(cdt_msg_add_fd(m, "a", base), -E2BIG);
	assert_int_equal(cdt_msg_nfds(m), CDT_FDS_MAX);
	const int *fds = cdt_msg_fds(m);
	const char *names[] = {"a", "b", "c", "d"};
	for (size_t i = 0; i < CDT_FDS_MAX; i++) {
		struct cdt_arg a;
		assert_int_equal(cdt_msg_find(m, names[i], &a), 0);
		assert_int_equal(a.v.fd, fds[i]);
		assert_true(fds[i] != base);
		assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
	}
	size_t len;
	uint8_t *b = enc(m, &len);
	assert_int_equal(dec_n(b, len, CDT_FDS_MAX), 0);
	/* Count mismatches either way. */
	assert_int_equal(dec_n(b, len, 3), -CDT_E_FD);
	assert_int_equal(dec_n(b, len, CDT_FDS_MAX + 1), -CDT_E_LIMIT);
	cdt_msg_free(m);
	free(b);

	struct buf r;
	raw_init(&r);
	/* Five fd arguments with five fds. */
	raw_hdr(&r, 1, CDT_KIND_CALL, 5, 1, "m");
	for (uint8_t i = 0; i < 5; i++) {
		char n[2] = {(char)('a' + i), 0};
		raw_arg(&r, n, CDT_TYPE_FD);
		assert_int_equal(buf_put_u8(&r, i), 0);
	}
	assert_int_equal(dec(&r, 5), -CDT_E_LIMIT);
	assert_int_equal(dec(&r, 4), -CDT_E_LIMIT);

	static const struct {
		uint8_t idx[3];
		size_t nargs, nfds;
		int want;
	} cases[] = {
		{{0, 1, 2}, 3, 3, 0},
		{{1, 0, 2}, 3, 3, -CDT_E_FD}, /* swapped */
		{{0, 0, 1}, 3, 3, -CDT_E_FD}, /* aliased */
		{{0, 1, 3}, 3, 4, -CDT_E_FD}, /* skipped */
		{{0, 1, 2}, 3, 2, -CDT_E_FD}, /* index >= nfds */
		{{0, 1, 2}, 3, 4, -CDT_E_FD}, /* an fd nobody names */
		{{0, 1, 2}, 3, 0, -CDT_E_FD},
		{{1, 0, 0}, 1, 2, -CDT_E_FD},
		{{255, 0, 0}, 1, 1, -CDT_E_FD},
		{{0, 0, 0}, 0, 1, -CDT_E_FD}, /* fds with no fd argument */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_clear(&r);
		raw_hdr(&r, 1, CDT_KIND_CALL, (uint16_t)cases[i].nargs, 1, "m");
		for (size_t k = 0; k < cases[i].nargs; k++) {
			char n[2] = {(char)('a' + k), 0};
			raw_arg(&r, n, CDT_TYPE_FD);
			assert_int_equal(buf_put_u8(&r, cases[i].idx[k]), 0);
		}
		assert_int_equal(dec(&r, cases[i].nfds), cases[i].want);
	}
	buf_free(&r);
	assert_int_equal(count_fds(), before);
	close(base);
}

static void test_truncation_and_trailing(void **state)
{
	(void)state;
	int base = devnull();
	cdt_msg *m = vector_msg(base);
	assert_int_equal(cdt_msg_add_i64(m, "i", -5), 0);
	assert_int_equal(cdt_msg_add_u64(m, "u", 5), 0);
	size_t len;
	uint8_t *b = enc(m, &len);
	cdt_msg_free(m);
	/* Every proper prefix, from empty to one byte short. */
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *p = malloc(cut ? cut : 1); /* exact size: ASan sees overreads */
		assert_non_null(p);
		memcpy(p, b, cut);
		assert_int_equal(dec_n(p, cut, 1), -CDT_E_TRUNCATED);
		free(p);
	}
	assert_int_equal(dec_n(b, len, 1), 0);
	uint8_t *t = malloc(len + 1);
	assert_non_null(t);
	memcpy(t, b, len);
	for (unsigned v = 0; v < 256; v += 51) {
		t[len] = (uint8_t)v;
		assert_int_equal(dec_n(t, len + 1, 1), -CDT_E_TRAILING);
	}
	free(t);
	free(b);
	close(base);
}

static void test_add_after_decode(void **state)
{
	(void)state;
	uint8_t v[128];
	size_t vlen = unhex(vector_hex, v);
	int fd = devnull();
	cdt_msg *d;
	int pass = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	assert_int_equal(cdt_msg_decode(v, vlen, &pass, 1, &d), 0);
	/* The decoded message's store moves to the heap on the first add. */
	assert_int_equal(cdt_msg_add_string(d, "a_first", "x", 1), 0);
	assert_int_equal(cdt_msg_add_fd(d, "a_fd", fd), 0);
	assert_int_equal(cdt_msg_add_bool(d, "force", false), -EEXIST);
	const char *s;
	assert_int_equal(cdt_msg_get_string(d, "tag", &s, NULL), 0);
	assert_string_equal(s, "tank1");
	assert_int_equal(cdt_msg_nfds(d), 2);
	assert_int_equal(cdt_msg_fds(d)[1], pass); /* "log" now second */
	size_t len;
	uint8_t *b = enc(d, &len);
	assert_int_equal(dec_n(b, len, 2), 0);
	free(b);
	cdt_msg_free(d);
	assert_false(fd_is_open(pass));
	close(fd);
}

/* ---- Randomized round trips and mutations (fixed seed: reproducible) ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1du;
}

static size_t rng_below(size_t n)
{
	return (size_t)(rng() % n);
}

struct expect {
	char name[CDT_NAME_MAX + 1];
	enum cdt_type type;
	uint64_t num; /* bool, i64, u64 and double bits */
	uint8_t data[48];
	size_t len;
};

static void rng_name(char *out, bool msg_name)
{
	static const char first[] = "abcdefghijklmnopqrstuvwxyz_";
	static const char rest[] = "abcdefghijklmnopqrstuvwxyz0123456789_";
	size_t len = rng_below(8) == 0 ? CDT_NAME_MAX : 1 + rng_below(6);
	for (size_t i = 0; i < len; i++)
		out[i] = i == 0 ? first[rng_below(sizeof(first) - 1)]
				: rest[rng_below(sizeof(rest) - 1)];
	if (msg_name && len > 2 && rng_below(2))
		out[1 + rng_below(len - 2)] = '.';
	if (msg_name && out[len - 1] == '.')
		out[len - 1] = '-';
	out[len] = '\0';
	/* A dot next to another dot cannot arise: at most one is placed. */
}

/* Random valid UTF-8 from 1- to 4-byte code points, boundaries included. */
static size_t rng_utf8(uint8_t *out, size_t cap)
{
	static const char *const cps[] = {"a",
					  "Z",
					  "\x7f",
					  "\xc2\x80",
					  "\xdf\xbf",
					  "\xe0\xa0\x80",
					  "\xed\x9f\xbf",
					  "\xee\x80\x80",
					  "\xef\xbf\xbf",
					  "\xf0\x90\x80\x80",
					  "\xf4\x8f\xbf\xbf",
					  "\xe2\x84\x83"};
	size_t len = 0, n = rng_below(12);
	for (size_t i = 0; i < n; i++) {
		const char *c = cps[rng_below(sizeof(cps) / sizeof(cps[0]))];
		size_t cl = strlen(c);
		if (len + cl > cap)
			break;
		memcpy(out + len, c, cl);
		len += cl;
	}
	return len;
}

static cdt_msg *rng_msg(int base, struct expect *ex, size_t *ret_n)
{
	static const enum cdt_kind kinds[] = {CDT_KIND_HELLO, CDT_KIND_CALL,  CDT_KIND_REPLY,
					      CDT_KIND_ERROR, CDT_KIND_EVENT, CDT_KIND_SUBSCRIBE};
	enum cdt_kind kind = kinds[rng_below(6)];
	bool id = kind == CDT_KIND_CALL || kind == CDT_KIND_REPLY || kind == CDT_KIND_ERROR;
	bool named = kind != CDT_KIND_HELLO && kind != CDT_KIND_REPLY;
	char name[CDT_NAME_MAX + 1];
	rng_name(name, true);
	cdt_msg *m;
	assert_int_equal(cdt_msg_new(kind, id ? rng() | 1 : 0, named ? name : NULL, &m), 0);
	size_t want = rng_below(10) == 0 ? CDT_ARGS_MAX + 2 : rng_below(10);
	size_t n = 0;
	for (size_t i = 0; i < want; i++) {
		struct expect *e = &ex[n];
		rng_name(e->name, false);
		e->type = (enum cdt_type)(1 + rng_below(7));
		e->num = rng();
		e->len = 0;
		int r = 0;
		switch (e->type) {
		case CDT_TYPE_BOOL:
			e->num &= 1;
			r = cdt_msg_add_bool(m, e->name, e->num);
			break;
		case CDT_TYPE_I64:
			r = cdt_msg_add_i64(m, e->name, (int64_t)e->num);
			break;
		case CDT_TYPE_U64:
			r = cdt_msg_add_u64(m, e->name, e->num);
			break;
		case CDT_TYPE_DOUBLE: {
			double d;
			if (rng_below(8) == 0)
				e->num |= 0x7ff0000000000001u; /* some NaN */
			memcpy(&d, &e->num, sizeof(d));
			r = cdt_msg_add_double(m, e->name, d);
			if (isnan(d))
				e->num = 0x7ff8000000000000u;
			break;
		}
		case CDT_TYPE_STRING:
			e->len = rng_utf8(e->data, sizeof(e->data));
			r = cdt_msg_add_string(m, e->name, (const char *)e->data, e->len);
			break;
		case CDT_TYPE_BYTES:
			e->len = rng_below(sizeof(e->data) + 1);
			for (size_t k = 0; k < e->len; k++)
				e->data[k] = (uint8_t)rng();
			r = cdt_msg_add_bytes(m, e->name, e->data, e->len);
			break;
		case CDT_TYPE_FD:
			r = cdt_msg_add_fd(m, e->name, base);
			break;
		}
		if (r == -EEXIST || r == -E2BIG)
			continue;
		assert_int_equal(r, 0);
		n++;
	}
	assert_int_equal(cdt_msg_nargs(m), n);
	*ret_n = n;
	return m;
}

static void check_expect(const cdt_msg *m, const struct expect *ex, size_t n, int base)
{
	struct stat bs;
	assert_int_equal(fstat(base, &bs), 0);
	for (size_t i = 0; i < n; i++) {
		const struct expect *e = &ex[i];
		struct cdt_arg a;
		assert_int_equal(cdt_msg_find(m, e->name, &a), 0);
		assert_int_equal(a.type, e->type);
		bool b;
		int64_t i64;
		uint64_t u64;
		double d;
		const char *s;
		const uint8_t *p;
		size_t len;
		struct stat st;
		switch (e->type) {
		case CDT_TYPE_BOOL:
			assert_int_equal(cdt_msg_get_bool(m, e->name, &b), 0);
			assert_int_equal(b, e->num);
			break;
		case CDT_TYPE_I64:
			assert_int_equal(cdt_msg_get_i64(m, e->name, &i64), 0);
			assert_true(i64 == (int64_t)e->num);
			break;
		case CDT_TYPE_U64:
			assert_int_equal(cdt_msg_get_u64(m, e->name, &u64), 0);
			assert_true(u64 == e->num);
			break;
		case CDT_TYPE_DOUBLE:
			assert_int_equal(cdt_msg_get_double(m, e->name, &d), 0);
			assert_memory_equal(&d, &e->num, sizeof(d));
			break;
		case CDT_TYPE_STRING:
			assert_int_equal(cdt_msg_get_string(m, e->name, &s, &len), 0);
			assert_int_equal(len, e->len);
			assert_memory_equal(s, e->data, len);
			assert_int_equal(s[len], '\0');
			break;
		case CDT_TYPE_BYTES:
			assert_int_equal(cdt_msg_get_bytes(m, e->name, &p, &len), 0);
			assert_int_equal(len, e->len);
			if (len)
				assert_memory_equal(p, e->data, len);
			break;
		case CDT_TYPE_FD:
			/* The same open file, not merely some fd. */
			assert_int_equal(fstat(a.v.fd, &st), 0);
			assert_true(st.st_ino == bs.st_ino && st.st_dev == bs.st_dev);
			break;
		}
	}
}

static void test_random_roundtrip(void **state)
{
	(void)state;
	int base = devnull();
	int before = count_fds();
	struct expect ex[CDT_ARGS_MAX + 2];
	unsigned decoded_mutants = 0, rejected_mutants = 0;
	for (int iter = 0; iter < 10000; iter++) {
		size_t n;
		cdt_msg *m = rng_msg(base, ex, &n);
		check_expect(m, ex, n, base);
		size_t len;
		uint8_t *b = enc(m, &len);
		size_t nfds = cdt_msg_nfds(m);

		/* encode -> decode -> encode is the identity. */
		int fds[CDT_FDS_MAX];
		for (size_t k = 0; k < nfds; k++)
			fds[k] = fcntl(cdt_msg_fds(m)[k], F_DUPFD_CLOEXEC, 3);
		cdt_msg *d;
		assert_int_equal(cdt_msg_decode(b, len, fds, nfds, &d), 0);
		check_expect(d, ex, n, base);
		assert_int_equal(cdt_msg_kind(d), cdt_msg_kind(m));
		assert_true(cdt_msg_call_id(d) == cdt_msg_call_id(m));
		assert_string_equal(cdt_msg_name(d), cdt_msg_name(m));
		for (size_t k = 0; k < nfds; k++)
			assert_int_equal(cdt_msg_fds(d)[k], fds[k]);
		size_t len2;
		uint8_t *b2 = enc(d, &len2);
		assert_int_equal(len2, len);
		assert_memory_equal(b2, b, len);
		free(b2);
		cdt_msg_free(d);

		/* A mutant never crashes; it fails cleanly or is itself canonical
		 * (dec_n checks the re-encoding and that fds are closed). */
		uint8_t *mu = malloc(len + 8);
		assert_non_null(mu);
		memcpy(mu, b, len);
		size_t mlen = len;
		size_t edits = 1 + rng_below(3);
		for (size_t k = 0; k < edits; k++) {
			size_t pos = rng_below(mlen + 1);
			switch (rng_below(5)) {
			case 0: /* flip bits */
			case 1:
				if (pos < mlen)
					mu[pos] ^= (uint8_t)(1 + rng_below(255));
				break;
			case 2: /* set a byte to a boundary value */
				if (pos < mlen)
					mu[pos] = (uint8_t[]){0, 1, 0x7f, 0x80, 0xff}[rng_below(5)];
				break;
			case 3: /* insert */
				memmove(mu + pos + 1, mu + pos, mlen - pos);
				mu[pos] = (uint8_t)rng();
				mlen++;
				break;
			case 4: /* delete or truncate */
				if (pos < mlen) {
					memmove(mu + pos, mu + pos + 1, mlen - pos - 1);
					mlen--;
				}
				break;
			}
		}
		size_t mfds = rng_below(4) == 0 ? rng_below(CDT_FDS_MAX + 1) : nfds;
		int r = dec_n(mu, mlen, mfds);
		if (r == 0)
			decoded_mutants++;
		else
			rejected_mutants++;
		free(mu);
		free(b);
		cdt_msg_free(m);
	}
	/* Both outcomes must actually have been exercised. */
	assert_true(decoded_mutants > 100);
	assert_true(rejected_mutants > 1000);
	assert_int_equal(count_fds(), before);
	close(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector),
		cmocka_unit_test(test_decode_failure_closes_fds),
		cmocka_unit_test(test_new_kind_rules),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_getters),
		cmocka_unit_test(test_encode_small_cap),
		cmocka_unit_test(test_args_limit),
		cmocka_unit_test(test_name_limit_wire),
		cmocka_unit_test(test_bad_names_wire),
		cmocka_unit_test(test_order_wire),
		cmocka_unit_test(test_empty_and_version),
		cmocka_unit_test(test_every_kind_byte),
		cmocka_unit_test(test_every_type_byte),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_string_lengths),
		cmocka_unit_test(test_msg_max),
		cmocka_unit_test(test_fds),
		cmocka_unit_test(test_truncation_and_trailing),
		cmocka_unit_test(test_add_after_decode),
		cmocka_unit_test(test_random_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
