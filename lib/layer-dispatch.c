/* SPDX-License-Identifier: MIT */
/* The layer side of a broker session: incoming messages, calls (blocking
 * and asynchronous) and the loop.
 *
 * Re-entrancy rule: user callbacks run only from cdt_layer_dispatch().
 * While a blocking call waits, every message but its own answer (and a
 * `conduit.ping`, answered on the spot) is queued in arrival order; the
 * next dispatch takes the queue before reading the socket again, so order
 * is kept. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chan.h"
#include "layer.h"
#include "msg.h"

static int64_t dispatch_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct layer_pending **dispatch_pending_link(cdt_layer *layer, uint64_t id)
{
	struct layer_pending **p;

	for (p = &layer->pending; *p; p = &(*p)->next)
		if ((*p)->id == id)
			break;
	return p;
}

static void dispatch_pending_unlink(cdt_layer *layer, struct layer_pending *pending)
{
	struct layer_pending **p = dispatch_pending_link(layer, pending->id);
	if (*p) {
		*p = pending->next;
		layer->npending--;
	}
}

void layer_cancel_pending(cdt_layer *layer, int err)
{
	/* Unlink before each callback: it may call into the layer (and get
	 * the sticky error). */
	while (layer->pending) {
		struct layer_pending *p = layer->pending;
		layer->pending = p->next;
		layer->npending--;
		if (p->cb)
			p->cb(layer, err, NULL, p->userdata);
		cdt_msg_free(p->reply);
		free(p);
	}
}

/* Send call under a fresh call_id and record it as pending. */
static int dispatch_call_start(cdt_layer *layer, cdt_msg *call, cdt_layer_reply_fn cb,
			       void *userdata, struct layer_pending **ret_pending)
{
	struct layer_pending *p;
	uint64_t id;
	int r;

	if (cdt_msg_kind(call) != CDT_KIND_CALL)
		return -EINVAL;
	if (layer->err)
		return layer->err;
	if (layer->npending >= LAYER_PENDING_MAX)
		return -EBUSY;
	/* Ids count up; skipping 0 and any id still pending keeps them
	 * unique among pending calls even after the counter wraps. */
	do {
		id = layer->next_id++;
	} while (id == 0 || *dispatch_pending_link(layer, id));
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	call->call_id = id;
	r = layer_send(layer, call);
	if (r < 0) {
		free(p);
		return r;
	}
	p->id = id;
	p->cb = cb;
	p->userdata = userdata;
	p->blocking = !cb;
	p->next = layer->pending;
	layer->pending = p;
	layer->npending++;
	*ret_pending = p;
	return 0;
}

static int dispatch_queue(cdt_layer *layer, cdt_msg *msg)
{
	struct layer_qmsg *q;

	if (layer->nqueued >= LAYER_QUEUE_MAX) {
		cdt_msg_free(msg);
		return layer_fail(layer, -ENOBUFS);
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		cdt_msg_free(msg);
		return layer_fail(layer, -ENOMEM);
	}
	q->msg = msg;
	if (layer->qtail)
		layer->qtail->next = q;
	else
		layer->qhead = q;
	layer->qtail = q;
	layer->nqueued++;
	return 0;
}

static cdt_msg *dispatch_unqueue(cdt_layer *layer)
{
	struct layer_qmsg *q = layer->qhead;
	cdt_msg *msg = q->msg;

	layer->qhead = q->next;
	if (!layer->qhead)
		layer->qtail = NULL;
	layer->nqueued--;
	free(q);
	return msg;
}

/* Answer a call ourselves (ping, no handler, too busy). */
static int dispatch_answer(cdt_layer *layer, uint64_t id, enum cdt_kind kind, const char *name)
{
	cdt_msg *answer = NULL;
	int r;

	r = cdt_msg_new(kind, id, name, &answer);
	if (r < 0)
		return layer_fail(layer, r);
	r = layer_send(layer, answer);
	cdt_msg_free(answer);
	/* A local failure (full queue, our FIN already sent) loses only this
	 * answer: the broker's deadline answers the caller.  A broken
	 * channel has failed the layer. */
	(void)r;
	return layer->err;
}

static int dispatch_answer_msg(cdt_layer *layer, cdt_msg *msg, bool defer)
{
	struct layer_pending **link = dispatch_pending_link(layer, cdt_msg_call_id(msg));
	struct layer_pending *p = *link;
	int result = cdt_msg_kind(msg) == CDT_KIND_REPLY ? 0 : -EREMOTEIO;

	if (!p) {
		/* Not a call of ours: the broker is broken or lying. */
		cdt_msg_free(msg);
		return layer_fail(layer, -CDT_E_PROTO);
	}
	if (p->abandoned) {
		/* Its blocking caller timed out and left: the late answer
		 * is expected, and ends the record. */
		*link = p->next;
		layer->npending--;
		free(p);
		cdt_msg_free(msg);
		return 0;
	}
	if (p->blocking && p->reply) {
		/* A second answer before the first was even collected. */
		cdt_msg_free(msg);
		return layer_fail(layer, -CDT_E_PROTO);
	}
	if (p->blocking) {
		p->reply = msg;
		return 0;
	}
	if (defer)
		return dispatch_queue(layer, msg);
	*link = p->next;
	layer->npending--;
	p->cb(layer, result, msg, p->userdata);
	cdt_msg_free(msg);
	free(p);
	return layer->err;
}

static int dispatch_call(cdt_layer *layer, cdt_msg *msg, bool defer)
{
	uint64_t id = cdt_msg_call_id(msg);
	struct layer_handler *h;
	int r;

	/* Heartbeats are answered even while a blocking call waits: that
	 * wait may be longer than the broker's patience. */
	if (strcmp(cdt_msg_name(msg), "conduit.ping") == 0) {
		cdt_msg_free(msg);
		return dispatch_answer(layer, id, CDT_KIND_REPLY, NULL);
	}
	if (defer)
		return dispatch_queue(layer, msg);
	for (h = layer->handlers; h; h = h->next)
		if (strcmp(h->name, cdt_msg_name(msg)) == 0)
			break;
	/* The broker assigns ids and must not reuse one we still owe. */
	if (layer_incoming_take(layer, id)) {
		cdt_msg_free(msg);
		return layer_fail(layer, -CDT_E_PROTO);
	}
	if (!h) {
		/* No handler (yet): say so rather than leave the caller to
		 * the broker's deadline. */
		cdt_msg_free(msg);
		return dispatch_answer(layer, id, CDT_KIND_ERROR, "conduit.unavailable");
	}
	r = layer_incoming_add(layer, id);
	if (r < 0) {
		cdt_msg_free(msg);
		if (r != -EBUSY)
			return layer_fail(layer, r);
		return dispatch_answer(layer, id, CDT_KIND_ERROR, "conduit.busy");
	}
	h->fn(layer, msg, h->userdata);
	return layer->err;
}

static int dispatch_event(cdt_layer *layer, cdt_msg *msg, bool defer)
{
	struct layer_sub *s;

	for (s = layer->subs; s; s = s->next)
		if (strcmp(s->name, cdt_msg_name(msg)) == 0)
			break;
	if (!s) {
		/* We never asked for it: the broker's routing is broken. */
		cdt_msg_free(msg);
		return layer_fail(layer, -CDT_E_PROTO);
	}
	if (defer)
		return dispatch_queue(layer, msg);
	s->fn(layer, msg, s->userdata);
	cdt_msg_free(msg);
	return layer->err;
}

/* A message whose bulk value did not open (protocol 4.1): the sending
 * layer, not the broker, is at fault, so the session goes on and only
 * the message is refused.  A call is answered conduit.refused; an answer
 * to our call becomes that error; an event is dropped. */
static int dispatch_refuse(cdt_layer *layer, cdt_msg *msg, bool defer)
{
	enum cdt_kind kind = cdt_msg_kind(msg);
	uint64_t id = cdt_msg_call_id(msg);
	cdt_msg *err = NULL;
	int r;

	cdt_msg_free(msg);
	switch (kind) {
	case CDT_KIND_CALL:
		return dispatch_answer(layer, id, CDT_KIND_ERROR, "conduit.refused");
	case CDT_KIND_REPLY:
	case CDT_KIND_ERROR:
		r = cdt_msg_new(CDT_KIND_ERROR, id, "conduit.refused", &err);
		if (r < 0)
			return layer_fail(layer, r);
		return dispatch_answer_msg(layer, err, defer);
	case CDT_KIND_EVENT:
		return layer->err;
	case CDT_KIND_HELLO:
	case CDT_KIND_SUBSCRIBE:
	default:
		return layer_fail(layer, -CDT_E_PROTO);
	}
}

/* Handle one message from the broker; takes it.  defer: a blocking call
 * waits, so run no user code.  0 or the layer's (sticky) error. */
static int dispatch_one(cdt_layer *layer, cdt_msg *msg, bool defer)
{
	/* Applications see bulk values as the bytes they were sent as. */
	if (msg_bulk_resolve(msg) < 0)
		return dispatch_refuse(layer, msg, defer);
	switch (cdt_msg_kind(msg)) {
	case CDT_KIND_REPLY:
	case CDT_KIND_ERROR:
		return dispatch_answer_msg(layer, msg, defer);
	case CDT_KIND_CALL:
		return dispatch_call(layer, msg, defer);
	case CDT_KIND_EVENT:
		return dispatch_event(layer, msg, defer);
	case CDT_KIND_HELLO:
	case CDT_KIND_SUBSCRIBE:
	default:
		/* A second HELLO, or a kind only layers send. */
		cdt_msg_free(msg);
		return layer_fail(layer, -CDT_E_PROTO);
	}
}

/* One step of a blocking wait: handle a message, or flush and poll. */
static int dispatch_wait_step(cdt_layer *layer, int64_t deadline)
{
	cdt_msg *msg;
	int r;

	if (deadline >= 0 && deadline - dispatch_now_ms() <= 0)
		return -ETIMEDOUT;
	/* No deadline and nothing to send: sleep in read() on the
	 * announcement pipe, one system call per frame instead of poll() and
	 * read() (chan_recv).  A deadline needs poll()'s timeout, and queued
	 * output its POLLOUT, so those keep the loop below. */
	if (deadline < 0 && !cdt_chan_want_write(layer->chan)) {
		r = chan_recv(layer->chan, &msg, true);
		if (r == 0)
			return dispatch_one(layer, msg, true);
		if (r != -EAGAIN)
			return layer_fail(layer, r);
	}
	/* Right after our call went out its answer is rarely there yet:
	 * poll first and save the recvmsg() that would say EAGAIN. */
	r = layer->chan->sent_last && !layer->chan->reasm ? -EAGAIN
							  : cdt_chan_recv(layer->chan, &msg);
	if (r == 0)
		return dispatch_one(layer, msg, true);
	if (r != -EAGAIN)
		return layer_fail(layer, r);
	if (cdt_chan_want_write(layer->chan)) {
		r = cdt_chan_flush(layer->chan);
		if (r < 0 && r != -EAGAIN)
			return layer_fail(layer, r);
	}
	r = chan_wait(layer->chan, cdt_chan_want_write(layer->chan), deadline);
	/* Waited once: from now on read first. */
	layer->chan->sent_last = false;
	return r < 0 && r != -ETIMEDOUT ? r : 0;
}

int cdt_layer_call(cdt_layer *layer, cdt_msg *call, int timeout_ms, cdt_msg **ret_reply)
{
	int64_t deadline = timeout_ms < 0 ? -1 : dispatch_now_ms() + timeout_ms;
	struct layer_pending *p = NULL;
	cdt_msg *reply;
	int r;

	if (!layer || !call || !ret_reply)
		return -EINVAL;
	r = dispatch_call_start(layer, call, NULL, NULL, &p);
	if (r < 0)
		return r;
	while (!p->reply && r == 0)
		r = dispatch_wait_step(layer, deadline);
	if (!p->reply) {
		if (!layer->err) {
			/* Timeout (or poll failed): keep the record so the late
			 * answer is recognised and dropped rather than taken for
			 * a bogus id. */
			p->blocking = false;
			p->abandoned = true;
		} else {
			dispatch_pending_unlink(layer, p);
			free(p);
		}
		return r;
	}
	reply = p->reply;
	dispatch_pending_unlink(layer, p);
	free(p);
	if (cdt_msg_kind(reply) == CDT_KIND_ERROR) {
		/* Fits: the codec bounds names to CDT_NAME_MAX. */
		strcpy(layer->errname, cdt_msg_name(reply));
		cdt_msg_free(reply);
		return -EREMOTEIO;
	}
	*ret_reply = reply;
	return 0;
}

int cdt_layer_call_async(cdt_layer *layer, cdt_msg *call, cdt_layer_reply_fn cb, void *userdata)
{
	struct layer_pending *p;

	if (!layer || !call || !cb)
		return -EINVAL;
	return dispatch_call_start(layer, call, cb, userdata, &p);
}

bool cdt_layer_want_dispatch(const cdt_layer *layer)
{
	if (!layer)
		return false;
	/* After a failure, pending callbacks still have to hear about it. */
	if (layer->err)
		return layer->pending != NULL;
	return layer->qhead != NULL;
}

/* cdt_layer_dispatch(); sleep: nothing is queued either way, so wait for
 * one message in read() on the announcement pipe (chan_recv) and handle
 * just that one: the next sleep finds the next without a read that says
 * EAGAIN. */
static int dispatch_batch(cdt_layer *layer, bool sleep)
{
	cdt_msg *msg;
	int n = 0;
	int r;

	/* Queued messages came first; a handler's blocking call may queue
	 * more, which then also go before anything still in the socket. */
	for (int i = 0; i < (sleep ? 1 : LAYER_BATCH) && !layer->err; i++) {
		if (layer->qhead) {
			msg = dispatch_unqueue(layer);
		} else {
			r = sleep ? chan_recv(layer->chan, &msg, true)
			    : n	  ? chan_recv_more(layer->chan, &msg)
				  : cdt_chan_recv(layer->chan, &msg);
			if (r == -EAGAIN)
				break;
			if (r < 0) {
				layer_fail(layer, r);
				break;
			}
		}
		dispatch_one(layer, msg, false);
		n++;
	}
	/* Flush also after a failure: after the broker's FIN ours is queued. */
	r = cdt_chan_flush(layer->chan);
	if (r < 0 && r != -EAGAIN && !layer->err)
		layer_fail(layer, r);
	if (layer->err) {
		layer_cancel_pending(layer, layer->err);
		return layer->err;
	}
	return n;
}

int cdt_layer_dispatch(cdt_layer *layer)
{
	if (!layer)
		return -EINVAL;
	return dispatch_batch(layer, false);
}

int cdt_layer_run(cdt_layer *layer)
{
	int r;

	if (!layer)
		return -EINVAL;
	for (;;) {
		/* Nothing queued either way: sleep in read() (dispatch_batch);
		 * otherwise take what is there and poll. */
		bool sleep = !cdt_layer_want_dispatch(layer) && !cdt_layer_want_write(layer);
		r = dispatch_batch(layer, sleep);
		if (r == -CDT_E_CLOSED)
			return 0;
		if (r < 0)
			return r;
		/* A sleep that found nothing (before the ring, on an
		 * O_NONBLOCK socket) polls like the rest. */
		if ((sleep && r > 0) || cdt_layer_want_dispatch(layer) || r == LAYER_BATCH)
			continue;
		/* The channel's own fds, not the epoll set cdt_layer_fd()
		 * gives event loops: one wake-up instead of two. */
		r = chan_wait(layer->chan, cdt_layer_want_write(layer), -1);
		if (r < 0)
			return r;
	}
}
