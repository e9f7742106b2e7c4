/* SPDX-License-Identifier: MIT */
/*
 * The canonical message encoding, version 1 (docs/protocol.md section 4).
 *
 * Decoding is one pass over the input after the fixed header: the header
 * gives the number of arguments, and the store never needs more bytes than
 * the arguments take on the wire (every length prefix is at least as long
 * as the terminator it becomes), so one allocation sized from the wire
 * length holds the message, its argument table and its store, and each
 * argument is checked and copied in the same step.  A message that fails a
 * check is freed before the decoder returns: it holds nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "buf.h"
#include "msg.h"
#include "utf8.h"

long cdt_msg_encode(const cdt_msg *msg, uint8_t *buf, size_t cap)
{
	if (!msg)
		return -EINVAL;
	if (msg->enc_len > CDT_MSG_MAX)
		return -E2BIG;
	/* A message whose fd was moved out cannot be sent faithfully. */
	if (msg->fd_taken)
		return -EBADF;
	if (!buf || cap < msg->enc_len)
		return (long)msg->enc_len;

	uint8_t *p = buf;
	*p++ = CDT_PROTOCOL_VERSION;
	*p++ = (uint8_t)msg->kind;
	le16_put(p, msg->nargs);
	p += 2;
	le64_put(p, msg->call_id);
	p += 8;
	*p++ = msg->name_len;
	memcpy(p, msg->name, msg->name_len);
	p += msg->name_len;

	uint8_t fd_index = 0;
	for (size_t i = 0; i < msg->nargs; i++) {
		const struct msg_arg *a = &msg->args[i];
		*p++ = a->name_len;
		memcpy(p, msg->store + a->name_off, a->name_len);
		p += a->name_len;
		*p++ = a->type;
		switch ((enum cdt_type)a->type) {
		case CDT_TYPE_BOOL:
			*p++ = a->v.b ? 1 : 0;
			break;
		case CDT_TYPE_I64:
		case CDT_TYPE_U64:
			le64_put(p, a->v.u64);
			p += 8;
			break;
		case CDT_TYPE_DOUBLE: {
			uint64_t bits;
			memcpy(&bits, &a->v.d, sizeof(bits));
			le64_put(p, bits);
			p += 8;
			break;
		}
		case CDT_TYPE_STRING:
		case CDT_TYPE_BYTES:
			le32_put(p, a->data_len);
			p += 4;
			if (a->data_len)
				memcpy(p, msg->store + a->data_off, a->data_len);
			p += a->data_len;
			break;
		case CDT_TYPE_FD:
			/* fds are numbered in encoding order, which is sorted order. */
			*p++ = fd_index++;
			break;
		}
		if (a->type == MSG_TYPE_BULK) {
			le64_put(p, a->data_len);
			p += 8;
			memcpy(p, msg->store + a->data_off, MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE);
			p += MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE;
			/* Numbered with the fd arguments: one sequence. */
			*p++ = fd_index++;
		} else if (a->type == MSG_TYPE_BULKF) {
			/* The value itself follows in its BULK frame. */
			le64_put(p, a->data_len);
			p += 8;
			memcpy(p, msg->store + a->data_off, MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE);
			p += MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE;
		}
	}
	return (long)msg->enc_len;
}

static bool msg_nan_noncanonical(uint64_t bits)
{
	const uint64_t exp = UINT64_C(0x7ff0000000000000);
	const uint64_t frac = UINT64_C(0x000fffffffffffff);
	return (bits & exp) == exp && (bits & frac) != 0 && bits != MSG_CANONICAL_NAN;
}

/* Check one argument's value and copy it into m's store at *store; *nfd
 * counts fd arguments, whose index stays in v.fd until the end. */
static int msg_parse_value(struct reader *r, uint8_t type, size_t nfds, cdt_msg *m,
			   struct msg_arg *a, size_t *store, size_t *nfd)
{
	const uint8_t *data;
	uint8_t u8;
	uint32_t u32;
	uint64_t u64;
	int e;

	switch (type) {
	case CDT_TYPE_BOOL:
		if ((e = reader_get_u8(r, &u8)) < 0)
			return e;
		if (u8 > 1)
			return -CDT_E_VALUE;
		a->v.b = u8;
		return 0;
	case CDT_TYPE_I64:
	case CDT_TYPE_U64:
		if ((e = reader_get_u64(r, &u64)) < 0)
			return e;
		a->v.u64 = u64;
		return 0;
	case CDT_TYPE_DOUBLE:
		if ((e = reader_get_u64(r, &u64)) < 0)
			return e;
		if (msg_nan_noncanonical(u64))
			return -CDT_E_VALUE;
		memcpy(&a->v.d, &u64, sizeof(u64));
		return 0;
	case CDT_TYPE_STRING:
	case CDT_TYPE_BYTES:
		if ((e = reader_get_u32(r, &u32)) < 0)
			return e;
		/* The reader compares against the bytes actually left, so a
		 * huge length fails here before anything is copied. */
		if ((e = reader_get_bytes(r, u32, &data)) < 0)
			return e;
		if (type == CDT_TYPE_STRING && (e = utf8_check(data, u32)) < 0)
			return e;
		a->data_off = (uint32_t)*store;
		a->data_len = u32;
		if (u32)
			memcpy(m->store + *store, data, u32);
		*store += u32;
		/* Room: the 4-byte length prefix paid for the terminator. */
		if (type == CDT_TYPE_STRING)
			m->store[(*store)++] = '\0';
		return 0;
	case CDT_TYPE_FD:
		if ((e = reader_get_u8(r, &u8)) < 0)
			return e;
		if (*nfd >= CDT_FDS_MAX)
			return -CDT_E_LIMIT;
		/* The k-th fd argument must say k: no aliasing, no reordering. */
		if (u8 != *nfd || u8 >= nfds)
			return -CDT_E_FD;
		a->v.fd = u8; /* index for now; the fd itself once all is checked */
		(*nfd)++;
		return 0;
	case MSG_TYPE_BULK: {
		if ((e = reader_get_u64(r, &u64)) < 0)
			return e;
		if ((e = reader_get_bytes(r, MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE, &data)) < 0)
			return e;
		if ((e = reader_get_u8(r, &u8)) < 0)
			return e;
		/* Shorter values travel inline: one encoding per value.  The
		 * upper bound keeps the resolved value a possible bytes arg. */
		if (u64 < CDT_BULK_MIN || u64 > CDT_MSG_MAX)
			return -CDT_E_VALUE;
		if (*nfd >= CDT_FDS_MAX)
			return -CDT_E_LIMIT;
		/* Same rule as FD: one fd per argument, in order, so no two
		 * arguments share an fd. */
		if (u8 != *nfd || u8 >= nfds)
			return -CDT_E_FD;
		a->data_off = (uint32_t)*store;
		a->data_len = (uint32_t)u64;
		a->v.fd = u8;
		(*nfd)++;
		memcpy(m->store + *store, data, MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE);
		*store += MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE;
		return 0;
	}
	case MSG_TYPE_BULKF:
		if ((e = reader_get_u64(r, &u64)) < 0)
			return e;
		if ((e = reader_get_bytes(r, MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE, &data)) < 0)
			return e;
		/* Shorter values travel inline, longer ones in a memfd: a
		 * BULK frame fits one ring record. */
		if (u64 < CDT_BULK_MIN || u64 > MSG_BULKF_MAX)
			return -CDT_E_VALUE;
		a->data_off = (uint32_t)*store;
		a->data_len = (uint32_t)u64;
		a->v.frame = MSG_BULKF_NONE; /* the channel attaches it */
		m->nbulkf++;
		memcpy(m->store + *store, data, MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE);
		*store += MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE;
		return 0;
	default:
		return -CDT_E_TYPE;
	}
}

/* The arguments, checked and copied into m (whose table and store were
 * sized from the wire); m->nargs counts those copied so far, so a failure
 * leaves a message that is safe to free. */
static int msg_parse_args(struct reader *r, size_t nargs, size_t nfds, cdt_msg *m)
{
	size_t store = 0, nfd = 0;
	int e;

	for (size_t i = 0; i < nargs; i++) {
		struct msg_arg *a = &m->args[i];
		const uint8_t *name;
		uint8_t len, type;
		if ((e = reader_get_u8(r, &len)) < 0)
			return e;
		if (len > CDT_NAME_MAX)
			return -CDT_E_NAME;
		if ((e = reader_get_bytes(r, len, &name)) < 0)
			return e;
		if (!msg_arg_name_valid((const char *)name, len))
			return -CDT_E_NAME;
		/* Strictly increasing names: sorted, and no duplicates. */
		if (i > 0 && msg_name_cmp((const char *)m->store + m->args[i - 1].name_off,
					  m->args[i - 1].name_len, (const char *)name, len) >= 0)
			return -CDT_E_DUPLICATE;
		if ((e = reader_get_u8(r, &type)) < 0)
			return e;
		a->name_len = len;
		a->name_off = (uint32_t)store;
		a->type = type;
		a->data_off = 0;
		a->data_len = 0;
		/* Room: the name's length byte paid for its terminator. */
		memcpy(m->store + store, name, len);
		m->store[store + len] = '\0';
		store += (size_t)len + 1;
		e = msg_parse_value(r, type, nfds, m, a, &store, &nfd);
		if (e < 0)
			return e;
		m->store_len = store;
		m->nargs = (uint8_t)(i + 1);
	}
	if (reader_left(r) != 0)
		return -CDT_E_TRAILING;
	if (nfd != nfds)
		return -CDT_E_FD;
	return 0;
}

static void msg_close_fds(const int *fds, size_t nfds)
{
	for (size_t i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int cdt_msg_decode(const uint8_t *buf, size_t len, const int *fds, size_t nfds, cdt_msg **ret_msg)
{
	uint8_t version, kind, name_len;
	uint16_t nargs;
	uint64_t call_id;
	const uint8_t *name;
	bool need_id, need_name;
	struct reader rd;
	cdt_msg *m = NULL;
	size_t room;
	int r;

	if (nfds && !fds)
		return -EINVAL;
	if (!ret_msg || (len && !buf)) {
		r = -EINVAL;
		goto out;
	}
	if (nfds > CDT_FDS_MAX) {
		r = -CDT_E_LIMIT;
		goto out;
	}
	for (size_t i = 0; i < nfds; i++) {
		if (fds[i] < 0) {
			r = -EBADF;
			goto out;
		}
	}
	if (len > CDT_MSG_MAX) {
		r = -CDT_E_TOO_BIG;
		goto out;
	}

	reader_init(&rd, buf, len);
	if ((r = reader_get_u8(&rd, &version)) < 0)
		goto out;
	if (version != CDT_PROTOCOL_VERSION) {
		r = -CDT_E_VERSION;
		goto out;
	}
	if ((r = reader_get_u8(&rd, &kind)) < 0)
		goto out;
	if (msg_kind_rules(kind, &need_id, &need_name) < 0) {
		r = -CDT_E_KIND;
		goto out;
	}
	if ((r = reader_get_u16(&rd, &nargs)) < 0)
		goto out;
	if (nargs > CDT_ARGS_MAX) {
		r = -CDT_E_LIMIT;
		goto out;
	}
	if ((r = reader_get_u64(&rd, &call_id)) < 0)
		goto out;
	if (need_id != (call_id != 0)) {
		r = -CDT_E_VALUE;
		goto out;
	}
	if ((r = reader_get_u8(&rd, &name_len)) < 0)
		goto out;
	if (name_len > CDT_NAME_MAX) {
		r = -CDT_E_NAME;
		goto out;
	}
	if ((r = reader_get_bytes(&rd, name_len, &name)) < 0)
		goto out;
	if (need_name ? !msg_name_valid((const char *)name, name_len) : name_len != 0) {
		r = -CDT_E_NAME;
		goto out;
	}
	room = reader_left(&rd);

	/* room <= CDT_MSG_MAX and nargs <= CDT_ARGS_MAX: no overflow. */
	m = malloc(sizeof(*m) + (size_t)nargs * sizeof(struct msg_arg) + room);
	if (!m) {
		r = -ENOMEM;
		goto out;
	}
	m->kind = (enum cdt_kind)kind;
	m->call_id = call_id;
	m->enc_len = len;
	m->args = m->tail;
	m->store = (uint8_t *)(m->tail + nargs);
	m->store_len = 0;
	m->store_cap = room;
	m->args_inline = true;
	m->store_inline = true;
	m->fd_taken = false;
	m->args_cap = (uint8_t)nargs;
	m->nargs = 0;
	m->nfds = 0; /* the caller's fds until every check has passed */
	m->nbulkf = 0;
	m->name_len = name_len;
	memcpy(m->name, name, name_len);
	m->name[name_len] = '\0';

	r = msg_parse_args(&rd, nargs, nfds, m);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < nfds; i++)
		m->fds[i] = fds[i];
	m->nfds = (uint8_t)nfds;
	if (nfds)
		for (size_t i = 0; i < m->nargs; i++)
			if (msg_type_has_fd(m->args[i].type))
				m->args[i].v.fd = fds[m->args[i].v.fd];
	*ret_msg = m;
	return 0;
out:
	/* m holds no fd yet: they are closed once, here.  Bulk keys already
	 * copied into its store are wiped like those of any message. */
	if (m)
		for (size_t i = 0; i < m->nargs; i++)
			if (m->args[i].type == MSG_TYPE_BULK || m->args[i].type == MSG_TYPE_BULKF)
				sodium_memzero(m->store + m->args[i].data_off, MSG_BULK_KEY_SIZE);
	free(m);
	msg_close_fds(fds, nfds);
	return r;
}
