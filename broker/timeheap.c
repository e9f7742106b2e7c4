/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "timeheap.h"

static void heap_swap(struct timeheap *h, size_t a, size_t b)
{
	struct timeheap_node *t = h->v[a];

	h->v[a] = h->v[b];
	h->v[b] = t;
	h->v[a]->idx = a;
	h->v[b]->idx = b;
}

static void heap_up(struct timeheap *h, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (h->v[parent]->deadline <= h->v[i]->deadline)
			break;
		heap_swap(h, i, parent);
		i = parent;
	}
}

static void heap_down(struct timeheap *h, size_t i)
{
	for (;;) {
		size_t left = 2 * i + 1, right = left + 1, min = i;

		if (left < h->len && h->v[left]->deadline < h->v[min]->deadline)
			min = left;
		if (right < h->len && h->v[right]->deadline < h->v[min]->deadline)
			min = right;
		if (min == i)
			break;
		heap_swap(h, i, min);
		i = min;
	}
}

int timeheap_reserve(struct timeheap *h)
{
	struct timeheap_node **n;
	size_t cap;

	if (h->len < h->cap)
		return 0;
	if (__builtin_mul_overflow(h->cap ? h->cap : 8, 2, &cap))
		return -ENOMEM;
	n = reallocarray(h->v, cap, sizeof(*n));
	if (!n)
		return -ENOMEM;
	h->v = n;
	h->cap = cap;
	return 0;
}

void timeheap_insert(struct timeheap *h, struct timeheap_node *n)
{
	n->idx = h->len++;
	h->v[n->idx] = n;
	heap_up(h, n->idx);
}

void timeheap_remove(struct timeheap *h, struct timeheap_node *n)
{
	size_t i = n->idx;

	if (i == SIZE_MAX)
		return;
	n->idx = SIZE_MAX;
	h->len--;
	if (i == h->len)
		return;
	/* The last node fills the hole and may need to move either way. */
	h->v[i] = h->v[h->len];
	h->v[i]->idx = i;
	heap_up(h, i);
	heap_down(h, h->v[i]->idx);
}

struct timeheap_node *timeheap_peek(const struct timeheap *h)
{
	return h->len ? h->v[0] : NULL;
}

void timeheap_free(struct timeheap *h)
{
	if (!h)
		return;
	free(h->v);
	h->v = NULL;
	h->len = h->cap = 0;
}
