/* SPDX-License-Identifier: MIT */
/* The historian's storage: samples appended to a file the historian may only
 * write() to (the broker opens it O_WRONLY|O_APPEND and passes the fd), read
 * back through a second, read-only fd.  Nothing here opens, seeks, truncates
 * or renames a file: the historian layer never needs those rights.
 *
 * Record format, version 1 (28 bytes, little-endian, no file header):
 *
 *   off size field
 *     0    1 magic   0xC7
 *     1    1 version 1
 *     2    1 length  28 (the whole record, so a reader can skip a record of
 *                    a later version whose checksum it can still verify)
 *     3    1 flags   0 (a version 1 reader rejects any other value)
 *     4    4 tag     tag id (examples/plant/tags.h)
 *     8    8 time    int64 milliseconds since the Unix epoch
 *    16    8 value   IEEE 754 binary64, finite
 *    24    4 crc     CRC-32C of bytes 0..length-5
 *
 * Each record (or batch) is one write() on an O_APPEND fd, so concurrent
 * appends never interleave inside a record.  A crash can still leave a torn
 * record at the end, and later appends land after it: readers therefore
 * accept a record only when magic, length and CRC agree, and otherwise move
 * one byte on and look again.  A torn tail costs the torn record and nothing
 * else. */
#ifndef PLANT_HIST_STORE_H
#define PLANT_HIST_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HIST_MAGIC	      0xC7
#define HIST_VERSION	      1
#define HIST_RECORD_SIZE      28
#define HIST_RECORD_MIN	      8	   /* magic, version, length, flags, crc */
#define HIST_BATCH_MAX	      256  /* samples per hist_append_batch() */
#define HIST_QUERY_MAX_POINTS 4096 /* buckets per query */

struct hist_sample {
	uint32_t tag;
	int64_t t_ms;
	double value;
};

/* One time bucket of a query: [t_start, t_start + width) of the query. */
struct hist_bucket {
	int64_t t_start;
	uint32_t count; /* samples in the bucket, >= 1 */
	double min;
	double max;
	double avg;
};

/* What a scan saw. */
struct hist_scan_stats {
	uint64_t records;	  /* valid version 1 records */
	uint64_t skipped_records; /* valid records of another version, skipped */
	uint64_t junk_bytes;	  /* bytes that were no valid record (torn or damaged) */
	uint64_t torn_tail_bytes; /* of those, bytes at the end of the file */
};

/* CRC-32C (Castagnoli) of @len bytes; exposed for the tests and the docs. */
uint32_t hist_crc32c(const void *data, size_t len);

/* Encode one sample into @ret_rec (HIST_RECORD_SIZE bytes): 0, or -EINVAL
 * for a non-finite value. */
int hist_encode(const struct hist_sample *s, uint8_t ret_rec[HIST_RECORD_SIZE]);

/* Decode the record at the start of @buf (@len bytes available):
 *   > 0  a valid version 1 record of that many bytes, in *ret_s
 *   = 0  not enough bytes to tell (a possible torn tail)
 *   -EBADMSG  no valid record starts here (move one byte on)
 *   -EPROTONOSUPPORT  a checksummed record of another version whose length
 *        is HIST_RECORD_MIN..255: skip it; *ret_len gets its length
 * *ret_s is written only when the result is > 0, *ret_len only for
 * -EPROTONOSUPPORT. */
int hist_decode(const uint8_t *buf, size_t len, struct hist_sample *ret_s, size_t *ret_len);

/* Check the fds the historian was given before trusting them: @wfd open
 * write-only with O_APPEND (so no record can overwrite another) and @rfd
 * read-only, both on the same regular file.  0, -EBADF for a closed fd,
 * -EINVAL for a wrong access mode or a missing O_APPEND, -ENOTSUP for
 * something that is not a regular file, -EXDEV for two different files. */
int hist_check_fds(int wfd, int rfd);

/* Append one sample with a single write() (EINTR retried): 0, -EINVAL for a
 * non-finite value, -EIO for a short write (the torn record is left behind;
 * readers skip it), or the negative errno of write(). */
int hist_append(int fd, const struct hist_sample *s);

/* Append @n samples (1..HIST_BATCH_MAX) with a single write(): 0, -EINVAL
 * when n is out of range or any value is not finite (nothing written), else
 * as hist_append(). */
int hist_append_batch(int fd, const struct hist_sample *s, size_t n);

/* Read every valid sample from the read-only fd @rfd (pread from offset 0;
 * its file position is not used) and call @fn for each; a non-zero return
 * from @fn stops the scan and is returned.  0 at the end, a negative errno
 * of pread(), or @fn's value.  Stats go to *ret_stats if not NULL, on success. */
int hist_scan(int rfd, int (*fn)(const struct hist_sample *s, void *ctx), void *ctx,
	      struct hist_scan_stats *ret_stats);

/* Aggregate samples of @tag with t0 <= time < t1 into at most @max_points
 * equal buckets (width ceil((t1 - t0) / max_points) ms); only buckets with
 * samples are returned, in time order, at the start of the caller's array
 * @buckets (room for @max_points, used as scratch: undefined on error).
 * Memory use is fixed: no allocation, one pass over the file.  Returns the number of buckets,
 * -EINVAL for t1 <= t0 or a span that overflows, -ERANGE for max_points outside
 * 1..HIST_QUERY_MAX_POINTS, or the error of hist_scan(). */
int hist_query(int rfd, uint32_t tag, int64_t t0, int64_t t1, size_t max_points,
	       struct hist_bucket *buckets, struct hist_scan_stats *ret_stats);

#endif
