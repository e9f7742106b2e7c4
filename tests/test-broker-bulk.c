/* SPDX-License-Identifier: MIT */
/*
 * Bulk values end to end (docs/protocol.md sections 4.1 and 4.2): a real
 * broker, real sandboxed layers (tests/bulk-layer.c).  Long bytes values go
 * as BULK frames (up to MSG_BULKF_MAX) or sealed memfds that the broker
 * forwards unread; the policy's `len` bounds them
 * like inline bytes; the audit records their length with "bulk":true; a
 * sender whose memfd is not sealed at its length is dropped, with the
 * broker's fds back where they were; a tampered value reaches the callee,
 * which refuses the message and nothing else.
 *
 * Usage: test-broker-bulk BROKER BULK-LAYER
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "broker-harness.h"
#include "conduit/conduit.h"

#define WAIT	30000 /* ms: generous, a shared 2-core machine */
/* Near the longest bytes value a call to test.bulk can carry inline
 * (CDT_MSG_MAX less 32 bytes of header and framing), leaving room for the
 * one byte more that the policy must deny. */
#define MAX_LEN (CDT_MSG_MAX - 64u)

#define LAYER_HEAD                                                                                 \
	"    user dynamic\n"                                                                       \
	"    syscalls stdio recvfd time\n"                                                         \
	"    syscalls allow getsockopt\n"                                                          \
	"    limit memory 512M\n"

static const char *const evil_kinds[] = {
	"notmemfd", "nosealing", "noseals", "nowrite", "noshrink",
	"nogrow",   "noseal",	 "short",   "long",
};
#define NEVIL (sizeof(evil_kinds) / sizeof(evil_kinds[0]))

static void write_policy(struct bk *bk, bool evil)
{
	char text[8192];
	int n = snprintf(
		text, sizeof(text),
		"version 1\n"
		"layer callee {\n"
		"    exec \"@LAYER@\" \"callee\"\n" LAYER_HEAD "    provide test.bulk\n"
		"}\n"
		"layer caller {\n"
		"    exec \"@LAYER@\" \"caller\" \"%u\"\n" LAYER_HEAD
		"    allow test.bulk data len 0..%u\n"
		"    allow conduit.ping payload len 0..1048576\n"
		"}\n"
		"layer tamper {\n"
		"    exec \"@LAYER@\" \"evil\" \"tamper\"\n" LAYER_HEAD "    allow test.bulk\n"
		"}\n"
		"layer tframe {\n"
		"    exec \"@LAYER@\" \"evil\" \"tframe\"\n" LAYER_HEAD "    allow test.bulk\n"
		"}\n",
		MAX_LEN, MAX_LEN);
	assert_true(n > 0 && (size_t)n < sizeof(text));
	for (size_t i = 0; evil && i < NEVIL; i++) {
		int k = snprintf(text + n, sizeof(text) - (size_t)n,
				 "layer e%s {\n"
				 "    exec \"@LAYER@\" \"evil\" \"%s\"\n" LAYER_HEAD
				 "    restart never\n"
				 "    allow test.bulk\n"
				 "}\n",
				 evil_kinds[i], evil_kinds[i]);
		assert_true(k > 0 && (size_t)k < sizeof(text) - (size_t)n);
		n += k;
	}
	bk_write_policy(bk, text);
}

/* Wait, bounded, until the broker holds want fds. */
static size_t wait_fds(struct bk *bk, size_t want)
{
	const struct timespec step = {0, 50 * 1000 * 1000};
	size_t n = bk_fd_count(bk);

	for (int i = 0; i < WAIT / 50 && n != want; i++) {
		nanosleep(&step, NULL);
		n = bk_fd_count(bk);
	}
	return n;
}

static size_t count_in_file(const char *path, const char *needle)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0, n = 0;

	assert_non_null(f);
	while (getline(&line, &cap, f) > 0)
		for (const char *p = line; (p = strstr(p, needle)); p++)
			n++;
	free(line);
	fclose(f);
	return n;
}

/* Honest traffic, then the tampered value: what the broker holds then is
 * the baseline the hostile run must come back to. */
static size_t run_honest(struct bk *bk, bool evil)
{
	write_policy(bk, evil);
	bk_start(bk);
	assert_true(bk_wait_log(bk, "RESULT caller-done", 1, WAIT));
	assert_true(bk_wait_log(bk, "RESULT evil-tamper", 1, WAIT));
	assert_true(bk_wait_log(bk, "RESULT evil-tframe", 1, WAIT));
	assert_int_equal(bk_log_count(bk, "RESULT below same"), 1);
	assert_int_equal(bk_log_count(bk, "RESULT min same"), 1);
	assert_int_equal(bk_log_count(bk, "RESULT mib same"), 1);
	assert_int_equal(bk_log_count(bk, "RESULT max same"), 1);
	assert_int_equal(bk_log_count(bk, "RESULT over error conduit.denied"), 1);
	assert_int_equal(bk_log_count(bk, "RESULT ping same"), 1);
	assert_int_equal(bk_log_count(bk, "RESULT fmax same"), 1);
	assert_int_equal(bk_log_count(bk, "RESULT fover same"), 1);
	assert_int_equal(bk_log_count(bk, "RESULT fping same"), 1);
	/* The callee saw every allowed value whole, and refused the
	 * tampered one before its handler could see it. */
	assert_int_equal(bk_log_count(bk, "RESULT callee 16383 ok"), 1);
	assert_int_equal(bk_log_count(bk, "RESULT callee 16384 ok"), 1);
	assert_int_equal(bk_log_count(bk, "RESULT callee 1048576 ok"), 1);
	assert_int_equal(bk_log_count(bk, "RESULT callee 32728 ok"), 1);
	assert_int_equal(bk_log_count(bk, "RESULT callee 32729 ok"), 1);
	assert_int_equal(bk_log_count(bk, "RESULT evil-tamper error conduit.refused"), 1);
	assert_int_equal(bk_log_count(bk, "RESULT evil-tframe error conduit.refused"), 1);
	assert_int_equal(bk_log_count(bk, "RESULT callee 1"), 4);
	assert_int_equal(bk_log_count(bk, "RESULT callee 3"), 2);
	return bk_fd_count(bk);
}

static void test_bulk_honest(void **state)
{
	struct bk bk;
	char needle[96];

	(void)state;
	bk_init(&bk);
	(void)run_honest(&bk, false);
	bk_stop_clean(&bk);
	/* Inline below the threshold, bulk from it on: the length, never
	 * the data or a hash, for bulk values. */
	assert_int_equal(count_in_file(bk.audit, "\"t\":\"bytes\",\"hex\":"), 1);
	/* the caller's and the two tampering layers' */
	assert_int_equal(count_in_file(bk.audit, "\"len\":16384,\"bulk\":true"), 3);
	assert_int_equal(count_in_file(bk.audit, "\"len\":32728,\"bulk\":true"), 1);
	assert_int_equal(count_in_file(bk.audit, "\"len\":32729,\"bulk\":true"), 1);
	assert_int_equal(count_in_file(bk.audit, "\"len\":20000,\"bulk\":true"), 1);
	assert_int_equal(count_in_file(bk.audit, "\"len\":1048576,\"bulk\":true"), 2);
	snprintf(needle, sizeof(needle), "\"len\":%u,\"bulk\":true", MAX_LEN);
	assert_int_equal(count_in_file(bk.audit, needle), 1);
	snprintf(needle, sizeof(needle), "\"len\":%u,\"bulk\":true", MAX_LEN + 1);
	assert_int_equal(count_in_file(bk.audit, needle), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, NULL, NULL, NULL), 0);
	bk_cleanup(&bk);
}

static void test_bulk_hostile(void **state)
{
	struct bk bk;
	size_t base;

	(void)state;
	bk_init(&bk);
	base = run_honest(&bk, false);
	bk_stop(&bk);
	bk_cleanup(&bk);

	bk_init(&bk);
	(void)run_honest(&bk, true);
	/* Every hostile sender is dropped by the broker's own check; none
	 * of its memfds reached the callee, and none stays in the broker. */
	for (size_t i = 0; i < NEVIL; i++) {
		char name[32];
		snprintf(name, sizeof(name), "e%s", evil_kinds[i]);
		for (int t = 0; t < WAIT / 100; t++) {
			bk_read_audit(&bk, false);
			if (bk_count(&bk, AUDIT_EV_EXIT, name, NULL, NULL) > 0)
				break;
			const struct timespec step = {0, 100 * 1000 * 1000};
			nanosleep(&step, NULL);
		}
		assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, name, NULL, NULL), 1);
		assert_non_null(strstr(bk_find(&bk, AUDIT_EV_VIOLATION, name, NULL, 0)->reason,
				       "bulk argument not a sealed memfd"));
		assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, name, NULL, NULL), 1);
	}
	assert_int_equal(wait_fds(&bk, base), base);
	assert_int_equal(bk_log_count(&bk, "RESULT callee 1"), 4);
	bk_stop_clean(&bk);
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, NULL, NULL, NULL), NEVIL);
	bk_cleanup(&bk);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bulk_honest),
		cmocka_unit_test(test_bulk_hostile),
	};

	char *path[2];
	int r = bk_main_paths(argc, argv, 2, "BROKER BULK-LAYER", path);

	if (r != 0)
		return r;
	bk_broker_path = path[0];
	bk_layer_path = path[1];
	return cmocka_run_group_tests_name("broker-bulk", tests, NULL, NULL);
}
