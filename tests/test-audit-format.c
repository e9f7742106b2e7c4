/* SPDX-License-Identifier: MIT */
/*
 * Audit records: every argument type and every nasty value survives
 * write -> read unchanged (or capped with its length and hash), the parser
 * accepts only the writer's exact bytes, and the line limit holds at
 * exactly max and max+1.
 */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "audit.h"

static int memfd_with(const void *p, size_t n)
{
	int fd = memfd_create("audit-test", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

static char tmpdir[64];

static void verify_buf(const void *p, size_t n, size_t line_max, struct audit_verify_result *res);

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/audit-format.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- round trip through a real log ---- */

static const char big_seed = 'x';
static char *big; /* 64 KiB string */

static double mk_double(uint64_t bits)
{
	double d;
	memcpy(&d, &bits, sizeof(d));
	return d;
}

#define S(name_, lit_)                                                                             \
	{                                                                                          \
		.name = name_, .type = CDT_TYPE_STRING, .v.str = { lit_, sizeof(lit_) - 1 }        \
	}
#define D(name_, val_)                                                                             \
	{                                                                                          \
		.name = name_, .type = CDT_TYPE_DOUBLE, .v.d = (val_)                              \
	}

static uint8_t all_bytes[256];

static struct cdt_arg nasty[] = {
	{.name = "big", .type = CDT_TYPE_STRING}, /* filled with 64 KiB at run time */
	{.name = "b0", .type = CDT_TYPE_BOOL, .v.b = false},
	{.name = "b1", .type = CDT_TYPE_BOOL, .v.b = true},
	{.name = "imax", .type = CDT_TYPE_I64, .v.i64 = INT64_MAX},
	{.name = "imin", .type = CDT_TYPE_I64, .v.i64 = INT64_MIN},
	{.name = "izero", .type = CDT_TYPE_I64, .v.i64 = 0},
	{.name = "umax", .type = CDT_TYPE_U64, .v.u64 = UINT64_MAX},
	{.name = "uzero", .type = CDT_TYPE_U64, .v.u64 = 0},
	D("dneg0", -0.0),
	D("dzero", 0.0),
	D("dtenth", 0.1),
	D("dmax", DBL_MAX),
	D("dmin", DBL_MIN),
	D("ddenorm", 4.9406564584124654e-324),
	D("ddenorm2", 2.2250738585072009e-308),
	D("dinf", INFINITY),
	D("dninf", -INFINITY),
	D("dnan", NAN),
	{.name = "dnanpay", .type = CDT_TYPE_DOUBLE}, /* bits set at run time */
	S("nl", "a\nb"),
	S("cr", "a\rb\r\n"),
	S("nul", "nul\0inside"),
	S("esc", "\x1b[2J\x1b]0;owned\x07"),
	S("ls", "line\xe2\x80\xa8sep\xe2\x80\xa9para"),
	S("quote", "\"}],\"verdict\":\"allow"),
	S("bslash", "\\\\u0041\\"),
	S("emoji", "\xf0\x9f\x92\xa7 \xc3\xa9"),
	S("del", "\x7f"),
	S("bad1", "\xff\xfe"),
	S("overlong", "\xc0\x80"),
	S("surrogate", "\xed\xa0\x80"),
	S("cut", "ok\xe2\x82"),
	S("empty", ""),
	{.name = "bytes", .type = CDT_TYPE_BYTES}, /* 0..255 at run time */
	{.name = "nobytes", .type = CDT_TYPE_BYTES, .v.bytes = {NULL, 0}},
	{.name = "fd", .type = CDT_TYPE_FD, .v.fd = 7},
	{.name = "n\xc3\xa4me \"q\"", .type = CDT_TYPE_BOOL, .v.b = true},
};
#define NNASTY (sizeof(nasty) / sizeof(nasty[0]))

static const char *nasty_reason = "reason: \n\r\t\x1b[0m \xe2\x80\xa8 \"q\" \\ \xf0\x9f\x98\x80";

struct collect {
	int n;
	bool checked;
};

static void check_arg(const struct cdt_arg *in, const struct audit_arg *out)
{
	assert_string_equal(in->name, out->arg.name);
	assert_int_equal(in->type, out->arg.type);
	switch (in->type) {
	case CDT_TYPE_BOOL:
		assert_int_equal(in->v.b, out->arg.v.b);
		break;
	case CDT_TYPE_I64:
		assert_true(in->v.i64 == out->arg.v.i64);
		break;
	case CDT_TYPE_U64:
		assert_true(in->v.u64 == out->arg.v.u64);
		break;
	case CDT_TYPE_DOUBLE:
		/* Bit for bit: -0.0, NaN payloads, denormals. */
		assert_memory_equal(&in->v.d, &out->arg.v.d, sizeof(double));
		break;
	case CDT_TYPE_STRING:
	case CDT_TYPE_BYTES: {
		const uint8_t *p = in->type == CDT_TYPE_STRING ? (const uint8_t *)in->v.str.ptr
							       : in->v.bytes.ptr;
		size_t len = in->v.str.len;
		size_t kept = out->arg.v.str.len;
		if (len > AUDIT_VALUE_MAX) {
			assert_true(out->truncated);
			assert_true(out->orig_len == len);
			assert_true(kept <= AUDIT_VALUE_MAX && kept > AUDIT_VALUE_MAX - 4);
			uint8_t h[AUDIT_HASH_LEN];
			crypto_generichash(h, sizeof(h), p, len, NULL, 0);
			assert_memory_equal(h, out->hash, sizeof(h));
		} else {
			assert_false(out->truncated);
			assert_true(kept == len);
		}
		if (kept)
			assert_memory_equal(p, out->arg.v.str.ptr, kept);
		/* cdt_arg's promise: NUL-terminated */
		assert_int_equal(((const char *)out->arg.v.str.ptr)[kept], '\0');
		break;
	}
	case CDT_TYPE_FD:
		break;
	}
}

static int on_nasty(const struct audit_record *rec, size_t file, uint64_t line, void *ud)
{
	struct collect *c = ud;
	c->n++;
	assert_true(file == 0 && line == (uint64_t)c->n);
	if (rec->event != AUDIT_EV_DECISION)
		return 0;
	assert_int_equal(rec->nargs, NNASTY);
	for (size_t i = 0; i < NNASTY; i++)
		check_arg(&nasty[i], &rec->args[i]);
	assert_false(rec->args[0].not_utf8);
	for (size_t i = 0; i < NNASTY; i++) {
		const char *nm = rec->args[i].arg.name;
		bool bad = !strcmp(nm, "bad1") || !strcmp(nm, "overlong") ||
			   !strcmp(nm, "surrogate") || !strcmp(nm, "cut");
		assert_int_equal(rec->args[i].not_utf8, bad);
	}
	assert_string_equal(rec->reason, nasty_reason);
	assert_string_equal(rec->layer, "ui");
	assert_string_equal(rec->method, "tag.write");
	assert_int_equal(rec->verdict, AUDIT_VERDICT_DENY);
	assert_string_equal(rec->rule, "ui#3");
	assert_string_equal(rec->policy, "/etc/conduit/plant.policy");
	assert_int_equal(rec->policy_line, 17);
	assert_true(rec->pid == 4242);
	c->checked = true;
	return 0;
}

static void test_roundtrip_nasty(void **state)
{
	(void)state;
	big = malloc(64 * 1024);
	assert_non_null(big);
	memset(big, big_seed, 64 * 1024);
	memcpy(big + 1000, "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 9); /* cap lands inside a char */
	nasty[0].v.str.ptr = big;
	nasty[0].v.str.len = 64 * 1024;
	nasty[18].v.d = mk_double(UINT64_C(0xfff0000000000bad));
	for (int i = 0; i < 256; i++)
		all_bytes[i] = (uint8_t)i;
	nasty[33].v.bytes.ptr = all_bytes;
	nasty[33].v.bytes.len = 256;
	assert_string_equal(nasty[33].name, "bytes");

	char path[128];
	snprintf(path, sizeof(path), "%s/nasty.log", tmpdir);
	struct audit_writer *w;
	assert_int_equal(audit_writer_open(path, &w), 0);
	struct audit_record start = {.event = AUDIT_EV_START, .reason = "test"};
	assert_int_equal(audit_writer_append(w, &start), 0);
	struct audit_record dec = {
		.event = AUDIT_EV_DECISION,
		.layer = "ui",
		.has_pid = true,
		.pid = 4242,
		.method = "tag.write",
		.call_args = nasty,
		.ncall_args = NNASTY,
		.verdict = AUDIT_VERDICT_DENY,
		.rule = "ui#3",
		.policy = "/etc/conduit/plant.policy",
		.policy_line = 17,
		.reason = nasty_reason,
	};
	assert_int_equal(audit_writer_append(w, &dec), 0);
	struct audit_record stop = {.event = AUDIT_EV_STOP};
	assert_int_equal(audit_writer_append(w, &stop), 0);
	audit_writer_free(w);

	/* The file is pure ASCII: no raw newline inside a record, no ESC. */
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	int ch, lines = 0;
	while ((ch = fgetc(f)) != EOF) {
		assert_true((ch >= 0x20 && ch < 0x7f) || ch == '\n');
		lines += ch == '\n';
	}
	fclose(f);
	assert_int_equal(lines, 3);

	struct collect c = {0};
	struct audit_verify_opts o = {
		.require_closed = true, .on_record = on_nasty, .userdata = &c};
	struct audit_verify_result res;
	const char *paths[] = {path};
	assert_int_equal(audit_verify_files(paths, 1, &o, &res), 0);
	assert_int_equal(res.status, AUDIT_OK);
	assert_int_equal(res.records, 3);
	assert_int_equal(c.n, 3);
	assert_true(c.checked);
	free(big);
}

/* ---- event records ---- */

static void test_event_kinds(void **state)
{
	(void)state;
	char path[128];
	snprintf(path, sizeof(path), "%s/events.log", tmpdir);
	struct audit_writer *w;
	assert_int_equal(audit_writer_open(path, &w), 0);
	const struct audit_record ok[] = {
		{.event = AUDIT_EV_START, .policy = "p.policy", .reason = "broker start"},
		{.event = AUDIT_EV_SPAWN, .layer = "io", .has_pid = true, .pid = 10},
		{.event = AUDIT_EV_EXIT,
		 .layer = "io",
		 .has_pid = true,
		 .pid = 10,
		 .signal = "SIGSYS"},
		{.event = AUDIT_EV_EXIT,
		 .layer = "io",
		 .has_pid = true,
		 .pid = 11,
		 .has_code = true,
		 .code = -1},
		{.event = AUDIT_EV_VIOLATION, .layer = "ui", .klass = "protocol-violation"},
		{.event = AUDIT_EV_VIOLATION, .layer = "ui", .klass = "sandbox-setup-failed"},
		{.event = AUDIT_EV_RELOAD, .policy = "p.policy"},
		{.event = AUDIT_EV_RELOAD_REJECTED,
		 .policy = "p.policy",
		 .policy_line = 3,
		 .reason = "p.policy:3:7: error: unknown directive"},
		{.event = AUDIT_EV_ALARM, .klass = "audit-write-failed", .reason = "ENOSPC"},
		{.event = AUDIT_EV_DECISION,
		 .layer = "ui",
		 .method = "tag.read",
		 .has_args = true,
		 .verdict = AUDIT_VERDICT_RATE_LIMITED},
		{.event = AUDIT_EV_DECISION,
		 .layer = "ui",
		 .method = "tag.read",
		 .has_args = true,
		 .verdict = AUDIT_VERDICT_COMPLAIN},
		{.event = AUDIT_EV_STOP},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_int_equal(audit_writer_append(w, &ok[i]), 0);
	const struct audit_record bad[] = {
		{.event = 0},
		{.event = AUDIT_EV_GAP + 1},
		{.event = AUDIT_EV_DECISION, .layer = "ui", .method = "m"}, /* no args/verdict */
		{.event = AUDIT_EV_SPAWN, .verdict = AUDIT_VERDICT_ALLOW},
		{.event = AUDIT_EV_EXIT, .layer = "io"}, /* no code/signal */
		{.event = AUDIT_EV_EXIT, .has_code = true, .signal = "SIGKILL"},
		{.event = AUDIT_EV_VIOLATION, .layer = "ui"}, /* no class */
		{.event = AUDIT_EV_GAP},		      /* says nothing */
		{.event = AUDIT_EV_START, .has_lost = true, .lost = 1},
		{.event = AUDIT_EV_START, .policy_line = 3},
		{.event = AUDIT_EV_START, .reason = "\xff"},
	};
	uint64_t seq = audit_writer_next_seq(w);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(audit_writer_append(w, &bad[i]), -EINVAL);
	assert_true(audit_writer_next_seq(w) == seq);
	assert_true(audit_writer_lost(w) == 0);
	audit_writer_free(w);
	struct audit_verify_result res;
	struct audit_verify_opts o = {.require_closed = true};
	const char *paths[] = {path};
	assert_int_equal(audit_verify_files(paths, 1, &o, &res), 0);
	assert_int_equal(res.status, AUDIT_OK);
	assert_int_equal(res.records, sizeof(ok) / sizeof(ok[0]));
}

static void test_time(void **state)
{
	(void)state;
	static const struct {
		int64_t us;
		const char *text;
	} cases[] = {
		{0, "1970-01-01T00:00:00.000000Z"},
		{1709251199999999, "2024-02-29T23:59:59.999999Z"},
		{1795677314123456, "2026-11-26T07:15:14.123456Z"},
		{INT64_C(253402300799999999), "9999-12-31T23:59:59.999999Z"},
	};
	struct audit_scratch sc;
	assert_int_equal(audit_scratch_init(&sc, 4096), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct audit_record rec = {
			.event = AUDIT_EV_RELOAD, .seq = 9, .time_us = cases[i].us};
		char buf[512];
		long len = audit_format(&rec, buf, sizeof(buf));
		assert_true(len > 0);
		assert_non_null(strstr(buf, cases[i].text));
		struct audit_record out;
		struct audit_parse_error err;
		assert_int_equal(audit_parse_line(buf, (size_t)len - 1, &sc, &out, &err), 0);
		assert_true(out.time_us == cases[i].us);
		/* Dates that do not exist, or fields out of range. */
		static const char *const bad[] = {"2023-02-29", "2024-02-30", "2024-13-01",
						  "2024-00-10", "2024-04-31", "1969-12-31"};
		for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
			char tmp[512];
			memcpy(tmp, buf, (size_t)len);
			memcpy(strstr(tmp, "\"time\":\"") + 8, bad[j], 10);
			assert_int_equal(audit_parse_line(tmp, (size_t)len - 1, &sc, &out, &err),
					 -EBADMSG);
		}
	}
	struct audit_record rec = {
		.event = AUDIT_EV_RELOAD, .seq = 9, .time_us = INT64_C(253402300800000000)};
	char buf[512];
	assert_int_equal(audit_format(&rec, buf, sizeof(buf)), -EINVAL);
	rec.time_us = -1;
	assert_int_equal(audit_format(&rec, buf, sizeof(buf)), -EINVAL);
	audit_scratch_fini(&sc);
}

static void test_stop_seal(void **state)
{
	(void)state;
	/* Nothing follows a stop record to check its hash: its seal does. */
	char path[128];
	snprintf(path, sizeof(path), "%s/seal.log", tmpdir);
	struct audit_writer *w;
	assert_int_equal(audit_writer_open(path, &w), 0);
	struct audit_record start = {.event = AUDIT_EV_START, .time_us = 1795677314000000};
	struct audit_record stop = {.event = AUDIT_EV_STOP, .time_us = 1795677315000000};
	assert_int_equal(audit_writer_append(w, &start), 0);
	assert_int_equal(audit_writer_append(w, &stop), 0);
	audit_writer_free(w);
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	static char log[2048];
	size_t n = fread(log, 1, sizeof(log), f);
	fclose(f);
	char *t = strstr(log, "07:15:15.000000Z");
	assert_non_null(t);
	t[1] = '8'; /* 07:15:15 -> 08:15:15, still a canonical record */
	struct audit_verify_result res;
	verify_buf(log, n, 0, &res);
	assert_int_equal(res.status, AUDIT_EDITED);
	assert_true(res.line == 2);
	assert_non_null(strstr(res.reason, "seal"));

	const char *missing[] = {"/nonexistent/audit.log"};
	assert_int_equal(audit_verify_files(missing, 1, NULL, &res), -ENOENT);
}

/* ---- limits at exactly max and max+1 ---- */

static void test_caps(void **state)
{
	(void)state;
	static char text[AUDIT_TEXT_MAX + 2];
	memset(text, 't', sizeof(text));
	text[AUDIT_TEXT_MAX] = '\0';
	struct audit_record rec = {.event = AUDIT_EV_START, .seq = 2, .time_us = 1, .reason = text};
	static char buf[AUDIT_LINE_MAX + 1];
	assert_true(audit_format(&rec, buf, sizeof(buf)) > 0);
	text[AUDIT_TEXT_MAX] = 't';
	text[AUDIT_TEXT_MAX + 1] = '\0';
	assert_int_equal(audit_format(&rec, buf, sizeof(buf)), -EINVAL);

	/* Values: exactly AUDIT_VALUE_MAX kept whole, one more capped. */
	static uint8_t v[AUDIT_VALUE_MAX + 1];
	struct cdt_arg a = {.name = "v", .type = CDT_TYPE_BYTES, .v.bytes = {v, AUDIT_VALUE_MAX}};
	struct audit_arg out;
	size_t budget = AUDIT_VALUES_MAX;
	assert_int_equal(audit_arg_from_cdt(&a, &budget, &out), 0);
	assert_false(out.truncated);
	a.v.bytes.len++;
	budget = AUDIT_VALUES_MAX;
	assert_int_equal(audit_arg_from_cdt(&a, &budget, &out), 0);
	assert_true(out.truncated);
	assert_true(out.arg.v.bytes.len == AUDIT_VALUE_MAX && out.orig_len == AUDIT_VALUE_MAX + 1);

	/* The record budget: the ninth full value is cut to nothing, but its
	 * length and hash are kept. */
	static struct cdt_arg many[CDT_ARGS_MAX + 1];
	static char names[CDT_ARGS_MAX + 1][8];
	for (int i = 0; i <= CDT_ARGS_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "a%02d", i);
		many[i] = (struct cdt_arg){
			.name = names[i], .type = CDT_TYPE_BYTES, .v.bytes = {v, AUDIT_VALUE_MAX}};
	}
	char path[128];
	snprintf(path, sizeof(path), "%s/caps.log", tmpdir);
	struct audit_writer *w;
	assert_int_equal(audit_writer_open(path, &w), 0);
	struct audit_record dec = {.event = AUDIT_EV_DECISION,
				   .layer = "l",
				   .method = "m",
				   .verdict = AUDIT_VERDICT_ALLOW,
				   .call_args = many,
				   .ncall_args = CDT_ARGS_MAX};
	assert_int_equal(audit_writer_append(w, &dec), 0);
	dec.ncall_args = CDT_ARGS_MAX + 1;
	assert_int_equal(audit_writer_append(w, &dec), -EINVAL);
	/* Names: exactly CDT_NAME_MAX, then one more. */
	static char longname[CDT_NAME_MAX + 2];
	memset(longname, 'n', CDT_NAME_MAX);
	many[0].name = longname;
	dec.ncall_args = 1;
	assert_int_equal(audit_writer_append(w, &dec), 0);
	longname[CDT_NAME_MAX] = 'n';
	assert_int_equal(audit_writer_append(w, &dec), -EINVAL);
	audit_writer_free(w);
	struct audit_verify_result res;
	const char *paths[] = {path};
	assert_int_equal(audit_verify_files(paths, 1, NULL, &res), 0);
	assert_int_equal(res.status, AUDIT_OK);
	assert_int_equal(res.records, 2);
}

static void verify_buf(const void *p, size_t n, size_t line_max, struct audit_verify_result *res)
{
	int fd = memfd_with(p, n);
	struct audit_verify_opts o = {.line_max = line_max};
	assert_int_equal(audit_verify_fds(&fd, 1, &o, res), 0);
	close(fd);
}

static void test_line_limit(void **state)
{
	(void)state;
	struct audit_verify_result res;
	/* A garbage line of exactly the limit is read (and rejected as
	 * syntax); one byte more is "too long", naming the line. */
	size_t n = AUDIT_LINE_MAX + 2;
	char *g = malloc(n);
	assert_non_null(g);
	memset(g, 'x', n);
	g[AUDIT_LINE_MAX] = '\n';
	verify_buf(g, AUDIT_LINE_MAX + 1, 0, &res);
	assert_int_equal(res.status, AUDIT_SYNTAX);
	assert_true(res.line == 1 && res.col == 1);
	g[AUDIT_LINE_MAX] = 'x';
	g[AUDIT_LINE_MAX + 1] = '\n';
	verify_buf(g, AUDIT_LINE_MAX + 2, 0, &res);
	assert_int_equal(res.status, AUDIT_TOO_LONG);
	assert_true(res.line == 1);
	/* Without a newline at all, the same. */
	verify_buf(g, AUDIT_LINE_MAX + 1, 0, &res);
	assert_int_equal(res.status, AUDIT_TOO_LONG);
	free(g);

	/* A real record at exactly a reader's limit, and at limit - 1. */
	struct audit_record rec = {
		.event = AUDIT_EV_START, .seq = 1, .time_us = 1, .has_log_id = true};
	audit_genesis(rec.log_id, rec.prev);
	char buf[1024];
	long len = audit_format(&rec, buf, sizeof(buf));
	assert_true(len > 0);
	verify_buf(buf, (size_t)len, (size_t)len - 1, &res);
	assert_int_equal(res.status, AUDIT_OK);
	verify_buf(buf, (size_t)len, (size_t)len - 2, &res);
	assert_int_equal(res.status, AUDIT_TOO_LONG);

	/* A sequence gap, then an over-long line: the look-ahead that tells a
	 * drop from a reordering stops there (it once spun forever). */
	{
		char path[128];
		snprintf(path, sizeof(path), "%s/gap-long.log", tmpdir);
		struct audit_writer *w;
		assert_int_equal(audit_writer_open(path, &w), 0);
		struct audit_record sp = {.event = AUDIT_EV_SPAWN, .layer = "io"};
		for (int i = 0; i < 3; i++)
			assert_int_equal(audit_writer_append(w, &sp), 0);
		audit_writer_free(w);
		FILE *f = fopen(path, "re");
		assert_non_null(f);
		static char l1[1024], l2[1024], l3[1024], log[8192];
		assert_non_null(fgets(l1, sizeof(l1), f));
		assert_non_null(fgets(l2, sizeof(l2), f));
		assert_non_null(fgets(l3, sizeof(l3), f));
		fclose(f);
		size_t n1 = strlen(l1), n3 = strlen(l3);
		memcpy(log, l1, n1);
		memcpy(log + n1, l3, n3);
		memset(log + n1 + n3, 'x', 2000);
		verify_buf(log, n1 + n3 + 2000, 1000, &res);
		assert_int_equal(res.status, AUDIT_MISSING);
		assert_true(res.line == 2);
		log[n1 + n3 + 1999] = '\n';
		verify_buf(log, n1 + n3 + 2000, 1000, &res);
		assert_int_equal(res.status, AUDIT_MISSING);
	}

	/* Empty file, and truncated records. */
	verify_buf("", 0, 0, &res);
	assert_int_equal(res.status, AUDIT_EMPTY);
	for (long cut = 1; cut < len - 1; cut++) {
		verify_buf(buf, (size_t)cut, 0, &res);
		assert_int_equal(res.status, AUDIT_TORN);
		char tmp[1024];
		memcpy(tmp, buf, (size_t)cut);
		tmp[cut] = '\n';
		verify_buf(tmp, (size_t)cut + 1, 0, &res);
		assert_int_equal(res.status, AUDIT_SYNTAX);
		assert_true(res.col >= 1 && res.col <= (uint32_t)cut + 1);
	}
}

/* ---- strictness ---- */

static void test_strict_parser(void **state)
{
	(void)state;
	struct audit_arg args[2] = {
		{.arg = {.name = "tag", .type = CDT_TYPE_STRING, .v.str = {"A/b", 3}}},
		{.arg = {.name = "value", .type = CDT_TYPE_I64, .v.i64 = 100}},
	};
	struct audit_record rec = {.event = AUDIT_EV_DECISION,
				   .seq = 5,
				   .time_us = 1764137714123456,
				   .layer = "ui",
				   .has_pid = true,
				   .pid = 7,
				   .method = "tag.write",
				   .has_args = true,
				   .args = args,
				   .nargs = 2,
				   .verdict = AUDIT_VERDICT_ALLOW};
	char good[1024];
	long len = audit_format(&rec, good, sizeof(good));
	assert_true(len > 0);
	struct audit_scratch sc;
	assert_int_equal(audit_scratch_init(&sc, AUDIT_LINE_MAX), 0);
	struct audit_record out;
	struct audit_parse_error err;
	assert_int_equal(audit_parse_line(good, (size_t)len - 1, &sc, &out, &err), 0);
	assert_true(out.time_us == 1764137714123456);
	assert_string_equal(out.args[0].arg.v.str.ptr, "A/b");

	/* Each a second spelling of the same record, or a broken one. */
	static const char *const from[] = {
		"{\"seq\":5",
		"\"A/b\"",
		"\"value\",\"t\":\"i64\",\"v\":100",
		",\"pid\":7",
		"\"ui\"",
		"\"ui\"",
		"\"verdict\":\"allow\"",
		"\"tag.write\"",
		"\"seq\":5",
		"Z\"",
		"\"event\":\"decision\"",
		",\"pid\":7",
		"\"seq\":5",
		"\"ui\"",
		"\"A/b\"",
		"\"A/b\"",
		"\"v\":100",
		"\"v\":100",
		"\"v\":100",
		"\"prev\":\"",
	};
	static const char *const to[] = {
		"{ \"seq\":5",
		"\"\\u0041/b\"",
		"\"value\",\"t\":\"i64\",\"v\":+100",
		",\"pid\":07",
		"\"u\\u0069\"",
		"\"u\\x69\"",
		"\"verdict\":\"ALLOW\"",
		"\"tag\\u002ewrite\"",
		"\"seq\":5.0",
		"z\"",
		"\"event\":\"decision\",\"event\":\"decision\"",
		",\"pid\":7,\"pid\":7",
		"\"seq\":05",
		"\"u\xc3\xafi\"",
		"\"A\\/b\"",
		"\"A\\u002Fb\"",
		"\"v\":1e2",
		"\"v\":100 ",
		"\"v\":-0",
		"\"prev\":\"00",
	};
	for (size_t i = 0; i < sizeof(from) / sizeof(from[0]); i++) {
		char *at = strstr(good, from[i]);
		assert_non_null(at);
		char bad[1100];
		size_t pre = (size_t)(at - good);
		int n = snprintf(bad, sizeof(bad), "%.*s%s%s", (int)pre, good, to[i],
				 at + strlen(from[i]));
		assert_true(n > 0);
		size_t bl = strlen(bad) - 1; /* drop the newline */
		assert_int_equal(audit_parse_line(bad, bl, &sc, &out, &err), -EBADMSG);
		assert_true(err.col >= 1);
	}
	/* Trailing bytes, NUL in the line, unknown key. */
	char t[1100];
	memcpy(t, good, (size_t)len - 1);
	t[len - 1] = ' ';
	assert_int_equal(audit_parse_line(t, (size_t)len, &sc, &out, &err), -EBADMSG);
	assert_int_equal(err.col, (uint32_t)len);
	t[10] = '\0';
	assert_int_equal(audit_parse_line(t, (size_t)len - 1, &sc, &out, &err), -EBADMSG);
	assert_int_equal(audit_parse_line("{\"seq\":1,\"x\":1}", 15, &sc, &out, &err), -EBADMSG);
	assert_int_equal(audit_parse_line("", 0, &sc, &out, &err), -EBADMSG);
	audit_scratch_fini(&sc);
}

/* mono_ns: decision records only, any u64 from 0 to 2^64-1 and no further,
 * after verdict, one spelling. */
static void test_mono(void **state)
{
	(void)state;
	struct audit_record rec = {.event = AUDIT_EV_DECISION,
				   .seq = 9,
				   .time_us = 1764137714123456,
				   .layer = "ui",
				   .method = "tag.write",
				   .has_args = true,
				   .verdict = AUDIT_VERDICT_RATE_LIMITED,
				   .has_mono = true,
				   .rule = "ui#1"};
	struct audit_scratch sc;
	struct audit_record out;
	struct audit_parse_error err;
	char line[1024], bad[1100];
	assert_int_equal(audit_scratch_init(&sc, AUDIT_LINE_MAX), 0);
	static const uint64_t values[] = {0, 1, 123456789012345, UINT64_MAX};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		rec.mono_ns = values[i];
		long len = audit_format(&rec, line, sizeof(line));
		assert_true(len > 0);
		assert_int_equal(audit_parse_line(line, (size_t)len - 1, &sc, &out, &err), 0);
		assert_true(out.has_mono);
		assert_true(out.mono_ns == values[i]);
	}
	/* Its place: after verdict, before rule. */
	assert_non_null(strstr(line,
			       "\"verdict\":\"rate-limited\",\"mono_ns\":18446744073709551615,"
			       "\"rule\":\"ui#1\""));
	/* Without it, a record parses with has_mono false (older writers). */
	rec.has_mono = false;
	long len = audit_format(&rec, line, sizeof(line));
	assert_true(len > 0);
	assert_null(strstr(line, "mono_ns"));
	assert_int_equal(audit_parse_line(line, (size_t)len - 1, &sc, &out, &err), 0);
	assert_false(out.has_mono);
	/* Only decision records carry it: the writer refuses, the reader too. */
	struct audit_record spawn = {
		.event = AUDIT_EV_SPAWN, .seq = 9, .layer = "ui", .has_mono = true, .mono_ns = 5};
	assert_int_equal(audit_format(&spawn, line, sizeof(line)), -EINVAL);
	spawn.has_mono = false;
	len = audit_format(&spawn, line, sizeof(line));
	assert_true(len > 0);
	char *at = strstr(line, ",\"prev\"");
	assert_non_null(at);
	snprintf(bad, sizeof(bad), "%.*s,\"mono_ns\":5%s", (int)(at - line), line, at);
	assert_int_equal(audit_parse_line(bad, strlen(bad) - 1, &sc, &out, &err), -EBADMSG);

	/* Second spellings and values past the limit. */
	rec.has_mono = true;
	rec.mono_ns = 7;
	len = audit_format(&rec, line, sizeof(line));
	assert_true(len > 0);
	static const char *const to[] = {
		"\"mono_ns\":07",
		"\"mono_ns\":+7",
		"\"mono_ns\":7.0",
		"\"mono_ns\":-7",
		"\"mono_ns\":\"7\"",
		"\"mono_ns\":18446744073709551616",
		"\"mono_ns\":7,\"mono_ns\":7",
		"\"mono_ns\":",
	};
	for (size_t i = 0; i < sizeof(to) / sizeof(to[0]); i++) {
		at = strstr(line, "\"mono_ns\":7");
		assert_non_null(at);
		snprintf(bad, sizeof(bad), "%.*s%s%s", (int)(at - line), line, to[i],
			 at + strlen("\"mono_ns\":7"));
		assert_int_equal(audit_parse_line(bad, strlen(bad) - 1, &sc, &out, &err), -EBADMSG);
	}
	/* Before verdict: out of order. */
	snprintf(bad, sizeof(bad), "%s", line);
	at = strstr(line, ",\"verdict\"");
	char *mono = strstr(line, ",\"mono_ns\":7");
	assert_true(at && mono && at < mono);
	snprintf(bad, sizeof(bad), "%.*s,\"mono_ns\":7%.*s%s", (int)(at - line), line,
		 (int)(mono - at), at, mono + strlen(",\"mono_ns\":7"));
	assert_int_equal(strlen(bad), strlen(line));
	assert_int_equal(audit_parse_line(bad, strlen(bad) - 1, &sc, &out, &err), -EBADMSG);
	audit_scratch_fini(&sc);
}

static void test_doubles_exact(void **state)
{
	(void)state;
	/* Walk exponents and mantissas: every value formats and parses back
	 * to the same bits. */
	uint64_t x = 0x9e3779b97f4a7c15u;
	struct audit_scratch sc;
	assert_int_equal(audit_scratch_init(&sc, 4096), 0);
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t bits = i < 4096 ? (uint64_t)i << 52 | (x & 0xfffffffffffff) : x;
		if (i % 7 == 0)
			bits &= ~(UINT64_C(0x7ff) << 52); /* denormals */
		struct audit_arg a = {.arg = {.name = "d", .type = CDT_TYPE_DOUBLE}};
		memcpy(&a.arg.v.d, &bits, sizeof(bits));
		struct audit_record rec = {.event = AUDIT_EV_DECISION,
					   .seq = 3,
					   .time_us = 5,
					   .layer = "l",
					   .method = "m",
					   .has_args = true,
					   .args = &a,
					   .nargs = 1,
					   .verdict = AUDIT_VERDICT_DENY};
		char buf[512];
		long len = audit_format(&rec, buf, sizeof(buf));
		assert_true(len > 0);
		struct audit_record out;
		struct audit_parse_error err;
		assert_int_equal(audit_parse_line(buf, (size_t)len - 1, &sc, &out, &err), 0);
		assert_memory_equal(&out.args[0].arg.v.d, &bits, sizeof(bits));
	}
	audit_scratch_fini(&sc);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_nasty),
		cmocka_unit_test(test_event_kinds),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_strict_parser),
		cmocka_unit_test(test_mono),
		cmocka_unit_test(test_doubles_exact),
		cmocka_unit_test(test_stop_seal),
		cmocka_unit_test(test_time),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
