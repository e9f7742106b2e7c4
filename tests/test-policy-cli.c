/* SPDX-License-Identifier: MIT */
/*
 * conduit-policy as a user runs it: every documented exit code, the text
 * each verb promises, JSON that parses, and the file checks (symlink,
 * group/world-writable).  usage: test-policy-cli CONDUIT-POLICY SOURCE-DIR
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy/layer-spec.h"

static const char *bin, *src;
static char tmpdir[] = "/tmp/conduit-policy-cli.XXXXXX";
static char out[1 << 20], err[1 << 16];

static void slurp_fd(int fd, char *buf, size_t cap)
{
	lseek(fd, 0, SEEK_SET);
	size_t n = 0;
	ssize_t r;
	while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	close(fd);
}

/* Run conduit-policy with the NULL-terminated arguments; its exit code. */
static int run(const char *arg0, ...)
{
	const char *argv[32] = {bin};
	int n = 1;
	va_list ap;
	va_start(ap, arg0);
	for (const char *a = arg0; a && n < 31; a = va_arg(ap, const char *))
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	int ofd = memfd_create("out", MFD_CLOEXEC), efd = memfd_create("err", MFD_CLOEXEC);
	assert_true(ofd >= 0 && efd >= 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(ofd, 1);
		dup2(efd, 2);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	slurp_fd(ofd, out, sizeof(out));
	slurp_fd(efd, err, sizeof(err));
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* ---- a strict JSON syntax check (RFC 8259) ---- */

static const char *js_value(const char *p, int depth);

static const char *js_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static const char *js_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	while (*p != '"') {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20)
			return NULL;
		if (c == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
						return NULL;
				p += 5;
				continue;
			}
			if (!*p || !strchr("\"\\/bfnrt", *p))
				return NULL;
		}
		p++;
	}
	return p + 1;
}

static const char *js_number(const char *p)
{
	const char *s = p;
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (*p < '0' || *p > '9')
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return p > s ? p : NULL;
}

static const char *js_value(const char *p, int depth)
{
	if (depth > 64)
		return NULL;
	p = js_ws(p);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		bool obj = *p == '{';
		p = js_ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (obj) {
				p = js_string(js_ws(p));
				if (!p)
					return NULL;
				p = js_ws(p);
				if (*p++ != ':')
					return NULL;
			}
			p = js_value(p, depth + 1);
			if (!p)
				return NULL;
			p = js_ws(p);
			if (*p == ',') {
				p++;
				continue;
			}
			return *p == close ? p + 1 : NULL;
		}
	}
	if (*p == '"')
		return js_string(p);
	if (!strncmp(p, "true", 4))
		return p + 4;
	if (!strncmp(p, "false", 5))
		return p + 5;
	if (!strncmp(p, "null", 4))
		return p + 4;
	return js_number(p);
}

static void assert_json(const char *s)
{
	const char *end = js_value(s, 0);
	if (!end || *js_ws(end) != '\0')
		fprintf(stderr, "not JSON: %s\n", s);
	assert_non_null(end);
	assert_int_equal(*js_ws(end), '\0');
}

static void test_json_checker(void **state)
{
	(void)state;
	assert_json("{\"a\":[1,-2.5e3,true,null,\"x\\u00e9\"],\"b\":{}}");
	assert_null(js_value("{\"a\":}", 0));
	assert_null(js_value("[1,]", 0));
	assert_null(js_value("\"\\q\"", 0));
}

static char plant[4096], lint[4096], bad[4096];

static void test_check(void **state)
{
	(void)state;
	assert_int_equal(run("check", plant, NULL), 0);
	assert_non_null(strstr(out, "valid, 4 layers"));
	assert_int_equal(run("--format", "json", "check", plant, NULL), 0);
	assert_json(out);
	assert_non_null(strstr(out, "\"valid\":true"));
	assert_int_equal(run("check", lint, NULL), 3);
	assert_non_null(strstr(err, "warning:"));
	assert_non_null(strstr(err, "[shadowed]"));
	assert_int_equal(run("--format=json", "check", lint, NULL), 3);
	assert_json(out);
	assert_non_null(strstr(out, "\"severity\":\"warning\""));
	assert_int_equal(run("check", bad, NULL), 1);
	assert_non_null(strstr(err, ": error: reversed range"));
	assert_int_equal(run("--format", "json", "check", bad, NULL), 1);
	assert_json(out);
	assert_non_null(strstr(out, "\"valid\":false"));
}

static void test_test(void **state)
{
	(void)state;
	assert_int_equal(run("test", plant, NULL), 0);
	assert_non_null(strstr(out, "0 failed"));
	assert_int_equal(run("--format", "json", "test", plant, NULL), 0);
	assert_json(out);
	/* a policy whose expectation is wrong */
	char path[4200];
	snprintf(path, sizeof(path), "%s/wrong.policy", tmpdir);
	FILE *f = fopen(path, "we");
	assert_non_null(f);
	fputs("version 1\nlayer io {\n    exec \"/bin/io\"\n    syscalls stdio\n"
	      "    provide x.y\n}\nlayer ui {\n    exec \"/bin/ui\"\n    syscalls stdio\n"
	      "    allow x.y v 1..5\n}\nexpect allow ui x.y v=3\nexpect allow ui x.y v=9\n",
	      f);
	fclose(f);
	assert_int_equal(run("test", path, NULL), 4);
	assert_non_null(strstr(err, "wrong.policy:13:1: error: expected allow, got deny"));
	assert_int_equal(run("--format", "json", "test", path, NULL), 4);
	assert_json(out);
	assert_non_null(strstr(out, "\"failed\":1"));
	unlink(path);
}

static void test_explain(void **state)
{
	(void)state;
	assert_int_equal(run("explain", plant, "ui", NULL), 0);
	assert_non_null(strstr(out, "may call tag.write"));
	/* the environment a layer gets besides its allowlist is said too */
	assert_non_null(strstr(out, "environment default: " LAYER_ENV_DEFAULT " ("));
	assert_int_equal(run("--format", "json", "explain", plant, "ui", NULL), 0);
	assert_json(out);
	assert_non_null(strstr(out, ",\"env_default\":[\"" LAYER_ENV_DEFAULT "\"],"));
	assert_int_equal(run("explain", plant, "ui", "tag.write", "tag=plant.dosing.naoh_sp",
			     "value=100", NULL),
			 0);
	assert_non_null(strstr(out, "allow"));
	assert_int_equal(run("explain", plant, "ui", "tag.write", "tag=plant.dosing.naoh_sp",
			     "value=11100", NULL),
			 4);
	assert_int_equal(strncmp(out, "deny", 4), 0);
	/* the string "100" is not the number 100 */
	assert_int_equal(run("explain", plant, "ui", "tag.write", "tag=plant.dosing.naoh_sp",
			     "value=\"100\"", NULL),
			 4);
	assert_int_equal(run("--format", "json", "explain", plant, "ui", "tag.write",
			     "tag=plant.safety.esd", "value=1", NULL),
			 4);
	assert_json(out);
	assert_non_null(strstr(out, "\"rule\":\"ui#1\""));
	/* every layer of every example explains to valid JSON */
	assert_int_equal(run("--format", "json", "explain", plant, "io", NULL), 0);
	assert_json(out);
}

static void test_usage(void **state)
{
	(void)state;
	assert_int_equal(run("explain", plant, "nobody", NULL), 2);
	assert_int_equal(run("explain", plant, "ui", "tag.write", "novalue", NULL), 2);
	assert_int_equal(run("explain", plant, "ui", "tag.write", "a=1", "a=2", NULL), 2);
	assert_int_equal(run("explain", plant, "ui", "Not.A.Method", NULL), 2);
	assert_int_equal(run(NULL), 2);
	assert_int_equal(run("frobnicate", plant, NULL), 2);
	assert_int_equal(run("--frobnicate", "check", plant, NULL), 2);
	assert_int_equal(run("--format", "xml", "check", plant, NULL), 2);
	assert_int_equal(run("--help", NULL), 0);
	assert_non_null(strstr(out, "usage:"));
	assert_int_equal(run("--version", NULL), 0);
	assert_int_equal(strncmp(out, "conduit-policy ", 15), 0);
}

static void test_file_checks(void **state)
{
	(void)state;
	char copy[4200], link[4200], missing[4200];
	snprintf(copy, sizeof(copy), "%s/plant.policy", tmpdir);
	snprintf(link, sizeof(link), "%s/link.policy", tmpdir);
	snprintf(missing, sizeof(missing), "%s/missing.policy", tmpdir);
	int in = open(plant, O_RDONLY | O_CLOEXEC);
	int o = open(copy, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(in >= 0 && o >= 0);
	char buf[65536];
	ssize_t n = read(in, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(write(o, buf, (size_t)n), n);
	close(in);
	close(o);
	assert_int_equal(chmod(copy, 0644), 0);
	assert_int_equal(run("check", copy, NULL), 0);
	assert_int_equal(symlink(copy, link), 0);
	assert_int_equal(run("check", link, NULL), 1);
	assert_non_null(strstr(err, "symbolic link"));
	assert_int_equal(chmod(copy, 0664), 0);
	assert_int_equal(run("check", copy, NULL), 1);
	assert_non_null(strstr(err, "writable by group or others"));
	assert_int_equal(chmod(copy, 0646), 0);
	assert_int_equal(run("check", copy, NULL), 1);
	assert_int_equal(run("--format", "json", "check", copy, NULL), 1);
	assert_json(out);
	assert_int_equal(run("check", missing, NULL), 1);
	unlink(link);
	unlink(copy);
}

/* Every invalid corpus file gives exit 1 and valid JSON diagnostics. */
static void test_json_for_every_invalid_file(void **state)
{
	(void)state;
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/tests/policy/invalid", src);
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	unsigned n = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[8400];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		assert_int_equal(run("--format", "json", "check", path, NULL), 1);
		assert_json(out);
		assert_non_null(strstr(out, "\"severity\":\"error\""));
		n++;
	}
	closedir(d);
	assert_true(n >= 60);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s CONDUIT-POLICY SOURCE-DIR\n", argv[0]);
		return 2;
	}
	bin = argv[1];
	src = argv[2];
	snprintf(plant, sizeof(plant), "%s/examples/plant/plant.policy", src);
	snprintf(lint, sizeof(lint), "%s/tests/policy/lint/01-lints.policy", src);
	snprintf(bad, sizeof(bad), "%s/tests/policy/invalid/073-range-reversed.policy", src);
	if (!mkdtemp(tmpdir))
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_checker),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_test),
		cmocka_unit_test(test_explain),
		cmocka_unit_test(test_usage),
		cmocka_unit_test(test_file_checks),
		cmocka_unit_test(test_json_for_every_invalid_file),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(tmpdir);
	return r;
}
