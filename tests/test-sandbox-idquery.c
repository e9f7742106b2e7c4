/* SPDX-License-Identifier: MIT */
/*
 * sandbox/idquery.c and the dynamic-uid batch built on it: the account
 * database is asked in a child, and the parent trusts nothing but exactly
 * one well-formed answer from a child that then exited.  Truncated, long,
 * missing or garbage records, a child killed (even after answering), one
 * that hangs or reports a lookup error: each fails closed.  Also: no NSS module is ever mapped into
 * this process.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sandbox-internal.h"
#include "selfcheck.h"

static size_t fd_count(void)
{
	size_t n = 0;

	assert_int_equal(selfcheck_fd_count(0, &n), 0);
	return n;
}

/* No child of ours is left unreaped. */
static void assert_no_children(void)
{
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

static bool maps_contain(const char *needle)
{
	char line[512];
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "re");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		found = found || strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

static struct idquery_req ids_req(size_t n)
{
	struct idquery_req req = {.kind = IDQUERY_IDS, .n = n};

	for (size_t i = 0; i < n && i < IDQUERY_IDS_MAX; i++)
		req.ids[i] = 81920u + (uint32_t)i;
	return req;
}

/* The answer a correct child gives to req, every id absent but ids[taken]. */
static struct idquery_wire ids_answer(const struct idquery_req *req, size_t taken)
{
	struct idquery_wire w;

	memset(&w, 0, sizeof(w));
	w.magic = IDQUERY_MAGIC;
	w.kind = IDQUERY_IDS;
	w.n = (uint32_t)req->n;
	for (size_t i = 0; i < req->n; i++) {
		w.id[i] = req->ids[i];
		w.state[i] = i == taken ? IDQUERY_PRESENT : IDQUERY_ABSENT;
	}
	return w;
}

static int parse(const struct idquery_req *req, const struct idquery_wire *w,
		 struct idquery_result *res)
{
	return idquery_parse(req, w, sizeof(*w), res);
}

/* ---- the record, parsed ---- */

static void test_parse_ids(void **state)
{
	struct idquery_req req = ids_req(3);
	struct idquery_wire w = ids_answer(&req, 1);
	struct idquery_result res;

	(void)state;
	assert_int_equal(parse(&req, &w, &res), 0);
	assert_false(res.taken[0]);
	assert_true(res.taken[1]);
	assert_false(res.taken[2]);
	/* Exactly the maximum batch, and one more. */
	req = ids_req(IDQUERY_IDS_MAX);
	w = ids_answer(&req, IDQUERY_IDS_MAX - 1);
	assert_int_equal(parse(&req, &w, &res), 0);
	assert_true(res.taken[IDQUERY_IDS_MAX - 1]);
	req.n = IDQUERY_IDS_MAX + 1;
	assert_int_equal(parse(&req, &w, &res), -EINVAL);
	req.n = 0;
	assert_int_equal(parse(&req, &w, &res), -EINVAL);
}

static void test_parse_length(void **state)
{
	struct idquery_req req = ids_req(2);
	struct idquery_wire w = ids_answer(&req, 0);
	char big[sizeof(w) + 1];
	struct idquery_result res;

	(void)state;
	assert_int_equal(idquery_parse(&req, &w, 0, &res), -EPROTO);
	assert_int_equal(idquery_parse(&req, &w, sizeof(w) - 1, &res), -EPROTO);
	assert_int_equal(idquery_parse(&req, &w, 4, &res), -EPROTO);
	memcpy(big, &w, sizeof(w));
	big[sizeof(w)] = 0;
	assert_int_equal(idquery_parse(&req, big, sizeof(big), &res), -EPROTO);
}

static void test_parse_garbage(void **state)
{
	struct idquery_req req = ids_req(2);
	const struct idquery_wire good = ids_answer(&req, 0);
	struct idquery_result res;
	struct idquery_wire w;

	(void)state;
	w = good;
	w.magic ^= 1;
	assert_int_equal(parse(&req, &w, &res), -EPROTO);
	w = good;
	w.kind = IDQUERY_NAMES;
	assert_int_equal(parse(&req, &w, &res), -EPROTO);
	w = good;
	w.n = 1; /* fewer answers than questions */
	assert_int_equal(parse(&req, &w, &res), -EPROTO);
	w = good;
	w.n = 3;
	assert_int_equal(parse(&req, &w, &res), -EPROTO);
	w = good;
	w.id[1] = 0; /* an answer about another uid */
	assert_int_equal(parse(&req, &w, &res), -EPROTO);
	for (unsigned s = 0; s < 256; s++) {
		w = good;
		w.state[1] = (uint8_t)s;
		int want = s == IDQUERY_ABSENT || s == IDQUERY_PRESENT ? 0 : -EPROTO;
		assert_int_equal(parse(&req, &w, &res), want);
	}
	w = good;
	w.state[2] = IDQUERY_ABSENT; /* an unused slot */
	assert_int_equal(parse(&req, &w, &res), -EPROTO);
	w = good;
	w.id[IDQUERY_IDS_MAX - 1] = 1;
	assert_int_equal(parse(&req, &w, &res), -EPROTO);
	/* Every single-byte corruption of a valid record is caught. */
	for (size_t off = 0; off < sizeof(good); off++) {
		w = good;
		((uint8_t *)&w)[off] ^= 0x80;
		assert_int_not_equal(parse(&req, &w, &res), 0);
	}
}

static void test_parse_lookup_error(void **state)
{
	struct idquery_req req = ids_req(2);
	struct idquery_result res;
	struct idquery_wire w;

	(void)state;
	memset(&w, 0, sizeof(w));
	w.magic = IDQUERY_MAGIC;
	w.kind = IDQUERY_IDS;
	w.err = EIO;
	assert_int_equal(parse(&req, &w, &res), -EIO);
	w.err = 4095;
	assert_int_equal(parse(&req, &w, &res), -4095);
	w.err = 4096;
	assert_int_equal(parse(&req, &w, &res), -EPROTO);
	w.err = -EIO;
	assert_int_equal(parse(&req, &w, &res), -EPROTO);
	/* An error record carries nothing else. */
	w.err = EIO;
	w.n = 2;
	assert_int_equal(parse(&req, &w, &res), -EPROTO);
	w.n = 0;
	w.state[0] = IDQUERY_ABSENT;
	assert_int_equal(parse(&req, &w, &res), -EPROTO);
}

static void test_parse_names(void **state)
{
	struct idquery_req req = {.kind = IDQUERY_NAMES, .user = "plant"};
	struct idquery_result res;
	struct idquery_wire w;

	(void)state;
	memset(&w, 0, sizeof(w));
	w.magic = IDQUERY_MAGIC;
	w.kind = IDQUERY_NAMES;
	w.n = 1;
	w.state[0] = IDQUERY_PRESENT;
	w.id[0] = 1001;
	w.id[1] = 1002;
	assert_int_equal(parse(&req, &w, &res), 0);
	assert_int_equal(res.uid, 1001);
	assert_int_equal(res.gid, 1002);
	/* With a group: its gid replaces the primary one. */
	req.group = "dialout";
	w.n = 2;
	w.state[1] = IDQUERY_PRESENT;
	w.id[1] = 20;
	assert_int_equal(parse(&req, &w, &res), 0);
	assert_int_equal(res.gid, 20);
	w.n = 1; /* the group went unanswered */
	assert_int_equal(parse(&req, &w, &res), -EPROTO);
	w.n = 2;
	w.state[1] = IDQUERY_ABSENT;
	w.id[1] = 0;
	assert_int_equal(parse(&req, &w, &res), -ENOENT);
	w.id[1] = 20; /* absent, yet with an id */
	assert_int_equal(parse(&req, &w, &res), -EPROTO);
	/* No such user, the group exists: still no answer. */
	w.state[0] = IDQUERY_ABSENT;
	w.id[0] = 0;
	w.state[1] = IDQUERY_PRESENT;
	assert_int_equal(parse(&req, &w, &res), -ENOENT);
	w.id[0] = 1001; /* absent, yet with an id */
	assert_int_equal(parse(&req, &w, &res), -EPROTO);
	/* No such user. */
	req.group = NULL;
	memset(&w, 0, sizeof(w));
	w.magic = IDQUERY_MAGIC;
	w.kind = IDQUERY_NAMES;
	w.n = 1;
	w.state[0] = IDQUERY_ABSENT;
	assert_int_equal(parse(&req, &w, &res), -ENOENT);
	w.id[1] = 5;
	assert_int_equal(parse(&req, &w, &res), -EPROTO);
	w.id[1] = 0;
	w.id[2] = 5;
	assert_int_equal(parse(&req, &w, &res), -EPROTO);
	/* Requests that are not questions. */
	req.user = "";
	assert_int_equal(parse(&req, &w, &res), -EINVAL);
	req.user = NULL;
	assert_int_equal(parse(&req, &w, &res), -EINVAL);
	req.user = "plant";
	req.group = "";
	assert_int_equal(parse(&req, &w, &res), -EINVAL);
	req.kind = 0;
	assert_int_equal(parse(&req, &w, &res), -EINVAL);
}

/* ---- the child, misbehaving ---- */

static void body_truncated(const struct idquery_req *req, int fd)
{
	struct idquery_wire w = ids_answer(req, SIZE_MAX);

	(void)!write(fd, &w, sizeof(w) - 1);
}

static void body_silent(const struct idquery_req *req, int fd)
{
	(void)req;
	(void)fd;
}

static void body_garbage(const struct idquery_req *req, int fd)
{
	char junk[sizeof(struct idquery_wire)];

	(void)req;
	memset(junk, 0x5a, sizeof(junk));
	(void)!write(fd, junk, sizeof(junk));
}

static void body_twice(const struct idquery_req *req, int fd)
{
	struct idquery_wire w = ids_answer(req, SIZE_MAX);

	(void)!write(fd, &w, sizeof(w));
	(void)!write(fd, &w, sizeof(w));
}

/* More than a pipe holds: the parent must not wait for the end. */
static void body_flood(const struct idquery_req *req, int fd)
{
	static char junk[1 << 17];

	(void)req;
	(void)!write(fd, junk, sizeof(junk));
}

static void body_then_killed(const struct idquery_req *req, int fd)
{
	struct idquery_wire w = ids_answer(req, SIZE_MAX);

	(void)!write(fd, &w, sizeof(w));
	raise(SIGKILL);
}

/* The exit status is not the answer: under valgrind a child that answered
 * exits with the leak checker's status.  The record alone decides. */
static void body_then_exit3(const struct idquery_req *req, int fd)
{
	struct idquery_wire w = ids_answer(req, SIZE_MAX);

	(void)!write(fd, &w, sizeof(w));
	_exit(3);
}

/* Dies before a word: the status says nothing, the missing record does. */
static void body_exit0_silent(const struct idquery_req *req, int fd)
{
	(void)req;
	(void)fd;
	_exit(0);
}

static void body_killed_silent(const struct idquery_req *req, int fd)
{
	(void)req;
	(void)fd;
	raise(SIGKILL);
}

static void body_hang(const struct idquery_req *req, int fd)
{
	(void)req;
	(void)fd;
	for (;;)
		pause();
}

static void body_lookup_error(const struct idquery_req *req, int fd)
{
	struct idquery_wire w;

	(void)req;
	memset(&w, 0, sizeof(w));
	w.magic = IDQUERY_MAGIC;
	w.kind = IDQUERY_IDS;
	w.err = EIO;
	(void)!write(fd, &w, sizeof(w));
}

/* Everything taken but the last id asked. */
static void body_all_but_last(const struct idquery_req *req, int fd)
{
	struct idquery_wire w = ids_answer(req, SIZE_MAX);

	for (size_t i = 0; i + 1 < req->n; i++)
		w.state[i] = IDQUERY_PRESENT;
	(void)!write(fd, &w, sizeof(w));
}

static void body_all_taken(const struct idquery_req *req, int fd)
{
	struct idquery_wire w = ids_answer(req, SIZE_MAX);

	for (size_t i = 0; i < req->n; i++)
		w.state[i] = IDQUERY_PRESENT;
	(void)!write(fd, &w, sizeof(w));
}

/* A correct answer only when the child holds nothing above its fd 3 (the
 * parent has test fds open there). */
static void body_fd_census(const struct idquery_req *req, int fd)
{
	if (fd != 3)
		return;
	for (int i = 4; i < 256; i++)
		if (fcntl(i, F_GETFD) >= 0)
			return;
	idquery_child_answer(req, fd);
}

static void test_child_misbehaves(void **state)
{
	static const struct {
		idquery_child_fn body;
		int want;
	} cases[] = {
		{body_truncated, -EPROTO},    {body_silent, -EPROTO},
		{body_garbage, -EPROTO},      {body_twice, -EPROTO},
		{body_flood, -EPROTO},	      {body_then_killed, -ECHILD},
		{body_exit0_silent, -EPROTO}, {body_killed_silent, -ECHILD},
		{body_hang, -ETIMEDOUT},      {body_lookup_error, -EIO},
	};
	struct idquery_req req = ids_req(4);
	struct idquery_result res;
	size_t before = fd_count();
	int spare = open("/dev/null", O_RDONLY | O_CLOEXEC); /* for the census */

	(void)state;
	assert_true(spare >= 0);
	before++;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&res, 0x77, sizeof(res));
		/* Only the hanging child ever meets its (short) timeout. */
		int t = cases[i].body == body_hang ? 300 : IDQUERY_TIMEOUT_MS;
		int r = idquery_run_with(&req, cases[i].body, t, &res);
		if (r != cases[i].want)
			fail_msg("case %zu: %d (%s), want %d", i, r, strerror(-r), cases[i].want);
		/* ret is written only on success. */
		for (size_t j = 0; j < sizeof(res); j++)
			assert_int_equal(((uint8_t *)&res)[j], 0x77);
	}
	assert_int_equal(fd_count(), before);
	assert_no_children();
	assert_int_equal(idquery_run_with(&req, body_fd_census, IDQUERY_TIMEOUT_MS, &res), 0);
	assert_int_equal(idquery_run_with(&req, body_then_exit3, IDQUERY_TIMEOUT_MS, &res), 0);
	assert_false(res.taken[0]);
	assert_int_equal(idquery_run_with(NULL, body_silent, 100, &res), -EINVAL);
	assert_int_equal(idquery_run_with(&req, NULL, 100, &res), -EINVAL);
	assert_int_equal(idquery_run_with(&req, body_silent, 0, &res), -EINVAL);
	close(spare);
}

/* ---- the real account database ---- */

static void test_real_lookups(void **state)
{
	struct idquery_req req = {.kind = IDQUERY_IDS, .n = 4, .ids = {0, 65534, 81920, 86015}};
	struct idquery_result res;

	(void)state;
	assert_int_equal(idquery_run(&req, &res), 0);
	assert_true(res.taken[0]); /* root */
	/* The child's verdicts agree with this process's own view (read
	 * with the files source only, below, so NSS stays out of here). */
	for (size_t i = 1; i < 4; i++) {
		FILE *f = fopen("/etc/passwd", "re");
		struct passwd *pw;
		bool listed = false;
		assert_non_null(f);
		while ((pw = fgetpwent(f)) != NULL)
			listed = listed || pw->pw_uid == req.ids[i];
		fclose(f);
		if (listed)
			assert_true(res.taken[i]);
	}
	req = (struct idquery_req){.kind = IDQUERY_NAMES, .user = "root", .group = "root"};
	assert_int_equal(idquery_run(&req, &res), 0);
	assert_int_equal(res.uid, 0);
	assert_int_equal(res.gid, 0);
	req.user = "conduit-no-such-user";
	req.group = NULL;
	assert_int_equal(idquery_run(&req, &res), -ENOENT);
	req.user = "root";
	req.group = "conduit-no-such-group";
	assert_int_equal(idquery_run(&req, &res), -ENOENT);
	req.user = "conduit-no-such-user";
	req.group = "root";
	assert_int_equal(idquery_run(&req, &res), -ENOENT);
	/* The lookups ran, and no NSS module came into this process. */
	assert_false(maps_contain("libnss_"));
	assert_no_children();
}

/* ---- dynamic uids in batches (root) ---- */

static char lock_dir[] = "/run/conduit/test-idquery.XXXXXX";

static void test_batch_distinct(void **state)
{
	uid_t uids[SANDBOX_DYNUSER_BATCH_MAX + 1];
	int fds[SANDBOX_DYNUSER_BATCH_MAX + 1];
	size_t before = fd_count();

	(void)state;
	assert_int_equal(dynuser_acquire(lock_dir, 0, uids, fds), -EINVAL);
	assert_int_equal(dynuser_acquire(lock_dir, SANDBOX_DYNUSER_BATCH_MAX + 1, uids, fds),
			 -EINVAL);
	assert_int_equal(dynuser_acquire(lock_dir, SANDBOX_DYNUSER_BATCH_MAX, uids, fds), 0);
	for (size_t i = 0; i < SANDBOX_DYNUSER_BATCH_MAX; i++) {
		assert_true(uids[i] >= SANDBOX_DYNAMIC_UID_MIN &&
			    uids[i] <= SANDBOX_DYNAMIC_UID_MAX);
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(uids[i], uids[j]);
		/* Held: another open file description cannot lock it. */
		char path[256];
		snprintf(path, sizeof(path), "%s/%u", lock_dir, (unsigned)uids[i]);
		int fd = open(path, O_RDWR | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), -1);
		close(fd);
		close(fds[i]);
	}
	assert_int_equal(fd_count(), before);
	assert_false(maps_contain("libnss_"));
}

static void test_batch_skips_taken(void **state)
{
	uid_t uids[4];
	int fds[4];
	size_t before = fd_count();

	(void)state;
	/* Each child says all but the last candidate exist: the batch is
	 * filled from the free ones, asking again for what is missing, and
	 * the locks of the taken ones are let go. */
	idquery_test_body = body_all_but_last;
	assert_int_equal(dynuser_acquire(lock_dir, 4, uids, fds), 0);
	idquery_test_body = NULL;
	assert_int_equal(fd_count(), before + 4);
	for (size_t i = 0; i < 4; i++) {
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(uids[i], uids[j]);
		close(fds[i]);
	}
	assert_int_equal(fd_count(), before);
}

static void test_batch_fails_closed(void **state)
{
	static const struct {
		idquery_child_fn body;
		int want;
	} cases[] = {
		{body_lookup_error, -EIO},
		{body_truncated, -EPROTO},
		{body_garbage, -EPROTO},
		{body_then_killed, -ECHILD},
	};
	struct sandbox_dynuser d[3] = {{0, -1}, {0, -1}, {0, -1}};
	uid_t uids[3] = {0, 0, 0};
	int fds[3] = {-1, -1, -1};
	size_t before = fd_count();

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		idquery_test_body = cases[i].body;
		assert_int_equal(dynuser_acquire(lock_dir, 3, uids, fds), cases[i].want);
		assert_int_equal(sandbox_dynuser_reserve(lock_dir, 3, d), cases[i].want);
		/* Nothing written, nothing held. */
		for (size_t j = 0; j < 3; j++) {
			assert_int_equal(uids[j], 0);
			assert_int_equal(fds[j], -1);
			assert_int_equal(d[j].lock_fd, -1);
		}
		assert_int_equal(fd_count(), before);
	}
	idquery_test_body = NULL;
	assert_no_children();
}

static void test_batch_all_taken(void **state)
{
	uid_t uid;
	int fd;

	(void)state;
	/* Every uid of the range exists somewhere: none is handed out.  In
	 * the default directory, whose 4,096 lock files exist already
	 * (creating them costs seconds). */
	idquery_test_body = body_all_taken;
	assert_int_equal(dynuser_acquire(NULL, 1, &uid, &fd), -EUSERS);
	idquery_test_body = NULL;
}

static void test_reserve_release(void **state)
{
	struct sandbox_dynuser d[2];
	size_t before = fd_count();

	(void)state;
	assert_int_equal(sandbox_dynuser_reserve(lock_dir, 0, d), -EINVAL);
	assert_int_equal(sandbox_dynuser_reserve(lock_dir, SANDBOX_DYNUSER_BATCH_MAX + 1, d),
			 -EINVAL);
	assert_int_equal(sandbox_dynuser_reserve(lock_dir, 2, d), 0);
	assert_int_not_equal(d[0].uid, d[1].uid);
	assert_true(d[0].lock_fd >= 0 && d[1].lock_fd >= 0);
	sandbox_dynuser_release(d, 2);
	assert_int_equal(d[0].lock_fd, -1);
	assert_int_equal(d[1].lock_fd, -1);
	sandbox_dynuser_release(NULL, 2);
	assert_int_equal(fd_count(), before);
}

static int root_setup(void **state)
{
	(void)state;
	if (mkdir("/run/conduit", 0755) < 0 && errno != EEXIST)
		return -1;
	return mkdtemp(lock_dir) ? 0 : -1;
}

static int root_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", lock_dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_parse_ids),     cmocka_unit_test(test_parse_length),
		cmocka_unit_test(test_parse_garbage), cmocka_unit_test(test_parse_lookup_error),
		cmocka_unit_test(test_parse_names),   cmocka_unit_test(test_child_misbehaves),
		cmocka_unit_test(test_real_lookups),
	};
	const struct CMUnitTest as_root[] = {
		cmocka_unit_test(test_batch_distinct),	   cmocka_unit_test(test_batch_skips_taken),
		cmocka_unit_test(test_batch_fails_closed), cmocka_unit_test(test_batch_all_taken),
		cmocka_unit_test(test_reserve_release),
	};
	int r = cmocka_run_group_tests_name("sandbox-idquery", pure, NULL, NULL);

	if (geteuid() == 0)
		r |= cmocka_run_group_tests_name("sandbox-idquery-root", as_root, root_setup,
						 root_teardown);
	else
		fprintf(stderr, "test-sandbox-idquery: not root: dynamic-uid batches not run\n");
	return r;
}
