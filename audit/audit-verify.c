/* SPDX-License-Identifier: MIT */
/*
 * Audit log reader and verifier.  Streams each file through one buffer of
 * a line's size plus a read chunk, so memory does not depend on the log's
 * length, and checks the sequence and hash chain record by record.  The
 * first bad record ends verification; it is classified so that a crash
 * (torn tail) reads differently from an edit, a drop, a duplicate, a
 * reordering or a splice.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "audit-internal.h"

#define READ_CHUNK (64u * 1024)

enum line_kind { L_EOF, L_LINE, L_TOO_LONG, L_TORN };

struct lines {
	int fd;
	char *buf;
	size_t cap, start, end, line_max;
	bool eof;
	uint64_t lineno;
	/* Set while reading the last file for audit_verify_opts.on_eof. */
	int (*on_eof)(void *userdata);
	void *userdata;
};

/* Next line (without its newline) in *ret / *ret_len; the byte after it is
 * the newline.  Negative errno on a read error. */
static int lines_next(struct lines *ls, const char **ret, size_t *ret_len)
{
	for (;;) {
		char *nl = memchr(ls->buf + ls->start, '\n', ls->end - ls->start);
		if (nl) {
			size_t len = (size_t)(nl - (ls->buf + ls->start));
			*ret = ls->buf + ls->start;
			*ret_len = len;
			ls->start += len + 1;
			ls->lineno++;
			return len > ls->line_max ? L_TOO_LONG : L_LINE;
		}
		if (ls->end - ls->start > ls->line_max) {
			ls->lineno++;
			return L_TOO_LONG;
		}
		if (ls->eof) {
			if (ls->end == ls->start)
				return L_EOF;
			ls->lineno++;
			*ret = ls->buf + ls->start;
			*ret_len = ls->end - ls->start;
			ls->start = ls->end;
			return L_TORN;
		}
		memmove(ls->buf, ls->buf + ls->start, ls->end - ls->start);
		ls->end -= ls->start;
		ls->start = 0;
		ssize_t n = read(ls->fd, ls->buf + ls->end, ls->cap - ls->end);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0 && ls->on_eof) {
			int w = ls->on_eof(ls->userdata);
			if (w < 0)
				return w;
			if (w > 0)
				continue;
		}
		if (n == 0)
			ls->eof = true;
		ls->end += (size_t)n;
	}
}

struct verifier {
	const struct audit_verify_opts *opts;
	struct audit_verify_result *res;
	struct audit_scratch sc;
	struct lines ls;
	size_t file;
	bool done; /* first problem found */
	bool have;
	uint64_t seq;
	uint8_t log_id[AUDIT_LOG_ID_LEN];
	uint8_t hash[AUDIT_HASH_LEN]; /* of the last verified line, newline included */
	uint64_t line;
	size_t line_file;
	bool last_stop;
	/* An unparseable line is held back: it is a torn line if an
	 * audit-gap record naming it follows. */
	bool pending;
	enum audit_status p_status;
	uint64_t p_line;
	uint32_t p_col;
	char p_reason[96];
	uint64_t p_len;
	uint8_t p_hash[AUDIT_HASH_LEN];
};

__attribute__((format(printf, 5, 6))) static void
report(struct verifier *v, enum audit_status s, uint64_t line, uint32_t col, const char *fmt, ...)
{
	if (v->done)
		return;
	v->done = true;
	v->res->status = s;
	v->res->file = v->file;
	v->res->line = line;
	v->res->col = col;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->res->reason, sizeof(v->res->reason), fmt, ap);
	va_end(ap);
}

static void report_pending(struct verifier *v)
{
	if (v->pending)
		report(v, v->p_status, v->p_line, v->p_col, "%s", v->p_reason);
}

/* What the rest of this file holds: whether sequence number want comes
 * later (a reordering, not a drop) and whether seen comes again (a
 * duplicate).  Consumes the rest of the file: only on the error path. */
static void seq_later(struct verifier *v, uint64_t want, uint64_t seen, bool *ret_want,
		      bool *ret_seen)
{
	const char *line;
	size_t len;
	int k;
	*ret_want = *ret_seen = false;
	/* The verdict stands on what is there now: never wait on this path. */
	v->ls.on_eof = NULL;
	while ((k = lines_next(&v->ls, &line, &len)) != L_EOF && k >= 0) {
		/* The error is already found; only its kind is at stake, so
		 * the leading sequence number is enough. */
		static const char pre[] = "{\"seq\":";
		uint64_t seq = 0;
		size_t i = sizeof(pre) - 1;
		if (k == L_LINE && len > i && memcmp(line, pre, i) == 0) {
			while (i < len && line[i] >= '0' && line[i] <= '9' && seq < UINT64_MAX / 10)
				seq = seq * 10 + (uint64_t)(line[i++] - '0');
			if (i < len && line[i] == ',') {
				*ret_want |= seq == want;
				*ret_seen |= seq == seen;
			}
		}
		if (k != L_LINE)
			break; /* an over-long line is not skipped: it has no end */
	}
}

static int verify_record(struct verifier *v, const struct audit_record *rec, const char *line,
			 size_t len, bool closes_torn)
{
	uint64_t ln = v->ls.lineno;
	if (rec->has_torn && !closes_torn) {
		report(v, AUDIT_EDITED, ln, 0, "audit-gap names a torn line that is not there");
		return 0;
	}
	bool want, seen;
	if (!v->have) {
		uint8_t g[AUDIT_HASH_LEN];
		if (!rec->has_log_id) {
			seq_later(v, 1, rec->seq, &want, &seen);
			if (seen)
				report(v, AUDIT_DUPLICATED, ln, 0,
				       "record %llu appears here and again later",
				       (unsigned long long)rec->seq);
			else if (want)
				report(v, AUDIT_REORDERED, ln, 0,
				       "record %llu is where the log's first record belongs",
				       (unsigned long long)rec->seq);
			else
				report(v, AUDIT_SPLICED, ln, 0,
				       "the log does not begin with its first record (seq %llu)",
				       (unsigned long long)rec->seq);
			return 0;
		}
		audit_genesis(rec->log_id, g);
		if (sodium_memcmp(g, rec->prev, AUDIT_HASH_LEN) != 0) {
			report(v, AUDIT_EDITED, ln, 0,
			       "first record's prev does not match its log id");
			return 0;
		}
		memcpy(v->log_id, rec->log_id, AUDIT_LOG_ID_LEN);
	} else if (rec->has_log_id && memcmp(rec->log_id, v->log_id, AUDIT_LOG_ID_LEN) != 0) {
		report(v, AUDIT_SPLICED, ln, 0, "another log begins here");
		return 0;
	} else {
		uint64_t exp = v->seq + 1;
		bool prev_ok = sodium_memcmp(rec->prev, v->hash, AUDIT_HASH_LEN) == 0;
		if (rec->seq == exp && !prev_ok) {
			v->file = v->line_file; /* the record named may end the previous file */
			report(v, AUDIT_EDITED, v->line, 0,
			       "record %llu (line %llu) does not hash to the next record's prev",
			       (unsigned long long)v->seq, (unsigned long long)v->line);
			return 0;
		}
		if (rec->seq != exp && prev_ok) {
			/* In its place in the chain: only the number changed. */
			report(v, AUDIT_EDITED, ln, 0, "sequence number edited (%llu, not %llu)",
			       (unsigned long long)rec->seq, (unsigned long long)exp);
			return 0;
		}
		if (rec->seq < exp) {
			report(v, AUDIT_DUPLICATED, ln, 0, "sequence number %llu seen again",
			       (unsigned long long)rec->seq);
			return 0;
		}
		if (rec->seq > exp) {
			seq_later(v, exp, rec->seq, &want, &seen);
			if (seen)
				report(v, AUDIT_DUPLICATED, ln, 0,
				       "record %llu appears here and again later",
				       (unsigned long long)rec->seq);
			else if (want)
				report(v, AUDIT_REORDERED, ln, 0,
				       "record %llu comes before record %llu",
				       (unsigned long long)rec->seq, (unsigned long long)exp);
			else
				report(v, AUDIT_MISSING, ln, 0, "records %llu to %llu are missing",
				       (unsigned long long)exp, (unsigned long long)rec->seq - 1);
			return 0;
		}
	}
	v->have = true;
	v->seq = rec->seq;
	crypto_generichash(v->hash, AUDIT_HASH_LEN, (const unsigned char *)line, len + 1, NULL, 0);
	v->line = ln;
	v->line_file = v->file;
	v->last_stop = rec->event == AUDIT_EV_STOP;
	v->res->records++;
	if (rec->has_lost)
		v->res->lost += rec->lost;
	if (closes_torn)
		v->res->torn_closed++;
	if (v->opts->on_record)
		return v->opts->on_record(rec, v->file, ln, v->opts->userdata);
	return 0;
}

static int verify_line(struct verifier *v, const char *line, size_t len)
{
	struct audit_record rec;
	struct audit_parse_error perr;
	int r = audit_parse_line(line, len, &v->sc, &rec, &perr);
	bool closes_torn = false;
	if (v->pending) {
		if (r == 0 && rec.has_torn && rec.torn_len == v->p_len &&
		    sodium_memcmp(rec.torn_hash, v->p_hash, AUDIT_HASH_LEN) == 0) {
			v->pending = false;
			closes_torn = true;
		} else {
			report_pending(v);
			return 0;
		}
	}
	if (r < 0) {
		if (perr.edited) {
			report(v, AUDIT_EDITED, v->ls.lineno, perr.col, "%s", perr.reason);
			return 0;
		}
		v->pending = true;
		v->p_status = AUDIT_SYNTAX;
		v->p_line = v->ls.lineno;
		v->p_col = perr.col;
		snprintf(v->p_reason, sizeof(v->p_reason), "%s", perr.reason);
		v->p_len = len;
		crypto_generichash(v->p_hash, AUDIT_HASH_LEN, (const unsigned char *)line, len,
				   NULL, 0);
		return 0;
	}
	return verify_record(v, &rec, line, len, closes_torn);
}

static int verify_fd(struct verifier *v, int fd)
{
	v->ls.fd = fd;
	v->ls.start = v->ls.end = 0;
	v->ls.eof = false;
	v->ls.lineno = 0;
	while (!v->done) {
		const char *line = NULL;
		size_t len = 0;
		int k = lines_next(&v->ls, &line, &len);
		if (k < 0)
			return k;
		if (k == L_EOF)
			break;
		if (k == L_TOO_LONG) {
			report_pending(v);
			report(v, AUDIT_TOO_LONG, v->ls.lineno, 0, "line longer than %zu bytes",
			       v->ls.line_max);
			break;
		}
		if (k == L_TORN) {
			report_pending(v);
			report(v, AUDIT_TORN, v->ls.lineno, 0,
			       "unterminated last line of %zu bytes: a crash while writing, or a "
			       "cut",
			       len);
			break;
		}
		int r = verify_line(v, line, len);
		if (r < 0)
			return r;
	}
	/* A held-back line with no audit-gap after it in its file is bad. */
	report_pending(v);
	return 0;
}

static int verify_run(const int *fds, const char *const *paths, size_t n,
		      const struct audit_verify_opts *opts, struct audit_verify_result *ret)
{
	static const struct audit_verify_opts none = {0};
	struct audit_verify_result res = {0};
	struct verifier v = {.opts = opts ? opts : &none, .res = &res};
	size_t line_max = v.opts->line_max ? v.opts->line_max : AUDIT_LINE_MAX;
	int r = -EINVAL;
	if (line_max > AUDIT_LINE_MAX || sodium_init() < 0)
		return -EINVAL;
	v.ls.line_max = line_max;
	v.ls.cap = line_max + 1 + READ_CHUNK;
	if (!(v.ls.buf = malloc(v.ls.cap)) || (r = audit_scratch_init(&v.sc, line_max)) < 0) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n && !v.done; i++) {
		v.file = i;
		v.ls.on_eof = i + 1 == n ? v.opts->on_eof : NULL;
		v.ls.userdata = v.opts->userdata;
		int fd = fds ? fds[i] : open(paths[i], O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			r = -errno;
			goto out;
		}
		r = verify_fd(&v, fd);
		if (!fds)
			close(fd);
		if (r < 0)
			goto out;
	}
	report_pending(&v);
	if (!v.done && res.records == 0)
		report(&v, AUDIT_EMPTY, 0, 0, "no records");
	if (!v.done && v.opts->require_closed && !v.last_stop) {
		v.file = v.line_file;
		report(&v, AUDIT_MISSING, v.line, 0,
		       "the log does not end with a stop record: records cut from its end?");
	}
	*ret = res;
	r = 0;
out:
	audit_scratch_fini(&v.sc);
	free(v.ls.buf);
	return r;
}

int audit_verify_files(const char *const *paths, size_t npaths,
		       const struct audit_verify_opts *opts, struct audit_verify_result *ret)
{
	return verify_run(NULL, paths, npaths, opts, ret);
}

int audit_verify_fds(const int *fds, size_t nfds, const struct audit_verify_opts *opts,
		     struct audit_verify_result *ret)
{
	return verify_run(fds, NULL, nfds, opts, ret);
}

const char *audit_status_name(enum audit_status s)
{
	switch (s) {
	case AUDIT_OK:
		return "ok";
	case AUDIT_EMPTY:
		return "empty";
	case AUDIT_SYNTAX:
		return "syntax";
	case AUDIT_TOO_LONG:
		return "line-too-long";
	case AUDIT_EDITED:
		return "edited";
	case AUDIT_MISSING:
		return "missing";
	case AUDIT_REORDERED:
		return "reordered";
	case AUDIT_DUPLICATED:
		return "duplicated";
	case AUDIT_SPLICED:
		return "spliced";
	case AUDIT_TORN:
		return "torn";
	}
	return "unknown";
}
