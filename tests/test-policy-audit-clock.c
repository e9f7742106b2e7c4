/* SPDX-License-Identifier: MIT */
/*
 * `conduit-policy audit` replaying rate limits on the broker's recorded
 * monotonic clock (mono_ns, docs/audit.md section 8): a call recorded as
 * allowed over its rate is a verdict mismatch; the clock going back within
 * a broker run, or a run mixing records with and without it, is a clock
 * error; a log of an older writer keeps the tolerant replay on record time,
 * and so do decisions after lost records until the buckets are reset.
 * usage: test-policy-audit-clock CONDUIT-POLICY
 */
#include "policy-audit-fixture.h"

static char dir[] = "/tmp/conduit-policy-audit-clock.XXXXXX";
static char pol[128], logp[128];

static const char rate_policy[] = "version 1\n"
				  "layer ui {\n"
				  "    exec \"/usr/libexec/conduit/plant-ui\"\n"
				  "    syscalls stdio\n"
				  "    allow test.limited rate 1/s burst 2\n"
				  "}\n"
				  "layer echo {\n"
				  "    exec \"/usr/libexec/conduit/echo\"\n"
				  "    syscalls stdio\n"
				  "    provide test.limited\n"
				  "}\n";

static void setup_paths(const char *name)
{
	snprintf(pol, sizeof(pol), "%s/rate.policy", dir);
	snprintf(logp, sizeof(logp), "%s/%s.log", dir, name);
	unlink(logp);
	fix_write_file(pol, rate_policy);
}

/* A burst of three calls at one instant, twice, one second apart: allow,
 * allow, rate-limited, then one token back: allow, rate-limited, and
 * rate-limited.  forge_at (1-based, 0: none) records that call's verdict
 * flipped between allow and the rest. */
static void burst_log(bool mono, int forge_at)
{
	struct fix_writer fw;
	fix_open(&fw, logp, pol);
	fw.no_mono = !mono;
	fix_event(&fw, (struct audit_record){.event = AUDIT_EV_START, .policy = pol});
	int n = 0;
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 3; i++) {
			n++;
			fix_call(&fw, "ui", "test.limited", NULL, 0, n == forge_at);
		}
		fw.t_us += 1000000;
	}
	fix_event(&fw, (struct audit_record){.event = AUDIT_EV_STOP});
	fix_close(&fw);
}

static void test_exact(void **state)
{
	(void)state;
	setup_paths("exact");
	burst_log(true, 0);
	assert_int_equal(fix_run("--format", "json", "audit", pol, logp), 0);
	assert_non_null(
		strstr(fix_out, "\"verdicts\":{\"allow\":3,\"deny\":0,\"rate-limited\":3,"));
	assert_int_equal(fix_json_num("mismatch_count"), 0);
	assert_int_equal(fix_json_num("rate_timing"), 0);
	assert_int_equal(fix_json_num("exact"), 6);
	assert_int_equal(fix_json_num("record_time"), 0);
	assert_int_equal(fix_json_num("clock_error_count"), 0);
	assert_int_equal(fix_run("audit", pol, logp), 0);
	assert_non_null(strstr(fix_out, "6 replayed on the broker's clock, 0 on record time"));
}

/* The third call of the first burst, rate-limited, recorded as allowed:
 * on the recorded clock the policy says rate-limited, a mismatch. */
static void test_forged_allow(void **state)
{
	(void)state;
	setup_paths("forged");
	burst_log(true, 3);
	assert_int_equal(fix_run("--format", "json", "audit", pol, logp), 6);
	assert_non_null(strstr(fix_out, "\"result\":\"verdict-mismatch\""));
	assert_int_equal(fix_json_num("mismatch_count"), 1);
	assert_int_equal(fix_json_num("rate_timing"), 0);
	/* start is line 1: the third call is line 4 */
	assert_non_null(strstr(fix_out, "\"line\":4,\"seq\":4,\"layer\":\"ui\",\"method\":"
					"\"test.limited\",\"recorded\":\"allow\",\"recorded_rule\":"
					"\"ui#1\",\"policy\":\"rate-limited\""));
	assert_int_equal(fix_run("audit", pol, logp), 6);
	assert_non_null(strstr(fix_out, "seq 4 ui test.limited: recorded allow (ui#1), the policy "
					"says rate-limited (ui#1, line 5)"));
}

/* The same two logs as an older writer wrote them, without mono_ns: the
 * replay on record time tolerates the forged allow as rate timing, and
 * says how it replayed. */
static void test_old_format(void **state)
{
	(void)state;
	setup_paths("old");
	burst_log(false, 0);
	assert_int_equal(fix_run("--format", "json", "audit", pol, logp), 0);
	assert_int_equal(fix_json_num("mismatch_count"), 0);
	assert_int_equal(fix_json_num("rate_timing"), 0);
	assert_int_equal(fix_json_num("exact"), 0);
	assert_int_equal(fix_json_num("record_time"), 6);
	setup_paths("old-forged");
	burst_log(false, 3);
	assert_int_equal(fix_run("--format", "json", "audit", pol, logp), 0);
	assert_int_equal(fix_json_num("mismatch_count"), 0);
	assert_int_equal(fix_json_num("rate_timing"), 1);
	assert_int_equal(fix_run("audit", pol, logp), 0);
	assert_non_null(strstr(fix_out, "0 replayed on the broker's clock, 6 on record time"));
}

/* Decisions written one by one with a chosen clock (has_mono false for
 * none); between them, start, reload or an audit-gap. */
struct step {
	enum audit_event ev; /* 0: a decision */
	bool has_mono;
	uint64_t mono_ns;
	enum audit_verdict verdict;
};

static void steps_log(const struct step *s, size_t n)
{
	struct fix_writer fw;
	unlink(logp);
	fix_open(&fw, logp, pol);
	for (size_t i = 0; i < n; i++) {
		fw.t_us += 1000;
		if (s[i].ev == AUDIT_EV_GAP) {
			fix_event(&fw, (struct audit_record){
					       .event = AUDIT_EV_GAP, .has_lost = true, .lost = 1});
			continue;
		}
		if (s[i].ev) {
			fix_event(&fw, (struct audit_record){.event = s[i].ev, .policy = pol});
			continue;
		}
		fix_event(&fw, (struct audit_record){.event = AUDIT_EV_DECISION,
						     .layer = "ui",
						     .has_pid = true,
						     .pid = 800,
						     .method = "test.limited",
						     .has_args = true,
						     .verdict = s[i].verdict,
						     .has_mono = s[i].has_mono,
						     .mono_ns = s[i].mono_ns,
						     .rule = "ui#1",
						     .policy = pol,
						     .policy_line = 5});
	}
	fix_event(&fw, (struct audit_record){.event = AUDIT_EV_STOP});
	fix_close(&fw);
}

#define START                                                                                      \
	{                                                                                          \
		.ev = AUDIT_EV_START                                                               \
	}
#define RELOAD                                                                                     \
	{                                                                                          \
		.ev = AUDIT_EV_RELOAD                                                              \
	}
#define GAP                                                                                        \
	{                                                                                          \
		.ev = AUDIT_EV_GAP                                                                 \
	}
#define ALLOW(t)                                                                                   \
	{                                                                                          \
		.has_mono = true, .mono_ns = (t), .verdict = AUDIT_VERDICT_ALLOW                   \
	}
#define LIMIT(t)                                                                                   \
	{                                                                                          \
		.has_mono = true, .mono_ns = (t), .verdict = AUDIT_VERDICT_RATE_LIMITED            \
	}
#define NS 1000000000ull

static void test_clock_back(void **state)
{
	(void)state;
	setup_paths("back");
	/* Equal times are fine; one step back is one error, named.  Going
	 * back refills nothing, so the buckets still hold what they did. */
	const struct step back[] = {START,	   ALLOW(5 * NS), ALLOW(5 * NS),
				    LIMIT(4 * NS), ALLOW(6 * NS), ALLOW(8 * NS)};
	steps_log(back, sizeof(back) / sizeof(back[0]));
	assert_int_equal(fix_run("--format", "json", "audit", pol, logp), 6);
	assert_non_null(strstr(fix_out, "\"result\":\"verdict-mismatch\""));
	assert_int_equal(fix_json_num("mismatch_count"), 0);
	assert_int_equal(fix_json_num("clock_error_count"), 1);
	assert_non_null(strstr(fix_out, "\"line\":4,\"seq\":4,\"kind\":\"back\",\"mono_ns\":"
					"4000000000,\"previous_mono_ns\":5000000000}"));
	assert_int_equal(fix_run("audit", pol, logp), 6);
	assert_non_null(strstr(fix_out, "seq 4: the broker's monotonic time went back: mono_ns "
					"4000000000 after 5000000000"));

	/* A reload keeps the broker's process and its clock. */
	const struct step reload[] = {START, ALLOW(5 * NS), RELOAD, ALLOW(4 * NS)};
	steps_log(reload, sizeof(reload) / sizeof(reload[0]));
	assert_int_equal(fix_run("--format", "json", "audit", pol, logp), 6);
	assert_int_equal(fix_json_num("clock_error_count"), 1);

	/* A start is a new broker and a new clock (after a reboot, lower). */
	const struct step restart[] = {START, ALLOW(5 * NS), START, ALLOW(4 * NS)};
	steps_log(restart, sizeof(restart) / sizeof(restart[0]));
	assert_int_equal(fix_run("--format", "json", "audit", pol, logp), 0);
	assert_int_equal(fix_json_num("clock_error_count"), 0);
	assert_int_equal(fix_json_num("exact"), 2);
}

/* A writer gives every decision of a run a mono_ns or none: a run with
 * both was edited (mono_ns dropped from a record to dodge the replay). */
static void test_clock_mixed(void **state)
{
	(void)state;
	setup_paths("mixed");
	const struct step mixed[] = {START,
				     ALLOW(5 * NS),
				     {.verdict = AUDIT_VERDICT_ALLOW},
				     START,
				     {.verdict = AUDIT_VERDICT_ALLOW},
				     ALLOW(9 * NS)};
	steps_log(mixed, sizeof(mixed) / sizeof(mixed[0]));
	assert_int_equal(fix_run("--format", "json", "audit", pol, logp), 6);
	assert_int_equal(fix_json_num("clock_error_count"), 2);
	assert_non_null(strstr(fix_out, "\"line\":3,\"seq\":3,\"kind\":\"mixed\"}"));
	assert_non_null(strstr(fix_out, "\"line\":6,\"seq\":6,\"kind\":\"mixed\"}"));
	/* An older broker's run, then a newer one's: no error. */
	const struct step upgrade[] = {
		START, {.verdict = AUDIT_VERDICT_ALLOW}, START, ALLOW(9 * NS)};
	steps_log(upgrade, sizeof(upgrade) / sizeof(upgrade[0]));
	assert_int_equal(fix_run("--format", "json", "audit", pol, logp), 0);
	assert_int_equal(fix_json_num("exact"), 1);
	assert_int_equal(fix_json_num("record_time"), 1);
}

/* Lost records may have been decisions that took tokens: after an
 * audit-gap with a lost count the rate replay is tolerant until the next
 * reload or start resets the buckets, and the report says so. */
static void test_lost(void **state)
{
	(void)state;
	setup_paths("lost");
	/* burst 2: a lost call took the second token, the broker then limits */
	const struct step lost[] = {START,  ALLOW(1 * NS), GAP,		  LIMIT(1 * NS),
				    RELOAD, ALLOW(2 * NS), ALLOW(2 * NS), LIMIT(2 * NS)};
	steps_log(lost, sizeof(lost) / sizeof(lost[0]));
	assert_int_equal(fix_run("--format", "json", "audit", pol, logp), 0);
	assert_int_equal(fix_json_num("mismatch_count"), 0);
	assert_int_equal(fix_json_num("rate_timing"), 1);
	assert_int_equal(fix_json_num("after_lost"), 1);
	assert_int_equal(fix_json_num("exact"), 4);
	/* After the reset the replay is exact again: a forged allow shows. */
	const struct step forged[] = {START,  ALLOW(1 * NS), GAP,	    LIMIT(1 * NS),
				      RELOAD, ALLOW(2 * NS), ALLOW(2 * NS), ALLOW(2 * NS)};
	steps_log(forged, sizeof(forged) / sizeof(forged[0]));
	assert_int_equal(fix_run("--format", "json", "audit", pol, logp), 6);
	assert_int_equal(fix_json_num("mismatch_count"), 1);
	assert_non_null(strstr(fix_out, "\"line\":8,\"seq\":8,\"layer\":\"ui\""));
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CONDUIT-POLICY\n", argv[0]);
		return 2;
	}
	fix_bin = argv[1];
	if (!mkdtemp(dir))
		return 2;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact),	    cmocka_unit_test(test_forged_allow),
		cmocka_unit_test(test_old_format),  cmocka_unit_test(test_clock_back),
		cmocka_unit_test(test_clock_mixed), cmocka_unit_test(test_lost),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		rc = rc ? rc : 1;
	return rc;
}
