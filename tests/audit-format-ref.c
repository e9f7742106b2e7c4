/* SPDX-License-Identifier: MIT */
/*
 * The audit serializer, checks and argument conversion exactly as they
 * were before the writer's hot path was reworked (issue 8), renamed ref_*:
 * the golden reference test-audit-format-ref compares today's code with,
 * byte for byte.  Do not "improve" it: its value is that it does not
 * change.
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "audit-format-ref.h"

static const char *const event_names[] = {
	[AUDIT_EV_START] = "start",	  [AUDIT_EV_STOP] = "stop",
	[AUDIT_EV_DECISION] = "decision", [AUDIT_EV_SPAWN] = "spawn",
	[AUDIT_EV_EXIT] = "exit",	  [AUDIT_EV_VIOLATION] = "violation",
	[AUDIT_EV_RELOAD] = "reload",	  [AUDIT_EV_RELOAD_REJECTED] = "reload-rejected",
	[AUDIT_EV_ALARM] = "alarm",	  [AUDIT_EV_GAP] = "audit-gap",
};

static const char *const verdict_names[] = {
	[AUDIT_VERDICT_ALLOW] = "allow",
	[AUDIT_VERDICT_DENY] = "deny",
	[AUDIT_VERDICT_RATE_LIMITED] = "rate-limited",
	[AUDIT_VERDICT_COMPLAIN] = "complain",
};

static const char *const type_names[] = {
	[CDT_TYPE_BOOL] = "bool",  [CDT_TYPE_I64] = "i64",    [CDT_TYPE_U64] = "u64",
	[CDT_TYPE_DOUBLE] = "f64", [CDT_TYPE_STRING] = "str", [CDT_TYPE_BYTES] = "bytes",
	[CDT_TYPE_FD] = "fd",
};

static const char *ref_event_name(enum audit_event ev)
{
	if ((unsigned)ev >= sizeof(event_names) / sizeof(event_names[0]) || !event_names[ev])
		return NULL;
	return event_names[ev];
}

static const char *ref_verdict_name(enum audit_verdict v)
{
	if ((unsigned)v >= sizeof(verdict_names) / sizeof(verdict_names[0]) || !verdict_names[v])
		return NULL;
	return verdict_names[v];
}

static const char *ref_type_name(enum cdt_type t)
{
	if ((unsigned)t >= sizeof(type_names) / sizeof(type_names[0]) || !type_names[t])
		return NULL;
	return type_names[t];
}

/* Length of the well-formed UTF-8 sequence at s (shortest form, no
 * surrogates, at most U+10FFFF), 0 when ill-formed. */
static size_t ref_utf8_char(const uint8_t *s, size_t n, uint32_t *ret_cp)
{
	if (n == 0)
		return 0;
	uint8_t c = s[0];
	uint32_t cp;
	size_t len;
	uint32_t min;
	if (c < 0x80) {
		*ret_cp = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		cp = c & 0x1f;
		len = 2;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		cp = c & 0x0f;
		len = 3;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		cp = c & 0x07;
		len = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*ret_cp = cp;
	return len;
}

static bool ref_utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint32_t cp;
		/* Names, rules and most values are ASCII: skip those bytes
		 * without decoding them (every record checks several). */
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		size_t l = ref_utf8_char(s + i, n - i, &cp);
		if (l == 0)
			return false;
		i += l;
	}
	return true;
}

int ref_audit_arg_from_cdt(const struct cdt_arg *in, size_t *budget, struct audit_arg *ret_out)
{
	struct audit_arg out = {.arg = *in};
	if (!in->name || strnlen(in->name, CDT_NAME_MAX + 1) > CDT_NAME_MAX ||
	    !ref_utf8_valid((const uint8_t *)in->name, strlen(in->name)))
		return -EINVAL;
	if (!ref_type_name(in->type))
		return -EINVAL;
	if (in->type == CDT_TYPE_BYTES && !in->v.bytes.ptr && in->v.bytes.len) {
		/* A bulk value: its length is all the broker knows. */
		if (in->v.bytes.len > CDT_MSG_MAX)
			return -EINVAL;
		out.bulk = true;
	} else if (in->type == CDT_TYPE_STRING || in->type == CDT_TYPE_BYTES) {
		const uint8_t *p = in->type == CDT_TYPE_STRING ? (const uint8_t *)in->v.str.ptr
							       : in->v.bytes.ptr;
		size_t len = in->v.str.len; /* same layout for both */
		if (len && !p)
			return -EINVAL;
		size_t cap = *budget < AUDIT_VALUE_MAX ? *budget : AUDIT_VALUE_MAX;
		if (in->type == CDT_TYPE_STRING)
			out.not_utf8 = !ref_utf8_valid(p, len);
		size_t kept = len;
		if (len > cap) {
			out.truncated = true;
			out.orig_len = len;
			crypto_generichash(out.hash, AUDIT_HASH_LEN, p, len, NULL, 0);
			kept = cap;
			/* Cut a valid string on a character boundary so the kept
			 * prefix stays a string the checker can match. */
			if (in->type == CDT_TYPE_STRING && !out.not_utf8)
				while (kept > 0 && (p[kept] & 0xc0) == 0x80)
					kept--;
		}
		if (in->type == CDT_TYPE_STRING)
			out.arg.v.str.len = kept;
		else
			out.arg.v.bytes.len = kept;
		*budget -= kept;
	}
	*ret_out = out;
	return 0;
}

/* ---- bounded output ---- */

struct out {
	char *p;
	size_t len, cap;
	bool over;
};

static void out_mem(struct out *o, const void *s, size_t n)
{
	if (o->over || n > o->cap - o->len) {
		o->over = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void out_str(struct out *o, const char *s)
{
	out_mem(o, s, strlen(s));
}

static void out_u64(struct out *o, uint64_t v)
{
	char t[24];
	size_t i = sizeof(t);
	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	out_mem(o, t + i, sizeof(t) - i);
}

static void out_i64(struct out *o, int64_t v)
{
	if (v < 0) {
		out_mem(o, "-", 1);
		/* Negate in unsigned arithmetic: INT64_MIN has no positive twin. */
		out_u64(o, 0 - (uint64_t)v);
	} else {
		out_u64(o, (uint64_t)v);
	}
}

static const char hexdig[] = "0123456789abcdef";

static void out_hex(struct out *o, const uint8_t *p, size_t n)
{
	/* One bound check for the whole value (up to AUDIT_VALUE_MAX bytes):
	 * the per-byte one cost more than the digits. */
	if (o->over || n > (o->cap - o->len) / 2) {
		o->over = true;
		return;
	}
	char *d = o->p + o->len;
	for (size_t i = 0; i < n; i++) {
		d[2 * i] = hexdig[p[i] >> 4];
		d[2 * i + 1] = hexdig[p[i] & 15];
	}
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

/* A quoted JSON string from valid UTF-8 (checked by the caller). */
static void out_text(struct out *o, const uint8_t *s, size_t n)
{
	out_mem(o, "\"", 1);
	size_t i = 0;
	while (i < n) {
		size_t run = 0;
		while (i + run < n && s[i + run] >= 0x20 && s[i + run] < 0x7f &&
		       s[i + run] != '"' && s[i + run] != '\\')
			run++;
		if (run) {
			out_mem(o, s + i, run);
			i += run;
			continue;
		}
		uint32_t cp = 0;
		size_t l = ref_utf8_char(s + i, n - i, &cp);
		if (l == 0) {
			o->over = true; /* unreachable: callers validate first */
			return;
		}
		i += l;
		if (cp == '"')
			out_mem(o, "\\\"", 2);
		else if (cp == '\\')
			out_mem(o, "\\\\", 2);
		else if (cp == '\n')
			out_mem(o, "\\n", 2);
		else if (cp == '\r')
			out_mem(o, "\\r", 2);
		else if (cp == '\t')
			out_mem(o, "\\t", 2);
		else if (cp >= 0x20 && cp < 0x7f) {
			char ch = (char)cp;
			out_mem(o, &ch, 1);
		} else if (cp < 0x10000) {
			out_u16esc(o, cp);
		} else {
			cp -= 0x10000;
			out_u16esc(o, 0xd800 | (cp >> 10));
			out_u16esc(o, 0xdc00 | (cp & 0x3ff));
		}
	}
	out_mem(o, "\"", 1);
}

static void out_cstr(struct out *o, const char *s)
{
	out_text(o, (const uint8_t *)s, strlen(s));
}

static void ref_format_double(double d, char buf[AUDIT_DOUBLE_MAX])
{
	uint64_t bits;
	memcpy(&bits, &d, sizeof(bits));
	struct out o = {.p = buf, .cap = AUDIT_DOUBLE_MAX - 1};
	unsigned exp = (unsigned)((bits >> 52) & 0x7ff);
	uint64_t man = bits & ((UINT64_C(1) << 52) - 1);
	if (exp == 0x7ff && man) {
		/* Every NaN keeps its payload and sign bit. */
		out_str(&o, "nan:");
		for (int sh = 60; sh >= 0; sh -= 4)
			out_mem(&o, &hexdig[(bits >> sh) & 15], 1);
	} else {
		if (bits >> 63)
			out_mem(&o, "-", 1);
		if (exp == 0x7ff) {
			out_str(&o, "inf");
		} else if (exp == 0 && man == 0) {
			out_str(&o, "0x0p+0");
		} else {
			out_str(&o, exp ? "0x1" : "0x0");
			int e = exp ? (int)exp - 1023 : -1022;
			char dig[13];
			size_t nd = 0;
			for (int sh = 48; sh >= 0; sh -= 4)
				dig[nd++] = hexdig[(man >> sh) & 15];
			while (nd > 0 && dig[nd - 1] == '0')
				nd--;
			if (nd) {
				out_mem(&o, ".", 1);
				out_mem(&o, dig, nd);
			}
			out_mem(&o, e < 0 ? "p-" : "p+", 2);
			out_u64(&o, (uint64_t)(e < 0 ? -e : e));
		}
	}
	buf[o.len] = '\0';
}

static void put_digits(char *p, unsigned v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

static int ref_time_format(int64_t us, char buf[AUDIT_TIME_LEN + 1])
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

static bool text_ok(const char *s)
{
	if (!s)
		return true;
	size_t n = strnlen(s, AUDIT_TEXT_MAX + 1);
	return n <= AUDIT_TEXT_MAX && ref_utf8_valid((const uint8_t *)s, n);
}

const char *ref_record_check(const struct audit_record *rec)
{
	if (!ref_event_name(rec->event))
		return "unknown event";
	if (!text_ok(rec->layer) || !text_ok(rec->method) || !text_ok(rec->rule) ||
	    !text_ok(rec->policy) || !text_ok(rec->klass) || !text_ok(rec->signal) ||
	    !text_ok(rec->reason))
		return "text field over the limit or not UTF-8";
	if (rec->seq == 0)
		return "sequence numbers start at 1";
	if (rec->has_log_id != (rec->seq == 1))
		return "log id belongs to the first record, and only there";
	if (rec->time_us < 0)
		return "time before the epoch";
	bool decision = rec->event == AUDIT_EV_DECISION;
	if ((rec->verdict != AUDIT_VERDICT_NONE) != decision ||
	    !ref_verdict_name(rec->verdict) != !decision)
		return "verdict belongs to decision records, and only there";
	if (rec->has_mono && !decision)
		return "mono_ns belongs to decision records";
	if (decision && (!rec->layer || !rec->method || !rec->has_args))
		return "decision records need layer, method and args";
	if (!rec->has_args && rec->nargs)
		return "args without has_args";
	if (rec->nargs > CDT_ARGS_MAX)
		return "too many args";
	if (rec->event == AUDIT_EV_EXIT) {
		if (rec->has_code == !!rec->signal)
			return "exit records carry a code or a signal";
	} else if (rec->has_code || rec->signal) {
		return "code and signal belong to exit records";
	}
	if (rec->event == AUDIT_EV_VIOLATION && !rec->klass)
		return "violation records need a class";
	if (rec->event == AUDIT_EV_GAP) {
		if (!rec->has_lost && !rec->has_torn)
			return "audit-gap records say what was lost or torn";
	} else if (rec->has_lost || rec->has_torn) {
		return "lost and torn belong to audit-gap records";
	}
	if (rec->policy_line && !rec->policy)
		return "policy line without a policy file";
	size_t total = 0;
	for (size_t i = 0; i < rec->nargs; i++) {
		const struct audit_arg *a = &rec->args[i];
		if (!a->arg.name || strnlen(a->arg.name, CDT_NAME_MAX + 1) > CDT_NAME_MAX ||
		    !ref_utf8_valid((const uint8_t *)a->arg.name, strlen(a->arg.name)))
			return "argument name over the limit or not UTF-8";
		if (!ref_type_name(a->arg.type))
			return "unknown argument type";
		if (a->bulk) {
			if (a->arg.type != CDT_TYPE_BYTES || a->truncated || a->not_utf8)
				return "only untruncated bytes are bulk";
			if (a->arg.v.bytes.ptr || a->arg.v.bytes.len == 0 ||
			    a->arg.v.bytes.len > CDT_MSG_MAX)
				return "bulk value without a length or with data";
			continue;
		}
		bool blob = a->arg.type == CDT_TYPE_STRING || a->arg.type == CDT_TYPE_BYTES;
		if (!blob && (a->truncated || a->not_utf8))
			return "only strings and bytes are capped";
		if (a->not_utf8 && a->arg.type != CDT_TYPE_STRING)
			return "only strings are flagged not UTF-8";
		if (!blob)
			continue;
		size_t len = a->arg.v.str.len;
		if (len > AUDIT_VALUE_MAX)
			return "value over the cap";
		total += len;
		if (total > AUDIT_VALUES_MAX)
			return "values over the record cap";
		if (a->arg.type == CDT_TYPE_STRING && !a->not_utf8 &&
		    !ref_utf8_valid((const uint8_t *)a->arg.v.str.ptr, len))
			return "string not UTF-8 but not flagged";
		if (a->truncated && a->orig_len <= len)
			return "truncated value not longer than what is kept";
	}
	return NULL;
}

static void out_arg(struct out *o, const struct audit_arg *a)
{
	out_str(o, "{\"n\":");
	out_cstr(o, a->arg.name);
	out_str(o, ",\"t\":\"");
	out_str(o, ref_type_name(a->arg.type));
	out_str(o, "\"");
	char dbl[AUDIT_DOUBLE_MAX];
	switch (a->arg.type) {
	case CDT_TYPE_BOOL:
		out_str(o, a->arg.v.b ? ",\"v\":true" : ",\"v\":false");
		break;
	case CDT_TYPE_I64:
		out_str(o, ",\"v\":");
		out_i64(o, a->arg.v.i64);
		break;
	case CDT_TYPE_U64:
		out_str(o, ",\"v\":");
		out_u64(o, a->arg.v.u64);
		break;
	case CDT_TYPE_DOUBLE:
		ref_format_double(a->arg.v.d, dbl);
		out_str(o, ",\"v\":\"");
		out_str(o, dbl);
		out_str(o, "\"");
		break;
	case CDT_TYPE_STRING:
		if (a->not_utf8) {
			out_str(o, ",\"hex\":\"");
			out_hex(o, (const uint8_t *)a->arg.v.str.ptr, a->arg.v.str.len);
			out_str(o, "\"");
		} else {
			out_str(o, ",\"v\":");
			out_text(o, (const uint8_t *)a->arg.v.str.ptr, a->arg.v.str.len);
		}
		break;
	case CDT_TYPE_BYTES:
		if (a->bulk) {
			out_str(o, ",\"len\":");
			out_u64(o, a->arg.v.bytes.len);
			out_str(o, ",\"bulk\":true");
			break;
		}
		out_str(o, ",\"hex\":\"");
		out_hex(o, a->arg.v.bytes.ptr, a->arg.v.bytes.len);
		out_str(o, "\"");
		break;
	case CDT_TYPE_FD:
		break;
	}
	if (a->truncated) {
		out_str(o, ",\"trunc\":true,\"len\":");
		out_u64(o, a->orig_len);
		out_str(o, ",\"hash\":\"");
		out_hex(o, a->hash, AUDIT_HASH_LEN);
		out_str(o, "\"");
	}
	out_str(o, "}");
}

static void out_key_text(struct out *o, const char *key, const char *v)
{
	if (!v)
		return;
	out_str(o, key);
	out_cstr(o, v);
}

long ref_audit_format(const struct audit_record *rec, char *buf, size_t cap)
{
	if (ref_record_check(rec))
		return -EINVAL;
	struct out o = {.p = buf, .cap = cap};
	char tbuf[AUDIT_TIME_LEN + 1];
	if (ref_time_format(rec->time_us, tbuf) < 0)
		return -EINVAL;

	out_str(&o, "{\"seq\":");
	out_u64(&o, rec->seq);
	out_str(&o, ",\"time\":\"");
	out_str(&o, tbuf);
	out_str(&o, "\",\"event\":\"");
	out_str(&o, ref_event_name(rec->event));
	out_str(&o, "\"");
	if (rec->has_log_id) {
		out_str(&o, ",\"log\":\"");
		out_hex(&o, rec->log_id, AUDIT_LOG_ID_LEN);
		out_str(&o, "\"");
	}
	out_key_text(&o, ",\"layer\":", rec->layer);
	if (rec->has_pid) {
		out_str(&o, ",\"pid\":");
		out_i64(&o, rec->pid);
	}
	out_key_text(&o, ",\"method\":", rec->method);
	if (rec->has_args) {
		out_str(&o, ",\"args\":[");
		for (size_t i = 0; i < rec->nargs; i++) {
			if (i)
				out_str(&o, ",");
			out_arg(&o, &rec->args[i]);
		}
		out_str(&o, "]");
	}
	if (rec->verdict) {
		out_str(&o, ",\"verdict\":\"");
		out_str(&o, ref_verdict_name(rec->verdict));
		out_str(&o, "\"");
	}
	if (rec->has_mono) {
		out_str(&o, ",\"mono_ns\":");
		out_u64(&o, rec->mono_ns);
	}
	out_key_text(&o, ",\"rule\":", rec->rule);
	out_key_text(&o, ",\"policy\":", rec->policy);
	if (rec->policy_line) {
		out_str(&o, ",\"line\":");
		out_u64(&o, rec->policy_line);
	}
	out_key_text(&o, ",\"class\":", rec->klass);
	if (rec->has_code) {
		out_str(&o, ",\"code\":");
		out_i64(&o, rec->code);
	}
	out_key_text(&o, ",\"signal\":", rec->signal);
	if (rec->has_lost) {
		out_str(&o, ",\"lost\":");
		out_u64(&o, rec->lost);
	}
	if (rec->has_torn) {
		out_str(&o, ",\"torn_len\":");
		out_u64(&o, rec->torn_len);
		out_str(&o, ",\"torn_hash\":\"");
		out_hex(&o, rec->torn_hash, AUDIT_HASH_LEN);
		out_str(&o, "\"");
	}
	out_key_text(&o, ",\"reason\":", rec->reason);
	out_str(&o, ",\"prev\":\"");
	out_hex(&o, rec->prev, AUDIT_HASH_LEN);
	out_str(&o, "\"");
	if (rec->event == AUDIT_EV_STOP && !o.over) {
		/* A stop record ends a log: nothing after it would expose an
		 * edit, so it seals its own bytes. */
		uint8_t seal[AUDIT_HASH_LEN];
		crypto_generichash(seal, sizeof(seal), (const unsigned char *)o.p, o.len, NULL, 0);
		out_str(&o, ",\"seal\":\"");
		out_hex(&o, seal, sizeof(seal));
		out_str(&o, "\"");
	}
	out_str(&o, "}\n");
	if (o.over)
		return -E2BIG;
	return (long)o.len;
}
