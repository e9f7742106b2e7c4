/* SPDX-License-Identifier: MIT */
/* Bounded buffers: the hard maximum at max and max+1, overflowing sizes,
 * and a reader that fails at every truncation point without moving. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "conduit/conduit.h"

static void test_buf_limit(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 100);
	uint8_t chunk[100];
	memset(chunk, 0xab, sizeof(chunk));
	assert_int_equal(buf_append(&b, chunk, 99), 0);
	assert_int_equal(buf_append(&b, chunk, 2), -E2BIG); /* max + 1 */
	assert_int_equal(b.len, 99);			    /* unchanged */
	assert_int_equal(buf_put_u8(&b, 7), 0);		    /* exactly max */
	assert_int_equal(b.len, 100);
	assert_true(b.cap <= 100);
	assert_int_equal(buf_put_u8(&b, 7), -E2BIG);
	assert_int_equal(buf_append(&b, NULL, 0), 0); /* empty append at max */
	assert_int_equal(b.data[99], 7);
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.max, 100);
	buf_free(NULL);
	buf_free_wipe(NULL);
}

static void test_buf_overflow(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, SIZE_MAX);
	assert_int_equal(buf_put_u8(&b, 1), 0);
	/* len + n wraps: must be refused, not wrapped to a small size. */
	assert_int_equal(buf_reserve(&b, SIZE_MAX), -E2BIG);
	assert_int_equal(b.len, 1);
	buf_free_wipe(&b);

	buf_init(&b, 0);
	assert_int_equal(buf_put_u8(&b, 1), -E2BIG);
	assert_int_equal(buf_append(&b, NULL, 0), 0);
	buf_free(&b);
}

static void test_buf_put_le(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 64);
	assert_int_equal(buf_put_u8(&b, 0x01), 0);
	assert_int_equal(buf_put_u16(&b, 0x0302), 0);
	assert_int_equal(buf_put_u32(&b, 0x07060504), 0);
	assert_int_equal(buf_put_u64(&b, 0x0f0e0d0c0b0a0908), 0);
	assert_int_equal(b.len, 15);
	for (uint8_t i = 0; i < 15; i++)
		assert_int_equal(b.data[i], i + 1);
	buf_consume(&b, 3);
	assert_int_equal(b.len, 12);
	assert_int_equal(b.data[0], 4);
	buf_consume(&b, 100);
	assert_int_equal(b.len, 0);
	buf_clear(&b);
	buf_free(&b);
}

static void test_buf_grow(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1u << 20);
	for (uint32_t i = 0; i < (1u << 18); i++)
		assert_int_equal(buf_put_u32(&b, i), 0);
	assert_int_equal(b.len, 1u << 20);
	assert_int_equal(buf_put_u8(&b, 0), -E2BIG);
	assert_int_equal(le32_get(b.data + 4 * 12345), 12345);
	buf_free(&b);
}

static void test_reader(void **state)
{
	(void)state;
	const uint8_t in[15] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
	struct reader r;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	const uint8_t *p;

	reader_init(&r, in, sizeof(in));
	assert_int_equal(reader_get_u8(&r, &u8), 0);
	assert_int_equal(u8, 1);
	assert_int_equal(reader_get_u16(&r, &u16), 0);
	assert_int_equal(u16, 0x0302);
	assert_int_equal(reader_get_u32(&r, &u32), 0);
	assert_int_equal(u32, 0x07060504);
	assert_int_equal(reader_get_u64(&r, &u64), 0);
	assert_true(u64 == 0x0f0e0d0c0b0a0908);
	assert_int_equal(reader_left(&r), 0);
	assert_int_equal(reader_get_u8(&r, &u8), -CDT_E_TRUNCATED);
	assert_int_equal(reader_get_bytes(&r, 0, &p), 0);

	/* Empty input. */
	reader_init(&r, NULL, 0);
	assert_int_equal(reader_get_u8(&r, &u8), -CDT_E_TRUNCATED);
	assert_int_equal(reader_left(&r), 0);
}

static void test_reader_truncated(void **state)
{
	(void)state;
	const uint8_t in[8] = {0};
	struct reader r;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	const uint8_t *p;
	/* Every short length, for every width: fail and leave the cursor. */
	for (size_t len = 0; len < 8; len++) {
		reader_init(&r, in, len);
		assert_int_equal(reader_get_u64(&r, &u64), -CDT_E_TRUNCATED);
		if (len < 4)
			assert_int_equal(reader_get_u32(&r, &u32), -CDT_E_TRUNCATED);
		if (len < 2)
			assert_int_equal(reader_get_u16(&r, &u16), -CDT_E_TRUNCATED);
		assert_int_equal(reader_get_bytes(&r, len + 1, &p), -CDT_E_TRUNCATED);
		assert_int_equal(reader_left(&r), len);
		assert_int_equal(reader_get_bytes(&r, len, &p), 0);
		assert_ptr_equal(p, in);
	}
	/* A huge length is compared against what is left, never added. */
	reader_init(&r, in, 8);
	assert_int_equal(reader_skip(&r, 3), 0);
	assert_int_equal(reader_get_bytes(&r, SIZE_MAX, &p), -CDT_E_TRUNCATED);
	assert_int_equal(reader_get_bytes(&r, SIZE_MAX - 2, &p), -CDT_E_TRUNCATED);
	assert_int_equal(reader_skip(&r, 6), -CDT_E_TRUNCATED);
	assert_int_equal(reader_left(&r), 5);
	assert_int_equal(reader_skip(&r, 5), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_limit),  cmocka_unit_test(test_buf_overflow),
		cmocka_unit_test(test_buf_put_le), cmocka_unit_test(test_buf_grow),
		cmocka_unit_test(test_reader),	   cmocka_unit_test(test_reader_truncated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
