/* SPDX-License-Identifier: MIT */
/*
 * One direction's AEAD key with counter nonces, for either suite
 * (docs/protocol.md sections 2 and 3).
 */
#ifndef CONDUIT_AEAD_H
#define CONDUIT_AEAD_H

#include <stddef.h>
#include <stdint.h>

#include "conduit/conduit.h"

#define AEAD_TAG_SIZE 16
#define AEAD_KEY_SIZE 32

/* Subkey ids of crypto_kdf_derive_from_key, one per direction. */
#define AEAD_ID_BROKER_TO_LAYER 1
#define AEAD_ID_LAYER_TO_BROKER 2

struct aead_key;

/* Derive the key of one direction from keys' secret.  The result lives in
 * sodium_malloc memory; free with aead_key_free().  Errors: -ENOMEM, -EIO. */
int aead_key_new(const cdt_keys *keys, uint64_t subkey_id, struct aead_key **ret_key);
/* Wipes and frees; accepts NULL. */
void aead_key_free(struct aead_key *key);
enum cdt_suite aead_key_suite(const struct aead_key *key);

/* c receives mlen + AEAD_TAG_SIZE bytes (ciphertext then tag).  c may equal m. */
void aead_seal(const struct aead_key *key, uint64_t counter, const uint8_t *ad, size_t adlen,
	       const uint8_t *m, size_t mlen, uint8_t *c);
/* m receives clen - AEAD_TAG_SIZE bytes; nothing usable on failure.
 * -CDT_E_AUTH when the tag does not verify, -CDT_E_PROTO when clen < tag. */
__attribute__((warn_unused_result)) int aead_open(const struct aead_key *key, uint64_t counter,
						  const uint8_t *ad, size_t adlen, const uint8_t *c,
						  size_t clen, uint8_t *m);

#endif
