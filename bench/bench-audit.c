/* SPDX-License-Identifier: MIT */
/*
 * conduit-bench-audit: records per second the audit writer appends (one
 * write(2) each) and the reader+verifier checks, on one pinned CPU, for a
 * typical decision record.  With --defer, the cost of a deferred decision
 * record as the broker makes it for an allowed call (formatted and chained
 * at once, written AUDIT_BATCH_MAX bytes at a time), in ns per record.
 * Usage: conduit-bench-audit [--defer] [RECORDS]
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "audit.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The record dispatch_audit_decision() builds for an allowed routed call:
 * a few decoded arguments, the verdict, the rule and its line, the policy
 * file, the broker's monotonic clock.  Deferred as audit_defer() does, so
 * the writer flushes whenever AUDIT_BATCH_MAX bytes wait (a busy broker's
 * 5 ms timer never fires before that); the time includes those write(2)s. */
static int bench_defer(struct audit_writer *w, long n, double *ret_t)
{
	struct cdt_arg args[3] = {
		{.name = "tag", .type = CDT_TYPE_STRING, .v.str = {"plant.dosing.naoh_sp", 20}},
		{.name = "value", .type = CDT_TYPE_DOUBLE, .v.d = 100.5},
		{.name = "seq", .type = CDT_TYPE_U64},
	};
	struct audit_record start = {.event = AUDIT_EV_START};
	int r = audit_writer_append(w, &start);
	double t0 = now();
	uint64_t mono = 1000000000;
	for (long i = 0; i < n && r == 0; i++) {
		args[1].v.d = (double)i * 0.25;
		args[2].v.u64 = (uint64_t)i;
		mono += 12700;
		struct audit_record rec = {
			.event = AUDIT_EV_DECISION,
			.layer = "ui",
			.has_pid = true,
			.pid = 4242,
			.method = "tag.write",
			.call_args = args,
			.ncall_args = 3,
			.has_args = true,
			.verdict = AUDIT_VERDICT_ALLOW,
			.has_mono = true,
			.mono_ns = mono,
			.rule = "ui#3",
			.policy = "plant.policy",
			.policy_line = 17,
		};
		r = audit_writer_defer(w, &rec);
	}
	if (r == 0)
		r = audit_writer_flush(w);
	*ret_t = now() - t0;
	struct audit_record stop = {.event = AUDIT_EV_STOP};
	if (r == 0)
		r = audit_writer_append(w, &stop);
	return r;
}

/* Where a deferred record's time goes beyond formatting: the same records
 * into a log on /dev/null (no disk), and BLAKE2b-256 of one such line
 * alone, which the chain needs for every record whatever the code. */
static int bench_parts(long n, double *ret_null, double *ret_hash)
{
	struct audit_writer *w;
	double t;
	int r = audit_writer_open("/dev/null", &w);
	if (r < 0)
		return r;
	r = bench_defer(w, n, &t);
	audit_writer_free(w);
	if (r < 0)
		return r;
	*ret_null = t;

	struct cdt_arg args[3] = {
		{.name = "tag", .type = CDT_TYPE_STRING, .v.str = {"plant.dosing.naoh_sp", 20}},
		{.name = "value", .type = CDT_TYPE_DOUBLE, .v.d = 100.5},
		{.name = "seq", .type = CDT_TYPE_U64, .v.u64 = 123456},
	};
	struct audit_arg a[3];
	size_t budget = AUDIT_VALUES_MAX;
	for (int i = 0; i < 3; i++)
		if ((r = audit_arg_from_cdt(&args[i], &budget, &a[i])) < 0)
			return r;
	struct audit_record rec = {
		.seq = 123456,
		.time_us = (int64_t)time(NULL) * 1000000,
		.event = AUDIT_EV_DECISION,
		.layer = "ui",
		.has_pid = true,
		.pid = 4242,
		.method = "tag.write",
		.args = a,
		.nargs = 3,
		.has_args = true,
		.verdict = AUDIT_VERDICT_ALLOW,
		.has_mono = true,
		.mono_ns = 1000012700,
		.rule = "ui#3",
		.policy = "plant.policy",
		.policy_line = 17,
	};
	char line[1024];
	long len = audit_format(&rec, line, sizeof(line));
	if (len < 0)
		return (int)len;
	uint8_t h[AUDIT_HASH_LEN] = {0};
	double t0 = now();
	for (long i = 0; i < n; i++) {
		line[0] = (char)h[0]; /* each hash depends on the one before, as in the chain */
		crypto_generichash(h, sizeof(h), (const unsigned char *)line, (size_t)len, NULL, 0);
	}
	*ret_hash = now() - t0;
	return 0;
}

int main(int argc, char **argv)
{
	bool defer = argc > 1 && strcmp(argv[1], "--defer") == 0;
	if (defer) {
		argc--;
		argv++;
	}
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
	if (n < 2) {
		fprintf(stderr, "conduit-bench-audit: RECORDS must be at least 2\n");
		return 2;
	}
	cpu_set_t set;
	CPU_ZERO(&set);
	int cpu = sched_getcpu();
	CPU_SET(cpu < 0 ? 0 : cpu, &set);
	bool pinned = sched_setaffinity(0, sizeof(set), &set) == 0;

	char dir[] = "/tmp/conduit-bench-audit.XXXXXX";
	if (!mkdtemp(dir)) {
		perror("conduit-bench-audit: mkdtemp");
		return 1;
	}
	char path[64];
	snprintf(path, sizeof(path), "%s/audit.log", dir);
	struct audit_writer *w;
	int r = audit_writer_open(path, &w);
	if (r < 0) {
		fprintf(stderr, "conduit-bench-audit: %s: %s\n", path, strerror(-r));
		return 1;
	}
	struct cdt_arg args[3] = {
		{.name = "tag", .type = CDT_TYPE_STRING, .v.str = {"plant.dosing.naoh_sp", 20}},
		{.name = "value", .type = CDT_TYPE_DOUBLE, .v.d = 100.5},
		{.name = "force", .type = CDT_TYPE_BOOL},
	};
	double t0 = now();
	double tw = 0;
	if (defer) {
		r = bench_defer(w, n, &tw);
		n += 2; /* start and stop, for the verifier's count below */
	}
	for (long i = 0; i < n && r == 0 && !defer; i++) {
		args[1].v.d = (double)i * 0.25;
		struct audit_record rec = {.event = AUDIT_EV_DECISION,
					   .layer = "ui",
					   .has_pid = true,
					   .pid = 4242,
					   .method = "tag.write",
					   .call_args = args,
					   .ncall_args = 3,
					   .verdict = AUDIT_VERDICT_DENY,
					   .rule = "ui#3",
					   .policy = "plant.policy",
					   .policy_line = 17};
		if (i == 0)
			rec = (struct audit_record){.event = AUDIT_EV_START};
		if (i == n - 1)
			rec = (struct audit_record){.event = AUDIT_EV_STOP};
		r = audit_writer_append(w, &rec);
	}
	if (!defer)
		tw = now() - t0;
	audit_writer_free(w);
	if (r < 0) {
		fprintf(stderr, "conduit-bench-audit: append: %s\n", strerror(-r));
		return 1;
	}
	struct stat st;
	stat(path, &st);

	struct audit_verify_result res;
	struct audit_verify_opts o = {.require_closed = true};
	const char *paths[] = {path};
	t0 = now();
	r = audit_verify_files(paths, 1, &o, &res);
	double tv = now() - t0;
	unlink(path);
	rmdir(dir);
	if (r < 0 || res.status != AUDIT_OK) {
		fprintf(stderr, "conduit-bench-audit: verify failed: %s\n",
			r < 0 ? strerror(-r) : res.reason);
		return 1;
	}
	printf("audit: %ld records, %.0f bytes/record, %s\n", n, (double)st.st_size / (double)n,
	       pinned ? "pinned to one CPU" : "NOT pinned");
	if (defer) {
		double tnull = 0, thash = 0;
		if ((r = bench_parts(n - 2, &tnull, &thash)) < 0) {
			fprintf(stderr, "conduit-bench-audit: /dev/null: %s\n", strerror(-r));
			return 1;
		}
		printf("deferred: %9.0f records/s (%.0f ns/record, batched write(2))\n",
		       (double)(n - 2) / tw, tw * 1e9 / (double)(n - 2));
		printf("  same, log on /dev/null: %.0f ns/record; BLAKE2b-256 of one line alone: "
		       "%.0f ns\n",
		       tnull * 1e9 / (double)(n - 2), thash * 1e9 / (double)(n - 2));
	} else {
		printf("writer:   %9.0f records/s (%.2f us/record, one write(2) each)\n",
		       (double)n / tw, tw * 1e6 / (double)n);
	}
	printf("verifier: %9.0f records/s (%.2f us/record, %.0f MB/s)\n", (double)n / tv,
	       tv * 1e6 / (double)n, (double)st.st_size / tv / 1e6);
	return 0;
}
