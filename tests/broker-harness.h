/* SPDX-License-Identifier: MIT */
/*
 * broker-harness: run a real conduit-broker for an integration test, with a
 * policy written at test time, its stderr in a file the test waits on, and
 * its audit log read back with audit/'s verifier.  Every wait is bounded;
 * a broker still running at the end is killed.
 */
#ifndef CONDUIT_TESTS_BROKER_HARNESS_H
#define CONDUIT_TESTS_BROKER_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit.h"

#define BK_RECORDS_MAX 2048

struct bk_record {
	enum audit_event event;
	char layer[64];
	char method[64];
	char klass[64];
	char rule[64];
	char signal[16];
	char reason[160];
	enum audit_verdict verdict;
	bool has_code;
	int64_t code;
	unsigned line;
	size_t nargs;
};

struct bk {
	char dir[64];
	char policy[128];
	char audit[192];
	char log[128];
	pid_t pid;
	int pidfd;
	int status;	     /* wait status once reaped, -1 before */
	int heartbeat_ms;    /* --heartbeat for the broker; 0: 10000 */
	int call_timeout_ms; /* --call-timeout; 0: 5000 */
	struct bk_record rec[BK_RECORDS_MAX];
	size_t nrec;
	struct audit_verify_result verify;
};

/* Paths from the command line: the broker and the layer program. */
extern const char *bk_broker_path;
extern const char *bk_layer_path;

/* For a test's main(): argv[1..n] made absolute into ret[0..n-1] (a policy
 * wants absolute paths, meson passes build-relative ones), and SIGPIPE
 * ignored (a broker killed by a failing test must not take the test down
 * with it).  0, or 2 after printing "usage: PROG USAGE" or the error. */
int bk_main_paths(int argc, char **argv, int n, const char *usage, char **ret);

/* New temporary directory (0755: layers under dynamic uids read files in
 * it); writes nothing else. */
void bk_init(struct bk *bk);
/* Write the policy (mode 0644, via rename so a reload sees it whole).
 * "@LAYER@" and "@DIR@" in text are replaced by the layer program's path
 * and the test directory. */
void bk_write_policy(struct bk *bk, const char *text);
void bk_write_file(struct bk *bk, const char *name, const char *text);
/* Start the broker on bk->policy with its audit log in the directory. */
void bk_start(struct bk *bk);
/* Occurrences of needle in the broker's stderr so far. */
size_t bk_log_count(struct bk *bk, const char *needle);
/* Copy what follows the first needle in the broker's stderr, up to the end
 * of its line, into out; false when needle is not there. */
bool bk_log_after(struct bk *bk, const char *needle, char *out, size_t cap);
/* Wait (bounded) until needle occurs at least n times; false on timeout. */
bool bk_wait_log(struct bk *bk, const char *needle, size_t n, int timeout_ms);
/* Send sig to the broker. */
void bk_signal(struct bk *bk, int sig);
/* SIGTERM, wait (bounded; SIGKILL when over) and return the wait status. */
int bk_stop(struct bk *bk);
/* Verify the audit log and load its records (require a final stop record
 * when closed). */
void bk_read_audit(struct bk *bk, bool closed);
/* bk_stop() must exit 0; then read the audit log back, which must start
 * with one start record and end with one stop record. */
void bk_stop_clean(struct bk *bk);
/* A layer the broker stopped: FIN and SIGTERM race, so its first exit
 * record has code 0 or names SIGTERM. */
void bk_expect_stopped(const struct bk *bk, const char *layer);
/* Records matching every non-NULL / non-zero field of the filter. */
size_t bk_count(const struct bk *bk, enum audit_event ev, const char *layer, const char *method,
		const char *klass);
const struct bk_record *bk_find(const struct bk *bk, enum audit_event ev, const char *layer,
				const char *method, size_t nth);
/* Open fds of the broker process. */
size_t bk_fd_count(struct bk *bk);
/* Remove the directory and anything left in it; with
 * CONDUIT_TEST_KEEP_AUDIT=DIR in the environment, copy the audit log and
 * the policy to DIR first. */
void bk_cleanup(struct bk *bk);

#endif
