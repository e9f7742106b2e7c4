/* SPDX-License-Identifier: MIT */
/* Building messages and reading their arguments; the wire format itself is
 * in msg-codec.c. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "msg.h"
#include "utf8.h"

bool msg_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > CDT_NAME_MAX)
		return false;
	/* Segments of [a-z0-9_-]+ joined by single dots: a dot may not start,
	 * end or follow another dot. */
	bool seg_empty = true;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (seg_empty)
				return false;
			seg_empty = true;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
			   c == '-') {
			seg_empty = false;
		} else {
			return false;
		}
	}
	return !seg_empty;
}

bool msg_arg_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > CDT_NAME_MAX)
		return false;
	if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

int msg_name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int r = memcmp(a, b, alen < blen ? alen : blen);
	if (r != 0)
		return r;
	return alen < blen ? -1 : alen > blen;
}

int msg_kind_rules(unsigned k, bool *ret_call_id, bool *ret_name)
{
	switch (k) {
	case CDT_KIND_HELLO:
		*ret_call_id = false;
		*ret_name = false;
		return 0;
	case CDT_KIND_CALL:
	case CDT_KIND_ERROR:
		*ret_call_id = true;
		*ret_name = true;
		return 0;
	case CDT_KIND_REPLY:
		*ret_call_id = true;
		*ret_name = false;
		return 0;
	case CDT_KIND_EVENT:
	case CDT_KIND_SUBSCRIBE:
		*ret_call_id = false;
		*ret_name = true;
		return 0;
	default:
		return -1;
	}
}

int cdt_msg_new(enum cdt_kind kind, uint64_t call_id, const char *name, cdt_msg **ret_msg)
{
	bool need_id, need_name;
	if (!ret_msg || msg_kind_rules((unsigned)kind, &need_id, &need_name) < 0)
		return -EINVAL;
	if (need_id != (call_id != 0))
		return -EINVAL;
	size_t len = name ? strnlen(name, CDT_NAME_MAX + 1) : 0;
	if (need_name ? !msg_name_valid(name, len) : len != 0)
		return -EINVAL;

	/* Only the header is initialised: args[] is written as it fills. */
	cdt_msg *m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->kind = kind;
	m->call_id = call_id;
	m->enc_len = MSG_HEADER_SIZE + len;
	m->store = NULL;
	m->store_len = 0;
	m->store_cap = 0;
	m->store_inline = false;
	m->fd_taken = false;
	m->nargs = 0;
	m->nfds = 0;
	m->name_len = (uint8_t)len;
	if (len)
		memcpy(m->name, name, len);
	m->name[len] = '\0';
	*ret_msg = m;
	return 0;
}

void cdt_msg_free(cdt_msg *msg)
{
	if (!msg)
		return;
	for (size_t i = 0; i < msg->nfds; i++)
		if (msg->fds[i] >= 0)
			close(msg->fds[i]);
	/* A bulk key opens its memfd, which may outlive the message. */
	for (size_t i = 0; i < msg->nargs; i++)
		if (msg->args[i].type == MSG_TYPE_BULK)
			sodium_memzero(msg->store + msg->args[i].data_off, MSG_BULK_KEY_SIZE);
	if (!msg->store_inline)
		free(msg->store);
	free(msg);
}

/* Binary search; returns the index when found, else -1 with *ret_pos the
 * insertion point. */
static int msg_lookup(const cdt_msg *msg, const char *name, size_t len, size_t *ret_pos)
{
	size_t lo = 0, hi = msg->nargs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct msg_arg *a = &msg->args[mid];
		int c = msg_name_cmp((const char *)msg->store + a->name_off, a->name_len, name,
				     len);
		if (c == 0)
			return (int)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret_pos = lo;
	return -1;
}

/* Room for n more store bytes.  A decoded message's inline store cannot
 * grow in place, so the first add to it moves the store to the heap. */
int msg_store_reserve(cdt_msg *msg, size_t n)
{
	size_t need;
	if (__builtin_add_overflow(msg->store_len, n, &need))
		return -E2BIG;
	if (need <= msg->store_cap && !msg->store_inline)
		return 0;
	size_t cap = msg->store_cap < 256 ? 256 : msg->store_cap;
	while (cap < need)
		if (__builtin_mul_overflow(cap, 2, &cap))
			return -E2BIG;
	uint8_t *p;
	if (msg->store_inline) {
		p = malloc(cap);
		if (!p)
			return -ENOMEM;
		if (msg->store_len)
			memcpy(p, msg->store, msg->store_len);
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

void msg_rebuild_fds(cdt_msg *msg)
{
	uint8_t n = 0;
	for (size_t i = 0; i < msg->nargs; i++)
		if (msg_type_has_fd(msg->args[i].type))
			msg->fds[n++] = msg->args[i].v.fd;
	msg->nfds = n;
}

/* Insert an argument named name whose value encodes in value_size bytes
 * and needs data_len bytes of store after the name (payload plus any
 * terminator).  Checks everything before changing anything; the caller
 * fills the value. */
int msg_add(cdt_msg *msg, const char *name, enum cdt_type type, size_t value_size, size_t data_len,
	    struct msg_arg **ret_arg)
{
	if (!msg || !name)
		return -EINVAL;
	size_t len = strnlen(name, CDT_NAME_MAX + 1);
	if (!msg_arg_name_valid(name, len))
		return -EINVAL;
	size_t pos;
	if (msg_lookup(msg, name, len, &pos) >= 0)
		return -EEXIST;
	if (msg->nargs >= CDT_ARGS_MAX)
		return -E2BIG;
	/* name_len, name, type, value */
	size_t enc, store;
	if (__builtin_add_overflow(len + 2, value_size, &enc) ||
	    __builtin_add_overflow(msg->enc_len, enc, &enc) || enc > CDT_MSG_MAX)
		return -E2BIG;
	if (__builtin_add_overflow(len + 1, data_len, &store))
		return -E2BIG;
	int r = msg_store_reserve(msg, store);
	if (r < 0)
		return r;

	memmove(&msg->args[pos + 1], &msg->args[pos], (msg->nargs - pos) * sizeof(msg->args[0]));
	struct msg_arg *a = &msg->args[pos];
	a->name_off = (uint32_t)msg->store_len;
	a->name_len = (uint8_t)len;
	a->type = (uint8_t)type;
	a->data_off = (uint32_t)(msg->store_len + len + 1);
	a->data_len = 0;
	memcpy(msg->store + msg->store_len, name, len);
	msg->store[msg->store_len + len] = '\0';
	msg->store_len += store;
	msg->enc_len = enc;
	msg->nargs++;
	*ret_arg = a;
	return 0;
}

int cdt_msg_add_bool(cdt_msg *msg, const char *name, bool v)
{
	struct msg_arg *a;
	int r = msg_add(msg, name, CDT_TYPE_BOOL, 1, 0, &a);
	if (r == 0)
		a->v.b = v;
	return r;
}

int cdt_msg_add_i64(cdt_msg *msg, const char *name, int64_t v)
{
	struct msg_arg *a;
	int r = msg_add(msg, name, CDT_TYPE_I64, 8, 0, &a);
	if (r == 0)
		a->v.i64 = v;
	return r;
}

int cdt_msg_add_u64(cdt_msg *msg, const char *name, uint64_t v)
{
	struct msg_arg *a;
	int r = msg_add(msg, name, CDT_TYPE_U64, 8, 0, &a);
	if (r == 0)
		a->v.u64 = v;
	return r;
}

int cdt_msg_add_double(cdt_msg *msg, const char *name, double v)
{
	struct msg_arg *a;
	int r = msg_add(msg, name, CDT_TYPE_DOUBLE, 8, 0, &a);
	if (r < 0)
		return r;
	/* Every NaN becomes the canonical one so the encoding is unique. */
	if (isnan(v)) {
		uint64_t bits = MSG_CANONICAL_NAN;
		memcpy(&v, &bits, sizeof(v));
	}
	a->v.d = v;
	return 0;
}

static int msg_add_data(cdt_msg *msg, const char *name, enum cdt_type type, const void *p,
			size_t len)
{
	if (len && !p)
		return -EINVAL;
	/* The limit is on the encoded message; also keeps len within u32. */
	if (len > CDT_MSG_MAX)
		return -E2BIG;
	bool str = type == CDT_TYPE_STRING;
	struct msg_arg *a;
	int r = msg_add(msg, name, type, 4 + len, len + str, &a);
	if (r < 0)
		return r;
	a->data_len = (uint32_t)len;
	if (len)
		memcpy(msg->store + a->data_off, p, len);
	if (str)
		msg->store[a->data_off + len] = '\0';
	return 0;
}

int cdt_msg_add_string(cdt_msg *msg, const char *name, const char *s, size_t len)
{
	if (len && !s)
		return -EINVAL;
	/* Refuse on the length before reading a byte of an oversized string. */
	if (len > CDT_MSG_MAX)
		return -E2BIG;
	if (utf8_check(s, len) < 0)
		return -EINVAL;
	return msg_add_data(msg, name, CDT_TYPE_STRING, s, len);
}

int cdt_msg_add_bytes(cdt_msg *msg, const char *name, const void *p, size_t len)
{
	return msg_add_data(msg, name, CDT_TYPE_BYTES, p, len);
}

int cdt_msg_add_fd(cdt_msg *msg, const char *name, int fd)
{
	if (!msg)
		return -EINVAL;
	if (msg->nfds >= CDT_FDS_MAX)
		return -E2BIG;
	if (fd < 0)
		return -EBADF;
	int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dup_fd < 0)
		return -errno;
	struct msg_arg *a;
	int r = msg_add(msg, name, CDT_TYPE_FD, 1, 0, &a);
	if (r < 0) {
		close(dup_fd);
		return r;
	}
	a->v.fd = dup_fd;
	msg_rebuild_fds(msg);
	return 0;
}

enum cdt_kind cdt_msg_kind(const cdt_msg *msg)
{
	return msg->kind;
}

uint64_t cdt_msg_call_id(const cdt_msg *msg)
{
	return msg->call_id;
}

const char *cdt_msg_name(const cdt_msg *msg)
{
	return msg->name;
}

size_t cdt_msg_nargs(const cdt_msg *msg)
{
	return msg->nargs;
}

size_t cdt_msg_nfds(const cdt_msg *msg)
{
	return msg->nfds;
}

const int *cdt_msg_fds(const cdt_msg *msg)
{
	return msg->fds;
}

static void msg_view(const cdt_msg *msg, const struct msg_arg *a, struct cdt_arg *ret)
{
	ret->name = (const char *)msg->store + a->name_off;
	ret->type = (enum cdt_type)a->type;
	switch ((enum cdt_type)a->type) {
	case CDT_TYPE_BOOL:
		ret->v.b = a->v.b;
		break;
	case CDT_TYPE_I64:
		ret->v.i64 = a->v.i64;
		break;
	case CDT_TYPE_U64:
		ret->v.u64 = a->v.u64;
		break;
	case CDT_TYPE_DOUBLE:
		ret->v.d = a->v.d;
		break;
	case CDT_TYPE_STRING:
		ret->v.str.ptr = (const char *)msg->store + a->data_off;
		ret->v.str.len = a->data_len;
		break;
	case CDT_TYPE_BYTES:
		ret->v.bytes.ptr = msg->store + a->data_off;
		ret->v.bytes.len = a->data_len;
		break;
	case CDT_TYPE_FD:
		ret->v.fd = a->v.fd;
		break;
	}
	if (a->type == MSG_TYPE_BULK) {
		/* The length without the bytes: what the broker's policy and
		 * audit need, and all it can know. */
		ret->type = CDT_TYPE_BYTES;
		ret->v.bytes.ptr = NULL;
		ret->v.bytes.len = a->data_len;
	}
}

int cdt_msg_arg(const cdt_msg *msg, size_t i, struct cdt_arg *ret_arg)
{
	if (!msg || !ret_arg)
		return -EINVAL;
	if (i >= msg->nargs)
		return -ERANGE;
	msg_view(msg, &msg->args[i], ret_arg);
	return 0;
}

/* The argument called name, of type type (0: any). */
static int msg_get(const cdt_msg *msg, const char *name, int type, struct msg_arg **ret)
{
	if (!msg || !name)
		return -EINVAL;
	size_t len = strnlen(name, CDT_NAME_MAX + 1), pos;
	if (len > CDT_NAME_MAX)
		return -ENOENT;
	int i = msg_lookup(msg, name, len, &pos);
	if (i < 0)
		return -ENOENT;
	if (type && msg->args[i].type != type)
		return -EMEDIUMTYPE;
	/* Getters are const; take_fd reuses this lookup on a mutable msg. */
	*ret = (struct msg_arg *)&msg->args[i];
	return 0;
}

int cdt_msg_find(const cdt_msg *msg, const char *name, struct cdt_arg *ret_arg)
{
	struct msg_arg *a;
	int r = msg_get(msg, name, 0, &a);
	if (r == 0 && ret_arg)
		msg_view(msg, a, ret_arg);
	return r;
}

#define MSG_GETTER(fn, ctype, tcode, field)                                                        \
	int fn(const cdt_msg *msg, const char *name, ctype *ret)                                   \
	{                                                                                          \
		struct msg_arg *a;                                                                 \
		int r = msg_get(msg, name, tcode, &a);                                             \
		if (r == 0 && ret)                                                                 \
			*ret = a->v.field;                                                         \
		return r;                                                                          \
	}

MSG_GETTER(cdt_msg_get_bool, bool, CDT_TYPE_BOOL, b)
MSG_GETTER(cdt_msg_get_i64, int64_t, CDT_TYPE_I64, i64)
MSG_GETTER(cdt_msg_get_u64, uint64_t, CDT_TYPE_U64, u64)
MSG_GETTER(cdt_msg_get_double, double, CDT_TYPE_DOUBLE, d)

int cdt_msg_get_string(const cdt_msg *msg, const char *name, const char **ret, size_t *ret_len)
{
	struct msg_arg *a;
	int r = msg_get(msg, name, CDT_TYPE_STRING, &a);
	if (r < 0)
		return r;
	if (ret)
		*ret = (const char *)msg->store + a->data_off;
	if (ret_len)
		*ret_len = a->data_len;
	return 0;
}

int cdt_msg_get_bytes(const cdt_msg *msg, const char *name, const uint8_t **ret, size_t *ret_len)
{
	struct msg_arg *a;
	int r = msg_get(msg, name, CDT_TYPE_BYTES, &a);
	if (r < 0)
		return r;
	if (ret)
		*ret = msg->store + a->data_off;
	if (ret_len)
		*ret_len = a->data_len;
	return 0;
}

int cdt_msg_take_fd(cdt_msg *msg, const char *name, int *ret_fd)
{
	struct msg_arg *a;
	if (!ret_fd)
		return -EINVAL;
	int r = msg_get(msg, name, CDT_TYPE_FD, &a);
	if (r < 0)
		return r;
	if (a->v.fd < 0)
		return -EBADF; /* already taken */
	*ret_fd = a->v.fd;
	a->v.fd = -1;
	msg->fd_taken = true;
	msg_rebuild_fds(msg);
	return 0;
}
