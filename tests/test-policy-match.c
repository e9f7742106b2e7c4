/* SPDX-License-Identifier: MIT */
/*
 * The matcher: string tricks (prefix, case, trailing space, NUL, bad
 * UTF-8), exact numbers across types, globs, sets, lengths, canonical
 * argument order, complain mode, the accessors the broker reads, and no
 * heap allocation per decision.
 */
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy-int.h" /* the literal index, to check it is in use */

static struct policy *compile(const char *text)
{
	struct policy *p = NULL;
	int r = policy_compile_buffer("test.policy", text, strlen(text), stderr, &p);
	assert_int_equal(r, 0);
	assert_non_null(p);
	return p;
}

static const char base[] = "version 1\n"
			   "layer io {\n"
			   "    exec \"/bin/io\"\n"
			   "    syscalls stdio\n"
			   "    provide tag.read tag.write blob.put\n"
			   "}\n";

static struct policy *with_ui(const char *rules)
{
	char buf[8192];
	snprintf(buf, sizeof(buf), "%slayer ui {\n    exec \"/bin/ui\"\n    syscalls stdio\n%s}\n",
		 base, rules);
	return compile(buf);
}

static struct cdt_arg str_arg(const char *name, const char *s, size_t len)
{
	return (struct cdt_arg){.name = name, .type = CDT_TYPE_STRING, .v.str = {s, len}};
}

static enum policy_verdict decide(struct policy *p, const char *method, const struct cdt_arg *a,
				  size_t n)
{
	struct policy_state *st;
	struct policy_decision d;
	assert_int_equal(policy_state_new(p, &st), 0);
	assert_int_equal(policy_decide(p, st, "ui", method, a, n, 0, &d), 0);
	policy_state_free(st);
	return d.verdict;
}

static enum policy_verdict tag(struct policy *p, const char *s, size_t len)
{
	struct cdt_arg a = str_arg("tag", s, len);
	return decide(p, "tag.read", &a, 1);
}

static void test_string_tricks(void **state)
{
	(void)state;
	struct policy *p = with_ui("    allow tag.read tag \"tank1\"\n"
				   "    allow tag.read tag \"plant.*\"\n");
	assert_int_equal(tag(p, "tank1", 5), POLICY_ALLOW);
	assert_int_equal(tag(p, "tank10", 6), POLICY_DENY);   /* prefix */
	assert_int_equal(tag(p, "tank10", 4), POLICY_DENY);   /* shorter */
	assert_int_equal(tag(p, "Tank1", 5), POLICY_DENY);    /* case */
	assert_int_equal(tag(p, "tank1 ", 6), POLICY_DENY);   /* trailing space */
	assert_int_equal(tag(p, "tank1\0", 6), POLICY_DENY);  /* trailing NUL */
	assert_int_equal(tag(p, "tank1\0x", 7), POLICY_DENY); /* NUL then more */
	assert_int_equal(tag(p, "", 0), POLICY_DENY);
	assert_int_equal(tag(p, "plant.x", 7), POLICY_ALLOW);
	assert_int_equal(tag(p, "plant.x\0evil", 12), POLICY_DENY);	/* NUL under a '*' */
	assert_int_equal(tag(p, "plant.\xff", 7), POLICY_DENY);		/* invalid UTF-8 */
	assert_int_equal(tag(p, "plant.\xc0\xae", 8), POLICY_DENY);	/* overlong '.' */
	assert_int_equal(tag(p, "plant.\xed\xa0\x80", 9), POLICY_DENY); /* surrogate */
	assert_int_equal(tag(p, "plant.caf\xc3\xa9", 11), POLICY_ALLOW);
	assert_int_equal(tag(p, "plant\xe2\x80\xa4x", 8), POLICY_DENY); /* one-dot leader */
	assert_int_equal(tag(p, "plant", 5), POLICY_DENY);
	/* a string constraint never matches other types */
	struct cdt_arg b = {
		.name = "tag", .type = CDT_TYPE_BYTES, .v.bytes = {(const uint8_t *)"tank1", 5}};
	assert_int_equal(decide(p, "tag.read", &b, 1), POLICY_DENY);
	struct cdt_arg i = {.name = "tag", .type = CDT_TYPE_I64, .v.i64 = 1};
	assert_int_equal(decide(p, "tag.read", &i, 1), POLICY_DENY);
	/* argument names are exact too */
	struct cdt_arg n = str_arg("Tag", "tank1", 5);
	assert_int_equal(decide(p, "tag.read", &n, 1), POLICY_DENY);
	/* method names are exact */
	struct cdt_arg t = str_arg("tag", "tank1", 5);
	assert_int_equal(decide(p, "tag.read ", &t, 1), POLICY_DENY);
	assert_int_equal(decide(p, "tag.rea", &t, 1), POLICY_DENY);
	assert_int_equal(decide(p, "Tag.read", &t, 1), POLICY_DENY);
	policy_free(p);
}

static void test_globs(void **state)
{
	(void)state;
	struct policy_glob g = {.pat = "a?c", .len = 3, .literal = false};
	assert_true(policy_glob_match(&g, "abc", 3));
	assert_true(policy_glob_match(&g,
				      "a\xc3\xa9"
				      "c",
				      4)); /* one character, two bytes */
	assert_false(policy_glob_match(&g, "ac", 2));
	assert_false(policy_glob_match(&g, "abbc", 4));
	struct policy_glob star = {.pat = "*", .len = 1};
	assert_true(policy_glob_match(&star, "", 0));
	assert_true(policy_glob_match(&star, "anything", 8));
	struct policy_glob mid = {.pat = "a*b*c", .len = 5};
	assert_true(policy_glob_match(&mid, "abc", 3));
	assert_true(policy_glob_match(&mid, "aXXbYYc", 7));
	assert_false(policy_glob_match(&mid, "aXXbYY", 6));
	assert_false(policy_glob_match(&mid, "aXXcYYb", 7));
	struct policy_glob esc = {.pat = "a\\*", .len = 3};
	assert_true(policy_glob_match(&esc, "a*", 2));
	assert_false(policy_glob_match(&esc, "ab", 2));
	struct policy_glob lit = {.pat = "a*", .len = 2, .literal = true};
	assert_true(policy_glob_match(&lit, "a*", 2));
	assert_false(policy_glob_match(&lit, "ab", 2));
	struct policy_glob empty = {.pat = "", .len = 0};
	assert_true(policy_glob_match(&empty, "", 0));
	assert_false(policy_glob_match(&empty, "a", 1));
	/* pathological backtracking stays bounded (iterative, no recursion) */
	char s[2048];
	memset(s, 'a', sizeof(s));
	struct policy_glob bt = {.pat = "*a*a*a*a*a*a*b", .len = 14};
	assert_false(policy_glob_match(&bt, s, sizeof(s)));
}

static struct policy_num I(int64_t v) {
	return (struct policy_num){.kind = POLICY_NUM_I64, .v.i = v};
} static struct policy_num U(uint64_t v) {
	return (struct policy_num){.kind = POLICY_NUM_U64, .v.u = v};
} static struct policy_num D(double v) {
	return (struct policy_num){.kind = POLICY_NUM_F64, .v.d = v};
}

static int
cmp(struct policy_num a, struct policy_num b)
{
	int r = policy_num_cmp(&a, &b);
	int back = policy_num_cmp(&b, &a);
	assert_int_equal(r == 2 ? 2 : -r, back); /* antisymmetric */
	return r;
}

static void test_num_cmp(void **state)
{
	(void)state;
	assert_int_equal(cmp(I(-1), U(UINT64_MAX)), -1);
	assert_int_equal(cmp(I(INT64_MAX), U((uint64_t)INT64_MAX)), 0);
	assert_int_equal(cmp(I(INT64_MAX), U((uint64_t)INT64_MAX + 1)), -1);
	assert_int_equal(cmp(D(9223372036854775808.0), I(INT64_MAX)), 1);
	assert_int_equal(cmp(D(-9223372036854775808.0), I(INT64_MIN)), 0);
	assert_int_equal(cmp(D(-9223372036854777856.0), I(INT64_MIN)), -1);
	assert_int_equal(cmp(D(18446744073709551616.0), U(UINT64_MAX)), 1);
	assert_int_equal(cmp(D(18446744073709549568.0), U(UINT64_MAX)), -1);
	assert_int_equal(cmp(D(18446744073709549568.0), U(18446744073709549568ull)), 0);
	assert_int_equal(cmp(D(0.5), I(0)), 1);
	assert_int_equal(cmp(D(-0.5), I(0)), -1);
	assert_int_equal(cmp(D(-0.5), I(-1)), 1);
	assert_int_equal(cmp(D(-1.5), I(-1)), -1);
	assert_int_equal(cmp(D(-0.0), I(0)), 0);
	assert_int_equal(cmp(D(120.0), I(120)), 0);
	assert_int_equal(cmp(D(120.000001), I(120)), 1);
	assert_int_equal(cmp(D(11100.0), U(120)), 1);
	assert_int_equal(cmp(D(NAN), I(0)), 2);
	assert_int_equal(cmp(D(NAN), D(NAN)), 2);
	assert_int_equal(cmp(D(INFINITY), U(UINT64_MAX)), 1);
	assert_int_equal(cmp(D(-INFINITY), I(INT64_MIN)), -1);
	/* 2^53 + 1 is not a double: the integer is bigger than the double */
	assert_int_equal(cmp(D(9007199254740992.0), I(9007199254740993)), -1);
}

static enum policy_verdict value(struct policy *p, struct cdt_arg v)
{
	v.name = "value";
	return decide(p, "tag.write", &v, 1);
}

static void test_ranges(void **state)
{
	(void)state;
	struct policy *p =
		with_ui("    allow tag.write value 80..120 rate 1000/s\n"
			"    allow blob.put n {0, 1, 18446744073709551615} rate 1000/s\n");
	struct cdt_arg a = {.type = CDT_TYPE_I64};
	a.v.i64 = 80;
	assert_int_equal(value(p, a), POLICY_ALLOW);
	a.v.i64 = 120;
	assert_int_equal(value(p, a), POLICY_ALLOW);
	a.v.i64 = 79;
	assert_int_equal(value(p, a), POLICY_DENY);
	a.v.i64 = 121;
	assert_int_equal(value(p, a), POLICY_DENY);
	a.v.i64 = -1;
	assert_int_equal(value(p, a), POLICY_DENY);
	a.v.i64 = INT64_MIN;
	assert_int_equal(value(p, a), POLICY_DENY);
	a.type = CDT_TYPE_U64;
	a.v.u64 = UINT64_MAX;
	assert_int_equal(value(p, a), POLICY_DENY);
	a.v.u64 = 100;
	assert_int_equal(value(p, a), POLICY_ALLOW);
	/* a u64 that would be -156 truncated to int8, or 100 mod 2^32 */
	a.v.u64 = (1ull << 32) + 100;
	assert_int_equal(value(p, a), POLICY_DENY);
	a.type = CDT_TYPE_DOUBLE;
	a.v.d = 11100.0;
	assert_int_equal(value(p, a), POLICY_DENY);
	a.v.d = 100.0;
	assert_int_equal(value(p, a), POLICY_ALLOW);
	a.v.d = NAN;
	assert_int_equal(value(p, a), POLICY_DENY);
	a.v.d = -NAN;
	assert_int_equal(value(p, a), POLICY_DENY);
	a.v.d = INFINITY;
	assert_int_equal(value(p, a), POLICY_DENY);
	a.v.d = 79.99999999999999;
	assert_int_equal(value(p, a), POLICY_DENY);
	a.type = CDT_TYPE_BOOL;
	a.v.b = true;
	assert_int_equal(value(p, a), POLICY_DENY);
	a.type = CDT_TYPE_STRING;
	a.v.str.ptr = "100";
	a.v.str.len = 3;
	assert_int_equal(value(p, a), POLICY_DENY);

	struct cdt_arg n = {.name = "n", .type = CDT_TYPE_U64, .v.u64 = UINT64_MAX};
	assert_int_equal(decide(p, "blob.put", &n, 1), POLICY_ALLOW);
	n.v.u64 = UINT64_MAX - 1;
	assert_int_equal(decide(p, "blob.put", &n, 1), POLICY_DENY);
	n.type = CDT_TYPE_DOUBLE;
	n.v.d = 1.0;
	assert_int_equal(decide(p, "blob.put", &n, 1), POLICY_ALLOW);
	n.v.d = NAN;
	assert_int_equal(decide(p, "blob.put", &n, 1), POLICY_DENY);
	n.v.d = 18446744073709551616.0; /* 2^64 is not 2^64-1 */
	assert_int_equal(decide(p, "blob.put", &n, 1), POLICY_DENY);
	policy_free(p);
}

static void test_len_bool(void **state)
{
	(void)state;
	struct policy *p = with_ui("    allow blob.put data len 1..16 ok true rate 1000/s\n");
	char buf[17];
	memset(buf, 'x', sizeof(buf));
	struct cdt_arg a[2] = {
		{.name = "data", .type = CDT_TYPE_BYTES, .v.bytes = {(const uint8_t *)buf, 16}},
		{.name = "ok", .type = CDT_TYPE_BOOL, .v.b = true},
	};
	assert_int_equal(decide(p, "blob.put", a, 2), POLICY_ALLOW); /* exactly max */
	a[0].v.bytes.len = 17;
	assert_int_equal(decide(p, "blob.put", a, 2), POLICY_DENY); /* max + 1 */
	a[0].v.bytes.len = 0;
	assert_int_equal(decide(p, "blob.put", a, 2), POLICY_DENY); /* empty */
	a[0].v.bytes.len = 1;
	assert_int_equal(decide(p, "blob.put", a, 2), POLICY_ALLOW);
	a[0] = str_arg("data", buf, 16); /* len applies to strings too */
	assert_int_equal(decide(p, "blob.put", a, 2), POLICY_ALLOW);
	a[1].v.b = false;
	assert_int_equal(decide(p, "blob.put", a, 2), POLICY_DENY);
	a[1].type = CDT_TYPE_I64;
	a[1].v.i64 = 1;
	assert_int_equal(decide(p, "blob.put", a, 2), POLICY_DENY);
	a[1] = (struct cdt_arg){.name = "ok", .type = CDT_TYPE_FD, .v.fd = 0};
	assert_int_equal(decide(p, "blob.put", a, 2), POLICY_DENY);
	assert_int_equal(decide(p, "blob.put", a, 1), POLICY_DENY); /* missing argument */
	policy_free(p);
}

static void test_canonical_args(void **state)
{
	(void)state;
	struct policy *p = with_ui("    allow blob.put a \"x\" b \"y\" rate 1000/s\n");
	struct cdt_arg ok[2] = {str_arg("a", "x", 1), str_arg("b", "y", 1)};
	assert_int_equal(decide(p, "blob.put", ok, 2), POLICY_ALLOW);
	/* extra arguments are allowed unless constrained */
	struct cdt_arg more[3] = {str_arg("a", "x", 1), str_arg("b", "y", 1), str_arg("c", "z", 1)};
	assert_int_equal(decide(p, "blob.put", more, 3), POLICY_ALLOW);
	struct cdt_arg swapped[2] = {str_arg("b", "y", 1), str_arg("a", "x", 1)};
	assert_int_equal(decide(p, "blob.put", swapped, 2), POLICY_DENY);
	/* a duplicate name could hide a second value from the check */
	struct cdt_arg dup[3] = {str_arg("a", "x", 1), str_arg("a", "evil", 4),
				 str_arg("b", "y", 1)};
	assert_int_equal(decide(p, "blob.put", dup, 3), POLICY_DENY);
	struct cdt_arg noname[2] = {str_arg("a", "x", 1), {.name = NULL}};
	assert_int_equal(decide(p, "blob.put", noname, 2), POLICY_DENY);
	policy_free(p);
}

static void test_decision_fields(void **state)
{
	(void)state;
	struct policy *p = with_ui("    deny tag.read tag \"secret.*\"\n"
				   "    allow tag.read tag \"plant.*\"\n"
				   "    allow tag.read tag \"dev.*\" log\n");
	struct policy_state *st, *st2;
	struct policy_decision d;
	assert_int_equal(policy_state_new(p, &st), 0);
	struct cdt_arg a = str_arg("tag", "plant.x", 7);
	assert_int_equal(policy_decide(p, st, "ui", "tag.read", &a, 1, 0, &d), 0);
	assert_int_equal(d.verdict, POLICY_ALLOW);
	assert_string_equal(d.rule_id, "ui#2");
	assert_string_equal(d.file, "test.policy");
	assert_int_equal(d.line, 11);
	assert_false(d.logonly);
	a = str_arg("tag", "secret.x", 8);
	assert_int_equal(policy_decide(p, st, "ui", "tag.read", &a, 1, 0, &d), 0);
	assert_int_equal(d.verdict, POLICY_DENY);
	assert_string_equal(d.rule_id, "ui#1");
	assert_int_equal(d.line, 10);
	a = str_arg("tag", "dev.x", 5);
	assert_int_equal(policy_decide(p, st, "ui", "tag.read", &a, 1, 0, &d), 0);
	assert_int_equal(d.verdict, POLICY_ALLOW);
	assert_true(d.logonly);
	a = str_arg("tag", "other", 5);
	assert_int_equal(policy_decide(p, st, "ui", "tag.read", &a, 1, 0, &d), 0);
	assert_int_equal(d.verdict, POLICY_DENY);
	assert_string_equal(d.rule_id, "ui#default");
	assert_null(d.rule);
	assert_int_equal(d.line, 7);
	assert_int_equal(policy_decide(p, st, "nobody", "tag.read", &a, 1, 0, &d), -ENOENT);
	assert_int_equal(policy_decide(p, st, "ui", NULL, &a, 1, 0, &d), -EINVAL);
	assert_int_equal(policy_decide(p, st, "ui", "tag.read", NULL, 1, 0, &d), -EINVAL);
	/* a state belongs to its policy */
	struct policy *q = with_ui("");
	assert_int_equal(policy_state_new(q, &st2), 0);
	assert_int_equal(policy_decide(p, st2, "ui", "tag.read", &a, 1, 0, &d), -EINVAL);
	policy_state_free(st2);
	policy_free(q);
	policy_state_free(st);
	policy_free(p);
	policy_state_free(NULL);
	policy_free(NULL);
}

static void test_layer_log_mode(void **state)
{
	(void)state;
	struct policy *p = with_ui("    log\n    allow tag.read tag \"a\"\n");
	struct policy_state *st;
	struct policy_decision d;
	assert_int_equal(policy_state_new(p, &st), 0);
	struct cdt_arg a = str_arg("tag", "b", 1);
	assert_int_equal(policy_decide(p, st, "ui", "tag.read", &a, 1, 0, &d), 0);
	assert_int_equal(d.verdict, POLICY_DENY); /* the real verdict ... */
	assert_true(d.logonly);			  /* ... not enforced */
	assert_int_equal(policy_decide(p, st, "io", "tag.read", &a, 1, 0, &d), 0);
	assert_false(d.logonly);
	policy_state_free(st);
	policy_free(p);
}

static void test_accessors(void **state)
{
	(void)state;
	struct policy *p = compile("version 1\n"
				   "audit \"/var/log/a.log\" rotate 1M sync always\n"
				   "layer io {\n"
				   "    exec \"/bin/io\" \"-v\" \"x y\"\n"
				   "    user 4001\n"
				   "    group 4002\n"
				   "    env TZ LANG\n"
				   "    syscalls stdio recvfd net-client\n"
				   "    syscalls allow ioctl\n"
				   "    syscalls deny socket\n"
				   "    syscalls log\n"
				   "    landlock read \"/usr\"\n"
				   "    landlock read-write \"/var/lib/io\"\n"
				   "    landlock abi 3\n"
				   "    namespaces ipc pid\n"
				   "    limit memory 32M files 64 procs 0 cpu 30s fsize 1G\n"
				   "    restart always backoff 50ms..5s max 3 per 10m\n"
				   "    connect plc tcp \"[::1]:1502\"\n"
				   "    listen api unix \"/run/api.sock\"\n"
				   "    open \"/var/lib/io/state\" append create\n"
				   "    allow conduit.connect name \"plc\" rate 1/s\n"
				   "    allow conduit.listen name \"api\" rate 1/s\n"
				   "    allow conduit.open path \"/var/lib/io/state\" rate 1/s\n"
				   "    provide io.get\n"
				   "    publish io.changed\n"
				   "}\n"
				   "layer hmi {\n"
				   "    exec \"/bin/hmi\"\n"
				   "    user hmi\n"
				   "    group plant\n"
				   "    syscalls stdio\n"
				   "    subscribe io.changed tag \"a.*\"\n"
				   "}\n");
	assert_int_equal(policy_layer_count(p), 2);
	const struct policy_audit *au = policy_audit(p);
	assert_string_equal(au->path, "/var/log/a.log");
	assert_int_equal(au->rotate_size, 1u << 20);
	assert_true(au->sync_always);
	const struct layer_spec *sp = policy_layer_spec(p, "io");
	assert_ptr_equal(sp, policy_layer_spec_at(p, 0));
	assert_string_equal(sp->name, "io");
	assert_string_equal(sp->exec, "/bin/io");
	assert_int_equal(sp->nargv, 3);
	assert_string_equal(sp->argv[0], "/bin/io");
	assert_string_equal(sp->argv[2], "x y");
	assert_null(sp->argv[3]);
	assert_int_equal(sp->nenv_allow, 2);
	assert_string_equal(sp->env_allow[1], "LANG");
	assert_int_equal(sp->user_kind, LAYER_USER_ID);
	assert_int_equal(sp->uid, 4001);
	assert_int_equal(sp->gid, 4002);
	assert_int_equal(sp->profiles,
			 LAYER_PROFILE_STDIO | LAYER_PROFILE_RECVFD | LAYER_PROFILE_NET_CLIENT);
	assert_int_equal(sp->nsyscalls_allow, 1);
	assert_string_equal(sp->syscalls_allow[0], "ioctl");
	assert_string_equal(sp->syscalls_deny[0], "socket");
	assert_true(sp->seccomp_log);
	assert_int_equal(sp->nlandlock, 2);
	assert_false(sp->landlock[0].write);
	assert_true(sp->landlock[1].write);
	assert_int_equal(sp->landlock_min_abi, 3);
	assert_int_equal(sp->namespaces, LAYER_NS_IPC | LAYER_NS_PID);
	assert_int_equal(sp->limits.memory, 32u << 20);
	assert_int_equal(sp->limits.files, 64);
	assert_int_equal(sp->limits.procs, 0);
	assert_int_equal(sp->limits.cpu, 30);
	assert_int_equal(sp->limits.fsize, 1u << 30);
	assert_true(sp->has_network_resource);

	const struct policy_layer *io = policy_layer(p, "io");
	assert_int_equal(io->restart.mode, POLICY_RESTART_ALWAYS);
	assert_int_equal(io->restart.backoff_min_ns, 50000000ull);
	assert_int_equal(io->restart.backoff_max_ns, 5000000000ull);
	assert_int_equal(io->restart.max, 3);
	assert_int_equal(io->restart.window_ns, 600000000000ull);
	const struct policy_resource *r = policy_resource_find(io, POLICY_RES_CONNECT, "plc");
	assert_non_null(r);
	assert_int_equal(r->family, POLICY_FAMILY_TCP);
	assert_string_equal(r->address, "::1");
	assert_int_equal(r->port, 1502);
	assert_null(policy_resource_find(io, POLICY_RES_LISTEN, "plc"));
	r = policy_resource_find(io, POLICY_RES_LISTEN, "api");
	assert_int_equal(r->family, POLICY_FAMILY_UNIX);
	assert_string_equal(r->address, "/run/api.sock");
	r = policy_resource_find(io, POLICY_RES_OPEN, "/var/lib/io/state");
	assert_int_equal(r->open_mode, POLICY_OPEN_WRITE | POLICY_OPEN_APPEND | POLICY_OPEN_CREATE);
	assert_ptr_equal(policy_method_provider(p, "io.get"), io);
	assert_null(policy_method_provider(p, "io.set"));
	assert_null(policy_method_provider(p, "conduit.ping"));
	assert_true(policy_may_publish(io, "io.changed"));
	assert_false(policy_may_publish(io, "io.change"));

	const struct policy_layer *hmi = policy_layer(p, "hmi");
	const struct layer_spec *hs = policy_layer_spec(p, "hmi");
	assert_int_equal(hs->user_kind, LAYER_USER_NAME);
	assert_string_equal(hs->user_name, "hmi");
	assert_string_equal(hs->group_name, "plant");
	assert_false(hs->has_network_resource);
	assert_int_equal(hmi->restart.mode, POLICY_RESTART_ON_FAILURE);
	assert_int_equal(hs->limits.memory, LAYER_LIMIT_UNSET);
	struct cdt_arg a = str_arg("tag", "a.b", 3);
	assert_non_null(policy_subscription_find(hmi, "io.changed", &a, 1));
	a = str_arg("tag", "b.b", 3);
	assert_null(policy_subscription_find(hmi, "io.changed", &a, 1));
	assert_null(policy_layer(p, "nobody"));
	assert_null(policy_layer_spec_at(p, 2));

	size_t nb;
	const struct policy_builtin *b = policy_builtins(&nb);
	assert_true(nb >= 4);
	for (size_t i = 0; i < nb; i++)
		assert_ptr_equal(policy_builtin_find(b[i].method), &b[i]);
	assert_non_null(policy_builtin_find("conduit.ping"));
	assert_null(policy_builtin_find("conduit.pin"));
	policy_free(p);
}

/* A glob on a value over POLICY_GLOB_VALUE_MAX fails closed: the call is
 * denied even though skipping the deny glob would reach an allow. */
static void test_long_value_fails_closed(void **state)
{
	(void)state;
	struct policy *p = with_ui("    deny tag.write tag \"plant.safety.*\"\n"
				   "    allow tag.write tag len 1..100000 rate 1000/s\n"
				   "    allow tag.read tag \"plant.x\"\n");
	static char v[POLICY_GLOB_VALUE_MAX + 2];
	memset(v, 'x', sizeof(v));
	memcpy(v, "plant.", 6);
	struct cdt_arg a = str_arg("tag", v, POLICY_GLOB_VALUE_MAX);
	assert_int_equal(decide(p, "tag.write", &a, 1), POLICY_ALLOW); /* exactly max */
	a.v.str.len = POLICY_GLOB_VALUE_MAX + 1;
	assert_int_equal(decide(p, "tag.write", &a, 1), POLICY_DENY); /* max + 1 */
	memcpy(v, "plant.safety.", 13);
	a.v.str.len = POLICY_GLOB_VALUE_MAX;
	assert_int_equal(decide(p, "tag.write", &a, 1), POLICY_DENY); /* the deny rule */
	/* exact strings have no such cost and no such limit */
	a.v.str.len = POLICY_GLOB_VALUE_MAX + 1;
	assert_int_equal(decide(p, "tag.read", &a, 1), POLICY_DENY);
	policy_free(p);
}

/* The hot path must not allocate: the heap's in-use byte count is the
 * same before and after many decisions. */
static void test_no_allocation(void **state)
{
	(void)state;
	struct policy *p = with_ui("    allow tag.write value 80..120 rate 1000000/s\n"
				   "    allow tag.read tag \"plant.*\"\n");
	struct policy_state *st;
	struct policy_decision d;
	assert_int_equal(policy_state_new(p, &st), 0);
	struct cdt_arg a = str_arg("tag", "plant.x", 7);
	struct cdt_arg v = {.name = "value", .type = CDT_TYPE_I64, .v.i64 = 100};
	assert_int_equal(policy_decide(p, st, "ui", "tag.read", &a, 1, 0, &d), 0);
	struct mallinfo2 before = mallinfo2();
	for (uint64_t i = 0; i < 10000; i++) {
		assert_int_equal(policy_decide(p, st, "ui", "tag.read", &a, 1, i, &d), 0);
		assert_int_equal(policy_decide(p, st, "ui", "tag.write", &v, 1, i, &d), 0);
		assert_int_equal(policy_decide(p, st, "ui", "nothing", NULL, 0, i, &d), 0);
	}
	struct mallinfo2 after = mallinfo2();
	assert_int_equal(before.uordblks, after.uordblks);
	policy_state_free(st);
	policy_free(p);
}

/* The literal index (many rules pinning one argument to exact strings)
 * must give exactly the first match a plain scan of the rules gives. */
static uint32_t rnd(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static void test_literal_index_differential(void **state)
{
	(void)state;
	static char rules[65536];
	static char seen[300][96];
	char seen_act[300];
	size_t off = 0;
	uint32_t seed = 12345;
	for (int i = 0; i < 300; i++) {
		unsigned t = rnd(&seed) % 40, kind = rnd(&seed) % 9;
		char *c = seen[i];
		if (kind < 3)
			snprintf(c, 96, "tag \"t%u\"", t);
		else if (kind == 3)
			snprintf(c, 96, "tag {\"t%u\", \"t%u\"} value %u..%u", t, t + 1, t % 5,
				 t % 5 + 3);
		else if (kind == 4)
			snprintf(c, 96, "tag \"t%u*\"", t % 4);
		else if (kind == 5)
			snprintf(c, 96, "value %u..%u", t, t + 2);
		else if (kind == 6)
			snprintf(c, 96, "tag \"t%u\" value %u", t, t % 7);
		else if (kind == 7) /* a longer prefix */
			snprintf(c, 96, "tag \"t%u?*\"", t);
		else /* no literal prefix: stays outside the index */
			snprintf(c, 96, "tag \"*%u\"", t % 10);
		/* the same constraints with the opposite action would be a
		 * (rejected) contradiction: repeat the earlier action instead */
		seen_act[i] = rnd(&seed) % 3 ? 'a' : 'd';
		for (int k = 0; k < i; k++)
			if (strcmp(seen[k], c) == 0)
				seen_act[i] = seen_act[k];
		off += (size_t)snprintf(rules + off, sizeof(rules) - off, "    %s tag.write %s%s\n",
					seen_act[i] == 'a' ? "allow" : "deny", c,
					seen_act[i] == 'a' ? " rate 1000/s" : "");
	}
	char *text = malloc(sizeof(rules) + 512);
	assert_non_null(text);
	snprintf(text, sizeof(rules) + 512,
		 "%slayer ui {\n    exec \"/bin/ui\"\n    syscalls stdio\n%s}\n", base, rules);
	struct policy *p = NULL;
	assert_int_equal(policy_compile_buffer("diff", text, strlen(text), stderr, &p), 0);
	free(text);
	const struct policy_layer *L = policy_layer(p, "ui");
	assert_int_equal(L->index->nentries, 1);
	assert_non_null(L->index->entries[0].key_arg);
	assert_string_equal(L->index->entries[0].key_arg, "tag");
	assert_true(L->index->entries[0].nprefix_lens >= 2);
	struct policy_state *st;
	assert_int_equal(policy_state_new(p, &st), 0);
	unsigned checked = 0;
	for (int i = 0; i < 20000; i++) {
		char tagbuf[16];
		unsigned tv = rnd(&seed) % 45;
		if (rnd(&seed) % 3 == 0)
			snprintf(tagbuf, sizeof(tagbuf), "t%u%c", tv, 'a' + (int)(rnd(&seed) % 3));
		else
			snprintf(tagbuf, sizeof(tagbuf), "t%u", tv);
		struct cdt_arg a[2];
		size_t n = 0;
		unsigned shape = rnd(&seed) % 4;
		if (shape != 0) {
			a[n] = str_arg("tag", tagbuf, strlen(tagbuf));
			if (shape == 3)
				a[n] = (struct cdt_arg){
					.name = "tag", .type = CDT_TYPE_I64, .v.i64 = 1};
			n++;
		}
		if (rnd(&seed) % 2)
			a[n++] = (struct cdt_arg){.name = "value",
						  .type = CDT_TYPE_I64,
						  .v.i64 = (int64_t)(rnd(&seed) % 45)};
		struct policy_decision d;
		assert_int_equal(policy_decide(p, st, "ui", "tag.write", a, n,
					       (uint64_t)i * 1000000000ull, &d),
				 0);
		const struct policy_rule *want = NULL;
		for (size_t k = 0; k < L->nrules && !want; k++)
			if (policy_cons_match(L->rules[k].cons, L->rules[k].ncons, a, n))
				want = &L->rules[k];
		assert_ptr_equal(d.rule, want);
		checked += want != NULL;
	}
	assert_true(checked > 1000);
	policy_state_free(st);
	policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_string_tricks),
		cmocka_unit_test(test_globs),
		cmocka_unit_test(test_num_cmp),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_len_bool),
		cmocka_unit_test(test_canonical_args),
		cmocka_unit_test(test_decision_fields),
		cmocka_unit_test(test_layer_log_mode),
		cmocka_unit_test(test_accessors),
		cmocka_unit_test(test_no_allocation),
		cmocka_unit_test(test_long_value_fails_closed),
		cmocka_unit_test(test_literal_index_differential),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
