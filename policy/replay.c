/* SPDX-License-Identifier: MIT */
/*
 * Replaying recorded decisions through policy_decide(), the broker's own
 * matcher, and the small helpers the audit verbs share.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

int replay_init(struct replay *r, const struct policy *p)
{
	struct policy_state *st;
	int e = policy_state_new(p, &st);
	if (e < 0)
		return e;
	*r = (struct replay){.p = p, .st = st};
	return 0;
}

void replay_fini(struct replay *r)
{
	if (!r)
		return;
	policy_state_free(r->st);
	r->st = NULL;
}

/* The broker records a SUBSCRIBE as a decision on the event's name without
 * a rule (every call decision names one, "LAYER#default" included): it is
 * allowed when the layer's policy has a `subscribe` for that event, and is
 * not a call to replay through the matcher, which would default-deny it. */
static int replay_subscribe(const struct replay *r, const struct audit_record *rec,
			    struct policy_decision *ret_d, enum audit_verdict *ret_v)
{
	const struct policy_layer *L = policy_layer(r->p, rec->layer);
	if (!L)
		return -ENOENT;
	struct policy_decision d = {
		.verdict = POLICY_DENY,
		.logonly = L->logonly,
		.file = r->p->name,
		.line = L->line,
		.reason = "no subscribe for this event",
	};
	for (size_t i = 0; i < L->nsubscriptions; i++) {
		if (strcmp(L->subscriptions[i].event, rec->method) == 0) {
			d.verdict = POLICY_ALLOW;
			d.line = L->subscriptions[i].line;
			d.reason = "subscribed";
			break;
		}
	}
	*ret_d = d;
	*ret_v = d.verdict == POLICY_ALLOW ? AUDIT_VERDICT_ALLOW : AUDIT_VERDICT_DENY;
	return 1;
}

/* The clock for a decision record, and whether it is consistent with the
 * run's earlier decisions. */
static uint64_t replay_clock(struct replay *r, const struct audit_record *rec)
{
	r->anomaly = REPLAY_CLOCK_OK;
	if (rec->has_mono) {
		if (r->run_utc)
			r->anomaly = REPLAY_CLOCK_MIXED;
		else if (r->run_mono && rec->mono_ns < r->last_mono) {
			r->anomaly = REPLAY_CLOCK_BACK;
			r->prev_mono = r->last_mono;
		}
		/* Compared with the previous decision only: one record moved
		 * ahead shows once, at the record after it. */
		r->run_mono = true;
		r->last_mono = rec->mono_ns;
		r->clock = r->lost ? REPLAY_CLOCK_LOST : REPLAY_CLOCK_EXACT;
		return rec->mono_ns;
	}
	if (r->run_mono)
		r->anomaly = REPLAY_CLOCK_MIXED;
	r->run_utc = true;
	r->clock = REPLAY_CLOCK_UTC;
	if (!r->have_t0) {
		r->t0_us = rec->time_us;
		r->have_t0 = true;
	}
	/* Relative to the start or reload.  A step back refills nothing, as
	 * in the matcher. */
	uint64_t now_ns = 0;
	if (rec->time_us > r->t0_us &&
	    __builtin_mul_overflow((uint64_t)rec->time_us - (uint64_t)r->t0_us, 1000u, &now_ns))
		now_ns = UINT64_MAX;
	return now_ns;
}

int replay_record(struct replay *r, const struct audit_record *rec, struct policy_decision *ret_d,
		  enum audit_verdict *ret_v)
{
	if (rec->event == AUDIT_EV_START || rec->event == AUDIT_EV_RELOAD) {
		/* A new broker, or a new compiled policy: fresh, full buckets. */
		struct policy_state *st;
		int e = policy_state_new(r->p, &st);
		if (e < 0)
			return e;
		policy_state_free(r->st);
		r->st = st;
		r->have_t0 = false;
		r->lost = false;
		/* A reload keeps the broker's process and its clock. */
		if (rec->event == AUDIT_EV_START)
			r->run_mono = r->run_utc = false;
	}
	/* Lost records may have been decisions that took tokens: until the
	 * buckets are reset, the replay cannot know what they held. */
	if (rec->event == AUDIT_EV_GAP && rec->has_lost && rec->lost)
		r->lost = true;
	if (rec->event != AUDIT_EV_DECISION)
		return 0;
	uint64_t now_ns = replay_clock(r, rec);
	if (!rec->rule)
		return replay_subscribe(r, rec, ret_d, ret_v);
	struct cdt_arg args[CDT_ARGS_MAX];
	size_t n = rec->nargs;
	if (n > CDT_ARGS_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		args[i] = rec->args[i].arg;
	struct policy_decision d;
	int e = policy_decide(r->p, r->st, rec->layer, rec->method, args, n, now_ns, &d);
	if (e < 0)
		return e;
	enum audit_verdict v;
	if (d.verdict == POLICY_ALLOW)
		v = AUDIT_VERDICT_ALLOW;
	else if (d.logonly)
		v = AUDIT_VERDICT_COMPLAIN;
	else
		v = d.verdict == POLICY_DENY ? AUDIT_VERDICT_DENY : AUDIT_VERDICT_RATE_LIMITED;
	*ret_d = d;
	*ret_v = v;
	return 1;
}

void cli_time(int64_t us, char buf[64])
{
	time_t s = (time_t)(us / 1000000);
	int64_t frac = us % 1000000;
	if (frac < 0) {
		frac += 1000000;
		s--;
	}
	struct tm tm;
	if (!gmtime_r(&s, &tm)) {
		snprintf(buf, 64, "@%" PRId64 "us", us);
		return;
	}
	snprintf(buf, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
}

int cli_compile(const char *path, struct policy **ret)
{
	int e = policy_compile_file(path, stderr, ret);
	if (e < 0) {
		fprintf(stderr, "%s: rejected: %s\n", path, strerror(-e));
		return EXIT_INVALID;
	}
	return EXIT_OK;
}

void cli_text(FILE *f, const char *s)
{
	for (const unsigned char *u = (const unsigned char *)s; u && *u; u++)
		if (*u < 0x20 || *u >= 0x7f || *u == '\\')
			fprintf(f, "\\x%02x", *u);
		else
			fputc(*u, f);
}

void cli_arg_print(FILE *f, const struct cdt_arg *a)
{
	if (a->type != CDT_TYPE_STRING) {
		arg_print(f, a);
		return;
	}
	fprintf(f, "%s=\"", a->name);
	for (size_t i = 0; i < a->v.str.len && i < CLI_VALUE_SHOWN; i++) {
		unsigned char c = (unsigned char)a->v.str.ptr[i];
		if (c < 0x20 || c >= 0x7f || c == '\\' || c == '"')
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	if (a->v.str.len > CLI_VALUE_SHOWN)
		fprintf(f, "...(%zu bytes)", a->v.str.len);
	fputc('"', f);
}
