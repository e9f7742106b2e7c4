/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "supervise.h"

#define MS 1000000ull
#define S  (1000 * MS)

/* The fake clock: tests move it by hand, nothing reads a real clock. */
static uint64_t now;

static struct sup_config config(enum sup_restart restart)
{
	return (struct sup_config){
		.restart = restart,
		.backoff_min_ns = 100 * MS,
		.backoff_max_ns = 10 * S,
		.max_restarts = 5,
		.window_ns = 60 * S,
		.start_timeout_ns = 2 * S,
		.heartbeat_ns = 5 * S,
		.stop_timeout_ns = 3 * S,
	};
}

static void init(struct sup_layer *l, const struct sup_config *cfg)
{
	now = 1000 * S;
	assert_int_equal(sup_init(l, cfg), 0);
	assert_int_equal(l->state, SUP_STOPPED);
	assert_int_equal(sup_deadline(l), SUP_NO_DEADLINE);
}

/* Start and reach ready. */
static void bring_up(struct sup_layer *l)
{
	assert_int_equal(sup_start(l, now), SUP_ACT_SPAWN);
	assert_int_equal(l->state, SUP_STARTING);
	assert_int_equal(sup_ready(l, now), SUP_ACT_NONE);
	assert_int_equal(l->state, SUP_READY);
}

/* Run the backoff until the restart; returns the delay that was waited. */
static uint64_t wait_backoff(struct sup_layer *l)
{
	uint64_t d = sup_deadline(l), delay;

	assert_int_equal(l->state, SUP_BACKOFF);
	assert_true(d != SUP_NO_DEADLINE && d > now);
	delay = d - now;
	now = d - 1;
	assert_int_equal(sup_tick(l, now), SUP_ACT_NONE);
	assert_int_equal(l->state, SUP_BACKOFF);
	now = d;
	assert_int_equal(sup_tick(l, now), SUP_ACT_SPAWN);
	assert_int_equal(l->state, SUP_STARTING);
	return delay;
}

static void test_config_check(void **state)
{
	struct sup_config c = config(SUP_RESTART_ON_FAILURE), b;

	(void)state;
	assert_int_equal(sup_config_check(&c), 0);
	assert_int_equal(sup_config_check(NULL), -EINVAL);
	b = c;
	b.backoff_min_ns = 0;
	assert_int_equal(sup_config_check(&b), -EINVAL);
	b = c;
	b.backoff_max_ns = b.backoff_min_ns - 1;
	assert_int_equal(sup_config_check(&b), -EINVAL);
	b.backoff_max_ns = b.backoff_min_ns;
	assert_int_equal(sup_config_check(&b), 0);
	b = c;
	b.max_restarts = 0;
	assert_int_equal(sup_config_check(&b), -EINVAL);
	b.max_restarts = SUP_RESTARTS_MAX;
	assert_int_equal(sup_config_check(&b), 0);
	b.max_restarts = SUP_RESTARTS_MAX + 1;
	assert_int_equal(sup_config_check(&b), -EINVAL);
	b = c;
	b.window_ns = 0;
	assert_int_equal(sup_config_check(&b), -EINVAL);
	b = c;
	b.stop_timeout_ns = 0;
	assert_int_equal(sup_config_check(&b), -EINVAL);
	b = c;
	b.restart = (enum sup_restart)3;
	assert_int_equal(sup_config_check(&b), -EINVAL);
	b.restart = (enum sup_restart) - 1;
	assert_int_equal(sup_config_check(&b), -EINVAL);
}

static void test_backoff_values(void **state)
{
	struct sup_config c = config(SUP_RESTART_ALWAYS);
	const uint64_t expect[] = {100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000};

	(void)state;
	for (uint32_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
		assert_int_equal(sup_backoff_ns(&c, i), expect[i] * MS);
	assert_int_equal(sup_backoff_ns(&c, 63), c.backoff_max_ns);
	assert_int_equal(sup_backoff_ns(&c, 64), c.backoff_max_ns);
	assert_int_equal(sup_backoff_ns(&c, UINT32_MAX), c.backoff_max_ns);
	/* A shift that would overflow 64 bits is capped, not wrapped. */
	c.backoff_min_ns = UINT64_MAX / 2 + 1;
	c.backoff_max_ns = UINT64_MAX;
	assert_int_equal(sup_backoff_ns(&c, 0), UINT64_MAX / 2 + 1);
	assert_int_equal(sup_backoff_ns(&c, 1), UINT64_MAX);
}

/* The delays the state machine actually waits, crash after crash. */
static void test_backoff_sequence(void **state)
{
	struct sup_config c = config(SUP_RESTART_ON_FAILURE);
	const uint64_t expect[] = {100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000};
	struct sup_layer l;

	(void)state;
	c.max_restarts = SUP_RESTARTS_MAX;
	init(&l, &c);
	bring_up(&l);
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		assert_int_equal(sup_exited(&l, SUP_EXIT_FAILURE, now), SUP_ACT_NONE);
		assert_int_equal(wait_backoff(&l), expect[i] * MS);
		assert_int_equal(sup_ready(&l, now), SUP_ACT_NONE);
	}
}

/* Exactly max_restarts restarts inside the window are allowed; the crash
 * that would need one more makes the layer failed. */
static void test_crash_loop(void **state)
{
	struct sup_config c = config(SUP_RESTART_ALWAYS);
	struct sup_layer l;

	(void)state;
	c.max_restarts = 3;
	init(&l, &c);
	bring_up(&l);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sup_exited(&l, SUP_EXIT_FAILURE, now), SUP_ACT_NONE);
		wait_backoff(&l);
	}
	assert_int_equal(sup_exited(&l, SUP_EXIT_FAILURE, now), SUP_ACT_NONE);
	assert_int_equal(l.state, SUP_FAILED);
	assert_int_equal(sup_deadline(&l), SUP_NO_DEADLINE);
	assert_int_equal(sup_tick(&l, now + 100 * S), SUP_ACT_NONE);
	assert_int_equal(l.state, SUP_FAILED);
	assert_int_equal(sup_exited(&l, SUP_EXIT_FAILURE, now), -EINVAL);
	/* An operator start is a fresh history. */
	assert_int_equal(sup_start(&l, now), SUP_ACT_SPAWN);
	assert_int_equal(sup_exited(&l, SUP_EXIT_FAILURE, now), SUP_ACT_NONE);
	assert_int_equal(wait_backoff(&l), 100 * MS);
}

/* Crashes spread wider than the window never add up to a loop. */
static void test_crash_window_slides(void **state)
{
	struct sup_config c = config(SUP_RESTART_ON_FAILURE);
	struct sup_layer l;

	(void)state;
	c.max_restarts = 2;
	c.window_ns = 10 * S;
	c.backoff_max_ns = 200 * MS;
	init(&l, &c);
	bring_up(&l);
	for (int i = 0; i < 20; i++) {
		now += 6 * S; /* two restarts per 12 s: at most 2 in any 10 s */
		assert_int_equal(sup_exited(&l, SUP_EXIT_FAILURE, now), SUP_ACT_NONE);
		assert_int_equal(l.state, SUP_BACKOFF);
		wait_backoff(&l);
	}
	/* The last two restarts were 6 s apart; a third one within the same
	 * 10 s is one too many. */
	now += 3 * S;
	assert_int_equal(sup_exited(&l, SUP_EXIT_FAILURE, now), SUP_ACT_NONE);
	assert_int_equal(l.state, SUP_FAILED);
}

static void exit_as(enum sup_restart policy, enum sup_exit how, enum sup_state expect)
{
	struct sup_config c = config(policy);
	struct sup_layer l;

	init(&l, &c);
	bring_up(&l);
	assert_int_equal(sup_exited(&l, how, now), SUP_ACT_NONE);
	assert_int_equal(l.state, expect);
	if (expect == SUP_BACKOFF)
		assert_int_equal(wait_backoff(&l), 100 * MS);
	else
		assert_int_equal(sup_deadline(&l), SUP_NO_DEADLINE);
}

static void test_restart_policies(void **state)
{
	(void)state;
	exit_as(SUP_RESTART_NEVER, SUP_EXIT_CLEAN, SUP_STOPPED);
	exit_as(SUP_RESTART_NEVER, SUP_EXIT_FAILURE, SUP_FAILED);
	exit_as(SUP_RESTART_ON_FAILURE, SUP_EXIT_CLEAN, SUP_STOPPED);
	exit_as(SUP_RESTART_ON_FAILURE, SUP_EXIT_FAILURE, SUP_BACKOFF);
	exit_as(SUP_RESTART_ALWAYS, SUP_EXIT_CLEAN, SUP_BACKOFF);
	exit_as(SUP_RESTART_ALWAYS, SUP_EXIT_FAILURE, SUP_BACKOFF);
}

/* A spawn that fails (setup step) is a failed exit from starting. */
static void test_spawn_failure(void **state)
{
	struct sup_config c = config(SUP_RESTART_ON_FAILURE);
	struct sup_layer l;

	(void)state;
	init(&l, &c);
	assert_int_equal(sup_start(&l, now), SUP_ACT_SPAWN);
	assert_int_equal(sup_exited(&l, SUP_EXIT_FAILURE, now), SUP_ACT_NONE);
	assert_int_equal(wait_backoff(&l), 100 * MS);
	assert_int_equal(sup_exited(&l, SUP_EXIT_FAILURE, now), SUP_ACT_NONE);
	assert_int_equal(wait_backoff(&l), 200 * MS);
}

static void test_stable_run_resets_backoff(void **state)
{
	struct sup_config c = config(SUP_RESTART_ON_FAILURE);
	struct sup_layer l;

	(void)state;
	c.stable_ns = 30 * S;
	c.heartbeat_ns = 0;
	init(&l, &c);
	bring_up(&l);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sup_exited(&l, SUP_EXIT_FAILURE, now), SUP_ACT_NONE);
		wait_backoff(&l);
		assert_int_equal(sup_ready(&l, now), SUP_ACT_NONE);
	}
	/* Ready for one ns less than stable: keeps climbing. */
	now += 30 * S - 1;
	assert_int_equal(sup_exited(&l, SUP_EXIT_FAILURE, now), SUP_ACT_NONE);
	assert_int_equal(wait_backoff(&l), 800 * MS);
	assert_int_equal(sup_ready(&l, now), SUP_ACT_NONE);
	/* Exactly stable: starts over at the minimum. */
	now += 30 * S;
	assert_int_equal(sup_exited(&l, SUP_EXIT_FAILURE, now), SUP_ACT_NONE);
	assert_int_equal(wait_backoff(&l), 100 * MS);
}

static void test_start_timeout(void **state)
{
	struct sup_config c = config(SUP_RESTART_ON_FAILURE);
	struct sup_layer l;

	(void)state;
	init(&l, &c);
	assert_int_equal(sup_start(&l, now), SUP_ACT_SPAWN);
	assert_int_equal(sup_deadline(&l), now + 2 * S);
	assert_int_equal(sup_tick(&l, now + 2 * S - 1), SUP_ACT_NONE);
	assert_int_equal(l.state, SUP_STARTING);
	now += 2 * S;
	assert_int_equal(sup_tick(&l, now), SUP_ACT_KILL);
	assert_int_equal(l.state, SUP_STOPPING);
	assert_int_equal(sup_deadline(&l), SUP_NO_DEADLINE);
	/* Even a clean exit status counts as a failure: we killed it. */
	assert_int_equal(sup_exited(&l, SUP_EXIT_CLEAN, now), SUP_ACT_NONE);
	assert_int_equal(wait_backoff(&l), 100 * MS);
}

static void test_heartbeat(void **state)
{
	struct sup_config c = config(SUP_RESTART_ON_FAILURE);
	struct sup_layer l;
	uint64_t first;

	(void)state;
	init(&l, &c);
	bring_up(&l);
	first = sup_deadline(&l);
	assert_int_equal(first, now + 5 * S);
	now += 4 * S;
	assert_int_equal(sup_heartbeat(&l, now), SUP_ACT_NONE);
	assert_int_equal(sup_deadline(&l), now + 5 * S);
	assert_int_equal(sup_tick(&l, first), SUP_ACT_NONE);
	assert_int_equal(l.state, SUP_READY);
	now += 5 * S;
	assert_int_equal(sup_tick(&l, now), SUP_ACT_KILL);
	assert_int_equal(l.state, SUP_STOPPING);
	assert_int_equal(sup_exited(&l, SUP_EXIT_FAILURE, now), SUP_ACT_NONE);
	assert_int_equal(l.state, SUP_BACKOFF);
}

static void test_stop(void **state)
{
	struct sup_config c = config(SUP_RESTART_ALWAYS);
	struct sup_layer l;

	(void)state;
	init(&l, &c);
	assert_int_equal(sup_stop(&l, now), SUP_ACT_NONE); /* already stopped */
	bring_up(&l);
	assert_int_equal(sup_stop(&l, now), SUP_ACT_TERM);
	assert_int_equal(l.state, SUP_STOPPING);
	assert_int_equal(sup_deadline(&l), now + 3 * S);
	assert_int_equal(sup_stop(&l, now), SUP_ACT_NONE); /* idempotent */
	now += 3 * S;
	assert_int_equal(sup_tick(&l, now), SUP_ACT_KILL);
	assert_int_equal(sup_tick(&l, now + S), SUP_ACT_NONE);
	/* A stop is not a failure, even with restart always. */
	assert_int_equal(sup_exited(&l, SUP_EXIT_FAILURE, now), SUP_ACT_NONE);
	assert_int_equal(l.state, SUP_STOPPED);
	/* Stop while backing off: nothing to signal. */
	bring_up(&l);
	assert_int_equal(sup_exited(&l, SUP_EXIT_FAILURE, now), SUP_ACT_NONE);
	assert_int_equal(l.state, SUP_BACKOFF);
	assert_int_equal(sup_stop(&l, now), SUP_ACT_NONE);
	assert_int_equal(l.state, SUP_STOPPED);
	assert_int_equal(sup_deadline(&l), SUP_NO_DEADLINE);
}

static void test_fault(void **state)
{
	struct sup_config c = config(SUP_RESTART_ON_FAILURE);
	struct sup_layer l;

	(void)state;
	init(&l, &c);
	assert_int_equal(sup_fault(&l, now), -EINVAL);
	bring_up(&l);
	assert_int_equal(sup_fault(&l, now), SUP_ACT_KILL);
	assert_int_equal(sup_fault(&l, now), SUP_ACT_NONE); /* kill already sent */
	assert_int_equal(sup_exited(&l, SUP_EXIT_CLEAN, now), SUP_ACT_NONE);
	assert_int_equal(l.state, SUP_BACKOFF);
	/* A fault during an orderly stop escalates to SIGKILL but stays a stop. */
	wait_backoff(&l);
	assert_int_equal(sup_ready(&l, now), SUP_ACT_NONE);
	assert_int_equal(sup_stop(&l, now), SUP_ACT_TERM);
	assert_int_equal(sup_fault(&l, now), SUP_ACT_KILL);
	assert_int_equal(sup_exited(&l, SUP_EXIT_FAILURE, now), SUP_ACT_NONE);
	assert_int_equal(l.state, SUP_STOPPED);
}

static void test_transition_table(void **state)
{
	/* The complete list of allowed transitions. */
	static const struct {
		enum sup_state from, to;
	} allowed[] = {
		{SUP_STOPPED, SUP_STARTING},  {SUP_STARTING, SUP_READY},
		{SUP_STARTING, SUP_STOPPING}, {SUP_STARTING, SUP_BACKOFF},
		{SUP_STARTING, SUP_STOPPED},  {SUP_STARTING, SUP_FAILED},
		{SUP_READY, SUP_STOPPING},    {SUP_READY, SUP_BACKOFF},
		{SUP_READY, SUP_STOPPED},     {SUP_READY, SUP_FAILED},
		{SUP_STOPPING, SUP_STOPPED},  {SUP_STOPPING, SUP_BACKOFF},
		{SUP_STOPPING, SUP_FAILED},   {SUP_BACKOFF, SUP_STARTING},
		{SUP_BACKOFF, SUP_STOPPED},   {SUP_FAILED, SUP_STARTING},
	};

	(void)state;
	for (int from = 0; from < SUP_STATE_COUNT; from++) {
		for (int to = 0; to < SUP_STATE_COUNT; to++) {
			bool expect = false;

			for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
				if (allowed[i].from == (enum sup_state)from &&
				    allowed[i].to == (enum sup_state)to)
					expect = true;
			assert_int_equal(sup_transition_allowed(from, to), expect);
		}
		assert_false(sup_transition_allowed(from, SUP_STATE_COUNT));
		assert_string_not_equal(sup_state_name(from), "invalid");
	}
	assert_false(sup_transition_allowed(SUP_STATE_COUNT, SUP_STOPPED));
	assert_string_equal(sup_state_name(SUP_STATE_COUNT), "invalid");
}

/* Events outside their states are refused and change nothing. */
static void test_out_of_state_events(void **state)
{
	struct sup_config c = config(SUP_RESTART_ON_FAILURE);
	struct sup_layer l, before;

	(void)state;
	init(&l, &c);
	before = l;
	assert_int_equal(sup_ready(&l, now), -EINVAL);
	assert_int_equal(sup_heartbeat(&l, now), -EINVAL);
	assert_int_equal(sup_exited(&l, SUP_EXIT_CLEAN, now), -EINVAL);
	assert_memory_equal(&l, &before, sizeof(l));
	assert_int_equal(sup_start(&l, now), SUP_ACT_SPAWN);
	before = l;
	assert_int_equal(sup_start(&l, now), -EINVAL);
	assert_int_equal(sup_heartbeat(&l, now), -EINVAL);
	assert_int_equal(sup_exited(&l, (enum sup_exit)7, now), -EINVAL);
	assert_memory_equal(&l, &before, sizeof(l));
	assert_int_equal(sup_ready(&l, now), SUP_ACT_NONE);
	before = l;
	assert_int_equal(sup_ready(&l, now), -EINVAL); /* a second hello */
	assert_int_equal(sup_start(&l, now), -EINVAL);
	assert_memory_equal(&l, &before, sizeof(l));
	assert_int_equal(sup_exited(&l, SUP_EXIT_FAILURE, now), SUP_ACT_NONE);
	before = l;
	assert_int_equal(sup_ready(&l, now), -EINVAL);
	assert_int_equal(sup_fault(&l, now), -EINVAL);
	assert_int_equal(sup_exited(&l, SUP_EXIT_FAILURE, now), -EINVAL);
	assert_memory_equal(&l, &before, sizeof(l));
	assert_int_equal(sup_init(&l, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_check),
		cmocka_unit_test(test_backoff_values),
		cmocka_unit_test(test_backoff_sequence),
		cmocka_unit_test(test_crash_loop),
		cmocka_unit_test(test_crash_window_slides),
		cmocka_unit_test(test_restart_policies),
		cmocka_unit_test(test_spawn_failure),
		cmocka_unit_test(test_stable_run_resets_backoff),
		cmocka_unit_test(test_start_timeout),
		cmocka_unit_test(test_heartbeat),
		cmocka_unit_test(test_stop),
		cmocka_unit_test(test_fault),
		cmocka_unit_test(test_transition_table),
		cmocka_unit_test(test_out_of_state_events),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
