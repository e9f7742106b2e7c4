/* SPDX-License-Identifier: MIT */
/*
 * Policy parser: the file's statements and the directives of a layer block.
 * Every statement is one line, which makes error recovery simple: report,
 * skip to the end of the line, go on, so one run shows every error (up to
 * POLICY_ERRORS_MAX).  Rules and expect lines are in parse-rule.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "parse.h"

void *vec_push(struct arena *a, struct vec *v, size_t size, size_t align)
{
	if (v->n == v->cap) {
		size_t ncap = v->cap ? v->cap * 2 : 4;
		void *nv = arena_array(a, ncap, size, align);
		if (!nv)
			return NULL;
		if (v->n)
			memcpy(nv, v->v, v->n * size);
		v->v = nv;
		v->cap = ncap;
	}
	return (uint8_t *)v->v + size * v->n++;
}

void ps_next(struct parser *ps)
{
	if (ps->has_la) {
		ps->tok = ps->la;
		ps->has_la = false;
		return;
	}
	lexer_next(&ps->lx, &ps->tok);
}

const struct token *ps_peek(struct parser *ps)
{
	if (!ps->has_la) {
		lexer_next(&ps->lx, &ps->la);
		ps->has_la = true;
	}
	return &ps->la;
}

void ps_error(struct parser *ps, const struct token *t, const char *fmt, ...)
{
	if (t->kind == TOK_ERROR)
		return; /* the lexer said it already */
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	diag_at(ps->d, POLICY_SEV_ERROR, t->off,
		t->kind == TOK_NL || t->kind == TOK_EOF ? 1 : t->len, "%s", msg);
}

bool ps_at_eol(const struct parser *ps)
{
	return ps->tok.kind == TOK_NL || ps->tok.kind == TOK_EOF;
}

bool ps_word_is(const struct token *t, const char *w)
{
	size_t n = strlen(w);
	return t->kind == TOK_WORD && t->len == n && memcmp(t->p, w, n) == 0;
}

bool ps_expect_eol(struct parser *ps)
{
	if (ps_at_eol(ps))
		return true;
	ps_error(ps, &ps->tok, "unexpected '%.*s' at end of directive",
		 (int)(ps->tok.len > 40 ? 40 : ps->tok.len), ps->tok.p);
	return false;
}

static void ps_skip_line(struct parser *ps)
{
	if (ps_at_eol(ps))
		return;
	if (ps->has_la && (ps->la.kind == TOK_NL || ps->la.kind == TOK_EOF)) {
		ps_next(ps);
		return;
	}
	ps->has_la = false;
	lexer_skip_line(&ps->lx);
	ps_next(ps);
}

static bool ident_char(char c, bool first, bool dash)
{
	if ((c >= 'a' && c <= 'z') || c == '_')
		return true;
	if (first)
		return false;
	return (c >= '0' && c <= '9') || (dash && c == '-');
}

bool name_is_arg(const char *p, size_t len)
{
	if (len == 0 || len > CDT_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!ident_char(p[i], i == 0, false))
			return false;
	return true;
}

bool name_is_method(const char *p, size_t len)
{
	if (len == 0 || len > CDT_NAME_MAX)
		return false;
	size_t seg = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '.') {
			if (seg == 0)
				return false;
			seg = 0;
			continue;
		}
		if (!ident_char(p[i], seg == 0, false))
			return false;
		seg++;
	}
	return seg > 0;
}

bool name_is_layer(const char *p, size_t len)
{
	if (len == 0 || len > POLICY_LAYER_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!ident_char(p[i], i == 0, true))
			return false;
	return true;
}

char *ps_string(struct parser *ps, const struct token *t, bool glob, size_t *ret_len,
		bool *ret_meta)
{
	/* Quoting can double a byte in a glob. */
	size_t cap = 2 * t->len + 1;
	char *buf = arena_alloc(ps->a, cap, 1);
	if (!buf)
		return NULL;
	long n = str_decode(t->p, t->len, glob, buf, cap - 1, ret_meta);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	if (ret_len)
		*ret_len = (size_t)n;
	return buf;
}

/* An absolute path without ".", ".." or empty components, no trailing '/'. */
static bool path_is_clean(const char *s, size_t len)
{
	if (len == 0 || s[0] != '/' || len > 4095)
		return false;
	if (len == 1)
		return true;
	if (s[len - 1] == '/')
		return false;
	for (size_t i = 0; i < len;) {
		size_t j = i + 1;
		while (j < len && s[j] != '/')
			j++;
		size_t cl = j - i - 1;
		if (cl == 0 || (cl == 1 && s[i + 1] == '.') ||
		    (cl == 2 && s[i + 1] == '.' && s[i + 2] == '.'))
			return false;
		i = j;
	}
	return true;
}

char *ps_path(struct parser *ps, const struct token *t)
{
	if (t->kind != TOK_STRING) {
		ps_error(ps, t, "expected a quoted absolute path");
		return NULL;
	}
	size_t len;
	char *s = ps_string(ps, t, false, &len, NULL);
	if (!s)
		return NULL;
	if (!path_is_clean(s, len)) {
		ps_error(ps, t, "path must be absolute, without '.', '..', '//' or a trailing '/'");
		return NULL;
	}
	return s;
}

/* Split "32M" into its number and unit. */
static bool split_unit(const struct token *t, size_t *ret_numlen, const char **ret_unit,
		       size_t *ret_ulen)
{
	if (t->kind != TOK_NUMBER)
		return false;
	size_t i = t->len;
	while (i > 0 && ((t->p[i - 1] >= 'a' && t->p[i - 1] <= 'z') ||
			 (t->p[i - 1] >= 'A' && t->p[i - 1] <= 'Z')))
		i--;
	/* "1e5" is an exponent, not a unit */
	*ret_numlen = i;
	*ret_unit = t->p + i;
	*ret_ulen = t->len - i;
	return i > 0;
}

static bool unit_is(const char *u, size_t ulen, const char *w)
{
	return strlen(w) == ulen && memcmp(u, w, ulen) == 0;
}

static bool ps_uint(struct parser *ps, const struct token *t, size_t numlen, uint64_t *ret)
{
	struct policy_num n;
	int r = num_parse(t->p, numlen, &n);
	if (r == -ERANGE) {
		ps_error(ps, t, "number out of range");
		return false;
	}
	if (r < 0 || n.kind == POLICY_NUM_F64 || (n.kind == POLICY_NUM_I64 && n.v.i < 0) ||
	    t->p[0] == '+') {
		ps_error(ps, t, "expected a non-negative integer");
		return false;
	}
	*ret = n.kind == POLICY_NUM_I64 ? (uint64_t)n.v.i : n.v.u;
	return true;
}

/* A plain count: no unit. */
bool ps_count(struct parser *ps, const struct token *t, uint64_t max, uint64_t *ret)
{
	size_t nl, ul;
	const char *u;
	if (!split_unit(t, &nl, &u, &ul)) {
		ps_error(ps, t, "expected a number");
		return false;
	}
	if (ul) {
		ps_error(ps, t, "unexpected unit '%.*s'", (int)ul, u);
		return false;
	}
	uint64_t v;
	if (!ps_uint(ps, t, nl, &v))
		return false;
	if (v > max) {
		ps_error(ps, t, "%llu is over the limit of %llu", (unsigned long long)v,
			 (unsigned long long)max);
		return false;
	}
	*ret = v;
	return true;
}

bool ps_size(struct parser *ps, const struct token *t, uint64_t *ret)
{
	size_t nl, ul;
	const char *u;
	if (!split_unit(t, &nl, &u, &ul)) {
		ps_error(ps, t, "expected a size such as 32M");
		return false;
	}
	uint64_t v, mul;
	if (!ps_uint(ps, t, nl, &v))
		return false;
	if (ul == 0)
		mul = 1;
	else if (unit_is(u, ul, "K") || unit_is(u, ul, "KiB"))
		mul = 1ull << 10;
	else if (unit_is(u, ul, "M") || unit_is(u, ul, "MiB"))
		mul = 1ull << 20;
	else if (unit_is(u, ul, "G") || unit_is(u, ul, "GiB"))
		mul = 1ull << 30;
	else if (unit_is(u, ul, "T") || unit_is(u, ul, "TiB"))
		mul = 1ull << 40;
	else {
		ps_error(ps, t, "unknown size unit '%.*s' (K, M, G, T)", (int)ul, u);
		return false;
	}
	if (__builtin_mul_overflow(v, mul, ret) || *ret == LAYER_LIMIT_UNSET) {
		ps_error(ps, t, "size out of range");
		return false;
	}
	return true;
}

bool ps_parse_duration(struct parser *ps, const struct token *t, uint64_t *ret_ns)
{
	size_t nl, ul;
	const char *u;
	if (!split_unit(t, &nl, &u, &ul)) {
		ps_error(ps, t, "expected a duration such as 100ms");
		return false;
	}
	uint64_t v, mul;
	if (!ps_uint(ps, t, nl, &v))
		return false;
	if (unit_is(u, ul, "ms"))
		mul = 1000000ull;
	else if (unit_is(u, ul, "s"))
		mul = 1000000000ull;
	else if (unit_is(u, ul, "m"))
		mul = 60000000000ull;
	else if (unit_is(u, ul, "h"))
		mul = 3600000000000ull;
	else {
		ps_error(ps, t,
			 ul ? "unknown duration unit (ms, s, m, h)"
			    : "a duration needs a unit (ms, s, m, h)");
		return false;
	}
	/* Durations are capped at a day: longer ones are typos. */
	if (__builtin_mul_overflow(v, mul, ret_ns) || *ret_ns > 86400000000000ull) {
		ps_error(ps, t, "duration over 24h");
		return false;
	}
	return true;
}

/* ---- File-level statements ---- */

static bool parse_version(struct parser *ps)
{
	struct token kw = ps->tok;
	if (ps->seen_version) {
		ps_error(ps, &kw, "duplicate version");
		return false;
	}
	ps->seen_version = true;
	if (ps->seen_other) {
		ps_error(ps, &kw, "version must be the first statement");
		return false;
	}
	ps_next(ps);
	uint64_t v;
	if (!ps_count(ps, &ps->tok, UINT32_MAX, &v))
		return false;
	if (v != 1) {
		ps_error(ps, &ps->tok, "unsupported policy version %llu (this is version 1)",
			 (unsigned long long)v);
		return false;
	}
	ps_next(ps);
	return ps_expect_eol(ps);
}

static bool parse_audit(struct parser *ps)
{
	if (ps->seen_audit) {
		ps_error(ps, &ps->tok, "duplicate audit");
		return false;
	}
	ps->seen_audit = true;
	struct policy_audit *au = &ps->p->audit;
	au->line = ps->tok.line;
	ps_next(ps);
	au->path = ps_path(ps, &ps->tok);
	if (!au->path)
		return false;
	ps_next(ps);
	bool seen_rotate = false, seen_sync = false;
	while (!ps_at_eol(ps)) {
		struct token kw = ps->tok;
		ps_next(ps);
		if (ps_word_is(&kw, "rotate") && !seen_rotate) {
			seen_rotate = true;
			if (!ps_size(ps, &ps->tok, &au->rotate_size))
				return false;
			if (au->rotate_size < 4096) {
				ps_error(ps, &ps->tok, "rotate size below 4K");
				return false;
			}
		} else if (ps_word_is(&kw, "sync") && !seen_sync) {
			seen_sync = true;
			if (ps_word_is(&ps->tok, "always"))
				au->sync_always = true;
			else if (!ps_word_is(&ps->tok, "batch")) {
				ps_error(ps, &ps->tok, "expected 'always' or 'batch'");
				return false;
			}
		} else {
			ps_error(ps, &kw,
				 "expected 'rotate SIZE' or 'sync always|batch' (once each)");
			return false;
		}
		ps_next(ps);
	}
	return true;
}

static bool parse_layer(struct parser *ps)
{
	struct token kw = ps->tok;
	ps_next(ps);
	struct token name = ps->tok;
	bool header_ok = true;
	if (name.kind != TOK_WORD || !name_is_layer(name.p, name.len)) {
		ps_error(ps, &name, "expected a layer name ([a-z_][a-z0-9_-]*, at most %d bytes)",
			 POLICY_LAYER_NAME_MAX);
		header_ok = false;
	}
	struct layer_build *lbs = ps->layers.v;
	for (size_t i = 0; header_ok && i < ps->layers.n; i++)
		if (strlen(lbs[i].L->spec.name) == name.len &&
		    memcmp(lbs[i].L->spec.name, name.p, name.len) == 0) {
			ps_error(ps, &name, "duplicate layer '%.*s'", (int)name.len, name.p);
			header_ok = false;
		}
	if (header_ok && ps->layers.n >= POLICY_LAYERS_MAX) {
		ps_error(ps, &name, "more than %d layers", POLICY_LAYERS_MAX);
		header_ok = false;
	}
	struct layer_build scratch = {0}, *lb = &scratch;
	if (header_ok) {
		lb = vec_push(ps->a, &ps->layers, sizeof(*lb), _Alignof(struct layer_build));
		if (!lb)
			return false;
	}
	lb->L = arena_alloc(ps->a, sizeof(*lb->L), _Alignof(struct policy_layer));
	if (!lb->L)
		return false;
	struct layer_spec *sp = &lb->L->spec;
	sp->name = header_ok ? arena_strndup(ps->a, name.p, name.len) : "?";
	if (!sp->name)
		return false;
	sp->user_kind = LAYER_USER_DYNAMIC;
	sp->limits = (struct layer_limits){LAYER_LIMIT_UNSET, LAYER_LIMIT_UNSET, LAYER_LIMIT_UNSET,
					   LAYER_LIMIT_UNSET, LAYER_LIMIT_UNSET};
	lb->L->restart = (struct policy_restart){.mode = POLICY_RESTART_ON_FAILURE,
						 .backoff_min_ns = 100000000ull,
						 .backoff_max_ns = 60000000000ull};
	lb->L->line = kw.line;
	lb->L->off = kw.off;
	lb->name_off = name.off;

	if (name.kind == TOK_WORD)
		ps_next(ps);
	if (ps->tok.kind != TOK_LBRACE) {
		if (header_ok)
			ps_error(ps, &ps->tok, "expected '{' after the layer name");
		ps_skip_line(ps);
	} else {
		ps_next(ps);
		if (!ps_expect_eol(ps))
			ps_skip_line(ps);
	}
	for (;;) {
		if (ps->d->stop)
			return true;
		ps->lx.depth = 1;
		if (ps->tok.kind == TOK_NL) {
			ps_next(ps);
			continue;
		}
		if (ps->tok.kind == TOK_EOF) {
			ps_error(ps, &kw, "layer block not closed with '}'");
			return true;
		}
		if (ps->tok.kind == TOK_RBRACE) {
			ps_next(ps);
			if (!ps_expect_eol(ps))
				ps_skip_line(ps);
			return true;
		}
		if (ps->tok.kind != TOK_WORD) {
			ps_error(ps, &ps->tok, "expected a layer directive");
			ps_skip_line(ps);
			continue;
		}
		bool ok = parse_layer_directive(ps, lb);
		if (ps->a->failed)
			return false;
		if (!ok || !ps_at_eol(ps))
			ps_skip_line(ps);
	}
}

bool parse_file(struct parser *ps)
{
	ps_next(ps);
	for (;;) {
		if (ps->d->stop || ps->a->failed)
			break;
		ps->lx.depth = 0;
		if (ps->tok.kind == TOK_NL) {
			ps_next(ps);
			continue;
		}
		if (ps->tok.kind == TOK_EOF)
			break;
		struct token t = ps->tok;
		bool ok;
		if (ps_word_is(&t, "version")) {
			ok = parse_version(ps);
		} else {
			if (!ps->seen_version && !ps->seen_other)
				ps_error(ps, &t, "the policy must start with 'version 1'");
			ps->seen_other = true;
			if (ps_word_is(&t, "audit"))
				ok = parse_audit(ps);
			else if (ps_word_is(&t, "layer"))
				ok = parse_layer(ps);
			else if (ps_word_is(&t, "expect"))
				ok = parse_expect(ps);
			else if (t.kind == TOK_RBRACE) {
				ps_error(ps, &t, "'}' without a layer block");
				ok = false;
			} else {
				ps_error(ps, &t, "expected version, audit, layer or expect");
				ok = false;
			}
		}
		if (ps->a->failed)
			return false;
		if (!ok || !ps_at_eol(ps))
			ps_skip_line(ps);
	}
	if (!ps->seen_version && !ps->seen_other && !ps->d->stop)
		diag_at(ps->d, POLICY_SEV_ERROR, 0, 1, "empty policy: expected 'version 1'");
	return !ps->a->failed;
}
