/* SPDX-License-Identifier: MIT */
/*
 * `conduit-policy learn LOG... [--base POLICY]`: propose the narrowest rules
 * that would have allowed the recorded calls.  Two passes over the verified
 * logs: the first picks, per layer and method, the string argument that
 * tells calls apart (the key: present in every call, most distinct values);
 * the second groups calls by key value and collects what each argument
 * held.  Then sibling values are folded into a glob, and a third pass
 * counts each final group's peak rate; ranges get their margin.  The result is printed, never
 * written to a file.  docs/audit.md, "learn", documents every threshold.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "learn.h"

static const char *const type_bit_names[] = {"?",   "bool", "i64",   "u64",
					     "f64", "str",  "bytes", "fd"};

static struct method *method_get(struct learner *l, const char *layer, const char *method)
{
	for (size_t i = 0; i < l->nmethods; i++)
		if (strcmp(l->methods[i].layer, layer) == 0 &&
		    strcmp(l->methods[i].method, method) == 0)
			return &l->methods[i];
	if (l->nmethods == l->mcap) {
		size_t cap = l->mcap ? 2 * l->mcap : 16;
		struct method *m = realloc(l->methods, cap * sizeof(*m));
		if (!m)
			return NULL;
		l->methods = m;
		l->mcap = cap;
	}
	struct method *m = &l->methods[l->nmethods++];
	*m = (struct method){0};
	snprintf(m->layer, sizeof(m->layer), "%s", layer);
	snprintf(m->method, sizeof(m->method), "%s", method);
	return m;
}

/* C1 controls and bidirectional overrides: valid UTF-8 that would make a
 * proposed rule read differently on a terminal than what it matches. */
static bool str_deceptive(const char *p, size_t len)
{
	const unsigned char *u = (const unsigned char *)p;
	for (size_t i = 0; i + 1 < len; i++) {
		if (u[i] == 0xc2 && u[i + 1] >= 0x80 && u[i + 1] <= 0x9f)
			return true;
		if (i + 2 < len && u[i] == 0xe2 &&
		    ((u[i + 1] == 0x80 && u[i + 2] >= 0xaa && u[i + 2] <= 0xae) ||
		     (u[i + 1] == 0x81 && u[i + 2] >= 0xa6 && u[i + 2] <= 0xa9)))
			return true;
	}
	return false;
}

/* Only what the language can spell, and the log kept whole. */
static bool str_spellable(const struct audit_arg *a)
{
	const char *p = a->arg.v.str.ptr;
	size_t len = a->arg.v.str.len;
	return a->arg.type == CDT_TYPE_STRING && !a->not_utf8 && !a->truncated &&
	       !memchr(p, '\0', len) && len <= POLICY_TOKEN_MAX && !str_deceptive(p, len);
}

/* Pass 1: per string argument, how many calls carry it and how many
 * distinct values it takes (a set of hashes, capped at LEARN_KEYS_MAX). */
static int pass1(struct learner *l, struct method *m, const struct audit_record *rec)
{
	m->calls++;
	for (size_t i = 0; i < rec->nargs; i++) {
		const struct audit_arg *a = &rec->args[i];
		if (!str_spellable(a))
			continue;
		struct key_cand *c = NULL;
		for (size_t k = 0; k < m->ncand && !c; k++)
			if (strcmp(m->cand[k].name, a->arg.name) == 0)
				c = &m->cand[k];
		if (!c) {
			if (m->ncand == CDT_ARGS_MAX)
				continue;
			c = &m->cand[m->ncand++];
			snprintf(c->name, sizeof(c->name), "%s", a->arg.name);
		}
		c->present++;
		if (c->distinct >= LEARN_KEYS_MAX)
			continue;
		if (!c->slots && !(c->slots = calloc(2 * LEARN_KEYS_MAX, sizeof(uint32_t))))
			return -ENOMEM;
		uint32_t h = policy_hash(a->arg.v.str.ptr, a->arg.v.str.len) | 1u;
		size_t mask = 2 * LEARN_KEYS_MAX - 1;
		for (size_t s = h & mask;; s = (s + 1) & mask) {
			if (c->slots[s] == h)
				break;
			if (c->slots[s] == 0) {
				c->slots[s] = h;
				c->distinct++;
				break;
			}
		}
	}
	(void)l;
	return 0;
}

static void pick_key(struct method *m)
{
	uint64_t best = 0;
	for (size_t k = 0; k < m->ncand; k++) {
		struct key_cand *c = &m->cand[k];
		if (c->present == m->calls && c->distinct > best) {
			best = c->distinct;
			m->key = c->name;
		}
		free(c->slots);
		c->slots = NULL;
	}
	m->key_overflow = best >= LEARN_KEYS_MAX;
}

/* Literal key groups are found through an open-addressing table of group
 * index + 1 (GROUP_SLOTS, over twice LEARN_KEYS_MAX), so a method with
 * thousands of tags costs a hash per call, not a scan. */
#define GROUP_SLOTS (4u * LEARN_KEYS_MAX)

static struct group *slot_find(struct method *m, const char *key, size_t len, size_t *ret_slot)
{
	size_t mask = GROUP_SLOTS - 1;
	for (size_t s = policy_hash(key, len) & mask, n = 0; n < GROUP_SLOTS;
	     s = (s + 1) & mask, n++) {
		if (!m->slots[s]) {
			*ret_slot = s;
			return NULL;
		}
		struct group *g = &m->groups[m->slots[s] - 1];
		if (!g->dead && !g->glob && g->keylen == len && memcmp(g->key, key, len) == 0)
			return g;
	}
	*ret_slot = GROUP_SLOTS; /* full */
	return NULL;
}

/* Index every live literal group again (groups moved: folding, sorting). */
int learn_reindex(struct method *m)
{
	if (!m->slots && !(m->slots = calloc(GROUP_SLOTS, sizeof(uint32_t))))
		return -ENOMEM;
	memset(m->slots, 0, GROUP_SLOTS * sizeof(uint32_t));
	for (size_t i = 0; i < m->ngroups; i++) {
		struct group *g = &m->groups[i];
		size_t s;
		if (g->dead || g->glob || !g->key)
			continue;
		if (slot_find(m, g->key, g->keylen, &s) || s == GROUP_SLOTS)
			return -ENOBUFS;
		m->slots[s] = (uint32_t)i + 1;
	}
	return 0;
}

static struct group *group_get(struct method *m, const char *key, size_t len)
{
	size_t slot = 0;
	if (!key) {
		for (size_t i = 0; i < m->ngroups; i++)
			if (!m->groups[i].key)
				return &m->groups[i];
	} else {
		if (!m->slots && learn_reindex(m) < 0)
			return NULL;
		struct group *g = slot_find(m, key, len, &slot);
		if (g)
			return g;
		if (slot == GROUP_SLOTS)
			return NULL;
	}
	if (m->ngroups == m->gcap) {
		size_t cap = m->gcap ? 2 * m->gcap : 8;
		struct group *g = realloc(m->groups, cap * sizeof(*g));
		if (!g)
			return NULL;
		m->groups = g;
		m->gcap = cap;
	}
	struct group *g = &m->groups[m->ngroups];
	*g = (struct group){.keys = 1};
	if (key && !(g->key = malloc(len + 1)))
		return NULL;
	if (key) {
		memcpy(g->key, key, len);
		g->key[len] = '\0';
		g->keylen = len;
		m->slots[slot] = (uint32_t)m->ngroups + 1;
	}
	m->ngroups++;
	return g;
}

static struct argstat *argstat_get(struct group *g, const char *name)
{
	for (size_t i = 0; i < g->nargs; i++)
		if (strcmp(g->args[i].name, name) == 0)
			return &g->args[i];
	if (g->nargs == g->acap) {
		size_t cap = g->acap ? 2 * g->acap : 4;
		struct argstat *a = realloc(g->args, cap * sizeof(*a));
		if (!a)
			return NULL;
		g->args = a;
		g->acap = cap;
	}
	struct argstat *s = &g->args[g->nargs++];
	*s = (struct argstat){.lmin = UINT64_MAX, .dmin = INFINITY, .dmax = -INFINITY};
	snprintf(s->name, sizeof(s->name), "%s", name);
	return s;
}

static void num_seen(struct argstat *s, const struct cdt_arg *a)
{
	struct policy_num v;
	if (a->type == CDT_TYPE_DOUBLE) {
		if (isnan(a->v.d)) {
			s->has_nan = true;
			return;
		}
		v = (struct policy_num){.kind = POLICY_NUM_F64, .v.d = a->v.d};
		s->has_dbl = true;
		s->dmin = fmin(s->dmin, a->v.d);
		s->dmax = fmax(s->dmax, a->v.d);
	} else {
		__int128 x = a->type == CDT_TYPE_I64 ? (__int128)a->v.i64 : (__int128)a->v.u64;
		if (a->type == CDT_TYPE_I64)
			v = (struct policy_num){.kind = POLICY_NUM_I64, .v.i = a->v.i64};
		else
			v = (struct policy_num){.kind = POLICY_NUM_U64, .v.u = a->v.u64};
		if (!s->has_int || x < s->imin)
			s->imin = x;
		if (!s->has_int || x > s->imax)
			s->imax = x;
		s->has_int = true;
	}
	for (size_t i = 0; i < s->nnums; i++)
		if (policy_num_cmp(&s->nums[i].v, &v) == 0) {
			s->nums[i].n++;
			return;
		}
	if (s->nnums == LEARN_NUMSET_MAX) {
		s->nums_many = true;
		return;
	}
	s->nums[s->nnums].v = v;
	s->nums[s->nnums++].n = 1;
}

static int str_seen(struct argstat *s, const struct audit_arg *a)
{
	const char *p = a->arg.v.str.ptr;
	size_t len = a->arg.v.str.len;
	if (!str_spellable(a)) {
		s->str_bad = true;
		return 0;
	}
	for (size_t i = 0; i < s->nstrs; i++)
		if (s->strs[i].len == len && memcmp(s->strs[i].s, p, len) == 0) {
			s->strs[i].n++;
			return 0;
		}
	if (s->nstrs == LEARN_STRSET_MAX) {
		s->strs_many = true;
		return 0;
	}
	char *c = malloc(len + 1);
	if (!c)
		return -ENOMEM;
	memcpy(c, p, len);
	c[len] = '\0';
	s->strs[s->nstrs++] = (struct strval){.s = c, .len = len, .n = 1};
	return 0;
}

/* Peak calls in one calendar second.  A burst of k calls within any second
 * spans at most two calendar seconds, so LEARN_RATE_FACTOR x peak >= k. */
static void group_tick(struct group *g, int64_t time_us)
{
	int64_t sec = time_us / 1000000;
	if (!g->cur_count || sec != g->cur_sec) {
		g->cur_sec = sec;
		g->cur_count = 0;
	}
	if (++g->cur_count > g->peak)
		g->peak = g->cur_count;
}

static int group_call(struct group *g, const struct audit_record *rec, const char *key)
{
	g->calls++;
	for (size_t i = 0; i < rec->nargs; i++) {
		const struct audit_arg *a = &rec->args[i];
		if (key && strcmp(a->arg.name, key) == 0)
			continue;
		struct argstat *s = argstat_get(g, a->arg.name);
		if (!s)
			return -ENOMEM;
		s->n++;
		s->types |= 1u << a->arg.type;
		switch (a->arg.type) {
		case CDT_TYPE_BOOL:
			s->bools[a->arg.v.b] = true;
			break;
		case CDT_TYPE_I64:
		case CDT_TYPE_U64:
		case CDT_TYPE_DOUBLE:
			num_seen(s, &a->arg);
			break;
		case CDT_TYPE_STRING:
		case CDT_TYPE_BYTES: {
			uint64_t len = a->truncated ? a->orig_len : a->arg.v.bytes.len;
			if (len < s->lmin)
				s->lmin = len;
			if (len > s->lmax)
				s->lmax = len;
			if (a->arg.type == CDT_TYPE_STRING && str_seen(s, a) < 0)
				return -ENOMEM;
			break;
		}
		case CDT_TYPE_FD:
			break;
		}
	}
	return 0;
}

/* The final group of a call: its literal, else the glob it was folded in. */
static struct group *group_final(struct method *m, const char *kv, size_t klen)
{
	if (kv) {
		size_t slot;
		struct group *g = m->slots ? slot_find(m, kv, klen, &slot) : NULL;
		if (g)
			return g;
	}
	/* Not a literal: no key, or folded into a glob (few of those). */
	size_t pl = kv ? learn_sibling_prefix(kv, klen) : 0;
	for (size_t i = 0; i < m->ngroups; i++) {
		struct group *g = &m->groups[i];
		if (g->dead)
			continue;
		if (!kv && !g->key)
			return g;
		if (kv && pl && g->glob && g->keylen == pl && memcmp(g->key, kv, pl) == 0)
			return g;
	}
	return NULL;
}

static bool learnable(const struct audit_record *rec)
{
	return rec->event == AUDIT_EV_DECISION && rec->verdict != AUDIT_VERDICT_DENY;
}

static int on_record(const struct audit_record *rec, size_t file, uint64_t line, void *ud)
{
	struct learner *l = ud;
	(void)file;
	(void)line;
	if (rec->event != AUDIT_EV_DECISION)
		return 0;
	struct method *m = method_get(l, rec->layer, rec->method);
	if (!m)
		return -ENOMEM;
	if (!learnable(rec)) {
		if (l->pass == 1)
			m->denied++;
		return 0;
	}
	if (l->pass == 1) {
		l->learned++;
		return pass1(l, m, rec);
	}
	const char *kv = NULL;
	size_t klen = 0;
	if (m->key && !m->key_overflow)
		for (size_t i = 0; i < rec->nargs; i++)
			if (strcmp(rec->args[i].arg.name, m->key) == 0) {
				kv = rec->args[i].arg.v.str.ptr;
				klen = rec->args[i].arg.v.str.len;
			}
	if (l->pass == 3) {
		struct group *g = group_final(m, kv, klen);
		if (g)
			group_tick(g, rec->time_us);
		return 0;
	}
	struct group *g = group_get(m, kv, klen);
	if (!g)
		return -ENOMEM;
	if (l->base && !g->uncovered) {
		/* Would the base policy have let it through?  Rates aside:
		 * a rate-limited call was still allowed by a rule. */
		struct policy_decision d;
		enum audit_verdict v;
		int r = replay_record(&l->base_rp, rec, &d, &v);
		g->uncovered = r <= 0 || !d.rule || !d.rule->allow;
	}
	return group_call(g, rec, m->key);
}

int learn_run(struct learner *l, const char *const *logs, size_t nlogs,
	      struct audit_verify_result *ret)
{
	struct audit_verify_opts o = {.on_record = on_record, .userdata = l};
	struct audit_verify_result res;
	l->pass = 1;
	int r = audit_verify_files(logs, nlogs, &o, &res);
	if (r < 0)
		return r;
	/* Learning from a log whose chain is broken would learn the forgery. */
	if (res.status != AUDIT_OK && res.status != AUDIT_TORN) {
		*ret = res;
		return 0;
	}
	for (size_t i = 0; i < l->nmethods; i++)
		pick_key(&l->methods[i]);
	l->pass = 2;
	if (l->base && (r = replay_init(&l->base_rp, l->base)) < 0)
		return r;
	if ((r = audit_verify_files(logs, nlogs, &o, &res)) < 0)
		return r;
	if ((r = learn_fold(l)) < 0)
		return r;
	l->pass = 3;
	if ((r = audit_verify_files(logs, nlogs, &o, &res)) < 0)
		return r;
	*ret = res;
	return 0;
}

void learn_fini(struct learner *l)
{
	for (size_t i = 0; i < l->nmethods; i++) {
		struct method *m = &l->methods[i];
		for (size_t k = 0; k < m->ncand; k++)
			free(m->cand[k].slots);
		for (size_t k = 0; k < m->ngroups; k++) {
			struct group *g = &m->groups[k];
			free(g->key);
			for (size_t a = 0; a < g->nargs; a++)
				for (size_t s = 0; s < g->args[a].nstrs; s++)
					free(g->args[a].strs[s].s);
			free(g->args);
		}
		free(m->groups);
		free(m->slots);
	}
	free(l->methods);
	replay_fini(&l->base_rp);
}

const char *learn_type_name(unsigned bit)
{
	return bit < sizeof(type_bit_names) / sizeof(type_bit_names[0]) ? type_bit_names[bit] : "?";
}
