/* SPDX-License-Identifier: MIT */
/*
 * spawn: start a layer process and learn whether it really started.
 *
 * The child is created with clone3(CLONE_PIDFD), so the parent holds a pidfd
 * from the first instant and never has to name the child by pid (fallback
 * where clone3 is unavailable: fork + pidfd_open on the still-unreaped child,
 * refused when SIGCHLD is ignored because then the pid could be recycled).
 *
 * Between clone and exec the child runs a fixed list of steps, each with an
 * id: parent-death signal, parent check, fd placement, stdio, the caller's
 * hook (the sandbox plugs in here), parent-death signal and parent check
 * again (a uid/gid change in the hook clears it), signal reset, exec.  A status pipe,
 * close-on-exec on both ends, tells the parent the outcome: end-of-file means
 * the exec happened (or the child died before reaching any step), an 8-byte
 * record {step, errno} means that step failed and the target never ran.
 * Only async-signal-safe calls run in the child, and so must the hook.
 */
#ifndef CONDUIT_BROKER_SPAWN_H
#define CONDUIT_BROKER_SPAWN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SPAWN_FDS_MAX	 16 /* fds placed into the child */
#define SPAWN_FD_DST_MAX 63 /* highest fd number a placed fd may get */

/* Step ids in a failure record.  Hook steps use SPAWN_STEP_HOOK_BASE and up. */
enum spawn_step {
	SPAWN_STEP_PDEATHSIG = 1, /* prctl(PR_SET_PDEATHSIG, SIGKILL) */
	SPAWN_STEP_PARENT = 2,	  /* parent died before the prctl (err ESRCH) */
	SPAWN_STEP_FDS = 3,	  /* moving the placed fds to their numbers */
	SPAWN_STEP_STDIO = 4,	  /* /dev/null on stdio slots not placed */
	SPAWN_STEP_SIGNALS = 5,	  /* empty signal mask, default dispositions */
	SPAWN_STEP_EXEC = 6,	  /* execve / fexecve */
	SPAWN_STEP_HOOK_BASE = 256,
};

/* What the child reports when a step fails. */
struct spawn_failure {
	uint32_t step; /* enum spawn_step or a hook's own id */
	int32_t err;   /* positive errno */
};

/* Runs in the child after fd placement and before exec, with every signal
 * still blocked.  Must be async-signal-safe.  Before each of its steps it
 * stores the step's id (>= SPAWN_STEP_HOOK_BASE) in *step; returns 0 or a
 * negative errno, and the failure record then names *step. */
typedef int (*spawn_hook_fn)(void *data, uint32_t *step);

/* An fd of the parent to appear as dst in the child (inheritable there). */
struct spawn_fd {
	int src;
	int dst; /* 0..SPAWN_FD_DST_MAX, unique */
};

struct spawn_opts {
	const char *path;  /* executable, when exec_fd < 0 */
	int exec_fd;	   /* executable opened by the broker, or -1 */
	char *const *argv; /* argv[0] required */
	char *const *envp; /* complete environment (may be empty) */
	const struct spawn_fd *fds;
	size_t n_fds;	    /* <= SPAWN_FDS_MAX */
	spawn_hook_fn hook; /* optional */
	void *hook_data;
};

/* A started child. */
struct spawn_child {
	pid_t pid;     /* for logs only: never signal or wait by pid */
	int pidfd;     /* O_CLOEXEC; caller owns */
	int status_fd; /* O_CLOEXEC|O_NONBLOCK read end; caller owns, -1 if none */
};

/* Start the child and return at once.  The caller watches status_fd with
 * spawn_status_read() (for example from the event loop).  Every fd the child
 * gets besides the placed ones and stdio is closed at exec; stdio slots not
 * placed get /dev/null.  Errors: -EINVAL (bad options, or SIGCHLD ignored on
 * the fallback path), -errno from pipe2/clone3/fork/pidfd_open. */
int spawn_start(const struct spawn_opts *opts, struct spawn_child *ret_child);

/* Read the status pipe.  Returns 0 at end-of-file (exec happened or the
 * child died before any step: its pidfd tells), 1 with *ret_failure written
 * when a step failed, -EAGAIN when nothing arrived yet, -EIO on a record of
 * the wrong size, -errno. */
int spawn_status_read(int status_fd, struct spawn_failure *ret_failure);

/* Blocking form: start, wait for the status, close the status pipe.
 * Returns 0 with *ret_child written (status_fd -1) when the exec happened;
 * 1 with *ret_failure written when a step failed, the child then already
 * reaped and nothing left open; -errno on a local fault. */
int spawn_run(const struct spawn_opts *opts, struct spawn_child *ret_child,
	      struct spawn_failure *ret_failure);

/* Use the fork + pidfd_open path from now on (tests exercise it with this;
 * it is also taken by itself when clone3 returns ENOSYS). */
void spawn_disable_clone3(void);

/* Name of a built-in step ("pdeathsig", ..., "hook" for hook ids). */
const char *spawn_step_name(uint32_t step);

#endif
