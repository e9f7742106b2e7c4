/* SPDX-License-Identifier: MIT */
/*
 * Rules (`allow` / `deny`), their argument constraints, `subscribe` and
 * `expect` lines, and values written as text.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

static bool glob_from_token(struct parser *ps, const struct token *t, struct policy_glob *g)
{
	bool meta = false;
	size_t len;
	char *s = ps_string(ps, t, true, &len, &meta);
	if (!s)
		return false;
	if (!meta) {
		/* No metacharacter: keep the plain bytes for an exact compare. */
		char *plain = ps_string(ps, t, false, &len, NULL);
		if (!plain)
			return false;
		s = plain;
	}
	g->pat = s;
	g->len = len;
	g->literal = !meta;
	return true;
}

static bool num_from_token(struct parser *ps, const struct token *t, struct policy_num *n)
{
	if (t->kind != TOK_NUMBER) {
		ps_error(ps, t, "expected a number");
		return false;
	}
	int r = num_parse(t->p, t->len, n);
	if (r == -ERANGE) {
		ps_error(ps, t, "number out of range");
		return false;
	}
	if (r < 0) {
		ps_error(ps, t, "malformed number (no units in argument values)");
		return false;
	}
	return true;
}

/* NUMBER, NUMBER..NUMBER, NUMBER.. or ..NUMBER; ps->tok is the first token. */
static bool parse_num_range(struct parser *ps, struct policy_cons *c)
{
	struct token first = ps->tok;
	struct policy_num lo = {.kind = POLICY_NUM_F64, .v.d = -INFINITY};
	struct policy_num hi = {.kind = POLICY_NUM_F64, .v.d = INFINITY};
	bool have_lo = false;
	if (ps->tok.kind == TOK_NUMBER) {
		if (!num_from_token(ps, &ps->tok, &lo))
			return false;
		have_lo = true;
		ps_next(ps);
		if (ps->tok.kind != TOK_RANGE) {
			c->kind = POLICY_CONS_RANGE;
			c->u.range.lo = c->u.range.hi = lo;
			return true;
		}
	}
	/* at '..' */
	ps_next(ps);
	size_t end = ps->tok.off; /* the '..' */
	if (ps->tok.kind == TOK_NUMBER) {
		if (!num_from_token(ps, &ps->tok, &hi))
			return false;
		end = ps->tok.off + ps->tok.len;
		ps_next(ps);
	} else if (!have_lo) {
		ps_error(ps, &first, "a range needs at least one bound");
		return false;
	}
	if (policy_num_cmp(&lo, &hi) == 1) {
		/* underline the whole range */
		diag_at(ps->d, POLICY_SEV_ERROR, first.off, end - first.off, "reversed range");
		return false;
	}
	c->kind = POLICY_CONS_RANGE;
	c->u.range.lo = lo;
	c->u.range.hi = hi;
	return true;
}

static bool parse_len(struct parser *ps, struct policy_cons *c)
{
	ps_next(ps);
	struct token first = ps->tok;
	struct policy_cons r;
	if (first.kind != TOK_NUMBER && first.kind != TOK_RANGE) {
		ps_error(ps, &first, "expected a length or a length range");
		return false;
	}
	if (!parse_num_range(ps, &r))
		return false;
	const struct policy_num *b[2] = {&r.u.range.lo, &r.u.range.hi};
	uint64_t v[2];
	for (int i = 0; i < 2; i++) {
		if (b[i]->kind == POLICY_NUM_F64 && isinf(b[i]->v.d)) {
			v[i] = i ? UINT64_MAX : 0;
		} else if (b[i]->kind == POLICY_NUM_I64 && b[i]->v.i >= 0) {
			v[i] = (uint64_t)b[i]->v.i;
		} else if (b[i]->kind == POLICY_NUM_U64) {
			v[i] = b[i]->v.u;
		} else {
			ps_error(ps, &first, "lengths are non-negative integers");
			return false;
		}
	}
	c->kind = POLICY_CONS_LEN;
	c->u.len.lo = v[0];
	c->u.len.hi = v[1];
	return true;
}

static bool parse_set(struct parser *ps, struct policy_cons *c)
{
	struct token open = ps->tok;
	struct vec nums = {0}, strs = {0};
	ps_next(ps);
	for (;;) {
		struct token t = ps->tok;
		if (t.kind == TOK_NUMBER) {
			struct policy_num n;
			if (!num_from_token(ps, &t, &n))
				return false;
			const struct policy_num *have = nums.v;
			for (size_t i = 0; i < nums.n; i++)
				if (policy_num_cmp(&have[i], &n) == 0) {
					ps_error(ps, &t, "duplicate set member");
					return false;
				}
			struct policy_num *slot =
				vec_push(ps->a, &nums, sizeof(n), _Alignof(struct policy_num));
			if (!slot)
				return false;
			*slot = n;
		} else if (t.kind == TOK_STRING) {
			struct policy_glob g;
			if (!glob_from_token(ps, &t, &g))
				return false;
			const struct policy_glob *have = strs.v;
			for (size_t i = 0; i < strs.n; i++)
				if (have[i].len == g.len && have[i].literal == g.literal &&
				    memcmp(have[i].pat, g.pat, g.len) == 0) {
					ps_error(ps, &t, "duplicate set member");
					return false;
				}
			struct policy_glob *slot =
				vec_push(ps->a, &strs, sizeof(g), _Alignof(struct policy_glob));
			if (!slot)
				return false;
			*slot = g;
		} else if (t.kind == TOK_RBRACE && nums.n + strs.n == 0) {
			ps_error(ps, &open, "empty set");
			return false;
		} else {
			ps_error(ps, &t, "expected a number or a quoted string in the set");
			return false;
		}
		if (nums.n && strs.n) {
			ps_error(ps, &t, "a set mixes numbers and strings");
			return false;
		}
		if (nums.n + strs.n > POLICY_SET_MAX) {
			ps_error(ps, &t, "more than %d set members", POLICY_SET_MAX);
			return false;
		}
		ps_next(ps);
		if (ps->tok.kind == TOK_RBRACE)
			break;
		if (ps->tok.kind != TOK_COMMA) {
			ps_error(ps, &ps->tok, "expected ',' or '}'");
			return false;
		}
		ps_next(ps);
	}
	ps_next(ps);
	if (nums.n) {
		c->kind = POLICY_CONS_NUMSET;
		c->u.nums.v = nums.v;
		c->u.nums.n = nums.n;
	} else {
		c->kind = POLICY_CONS_STRSET;
		c->u.strs.v = strs.v;
		c->u.strs.n = strs.n;
	}
	return true;
}

/* Is the word at ps->tok the start of the rule's tail (rate / log)? */
static bool at_rule_tail(struct parser *ps)
{
	const struct token *t = &ps->tok;
	if (ps_word_is(t, "rate")) {
		const struct token *n = ps_peek(ps);
		return n->kind == TOK_NUMBER;
	}
	if (ps_word_is(t, "log")) {
		const struct token *n = ps_peek(ps);
		return n->kind == TOK_NL || n->kind == TOK_EOF || ps_word_is(n, "rate");
	}
	return false;
}

/* ARG VALUE pairs until the end of line or the rule's tail. */
static bool parse_constraints(struct parser *ps, bool tail_ok, const struct policy_cons **ret,
			      size_t *ret_n)
{
	struct vec v = {0};
	while (!ps_at_eol(ps) && !(tail_ok && at_rule_tail(ps))) {
		struct token name = ps->tok;
		if (name.kind != TOK_WORD || !name_is_arg(name.p, name.len)) {
			ps_error(ps, &name, "expected an argument name ([a-z_][a-z0-9_]*)");
			return false;
		}
		if (v.n >= POLICY_CONS_MAX) {
			ps_error(ps, &name, "more than %d argument constraints", POLICY_CONS_MAX);
			return false;
		}
		struct policy_cons *c =
			vec_push(ps->a, &v, sizeof(*c), _Alignof(struct policy_cons));
		if (!c || !(c->arg = arena_strndup(ps->a, name.p, name.len)))
			return false;
		c->line = name.line;
		c->col = name.col;
		c->off = name.off;
		ps_next(ps);
		struct token t = ps->tok;
		if (t.kind == TOK_STRING) {
			if (!glob_from_token(ps, &t, &c->u.glob))
				return false;
			c->kind = POLICY_CONS_GLOB;
			ps_next(ps);
		} else if (t.kind == TOK_NUMBER || t.kind == TOK_RANGE) {
			if (!parse_num_range(ps, c))
				return false;
		} else if (t.kind == TOK_LBRACE) {
			if (!parse_set(ps, c))
				return false;
		} else if (ps_word_is(&t, "true") || ps_word_is(&t, "false")) {
			c->kind = POLICY_CONS_BOOL;
			c->u.b = ps_word_is(&t, "true");
			ps_next(ps);
		} else if (ps_word_is(&t, "len")) {
			if (!parse_len(ps, c))
				return false;
		} else {
			ps_error(ps, &t,
				 "expected a value for argument '%s' (\"glob\", range, {set}, "
				 "true, false or len)",
				 c->arg);
			return false;
		}
	}
	*ret = v.v;
	*ret_n = v.n;
	return true;
}

static bool parse_rate(struct parser *ps, struct policy_rule *r)
{
	ps_next(ps); /* 'rate' */
	struct token n = ps->tok;
	uint64_t count;
	struct policy_num num;
	if (num_parse(n.p, n.len, &num) < 0 || num.kind != POLICY_NUM_I64 || num.v.i < 0) {
		ps_error(ps, &n, "expected a whole number of calls, as in 'rate 2/s'");
		return false;
	}
	count = (uint64_t)num.v.i;
	if (count == 0) {
		ps_error(ps, &n, "zero rate (use deny to forbid a call)");
		return false;
	}
	if (count > POLICY_RATE_MAX) {
		ps_error(ps, &n, "rate over %u per period", POLICY_RATE_MAX);
		return false;
	}
	ps_next(ps);
	if (ps->tok.kind != TOK_SLASH) {
		ps_error(ps, &ps->tok, "expected '/' as in 'rate 2/s'");
		return false;
	}
	ps_next(ps);
	struct token per = ps->tok;
	uint64_t period;
	if (ps_word_is(&per, "s"))
		period = 1000000000ull;
	else if (ps_word_is(&per, "m"))
		period = 60000000000ull;
	else if (ps_word_is(&per, "h"))
		period = 3600000000000ull;
	else if (per.kind == TOK_NUMBER) {
		if (!ps_parse_duration(ps, &per, &period))
			return false;
		if (period == 0) {
			ps_error(ps, &per, "zero rate period");
			return false;
		}
	} else {
		ps_error(ps, &per, "expected s, m, h or a duration after '/'");
		return false;
	}
	uint64_t cap;
	if (__builtin_mul_overflow(count, period, &cap)) {
		ps_error(ps, &per, "rate period too long for this rate");
		return false;
	}
	r->has_rate = true;
	r->rate_n = count;
	r->rate_period_ns = period;
	r->burst = count;
	ps_next(ps);
	if (ps_word_is(&ps->tok, "burst")) {
		ps_next(ps);
		struct token b = ps->tok;
		if (num_parse(b.p, b.len, &num) < 0 || b.kind != TOK_NUMBER ||
		    num.kind != POLICY_NUM_I64 || num.v.i <= 0 || num.v.i > POLICY_RATE_MAX) {
			ps_error(ps, &b, "burst must be 1..%u", POLICY_RATE_MAX);
			return false;
		}
		/* The bucket counts burst * period in ns (match.c). */
		if (__builtin_mul_overflow((uint64_t)num.v.i, period, &cap)) {
			ps_error(ps, &b, "burst times the rate period is over 2^64 ns");
			return false;
		}
		r->burst = (uint64_t)num.v.i;
		ps_next(ps);
	}
	return true;
}

bool parse_rule(struct parser *ps, struct layer_build *lb, bool allow)
{
	struct token kw = ps->tok;
	ps_next(ps);
	struct token m = ps->tok;
	if (m.kind != TOK_WORD || !name_is_method(m.p, m.len)) {
		ps_error(ps, &m, "expected a method name (like tag.write)");
		return false;
	}
	if (ps->nrules >= POLICY_RULES_MAX) {
		if (!ps->too_many_rules)
			ps_error(ps, &kw, "more than %d rules", POLICY_RULES_MAX);
		ps->too_many_rules = true;
		return false;
	}
	struct policy_rule *r =
		vec_push(ps->a, &lb->rules, sizeof(*r), _Alignof(struct policy_rule));
	if (!r)
		return false;
	r->allow = allow;
	r->layer = lb->L->spec.name;
	r->line = kw.line;
	r->col = kw.col;
	r->off = kw.off;
	r->method_off = m.off;
	if (!(r->method = arena_strndup(ps->a, m.p, m.len)))
		return false;
	ps_next(ps);
	if (!parse_constraints(ps, true, &r->cons, &r->ncons))
		goto fail;
	if (ps_word_is(&ps->tok, "rate")) {
		if (!allow) {
			ps_error(ps, &ps->tok, "a deny rule has no rate");
			goto fail;
		}
		if (!parse_rate(ps, r))
			goto fail;
	}
	if (ps_word_is(&ps->tok, "log")) {
		r->log = true;
		ps_next(ps);
	}
	if (!ps_expect_eol(ps))
		goto fail;
	char id[POLICY_LAYER_NAME_MAX + 24];
	snprintf(id, sizeof(id), "%s#%zu", lb->L->spec.name, lb->rules.n);
	if (!(r->id = arena_strndup(ps->a, id, strlen(id))))
		return false;
	r->bucket = r->has_rate ? ps->nbuckets++ : SIZE_MAX;
	ps->nrules++;
	return true;
fail:
	lb->rules.n--; /* a rule with an error is not kept */
	return false;
}

bool parse_subscribe(struct parser *ps, struct layer_build *lb)
{
	struct token kw = ps->tok;
	ps_next(ps);
	struct token ev = ps->tok;
	if (ev.kind != TOK_WORD || !name_is_method(ev.p, ev.len)) {
		ps_error(ps, &ev, "expected an event name (like tag.changed)");
		return false;
	}
	if (lb->subs.n >= POLICY_LIST_MAX) {
		ps_error(ps, &kw, "more than %d subscriptions", POLICY_LIST_MAX);
		return false;
	}
	struct policy_subscription *s =
		vec_push(ps->a, &lb->subs, sizeof(*s), _Alignof(struct policy_subscription));
	if (!s || !(s->event = arena_strndup(ps->a, ev.p, ev.len)))
		return false;
	s->line = kw.line;
	s->off = ev.off;
	ps_next(ps);
	if (!parse_constraints(ps, false, &s->cons, &s->ncons)) {
		lb->subs.n--;
		return false;
	}
	return true;
}

static int arg_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cdt_arg *)a)->name, ((const struct cdt_arg *)b)->name);
}

bool parse_expect(struct parser *ps)
{
	struct token kw = ps->tok;
	if (ps->expects.n >= POLICY_EXPECT_MAX) {
		ps_error(ps, &kw, "more than %d expect lines", POLICY_EXPECT_MAX);
		return false;
	}
	ps_next(ps);
	struct token v = ps->tok;
	int verdict;
	if (ps_word_is(&v, "allow"))
		verdict = POLICY_ALLOW;
	else if (ps_word_is(&v, "deny"))
		verdict = POLICY_DENY;
	else if (ps_word_is(&v, "rate-limited"))
		verdict = POLICY_RATE_LIMITED;
	else {
		ps_error(ps, &v, "expected allow, deny or rate-limited");
		return false;
	}
	ps_next(ps);
	struct token layer = ps->tok;
	if (layer.kind != TOK_WORD) {
		ps_error(ps, &layer, "expected a layer name");
		return false;
	}
	ps_next(ps);
	struct token m = ps->tok;
	if (m.kind != TOK_WORD || !name_is_method(m.p, m.len)) {
		ps_error(ps, &m, "expected a method name");
		return false;
	}
	ps_next(ps);
	struct vec args = {0};
	while (!ps_at_eol(ps)) {
		struct token name = ps->tok;
		if (name.kind != TOK_WORD || !name_is_arg(name.p, name.len)) {
			ps_error(ps, &name, "expected NAME=VALUE");
			return false;
		}
		ps_next(ps);
		if (ps->tok.kind != TOK_EQ) {
			ps_error(ps, &ps->tok, "expected '=' after the argument name");
			return false;
		}
		ps_next(ps);
		struct token val = ps->tok;
		if (val.kind != TOK_STRING && val.kind != TOK_NUMBER && val.kind != TOK_WORD) {
			ps_error(ps, &val, "expected a value");
			return false;
		}
		if (args.n >= CDT_ARGS_MAX) {
			ps_error(ps, &name, "more than %d arguments", CDT_ARGS_MAX);
			return false;
		}
		struct cdt_arg *a = vec_push(ps->a, &args, sizeof(*a), _Alignof(struct cdt_arg));
		if (!a)
			return false;
		size_t cap = val.len + 1;
		char *buf = arena_alloc(ps->a, cap, 1);
		if (!buf || !(a->name = arena_strndup(ps->a, name.p, name.len)))
			return false;
		int r = policy_value_parse(val.p, val.len, false, buf, cap, a);
		if (r < 0) {
			ps_error(ps, &val,
				 r == -ERANGE ? "number out of range"
					      : "expected a quoted string, number, true, false, "
						"nan or inf");
			return false;
		}
		const struct cdt_arg *have = args.v;
		for (size_t i = 0; i + 1 < args.n; i++)
			if (strcmp(have[i].name, a->name) == 0) {
				ps_error(ps, &name, "argument '%s' given twice", a->name);
				return false;
			}
		ps_next(ps);
	}
	if (args.n > 1)
		qsort(args.v, args.n, sizeof(struct cdt_arg), arg_cmp);
	struct policy_expect *e =
		vec_push(ps->a, &ps->expects, sizeof(*e), _Alignof(struct policy_expect));
	if (!e)
		return false;
	e->verdict = verdict;
	e->line = kw.line;
	e->col = kw.col;
	e->off = kw.off;
	e->layer_off = layer.off;
	e->args = args.v;
	e->nargs = args.n;
	if (!(e->layer = arena_strndup(ps->a, layer.p, layer.len)) ||
	    !(e->method = arena_strndup(ps->a, m.p, m.len)))
		return false;
	return true;
}

static bool text_is(const char *t, size_t len, const char *w)
{
	return strlen(w) == len && memcmp(t, w, len) == 0;
}

int policy_value_parse(const char *text, size_t len, bool bare_strings, char *buf, size_t cap,
		       struct cdt_arg *ret_arg)
{
	struct cdt_arg a = *ret_arg;
	if (len >= 2 && text[0] == '"' && text[len - 1] == '"') {
		if (cap == 0)
			return -ENOBUFS;
		long n = str_decode(text, len, false, buf, cap - 1, NULL);
		if (n < 0)
			return n == -ENOBUFS ? -ENOBUFS : -EINVAL;
		buf[n] = '\0';
		a.type = CDT_TYPE_STRING;
		a.v.str.ptr = buf;
		a.v.str.len = (size_t)n;
	} else if (text_is(text, len, "true") || text_is(text, len, "false")) {
		a.type = CDT_TYPE_BOOL;
		a.v.b = text[0] == 't';
	} else if (text_is(text, len, "nan") || text_is(text, len, "inf") ||
		   text_is(text, len, "-inf")) {
		a.type = CDT_TYPE_DOUBLE;
		a.v.d = text[0] == 'n' ? NAN : text[0] == '-' ? -INFINITY : INFINITY;
	} else {
		struct policy_num n;
		int r = len ? num_parse(text, len, &n) : -EINVAL;
		if (r == 0) {
			if (n.kind == POLICY_NUM_I64) {
				a.type = CDT_TYPE_I64;
				a.v.i64 = n.v.i;
			} else if (n.kind == POLICY_NUM_U64) {
				a.type = CDT_TYPE_U64;
				a.v.u64 = n.v.u;
			} else {
				a.type = CDT_TYPE_DOUBLE;
				a.v.d = n.v.d;
			}
		} else if (!bare_strings || r == -ERANGE) {
			return r;
		} else {
			if (len >= cap)
				return -ENOBUFS;
			if (memchr(text, '\0', len))
				return -EINVAL;
			memcpy(buf, text, len);
			buf[len] = '\0';
			a.type = CDT_TYPE_STRING;
			a.v.str.ptr = buf;
			a.v.str.len = len;
		}
	}
	*ret_arg = a;
	return 0;
}
