/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "mbreq.h"

/* Limits of the Modbus application protocol (V1.1b3, section 6). */
#define MAX_READ_BITS  2000
#define MAX_READ_REGS  125
#define MAX_WRITE_BITS 1968
#define MAX_WRITE_REGS 123

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

/* Address and quantity against the map, widened so addr + qty cannot wrap. */
static int check_range(uint16_t addr, uint16_t qty, uint16_t max_qty, uint16_t size)
{
	if (qty < 1 || qty > max_qty)
		return MBREQ_EX_ILLEGAL_VALUE;
	if ((uint32_t)addr + qty > size)
		return MBREQ_EX_ILLEGAL_ADDRESS;
	return 0;
}

int mbreq_check(const uint8_t *req, size_t len, const uint16_t area_size[TAG_AREA_COUNT])
{
	/* A header and a function code at least; never more than an ADU. */
	if (len < MBREQ_TCP_HEADER + 1 || len > 260)
		return -EBADMSG;
	/* MBAP: protocol 0, and the length field counts the unit id and PDU. */
	if (be16(req + 2) != 0 || be16(req + 4) != len - 6)
		return -EBADMSG;

	const uint8_t *pdu = req + MBREQ_TCP_HEADER;
	size_t pdu_len = len - MBREQ_TCP_HEADER;
	/* Address and quantity (or value) of every function we serve; each
	 * case checks pdu_len >= 5 before it uses them. */
	uint16_t addr = pdu_len >= 5 ? be16(pdu + 1) : 0;
	uint16_t val = pdu_len >= 5 ? be16(pdu + 3) : 0;

	switch (pdu[0]) {
	case 0x01: /* read coils */
	case 0x02: /* read discrete inputs */
	case 0x03: /* read holding registers */
	case 0x04: /* read input registers */
		if (pdu_len != 5)
			return -EBADMSG;
		switch (pdu[0]) {
		case 0x01:
			return check_range(addr, val, MAX_READ_BITS, area_size[TAG_AREA_COIL]);
		case 0x02:
			return check_range(addr, val, MAX_READ_BITS, area_size[TAG_AREA_DI]);
		case 0x03:
			return check_range(addr, val, MAX_READ_REGS, area_size[TAG_AREA_HR]);
		default:
			return check_range(addr, val, MAX_READ_REGS, area_size[TAG_AREA_IR]);
		}
	case 0x05: /* write single coil */
		if (pdu_len != 5)
			return -EBADMSG;
		if (val != 0xff00 && val != 0x0000)
			return MBREQ_EX_ILLEGAL_VALUE;
		return check_range(addr, 1, 1, area_size[TAG_AREA_COIL]);
	case 0x06: /* write single register */
		if (pdu_len != 5)
			return -EBADMSG;
		return check_range(addr, 1, 1, area_size[TAG_AREA_HR]);
	case 0x0f: /* write multiple coils */
	case 0x10: /* write multiple registers */ {
		if (pdu_len < 6)
			return -EBADMSG;
		size_t count = pdu[5];
		/* The byte count must be exactly what the frame carries and
		 * what the quantity needs: the mismatch is the CVE pattern. */
		if (pdu_len != 6 + count)
			return -EBADMSG;
		if (pdu[0] == 0x0f) {
			if (val < 1 || val > MAX_WRITE_BITS || count != ((size_t)val + 7) / 8)
				return MBREQ_EX_ILLEGAL_VALUE;
			return check_range(addr, val, MAX_WRITE_BITS, area_size[TAG_AREA_COIL]);
		}
		if (val < 1 || val > MAX_WRITE_REGS || count != (size_t)val * 2)
			return MBREQ_EX_ILLEGAL_VALUE;
		return check_range(addr, val, MAX_WRITE_REGS, area_size[TAG_AREA_HR]);
	}
	default:
		/* Read/write multiple (0x17), mask write (0x16), diagnostics and
		 * the rest: the plant needs none of them, so libmodbus never
		 * parses them. */
		return MBREQ_EX_ILLEGAL_FUNCTION;
	}
}
