/* SPDX-License-Identifier: MIT */
/*
 * Token buckets per (layer, rule) with an injected clock: no sleeps, exact
 * arithmetic, a clock that goes back, huge gaps, independent buckets.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"

#define MS  1000000ull
#define SEC 1000000000ull

static struct policy *compile(const char *rules)
{
	char buf[4096];
	snprintf(buf, sizeof(buf),
		 "version 1\n"
		 "layer io {\n    exec \"/bin/io\"\n    syscalls stdio\n"
		 "    provide tag.write tag.read\n}\n"
		 "layer ui {\n    exec \"/bin/ui\"\n    syscalls stdio\n%s}\n"
		 "layer hmi {\n    exec \"/bin/hmi\"\n    syscalls stdio\n%s}\n",
		 rules, rules);
	struct policy *p = NULL;
	assert_int_equal(policy_compile_buffer("rate.policy", buf, strlen(buf), stderr, &p), 0);
	return p;
}

static enum policy_verdict call(struct policy *p, struct policy_state *st, const char *layer,
				const char *method, uint64_t now)
{
	struct policy_decision d;
	assert_int_equal(policy_decide(p, st, layer, method, NULL, 0, now, &d), 0);
	if (d.verdict == POLICY_RATE_LIMITED)
		assert_non_null(d.rule); /* the rule that limits is named */
	return d.verdict;
}

static void test_burst_and_refill(void **state)
{
	(void)state;
	struct policy *p = compile("    allow tag.write rate 2/s\n");
	struct policy_state *st;
	assert_int_equal(policy_state_new(p, &st), 0);
	uint64_t t = 1000 * SEC;
	assert_int_equal(call(p, st, "ui", "tag.write", t), POLICY_ALLOW);
	assert_int_equal(call(p, st, "ui", "tag.write", t), POLICY_ALLOW);
	assert_int_equal(call(p, st, "ui", "tag.write", t), POLICY_RATE_LIMITED);
	/* one token every 500 ms, exactly */
	assert_int_equal(call(p, st, "ui", "tag.write", t + 500 * MS - 1), POLICY_RATE_LIMITED);
	assert_int_equal(call(p, st, "ui", "tag.write", t + 500 * MS), POLICY_ALLOW);
	assert_int_equal(call(p, st, "ui", "tag.write", t + 500 * MS), POLICY_RATE_LIMITED);
	/* a long pause refills to the burst, not beyond */
	t += 3600 * SEC;
	assert_int_equal(call(p, st, "ui", "tag.write", t), POLICY_ALLOW);
	assert_int_equal(call(p, st, "ui", "tag.write", t), POLICY_ALLOW);
	assert_int_equal(call(p, st, "ui", "tag.write", t), POLICY_RATE_LIMITED);
	/* 4 calls a second for 100 s: exactly the 200 the rate earns pass */
	unsigned allowed = 0;
	for (unsigned i = 1; i <= 400; i++)
		allowed += call(p, st, "ui", "tag.write", t + i * (SEC / 4)) == POLICY_ALLOW;
	assert_int_equal(allowed, 200);
	policy_state_free(st);
	policy_free(p);
}

static void test_explicit_burst(void **state)
{
	(void)state;
	struct policy *p = compile("    allow tag.write rate 1/m burst 5\n");
	struct policy_state *st;
	assert_int_equal(policy_state_new(p, &st), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(call(p, st, "ui", "tag.write", 0), POLICY_ALLOW);
	assert_int_equal(call(p, st, "ui", "tag.write", 0), POLICY_RATE_LIMITED);
	assert_int_equal(call(p, st, "ui", "tag.write", 59 * SEC), POLICY_RATE_LIMITED);
	assert_int_equal(call(p, st, "ui", "tag.write", 60 * SEC), POLICY_ALLOW);
	policy_state_free(st);
	policy_free(p);
}

static void test_clock_backwards(void **state)
{
	(void)state;
	struct policy *p = compile("    allow tag.write rate 1/s\n");
	struct policy_state *st;
	assert_int_equal(policy_state_new(p, &st), 0);
	assert_int_equal(call(p, st, "ui", "tag.write", 10 * SEC), POLICY_ALLOW);
	/* going back refills nothing ... */
	assert_int_equal(call(p, st, "ui", "tag.write", 5 * SEC), POLICY_RATE_LIMITED);
	/* ... and does not credit the same second twice when time comes back */
	assert_int_equal(call(p, st, "ui", "tag.write", 10 * SEC + 999 * MS), POLICY_RATE_LIMITED);
	assert_int_equal(call(p, st, "ui", "tag.write", 11 * SEC), POLICY_ALLOW);
	policy_state_free(st);
	policy_free(p);
}

static void test_huge_gap(void **state)
{
	(void)state;
	struct policy *p = compile("    allow tag.write rate 1000000/s burst 1000000\n");
	struct policy_state *st;
	assert_int_equal(policy_state_new(p, &st), 0);
	assert_int_equal(call(p, st, "ui", "tag.write", 0), POLICY_ALLOW);
	unsigned allowed = 0;
	for (unsigned i = 0; i < 1000001; i++)
		allowed += call(p, st, "ui", "tag.write", UINT64_MAX) == POLICY_ALLOW;
	assert_int_equal(allowed, 1000000); /* refilled to the burst, no overflow */
	policy_state_free(st);
	policy_free(p);
}

static void test_independent_buckets(void **state)
{
	(void)state;
	struct policy *p = compile("    allow tag.write rate 1/s\n    allow tag.read rate 1/s\n");
	struct policy_state *st, *other;
	assert_int_equal(policy_state_new(p, &st), 0);
	assert_int_equal(policy_state_new(p, &other), 0);
	assert_int_equal(call(p, st, "ui", "tag.write", 0), POLICY_ALLOW);
	assert_int_equal(call(p, st, "ui", "tag.write", 0), POLICY_RATE_LIMITED);
	/* another rule, another layer, another state: their own buckets */
	assert_int_equal(call(p, st, "ui", "tag.read", 0), POLICY_ALLOW);
	assert_int_equal(call(p, st, "hmi", "tag.write", 0), POLICY_ALLOW);
	assert_int_equal(call(p, other, "ui", "tag.write", 0), POLICY_ALLOW);
	/* a denied call spends nothing */
	assert_int_equal(call(p, st, "hmi", "tag.nothing", 0), POLICY_DENY);
	assert_int_equal(call(p, st, "hmi", "tag.read", 0), POLICY_ALLOW);
	policy_state_free(other);
	policy_state_free(st);
	policy_free(p);
}

static void test_rate_limits_in_file(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"    allow tag.write rate 0/s\n",
		"    allow tag.write rate 1000001/s\n",
		"    allow tag.write rate 1/s burst 1000001\n",
		"    allow tag.write rate 1000000/24h\n", /* burst * period over 2^64 ns */
		"    allow tag.write rate 1/0s\n",
		"    allow tag.write rate 1/25h\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char buf[512];
		snprintf(buf, sizeof(buf),
			 "version 1\nlayer io {\n    exec \"/bin/io\"\n    provide tag.write\n}\n"
			 "layer ui {\n    exec \"/bin/ui\"\n%s}\n",
			 bad[i]);
		struct policy *p = NULL;
		assert_int_equal(policy_compile_buffer("r", buf, strlen(buf), NULL, &p), -EINVAL);
		assert_null(p);
	}
	/* the largest accepted values */
	struct policy *p = compile("    allow tag.write rate 1000000/s burst 1000000\n"
				   "    allow tag.read rate 1/24h burst 213503\n");
	policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_and_refill),
		cmocka_unit_test(test_explicit_burst),
		cmocka_unit_test(test_clock_backwards),
		cmocka_unit_test(test_huge_gap),
		cmocka_unit_test(test_independent_buckets),
		cmocka_unit_test(test_rate_limits_in_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
