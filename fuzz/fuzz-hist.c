/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the historian's record reader: the file a (possibly compromised or
 * crashed) historian wrote is untrusted input to every later query.
 * Input: a 20-byte query header (tag, t0, span, max_points), then the
 * file.  Checks: a decoded record re-encodes to exactly its bytes (the
 * format is canonical); the scan's byte accounting never exceeds the file;
 * a query's buckets are in time order, inside [t0, t1), non-empty, with
 * min <= avg <= max.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hist-store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Query header: tag u8, t0 i64, span i64, span shift u8, max_points u16. */
#define QUERY_HEADER 20

static int mem_fd = -1;
static struct hist_bucket buckets[HIST_QUERY_MAX_POINTS];

static int check_sample(const struct hist_sample *s, void *ctx)
{
	(void)ctx;
	uint8_t rec[HIST_RECORD_SIZE];
	if (hist_encode(s, rec) != 0) /* a decoded value is always finite */
		abort();
	return 0;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (mem_fd < 0) {
		mem_fd = memfd_create("fuzz-hist", MFD_CLOEXEC);
		if (mem_fd < 0)
			abort();
	}
	if (size < QUERY_HEADER)
		return 0;
	uint32_t tag = data[0];
	int64_t t0 = (int64_t)le64(data + 1);
	int64_t span = (int64_t)le64(data + 9) >> (data[17] % 64); /* small spans too */
	size_t max_points = (size_t)(data[18] | data[19] << 8);	   /* 0..65535 */
	data += QUERY_HEADER;
	size -= QUERY_HEADER;

	/* Decode at every offset: a record re-encodes to its own bytes. */
	for (size_t off = 0; off < size; off++) {
		struct hist_sample s;
		size_t skip = 0;
		int r = hist_decode(data + off, size - off, &s, &skip);
		if (r > 0) {
			uint8_t rec[HIST_RECORD_SIZE];
			if (r != HIST_RECORD_SIZE || hist_encode(&s, rec) != 0 ||
			    memcmp(rec, data + off, HIST_RECORD_SIZE) != 0)
				abort();
		} else if (r == -EPROTONOSUPPORT) {
			if (skip < HIST_RECORD_MIN || skip > size - off)
				abort();
		}
	}

	if (ftruncate(mem_fd, 0) < 0 || (size && pwrite(mem_fd, data, size, 0) != (ssize_t)size))
		abort();
	struct hist_scan_stats st;
	if (hist_scan(mem_fd, check_sample, NULL, &st) != 0)
		abort();
	if (st.records * HIST_RECORD_SIZE + st.junk_bytes > size ||
	    st.torn_tail_bytes > st.junk_bytes)
		abort();

	int64_t t1;
	if (__builtin_add_overflow(t0, span, &t1))
		return 0; /* not a range anyone can ask for */
	int n = hist_query(mem_fd, tag, t0, t1, max_points, buckets, NULL);
	if (n < 0)
		return 0;
	if ((size_t)n > max_points || (uint64_t)n > st.records)
		abort();
	for (int i = 0; i < n; i++) {
		const struct hist_bucket *b = &buckets[i];
		if (b->count == 0 || b->t_start < t0 || b->t_start >= t1 || b->min > b->max)
			abort();
		if (i > 0 && b->t_start <= buckets[i - 1].t_start)
			abort();
		/* The mean of finite values lies within them (or overflowed). */
		if (isfinite(b->avg) && (b->avg < b->min - 1e-9 * fabs(b->min) - 1e-300 ||
					 b->avg > b->max + 1e-9 * fabs(b->max) + 1e-300))
			abort();
	}
	return 0;
}
