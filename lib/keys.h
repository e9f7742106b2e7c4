/* SPDX-License-Identifier: MIT */
/* Internal view of cdt_keys and the key blob (docs/protocol.md section 2). */
#ifndef CONDUIT_KEYS_H
#define CONDUIT_KEYS_H

#include <stdint.h>

#include "conduit/conduit.h"

#define KEYS_SECRET_SIZE  32
#define KEYS_BLOB_SIZE	  40
#define KEYS_BLOB_VERSION 1

/* Lives in sodium_malloc memory; wiped by cdt_keys_free(). */
struct cdt_keys {
	uint8_t secret[KEYS_SECRET_SIZE];
	enum cdt_suite suite; /* never CDT_SUITE_AUTO once built */
};

/* The concrete suite AUTO stands for on this CPU. */
enum cdt_suite keys_suite_resolve(enum cdt_suite suite);

/* Keys from a caller-chosen secret (copied): test vectors and fuzzers need
 * fixed keys.  Production code uses cdt_keys_new() or cdt_keys_recv().
 * Errors: -EINVAL (unknown suite), -ENOTSUP, -ENOMEM. */
int keys_from_secret(const uint8_t secret[KEYS_SECRET_SIZE], enum cdt_suite suite,
		     cdt_keys **ret_keys);

/* Parse a 40-byte blob into keys (copies the secret). */
int keys_blob_parse(const uint8_t *blob, size_t len, cdt_keys **ret_keys);

#endif
