/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "supervise.h"

/* The whole state machine: every state change goes through sup_set(), which
 * refuses anything this table does not list. */
static const bool transitions[SUP_STATE_COUNT][SUP_STATE_COUNT] = {
	[SUP_STOPPED] = {[SUP_STARTING] = true},
	[SUP_STARTING] = {[SUP_READY] = true,
			  [SUP_STOPPING] = true,
			  [SUP_BACKOFF] = true,
			  [SUP_STOPPED] = true,
			  [SUP_FAILED] = true},
	[SUP_READY] = {[SUP_STOPPING] = true,
		       [SUP_BACKOFF] = true,
		       [SUP_STOPPED] = true,
		       [SUP_FAILED] = true},
	[SUP_STOPPING] = {[SUP_STOPPED] = true, [SUP_BACKOFF] = true, [SUP_FAILED] = true},
	[SUP_BACKOFF] = {[SUP_STARTING] = true, [SUP_STOPPED] = true},
	[SUP_FAILED] = {[SUP_STARTING] = true},
};

bool sup_transition_allowed(enum sup_state from, enum sup_state to)
{
	if ((unsigned)from >= SUP_STATE_COUNT || (unsigned)to >= SUP_STATE_COUNT)
		return false;
	return transitions[from][to];
}

const char *sup_state_name(enum sup_state s)
{
	switch (s) {
	case SUP_STOPPED:
		return "stopped";
	case SUP_STARTING:
		return "starting";
	case SUP_READY:
		return "ready";
	case SUP_STOPPING:
		return "stopping";
	case SUP_BACKOFF:
		return "backoff";
	case SUP_FAILED:
		return "failed";
	case SUP_STATE_COUNT:
		break;
	}
	return "invalid";
}

static int sup_set(struct sup_layer *l, enum sup_state to)
{
	if (!sup_transition_allowed(l->state, to))
		return -EINVAL;
	l->state = to;
	return 0;
}

/* now + delta, saturating: a deadline that overflows is "never". */
static uint64_t after(uint64_t now, uint64_t delta)
{
	uint64_t t;

	if (__builtin_add_overflow(now, delta, &t))
		return SUP_NO_DEADLINE;
	return t;
}

int sup_config_check(const struct sup_config *cfg)
{
	if (!cfg)
		return -EINVAL;
	if (cfg->restart != SUP_RESTART_NEVER && cfg->restart != SUP_RESTART_ON_FAILURE &&
	    cfg->restart != SUP_RESTART_ALWAYS)
		return -EINVAL;
	if (cfg->backoff_min_ns == 0 || cfg->backoff_max_ns < cfg->backoff_min_ns)
		return -EINVAL;
	if (cfg->max_restarts == 0 || cfg->max_restarts > SUP_RESTARTS_MAX || cfg->window_ns == 0)
		return -EINVAL;
	if (cfg->stop_timeout_ns == 0)
		return -EINVAL;
	return 0;
}

int sup_init(struct sup_layer *l, const struct sup_config *cfg)
{
	int r = sup_config_check(cfg);

	if (r < 0 || !l)
		return -EINVAL;
	memset(l, 0, sizeof(*l));
	l->cfg = *cfg;
	l->state = SUP_STOPPED;
	l->deadline = SUP_NO_DEADLINE;
	l->ready_since = SUP_NO_DEADLINE;
	return 0;
}

uint64_t sup_backoff_ns(const struct sup_config *cfg, uint32_t attempt)
{
	uint64_t v;

	if (attempt >= 64 || cfg->backoff_min_ns > (UINT64_MAX >> attempt))
		return cfg->backoff_max_ns;
	v = cfg->backoff_min_ns << attempt;
	return v > cfg->backoff_max_ns ? cfg->backoff_max_ns : v;
}

uint64_t sup_deadline(const struct sup_layer *l)
{
	return l->deadline;
}

static int enter_starting(struct sup_layer *l, uint64_t now)
{
	int r = sup_set(l, SUP_STARTING);

	if (r < 0)
		return r;
	l->fail_pending = false;
	l->kill_sent = false;
	l->ready_since = SUP_NO_DEADLINE;
	l->deadline =
		l->cfg.start_timeout_ns ? after(now, l->cfg.start_timeout_ns) : SUP_NO_DEADLINE;
	return SUP_ACT_SPAWN;
}

int sup_start(struct sup_layer *l, uint64_t now)
{
	if (l->state != SUP_STOPPED && l->state != SUP_FAILED)
		return -EINVAL;
	/* An explicit start is a fresh history: no backoff, no crash count. */
	l->attempt = 0;
	l->n_restarts = 0;
	return enter_starting(l, now);
}

int sup_ready(struct sup_layer *l, uint64_t now)
{
	if (sup_set(l, SUP_READY) < 0)
		return -EINVAL;
	l->ready_since = now;
	l->deadline = l->cfg.heartbeat_ns ? after(now, l->cfg.heartbeat_ns) : SUP_NO_DEADLINE;
	return SUP_ACT_NONE;
}

int sup_heartbeat(struct sup_layer *l, uint64_t now)
{
	if (l->state != SUP_READY)
		return -EINVAL;
	if (l->cfg.heartbeat_ns)
		l->deadline = after(now, l->cfg.heartbeat_ns);
	return SUP_ACT_NONE;
}

int sup_stop(struct sup_layer *l, uint64_t now)
{
	switch (l->state) {
	case SUP_STOPPED:
	case SUP_FAILED:
	case SUP_STOPPING:
		return SUP_ACT_NONE;
	case SUP_BACKOFF:
		/* No process exists while backing off. */
		l->deadline = SUP_NO_DEADLINE;
		return sup_set(l, SUP_STOPPED) < 0 ? -EINVAL : SUP_ACT_NONE;
	case SUP_STARTING:
	case SUP_READY:
		(void)sup_set(l, SUP_STOPPING);
		l->fail_pending = false;
		l->deadline = after(now, l->cfg.stop_timeout_ns);
		return SUP_ACT_TERM;
	case SUP_STATE_COUNT:
		break;
	}
	return -EINVAL;
}

/* Kill now; the exit that follows counts as a failure unless a stop was
 * already under way. */
static int kill_for_fault(struct sup_layer *l)
{
	if (l->state == SUP_STOPPING) {
		if (l->kill_sent)
			return SUP_ACT_NONE;
	} else {
		if (sup_set(l, SUP_STOPPING) < 0)
			return -EINVAL;
		l->fail_pending = true;
	}
	l->kill_sent = true;
	/* SIGKILL cannot be refused: the exit will come, no deadline needed. */
	l->deadline = SUP_NO_DEADLINE;
	return SUP_ACT_KILL;
}

int sup_fault(struct sup_layer *l, uint64_t now)
{
	(void)now;
	if (l->state != SUP_STARTING && l->state != SUP_READY && l->state != SUP_STOPPING)
		return -EINVAL;
	return kill_for_fault(l);
}

/* Count a restart at now; false when it would exceed max_restarts within the
 * window (a crash loop). */
static bool restart_budget(struct sup_layer *l, uint64_t now)
{
	uint32_t keep = 0;

	for (uint32_t i = 0; i < l->n_restarts; i++)
		if (now - l->restarts[i] < l->cfg.window_ns)
			l->restarts[keep++] = l->restarts[i];
	l->n_restarts = keep;
	if (l->n_restarts >= l->cfg.max_restarts)
		return false;
	l->restarts[l->n_restarts++] = now;
	return true;
}

int sup_exited(struct sup_layer *l, enum sup_exit how, uint64_t now)
{
	bool failure, restart;
	uint64_t stable;

	if (how != SUP_EXIT_CLEAN && how != SUP_EXIT_FAILURE)
		return -EINVAL;
	switch (l->state) {
	case SUP_STOPPING:
		if (!l->fail_pending) {
			l->deadline = SUP_NO_DEADLINE;
			return sup_set(l, SUP_STOPPED) < 0 ? -EINVAL : SUP_ACT_NONE;
		}
		break;
	case SUP_STARTING:
	case SUP_READY:
		break;
	default:
		return -EINVAL;
	}
	failure = how == SUP_EXIT_FAILURE || l->fail_pending;
	/* A layer that ran well for a while earns a fresh backoff; one that
	 * dies right after its hello keeps climbing. */
	stable = l->cfg.stable_ns ? l->cfg.stable_ns : l->cfg.window_ns;
	if (l->ready_since != SUP_NO_DEADLINE && now >= l->ready_since &&
	    now - l->ready_since >= stable)
		l->attempt = 0;
	l->ready_since = SUP_NO_DEADLINE;
	l->fail_pending = false;
	l->kill_sent = false;
	l->deadline = SUP_NO_DEADLINE;
	restart = l->cfg.restart == SUP_RESTART_ALWAYS ||
		  (l->cfg.restart == SUP_RESTART_ON_FAILURE && failure);
	if (!restart)
		return sup_set(l, failure ? SUP_FAILED : SUP_STOPPED) < 0 ? -EINVAL : SUP_ACT_NONE;
	if (!restart_budget(l, now))
		return sup_set(l, SUP_FAILED) < 0 ? -EINVAL : SUP_ACT_NONE;
	if (sup_set(l, SUP_BACKOFF) < 0)
		return -EINVAL;
	l->deadline = after(now, sup_backoff_ns(&l->cfg, l->attempt));
	if (l->attempt < UINT32_MAX)
		l->attempt++;
	return SUP_ACT_NONE;
}

int sup_tick(struct sup_layer *l, uint64_t now)
{
	if (l->deadline == SUP_NO_DEADLINE || now < l->deadline)
		return SUP_ACT_NONE;
	switch (l->state) {
	case SUP_STARTING: /* no hello in time */
	case SUP_READY:	   /* stopped answering */
		return kill_for_fault(l);
	case SUP_STOPPING: /* ignored SIGTERM */
		l->kill_sent = true;
		l->deadline = SUP_NO_DEADLINE;
		return SUP_ACT_KILL;
	case SUP_BACKOFF:
		return enter_starting(l, now);
	case SUP_STOPPED:
	case SUP_FAILED:
	case SUP_STATE_COUNT:
		break;
	}
	l->deadline = SUP_NO_DEADLINE;
	return SUP_ACT_NONE;
}
