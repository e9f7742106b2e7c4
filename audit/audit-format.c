/* SPDX-License-Identifier: MIT */
/*
 * Audit record serialization: the one canonical byte form of a record.
 * Output is pure ASCII so that a record can never carry a raw newline,
 * terminal escape or line separator, whatever a layer sent.
 *
 * The broker formats a record for every decision, so this is on its hot
 * path: fixed keys are copied with lengths known at compile time, text is
 * escaped a run of plain bytes at a time and checked (length, UTF-8) in
 * that same pass, and the writer reuses the last second it spelled out.
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "audit-internal.h"

struct lit {
	const char *s;
	size_t n;
};
#define LIT(s)                                                                                     \
	{                                                                                          \
		"" s, sizeof(s) - 1                                                                \
	}

static const struct lit event_names[] = {
	[AUDIT_EV_START] = LIT("start"),       [AUDIT_EV_STOP] = LIT("stop"),
	[AUDIT_EV_DECISION] = LIT("decision"), [AUDIT_EV_SPAWN] = LIT("spawn"),
	[AUDIT_EV_EXIT] = LIT("exit"),	       [AUDIT_EV_VIOLATION] = LIT("violation"),
	[AUDIT_EV_RELOAD] = LIT("reload"),     [AUDIT_EV_RELOAD_REJECTED] = LIT("reload-rejected"),
	[AUDIT_EV_ALARM] = LIT("alarm"),       [AUDIT_EV_GAP] = LIT("audit-gap"),
};

static const struct lit verdict_names[] = {
	[AUDIT_VERDICT_ALLOW] = LIT("allow"),
	[AUDIT_VERDICT_DENY] = LIT("deny"),
	[AUDIT_VERDICT_RATE_LIMITED] = LIT("rate-limited"),
	[AUDIT_VERDICT_COMPLAIN] = LIT("complain"),
};

static const struct lit type_names[] = {
	[CDT_TYPE_BOOL] = LIT("bool"),	[CDT_TYPE_I64] = LIT("i64"),
	[CDT_TYPE_U64] = LIT("u64"),	[CDT_TYPE_DOUBLE] = LIT("f64"),
	[CDT_TYPE_STRING] = LIT("str"), [CDT_TYPE_BYTES] = LIT("bytes"),
	[CDT_TYPE_FD] = LIT("fd"),
};

const char *audit_event_name(enum audit_event ev)
{
	if ((unsigned)ev >= sizeof(event_names) / sizeof(event_names[0]))
		return NULL;
	return event_names[ev].s;
}

const char *audit_verdict_name(enum audit_verdict v)
{
	if ((unsigned)v >= sizeof(verdict_names) / sizeof(verdict_names[0]))
		return NULL;
	return verdict_names[v].s;
}

const char *audit_type_name(enum cdt_type t)
{
	if ((unsigned)t >= sizeof(type_names) / sizeof(type_names[0]))
		return NULL;
	return type_names[t].s;
}

void audit_genesis(const uint8_t log_id[AUDIT_LOG_ID_LEN], uint8_t ret_prev[AUDIT_HASH_LEN])
{
	/* Domain-separated so a genesis value never equals a line's hash. */
	static const char domain[] = "conduit-audit-v1 genesis";
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, AUDIT_HASH_LEN);
	crypto_generichash_update(&st, (const unsigned char *)domain, sizeof(domain));
	crypto_generichash_update(&st, log_id, AUDIT_LOG_ID_LEN);
	crypto_generichash_final(&st, ret_prev, AUDIT_HASH_LEN);
}

/* ---- bounded output ---- */

struct out {
	char *p;
	size_t len, cap;
	bool over; /* something did not fit: the result is -E2BIG */
	bool bad;  /* text over its limit or not UTF-8: the result is -EINVAL */
};

/* Once over, later (shorter) pieces may still land: harmless, the bytes
 * are never returned as a record. */
static inline void out_mem(struct out *o, const void *s, size_t n)
{
	if (n > o->cap - o->len) {
		o->over = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

/* A string literal: its length is a constant, so the copy is a few moves
 * instead of strlen and a memcpy call. */
#define out_lit(o, s) out_mem((o), "" s, sizeof(s) - 1)

static inline void out_name(struct out *o, const struct lit *l)
{
	out_mem(o, l->s, l->n);
}

/* Two decimal digits per division. */
static const char digits2[200] = "00010203040506070809"
				 "10111213141516171819"
				 "20212223242526272829"
				 "30313233343536373839"
				 "40414243444546474849"
				 "50515253545556575859"
				 "60616263646566676869"
				 "70717273747576777879"
				 "80818283848586878889"
				 "90919293949596979899";
static void out_u64(struct out *o, uint64_t v)
{
	char t[20]; /* UINT64_MAX has 20 digits */
	size_t i = sizeof(t);
	while (v >= 100) {
		unsigned d = (unsigned)(v % 100) * 2;
		v /= 100;
		t[--i] = digits2[d + 1];
		t[--i] = digits2[d];
	}
	if (v >= 10) {
		t[--i] = digits2[v * 2 + 1];
		t[--i] = digits2[v * 2];
	} else {
		t[--i] = (char)('0' + v);
	}
	out_mem(o, t + i, sizeof(t) - i);
}

static void out_i64(struct out *o, int64_t v)
{
	if (v < 0) {
		out_lit(o, "-");
		/* Negate in unsigned arithmetic: INT64_MIN has no positive twin. */
		out_u64(o, 0 - (uint64_t)v);
	} else {
		out_u64(o, (uint64_t)v);
	}
}

static const char hexdig[] = "0123456789abcdef";

/* Each byte's two digits, so that a byte costs one load (every record
 * carries at least the 32 bytes of prev). */
static const char hex2[512] = "000102030405060708090a0b0c0d0e0f"
			      "101112131415161718191a1b1c1d1e1f"
			      "202122232425262728292a2b2c2d2e2f"
			      "303132333435363738393a3b3c3d3e3f"
			      "404142434445464748494a4b4c4d4e4f"
			      "505152535455565758595a5b5c5d5e5f"
			      "606162636465666768696a6b6c6d6e6f"
			      "707172737475767778797a7b7c7d7e7f"
			      "808182838485868788898a8b8c8d8e8f"
			      "909192939495969798999a9b9c9d9e9f"
			      "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
			      "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
			      "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
			      "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
			      "e0e1e2e3e4e5e6e7e8e9eaebecedeeef"
			      "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

static void out_hex(struct out *o, const uint8_t *p, size_t n)
{
	/* One bound check for the whole value (up to AUDIT_VALUE_MAX bytes):
	 * the per-byte one cost more than the digits. */
	if (n > (o->cap - o->len) / 2) {
		o->over = true;
		return;
	}
	char *d = o->p + o->len;
	for (size_t i = 0; i < n; i++)
		memcpy(d + 2 * i, hex2 + 2 * p[i], 2);
	o->len += 2 * n;
}

static void out_u16esc(struct out *o, uint32_t u)
{
	char t[6] = {'\\',
		     'u',
		     hexdig[(u >> 12) & 15],
		     hexdig[(u >> 8) & 15],
		     hexdig[(u >> 4) & 15],
		     hexdig[u & 15]};
	out_mem(o, t, 6);
}

/* 1 for a byte that does not go into a JSON string as it is: control
 * characters, '"', '\\', DEL, and every byte of a multi-byte character
 * (the output is ASCII). */
static const uint8_t text_special[256] = {
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* Whether any of the eight bytes of w is special (text_special): a byte
 * below 0x20, or equal to '"', '\\' or DEL once XORed to zero, sets its
 * high bit in the subtraction, and bytes from 0x80 up have it already.
 * A borrow only leaves a byte that is special itself, so the word is
 * flagged exactly when one of its bytes is; the caller then goes byte by
 * byte. */
static inline bool word_special(uint64_t w)
{
	const uint64_t ones = UINT64_C(0x0101010101010101), high = ones * 0x80;
	uint64_t quote = w ^ (ones * '"'), bslash = w ^ (ones * '\\'), del = w ^ (ones * 0x7f);
	return ((w - ones * 0x20) | (quote - ones) | (bslash - ones) | (del - ones) | w) & high;
}

/* A quoted JSON string, checked to be UTF-8 as it is escaped: o->bad when
 * it is not. */
static void out_text(struct out *o, const uint8_t *s, size_t n)
{
	out_lit(o, "\"");
	size_t i = 0;
	while (i < n) {
		size_t run = i;
		uint64_t w;
		while (n - run >= sizeof(w)) {
			memcpy(&w, s + run, sizeof(w));
			if (word_special(w))
				break;
			run += sizeof(w);
		}
		while (run < n && !text_special[s[run]])
			run++;
		if (run > i) {
			out_mem(o, s + i, run - i);
			i = run;
			if (i == n)
				break;
		}
		uint32_t cp = s[i];
		size_t l = cp < 0x80 ? 1 : utf8_char(s + i, n - i, &cp);
		if (l == 0) {
			o->bad = true;
			return;
		}
		i += l;
		switch (cp) {
		case '"':
			out_lit(o, "\\\"");
			break;
		case '\\':
			out_lit(o, "\\\\");
			break;
		case '\n':
			out_lit(o, "\\n");
			break;
		case '\r':
			out_lit(o, "\\r");
			break;
		case '\t':
			out_lit(o, "\\t");
			break;
		default:
			if (cp < 0x10000) {
				out_u16esc(o, cp);
			} else {
				cp -= 0x10000;
				out_u16esc(o, 0xd800 | (cp >> 10));
				out_u16esc(o, 0xdc00 | (cp & 0x3ff));
			}
		}
	}
	out_lit(o, "\"");
}

/* A NUL-terminated text of at most max bytes: o->bad when longer. */
static void out_ctext(struct out *o, const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);
	if (n > max) {
		o->bad = true;
		return;
	}
	out_text(o, (const uint8_t *)s, n);
}

/* The canonical f64 spelling into buf (at least AUDIT_DOUBLE_MAX - 1
 * bytes), not terminated; returns its length. */
static size_t double_text(double d, char *buf)
{
	uint64_t bits;
	memcpy(&bits, &d, sizeof(bits));
	char *p = buf;
	unsigned exp = (unsigned)((bits >> 52) & 0x7ff);
	uint64_t man = bits & ((UINT64_C(1) << 52) - 1);
	if (exp == 0x7ff && man) {
		/* Every NaN keeps its payload and sign bit. */
		memcpy(p, "nan:", 4);
		p += 4;
		for (int sh = 60; sh >= 0; sh -= 4)
			*p++ = hexdig[(bits >> sh) & 15];
		return (size_t)(p - buf);
	}
	if (bits >> 63)
		*p++ = '-';
	if (exp == 0x7ff) {
		memcpy(p, "inf", 3);
		return (size_t)(p + 3 - buf);
	}
	if (exp == 0 && man == 0) {
		memcpy(p, "0x0p+0", 6);
		return (size_t)(p + 6 - buf);
	}
	memcpy(p, exp ? "0x1" : "0x0", 3);
	p += 3;
	if (man) {
		/* 13 hex digits of mantissa, trailing zeros dropped. */
		int nd = 13 - __builtin_ctzll(man) / 4;
		*p++ = '.';
		for (int k = 0; k < nd; k++)
			*p++ = hexdig[(man >> (48 - 4 * k)) & 15];
	}
	int e = exp ? (int)exp - 1023 : -1022;
	*p++ = 'p';
	*p++ = e < 0 ? '-' : '+';
	unsigned ae = (unsigned)(e < 0 ? -e : e); /* at most 1023 */
	if (ae >= 1000)
		*p++ = '1';
	if (ae >= 100)
		*p++ = (char)('0' + ae / 100 % 10);
	if (ae >= 10)
		*p++ = (char)('0' + ae / 10 % 10);
	*p++ = (char)('0' + ae % 10);
	return (size_t)(p - buf);
}

void audit_format_double(double d, char buf[AUDIT_DOUBLE_MAX])
{
	buf[double_text(d, buf)] = '\0';
}

/* Proleptic Gregorian calendar in integer arithmetic: no time zone, no
 * locale, no libc state. */
int64_t audit_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* v in exactly width digits; width is even (2, 4 or 6 in a time). */
static void put_digits(char *p, unsigned v, int width)
{
	for (int i = width - 2; i >= 0; i -= 2) {
		memcpy(p + i, digits2 + v % 100 * 2, 2);
		v /= 100;
	}
}

int audit_time_format(int64_t us, char buf[AUDIT_TIME_LEN + 1])
{
	if (us < 0)
		return -EINVAL;
	int64_t secs = us / 1000000;
	int64_t z = secs / 86400 + 719468;
	unsigned sod = (unsigned)(secs % 86400);
	int64_t era = z / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	int64_t y = (int64_t)yoe + era * 400 + (m <= 2);
	if (y > 9999)
		return -EINVAL;
	memcpy(buf, "0000-00-00T00:00:00.000000Z", AUDIT_TIME_LEN + 1);
	put_digits(buf, (unsigned)y, 4);
	put_digits(buf + 5, m, 2);
	put_digits(buf + 8, d, 2);
	put_digits(buf + 11, sod / 3600, 2);
	put_digits(buf + 14, sod / 60 % 60, 2);
	put_digits(buf + 17, sod % 60, 2);
	put_digits(buf + 20, (unsigned)(us % 1000000), 6);
	return 0;
}

/* The record's time through tc: the calendar only when the second
 * changed, else just the microseconds.  -EINVAL as audit_time_format(). */
static int out_time(struct out *o, int64_t us, struct audit_time_cache *tc)
{
	if (us < 0)
		return -EINVAL;
	int64_t sec = us / 1000000;
	if (tc->sec != sec) {
		if (audit_time_format(us, tc->text) < 0)
			return -EINVAL;
		tc->sec = sec;
	} else {
		put_digits(tc->text + 20, (unsigned)(us % 1000000), 6);
	}
	out_mem(o, tc->text, AUDIT_TIME_LEN);
	return 0;
}

static void out_arg(struct out *o, const struct audit_arg *a)
{
	out_lit(o, "{\"n\":");
	out_ctext(o, a->arg.name, CDT_NAME_MAX);
	out_lit(o, ",\"t\":\"");
	out_name(o, &type_names[a->arg.type]);
	out_lit(o, "\"");
	char dbl[AUDIT_DOUBLE_MAX];
	switch (a->arg.type) {
	case CDT_TYPE_BOOL:
		if (a->arg.v.b)
			out_lit(o, ",\"v\":true");
		else
			out_lit(o, ",\"v\":false");
		break;
	case CDT_TYPE_I64:
		out_lit(o, ",\"v\":");
		out_i64(o, a->arg.v.i64);
		break;
	case CDT_TYPE_U64:
		out_lit(o, ",\"v\":");
		out_u64(o, a->arg.v.u64);
		break;
	case CDT_TYPE_DOUBLE:
		out_lit(o, ",\"v\":\"");
		out_mem(o, dbl, double_text(a->arg.v.d, dbl));
		out_lit(o, "\"");
		break;
	case CDT_TYPE_STRING:
		if (a->not_utf8) {
			out_lit(o, ",\"hex\":\"");
			out_hex(o, (const uint8_t *)a->arg.v.str.ptr, a->arg.v.str.len);
			out_lit(o, "\"");
		} else {
			out_lit(o, ",\"v\":");
			out_text(o, (const uint8_t *)a->arg.v.str.ptr, a->arg.v.str.len);
		}
		break;
	case CDT_TYPE_BYTES:
		if (a->bulk) {
			out_lit(o, ",\"len\":");
			out_u64(o, a->arg.v.bytes.len);
			out_lit(o, ",\"bulk\":true");
			break;
		}
		out_lit(o, ",\"hex\":\"");
		out_hex(o, a->arg.v.bytes.ptr, a->arg.v.bytes.len);
		out_lit(o, "\"");
		break;
	case CDT_TYPE_FD:
		break;
	}
	if (a->truncated) {
		out_lit(o, ",\"trunc\":true,\"len\":");
		out_u64(o, a->orig_len);
		out_lit(o, ",\"hash\":\"");
		out_hex(o, a->hash, AUDIT_HASH_LEN);
		out_lit(o, "\"");
	}
	out_lit(o, "}");
}

/* An optional text field: key is a string literal. */
#define out_key_text(o, key, v)                                                                    \
	do {                                                                                       \
		if (v) {                                                                           \
			out_lit(o, key);                                                           \
			out_ctext(o, v, AUDIT_TEXT_MAX);                                           \
		}                                                                                  \
	} while (0)

long audit_format_cached(const struct audit_record *rec, char *buf, size_t cap,
			 struct audit_time_cache *tc)
{
	/* Text lengths and UTF-8 are checked below, as the text is written. */
	if (audit_record_check_shape(rec))
		return -EINVAL;
	struct out o = {.p = buf, .cap = cap};

	out_lit(&o, "{\"seq\":");
	out_u64(&o, rec->seq);
	out_lit(&o, ",\"time\":\"");
	if (out_time(&o, rec->time_us, tc) < 0)
		return -EINVAL;
	out_lit(&o, "\",\"event\":\"");
	out_name(&o, &event_names[rec->event]);
	out_lit(&o, "\"");
	if (rec->has_log_id) {
		out_lit(&o, ",\"log\":\"");
		out_hex(&o, rec->log_id, AUDIT_LOG_ID_LEN);
		out_lit(&o, "\"");
	}
	out_key_text(&o, ",\"layer\":", rec->layer);
	if (rec->has_pid) {
		out_lit(&o, ",\"pid\":");
		out_i64(&o, rec->pid);
	}
	out_key_text(&o, ",\"method\":", rec->method);
	if (rec->has_args) {
		out_lit(&o, ",\"args\":[");
		for (size_t i = 0; i < rec->nargs; i++) {
			if (i)
				out_lit(&o, ",");
			out_arg(&o, &rec->args[i]);
		}
		out_lit(&o, "]");
	}
	if (rec->verdict) {
		out_lit(&o, ",\"verdict\":\"");
		out_name(&o, &verdict_names[rec->verdict]);
		out_lit(&o, "\"");
	}
	if (rec->has_mono) {
		out_lit(&o, ",\"mono_ns\":");
		out_u64(&o, rec->mono_ns);
	}
	out_key_text(&o, ",\"rule\":", rec->rule);
	out_key_text(&o, ",\"policy\":", rec->policy);
	if (rec->policy_line) {
		out_lit(&o, ",\"line\":");
		out_u64(&o, rec->policy_line);
	}
	out_key_text(&o, ",\"class\":", rec->klass);
	if (rec->has_code) {
		out_lit(&o, ",\"code\":");
		out_i64(&o, rec->code);
	}
	out_key_text(&o, ",\"signal\":", rec->signal);
	if (rec->has_lost) {
		out_lit(&o, ",\"lost\":");
		out_u64(&o, rec->lost);
	}
	if (rec->has_torn) {
		out_lit(&o, ",\"torn_len\":");
		out_u64(&o, rec->torn_len);
		out_lit(&o, ",\"torn_hash\":\"");
		out_hex(&o, rec->torn_hash, AUDIT_HASH_LEN);
		out_lit(&o, "\"");
	}
	out_key_text(&o, ",\"reason\":", rec->reason);
	out_lit(&o, ",\"prev\":\"");
	out_hex(&o, rec->prev, AUDIT_HASH_LEN);
	out_lit(&o, "\"");
	if (rec->event == AUDIT_EV_STOP && !o.over && !o.bad) {
		/* A stop record ends a log: nothing after it would expose an
		 * edit, so it seals its own bytes. */
		uint8_t seal[AUDIT_HASH_LEN];
		crypto_generichash(seal, sizeof(seal), (const unsigned char *)o.p, o.len, NULL, 0);
		out_lit(&o, ",\"seal\":\"");
		out_hex(&o, seal, sizeof(seal));
		out_lit(&o, "\"");
	}
	out_lit(&o, "}\n");
	if (o.bad)
		return -EINVAL;
	/* A record breaking the schema is -EINVAL even when it does not fit
	 * either: the text rules skipped above decide. */
	if (o.over)
		return audit_record_check(rec) ? -EINVAL : -E2BIG;
	return (long)o.len;
}

long audit_format(const struct audit_record *rec, char *buf, size_t cap)
{
	struct audit_time_cache tc = {.sec = -1};
	return audit_format_cached(rec, buf, cap, &tc);
}
