/* SPDX-License-Identifier: MIT */
/*
 * `conduit-policy audit | learn | diff` run as a user runs them, on logs
 * written at test time the way the broker writes them: exit codes, the first
 * bad record named like the library names it for mutated logs, verdict
 * replay, --follow on a log being written, learn's proposals (and that the
 * learned policy allows what it learned from), diff.
 * usage: test-policy-audit CONDUIT-POLICY
 */
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>

#include "policy-audit-fixture.h"

static char dir[] = "/tmp/conduit-policy-audit.XXXXXX";
static char pol[128], logp[128], tmp[128];

static void setup_paths(const char *name)
{
	snprintf(pol, sizeof(pol), "%s/plant.policy", dir);
	snprintf(logp, sizeof(logp), "%s/%s.log", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name);
	unlink(logp);
	fix_write_file(pol, fixture_policy);
}

static void test_clean(void **state)
{
	(void)state;
	setup_paths("clean");
	fix_log(logp, pol, 1200, 0, NULL);
	assert_int_equal(fix_run("audit", pol, logp), 0);
	assert_non_null(strstr(fix_out, ": clean\n"));
	assert_non_null(strstr(fix_out, " 0 verdict mismatches"));
	/* the one-screen summary comes first */
	assert_true(strstr(fix_out, "decisions") < strstr(fix_out, "by layer:"));
	/* violations per layer: denials, a protocol drop, sandbox kills */
	assert_non_null(strstr(fix_out, "200 deny (0 by default)"));
	assert_non_null(strstr(fix_out, "2 protocol-violation"));
	assert_non_null(strstr(fix_out, "2 killed:SIGSYS"));
	/* alarm.list and conduit.ping are never called */
	assert_non_null(strstr(fix_out, "ui#5 allow alarm.list"));
	assert_non_null(strstr(fix_out, "io#1 allow conduit.ping"));
	/* setpoints 90..110 in 80..120: 25% from the edge at best */
	assert_non_null(strstr(fix_out, "value=90, 25.0% from the edge of value in 80..120"));

	assert_int_equal(fix_run("--format", "json", "audit", pol, logp), 0);
	assert_non_null(strstr(fix_out, "\"result\":\"clean\""));
	assert_int_equal(fix_json_num("mismatch_count"), 0);
	assert_int_equal(fix_json_num("decisions"), 1200);
	assert_int_equal(fix_json_num("records"), 1200 + 3 + 2 + 2);
	assert_non_null(
		strstr(fix_out, "{\"rule\":\"ui#5\",\"line\":20,\"method\":\"alarm.list\"}"));

	/* --closed: this log is closed; cut its stop record and it is not */
	assert_int_equal(fix_run("--closed", "audit", pol, logp), 0);
}

static void test_mismatch(void **state)
{
	(void)state;
	setup_paths("mismatch");
	uint64_t seq = 0;
	fix_log(logp, pol, 300, 123, &seq);
	assert_true(seq > 0);
	assert_int_equal(fix_run("--format", "json", "audit", pol, logp), 6);
	assert_int_equal(fix_json_num("mismatch_count"), 1);
	/* one record per line: the line is the seq */
	char want[64];
	snprintf(want, sizeof(want), "\"line\":%llu,\"seq\":%llu", (unsigned long long)seq,
		 (unsigned long long)seq);
	assert_non_null(strstr(fix_out, want));
	assert_int_equal(fix_run("audit", pol, logp), 6);
	assert_non_null(strstr(fix_out, "VERDICT MISMATCH") ? fix_out
							    : strstr(fix_out, "verdict-mismatch"));
}

/* The broker records a SUBSCRIBE as a decision on the event without a rule:
 * replayed as a subscription (allowed exactly when the layer subscribes),
 * not as a call the matcher would default-deny. */
static const char sub_policy[] = "version 1\n"
				 "layer io {\n"
				 "    exec \"/usr/libexec/conduit/plant-io\"\n"
				 "    syscalls stdio\n"
				 "    publish alarm.raised tag.changed\n"
				 "}\n"
				 "layer ui {\n"
				 "    exec \"/usr/libexec/conduit/plant-ui\"\n"
				 "    syscalls stdio\n"
				 "    subscribe tag.changed\n"
				 "}\n";

static void sub_log(bool forge)
{
	struct fix_writer fw;
	struct audit_record rec = {.event = AUDIT_EV_DECISION,
				   .layer = "ui",
				   .has_pid = true,
				   .pid = 800,
				   .method = "tag.changed",
				   .has_args = true,
				   .verdict = AUDIT_VERDICT_ALLOW,
				   .policy = pol,
				   .policy_line = 10,
				   .reason = "subscribed"};

	unlink(logp);
	fix_open(&fw, logp, pol);
	fix_event(&fw, (struct audit_record){.event = AUDIT_EV_START, .policy = pol});
	fix_event(&fw, rec);
	/* no subscribe for alarm.raised: the broker records a deny */
	rec.method = "alarm.raised";
	rec.verdict = forge ? AUDIT_VERDICT_ALLOW : AUDIT_VERDICT_DENY;
	rec.policy_line = 7;
	rec.reason = "no subscribe for this event";
	fix_event(&fw, rec);
	fix_event(&fw, (struct audit_record){.event = AUDIT_EV_STOP});
	fix_close(&fw);
}

static void test_subscribe(void **state)
{
	(void)state;
	setup_paths("subscribe");
	fix_write_file(pol, sub_policy);
	sub_log(false);
	assert_int_equal(fix_run("audit", pol, logp), 0);
	assert_non_null(strstr(fix_out, ": clean\n"));
	assert_non_null(strstr(fix_out, " 0 verdict mismatches"));
	/* an allowed subscription is no default deny */
	assert_non_null(strstr(fix_out, "ui           2 decisions, 1 deny (0 by default)"));
	sub_log(true);
	assert_int_equal(fix_run("audit", pol, logp), 6);
	assert_non_null(strstr(fix_out, "1 verdict mismatches"));
}

static void test_torn(void **state)
{
	(void)state;
	setup_paths("torn");
	fix_log(logp, pol, 50, 0, NULL);
	int fd = open(logp, O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"seq\":56,\"time\":\"20", 20), 20);
	close(fd);
	assert_int_equal(fix_run("audit", pol, logp), 7);
	assert_non_null(strstr(fix_out, "torn at "));
	/* The broker restarts: the writer closes the torn line with a gap. */
	struct fix_writer fw;
	fix_open(&fw, logp, pol);
	fix_event(&fw, (struct audit_record){.event = AUDIT_EV_START});
	fix_traffic(&fw, 12, 0, NULL);
	fix_close(&fw);
	assert_int_equal(fix_run("--format", "json", "audit", pol, logp), 0);
	assert_int_equal(fix_json_num("torn_closed"), 1);
}

static void test_nasty_args(void **state)
{
	(void)state;
	setup_paths("nasty");
	static char big[65536];
	memset(big, 'x', sizeof(big));
	memcpy(big, "plant.", 6);
	struct fix_writer fw;
	fix_open(&fw, logp, pol);
	fix_event(&fw, (struct audit_record){.event = AUDIT_EV_START});
	const char *nasty[] = {"plant.a\nb", "plant.\x1b[2J", "plant.\xff\xfe", "plant.\xc0\x80"};
	for (size_t i = 0; i < 4; i++) {
		struct cdt_arg a[] = {STR("tag", nasty[i])};
		fix_call(&fw, "ui", "tag.read", a, 1, false);
	}
	struct cdt_arg nul[] = {
		{.name = "tag", .type = CDT_TYPE_STRING, .v.str = {"plant.\0x", 8}}};
	fix_call(&fw, "ui", "tag.read", nul, 1, false);
	/* 64 KiB meets a glob: denied; the log keeps 1 KiB, which the glob
	 * would allow, so the checker cannot replay it and says so. */
	struct cdt_arg huge[] = {
		{.name = "tag", .type = CDT_TYPE_STRING, .v.str = {big, sizeof(big)}}};
	fix_call(&fw, "ui", "tag.read", huge, 1, false);
	fix_close(&fw);
	assert_int_equal(fix_run("--format", "json", "audit", pol, logp), 0);
	assert_int_equal(fix_json_num("mismatch_count"), 0);
	assert_int_equal(fix_json_num("not_replayable"), 1);
	assert_int_equal(fix_json_num("decisions"), 6);

	/* Shown to a terminal, a forged log's bytes are escaped, never raw. */
	static char text[4096];
	snprintf(text, sizeof(text), "%s", fixture_policy);
	memcpy(strstr(text, "tag \"plant.*\""), "tag \"xlant.*\"", 13);
	fix_write_file(tmp, text);
	assert_int_equal(fix_run("diff", pol, tmp, "--log", logp), 8);
	assert_non_null(strstr(fix_out, "tag=\"plant.\\x1b[2J\": allow (ui#2) -> deny"));
	assert_non_null(strstr(fix_out, "tag=\"plant.a\\x0ab\""));
	assert_non_null(strstr(fix_out, "...(1024 bytes)"));
	for (const char *c = fix_out; *c; c++)
		assert_true((*c >= 0x20 && *c < 0x7f) || *c == '\n');
}

/* ---- the mutation test, through the CLI ---- */

static uint64_t rng_state = 0x0dd5eed5c0ffee11u;
static size_t rnd(size_t n)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return (size_t)(x % n);
}

#define CLI_MUTATIONS 400

static void test_cli_mutations(void **state)
{
	(void)state;
	setup_paths("mut");
	fix_log(logp, pol, 150, 0, NULL);
	int fd = open(logp, O_RDONLY | O_CLOEXEC);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	size_t len = (size_t)st.st_size, nl = 0;
	char *orig = malloc(len), *mut = malloc(2 * len);
	size_t *off = malloc((len + 1) * sizeof(size_t));
	assert_true(orig && mut && off);
	assert_int_equal(read(fd, orig, len), (ssize_t)len);
	close(fd);
	off[0] = 0;
	for (size_t i = 0; i < len; i++)
		if (orig[i] == '\n')
			off[++nl] = i + 1;
	unsigned by_exit[9] = {0};
	for (int n = 0; n < CLI_MUTATIONS; n++) {
		size_t m = 0, kind = rnd(6), a = rnd(nl), b = rnd(nl);
		switch (kind) {
		case 0: /* byte flip */
			memcpy(mut, orig, len);
			mut[rnd(len)] ^= (char)(1 + rnd(255));
			m = len;
			break;
		case 1: /* dropped record */
		case 2: /* duplicated record */
		case 3: /* swapped records */
			if (kind == 3 && a == b)
				b = (a + 1) % nl;
			for (size_t i = 0; i < nl; i++) {
				size_t s = kind == 3 && i == a ? b : kind == 3 && i == b ? a : i;
				if (kind == 1 && i == a)
					continue;
				memcpy(mut + m, orig + off[s], off[s + 1] - off[s]);
				m += off[s + 1] - off[s];
				if (kind == 2 && i == a) {
					memcpy(mut + m, orig + off[s], off[s + 1] - off[s]);
					m += off[s + 1] - off[s];
				}
			}
			break;
		case 4: /* a record cut short: built below */
			break;
		default: /* the file cut */
			m = rnd(len);
			memcpy(mut, orig, m);
			break;
		}
		if (kind == 4) {
			/* rebuilt simply: lines before a, a's prefix and a newline, the rest */
			size_t cut = rnd(off[a + 1] - off[a] - 1);
			m = 0;
			memcpy(mut, orig, off[a] + cut);
			m = off[a] + cut;
			mut[m++] = '\n';
			memcpy(mut + m, orig + off[a + 1], len - off[a + 1]);
			m += len - off[a + 1];
		}
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, mut, m), (ssize_t)m);
		close(fd);
		struct audit_verify_result res;
		struct audit_verify_opts o = {.require_closed = true};
		const char *paths[] = {tmp};
		assert_int_equal(audit_verify_files(paths, 1, &o, &res), 0);
		int rc = fix_run("--closed", "--format", "json", "audit", pol, tmp);
		by_exit[rc]++;
		/* Every mutation is caught: tampering, or a crash-like torn tail. */
		assert_int_not_equal(res.status, AUDIT_OK);
		assert_int_equal(rc, res.status == AUDIT_TORN ? 7 : 5);
		char want[160];
		snprintf(want, sizeof(want), "\"status\":\"%s\",", audit_status_name(res.status));
		assert_non_null(strstr(fix_out, want));
		if (res.status != AUDIT_EMPTY) {
			snprintf(want, sizeof(want), "\"line\":%llu,",
				 (unsigned long long)res.line);
			assert_non_null(strstr(fix_out, want));
		}
	}
	printf("conduit-policy audit on %d mutated logs: %u exit 5 (tampered), %u exit 7 "
	       "(torn), 0 missed\n",
	       CLI_MUTATIONS, by_exit[5], by_exit[7]);
	assert_int_equal(by_exit[5] + by_exit[7], CLI_MUTATIONS);
	free(orig);
	free(mut);
	free(off);
}

/* ---- --follow ---- */

/* Read the follower's output until want appears; false after 30 s (a hang
 * guard, not a timing assertion). */
static bool wait_for(int fd, char *buf, size_t cap, size_t *len, const char *want)
{
	for (int i = 0; i < 300; i++) {
		buf[*len] = '\0';
		if (strstr(buf, want))
			return true;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 100) > 0) {
			ssize_t n = read(fd, buf + *len, cap - 1 - *len);
			if (n <= 0)
				return false;
			*len += (size_t)n;
		}
	}
	return false;
}

static void test_follow(void **state)
{
	(void)state;
	setup_paths("follow");
	struct fix_writer fw;
	fix_open(&fw, logp, pol);
	fix_event(&fw, (struct audit_record){.event = AUDIT_EV_START});
	fix_traffic(&fw, 10, 0, NULL);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		execl(fix_bin, fix_bin, "--follow", "audit", pol, logp, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	static char buf[1 << 16];
	size_t len = 0;
	/* Denied calls show up as they are written; so does a forged one. */
	uint64_t forged = 0;
	fix_traffic(&fw, 30, 7, &forged);
	char want[64];
	snprintf(want, sizeof(want), "seq %llu ui", (unsigned long long)forged);
	bool seen = wait_for(p[0], buf, sizeof(buf), &len, want);
	/* A record written in two pieces is not a torn line while followed. */
	fix_event(&fw, (struct audit_record){.event = AUDIT_EV_VIOLATION,
					     .layer = "ui",
					     .klass = "auth-failure"});
	bool seen2 = wait_for(p[0], buf, sizeof(buf), &len, "auth-failure");
	fix_close(&fw);
	kill(pid, SIGTERM);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	wait_for(p[0], buf, sizeof(buf), &len, "\nby layer:");
	close(p[0]);
	assert_true(seen);
	assert_true(seen2);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 6); /* the forged verdict */
	assert_non_null(strstr(buf, " 1 verdict mismatches"));
	assert_non_null(strstr(buf, "chain       ok: 42 records"));
}

static void test_follow_partial(void **state)
{
	(void)state;
	setup_paths("follow2");
	fix_log(logp, pol, 6, 0, NULL);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		execl(fix_bin, fix_bin, "--follow", "audit", pol, logp, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	static char buf[1 << 16];
	size_t len = 0;
	/* Caught up once the safety write's denial is shown. */
	bool caught_up = wait_for(p[0], buf, sizeof(buf), &len, "seq 5: decision ui deny");
	/* Half a line is waited for, not reported torn, while following. */
	int fd = open(logp, O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"seq\":", 7), 7);
	close(fd);
	struct pollfd pf = {.fd = p[0], .events = POLLIN};
	bool quiet = poll(&pf, 1, 300) == 0; /* nothing printed for it */
	kill(pid, SIGTERM);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	wait_for(p[0], buf, sizeof(buf), &len, "\nby layer:");
	close(p[0]);
	assert_true(caught_up);
	assert_true(quiet);
	/* Stopped on a partial last line: now it is a torn tail. */
	assert_int_equal(WEXITSTATUS(status), 7);
	assert_non_null(strstr(buf, "torn at"));
}

/* ---- learn ---- */

static void test_learn(void **state)
{
	(void)state;
	setup_paths("learn");
	fix_log(logp, pol, 600, 0, NULL);
	assert_int_equal(fix_run("learn", logp), 0);
	const char *o = fix_out;
	/* 12 sibling tank tags: a glob; the one-off tag: a literal, flagged */
	assert_non_null(strstr(o, "allow tag.read tag \"plant.tank.*\" rate 4/s  # 199 calls"));
	assert_non_null(strstr(o, "# tag: 12 sibling values under one prefix: a glob"));
	assert_non_null(strstr(o, "# tag: this value seen once\n    allow tag.read tag "
				  "\"plant.misc.once\" rate 2/s  # 1 call\n"));
	/* setpoints 90..110: 10% of the span each side */
	assert_non_null(strstr(o, "allow tag.write tag \"plant.dosing.naoh_sp\" value 88..112 "
				  "rate 2/s  # 100 calls"));
	/* a run flag of repeated 0 and 1: a set */
	assert_non_null(strstr(o, "allow tag.write tag \"plant.pump.p101.run\" value {0, 1}"));
	/* denied safety writes are not learned */
	assert_null(strstr(o, "plant.safety"));
	assert_non_null(strstr(o, "# tag.write: also 100 denied calls, not learned"));
	/* alarm ids A-0..A-39: a glob */
	assert_non_null(strstr(o, "allow alarm.ack id \"A-*\" rate 2/s"));

	/* The learned rules, with the plant's providers, make a valid policy
	 * that allows every call it learned from. */
	static char learned[1 << 16];
	size_t n = 0;
	n += (size_t)snprintf(learned + n, sizeof(learned) - n, "version 1\n");
	for (const char *s = fix_out; *s;) {
		const char *e = strchr(s, '\n');
		size_t l = (size_t)(e - s);
		n += (size_t)snprintf(learned + n, sizeof(learned) - n, "%.*s\n", (int)l, s);
		if (l > 6 && memcmp(s, "layer ", 6) == 0)
			n += (size_t)snprintf(learned + n, sizeof(learned) - n,
					      "    exec \"/bin/ui\"\n    syscalls stdio\n");
		s = e + 1;
	}
	snprintf(learned + n, sizeof(learned) - n,
		 "layer prov {\n    exec \"/bin/prov\"\n    syscalls stdio\n"
		 "    provide tag.read tag.write alarm.list alarm.ack\n}\n");
	char lp[160];
	snprintf(lp, sizeof(lp), "%s/learned.policy", dir);
	fix_write_file(lp, learned);
	int rc = fix_run("check", lp);
	if (rc != 0)
		fail_msg("learned policy: %s\n%s", fix_err, learned);
	assert_int_equal(fix_run("--format", "json", "diff", pol, lp, "--log", logp), 8);
	/* the 100 safety writes stay denied; nothing else changes */
	assert_int_equal(fix_json_num("changed"), 0);

	assert_int_equal(fix_run("--format", "json", "learn", logp), 0);
	assert_non_null(strstr(fix_out, "\"learned_from\":500"));
	assert_non_null(strstr(fix_out, "\"flags\":[\"tag: this value seen once\"]"));
}

static void test_learn_base(void **state)
{
	(void)state;
	setup_paths("learnbase");
	fix_log(logp, pol, 120, 0, NULL);
	/* a base where ui reads only tanks and has no acks */
	char bp[160];
	snprintf(bp, sizeof(bp), "%s/base.policy", dir);
	fix_write_file(bp, "version 1\n"
			   "layer prov {\n"
			   "    exec \"/bin/prov\"\n"
			   "    syscalls stdio\n"
			   "    provide tag.read tag.write alarm.list alarm.ack\n"
			   "}\n"
			   "layer ui {\n"
			   "    exec \"/bin/ui\"\n"
			   "    syscalls stdio\n"
			   "    allow tag.read tag \"plant.tank.*\"\n"
			   "    allow tag.write tag \"plant.*\" rate 10/s\n"
			   "}\n");
	assert_int_equal(fix_run("learn", "--base", bp, logp), 0);
	assert_non_null(strstr(fix_out, "--- "));
	assert_non_null(strstr(fix_out, "@@ -10,3 +10,"));
	assert_non_null(strstr(fix_out, "+    allow alarm.ack id"));
	assert_non_null(strstr(fix_out, "+    allow tag.read tag \"plant.misc.once\""));
	/* the base allows the tank reads and tag writes already */
	assert_null(strstr(fix_out, "+    allow tag.read tag \"plant.tank"));
	assert_null(strstr(fix_out, "+    allow tag.write"));
	/* the diff applies, and what it makes is a valid policy */
	char dp[160], out[160], cmd[600];
	snprintf(dp, sizeof(dp), "%s/learn.diff", dir);
	snprintf(out, sizeof(out), "%s/patched.policy", dir);
	fix_write_file(dp, fix_out);
	snprintf(cmd, sizeof(cmd), "patch -s -o %s %s < %s", out, bp, dp);
	assert_int_equal(system(cmd), 0);
	chmod(out, 0600);
	assert_int_equal(fix_run("check", out), 0);
}

static void test_learn_types(void **state)
{
	(void)state;
	setup_paths("types");
	/* commissioning: io in complain mode, every call recorded as complain */
	static char text[4096];
	const char *io = strstr(fixture_policy, "    allow conduit.ping\n");
	assert_non_null(io);
	int off = io ? (int)(io - fixture_policy) : 0;
	snprintf(text, sizeof(text), "%.*s    log\n%s", off, fixture_policy, fixture_policy + off);
	fix_write_file(tmp, text);
	struct fix_writer fw;
	fix_open(&fw, logp, tmp);
	fix_event(&fw, (struct audit_record){.event = AUDIT_EV_START});
	static const uint8_t blob[5] = {1, 2, 3, 4, 5};
	for (int i = 0; i < 11; i++) {
		fw.t_us += 1000000;
		struct cdt_arg w[] = {STR("tag", "plant.dosing.naoh_sp"),
				      F64("value", 1.5 + i / 10.0)};
		fix_call(&fw, "io", "tag.write", w, 2, false);
		struct cdt_arg n[] = {STR("tag", "plant.flow"), F64("value", i == 3 ? NAN : 2.0)};
		fix_call(&fw, "io", "tag.write", n, 2, false);
		struct cdt_arg a[] = {{.name = "blob",
				       .type = CDT_TYPE_BYTES,
				       .v.bytes = {blob, (size_t)(3 + i % 3)}},
				      {.name = "force", .type = CDT_TYPE_BOOL, .v.b = true},
				      STR("id", "A-1"),
				      I64("level", -5 - i)};
		fix_call(&fw, "io", "alarm.ack", a, 4, false);
	}
	fix_close(&fw);
	assert_int_equal(fix_run("learn", logp), 0);
	/* 1.5..2.5 widened by 0.1 each side, in the shortest exact spelling */
	assert_non_null(strstr(fix_out, "tag \"plant.dosing.naoh_sp\" value 1.4..2.6 rate 2/s"));
	assert_non_null(strstr(fix_out,
			       "# value: NaN seen, which no range admits: not "
			       "constrained\n    allow tag.write tag \"plant.flow\" rate 2/s"));
	/* negative integers -15..-5: margin 1 each side, may go below 0 */
	assert_non_null(strstr(fix_out, "allow alarm.ack id \"A-1\" blob len 3..5 force true "
					"level -16..-4 rate 2/s"));
}

/* ---- diff ---- */

static void test_diff(void **state)
{
	(void)state;
	setup_paths("diff");
	fix_log(logp, pol, 120, 0, NULL);
	char np[160];
	snprintf(np, sizeof(np), "%s/new.policy", dir);
	/* widen the setpoint, narrow the ack id, drop the pump rule, add a ping */
	static const char *const edits[][2] = {
		{"80..120", "80..130"},
		{"len 1..64", "len 1..32"},
		{"allow tag.write  tag \"plant.pump.p101.run\" value {0, 1} rate 1/s",
		 "allow conduit.ping"},
	};
	static char text[4096];
	snprintf(text, sizeof(text), "%s", fixture_policy);
	for (size_t i = 0; i < 3; i++) {
		char *p = strstr(text, edits[i][0]);
		assert_non_null(p);
		size_t ol = strlen(edits[i][0]), nl = strlen(edits[i][1]);
		memmove(p + nl, p + ol, strlen(p + ol) + 1);
		memcpy(p, edits[i][1], nl);
	}
	fix_write_file(np, text);
	assert_int_equal(fix_run("diff", pol, pol), 0);
	assert_non_null(strstr(fix_out, "0 rule changes"));
	assert_int_equal(fix_run("diff", pol, np), 8);
	assert_non_null(strstr(fix_out, "widened  ui ui#3 (line 18) -> ui#3 (line 18)"));
	assert_non_null(strstr(fix_out, "narrowed ui ui#6 (line 21) -> ui#6 (line 21)"));
	assert_non_null(strstr(fix_out, "added    ui ui#4 (line 19): allow conduit.ping"));
	assert_non_null(strstr(fix_out, "removed  ui ui#4 (line 19): allow tag.write"));
	assert_non_null(strstr(fix_out, "4 rule changes"));
	/* pump writes were allowed and are now denied */
	assert_int_equal(fix_run("diff", pol, np, "--log", logp), 8);
	assert_non_null(strstr(fix_out, "tag=\"plant.pump.p101.run\" value=0: allow (ui#4) -> deny "
					"(ui#default)"));
	assert_non_null(strstr(fix_out, "20 of 120 recorded decisions change verdict"));
	assert_int_equal(fix_run("--format", "json", "diff", pol, np, logp), 8);
	assert_int_equal(fix_json_num("change_count"), 4);
	assert_int_equal(fix_json_num("changed"), 20);
}

static void test_usage(void **state)
{
	(void)state;
	setup_paths("usage");
	fix_log(logp, pol, 10, 0, NULL);
	assert_int_equal(fix_run("audit", pol), 2);
	assert_int_equal(fix_run("audit", pol, "/nonexistent/audit.log"), 2);
	assert_int_equal(fix_run("learn"), 2);
	assert_int_equal(fix_run("diff", pol), 2);
	assert_int_equal(fix_run("--follow", "learn", logp), 2);
	char bad[160];
	snprintf(bad, sizeof(bad), "%s/bad.policy", dir);
	fix_write_file(bad, "version 1\nlayer {\n");
	assert_int_equal(fix_run("audit", bad, logp), 1);
	assert_int_equal(fix_run("diff", bad, pol), 1);
	assert_int_equal(fix_run("learn", "--base", bad, logp), 1);
	/* an empty log is no log: tampered */
	fix_write_file(tmp, "");
	assert_int_equal(fix_run("audit", pol, tmp), 5);
	assert_int_equal(fix_run("learn", tmp), 5);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CONDUIT-POLICY\n", argv[0]);
		return 2;
	}
	fix_bin = argv[1];
	if (sodium_init() < 0 || !mkdtemp(dir))
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean),	       cmocka_unit_test(test_mismatch),
		cmocka_unit_test(test_torn),	       cmocka_unit_test(test_nasty_args),
		cmocka_unit_test(test_cli_mutations),  cmocka_unit_test(test_follow),
		cmocka_unit_test(test_follow_partial), cmocka_unit_test(test_learn),
		cmocka_unit_test(test_learn_base),     cmocka_unit_test(test_learn_types),
		cmocka_unit_test(test_diff),	       cmocka_unit_test(test_usage),
		cmocka_unit_test(test_subscribe),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		r = 1;
	return r;
}
