/* SPDX-License-Identifier: MIT */
/*
 * The report of `conduit-policy audit`: a one-screen summary first, then
 * mismatches, violations by layer, rules never used and the calls nearest
 * their limits; or one JSON object with the same content.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-audit.h"

void auditor_print_mismatch(const struct auditor *a, FILE *f, const struct mismatch *m)
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
	fprintf(f, "%s:%" PRIu64 ": seq %" PRIu64 " ", a->logs[m->file], m->line, m->seq);
	cli_text(f, m->layer);
	fputc(' ', f);
	cli_text(f, m->method);
	fprintf(f, ": recorded %s (", audit_verdict_name(m->rec_v));
	cli_text(f, m->rec_rule[0] ? m->rec_rule : "no rule");
	fputs("), ", f);
	if (m->got_v)
		fprintf(f, "the policy says %s (%s, line %u)\n", audit_verdict_name(m->got_v),
			m->got_rule, m->got_line);
	else
		fputs("the policy has no such layer\n", f);
}

void auditor_print_clock(const struct auditor *a, FILE *f, const struct clock_err *c)
{
	bool back = c->kind == REPLAY_CLOCK_BACK;
	if (a->json) {
		fprintf(f, "{\"file\":");
		json_string(f, a->logs[c->file], strlen(a->logs[c->file]));
		fprintf(f, ",\"line\":%" PRIu64 ",\"seq\":%" PRIu64 ",\"kind\":\"%s\"", c->line,
			c->seq, back ? "back" : "mixed");
		if (back)
			fprintf(f, ",\"mono_ns\":%" PRIu64 ",\"previous_mono_ns\":%" PRIu64,
				c->mono, c->prev_mono);
		fputc('}', f);
		return;
	}
	fprintf(f, "%s:%" PRIu64 ": seq %" PRIu64 ": ", a->logs[c->file], c->line, c->seq);
	if (back)
		fprintf(f,
			"the broker's monotonic time went back: mono_ns %" PRIu64 " after %" PRIu64
			"\n",
			c->mono, c->prev_mono);
	else
		fputs("one broker run has decisions with and without mono_ns\n", f);
}

const char *auditor_result_name(int rc)
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
	printf("conduit-policy audit: %s: %s\n", policy_file_name(a->p), auditor_result_name(rc));
	if (a->follow)
		secs = 0; /* the time spent waiting says nothing */
	if (res->status == AUDIT_OK)
		printf("  chain       ok: %" PRIu64 " records, seq %" PRIu64 "..%" PRIu64
		       ", %" PRIu64 " lost, %" PRIu64 " torn lines closed\n",
		       res->records, a->first_seq, a->last_seq, res->lost, res->torn_closed);
	else
		printf("  chain       %s at %s:%" PRIu64 ": %s (%" PRIu64
		       " records read before it)\n",
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
	printf("  clock       %" PRIu64 " replayed on the broker's clock, %" PRIu64
	       " on record time (no mono_ns), %" PRIu64 " after lost records; %" PRIu64
	       " clock errors\n",
	       a->exact, a->utc, a->after_lost, a->clock_errors);
	printf("  events      %" PRIu64 " violations, %" PRIu64 " exits, %" PRIu64
	       " spawns, %" PRIu64 " reloads (%" PRIu64 " rejected), %" PRIu64 " alarms, %" PRIu64
	       " audit gaps\n",
	       a->events[AUDIT_EV_VIOLATION], a->events[AUDIT_EV_EXIT], a->events[AUDIT_EV_SPAWN],
	       a->events[AUDIT_EV_RELOAD], a->events[AUDIT_EV_RELOAD_REJECTED],
	       a->events[AUDIT_EV_ALARM], a->events[AUDIT_EV_GAP]);
	printf("  rules       %zu of %zu never used\n", unused_count(a), policy_rule_count(a->p));
	if (!a->follow)
		printf("  speed       %.0f records/s\n",
		       secs > 0 ? (double)a->records / secs : 0.0);

	if (a->mismatches) {
		if (a->mismatches > MISMATCH_KEEP)
			printf("\nverdict mismatches (the first %d of %" PRIu64 "):\n",
			       MISMATCH_KEEP, a->mismatches);
		else
			printf("\nverdict mismatches:\n");
		for (uint64_t i = 0; i < a->mismatches && i < MISMATCH_KEEP; i++) {
			fputs("  ", stdout);
			auditor_print_mismatch(a, stdout, &a->mm[i]);
		}
	}
	if (a->clock_errors) {
		printf("\nclock errors%s:\n",
		       a->clock_errors > MISMATCH_KEEP ? " (the first 20)" : "");
		for (uint64_t i = 0; i < a->clock_errors && i < MISMATCH_KEEP; i++) {
			fputs("  ", stdout);
			auditor_print_clock(a, stdout, &a->ce[i]);
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
		for (size_t k = 0; k < s->ncls; k++) {
			printf(", %" PRIu64 " ", s->cls[k].n);
			cli_text(stdout, s->cls[k].name);
		}
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
	printf(",\"result\":\"%s\",\"chain\":{\"status\":\"%s\",\"file\":", auditor_result_name(rc),
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
		auditor_print_mismatch(a, stdout, &a->mm[i]);
	}
	printf("],\"clock\":{\"exact\":%" PRIu64 ",\"record_time\":%" PRIu64
	       ",\"after_lost\":%" PRIu64 "},\"clock_error_count\":%" PRIu64 ",\"clock_errors\":[",
	       a->exact, a->utc, a->after_lost, a->clock_errors);
	for (uint64_t i = 0; i < a->clock_errors && i < MISMATCH_KEEP; i++) {
		if (i)
			putchar(',');
		auditor_print_clock(a, stdout, &a->ce[i]);
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

void auditor_report(struct auditor *a, const struct audit_verify_result *res, int rc, double secs)
{
	qsort(a->nr, a->nnear, sizeof(a->nr[0]), near_cmp);
	if (a->json)
		print_json(a, res, rc, secs);
	else
		print_text(a, res, rc, secs);
}
