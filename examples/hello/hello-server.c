/* SPDX-License-Identifier: MIT */
/*
 * hello-server: the `greeter` layer of examples/hello.  Serves hello.greet
 * (name -> greeting) and publishes hello.greeted after each greeting.  It
 * has no loop of its own: cdt_layer_run() dispatches until the broker
 * ends the session.
 */
#include <stdio.h>
#include <string.h>

#include "conduit/conduit.h"

#define NAME_MAX_LEN 32 /* the policy allows 1..32 bytes; checked again here */

struct greeter {
	uint64_t count;
};

static int greet_reply(cdt_layer *layer, const cdt_msg *call, const char *name, struct greeter *g)
{
	char text[sizeof("hello, ") + NAME_MAX_LEN];
	cdt_msg *reply = NULL, *event = NULL;
	int r;

	snprintf(text, sizeof(text), "hello, %s", name);
	r = cdt_msg_new(CDT_KIND_REPLY, cdt_msg_call_id(call), NULL, &reply);
	if (r < 0)
		goto out;
	r = cdt_msg_add_string(reply, "greeting", text, strlen(text));
	if (r < 0)
		goto out;
	r = cdt_layer_reply(layer, call, reply);
	if (r < 0)
		goto out;
	g->count++;
	/* Subscribers learn about every greeting, whoever asked for it. */
	r = cdt_msg_new(CDT_KIND_EVENT, 0, "hello.greeted", &event);
	if (r < 0)
		goto out;
	if ((r = cdt_msg_add_string(event, "name", name, strlen(name))) < 0 ||
	    (r = cdt_msg_add_u64(event, "count", g->count)) < 0)
		goto out;
	r = cdt_layer_publish(layer, event);
out:
	cdt_msg_free(reply);
	cdt_msg_free(event);
	return r;
}

static void on_greet(cdt_layer *layer, cdt_msg *call, void *userdata)
{
	struct greeter *g = userdata;
	const char *name, *caller;
	size_t len;
	int r;

	if (cdt_msg_get_string(call, "_caller", &caller, NULL) < 0)
		caller = "?";
	if (cdt_msg_get_string(call, "name", &name, &len) < 0 || len == 0 || len > NAME_MAX_LEN) {
		r = cdt_layer_reply_error(layer, call, "hello.bad_name");
	} else {
		r = greet_reply(layer, call, name, g);
		if (r == 0)
			fprintf(stderr, "hello-server: greeted %s for %s\n", name, caller);
	}
	if (r < 0)
		fprintf(stderr, "hello-server: answering %s: %s\n", caller, cdt_strerror(r));
	cdt_msg_free(call);
}

int main(void)
{
	const struct cdt_layer_options opts = {
		.provide = "hello.greet",
		.publish = "hello.greeted",
	};
	struct greeter g = {0};
	cdt_layer *layer = NULL;
	int r;

	r = cdt_init();
	if (r < 0)
		goto out;
	r = cdt_layer_open(&opts, &layer);
	if (r < 0)
		goto out;
	r = cdt_layer_serve(layer, "hello.greet", on_greet, &g);
	if (r < 0)
		goto out;
	r = cdt_layer_run(layer);
out:
	if (r < 0)
		fprintf(stderr, "hello-server: %s\n", cdt_strerror(r));
	cdt_layer_free(layer);
	return r < 0 ? 1 : 0;
}
