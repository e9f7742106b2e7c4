/* SPDX-License-Identifier: MIT */
/*
 * Audit record checks: UTF-8, the caps on a converted argument and the
 * schema rules a record must follow to be written or accepted.
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "audit-internal.h"

/* Length of the well-formed UTF-8 sequence at s (shortest form, no
 * surrogates, at most U+10FFFF), 0 when ill-formed. */
size_t utf8_char(const uint8_t *s, size_t n, uint32_t *ret_cp)
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

bool utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint32_t cp;
		/* Names, rules and most values are ASCII: skip those bytes
		 * without decoding them (every record checks several), eight
		 * at a time where there are eight. */
		uint64_t w;
		if (n - i >= sizeof(w)) {
			memcpy(&w, s + i, sizeof(w));
			if (!(w & UINT64_C(0x8080808080808080))) {
				i += sizeof(w);
				continue;
			}
		}
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		size_t l = utf8_char(s + i, n - i, &cp);
		if (l == 0)
			return false;
		i += l;
	}
	return true;
}

static bool text_ok(const char *s)
{
	if (!s)
		return true;
	size_t n = strnlen(s, AUDIT_TEXT_MAX + 1);
	return n <= AUDIT_TEXT_MAX && utf8_valid((const uint8_t *)s, n);
}

static bool name_ok(const char *s)
{
	size_t n = strnlen(s, CDT_NAME_MAX + 1);
	return n <= CDT_NAME_MAX && utf8_valid((const uint8_t *)s, n);
}

int audit_arg_from_cdt(const struct cdt_arg *in, size_t *budget, struct audit_arg *ret_out)
{
	struct audit_arg out = {.arg = *in};
	if (!in->name || !name_ok(in->name))
		return -EINVAL;
	if (!audit_type_name(in->type))
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
			out.not_utf8 = !utf8_valid(p, len);
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

/* The schema rules in one order, so that a record breaking several always
 * gets the same reason.  Without scan, the rules that read text bytes
 * (lengths of NUL-terminated text, UTF-8) are left to the caller. */
static const char *record_check(const struct audit_record *rec, bool scan)
{
	if (!audit_event_name(rec->event))
		return "unknown event";
	if (scan && (!text_ok(rec->layer) || !text_ok(rec->method) || !text_ok(rec->rule) ||
		     !text_ok(rec->policy) || !text_ok(rec->klass) || !text_ok(rec->signal) ||
		     !text_ok(rec->reason)))
		return "text field over the limit or not UTF-8";
	if (rec->seq == 0)
		return "sequence numbers start at 1";
	if (rec->has_log_id != (rec->seq == 1))
		return "log id belongs to the first record, and only there";
	if (rec->time_us < 0)
		return "time before the epoch";
	bool decision = rec->event == AUDIT_EV_DECISION;
	if ((rec->verdict != AUDIT_VERDICT_NONE) != decision ||
	    !audit_verdict_name(rec->verdict) != !decision)
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
		if (!a->arg.name || (scan && !name_ok(a->arg.name)))
			return "argument name over the limit or not UTF-8";
		if (!audit_type_name(a->arg.type))
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
		if (scan && a->arg.type == CDT_TYPE_STRING && !a->not_utf8 &&
		    !utf8_valid((const uint8_t *)a->arg.v.str.ptr, len))
			return "string not UTF-8 but not flagged";
		if (a->truncated && a->orig_len <= len)
			return "truncated value not longer than what is kept";
	}
	return NULL;
}

const char *audit_record_check(const struct audit_record *rec)
{
	return record_check(rec, true);
}

const char *audit_record_check_shape(const struct audit_record *rec)
{
	return record_check(rec, false);
}
