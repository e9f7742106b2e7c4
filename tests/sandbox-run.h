/* SPDX-License-Identifier: MIT */
/* Test helpers: a hand-built layer spec for the probe, and running it. */
#ifndef CONDUIT_TESTS_SANDBOX_RUN_H
#define CONDUIT_TESTS_SANDBOX_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "sandbox.h"

struct probe_spec {
	struct layer_spec spec;
	const char *argv[8];
	const char *allow[4];
	struct layer_path paths[4];
	const char *env[2];
};

/* Path of the probe (from argv[1] of the test) and a scratch directory. */
extern const char *probe_path;
extern char probe_tmpdir[64];

/* A spec running the probe with args (NULL-terminated, at most 6): dynamic
 * user, profile stdio, /proc readable, probe_tmpdir writable, limits set. */
void probe_spec_init(struct probe_spec *ps, const char *const *args);

struct probe_result {
	int plan_err;		       /* sandbox_plan_new() result */
	int spawn_err;		       /* sandbox_spawn() result */
	struct sandbox_status failure; /* when spawn_err == -ECHILD */
	int wait_status;	       /* when the layer ran */
	char out[65536];	       /* its stdout */
	size_t out_len;
	char warning[256];
};

/* Plan, spawn with stdout on a pipe, collect output, reap.  fail_step
 * injects a failure (0: none). */
void probe_run(const struct layer_spec *spec, int fail_step, struct probe_result *res);

/* Read fd to EOF into res->out (NUL-terminated, truncated when full). */
void probe_read_all(int fd, struct probe_result *res);

/* The value after "key " on a line of out; NULL if absent. */
const char *probe_value(const struct probe_result *res, const char *key, char *buf, size_t len);

/* In a forked child of a root test: drop to nobody (65534) for good, with
 * exec_path set to a path of the probe that nobody can open. */
int probe_become_nobody(char *exec_path, size_t len);

/* Set up probe_path / probe_tmpdir from main's arguments. */
int probe_setup(int argc, char **argv);
void probe_teardown(void);

#endif
