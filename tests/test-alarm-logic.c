/* SPDX-License-Identifier: MIT */
/* Every row of the alarm state table in alarm-logic.h, the deadband at its
 * exact edges for each kind, shelve durations at max and max+1, and the
 * calls that must change nothing. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alarm-logic.h"

/* A HI alarm at 120 with deadband 5: active at >= 120, clear at < 115. */
static struct alarm hi(void)
{
	struct alarm a;
	assert_int_equal(alarm_init(&a, ALARM_HI, 120.0, 5.0), 0);
	return a;
}

#define HIGH 130.0
#define LOW  100.0

static void test_alarm_init(void **state)
{
	(void)state;
	struct alarm a = hi();
	assert_int_equal(a.state, ALARM_NORMAL);
	assert_false(a.active);
	struct alarm b = a;
	assert_int_equal(alarm_init(&b, ALARM_HI, NAN, 1.0), -EINVAL);
	assert_int_equal(alarm_init(&b, ALARM_HI, INFINITY, 1.0), -EINVAL);
	assert_int_equal(alarm_init(&b, ALARM_HI, 1.0, -0.001), -EINVAL);
	assert_int_equal(alarm_init(&b, ALARM_HI, 1.0, NAN), -EINVAL);
	assert_int_equal(alarm_init(&b, (enum alarm_kind)42, 1.0, 0.0), -EINVAL);
	assert_memory_equal(&a, &b, sizeof(a)); /* untouched on error */
	assert_int_equal(alarm_init(&b, ALARM_LOLO, -1e300, 0.0), 0);
}

static void test_alarm_normal_unack_acked_normal(void **state)
{
	(void)state;
	struct alarm a = hi();
	assert_int_equal(alarm_update(&a, LOW, 0), 0);	/* NORMAL stays */
	assert_int_equal(alarm_update(&a, HIGH, 1), 1); /* NORMAL -> UNACK */
	assert_int_equal(a.state, ALARM_UNACK);
	assert_true(alarm_is_annunciated(&a));
	assert_int_equal(alarm_update(&a, HIGH, 2), 0); /* still active: no change */
	assert_int_equal(alarm_ack(&a), 1);		/* UNACK -> ACKED */
	assert_int_equal(a.state, ALARM_ACKED);
	assert_int_equal(alarm_ack(&a), 0); /* ack again: nothing */
	assert_int_equal(alarm_update(&a, HIGH, 3), 0);
	assert_int_equal(alarm_update(&a, LOW, 4), 1); /* ACKED -> NORMAL */
	assert_int_equal(a.state, ALARM_NORMAL);
	assert_false(alarm_is_annunciated(&a));
	assert_int_equal(alarm_ack(&a), 0); /* ack in NORMAL: nothing */
	assert_int_equal(a.state, ALARM_NORMAL);
}

static void test_alarm_rtn_unack(void **state)
{
	(void)state;
	struct alarm a = hi();
	assert_int_equal(alarm_update(&a, HIGH, 0), 1);
	assert_int_equal(alarm_update(&a, LOW, 1), 1); /* UNACK -> RTN_UNACK */
	assert_int_equal(a.state, ALARM_RTN_UNACK);
	assert_true(alarm_is_annunciated(&a));
	assert_int_equal(alarm_update(&a, HIGH, 2), 1); /* RTN_UNACK -> UNACK */
	assert_int_equal(a.state, ALARM_UNACK);
	assert_int_equal(alarm_update(&a, LOW, 3), 1);
	assert_int_equal(alarm_update(&a, LOW, 4), 0);
	assert_int_equal(alarm_ack(&a), 1); /* RTN_UNACK -> NORMAL */
	assert_int_equal(a.state, ALARM_NORMAL);
}

static void test_alarm_deadband_edges(void **state)
{
	(void)state;
	/* HI/HIHI: active at >= limit, clear only below limit - deadband. */
	for (int k = 0; k < 2; k++) {
		struct alarm a;
		assert_int_equal(alarm_init(&a, k ? ALARM_HIHI : ALARM_HI, 120.0, 5.0), 0);
		assert_int_equal(alarm_update(&a, nextafter(120.0, 0.0), 0), 0);
		assert_false(a.active);
		assert_int_equal(alarm_update(&a, 120.0, 0), 1); /* exactly the limit */
		assert_true(a.active);
		assert_int_equal(alarm_update(&a, 119.0, 0), 0); /* inside the deadband */
		assert_int_equal(alarm_update(&a, 115.0, 0), 0); /* exactly limit - deadband */
		assert_true(a.active);
		assert_int_equal(alarm_update(&a, nextafter(115.0, 0.0), 0), 1);
		assert_false(a.active);
		assert_int_equal(a.state, ALARM_RTN_UNACK);
	}
	/* LO/LOLO: active at <= limit, clear only above limit + deadband. */
	for (int k = 0; k < 2; k++) {
		struct alarm a;
		assert_int_equal(alarm_init(&a, k ? ALARM_LOLO : ALARM_LO, 80.0, 2.0), 0);
		assert_int_equal(alarm_update(&a, nextafter(80.0, 100.0), 0), 0);
		assert_int_equal(alarm_update(&a, 80.0, 0), 1);
		assert_int_equal(a.state, ALARM_UNACK);
		assert_int_equal(alarm_update(&a, 82.0, 0), 0); /* exactly limit + deadband */
		assert_int_equal(alarm_update(&a, nextafter(82.0, 100.0), 0), 1);
		assert_int_equal(a.state, ALARM_RTN_UNACK);
	}
	/* Deadband 0: clears as soon as the value is back below the limit. */
	struct alarm z;
	assert_int_equal(alarm_init(&z, ALARM_HI, 10.0, 0.0), 0);
	assert_int_equal(alarm_update(&z, 10.0, 0), 1);
	assert_int_equal(alarm_update(&z, nextafter(10.0, 0.0), 0), 1);
	/* A bad reading (NaN) changes nothing. */
	struct alarm a = hi();
	assert_int_equal(alarm_update(&a, HIGH, 0), 1);
	struct alarm before = a;
	assert_int_equal(alarm_update(&a, NAN, 1), -EINVAL);
	assert_memory_equal(&a, &before, sizeof(a));
	/* Infinities are values: +inf is above any HI limit. */
	assert_int_equal(alarm_update(&a, INFINITY, 2), 0);
	assert_int_equal(alarm_update(&a, -INFINITY, 3), 1);
}

static void test_alarm_shelve(void **state)
{
	(void)state;
	/* From each visible state into SHELVED. */
	enum alarm_state from[] = {ALARM_NORMAL, ALARM_UNACK, ALARM_ACKED, ALARM_RTN_UNACK};
	for (size_t i = 0; i < 4; i++) {
		struct alarm a = hi();
		if (from[i] != ALARM_NORMAL)
			alarm_update(&a, HIGH, 0);
		if (from[i] == ALARM_ACKED)
			alarm_ack(&a);
		if (from[i] == ALARM_RTN_UNACK)
			alarm_update(&a, LOW, 0);
		assert_int_equal(a.state, from[i]);
		assert_int_equal(alarm_shelve(&a, 1000, 500), 1);
		assert_int_equal(a.state, ALARM_SHELVED);
		assert_false(alarm_is_annunciated(&a));
		assert_int_equal(alarm_ack(&a), 0); /* hidden: nothing to ack */
		assert_int_equal(a.state, ALARM_SHELVED);
	}

	/* Expiry: the condition is tracked while shelved. */
	struct alarm a = hi();
	assert_int_equal(alarm_shelve(&a, 1000, 500), 1);
	assert_int_equal(alarm_update(&a, HIGH, 1100), 0); /* active, still hidden */
	assert_true(a.active);
	assert_int_equal(alarm_tick(&a, 1499), 0);
	assert_int_equal(alarm_tick(&a, 1500), 1); /* SHELVED -> UNACK at the end */
	assert_int_equal(a.state, ALARM_UNACK);
	assert_int_equal(alarm_tick(&a, 1501), 0);

	/* Expiry with the condition clear: back to NORMAL. */
	a = hi();
	assert_int_equal(alarm_update(&a, HIGH, 0), 1);
	assert_int_equal(alarm_shelve(&a, 0, 100), 1);
	assert_int_equal(alarm_update(&a, LOW, 50), 0);
	assert_int_equal(alarm_update(&a, LOW, 100), 1); /* update also expires */
	assert_int_equal(a.state, ALARM_NORMAL);

	/* Expiry and a rising condition in the same update. */
	a = hi();
	assert_int_equal(alarm_shelve(&a, 0, 100), 1);
	assert_int_equal(alarm_update(&a, HIGH, 100), 1);
	assert_int_equal(a.state, ALARM_UNACK);

	/* Unshelve early: UNACK if active, NORMAL if not; error if not shelved. */
	a = hi();
	assert_int_equal(alarm_unshelve(&a), -EINVAL);
	assert_int_equal(alarm_shelve(&a, 0, 100), 1);
	assert_int_equal(alarm_unshelve(&a), 1);
	assert_int_equal(a.state, ALARM_NORMAL);
	assert_int_equal(alarm_update(&a, HIGH, 0), 1);
	assert_int_equal(alarm_ack(&a), 1);
	assert_int_equal(alarm_shelve(&a, 0, 100), 1);
	assert_int_equal(alarm_unshelve(&a), 1);
	assert_int_equal(a.state, ALARM_UNACK); /* an acked alarm comes back unacked */

	/* Re-shelving moves the end only. */
	assert_int_equal(alarm_shelve(&a, 0, 100), 1);
	assert_int_equal(alarm_shelve(&a, 50, 100), 0);
	assert_int_equal(alarm_tick(&a, 100), 0);
	assert_int_equal(alarm_tick(&a, 150), 1);
}

static void test_alarm_shelve_limits(void **state)
{
	(void)state;
	struct alarm a = hi();
	struct alarm before = a;
	assert_int_equal(alarm_shelve(&a, 0, 0), -ERANGE); /* empty */
	assert_int_equal(alarm_shelve(&a, 0, -1), -ERANGE);
	assert_int_equal(alarm_shelve(&a, 0, ALARM_SHELVE_MAX_MS + 1), -ERANGE); /* max + 1 */
	assert_int_equal(alarm_shelve(&a, INT64_MAX - 99, 100), -ERANGE);	 /* end overflows */
	assert_memory_equal(&a, &before, sizeof(a));
	assert_int_equal(alarm_shelve(&a, INT64_MAX - 100, 100), 1); /* end exactly INT64_MAX */
	assert_int_equal(alarm_unshelve(&a), 1);
	assert_int_equal(alarm_shelve(&a, 0, ALARM_SHELVE_MAX_MS), 1); /* exactly max */
	assert_int_equal(alarm_tick(&a, ALARM_SHELVE_MAX_MS - 1), 0);
	assert_int_equal(alarm_tick(&a, ALARM_SHELVE_MAX_MS), 1);
	assert_int_equal(alarm_shelve(&a, 0, 1), 1); /* minimum */
}

static void test_alarm_suppress(void **state)
{
	(void)state;
	struct alarm a = hi();
	assert_int_equal(alarm_suppress(&a, false), 0); /* not suppressed: nothing */
	assert_int_equal(alarm_suppress(&a, true), 1);	/* NORMAL -> SUPPRESSED */
	assert_int_equal(a.state, ALARM_SUPPRESSED);
	assert_int_equal(alarm_suppress(&a, true), 0);
	assert_int_equal(alarm_shelve(&a, 0, 100), -EBUSY);
	assert_int_equal(alarm_ack(&a), 0);
	assert_int_equal(alarm_update(&a, HIGH, 0), 0); /* tracked, hidden */
	assert_int_equal(alarm_suppress(&a, false), 1); /* SUPPRESSED -> UNACK */
	assert_int_equal(a.state, ALARM_UNACK);
	assert_int_equal(alarm_suppress(&a, true), 1);
	assert_int_equal(alarm_update(&a, LOW, 0), 0);
	assert_int_equal(alarm_suppress(&a, false), 1); /* SUPPRESSED -> NORMAL */
	assert_int_equal(a.state, ALARM_NORMAL);
	/* A shelved alarm that gets suppressed loses its shelf. */
	assert_int_equal(alarm_shelve(&a, 0, 100), 1);
	assert_int_equal(alarm_suppress(&a, true), 1);
	assert_int_equal(alarm_tick(&a, 1000), 0);
	assert_int_equal(a.state, ALARM_SUPPRESSED);
	assert_int_equal(alarm_unshelve(&a), -EINVAL);
	/* From ACKED and RTN_UNACK too. */
	a = hi();
	alarm_update(&a, HIGH, 0);
	alarm_ack(&a);
	assert_int_equal(alarm_suppress(&a, true), 1);
	a = hi();
	alarm_update(&a, HIGH, 0);
	alarm_update(&a, LOW, 0);
	assert_int_equal(alarm_suppress(&a, true), 1);
	assert_int_equal(alarm_suppress(&a, false), 1);
	assert_int_equal(a.state, ALARM_NORMAL); /* the unacked return is gone */
}

static void test_alarm_oos(void **state)
{
	(void)state;
	enum alarm_state from[] = {ALARM_NORMAL,    ALARM_UNACK,   ALARM_ACKED,
				   ALARM_RTN_UNACK, ALARM_SHELVED, ALARM_SUPPRESSED};
	for (size_t i = 0; i < 6; i++) {
		struct alarm a = hi();
		switch (from[i]) {
		case ALARM_UNACK:
			alarm_update(&a, HIGH, 0);
			break;
		case ALARM_ACKED:
			alarm_update(&a, HIGH, 0);
			alarm_ack(&a);
			break;
		case ALARM_RTN_UNACK:
			alarm_update(&a, HIGH, 0);
			alarm_update(&a, LOW, 0);
			break;
		case ALARM_SHELVED:
			alarm_shelve(&a, 0, 100);
			break;
		case ALARM_SUPPRESSED:
			alarm_suppress(&a, true);
			break;
		case ALARM_NORMAL:
		case ALARM_OOS:
			break;
		}
		assert_int_equal(a.state, from[i]);
		assert_int_equal(alarm_set_oos(&a, true), 1);
		assert_int_equal(a.state, ALARM_OOS);
	}
	struct alarm a = hi();
	assert_int_equal(alarm_set_oos(&a, false), 0); /* in service already */
	assert_int_equal(alarm_set_oos(&a, true), 1);
	assert_int_equal(alarm_set_oos(&a, true), 0);
	assert_int_equal(alarm_suppress(&a, true), -EBUSY);
	assert_int_equal(alarm_suppress(&a, false), -EBUSY);
	assert_int_equal(alarm_shelve(&a, 0, 100), -EBUSY);
	assert_int_equal(alarm_ack(&a), 0);
	assert_int_equal(alarm_update(&a, HIGH, 0), 0);
	assert_int_equal(alarm_set_oos(&a, false), 1); /* OOS -> UNACK */
	assert_int_equal(a.state, ALARM_UNACK);
	assert_int_equal(alarm_set_oos(&a, true), 1);
	assert_int_equal(alarm_update(&a, LOW, 0), 0);
	assert_int_equal(alarm_set_oos(&a, false), 1); /* OOS -> NORMAL */
	assert_int_equal(a.state, ALARM_NORMAL);
}

static void test_alarm_names(void **state)
{
	(void)state;
	static const char *const names[] = {"normal",  "unack",	     "acked", "rtn-unack",
					    "shelved", "suppressed", "oos"};
	for (int s = ALARM_NORMAL; s <= ALARM_OOS; s++)
		assert_string_equal(alarm_state_name((enum alarm_state)s), names[s]);
	assert_null(alarm_state_name((enum alarm_state)(ALARM_OOS + 1)));
	assert_string_equal(alarm_kind_name(ALARM_HIHI), "hihi");
	assert_string_equal(alarm_kind_name(ALARM_HI), "hi");
	assert_string_equal(alarm_kind_name(ALARM_LO), "lo");
	assert_string_equal(alarm_kind_name(ALARM_LOLO), "lolo");
	assert_null(alarm_kind_name((enum alarm_kind)(ALARM_LOLO + 1)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alarm_init),
		cmocka_unit_test(test_alarm_normal_unack_acked_normal),
		cmocka_unit_test(test_alarm_rtn_unack),
		cmocka_unit_test(test_alarm_deadband_edges),
		cmocka_unit_test(test_alarm_shelve),
		cmocka_unit_test(test_alarm_shelve_limits),
		cmocka_unit_test(test_alarm_suppress),
		cmocka_unit_test(test_alarm_oos),
		cmocka_unit_test(test_alarm_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
