/* SPDX-License-Identifier: MIT */
/*
 * The seccomp profiles as data.  A syscall is here only with a reason; what
 * is not here kills the process.  Paths are Landlock's job: seccomp cannot
 * see them, so openat is in the base set and Landlock decides what opens.
 */
#include <errno.h>
#include <seccomp.h>
#include <string.h>
#include <sys/ioctl.h>

#include "profiles.h"

#define B  PROFILE_BASE
#define S  LAYER_PROFILE_STDIO
#define T  LAYER_PROFILE_TTY
#define R  LAYER_PROFILE_RECVFD
#define TM LAYER_PROFILE_TIME
#define N  LAYER_PROFILE_NET_CLIENT

const struct profile_syscall profile_syscalls[] = {
	/* base: load, run and leave a C program */
	{"execveat", B, PROFILE_COND_EXECVEAT, "the layer's own exec, by the plan's fd only"},
	{"exit", B, 0, "end a thread"},
	{"exit_group", B, 0, "end the process"},
	{"rt_sigreturn", B, 0, "return from a signal handler"},
	{"restart_syscall", B, 0,
	 "the kernel resuming a sleep or wait interrupted by a stop (SIGSTOP/SIGCONT, a debugger "
	 "attaching)"},
	{"brk", B, 0, "malloc"},
	{"mmap", B, 0, "malloc, the loader mapping the program"},
	{"munmap", B, 0, "malloc, the loader"},
	{"mremap", B, 0, "realloc of large blocks"},
	{"mprotect", B, 0, "the loader (RELRO), guard pages"},
	{"madvise", B, 0, "malloc returning memory"},
	{"read", B, 0, "read an fd the layer holds"},
	{"write", B, 0, "write an fd the layer holds; the status pipe"},
	{"readv", B, 0, "stdio"},
	{"writev", B, 0, "stdio"},
	{"pread64", B, 0, "the loader reading ELF headers"},
	{"pwrite64", B, 0, "positioned writes on held fds"},
	{"close", B, 0, "release fds"},
	{"lseek", B, 0, "stdio on files"},
	{"fstat", B, 0, "stdio buffering, the loader"},
	{"newfstatat", B, 0, "fstat by glibc, the loader"},
	{"statx", B, 0, "stat by newer libcs"},
	{"fcntl", B, 0, "fd flags (non-blocking, close-on-exec)"},
	{"openat", B, 0, "the loader and configuration files; Landlock confines the paths"},
	{"access", B, 0, "the loader probing /etc/ld.so.preload; Landlock confines"},
	{"faccessat", B, 0, "as access"},
	{"readlink", B, 0, "the loader resolving its origin; Landlock confines"},
	{"arch_prctl", B, 0, "libc sets up thread-local storage"},
	{"set_tid_address", B, 0, "libc start-up"},
	{"set_robust_list", B, 0, "libc start-up, robust mutexes"},
	{"rseq", B, 0, "libc start-up (restartable sequences)"},
	{"prlimit64", B, PROFILE_COND_SELF, "getrlimit/setrlimit on itself (pid 0) only"},
	{"getrandom", B, 0, "malloc and stack-protector seeds, libsodium"},
	{"futex", B, 0, "locks in libc"},
	{"rt_sigaction", B, 0, "install signal handlers"},
	{"rt_sigprocmask", B, 0, "block signals"},
	{"sigaltstack", B, 0, "stack-overflow handlers"},
	{"getpid", B, 0, "own identity"},
	{"gettid", B, 0, "own identity"},
	{"getppid", B, 0, "notice the broker is gone"},
	{"getuid", B, 0, "own identity"},
	{"geteuid", B, 0, "own identity"},
	{"getgid", B, 0, "own identity"},
	{"getegid", B, 0, "own identity"},
	{"getresuid", B, 0, "own identity"},
	{"getresgid", B, 0, "own identity"},
	{"getgroups", B, 0, "own identity (empty)"},
	{"clock_gettime", B, 0, "vDSO fallback"},
	{"gettimeofday", B, 0, "vDSO fallback"},
	{"sched_yield", B, 0, "spin locks"},
	{"sched_getaffinity", B, 0, "libc counting CPUs"},
	{"prctl", B, PROFILE_COND_PRCTL,
	 "the sandbox verifies its filter; the layer turns dumpable off"},
	{"ioctl", B | T, PROFILE_COND_IOCTL, "only the requests in the ioctl table"},
	/* stdio: work with the fds the layer was given */
	{"poll", S, 0, "event loop"},
	{"ppoll", S, 0, "event loop"},
	{"select", S, 0, "event loop"},
	{"pselect6", S, 0, "event loop"},
	{"epoll_create1", S, 0, "event loop"},
	{"epoll_ctl", S, 0, "event loop"},
	{"epoll_wait", S, 0, "event loop"},
	{"epoll_pwait", S, 0, "event loop"},
	{"epoll_pwait2", S, 0, "event loop"},
	{"pipe2", S, 0, "wake-ups inside the process"},
	{"eventfd2", S, 0, "wake-ups inside the process"},
	{"dup", S, 0, "fd juggling"},
	{"dup2", S, 0, "fd juggling"},
	{"dup3", S, 0, "fd juggling"},
	{"sendto", S | N, 0, "send on a held socket (cannot carry fds)"},
	{"recvfrom", S | N, 0, "receive on a held socket (cannot carry fds)"},
	{"shutdown", S | N, 0, "half-close a held socket"},
	{"ftruncate", S, 0, "files the broker passed; RLIMIT_FSIZE bounds"},
	{"fsync", S, 0, "files the broker passed"},
	{"fdatasync", S, 0, "files the broker passed"},
	{"getcwd", S, 0, "libc path handling"},
	{"uname", S, 0, "libc feature checks"},
	{"clone", S, PROFILE_COND_CLONE, "threads; no CLONE_NEW*; RLIMIT_NPROC bounds fork"},
	{"wait4", S, 0, "reap own children"},
	{"waitid", S, 0, "reap own children"},
	/* recvfd: fd passing (the channel itself uses these) */
	{"recvmsg", R | N, 0, "receive frames and SCM_RIGHTS fds"},
	{"sendmsg", R | N, 0, "send frames and SCM_RIGHTS fds"},
	{"mlock", R, 0, "libconduit keeps channel keys in locked memory (sodium_malloc)"},
	{"munlock", R, 0, "libconduit wipes and unlocks key memory on close"},
	{"memfd_create", R, 0, "libconduit seals long bytes values into memfds (bulk)"},
	/* time */
	{"nanosleep", TM, 0, "sleep"},
	{"clock_nanosleep", TM, 0, "sleep"},
	{"clock_getres", TM, 0, "timer resolution"},
	{"timerfd_create", TM, 0, "periodic work in an event loop"},
	{"timerfd_settime", TM, 0, "periodic work in an event loop"},
	{"timerfd_gettime", TM, 0, "periodic work in an event loop"},
	{"setitimer", TM, 0, "interval timers"},
	{"getitimer", TM, 0, "interval timers"},
	{"alarm", TM, 0, "timeouts"},
	{"times", TM, 0, "CPU accounting"},
	{"getrusage", TM, 0, "CPU accounting"},
	/* net-client: sockets the broker connected and passed; no socket(), connect() or bind() */
	{"getsockopt", R | N, 0, "the channel's SO_TYPE check; SO_ERROR of a passed socket"},
	{"setsockopt", N, 0, "timeouts, TCP_NODELAY on a passed socket"},
	{"getsockname", N, 0, "addresses of a passed socket"},
	{"getpeername", N, 0, "addresses of a passed socket"},
	{"sendmmsg", N, 0, "batched sends on a passed socket"},
	{"recvmmsg", N, 0, "batched receives on a passed socket"},
};
const size_t profile_nsyscalls = sizeof(profile_syscalls) / sizeof(profile_syscalls[0]);

const struct profile_ioctl profile_ioctls[] = {
	{"FIONREAD", FIONREAD, B, "bytes waiting on an fd"},
	{"FIONBIO", FIONBIO, B, "non-blocking mode"},
	{"FIOCLEX", FIOCLEX, B, "close-on-exec"},
	{"FIONCLEX", FIONCLEX, B, "close-on-exec"},
	{"TCGETS", TCGETS, B, "isatty() in stdio buffering; ENOTTY on pipes"},
	{"TCSETS", TCSETS, T, "terminal modes of a passed tty"},
	{"TCSETSW", TCSETSW, T, "terminal modes of a passed tty"},
	{"TCSETSF", TCSETSF, T, "terminal modes of a passed tty"},
	{"TCFLSH", TCFLSH, T, "flush a passed tty"},
	{"TIOCGWINSZ", TIOCGWINSZ, T, "window size of a passed tty"},
	{"TIOCSWINSZ", TIOCSWINSZ, T, "window size of a passed tty"},
	{"TIOCGPGRP", TIOCGPGRP, T, "job-control queries by curses"},
};
const size_t profile_nioctls = sizeof(profile_ioctls) / sizeof(profile_ioctls[0]);

const char *const profile_never[] = {
	"execve", /* only the plan's execveat: nothing else runs in the sandbox */
	"ptrace",
	"process_vm_readv",
	"process_vm_writev",
	"kcmp",
	"pidfd_getfd",
	"bpf",
	"perf_event_open",
	"userfaultfd",
	"io_uring_setup",
	"io_uring_enter",
	"io_uring_register", /* invisible to seccomp once set up */
	"keyctl",
	"add_key",
	"request_key",
	"mount",
	"umount2",
	"pivot_root",
	"chroot",
	"setns",
	"unshare",
	"mount_setattr",
	"fsopen",
	"fsconfig",
	"fsmount",
	"fspick",
	"move_mount",
	"open_tree",
	"personality",
	"kexec_load",
	"kexec_file_load",
	"init_module",
	"finit_module",
	"delete_module",
	"reboot",
	"swapon",
	"swapoff",
	"acct",
	"quotactl",
	"syslog",
	"iopl",
	"ioperm",
	"modify_ldt",
	"vhangup",
	"name_to_handle_at",
	"open_by_handle_at",
	"lookup_dcookie",
	"fanotify_init",
	"clone3", /* answered with ENOSYS so libc falls back to clone */
};
const size_t profile_nnever = sizeof(profile_never) / sizeof(profile_never[0]);

/* The sandbox itself needs these after seccomp is on: exec, and reporting
 * a failed exec on the status pipe. */
static const char *const profile_needed[] = {"execveat", "exit_group", "write"};

const char *profile_name(uint32_t bit)
{
	switch (bit) {
	case PROFILE_BASE:
		return "base";
	case LAYER_PROFILE_STDIO:
		return "stdio";
	case LAYER_PROFILE_TTY:
		return "tty";
	case LAYER_PROFILE_RECVFD:
		return "recvfd";
	case LAYER_PROFILE_TIME:
		return "time";
	case LAYER_PROFILE_NET_CLIENT:
		return "net-client";
	default:
		return NULL;
	}
}

static bool name_in(const char *name, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(name, list[i]) == 0)
			return true;
	return false;
}

/* Native (x86_64) number of a syscall name; -EINVAL if unknown. */
static int profile_resolve(const char *name)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr < 0 || nr >= PROFILE_NR_MAX)
		return -EINVAL;
	return nr;
}

int profile_allowed_set(const struct layer_spec *spec, bool *ret_allowed)
{
	uint32_t bits = PROFILE_BASE | spec->profiles;
	bool set[PROFILE_NR_MAX] = {false};

	if (spec->profiles & ~(PROFILE_ALL & ~PROFILE_BASE))
		return -EINVAL;
	for (size_t i = 0; i < profile_nsyscalls; i++) {
		if (!(profile_syscalls[i].profiles & bits))
			continue;
		int nr = profile_resolve(profile_syscalls[i].name);
		/* A name this kernel's table lacks is simply not allowed. */
		if (nr >= 0)
			set[nr] = true;
	}
	for (size_t i = 0; i < spec->nsyscalls_allow; i++) {
		const char *name = spec->syscalls_allow[i];
		if (!name)
			return -EINVAL;
		if (name_in(name, profile_never, profile_nnever))
			return -EPERM;
		int nr = profile_resolve(name);
		if (nr < 0)
			return nr;
		set[nr] = true;
	}
	for (size_t i = 0; i < spec->nsyscalls_deny; i++) {
		const char *name = spec->syscalls_deny[i];
		if (!name)
			return -EINVAL;
		if (name_in(name, profile_needed,
			    sizeof(profile_needed) / sizeof(profile_needed[0])))
			return -EPERM;
		int nr = profile_resolve(name);
		if (nr < 0)
			return nr;
		set[nr] = false;
	}
	memcpy(ret_allowed, set, sizeof(set));
	return 0;
}
