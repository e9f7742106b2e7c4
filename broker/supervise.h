/* SPDX-License-Identifier: MIT */
/*
 * supervise: what the broker does with one layer's process over time.
 *
 * Pure logic: no I/O, no clock reads, no allocation.  Every entry point takes
 * the current time (CLOCK_MONOTONIC ns) from the caller, so tests drive it
 * with a fake clock, and returns the action the broker must carry out
 * (spawn, SIGTERM, SIGKILL).  sup_deadline() tells the broker when to call
 * sup_tick() next.
 *
 * States and the transitions between them are in one table (see
 * sup_transition_allowed()); an event that is not valid in the current state
 * returns -EINVAL and changes nothing.
 *
 *   stopped --start--> starting --ready--> ready
 *   starting/ready --exit, restart due--> backoff --deadline--> starting
 *   starting/ready --start timeout, silence, violation--> stopping (SIGKILL),
 *                                          then counted as a failed exit
 *   starting/ready/backoff --stop--> stopping --exit--> stopped
 *   stopping --stop timeout--> SIGKILL (stays stopping until the exit)
 *   any restart that makes more than max_restarts within window --> failed
 */
#ifndef CONDUIT_BROKER_SUPERVISE_H
#define CONDUIT_BROKER_SUPERVISE_H

#include <stdbool.h>
#include <stdint.h>

#define SUP_RESTARTS_MAX 64 /* largest max_restarts a policy may ask for */
#define SUP_NO_DEADLINE	 UINT64_MAX

enum sup_state {
	SUP_STOPPED,
	SUP_STARTING, /* spawned, no valid hello yet */
	SUP_READY,
	SUP_STOPPING, /* signalled, waiting for the exit */
	SUP_BACKOFF,  /* waiting to restart */
	SUP_FAILED,   /* crash loop or restart never after a failure */
	SUP_STATE_COUNT
};

enum sup_restart {
	SUP_RESTART_NEVER,
	SUP_RESTART_ON_FAILURE,
	SUP_RESTART_ALWAYS,
};

enum sup_action {
	SUP_ACT_NONE,
	SUP_ACT_SPAWN, /* start the process; report sup_spawned() or sup_exited() */
	SUP_ACT_TERM,  /* SIGTERM through the pidfd */
	SUP_ACT_KILL,  /* SIGKILL through the pidfd */
};

/* Why the process is gone or must go, for sup_exited() / sup_fault(). */
enum sup_exit {
	SUP_EXIT_CLEAN,	  /* exit status 0 */
	SUP_EXIT_FAILURE, /* non-zero status, signal, failed spawn */
};

struct sup_config {
	enum sup_restart restart;
	uint64_t backoff_min_ns;   /* first delay, > 0 */
	uint64_t backoff_max_ns;   /* cap, >= backoff_min_ns */
	uint32_t max_restarts;	   /* 1..SUP_RESTARTS_MAX restarts ... */
	uint64_t window_ns;	   /* ... per this window (> 0) */
	uint64_t start_timeout_ns; /* spawn to hello; 0 = none */
	uint64_t heartbeat_ns;	   /* silence in ready before kill; 0 = none */
	uint64_t stop_timeout_ns;  /* SIGTERM to SIGKILL, > 0 */
	uint64_t stable_ns;	   /* ready this long resets the backoff; 0 = window */
};

struct sup_layer {
	struct sup_config cfg;
	enum sup_state state;
	uint32_t attempt;  /* consecutive failed runs, drives the backoff */
	bool fail_pending; /* killed for a fault: its exit counts as failure */
	bool kill_sent;
	uint64_t deadline; /* of the current state, SUP_NO_DEADLINE if none */
	uint64_t ready_since;
	uint64_t restarts[SUP_RESTARTS_MAX]; /* restart times in the window, oldest first */
	uint32_t n_restarts;
};

/* Check a configuration.  Errors: -EINVAL naming nothing (the policy
 * compiler gives the diagnostics; this is the broker's own assertion). */
int sup_config_check(const struct sup_config *cfg);

/* Initialise in SUP_STOPPED.  Errors: -EINVAL from sup_config_check(). */
int sup_init(struct sup_layer *l, const struct sup_config *cfg);

/* Whether the table allows from -> to. */
bool sup_transition_allowed(enum sup_state from, enum sup_state to);
const char *sup_state_name(enum sup_state s);

/* Each returns the action (>= 0, enum sup_action) or -EINVAL when the event
 * is not valid in the current state. */
int sup_start(struct sup_layer *l, uint64_t now);     /* stopped/failed -> starting */
int sup_ready(struct sup_layer *l, uint64_t now);     /* starting -> ready */
int sup_heartbeat(struct sup_layer *l, uint64_t now); /* ready: push the deadline */
int sup_stop(struct sup_layer *l, uint64_t now);      /* operator or broker shutdown */
/* The layer misbehaved (protocol violation, failed hello): kill it and
 * restart it by its policy as after a failure. */
int sup_fault(struct sup_layer *l, uint64_t now);
/* The process is gone (reaped through its pidfd), or the spawn failed. */
int sup_exited(struct sup_layer *l, enum sup_exit how, uint64_t now);
/* Call when now >= sup_deadline(). */
int sup_tick(struct sup_layer *l, uint64_t now);

uint64_t sup_deadline(const struct sup_layer *l);

/* Delay before restart number attempt (0-based): min * 2^attempt capped at
 * max, without overflow. */
uint64_t sup_backoff_ns(const struct sup_config *cfg, uint32_t attempt);

#endif
