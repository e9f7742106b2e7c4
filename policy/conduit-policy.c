/* SPDX-License-Identifier: MIT */
/*
 * conduit-policy: check, explain and test Conduit policy files with the
 * broker's own compiler and matcher.  docs/man/conduit-policy.1 documents
 * the verbs and exit codes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"

struct out {
	bool json;
	FILE *diag_json; /* memstream of diagnostic objects (json) */
	char *diag_buf;
	size_t diag_len;
	unsigned ndiag, nerrors, nwarnings;
};

static void on_diag(void *ud, const struct policy_diag *d)
{
	struct out *o = ud;
	if (d->severity == POLICY_SEV_ERROR)
		o->nerrors++;
	else
		o->nwarnings++;
	if (!o->json) {
		policy_diag_print(stderr, d);
		return;
	}
	if (!o->diag_json)
		return;
	fprintf(o->diag_json, "%s{\"file\":", o->ndiag++ ? "," : "");
	json_string(o->diag_json, d->file, strlen(d->file));
	fprintf(o->diag_json, ",\"line\":%u,\"col\":%u,\"severity\":\"%s\",\"message\":", d->line,
		d->col, d->severity == POLICY_SEV_ERROR ? "error" : "warning");
	json_string(o->diag_json, d->message, strlen(d->message));
	fputc('}', o->diag_json);
}

static void out_close_diags(struct out *o)
{
	if (o->diag_json) {
		fclose(o->diag_json);
		o->diag_json = NULL;
	}
}

/* The JSON summary object shared by every verb when a policy is rejected,
 * and by check. */
static void json_check(struct out *o, const char *file, bool valid, bool close)
{
	out_close_diags(o);
	printf("{\"file\":");
	json_string(stdout, file, strlen(file));
	printf(",\"valid\":%s,\"errors\":%u,\"warnings\":%u,\"diagnostics\":[%.*s]",
	       valid ? "true" : "false", o->nerrors, o->nwarnings, (int)o->diag_len,
	       o->diag_buf ? o->diag_buf : "");
	if (close)
		printf("}\n");
}

static int compile(struct out *o, const char *file, struct policy **ret)
{
	if (o->json)
		o->diag_json = open_memstream(&o->diag_buf, &o->diag_len);
	int r = policy_compile_file_cb(file, on_diag, o, ret);
	if (r < 0) {
		if (o->nerrors == 0) {
			/* every failure path reports, but never exit silently */
			struct policy_diag d = {.file = file,
						.severity = POLICY_SEV_ERROR,
						.message = strerror(-r)};
			on_diag(o, &d);
		}
		if (o->json)
			json_check(o, file, false, true);
		else
			fprintf(stderr, "%s: rejected (%u error%s)\n", file, o->nerrors,
				o->nerrors == 1 ? "" : "s");
	}
	return r;
}

static int cmd_check(struct out *o, const char *file)
{
	struct policy *p;
	if (compile(o, file, &p) < 0)
		return EXIT_INVALID;
	policy_lint(p, on_diag, o);
	if (o->json) {
		json_check(o, file, true, false);
		printf(",\"layers\":%zu,\"rules\":%zu,\"expects\":%zu}\n", policy_layer_count(p),
		       policy_rule_count(p), policy_expect_count(p));
	} else {
		printf("%s: valid, %zu layer%s, %zu rule%s, %u warning%s\n", file,
		       policy_layer_count(p), policy_layer_count(p) == 1 ? "" : "s",
		       policy_rule_count(p), policy_rule_count(p) == 1 ? "" : "s", o->nwarnings,
		       o->nwarnings == 1 ? "" : "s");
	}
	policy_free(p);
	return o->nwarnings ? EXIT_WARNINGS : EXIT_OK;
}

static int cmd_test(struct out *o, const char *file)
{
	struct policy *p;
	struct policy_state *st;
	if (compile(o, file, &p) < 0)
		return EXIT_INVALID;
	if (policy_state_new(p, &st) < 0) {
		policy_free(p);
		fprintf(stderr, "conduit-policy: out of memory\n");
		return EXIT_USAGE;
	}
	size_t n = policy_expect_count(p), failed = 0;
	if (o->json) {
		json_check(o, file, true, false);
		printf(",\"results\":[");
	}
	for (size_t i = 0; i < n; i++) {
		const struct policy_expect *e = policy_expect_at(p, i);
		struct policy_decision d;
		/* One shared state and a frozen clock: consecutive expect lines
		 * on a rate-limited rule spend its burst, deterministically. */
		int r = policy_decide(p, st, e->layer, e->method, e->args, e->nargs, 0, &d);
		bool pass = r == 0 && (int)d.verdict == e->verdict;
		if (!pass)
			failed++;
		if (o->json) {
			printf("%s{\"line\":%u,\"expect\":\"%s\",\"got\":\"%s\",\"rule\":",
			       i ? "," : "", e->line,
			       policy_verdict_name((enum policy_verdict)e->verdict),
			       r == 0 ? policy_verdict_name(d.verdict) : "error");
			if (r == 0 && d.rule)
				json_string(stdout, d.rule_id, strlen(d.rule_id));
			else
				printf("null");
			printf(",\"rule_line\":%u,\"pass\":%s}", r == 0 ? d.line : 0,
			       pass ? "true" : "false");
		} else if (!pass) {
			fprintf(stderr, "%s:%u:%u: error: expected %s, got %s", file, e->line,
				e->col, policy_verdict_name((enum policy_verdict)e->verdict),
				r == 0 ? policy_verdict_name(d.verdict) : strerror(-r));
			if (r == 0)
				fprintf(stderr, " (%s %s at line %u: %s)\n",
					d.rule ? "rule" : "default deny of layer", d.rule_id,
					d.line, d.reason);
			else
				fputc('\n', stderr);
		}
	}
	if (o->json)
		printf("],\"passed\":%zu,\"failed\":%zu}\n", n - failed, failed);
	else
		printf("%s: %zu expectation%s, %zu passed, %zu failed\n", file, n,
		       n == 1 ? "" : "s", n - failed, failed);
	policy_state_free(st);
	policy_free(p);
	return failed ? EXIT_VERDICT : EXIT_OK;
}

static int arg_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cdt_arg *)a)->name, ((const struct cdt_arg *)b)->name);
}

static int cmd_explain(struct out *o, const char *file, const char *layer, const char *method,
		       char **kv, int nkv)
{
	struct policy *p = NULL;
	struct cdt_arg args[CDT_ARGS_MAX];
	char *bufs[CDT_ARGS_MAX] = {0};
	int rc = EXIT_USAGE;
	if (nkv > CDT_ARGS_MAX) {
		fprintf(stderr, "conduit-policy: more than %d arguments\n", CDT_ARGS_MAX);
		return EXIT_USAGE;
	}
	for (int i = 0; i < nkv; i++) {
		char *eq = strchr(kv[i], '=');
		size_t vlen = eq ? strlen(eq + 1) : 0;
		if (!eq || !name_is_arg(kv[i], (size_t)(eq - kv[i]))) {
			fprintf(stderr, "conduit-policy: expected NAME=VALUE, got '%s'\n", kv[i]);
			goto out;
		}
		*eq = '\0';
		args[i] = (struct cdt_arg){.name = kv[i]};
		bufs[i] = malloc(vlen + 1);
		if (!bufs[i] ||
		    policy_value_parse(eq + 1, vlen, true, bufs[i], vlen + 1, &args[i]) < 0) {
			fprintf(stderr, "conduit-policy: bad value for '%s'\n", kv[i]);
			goto out;
		}
		for (int j = 0; j < i; j++)
			if (strcmp(args[j].name, args[i].name) == 0) {
				fprintf(stderr, "conduit-policy: argument '%s' given twice\n",
					kv[i]);
				goto out;
			}
	}
	if (method && !name_is_method(method, strlen(method))) {
		fprintf(stderr, "conduit-policy: '%s' is not a method name\n", method);
		goto out;
	}
	qsort(args, (size_t)nkv, sizeof(args[0]), arg_cmp);
	if (compile(o, file, &p) < 0) {
		rc = EXIT_INVALID;
		goto out;
	}
	out_close_diags(o);
	if (!policy_layer(p, layer)) {
		fprintf(stderr, "conduit-policy: %s: no layer '%s'\n", file, layer);
		goto out;
	}
	if (!method) {
		policy_explain_layer(p, layer, o->json, stdout);
		rc = EXIT_OK;
	} else {
		enum policy_verdict v;
		if (policy_explain_call(p, layer, method, args, (size_t)nkv, o->json, stdout, &v) <
		    0)
			goto out;
		rc = v == POLICY_ALLOW ? EXIT_OK : EXIT_VERDICT;
	}
out:
	for (int i = 0; i < nkv; i++)
		free(bufs[i]);
	policy_free(p);
	return rc;
}

static void usage(FILE *f)
{
	fputs("usage: conduit-policy [--format text|json] check FILE\n"
	      "       conduit-policy [--format text|json] test FILE\n"
	      "       conduit-policy [--format text|json] explain FILE LAYER [METHOD "
	      "[NAME=VALUE...]]\n"
	      "       conduit-policy [--format text|json] [--follow] [--closed] audit POLICY "
	      "LOG...\n"
	      "       conduit-policy [--format text|json] learn [--base POLICY] LOG...\n"
	      "       conduit-policy [--format text|json] diff OLD NEW [--log LOG]...\n"
	      "       conduit-policy --help | --version\n"
	      "\n"
	      "  check    validate FILE and lint it\n"
	      "  test     run FILE's expect lines\n"
	      "  explain  what LAYER may do, or the verdict on one call and the deciding rule\n"
	      "  audit    verify the logs' hash chain, decide every recorded call again and\n"
	      "           report mismatches, violations, unused rules, calls near a limit;\n"
	      "           --follow keeps reading the last log until SIGINT/SIGTERM;\n"
	      "           --closed: the log must end with its stop record\n"
	      "  learn    propose least-privilege rules for the recorded calls, as a policy\n"
	      "           fragment or as a diff against --base (prints only, writes nothing)\n"
	      "  diff     rules added, removed, widened, narrowed from OLD to NEW; with\n"
	      "           --log, the recorded calls whose verdict would change\n"
	      "\n"
	      "exit: 0 ok, 1 policy rejected, 2 usage or system error, 3 valid with warnings "
	      "(check),\n"
	      "      4 an expectation failed (test) or the call is not allowed (explain),\n"
	      "      5 audit: log tampered (chain or sequence broken), 6 audit: a recorded\n"
	      "      verdict differs from the policy's, 7 audit: torn tail only (crash),\n"
	      "      8 diff: the rules differ\n"
	      "See conduit-policy(1) and conduit.policy(5).\n",
	      f);
}

int main(int argc, char **argv)
{
	struct out o = {0};
	char **pos = calloc((size_t)(argc > 0 ? argc : 1), sizeof(char *));
	const char **logs = calloc((size_t)(argc > 0 ? argc : 1), sizeof(char *));
	const char *base = NULL;
	int npos = 0, nlogs = 0;
	bool follow = false, closed = false;
	if (!pos || !logs) {
		free(pos);
		free(logs);
		return EXIT_USAGE;
	}
	bool opts_done = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (opts_done || a[0] != '-' || a[1] == '\0') {
			pos[npos++] = argv[i];
			continue;
		}
		if (strcmp(a, "--") == 0) {
			opts_done = true;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			free(pos);
			free(logs);
			return EXIT_OK;
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("conduit-policy %s (policy language version 1)\n", CONDUIT_VERSION);
			free(pos);
			free(logs);
			return EXIT_OK;
		} else if (strcmp(a, "--follow") == 0) {
			follow = true;
		} else if (strcmp(a, "--closed") == 0) {
			closed = true;
		} else if (strcmp(a, "--base") == 0 && i + 1 < argc) {
			base = argv[++i];
		} else if (strcmp(a, "--log") == 0 && i + 1 < argc) {
			logs[nlogs++] = argv[++i];
		} else if (strcmp(a, "--format") == 0 || strncmp(a, "--format=", 9) == 0) {
			const char *v = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : "");
			if (strcmp(v, "json") == 0)
				o.json = true;
			else if (strcmp(v, "text") == 0)
				o.json = false;
			else {
				fprintf(stderr, "conduit-policy: --format takes text or json\n");
				free(pos);
				free(logs);
				return EXIT_USAGE;
			}
		} else {
			fprintf(stderr, "conduit-policy: unknown option '%s'\n", a);
			usage(stderr);
			free(pos);
			free(logs);
			return EXIT_USAGE;
		}
	}
	int rc = EXIT_USAGE;
	if (npos == 2 && strcmp(pos[0], "check") == 0)
		rc = cmd_check(&o, pos[1]);
	else if (npos == 2 && strcmp(pos[0], "test") == 0)
		rc = cmd_test(&o, pos[1]);
	else if (npos >= 3 && strcmp(pos[0], "explain") == 0)
		rc = cmd_explain(&o, pos[1], pos[2], npos > 3 ? pos[3] : NULL, pos + 4,
				 npos > 4 ? npos - 4 : 0);
	else if (npos >= 3 && strcmp(pos[0], "audit") == 0 && !base && !nlogs)
		rc = cmd_audit(o.json, follow, closed, pos[1], (const char *const *)pos + 2,
			       (size_t)npos - 2);
	else if (npos >= 2 && strcmp(pos[0], "learn") == 0 && !follow && !closed && !nlogs)
		rc = cmd_learn(o.json, base, (const char *const *)pos + 1, (size_t)npos - 1);
	else if (npos >= 3 && strcmp(pos[0], "diff") == 0 && !follow && !closed && !base) {
		for (int i = 3; i < npos; i++)
			logs[nlogs++] = pos[i];
		rc = cmd_diff(o.json, pos[1], pos[2], logs, (size_t)nlogs);
	} else
		usage(stderr);
	free(pos);
	free(logs);
	out_close_diags(&o);
	free(o.diag_buf);
	fflush(stdout);
	if (ferror(stdout)) {
		fprintf(stderr, "conduit-policy: write error\n");
		return EXIT_USAGE;
	}
	return rc;
}
