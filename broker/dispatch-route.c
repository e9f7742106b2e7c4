/* SPDX-License-Identifier: MIT */
/*
 * dispatch-route: calls routed to the layer that provides the method, and
 * their results carried back.  The callee sees a call id of the broker's
 * own; each routed call has a deadline.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "broker.h"
#include "dispatch.h"

#define TIMED_OUT_MAX	  256 /* late replies a provider may owe before it is dropped */
/* Finished entries kept, with their disarmed timer, for the next routed
 * calls: a call then allocates neither.  As many as one caller may have
 * pending, so a steady caller never allocates. */
#define PENDING_SPARE_MAX BROKER_PENDING_MAX

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

static int on_call_timeout(struct loop_source *s, uint64_t now, void *userdata);

static void pending_destroy(struct pending *p)
{
	loop_source_free(p->timer);
	free(p);
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
	if (b->npending_spare < PENDING_SPARE_MAX &&
	    (!p->timer || loop_timer_set(p->timer, LOOP_NO_DEADLINE) == 0)) {
		p->next = b->pending_spare;
		b->pending_spare = p;
		b->npending_spare++;
		return;
	}
	pending_destroy(p);
}

/* A cleared entry whose timer (kept from an earlier call, or new) is armed
 * for the call's deadline. */
static int pending_get(struct broker *b, struct pending **ret_p)
{
	uint64_t deadline = loop_now_ns() + b->call_timeout_ns;
	struct pending *p = b->pending_spare;
	struct loop_source *timer = NULL;
	int r;

	if (p) {
		b->pending_spare = p->next;
		b->npending_spare--;
		timer = p->timer;
	} else if (!(p = malloc(sizeof(*p)))) {
		return -ENOMEM;
	}
	*p = (struct pending){.timer = timer};
	r = p->timer ? loop_timer_set(p->timer, deadline)
		     : loop_add_timer(b->loop, deadline, on_call_timeout, p, &p->timer);
	if (r < 0) {
		pending_destroy(p);
		return r;
	}
	*ret_p = p;
	return 0;
}

static int on_call_timeout(struct loop_source *s, uint64_t now, void *userdata)
{
	struct pending *p = userdata;
	size_t late = 0;

	(void)now;
	(void)s; /* fired, so disarmed: kept for the entry's next call */
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
			(void)loop_timer_set(p->timer, LOOP_NO_DEADLINE);
			p->timed_out = true;
		}
	}
	l->npending = 0;
}

bool dispatch_call_pending(const struct blayer *l, uint64_t id)
{
	for (const struct pending *p = l->b->pending; p; p = p->next)
		if (p->caller == l && p->caller_id == id && !p->timed_out)
			return true;
	return false;
}

void dispatch_route_call(struct blayer *l, const cdt_msg *m, const struct msg_args *a)
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
	r = pending_get(b, &p);
	if (r >= 0) {
		p->id = b->next_call_id++;
		r = cdt_msg_new(CDT_KIND_CALL, p->id, cdt_msg_name(m), &fwd);
	}
	if (r >= 0)
		r = dispatch_args_copy(fwd, m, a);
	if (r >= 0)
		r = cdt_msg_add_string(fwd, "_caller", l->name, strlen(l->name));
	if (r >= 0)
		r = dispatch_send(callee, fwd);
	cdt_msg_free(fwd);
	if (r < 0) {
		if (p)
			pending_destroy(p);
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

int dispatch_on_result(struct blayer *l, cdt_msg *m)
{
	struct broker *b = l->b;
	struct pending *p;
	struct msg_args a;
	cdt_msg *fwd = NULL;

	if (l->ping_id && cdt_msg_call_id(m) == l->ping_id) {
		/* Any answer to the heartbeat shows the layer is reading; one
		 * that crosses a stop pushes no deadline. */
		l->ping_id = 0;
		if (l->sup.state != SUP_READY)
			return 0;
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
	dispatch_args_of(m, &a);
	if (cdt_msg_new(cdt_msg_kind(m), p->caller_id, cdt_msg_name(m), &fwd) < 0 ||
	    dispatch_args_copy(fwd, m, &a) < 0 || dispatch_send(p->caller, fwd) < 0) {
		/* The caller is not reading (queue full: dropped by
		 * dispatch_reap) or out of memory: it loses this reply; the
		 * provider did nothing wrong. */
		dispatch_send_simple(p->caller, CDT_KIND_ERROR, p->caller_id, "conduit.busy");
	}
	cdt_msg_free(fwd);
	pending_free(b, p);
	return 0;
}

void dispatch_fini(struct broker *b)
{
	while (b->pending)
		pending_free(b, b->pending);
	while (b->pending_spare) {
		struct pending *p = b->pending_spare;
		b->pending_spare = p->next;
		pending_destroy(p);
	}
	b->npending_spare = 0;
}
