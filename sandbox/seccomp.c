/* SPDX-License-Identifier: MIT */
/*
 * Compile a layer's syscall set to BPF with libseccomp, before fork.
 * seccomp_load() allocates, so the child installs the exported program with
 * the raw seccomp(2) call instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <string.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "profiles.h"
#include "sandbox-internal.h"

/* clone flags that would create namespaces; the layer may not. */
#define SECCOMP_CLONE_NS_FLAGS                                                                     \
	((scmp_datum_t)(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | \
			CLONE_NEWNET | CLONE_NEWCGROUP))

/* Argument comparisons spelled out: libseccomp's SCMP_A* macros leave a
 * field to the compiler, which clang rightly flags. */
static struct scmp_arg_cmp cmp_eq(unsigned arg, scmp_datum_t v)
{
	return (struct scmp_arg_cmp){.arg = arg, .op = SCMP_CMP_EQ, .datum_a = v, .datum_b = 0};
}

static struct scmp_arg_cmp cmp_masked(unsigned arg, scmp_datum_t mask, scmp_datum_t v)
{
	return (struct scmp_arg_cmp){
		.arg = arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = mask, .datum_b = v};
}

static int seccomp_add_conditional(scmp_filter_ctx ctx, const struct profile_syscall *sc, int nr,
				   uint32_t bits, int exec_fd)
{
	int r = 0;

	switch (sc->cond) {
	case PROFILE_COND_NONE:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	case PROFILE_COND_IOCTL:
		/* The kernel takes the request as unsigned int: compare only the low
		 * 32 bits, so high garbage cannot smuggle TIOCSTI past the list. */
		for (size_t i = 0; i < profile_nioctls; i++) {
			if (!(profile_ioctls[i].profiles & bits))
				continue;
			r = seccomp_rule_add(
				ctx, SCMP_ACT_ALLOW, nr, 1,
				cmp_masked(1, 0xffffffffu,
					   (scmp_datum_t)(uint32_t)profile_ioctls[i].request));
			if (r < 0)
				return r;
		}
		return 0;
	case PROFILE_COND_CLONE:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
					cmp_masked(0, SECCOMP_CLONE_NS_FLAGS, 0));
	case PROFILE_COND_EXECVEAT:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 2,
					cmp_eq(0, (scmp_datum_t)exec_fd),
					cmp_eq(4, (scmp_datum_t)AT_EMPTY_PATH));
	case PROFILE_COND_SELF:
		/* Not another process of the same uid (rootless: the broker). */
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, cmp_eq(0, 0));
	case PROFILE_COND_PRCTL:
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
				     cmp_eq(0, (scmp_datum_t)PR_GET_SECCOMP));
		if (r < 0)
			return r;
		/* exec makes the layer dumpable again; let it undo that. */
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 2,
					cmp_eq(0, (scmp_datum_t)PR_SET_DUMPABLE), cmp_eq(1, 0));
	}
	return -EINVAL;
}

/* The conditional entry for nr, if the table has one. */
static const struct profile_syscall *seccomp_conditional(int nr)
{
	for (size_t i = 0; i < profile_nsyscalls; i++)
		if (profile_syscalls[i].cond != PROFILE_COND_NONE &&
		    seccomp_syscall_resolve_name(profile_syscalls[i].name) == nr)
			return &profile_syscalls[i];
	return NULL;
}

/* Our own first instructions, ahead of libseccomp's program and in every
 * mode (log mode included): a foreign architecture (i386 via int $0x80) and
 * any number with the x32 bit kill the process.  libseccomp 2.4+ emits the
 * same checks; this does not depend on its version or on the log-mode
 * default action.  Jumps in BPF are relative, so prepending keeps
 * libseccomp's program intact. */
static const struct sock_filter seccomp_prefix[] = {
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 2),
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u /* __X32_SYSCALL_BIT */, 0, 1),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
};
#define SECCOMP_PREFIX_LEN (sizeof(seccomp_prefix) / sizeof(seccomp_prefix[0]))

static int seccomp_export(scmp_filter_ctx ctx, struct sandbox_plan *plan)
{
	struct stat st;
	struct sock_filter *prog = NULL;
	size_t len;
	int fd, r;

	fd = memfd_create("conduit-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = seccomp_export_bpf(ctx, fd);
	if (r < 0)
		goto out;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	/* BPF_MAXINSNS is the kernel's cap; an empty program is a bug. */
	if (st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) != 0 ||
	    (size_t)st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS - SECCOMP_PREFIX_LEN) {
		r = -E2BIG;
		goto out;
	}
	len = (size_t)st.st_size / sizeof(struct sock_filter);
	prog = calloc(SECCOMP_PREFIX_LEN + len, sizeof(*prog));
	if (!prog) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(prog, seccomp_prefix, sizeof(seccomp_prefix));
	ssize_t n = pread(fd, prog + SECCOMP_PREFIX_LEN, (size_t)st.st_size, 0);
	if (n != st.st_size) {
		r = n < 0 ? -errno : -EIO;
		goto out;
	}
	plan->bpf = prog;
	plan->bpf_len = (unsigned short)(SECCOMP_PREFIX_LEN + len);
	prog = NULL;
	r = 0;
out:
	free(prog);
	close(fd);
	return r;
}

int seccomp_plan_build(const struct layer_spec *spec, int exec_fd, struct sandbox_plan *plan)
{
	uint32_t bits = PROFILE_BASE | spec->profiles;
	bool *allowed;
	scmp_filter_ctx ctx = NULL;
	int r;

	allowed = calloc(PROFILE_NR_MAX, sizeof(*allowed));
	if (!allowed)
		return -ENOMEM;
	r = profile_allowed_set(spec, allowed);
	if (r < 0)
		goto out;
	/* libseccomp probes the running kernel to pick the actions it will
	 * emit; where the probe cannot run (valgrind, some containers) it
	 * refuses to build at all.  We only compile here: the kernel judges
	 * the program when the child installs it, and fails closed there. */
	if (seccomp_api_get() < 3 && seccomp_api_set(3) < 0) {
		r = -EOPNOTSUPP;
		goto out;
	}
	/* Default: kill the whole process (a killed thread could leave the rest
	 * running in an unexpected state).  Commissioning logs instead. */
	ctx = seccomp_init(spec->seccomp_log ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
	if (!ctx) {
		r = -ENOMEM;
		goto out;
	}
	/* A foreign architecture (int $0x80, i386) is never commissioning: kill.
	 * (seccomp_prefix checks it, and x32 numbers, before this program.) */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (r < 0)
		goto out;
	/* A binary tree over the syscall numbers instead of a list: every
	 * call a layer makes runs the program, and a list makes the last
	 * entries (epoll_wait, futex, exit_group) pay for all the others.
	 * Same rules, same default: only the order of the tests changes. */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if (r < 0)
		goto out;
	for (int nr = 0; nr < PROFILE_NR_MAX; nr++) {
		if (!allowed[nr])
			continue;
		const struct profile_syscall *sc = seccomp_conditional(nr);
		if (sc)
			r = seccomp_add_conditional(ctx, sc, nr, bits, exec_fd);
		else
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (r < 0)
			goto out;
	}
	/* clone3 passes its flags in memory seccomp cannot read: ENOSYS makes
	 * libc fall back to clone, whose flags the filter checks. */
	r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (r < 0)
		goto out;
	if (spec->seccomp_log) {
		/* Even while commissioning, these never run. */
		for (size_t i = 0; i < profile_nnever; i++) {
			int nr = seccomp_syscall_resolve_name(profile_never[i]);
			if (nr < 0 || nr == SCMP_SYS(clone3))
				continue;
			r = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, nr, 0);
			if (r < 0)
				goto out;
		}
	}
	r = seccomp_export(ctx, plan);
	if (r < 0)
		goto out;
	plan->seccomp_log = spec->seccomp_log;
	if (spec->seccomp_log)
		plan->warnings |= SANDBOX_WARN_SECCOMP_LOG;
out:
	seccomp_release(ctx);
	free(allowed);
	return r;
}
