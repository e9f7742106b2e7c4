/* SPDX-License-Identifier: MIT */
/*
 * examples/hello end to end: the real conduit-broker runs examples/hello's
 * own hello.policy (a generated copy whose exec lines name the programs in
 * the build tree) with both layers sandboxed.  The client's greeting and
 * the greeter's event arrive; a reload that only changes the client's name
 * argument to one over 32 bytes makes every call denied by the policy; the
 * audit log holds exactly the records these cause.
 *
 * Usage: test-hello-broker BROKER HELLO-SERVER HELLO-CLIENT HELLO-POLICY
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker-harness.h"

#define WAIT 10000 /* ms: generous, a shared 2-core machine */

/* 33 bytes: one over the rule's `name len 1..32`. */
#define LONG_NAME "a-name-that-is-longer-than-32-byt"

static const char *server_path, *client_path, *policy_src;
static char policy_text[8192];

/* Replace the first occurrence of from in text (in place, bounded). */
static void replace_once(char *text, size_t cap, const char *from, const char *to)
{
	char *p = strstr(text, from);
	size_t head, tail;

	assert_non_null(p);
	head = (size_t)(p - text);
	tail = strlen(p + strlen(from));
	assert_true(head + strlen(to) + tail < cap);
	memmove(p + strlen(to), p + strlen(from), tail + 1);
	memcpy(p, to, strlen(to));
}

/* hello.policy with its exec lines pointing into the build tree and the
 * client's exec line given extra (an argument list, or ""). */
static void make_policy(struct bk *bk, const char *client_args)
{
	char exec[512];

	snprintf(policy_text, sizeof(policy_text), "%s", "");
	{
		FILE *f = fopen(policy_src, "r");
		size_t n;
		assert_non_null(f);
		n = fread(policy_text, 1, sizeof(policy_text) - 1, f);
		assert_true(feof(f));
		fclose(f);
		policy_text[n] = 0;
	}
	snprintf(exec, sizeof(exec), "exec \"%s\"", server_path);
	replace_once(policy_text, sizeof(policy_text), "exec \"/usr/libexec/conduit/hello-server\"",
		     exec);
	snprintf(exec, sizeof(exec), "exec \"%s\"%s", client_path, client_args);
	replace_once(policy_text, sizeof(policy_text), "exec \"/usr/libexec/conduit/hello-client\"",
		     exec);
	bk_write_policy(bk, policy_text);
}

static void test_hello(void **state)
{
	struct bk bk;
	size_t allowed, denied;

	(void)state;
	bk_init(&bk);
	make_policy(&bk, "");
	bk_start(&bk);
	/* The greeting (the client's stdout) and the greeter's event. */
	assert_true(bk_wait_log(&bk, "layer client: hello, world", 1, WAIT));
	assert_true(bk_wait_log(&bk, "layer client: event: greeter greeted world (#1)", 1, WAIT));
	assert_true(
		bk_wait_log(&bk, "layer greeter: hello-server: greeted world for client", 1, WAIT));
	/* The same policy but a name the rule refuses: the broker restarts
	 * the client (its exec line changed) and denies each call. */
	make_policy(&bk, " \"" LONG_NAME "\"");
	bk_signal(&bk, SIGHUP);
	assert_true(bk_wait_log(
		&bk, "layer client: hello-client: hello.greet failed: conduit.denied", 2, WAIT));
	assert_int_equal(bk_log_count(&bk, "greeted " LONG_NAME), 0);
	assert_int_equal(bk_log_count(&bk, "hello, " LONG_NAME), 0);
	bk_stop_clean(&bk);

	assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, "greeter", NULL, NULL), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, "client", NULL, NULL), 2);
	assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, "greeter", NULL, NULL), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, "client", NULL, NULL), 2);
	bk_expect_stopped(&bk, "greeter");
	bk_expect_stopped(&bk, "client");
	assert_int_equal(bk_count(&bk, AUDIT_EV_RELOAD, NULL, NULL, NULL), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, NULL, NULL, NULL), 0);
	assert_int_equal(bk_count(&bk, AUDIT_EV_ALARM, NULL, NULL, NULL), 0);
	/* One allowed subscription per client process. */
	assert_int_equal(bk_count(&bk, AUDIT_EV_DECISION, "client", "hello.greeted", NULL), 2);
	for (size_t i = 0; i < 2; i++) {
		const struct bk_record *r =
			bk_find(&bk, AUDIT_EV_DECISION, "client", "hello.greeted", i);
		assert_int_equal(r->verdict, AUDIT_VERDICT_ALLOW);
		assert_true(r->line > 0);
	}
	/* Calls: allowed by client#1 before the reload, denied by the
	 * default rule (no rule admits a 33-byte name) after it. */
	allowed = denied = 0;
	bool reloaded = false;
	for (size_t i = 0; i < bk.nrec; i++) {
		const struct bk_record *r = &bk.rec[i];
		if (r->event == AUDIT_EV_RELOAD)
			reloaded = true;
		if (r->event != AUDIT_EV_DECISION || strcmp(r->method, "hello.greet") != 0)
			continue;
		assert_string_equal(r->layer, "client");
		assert_int_equal(r->nargs, 1);
		if (!reloaded) {
			assert_int_equal(r->verdict, AUDIT_VERDICT_ALLOW);
			assert_string_equal(r->rule, "client#1");
			allowed++;
		} else {
			assert_int_equal(r->verdict, AUDIT_VERDICT_DENY);
			assert_string_equal(r->rule, "client#default");
			denied++;
		}
	}
	assert_true(allowed >= 1);
	assert_true(denied >= 2);
	assert_int_equal(bk_count(&bk, AUDIT_EV_DECISION, NULL, NULL, NULL), 2 + allowed + denied);
	/* start, 3 spawns, reload, 3 exits, stop and the decisions. */
	assert_int_equal(bk.nrec, 1 + 3 + 1 + 3 + 1 + 2 + allowed + denied);
	bk_cleanup(&bk);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello),
	};

	char *path[4];
	int r = bk_main_paths(argc, argv, 4, "BROKER HELLO-SERVER HELLO-CLIENT HELLO-POLICY", path);

	if (r != 0)
		return r;
	bk_broker_path = path[0];
	server_path = path[1];
	client_path = path[2];
	policy_src = path[3];
	bk_layer_path = server_path; /* no @LAYER@ in the policy; set for the harness */
	return cmocka_run_group_tests_name("hello-broker", tests, NULL, NULL);
}
