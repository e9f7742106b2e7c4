/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/rseq.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "timeheap.h"

#define LOOP_BATCH 64

enum source_type {
	SOURCE_IO,
	SOURCE_SIGNAL,
	SOURCE_TIMER,
	SOURCE_CHILD,
};

struct loop_source {
	struct loop *loop;
	enum source_type type;
	bool dead;
	bool expired; /* on this batch's expired list and not re-armed since */
	void *userdata;
	union {
		loop_io_fn io;
		loop_signal_fn signal;
		loop_timer_fn timer;
		loop_child_fn child;
	} fn;
	int fd;		 /* io: borrowed; child: owned pidfd, -1 once reaped */
	uint32_t events; /* io */
	int signo;
	struct timeheap_node timer;	 /* deadline and heap position */
	struct loop_source *prev, *next; /* every live source */
	struct loop_source *next_dead;
	struct loop_source *next_expired;
	struct loop_source *next_again; /* io: on the loop's again list */
	bool again;			/* io: on that list, or on the one this
					 * turn works through */
	bool again_more;		/* io: asked again while on it */
	uint64_t turn;			/* io: the turn that last called it */
};

struct loop {
	int epfd;
	int sigfd;
	/* The timers' wake-up: armed at the earliest deadline or before it,
	 * so that the wait itself needs no timeout (see loop_arm_timers). */
	int tfd;
	uint64_t tfd_at; /* deadline it is armed at, 0: not armed */
	sigset_t sigmask;
	struct loop_source *signals[_NSIG];
	struct timeheap timers;
	struct loop_source *all;
	struct loop_source *dead; /* freed during dispatch, released after it */
	/* io sources to call again next turn, after its events (loop_io_rearm) */
	struct loop_source *again_head;
	struct loop_source **again_tail;
	uint64_t turn;
	size_t n_sources;
	bool dispatching;
	bool exit_requested;
	int exit_code;
};

/* epoll_pwait2 gives nanosecond timeouts; older kernels and valgrind lack it,
 * and then epoll_wait with the timeout rounded up to a millisecond is used,
 * which only ever wakes late, never early. */
static bool loop_no_pwait2;

/* While a turn's callbacks run (0 between turns): the time its wait
 * returned, for the I/O callbacks, then the time its timers were checked,
 * for the timer callbacks.  Two clock reads per turn instead of one per
 * deadline, decision and record.  The broker has one thread; a turn run
 * from inside another's callback keeps its own and gives the outer one
 * back. */
static uint64_t loop_turn_now;

static uint64_t clock_now_ns(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail with a valid pointer on Linux. */
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t loop_now_ns(void)
{
	return loop_turn_now ? loop_turn_now : clock_now_ns();
}

/* ---- sources ---- */

static struct loop_source *source_new(struct loop *l, enum source_type type, void *userdata)
{
	struct loop_source *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->loop = l;
	s->type = type;
	s->userdata = userdata;
	s->fd = -1;
	s->timer = (struct timeheap_node)TIMEHEAP_NODE_INIT;
	return s;
}

static void source_link(struct loop *l, struct loop_source *s)
{
	s->next = l->all;
	if (l->all)
		l->all->prev = s;
	l->all = s;
	l->n_sources++;
}

static int fd_check_cloexec(int fd)
{
	int f = fcntl(fd, F_GETFD);

	if (f < 0)
		return -errno;
	return (f & FD_CLOEXEC) ? 0 : -EINVAL;
}

int loop_rseq_release(void)
{
	/* glibc's own length, which __rseq_size does not always say (Debian's
	 * 2.36, with the upstream fix of the rseq extension backported,
	 * registers 32 bytes and says 20); a wrong one changes nothing. */
	const unsigned int lens[] = {32, __rseq_size};
	void *area = (char *)__builtin_thread_pointer() + __rseq_offset;

	if (__rseq_size == 0)
		return 0;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		if (syscall(SYS_rseq, area, lens[i], RSEQ_FLAG_UNREGISTER, RSEQ_SIG) == 0)
			return 1;
	return -errno;
}

int loop_new(struct loop **ret_loop)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct loop *l;
	int r;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->sigfd = -1;
	l->tfd = -1;
	l->again_tail = &l->again_head;
	sigemptyset(&l->sigmask);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		r = -errno;
		goto out;
	}
	/* An empty signalfd exists from the start so adding a signal later is
	 * one mask update, never a new epoll registration that could fail. */
	l->sigfd = signalfd(-1, &l->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (l->sigfd < 0) {
		r = -errno;
		goto out;
	}
	ev.data.ptr = l; /* the loop itself marks the signalfd */
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->sigfd, &ev) < 0) {
		r = -errno;
		goto out;
	}
	l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (l->tfd < 0) {
		r = -errno;
		goto out;
	}
	ev.data.ptr = &l->tfd; /* and its tfd field the timerfd */
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->tfd, &ev) < 0) {
		r = -errno;
		goto out;
	}
	*ret_loop = l;
	l = NULL;
	r = 0;
out:
	loop_free(l);
	return r;
}

static void source_unhook(struct loop_source *s)
{
	struct loop *l = s->loop;

	switch (s->type) {
	case SOURCE_IO:
		/* Fails only if the caller closed the fd first, and then the
		 * kernel already dropped the registration. */
		(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, s->fd, NULL);
		break;
	case SOURCE_CHILD:
		if (s->fd >= 0) {
			(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, s->fd, NULL);
			close(s->fd);
			s->fd = -1;
		}
		break;
	case SOURCE_SIGNAL:
		l->signals[s->signo] = NULL;
		sigdelset(&l->sigmask, s->signo);
		/* Shrinking the mask of an existing signalfd cannot fail. */
		(void)signalfd(l->sigfd, &l->sigmask, 0);
		break;
	case SOURCE_TIMER:
		timeheap_remove(&l->timers, &s->timer);
		break;
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		l->all = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	l->n_sources--;
}

/* Take s off the again list (a few sources at most: a linear scan).  A
 * source not found there is on the list the current turn works through:
 * it is freed only after the turn (loop_source_free defers it) and its
 * dead flag skips it, and its link must stay, or the sources behind it
 * would lose their call. */
static void again_unlink(struct loop *l, struct loop_source *s)
{
	struct loop_source **pp = &l->again_head;

	if (!s->again)
		return;
	while (*pp && *pp != s)
		pp = &(*pp)->next_again;
	if (!*pp)
		return;
	*pp = s->next_again;
	if (l->again_tail == &s->next_again)
		l->again_tail = pp;
	s->next_again = NULL;
	s->again = false;
	s->again_more = false;
}

void loop_source_free(struct loop_source *s)
{
	struct loop *l;

	if (!s || s->dead)
		return;
	l = s->loop;
	again_unlink(l, s);
	source_unhook(s);
	s->dead = true;
	s->expired = false;
	if (l->dispatching) {
		/* An event for s may still sit in this batch: keep the memory
		 * until the batch ends, the dead flag stops any call. */
		s->next_dead = l->dead;
		l->dead = s;
		return;
	}
	free(s);
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	while (l->all)
		loop_source_free(l->all);
	while (l->dead) {
		struct loop_source *s = l->dead;

		l->dead = s->next_dead;
		free(s);
	}
	if (l->sigfd >= 0)
		close(l->sigfd);
	if (l->tfd >= 0)
		close(l->tfd);
	if (l->epfd >= 0)
		close(l->epfd);
	timeheap_free(&l->timers);
	free(l);
}

int loop_add_io(struct loop *l, int fd, uint32_t events, loop_io_fn fn, void *userdata,
		struct loop_source **ret_source)
{
	struct epoll_event ev = {.events = events};
	struct loop_source *s;
	int fl, r;

	if (!l || fd < 0 || !fn)
		return -EINVAL;
	/* The broker's invariant, enforced where every fd enters the loop: a
	 * blocking fd would stall every layer, an inheritable one would leak
	 * into the next spawned layer. */
	r = fd_check_cloexec(fd);
	if (r < 0)
		return r;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	/* An edge-triggered source is a wake-up its callback does not read
	 * (a layer's announcement eventfd): the open file may be shared
	 * with a process that clears O_NONBLOCK, which must not cost that
	 * process's channel its watch. */
	if (!(fl & O_NONBLOCK) && !(events & EPOLLET))
		return -EINVAL;
	s = source_new(l, SOURCE_IO, userdata);
	if (!s)
		return -ENOMEM;
	s->fn.io = fn;
	s->fd = fd;
	s->events = events;
	ev.data.ptr = s;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		r = -errno;
		free(s);
		return r;
	}
	source_link(l, s);
	if (ret_source)
		*ret_source = s;
	return 0;
}

int loop_io_set_events(struct loop_source *s, uint32_t events)
{
	struct epoll_event ev = {.events = events};

	if (!s || s->dead || s->type != SOURCE_IO)
		return -EINVAL;
	/* Callers re-state their interest after every message; most of the
	 * time nothing changed and the system call is saved. */
	if (events == s->events)
		return 0;
	ev.data.ptr = s;
	if (epoll_ctl(s->loop->epfd, EPOLL_CTL_MOD, s->fd, &ev) < 0)
		return -errno;
	s->events = events;
	return 0;
}

int loop_io_rearm(struct loop_source *s)
{
	if (!s || s->dead || s->type != SOURCE_IO)
		return -EINVAL;
	/* Kept in user space, not by EPOLL_CTL_MOD: a source with work
	 * left is common (a busy layer), and a system call per message for
	 * it is not.  The next turn does not sleep and calls it after the
	 * sources its wait found ready. */
	if (s->again) {
		s->again_more = true;
	} else {
		s->again = true;
		s->next_again = NULL;
		*s->loop->again_tail = s;
		s->loop->again_tail = &s->next_again;
	}
	return 0;
}

int loop_add_signal(struct loop *l, int signo, loop_signal_fn fn, void *userdata,
		    struct loop_source **ret_source)
{
	struct loop_source *s = NULL;
	sigset_t one, mask;
	int r;

	if (!l || !fn || signo <= 0 || signo >= _NSIG || signo == SIGKILL || signo == SIGSTOP)
		return -EINVAL;
	if (l->signals[signo])
		return -EBUSY;
	s = source_new(l, SOURCE_SIGNAL, userdata);
	if (!s)
		return -ENOMEM;
	s->fn.signal = fn;
	s->signo = signo;
	sigemptyset(&one);
	mask = l->sigmask;
	if (sigaddset(&one, signo) < 0 || sigaddset(&mask, signo) < 0) {
		r = -errno;
		goto out;
	}
	/* Block first: a signal arriving between the two calls then waits in
	 * the pending set and the signalfd reads it, instead of running the
	 * default action. */
	if (sigprocmask(SIG_BLOCK, &one, NULL) < 0 || signalfd(l->sigfd, &mask, 0) < 0) {
		r = -errno;
		goto out;
	}
	l->sigmask = mask;
	l->signals[signo] = s;
	source_link(l, s);
	if (ret_source)
		*ret_source = s;
	s = NULL;
	r = 0;
out:
	free(s);
	return r;
}

int loop_add_timer(struct loop *l, uint64_t deadline_ns, loop_timer_fn fn, void *userdata,
		   struct loop_source **ret_source)
{
	struct loop_source *s;
	int r;

	if (!l || !fn)
		return -EINVAL;
	s = source_new(l, SOURCE_TIMER, userdata);
	if (!s)
		return -ENOMEM;
	s->fn.timer = fn;
	source_link(l, s);
	r = loop_timer_set(s, deadline_ns);
	if (r < 0) {
		loop_source_free(s);
		return r;
	}
	if (ret_source)
		*ret_source = s;
	return 0;
}

int loop_timer_set(struct loop_source *s, uint64_t deadline_ns)
{
	struct loop *l;
	int r;

	if (!s || s->dead || s->type != SOURCE_TIMER)
		return -EINVAL;
	l = s->loop;
	s->expired = false;
	if (!timeheap_queued(&s->timer) && deadline_ns != LOOP_NO_DEADLINE) {
		r = timeheap_reserve(&l->timers);
		if (r < 0)
			return r;
	}
	timeheap_remove(&l->timers, &s->timer);
	s->timer.deadline = deadline_ns;
	if (deadline_ns != LOOP_NO_DEADLINE)
		timeheap_insert(&l->timers, &s->timer);
	return 0;
}

int loop_add_child(struct loop *l, int pidfd, loop_child_fn fn, void *userdata,
		   struct loop_source **ret_source)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct loop_source *s = NULL;
	int r;

	if (!l || pidfd < 0 || !fn) {
		r = -EINVAL;
		goto out;
	}
	r = fd_check_cloexec(pidfd);
	if (r < 0)
		goto out;
	s = source_new(l, SOURCE_CHILD, userdata);
	if (!s) {
		r = -ENOMEM;
		goto out;
	}
	s->fn.child = fn;
	s->fd = pidfd;
	ev.data.ptr = s;
	/* A pidfd turns readable when the child exits; the reap itself goes
	 * through the same pidfd, so no other process can be waited for. */
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, pidfd, &ev) < 0) {
		r = -errno;
		goto out;
	}
	source_link(l, s);
	if (ret_source)
		*ret_source = s;
	return 0;
out:
	free(s);
	if (pidfd >= 0)
		close(pidfd);
	return r;
}

int loop_child_kill(struct loop_source *s, int sig)
{
	if (!s || s->dead || s->type != SOURCE_CHILD)
		return -EINVAL;
	if (s->fd < 0)
		return -ESRCH;
	/* Signals go through the pidfd: the target is the process we forked
	 * even if its pid number has been reused since. */
	if (pidfd_send_signal(s->fd, sig, NULL, 0) < 0)
		return -errno;
	return 0;
}

int loop_source_fd(const struct loop_source *s)
{
	if (!s || s->dead || s->type == SOURCE_SIGNAL || s->type == SOURCE_TIMER)
		return -1;
	return s->fd;
}

size_t loop_source_count(const struct loop *l)
{
	return l ? l->n_sources : 0;
}

/* ---- dispatch ---- */

static int dispatch_signals(struct loop *l, int *ran)
{
	struct signalfd_siginfo si;

	for (;;) {
		ssize_t n = read(l->sigfd, &si, sizeof(si));
		struct loop_source *s;
		int r;

		if (n < 0) {
			if (errno == EAGAIN)
				return 0;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if ((size_t)n != sizeof(si))
			return -EIO;
		if (si.ssi_signo >= _NSIG)
			continue;
		s = l->signals[si.ssi_signo];
		if (!s || s->dead)
			continue;
		(*ran)++;
		r = s->fn.signal(s, &si, s->userdata);
		if (r < 0)
			return r;
	}
}

static int dispatch_child(struct loop_source *s, int *ran)
{
	siginfo_t si = {0};

	/* WNOHANG: readability can be spurious only in theory, but a wait
	 * that blocks the whole broker must never be possible. */
	if (waitid((idtype_t)P_PIDFD, (id_t)s->fd, &si, WEXITED | WNOHANG) < 0)
		return -errno;
	if (si.si_pid == 0)
		return 0;
	(void)epoll_ctl(s->loop->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	s->fd = -1;
	(*ran)++;
	return s->fn.child(s, &si, s->userdata);
}

static struct loop_source *timer_source(struct timeheap_node *n)
{
	return (struct loop_source *)(void *)((char *)n - offsetof(struct loop_source, timer));
}

static int dispatch_timers(struct loop *l, int *ran)
{
	struct loop_source *expired = NULL, **tail = &expired, *s;
	uint64_t now = loop_now_ns();
	struct timeheap_node *n;
	int r = 0;

	/* Detach everything due now before calling anyone, so a callback that
	 * re-arms at or before now runs in the next batch, not in a loop. */
	while ((n = timeheap_peek(&l->timers)) && n->deadline <= now) {
		s = timer_source(n);
		timeheap_remove(&l->timers, n);
		s->expired = true;
		s->next_expired = NULL;
		*tail = s;
		tail = &s->next_expired;
	}
	for (s = expired; s && r >= 0; s = s->next_expired) {
		if (s->dead || !s->expired)
			continue;
		s->expired = false;
		s->timer.deadline = LOOP_NO_DEADLINE;
		(*ran)++;
		r = s->fn.timer(s, now, s->userdata);
	}
	/* A failing callback stops the batch; timers not yet run stay armed
	 * at their deadline (the heap has room: they just left it). */
	for (; s; s = s->next_expired)
		if (!s->dead && s->expired)
			(void)loop_timer_set(s, s->timer.deadline);
	return r;
}

static int loop_wait(struct loop *l, struct epoll_event *events, uint64_t timeout_ns)
{
	int n;

	if (!loop_no_pwait2) {
		struct timespec ts = {
			.tv_sec = (time_t)(timeout_ns / 1000000000u),
			.tv_nsec = (long)(timeout_ns % 1000000000u),
		};

		n = epoll_pwait2(l->epfd, events, LOOP_BATCH,
				 timeout_ns == LOOP_NO_DEADLINE ? NULL : &ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		loop_no_pwait2 = true;
	}
	if (timeout_ns == LOOP_NO_DEADLINE)
		return epoll_wait(l->epfd, events, LOOP_BATCH, -1);
	uint64_t ms = timeout_ns / 1000000u + (timeout_ns % 1000000u != 0);
	return epoll_wait(l->epfd, events, LOOP_BATCH, ms > INT32_MAX ? INT32_MAX : (int)ms);
}

/* Before a wait that may sleep: make sure the timerfd fires no later than
 * the earliest deadline.  It stays armed across turns, and a deadline that
 * moves later (a call answered before its timeout) leaves it armed early:
 * one turn with nothing due when it fires, then it is armed again.  So a
 * routed call, whose timeout is set and cleared within microseconds,
 * rarely costs a timerfd_settime() (at most once each time the timerfd
 * fires, when that timeout is then the earliest deadline), and the wait
 * needs no timeout: a timed epoll wait starts and cancels a kernel timer
 * every time it sleeps, which costs about 0.35 us per wait on the
 * project's VMs (docs/performance.md, change 18).  Returns false when the
 * timerfd cannot be armed; the wait then takes the deadline as its
 * timeout, as it did before. */
static bool loop_arm_timers(struct loop *l)
{
	struct timeheap_node *n = timeheap_peek(&l->timers);

	if (!n || (l->tfd_at != 0 && l->tfd_at <= n->deadline))
		return true;
	/* An it_value of zero would disarm; a deadline already past fires at
	 * once. */
	uint64_t at = n->deadline ? n->deadline : 1;
	struct itimerspec its = {
		.it_value = {.tv_sec = (time_t)(at / 1000000000u),
			     .tv_nsec = (long)(at % 1000000000u)},
	};
	if (timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		return false;
	l->tfd_at = at;
	return true;
}

/* The timerfd fired: it is disarmed, and the turn's timers run as in every
 * turn, against the clock. */
static void loop_timerfd_drain(struct loop *l)
{
	uint64_t ticks;

	if (read(l->tfd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks))
		l->tfd_at = 0;
}

int loop_run_once(struct loop *l, uint64_t timeout_ns)
{
	struct epoll_event events[LOOP_BATCH];
	struct loop_source *again;
	int n, r = 0, ran = 0;

	if (!l)
		return -EINVAL;
	if (l->dispatching)
		return -EBUSY;
	/* Sources to call again: the turn does not sleep. */
	if (l->again_head)
		timeout_ns = 0;
	if (timeout_ns != 0 && !loop_arm_timers(l) && timeheap_peek(&l->timers)) {
		uint64_t now = clock_now_ns(), next = timeheap_peek(&l->timers)->deadline;
		uint64_t until = next > now ? next - now : 0;

		if (until < timeout_ns)
			timeout_ns = until;
	}
	n = loop_wait(l, events, timeout_ns);
	if (n < 0) {
		if (errno != EINTR)
			return -errno;
		n = 0;
	}
	/* The sources to call again this turn (taken only now, so that a
	 * failed wait leaves them queued); a rearm from now on is for the
	 * next one. */
	again = l->again_head;
	l->again_head = NULL;
	l->again_tail = &l->again_head;
	l->turn++;
	l->dispatching = true;
	uint64_t outer_now = loop_turn_now;
	loop_turn_now = clock_now_ns();
	for (int i = 0; i < n && r >= 0; i++) {
		struct loop_source *s = events[i].data.ptr;

		if (events[i].data.ptr == l) {
			r = dispatch_signals(l, &ran);
			continue;
		}
		if (events[i].data.ptr == &l->tfd) {
			loop_timerfd_drain(l);
			continue;
		}
		if (s->dead)
			continue;
		if (s->type == SOURCE_CHILD) {
			r = dispatch_child(s, &ran);
			continue;
		}
		ran++;
		s->turn = l->turn;
		r = s->fn.io(s, s->fd, events[i].events, s->userdata);
	}
	while (again) {
		struct loop_source *s = again;

		again = s->next_again;
		s->next_again = NULL;
		s->again = false;
		if (s->dead)
			continue;
		/* Called by an event of this turn already (one call per
		 * turn): due again only if that call asked.  A turn that
		 * stops on an error leaves the call to the next one. */
		if (s->turn == l->turn || r < 0) {
			bool more = s->again_more || r < 0;
			s->again_more = false;
			if (more)
				(void)loop_io_rearm(s);
			continue;
		}
		s->again_more = false;
		ran++;
		s->turn = l->turn;
		r = s->fn.io(s, s->fd, EPOLLIN, s->userdata);
	}
	if (r >= 0) {
		/* Timers due while the I/O callbacks ran are due now. */
		loop_turn_now = clock_now_ns();
		r = dispatch_timers(l, &ran);
	}
	l->dispatching = false;
	loop_turn_now = outer_now;
	while (l->dead) {
		struct loop_source *s = l->dead;

		l->dead = s->next_dead;
		free(s);
	}
	return r < 0 ? r : ran;
}

int loop_run(struct loop *l)
{
	int r;

	if (!l)
		return -EINVAL;
	while (!l->exit_requested) {
		r = loop_run_once(l, LOOP_NO_DEADLINE);
		if (r < 0)
			return r;
	}
	l->exit_requested = false;
	return l->exit_code;
}

void loop_exit(struct loop *l, int code)
{
	if (!l)
		return;
	l->exit_requested = true;
	l->exit_code = code < 0 ? 0 : code;
}
