/* SPDX-License-Identifier: MIT */
/*
 * Where a message keeps its arguments (see msg.h): the table and the store
 * that start inside the message's allocation and move to the heap when
 * they fill, the fd list derived from them, and the broker's copy of a
 * whole argument list.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "msg.h"

/* Whether the store may hold a bulk key (every bulk argument has an fd
 * or is counted in nbulkf). */
static bool msg_store_secret(const cdt_msg *msg)
{
	if (msg->nbulkf)
		return true;
	for (size_t i = 0; i < msg->nargs; i++)
		if (msg->args[i].type == MSG_TYPE_BULK)
			return true;
	return false;
}

/* Room for n more store bytes.  The first store that does not fit moves to
 * the heap; a store holding bulk keys is moved by copy and wipe, never by
 * realloc, which would leave the keys behind in freed memory. */
int msg_store_reserve(cdt_msg *msg, size_t n)
{
	size_t need;
	if (__builtin_add_overflow(msg->store_len, n, &need))
		return -E2BIG;
	if (need <= msg->store_cap)
		return 0;
	size_t cap = msg->store_cap < 256 ? 256 : msg->store_cap;
	while (cap < need)
		if (__builtin_mul_overflow(cap, 2, &cap))
			return -E2BIG;
	bool secret = (msg->nfds || msg->nbulkf) && msg_store_secret(msg);
	uint8_t *p;
	if (msg->store_inline || secret) {
		p = malloc(cap);
		if (!p)
			return -ENOMEM;
		if (msg->store_len)
			memcpy(p, msg->store, msg->store_len);
		if (secret)
			sodium_memzero(msg->store, msg->store_len);
		if (!msg->store_inline)
			free(msg->store);
	} else {
		p = realloc(msg->store, cap);
		if (!p)
			return -ENOMEM;
	}
	msg->store = p;
	msg->store_cap = cap;
	msg->store_inline = false;
	return 0;
}

/* Room for one more argument in the table (at most CDT_ARGS_MAX). */
int msg_args_reserve(cdt_msg *msg, size_t n)
{
	if (n <= msg->args_cap)
		return 0;
	if (n > CDT_ARGS_MAX)
		return -E2BIG;
	size_t cap = msg->args_cap < MSG_NEW_ARGS ? MSG_NEW_ARGS : msg->args_cap;
	while (cap < n)
		cap *= 2;
	if (cap > CDT_ARGS_MAX)
		cap = CDT_ARGS_MAX;
	struct msg_arg *p;
	if (msg->args_inline) {
		p = malloc(cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		if (msg->nargs)
			memcpy(p, msg->args, msg->nargs * sizeof(*p));
	} else {
		p = realloc(msg->args, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
	}
	msg->args = p;
	msg->args_cap = (uint8_t)cap;
	msg->args_inline = false;
	return 0;
}

void msg_rebuild_fds(cdt_msg *msg)
{
	uint8_t n = 0;
	for (size_t i = 0; i < msg->nargs; i++)
		if (msg_type_has_fd(msg->args[i].type))
			msg->fds[n++] = msg->args[i].v.fd;
	msg->nfds = n;
}

/* Where src's BULK frames start when they fill the end of its store
 * behind everything else (as a receiving channel attaches them): dst may
 * borrow them instead of copying.  store_len when it cannot. */
static size_t msg_frames_tail(const cdt_msg *src)
{
	size_t start = src->store_len, end = 0, frames = 0;

	for (size_t i = 0; i < src->nargs; i++) {
		const struct msg_arg *a = &src->args[i];
		size_t e = (size_t)a->name_off + a->name_len + 1;
		if (e > end)
			end = e;
		if (a->type == MSG_TYPE_BULKF) {
			if (a->v.frame == MSG_BULKF_NONE || (a->v.frame & MSG_BULKF_BORROWED))
				return src->store_len;
			if (a->v.frame < start)
				start = (size_t)a->v.frame;
			frames += (size_t)a->data_len + MSG_BULKF_OVERHEAD;
			e = (size_t)a->data_off + MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE;
		} else if (a->type == CDT_TYPE_STRING) {
			e = (size_t)a->data_off + a->data_len + 1; /* its NUL */
		} else if (a->type == CDT_TYPE_BYTES) {
			e = (size_t)a->data_off + a->data_len;
		} else if (a->type == MSG_TYPE_BULK) {
			e = (size_t)a->data_off + MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE;
		}
		if (e > end)
			end = e;
	}
	/* Nothing but frames from start on, and they end the store. */
	if (frames == 0 || end > start || start + frames != src->store_len)
		return src->store_len;
	return start;
}

int msg_copy_args(cdt_msg *dst, const cdt_msg *src)
{
	size_t base, body, enc, keep;
	int dups[CDT_FDS_MAX];
	size_t ndup = 0;
	int r;

	if (!dst || !src || dst->nargs != 0)
		return -EINVAL;
	/* A moved-out fd leaves nothing to forward. */
	if (src->fd_taken)
		return -EBADF;
	if (src->nargs == 0)
		return 0;
	/* src's arguments encode in what follows its header and name. */
	body = src->enc_len - MSG_HEADER_SIZE - src->name_len;
	if (__builtin_add_overflow(dst->enc_len, body, &enc) || enc > CDT_MSG_MAX)
		return -E2BIG;
	r = msg_args_reserve(dst, src->nargs);
	if (r < 0)
		return r;
	keep = src->nbulkf ? msg_frames_tail(src) : src->store_len;
	r = msg_store_reserve(dst, keep);
	if (r < 0)
		return r;
	for (size_t i = 0; i < src->nfds; i++) {
		int fd = fcntl(src->fds[i], F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			r = -errno;
			goto out;
		}
		dups[ndup++] = fd;
	}

	/* Names and values keep their places: one copy of the store, offsets
	 * moved by where it lands. */
	base = dst->store_len;
	memcpy(dst->store + base, src->store, keep);
	memcpy(dst->args, src->args, src->nargs * sizeof(src->args[0]));
	ndup = 0;
	for (size_t i = 0; i < src->nargs; i++) {
		struct msg_arg *a = &dst->args[i];
		a->name_off += (uint32_t)base;
		a->data_off += (uint32_t)base;
		if (msg_type_has_fd(a->type))
			a->v.fd = dups[ndup++];
		/* A BULK frame is copied with the store, or borrowed. */
		if (a->type == MSG_TYPE_BULKF && a->v.frame != MSG_BULKF_NONE &&
		    !(a->v.frame & MSG_BULKF_BORROWED)) {
			if (a->v.frame >= keep)
				a->v.frame = (uint64_t)(uintptr_t)(src->store + a->v.frame) |
					     MSG_BULKF_BORROWED;
			else
				a->v.frame += base;
		}
	}
	dst->nargs = src->nargs;
	dst->nbulkf = src->nbulkf;
	dst->store_len = base + keep;
	dst->enc_len = enc;
	msg_rebuild_fds(dst);
	return 0;
out:
	for (size_t i = 0; i < ndup; i++)
		close(dups[i]);
	return r;
}
