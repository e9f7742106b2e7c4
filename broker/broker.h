/* SPDX-License-Identifier: MIT */
/*
 * broker: the conduit-broker process wiring.  One struct broker owns the
 * event loop, the compiled policy, the audit writer and one struct blayer per
 * policy layer.  Single-threaded: every function here runs on the loop.
 *
 * Split by concern:
 *   broker.c   start, signals, stop, reload, audit helpers
 *   layer.c    spawn through the sandbox, supervision, stderr capture
 *   dispatch.c the session protocol of docs/protocol.md section 9
 *   services.c conduit.open / connect / listen
 */
#ifndef CONDUIT_BROKER_BROKER_H
#define CONDUIT_BROKER_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <conduit/conduit.h>

#include "audit.h"
#include "loop.h"
#include "policy.h"
#include "sandbox.h"
#include "supervise.h"

/* Per-layer limits (docs/broker.md, "Limits"). */
#define BROKER_PENDING_MAX   64			    /* routed calls a layer may have waiting */
#define BROKER_QUEUE_CAP     (CDT_MSG_MAX + 65536u) /* bytes queued towards one layer */
#define BROKER_FDS_IN_FLIGHT 16			    /* fds queued towards one layer */
/* Messages read per layer per loop turn.  One: epoll is level-triggered, so
 * a layer with more queued is reported again on the next turn, and the
 * common case (one message waiting) saves the recvmsg() that would only
 * return EAGAIN.  Every ready layer gets one message per turn. */
#define BROKER_READ_BURST    1
#define BROKER_CALL_TIMEOUT  (5ull * 1000000000)  /* routed call deadline */
#define BROKER_START_TIMEOUT (5ull * 1000000000)  /* spawn to hello */
#define BROKER_HEARTBEAT     (10ull * 1000000000) /* default silence before a kill */
#define BROKER_STOP_TIMEOUT  (2ull * 1000000000)  /* stop to SIGKILL */
#define BROKER_STOP_GRACE    (500ull * 1000000)	  /* FIN to SIGTERM */
#define BROKER_SUBS_MAX	     256		  /* subscriptions per layer */
#define BROKER_ERRLINE_MAX   512		  /* bytes of one logged stderr line */

struct broker;
struct pending;
struct listener;

struct blayer {
	struct broker *b;
	char name[POLICY_LAYER_NAME_MAX + 1];
	const struct policy_layer *pl; /* in b->policy; NULL once removed by a reload */
	struct sup_layer sup;
	struct loop_source *sup_timer;
	struct loop_source *child;	  /* pidfd source while a process exists */
	struct loop_source *chan_src;	  /* the socket; ring mode: the eventfd (edge) */
	struct loop_source *chan_out_src; /* ring mode: the socket, for its frames, room
					   * and hang-ups */
	struct loop_source *err_src;
	cdt_chan *chan;
	int err_fd; /* read end of the layer's stderr pipe */
	char errbuf[BROKER_ERRLINE_MAX];
	size_t errlen;
	struct sandbox_plan *plan;
	pid_t pid; /* logs and audit only */
	bool hello_done;
	bool restart_after_stop; /* reload changed the sandbox: start again once gone */
	bool dropped;		 /* channel dropped for a violation; exit will follow */
	bool chan_eof;		 /* channel ended without a FIN */
	bool start_held;	 /* first start waits for its dependencies (start order) */
	bool ever_ready;	 /* reached ready once: layers waiting for it may start */
	bool chan_ended;	 /* the layer sent FIN or EOF; its exit is awaited */
	bool kept_running;	 /* killed for outliving its channel */
	/* From the channel's end to SIGKILL when the process outlives it. */
	struct loop_source *fin_timer;
	/* From the broker's FIN at a stop to SIGTERM, if the layer has not
	 * left by itself. */
	struct loop_source *term_timer;
	struct loop_source *ping_timer;
	uint64_t ping_id;  /* the broker's outstanding conduit.ping, 0 if none */
	size_t fds_queued; /* fds in messages queued while the socket was full */
	bool backpressure; /* a send hit the queue cap: drop at the next reap */
	bool stuck;	   /* owes more than 256 late replies: drop at the next reap */
	size_t npending;   /* routed calls from this layer still waiting */
	const char *subs[BROKER_SUBS_MAX]; /* subscribed event names, in the policy arena */
	size_t nsubs;
};

struct broker {
	struct loop *loop;
	struct policy *policy;
	struct policy_state *pstate;
	struct policy_order *order; /* start order of policy */
	struct audit_writer *audit;
	const char *policy_path;
	struct blayer **layers; /* stable pointers: loop sources hold them */
	size_t nlayers;
	struct pending *pending;       /* routed calls, newest first */
	struct pending *pending_spare; /* finished entries for reuse (dispatch-route.c) */
	size_t npending_spare;
	struct listener *listeners; /* conduit.listen sockets, kept (services.c) */
	uint64_t next_call_id;
	uint64_t heartbeat_ns;	  /* 0: no heartbeat */
	uint64_t call_timeout_ns; /* routed call deadline */
	int root_fd;		  /* "/" as O_PATH, for conduit.open beneath it */
	bool stopping;
	bool audit_broken;		 /* the last audit write failed */
	struct loop_source *audit_timer; /* flushes deferred decision records */
	int exit_code;
	/* Dynamic uids reserved for the layers one broker_start_due() pass
	 * starts, checked by one lookup child; released when the pass ends. */
	struct sandbox_dynuser dynpool[SANDBOX_DYNUSER_BATCH_MAX];
	size_t ndynpool;
};

/* broker.c */
struct broker_opts {
	const char *policy_path;  /* kept, not copied: must outlive the broker */
	const char *audit_path;	  /* NULL: the policy's audit line */
	uint64_t heartbeat_ns;	  /* silence before a ready layer is killed; 0: never */
	uint64_t call_timeout_ns; /* routed call deadline, > 0 */
};
int broker_new(const struct broker_opts *o, struct broker **ret_b);
int broker_run(struct broker *b);
void broker_free(struct broker *b);
/* Write one record; layer may be NULL.  On failure the broker raises an
 * alarm (stderr, and an alarm record once the log takes writes again) and
 * returns the negative errno so callers can fail closed. */
int broker_audit(struct broker *b, struct audit_record *rec);
/* The alarm handling of broker_audit() for r, the result of a write of the
 * log (also of deferred records); returns r. */
int broker_audit_result(struct broker *b, int r);
int broker_audit_simple(struct broker *b, enum audit_event ev, const struct blayer *l,
			const char *klass, const char *reason);
void broker_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Stop when every layer is gone (after SIGTERM). */
void broker_check_done(struct broker *b);
/* Start every held layer whose dependencies have all been ready once, or
 * gave up (failed, or stopped after a start).  Call whenever one of these
 * may have changed. */
int broker_start_due(struct broker *b);
/* A reserved dynamic uid not yet taken by a plan, or NULL (layer.c). */
struct sandbox_dynuser *broker_dynuser_next(struct broker *b);
/* A valid hello made l ready: layers waiting for it may start. */
int broker_layer_ready(struct blayer *l);

/* layer.c */
int layer_init(struct broker *b, struct blayer *l, const struct policy_layer *pl);
int layer_start(struct blayer *l);
/* Take the restart settings of l->pl (after a reload). */
void layer_reconfigure(struct blayer *l);
int layer_stop(struct blayer *l);
/* A protocol violation: drop the channel, one violation record, kill and
 * restart by the policy. */
void layer_violation(struct blayer *l, const char *klass, const char *method, const char *reason);
/* The layer ended its channel (FIN, or EOF when eof): answer a FIN with
 * ours, stop routing to it, and kill it when it is still running after
 * BROKER_STOP_TIMEOUT.  Its exit is audited once and restarts it by policy. */
void layer_chan_ended(struct blayer *l, bool eof);
void layer_fini(struct blayer *l);
struct blayer *layer_find(struct broker *b, const char *name);

/* dispatch.c */
/* Liveness: send the broker's conduit.ping when due. */
int dispatch_ping_due(struct loop_source *s, uint64_t now, void *userdata);
int dispatch_chan_event(struct loop_source *s, int fd, uint32_t revents, void *userdata);
/* The layer's channel is going away: fail its callers, forget its calls. */
void dispatch_layer_gone(struct blayer *l);
void dispatch_update_events(struct blayer *l);
/* Drop every layer whose outbound queue overflowed since the last reap. */
void dispatch_reap(struct broker *b);
/* Queue msg to l; -ENOBUFS marks l for dropping at the next reap. */
int dispatch_send(struct blayer *l, const cdt_msg *m);
/* A message without arguments (REPLY, or ERROR with its name); best effort. */
void dispatch_send_simple(struct blayer *l, enum cdt_kind kind, uint64_t id, const char *name);
/* Forget every routed call (broker shutdown). */
void dispatch_fini(struct broker *b);

/* services.c: serve an allowed conduit.open / connect / listen call. */
/* conduit.ping: empty REPLY, or the call's "payload" bytes echoed back. */
void services_ping(struct blayer *l, const cdt_msg *m);
void services_resource(struct blayer *l, const cdt_msg *m, enum policy_res_kind kind);
/* Close the kept listening sockets. */
void services_fini(struct broker *b);

#endif
