/* SPDX-License-Identifier: MIT */
/*
 * sandbox/ from inside: the posture a probe sees in the sandbox (ids,
 * capabilities, no_new_privs, seccomp, fds, rlimits, session, namespaces,
 * environment, Landlock, parent death, rootless), and injected failure of
 * every setup step.
 *
 * Usage: test-sandbox-posture PROBE integration|faults
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <seccomp.h>

#include "profiles.h"
#include "sandbox-internal.h"
#include "sandbox-run.h"
#include "selfcheck.h"

/* ---- integration: what the layer sees ---- */

static void assert_line(const struct probe_result *r, const char *key, const char *want)
{
	char buf[256];
	const char *v = probe_value(r, key, buf, sizeof(buf));
	if (!v || strcmp(v, want) != 0)
		fail_msg("%s: got '%s', want '%s'\noutput:\n%s", key, v ? v : "(none)", want,
			 r->out);
}

static void assert_ran(const struct probe_result *r)
{
	if (r->plan_err < 0 || r->spawn_err < 0)
		fail_msg("plan %d spawn %d step %s err %d", r->plan_err, r->spawn_err,
			 sandbox_step_name(r->failure.step), r->failure.err);
	if (!WIFEXITED(r->wait_status) || WEXITSTATUS(r->wait_status) != 0)
		fail_msg("probe status %#x, output:\n%s", r->wait_status, r->out);
}

static void test_posture(void **state)
{
	struct probe_spec ps;
	static struct probe_result r;
	const char *args[] = {"status", NULL};
	char want[128], buf[128], own[128];

	(void)state;
	probe_spec_init(&ps, args);
	probe_run(&ps.spec, 0, &r);
	assert_ran(&r);
	const char *uid = probe_value(&r, "Uid:", buf, sizeof(buf));
	assert_non_null(uid);
	unsigned u = (unsigned)strtoul(uid, NULL, 10);
	assert_true(u >= SANDBOX_DYNAMIC_UID_MIN && u <= SANDBOX_DYNAMIC_UID_MAX);
	snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", u, u, u, u);
	assert_line(&r, "Uid:", want);
	assert_line(&r, "Gid:", want);
	assert_line(&r, "Groups:", ""); /* no supplementary groups */
	static const char *const caps[] = {"CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"};
	for (size_t i = 0; i < 5; i++)
		assert_line(&r, caps[i], "0000000000000000");
	assert_line(&r, "NoNewPrivs:", "1");
	assert_line(&r, "Seccomp:", "2");
	assert_line(&r, "fds", "0 1 2");
	assert_line(&r, "rlimit_core", "0 0");
	assert_line(&r, "rlimit_nofile", "32 32");
	assert_line(&r, "rlimit_nproc", "1 1");
	assert_line(&r, "rlimit_as", "268435456 268435456");
	assert_line(&r, "rlimit_data", "268435456 268435456");
	assert_line(&r, "rlimit_fsize", "1048576 1048576");
	assert_line(&r, "rlimit_cpu", "60 60");
	assert_line(&r, "tty_nr", "0");
	assert_line(&r, "session", probe_value(&r, "pid", buf, sizeof(buf)));
	/* Environment: the allowlist only. */
	assert_line(&r, "env", "CONDUIT_PROBE_ENV=visible");
	assert_null(strstr(r.out, "SECRET"));
	/* New, empty namespaces: network (no network resource), IPC, UTS. */
	static const char *const ns[] = {"net", "ipc", "uts"};
	for (size_t i = 0; i < 3; i++) {
		char key[16], path[64];
		snprintf(key, sizeof(key), "ns_%s", ns[i]);
		snprintf(path, sizeof(path), "/proc/self/ns/%s", ns[i]);
		ssize_t n = readlink(path, own, sizeof(own) - 1);
		assert_true(n > 0);
		own[n] = '\0';
		const char *v = probe_value(&r, key, buf, sizeof(buf));
		assert_non_null(v);
		assert_string_not_equal(v, own);
	}
	/* ...but not the mount namespace, which the spec did not ask for. */
	ssize_t n = readlink("/proc/self/ns/mnt", own, sizeof(own) - 1);
	assert_true(n > 0);
	own[n] = '\0';
	assert_line(&r, "ns_mnt", own);
}

/* Exactly SANDBOX_KEEP_MAX extra fds survive, at their numbers (some above
 * the layer's own RLIMIT_NOFILE of 32), and a network resource keeps the
 * network namespace. */
static void test_keep_fds_and_network_resource(void **state)
{
	struct probe_spec ps;
	static struct probe_result r;
	const char *args[] = {"status", NULL};
	char want[256], own[128];
	int p[SANDBOX_KEEP_MAX][2], keep[SANDBOX_KEEP_MAX];

	(void)state;
	for (int i = 0; i < SANDBOX_KEEP_MAX; i++) {
		assert_int_equal(pipe2(p[i], O_CLOEXEC), 0);
		keep[i] = p[i][0];
	}
	probe_spec_init(&ps, args);
	ps.spec.has_network_resource = true;
	ps.spec.namespaces = 0;
	struct sandbox_options opts;
	struct sandbox_plan *plan = NULL;
	int out[2];
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	sandbox_options_init(&opts);
	opts.keep_fds = keep;
	opts.nkeep = SANDBOX_KEEP_MAX;
	opts.stdio[1] = out[1];
	assert_int_equal(sandbox_plan_new(&ps.spec, &opts, &plan), 0);
	pid_t pid;
	assert_int_equal(sandbox_spawn(plan, &pid, NULL), 0);
	close(out[1]);
	memset(&r, 0, sizeof(r));
	probe_read_all(out[0], &r);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* pipe2 hands out ascending numbers; /proc lists them in order. */
	size_t off = (size_t)snprintf(want, sizeof(want), "0 1 2");
	for (int i = 0; i < SANDBOX_KEEP_MAX; i++)
		off += (size_t)snprintf(want + off, sizeof(want) - off, " %d", keep[i]);
	assert_true(keep[SANDBOX_KEEP_MAX - 1] > 32);
	assert_line(&r, "fds", want);
	ssize_t n = readlink("/proc/self/ns/net", own, sizeof(own) - 1);
	assert_true(n > 0);
	own[n] = '\0';
	assert_line(&r, "ns_net", own);
	sandbox_plan_free(plan);
	close(out[0]);
	for (int i = 0; i < SANDBOX_KEEP_MAX; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
}

/* Every namespace the policy can ask for, each verified to be new. */
static void test_all_namespaces(void **state)
{
	struct probe_spec ps;
	static struct probe_result r;
	static const char *const ns[] = {"net", "ipc", "uts", "mnt"};
	char key[16], path[64], own[128], buf[128];

	(void)state;
	probe_spec_init(&ps, (const char *[]){"status", NULL});
	ps.spec.namespaces =
		LAYER_NS_NET | LAYER_NS_IPC | LAYER_NS_UTS | LAYER_NS_PID | LAYER_NS_MOUNT;
	ps.spec.has_network_resource = true; /* net asked for explicitly */
	probe_run(&ps.spec, 0, &r);
	assert_ran(&r);
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		snprintf(key, sizeof(key), "ns_%s", ns[i]);
		snprintf(path, sizeof(path), "/proc/self/ns/%s", ns[i]);
		ssize_t n = readlink(path, own, sizeof(own) - 1);
		assert_true(n > 0);
		own[n] = '\0';
		const char *v = probe_value(&r, key, buf, sizeof(buf));
		assert_non_null(v);
		assert_string_not_equal(v, own);
	}
	/* The layer's children would start a new PID namespace: /proc cannot
	 * name it before its init exists, ours it can. */
	ssize_t n = readlink("/proc/self/ns/pid_for_children", own, sizeof(own) - 1);
	assert_true(n > 0);
	assert_null(probe_value(&r, "ns_pid_for_children", buf, sizeof(buf)));
	assert_line(&r, "Seccomp:", "2");
}

static void probe_cmd(const char *const *args, struct probe_result *r)
{
	struct probe_spec ps;

	probe_spec_init(&ps, args);
	probe_run(&ps.spec, 0, r);
}

static void test_no_fork_no_root(void **state)
{
	static struct probe_result r;
	char want[16];

	(void)state;
	probe_cmd((const char *[]){"fork", NULL}, &r);
	assert_ran(&r);
	snprintf(want, sizeof(want), "%d", EAGAIN); /* procs 0: RLIMIT_NPROC 1 */
	assert_line(&r, "errno", want);
	probe_cmd((const char *[]){"setuid0", NULL}, &r);
	assert_true(WIFSIGNALED(r.wait_status) && WTERMSIG(r.wait_status) == SIGSYS);
	/* exec made it dumpable again; the layer may (and libconduit should)
	 * turn that off, and then its /proc/self is closed to its own uid. */
	probe_cmd((const char *[]){"undump", NULL}, &r);
	assert_ran(&r);
	snprintf(want, sizeof(want), "%d", EACCES);
	assert_line(&r, "errno", want);
}

static void test_landlock_paths(void **state)
{
	static struct probe_result r;
	char want[16], secret[128], inside[128], outside[128];

	(void)state;
	snprintf(want, sizeof(want), "%d", EACCES);
	probe_cmd((const char *[]){"open", "/etc/shadow", NULL}, &r);
	assert_ran(&r);
	assert_line(&r, "errno", want);
	/* A world-readable "policy" file: file modes would let the layer read
	 * it, so EACCES can only come from Landlock. */
	char dir[] = "/tmp/conduit-pol.XXXXXX";
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(secret, sizeof(secret), "%s/plant.policy", dir);
	FILE *f = fopen(secret, "we");
	assert_non_null(f);
	fputs("version 1\n", f);
	fclose(f);
	assert_int_equal(chmod(secret, 0644), 0);
	probe_cmd((const char *[]){"open", secret, NULL}, &r);
	assert_ran(&r);
	assert_line(&r, "errno", want);
	unlink(secret);
	rmdir(dir);
	/* The writable directory from the spec works; the rest of /tmp not. */
	snprintf(inside, sizeof(inside), "%s/made-by-layer", probe_tmpdir);
	probe_cmd((const char *[]){"create", inside, NULL}, &r);
	assert_ran(&r);
	assert_non_null(strstr(r.out, "ret "));
	assert_int_equal(access(inside, F_OK), 0);
	snprintf(outside, sizeof(outside), "/tmp/conduit-escape-%d", (int)getpid());
	probe_cmd((const char *[]){"create", outside, NULL}, &r);
	assert_ran(&r);
	assert_line(&r, "errno", want);
	assert_int_equal(access(outside, F_OK), -1);
}

static void test_exec_failure_reported(void **state)
{
	struct probe_spec ps;
	static struct probe_result r;

	(void)state;
	probe_spec_init(&ps, NULL);
	ps.spec.exec = "/etc/passwd"; /* a regular file, not executable */
	probe_run(&ps.spec, 0, &r);
	assert_int_equal(r.plan_err, 0);
	assert_int_equal(r.spawn_err, -ECHILD);
	assert_int_equal(r.failure.step, SANDBOX_STEP_EXEC);
	assert_int_equal(r.failure.err, EACCES);
}

static void test_seccomp_log_mode(void **state)
{
	struct probe_spec ps;
	static struct probe_result r;
	char want[16];

	(void)state;
	probe_spec_init(&ps, (const char *[]){"setuid0", NULL});
	ps.spec.seccomp_log = true;
	probe_run(&ps.spec, 0, &r);
	assert_ran(&r); /* logged, not killed; the kernel still says no */
	snprintf(want, sizeof(want), "%d", EPERM);
	assert_line(&r, "errno", want);
	assert_non_null(strstr(r.warning, "SECCOMP LOG MODE"));
	/* The never-list is killed even while commissioning. */
	probe_spec_init(&ps, (const char *[]){"ptrace-parent", NULL});
	ps.spec.seccomp_log = true;
	probe_run(&ps.spec, 0, &r);
	assert_true(WIFSIGNALED(r.wait_status) && WTERMSIG(r.wait_status) == SIGSYS);
}

/* The parent dies: PR_SET_PDEATHSIG kills the layer. */
static void test_parent_death(void **state)
{
	int hold[2], report[2], st;
	pid_t mid, layer = 0;

	(void)state;
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
	assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
	assert_int_equal(pipe2(report, O_CLOEXEC), 0);
	mid = fork();
	assert_true(mid >= 0);
	if (mid == 0) {
		struct probe_spec ps;
		struct sandbox_options opts;
		struct sandbox_plan *plan = NULL;
		char fdarg[16];
		pid_t pid = -1;
		snprintf(fdarg, sizeof(fdarg), "%d", hold[0]);
		probe_spec_init(&ps, (const char *[]){"block", fdarg, NULL});
		sandbox_options_init(&opts);
		opts.keep_fds = &hold[0];
		opts.nkeep = 1;
		if (sandbox_plan_new(&ps.spec, &opts, &plan) == 0 &&
		    sandbox_spawn(plan, &pid, NULL) == 0 &&
		    write(report[1], &pid, sizeof(pid)) == sizeof(pid))
			_exit(0);
		_exit(1);
	}
	close(report[1]);
	assert_int_equal(read(report[0], &layer, sizeof(layer)), (ssize_t)sizeof(layer));
	close(report[0]);
	assert_int_equal(waitpid(mid, &st, 0), mid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* We are the subreaper: the orphaned layer is ours to reap.  If the
	 * death signal did not work, closing hold lets it exit 0 instead of
	 * hanging the test; give the kernel up to 10 s before that. */
	pid_t got = 0;
	for (int i = 0; i < 1000 && got == 0; i++) {
		got = waitpid(layer, &st, WNOHANG);
		if (got == 0)
			usleep(10000);
	}
	close(hold[1]);
	if (got == 0)
		got = waitpid(layer, &st, 0);
	close(hold[0]);
	assert_int_equal(got, layer);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0), 0);
}

/* Rootless: drop to nobody first; the sandbox skips id changes, says so in
 * one line, and applies the rest. */
static void test_rootless(void **state)
{
	int p[2], st;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static struct probe_result r;
		struct probe_spec ps;
		char exec_path[64];
		if (probe_become_nobody(exec_path, sizeof(exec_path)) < 0)
			_exit(2);
		probe_spec_init(&ps, (const char *[]){"status", NULL});
		ps.spec.exec = exec_path;
		probe_run(&ps.spec, 0, &r);
		dprintf(p[1], "plan %d spawn %d step %d err %d\nwarning %s\n%s", r.plan_err,
			r.spawn_err, r.failure.step, r.failure.err, r.warning, r.out);
		_exit(0);
	}
	close(p[1]);
	static struct probe_result r;
	memset(&r, 0, sizeof(r));
	probe_read_all(p[0], &r);
	close(p[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_line(&r, "plan", "0 spawn 0 step 0 err 0");
	char buf[256];
	const char *w = probe_value(&r, "warning", buf, sizeof(buf));
	assert_non_null(w);
	assert_non_null(strstr(w, "not root"));
	assert_non_null(strstr(w, "every other step applied"));
	/* exactly one warning line */
	assert_int_equal(strstr(r.out, "warning") - r.out, strstr(r.out, "\nwarning") + 1 - r.out);
	assert_line(&r, "Uid:", "65534\t65534\t65534\t65534");
	assert_line(&r, "NoNewPrivs:", "1");
	assert_line(&r, "Seccomp:", "2");
	assert_line(&r, "CapEff:", "0000000000000000");
	assert_line(&r, "CapPrm:", "0000000000000000");
	assert_line(&r, "CapInh:", "0000000000000000");
	assert_line(&r, "CapAmb:", "0000000000000000");
	/* With user namespaces (this kernel allows them) the layer also gets its
	 * empty network namespace and an empty bounding set. */
	if (!strstr(w, "no user namespaces") && !strstr(w, "bounding set kept")) {
		char own[128], nsbuf[128];
		ssize_t n = readlink("/proc/self/ns/net", own, sizeof(own) - 1);
		assert_true(n > 0);
		own[n] = '\0';
		const char *v = probe_value(&r, "ns_net", nsbuf, sizeof(nsbuf));
		assert_non_null(v);
		assert_string_not_equal(v, own);
		assert_line(&r, "CapBnd:", "0000000000000000");
	}
	assert_line(&r, "fds", "0 1 2");
	assert_line(&r, "rlimit_core", "0 0");
	assert_line(&r, "rlimit_nofile", "32 32");
	assert_line(&r, "tty_nr", "0");
	fprintf(stderr, "rootless warning: %s\n", w);
}

/* ---- adversarial: every step's failure keeps the layer from running ---- */

static void test_fault_each_step(void **state)
{
	struct probe_spec ps;
	static struct probe_result r;
	char marker[128];

	(void)state;
	for (int step = SANDBOX_STEP_FDS; step < SANDBOX_STEP_MAX; step++) {
		snprintf(marker, sizeof(marker), "%s/ran-%d", probe_tmpdir, step);
		probe_spec_init(&ps, (const char *[]){"create", marker, NULL});
		probe_run(&ps.spec, step, &r);
		assert_int_equal(r.plan_err, 0);
		if (r.spawn_err != -ECHILD || r.failure.step != step || r.failure.err != EIO)
			fail_msg("step %s: spawn %d, reported step %s err %d",
				 sandbox_step_name(step), r.spawn_err,
				 sandbox_step_name(r.failure.step), r.failure.err);
		if (access(marker, F_OK) == 0)
			fail_msg("the layer ran although step %s failed", sandbox_step_name(step));
	}
	/* Control: without a fault the same command does run. */
	snprintf(marker, sizeof(marker), "%s/ran-control", probe_tmpdir);
	probe_spec_init(&ps, (const char *[]){"create", marker, NULL});
	probe_run(&ps.spec, 0, &r);
	assert_ran(&r);
	assert_int_equal(access(marker, F_OK), 0);
}

static int count_fds(void)
{
	size_t n;
	assert_int_equal(selfcheck_fd_count(0, &n), 0);
	return (int)n;
}

/* The parent gets every fd back: plans, status pipes, dynamic-user locks,
 * whether the layer ran or its setup failed. */
static void test_parent_fds_baseline(void **state)
{
	static struct probe_result r;
	struct probe_spec ps;

	(void)state;
	int before = count_fds();
	for (int i = 0; i < 10; i++) {
		probe_spec_init(&ps, (const char *[]){"status", NULL});
		probe_run(&ps.spec, i % 2 ? SANDBOX_STEP_SECCOMP : 0, &r);
		assert_int_equal(r.plan_err, 0);
		assert_int_equal(r.spawn_err, i % 2 ? -ECHILD : 0);
	}
	assert_int_equal(count_fds(), before);
}

/* Real failures instead of the hook: a filter installed around the spawner
 * makes one syscall of one step fail, as a kernel or LSM might (THREATS S8).
 * The step must be reported with that errno and the layer must not run. */
static void test_fault_real_syscalls(void **state)
{
	static const struct {
		const char *syscall;
		int err;
		int step;
	} cases[] = {
		{"close_range", EPERM, SANDBOX_STEP_FDS},
		{"setsid", EPERM, SANDBOX_STEP_SETSID},
		{"prlimit64", EPERM, SANDBOX_STEP_RLIMITS},
		{"unshare", EPERM, SANDBOX_STEP_NAMESPACES},
		{"setgroups", EPERM, SANDBOX_STEP_SETGROUPS},
		{"setresgid", EPERM, SANDBOX_STEP_SETRESGID},
		{"setresuid", EPERM, SANDBOX_STEP_SETRESUID},
		{"capset", EPERM, SANDBOX_STEP_CAPS},
		{"landlock_restrict_self", ENOSYS, SANDBOX_STEP_LANDLOCK},
		{"seccomp", ENOSYS, SANDBOX_STEP_SECCOMP},
		{"execveat", ENOENT, SANDBOX_STEP_EXEC},
	};
	char marker[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(marker, sizeof(marker), "%s/real-%s", probe_tmpdir, cases[i].syscall);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			static struct probe_result r;
			struct probe_spec ps;
			scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
			if (!ctx ||
			    seccomp_rule_add(ctx, SCMP_ACT_ERRNO((uint32_t)cases[i].err),
					     seccomp_syscall_resolve_name(cases[i].syscall),
					     0) < 0 ||
			    seccomp_load(ctx) < 0)
				_exit(10);
			seccomp_release(ctx);
			probe_spec_init(&ps, (const char *[]){"create", marker, NULL});
			probe_run(&ps.spec, 0, &r);
			if (r.plan_err)
				_exit(11);
			if (r.spawn_err != -ECHILD)
				_exit(12);
			if (r.failure.step != cases[i].step)
				_exit(13);
			if (r.failure.err != cases[i].err)
				_exit(14);
			_exit(0);
		}
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("%s -> %s: status %#x (10 filter, 11 plan, 12 spawned, 13 step, "
				 "14 errno)",
				 cases[i].syscall, strerror(cases[i].err), st);
		if (access(marker, F_OK) == 0)
			fail_msg("the layer ran although %s failed", cases[i].syscall);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest integration[] = {
		cmocka_unit_test(test_posture),
		cmocka_unit_test(test_keep_fds_and_network_resource),
		cmocka_unit_test(test_all_namespaces),
		cmocka_unit_test(test_no_fork_no_root),
		cmocka_unit_test(test_landlock_paths),
		cmocka_unit_test(test_exec_failure_reported),
		cmocka_unit_test(test_seccomp_log_mode),
		cmocka_unit_test(test_parent_death),
		cmocka_unit_test(test_rootless),
	};
	const struct CMUnitTest faults[] = {
		cmocka_unit_test(test_fault_each_step),
		cmocka_unit_test(test_fault_real_syscalls),
		cmocka_unit_test(test_parent_fds_baseline),
	};
	int r;

	if (probe_setup(argc, argv) < 0 || argc < 3)
		return 2;
	if (geteuid() != 0) {
		/* Rootless is covered from root by dropping to nobody. */
		fprintf(stderr, "test-sandbox-posture: not root, skipping\n");
		probe_teardown();
		return 77;
	}
	if (strcmp(argv[2], "integration") == 0)
		r = cmocka_run_group_tests_name("sandbox-integration", integration, NULL, NULL);
	else if (strcmp(argv[2], "faults") == 0)
		r = cmocka_run_group_tests_name("sandbox-faults", faults, NULL, NULL);
	else
		r = 2;
	probe_teardown();
	return r;
}
