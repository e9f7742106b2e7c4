/* SPDX-License-Identifier: MIT */
/* Record format and recovery rules: see hist-store.h. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hist-store.h"

/* Longest record any version can have: the length field is one byte. */
#define HIST_RECORD_LEN_MAX 255
#define HIST_SCAN_BUF	    16384

uint32_t hist_crc32c(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t crc = 0xffffffffu;
	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
	}
	return ~crc;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

int hist_encode(const struct hist_sample *s, uint8_t ret_rec[HIST_RECORD_SIZE])
{
	if (!isfinite(s->value))
		return -EINVAL;
	uint64_t bits;
	memcpy(&bits, &s->value, sizeof(bits));
	ret_rec[0] = HIST_MAGIC;
	ret_rec[1] = HIST_VERSION;
	ret_rec[2] = HIST_RECORD_SIZE;
	ret_rec[3] = 0;
	put_le32(ret_rec + 4, s->tag);
	put_le64(ret_rec + 8, (uint64_t)s->t_ms);
	put_le64(ret_rec + 16, bits);
	put_le32(ret_rec + 24, hist_crc32c(ret_rec, HIST_RECORD_SIZE - 4));
	return 0;
}

int hist_decode(const uint8_t *buf, size_t len, struct hist_sample *ret_s, size_t *ret_len)
{
	if (len < 1)
		return 0;
	if (buf[0] != HIST_MAGIC)
		return -EBADMSG;
	if (len < 3)
		return 0;
	uint8_t version = buf[1];
	size_t rec_len = buf[2];
	if (version == 0 || rec_len < HIST_RECORD_MIN)
		return -EBADMSG;
	if (version == HIST_VERSION && rec_len != HIST_RECORD_SIZE)
		return -EBADMSG;
	if (len < rec_len)
		return 0;
	if (get_le32(buf + rec_len - 4) != hist_crc32c(buf, rec_len - 4))
		return -EBADMSG;
	if (version != HIST_VERSION) {
		*ret_len = rec_len;
		return -EPROTONOSUPPORT;
	}
	if (buf[3] != 0)
		return -EBADMSG;
	uint64_t bits = get_le64(buf + 16);
	double value;
	memcpy(&value, &bits, sizeof(value));
	/* The writer never stores a non-finite value: one here is damage
	 * that happened to pass the CRC, or a forged record. */
	if (!isfinite(value))
		return -EBADMSG;
	*ret_s = (struct hist_sample){
		.tag = get_le32(buf + 4),
		.t_ms = (int64_t)get_le64(buf + 8),
		.value = value,
	};
	return HIST_RECORD_SIZE;
}

int hist_check_fds(int wfd, int rfd)
{
	int wfl = fcntl(wfd, F_GETFL);
	int rfl = fcntl(rfd, F_GETFL);
	if (wfl < 0 || rfl < 0)
		return -errno;
	if ((wfl & O_ACCMODE) != O_WRONLY || !(wfl & O_APPEND) || (rfl & O_ACCMODE) != O_RDONLY)
		return -EINVAL;
	struct stat ws, rs;
	if (fstat(wfd, &ws) < 0 || fstat(rfd, &rs) < 0)
		return -errno;
	if (!S_ISREG(ws.st_mode) || !S_ISREG(rs.st_mode))
		return -ENOTSUP;
	if (ws.st_dev != rs.st_dev || ws.st_ino != rs.st_ino)
		return -EXDEV;
	return 0;
}

static int write_all_once(int fd, const uint8_t *buf, size_t len)
{
	ssize_t n;
	do {
		n = write(fd, buf, len);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* A partial write cannot be completed atomically later: leave the
	 * torn record for readers to skip rather than risk splicing it. */
	if ((size_t)n != len)
		return -EIO;
	return 0;
}

int hist_append_batch(int fd, const struct hist_sample *s, size_t n)
{
	uint8_t buf[HIST_BATCH_MAX * HIST_RECORD_SIZE];
	if (n < 1 || n > HIST_BATCH_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int r = hist_encode(&s[i], buf + i * HIST_RECORD_SIZE);
		if (r < 0)
			return r;
	}
	return write_all_once(fd, buf, n * HIST_RECORD_SIZE);
}

int hist_append(int fd, const struct hist_sample *s)
{
	return hist_append_batch(fd, s, 1);
}

int hist_scan(int rfd, int (*fn)(const struct hist_sample *s, void *ctx), void *ctx,
	      struct hist_scan_stats *ret_stats)
{
	uint8_t buf[HIST_SCAN_BUF];
	struct hist_scan_stats st = {0};
	uint64_t junk_run = 0; /* junk bytes since the last valid record */
	size_t have = 0, pos = 0;
	off_t off = 0;
	bool eof = false;

	for (;;) {
		/* Keep a whole record of any version in view until the end of
		 * the file, so "need more bytes" can only mean a torn tail. */
		if (!eof && have - pos < HIST_RECORD_LEN_MAX) {
			memmove(buf, buf + pos, have - pos);
			have -= pos;
			pos = 0;
			ssize_t r = pread(rfd, buf + have, sizeof(buf) - have, off);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			if (r == 0)
				eof = true;
			have += (size_t)r;
			off += r;
			continue;
		}
		if (pos == have)
			break;

		struct hist_sample s;
		size_t skip = 0;
		int rc = hist_decode(buf + pos, have - pos, &s, &skip);
		if (rc > 0) {
			pos += (size_t)rc;
			st.records++;
			junk_run = 0;
			int r = fn ? fn(&s, ctx) : 0;
			if (r != 0)
				return r;
		} else if (rc == -EPROTONOSUPPORT) {
			pos += skip;
			st.skipped_records++;
			junk_run = 0;
		} else if (rc == 0) {
			/* Only reachable at the end of the file: a record cut short. */
			st.junk_bytes += have - pos;
			junk_run += have - pos;
			pos = have;
		} else {
			pos++;
			st.junk_bytes++;
			junk_run++;
		}
	}
	st.torn_tail_bytes = junk_run;
	if (ret_stats)
		*ret_stats = st;
	return 0;
}

struct query_ctx {
	uint32_t tag;
	int64_t t0, t1, width;
	struct hist_bucket *b;
};

static int query_add(const struct hist_sample *s, void *opaque)
{
	struct query_ctx *q = opaque;
	if (s->tag != q->tag || s->t_ms < q->t0 || s->t_ms >= q->t1)
		return 0;
	/* t0 <= t < t1 and the span was checked, so this cannot overflow. */
	size_t i = (size_t)((s->t_ms - q->t0) / q->width);
	struct hist_bucket *b = &q->b[i];
	if (b->count == 0) {
		b->min = b->max = s->value;
		b->avg = 0.0; /* holds the sum until the scan ends */
	}
	b->count++;
	b->min = fmin(b->min, s->value);
	b->max = fmax(b->max, s->value);
	b->avg += s->value;
	return 0;
}

int hist_query(int rfd, uint32_t tag, int64_t t0, int64_t t1, size_t max_points,
	       struct hist_bucket *buckets, struct hist_scan_stats *ret_stats)
{
	int64_t span;
	if (max_points < 1 || max_points > HIST_QUERY_MAX_POINTS)
		return -ERANGE;
	if (t1 <= t0 || __builtin_sub_overflow(t1, t0, &span))
		return -EINVAL;

	/* Ceiling division: max_points buckets always cover the span. */
	int64_t n = (int64_t)max_points;
	struct query_ctx q = {
		.tag = tag,
		.t0 = t0,
		.t1 = t1,
		.width = span / n + (span % n != 0),
		.b = buckets,
	};
	for (size_t i = 0; i < max_points; i++)
		buckets[i] = (struct hist_bucket){0};

	struct hist_scan_stats st;
	int r = hist_scan(rfd, query_add, &q, &st);
	if (r < 0)
		return r;

	size_t out = 0;
	for (size_t i = 0; i < max_points; i++) {
		struct hist_bucket b = buckets[i];
		if (b.count == 0)
			continue;
		/* A bucket with a sample starts at or before that sample's
		 * time, so only those starts are computed: later ones could
		 * overflow near INT64_MAX. */
		b.t_start = t0 + (int64_t)i * q.width;
		b.avg /= (double)b.count;
		buckets[out++] = b;
	}
	if (ret_stats)
		*ret_stats = st;
	return (int)out;
}
