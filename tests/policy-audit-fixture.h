/* SPDX-License-Identifier: MIT */
/*
 * Fixtures for the conduit-policy audit/learn/diff tests, made at test
 * time: a plant policy, and logs written the way the broker writes them
 * (policy_decide() on each call, then audit_writer_append() of the
 * decision with its typed arguments, rule id, file and line).
 */
#ifndef CONDUIT_TESTS_POLICY_AUDIT_FIXTURE_H
#define CONDUIT_TESTS_POLICY_AUDIT_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "audit.h"
#include "policy.h"

/* Each test uses some of these. */
#define FIX_FN static __attribute__((unused))

#define FIX_T0_US 1795677314000000 /* 2026-11-26T07:15:14Z */

static const char fixture_policy[] =
	"version 1\n"
	"layer io {\n"
	"    exec \"/usr/libexec/conduit/plant-io\"\n"
	"    syscalls stdio\n"
	"    provide tag.read tag.write\n"
	"    allow conduit.ping\n"
	"}\n"
	"layer alarm {\n"
	"    exec \"/usr/libexec/conduit/plant-alarm\"\n"
	"    syscalls stdio\n"
	"    provide alarm.list alarm.ack\n"
	"}\n"
	"layer ui {\n"
	"    exec \"/usr/libexec/conduit/plant-ui\"\n"
	"    syscalls stdio\n"
	"    deny  tag.write  tag \"plant.safety.*\"\n"
	"    allow tag.read   tag \"plant.*\"\n"
	"    allow tag.write  tag \"plant.dosing.naoh_sp\" value 80..120 rate 2/s\n"
	"    allow tag.write  tag \"plant.pump.p101.run\" value {0, 1} rate 1/s\n"
	"    allow alarm.list\n"
	"    allow alarm.ack  id len 1..64 rate 5/s\n"
	"}\n";

FIX_FN void fix_write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

struct fix_writer {
	struct audit_writer *w;
	struct policy *p;
	struct policy_state *st;
	const char *policy_name;
	int64_t t_us; /* time of the next record */
	bool no_mono; /* write decisions as a writer before mono_ns did */
};

FIX_FN void fix_open(struct fix_writer *fw, const char *log, const char *policy_path)
{
	memset(fw, 0, sizeof(*fw));
	assert_int_equal(policy_compile_file(policy_path, stderr, &fw->p), 0);
	assert_int_equal(policy_state_new(fw->p, &fw->st), 0);
	assert_int_equal(audit_writer_open(log, &fw->w), 0);
	fw->policy_name = policy_path;
	fw->t_us = FIX_T0_US;
}

FIX_FN void fix_close(struct fix_writer *fw)
{
	audit_writer_free(fw->w);
	policy_state_free(fw->st);
	policy_free(fw->p);
}

FIX_FN void fix_event(struct fix_writer *fw, struct audit_record rec)
{
	rec.time_us = fw->t_us;
	if (rec.event == AUDIT_EV_START) {
		/* A broker start: fresh buckets, as replay assumes. */
		policy_state_free(fw->st);
		assert_int_equal(policy_state_new(fw->p, &fw->st), 0);
	}
	assert_int_equal(audit_writer_append(fw->w, &rec), 0);
}

/* Decide and record one call as the broker does; the record's seq.  forge
 * records the opposite verdict (a broker bug or a forged record). */
FIX_FN uint64_t fix_call(struct fix_writer *fw, const char *layer, const char *method,
			 const struct cdt_arg *args, size_t nargs, bool forge)
{
	struct policy_decision d;
	uint64_t now_ns = (uint64_t)(fw->t_us - FIX_T0_US) * 1000;
	assert_int_equal(policy_decide(fw->p, fw->st, layer, method, args, nargs, now_ns, &d), 0);
	enum audit_verdict v = d.verdict == POLICY_ALLOW  ? AUDIT_VERDICT_ALLOW
			       : d.logonly		  ? AUDIT_VERDICT_COMPLAIN
			       : d.verdict == POLICY_DENY ? AUDIT_VERDICT_DENY
							  : AUDIT_VERDICT_RATE_LIMITED;
	if (forge)
		v = v == AUDIT_VERDICT_ALLOW ? AUDIT_VERDICT_DENY : AUDIT_VERDICT_ALLOW;
	struct audit_record rec = {.event = AUDIT_EV_DECISION,
				   .time_us = fw->t_us,
				   .layer = layer,
				   .has_pid = true,
				   .pid = 800,
				   .method = method,
				   .call_args = args,
				   .ncall_args = nargs,
				   .has_args = true,
				   .verdict = v,
				   .has_mono = !fw->no_mono,
				   .mono_ns = now_ns,
				   .rule = d.rule_id,
				   .policy = fw->policy_name,
				   .policy_line = d.line,
				   .reason = d.reason};
	uint64_t seq = audit_writer_next_seq(fw->w);
	assert_int_equal(audit_writer_append(fw->w, &rec), 0);
	return seq;
}

#define STR(n, s)                                                                                  \
	{                                                                                          \
		.name = n, .type = CDT_TYPE_STRING, .v.str = { s, strlen(s) }                      \
	}
#define I64(n, x)                                                                                  \
	{                                                                                          \
		.name = n, .type = CDT_TYPE_I64, .v.i64 = x                                        \
	}
#define F64(n, x)                                                                                  \
	{                                                                                          \
		.name = n, .type = CDT_TYPE_DOUBLE, .v.d = x                                       \
	}

/* Plant traffic from the ui layer, one call every 600 ms (under every rate):
 * reads of 12 sibling tank tags and one tag read once, setpoint writes of
 * 90..110, pump run 0/1, denied safety writes, alarm acks A-1..., plus a
 * protocol violation and a seccomp kill.  forge_at: the call whose verdict
 * is recorded wrong (0: none); its seq goes to *ret_forged. */
FIX_FN void fix_traffic(struct fix_writer *fw, int calls, int forge_at, uint64_t *ret_forged)
{
	char tag[64], id[32];
	for (int i = 1; i <= calls; i++) {
		fw->t_us += 600000;
		bool forge = i == forge_at;
		uint64_t seq = 0;
		switch (i % 6) {
		case 0: {
			snprintf(tag, sizeof(tag), "plant.tank.t%d", (i / 6) % 12);
			struct cdt_arg a[] = {STR("tag", tag)};
			seq = fix_call(fw, "ui", "tag.read", a, 1, forge);
			break;
		}
		case 1: {
			struct cdt_arg a[] = {STR("tag", "plant.dosing.naoh_sp"),
					      I64("value", 90 + (i / 6) % 21)};
			seq = fix_call(fw, "ui", "tag.write", a, 2, forge);
			break;
		}
		case 2: {
			struct cdt_arg a[] = {STR("tag", "plant.pump.p101.run"),
					      I64("value", (i / 6) % 2)};
			seq = fix_call(fw, "ui", "tag.write", a, 2, forge);
			break;
		}
		case 3: {
			struct cdt_arg a[] = {STR("tag", "plant.safety.esd"), I64("value", 1)};
			seq = fix_call(fw, "ui", "tag.write", a, 2, forge);
			break;
		}
		case 4: {
			snprintf(id, sizeof(id), "A-%d", i % 40);
			struct cdt_arg a[] = {STR("id", id)};
			seq = fix_call(fw, "ui", "alarm.ack", a, 1, forge);
			break;
		}
		case 5: {
			snprintf(tag, sizeof(tag), "plant.tank.t%d", (i / 6 + 5) % 12);
			struct cdt_arg a[] = {STR("tag", i == 5 ? "plant.misc.once" : tag)};
			seq = fix_call(fw, "ui", "tag.read", a, 1, forge);
			break;
		}
		}
		if (forge && ret_forged)
			*ret_forged = seq;
		if (i % 500 == 250)
			fix_event(fw, (struct audit_record){.event = AUDIT_EV_VIOLATION,
							    .layer = "ui",
							    .klass = "protocol-violation",
							    .reason = "bad frame"});
		if (i % 500 == 499)
			fix_event(fw, (struct audit_record){.event = AUDIT_EV_EXIT,
							    .layer = "io",
							    .signal = "SIGSYS"});
	}
}

/* A whole closed log: start, spawns, traffic, stop. */
FIX_FN void fix_log(const char *log, const char *policy_path, int calls, int forge_at,
		    uint64_t *ret_forged)
{
	struct fix_writer fw;
	fix_open(&fw, log, policy_path);
	fix_event(&fw, (struct audit_record){.event = AUDIT_EV_START, .policy = policy_path});
	fix_event(&fw,
		  (struct audit_record){
			  .event = AUDIT_EV_SPAWN, .layer = "ui", .has_pid = true, .pid = 800});
	fix_traffic(&fw, calls, forge_at, ret_forged);
	fix_event(&fw, (struct audit_record){.event = AUDIT_EV_STOP});
	fix_close(&fw);
}

/* ---- running conduit-policy ---- */

static const char *fix_bin;
static char fix_out[1 << 20], fix_err[1 << 16];
static long fix_maxrss_kb; /* of the last run */

FIX_FN void fix_slurp(int fd, char *buf, size_t cap)
{
	lseek(fd, 0, SEEK_SET);
	size_t n = 0;
	ssize_t r;
	while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	close(fd);
}

/* Run conduit-policy with a NULL-terminated argv (without argv[0]). */
FIX_FN int fix_runv(const char *const *args)
{
	const char *argv[64] = {fix_bin};
	int n = 1;
	for (; args[n - 1] && n < 63; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	int ofd = memfd_create("out", MFD_CLOEXEC), efd = memfd_create("err", MFD_CLOEXEC);
	assert_true(ofd >= 0 && efd >= 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(ofd, 1);
		dup2(efd, 2);
		execv(fix_bin, (char *const *)argv);
		_exit(127);
	}
	int status;
	struct rusage ru;
	assert_int_equal(wait4(pid, &status, 0, &ru), pid);
	fix_maxrss_kb = ru.ru_maxrss;
	fix_slurp(ofd, fix_out, sizeof(fix_out));
	fix_slurp(efd, fix_err, sizeof(fix_err));
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

#define fix_run(...) fix_runv((const char *const[]){__VA_ARGS__, NULL})

/* The unsigned number after "key": in fix_out, or -1. */
FIX_FN long long fix_json_num(const char *key)
{
	char pat[96];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(fix_out, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

#endif
