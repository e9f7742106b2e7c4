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

#include "audit-internal.h"

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

struct cur {
	const char *s;
	size_t n, i;
	struct audit_scratch *sc;
	struct audit_parse_error *err;
};

static int fail(struct cur *c, const char *why)
{
	c->err->col = (uint32_t)(c->i < UINT32_MAX ? c->i + 1 : UINT32_MAX);
	snprintf(c->err->reason, sizeof(c->err->reason), "%s", why);
	return -EBADMSG;
}

static bool peek(const struct cur *c, char ch)
{
	return c->i < c->n && c->s[c->i] == ch;
}

static int lit(struct cur *c, const char *t)
{
	size_t l = strlen(t);
	if (c->n - c->i < l || memcmp(c->s + c->i, t, l) != 0)
		return fail(c, "unexpected text");
	c->i += l;
	return 0;
}

static bool accept(struct cur *c, const char *t)
{
	size_t l = strlen(t);
	if (c->n - c->i < l || memcmp(c->s + c->i, t, l) != 0)
		return false;
	c->i += l;
	return true;
}

static int p_u64(struct cur *c, uint64_t *ret)
{
	size_t start = c->i;
	uint64_t v = 0;
	while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
		unsigned d = (unsigned)(c->s[c->i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return fail(c, "number out of range");
		v = v * 10 + d;
		c->i++;
	}
	if (c->i == start)
		return fail(c, "expected a number");
	if (c->s[start] == '0' && c->i - start > 1) {
		c->i = start;
		return fail(c, "leading zero");
	}
	*ret = v;
	return 0;
}

static int p_i64(struct cur *c, int64_t *ret)
{
	bool neg = accept(c, "-");
	uint64_t u;
	int r = p_u64(c, &u);
	if (r < 0)
		return r;
	if (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX)
		return fail(c, "number out of range");
	if (neg && u == 0)
		return fail(c, "negative zero");
	*ret = neg ? (int64_t)(0 - u) : (int64_t)u;
	return 0;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

static int sc_put(struct cur *c, const void *p, size_t n)
{
	if (n > c->sc->cap - c->sc->used)
		return fail(c, "record too large");
	memcpy(c->sc->buf + c->sc->used, p, n);
	c->sc->used += n;
	return 0;
}

static int p_hex4(struct cur *c, uint32_t *ret)
{
	uint32_t v = 0;
	if (c->n - c->i < 4)
		return fail(c, "truncated \\u escape");
	for (int k = 0; k < 4; k++) {
		int h = hexval(c->s[c->i + (size_t)k]);
		if (h < 0)
			return fail(c, "bad \\u escape");
		v = (v << 4) | (uint32_t)h;
	}
	c->i += 4;
	*ret = v;
	return 0;
}

/* A quoted string, decoded into scratch as NUL-terminated UTF-8. */
static int p_string(struct cur *c, const char **ret, size_t *ret_len)
{
	int r = lit(c, "\"");
	if (r < 0)
		return r;
	size_t start = c->sc->used;
	for (;;) {
		if (c->i >= c->n)
			return fail(c, "unterminated string");
		unsigned char ch = (unsigned char)c->s[c->i];
		if (ch == '"') {
			c->i++;
			break;
		}
		if (ch < 0x20 || ch >= 0x7f)
			return fail(c, "raw control or non-ASCII byte in a string");
		if (ch != '\\') {
			/* Copy the run of plain characters at once. */
			size_t run = 1;
			while (c->i + run < c->n) {
				unsigned char nx = (unsigned char)c->s[c->i + run];
				if (nx < 0x20 || nx >= 0x7f || nx == '"' || nx == '\\')
					break;
				run++;
			}
			if ((r = sc_put(c, c->s + c->i, run)) < 0)
				return r;
			c->i += run;
			continue;
		}
		c->i++;
		if (c->i >= c->n)
			return fail(c, "truncated escape");
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
				return fail(c, "lone low surrogate");
			if (cp >= 0xd800 && cp <= 0xdbff) {
				uint32_t lo;
				if ((r = lit(c, "\\u")) < 0 || (r = p_hex4(c, &lo)) < 0)
					return r;
				if (lo < 0xdc00 || lo > 0xdfff)
					return fail(c, "unpaired high surrogate");
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
			if ((r = sc_put(c, u, ul)) < 0)
				return r;
			continue;
		}
		default:
			c->i--;
			return fail(c, "unknown escape");
		}
		if ((r = sc_put(c, &one, 1)) < 0)
			return r;
	}
	size_t len = c->sc->used - start;
	if ((r = sc_put(c, "", 1)) < 0)
		return r;
	*ret = c->sc->buf + start;
	*ret_len = len;
	return 0;
}

/* A text field: no NUL inside, within AUDIT_TEXT_MAX. */
static int p_text(struct cur *c, size_t max, const char **ret)
{
	size_t at = c->i, len;
	const char *s;
	int r = p_string(c, &s, &len);
	if (r < 0)
		return r;
	if (memchr(s, '\0', len) || len > max) {
		c->i = at;
		return fail(c, "text with NUL or over its limit");
	}
	*ret = s;
	return 0;
}

/* Quoted lower-case hex, decoded into scratch (fixed length when want). */
static int p_hex(struct cur *c, size_t want, size_t max, const uint8_t **ret, size_t *ret_len)
{
	int r = lit(c, "\"");
	if (r < 0)
		return r;
	size_t start = c->sc->used;
	uint8_t *dst = (uint8_t *)c->sc->buf + start;
	size_t room = c->sc->cap - start, len = 0;
	while (!peek(c, '"')) {
		if (c->n - c->i < 2)
			return fail(c, "truncated hex");
		int hi = hexval(c->s[c->i]), lo = hexval(c->s[c->i + 1]);
		if (hi < 0 || lo < 0)
			return fail(c, "bad hex digit");
		if (len == room)
			return fail(c, "record too large");
		dst[len++] = (uint8_t)(hi << 4 | lo);
		c->i += 2;
	}
	c->sc->used += len;
	if ((want && len != want) || len > max)
		return fail(c, "hex of the wrong length");
	c->i++;
	*ret = (const uint8_t *)c->sc->buf + start;
	*ret_len = len;
	return 0;
}

static int p_hash(struct cur *c, uint8_t *out, size_t n)
{
	const uint8_t *p;
	size_t len;
	size_t mark = c->sc->used;
	int r = p_hex(c, n, n, &p, &len);
	if (r < 0)
		return r;
	memcpy(out, p, n);
	c->sc->used = mark; /* copied out: give the scratch back */
	return 0;
}

static int p_double(struct cur *c, double *ret)
{
	size_t at = c->i, len;
	const char *s;
	int r = p_string(c, &s, &len);
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
	return fail(c, "not a canonical f64");
}

static int p_arg(struct cur *c, struct audit_arg *a)
{
	int r;
	size_t len;
	const char *tname;
	*a = (struct audit_arg){0};
	if ((r = lit(c, "{\"n\":")) < 0 || (r = p_text(c, CDT_NAME_MAX, &a->arg.name)) < 0 ||
	    (r = lit(c, ",\"t\":")) < 0)
		return r;
	size_t at = c->i;
	if ((r = p_string(c, &tname, &len)) < 0)
		return r;
	enum cdt_type t;
	for (t = CDT_TYPE_BOOL; t <= CDT_TYPE_FD; t++)
		if (strcmp(audit_type_name(t), tname) == 0)
			break;
	if (t > CDT_TYPE_FD) {
		c->i = at;
		return fail(c, "unknown argument type");
	}
	a->arg.type = t;
	switch (t) {
	case CDT_TYPE_BOOL:
		if ((r = lit(c, ",\"v\":")) < 0)
			return r;
		if (accept(c, "true"))
			a->arg.v.b = true;
		else if (!accept(c, "false"))
			return fail(c, "expected true or false");
		break;
	case CDT_TYPE_I64:
		if ((r = lit(c, ",\"v\":")) < 0 || (r = p_i64(c, &a->arg.v.i64)) < 0)
			return r;
		break;
	case CDT_TYPE_U64:
		if ((r = lit(c, ",\"v\":")) < 0 || (r = p_u64(c, &a->arg.v.u64)) < 0)
			return r;
		break;
	case CDT_TYPE_DOUBLE:
		if ((r = lit(c, ",\"v\":")) < 0 || (r = p_double(c, &a->arg.v.d)) < 0)
			return r;
		break;
	case CDT_TYPE_STRING:
		if (accept(c, ",\"v\":")) {
			if ((r = p_string(c, &a->arg.v.str.ptr, &a->arg.v.str.len)) < 0)
				return r;
			break;
		}
		a->not_utf8 = true;
		/* the same hex form as bytes */
		__attribute__((fallthrough));
	case CDT_TYPE_BYTES: {
		const uint8_t *p;
		if ((r = lit(c, ",\"hex\":")) < 0 ||
		    (r = p_hex(c, 0, AUDIT_VALUE_MAX, &p, &len)) < 0)
			return r;
		/* NUL-terminated like every decoded string (cdt_arg's promise). */
		if ((r = sc_put(c, "", 1)) < 0)
			return r;
		a->arg.v.bytes.ptr = p;
		a->arg.v.bytes.len = len;
		break;
	}
	case CDT_TYPE_FD:
		a->arg.v.fd = -1;
		break;
	}
	if (accept(c, ",\"trunc\":true,\"len\":")) {
		a->truncated = true;
		if ((r = p_u64(c, &a->orig_len)) < 0 || (r = lit(c, ",\"hash\":")) < 0 ||
		    (r = p_hash(c, a->hash, AUDIT_HASH_LEN)) < 0)
			return r;
	}
	return lit(c, "}");
}

static int p_args(struct cur *c, struct audit_record *rec)
{
	int r = lit(c, "[");
	if (r < 0)
		return r;
	rec->has_args = true;
	rec->args = c->sc->args;
	rec->nargs = 0;
	if (accept(c, "]"))
		return 0;
	for (;;) {
		if (rec->nargs == CDT_ARGS_MAX)
			return fail(c, "too many arguments");
		if ((r = p_arg(c, &c->sc->args[rec->nargs])) < 0)
			return r;
		rec->nargs++;
		if (accept(c, "]"))
			return 0;
		if ((r = lit(c, ",")) < 0)
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

static const char *const key_names[K_MAX] = {
	"seq",	  "time",    "event",	 "log",	      "layer",	"pid",	 "method",
	"args",	  "verdict", "rule",	 "policy",    "line",	"class", "code",
	"signal", "lost",    "torn_len", "torn_hash", "reason", "prev",	 "seal",
};

static int p_time(struct cur *c, int64_t *ret)
{
	size_t at = c->i, len;
	const char *s;
	int r = p_string(c, &s, &len);
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
	return fail(c, "bad time");
}

static int p_value(struct cur *c, enum key k, struct audit_record *rec)
{
	int r = 0;
	size_t at = c->i, len;
	const char *s;
	uint64_t u;
	switch (k) {
	case K_SEQ:
		return p_u64(c, &rec->seq);
	case K_TIME:
		return p_time(c, &rec->time_us);
	case K_EVENT:
		if ((r = p_string(c, &s, &len)) < 0)
			return r;
		for (enum audit_event ev = AUDIT_EV_START; ev <= AUDIT_EV_GAP; ev++)
			if (strcmp(audit_event_name(ev), s) == 0) {
				rec->event = ev;
				return 0;
			}
		c->i = at;
		return fail(c, "unknown event");
	case K_LOG:
		rec->has_log_id = true;
		return p_hash(c, rec->log_id, AUDIT_LOG_ID_LEN);
	case K_LAYER:
		return p_text(c, AUDIT_TEXT_MAX, &rec->layer);
	case K_PID:
		rec->has_pid = true;
		return p_i64(c, &rec->pid);
	case K_METHOD:
		return p_text(c, AUDIT_TEXT_MAX, &rec->method);
	case K_ARGS:
		return p_args(c, rec);
	case K_VERDICT:
		if ((r = p_string(c, &s, &len)) < 0)
			return r;
		for (enum audit_verdict v = AUDIT_VERDICT_ALLOW; v <= AUDIT_VERDICT_COMPLAIN; v++)
			if (strcmp(audit_verdict_name(v), s) == 0) {
				rec->verdict = v;
				return 0;
			}
		c->i = at;
		return fail(c, "unknown verdict");
	case K_RULE:
		return p_text(c, AUDIT_TEXT_MAX, &rec->rule);
	case K_POLICY:
		return p_text(c, AUDIT_TEXT_MAX, &rec->policy);
	case K_LINE:
		if ((r = p_u64(c, &u)) < 0)
			return r;
		if (u == 0 || u > UINT32_MAX) {
			c->i = at;
			return fail(c, "policy line out of range");
		}
		rec->policy_line = (uint32_t)u;
		return 0;
	case K_CLASS:
		return p_text(c, AUDIT_TEXT_MAX, &rec->klass);
	case K_CODE:
		rec->has_code = true;
		return p_i64(c, &rec->code);
	case K_SIGNAL:
		return p_text(c, AUDIT_TEXT_MAX, &rec->signal);
	case K_LOST:
		rec->has_lost = true;
		return p_u64(c, &rec->lost);
	case K_TORN_LEN:
		rec->has_torn = true;
		return p_u64(c, &rec->torn_len);
	case K_TORN_HASH:
		if (!rec->has_torn)
			return fail(c, "torn_hash without torn_len");
		return p_hash(c, rec->torn_hash, AUDIT_HASH_LEN);
	case K_REASON:
		return p_text(c, AUDIT_TEXT_MAX, &rec->reason);
	case K_PREV:
		return p_hash(c, rec->prev, AUDIT_HASH_LEN);
	case K_SEAL:
	case K_MAX:
		break;
	}
	return fail(c, "internal: unhandled key");
}

int audit_parse_line(const char *line, size_t len, struct audit_scratch *scratch,
		     struct audit_record *ret_rec, struct audit_parse_error *err)
{
	struct cur c = {.s = line, .n = len, .sc = scratch, .err = err};
	struct audit_record rec = {0};
	bool seen[K_MAX] = {0};
	int last = -1, r;
	*err = (struct audit_parse_error){0};
	scratch->used = 0;
	if ((r = lit(&c, "{")) < 0)
		return r;
	for (;;) {
		size_t key_at = c.i;
		if ((r = lit(&c, "\"")) < 0)
			return r;
		int k;
		/* Keys come in table order: start the search after the last. */
		for (k = last + 1; k < K_MAX; k++) {
			size_t kl = strlen(key_names[k]);
			if (c.n - c.i > kl && memcmp(c.s + c.i, key_names[k], kl) == 0 &&
			    c.s[c.i + kl] == '"')
				break;
		}
		if (k == K_MAX)
			return fail(&c, "unknown, duplicate or out-of-order key");
		c.i += strlen(key_names[k]) + 1;
		if ((r = lit(&c, ":")) < 0)
			return r;
		seen[k] = true;
		last = k;
		if (k == K_SEAL) {
			uint8_t seal[AUDIT_HASH_LEN], want[AUDIT_HASH_LEN];
			if ((r = p_hash(&c, seal, sizeof(seal))) < 0)
				return r;
			/* The seal covers every byte before ,"seal". */
			crypto_generichash(want, sizeof(want), (const unsigned char *)line,
					   key_at - 1, NULL, 0);
			if (sodium_memcmp(seal, want, sizeof(seal)) != 0) {
				c.i = key_at;
				err->edited = true;
				return fail(&c, "seal does not match the stop record");
			}
		} else if ((r = p_value(&c, (enum key)k, &rec)) < 0) {
			return r;
		}
		if (accept(&c, "}"))
			break;
		if ((r = lit(&c, ",")) < 0)
			return r;
	}
	if (c.i != c.n)
		return fail(&c, "bytes after the record");
	static const enum key required[] = {K_SEQ, K_TIME, K_EVENT, K_PREV};
	for (size_t j = 0; j < sizeof(required) / sizeof(required[0]); j++)
		if (!seen[required[j]]) {
			c.i = 0;
			return fail(&c, "missing seq, time, event or prev");
		}
	if (seen[K_TORN_LEN] != seen[K_TORN_HASH] || seen[K_SEAL] != (rec.event == AUDIT_EV_STOP)) {
		c.i = 0;
		return fail(&c, "torn_len/torn_hash or seal misplaced");
	}
	const char *why = audit_record_check(&rec);
	if (why) {
		c.i = 0;
		return fail(&c, why);
	}
	long n = audit_format(&rec, scratch->canon, scratch->canon_cap);
	if (n < 0) {
		c.i = 0;
		return fail(&c, "record does not serialize");
	}
	if ((size_t)n != len + 1 || memcmp(scratch->canon, line, len) != 0) {
		size_t k = 0;
		while (k < len && k < (size_t)n && scratch->canon[k] == line[k])
			k++;
		c.i = k;
		return fail(&c, "not in canonical form");
	}
	*ret_rec = rec;
	return 0;
}
