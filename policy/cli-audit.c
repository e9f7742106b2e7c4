/* SPDX-License-Identifier: MIT */
/*
 * `conduit-policy audit POLICY LOG...`: verify the chain with the audit
 * reader, decide every recorded call again with policy_decide(), and report
 * mismatches, violations per layer, rules never used and the calls closest
 * to their limits.  Memory does not grow with the log: per-layer counters
 * sized by the policy and fixed-size lists of the first findings.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "cli-audit.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static struct layer_stat *layer_of(struct auditor *a, const char *name)
{
	const struct policy_layer *l = name ? policy_layer(a->p, name) : NULL;
	if (!l)
		return &a->ls[a->nls - 1];
	return &a->ls[l - policy_layer_at(a->p, 0)];
}

static void count_class(struct layer_stat *s, const char *kind, const char *what)
{
	char key[TEXT_CAP];
	snprintf(key, sizeof(key), "%s%s", kind, what ? what : "unknown");
	for (size_t i = 0; i < s->ncls; i++)
		if (strcmp(s->cls[i].name, key) == 0) {
			s->cls[i].n++;
			return;
		}
	if (s->ncls == CLASS_KEEP) {
		s->cls_other++;
		return;
	}
	snprintf(s->cls[s->ncls].name, TEXT_CAP, "%s", key);
	s->cls[s->ncls++].n = 1;
}

static double num_double(const struct policy_num *n)
{
	switch (n->kind) {
	case POLICY_NUM_I64:
		return (double)n->v.i;
	case POLICY_NUM_U64:
		return (double)n->v.u;
	case POLICY_NUM_F64:
		return n->v.d;
	}
	return NAN;
}

static const struct cdt_arg *arg_find(const struct audit_record *rec, const char *name)
{
	for (size_t i = 0; i < rec->nargs; i++)
		if (strcmp(rec->args[i].arg.name, name) == 0)
			return &rec->args[i].arg;
	return NULL;
}

/* Keep the NEAR_KEEP (rule, argument) pairs whose value came closest to an
 * edge of a bounded range, one entry per pair. */
static void near_offer(struct auditor *a, const struct policy_rule *rule,
		       const struct policy_cons *c, double frac, const struct cdt_arg *v,
		       size_t file, uint64_t line, uint64_t seq)
{
	size_t slot = a->nnear;
	for (size_t i = 0; i < a->nnear; i++)
		if (a->nr[i].rule == rule && a->nr[i].cons == c) {
			if (frac >= a->nr[i].frac)
				return;
			slot = i;
			break;
		}
	if (slot == NEAR_KEEP) {
		size_t worst = 0;
		for (size_t i = 1; i < NEAR_KEEP; i++)
			if (a->nr[i].frac > a->nr[worst].frac)
				worst = i;
		if (frac >= a->nr[worst].frac)
			return;
		slot = worst;
	} else if (slot == a->nnear) {
		a->nnear++;
	}
	struct near *n = &a->nr[slot];
	*n = (struct near){
		.frac = frac, .rule = rule, .cons = c, .file = file, .line = line, .seq = seq};
	FILE *m = fmemopen(n->value, sizeof(n->value) - 1, "w");
	if (m) {
		cli_arg_print(m, v);
		fclose(m);
	}
}

static void near_check(struct auditor *a, const struct audit_record *rec,
		       const struct policy_rule *rule, size_t file, uint64_t line)
{
	for (size_t i = 0; i < rule->ncons; i++) {
		const struct policy_cons *c = &rule->cons[i];
		const struct cdt_arg *v = arg_find(rec, c->arg);
		double lo, hi, x;
		if (!v)
			continue;
		if (c->kind == POLICY_CONS_RANGE) {
			lo = num_double(&c->u.range.lo);
			hi = num_double(&c->u.range.hi);
			x = v->type == CDT_TYPE_I64	 ? (double)v->v.i64
			    : v->type == CDT_TYPE_U64	 ? (double)v->v.u64
			    : v->type == CDT_TYPE_DOUBLE ? v->v.d
							 : NAN;
		} else if (c->kind == POLICY_CONS_LEN && c->u.len.hi != UINT64_MAX) {
			lo = (double)c->u.len.lo;
			hi = (double)c->u.len.hi;
			x = (double)(v->type == CDT_TYPE_STRING ? v->v.str.len : v->v.bytes.len);
		} else {
			continue;
		}
		/* An open side or a single value has no edge to be near. */
		if (!isfinite(lo) || !isfinite(hi) || !(hi > lo) || !isfinite(x))
			continue;
		double d = fmin(x - lo, hi - x) / (hi - lo);
		near_offer(a, rule, c, d < 0 ? 0 : d, v, file, line, rec->seq);
	}
}

static const char *why_mismatch(const struct audit_record *rec)
{
	for (size_t i = 0; i < rec->nargs; i++)
		if (rec->args[i].truncated)
			return "truncated";
	return NULL;
}

static void clock_check(struct auditor *a, const struct audit_record *rec, size_t file,
			uint64_t line)
{
	if (a->rp.clock == REPLAY_CLOCK_EXACT)
		a->exact++;
	else if (a->rp.clock == REPLAY_CLOCK_LOST)
		a->after_lost++;
	else
		a->utc++;
	if (a->rp.anomaly == REPLAY_CLOCK_OK)
		return;
	struct clock_err tmp, *c = a->clock_errors < MISMATCH_KEEP ? &a->ce[a->clock_errors] : &tmp;
	a->clock_errors++;
	*c = (struct clock_err){.file = file,
				.line = line,
				.seq = rec->seq,
				.kind = a->rp.anomaly,
				.prev_mono = a->rp.prev_mono,
				.mono = rec->mono_ns};
	if (a->follow) {
		fputs(a->json ? "{\"clock\":" : "CLOCK ", stdout);
		auditor_print_clock(a, stdout, c);
		fputs(a->json ? "}\n" : "", stdout);
		fflush(stdout);
	}
}

static void decision(struct auditor *a, const struct audit_record *rec, size_t file, uint64_t line)
{
	struct policy_decision d = {0};
	enum audit_verdict v = AUDIT_VERDICT_NONE;
	int r = replay_record(&a->rp, rec, &d, &v);
	struct layer_stat *s = layer_of(a, rec->layer);
	a->decisions++;
	s->decisions++;
	if (rec->verdict <= AUDIT_VERDICT_COMPLAIN) {
		a->verdicts[rec->verdict]++;
		s->verdicts[rec->verdict]++;
	}
	if (r > 0 && d.rule && s->hits)
		s->hits[d.rule - policy_layer(a->p, rec->layer)->rules]++;
	else if (r > 0 && rec->rule)
		s->default_hits++; /* not a subscription (recorded without a rule) */
	if (r > 0 && v == AUDIT_VERDICT_ALLOW && d.rule)
		near_check(a, rec, d.rule, file, line);
	/* The clock is read before anything can fail: check it always. */
	clock_check(a, rec, file, line);
	bool same = r > 0 && v == rec->verdict && (!rec->rule || strcmp(rec->rule, d.rule_id) == 0);
	if (same)
		return;
	/* Replayed on the broker's own clock, any difference is one.  Without
	 * it (an older writer), or after lost records, bucket refills are not
	 * known exactly: the same rule allowing or rate-limiting is timing, not
	 * a different decision. */
	bool rated = a->rp.clock != REPLAY_CLOCK_EXACT &&
		     (v == AUDIT_VERDICT_ALLOW || v == AUDIT_VERDICT_RATE_LIMITED) &&
		     (rec->verdict == AUDIT_VERDICT_ALLOW ||
		      rec->verdict == AUDIT_VERDICT_RATE_LIMITED) &&
		     d.rule && d.rule->has_rate && rec->rule && strcmp(rec->rule, d.rule_id) == 0;
	if (r > 0 && rated) {
		a->rate_timing++;
		return;
	}
	if (r > 0 && why_mismatch(rec)) {
		a->unverifiable++; /* the deciding bytes were not kept */
		return;
	}
	if (r < 0 && r != -ENOENT)
		return;
	struct mismatch *m = a->mismatches < MISMATCH_KEEP ? &a->mm[a->mismatches] : NULL;
	struct mismatch tmp;
	a->mismatches++;
	if (!m && !a->follow)
		return;
	if (!m)
		m = &tmp;
	*m = (struct mismatch){.file = file,
			       .line = line,
			       .seq = rec->seq,
			       .rec_v = rec->verdict,
			       .got_v = r > 0 ? v : AUDIT_VERDICT_NONE,
			       .got_line = d.line};
	snprintf(m->layer, TEXT_CAP, "%s", rec->layer);
	snprintf(m->method, TEXT_CAP, "%s", rec->method);
	snprintf(m->rec_rule, TEXT_CAP, "%s", rec->rule ? rec->rule : "");
	snprintf(m->got_rule, TEXT_CAP, "%s", r > 0 ? d.rule_id : "");
	if (a->follow) {
		fputs(a->json ? "{\"mismatch\":" : "MISMATCH ", stdout);
		auditor_print_mismatch(a, stdout, m);
		fputs(a->json ? "}\n" : "", stdout);
		fflush(stdout);
	}
}

/* --follow: one line per violation, exit by signal and refused call, as
 * it is read. */
static void follow_line(const struct auditor *a, const struct audit_record *rec)
{
	const char *what = rec->event == AUDIT_EV_DECISION ? audit_verdict_name(rec->verdict)
			   : rec->klass			   ? rec->klass
			   : rec->signal		   ? rec->signal
							   : "";
	if (a->json) {
		printf("{\"event\":{\"seq\":%" PRIu64 ",\"event\":\"%s\",\"layer\":", rec->seq,
		       audit_event_name(rec->event));
		json_string(stdout, rec->layer ? rec->layer : "",
			    rec->layer ? strlen(rec->layer) : 0);
		printf(",\"what\":");
		json_string(stdout, what, strlen(what));
		printf("}}\n");
	} else {
		printf("seq %" PRIu64 ": %s ", rec->seq, audit_event_name(rec->event));
		cli_text(stdout, rec->layer ? rec->layer : "-");
		putchar(' ');
		cli_text(stdout, what);
		if (rec->event == AUDIT_EV_DECISION) {
			putchar(' ');
			cli_text(stdout, rec->method);
			for (size_t i = 0; i < rec->nargs; i++) {
				putchar(' ');
				cli_arg_print(stdout, &rec->args[i].arg);
			}
			fputs(" (", stdout);
			cli_text(stdout, rec->rule ? rec->rule : "no rule");
			putchar(')');
		}
		putchar('\n');
	}
	fflush(stdout);
}

static int on_record(const struct audit_record *rec, size_t file, uint64_t line, void *ud)
{
	struct auditor *a = ud;
	if (!a->records) {
		a->first_us = rec->time_us;
		a->first_seq = rec->seq;
	}
	a->records++;
	a->last_us = rec->time_us;
	a->last_seq = rec->seq;
	a->events[rec->event <= AUDIT_EV_GAP ? rec->event : 0]++;
	switch (rec->event) {
	case AUDIT_EV_DECISION:
		decision(a, rec, file, line);
		if (a->follow && rec->verdict != AUDIT_VERDICT_ALLOW)
			follow_line(a, rec);
		return 0;
	case AUDIT_EV_VIOLATION:
		count_class(layer_of(a, rec->layer), "", rec->klass);
		break;
	case AUDIT_EV_EXIT:
		if (rec->signal)
			count_class(layer_of(a, rec->layer), "killed:", rec->signal);
		break;
	default: {
		/* Moves the replay's rate state (start, reload). */
		struct policy_decision d;
		enum audit_verdict v;
		int r = replay_record(&a->rp, rec, &d, &v);
		if (r < 0)
			return r;
		return 0;
	}
	}
	if (a->follow) {
		printf(a->json ? "{\"violation\":{\"seq\":%" PRIu64 ",\"event\":\"%s\"}}\n"
			       : "seq %" PRIu64 ": %s",
		       rec->seq, audit_event_name(rec->event));
		if (!a->json)
			printf(" %s %s\n", rec->layer ? rec->layer : "-",
			       rec->klass    ? rec->klass
			       : rec->signal ? rec->signal
					     : "");
		fflush(stdout);
	}
	return 0;
}

/* --follow: wait for the log to grow (inotify, with a bounded poll in case
 * an event is missed or inotify is unavailable), until SIGINT or SIGTERM. */
static int on_eof(void *ud)
{
	struct auditor *a = ud;
	if (stop_requested)
		return 0;
	struct pollfd pfd = {.fd = a->inotify_fd, .events = POLLIN};
	int n = poll(&pfd, a->inotify_fd >= 0 ? 1 : 0, FOLLOW_POLL_MS);
	if (n > 0) {
		char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
		while (read(a->inotify_fd, buf, sizeof(buf)) > 0) {
		}
	}
	return stop_requested ? 0 : 1;
}

int cmd_audit(bool json, bool follow, bool closed, const char *policy, const char *const *logs,
	      size_t nlogs)
{
	struct policy *p = NULL;
	struct auditor a = {.json = json, .follow = follow, .logs = logs, .inotify_fd = -1};
	int rc = cli_compile(policy, &p);
	if (rc != EXIT_OK)
		return rc;
	rc = EXIT_USAGE;
	a.p = p;
	if (replay_init(&a.rp, p) < 0)
		goto out;
	a.nls = policy_layer_count(p) + 1;
	if (!(a.ls = calloc(a.nls, sizeof(*a.ls))))
		goto out;
	for (size_t i = 0; i + 1 < a.nls; i++) {
		const struct policy_layer *l = policy_layer_at(p, i);
		a.ls[i].name = l->spec.name;
		if (!(a.ls[i].hits = calloc(l->nrules ? l->nrules : 1, sizeof(uint64_t))))
			goto out;
	}
	a.ls[a.nls - 1].name = "(not in the policy)";
	struct audit_verify_opts o = {
		.require_closed = closed, .on_record = on_record, .userdata = &a};
	if (follow) {
		struct sigaction sa = {.sa_handler = on_stop_signal}; /* no SA_RESTART */
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		a.inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		if (a.inotify_fd >= 0 && inotify_add_watch(a.inotify_fd, logs[nlogs - 1],
							   IN_MODIFY | IN_CLOSE_WRITE) < 0) {
			close(a.inotify_fd);
			a.inotify_fd = -1;
		}
		o.on_eof = on_eof;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct audit_verify_result res;
	int r = audit_verify_files(logs, nlogs, &o, &res);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r < 0) {
		fprintf(stderr, "conduit-policy: audit: %s\n", strerror(-r));
		goto out;
	}
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (res.status != AUDIT_OK && res.status != AUDIT_TORN)
		rc = EXIT_TAMPERED;
	else if (a.mismatches || a.clock_errors)
		rc = EXIT_MISMATCH;
	else if (res.status == AUDIT_TORN)
		rc = EXIT_TORN;
	else
		rc = EXIT_OK;
	auditor_report(&a, &res, rc, secs);
out:
	if (a.inotify_fd >= 0)
		close(a.inotify_fd);
	for (size_t i = 0; a.ls && i < a.nls; i++)
		free(a.ls[i].hits);
	free(a.ls);
	replay_fini(&a.rp);
	policy_free(p);
	return rc;
}
