/* SPDX-License-Identifier: MIT */
/*
 * The canonical message encoding, version 1 (docs/protocol.md section 4).
 *
 * Decoding is two passes over the input: the first validates everything
 * and computes the exact store size without allocating; the second makes
 * one allocation and copies.  So a hostile message costs no memory, and a
 * valid one costs one malloc whatever its number of arguments.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
		}
	}
	return (long)msg->enc_len;
}

/* What the first pass learns about one argument: its place in the store
 * and where its bytes are in the input. */
struct msg_src {
	const uint8_t *name;
	const uint8_t *data;
};

static bool msg_nan_noncanonical(uint64_t bits)
{
	const uint64_t exp = UINT64_C(0x7ff0000000000000);
	const uint64_t frac = UINT64_C(0x000fffffffffffff);
	return (bits & exp) == exp && (bits & frac) != 0 && bits != MSG_CANONICAL_NAN;
}

/* Validate one argument's value and record it; *store grows by the store
 * bytes it needs, *nfd counts fd arguments. */
static int msg_parse_value(struct reader *r, uint8_t type, size_t nfds, struct msg_arg *a,
			   struct msg_src *src, size_t *store, size_t *nfd)
{
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
		 * huge length fails here before anything is sized from it. */
		if ((e = reader_get_bytes(r, u32, &src->data)) < 0)
			return e;
		if (type == CDT_TYPE_STRING && (e = utf8_check(src->data, u32)) < 0)
			return e;
		a->data_off = (uint32_t)*store;
		a->data_len = u32;
		/* Bounded by the input length (<= CDT_MSG_MAX): cannot wrap. */
		*store += u32 + (type == CDT_TYPE_STRING);
		return 0;
	case CDT_TYPE_FD:
		if ((e = reader_get_u8(r, &u8)) < 0)
			return e;
		if (*nfd >= CDT_FDS_MAX)
			return -CDT_E_LIMIT;
		/* The k-th fd argument must say k: no aliasing, no reordering. */
		if (u8 != *nfd || u8 >= nfds)
			return -CDT_E_FD;
		a->v.fd = u8; /* index for now; the fd itself after pass 1 */
		(*nfd)++;
		return 0;
	case MSG_TYPE_BULK: {
		const uint8_t *kid;
		if ((e = reader_get_u64(r, &u64)) < 0)
			return e;
		if ((e = reader_get_bytes(r, MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE, &kid)) < 0)
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
		src->data = kid;
		a->data_off = (uint32_t)*store;
		a->data_len = (uint32_t)u64;
		a->v.fd = u8;
		(*nfd)++;
		*store += MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE;
		return 0;
	}
	default:
		return -CDT_E_TYPE;
	}
}

static int msg_parse(struct reader *r, size_t nfds, cdt_msg *hdr, struct msg_src *src,
		     size_t *ret_store)
{
	uint8_t version, kind, name_len;
	uint16_t nargs;
	uint64_t call_id;
	const uint8_t *name;
	bool need_id, need_name;
	int e;

	if ((e = reader_get_u8(r, &version)) < 0)
		return e;
	if (version != CDT_PROTOCOL_VERSION)
		return -CDT_E_VERSION;
	if ((e = reader_get_u8(r, &kind)) < 0)
		return e;
	if (msg_kind_rules(kind, &need_id, &need_name) < 0)
		return -CDT_E_KIND;
	if ((e = reader_get_u16(r, &nargs)) < 0)
		return e;
	if (nargs > CDT_ARGS_MAX)
		return -CDT_E_LIMIT;
	if ((e = reader_get_u64(r, &call_id)) < 0)
		return e;
	if (need_id != (call_id != 0))
		return -CDT_E_VALUE;
	if ((e = reader_get_u8(r, &name_len)) < 0)
		return e;
	if (name_len > CDT_NAME_MAX)
		return -CDT_E_NAME;
	if ((e = reader_get_bytes(r, name_len, &name)) < 0)
		return e;
	if (need_name ? !msg_name_valid((const char *)name, name_len) : name_len != 0)
		return -CDT_E_NAME;

	hdr->kind = (enum cdt_kind)kind;
	hdr->call_id = call_id;
	hdr->name_len = name_len;
	memcpy(hdr->name, name, name_len);
	hdr->name[name_len] = '\0';

	size_t store = 0, nfd = 0;
	for (size_t i = 0; i < nargs; i++) {
		struct msg_arg *a = &hdr->args[i];
		uint8_t len, type;
		if ((e = reader_get_u8(r, &len)) < 0)
			return e;
		if (len > CDT_NAME_MAX)
			return -CDT_E_NAME;
		if ((e = reader_get_bytes(r, len, &src[i].name)) < 0)
			return e;
		if (!msg_arg_name_valid((const char *)src[i].name, len))
			return -CDT_E_NAME;
		if (i > 0 && msg_name_cmp((const char *)src[i - 1].name, hdr->args[i - 1].name_len,
					  (const char *)src[i].name, len) >= 0)
			return -CDT_E_DUPLICATE;
		if ((e = reader_get_u8(r, &type)) < 0)
			return e;
		a->name_len = len;
		a->name_off = (uint32_t)store;
		a->type = type;
		a->data_off = 0;
		a->data_len = 0;
		store += (size_t)len + 1;
		e = msg_parse_value(r, type, nfds, a, &src[i], &store, &nfd);
		if (e < 0)
			return e;
	}
	if (reader_left(r) != 0)
		return -CDT_E_TRAILING;
	if (nfd != nfds)
		return -CDT_E_FD;
	hdr->nargs = (uint8_t)nargs;
	hdr->nfds = (uint8_t)nfd;
	*ret_store = store;
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
	/* Scratch for pass 1: the header and argument table are built on the
	 * stack and copied into the single allocation once sizes are known.
	 * Exempt from automatic zeroing (2.5 KiB per decode on the hot path):
	 * pass 1 writes every field that pass 2 reads, for i < nargs. */
	cdt_msg hdr __attribute__((uninitialized));
	struct msg_src src[CDT_ARGS_MAX] __attribute__((uninitialized));
	cdt_msg *m = NULL;
	size_t store = 0;
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

	struct reader rd;
	reader_init(&rd, buf, len);
	r = msg_parse(&rd, nfds, &hdr, src, &store);
	if (r < 0)
		goto out;

	m = malloc(sizeof(*m) + store);
	if (!m) {
		r = -ENOMEM;
		goto out;
	}
	m->kind = hdr.kind;
	m->call_id = hdr.call_id;
	m->enc_len = len;
	m->store = m->tail;
	m->store_len = store;
	m->store_cap = store;
	m->store_inline = true;
	m->fd_taken = false;
	m->nargs = hdr.nargs;
	m->nfds = hdr.nfds;
	m->name_len = hdr.name_len;
	memcpy(m->name, hdr.name, (size_t)hdr.name_len + 1);
	for (size_t i = 0; i < nfds; i++)
		m->fds[i] = fds[i];
	for (size_t i = 0; i < m->nargs; i++) {
		struct msg_arg *a = &m->args[i];
		*a = hdr.args[i];
		memcpy(m->store + a->name_off, src[i].name, a->name_len);
		m->store[a->name_off + a->name_len] = '\0';
		if (a->type == CDT_TYPE_STRING || a->type == CDT_TYPE_BYTES) {
			if (a->data_len)
				memcpy(m->store + a->data_off, src[i].data, a->data_len);
			if (a->type == CDT_TYPE_STRING)
				m->store[a->data_off + a->data_len] = '\0';
		} else if (a->type == CDT_TYPE_FD) {
			a->v.fd = fds[a->v.fd];
		} else if (a->type == MSG_TYPE_BULK) {
			memcpy(m->store + a->data_off, src[i].data,
			       MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE);
			a->v.fd = fds[a->v.fd];
		}
	}
	*ret_msg = m;
	return 0;
out:
	msg_close_fds(fds, nfds);
	return r;
}
