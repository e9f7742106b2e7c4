/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conduit/conduit.h"

static void test_peer_errors_named(void **state)
{
	(void)state;
	for (int e = CDT_E_BASE + 1; e < CDT_E_MAX; e++) {
		assert_true(cdt_err_is_peer(-e));
		assert_string_not_equal(cdt_strerror(-e), "unknown conduit error");
	}
}

static void test_errno_is_not_peer(void **state)
{
	(void)state;
	assert_false(cdt_err_is_peer(-ENOMEM));
	assert_false(cdt_err_is_peer(-CDT_E_BASE));
	assert_false(cdt_err_is_peer(-CDT_E_MAX));
	assert_false(cdt_err_is_peer(0));
	assert_false(cdt_err_is_peer(CDT_E_AUTH));
	assert_string_equal(cdt_strerror(-ENOMEM), strerror(ENOMEM));
	assert_string_equal(cdt_strerror(0), "success");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_peer_errors_named),
		cmocka_unit_test(test_errno_is_not_peer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
