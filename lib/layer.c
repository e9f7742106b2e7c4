/* SPDX-License-Identifier: MIT */
/* The layer side of a broker session: open (keys, channel, HELLO), and the
 * messages a layer sends on its own (replies, events, subscriptions).
 * Incoming messages, calls and the loop are in layer-dispatch.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "chan.h"
#include "layer.h"
#include "msg.h"

/* The broker gives a layer fd 3 (channel) and fd 4 (key pipe), protocol
 * section 9.1. */
#define LAYER_CHAN_FD 3
#define LAYER_KEY_FD  4

int layer_fail(cdt_layer *layer, int err)
{
	if (!layer->err) {
		layer->err = err;
		/* Clean stop is a FIN each way; ours may stay queued if the
		 * socket is full, nothing more is owed then. */
		if (err == -CDT_E_CLOSED) {
			int r = cdt_chan_close(layer->chan);
			(void)r;
		}
	}
	return layer->err;
}

bool layer_list_has(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; *p;) {
		const char *end = strchr(p, ' ');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == n && memcmp(p, name, n) == 0)
			return true;
		if (!end)
			break;
		p = end + 1;
	}
	return false;
}

/* Space-separated method names, strictly ascending (so no duplicates), no
 * empty word: the form HELLO carries. */
static bool layer_list_valid(const char *list)
{
	const char *prev = NULL;
	size_t prev_len = 0;

	if (!*list)
		return true;
	for (const char *p = list;;) {
		const char *end = strchr(p, ' ');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (!msg_name_valid(p, len))
			return false;
		if (prev && msg_name_cmp(prev, prev_len, p, len) >= 0)
			return false;
		prev = p;
		prev_len = len;
		if (!end)
			return true;
		p = end + 1;
	}
}

int layer_send(cdt_layer *layer, const cdt_msg *msg)
{
	struct cdt_arg arg;
	int r;

	if (layer->err)
		return layer->err;
	/* `_` names are the broker's (protocol 9.2): sending one would get
	 * the whole layer dropped, so refuse it here as a local mistake. */
	for (size_t i = 0; cdt_msg_arg(msg, i, &arg) == 0; i++)
		if (arg.name[0] == '_')
			return -EINVAL;
	/* Long bytes values go sealed in memfds (protocol 4.1): the broker
	 * forwards them without another AEAD pass. */
	cdt_msg *bulk = NULL;
	r = msg_bulk_seal_scratch(msg, &layer->bulk_scratch, &bulk);
	if (r < 0)
		return r;
	r = cdt_chan_send(layer->chan, bulk ? bulk : msg);
	cdt_msg_free(bulk);
	if (r < 0 && layer->chan->err) {
		/* The broker went away without a FIN: report it as the
		 * receive side does, whichever direction noticed first. */
		if (r == -ECONNRESET || r == -EPIPE)
			r = -CDT_E_EOF;
		return layer_fail(layer, r);
	}
	return r;
}

int layer_incoming_add(cdt_layer *layer, uint64_t id)
{
	struct layer_incoming *in;

	if (layer->nincoming >= LAYER_INCOMING_MAX)
		return -EBUSY;
	in = calloc(1, sizeof(*in));
	if (!in)
		return -ENOMEM;
	in->id = id;
	in->next = layer->incoming;
	layer->incoming = in;
	layer->nincoming++;
	return 0;
}

bool layer_incoming_take(cdt_layer *layer, uint64_t id)
{
	for (struct layer_incoming **p = &layer->incoming; *p; p = &(*p)->next) {
		if ((*p)->id == id) {
			struct layer_incoming *in = *p;
			*p = in->next;
			free(in);
			layer->nincoming--;
			return true;
		}
	}
	return false;
}

static bool layer_incoming_has(const cdt_layer *layer, uint64_t id)
{
	for (const struct layer_incoming *in = layer->incoming; in; in = in->next)
		if (in->id == id)
			return true;
	return false;
}

static int64_t layer_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline (-1: none) for the chan_*_wait helpers. */
static int layer_left_ms(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - layer_now_ms();
	if (left <= 0)
		return 0;
	return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

/* Our HELLO, then the broker's: version 1 and our `layer` name. */
static int layer_hello(cdt_layer *layer, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : layer_now_ms() + timeout_ms;
	cdt_msg *hello = NULL, *answer = NULL;
	const char *name;
	size_t name_len;
	uint64_t version;
	int r;

	r = cdt_msg_new(CDT_KIND_HELLO, 0, NULL, &hello);
	if (r < 0)
		goto out;
	if ((r = cdt_msg_add_u64(hello, "version", CDT_PROTOCOL_VERSION)) < 0 ||
	    (r = cdt_msg_add_string(hello, "provide", layer->provide, strlen(layer->provide))) <
		    0 ||
	    (r = cdt_msg_add_string(hello, "publish", layer->publish, strlen(layer->publish))) < 0)
		goto out;
	r = cdt_chan_send_wait(layer->chan, hello, layer_left_ms(deadline));
	if (r < 0)
		goto out;
	r = cdt_chan_recv_wait(layer->chan, &answer, layer_left_ms(deadline));
	if (r < 0)
		goto out;
	r = -CDT_E_PROTO;
	if (cdt_msg_kind(answer) != CDT_KIND_HELLO)
		goto out;
	if (cdt_msg_get_u64(answer, "version", &version) < 0)
		goto out;
	if (version != CDT_PROTOCOL_VERSION) {
		r = -CDT_E_VERSION;
		goto out;
	}
	if (cdt_msg_get_string(answer, "layer", &name, &name_len) < 0 || name_len == 0 ||
	    name_len > CDT_NAME_MAX)
		goto out;
	memcpy(layer->name, name, name_len + 1);
	r = 0;
out:
	cdt_msg_free(hello);
	cdt_msg_free(answer);
	return r;
}

int cdt_layer_open_fds(int chan_fd, int key_fd, const struct cdt_layer_options *opts,
		       cdt_layer **ret_layer)
{
	const char *provide = opts && opts->provide ? opts->provide : "";
	const char *publish = opts && opts->publish ? opts->publish : "";
	int timeout_ms =
		opts && opts->hello_timeout_ms ? opts->hello_timeout_ms : LAYER_HELLO_TIMEOUT_MS;
	cdt_keys *keys = NULL;
	cdt_layer *layer = NULL;
	int r;

	if (chan_fd == key_fd)
		key_fd = -1; /* one fd to close, not two */
	if (!ret_layer || chan_fd < 0 || key_fd < 0) {
		r = -EINVAL;
		goto out;
	}
	/* Before the secret is in memory: a non-dumpable process cannot be
	 * ptraced or core-dumped by its own uid, and exec turned this back on. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		r = -errno;
		goto out;
	}
	if (!layer_list_valid(provide) || !layer_list_valid(publish)) {
		r = -EINVAL;
		goto out;
	}
	layer = calloc(1, sizeof(*layer));
	if (!layer) {
		r = -ENOMEM;
		goto out;
	}
	layer->next_id = 1;
	buf_init(&layer->bulk_scratch, CDT_MSG_MAX + 16);
	layer->provide = strdup(provide);
	layer->publish = strdup(publish);
	if (!layer->provide || !layer->publish) {
		r = -ENOMEM;
		goto out;
	}
	r = cdt_keys_recv(key_fd, &keys);
	close(key_fd);
	key_fd = -1;
	if (r < 0)
		goto out;
	r = cdt_chan_new(chan_fd, keys, CDT_ROLE_LAYER, &layer->chan);
	chan_fd = -1; /* the channel owns it, also on failure */
	if (r < 0)
		goto out;
	r = layer_hello(layer, timeout_ms);
	if (r < 0)
		goto out;
	*ret_layer = layer;
	layer = NULL;
out:
	cdt_keys_free(keys);
	cdt_layer_free(layer);
	if (key_fd >= 0)
		close(key_fd);
	if (chan_fd >= 0)
		close(chan_fd);
	return r;
}

int cdt_layer_open(const struct cdt_layer_options *opts, cdt_layer **ret_layer)
{
	return cdt_layer_open_fds(LAYER_CHAN_FD, LAYER_KEY_FD, opts, ret_layer);
}

void cdt_layer_free(cdt_layer *layer)
{
	if (!layer)
		return;
	/* Callbacks run below; whatever they try on the layer now fails. */
	if (!layer->err)
		layer->err = -ECANCELED;
	layer_cancel_pending(layer, -ECANCELED);
	while (layer->pending) {
		/* Only a blocking call's record can be left: its caller is
		 * gone, since nothing else runs while it waits. */
		struct layer_pending *p = layer->pending;
		layer->pending = p->next;
		cdt_msg_free(p->reply);
		free(p);
	}
	while (layer->handlers) {
		struct layer_handler *h = layer->handlers;
		layer->handlers = h->next;
		free(h);
	}
	while (layer->subs) {
		struct layer_sub *s = layer->subs;
		layer->subs = s->next;
		free(s);
	}
	while (layer->qhead) {
		struct layer_qmsg *q = layer->qhead;
		layer->qhead = q->next;
		cdt_msg_free(q->msg);
		free(q);
	}
	while (layer->incoming) {
		struct layer_incoming *in = layer->incoming;
		layer->incoming = in->next;
		free(in);
	}
	cdt_chan_free(layer->chan);
	buf_free(&layer->bulk_scratch);
	free(layer->provide);
	free(layer->publish);
	free(layer);
}

const char *cdt_layer_name(const cdt_layer *layer)
{
	return layer ? layer->name : "";
}

int cdt_layer_error(const cdt_layer *layer)
{
	return layer ? layer->err : -EINVAL;
}

const char *cdt_layer_error_name(const cdt_layer *layer)
{
	return layer ? layer->errname : "";
}

int cdt_layer_serve(cdt_layer *layer, const char *method, cdt_layer_handler_fn handler,
		    void *userdata)
{
	struct layer_handler *h;

	if (!layer || !method || !handler)
		return -EINVAL;
	if (!layer_list_has(layer->provide, method))
		return -ENOENT;
	for (h = layer->handlers; h; h = h->next)
		if (strcmp(h->name, method) == 0)
			return -EEXIST;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	/* Fits: every word of provide passed msg_name_valid(). */
	strcpy(h->name, method);
	h->fn = handler;
	h->userdata = userdata;
	h->next = layer->handlers;
	layer->handlers = h;
	return 0;
}

/* Send an answer to a pending incoming call; it stays pending when the
 * answer could not be queued, so the handler may try again. */
static int layer_answer(cdt_layer *layer, const cdt_msg *call, cdt_msg *answer)
{
	int r;

	if (layer->err)
		return layer->err;
	if (cdt_msg_kind(call) != CDT_KIND_CALL ||
	    !layer_incoming_has(layer, cdt_msg_call_id(call)))
		return -ENOENT;
	answer->call_id = cdt_msg_call_id(call);
	r = layer_send(layer, answer);
	if (r < 0)
		return r;
	layer_incoming_take(layer, cdt_msg_call_id(call));
	return 0;
}

int cdt_layer_reply(cdt_layer *layer, const cdt_msg *call, cdt_msg *reply)
{
	cdt_msg *empty = NULL;
	int r;

	if (!layer || !call || (reply && cdt_msg_kind(reply) != CDT_KIND_REPLY))
		return -EINVAL;
	if (!reply) {
		r = cdt_msg_new(CDT_KIND_REPLY, cdt_msg_call_id(call), NULL, &empty);
		if (r < 0)
			return r;
		reply = empty;
	}
	r = layer_answer(layer, call, reply);
	cdt_msg_free(empty);
	return r;
}

int cdt_layer_reply_error(cdt_layer *layer, const cdt_msg *call, const char *error_name)
{
	cdt_msg *err = NULL;
	int r;

	if (!layer || !call || !error_name || cdt_msg_call_id(call) == 0)
		return -EINVAL;
	r = cdt_msg_new(CDT_KIND_ERROR, cdt_msg_call_id(call), error_name, &err);
	if (r < 0)
		return r;
	r = layer_answer(layer, call, err);
	cdt_msg_free(err);
	return r;
}

int cdt_layer_publish(cdt_layer *layer, const cdt_msg *event)
{
	if (!layer || !event || cdt_msg_kind(event) != CDT_KIND_EVENT)
		return -EINVAL;
	if (layer->err)
		return layer->err;
	/* An event outside our HELLO's `publish` is a violation (9.3). */
	if (!layer_list_has(layer->publish, cdt_msg_name(event)))
		return -EPERM;
	return layer_send(layer, event);
}

int cdt_layer_subscribe(cdt_layer *layer, const char *event, cdt_layer_event_fn cb, void *userdata)
{
	struct layer_sub *s;
	cdt_msg *msg = NULL;
	int r;

	if (!layer || !event || !cb)
		return -EINVAL;
	if (layer->err)
		return layer->err;
	for (s = layer->subs; s; s = s->next)
		if (strcmp(s->name, event) == 0)
			return -EEXIST;
	r = cdt_msg_new(CDT_KIND_SUBSCRIBE, 0, event, &msg);
	if (r < 0)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s) {
		r = -ENOMEM;
		goto out;
	}
	r = layer_send(layer, msg);
	if (r < 0)
		goto out;
	/* Fits: cdt_msg_new() checked the name. */
	strcpy(s->name, event);
	s->fn = cb;
	s->userdata = userdata;
	s->next = layer->subs;
	layer->subs = s;
	s = NULL;
out:
	free(s);
	cdt_msg_free(msg);
	return r;
}

int cdt_layer_fd(const cdt_layer *layer)
{
	return layer ? cdt_chan_fd(layer->chan) : -EINVAL;
}

bool cdt_layer_want_write(const cdt_layer *layer)
{
	return layer && cdt_chan_want_write(layer->chan);
}

int cdt_layer_close(cdt_layer *layer)
{
	int r;

	if (!layer)
		return -EINVAL;
	if (layer->err)
		return layer->err;
	r = cdt_chan_close(layer->chan);
	if (r < 0 && r != -EAGAIN)
		return layer_fail(layer, r);
	return r;
}
