/* SPDX-License-Identifier: MIT */
/* Historian storage through the same two fds the broker will pass: an
 * O_APPEND write-only one and a read-only one.  Torn tails at every length,
 * damage in the middle, unknown versions, the format vector, batch and
 * query limits at max and max+1. */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "hist-store.h"

struct files {
	int mem, wfd, rfd;
};

static struct files files_open(void)
{
	struct files f;
	char path[64];
	f.mem = memfd_create("hist", MFD_CLOEXEC);
	assert_true(f.mem >= 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", f.mem);
	f.wfd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	f.rfd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(f.wfd >= 0 && f.rfd >= 0);
	return f;
}

static void files_close(struct files *f)
{
	close(f->rfd);
	close(f->wfd);
	close(f->mem);
}

static void put(struct files *f, uint32_t tag, int64_t t, double v)
{
	struct hist_sample s = {.tag = tag, .t_ms = t, .value = v};
	assert_int_equal(hist_append(f->wfd, &s), 0);
}

static void raw(struct files *f, const void *p, size_t n)
{
	assert_int_equal(write(f->wfd, p, n), (ssize_t)n);
}

struct collect {
	struct hist_sample s[64];
	size_t n;
};

static int collect_fn(const struct hist_sample *s, void *ctx)
{
	struct collect *c = ctx;
	if (c->n < 64)
		c->s[c->n] = *s;
	c->n++;
	return 0;
}

static void test_hist_crc_and_vector(void **state)
{
	(void)state;
	assert_int_equal(hist_crc32c("123456789", 9), 0xe3069283u); /* CRC-32C check value */
	assert_int_equal(hist_crc32c("", 0), 0);
	/* The record vector of examples/plant/README.md. */
	struct hist_sample s = {.tag = 5, .t_ms = 1764151200000LL, .value = 110.0};
	uint8_t rec[HIST_RECORD_SIZE];
	assert_int_equal(hist_encode(&s, rec), 0);
	static const uint8_t want[HIST_RECORD_SIZE - 4] = {
		0xc7, 0x01, 0x1c, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x09, 0x9b, 0xbf,
		0x9a, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x5b, 0x40,
	};
	assert_memory_equal(rec, want, sizeof(want));
	/* CRC computed independently of this code. */
	assert_int_equal(hist_crc32c(want, sizeof(want)), 0x96546a00u);
	assert_int_equal(rec[24] | rec[25] << 8 | rec[26] << 16 | (uint32_t)rec[27] << 24,
			 0x96546a00u);
	struct hist_sample d;
	size_t skip = 0;
	assert_int_equal(hist_decode(rec, sizeof(rec), &d, &skip), HIST_RECORD_SIZE);
	assert_int_equal(d.tag, 5);
	assert_true(d.t_ms == s.t_ms && d.value == 110.0);
	/* Negative times and extreme values round-trip. */
	s = (struct hist_sample){.tag = UINT32_MAX, .t_ms = INT64_MIN, .value = -DBL_MAX};
	assert_int_equal(hist_encode(&s, rec), 0);
	assert_int_equal(hist_decode(rec, sizeof(rec), &d, &skip), HIST_RECORD_SIZE);
	assert_true(d.tag == UINT32_MAX && d.t_ms == INT64_MIN && d.value == -DBL_MAX);
}

static void test_hist_decode_rejects(void **state)
{
	(void)state;
	struct hist_sample s = {.tag = 1, .t_ms = 2, .value = 3.0}, d = {0};
	uint8_t rec[HIST_RECORD_SIZE], bad[HIST_RECORD_SIZE];
	size_t skip = 99;
	assert_int_equal(hist_encode(&s, rec), 0);
	/* Every truncation: "need more". */
	for (size_t n = 0; n < HIST_RECORD_SIZE; n++)
		assert_int_equal(hist_decode(rec, n, &d, &skip), 0);
	/* Every single bit flip: rejected (or, for the length, unknown). */
	for (size_t i = 0; i < HIST_RECORD_SIZE * 8; i++) {
		memcpy(bad, rec, sizeof(bad));
		bad[i / 8] ^= (uint8_t)(1u << (i % 8));
		int r = hist_decode(bad, sizeof(bad), &d, &skip);
		assert_true(r == -EBADMSG || r == 0);
	}
	assert_true(d.tag == 0 && skip == 99); /* never written on failure */
	/* Non-finite values never stored, and refused if forged with a good CRC. */
	s.value = NAN;
	assert_int_equal(hist_encode(&s, rec), -EINVAL);
	s.value = INFINITY;
	assert_int_equal(hist_encode(&s, rec), -EINVAL);
	s.value = 1.0;
	assert_int_equal(hist_encode(&s, rec), 0);
	double inf = INFINITY;
	memcpy(rec + 16, &inf, 8);
	uint32_t crc = hist_crc32c(rec, 24);
	memcpy(rec + 24, &crc, 4); /* little-endian host */
	assert_int_equal(hist_decode(rec, sizeof(rec), &d, &skip), -EBADMSG);
	/* Flags other than 0, version 0, a short length: rejected. */
	assert_int_equal(hist_encode(&s, rec), 0);
	rec[3] = 1;
	crc = hist_crc32c(rec, 24);
	memcpy(rec + 24, &crc, 4);
	assert_int_equal(hist_decode(rec, sizeof(rec), &d, &skip), -EBADMSG);
	rec[3] = 0;
	rec[1] = 0;
	crc = hist_crc32c(rec, 24);
	memcpy(rec + 24, &crc, 4);
	assert_int_equal(hist_decode(rec, sizeof(rec), &d, &skip), -EBADMSG);
	uint8_t tiny[HIST_RECORD_MIN] = {HIST_MAGIC, 2, HIST_RECORD_MIN - 1};
	assert_int_equal(hist_decode(tiny, sizeof(tiny), &d, &skip), -EBADMSG);
	/* A later version at exactly the minimum length: skippable. */
	tiny[2] = HIST_RECORD_MIN;
	crc = hist_crc32c(tiny, HIST_RECORD_MIN - 4);
	memcpy(tiny + 4, &crc, 4);
	assert_int_equal(hist_decode(tiny, sizeof(tiny), &d, &skip), -EPROTONOSUPPORT);
	assert_int_equal(skip, HIST_RECORD_MIN);
	/* Version 1 must be exactly 28 bytes long. */
	assert_int_equal(hist_encode(&s, rec), 0);
	rec[2] = HIST_RECORD_SIZE - 1;
	assert_int_equal(hist_decode(rec, sizeof(rec), &d, &skip), -EBADMSG);
}

static void test_hist_append_scan(void **state)
{
	(void)state;
	struct files f = files_open();
	struct hist_scan_stats st;
	struct collect c = {0};
	/* Empty file: nothing, no error. */
	assert_int_equal(hist_scan(f.rfd, collect_fn, &c, &st), 0);
	assert_int_equal(c.n, 0);
	assert_true(st.records == 0 && st.junk_bytes == 0 && st.torn_tail_bytes == 0);
	for (int i = 0; i < 10; i++)
		put(&f, (uint32_t)i % 3, i * 100, i * 1.5);
	/* The reader's position does not matter: scans use pread. */
	assert_int_equal(lseek(f.rfd, 13, SEEK_SET), 13);
	assert_int_equal(hist_scan(f.rfd, collect_fn, &c, &st), 0);
	assert_int_equal(c.n, 10);
	assert_int_equal(st.records, 10);
	for (int i = 0; i < 10; i++)
		assert_true(c.s[i].tag == (uint32_t)i % 3 && c.s[i].t_ms == i * 100 &&
			    c.s[i].value == i * 1.5);
	/* No callback and no stats: a plain integrity pass. */
	assert_int_equal(hist_scan(f.rfd, NULL, NULL, NULL), 0);
	files_close(&f);
}

static int stop_at_3(const struct hist_sample *s, void *ctx)
{
	(void)ctx;
	return s->t_ms == 3 ? 42 : 0;
}

static void test_hist_scan_stop_and_errors(void **state)
{
	(void)state;
	struct files f = files_open();
	for (int i = 0; i < 5; i++)
		put(&f, 1, i, 0.0);
	assert_int_equal(hist_scan(f.rfd, stop_at_3, NULL, NULL), 42);
	/* The historian's fds: it cannot read through the append fd nor
	 * append through the read-only one. */
	struct hist_sample s = {.tag = 1, .t_ms = 1, .value = 1.0};
	assert_int_equal(hist_append(f.rfd, &s), -EBADF);
	assert_int_equal(hist_scan(f.wfd, NULL, NULL, NULL), -EBADF);
	assert_int_equal(hist_scan(-1, NULL, NULL, NULL), -EBADF);
	files_close(&f);
}

static void test_hist_check_fds(void **state)
{
	(void)state;
	struct files f = files_open(), g = files_open();
	assert_int_equal(hist_check_fds(f.wfd, f.rfd), 0);
	/* Swapped, or the writer without O_APPEND or read-write. */
	assert_int_equal(hist_check_fds(f.rfd, f.wfd), -EINVAL);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", f.mem);
	int plain = open(path, O_WRONLY | O_CLOEXEC);
	int rw = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
	assert_true(plain >= 0 && rw >= 0);
	assert_int_equal(hist_check_fds(plain, f.rfd), -EINVAL);
	assert_int_equal(hist_check_fds(rw, f.rfd), -EINVAL);
	assert_int_equal(hist_check_fds(f.wfd, rw), -EINVAL);
	/* Two different files. */
	assert_int_equal(hist_check_fds(f.wfd, g.rfd), -EXDEV);
	/* Not a regular file, not open at all. */
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fcntl(p[1], F_SETFL, O_APPEND), 0);
	assert_int_equal(hist_check_fds(p[1], p[0]), -ENOTSUP);
	assert_int_equal(hist_check_fds(-1, f.rfd), -EBADF);
	assert_int_equal(hist_check_fds(f.wfd, -1), -EBADF);
	close(p[0]);
	close(p[1]);
	close(plain);
	close(rw);
	files_close(&f);
	files_close(&g);
}

static void test_hist_torn_tail(void **state)
{
	(void)state;
	struct hist_sample s = {.tag = 7, .t_ms = 99, .value = 4.5};
	uint8_t rec[HIST_RECORD_SIZE];
	assert_int_equal(hist_encode(&s, rec), 0);
	/* A crash after every possible number of bytes of the last record. */
	for (size_t cut = 1; cut < HIST_RECORD_SIZE; cut++) {
		struct files f = files_open();
		put(&f, 1, 1, 1.0);
		put(&f, 2, 2, 2.0);
		raw(&f, rec, cut);
		struct collect c = {0};
		struct hist_scan_stats st;
		assert_int_equal(hist_scan(f.rfd, collect_fn, &c, &st), 0);
		assert_int_equal(c.n, 2);
		assert_int_equal(st.torn_tail_bytes, cut);
		assert_int_equal(st.junk_bytes, cut);
		/* Appending after the torn record: everything after it is found. */
		put(&f, 3, 3, 3.0);
		put(&f, 4, 4, 4.0);
		c.n = 0;
		assert_int_equal(hist_scan(f.rfd, collect_fn, &c, &st), 0);
		assert_int_equal(c.n, 4);
		assert_int_equal(c.s[2].tag, 3);
		assert_int_equal(c.s[3].tag, 4);
		assert_int_equal(st.junk_bytes, cut);
		assert_int_equal(st.torn_tail_bytes, 0);
		files_close(&f);
	}
}

static void test_hist_damage_and_versions(void **state)
{
	(void)state;
	struct files f = files_open();
	put(&f, 1, 1, 1.0);
	/* A damaged record in the middle: lost alone. */
	struct hist_sample s = {.tag = 2, .t_ms = 2, .value = 2.0};
	uint8_t rec[HIST_RECORD_SIZE];
	assert_int_equal(hist_encode(&s, rec), 0);
	rec[10] ^= 0x40;
	raw(&f, rec, sizeof(rec));
	/* Junk that looks like a record start, with a length past the file's
	 * end if it were the tail. */
	static const uint8_t junk[] = {HIST_MAGIC, HIST_VERSION, 200, 0, HIST_MAGIC};
	raw(&f, junk, sizeof(junk));
	put(&f, 3, 3, 3.0);
	/* A record of a later version, 40 bytes with a valid CRC: skipped. */
	uint8_t v2[40] = {HIST_MAGIC, 2, 40};
	uint32_t crc = hist_crc32c(v2, 36);
	memcpy(v2 + 36, &crc, 4);
	raw(&f, v2, sizeof(v2));
	put(&f, 4, 4, 4.0);
	struct collect c = {0};
	struct hist_scan_stats st;
	assert_int_equal(hist_scan(f.rfd, collect_fn, &c, &st), 0);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.s[0].tag, 1);
	assert_int_equal(c.s[1].tag, 3);
	assert_int_equal(c.s[2].tag, 4);
	assert_int_equal(st.records, 3);
	assert_int_equal(st.skipped_records, 1);
	assert_int_equal(st.junk_bytes, HIST_RECORD_SIZE + sizeof(junk));
	assert_int_equal(st.torn_tail_bytes, 0);
	files_close(&f);
}

static void test_hist_large_file(void **state)
{
	(void)state;
	/* More than the scan buffer, records straddling its refills. */
	struct files f = files_open();
	struct hist_sample batch[HIST_BATCH_MAX];
	for (int b = 0; b < 5; b++) {
		for (int i = 0; i < HIST_BATCH_MAX; i++)
			batch[i] = (struct hist_sample){
				.tag = 1, .t_ms = b * HIST_BATCH_MAX + i, .value = i};
		assert_int_equal(hist_append_batch(f.wfd, batch, HIST_BATCH_MAX), 0);
		raw(&f, "x", 1); /* one junk byte: shifts alignment */
	}
	struct hist_scan_stats st;
	assert_int_equal(hist_scan(f.rfd, NULL, NULL, &st), 0);
	assert_int_equal(st.records, 5 * HIST_BATCH_MAX);
	assert_int_equal(st.junk_bytes, 5);
	assert_int_equal(st.torn_tail_bytes, 1);
	files_close(&f);
}

static void test_hist_batch_limits(void **state)
{
	(void)state;
	struct files f = files_open();
	struct hist_sample batch[HIST_BATCH_MAX + 1];
	for (int i = 0; i <= HIST_BATCH_MAX; i++)
		batch[i] = (struct hist_sample){.tag = 1, .t_ms = i, .value = i};
	assert_int_equal(hist_append_batch(f.wfd, batch, 0), -EINVAL);			/* empty */
	assert_int_equal(hist_append_batch(f.wfd, batch, HIST_BATCH_MAX + 1), -EINVAL); /* max+1 */
	batch[5].value = NAN;
	assert_int_equal(hist_append_batch(f.wfd, batch, 10), -EINVAL);
	struct hist_sample nan = {.tag = 1, .t_ms = 1, .value = NAN};
	assert_int_equal(hist_append(f.wfd, &nan), -EINVAL);
	assert_int_equal(lseek(f.mem, 0, SEEK_END), 0); /* nothing written */
	batch[5].value = 5;
	assert_int_equal(hist_append_batch(f.wfd, batch, HIST_BATCH_MAX), 0); /* exactly max */
	assert_int_equal(lseek(f.mem, 0, SEEK_END), HIST_BATCH_MAX * HIST_RECORD_SIZE);
	files_close(&f);
}

static void test_hist_query(void **state)
{
	(void)state;
	struct files f = files_open();
	struct hist_bucket b[HIST_QUERY_MAX_POINTS + 1];
	struct hist_scan_stats st;
	/* Empty file, any range: no buckets. */
	assert_int_equal(hist_query(f.rfd, 1, 0, 1000, 10, b, &st), 0);
	/* Tag 1: values 0..99 at t = 0..990 step 10; tag 2 interleaved. */
	for (int i = 0; i < 100; i++) {
		put(&f, 1, i * 10, i);
		put(&f, 2, i * 10, -i);
	}
	/* Ten buckets of 100 ms over [0, 1000). */
	assert_int_equal(hist_query(f.rfd, 1, 0, 1000, 10, b, &st), 10);
	assert_int_equal(st.records, 200);
	for (int i = 0; i < 10; i++) {
		assert_true(b[i].t_start == i * 100);
		assert_int_equal(b[i].count, 10);
		assert_true(b[i].min == i * 10 && b[i].max == i * 10 + 9);
		assert_true(fabs(b[i].avg - (i * 10 + 4.5)) < 1e-9);
	}
	/* t1 is exclusive, t0 inclusive; empty buckets are left out. */
	assert_int_equal(hist_query(f.rfd, 2, 100, 110, 5, b, NULL), 1);
	assert_true(b[0].t_start == 100 && b[0].count == 1 && b[0].min == -10.0);
	assert_int_equal(hist_query(f.rfd, 2, 101, 110, 5, b, NULL), 0);
	assert_int_equal(hist_query(f.rfd, 1, 0, 1000, 3, b, NULL), 3); /* width 334 */
	assert_true(b[1].t_start == 334 && b[1].count == 33 && b[2].count == 33);
	assert_int_equal(hist_query(f.rfd, 3, 0, 1000, 10, b, NULL), 0); /* no such tag */
	/* One point over everything. */
	assert_int_equal(hist_query(f.rfd, 1, INT64_MIN / 2, INT64_MAX / 2, 1, b, NULL), 1);
	assert_true(b[0].count == 100 && b[0].min == 0 && b[0].max == 99);
	/* Limits: max_points 0 and max+1, exactly max. */
	assert_int_equal(hist_query(f.rfd, 1, 0, 1000, 0, b, NULL), -ERANGE);
	assert_int_equal(hist_query(f.rfd, 1, 0, 1000, HIST_QUERY_MAX_POINTS + 1, b, NULL),
			 -ERANGE);
	assert_int_equal(hist_query(f.rfd, 1, 0, 1000, HIST_QUERY_MAX_POINTS, b, NULL), 100);
	/* Bad ranges: empty, reversed, overflowing. */
	assert_int_equal(hist_query(f.rfd, 1, 5, 5, 10, b, NULL), -EINVAL);
	assert_int_equal(hist_query(f.rfd, 1, 6, 5, 10, b, NULL), -EINVAL);
	assert_int_equal(hist_query(f.rfd, 1, INT64_MIN, INT64_MAX, 10, b, NULL), -EINVAL);
	assert_int_equal(hist_query(f.rfd, 1, -1, INT64_MAX, 10, b, NULL), -EINVAL);
	assert_int_equal(hist_query(f.rfd, 1, 0, INT64_MAX, 10, b, NULL), 1);
	/* Near the end of time: bucket starts past t1 are never computed. */
	put(&f, 9, INT64_MAX - 1, 1.0);
	assert_int_equal(
		hist_query(f.rfd, 9, INT64_MAX - 10, INT64_MAX, HIST_QUERY_MAX_POINTS, b, NULL), 1);
	assert_true(b[0].t_start == INT64_MAX - 1);
	assert_int_equal(hist_query(-1, 1, 0, 10, 1, b, NULL), -EBADF);
	files_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_crc_and_vector),
		cmocka_unit_test(test_hist_decode_rejects),
		cmocka_unit_test(test_hist_append_scan),
		cmocka_unit_test(test_hist_scan_stop_and_errors),
		cmocka_unit_test(test_hist_check_fds),
		cmocka_unit_test(test_hist_torn_tail),
		cmocka_unit_test(test_hist_damage_and_versions),
		cmocka_unit_test(test_hist_large_file),
		cmocka_unit_test(test_hist_batch_limits),
		cmocka_unit_test(test_hist_query),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
