/* SPDX-License-Identifier: MIT */
/*
 * Conduit's audit log: one hash-chained JSON Lines record per event.
 * The broker writes with audit_writer_*; `conduit-policy audit` reads and
 * verifies with audit_verify_*.  docs/audit.md is the format reference.
 *
 * Internal module: never logs, never exits; 0 / count on success, negative
 * errno on failure; ret_* written only on success.
 */
#ifndef CONDUIT_AUDIT_H
#define CONDUIT_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conduit/conduit.h"

#define AUDIT_HASH_LEN	 32u	       /* BLAKE2b-256 */
#define AUDIT_LOG_ID_LEN 16u	       /* random per-log id in the first record */
#define AUDIT_VALUE_MAX	 1024u	       /* raw bytes kept per string/bytes value */
#define AUDIT_VALUES_MAX 8192u	       /* raw value bytes kept per record, all args */
#define AUDIT_TEXT_MAX	 256u	       /* layer, method, rule, reason, ... bytes */
#define AUDIT_LINE_MAX	 (128u * 1024) /* record bytes, newline excluded */

enum audit_event {
	AUDIT_EV_START = 1,
	AUDIT_EV_STOP,
	AUDIT_EV_DECISION,
	AUDIT_EV_SPAWN,
	AUDIT_EV_EXIT,
	AUDIT_EV_VIOLATION,
	AUDIT_EV_RELOAD,
	AUDIT_EV_RELOAD_REJECTED,
	AUDIT_EV_ALARM,
	AUDIT_EV_GAP,
};

enum audit_verdict {
	AUDIT_VERDICT_NONE = 0, /* field absent (every event but decision) */
	AUDIT_VERDICT_ALLOW,
	AUDIT_VERDICT_DENY,
	AUDIT_VERDICT_RATE_LIMITED,
	AUDIT_VERDICT_COMPLAIN, /* denied by policy, let through in complain mode */
};

/* One recorded argument.  arg is what the policy matcher sees; for a capped
 * value arg.v.str / arg.v.bytes hold the kept prefix only.  When read back,
 * every pointer points into the reader and lives until its next record. */
struct audit_arg {
	struct cdt_arg arg;
	bool not_utf8;	/* a string that was not valid UTF-8: kept as bytes */
	bool truncated; /* value capped: orig_len and hash describe the full one */
	/* A bulk bytes value (docs/audit.md section 3): the broker never
	 * reads it, so the record holds its length (arg.v.bytes.len, with a
	 * NULL pointer) and no data, no hash. */
	bool bulk;
	uint64_t orig_len;
	uint8_t hash[AUDIT_HASH_LEN];
};

/* A record.  Text fields are NUL-terminated UTF-8 (no NUL inside, at most
 * AUDIT_TEXT_MAX bytes) or NULL when absent; has_* say whether a number is
 * present.  seq, time_us, prev, log_id and seal are the chain's business:
 * the writer fills them (time_us only when 0). */
struct audit_record {
	uint64_t seq;
	int64_t time_us; /* UTC, microseconds since the epoch */
	enum audit_event event;
	bool has_log_id; /* the first record of a log only */
	uint8_t log_id[AUDIT_LOG_ID_LEN];
	const char *layer;
	bool has_pid;
	int64_t pid;
	const char *method;
	/* Writer input: the decoded call's arguments, converted and capped by
	 * the writer.  Used when non-NULL, else args/nargs are written as is. */
	const struct cdt_arg *call_args;
	size_t ncall_args;
	bool has_args; /* decision records always carry args, maybe [] */
	const struct audit_arg *args;
	size_t nargs;
	enum audit_verdict verdict;
	/* decision: the broker's CLOCK_MONOTONIC time, in ns, that it gave the
	 * matcher, so that a replay refills token buckets exactly as it did.
	 * Absent in logs of writers before it (docs/audit.md section 2). */
	bool has_mono;
	uint64_t mono_ns;
	const char *rule;
	const char *policy;   /* policy file */
	uint32_t policy_line; /* 0: absent; needs policy */
	const char *klass;    /* violation or alarm class */
	bool has_code;	      /* exit: code or signal, exactly one */
	int64_t code;
	const char *signal; /* e.g. "SIGSYS" */
	bool has_lost;	    /* audit-gap: records that could not be written */
	uint64_t lost;
	bool has_torn; /* audit-gap: the torn line it closes */
	uint64_t torn_len;
	uint8_t torn_hash[AUDIT_HASH_LEN];
	const char *reason;
	uint8_t prev[AUDIT_HASH_LEN];
};

const char *audit_event_name(enum audit_event ev);
const char *audit_verdict_name(enum audit_verdict v);

/* Convert a decoded call argument: caps strings/bytes at AUDIT_VALUE_MAX
 * (and at *budget remaining raw bytes for the record), marks invalid UTF-8.
 * out points into in's data.  -EINVAL for a bad name or type. */
int audit_arg_from_cdt(const struct cdt_arg *in, size_t *budget, struct audit_arg *ret_out);

/* The genesis value: what the first record's prev must be for log_id. */
void audit_genesis(const uint8_t log_id[AUDIT_LOG_ID_LEN], uint8_t ret_prev[AUDIT_HASH_LEN]);

/* Serialize rec (seq, time, prev and log id included) into buf, newline
 * included.  Returns the length, -EINVAL for a record breaking the schema
 * rules, -E2BIG past cap. */
long audit_format(const struct audit_record *rec, char *buf, size_t cap);

/* A parse or check failure, with the column (1-based) where it was found. */
struct audit_parse_error {
	uint32_t col;
	bool edited; /* parses, but a stop record's seal does not match */
	char reason[96];
};

/* Scratch for decoded strings, args and the canonical re-serialization;
 * a reader owns one, sized for its line limit. */
struct audit_scratch {
	char *buf;
	size_t cap;
	size_t used;
	char *canon;
	size_t canon_cap;
	struct audit_arg args[CDT_ARGS_MAX];
};

/* Allocate for lines up to line_max bytes.  -ENOMEM. */
int audit_scratch_init(struct audit_scratch *sc, size_t line_max);
void audit_scratch_fini(struct audit_scratch *sc);

/* Parse exactly one line (no newline) strictly: only the writer's exact
 * output is accepted.  ret_rec's pointers point into scratch.  0, or
 * -EBADMSG with *err filled. */
int audit_parse_line(const char *line, size_t len, struct audit_scratch *scratch,
		     struct audit_record *ret_rec, struct audit_parse_error *err);

/* ---- Writer ---- */

struct audit_writer;

/* Deferred records are written once this many bytes wait (a few dozen
 * decision records). */
#define AUDIT_BATCH_MAX 16384

/* Open (creating 0600, never following a symlink) and continue the log at
 * path.  A torn last line (crash mid-write) is closed with a newline and an
 * audit-gap record naming its length and hash; audit_writer_torn() tells.
 * Errors: -errno, -EBADMSG when the last complete line is not a record or
 * the tail is longer than a record, -EBUSY when another writer holds it,
 * -ESTALE when the path was swapped between the two opens. */
int audit_writer_open(const char *path, struct audit_writer **ret_w);
/* Same over an fd opened with O_APPEND (and readable when the file is not
 * empty: its tail is read).  Takes ownership of fd, also on error. */
int audit_writer_open_fd(int fd, struct audit_writer **ret_w);
void audit_writer_free(struct audit_writer *w);

/* Append one record as one write(2).  On failure (ENOSPC, EIO, short
 * write) the file is cut back to its last complete record, no sequence
 * number is consumed, the record counts as lost, and the negative errno is
 * returned; the next successful append is preceded by an audit-gap record
 * with the count.  -EINVAL for a record breaking the schema (not lost). */
int audit_writer_append(struct audit_writer *w, const struct audit_record *rec);
/* Format and chain one record but write it later: with the next
 * audit_writer_append() or audit_writer_flush() (in the same write(2) as
 * the records around it), or at once when AUDIT_BATCH_MAX bytes are
 * waiting.  0 when deferred (nothing is on disk yet), else as
 * audit_writer_append().  After a failed write (records lost, not yet
 * reported) it writes at once, so the caller sees the failure. */
int audit_writer_defer(struct audit_writer *w, const struct audit_record *rec);
/* Write the deferred records as one write(2).  On failure all of them are
 * lost (counted, reported by the next audit-gap record) and the chain
 * resumes from the last record on disk.  0 or -errno. */
int audit_writer_flush(struct audit_writer *w);
/* Records deferred and not yet written. */
size_t audit_writer_pending(const struct audit_writer *w);
/* Continue the log in a new file at path (created 0600, must not exist):
 * sequence and chain go on, so the files verified in order are one log.
 * A record lost before the switch is reported in the new file.  -errno. */
int audit_writer_rotate(struct audit_writer *w, const char *path);
/* Length of the torn tail closed at open (0: none). */
uint64_t audit_writer_torn(const struct audit_writer *w);
/* Records lost since the last successful append. */
uint64_t audit_writer_lost(const struct audit_writer *w);
uint64_t audit_writer_next_seq(const struct audit_writer *w);

/* ---- Reader and verifier ---- */

enum audit_status {
	AUDIT_OK = 0,
	AUDIT_EMPTY,	  /* no record at all */
	AUDIT_SYNTAX,	  /* a line that is not a record */
	AUDIT_TOO_LONG,	  /* a line over the line limit */
	AUDIT_EDITED,	  /* hash mismatch: a record was changed */
	AUDIT_MISSING,	  /* sequence gap, or a closed log without its stop record */
	AUDIT_REORDERED,  /* a record appears before its turn */
	AUDIT_DUPLICATED, /* a sequence number seen again */
	AUDIT_SPLICED,	  /* the log does not start at its genesis, or two logs joined */
	AUDIT_TORN,	  /* the last line is unterminated: crash while writing */
};

const char *audit_status_name(enum audit_status s);

struct audit_verify_opts {
	size_t line_max;     /* 0: AUDIT_LINE_MAX */
	bool require_closed; /* the log must end with a stop record */
	/* Called for each verified record, with where it is (file index into
	 * the paths given, 1-based line) for the checker's diagnostics; a
	 * negative return stops verification and is returned. */
	int (*on_record)(const struct audit_record *rec, size_t file, uint64_t line,
			 void *userdata);
	void *userdata;
	/* Following a live log: called when the last file has no more data
	 * (a partial last line waits too).  Return > 0 after waiting to read
	 * again, 0 to end the run there, negative to stop with that error.
	 * NULL: the end of the file is the end of the log. */
	int (*on_eof)(void *userdata);
};

struct audit_verify_result {
	enum audit_status status;
	size_t file;   /* index into the paths given */
	uint64_t line; /* 1-based line of the first bad record */
	uint32_t col;  /* 1-based, for SYNTAX; else 0 */
	char reason[160];
	uint64_t records;     /* verified records */
	uint64_t torn_closed; /* torn lines closed by an audit-gap record */
	uint64_t lost;	      /* sum of lost counts in audit-gap records */
};

/* Verify the logs at paths, in order (rotation: one chain across files), in
 * constant memory.  Returns 0 with *ret filled whatever the status, or a
 * negative errno for a local fault (open, read, ENOMEM) or a callback's. */
int audit_verify_files(const char *const *paths, size_t npaths,
		       const struct audit_verify_opts *opts, struct audit_verify_result *ret);
/* Same over already-open fds (not closed). */
int audit_verify_fds(const int *fds, size_t nfds, const struct audit_verify_opts *opts,
		     struct audit_verify_result *ret);

#endif
