/* SPDX-License-Identifier: MIT */
/*
 * The compiler: hard limits at exactly max and max + 1, the error cap,
 * the diagnostic format, file vetting (symlink, mode, owner, type),
 * truncated input, and the read-only arena.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy.h"

static const char head[] = "version 1\n"
			   "layer io {\n"
			   "    exec \"/bin/io\"\n"
			   "    syscalls stdio\n"
			   "    provide x.y\n"
			   "}\n";

static int compile_n(const char *text, size_t len, unsigned *ret_errors)
{
	struct policy *p = NULL;
	char *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	assert_non_null(f);
	int r = policy_compile_buffer("t.policy", text, len, f, &p);
	fclose(f);
	unsigned n = 0;
	for (const char *q = out; (q = strstr(q, ": error: ")); q++)
		n++;
	if (ret_errors)
		*ret_errors = n;
	if (r == 0)
		assert_non_null(p);
	else
		assert_null(p);
	policy_free(p);
	free(out);
	return r;
}

static int compile_s(const char *text)
{
	return compile_n(text, strlen(text), NULL);
}

/* A buffer that grows as cases are built. */
struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void sb_rep(struct sbuf *b, char c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sb_add(b, &c, 1);
}

static void test_file_size(void **state)
{
	(void)state;
	for (size_t extra = 0; extra < 2; extra++) {
		struct sbuf b = {0};
		sb_str(&b, "version 1\n");
		while (b.len + 1001 <= POLICY_FILE_MAX) {
			sb_str(&b, "#");
			sb_rep(&b, 'x', 999);
			sb_str(&b, "\n");
		}
		sb_str(&b, "#");
		sb_rep(&b, 'x', POLICY_FILE_MAX - b.len + extra);
		assert_int_equal(b.len, POLICY_FILE_MAX + extra);
		assert_int_equal(compile_n(b.p, b.len, NULL), extra ? -EFBIG : 0);
		free(b.p);
	}
}

static void test_line_and_token_length(void **state)
{
	(void)state;
	for (size_t extra = 0; extra < 2; extra++) {
		struct sbuf b = {0};
		sb_str(&b, "version 1\n#");
		sb_rep(&b, 'x', POLICY_LINE_MAX - 1 + extra);
		sb_str(&b, "\n");
		assert_int_equal(compile_s(b.p), extra ? -EINVAL : 0);
		free(b.p);

		/* a string token of exactly POLICY_TOKEN_MAX bytes after escapes */
		b = (struct sbuf){0};
		sb_str(&b, head);
		sb_str(&b, "layer a {\n    exec \"/");
		sb_rep(&b, 'a', POLICY_TOKEN_MAX - 1 + extra);
		sb_str(&b, "\"\n    syscalls stdio\n}\n");
		assert_int_equal(compile_s(b.p), extra ? -EINVAL : 0);
		free(b.p);
	}
}

static void test_rule_count(void **state)
{
	(void)state;
	for (size_t extra = 0; extra < 2; extra++) {
		struct sbuf b = {0};
		sb_str(&b, head);
		sb_str(&b, "layer a {\n    exec \"/bin/a\"\n    syscalls stdio\n");
		char line[64];
		for (size_t i = 0; i < POLICY_RULES_MAX + extra; i++) {
			snprintf(line, sizeof(line), "    allow x.y v %zu\n", i);
			sb_str(&b, line);
		}
		sb_str(&b, "}\n");
		unsigned nerr;
		assert_int_equal(compile_n(b.p, b.len, &nerr), extra ? -EINVAL : 0);
		assert_int_equal(nerr, extra); /* one error, not one per extra rule */
		free(b.p);
	}
}

static void test_set_and_constraint_count(void **state)
{
	(void)state;
	for (size_t extra = 0; extra < 2; extra++) {
		struct sbuf b = {0};
		sb_str(&b, head);
		sb_str(&b, "layer a {\n    exec \"/bin/a\"\n    syscalls stdio\n    allow x.y v {");
		char num[32];
		for (size_t i = 0; i < POLICY_SET_MAX + extra; i++) {
			snprintf(num, sizeof(num), "%s%zu", i ? ", " : "", i);
			sb_str(&b, num);
		}
		sb_str(&b, "}\n}\n");
		assert_int_equal(compile_s(b.p), extra ? -EINVAL : 0);
		free(b.p);

		b = (struct sbuf){0};
		sb_str(&b, head);
		sb_str(&b, "layer a {\n    exec \"/bin/a\"\n    syscalls stdio\n    allow x.y");
		for (size_t i = 0; i < POLICY_CONS_MAX + extra; i++) {
			snprintf(num, sizeof(num), " a%zu 1", i);
			sb_str(&b, num);
		}
		sb_str(&b, "\n}\n");
		assert_int_equal(compile_s(b.p), extra ? -EINVAL : 0);
		free(b.p);
	}
}

static void test_layer_count(void **state)
{
	(void)state;
	for (size_t extra = 0; extra < 2; extra++) {
		struct sbuf b = {0};
		sb_str(&b, "version 1\n");
		char l[128];
		for (size_t i = 0; i < POLICY_LAYERS_MAX + extra; i++) {
			snprintf(l, sizeof(l), "layer l%zu {\n    exec \"/bin/x\"\n}\n", i);
			sb_str(&b, l);
		}
		assert_int_equal(compile_s(b.p), extra ? -EINVAL : 0);
		free(b.p);
	}
}

static void test_expect_and_list_count(void **state)
{
	(void)state;
	for (size_t extra = 0; extra < 2; extra++) {
		struct sbuf b = {0};
		sb_str(&b, head);
		for (size_t i = 0; i < POLICY_EXPECT_MAX + extra; i++)
			sb_str(&b, "expect deny io x.y\n");
		assert_int_equal(compile_s(b.p), extra ? -EINVAL : 0);
		free(b.p);

		b = (struct sbuf){0};
		sb_str(&b, "version 1\nlayer io {\n    exec \"/bin/io\"\n    provide");
		char m[32];
		for (size_t i = 0; i < POLICY_LIST_MAX + extra; i++) {
			snprintf(m, sizeof(m), " m.x%zu", i);
			sb_str(&b, m);
		}
		sb_str(&b, "\n}\n");
		assert_int_equal(compile_s(b.p), extra ? -EINVAL : 0);
		free(b.p);
	}
}

static void test_error_cap(void **state)
{
	(void)state;
	struct sbuf b = {0};
	sb_str(&b, "version 1\n");
	for (int i = 0; i < 50; i++)
		sb_str(&b, "bogus\n");
	unsigned nerr;
	assert_int_equal(compile_n(b.p, b.len, &nerr), -EINVAL);
	/* POLICY_ERRORS_MAX errors, then one "too many errors" line */
	assert_int_equal(nerr, POLICY_ERRORS_MAX + 1);
	free(b.p);
}

static void test_diagnostic_format(void **state)
{
	(void)state;
	struct sbuf b = {0};
	sb_str(&b, head);
	sb_str(&b, "layer a {\n    exec \"/bin/a\"\n    allow x.y v 5..1\n}\n");
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	struct policy *p = NULL;
	assert_int_equal(policy_compile_buffer("f.policy", b.p, b.len, f, &p), -EINVAL);
	fclose(f);
	assert_string_equal(out, "f.policy:9:17: error: reversed range\n"
				 "      allow x.y v 5..1\n"
				 "                  ^~~~\n");
	free(b.p);
	free(out);
}

static void test_all_errors_reported(void **state)
{
	(void)state;
	const char *text = "version 1\n"
			   "layer a {\n"
			   "    exec \"rel\"\n"
			   "    syscalls bogus\n"
			   "    limit memory 1K\n"
			   "}\n"
			   "layer a {\n"
			   "    exec \"/bin/a\"\n"
			   "}\n";
	unsigned nerr;
	assert_int_equal(compile_n(text, strlen(text), &nerr), -EINVAL);
	assert_int_equal(nerr, 4);
}

static void test_truncated(void **state)
{
	(void)state;
	/* Every prefix of a valid policy compiles or fails cleanly. */
	const char *text = "version 1\n"
			   "audit \"/var/log/a\" rotate 1M\n"
			   "layer io {\n"
			   "    exec \"/bin/io\" \"-v\"\n"
			   "    syscalls stdio\n"
			   "    limit memory 32M files 8\n"
			   "    restart on-failure backoff 100ms..10s max 5 per 1m\n"
			   "    connect plc tcp \"127.0.0.1:502\"\n"
			   "    provide tag.write\n"
			   "}\n"
			   "layer ui {\n"
			   "    exec \"/bin/ui\"\n"
			   "    syscalls stdio\n"
			   "    allow tag.write tag \"a.*\" value {1, 2} rate 2/s burst 4\n"
			   "}\n"
			   "expect allow ui tag.write tag=\"a.b\" value=1\n";
	size_t n = strlen(text), ok = 0;
	for (size_t i = 0; i <= n; i++)
		ok += compile_n(text, i, NULL) == 0;
	assert_true(ok >= 1);
	assert_int_equal(compile_n(text, n, NULL), 0);
	assert_int_equal(compile_n("", 0, NULL), -EINVAL);
}

static void test_bad_arguments(void **state)
{
	(void)state;
	struct policy *p = NULL;
	assert_int_equal(policy_compile_buffer(NULL, "", 0, NULL, &p), -EINVAL);
	assert_int_equal(policy_compile_buffer("x", NULL, 5, NULL, &p), -EINVAL);
	assert_int_equal(policy_compile_buffer("x", "", 0, NULL, NULL), -EINVAL);
	assert_int_equal(policy_compile_file(NULL, NULL, &p), -EINVAL);
}

static char tmpdir[] = "/tmp/conduit-policy-test.XXXXXX";

static void write_file(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, head, strlen(head)), (ssize_t)strlen(head));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void test_file_checks(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(tmpdir));
	char path[256], link[256], fifo[256];
	snprintf(path, sizeof(path), "%s/p.policy", tmpdir);
	snprintf(link, sizeof(link), "%s/link.policy", tmpdir);
	snprintf(fifo, sizeof(fifo), "%s/fifo.policy", tmpdir);
	struct policy *p = NULL;

	write_file(path, 0644);
	assert_int_equal(policy_compile_file(path, NULL, &p), 0);
	assert_string_equal(policy_file_name(p), path);
	policy_free(p);
	p = NULL;
	write_file(path, 0600);
	assert_int_equal(policy_compile_file(path, NULL, &p), 0);
	policy_free(p);
	p = NULL;

	write_file(path, 0664); /* group-writable */
	assert_int_equal(policy_compile_file(path, NULL, &p), -EPERM);
	write_file(path, 0646); /* world-writable */
	assert_int_equal(policy_compile_file(path, NULL, &p), -EPERM);
	write_file(path, 0644);

	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(policy_compile_file(link, NULL, &p), -ELOOP);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(policy_compile_file(fifo, NULL, &p), -EINVAL);
	assert_int_equal(policy_compile_file(tmpdir, NULL, &p), -EINVAL);
	char missing[300];
	snprintf(missing, sizeof(missing), "%s/missing", tmpdir);
	assert_int_equal(policy_compile_file(missing, NULL, &p), -ENOENT);

	/* Owned by someone else: only root can arrange that here. */
	if (geteuid() == 0) {
		assert_int_equal(chown(path, 12345, 12345), 0);
		assert_int_equal(policy_compile_file(path, NULL, &p), -EPERM);
	}
	assert_null(p);
	unlink(path);
	unlink(link);
	unlink(fifo);
	rmdir(tmpdir);
}

/* The compiled policy is mapped read-only: a stray write faults. */
static void test_read_only(void **state)
{
	(void)state;
	struct policy *p = NULL;
	assert_int_equal(policy_compile_buffer("r", head, strlen(head), NULL, &p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL); /* not a sanitizer's report: the fault itself */
		char *name = (char *)policy_layer_spec(p, "io")->name;
		name[0] = 'X';
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSEGV);
	policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_size),
		cmocka_unit_test(test_line_and_token_length),
		cmocka_unit_test(test_rule_count),
		cmocka_unit_test(test_set_and_constraint_count),
		cmocka_unit_test(test_layer_count),
		cmocka_unit_test(test_expect_and_list_count),
		cmocka_unit_test(test_error_cap),
		cmocka_unit_test(test_diagnostic_format),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_file_checks),
		cmocka_unit_test(test_read_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
