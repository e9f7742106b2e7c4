/* SPDX-License-Identifier: MIT */
/*
 * The index of one method's rules.  Large rule sets pin one argument to
 * exact strings (`allow tag.write tag "plant.x" ...`) or to literal-prefix
 * globs (`tag "plant.area3.*"`).  Such a rule can only match a call whose
 * value equals its literal, or starts with its prefix, so a decision looks
 * those groups up by hash and checks only them and the rules outside the
 * index, merged in file order (match.c): first match stays first match.
 */
#include <errno.h>
#include <string.h>

#include "policy-int.h"

enum key_kind { KEY_NONE, KEY_LITS, KEY_PREFIX };

/* How rule r pins argument key (any argument when key is NULL; then
 * *ret_arg names it): exact strings (*ret_lits, count returned via n) or a
 * literal prefix (*ret_prefix, its length via n). */
static enum key_kind rule_key(const struct policy_rule *r, const char *key, const char **ret_arg,
			      const struct policy_glob **ret_lits, size_t *ret_n)
{
	for (size_t i = 0; i < r->ncons; i++) {
		const struct policy_cons *c = &r->cons[i];
		if (key && strcmp(c->arg, key) != 0)
			continue;
		if (ret_arg)
			*ret_arg = c->arg;
		if (c->kind == POLICY_CONS_GLOB && c->u.glob.literal) {
			*ret_lits = &c->u.glob;
			*ret_n = 1;
			return KEY_LITS;
		}
		if (c->kind == POLICY_CONS_STRSET) {
			bool all = true;
			for (size_t k = 0; k < c->u.strs.n; k++)
				all = all && c->u.strs.v[k].literal;
			if (all) {
				*ret_lits = c->u.strs.v;
				*ret_n = c->u.strs.n;
				return KEY_LITS;
			}
		}
		if (c->kind == POLICY_CONS_GLOB) {
			/* the literal run before the first metacharacter; an
			 * escape there is rare enough to leave unindexed */
			size_t n = 0;
			const char *p = c->u.glob.pat;
			while (n < c->u.glob.len && p[n] != '*' && p[n] != '?' && p[n] != '\\')
				n++;
			if (n > 0 && n < c->u.glob.len && p[n] != '\\') {
				*ret_lits = &c->u.glob;
				*ret_n = n;
				return KEY_PREFIX;
			}
		}
	}
	return KEY_NONE;
}

static size_t table_size(size_t n)
{
	size_t sz = 4;
	while (sz < 2 * n)
		sz *= 2;
	return sz;
}

struct table {
	uint32_t *slots;
	size_t mask;
	struct policy_lit_group *groups;
	size_t ngroups;
};

static int table_init(struct arena *a, struct table *t, size_t n)
{
	size_t ns = table_size(n);
	t->slots = arena_array(a, ns, sizeof(uint32_t), _Alignof(uint32_t));
	t->groups = arena_array(a, n, sizeof(*t->groups), _Alignof(struct policy_lit_group));
	t->mask = ns - 1;
	t->ngroups = 0;
	return t->slots && t->groups ? 0 : -ENOMEM;
}

/* The group for s (created empty when new). */
static struct policy_lit_group *table_get(struct table *t, const char *s, size_t len)
{
	uint32_t h = policy_hash(s, len), slot;
	for (;; h++) {
		slot = t->slots[h & t->mask];
		if (!slot || (t->groups[slot - 1].len == len &&
			      memcmp(t->groups[slot - 1].lit, s, len) == 0))
			break;
	}
	if (!slot) {
		t->groups[t->ngroups] = (struct policy_lit_group){s, len, NULL, 0};
		slot = t->slots[h & t->mask] = (uint32_t)++t->ngroups;
	}
	return &t->groups[slot - 1];
}

static bool len_chosen(const struct policy_method_entry *e, size_t len)
{
	for (size_t i = 0; i < e->nprefix_lens; i++)
		if (e->prefix_lens[i] == len)
			return true;
	return false;
}

int index_method(struct arena *a, struct policy_method_entry *e)
{
	size_t n = e->nrules;
	if (n < 8)
		return 0;
	/* The key: the argument most rules pin (first 16 names seen). */
	const char *names[16];
	size_t counts[16], nn = 0, best = 0;
	for (size_t i = 0; i < n; i++) {
		const char *arg;
		const struct policy_glob *g;
		size_t cnt;
		if (rule_key(e->rules[i], NULL, &arg, &g, &cnt) == KEY_NONE)
			continue;
		size_t k = 0;
		while (k < nn && strcmp(names[k], arg) != 0)
			k++;
		if (k == nn && nn < 16) {
			names[nn] = arg;
			counts[nn++] = 0;
		}
		if (k < nn)
			counts[k]++;
	}
	for (size_t k = 1; k < nn; k++)
		if (counts[k] > counts[best])
			best = k;
	if (nn == 0 || counts[best] < 4)
		return 0;
	const char *key = names[best];

	/* Prefix lengths: the POLICY_PREFIX_LENS most common (each costs a
	 * lookup per decision); rules with other lengths stay unindexed. */
	uint32_t lens[64];
	size_t lcount[64], nl = 0, nlit = 0;
	for (size_t i = 0; i < n; i++) {
		const struct policy_glob *g;
		size_t cnt;
		enum key_kind k = rule_key(e->rules[i], key, NULL, &g, &cnt);
		if (k == KEY_LITS)
			nlit += cnt;
		if (k != KEY_PREFIX)
			continue;
		size_t j = 0;
		while (j < nl && lens[j] != cnt)
			j++;
		if (j == nl && nl < 64) {
			lens[nl] = (uint32_t)cnt;
			lcount[nl++] = 0;
		}
		if (j < nl)
			lcount[j]++;
	}
	struct policy_method_entry x = *e;
	x.nprefix_lens = 0;
	while (x.nprefix_lens < POLICY_PREFIX_LENS) {
		size_t top = SIZE_MAX;
		for (size_t j = 0; j < nl; j++)
			if (lcount[j] && (top == SIZE_MAX || lcount[j] > lcount[top]))
				top = j;
		if (top == SIZE_MAX)
			break;
		x.prefix_lens[x.nprefix_lens++] = lens[top];
		lcount[top] = 0;
	}
	for (size_t i = 1; i < x.nprefix_lens; i++) /* ascending, by insertion */
		for (size_t j = i; j > 0 && x.prefix_lens[j - 1] > x.prefix_lens[j]; j--) {
			uint32_t t = x.prefix_lens[j];
			x.prefix_lens[j] = x.prefix_lens[j - 1];
			x.prefix_lens[j - 1] = t;
		}

	struct table lt, pt;
	uint32_t *lpos = arena_array(a, nlit, sizeof(uint32_t), _Alignof(uint32_t));
	uint32_t *ppos = arena_array(a, n, sizeof(uint32_t), _Alignof(uint32_t));
	uint32_t *other = arena_array(a, n, sizeof(uint32_t), _Alignof(uint32_t));
	size_t *lfill = arena_array(a, nlit, sizeof(size_t), _Alignof(size_t));
	size_t *pfill = arena_array(a, n, sizeof(size_t), _Alignof(size_t));
	if (table_init(a, &lt, nlit) < 0 || table_init(a, &pt, n) < 0 || !lpos || !ppos || !other ||
	    !lfill || !pfill)
		return -ENOMEM;
	/* Two passes: count the members of each group, then place them. */
	for (int pass = 0; pass < 2; pass++) {
		x.nother = 0;
		for (size_t i = 0; i < n; i++) {
			const struct policy_glob *g;
			size_t cnt;
			enum key_kind k = rule_key(e->rules[i], key, NULL, &g, &cnt);
			if (k == KEY_PREFIX && !len_chosen(&x, cnt))
				k = KEY_NONE;
			if (k == KEY_NONE) {
				other[x.nother++] = (uint32_t)i;
				continue;
			}
			struct table *t = k == KEY_LITS ? &lt : &pt;
			size_t *fill = k == KEY_LITS ? lfill : pfill;
			for (size_t m = 0; m < (k == KEY_LITS ? cnt : 1); m++) {
				struct policy_lit_group *grp =
					table_get(t, g[m].pat, k == KEY_LITS ? g[m].len : cnt);
				if (pass == 0)
					grp->n++;
				else
					((uint32_t *)grp->pos)[fill[grp - t->groups]++] =
						(uint32_t)i;
			}
		}
		if (pass == 0) {
			size_t off = 0;
			for (size_t k = 0; k < lt.ngroups; k++, off += lt.groups[k - 1].n)
				lt.groups[k].pos = lpos + off;
			off = 0;
			for (size_t k = 0; k < pt.ngroups; k++, off += pt.groups[k - 1].n)
				pt.groups[k].pos = ppos + off;
		}
	}
	x.key_arg = key;
	x.groups = lt.groups;
	x.lit_slots = lt.slots;
	x.lit_mask = lt.mask;
	x.pgroups = pt.groups;
	x.p_slots = pt.slots;
	x.p_mask = pt.mask;
	x.other = other;
	*e = x;
	return 0;
}
