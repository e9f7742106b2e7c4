/* SPDX-License-Identifier: MIT */
/*
 * One-core AEAD throughput, measured in the same run as the transports so
 * that "1 MiB routed >= 50 % of one-core AEAD" compares like with like.
 */
#include "peers.h"

#include <errno.h>
#include <sodium.h>

#define AEAD_BUF (1024u * 1024)

typedef int (*aead_fn)(unsigned char *c, unsigned long long *clen, const unsigned char *m,
		       unsigned long long mlen, const unsigned char *ad, unsigned long long adlen,
		       const unsigned char *nsec, const unsigned char *npub,
		       const unsigned char *k);

/* MB/s (10^6 bytes) of sealing 1 MiB buffers, median over cfg->runs. */
static int aead_rate(const struct peers_config *cfg, aead_fn seal, size_t abytes, double *ret_mbps)
{
	/* Large enough for either construction's key and nonce. */
	unsigned char key[32], nonce[24] = {0};
	unsigned char *m = sodium_malloc(AEAD_BUF), *c = sodium_malloc(AEAD_BUF + abytes);
	double rate[PEERS_RUNS_MAX];
	unsigned long long clen;
	int r = -ENOMEM;

	if (!m || !c)
		goto out;
	randombytes_buf(key, sizeof(key));
	randombytes_buf(m, AEAD_BUF);
	for (unsigned run = 0; run < cfg->runs; run++) {
		uint64_t t0 = peers_now_ns(), t1, bytes = 0;

		do {
			sodium_increment(nonce, sizeof(nonce));
			r = seal(c, &clen, m, AEAD_BUF, NULL, 0, NULL, nonce, key);
			if (r != 0) {
				r = -EIO;
				goto out;
			}
			bytes += AEAD_BUF;
			t1 = peers_now_ns();
		} while (t1 - t0 < cfg->run_ns);
		rate[run] = (double)bytes * 1e3 / (double)(t1 - t0);
	}
	*ret_mbps = peers_median(rate, cfg->runs);
	r = 0;
out:
	sodium_memzero(key, sizeof(key));
	sodium_free(m);
	sodium_free(c);
	return r;
}

int peers_measure_aead(const struct peers_config *cfg, struct peers_aead *ret)
{
	struct peers_config one = *cfg;
	double xchacha[PEERS_RUNS_MAX], aesgcm[PEERS_RUNS_MAX];
	bool aes;
	struct peers_aead res = {0};
	int r;

	if (cfg->runs == 0 || cfg->runs > PEERS_RUNS_MAX)
		return -EINVAL;
	if (sodium_init() < 0)
		return -EIO;
	/* Only meaningful after sodium_init(), which probes the CPU. */
	aes = crypto_aead_aes256gcm_is_available();
	r = peers_pin(0, true);
	if (r < 0)
		return r;
	/* Alternate the two, one run each, so that other work on the shared CPU
	 * does not land on one cipher's runs only. */
	one.runs = 1;
	for (unsigned run = 0; run < cfg->runs; run++) {
		r = aead_rate(&one, crypto_aead_xchacha20poly1305_ietf_encrypt,
			      crypto_aead_xchacha20poly1305_ietf_ABYTES, &xchacha[run]);
		if (r < 0)
			return r;
		aesgcm[run] = 0;
		if (aes) {
			r = aead_rate(&one, crypto_aead_aes256gcm_encrypt,
				      crypto_aead_aes256gcm_ABYTES, &aesgcm[run]);
			if (r < 0)
				return r;
		}
	}
	res.xchacha_mbps = peers_median(xchacha, cfg->runs);
	res.aesgcm_mbps = peers_median(aesgcm, cfg->runs);
	*ret = res;
	return 0;
}
