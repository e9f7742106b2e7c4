/* SPDX-License-Identifier: MIT */
/* Internals shared by the policy compiler, matcher and reports. */
#ifndef CONDUIT_POLICY_INT_H
#define CONDUIT_POLICY_INT_H

#include "policy.h"

/* ---- Arena: one private mapping, bump allocation, read-only when done ---- */

struct arena {
	uint8_t *base;
	size_t cap, used;
	bool failed; /* an allocation did not fit */
};

int arena_init(struct arena *a, size_t cap);
/* Zeroed memory, or NULL (and a->failed) when the arena is full. */
void *arena_alloc(struct arena *a, size_t size, size_t align);
void *arena_array(struct arena *a, size_t n, size_t size, size_t align);
char *arena_strndup(struct arena *a, const char *s, size_t n);
int arena_seal(struct arena *a);
void arena_release(struct arena *a);

/* ---- Method index: open addressing over a layer's method names ---- */

/* Rules of one method whose constraint on the key argument is this exact
 * string, or starts with this literal prefix (positions ascending). */
struct policy_lit_group {
	const char *lit;
	size_t len;
	const uint32_t *pos;
	size_t n;
};

#define POLICY_PREFIX_LENS 8

struct policy_method_entry {
	const char *method;
	size_t len;
	uint32_t hash;
	const struct policy_rule *const *rules; /* file order */
	size_t nrules;
	/* Index (index.c), built when many rules pin one argument to exact
	 * strings or literal-prefix globs ("plant.area1.*"); key_arg NULL
	 * otherwise. */
	const char *key_arg;
	const struct policy_lit_group *groups; /* exact strings */
	const uint32_t *lit_slots;	       /* group index + 1 */
	size_t lit_mask;
	const struct policy_lit_group *pgroups; /* prefixes */
	const uint32_t *p_slots;
	size_t p_mask;
	uint32_t prefix_lens[POLICY_PREFIX_LENS]; /* ascending */
	size_t nprefix_lens;
	const uint32_t *other; /* positions of rules in neither */
	size_t nother;
};

/* Build e's index in the arena (nothing when it would not pay). */
int index_method(struct arena *a, struct policy_method_entry *e);

struct policy_method_index {
	const struct policy_method_entry *entries;
	size_t nentries;
	const uint32_t *slots; /* entry index + 1; 0 = empty */
	size_t mask;
};

uint32_t policy_hash(const char *s, size_t len);

struct policy_provider {
	const char *method;
	const struct policy_layer *layer;
};

struct policy {
	struct arena arena; /* first: the policy lives at arena.base */
	const char *name;
	const char *source;
	size_t source_len;
	struct policy_audit audit;
	const struct policy_layer *layers;
	size_t nlayers;
	const uint32_t *layer_slots; /* layer index + 1 */
	size_t layer_mask;
	const struct policy_provider *providers; /* sorted by method */
	size_t nproviders;
	const struct policy_expect *expects;
	size_t nexpects;
	size_t nrules;
	size_t nbuckets;
};

/* ---- Lexer ---- */

enum tok_kind {
	TOK_EOF = 0,
	TOK_NL,
	TOK_WORD,
	TOK_STRING,
	TOK_NUMBER,
	TOK_RANGE, /* .. */
	TOK_LBRACE,
	TOK_RBRACE,
	TOK_COMMA,
	TOK_SLASH,
	TOK_EQ,
	TOK_ERROR, /* already reported */
};

struct token {
	enum tok_kind kind;
	const char *p; /* source text */
	size_t len;
	size_t off;
	unsigned line, col;
};

struct diag_ctx {
	const char *file;
	const char *src;
	size_t len;
	policy_diag_fn fn;
	void *userdata;
	unsigned nerrors;
	bool stop;	   /* POLICY_ERRORS_MAX reached */
	size_t cur_off;	   /* a line start already counted ... */
	unsigned cur_line; /* ... and its line number */
};

/* Report a diagnostic at a byte offset of the source (printf-style). */
void diag_at(struct diag_ctx *d, enum policy_severity sev, size_t off, size_t span, const char *fmt,
	     ...) __attribute__((format(printf, 5, 6)));

struct lexer {
	struct diag_ctx *diag;
	const char *src;
	size_t len, pos;
	unsigned line;
	size_t line_start;
	int depth; /* brace nesting */
};

void lexer_init(struct lexer *lx, struct diag_ctx *d, const char *src, size_t len);
void lexer_next(struct lexer *lx, struct token *ret_tok);
/* Skip to just after the next newline (error recovery). */
void lexer_skip_line(struct lexer *lx);

/* Decode a string token (quotes included).  glob: keep \* \? \\ quoted for
 * the glob matcher and report whether any unquoted metacharacter is there.
 * Returns the decoded length or -EINVAL (bad escape: reported by the lexer
 * already), writing at most cap bytes. */
long str_decode(const char *p, size_t len, bool glob, char *out, size_t cap, bool *ret_meta);

/* Number literal to a policy_num; -ERANGE / -EINVAL.  No unit suffix. */
int num_parse(const char *p, size_t len, struct policy_num *ret);

/* ---- Compiler pieces ---- */

/* Method/event names: dot-separated [a-z_][a-z0-9_]*; argument names: one
 * such segment.  At most CDT_NAME_MAX bytes. */
bool name_is_method(const char *p, size_t len);
bool name_is_arg(const char *p, size_t len);

struct layer_build;
int compile_finish(struct policy *p, struct diag_ctx *d);
/* Does rule a match every call rule b matches (constraints only)? */
bool cons_subsumes(const struct policy_cons *a, size_t na, const struct policy_cons *b, size_t nb);
bool cons_equal(const struct policy_cons *a, size_t na, const struct policy_cons *b, size_t nb);
bool method_is_write_like(const char *method);
void json_string(FILE *f, const char *s, size_t len);
void num_print(FILE *f, const struct policy_num *n);
void cons_print(FILE *f, const struct policy_cons *c);
void arg_print(FILE *f, const struct cdt_arg *a);
/* A string as the language writes it (quoted, escaped); literal: also
 * quote the glob metacharacters. */
void str_quote_print(FILE *f, const char *s, size_t len, bool literal);

#endif
