/* SPDX-License-Identifier: MIT */
/*
 * A program the sandbox tests run inside the sandbox: it reports what it
 * sees, or tries one forbidden thing.  Linked statically and without
 * sanitizers, so that it needs no file access to start and no syscalls
 * beyond the base profile.  Output: "key value" lines on stdout.
 *
 *   status                 /proc/self/status lines, fds, rlimits, tty, env
 *   sweep FROM TO MODE     fork per number, try it with bad arguments;
 *                          MODE native | x32 | int80; prints "nr outcome"
 *   ioctl REQ              ioctl(0, REQ) with REQ passed as 64 bits
 *   ptrace-parent | kill-parent | clone3 | fork | setuid0
 *   open PATH | create PATH
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void print_status_lines(void)
{
	static const char *const keys[] = {
		"Uid:",	   "Gid:",    "Groups:", "CapInh:",	"CapPrm:",
		"CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:", "Seccomp:"};
	char line[512];
	FILE *f = fopen("/proc/self/status", "re");

	if (!f) {
		printf("error status %d\n", errno);
		return;
	}
	while (fgets(line, sizeof(line), f))
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strncmp(line, keys[i], strlen(keys[i])) == 0)
				fputs(line, stdout);
	fclose(f);
}

static void print_fds(void)
{
	char buf[4096] __attribute__((aligned(8)));
	int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0) {
		printf("error fds %d\n", errno);
		return;
	}
	fputs("fds", stdout);
	for (;;) {
		long n = syscall(SYS_getdents64, dfd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (long off = 0; off < n;) {
			unsigned short reclen;
			memcpy(&reclen, buf + off + 16, sizeof(reclen));
			const char *name = buf + off + 19;
			off += reclen;
			if (name[0] != '.' && atoi(name) != dfd)
				printf(" %s", name);
		}
	}
	fputs("\n", stdout);
	close(dfd);
}

static void print_rlimits(void)
{
	static const struct {
		const char *name;
		int res;
	} r[] = {{"core", RLIMIT_CORE}, {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC},
		 {"as", RLIMIT_AS},	{"data", RLIMIT_DATA},	   {"fsize", RLIMIT_FSIZE},
		 {"cpu", RLIMIT_CPU}};

	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		struct rlimit l;
		if (getrlimit(r[i].res, &l) == 0)
			printf("rlimit_%s %llu %llu\n", r[i].name, (unsigned long long)l.rlim_cur,
			       (unsigned long long)l.rlim_max);
	}
}

static void print_stat(void)
{
	char buf[1024];
	FILE *f = fopen("/proc/self/stat", "re");

	if (!f || !fgets(buf, sizeof(buf), f)) {
		printf("error stat %d\n", errno);
		if (f)
			fclose(f);
		return;
	}
	fclose(f);
	/* After "(comm)": state ppid pgrp session tty_nr */
	char *p = strrchr(buf, ')');
	int ppid = 0, pgrp = 0, session = 0, tty = -1;
	char state;
	if (p && sscanf(p + 2, "%c %d %d %d %d", &state, &ppid, &pgrp, &session, &tty) == 5)
		printf("pid %d\nsession %d\ntty_nr %d\n", (int)getpid(), session, tty);
}

static void print_ns(void)
{
	static const char *const ns[] = {"net", "ipc", "uts", "mnt", "pid_for_children"};
	char path[64], buf[128];

	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		snprintf(path, sizeof(path), "/proc/self/ns/%s", ns[i]);
		ssize_t n = readlink(path, buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = '\0';
			printf("ns_%s %s\n", ns[i], buf);
		}
	}
}

static int cmd_status(void)
{
	print_ns();
	print_status_lines();
	print_fds();
	print_rlimits();
	print_stat();
	for (char **e = environ; *e; e++)
		printf("env %s\n", *e);
	return 0;
}

static long try_one(const char *mode, long nr)
{
	const long bad = -1;

	if (strcmp(mode, "x32") == 0)
		return syscall(nr | 0x40000000L, bad, bad, bad, bad, bad, bad);
	if (strcmp(mode, "int80") == 0) {
		long ret;
		/* The i386 entry from a 64-bit process: its own syscall table. */
		__asm__ volatile("int $0x80"
				 : "=a"(ret)
				 : "a"(nr), "b"(bad), "c"(bad), "d"(bad), "S"(bad), "D"(bad)
				 : "memory");
		if (ret < 0 && ret > -4096) {
			errno = (int)-ret;
			return -1;
		}
		return ret;
	}
	return syscall(nr, bad, bad, bad, bad, bad, bad);
}

/* Exit codes of the forked child: 0 ran and succeeded, 1..254 ran and failed
 * with that errno, 255 errno out of range. */
static int cmd_sweep(long from, long to, const char *mode)
{
	for (long nr = from; nr <= to; nr++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid < 0) {
			printf("%ld fork-failed %d\n", nr, errno);
			return 1;
		}
		if (pid == 0) {
			long r = try_one(mode, nr);
			_exit(r >= 0 ? 0 : (errno > 0 && errno < 255 ? errno : 255));
		}
		int st;
		while (waitpid(pid, &st, 0) < 0)
			if (errno != EINTR)
				return 1;
		if (WIFSIGNALED(st))
			printf("%ld sig %d\n", nr, WTERMSIG(st));
		else
			printf("%ld exit %d\n", nr, WEXITSTATUS(st));
	}
	return 0;
}

static void *thread_violates(void *arg)
{
	(void)arg;
	syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
	return NULL;
}

/* A thread breaks the profile: the whole process must die, not just the
 * thread.  Also shows pthread_create working (clone3 -> ENOSYS -> clone). */
static int cmd_thread_violation(void)
{
	pthread_t t;
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return 4;
	int e = pthread_create(&t, NULL, thread_violates, NULL);
	if (e != 0) {
		printf("errno %d\n", e);
		return 5;
	}
	/* Safety bound only: with the process killed this never returns. */
	struct pollfd pf = {.fd = p[0], .events = POLLIN};
	poll(&pf, 1, 10000);
	printf("survived\n");
	return 3;
}

static int report(long r)
{
	if (r < 0)
		printf("errno %d\n", errno);
	else
		printf("ret %ld\n", r);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *cmd = argv[1];
	if (strcmp(cmd, "status") == 0)
		return cmd_status();
	if (strcmp(cmd, "sweep") == 0 && argc == 5)
		return cmd_sweep(strtol(argv[2], NULL, 0), strtol(argv[3], NULL, 0), argv[4]);
	if (strcmp(cmd, "ioctl") == 0 && argc == 3) {
		char c = 'x';
		unsigned long req = strtoul(argv[2], NULL, 0);
		return report(syscall(SYS_ioctl, 0, req, &c));
	}
	if (strcmp(cmd, "ptrace-parent") == 0)
		return report(syscall(SYS_ptrace, PTRACE_ATTACH, getppid(), 0, 0));
	if (strcmp(cmd, "kill-parent") == 0) /* SIGURG: harmless if it ever got through */
		return report(syscall(SYS_kill, getppid(), SIGURG));
	if (strcmp(cmd, "clone3") == 0)
		return report(syscall(SYS_clone3, NULL, 0));
	if (strcmp(cmd, "fork") == 0) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(0);
		if (pid > 0)
			waitpid(pid, NULL, 0);
		return report(pid);
	}
	if (strcmp(cmd, "block") == 0 && argc == 3) {
		/* Wait until the fd reaches EOF: for parent-death tests. */
		char c;
		while (read(atoi(argv[2]), &c, 1) > 0)
			;
		return 0;
	}
	if (strcmp(cmd, "undump") == 0) {
		/* What libconduit's layer side does after exec. */
		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
			return report(-1);
		/* Non-dumpable: /proc/self turns root's, environ (0400) closes. */
		return report(open("/proc/self/environ", O_RDONLY | O_CLOEXEC));
	}
	if (strcmp(cmd, "thread-violation") == 0)
		return cmd_thread_violation();
	if (strcmp(cmd, "setuid0") == 0)
		return report(syscall(SYS_setresuid, 0, 0, 0));
	if (strcmp(cmd, "open") == 0 && argc == 3)
		return report(open(argv[2], O_RDONLY | O_CLOEXEC));
	if (strcmp(cmd, "create") == 0 && argc == 3)
		return report(open(argv[2], O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	return 2;
}
