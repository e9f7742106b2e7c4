/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the audit log reader: the input as a whole log through the
 * verifier, each of its lines through the strict parser (a line it accepts
 * must serialize back to itself), and a record built from the input bytes
 * through parse(format(x)) == x.  The serializer must also agree with its
 * pre-rework self (tests/audit-format-ref.c) on any record, rule-breaking
 * ones included: same result, same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sodium.h>

#include "audit-format-ref.h"
#include "audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct audit_scratch sc;
static char *fmt, *ref;
static int memfd = -1;

static void init_once(void)
{
	if (fmt)
		return;
	if (sodium_init() < 0 || audit_scratch_init(&sc, AUDIT_LINE_MAX) < 0)
		abort();
	fmt = malloc(AUDIT_LINE_MAX + 1);
	ref = malloc(AUDIT_LINE_MAX + 1);
	memfd = memfd_create("fuzz-audit", MFD_CLOEXEC);
	if (!fmt || !ref || memfd < 0)
		abort();
}

struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t byte(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint64_t u64(struct in *in)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | byte(in);
	return v;
}

static const uint8_t *take(struct in *in, size_t *len)
{
	size_t want = byte(in);
	if (want == 255) /* long values, to reach the caps */
		want = (size_t)byte(in) * 64;
	if (want > in->n)
		want = in->n;
	const uint8_t *p = in->p;
	in->p += want;
	in->n -= want;
	*len = want;
	return p;
}

/* A text field from the input, or a fixed one when the bytes would break
 * the record's rules (the writer's callers guarantee those). */
static const char *text(struct in *in, char *buf, size_t max, const char *fallback)
{
	size_t len;
	const uint8_t *p = take(in, &len);
	if (len > max || memchr(p, 0, len))
		return fallback;
	memcpy(buf, p, len);
	buf[len] = '\0';
	struct audit_arg probe;
	struct cdt_arg a = {.name = "t", .type = CDT_TYPE_STRING, .v.str = {buf, len}};
	size_t budget = AUDIT_VALUES_MAX;
	if (audit_arg_from_cdt(&a, &budget, &probe) < 0 || probe.not_utf8)
		return fallback;
	return buf;
}

static void check_same(const struct audit_record *a, const struct audit_record *b)
{
#define SAME(x)                                                                                    \
	do {                                                                                       \
		if (!(x))                                                                          \
			abort();                                                                   \
	} while (0)
#define SAME_TEXT(f) SAME((!a->f && !b->f) || (a->f && b->f && !strcmp(a->f, b->f)))
	SAME(a->seq == b->seq && a->time_us == b->time_us && a->event == b->event);
	SAME(a->has_log_id == b->has_log_id &&
	     (!a->has_log_id || !memcmp(a->log_id, b->log_id, AUDIT_LOG_ID_LEN)));
	SAME_TEXT(layer);
	SAME_TEXT(method);
	SAME_TEXT(rule);
	SAME_TEXT(policy);
	SAME_TEXT(klass);
	SAME_TEXT(signal);
	SAME_TEXT(reason);
	SAME(a->has_pid == b->has_pid && (!a->has_pid || a->pid == b->pid));
	SAME(a->verdict == b->verdict && a->policy_line == b->policy_line);
	SAME(a->has_mono == b->has_mono && (!a->has_mono || a->mono_ns == b->mono_ns));
	SAME(a->has_code == b->has_code && (!a->has_code || a->code == b->code));
	SAME(a->has_lost == b->has_lost && (!a->has_lost || a->lost == b->lost));
	SAME(a->has_torn == b->has_torn &&
	     (!a->has_torn ||
	      (a->torn_len == b->torn_len && !memcmp(a->torn_hash, b->torn_hash, AUDIT_HASH_LEN))));
	SAME(!memcmp(a->prev, b->prev, AUDIT_HASH_LEN));
	SAME(a->has_args == b->has_args && a->nargs == b->nargs);
	for (size_t i = 0; i < a->nargs; i++) {
		const struct audit_arg *x = &a->args[i], *y = &b->args[i];
		SAME(!strcmp(x->arg.name, y->arg.name) && x->arg.type == y->arg.type);
		SAME(x->truncated == y->truncated && x->not_utf8 == y->not_utf8);
		SAME(x->bulk == y->bulk);
		if (x->bulk) {
			/* A length and no data, both ways. */
			SAME(x->arg.v.bytes.len == y->arg.v.bytes.len && !y->arg.v.bytes.ptr);
			continue;
		}
		if (x->truncated)
			SAME(x->orig_len == y->orig_len &&
			     !memcmp(x->hash, y->hash, AUDIT_HASH_LEN));
		switch (x->arg.type) {
		case CDT_TYPE_BOOL:
			SAME(x->arg.v.b == y->arg.v.b);
			break;
		case CDT_TYPE_I64:
		case CDT_TYPE_U64:
			SAME(x->arg.v.u64 == y->arg.v.u64);
			break;
		case CDT_TYPE_DOUBLE:
			SAME(!memcmp(&x->arg.v.d, &y->arg.v.d, sizeof(double)));
			break;
		case CDT_TYPE_STRING:
		case CDT_TYPE_BYTES:
			SAME(x->arg.v.bytes.len == y->arg.v.bytes.len);
			SAME(!x->arg.v.bytes.len ||
			     !memcmp(x->arg.v.bytes.ptr, y->arg.v.bytes.ptr, x->arg.v.bytes.len));
			break;
		case CDT_TYPE_FD:
			break;
		}
	}
}

/* Today's serializer (through a writer's time cache, kept across inputs)
 * and the reference at cap: the same result and bytes. */
static void same_as_ref(const struct audit_record *rec, size_t cap)
{
	static struct audit_time_cache tc = {.sec = -1};
	long a = ref_audit_format(rec, ref, cap);
	long b = audit_format_cached(rec, fmt, cap, &tc);
	if (a != b || (a > 0 && memcmp(ref, fmt, (size_t)a) != 0))
		abort();
}

/* A raw text: up to a few bytes over the limit, any bytes, ended at the
 * first NUL. */
static const char *raw_text(struct in *in, char *buf, size_t max)
{
	size_t len;
	const uint8_t *p = take(in, &len);
	if (len > max + 4)
		len = max + 4;
	memcpy(buf, p, len);
	buf[len] = '\0';
	return byte(in) % 8 ? buf : NULL;
}

/* A record with every field from the input as is, rules or not, through
 * both serializers at a roomy and a tight capacity. */
static void differential(const uint8_t *data, size_t size)
{
	static char texts[8][AUDIT_TEXT_MAX + 5];
	static char names[4][CDT_NAME_MAX + 5];
	struct audit_arg args[4] = {0};
	struct in in = {data, size};
	struct audit_record rec = {0};
	uint8_t f = byte(&in);
	rec.event = (enum audit_event)(byte(&in) % 12);
	rec.seq = f & 1 ? u64(&in) : byte(&in) % 3;
	rec.has_log_id = (rec.seq == 1) != !(f & 2);
	rec.time_us = (int64_t)(u64(&in) >> (byte(&in) % 64));
	rec.layer = raw_text(&in, texts[0], AUDIT_TEXT_MAX);
	rec.method = raw_text(&in, texts[1], AUDIT_TEXT_MAX);
	rec.rule = raw_text(&in, texts[2], AUDIT_TEXT_MAX);
	rec.policy = raw_text(&in, texts[3], AUDIT_TEXT_MAX);
	rec.reason = raw_text(&in, texts[4], AUDIT_TEXT_MAX);
	rec.klass = f & 4 ? raw_text(&in, texts[5], AUDIT_TEXT_MAX) : NULL;
	rec.signal = f & 8 ? raw_text(&in, texts[6], AUDIT_TEXT_MAX) : NULL;
	rec.has_pid = f & 16;
	rec.pid = (int64_t)u64(&in);
	rec.has_code = f & 32;
	rec.code = (int64_t)u64(&in);
	rec.verdict = (enum audit_verdict)(byte(&in) % 6);
	rec.has_mono = f & 64;
	rec.mono_ns = u64(&in);
	rec.policy_line = byte(&in) & 1 ? (uint32_t)u64(&in) : 0;
	uint8_t g = byte(&in);
	rec.has_lost = g & 1;
	rec.lost = u64(&in);
	rec.has_torn = g & 2;
	rec.torn_len = u64(&in);
	rec.has_args = g & 4 || rec.event == AUDIT_EV_DECISION;
	rec.nargs = byte(&in) % 5;
	for (size_t i = 0; i < rec.nargs; i++) {
		struct audit_arg *a = &args[i];
		uint8_t h = byte(&in);
		a->arg.name = raw_text(&in, names[i], CDT_NAME_MAX);
		if (!a->arg.name)
			a->arg.name = "a";
		a->arg.type = (enum cdt_type)(h % 9);
		a->not_utf8 = h & 16;
		a->truncated = h & 32;
		a->bulk = h & 64;
		a->orig_len = u64(&in) % (2 * AUDIT_VALUE_MAX);
		if (a->arg.type == CDT_TYPE_STRING ||
		    (a->arg.type == CDT_TYPE_BYTES && !(a->bulk && h & 128))) {
			size_t len;
			a->arg.v.bytes.ptr = take(&in, &len);
			a->arg.v.bytes.len = len;
		} else if (a->arg.type == CDT_TYPE_BYTES) {
			a->arg.v.bytes.len = (size_t)(u64(&in) % (2 * (uint64_t)CDT_MSG_MAX));
		} else if (a->arg.type == CDT_TYPE_BOOL) {
			/* A bool holds 0 or 1, as the decoder guarantees: any
			 * other byte in it is undefined behaviour of the harness. */
			a->arg.v.b = u64(&in) & 1;
		} else {
			a->arg.v.u64 = u64(&in);
		}
		for (size_t k = 0; k < AUDIT_HASH_LEN; k++)
			a->hash[k] = byte(&in);
	}
	rec.args = args;
	for (size_t k = 0; k < AUDIT_HASH_LEN; k++)
		rec.prev[k] = byte(&in);
	same_as_ref(&rec, AUDIT_LINE_MAX + 1);
	same_as_ref(&rec, u64(&in) % 2048);
}

static void roundtrip(const uint8_t *data, size_t size)
{
	static char texts[8][AUDIT_TEXT_MAX + 1];
	static char names[CDT_ARGS_MAX][CDT_NAME_MAX + 1];
	static struct cdt_arg cargs[CDT_ARGS_MAX];
	static struct audit_arg args[CDT_ARGS_MAX];
	struct in in = {data, size};
	struct audit_record rec = {0};
	rec.event = (enum audit_event)(1 + byte(&in) % 10);
	rec.seq = u64(&in) % 4 == 0 ? 1 : 1 + u64(&in) % (UINT64_MAX - 1);
	rec.has_log_id = rec.seq == 1;
	for (size_t i = 0; i < AUDIT_LOG_ID_LEN; i++)
		rec.log_id[i] = byte(&in);
	for (size_t i = 0; i < AUDIT_HASH_LEN; i++)
		rec.prev[i] = byte(&in);
	rec.time_us = (int64_t)(u64(&in) % UINT64_C(253402300800000000)); /* to 9999-12-31 */
	uint8_t flags = byte(&in);
	rec.layer = flags & 1 ? text(&in, texts[0], AUDIT_TEXT_MAX, "ui") : NULL;
	rec.has_pid = flags & 2;
	rec.pid = (int64_t)u64(&in);
	rec.method = flags & 4 ? text(&in, texts[1], AUDIT_TEXT_MAX, "tag.write") : NULL;
	rec.rule = flags & 8 ? text(&in, texts[2], AUDIT_TEXT_MAX, "r") : NULL;
	rec.policy = flags & 16 ? text(&in, texts[3], AUDIT_TEXT_MAX, "p") : NULL;
	rec.policy_line = rec.policy ? (uint32_t)u64(&in) : 0;
	rec.reason = flags & 32 ? text(&in, texts[4], AUDIT_TEXT_MAX, "why") : NULL;
	switch (rec.event) {
	case AUDIT_EV_DECISION:
		rec.layer = rec.layer ? rec.layer : "ui";
		rec.method = rec.method ? rec.method : "m";
		rec.verdict = (enum audit_verdict)(1 + byte(&in) % 4);
		rec.has_args = true;
		rec.has_mono = flags & 128;
		rec.mono_ns = rec.has_mono ? u64(&in) : 0;
		break;
	case AUDIT_EV_EXIT:
		if (byte(&in) & 1)
			rec.signal = text(&in, texts[5], AUDIT_TEXT_MAX, "SIGSYS");
		else
			rec.has_code = true;
		rec.code = (int64_t)u64(&in);
		break;
	case AUDIT_EV_VIOLATION:
	case AUDIT_EV_ALARM:
		rec.klass = text(&in, texts[6], AUDIT_TEXT_MAX, "protocol-violation");
		break;
	case AUDIT_EV_GAP:
		rec.has_lost = byte(&in) & 1;
		rec.lost = u64(&in);
		rec.has_torn = !rec.has_lost || (byte(&in) & 1);
		rec.torn_len = u64(&in);
		for (size_t i = 0; i < AUDIT_HASH_LEN; i++)
			rec.torn_hash[i] = byte(&in);
		break;
	default:
		break;
	}
	size_t nargs = rec.has_args || (flags & 64) ? byte(&in) % (CDT_ARGS_MAX + 1) : 0;
	rec.has_args = rec.has_args || (flags & 64);
	size_t budget = AUDIT_VALUES_MAX;
	for (size_t i = 0; i < nargs; i++) {
		struct cdt_arg *a = &cargs[i];
		const char *nm = text(&in, names[i], CDT_NAME_MAX, "a");
		uint8_t t = (uint8_t)(1 + byte(&in) % 8);
		*a = (struct cdt_arg){.name = nm,
				      .type = (enum cdt_type)(t == 8 ? CDT_TYPE_BYTES : t)};
		size_t len;
		const uint8_t *p;
		if (t == 8) {
			/* A bulk value as the broker sees it: a length, no data. */
			a->v.bytes.len = 1 + (size_t)(u64(&in) % CDT_MSG_MAX);
			if (audit_arg_from_cdt(a, &budget, &args[i]) < 0 || !args[i].bulk)
				abort();
			continue;
		}
		switch (a->type) {
		case CDT_TYPE_BOOL:
			a->v.b = byte(&in) & 1;
			break;
		case CDT_TYPE_I64:
		case CDT_TYPE_U64:
			a->v.u64 = u64(&in);
			break;
		case CDT_TYPE_DOUBLE: {
			uint64_t bits = u64(&in);
			memcpy(&a->v.d, &bits, sizeof(bits));
			break;
		}
		case CDT_TYPE_STRING:
		case CDT_TYPE_BYTES:
			p = take(&in, &len);
			a->v.bytes.ptr = p;
			a->v.bytes.len = len;
			break;
		case CDT_TYPE_FD:
			a->v.fd = 3;
			break;
		}
		if (audit_arg_from_cdt(a, &budget, &args[i]) < 0)
			abort();
	}
	rec.args = args;
	rec.nargs = nargs;

	same_as_ref(&rec, AUDIT_LINE_MAX + 1);
	long n = audit_format(&rec, fmt, AUDIT_LINE_MAX + 1);
	if (n < 0)
		abort(); /* every record built here follows the rules */
	same_as_ref(&rec, (size_t)n - (size_t)(rec.seq % 2));
	struct audit_record back;
	struct audit_parse_error err;
	if (audit_parse_line(fmt, (size_t)n - 1, &sc, &back, &err) < 0)
		abort();
	check_same(&rec, &back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_once();
	/* Lines through the parser: an accepted line is canonical. */
	const uint8_t *p = data, *end = data + size;
	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct audit_record rec;
		struct audit_parse_error err;
		if (len <= AUDIT_LINE_MAX &&
		    audit_parse_line((const char *)p, len, &sc, &rec, &err) == 0) {
			long n = audit_format(&rec, fmt, AUDIT_LINE_MAX + 1);
			if (n < 0 || (size_t)n != len + 1 || memcmp(fmt, p, len) != 0)
				abort();
		}
		p += len + 1;
	}
	/* The whole input as a log. */
	if (ftruncate(memfd, 0) == 0 && pwrite(memfd, data, size, 0) == (ssize_t)size &&
	    lseek(memfd, 0, SEEK_SET) == 0) {
		struct audit_verify_result res;
		struct audit_verify_opts o = {.require_closed = size & 1};
		if (audit_verify_fds(&memfd, 1, &o, &res) == 0 && res.status == AUDIT_OK &&
		    res.records == 0)
			abort();
		/* Again with a short line limit, to reach the over-long paths. */
		o.line_max = 100 + size % 400;
		if (lseek(memfd, 0, SEEK_SET) == 0 && audit_verify_fds(&memfd, 1, &o, &res) == 0 &&
		    res.status == AUDIT_OK && res.records == 0)
			abort();
	}
	roundtrip(data, size);
	differential(data, size);
	return 0;
}
