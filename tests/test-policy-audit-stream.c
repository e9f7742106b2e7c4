/* SPDX-License-Identifier: MIT */
/*
 * `conduit-policy audit` streams: its peak RSS (VmHWM, from wait4) on a
 * 200 MiB log stays within 4 MiB of that on a 1 MiB log, and it prints
 * its throughput in records per second.
 * usage: test-policy-audit-stream CONDUIT-POLICY
 */
#include "policy-audit-fixture.h"

#define MIB (1024u * 1024)

static char dir[] = "/tmp/conduit-policy-stream.XXXXXX";

/* The fixture's traffic, each call with a 600-byte note no rule looks at,
 * until the log holds at least bytes. */
static void big_log(const char *log, const char *pol, size_t bytes)
{
	static char note[600];
	memset(note, 'n', sizeof(note));
	struct fix_writer fw;
	fix_open(&fw, log, pol);
	fix_event(&fw, (struct audit_record){.event = AUDIT_EV_START});
	struct stat st = {0};
	char tag[32];
	for (int i = 0; (size_t)st.st_size < bytes; i++) {
		fw.t_us += 100000;
		snprintf(tag, sizeof(tag), "plant.tank.t%d", i % 12);
		struct cdt_arg a[] = {
			{.name = "note", .type = CDT_TYPE_STRING, .v.str = {note, sizeof(note)}},
			STR("tag", tag),
			I64("value", 80 + i % 41)};
		fix_call(&fw, "ui", i % 2 ? "tag.read" : "tag.write", a, i % 2 ? 2 : 3, false);
		if (i % 1024 == 0)
			assert_int_equal(stat(log, &st), 0);
	}
	fix_event(&fw, (struct audit_record){.event = AUDIT_EV_STOP});
	fix_close(&fw);
}

static void test_constant_memory(void **state)
{
	(void)state;
	char pol[128], small[128], big[128];
	snprintf(pol, sizeof(pol), "%s/plant.policy", dir);
	snprintf(small, sizeof(small), "%s/small.log", dir);
	snprintf(big, sizeof(big), "%s/big.log", dir);
	fix_write_file(pol, fixture_policy);
	big_log(small, pol, 1 * MIB);
	big_log(big, pol, 200 * MIB);

	assert_int_equal(fix_run("--closed", "--format", "json", "audit", pol, small), 0);
	long small_kb = fix_maxrss_kb;
	assert_int_equal(fix_run("--closed", "--format", "json", "audit", pol, big), 0);
	long big_kb = fix_maxrss_kb;
	long long records = fix_json_num("records"), rate = fix_json_num("records_per_second");
	assert_int_equal(fix_json_num("mismatch_count"), 0);
	struct stat st;
	assert_int_equal(stat(big, &st), 0);
	printf("conduit-policy audit: %lld records (%lld MiB) verified and replayed at %lld "
	       "records/s; VmHWM %ld kB vs %ld kB for 1 MiB\n",
	       records, (long long)st.st_size / MIB, rate, big_kb, small_kb);
	/* The reader's buffers and the per-layer counters are far below this. */
	assert_true(big_kb - small_kb < 4096);
	unlink(small);
	unlink(big);
	unlink(pol);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CONDUIT-POLICY\n", argv[0]);
		return 2;
	}
	fix_bin = argv[1];
	if (sodium_init() < 0 || !mkdtemp(dir))
		return 1;
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_constant_memory)};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(dir);
	return r;
}
