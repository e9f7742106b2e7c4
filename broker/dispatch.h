/* SPDX-License-Identifier: MIT */
/*
 * What the parts of the broker's dispatch share (broker/dispatch*.c):
 * dispatch.c runs the session (states, reading, sending), dispatch-decide.c
 * decides and audits calls, dispatch-route.c carries routed calls and their
 * results, dispatch-events.c subscriptions and events.
 */
#ifndef CONDUIT_BROKER_DISPATCH_H
#define CONDUIT_BROKER_DISPATCH_H

#include <stddef.h>

#include <conduit/conduit.h>

#include "broker.h"

/* A message's arguments as the codec decoded them (views, not copies). */
struct msg_args {
	struct cdt_arg v[CDT_ARGS_MAX];
	size_t n;
};

void dispatch_args_of(const cdt_msg *m, struct msg_args *a);
/* Copy every argument into dst (fds are duplicated by the codec). */
int dispatch_args_copy(cdt_msg *dst, const cdt_msg *src, const struct msg_args *a);

/* dispatch-decide.c: a CALL from a ready layer. */
int dispatch_on_call(struct blayer *l, cdt_msg *m);
/* One decision record for l's call m; mono_ns: the clock the decision was
 * taken at (for a call, exactly what policy_decide() got), so the checker's
 * replay refills buckets as the broker did; defer: it may reach the disk
 * after the broker acted on it (dispatch-decide.c says when). */
int dispatch_audit_decision(struct blayer *l, const cdt_msg *m, const struct msg_args *a,
			    enum audit_verdict v, uint64_t mono_ns, const char *rule, unsigned line,
			    const char *reason, bool defer);

/* dispatch-route.c */
/* True when l has a call with its own id still pending (a reuse is a
 * violation). */
bool dispatch_call_pending(const struct blayer *l, uint64_t id);
/* An allowed call to a method some layer provides. */
void dispatch_route_call(struct blayer *l, const cdt_msg *m, const struct msg_args *a);
/* A REPLY or ERROR from a layer. */
int dispatch_on_result(struct blayer *l, cdt_msg *m);

/* dispatch-events.c */
int dispatch_on_event(struct blayer *l, cdt_msg *m);
int dispatch_on_subscribe(struct blayer *l, cdt_msg *m);

#endif
