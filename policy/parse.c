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

static bool name_is_layer(const char *p, size_t len)
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

static char *ps_path(struct parser *ps, const struct token *t)
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
static bool ps_count(struct parser *ps, const struct token *t, uint64_t max, uint64_t *ret)
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

static bool ps_size(struct parser *ps, const struct token *t, uint64_t *ret)
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

/* ---- Layer directives ---- */

static bool push_str(struct parser *ps, struct vec *v, char *s)
{
	char **slot = vec_push(ps->a, v, sizeof(char *), _Alignof(char *));
	if (!slot || !s)
		return false;
	*slot = s;
	return true;
}

static bool vec_has_str(const struct vec *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(((char **)v->v)[i], s) == 0)
			return true;
	return false;
}

static bool dir_exec(struct parser *ps, struct layer_build *lb)
{
	struct token kw = ps->tok;
	if (lb->seen_exec) {
		ps_error(ps, &kw, "duplicate exec");
		return false;
	}
	lb->seen_exec = true;
	ps_next(ps);
	char *path = ps_path(ps, &ps->tok);
	if (!path)
		return false;
	lb->L->spec.exec = path;
	if (!push_str(ps, &lb->argv, path))
		return false;
	ps_next(ps);
	while (!ps_at_eol(ps)) {
		if (ps->tok.kind != TOK_STRING) {
			ps_error(ps, &ps->tok, "expected a quoted argument");
			return false;
		}
		if (lb->argv.n >= POLICY_LIST_MAX) {
			ps_error(ps, &ps->tok, "more than %d arguments", POLICY_LIST_MAX);
			return false;
		}
		if (!push_str(ps, &lb->argv, ps_string(ps, &ps->tok, false, NULL, NULL)))
			return false;
		ps_next(ps);
	}
	return true;
}

/* A list of words after a directive, each checked by ok(). */
static bool word_list(struct parser *ps, struct vec *v, bool (*ok)(const char *, size_t),
		      const char *what, struct vec *offs)
{
	ps_next(ps);
	if (ps_at_eol(ps)) {
		ps_error(ps, &ps->tok, "expected %s", what);
		return false;
	}
	while (!ps_at_eol(ps)) {
		if (ps->tok.kind != TOK_WORD || !ok(ps->tok.p, ps->tok.len)) {
			ps_error(ps, &ps->tok, "expected %s", what);
			return false;
		}
		char *s = arena_strndup(ps->a, ps->tok.p, ps->tok.len);
		if (!s)
			return false;
		if (vec_has_str(v, s)) {
			ps_error(ps, &ps->tok, "'%s' listed twice", s);
			return false;
		}
		if (v->n >= POLICY_LIST_MAX) {
			ps_error(ps, &ps->tok, "more than %d items", POLICY_LIST_MAX);
			return false;
		}
		if (!push_str(ps, v, s))
			return false;
		if (offs) {
			size_t *o = vec_push(ps->a, offs, sizeof(size_t), _Alignof(size_t));
			if (!o)
				return false;
			*o = ps->tok.off;
		}
		ps_next(ps);
	}
	return true;
}

static bool env_name_ok(const char *p, size_t len)
{
	if (len == 0 || len > 128)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];
		bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
		if (!alpha && (i == 0 || c < '0' || c > '9'))
			return false;
	}
	return true;
}

static bool syscall_name_ok(const char *p, size_t len)
{
	if (len == 0 || len > 32)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
			return false;
	return true;
}

static bool dir_env(struct parser *ps, struct layer_build *lb)
{
	return word_list(ps, &lb->env, env_name_ok, "an environment variable name", NULL);
}

static bool dir_user(struct parser *ps, struct layer_build *lb, bool group)
{
	struct token kw = ps->tok;
	struct layer_spec *sp = &lb->L->spec;
	if (group ? lb->seen_group : lb->seen_user) {
		ps_error(ps, &kw, "duplicate %s", group ? "group" : "user");
		return false;
	}
	*(group ? &lb->seen_group : &lb->seen_user) = true;
	ps_next(ps);
	struct token t = ps->tok;
	enum layer_user_kind kind;
	uint64_t id = 0;
	if (ps_word_is(&t, "dynamic") && !group) {
		kind = LAYER_USER_DYNAMIC;
	} else if (t.kind == TOK_NUMBER) {
		if (!ps_count(ps, &t, UINT32_MAX - 1, &id))
			return false;
		kind = LAYER_USER_ID;
	} else if (t.kind == TOK_WORD && name_is_layer(t.p, t.len)) {
		kind = LAYER_USER_NAME;
	} else {
		ps_error(ps, &t,
			 group ? "expected a group name or number"
			       : "expected 'dynamic', a user name or a number");
		return false;
	}
	if (group) {
		if (sp->user_kind != kind) {
			ps_error(ps, &t,
				 sp->user_kind == LAYER_USER_DYNAMIC
					 ? "group cannot be set with user dynamic"
					 : "group must be given the same way as user (name or "
					   "number)");
			return false;
		}
		if (kind == LAYER_USER_ID)
			sp->gid = (gid_t)id;
		else if (!(sp->group_name = arena_strndup(ps->a, t.p, t.len)))
			return false;
	} else {
		if (lb->seen_group) {
			ps_error(ps, &kw, "user must come before group");
			return false;
		}
		sp->user_kind = kind;
		if (kind == LAYER_USER_ID) {
			sp->uid = (uid_t)id;
			sp->gid = (gid_t)id;
		} else if (kind == LAYER_USER_NAME &&
			   !(sp->user_name = arena_strndup(ps->a, t.p, t.len))) {
			return false;
		}
	}
	ps_next(ps);
	return ps_expect_eol(ps);
}

static const struct {
	const char *name;
	uint32_t bit;
} profiles[] = {
	{"stdio", LAYER_PROFILE_STDIO},		  {"tty", LAYER_PROFILE_TTY},
	{"recvfd", LAYER_PROFILE_RECVFD},	  {"time", LAYER_PROFILE_TIME},
	{"net-client", LAYER_PROFILE_NET_CLIENT},
};

static bool dir_syscalls(struct parser *ps, struct layer_build *lb)
{
	struct layer_spec *sp = &lb->L->spec;
	struct token kw = ps->tok;
	const struct token *n = ps_peek(ps);
	if (ps_word_is(n, "allow") || ps_word_is(n, "deny")) {
		bool allow = ps_word_is(n, "allow");
		ps_next(ps);
		struct vec *mine = allow ? &lb->sys_allow : &lb->sys_deny;
		struct vec *other = allow ? &lb->sys_deny : &lb->sys_allow;
		size_t before = mine->n;
		if (!word_list(ps, mine, syscall_name_ok, "a syscall name", NULL))
			return false;
		for (size_t i = before; i < mine->n; i++)
			if (vec_has_str(other, ((char **)mine->v)[i])) {
				ps_error(ps, &kw, "syscall '%s' both allowed and denied",
					 ((char **)mine->v)[i]);
				return false;
			}
		return true;
	}
	if (ps_word_is(n, "log")) {
		ps_next(ps);
		sp->seccomp_log = true;
		ps_next(ps);
		return ps_expect_eol(ps);
	}
	if (lb->seen_syscalls) {
		ps_error(ps, &kw, "duplicate syscalls profile list");
		return false;
	}
	lb->seen_syscalls = true;
	ps_next(ps);
	if (ps_at_eol(ps)) {
		ps_error(ps, &ps->tok, "expected a profile (stdio tty recvfd time net-client)");
		return false;
	}
	for (; !ps_at_eol(ps); ps_next(ps)) {
		uint32_t bit = 0;
		for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
			if (ps_word_is(&ps->tok, profiles[i].name))
				bit = profiles[i].bit;
		if (!bit) {
			ps_error(
				ps, &ps->tok,
				"unknown syscall profile '%.*s' (stdio tty recvfd time net-client)",
				(int)(ps->tok.len > 40 ? 40 : ps->tok.len), ps->tok.p);
			return false;
		}
		if (sp->profiles & bit) {
			ps_error(ps, &ps->tok, "profile listed twice");
			return false;
		}
		sp->profiles |= bit;
	}
	return true;
}

static bool dir_landlock(struct parser *ps, struct layer_build *lb)
{
	ps_next(ps);
	struct token mode = ps->tok;
	if (ps_word_is(&mode, "abi")) {
		if (lb->seen_abi) {
			ps_error(ps, &mode, "duplicate landlock abi");
			return false;
		}
		lb->seen_abi = true;
		ps_next(ps);
		uint64_t v;
		if (!ps_count(ps, &ps->tok, 64, &v))
			return false;
		if (v == 0) {
			ps_error(ps, &ps->tok, "landlock abi starts at 1");
			return false;
		}
		lb->L->spec.landlock_min_abi = (int)v;
		ps_next(ps);
		return ps_expect_eol(ps);
	}
	bool write = ps_word_is(&mode, "read-write");
	if (!write && !ps_word_is(&mode, "read")) {
		ps_error(ps, &mode, "expected 'read', 'read-write' or 'abi'");
		return false;
	}
	ps_next(ps);
	if (ps_at_eol(ps)) {
		ps_error(ps, &ps->tok, "expected a quoted absolute path");
		return false;
	}
	for (; !ps_at_eol(ps); ps_next(ps)) {
		char *path = ps_path(ps, &ps->tok);
		if (!path)
			return false;
		struct layer_path *lp = lb->landlock.v;
		for (size_t i = 0; i < lb->landlock.n; i++)
			if (strcmp(lp[i].path, path) == 0) {
				ps_error(ps, &ps->tok, "landlock path listed twice");
				return false;
			}
		if (lb->landlock.n >= POLICY_LIST_MAX) {
			ps_error(ps, &ps->tok, "more than %d landlock paths", POLICY_LIST_MAX);
			return false;
		}
		lp = vec_push(ps->a, &lb->landlock, sizeof(*lp), _Alignof(struct layer_path));
		if (!lp)
			return false;
		lp->path = path;
		lp->write = write;
	}
	return true;
}

static bool dir_namespaces(struct parser *ps, struct layer_build *lb)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} ns[] = {{"net", LAYER_NS_NET},
		  {"ipc", LAYER_NS_IPC},
		  {"uts", LAYER_NS_UTS},
		  {"pid", LAYER_NS_PID},
		  {"mount", LAYER_NS_MOUNT}};
	if (lb->seen_namespaces) {
		ps_error(ps, &ps->tok, "duplicate namespaces");
		return false;
	}
	lb->seen_namespaces = true;
	ps_next(ps);
	if (ps_at_eol(ps)) {
		ps_error(ps, &ps->tok, "expected a namespace (net ipc uts pid mount)");
		return false;
	}
	for (; !ps_at_eol(ps); ps_next(ps)) {
		uint32_t bit = 0;
		for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
			if (ps_word_is(&ps->tok, ns[i].name))
				bit = ns[i].bit;
		if (!bit) {
			ps_error(ps, &ps->tok, "unknown namespace (net ipc uts pid mount)");
			return false;
		}
		if (lb->L->spec.namespaces & bit) {
			ps_error(ps, &ps->tok, "namespace listed twice");
			return false;
		}
		lb->L->spec.namespaces |= bit;
	}
	return true;
}

static bool dir_limit(struct parser *ps, struct layer_build *lb)
{
	struct layer_limits *lim = &lb->L->spec.limits;
	ps_next(ps);
	if (ps_at_eol(ps)) {
		ps_error(ps, &ps->tok, "expected memory, files, procs, cpu or fsize");
		return false;
	}
	while (!ps_at_eol(ps)) {
		struct token k = ps->tok;
		uint32_t bit;
		uint64_t *slot;
		if (ps_word_is(&k, "memory"))
			bit = 1, slot = &lim->memory;
		else if (ps_word_is(&k, "files"))
			bit = 2, slot = &lim->files;
		else if (ps_word_is(&k, "procs"))
			bit = 4, slot = &lim->procs;
		else if (ps_word_is(&k, "cpu"))
			bit = 8, slot = &lim->cpu;
		else if (ps_word_is(&k, "fsize"))
			bit = 16, slot = &lim->fsize;
		else {
			ps_error(ps, &k, "unknown limit (memory files procs cpu fsize)");
			return false;
		}
		if (lb->seen_limits & bit) {
			ps_error(ps, &k, "limit '%.*s' set twice", (int)k.len, k.p);
			return false;
		}
		lb->seen_limits |= bit;
		ps_next(ps);
		if (bit == 1 || bit == 16) {
			if (!ps_size(ps, &ps->tok, slot))
				return false;
			if (bit == 1 && *slot < (1u << 20)) {
				ps_error(ps, &ps->tok,
					 "memory limit below 1M cannot run a process");
				return false;
			}
		} else if (bit == 8) {
			uint64_t ns;
			if (!ps_parse_duration(ps, &ps->tok, &ns))
				return false;
			if (ns % 1000000000ull || ns == 0) {
				ps_error(ps, &ps->tok,
					 "cpu limit must be whole seconds, at least 1s");
				return false;
			}
			*slot = ns / 1000000000ull;
		} else if (!ps_count(ps, &ps->tok, bit == 2 ? (1u << 20) : (1u << 22), slot)) {
			return false;
		}
		ps_next(ps);
	}
	return true;
}

static bool dir_restart(struct parser *ps, struct layer_build *lb)
{
	struct policy_restart *r = &lb->L->restart;
	if (lb->seen_restart) {
		ps_error(ps, &ps->tok, "duplicate restart");
		return false;
	}
	lb->seen_restart = true;
	ps_next(ps);
	if (ps_word_is(&ps->tok, "on-failure"))
		r->mode = POLICY_RESTART_ON_FAILURE;
	else if (ps_word_is(&ps->tok, "always"))
		r->mode = POLICY_RESTART_ALWAYS;
	else if (ps_word_is(&ps->tok, "never"))
		r->mode = POLICY_RESTART_NEVER;
	else {
		ps_error(ps, &ps->tok, "expected on-failure, always or never");
		return false;
	}
	ps_next(ps);
	bool seen_backoff = false, seen_max = false;
	while (!ps_at_eol(ps)) {
		struct token k = ps->tok;
		ps_next(ps);
		if (ps_word_is(&k, "backoff") && !seen_backoff) {
			seen_backoff = true;
			struct token lo = ps->tok;
			if (!ps_parse_duration(ps, &lo, &r->backoff_min_ns))
				return false;
			ps_next(ps);
			if (ps->tok.kind != TOK_RANGE) {
				ps_error(ps, &ps->tok, "expected '..' in the backoff range");
				return false;
			}
			ps_next(ps);
			if (!ps_parse_duration(ps, &ps->tok, &r->backoff_max_ns))
				return false;
			if (r->backoff_min_ns == 0) {
				ps_error(ps, &lo, "backoff must start above 0");
				return false;
			}
			if (r->backoff_min_ns > r->backoff_max_ns) {
				ps_error(ps, &lo, "reversed range");
				return false;
			}
		} else if (ps_word_is(&k, "max") && !seen_max) {
			seen_max = true;
			uint64_t n;
			if (!ps_count(ps, &ps->tok, 1000000, &n))
				return false;
			if (n == 0) {
				ps_error(ps, &ps->tok,
					 "max must be at least 1 (use restart never)");
				return false;
			}
			r->max = (unsigned)n;
			ps_next(ps);
			if (!ps_word_is(&ps->tok, "per")) {
				ps_error(ps, &ps->tok, "expected 'per DURATION'");
				return false;
			}
			ps_next(ps);
			if (!ps_parse_duration(ps, &ps->tok, &r->window_ns))
				return false;
			if (r->window_ns == 0) {
				ps_error(ps, &ps->tok, "zero window");
				return false;
			}
		} else {
			ps_error(ps, &k,
				 "expected 'backoff MIN..MAX' or 'max N per DURATION' (once each)");
			return false;
		}
		ps_next(ps);
	}
	return true;
}

static struct policy_resource *res_new(struct parser *ps, struct layer_build *lb,
				       const struct token *at)
{
	if (lb->resources.n >= POLICY_LIST_MAX) {
		ps_error(ps, at, "more than %d resources", POLICY_LIST_MAX);
		return NULL;
	}
	struct policy_resource *r =
		vec_push(ps->a, &lb->resources, sizeof(*r), _Alignof(struct policy_resource));
	if (r) {
		r->line = at->line;
		r->off = at->off;
	}
	return r;
}

/* "host:port" with host a name, IPv4 or [IPv6]; port 1..65535. */
static bool tcp_address(struct parser *ps, const struct token *t, struct policy_resource *r)
{
	size_t len;
	char *s = ps_string(ps, t, false, &len, NULL);
	if (!s)
		return false;
	char *colon = strrchr(s, ':');
	if (!colon || colon == s || colon[1] == '\0') {
		ps_error(ps, t, "expected \"host:port\"");
		return false;
	}
	uint32_t port = 0;
	for (char *q = colon + 1; *q; q++) {
		if (*q < '0' || *q > '9' || port > 65535) {
			ps_error(ps, t, "bad port");
			return false;
		}
		port = port * 10 + (uint32_t)(*q - '0');
	}
	if (port == 0 || port > 65535) {
		ps_error(ps, t, "port must be 1..65535");
		return false;
	}
	*colon = '\0';
	char *host = s;
	if (host[0] == '[') {
		if (colon[-1] != ']' || colon - host < 3) {
			ps_error(ps, t, "bad [IPv6] address");
			return false;
		}
		colon[-1] = '\0';
		host++;
	} else if (strchr(host, ':')) {
		ps_error(ps, t, "write IPv6 addresses as \"[addr]:port\"");
		return false;
	}
	for (char *q = host; *q; q++)
		if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
		      (*q >= '0' && *q <= '9') || *q == '.' || *q == '-' || *q == ':')) {
			ps_error(ps, t, "bad character in host name");
			return false;
		}
	r->address = host;
	r->port = (uint16_t)port;
	return true;
}

static bool dir_socket(struct parser *ps, struct layer_build *lb, bool listen)
{
	struct token kw = ps->tok;
	ps_next(ps);
	struct token name = ps->tok;
	if (name.kind != TOK_WORD || !name_is_arg(name.p, name.len)) {
		ps_error(ps, &name, "expected a resource name");
		return false;
	}
	struct policy_resource *rs = lb->resources.v;
	for (size_t i = 0; i < lb->resources.n; i++)
		if (rs[i].kind != POLICY_RES_OPEN && strlen(rs[i].name) == name.len &&
		    memcmp(rs[i].name, name.p, name.len) == 0) {
			ps_error(ps, &name, "duplicate resource name");
			return false;
		}
	struct policy_resource *r = res_new(ps, lb, &kw);
	if (!r || !(r->name = arena_strndup(ps->a, name.p, name.len)))
		return false;
	r->kind = listen ? POLICY_RES_LISTEN : POLICY_RES_CONNECT;
	ps_next(ps);
	struct token fam = ps->tok;
	ps_next(ps);
	if (ps_word_is(&fam, "tcp")) {
		r->family = POLICY_FAMILY_TCP;
		if (ps->tok.kind != TOK_STRING) {
			ps_error(ps, &ps->tok, "expected \"host:port\"");
			return false;
		}
		if (!tcp_address(ps, &ps->tok, r))
			return false;
	} else if (ps_word_is(&fam, "unix")) {
		r->family = POLICY_FAMILY_UNIX;
		if (!(r->address = ps_path(ps, &ps->tok)))
			return false;
		if (strlen(r->address) > 107) {
			ps_error(ps, &ps->tok, "unix socket path over 107 bytes");
			return false;
		}
	} else {
		ps_error(ps, &fam, "expected 'tcp' or 'unix'");
		return false;
	}
	lb->L->spec.has_network_resource = true;
	ps_next(ps);
	return ps_expect_eol(ps);
}

static bool dir_open(struct parser *ps, struct layer_build *lb)
{
	struct token kw = ps->tok;
	ps_next(ps);
	char *path = ps_path(ps, &ps->tok);
	if (!path)
		return false;
	struct policy_resource *rs = lb->resources.v;
	for (size_t i = 0; i < lb->resources.n; i++)
		if (rs[i].kind == POLICY_RES_OPEN && strcmp(rs[i].name, path) == 0) {
			ps_error(ps, &ps->tok, "path opened twice");
			return false;
		}
	struct policy_resource *r = res_new(ps, lb, &kw);
	if (!r)
		return false;
	r->kind = POLICY_RES_OPEN;
	r->family = POLICY_FAMILY_FILE;
	r->name = r->address = path;
	ps_next(ps);
	if (ps_word_is(&ps->tok, "read"))
		r->open_mode = POLICY_OPEN_READ;
	else if (ps_word_is(&ps->tok, "write"))
		r->open_mode = POLICY_OPEN_WRITE;
	else if (ps_word_is(&ps->tok, "read-write"))
		r->open_mode = POLICY_OPEN_READ | POLICY_OPEN_WRITE;
	else if (ps_word_is(&ps->tok, "append"))
		r->open_mode = POLICY_OPEN_WRITE | POLICY_OPEN_APPEND;
	else {
		ps_error(ps, &ps->tok, "expected read, write, read-write or append");
		return false;
	}
	ps_next(ps);
	if (ps_word_is(&ps->tok, "create")) {
		if (r->open_mode == POLICY_OPEN_READ) {
			ps_error(ps, &ps->tok, "'create' needs a writable mode");
			return false;
		}
		r->open_mode |= POLICY_OPEN_CREATE;
		ps_next(ps);
	}
	return ps_expect_eol(ps);
}

static bool dir_log(struct parser *ps, struct layer_build *lb)
{
	if (lb->seen_log) {
		ps_error(ps, &ps->tok, "duplicate log");
		return false;
	}
	lb->seen_log = true;
	lb->L->logonly = true;
	ps_next(ps);
	return ps_expect_eol(ps);
}

static bool method_ok(const char *p, size_t len)
{
	return name_is_method(p, len);
}

static bool parse_layer_directive(struct parser *ps, struct layer_build *lb)
{
	const struct token *t = &ps->tok;
	if (ps_word_is(t, "exec"))
		return dir_exec(ps, lb);
	if (ps_word_is(t, "env"))
		return dir_env(ps, lb);
	if (ps_word_is(t, "user"))
		return dir_user(ps, lb, false);
	if (ps_word_is(t, "group"))
		return dir_user(ps, lb, true);
	if (ps_word_is(t, "syscalls"))
		return dir_syscalls(ps, lb);
	if (ps_word_is(t, "landlock"))
		return dir_landlock(ps, lb);
	if (ps_word_is(t, "namespaces"))
		return dir_namespaces(ps, lb);
	if (ps_word_is(t, "limit"))
		return dir_limit(ps, lb);
	if (ps_word_is(t, "restart"))
		return dir_restart(ps, lb);
	if (ps_word_is(t, "connect"))
		return dir_socket(ps, lb, false);
	if (ps_word_is(t, "listen"))
		return dir_socket(ps, lb, true);
	if (ps_word_is(t, "open"))
		return dir_open(ps, lb);
	if (ps_word_is(t, "provide"))
		return word_list(ps, &lb->provides, method_ok, "a method name", &lb->provides_off);
	if (ps_word_is(t, "publish"))
		return word_list(ps, &lb->publishes, method_ok, "an event name", NULL);
	if (ps_word_is(t, "subscribe"))
		return parse_subscribe(ps, lb);
	if (ps_word_is(t, "allow"))
		return parse_rule(ps, lb, true);
	if (ps_word_is(t, "deny"))
		return parse_rule(ps, lb, false);
	if (ps_word_is(t, "log"))
		return dir_log(ps, lb);
	ps_error(ps, t, "unknown layer directive '%.*s'", (int)(t->len > 40 ? 40 : t->len), t->p);
	return false;
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

/* Parse the whole file into ps; false only when the arena ran out. */
bool parse_file(struct parser *ps);
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
