/* SPDX-License-Identifier: MIT */
/*
 * conduit-bench-policy: median time of one policy decision with 1,000
 * rules, for rule sets of different shapes.  Pinned to one CPU (the
 * first one allowed) so the figure is not cross-CPU noise; each sample
 * times 1,000 decisions and the median of 301 samples is reported.
 * Target (DESIGN.md section 8): < 200 ns median at 1,000 rules.
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"

#define NRULES	1000
#define SAMPLES 301
#define BATCH	1000

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct scenario {
	const char *what;
	const char *method;
	struct cdt_arg args[2];
	size_t nargs;
	const char *want_rule; /* rule id that must decide, or NULL (default deny) */
};

static char *build(int shape)
{
	size_t cap = 256 * 1024, off = 0;
	char *t = malloc(cap);
	if (!t)
		return NULL;
	off += (size_t)snprintf(
		t + off, cap - off,
		"version 1\nlayer io {\n    exec \"/bin/io\"\n    syscalls stdio\n");
	if (shape == 1) {
		for (int m = 0; m < NRULES / 4; m++)
			off += (size_t)snprintf(t + off, cap - off, "    provide m%d.write\n", m);
	} else {
		off += (size_t)snprintf(t + off, cap - off, "    provide tag.write\n");
	}
	off += (size_t)snprintf(t + off, cap - off,
				"}\nlayer ui {\n    exec \"/bin/ui\"\n    syscalls stdio\n");
	for (int i = 0; i < NRULES; i++) {
		if (shape == 0) /* one method, each rule pins its own tag */
			off += (size_t)snprintf(t + off, cap - off,
						"    allow tag.write tag \"plant.area%d.tag%04d\" "
						"value 0..100 rate 1000000/s\n",
						i % 10, i);
		else if (shape == 1) /* 250 methods with 4 rules each */
			off += (size_t)snprintf(t + off, cap - off,
						"    allow m%d.write tag \"plant.tag%04d\" value "
						"0..100 rate 1000000/s\n",
						i / 4, i);
		else /* one method, globs; shape 3: no literal prefix, no index */
			off += (size_t)snprintf(
				t + off, cap - off,
				shape == 2 ? "    allow tag.write tag \"plant.area%04d.*\" "
					     "value 0..100 rate 1000000/s\n"
					   : "    allow tag.write tag \"*.area%04d.*\" "
					     "value 0..100 rate 1000000/s\n",
				i);
	}
	snprintf(t + off, cap - off, "}\n");
	return t;
}

static int run(int shape, const struct scenario *sc)
{
	char *text = build(shape);
	struct policy *p = NULL;
	struct policy_state *st = NULL;
	struct policy_decision d;
	if (!text || policy_compile_buffer("bench.policy", text, strlen(text), stderr, &p) < 0 ||
	    policy_state_new(p, &st) < 0) {
		fprintf(stderr, "conduit-bench-policy: cannot build the policy\n");
		free(text);
		policy_free(p);
		return -1;
	}
	free(text);
	uint64_t clock = 0;
	/* Check the decision first: a fast wrong answer measures nothing. */
	if (policy_decide(p, st, "ui", sc->method, sc->args, sc->nargs, clock, &d) < 0 ||
	    (sc->want_rule ? !d.rule || strcmp(d.rule_id, sc->want_rule) != 0 : d.rule != NULL) ||
	    d.verdict != (sc->want_rule ? POLICY_ALLOW : POLICY_DENY)) {
		fprintf(stderr, "conduit-bench-policy: %s: wrong decision %s by %s\n", sc->what,
			policy_verdict_name(d.verdict), d.rule_id);
		policy_state_free(st);
		policy_free(p);
		return -1;
	}
	uint64_t samples[SAMPLES];
	unsigned sink = 0;
	for (int s = 0; s < SAMPLES; s++) {
		uint64_t t0 = now_ns();
		for (int i = 0; i < BATCH; i++) {
			/* 1 us of injected time per call: the bucket never runs dry */
			clock += 1000;
			policy_decide(p, st, "ui", sc->method, sc->args, sc->nargs, clock, &d);
			sink += d.verdict;
		}
		samples[s] = now_ns() - t0;
	}
	qsort(samples, SAMPLES, sizeof(samples[0]), cmp_u64);
	printf("%-72s %7.1f ns  (p10 %.1f, p90 %.1f)%s\n", sc->what,
	       (double)samples[SAMPLES / 2] / BATCH, (double)samples[SAMPLES / 10] / BATCH,
	       (double)samples[SAMPLES * 9 / 10] / BATCH, sink == 1 ? " " : "");
	policy_state_free(st);
	policy_free(p);
	return 0;
}

static struct cdt_arg s_arg(const char *name, const char *v)
{
	return (struct cdt_arg){.name = name, .type = CDT_TYPE_STRING, .v.str = {v, strlen(v)}};
}

int main(int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		puts("usage: conduit-bench-policy\n"
		     "Median policy decision time with 1,000 rules, pinned to one CPU.");
		return 0;
	}
	cpu_set_t set;
	int cpu = -1;
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		for (int i = 0; i < CPU_SETSIZE && cpu < 0; i++)
			if (CPU_ISSET(i, &set))
				cpu = i;
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0)
			cpu = -1;
	}
	printf("conduit-bench-policy: %d rules, median of %d samples of %d decisions, %s\n", NRULES,
	       SAMPLES, BATCH, cpu >= 0 ? "pinned to one CPU" : "NOT pinned");
	printf("target: < 200 ns median decision at 1,000 rules\n");
	struct cdt_arg v = {.name = "value", .type = CDT_TYPE_I64, .v.i64 = 42};
	struct scenario a = {"A: 1000 rules on one method, literal tags; hit rule 1000 (the last)",
			     "tag.write",
			     {s_arg("tag", "plant.area9.tag0999"), v},
			     2,
			     "ui#1000"};
	struct scenario a1 = {"A: same; hit rule 1 (the first)",
			      "tag.write",
			      {s_arg("tag", "plant.area0.tag0000"), v},
			      2,
			      "ui#1"};
	struct scenario a0 = {"A: same; no rule matches (default deny)",
			      "tag.write",
			      {s_arg("tag", "plant.area9.tag9999"), v},
			      2,
			      NULL};
	struct scenario b = {"B: 1000 rules over 250 methods; hit rule 1000 (the last)",
			     "m249.write",
			     {s_arg("tag", "plant.tag0999"), v},
			     2,
			     "ui#1000"};
	struct scenario c = {
		"C: 1000 prefix globs (\"plant.areaNNNN.*\") on one method; hit rule 1000",
		"tag.write",
		{s_arg("tag", "plant.area0999.x"), v},
		2,
		"ui#1000"};
	struct scenario c1 = {"C: 1000 prefix globs; hit rule 1",
			      "tag.write",
			      {s_arg("tag", "plant.area0000.x"), v},
			      2,
			      "ui#1"};
	int rc = 0;
	rc |= run(0, &a);
	rc |= run(0, &a1);
	rc |= run(0, &a0);
	rc |= run(1, &b);
	rc |= run(2, &c1);
	rc |= run(2, &c);
	struct scenario w = {"D: 1000 globs without a literal prefix (scanned); hit rule 1000",
			     "tag.write",
			     {s_arg("tag", "plant.area0999.x"), v},
			     2,
			     "ui#1000"};
	struct scenario w1 = {"D: 1000 globs without a literal prefix; hit rule 1",
			      "tag.write",
			      {s_arg("tag", "plant.area0000.x"), v},
			      2,
			      "ui#1"};
	rc |= run(3, &w1);
	rc |= run(3, &w);
	return rc ? 1 : 0;
}
