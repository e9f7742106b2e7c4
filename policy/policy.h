/* SPDX-License-Identifier: MIT */
/*
 * The compiled policy: what `conduit-policy` checks and the broker obeys.
 * One parser, one truth: both sides compile with these functions and decide
 * with policy_decide().  docs/policy.md is the language reference.
 *
 * A compiled policy lives in one arena (a single mapping, made read-only
 * once compilation succeeds) and is freed at once by policy_free().  Every
 * pointer reachable from it points into that arena.  The mutable part of
 * matching (token buckets) is a separate struct policy_state.
 */
#ifndef CONDUIT_POLICY_POLICY_H
#define CONDUIT_POLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <conduit/conduit.h>

#include "layer-spec.h"

/* ---- Hard limits (docs/policy.md, "Limits") ---- */
#define POLICY_FILE_MAX	      (1024u * 1024) /* bytes */
#define POLICY_LINE_MAX	      4096	     /* bytes per line, newline excluded */
#define POLICY_TOKEN_MAX      1024	     /* bytes per token (strings after escapes) */
#define POLICY_NESTING_MAX    2		     /* layer { ... { set } } */
#define POLICY_RULES_MAX      10000	     /* allow/deny rules in the whole file */
#define POLICY_LAYERS_MAX     256
#define POLICY_CONS_MAX	      16  /* argument constraints per rule */
#define POLICY_SET_MAX	      256 /* members of one { set } */
#define POLICY_LIST_MAX	      256 /* words after one directive (provide, env, ...) */
#define POLICY_EXPECT_MAX     10000
#define POLICY_ERRORS_MAX     20       /* diagnostics before compilation stops */
#define POLICY_RATE_MAX	      1000000u /* events per period and burst */
#define POLICY_LAYER_NAME_MAX 32
/* Longest string value matched against a glob; a longer one makes the
 * decision deny (a glob costs value x pattern steps). */
#define POLICY_GLOB_VALUE_MAX 4096

/* Reserved range for `user dynamic` (sandbox/ allocates from it). */
#define POLICY_DYNAMIC_UID_MIN 81920u
#define POLICY_DYNAMIC_UID_MAX 86015u

/* ---- Diagnostics ---- */

enum policy_severity { POLICY_SEV_ERROR, POLICY_SEV_WARNING };

struct policy_diag {
	const char *file;
	unsigned line, col; /* 1-based; 0 when the diagnostic is about the whole file */
	unsigned span;	    /* bytes to underline (>= 1) */
	enum policy_severity severity;
	const char *message;
	const char *src_line; /* the source line, not NUL-terminated; NULL if none */
	size_t src_line_len;
};

typedef void (*policy_diag_fn)(void *userdata, const struct policy_diag *d);

/* "file:line:col: error: message", the source line and a caret line. */
void policy_diag_print(FILE *f, const struct policy_diag *d);

/* ---- Compiling ---- */

struct policy;
struct policy_state;

/* Compile a file; diagnostics go to diag (may be NULL) as text.  The file is
 * opened with O_NOFOLLOW, must be a regular file of at most POLICY_FILE_MAX
 * bytes owned by root or the caller, and must not be writable by group or
 * others.  Every problem is reported through diag.  Errors: -EINVAL (the
 * policy has errors, or the path is not a regular file), -EPERM (owner or
 * mode), -ELOOP (a symbolic link), -EFBIG (over POLICY_FILE_MAX), -E2BIG
 * (compiles to more than its arena holds), -errno from open/read, -ENOMEM.
 * *ret_policy is written only on success; the caller frees it. */
int policy_compile_file(const char *path, FILE *diag, struct policy **ret_policy);
int policy_compile_buffer(const char *name, const char *text, size_t len, FILE *diag,
			  struct policy **ret_policy);
/* The same with a callback per diagnostic (the CLI uses it for JSON). */
int policy_compile_file_cb(const char *path, policy_diag_fn fn, void *userdata,
			   struct policy **ret_policy);
int policy_compile_buffer_cb(const char *name, const char *text, size_t len, policy_diag_fn fn,
			     void *userdata, struct policy **ret_policy);
void policy_free(struct policy *p);

/* The name given at compile time and a copy of the source text. */
const char *policy_file_name(const struct policy *p);
const char *policy_source(const struct policy *p, size_t *ret_len);

/* ---- Arguments and constraints ---- */

enum policy_num_kind { POLICY_NUM_I64, POLICY_NUM_U64, POLICY_NUM_F64 };
struct policy_num {
	enum policy_num_kind kind;
	union {
		int64_t i;
		uint64_t u;
		double d;
	} v;
};

/* A string pattern: when literal, bytes compared exactly; else a glob where
 * '*' matches any run of characters, '?' one character and '\' quotes the
 * next byte. */
struct policy_glob {
	const char *pat;
	size_t len;
	bool literal;
};

enum policy_cons_kind {
	POLICY_CONS_GLOB = 1, /* string */
	POLICY_CONS_RANGE,    /* number in [lo, hi] */
	POLICY_CONS_NUMSET,   /* number equal to one member */
	POLICY_CONS_STRSET,   /* string matching one member */
	POLICY_CONS_LEN,      /* string or bytes with length in [lo, hi] */
	POLICY_CONS_BOOL,
};

struct policy_cons {
	const char *arg;
	enum policy_cons_kind kind;
	unsigned line, col;
	size_t off; /* byte offset in the source, for diagnostics */
	union {
		struct policy_glob glob;
		struct {
			struct policy_num lo, hi;
		} range;
		struct {
			const struct policy_num *v;
			size_t n;
		} nums;
		struct {
			const struct policy_glob *v;
			size_t n;
		} strs;
		struct {
			uint64_t lo, hi;
		} len;
		bool b;
	} u;
};

struct policy_rule {
	const char *id; /* "LAYER#N", N counting rules in the layer from 1 */
	const char *layer;
	const char *method;
	bool allow;
	bool log; /* complain mode for this rule */
	bool has_rate;
	uint64_t rate_n, rate_period_ns, burst;
	const struct policy_cons *cons;
	size_t ncons;
	size_t bucket; /* token bucket index in struct policy_state */
	unsigned line, col;
	size_t off, method_off; /* byte offsets in the source */
};

/* True when every constraint holds for args (an argument list in strictly
 * ascending name order, as the codec produces). */
bool policy_cons_match(const struct policy_cons *cons, size_t ncons, const struct cdt_arg *args,
		       size_t nargs);
/* Index of the first constraint that fails, or ncons when all hold. */
size_t policy_cons_first_failure(const struct policy_cons *cons, size_t ncons,
				 const struct cdt_arg *args, size_t nargs);
bool policy_glob_match(const struct policy_glob *g, const char *s, size_t len);
/* -1, 0, 1, or 2 when unordered (NaN).  Exact across i64/u64/double. */
int policy_num_cmp(const struct policy_num *a, const struct policy_num *b);

/* ---- What the broker reads ---- */

struct policy_audit {
	const char *path;     /* NULL when the policy has no audit line */
	uint64_t rotate_size; /* bytes, 0 = never rotate */
	bool sync_always;     /* fsync after every record (default: batch) */
	unsigned line;
};

enum policy_restart_mode {
	POLICY_RESTART_ON_FAILURE = 0,
	POLICY_RESTART_ALWAYS,
	POLICY_RESTART_NEVER
};

struct policy_restart {
	enum policy_restart_mode mode;
	uint64_t backoff_min_ns, backoff_max_ns;
	unsigned max; /* restarts allowed per window; 0 = unlimited */
	uint64_t window_ns;
};

enum policy_res_kind {
	POLICY_RES_CONNECT = 1, /* conduit.connect name=NAME */
	POLICY_RES_LISTEN,	/* conduit.listen name=NAME */
	POLICY_RES_OPEN,	/* conduit.open path=PATH */
};
enum policy_res_family { POLICY_FAMILY_TCP = 1, POLICY_FAMILY_UNIX, POLICY_FAMILY_FILE };
enum policy_open_mode {
	POLICY_OPEN_READ = 1u << 0,
	POLICY_OPEN_WRITE = 1u << 1,
	POLICY_OPEN_APPEND = 1u << 2, /* with WRITE */
	POLICY_OPEN_CREATE = 1u << 3,
};

struct policy_resource {
	enum policy_res_kind kind;
	enum policy_res_family family;
	const char *name;    /* connect/listen; for open, the path again */
	const char *address; /* tcp: host part (IPv6 without brackets); unix/open: path */
	uint16_t port;	     /* tcp */
	unsigned open_mode;  /* enum policy_open_mode bits, for open */
	unsigned line;
	size_t off;
};

struct policy_subscription {
	const char *event;
	const struct policy_cons *cons;
	size_t ncons;
	unsigned line;
	size_t off;
};

struct policy_method_index; /* internal */

struct policy_layer {
	struct layer_spec spec;
	struct policy_restart restart;
	bool logonly; /* complain mode for the whole layer */
	const struct policy_resource *resources;
	size_t nresources;
	const char *const *provides;
	const size_t *provides_off; /* source offsets, for diagnostics */
	size_t nprovides;
	const char *const *publishes;
	size_t npublishes;
	const struct policy_subscription *subscriptions;
	size_t nsubscriptions;
	const struct policy_rule *rules; /* file order */
	size_t nrules;
	unsigned line;
	size_t off;
	const char *default_rule_id;		 /* "LAYER#default" */
	const struct policy_method_index *index; /* internal to the matcher */
};

struct policy_expect {
	int verdict; /* enum policy_verdict */
	const char *layer;
	const char *method;
	const struct cdt_arg *args; /* ascending names */
	size_t nargs;
	unsigned line, col;
	size_t off, layer_off;
};

const struct policy_audit *policy_audit(const struct policy *p);
size_t policy_layer_count(const struct policy *p);
const struct policy_layer *policy_layer(const struct policy *p, const char *name);
const struct policy_layer *policy_layer_at(const struct policy *p, size_t i);
const struct layer_spec *policy_layer_spec(const struct policy *p, const char *layer_name);
const struct layer_spec *policy_layer_spec_at(const struct policy *p, size_t i);
/* The layer that provides method, or NULL (broker methods have none). */
const struct policy_layer *policy_method_provider(const struct policy *p, const char *method);
/* True when layer declared `publish event`. */
bool policy_may_publish(const struct policy_layer *l, const char *event);
/* The first subscription of l to event whose constraints hold, or NULL. */
const struct policy_subscription *policy_subscription_find(const struct policy_layer *l,
							   const char *event,
							   const struct cdt_arg *args,
							   size_t nargs);
/* The connect/listen resource NAME (kind must match) or open resource PATH. */
const struct policy_resource *policy_resource_find(const struct policy_layer *l,
						   enum policy_res_kind kind, const char *name);
/* Index of pl in p (policy_layer_at order), or SIZE_MAX when pl is not
 * one of p's layers. */
size_t policy_layer_index(const struct policy *p, const struct policy_layer *pl);

/* ---- Start order (docs/broker.md, "Start order") ----
 * Layer a depends on layer b when a has an allow rule naming a method b
 * provides, subscribes to an event b publishes, or is in complain mode and
 * b provides any method; the broker starts a only
 * once b is ready.  A dependency cycle is broken at the first layer in file
 * order that is on one: it stops waiting for the layers of the cycle (it
 * is "cut"; `conduit-policy check` warns, [start-cycle]).  Indexes are
 * policy_layer_at() indexes.  Not thread-safe (scratch space inside). */
struct policy_order;
/* Build the order of p.  Errors: -EINVAL, -ENOMEM.  Caller frees. */
int policy_order_new(const struct policy *p, struct policy_order **ret_order);
void policy_order_free(struct policy_order *o);
size_t policy_order_count(const struct policy_order *o);
/* The i-th layer to start (i < count), SIZE_MAX out of range. */
size_t policy_order_at(const struct policy_order *o, size_t i);
/* Whether a waits for b to be ready before its first start. */
bool policy_order_waits(const struct policy_order *o, size_t a, size_t b);
/* Whether a depends on b (before any cut). */
bool policy_order_depends(const struct policy_order *o, size_t a, size_t b);
/* Whether a's waits were cut to break a cycle. */
bool policy_order_cut(const struct policy_order *o, size_t a);
/* The shortest dependency cycle through a, as layer indexes a, ..., a
 * (each depends on the next), in path; its length, or 0 when a is on no
 * cycle or the cycle does not fit cap. */
size_t policy_order_cycle(struct policy_order *o, size_t a, size_t *path, size_t cap);

size_t policy_expect_count(const struct policy *p);
const struct policy_expect *policy_expect_at(const struct policy *p, size_t i);
size_t policy_rule_count(const struct policy *p);

/* ---- Methods the broker itself serves (no provider needed) ---- */

struct policy_builtin {
	const char *method;
	const char *summary;
};
const struct policy_builtin *policy_builtin_find(const char *method);
const struct policy_builtin *policy_builtins(size_t *ret_n);

/* ---- Matching ---- */

enum policy_verdict { POLICY_ALLOW, POLICY_DENY, POLICY_RATE_LIMITED };

struct policy_decision {
	enum policy_verdict verdict;
	bool logonly;	     /* complain mode: audit the verdict, let the call through */
	const char *rule_id; /* "LAYER#N", or "LAYER#default" for the default deny */
	const char *file;
	unsigned line;
	const char *reason;		/* static text */
	const struct policy_rule *rule; /* NULL for the default deny */
};

/* Token buckets for every rule with a rate, all full at creation.  Caller
 * frees with policy_state_free(); it must not outlive p. */
int policy_state_new(const struct policy *p, struct policy_state **ret_state);
void policy_state_free(struct policy_state *st);

/* Decide a call from layer.  First matching rule of the layer wins; no rule
 * means deny.  args must be in strictly ascending name order (the codec's
 * canonical order); anything else is denied, and so is a call whose
 * string over POLICY_GLOB_VALUE_MAX bytes meets a glob on the way.  now_ns is a monotonic clock
 * supplied by the caller.  No heap allocation.  Errors: -ENOENT (unknown
 * layer), -EINVAL (NULL arguments, or st from another policy). */
int policy_decide(const struct policy *p, struct policy_state *st, const char *layer,
		  const char *method, const struct cdt_arg *args, size_t nargs, uint64_t now_ns,
		  struct policy_decision *ret);

const char *policy_verdict_name(enum policy_verdict v);

/* ---- Values written as text (expect lines, `explain ... ARG=VALUE`) ---- */

/* Parse one value: "..." a string (escapes as in the language), true/false,
 * an integer (i64, or u64 above INT64_MAX), a decimal or exponent number, nan,
 * inf, -inf (double); with bare_strings, any other text is a string.  The
 * string storage is written to buf (cap bytes), which the arg then points
 * into.  Errors: -EINVAL, -ERANGE, -ENOBUFS. */
int policy_value_parse(const char *text, size_t len, bool bare_strings, char *buf, size_t cap,
		       struct cdt_arg *ret_arg);

/* ---- Reports for `conduit-policy` and the fuzzer ---- */

/* Lint warnings through fn (see docs/policy.md, "Lints"); returns their count. */
unsigned policy_lint(const struct policy *p, policy_diag_fn fn, void *userdata);
/* Everything layer may do, in plain words (json: one JSON object). */
int policy_explain_layer(const struct policy *p, const char *layer, bool json, FILE *out);
/* The verdict on one call and why, with every rule of the method. */
int policy_explain_call(const struct policy *p, const char *layer, const char *method,
			const struct cdt_arg *args, size_t nargs, bool json, FILE *out,
			enum policy_verdict *ret_verdict);

#endif
