/* SPDX-License-Identifier: MIT */
/*
 * Direction keys: crypto_kdf_derive_from_key(secret, id, "cdtchnv" + suite)
 * and a 64-bit frame counter as the nonce, little-endian, zero-padded to the
 * suite's nonce size.  The counter is never sent, so a frame opens only at
 * its own position in its own direction of its own session.
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "aead.h"
#include "keys.h"

/* AES first: its precomputed state must stay 16-byte aligned, and
 * sodium_malloc() aligns the end of the region, so the size is padded to a
 * multiple of 16 as well. */
struct aead_key {
	crypto_aead_aes256gcm_state aes;
	uint8_t key[AEAD_KEY_SIZE]; /* XChaCha20 key; unused (zero) for AES */
	enum cdt_suite suite;
	uint8_t pad[12];
};

_Static_assert(sizeof(struct aead_key) % 16 == 0, "aead_key keeps its alignment");
_Static_assert(crypto_aead_aes256gcm_ABYTES == AEAD_TAG_SIZE, "tag size");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == AEAD_TAG_SIZE, "tag size");
_Static_assert(crypto_kdf_CONTEXTBYTES == 8, "kdf context size");
_Static_assert(crypto_kdf_KEYBYTES == 32, "kdf key size");

int aead_key_new(const cdt_keys *keys, uint64_t subkey_id, struct aead_key **ret_key)
{
	char ctx[crypto_kdf_CONTEXTBYTES] = {'c', 'd', 't', 'c', 'h', 'n', 'v', '0'};
	struct aead_key *key;
	int r = 0;

	ctx[7] = (char)('0' + keys->suite);
	key = sodium_malloc(sizeof(*key));
	if (!key)
		return -ENOMEM;
	memset(key, 0, sizeof(*key));
	key->suite = keys->suite;
	if (crypto_kdf_derive_from_key(key->key, sizeof(key->key), subkey_id, ctx, keys->secret) !=
	    0) {
		r = -EIO;
		goto out;
	}
	if (key->suite == CDT_SUITE_AES256GCM) {
		/* The expanded key schedule makes each frame cheaper; the raw
		 * key is not needed afterwards. */
		crypto_aead_aes256gcm_beforenm(&key->aes, key->key);
		sodium_memzero(key->key, sizeof(key->key));
	}
out:
	if (r < 0) {
		sodium_free(key);
		return r;
	}
	*ret_key = key;
	return 0;
}

void aead_key_free(struct aead_key *key)
{
	sodium_free(key);
}

enum cdt_suite aead_key_suite(const struct aead_key *key)
{
	return key->suite;
}

static void aead_nonce(uint64_t counter,
		       uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES])
{
	memset(nonce, 0, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	for (size_t i = 0; i < 8; i++)
		nonce[i] = (uint8_t)(counter >> (8 * i));
}

void aead_seal(const struct aead_key *key, uint64_t counter, const uint8_t *ad, size_t adlen,
	       const uint8_t *m, size_t mlen, uint8_t *c)
{
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];

	aead_nonce(counter, nonce);
	if (key->suite == CDT_SUITE_AES256GCM)
		crypto_aead_aes256gcm_encrypt_afternm(c, NULL, m, mlen, ad, adlen, NULL, nonce,
						      &key->aes);
	else
		crypto_aead_xchacha20poly1305_ietf_encrypt(c, NULL, m, mlen, ad, adlen, NULL, nonce,
							   key->key);
}

int aead_open(const struct aead_key *key, uint64_t counter, const uint8_t *ad, size_t adlen,
	      const uint8_t *c, size_t clen, uint8_t *m)
{
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	int r;

	if (clen < AEAD_TAG_SIZE)
		return -CDT_E_PROTO;
	aead_nonce(counter, nonce);
	if (key->suite == CDT_SUITE_AES256GCM)
		r = crypto_aead_aes256gcm_decrypt_afternm(m, NULL, NULL, c, clen, ad, adlen, nonce,
							  &key->aes);
	else
		r = crypto_aead_xchacha20poly1305_ietf_decrypt(m, NULL, NULL, c, clen, ad, adlen,
							       nonce, key->key);
	return r == 0 ? 0 : -CDT_E_AUTH;
}
