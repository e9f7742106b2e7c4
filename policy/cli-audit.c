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
	struct mismatch mm[MISMATCH_KEEP];
	struct near nr[NEAR_KEEP];
	size_t nnear;
	int64_t first_us, last_us;
	uint64_t first_seq, last_seq;
	int inotify_fd;
};

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
		arg_print(m, v);
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

static void print_mismatch(const struct auditor *a, FILE *f, const struct mismatch *m)
{
	if (a->json) {
		fprintf(f, "{\"file\":");
		json_string(f, a->logs[m->file], strlen(a->logs[m->file]));
		fprintf(f, ",\"line\":%" PRIu64 ",\"seq\":%" PRIu64 ",\"layer\":", m->line, m->seq);
		json_string(f, m->layer, strlen(m->layer));
		fputs(",\"method\":", f);
		json_string(f, m->method, strlen(m->method));
		fprintf(f, ",\"recorded\":\"%s\",\"recorded_rule\":", audit_verdict_name(m->rec_v));
		json_string(f, m->rec_rule, strlen(m->rec_rule));
		fprintf(f, ",\"policy\":\"%s\",\"policy_rule\":",
			m->got_v ? audit_verdict_name(m->got_v) : "unknown-layer");
		json_string(f, m->got_rule, strlen(m->got_rule));
		fprintf(f, ",\"policy_line\":%u}", m->got_line);
		return;
	}
	fprintf(f, "%s:%" PRIu64 ": seq %" PRIu64 " %s %s: recorded %s (%s), ", a->logs[m->file],
		m->line, m->seq, m->layer, m->method, audit_verdict_name(m->rec_v),
		m->rec_rule[0] ? m->rec_rule : "no rule");
	if (m->got_v)
		fprintf(f, "the policy says %s (%s, line %u)\n", audit_verdict_name(m->got_v),
			m->got_rule, m->got_line);
	else
		fprintf(f, "the policy has no layer '%s'\n", m->layer);
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
	else if (r > 0)
		s->default_hits++;
	if (r > 0 && v == AUDIT_VERDICT_ALLOW && d.rule)
		near_check(a, rec, d.rule, file, line);
	bool same = r > 0 && v == rec->verdict && (!rec->rule || strcmp(rec->rule, d.rule_id) == 0);
	if (same)
		return;
	/* Bucket refills run on the broker's monotonic clock and the replay on
	 * the records' wall clock: the same rule allowing or rate-limiting is
	 * timing, not a different decision. */
	bool rated = (v == AUDIT_VERDICT_ALLOW || v == AUDIT_VERDICT_RATE_LIMITED) &&
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
		fputs(a->json ? "{\"mismatch\":" : "mismatch: ", stdout);
		print_mismatch(a, stdout, m);
		fputs(a->json ? "}\n" : "", stdout);
		fflush(stdout);
	}
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

static const char *result_name(int rc)
{
	switch (rc) {
	case EXIT_OK:
		return "clean";
	case EXIT_TAMPERED:
		return "tampered";
	case EXIT_MISMATCH:
		return "verdict-mismatch";
	case EXIT_TORN:
		return "torn";
	}
	return "error";
}

static size_t unused_count(const struct auditor *a)
{
	size_t n = 0;
	for (size_t i = 0; i + 1 < a->nls; i++)
		for (size_t k = 0; k < policy_layer_at(a->p, i)->nrules; k++)
			n += a->ls[i].hits[k] == 0;
	return n;
}

static int near_cmp(const void *x, const void *y)
{
	double a = ((const struct near *)x)->frac, b = ((const struct near *)y)->frac;
	return a < b ? -1 : a > b;
}

static void print_text(struct auditor *a, const struct audit_verify_result *res, int rc,
		       double secs)
{
	char t1[64], t2[64];
	cli_time(a->first_us, t1);
	cli_time(a->last_us, t2);
	const uint64_t *v = a->verdicts;
	printf("conduit-policy audit: %s: %s\n", policy_file_name(a->p), result_name(rc));
	if (res->status == AUDIT_OK)
		printf("  chain       ok: %" PRIu64 " records, seq %" PRIu64 "..%" PRIu64
		       ", %" PRIu64 " lost, %" PRIu64 " torn lines closed\n",
		       res->records, a->first_seq, a->last_seq, res->lost, res->torn_closed);
	else
		printf("  chain       %s at %s:%" PRIu64 ": %s (%" PRIu64
		       " records verified before it)\n",
		       audit_status_name(res->status),
		       res->status == AUDIT_EMPTY ? "-" : a->logs[res->file], res->line,
		       res->reason, res->records);
	if (a->records)
		printf("  time        %s .. %s\n", t1, t2);
	printf("  decisions   %" PRIu64 ": %" PRIu64 " allow, %" PRIu64 " deny, %" PRIu64
	       " rate-limited, %" PRIu64 " complain\n",
	       a->decisions, v[AUDIT_VERDICT_ALLOW], v[AUDIT_VERDICT_DENY],
	       v[AUDIT_VERDICT_RATE_LIMITED], v[AUDIT_VERDICT_COMPLAIN]);
	printf("  replay      %" PRIu64 " verdict mismatches, %" PRIu64 " rate timing, %" PRIu64
	       " not replayable (truncated values)\n",
	       a->mismatches, a->rate_timing, a->unverifiable);
	printf("  events      %" PRIu64 " violations, %" PRIu64 " exits, %" PRIu64
	       " spawns, %" PRIu64 " reloads (%" PRIu64 " rejected), %" PRIu64 " alarms, %" PRIu64
	       " audit gaps\n",
	       a->events[AUDIT_EV_VIOLATION], a->events[AUDIT_EV_EXIT], a->events[AUDIT_EV_SPAWN],
	       a->events[AUDIT_EV_RELOAD], a->events[AUDIT_EV_RELOAD_REJECTED],
	       a->events[AUDIT_EV_ALARM], a->events[AUDIT_EV_GAP]);
	printf("  rules       %zu of %zu never used\n", unused_count(a), policy_rule_count(a->p));
	printf("  speed       %.0f records/s\n", secs > 0 ? (double)a->records / secs : 0.0);

	if (a->mismatches) {
		printf("\nverdict mismatches (first %d):\n", MISMATCH_KEEP);
		for (uint64_t i = 0; i < a->mismatches && i < MISMATCH_KEEP; i++) {
			fputs("  ", stdout);
			print_mismatch(a, stdout, &a->mm[i]);
		}
	}
	printf("\nby layer:\n");
	for (size_t i = 0; i < a->nls; i++) {
		const struct layer_stat *s = &a->ls[i];
		if (!s->decisions && !s->ncls && i + 1 == a->nls)
			continue;
		printf("  %-12s %" PRIu64 " decisions, %" PRIu64 " deny (%" PRIu64
		       " by default), %" PRIu64 " rate-limited, %" PRIu64 " complain",
		       s->name, s->decisions, s->verdicts[AUDIT_VERDICT_DENY], s->default_hits,
		       s->verdicts[AUDIT_VERDICT_RATE_LIMITED],
		       s->verdicts[AUDIT_VERDICT_COMPLAIN]);
		for (size_t k = 0; k < s->ncls; k++)
			printf(", %" PRIu64 " %s", s->cls[k].n, s->cls[k].name);
		if (s->cls_other)
			printf(", %" PRIu64 " other", s->cls_other);
		putchar('\n');
	}
	if (unused_count(a)) {
		printf("\nrules never used:\n");
		for (size_t i = 0; i + 1 < a->nls; i++) {
			const struct policy_layer *l = policy_layer_at(a->p, i);
			for (size_t k = 0; k < l->nrules; k++)
				if (!a->ls[i].hits[k])
					printf("  %s:%u: %s %s %s\n", policy_file_name(a->p),
					       l->rules[k].line, l->rules[k].id,
					       l->rules[k].allow ? "allow" : "deny",
					       l->rules[k].method);
		}
	}
	if (a->nnear) {
		printf("\nallowed calls closest to a limit:\n");
		for (size_t i = 0; i < a->nnear; i++) {
			const struct near *n = &a->nr[i];
			printf("  %s:%" PRIu64 ": seq %" PRIu64 " %s %s, %.1f%% from the edge of ",
			       a->logs[n->file], n->line, n->seq, n->rule->id, n->value,
			       100.0 * n->frac);
			cons_print(stdout, n->cons);
			printf(" (line %u)\n", n->rule->line);
		}
	}
}

static void print_json(struct auditor *a, const struct audit_verify_result *res, int rc,
		       double secs)
{
	char t1[64], t2[64];
	cli_time(a->first_us, t1);
	cli_time(a->last_us, t2);
	printf("{\"policy\":");
	json_string(stdout, policy_file_name(a->p), strlen(policy_file_name(a->p)));
	printf(",\"result\":\"%s\",\"chain\":{\"status\":\"%s\",\"file\":", result_name(rc),
	       audit_status_name(res->status));
	if (res->status == AUDIT_OK || res->status == AUDIT_EMPTY)
		printf("null");
	else
		json_string(stdout, a->logs[res->file], strlen(a->logs[res->file]));
	printf(",\"line\":%" PRIu64 ",\"col\":%u,\"reason\":", res->line, res->col);
	json_string(stdout, res->reason, strlen(res->reason));
	printf(",\"records\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"torn_closed\":%" PRIu64
	       "},\"first_seq\":%" PRIu64 ",\"last_seq\":%" PRIu64
	       ",\"first_time\":\"%s\",\"last_time\":\"%s\",\"decisions\":%" PRIu64
	       ",\"verdicts\":{\"allow\":%" PRIu64 ",\"deny\":%" PRIu64 ",\"rate-limited\":%" PRIu64
	       ",\"complain\":%" PRIu64 "}",
	       res->records, res->lost, res->torn_closed, a->first_seq, a->last_seq, t1, t2,
	       a->decisions, a->verdicts[AUDIT_VERDICT_ALLOW], a->verdicts[AUDIT_VERDICT_DENY],
	       a->verdicts[AUDIT_VERDICT_RATE_LIMITED], a->verdicts[AUDIT_VERDICT_COMPLAIN]);
	printf(",\"mismatch_count\":%" PRIu64 ",\"rate_timing\":%" PRIu64
	       ",\"not_replayable\":%" PRIu64 ",\"mismatches\":[",
	       a->mismatches, a->rate_timing, a->unverifiable);
	for (uint64_t i = 0; i < a->mismatches && i < MISMATCH_KEEP; i++) {
		if (i)
			putchar(',');
		print_mismatch(a, stdout, &a->mm[i]);
	}
	printf("],\"events\":{");
	for (int e = AUDIT_EV_START; e <= AUDIT_EV_GAP; e++)
		printf("%s\"%s\":%" PRIu64, e == AUDIT_EV_START ? "" : ",",
		       audit_event_name((enum audit_event)e), a->events[e]);
	printf("},\"layers\":[");
	bool first = true;
	for (size_t i = 0; i < a->nls; i++) {
		const struct layer_stat *s = &a->ls[i];
		if (!s->decisions && !s->ncls && i + 1 == a->nls)
			continue;
		printf("%s{\"layer\":", first ? "" : ",");
		first = false;
		if (i + 1 == a->nls)
			printf("null");
		else
			json_string(stdout, s->name, strlen(s->name));
		printf(",\"decisions\":%" PRIu64 ",\"deny\":%" PRIu64 ",\"default_deny\":%" PRIu64
		       ",\"rate_limited\":%" PRIu64 ",\"complain\":%" PRIu64 ",\"violations\":{",
		       s->decisions, s->verdicts[AUDIT_VERDICT_DENY], s->default_hits,
		       s->verdicts[AUDIT_VERDICT_RATE_LIMITED],
		       s->verdicts[AUDIT_VERDICT_COMPLAIN]);
		for (size_t k = 0; k < s->ncls; k++) {
			printf("%s", k ? "," : "");
			json_string(stdout, s->cls[k].name, strlen(s->cls[k].name));
			printf(":%" PRIu64, s->cls[k].n);
		}
		printf("%s\"other\":%" PRIu64 "}}", s->ncls ? "," : "", s->cls_other);
	}
	printf("],\"unused_rules\":[");
	first = true;
	for (size_t i = 0; i + 1 < a->nls; i++) {
		const struct policy_layer *l = policy_layer_at(a->p, i);
		for (size_t k = 0; k < l->nrules; k++)
			if (!a->ls[i].hits[k]) {
				printf("%s{\"rule\":\"%s\",\"line\":%u,\"method\":\"%s\"}",
				       first ? "" : ",", l->rules[k].id, l->rules[k].line,
				       l->rules[k].method);
				first = false;
			}
	}
	printf("],\"near_limits\":[");
	for (size_t i = 0; i < a->nnear; i++) {
		const struct near *n = &a->nr[i];
		printf("%s{\"file\":", i ? "," : "");
		json_string(stdout, a->logs[n->file], strlen(a->logs[n->file]));
		printf(",\"line\":%" PRIu64 ",\"seq\":%" PRIu64 ",\"rule\":\"%s\",\"rule_line\":%u,"
		       "\"arg\":\"%s\",\"call\":",
		       n->line, n->seq, n->rule->id, n->rule->line, n->cons->arg);
		json_string(stdout, n->value, strlen(n->value));
		printf(",\"edge_distance\":%.4f}", n->frac);
	}
	printf("],\"seconds\":%.3f,\"records_per_second\":%.0f}\n", secs,
	       secs > 0 ? (double)a->records / secs : 0.0);
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
	else if (a.mismatches)
		rc = EXIT_MISMATCH;
	else if (res.status == AUDIT_TORN)
		rc = EXIT_TORN;
	else
		rc = EXIT_OK;
	qsort(a.nr, a.nnear, sizeof(a.nr[0]), near_cmp);
	if (json)
		print_json(&a, &res, rc, secs);
	else
		print_text(&a, &res, rc, secs);
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
