/* SPDX-License-Identifier: MIT */
/* The prepared plan, shared by the sandbox/ sources; not for other modules. */
#ifndef CONDUIT_SANDBOX_INTERNAL_H
#define CONDUIT_SANDBOX_INTERNAL_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "sandbox.h"

#define SANDBOX_NS_KINDS    5
#define SANDBOX_RLIMITS_MAX 8

struct sandbox_rlimit {
	int resource;
	struct rlimit lim;
};

struct sandbox_plan {
	int exec_fd;	/* O_PATH|O_CLOEXEC: exec'd by fd, no path walk as the layer */
	int devnull_fd; /* O_RDWR|O_CLOEXEC */
	int stdio[3];	/* source fd for 0, 1, 2 */
	int keep[SANDBOX_KEEP_MAX];
	size_t nkeep;
	char **argv; /* NULL-terminated, owned */
	char **envp; /* NULL-terminated, owned */

	bool change_ids; /* false when rootless */
	uid_t uid;
	gid_t gid;
	int lock_fd; /* dynamic-user lock, held by the parent; -1 if none */

	struct sandbox_rlimit rlimits[SANDBOX_RLIMITS_MAX];
	size_t nrlimits;

	int unshare_flags; /* CLONE_NEW* the layer must get (fail closed) */
	bool userns;	   /* rootless: a user namespace makes unshare possible */
	char uid_map[32];  /* rootless: "uid uid 1", the caller mapped to itself */
	char gid_map[32];
	ino_t ns_ino[SANDBOX_NS_KINDS]; /* the parent's namespaces, to verify the change */

	pid_t parent_pid;

	void *caps_empty; /* cap_t from cap_init(), allocated before fork */
	int cap_last;	  /* highest capability number the kernel knows */
	bool drop_bound;  /* CAP_SETPCAP available (root, or rootless in a user ns) */

	int landlock_fd; /* ruleset with every rule added; -1: none */
	int landlock_abi;

	struct sock_filter *bpf; /* exported from libseccomp before fork */
	unsigned short bpf_len;
	bool seccomp_log;

	uint32_t warnings;
	int fail_step; /* SANDBOX_TEST_HOOKS builds only: fail this step */
};

/* Namespace kinds checked by inode: flag and /proc/self/ns/ name. */
struct sandbox_ns_kind {
	int flag;
	const char *path;
};
extern const struct sandbox_ns_kind sandbox_ns_kinds[SANDBOX_NS_KINDS];

/* seccomp.c: compile the spec's profiles and extras for exec_fd to BPF. */
int seccomp_plan_build(const struct layer_spec *spec, int exec_fd, struct sandbox_plan *plan);

/* landlock.c: negotiate the ABI and build the ruleset (plan->landlock_*). */
int landlock_plan_build(const struct layer_spec *spec, int exec_fd, struct sandbox_plan *plan);

/* idquery.c: account-database (NSS) questions answered by a short-lived
 * child, so that no NSS module is ever loaded into the calling process.
 * The caller must not be running other threads that use NSS (the child
 * starts with one thread and the parent's locks as they were). */
#define IDQUERY_IDS_MAX	   SANDBOX_DYNUSER_BATCH_MAX
#define IDQUERY_TIMEOUT_MS 5000
#define IDQUERY_MAGIC	   0x43494451u /* "CIDQ" */

enum idquery_kind {
	IDQUERY_IDS = 1,   /* does a passwd or group entry have this number? */
	IDQUERY_NAMES = 2, /* user (and group) name to uid and gid */
};

enum idquery_state {
	IDQUERY_ABSENT = 1,
	IDQUERY_PRESENT = 2,
};

struct idquery_req {
	enum idquery_kind kind;
	size_t n; /* IDQUERY_IDS: ids to check, 1..IDQUERY_IDS_MAX */
	uint32_t ids[IDQUERY_IDS_MAX];
	const char *user;  /* IDQUERY_NAMES: required */
	const char *group; /* IDQUERY_NAMES: NULL for the user's primary group */
};

/* The one record the child writes, in one write (below PIPE_BUF).
 * IDQUERY_IDS: n == req.n, id[i] == req.ids[i], state[i] PRESENT when a
 * passwd or a group entry has that number.  IDQUERY_NAMES: n is 1, or 2
 * with a group; state[0] is the user's, state[1] the group's; id[0] is the
 * uid, id[1] the gid (the group's, else the user's primary).  A failed
 * lookup: err is its positive errno, n and every slot zero.  Unused slots
 * are zero. */
struct idquery_wire {
	uint32_t magic;
	uint32_t kind;
	uint32_t n;
	int32_t err;
	uint32_t id[IDQUERY_IDS_MAX];
	uint8_t state[IDQUERY_IDS_MAX];
};

struct idquery_result {
	bool taken[IDQUERY_IDS_MAX]; /* IDQUERY_IDS: for req.ids[i] */
	uid_t uid;		     /* IDQUERY_NAMES */
	gid_t gid;
};

/* What runs in the child: answer req into fd. */
typedef void (*idquery_child_fn)(const struct idquery_req *req, int fd);

/* Ask the account database in a child.  0 and *ret on one well-formed
 * answer from a child that then exited; -ENOENT when a name does not exist;
 * the lookup's -errno when it failed; -EPROTO for a short, long, malformed
 * or missing record; -ECHILD when a signal killed the child; -ETIMEDOUT
 * after IDQUERY_TIMEOUT_MS (the child is killed).  Every failure means no
 * answer: callers fail closed. */
int idquery_run(const struct idquery_req *req, struct idquery_result *ret);
/* The same with another child body and timeout (tests). */
int idquery_run_with(const struct idquery_req *req, idquery_child_fn body, int timeout_ms,
		     struct idquery_result *ret);
/* The real child body. */
void idquery_child_answer(const struct idquery_req *req, int fd);
#ifdef SANDBOX_TEST_HOOKS
/* Test builds only: when set, idquery_run() runs this body instead. */
extern idquery_child_fn idquery_test_body;
#endif
/* Check one record against the question; results as idquery_run(). */
int idquery_parse(const struct idquery_req *req, const void *buf, size_t len,
		  struct idquery_result *ret);

/* dynuser.c: lock n free uids (== gids) in [MIN, MAX], none with a passwd
 * or group entry, all checked by one idquery child.  Each ret_lock_fds[i]
 * holds ret_uids[i] until closed.  n is 1..SANDBOX_DYNUSER_BATCH_MAX. */
int dynuser_acquire(const char *lock_dir, size_t n, uid_t *ret_uids, int *ret_lock_fds);

/* 1 when a "name:start:count" line of the subordinate-id file @path
 * covers @id, 0 when none does or the file does not exist, -errno when it
 * cannot be read.  Lines that do not parse are skipped. */
int dynuser_subid_covers(const char *path, uint32_t id);

#endif
