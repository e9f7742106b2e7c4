/* SPDX-License-Identifier: MIT */
/*
 * The seccomp filter from inside: every x86_64 syscall number with bad
 * arguments, the x32 and i386 (int $0x80) entry points, TIOCSTI with high
 * bits, ptrace and kill of the parent, clone3.  A syscall outside the
 * profile must kill (SIGSYS) or fail with EPERM/ENOSYS; EBADF, EFAULT or
 * EINVAL would mean it ran.
 *
 * Usage: test-sandbox-sweep PROBE
 */
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "profiles.h"
#include "sandbox-run.h"

/* One past the highest number probed: the native table (< 512) and the x32
 * compat numbers 512..547 as seen from the native entry. */
#define SWEEP_END      600
#define SWEEP_I386_END 470

/* Syscalls that must never run whatever the profile (THREATS.md S3/S4). */
static const char *const must_deny[] = {
	"ptrace",
	"process_vm_readv",
	"process_vm_writev",
	"bpf",
	"perf_event_open",
	"keyctl",
	"userfaultfd",
	"io_uring_setup",
	"io_uring_enter",
	"io_uring_register",
	"unshare",
	"setns",
	"mount",
	"personality",
	"execve",
	"socket",
	"connect",
	"bind",
	"listen",
	"kill",
	"tgkill",
	"setresuid",
	"setuid",
	"init_module",
	"kexec_load",
	"fork",
	"vfork",
	"clone3",
	"open_by_handle_at",
	"chroot",
	"pivot_root",
	"seccomp",
};

struct outcome {
	bool seen;
	int sig;  /* terminating signal, 0 if it exited */
	int code; /* exit code: 0 ran and succeeded, else errno */
};

/* Run as nobody instead of root (the rootless path), or with the filter in
 * commissioning (log) mode: set by the tests. */
static bool sweep_rootless, sweep_log;

static void sweep_spec_run(uint32_t profiles, const char *mode, int end, const char *exec,
			   struct probe_result *r)
{
	struct probe_spec ps;
	char to[16];

	snprintf(to, sizeof(to), "%d", end - 1);
	probe_spec_init(&ps, (const char *[]){"sweep", "0", to, mode, NULL});
	if (exec)
		ps.spec.exec = exec;
	ps.spec.profiles = profiles | LAYER_PROFILE_STDIO; /* fork and wait4 */
	ps.spec.limits.procs = LAYER_LIMIT_UNSET;
	ps.spec.has_network_resource = true; /* no netns per run: faster, tested elsewhere */
	ps.spec.seccomp_log = sweep_log;
	probe_run(&ps.spec, 0, r);
}

static void sweep(uint32_t profiles, const char *mode, int end, struct outcome *out)
{
	static struct probe_result r;

	if (!sweep_rootless) {
		sweep_spec_run(profiles, mode, end, NULL, &r);
	} else {
		/* A child drops to nobody for good and sends back what it saw. */
		int p[2], st;
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			static struct probe_result cr;
			char exec_path[64];
			close(p[0]);
			if (probe_become_nobody(exec_path, sizeof(exec_path)) < 0)
				_exit(2);
			sweep_spec_run(profiles, mode, end, exec_path, &cr);
			if (write(p[1], &cr, sizeof(cr)) != (ssize_t)sizeof(cr))
				_exit(3);
			_exit(0);
		}
		close(p[1]);
		size_t got = 0;
		while (got < sizeof(r)) {
			ssize_t n = read(p[0], (char *)&r + got, sizeof(r) - got);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		close(p[0]);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		assert_int_equal(got, sizeof(r));
		if (!strstr(r.warning, "not root"))
			fail_msg("rootless sweep without the rootless warning: '%s'", r.warning);
	}
	if (r.plan_err || r.spawn_err || !WIFEXITED(r.wait_status) ||
	    WEXITSTATUS(r.wait_status) != 0)
		fail_msg("sweep %s: plan %d spawn %d status %#x\n%s", mode, r.plan_err, r.spawn_err,
			 r.wait_status, r.out);
	memset(out, 0, sizeof(*out) * (size_t)end);
	for (const char *p = r.out; *p;) {
		long nr;
		char kind[8];
		int v;
		if (sscanf(p, "%ld %7s %d", &nr, kind, &v) == 3 && nr >= 0 && nr < end) {
			out[nr].seen = true;
			if (strcmp(kind, "sig") == 0)
				out[nr].sig = v;
			else
				out[nr].code = v;
		}
		const char *eol = strchr(p, '\n');
		if (!eol)
			break;
		p = eol + 1;
	}
}

/* x86_64 uretprobe (335, Linux 6.11) and uprobe (336, Linux 6.16) are let
 * through seccomp by the kernel itself.  They act only when called from the
 * kernel's own probe trampoline: any other caller gets SIGILL (uretprobe)
 * or ENXIO (uprobe), and nothing happens. */
static bool kernel_exempt(int nr, const struct outcome *o)
{
	if (nr == 335)
		return o->sig == SIGILL;
	if (nr == 336)
		return o->sig == SIGILL || (o->sig == 0 && o->code == ENXIO);
	return false;
}

static bool blocked(const struct outcome *o)
{
	return o->sig == SIGSYS || (o->sig == 0 && (o->code == EPERM || o->code == ENOSYS));
}

static void check_native(uint32_t profiles, const char *label)
{
	struct outcome *out = calloc(SWEEP_END, sizeof(*out));
	bool *allowed = calloc(PROFILE_NR_MAX, sizeof(*allowed));
	struct probe_spec ps;
	int killed = 0, errnoed = 0, exempt = 0, in_profile = 0, cond_killed = 0;

	assert_non_null(out);
	assert_non_null(allowed);
	probe_spec_init(&ps, NULL);
	ps.spec.profiles = profiles | LAYER_PROFILE_STDIO;
	assert_int_equal(profile_allowed_set(&ps.spec, allowed), 0);
	sweep(profiles, "native", SWEEP_END, out);
	for (int nr = 0; nr < SWEEP_END; nr++) {
		const struct outcome *o = &out[nr];
		if (!o->seen)
			fail_msg("%s: no outcome for syscall %d", label, nr);
		if (allowed[nr]) {
			/* In the profile; conditional ones die on the bad arguments. */
			o->sig == SIGSYS ? cond_killed++ : in_profile++;
			continue;
		}
		if (blocked(o)) {
			o->sig ? killed++ : errnoed++;
			continue;
		}
		if (kernel_exempt(nr, o)) {
			exempt++;
			continue;
		}
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr);
		fail_msg("%s: syscall %d (%s) outside the profile ran: sig %d errno %d", label, nr,
			 name ? name : "?", o->sig, o->code);
	}
	for (size_t i = 0; i < sizeof(must_deny) / sizeof(must_deny[0]); i++) {
		int nr = seccomp_syscall_resolve_name(must_deny[i]);
		assert_true(nr >= 0 && nr < SWEEP_END);
		assert_false(allowed[nr]);
		if (!blocked(&out[nr]))
			fail_msg("%s: %s ran", label, must_deny[i]);
	}
	/* clone3 answers ENOSYS so that libc falls back to clone. */
	int c3 = seccomp_syscall_resolve_name("clone3");
	assert_int_equal(out[c3].sig, 0);
	assert_int_equal(out[c3].code, ENOSYS);
	/* The harness can tell "ran": read(-1, ...) reaches the kernel. */
	assert_int_equal(out[SCMP_SYS(read)].code, EBADF);
	/* Conditional entries reject the sweep's arguments. */
	assert_int_equal(out[SCMP_SYS(ioctl)].sig, SIGSYS);
	assert_int_equal(out[SCMP_SYS(execveat)].sig, SIGSYS);
	assert_int_equal(out[SCMP_SYS(prctl)].sig, SIGSYS);
	fprintf(stderr,
		"sweep %s: %d numbers; outside the profile: %d killed (SIGSYS), %d EPERM/ENOSYS, "
		"%d kernel-exempt (uprobe); in the profile: %d ran, %d killed by their argument "
		"condition\n",
		label, SWEEP_END, killed, errnoed, exempt, in_profile, cond_killed);
	free(out);
	free(allowed);
}

static void test_sweep_stdio(void **state)
{
	(void)state;
	check_native(0, "stdio");
}

static void test_sweep_all_profiles(void **state)
{
	(void)state;
	check_native(LAYER_PROFILE_TTY | LAYER_PROFILE_RECVFD | LAYER_PROFILE_TIME |
			     LAYER_PROFILE_NET_CLIENT,
		     "all-profiles");
}

static void check_all_killed(const char *mode, int end)
{
	struct outcome *out = calloc((size_t)end, sizeof(*out));

	assert_non_null(out);
	sweep(LAYER_PROFILE_TTY | LAYER_PROFILE_RECVFD | LAYER_PROFILE_TIME |
		      LAYER_PROFILE_NET_CLIENT,
	      mode, end, out);
	for (int nr = 0; nr < end; nr++) {
		/* The filter must kill: a kernel without x32 would answer ENOSYS,
		 * which would hide a filter gap on kernels that have it. */
		if (!out[nr].seen || out[nr].sig != SIGSYS)
			fail_msg("%s %d: sig %d code %d", mode, nr, out[nr].sig, out[nr].code);
	}
	fprintf(stderr, "sweep %s: %d numbers, all killed (SIGSYS)\n", mode, end);
	free(out);
}

static void test_sweep_x32(void **state)
{
	(void)state;
	check_all_killed("x32", SWEEP_END);
}

static void test_sweep_int80(void **state)
{
	(void)state;
	check_all_killed("int80", SWEEP_I386_END);
}

/* The same sweeps as nobody: no id change, the filter is the same. */
static void test_sweep_rootless(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip(); /* already rootless: the other sweeps were */
	sweep_rootless = true;
	check_native(0, "stdio, rootless");
	check_all_killed("x32", SWEEP_END);
	check_all_killed("int80", SWEEP_I386_END);
	sweep_rootless = false;
}

/* Commissioning logs syscalls outside the profile instead of killing, but
 * never lets a foreign architecture or an x32 number through: on a kernel
 * with x32 a logged x32 call would run. */
static void test_sweep_log_mode_foreign_abis(void **state)
{
	(void)state;
	sweep_log = true;
	check_all_killed("x32", SWEEP_END);
	check_all_killed("int80", SWEEP_I386_END);
	sweep_log = false;
}

static void run_cmd(uint32_t profiles, const char *const *args, struct probe_result *r)
{
	struct probe_spec ps;

	probe_spec_init(&ps, args);
	ps.spec.profiles = profiles;
	/* Threads count against RLIMIT_NPROC, per uid: rootless shares it. */
	ps.spec.limits.procs = LAYER_LIMIT_UNSET;
	probe_run(&ps.spec, 0, r);
	if (r->plan_err || r->spawn_err)
		fail_msg("plan %d spawn %d", r->plan_err, r->spawn_err);
}

static bool killed_by_sigsys(const struct probe_result *r)
{
	return WIFSIGNALED(r->wait_status) && WTERMSIG(r->wait_status) == SIGSYS;
}

static void test_ioctl_high_bits(void **state)
{
	static struct probe_result r;
	char want[16];

	(void)state;
	const uint32_t tty = LAYER_PROFILE_STDIO | LAYER_PROFILE_TTY;
	/* TIOCSTI, plain and with garbage in the high 32 bits: killed. */
	run_cmd(tty, (const char *[]){"ioctl", "0x5412", NULL}, &r);
	assert_true(killed_by_sigsys(&r));
	run_cmd(tty, (const char *[]){"ioctl", "0x100005412", NULL}, &r);
	assert_true(killed_by_sigsys(&r));
	run_cmd(tty, (const char *[]){"ioctl", "0xffffffff00005412", NULL}, &r);
	assert_true(killed_by_sigsys(&r));
	/* TIOCLINUX neither. */
	run_cmd(tty, (const char *[]){"ioctl", "0x541c", NULL}, &r);
	assert_true(killed_by_sigsys(&r));
	/* TCGETS is allowed and compared on the low 32 bits: it runs (and
	 * fails with ENOTTY on /dev/null) with or without high bits. */
	snprintf(want, sizeof(want), "%d", ENOTTY);
	run_cmd(tty, (const char *[]){"ioctl", "0x5401", NULL}, &r);
	assert_true(WIFEXITED(r.wait_status));
	assert_non_null(strstr(r.out, want));
	run_cmd(tty, (const char *[]){"ioctl", "0x100005401", NULL}, &r);
	assert_true(WIFEXITED(r.wait_status));
	assert_non_null(strstr(r.out, want));
	/* TCSETS only with the tty profile. */
	run_cmd(LAYER_PROFILE_STDIO, (const char *[]){"ioctl", "0x5402", NULL}, &r);
	assert_true(killed_by_sigsys(&r));
}

static void test_parent_untouchable(void **state)
{
	static struct probe_result r;
	const uint32_t all = LAYER_PROFILE_STDIO | LAYER_PROFILE_TTY | LAYER_PROFILE_RECVFD |
			     LAYER_PROFILE_TIME | LAYER_PROFILE_NET_CLIENT;

	(void)state;
	run_cmd(all, (const char *[]){"ptrace-parent", NULL}, &r);
	assert_true(killed_by_sigsys(&r));
	run_cmd(all, (const char *[]){"kill-parent", NULL}, &r);
	assert_true(killed_by_sigsys(&r));
	/* A thread's violation kills the whole process (not just the thread),
	 * and threads start at all: clone3 -> ENOSYS -> clone. */
	run_cmd(all, (const char *[]){"thread-violation", NULL}, &r);
	if (!killed_by_sigsys(&r))
		fail_msg("thread violation: status %#x, len %zu output:\n%s", r.wait_status,
			 r.out_len, r.out);
	run_cmd(all, (const char *[]){"clone3", NULL}, &r);
	assert_true(WIFEXITED(r.wait_status));
	char want[16];
	snprintf(want, sizeof(want), "errno %d", ENOSYS);
	assert_non_null(strstr(r.out, want));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sweep_stdio),
		cmocka_unit_test(test_sweep_all_profiles),
		cmocka_unit_test(test_sweep_x32),
		cmocka_unit_test(test_sweep_int80),
		cmocka_unit_test(test_ioctl_high_bits),
		cmocka_unit_test(test_parent_untouchable),
		cmocka_unit_test(test_sweep_rootless),
		cmocka_unit_test(test_sweep_log_mode_foreign_abis),
	};

	if (probe_setup(argc, argv) < 0)
		return 2;
	/* Not root: every sweep runs rootless as it is; only the explicit drop
	 * to nobody needs root. */
	int r = cmocka_run_group_tests_name("sandbox-sweep", tests, NULL, NULL);
	probe_teardown();
	return r;
}
