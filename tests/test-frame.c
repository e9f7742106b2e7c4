/* SPDX-License-Identifier: MIT */
/* Frame headers, sealing and the AEAD suites (docs/protocol.md section 3). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "aead.h"
#include "conduit/conduit.h"
#include "frame.h"
#include "keys.h"

static const enum cdt_suite suites[] = {CDT_SUITE_XCHACHA20POLY1305, CDT_SUITE_AES256GCM};

static bool suite_ok(enum cdt_suite s)
{
	return s != CDT_SUITE_AES256GCM || crypto_aead_aes256gcm_is_available();
}

static cdt_keys *fixed_keys(enum cdt_suite suite)
{
	uint8_t secret[KEYS_SECRET_SIZE];
	cdt_keys *k = NULL;
	for (int i = 0; i < KEYS_SECRET_SIZE; i++)
		secret[i] = (uint8_t)i;
	assert_int_equal(keys_from_secret(secret, suite, &k), 0);
	return k;
}

static void from_hex(const char *hex, uint8_t *out, size_t len)
{
	assert_int_equal(strlen(hex), 2 * len);
	for (size_t i = 0; i < len; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

/* Subkeys of secret 00..1f: docs/protocol.md section 7. */
static void test_subkey_vectors(void **state)
{
	(void)state;
	static const struct {
		const char *ctx;
		uint64_t id;
		const char *hex;
	} v[] = {
		{"cdtchnv1", 1, "c49e585889a314765dee4fe15a437295830a1eecd379bcf7898d3faffb82d3a4"},
		{"cdtchnv1", 2, "149a4423c53b04f163f2fc6fe30085203d0cf7f7cd4c977649311b9c7a87833a"},
		{"cdtchnv2", 1, "03a508f8694c0cef8c8b15563d5fded48b6c532f1aa4c771c1e9c64ca38443d7"},
		{"cdtchnv2", 2, "03017660759dbf05df65a5f9e3d1ca3cac466cd593e284251695c7d9630a6176"},
	};
	uint8_t secret[32], sub[32], want[32];
	for (int i = 0; i < 32; i++)
		secret[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(crypto_kdf_derive_from_key(sub, 32, v[i].id, v[i].ctx, secret), 0);
		from_hex(v[i].hex, want, 32);
		assert_memory_equal(sub, want, 32);
	}
}

static void test_in_place_matches(void **state)
{
	(void)state;
	static const size_t sizes[] = {0, 1, 15, 16, 17, 100, 4096, CDT_FRAME_PLAIN_MAX};
	uint8_t *plain = malloc(FRAME_MAX), *a = malloc(FRAME_MAX), *b = malloc(FRAME_MAX);
	assert_non_null(plain);
	assert_non_null(a);
	assert_non_null(b);
	randombytes_buf(plain, FRAME_MAX);
	for (size_t s = 0; s < 2; s++) {
		if (!suite_ok(suites[s]))
			continue;
		cdt_keys *k = fixed_keys(suites[s]);
		struct aead_key *key;
		assert_int_equal(aead_key_new(k, AEAD_ID_BROKER_TO_LAYER, &key), 0);
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t n = sizes[i];
			size_t fa = frame_seal(key, 7, FRAME_DATA, 0, 0, plain, n, a);
			memcpy(b + FRAME_HEADER_SIZE, plain, n);
			size_t fb =
				frame_seal(key, 7, FRAME_DATA, 0, 0, b + FRAME_HEADER_SIZE, n, b);
			assert_int_equal(fa, n + FRAME_OVERHEAD);
			assert_int_equal(fa, fb);
			assert_memory_equal(a, b, fa);
			/* Open in place too, as the receiver does. */
			assert_int_equal(frame_open(key, 7, b, fb, b + FRAME_HEADER_SIZE), 0);
			if (n)
				assert_memory_equal(b + FRAME_HEADER_SIZE, plain, n);
			assert_int_equal(frame_open(key, 8, a, fa, a + FRAME_HEADER_SIZE),
					 -CDT_E_AUTH);
		}
		aead_key_free(key);
		cdt_keys_free(k);
	}
	free(plain);
	free(a);
	free(b);
}

static void test_directions_differ(void **state)
{
	(void)state;
	uint8_t f[64], plain[8] = "ping";
	for (size_t s = 0; s < 2; s++) {
		if (!suite_ok(suites[s]))
			continue;
		cdt_keys *k = fixed_keys(suites[s]);
		struct aead_key *b2l, *l2b;
		assert_int_equal(aead_key_new(k, AEAD_ID_BROKER_TO_LAYER, &b2l), 0);
		assert_int_equal(aead_key_new(k, AEAD_ID_LAYER_TO_BROKER, &l2b), 0);
		assert_int_equal(aead_key_suite(b2l), suites[s]);
		size_t n = frame_seal(b2l, 0, FRAME_DATA, 0, 0, plain, sizeof(plain), f);
		uint8_t out[8];
		assert_int_equal(frame_open(l2b, 0, f, n, out), -CDT_E_AUTH);
		assert_int_equal(frame_open(b2l, 0, f, n, out), 0);
		aead_key_free(b2l);
		aead_key_free(l2b);
		aead_key_free(NULL);
		cdt_keys_free(k);
	}
}

static void hdr(uint8_t *p, uint8_t ver, uint8_t type, uint8_t flags, uint8_t nfds, uint32_t clen)
{
	p[0] = ver;
	p[1] = type;
	p[2] = flags;
	p[3] = nfds;
	le32_put(p + 4, clen);
}

static int parse(uint8_t ver, uint8_t type, uint8_t flags, uint8_t nfds, uint32_t clen, size_t len)
{
	static uint8_t buf[FRAME_MAX + 1];
	struct frame_header h;
	hdr(buf, ver, type, flags, nfds, clen);
	return frame_header_parse(buf, len, &h);
}

static void test_header_parse(void **state)
{
	(void)state;
	struct frame_header h;
	uint8_t buf[8];

	for (size_t len = 0; len < FRAME_HEADER_SIZE; len++)
		assert_int_equal(frame_header_parse(buf, len, &h), -CDT_E_TRUNCATED);
	/* good: smallest DATA, largest DATA, FIN */
	assert_int_equal(parse(1, FRAME_DATA, 0, 0, 16, 24), 0);
	assert_int_equal(parse(1, FRAME_DATA, FRAME_F_MORE, CDT_FDS_MAX, CDT_FRAME_PLAIN_MAX + 16,
			       FRAME_MAX),
			 0);
	assert_int_equal(parse(1, FRAME_FIN, 0, 0, 16, 24), 0);
	/* version */
	for (unsigned v = 0; v < 256; v++)
		if (v != 1)
			assert_int_equal(parse((uint8_t)v, FRAME_DATA, 0, 0, 16, 24),
					 -CDT_E_VERSION);
	/* type: 0 and everything above RING */
	assert_int_equal(parse(1, FRAME_BULK, 0, 0, 16, 24), 0);
	for (unsigned t = 0; t < 256; t++)
		if (t != FRAME_DATA && t != FRAME_FIN && t != FRAME_BULK && t != FRAME_RING)
			assert_int_equal(parse(1, (uint8_t)t, 0, 0, 16, 24), -CDT_E_KIND);
	/* flags: only MORE */
	for (unsigned f = 2; f < 256; f++)
		assert_int_equal(parse(1, FRAME_DATA, (uint8_t)f, 0, 16, 24), -CDT_E_PROTO);
	/* nfds at max and max + 1 */
	assert_int_equal(parse(1, FRAME_DATA, 0, CDT_FDS_MAX, 16, 24), 0);
	assert_int_equal(parse(1, FRAME_DATA, 0, CDT_FDS_MAX + 1, 16, 24), -CDT_E_LIMIT);
	assert_int_equal(parse(1, FRAME_DATA, 0, 253, 16, 24), -CDT_E_LIMIT);
	/* FIN carries nothing */
	assert_int_equal(parse(1, FRAME_FIN, FRAME_F_MORE, 0, 16, 24), -CDT_E_PROTO);
	assert_int_equal(parse(1, FRAME_FIN, 0, 1, 16, 24), -CDT_E_PROTO);
	assert_int_equal(parse(1, FRAME_FIN, 0, 0, 17, 25), -CDT_E_PROTO);
	/* RING: an offer with its three fds, or the empty acknowledgement;
	 * never continued */
	assert_int_equal(parse(1, FRAME_RING, 0, 3, 16, 24), 0);
	assert_int_equal(parse(1, FRAME_RING, 0, 0, 16, 24), 0);
	for (unsigned f = 1; f < 256; f++)
		assert_int_equal(parse(1, FRAME_RING, (uint8_t)f, 0, 16, 24), -CDT_E_PROTO);
	/* clen against the datagram */
	assert_int_equal(parse(1, FRAME_DATA, 0, 0, 16, 25), -CDT_E_PROTO);
	assert_int_equal(parse(1, FRAME_DATA, 0, 0, 17, 24), -CDT_E_PROTO);
	assert_int_equal(parse(1, FRAME_DATA, 0, 0, 15, 23), -CDT_E_PROTO);
	assert_int_equal(parse(1, FRAME_DATA, 0, 0, 0, 8), -CDT_E_PROTO);
	assert_int_equal(parse(1, FRAME_DATA, 0, 0, UINT32_MAX, 24), -CDT_E_PROTO);
	assert_int_equal(parse(1, FRAME_DATA, 0, 0, 1u << 31, 24), -CDT_E_PROTO);
	/* plaintext at max + 1 */
	assert_int_equal(parse(1, FRAME_DATA, 0, 0, CDT_FRAME_PLAIN_MAX + 17, FRAME_MAX + 1),
			 -CDT_E_TOO_BIG);
}

static void test_short_ciphertext(void **state)
{
	(void)state;
	cdt_keys *k = fixed_keys(CDT_SUITE_XCHACHA20POLY1305);
	struct aead_key *key;
	uint8_t f[FRAME_OVERHEAD], out[1];
	assert_int_equal(aead_key_new(k, 1, &key), 0);
	frame_seal(key, 0, FRAME_FIN, 0, 0, f + FRAME_HEADER_SIZE, 0, f);
	for (size_t len = 0; len < FRAME_OVERHEAD; len++)
		assert_int_equal(frame_open(key, 0, f, len, out), -CDT_E_PROTO);
	assert_int_equal(frame_open(key, 0, f, sizeof(f), out), 0);
	aead_key_free(key);
	cdt_keys_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subkey_vectors),	  cmocka_unit_test(test_in_place_matches),
		cmocka_unit_test(test_directions_differ), cmocka_unit_test(test_header_parse),
		cmocka_unit_test(test_short_ciphertext),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
