/* SPDX-License-Identifier: MIT */
/*
 * broker: start-up, signals, orderly stop, policy reload and the audit
 * helpers every other part of the broker writes through.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "resource.h"

void broker_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("conduit-broker: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	fflush(stderr);
}

int broker_audit(struct broker *b, struct audit_record *rec)
{
	if (!b->audit)
		return -EBADF;
	if (!rec->policy && b->policy)
		rec->policy = policy_file_name(b->policy);
	if (!rec->policy)
		rec->policy_line = 0;
	return broker_audit_result(b, audit_writer_append(b->audit, rec));
}

int broker_audit_result(struct broker *b, int r)
{
	if (r < 0) {
		/* The writer cut the file back and counts the record as lost; the
		 * next good append is preceded by an audit-gap record.  Callers
		 * fail privileged calls closed on this return. */
		if (!b->audit_broken)
			broker_log("ALARM: audit log write failed: %s; privileged and "
				   "write-like calls now fail closed",
				   strerror(-r));
		b->audit_broken = true;
		return r;
	}
	if (b->audit_broken) {
		struct audit_record alarm = {
			.event = AUDIT_EV_ALARM,
			.klass = "audit-write-failed",
			.reason = "audit log writable again after failed writes",
		};
		b->audit_broken = false;
		broker_log("audit log writable again");
		(void)audit_writer_append(b->audit, &alarm);
	}
	return 0;
}

int broker_audit_simple(struct broker *b, enum audit_event ev, const struct blayer *l,
			const char *klass, const char *reason)
{
	struct audit_record rec = {
		.event = ev,
		.layer = l ? l->name : NULL,
		.has_pid = l && l->pid > 0,
		.pid = l ? l->pid : 0,
		.klass = klass,
		.reason = reason,
	};
	return broker_audit(b, &rec);
}

struct blayer *layer_find(struct broker *b, const char *name)
{
	for (size_t i = 0; i < b->nlayers; i++)
		if (b->layers[i] && strcmp(b->layers[i]->name, name) == 0)
			return b->layers[i];
	return NULL;
}

static bool layer_gone(const struct blayer *l)
{
	return !l->child && (l->sup.state == SUP_STOPPED || l->sup.state == SUP_FAILED ||
			     l->sup.state == SUP_BACKOFF);
}

void broker_check_done(struct broker *b)
{
	if (!b->stopping)
		return;
	for (size_t i = 0; i < b->nlayers; i++)
		if (!layer_gone(b->layers[i]))
			return;
	loop_exit(b->loop, b->exit_code);
}

/* Whether the layer named by policy index j no longer holds up the
 * layers that wait for it. */
static bool dep_settled(struct broker *b, size_t j)
{
	const struct blayer *d = layer_find(b, policy_layer_at(b->policy, j)->spec.name);

	if (!d || d->ever_ready)
		return true;
	/* Gave up: waiting longer would hold its dependents back for good;
	 * their calls get conduit.unavailable instead. */
	return !d->start_held && (d->sup.state == SUP_FAILED || d->sup.state == SUP_STOPPED);
}

/* Whether held layer l (still in the policy) has nothing left to wait for. */
static bool held_due(struct broker *b, const struct blayer *l)
{
	size_t n = policy_layer_count(b->policy);
	size_t a = policy_layer_index(b->policy, l->pl);
	bool due = true;

	for (size_t j = 0; j < n && due; j++)
		due = !policy_order_waits(b->order, a, j) || dep_settled(b, j);
	return due;
}

/* Reserve dynamic uids for the held layers about to start, so that one
 * account-database child checks them all instead of one child per layer.
 * Only an estimate: a layer the pool cannot serve acquires its own uid. */
static void dynpool_fill(struct broker *b)
{
	size_t want = 0;

	/* Rootless, layers keep the broker's uid; a nested pass (a start
	 * that settled a dependency at once) uses what the outer one holds. */
	if (geteuid() != 0 || b->ndynpool > 0)
		return;
	for (size_t i = 0; i < b->nlayers && want < SANDBOX_DYNUSER_BATCH_MAX; i++) {
		const struct blayer *l = b->layers[i];
		if (l->start_held && l->pl && !b->stopping &&
		    policy_layer_index(b->policy, l->pl) != SIZE_MAX &&
		    l->pl->spec.user_kind == LAYER_USER_DYNAMIC && held_due(b, l))
			want++;
	}
	/* One layer costs one child either way.  A failed reservation leaves
	 * each layer to acquire its own uid and report its own error. */
	if (want > 1 && sandbox_dynuser_reserve(NULL, want, b->dynpool) == 0)
		b->ndynpool = want;
}

struct sandbox_dynuser *broker_dynuser_next(struct broker *b)
{
	for (size_t i = 0; i < b->ndynpool; i++)
		if (b->dynpool[i].lock_fd >= 0)
			return &b->dynpool[i];
	return NULL;
}

int broker_start_due(struct broker *b)
{
	int r = 0;

	dynpool_fill(b);
	for (size_t i = 0; i < b->nlayers; i++) {
		struct blayer *l = b->layers[i];
		size_t a = policy_layer_index(b->policy, l->pl);

		if (!l->start_held)
			continue;
		if (a == SIZE_MAX || b->stopping) {
			l->start_held = false; /* removed by a reload, or stopping */
			continue;
		}
		if (!held_due(b, l))
			continue;
		l->start_held = false;
		r = layer_start(l);
		if (r < 0)
			break;
	}
	sandbox_dynuser_release(b->dynpool, b->ndynpool);
	b->ndynpool = 0;
	return r;
}

int broker_layer_ready(struct blayer *l)
{
	if (l->ever_ready)
		return 0;
	l->ever_ready = true;
	return broker_start_due(l->b);
}

static int on_stop_signal(struct loop_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct broker *b = userdata;
	char reason[64];

	(void)s;
	if (b->stopping)
		return 0;
	b->stopping = true;
	snprintf(reason, sizeof(reason), "SIG%s received: stopping layers",
		 sigabbrev_np((int)si->ssi_signo) ? sigabbrev_np((int)si->ssi_signo) : "?");
	broker_log("%s", reason);
	for (size_t i = 0; i < b->nlayers; i++) {
		int r = layer_stop(b->layers[i]);
		if (r < 0)
			return r;
	}
	broker_check_done(b);
	return 0;
}

/* Whether the sandbox part of two specs differs (a restart is needed). */
static bool strv_eq(const char *const *a, size_t na, const char *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool spec_equal(const struct layer_spec *a, const struct layer_spec *b)
{
	if (strcmp(a->exec, b->exec) != 0 || !strv_eq(a->argv, a->nargv, b->argv, b->nargv) ||
	    !strv_eq(a->env_allow, a->nenv_allow, b->env_allow, b->nenv_allow))
		return false;
	if (a->user_kind != b->user_kind || a->uid != b->uid || a->gid != b->gid ||
	    !str_eq(a->user_name, b->user_name) || !str_eq(a->group_name, b->group_name))
		return false;
	if (a->profiles != b->profiles || a->seccomp_log != b->seccomp_log ||
	    !strv_eq(a->syscalls_allow, a->nsyscalls_allow, b->syscalls_allow,
		     b->nsyscalls_allow) ||
	    !strv_eq(a->syscalls_deny, a->nsyscalls_deny, b->syscalls_deny, b->nsyscalls_deny))
		return false;
	if (a->nlandlock != b->nlandlock || a->landlock_min_abi != b->landlock_min_abi)
		return false;
	for (size_t i = 0; i < a->nlandlock; i++)
		if (strcmp(a->landlock[i].path, b->landlock[i].path) != 0 ||
		    a->landlock[i].write != b->landlock[i].write)
			return false;
	return a->namespaces == b->namespaces &&
	       memcmp(&a->limits, &b->limits, sizeof(a->limits)) == 0 &&
	       a->has_network_resource == b->has_network_resource;
}

static int broker_add_layer(struct broker *b, const struct policy_layer *pl)
{
	struct blayer **v, *l;
	size_t n;
	int r;

	if (__builtin_add_overflow(b->nlayers, 1, &n))
		return -EOVERFLOW;
	v = reallocarray(b->layers, n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	b->layers = v;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	r = layer_init(b, l, pl);
	if (r < 0) {
		free(l);
		return r;
	}
	b->layers[b->nlayers++] = l;
	return 0;
}

/* Swap in a freshly compiled policy.  Nothing can fail after the first
 * layer is touched: the swap is all or nothing. */
static int broker_swap_policy(struct broker *b, struct policy *np, struct policy_state *ns,
			      struct policy_order *no)
{
	struct policy *old = b->policy;
	struct policy_state *old_state = b->pstate;
	struct policy_order *old_order = b->order;
	size_t nold = b->nlayers;
	int r;

	/* Make room first, so that adding layers cannot fail half-way. */
	struct blayer **v = reallocarray(b->layers, nold + policy_layer_count(np), sizeof(*v));
	if (!v)
		return -ENOMEM;
	b->layers = v;
	for (size_t i = 0; i < nold; i++) {
		struct blayer *l = b->layers[i];
		const struct policy_layer *pl = policy_layer(np, l->name);
		bool changed = !pl || !l->pl || !spec_equal(&l->pl->spec, &pl->spec);
		size_t keep = 0;

		/* Subscriptions survive when the new policy still grants them. */
		for (size_t k = 0; pl && k < l->nsubs; k++)
			for (size_t j = 0; j < pl->nsubscriptions; j++)
				if (strcmp(pl->subscriptions[j].event, l->subs[k]) == 0) {
					l->subs[keep++] = pl->subscriptions[j].event;
					break;
				}
		l->nsubs = keep;
		l->pl = pl;
		layer_reconfigure(l);
		if (pl && changed)
			l->restart_after_stop = true;
	}
	b->policy = np;
	b->pstate = ns;
	b->order = no;
	policy_state_free(old_state);
	policy_order_free(old_order);
	policy_free(old);
	/* New layers join in start order and wait like at start-up. */
	for (size_t k = 0; k < policy_layer_count(np); k++) {
		const struct policy_layer *pl = policy_layer_at(np, policy_order_at(no, k));
		if (layer_find(b, pl->spec.name))
			continue;
		r = broker_add_layer(b, pl);
		if (r < 0)
			return r;
		b->layers[b->nlayers - 1]->start_held = true;
	}
	for (size_t i = 0; i < nold; i++) {
		struct blayer *l = b->layers[i];
		if (!l->pl || l->restart_after_stop) {
			r = layer_stop(l);
			if (r < 0)
				return r;
		}
	}
	return broker_start_due(b);
}

static int on_hup(struct loop_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct broker *b = userdata;
	struct policy *np = NULL;
	struct policy_state *ns = NULL;
	struct policy_order *no = NULL;
	char reason[AUDIT_TEXT_MAX];
	int r;

	(void)s;
	(void)si;
	if (b->stopping)
		return 0;
	r = policy_compile_file(b->policy_path, stderr, &np);
	if (r >= 0)
		r = policy_state_new(np, &ns);
	if (r >= 0)
		r = policy_order_new(np, &no);
	if (r < 0) {
		policy_state_free(ns);
		policy_free(np);
		snprintf(reason, sizeof(reason), "policy %s rejected: %s; old policy kept",
			 b->policy_path, strerror(-r));
		broker_log("reload: %s", reason);
		(void)broker_audit_simple(b, AUDIT_EV_RELOAD_REJECTED, NULL, NULL, reason);
		return 0;
	}
	r = broker_swap_policy(b, np, ns, no);
	if (r < 0)
		return r;
	broker_log("reload: policy %s applied", b->policy_path);
	(void)broker_audit_simple(b, AUDIT_EV_RELOAD, NULL, NULL, "policy reloaded");
	return 0;
}

int broker_new(const struct broker_opts *o, struct broker **ret_b)
{
	const char *policy_path = o->policy_path, *audit_path = o->audit_path;
	struct broker *b = calloc(1, sizeof(*b));
	const struct policy_audit *pa;
	int r;

	if (!b)
		return -ENOMEM;
	b->root_fd = -1;
	b->policy_path = policy_path;
	b->heartbeat_ns = o->heartbeat_ns;
	b->call_timeout_ns = o->call_timeout_ns ? o->call_timeout_ns : BROKER_CALL_TIMEOUT;
	b->next_call_id = 1;
	r = loop_new(&b->loop);
	if (r < 0)
		goto out;
	r = policy_compile_file(policy_path, stderr, &b->policy);
	if (r < 0) {
		broker_log("%s: policy refused: %s", policy_path, strerror(-r));
		r = -EINVAL;
		goto out;
	}
	r = policy_state_new(b->policy, &b->pstate);
	if (r < 0)
		goto out;
	pa = policy_audit(b->policy);
	if (!audit_path)
		audit_path = pa->path;
	if (!audit_path) {
		broker_log("no audit log: give --audit FILE or an audit line in the policy");
		r = -EDESTADDRREQ;
		goto out;
	}
	r = audit_writer_open(audit_path, &b->audit);
	if (r < 0) {
		broker_log("%s: cannot open the audit log: %s", audit_path, strerror(-r));
		r = -EIO;
		goto out;
	}
	/* Every conduit.open path is resolved beneath this directory with
	 * RESOLVE_BENEATH, so a policy path can never climb out of it. */
	r = res_root_open("/", &b->root_fd);
	if (r < 0)
		goto out;
	r = loop_add_signal(b->loop, SIGTERM, on_stop_signal, b, NULL);
	if (r >= 0)
		r = loop_add_signal(b->loop, SIGINT, on_stop_signal, b, NULL);
	if (r >= 0)
		r = loop_add_signal(b->loop, SIGHUP, on_hup, b, NULL);
	if (r < 0)
		goto out;
	/* Layers in start order (docs/broker.md, "Start order"); broker_run()
	 * holds each until what it waits for is ready. */
	r = policy_order_new(b->policy, &b->order);
	if (r < 0)
		goto out;
	for (size_t k = 0; k < policy_layer_count(b->policy); k++) {
		r = broker_add_layer(b, policy_layer_at(b->policy, policy_order_at(b->order, k)));
		if (r < 0)
			goto out;
	}
	*ret_b = b;
	return 0;
out:
	broker_free(b);
	return r;
}

int broker_run(struct broker *b)
{
	int r;

	r = broker_audit_simple(b, AUDIT_EV_START, NULL, NULL, "broker started");
	if (r < 0)
		return r;
	for (size_t i = 0; i < b->nlayers; i++)
		b->layers[i]->start_held = true;
	r = broker_start_due(b);
	if (r < 0)
		return r;
	r = loop_run(b->loop);
	(void)broker_audit_simple(b, AUDIT_EV_STOP, NULL, NULL,
				  r < 0 ? "broker stopped on an internal fault" : "broker stopped");
	return r;
}

void broker_free(struct broker *b)
{
	if (!b)
		return;
	dispatch_fini(b);
	services_fini(b);
	for (size_t i = 0; i < b->nlayers; i++) {
		layer_fini(b->layers[i]);
		free(b->layers[i]);
	}
	free(b->layers);
	loop_free(b->loop);
	audit_writer_free(b->audit);
	policy_state_free(b->pstate);
	policy_order_free(b->order);
	policy_free(b->policy);
	if (b->root_fd >= 0)
		close(b->root_fd);
	free(b);
}
