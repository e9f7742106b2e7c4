/* SPDX-License-Identifier: MIT */
/*
 * The start order (policy/order.c): dependencies from allow rules and
 * subscriptions, file order among equals, cycles cut at the first layer on
 * one, the [start-cycle] lint, and the layer limit.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"

static char text[1 << 20];

/* One layer: NAME provides PROVIDE (or nothing), then the extra lines. */
static void add_layer(size_t *len, const char *name, const char *provide, const char *extra)
{
	int n = snprintf(text + *len, sizeof(text) - *len,
			 "layer %s {\n"
			 "    exec \"/usr/bin/true\"\n"
			 "    user dynamic\n"
			 "    syscalls stdio\n"
			 "%s%s%s"
			 "%s"
			 "}\n",
			 name, provide ? "    provide " : "", provide ? provide : "",
			 provide ? "\n" : "", extra);
	assert_true(n > 0 && (size_t)n < sizeof(text) - *len);
	*len += (size_t)n;
}

static struct policy *compile(void)
{
	struct policy *p = NULL;

	assert_int_equal(policy_compile_buffer("order.policy", text, strlen(text), stderr, &p), 0);
	return p;
}

static size_t idx(const struct policy *p, const char *name)
{
	size_t i = policy_layer_index(p, policy_layer(p, name));

	assert_true(i != SIZE_MAX);
	return i;
}

/* The order holds every layer once and puts each after what it waits for. */
static void check_consistent(const struct policy *p, const struct policy_order *o)
{
	size_t n = policy_layer_count(p), pos[POLICY_LAYERS_MAX];

	assert_int_equal(policy_order_count(o), n);
	for (size_t i = 0; i < n; i++)
		pos[i] = SIZE_MAX;
	for (size_t k = 0; k < n; k++) {
		size_t a = policy_order_at(o, k);
		assert_true(a < n);
		assert_true(pos[a] == SIZE_MAX);
		pos[a] = k;
	}
	for (size_t a = 0; a < n; a++)
		for (size_t b = 0; b < n; b++) {
			if (policy_order_waits(o, a, b)) {
				assert_true(pos[b] < pos[a]);
				assert_true(policy_order_depends(o, a, b));
			}
			if (policy_order_depends(o, a, b) && !policy_order_waits(o, a, b))
				assert_true(policy_order_cut(o, a));
		}
	assert_int_equal(policy_order_at(o, n), SIZE_MAX);
}

static void test_no_dependencies(void **state)
{
	struct policy *p;
	struct policy_order *o;
	size_t len = 0;

	(void)state;
	len = (size_t)snprintf(text, sizeof(text), "version 1\n");
	add_layer(&len, "a", "x.a", "");
	add_layer(&len, "b", NULL, "    allow conduit.ping\n"); /* a broker method: no edge */
	add_layer(&len, "c", "x.c", "    allow x.c\n");		/* its own method: no edge */
	add_layer(&len, "d", NULL, "    deny x.a\n");		/* deny: no edge */
	p = compile();
	assert_int_equal(policy_order_new(p, &o), 0);
	check_consistent(p, o);
	for (size_t k = 0; k < 4; k++)
		assert_int_equal(policy_order_at(o, k), k);
	for (size_t a = 0; a < 4; a++)
		for (size_t b = 0; b < 4; b++)
			assert_false(policy_order_depends(o, a, b));
	policy_order_free(o);
	policy_free(p);
}

/* Calls and subscriptions, against file order. */
static void test_dependencies(void **state)
{
	struct policy *p;
	struct policy_order *o;
	size_t len = 0;

	(void)state;
	len = (size_t)snprintf(text, sizeof(text), "version 1\n");
	add_layer(&len, "ui", NULL, "    allow x.mid\n    subscribe ev.tick\n");
	add_layer(&len, "mid", "x.mid", "    allow x.base\n");
	add_layer(&len, "clock", NULL, "    publish ev.tick\n");
	add_layer(&len, "base", "x.base", "");
	add_layer(&len, "learner", NULL, "    log\n"); /* complain mode: may call anything */
	p = compile();
	assert_int_equal(policy_order_new(p, &o), 0);
	check_consistent(p, o);
	assert_true(policy_order_waits(o, idx(p, "ui"), idx(p, "mid")));
	assert_true(policy_order_waits(o, idx(p, "ui"), idx(p, "clock")));
	assert_true(policy_order_waits(o, idx(p, "mid"), idx(p, "base")));
	assert_false(policy_order_waits(o, idx(p, "ui"), idx(p, "base"))); /* not transitive */
	assert_false(policy_order_waits(o, idx(p, "base"), idx(p, "ui")));
	/* First in file order among the layers whose waits are placed. */
	assert_int_equal(policy_order_at(o, 0), idx(p, "clock"));
	assert_int_equal(policy_order_at(o, 1), idx(p, "base"));
	assert_int_equal(policy_order_at(o, 2), idx(p, "mid"));
	assert_int_equal(policy_order_at(o, 3), idx(p, "ui"));
	assert_int_equal(policy_order_at(o, 4), idx(p, "learner"));
	assert_true(policy_order_waits(o, idx(p, "learner"), idx(p, "mid")));
	assert_true(policy_order_waits(o, idx(p, "learner"), idx(p, "base")));
	assert_false(policy_order_waits(o, idx(p, "learner"), idx(p, "clock")));
	for (size_t a = 0; a < 5; a++)
		assert_false(policy_order_cut(o, a));
	policy_order_free(o);
	policy_free(p);
}

static unsigned cycle_warnings;
static char last_warning[1024];

static void on_diag(void *userdata, const struct policy_diag *d)
{
	(void)userdata;
	if (d->severity == POLICY_SEV_WARNING && strstr(d->message, "[start-cycle]")) {
		cycle_warnings++;
		snprintf(last_warning, sizeof(last_warning), "%u: %s", d->line, d->message);
	}
}

/* a -> b -> c -> a, plus d outside the cycle waiting for a: a is cut
 * (first in file order on the cycle), d still waits for a. */
static void test_cycle(void **state)
{
	struct policy *p;
	struct policy_order *o;
	size_t len = 0, path[8];

	(void)state;
	len = (size_t)snprintf(text, sizeof(text), "version 1\n");
	add_layer(&len, "d", NULL, "    allow x.a\n");
	add_layer(&len, "a", "x.a", "    allow x.b\n");
	add_layer(&len, "b", "x.b", "    allow x.c\n");
	add_layer(&len, "c", "x.c", "    allow x.a\n");
	p = compile();
	assert_int_equal(policy_order_new(p, &o), 0);
	check_consistent(p, o);
	assert_false(policy_order_cut(o, idx(p, "d")));
	assert_true(policy_order_cut(o, idx(p, "a")));
	assert_false(policy_order_cut(o, idx(p, "b")));
	assert_false(policy_order_cut(o, idx(p, "c")));
	assert_false(policy_order_waits(o, idx(p, "a"), idx(p, "b")));
	assert_true(policy_order_waits(o, idx(p, "d"), idx(p, "a")));
	assert_true(policy_order_waits(o, idx(p, "c"), idx(p, "a")));
	assert_int_equal(policy_order_at(o, 0), idx(p, "a"));
	assert_int_equal(policy_order_cycle(o, idx(p, "a"), path, 8), 4);
	assert_int_equal(path[0], idx(p, "a"));
	assert_int_equal(path[1], idx(p, "b"));
	assert_int_equal(path[2], idx(p, "c"));
	assert_int_equal(path[3], idx(p, "a"));
	assert_int_equal(policy_order_cycle(o, idx(p, "a"), path, 3), 0); /* does not fit */
	assert_int_equal(policy_order_cycle(o, idx(p, "d"), path, 8), 0); /* on no cycle */
	cycle_warnings = 0;
	(void)policy_lint(p, on_diag, NULL);
	assert_int_equal(cycle_warnings, 1);
	assert_string_equal(last_warning,
			    "8: layers depend on each other (a -> b -> c -> a: each calls or "
			    "subscribes to what the next provides or publishes): 'a' starts "
			    "without waiting for them [start-cycle]");
	policy_order_free(o);
	policy_free(p);
}

/* Two cycles sharing a layer: each is cut once, and everything starts. */
static void test_two_cycles(void **state)
{
	struct policy *p;
	struct policy_order *o;
	size_t len = 0;

	(void)state;
	len = (size_t)snprintf(text, sizeof(text), "version 1\n");
	add_layer(&len, "a", "x.a", "    allow x.b\n");
	add_layer(&len, "b", "x.b", "    publish ev.b\n    allow x.c\n");
	add_layer(&len, "c", "x.c", "    subscribe ev.d\n    allow x.a\n");
	add_layer(&len, "d", NULL, "    publish ev.d\n    subscribe ev.b\n");
	p = compile();
	assert_int_equal(policy_order_new(p, &o), 0);
	check_consistent(p, o);
	assert_true(policy_order_cut(o, idx(p, "a")));
	assert_true(policy_order_cut(o, idx(p, "b")));
	assert_false(policy_order_cut(o, idx(p, "c")));
	assert_false(policy_order_cut(o, idx(p, "d")));
	cycle_warnings = 0;
	(void)policy_lint(p, on_diag, NULL);
	assert_int_equal(cycle_warnings, 2);
	policy_order_free(o);
	policy_free(p);
}

/* POLICY_LAYERS_MAX layers: a chain against file order, then one cycle
 * through all of them (cut once, its path of n + 1 fits exactly). */
static void test_max_layers(void **state)
{
	static size_t path[POLICY_LAYERS_MAX + 1];
	const size_t n = POLICY_LAYERS_MAX;
	struct policy *p;
	struct policy_order *o;

	(void)state;
	for (int ring = 0; ring < 2; ring++) {
		size_t len = (size_t)snprintf(text, sizeof(text), "version 1\n");
		for (size_t i = 0; i < n; i++) {
			char name[16], prov[16], extra[64];
			snprintf(name, sizeof(name), "l%zu", i);
			snprintf(prov, sizeof(prov), "m.l%zu", i);
			extra[0] = 0;
			if (i + 1 < n || ring)
				snprintf(extra, sizeof(extra), "    allow m.l%zu\n", (i + 1) % n);
			add_layer(&len, name, prov, extra);
		}
		p = compile();
		assert_int_equal(policy_layer_count(p), n);
		assert_int_equal(policy_order_new(p, &o), 0);
		check_consistent(p, o);
		if (!ring) {
			for (size_t k = 0; k < n; k++)
				assert_int_equal(policy_order_at(o, k), n - 1 - k);
		} else {
			assert_true(policy_order_cut(o, 0));
			for (size_t a = 1; a < n; a++)
				assert_false(policy_order_cut(o, a));
			assert_int_equal(policy_order_at(o, 0), 0);
			assert_int_equal(policy_order_at(o, 1), n - 1);
			assert_int_equal(policy_order_cycle(o, 0, path, n + 1), n + 1);
			assert_int_equal(policy_order_cycle(o, 0, path, n), 0);
		}
		policy_order_free(o);
		policy_free(p);
	}
}

/* The costliest shape for the cycle cutting: a chain of 200 layers
 * waiting into 56 layers that all call each other (55 cuts, each with
 * most layers still unplaced).  It must finish and stay consistent. */
static void test_dense_cycles(void **state)
{
	const size_t n = POLICY_LAYERS_MAX, chain = 200;
	struct policy *p;
	struct policy_order *o;
	size_t len = (size_t)snprintf(text, sizeof(text), "version 1\n"), cuts = 0;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		char name[16], prov[16], extra[4096];
		size_t e = 0;
		snprintf(name, sizeof(name), "l%zu", i);
		snprintf(prov, sizeof(prov), "m.l%zu", i);
		extra[0] = 0;
		if (i < chain)
			e += (size_t)snprintf(extra + e, sizeof(extra) - e, "    allow m.l%zu\n",
					      i + 1);
		else
			for (size_t j = chain; j < n; j++)
				if (j != i)
					e += (size_t)snprintf(extra + e, sizeof(extra) - e,
							      "    allow m.l%zu\n", j);
		add_layer(&len, name, prov, extra);
	}
	p = compile();
	assert_int_equal(policy_order_new(p, &o), 0);
	check_consistent(p, o);
	for (size_t a = 0; a < n; a++)
		cuts += policy_order_cut(o, a);
	assert_int_equal(cuts, n - chain - 1);
	assert_int_equal(policy_order_at(o, 0), chain); /* the first of the dense part */
	policy_order_free(o);
	policy_free(p);
}

static void test_args(void **state)
{
	struct policy_order *o = NULL;

	(void)state;
	assert_int_equal(policy_order_new(NULL, &o), -EINVAL);
	policy_order_free(NULL);
	assert_int_equal(policy_order_count(NULL), 0);
	assert_int_equal(policy_order_at(NULL, 0), SIZE_MAX);
	assert_false(policy_order_waits(NULL, 0, 0));
	assert_int_equal(policy_layer_index(NULL, NULL), SIZE_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_dependencies),
		cmocka_unit_test(test_dependencies),
		cmocka_unit_test(test_cycle),
		cmocka_unit_test(test_two_cycles),
		cmocka_unit_test(test_max_layers),
		cmocka_unit_test(test_dense_cycles),
		cmocka_unit_test(test_args),
	};

	return cmocka_run_group_tests_name("policy-order", tests, NULL, NULL);
}
