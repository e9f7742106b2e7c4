/* SPDX-License-Identifier: MIT */
/*
 * Fuzz plcsim's Modbus request filter, the code between a network peer and
 * libmodbus' modbus_reply().  Input: a TCP ADU.  Checks: the verdict is one
 * of the documented ones, and whatever passes really is a request that
 * stays inside the plant's register map and inside the frame.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "mbreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint16_t sizes[TAG_AREA_COUNT];
	for (int a = 0; a < TAG_AREA_COUNT; a++)
		sizes[a] = tags_area_size((enum tag_area)a);

	int r = mbreq_check(data, size, sizes);
	if (r == -EBADMSG || r == MBREQ_EX_ILLEGAL_FUNCTION || r == MBREQ_EX_ILLEGAL_ADDRESS ||
	    r == MBREQ_EX_ILLEGAL_VALUE)
		return 0;
	if (r != 0)
		abort();

	/* Passed: re-derive independently what modbus_reply() will touch. */
	if (size < MBREQ_TCP_HEADER + 5 || size > 260)
		abort();
	const uint8_t *pdu = data + MBREQ_TCP_HEADER;
	size_t pdu_len = size - MBREQ_TCP_HEADER;
	uint32_t addr = be16(pdu + 1), qty = be16(pdu + 3);
	uint32_t limit;
	switch (pdu[0]) {
	case 1:
		limit = sizes[TAG_AREA_COIL];
		break;
	case 2:
		limit = sizes[TAG_AREA_DI];
		break;
	case 3:
		limit = sizes[TAG_AREA_HR];
		break;
	case 4:
		limit = sizes[TAG_AREA_IR];
		break;
	case 5:
		limit = sizes[TAG_AREA_COIL];
		qty = 1;
		break;
	case 6:
		limit = sizes[TAG_AREA_HR];
		qty = 1;
		break;
	case 0x0f:
		limit = sizes[TAG_AREA_COIL];
		if (pdu_len != 6u + pdu[5] || pdu[5] != (qty + 7) / 8)
			abort();
		break;
	case 0x10:
		limit = sizes[TAG_AREA_HR];
		if (pdu_len != 6u + pdu[5] || pdu[5] != qty * 2)
			abort();
		break;
	default:
		abort();
	}
	if (pdu[0] <= 6 && pdu_len != 5)
		abort();
	if (qty == 0 || addr + qty > limit)
		abort();
	return 0;
}
