/* SPDX-License-Identifier: MIT */
/*
 * The matcher: one decision per call, no allocation, exact comparisons.
 * Strings are compared with explicit lengths, byte for byte (no case
 * folding, no prefix match, no trimming); a value with a NUL byte or invalid
 * UTF-8 matches no string constraint.  Numbers compare exactly across i64,
 * u64 and double; NaN is inside no range and equal to no set member.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "policy-int.h"

struct bucket {
	uint64_t tokens; /* scaled by the rule's period: one call costs period_ns */
	uint64_t last_ns;
};

struct policy_state {
	const struct policy *p;
	size_t n;
	struct bucket b[];
};

/* ---- Numbers ---- */

static int cmp_i64_u64(int64_t i, uint64_t u)
{
	if (i < 0)
		return -1;
	return (uint64_t)i < u ? -1 : (uint64_t)i > u;
}

/* Exact compare of a double with an integer given as (neg ? -mag : mag). */
static int cmp_f64_int(double d, bool neg, uint64_t mag)
{
	if (isnan(d))
		return 2;
	/* 2^64 and -2^63 are exact doubles: outside them no integer competes. */
	if (d >= 18446744073709551616.0)
		return 1;
	if (d < -9223372036854775808.0)
		return -1;
	if (neg) {
		if (d >= 0)
			return 1;
		double t = trunc(d); /* in [-2^63, 0]: exact as an integer */
		uint64_t tm =
			t == -9223372036854775808.0 ? (uint64_t)1 << 63 : (uint64_t)(-(int64_t)t);
		if (tm != mag)
			return tm > mag ? -1 : 1; /* more negative is smaller */
		return d < t ? -1 : 0;
	}
	if (d < 0)
		return -1;
	double t = trunc(d);
	uint64_t tu = (uint64_t)t;
	if (tu != mag)
		return tu < mag ? -1 : 1;
	return d > t ? 1 : 0;
}

int policy_num_cmp(const struct policy_num *a, const struct policy_num *b)
{
	switch (a->kind) {
	case POLICY_NUM_I64:
		if (b->kind == POLICY_NUM_I64)
			return a->v.i < b->v.i ? -1 : a->v.i > b->v.i;
		if (b->kind == POLICY_NUM_U64)
			return cmp_i64_u64(a->v.i, b->v.u);
		break;
	case POLICY_NUM_U64:
		if (b->kind == POLICY_NUM_U64)
			return a->v.u < b->v.u ? -1 : a->v.u > b->v.u;
		if (b->kind == POLICY_NUM_I64)
			return -cmp_i64_u64(b->v.i, a->v.u);
		break;
	case POLICY_NUM_F64:
		if (b->kind == POLICY_NUM_F64) {
			if (isnan(a->v.d) || isnan(b->v.d))
				return 2;
			return a->v.d < b->v.d ? -1 : a->v.d > b->v.d;
		}
		if (b->kind == POLICY_NUM_I64)
			return cmp_f64_int(a->v.d, b->v.i < 0,
					   b->v.i < 0 ? (uint64_t)0 - (uint64_t)b->v.i
						      : (uint64_t)b->v.i);
		return cmp_f64_int(a->v.d, false, b->v.u);
	}
	/* a is an integer, b a double: flip */
	int c = policy_num_cmp(b, a);
	return c == 2 ? 2 : -c;
}

/* ---- Strings ---- */

static bool utf8_clean(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < len;) {
		unsigned char c = u[i];
		if (c < 0x80) {
			if (c == 0)
				return false;
			i++;
			continue;
		}
		size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
		if (n == 0 || c > 0xf4 || n > len - i)
			return false;
		uint32_t cp = c & (0x7fu >> n);
		for (size_t k = 1; k < n; k++) {
			if ((u[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (u[i + k] & 0x3fu);
		}
		if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n;
	}
	return true;
}

/* Length of the UTF-8 character at s (the string is known to be clean). */
static size_t utf8_len(unsigned char c)
{
	return c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
}

bool policy_glob_match(const struct policy_glob *g, const char *s, size_t len)
{
	if (g->literal)
		return g->len == len && memcmp(g->pat, s, len) == 0;
	/* Iterative match with one backtrack point (the last '*'): linear in
	 * practice, O(len * pattern) at worst, never recursive. */
	size_t p = 0, i = 0, star_p = SIZE_MAX, star_i = 0;
	const char *pat = g->pat;
	while (i < len) {
		if (p < g->len && pat[p] == '*') {
			star_p = ++p;
			star_i = i;
			continue;
		}
		if (p < g->len && pat[p] == '?') {
			p++;
			i += utf8_len((unsigned char)s[i]);
			continue;
		}
		if (p < g->len) {
			size_t q = pat[p] == '\\' && p + 1 < g->len ? p + 1 : p;
			if (pat[q] == s[i]) {
				p = q + 1;
				i++;
				continue;
			}
		}
		if (star_p == SIZE_MAX)
			return false;
		p = star_p;
		star_i += utf8_len((unsigned char)s[star_i]);
		i = star_i;
	}
	if (i > len)
		return false;
	while (p < g->len && pat[p] == '*')
		p++;
	return p == g->len;
}

static bool arg_num(const struct cdt_arg *a, struct policy_num *n)
{
	switch (a->type) {
	case CDT_TYPE_I64:
		n->kind = POLICY_NUM_I64;
		n->v.i = a->v.i64;
		return true;
	case CDT_TYPE_U64:
		n->kind = POLICY_NUM_U64;
		n->v.u = a->v.u64;
		return true;
	case CDT_TYPE_DOUBLE:
		n->kind = POLICY_NUM_F64;
		n->v.d = a->v.d;
		return true;
	case CDT_TYPE_BOOL:
	case CDT_TYPE_STRING:
	case CDT_TYPE_BYTES:
	case CDT_TYPE_FD:
		break;
	}
	return false;
}

/* One call's arguments, with the UTF-8/NUL check of each string done at
 * most once per decision however many rules look at it. */
struct call {
	const struct cdt_arg *args;
	size_t nargs;
	uint64_t checked, clean; /* bit i: args[i] (nargs <= CDT_ARGS_MAX = 64) */
	bool too_long;		 /* a glob met a value over POLICY_GLOB_VALUE_MAX: deny */
};

static bool call_string(struct call *c, size_t i)
{
	const struct cdt_arg *a = &c->args[i];
	if (a->type != CDT_TYPE_STRING || (a->v.str.len && !a->v.str.ptr))
		return false;
	if (i >= 64)
		return utf8_clean(a->v.str.ptr, a->v.str.len);
	uint64_t bit = 1ull << i;
	if (!(c->checked & bit)) {
		c->checked |= bit;
		if (utf8_clean(a->v.str.ptr, a->v.str.len))
			c->clean |= bit;
	}
	return c->clean & bit;
}

/* A glob costs up to value x pattern steps; a peer controls the value
 * (up to a whole message), so past POLICY_GLOB_VALUE_MAX the decision
 * fails closed instead of matching: "no match" could skip a deny rule. */
static bool glob_eval(const struct policy_glob *g, struct call *call, const struct cdt_arg *a)
{
	if (!g->literal && a->v.str.len > POLICY_GLOB_VALUE_MAX) {
		call->too_long = true;
		return false;
	}
	return policy_glob_match(g, a->v.str.ptr, a->v.str.len);
}

static bool cons_one(const struct policy_cons *c, struct call *call, size_t idx)
{
	const struct cdt_arg *a = &call->args[idx];
	struct policy_num n;
	switch (c->kind) {
	case POLICY_CONS_GLOB:
	case POLICY_CONS_STRSET:
		if (!call_string(call, idx))
			return false;
		if (c->kind == POLICY_CONS_GLOB)
			return glob_eval(&c->u.glob, call, a);
		for (size_t i = 0; i < c->u.strs.n; i++)
			if (glob_eval(&c->u.strs.v[i], call, a))
				return true;
		return false;
	case POLICY_CONS_RANGE:
		if (!arg_num(a, &n))
			return false;
		{
			int lo = policy_num_cmp(&c->u.range.lo, &n);
			int hi = policy_num_cmp(&n, &c->u.range.hi);
			return (lo == -1 || lo == 0) && (hi == -1 || hi == 0);
		}
	case POLICY_CONS_NUMSET:
		if (!arg_num(a, &n))
			return false;
		for (size_t i = 0; i < c->u.nums.n; i++)
			if (policy_num_cmp(&c->u.nums.v[i], &n) == 0)
				return true;
		return false;
	case POLICY_CONS_LEN: {
		size_t len;
		if (a->type == CDT_TYPE_STRING)
			len = a->v.str.len;
		else if (a->type == CDT_TYPE_BYTES)
			len = a->v.bytes.len;
		else
			return false;
		return len >= c->u.len.lo && len <= c->u.len.hi;
	}
	case POLICY_CONS_BOOL:
		return a->type == CDT_TYPE_BOOL && a->v.b == c->u.b;
	}
	return false;
}

static size_t arg_find(const struct cdt_arg *args, size_t nargs, const char *name)
{
	/* nargs <= CDT_ARGS_MAX and names are short: a scan beats a search. */
	for (size_t i = 0; i < nargs; i++)
		if (args[i].name && strcmp(args[i].name, name) == 0)
			return i;
	return SIZE_MAX;
}

static size_t cons_fail(const struct policy_cons *cons, size_t ncons, struct call *call)
{
	for (size_t i = 0; i < ncons; i++) {
		size_t idx = arg_find(call->args, call->nargs, cons[i].arg);
		if (idx == SIZE_MAX || !cons_one(&cons[i], call, idx))
			return i;
	}
	return ncons;
}

size_t policy_cons_first_failure(const struct policy_cons *cons, size_t ncons,
				 const struct cdt_arg *args, size_t nargs)
{
	struct call call = {.args = args, .nargs = nargs};
	if (nargs && !args)
		return 0;
	return cons_fail(cons, ncons, &call);
}

bool policy_cons_match(const struct policy_cons *cons, size_t ncons, const struct cdt_arg *args,
		       size_t nargs)
{
	return policy_cons_first_failure(cons, ncons, args, nargs) == ncons;
}

/* ---- Decisions ---- */

int policy_state_new(const struct policy *p, struct policy_state **ret_state)
{
	if (!p || !ret_state)
		return -EINVAL;
	size_t n = p->nbuckets, sz;
	if (__builtin_mul_overflow(n, sizeof(struct bucket), &sz) ||
	    __builtin_add_overflow(sz, sizeof(struct policy_state), &sz))
		return -ENOMEM;
	struct policy_state *st = calloc(1, sz);
	if (!st)
		return -ENOMEM;
	st->p = p;
	st->n = n;
	/* Buckets start full: a freshly started layer gets its burst. */
	for (size_t i = 0; i < p->nlayers; i++)
		for (size_t j = 0; j < p->layers[i].nrules; j++) {
			const struct policy_rule *r = &p->layers[i].rules[j];
			if (r->has_rate && r->bucket < n)
				st->b[r->bucket].tokens = r->burst * r->rate_period_ns;
		}
	*ret_state = st;
	return 0;
}

void policy_state_free(struct policy_state *st)
{
	free(st);
}

/* Take one token; false when the bucket is empty.  Tokens are counted in
 * units of 1/period_ns of a call, so refill is elapsed * rate_n exactly;
 * burst * period <= 10^6 * 24h in ns fits in 64 bits. */
static bool bucket_take(struct bucket *b, const struct policy_rule *r, uint64_t now_ns)
{
	uint64_t cap = r->burst * r->rate_period_ns;
	if (now_ns > b->last_ns) {
		uint64_t elapsed = now_ns - b->last_ns;
		uint64_t room = cap - b->tokens;
		/* room / rate_n is how long a full refill takes */
		if (elapsed >= room / r->rate_n + 1)
			b->tokens = cap;
		else
			b->tokens += elapsed * r->rate_n;
		if (b->tokens > cap)
			b->tokens = cap;
	}
	/* A clock that goes back refills nothing and does not move last_ns:
	 * time already credited is never credited twice. */
	if (now_ns > b->last_ns)
		b->last_ns = now_ns;
	if (b->tokens < r->rate_period_ns)
		return false;
	b->tokens -= r->rate_period_ns;
	return true;
}

static const struct policy_method_entry *method_find(const struct policy_layer *L,
						     const char *method, size_t len)
{
	const struct policy_method_index *ix = L->index;
	if (!ix || !ix->nentries)
		return NULL;
	for (uint32_t h = policy_hash(method, len);; h++) {
		uint32_t s = ix->slots[h & ix->mask];
		if (!s)
			return NULL;
		const struct policy_method_entry *e = &ix->entries[s - 1];
		if (e->len == len && memcmp(e->method, method, len) == 0)
			return e;
	}
}

static const struct policy_lit_group *group_find(const struct policy_lit_group *groups,
						 const uint32_t *slots, size_t mask, const char *s,
						 size_t len)
{
	for (uint32_t h = policy_hash(s, len);; h++) {
		uint32_t slot = slots[h & mask];
		if (!slot)
			return NULL;
		const struct policy_lit_group *g = &groups[slot - 1];
		if (g->len == len && memcmp(g->lit, s, len) == 0)
			return g;
	}
}

/* The first rule of the method that matches the call.  With a literal
 * index (link.c), only rules whose literal on the key argument equals the
 * call's value, and rules without such a literal, can match: walk both
 * position-ordered lists together so the first match is still the first in
 * the file. */
static const struct policy_rule *first_match(const struct policy_method_entry *e, struct call *call)
{
	if (!e->key_arg) {
		for (size_t i = 0; i < e->nrules && !call->too_long; i++)
			if (cons_fail(e->rules[i]->cons, e->rules[i]->ncons, call) ==
			    e->rules[i]->ncons)
				return e->rules[i];
		return NULL;
	}
	/* Position lists that may hold the first match: the exact-string
	 * group of the value, one prefix group per indexed prefix length,
	 * and the rules outside the index. */
	const uint32_t *list[POLICY_PREFIX_LENS + 2];
	size_t len[POLICY_PREFIX_LENS + 2], at[POLICY_PREFIX_LENS + 2] = {0}, nl = 0;
	list[nl] = e->other;
	len[nl++] = e->nother;
	size_t k = arg_find(call->args, call->nargs, e->key_arg);
	if (k != SIZE_MAX && call_string(call, k)) {
		const char *v = call->args[k].v.str.ptr;
		size_t vlen = call->args[k].v.str.len;
		const struct policy_lit_group *g =
			group_find(e->groups, e->lit_slots, e->lit_mask, v, vlen);
		if (g) {
			list[nl] = g->pos;
			len[nl++] = g->n;
		}
		for (size_t i = 0; i < e->nprefix_lens && e->prefix_lens[i] <= vlen; i++) {
			g = group_find(e->pgroups, e->p_slots, e->p_mask, v, e->prefix_lens[i]);
			if (g) {
				list[nl] = g->pos;
				len[nl++] = g->n;
			}
		}
	}
	for (;;) {
		size_t min = SIZE_MAX;
		for (size_t i = 0; i < nl; i++)
			if (at[i] < len[i] &&
			    (min == SIZE_MAX || list[i][at[i]] < list[min][at[min]]))
				min = i;
		if (min == SIZE_MAX)
			return NULL;
		const struct policy_rule *r = e->rules[list[min][at[min]++]];
		if (cons_fail(r->cons, r->ncons, call) == r->ncons)
			return r;
		if (call->too_long)
			return NULL;
	}
}

int policy_decide(const struct policy *p, struct policy_state *st, const char *layer,
		  const char *method, const struct cdt_arg *args, size_t nargs, uint64_t now_ns,
		  struct policy_decision *ret)
{
	if (!p || !st || st->p != p || !layer || !method || (nargs && !args) || !ret)
		return -EINVAL;
	const struct policy_layer *L = policy_layer(p, layer);
	if (!L)
		return -ENOENT;
	struct policy_decision d = {
		.verdict = POLICY_DENY,
		.logonly = L->logonly,
		.file = p->name,
		.line = L->line,
		.reason = "no rule matches (default deny)",
	};
	bool canonical = nargs <= CDT_ARGS_MAX;
	for (size_t i = 0; canonical && i < nargs; i++)
		if (!args[i].name || (i && strcmp(args[i - 1].name, args[i].name) >= 0))
			canonical = false;
	size_t mlen = strlen(method);
	const struct policy_method_entry *e = canonical ? method_find(L, method, mlen) : NULL;
	if (!canonical)
		d.reason = "arguments not in canonical order (denied)";
	struct call call = {.args = args, .nargs = nargs};
	const struct policy_rule *r = e ? first_match(e, &call) : NULL;
	if (call.too_long) {
		r = NULL;
		d.reason = "a string argument is too long to match a pattern (denied)";
	}
	if (r) {
		d.rule = r;
		d.rule_id = r->id;
		d.line = r->line;
		d.logonly = L->logonly || r->log;
		if (!r->allow) {
			d.verdict = POLICY_DENY;
			d.reason = "denied by rule";
		} else if (r->has_rate && r->bucket < st->n &&
			   !bucket_take(&st->b[r->bucket], r, now_ns)) {
			d.verdict = POLICY_RATE_LIMITED;
			d.reason = "rate limit exceeded";
		} else {
			d.verdict = POLICY_ALLOW;
			d.reason = "allowed by rule";
		}
	}
	if (!d.rule)
		d.rule_id = L->default_rule_id;
	*ret = d;
	return 0;
}

const char *policy_verdict_name(enum policy_verdict v)
{
	switch (v) {
	case POLICY_ALLOW:
		return "allow";
	case POLICY_DENY:
		return "deny";
	case POLICY_RATE_LIMITED:
		return "rate-limited";
	}
	return "?";
}
