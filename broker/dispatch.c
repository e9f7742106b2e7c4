/* SPDX-License-Identifier: MIT */
/*
 * dispatch: the session protocol (docs/protocol.md section 9) on the
 * broker's side.  Every message from a layer goes through one static table
 * that says in which session state its kind is allowed; anything else is a
 * violation that drops the layer.  Calls are decided in dispatch-decide.c,
 * routed in dispatch-route.c; events are in dispatch-events.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "broker.h"
#include "chan.h"
#include "dispatch.h"
#include "msg.h"

void dispatch_args_of(const cdt_msg *m, struct msg_args *a)
{
	a->n = 0;
	for (size_t i = 0; i < cdt_msg_nargs(m) && i < CDT_ARGS_MAX; i++)
		if (cdt_msg_arg(m, i, &a->v[a->n]) == 0)
			a->n++;
}

int dispatch_args_copy(cdt_msg *dst, const cdt_msg *src, const struct msg_args *a)
{
	int r = 0;

	/* All of src's arguments into a message that has none yet (every
	 * routed call, result and event): copied as the codec holds them.
	 * Their names and values passed the decoder's checks; checking them
	 * again would find nothing new. */
	if (a->n == cdt_msg_nargs(src) && cdt_msg_nargs(dst) == 0)
		return msg_copy_args(dst, src);
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
			/* A bulk value (length, no data) goes on as it came:
			 * the same sealed memfd, never read here. */
			if (!g->v.bytes.ptr && msg_is_bulk(src, g->name))
				r = msg_copy_bulk(dst, src, g->name);
			else
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
	uint32_t out = cdt_chan_want_write(l->chan) ? EPOLLOUT : 0;

	/* With the ring on, the eventfd wakes us for ring frames and the
	 * socket for its own frames, room and hang-ups. */
	if (l->chan_out_src)
		(void)loop_io_set_events(l->chan_out_src, EPOLLIN | out);
	else if (l->chan_src)
		(void)loop_io_set_events(l->chan_src, EPOLLIN | out);
}

/* The layer acknowledged the ring: from now on most of its frames come
 * through the ring.  Its eventfd only wakes us, edge-triggered, and is
 * never read (chan_ring_edge, set at the offer): one system call less per
 * frame, and no
 * flag or counter the layer sets on that shared file can make us block.
 * The socket, level-triggered, brings the frames that take it (fds, large
 * ones), room and hang-ups. */
static int dispatch_watch_ring(struct blayer *l)
{
	int fd = chan_rx_fd(l->chan);
	int r;

	if (!l->chan_src || l->chan_out_src || loop_source_fd(l->chan_src) == fd)
		return 0;
	loop_source_free(l->chan_src);
	l->chan_src = NULL;
	r = loop_add_io(l->b->loop, fd, EPOLLIN | EPOLLET, dispatch_chan_event, l, &l->chan_src);
	if (r < 0)
		return r;
	return loop_add_io(l->b->loop, chan_tx_fd(l->chan),
			   EPOLLIN | (cdt_chan_want_write(l->chan) ? EPOLLOUT : 0),
			   dispatch_chan_event, l, &l->chan_out_src);
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
	 * middle of walking the pending list or the layers.  A message that
	 * does not fit an empty queue is not l's doing: it fails alone. */
	if (r == -ENOBUFS && cdt_chan_queued(l->chan) > 0)
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

enum { ST_STARTING = 1u << 0, ST_READY = 1u << 1 };

static const struct {
	unsigned states;
	int (*fn)(struct blayer *l, cdt_msg *m);
} dispatch_table[] = {
	[CDT_KIND_HELLO] = {ST_STARTING, on_hello},
	[CDT_KIND_CALL] = {ST_READY, dispatch_on_call},
	[CDT_KIND_REPLY] = {ST_READY, dispatch_on_result},
	[CDT_KIND_ERROR] = {ST_READY, dispatch_on_result},
	[CDT_KIND_EVENT] = {ST_READY, dispatch_on_event},
	[CDT_KIND_SUBSCRIBE] = {ST_READY, dispatch_on_subscribe},
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
	/* Being stopped, the layer got the broker's FIN: a hello it sent
	 * before or after seeing it starts nothing (and could not be answered
	 * on a closed channel). */
	if (k == CDT_KIND_HELLO && l->sup.state == SUP_STOPPING)
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
	/* The eventfd woke us but the ring is empty: the announcement was for
	 * a frame on the socket (whose own event brings it), for one an
	 * earlier turn took, or for nothing.  No read that would say EAGAIN. */
	int burst = l->chan_out_src && s == l->chan_src && !chan_ring_pending(l->chan)
			    ? 0
			    : BROKER_READ_BURST;
	int r = 0;

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
	for (int i = 0; i < burst && l->chan && !l->dropped; i++) {
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
		/* Only a memfd sealed immutable at the announced size may go
		 * on: the receiver checks again, but a wrong one is this
		 * sender's fault and must cost it its session. */
		if (msg_bulk_check(m) < 0) {
			cdt_msg_free(m);
			layer_violation(l, "protocol-violation", NULL,
					"bulk argument not a sealed memfd of its length");
			return 0;
		}
		r = handle(l, m);
		cdt_msg_free(m);
		if (r < 0)
			return r;
	}
	if (l->chan && !l->dropped) {
		r = dispatch_watch_ring(l);
		if (r < 0) {
			/* No room for its loop sources, a local fault: this
			 * channel cannot be watched, so it ends as after an
			 * EOF and the restart policy applies; the broker and
			 * the other layers go on. */
			broker_log("layer %s: cannot watch its channel: %s", l->name, strerror(-r));
			layer_chan_ended(l, true);
			return 0;
		}
		/* Frames left in the ring wake nobody (the eventfd is
		 * edge-triggered): queue this layer behind the others for
		 * one more turn.  A failure leaves them for the layer's next
		 * announcement; the loop itself is fine. */
		if (l->chan_src && l->chan_out_src && chan_ring_pending(l->chan))
			(void)loop_io_rearm(l->chan_src);
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
