/* SPDX-License-Identifier: MIT */
/*
 * `conduit-policy learn`, second half: fold sibling key values into globs,
 * turn what each argument held into constraints, and print the proposal as
 * a policy fragment, a diff against --base, or JSON.  Standard output only.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "learn.h"

size_t learn_sibling_prefix(const char *s, size_t len)
{
	for (size_t i = len; i > 0; i--)
		if (strchr("./-_:", s[i - 1]))
			return i < len ? i : 0;
	return 0;
}

static void num_add(struct argstat *a, const struct policy_num *v, uint64_t n)
{
	for (size_t i = 0; i < a->nnums; i++)
		if (policy_num_cmp(&a->nums[i].v, v) == 0) {
			a->nums[i].n += n;
			return;
		}
	if (a->nnums == LEARN_NUMSET_MAX) {
		a->nums_many = true;
		return;
	}
	a->nums[a->nnums].v = *v;
	a->nums[a->nnums++].n = n;
}

static void str_add(struct argstat *a, struct strval *v)
{
	for (size_t i = 0; i < a->nstrs; i++)
		if (a->strs[i].len == v->len && memcmp(a->strs[i].s, v->s, v->len) == 0) {
			a->strs[i].n += v->n;
			free(v->s);
			return;
		}
	if (a->nstrs == LEARN_STRSET_MAX) {
		a->strs_many = true;
		free(v->s);
		return;
	}
	a->strs[a->nstrs++] = *v;
}

static void argstat_merge(struct argstat *a, struct argstat *b)
{
	a->n += b->n;
	a->types |= b->types;
	if (b->has_int) {
		if (!a->has_int || b->imin < a->imin)
			a->imin = b->imin;
		if (!a->has_int || b->imax > a->imax)
			a->imax = b->imax;
	}
	a->has_int |= b->has_int;
	a->has_dbl |= b->has_dbl;
	a->has_nan |= b->has_nan;
	a->dmin = fmin(a->dmin, b->dmin);
	a->dmax = fmax(a->dmax, b->dmax);
	for (size_t i = 0; i < b->nnums; i++)
		num_add(a, &b->nums[i].v, b->nums[i].n);
	a->nums_many |= b->nums_many;
	for (size_t i = 0; i < b->nstrs; i++)
		str_add(a, &b->strs[i]);
	b->nstrs = 0;
	a->strs_many |= b->strs_many;
	a->str_bad |= b->str_bad;
	a->lmin = a->lmin < b->lmin ? a->lmin : b->lmin;
	a->lmax = a->lmax > b->lmax ? a->lmax : b->lmax;
	a->bools[0] |= b->bools[0];
	a->bools[1] |= b->bools[1];
}

static int group_merge(struct group *g, struct group *b)
{
	g->calls += b->calls;
	g->keys += b->keys;
	g->uncovered |= b->uncovered; /* the peak is counted again (pass 3) */
	for (size_t i = 0; i < b->nargs; i++) {
		struct argstat *a = NULL;
		for (size_t k = 0; k < g->nargs && !a; k++)
			if (strcmp(g->args[k].name, b->args[i].name) == 0)
				a = &g->args[k];
		if (!a) {
			if (g->nargs == g->acap) {
				size_t cap = g->acap ? 2 * g->acap : 4;
				struct argstat *n = realloc(g->args, cap * sizeof(*n));
				if (!n)
					return -ENOMEM;
				g->args = n;
				g->acap = cap;
			}
			a = &g->args[g->nargs++];
			*a = (struct argstat){
				.lmin = UINT64_MAX, .dmin = INFINITY, .dmax = -INFINITY};
			memcpy(a->name, b->args[i].name, sizeof(a->name));
		}
		argstat_merge(a, &b->args[i]);
	}
	b->dead = true;
	return 0;
}

/* Fold the literal key values that share a prefix with at least
 * LEARN_GLOB_SIBLINGS - 1 others into one "prefix*" group. */
static int fold_siblings(struct method *m)
{
	size_t n = m->ngroups;
	for (size_t i = 0; i < n; i++) {
		struct group *gi = &m->groups[i];
		if (gi->dead || gi->glob || !gi->key)
			continue;
		size_t pl = learn_sibling_prefix(gi->key, gi->keylen);
		if (!pl)
			continue;
		size_t count = 0;
		for (size_t j = i; j < n; j++) {
			const struct group *gj = &m->groups[j];
			count += !gj->dead && !gj->glob && gj->key && gj->keylen > pl &&
				 memcmp(gj->key, gi->key, pl) == 0 &&
				 learn_sibling_prefix(gj->key, gj->keylen) == pl;
		}
		if (count < LEARN_GLOB_SIBLINGS)
			continue;
		/* The merged group goes at the end: groups may move. */
		if (m->ngroups == m->gcap) {
			size_t cap = 2 * m->gcap;
			struct group *g = realloc(m->groups, cap * sizeof(*g));
			if (!g)
				return -ENOMEM;
			m->groups = g;
			m->gcap = cap;
			gi = &m->groups[i];
		}
		struct group *glob = &m->groups[m->ngroups];
		*glob = (struct group){.glob = true, .keylen = pl};
		if (!(glob->key = malloc(pl + 1)))
			return -ENOMEM;
		memcpy(glob->key, gi->key, pl);
		glob->key[pl] = '\0';
		m->ngroups++;
		for (size_t j = i; j < n; j++) {
			struct group *gj = &m->groups[j];
			if (!gj->dead && !gj->glob && gj->key && gj->keylen > pl &&
			    memcmp(gj->key, glob->key, pl) == 0 &&
			    learn_sibling_prefix(gj->key, gj->keylen) == pl &&
			    group_merge(glob, gj) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

static void print_int(FILE *f, __int128 v)
{
	if (v < INT64_MIN)
		v = INT64_MIN;
	if (v > (__int128)UINT64_MAX)
		v = UINT64_MAX;
	if (v <= INT64_MAX)
		fprintf(f, "%" PRId64, (int64_t)v);
	else
		fprintf(f, "%" PRIu64, (uint64_t)v);
}

/* The shortest decimal that reads back as exactly d. */
static void print_double(FILE *f, double d)
{
	char buf[40];
	for (int prec = 6; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	fputs(buf, f);
}

__attribute__((format(printf, 2, 3))) static void flag(FILE *fl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("# ", fl);
	vfprintf(fl, fmt, ap);
	fputc('\n', fl);
	va_end(ap);
}

/* A numeric constraint: a set of repeated integers, else a range widened
 * by LEARN_MARGIN_PCT of the span on each side (of the value itself when
 * only one was seen), never below zero when nothing negative was seen. */
static void num_constraint(FILE *f, FILE *fl, const struct argstat *a)
{
	bool set = !a->has_dbl && !a->nums_many;
	for (size_t i = 0; i < a->nnums && set; i++)
		set = a->nums[i].n >= LEARN_NUMSET_REPEATS;
	if (set) {
		fprintf(f, " %s ", a->name);
		if (a->nnums > 1)
			fputc('{', f);
		for (size_t i = 0; i < a->nnums; i++) {
			fputs(i ? ", " : "", f);
			num_print(f, &a->nums[i].v);
		}
		if (a->nnums > 1)
			fputc('}', f);
		return;
	}
	if (!a->has_dbl) {
		__int128 span = a->imax - a->imin, base = span;
		if (span == 0)
			base = a->imin < 0 ? -a->imin : a->imin;
		__int128 margin = (base * LEARN_MARGIN_PCT + 99) / 100;
		__int128 lo = a->imin - margin, hi = a->imax + margin;
		if (a->imin >= 0 && lo < 0)
			lo = 0;
		fprintf(f, " %s ", a->name);
		print_int(f, lo);
		fputs("..", f);
		print_int(f, hi);
		return;
	}
	double lo = a->dmin, hi = a->dmax;
	if (a->has_int) {
		lo = fmin(lo, (double)a->imin);
		hi = fmax(hi, (double)a->imax);
	}
	if (isinf(lo) && isinf(hi)) {
		flag(fl, "%s: infinities of both signs seen: not constrained", a->name);
		return;
	}
	double base = isfinite(hi - lo) && hi > lo ? hi - lo : fmax(fabs(lo), fabs(hi));
	double margin = isfinite(base) ? base * LEARN_MARGIN_PCT / 100.0 : 0;
	double nlo = lo - margin, nhi = hi + margin;
	if (lo >= 0 && nlo < 0)
		nlo = 0;
	fprintf(f, " %s ", a->name);
	if (!isinf(nlo))
		print_double(f, nlo);
	fputs("..", f);
	if (!isinf(nhi))
		print_double(f, nhi);
}

static void arg_constraint(FILE *f, FILE *fl, const struct group *g, const struct argstat *a)
{
	const unsigned numeric = 1u << CDT_TYPE_I64 | 1u << CDT_TYPE_U64 | 1u << CDT_TYPE_DOUBLE;
	if (a->n < g->calls) {
		fprintf(fl, "# %s: in %" PRIu64 " of %" PRIu64 " calls: not constrained\n", a->name,
			a->n, g->calls);
		return;
	}
	if ((a->types & numeric) == a->types) {
		if (a->has_nan) {
			flag(fl, "%s: NaN seen, which no range admits: not constrained", a->name);
			return;
		}
		num_constraint(f, fl, a);
		if (a->n == 1)
			flag(fl, "%s: value seen once", a->name);
		return;
	}
	if (a->types == 1u << CDT_TYPE_BOOL) {
		if (a->bools[0] != a->bools[1])
			fprintf(f, " %s %s", a->name, a->bools[1] ? "true" : "false");
		return;
	}
	if (a->types == 1u << CDT_TYPE_STRING && !a->str_bad && !a->strs_many) {
		fprintf(f, " %s ", a->name);
		if (a->nstrs > 1)
			fputc('{', f);
		for (size_t i = 0; i < a->nstrs; i++) {
			fputs(i ? ", " : "", f);
			str_quote_print(f, a->strs[i].s, a->strs[i].len, true);
		}
		if (a->nstrs > 1)
			fputc('}', f);
		for (size_t i = 0; i < a->nstrs; i++)
			if (a->strs[i].n == 1)
				flag(fl, "%s: a value seen once", a->name);
		return;
	}
	if (a->types == 1u << CDT_TYPE_STRING || a->types == 1u << CDT_TYPE_BYTES) {
		if (a->str_bad)
			flag(fl,
			     "%s: values the language cannot spell (invalid UTF-8, NUL, cut "
			     "or over 1 KiB): length only",
			     a->name);
		fprintf(f, " %s len %" PRIu64 "..%" PRIu64, a->name, a->lmin, a->lmax);
		return;
	}
	if (a->types == 1u << CDT_TYPE_FD)
		return;
	fprintf(fl, "# %s: of several types:", a->name);
	for (unsigned t = CDT_TYPE_BOOL; t <= CDT_TYPE_FD; t++)
		if (a->types & (1u << t))
			fprintf(fl, " %s", learn_type_name(t));
	fputs(": not constrained\n", fl);
}

/* One proposed rule: its text and the flags that go above it. */
struct proposal {
	char *text, *flags;
	size_t tlen, flen;
};

static int propose(const struct method *m, const struct group *g, struct proposal *ret)
{
	struct proposal p = {0};
	FILE *f = open_memstream(&p.text, &p.tlen);
	FILE *fl = open_memstream(&p.flags, &p.flen);
	if (!f || !fl) {
		if (f)
			fclose(f);
		if (fl)
			fclose(fl);
		free(p.text);
		free(p.flags);
		return -ENOMEM;
	}
	fprintf(f, "allow %s", m->method);
	if (g->key && m->key) {
		char *q = NULL;
		size_t ql = 0;
		FILE *qf = open_memstream(&q, &ql);
		if (qf) {
			str_quote_print(qf, g->key, g->keylen, true);
			fclose(qf);
		}
		if (q && g->glob)
			fprintf(f, " %s %.*s*\"", m->key, (int)(ql - 1), q);
		else if (q)
			fprintf(f, " %s %s", m->key, q);
		free(q);
		if (g->glob)
			fprintf(fl, "# %s: %" PRIu64 " sibling values under one prefix: a glob\n",
				m->key, g->keys);
		else if (g->calls == 1)
			flag(fl, "%s: this value seen once", m->key);
	} else if (m->key_overflow) {
		fprintf(fl, "# %s: over %d distinct values: not constrained\n", m->key,
			LEARN_KEYS_MAX);
	}
	for (size_t i = 0; i < g->nargs; i++)
		arg_constraint(f, fl, g, &g->args[i]);
	uint64_t rate = g->peak * LEARN_RATE_FACTOR;
	fprintf(f, " rate %" PRIu64 "/s", rate > POLICY_RATE_MAX ? POLICY_RATE_MAX : rate);
	if (g->calls == 1 && !(g->key && m->key))
		fputs("# call seen once\n", fl);
	fclose(f);
	fclose(fl);
	*ret = p;
	return 0;
}

static int group_cmp(const void *x, const void *y)
{
	const struct group *a = x, *b = y;
	if (!a->key || !b->key)
		return !!a->key - !!b->key;
	size_t n = a->keylen < b->keylen ? a->keylen : b->keylen;
	int c = memcmp(a->key, b->key, n);
	return c ? c : (a->keylen > b->keylen) - (a->keylen < b->keylen);
}

int learn_fold(struct learner *l)
{
	for (size_t i = 0; i < l->nmethods; i++) {
		struct method *m = &l->methods[i];
		if (fold_siblings(m) < 0)
			return -ENOMEM;
		qsort(m->groups, m->ngroups, sizeof(*m->groups), group_cmp);
		if (m->slots && learn_reindex(m) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Print to out layer's proposals with prefix before each line; JSON objects when
 * json.  only_uncovered: skip what the base policy allows already. */
int learn_print_layer(FILE *out, const struct learner *l, const char *layer, bool json,
		      bool only_uncovered, const char *prefix, unsigned *count)
{
	for (size_t i = 0; i < l->nmethods; i++) {
		const struct method *m = &l->methods[i];
		if (strcmp(m->layer, layer) != 0)
			continue;
		if (!m->calls && !json)
			fprintf(out, "%s    # %s: %" PRIu64 " denied call%s, not learned\n", prefix,
				m->method, m->denied, m->denied == 1 ? "" : "s");
		for (size_t k = 0; k < m->ngroups; k++) {
			const struct group *g = &m->groups[k];
			if (g->dead || (only_uncovered && !g->uncovered))
				continue;
			struct proposal p;
			if (propose(m, g, &p) < 0)
				return -ENOMEM;
			if (json) {
				fprintf(out, "%s{\"layer\":", (*count)++ ? "," : "");
				json_string(out, layer, strlen(layer));
				fprintf(out, ",\"method\":");
				json_string(out, m->method, strlen(m->method));
				fprintf(out, ",\"rule\":");
				json_string(out, p.text, p.tlen);
				fprintf(out,
					",\"calls\":%" PRIu64 ",\"peak_per_second\":%" PRIu64
					",\"in_base\":%s,\"flags\":[",
					g->calls, g->peak,
					l->base && !g->uncovered ? "true" : "false");
				bool first = true;
				for (char *s = p.flags, *e; s && *s; s = e + 1) {
					e = strchr(s, '\n');
					fprintf(out, "%s", first ? "" : ",");
					first = false;
					json_string(out, s + 2, (size_t)(e - s) - 2);
				}
				fprintf(out, "]}");
			} else {
				for (char *s = p.flags, *e; s && *s; s = e + 1) {
					e = strchr(s, '\n');
					fprintf(out, "%s    %.*s\n", prefix, (int)(e - s), s);
				}
				fprintf(out, "%s    %s  # %" PRIu64 " call%s\n", prefix, p.text,
					g->calls, g->calls == 1 ? "" : "s");
				(*count)++;
			}
			free(p.text);
			free(p.flags);
		}
		if (m->denied && !json && m->calls)
			fprintf(out, "%s    # %s: also %" PRIu64 " denied call%s, not learned\n",
				prefix, m->method, m->denied, m->denied == 1 ? "" : "s");
	}
	return 0;
}
