/* SPDX-License-Identifier: MIT */
/*
 * conduit-sandbox: run any program under one layer's sandbox from a policy,
 * so layer authors can see what their code may do before the broker runs
 * it.  docs/man/conduit-sandbox.1 documents options and exit codes.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/audit.h>
#include <linux/netlink.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "policy.h"
#include "sandbox.h"

/* Exit codes (conduit-sandbox(1), EXIT STATUS). */
#define EXIT_SANDBOX_FAILED 125 /* usage, policy, or a setup step: CMD never ran */
#define EXIT_CANNOT_EXEC    126
#define EXIT_NOT_FOUND	    127
#define EXIT_SIGNAL_BASE    128 /* + signal number; SIGSYS (159) is a seccomp kill */

_Static_assert(SANDBOX_DYNAMIC_UID_MIN == POLICY_DYNAMIC_UID_MIN &&
		       SANDBOX_DYNAMIC_UID_MAX == POLICY_DYNAMIC_UID_MAX,
	       "sandbox/ and policy/ must agree on the dynamic uid range");

static volatile sig_atomic_t child_pid;

static void usage(FILE *f)
{
	fputs("Usage: conduit-sandbox --policy FILE --layer NAME [--] CMD [ARGS...]\n"
	      "Run CMD under the sandbox the policy gives layer NAME.\n\n"
	      "  -p, --policy FILE  compiled policy to read\n"
	      "  -l, --layer NAME   layer whose sandbox to apply\n"
	      "  -h, --help         show this help\n"
	      "  -V, --version      show the version\n\n"
	      "Exit status: CMD's, 125 when the sandbox could not be set up, 126/127 when\n"
	      "CMD cannot be executed / is not found, 128+N when CMD was killed by signal N\n"
	      "(159: seccomp killed it for a syscall outside the profile).\n",
	      f);
}

/* Forward termination requests: the child has its own session, so the
 * terminal's signals do not reach it. */
static void on_signal(int sig)
{
	if (child_pid > 0)
		kill((pid_t)child_pid, sig);
}

/* PATH lookup in the caller's environment, before any privilege change. */
static int find_command(const char *cmd, char *buf, size_t len)
{
	if (strchr(cmd, '/')) {
		if ((size_t)snprintf(buf, len, "%s", cmd) >= len)
			return -ENAMETOOLONG;
		return access(buf, F_OK) == 0 ? 0 : -errno;
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *end = strchr(path, ':');
		size_t dl = end ? (size_t)(end - path) : strlen(path);
		if (dl > 0) {
			int n = snprintf(buf, len, "%.*s/%s", (int)dl, path, cmd);
			if (n > 0 && (size_t)n < len && access(buf, X_OK) == 0)
				return 0;
		}
		path += dl + (end ? 1 : 0);
	}
	return -ENOENT;
}

/* The syscall number from one audit text record for pid, or -1. */
static int audit_record_syscall(const char *rec, pid_t pid)
{
	char needle[32];

	snprintf(needle, sizeof(needle), " pid=%d ", (int)pid);
	const char *s = strstr(rec, needle);
	if (!s)
		return -1;
	const char *sc = strstr(s, " syscall=");
	return sc ? atoi(sc + 9) : -1;
}

/* Audit's read-only multicast group: seccomp kill records (type 1326)
 * arrive here whole, without the printk rate limit that drops them from
 * the kernel log after a burst.  Opened before the spawn; -1 if not
 * permitted (needs CAP_AUDIT_READ). */
static int audit_open(void)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK,
				 .nl_groups = 1u << (AUDIT_NLGRP_READLOG - 1)};
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_AUDIT);

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read fd (netlink audit when is_nl, else /dev/kmsg) for pid's seccomp
 * record; kauditd delivers asynchronously, so wait up to 1 s for it. */
static int audit_find(int fd, bool is_nl, pid_t pid)
{
	char buf[8192 + 1] __attribute__((aligned(8)));
	int nr = -1;

	for (int waits = 0; nr < 0 && waits < 10;) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		if (n < 0 && errno == EPIPE)
			continue; /* kmsg: an overwritten record, go on */
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd p = {.fd = fd, .events = POLLIN};
			if (poll(&p, 1, 100) < 0 && errno != EINTR)
				break;
			waits++;
			continue;
		}
		if (n <= 0)
			break;
		buf[n] = '\0';
		if (!is_nl) {
			if (strstr(buf, "type=1326"))
				nr = audit_record_syscall(buf, pid);
			continue;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type != AUDIT_SECCOMP)
				continue;
			/* The payload is text, not always NUL-terminated. */
			char *text = NLMSG_DATA(h);
			size_t len = NLMSG_PAYLOAD(h, 0);
			if (text + len > buf + sizeof(buf) - 1)
				continue;
			char saved = text[len];
			text[len] = '\0';
			int v = audit_record_syscall(text, pid);
			text[len] = saved;
			if (v >= 0)
				nr = v;
		}
	}
	return nr;
}

/* Which syscall seccomp killed pid for: from the audit socket, else from
 * /dev/kmsg.  Best effort: -1 when neither says (auditd may own records). */
static int seccomp_killed_syscall(int audit_fd, pid_t pid)
{
	int nr = audit_fd >= 0 ? audit_find(audit_fd, true, pid) : -1;

	if (nr < 0) {
		int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			nr = audit_find(fd, false, pid);
			close(fd);
		}
	}
	return nr;
}

/* Copy the child's stdout/stderr pipes to ours until both reach EOF. */
static void relay(int out_fd, int err_fd)
{
	struct pollfd p[2] = {{.fd = out_fd, .events = POLLIN}, {.fd = err_fd, .events = POLLIN}};
	const int dst[2] = {STDOUT_FILENO, STDERR_FILENO};
	char buf[16384];

	while (p[0].fd >= 0 || p[1].fd >= 0) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				close(p[i].fd);
				p[i].fd = -1;
				continue;
			}
			for (ssize_t off = 0; off < n;) {
				ssize_t w = write(dst[i], buf + off, (size_t)(n - off));
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0)
					break; /* our output is gone: keep draining */
				off += w;
			}
		}
	}
}

static int exit_code_for(int audit_fd, pid_t pid, int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (!WIFSIGNALED(status))
		return EXIT_SANDBOX_FAILED;
	int sig = WTERMSIG(status);
	if (sig == SIGSYS) {
		int nr = seccomp_killed_syscall(audit_fd, pid);
		char *name =
			nr >= 0 ? seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr) : NULL;
		if (name)
			fprintf(stderr,
				"conduit-sandbox: killed by seccomp: syscall %s (%d) is outside "
				"the "
				"layer's profile\n",
				name, nr);
		else
			fprintf(stderr, "conduit-sandbox: killed by seccomp (SIGSYS); the kernel "
					"log did not name the syscall\n");
		free(name);
	} else {
		fprintf(stderr, "conduit-sandbox: killed by signal %d (%s)\n", sig, strsignal(sig));
	}
	return EXIT_SIGNAL_BASE + sig;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"policy", required_argument, NULL, 'p'},
		{"layer", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *policy_path = NULL, *layer = NULL;
	struct policy *pol = NULL;
	struct sandbox_plan *plan = NULL;
	struct sandbox_options so;
	struct sandbox_status failure;
	char cmd[4096], warn[512];
	int out[2] = {-1, -1}, err[2] = {-1, -1};
	int c, r, ret = EXIT_SANDBOX_FAILED, audit_fd = -1;
	pid_t pid;

	/* '+': stop at CMD, so its own options are left alone. */
	while ((c = getopt_long(argc, argv, "+p:l:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			policy_path = optarg;
			break;
		case 'l':
			layer = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("conduit-sandbox %s\n", CONDUIT_VERSION);
			return 0;
		default:
			usage(stderr);
			return EXIT_SANDBOX_FAILED;
		}
	}
	if (!policy_path || !layer || optind >= argc) {
		fprintf(stderr, "conduit-sandbox: --policy, --layer and a command are required\n");
		usage(stderr);
		return EXIT_SANDBOX_FAILED;
	}
	r = policy_compile_file(policy_path, stderr, &pol);
	if (r < 0) {
		fprintf(stderr, "conduit-sandbox: %s: %s\n", policy_path,
			r == -EINVAL ? "the policy has errors" : strerror(-r));
		goto out;
	}
	const struct layer_spec *spec = policy_layer_spec(pol, layer);
	if (!spec) {
		fprintf(stderr, "conduit-sandbox: %s: no layer '%s'\n", policy_path, layer);
		goto out;
	}
	r = find_command(argv[optind], cmd, sizeof(cmd));
	if (r < 0) {
		fprintf(stderr, "conduit-sandbox: %s: %s\n", argv[optind], strerror(-r));
		ret = EXIT_NOT_FOUND;
		goto out;
	}
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		fprintf(stderr, "conduit-sandbox: pipe: %s\n", strerror(errno));
		goto out;
	}
	sandbox_options_init(&so);
	so.stdio[1] = out[1]; /* a log pipe we relay, never our terminal */
	so.stdio[2] = err[1];
	so.exec = cmd;
	so.argv = (const char *const *)&argv[optind];
	so.env_set = sandbox_env_layer; /* as the broker runs it */
	r = sandbox_plan_new(spec, &so, &plan);
	if (r < 0) {
		fprintf(stderr, "conduit-sandbox: layer '%s': cannot prepare the sandbox: %s\n",
			layer, strerror(-r));
		goto out;
	}
	if (sandbox_plan_warning(plan, warn, sizeof(warn)) > 0)
		fprintf(stderr, "conduit-sandbox: %s\n", warn);
	audit_fd = audit_open();
	r = sandbox_spawn(plan, &pid, &failure);
	close(out[1]);
	close(err[1]);
	out[1] = err[1] = -1;
	if (r == -ECHILD) {
		fprintf(stderr, "conduit-sandbox: step %s failed: %s (the command never ran)\n",
			sandbox_step_name(failure.step), strerror(failure.err));
		if (failure.step == SANDBOX_STEP_EXEC)
			ret = failure.err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
		goto out;
	}
	if (r < 0) {
		fprintf(stderr, "conduit-sandbox: spawn: %s\n", strerror(-r));
		goto out;
	}
	child_pid = pid;
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	relay(out[0], err[0]);
	out[0] = err[0] = -1;
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "conduit-sandbox: waitpid: %s\n", strerror(errno));
			goto out;
		}
	}
	child_pid = 0;
	ret = exit_code_for(audit_fd, pid, status);
out:
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	if (audit_fd >= 0)
		close(audit_fd);
	sandbox_plan_free(plan);
	policy_free(pol);
	return ret;
}
