/* SPDX-License-Identifier: MIT */
/*
 * `conduit-policy diff OLD NEW [--log LOG...]`: the rules added, removed,
 * widened and narrowed from OLD to NEW, compared on the compiled policies
 * (so spelling does not matter), and with logs the recorded calls whose
 * verdict NEW would change, decided by policy_decide() on both sides.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CHANGED_KEEP 50 /* recorded calls listed; all are counted */

enum change { CH_SAME, CH_ADDED, CH_REMOVED, CH_WIDENED, CH_NARROWED, CH_CHANGED };
static const char *const change_names[] = {"same",    "added",	  "removed",
					   "widened", "narrowed", "changed"};

/* -1, 0, 1: rate a admits fewer, as many, more calls than b.  No rate is
 * the widest. */
static int rate_cmp(const struct policy_rule *a, const struct policy_rule *b)
{
	if (a->has_rate != b->has_rate)
		return a->has_rate ? -1 : 1;
	if (!a->has_rate)
		return 0;
	/* n per period compared as n_a * period_b against n_b * period_a. */
	unsigned __int128 x = (unsigned __int128)a->rate_n * b->rate_period_ns;
	unsigned __int128 y = (unsigned __int128)b->rate_n * a->rate_period_ns;
	int r = x < y ? -1 : x > y;
	if (r == 0)
		r = a->burst < b->burst ? -1 : a->burst > b->burst;
	return r;
}

/* How new rule n relates to old rule o of the same method and kind. */
static enum change rule_relation(const struct policy_rule *o, const struct policy_rule *n)
{
	if (strcmp(o->method, n->method) != 0 || o->allow != n->allow)
		return CH_ADDED;
	bool eq = cons_equal(o->cons, o->ncons, n->cons, n->ncons);
	bool wider = cons_subsumes(n->cons, n->ncons, o->cons, o->ncons);
	bool narrower = cons_subsumes(o->cons, o->ncons, n->cons, n->ncons);
	int rc = rate_cmp(n, o);
	if (eq && rc == 0)
		return o->log == n->log ? CH_SAME : CH_CHANGED;
	if ((eq || wider) && rc >= 0)
		return CH_WIDENED;
	if ((eq || narrower) && rc <= 0)
		return CH_NARROWED;
	if (wider || narrower || eq)
		return CH_CHANGED; /* constraints one way, rate the other */
	return CH_ADDED;
}

static void rule_print(FILE *f, const struct policy_rule *r)
{
	fprintf(f, "%s %s", r->allow ? "allow" : "deny", r->method);
	for (size_t i = 0; i < r->ncons; i++) {
		fputs(i ? ", " : ": ", f);
		cons_print(f, &r->cons[i]);
	}
	if (r->has_rate) {
		static const struct {
			uint64_t ns;
			const char *unit;
		} units[] = {{3600000000000u, "h"},
			     {60000000000u, "m"},
			     {1000000000u, "s"},
			     {1000000u, "ms"}};
		uint64_t p = r->rate_period_ns;
		size_t u = 0;
		while (u + 1 < sizeof(units) / sizeof(units[0]) && p % units[u].ns)
			u++;
		fprintf(f, " rate %" PRIu64 "/", r->rate_n);
		if (p != units[u].ns || u == 3)
			fprintf(f, "%" PRIu64, p / units[u].ns);
		fprintf(f, "%s burst %" PRIu64, units[u].unit, r->burst);
	}
	if (r->log)
		fputs(" log", f);
}

struct differ {
	bool json;
	unsigned nchanges;
};

static void report(struct differ *d, enum change c, const char *layer, const struct policy_rule *o,
		   const struct policy_rule *n)
{
	const struct policy_rule *r = n ? n : o;
	if (d->json) {
		printf("%s{\"change\":\"%s\",\"layer\":", d->nchanges ? "," : "", change_names[c]);
		json_string(stdout, layer, strlen(layer));
		if (o)
			printf(",\"old_rule\":\"%s\",\"old_line\":%u", o->id, o->line);
		if (n)
			printf(",\"new_rule\":\"%s\",\"new_line\":%u", n->id, n->line);
		printf(",\"text\":");
		char *buf = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&buf, &len);
		if (m) {
			rule_print(m, r);
			fclose(m);
			json_string(stdout, buf, len);
		} else {
			printf("null");
		}
		free(buf);
		putchar('}');
	} else {
		printf("  %-8s %s ", change_names[c], layer);
		if (o && n)
			printf("%s (line %u) -> %s (line %u): ", o->id, o->line, n->id, n->line);
		else
			printf("%s (line %u): ", r->id, r->line);
		if (o && n && c != CH_SAME) {
			rule_print(stdout, o);
			fputs("\n           now ", stdout);
		}
		rule_print(stdout, r);
		putchar('\n');
	}
	d->nchanges++;
}

static int diff_layer(struct differ *d, const char *name, const struct policy_layer *lo,
		      const struct policy_layer *ln, bool *used)
{
	size_t no = lo ? lo->nrules : 0, nn = ln ? ln->nrules : 0;
	enum change *rel = calloc(nn ? nn : 1, sizeof(*rel));
	size_t *pair = calloc(nn ? nn : 1, sizeof(*pair));
	if (!rel || !pair) {
		free(rel);
		free(pair);
		return -ENOMEM;
	}
	memset(used, 0, no * sizeof(*used));
	/* Identical rules pair first, so that an unchanged rule is never taken
	 * as the widening of another; then rules that one side contains. */
	for (size_t i = 0; i < nn; i++) {
		rel[i] = CH_ADDED;
		for (size_t k = 0; k < no && rel[i] == CH_ADDED; k++)
			if (!used[k] && rule_relation(&lo->rules[k], &ln->rules[i]) == CH_SAME) {
				rel[i] = CH_SAME;
				pair[i] = k;
				used[k] = true;
			}
	}
	for (size_t i = 0; i < nn; i++)
		for (size_t k = 0; k < no && rel[i] == CH_ADDED; k++) {
			enum change c =
				used[k] ? CH_ADDED : rule_relation(&lo->rules[k], &ln->rules[i]);
			if (c != CH_ADDED) {
				rel[i] = c;
				pair[i] = k;
				used[k] = true;
			}
		}
	for (size_t i = 0; i < nn; i++)
		if (rel[i] != CH_SAME)
			report(d, rel[i], name, rel[i] == CH_ADDED ? NULL : &lo->rules[pair[i]],
			       &ln->rules[i]);
	for (size_t k = 0; k < no; k++)
		if (!used[k])
			report(d, CH_REMOVED, name, &lo->rules[k], NULL);
	free(rel);
	free(pair);
	return 0;
}

struct log_differ {
	bool json;
	const char *const *logs;
	struct replay old_rp, new_rp;
	uint64_t decisions, changed;
	int err;
};

static int on_record(const struct audit_record *rec, size_t file, uint64_t line, void *ud)
{
	struct log_differ *ld = ud;
	struct policy_decision od, nd;
	enum audit_verdict ov, nv;
	int ro = replay_record(&ld->old_rp, rec, &od, &ov);
	int rn = replay_record(&ld->new_rp, rec, &nd, &nv);
	if (ro == -ENOMEM || rn == -ENOMEM)
		return -ENOMEM;
	if (rec->event != AUDIT_EV_DECISION)
		return 0;
	ld->decisions++;
	/* A layer missing on one side is a verdict of its own. */
	const char *os = ro > 0 ? audit_verdict_name(ov) : "no-layer";
	const char *ns = rn > 0 ? audit_verdict_name(nv) : "no-layer";
	if (strcmp(os, ns) == 0)
		return 0;
	if (ld->changed++ >= CHANGED_KEEP)
		return 0;
	if (ld->json) {
		printf("%s{\"file\":", ld->changed > 1 ? "," : "");
		json_string(stdout, ld->logs[file], strlen(ld->logs[file]));
		printf(",\"line\":%" PRIu64 ",\"seq\":%" PRIu64 ",\"layer\":", line, rec->seq);
		json_string(stdout, rec->layer, strlen(rec->layer));
		printf(",\"method\":");
		json_string(stdout, rec->method, strlen(rec->method));
		printf(",\"old\":\"%s\",\"old_rule\":\"%s\",\"new\":\"%s\",\"new_rule\":\"%s\"}",
		       os, ro > 0 ? od.rule_id : "", ns, rn > 0 ? nd.rule_id : "");
		return 0;
	}
	printf("  %s:%" PRIu64 ": seq %" PRIu64 " ", ld->logs[file], line, rec->seq);
	cli_text(stdout, rec->layer);
	putchar(' ');
	cli_text(stdout, rec->method);
	for (size_t i = 0; i < rec->nargs; i++) {
		putchar(' ');
		cli_arg_print(stdout, &rec->args[i].arg);
	}
	printf(": %s (%s) -> %s (%s)\n", os, ro > 0 ? od.rule_id : "-", ns,
	       rn > 0 ? nd.rule_id : "-");
	return 0;
}

int cmd_diff(bool json, const char *old_path, const char *new_path, const char *const *logs,
	     size_t nlogs)
{
	struct policy *po = NULL, *pn = NULL;
	struct differ d = {.json = json};
	struct log_differ ld = {.json = json, .logs = logs};
	bool *used = NULL;
	int rc = cli_compile(old_path, &po);
	if (rc != EXIT_OK || (rc = cli_compile(new_path, &pn)) != EXIT_OK)
		goto out;
	rc = EXIT_USAGE;
	if (!(used = malloc(POLICY_RULES_MAX * sizeof(*used))))
		goto out;
	if (json) {
		printf("{\"old\":");
		json_string(stdout, old_path, strlen(old_path));
		printf(",\"new\":");
		json_string(stdout, new_path, strlen(new_path));
		printf(",\"changes\":[");
	} else
		printf("conduit-policy diff %s %s\n", old_path, new_path);
	for (size_t i = 0; i < policy_layer_count(pn); i++) {
		const struct policy_layer *ln = policy_layer_at(pn, i);
		if (diff_layer(&d, ln->spec.name, policy_layer(po, ln->spec.name), ln, used) < 0)
			goto out;
	}
	for (size_t i = 0; i < policy_layer_count(po); i++) {
		const struct policy_layer *lo = policy_layer_at(po, i);
		if (!policy_layer(pn, lo->spec.name) &&
		    diff_layer(&d, lo->spec.name, lo, NULL, used) < 0)
			goto out;
	}
	if (!json)
		printf("%u rule change%s\n", d.nchanges, d.nchanges == 1 ? "" : "s");
	else
		printf("],\"change_count\":%u", d.nchanges);
	rc = d.nchanges ? EXIT_DIFFERS : EXIT_OK;
	if (nlogs) {
		struct audit_verify_opts o = {.on_record = on_record, .userdata = &ld};
		struct audit_verify_result res;
		if (replay_init(&ld.old_rp, po) < 0 || replay_init(&ld.new_rp, pn) < 0) {
			rc = EXIT_USAGE;
			goto out;
		}
		if (json)
			printf(",\"calls\":[");
		else
			printf("\nrecorded calls whose verdict changes (first %d):\n",
			       CHANGED_KEEP);
		int r = audit_verify_files(logs, nlogs, &o, &res);
		if (r < 0) {
			fprintf(stderr, "conduit-policy: diff: %s\n", strerror(-r));
			rc = EXIT_USAGE;
			goto out;
		}
		if (json)
			printf("],\"decisions\":%" PRIu64 ",\"changed\":%" PRIu64
			       ",\"chain\":\"%s\"",
			       ld.decisions, ld.changed, audit_status_name(res.status));
		else
			printf("%" PRIu64 " of %" PRIu64 " recorded decisions change verdict; "
			       "chain %s\n",
			       ld.changed, ld.decisions, audit_status_name(res.status));
		if (res.status != AUDIT_OK && res.status != AUDIT_TORN)
			rc = EXIT_TAMPERED;
		else if (ld.changed)
			rc = EXIT_DIFFERS;
	}
	if (json)
		printf("}\n");
out:
	replay_fini(&ld.old_rp);
	replay_fini(&ld.new_rp);
	free(used);
	policy_free(po);
	policy_free(pn);
	return rc;
}
