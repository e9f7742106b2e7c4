/* SPDX-License-Identifier: MIT */
/*
 * sandbox/: profiles, plan validation, dynamic users, the status pipe and
 * the warning line.  The probe path is needed to build valid specs.
 * test-sandbox-posture.c runs the probe inside the sandbox.
 *
 * Usage: test-sandbox PROBE
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
		snprintf(needle, sizeof(needle), "| `%s` |", profile_syscalls[i].name);
		if (!strstr(doc, needle))
			fail_msg("%s missing from docs/sandbox.md", needle);
	}
	for (size_t i = 0; i < profile_nioctls; i++) {
		snprintf(needle, sizeof(needle), "| `%s` |", profile_ioctls[i].name);
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

/* The environment: the allowlist, then the caller's defaults, each unless
 * the allowlist passed that name through with a value. */
static void plan_env_check(const struct layer_spec *spec, const struct sandbox_options *opts,
			   const char *const *want)
{
	struct sandbox_plan *plan = NULL;
	size_t i;

	assert_int_equal(sandbox_plan_new(spec, opts, &plan), 0);
	for (i = 0; want[i]; i++) {
		assert_non_null(plan->envp[i]);
		assert_string_equal(plan->envp[i], want[i]);
	}
	assert_null(plan->envp[i]);
	sandbox_plan_free(plan);
}

static void test_plan_env(void **state)
{
	static const char tun[] = "GLIBC_TUNABLES=glibc.pthread.rseq=0";
	struct probe_spec ps;
	struct sandbox_options opts;
	const char *set[18] = {tun, "CONDUIT_PROBE_ENV=default", "CONDUIT_PROBE=prefix", NULL};
	char many[17][16];

	(void)state;
	probe_spec_init(&ps, NULL);
	sandbox_options_init(&opts);
	setenv("CONDUIT_PROBE_ENV", "visible", 1);
	plan_env_check(&ps.spec, &opts, (const char *const[]){"CONDUIT_PROBE_ENV=visible", NULL});
	opts.env_set = set;
	/* Passed through with a value: that value, not the default.  A name
	 * that only starts like it is another name. */
	plan_env_check(&ps.spec, &opts,
		       (const char *const[]){"CONDUIT_PROBE_ENV=visible", tun,
					     "CONDUIT_PROBE=prefix", NULL});
	/* Allowed but unset: the default. */
	unsetenv("CONDUIT_PROBE_ENV");
	plan_env_check(&ps.spec, &opts,
		       (const char *const[]){tun, "CONDUIT_PROBE_ENV=default", "CONDUIT_PROBE=prefix",
					     NULL});
	setenv("CONDUIT_PROBE_ENV", "", 1);
	plan_env_check(&ps.spec, &opts,
		       (const char *const[]){"CONDUIT_PROBE_ENV=", tun, "CONDUIT_PROBE=prefix", NULL});
	setenv("CONDUIT_PROBE_ENV", "visible", 1);
	/* Malformed defaults. */
	set[1] = "NO_EQUALS";
	assert_int_equal(plan_try(&ps.spec, &opts), -EINVAL);
	set[1] = "=value";
	assert_int_equal(plan_try(&ps.spec, &opts), -EINVAL);
	/* At most 16. */
	for (int i = 0; i < 17; i++) {
		snprintf(many[i], sizeof(many[i]), "V%d=%d", i, i);
		set[i] = many[i];
	}
	set[16] = NULL;
	assert_int_equal(plan_try(&ps.spec, &opts), 0);
	set[16] = many[16];
	set[17] = NULL;
	assert_int_equal(plan_try(&ps.spec, &opts), -E2BIG);
}

static void subid_file(const char *text, char *path, size_t cap)
{
	snprintf(path, cap, "/tmp/conduit-subid-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Subordinate-id ranges: exactly [start, start + count), malformed lines
 * skipped, a missing file covers nothing, a last line without newline
 * counts. */
static void test_subid_ranges(void **state)
{
	char path[64];

	(void)state;
	assert_int_equal(dynuser_subid_covers("/nonexistent/subuid", 81920), 0);
	subid_file("alice:100000:65536\n"
		   "bob:81990:10\n"
		   "bad:81920\n"
		   "bad2:x:5\n"
		   "bad3:81921:\n"
		   "bad4:99999999999:1\n"
		   "bad5:81922:-1\n"
		   "zero:81923:0\n"
		   "\n"
		   "last:4294967295:1",
		   path, sizeof(path));
	assert_int_equal(dynuser_subid_covers(path, 81989), 0);
	assert_int_equal(dynuser_subid_covers(path, 81990), 1);
	assert_int_equal(dynuser_subid_covers(path, 81999), 1);
	assert_int_equal(dynuser_subid_covers(path, 82000), 0);
	assert_int_equal(dynuser_subid_covers(path, 81920), 0);
	assert_int_equal(dynuser_subid_covers(path, 81921), 0);
	assert_int_equal(dynuser_subid_covers(path, 81922), 0);
	assert_int_equal(dynuser_subid_covers(path, 81923), 0);
	assert_int_equal(dynuser_subid_covers(path, 99999), 0);
	assert_int_equal(dynuser_subid_covers(path, 100000), 1);
	assert_int_equal(dynuser_subid_covers(path, 165535), 1);
	assert_int_equal(dynuser_subid_covers(path, 165536), 0);
	assert_int_equal(dynuser_subid_covers(path, 4294967295u), 1);
	unlink(path);
	/* An empty file covers nothing. */
	subid_file("", path, sizeof(path));
	assert_int_equal(dynuser_subid_covers(path, 81990), 0);
	unlink(path);
	/* The range stays clear of systemd's DynamicUser= range and of
	 * shadow's default subordinate ids. */
	assert_true(SANDBOX_DYNAMIC_UID_MIN > 65519 && SANDBOX_DYNAMIC_UID_MAX < 100000);
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

	/* Another process cannot take a's uid while a holds it.  The verdict
	 * comes through a pipe: under valgrind the child's exit status is the
	 * leak checker's, which sees the plans it inherited as possibly lost. */
	int lockfd = a->lock_fd, vp[2];
	char verdict = 0;
	assert_int_equal(pipe2(vp, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(lockfd); /* our inherited copy of a's lock */
		char path[256];
		snprintf(path, sizeof(path), "%s/%u", SANDBOX_DYNAMIC_LOCK_DIR, (unsigned)ua);
		int fd = open(path, O_RDWR | O_CLOEXEC);
		char v = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK ? 'y'
											     : 'n';
		_exit(write(vp[1], &v, 1) == 1 ? 0 : 1);
	}
	close(vp[1]);
	assert_int_equal(read(vp[0], &verdict, 1), 1);
	close(vp[0]);
	assert_int_equal(verdict, 'y');
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	sandbox_plan_free(a);
	sandbox_plan_free(b);
}

/* A uid reserved ahead (the broker's start of many layers) goes to the plan
 * that uses it, and only to a plan for a dynamic user. */
static void test_plan_takes_reserved(void **state)
{
	struct probe_spec ps;
	struct sandbox_options opts;
	struct sandbox_plan *plan = NULL;
	struct sandbox_dynuser d[2];

	(void)state;
	probe_spec_init(&ps, NULL);
	sandbox_options_init(&opts);
	assert_int_equal(sandbox_dynuser_reserve(NULL, 2, d), 0);
	opts.dynuser = &d[0];
	assert_int_equal(sandbox_plan_new(&ps.spec, &opts, &plan), 0);
	assert_int_equal(sandbox_plan_uid(plan), d[0].uid);
	assert_int_equal(sandbox_plan_gid(plan), (gid_t)d[0].uid);
	assert_int_equal(d[0].lock_fd, -1);
	sandbox_plan_free(plan);
	/* Taken already: the plan acquires its own. */
	assert_int_equal(sandbox_plan_new(&ps.spec, &opts, &plan), 0);
	assert_int_not_equal(sandbox_plan_uid(plan), d[1].uid);
	sandbox_plan_free(plan);
	/* A fixed uid leaves the reservation with the caller. */
	ps.spec.user_kind = LAYER_USER_ID;
	ps.spec.uid = ps.spec.gid = 4242;
	opts.dynuser = &d[1];
	assert_int_equal(sandbox_plan_new(&ps.spec, &opts, &plan), 0);
	assert_int_equal(sandbox_plan_uid(plan), 4242);
	assert_true(d[1].lock_fd >= 0);
	sandbox_plan_free(plan);
	/* A reservation outside the dynamic range is refused. */
	ps.spec.user_kind = LAYER_USER_DYNAMIC;
	uid_t keep = d[1].uid;
	d[1].uid = 1000;
	assert_int_equal(sandbox_plan_new(&ps.spec, &opts, &plan), -EINVAL);
	d[1].uid = keep;
	sandbox_dynuser_release(d, 2);
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

int main(int argc, char **argv)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_profile_names),
		cmocka_unit_test(test_profile_extras),
		cmocka_unit_test(test_profile_documented),
		cmocka_unit_test(test_status_read),
	};
	/* Dynamic users and id checks: root (CI runs as root). */
	const struct CMUnitTest as_root[] = {
		cmocka_unit_test(test_plan_rejects),
		cmocka_unit_test(test_plan_env),
		cmocka_unit_test(test_dynamic_users_distinct),
		cmocka_unit_test(test_plan_takes_reserved),
		cmocka_unit_test(test_subid_ranges),
		cmocka_unit_test(test_warning_line),
	};

	if (probe_setup(argc, argv) < 0)
		return 2;
	int r = cmocka_run_group_tests_name("sandbox-unit", pure, NULL, NULL);
	if (geteuid() == 0)
		r |= cmocka_run_group_tests_name("sandbox-unit-root", as_root, NULL, NULL);
	else
		fprintf(stderr, "test-sandbox: not root: plan and dynamic-user tests not run\n");
	probe_teardown();
	return r;
}
