/* SPDX-License-Identifier: MIT */
/*
 * The floor: an echo over a bare AF_UNIX socketpair, no framing, no crypto.
 * SEQPACKET carries a payload as datagrams of at most PEERS_CHUNK bytes (the
 * kernel's default socket buffer cannot hold one 1 MiB datagram); STREAM
 * carries it as a byte stream.  Both sides know the payload size.
 */
#include "peers.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct sock_client {
	int fd;
	int type;
};

static int seq_send(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		size_t n = len < PEERS_CHUNK ? len : PEERS_CHUNK;
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if ((size_t)w != n)
			return -EIO; /* SEQPACKET sends whole records or nothing */
		p += n;
		len -= n;
	}
	return 0;
}

static int seq_recv(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		size_t n = len < PEERS_CHUNK ? len : PEERS_CHUNK;
		ssize_t r = recv(fd, p, n, MSG_TRUNC);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EPIPE;
		if ((size_t)r != n)
			return -EBADMSG; /* a record of the wrong size: framing broken */
		p += n;
		len -= n;
	}
	return 0;
}

static int msg_send(int type, int fd, const void *buf, size_t len)
{
	return type == SOCK_SEQPACKET ? seq_send(fd, buf, len) : peers_write_full(fd, buf, len);
}

static int msg_recv(int type, int fd, void *buf, size_t len)
{
	return type == SOCK_SEQPACKET ? seq_recv(fd, buf, len) : peers_read_full(fd, buf, len);
}

/* Receives a whole request before sending the reply: echoing chunk by chunk
 * would let both sides fill their buffers and block each other at 1 MiB. */
static int echo_one(int type, int fd, void *buf, size_t len)
{
	int r = msg_recv(type, fd, buf, len);

	if (r < 0)
		return r;
	return msg_send(type, fd, buf, len);
}

static int sock_serve(const struct peers_env *env, int ready_fd)
{
	struct pollfd pfd[PEERS_MAX_CLIENTS];
	void *buf = malloc(env->size);
	unsigned n = env->nclients, open = n;
	char byte = 1;
	int r = -ENOMEM;

	if (!buf)
		goto out;
	for (unsigned i = 0; i < n; i++)
		pfd[i] = (struct pollfd){.fd = env->server_fds[i], .events = POLLIN};
	r = -EPIPE;
	if (write(ready_fd, &byte, 1) != 1)
		goto out;
	close(ready_fd);
	if (n == 1) {
		/* One client: no poll() in the way of the floor. */
		for (;;) {
			r = echo_one(env->sock_type, pfd[0].fd, buf, env->size);
			if (r < 0)
				goto out;
		}
	}
	while (open > 0) {
		int k = poll(pfd, n, -1);

		if (k < 0 && errno == EINTR)
			continue;
		r = -errno;
		if (k < 0)
			goto out;
		for (unsigned i = 0; i < n; i++) {
			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = echo_one(env->sock_type, pfd[i].fd, buf, env->size);
			if (r == -EPIPE || r == -ECONNRESET) {
				pfd[i].fd = -1; /* that client is done */
				open--;
				continue;
			}
			if (r < 0)
				goto out;
		}
	}
	r = -EPIPE;
out:
	free(buf);
	return r;
}

static int sock_open(const struct peers_env *env, unsigned idx, void **ret_client)
{
	struct sock_client *c;

	if (idx >= env->nclients || env->client_fds[idx] < 0)
		return -EINVAL;
	c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = env->client_fds[idx];
	c->type = env->sock_type;
	*ret_client = c;
	return 0;
}

static int sock_send(void *client, const void *req, size_t len)
{
	struct sock_client *c = client;

	return msg_send(c->type, c->fd, req, len);
}

static int sock_recv(void *client, void *buf, size_t len)
{
	struct sock_client *c = client;

	return msg_recv(c->type, c->fd, buf, len);
}

/* The fd belongs to the harness's environment. */
static void sock_close(void *client)
{
	free(client);
}

const struct peers_ops peers_seqpacket_ops = {
	.name = "raw SEQPACKET socketpair (floor)",
	.sock_type = SOCK_SEQPACKET,
	.serve = sock_serve,
	.open = sock_open,
	.send = sock_send,
	.recv = sock_recv,
	.close = sock_close,
};

const struct peers_ops peers_stream_ops = {
	.name = "raw STREAM socketpair",
	.sock_type = SOCK_STREAM,
	.serve = sock_serve,
	.open = sock_open,
	.send = sock_send,
	.recv = sock_recv,
	.close = sock_close,
};
