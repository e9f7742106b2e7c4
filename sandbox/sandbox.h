/* SPDX-License-Identifier: MIT */
/*
 * sandbox: confine a freshly forked child from a compiled layer spec, then
 * exec the layer.  docs/sandbox.md describes every step and what it stops.
 *
 * Three phases, so that nothing between fork and exec needs NSS, malloc or
 * locks:
 *
 *   1. sandbox_plan_new() in the parent, before fork: resolves users and
 *      groups (in a short-lived child: the caller never loads an NSS
 *      module), allocates a dynamic uid/gid, opens the executable, /dev/null
 *      and the Landlock ruleset, compiles the seccomp filter to BPF and
 *      builds argv/envp.  May allocate, may fail with -errno.
 *   2. sandbox_apply() in the child, between fork and exec: applies every
 *      step in the fixed order of enum sandbox_step, verifies each one, and
 *      execs the layer by fd.  Only raw system calls on data prepared in
 *      phase 1.  On any failure it writes one struct sandbox_status to
 *      status_fd and _exit()s with SANDBOX_EXIT_SETUP: the layer never runs.
 *   3. sandbox_status_read() in the parent: EOF (the close-on-exec status
 *      pipe closed by a successful exec) means the layer is running; a
 *      record names the failed step and its errno.
 *
 * sandbox_spawn() does all three for simple callers (conduit-sandbox, tests).
 */
#ifndef CONDUIT_SANDBOX_SANDBOX_H
#define CONDUIT_SANDBOX_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy/layer-spec.h"

/* The steps, in the order sandbox_apply() runs them. */
enum sandbox_step {
	SANDBOX_STEP_NONE = 0,
	SANDBOX_STEP_FDS = 1,	     /* stdio, close_range, verify the exact fd set */
	SANDBOX_STEP_SIGNALS = 2,    /* empty mask, every handler SIG_DFL */
	SANDBOX_STEP_SETSID = 3,     /* new session: no controlling tty */
	SANDBOX_STEP_RLIMITS = 4,    /* CORE 0, NOFILE, NPROC, AS, DATA, CPU, FSIZE */
	SANDBOX_STEP_NAMESPACES = 5, /* unshare from the spec (+net when no network resource) */
	SANDBOX_STEP_SETGROUPS = 6,  /* no supplementary groups */
	SANDBOX_STEP_SETRESGID = 7,
	SANDBOX_STEP_CAPBOUND = 8,   /* bounding and ambient sets, while CAP_SETPCAP remains */
	SANDBOX_STEP_SETRESUID = 9,  /* then verify that regaining root fails */
	SANDBOX_STEP_PDEATHSIG = 10, /* after the uid change, which clears it; parent check */
	SANDBOX_STEP_CAPS = 11,	     /* effective, permitted, inheritable cleared */
	SANDBOX_STEP_DUMPABLE = 12,
	SANDBOX_STEP_NO_NEW_PRIVS = 13,
	SANDBOX_STEP_LANDLOCK = 14,
	SANDBOX_STEP_SECCOMP = 15,
	SANDBOX_STEP_EXEC = 16,
	SANDBOX_STEP_MAX
};

/* Exit code of a child whose setup failed (the layer never ran). */
#define SANDBOX_EXIT_SETUP 125

/* Dynamic users: uid == gid, one per running layer, no passwd or group
 * entry.  The range is the policy language's (POLICY_DYNAMIC_UID_*; the
 * conduit-sandbox build checks they agree).  It lies in the band systemd's
 * uid table leaves unused (65536..524287) and below shadow's default
 * SUB_UID_MIN (100000), so it meets neither systemd's DynamicUser= range
 * (61184..65519, whose holders a layer could otherwise signal or ptrace)
 * nor the usual subordinate-id ranges; any /etc/subuid or /etc/subgid range
 * that reaches into it is skipped at allocation. */
#define SANDBOX_DYNAMIC_UID_MIN	 81920u
#define SANDBOX_DYNAMIC_UID_MAX	 86015u
#define SANDBOX_DYNAMIC_LOCK_DIR "/run/conduit/dynamic-users"

/* Dynamic uids locked ahead of sandbox_plan_new(), so that one lookup
 * child checks a whole batch (the broker's start of many layers). */
#define SANDBOX_DYNUSER_BATCH_MAX 32

struct sandbox_dynuser {
	uid_t uid;
	int lock_fd; /* holds uid; -1 once a plan has taken it */
};

/* Extra fds the layer keeps besides stdio (the channel, a key pipe, ...). */
#define SANDBOX_KEEP_MAX 16

/* Warnings a caller should print (one line: sandbox_plan_warning()). */
enum sandbox_warning {
	SANDBOX_WARN_ROOTLESS = 1u << 0,       /* not root: uid/gid and bounding set unchanged */
	SANDBOX_WARN_NO_NETNS = 1u << 1,       /* no empty network namespace (not permitted) */
	SANDBOX_WARN_LANDLOCK_NONE = 1u << 2,  /* kernel has no Landlock (best effort) */
	SANDBOX_WARN_LANDLOCK_OLDER = 1u << 3, /* Landlock older than this code knows */
	SANDBOX_WARN_SECCOMP_LOG = 1u << 4,    /* commissioning: violations logged, not killed */
};

struct sandbox_options {
	/* fds the layer keeps at the same numbers (each >= 3, close-on-exec is
	 * cleared in the child); at most SANDBOX_KEEP_MAX. */
	const int *keep_fds;
	size_t nkeep;
	/* Sources for the layer's stdin, stdout, stderr: -1 for /dev/null, the
	 * same number (0, 1, 2) to inherit it, or an fd >= 3 (a log pipe). */
	int stdio[3];
	/* Run this program instead of spec->exec / spec->argv (conduit-sandbox);
	 * exec must be an absolute or relative path, argv NULL-terminated. */
	const char *exec;
	const char *const *argv;
	/* Variables the layer gets besides the allowlist, "NAME=value" each,
	 * NULL-terminated (at most 16; NULL: none): a default that the
	 * allowlist overrides when it passes NAME through with a value. */
	const char *const *env_set;
	/* Where dynamic-user locks live (NULL: SANDBOX_DYNAMIC_LOCK_DIR). */
	const char *lock_dir;
	/* A uid from sandbox_dynuser_reserve() to use instead of acquiring
	 * one, or NULL.  When the plan changes ids for a dynamic user it takes
	 * the lock (sets lock_fd to -1); otherwise the caller still owns it. */
	struct sandbox_dynuser *dynuser;
#ifdef SANDBOX_TEST_HOOKS
	/* Test builds only: fail this step with EIO before doing it. */
	enum sandbox_step fail_step;
#endif
};

struct sandbox_plan;

/* What every layer's environment holds besides its policy's allowlist, for
 * env_set (the broker and conduit-sandbox run layers alike):
 * LAYER_ENV_DEFAULT, GLIBC_TUNABLES=glibc.pthread.rseq=0: no
 * restartable-sequence area.  The kernel rewrites that area at each switch
 * into a task that has one (about 0.1 us on the project's VMs), a layer is
 * switched in at least once per message, and no layer needs it (glibc reads
 * it for sched_getcpu() only, which falls back to the vDSO).  A policy that
 * passes GLIBC_TUNABLES through, and a broker that has it set (even empty),
 * give the layer that value instead, whole. */
extern const char *const sandbox_env_layer[];

/* Initialise opts: no extra fds, stdio to /dev/null, the spec's program. */
void sandbox_options_init(struct sandbox_options *opts);

/* Prepare everything sandbox_apply() needs for one spawn of spec.  Copies
 * what it needs from spec and opts (both may be freed afterwards).  Holds a
 * dynamic uid until sandbox_plan_free().  Errors: -EINVAL (bad spec or
 * options), -ENOENT (exec, user or group not found), -EPERM (a syscall the
 * policy may never allow), -EOPNOTSUPP (required Landlock ABI missing,
 * required namespace not permitted), -EUSERS (dynamic range exhausted),
 * -ENOMEM; when the account database gave no answer (asked in a child):
 * the lookup's -errno, -EPROTO (malformed answer), -ECHILD (child killed),
 * -ETIMEDOUT; other -errno from the kernel. */
int sandbox_plan_new(const struct layer_spec *spec, const struct sandbox_options *opts,
		     struct sandbox_plan **ret_plan);
/* Lock n (1..SANDBOX_DYNUSER_BATCH_MAX) dynamic uids for the plans about to
 * be made, checked against the account database by one child.  Root only
 * (-EPERM otherwise).  Errors as sandbox_plan_new() for dynamic users; on
 * failure nothing is held.  The caller releases what no plan took. */
int sandbox_dynuser_reserve(const char *lock_dir, size_t n, struct sandbox_dynuser *ret);
/* Close the locks still held in d[0..n).  Accepts NULL. */
void sandbox_dynuser_release(struct sandbox_dynuser *d, size_t n);

/* Closes the plan's fds and releases its dynamic uid.  Accepts NULL. */
void sandbox_plan_free(struct sandbox_plan *plan);

/* The uid/gid the layer will run as (the caller's own when rootless). */
uid_t sandbox_plan_uid(const struct sandbox_plan *plan);
gid_t sandbox_plan_gid(const struct sandbox_plan *plan);
/* Landlock ABI that will be applied (0: none). */
int sandbox_plan_landlock_abi(const struct sandbox_plan *plan);
/* enum sandbox_warning bits. */
uint32_t sandbox_plan_warnings(const struct sandbox_plan *plan);
/* One human-readable warning line (no newline) into buf; returns its
 * length, 0 when there is nothing to warn about, -ENOBUFS if too small. */
int sandbox_plan_warning(const struct sandbox_plan *plan, char *buf, size_t len);

/* In the child after fork: confine, verify and exec.  Never returns: on
 * failure writes a struct sandbox_status to status_fd (close-on-exec, >= 3,
 * not one of the keep fds) and _exit(SANDBOX_EXIT_SETUP).  Async-signal-
 * safe: callable after fork from a multithreaded process.  The parent-death
 * signal is tied to the thread that forked: fork from a thread that lives
 * as long as the layer. */
_Noreturn void sandbox_apply(const struct sandbox_plan *plan, int status_fd);

/* What the child reports on failure.  Fits in PIPE_BUF: written atomically. */
struct sandbox_status {
	uint32_t magic; /* SANDBOX_STATUS_MAGIC */
	int32_t step;	/* enum sandbox_step */
	int32_t err;	/* positive errno */
	int32_t detail; /* step-specific: the fd, rlimit, signal or capability */
};
#define SANDBOX_STATUS_MAGIC 0x43534258u /* "CSBX" */

/* Read the outcome from the parent's end of the status pipe (blocking).
 * Returns 0 when the child exec'd (EOF without a record), 1 with *ret_status
 * filled when setup failed, -EPROTO for a short or malformed record, -errno. */
int sandbox_status_read(int fd, struct sandbox_status *ret_status);

/* Name of a step ("setresuid", ...); "unknown" for out-of-range values. */
const char *sandbox_step_name(int step);

/* fork + sandbox_apply + sandbox_status_read.  Signals are blocked around
 * fork so no parent handler runs in the child.  Returns 0 and the child's
 * pid when the layer is running.  When setup failed, reaps the child,
 * copies its record to *failure (if not NULL) and returns -ECHILD. */
int sandbox_spawn(const struct sandbox_plan *plan, pid_t *ret_pid, struct sandbox_status *failure);

#endif
