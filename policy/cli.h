/* SPDX-License-Identifier: MIT */
/*
 * The audit verbs of conduit-policy (audit, learn, diff) and what they
 * share: exit codes and the replay of a recorded decision through the
 * broker's own matcher.  docs/man/conduit-policy.1 documents the verbs.
 */
#ifndef CONDUIT_POLICY_CLI_H
#define CONDUIT_POLICY_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "policy-int.h"

enum {
	EXIT_OK = 0,
	EXIT_INVALID = 1,  /* the policy was rejected */
	EXIT_USAGE = 2,	   /* usage, or a system error (open, read, memory) */
	EXIT_WARNINGS = 3, /* check: valid, with warnings */
	EXIT_VERDICT = 4,  /* test: an expectation failed; explain: not allowed */
	EXIT_TAMPERED = 5, /* audit: the hash chain or sequence is broken */
	EXIT_MISMATCH = 6, /* audit: a recorded verdict is not the policy's, or a clock error */
	EXIT_TORN = 7,	   /* audit: only a torn tail (a crash while writing) */
	EXIT_DIFFERS = 8,  /* diff: the policies' rules differ */
};

/* Replays recorded decisions in log order with one rate-limit state.  The
 * buckets start full at every start and reload record, as the broker's do.
 * The clock is the record's mono_ns, the very value the broker gave the
 * matcher, so the replay is exact; for records without it (an older writer)
 * it is the record's UTC time relative to the start or reload, and a rate
 * decision at a bucket's edge may then fall either way. */
enum replay_clock {
	REPLAY_CLOCK_EXACT = 1, /* mono_ns, and no record lost since the reset */
	REPLAY_CLOCK_LOST,	/* mono_ns, but records were lost: buckets unknown */
	REPLAY_CLOCK_UTC,	/* no mono_ns: the record's UTC time */
};

enum replay_anomaly {
	REPLAY_CLOCK_OK = 0,
	REPLAY_CLOCK_BACK,  /* mono_ns lower than the run's previous decision's */
	REPLAY_CLOCK_MIXED, /* one broker run's decisions with and without mono_ns */
};

struct replay {
	const struct policy *p;
	struct policy_state *st;
	int64_t t0_us;
	bool have_t0;
	/* One broker run (from a start record): its clock never goes back,
	 * across reloads too, and its writer gives every decision a mono_ns
	 * or none. */
	bool run_mono, run_utc;
	uint64_t last_mono;
	bool lost; /* an audit-gap lost records since the buckets were reset */
	/* The last decision replayed, for the caller. */
	enum replay_clock clock;
	enum replay_anomaly anomaly;
	uint64_t prev_mono; /* REPLAY_CLOCK_BACK: the previous decision's */
};

int replay_init(struct replay *r, const struct policy *p);
void replay_fini(struct replay *r);
/* Feed every record in order; non-decision records only move the state.
 * For a decision, *ret_d and *ret_v (the verdict as the broker would have
 * recorded it) are written, r->clock and r->anomaly say how it was timed,
 * and 1 returned; 0 for other records; -ENOENT
 * when the layer is not in the policy; -ENOMEM. */
int replay_record(struct replay *r, const struct audit_record *rec, struct policy_decision *ret_d,
		  enum audit_verdict *ret_v);

/* Text from a log for a terminal: a log may be forged, so every byte that
 * is not printable ASCII (escapes, C1 controls, bidi marks) is shown as
 * \xHH; strings are cut after CLI_VALUE_SHOWN bytes. */
#define CLI_VALUE_SHOWN 80
void cli_text(FILE *f, const char *s);
void cli_arg_print(FILE *f, const struct cdt_arg *a);

/* "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" */
void cli_time(int64_t us, char buf[64]);
/* Compile path with diagnostics on stderr; EXIT_OK or EXIT_INVALID. */
int cli_compile(const char *path, struct policy **ret);

/* closed: the log must end with its stop record (an archived log). */
int cmd_audit(bool json, bool follow, bool closed, const char *policy, const char *const *logs,
	      size_t nlogs);
int cmd_learn(bool json, const char *base, const char *const *logs, size_t nlogs);
int cmd_diff(bool json, const char *old_path, const char *new_path, const char *const *logs,
	     size_t nlogs);

#endif
