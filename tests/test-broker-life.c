/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of the broker's layer life cycle with a real broker and
 * sandboxed layers (tests/broker-layer.c): a layer that ends its channel and
 * keeps running, the start order from the policy's dependencies, and the
 * rate buckets at start and reload as `conduit-policy audit` replays them.
 * Every audit record of each run is checked.
 *
 * Usage: test-broker-life BROKER LAYER CONDUIT-POLICY
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "broker-harness.h"

#define WAIT 10000 /* ms: generous, a shared 2-core machine */

#define LAYER_HEAD                                                                                 \
	"    user dynamic\n"                                                                       \
	"    syscalls stdio recvfd time\n"

static const char *policy_tool;

/* A layer that sends FIN, or closes its channel, and stays: killed after
 * the grace and handled like a crash (restart by policy), with one exit
 * record and no violation; one that sends FIN and exits after the
 * broker's FIN is a clean exit, not restarted under on-failure. */
static void test_chan_end(void **state)
{
	struct bk bk;

	(void)state;
	bk_init(&bk);
	bk_write_policy(&bk, "version 1\n"
			     "layer finstay {\n"
			     "    exec \"@LAYER@\" \"finstay\"\n" LAYER_HEAD
			     "    restart on-failure backoff 20ms..40ms max 1 per 1m\n"
			     "}\n"
			     "layer eofstay {\n"
			     "    exec \"@LAYER@\" \"eofstay\"\n" LAYER_HEAD "    restart never\n"
			     "}\n"
			     "layer finexit {\n"
			     "    exec \"@LAYER@\" \"finexit\"\n" LAYER_HEAD
			     "    restart on-failure backoff 20ms..40ms\n"
			     "}\n");
	bk_start(&bk);
	assert_true(bk_wait_log(&bk, "layer eofstay failed", 1, WAIT));
	assert_true(bk_wait_log(&bk, "layer finstay failed", 1, 2 * WAIT));
	assert_true(bk_wait_log(&bk, "exited with 0", 1, WAIT));
	assert_int_equal(bk_log_count(&bk, "layer finstay: RESULT fin-sent"), 2);
	assert_int_equal(bk_log_count(&bk, "layer eofstay: RESULT channel-dropped"), 1);
	assert_int_equal(bk_log_count(&bk, "layer finexit: RESULT fin-sent"), 1);
	assert_int_equal(bk_log_count(&bk, "still running after its channel closed: killed"), 2);
	assert_int_equal(bk_log_count(&bk, "still running after its channel ended: killed"), 1);
	bk_stop_clean(&bk);

	assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, "finstay", NULL, NULL), 2);
	assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, "finstay", NULL, NULL), 2);
	for (size_t i = 0; i < 2; i++) {
		const struct bk_record *r = bk_find(&bk, AUDIT_EV_EXIT, "finstay", NULL, i);
		assert_string_equal(r->signal, "SIGKILL");
		assert_string_equal(r->reason, "channel closed, kept running: killed");
	}
	assert_int_equal(bk_count(&bk, AUDIT_EV_ALARM, "finstay", NULL, "layer-failed"), 1);

	assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, "eofstay", NULL, NULL), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, "eofstay", NULL, NULL), 1);
	assert_string_equal(bk_find(&bk, AUDIT_EV_EXIT, "eofstay", NULL, 0)->signal, "SIGKILL");
	assert_string_equal(bk_find(&bk, AUDIT_EV_EXIT, "eofstay", NULL, 0)->reason,
			    "channel-truncated, kept running: killed");
	assert_int_equal(bk_count(&bk, AUDIT_EV_ALARM, "eofstay", NULL, "layer-failed"), 1);

	assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, "finexit", NULL, NULL), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, "finexit", NULL, NULL), 1);
	{
		const struct bk_record *r = bk_find(&bk, AUDIT_EV_EXIT, "finexit", NULL, 0);
		assert_true(r->has_code);
		assert_int_equal(r->code, 0);
		assert_string_equal(r->reason, "");
	}
	assert_int_equal(bk_count(&bk, AUDIT_EV_ALARM, "finexit", NULL, NULL), 0);
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, NULL, NULL, NULL), 0);
	/* start, 4 spawns, 4 exits, 2 alarms, stop. */
	assert_int_equal(bk.nrec, 1 + 4 + 4 + 2 + 1);
	bk_cleanup(&bk);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chan_end),
	};

	if (argc < 4) {
		fprintf(stderr, "usage: %s BROKER LAYER CONDUIT-POLICY\n", argv[0]);
		return 2;
	}
	/* The policy wants absolute paths; meson passes build-relative ones. */
	bk_broker_path = realpath(argv[1], NULL);
	bk_layer_path = realpath(argv[2], NULL);
	policy_tool = realpath(argv[3], NULL);
	if (!bk_broker_path || !bk_layer_path || !policy_tool) {
		perror("realpath");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("broker-life", tests, NULL, NULL);
}
