/* SPDX-License-Identifier: MIT */
/*
 * dispatch: the session protocol (docs/protocol.md section 9) on the
 * broker's side.  Every message from a layer goes through one static table
 * that says in which session state its kind is allowed; anything else is a
 * violation that drops the layer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "broker.h"

#define TIMED_OUT_MAX 256 /* late replies a provider may owe before it is dropped */

/* A routed call: caller's id on one side, the broker's on the other. */
struct pending {
	struct pending *next;
	uint64_t id;	       /* broker-assigned, what the callee sees */
	struct blayer *caller; /* NULL once the caller is gone */
	uint64_t caller_id;
	struct blayer *callee;
	struct loop_source *timer;
	bool timed_out; /* the caller got conduit.timeout; a late reply is dropped */
};

struct msg_args {
	struct cdt_arg v[CDT_ARGS_MAX];
	size_t n;
};

static void args_of(const cdt_msg *m, struct msg_args *a)
{
	a->n = 0;
	for (size_t i = 0; i < cdt_msg_nargs(m) && i < CDT_ARGS_MAX; i++)
		if (cdt_msg_arg(m, i, &a->v[a->n]) == 0)
			a->n++;
}

/* Copy every argument of src into dst (fds are duplicated by the codec). */
static int args_copy(cdt_msg *dst, const struct msg_args *a)
{
	int r = 0;

	for (size_t i = 0; i < a->n && r >= 0; i++) {
		const struct cdt_arg *g = &a->v[i];
		switch (g->type) {
		case CDT_TYPE_BOOL:
			r = cdt_msg_add_bool(dst, g->name, g->v.b);
			break;
		case CDT_TYPE_I64:
			r = cdt_msg_add_i64(dst, g->name, g->v.i64);
			break;
		case CDT_TYPE_U64:
			r = cdt_msg_add_u64(dst, g->name, g->v.u64);
			break;
		case CDT_TYPE_DOUBLE:
			r = cdt_msg_add_double(dst, g->name, g->v.d);
			break;
		case CDT_TYPE_STRING:
			r = cdt_msg_add_string(dst, g->name, g->v.str.ptr, g->v.str.len);
			break;
		case CDT_TYPE_BYTES:
			r = cdt_msg_add_bytes(dst, g->name, g->v.bytes.ptr, g->v.bytes.len);
			break;
		case CDT_TYPE_FD:
			r = cdt_msg_add_fd(dst, g->name, g->v.fd);
			break;
		}
	}
	return r;
}

void dispatch_update_events(struct blayer *l)
{
	if (l->chan_src)
		(void)loop_io_set_events(l->chan_src,
					 EPOLLIN | (cdt_chan_want_write(l->chan) ? EPOLLOUT : 0));
}

/* Queue msg to l.  -ENOBUFS: l is not reading (its queue is full). */
int dispatch_send(struct blayer *l, const cdt_msg *m)
{
	size_t nfds = cdt_msg_nfds(m);
	int r;

	if (!l->chan || l->dropped)
		return -ENOTCONN;
	/* Passed fds only pile up while the socket is full.  Root is exempt
	 * from the kernel's in-flight fd limit, so the broker counts them: a
	 * layer that leaves more than BROKER_FDS_IN_FLIGHT queued is not
	 * reading and is dropped like one whose byte queue is full. */
	if (cdt_chan_queued(l->chan) == 0)
		l->fds_queued = 0;
	if (nfds && cdt_chan_queued(l->chan) > 0 && l->fds_queued + nfds > BROKER_FDS_IN_FLIGHT) {
		l->backpressure = true;
		return -ENOBUFS;
	}
	r = cdt_chan_send(l->chan, m);
	if (r == -EAGAIN)
		r = 0;
	if (r == 0 && cdt_chan_queued(l->chan) > 0)
		l->fds_queued += nfds;
	/* A full queue means l stopped reading.  It is dropped by
	 * dispatch_reap() once the current message is handled, never in the
	 * middle of walking the pending list or the layers. */
	if (r == -ENOBUFS)
		l->backpressure = true;
	dispatch_update_events(l);
	return r;
}

void dispatch_send_simple(struct blayer *l, enum cdt_kind kind, uint64_t id, const char *name)
{
	cdt_msg *m = NULL;

	if (cdt_msg_new(kind, id, name, &m) == 0)
		(void)dispatch_send(l, m);
	cdt_msg_free(m);
}

static void pending_free(struct broker *b, struct pending *p)
{
	for (struct pending **pp = &b->pending; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	if (p->caller && !p->timed_out && p->caller->npending > 0)
		p->caller->npending--;
	loop_source_free(p->timer);
	free(p);
}

static int on_call_timeout(struct loop_source *s, uint64_t now, void *userdata)
{
	struct pending *p = userdata;
	size_t late = 0;

	(void)now;
	loop_source_free(s);
	p->timer = NULL;
	p->timed_out = true;
	if (p->caller) {
		if (p->caller->npending > 0)
			p->caller->npending--;
		dispatch_send_simple(p->caller, CDT_KIND_ERROR, p->caller_id, "conduit.timeout");
	}
	for (struct pending *q = p->callee->b->pending; q; q = q->next)
		if (q->callee == p->callee && q->timed_out)
			late++;
	/* The entry stays so a late reply is recognised; a provider that owes
	 * too many is stuck and gets restarted. */
	if (late > TIMED_OUT_MAX)
		p->callee->stuck = true;
	dispatch_reap(p->callee->b);
	return 0;
}

void dispatch_layer_gone(struct blayer *l)
{
	struct broker *b = l->b;
	struct pending *p = b->pending, *next;

	for (; p; p = next) {
		next = p->next;
		if (p->callee == l) {
			if (p->caller && !p->timed_out)
				dispatch_send_simple(p->caller, CDT_KIND_ERROR, p->caller_id,
						     "conduit.unavailable");
			pending_free(b, p);
		} else if (p->caller == l) {
			/* The callee may still answer: drop that reply quietly. */
			p->caller = NULL;
			loop_source_free(p->timer);
			p->timer = NULL;
			p->timed_out = true;
		}
	}
	l->npending = 0;
}

/* mono_ns: the clock the decision was taken at (for a call, exactly what
 * policy_decide() got), so the checker's replay refills buckets as it did. */
static int audit_decision(struct blayer *l, const cdt_msg *m, const struct msg_args *a,
			  enum audit_verdict v, uint64_t mono_ns, const char *rule, unsigned line,
			  const char *reason)
{
	struct audit_record rec = {
		.event = AUDIT_EV_DECISION,
		.layer = l->name,
		.has_pid = true,
		.pid = l->pid,
		.method = cdt_msg_name(m),
		.call_args = a->v,
		.ncall_args = a->n,
		.has_args = true,
		.verdict = v,
		.has_mono = true,
		.mono_ns = mono_ns,
		.rule = rule,
		.policy_line = line,
		.reason = reason,
	};
	return broker_audit(l->b, &rec);
}

static void route_call(struct blayer *l, const cdt_msg *m, const struct msg_args *a)
{
	struct broker *b = l->b;
	const struct policy_layer *ppl = policy_method_provider(b->policy, cdt_msg_name(m));
	struct blayer *callee = ppl ? layer_find(b, ppl->spec.name) : NULL;
	uint64_t id = cdt_msg_call_id(m);
	struct pending *p = NULL;
	cdt_msg *fwd = NULL;
	int r;

	if (!callee || !callee->hello_done || callee->dropped) {
		dispatch_send_simple(l, CDT_KIND_ERROR, id, "conduit.unavailable");
		return;
	}
	if (l->npending >= BROKER_PENDING_MAX) {
		dispatch_send_simple(l, CDT_KIND_ERROR, id, "conduit.busy");
		return;
	}
	p = calloc(1, sizeof(*p));
	r = p ? 0 : -ENOMEM;
	if (r >= 0) {
		p->id = b->next_call_id++;
		r = cdt_msg_new(CDT_KIND_CALL, p->id, cdt_msg_name(m), &fwd);
	}
	if (r >= 0)
		r = args_copy(fwd, a);
	if (r >= 0)
		r = cdt_msg_add_string(fwd, "_caller", l->name, strlen(l->name));
	if (r >= 0)
		r = loop_add_timer(b->loop, loop_now_ns() + b->call_timeout_ns, on_call_timeout, p,
				   &p->timer);
	if (r >= 0)
		r = dispatch_send(callee, fwd);
	cdt_msg_free(fwd);
	if (r < 0) {
		if (p)
			loop_source_free(p->timer);
		free(p);
		dispatch_send_simple(l, CDT_KIND_ERROR, id,
				     r == -ENOBUFS ? "conduit.busy" : "conduit.unavailable");
		return;
	}
	p->caller = l;
	p->caller_id = id;
	p->callee = callee;
	p->next = b->pending;
	b->pending = p;
	l->npending++;
}

int dispatch_ping_due(struct loop_source *s, uint64_t now, void *userdata)
{
	struct blayer *l = userdata;

	if (!l->hello_done || l->dropped || !l->chan)
		return 0;
	/* One heartbeat in flight at a time; silence is judged by the
	 * supervisor's deadline, which only an answer pushes back. */
	if (!l->ping_id) {
		l->ping_id = l->b->next_call_id++;
		dispatch_send_simple(l, CDT_KIND_CALL, l->ping_id, "conduit.ping");
		dispatch_reap(l->b);
	}
	return loop_timer_set(s, now + l->b->heartbeat_ns / 4);
}

static int on_hello(struct blayer *l, cdt_msg *m);
static int on_call(struct blayer *l, cdt_msg *m);
static int on_result(struct blayer *l, cdt_msg *m);
static int on_event(struct blayer *l, cdt_msg *m);
static int on_subscribe(struct blayer *l, cdt_msg *m);

enum { ST_STARTING = 1u << 0, ST_READY = 1u << 1 };

static const struct {
	unsigned states;
	int (*fn)(struct blayer *l, cdt_msg *m);
} dispatch_table[] = {
	[CDT_KIND_HELLO] = {ST_STARTING, on_hello}, [CDT_KIND_CALL] = {ST_READY, on_call},
	[CDT_KIND_REPLY] = {ST_READY, on_result},   [CDT_KIND_ERROR] = {ST_READY, on_result},
	[CDT_KIND_EVENT] = {ST_READY, on_event},    [CDT_KIND_SUBSCRIBE] = {ST_READY, on_subscribe},
};

/* "a b c" from a policy list, sorted: what the HELLO must say. */
static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static bool list_matches(const char *got, const char *const *list, size_t n)
{
	const char *v[POLICY_LIST_MAX * 4];
	size_t pos = 0, len = strlen(got);

	if (n > sizeof(v) / sizeof(v[0]))
		return false;
	if (n) /* an empty list may be NULL */
		memcpy(v, list, n * sizeof(*v));
	qsort(v, n, sizeof(*v), cmp_str);
	for (size_t i = 0; i < n; i++) {
		size_t k = strlen(v[i]);
		if (i > 0) {
			if (pos >= len || got[pos] != ' ')
				return false;
			pos++;
		}
		if (len - pos < k || memcmp(got + pos, v[i], k) != 0)
			return false;
		pos += k;
	}
	return pos == len;
}

static int on_hello(struct blayer *l, cdt_msg *m)
{
	const char *prov, *pub;
	uint64_t ver;
	cdt_msg *r = NULL;

	if (cdt_msg_get_u64(m, "version", &ver) < 0 || ver != CDT_PROTOCOL_VERSION ||
	    cdt_msg_get_string(m, "provide", &prov, NULL) < 0 ||
	    cdt_msg_get_string(m, "publish", &pub, NULL) < 0 || cdt_msg_nargs(m) != 3) {
		layer_violation(l, "protocol-violation", NULL, "malformed hello");
		return 0;
	}
	if (!list_matches(prov, l->pl->provides, l->pl->nprovides) ||
	    !list_matches(pub, l->pl->publishes, l->pl->npublishes)) {
		layer_violation(l, "protocol-violation", NULL,
				"hello does not match the policy's provide/publish");
		return 0;
	}
	if (cdt_msg_new(CDT_KIND_HELLO, 0, NULL, &r) < 0 ||
	    cdt_msg_add_u64(r, "version", CDT_PROTOCOL_VERSION) < 0 ||
	    cdt_msg_add_string(r, "layer", l->name, strlen(l->name)) < 0 ||
	    dispatch_send(l, r) < 0) {
		cdt_msg_free(r);
		return -ENOMEM;
	}
	cdt_msg_free(r);
	l->hello_done = true;
	if (l->b->heartbeat_ns &&
	    loop_timer_set(l->ping_timer, loop_now_ns() + l->b->heartbeat_ns / 4) < 0)
		return -EINVAL;
	if (sup_ready(&l->sup, loop_now_ns()) < 0)
		return -EINVAL;
	return broker_layer_ready(l);
}

static int on_call(struct blayer *l, cdt_msg *m)
{
	struct broker *b = l->b;
	const char *method = cdt_msg_name(m);
	uint64_t id = cdt_msg_call_id(m);
	struct policy_decision d;
	struct msg_args a;
	enum audit_verdict v;
	int r;

	for (struct pending *p = b->pending; p; p = p->next)
		if (p->caller == l && p->caller_id == id && !p->timed_out) {
			layer_violation(l, "protocol-violation", method,
					"call id reused while pending");
			return 0;
		}
	args_of(m, &a);
	uint64_t now = loop_now_ns();
	r = policy_decide(b->policy, b->pstate, l->name, method, a.v, a.n, now, &d);
	if (r < 0) {
		/* Only a layer a reload removed lands here: refuse. */
		d = (struct policy_decision){.verdict = POLICY_DENY, .reason = "unknown layer"};
	}
	v = d.verdict == POLICY_ALLOW	       ? AUDIT_VERDICT_ALLOW
	    : d.verdict == POLICY_RATE_LIMITED ? AUDIT_VERDICT_RATE_LIMITED
	    : d.logonly			       ? AUDIT_VERDICT_COMPLAIN
					       : AUDIT_VERDICT_DENY;
	r = audit_decision(l, m, &a, v, now, d.rule_id, d.line, d.reason);
	/* Complain mode (docs/policy.md section 7): audited as decided, let
	 * through. */
	if ((v == AUDIT_VERDICT_DENY || v == AUDIT_VERDICT_RATE_LIMITED) && !d.logonly) {
		dispatch_send_simple(l, CDT_KIND_ERROR, id,
				     v == AUDIT_VERDICT_DENY ? "conduit.denied"
							     : "conduit.rate_limited");
		return 0;
	}
	if (r < 0 && strcmp(method, "conduit.ping") != 0) {
		/* Fail closed: a call the log cannot record does not happen.
		 * Only the side-effect-free ping is still answered. */
		dispatch_send_simple(l, CDT_KIND_ERROR, id, "conduit.failed");
		return 0;
	}
	if (strcmp(method, "conduit.ping") == 0)
		services_ping(l, m);
	else if (strcmp(method, "conduit.open") == 0)
		services_resource(l, m, POLICY_RES_OPEN);
	else if (strcmp(method, "conduit.connect") == 0)
		services_resource(l, m, POLICY_RES_CONNECT);
	else if (strcmp(method, "conduit.listen") == 0)
		services_resource(l, m, POLICY_RES_LISTEN);
	else if (strncmp(method, "conduit.", 8) == 0)
		dispatch_send_simple(l, CDT_KIND_ERROR, id, "conduit.unavailable");
	else
		route_call(l, m, &a);
	return 0;
}

static int on_result(struct blayer *l, cdt_msg *m)
{
	struct broker *b = l->b;
	struct pending *p;
	struct msg_args a;
	cdt_msg *fwd = NULL;

	if (l->ping_id && cdt_msg_call_id(m) == l->ping_id) {
		/* Any answer to the heartbeat shows the layer is reading. */
		l->ping_id = 0;
		return sup_heartbeat(&l->sup, loop_now_ns()) < 0 ? -EINVAL : 0;
	}
	for (p = b->pending; p; p = p->next)
		if (p->callee == l && p->id == cdt_msg_call_id(m))
			break;
	if (!p) {
		layer_violation(l, "protocol-violation", NULL,
				"reply to a call the broker did not send");
		return 0;
	}
	if (p->timed_out || !p->caller) {
		(void)broker_audit_simple(b, AUDIT_EV_ALARM, l, "late-reply",
					  "reply after the call's deadline: dropped");
		pending_free(b, p);
		return 0;
	}
	args_of(m, &a);
	if (cdt_msg_new(cdt_msg_kind(m), p->caller_id, cdt_msg_name(m), &fwd) < 0 ||
	    args_copy(fwd, &a) < 0 || dispatch_send(p->caller, fwd) < 0) {
		/* The caller is not reading (queue full: dropped by
		 * dispatch_reap) or out of memory: it loses this reply; the
		 * provider did nothing wrong. */
		dispatch_send_simple(p->caller, CDT_KIND_ERROR, p->caller_id, "conduit.busy");
	}
	cdt_msg_free(fwd);
	pending_free(b, p);
	return 0;
}

static int on_event(struct blayer *l, cdt_msg *m)
{
	struct broker *b = l->b;
	const char *ev = cdt_msg_name(m);
	struct msg_args a;

	if (!policy_may_publish(l->pl, ev)) {
		layer_violation(l, "protocol-violation", ev, "event not in the policy's publish");
		return 0;
	}
	args_of(m, &a);
	for (size_t i = 0; i < b->nlayers; i++) {
		struct blayer *s = b->layers[i];
		bool subscribed = false;
		cdt_msg *fwd = NULL;

		if (!s->hello_done || s->dropped || !s->pl)
			continue;
		for (size_t k = 0; k < s->nsubs && !subscribed; k++)
			subscribed = strcmp(s->subs[k], ev) == 0;
		if (!subscribed || !policy_subscription_find(s->pl, ev, a.v, a.n))
			continue;
		/* A subscriber that does not read loses events; it never slows
		 * the publisher or anyone else. */
		if (cdt_msg_new(CDT_KIND_EVENT, 0, ev, &fwd) == 0 && args_copy(fwd, &a) == 0 &&
		    cdt_msg_add_string(fwd, "_publisher", l->name, strlen(l->name)) == 0)
			(void)dispatch_send(s, fwd);
		cdt_msg_free(fwd);
	}
	return 0;
}

static int on_subscribe(struct blayer *l, cdt_msg *m)
{
	const char *ev = cdt_msg_name(m);
	const struct policy_subscription *sub = NULL;
	struct msg_args a = {.n = 0};

	for (size_t i = 0; i < l->pl->nsubscriptions && !sub; i++)
		if (strcmp(l->pl->subscriptions[i].event, ev) == 0)
			sub = &l->pl->subscriptions[i];
	if (!sub) {
		(void)audit_decision(l, m, &a, AUDIT_VERDICT_DENY, loop_now_ns(), NULL, 0,
				     "no subscribe for this event");
		return 0;
	}
	for (size_t k = 0; k < l->nsubs; k++)
		if (strcmp(l->subs[k], ev) == 0)
			return 0;
	if (l->nsubs == BROKER_SUBS_MAX) {
		layer_violation(l, "protocol-violation", ev, "too many subscriptions");
		return 0;
	}
	(void)audit_decision(l, m, &a, AUDIT_VERDICT_ALLOW, loop_now_ns(), NULL, sub->line,
			     "subscribed");
	l->subs[l->nsubs++] = sub->event;
	return 0;
}

static bool has_reserved_arg(const cdt_msg *m)
{
	struct cdt_arg g;

	for (size_t i = 0; i < cdt_msg_nargs(m); i++)
		if (cdt_msg_arg(m, i, &g) == 0 && g.name[0] == '_')
			return true;
	return false;
}

static int handle(struct blayer *l, cdt_msg *m)
{
	enum cdt_kind k = cdt_msg_kind(m);
	unsigned st = l->hello_done ? ST_READY : ST_STARTING;

	/* A reload removed this layer: it is being stopped; nothing it says
	 * is acted on any more. */
	if (!l->pl)
		return 0;

	if ((size_t)k >= sizeof(dispatch_table) / sizeof(dispatch_table[0]) ||
	    !dispatch_table[k].fn || !(dispatch_table[k].states & st)) {
		layer_violation(l, "protocol-violation", cdt_msg_name(m),
				"message kind not allowed in this state");
		return 0;
	}
	if (has_reserved_arg(m)) {
		layer_violation(l, "protocol-violation", cdt_msg_name(m),
				"argument name reserved for the broker");
		return 0;
	}
	return dispatch_table[k].fn(l, m);
}

int dispatch_chan_event(struct loop_source *s, int fd, uint32_t revents, void *userdata)
{
	struct blayer *l = userdata;
	int r = 0;

	(void)s;
	(void)fd;
	if (revents & EPOLLOUT) {
		r = cdt_chan_flush(l->chan);
		if (r < 0 && r != -EAGAIN) {
			/* The peer is gone: its exit is audited through the pidfd. */
			layer_chan_ended(l, true);
			return 0;
		}
		dispatch_update_events(l);
	}
	/* A bounded number per turn: a flooding layer waits for the next turn
	 * like everyone else instead of starving them. */
	for (int i = 0; i < BROKER_READ_BURST && l->chan && !l->dropped; i++) {
		cdt_msg *m = NULL;

		r = cdt_chan_recv(l->chan, &m);
		if (r == -EAGAIN)
			break;
		if (r == -CDT_E_CLOSED || r == -CDT_E_EOF) {
			/* The layer is leaving (FIN) or dying (EOF): its exit
			 * follows through the pidfd and is audited there, once,
			 * however the two events race. */
			layer_chan_ended(l, r == -CDT_E_EOF);
			return 0;
		}
		if (r < 0) {
			layer_violation(l, r == -CDT_E_AUTH ? "auth-failure" : "protocol-violation",
					NULL, cdt_strerror(r));
			return 0;
		}
		r = handle(l, m);
		cdt_msg_free(m);
		if (r < 0)
			return r;
	}
	dispatch_reap(l->b);
	return 0;
}

void dispatch_reap(struct broker *b)
{
	for (size_t i = 0; i < b->nlayers; i++) {
		struct blayer *l = b->layers[i];
		if (l->backpressure) {
			l->backpressure = false;
			layer_violation(l, "backpressure", NULL,
					"outbound queue full: the layer does not read");
		}
		if (l->stuck) {
			l->stuck = false;
			layer_violation(l, "timeout", NULL,
					"too many calls left past their deadline");
		}
	}
}

void dispatch_fini(struct broker *b)
{
	while (b->pending)
		pending_free(b, b->pending);
}
