/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpora of fuzz-frame and fuzz-chan (fuzz/corpus/frame,
 * fuzz/corpus/chan) from real messages, so the seeds follow the codec and
 * the framing.  Run from the source root: ./build/fuzz/gen-chan-corpus
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aead.h"
#include "conduit/conduit.h"
#include "frame.h"
#include "keys.h"

static void put(const char *dir, const char *name, const uint8_t *p, size_t len)
{
	char path[256];
	snprintf(path, sizeof(path), "fuzz/corpus/%s/%s", dir, name);
	FILE *f = fopen(path, "wbe");
	if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "gen-chan-corpus: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* u32 msg_len | nfds identities (zero: the harness fills them) | message */
static size_t plaintext(cdt_msg *m, size_t nfds, uint8_t *out, size_t cap)
{
	size_t prefix = FRAME_LEN_SIZE + nfds * FRAME_ID_SIZE;
	long n = cdt_msg_encode(m, out + prefix, cap - prefix);
	if (n < 0 || (size_t)n > cap - prefix)
		exit(1);
	le32_put(out, (uint32_t)n);
	memset(out + FRAME_LEN_SIZE, 0, nfds * FRAME_ID_SIZE);
	cdt_msg_free(m);
	return prefix + (size_t)n;
}

static cdt_msg *msg(enum cdt_kind kind, uint64_t id, const char *name)
{
	cdt_msg *m;
	if (cdt_msg_new(kind, id, name, &m) < 0)
		exit(1);
	return m;
}

#define CHK(x)                                                                                     \
	do {                                                                                       \
		if ((x) < 0)                                                                       \
			exit(1);                                                                   \
	} while (0)

int main(void)
{
	static uint8_t pt[200000], out[300000];
	uint8_t secret[KEYS_SECRET_SIZE];
	cdt_keys *keys;
	struct aead_key *key;
	int dn = open("/dev/null", O_RDONLY | O_CLOEXEC);
	size_t n;
	cdt_msg *m;

	CHK(cdt_init());
	for (int i = 0; i < KEYS_SECRET_SIZE; i++)
		secret[i] = (uint8_t)i;
	CHK(keys_from_secret(secret, CDT_SUITE_XCHACHA20POLY1305, &keys));
	CHK(aead_key_new(keys, AEAD_ID_BROKER_TO_LAYER, &key));

	/* fuzz-chan: option byte 0x30 | nfds << 1 (fix msg_len and ids) */
	m = msg(CDT_KIND_HELLO, 0, NULL);
	out[0] = 0x30;
	n = plaintext(m, 0, out + 1, sizeof(out) - 1);
	put("chan", "hello", out, n + 1);
	out[0] = 0x70; /* and a FIN after it */
	put("chan", "hello-fin", out, n + 1);

	m = msg(CDT_KIND_CALL, 7, "tag.write");
	CHK(cdt_msg_add_string(m, "tag", "plant.dosing.naoh_sp", 20));
	CHK(cdt_msg_add_double(m, "value", 100.0));
	CHK(cdt_msg_add_bool(m, "force", false));
	CHK(cdt_msg_add_i64(m, "i", -5));
	CHK(cdt_msg_add_u64(m, "u", 5));
	out[0] = 0x31; /* AES */
	n = plaintext(m, 0, out + 1, sizeof(out) - 1);
	put("chan", "call-tag-write", out, n + 1);

	m = msg(CDT_KIND_REPLY, 7, NULL);
	CHK(cdt_msg_add_fd(m, "fd", dn));
	out[0] = 0x30 | 1 << 1;
	n = plaintext(m, 1, out + 1, sizeof(out) - 1);
	put("chan", "reply-1fd", out, n + 1);

	m = msg(CDT_KIND_EVENT, 0, "tag.changed");
	CHK(cdt_msg_add_fd(m, "a", dn));
	CHK(cdt_msg_add_fd(m, "b", dn));
	CHK(cdt_msg_add_fd(m, "c", dn));
	CHK(cdt_msg_add_fd(m, "d", dn));
	out[0] = 0x30 | 4 << 1;
	n = plaintext(m, 4, out + 1, sizeof(out) - 1);
	put("chan", "event-4fd", out, n + 1);

	m = msg(CDT_KIND_CALL, 9, "hist.append");
	memset(pt, 0xa5, 70000);
	CHK(cdt_msg_add_bytes(m, "data", pt, 70000));
	out[0] = 0x30;
	n = plaintext(m, 0, out + 1, sizeof(out) - 1);
	put("chan", "call-two-frames", out, n + 1);

	m = msg(CDT_KIND_ERROR, 9, "denied");
	CHK(cdt_msg_add_string(m, "why", "rule 3", 6));
	out[0] = 0x00; /* msg_len as given */
	n = plaintext(m, 0, out + 1, sizeof(out) - 1);
	put("chan", "error-raw", out, n + 1);

	/* fuzz-frame: u8 options | records (u8 mode, u16 len, bytes) */
	size_t w = 0, plen;
	out[w++] = 0;
	m = msg(CDT_KIND_CALL, 1, "t.x");
	CHK(cdt_msg_add_bytes(m, "b", "\x00\x01\x02\x03", 4));
	plen = plaintext(m, 0, pt, sizeof(pt));
	/* raw: the exact sealed frame at counter 0, then a sealed FIN */
	size_t flen = frame_seal(key, 0, FRAME_DATA, 0, 0, pt, plen, out + w + 3);
	out[w] = 0;
	out[w + 1] = (uint8_t)flen;
	out[w + 2] = (uint8_t)(flen >> 8);
	w += 3 + flen;
	put("frame", "raw-data", out, w);
	out[w++] = 1;
	out[w++] = 3;
	out[w++] = 0;
	out[w++] = FRAME_FIN;
	out[w++] = 0;
	out[w++] = 0;
	put("frame", "raw-data-sealed-fin", out, w);

	/* sealed: first frame with MORE, then the continuation */
	m = msg(CDT_KIND_CALL, 2, "t.big");
	memset(pt + 1000, 0x11, 70000);
	CHK(cdt_msg_add_bytes(m, "b", pt + 1000, 70000));
	uint8_t *big = malloc(100000);
	plen = plaintext(m, 0, big, 100000);
	w = 0;
	out[w++] = 0;
	for (size_t off = 0; off < plen; off += CDT_FRAME_PLAIN_MAX) {
		size_t c = plen - off > CDT_FRAME_PLAIN_MAX ? CDT_FRAME_PLAIN_MAX : plen - off;
		out[w++] = (uint8_t)(1 | ((c + 3) >> 16) << 7);
		out[w++] = (uint8_t)(c + 3);
		out[w++] = (uint8_t)((c + 3) >> 8);
		out[w++] = FRAME_DATA;
		out[w++] = c < plen - off ? FRAME_F_MORE : 0;
		out[w++] = 0;
		memcpy(out + w, big + off, c);
		w += c;
	}
	put("frame", "sealed-two-frames", out, w);
	free(big);

	/* sealed with an fd, identities of /dev/null */
	struct stat st;
	fstat(dn, &st);
	m = msg(CDT_KIND_REPLY, 3, NULL);
	CHK(cdt_msg_add_fd(m, "fd", dn));
	plen = plaintext(m, 1, pt, sizeof(pt));
	frame_id_write(&st, pt + FRAME_LEN_SIZE);
	w = 0;
	out[w++] = 1; /* AES */
	out[w++] = 1 | 1 << 1;
	out[w++] = (uint8_t)(plen + 3);
	out[w++] = (uint8_t)((plen + 3) >> 8);
	out[w++] = FRAME_DATA;
	out[w++] = 0;
	out[w++] = 1;
	memcpy(out + w, pt, plen);
	w += plen;
	put("frame", "sealed-1fd", out, w);

	/* raw garbage header variants */
	static const uint8_t bad[][11] = {
		{0, 0, 8, 0, 1, 1, 0, 0, 0, 0, 0},  /* clen 0 */
		{0, 0, 8, 0, 1, 3, 0, 0, 16, 0, 0}, /* BULK */
		{0, 0, 8, 0, 2, 1, 0, 0, 16, 0, 0}, /* version 2 */
		{0, 0, 8, 0, 1, 1, 0, 5, 16, 0, 0}, /* nfds 5 */
		{0, 0, 8, 0, 1, 2, 1, 0, 16, 0, 0}, /* FIN with MORE */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[32];
		snprintf(name, sizeof(name), "raw-bad-%zu", i);
		put("frame", name, bad[i], sizeof(bad[i]));
	}
	aead_key_free(key);
	cdt_keys_free(keys);
	close(dn);
	return 0;
}
