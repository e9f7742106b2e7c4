/* SPDX-License-Identifier: MIT */
/*
 * Time to start 16 sandboxed layers (DESIGN.md target: < 100 ms): plan
 * (dynamic uid, Landlock ruleset, seccomp BPF) and spawn (fork, every step,
 * exec of /usr/bin/true), with and without the empty network namespace.
 * Needs root (dynamic users).  Usage: conduit-bench-sandbox [ROUNDS]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
 * milliseconds from the first plan to the last exec, or -1. */
static double round_ms(const struct layer_spec *spec, double *plan_ms)
{
	struct sandbox_plan *plans[LAYERS] = {NULL};
	pid_t pids[LAYERS];
	struct sandbox_options opts;
	struct sandbox_status failure;
	double t0 = now_ms(), t1, t2;
	int n = 0, r = 0;

	sandbox_options_init(&opts);
	for (int i = 0; i < LAYERS && r == 0; i++)
		r = sandbox_plan_new(spec, &opts, &plans[i]);
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

	if (!total || !plan)
		return 1;
	for (int i = 0; i < rounds; i++) {
		total[i] = round_ms(spec, &plan[i]);
		if (total[i] < 0)
			return 1;
	}
	qsort(total, (size_t)rounds, sizeof(double), cmp_double);
	qsort(plan, (size_t)rounds, sizeof(double), cmp_double);
	printf("%-28s %d layers: median %.1f ms (plans %.1f ms), min %.1f, max %.1f, %d rounds\n",
	       label, LAYERS, total[rounds / 2], plan[rounds / 2], total[0], total[rounds - 1],
	       rounds);
	free(total);
	free(plan);
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

	if (rounds < 1 || rounds > 10000 || geteuid() != 0) {
		fprintf(stderr, "usage (as root): %s [ROUNDS 1..10000]\n", argv[0]);
		return 2;
	}
	if (bench("ipc namespace", &spec, rounds))
		return 1;
	spec.has_network_resource = false;
	return bench("ipc + empty net namespace", &spec, rounds);
}
