/* SPDX-License-Identifier: MIT */
/* The io layer's Modbus TCP client: requests at the quantity limits (max and
 * max+1) and the address-space end, and answers checked strictly against
 * their request: exact byte counts, padding bits, truncated and trailing
 * bytes, another transaction, unit or function, exceptions, write echoes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mbclient.h"

/* An answer to @req: MBAP with a correct length field, then the PDU. */
static size_t answer(uint8_t *out, const struct mbc_request *req, const uint8_t *pdu,
		     size_t pdu_len)
{
	uint16_t field = (uint16_t)(pdu_len + 1);

	out[0] = (uint8_t)(req->tid >> 8);
	out[1] = (uint8_t)req->tid;
	out[2] = out[3] = 0;
	out[4] = (uint8_t)(field >> 8);
	out[5] = (uint8_t)field;
	out[6] = req->unit;
	memcpy(out + MBC_MBAP_LEN, pdu, pdu_len);
	return MBC_MBAP_LEN + pdu_len;
}

static void test_read_request_limits(void **state)
{
	struct mbc_request r;

	(void)state;
	assert_int_equal(mbc_read_request(&r, 1, 1, MBC_FC_READ_COILS, 0, MBC_BITS_MAX), 0);
	assert_int_equal(mbc_read_request(&r, 1, 1, MBC_FC_READ_COILS, 0, MBC_BITS_MAX + 1),
			 -EINVAL);
	assert_int_equal(mbc_read_request(&r, 1, 1, MBC_FC_READ_DISCRETE, 0, 0), -EINVAL);
	assert_int_equal(mbc_read_request(&r, 1, 1, MBC_FC_READ_HOLDING, 0, MBC_REGS_MAX), 0);
	assert_int_equal(mbc_read_request(&r, 1, 1, MBC_FC_READ_INPUT, 0, MBC_REGS_MAX + 1),
			 -EINVAL);
	/* The last address is 65535: 65535 + 1 fits, 65535 + 2 does not. */
	assert_int_equal(mbc_read_request(&r, 1, 1, MBC_FC_READ_HOLDING, 65535, 1), 0);
	assert_int_equal(mbc_read_request(&r, 1, 1, MBC_FC_READ_HOLDING, 65535, 2), -EINVAL);
	assert_int_equal(mbc_read_request(&r, 1, 1, MBC_FC_READ_HOLDING, 65411, 125), 0);
	assert_int_equal(mbc_read_request(&r, 1, 1, MBC_FC_READ_HOLDING, 65412, 125), -EINVAL);
	assert_int_equal(mbc_read_request(&r, 1, 1, MBC_FC_WRITE_SINGLE_COIL, 0, 1), -EINVAL);
	assert_int_equal(mbc_read_request(&r, 1, 1, 0, 0, 1), -EINVAL);
	assert_int_equal(mbc_read_request(&r, 1, 1, 23, 0, 1), -EINVAL);
}

static void test_encode(void **state)
{
	struct mbc_request r;
	uint8_t buf[MBC_REQ_LEN];
	const uint8_t rd[] = {0x12, 0x34, 0, 0, 0, 6, 7, 3, 0x00, 0x10, 0x00, 0x7d};
	const uint8_t coil[] = {0, 9, 0, 0, 0, 6, 1, 5, 0x00, 0x02, 0xff, 0x00};
	const uint8_t reg[] = {0, 10, 0, 0, 0, 6, 1, 6, 0x00, 0x00, 0x00, 110};

	(void)state;
	assert_int_equal(mbc_read_request(&r, 0x1234, 7, MBC_FC_READ_HOLDING, 16, 125), 0);
	mbc_encode(&r, buf);
	assert_memory_equal(buf, rd, sizeof(rd));
	assert_int_equal(mbc_write_request(&r, 9, 1, MBC_FC_WRITE_SINGLE_COIL, 2, 1), 0);
	mbc_encode(&r, buf);
	assert_memory_equal(buf, coil, sizeof(coil));
	assert_int_equal(mbc_write_request(&r, 10, 1, MBC_FC_WRITE_SINGLE_REGISTER, 0, 110), 0);
	mbc_encode(&r, buf);
	assert_memory_equal(buf, reg, sizeof(reg));
	assert_int_equal(mbc_write_request(&r, 1, 1, MBC_FC_WRITE_SINGLE_COIL, 0, 2), -EINVAL);
	assert_int_equal(mbc_write_request(&r, 1, 1, MBC_FC_READ_COILS, 0, 1), -EINVAL);
}

static void test_frame_len(void **state)
{
	uint8_t b[MBC_MBAP_LEN] = {0, 1, 0, 0, 0, 2, 1};
	size_t n = 0;

	(void)state;
	assert_int_equal(mbc_frame_len(b, 0, &n), -EAGAIN);
	assert_int_equal(mbc_frame_len(b, MBC_MBAP_LEN - 1, &n), -EAGAIN);
	assert_int_equal(mbc_frame_len(b, MBC_MBAP_LEN, &n), 0);
	assert_int_equal(n, 8);
	b[5] = 1; /* unit id only, no function code */
	assert_int_equal(mbc_frame_len(b, MBC_MBAP_LEN, &n), -EBADMSG);
	b[5] = MBC_PDU_MAX + 1; /* the largest ADU */
	assert_int_equal(mbc_frame_len(b, MBC_MBAP_LEN, &n), 0);
	assert_int_equal(n, MBC_ADU_MAX);
	b[5] = MBC_PDU_MAX + 2;
	assert_int_equal(mbc_frame_len(b, MBC_MBAP_LEN, &n), -EBADMSG);
	b[5] = 2;
	b[3] = 1; /* not the Modbus protocol */
	assert_int_equal(mbc_frame_len(b, MBC_MBAP_LEN, &n), -EBADMSG);
}

static void test_registers(void **state)
{
	struct mbc_request r;
	uint8_t pdu[2 + 2 * MBC_REGS_MAX + 2], adu[MBC_ADU_MAX + 8];
	uint16_t v[MBC_REGS_MAX];
	size_t len;

	(void)state;
	/* 125 registers: the largest read answer. */
	assert_int_equal(mbc_read_request(&r, 5, 1, MBC_FC_READ_INPUT, 0, MBC_REGS_MAX), 0);
	pdu[0] = MBC_FC_READ_INPUT;
	pdu[1] = 2 * MBC_REGS_MAX;
	for (int i = 0; i < MBC_REGS_MAX; i++) {
		pdu[2 + 2 * i] = (uint8_t)(i >> 8);
		pdu[3 + 2 * i] = (uint8_t)(i * 3);
	}
	len = answer(adu, &r, pdu, 2 + 2 * MBC_REGS_MAX);
	assert_int_equal(mbc_parse_response(&r, adu, len, v), 0);
	assert_int_equal(v[0], 0);
	assert_int_equal(v[124], (uint8_t)(124 * 3));
	/* Truncated by one byte (length field agreeing), and one byte short. */
	len = answer(adu, &r, pdu, 2 + 2 * MBC_REGS_MAX - 1);
	assert_int_equal(mbc_parse_response(&r, adu, len, v), -EBADMSG);
	len = answer(adu, &r, pdu, 2 + 2 * MBC_REGS_MAX);
	assert_int_equal(mbc_parse_response(&r, adu, len - 1, v), -EBADMSG);
	/* A trailing byte, with and without the length field saying so. */
	assert_int_equal(mbc_parse_response(&r, adu, len + 1, v), -EBADMSG);
	pdu[2 + 2 * MBC_REGS_MAX] = 0;
	len = answer(adu, &r, pdu, 2 + 2 * MBC_REGS_MAX + 1);
	assert_int_equal(mbc_parse_response(&r, adu, len, v), -EBADMSG);

	/* Byte count must match the quantity, not just the frame. */
	assert_int_equal(mbc_read_request(&r, 6, 1, MBC_FC_READ_HOLDING, 0, 2), 0);
	const uint8_t ok[] = {3, 4, 0, 100, 0, 50};
	const uint8_t odd[] = {3, 3, 0, 100, 0};
	const uint8_t more[] = {3, 6, 0, 100, 0, 50, 0, 1};
	const uint8_t other_fc[] = {4, 4, 0, 100, 0, 50};
	len = answer(adu, &r, ok, sizeof(ok));
	assert_int_equal(mbc_parse_response(&r, adu, len, v), 0);
	assert_int_equal(v[0], 100);
	assert_int_equal(v[1], 50);
	len = answer(adu, &r, odd, sizeof(odd));
	assert_int_equal(mbc_parse_response(&r, adu, len, v), -EBADMSG);
	len = answer(adu, &r, more, sizeof(more));
	assert_int_equal(mbc_parse_response(&r, adu, len, v), -EBADMSG);
	len = answer(adu, &r, other_fc, sizeof(other_fc));
	assert_int_equal(mbc_parse_response(&r, adu, len, v), -EBADMSG);
	/* Another transaction, another unit. */
	len = answer(adu, &r, ok, sizeof(ok));
	adu[1] ^= 1;
	assert_int_equal(mbc_parse_response(&r, adu, len, v), -EBADMSG);
	adu[1] ^= 1;
	adu[6] ^= 1;
	assert_int_equal(mbc_parse_response(&r, adu, len, v), -EBADMSG);
	/* Empty. */
	assert_int_equal(mbc_parse_response(&r, adu, 0, v), -EBADMSG);
	assert_int_equal(mbc_parse_response(&r, adu, MBC_MBAP_LEN, v), -EBADMSG);
}

static void test_bits(void **state)
{
	struct mbc_request r;
	uint8_t pdu[2 + 250], adu[MBC_ADU_MAX];
	uint16_t v[MBC_BITS_MAX];
	size_t len;

	(void)state;
	/* 2000 bits = 250 bytes, no padding. */
	assert_int_equal(mbc_read_request(&r, 1, 1, MBC_FC_READ_COILS, 0, MBC_BITS_MAX), 0);
	pdu[0] = MBC_FC_READ_COILS;
	pdu[1] = 250;
	memset(pdu + 2, 0xA5, 250);
	len = answer(adu, &r, pdu, sizeof(pdu));
	assert_int_equal(mbc_parse_response(&r, adu, len, v), 0);
	assert_int_equal(v[0], 1);
	assert_int_equal(v[1], 0);
	assert_int_equal(v[1999], 1);

	/* 4 bits: one byte whose upper four bits must be zero. */
	assert_int_equal(mbc_read_request(&r, 2, 1, MBC_FC_READ_DISCRETE, 0, 4), 0);
	const uint8_t good[] = {2, 1, 0x0b};
	const uint8_t pad[] = {2, 1, 0x1b};
	const uint8_t two[] = {2, 2, 0x0b, 0};
	len = answer(adu, &r, good, sizeof(good));
	assert_int_equal(mbc_parse_response(&r, adu, len, v), 0);
	assert_int_equal(v[0], 1);
	assert_int_equal(v[1], 1);
	assert_int_equal(v[2], 0);
	assert_int_equal(v[3], 1);
	len = answer(adu, &r, pad, sizeof(pad));
	assert_int_equal(mbc_parse_response(&r, adu, len, v), -EBADMSG);
	len = answer(adu, &r, two, sizeof(two));
	assert_int_equal(mbc_parse_response(&r, adu, len, v), -EBADMSG);
}

static void test_exceptions(void **state)
{
	struct mbc_request r;
	uint8_t adu[MBC_ADU_MAX];
	uint16_t v[1] = {0xBEEF};
	size_t len;

	(void)state;
	assert_int_equal(mbc_read_request(&r, 3, 1, MBC_FC_READ_HOLDING, 0, 1), 0);
	const uint8_t ex2[] = {0x83, 2};
	const uint8_t ex0[] = {0x83, 0};
	const uint8_t ex_long[] = {0x83, 2, 0};
	const uint8_t ex_short[] = {0x83};
	const uint8_t ex_other[] = {0x84, 2};
	len = answer(adu, &r, ex2, sizeof(ex2));
	assert_int_equal(mbc_parse_response(&r, adu, len, v), 2);
	assert_int_equal(v[0], 0xBEEF); /* nothing written */
	len = answer(adu, &r, ex0, sizeof(ex0));
	assert_int_equal(mbc_parse_response(&r, adu, len, v), -EBADMSG);
	len = answer(adu, &r, ex_long, sizeof(ex_long));
	assert_int_equal(mbc_parse_response(&r, adu, len, v), -EBADMSG);
	len = answer(adu, &r, ex_short, sizeof(ex_short));
	assert_int_equal(mbc_parse_response(&r, adu, len, v), -EBADMSG);
	len = answer(adu, &r, ex_other, sizeof(ex_other));
	assert_int_equal(mbc_parse_response(&r, adu, len, v), -EBADMSG);
}

static void test_write_echo(void **state)
{
	struct mbc_request r;
	uint8_t adu[MBC_ADU_MAX];
	uint16_t v[1];
	size_t len;

	(void)state;
	assert_int_equal(mbc_write_request(&r, 4, 1, MBC_FC_WRITE_SINGLE_REGISTER, 0, 110), 0);
	const uint8_t echo[] = {6, 0, 0, 0, 110};
	const uint8_t changed[] = {6, 0, 0, 0x2b, 0x5c}; /* 11100: not what we wrote */
	const uint8_t moved[] = {6, 0, 1, 0, 110};
	const uint8_t trail[] = {6, 0, 0, 0, 110, 0};
	len = answer(adu, &r, echo, sizeof(echo));
	assert_int_equal(mbc_parse_response(&r, adu, len, v), 0);
	assert_int_equal(v[0], 110);
	len = answer(adu, &r, changed, sizeof(changed));
	assert_int_equal(mbc_parse_response(&r, adu, len, v), -EBADMSG);
	len = answer(adu, &r, moved, sizeof(moved));
	assert_int_equal(mbc_parse_response(&r, adu, len, v), -EBADMSG);
	len = answer(adu, &r, trail, sizeof(trail));
	assert_int_equal(mbc_parse_response(&r, adu, len, v), -EBADMSG);
	len = answer(adu, &r, echo, sizeof(echo) - 1);
	assert_int_equal(mbc_parse_response(&r, adu, len, v), -EBADMSG);

	assert_int_equal(mbc_write_request(&r, 5, 1, MBC_FC_WRITE_SINGLE_COIL, 1, 1), 0);
	const uint8_t on[] = {5, 0, 1, 0xff, 0};
	const uint8_t off[] = {5, 0, 1, 0, 0};
	len = answer(adu, &r, on, sizeof(on));
	assert_int_equal(mbc_parse_response(&r, adu, len, v), 0);
	assert_int_equal(v[0], 1);
	len = answer(adu, &r, off, sizeof(off));
	assert_int_equal(mbc_parse_response(&r, adu, len, v), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_request_limits),
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_frame_len),
		cmocka_unit_test(test_registers),
		cmocka_unit_test(test_bits),
		cmocka_unit_test(test_exceptions),
		cmocka_unit_test(test_write_echo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
