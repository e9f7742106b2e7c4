/* SPDX-License-Identifier: MIT */
/*
 * Tampering: a real log of a few thousand records, then 10,000 random
 * mutations (byte flips, dropped, duplicated, swapped and truncated
 * records, a cut file) from a fixed-seed PRNG.  Every one must be detected
 * and classified as the kind of damage it is.
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "audit.h"

#define RECORDS	  2000
#define MUTATIONS 10000

static uint64_t rng_state = 0x5eed0f0a0d17c0deu;

static uint64_t rng(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static size_t rnd(size_t n)
{
	return (size_t)(rng() % n);
}

/* The original log, split into lines (newline included). */
static char *orig;
static size_t orig_len;
static size_t line_off[RECORDS + 1];
static size_t nlines;

static char *mut;
static size_t mut_len;

static void mut_reset(void)
{
	mut_len = 0;
}

static void mut_add(const char *p, size_t n)
{
	memcpy(mut + mut_len, p, n);
	mut_len += n;
}

static void mut_line(size_t i)
{
	mut_add(orig + line_off[i], line_off[i + 1] - line_off[i]);
}

static void write_log(const char *path)
{
	struct audit_writer *w;
	assert_int_equal(audit_writer_open(path, &w), 0);
	/* Fixed times: only the log id and the hashes differ between runs. */
	struct audit_record start = {
		.event = AUDIT_EV_START, .policy = "plant.policy", .time_us = 1795677314000000};
	assert_int_equal(audit_writer_append(w, &start), 0);
	for (int i = 1; i < RECORDS - 1; i++) {
		char tag[32];
		snprintf(tag, sizeof(tag), "plant.tank%d.level", i % 7);
		struct cdt_arg args[2] = {
			{.name = "tag", .type = CDT_TYPE_STRING, .v.str = {tag, strlen(tag)}},
			{.name = "value", .type = CDT_TYPE_I64, .v.i64 = i * 13},
		};
		struct audit_record rec = {.event = AUDIT_EV_DECISION,
					   .layer = i % 3 ? "ui" : "hist",
					   .has_pid = true,
					   .pid = 1000 + i % 5,
					   .method = "tag.write",
					   .call_args = args,
					   .ncall_args = 2,
					   .verdict =
						   i % 4 ? AUDIT_VERDICT_ALLOW : AUDIT_VERDICT_DENY,
					   .rule = "ui#1"};
		if (i % 97 == 0)
			rec = (struct audit_record){.event = AUDIT_EV_EXIT,
						    .layer = "io",
						    .has_pid = true,
						    .pid = 7,
						    .signal = "SIGSYS"};
		rec.time_us = 1795677314000000 + i * 1500;
		assert_int_equal(audit_writer_append(w, &rec), 0);
	}
	struct audit_record stop = {.event = AUDIT_EV_STOP, .time_us = 1795677324000000};
	assert_int_equal(audit_writer_append(w, &stop), 0);
	audit_writer_free(w);
}

enum mutation { M_FLIP, M_DROP, M_DUP, M_SWAP, M_CUT_LINE, M_CUT_FILE, M_MAX };
static const char *const mutation_names[M_MAX] = {"byte flip", "dropped",	   "duplicated",
						  "swapped",   "truncated record", "cut file"};

/* Which classifications are right for each kind of damage. */
static bool allowed(enum mutation m, enum audit_status s, bool last_byte)
{
	switch (m) {
	case M_FLIP:
		/* The file's final newline flipped reads as a crash's torn tail. */
		return s == AUDIT_SYNTAX || s == AUDIT_EDITED || (last_byte && s == AUDIT_TORN);
	case M_DROP:
		return s == AUDIT_MISSING || s == AUDIT_SPLICED;
	case M_DUP:
		return s == AUDIT_DUPLICATED;
	case M_SWAP:
		return s == AUDIT_REORDERED;
	case M_CUT_LINE:
		return s == AUDIT_SYNTAX;
	case M_CUT_FILE:
		return s == AUDIT_TORN || s == AUDIT_MISSING || s == AUDIT_EMPTY;
	case M_MAX:
		break;
	}
	return false;
}

static void test_mutations(void **state)
{
	(void)state;
	char dir[] = "/tmp/audit-mutation.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[64];
	snprintf(path, sizeof(path), "%s/audit.log", dir);
	write_log(path);

	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	orig_len = (size_t)st.st_size;
	orig = malloc(orig_len);
	mut = malloc(2 * orig_len);
	assert_true(orig && mut);
	assert_int_equal(read(fd, orig, orig_len), (ssize_t)orig_len);
	close(fd);
	unlink(path);
	rmdir(dir);
	for (size_t i = 0; i < orig_len; i++)
		if (orig[i] == '\n')
			line_off[++nlines] = i + 1;
	assert_int_equal(nlines, RECORDS);

	int mfd = memfd_create("audit-mutation", MFD_CLOEXEC);
	assert_true(mfd >= 0);
	struct audit_verify_opts o = {.require_closed = true};
	struct audit_verify_result res;
	assert_int_equal(write(mfd, orig, orig_len), (ssize_t)orig_len);
	assert_int_equal(lseek(mfd, 0, SEEK_SET), 0);
	assert_int_equal(audit_verify_fds(&mfd, 1, &o, &res), 0);
	assert_int_equal(res.status, AUDIT_OK);
	assert_true(res.records == RECORDS);

	unsigned count[M_MAX][AUDIT_TORN + 1] = {{0}};
	unsigned per[M_MAX] = {0}, detected = 0;
	for (int n = 0; n < MUTATIONS; n++) {
		enum mutation m = (enum mutation)rnd(M_MAX);
		bool last_byte = false;
		mut_reset();
		switch (m) {
		case M_FLIP: {
			size_t at = rnd(orig_len);
			mut_add(orig, orig_len);
			mut[at] ^= (char)(1 + rnd(255));
			last_byte = at == orig_len - 1;
			break;
		}
		case M_DROP: {
			size_t d = rnd(nlines);
			for (size_t i = 0; i < nlines; i++)
				if (i != d)
					mut_line(i);
			break;
		}
		case M_DUP: {
			size_t d = rnd(nlines), at = rnd(nlines + 1);
			for (size_t i = 0; i <= nlines; i++) {
				if (i == at)
					mut_line(d);
				if (i < nlines)
					mut_line(i);
			}
			break;
		}
		case M_SWAP: {
			size_t a = rnd(nlines), b = rnd(nlines - 1);
			b += b >= a;
			for (size_t i = 0; i < nlines; i++)
				mut_line(i == a ? b : i == b ? a : i);
			break;
		}
		case M_CUT_LINE: {
			size_t c = rnd(nlines);
			size_t len = line_off[c + 1] - line_off[c] - 1;
			for (size_t i = 0; i < nlines; i++) {
				if (i != c) {
					mut_line(i);
					continue;
				}
				mut_add(orig + line_off[i], rnd(len));
				mut_add("\n", 1);
			}
			break;
		}
		case M_CUT_FILE:
			mut_add(orig, rnd(orig_len));
			break;
		case M_MAX:
			break;
		}
		assert_int_equal(ftruncate(mfd, 0), 0);
		assert_int_equal(pwrite(mfd, mut, mut_len, 0), (ssize_t)mut_len);
		assert_int_equal(lseek(mfd, 0, SEEK_SET), 0);
		assert_int_equal(audit_verify_fds(&mfd, 1, &o, &res), 0);
		per[m]++;
		count[m][res.status]++;
		if (res.status != AUDIT_OK)
			detected++;
		if (!allowed(m, res.status, last_byte))
			fail_msg("mutation %d (%s): classified %s at line %llu: %s", n,
				 mutation_names[m], audit_status_name(res.status),
				 (unsigned long long)res.line, res.reason);
	}
	close(mfd);
	printf("audit tamper test: %d-record log, %d mutations, %u detected and classified\n",
	       RECORDS, MUTATIONS, detected);
	for (int m = 0; m < M_MAX; m++) {
		printf("  %-17s %5u:", mutation_names[m], per[m]);
		for (int s = 0; s <= AUDIT_TORN; s++)
			if (count[m][s])
				printf(" %s %u", audit_status_name((enum audit_status)s),
				       count[m][s]);
		printf("\n");
	}
	assert_int_equal(detected, MUTATIONS);
	free(orig);
	free(mut);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
