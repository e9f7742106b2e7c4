/* SPDX-License-Identifier: MIT */
/*
 * Audit writer: continuing a log, torn tails after a crash, disk full on a
 * small tmpfs and on /dev/full (the file stays well-formed, no sequence
 * number is used, the next append after recovery writes an audit-gap
 * record), file safety (0600, no symlinks, one writer), rotation.
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
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "audit.h"

static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/audit-writer.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", tmpdir, name);
}

static const struct cdt_arg call_args[] = {
	{.name = "tag", .type = CDT_TYPE_STRING, .v.str = {"plant.dosing.naoh_sp", 20}},
	{.name = "value", .type = CDT_TYPE_DOUBLE, .v.d = 11100.0},
};

static const struct audit_record decision = {
	.event = AUDIT_EV_DECISION,
	.layer = "ui",
	.has_pid = true,
	.pid = 321,
	.method = "tag.write",
	.call_args = call_args,
	.ncall_args = 2,
	.verdict = AUDIT_VERDICT_DENY,
	.rule = "ui#2",
	.policy = "plant.policy",
	.policy_line = 22,
};

struct tally {
	uint64_t records, gaps, lost, last_seq;
	uint64_t torn_len;
};

static int on_tally(const struct audit_record *rec, size_t file, uint64_t line, void *ud)
{
	(void)file;
	(void)line;
	struct tally *t = ud;
	t->records++;
	t->last_seq = rec->seq;
	if (rec->event == AUDIT_EV_GAP) {
		t->gaps++;
		t->lost += rec->lost;
		if (rec->has_torn)
			t->torn_len = rec->torn_len;
	}
	return 0;
}

static enum audit_status verify(const char *path, bool closed, struct tally *t,
				struct audit_verify_result *res)
{
	struct audit_verify_opts o = {
		.require_closed = closed, .on_record = on_tally, .userdata = t};
	const char *paths[] = {path};
	assert_int_equal(audit_verify_files(paths, 1, &o, res), 0);
	return res->status;
}

static void append_n(struct audit_writer *w, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(audit_writer_append(w, &decision), 0);
}

static int on_stop_at_3(const struct audit_record *rec, size_t file, uint64_t line, void *ud)
{
	(void)file;
	(void)ud;
	assert_true(rec->seq == line);
	return rec->seq == 3 ? -ECANCELED : 0;
}

static void test_continue(void **state)
{
	(void)state;
	char p[128];
	path_of(p, sizeof(p), "continue.log");
	struct audit_writer *w;
	assert_int_equal(audit_writer_open(p, &w), 0);
	struct audit_record start = {.event = AUDIT_EV_START};
	assert_int_equal(audit_writer_append(w, &start), 0);
	append_n(w, 3);
	assert_true(audit_writer_next_seq(w) == 5);
	audit_writer_free(w);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	assert_int_equal(audit_writer_open(p, &w), 0);
	assert_true(audit_writer_next_seq(w) == 5);
	assert_true(audit_writer_torn(w) == 0);
	assert_int_equal(audit_writer_append(w, &start), 0);
	append_n(w, 2);
	struct audit_record stop = {.event = AUDIT_EV_STOP};
	assert_int_equal(audit_writer_append(w, &stop), 0);
	/* A second writer on the same log is refused. */
	struct audit_writer *w2;
	assert_int_equal(audit_writer_open(p, &w2), -EBUSY);
	audit_writer_free(w);

	struct tally t = {0};
	struct audit_verify_result res;
	assert_int_equal(verify(p, true, &t, &res), AUDIT_OK);
	assert_true(t.records == 8 && t.last_seq == 8);

	/* The checker can stop the walk; its error comes back. */
	struct audit_verify_opts o = {.on_record = on_stop_at_3};
	const char *paths[] = {p};
	assert_int_equal(audit_verify_files(paths, 1, &o, &res), -ECANCELED);
}

static void test_nofollow(void **state)
{
	(void)state;
	char p[128], target[128];
	path_of(p, sizeof(p), "link.log");
	path_of(target, sizeof(target), "target.log");
	assert_int_equal(symlink(target, p), 0);
	struct audit_writer *w;
	assert_int_equal(audit_writer_open(p, &w), -ELOOP);
	assert_int_equal(access(target, F_OK), -1);
}

static void truncate_to(const char *p, off_t len)
{
	assert_int_equal(truncate(p, len), 0);
}

static off_t size_of(const char *p)
{
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	return st.st_size;
}

static void test_torn_tail(void **state)
{
	(void)state;
	char p[128];
	path_of(p, sizeof(p), "torn.log");
	struct audit_writer *w;
	assert_int_equal(audit_writer_open(p, &w), 0);
	append_n(w, 5);
	off_t full = size_of(p);
	append_n(w, 1);
	off_t six = size_of(p);
	audit_writer_free(w);

	/* Crash in the middle of record 6. */
	off_t cut = full + (six - full) / 2;
	truncate_to(p, cut);
	struct tally t = {0};
	struct audit_verify_result res;
	assert_int_equal(verify(p, false, &t, &res), AUDIT_TORN);
	assert_true(res.line == 6 && res.records == 5);

	/* The writer closes it: the torn bytes stay, named by an audit-gap. */
	assert_int_equal(audit_writer_open(p, &w), 0);
	assert_true(audit_writer_torn(w) == (uint64_t)(cut - full));
	assert_true(audit_writer_next_seq(w) == 7);
	append_n(w, 2);
	audit_writer_free(w);
	memset(&t, 0, sizeof(t));
	assert_int_equal(verify(p, false, &t, &res), AUDIT_OK);
	assert_true(res.torn_closed == 1 && t.torn_len == (uint64_t)(cut - full));
	assert_true(t.records == 8 && t.last_seq == 8);

	/* Crash right before the newline: the record is whole, adopted. */
	off_t before = size_of(p);
	assert_int_equal(audit_writer_open(p, &w), 0);
	append_n(w, 1);
	audit_writer_free(w);
	truncate_to(p, size_of(p) - 1);
	assert_int_equal(audit_writer_open(p, &w), 0);
	assert_true(audit_writer_torn(w) == 0);
	assert_true(audit_writer_next_seq(w) == 10);
	append_n(w, 1);
	audit_writer_free(w);
	memset(&t, 0, sizeof(t));
	assert_int_equal(verify(p, false, &t, &res), AUDIT_OK);
	assert_true(t.records == 10 && res.torn_closed == 1);
	assert_true(size_of(p) > before);

	/* A torn line that is not followed by its audit-gap is not excused. */
	int fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"seq\":1", 8), 8);
	assert_int_equal(write(fd, "\n", 1), 1);
	close(fd);
	assert_int_equal(verify(p, false, &t, &res), AUDIT_SYNTAX);
	assert_true(res.line == 12);

	/* A log whose only line is torn: the chain starts after it. */
	path_of(p, sizeof(p), "torn-first.log");
	assert_int_equal(audit_writer_open(p, &w), 0);
	append_n(w, 1);
	audit_writer_free(w);
	truncate_to(p, 40);
	assert_int_equal(audit_writer_open(p, &w), 0);
	assert_true(audit_writer_torn(w) == 40);
	append_n(w, 1);
	audit_writer_free(w);
	memset(&t, 0, sizeof(t));
	assert_int_equal(verify(p, false, &t, &res), AUDIT_OK);
	assert_true(t.records == 2 && res.torn_closed == 1);

	/* The last complete line is not a record: refuse to continue. */
	path_of(p, sizeof(p), "garbage.log");
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_int_equal(write(fd, "hello\n", 6), 6);
	close(fd);
	assert_int_equal(audit_writer_open(p, &w), -EBADMSG);
}

static void test_dev_full(void **state)
{
	(void)state;
	int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	struct audit_writer *w;
	assert_int_equal(audit_writer_open_fd(fd, &w), 0);
	for (int i = 1; i <= 3; i++) {
		assert_int_equal(audit_writer_append(w, &decision), -ENOSPC);
		assert_true(audit_writer_next_seq(w) == 1);
		assert_true(audit_writer_lost(w) == (uint64_t)i);
	}
	audit_writer_free(w);
}

/* A 64 KiB tmpfs at the test dir's NAME (the real ENOSPC, short writes
 * included), with chunks x 4 KiB of it taken by mnt/filler, a file to
 * delete later; the log's path, mnt/audit.log, in p. */
static void small_fs(const char *name, int chunks, char *mnt, size_t mcap, char *p, size_t pcap,
		     char *filler, size_t fcap)
{
	static char chunk[4096];

	path_of(mnt, mcap, name);
	assert_int_equal(mkdir(mnt, 0700), 0);
	if (mount("conduit-audit-test", mnt, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "size=64k,mode=0700") < 0) {
		fail_msg("mount tmpfs: %s (this test needs root)", strerror(errno));
	}
	snprintf(p, pcap, "%s/audit.log", mnt);
	snprintf(filler, fcap, "%s/filler", mnt);
	int ffd = open(filler, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(ffd >= 0);
	memset(chunk, 'f', sizeof(chunk));
	for (int i = 0; i < chunks; i++)
		assert_int_equal(write(ffd, chunk, sizeof(chunk)), (ssize_t)sizeof(chunk));
	close(ffd);
}

static void test_disk_full(void **state)
{
	(void)state;
	char mnt[128], p[160], filler[160];
	small_fs("small", 12, mnt, sizeof(mnt), p, sizeof(p), filler, sizeof(filler));

	struct audit_writer *w;
	assert_int_equal(audit_writer_open(p, &w), 0);
	struct audit_record start = {.event = AUDIT_EV_START};
	assert_int_equal(audit_writer_append(w, &start), 0);
	int ok = 1, failed = 0;
	uint64_t seq_at_fail = 0;
	for (int i = 0; i < 10000 && failed < 5; i++) {
		int r = audit_writer_append(w, &decision);
		if (r == 0) {
			assert_int_equal(failed, 0);
			ok++;
			continue;
		}
		assert_int_equal(r, -ENOSPC);
		if (!failed)
			seq_at_fail = audit_writer_next_seq(w);
		failed++;
		/* No sequence number consumed, the file ends on a record. */
		assert_true(audit_writer_next_seq(w) == seq_at_fail);
		assert_true(audit_writer_lost(w) == (uint64_t)failed);
		struct tally t = {0};
		struct audit_verify_result res;
		assert_int_equal(verify(p, false, &t, &res), AUDIT_OK);
		assert_true(t.records == (uint64_t)ok);
	}
	assert_int_equal(failed, 5);
	assert_true(ok > 10);

	/* Space comes back: the next append writes the gap, then the record. */
	assert_int_equal(unlink(filler), 0);
	assert_int_equal(audit_writer_append(w, &decision), 0);
	assert_true(audit_writer_lost(w) == 0);
	assert_true(audit_writer_next_seq(w) == seq_at_fail + 2);
	struct audit_record stop = {.event = AUDIT_EV_STOP};
	assert_int_equal(audit_writer_append(w, &stop), 0);
	audit_writer_free(w);
	struct tally t = {0};
	struct audit_verify_result res;
	assert_int_equal(verify(p, true, &t, &res), AUDIT_OK);
	assert_true(t.gaps == 1 && t.lost == 5 && res.lost == 5);
	assert_true(t.records == (uint64_t)ok + 3);
	printf("disk full: %d records fitted, 5 lost, gap record written after recovery\n", ok);
	assert_int_equal(umount2(mnt, MNT_DETACH), 0);
}

static void test_rotation(void **state)
{
	(void)state;
	char p1[128], p2[128], p3[128];
	path_of(p1, sizeof(p1), "rot.log.1");
	path_of(p2, sizeof(p2), "rot.log.2");
	path_of(p3, sizeof(p3), "other.log");
	struct audit_writer *w;
	assert_int_equal(audit_writer_open(p1, &w), 0);
	struct audit_record start = {.event = AUDIT_EV_START};
	assert_int_equal(audit_writer_append(w, &start), 0);
	append_n(w, 3);
	assert_int_equal(audit_writer_rotate(w, p1), -EEXIST);
	assert_int_equal(audit_writer_rotate(w, p2), 0);
	append_n(w, 3);
	struct audit_record stop = {.event = AUDIT_EV_STOP};
	assert_int_equal(audit_writer_append(w, &stop), 0);
	audit_writer_free(w);

	struct audit_verify_result res;
	struct audit_verify_opts o = {.require_closed = true};
	const char *both[] = {p1, p2};
	assert_int_equal(audit_verify_files(both, 2, &o, &res), 0);
	assert_int_equal(res.status, AUDIT_OK);
	assert_true(res.records == 8);
	/* An edit of the last record of the first file is found in the
	 * second, and named where it is. */
	FILE *f = fopen(p1, "r+e");
	assert_non_null(f);
	static char buf[8192];
	size_t n = fread(buf, 1, sizeof(buf), f);
	char *last = buf + n - 1;
	while (last > buf && last[-1] != '\n')
		last--;
	char *ui = strstr(last, "\"layer\":\"ui\"");
	assert_non_null(ui);
	assert_int_equal(fseek(f, (long)(ui - buf) + 9, SEEK_SET), 0);
	assert_int_equal(fputc('U', f), 'U');
	fclose(f);
	assert_int_equal(audit_verify_files(both, 2, &o, &res), 0);
	assert_int_equal(res.status, AUDIT_EDITED);
	assert_true(res.file == 0 && res.line == 4);
	f = fopen(p1, "r+e");
	assert_int_equal(fseek(f, (long)(ui - buf) + 9, SEEK_SET), 0);
	assert_int_equal(fputc('u', f), 'u');
	fclose(f);

	const char *swapped[] = {p2, p1};
	assert_int_equal(audit_verify_files(swapped, 2, &o, &res), 0);
	assert_int_equal(res.status, AUDIT_SPLICED);
	const char *second[] = {p2};
	assert_int_equal(audit_verify_files(second, 1, &o, &res), 0);
	assert_int_equal(res.status, AUDIT_SPLICED);
	const char *first[] = {p1};
	assert_int_equal(audit_verify_files(first, 1, &o, &res), 0);
	assert_int_equal(res.status, AUDIT_MISSING);

	/* Another log's tail after this one's head: spliced. */
	assert_int_equal(audit_writer_open(p3, &w), 0);
	assert_int_equal(audit_writer_append(w, &start), 0);
	append_n(w, 3);
	audit_writer_free(w);
	const char *mixed[] = {p1, p3};
	assert_int_equal(audit_verify_files(mixed, 2, NULL, &res), 0);
	assert_int_equal(res.status, AUDIT_SPLICED);
	assert_true(res.file == 1 && res.line == 1);
}

static size_t verified_records(const char *p)
{
	struct tally t = {0};
	struct audit_verify_result res;
	assert_int_equal(verify(p, false, &t, &res), AUDIT_OK);
	return (size_t)t.records;
}

/* Deferred records reach the file only with a flush, an append, or a full
 * batch, in order and chained as if appended one by one. */
static void test_defer(void **state)
{
	(void)state;
	char p[160];
	struct audit_writer *w;
	path_of(p, sizeof(p), "defer.log");
	assert_int_equal(audit_writer_open(p, &w), 0);
	struct audit_record start = {.event = AUDIT_EV_START};
	assert_int_equal(audit_writer_append(w, &start), 0);
	assert_int_equal(audit_writer_flush(w), 0); /* nothing waiting */
	for (int i = 0; i < 3; i++)
		assert_int_equal(audit_writer_defer(w, &decision), 0);
	assert_int_equal(audit_writer_pending(w), 3);
	assert_true(audit_writer_next_seq(w) == 5);
	assert_int_equal(verified_records(p), 1);
	assert_int_equal(audit_writer_flush(w), 0);
	assert_int_equal(audit_writer_pending(w), 0);
	assert_int_equal(verified_records(p), 4);

	/* An append takes the deferred records along, before its own. */
	assert_int_equal(audit_writer_defer(w, &decision), 0);
	assert_int_equal(audit_writer_append(w, &decision), 0);
	assert_int_equal(audit_writer_pending(w), 0);
	assert_int_equal(verified_records(p), 6);

	/* A full batch writes itself: it never holds much more than
	 * AUDIT_BATCH_MAX bytes. */
	size_t most = 0;
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(audit_writer_defer(w, &decision), 0);
		if (audit_writer_pending(w) > most)
			most = audit_writer_pending(w);
	}
	assert_true(most > 1 && most < 1000);
	assert_true(verified_records(p) >= 1006 - most);
	/* A schema error is not written, what waited before it is. */
	struct audit_record bad = decision;
	bad.ncall_args = CDT_ARGS_MAX + 1;
	assert_int_equal(audit_writer_append(w, &bad), -EINVAL);
	assert_int_equal(audit_writer_pending(w), 0);
	assert_int_equal(verified_records(p), 1006);
	/* Freeing the writer writes what is left. */
	assert_int_equal(audit_writer_defer(w, &decision), 0);
	struct audit_record stop = {.event = AUDIT_EV_STOP};
	assert_int_equal(audit_writer_defer(w, &stop), 0);
	audit_writer_free(w);
	struct tally t = {0};
	struct audit_verify_result res;
	assert_int_equal(verify(p, true, &t, &res), AUDIT_OK);
	assert_true(t.records == 1008 && t.gaps == 0);
}

/* A batch that cannot be written is lost whole: counted, the chain goes on
 * from the last record on disk, the next records are written at once (so
 * a caller learns of the failure), and the gap record reports them all. */
static void test_defer_disk_full(void **state)
{
	(void)state;
	char mnt[128], p[160], filler[160];
	/* 4 KiB left: less than one full batch. */
	small_fs("small2", 15, mnt, sizeof(mnt), p, sizeof(p), filler, sizeof(filler));

	struct audit_writer *w;
	assert_int_equal(audit_writer_open(p, &w), 0);
	struct audit_record start = {.event = AUDIT_EV_START};
	assert_int_equal(audit_writer_append(w, &start), 0);
	uint64_t seq0 = audit_writer_next_seq(w);
	int r = 0;
	size_t batch = 0;
	for (int i = 0; i < 1000 && r == 0; i++) {
		r = audit_writer_defer(w, &decision);
		batch = r == 0 ? audit_writer_pending(w) : batch + 1;
	}
	assert_int_equal(r, -ENOSPC);
	assert_true(batch > 1);
	assert_true(audit_writer_lost(w) == batch);
	assert_int_equal(audit_writer_pending(w), 0);
	assert_true(audit_writer_next_seq(w) == seq0);
	assert_int_equal(verified_records(p), 1);
	/* Failing: the next record is written at once, never deferred (the
	 * page the log already has may still hold it and the gap record). */
	uint64_t lost = batch;
	r = audit_writer_defer(w, &decision);
	assert_int_equal(audit_writer_pending(w), 0);
	if (r < 0) {
		assert_int_equal(r, -ENOSPC);
		lost++;
		assert_true(audit_writer_lost(w) == lost);
		assert_int_equal(unlink(filler), 0);
		assert_int_equal(audit_writer_defer(w, &decision), 0);
	} else {
		assert_int_equal(unlink(filler), 0);
	}
	assert_int_equal(audit_writer_pending(w), 0);
	assert_true(audit_writer_lost(w) == 0);
	assert_true(audit_writer_next_seq(w) == seq0 + 2);
	struct audit_record stop = {.event = AUDIT_EV_STOP};
	assert_int_equal(audit_writer_append(w, &stop), 0);
	audit_writer_free(w);
	struct tally t = {0};
	struct audit_verify_result res;
	assert_int_equal(verify(p, true, &t, &res), AUDIT_OK);
	assert_true(t.gaps == 1 && t.lost == lost && res.lost == lost);
	assert_true(t.records == 4);
	assert_int_equal(umount2(mnt, MNT_DETACH), 0);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_continue),  cmocka_unit_test(test_nofollow),
		cmocka_unit_test(test_torn_tail), cmocka_unit_test(test_dev_full),
		cmocka_unit_test(test_disk_full), cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_defer),	  cmocka_unit_test(test_defer_disk_full),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
