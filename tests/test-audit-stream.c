/* SPDX-License-Identifier: MIT */
/*
 * The verifier streams: its peak memory after reading a 200 MB log is that
 * after reading a 1 MB one, within a generous bound.  Each verification
 * runs in its own child so that VmHWM (the peak RSS) is its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "audit.h"

#define MIB (1024u * 1024)

static bool under_valgrind(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	bool vg = false;
	if (!f)
		return false;
	while (!vg && fgets(line, sizeof(line), f))
		vg = strstr(line, "vgpreload") != NULL;
	fclose(f);
	return vg;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t write_log(const char *path, size_t bytes)
{
	static char value[900];
	memset(value, 'v', sizeof(value));
	struct cdt_arg args[3] = {
		{.name = "tag", .type = CDT_TYPE_STRING, .v.str = {"plant.hist.trend", 16}},
		{.name = "value", .type = CDT_TYPE_STRING, .v.str = {value, sizeof(value)}},
		{.name = "when", .type = CDT_TYPE_U64},
	};
	struct audit_writer *w;
	assert_int_equal(audit_writer_open(path, &w), 0);
	struct audit_record start = {.event = AUDIT_EV_START};
	assert_int_equal(audit_writer_append(w, &start), 0);
	uint64_t n = 1;
	struct stat st = {0};
	while ((size_t)st.st_size < bytes) {
		for (int i = 0; i < 256; i++, n++) {
			args[2].v.u64 = n;
			struct audit_record rec = {.event = AUDIT_EV_DECISION,
						   .layer = "hist",
						   .method = "hist.append",
						   .call_args = args,
						   .ncall_args = 3,
						   .verdict = AUDIT_VERDICT_ALLOW};
			assert_int_equal(audit_writer_append(w, &rec), 0);
		}
		assert_int_equal(stat(path, &st), 0);
	}
	struct audit_record stop = {.event = AUDIT_EV_STOP};
	assert_int_equal(audit_writer_append(w, &stop), 0);
	audit_writer_free(w);
	return n + 1;
}

struct child_report {
	int status;
	uint64_t records;
	long hwm_kb;
};

static long vm_hwm_kb(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	long kb = -1;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static struct child_report verify_in_child(const char *path)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct child_report rep = {0};
		struct audit_verify_result res;
		struct audit_verify_opts o = {.require_closed = true};
		const char *paths[] = {path};
		rep.status = audit_verify_files(paths, 1, &o, &res) == 0 ? (int)res.status : -1;
		rep.records = res.records;
		rep.hwm_kb = vm_hwm_kb();
		_exit(write(p[1], &rep, sizeof(rep)) == (ssize_t)sizeof(rep) ? 0 : 1);
	}
	close(p[1]);
	struct child_report rep;
	assert_int_equal(read(p[0], &rep, sizeof(rep)), (ssize_t)sizeof(rep));
	close(p[0]);
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	return rep;
}

static void test_constant_memory(void **state)
{
	(void)state;
	/* valgrind runs this ~50x slower: a smaller big log, same bound. */
	size_t big = under_valgrind() ? 8 * MIB : 200 * MIB;
	char dir[] = "/tmp/audit-stream.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char small_path[64], big_path[64];
	snprintf(small_path, sizeof(small_path), "%s/small.log", dir);
	snprintf(big_path, sizeof(big_path), "%s/big.log", dir);
	uint64_t n_small = write_log(small_path, 1 * MIB);
	uint64_t n_big = write_log(big_path, big);

	struct child_report s = verify_in_child(small_path);
	double t0 = now();
	struct child_report b = verify_in_child(big_path);
	double dt = now() - t0;
	unlink(small_path);
	unlink(big_path);
	rmdir(dir);
	assert_int_equal(s.status, AUDIT_OK);
	assert_int_equal(b.status, AUDIT_OK);
	assert_true(s.records == n_small && b.records == n_big);
	printf("streaming: %zu MiB log, %llu records verified in %.2f s (%.0f records/s); "
	       "VmHWM %ld kB vs %ld kB for 1 MiB\n",
	       big / MIB, (unsigned long long)b.records, dt, (double)b.records / dt, b.hwm_kb,
	       s.hwm_kb);
	/* Generous: the reader's buffers are under 1 MiB in all. */
	assert_true(b.hwm_kb >= 0 && s.hwm_kb >= 0);
	assert_true(b.hwm_kb - s.hwm_kb < 4096);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_constant_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
