/* SPDX-License-Identifier: MIT */
/* Building messages and reading their arguments; where they are kept is in
 * msg-store.c, the wire format in msg-codec.c. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "msg.h"
#include "utf8.h"

#define A (MSG_CH_ARG | MSG_CH_METHOD)
#define F (MSG_CH_ARG | MSG_CH_METHOD | MSG_CH_FIRST)
/* Ranges are a GNU C extension, as gcc and clang both take it. */
const uint8_t msg_name_class[256] = {
	['-'] = MSG_CH_METHOD,
	['0' ... '9'] = A,
	['_'] = F,
	['a' ... 'z'] = F,
};
#undef A
#undef F

bool msg_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > CDT_NAME_MAX)
		return false;
	/* Segments of [a-z0-9_-]+ joined by single dots: a dot may not start,
	 * end or follow another dot.  With the ends checked first, s[i - 1]
	 * exists wherever a dot is allowed to be. */
	if (s[0] == '.' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (msg_name_class[(unsigned char)s[i]] & MSG_CH_METHOD)
			continue;
		if (s[i] != '.' || s[i - 1] == '.')
			return false;
	}
	return true;
}

bool msg_arg_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > CDT_NAME_MAX)
		return false;
	if (!(msg_name_class[(unsigned char)s[0]] & MSG_CH_FIRST))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!(msg_name_class[(unsigned char)s[i]] & MSG_CH_ARG))
			return false;
	return true;
}

/* The length of the NUL-terminated argument name s when it is valid, else
 * -1.  One pass instead of strnlen and a check; like strnlen(s, MAX + 1) it
 * reads no byte past the terminator nor past s[CDT_NAME_MAX]. */
static int msg_arg_name_len(const char *s)
{
	size_t i = 0;
	while (i <= CDT_NAME_MAX && (msg_name_class[(unsigned char)s[i]] & MSG_CH_ARG))
		i++;
	if (i == 0 || i > CDT_NAME_MAX || s[i] != '\0' ||
	    !(msg_name_class[(unsigned char)s[0]] & MSG_CH_FIRST))
		return -1;
	return (int)i;
}

/* The length of the NUL-terminated method or event name s when it is
 * valid, else -1: msg_name_valid() and strnlen(s, MAX + 1) in one pass,
 * reading no byte past the terminator nor past s[CDT_NAME_MAX]. */
static int msg_name_len(const char *s)
{
	size_t i = 0;
	while (i <= CDT_NAME_MAX) {
		unsigned char c = (unsigned char)s[i];
		if (!(msg_name_class[c] & MSG_CH_METHOD) && (c != '.' || i == 0 || s[i - 1] == '.'))
			break;
		i++;
	}
	if (i == 0 || i > CDT_NAME_MAX || s[i] != '\0' || s[i - 1] == '.')
		return -1;
	return (int)i;
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
	size_t len = 0;
	if (need_name) {
		int n = name ? msg_name_len(name) : -1;
		if (n < 0)
			return -EINVAL;
		len = (size_t)n;
	} else if (name && name[0] != '\0') {
		return -EINVAL;
	}

	/* One allocation for the struct, a small table and a small store;
	 * only the header is initialised, the rest is written as it fills. */
	cdt_msg *m = malloc(sizeof(*m) + MSG_NEW_ARGS * sizeof(struct msg_arg) + MSG_NEW_STORE);
	if (!m)
		return -ENOMEM;
	m->kind = kind;
	m->call_id = call_id;
	m->enc_len = MSG_HEADER_SIZE + len;
	m->args = m->tail;
	m->store = (uint8_t *)(m->tail + MSG_NEW_ARGS);
	m->store_len = 0;
	m->store_cap = MSG_NEW_STORE;
	m->args_inline = true;
	m->store_inline = true;
	m->fd_taken = false;
	m->args_cap = MSG_NEW_ARGS;
	m->nargs = 0;
	m->nfds = 0;
	m->nbulkf = 0;
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
	/* Only bulk arguments hold secrets (their keys), and each holds an
	 * fd or is counted in nbulkf: a message with neither has nothing to
	 * wipe or close. */
	if (msg->nfds || msg->nbulkf) {
		for (size_t i = 0; i < msg->nfds; i++)
			if (msg->fds[i] >= 0)
				close(msg->fds[i]);
		/* A bulk key opens its memfd, which may outlive the message,
		 * or a BULK frame, copies of which sit in rings and in other
		 * messages. */
		for (size_t i = 0; i < msg->nargs; i++)
			if (msg->args[i].type == MSG_TYPE_BULK ||
			    msg->args[i].type == MSG_TYPE_BULKF)
				sodium_memzero(msg->store + msg->args[i].data_off,
					       MSG_BULK_KEY_SIZE);
	}
	if (!msg->store_inline)
		free(msg->store);
	if (!msg->args_inline)
		free(msg->args);
	free(msg);
}

/* Binary search; returns the index when found, else -1 with *ret_pos the
 * insertion point.  Arguments are mostly added in order, so the last one
 * is tried first. */
static int msg_lookup(const cdt_msg *msg, const char *name, size_t len, size_t *ret_pos)
{
	size_t lo = 0, hi = msg->nargs;
	if (hi > 0) {
		const struct msg_arg *a = &msg->args[hi - 1];
		int c = msg_name_cmp((const char *)msg->store + a->name_off, a->name_len, name,
				     len);
		if (c < 0) {
			*ret_pos = hi;
			return -1;
		}
		if (c == 0)
			return (int)hi - 1;
		hi--;
	}
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

/* Insert an argument named name whose value encodes in value_size bytes
 * and needs data_len bytes of store after the name (payload plus any
 * terminator).  Checks everything before changing anything; the caller
 * fills the value. */
int msg_add(cdt_msg *msg, const char *name, enum cdt_type type, size_t value_size, size_t data_len,
	    struct msg_arg **ret_arg)
{
	if (!msg || !name)
		return -EINVAL;
	int ilen = msg_arg_name_len(name);
	if (ilen < 0)
		return -EINVAL;
	size_t len = (size_t)ilen;
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
	/* Mostly there is room: ask msg-store.c only when there is not. */
	int r = 0;
	if (msg->nargs >= msg->args_cap)
		r = msg_args_reserve(msg, (size_t)msg->nargs + 1);
	if (r == 0 && store > msg->store_cap - msg->store_len)
		r = msg_store_reserve(msg, store);
	if (r < 0)
		return r;

	if (pos < msg->nargs)
		memmove(&msg->args[pos + 1], &msg->args[pos],
			(msg->nargs - pos) * sizeof(msg->args[0]));
	struct msg_arg *a = &msg->args[pos];
	a->name_off = (uint32_t)msg->store_len;
	a->name_len = (uint8_t)len;
	a->type = (uint8_t)type;
	a->data_off = (uint32_t)(msg->store_len + len + 1);
	a->data_len = 0;
	memcpy(msg->store + msg->store_len, name, len + 1);
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
	if (a->type == MSG_TYPE_BULK || a->type == MSG_TYPE_BULKF) {
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
