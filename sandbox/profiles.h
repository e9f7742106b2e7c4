/* SPDX-License-Identifier: MIT */
/*
 * The named seccomp profiles: which system calls each allows and why.
 * docs/sandbox.md carries the same table; a unit test keeps them in step.
 */
#ifndef CONDUIT_SANDBOX_PROFILES_H
#define CONDUIT_SANDBOX_PROFILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/layer-spec.h"

/* Every layer gets the base set: what a C program needs to be loaded, run
 * and exit.  Not selectable; the other bits are enum layer_profile. */
#define PROFILE_BASE (1u << 31)
#define PROFILE_ALL                                                                                \
	(PROFILE_BASE | LAYER_PROFILE_STDIO | LAYER_PROFILE_TTY | LAYER_PROFILE_RECVFD |           \
	 LAYER_PROFILE_TIME | LAYER_PROFILE_NET_CLIENT)

/* Largest syscall number the profile tables deal in (x86_64 uses < 512;
 * the x32 range starts at 512 and is killed with the architecture). */
#define PROFILE_NR_MAX 1024

enum profile_cond {
	PROFILE_COND_NONE = 0,
	PROFILE_COND_IOCTL,    /* request compared on its low 32 bits against the ioctl table */
	PROFILE_COND_CLONE,    /* no CLONE_NEW* flag: threads and (NPROC-bounded) fork only */
	PROFILE_COND_EXECVEAT, /* only the plan's exec fd with AT_EMPTY_PATH */
	PROFILE_COND_PRCTL,    /* only PR_GET_SECCOMP and PR_SET_DUMPABLE 0 */
	PROFILE_COND_SELF,     /* first argument 0: the calling process only */
};

struct profile_syscall {
	const char *name;
	uint32_t profiles; /* PROFILE_BASE or LAYER_PROFILE_* bits that allow it */
	enum profile_cond cond;
	const char *why;
};

struct profile_ioctl {
	const char *name;
	unsigned long request;
	uint32_t profiles;
	const char *why;
};

extern const struct profile_syscall profile_syscalls[];
extern const size_t profile_nsyscalls;
extern const struct profile_ioctl profile_ioctls[];
extern const size_t profile_nioctls;
/* Syscalls no profile and no policy extra may allow. */
extern const char *const profile_never[];
extern const size_t profile_nnever;
/* Name of a profile bit ("stdio", ...; "base"); NULL if unknown. */
const char *profile_name(uint32_t bit);

/* The set of syscall numbers spec allows (unconditionally or under a
 * condition), after extras.  ret_allowed has PROFILE_NR_MAX entries.
 * Errors: -EINVAL (unknown syscall name in an extra), -EPERM (an extra
 * names a syscall from profile_never, or denies one the sandbox itself
 * needs: execveat, exit_group, write). */
int profile_allowed_set(const struct layer_spec *spec, bool *ret_allowed);

#endif
