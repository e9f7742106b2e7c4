/* SPDX-License-Identifier: MIT */
/*
 * Landlock, before fork: negotiate the ABI, create the ruleset and add every
 * rule while NSS and malloc are still fine.  The child only calls
 * landlock_restrict_self() on the ruleset fd.
 *
 * What is handled is denied unless a rule grants it: the layer gets its
 * executable (execute + read), the policy's paths, and nothing else.  From
 * ABI 4 TCP bind/connect are handled with no rule (sockets come from the
 * broker); from ABI 6 signals and abstract unix sockets are scoped to the
 * layer's own domain.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox-internal.h"

/* The build host's header may be older than the running kernel: the values
 * are kernel ABI and never change. */
#define LL_FS_EXECUTE	       (1ULL << 0)
#define LL_FS_WRITE_FILE       (1ULL << 1)
#define LL_FS_READ_FILE	       (1ULL << 2)
#define LL_FS_READ_DIR	       (1ULL << 3)
#define LL_FS_ABI1	       ((1ULL << 13) - 1) /* EXECUTE .. MAKE_SYM */
#define LL_FS_REFER	       (1ULL << 13)	  /* ABI 2 */
#define LL_FS_TRUNCATE	       (1ULL << 14)	  /* ABI 3 */
#define LL_FS_IOCTL_DEV	       (1ULL << 15)	  /* ABI 5 */
#define LL_NET_BIND_TCP	       (1ULL << 0)	  /* ABI 4 */
#define LL_NET_CONNECT_TCP     (1ULL << 1)
#define LL_SCOPE_ABSTRACT_UNIX (1ULL << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL	       (1ULL << 1)
#define LL_RULE_PATH_BENEATH   1

/* The newest ABI this code knows what to do with (7 adds only logging
 * flags, no rights: nothing for us to handle). */
#define LL_ABI_KNOWN 7

struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

struct ll_path_beneath {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

static uint64_t landlock_fs_handled(int abi)
{
	uint64_t fs = LL_FS_ABI1;

	if (abi >= 2)
		fs |= LL_FS_REFER;
	if (abi >= 3)
		fs |= LL_FS_TRUNCATE;
	if (abi >= 5)
		fs |= LL_FS_IOCTL_DEV;
	return fs;
}

/* Rights on a directory tree: read-only means read and execute. */
static uint64_t landlock_path_rights(bool write, int abi, bool is_dir)
{
	uint64_t r = LL_FS_EXECUTE | LL_FS_READ_FILE;

	if (is_dir)
		r |= LL_FS_READ_DIR;
	if (write) {
		r |= LL_FS_WRITE_FILE;
		if (abi >= 3)
			r |= LL_FS_TRUNCATE;
		if (is_dir)
			r |= landlock_fs_handled(abi) & ~(LL_FS_IOCTL_DEV);
	}
	return r;
}

static int landlock_add(int ruleset, int fd, uint64_t rights)
{
	struct ll_path_beneath pb = {.allowed_access = rights, .parent_fd = fd};

	if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &pb, 0) < 0)
		return -errno;
	return 0;
}

static int landlock_add_path(int ruleset, const struct layer_path *p, int abi)
{
	struct stat st;
	int fd, r;

	if (!p->path || p->path[0] != '/')
		return -EINVAL;
	fd = open(p->path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	r = landlock_add(ruleset, fd, landlock_path_rights(p->write, abi, S_ISDIR(st.st_mode)));
out:
	close(fd);
	return r;
}

int landlock_plan_build(const struct layer_spec *spec, int exec_fd, struct sandbox_plan *plan)
{
	struct ll_ruleset_attr attr = {0};
	size_t attr_size;
	long abi;
	int fd = -1, r;

	if (spec->landlock_min_abi < 0 || (spec->nlandlock > 0 && !spec->landlock))
		return -EINVAL;
	/* A bad spec is bad whether or not this kernel has Landlock. */
	for (size_t i = 0; i < spec->nlandlock; i++)
		if (!spec->landlock[i].path || spec->landlock[i].path[0] != '/')
			return -EINVAL;
	abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0) {
		/* ENOSYS: not built in; EOPNOTSUPP: disabled at boot. */
		if (errno != ENOSYS && errno != EOPNOTSUPP)
			return -errno;
		abi = 0;
	}
	if (abi < spec->landlock_min_abi)
		return -EOPNOTSUPP; /* the policy requires more: fail closed */
	if (abi == 0) {
		plan->warnings |= SANDBOX_WARN_LANDLOCK_NONE;
		plan->landlock_abi = 0;
		return 0;
	}
	if (abi > LL_ABI_KNOWN) {
		/* Newer rights exist that this code does not handle: they stay
		 * allowed.  Worth saying, not worth failing. */
		plan->warnings |= SANDBOX_WARN_LANDLOCK_OLDER;
		abi = LL_ABI_KNOWN;
	}
	attr.handled_access_fs = landlock_fs_handled((int)abi);
	attr_size = sizeof(attr.handled_access_fs);
	if (abi >= 4) {
		attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
		attr_size = offsetof(struct ll_ruleset_attr, scoped);
	}
	if (abi >= 6) {
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
		attr_size = sizeof(attr);
	}
	fd = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
	if (fd < 0)
		return -errno;
	/* The executable itself: exec by fd still opens it for execution. */
	r = landlock_add(fd, exec_fd, LL_FS_EXECUTE | LL_FS_READ_FILE);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < spec->nlandlock; i++) {
		r = landlock_add_path(fd, &spec->landlock[i], (int)abi);
		if (r < 0)
			goto out;
	}
	plan->landlock_fd = fd;
	plan->landlock_abi = (int)abi;
	fd = -1;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	return r;
}
