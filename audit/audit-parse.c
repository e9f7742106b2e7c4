/* SPDX-License-Identifier: MIT */
/*
 * Strict audit record parser.  It accepts exactly what audit_format()
 * writes: keys in their fixed order, each at most once, then the record is
 * serialized again and must match byte for byte, so any second spelling of
 * a record (escapes, digits, spacing) is rejected.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "audit-scan.h"

static int parse_arg(struct scan *c, struct audit_arg *a)
{
	int r;
	size_t len;
	const char *tname;
	*a = (struct audit_arg){0};
	if ((r = scan_lit(c, "{\"n\":")) < 0 ||
	    (r = scan_text(c, CDT_NAME_MAX, &a->arg.name)) < 0 || (r = scan_lit(c, ",\"t\":")) < 0)
		return r;
	size_t at = c->i;
	if ((r = scan_string(c, &tname, &len)) < 0)
		return r;
	enum cdt_type t;
	for (t = CDT_TYPE_BOOL; t <= CDT_TYPE_FD; t++)
		if (strcmp(audit_type_name(t), tname) == 0)
			break;
	if (t > CDT_TYPE_FD) {
		c->i = at;
		return scan_fail(c, "unknown argument type");
	}
	a->arg.type = t;
	switch (t) {
	case CDT_TYPE_BOOL:
		if ((r = scan_lit(c, ",\"v\":")) < 0)
			return r;
		if (scan_accept(c, "true"))
			a->arg.v.b = true;
		else if (!scan_accept(c, "false"))
			return scan_fail(c, "expected true or false");
		break;
	case CDT_TYPE_I64:
		if ((r = scan_lit(c, ",\"v\":")) < 0 || (r = scan_i64(c, &a->arg.v.i64)) < 0)
			return r;
		break;
	case CDT_TYPE_U64:
		if ((r = scan_lit(c, ",\"v\":")) < 0 || (r = scan_u64(c, &a->arg.v.u64)) < 0)
			return r;
		break;
	case CDT_TYPE_DOUBLE:
		if ((r = scan_lit(c, ",\"v\":")) < 0 || (r = scan_double(c, &a->arg.v.d)) < 0)
			return r;
		break;
	case CDT_TYPE_STRING:
		if (scan_accept(c, ",\"v\":")) {
			if ((r = scan_string(c, &a->arg.v.str.ptr, &a->arg.v.str.len)) < 0)
				return r;
			break;
		}
		a->not_utf8 = true;
		/* the same hex form as bytes */
		__attribute__((fallthrough));
	case CDT_TYPE_BYTES: {
		const uint8_t *p;
		if (a->arg.type == CDT_TYPE_BYTES && scan_accept(c, ",\"len\":")) {
			uint64_t n;
			/* A bulk value: a length, no data (docs/audit.md 3). */
			if ((r = scan_u64(c, &n)) < 0 || (r = scan_lit(c, ",\"bulk\":true")) < 0)
				return r;
			if (n == 0 || n > CDT_MSG_MAX)
				return scan_fail(c, "bulk length out of range");
			a->bulk = true;
			a->arg.v.bytes.ptr = NULL;
			a->arg.v.bytes.len = (size_t)n;
			return scan_lit(c, "}");
		}
		if ((r = scan_lit(c, ",\"hex\":")) < 0 ||
		    (r = scan_hex(c, 0, AUDIT_VALUE_MAX, &p, &len)) < 0)
			return r;
		/* NUL-terminated like every decoded string (cdt_arg's promise). */
		if ((r = scan_put(c, "", 1)) < 0)
			return r;
		a->arg.v.bytes.ptr = p;
		a->arg.v.bytes.len = len;
		break;
	}
	case CDT_TYPE_FD:
		a->arg.v.fd = -1;
		break;
	}
	if (scan_accept(c, ",\"trunc\":true,\"len\":")) {
		a->truncated = true;
		if ((r = scan_u64(c, &a->orig_len)) < 0 || (r = scan_lit(c, ",\"hash\":")) < 0 ||
		    (r = scan_hash(c, a->hash, AUDIT_HASH_LEN)) < 0)
			return r;
	}
	return scan_lit(c, "}");
}

static int parse_args(struct scan *c, struct audit_record *rec)
{
	int r = scan_lit(c, "[");
	if (r < 0)
		return r;
	rec->has_args = true;
	rec->args = c->sc->args;
	rec->nargs = 0;
	if (scan_accept(c, "]"))
		return 0;
	for (;;) {
		if (rec->nargs == CDT_ARGS_MAX)
			return scan_fail(c, "too many arguments");
		if ((r = parse_arg(c, &c->sc->args[rec->nargs])) < 0)
			return r;
		rec->nargs++;
		if (scan_accept(c, "]"))
			return 0;
		if ((r = scan_lit(c, ",")) < 0)
			return r;
	}
}

enum key {
	K_SEQ,
	K_TIME,
	K_EVENT,
	K_LOG,
	K_LAYER,
	K_PID,
	K_METHOD,
	K_ARGS,
	K_VERDICT,
	K_MONO,
	K_RULE,
	K_POLICY,
	K_LINE,
	K_CLASS,
	K_CODE,
	K_SIGNAL,
	K_LOST,
	K_TORN_LEN,
	K_TORN_HASH,
	K_REASON,
	K_PREV,
	K_SEAL,
	K_MAX
};

static const struct {
	const char *name;
	size_t len;
} keys[K_MAX] = {
	{"seq", 3},    {"time", 4},   {"event", 5},    {"log", 3},	 {"layer", 5},
	{"pid", 3},    {"method", 6}, {"args", 4},     {"verdict", 7},	 {"mono_ns", 7},
	{"rule", 4},   {"policy", 6}, {"line", 4},     {"class", 5},	 {"code", 4},
	{"signal", 6}, {"lost", 4},   {"torn_len", 8}, {"torn_hash", 9}, {"reason", 6},
	{"prev", 4},   {"seal", 4},
};

static int parse_value(struct scan *c, enum key k, struct audit_record *rec)
{
	int r = 0;
	size_t at = c->i, len;
	const char *s;
	uint64_t u;
	switch (k) {
	case K_SEQ:
		return scan_u64(c, &rec->seq);
	case K_TIME:
		return scan_time(c, &rec->time_us);
	case K_EVENT:
		if ((r = scan_string(c, &s, &len)) < 0)
			return r;
		for (enum audit_event ev = AUDIT_EV_START; ev <= AUDIT_EV_GAP; ev++)
			if (strcmp(audit_event_name(ev), s) == 0) {
				rec->event = ev;
				return 0;
			}
		c->i = at;
		return scan_fail(c, "unknown event");
	case K_LOG:
		rec->has_log_id = true;
		return scan_hash(c, rec->log_id, AUDIT_LOG_ID_LEN);
	case K_LAYER:
		return scan_text(c, AUDIT_TEXT_MAX, &rec->layer);
	case K_PID:
		rec->has_pid = true;
		return scan_i64(c, &rec->pid);
	case K_METHOD:
		return scan_text(c, AUDIT_TEXT_MAX, &rec->method);
	case K_ARGS:
		return parse_args(c, rec);
	case K_VERDICT:
		if ((r = scan_string(c, &s, &len)) < 0)
			return r;
		for (enum audit_verdict v = AUDIT_VERDICT_ALLOW; v <= AUDIT_VERDICT_COMPLAIN; v++)
			if (strcmp(audit_verdict_name(v), s) == 0) {
				rec->verdict = v;
				return 0;
			}
		c->i = at;
		return scan_fail(c, "unknown verdict");
	case K_MONO:
		rec->has_mono = true;
		return scan_u64(c, &rec->mono_ns);
	case K_RULE:
		return scan_text(c, AUDIT_TEXT_MAX, &rec->rule);
	case K_POLICY:
		return scan_text(c, AUDIT_TEXT_MAX, &rec->policy);
	case K_LINE:
		if ((r = scan_u64(c, &u)) < 0)
			return r;
		if (u == 0 || u > UINT32_MAX) {
			c->i = at;
			return scan_fail(c, "policy line out of range");
		}
		rec->policy_line = (uint32_t)u;
		return 0;
	case K_CLASS:
		return scan_text(c, AUDIT_TEXT_MAX, &rec->klass);
	case K_CODE:
		rec->has_code = true;
		return scan_i64(c, &rec->code);
	case K_SIGNAL:
		return scan_text(c, AUDIT_TEXT_MAX, &rec->signal);
	case K_LOST:
		rec->has_lost = true;
		return scan_u64(c, &rec->lost);
	case K_TORN_LEN:
		rec->has_torn = true;
		return scan_u64(c, &rec->torn_len);
	case K_TORN_HASH:
		if (!rec->has_torn)
			return scan_fail(c, "torn_hash without torn_len");
		return scan_hash(c, rec->torn_hash, AUDIT_HASH_LEN);
	case K_REASON:
		return scan_text(c, AUDIT_TEXT_MAX, &rec->reason);
	case K_PREV:
		return scan_hash(c, rec->prev, AUDIT_HASH_LEN);
	case K_SEAL:
	case K_MAX:
		break;
	}
	return scan_fail(c, "internal: unhandled key");
}

int audit_parse_line(const char *line, size_t len, struct audit_scratch *scratch,
		     struct audit_record *ret_rec, struct audit_parse_error *err)
{
	struct scan c = {.s = line, .n = len, .sc = scratch, .err = err};
	struct audit_record rec = {0};
	bool seen[K_MAX] = {0};
	int last = -1, r;
	*err = (struct audit_parse_error){0};
	scratch->used = 0;
	if ((r = scan_lit(&c, "{")) < 0)
		return r;
	for (;;) {
		size_t key_at = c.i;
		if ((r = scan_lit(&c, "\"")) < 0)
			return r;
		int k;
		/* Keys come in table order: start the search after the last. */
		for (k = last + 1; k < K_MAX; k++) {
			size_t kl = keys[k].len;
			if (c.n - c.i > kl && c.s[c.i + kl] == '"' &&
			    memcmp(c.s + c.i, keys[k].name, kl) == 0)
				break;
		}
		if (k == K_MAX)
			return scan_fail(&c, "unknown, duplicate or out-of-order key");
		c.i += keys[k].len + 1;
		if ((r = scan_lit(&c, ":")) < 0)
			return r;
		seen[k] = true;
		last = k;
		if (k == K_SEAL) {
			uint8_t seal[AUDIT_HASH_LEN], want[AUDIT_HASH_LEN];
			if ((r = scan_hash(&c, seal, sizeof(seal))) < 0)
				return r;
			/* The seal covers every byte before ,"seal". */
			crypto_generichash(want, sizeof(want), (const unsigned char *)line,
					   key_at - 1, NULL, 0);
			if (sodium_memcmp(seal, want, sizeof(seal)) != 0) {
				c.i = key_at;
				err->edited = true;
				return scan_fail(&c, "seal does not match the stop record");
			}
		} else if ((r = parse_value(&c, (enum key)k, &rec)) < 0) {
			return r;
		}
		if (scan_accept(&c, "}"))
			break;
		if ((r = scan_lit(&c, ",")) < 0)
			return r;
	}
	if (c.i != c.n)
		return scan_fail(&c, "bytes after the record");
	static const enum key required[] = {K_SEQ, K_TIME, K_EVENT, K_PREV};
	for (size_t j = 0; j < sizeof(required) / sizeof(required[0]); j++)
		if (!seen[required[j]]) {
			c.i = 0;
			return scan_fail(&c, "missing seq, time, event or prev");
		}
	if (seen[K_TORN_LEN] != seen[K_TORN_HASH] || seen[K_SEAL] != (rec.event == AUDIT_EV_STOP)) {
		c.i = 0;
		return scan_fail(&c, "torn_len/torn_hash or seal misplaced");
	}
	const char *why = audit_record_check(&rec);
	if (why) {
		c.i = 0;
		return scan_fail(&c, why);
	}
	long n = audit_format(&rec, scratch->canon, scratch->canon_cap);
	if (n < 0) {
		c.i = 0;
		return scan_fail(&c, "record does not serialize");
	}
	if ((size_t)n != len + 1 || memcmp(scratch->canon, line, len) != 0) {
		size_t k = 0;
		while (k < len && k < (size_t)n && scratch->canon[k] == line[k])
			k++;
		c.i = k;
		return scan_fail(&c, "not in canonical form");
	}
	*ret_rec = rec;
	return 0;
}
