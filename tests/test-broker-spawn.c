/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop.h"
#include "selfcheck.h"
#include "spawn.h"
#include "supervise.h"

static char *const empty_env[] = {NULL};

/* valgrind 3.19 (Debian 12) implements neither clone3 nor pidfd_open and
 * returns ENOSYS for both; the broker refuses to fall back to bare pids, so
 * these cases cannot run there and say so instead of passing silently.  They
 * run natively and under ASan+UBSan. */
static void require_pidfd(void)
{
	int fd = pidfd_open(getpid(), 0);

	if (fd < 0 && errno == ENOSYS) {
		print_message("pidfd_open: ENOSYS (valgrind?): pidfd case not run\n");
		skip();
	}
	assert_true(fd >= 0);
	close(fd);
}

static void assert_no_children(void)
{
	siginfo_t si;

	assert_int_equal(waitid(P_ALL, 0, &si, WEXITED | WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

static siginfo_t reap(int pidfd)
{
	siginfo_t si = {0};

	assert_int_equal(waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED), 0);
	close(pidfd);
	return si;
}

/* Read everything from fd (blocking) into buf, NUL-terminated. */
static size_t slurp(int fd, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;

	while (len + 1 < size && (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	return len;
}

static void test_exec_success(void **state)
{
	char *argv[] = {"true", NULL};
	struct spawn_opts o = {.path = "/bin/true", .exec_fd = -1, .argv = argv, .envp = empty_env};
	struct spawn_failure f = {0};
	struct spawn_child c;
	size_t fds0, fds1;
	siginfo_t si;

	(void)state;
	require_pidfd();
	assert_int_equal(selfcheck_fd_count(0, &fds0), 0);
	assert_int_equal(spawn_run(&o, &c, &f), 0);
	assert_true(c.pid > 0);
	assert_int_equal(c.status_fd, -1);
	assert_true(fcntl(c.pidfd, F_GETFD) & FD_CLOEXEC);
	si = reap(c.pidfd);
	assert_int_equal(si.si_pid, c.pid);
	assert_int_equal(si.si_code, CLD_EXITED);
	assert_int_equal(si.si_status, 0);
	assert_no_children();
	assert_int_equal(selfcheck_fd_count(0, &fds1), 0);
	assert_int_equal(fds0, fds1);
}

static void test_exec_by_fd(void **state)
{
	char *argv[] = {"true", NULL};
	struct spawn_opts o = {.exec_fd = -1, .argv = argv, .envp = empty_env};
	struct spawn_fd place[1];
	struct spawn_failure f;
	struct spawn_child c;
	int exe, nul;
	siginfo_t si;

	(void)state;
	require_pidfd();
	exe = open("/bin/true", O_RDONLY | O_CLOEXEC);
	assert_true(exe >= 0);
	/* Place another fd exactly on the executable's number: the child must
	 * lift the executable out of the way first. */
	nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(nul >= 0);
	o.exec_fd = exe;
	place[0] = (struct spawn_fd){.src = nul, .dst = exe};
	o.fds = place;
	o.n_fds = 1;
	assert_int_equal(spawn_run(&o, &c, &f), 0);
	si = reap(c.pidfd);
	assert_int_equal(si.si_code, CLD_EXITED);
	assert_int_equal(si.si_status, 0);
	close(exe);
	close(nul);
	assert_no_children();
}

static void test_exec_failure_reported(void **state)
{
	char *argv[] = {"nothing", NULL};
	struct spawn_opts o = {.path = "/nonexistent/conduit-layer",
			       .exec_fd = -1,
			       .argv = argv,
			       .envp = empty_env};
	struct spawn_failure f = {0};
	struct spawn_child c = {.pid = -2, .pidfd = -2};

	(void)state;
	require_pidfd();
	assert_int_equal(spawn_run(&o, &c, &f), 1);
	assert_int_equal(f.step, SPAWN_STEP_EXEC);
	assert_int_equal(f.err, ENOENT);
	assert_string_equal(spawn_step_name(f.step), "exec");
	assert_int_equal(c.pid, -2); /* not written on failure */
	assert_no_children();
}

struct hook_plan {
	uint32_t fail_at; /* index of the hook step that fails */
	uint32_t n_steps;
	int err;
};

/* Async-signal-safe: integer work only. */
static int step_hook(void *data, uint32_t *step)
{
	const struct hook_plan *h = data;

	for (uint32_t i = 0; i < h->n_steps; i++) {
		*step = SPAWN_STEP_HOOK_BASE + i;
		if (i == h->fail_at)
			return -h->err;
	}
	return 0;
}

static void test_hook_failure_step_n(void **state)
{
	char marker[] = "/tmp/conduit-spawn-marker.XXXXXX";
	char script[128];
	char *argv[] = {"sh", "-c", script, NULL};
	struct spawn_opts o = {.path = "/bin/sh", .exec_fd = -1, .argv = argv, .envp = empty_env};
	struct spawn_failure f;
	struct spawn_child c;
	struct stat st;
	int fd;

	(void)state;
	require_pidfd();
	fd = mkstemp(marker);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(unlink(marker), 0);
	snprintf(script, sizeof(script), "echo ran > %s", marker);
	o.hook = step_hook;
	for (uint32_t n = 0; n < 3; n++) {
		struct hook_plan h = {.fail_at = n, .n_steps = 3, .err = n == 1 ? EACCES : EPERM};

		o.hook_data = &h;
		memset(&f, 0, sizeof(f));
		assert_int_equal(spawn_run(&o, &c, &f), 1);
		assert_int_equal(f.step, SPAWN_STEP_HOOK_BASE + n);
		assert_int_equal(f.err, h.err);
		assert_string_equal(spawn_step_name(f.step), "hook");
		/* The target never ran. */
		assert_int_equal(stat(marker, &st), -1);
		assert_int_equal(errno, ENOENT);
		assert_no_children();
	}
	/* Control: with every step passing, the target runs. */
	struct hook_plan ok = {.fail_at = UINT32_MAX, .n_steps = 3};

	o.hook_data = &ok;
	assert_int_equal(spawn_run(&o, &c, &f), 0);
	assert_int_equal(reap(c.pidfd).si_status, 0);
	assert_int_equal(stat(marker, &st), 0);
	unlink(marker);
	assert_no_children();
}

static void test_killed_by_signal(void **state)
{
	char *self_kill[] = {"sh", "-c", "kill -SEGV $$", NULL};
	char *sleeper[] = {"sleep", "1000", NULL};
	struct spawn_opts o = {
		.path = "/bin/sh", .exec_fd = -1, .argv = self_kill, .envp = empty_env};
	struct spawn_failure f;
	struct spawn_child c;
	siginfo_t si;

	(void)state;
	require_pidfd();
	assert_int_equal(spawn_run(&o, &c, &f), 0);
	si = reap(c.pidfd);
	assert_true(si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED);
	assert_int_equal(si.si_status, SIGSEGV);

	o.path = "/bin/sleep";
	o.argv = sleeper;
	assert_int_equal(spawn_run(&o, &c, &f), 0);
	assert_int_equal(pidfd_send_signal(c.pidfd, SIGTERM, NULL, 0), 0);
	si = reap(c.pidfd);
	assert_int_equal(si.si_code, CLD_KILLED);
	assert_int_equal(si.si_status, SIGTERM);
	assert_no_children();
}

/* Only placed fds and stdio survive exec, even ones the parent leaked
 * without O_CLOEXEC. */
static void test_fd_placement(void **state)
{
	char *argv[] = {"ls", "/proc/self/fd", NULL};
	struct spawn_opts o = {.path = "/bin/ls", .exec_fd = -1, .argv = argv, .envp = empty_env};
	struct spawn_fd place[2];
	struct spawn_failure f;
	struct spawn_child c;
	int out[2], extra[2], leak;
	char buf[256];

	(void)state;
	require_pidfd();
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(extra, O_CLOEXEC), 0);
	leak = open("/dev/null", O_RDONLY); /* deliberately inheritable */
	assert_true(leak >= 0);
	assert_int_equal(dup2(leak, 40), 40);
	place[0] = (struct spawn_fd){.src = out[1], .dst = 1};
	place[1] = (struct spawn_fd){.src = extra[0], .dst = 5};
	o.fds = place;
	o.n_fds = 2;
	assert_int_equal(spawn_run(&o, &c, &f), 0);
	close(out[1]);
	slurp(out[0], buf, sizeof(buf));
	/* 3 is the directory ls itself opened. */
	assert_string_equal(buf, "0\n1\n2\n3\n5\n");
	assert_int_equal(reap(c.pidfd).si_status, 0);
	close(out[0]);
	close(extra[0]);
	close(extra[1]);
	close(leak);
	close(40);
	assert_no_children();
}

/* Two placed fds whose sources sit on each other's destinations. */
static void test_fd_swap(void **state)
{
	char *argv[] = {"sh", "-c", "echo A >&8; echo B >&7", NULL};
	struct spawn_opts o = {.path = "/bin/sh", .exec_fd = -1, .argv = argv, .envp = empty_env};
	struct spawn_fd place[2];
	struct spawn_failure f;
	struct spawn_child c;
	int p[2], q[2];
	char buf[16];

	(void)state;
	require_pidfd();
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(pipe2(q, O_CLOEXEC), 0);
	assert_int_equal(dup3(p[1], 7, O_CLOEXEC), 7);
	assert_int_equal(dup3(q[1], 8, O_CLOEXEC), 8);
	close(p[1]);
	close(q[1]);
	place[0] = (struct spawn_fd){.src = 7, .dst = 8}; /* p's write end -> 8 */
	place[1] = (struct spawn_fd){.src = 8, .dst = 7}; /* q's write end -> 7 */
	o.fds = place;
	o.n_fds = 2;
	assert_int_equal(spawn_run(&o, &c, &f), 0);
	close(7);
	close(8);
	slurp(p[0], buf, sizeof(buf));
	assert_string_equal(buf, "A\n");
	slurp(q[0], buf, sizeof(buf));
	assert_string_equal(buf, "B\n");
	assert_int_equal(reap(c.pidfd).si_status, 0);
	close(p[0]);
	close(q[0]);
	assert_no_children();
}

/* The broker blocks the signals its signalfd reads and may ignore some: the
 * layer must start with an empty mask and default dispositions. */
static void test_signal_state_reset(void **state)
{
	char *argv[] = {"grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status", NULL};
	struct spawn_opts o = {.path = "/bin/grep", .exec_fd = -1, .argv = argv, .envp = empty_env};
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
	struct spawn_fd place[1];
	struct spawn_failure f;
	struct spawn_child c;
	sigset_t block, old;
	char buf[256];
	int out[2];

	(void)state;
	require_pidfd();
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGTERM);
	assert_int_equal(sigprocmask(SIG_BLOCK, &block, &old), 0);
	assert_int_equal(sigaction(SIGPIPE, &ign, &old_pipe), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	place[0] = (struct spawn_fd){.src = out[1], .dst = 1};
	o.fds = place;
	o.n_fds = 1;
	assert_int_equal(spawn_run(&o, &c, &f), 0);
	close(out[1]);
	slurp(out[0], buf, sizeof(buf));
	assert_string_equal(buf, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
	assert_int_equal(reap(c.pidfd).si_status, 0);
	close(out[0]);
	assert_int_equal(sigaction(SIGPIPE, &old_pipe, NULL), 0);
	assert_int_equal(sigprocmask(SIG_SETMASK, &old, NULL), 0);
	assert_no_children();
}

static int handler_pipe = -1;

static void usr2_handler(int sig)
{
	(void)sig;
	(void)!write(handler_pipe, "h", 1);
}

static int raise_hook(void *data, uint32_t *step)
{
	(void)data;
	*step = SPAWN_STEP_HOOK_BASE;
	return kill(getpid(), SIGUSR2) < 0 ? -errno : 0;
}

/* A handler of the parent never runs in the child: a signal arriving during
 * setup waits blocked and then takes its default action. */
static void test_no_parent_handler_in_child(void **state)
{
	char *argv[] = {"true", NULL};
	struct spawn_opts o = {.path = "/bin/true",
			       .exec_fd = -1,
			       .argv = argv,
			       .envp = empty_env,
			       .hook = raise_hook};
	struct sigaction sa = {.sa_handler = usr2_handler}, old;
	struct spawn_failure f;
	struct spawn_child c;
	siginfo_t si;
	int p[2];
	char b;

	(void)state;
	require_pidfd();
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	handler_pipe = p[1];
	assert_int_equal(sigaction(SIGUSR2, &sa, &old), 0);
	assert_int_equal(spawn_run(&o, &c, &f), 0);
	si = reap(c.pidfd);
	assert_int_equal(si.si_code, CLD_KILLED);
	assert_int_equal(si.si_status, SIGUSR2);
	assert_int_equal(read(p[0], &b, 1), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(sigaction(SIGUSR2, &old, NULL), 0);
	close(p[0]);
	close(p[1]);
	assert_no_children();
}

/* Holds the child inside the hook until the test writes a byte. */
static int gate_hook(void *data, uint32_t *step)
{
	const int *gate = data;
	char b;

	*step = SPAWN_STEP_HOOK_BASE;
	if (read(*gate, &b, 1) != 1)
		return -EIO;
	return 0;
}

static void test_async_status(void **state)
{
	char *argv[] = {"true", NULL};
	struct spawn_opts o = {.path = "/bin/true", .exec_fd = -1, .argv = argv, .envp = empty_env};
	struct spawn_failure f;
	struct spawn_child c;
	int gate[2], r;

	(void)state;
	require_pidfd();
	assert_int_equal(pipe2(gate, O_CLOEXEC), 0);
	o.hook = gate_hook;
	o.hook_data = &gate[0];
	assert_int_equal(spawn_start(&o, &c), 0);
	assert_true(fcntl(c.status_fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(c.status_fd, F_GETFD) & FD_CLOEXEC);
	/* The child is parked in the hook: nothing to read yet. */
	assert_int_equal(spawn_status_read(c.status_fd, &f), -EAGAIN);
	assert_int_equal(write(gate[1], "g", 1), 1);
	do
		r = spawn_status_read(c.status_fd, &f);
	while (r == -EAGAIN);
	assert_int_equal(r, 0);
	close(c.status_fd);
	assert_int_equal(reap(c.pidfd).si_status, 0);
	close(gate[0]);
	close(gate[1]);
	assert_no_children();
}

struct cred_hook {
	bool change_uid;
};

/* Async-signal-safe: what the sandbox will do, reduced to the uid change
 * that makes the kernel forget the parent-death signal. */
static int cred_hook(void *data, uint32_t *step)
{
	const struct cred_hook *h = data;

	*step = SPAWN_STEP_HOOK_BASE;
	if (h->change_uid && setresuid(65534, 65534, 65534) < 0)
		return -errno;
	return 0;
}

/* The broker dies: its layer gets SIGKILL.  A middle process plays the
 * broker; this test is its subreaper so it can see how the layer ended. */
static void check_pdeathsig(bool change_uid)
{
	struct cred_hook h = {.change_uid = change_uid};
	int pipefd[2];
	pid_t middle, layer;
	siginfo_t si;

	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	middle = fork();
	assert_true(middle >= 0);
	if (middle == 0) {
		char *argv[] = {"sleep", "30", NULL};
		struct spawn_opts o = {.path = "/bin/sleep",
				       .exec_fd = -1,
				       .argv = argv,
				       .envp = empty_env,
				       .hook = cred_hook,
				       .hook_data = &h};
		struct spawn_failure f;
		struct spawn_child c;

		if (spawn_run(&o, &c, &f) != 0)
			_exit(1);
		if (write(pipefd[1], &c.pid, sizeof(c.pid)) != sizeof(c.pid))
			_exit(2);
		_exit(0);
	}
	close(pipefd[1]);
	assert_int_equal(read(pipefd[0], &layer, sizeof(layer)), sizeof(layer));
	close(pipefd[0]);
	assert_int_equal(waitid(P_PID, (id_t)middle, &si, WEXITED), 0);
	assert_int_equal(si.si_status, 0);
	/* Re-parented to us: we may wait for it by pid.  Without the signal
	 * the sleep would end normally after 30 s and fail here. */
	assert_int_equal(waitid(P_PID, (id_t)layer, &si, WEXITED), 0);
	assert_int_equal(si.si_code, CLD_KILLED);
	assert_int_equal(si.si_status, SIGKILL);
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0), 0);
	assert_no_children();
}

static void test_pdeathsig(void **state)
{
	(void)state;
	require_pidfd();
	check_pdeathsig(false);
}

/* The hook drops to another uid (as the sandbox will), which clears the
 * parent-death signal: spawn must arm it again after the hook. */
static void test_pdeathsig_after_uid_change(void **state)
{
	(void)state;
	require_pidfd();
	if (geteuid() != 0) {
		print_message("not root: cannot change uid, case not run\n");
		skip();
	}
	check_pdeathsig(true);
}

static void test_bad_options(void **state)
{
	char *argv[] = {"true", NULL};
	char *no_argv0[] = {NULL};
	struct spawn_opts o = {.path = "/bin/true", .exec_fd = -1, .argv = argv, .envp = empty_env};
	struct spawn_fd place[SPAWN_FDS_MAX + 1];
	struct spawn_child c;

	(void)state;
	assert_int_equal(spawn_start(NULL, &c), -EINVAL);
	assert_int_equal(spawn_start(&o, NULL), -EINVAL);
	o.argv = NULL;
	assert_int_equal(spawn_start(&o, &c), -EINVAL);
	o.argv = no_argv0;
	assert_int_equal(spawn_start(&o, &c), -EINVAL);
	o.argv = argv;
	o.envp = NULL;
	assert_int_equal(spawn_start(&o, &c), -EINVAL);
	o.envp = empty_env;
	o.path = NULL;
	assert_int_equal(spawn_start(&o, &c), -EINVAL);
	o.path = "/bin/true";
	for (int i = 0; i <= SPAWN_FDS_MAX; i++)
		place[i] = (struct spawn_fd){.src = 2, .dst = 3 + i};
	o.fds = place;
	o.n_fds = SPAWN_FDS_MAX + 1;
	assert_int_equal(spawn_start(&o, &c), -EINVAL);
	o.n_fds = 1;
	place[0].dst = SPAWN_FD_DST_MAX + 1;
	assert_int_equal(spawn_start(&o, &c), -EINVAL);
	place[0].dst = -1;
	assert_int_equal(spawn_start(&o, &c), -EINVAL);
	place[0] = (struct spawn_fd){.src = 2, .dst = 4};
	place[1] = (struct spawn_fd){.src = 1, .dst = 4};
	o.n_fds = 2;
	assert_int_equal(spawn_start(&o, &c), -EINVAL);
	place[1] = (struct spawn_fd){.src = 999, .dst = 5};
	assert_int_equal(spawn_start(&o, &c), -EBADF);
	assert_no_children();
}

/* Exactly the maximum number of placed fds works; max + 1 is refused above. */
static void test_fds_at_max(void **state)
{
	char *argv[] = {"sh", "-c", "test -e /proc/self/fd/3 && test -e /proc/self/fd/18", NULL};
	struct spawn_opts o = {.path = "/bin/sh", .exec_fd = -1, .argv = argv, .envp = empty_env};
	struct spawn_fd place[SPAWN_FDS_MAX];
	struct spawn_failure f;
	struct spawn_child c;

	(void)state;
	require_pidfd();
	for (int i = 0; i < SPAWN_FDS_MAX; i++)
		place[i] = (struct spawn_fd){.src = 2, .dst = 3 + i};
	o.fds = place;
	o.n_fds = SPAWN_FDS_MAX;
	assert_int_equal(spawn_run(&o, &c, &f), 0);
	assert_int_equal(reap(c.pidfd).si_status, 0);
	assert_no_children();
}

/* The fork + pidfd_open fallback: same outcomes, and it refuses to run when
 * an ignored SIGCHLD would let the kernel reap (and recycle) the pid. */
static void test_fork_fallback(void **state)
{
	char *argv[] = {"sh", "-c", "exit 3", NULL};
	struct spawn_opts o = {.path = "/bin/sh", .exec_fd = -1, .argv = argv, .envp = empty_env};
	struct sigaction ign = {.sa_handler = SIG_IGN}, old;
	struct hook_plan h = {.fail_at = 0, .n_steps = 1, .err = EPERM};
	struct spawn_failure f;
	struct spawn_child c;
	siginfo_t si;

	(void)state;
	require_pidfd();
	spawn_disable_clone3();
	assert_int_equal(spawn_run(&o, &c, &f), 0);
	si = reap(c.pidfd);
	assert_int_equal(si.si_pid, c.pid);
	assert_int_equal(si.si_status, 3);
	o.hook = step_hook;
	o.hook_data = &h;
	assert_int_equal(spawn_run(&o, &c, &f), 1);
	assert_int_equal(f.step, SPAWN_STEP_HOOK_BASE);
	assert_int_equal(f.err, EPERM);
	assert_int_equal(sigaction(SIGCHLD, &ign, &old), 0);
	assert_int_equal(spawn_run(&o, &c, &f), -EINVAL);
	assert_int_equal(sigaction(SIGCHLD, &old, NULL), 0);
	assert_no_children();
}

static void test_status_record_size(void **state)
{
	struct spawn_failure f = {.step = 9, .err = 9};
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	assert_int_equal(spawn_status_read(p[0], &f), -EAGAIN);
	/* Short record. */
	assert_int_equal(write(p[1], "abc", 3), 3);
	assert_int_equal(spawn_status_read(p[0], &f), -EIO);
	/* A record with errno 0 cannot be a failure. */
	{
		struct spawn_failure z = {.step = 1, .err = 0};

		assert_int_equal(write(p[1], &z, sizeof(z)), (ssize_t)sizeof(z));
		assert_int_equal(spawn_status_read(p[0], &f), -EIO);
	}
	assert_int_equal(f.step, 9); /* untouched */
	close(p[1]);
	assert_int_equal(spawn_status_read(p[0], &f), 0);
	close(p[0]);
}

/* ---- the pieces wired together: spawn, loop and supervision ---- */

struct sim {
	struct loop *l;
	struct sup_layer sup;
	const struct spawn_opts *opts;
	struct loop_source *timer, *status, *child;
	int spawns, exec_seen, setup_failures;
	siginfo_t last_exit;
	bool stop_when_ready;
};

static int sim_apply(struct sim *m, int act);

static int sim_status_cb(struct loop_source *s, int fd, uint32_t revents, void *userdata)
{
	struct sim *m = userdata;
	struct spawn_failure f;
	int r;

	(void)revents;
	r = spawn_status_read(fd, &f);
	if (r == -EAGAIN)
		return 0;
	assert_true(r == 0 || r == 1);
	loop_source_free(s);
	close(fd);
	if (m->status == s) /* not an older incarnation's pipe */
		m->status = NULL;
	if (r == 1) {
		m->setup_failures++;
		return sim_apply(m, SUP_ACT_NONE); /* its exit comes through the pidfd */
	}
	m->exec_seen++;
	/* Stands in for a valid hello; the exit may have been seen first. */
	if (m->sup.state == SUP_STARTING && m->child) {
		assert_int_equal(sup_ready(&m->sup, loop_now_ns()), SUP_ACT_NONE);
		if (m->stop_when_ready)
			return sim_apply(m, sup_stop(&m->sup, loop_now_ns()));
	}
	return sim_apply(m, SUP_ACT_NONE);
}

static int sim_child_cb(struct loop_source *s, const siginfo_t *si, void *userdata)
{
	struct sim *m = userdata;
	bool clean = si->si_code == CLD_EXITED && si->si_status == 0;

	m->last_exit = *si;
	loop_source_free(s);
	m->child = NULL;
	return sim_apply(
		m, sup_exited(&m->sup, clean ? SUP_EXIT_CLEAN : SUP_EXIT_FAILURE, loop_now_ns()));
}

static int sim_timer_cb(struct loop_source *s, uint64_t now, void *userdata)
{
	struct sim *m = userdata;

	(void)s;
	return sim_apply(m, sup_tick(&m->sup, now));
}

static int sim_apply(struct sim *m, int act)
{
	struct spawn_child c;

	assert_true(act >= 0);
	switch ((enum sup_action)act) {
	case SUP_ACT_NONE:
		break;
	case SUP_ACT_SPAWN:
		assert_int_equal(spawn_start(m->opts, &c), 0);
		m->spawns++;
		assert_int_equal(
			loop_add_io(m->l, c.status_fd, EPOLLIN, sim_status_cb, m, &m->status), 0);
		assert_int_equal(loop_add_child(m->l, c.pidfd, sim_child_cb, m, &m->child), 0);
		break;
	case SUP_ACT_TERM:
		assert_int_equal(loop_child_kill(m->child, SIGTERM), 0);
		break;
	case SUP_ACT_KILL:
		assert_int_equal(loop_child_kill(m->child, SIGKILL), 0);
		break;
	}
	assert_int_equal(loop_timer_set(m->timer, sup_deadline(&m->sup)), 0);
	if ((m->sup.state == SUP_FAILED || m->sup.state == SUP_STOPPED) && !m->child && !m->status)
		loop_exit(m->l, 0);
	return 0;
}

static void sim_run(struct sim *m, const struct sup_config *cfg)
{
	assert_int_equal(loop_new(&m->l), 0);
	assert_int_equal(sup_init(&m->sup, cfg), 0);
	assert_int_equal(loop_add_timer(m->l, LOOP_NO_DEADLINE, sim_timer_cb, m, &m->timer), 0);
	assert_int_equal(sim_apply(m, sup_start(&m->sup, loop_now_ns())), 0);
	assert_int_equal(loop_run(m->l), 0);
	assert_int_equal(loop_source_count(m->l), 1); /* only the timer is left */
	loop_free(m->l);
	assert_no_children();
}

static struct sup_config sim_config(enum sup_restart restart)
{
	return (struct sup_config){
		.restart = restart,
		.backoff_min_ns = 1000000,
		.backoff_max_ns = 4000000,
		.max_restarts = 3,
		.window_ns = 600ull * 1000000000,
		.stop_timeout_ns = 600ull * 1000000000,
	};
}

/* A layer that always fails: started once, restarted exactly max_restarts
 * times with backoff, then failed. */
static void test_loop_crash_loop(void **state)
{
	char *argv[] = {"false", NULL};
	struct spawn_opts o = {
		.path = "/bin/false", .exec_fd = -1, .argv = argv, .envp = empty_env};
	struct sup_config cfg = sim_config(SUP_RESTART_ON_FAILURE);
	struct sim m = {.opts = &o};

	(void)state;
	require_pidfd();
	sim_run(&m, &cfg);
	assert_int_equal(m.spawns, 4);
	assert_int_equal(m.exec_seen, 4);
	assert_int_equal(m.sup.state, SUP_FAILED);
	assert_int_equal(m.last_exit.si_status, 1);
}

/* A layer whose sandbox setup fails: the target never runs, every attempt
 * is a failure with a reported step, and the loop ends in failed. */
static void test_loop_setup_failure(void **state)
{
	char *argv[] = {"true", NULL};
	struct hook_plan h = {.fail_at = 1, .n_steps = 2, .err = EPERM};
	struct spawn_opts o = {.path = "/bin/true",
			       .exec_fd = -1,
			       .argv = argv,
			       .envp = empty_env,
			       .hook = step_hook,
			       .hook_data = &h};
	struct sup_config cfg = sim_config(SUP_RESTART_ALWAYS);
	struct sim m = {.opts = &o};

	(void)state;
	require_pidfd();
	sim_run(&m, &cfg);
	assert_int_equal(m.spawns, 4);
	assert_int_equal(m.setup_failures, 4);
	assert_int_equal(m.exec_seen, 0);
	assert_int_equal(m.sup.state, SUP_FAILED);
	assert_int_equal(m.last_exit.si_status, 127);
}

/* A layer that goes silent is killed when its heartbeat deadline passes
 * and, with restart never, ends failed. */
static void test_loop_unresponsive_killed(void **state)
{
	char *argv[] = {"sleep", "1000", NULL};
	struct spawn_opts o = {
		.path = "/bin/sleep", .exec_fd = -1, .argv = argv, .envp = empty_env};
	struct sup_config cfg = sim_config(SUP_RESTART_NEVER);
	struct sim m = {.opts = &o};

	(void)state;
	require_pidfd();
	cfg.heartbeat_ns = 1000000;
	sim_run(&m, &cfg);
	assert_int_equal(m.spawns, 1);
	assert_int_equal(m.last_exit.si_code, CLD_KILLED);
	assert_int_equal(m.last_exit.si_status, SIGKILL);
	assert_int_equal(m.sup.state, SUP_FAILED);
}

/* An orderly stop: SIGTERM through the pidfd, and no restart even with
 * restart always. */
static void test_loop_stop(void **state)
{
	char *argv[] = {"sleep", "1000", NULL};
	struct spawn_opts o = {
		.path = "/bin/sleep", .exec_fd = -1, .argv = argv, .envp = empty_env};
	struct sup_config cfg = sim_config(SUP_RESTART_ALWAYS);
	struct sim m = {.opts = &o, .stop_when_ready = true};

	(void)state;
	require_pidfd();
	sim_run(&m, &cfg);
	assert_int_equal(m.spawns, 1);
	assert_int_equal(m.last_exit.si_code, CLD_KILLED);
	assert_int_equal(m.last_exit.si_status, SIGTERM);
	assert_int_equal(m.sup.state, SUP_STOPPED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exec_success),
		cmocka_unit_test(test_exec_by_fd),
		cmocka_unit_test(test_exec_failure_reported),
		cmocka_unit_test(test_hook_failure_step_n),
		cmocka_unit_test(test_killed_by_signal),
		cmocka_unit_test(test_fd_placement),
		cmocka_unit_test(test_fd_swap),
		cmocka_unit_test(test_signal_state_reset),
		cmocka_unit_test(test_async_status),
		cmocka_unit_test(test_no_parent_handler_in_child),
		cmocka_unit_test(test_pdeathsig),
		cmocka_unit_test(test_pdeathsig_after_uid_change),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_fds_at_max),
		cmocka_unit_test(test_status_record_size),
		cmocka_unit_test(test_loop_crash_loop),
		cmocka_unit_test(test_loop_setup_failure),
		cmocka_unit_test(test_loop_unresponsive_killed),
		cmocka_unit_test(test_loop_stop),
		/* Last: switches this process to the fallback for good. */
		cmocka_unit_test(test_fork_fallback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
