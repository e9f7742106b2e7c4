/* SPDX-License-Identifier: MIT */
/*
 * The audit serializer writes exactly the bytes it wrote before its rework
 * for the broker's hot path: edge-case records and a stream of random ones
 * go through audit_format(), audit_format_cached() (a writer's time cache)
 * and the reference (audit-format-ref.c, the code as it was) at every
 * interesting buffer size, and must give the same result and bytes; the
 * schema check and argument conversion must agree with theirs too.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "audit-format-ref.h"

#define BUF (AUDIT_LINE_MAX + 1)

static char *got, *want;
static uint64_t compared, formatted, random_ok;

static void same_at(const struct audit_record *rec, size_t cap, struct audit_time_cache *tc)
{
	long a = ref_audit_format(rec, want, cap);
	long b = tc ? audit_format_cached(rec, got, cap, tc) : audit_format(rec, got, cap);
	if (a != b)
		fail_msg("cap %zu: reference %ld, now %ld", cap, a, b);
	if (a > 0)
		assert_memory_equal(want, got, (size_t)a);
	compared++;
	formatted += a > 0;
}

/* rec at every capacity that matters: roomy, exact, one byte short, half,
 * none; and the schema check gives the same verdict and reason. */
static void same(const struct audit_record *rec)
{
	long n = ref_audit_format(rec, want, BUF);
	same_at(rec, BUF, NULL);
	if (n > 0) {
		same_at(rec, (size_t)n, NULL);
		same_at(rec, (size_t)n - 1, NULL);
		same_at(rec, (size_t)n / 2, NULL);
	}
	same_at(rec, 1, NULL);
	same_at(rec, 0, NULL);
	const char *r = ref_record_check(rec), *c = audit_record_check(rec);
	if ((r == NULL) != (c == NULL) || (r && strcmp(r, c) != 0))
		fail_msg("check: reference \"%s\", now \"%s\"", r ? r : "ok", c ? c : "ok");
}

static double mk_double(uint64_t bits)
{
	double d;
	memcpy(&d, &bits, sizeof(d));
	return d;
}

/* Strings covering every escape class, UTF-8 lengths and invalid forms. */
static const char *const texts[] = {
	"",
	"plain ascii ~ !#$%&'()*+,-./0123456789:;<=>?@[]^_`{|}",
	"\"",
	"\\",
	"\n",
	"\r",
	"\t",
	"\x01",
	"\x08\x0c",
	"\x1f",
	"\x1b[2J\x1b]0;owned\x07",
	"\x7f",
	"a\"b\\c\nd\re\tf",
	"\xc3\xa9",			    /* U+00E9 */
	"\xc2\x80",			    /* U+0080 */
	"\xdf\xbf",			    /* U+07FF */
	"\xe0\xa0\x80",			    /* U+0800 */
	"\xe2\x82\xac",			    /* U+20AC */
	"line\xe2\x80\xa8sep\xe2\x80\xa9",  /* U+2028, U+2029 */
	"\xef\xbf\xbf",			    /* U+FFFF */
	"\xf0\x90\x80\x80",		    /* U+10000: a surrogate pair */
	"\xf0\x9f\x92\xa7 \xc3\xa9",	    /* emoji */
	"\xf4\x8f\xbf\xbf",		    /* U+10FFFF */
	"\xff",				    /* never UTF-8 */
	"\xc0\x80",			    /* overlong NUL */
	"\xe0\x80\xaf",			    /* overlong / */
	"\xed\xa0\x80",			    /* surrogate */
	"\xf4\x90\x80\x80",		    /* past U+10FFFF */
	"ok\xe2\x82",			    /* cut short */
	"\x80",				    /* lone continuation */
	"12345678abcdefgh\xc3\xa9ijklmnop", /* multi-byte after a long ASCII run */
};
#define NTEXTS (sizeof(texts) / sizeof(texts[0]))

static char text_max[AUDIT_TEXT_MAX + 2];    /* AUDIT_TEXT_MAX 'a's */
static char text_over[AUDIT_TEXT_MAX + 2];   /* one more */
static char text_max_mb[AUDIT_TEXT_MAX + 2]; /* at max, ending in a 3-byte char */
static char name_max[CDT_NAME_MAX + 2];	     /* CDT_NAME_MAX */
static char name_over[CDT_NAME_MAX + 2];     /* one more */
static char all_ascii[129];		     /* 0x00..0x7f, NUL included, then an end */
static uint8_t all_bytes[256];
static char *value_max; /* AUDIT_VALUE_MAX bytes of 3-byte characters and ASCII */

static void fill_fixtures(void)
{
	memset(text_max, 'a', AUDIT_TEXT_MAX);
	memset(text_over, 'b', AUDIT_TEXT_MAX + 1);
	memset(text_max_mb, 'c', AUDIT_TEXT_MAX - 3);
	memcpy(text_max_mb + AUDIT_TEXT_MAX - 3, "\xe2\x82\xac", 3);
	memset(name_max, 'n', CDT_NAME_MAX);
	memset(name_over, 'o', CDT_NAME_MAX + 1);
	for (int i = 0; i < 128; i++)
		all_ascii[i] = (char)i;
	for (int i = 0; i < 256; i++)
		all_bytes[i] = (uint8_t)i;
	value_max = malloc(AUDIT_VALUE_MAX + 1);
	assert_non_null(value_max);
	for (size_t i = 0; i < AUDIT_VALUE_MAX; i++)
		value_max[i] = "\xe2\x82\xac\"\\\n"[i % 6];
	value_max[AUDIT_VALUE_MAX] = '\0';
}

static struct audit_record decision(void)
{
	return (struct audit_record){
		.seq = 42,
		.time_us = INT64_C(1795673714123456),
		.event = AUDIT_EV_DECISION,
		.layer = "ui",
		.has_pid = true,
		.pid = 4242,
		.method = "tag.write",
		.has_args = true,
		.verdict = AUDIT_VERDICT_ALLOW,
		.has_mono = true,
		.mono_ns = 1234567890123,
		.rule = "ui#3",
		.policy = "/etc/conduit/plant.policy",
		.policy_line = 17,
		.prev = {0xde, 0xad, 0xbe, 0xef, [31] = 0x01},
	};
}

static struct audit_arg str_arg(const char *name, const char *s, size_t n)
{
	struct audit_arg a = {.arg = {.name = name, .type = CDT_TYPE_STRING, .v.str = {s, n}}};
	a.not_utf8 = n && !utf8_valid((const uint8_t *)s, n);
	return a;
}

static void test_text_fields(void **state)
{
	(void)state;
	const char *extra[] = {text_max, text_over, text_max_mb};
	for (size_t i = 0; i < NTEXTS + 3; i++) {
		const char *t = i < NTEXTS ? texts[i] : extra[i - NTEXTS];
		struct audit_record rec = decision();
		rec.layer = t;
		same(&rec);
		rec = decision();
		rec.method = t;
		same(&rec);
		rec = decision();
		rec.rule = t;
		same(&rec);
		rec = decision();
		rec.policy = t;
		same(&rec);
		rec = decision();
		rec.reason = t;
		same(&rec);
		rec = (struct audit_record){.seq = 7, .event = AUDIT_EV_VIOLATION, .klass = t};
		same(&rec);
		rec = (struct audit_record){.seq = 7, .event = AUDIT_EV_EXIT, .signal = t};
		same(&rec);
		/* Every field at once: the longest lines the writer makes. */
		rec = (struct audit_record){.seq = 9,
					    .event = AUDIT_EV_EXIT,
					    .layer = t,
					    .method = t,
					    .rule = t,
					    .policy = t,
					    .klass = t,
					    .signal = t,
					    .reason = t};
		same(&rec);
	}
	/* The ASCII table but NUL, as one text. */
	struct audit_record rec = decision();
	rec.reason = all_ascii + 1;
	same(&rec);
}

/* Plain text is copied eight bytes at a time when none of them needs an
 * escape: every byte value at every position of such a word (and the
 * bytes after it) must still be caught, as a text field and as a value. */
static void test_every_byte_everywhere(void **state)
{
	(void)state;
	char s[20];
	struct audit_arg a;
	for (unsigned b = 1; b < 256; b++) {
		for (size_t pos = 0; pos < 17; pos++) {
			memset(s, 'a', sizeof(s) - 1);
			s[sizeof(s) - 1] = '\0';
			s[pos] = (char)b;
			struct audit_record rec = decision();
			rec.reason = s;
			same(&rec);
			a = str_arg("v", s, sizeof(s) - 1);
			a.not_utf8 = false; /* unflagged: invalid text must be refused */
			rec.args = &a;
			rec.nargs = 1;
			same(&rec);
		}
	}
}

static void test_arg_values(void **state)
{
	(void)state;
	struct audit_arg args[CDT_ARGS_MAX];
	struct audit_record rec;
	for (size_t i = 0; i < NTEXTS; i++) {
		args[0] = str_arg("s", texts[i], strlen(texts[i]));
		args[1] = str_arg(texts[i], "v", 1); /* as a name */
		rec = decision();
		rec.args = args;
		rec.nargs = 1;
		same(&rec);
		rec.args = args + 1;
		same(&rec);
	}
	const struct audit_arg blobs[] = {
		str_arg("ascii", all_ascii, 128),
		str_arg("max", value_max, AUDIT_VALUE_MAX),
		str_arg("over", value_max, AUDIT_VALUE_MAX + 1),
		str_arg(name_max, "x", 1),
		str_arg(name_over, "x", 1),
		str_arg("empty", "", 0),
		{.arg = {.name = "raw", .type = CDT_TYPE_STRING, .v.str = {"ok", 2}},
		 .not_utf8 = true}, /* valid, flagged anyway: still hex */
		{.arg = {.name = "b", .type = CDT_TYPE_BYTES, .v.bytes = {all_bytes, 256}}},
		{.arg = {.name = "b0", .type = CDT_TYPE_BYTES, .v.bytes = {NULL, 0}}},
		{.arg = {.name = "bmax",
			 .type = CDT_TYPE_BYTES,
			 .v.bytes = {(const uint8_t *)value_max, AUDIT_VALUE_MAX}}},
		{.arg = {.name = "bulk", .type = CDT_TYPE_BYTES, .v.bytes = {NULL, 70000}},
		 .bulk = true},
		{.arg = {.name = "bulkmax", .type = CDT_TYPE_BYTES, .v.bytes = {NULL, CDT_MSG_MAX}},
		 .bulk = true},
		{.arg = {.name = "bulkover",
			 .type = CDT_TYPE_BYTES,
			 .v.bytes = {NULL, CDT_MSG_MAX + 1}},
		 .bulk = true},
		{.arg = {.name = "trunc", .type = CDT_TYPE_STRING, .v.str = {"abc", 3}},
		 .truncated = true,
		 .orig_len = 70000,
		 .hash = {1, 2, 3, [31] = 0xff}},
		{.arg = {.name = "trunc-short", .type = CDT_TYPE_STRING, .v.str = {"abc", 3}},
		 .truncated = true,
		 .orig_len = 3},
		{.arg = {.name = "fd", .type = CDT_TYPE_FD, .v.fd = 9}},
		{.arg = {.name = "t", .type = CDT_TYPE_BOOL, .v.b = true}},
		{.arg = {.name = "f", .type = CDT_TYPE_BOOL, .v.b = false}},
		{.arg = {.name = "badtype", .type = (enum cdt_type)99}},
		{.arg = {.name = "flagged-u64", .type = CDT_TYPE_U64}, .not_utf8 = true},
	};
	for (size_t i = 0; i < sizeof(blobs) / sizeof(blobs[0]); i++) {
		rec = decision();
		rec.args = &blobs[i];
		rec.nargs = 1;
		same(&rec);
	}
	/* The record's value budget at exactly max and max+1. */
	for (size_t i = 0; i < AUDIT_VALUES_MAX / AUDIT_VALUE_MAX + 1; i++)
		args[i] = str_arg("v", value_max, AUDIT_VALUE_MAX);
	rec = decision();
	rec.args = args;
	rec.nargs = AUDIT_VALUES_MAX / AUDIT_VALUE_MAX;
	same(&rec);
	args[0] = str_arg("v", value_max, AUDIT_VALUE_MAX - 1);
	rec.nargs++;
	args[rec.nargs - 1] = str_arg("v", "x", 1);
	same(&rec);
	args[0] = str_arg("v", value_max, AUDIT_VALUE_MAX);
	same(&rec);
}

static const uint64_t u64s[] = {
	0,
	1,
	9,
	10,
	99,
	100,
	101,
	999,
	1000,
	65535,
	4294967295u,
	4294967296u,
	UINT64_C(9999999999999999999),
	UINT64_C(10000000000000000000),
	UINT64_MAX - 1,
	UINT64_MAX,
};

static const int64_t i64s[] = {
	0, 1, -1, 9, -9, 10, -10, 100, -100, INT64_MAX, INT64_MIN, INT64_MIN + 1, -4242,
};

static void test_numbers(void **state)
{
	(void)state;
	struct audit_arg a[3];
	for (size_t i = 0; i < sizeof(u64s) / sizeof(u64s[0]); i++) {
		struct audit_record rec = decision();
		a[0] = (struct audit_arg){
			.arg = {.name = "u", .type = CDT_TYPE_U64, .v.u64 = u64s[i]}};
		a[1] = (struct audit_arg){.arg = {.name = "bulk",
						  .type = CDT_TYPE_BYTES,
						  .v.bytes = {NULL, u64s[i] % CDT_MSG_MAX + 1}},
					  .bulk = true};
		rec.args = a;
		rec.nargs = 2;
		rec.mono_ns = u64s[i];
		rec.seq = u64s[i] ? u64s[i] : 2;
		rec.policy_line = (uint32_t)u64s[i];
		same(&rec);
		rec = (struct audit_record){
			.seq = 5, .event = AUDIT_EV_GAP, .has_lost = true, .lost = u64s[i]};
		same(&rec);
		rec = (struct audit_record){.seq = 5,
					    .event = AUDIT_EV_GAP,
					    .has_torn = true,
					    .torn_len = u64s[i],
					    .torn_hash = {0xab, [31] = 0xcd}};
		same(&rec);
	}
	for (size_t i = 0; i < sizeof(i64s) / sizeof(i64s[0]); i++) {
		struct audit_record rec = decision();
		a[0] = (struct audit_arg){
			.arg = {.name = "i", .type = CDT_TYPE_I64, .v.i64 = i64s[i]}};
		rec.args = a;
		rec.nargs = 1;
		rec.pid = i64s[i];
		same(&rec);
		rec = (struct audit_record){.seq = 3,
					    .event = AUDIT_EV_EXIT,
					    .layer = "io",
					    .has_pid = true,
					    .pid = i64s[i],
					    .has_code = true,
					    .code = i64s[i]};
		same(&rec);
	}
	const double ds[] = {
		0.0,
		-0.0,
		1.0,
		-1.0,
		-1.5,
		0.1,
		-0.1,
		DBL_MAX,
		-DBL_MAX,
		DBL_MIN,
		-DBL_MIN,
		INFINITY,
		-INFINITY,
		NAN,
		-NAN,
		1e300,
		-1e-300,
		4.9406564584124654e-324,
		-2.2250738585072009e-308,
		1024.0,
		0.5,
		1099511627776.0,
	};
	const uint64_t bits[] = {
		UINT64_C(0xfff0000000000bad), UINT64_C(0x7ff0000000000001),
		UINT64_C(0xffffffffffffffff), UINT64_C(0x7ff8000000000000),
		UINT64_C(0x8000000000000001), UINT64_C(0x000fffffffffffff),
		UINT64_C(0x3ff0000000000001), UINT64_C(0xc00fffffffffffff),
	};
	for (size_t i = 0; i < sizeof(ds) / sizeof(ds[0]) + sizeof(bits) / sizeof(bits[0]); i++) {
		double d = i < sizeof(ds) / sizeof(ds[0])
				   ? ds[i]
				   : mk_double(bits[i - sizeof(ds) / sizeof(ds[0])]);
		struct audit_record rec = decision();
		a[0] = (struct audit_arg){.arg = {.name = "d", .type = CDT_TYPE_DOUBLE, .v.d = d}};
		rec.args = a;
		rec.nargs = 1;
		same(&rec);
	}
	/* Every exponent, with a mantissa of each length. */
	for (uint64_t e = 0; e < 0x800; e++) {
		uint64_t man = (UINT64_C(0x123456789abcd) >> (e % 13 * 4)) << (e % 13 * 4);
		struct audit_record rec = decision();
		a[0] = (struct audit_arg){.arg = {.name = "d",
						  .type = CDT_TYPE_DOUBLE,
						  .v.d = mk_double(e << 52 | man)}};
		a[1] = (struct audit_arg){.arg = {.name = "n",
						  .type = CDT_TYPE_DOUBLE,
						  .v.d = mk_double(1ull << 63 | e << 52)}};
		rec.args = a;
		rec.nargs = 2;
		same(&rec);
	}
}

static const int64_t times[] = {
	0,
	1,
	999999,
	1000000,
	INT64_C(86399999999),
	INT64_C(86400000000),
	INT64_C(951782400000000), /* 2000-02-29 */
	INT64_C(1795673714123456),
	INT64_C(1795673714999999),
	INT64_C(1795673715000000),
	INT64_C(1795673714000001),
	INT64_C(4107542400000000),   /* 2100-03-01 */
	INT64_C(253402300799999999), /* 9999-12-31T23:59:59.999999Z */
	INT64_C(253402300800000000), /* year 10000: refused */
	INT64_C(1795673714123456),   /* back again after a refusal */
	-1,
	INT64_MIN,
	INT64_MAX,
	INT64_C(1795673714000000),
};

static void test_events_and_times(void **state)
{
	(void)state;
	struct audit_time_cache tc = {.sec = -1};
	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		struct audit_record rec = decision();
		rec.time_us = times[i];
		same(&rec);
		same_at(&rec, BUF, &tc);
	}
	const struct audit_record recs[] = {
		{.seq = 1,
		 .has_log_id = true,
		 .log_id = {1, 2, 3, [15] = 0xff},
		 .event = AUDIT_EV_START},
		{.seq = 1, .event = AUDIT_EV_START}, /* first record without its log id */
		{.seq = 2, .has_log_id = true, .event = AUDIT_EV_START},
		{.seq = 0, .event = AUDIT_EV_START},
		{.seq = 3, .event = AUDIT_EV_STOP, .reason = "broker stop"},
		{.seq = UINT64_MAX, .event = AUDIT_EV_STOP, .prev = {[0] = 0x80, [31] = 0x7f}},
		{.seq = 4, .event = AUDIT_EV_SPAWN, .layer = "io", .has_pid = true, .pid = 10},
		{.seq = 4, .event = AUDIT_EV_RELOAD, .policy = "p.policy"},
		{.seq = 4,
		 .event = AUDIT_EV_RELOAD_REJECTED,
		 .policy = "p.policy",
		 .policy_line = UINT32_MAX,
		 .reason = "p.policy:3:7: error: unknown directive"},
		{.seq = 4,
		 .event = AUDIT_EV_ALARM,
		 .klass = "audit-write-failed",
		 .reason = "ENOSPC"},
		{.seq = 4, .event = AUDIT_EV_ALARM, .policy_line = 3},
		{.seq = 4, .event = AUDIT_EV_GAP},
		{.seq = 4, .event = AUDIT_EV_START, .has_lost = true, .lost = 1},
		{.seq = 4, .event = AUDIT_EV_SPAWN, .verdict = AUDIT_VERDICT_ALLOW},
		{.seq = 4, .event = AUDIT_EV_SPAWN, .has_mono = true},
		{.seq = 4, .event = AUDIT_EV_EXIT, .layer = "io"},
		{.seq = 4, .event = AUDIT_EV_EXIT, .has_code = true, .signal = "SIGKILL"},
		{.seq = 4, .event = AUDIT_EV_VIOLATION, .layer = "ui"},
		{.seq = 4, .event = 0},
		{.seq = 4, .event = AUDIT_EV_GAP + 1},
		{.seq = 4, .event = AUDIT_EV_DECISION, .layer = "ui", .method = "m"},
		{.seq = 4,
		 .event = AUDIT_EV_DECISION,
		 .layer = "ui",
		 .method = "m",
		 .has_args = true,
		 .verdict = AUDIT_VERDICT_COMPLAIN + 1},
		{.seq = 4, .event = AUDIT_EV_START, .nargs = 1},
		{.seq = 4,
		 .event = AUDIT_EV_DECISION,
		 .layer = "ui",
		 .method = "m",
		 .has_args = true,
		 .nargs = CDT_ARGS_MAX + 1,
		 .verdict = AUDIT_VERDICT_DENY},
	};
	for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
		same(&recs[i]);
		same_at(&recs[i], BUF, &tc);
	}
	for (enum audit_verdict v = AUDIT_VERDICT_NONE; v <= AUDIT_VERDICT_COMPLAIN; v++) {
		struct audit_record rec = decision();
		rec.verdict = v;
		same(&rec);
	}
}

/* ---- random records ---- */

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* A text field; when good, one the schema accepts (or absent). */
static const char *pick_text(bool good)
{
	const char *extra[] = {text_max, text_over, text_max_mb, NULL, NULL, NULL};
	size_t n = NTEXTS + sizeof(extra) / sizeof(extra[0]);
	for (;;) {
		size_t i = next() % n;
		const char *t = i < NTEXTS ? texts[i] : extra[i - NTEXTS];
		if (!good || !t ||
		    (strlen(t) <= AUDIT_TEXT_MAX && utf8_valid((const uint8_t *)t, strlen(t))))
			return t;
	}
}

/* A random argument whose pointers are always valid for its type, flags
 * and caps included or not. */
static void random_arg(struct audit_arg *a, bool good)
{
	static const char *const names[] = {"tag", "value", "n\xc3\xa4me", "\"q\"", ""};
	*a = (struct audit_arg){0};
	a->arg.name = next() % 8 ? names[next() % 5] : (next() % 2 ? name_max : name_over);
	a->arg.type = (enum cdt_type)(next() % (CDT_TYPE_FD + 2)); /* 0 and 8 are unknown */
	if (good) {
		a->arg.name = names[next() % 5];
		a->arg.type = (enum cdt_type)(next() % CDT_TYPE_FD + 1);
	}
	switch (a->arg.type) {
	case CDT_TYPE_STRING:
		if (next() % 2) {
			const char *t = texts[next() % NTEXTS];
			a->arg.v.str.ptr = t;
			a->arg.v.str.len = strlen(t);
			a->not_utf8 = !utf8_valid((const uint8_t *)t, strlen(t));
		} else {
			a->arg.v.str.ptr = value_max;
			a->arg.v.str.len = next() % (AUDIT_VALUE_MAX + 2);
			a->not_utf8 = !utf8_valid((const uint8_t *)value_max, a->arg.v.str.len);
		}
		if (next() % 10 == 0)
			a->not_utf8 = !a->not_utf8; /* sometimes a lie either way */
		break;
	case CDT_TYPE_BYTES:
		if (next() % 3 == 0) {
			a->arg.v.bytes.len = next() % 3 ? next() % (CDT_MSG_MAX + 2) : 0;
			a->bulk = true;
		} else {
			a->arg.v.bytes.ptr = next() % 2 ? all_bytes : (const uint8_t *)value_max;
			a->arg.v.bytes.len =
				next() % (a->arg.v.bytes.ptr == all_bytes ? sizeof(all_bytes) + 1
									  : AUDIT_VALUE_MAX + 2);
		}
		break;
	case CDT_TYPE_DOUBLE:
		a->arg.v.d = mk_double(next());
		break;
	case CDT_TYPE_U64:
		a->arg.v.u64 =
			next() % 2 ? next() : u64s[next() % (sizeof(u64s) / sizeof(u64s[0]))];
		break;
	default:
		a->arg.v.u64 = next();
		if (a->arg.type == CDT_TYPE_FD)
			a->arg.v.fd = (int)(next() % 100);
		else if (a->arg.type == CDT_TYPE_BOOL)
			a->arg.v.b = next() % 2;
		break;
	}
	if (!good && next() % 10 == 0)
		a->not_utf8 = true;
	if (!good && next() % 10 == 0)
		a->bulk = !a->bulk;
	if (a->bulk && a->arg.type == CDT_TYPE_BYTES)
		a->arg.v.bytes.ptr = NULL; /* a bulk flag never points at data */
	if (a->bulk && a->arg.type == CDT_TYPE_STRING && !a->arg.v.str.ptr)
		a->arg.v.str.ptr = "";
	bool blob = a->arg.type == CDT_TYPE_STRING || a->arg.type == CDT_TYPE_BYTES;
	if (next() % 16 == 0 && (!good || (blob && !a->bulk))) {
		a->truncated = true;
		a->orig_len = next() % 4 || good ? a->arg.v.str.len + 1 + next() % 100000
						 : a->arg.v.str.len;
		memset(a->hash, (int)(next() & 0xff), sizeof(a->hash));
	}
}

static void test_random(void **state)
{
	(void)state;
	struct audit_time_cache tc = {.sec = -1};
	struct audit_arg args[CDT_ARGS_MAX];
	int64_t t = INT64_C(1795673714123456);
	for (int i = 0; i < 20000; i++) {
		struct audit_record rec = {0};
		bool valid = next() % 4 != 0;
		rec.event = (enum audit_event)(next() % (AUDIT_EV_GAP + 1) + (valid ? 1 : 0));
		rec.seq = next() % 5 ? next() % 1000 + 2 : next() % 3;
		rec.has_log_id = rec.seq == 1 ? valid || next() % 2 : !valid && next() % 8 == 0;
		memset(rec.log_id, (int)(next() & 0xff), sizeof(rec.log_id));
		t += (int64_t)(next() % 3000000);
		rec.time_us = next() % 100 ? t : (int64_t)next();
		rec.layer = pick_text(valid);
		rec.method = pick_text(valid);
		rec.rule = pick_text(valid);
		rec.policy = pick_text(valid);
		rec.reason = pick_text(valid);
		rec.has_pid = next() % 2;
		rec.pid = (int64_t)next();
		bool decision = rec.event == AUDIT_EV_DECISION;
		rec.has_args = decision ? valid || next() % 2 : next() % 16 == 0;
		rec.nargs = rec.has_args ? next() % 5 : 0;
		if (next() % 32 == 0)
			rec.nargs = CDT_ARGS_MAX + next() % 2;
		for (size_t k = 0; k < rec.nargs && k < CDT_ARGS_MAX; k++)
			random_arg(&args[k], valid);
		rec.args = args;
		rec.verdict = decision || !valid ? (enum audit_verdict)(next() % 5) : 0;
		rec.has_mono = decision ? next() % 2 : !valid && next() % 8 == 0;
		rec.mono_ns = next();
		rec.policy_line = next() % 3 ? (uint32_t)next() : 0;
		if (rec.event == AUDIT_EV_EXIT || !valid) {
			rec.has_code = next() % 2;
			rec.code = (int64_t)next();
			rec.signal = rec.has_code && valid ? NULL : pick_text(valid);
		}
		if (rec.event == AUDIT_EV_VIOLATION || rec.event == AUDIT_EV_ALARM || !valid)
			rec.klass = pick_text(valid);
		if (rec.event == AUDIT_EV_GAP || !valid) {
			rec.has_lost = next() % 2;
			rec.lost = next();
			rec.has_torn = !rec.has_lost || next() % 2;
			rec.torn_len = next();
		}
		memset(rec.prev, (int)(next() & 0xff), sizeof(rec.prev));
		same(&rec);
		same_at(&rec, BUF, &tc);
		same_at(&rec, next() % 4096, &tc);
		random_ok += ref_audit_format(&rec, want, BUF) > 0;
	}
}

/* ---- argument conversion ---- */

static void same_conversion(const struct cdt_arg *in, size_t budget)
{
	size_t rb = budget, nb = budget;
	struct audit_arg r, n;
	memset(&r, 0x5a, sizeof(r));
	memset(&n, 0x5a, sizeof(n));
	int rr = ref_audit_arg_from_cdt(in, &rb, &r);
	int nr = audit_arg_from_cdt(in, &nb, &n);
	assert_int_equal(rr, nr);
	assert_true(rb == nb);
	if (rr < 0)
		return;
	assert_ptr_equal(r.arg.name, n.arg.name);
	assert_int_equal(r.arg.type, n.arg.type);
	assert_memory_equal(&r.arg.v, &n.arg.v, sizeof(r.arg.v));
	assert_int_equal(r.not_utf8, n.not_utf8);
	assert_int_equal(r.truncated, n.truncated);
	assert_int_equal(r.bulk, n.bulk);
	if (r.truncated) {
		assert_true(r.orig_len == n.orig_len);
		assert_memory_equal(r.hash, n.hash, sizeof(r.hash));
	}
}

/* Strings and bytes share their layout: one setter for both. */
static void set_blob(struct cdt_arg *a, const char *p, size_t len)
{
	a->v.str.ptr = p;
	a->v.str.len = len;
}

static void test_conversion(void **state)
{
	(void)state;
	char *big = malloc(70000);
	assert_non_null(big);
	for (size_t i = 0; i < 70000; i++)
		big[i] = "a\xe2\x82\xac"[i % 4];
	const size_t budgets[] = {0, 1, 2, AUDIT_VALUE_MAX - 1, AUDIT_VALUE_MAX, AUDIT_VALUES_MAX};
	for (size_t i = 0; i < NTEXTS + 6; i++) {
		const char *t = i < NTEXTS ? texts[i] : NULL;
		struct cdt_arg in[] = {
			{.name = "s", .type = CDT_TYPE_STRING, .v.str = {t, t ? strlen(t) : 0}},
			{.name = t ? t : "x", .type = CDT_TYPE_BOOL},
			{.name = "b",
			 .type = CDT_TYPE_BYTES,
			 .v.bytes = {(const uint8_t *)t, t ? strlen(t) : 0}},
		};
		if (i == NTEXTS) {
			set_blob(&in[0], big, 70000);
			set_blob(&in[2], big, 70000);
		} else if (i == NTEXTS + 1) {
			set_blob(&in[0], big, AUDIT_VALUE_MAX + 1);
			in[1].name = name_max;
			set_blob(&in[2], NULL, CDT_MSG_MAX);
		} else if (i == NTEXTS + 2) {
			set_blob(&in[0], big + 1, AUDIT_VALUE_MAX + 3);
			in[1].name = name_over;
			set_blob(&in[2], NULL, CDT_MSG_MAX + 1);
		} else if (i == NTEXTS + 3) {
			set_blob(&in[0], NULL, 3);
			in[1].name = NULL;
			in[2].type = (enum cdt_type)99;
		} else if (i == NTEXTS + 4) {
			set_blob(&in[0], big, AUDIT_VALUE_MAX);
			in[1].type = CDT_TYPE_FD;
			set_blob(&in[2], big, AUDIT_VALUE_MAX + 1);
		} else if (i == NTEXTS + 5) {
			set_blob(&in[0], "\xc3\xa9\xc3\xa9", 4);
			in[1].type = CDT_TYPE_DOUBLE;
			in[1].v.d = -0.0;
		}
		for (size_t k = 0; k < 3; k++)
			for (size_t b = 0; b < sizeof(budgets) / sizeof(budgets[0]); b++)
				same_conversion(&in[k], budgets[b]);
	}
	free(big);
}

static void test_count(void **state)
{
	(void)state;
	/* Nothing above was skipped: the comparisons really ran, and many
	 * of them on records that are written, not only refused. */
	print_message("%llu comparisons, %llu formatted, %llu of 20000 random records valid\n",
		      (unsigned long long)compared, (unsigned long long)formatted,
		      (unsigned long long)random_ok);
	assert_true(compared > 100000);
	assert_true(formatted > 20000);
	assert_true(random_ok > 2000);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	got = malloc(BUF);
	want = malloc(BUF);
	if (!got || !want)
		return 1;
	fill_fixtures();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_fields),
		cmocka_unit_test(test_every_byte_everywhere),
		cmocka_unit_test(test_arg_values),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_events_and_times),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_conversion),
		cmocka_unit_test(test_count),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	free(value_max);
	free(got);
	free(want);
	return r;
}
