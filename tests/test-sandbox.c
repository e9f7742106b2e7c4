/* SPDX-License-Identifier: MIT */
/*
 * sandbox/: plan validation, dynamic users and the status pipe (unit), the
 * posture a probe sees inside the sandbox (integration), and injected
 * failure of every setup step (adversarial).
 *
 * Usage: test-sandbox PROBE unit|integration|faults
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

/* ---- unit ---- */

static void test_profile_names(void **state)
{
	(void)state;
	assert_string_equal(profile_name(LAYER_PROFILE_STDIO), "stdio");
	assert_string_equal(profile_name(LAYER_PROFILE_TTY), "tty");
	assert_string_equal(profile_name(LAYER_PROFILE_RECVFD), "recvfd");
	assert_string_equal(profile_name(LAYER_PROFILE_TIME), "time");
	assert_string_equal(profile_name(LAYER_PROFILE_NET_CLIENT), "net-client");
	assert_null(profile_name(1u << 20));
	for (size_t i = 0; i < profile_nsyscalls; i++) {
		assert_non_null(profile_syscalls[i].why);
		assert_true(profile_syscalls[i].profiles != 0);
		/* Every name in the table is a real x86_64 syscall. */
		assert_true(seccomp_syscall_resolve_name(profile_syscalls[i].name) >= 0);
	}
}

static void test_profile_extras(void **state)
{
	struct probe_spec ps;
	bool *set = calloc(PROFILE_NR_MAX, sizeof(*set));
	const char *allow[1], *deny[1];

	(void)state;
	assert_non_null(set);
	probe_spec_init(&ps, NULL);
	ps.spec.nsyscalls_allow = 0;
	assert_int_equal(profile_allowed_set(&ps.spec, set), 0);
	assert_true(set[SCMP_SYS(read)]);
	assert_true(set[SCMP_SYS(poll)]);
	assert_false(set[SCMP_SYS(nanosleep)]); /* time not selected */
	assert_false(set[SCMP_SYS(socket)]);
	assert_false(set[SCMP_SYS(execve)]);

	ps.spec.syscalls_allow = allow;
	ps.spec.nsyscalls_allow = 1;
	allow[0] = "nanosleep";
	assert_int_equal(profile_allowed_set(&ps.spec, set), 0);
	assert_true(set[SCMP_SYS(nanosleep)]);
	allow[0] = "no_such_syscall";
	assert_int_equal(profile_allowed_set(&ps.spec, set), -EINVAL);
	for (size_t i = 0; i < profile_nnever; i++) {
		allow[0] = profile_never[i];
		assert_int_equal(profile_allowed_set(&ps.spec, set), -EPERM);
	}
	ps.spec.nsyscalls_allow = 0;
	ps.spec.syscalls_deny = deny;
	ps.spec.nsyscalls_deny = 1;
	deny[0] = "poll";
	assert_int_equal(profile_allowed_set(&ps.spec, set), 0);
	assert_false(set[SCMP_SYS(poll)]);
	deny[0] = "execveat";
	assert_int_equal(profile_allowed_set(&ps.spec, set), -EPERM);
	deny[0] = "exit_group";
	assert_int_equal(profile_allowed_set(&ps.spec, set), -EPERM);
	ps.spec.nsyscalls_deny = 0;
	ps.spec.profiles = 1u << 20;
	assert_int_equal(profile_allowed_set(&ps.spec, set), -EINVAL);
	free(set);
}

/* docs/sandbox.md lists every syscall and ioctl of the table. */
static void test_profile_documented(void **state)
{
	char *doc = calloc(1, 1 << 17);
	FILE *f = fopen(SOURCE_ROOT "/docs/sandbox.md", "re");
	char needle[96];

	(void)state;
	assert_non_null(doc);
	assert_non_null(f);
	size_t n = fread(doc, 1, (1 << 17) - 1, f);
	fclose(f);
	doc[n] = '\0';
	for (size_t i = 0; i < profile_nsyscalls; i++) {
		snprintf(needle, sizeof(needle), "`%s`", profile_syscalls[i].name);
		if (!strstr(doc, needle))
			fail_msg("%s missing from docs/sandbox.md", needle);
	}
	for (size_t i = 0; i < profile_nioctls; i++) {
		snprintf(needle, sizeof(needle), "`%s`", profile_ioctls[i].name);
		if (!strstr(doc, needle))
			fail_msg("%s missing from docs/sandbox.md", needle);
	}
	for (size_t i = 0; i < profile_nnever; i++) {
		snprintf(needle, sizeof(needle), "`%s`", profile_never[i]);
		if (!strstr(doc, needle))
			fail_msg("%s missing from docs/sandbox.md", needle);
	}
	free(doc);
}

static int plan_try(const struct layer_spec *spec, const struct sandbox_options *opts)
{
	struct sandbox_plan *plan = NULL;
	int r = sandbox_plan_new(spec, opts, &plan);
	sandbox_plan_free(plan);
	return r;
}

static void test_plan_rejects(void **state)
{
	struct probe_spec ps;
	struct sandbox_options opts;
	int keep[SANDBOX_KEEP_MAX + 1];
	int fds[SANDBOX_KEEP_MAX + 1][2];

	(void)state;
	probe_spec_init(&ps, NULL);
	sandbox_options_init(&opts);
	assert_int_equal(plan_try(&ps.spec, &opts), 0);

	/* keep fds: exactly the maximum works, one more does not. */
	for (int i = 0; i <= SANDBOX_KEEP_MAX; i++) {
		assert_int_equal(pipe2(fds[i], O_CLOEXEC), 0);
		keep[i] = fds[i][0];
	}
	opts.keep_fds = keep;
	opts.nkeep = SANDBOX_KEEP_MAX;
	assert_int_equal(plan_try(&ps.spec, &opts), 0);
	opts.nkeep = SANDBOX_KEEP_MAX + 1;
	assert_int_equal(plan_try(&ps.spec, &opts), -EINVAL);
	opts.nkeep = 0;
	assert_int_equal(plan_try(&ps.spec, &opts), 0);
	keep[0] = 2; /* stdio is not a keep fd */
	opts.nkeep = 1;
	assert_int_equal(plan_try(&ps.spec, &opts), -EBADF);
	keep[0] = keep[1]; /* duplicate */
	opts.nkeep = 2;
	assert_int_equal(plan_try(&ps.spec, &opts), -EINVAL);
	for (int i = 0; i <= SANDBOX_KEEP_MAX; i++) {
		close(fds[i][0]);
		close(fds[i][1]);
	}
	keep[0] = fds[0][0]; /* closed now */
	opts.nkeep = 1;
	assert_int_equal(plan_try(&ps.spec, &opts), -EBADF);
	sandbox_options_init(&opts);
	opts.stdio[1] = 0; /* would be clobbered by stdin's dup2 */
	assert_int_equal(plan_try(&ps.spec, &opts), -EINVAL);
	sandbox_options_init(&opts);

	ps.spec.exec = "relative/probe";
	assert_int_equal(plan_try(&ps.spec, &opts), -EINVAL);
	ps.spec.exec = "/nonexistent/probe";
	assert_int_equal(plan_try(&ps.spec, &opts), -ENOENT);
	ps.spec.exec = "/tmp"; /* not a regular file */
	assert_int_equal(plan_try(&ps.spec, &opts), -EACCES);
	ps.spec.exec = probe_path;

	ps.spec.user_kind = LAYER_USER_ID;
	ps.spec.uid = 0;
	ps.spec.gid = 1000;
	assert_int_equal(plan_try(&ps.spec, &opts), -EPERM); /* never root */
	ps.spec.uid = 1000;
	ps.spec.gid = 0;
	assert_int_equal(plan_try(&ps.spec, &opts), -EPERM);
	ps.spec.user_kind = LAYER_USER_NAME;
	ps.spec.user_name = "root";
	assert_int_equal(plan_try(&ps.spec, &opts), -EPERM);
	ps.spec.user_name = "no-such-user-conduit";
	assert_int_equal(plan_try(&ps.spec, &opts), -ENOENT);
	ps.spec.user_name = "nobody";
	assert_int_equal(plan_try(&ps.spec, &opts), 0);
	ps.spec.user_kind = (enum layer_user_kind)99;
	assert_int_equal(plan_try(&ps.spec, &opts), -EINVAL);
	ps.spec.user_kind = LAYER_USER_DYNAMIC;

	ps.spec.landlock_min_abi = 99; /* newer than any kernel: fail closed */
	assert_int_equal(plan_try(&ps.spec, &opts), -EOPNOTSUPP);
	/* ABI 1 is there on any kernel with Landlock; without it (or under
	 * valgrind, which does not know the syscalls) a requirement fails closed. */
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, 1u);
	ps.spec.landlock_min_abi = 1;
	assert_int_equal(plan_try(&ps.spec, &opts), abi >= 1 ? 0 : -EOPNOTSUPP);
	ps.spec.landlock_min_abi = 0;
	ps.paths[0].path = "relative";
	assert_int_equal(plan_try(&ps.spec, &opts), -EINVAL);
	ps.paths[0].path = "/proc";

	ps.spec.namespaces = 1u << 9;
	assert_int_equal(plan_try(&ps.spec, &opts), -EINVAL);
	ps.spec.namespaces = 0;
	ps.spec.limits.procs = LAYER_LIMIT_UNSET - 1;
	assert_int_equal(plan_try(&ps.spec, &opts), -EINVAL);
	ps.spec.limits.procs = 0;
	ps.env[0] = "BAD=NAME";
	assert_int_equal(plan_try(&ps.spec, &opts), -EINVAL);
	ps.env[0] = "CONDUIT_PROBE_ENV";
	ps.allow[0] = "ptrace";
	assert_int_equal(plan_try(&ps.spec, &opts), -EPERM);
}

static void test_dynamic_users_distinct(void **state)
{
	struct probe_spec ps;
	struct sandbox_options opts;
	struct sandbox_plan *a = NULL, *b = NULL;

	(void)state;
	probe_spec_init(&ps, NULL);
	sandbox_options_init(&opts);
	assert_int_equal(sandbox_plan_new(&ps.spec, &opts, &a), 0);
	assert_int_equal(sandbox_plan_new(&ps.spec, &opts, &b), 0);
	uid_t ua = sandbox_plan_uid(a), ub = sandbox_plan_uid(b);
	assert_int_not_equal(ua, ub);
	assert_true(ua >= SANDBOX_DYNAMIC_UID_MIN && ua <= SANDBOX_DYNAMIC_UID_MAX);
	assert_true(ub >= SANDBOX_DYNAMIC_UID_MIN && ub <= SANDBOX_DYNAMIC_UID_MAX);
	assert_int_equal(sandbox_plan_gid(a), (gid_t)ua);
	assert_null(getpwuid(ua));
	assert_null(getgrgid((gid_t)ua));

	/* Another process cannot take a's uid while a holds it. */
	int lockfd = a->lock_fd;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(lockfd); /* our inherited copy of a's lock */
		char path[256];
		snprintf(path, sizeof(path), "%s/%u", SANDBOX_DYNAMIC_LOCK_DIR, (unsigned)ua);
		int fd = open(path, O_RDWR | O_CLOEXEC);
		_exit(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK ? 0 : 1);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	sandbox_plan_free(a);
	sandbox_plan_free(b);
}

static void test_status_read(void **state)
{
	struct sandbox_status st = {SANDBOX_STATUS_MAGIC, SANDBOX_STEP_SECCOMP, EPERM, 0}, got;
	int p[2];

	(void)state;
	/* EOF without a record: the child exec'd. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	close(p[1]);
	assert_int_equal(sandbox_status_read(p[0], &got), 0);
	close(p[0]);
	/* Exactly one record. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(write(p[1], &st, sizeof(st)), (ssize_t)sizeof(st));
	close(p[1]);
	assert_int_equal(sandbox_status_read(p[0], &got), 1);
	assert_int_equal(got.step, SANDBOX_STEP_SECCOMP);
	assert_int_equal(got.err, EPERM);
	close(p[0]);
	/* Truncated record. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(write(p[1], &st, sizeof(st) - 1), (ssize_t)sizeof(st) - 1);
	close(p[1]);
	assert_int_equal(sandbox_status_read(p[0], &got), -EPROTO);
	close(p[0]);
	/* Wrong magic, out-of-range step, zero errno. */
	struct sandbox_status bad[3] = {st, st, st};
	bad[0].magic ^= 1;
	bad[1].step = SANDBOX_STEP_MAX;
	bad[2].err = 0;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		assert_int_equal(write(p[1], &bad[i], sizeof(st)), (ssize_t)sizeof(st));
		close(p[1]);
		assert_int_equal(sandbox_status_read(p[0], &got), -EPROTO);
		close(p[0]);
	}
	for (int s = 1; s < SANDBOX_STEP_MAX; s++)
		assert_string_not_equal(sandbox_step_name(s), "unknown");
	assert_string_equal(sandbox_step_name(SANDBOX_STEP_MAX), "unknown");
	assert_string_equal(sandbox_step_name(-1), "unknown");
}

static void test_warning_line(void **state)
{
	struct probe_spec ps;
	struct sandbox_options opts;
	struct sandbox_plan *plan = NULL;
	char buf[256], tiny[8];

	(void)state;
	probe_spec_init(&ps, NULL);
	sandbox_options_init(&opts);
	assert_int_equal(sandbox_plan_new(&ps.spec, &opts, &plan), 0);
	/* Root: nothing to say, unless the kernel (or valgrind) hides Landlock. */
	assert_false(sandbox_plan_warnings(plan) & SANDBOX_WARN_ROOTLESS);
	if (sandbox_plan_landlock_abi(plan) > 0)
		assert_int_equal(sandbox_plan_warning(plan, buf, sizeof(buf)), 0);
	sandbox_plan_free(plan);
	ps.spec.seccomp_log = true;
	assert_int_equal(sandbox_plan_new(&ps.spec, &opts, &plan), 0);
	assert_true(sandbox_plan_warnings(plan) & SANDBOX_WARN_SECCOMP_LOG);
	assert_true(sandbox_plan_warning(plan, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "SECCOMP LOG MODE"));
	assert_null(strchr(buf, '\n'));
	assert_int_equal(sandbox_plan_warning(plan, tiny, sizeof(tiny)), -ENOBUFS);
	sandbox_plan_free(plan);
}

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

static void test_keep_fd_and_network_resource(void **state)
{
	struct probe_spec ps;
	static struct probe_result r;
	const char *args[] = {"status", NULL};
	char want[32], own[128];
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	probe_spec_init(&ps, args);
	ps.spec.has_network_resource = true; /* keeps the network namespace */
	ps.spec.namespaces = 0;
	struct sandbox_options opts;
	struct sandbox_plan *plan = NULL;
	int out[2];
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	sandbox_options_init(&opts);
	opts.keep_fds = &p[0];
	opts.nkeep = 1;
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
	snprintf(want, sizeof(want), "0 1 2 %d", p[0]);
	assert_line(&r, "fds", want);
	ssize_t n = readlink("/proc/self/ns/net", own, sizeof(own) - 1);
	assert_true(n > 0);
	own[n] = '\0';
	assert_line(&r, "ns_net", own);
	sandbox_plan_free(plan);
	close(out[0]);
	close(p[0]);
	close(p[1]);
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

static int setup(void **state)
{
	(void)state;
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest unit[] = {
		cmocka_unit_test(test_profile_names),
		cmocka_unit_test(test_profile_extras),
		cmocka_unit_test(test_profile_documented),
		cmocka_unit_test(test_plan_rejects),
		cmocka_unit_test(test_dynamic_users_distinct),
		cmocka_unit_test(test_status_read),
		cmocka_unit_test(test_warning_line),
	};
	const struct CMUnitTest integration[] = {
		cmocka_unit_test(test_posture),
		cmocka_unit_test(test_keep_fd_and_network_resource),
		cmocka_unit_test(test_no_fork_no_root),
		cmocka_unit_test(test_landlock_paths),
		cmocka_unit_test(test_exec_failure_reported),
		cmocka_unit_test(test_seccomp_log_mode),
		cmocka_unit_test(test_parent_death),
		cmocka_unit_test(test_rootless),
	};
	const struct CMUnitTest faults[] = {
		cmocka_unit_test(test_fault_each_step),
	};
	int r;

	if (probe_setup(argc, argv) < 0 || argc < 3)
		return 2;
	if (geteuid() != 0) {
		/* The id-changing paths need root; CI runs as root. */
		fprintf(stderr, "test-sandbox: not root, skipping\n");
		probe_teardown();
		return 77;
	}
	if (strcmp(argv[2], "unit") == 0)
		r = cmocka_run_group_tests_name("sandbox-unit", unit, setup, NULL);
	else if (strcmp(argv[2], "integration") == 0)
		r = cmocka_run_group_tests_name("sandbox-integration", integration, setup, NULL);
	else if (strcmp(argv[2], "faults") == 0)
		r = cmocka_run_group_tests_name("sandbox-faults", faults, setup, NULL);
	else
		r = 2;
	probe_teardown();
	return r;
}
