/* SPDX-License-Identifier: MIT */
/*
 * D-Bus through the private dbus-daemon with sd-bus on both ends: a service
 * that owns a fresh well-known name and exports Echo(ay) -> ay, and clients
 * that call it (blocking for the latency table, asynchronously with several
 * calls in flight for throughput).
 */
#include "peers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#define SDBUS_PATH  "/org/conduit/Bench"
#define SDBUS_IFACE "org.conduit.Bench"
#define SDBUS_QUEUE 64 /* replies waiting for recv(); >= the pipelining depth */

static int sdbus_connect(const char *address, sd_bus **ret_bus)
{
	sd_bus *bus = NULL;
	int r;

	if (!address)
		return -EINVAL;
	r = sd_bus_new(&bus);
	if (r < 0)
		return r;
	r = sd_bus_set_address(bus, address);
	if (r >= 0)
		r = sd_bus_set_bus_client(bus, 1);
	if (r >= 0)
		r = sd_bus_start(bus);
	if (r < 0) {
		sd_bus_unref(bus);
		return r;
	}
	*ret_bus = bus;
	return 0;
}

static int sdbus_echo(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	sd_bus_message *reply = NULL;
	const void *p;
	size_t n;
	int r;

	(void)userdata;
	(void)ret_error;
	r = sd_bus_message_read_array(m, 'y', &p, &n);
	if (r < 0)
		return r;
	r = sd_bus_message_new_method_return(m, &reply);
	if (r < 0)
		return r;
	r = sd_bus_message_append_array(reply, 'y', p, n);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 1;
}

/* UNPRIVILEGED: without it sd-bus checks every caller for CAP_SYS_ADMIN and,
 * on a bus not marked trusted, asks the dbus-daemon for the caller's
 * credentials first: one more synchronous round trip through the daemon per
 * call.  Here access control is the daemon policy's job, as in the setup the
 * comparison is about. */
static const sd_bus_vtable sdbus_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD("Echo", "ay", "ay", sdbus_echo, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END,
};

static int sdbus_serve(const struct peers_env *env, int ready_fd)
{
	sd_bus *bus = NULL;
	char byte = 1;
	int r = sdbus_connect(env->dbus_address, &bus);

	if (r < 0)
		return r;
	r = sd_bus_add_object_vtable(bus, NULL, SDBUS_PATH, SDBUS_IFACE, sdbus_vtable, NULL);
	if (r < 0)
		goto out;
	r = sd_bus_request_name(bus, env->dbus_name, 0);
	if (r == 0)
		r = -EEXIST; /* queued behind another owner: calls would not reach us */
	if (r < 0)
		goto out;
	r = -EPIPE;
	if (write(ready_fd, &byte, 1) != 1)
		goto out;
	close(ready_fd);
	for (;;) {
		r = sd_bus_process(bus, NULL);
		if (r < 0)
			goto out;
		if (r > 0)
			continue;
		r = sd_bus_wait(bus, UINT64_MAX);
		if (r < 0 && r != -EINTR)
			goto out;
	}
out:
	sd_bus_flush_close_unref(bus);
	return r;
}

struct sdbus_client {
	sd_bus *bus;
	const char *dest;
	sd_bus_message *queue[SDBUS_QUEUE]; /* replies in arrival order */
	unsigned head, count;
	int err; /* first failed reply */
};

static int sdbus_open(const struct peers_env *env, unsigned idx, void **ret_client)
{
	struct sdbus_client *c = calloc(1, sizeof(*c));
	int r;

	(void)idx;
	if (!c)
		return -ENOMEM;
	r = sdbus_connect(env->dbus_address, &c->bus);
	if (r < 0) {
		free(c);
		return r;
	}
	c->dest = env->dbus_name;
	*ret_client = c;
	return 0;
}

static int sdbus_request(struct sdbus_client *c, const void *req, size_t len,
			 sd_bus_message **ret_msg)
{
	sd_bus_message *m = NULL;
	int r = sd_bus_message_new_method_call(c->bus, &m, c->dest, SDBUS_PATH, SDBUS_IFACE,
					       "Echo");

	if (r < 0)
		return r;
	r = sd_bus_message_append_array(m, 'y', req, len);
	if (r < 0) {
		sd_bus_message_unref(m);
		return r;
	}
	*ret_msg = m;
	return 0;
}

static int sdbus_take(sd_bus_message *reply, void *buf, size_t len)
{
	const void *p;
	size_t n;
	int r = sd_bus_message_read_array(reply, 'y', &p, &n);

	if (r < 0)
		return r;
	if (n != len)
		return -EBADMSG;
	memcpy(buf, p, len);
	return 0;
}

static int sdbus_call(void *client, const void *req, void *ret_reply, size_t len)
{
	struct sdbus_client *c = client;
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *m = NULL, *reply = NULL;
	int r = sdbus_request(c, req, len, &m);

	if (r < 0)
		return r;
	r = sd_bus_call(c->bus, m, 0, &err, &reply);
	if (r >= 0)
		r = sdbus_take(reply, ret_reply, len);
	sd_bus_error_free(&err);
	sd_bus_message_unref(reply);
	sd_bus_message_unref(m);
	return r;
}

static int sdbus_on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct sdbus_client *c = userdata;

	(void)ret_error;
	if (sd_bus_message_is_method_error(m, NULL)) {
		int e = sd_bus_message_get_errno(m);

		c->err = e > 0 ? -e : -EIO;
		return 0;
	}
	if (c->count >= SDBUS_QUEUE) {
		c->err = -ENOBUFS;
		return 0;
	}
	c->queue[(c->head + c->count) % SDBUS_QUEUE] = sd_bus_message_ref(m);
	c->count++;
	return 0;
}

static int sdbus_send(void *client, const void *req, size_t len)
{
	struct sdbus_client *c = client;
	sd_bus_message *m = NULL;
	int r = sdbus_request(c, req, len, &m);

	if (r < 0)
		return r;
	/* A floating slot: sd-bus frees it once the reply has been handled. */
	r = sd_bus_call_async(c->bus, NULL, m, sdbus_on_reply, c, 0);
	sd_bus_message_unref(m);
	return r < 0 ? r : 0;
}

static int sdbus_recv(void *client, void *buf, size_t len)
{
	struct sdbus_client *c = client;
	int r;

	while (c->count == 0 && c->err == 0) {
		r = sd_bus_process(c->bus, NULL);
		if (r < 0)
			return r;
		if (r > 0)
			continue;
		r = sd_bus_wait(c->bus, UINT64_MAX);
		if (r < 0 && r != -EINTR)
			return r;
	}
	if (c->err < 0)
		return c->err;
	sd_bus_message *reply = c->queue[c->head];
	c->head = (c->head + 1) % SDBUS_QUEUE;
	c->count--;
	r = sdbus_take(reply, buf, len);
	sd_bus_message_unref(reply);
	return r;
}

static void sdbus_close(void *client)
{
	struct sdbus_client *c = client;

	if (!c)
		return;
	for (; c->count > 0; c->count--, c->head = (c->head + 1) % SDBUS_QUEUE)
		sd_bus_message_unref(c->queue[c->head]);
	sd_bus_flush_close_unref(c->bus);
	free(c);
}

const struct peers_ops peers_sdbus_ops = {
	.name = "D-Bus via dbus-daemon, sd-bus",
	.needs_dbus = true,
	.serve = sdbus_serve,
	.open = sdbus_open,
	.call = sdbus_call,
	.send = sdbus_send,
	.recv = sdbus_recv,
	.close = sdbus_close,
};
