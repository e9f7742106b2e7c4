/* SPDX-License-Identifier: MIT */
/*
 * Linking a parsed policy: the checks that need the whole file (who
 * provides what, who publishes what, contradictory rules, expect lines
 * naming layers), then the read-only arrays and hash indexes the matcher
 * walks.  Everything goes into the policy's arena.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

uint32_t policy_hash(const char *s, size_t len)
{
	/* FNV-1a.  The tables are built from the trusted policy and never
	 * grow, so a peer can only probe them: a chain is at most as long
	 * as the policy made it. */
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static size_t table_size(size_t n)
{
	size_t sz = 4;
	while (sz < 2 * n)
		sz *= 2;
	return sz;
}

static bool glob_equal(const struct policy_glob *a, const struct policy_glob *b)
{
	return a->literal == b->literal && a->len == b->len && memcmp(a->pat, b->pat, a->len) == 0;
}

static bool cons_one_equal(const struct policy_cons *a, const struct policy_cons *b)
{
	if (strcmp(a->arg, b->arg) != 0 || a->kind != b->kind)
		return false;
	switch (a->kind) {
	case POLICY_CONS_GLOB:
		return glob_equal(&a->u.glob, &b->u.glob);
	case POLICY_CONS_RANGE:
		return policy_num_cmp(&a->u.range.lo, &b->u.range.lo) == 0 &&
		       policy_num_cmp(&a->u.range.hi, &b->u.range.hi) == 0;
	case POLICY_CONS_NUMSET:
		if (a->u.nums.n != b->u.nums.n)
			return false;
		for (size_t i = 0; i < a->u.nums.n; i++) {
			bool found = false;
			for (size_t j = 0; j < b->u.nums.n && !found; j++)
				found = policy_num_cmp(&a->u.nums.v[i], &b->u.nums.v[j]) == 0;
			if (!found)
				return false;
		}
		return true;
	case POLICY_CONS_STRSET:
		if (a->u.strs.n != b->u.strs.n)
			return false;
		for (size_t i = 0; i < a->u.strs.n; i++) {
			bool found = false;
			for (size_t j = 0; j < b->u.strs.n && !found; j++)
				found = glob_equal(&a->u.strs.v[i], &b->u.strs.v[j]);
			if (!found)
				return false;
		}
		return true;
	case POLICY_CONS_LEN:
		return a->u.len.lo == b->u.len.lo && a->u.len.hi == b->u.len.hi;
	case POLICY_CONS_BOOL:
		return a->u.b == b->u.b;
	}
	return false;
}

bool cons_equal(const struct policy_cons *a, size_t na, const struct policy_cons *b, size_t nb)
{
	if (na != nb)
		return false;
	for (int pass = 0; pass < 2; pass++) {
		const struct policy_cons *x = pass ? b : a, *y = pass ? a : b;
		for (size_t i = 0; i < na; i++) {
			bool found = false;
			for (size_t j = 0; j < nb && !found; j++)
				found = cons_one_equal(&x[i], &y[j]);
			if (!found)
				return false;
		}
	}
	return true;
}

struct prov {
	const char *method;
	size_t layer;
	size_t off;
};

static int prov_cmp(const void *a, const void *b)
{
	const struct prov *x = a, *y = b;
	int c = strcmp(x->method, y->method);
	if (c)
		return c;
	return x->off < y->off ? -1 : x->off > y->off;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

struct rule_ref {
	const struct policy_rule *r;
	size_t pos;
};

static int rule_ref_cmp(const void *a, const void *b)
{
	const struct rule_ref *x = a, *y = b;
	int c = strcmp(x->r->method, y->r->method);
	if (c)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* A hash of a rule's constraints that equal constraint lists share (order
 * of constraints and of set members ignored; numbers hashed by value). */
static uint64_t num_fp(const struct policy_num *n)
{
	double d = n->kind == POLICY_NUM_I64   ? (double)n->v.i
		   : n->kind == POLICY_NUM_U64 ? (double)n->v.u
					       : n->v.d;
	if (d == 0)
		d = 0; /* -0.0 equals 0.0 */
	uint64_t u;
	memcpy(&u, &d, sizeof(u));
	return u * 0x9e3779b97f4a7c15ull;
}

static uint64_t glob_fp(const struct policy_glob *g)
{
	return policy_hash(g->pat, g->len) * 31u + g->literal;
}

static uint64_t cons_fp(const struct policy_cons *c, size_t n)
{
	uint64_t sum = n;
	for (size_t i = 0; i < n; i++) {
		uint64_t h = policy_hash(c[i].arg, strlen(c[i].arg)) * 7u + (uint64_t)c[i].kind;
		switch (c[i].kind) {
		case POLICY_CONS_GLOB:
			h ^= glob_fp(&c[i].u.glob);
			break;
		case POLICY_CONS_RANGE:
			h ^= num_fp(&c[i].u.range.lo) + 3 * num_fp(&c[i].u.range.hi);
			break;
		case POLICY_CONS_NUMSET:
			for (size_t k = 0; k < c[i].u.nums.n; k++)
				h += num_fp(&c[i].u.nums.v[k]);
			break;
		case POLICY_CONS_STRSET:
			for (size_t k = 0; k < c[i].u.strs.n; k++)
				h += glob_fp(&c[i].u.strs.v[k]);
			break;
		case POLICY_CONS_LEN:
			h ^= c[i].u.len.lo * 1000003u + c[i].u.len.hi;
			break;
		case POLICY_CONS_BOOL:
			h ^= c[i].u.b;
			break;
		}
		sum += h * 0xff51afd7ed558ccdull;
	}
	return sum;
}

struct fp_ref {
	uint64_t fp;
	size_t pos;
};

static int fp_cmp(const void *a, const void *b)
{
	const struct fp_ref *x = a, *y = b;
	if (x->fp != y->fp)
		return x->fp < y->fp ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* An allow and a deny of one method with the same constraints: the first
 * would always win, so the file says two opposite things.  Sorting by
 * fingerprint keeps this near-linear for large rule sets. */
static int contradictions(struct parser *ps, const struct policy_rule **list, size_t n)
{
	struct fp_ref *fp = arena_array(ps->a, n, sizeof(*fp), _Alignof(struct fp_ref));
	if (!fp)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		fp[i] = (struct fp_ref){cons_fp(list[i]->cons, list[i]->ncons), i};
	qsort(fp, n, sizeof(*fp), fp_cmp);
	for (size_t i = 0; i < n && !ps->d->stop;) {
		size_t j = i;
		while (j < n && fp[j].fp == fp[i].fp)
			j++;
		/* within a run, positions ascend: report each later rule once */
		for (size_t y = i + 1; y < j; y++) {
			const struct policy_rule *ry = list[fp[y].pos];
			for (size_t x = i; x < y; x++) {
				const struct policy_rule *rx = list[fp[x].pos];
				if (rx->allow == ry->allow ||
				    !cons_equal(rx->cons, rx->ncons, ry->cons, ry->ncons))
					continue;
				diag_at(ps->d, POLICY_SEV_ERROR, ry->off, 5,
					"contradictory rules: this %s has the same method and "
					"arguments as the %s at line %u",
					ry->allow ? "allow" : "deny", rx->allow ? "allow" : "deny",
					rx->line);
				break;
			}
		}
		i = j;
	}
	return 0;
}

/* Per-layer method index and the contradiction check, which is per method. */
static int layer_index(struct parser *ps, struct policy_layer *L)
{
	struct arena *a = ps->a;
	struct policy_method_index *ix =
		arena_alloc(a, sizeof(*ix), _Alignof(struct policy_method_index));
	struct rule_ref *refs = arena_array(a, L->nrules, sizeof(*refs), _Alignof(struct rule_ref));
	if (!ix || !refs)
		return -ENOMEM;
	for (size_t i = 0; i < L->nrules; i++)
		refs[i] = (struct rule_ref){&L->rules[i], i};
	qsort(refs, L->nrules, sizeof(*refs), rule_ref_cmp);
	size_t nent = 0;
	for (size_t i = 0; i < L->nrules; i++)
		if (i == 0 || strcmp(refs[i].r->method, refs[i - 1].r->method) != 0)
			nent++;
	struct policy_method_entry *ent =
		arena_array(a, nent, sizeof(*ent), _Alignof(struct policy_method_entry));
	const struct policy_rule **list =
		arena_array(a, L->nrules, sizeof(*list), _Alignof(void *));
	size_t nslots = table_size(nent);
	uint32_t *slots = arena_array(a, nslots, sizeof(uint32_t), _Alignof(uint32_t));
	if (!ent || !list || !slots)
		return -ENOMEM;
	size_t e = 0;
	for (size_t i = 0; i < L->nrules;) {
		size_t j = i;
		while (j < L->nrules && strcmp(refs[j].r->method, refs[i].r->method) == 0) {
			list[j] = refs[j].r;
			j++;
		}
		if (contradictions(ps, &list[i], j - i) < 0)
			return -ENOMEM;
		ent[e].method = list[i]->method;
		ent[e].len = strlen(list[i]->method);
		ent[e].hash = policy_hash(ent[e].method, ent[e].len);
		ent[e].rules = (const struct policy_rule *const *)&list[i];
		ent[e].nrules = j - i;
		if (index_method(ps->a, &ent[e]) < 0)
			return -ENOMEM;
		for (uint32_t h = ent[e].hash;; h++)
			if (!slots[h & (nslots - 1)]) {
				slots[h & (nslots - 1)] = (uint32_t)(e + 1);
				break;
			}
		e++;
		i = j;
	}
	ix->entries = ent;
	ix->nentries = nent;
	ix->slots = slots;
	ix->mask = nslots - 1;
	L->index = ix;
	return 0;
}

#define FINISH(vec, type, field, nfield)                                                           \
	do {                                                                                       \
		L->field = (type)(vec).v;                                                          \
		L->nfield = (vec).n;                                                               \
	} while (0)

int compile_link(struct parser *ps)
{
	struct arena *a = ps->a;
	struct policy *p = ps->p;
	struct layer_build *lbs = ps->layers.v;
	size_t nl = ps->layers.n;
	struct policy_layer *layers =
		arena_array(a, nl, sizeof(*layers), _Alignof(struct policy_layer));
	if (!layers)
		return -ENOMEM;

	for (size_t i = 0; i < nl; i++) {
		struct layer_build *lb = &lbs[i];
		struct policy_layer *L = lb->L;
		struct layer_spec *sp = &L->spec;
		if (!lb->seen_exec)
			diag_at(ps->d, POLICY_SEV_ERROR, lb->name_off, strlen(sp->name),
				"layer '%s' has no exec", sp->name);
		char **nul = vec_push(a, &lb->argv, sizeof(char *), _Alignof(char *));
		if (!nul)
			return -ENOMEM;
		sp->argv = (const char *const *)lb->argv.v;
		sp->nargv = lb->argv.n - 1;
		sp->env_allow = (const char *const *)lb->env.v;
		sp->nenv_allow = lb->env.n;
		sp->syscalls_allow = (const char *const *)lb->sys_allow.v;
		sp->nsyscalls_allow = lb->sys_allow.n;
		sp->syscalls_deny = (const char *const *)lb->sys_deny.v;
		sp->nsyscalls_deny = lb->sys_deny.n;
		sp->landlock = lb->landlock.v;
		sp->nlandlock = lb->landlock.n;
		FINISH(lb->resources, const struct policy_resource *, resources, nresources);
		FINISH(lb->provides, const char *const *, provides, nprovides);
		L->provides_off = lb->provides_off.v;
		FINISH(lb->publishes, const char *const *, publishes, npublishes);
		FINISH(lb->subs, const struct policy_subscription *, subscriptions, nsubscriptions);
		FINISH(lb->rules, const struct policy_rule *, rules, nrules);
		char id[POLICY_LAYER_NAME_MAX + 16];
		snprintf(id, sizeof(id), "%s#default", sp->name);
		if (!(L->default_rule_id = arena_strndup(a, id, strlen(id))))
			return -ENOMEM;
		layers[i] = *L;
	}
	p->layers = layers;
	p->nlayers = nl;

	size_t nslots = table_size(nl);
	uint32_t *slots = arena_array(a, nslots, sizeof(uint32_t), _Alignof(uint32_t));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < nl; i++)
		for (uint32_t h = policy_hash(layers[i].spec.name, strlen(layers[i].spec.name));;
		     h++)
			if (!slots[h & (nslots - 1)]) {
				slots[h & (nslots - 1)] = (uint32_t)(i + 1);
				break;
			}
	p->layer_slots = slots;
	p->layer_mask = nslots - 1;

	/* Providers: one layer per method, never a broker method. */
	size_t nprov = 0, npub = 0;
	for (size_t i = 0; i < nl; i++) {
		nprov += layers[i].nprovides;
		npub += layers[i].npublishes;
	}
	struct prov *pv = arena_array(a, nprov, sizeof(*pv), _Alignof(struct prov));
	struct policy_provider *out =
		arena_array(a, nprov, sizeof(*out), _Alignof(struct policy_provider));
	const char **pubs = arena_array(a, npub, sizeof(char *), _Alignof(char *));
	if (!pv || !out || !pubs)
		return -ENOMEM;
	size_t k = 0, kp = 0;
	for (size_t i = 0; i < nl; i++) {
		for (size_t j = 0; j < layers[i].nprovides; j++)
			pv[k++] =
				(struct prov){layers[i].provides[j], i, layers[i].provides_off[j]};
		for (size_t j = 0; j < layers[i].npublishes; j++)
			pubs[kp++] = layers[i].publishes[j];
	}
	qsort(pv, nprov, sizeof(*pv), prov_cmp);
	qsort(pubs, npub, sizeof(char *), str_cmp);
	size_t nout = 0;
	for (size_t i = 0; i < nprov; i++) {
		if (policy_builtin_find(pv[i].method)) {
			diag_at(ps->d, POLICY_SEV_ERROR, pv[i].off, strlen(pv[i].method),
				"method '%s' is served by the broker and cannot be provided",
				pv[i].method);
			continue;
		}
		if (nout && strcmp(out[nout - 1].method, pv[i].method) == 0) {
			diag_at(ps->d, POLICY_SEV_ERROR, pv[i].off, strlen(pv[i].method),
				"method '%s' is provided by both layer '%s' and layer '%s'",
				pv[i].method, out[nout - 1].layer->spec.name,
				layers[pv[i].layer].spec.name);
			continue;
		}
		out[nout++] = (struct policy_provider){pv[i].method, &layers[pv[i].layer]};
	}
	p->providers = out;
	p->nproviders = nout;

	for (size_t i = 0; i < nl; i++) {
		const struct policy_layer *L = &layers[i];
		for (size_t j = 0; j < L->nrules; j++) {
			const struct policy_rule *r = &L->rules[j];
			if (r->allow && !policy_builtin_find(r->method) &&
			    !policy_method_provider(p, r->method))
				diag_at(ps->d, POLICY_SEV_ERROR, r->method_off, strlen(r->method),
					"allow on '%s', which no layer provides and the broker "
					"does not offer",
					r->method);
		}
		for (size_t j = 0; j < L->nsubscriptions; j++) {
			const struct policy_subscription *s = &L->subscriptions[j];
			if (!bsearch(&s->event, pubs, npub, sizeof(char *), str_cmp))
				diag_at(ps->d, POLICY_SEV_ERROR, s->off, strlen(s->event),
					"subscribe to '%s', which no layer publishes", s->event);
		}
		int r = layer_index(ps, &layers[i]);
		if (r < 0)
			return r;
	}

	p->expects = ps->expects.v;
	p->nexpects = ps->expects.n;
	for (size_t i = 0; i < p->nexpects; i++) {
		const struct policy_expect *e = &p->expects[i];
		if (!policy_layer(p, e->layer))
			diag_at(ps->d, POLICY_SEV_ERROR, e->layer_off, strlen(e->layer),
				"expect names unknown layer '%s'", e->layer);
	}
	p->nrules = ps->nrules;
	p->nbuckets = ps->nbuckets;
	return 0;
}
