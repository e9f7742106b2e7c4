/* SPDX-License-Identifier: MIT */
/* `conduit-policy learn`: collection (learn.c) and proposal (learn-emit.c). */
#ifndef CONDUIT_POLICY_LEARN_H
#define CONDUIT_POLICY_LEARN_H

#include "cli.h"

/* The thresholds docs/audit.md ("learn") documents. */
#define LEARN_KEYS_MAX	     4096 /* distinct key values per method; more: no key */
#define LEARN_GLOB_SIBLINGS  8	  /* distinct values under one prefix before a glob */
#define LEARN_NUMSET_MAX     3	  /* integer values kept as a set ... */
#define LEARN_NUMSET_REPEATS 2	  /* ... when each was seen at least this often */
#define LEARN_STRSET_MAX     8	  /* distinct strings kept as a set; more: a length */
#define LEARN_MARGIN_PCT     10	  /* range margin: this share of the span, each side */
#define LEARN_RATE_FACTOR    2	  /* rate = this x the peak calls in a calendar second */

struct strval {
	char *s;
	size_t len;
	uint64_t n;
};

struct argstat {
	char name[CDT_NAME_MAX + 1];
	uint64_t n;	/* calls of the group that carried it */
	unsigned types; /* 1 << enum cdt_type */
	bool has_int, has_dbl, has_nan;
	__int128 imin, imax;
	double dmin, dmax;
	struct {
		struct policy_num v;
		uint64_t n;
	} nums[LEARN_NUMSET_MAX];
	size_t nnums;
	bool nums_many;
	struct strval strs[LEARN_STRSET_MAX];
	size_t nstrs;
	bool strs_many, str_bad;
	uint64_t lmin, lmax; /* string/bytes lengths */
	bool bools[2];
};

struct group {
	char *key; /* NULL: no key constraint */
	size_t keylen;
	bool glob;     /* key is a prefix: the rule says "key*" */
	uint64_t keys; /* distinct key values folded in */
	uint64_t calls, peak, cur_count;
	int64_t cur_sec;
	bool uncovered; /* --base: some call the base would not allow */
	bool dead;	/* folded into a glob group */
	struct argstat *args;
	size_t nargs, acap;
};

struct key_cand {
	char name[CDT_NAME_MAX + 1];
	uint64_t present, distinct;
	uint32_t *slots;
};

struct method {
	char layer[AUDIT_TEXT_MAX + 1], method[AUDIT_TEXT_MAX + 1];
	uint64_t calls, denied;
	struct key_cand cand[CDT_ARGS_MAX];
	size_t ncand;
	const char *key; /* points into cand */
	bool key_overflow;
	struct group *groups;
	size_t ngroups, gcap;
	uint32_t *slots; /* literal key groups, by hash (learn.c) */
};

struct learner {
	const struct policy *base; /* --base, or NULL */
	struct replay base_rp;
	int pass;
	uint64_t learned;
	struct method *methods;
	size_t nmethods, mcap;
};

int learn_run(struct learner *l, const char *const *logs, size_t nlogs,
	      struct audit_verify_result *ret);
void learn_fini(struct learner *l);
const char *learn_type_name(unsigned bit);
/* Rebuild m's index of literal key groups after they moved. */
int learn_reindex(struct method *m);
/* Fold siblings into globs and sort (learn_run calls it before the pass
 * that counts each final group's peak). */
int learn_fold(struct learner *l);
/* The prefix a value shares with its siblings: up to and with its last
 * separator (one of "./-_:"), 0 when none or the value ends there. */
size_t learn_sibling_prefix(const char *s, size_t len);
/* Print to out the proposals for layer (JSON objects when json, counting
 * them in *count); only_uncovered: skip what the base allows already. */
int learn_print_layer(FILE *out, const struct learner *l, const char *layer, bool json,
		      bool only_uncovered, const char *prefix, unsigned *count);

#endif
