/* SPDX-License-Identifier: MIT */
/* Internal state of a layer session, shared by layer.c (open, HELLO,
 * outgoing messages) and layer-dispatch.c (incoming messages, calls, the
 * loop).  docs/layer-api.md and docs/protocol.md section 9. */
#ifndef CONDUIT_LAYER_H
#define CONDUIT_LAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "conduit/conduit.h"

/* Calls of ours awaiting an answer, abandoned ones included: the broker
 * answers every call by its deadline, so this drains. */
#define LAYER_PENDING_MAX      1024u
/* Calls routed to us not answered yet; past it we answer conduit.busy. */
#define LAYER_INCOMING_MAX     1024u
/* Messages held in memory while a blocking call waits.  The broker bounds
 * what it queues for us far below this; more is a broken session. */
#define LAYER_QUEUE_MAX	       4096u
/* Messages read from the socket per cdt_layer_dispatch(), so one busy
 * layer still returns to its own loop. */
#define LAYER_BATCH	       64
#define LAYER_HELLO_TIMEOUT_MS 5000

struct layer_pending {
	struct layer_pending *next;
	uint64_t id;
	cdt_layer_reply_fn cb;
	void *userdata;
	bool blocking;	/* the one cdt_layer_call() waiting now */
	bool abandoned; /* its blocking call timed out: drop the answer */
	cdt_msg *reply; /* blocking: the answer, once here */
};

struct layer_handler {
	struct layer_handler *next;
	cdt_layer_handler_fn fn;
	void *userdata;
	char name[CDT_NAME_MAX + 1];
};

struct layer_sub {
	struct layer_sub *next;
	cdt_layer_event_fn fn;
	void *userdata;
	char name[CDT_NAME_MAX + 1];
};

struct layer_qmsg {
	struct layer_qmsg *next;
	cdt_msg *msg;
};

struct layer_incoming {
	struct layer_incoming *next;
	uint64_t id;
};

struct cdt_layer {
	cdt_chan *chan;
	int err; /* sticky: once set, every call returns it */
	char name[CDT_NAME_MAX + 1];
	char errname[CDT_NAME_MAX + 1];
	char *provide;
	char *publish;
	uint64_t next_id;
	struct layer_pending *pending;
	size_t npending;
	struct layer_handler *handlers;
	struct layer_sub *subs;
	struct layer_qmsg *qhead;
	struct layer_qmsg *qtail;
	size_t nqueued;
	struct layer_incoming *incoming;
	size_t nincoming;
	struct buf bulk_scratch; /* msg_bulk_seal_scratch() */
};

/* Mark the layer unusable with err (the first error wins) and return it.
 * After the broker's FIN, answer with ours. */
int layer_fail(cdt_layer *layer, int err);
/* Send msg after the checks every outgoing message gets (no reserved `_`
 * argument); a broken channel fails the layer. */
int layer_send(cdt_layer *layer, const cdt_msg *msg);
/* Whether name is a word of the space-separated list. */
bool layer_list_has(const char *list, const char *name);
/* Complete every pending asynchronous call with err (once). */
void layer_cancel_pending(cdt_layer *layer, int err);
/* Remember / forget an incoming call we owe an answer. */
int layer_incoming_add(cdt_layer *layer, uint64_t id);
bool layer_incoming_take(cdt_layer *layer, uint64_t id);

#endif
