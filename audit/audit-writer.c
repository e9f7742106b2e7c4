/* SPDX-License-Identifier: MIT */
/*
 * Audit log writer.  Records are formatted into a buffer allocated at
 * open and written as whole lines, so the hot path neither allocates nor
 * leaves a half record behind: a failed or short write is cut back to the
 * last good offset and its records are counted as lost, to be reported by
 * an audit-gap record once writing works again.
 *
 * audit_writer_append() writes at once (with any deferred records before
 * it, in the same write(2)); audit_writer_defer() only formats and chains
 * the record, and audit_writer_flush() writes what was deferred.  The
 * chain state from before the batch is kept, so a batch that cannot be
 * written is lost as a whole and the chain goes on from the last record on
 * disk, exactly as for one record.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "audit-internal.h"

struct audit_writer {
	int fd;
	bool regular;
	bool dirty; /* a partial line could not be cut away yet */
	off_t good; /* length of the well-formed prefix of the file */
	uint64_t next_seq;
	uint64_t lost;
	uint64_t torn;
	uint8_t log_id[AUDIT_LOG_ID_LEN];
	uint8_t prev[AUDIT_HASH_LEN];
	struct audit_time_cache tcache;
	char *buf;
	size_t cap;
	size_t blen;   /* formatted bytes not yet written (the batch) */
	size_t bcount; /* records in them */
	uint64_t bseq; /* next_seq and prev before the batch */
	uint8_t bprev[AUDIT_HASH_LEN];
	bool bgap;	    /* the batch starts with an audit-gap record */
	uint64_t bgap_lost; /* the lost count it reports */
	struct audit_arg args[CDT_ARGS_MAX];
};

uint64_t audit_writer_torn(const struct audit_writer *w)
{
	return w->torn;
}

uint64_t audit_writer_lost(const struct audit_writer *w)
{
	return w->lost;
}

uint64_t audit_writer_next_seq(const struct audit_writer *w)
{
	return w->next_seq;
}

size_t audit_writer_pending(const struct audit_writer *w)
{
	return w->bcount;
}

void audit_writer_free(struct audit_writer *w)
{
	if (!w)
		return;
	/* Best effort: a caller that needs to know flushes first. */
	if (w->fd >= 0) {
		(void)audit_writer_flush(w);
		close(w->fd);
	}
	free(w->buf);
	free(w);
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Write buf[0..n) as one write(2) at the end of the log; on failure cut the
 * file back to w->good.  A short write has no errno of its own: the usual
 * cause is a full disk, so it is reported as -ENOSPC. */
static int writer_put(struct audit_writer *w, const char *buf, size_t n)
{
	ssize_t wr;
	do
		wr = write(w->fd, buf, n);
	while (wr < 0 && errno == EINTR);
	if (wr >= 0 && (size_t)wr == n) {
		w->good += (off_t)n;
		return 0;
	}
	int err = wr < 0 ? errno : ENOSPC;
	if (wr > 0 || (wr < 0 && w->regular)) {
		/* Some bytes may have landed: keep the log parseable. */
		if (!w->regular || ftruncate(w->fd, w->good) < 0)
			w->dirty = true;
	}
	return -err;
}

/* Serialize rec with the chain's fields and write it. */
static int writer_emit(struct audit_writer *w, const struct audit_record *in, const char *prefix)
{
	struct audit_record rec = *in;
	rec.seq = w->next_seq;
	rec.has_log_id = rec.seq == 1;
	memcpy(rec.log_id, w->log_id, AUDIT_LOG_ID_LEN);
	memcpy(rec.prev, w->prev, AUDIT_HASH_LEN);
	if (rec.time_us == 0)
		rec.time_us = now_us();
	if (in->call_args) {
		if (in->ncall_args > CDT_ARGS_MAX)
			return -EINVAL;
		size_t budget = AUDIT_VALUES_MAX;
		for (size_t i = 0; i < in->ncall_args; i++) {
			int r = audit_arg_from_cdt(&in->call_args[i], &budget, &w->args[i]);
			if (r < 0)
				return r;
		}
		rec.args = w->args;
		rec.nargs = in->ncall_args;
		rec.has_args = true;
	}
	/* Behind the batch; w->cap leaves room for one whole record (and a
	 * prefix) while the batch is under AUDIT_BATCH_MAX. */
	char *at = w->buf + w->blen;
	size_t off = 0;
	if (prefix) {
		off = strlen(prefix);
		memcpy(at, prefix, off);
	}
	long n = audit_format_cached(&rec, at + off, w->cap - w->blen - off, &w->tcache);
	if (n < 0)
		return (int)n;
	if (w->bcount == 0) {
		w->bseq = w->next_seq;
		memcpy(w->bprev, w->prev, AUDIT_HASH_LEN);
	}
	crypto_generichash(w->prev, AUDIT_HASH_LEN, (const unsigned char *)at + off, (size_t)n,
			   NULL, 0);
	w->next_seq++;
	w->blen += off + (size_t)n;
	w->bcount++;
	return 0;
}

int audit_writer_flush(struct audit_writer *w)
{
	if (w->bcount == 0)
		return 0;
	int r = writer_put(w, w->buf, w->blen);
	if (r < 0) {
		/* Nothing of the batch stays in the file: its records are
		 * lost and the chain resumes from the last one on disk. */
		w->lost += w->bgap_lost + w->bcount - (w->bgap ? 1 : 0);
		w->next_seq = w->bseq;
		memcpy(w->prev, w->bprev, AUDIT_HASH_LEN);
	}
	w->blen = 0;
	w->bcount = 0;
	w->bgap_lost = 0;
	w->bgap = false;
	return r;
}

/* Format rec into the batch, behind an audit-gap record when records were
 * lost; flush when sync or when the batch is full. */
static int writer_add(struct audit_writer *w, const struct audit_record *rec, bool sync)
{
	int r;
	if (w->dirty) {
		if (!w->regular || ftruncate(w->fd, w->good) < 0) {
			w->lost++;
			return w->regular ? -errno : -EIO;
		}
		w->dirty = false;
	}
	if (w->lost) {
		struct audit_record gap = {
			.event = AUDIT_EV_GAP,
			.has_lost = true,
			.lost = w->lost,
			.reason = "records could not be written",
		};
		r = writer_emit(w, &gap, NULL);
		if (r < 0) {
			w->lost++;
			return r;
		}
		/* The batch now carries the count; a failed flush gives it
		 * back. */
		w->bgap_lost = w->lost;
		w->bgap = true;
		w->lost = 0;
		sync = true;
	}
	r = writer_emit(w, rec, NULL);
	if (r < 0 && r != -EINVAL && r != -E2BIG) {
		w->lost++;
		return r;
	}
	if (r == 0 && (sync || w->blen >= AUDIT_BATCH_MAX))
		return audit_writer_flush(w);
	return r;
}

int audit_writer_append(struct audit_writer *w, const struct audit_record *rec)
{
	int r = writer_add(w, rec, true);
	/* A record the schema refuses is not written, but what was deferred
	 * before it still is: append returns with everything on disk. */
	if (r == -EINVAL || r == -E2BIG)
		(void)audit_writer_flush(w);
	return r;
}

int audit_writer_defer(struct audit_writer *w, const struct audit_record *rec)
{
	/* After a failed write every record is written at once again, so
	 * that callers failing closed learn of the failure on the record
	 * that failed. */
	if (w->dirty || w->lost)
		return audit_writer_append(w, rec);
	return writer_add(w, rec, false);
}

static ssize_t pread_all(int fd, char *buf, size_t n, off_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, buf + got, n - got, off + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* Continue the chain of an existing log: find its last complete line and
 * any torn tail after it, reading at most two lines' worth from the end. */
static int writer_resume(struct audit_writer *w, int rfd, off_t size)
{
	struct audit_scratch sc = {0};
	size_t win = 2 * ((size_t)AUDIT_LINE_MAX + 1);
	if ((off_t)win > size)
		win = (size_t)size;
	char *tail = malloc(win);
	int r = -ENOMEM;
	if (!tail || (r = audit_scratch_init(&sc, AUDIT_LINE_MAX)) < 0)
		goto out;
	ssize_t got = pread_all(rfd, tail, win, size - (off_t)win);
	if (got < 0) {
		r = (int)got;
		goto out;
	}
	if ((size_t)got != win) {
		r = -EIO; /* the file shrank under us */
		goto out;
	}
	size_t end = win; /* one past the last newline, within tail */
	while (end > 0 && tail[end - 1] != '\n')
		end--;
	size_t torn = win - end;
	r = -EBADMSG;
	if (torn > AUDIT_LINE_MAX || (end == 0 && (off_t)win != size))
		goto out;
	if (end > 0) {
		size_t start = end - 1;
		while (start > 0 && tail[start - 1] != '\n')
			start--;
		if (start == 0 && (off_t)win != size)
			goto out; /* the last line is longer than any record */
		struct audit_record last;
		struct audit_parse_error perr;
		if (audit_parse_line(tail + start, end - 1 - start, &sc, &last, &perr) < 0 ||
		    last.seq == UINT64_MAX) {
			r = -EBADMSG;
			goto out;
		}
		w->next_seq = last.seq + 1;
		crypto_generichash(w->prev, AUDIT_HASH_LEN, (const unsigned char *)tail + start,
				   end - start, NULL, 0);
	} else {
		/* Nothing but a torn first line: the log starts after it. */
		randombytes_buf(w->log_id, AUDIT_LOG_ID_LEN);
		audit_genesis(w->log_id, w->prev);
		w->next_seq = 1;
	}
	w->good = size;
	r = 0;
	if (torn) {
		/* A record complete but for its newline (the crash hit between
		 * the two) is adopted: it is the next record of the chain. */
		struct audit_record rec;
		struct audit_parse_error perr;
		if (audit_parse_line(tail + end, torn, &sc, &rec, &perr) == 0 &&
		    rec.seq == w->next_seq &&
		    sodium_memcmp(rec.prev, w->prev, AUDIT_HASH_LEN) == 0 &&
		    rec.seq != UINT64_MAX) {
			if ((r = writer_put(w, "\n", 1)) < 0)
				goto out;
			crypto_generichash_state st;
			crypto_generichash_init(&st, NULL, 0, AUDIT_HASH_LEN);
			crypto_generichash_update(&st, (const unsigned char *)tail + end, torn);
			crypto_generichash_update(&st, (const unsigned char *)"\n", 1);
			crypto_generichash_final(&st, w->prev, AUDIT_HASH_LEN);
			w->next_seq++;
			goto out;
		}
		/* Keep the torn bytes as evidence: end them with a newline
		 * and say, in the same write, which line they were. */
		struct audit_record gap = {
			.event = AUDIT_EV_GAP,
			.has_torn = true,
			.torn_len = torn,
			.reason = "torn record closed after a crash",
		};
		crypto_generichash(gap.torn_hash, AUDIT_HASH_LEN, (const unsigned char *)tail + end,
				   torn, NULL, 0);
		if ((r = writer_emit(w, &gap, "\n")) < 0 || (r = audit_writer_flush(w)) < 0)
			goto out;
		w->torn = torn;
	}
out:
	audit_scratch_fini(&sc);
	free(tail);
	return r;
}

static int writer_new(int fd, int rfd, struct audit_writer **ret_w)
{
	struct audit_writer *w = calloc(1, sizeof(*w));
	struct stat st;
	int r = -ENOMEM;
	if (!w)
		goto out;
	w->fd = fd;
	fd = -1;
	w->tcache.sec = -1;
	/* The batch, then room for one whole record and a newline ending a
	 * torn line. */
	w->cap = AUDIT_BATCH_MAX + AUDIT_LINE_MAX + 2;
	if (!(w->buf = malloc(w->cap)))
		goto out;
	if (fstat(w->fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	w->regular = S_ISREG(st.st_mode);
	if (w->regular && flock(w->fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto out;
	}
	if (w->regular && st.st_size > 0) {
		if ((r = writer_resume(w, rfd, st.st_size)) < 0)
			goto out;
	} else {
		randombytes_buf(w->log_id, AUDIT_LOG_ID_LEN);
		audit_genesis(w->log_id, w->prev);
		w->next_seq = 1;
		w->good = w->regular ? st.st_size : 0;
	}
	*ret_w = w;
	w = NULL;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	audit_writer_free(w);
	return r;
}

int audit_writer_open_fd(int fd, struct audit_writer **ret_w)
{
	if (sodium_init() < 0) {
		close(fd);
		return -EIO;
	}
	return writer_new(fd, fd, ret_w);
}

int audit_writer_open(const char *path, struct audit_writer **ret_w)
{
	if (sodium_init() < 0)
		return -EIO;
	/* Append-only for writing; a second, read-only descriptor reads the
	 * tail, and must be the same file (no swap between the two opens). */
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	int rfd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (rfd < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	struct stat a, b;
	int r;
	if (fstat(fd, &a) < 0 || fstat(rfd, &b) < 0) {
		r = -errno;
		close(fd);
	} else if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		r = -ESTALE;
		close(fd);
	} else {
		r = writer_new(fd, rfd, ret_w);
	}
	close(rfd);
	return r;
}

int audit_writer_rotate(struct audit_writer *w, const char *path)
{
	/* A new, empty file: the chain and sequence go on in it, so the
	 * verifier given the files in order sees one log. */
	/* Deferred records belong to the old file; if they cannot be
	 * written they are lost and reported in the new one. */
	(void)audit_writer_flush(w);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	close(w->fd);
	w->fd = fd;
	w->regular = true;
	w->dirty = false;
	w->good = 0;
	return 0;
}
