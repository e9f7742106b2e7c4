/* SPDX-License-Identifier: MIT */
/*
 * ZeroMQ over ipc://, without and with CURVE.  The latency table uses
 * REQ/REP, ZeroMQ's request/response pattern.  REQ allows one call in
 * flight, so the pipelined throughput clients use DEALER against a ROUTER
 * server, which is how ZeroMQ applications pipeline calls.
 */
#include "peers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

struct zmq_client {
	void *ctx;
	void *sock;
};

static int zmq_err(void)
{
	return errno > 0 ? -errno : -EIO;
}

static int zmq_prepare_curve(struct peers_env *env)
{
	if (!zmq_has("curve"))
		return -ENOTSUP;
	env->curve = true;
	if (zmq_curve_keypair(env->curve_public, env->curve_secret) != 0)
		return zmq_err();
	return 0;
}

static int zmq_setup(void *sock, const struct peers_env *env, bool server)
{
	int zero = 0, one = 1;
	char pub[PEERS_KEY_Z85], sec[PEERS_KEY_Z85];

	if (zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero)) != 0)
		return zmq_err();
	if (!env->curve)
		return 0;
	if (server) {
		if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
		    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, env->curve_secret, 40) != 0)
			return zmq_err();
		return 0;
	}
	/* Each client has its own key pair, as each real client would. */
	if (zmq_curve_keypair(pub, sec) != 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, env->curve_public, 40) != 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, 40) != 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, 40) != 0)
		return zmq_err();
	return 0;
}

/* Forwards every frame of one message back out of the same socket: for REP
 * that is the payload, for ROUTER the client's identity and the payload. */
static int zmq_echo_one(void *sock, zmq_msg_t *msg)
{
	int more;

	do {
		if (zmq_msg_recv(msg, sock, 0) < 0)
			return zmq_err();
		more = zmq_msg_more(msg);
		if (zmq_msg_send(msg, sock, more ? ZMQ_SNDMORE : 0) < 0)
			return zmq_err();
	} while (more);
	return 0;
}

static int zmq_serve(const struct peers_env *env, int ready_fd)
{
	void *ctx = zmq_ctx_new(), *sock = NULL;
	zmq_msg_t msg;
	char byte = 1;
	int r = -ENOMEM;

	if (!ctx)
		return r;
	zmq_msg_init(&msg);
	sock = zmq_socket(ctx, env->pipelined ? ZMQ_ROUTER : ZMQ_REP);
	if (!sock) {
		r = zmq_err();
		goto out;
	}
	r = zmq_setup(sock, env, true);
	if (r < 0)
		goto out;
	if (zmq_bind(sock, env->zmq_endpoint) != 0) {
		r = zmq_err();
		goto out;
	}
	r = -EPIPE;
	if (write(ready_fd, &byte, 1) != 1)
		goto out;
	close(ready_fd);
	for (;;) {
		r = zmq_echo_one(sock, &msg);
		if (r < 0 && r != -EINTR)
			goto out;
	}
out:
	zmq_msg_close(&msg);
	if (sock)
		zmq_close(sock);
	zmq_ctx_term(ctx);
	return r;
}

static void zmq_client_free(struct zmq_client *c)
{
	if (!c)
		return;
	if (c->sock)
		zmq_close(c->sock);
	if (c->ctx)
		zmq_ctx_term(c->ctx);
	free(c);
}

static int zmq_open(const struct peers_env *env, unsigned idx, void **ret_client)
{
	struct zmq_client *c = calloc(1, sizeof(*c));
	int r = -ENOMEM;

	(void)idx;
	if (!c)
		return r;
	c->ctx = zmq_ctx_new();
	if (!c->ctx)
		goto fail;
	c->sock = zmq_socket(c->ctx, env->pipelined ? ZMQ_DEALER : ZMQ_REQ);
	if (!c->sock) {
		r = zmq_err();
		goto fail;
	}
	r = zmq_setup(c->sock, env, false);
	if (r < 0)
		goto fail;
	if (zmq_connect(c->sock, env->zmq_endpoint) != 0) {
		r = zmq_err();
		goto fail;
	}
	*ret_client = c;
	return 0;
fail:
	zmq_client_free(c);
	return r;
}

static int zmq_send_req(void *client, const void *req, size_t len)
{
	struct zmq_client *c = client;

	for (;;) {
		if (zmq_send(c->sock, req, len, 0) >= 0)
			return 0;
		if (errno != EINTR)
			return zmq_err();
	}
}

static int zmq_recv_rep(void *client, void *buf, size_t len)
{
	struct zmq_client *c = client;

	for (;;) {
		int n = zmq_recv(c->sock, buf, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return zmq_err();
		/* zmq_recv() reports the full size even when it truncated. */
		return (size_t)n == len ? 0 : -EBADMSG;
	}
}

static void zmq_close_client(void *client)
{
	zmq_client_free(client);
}

const struct peers_ops peers_zmq_ops = {
	.name = "ZeroMQ REQ/REP ipc://, no CURVE",
	.serve = zmq_serve,
	.open = zmq_open,
	.send = zmq_send_req,
	.recv = zmq_recv_rep,
	.close = zmq_close_client,
};

const struct peers_ops peers_zmq_curve_ops = {
	.name = "ZeroMQ REQ/REP ipc://, CURVE",
	.prepare = zmq_prepare_curve,
	.serve = zmq_serve,
	.open = zmq_open,
	.send = zmq_send_req,
	.recv = zmq_recv_rep,
	.close = zmq_close_client,
};
