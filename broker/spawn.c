/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawn.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* The first version of the kernel's struct clone_args (CLONE_ARGS_SIZE_VER0);
 * spelled out because <linux/sched.h> clashes with glibc's <sched.h>. */
struct spawn_clone_args {
	uint64_t flags;
	uint64_t pidfd;
	uint64_t child_tid;
	uint64_t parent_tid;
	uint64_t exit_signal;
	uint64_t stack;
	uint64_t stack_size;
	uint64_t tls;
};

/* Everything the child needs, computed by the parent before the clone so the
 * child only makes system calls. */
struct spawn_plan {
	const struct spawn_opts *opts;
	pid_t parent;
	int status_fd; /* write end */
	int high;      /* first fd number above every src, dst and helper fd */
	bool dst_used[SPAWN_FD_DST_MAX + 1];
	int dst_max;
};

const char *spawn_step_name(uint32_t step)
{
	switch (step) {
	case SPAWN_STEP_PDEATHSIG:
		return "pdeathsig";
	case SPAWN_STEP_PARENT:
		return "parent-check";
	case SPAWN_STEP_FDS:
		return "fds";
	case SPAWN_STEP_STDIO:
		return "stdio";
	case SPAWN_STEP_SIGNALS:
		return "signals";
	case SPAWN_STEP_EXEC:
		return "exec";
	default:
		return step >= SPAWN_STEP_HOOK_BASE ? "hook" : "unknown";
	}
}

/* ---- child side: async-signal-safe only ---- */

static _Noreturn void child_fail(const struct spawn_plan *p, uint32_t step, int err)
{
	struct spawn_failure rec = {.step = step, .err = err > 0 ? err : EIO};

	/* One write of 8 bytes to a pipe is atomic; if the parent is gone
	 * there is nobody to tell and the exit is all that matters. */
	(void)!write(p->status_fd, &rec, sizeof(rec));
	_exit(127);
}

static int child_place_fds(struct spawn_plan *p, int *exec_fd)
{
	const struct spawn_opts *o = p->opts;
	int moved[SPAWN_FDS_MAX];
	int fd;

	/* Lift the status pipe, the executable and every source above all
	 * destinations first, so no dup2 can overwrite an fd still needed. */
	fd = fcntl(p->status_fd, F_DUPFD_CLOEXEC, p->high);
	if (fd < 0)
		return -errno;
	p->status_fd = fd;
	if (*exec_fd >= 0) {
		fd = fcntl(*exec_fd, F_DUPFD_CLOEXEC, p->high);
		if (fd < 0)
			return -errno;
		*exec_fd = fd;
	}
	for (size_t i = 0; i < o->n_fds; i++) {
		moved[i] = fcntl(o->fds[i].src, F_DUPFD_CLOEXEC, p->high);
		if (moved[i] < 0)
			return -errno;
	}
	/* dup2 leaves the new descriptor without FD_CLOEXEC: these are the
	 * only fds the target inherits. */
	for (size_t i = 0; i < o->n_fds; i++)
		if (dup2(moved[i], o->fds[i].dst) < 0)
			return -errno;
	/* Everything above the placed range closes at exec, whatever flag it
	 * had: a leaked broker fd in a layer is a privilege leak. */
	if (syscall(SYS_close_range, (unsigned)p->dst_max + 1, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		long max = sysconf(_SC_OPEN_MAX);

		for (long i = p->dst_max + 1; i < max && i < (1L << 20); i++)
			(void)fcntl((int)i, F_SETFD, FD_CLOEXEC);
	}
	for (int i = 0; i <= p->dst_max; i++)
		if (!p->dst_used[i])
			(void)fcntl(i, F_SETFD, FD_CLOEXEC);
	return 0;
}

static int child_stdio(const struct spawn_plan *p)
{
	for (int i = 0; i <= 2; i++) {
		int fd;

		if (p->dst_used[i])
			continue;
		/* A layer with a closed stdio slot would have its next open()
		 * land on 0..2 and its diagnostics written into that file. */
		fd = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			return -errno;
		if (dup2(fd, i) < 0) {
			int r = -errno;

			close(fd);
			return r;
		}
		close(fd);
	}
	return 0;
}

static int child_signals(void)
{
	struct sigaction sa = {.sa_handler = SIG_DFL};
	sigset_t none;

	/* The broker blocks the signals its signalfd reads, and a blocked mask
	 * and ignored dispositions survive exec: reset both. */
	for (int sig = 1; sig < _NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &sa, NULL); /* EINVAL for libc-reserved ones */
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		return -errno;
	return 0;
}

/* The parent-death signal, then proof the parent was still there when it
 * was armed: if the broker died first, the signal will never come and we
 * were already re-parented. */
static void child_tie_to_parent(const struct spawn_plan *p)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		child_fail(p, SPAWN_STEP_PDEATHSIG, errno);
	if (getppid() != p->parent)
		child_fail(p, SPAWN_STEP_PARENT, ESRCH);
}

static _Noreturn void child_run(struct spawn_plan *p)
{
	const struct spawn_opts *o = p->opts;
	int exec_fd = o->exec_fd;
	uint32_t step;
	int r;

	/* If the broker dies, its layers must not outlive it. */
	child_tie_to_parent(p);
	r = child_place_fds(p, &exec_fd);
	if (r < 0)
		child_fail(p, SPAWN_STEP_FDS, -r);
	r = child_stdio(p);
	if (r < 0)
		child_fail(p, SPAWN_STEP_STDIO, -r);
	if (o->hook) {
		step = SPAWN_STEP_HOOK_BASE;
		r = o->hook(o->hook_data, &step);
		if (r < 0)
			child_fail(p, step, -r);
		/* The kernel clears the parent-death signal on any uid or gid
		 * change, which is exactly what the sandbox hook does: arm it
		 * again, as the layer's own user, and re-check the parent. */
		child_tie_to_parent(p);
	}
	r = child_signals();
	if (r < 0)
		child_fail(p, SPAWN_STEP_SIGNALS, -r);
	if (exec_fd >= 0)
		fexecve(exec_fd, o->argv, o->envp);
	else
		execve(o->path, o->argv, o->envp);
	child_fail(p, SPAWN_STEP_EXEC, errno);
}

/* ---- parent side ---- */

static int plan_make(const struct spawn_opts *o, struct spawn_plan *p)
{
	int high;

	if (!o || !o->argv || !o->argv[0] || !o->envp || o->n_fds > SPAWN_FDS_MAX ||
	    (o->n_fds > 0 && !o->fds) || (o->exec_fd < 0 && !o->path))
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	p->opts = o;
	p->dst_max = 2;
	high = o->exec_fd > 2 ? o->exec_fd : 2;
	for (size_t i = 0; i < o->n_fds; i++) {
		const struct spawn_fd *f = &o->fds[i];

		if (f->src < 0 || f->dst < 0 || f->dst > SPAWN_FD_DST_MAX || p->dst_used[f->dst])
			return -EINVAL;
		if (fcntl(f->src, F_GETFD) < 0)
			return -EBADF;
		p->dst_used[f->dst] = true;
		if (f->dst > p->dst_max)
			p->dst_max = f->dst;
		if (f->src > high)
			high = f->src;
	}
	if (p->dst_max > high)
		high = p->dst_max;
	p->high = high + 1;
	p->parent = getpid();
	return 0;
}

/* fork + pidfd_open is race-free only while nobody can reap the child
 * behind our back, which an ignored SIGCHLD (or SA_NOCLDWAIT) would do. */
static int fallback_allowed(void)
{
	struct sigaction sa;

	if (sigaction(SIGCHLD, NULL, &sa) < 0)
		return -errno;
	if (sa.sa_handler == SIG_IGN || (sa.sa_flags & SA_NOCLDWAIT))
		return -EINVAL;
	return 0;
}

/* Set when clone3 returned ENOSYS, or by tests to exercise the fallback. */
static bool no_clone3;

void spawn_disable_clone3(void)
{
	no_clone3 = true;
}

static int clone_child(struct spawn_plan *p, pid_t *ret_pid, int *ret_pidfd)
{
	int pidfd = -1, r;
	pid_t pid = -1;

	if (!no_clone3) {
		struct spawn_clone_args args = {
			.flags = CLONE_PIDFD,
			.pidfd = (uint64_t)(uintptr_t)&pidfd,
			.exit_signal = SIGCHLD,
		};

		pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
		if (pid == 0)
			child_run(p);
		if (pid > 0) {
			*ret_pid = pid;
			*ret_pidfd = pidfd;
			return 0;
		}
		if (errno != ENOSYS)
			return -errno;
		no_clone3 = true;
	}
	r = fallback_allowed();
	if (r < 0)
		return r;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		child_run(p);
	pidfd = pidfd_open(pid, 0);
	if (pidfd < 0) {
		r = -errno;
		/* Still our unreaped child, so the pid cannot name anyone else. */
		kill(pid, SIGKILL);
		(void)waitpid(pid, NULL, 0);
		return r;
	}
	*ret_pid = pid;
	*ret_pidfd = pidfd;
	return 0;
}

int spawn_start(const struct spawn_opts *opts, struct spawn_child *ret_child)
{
	struct spawn_plan plan;
	sigset_t all, old;
	int pipefd[2] = {-1, -1};
	int pidfd = -1, r;
	pid_t pid = -1;

	if (!ret_child)
		return -EINVAL;
	r = plan_make(opts, &plan);
	if (r < 0)
		return r;
	if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	plan.status_fd = pipefd[1];
	if (plan.high <= pipefd[1])
		plan.high = pipefd[1] + 1;
	/* The child starts with every signal blocked, so no handler the
	 * parent may have (a library's, a test harness's) can run in the
	 * child before exec; the child resets mask and dispositions last. */
	sigfillset(&all);
	if (sigprocmask(SIG_SETMASK, &all, &old) < 0) {
		r = -errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return r;
	}
	r = clone_child(&plan, &pid, &pidfd);
	(void)sigprocmask(SIG_SETMASK, &old, NULL); /* restoring a valid mask */
	close(pipefd[1]);
	if (r < 0) {
		close(pipefd[0]);
		return r;
	}
	ret_child->pid = pid;
	ret_child->pidfd = pidfd;
	ret_child->status_fd = pipefd[0];
	return 0;
}

int spawn_status_read(int status_fd, struct spawn_failure *ret_failure)
{
	struct spawn_failure rec;
	ssize_t n;

	do
		n = read(status_fd, &rec, sizeof(rec));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return 0;
	if ((size_t)n != sizeof(rec) || rec.err <= 0)
		return -EIO;
	if (ret_failure)
		*ret_failure = rec;
	return 1;
}

int spawn_run(const struct spawn_opts *opts, struct spawn_child *ret_child,
	      struct spawn_failure *ret_failure)
{
	struct spawn_failure fail;
	struct spawn_child c;
	int r;

	r = spawn_start(opts, &c);
	if (r < 0)
		return r;
	for (;;) {
		struct pollfd pfd = {.fd = c.status_fd, .events = POLLIN};

		r = spawn_status_read(c.status_fd, &fail);
		if (r != -EAGAIN)
			break;
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
	}
	close(c.status_fd);
	c.status_fd = -1;
	if (r == 0) {
		*ret_child = c;
		return 0;
	}
	/* The target never ran (or we cannot tell): make sure it never does,
	 * then reap through the pidfd so no zombie is left. */
	(void)pidfd_send_signal(c.pidfd, SIGKILL, NULL, 0);
	{
		siginfo_t si;

		while (waitid((idtype_t)P_PIDFD, (id_t)c.pidfd, &si, WEXITED) < 0 && errno == EINTR)
			;
	}
	close(c.pidfd);
	if (r == 1 && ret_failure)
		*ret_failure = fail;
	return r;
}
