/* SPDX-License-Identifier: MIT */
/* `conduit-policy audit`: the checker's state (cli-audit.c) and its
 * reports (cli-audit-report.c). */
#ifndef CONDUIT_POLICY_CLI_AUDIT_H
#define CONDUIT_POLICY_CLI_AUDIT_H

#include "cli.h"

#define MISMATCH_KEEP  20 /* detailed; all are counted */
#define NEAR_KEEP      10
#define CLASS_KEEP     8    /* violation classes named per layer */
#define FOLLOW_POLL_MS 1000 /* the longest wait between looks at a followed log */
#define TEXT_CAP       (AUDIT_TEXT_MAX + 1)

struct mismatch {
	size_t file;
	uint64_t line, seq;
	char layer[TEXT_CAP], method[TEXT_CAP], rec_rule[TEXT_CAP], got_rule[TEXT_CAP];
	enum audit_verdict rec_v, got_v;
	unsigned got_line;
	const char *why;
};

/* A decision whose monotonic time contradicts its broker run's: the clock
 * went back, or the run mixes records with and without one. */
struct clock_err {
	size_t file;
	uint64_t line, seq;
	enum replay_anomaly kind;
	uint64_t prev_mono, mono;
};

struct near {
	double frac; /* distance to the nearer edge, as a share of the range */
	const struct policy_rule *rule;
	const struct policy_cons *cons;
	char value[64];
	size_t file;
	uint64_t line, seq;
};

struct layer_stat {
	const char *name;
	uint64_t decisions, verdicts[5], default_hits;
	uint64_t *hits; /* per rule */
	struct {
		char name[TEXT_CAP];
		uint64_t n;
	} cls[CLASS_KEEP];
	size_t ncls;
	uint64_t cls_other;
};

struct auditor {
	bool json, follow;
	const char *const *logs;
	const struct policy *p;
	struct replay rp;
	struct layer_stat *ls; /* nlayers + 1: the last is "not in the policy" */
	size_t nls;
	uint64_t records, decisions, verdicts[5], events[AUDIT_EV_GAP + 1];
	uint64_t mismatches, rate_timing, unverifiable;
	/* decisions replayed on their mono_ns; on record time (no mono_ns);
	 * on mono_ns after lost records (rate tolerated like record time) */
	uint64_t exact, utc, after_lost, clock_errors;
	struct mismatch mm[MISMATCH_KEEP];
	struct clock_err ce[MISMATCH_KEEP];
	struct near nr[NEAR_KEEP];
	size_t nnear;
	int64_t first_us, last_us;
	uint64_t first_seq, last_seq;
	int inotify_fd;
};

void auditor_print_mismatch(const struct auditor *a, FILE *f, const struct mismatch *m);
void auditor_print_clock(const struct auditor *a, FILE *f, const struct clock_err *c);
const char *auditor_result_name(int rc);
/* Sorts the near-limit list; then the report as text or JSON. */
void auditor_report(struct auditor *a, const struct audit_verify_result *res, int rc, double secs);

#endif
