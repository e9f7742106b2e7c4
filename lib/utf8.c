/* SPDX-License-Identifier: MIT */
/* Strict UTF-8 validation; the accepted byte ranges are those of Unicode's
 * table of well-formed sequences, checked byte by byte so that no decoded
 * value is ever needed. */
#include <stdint.h>
#include <string.h>

#include "conduit/conduit.h"
#include "utf8.h"

static int utf8_cont(uint8_t c)
{
	return c >= 0x80 && c <= 0xbf;
}

int utf8_check(const void *p, size_t len)
{
	const uint8_t *s = p;
	size_t i = 0;
	while (i < len) {
		/* Eight ASCII bytes at a time while no byte has its high bit
		 * set or is zero: the common case costs a load and two tests
		 * per word instead of per byte. */
		while (len - i >= 8) {
			uint64_t w;
			memcpy(&w, s + i, sizeof(w));
			const uint64_t ones = UINT64_C(0x0101010101010101);
			const uint64_t highs = UINT64_C(0x8080808080808080);
			if ((w & highs) || ((w - ones) & ~w & highs))
				break;
			i += 8;
		}
		/* Then byte by byte through ASCII other than NUL (01..7F). */
		while (i < len && (uint8_t)(s[i] - 1) < 0x7f)
			i++;
		if (i >= len)
			break;
		uint8_t c = s[i];
		if (c == 0)
			return -CDT_E_UTF8;
		/* Lead byte decides the length and the allowed range of the
		 * second byte; that range is what excludes overlongs (E0, F0),
		 * surrogates (ED) and values past U+10FFFF (F4). */
		size_t n;
		uint8_t lo = 0x80, hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf) {
			n = 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 3;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 4;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else {
			/* 80..BF lone continuation, C0/C1 overlong, F5..FF. */
			return -CDT_E_UTF8;
		}
		if (len - i < n)
			return -CDT_E_UTF8;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return -CDT_E_UTF8;
		for (size_t k = 2; k < n; k++)
			if (!utf8_cont(s[i + k]))
				return -CDT_E_UTF8;
		i += n;
	}
	return 0;
}
