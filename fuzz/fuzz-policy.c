/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the policy compiler (lexer, parser, linker) and, when an input
 * compiles, the matcher, the lints and both explain reports: every layer
 * decides its own expect lines and a few calls built from its rules.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ignore_diag(void *ud, const struct policy_diag *d)
{
	/* Format every diagnostic: the caret code reads the source line. */
	policy_diag_print(ud, d);
}

static FILE *devnull(void)
{
	static FILE *f;
	if (!f)
		f = fopen("/dev/null", "we");
	return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *out = devnull();
	struct policy *p = NULL;
	if (!out || policy_compile_buffer_cb("fuzz.policy", (const char *)data, size, ignore_diag,
					     out, &p) < 0)
		return 0;
	policy_lint(p, ignore_diag, out);
	struct policy_state *st;
	if (policy_state_new(p, &st) < 0) {
		policy_free(p);
		return 0;
	}
	for (size_t i = 0; i < policy_expect_count(p); i++) {
		const struct policy_expect *e = policy_expect_at(p, i);
		struct policy_decision d;
		(void)policy_decide(p, st, e->layer, e->method, e->args, e->nargs, i * 1000000ull,
				    &d);
		(void)policy_explain_call(p, e->layer, e->method, e->args, e->nargs, i & 1, out,
					  NULL);
	}
	for (size_t i = 0; i < policy_layer_count(p); i++) {
		const struct policy_layer *l = policy_layer_at(p, i);
		(void)policy_explain_layer(p, l->spec.name, false, out);
		(void)policy_explain_layer(p, l->spec.name, true, out);
		for (size_t k = 0; k < l->nrules && k < 8; k++) {
			/* a call with one argument per constraint, of a type the
			 * constraint looks at, with awkward values */
			const struct policy_rule *r = &l->rules[k];
			struct cdt_arg args[POLICY_CONS_MAX];
			size_t n = 0;
			for (size_t c = 0; c < r->ncons && n < POLICY_CONS_MAX; c++) {
				const struct policy_cons *pc = &r->cons[c];
				bool dup = false;
				for (size_t j = 0; j < n; j++)
					dup = dup || strcmp(args[j].name, pc->arg) == 0;
				if (dup)
					continue;
				struct cdt_arg a = {.name = pc->arg};
				if (pc->kind == POLICY_CONS_GLOB) {
					a.type = CDT_TYPE_STRING;
					a.v.str.ptr = pc->u.glob.pat;
					a.v.str.len = pc->u.glob.len;
				} else if (pc->kind == POLICY_CONS_BOOL) {
					a.type = CDT_TYPE_BOOL;
					a.v.b = pc->u.b;
				} else if (pc->kind == POLICY_CONS_RANGE) {
					a.type = CDT_TYPE_DOUBLE;
					a.v.d = pc->u.range.lo.kind == POLICY_NUM_F64
							? pc->u.range.lo.v.d
							: (double)(k * 7);
				} else {
					a.type = (k & 1) ? CDT_TYPE_U64 : CDT_TYPE_I64;
					a.v.u64 = UINT64_MAX - k;
				}
				/* insertion keeps names ascending (canonical order) */
				size_t j = n++;
				while (j > 0 && strcmp(args[j - 1].name, a.name) > 0) {
					args[j] = args[j - 1];
					j--;
				}
				args[j] = a;
			}
			struct policy_decision d;
			(void)policy_decide(p, st, l->spec.name, r->method, args, n, k, &d);
			(void)policy_explain_call(p, l->spec.name, r->method, args, n, k & 1, out,
						  NULL);
		}
	}
	policy_state_free(st);
	policy_free(p);
	return 0;
}
