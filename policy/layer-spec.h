/* SPDX-License-Identifier: MIT */
/*
 * The compiled sandbox part of one layer: what the policy compiler produces
 * for `layer NAME { ... }` and what sandbox/ applies between fork and exec.
 * Plain data, no pointers into anything but the compiled policy's arena;
 * immutable once compiled.
 */
#ifndef CONDUIT_POLICY_LAYER_SPEC_H
#define CONDUIT_POLICY_LAYER_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum layer_user_kind {
	LAYER_USER_DYNAMIC = 1, /* a fresh uid/gid from the reserved range (sandbox/) */
	LAYER_USER_ID = 2,      /* numeric uid/gid from the policy */
	LAYER_USER_NAME = 3,    /* names, resolved by the broker before fork */
};

/* Bits for named seccomp profiles; sandbox/ defines each list of syscalls. */
enum layer_profile {
	LAYER_PROFILE_STDIO = 1u << 0,
	LAYER_PROFILE_TTY = 1u << 1,
	LAYER_PROFILE_RECVFD = 1u << 2,
	LAYER_PROFILE_TIME = 1u << 3,
	LAYER_PROFILE_NET_CLIENT = 1u << 4,
};

/* Bits for namespaces the layer is put in (new, empty ones). */
enum layer_ns {
	LAYER_NS_NET = 1u << 0,
	LAYER_NS_IPC = 1u << 1,
	LAYER_NS_UTS = 1u << 2,
	LAYER_NS_PID = 1u << 3,
	LAYER_NS_MOUNT = 1u << 4,
};

#define LAYER_LIMIT_UNSET UINT64_MAX

struct layer_limits {
	uint64_t memory; /* bytes, RLIMIT_AS and RLIMIT_DATA */
	uint64_t files;  /* RLIMIT_NOFILE */
	uint64_t procs;  /* RLIMIT_NPROC: 0 = no fork */
	uint64_t cpu;    /* seconds, RLIMIT_CPU */
	uint64_t fsize;  /* bytes, RLIMIT_FSIZE */
};

struct layer_path {
	const char *path;
	bool write; /* false: read-only (and execute), true: read-write */
};

/* What every layer's environment holds besides its allowlist, "NAME=value":
 * no restartable-sequence area (sandbox.h, sandbox_env_layer, says why).  A
 * variable of that name that the allowlist passes through and that is set
 * replaces it whole.  Here so that the sandbox and `conduit-policy explain`
 * say the same. */
#define LAYER_ENV_DEFAULT "GLIBC_TUNABLES=glibc.pthread.rseq=0"

struct layer_spec {
	const char *name;
	const char *exec;  /* absolute path */
	const char *const *argv; /* argv[0..nargv-1], NULL-terminated */
	size_t nargv;
	const char *const *env_allow; /* environment variable names passed through */
	size_t nenv_allow;

	enum layer_user_kind user_kind;
	uid_t uid;              /* LAYER_USER_ID */
	gid_t gid;
	const char *user_name;  /* LAYER_USER_NAME */
	const char *group_name; /* NULL: the user's primary group */

	uint32_t profiles;                  /* enum layer_profile bits */
	const char *const *syscalls_allow; /* extra syscall names */
	size_t nsyscalls_allow;
	const char *const *syscalls_deny;
	size_t nsyscalls_deny;
	bool seccomp_log; /* commissioning: log instead of kill */

	const struct layer_path *landlock;
	size_t nlandlock;
	int landlock_min_abi; /* 0: best effort; N: fail closed below ABI N */

	uint32_t namespaces; /* enum layer_ns bits */
	struct layer_limits limits;
	bool has_network_resource; /* a connect/listen resource: keep the net namespace */
};

#endif
