/* SPDX-License-Identifier: MIT */
/*
 * Scanners for the audit record parser: one JSON value each, strict, with
 * the column and reason of the first thing wrong.  Decoded text goes to
 * the reader's scratch, never to the heap.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit-scan.h"

int audit_scratch_init(struct audit_scratch *sc, size_t line_max)
{
	struct audit_scratch s = {0};
	/* Decoded text never outgrows its encoding; +1 NUL per string, and a
	 * string takes at least 2 bytes ("") of the line. */
	if (line_max > SIZE_MAX / 2 - 64)
		return -EINVAL;
	s.cap = 2 * line_max + 64;
	s.canon_cap = line_max + 1;
	s.buf = malloc(s.cap);
	s.canon = malloc(s.canon_cap);
	if (!s.buf || !s.canon) {
		free(s.buf);
		free(s.canon);
		return -ENOMEM;
	}
	*sc = s;
	return 0;
}

void audit_scratch_fini(struct audit_scratch *sc)
{
	if (!sc)
		return;
	free(sc->buf);
	free(sc->canon);
	sc->buf = sc->canon = NULL;
	sc->cap = sc->canon_cap = 0;
}

int scan_fail(struct scan *c, const char *why)
{
	c->err->col = (uint32_t)(c->i < UINT32_MAX ? c->i + 1 : UINT32_MAX);
	snprintf(c->err->reason, sizeof(c->err->reason), "%s", why);
	return -EBADMSG;
}

bool scan_peek(const struct scan *c, char ch)
{
	return c->i < c->n && c->s[c->i] == ch;
}

int scan_litn(struct scan *c, const char *t, size_t l)
{
	if (c->n - c->i < l || memcmp(c->s + c->i, t, l) != 0)
		return scan_fail(c, "unexpected text");
	c->i += l;
	return 0;
}

bool scan_acceptn(struct scan *c, const char *t, size_t l)
{
	if (c->n - c->i < l || memcmp(c->s + c->i, t, l) != 0)
		return false;
	c->i += l;
	return true;
}

int scan_u64(struct scan *c, uint64_t *ret)
{
	size_t start = c->i;
	uint64_t v = 0;
	while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
		unsigned d = (unsigned)(c->s[c->i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return scan_fail(c, "number out of range");
		v = v * 10 + d;
		c->i++;
	}
	if (c->i == start)
		return scan_fail(c, "expected a number");
	if (c->s[start] == '0' && c->i - start > 1) {
		c->i = start;
		return scan_fail(c, "leading zero");
	}
	*ret = v;
	return 0;
}

int scan_i64(struct scan *c, int64_t *ret)
{
	bool neg = scan_accept(c, "-");
	uint64_t u;
	int r = scan_u64(c, &u);
	if (r < 0)
		return r;
	if (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX)
		return scan_fail(c, "number out of range");
	if (neg && u == 0)
		return scan_fail(c, "negative zero");
	*ret = neg ? (int64_t)(0 - u) : (int64_t)u;
	return 0;
}

/* Hex digit value + 1; 0 for anything else (upper case included). */
static const uint8_t hex_plus1[256] = {
	['0'] = 1,  ['1'] = 2,	['2'] = 3,  ['3'] = 4,	['4'] = 5,  ['5'] = 6,
	['6'] = 7,  ['7'] = 8,	['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12,
	['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

static int hexval(char ch)
{
	return hex_plus1[(unsigned char)ch] - 1;
}

int scan_put(struct scan *c, const void *p, size_t n)
{
	if (n > c->sc->cap - c->sc->used)
		return scan_fail(c, "record too large");
	memcpy(c->sc->buf + c->sc->used, p, n);
	c->sc->used += n;
	return 0;
}

static int p_hex4(struct scan *c, uint32_t *ret)
{
	uint32_t v = 0;
	if (c->n - c->i < 4)
		return scan_fail(c, "truncated \\u escape");
	for (int k = 0; k < 4; k++) {
		int h = hexval(c->s[c->i + (size_t)k]);
		if (h < 0)
			return scan_fail(c, "bad \\u escape");
		v = (v << 4) | (uint32_t)h;
	}
	c->i += 4;
	*ret = v;
	return 0;
}

/* A quoted string, decoded into scratch as NUL-terminated UTF-8. */
int scan_string(struct scan *c, const char **ret, size_t *ret_len)
{
	int r = scan_lit(c, "\"");
	if (r < 0)
		return r;
	size_t start = c->sc->used;
	for (;;) {
		if (c->i >= c->n)
			return scan_fail(c, "unterminated string");
		unsigned char ch = (unsigned char)c->s[c->i];
		if (ch == '"') {
			c->i++;
			break;
		}
		if (ch < 0x20 || ch >= 0x7f)
			return scan_fail(c, "raw control or non-ASCII byte in a string");
		if (ch != '\\') {
			/* Copy the run of plain characters at once. */
			size_t run = 1;
			while (c->i + run < c->n) {
				unsigned char nx = (unsigned char)c->s[c->i + run];
				if (nx < 0x20 || nx >= 0x7f || nx == '"' || nx == '\\')
					break;
				run++;
			}
			if ((r = scan_put(c, c->s + c->i, run)) < 0)
				return r;
			c->i += run;
			continue;
		}
		c->i++;
		if (c->i >= c->n)
			return scan_fail(c, "truncated escape");
		char e = c->s[c->i++];
		char one;
		switch (e) {
		case '"':
		case '\\':
			one = e;
			break;
		case 'n':
			one = '\n';
			break;
		case 'r':
			one = '\r';
			break;
		case 't':
			one = '\t';
			break;
		case 'u': {
			uint32_t cp;
			if ((r = p_hex4(c, &cp)) < 0)
				return r;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return scan_fail(c, "lone low surrogate");
			if (cp >= 0xd800 && cp <= 0xdbff) {
				uint32_t lo;
				if ((r = scan_lit(c, "\\u")) < 0 || (r = p_hex4(c, &lo)) < 0)
					return r;
				if (lo < 0xdc00 || lo > 0xdfff)
					return scan_fail(c, "unpaired high surrogate");
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			unsigned char u[4];
			size_t ul;
			if (cp < 0x80) {
				u[0] = (unsigned char)cp;
				ul = 1;
			} else if (cp < 0x800) {
				u[0] = (unsigned char)(0xc0 | (cp >> 6));
				u[1] = (unsigned char)(0x80 | (cp & 0x3f));
				ul = 2;
			} else if (cp < 0x10000) {
				u[0] = (unsigned char)(0xe0 | (cp >> 12));
				u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
				u[2] = (unsigned char)(0x80 | (cp & 0x3f));
				ul = 3;
			} else {
				u[0] = (unsigned char)(0xf0 | (cp >> 18));
				u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
				u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
				u[3] = (unsigned char)(0x80 | (cp & 0x3f));
				ul = 4;
			}
			if ((r = scan_put(c, u, ul)) < 0)
				return r;
			continue;
		}
		default:
			c->i--;
			return scan_fail(c, "unknown escape");
		}
		if ((r = scan_put(c, &one, 1)) < 0)
			return r;
	}
	size_t len = c->sc->used - start;
	if ((r = scan_put(c, "", 1)) < 0)
		return r;
	*ret = c->sc->buf + start;
	*ret_len = len;
	return 0;
}

/* A text field: no NUL inside, within AUDIT_TEXT_MAX. */
int scan_text(struct scan *c, size_t max, const char **ret)
{
	size_t at = c->i, len;
	const char *s;
	int r = scan_string(c, &s, &len);
	if (r < 0)
		return r;
	if (memchr(s, '\0', len) || len > max) {
		c->i = at;
		return scan_fail(c, "text with NUL or over its limit");
	}
	*ret = s;
	return 0;
}

/* Quoted lower-case hex, decoded into scratch (fixed length when want). */
int scan_hex(struct scan *c, size_t want, size_t max, const uint8_t **ret, size_t *ret_len)
{
	int r = scan_lit(c, "\"");
	if (r < 0)
		return r;
	const char *p = c->s + c->i;
	const char *q = memchr(p, '"', c->n - c->i);
	if (!q)
		return scan_fail(c, "unterminated hex");
	size_t digits = (size_t)(q - p), len = digits / 2;
	if (digits % 2 || (want && len != want) || len > max)
		return scan_fail(c, "hex of the wrong length");
	if (len > c->sc->cap - c->sc->used)
		return scan_fail(c, "record too large");
	uint8_t *dst = (uint8_t *)c->sc->buf + c->sc->used;
	for (size_t k = 0; k < len; k++) {
		unsigned hi = hex_plus1[(unsigned char)p[2 * k]];
		unsigned lo = hex_plus1[(unsigned char)p[2 * k + 1]];
		if (!hi || !lo) {
			c->i += 2 * k;
			return scan_fail(c, "bad hex digit");
		}
		dst[k] = (uint8_t)((hi - 1) << 4 | (lo - 1));
	}
	*ret = dst;
	*ret_len = len;
	c->sc->used += len;
	c->i += digits + 1;
	return 0;
}

int scan_hash(struct scan *c, uint8_t *out, size_t n)
{
	const uint8_t *p;
	size_t len;
	size_t mark = c->sc->used;
	int r = scan_hex(c, n, n, &p, &len);
	if (r < 0)
		return r;
	memcpy(out, p, n);
	c->sc->used = mark; /* copied out: give the scratch back */
	return 0;
}

int scan_double(struct scan *c, double *ret)
{
	size_t at = c->i, len;
	const char *s;
	int r = scan_string(c, &s, &len);
	if (r < 0)
		return r;
	uint64_t bits = 0;
	const char *p = s;
	if (strncmp(p, "nan:", 4) == 0 && len == 20) {
		for (size_t k = 4; k < 20; k++) {
			int h = hexval(p[k]);
			if (h < 0)
				goto bad;
			bits = bits << 4 | (uint64_t)h;
		}
		if (((bits >> 52) & 0x7ff) != 0x7ff || !(bits & ((UINT64_C(1) << 52) - 1)))
			goto bad;
	} else {
		bool neg = *p == '-';
		p += neg;
		uint64_t exp, man = 0;
		if (strcmp(p, "inf") == 0) {
			exp = 0x7ff;
		} else {
			if (strncmp(p, "0x", 2) != 0 || (p[2] != '0' && p[2] != '1'))
				goto bad;
			bool one = p[2] == '1';
			p += 3;
			int nd = 0;
			if (*p == '.') {
				p++;
				while (hexval(*p) >= 0 && nd < 13) {
					man = man << 4 | (uint64_t)hexval(*p++);
					nd++;
				}
				if (nd == 0)
					goto bad;
			}
			man <<= 4 * (13 - nd);
			if (*p++ != 'p' || (*p != '+' && *p != '-'))
				goto bad;
			bool eneg = *p++ == '-';
			int e = 0, ed = 0;
			while (*p >= '0' && *p <= '9' && ed < 5) {
				e = e * 10 + (*p++ - '0');
				ed++;
			}
			if (ed == 0 || *p)
				goto bad;
			e = eneg ? -e : e;
			if (one) {
				if (e < -1022 || e > 1023)
					goto bad;
				exp = (uint64_t)(e + 1023);
			} else {
				if (man ? e != -1022 : e != 0)
					goto bad;
				exp = 0;
			}
		}
		bits = (uint64_t)neg << 63 | exp << 52 | man;
	}
	double d;
	memcpy(&d, &bits, sizeof(d));
	/* One spelling per value: leading zeros, trailing zeros and the like
	 * are rejected by comparing with the canonical form. */
	char canon[AUDIT_DOUBLE_MAX];
	audit_format_double(d, canon);
	if (strcmp(canon, s) != 0)
		goto bad;
	*ret = d;
	return 0;
bad:
	c->i = at;
	return scan_fail(c, "not a canonical f64");
}

int scan_time(struct scan *c, int64_t *ret)
{
	size_t at = c->i, len;
	const char *s;
	int r = scan_string(c, &s, &len);
	if (r < 0)
		return r;
	int f[7];
	static const int w[7] = {4, 2, 2, 2, 2, 2, 6};
	static const char sep[7] = {'-', '-', 'T', ':', ':', '.', 'Z'};
	size_t k = 0;
	if (len != 27)
		goto bad;
	for (int j = 0; j < 7; j++) {
		f[j] = 0;
		for (int d = 0; d < w[j]; d++, k++) {
			if (s[k] < '0' || s[k] > '9')
				goto bad;
			f[j] = f[j] * 10 + (s[k] - '0');
		}
		if (s[k++] != sep[j])
			goto bad;
	}
	if (f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 || f[5] > 59)
		goto bad;
	/* A day past its month's end normalizes to another date; the
	 * canonical comparison at the end of the record rejects it. */
	int64_t days = audit_days_from_civil(f[0], (unsigned)f[1], (unsigned)f[2]);
	if (days < 0)
		goto bad;
	*ret = ((days * 86400 + f[3] * 3600 + f[4] * 60 + f[5]) * 1000000) + f[6];
	return 0;
bad:
	c->i = at;
	return scan_fail(c, "bad time");
}
