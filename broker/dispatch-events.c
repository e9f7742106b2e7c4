/* SPDX-License-Identifier: MIT */
/*
 * dispatch-events: subscriptions (decided against the subscriber's policy,
 * audited) and events (delivered to every subscriber whose constraints
 * match).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "broker.h"
#include "dispatch.h"

int dispatch_on_event(struct blayer *l, cdt_msg *m)
{
	struct broker *b = l->b;
	const char *ev = cdt_msg_name(m);
	struct msg_args a;

	if (!policy_may_publish(l->pl, ev)) {
		layer_violation(l, "protocol-violation", ev, "event not in the policy's publish");
		return 0;
	}
	dispatch_args_of(m, &a);
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
		if (cdt_msg_new(CDT_KIND_EVENT, 0, ev, &fwd) == 0 &&
		    dispatch_args_copy(fwd, m, &a) == 0 &&
		    cdt_msg_add_string(fwd, "_publisher", l->name, strlen(l->name)) == 0)
			(void)dispatch_send(s, fwd);
		cdt_msg_free(fwd);
	}
	return 0;
}

int dispatch_on_subscribe(struct blayer *l, cdt_msg *m)
{
	const char *ev = cdt_msg_name(m);
	const struct policy_subscription *sub = NULL;
	struct msg_args a = {.n = 0};

	for (size_t i = 0; i < l->pl->nsubscriptions && !sub; i++)
		if (strcmp(l->pl->subscriptions[i].event, ev) == 0)
			sub = &l->pl->subscriptions[i];
	if (!sub) {
		(void)dispatch_audit_decision(l, m, &a, AUDIT_VERDICT_DENY, loop_now_ns(), NULL, 0,
					      "no subscribe for this event", false);
		return 0;
	}
	for (size_t k = 0; k < l->nsubs; k++)
		if (strcmp(l->subs[k], ev) == 0)
			return 0;
	if (l->nsubs == BROKER_SUBS_MAX) {
		layer_violation(l, "protocol-violation", ev, "too many subscriptions");
		return 0;
	}
	(void)dispatch_audit_decision(l, m, &a, AUDIT_VERDICT_ALLOW, loop_now_ns(), NULL, sub->line,
				      "subscribed", false);
	l->subs[l->nsubs++] = sub->event;
	return 0;
}
