/* SPDX-License-Identifier: MIT */
/*
 * Internals of cdt_msg shared by msg.c (building, lookup) and msg-codec.c
 * (the canonical encoding).
 *
 * A message keeps its arguments sorted by name at all times, so the
 * encoding order, the lookup order and the fd order are the same thing and
 * encoding needs no sort.  Names and string/bytes payloads live in one
 * store addressed by offsets (so the store may move when it grows).
 *
 * The argument table and the store start out in the same allocation as the
 * struct, so the common message costs one malloc and one free: a decoded
 * message sizes both from the wire (the store never needs more bytes than
 * the arguments took on the wire), a new one gets room for MSG_NEW_ARGS
 * arguments and MSG_NEW_STORE store bytes.  Past that they move to the heap.
 */
#ifndef CONDUIT_MSG_H
#define CONDUIT_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conduit/conduit.h"

/* The one NaN the encoding allows (quiet, positive, zero payload). */
#define MSG_CANONICAL_NAN UINT64_C(0x7ff8000000000000)

/* Fixed part of the encoding: version, kind, nargs, call_id, name_len. */
#define MSG_HEADER_SIZE 13u

/* Wire type of a bytes argument carried sealed in a passed memfd
 * (docs/protocol.md section 4.1).  Never visible to applications: a layer
 * resolves it on receipt; the broker sees it through cdt_msg_arg() as
 * CDT_TYPE_BYTES with a length and a NULL pointer. */
#define MSG_TYPE_BULK	    8
#define MSG_BULK_KEY_SIZE   32
#define MSG_BULK_ID_SIZE    16
/* u64 length, key, id, u8 fd index */
#define MSG_BULK_VALUE_SIZE (8u + MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE + 1u)

/* Wire type of a bytes argument whose sealed value travels in a BULK frame
 * right behind its message (docs/protocol.md section 4.2): shown like a
 * memfd bulk argument, but carrying no fd. */
#define MSG_TYPE_BULKF	     9
/* u64 length, key, id */
#define MSG_BULKF_VALUE_SIZE (8u + MSG_BULK_KEY_SIZE + MSG_BULK_ID_SIZE)
/* A BULK frame: the 8-byte frame header, the value sealed, its 16-byte tag. */
#define MSG_BULKF_OVERHEAD   (8u + 16u)
/* The largest such value: its BULK frame fits one ring record (32752
 * bytes, lib/ring.h), so it never needs the socket while the ring has
 * room.  Longer values take a memfd. */
#define MSG_BULKF_MAX	     (32752u - MSG_BULKF_OVERHEAD)
/* v.frame of a BULKF argument whose frame has not arrived yet. */
#define MSG_BULKF_NONE	     UINT64_MAX
/* v.frame with this bit: the address of a frame in another message's
 * store (msg_copy_args), not an offset in this one's. */
#define MSG_BULKF_BORROWED   (UINT64_C(1) << 62)

struct msg_arg {
	uint32_t name_off; /* NUL-terminated name in the store */
	uint32_t data_off; /* string (NUL-terminated) or bytes in the store;
			    * BULK, BULKF: its key then its id */
	uint32_t data_len; /* BULK, BULKF: the plaintext length */
	uint8_t name_len;
	uint8_t type; /* enum cdt_type */
	union {
		bool b;
		int64_t i64;
		uint64_t u64;
		double d;	/* NaNs already canonical */
		int fd;		/* FD, BULK: owned; -1 after cdt_msg_take_fd() */
		uint64_t frame; /* BULKF: store offset of its BULK frame,
				 * MSG_BULKF_NONE, or a borrowed address
				 * | MSG_BULKF_BORROWED */
	} v;
};

/* Room a new message has before its table or store moves to the heap: a
 * typical call fits, and the whole message stays a small allocation. */
#define MSG_NEW_ARGS  8
#define MSG_NEW_STORE 256

struct cdt_msg {
	enum cdt_kind kind;
	uint64_t call_id;
	size_t enc_len;	      /* exact encoded size, kept up to date by every add */
	struct msg_arg *args; /* args_cap entries */
	uint8_t *store;
	size_t store_len;
	size_t store_cap;
	bool args_inline;  /* args is in this allocation */
	bool store_inline; /* store is in this allocation */
	bool fd_taken;	   /* an fd was moved out: no longer encodable */
	uint8_t args_cap;
	uint8_t nargs;
	uint8_t nfds;
	uint8_t nbulkf; /* BULKF arguments: their keys are secrets too */
	uint8_t name_len;
	char name[CDT_NAME_MAX + 1];
	int fds[CDT_FDS_MAX];  /* the fd arguments' fds, in encoding order */
	struct msg_arg tail[]; /* inline table, then the inline store */
};

/* Character classes of names (msg.c), one table lookup per byte. */
enum {
	MSG_CH_ARG = 1,	   /* [a-z0-9_]: argument names */
	MSG_CH_METHOD = 2, /* [a-z0-9_-]: segments of method/event names */
	MSG_CH_FIRST = 4,  /* [a-z_]: first byte of an argument name */
};
extern const uint8_t msg_name_class[256];

/* Name rules (docs/protocol.md section 4).  Lengths are checked here too. */
bool msg_name_valid(const char *s, size_t len);
bool msg_arg_name_valid(const char *s, size_t len);
/* Order of argument names: bytewise, a proper prefix first.  Inline: names
 * mostly differ in their first bytes, and a call costs more than that. */
static inline int msg_name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return (int)(unsigned char)a[i] - (int)(unsigned char)b[i];
	return alen < blen ? -1 : alen > blen;
}
/* Whether kind k needs a non-zero call_id / a non-empty name.  -1 for an
 * unknown kind. */
int msg_kind_rules(unsigned k, bool *ret_call_id, bool *ret_name);

/* Insert an argument (msg.c): checks the name, the count and the encoded
 * size; the caller fills the value of *ret_arg. */
int msg_add(cdt_msg *msg, const char *name, enum cdt_type type, size_t value_size, size_t data_len,
	    struct msg_arg **ret_arg);
/* Add to dst, which has no arguments yet, a copy of every argument of src
 * (fds duplicated; msg-store.c).  src's names and values were checked when
 * src was built or decoded, so they are copied as they are, not checked
 * again.  src's BULK frames are not copied when they lie at the end of its
 * store (a received message): dst borrows them, so dst must be freed
 * before src, and src left as it is meanwhile (the broker forwards a
 * message and frees the copy before the original).  -EINVAL (dst has arguments), -EBADF (an fd was
 * taken from src), -E2BIG (dst would pass CDT_MSG_MAX), -ENOMEM, or fcntl's error; dst is unchanged
 * on failure. */
int msg_copy_args(cdt_msg *dst, const cdt_msg *src);
/* Room for n arguments in the message's table, at most CDT_ARGS_MAX
 * (msg-store.c). */
int msg_args_reserve(cdt_msg *msg, size_t n);
/* Room for n more bytes in the message's store (msg-store.c). */
int msg_store_reserve(cdt_msg *msg, size_t n);
/* Recompute msg->fds from the FD and BULK arguments, in order
 * (msg-store.c). */
void msg_rebuild_fds(cdt_msg *msg);
/* Whether argument type t carries one of the message's fds. */
static inline bool msg_type_has_fd(uint8_t t)
{
	return t == CDT_TYPE_FD || t == MSG_TYPE_BULK;
}
/* Where the BULK frame of an attached BULKF argument lies. */
static inline uint8_t *msg_bulkf_at(const cdt_msg *msg, const struct msg_arg *a)
{
	if (a->v.frame & MSG_BULKF_BORROWED)
		return (uint8_t *)(uintptr_t)(a->v.frame & ~MSG_BULKF_BORROWED);
	return msg->store + a->v.frame;
}

/* Bulk arguments (msg-bulk.c, docs/protocol.md section 4.1). */

/* Whether the argument called name is an unresolved bulk argument. */
bool msg_is_bulk(const cdt_msg *msg, const char *name);
/* Add to dst the bulk argument name of src, with a duplicate of its fd:
 * the broker forwards bulk values without reading them. */
int msg_copy_bulk(cdt_msg *dst, const cdt_msg *src, const char *name);
/* A copy of msg in which every bytes argument of at least CDT_BULK_MIN
 * (while fds are left) is sealed into a memfd.  *ret_out is NULL when
 * nothing changed (no such argument, or memfds unavailable). */
int msg_bulk_seal(const cdt_msg *msg, cdt_msg **ret_out);
/* msg_bulk_seal() that seals memfd values through scratch (a buf with a
 * maximum of at least CDT_MSG_MAX + 16) and keeps it for the next call while
 * it is at most MSG_BULK_SCRATCH_KEEP bytes: a fresh buffer per value pays
 * its page faults again every time.  It only ever holds ciphertext. */
#define MSG_BULK_SCRATCH_KEEP (4u * 1024 * 1024)
struct buf;
int msg_bulk_seal_scratch(const cdt_msg *msg, struct buf *scratch, cdt_msg **ret_out);
/* Check that fd is a memfd sealed exactly as a bulk value of len bytes
 * needs (-CDT_E_FD otherwise). */
int msg_bulk_check_fd(int fd, uint64_t len);
/* Open every bulk argument of msg in place, making it an ordinary bytes
 * argument; closes the memfds.  -CDT_E_FD (bad memfd), -CDT_E_AUTH
 * (tampered value), -ENOMEM.  On failure msg is unchanged or partially
 * resolved: the caller frees it. */
int msg_bulk_resolve(cdt_msg *msg);
/* Check every bulk argument's memfd without reading it, and that every
 * BULKF argument has its frame (the broker).  -CDT_E_FD, -CDT_E_PROTO. */
int msg_bulk_check(const cdt_msg *msg);

/* BULK frames (docs/protocol.md section 4.2), in argument order. */

/* The encoded size of msg once its BULKF values are opened. */
size_t msg_bulkf_resolved_size(const cdt_msg *msg);
/* The k-th BULK frame of msg (k < msg->nbulkf, attached): its bytes. */
void msg_bulkf_frame(const cdt_msg *msg, size_t k, const uint8_t **ret_p, size_t *ret_len);
/* How many BULKF arguments of a received msg still lack their frame. */
size_t msg_bulkf_missing(const cdt_msg *msg);
/* The length the next BULK frame of a received msg must have; 0 when
 * every BULKF argument has its frame. */
size_t msg_bulkf_want(const cdt_msg *msg);
/* Give the next BULKF argument its frame (len == msg_bulkf_want(), the
 * header already checked): copied into the store.  -EINVAL (no argument
 * waits, or not its length), -ENOMEM. */
int msg_bulkf_attach(cdt_msg *msg, const uint8_t *frame, size_t len);
/* The same in two steps, for a receiver that copies the frame straight
 * from where it arrives: room for len bytes at the end of the store (NULL:
 * no memory), then, once the frame there passed its checks, commit it to
 * the next BULKF argument (len == msg_bulkf_want()). */
uint8_t *msg_bulkf_slot(cdt_msg *msg, size_t len);
void msg_bulkf_commit(cdt_msg *msg, size_t len);

#endif
