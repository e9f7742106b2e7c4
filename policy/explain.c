/* SPDX-License-Identifier: MIT */
/*
 * `explain`: what a layer may do, and why one call gets its verdict, in
 * plain words or JSON.  Output only; the verdict comes from policy_decide().
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "policy-int.h"

/* Length of the valid UTF-8 sequence at s[0..len), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
	if (n == 0 || c > 0xf4 || n > len)
		return 0;
	uint32_t cp = c & (0x7fu >> n);
	for (size_t k = 1; k < n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3fu);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* A JSON string; bytes that are not UTF-8 (a message may quote a cut
 * token) become U+FFFD so the output always parses. */
void json_string(FILE *f, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	fputc('"', f);
	for (size_t i = 0; i < len;) {
		unsigned char c = u[i];
		if (c >= 0x80) {
			size_t n = utf8_seq(u + i, len - i);
			if (n)
				fwrite(u + i, 1, n, f);
			else
				fputs("\\ufffd", f);
			i += n ? n : 1;
			continue;
		}
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
		i++;
	}
	fputc('"', f);
}

static void jstr(FILE *f, const char *s)
{
	if (s)
		json_string(f, s, strlen(s));
	else
		fputs("null", f);
}

void num_print(FILE *f, const struct policy_num *n)
{
	switch (n->kind) {
	case POLICY_NUM_I64:
		fprintf(f, "%" PRId64, n->v.i);
		break;
	case POLICY_NUM_U64:
		fprintf(f, "%" PRIu64, n->v.u);
		break;
	case POLICY_NUM_F64:
		if (isinf(n->v.d))
			fputs(n->v.d < 0 ? "-inf" : "inf", f);
		else
			fprintf(f, "%.17g", n->v.d);
		break;
	}
}

/* A string as the language writes it: quoted, escapes for what must be. */
void str_quote_print(FILE *f, const char *s, size_t len, bool literal)
{
	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || (literal && (c == '\\' || c == '*' || c == '?')))
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void range_print(FILE *f, const struct policy_num *lo, const struct policy_num *hi)
{
	bool lo_open = lo->kind == POLICY_NUM_F64 && isinf(lo->v.d) && lo->v.d < 0;
	bool hi_open = hi->kind == POLICY_NUM_F64 && isinf(hi->v.d) && hi->v.d > 0;
	if (!lo_open)
		num_print(f, lo);
	fputs("..", f);
	if (!hi_open)
		num_print(f, hi);
}

void cons_print(FILE *f, const struct policy_cons *c)
{
	fprintf(f, "%s ", c->arg);
	switch (c->kind) {
	case POLICY_CONS_GLOB:
		fputs(c->u.glob.literal ? "is " : "matches ", f);
		str_quote_print(f, c->u.glob.pat, c->u.glob.len, c->u.glob.literal);
		break;
	case POLICY_CONS_RANGE:
		if (policy_num_cmp(&c->u.range.lo, &c->u.range.hi) == 0) {
			fputs("is ", f);
			num_print(f, &c->u.range.lo);
		} else {
			fputs("in ", f);
			range_print(f, &c->u.range.lo, &c->u.range.hi);
		}
		break;
	case POLICY_CONS_NUMSET:
		fputs("in {", f);
		for (size_t i = 0; i < c->u.nums.n; i++) {
			if (i)
				fputs(", ", f);
			num_print(f, &c->u.nums.v[i]);
		}
		fputc('}', f);
		break;
	case POLICY_CONS_STRSET:
		fputs("one of {", f);
		for (size_t i = 0; i < c->u.strs.n; i++) {
			if (i)
				fputs(", ", f);
			str_quote_print(f, c->u.strs.v[i].pat, c->u.strs.v[i].len,
					c->u.strs.v[i].literal);
		}
		fputc('}', f);
		break;
	case POLICY_CONS_LEN:
		fprintf(f, "has length %" PRIu64 "..", c->u.len.lo);
		if (c->u.len.hi != UINT64_MAX)
			fprintf(f, "%" PRIu64, c->u.len.hi);
		break;
	case POLICY_CONS_BOOL:
		fputs(c->u.b ? "is true" : "is false", f);
		break;
	}
}

void arg_print(FILE *f, const struct cdt_arg *a)
{
	fprintf(f, "%s=", a->name);
	switch (a->type) {
	case CDT_TYPE_BOOL:
		fputs(a->v.b ? "true" : "false", f);
		break;
	case CDT_TYPE_I64:
		fprintf(f, "%" PRId64, a->v.i64);
		break;
	case CDT_TYPE_U64:
		fprintf(f, "%" PRIu64, a->v.u64);
		break;
	case CDT_TYPE_DOUBLE:
		if (isnan(a->v.d))
			fputs("nan", f);
		else if (isinf(a->v.d))
			fputs(a->v.d < 0 ? "-inf" : "inf", f);
		else
			fprintf(f, "%.17g", a->v.d);
		break;
	case CDT_TYPE_STRING:
		str_quote_print(f, a->v.str.ptr, a->v.str.len, true);
		break;
	case CDT_TYPE_BYTES:
		fprintf(f, "<%zu bytes>", a->v.bytes.len);
		break;
	case CDT_TYPE_FD:
		fputs("<fd>", f);
		break;
	}
}

/* Text of a constraint into a JSON string (through a memory stream). */
static void cons_json(FILE *f, const struct policy_cons *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m) {
		fputs("null", f);
		return;
	}
	cons_print(m, c);
	if (fclose(m) == 0)
		json_string(f, buf, len);
	else
		fputs("null", f);
	free(buf);
}

static void cons_list(FILE *f, const struct policy_cons *c, size_t n, bool json)
{
	if (json) {
		fputc('[', f);
		for (size_t i = 0; i < n; i++) {
			if (i)
				fputc(',', f);
			cons_json(f, &c[i]);
		}
		fputc(']', f);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		fputs(i ? " and " : " when ", f);
		cons_print(f, &c[i]);
	}
}

static void period_print(FILE *f, uint64_t ns)
{
	if (ns % 3600000000000ull == 0)
		fprintf(f, "%" PRIu64 "h", (uint64_t)(ns / 3600000000000ull));
	else if (ns % 60000000000ull == 0)
		fprintf(f, "%" PRIu64 "m", (uint64_t)(ns / 60000000000ull));
	else if (ns % 1000000000ull == 0)
		fprintf(f, "%" PRIu64 "s", (uint64_t)(ns / 1000000000ull));
	else
		fprintf(f, "%" PRIu64 "ms", (uint64_t)(ns / 1000000ull));
}

static void rule_text(FILE *f, const struct policy *p, const struct policy_rule *r)
{
	fprintf(f, "%s", r->method);
	cons_list(f, r->cons, r->ncons, false);
	if (r->has_rate) {
		fprintf(f, ", at most %" PRIu64 " per ", r->rate_n);
		period_print(f, r->rate_period_ns);
		fprintf(f, " (burst %" PRIu64 ")", r->burst);
	}
	if (r->log)
		fputs(", complain mode (logged, not enforced)", f);
	fprintf(f, "  [%s, %s:%u]\n", r->id, p->name, r->line);
}

static void rule_json(FILE *f, const struct policy_rule *r)
{
	fputs("{\"id\":", f);
	jstr(f, r->id);
	fprintf(f, ",\"line\":%u,\"action\":\"%s\",\"method\":", r->line,
		r->allow ? "allow" : "deny");
	jstr(f, r->method);
	fputs(",\"constraints\":", f);
	cons_list(f, r->cons, r->ncons, true);
	if (r->has_rate)
		fprintf(f,
			",\"rate\":{\"count\":%" PRIu64 ",\"period_ns\":%" PRIu64
			",\"burst\":%" PRIu64 "}",
			r->rate_n, r->rate_period_ns, r->burst);
	fprintf(f, ",\"log\":%s}", r->log ? "true" : "false");
}

static void str_list(FILE *f, const char *const *v, size_t n, bool json)
{
	if (json)
		fputc('[', f);
	for (size_t i = 0; i < n; i++) {
		if (json) {
			if (i)
				fputc(',', f);
			jstr(f, v[i]);
		} else {
			fprintf(f, "%s%s", i ? " " : "", v[i]);
		}
	}
	if (json)
		fputc(']', f);
}

static const char *res_kind(const struct policy_resource *r)
{
	return r->kind == POLICY_RES_CONNECT  ? "connect"
	       : r->kind == POLICY_RES_LISTEN ? "listen"
					      : "open";
}

static void open_mode(FILE *f, unsigned m)
{
	fputs(m & POLICY_OPEN_APPEND				  ? "append"
	      : (m & POLICY_OPEN_READ) && (m & POLICY_OPEN_WRITE) ? "read-write"
	      : m & POLICY_OPEN_WRITE				  ? "write"
								  : "read",
	      f);
	if (m & POLICY_OPEN_CREATE)
		fputs(" create", f);
}

static const char *restart_mode(enum policy_restart_mode m)
{
	return m == POLICY_RESTART_ALWAYS  ? "always"
	       : m == POLICY_RESTART_NEVER ? "never"
					   : "on-failure";
}

static void user_text(FILE *f, const struct layer_spec *sp, bool json)
{
	if (sp->user_kind == LAYER_USER_DYNAMIC)
		fputs(json ? "\"dynamic\"" : "a dynamic uid/gid", f);
	else if (sp->user_kind == LAYER_USER_ID)
		fprintf(f, json ? "\"%u:%u\"" : "uid %u gid %u", (unsigned)sp->uid,
			(unsigned)sp->gid);
	else if (json) {
		fputc('"', f);
		fprintf(f, "%s:%s\"", sp->user_name, sp->group_name ? sp->group_name : "");
	} else {
		fprintf(f, "user %s", sp->user_name);
		if (sp->group_name)
			fprintf(f, " group %s", sp->group_name);
	}
}

static void explain_layer_text(const struct policy *p, const struct policy_layer *L, FILE *f)
{
	const struct layer_spec *sp = &L->spec;
	fprintf(f, "layer %s (%s:%u)%s\n", sp->name, p->name, L->line,
		L->logonly ? ", complain mode: verdicts are logged, not enforced" : "");
	fprintf(f, "  runs %s", sp->exec ? sp->exec : "(no exec)");
	for (size_t i = 1; i < sp->nargv; i++)
		fprintf(f, " \"%s\"", sp->argv[i]);
	fputs(" as ", f);
	user_text(f, sp, false);
	fputc('\n', f);
	static const char *const profs[] = {"stdio", "tty", "recvfd", "time", "net-client"};
	fputs("  syscalls:", f);
	for (size_t i = 0; i < 5; i++)
		if (sp->profiles & (1u << i))
			fprintf(f, " %s", profs[i]);
	if (!sp->profiles)
		fputs(" (no profile)", f);
	if (sp->nsyscalls_allow) {
		fputs("; also allowed: ", f);
		str_list(f, sp->syscalls_allow, sp->nsyscalls_allow, false);
	}
	if (sp->nsyscalls_deny) {
		fputs("; denied: ", f);
		str_list(f, sp->syscalls_deny, sp->nsyscalls_deny, false);
	}
	fputs(sp->seccomp_log ? "; violations logged, not killed\n" : "\n", f);
	for (size_t i = 0; i < sp->nlandlock; i++)
		fprintf(f, "  may %s %s\n", sp->landlock[i].write ? "read and write" : "read",
			sp->landlock[i].path);
	if (sp->landlock_min_abi)
		fprintf(f, "  refuses to start below Landlock ABI %d\n", sp->landlock_min_abi);
	if (sp->namespaces) {
		static const char *const ns[] = {"net", "ipc", "uts", "pid", "mount"};
		fputs("  new namespaces:", f);
		for (size_t i = 0; i < 5; i++)
			if (sp->namespaces & (1u << i))
				fprintf(f, " %s", ns[i]);
		fputc('\n', f);
	}
	if (sp->nenv_allow) {
		fputs("  keeps environment variables: ", f);
		str_list(f, sp->env_allow, sp->nenv_allow, false);
		fputc('\n', f);
	}
	fputs("  environment default: " LAYER_ENV_DEFAULT " (unless kept and set)\n", f);
	const struct layer_limits *lm = &sp->limits;
	const uint64_t lv[] = {lm->memory, lm->files, lm->procs, lm->cpu, lm->fsize};
	static const char *const ln[] = {"memory bytes", "open files", "processes", "cpu seconds",
					 "file size bytes"};
	for (size_t i = 0; i < 5; i++)
		if (lv[i] != LAYER_LIMIT_UNSET)
			fprintf(f, "  limit: %" PRIu64 " %s\n", lv[i], ln[i]);
	fprintf(f, "  restart: %s, backoff ", restart_mode(L->restart.mode));
	period_print(f, L->restart.backoff_min_ns);
	fputs("..", f);
	period_print(f, L->restart.backoff_max_ns);
	if (L->restart.max) {
		fprintf(f, ", at most %u per ", L->restart.max);
		period_print(f, L->restart.window_ns);
	}
	fputc('\n', f);
	for (size_t i = 0; i < L->nresources; i++) {
		const struct policy_resource *r = &L->resources[i];
		if (r->kind == POLICY_RES_OPEN) {
			fprintf(f, "  resource: the broker opens %s (", r->address);
			open_mode(f, r->open_mode);
			fputs(")\n", f);
		} else {
			fprintf(f, "  resource %s: the broker %s %s %s", r->name,
				r->kind == POLICY_RES_CONNECT ? "connects to" : "listens on",
				r->family == POLICY_FAMILY_TCP ? "tcp" : "unix", r->address);
			if (r->family == POLICY_FAMILY_TCP)
				fprintf(f, " port %u", r->port);
			fputc('\n', f);
		}
	}
	if (L->nprovides) {
		fputs("  serves: ", f);
		str_list(f, L->provides, L->nprovides, false);
		fputc('\n', f);
	}
	if (L->npublishes) {
		fputs("  publishes: ", f);
		str_list(f, L->publishes, L->npublishes, false);
		fputc('\n', f);
	}
	for (size_t i = 0; i < L->nsubscriptions; i++) {
		fprintf(f, "  receives event %s", L->subscriptions[i].event);
		cons_list(f, L->subscriptions[i].cons, L->subscriptions[i].ncons, false);
		fputc('\n', f);
	}
	fputs("  in order, the first matching rule decides:\n", f);
	for (size_t i = 0; i < L->nrules; i++) {
		fputs(L->rules[i].allow ? "    may call " : "    may not call ", f);
		rule_text(f, p, &L->rules[i]);
	}
	fputs("  every other call is denied.\n", f);
}

static void explain_layer_json(const struct policy *p, const struct policy_layer *L, FILE *f)
{
	const struct layer_spec *sp = &L->spec;
	fputs("{\"layer\":", f);
	jstr(f, sp->name);
	fputs(",\"file\":", f);
	jstr(f, p->name);
	fprintf(f, ",\"line\":%u,\"log\":%s,\"exec\":", L->line, L->logonly ? "true" : "false");
	jstr(f, sp->exec);
	fputs(",\"argv\":", f);
	str_list(f, sp->argv, sp->nargv, true);
	fputs(",\"user\":", f);
	user_text(f, sp, true);
	fprintf(f, ",\"profiles\":%u,\"syscalls_allow\":", sp->profiles);
	str_list(f, sp->syscalls_allow, sp->nsyscalls_allow, true);
	fputs(",\"syscalls_deny\":", f);
	str_list(f, sp->syscalls_deny, sp->nsyscalls_deny, true);
	fputs(",\"env\":", f);
	str_list(f, sp->env_allow, sp->nenv_allow, true);
	fputs(",\"env_default\":[", f);
	jstr(f, LAYER_ENV_DEFAULT);
	fputc(']', f);
	fputs(",\"landlock\":[", f);
	for (size_t i = 0; i < sp->nlandlock; i++) {
		fputs(i ? ",{\"path\":" : "{\"path\":", f);
		jstr(f, sp->landlock[i].path);
		fprintf(f, ",\"write\":%s}", sp->landlock[i].write ? "true" : "false");
	}
	fprintf(f, "],\"landlock_min_abi\":%d,\"seccomp_log\":%s,\"namespaces\":%u",
		sp->landlock_min_abi, sp->seccomp_log ? "true" : "false", sp->namespaces);
	const struct layer_limits *lm = &sp->limits;
	const uint64_t lv[] = {lm->memory, lm->files, lm->procs, lm->cpu, lm->fsize};
	static const char *const ln[] = {"memory", "files", "procs", "cpu", "fsize"};
	fputs(",\"limits\":{", f);
	bool firstlim = true;
	for (size_t i = 0; i < 5; i++)
		if (lv[i] != LAYER_LIMIT_UNSET) {
			fprintf(f, "%s\"%s\":%" PRIu64, firstlim ? "" : ",", ln[i], lv[i]);
			firstlim = false;
		}
	fprintf(f,
		"},\"restart\":{\"mode\":\"%s\",\"backoff_min_ns\":%" PRIu64
		",\"backoff_max_ns\":%" PRIu64 ",\"max\":%u,\"window_ns\":%" PRIu64 "}",
		restart_mode(L->restart.mode), L->restart.backoff_min_ns, L->restart.backoff_max_ns,
		L->restart.max, L->restart.window_ns);
	fputs(",\"resources\":[", f);
	for (size_t i = 0; i < L->nresources; i++) {
		const struct policy_resource *r = &L->resources[i];
		fprintf(f, "%s{\"kind\":\"%s\",\"name\":", i ? "," : "", res_kind(r));
		jstr(f, r->name);
		fputs(",\"address\":", f);
		jstr(f, r->address);
		fprintf(f, ",\"port\":%u,\"line\":%u}", r->port, r->line);
	}
	fputs("],\"provides\":", f);
	str_list(f, L->provides, L->nprovides, true);
	fputs(",\"publishes\":", f);
	str_list(f, L->publishes, L->npublishes, true);
	fputs(",\"subscribes\":[", f);
	for (size_t i = 0; i < L->nsubscriptions; i++) {
		fputs(i ? ",{\"event\":" : "{\"event\":", f);
		jstr(f, L->subscriptions[i].event);
		fputs(",\"constraints\":", f);
		cons_list(f, L->subscriptions[i].cons, L->subscriptions[i].ncons, true);
		fputc('}', f);
	}
	fputs("],\"rules\":[", f);
	for (size_t i = 0; i < L->nrules; i++) {
		if (i)
			fputc(',', f);
		rule_json(f, &L->rules[i]);
	}
	fputs("],\"default\":\"deny\"}\n", f);
}

int policy_explain_layer(const struct policy *p, const char *layer, bool json, FILE *out)
{
	const struct policy_layer *L = policy_layer(p, layer);
	if (!L)
		return -ENOENT;
	if (json)
		explain_layer_json(p, L, out);
	else
		explain_layer_text(p, L, out);
	return 0;
}

int policy_explain_call(const struct policy *p, const char *layer, const char *method,
			const struct cdt_arg *args, size_t nargs, bool json, FILE *out,
			enum policy_verdict *ret_verdict)
{
	struct policy_state *st;
	struct policy_decision d;
	const struct policy_layer *L = policy_layer(p, layer);
	if (!L)
		return -ENOENT;
	int r = policy_state_new(p, &st);
	if (r < 0)
		return r;
	r = policy_decide(p, st, layer, method, args, nargs, 0, &d);
	policy_state_free(st);
	if (r < 0)
		return r;
	if (json) {
		fprintf(out, "{\"verdict\":\"%s\",\"logonly\":%s,\"rule\":",
			policy_verdict_name(d.verdict), d.logonly ? "true" : "false");
		jstr(out, d.rule ? d.rule_id : NULL);
		fputs(",\"file\":", out);
		jstr(out, d.file);
		fprintf(out, ",\"line\":%u,\"reason\":", d.line);
		jstr(out, d.reason);
		fputs(",\"trace\":[", out);
	} else {
		fprintf(out, "%s: %s %s", policy_verdict_name(d.verdict), layer, method);
		for (size_t i = 0; i < nargs; i++) {
			fputc(' ', out);
			arg_print(out, &args[i]);
		}
		fputc('\n', out);
		if (d.rule) {
			fprintf(out, "  %s: %s at %s:%u: %s ", d.reason, d.rule_id, d.file, d.line,
				d.rule->allow ? "allow" : "deny");
			rule_text(out, p, d.rule);
		} else {
			fprintf(out, "  %s: layer %s (%s:%u)\n", d.reason, layer, d.file, d.line);
		}
		if (d.logonly)
			fputs("  complain mode: logged, not enforced\n", out);
		fprintf(out, "  rules for %s, in order:\n", method);
	}
	bool first = true, reached = true;
	for (size_t i = 0; i < L->nrules; i++) {
		const struct policy_rule *rr = &L->rules[i];
		if (strcmp(rr->method, method) != 0)
			continue;
		size_t fail = policy_cons_first_failure(rr->cons, rr->ncons, args, nargs);
		const char *res = !reached	      ? "not-reached"
				  : fail == rr->ncons ? "match"
						      : "no-match";
		if (json) {
			fprintf(out, "%s{\"id\":", first ? "" : ",");
			jstr(out, rr->id);
			fprintf(out, ",\"line\":%u,\"result\":\"%s\",\"failed\":", rr->line, res);
			if (reached && fail < rr->ncons)
				cons_json(out, &rr->cons[fail]);
			else
				fputs("null", out);
			fputc('}', out);
		} else {
			fprintf(out, "    %s (line %u): %s", rr->id, rr->line, res);
			if (reached && fail < rr->ncons) {
				fputs(", needs ", out);
				cons_print(out, &rr->cons[fail]);
			}
			fputc('\n', out);
		}
		first = false;
		if (rr == d.rule)
			reached = false;
	}
	if (json)
		fputs("]}\n", out);
	else if (first)
		fputs("    (none: the layer has no rule on this method)\n", out);
	if (ret_verdict)
		*ret_verdict = d.verdict;
	return 0;
}
