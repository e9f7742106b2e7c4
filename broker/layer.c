/* SPDX-License-Identifier: MIT */
/*
 * layer: one layer's processes over time.  Spawns through the sandbox with
 * a fresh channel and key per spawn, carries out the supervisor's actions,
 * audits spawns and exits, and logs the layer's stderr under its name.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "chan.h"
#include "sandbox.h"
#include "spawn.h"

#define SPAWN_STATUS_WAIT_MS 10000 /* sandbox set-up never waits on anything */

struct hook_data {
	const struct sandbox_plan *plan;
	int status_fd;
};

/* Runs in the child: sandbox_apply() confines, verifies and execs by fd,
 * and reports a failed step on its own status pipe. */
static int layer_hook(void *data, uint32_t *step)
{
	const struct hook_data *h = data;

	*step = SPAWN_STEP_HOOK_BASE;
	sandbox_apply(h->plan, h->status_fd);
}

static void sup_config_from_policy(const struct policy_restart *pr, uint64_t heartbeat_ns,
				   struct sup_config *c)
{
	memset(c, 0, sizeof(*c));
	c->restart = pr->mode == POLICY_RESTART_ALWAYS	? SUP_RESTART_ALWAYS
		     : pr->mode == POLICY_RESTART_NEVER ? SUP_RESTART_NEVER
							: SUP_RESTART_ON_FAILURE;
	c->backoff_min_ns = pr->backoff_min_ns ? pr->backoff_min_ns : 1;
	c->backoff_max_ns =
		pr->backoff_max_ns >= c->backoff_min_ns ? pr->backoff_max_ns : c->backoff_min_ns;
	if (pr->max == 0) {
		/* Unlimited: a 1 ns window never holds more than one restart. */
		c->max_restarts = SUP_RESTARTS_MAX;
		c->window_ns = 1;
	} else {
		c->max_restarts = pr->max > SUP_RESTARTS_MAX ? SUP_RESTARTS_MAX : pr->max;
		c->window_ns = pr->window_ns ? pr->window_ns : 1;
	}
	c->start_timeout_ns = BROKER_START_TIMEOUT;
	c->stop_timeout_ns = BROKER_STOP_TIMEOUT;
	c->heartbeat_ns = heartbeat_ns;
}

static int layer_apply(struct blayer *l, int act);

static int on_sup_timer(struct loop_source *s, uint64_t now, void *userdata)
{
	struct blayer *l = userdata;
	enum sup_state st = l->sup.state;

	(void)s;
	if ((st == SUP_STARTING || st == SUP_READY) && sup_deadline(&l->sup) <= now && l->chan &&
	    !l->dropped && !l->chan_ended) {
		/* Audited once, channel dropped, killed and restarted. */
		layer_violation(l, "timeout", NULL,
				st == SUP_STARTING ? "no hello before the start deadline"
						   : "no answer to the broker's heartbeat");
		return 0;
	}
	return layer_apply(l, sup_tick(&l->sup, now));
}

/* The grace after the layer ended its channel is over and the process is
 * still there: nothing can reach it any more, so it goes like a crash. */
static int on_fin_timer(struct loop_source *s, uint64_t now, void *userdata)
{
	struct blayer *l = userdata;
	int r;

	(void)s;
	(void)now;
	if (!l->child || !l->chan_ended)
		return 0;
	broker_log("layer %s (pid %d): still running after its channel %s: killed", l->name,
		   (int)l->pid, l->chan_eof ? "ended" : "closed");
	l->kept_running = true;
	r = loop_child_kill(l->child, SIGKILL);
	return r == -ESRCH ? 0 : r;
}

/* A stopping layer had BROKER_STOP_GRACE to leave after the broker's FIN
 * and is still there: now SIGTERM (the supervisor's deadline follows with
 * SIGKILL). */
static int on_term_timer(struct loop_source *s, uint64_t now, void *userdata)
{
	struct blayer *l = userdata;
	int r;

	(void)s;
	(void)now;
	if (!l->child || l->sup.state != SUP_STOPPING)
		return 0;
	r = loop_child_kill(l->child, SIGTERM);
	return r == -ESRCH ? 0 : r;
}

void layer_chan_ended(struct blayer *l, bool eof)
{
	enum sup_state st = l->sup.state;

	if (l->chan_ended)
		return;
	l->chan_ended = true;
	l->chan_eof = eof;
	loop_source_free(l->chan_src);
	l->chan_src = NULL;
	loop_source_free(l->chan_out_src);
	l->chan_out_src = NULL;
	/* A clean stop is a FIN each way; best effort, since a FIN queued
	 * behind data the layer never reads is replaced by EOF at the exit. */
	if (!eof && l->chan) {
		int r = cdt_chan_close(l->chan);
		(void)r;
	}
	/* Callers of this layer get conduit.unavailable now instead of a
	 * timeout; events and heartbeats stop. */
	dispatch_layer_gone(l);
	l->hello_done = false;
	l->nsubs = 0;
	l->ping_id = 0;
	(void)loop_timer_set(l->ping_timer, LOOP_NO_DEADLINE);
	/* Stopping layers have the supervisor's own SIGTERM-to-SIGKILL
	 * deadline; the others get the same grace to exit by themselves. */
	if (l->child && (st == SUP_STARTING || st == SUP_READY))
		(void)loop_timer_set(l->fin_timer, loop_now_ns() + BROKER_STOP_TIMEOUT);
}

void layer_reconfigure(struct blayer *l)
{
	struct sup_config cfg;

	if (!l->pl)
		return;
	sup_config_from_policy(&l->pl->restart, l->b->heartbeat_ns, &cfg);
	/* Pure data: the new restart policy counts from the next event on. */
	if (sup_config_check(&cfg) == 0)
		l->sup.cfg = cfg;
}

int layer_init(struct broker *b, struct blayer *l, const struct policy_layer *pl)
{
	struct sup_config cfg;
	int r;

	l->b = b;
	l->pl = pl;
	l->err_fd = -1;
	snprintf(l->name, sizeof(l->name), "%s", pl->spec.name);
	sup_config_from_policy(&pl->restart, b->heartbeat_ns, &cfg);
	r = sup_init(&l->sup, &cfg);
	if (r < 0)
		return r;
	r = loop_add_timer(b->loop, LOOP_NO_DEADLINE, dispatch_ping_due, l, &l->ping_timer);
	if (r < 0)
		return r;
	r = loop_add_timer(b->loop, LOOP_NO_DEADLINE, on_fin_timer, l, &l->fin_timer);
	if (r < 0)
		return r;
	r = loop_add_timer(b->loop, LOOP_NO_DEADLINE, on_term_timer, l, &l->term_timer);
	if (r < 0)
		return r;
	return loop_add_timer(b->loop, LOOP_NO_DEADLINE, on_sup_timer, l, &l->sup_timer);
}

static void err_flush_line(struct blayer *l, bool partial)
{
	if (l->errlen == 0)
		return;
	broker_log("layer %s: %.*s%s", l->name, (int)l->errlen, l->errbuf, partial ? "..." : "");
	l->errlen = 0;
}

static void err_close(struct blayer *l)
{
	err_flush_line(l, false);
	loop_source_free(l->err_src);
	l->err_src = NULL;
	if (l->err_fd >= 0)
		close(l->err_fd);
	l->err_fd = -1;
}

static int on_stderr(struct loop_source *s, int fd, uint32_t revents, void *userdata)
{
	struct blayer *l = userdata;
	char buf[4096];
	ssize_t n;

	(void)s;
	(void)revents;
	n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		err_close(l);
		return 0;
	}
	/* One log line per layer line, each prefixed with the layer's name;
	 * an over-long line is cut, never allowed to grow a buffer. */
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			err_flush_line(l, false);
			continue;
		}
		if (l->errlen == sizeof(l->errbuf))
			err_flush_line(l, true);
		l->errbuf[l->errlen++] = buf[i] >= 0x20 || buf[i] == '\t' ? buf[i] : '?';
	}
	return 0;
}

static void chan_close(struct blayer *l)
{
	dispatch_layer_gone(l);
	loop_source_free(l->chan_src);
	l->chan_src = NULL;
	loop_source_free(l->chan_out_src);
	l->chan_out_src = NULL;
	cdt_chan_free(l->chan);
	l->chan = NULL;
	l->hello_done = false;
	l->nsubs = 0;
	l->ping_id = 0;
	if (l->ping_timer)
		(void)loop_timer_set(l->ping_timer, LOOP_NO_DEADLINE);
	/* A dropped layer may have had megabytes queued; give the pages back
	 * to the system so one misbehaving layer does not leave the broker
	 * large for good. */
	(void)malloc_trim(0);
}

static int on_child_exit(struct loop_source *s, const siginfo_t *si, void *userdata)
{
	struct blayer *l = userdata;
	struct broker *b = l->b;
	struct audit_record rec = {.event = AUDIT_EV_EXIT, .layer = l->name};
	char sig[32];
	enum sup_exit how;
	int act;

	loop_source_free(s);
	l->child = NULL;
	rec.has_pid = true;
	rec.pid = l->pid;
	if (si->si_code == CLD_EXITED) {
		rec.has_code = true;
		rec.code = si->si_status;
		how = si->si_status == 0 ? SUP_EXIT_CLEAN : SUP_EXIT_FAILURE;
		if (si->si_status == SANDBOX_EXIT_SETUP)
			rec.reason = "sandbox set-up failed";
	} else {
		const char *abbr = sigabbrev_np(si->si_status);
		snprintf(sig, sizeof(sig), "SIG%s", abbr ? abbr : "UNKNOWN");
		rec.signal = sig;
		how = SUP_EXIT_FAILURE;
	}
	if (l->kept_running)
		rec.reason = l->chan_eof ? "channel-truncated, kept running: killed"
					 : "channel closed, kept running: killed";
	else if (l->chan_eof && !rec.reason)
		rec.reason = "channel-truncated";
	(void)broker_audit(b, &rec);
	if (rec.signal)
		broker_log("layer %s (pid %d) killed by %s", l->name, (int)l->pid, rec.signal);
	else
		broker_log("layer %s (pid %d) exited with %lld", l->name, (int)l->pid,
			   (long long)rec.code);
	chan_close(l);
	if (l->err_fd >= 0) {
		/* Whatever the layer wrote last is still in the pipe. */
		(void)on_stderr(NULL, l->err_fd, 0, l);
		err_close(l);
	}
	sandbox_plan_free(l->plan);
	l->plan = NULL;
	l->dropped = false;
	l->chan_eof = false;
	l->chan_ended = false;
	l->kept_running = false;
	(void)loop_timer_set(l->fin_timer, LOOP_NO_DEADLINE);
	(void)loop_timer_set(l->term_timer, LOOP_NO_DEADLINE);
	act = sup_exited(&l->sup, how, loop_now_ns());
	if (act < 0)
		return act;
	if (l->sup.state == SUP_FAILED) {
		broker_log("layer %s failed: not restarted", l->name);
		(void)broker_audit_simple(b, AUDIT_EV_ALARM, l, "layer-failed",
					  l->sup.cfg.restart == SUP_RESTART_NEVER
						  ? "exited, restart never"
						  : "crash loop: restart budget exhausted");
	}
	act = layer_apply(l, act);
	if (act < 0)
		return act;
	if (l->sup.state == SUP_STOPPED && l->restart_after_stop && l->pl && !b->stopping) {
		l->restart_after_stop = false;
		return layer_start(l);
	}
	/* A dependency that gave up no longer holds its dependents back. */
	if (l->sup.state == SUP_STOPPED || l->sup.state == SUP_FAILED) {
		act = broker_start_due(b);
		if (act < 0)
			return act;
	}
	broker_check_done(b);
	return 0;
}

/* Wait, bounded, until fd is readable: the child's set-up never blocks, so
 * this only guards against a broken kernel or a stopped child. */
static int wait_readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int n;

	do
		n = poll(&p, 1, SPAWN_STATUS_WAIT_MS);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

static void close_pair(int fd[2])
{
	for (int i = 0; i < 2; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	fd[0] = fd[1] = -1;
}

/* Spawn one process of l.  Returns 0 when it runs (or died in set-up: its
 * exit arrives through the pidfd), a negative errno for a local fault. */
static int layer_spawn(struct blayer *l)
{
	struct broker *b = l->b;
	const struct layer_spec *spec = &l->pl->spec;
	int sv[2] = {-1, -1}, keyp[2] = {-1, -1}, errp[2] = {-1, -1}, sbp[2] = {-1, -1};
	struct sandbox_options so;
	struct spawn_child child = {.pidfd = -1, .status_fd = -1};
	struct spawn_failure sf;
	struct sandbox_status ss;
	struct hook_data hd;
	cdt_keys *keys = NULL;
	const int keep[] = {3, 4};
	char *argv[] = {l->name, NULL};
	char *envp[] = {NULL};
	int r;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ||
	    pipe2(keyp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 || pipe2(sbp, O_CLOEXEC) < 0) {
		r = -errno;
		goto out;
	}
	if (fcntl(errp[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0) {
		r = -errno;
		goto out;
	}
	/* In the child, spawn places the channel at 3, the key pipe at 4 and
	 * the stderr pipe at 1 and 2; the sandbox keeps exactly those. */
	sandbox_options_init(&so);
	so.keep_fds = keep;
	so.nkeep = 2;
	so.stdio[1] = 1;
	so.stdio[2] = 2;
	so.env_set = sandbox_env_layer;
	if (spec->user_kind == LAYER_USER_DYNAMIC)
		so.dynuser = broker_dynuser_next(b);
	r = sandbox_plan_new(spec, &so, &l->plan);
	if (r < 0) {
		broker_log("layer %s: sandbox plan: %s", l->name, strerror(-r));
		goto out;
	}
	hd.plan = l->plan;
	hd.status_fd = sbp[1];
	{
		const struct spawn_fd fds[] = {
			{sv[1], 3}, {keyp[0], 4}, {errp[1], 1}, {errp[1], 2}};
		const struct spawn_opts opts = {
			.path = spec->exec,
			.exec_fd = -1,
			.argv = argv,
			.envp = envp,
			.fds = fds,
			.n_fds = 4,
			.hook = layer_hook,
			.hook_data = &hd,
		};
		r = spawn_start(&opts, &child);
	}
	if (r < 0)
		goto out;
	l->pid = child.pid;
	close(sv[1]);
	close(keyp[0]);
	close(errp[1]);
	close(sbp[1]);
	sv[1] = keyp[0] = errp[1] = sbp[1] = -1;
	r = loop_add_child(b->loop, child.pidfd, on_child_exit, l, &l->child);
	child.pidfd = -1;
	if (r < 0)
		goto out;
	l->err_fd = errp[0];
	errp[0] = -1;
	r = loop_add_io(b->loop, l->err_fd, EPOLLIN, on_stderr, l, &l->err_src);
	if (r < 0)
		goto out;
	/* The spawn status pipe ends when the sandbox closes every fd it does
	 * not keep (a record: a step before the sandbox failed); the
	 * sandbox's own pipe ends only at exec.  Both are read before the
	 * key is written, so a layer whose confinement failed never gets it. */
	r = wait_readable(child.status_fd);
	if (r < 0)
		goto out;
	r = spawn_status_read(child.status_fd, &sf);
	if (r == 1) {
		broker_log("layer %s: spawn step %s failed: %s", l->name, spawn_step_name(sf.step),
			   strerror(sf.err));
		(void)broker_audit_simple(b, AUDIT_EV_ALARM, l, "sandbox-setup-failed",
					  spawn_step_name(sf.step));
		r = 0;
		goto out;
	}
	if (r < 0)
		goto out;
	r = wait_readable(sbp[0]);
	if (r >= 0)
		r = sandbox_status_read(sbp[0], &ss);
	if (r == 1) {
		broker_log("layer %s: sandbox step %s failed: %s", l->name,
			   sandbox_step_name(ss.step), strerror(ss.err));
		(void)broker_audit_simple(b, AUDIT_EV_ALARM, l, "sandbox-setup-failed",
					  sandbox_step_name(ss.step));
		r = 0;
		goto out;
	}
	if (r < 0)
		goto out;
	r = cdt_keys_new(CDT_SUITE_AUTO, &keys);
	if (r < 0)
		goto out;
	/* A dead layer closes its end: EPIPE is its exit, not our fault. */
	r = cdt_keys_send(keys, keyp[1]);
	if (r < 0 && r != -EPIPE)
		goto out;
	r = cdt_chan_new(sv[0], keys, CDT_ROLE_BROKER, &l->chan);
	sv[0] = -1;
	if (r < 0)
		goto out;
	cdt_chan_set_queue_cap(l->chan, BROKER_QUEUE_CAP);
	/* Frames move through shared rings once the layer accepts them; a
	 * layer already gone keeps the socket and its exit comes by pidfd. */
	r = chan_ring_offer(l->chan);
	if (r < 0 && r != -EPIPE && r != -ECONNRESET)
		goto out;
	/* Our loop never reads the layer's announcements, from its very
	 * first ring frame on (dispatch_watch_ring). */
	if (r == 0)
		r = chan_ring_edge(l->chan);
	if (r < 0 && r != -EPIPE && r != -ECONNRESET)
		goto out;
	r = loop_add_io(b->loop, cdt_chan_fd(l->chan), EPOLLIN, dispatch_chan_event, l,
			&l->chan_src);
	if (r < 0)
		goto out;
	(void)broker_audit_simple(b, AUDIT_EV_SPAWN, l, NULL, NULL);
	r = 0;
out:
	cdt_keys_free(keys);
	if (child.pidfd >= 0)
		close(child.pidfd);
	if (child.status_fd >= 0)
		close(child.status_fd);
	close_pair(sv);
	close_pair(keyp);
	close_pair(errp);
	close_pair(sbp);
	if (r < 0 && !l->child) {
		/* Nothing started: the plan (and its dynamic uid) goes now. */
		sandbox_plan_free(l->plan);
		l->plan = NULL;
	}
	if (r < 0 && l->child) {
		/* A local fault after the child exists: it must not run keyless
		 * and unsupervised.  Its exit still arrives through the pidfd. */
		(void)loop_child_kill(l->child, SIGKILL);
		r = 0;
	}
	return r;
}

static int layer_apply(struct blayer *l, int act)
{
	int r = 0;

	if (act < 0)
		return act;
	switch ((enum sup_action)act) {
	case SUP_ACT_NONE:
		break;
	case SUP_ACT_SPAWN:
		r = layer_spawn(l);
		if (r < 0) {
			broker_log("layer %s: spawn failed: %s", l->name, strerror(-r));
			(void)broker_audit_simple(l->b, AUDIT_EV_ALARM, l, "spawn-failed",
						  strerror(-r));
			r = sup_exited(&l->sup, SUP_EXIT_FAILURE, loop_now_ns());
			if (r < 0)
				return r;
			r = 0;
		}
		break;
	case SUP_ACT_TERM:
		/* A layer that said hello and still has its channel got the
		 * broker's FIN (layer_stop) and can leave cleanly by itself:
		 * SIGTERM only if it has not after a grace. */
		if (l->child && l->hello_done && l->chan && !l->chan_ended) {
			r = loop_timer_set(l->term_timer, loop_now_ns() + BROKER_STOP_GRACE);
			break;
		}
		/* fall through */
	case SUP_ACT_KILL:
		if (l->child) {
			r = loop_child_kill(l->child, act == SUP_ACT_TERM ? SIGTERM : SIGKILL);
			if (r == -ESRCH)
				r = 0;
		}
		break;
	}
	if (r < 0)
		return r;
	return loop_timer_set(l->sup_timer, sup_deadline(&l->sup));
}

int layer_start(struct blayer *l)
{
	if (!l->pl || l->b->stopping)
		return 0;
	if (l->sup.state != SUP_STOPPED && l->sup.state != SUP_FAILED)
		return 0;
	return layer_apply(l, sup_start(&l->sup, loop_now_ns()));
}

int layer_stop(struct blayer *l)
{
	if (l->chan) {
		/* An orderly FIN first; -EAGAIN leaves it queued behind data,
		 * any other error means the peer is gone already. */
		int r = cdt_chan_close(l->chan);
		if (r == -EAGAIN)
			dispatch_update_events(l);
	}
	if (!l->child && l->restart_after_stop && !l->b->stopping) {
		/* Nothing running: a backoff spawns with the new spec anyway; a
		 * stopped or failed layer gets a fresh start under it, and one
		 * still waiting for its first start gets it under the new spec
		 * when its dependencies are ready. */
		l->restart_after_stop = false;
		return l->start_held ? 0 : layer_start(l);
	}
	return layer_apply(l, sup_stop(&l->sup, loop_now_ns()));
}

void layer_violation(struct blayer *l, const char *klass, const char *method, const char *reason)
{
	struct audit_record rec = {
		.event = AUDIT_EV_VIOLATION,
		.layer = l->name,
		.has_pid = true,
		.pid = l->pid,
		.klass = klass,
		.method = method,
		.reason = reason,
	};
	int act;

	if (l->dropped || !l->chan)
		return;
	l->dropped = true;
	(void)broker_audit(l->b, &rec);
	broker_log("layer %s: %s%s%s: channel dropped", l->name, klass, reason ? ": " : "",
		   reason ? reason : "");
	chan_close(l);
	act = sup_fault(&l->sup, loop_now_ns());
	if (act >= 0)
		(void)layer_apply(l, act);
}

void layer_fini(struct blayer *l)
{
	if (!l)
		return;
	chan_close(l);
	err_close(l);
	loop_source_free(l->child);
	l->child = NULL;
	loop_source_free(l->sup_timer);
	l->sup_timer = NULL;
	loop_source_free(l->ping_timer);
	l->ping_timer = NULL;
	loop_source_free(l->fin_timer);
	l->fin_timer = NULL;
	loop_source_free(l->term_timer);
	l->term_timer = NULL;
	sandbox_plan_free(l->plan);
	l->plan = NULL;
}
