/* SPDX-License-Identifier: MIT */
/*
 * Phase 3, in the parent: fork, let the child confine itself, and learn the
 * outcome from a close-on-exec pipe (EOF: exec'd; a record: which step).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox-internal.h"

static const char *const sandbox_step_names[SANDBOX_STEP_MAX] = {
	[SANDBOX_STEP_NONE] = "none",
	[SANDBOX_STEP_FDS] = "fds",
	[SANDBOX_STEP_SIGNALS] = "signals",
	[SANDBOX_STEP_SETSID] = "setsid",
	[SANDBOX_STEP_RLIMITS] = "rlimits",
	[SANDBOX_STEP_NAMESPACES] = "namespaces",
	[SANDBOX_STEP_SETGROUPS] = "setgroups",
	[SANDBOX_STEP_SETRESGID] = "setresgid",
	[SANDBOX_STEP_CAPBOUND] = "capability-bounding-set",
	[SANDBOX_STEP_SETRESUID] = "setresuid",
	[SANDBOX_STEP_PDEATHSIG] = "pdeathsig",
	[SANDBOX_STEP_CAPS] = "capabilities",
	[SANDBOX_STEP_DUMPABLE] = "dumpable",
	[SANDBOX_STEP_NO_NEW_PRIVS] = "no-new-privs",
	[SANDBOX_STEP_LANDLOCK] = "landlock",
	[SANDBOX_STEP_SECCOMP] = "seccomp",
	[SANDBOX_STEP_EXEC] = "exec",
};

const char *sandbox_step_name(int step)
{
	if (step < 0 || step >= SANDBOX_STEP_MAX)
		return "unknown";
	return sandbox_step_names[step];
}

int sandbox_status_read(int fd, struct sandbox_status *ret_status)
{
	struct sandbox_status st;
	size_t got = 0;

	while (got < sizeof(st)) {
		ssize_t n = read(fd, (char *)&st + got, sizeof(st) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got == 0)
		return 0;
	/* The child writes one record in one write: anything else is not it. */
	if (got != sizeof(st) || st.magic != SANDBOX_STATUS_MAGIC || st.step <= 0 ||
	    st.step >= SANDBOX_STEP_MAX || st.err <= 0)
		return -EPROTO;
	*ret_status = st;
	return 1;
}

int sandbox_spawn(const struct sandbox_plan *plan, pid_t *ret_pid, struct sandbox_status *failure)
{
	struct sandbox_status st;
	sigset_t all, old;
	int pfd[2], r;
	pid_t pid;

	if (!plan || !ret_pid)
		return -EINVAL;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	/* Block every signal across fork so no handler of ours runs in the
	 * child; the child resets handlers, then the mask. */
	sigfillset(&all);
	r = pthread_sigmask(SIG_SETMASK, &all, &old);
	if (r != 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -r;
	}
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		sandbox_apply(plan, pfd[1]);
	}
	r = pid < 0 ? -errno : 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(pfd[1]);
	if (r < 0) {
		close(pfd[0]);
		return r;
	}
	r = sandbox_status_read(pfd[0], &st);
	close(pfd[0]);
	if (r == 0) {
		*ret_pid = pid;
		return 0;
	}
	/* Setup failed or the record is garbage: either way the child must
	 * not live on. */
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (r < 0)
		return r;
	if (failure)
		*failure = st;
	return -ECHILD;
}
