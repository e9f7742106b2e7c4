/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of the broker's layer life cycle with a real broker and
 * sandboxed layers (tests/broker-layer.c): a layer that ends its channel and
 * keeps running, the start order from the policy's dependencies, and the
 * rate buckets at start and reload as `conduit-policy audit` replays them
 * on the monotonic time the broker records with each decision (and what
 * the replay finds in that log once forged).
 * Every audit record of each run is checked.
 *
 * Usage: test-broker-life BROKER LAYER CONDUIT-POLICY
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

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

/* Messages that cross the broker's stop: a hello sent only after the
 * broker's FIN (by a layer deaf to SIGTERM) and the answer to a heartbeat
 * held until then.  The broker ignores both and stops cleanly; it used to
 * take either for an internal fault and exit 1. */
static void test_stop_crossing(void **state)
{
	struct bk bk;

	(void)state;
	bk_init(&bk);
	bk.heartbeat_ms = 4000; /* first ping after 1 s, deadline 4 s after */
	bk_write_policy(&bk, "version 1\n"
			     "layer lh {\n"
			     "    exec \"@LAYER@\" \"latehello\"\n" LAYER_HEAD "    restart never\n"
			     "}\n"
			     "layer lp {\n"
			     "    exec \"@LAYER@\" \"latepong\"\n" LAYER_HEAD "    restart never\n"
			     "}\n");
	bk_start(&bk);
	assert_true(bk_wait_log(&bk, "layer lh: RESULT latehello-waiting", 1, WAIT));
	assert_true(bk_wait_log(&bk, "layer lp: RESULT ping-held", 1, WAIT));
	bk_stop_clean(&bk);
	assert_int_equal(bk_log_count(&bk, "layer lh: RESULT latehello-sent"), 1);
	assert_int_equal(bk_log_count(&bk, "layer lp: RESULT late-pong-sent"), 1);
	assert_int_equal(bk_log_count(&bk, "internal fault"), 0);
	for (size_t i = 0; i < 2; i++) {
		const char *name = i ? "lp" : "lh";
		const struct bk_record *r = bk_find(&bk, AUDIT_EV_EXIT, name, NULL, 0);

		assert_non_null(r);
		assert_true(r->has_code);
		assert_int_equal(r->code, 0);
	}
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, NULL, NULL, NULL), 0);
	bk_cleanup(&bk);
}

/* Index of the first record of ev for layer, or SIZE_MAX. */
static size_t rec_index(const struct bk *bk, enum audit_event ev, const char *layer)
{
	for (size_t i = 0; i < bk->nrec; i++)
		if (bk->rec[i].event == ev && strcmp(bk->rec[i].layer, layer) == 0)
			return i;
	return SIZE_MAX;
}

/* Start order from the policy, whatever the file order: "first" calls
 * what "slow" provides and subscribes to what "pub" publishes; "slow"
 * calls what "base" provides.  "slow" takes 300 ms to say hello and
 * "first" calls it the moment it is ready itself: the call is served
 * only because the broker started "first" after "slow" was ready. */
static void test_start_order(void **state)
{
	struct bk bk;
	size_t base, slow, first, pub;

	(void)state;
	bk_init(&bk);
	bk_write_policy(
		&bk, "version 1\n"
		     "layer first {\n"
		     "    exec \"@LAYER@\" \"ordercaller\" \"-\" \"-\" \"test.slow\"\n" LAYER_HEAD
		     "    allow test.slow\n"
		     "    subscribe test.tick\n"
		     "}\n"
		     "layer slow {\n"
		     "    exec \"@LAYER@\" \"slowprovider\" \"test.slow\"\n" LAYER_HEAD
		     "    provide test.slow\n"
		     "    allow test.base\n"
		     "}\n"
		     "layer pub {\n"
		     "    exec \"@LAYER@\" \"publisher\" \"-\" \"test.tick\"\n" LAYER_HEAD
		     "    publish test.tick\n"
		     "}\n"
		     "layer base {\n"
		     "    exec \"@LAYER@\" \"provider\" \"test.base\"\n" LAYER_HEAD
		     "    provide test.base\n"
		     "}\n");
	bk_start(&bk);
	assert_true(bk_wait_log(&bk, "layer first: RESULT order-call", 1, WAIT));
	assert_int_equal(bk_log_count(&bk, "layer first: RESULT order-call reply"), 1);
	assert_int_equal(bk_log_count(&bk, "layer slow: RESULT served test.slow"), 1);
	bk_stop_clean(&bk);
	base = rec_index(&bk, AUDIT_EV_SPAWN, "base");
	slow = rec_index(&bk, AUDIT_EV_SPAWN, "slow");
	first = rec_index(&bk, AUDIT_EV_SPAWN, "first");
	pub = rec_index(&bk, AUDIT_EV_SPAWN, "pub");
	assert_true(base < slow);
	assert_true(slow < first);
	assert_true(pub < first);
	assert_true(first != SIZE_MAX);
	/* The only decision: first's call, allowed. */
	assert_int_equal(bk_count(&bk, AUDIT_EV_DECISION, "first", "test.slow", NULL), 1);
	assert_int_equal(bk_find(&bk, AUDIT_EV_DECISION, "first", "test.slow", 0)->verdict,
			 AUDIT_VERDICT_ALLOW);
	assert_int_equal(bk_count(&bk, AUDIT_EV_DECISION, NULL, NULL, NULL), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, NULL, NULL, NULL), 4);
	assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, NULL, NULL, NULL), 4);
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, NULL, NULL, NULL), 0);
	assert_int_equal(bk.nrec, 1 + 4 + 1 + 4 + 1);
	bk_cleanup(&bk);
}

/* Run conduit-policy check on the policy; its exit status, and the count
 * of lines of its output that contain needle. */
static int policy_check(struct bk *bk, const char *needle, size_t *ret_count)
{
	char cmd[512], line[1024];
	size_t n = 0;
	FILE *f;
	int st;

	snprintf(cmd, sizeof(cmd), "'%s' check '%s' 2>&1", policy_tool, bk->policy);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		fprintf(stderr, "# %s", line);
		n += strstr(line, needle) != NULL;
	}
	st = pclose(f);
	assert_true(WIFEXITED(st));
	*ret_count = n;
	return WEXITSTATUS(st);
}

/* Two layers calling each other: `conduit-policy check` warns and names
 * the cycle; the broker starts the first in file order without waiting,
 * the other once the first is ready, and both serve. */
static void test_start_cycle(void **state)
{
	struct bk bk;
	size_t n;

	(void)state;
	bk_init(&bk);
	bk_write_policy(&bk, "version 1\n"
			     "layer ping {\n"
			     "    exec \"@LAYER@\" \"provider\" \"test.ping\"\n" LAYER_HEAD
			     "    provide test.ping\n"
			     "    allow test.pong\n"
			     "}\n"
			     "layer pong {\n"
			     "    exec \"@LAYER@\" \"provider\" \"test.pong\"\n" LAYER_HEAD
			     "    provide test.pong\n"
			     "    allow test.ping\n"
			     "}\n");
	assert_int_equal(policy_check(&bk, "[start-cycle]", &n), 3);
	assert_int_equal(n, 1);
	assert_int_equal(
		policy_check(&bk,
			     "layers depend on each other (ping -> pong -> ping: each "
			     "calls or subscribes to what the next provides or publishes): "
			     "'ping' starts without waiting for them [start-cycle]",
			     &n),
		3);
	assert_int_equal(n, 1);
	bk_start(&bk);
	assert_true(bk_wait_log(&bk, "layer ping: RESULT ready as ping", 1, WAIT));
	assert_true(bk_wait_log(&bk, "layer pong: RESULT ready as pong", 1, WAIT));
	bk_stop_clean(&bk);
	assert_true(rec_index(&bk, AUDIT_EV_SPAWN, "ping") <
		    rec_index(&bk, AUDIT_EV_SPAWN, "pong"));
	assert_int_equal(bk.nrec, 1 + 2 + 2 + 1);
	bk_cleanup(&bk);
}

/* `conduit-policy --format json audit` on the run's log: its output. */
/* `conduit-policy --format json audit` of the run's policy on log; its
 * output in out, its exit code returned. */
static int policy_audit_log(struct bk *bk, const char *log, char *out, size_t cap)
{
	char cmd[512];
	size_t n;
	FILE *f;
	int st;

	snprintf(cmd, sizeof(cmd), "'%s' --format json audit '%s' '%s'", policy_tool, bk->policy,
		 log);
	f = popen(cmd, "r");
	assert_non_null(f);
	n = fread(out, 1, cap - 1, f);
	out[n] = 0;
	st = pclose(f);
	assert_true(WIFEXITED(st));
	fprintf(stderr, "# %.300s...\n", out);
	return WEXITSTATUS(st);
}

static void policy_audit_json(struct bk *bk, char *out, size_t cap)
{
	assert_int_equal(policy_audit_log(bk, bk->audit, out, cap), 0);
}

/* What rechain() does to the decision records of a log, by their order. */
enum edit {
	EDIT_NONE,
	EDIT_ALLOW_THIRD,  /* the third decision recorded as allowed */
	EDIT_SECOND_BACK,  /* the second decision's mono_ns before the first's */
	EDIT_STRIP_MONO,   /* every mono_ns removed: an older writer's log */
	EDIT_STRIP_FORGED, /* both of the last two */
};

/* Copy the log at in to out with the edit applied to its records, each
 * written again by audit_format() with prev recomputed: the chain holds,
 * as it does for a forger with the whole file, or for a broker bug.  The
 * decisions' mono_ns (as read, before the edit) go to ret_mono. */
static size_t rechain(const char *in, const char *out, enum edit edit, uint64_t *ret_mono,
		      size_t max_mono)
{
	static char buf[1 << 20], line[AUDIT_LINE_MAX + 2];
	struct audit_scratch sc;
	struct audit_parse_error err;
	uint8_t prev[AUDIT_HASH_LEN];
	size_t len = 0, ndec = 0;
	ssize_t r;
	uint64_t first_mono = 0;
	int fd = open(in, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	while ((r = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)r;
	assert_true(len < sizeof(buf) - 1);
	close(fd);
	FILE *f = fopen(out, "we");
	assert_non_null(f);
	assert_int_equal(audit_scratch_init(&sc, AUDIT_LINE_MAX), 0);
	for (char *p = buf, *nl; p < buf + len; p = nl + 1) {
		struct audit_record rec;
		nl = memchr(p, '\n', (size_t)(buf + len - p));
		assert_non_null(nl);
		assert_int_equal(audit_parse_line(p, (size_t)(nl - p), &sc, &rec, &err), 0);
		if (rec.seq > 1)
			memcpy(rec.prev, prev, sizeof(prev));
		if (rec.event == AUDIT_EV_DECISION) {
			assert_true(rec.has_mono);
			assert_true(ndec < max_mono);
			ret_mono[ndec++] = rec.mono_ns;
			if (ndec == 1)
				first_mono = rec.mono_ns;
			if (ndec == 3 && (edit == EDIT_ALLOW_THIRD || edit == EDIT_STRIP_FORGED)) {
				assert_int_equal(rec.verdict, AUDIT_VERDICT_RATE_LIMITED);
				rec.verdict = AUDIT_VERDICT_ALLOW;
			}
			if (ndec == 2 && edit == EDIT_SECOND_BACK)
				rec.mono_ns = first_mono - 1;
			if (edit == EDIT_STRIP_MONO || edit == EDIT_STRIP_FORGED)
				rec.has_mono = false;
		}
		long n = audit_format(&rec, line, sizeof(line));
		assert_true(n > 0);
		crypto_generichash(prev, sizeof(prev), (const unsigned char *)line, (size_t)n, NULL,
				   0);
		assert_int_equal(fwrite(line, 1, (size_t)n, f), (size_t)n);
	}
	audit_scratch_fini(&sc);
	assert_int_equal(fclose(f), 0);
	return ndec;
}

/* The run's log, tampered with as a forger or a broker bug would, chain
 * intact: the exact replay on the recorded clock finds what the replay on
 * record time let through. */
static void rate_log_forged(struct bk *bk, char *json, size_t cap)
{
	char path[256], cmd[512];
	uint64_t mono[16];

	snprintf(path, sizeof(path), "%s/edited.log", bk->dir);
	/* Unedited, the copy is the same bytes: rechain() is faithful. */
	assert_int_equal(rechain(bk->audit, path, EDIT_NONE, mono, 16), 6);
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", bk->audit, path);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(policy_audit_log(bk, path, json, cap), 0);
	/* One broker run: its clock never goes back. */
	for (size_t i = 1; i < 6; i++)
		assert_true(mono[i] >= mono[i - 1]);

	rechain(bk->audit, path, EDIT_ALLOW_THIRD, mono, 16);
	assert_int_equal(policy_audit_log(bk, path, json, cap), 6);
	assert_non_null(strstr(json, "\"result\":\"verdict-mismatch\""));
	assert_non_null(strstr(json, "\"mismatch_count\":1,\"rate_timing\":0,"));
	assert_non_null(strstr(json, "\"recorded\":\"allow\",\"recorded_rule\":\"client#1\","
				     "\"policy\":\"rate-limited\""));

	rechain(bk->audit, path, EDIT_SECOND_BACK, mono, 16);
	assert_int_equal(policy_audit_log(bk, path, json, cap), 6);
	assert_non_null(strstr(json, "\"mismatch_count\":0,"));
	assert_non_null(strstr(json, "\"clock_error_count\":1,"));
	assert_non_null(strstr(json, "\"kind\":\"back\""));

	/* An older writer's log: the tolerant replay, and it says so. */
	rechain(bk->audit, path, EDIT_STRIP_MONO, mono, 16);
	assert_int_equal(policy_audit_log(bk, path, json, cap), 0);
	assert_non_null(strstr(json, "\"mismatch_count\":0,\"rate_timing\":0,"));
	assert_non_null(strstr(json, "\"clock\":{\"exact\":0,\"record_time\":6,"));
	/* ... where the forged allow is only rate timing: the gap closed by
	 * mono_ns. */
	rechain(bk->audit, path, EDIT_STRIP_FORGED, mono, 16);
	assert_int_equal(policy_audit_log(bk, path, json, cap), 0);
	assert_non_null(strstr(json, "\"mismatch_count\":0,\"rate_timing\":1,"));
}

/* The broker's token buckets are full at start and again after a reload,
 * which is what `conduit-policy audit` assumes when it replays the log: a
 * burst right after each audits clean with no "rate timing" difference,
 * and the one call over the rate each time is rate-limited in the log and
 * in the replay alike. */
static void test_rate_buckets(void **state)
{
	static const char base[] = "version 1\n"
				   "layer client {\n"
				   "    exec \"@LAYER@\" \"burst\" \"-\" \"-\" \"%s\"\n" LAYER_HEAD
				   "    allow test.limited rate 1/1h burst 2\n"
				   "}\n"
				   "layer echo {\n"
				   "    exec \"@LAYER@\" \"provider\" \"test.limited\"\n" LAYER_HEAD
				   "    provide test.limited\n"
				   "}\n";
	static char json[1 << 16];
	char text[2048];
	struct bk bk;
	size_t k = 0;

	(void)state;
	bk_init(&bk);
	snprintf(text, sizeof(text), base, "first");
	bk_write_policy(&bk, text);
	bk_start(&bk);
	assert_true(bk_wait_log(&bk, "RESULT burst-done", 1, WAIT));
	/* Only the client's argument changes: it is started again under the
	 * new policy, with the same rule and fresh buckets. */
	snprintf(text, sizeof(text), base, "second");
	bk_write_policy(&bk, text);
	bk_signal(&bk, SIGHUP);
	assert_true(bk_wait_log(&bk, "RESULT burst-done", 2, WAIT));
	assert_int_equal(bk_log_count(&bk, "RESULT burst reply"), 4);
	assert_int_equal(bk_log_count(&bk, "RESULT burst error conduit.rate_limited"), 2);
	bk_stop_clean(&bk);
	/* allow, allow, rate-limited; reload; allow, allow, rate-limited. */
	static const enum audit_verdict want[] = {
		AUDIT_VERDICT_ALLOW, AUDIT_VERDICT_ALLOW, AUDIT_VERDICT_RATE_LIMITED,
		AUDIT_VERDICT_ALLOW, AUDIT_VERDICT_ALLOW, AUDIT_VERDICT_RATE_LIMITED,
	};
	bool reloaded = false;
	for (size_t i = 0; i < bk.nrec; i++) {
		const struct bk_record *r = &bk.rec[i];
		if (r->event == AUDIT_EV_RELOAD) {
			assert_int_equal(k, 3);
			reloaded = true;
		}
		if (r->event != AUDIT_EV_DECISION)
			continue;
		assert_true(k < 6);
		assert_int_equal(r->verdict, want[k]);
		assert_string_equal(r->rule, "client#1");
		k++;
	}
	assert_true(reloaded);
	assert_int_equal(k, 6);
	policy_audit_json(&bk, json, sizeof(json));
	assert_non_null(strstr(json, "\"result\":\"clean\""));
	assert_non_null(strstr(json, "\"mismatch_count\":0,\"rate_timing\":0,"));
	assert_non_null(strstr(json, "\"verdicts\":{\"allow\":4,\"deny\":0,\"rate-limited\":2,"));
	/* Replayed on the broker's own clock, every one of them. */
	assert_non_null(strstr(json, "\"clock\":{\"exact\":6,\"record_time\":0,\"after_lost\":0},"
				     "\"clock_error_count\":0,"));
	rate_log_forged(&bk, json, sizeof(json));
	bk_cleanup(&bk);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chan_end),     cmocka_unit_test(test_stop_crossing),
		cmocka_unit_test(test_start_order),  cmocka_unit_test(test_start_cycle),
		cmocka_unit_test(test_rate_buckets),
	};

	char *path[3];
	int r = bk_main_paths(argc, argv, 3, "BROKER LAYER CONDUIT-POLICY", path);

	if (r != 0)
		return r;
	bk_broker_path = path[0];
	bk_layer_path = path[1];
	policy_tool = path[2];
	return cmocka_run_group_tests_name("broker-life", tests, NULL, NULL);
}
