/* SPDX-License-Identifier: MIT */
/*
 * services: the methods the broker serves itself: conduit.ping, and the
 * privileged conduit.open, conduit.connect, conduit.listen.  The policy matcher has
 * allowed the call already; here the named resource is looked up in the
 * caller's own policy declarations and the fd is passed back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "msg.h"
#include "resource.h"

/* conduit.ping: an empty REPLY, or one carrying the call's "payload" bytes
 * back unchanged, so a client can measure a broker round trip at any size.
 * The policy bounds the payload like any argument (payload len 0..N); an
 * argument of another type is ignored, as a ping without payload. */
void services_ping(struct blayer *l, const cdt_msg *m)
{
	uint64_t id = cdt_msg_call_id(m);
	const uint8_t *p;
	size_t n;
	cdt_msg *r = NULL;

	/* A bulk payload is echoed as it came, the same sealed memfd, so the
	 * broker never reads it (protocol 4.1). */
	if (msg_is_bulk(m, "payload")) {
		if (cdt_msg_new(CDT_KIND_REPLY, id, NULL, &r) == 0 &&
		    msg_copy_bulk(r, m, "payload") == 0)
			(void)dispatch_send(l, r);
		else
			dispatch_send_simple(l, CDT_KIND_ERROR, id, "conduit.failed");
		cdt_msg_free(r);
		return;
	}
	if (cdt_msg_get_bytes(m, "payload", &p, &n) < 0) {
		dispatch_send_simple(l, CDT_KIND_REPLY, id, NULL);
		return;
	}
	if (cdt_msg_new(CDT_KIND_REPLY, id, NULL, &r) == 0 &&
	    cdt_msg_add_bytes(r, "payload", p, n) == 0)
		(void)dispatch_send(l, r);
	else
		dispatch_send_simple(l, CDT_KIND_ERROR, id, "conduit.failed");
	cdt_msg_free(r);
}

/* Reply with one fd argument "fd", then close ours. */
static void reply_fd(struct blayer *l, uint64_t id, int fd)
{
	cdt_msg *m = NULL;

	if (cdt_msg_new(CDT_KIND_REPLY, id, NULL, &m) == 0 && cdt_msg_add_fd(m, "fd", fd) == 0)
		(void)dispatch_send(l, m);
	else
		dispatch_send_simple(l, CDT_KIND_ERROR, id, "conduit.failed");
	cdt_msg_free(m);
	close(fd);
}

static int open_mode(unsigned bits, unsigned *ret)
{
	const unsigned create = bits & POLICY_OPEN_CREATE ? RES_MODE_CREATE : 0;

	bits &= ~(unsigned)POLICY_OPEN_CREATE;
	if (bits == POLICY_OPEN_READ)
		*ret = RES_MODE_READ;
	else if (bits == (POLICY_OPEN_READ | POLICY_OPEN_WRITE))
		*ret = RES_MODE_READ_WRITE;
	else if (bits == (POLICY_OPEN_WRITE | POLICY_OPEN_APPEND))
		*ret = RES_MODE_APPEND;
	else if (bits == POLICY_OPEN_WRITE)
		*ret = RES_MODE_WRITE;
	else
		return -EINVAL;
	*ret |= create;
	return 0;
}

/* conduit.open / connect / listen.  The layer only names a resource; the
 * path, address, mode and flags all come from the policy's declaration for
 * this layer, so a layer can reach nothing its policy does not list. */
/* A listening socket the broker keeps for the broker's lifetime, so a
 * layer that restarts gets the same socket (and its queued connections)
 * instead of a bind that fails on the existing unix path. */
struct listener {
	struct listener *next;
	char *key; /* layer, resource name, family, address, port */
	int fd;
};

static int listen_get(struct blayer *l, const struct policy_resource *res, const char *hostport,
		      int *ret_fd)
{
	struct broker *b = l->b;
	struct listener *q;
	char key[POLICY_LAYER_NAME_MAX + CDT_NAME_MAX + POLICY_TOKEN_MAX + 64];
	int fd, r;

	snprintf(key, sizeof(key), "%s/%s/%d/%s/%u", l->name, res->name, (int)res->family,
		 res->address, (unsigned)res->port);
	for (q = b->listeners; q; q = q->next)
		if (strcmp(q->key, key) == 0)
			break;
	if (!q) {
		q = calloc(1, sizeof(*q));
		if (!q)
			return -ENOMEM;
		q->key = strdup(key);
		r = q->key ? 0 : -ENOMEM;
		if (r == 0)
			r = res->family == POLICY_FAMILY_TCP
				    ? res_listen_tcp(hostport, 128, &q->fd)
				    : res_listen_unix(res->address, 128, &q->fd);
		if (r < 0) {
			free(q->key);
			free(q);
			return r;
		}
		q->next = b->listeners;
		b->listeners = q;
	}
	/* The layer gets its own fd; ours stays for the next call. */
	fd = fcntl(q->fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return -errno;
	*ret_fd = fd;
	return 0;
}

void services_fini(struct broker *b)
{
	while (b->listeners) {
		struct listener *q = b->listeners;
		b->listeners = q->next;
		close(q->fd);
		free(q->key);
		free(q);
	}
}

void services_resource(struct blayer *l, const cdt_msg *m, enum policy_res_kind kind)
{
	const char *key = kind == POLICY_RES_OPEN ? "path" : "name";
	const struct policy_resource *res;
	const char *val;
	unsigned mode;
	char hostport[128];
	uint64_t id = cdt_msg_call_id(m);
	int fd = -1, r;

	if (cdt_msg_get_string(m, key, &val, NULL) < 0) {
		dispatch_send_simple(l, CDT_KIND_ERROR, id, "conduit.denied");
		return;
	}
	res = policy_resource_find(l->pl, kind, val);
	if (!res) {
		dispatch_send_simple(l, CDT_KIND_ERROR, id, "conduit.denied");
		return;
	}
	if (res->family == POLICY_FAMILY_TCP)
		snprintf(hostport, sizeof(hostport),
			 strchr(res->address, ':') ? "[%s]:%u" : "%s:%u", res->address,
			 (unsigned)res->port);
	switch (kind) {
	case POLICY_RES_OPEN:
		/* openat2 beneath "/" with RESOLVE_BENEATH | NO_SYMLINKS |
		 * NO_MAGICLINKS and flags derived from the policy's mode only. */
		r = open_mode(res->open_mode, &mode);
		if (r >= 0)
			r = res_open(l->b->root_fd, res->address + (res->address[0] == '/'), mode,
				     &fd);
		break;
	case POLICY_RES_CONNECT:
		/* Numeric addresses only: no name service answer becomes policy.
		 * An in-progress connect is passed as is; the layer polls it. */
		r = res->family == POLICY_FAMILY_TCP ? res_connect_tcp(hostport, &fd)
						     : res_connect_unix(res->address, &fd);
		break;
	case POLICY_RES_LISTEN:
		/* Bound to the policy's numeric address or absolute path only. */
		r = listen_get(l, res, hostport, &fd);
		break;
	default:
		r = -EINVAL;
	}
	if (r < 0) {
		broker_log("layer %s: %s %s: %s", l->name, cdt_msg_name(m), val, strerror(-r));
		dispatch_send_simple(l, CDT_KIND_ERROR, id, "conduit.failed");
		return;
	}
	reply_fd(l, id, fd);
}
