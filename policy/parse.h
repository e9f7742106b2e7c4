/* SPDX-License-Identifier: MIT */
/* The parser's state, shared by parse.c (file and layer directives) and
 * parse-rule.c (rules, constraints, subscriptions, expect lines). */
#ifndef CONDUIT_POLICY_PARSE_H
#define CONDUIT_POLICY_PARSE_H

#include "policy-int.h"

/* A growable array in the arena (growth copies; the arena is sized for it). */
struct vec {
	void *v;
	size_t n, cap;
};

struct layer_build {
	struct policy_layer *L; /* in the arena, filled as directives come */
	size_t name_off;
	struct vec argv, env, sys_allow, sys_deny, landlock, resources;
	struct vec provides, provides_off, publishes, subs, rules;
	bool seen_exec, seen_user, seen_group, seen_syscalls, seen_restart, seen_abi;
	bool seen_namespaces, seen_log;
	uint32_t seen_limits;
};

struct parser {
	struct lexer lx;
	struct token tok, la;
	bool has_la;
	struct diag_ctx *d;
	struct arena *a;
	struct policy *p;
	bool seen_version, seen_audit, seen_other;
	struct vec layers;  /* struct layer_build */
	struct vec expects; /* struct policy_expect */
	size_t nrules;
	size_t nbuckets;
	bool too_many_rules; /* reported once */
};

void *vec_push(struct arena *a, struct vec *v, size_t size, size_t align);
void ps_next(struct parser *ps);
const struct token *ps_peek(struct parser *ps);
void ps_error(struct parser *ps, const struct token *t, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool ps_at_eol(const struct parser *ps);
bool ps_word_is(const struct token *t, const char *w);
bool ps_expect_eol(struct parser *ps);
bool ps_parse_duration(struct parser *ps, const struct token *t, uint64_t *ret_ns);
char *ps_string(struct parser *ps, const struct token *t, bool glob, size_t *ret_len,
		bool *ret_meta);

char *ps_path(struct parser *ps, const struct token *t);
bool ps_count(struct parser *ps, const struct token *t, uint64_t max, uint64_t *ret);
bool ps_size(struct parser *ps, const struct token *t, uint64_t *ret);
bool name_is_layer(const char *p, size_t len);

/* Parse the whole file into ps; false only when the arena ran out. */
bool parse_file(struct parser *ps);

/* parse-layer.c: one directive inside `layer NAME { ... }` */
bool parse_layer_directive(struct parser *ps, struct layer_build *lb);

/* parse-rule.c */
bool parse_rule(struct parser *ps, struct layer_build *lb, bool allow);
bool parse_subscribe(struct parser *ps, struct layer_build *lb);
bool parse_expect(struct parser *ps);

/* compile.c: cross-layer checks and indexes once every line is parsed. */
int compile_link(struct parser *ps);

#endif
