/* SPDX-License-Identifier: MIT */
/*
 * The directives of a layer block: program, identity, sandbox, limits,
 * supervision, resources, services and events.  Rules are in
 * parse-rule.c.  Each directive parses one line and reports its own
 * errors; parse.c recovers at the end of the line.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "parse.h"

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
		/* A fixed id in the dynamic range could be handed to another
		 * layer as well: two layers would share a uid. */
		if (id >= POLICY_DYNAMIC_UID_MIN && id <= POLICY_DYNAMIC_UID_MAX) {
			ps_error(ps, &t, "%s %" PRIu64 " is in the range %u..%u reserved for user dynamic",
				 group ? "gid" : "uid", id, POLICY_DYNAMIC_UID_MIN,
				 POLICY_DYNAMIC_UID_MAX);
			return false;
		}
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

bool parse_layer_directive(struct parser *ps, struct layer_build *lb)
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
