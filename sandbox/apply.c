/* SPDX-License-Identifier: MIT */
/*
 * Phase 2, in the child between fork and exec.  Each step is done, then
 * checked by reading the state back; the first failure is reported on the
 * status pipe and the child exits, so a layer never runs half-confined.
 *
 * Only raw system calls (and libcap calls that are thin wrappers around
 * prctl/capset) on data the plan prepared: no malloc, no stdio, no NSS, so
 * this is safe after fork from a multithreaded broker.  Credentials are set
 * with raw syscalls on purpose: glibc's wrappers broadcast to threads that
 * do not exist in the child.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox-internal.h"

struct apply_fail {
	int err;
	int detail;
};

static _Noreturn void apply_die(int status_fd, int step, int err, int detail)
{
	struct sandbox_status st = {
		.magic = SANDBOX_STATUS_MAGIC,
		.step = step,
		.err = err > 0 ? err : EIO,
		.detail = detail,
	};
	ssize_t n;

	do
		n = write(status_fd, &st, sizeof(st));
	while (n < 0 && errno == EINTR);
	_exit(SANDBOX_EXIT_SETUP);
}

/* Fails with err and remembers detail for the report. */
static int apply_err(struct apply_fail *f, int err, int detail)
{
	f->err = err;
	f->detail = detail;
	return -1;
}

static void fds_sort(int *v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
			int t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
}

static bool fds_contains(const int *v, size_t n, int fd)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == fd)
			return true;
	return false;
}

/* Parse a decimal fd name from /proc/self/fd; -1 if it is not one. */
static int fd_parse(const char *s)
{
	long v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 100000000)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return (int)v;
}

/* Every open fd must be in want[], and every one of want[] open. */
static int fds_verify(const int *want, size_t nwant, struct apply_fail *f)
{
	char buf[2048] __attribute__((aligned(8)));
	size_t seen = 0;
	int dfd, r = 0;

	dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return apply_err(f, errno, -1);
	for (;;) {
		long n = syscall(SYS_getdents64, dfd, buf, sizeof(buf));
		if (n < 0) {
			r = apply_err(f, errno, -1);
			goto out;
		}
		if (n == 0)
			break;
		for (long off = 0; off < n;) {
			/* struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, name */
			unsigned short reclen;
			__builtin_memcpy(&reclen, buf + off + 16, sizeof(reclen));
			if (reclen < 20 || reclen > n - off) {
				r = apply_err(f, EIO, -1); /* not what the kernel writes */
				goto out;
			}
			const char *name = buf + off + 19;
			off += reclen;
			if (name[0] == '.')
				continue;
			int fd = fd_parse(name);
			if (fd == dfd)
				continue;
			if (fd < 0 || !fds_contains(want, nwant, fd)) {
				r = apply_err(f, EBADFD, fd);
				goto out;
			}
			seen++;
		}
	}
	if (seen != nwant)
		r = apply_err(f, EBADF, (int)seen);
out:
	close(dfd);
	return r;
}

static int step_fds(const struct sandbox_plan *p, int status_fd, struct apply_fail *f)
{
	int want[3 + SANDBOX_KEEP_MAX + 3];
	size_t n = 0;

	if (status_fd < 3)
		return apply_err(f, EBADF, status_fd);
	for (int t = 0; t < 3; t++) {
		/* dup2 clears close-on-exec on the new fd; an inherited one needs it
		 * cleared by hand. */
		if (p->stdio[t] != t ? dup2(p->stdio[t], t) < 0 : fcntl(t, F_SETFD, 0) < 0)
			return apply_err(f, errno, t);
		want[n++] = t;
	}
	for (size_t i = 0; i < p->nkeep; i++) {
		if (fcntl(p->keep[i], F_SETFD, 0) < 0)
			return apply_err(f, errno, p->keep[i]);
		want[n++] = p->keep[i];
	}
	/* The sandbox's own fds: all close-on-exec, gone once exec succeeds. */
	want[n++] = status_fd;
	want[n++] = p->exec_fd;
	if (p->landlock_fd >= 0)
		want[n++] = p->landlock_fd;
	fds_sort(want, n);
	for (size_t i = 1; i < n; i++)
		if (want[i] == want[i - 1])
			return apply_err(f, EINVAL, want[i]);
	/* Close the gaps between the fds we keep, then everything above. */
	for (size_t i = 0; i < n; i++) {
		unsigned first = (unsigned)want[i] + 1;
		unsigned last = i + 1 < n ? (unsigned)want[i + 1] - 1 : ~0u;
		if (first <= last && syscall(SYS_close_range, first, last, 0) < 0)
			return apply_err(f, errno, (int)first);
	}
	if (fds_verify(want, n, f) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int fl = fcntl(want[i], F_GETFD);
		bool internal =
			want[i] == status_fd || want[i] == p->exec_fd || want[i] == p->landlock_fd;
		if (fl < 0)
			return apply_err(f, errno, want[i]);
		if (!!(fl & FD_CLOEXEC) != internal)
			return apply_err(f, EBADFD, want[i]);
	}
	return 0;
}

static int step_signals(struct apply_fail *f)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t none, cur;

	/* Handlers first: unblocking while the parent's handlers are still
	 * installed could run one of them here. */
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (sigaction(sig, &dfl, NULL) < 0 && errno != EINVAL)
			return apply_err(f, errno, sig);
	}
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		return apply_err(f, errno, 0);
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction old;
		if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &old) < 0)
			continue; /* libc-reserved signals: exec resets them anyway */
		if (old.sa_handler != SIG_DFL)
			return apply_err(f, EPERM, sig);
	}
	if (sigprocmask(SIG_BLOCK, NULL, &cur) < 0)
		return apply_err(f, errno, 0);
	if (!sigisemptyset(&cur))
		return apply_err(f, EPERM, 0);
	return 0;
}

static int step_setsid(struct apply_fail *f)
{
	/* A new session has no controlling terminal: no TIOCSTI into the
	 * operator's shell, no SIGHUP/SIGINT from its line discipline. */
	if (setsid() < 0)
		return apply_err(f, errno, 0);
	if (getsid(0) != getpid())
		return apply_err(f, EPERM, 0);
	return 0;
}

static int step_rlimits(const struct sandbox_plan *p, struct apply_fail *f)
{
	for (size_t i = 0; i < p->nrlimits; i++) {
		const struct sandbox_rlimit *rl = &p->rlimits[i];
		struct rlimit now;
		if (setrlimit(rl->resource, &rl->lim) < 0)
			return apply_err(f, errno, rl->resource);
		if (getrlimit(rl->resource, &now) < 0)
			return apply_err(f, errno, rl->resource);
		if (now.rlim_cur != rl->lim.rlim_cur || now.rlim_max != rl->lim.rlim_max)
			return apply_err(f, EPERM, rl->resource);
	}
	return 0;
}

static int write_file(const char *path, const char *s)
{
	size_t len = __builtin_strlen(s);
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, s, len);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	return (size_t)n == len ? 0 : -EIO;
}

static int step_namespaces(const struct sandbox_plan *p, struct apply_fail *f)
{
	int flags = p->unshare_flags;

	if (!flags)
		return 0;
	if (p->userns)
		flags |= CLONE_NEWUSER;
	if (unshare(flags) < 0)
		return apply_err(f, errno, flags);
	if (p->userns) {
		/* Rootless: map ourselves to ourselves, so ids look unchanged;
		 * setgroups is denied for good inside.  A caller that changed
		 * its uid is non-dumpable, which makes /proc/self root's and the
		 * maps unwritable: dumpable only for this, the dumpable step
		 * clears it again, and it is the caller's own uid either way. */
		if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1 &&
		    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
			return apply_err(f, errno, CLONE_NEWUSER);
		int r = write_file("/proc/self/setgroups", "deny");
		if (r == 0)
			r = write_file("/proc/self/uid_map", p->uid_map);
		if (r == 0)
			r = write_file("/proc/self/gid_map", p->gid_map);
		if (r < 0)
			return apply_err(f, -r, CLONE_NEWUSER);
	}
	if ((flags & CLONE_NEWNS) && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return apply_err(f, errno, CLONE_NEWNS);
	for (size_t i = 0; i < SANDBOX_NS_KINDS; i++) {
		struct stat st;
		if (!(flags & sandbox_ns_kinds[i].flag))
			continue;
		if (stat(sandbox_ns_kinds[i].path, &st) < 0) {
			/* A PID namespace nobody has entered yet (no init) cannot
			 * be opened: that is the new one, the parent's always can. */
			if (errno == ENOENT && sandbox_ns_kinds[i].flag == CLONE_NEWPID)
				continue;
			return apply_err(f, errno, sandbox_ns_kinds[i].flag);
		}
		if (st.st_ino == p->ns_ino[i])
			return apply_err(f, EPERM, sandbox_ns_kinds[i].flag);
	}
	return 0;
}

static int step_setgroups(const struct sandbox_plan *p, struct apply_fail *f)
{
	if (!p->change_ids)
		return 0;
	if (syscall(SYS_setgroups, 0, NULL) < 0)
		return apply_err(f, errno, 0);
	long n = syscall(SYS_getgroups, 0, NULL);
	if (n != 0)
		return apply_err(f, n < 0 ? errno : EPERM, (int)n);
	return 0;
}

static int step_setresgid(const struct sandbox_plan *p, struct apply_fail *f)
{
	gid_t r, e, s;

	if (!p->change_ids)
		return 0;
	if (syscall(SYS_setresgid, p->gid, p->gid, p->gid) < 0)
		return apply_err(f, errno, (int)p->gid);
	if (syscall(SYS_getresgid, &r, &e, &s) < 0)
		return apply_err(f, errno, 0);
	if (r != p->gid || e != p->gid || s != p->gid)
		return apply_err(f, EPERM, (int)e);
	return 0;
}

static int step_capbound(const struct sandbox_plan *p, struct apply_fail *f)
{
	/* Ambient capabilities survive exec for unprivileged programs: gone. */
	if (cap_reset_ambient() < 0 && errno != EINVAL)
		return apply_err(f, errno, -1);
	/* The bounding set needs CAP_SETPCAP, which setresuid takes away:
	 * this is why it comes before the uid change. */
	if (p->drop_bound)
		for (int c = 0; c <= p->cap_last; c++)
			if (cap_drop_bound((cap_value_t)c) < 0)
				return apply_err(f, errno, c);
	for (int c = 0; c <= p->cap_last; c++) {
		if (p->drop_bound && prctl(PR_CAPBSET_READ, c, 0, 0, 0) != 0)
			return apply_err(f, EPERM, c);
		int amb = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0);
		if (amb > 0)
			return apply_err(f, EPERM, c);
	}
	return 0;
}

static int step_setresuid(const struct sandbox_plan *p, struct apply_fail *f)
{
	uid_t r, e, s;

	if (!p->change_ids)
		return 0;
	if (syscall(SYS_setresuid, p->uid, p->uid, p->uid) < 0)
		return apply_err(f, errno, (int)p->uid);
	if (syscall(SYS_getresuid, &r, &e, &s) < 0)
		return apply_err(f, errno, 0);
	if (r != p->uid || e != p->uid || s != p->uid)
		return apply_err(f, EPERM, (int)e);
	/* The drop must be one-way. */
	if (syscall(SYS_setresuid, 0, 0, 0) == 0)
		return apply_err(f, EPERM, 0);
	if (syscall(SYS_setresgid, 0, 0, 0) == 0)
		return apply_err(f, EPERM, 0);
	return 0;
}

static int step_pdeathsig(const struct sandbox_plan *p, struct apply_fail *f)
{
	int sig = 0;

	/* Set after the uid change, which clears it.  If the parent died
	 * before this point the signal will never come: check by pid. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return apply_err(f, errno, 0);
	if (prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0) < 0)
		return apply_err(f, errno, 0);
	if (sig != SIGKILL)
		return apply_err(f, EPERM, sig);
	if (getppid() != p->parent_pid)
		return apply_err(f, ESRCH, (int)getppid());
	return 0;
}

static int step_caps(const struct sandbox_plan *p, struct apply_fail *f)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	if (cap_set_proc((cap_t)p->caps_empty) < 0)
		return apply_err(f, errno, 0);
	/* Read back with the raw call: no libcap allocation here. */
	if (syscall(SYS_capget, &hdr, data) < 0)
		return apply_err(f, errno, 0);
	for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		if (data[i].effective || data[i].permitted || data[i].inheritable)
			return apply_err(f, EPERM, i);
	/* Whatever the mode (root dropped, rootless, rootless in a user
	 * namespace), root must now be out of reach. */
	if (syscall(SYS_setresuid, 0, 0, 0) == 0)
		return apply_err(f, EPERM, 0);
	return 0;
}

static int step_dumpable(struct apply_fail *f)
{
	/* Until exec: no ptrace attach or /proc/pid/mem by the layer's uid
	 * while the broker's memory is still mapped in this child. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return apply_err(f, errno, 0);
	if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
		return apply_err(f, EPERM, 0);
	return 0;
}

static int step_nnp(struct apply_fail *f)
{
	/* No setuid or file-capability gains from here on; seccomp needs it. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return apply_err(f, errno, 0);
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return apply_err(f, EPERM, 0);
	return 0;
}

static int step_landlock(const struct sandbox_plan *p, struct apply_fail *f)
{
	if (p->landlock_fd < 0)
		return 0;
	if (syscall(SYS_landlock_restrict_self, p->landlock_fd, 0) < 0)
		return apply_err(f, errno, p->landlock_abi);
	/* Landlock has no getter: its return value is the check.  The
	 * ruleset fd is not needed any more. */
	if (close(p->landlock_fd) < 0)
		return apply_err(f, errno, p->landlock_fd);
	return 0;
}

static int step_seccomp(const struct sandbox_plan *p, struct apply_fail *f)
{
	struct sock_fprog prog = {.len = p->bpf_len, .filter = p->bpf};

	if (!p->bpf || p->bpf_len == 0)
		return apply_err(f, EINVAL, 0);
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return apply_err(f, errno, 0);
	/* The filter lets exactly this prctl through so that we can check. */
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2)
		return apply_err(f, EPERM, 0);
	return 0;
}

_Noreturn void sandbox_apply(const struct sandbox_plan *p, int status_fd)
{
	struct apply_fail f = {0, 0};
	int r = 0;

	for (int step = SANDBOX_STEP_FDS; step < SANDBOX_STEP_MAX; step++) {
#ifdef SANDBOX_TEST_HOOKS
		if (p->fail_step == step)
			apply_die(status_fd, step, EIO, -1);
#endif
		switch ((enum sandbox_step)step) {
		case SANDBOX_STEP_NONE:
		case SANDBOX_STEP_MAX:
			break;
		case SANDBOX_STEP_FDS:
			r = step_fds(p, status_fd, &f);
			break;
		case SANDBOX_STEP_SIGNALS:
			r = step_signals(&f);
			break;
		case SANDBOX_STEP_SETSID:
			r = step_setsid(&f);
			break;
		case SANDBOX_STEP_RLIMITS:
			r = step_rlimits(p, &f);
			break;
		case SANDBOX_STEP_NAMESPACES:
			r = step_namespaces(p, &f);
			break;
		case SANDBOX_STEP_SETGROUPS:
			r = step_setgroups(p, &f);
			break;
		case SANDBOX_STEP_SETRESGID:
			r = step_setresgid(p, &f);
			break;
		case SANDBOX_STEP_CAPBOUND:
			r = step_capbound(p, &f);
			break;
		case SANDBOX_STEP_SETRESUID:
			r = step_setresuid(p, &f);
			break;
		case SANDBOX_STEP_PDEATHSIG:
			r = step_pdeathsig(p, &f);
			break;
		case SANDBOX_STEP_CAPS:
			r = step_caps(p, &f);
			break;
		case SANDBOX_STEP_DUMPABLE:
			r = step_dumpable(&f);
			break;
		case SANDBOX_STEP_NO_NEW_PRIVS:
			r = step_nnp(&f);
			break;
		case SANDBOX_STEP_LANDLOCK:
			r = step_landlock(p, &f);
			break;
		case SANDBOX_STEP_SECCOMP:
			r = step_seccomp(p, &f);
			break;
		case SANDBOX_STEP_EXEC:
			/* Raw execveat on the fd opened before the drop; the
			 * filter allows nothing else. */
			syscall(SYS_execveat, p->exec_fd, "", p->argv, p->envp, AT_EMPTY_PATH);
			r = apply_err(&f, errno, 0);
			break;
		}
		if (r < 0)
			apply_die(status_fd, step, f.err, f.detail);
	}
	apply_die(status_fd, SANDBOX_STEP_EXEC, EIO, -1);
}
