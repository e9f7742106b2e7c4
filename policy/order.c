/* SPDX-License-Identifier: MIT */
/*
 * Start order: which layers the broker starts first, and which layer waits
 * for which to be ready (docs/broker.md, "Start order").
 *
 * Layer a depends on layer b (a != b) when a has an allow rule naming a
 * method b provides, or subscribes to an event b publishes, or is in
 * complain mode (`log` for the whole layer, every call let through) and b
 * provides anything: started before b is ready, a's first calls would find
 * nobody to answer and its first events would be lost.
 *
 * The order places, again and again, the first layer in file order whose
 * dependencies are all placed.  When every layer left waits for another,
 * the dependencies among them hold a cycle: the first layer in file order
 * that is on one stops waiting for the layers left that (directly or not)
 * wait for it, and the placing goes on.  That layer is "cut"; the lint
 * names the cycle.  The result has no cycle, so the broker can always
 * start everything.
 *
 * Sizes: at most POLICY_LAYERS_MAX layers, so two n x n byte matrices, an
 * n x n bit matrix, and O(n^3 / 64) word operations per cut (at most n
 * cuts) at compile time, never per call.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy-int.h"

struct policy_order {
	size_t n;
	size_t *order;					  /* layer indexes in start order */
	uint8_t *dep;					  /* dep[a * n + b]: a depends on b */
	uint8_t *wait;					  /* the same with the cut edges removed */
	uint8_t *cut;					  /* cut[a]: a had waits removed */
	uint8_t *mark;					  /* scratch: placed, reached */
	size_t *queue;					  /* scratch for the searches */
	size_t *parent;					  /* scratch for the lint's path */
	uint64_t (*reach)[(POLICY_LAYERS_MAX + 63) / 64]; /* scratch: closure */
};

size_t policy_layer_index(const struct policy *p, const struct policy_layer *pl)
{
	if (!p || !pl || pl < p->layers || pl >= p->layers + p->nlayers)
		return SIZE_MAX;
	return (size_t)(pl - p->layers);
}

static void deps_fill(const struct policy *p, struct policy_order *o)
{
	size_t n = o->n;

	for (size_t a = 0; a < n; a++) {
		const struct policy_layer *L = &p->layers[a];
		for (size_t i = 0; i < L->nrules; i++) {
			const struct policy_rule *r = &L->rules[i];
			size_t b;
			if (!r->allow)
				continue;
			b = policy_layer_index(p, policy_method_provider(p, r->method));
			if (b != SIZE_MAX && b != a)
				o->dep[a * n + b] = 1;
		}
		/* Complain mode lets every call through: such a layer may call
		 * whatever any other layer provides. */
		for (size_t b = 0; L->logonly && b < n; b++)
			if (b != a && p->layers[b].nprovides > 0)
				o->dep[a * n + b] = 1;
		for (size_t i = 0; i < L->nsubscriptions; i++)
			for (size_t b = 0; b < n; b++)
				if (b != a &&
				    policy_may_publish(&p->layers[b], L->subscriptions[i].event))
					o->dep[a * n + b] = 1;
	}
}

#define ROW_WORDS ((POLICY_LAYERS_MAX + 63) / 64)

/* Every unplaced layer waits for another: cut the first one on a cycle.
 * The transitive closure of the wait edges between unplaced layers, as
 * bit rows (Warshall, n^3 / 64 word operations), tells at once which
 * layers are on a cycle (they reach themselves) and which layers a cut
 * layer must stop waiting for (those that reach it back).  Searching from
 * each candidate instead would cost n^3 per cut. */
static void cut_cycle(struct policy_order *o, const uint8_t *placed)
{
	uint64_t(*reach)[ROW_WORDS] = o->reach;
	size_t n = o->n;

	memset(reach, 0, n * sizeof(*reach));
	for (size_t a = 0; a < n; a++)
		for (size_t b = 0; b < n && !placed[a]; b++)
			if (!placed[b] && o->wait[a * n + b])
				reach[a][b / 64] |= 1ull << (b % 64);
	for (size_t k = 0; k < n; k++)
		for (size_t a = 0; a < n; a++)
			if (reach[a][k / 64] & (1ull << (k % 64)))
				for (size_t w = 0; w < ROW_WORDS; w++)
					reach[a][w] |= reach[k][w];
	for (size_t a = 0; a < n; a++) {
		if (placed[a] || !(reach[a][a / 64] & (1ull << (a % 64))))
			continue;
		for (size_t b = 0; b < n; b++)
			if (b != a && (reach[b][a / 64] & (1ull << (a % 64))))
				o->wait[a * n + b] = 0;
		o->cut[a] = 1;
		return;
	}
}

void policy_order_free(struct policy_order *o)
{
	if (!o)
		return;
	free(o->order);
	free(o->dep);
	free(o->wait);
	free(o->cut);
	free(o->mark);
	free(o->queue);
	free(o->parent);
	free(o->reach);
	free(o);
}

int policy_order_new(const struct policy *p, struct policy_order **ret_order)
{
	struct policy_order *o;
	uint8_t *placed;
	size_t n, nn, k = 0;
	int r = -ENOMEM;

	if (!p || !ret_order)
		return -EINVAL;
	n = p->nlayers;
	if (n > POLICY_LAYERS_MAX)
		return -E2BIG;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->n = n;
	nn = n * n; /* at most 256^2: no overflow */
	o->order = calloc(n ? n : 1, sizeof(*o->order));
	o->dep = calloc(nn ? nn : 1, 1);
	o->wait = calloc(nn ? nn : 1, 1);
	o->cut = calloc(n ? n : 1, 1);
	o->mark = calloc(n ? 2 * n : 1, 1);
	o->queue = calloc(n ? n : 1, sizeof(*o->queue));
	o->parent = calloc(n ? n : 1, sizeof(*o->parent));
	o->reach = calloc(n ? n : 1, sizeof(*o->reach));
	if (!o->order || !o->dep || !o->wait || !o->cut || !o->mark || !o->queue || !o->parent ||
	    !o->reach)
		goto out;
	deps_fill(p, o);
	memcpy(o->wait, o->dep, nn);
	placed = o->mark;
	while (k < n) {
		size_t a = SIZE_MAX;
		for (size_t i = 0; i < n && a == SIZE_MAX; i++) {
			bool ready = !placed[i];
			for (size_t j = 0; j < n && ready; j++)
				ready = !o->wait[i * n + j] || placed[j];
			if (ready)
				a = i;
		}
		if (a == SIZE_MAX) {
			/* Each cut removes at least one edge: this ends. */
			cut_cycle(o, placed);
			continue;
		}
		placed[a] = 1;
		o->order[k++] = a;
	}
	*ret_order = o;
	return 0;
out:
	policy_order_free(o);
	return r;
}

size_t policy_order_count(const struct policy_order *o)
{
	return o ? o->n : 0;
}

size_t policy_order_at(const struct policy_order *o, size_t i)
{
	return o && i < o->n ? o->order[i] : SIZE_MAX;
}

bool policy_order_waits(const struct policy_order *o, size_t a, size_t b)
{
	return o && a < o->n && b < o->n && o->wait[a * o->n + b];
}

bool policy_order_depends(const struct policy_order *o, size_t a, size_t b)
{
	return o && a < o->n && b < o->n && o->dep[a * o->n + b];
}

bool policy_order_cut(const struct policy_order *o, size_t a)
{
	return o && a < o->n && o->cut[a];
}

size_t policy_order_cycle(struct policy_order *o, size_t a, size_t *path, size_t cap)
{
	size_t n, head = 0, tail = 0, len = 0;
	uint8_t *seen;

	if (!o || a >= o->n || cap == 0)
		return 0;
	n = o->n;
	seen = o->mark + n; /* scratch only: the order is built */
	memset(seen, 0, n);
	/* Breadth first along dependencies from a, back to a: the shortest
	 * cycle through a. */
	for (size_t b = 0; b < n; b++)
		if (o->dep[a * n + b] && !seen[b]) {
			seen[b] = 1;
			o->parent[b] = a;
			o->queue[tail++] = b;
		}
	while (head < tail) {
		size_t v = o->queue[head++];
		if (o->dep[v * n + a]) {
			/* a -> ... -> v -> a, written out from a. */
			size_t stack = 0;
			for (size_t x = v; x != a; x = o->parent[x])
				stack++;
			len = stack + 2;
			if (len > cap)
				return 0;
			path[0] = a;
			path[len - 1] = a;
			for (size_t x = v, i = stack; x != a; x = o->parent[x], i--)
				path[i] = x;
			return len;
		}
		for (size_t u = 0; u < n; u++)
			if (o->dep[v * n + u] && !seen[u] && u != a) {
				seen[u] = 1;
				o->parent[u] = v;
				o->queue[tail++] = u;
			}
	}
	return 0;
}
