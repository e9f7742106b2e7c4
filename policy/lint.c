/* SPDX-License-Identifier: MIT */
/*
 * Lints: things a valid policy may do that an auditor wants to hear about.
 * Each warning ends with its name in brackets (docs/policy.md, "Lints").
 */
#include <string.h>

#include "policy-int.h"

static bool glob_all(const struct policy_glob *g)
{
	if (g->literal || g->len == 0)
		return false;
	for (size_t i = 0; i < g->len; i++)
		if (g->pat[i] != '*')
			return false;
	return true;
}

static bool glob_same(const struct policy_glob *a, const struct policy_glob *b)
{
	return a->literal == b->literal && a->len == b->len && memcmp(a->pat, b->pat, a->len) == 0;
}

/* Every string g2 matches, g1 matches (conservative: false when unsure). */
static bool glob_within(const struct policy_glob *g1, const struct policy_glob *g2)
{
	if (glob_all(g1) || glob_same(g1, g2))
		return true;
	return g2->literal && policy_glob_match(g1, g2->pat, g2->len);
}

static bool num_in(const struct policy_num *n, const struct policy_num *lo,
		   const struct policy_num *hi)
{
	int a = policy_num_cmp(lo, n), b = policy_num_cmp(n, hi);
	return (a == -1 || a == 0) && (b == -1 || b == 0);
}

/* Every value cb admits, ca admits. */
static bool cons_within(const struct policy_cons *ca, const struct policy_cons *cb)
{
	switch (ca->kind) {
	case POLICY_CONS_GLOB:
		if (cb->kind == POLICY_CONS_GLOB)
			return glob_within(&ca->u.glob, &cb->u.glob);
		if (cb->kind == POLICY_CONS_STRSET) {
			for (size_t i = 0; i < cb->u.strs.n; i++)
				if (!glob_within(&ca->u.glob, &cb->u.strs.v[i]))
					return false;
			return true;
		}
		return false;
	case POLICY_CONS_STRSET:
		if (cb->kind == POLICY_CONS_GLOB || cb->kind == POLICY_CONS_STRSET) {
			size_t n = cb->kind == POLICY_CONS_GLOB ? 1 : cb->u.strs.n;
			for (size_t i = 0; i < n; i++) {
				const struct policy_glob *g = cb->kind == POLICY_CONS_GLOB
								      ? &cb->u.glob
								      : &cb->u.strs.v[i];
				bool found = false;
				for (size_t j = 0; j < ca->u.strs.n && !found; j++)
					found = glob_within(&ca->u.strs.v[j], g);
				if (!found)
					return false;
			}
			return true;
		}
		return false;
	case POLICY_CONS_RANGE:
		if (cb->kind == POLICY_CONS_RANGE)
			return num_in(&cb->u.range.lo, &ca->u.range.lo, &ca->u.range.hi) &&
			       num_in(&cb->u.range.hi, &ca->u.range.lo, &ca->u.range.hi);
		if (cb->kind == POLICY_CONS_NUMSET) {
			for (size_t i = 0; i < cb->u.nums.n; i++)
				if (!num_in(&cb->u.nums.v[i], &ca->u.range.lo, &ca->u.range.hi))
					return false;
			return true;
		}
		return false;
	case POLICY_CONS_NUMSET:
		if (cb->kind == POLICY_CONS_NUMSET || cb->kind == POLICY_CONS_RANGE) {
			size_t n = cb->kind == POLICY_CONS_NUMSET ? cb->u.nums.n : 1;
			if (cb->kind == POLICY_CONS_RANGE &&
			    policy_num_cmp(&cb->u.range.lo, &cb->u.range.hi) != 0)
				return false;
			for (size_t i = 0; i < n; i++) {
				const struct policy_num *v = cb->kind == POLICY_CONS_NUMSET
								     ? &cb->u.nums.v[i]
								     : &cb->u.range.lo;
				bool found = false;
				for (size_t j = 0; j < ca->u.nums.n && !found; j++)
					found = policy_num_cmp(&ca->u.nums.v[j], v) == 0;
				if (!found)
					return false;
			}
			return true;
		}
		return false;
	case POLICY_CONS_LEN:
		if (cb->kind == POLICY_CONS_LEN)
			return cb->u.len.lo >= ca->u.len.lo && cb->u.len.hi <= ca->u.len.hi;
		if (cb->kind == POLICY_CONS_GLOB && cb->u.glob.literal)
			return cb->u.glob.len >= ca->u.len.lo && cb->u.glob.len <= ca->u.len.hi;
		return false;
	case POLICY_CONS_BOOL:
		return cb->kind == POLICY_CONS_BOOL && cb->u.b == ca->u.b;
	}
	return false;
}

bool cons_subsumes(const struct policy_cons *a, size_t na, const struct policy_cons *b, size_t nb)
{
	for (size_t i = 0; i < na; i++) {
		bool found = false;
		for (size_t j = 0; j < nb && !found; j++)
			found = strcmp(a[i].arg, b[j].arg) == 0 && cons_within(&a[i], &b[j]);
		if (!found)
			return false;
	}
	return true;
}

bool method_is_write_like(const char *method)
{
	static const char *const verbs[] = {
		"write", "set",	  "put",    "post",    "delete",   "remove", "create",	 "update",
		"reset", "start", "stop",   "restart", "exec",	   "run",    "command",	 "cmd",
		"send",	 "open",  "close",  "ack",     "clear",	   "enable", "disable",	 "load",
		"store", "save",  "upload", "kill",    "shutdown", "force",  "override",
	};
	if (policy_builtin_find(method))
		return false;
	const char *last = strrchr(method, '.');
	last = last ? last + 1 : method;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		size_t n = strlen(verbs[i]);
		if (strncmp(last, verbs[i], n) == 0 && (last[n] == '\0' || last[n] == '_'))
			return true;
	}
	return false;
}

static bool resource_used(const struct policy_layer *L, const struct policy_resource *res)
{
	const char *method = res->kind == POLICY_RES_CONNECT  ? "conduit.connect"
			     : res->kind == POLICY_RES_LISTEN ? "conduit.listen"
							      : "conduit.open";
	struct cdt_arg arg = {.name = res->kind == POLICY_RES_OPEN ? "path" : "name",
			      .type = CDT_TYPE_STRING,
			      .v.str = {res->name, strlen(res->name)}};
	for (size_t i = 0; i < L->nrules; i++) {
		const struct policy_rule *r = &L->rules[i];
		if (strcmp(r->method, method) != 0 ||
		    !policy_cons_match(r->cons, r->ncons, &arg, 1))
			continue;
		return r->allow; /* first match decides */
	}
	return false;
}

/* One warning per layer whose start-order waits were cut, naming the
 * cycle it is on.  Without memory for the order, no warning: the broker
 * computes it again and fails the load on -ENOMEM. */
static unsigned lint_start_cycles(const struct policy *p, struct diag_ctx *d)
{
	struct policy_order *o = NULL;
	size_t path[POLICY_LAYERS_MAX + 1];
	unsigned n = 0;

	if (policy_order_new(p, &o) < 0)
		return 0;
	for (size_t a = 0; a < p->nlayers; a++) {
		char text[512];
		size_t len, used = 0;
		if (!policy_order_cut(o, a))
			continue;
		len = policy_order_cycle(o, a, path, sizeof(path) / sizeof(path[0]));
		text[0] = 0;
		for (size_t i = 0; i < len && used < sizeof(text); i++) {
			int w = snprintf(text + used, sizeof(text) - used, "%s%s", i ? " -> " : "",
					 p->layers[path[i]].spec.name);
			if (w < 0)
				break;
			used += (size_t)w;
		}
		diag_at(d, POLICY_SEV_WARNING, p->layers[a].off, 5,
			"layers depend on each other (%s: each calls or subscribes to what the "
			"next provides or publishes): '%s' starts without waiting for them "
			"[start-cycle]",
			text, p->layers[a].spec.name);
		n++;
	}
	policy_order_free(o);
	return n;
}

unsigned policy_lint(const struct policy *p, policy_diag_fn fn, void *userdata)
{
	struct diag_ctx d = {.file = p->name,
			     .src = p->source,
			     .len = p->source_len,
			     .fn = fn,
			     .userdata = userdata};
	unsigned n = 0;
#define WARN(off, span, ...)                                                                       \
	do {                                                                                       \
		diag_at(&d, POLICY_SEV_WARNING, off, span, __VA_ARGS__);                           \
		n++;                                                                               \
	} while (0)
	for (size_t li = 0; li < p->nlayers; li++) {
		const struct policy_layer *L = &p->layers[li];
		const struct layer_spec *sp = &L->spec;
		size_t name_off = L->off;
		if ((sp->user_kind == LAYER_USER_ID && (sp->uid == 0 || sp->gid == 0)) ||
		    (sp->user_kind == LAYER_USER_NAME &&
		     (strcmp(sp->user_name, "root") == 0 ||
		      (sp->group_name && strcmp(sp->group_name, "root") == 0))))
			WARN(name_off, 5, "layer '%s' runs as root [root]", sp->name);
		if (sp->profiles == 0)
			WARN(name_off, 5,
			     "layer '%s' has no syscalls profile: its seccomp filter allows only "
			     "the channel basics [no-syscalls]",
			     sp->name);
		for (size_t i = 0; i < L->nresources; i++) {
			const struct policy_resource *res = &L->resources[i];
			if (!resource_used(L, res))
				WARN(res->off, 7,
				     "layer '%s' never may request %s resource '%s': no allow rule "
				     "on %s matches it [unused-resource]",
				     sp->name, res->kind == POLICY_RES_OPEN ? "file" : "network",
				     res->name,
				     res->kind == POLICY_RES_CONNECT  ? "conduit.connect"
				     : res->kind == POLICY_RES_LISTEN ? "conduit.listen"
								      : "conduit.open");
		}
		for (size_t i = 0; i < L->nrules; i++) {
			const struct policy_rule *r = &L->rules[i];
			/* File order keeps warnings in line order; the quadratic
			 * scan is bounded by POLICY_RULES_MAX and runs in the CLI
			 * only, never in the broker. */
			for (size_t j = 0; j < i; j++) {
				const struct policy_rule *q = &L->rules[j];
				if (strcmp(q->method, r->method) != 0 ||
				    !cons_subsumes(q->cons, q->ncons, r->cons, r->ncons))
					continue;
				WARN(r->off, 5,
				     "rule %s can never match: rule %s at line %u matches every "
				     "call it does [shadowed]",
				     r->id, q->id, q->line);
				break;
			}
			if (!r->allow)
				continue;
			for (size_t c = 0; c < r->ncons; c++) {
				const struct policy_cons *k = &r->cons[c];
				bool all = k->kind == POLICY_CONS_GLOB && glob_all(&k->u.glob);
				for (size_t m = 0; k->kind == POLICY_CONS_STRSET && m < k->u.strs.n;
				     m++)
					all = all || glob_all(&k->u.strs.v[m]);
				if (all)
					WARN(k->off, strlen(k->arg),
					     "glob on '%s' matches every string: say what is "
					     "allowed [allow-everything]",
					     k->arg);
			}
			if (!r->has_rate && method_is_write_like(r->method))
				WARN(r->off, 5,
				     "write-like method '%s' allowed without a rate limit "
				     "[write-no-rate]",
				     r->method);
		}
	}
	n += lint_start_cycles(p, &d);
#undef WARN
	return n;
}
