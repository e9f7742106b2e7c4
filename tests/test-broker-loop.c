/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <sys/rseq.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop.h"
#include "selfcheck.h"

/* valgrind 3.19 (Debian 12) implements neither clone3 nor pidfd_open and
 * returns ENOSYS for both; the broker refuses to fall back to bare pids, so
 * these cases cannot run there and say so instead of passing silently.  They
 * run natively and under ASan+UBSan. */
static void require_pidfd(void)
{
	int fd = pidfd_open(getpid(), 0);

	if (fd < 0 && errno == ENOSYS) {
		print_message("pidfd_open: ENOSYS (valgrind?): pidfd case not run\n");
		skip();
	}
	assert_true(fd >= 0);
	close(fd);
}

struct io_ctx {
	int calls;
	struct loop_source *victim; /* freed from the callback, if set */
	struct loop_source *self;   /* freed from the callback, if set */
	int ret;
};

static int io_cb(struct loop_source *s, int fd, uint32_t revents, void *userdata)
{
	struct io_ctx *c = userdata;
	char buf[16];

	assert_true(revents & EPOLLIN);
	assert_int_equal(loop_source_fd(s), fd);
	(void)!read(fd, buf, sizeof(buf));
	c->calls++;
	loop_source_free(c->victim);
	loop_source_free(c->self);
	return c->ret;
}

static int timer_cb_stub(struct loop_source *s, uint64_t now, void *userdata)
{
	(void)s;
	(void)now;
	(void)userdata;
	return 0;
}

static void make_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

static void test_io_dispatch(void **state)
{
	struct io_ctx c = {0};
	struct loop *l;
	int sv[2];

	(void)state;
	make_pair(sv);
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(loop_add_io(l, sv[0], EPOLLIN, io_cb, &c, NULL), 0);
	assert_int_equal(loop_add_io(l, sv[0], EPOLLIN, io_cb, &c, NULL), -EEXIST);
	assert_int_equal(loop_run_once(l, 0), 0);
	assert_int_equal(write(sv[1], "x", 1), 1);
	assert_int_equal(loop_run_once(l, LOOP_NO_DEADLINE), 1);
	assert_int_equal(c.calls, 1);
	assert_int_equal(loop_source_count(l), 1);
	loop_free(l);
	close(sv[0]);
	close(sv[1]);
}

static int out_cb(struct loop_source *s, int fd, uint32_t revents, void *userdata)
{
	uint32_t *seen = userdata;

	(void)s;
	(void)fd;
	*seen |= revents;
	return 0;
}

static void test_io_set_events(void **state)
{
	struct loop_source *src, *timer;
	uint32_t seen = 0;
	struct loop *l;
	int sv[2];

	(void)state;
	make_pair(sv);
	assert_int_equal(loop_new(&l), 0);
	/* Nothing to read: no call.  Writable: called with EPOLLOUT. */
	assert_int_equal(loop_add_io(l, sv[0], EPOLLIN, out_cb, &seen, &src), 0);
	assert_int_equal(loop_run_once(l, 0), 0);
	assert_int_equal(loop_io_set_events(src, EPOLLIN | EPOLLOUT), 0);
	assert_int_equal(loop_run_once(l, 0), 1);
	assert_true(seen & EPOLLOUT);
	assert_false(seen & EPOLLIN);
	/* Re-stating the same interest (no system call) keeps it. */
	assert_int_equal(loop_io_set_events(src, EPOLLIN | EPOLLOUT), 0);
	seen = 0;
	assert_int_equal(loop_run_once(l, 0), 1);
	assert_true(seen & EPOLLOUT);
	/* The peer hangs up: EPOLLHUP/EPOLLRDHUP-style wake-up with EPOLLIN. */
	assert_int_equal(loop_io_set_events(src, EPOLLIN), 0);
	assert_int_equal(loop_io_set_events(src, EPOLLIN), 0);
	assert_int_equal(loop_run_once(l, 0), 0); /* not writable-interested any more */
	seen = 0;
	close(sv[1]);
	assert_int_equal(loop_run_once(l, LOOP_NO_DEADLINE), 1);
	assert_true(seen & EPOLLIN);
	/* Wrong kinds of source are refused. */
	assert_int_equal(loop_add_timer(l, LOOP_NO_DEADLINE, timer_cb_stub, NULL, &timer), 0);
	assert_int_equal(loop_io_set_events(timer, EPOLLIN), -EINVAL);
	assert_int_equal(loop_source_fd(timer), -1);
	assert_int_equal(loop_child_kill(timer, SIGKILL), -EINVAL);
	assert_int_equal(loop_timer_set(src, 0), -EINVAL);
	assert_int_equal(loop_io_set_events(NULL, EPOLLIN), -EINVAL);
	loop_source_free(NULL);
	loop_free(NULL);
	loop_free(l);
	close(sv[0]);
}

static void test_io_requires_nonblock_cloexec(void **state)
{
	struct io_ctx c = {0};
	struct loop *l;
	int sv[2];

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(loop_add_io(l, sv[0], EPOLLIN, io_cb, &c, NULL), -EINVAL);
	close(sv[0]);
	close(sv[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(loop_add_io(l, sv[0], EPOLLIN, io_cb, &c, NULL), -EINVAL);
	close(sv[0]);
	close(sv[1]);
	assert_int_equal(loop_add_io(l, -1, EPOLLIN, io_cb, &c, NULL), -EINVAL);
	assert_int_equal(loop_add_io(l, 999, EPOLLIN, io_cb, &c, NULL), -EBADF);
	assert_int_equal(loop_source_count(l), 0);
	loop_free(l);
}

struct wake_ctx {
	char log[16];
	size_t n;
	struct loop_source *rearm; /* asks for one more call of this source */
};

/* A wake-up source: records who was called, reads nothing. */
static int wake_cb(struct loop_source *s, int fd, uint32_t revents, void *userdata)
{
	struct wake_ctx *c = userdata;

	assert_true(revents & EPOLLIN);
	if (c->n < sizeof(c->log) - 1)
		c->log[c->n++] = (char)('0' + fd % 10);
	if (c->rearm == s)
		assert_int_equal(loop_io_rearm(s), 0);
	return 0;
}

/* An edge-triggered source is a wake-up: it may be blocking (another
 * process may share the open file), fires once per new event, and
 * loop_io_rearm() has it called again on the next turn, after the sources
 * that turn finds ready, once per turn, and never once freed. */
static void test_io_edge_rearm(void **state)
{
	struct loop_source *a, *b;
	struct wake_ctx c = {0};
	uint64_t one = 1, v;
	struct loop *l;
	int fa, fb;

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	/* fds 10 apart would print alike: a and b only need to differ. */
	fa = eventfd(0, EFD_CLOEXEC);
	fb = eventfd(0, EFD_CLOEXEC);
	assert_true(fa >= 0 && fb >= 0 && fa % 10 != fb % 10);
	assert_int_equal(loop_add_io(l, fa, EPOLLIN, wake_cb, &c, NULL), -EINVAL);
	assert_int_equal(loop_add_io(l, fa, EPOLLIN | EPOLLET, wake_cb, &c, &a), 0);
	assert_int_equal(loop_add_io(l, fb, EPOLLIN | EPOLLET, wake_cb, &c, &b), 0);
	assert_int_equal(write(fa, &one, sizeof(one)), sizeof(one));
	assert_int_equal(loop_run_once(l, 0), 1);
	/* Still readable, but no new edge: not called again. */
	assert_int_equal(loop_run_once(l, 0), 0);
	assert_int_equal(loop_io_rearm(a), 0);
	assert_int_equal(write(fb, &one, sizeof(one)), sizeof(one));
	assert_int_equal(loop_io_rearm(a), 0); /* already queued: once */
	/* The ready b goes first, then a; the turn does not wait even with
	 * no deadline, since a is due. */
	assert_int_equal(loop_run_once(l, LOOP_NO_DEADLINE), 2);
	assert_int_equal(loop_run_once(l, 0), 0);
	/* A source that an event of this turn calls is not called twice,
	 * and not again unless that call asks. */
	assert_int_equal(loop_io_rearm(a), 0);
	assert_int_equal(write(fa, &one, sizeof(one)), sizeof(one));
	assert_int_equal(loop_run_once(l, 0), 1);
	assert_int_equal(loop_run_once(l, 0), 0);
	c.rearm = a;
	assert_int_equal(loop_io_rearm(a), 0);
	assert_int_equal(write(fa, &one, sizeof(one)), sizeof(one));
	assert_int_equal(loop_run_once(l, 0), 1); /* asks once more */
	c.rearm = NULL;
	assert_int_equal(loop_run_once(l, 0), 1);
	assert_int_equal(loop_run_once(l, 0), 0);
	char want[8];
	snprintf(want, sizeof(want), "%c%c%c%c%c%c", '0' + fa % 10, '0' + fb % 10, '0' + fa % 10,
		 '0' + fa % 10, '0' + fa % 10, '0' + fa % 10);
	assert_string_equal(c.log, want);
	/* Freed while queued: never called. */
	assert_int_equal(read(fa, &v, sizeof(v)), sizeof(v));
	assert_int_equal(loop_io_rearm(b), 0);
	assert_int_equal(loop_io_rearm(a), 0);
	loop_source_free(b);
	assert_int_equal(loop_run_once(l, 0), 1);
	assert_int_equal(loop_run_once(l, 0), 0);
	assert_int_equal(loop_io_rearm(NULL), -EINVAL);
	loop_free(l);
	close(fa);
	close(fb);
}

/* Frees the source in its userdata when called. */
static int free_cb(struct loop_source *s, int fd, uint32_t revents, void *userdata)
{
	struct loop_source **victim = userdata;

	(void)s;
	(void)fd;
	(void)revents;
	loop_source_free(*victim);
	*victim = NULL;
	return 0;
}

/* A source freed while it waits on the list of a turn in progress is not
 * called, and the sources behind it on that list still are. */
static void test_rearm_free_in_turn(void **state)
{
	struct loop_source *a, *b, *c, *x, *victim;
	struct wake_ctx w = {0};
	uint64_t one = 1;
	struct loop *l;
	int fa, fb, fc, fx;

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	fa = eventfd(0, EFD_CLOEXEC);
	fb = eventfd(0, EFD_CLOEXEC);
	fc = eventfd(0, EFD_CLOEXEC);
	fx = eventfd(0, EFD_CLOEXEC);
	assert_true(fa >= 0 && fb >= 0 && fc >= 0 && fx >= 0);
	assert_int_equal(loop_add_io(l, fa, EPOLLIN | EPOLLET, wake_cb, &w, &a), 0);
	assert_int_equal(loop_add_io(l, fb, EPOLLIN | EPOLLET, wake_cb, &w, &b), 0);
	assert_int_equal(loop_add_io(l, fc, EPOLLIN | EPOLLET, wake_cb, &w, &c), 0);
	assert_int_equal(loop_add_io(l, fx, EPOLLIN | EPOLLET, free_cb, &victim, &x), 0);
	victim = b;
	assert_int_equal(loop_io_rearm(a), 0);
	assert_int_equal(loop_io_rearm(b), 0);
	assert_int_equal(loop_io_rearm(c), 0);
	assert_int_equal(write(fx, &one, sizeof(one)), sizeof(one));
	/* x frees b, then a and c are called. */
	assert_int_equal(loop_run_once(l, 0), 3);
	assert_null(victim);
	char want[4];
	snprintf(want, sizeof(want), "%c%c", '0' + fa % 10, '0' + fc % 10);
	assert_string_equal(w.log, want);
	/* Freed outside a turn while queued: never called either. */
	assert_int_equal(loop_io_rearm(a), 0);
	assert_int_equal(loop_io_rearm(c), 0);
	loop_source_free(a);
	assert_int_equal(loop_run_once(l, 0), 1);
	assert_int_equal(w.n, 3);
	loop_free(l);
	close(fa);
	close(fb);
	close(fc);
	close(fx);
}

/* Two sources ready in the same batch; the first frees the second and
 * itself.  The second must never be called (ASan catches a use after free). */
static void test_free_during_dispatch(void **state)
{
	struct io_ctx a = {0}, b = {0};
	struct loop_source *sa, *sb;
	int p[2], q[2];
	struct loop *l;

	(void)state;
	make_pair(p);
	make_pair(q);
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(loop_add_io(l, p[0], EPOLLIN, io_cb, &a, &sa), 0);
	assert_int_equal(loop_add_io(l, q[0], EPOLLIN, io_cb, &b, &sb), 0);
	a.victim = sb;
	a.self = sa;
	b.victim = sa;
	b.self = sb;
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(write(q[1], "x", 1), 1);
	assert_int_equal(loop_run_once(l, LOOP_NO_DEADLINE), 1);
	assert_int_equal(a.calls + b.calls, 1);
	assert_int_equal(loop_source_count(l), 0);
	/* Nothing left registered: still-readable fds wake nobody. */
	assert_int_equal(loop_run_once(l, 0), 0);
	loop_free(l);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
}

static void test_callback_error_stops(void **state)
{
	struct io_ctx c = {.ret = -EIO};
	struct loop *l;
	int sv[2];

	(void)state;
	make_pair(sv);
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(loop_add_io(l, sv[0], EPOLLIN, io_cb, &c, NULL), 0);
	assert_int_equal(write(sv[1], "x", 1), 1);
	assert_int_equal(loop_run(l), -EIO);
	loop_free(l);
	close(sv[0]);
	close(sv[1]);
}

/* ---- timers ---- */

struct timer_ctx {
	int order[8];
	int n;
	struct loop_source *victim;
	struct loop_source *rearm;
};

struct timer_ud {
	struct timer_ctx *ctx;
	int id;
};

static int timer_cb(struct loop_source *s, uint64_t now, void *userdata)
{
	struct timer_ud *u = userdata;
	struct timer_ctx *c = u->ctx;

	assert_true(now > 0);
	if (c->n < 8)
		c->order[c->n++] = u->id;
	loop_source_free(c->victim);
	c->victim = NULL;
	if (c->rearm == s) {
		c->rearm = NULL;
		/* Due immediately, but must wait for the next batch. */
		assert_int_equal(loop_timer_set(s, now), 0);
	}
	return 0;
}

static void test_timers_order_and_rearm(void **state)
{
	struct timer_ctx c = {0};
	struct timer_ud u[4];
	struct loop_source *s[4];
	uint64_t now = loop_now_ns();
	struct loop *l;

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	for (int i = 0; i < 4; i++)
		u[i] = (struct timer_ud){.ctx = &c, .id = i};
	/* Deadlines in the past, added out of order. */
	assert_int_equal(loop_add_timer(l, now - 10, timer_cb, &u[2], &s[2]), 0);
	assert_int_equal(loop_add_timer(l, now - 30, timer_cb, &u[0], &s[0]), 0);
	assert_int_equal(loop_add_timer(l, now - 20, timer_cb, &u[1], &s[1]), 0);
	assert_int_equal(loop_add_timer(l, LOOP_NO_DEADLINE, timer_cb, &u[3], &s[3]), 0);
	c.rearm = s[1];
	assert_int_equal(loop_run_once(l, LOOP_NO_DEADLINE), 3);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.order[0], 0);
	assert_int_equal(c.order[1], 1);
	assert_int_equal(c.order[2], 2);
	/* Only the re-armed one fires again; the disarmed one never. */
	assert_int_equal(loop_run_once(l, LOOP_NO_DEADLINE), 1);
	assert_int_equal(c.order[3], 1);
	assert_int_equal(loop_run_once(l, 0), 0);
	/* Disarm before it fires. */
	assert_int_equal(loop_timer_set(s[0], now), 0);
	assert_int_equal(loop_timer_set(s[0], LOOP_NO_DEADLINE), 0);
	assert_int_equal(loop_run_once(l, 0), 0);
	assert_int_equal(c.n, 4);
	assert_int_equal(loop_timer_set(NULL, 0), -EINVAL);
	loop_free(l);
}

static void test_timer_frees_expired_timer(void **state)
{
	struct timer_ctx c = {0};
	struct timer_ud u[2];
	struct loop_source *s[2];
	uint64_t now = loop_now_ns();
	struct loop *l;

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	u[0] = (struct timer_ud){.ctx = &c, .id = 0};
	u[1] = (struct timer_ud){.ctx = &c, .id = 1};
	assert_int_equal(loop_add_timer(l, now - 2, timer_cb, &u[0], &s[0]), 0);
	assert_int_equal(loop_add_timer(l, now - 1, timer_cb, &u[1], &s[1]), 0);
	c.victim = s[1]; /* both expired, the first frees the second */
	assert_int_equal(loop_run_once(l, LOOP_NO_DEADLINE), 1);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.order[0], 0);
	assert_int_equal(loop_source_count(l), 1);
	loop_free(l);
}

static int exit_cb(struct loop_source *s, uint64_t now, void *userdata);

static int fail_cb(struct loop_source *s, uint64_t now, void *userdata)
{
	int *calls = userdata;

	(void)s;
	(void)now;
	(*calls)++;
	return -EIO;
}

/* A failing timer stops the batch; the next one due stays armed. */
static void test_timer_error_keeps_others(void **state)
{
	uint64_t now = loop_now_ns();
	int fails = 0, fired = 0;
	struct loop_source *later;
	struct loop *l;

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(loop_add_timer(l, now - 2, fail_cb, &fails, NULL), 0);
	assert_int_equal(loop_add_timer(l, now - 1, exit_cb, &fired, &later), 0);
	assert_int_equal(loop_run_once(l, LOOP_NO_DEADLINE), -EIO);
	assert_int_equal(fails, 1);
	assert_int_equal(fired, 0);
	assert_int_equal(loop_run_once(l, LOOP_NO_DEADLINE), 1);
	assert_int_equal(fired, 1);
	assert_int_equal(fails, 1); /* one-shot: not re-armed by the failure */
	loop_free(l);
}

static int exit_cb(struct loop_source *s, uint64_t now, void *userdata)
{
	int *fired = userdata;

	(void)now;
	(void)s;
	(*fired)++;
	return 0;
}

/* The wait has no timeout; one timerfd, armed at or before the earliest
 * deadline, wakes it.  A deadline set earlier than the one it is armed at
 * re-arms it; one set later leaves it early, which costs a turn with
 * nothing due and never runs a timer before its deadline. */
struct due_ctx {
	uint64_t deadline, now;
	int fired;
};

static int due_cb(struct loop_source *s, uint64_t now, void *userdata)
{
	struct due_ctx *c = userdata;

	(void)s;
	assert_true(now >= c->deadline);
	c->now = now;
	c->fired++;
	return 0;
}

/* Turns until c fires; each must come with nothing due or run it. */
static int turns_until(struct loop *l, struct due_ctx *c)
{
	int turns = 0;

	while (!c->fired) {
		int r = loop_run_once(l, LOOP_NO_DEADLINE);

		assert_true(r == 0 || r == 1);
		turns++;
		assert_true(turns <= 3);
	}
	return turns;
}

static void test_timer_wakeup(void **state)
{
	const uint64_t ms = 1000000;
	struct due_ctx far = {0}, near = {0}, moved = {0};
	struct loop_source *sf, *sn, *sm;
	uint64_t t0;
	struct loop *l;

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	/* Armed for a far deadline (a turn with a short timeout arms it)... */
	t0 = loop_now_ns();
	far.deadline = t0 + 5000 * ms;
	assert_int_equal(loop_add_timer(l, far.deadline, due_cb, &far, &sf), 0);
	assert_int_equal(loop_run_once(l, 1 * ms), 0);
	/* ...a nearer one still wakes the wait on time. */
	near.deadline = loop_now_ns() + 30 * ms;
	assert_int_equal(loop_add_timer(l, near.deadline, due_cb, &near, &sn), 0);
	assert_int_equal(turns_until(l, &near), 1);
	assert_true(near.now < near.deadline + 2000 * ms);
	assert_int_equal(far.fired, 0);
	/* Armed for a deadline that then moves later: a turn with nothing
	 * due, then the timer at its new deadline, not before.  Margins of
	 * hundreds of ms, so that a stall under valgrind cannot make the
	 * first deadline pass within the 1 ms turn. */
	moved.deadline = loop_now_ns() + 400 * ms;
	assert_int_equal(loop_add_timer(l, moved.deadline, due_cb, &moved, &sm), 0);
	assert_int_equal(loop_run_once(l, 1 * ms), 0);
	moved.deadline = loop_now_ns() + 700 * ms;
	assert_int_equal(loop_timer_set(sm, moved.deadline), 0);
	assert_true(turns_until(l, &moved) <= 2);
	assert_int_equal(far.fired, 0);
	/* Armed for a timer that is then disarmed: the wait still ends when
	 * the timerfd fires (nothing run), and the timerfd is read then, or
	 * the next wait would return at once instead of after its timeout. */
	t0 = loop_now_ns();
	assert_int_equal(loop_timer_set(sf, t0 + 300 * ms), 0);
	assert_int_equal(loop_run_once(l, 1 * ms), 0);
	assert_int_equal(loop_timer_set(sf, LOOP_NO_DEADLINE), 0);
	assert_int_equal(loop_run_once(l, 5000 * ms), 0);
	assert_true(loop_now_ns() >= t0 + 300 * ms);
	assert_true(loop_now_ns() < t0 + 4000 * ms);
	t0 = loop_now_ns();
	assert_int_equal(loop_run_once(l, 50 * ms), 0);
	assert_true(loop_now_ns() >= t0 + 49 * ms);
	assert_int_equal(far.fired, 0);
	loop_free(l);
}

struct exit_ctx {
	struct loop *l;
	int count;
};

static int exit_after_cb(struct loop_source *s, uint64_t now, void *userdata)
{
	struct exit_ctx *c = userdata;

	if (++c->count == 3)
		loop_exit(c->l, 5);
	else
		assert_int_equal(loop_timer_set(s, now + 1000), 0);
	return 0;
}

static void test_run_until_exit(void **state)
{
	struct exit_ctx c = {0};
	struct loop *l;
	int fired = 0;

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	c.l = l;
	/* A future deadline: the loop sleeps in epoll until it is due. */
	assert_int_equal(loop_add_timer(l, loop_now_ns() + 1000000, exit_after_cb, &c, NULL), 0);
	assert_int_equal(loop_add_timer(l, LOOP_NO_DEADLINE, exit_cb, &fired, NULL), 0);
	assert_int_equal(loop_run(l), 5);
	assert_int_equal(c.count, 3);
	assert_int_equal(fired, 0);
	loop_free(l);
}

/* Inside a turn the clock is the turn's: a timer callback's now, and
 * loop_now_ns() however long the callback takes; between turns it moves.
 * An I/O callback sees the time the wait returned, and a timer due while
 * it ran still fires in the same turn. */
struct clock_ctx {
	uint64_t now, read, read_late;
};

static int clock_cb(struct loop_source *s, uint64_t now, void *userdata)
{
	struct clock_ctx *c = userdata;

	(void)s;
	c->now = now;
	c->read = loop_now_ns();
	usleep(2000);
	c->read_late = loop_now_ns();
	return 0;
}

static void test_turn_clock(void **state)
{
	struct clock_ctx c = {0};
	struct loop *l;

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	uint64_t before = loop_now_ns();
	assert_int_equal(loop_add_timer(l, before, clock_cb, &c, NULL), 0);
	assert_int_equal(loop_run_once(l, 0), 1);
	assert_true(c.now >= before);
	assert_int_equal(c.read, c.now);
	assert_int_equal(c.read_late, c.now);
	/* Outside a turn: the current time, 2 ms later at least. */
	assert_true(loop_now_ns() >= c.now + 2000000);
	loop_free(l);
}

struct io_clock_ctx {
	uint64_t read, read_late, timer_now;
	struct loop *l;
	int fired;
};

static int io_clock_cb(struct loop_source *s, int fd, uint32_t events, void *userdata)
{
	struct io_clock_ctx *c = userdata;
	uint64_t v;

	(void)s;
	(void)events;
	assert_int_equal(read(fd, &v, sizeof(v)), (ssize_t)sizeof(v));
	c->read = loop_now_ns();
	usleep(2000);
	c->read_late = loop_now_ns();
	return 0;
}

static int io_clock_timer_cb(struct loop_source *s, uint64_t now, void *userdata)
{
	struct io_clock_ctx *c = userdata;

	(void)s;
	c->timer_now = now;
	c->fired++;
	assert_int_equal(loop_now_ns(), now);
	return 0;
}

static void test_turn_clock_io(void **state)
{
	struct io_clock_ctx c = {0};
	struct loop *l;
	uint64_t one = 1;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	(void)state;
	assert_true(efd >= 0);
	assert_int_equal(loop_new(&l), 0);
	c.l = l;
	assert_int_equal(loop_add_io(l, efd, EPOLLIN, io_clock_cb, &c, NULL), 0);
	assert_int_equal(write(efd, &one, sizeof(one)), (ssize_t)sizeof(one));
	/* Due 1 ms from now: while the I/O callback sleeps 2 ms. */
	assert_int_equal(loop_add_timer(l, loop_now_ns() + 1000000, io_clock_timer_cb, &c, NULL), 0);
	assert_true(loop_run_once(l, LOOP_NO_DEADLINE) >= 1);
	assert_int_equal(c.read_late, c.read);
	assert_int_equal(c.fired, 1);
	assert_true(c.timer_now >= c.read + 2000000);
	loop_free(l);
	close(efd);
}

/* ---- signals ---- */

struct sig_ctx {
	int calls;
	uint32_t signo;
	struct loop_source *free_self;
};

static int sig_cb(struct loop_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct sig_ctx *c = userdata;

	c->calls++;
	c->signo = si->ssi_signo;
	if (c->free_self == s)
		loop_source_free(s);
	return 0;
}

static void test_signals(void **state)
{
	struct sig_ctx c1 = {0}, c2 = {0};
	struct loop_source *s1;
	struct loop *l;
	sigset_t cur;

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(loop_add_signal(l, SIGKILL, sig_cb, &c1, NULL), -EINVAL);
	assert_int_equal(loop_add_signal(l, SIGSTOP, sig_cb, &c1, NULL), -EINVAL);
	assert_int_equal(loop_add_signal(l, 0, sig_cb, &c1, NULL), -EINVAL);
	assert_int_equal(loop_add_signal(l, _NSIG, sig_cb, &c1, NULL), -EINVAL);
	assert_int_equal(loop_add_signal(l, SIGUSR1, sig_cb, &c1, &s1), 0);
	assert_int_equal(loop_add_signal(l, SIGUSR1, sig_cb, &c1, NULL), -EBUSY);
	assert_int_equal(loop_add_signal(l, SIGUSR2, sig_cb, &c2, NULL), 0);
	assert_int_equal(sigprocmask(SIG_BLOCK, NULL, &cur), 0);
	assert_true(sigismember(&cur, SIGUSR1));
	assert_int_equal(raise(SIGUSR1), 0);
	assert_int_equal(raise(SIGUSR2), 0);
	assert_int_equal(loop_run_once(l, LOOP_NO_DEADLINE), 2);
	assert_int_equal(c1.calls, 1);
	assert_int_equal(c1.signo, SIGUSR1);
	assert_int_equal(c2.calls, 1);
	assert_int_equal(c2.signo, SIGUSR2);
	/* A source freeing itself from its own callback. */
	c1.free_self = s1;
	assert_int_equal(raise(SIGUSR1), 0);
	assert_int_equal(loop_run_once(l, LOOP_NO_DEADLINE), 1);
	assert_int_equal(c1.calls, 2);
	/* Gone from the loop, but still blocked: no default action. */
	assert_int_equal(raise(SIGUSR1), 0);
	assert_int_equal(loop_run_once(l, 0), 0);
	assert_int_equal(c1.calls, 2);
	assert_int_equal(loop_add_signal(l, SIGUSR1, sig_cb, &c1, NULL), 0);
	assert_int_equal(loop_run_once(l, LOOP_NO_DEADLINE), 1);
	assert_int_equal(c1.calls, 3);
	loop_free(l);
}

/* ---- children ---- */

struct child_ctx {
	int calls;
	siginfo_t si;
	struct loop_source *src;
};

static int child_cb(struct loop_source *s, const siginfo_t *si, void *userdata)
{
	struct child_ctx *c = userdata;

	c->calls++;
	c->si = *si;
	c->src = s;
	/* Reaped already: the pidfd is closed, no signal can reach anyone. */
	assert_int_equal(loop_source_fd(s), -1);
	assert_int_equal(loop_child_kill(s, SIGKILL), -ESRCH);
	return 0;
}

static int fork_pidfd(int exit_code, pid_t *ret_pid)
{
	pid_t pid = fork();
	int fd;

	assert_true(pid >= 0);
	if (pid == 0) {
		if (exit_code < 0)
			for (;;)
				pause();
		_exit(exit_code);
	}
	fd = pidfd_open(pid, 0);
	assert_true(fd >= 0);
	*ret_pid = pid;
	return fd;
}

static void assert_no_children(void)
{
	siginfo_t si;

	assert_int_equal(waitid(P_ALL, 0, &si, WEXITED | WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

static void test_child_exit_and_kill(void **state)
{
	struct child_ctx c1 = {0}, c2 = {0};
	struct loop_source *s1, *s2;
	struct loop *l;
	pid_t p1, p2;
	size_t fds0, fds1;

	(void)state;
	require_pidfd();
	assert_int_equal(selfcheck_fd_count(0, &fds0), 0);
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(loop_add_child(l, fork_pidfd(7, &p1), child_cb, &c1, &s1), 0);
	assert_int_equal(loop_add_child(l, fork_pidfd(-1, &p2), child_cb, &c2, &s2), 0);
	assert_true(loop_source_fd(s2) >= 0);
	assert_int_equal(loop_child_kill(s2, SIGKILL), 0);
	while (c1.calls + c2.calls < 2)
		assert_true(loop_run_once(l, LOOP_NO_DEADLINE) >= 0);
	assert_int_equal(c1.calls, 1);
	assert_int_equal(c1.si.si_pid, p1);
	assert_int_equal(c1.si.si_code, CLD_EXITED);
	assert_int_equal(c1.si.si_status, 7);
	assert_int_equal(c2.calls, 1);
	assert_int_equal(c2.si.si_pid, p2);
	assert_int_equal(c2.si.si_code, CLD_KILLED);
	assert_int_equal(c2.si.si_status, SIGKILL);
	assert_no_children();
	loop_source_free(s1);
	loop_source_free(s2);
	loop_free(l);
	assert_int_equal(selfcheck_fd_count(0, &fds1), 0);
	assert_int_equal(fds1, fds0);
}

static void test_child_takes_ownership(void **state)
{
	struct child_ctx c = {0};
	struct loop *l;
	pid_t pid;
	int fd, fd2;
	siginfo_t si;

	(void)state;
	require_pidfd();
	assert_int_equal(loop_new(&l), 0);
	fd = fork_pidfd(0, &pid);
	/* pidfd_open gives O_CLOEXEC; strip it to see the refusal. */
	fd2 = fcntl(fd, F_DUPFD, 0);
	assert_true(fd2 >= 0);
	assert_int_equal(loop_add_child(l, fd2, child_cb, &c, NULL), -EINVAL);
	assert_int_equal(fcntl(fd2, F_GETFD), -1); /* closed even on failure */
	assert_int_equal(waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED), 0);
	close(fd);
	assert_int_equal(loop_add_child(l, -1, child_cb, &c, NULL), -EINVAL);
	assert_no_children();
	loop_free(l);
}

/* The broker's restartable-sequence area goes (loop_rseq_release()): the
 * kernel stops keeping it (a second release finds nothing), says so in the
 * area itself, and sched_getcpu() still answers.  In a child, which the
 * release changes for good.  Without a registration (valgrind,
 * glibc.pthread.rseq=0) there is nothing to release. */
static int rseq_child(void)
{
	if (__rseq_size == 0)
		return loop_rseq_release() == 0 ? 0 : 10;
	const volatile struct rseq *rs =
		(const struct rseq *)((const char *)__builtin_thread_pointer() + __rseq_offset);
	if ((int32_t)rs->cpu_id < 0)
		return 11;
	if (loop_rseq_release() != 1)
		return 12;
	if ((int32_t)rs->cpu_id != RSEQ_CPU_ID_UNINITIALIZED)
		return 13;
	if (loop_rseq_release() != -EINVAL)
		return 14;
	if (sched_getcpu() < 0)
		return 15;
	/* Switched out and in again: the kernel writes the area no more. */
	usleep(1000);
	return (int32_t)rs->cpu_id == RSEQ_CPU_ID_UNINITIALIZED ? 0 : 16;
}

static void test_rseq_release(void **state)
{
	int status;

	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(rseq_child());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_io_dispatch),
		cmocka_unit_test(test_io_set_events),
		cmocka_unit_test(test_io_requires_nonblock_cloexec),
		cmocka_unit_test(test_io_edge_rearm),
		cmocka_unit_test(test_rearm_free_in_turn),
		cmocka_unit_test(test_free_during_dispatch),
		cmocka_unit_test(test_callback_error_stops),
		cmocka_unit_test(test_timers_order_and_rearm),
		cmocka_unit_test(test_timer_frees_expired_timer),
		cmocka_unit_test(test_timer_error_keeps_others),
		cmocka_unit_test(test_timer_wakeup),
		cmocka_unit_test(test_run_until_exit),
		cmocka_unit_test(test_turn_clock),
		cmocka_unit_test(test_turn_clock_io),
		cmocka_unit_test(test_signals),
		cmocka_unit_test(test_child_exit_and_kill),
		cmocka_unit_test(test_child_takes_ownership),
		cmocka_unit_test(test_rseq_release),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
