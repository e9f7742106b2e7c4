/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "timeheap.h"

#define NODES 512

static void check_invariant(const struct timeheap *h)
{
	for (size_t i = 0; i < h->len; i++) {
		assert_int_equal(h->v[i]->idx, i);
		if (i > 0)
			assert_true(h->v[(i - 1) / 2]->deadline <= h->v[i]->deadline);
	}
}

static void test_empty_and_single(void **state)
{
	struct timeheap h = {0};
	struct timeheap_node n = TIMEHEAP_NODE_INIT;

	(void)state;
	assert_null(timeheap_peek(&h));
	assert_false(timeheap_queued(&n));
	timeheap_remove(&h, &n); /* not queued: no-op */
	assert_int_equal(timeheap_reserve(&h), 0);
	n.deadline = 5;
	timeheap_insert(&h, &n);
	assert_true(timeheap_queued(&n));
	assert_ptr_equal(timeheap_peek(&h), &n);
	timeheap_remove(&h, &n);
	assert_false(timeheap_queued(&n));
	assert_null(timeheap_peek(&h));
	timeheap_free(&h);
	timeheap_free(NULL);
}

/* Random inserts, removals from anywhere and pops, checked against a brute
 * force minimum over the queued nodes. */
static void test_random_against_reference(void **state)
{
	static struct timeheap_node nodes[NODES];
	struct timeheap h = {0};

	(void)state;
	srand(12345); /* fixed seed: the same sequence every run */
	for (size_t i = 0; i < NODES; i++)
		nodes[i] = (struct timeheap_node)TIMEHEAP_NODE_INIT;
	for (int step = 0; step < 20000; step++) {
		struct timeheap_node *n = &nodes[(size_t)rand() % NODES], *min = NULL;
		int op = rand() % 3;

		if (op == 0 && !timeheap_queued(n)) {
			/* Few distinct values: plenty of ties. */
			n->deadline = (uint64_t)(rand() % 64);
			assert_int_equal(timeheap_reserve(&h), 0);
			timeheap_insert(&h, n);
		} else if (op == 1) {
			timeheap_remove(&h, n);
		} else if (timeheap_peek(&h)) {
			timeheap_remove(&h, timeheap_peek(&h));
		}
		check_invariant(&h);
		for (size_t i = 0; i < NODES; i++)
			if (timeheap_queued(&nodes[i]) &&
			    (!min || nodes[i].deadline < min->deadline))
				min = &nodes[i];
		if (!min)
			assert_null(timeheap_peek(&h));
		else
			assert_int_equal(timeheap_peek(&h)->deadline, min->deadline);
	}
	/* Draining yields a non-decreasing sequence. */
	for (uint64_t last = 0; timeheap_peek(&h);) {
		struct timeheap_node *n = timeheap_peek(&h);

		assert_true(n->deadline >= last);
		last = n->deadline;
		timeheap_remove(&h, n);
	}
	timeheap_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_and_single),
		cmocka_unit_test(test_random_against_reference),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
