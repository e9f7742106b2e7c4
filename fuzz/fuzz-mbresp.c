/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the io layer's Modbus response checks: the bytes a PLC (or whatever
 * answers at its address) sends back.  Input: 6 bytes that pick the request
 * (function code selector, address, quantity or value), then the answer's
 * ADU.  Checks: the verdict is one of the documented ones, and an accepted
 * answer is exactly as long as the request needs, with bits 0/1 and a
 * write echo equal to the request.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mbclient.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEAD 6

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint16_t values[MBC_BITS_MAX];
	struct mbc_request req;
	size_t want, need;
	int r;

	if (size < HEAD)
		return 0;
	uint8_t fc = (uint8_t)(1 + data[0] % 6);
	uint16_t addr = (uint16_t)(data[1] << 8 | data[2]);
	uint16_t arg = (uint16_t)(data[3] << 8 | data[4]);
	uint8_t unit = data[5];
	const uint8_t *adu = data + HEAD;
	size_t len = size - HEAD;

	if (fc <= 4)
		r = mbc_read_request(&req, 1, unit, fc, addr, arg);
	else
		r = mbc_write_request(&req, 1, unit, fc, addr, fc == 5 ? (uint16_t)(arg & 1) : arg);
	if (r < 0)
		return 0;
	/* The answer's own transaction id: keep the fuzzer's bytes in play by
	 * expecting whatever it wrote, except in one input of two. */
	if (len >= 2 && (data[0] & 0x80))
		req.tid = (uint16_t)(adu[0] << 8 | adu[1]);

	memset(values, 0xAA, sizeof(values));
	r = mbc_parse_response(&req, adu, len, values);
	if (r == -EBADMSG)
		return 0;
	if (r > 0) {
		if (r > 255 || len != MBC_MBAP_LEN + 2 || adu[MBC_MBAP_LEN] != (fc | 0x80))
			abort();
		if (values[0] != 0xAAAA)
			abort(); /* nothing written on an exception */
		return 0;
	}
	if (r != 0)
		abort();
	if (mbc_frame_len(adu, len, &want) != 0 || want != len || adu[MBC_MBAP_LEN] != fc)
		abort();
	if (fc == 1 || fc == 2) {
		need = MBC_MBAP_LEN + 2 + ((size_t)req.count + 7) / 8;
		for (size_t i = 0; i < req.count; i++)
			if (values[i] > 1)
				abort();
	} else if (fc == 3 || fc == 4) {
		need = MBC_MBAP_LEN + 2 + 2 * (size_t)req.count;
	} else {
		need = MBC_MBAP_LEN + 5;
		if (fc == 6 ? values[0] != req.value : values[0] != (req.value ? 1 : 0))
			abort();
	}
	if (len != need)
		abort();
	return 0;
}
