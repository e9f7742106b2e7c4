/* SPDX-License-Identifier: MIT */
/*
 * Phase 1, in the parent before fork: everything that may allocate, ask
 * the account database (in a child of its own: idquery.c) or walk paths as
 * the parent.  The result is plain data and fds that
 * sandbox_apply() uses with raw system calls only.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox-internal.h"

extern char **environ;

const struct sandbox_ns_kind sandbox_ns_kinds[SANDBOX_NS_KINDS] = {
	{CLONE_NEWNET, "/proc/self/ns/net"}, {CLONE_NEWIPC, "/proc/self/ns/ipc"},
	{CLONE_NEWUTS, "/proc/self/ns/uts"}, {CLONE_NEWPID, "/proc/self/ns/pid_for_children"},
	{CLONE_NEWNS, "/proc/self/ns/mnt"},
};

const char *const sandbox_env_layer[] = {LAYER_ENV_DEFAULT, NULL};

void sandbox_options_init(struct sandbox_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->stdio[0] = opts->stdio[1] = opts->stdio[2] = -1;
}

static void strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static int strv_copy(const char *const *src, size_t n, char ***ret)
{
	char **v = calloc(n + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!src[i] || !(v[i] = strdup(src[i]))) {
			strv_free(v);
			return src[i] ? -ENOMEM : -EINVAL;
		}
	}
	*ret = v;
	return 0;
}

/* The environment is an allowlist: only named variables pass, and never one
 * whose name is malformed.  The caller's defaults (opts->env_set, "NAME=value")
 * come after it, each unless the allowlist already passed NAME with a
 * value. */
static int plan_env(const struct layer_spec *spec, const struct sandbox_options *opts,
		    char ***ret)
{
	size_t n = 0, nset = 0, cap;
	char **v;

	while (opts->env_set && opts->env_set[nset] && nset <= 16)
		nset++;
	if (spec->nenv_allow > 4096 || nset > 16)
		return -E2BIG;
	cap = spec->nenv_allow + nset;
	v = calloc(cap + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < spec->nenv_allow; i++) {
		const char *name = spec->env_allow[i];
		if (!name || !*name || strchr(name, '=')) {
			strv_free(v);
			return -EINVAL;
		}
		const char *val = getenv(name);
		if (!val)
			continue;
		size_t len;
		if (__builtin_add_overflow(strlen(name), strlen(val), &len) ||
		    __builtin_add_overflow(len, 2, &len)) {
			strv_free(v);
			return -E2BIG;
		}
		if (!(v[n] = malloc(len))) {
			strv_free(v);
			return -ENOMEM;
		}
		snprintf(v[n], len, "%s=%s", name, val);
		n++;
	}
	for (size_t i = 0; i < nset; i++) {
		const char *set = opts->env_set[i];
		const char *eq = strchr(set, '=');
		size_t nlen = eq ? (size_t)(eq - set) : 0;
		bool passed = false;
		if (nlen == 0) {
			strv_free(v);
			return -EINVAL;
		}
		for (size_t j = 0; j < n && !passed; j++)
			passed = strncmp(v[j], set, nlen + 1) == 0;
		if (passed)
			continue;
		if (!(v[n] = strdup(set))) {
			strv_free(v);
			return -ENOMEM;
		}
		n++;
	}
	*ret = v;
	return 0;
}

static int plan_ids(const struct layer_spec *spec, const struct sandbox_options *opts,
		    struct sandbox_plan *plan)
{
	if (geteuid() != 0) {
		/* Rootless: no id change, but every other step still applies. */
		plan->change_ids = false;
		plan->uid = geteuid();
		plan->gid = getegid();
		plan->warnings |= SANDBOX_WARN_ROOTLESS;
		return 0;
	}
	plan->change_ids = true;
	switch (spec->user_kind) {
	case LAYER_USER_DYNAMIC: {
		struct sandbox_dynuser *d = opts->dynuser;
		uid_t uid;
		int r;
		if (d && d->lock_fd >= 0) {
			/* Reserved and checked by sandbox_dynuser_reserve(). */
			if (d->uid < SANDBOX_DYNAMIC_UID_MIN || d->uid > SANDBOX_DYNAMIC_UID_MAX)
				return -EINVAL;
			plan->uid = d->uid;
			plan->gid = (gid_t)d->uid;
			plan->lock_fd = d->lock_fd;
			d->lock_fd = -1;
			return 0;
		}
		r = dynuser_acquire(opts->lock_dir, 1, &uid, &plan->lock_fd);
		if (r < 0)
			return r;
		plan->uid = uid;
		plan->gid = (gid_t)uid;
		return 0;
	}
	case LAYER_USER_ID:
		/* A layer never runs as root: that would undo every later step. */
		if (spec->uid == 0 || spec->gid == 0 || spec->uid == (uid_t)-1 ||
		    spec->gid == (gid_t)-1)
			return -EPERM;
		plan->uid = spec->uid;
		plan->gid = spec->gid;
		return 0;
	case LAYER_USER_NAME: {
		struct idquery_req req = {
			.kind = IDQUERY_NAMES,
			.user = spec->user_name,
			.group = spec->group_name,
		};
		struct idquery_result res;
		int r;
		if (!spec->user_name || !*spec->user_name ||
		    (spec->group_name && !*spec->group_name))
			return -EINVAL;
		r = idquery_run(&req, &res);
		if (r < 0)
			return r;
		plan->uid = res.uid;
		plan->gid = res.gid;
		if (plan->uid == 0 || plan->gid == 0 || plan->uid == (uid_t)-1 ||
		    plan->gid == (gid_t)-1)
			return -EPERM;
		return 0;
	}
	}
	return -EINVAL;
}

static void plan_rlimit(struct sandbox_plan *plan, int resource, uint64_t v)
{
	plan->rlimits[plan->nrlimits].resource = resource;
	plan->rlimits[plan->nrlimits].lim.rlim_cur = (rlim_t)v;
	plan->rlimits[plan->nrlimits].lim.rlim_max = (rlim_t)v;
	plan->nrlimits++;
}

static int plan_rlimits(const struct layer_limits *l, struct sandbox_plan *plan)
{
	/* No core files: a layer's memory holds its channel key. */
	plan_rlimit(plan, RLIMIT_CORE, 0);
	if (l->memory != LAYER_LIMIT_UNSET) {
		plan_rlimit(plan, RLIMIT_AS, l->memory);
		plan_rlimit(plan, RLIMIT_DATA, l->memory);
	}
	if (l->files != LAYER_LIMIT_UNSET)
		plan_rlimit(plan, RLIMIT_NOFILE, l->files);
	if (l->procs != LAYER_LIMIT_UNSET) {
		/* RLIMIT_NPROC counts the layer itself: procs N allows N children.
		 * With a dynamic uid the count is this layer's alone. */
		if (l->procs >= LAYER_LIMIT_UNSET - 1)
			return -EINVAL;
		plan_rlimit(plan, RLIMIT_NPROC, l->procs + 1);
	}
	if (l->cpu != LAYER_LIMIT_UNSET)
		plan_rlimit(plan, RLIMIT_CPU, l->cpu);
	if (l->fsize != LAYER_LIMIT_UNSET)
		plan_rlimit(plan, RLIMIT_FSIZE, l->fsize);
	return 0;
}

/* Can this unprivileged process create a user namespace? */
static bool plan_userns_possible(void)
{
	char buf[32] = "";
	FILE *f = fopen("/proc/sys/user/max_user_namespaces", "re");

	if (!f)
		return false;
	bool ok = fgets(buf, sizeof(buf), f) && strtol(buf, NULL, 10) > 0;
	fclose(f);
	f = fopen("/proc/sys/kernel/unprivileged_userns_clone", "re");
	if (f) {
		ok = ok && fgets(buf, sizeof(buf), f) && strtol(buf, NULL, 10) > 0;
		fclose(f);
	}
	return ok;
}

static int plan_namespaces(const struct layer_spec *spec, struct sandbox_plan *plan)
{
	uint32_t ns = spec->namespaces;
	int flags = 0;
	bool implicit_net = false;

	if (ns &
	    ~(uint32_t)(LAYER_NS_NET | LAYER_NS_IPC | LAYER_NS_UTS | LAYER_NS_PID | LAYER_NS_MOUNT))
		return -EINVAL;
	if (ns & LAYER_NS_NET)
		flags |= CLONE_NEWNET;
	if (ns & LAYER_NS_IPC)
		flags |= CLONE_NEWIPC;
	if (ns & LAYER_NS_UTS)
		flags |= CLONE_NEWUTS;
	if (ns & LAYER_NS_PID)
		flags |= CLONE_NEWPID;
	if (ns & LAYER_NS_MOUNT)
		flags |= CLONE_NEWNS;
	/* No network resource: an empty network namespace, where available. */
	if (!spec->has_network_resource && !(flags & CLONE_NEWNET)) {
		flags |= CLONE_NEWNET;
		implicit_net = true;
	}
	if (!plan->change_ids && flags) {
		if (plan_userns_possible()) {
			plan->userns = true;
			snprintf(plan->uid_map, sizeof(plan->uid_map), "%u %u 1\n",
				 (unsigned)geteuid(), (unsigned)geteuid());
			snprintf(plan->gid_map, sizeof(plan->gid_map), "%u %u 1\n",
				 (unsigned)getegid(), (unsigned)getegid());
		} else if (flags == (implicit_net ? CLONE_NEWNET : 0)) {
			flags = 0;
			plan->warnings |= SANDBOX_WARN_NO_NETNS;
		} else {
			return -EOPNOTSUPP; /* the policy requires namespaces we cannot make */
		}
	}
	plan->unshare_flags = flags;
	for (size_t i = 0; i < SANDBOX_NS_KINDS; i++) {
		struct stat st;
		if (!(flags & sandbox_ns_kinds[i].flag))
			continue;
		if (stat(sandbox_ns_kinds[i].path, &st) < 0)
			return -errno;
		plan->ns_ino[i] = st.st_ino;
	}
	return 0;
}

/* The plan's own fds live at 3 and above, so that putting the layer's stdio
 * in place cannot overwrite them. */
static int plan_fd_high(int fd)
{
	if (fd < 0 || fd >= 3)
		return fd;
	int high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	int e = errno;
	close(fd);
	errno = e;
	return high;
}

static int plan_fds(const struct sandbox_options *opts, struct sandbox_plan *plan)
{
	if (opts->nkeep > SANDBOX_KEEP_MAX || (opts->nkeep && !opts->keep_fds))
		return -EINVAL;
	for (size_t i = 0; i < opts->nkeep; i++) {
		int fd = opts->keep_fds[i];
		if (fd < 3 || fcntl(fd, F_GETFD) < 0)
			return -EBADF;
		for (size_t j = 0; j < i; j++)
			if (opts->keep_fds[j] == fd)
				return -EINVAL;
		plan->keep[i] = fd;
	}
	plan->nkeep = opts->nkeep;
	plan->devnull_fd = plan_fd_high(open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY));
	if (plan->devnull_fd < 0)
		return -errno;
	for (int t = 0; t < 3; t++) {
		int src = opts->stdio[t];
		if (src < 0)
			src = plan->devnull_fd;
		else if (src < 3 && src != t)
			return -EINVAL; /* would be overwritten by an earlier dup2 */
		else if (fcntl(src, F_GETFD) < 0)
			return -EBADF;
		for (size_t i = 0; i < plan->nkeep; i++)
			if (plan->keep[i] == src)
				return -EINVAL;
		plan->stdio[t] = src;
	}
	return 0;
}

static int plan_exec(const struct layer_spec *spec, const struct sandbox_options *opts,
		     struct sandbox_plan *plan)
{
	const char *path = opts->exec ? opts->exec : spec->exec;
	struct stat st;
	int r;

	if (!path || !*path)
		return -EINVAL;
	if (opts->exec) {
		size_t n = 0;
		if (!opts->argv || !opts->argv[0])
			return -EINVAL;
		while (opts->argv[n])
			n++;
		r = strv_copy(opts->argv, n, &plan->argv);
	} else {
		if (path[0] != '/' || spec->nargv == 0 || !spec->argv)
			return -EINVAL;
		r = strv_copy(spec->argv, spec->nargv, &plan->argv);
	}
	if (r < 0)
		return r;
	/* Opened now, as the parent: the layer's uid may not be able to walk
	 * the path, and exec by fd cannot be redirected by a rename later. */
	plan->exec_fd = plan_fd_high(open(path, O_PATH | O_CLOEXEC));
	if (plan->exec_fd < 0)
		return -errno;
	if (fstat(plan->exec_fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EACCES;
	return 0;
}

static int plan_caps(struct sandbox_plan *plan)
{
	plan->caps_empty = cap_init();
	if (!plan->caps_empty)
		return -ENOMEM;
	plan->cap_last = (int)cap_max_bits() - 1;
	if (plan->cap_last < 0 || plan->cap_last > 63)
		return -EINVAL;
	/* Dropping the bounding set needs CAP_SETPCAP: root has it, and so has
	 * a rootless layer inside its own user namespace. */
	plan->drop_bound = plan->change_ids || plan->userns;
	return 0;
}

int sandbox_plan_new(const struct layer_spec *spec, const struct sandbox_options *opts,
		     struct sandbox_plan **ret_plan)
{
	struct sandbox_plan *plan;
	int r;

	if (!spec || !opts || !ret_plan)
		return -EINVAL;
	plan = calloc(1, sizeof(*plan));
	if (!plan)
		return -ENOMEM;
	plan->exec_fd = plan->devnull_fd = plan->lock_fd = plan->landlock_fd = -1;
	plan->parent_pid = getpid();
#ifdef SANDBOX_TEST_HOOKS
	plan->fail_step = (int)opts->fail_step;
#endif
	r = plan_fds(opts, plan);
	if (r < 0)
		goto out;
	r = plan_exec(spec, opts, plan);
	if (r < 0)
		goto out;
	r = plan_env(spec, opts, &plan->envp);
	if (r < 0)
		goto out;
	r = plan_ids(spec, opts, plan);
	if (r < 0)
		goto out;
	r = plan_rlimits(&spec->limits, plan);
	if (r < 0)
		goto out;
	r = plan_namespaces(spec, plan);
	if (r < 0)
		goto out;
	r = landlock_plan_build(spec, plan->exec_fd, plan);
	if (r < 0)
		goto out;
	plan->landlock_fd = plan_fd_high(plan->landlock_fd);
	if (plan->landlock_fd < 0 && plan->landlock_abi > 0) {
		r = -errno;
		goto out;
	}
	r = plan_caps(plan);
	if (r < 0)
		goto out;
	r = seccomp_plan_build(spec, plan->exec_fd, plan);
	if (r < 0)
		goto out;
	*ret_plan = plan;
	plan = NULL;
out:
	sandbox_plan_free(plan);
	return r;
}

void sandbox_plan_free(struct sandbox_plan *plan)
{
	if (!plan)
		return;
	int fds[] = {plan->exec_fd, plan->devnull_fd, plan->lock_fd, plan->landlock_fd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	strv_free(plan->argv);
	strv_free(plan->envp);
	cap_free(plan->caps_empty);
	free(plan->bpf);
	free(plan);
}

uid_t sandbox_plan_uid(const struct sandbox_plan *plan)
{
	return plan->uid;
}

gid_t sandbox_plan_gid(const struct sandbox_plan *plan)
{
	return plan->gid;
}

int sandbox_plan_landlock_abi(const struct sandbox_plan *plan)
{
	return plan->landlock_abi;
}

uint32_t sandbox_plan_warnings(const struct sandbox_plan *plan)
{
	return plan->warnings;
}

int sandbox_plan_warning(const struct sandbox_plan *plan, char *buf, size_t len)
{
	static const struct {
		uint32_t bit;
		const char *text;
	} parts[] = {
		{SANDBOX_WARN_ROOTLESS, "not root: uid, gid and groups unchanged"},
		{SANDBOX_WARN_NO_NETNS, "no user namespaces: network namespace skipped"},
		{SANDBOX_WARN_LANDLOCK_NONE, "kernel without Landlock: no filesystem confinement"},
		{SANDBOX_WARN_LANDLOCK_OLDER,
		 "Landlock newer than this build: newest rights unhandled"},
		{SANDBOX_WARN_SECCOMP_LOG,
		 "SECCOMP LOG MODE: violations are logged, not killed (commissioning only)"},
	};
	size_t off = 0;

	if (!plan || !buf || len == 0)
		return -EINVAL;
	buf[0] = '\0';
	if (!plan->warnings)
		return 0;
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (!(plan->warnings & parts[i].bit))
			continue;
		int n = snprintf(buf + off, len - off, "%s%s",
				 off ? "; " : "sandbox: warning: ", parts[i].text);
		if (n < 0 || (size_t)n >= len - off)
			return -ENOBUFS;
		off += (size_t)n;
	}
	if (!(plan->warnings & SANDBOX_WARN_ROOTLESS))
		return (int)off;
	int n = snprintf(buf + off, len - off, "%s; every other step applied",
			 plan->drop_bound ? ""
					  : "; capability bounding set kept (no user namespace)");
	if (n < 0 || (size_t)n >= len - off)
		return -ENOBUFS;
	return (int)(off + (size_t)n);
}
