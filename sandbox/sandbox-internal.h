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

/* dynuser.c: lock a free uid (== gid) in [MIN, MAX] without a passwd or
 * group entry.  *ret_lock_fd holds it until closed. */
int dynuser_acquire(const char *lock_dir, uid_t *ret_uid, int *ret_lock_fd);

/* 1 when a "name:start:count" line of the subordinate-id file @path
 * covers @id, 0 when none does or the file does not exist, -errno when it
 * cannot be read.  Lines that do not parse are skipped. */
int dynuser_subid_covers(const char *path, uint32_t id);

#endif
