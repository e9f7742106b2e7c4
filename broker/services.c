/* SPDX-License-Identifier: MIT */
/*
 * services: the privileged methods the broker serves itself
 * (conduit.open, conduit.connect, conduit.listen).  The policy matcher has
 * allowed the call already; here the named resource is looked up in the
 * caller's own policy declarations and the fd is passed back.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "resource.h"

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

static int open_mode(unsigned bits, enum res_mode *ret)
{
	if (bits & POLICY_OPEN_CREATE)
		return -EOPNOTSUPP; /* broker/resource never creates files */
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
	return 0;
}

/* conduit.open / connect / listen.  The layer only names a resource; the
 * path, address, mode and flags all come from the policy's declaration for
 * this layer, so a layer can reach nothing its policy does not list. */
void services_resource(struct blayer *l, const cdt_msg *m, enum policy_res_kind kind)
{
	const char *key = kind == POLICY_RES_OPEN ? "path" : "name";
	const struct policy_resource *res;
	const char *val;
	enum res_mode mode;
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
		r = res->family == POLICY_FAMILY_TCP ? res_listen_tcp(hostport, 128, &fd)
						     : res_listen_unix(res->address, 128, &fd);
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
