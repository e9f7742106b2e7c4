/* SPDX-License-Identifier: MIT */
/*
 * Internals of cdt_msg shared by msg.c (building, lookup) and msg-codec.c
 * (the canonical encoding).
 *
 * A message keeps its arguments sorted by name at all times, so the
 * encoding order, the lookup order and the fd order are the same thing and
 * encoding needs no sort.  Names and string/bytes payloads live in one
 * store addressed by offsets (so the store may move when it grows); a
 * decoded message carries its store inline, in the same allocation as the
 * struct, so decoding costs one malloc however many arguments there are.
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

struct msg_arg {
	uint32_t name_off; /* NUL-terminated name in the store */
	uint32_t data_off; /* string (NUL-terminated) or bytes in the store */
	uint32_t data_len;
	uint8_t name_len;
	uint8_t type; /* enum cdt_type */
	union {
		bool b;
		int64_t i64;
		uint64_t u64;
		double d; /* NaNs already canonical */
		int fd;	  /* owned; -1 after cdt_msg_take_fd() */
	} v;
};

struct cdt_msg {
	enum cdt_kind kind;
	uint64_t call_id;
	size_t enc_len; /* exact encoded size, kept up to date by every add */
	uint8_t *store;
	size_t store_len;
	size_t store_cap;
	bool store_inline; /* store is the tail of this allocation */
	bool fd_taken;	   /* an fd was moved out: no longer encodable */
	uint8_t nargs;
	uint8_t nfds;
	uint8_t name_len;
	char name[CDT_NAME_MAX + 1];
	int fds[CDT_FDS_MAX]; /* the fd arguments' fds, in encoding order */
	struct msg_arg args[CDT_ARGS_MAX];
	uint8_t tail[]; /* inline store of a decoded message */
};

/* Name rules (docs/protocol.md section 4).  Lengths are checked here too. */
bool msg_name_valid(const char *s, size_t len);
bool msg_arg_name_valid(const char *s, size_t len);
/* Order of argument names: bytewise, a proper prefix first. */
int msg_name_cmp(const char *a, size_t alen, const char *b, size_t blen);
/* Whether kind k needs a non-zero call_id / a non-empty name.  -1 for an
 * unknown kind. */
int msg_kind_rules(unsigned k, bool *ret_call_id, bool *ret_name);

#endif
