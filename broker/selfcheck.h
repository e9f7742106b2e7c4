/* SPDX-License-Identifier: MIT */
/*
 * selfcheck: a process's open fd count and memory, read from /proc, so
 * tests (and the broker's own diagnostics) can assert that a run returned
 * to its baseline: every fd received from a dropped layer closed, every
 * buffer freed.
 */
#ifndef CONDUIT_BROKER_SELFCHECK_H
#define CONDUIT_BROKER_SELFCHECK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct selfcheck {
	size_t fds;	 /* open fds, not counting the one used to count */
	uint64_t rss_kb; /* VmRSS */
	uint64_t hwm_kb; /* VmHWM, peak RSS */
};

/* Snapshot pid (0 = this process).  Errors: -errno from /proc, -EIO when
 * /proc/PID/status lacks the fields (kernel thread, exited). */
int selfcheck_read(pid_t pid, struct selfcheck *ret_check);

/* Open fds of pid (0 = this process).  Errors: -errno. */
int selfcheck_fd_count(pid_t pid, size_t *ret_count);

/* Whether fd number fd is open in pid (0 = this process): 1, 0, or -errno. */
int selfcheck_fd_open(pid_t pid, int fd);

#endif
