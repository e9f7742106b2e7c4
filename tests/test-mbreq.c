/* SPDX-License-Identifier: MIT */
/* plcsim's request filter: every served function at its quantity limits
 * (max and max+1), addresses at the map's end, byte counts that disagree
 * with the quantity or the frame (the libmodbus CVE pattern), truncated
 * frames, and the functions it refuses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mbreq.h"

/* A map as large as the protocol allows, and plcsim's own. */
static const uint16_t big[TAG_AREA_COUNT] = {65535, 65535, 65535, 65535};
static uint16_t plant[TAG_AREA_COUNT];

/* Build an ADU: MBAP with a correct length field, then the PDU. */
static size_t adu(uint8_t *out, const uint8_t *pdu, size_t pdu_len)
{
	size_t len = MBREQ_TCP_HEADER + pdu_len;
	uint16_t field = (uint16_t)(pdu_len + 1);
	uint8_t hdr[MBREQ_TCP_HEADER] = {0x12,		 0x34, 0, 0, (uint8_t)(field >> 8),
					 (uint8_t)field, 1};
	memcpy(out, hdr, sizeof(hdr));
	memcpy(out + MBREQ_TCP_HEADER, pdu, pdu_len);
	return len;
}

static int check(const uint16_t *sizes, const uint8_t *pdu, size_t pdu_len)
{
	uint8_t buf[300];
	size_t len = adu(buf, pdu, pdu_len);
	return mbreq_check(buf, len, sizes);
}

static int rd(const uint16_t *sizes, uint8_t fc, uint16_t addr, uint16_t qty)
{
	uint8_t pdu[5] = {fc, (uint8_t)(addr >> 8), (uint8_t)addr, (uint8_t)(qty >> 8),
			  (uint8_t)qty};
	return check(sizes, pdu, 5);
}

/* Write multiple: @qty items, @count bytes claimed, @carried bytes present. */
static int wm(const uint16_t *sizes, uint8_t fc, uint16_t addr, uint16_t qty, uint8_t count,
	      size_t carried)
{
	uint8_t pdu[6 + 255] = {
		fc, (uint8_t)(addr >> 8), (uint8_t)addr, (uint8_t)(qty >> 8), (uint8_t)qty, count};
	return check(sizes, pdu, 6 + carried);
}

static int setup(void **state)
{
	(void)state;
	for (int a = 0; a < TAG_AREA_COUNT; a++)
		plant[a] = tags_area_size((enum tag_area)a);
	return 0;
}

static void test_mbreq_reads(void **state)
{
	(void)state;
	for (uint8_t fc = 1; fc <= 2; fc++) {
		assert_int_equal(rd(big, fc, 0, 2000), 0);			/* max */
		assert_int_equal(rd(big, fc, 0, 2001), MBREQ_EX_ILLEGAL_VALUE); /* max + 1 */
		assert_int_equal(rd(big, fc, 0, 0), MBREQ_EX_ILLEGAL_VALUE);	/* empty */
	}
	for (uint8_t fc = 3; fc <= 4; fc++) {
		assert_int_equal(rd(big, fc, 0, 125), 0);
		assert_int_equal(rd(big, fc, 0, 126), MBREQ_EX_ILLEGAL_VALUE);
		assert_int_equal(rd(big, fc, 0, 0), MBREQ_EX_ILLEGAL_VALUE);
		/* addr + qty wraps 16 bits: must not look small. */
		assert_int_equal(rd(big, fc, 65535, 2), MBREQ_EX_ILLEGAL_ADDRESS);
		assert_int_equal(rd(big, fc, 65534, 1), 0);
	}
	/* The plant map: exactly to the end passes, one more does not. */
	assert_int_equal(rd(plant, 4, 0, 5), 0);
	assert_int_equal(rd(plant, 4, 0, 6), MBREQ_EX_ILLEGAL_ADDRESS);
	assert_int_equal(rd(plant, 4, 4, 1), 0);
	assert_int_equal(rd(plant, 4, 5, 1), MBREQ_EX_ILLEGAL_ADDRESS);
	assert_int_equal(rd(plant, 3, 0, 2), 0);
	assert_int_equal(rd(plant, 3, 1, 2), MBREQ_EX_ILLEGAL_ADDRESS);
	assert_int_equal(rd(plant, 1, 0, 4), 0);
	assert_int_equal(rd(plant, 1, 0, 5), MBREQ_EX_ILLEGAL_ADDRESS);
	assert_int_equal(rd(plant, 2, 0, 2), 0);
	assert_int_equal(rd(plant, 2, 2, 1), MBREQ_EX_ILLEGAL_ADDRESS);
	/* A read with a trailing byte or one byte short: malformed. */
	uint8_t pdu[6] = {3, 0, 0, 0, 1, 0};
	assert_int_equal(check(plant, pdu, 6), -EBADMSG);
	assert_int_equal(check(plant, pdu, 4), -EBADMSG);
}

static void test_mbreq_single_writes(void **state)
{
	(void)state;
	uint8_t on[5] = {5, 0, 3, 0xff, 0x00}, off[5] = {5, 0, 3, 0, 0};
	assert_int_equal(check(plant, on, 5), 0);
	assert_int_equal(check(plant, off, 5), 0);
	uint8_t odd[5] = {5, 0, 3, 0x12, 0x34};
	assert_int_equal(check(plant, odd, 5), MBREQ_EX_ILLEGAL_VALUE);
	uint8_t past[5] = {5, 0, 4, 0xff, 0};
	assert_int_equal(check(plant, past, 5), MBREQ_EX_ILLEGAL_ADDRESS);
	uint8_t reg[5] = {6, 0, 0, 0x2b, 0x5c}; /* 11100: any value is accepted */
	assert_int_equal(check(plant, reg, 5), 0);
	reg[2] = 2;
	assert_int_equal(check(plant, reg, 5), MBREQ_EX_ILLEGAL_ADDRESS);
	assert_int_equal(check(plant, reg, 4), -EBADMSG);
	assert_int_equal(check(plant, reg, 3), -EBADMSG);
}

static void test_mbreq_multiple_writes(void **state)
{
	(void)state;
	/* Coils: 1968 max, byte count exactly ceil(qty / 8). */
	assert_int_equal(wm(big, 0x0f, 0, 1968, 246, 246), 0);
	assert_int_equal(wm(big, 0x0f, 0, 1969, 247, 247), MBREQ_EX_ILLEGAL_VALUE);
	assert_int_equal(wm(big, 0x0f, 0, 0, 0, 0), MBREQ_EX_ILLEGAL_VALUE);
	assert_int_equal(wm(big, 0x0f, 0, 9, 2, 2), 0);
	assert_int_equal(wm(big, 0x0f, 0, 9, 1, 1), MBREQ_EX_ILLEGAL_VALUE); /* count short */
	assert_int_equal(wm(big, 0x0f, 0, 8, 2, 2), MBREQ_EX_ILLEGAL_VALUE); /* count long */
	assert_int_equal(wm(plant, 0x0f, 0, 4, 1, 1), 0);
	assert_int_equal(wm(plant, 0x0f, 1, 4, 1, 1), MBREQ_EX_ILLEGAL_ADDRESS);
	/* Registers: 123 max, byte count exactly 2 * qty. */
	assert_int_equal(wm(big, 0x10, 0, 123, 246, 246), 0);
	assert_int_equal(wm(big, 0x10, 0, 124, 246, 246), MBREQ_EX_ILLEGAL_VALUE);
	assert_int_equal(wm(big, 0x10, 0, 124, 248, 248), -EBADMSG); /* over 260 bytes */
	assert_int_equal(wm(big, 0x10, 0, 0, 0, 0), MBREQ_EX_ILLEGAL_VALUE);
	assert_int_equal(wm(big, 0x10, 0, 2, 3, 3), MBREQ_EX_ILLEGAL_VALUE);
	assert_int_equal(wm(plant, 0x10, 0, 2, 4, 4), 0);
	assert_int_equal(wm(plant, 0x10, 1, 2, 4, 4), MBREQ_EX_ILLEGAL_ADDRESS);
	/* The byte count disagrees with the bytes carried: malformed. */
	assert_int_equal(wm(plant, 0x10, 0, 2, 4, 3), -EBADMSG);
	assert_int_equal(wm(plant, 0x10, 0, 2, 4, 5), -EBADMSG);
	assert_int_equal(wm(plant, 0x10, 0, 2, 255, 4), -EBADMSG);
	assert_int_equal(wm(plant, 0x0f, 0, 4, 1, 0), -EBADMSG);
	uint8_t head[5] = {0x10, 0, 0, 0, 1};
	assert_int_equal(check(plant, head, 5), -EBADMSG); /* no byte count */
}

static void test_mbreq_refused_functions(void **state)
{
	(void)state;
	/* Read/write multiple (the CVE-2022-0367 path), mask write, report
	 * server id, diagnostics, nonsense: answered with an exception. */
	static const uint8_t fcs[] = {0x17, 0x16, 0x11, 0x08, 0x2b, 0x00, 0x80, 0xff};
	for (size_t i = 0; i < sizeof(fcs); i++) {
		uint8_t pdu[12] = {fcs[i], 0, 0, 0, 1, 0, 0, 0, 1, 2, 0, 0};
		assert_int_equal(check(big, pdu, sizeof(pdu)), MBREQ_EX_ILLEGAL_FUNCTION);
		assert_int_equal(check(big, pdu, 1), MBREQ_EX_ILLEGAL_FUNCTION);
	}
}

static void test_mbreq_frame(void **state)
{
	(void)state;
	uint8_t buf[300];
	uint8_t pdu[5] = {3, 0, 0, 0, 1};
	size_t len = adu(buf, pdu, 5);
	assert_int_equal(mbreq_check(buf, len, plant), 0);
	/* Header only, nothing at all. */
	assert_int_equal(mbreq_check(buf, MBREQ_TCP_HEADER, plant), -EBADMSG);
	assert_int_equal(mbreq_check(buf, 0, plant), -EBADMSG);
	/* Length field off by one either way, non-zero protocol id. */
	buf[5]++;
	assert_int_equal(mbreq_check(buf, len, plant), -EBADMSG);
	buf[5] -= 2;
	assert_int_equal(mbreq_check(buf, len, plant), -EBADMSG);
	buf[5]++;
	buf[3] = 1;
	assert_int_equal(mbreq_check(buf, len, plant), -EBADMSG);
	buf[3] = 0;
	/* 260 bytes is a full ADU; 261 never is. */
	uint8_t w[6 + 246] = {0x10, 0, 0, 0, 123, 246};
	len = adu(buf, w, sizeof(w));
	assert_int_equal(len, 259);
	assert_int_equal(mbreq_check(buf, len, big), 0);
	/* An unknown function in a full 260-byte ADU passes the size gate
	 * (answered with an exception); 261 bytes is malformed. */
	uint8_t r[1] = {0x2b};
	len = adu(buf, r, 1);
	memset(buf + len, 0, 261 - len);
	buf[4] = (uint8_t)((260 - 6) >> 8);
	buf[5] = (uint8_t)(260 - 6);
	assert_int_equal(mbreq_check(buf, 260, big), MBREQ_EX_ILLEGAL_FUNCTION);
	buf[4] = (uint8_t)((261 - 6) >> 8);
	buf[5] = (uint8_t)(261 - 6);
	assert_int_equal(mbreq_check(buf, 261, big), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mbreq_reads),
		cmocka_unit_test(test_mbreq_single_writes),
		cmocka_unit_test(test_mbreq_multiple_writes),
		cmocka_unit_test(test_mbreq_refused_functions),
		cmocka_unit_test(test_mbreq_frame),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
