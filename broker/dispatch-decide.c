/* SPDX-License-Identifier: MIT */
/*
 * dispatch-decide: every CALL a layer makes is decided by the policy and
 * audited before anything else happens; then the broker serves it
 * (conduit.*) or routes it.
 *
 * The record of an allowed call without side effects in the broker
 * (conduit.ping, a routed call) is deferred: formatted and chained at once,
 * written with the next record that must reach the log before its reply,
 * or by a timer DISPATCH_AUDIT_FLUSH_NS later, or when the batch is full.
 * Denials, rate limits, complain-mode decisions, conduit.open / connect /
 * listen and every record that is not a decision are written before the
 * broker acts on them (docs/audit.md, "When records reach the disk").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "broker.h"
#include "dispatch.h"

/* The longest a deferred record waits in memory: what a broker crash can
 * lose at most, beside AUDIT_BATCH_MAX bytes of records. */
#define DISPATCH_AUDIT_FLUSH_NS (5 * 1000 * 1000)

static int audit_flush_due(struct loop_source *s, uint64_t now, void *userdata)
{
	struct broker *b = userdata;

	(void)s;
	(void)now;
	/* A record written at once since took the batch along; and only a
	 * real write may tell the broker that the log works again. */
	if (audit_writer_pending(b->audit) > 0)
		(void)broker_audit_result(b, audit_writer_flush(b->audit));
	return 0;
}

/* Defer rec, arming the flush timer for the first record of a batch.
 * Written at once when the log is failing (so the caller fails closed on
 * this record) or the timer cannot be had. */
static int audit_defer(struct broker *b, struct audit_record *rec)
{
	int r;

	if (b->audit_broken || !b->audit)
		return broker_audit(b, rec);
	/* As broker_audit() would. */
	if (!rec->policy && b->policy)
		rec->policy = policy_file_name(b->policy);
	if (!rec->policy)
		rec->policy_line = 0;
	if (audit_writer_pending(b->audit) == 0) {
		uint64_t at = loop_now_ns() + DISPATCH_AUDIT_FLUSH_NS;
		r = b->audit_timer
			    ? loop_timer_set(b->audit_timer, at)
			    : loop_add_timer(b->loop, at, audit_flush_due, b, &b->audit_timer);
		if (r < 0)
			return broker_audit(b, rec);
	}
	return broker_audit_result(b, audit_writer_defer(b->audit, rec));
}

int dispatch_audit_decision(struct blayer *l, const cdt_msg *m, const struct msg_args *a,
			    enum audit_verdict v, uint64_t mono_ns, const char *rule, unsigned line,
			    const char *reason, bool defer)
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
	return defer ? audit_defer(l->b, &rec) : broker_audit(l->b, &rec);
}

/* Calls whose effect is outside the broker (an fd handed out): their record
 * is on disk before the fd leaves. */
static bool privileged(const char *method)
{
	return strcmp(method, "conduit.open") == 0 || strcmp(method, "conduit.connect") == 0 ||
	       strcmp(method, "conduit.listen") == 0;
}

int dispatch_on_call(struct blayer *l, cdt_msg *m)
{
	struct broker *b = l->b;
	const char *method = cdt_msg_name(m);
	uint64_t id = cdt_msg_call_id(m);
	struct policy_decision d;
	struct msg_args a;
	enum audit_verdict v;
	uint64_t now;
	int r;

	if (dispatch_call_pending(l, id)) {
		layer_violation(l, "protocol-violation", method, "call id reused while pending");
		return 0;
	}
	dispatch_args_of(m, &a);
	now = loop_now_ns();
	r = policy_decide(b->policy, b->pstate, l->name, method, a.v, a.n, now, &d);
	if (r < 0) {
		/* Only a layer a reload removed lands here: refuse. */
		d = (struct policy_decision){.verdict = POLICY_DENY, .reason = "unknown layer"};
	}
	v = d.verdict == POLICY_ALLOW	       ? AUDIT_VERDICT_ALLOW
	    : d.verdict == POLICY_RATE_LIMITED ? AUDIT_VERDICT_RATE_LIMITED
	    : d.logonly			       ? AUDIT_VERDICT_COMPLAIN
					       : AUDIT_VERDICT_DENY;
	r = dispatch_audit_decision(l, m, &a, v, now, d.rule_id, d.line, d.reason,
				    v == AUDIT_VERDICT_ALLOW && !privileged(method));
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
		dispatch_route_call(l, m, &a);
	return 0;
}
