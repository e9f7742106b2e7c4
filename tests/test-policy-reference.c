/* SPDX-License-Identifier: MIT */
/*
 * Differential test of the whole path (policy text -> compiler -> index ->
 * matcher) against an independent model: random rules are generated as
 * data, printed as policy text, compiled, and every random call's deciding
 * rule is compared with the model's first match.  The model matches globs
 * recursively on characters and compares numbers as (128-bit floor,
 * fraction) pairs, exact for every i64, u64 and finite double it meets
 * (long double would be simpler, but valgrind computes it in 64 bits).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy-int.h" /* to count the rule sets the index covers */

static uint64_t rs = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (uint32_t)(rs % n);
}

/* ---- the model ---- */

enum mk { M_GLOB, M_RANGE, M_NSET, M_SSET, M_LEN, M_BOOL };

/* A pattern is a list of elements: a character (a, b, é, '.', or a literal
 * '*'), STAR (any run) or ANY (one character). */
enum { E_STAR = -1, E_ANY = -2 };
struct pat {
	int e[6];
	int n;
};

struct num {
	int type; /* CDT_TYPE_I64, _U64, _DOUBLE */
	int64_t i;
	uint64_t u;
	double d;
};

struct mcons {
	int arg; /* 0..2: a, b, c */
	enum mk kind;
	struct pat p[3];
	int np;
	struct num lo, hi, set[3];
	bool lo_open, hi_open;
	int nset;
	uint64_t len_lo, len_hi;
	bool b;
};

struct mrule {
	bool allow;
	int method; /* 0: m.x, 1: m.y */
	struct mcons c[3];
	int nc;
};

static const char *const chars[] = {"a", "b", "\xc3\xa9", ".", "*"};
static const char *const argn[] = {"a", "b", "c"};

/* A number as class (-1: -inf, 0: finite, 1: +inf, 2: NaN), floor and
 * fraction in [0, 1). */
struct rn {
	int cls;
	__int128 ip;
	double fr;
};

static struct rn rn_of(const struct num *n)
{
	struct rn r = {0, 0, 0};
	if (n->type == CDT_TYPE_I64) {
		r.ip = n->i;
	} else if (n->type == CDT_TYPE_U64) {
		r.ip = n->u;
	} else if (isnan(n->d)) {
		r.cls = 2;
	} else if (isinf(n->d)) {
		r.cls = n->d < 0 ? -1 : 1;
	} else {
		double f = floor(n->d); /* |d| < 2^100 here: exact as __int128 */
		r.ip = (__int128)f;
		r.fr = n->d - f;
	}
	return r;
}

/* -1, 0, 1, or 2 when unordered. */
static int rn_cmp(const struct num *a, const struct num *b)
{
	struct rn x = rn_of(a), y = rn_of(b);
	if (x.cls == 2 || y.cls == 2)
		return 2;
	if (x.cls != y.cls)
		return x.cls < y.cls ? -1 : 1;
	if (x.cls != 0)
		return 0;
	if (x.ip != y.ip)
		return x.ip < y.ip ? -1 : 1;
	return x.fr < y.fr ? -1 : x.fr > y.fr;
}

static struct num pool_num(void)
{
	static const struct num pool[] = {
		{CDT_TYPE_I64, -5, 0, 0},
		{CDT_TYPE_I64, -1, 0, 0},
		{CDT_TYPE_I64, 0, 0, 0},
		{CDT_TYPE_I64, 1, 0, 0},
		{CDT_TYPE_I64, 80, 0, 0},
		{CDT_TYPE_I64, 120, 0, 0},
		{CDT_TYPE_I64, INT64_MAX, 0, 0},
		{CDT_TYPE_I64, INT64_MIN, 0, 0},
		{CDT_TYPE_U64, 0, UINT64_MAX, 0},
		{CDT_TYPE_U64, 0, (uint64_t)INT64_MAX + 1, 0},
		{CDT_TYPE_DOUBLE, 0, 0, 0.5},
		{CDT_TYPE_DOUBLE, 0, 0, 2.5},
		{CDT_TYPE_DOUBLE, 0, 0, -1.5},
		{CDT_TYPE_DOUBLE, 0, 0, 1e19},
		{CDT_TYPE_DOUBLE, 0, 0, 120.000001},
		{CDT_TYPE_DOUBLE, 0, 0, 9223372036854775808.0},
	};
	return pool[rnd(sizeof(pool) / sizeof(pool[0]))];
}

static void num_text(char *b, size_t cap, const struct num *n)
{
	if (n->type == CDT_TYPE_I64)
		snprintf(b, cap, "%lld", (long long)n->i);
	else if (n->type == CDT_TYPE_U64)
		snprintf(b, cap, "%llu", (unsigned long long)n->u);
	else
		snprintf(b, cap, "%.17g", n->d);
}

/* Recursive glob over the characters of s (s as element codes). */
static bool pat_match(const int *p, int np, const int *s, int ns)
{
	if (np == 0)
		return ns == 0;
	if (p[0] == E_STAR)
		return pat_match(p + 1, np - 1, s, ns) ||
		       (ns > 0 && pat_match(p, np, s + 1, ns - 1));
	if (ns == 0)
		return false;
	if (p[0] == E_ANY || p[0] == s[0])
		return pat_match(p + 1, np - 1, s + 1, ns - 1);
	return false;
}

struct mval {
	int type; /* 0: absent, CDT_TYPE_* */
	int s[6];
	int ns;
	bool dirty; /* contains NUL or invalid UTF-8: matches no string constraint */
	size_t bytes;
	struct num n;
	bool b;
};

static bool mcons_holds(const struct mcons *c, const struct mval *v)
{
	if (v->type == 0)
		return false;
	switch (c->kind) {
	case M_GLOB:
	case M_SSET:
		if (v->type != CDT_TYPE_STRING || v->dirty)
			return false;
		for (int i = 0; i < c->np; i++)
			if (pat_match(c->p[i].e, c->p[i].n, v->s, v->ns))
				return true;
		return false;
	case M_RANGE:
	case M_NSET: {
		if (v->type != CDT_TYPE_I64 && v->type != CDT_TYPE_U64 &&
		    v->type != CDT_TYPE_DOUBLE)
			return false;
		if (c->kind == M_RANGE) {
			int lo = c->lo_open ? -1 : rn_cmp(&c->lo, &v->n);
			int hi = c->hi_open ? -1 : rn_cmp(&v->n, &c->hi);
			if (isnan(v->n.d) && v->n.type == CDT_TYPE_DOUBLE)
				return false;
			return (lo == -1 || lo == 0) && (hi == -1 || hi == 0);
		}
		for (int i = 0; i < c->nset; i++)
			if (rn_cmp(&c->set[i], &v->n) == 0)
				return true;
		return false;
	}
	case M_LEN:
		if (v->type != CDT_TYPE_STRING && v->type != CDT_TYPE_BYTES)
			return false;
		return v->bytes >= c->len_lo && v->bytes <= c->len_hi;
	case M_BOOL:
		return v->type == CDT_TYPE_BOOL && v->b == c->b;
	}
	return false;
}

/* ---- generating ---- */

static void gen_pat(struct pat *p, bool glob)
{
	p->n = (int)rnd(4) + (glob ? 1 : 0);
	for (int i = 0; i < p->n; i++) {
		uint32_t r = rnd(glob ? 8 : 5);
		p->e[i] = r < 5 ? (int)r : r == 5 ? E_STAR : E_ANY;
	}
}

static size_t pat_text(char *b, const struct pat *p)
{
	size_t o = 0;
	b[o++] = '"';
	for (int i = 0; i < p->n; i++) {
		const char *t = p->e[i] == E_STAR  ? "*"
				: p->e[i] == E_ANY ? "?"
				: p->e[i] == 4	   ? "\\*"
						   : chars[p->e[i]];
		memcpy(b + o, t, strlen(t));
		o += strlen(t);
	}
	b[o++] = '"';
	b[o] = '\0';
	return o;
}

static void gen_cons(struct mcons *c, int arg)
{
	memset(c, 0, sizeof(*c));
	c->arg = arg;
	/* argument a leans to strings, so many rule sets get an index */
	c->kind = arg == 0 && rnd(3) ? (rnd(3) ? M_GLOB : M_SSET) : (enum mk)rnd(6);
	switch (c->kind) {
	case M_GLOB:
		c->np = 1;
		gen_pat(&c->p[0], rnd(2));
		break;
	case M_SSET:
		c->np = 1 + (int)rnd(3);
		for (int i = 0; i < c->np; i++) {
			gen_pat(&c->p[i], rnd(2));
			for (int k = 0; k < i; k++) /* no duplicate members */
				if (c->p[k].n == c->p[i].n &&
				    memcmp(c->p[k].e, c->p[i].e, sizeof(int) * (size_t)c->p[i].n) ==
					    0)
					c->np = i;
		}
		break;
	case M_RANGE:
		c->lo = pool_num();
		c->hi = pool_num();
		if (rn_cmp(&c->lo, &c->hi) == 1) {
			struct num t = c->lo;
			c->lo = c->hi;
			c->hi = t;
		}
		c->lo_open = rnd(5) == 0;
		c->hi_open = !c->lo_open && rnd(5) == 0;
		break;
	case M_NSET:
		c->nset = 1 + (int)rnd(3);
		for (int i = 0; i < c->nset; i++) {
			c->set[i] = pool_num();
			for (int k = 0; k < i; k++)
				if (rn_cmp(&c->set[k], &c->set[i]) == 0)
					c->nset = i;
		}
		break;
	case M_LEN:
		c->len_lo = rnd(4);
		c->len_hi = c->len_lo + rnd(6);
		break;
	case M_BOOL:
		c->b = rnd(2);
		break;
	}
}

static size_t cons_text(char *b, const struct mcons *c)
{
	char n1[64], n2[64];
	size_t o = (size_t)sprintf(b, " %s ", argn[c->arg]);
	switch (c->kind) {
	case M_GLOB:
		o += pat_text(b + o, &c->p[0]);
		break;
	case M_SSET:
		b[o++] = '{';
		for (int i = 0; i < c->np; i++) {
			if (i)
				o += (size_t)sprintf(b + o, ", ");
			o += pat_text(b + o, &c->p[i]);
		}
		o += (size_t)sprintf(b + o, "}");
		break;
	case M_RANGE:
		num_text(n1, sizeof(n1), &c->lo);
		num_text(n2, sizeof(n2), &c->hi);
		o += (size_t)sprintf(b + o, "%s..%s", c->lo_open ? "" : n1, c->hi_open ? "" : n2);
		break;
	case M_NSET:
		b[o++] = '{';
		for (int i = 0; i < c->nset; i++) {
			num_text(n1, sizeof(n1), &c->set[i]);
			o += (size_t)sprintf(b + o, "%s%s", i ? ", " : "", n1);
		}
		o += (size_t)sprintf(b + o, "}");
		break;
	case M_LEN:
		o += (size_t)sprintf(b + o, "len %llu..%llu", (unsigned long long)c->len_lo,
				     (unsigned long long)c->len_hi);
		break;
	case M_BOOL:
		o += (size_t)sprintf(b + o, "%s", c->b ? "true" : "false");
		break;
	}
	b[o] = '\0';
	return o;
}

static void gen_val(struct mval *v)
{
	memset(v, 0, sizeof(*v));
	uint32_t r = rnd(10);
	if (r == 0)
		return; /* absent */
	if (r <= 4) {
		v->type = CDT_TYPE_STRING;
		v->ns = (int)rnd(5);
		for (int i = 0; i < v->ns; i++) {
			v->s[i] = (int)rnd(5);
			v->bytes += strlen(chars[v->s[i]]);
		}
		if (rnd(10) == 0) {
			v->dirty = true; /* a NUL or a stray byte appended */
			v->bytes += 1;
		}
	} else if (r <= 7) {
		v->n = pool_num();
		if (rnd(8) == 0)
			v->n = (struct num){CDT_TYPE_DOUBLE, 0, 0, rnd(2) ? NAN : INFINITY};
		v->type = v->n.type;
	} else if (r == 8) {
		v->type = CDT_TYPE_BOOL;
		v->b = rnd(2);
	} else {
		v->type = CDT_TYPE_BYTES;
		v->bytes = rnd(8);
	}
}

static void test_reference(void **state)
{
	(void)state;
	static char text[1 << 16];
	static char seen[40][1024];
	bool seen_allow[40];
	size_t compared = 0, matched = 0, indexed = 0;
	for (int round = 0; round < 40; round++) {
		struct mrule rules[40];
		struct policy *p = NULL;
		int nr;
		/* Constraints equal in value but written differently (another
		 * order, 2^63 as an integer and as a double) with opposite
		 * actions are a contradiction the compiler rightly rejects;
		 * the generator cannot see that, so it draws again. */
		for (int tries = 0;; tries++) {
			nr = 8 + (int)rnd(32);
			size_t o = (size_t)sprintf(
				text, "version 1\nlayer io {\n    exec \"/bin/io\"\n"
				      "    provide m.x m.y\n}\nlayer ui {\n    exec \"/bin/ui\"\n");
			for (int i = 0; i < nr; i++) {
				struct mrule *r = &rules[i];
				r->method = rnd(4) == 0;
				r->nc = rnd(8) == 0 ? 0 : 1 + (int)rnd(3);
				int used = 0;
				char *ct = seen[i];
				size_t co = (size_t)sprintf(ct, "m.%c", r->method ? 'y' : 'x');
				for (int k = 0; k < r->nc; k++) {
					/* mostly argument a, so the index has a key */
					int arg = rnd(3) ? 0 : 1 + (int)rnd(2);
					if (used & (1 << arg)) {
						r->nc = k;
						break;
					}
					used |= 1 << arg;
					gen_cons(&r->c[k], arg);
					co += cons_text(ct + co, &r->c[k]);
				}
				/* equal constraint text with opposite actions would be a
				 * contradiction (rejected): keep the earlier action */
				r->allow = rnd(3) != 0;
				for (int k = 0; k < i; k++)
					if (strcmp(seen[k], ct) == 0)
						r->allow = seen_allow[k];
				seen_allow[i] = r->allow;
				o += (size_t)sprintf(text + o, "    %s %s\n",
						     r->allow ? "allow" : "deny", ct);
			}
			o += (size_t)sprintf(text + o, "}\n");
			if (policy_compile_buffer("ref.policy", text, o, NULL, &p) == 0)
				break;
			assert_true(tries < 50);
		}
		const struct policy_layer *L = policy_layer(p, "ui");
		assert_int_equal((int)L->nrules, nr);
		for (size_t e = 0; e < L->index->nentries; e++)
			indexed += L->index->entries[e].key_arg != NULL;
		struct policy_state *st;
		assert_int_equal(policy_state_new(p, &st), 0);
		for (int call = 0; call < 2000; call++) {
			struct mval v[3];
			struct cdt_arg args[3];
			char sbuf[3][32];
			size_t na = 0;
			for (int a = 0; a < 3; a++) {
				gen_val(&v[a]);
				if (!v[a].type)
					continue;
				struct cdt_arg *x = &args[na++];
				*x = (struct cdt_arg){.name = argn[a],
						      .type = (enum cdt_type)v[a].type};
				size_t sl = 0;
				switch (v[a].type) {
				case CDT_TYPE_STRING:
					for (int i = 0; i < v[a].ns; i++) {
						memcpy(sbuf[a] + sl, chars[v[a].s[i]],
						       strlen(chars[v[a].s[i]]));
						sl += strlen(chars[v[a].s[i]]);
					}
					if (v[a].dirty)
						sbuf[a][sl++] = rnd(2) ? '\0' : (char)0xff;
					x->v.str.ptr = sbuf[a];
					x->v.str.len = sl;
					break;
				case CDT_TYPE_BYTES:
					memset(sbuf[a], 'z', v[a].bytes);
					x->v.bytes.ptr = (const uint8_t *)sbuf[a];
					x->v.bytes.len = v[a].bytes;
					break;
				case CDT_TYPE_BOOL:
					x->v.b = v[a].b;
					break;
				case CDT_TYPE_I64:
					x->v.i64 = v[a].n.i;
					break;
				case CDT_TYPE_U64:
					x->v.u64 = v[a].n.u;
					break;
				case CDT_TYPE_DOUBLE:
					x->v.d = v[a].n.d;
					break;
				default:
					break;
				}
			}
			int method = rnd(4) == 0;
			int want = -1;
			for (int i = 0; i < nr && want < 0; i++) {
				if (rules[i].method != method)
					continue;
				bool all = true;
				for (int k = 0; k < rules[i].nc && all; k++)
					all = mcons_holds(&rules[i].c[k], &v[rules[i].c[k].arg]);
				if (all)
					want = i;
			}
			struct policy_decision d;
			assert_int_equal(
				policy_decide(p, st, "ui", method ? "m.y" : "m.x", args, na, 0, &d),
				0);
			int got = d.rule ? (int)(d.rule - L->rules) : -1;
			if (got != want) {
				fprintf(stderr, "%s\nmethod m.%c: model says rule %d, matcher %d\n",
					text, method ? 'y' : 'x', want + 1, got + 1);
				for (size_t i = 0; i < na; i++)
					fprintf(stderr, "  arg %s type %d\n", args[i].name,
						args[i].type);
			}
			assert_int_equal(got, want);
			if (want >= 0)
				assert_int_equal(d.verdict,
						 rules[want].allow ? POLICY_ALLOW : POLICY_DENY);
			compared++;
			matched += want >= 0;
		}
		policy_state_free(st);
		policy_free(p);
	}
	printf("reference: %zu decisions compared, %zu decided by a rule, %zu indexed methods\n",
	       compared, matched, indexed);
	assert_true(matched > compared / 20);
	assert_true(matched < compared);
	assert_true(indexed > 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
