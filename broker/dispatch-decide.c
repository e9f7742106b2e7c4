/* SPDX-License-Identifier: MIT */
/*
 * dispatch-decide: every CALL a layer makes is decided by the policy and
 * audited before anything else happens; then the broker serves it
 * (conduit.*) or routes it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "broker.h"
#include "dispatch.h"

int dispatch_audit_decision(struct blayer *l, const cdt_msg *m, const struct msg_args *a,
			    enum audit_verdict v, const char *rule, unsigned line,
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
		.rule = rule,
		.policy_line = line,
		.reason = reason,
	};
	return broker_audit(l->b, &rec);
}

int dispatch_on_call(struct blayer *l, cdt_msg *m)
{
	struct broker *b = l->b;
	const char *method = cdt_msg_name(m);
	uint64_t id = cdt_msg_call_id(m);
	struct policy_decision d;
	struct msg_args a;
	enum audit_verdict v;
	int r;

	if (dispatch_call_pending(l, id)) {
		layer_violation(l, "protocol-violation", method, "call id reused while pending");
		return 0;
	}
	dispatch_args_of(m, &a);
	r = policy_decide(b->policy, b->pstate, l->name, method, a.v, a.n, loop_now_ns(), &d);
	if (r < 0) {
		/* Only a layer a reload removed lands here: refuse. */
		d = (struct policy_decision){.verdict = POLICY_DENY, .reason = "unknown layer"};
	}
	v = d.verdict == POLICY_ALLOW	       ? AUDIT_VERDICT_ALLOW
	    : d.verdict == POLICY_RATE_LIMITED ? AUDIT_VERDICT_RATE_LIMITED
	    : d.logonly			       ? AUDIT_VERDICT_COMPLAIN
					       : AUDIT_VERDICT_DENY;
	r = dispatch_audit_decision(l, m, &a, v, d.rule_id, d.line, d.reason);
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
