/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of conduit-broker: a real broker, real sandboxed layers
 * (tests/broker-layer.c), a policy written at test time, and every audit
 * record the run causes checked after a clean SIGTERM stop.
 *
 * Usage: test-broker-run BROKER LAYER [GROUP]   GROUP: integration | adversarial
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "broker-harness.h"
#include "selfcheck.h"

#define WAIT 10000 /* ms: generous, a shared 2-core machine */

#define LAYER_HEAD                                                                                 \
	"    user dynamic\n"                                                                       \
	"    syscalls stdio recvfd time\n"

static const char provider_layer[] =
	"layer echo {\n"
	"    exec \"@LAYER@\" \"provider\" \"test.echo,test.limited\"\n" LAYER_HEAD
	"    provide test.echo test.limited\n"
	"}\n";

static void expect_decision(const struct bk *bk, size_t nth, const char *method,
			    enum audit_verdict v, const char *rule)
{
	const struct bk_record *r = bk_find(bk, AUDIT_EV_DECISION, "client", method, nth);

	assert_non_null(r);
	assert_int_equal(r->verdict, v);
	if (rule) {
		assert_string_equal(r->rule, rule);
		assert_true(r->line > 0);
	}
}

/* Allowed, denied, rate-limited and routed calls; conduit.open passing an
 * fd; SIGTERM stopping everything with one exit record per layer. */
static void test_calls(void **state)
{
	struct bk bk;

	(void)state;
	bk_init(&bk);
	bk_write_file(&bk, "data.txt", "hello from a file\n");
	bk_write_policy(&bk, "version 1\n"
			     "layer client {\n"
			     "    exec \"@LAYER@\" \"client\"\n" LAYER_HEAD "    env TEST_OPEN\n"
			     "    open \"@DIR@/data.txt\" read\n"
			     "    allow conduit.ping\n"
			     "    allow conduit.open path \"@DIR@/data.txt\"\n"
			     "    deny test.echo x \"forbidden\"\n"
			     "    allow test.echo\n"
			     "    allow test.limited rate 1/1m burst 1\n"
			     "}\n");
	{
		char path[192], pol[4096];
		snprintf(path, sizeof(path), "%s/data.txt", bk.dir);
		setenv("TEST_OPEN", path, 1);
		FILE *f = fopen(bk.policy, "r");
		size_t n = fread(pol, 1, sizeof(pol) - 1, f);
		fclose(f);
		pol[n] = 0;
		/* The provider goes into the same file. */
		strncat(pol, provider_layer, sizeof(pol) - n - 1);
		bk_write_policy(&bk, pol);
	}
	bk_start(&bk);
	assert_true(bk_wait_log(&bk, "RESULT client-done", 1, WAIT));
	assert_int_equal(bk_log_count(&bk, "layer client: RESULT ready as client"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT ping reply"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT denied error conduit.denied"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT rate1 reply"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT rate2 error conduit.rate_limited"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT routed reply"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT routed-caller client"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT routed-leak"), 0);
	assert_int_equal(bk_log_count(&bk, "layer echo: RESULT served test.echo"), 1);
	assert_int_equal(bk_log_count(&bk, "layer echo: RESULT served test.limited"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT open reply"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT open-content hello from a file"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT undeclared error conduit.denied"), 1);
	bk_stop_clean(&bk);

	assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, "client", NULL, NULL), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, "echo", NULL, NULL), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_DECISION, "client", NULL, NULL), 7);
	assert_int_equal(bk_count(&bk, AUDIT_EV_DECISION, "echo", NULL, NULL), 0);
	expect_decision(&bk, 0, "conduit.ping", AUDIT_VERDICT_ALLOW, "client#1");
	expect_decision(&bk, 0, "test.echo", AUDIT_VERDICT_DENY, "client#3");
	expect_decision(&bk, 0, "test.limited", AUDIT_VERDICT_ALLOW, "client#5");
	expect_decision(&bk, 1, "test.limited", AUDIT_VERDICT_RATE_LIMITED, "client#5");
	expect_decision(&bk, 1, "test.echo", AUDIT_VERDICT_ALLOW, "client#4");
	expect_decision(&bk, 0, "conduit.open", AUDIT_VERDICT_ALLOW, "client#2");
	expect_decision(&bk, 1, "conduit.open", AUDIT_VERDICT_DENY, "client#default");
	/* SIGTERM from the broker: one exit record per layer, by signal. */
	assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, NULL, NULL, NULL), 2);
	bk_expect_stopped(&bk, "client");
	bk_expect_stopped(&bk, "echo");
	/* echo serves until the session ends: it leaves on the broker's FIN
	 * within the grace, before any SIGTERM. */
	assert_true(bk_find(&bk, AUDIT_EV_EXIT, "echo", NULL, 0)->has_code);
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, NULL, NULL, NULL), 0);
	assert_int_equal(bk.nrec, 1 + 2 + 7 + 2 + 1);
	bk_cleanup(&bk);
}

/* Events reach only subscribers whose constraints match, with _publisher;
 * a subscription the policy does not grant is denied and audited. */
static void test_events(void **state)
{
	struct bk bk;

	(void)state;
	bk_init(&bk);
	bk_write_policy(&bk, "version 1\n"
			     "layer pub {\n"
			     "    exec \"@LAYER@\" \"publisher\" \"-\" \"test.tick\"\n" LAYER_HEAD
			     "    publish test.tick\n"
			     "}\n"
			     "layer sub {\n"
			     "    exec \"@LAYER@\" \"subscriber\"\n" LAYER_HEAD
			     "    subscribe test.tick v 1..1\n"
			     "}\n");
	bk_start(&bk);
	assert_true(bk_wait_log(&bk, "layer sub: RESULT event test.tick from pub v=1", 3, WAIT));
	assert_int_equal(bk_log_count(&bk, "v=2"), 0);
	assert_int_equal(bk_log_count(&bk, "from (none)"), 0);
	/* SIGINT stops the broker like SIGTERM. */
	bk_signal(&bk, SIGINT);
	assert_true(bk_wait_log(&bk, "conduit-broker: stopped", 1, WAIT));
	assert_int_equal(bk_log_count(&bk, "SIGINT received"), 1);
	bk_stop_clean(&bk);
	{
		const struct bk_record *r = bk_find(&bk, AUDIT_EV_DECISION, "sub", "test.tick", 0);
		assert_non_null(r);
		assert_int_equal(r->verdict, AUDIT_VERDICT_ALLOW);
		assert_true(r->line > 0);
		r = bk_find(&bk, AUDIT_EV_DECISION, "sub", "test.secret", 0);
		assert_non_null(r);
		assert_int_equal(r->verdict, AUDIT_VERDICT_DENY);
	}
	assert_int_equal(bk_count(&bk, AUDIT_EV_DECISION, NULL, NULL, NULL), 2);
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, NULL, NULL, NULL), 0);
	assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, NULL, NULL, NULL), 2);
	assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, NULL, NULL, NULL), 2);
	bk_cleanup(&bk);
}

/* A crashing layer is restarted with backoff until its budget is spent,
 * then marked failed; the provider next to it keeps running. */
static void test_crash_loop(void **state)
{
	struct bk bk;

	(void)state;
	bk_init(&bk);
	bk_write_policy(&bk, "version 1\n"
			     "layer crasher {\n"
			     "    exec \"@LAYER@\" \"crash\"\n" LAYER_HEAD
			     "    restart on-failure backoff 20ms..40ms max 2 per 1m\n"
			     "}\n"
			     "layer echo {\n"
			     "    exec \"@LAYER@\" \"provider\" \"test.echo\"\n" LAYER_HEAD
			     "    provide test.echo\n"
			     "}\n");
	bk_start(&bk);
	assert_true(bk_wait_log(&bk, "layer crasher failed", 1, WAIT));
	assert_true(bk_wait_log(&bk, "layer echo: RESULT ready as echo", 1, WAIT));
	assert_int_equal(bk_log_count(&bk, "layer crasher: RESULT ready as crasher"), 3);
	bk_stop_clean(&bk);
	assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, "crasher", NULL, NULL), 3);
	assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, "crasher", NULL, NULL), 3);
	for (size_t i = 0; i < 3; i++) {
		const struct bk_record *r = bk_find(&bk, AUDIT_EV_EXIT, "crasher", NULL, i);
		assert_true(r->has_code);
		assert_int_equal(r->code, 3);
	}
	assert_int_equal(bk_count(&bk, AUDIT_EV_ALARM, "crasher", NULL, "layer-failed"), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, "echo", NULL, NULL), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, "echo", NULL, NULL), 1);
	assert_int_equal(bk.nrec, 1 + 4 + 4 + 1 + 1);
	bk_cleanup(&bk);
}

/* SIGHUP: a policy that does not compile is rejected and the old one keeps
 * running; a good one applies, restarting only the layer whose sandbox
 * spec changed. */
static void test_reload(void **state)
{
	static const char base[] =
		"version 1\n"
		"layer keep {\n"
		"    exec \"@LAYER@\" \"provider\" \"test.echo\"\n" LAYER_HEAD
		"    provide test.echo\n"
		"}\n"
		"layer change {\n"
		"    exec \"@LAYER@\" \"provider\" \"test.other\" \"-\" \"%s\"\n" LAYER_HEAD
		"    provide test.other\n"
		"}\n";
	char text[2048];
	struct bk bk;

	(void)state;
	bk_init(&bk);
	snprintf(text, sizeof(text), base, "");
	bk_write_policy(&bk, text);
	bk_start(&bk);
	assert_true(bk_wait_log(&bk, "RESULT ready as keep", 1, WAIT));
	assert_true(bk_wait_log(&bk, "RESULT ready as change", 1, WAIT));
	bk_write_policy(&bk, "version 1\nlayer broken {\n");
	bk_signal(&bk, SIGHUP);
	assert_true(bk_wait_log(&bk, "reload: policy", 1, WAIT));
	assert_int_equal(bk_log_count(&bk, "old policy kept"), 1);
	snprintf(text, sizeof(text), base, "v2");
	bk_write_policy(&bk, text);
	bk_signal(&bk, SIGHUP);
	assert_true(bk_wait_log(&bk, "RESULT ready as change", 2, WAIT));
	assert_int_equal(bk_log_count(&bk, "RESULT ready as keep"), 1);
	/* A layer removed, another added: the removed one is stopped for
	 * good, the new one started, "keep" untouched. */
	bk_write_policy(&bk, "version 1\n"
			     "layer keep {\n"
			     "    exec \"@LAYER@\" \"provider\" \"test.echo\"\n" LAYER_HEAD
			     "    provide test.echo\n"
			     "}\n"
			     "layer fresh {\n"
			     "    exec \"@LAYER@\" \"provider\" \"test.fresh\"\n" LAYER_HEAD
			     "    provide test.fresh\n"
			     "}\n");
	bk_signal(&bk, SIGHUP);
	assert_true(bk_wait_log(&bk, "RESULT ready as fresh", 1, WAIT));
	assert_true(bk_wait_log(&bk, "layer change (pid", 2, WAIT));
	assert_int_equal(bk_log_count(&bk, "RESULT ready as keep"), 1);
	bk_stop_clean(&bk);
	assert_int_equal(bk_count(&bk, AUDIT_EV_RELOAD_REJECTED, NULL, NULL, NULL), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_RELOAD, NULL, NULL, NULL), 2);
	assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, "keep", NULL, NULL), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, "change", NULL, NULL), 2);
	assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, "change", NULL, NULL), 2);
	assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, "fresh", NULL, NULL), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, "fresh", NULL, NULL), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, "keep", NULL, NULL), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, NULL, NULL, NULL), 0);
	bk_cleanup(&bk);
}

static const char echo_only[] =
	"version 1\n"
	"layer echo {\n"
	"    exec \"@LAYER@\" \"provider\" \"test.echo\"\n" LAYER_HEAD "    provide test.echo\n"
	"}\n";

#define ADVERSARY(name, extra)                                                                     \
	"layer " name " {\n"                                                                       \
	"    exec \"@LAYER@\" \"" name "\"\n" LAYER_HEAD "    restart never\n" extra "}\n"

/* Layers that send garbage (over the socket, announced; or as a ring
 * record), replay a frame, claim another
 * layer's role in their hello, use a reserved argument name, never read
 * their replies, or never read the replies that pass them fds:
 * each is dropped with exactly one violation record of the right class,
 * the provider next to them is unaffected, and the broker's fd count is
 * back where a broker running only that provider stands. */
static void test_adversaries(void **state)
{
	static const struct {
		const char *layer, *klass;
	} want[] = {
		{"garbage", "auth-failure"},	    {"ringjunk", "auth-failure"},
		{"replay", "auth-failure"},	    {"impostor", "protocol-violation"},
		{"reserved", "protocol-violation"}, {"noread", "backpressure"},
		{"fdhog", "backpressure"},
	};
	struct bk ctl, bk;
	struct selfcheck ctl_mem, mem;
	char text[4096];
	size_t baseline;

	(void)state;
	bk_init(&ctl);
	bk_write_policy(&ctl, echo_only);
	bk_start(&ctl);
	assert_true(bk_wait_log(&ctl, "RESULT ready as echo", 1, WAIT));
	baseline = bk_fd_count(&ctl);
	assert_int_equal(selfcheck_read(ctl.pid, &ctl_mem), 0);
	bk_stop_clean(&ctl);
	bk_cleanup(&ctl);

	bk_init(&bk);
	bk_write_file(&bk, "data.txt", "x\n");
	{
		char path[192];
		snprintf(path, sizeof(path), "%s/data.txt", bk.dir);
		setenv("TEST_OPEN", path, 1);
	}
	snprintf(text, sizeof(text), "%s%s%s%s%s%s%s%s", echo_only, ADVERSARY("garbage", ""),
		 ADVERSARY("ringjunk", ""), ADVERSARY("replay", "    syscalls allow socketpair\n"),
		 ADVERSARY("impostor", ""), ADVERSARY("reserved", "    allow conduit.ping\n"),
		 ADVERSARY("noread", "    allow test.echo\n"),
		 ADVERSARY("fdhog", "    env TEST_OPEN\n    open \"@DIR@/data.txt\" read\n"
				    "    allow conduit.open\n"));
	bk_write_policy(&bk, text);
	bk_start(&bk);
	assert_true(bk_wait_log(&bk, "failed: not restarted", 7, 3 * WAIT));
	assert_true(bk_wait_log(&bk, "RESULT ready as echo", 1, WAIT));
	assert_int_equal(bk_fd_count(&bk), baseline);
	assert_int_equal(selfcheck_read(bk.pid, &mem), 0);
	fprintf(stderr,
		"# broker RSS: %llu kB with one provider; %llu kB after the attacks (peak %llu "
		"kB)\n",
		(unsigned long long)ctl_mem.rss_kb, (unsigned long long)mem.rss_kb,
		(unsigned long long)mem.hwm_kb);
#ifndef __SANITIZE_ADDRESS__ /* ASan's quarantine keeps freed memory resident */
	/* The never-reading layer made the broker queue 16 MiB; it is
	 * released when the layer is dropped (4 MiB margin for allocator
	 * slack and the audit writer; measured +0.1..1.3 MiB). */
	assert_true(mem.hwm_kb > ctl_mem.rss_kb + 8192);
	assert_true(mem.rss_kb < ctl_mem.rss_kb + 4096);
#endif
	bk_stop_clean(&bk);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct bk_record *r =
			bk_find(&bk, AUDIT_EV_VIOLATION, want[i].layer, NULL, 0);
		assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, want[i].layer, NULL, NULL), 1);
		assert_string_equal(r->klass, want[i].klass);
		assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, want[i].layer, NULL, NULL), 1);
		assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, want[i].layer, NULL, NULL), 1);
		assert_string_equal(bk_find(&bk, AUDIT_EV_EXIT, want[i].layer, NULL, 0)->signal,
				    "SIGKILL");
		assert_int_equal(bk_count(&bk, AUDIT_EV_ALARM, want[i].layer, NULL, "layer-failed"),
				 1);
	}
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, NULL, NULL, NULL), 7);
	assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, "echo", NULL, NULL), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, "echo", NULL, NULL), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_DECISION, "reserved", NULL, NULL), 0);
	assert_true(bk_count(&bk, AUDIT_EV_DECISION, "noread", "test.echo", NULL) > 0);
	fprintf(stderr, "# noread: %zu calls before the drop\n",
		bk_count(&bk, AUDIT_EV_DECISION, "noread", "test.echo", NULL));
	bk_cleanup(&bk);
}

/* A layer announces 10^5 frames it never sent, on the eventfd it shares
 * with the broker after clearing its O_NONBLOCK.  The broker's loop never
 * reads announcements (it is woken edge-triggered and takes frames from
 * the ring, docs/protocol.md section 3.1), so they cost it wake-ups and
 * nothing else: it neither blocks nor drops the layer, whose calls after
 * the flood are answered, one of them routed through a provider. */
static void test_announce_flood(void **state)
{
	struct bk bk;
	char text[2048];

	(void)state;
	bk_init(&bk);
	snprintf(text, sizeof(text), "%s%s", echo_only,
		 ADVERSARY("kickflood", "    allow conduit.ping\n    allow test.echo\n"));
	bk_write_policy(&bk, text);
	bk_start(&bk);
	assert_true(bk_wait_log(&bk, "layer kickflood: RESULT kickflood-sent", 1, 3 * WAIT));
	assert_true(bk_wait_log(&bk, "layer kickflood: RESULT ping reply", 1, WAIT));
	assert_true(bk_wait_log(&bk, "layer kickflood: RESULT routed reply", 1, WAIT));
	assert_int_equal(bk_log_count(&bk, "RESULT served test.echo"), 1);
	assert_int_equal(bk_log_count(&bk, "failed"), 0);
	bk_stop_clean(&bk);
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, NULL, NULL, NULL), 0);
	assert_int_equal(bk_count(&bk, AUDIT_EV_DECISION, "kickflood", NULL, NULL), 2);
	bk_cleanup(&bk);
}

/* A ready layer that stops answering the broker's heartbeat is dropped
 * with one timeout violation and killed; a provider that answers is not. */
static void test_heartbeat(void **state)
{
	struct bk bk;
	char text[2048];

	(void)state;
	bk_init(&bk);
	bk.heartbeat_ms = 400;
	snprintf(text, sizeof(text), "%s%s", echo_only, ADVERSARY("silent", ""));
	bk_write_policy(&bk, text);
	bk_start(&bk);
	assert_true(bk_wait_log(&bk, "layer silent failed", 1, WAIT));
	assert_true(bk_wait_log(&bk, "RESULT ready as echo", 1, WAIT));
	bk_stop_clean(&bk);
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, "silent", NULL, "timeout"), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, NULL, NULL, NULL), 1);
	assert_string_equal(bk_find(&bk, AUDIT_EV_EXIT, "silent", NULL, 0)->signal, "SIGKILL");
	assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, "echo", NULL, NULL), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, "echo", NULL, NULL), 1);
	bk_cleanup(&bk);
}

/* The audit log's file system fills up: the broker stays up, answers
 * pings, fails conduit.open closed, and once there is room again the log
 * records the gap and an alarm and still verifies. */
static void test_audit_full(void **state)
{
	char fs[96], cmd[256], path[192];
	struct bk bk;
	size_t ok, failed;

	(void)state;
	bk_init(&bk);
	snprintf(fs, sizeof(fs), "%s/fs", bk.dir);
	assert_int_equal(mkdir(fs, 0700), 0);
	snprintf(cmd, sizeof(cmd), "mount -t tmpfs -o size=8k conduit-bk '%s'", fs);
	if (system(cmd) != 0) {
		bk_cleanup(&bk);
		skip(); /* needs root and tmpfs */
	}
	snprintf(bk.audit, sizeof(bk.audit), "%s/audit.log", fs);
	bk_write_file(&bk, "data.txt", "x\n");
	snprintf(path, sizeof(path), "%s/data.txt", bk.dir);
	setenv("TEST_OPEN", path, 1);
	bk_write_policy(&bk, "version 1\n"
			     "layer po {\n"
			     "    exec \"@LAYER@\" \"pingopen\"\n" LAYER_HEAD "    env TEST_OPEN\n"
			     "    open \"@DIR@/data.txt\" read\n"
			     "    allow conduit.ping\n"
			     "    allow conduit.open path \"@DIR@/data.txt\"\n"
			     "}\n");
	bk_start(&bk);
	assert_true(bk_wait_log(&bk, "RESULT po-done", 1, WAIT));
	assert_int_equal(bk_log_count(&bk, "RESULT po ping reply"), 40);
	ok = bk_log_count(&bk, "RESULT po open reply");
	failed = bk_log_count(&bk, "RESULT po open error conduit.failed");
	fprintf(stderr, "# opens: %zu served, %zu failed closed\n", ok, failed);
	assert_true(ok > 0);
	assert_true(failed > 0);
	assert_int_equal(ok + failed, 40);
	assert_int_equal(bk_log_count(&bk, "ALARM: audit log write failed"), 1);
	snprintf(cmd, sizeof(cmd), "mount -o remount,size=1m '%s'", fs);
	assert_int_equal(system(cmd), 0);
	bk_stop_clean(&bk);
	assert_true(bk.verify.lost > 0);
	/* While the disk is full, a gap record (short) can fit where the
	 * record after it does not; that record is lost again and the next
	 * write starts with another gap.  How many gaps there are depends on
	 * the records' lengths (the digits of a pid decide it), so the test
	 * asks for at least one, every one before the alarm that says the
	 * log takes writes again, and exactly one such alarm. */
	assert_true(bk_count(&bk, AUDIT_EV_GAP, NULL, NULL, NULL) >= 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_ALARM, NULL, NULL, "audit-write-failed"), 1);
	{
		bool alarmed = false;
		for (size_t i = 0; i < bk.nrec; i++) {
			if (bk.rec[i].event == AUDIT_EV_ALARM &&
			    strcmp(bk.rec[i].klass, "audit-write-failed") == 0)
				alarmed = true;
			assert_false(alarmed && bk.rec[i].event == AUDIT_EV_GAP);
		}
		assert_true(alarmed);
	}
	/* Every open that was served has its allow record. */
	assert_true(bk_count(&bk, AUDIT_EV_DECISION, "po", "conduit.open", NULL) >= ok);
	snprintf(cmd, sizeof(cmd), "umount '%s'", fs);
	assert_int_equal(system(cmd), 0);
	bk_cleanup(&bk);
}

/* A routed call past its deadline gets conduit.timeout and the late reply
 * is dropped with one alarm; a provider that is gone (failed) answers
 * conduit.unavailable through the broker. */
static void test_timeout_unavailable(void **state)
{
	struct bk bk;

	(void)state;
	bk_init(&bk);
	bk.call_timeout_ms = 300;
	bk_write_policy(&bk,
			"version 1\n"
			"layer slow {\n"
			"    exec \"@LAYER@\" \"provider\" \"test.slow\"\n" LAYER_HEAD
			"    provide test.slow\n"
			"}\n"
			"layer gone {\n"
			"    exec \"@LAYER@\" \"crash\" \"test.gone\"\n" LAYER_HEAD
			"    restart never\n"
			"    provide test.gone\n"
			"}\n"
			"layer caller {\n"
			"    exec \"@LAYER@\" \"slowcaller\"\n" LAYER_HEAD "    allow test.slow\n"
			"    allow test.gone\n"
			"}\n");
	bk_start(&bk);
	assert_true(bk_wait_log(&bk, "RESULT slowcaller-done", 1, WAIT));
	assert_int_equal(bk_log_count(&bk, "RESULT slow error conduit.timeout"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT gone error conduit.unavailable"), 1);
	assert_true(bk_wait_log(&bk, "layer slow: RESULT served test.slow", 1, WAIT));
	bk_stop_clean(&bk);
	assert_int_equal(bk_count(&bk, AUDIT_EV_ALARM, "slow", NULL, "late-reply"), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_DECISION, "caller", "test.slow", NULL), 1);
	assert_true(bk_count(&bk, AUDIT_EV_DECISION, "caller", "test.gone", NULL) >= 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, NULL, NULL, NULL), 0);
	assert_int_equal(bk_count(&bk, AUDIT_EV_ALARM, "gone", NULL, "layer-failed"), 1);
	bk_cleanup(&bk);
}

/* Complain mode: a layer with `log` and no rules has every call audited as
 * `complain` under its default rule, and let through. */
static void test_complain(void **state)
{
	struct bk bk;
	char text[2048];

	(void)state;
	bk_init(&bk);
	setenv("TEST_OPEN", "/nonexistent", 1);
	snprintf(text, sizeof(text),
		 "version 1\n"
		 "layer client {\n"
		 "    exec \"@LAYER@\" \"client\"\n" LAYER_HEAD "    log\n"
		 "}\n%s",
		 provider_layer);
	bk_write_policy(&bk, text);
	bk_start(&bk);
	assert_true(bk_wait_log(&bk, "RESULT client-done", 1, WAIT));
	assert_int_equal(bk_log_count(&bk, "RESULT ping reply"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT denied reply"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT rate2 reply"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT routed-caller client"), 1);
	/* No resource is declared: the policy lets the call through, the
	 * broker still has nothing to open. */
	assert_int_equal(bk_log_count(&bk, "RESULT open error conduit.denied"), 1);
	bk_stop_clean(&bk);
	assert_int_equal(bk_count(&bk, AUDIT_EV_DECISION, "client", NULL, NULL), 7);
	for (size_t i = 0; i < bk.nrec; i++)
		if (bk.rec[i].event == AUDIT_EV_DECISION) {
			assert_int_equal(bk.rec[i].verdict, AUDIT_VERDICT_COMPLAIN);
			assert_string_equal(bk.rec[i].rule, "client#default");
		}
	bk_cleanup(&bk);
}

/* A layer killed by its seccomp filter: one exit record naming SIGSYS. */
static void test_sigsys(void **state)
{
	struct bk bk;

	(void)state;
	bk_init(&bk);
	bk_write_policy(&bk, "version 1\n"
			     "layer bad {\n"
			     "    exec \"@LAYER@\" \"sigsys\"\n" LAYER_HEAD "    restart never\n"
			     "}\n");
	bk_start(&bk);
	assert_true(bk_wait_log(&bk, "layer bad failed", 1, WAIT));
	assert_int_equal(bk_log_count(&bk, "killed by SIGSYS"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT sysinfo"), 0);
	bk_stop_clean(&bk);
	assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, "bad", NULL, NULL), 1);
	assert_string_equal(bk_find(&bk, AUDIT_EV_EXIT, "bad", NULL, 0)->signal, "SIGSYS");
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, NULL, NULL, NULL), 0);
	assert_int_equal(bk_count(&bk, AUDIT_EV_ALARM, "bad", NULL, "layer-failed"), 1);
	bk_cleanup(&bk);
}

/* conduit.listen and conduit.connect pass sockets made from the policy's
 * declarations; a name the policy does not declare gets conduit.denied. */
static void test_sockets(void **state)
{
	struct bk bk;

	(void)state;
	bk_init(&bk);
	bk_write_policy(&bk, "version 1\n"
			     "layer res {\n"
			     "    exec \"@LAYER@\" \"resources\"\n" LAYER_HEAD
			     "    syscalls allow accept4\n"
			     "    listen srv unix \"@DIR@/l.sock\"\n"
			     "    connect peer unix \"@DIR@/l.sock\"\n"
			     "    allow conduit.listen name \"srv\"\n"
			     "    allow conduit.connect\n"
			     "}\n");
	bk_start(&bk);
	assert_true(bk_wait_log(&bk, "RESULT resources-done", 1, WAIT));
	assert_int_equal(bk_log_count(&bk, "RESULT listen reply"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT listen-again reply"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT connect reply"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT undeclared error conduit.denied"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT resources-talk hi"), 1);
	bk_stop_clean(&bk);
	assert_int_equal(bk_count(&bk, AUDIT_EV_DECISION, "res", "conduit.listen", NULL), 2);
	assert_int_equal(bk_count(&bk, AUDIT_EV_DECISION, "res", "conduit.connect", NULL), 2);
	assert_int_equal(bk_find(&bk, AUDIT_EV_DECISION, "res", "conduit.listen", 0)->verdict,
			 AUDIT_VERDICT_ALLOW);
	bk_cleanup(&bk);
}

/* Every layer starts with glibc's restartable sequences off
 * (GLIBC_TUNABLES, sandbox_env_layer), unless its policy passes that variable
 * through: then it gets the broker's value. */
static void test_layer_env(void **state)
{
	struct bk bk;

	(void)state;
	bk_init(&bk);
	bk_write_policy(&bk, "version 1\n"
			     "layer dflt {\n"
			     "    exec \"@LAYER@\" \"env\"\n" LAYER_HEAD "}\n"
			     "layer own {\n"
			     "    exec \"@LAYER@\" \"env\"\n" LAYER_HEAD "    env GLIBC_TUNABLES\n"
			     "}\n");
	setenv("GLIBC_TUNABLES", "glibc.pthread.rseq=1", 1);
	bk_start(&bk);
	unsetenv("GLIBC_TUNABLES");
	assert_true(bk_wait_log(&bk, "RESULT env ", 2, WAIT));
	assert_int_equal(bk_log_count(&bk, "RESULT env glibc.pthread.rseq=0 rseq off"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT env glibc.pthread.rseq=1 rseq "), 1);
	bk_stop_clean(&bk);
	bk_cleanup(&bk);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest integration[] = {
		cmocka_unit_test(test_calls),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_crash_loop),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_timeout_unavailable),
		cmocka_unit_test(test_complain),
		cmocka_unit_test(test_sigsys),
		cmocka_unit_test(test_sockets),
		cmocka_unit_test(test_layer_env),
	};

	const struct CMUnitTest adversarial[] = {
		cmocka_unit_test(test_adversaries),
		cmocka_unit_test(test_announce_flood),
		cmocka_unit_test(test_heartbeat),
		cmocka_unit_test(test_audit_full),
	};

	char *path[2];
	int r = bk_main_paths(argc, argv, 2, "BROKER LAYER [integration|adversarial]", path);

	if (r != 0)
		return r;
	bk_broker_path = path[0];
	bk_layer_path = path[1];
	if (argc > 3 && strcmp(argv[3], "adversarial") == 0)
		return cmocka_run_group_tests_name("broker-adversarial", adversarial, NULL, NULL);
	return cmocka_run_group_tests_name("broker-integration", integration, NULL, NULL);
}
