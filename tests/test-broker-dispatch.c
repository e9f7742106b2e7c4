/* SPDX-License-Identifier: MIT */
/*
 * The broker's dispatch and services paths end to end (broker/dispatch*.c,
 * broker/services.c): a real broker, real sandboxed layers
 * (tests/broker-layer.c), every decision checked in the audit log after a
 * clean stop.
 *
 * Usage: test-broker-dispatch BROKER LAYER
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

#define WAIT 20000 /* ms: generous, a shared 2-core machine */

#define LAYER_HEAD                                                                                 \
	"    user dynamic\n"                                                                       \
	"    syscalls stdio recvfd time\n"                                                         \
	"    syscalls allow mlock munlock getsockopt\n" /* sodium_malloc; SO_TYPE check */

static void stop_clean(struct bk *bk)
{
	int st = bk_stop(bk);

	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	bk_read_audit(bk, true);
	assert_int_equal(bk->rec[0].event, AUDIT_EV_START);
	assert_int_equal(bk->rec[bk->nrec - 1].event, AUDIT_EV_STOP);
}

/* conduit.ping echoes a "payload" bytes argument, bounded by the policy
 * like any argument: exactly the bound passes, one byte more is denied.
 * Without a payload (or with one that is not bytes) the reply is empty; a
 * constraint needs its argument present, so a plain ping needs a rule of
 * its own, after the deny that keeps larger payloads out. */
static void test_ping_payload(void **state)
{
	struct bk bk;

	(void)state;
	char path[192];

	bk_init(&bk);
	bk_write_file(&bk, "data.txt", "x\n");
	snprintf(path, sizeof(path), "%s/data.txt", bk.dir);
	setenv("TEST_OPEN", path, 1);
	bk_write_policy(&bk, "version 1\n"
			     "layer pe {\n"
			     "    exec \"@LAYER@\" \"pingecho\"\n" LAYER_HEAD "    env TEST_OPEN\n"
			     "    open \"@DIR@/data.txt\" read\n"
			     "    allow conduit.open path \"@DIR@/data.txt\"\n"
			     "    allow conduit.ping payload len 0..1048576\n"
			     "    deny conduit.ping payload len 1048577..\n"
			     "    allow conduit.ping\n"
			     "}\n");
	bk_start(&bk);
	assert_true(bk_wait_log(&bk, "RESULT pe-done", 1, WAIT));
	assert_int_equal(bk_log_count(&bk, "RESULT pe-none echo same"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT pe-64 echo same"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT pe-max echo same"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT pe-over error conduit.denied"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT pe-string empty 0"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT pe-plain reply"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT pe-open reply"), 1);
	/* The layer now waits.  The conduit.open and the denial were written
	 * before their replies, and the allowed pings deferred before them
	 * went to disk with them, in order. */
	bk_read_audit(&bk, false);
	assert_int_equal(bk_count(&bk, AUDIT_EV_DECISION, "pe", NULL, NULL), 7);
	assert_int_equal(bk.rec[bk.nrec - 1].event, AUDIT_EV_DECISION);
	assert_int_equal(bk.rec[bk.nrec - 1].verdict, AUDIT_VERDICT_DENY);
	assert_string_equal(bk.rec[bk.nrec - 2].method, "conduit.open");
	stop_clean(&bk);
	assert_int_equal(bk_count(&bk, AUDIT_EV_DECISION, "pe", "conduit.ping", NULL), 6);
	assert_string_equal(bk_find(&bk, AUDIT_EV_DECISION, "pe", "conduit.ping", 2)->rule, "pe#2");
	assert_string_equal(bk_find(&bk, AUDIT_EV_DECISION, "pe", "conduit.ping", 4)->rule, "pe#4");
	assert_string_equal(bk_find(&bk, AUDIT_EV_DECISION, "pe", "conduit.ping", 5)->rule, "pe#3");
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, NULL, NULL, NULL), 0);
	bk_cleanup(&bk);
}

/* A routed call's entry and deadline timer are reused once the call is
 * done, also after the timer fired: a later call through a reused entry
 * still times out, and late replies are still recognised and dropped. */
static void test_pending_reuse(void **state)
{
	struct bk bk;

	(void)state;
	bk_init(&bk);
	bk.call_timeout_ms = 300;
	bk_write_policy(&bk,
			"version 1\n"
			"layer echo {\n"
			"    exec \"@LAYER@\" \"provider\" \"test.echo,test.slow\"\n" LAYER_HEAD
			"    provide test.echo test.slow\n"
			"}\n"
			"layer reuse {\n"
			"    exec \"@LAYER@\" \"reuse\"\n" LAYER_HEAD "    allow test.echo\n"
			"    allow test.slow\n"
			"}\n");
	bk_start(&bk);
	assert_true(bk_wait_log(&bk, "RESULT reuse-done", 1, WAIT));
	assert_int_equal(bk_log_count(&bk, "RESULT fast reply"), 3);
	assert_int_equal(bk_log_count(&bk, "RESULT slow1 error conduit.timeout"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT slow2 error conduit.timeout"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT fast2 reply"), 1);
	assert_true(bk_wait_log(&bk, "RESULT served test.slow", 2, WAIT));
	stop_clean(&bk);
	assert_int_equal(bk_count(&bk, AUDIT_EV_DECISION, "reuse", NULL, NULL), 6);
	assert_int_equal(bk_count(&bk, AUDIT_EV_ALARM, "echo", NULL, "late-reply"), 2);
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, NULL, NULL, NULL), 0);
	bk_cleanup(&bk);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ping_payload),
		cmocka_unit_test(test_pending_reuse),
	};

	char *path[2];
	int r = bk_main_paths(argc, argv, 2, "BROKER LAYER", path);

	if (r != 0)
		return r;
	bk_broker_path = path[0];
	bk_layer_path = path[1];
	return cmocka_run_group_tests_name("broker-dispatch", tests, NULL, NULL);
}
