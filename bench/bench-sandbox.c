/* SPDX-License-Identifier: MIT */
/*
 * Time to start 16 sandboxed layers (DESIGN.md target: < 100 ms): plan
 * (dynamic uid, Landlock ruleset, seccomp BPF) and spawn (fork, every step,
 * exec of /usr/bin/true), with and without the empty network namespace.
 * Needs root (dynamic users).  Usage: conduit-bench-sandbox [ROUNDS]
 *
 * conduit-bench-sandbox --syscalls [ITERS]: what the layer's seccomp filter
 * (profiles "stdio recvfd", as the sandbox module compiles it) costs per
 * system call.  A forked child, pinned to one CPU, times getppid() and a
 * one-byte read() in a loop, installs the plan's BPF program as the layer
 * does (no_new_privs, seccomp(2)) and times them again; medians of
 * batches.  It also runs the program on each call's seccomp_data in a small
 * BPF interpreter and prints the instructions the kernel executes for it,
 * a figure free of the machine's noise.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <termios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox-internal.h"
#include "sandbox.h"

#define LAYERS 16

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* One round: plan and spawn LAYERS layers, then reap them.  Returns the
 * milliseconds from the first plan to the last exec, or -1.  The dynamic
 * uids are reserved in one batch first, as the broker does (one
 * account-lookup child for all); *uid_ms is that part. */
static double round_ms(const struct layer_spec *spec, double *plan_ms, double *uid_ms)
{
	struct sandbox_dynuser users[LAYERS];
	struct sandbox_plan *plans[LAYERS] = {NULL};
	pid_t pids[LAYERS];
	struct sandbox_options opts;
	struct sandbox_status failure;
	double t0 = now_ms(), t1, t2;
	int n = 0, r = 0;

	sandbox_options_init(&opts);
	r = sandbox_dynuser_reserve(NULL, LAYERS, users);
	if (r < 0) {
		fprintf(stderr, "dynamic uids: %s\n", strerror(-r));
		return -1;
	}
	*uid_ms = now_ms() - t0;
	for (int i = 0; i < LAYERS && r == 0; i++) {
		opts.dynuser = &users[i];
		r = sandbox_plan_new(spec, &opts, &plans[i]);
	}
	sandbox_dynuser_release(users, LAYERS);
	t1 = now_ms();
	for (; n < LAYERS && r == 0; n++) {
		r = sandbox_spawn(plans[n], &pids[n], &failure);
		if (r == -ECHILD)
			fprintf(stderr, "step %s failed: %s\n", sandbox_step_name(failure.step),
				strerror(failure.err));
	}
	if (r < 0)
		n--;
	t2 = now_ms();
	for (int i = 0; i < n; i++)
		waitpid(pids[i], NULL, 0);
	for (int i = 0; i < LAYERS; i++)
		sandbox_plan_free(plans[i]);
	if (r < 0) {
		fprintf(stderr, "round failed: %s\n", strerror(-r));
		return -1;
	}
	*plan_ms = t1 - t0;
	return t2 - t0;
}

static int bench(const char *label, const struct layer_spec *spec, int rounds)
{
	double *total = calloc((size_t)rounds, sizeof(double));
	double *plan = calloc((size_t)rounds, sizeof(double));
	double *uid = calloc((size_t)rounds, sizeof(double));

	if (!total || !plan || !uid)
		return 1;
	for (int i = 0; i < rounds; i++) {
		total[i] = round_ms(spec, &plan[i], &uid[i]);
		if (total[i] < 0)
			return 1;
	}
	qsort(total, (size_t)rounds, sizeof(double), cmp_double);
	qsort(plan, (size_t)rounds, sizeof(double), cmp_double);
	qsort(uid, (size_t)rounds, sizeof(double), cmp_double);
	printf("%-28s %d layers: median %.1f ms (plans %.1f ms, of which uids %.2f ms), min "
	       "%.1f, max %.1f, %d rounds\n",
	       label, LAYERS, total[rounds / 2], plan[rounds / 2], uid[rounds / 2], total[0],
	       total[rounds - 1], rounds);
	free(total);
	free(plan);
	free(uid);
	return 0;
}

/* Instructions a seccomp program executes for system call nr on x86-64
 * (arguments zero); -1 for an instruction this interpreter does not know.
 * Enough of classic BPF for what libseccomp and the sandbox's prefix emit. */
static int bpf_steps(const struct sock_filter *prog, size_t len, int nr, uint64_t arg1)
{
	struct seccomp_data d = {.nr = nr, .arch = AUDIT_ARCH_X86_64, .args = {0, arg1}};
	uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {0};
	int steps = 0;

	for (size_t pc = 0; pc < len; pc++) {
		const struct sock_filter *f = &prog[pc];
		uint32_t k = f->k, src = BPF_SRC(f->code) == BPF_X ? x : k;
		steps++;
		switch (BPF_CLASS(f->code)) {
		case BPF_LD:
			if (BPF_MODE(f->code) == BPF_ABS && k + 4 <= sizeof(d))
				memcpy(&a, (const uint8_t *)&d + k, 4);
			else if (BPF_MODE(f->code) == BPF_MEM && k < BPF_MEMWORDS)
				a = mem[k];
			else if (BPF_MODE(f->code) == BPF_IMM)
				a = k;
			else
				return -1;
			break;
		case BPF_LDX:
			if (BPF_MODE(f->code) != BPF_MEM || k >= BPF_MEMWORDS)
				return -1;
			x = mem[k];
			break;
		case BPF_ST:
		case BPF_STX:
			if (k >= BPF_MEMWORDS)
				return -1;
			mem[k] = BPF_CLASS(f->code) == BPF_ST ? a : x;
			break;
		case BPF_ALU:
			if (BPF_OP(f->code) == BPF_AND)
				a &= src;
			else if (BPF_OP(f->code) == BPF_OR)
				a |= src;
			else
				return -1;
			break;
		case BPF_JMP: {
			bool t;
			switch (BPF_OP(f->code)) {
			case BPF_JA:
				pc += k;
				continue;
			case BPF_JEQ:
				t = a == src;
				break;
			case BPF_JGT:
				t = a > src;
				break;
			case BPF_JGE:
				t = a >= src;
				break;
			case BPF_JSET:
				t = (a & src) != 0;
				break;
			default:
				return -1;
			}
			pc += t ? f->jt : f->jf;
			break;
		}
		case BPF_RET:
			return steps;
		case BPF_MISC:
			if (BPF_MISCOP(f->code) == BPF_TAX)
				x = a;
			else
				a = x;
			break;
		default:
			return -1;
		}
	}
	return -1;
}

#define SC_BATCHES 15

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Median ns per call of getppid() [0], read(fd, 1) [1] and
 * ioctl(fd, TCGETS) [2]: ENOTTY, but past the filter, which must look at
 * its argument. */
static void time_calls(int fd, long iters, double ret[3])
{
	double v[3][SC_BATCHES];
	struct termios tio;
	char c;

	for (int b = 0; b < SC_BATCHES; b++) {
		double t0 = now_ns();
		for (long i = 0; i < iters; i++)
			(void)syscall(SYS_getppid);
		double t1 = now_ns();
		for (long i = 0; i < iters; i++)
			if (read(fd, &c, 1) != 1)
				_exit(3);
		double t2 = now_ns();
		for (long i = 0; i < iters; i++)
			(void)ioctl(fd, TCGETS, &tio);
		double t3 = now_ns();
		v[0][b] = (t1 - t0) / (double)iters;
		v[1][b] = (t2 - t1) / (double)iters;
		v[2][b] = (t3 - t2) / (double)iters;
	}
	for (int k = 0; k < 3; k++) {
		qsort(v[k], SC_BATCHES, sizeof(double), cmp_double);
		ret[k] = v[k][SC_BATCHES / 2];
	}
}

static int bench_syscalls(struct layer_spec *spec, long iters)
{
	static const struct {
		const char *name;
		int nr;
	} calls[] = {
		{"getppid", SYS_getppid}, {"read", SYS_read},
		{"write", SYS_write},	  {"recvmsg", SYS_recvmsg},
		{"sendmsg", SYS_sendmsg}, {"epoll_wait", SYS_epoll_wait},
		{"futex", SYS_futex},	  {"close", SYS_close},
		{"mmap", SYS_mmap},	  {"exit_group", SYS_exit_group},
	};
	struct sandbox_options opts;
	struct sandbox_plan *plan;
	double t[2][3];
	int pfd[2], st, r;

	spec->profiles = LAYER_PROFILE_STDIO | LAYER_PROFILE_RECVFD;
	sandbox_options_init(&opts);
	r = sandbox_plan_new(spec, &opts, &plan);
	if (r < 0) {
		fprintf(stderr, "plan: %s\n", strerror(-r));
		return 1;
	}
	printf("seccomp program for \"stdio recvfd\": %u instructions\n", plan->bpf_len);
	printf("instructions executed per call:");
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
		printf(" %s %d,", calls[i].name,
		       bpf_steps(plan->bpf, plan->bpf_len, calls[i].nr, 0));
	printf(" ioctl(TCGETS) %d\n", bpf_steps(plan->bpf, plan->bpf_len, SYS_ioctl, TCGETS));
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return 1;
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		struct sock_fprog prog = {.len = plan->bpf_len, .filter = plan->bpf};
		cpu_set_t set;
		int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);

		CPU_ZERO(&set);
		CPU_SET(0, &set);
		if (zero < 0 || sched_setaffinity(0, sizeof(set), &set) < 0)
			_exit(2);
		time_calls(zero, iters, t[0]);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
			_exit(2);
		time_calls(zero, iters, t[1]);
		_exit(write(pfd[1], t, sizeof(t)) == (ssize_t)sizeof(t) ? 0 : 2);
	}
	close(pfd[1]);
	ssize_t n = read(pfd[0], t, sizeof(t));
	close(pfd[0]);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
	    n != (ssize_t)sizeof(t)) {
		fprintf(stderr, "syscall child failed\n");
		sandbox_plan_free(plan);
		return 1;
	}
	printf("ns per call, pinned, median of %d x %ld, without -> with the filter:\n"
	       "  getppid %.1f -> %.1f (+%.1f), read 1 B %.1f -> %.1f (+%.1f), "
	       "ioctl(TCGETS) %.1f -> %.1f (+%.1f)\n",
	       SC_BATCHES, iters, t[0][0], t[1][0], t[1][0] - t[0][0], t[0][1], t[1][1],
	       t[1][1] - t[0][1], t[0][2], t[1][2], t[1][2] - t[0][2]);
	sandbox_plan_free(plan);
	return 0;
}

int main(int argc, char **argv)
{
	static const char *const argv_true[] = {"true", NULL};
	static const struct layer_path paths[] = {
		{"/usr", false}, {"/lib", false}, {"/lib64", false}, {"/etc", false}};
	struct layer_spec spec = {
		.name = "bench",
		.exec = "/usr/bin/true",
		.argv = argv_true,
		.nargv = 1,
		.user_kind = LAYER_USER_DYNAMIC,
		.profiles = LAYER_PROFILE_STDIO,
		.landlock = paths,
		.nlandlock = 4,
		.namespaces = LAYER_NS_IPC,
		.limits = {64u << 20, 32, 0, LAYER_LIMIT_UNSET, LAYER_LIMIT_UNSET},
		.has_network_resource = true,
	};
	int rounds = argc > 1 ? atoi(argv[1]) : 20;

	if (argc > 1 && strcmp(argv[1], "--syscalls") == 0) {
		long iters = argc > 2 ? atol(argv[2]) : 200000;
		if (iters < 1 || iters > 100000000 || geteuid() != 0) {
			fprintf(stderr, "usage (as root): %s --syscalls [ITERS]\n", argv[0]);
			return 2;
		}
		return bench_syscalls(&spec, iters);
	}

	if (rounds < 1 || rounds > 10000 || geteuid() != 0) {
		fprintf(stderr, "usage (as root): %s [ROUNDS 1..10000]\n", argv[0]);
		return 2;
	}
	if (bench("ipc namespace", &spec, rounds))
		return 1;
	spec.has_network_resource = false;
	return bench("ipc + empty net namespace", &spec, rounds);
}
