/* SPDX-License-Identifier: MIT */
/*
 * loop: the broker's single-threaded event loop.
 *
 * One epoll instance drives four kinds of source:
 *  - io:     an fd the caller owns (must already be O_NONBLOCK and O_CLOEXEC),
 *  - signal: delivered through one signalfd; the signal is blocked with
 *            sigprocmask when the first source for it is added, so no signal
 *            handler ever runs and nothing has to be async-signal-safe,
 *  - timer:  a one-shot CLOCK_MONOTONIC deadline kept in a min-heap; one
 *            timerfd, armed at or before the earliest deadline, wakes the
 *            wait (no fd per timer, no timeout on the wait),
 *  - child:  a pidfd the loop owns; when it becomes readable the loop reaps
 *            the child with waitid(P_PIDFD), so a pid is never reused under us.
 *
 * Any source may be freed at any time, including from inside any callback
 * (its own or another's) during dispatch: a freed source is unhooked at once
 * and never called again, and its memory is released after the batch.
 *
 * Callbacks return 0 to continue or a negative errno; a negative value stops
 * loop_run() and is returned from it (a broker fault, never a peer's).
 *
 * The loop is not thread-safe and signals are only routed correctly when the
 * process has one thread (or every other thread blocks the same signals).
 */
#ifndef CONDUIT_BROKER_LOOP_H
#define CONDUIT_BROKER_LOOP_H

#include <signal.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <sys/types.h>

struct loop;
struct loop_source;

#define LOOP_NO_DEADLINE UINT64_MAX

typedef int (*loop_io_fn)(struct loop_source *s, int fd, uint32_t revents, void *userdata);
typedef int (*loop_signal_fn)(struct loop_source *s, const struct signalfd_siginfo *si,
			      void *userdata);
typedef int (*loop_timer_fn)(struct loop_source *s, uint64_t now_ns, void *userdata);
/* si is the child's waitid() result: si_code CLD_EXITED / CLD_KILLED /
 * CLD_DUMPED, si_status the exit code or signal.  The child is reaped and the
 * pidfd closed before the call; the source stays allocated until freed. */
typedef int (*loop_child_fn)(struct loop_source *s, const siginfo_t *si, void *userdata);

/* CLOCK_MONOTONIC time in nanoseconds: inside a turn's I/O callbacks, the
 * time its wait returned; inside its timer callbacks, the time the timers
 * were checked (the now they are given); outside a turn, the current time.
 * So the deadlines, decisions and records of one turn cost no clock read
 * each. */
uint64_t loop_now_ns(void);

/* Give up the calling thread's restartable-sequence area, which glibc
 * registers at start-up: the kernel refreshes it at every switch into the
 * thread (about 0.1 us on these VMs, and the broker is switched in once per
 * message it carries), and the broker never reads it (glibc's
 * sched_getcpu() falls back to the vDSO).  Once, early in main(), before
 * any thread.  1 when released, 0 when glibc registered none, -EINVAL or
 * -EPERM when the kernel knows none by the lengths tried (32 bytes and
 * __rseq_size; a glibc that registers more keeps its area, which costs
 * time only).  Afterwards __rseq_size still says an area is there: the
 * broker must not link anything that uses rseq itself (librseq, per-CPU
 * allocators). */
int loop_rseq_release(void);

/* New loop (epoll, signalfd and timerfd, all O_CLOEXEC).  Errors: -errno,
 * -ENOMEM. */
int loop_new(struct loop **ret_loop);
/* Not from inside a callback.  Frees every remaining source (closing owned
 * pidfds without reaping, which
 * leaves those children to the caller's parent) and the loop.  Signals the
 * loop blocked stay blocked: unblocking could deliver a pending signal with
 * its default action.  Accepts NULL. */
void loop_free(struct loop *l);

/* Watch fd for events (EPOLLIN, EPOLLOUT, ...; level-triggered unless
 * EPOLLET, which marks a wake-up the callback never reads).  The fd is not
 * owned: free the source before closing it.  Errors: -EINVAL when fd is
 * not FD_CLOEXEC, or not O_NONBLOCK without EPOLLET; -EEXIST when already
 * watched, -errno. */
int loop_add_io(struct loop *l, int fd, uint32_t events, loop_io_fn fn, void *userdata,
		struct loop_source **ret_source);
/* Change the events an io source waits for.  Errors: -EINVAL, -errno. */
int loop_io_set_events(struct loop_source *s, uint32_t events);
/* Call an io source again on the next turn, with EPOLLIN, after the
 * sources that turn's wait finds ready (which does not sleep then), once
 * however often it is asked, and not at all if it is freed first: for an
 * edge-triggered source whose callback left work for its next turn.  Kept
 * in user space, no system call.  Errors: -EINVAL. */
int loop_io_rearm(struct loop_source *s);

/* Route signo to fn.  Blocks signo for the calling thread.  One source per
 * signal.  Errors: -EINVAL (bad or unblockable signal), -EBUSY, -errno. */
int loop_add_signal(struct loop *l, int signo, loop_signal_fn fn, void *userdata,
		    struct loop_source **ret_source);

/* One-shot timer at deadline_ns (CLOCK_MONOTONIC, absolute), or disarmed when
 * LOOP_NO_DEADLINE.  A deadline in the past fires on the next iteration. */
int loop_add_timer(struct loop *l, uint64_t deadline_ns, loop_timer_fn fn, void *userdata,
		   struct loop_source **ret_source);
/* Re-arm (or disarm with LOOP_NO_DEADLINE), also from inside its callback.
 * Errors: -EINVAL when s is not a timer. */
int loop_timer_set(struct loop_source *s, uint64_t deadline_ns);

/* Watch a child through its pidfd.  Takes ownership of pidfd, also on
 * failure.  Errors: -EINVAL (not FD_CLOEXEC), -errno. */
int loop_add_child(struct loop *l, int pidfd, loop_child_fn fn, void *userdata,
		   struct loop_source **ret_source);
/* Send sig to the child via its pidfd.  Errors: -ESRCH once it was reaped,
 * -EINVAL when s is not a child source, -errno. */
int loop_child_kill(struct loop_source *s, int sig);

/* The fd behind an io or child source (-1 once the child is reaped). */
int loop_source_fd(const struct loop_source *s);
/* Unhook and free a source; safe from any callback.  Accepts NULL.  A child
 * source that was not reaped yet has its pidfd closed unreaped. */
void loop_source_free(struct loop_source *s);

/* Dispatch one batch: wait up to timeout_ns (LOOP_NO_DEADLINE: until the
 * next timer or event), run the ready callbacks and expired timers.
 * Returns the number of callbacks run, or the first negative value.  It may
 * return 0 before the next timer: when the loop's timerfd was armed for an
 * earlier deadline that has since moved later or been disarmed. */
int loop_run_once(struct loop *l, uint64_t timeout_ns);
/* Dispatch until loop_exit(); returns its code (>= 0) or a callback's error. */
int loop_run(struct loop *l);
/* Make loop_run() return code (>= 0) after the current batch. */
void loop_exit(struct loop *l, int code);

/* Number of live sources (for tests and the broker's own resource checks). */
size_t loop_source_count(const struct loop *l);

#endif
