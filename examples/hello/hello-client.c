/* SPDX-License-Identifier: MIT */
/*
 * hello-client: the `client` layer of examples/hello.  Calls hello.greet
 * every second and prints the answer; prints every hello.greeted event.
 * It keeps its own poll() loop (a timer and the layer's fd), the way a
 * layer with other work to do would.
 *
 *   hello-client [--once] [NAME]
 *
 * --once: one blocking call, then a clean stop.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conduit/conduit.h"

#define CALL_TIMEOUT_MS 5000
#define PERIOD_MS	1000

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void print_greeting(const cdt_msg *reply)
{
	const char *text;
	if (cdt_msg_get_string(reply, "greeting", &text, NULL) < 0)
		text = "(no greeting)";
	printf("%s\n", text);
	fflush(stdout);
}

static void on_greeted(cdt_layer *layer, const cdt_msg *event, void *userdata)
{
	(void)layer;
	(void)userdata;
	const char *name, *publisher;
	uint64_t count;
	if (cdt_msg_get_string(event, "name", &name, NULL) < 0 ||
	    cdt_msg_get_u64(event, "count", &count) < 0)
		return;
	if (cdt_msg_get_string(event, "_publisher", &publisher, NULL) < 0)
		publisher = "?";
	printf("event: %s greeted %s (#%llu)\n", publisher, name, (unsigned long long)count);
	fflush(stdout);
}

static void on_reply(cdt_layer *layer, int result, cdt_msg *reply, void *userdata)
{
	(void)layer;
	(void)userdata;
	if (result == 0)
		print_greeting(reply);
	else if (result == -EREMOTEIO)
		fprintf(stderr, "hello-client: hello.greet failed: %s\n", cdt_msg_name(reply));
	else
		fprintf(stderr, "hello-client: hello.greet: %s\n", cdt_strerror(result));
}

static cdt_msg *greet_call(const char *name)
{
	cdt_msg *call = NULL;
	/* call_id 1 is a placeholder: the library picks the real one. */
	if (cdt_msg_new(CDT_KIND_CALL, 1, "hello.greet", &call) < 0)
		return NULL;
	if (cdt_msg_add_string(call, "name", name, strlen(name)) < 0) {
		cdt_msg_free(call);
		return NULL;
	}
	return call;
}

static int run_once(cdt_layer *layer, const char *name)
{
	cdt_msg *call = greet_call(name), *reply = NULL;
	int r;

	if (!call)
		return -ENOMEM;
	r = cdt_layer_call(layer, call, CALL_TIMEOUT_MS, &reply);
	cdt_msg_free(call);
	if (r == -EREMOTEIO)
		fprintf(stderr, "hello-client: hello.greet failed: %s\n",
			cdt_layer_error_name(layer));
	if (r < 0)
		return r;
	print_greeting(reply);
	cdt_msg_free(reply);
	/* A clean stop: our FIN, then events queued meanwhile are still
	 * dispatched until the broker's FIN. */
	r = cdt_layer_close(layer);
	if (r < 0 && r != -EAGAIN)
		return r;
	return cdt_layer_run(layer);
}

static int run_loop(cdt_layer *layer, const char *name)
{
	int64_t next = now_ms();
	int r;

	for (;;) {
		int64_t now = now_ms();
		if (now >= next) {
			cdt_msg *call = greet_call(name);
			if (!call)
				return -ENOMEM;
			r = cdt_layer_call_async(layer, call, on_reply, NULL);
			cdt_msg_free(call);
			if (r < 0 && r != -EBUSY && r != -ENOBUFS)
				return r;
			next = now + PERIOD_MS;
			now = now_ms();
		}
		struct pollfd pfd = {
			.fd = cdt_layer_fd(layer),
			.events = POLLIN | (cdt_layer_want_write(layer) ? POLLOUT : 0),
		};
		int64_t wait = next > now ? next - now : 0;
		if (cdt_layer_want_dispatch(layer))
			wait = 0;
		if (poll(&pfd, 1, wait > INT_MAX ? INT_MAX : (int)wait) < 0 && errno != EINTR)
			return -errno;
		r = cdt_layer_dispatch(layer);
		if (r == -CDT_E_CLOSED)
			return 0;
		if (r < 0)
			return r;
	}
}

int main(int argc, char **argv)
{
	const struct cdt_layer_options opts = {0}; /* provides and publishes nothing */
	const char *name = "world";
	bool once = false;
	cdt_layer *layer = NULL;
	int r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--once") == 0)
			once = true;
		else
			name = argv[i];
	}
	r = cdt_init();
	if (r < 0)
		goto out;
	r = cdt_layer_open(&opts, &layer);
	if (r < 0)
		goto out;
	fprintf(stderr, "hello-client: session open as %s\n", cdt_layer_name(layer));
	r = cdt_layer_subscribe(layer, "hello.greeted", on_greeted, NULL);
	if (r < 0)
		goto out;
	r = once ? run_once(layer, name) : run_loop(layer, name);
out:
	if (r < 0)
		fprintf(stderr, "hello-client: %s\n", cdt_strerror(r));
	cdt_layer_free(layer);
	return r < 0 ? 1 : 0;
}
