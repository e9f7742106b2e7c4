/* SPDX-License-Identifier: MIT */
/*
 * Questions to the account database (NSS: /etc/passwd, systemd, LDAP, ...)
 * asked in a short-lived child, never in the calling process.
 *
 * Why a child: glibc loads the NSS modules nsswitch.conf names (with the
 * libraries they pull in) into the process that asks and keeps them there
 * for good.  In the broker that is several hundred KiB of resident pages,
 * and foreign code sharing an address space with every layer's keys.  The
 * child is forked, asks, writes one fixed-size record into a pipe and
 * _exit()s; the parent accepts the answer only when the record is exactly
 * one well-formed answer to the question it asked, followed by EOF, and the
 * child exited rather than being killed.  Anything else (a short or long record, garbage, a child
 * killed or hung) fails closed: no uid is handed out, no name resolves.
 *
 * The child stays root: some NSS sources answer root differently (an LDAP
 * client binds with the root credentials only for uid 0), and an account
 * hidden from a lesser uid would look free.  It touches no secret: it only
 * runs the lookups on the request, which it got by fork.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox-internal.h"

/* Largest passwd or group entry accepted (a group with many members). */
#define IDQUERY_ENTRY_MAX (1u << 20)

/* ---- the child ---- */

struct idq_buf {
	char *p;
	size_t cap;
};

/* Grow the lookup buffer after ERANGE, up to IDQUERY_ENTRY_MAX. */
static int idq_grow(struct idq_buf *b)
{
	size_t cap = b->cap ? b->cap * 2 : 4096;
	char *p;

	if (cap > IDQUERY_ENTRY_MAX)
		return ERANGE;
	p = realloc(b->p, cap);
	if (!p)
		return ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

/* The _r functions return 0 with a NULL result for "no such entry" and an
 * error number otherwise; every error, ENOENT included (what glibc passes
 * on from an unavailable source), fails the whole question. */
static int idq_uid(uint32_t id, struct idq_buf *b, bool *ret_present)
{
	struct passwd pw, *res;
	int e = b->p ? 0 : idq_grow(b);

	if (e != 0)
		return e;
	while ((e = getpwuid_r((uid_t)id, &pw, b->p, b->cap, &res)) == ERANGE)
		if ((e = idq_grow(b)) != 0)
			return e;
	if (e != 0)
		return e;
	*ret_present = res != NULL;
	return 0;
}

static int idq_gid(uint32_t id, struct idq_buf *b, bool *ret_present)
{
	struct group gr, *res;
	int e = b->p ? 0 : idq_grow(b);

	if (e != 0)
		return e;
	while ((e = getgrgid_r((gid_t)id, &gr, b->p, b->cap, &res)) == ERANGE)
		if ((e = idq_grow(b)) != 0)
			return e;
	if (e != 0)
		return e;
	*ret_present = res != NULL;
	return 0;
}

static int idq_user(const char *name, struct idq_buf *b, bool *ret_present, uid_t *ret_uid,
		    gid_t *ret_gid)
{
	struct passwd pw, *res;
	int e = b->p ? 0 : idq_grow(b);

	if (e != 0)
		return e;
	while ((e = getpwnam_r(name, &pw, b->p, b->cap, &res)) == ERANGE)
		if ((e = idq_grow(b)) != 0)
			return e;
	if (e != 0)
		return e;
	*ret_present = res != NULL;
	if (res) {
		*ret_uid = res->pw_uid;
		*ret_gid = res->pw_gid;
	}
	return 0;
}

static int idq_group(const char *name, struct idq_buf *b, bool *ret_present, gid_t *ret_gid)
{
	struct group gr, *res;
	int e = b->p ? 0 : idq_grow(b);

	if (e != 0)
		return e;
	while ((e = getgrnam_r(name, &gr, b->p, b->cap, &res)) == ERANGE)
		if ((e = idq_grow(b)) != 0)
			return e;
	if (e != 0)
		return e;
	*ret_present = res != NULL;
	if (res)
		*ret_gid = res->gr_gid;
	return 0;
}

static uint8_t idq_state(bool present)
{
	return present ? IDQUERY_PRESENT : IDQUERY_ABSENT;
}

/* Fill *w from the account database; on the first error, w says only that. */
static void idq_answer(const struct idquery_req *req, struct idquery_wire *w)
{
	struct idq_buf b = {NULL, 0};
	int e = 0;

	memset(w, 0, sizeof(*w));
	w->magic = IDQUERY_MAGIC;
	w->kind = (uint32_t)req->kind;
	if (req->kind == IDQUERY_IDS) {
		for (size_t i = 0; i < req->n && e == 0; i++) {
			bool pw = false, gr = false;
			e = idq_uid(req->ids[i], &b, &pw);
			if (e == 0)
				e = idq_gid(req->ids[i], &b, &gr);
			w->id[i] = req->ids[i];
			w->state[i] = idq_state(pw || gr);
		}
		w->n = (uint32_t)req->n;
	} else {
		bool present = false;
		uid_t uid = 0;
		gid_t gid = 0;
		e = idq_user(req->user, &b, &present, &uid, &gid);
		if (e == 0) {
			w->n = 1;
			w->state[0] = idq_state(present);
			w->id[0] = present ? (uint32_t)uid : 0;
			w->id[1] = present ? (uint32_t)gid : 0;
		}
		if (e == 0 && req->group) {
			present = false;
			gid = 0;
			e = idq_group(req->group, &b, &present, &gid);
			w->n = 2;
			w->state[1] = idq_state(present);
			w->id[1] = present ? (uint32_t)gid : 0;
		}
	}
	free(b.p);
	if (e != 0) {
		memset(w, 0, sizeof(*w));
		w->magic = IDQUERY_MAGIC;
		w->kind = (uint32_t)req->kind;
		w->err = e;
	}
}

void idquery_child_answer(const struct idquery_req *req, int fd)
{
	struct idquery_wire w;

	idq_answer(req, &w);
	/* One write below PIPE_BUF: the parent sees all of it or nothing. */
	(void)!write(fd, &w, sizeof(w));
}

/* ---- the parent ---- */

static bool idq_req_valid(const struct idquery_req *req)
{
	if (req->kind == IDQUERY_IDS)
		return req->n >= 1 && req->n <= IDQUERY_IDS_MAX;
	if (req->kind == IDQUERY_NAMES)
		return req->user && *req->user && (!req->group || *req->group);
	return false;
}

int idquery_parse(const struct idquery_req *req, const void *buf, size_t len,
		  struct idquery_result *ret)
{
	struct idquery_result res;
	struct idquery_wire w;
	size_t n;

	if (!idq_req_valid(req))
		return -EINVAL;
	if (len != sizeof(w))
		return -EPROTO;
	memcpy(&w, buf, sizeof(w));
	if (w.magic != IDQUERY_MAGIC || w.kind != (uint32_t)req->kind)
		return -EPROTO;
	if (w.err != 0) {
		/* A failed lookup: the record says so and nothing else. */
		if (w.err < 0 || w.err > 4095 || w.n != 0)
			return -EPROTO;
		for (size_t i = 0; i < IDQUERY_IDS_MAX; i++)
			if (w.id[i] || w.state[i])
				return -EPROTO;
		return -w.err;
	}
	n = req->kind == IDQUERY_IDS ? req->n : (req->group ? 2 : 1);
	if (w.n != n)
		return -EPROTO;
	memset(&res, 0, sizeof(res));
	for (size_t i = 0; i < IDQUERY_IDS_MAX; i++) {
		if (i >= n) {
			/* Unused slots are zero, except the user's gid in slot 1. */
			bool gid_slot = req->kind == IDQUERY_NAMES && i == 1;
			if (w.state[i] || (w.id[i] && !gid_slot))
				return -EPROTO;
			continue;
		}
		if (w.state[i] != IDQUERY_ABSENT && w.state[i] != IDQUERY_PRESENT)
			return -EPROTO;
		if (req->kind == IDQUERY_IDS) {
			if (w.id[i] != req->ids[i])
				return -EPROTO;
			res.taken[i] = w.state[i] == IDQUERY_PRESENT;
		}
	}
	if (req->kind == IDQUERY_NAMES) {
		/* An absent name carries no id; a present one is what it says. */
		for (size_t i = 0; i < n; i++)
			if (w.state[i] == IDQUERY_ABSENT && w.id[i])
				return -EPROTO;
		/* Without a group, slot 1 is the user's primary gid. */
		if (n == 1 && w.state[0] == IDQUERY_ABSENT && w.id[1])
			return -EPROTO;
		if (w.state[0] == IDQUERY_ABSENT || (n == 2 && w.state[1] == IDQUERY_ABSENT))
			return -ENOENT;
		res.uid = (uid_t)w.id[0];
		res.gid = (gid_t)w.id[1];
	}
	*ret = res;
	return 0;
}

static int64_t idq_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read the child's record until EOF into buf, one byte larger than a
 * record.  Returns its length, -EPROTO when it fills buf (longer than a
 * record), -ETIMEDOUT, -errno. */
static ssize_t idq_read(int fd, char *buf, size_t cap, int timeout_ms)
{
	const int64_t deadline = idq_now_ms() + timeout_ms;
	size_t got = 0;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int64_t left = deadline - idq_now_ms();
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		ssize_t n = read(fd, buf + got, cap - got);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return (ssize_t)got;
		got += (size_t)n;
		if (got == cap)
			return -EPROTO; /* more than a record: not our child's answer */
	}
}

/* Close every fd from @first on, so that NSS code gets no layer channel,
 * lock or log fd and holds no channel's end open.  Hygiene, not a guarantee
 * the answer depends on (the lookups ran with every fd open before they
 * moved to a child), so a kernel or filter refusing close_range() falls
 * back to closing what /proc lists, and failing that the child goes on. */
static void idq_close_from(int first)
{
	DIR *d;
	struct dirent *e;

	if (syscall(SYS_close_range, (unsigned)first, ~0u, 0u) == 0)
		return;
	d = opendir("/proc/self/fd");
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end == '\0' && end != e->d_name && fd >= first && fd != dirfd(d))
			close((int)fd);
	}
	closedir(d);
}

/* Not _Noreturn: a noreturn function need not save the caller's registers,
 * and pointers the parent's frames hold only there would look lost to a
 * leak checker that runs in the child at its exit. */
static void idq_child(const struct idquery_req *req, idquery_child_fn body, int fd, pid_t parent)
{
	/* Orphaned, the question has nobody to answer. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
		_exit(1);
	if (fd != 3 && dup3(fd, 3, O_CLOEXEC) < 0)
		_exit(1);
	idq_close_from(4);
	body(req, 3);
	/* _exit: no atexit handler or stdio buffer of the parent runs twice. */
	_exit(0);
}

int idquery_run_with(const struct idquery_req *req, idquery_child_fn body, int timeout_ms,
		     struct idquery_result *ret)
{
	char buf[sizeof(struct idquery_wire) + 1];
	struct idquery_result res;
	sigset_t all, old;
	pid_t parent = getpid(), pid;
	int pfd[2], status = 0, r;
	ssize_t len;

	if (!req || !body || !ret || timeout_ms <= 0 || !idq_req_valid(req))
		return -EINVAL;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	/* Every signal blocked across fork and in the child: no handler of
	 * the parent ever runs there. */
	sigfillset(&all);
	r = pthread_sigmask(SIG_SETMASK, &all, &old);
	if (r != 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -r;
	}
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		idq_child(req, body, pfd[1], parent);
		_exit(1); /* not reached */
	}
	r = pid < 0 ? -errno : 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(pfd[1]);
	if (r < 0) {
		close(pfd[0]);
		return r;
	}
	len = idq_read(pfd[0], buf, sizeof(buf), timeout_ms);
	close(pfd[0]);
	if (len < 0)
		kill(pid, SIGKILL); /* hung or babbling: it answers nothing more */
	while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (r < 0)
		return -errno;
	if (len < 0)
		return (int)len;
	/* A child killed by a signal, even after a full record, answers
	 * nothing.  Its exit status is not read: the record is written in one
	 * write after every lookup, and only _exit(0) follows it, so a full
	 * record with another status can only come from outside the lookups
	 * (valgrind, for one, sets it from a leak check of the parent's heap
	 * it inherited).  Without a full record the status does not matter. */
	if (!WIFEXITED(status))
		return -ECHILD;
	r = idquery_parse(req, buf, (size_t)len, &res);
	if (r < 0)
		return r;
	*ret = res;
	return 0;
}

#ifdef SANDBOX_TEST_HOOKS
idquery_child_fn idquery_test_body;
#endif

int idquery_run(const struct idquery_req *req, struct idquery_result *ret)
{
	idquery_child_fn body = idquery_child_answer;

#ifdef SANDBOX_TEST_HOOKS
	if (idquery_test_body)
		body = idquery_test_body;
#endif
	return idquery_run_with(req, body, IDQUERY_TIMEOUT_MS, ret);
}
