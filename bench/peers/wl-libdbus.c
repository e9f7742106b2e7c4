/* SPDX-License-Identifier: MIT */
/*
 * D-Bus through the private dbus-daemon with libdbus (the reference
 * implementation) on both ends: Echo(ay) -> ay on a fresh well-known name.
 * Pipelined clients send without a pending-call object and pop the replies
 * off the connection in order.
 */
#include "peers.h"

#include <dbus/dbus.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LIBDBUS_PATH	   "/org/conduit/Bench"
#define LIBDBUS_IFACE	   "org.conduit.Bench"
#define LIBDBUS_TIMEOUT_MS 20000

static int libdbus_connect(const char *address, DBusConnection **ret_conn)
{
	DBusError err;
	DBusConnection *conn;

	if (!address)
		return -EINVAL;
	dbus_error_init(&err);
	conn = dbus_connection_open_private(address, &err);
	if (!conn) {
		dbus_error_free(&err);
		return -ECONNREFUSED;
	}
	/* A library must not end the process when the bus goes away. */
	dbus_connection_set_exit_on_disconnect(conn, FALSE);
	if (!dbus_bus_register(conn, &err)) {
		dbus_error_free(&err);
		dbus_connection_close(conn);
		dbus_connection_unref(conn);
		return -EPROTO;
	}
	*ret_conn = conn;
	return 0;
}

static void libdbus_disconnect(DBusConnection *conn)
{
	if (!conn)
		return;
	dbus_connection_close(conn);
	dbus_connection_unref(conn);
}

static int libdbus_echo(DBusConnection *conn, DBusMessage *call)
{
	DBusError err;
	DBusMessage *reply;
	const unsigned char *p;
	int n;
	int r = 0;

	dbus_error_init(&err);
	if (!dbus_message_get_args(call, &err, DBUS_TYPE_ARRAY, DBUS_TYPE_BYTE, &p, &n,
				   DBUS_TYPE_INVALID)) {
		dbus_error_free(&err);
		return -EBADMSG;
	}
	reply = dbus_message_new_method_return(call);
	if (!reply)
		return -ENOMEM;
	if (!dbus_message_append_args(reply, DBUS_TYPE_ARRAY, DBUS_TYPE_BYTE, &p, n,
				      DBUS_TYPE_INVALID) ||
	    !dbus_connection_send(conn, reply, NULL))
		r = -ENOMEM;
	dbus_message_unref(reply);
	return r;
}

static int libdbus_serve(const struct peers_env *env, int ready_fd)
{
	DBusConnection *conn = NULL;
	DBusError err;
	char byte = 1;
	int r = libdbus_connect(env->dbus_address, &conn);

	if (r < 0)
		return r;
	dbus_error_init(&err);
	r = dbus_bus_request_name(conn, env->dbus_name, DBUS_NAME_FLAG_DO_NOT_QUEUE, &err);
	dbus_error_free(&err);
	if (r != DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER) {
		r = -EEXIST;
		goto out;
	}
	r = -EPIPE;
	if (write(ready_fd, &byte, 1) != 1)
		goto out;
	close(ready_fd);
	/* read_write() blocks until the socket can move bytes; it also writes out
	 * the replies queued by the previous round. */
	while (dbus_connection_read_write(conn, -1)) {
		DBusMessage *m;

		while ((m = dbus_connection_pop_message(conn))) {
			r = 0;
			if (dbus_message_is_method_call(m, LIBDBUS_IFACE, "Echo"))
				r = libdbus_echo(conn, m);
			dbus_message_unref(m);
			if (r < 0)
				goto out;
		}
	}
	r = -EPIPE;
out:
	libdbus_disconnect(conn);
	return r;
}

struct libdbus_client {
	DBusConnection *conn;
	const char *dest;
};

static int libdbus_open(const struct peers_env *env, unsigned idx, void **ret_client)
{
	struct libdbus_client *c = calloc(1, sizeof(*c));
	int r;

	(void)idx;
	if (!c)
		return -ENOMEM;
	r = libdbus_connect(env->dbus_address, &c->conn);
	if (r < 0) {
		free(c);
		return r;
	}
	c->dest = env->dbus_name;
	*ret_client = c;
	return 0;
}

static int libdbus_request(struct libdbus_client *c, const void *req, size_t len,
			   DBusMessage **ret_msg)
{
	DBusMessage *m;
	const unsigned char *p = req;
	int n = (int)len;

	if (len > INT32_MAX)
		return -EMSGSIZE;
	m = dbus_message_new_method_call(c->dest, LIBDBUS_PATH, LIBDBUS_IFACE, "Echo");
	if (!m)
		return -ENOMEM;
	if (!dbus_message_append_args(m, DBUS_TYPE_ARRAY, DBUS_TYPE_BYTE, &p, n,
				      DBUS_TYPE_INVALID)) {
		dbus_message_unref(m);
		return -ENOMEM;
	}
	*ret_msg = m;
	return 0;
}

static int libdbus_take(DBusMessage *reply, void *buf, size_t len)
{
	DBusError err;
	const unsigned char *p;
	int n;

	if (dbus_message_get_type(reply) != DBUS_MESSAGE_TYPE_METHOD_RETURN)
		return -EIO;
	dbus_error_init(&err);
	if (!dbus_message_get_args(reply, &err, DBUS_TYPE_ARRAY, DBUS_TYPE_BYTE, &p, &n,
				   DBUS_TYPE_INVALID)) {
		dbus_error_free(&err);
		return -EBADMSG;
	}
	if (n < 0 || (size_t)n != len)
		return -EBADMSG;
	memcpy(buf, p, len);
	return 0;
}

static int libdbus_call(void *client, const void *req, void *ret_reply, size_t len)
{
	struct libdbus_client *c = client;
	DBusMessage *m = NULL, *reply;
	DBusError err;
	int r = libdbus_request(c, req, len, &m);

	if (r < 0)
		return r;
	dbus_error_init(&err);
	reply = dbus_connection_send_with_reply_and_block(c->conn, m, LIBDBUS_TIMEOUT_MS, &err);
	dbus_message_unref(m);
	if (!reply) {
		dbus_error_free(&err);
		return -EIO;
	}
	r = libdbus_take(reply, ret_reply, len);
	dbus_message_unref(reply);
	return r;
}

static int libdbus_send(void *client, const void *req, size_t len)
{
	struct libdbus_client *c = client;
	DBusMessage *m = NULL;
	int r = libdbus_request(c, req, len, &m);

	if (r < 0)
		return r;
	if (!dbus_connection_send(c->conn, m, NULL))
		r = -ENOMEM;
	dbus_message_unref(m);
	return r;
}

static int libdbus_recv(void *client, void *buf, size_t len)
{
	struct libdbus_client *c = client;

	for (;;) {
		DBusMessage *m = dbus_connection_pop_message(c->conn);

		if (!m) {
			if (!dbus_connection_read_write(c->conn, -1))
				return -EPIPE;
			continue;
		}
		int type = dbus_message_get_type(m);
		int r = 0;
		if (type == DBUS_MESSAGE_TYPE_METHOD_RETURN || type == DBUS_MESSAGE_TYPE_ERROR)
			r = libdbus_take(m, buf, len);
		dbus_message_unref(m);
		/* Anything else (NameAcquired and other signals) is not ours. */
		if (type == DBUS_MESSAGE_TYPE_METHOD_RETURN || type == DBUS_MESSAGE_TYPE_ERROR)
			return r;
	}
}

static void libdbus_close(void *client)
{
	struct libdbus_client *c = client;

	if (!c)
		return;
	libdbus_disconnect(c->conn);
	free(c);
}

const struct peers_ops peers_libdbus_ops = {
	.name = "D-Bus via dbus-daemon, libdbus",
	.needs_dbus = true,
	.serve = libdbus_serve,
	.open = libdbus_open,
	.call = libdbus_call,
	.send = libdbus_send,
	.recv = libdbus_recv,
	.close = libdbus_close,
};
