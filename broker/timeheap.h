/* SPDX-License-Identifier: MIT */
/*
 * timeheap: a min-heap of deadlines, intrusive (nodes live inside their
 * owners, found back with container_of-style arithmetic) so arming and
 * disarming a timer never allocates.  The loop keeps its timers here and
 * lets the earliest deadline set epoll's timeout.
 */
#ifndef CONDUIT_BROKER_TIMEHEAP_H
#define CONDUIT_BROKER_TIMEHEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct timeheap_node {
	uint64_t deadline;
	size_t idx; /* position in the heap, SIZE_MAX when not queued */
};

struct timeheap {
	struct timeheap_node **v;
	size_t len, cap;
};

#define TIMEHEAP_NODE_INIT                                                                         \
	{                                                                                          \
		.deadline = UINT64_MAX, .idx = SIZE_MAX                                            \
	}

/* Make room for one more node, so the insert after it cannot fail.
 * Errors: -ENOMEM. */
int timeheap_reserve(struct timeheap *h);
/* Queue n at n->deadline; n must not be queued and room reserved. */
void timeheap_insert(struct timeheap *h, struct timeheap_node *n);
/* Unqueue n; nothing happens when it is not queued. */
void timeheap_remove(struct timeheap *h, struct timeheap_node *n);
/* Earliest node, NULL when empty. */
struct timeheap_node *timeheap_peek(const struct timeheap *h);
static inline bool timeheap_queued(const struct timeheap_node *n)
{
	return n->idx != SIZE_MAX;
}
/* Release the array (the nodes belong to their owners). */
void timeheap_free(struct timeheap *h);

#endif
