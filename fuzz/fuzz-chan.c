/* SPDX-License-Identifier: MIT */
/*
 * Fuzz past the AEAD: the input is the plaintext of one message as the
 * channel carries it (u32 msg_len | fd identities | encoded message), which
 * the harness cuts into frames and seals correctly with fixed keys, so
 * reassembly, the fd identity check and the decoder all run.
 *
 * Input: u8 options, then the plaintext stream.
 *   bit 0     AES-256-GCM instead of XChaCha20-Poly1305
 *   bits 1-3  fds to attach to the first frame (0..7; header nfds says the same)
 *   bit 4     overwrite msg_len with the true remaining length
 *   bit 5     overwrite the identities with those of the attached fds
 *   bit 6     end with a FIN frame
 *   bit 7     answer each BULK frame the message waits for (docs/protocol.md
 *             section 4.2) with one of the wanted length, body from the
 *             input; a delivered message then tries to open its values
 */
#include <errno.h>
#include <sys/stat.h>

#include "chan.h"
#include "fuzz-common.h"
#include "msg.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t dgram[FRAME_MAX];
static uint8_t devnull_id[FRAME_ID_SIZE];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct stat st;
	(void)argc;
	(void)argv;
	fz_init();
	if (fstat(fz.devnull, &st) < 0)
		abort();
	frame_id_write(&st, devnull_id);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cdt_chan *chan;
	uint8_t *plain;
	int raw;
	uint64_t ctr = 0;

	if (size < 1)
		return 0;
	unsigned opt = data[0];
	size_t nfds = (opt >> 1) & 7;
	size_t plen = size - 1;
	plain = malloc(plen ? plen : 1);
	if (!plain)
		abort();
	memcpy(plain, data + 1, plen);
	if ((opt & 0x10) && plen >= FRAME_LEN_SIZE) {
		size_t prefix = FRAME_LEN_SIZE + nfds * FRAME_ID_SIZE;
		le32_put(plain, (uint32_t)(plen > prefix ? plen - prefix : 0));
	}
	if (opt & 0x20)
		for (size_t i = 0; i < nfds; i++)
			if (FRAME_LEN_SIZE + (i + 1) * FRAME_ID_SIZE <= plen)
				memcpy(plain + FRAME_LEN_SIZE + i * FRAME_ID_SIZE, devnull_id,
				       FRAME_ID_SIZE);

	fz_pair(opt, &chan, &raw);
	const struct aead_key *key = fz.b2l[opt & 1];
	size_t off = 0;
	do {
		size_t n = plen - off;
		uint8_t flags = 0;
		if (n > CDT_FRAME_PLAIN_MAX) {
			n = CDT_FRAME_PLAIN_MAX;
			flags = FRAME_F_MORE;
		}
		size_t len = frame_seal(key, ctr++, FRAME_DATA, flags, off == 0 ? (uint8_t)nfds : 0,
					plain + off, n, dgram);
		off += n;
		if (!fz_inject(raw, dgram, len, off == n ? nfds : 0) || !fz_drain(chan))
			goto out;
	} while (off < plen);
	/* At most a message's 64 arguments' worth. */
	for (size_t k = 0; (opt & 0x80) && chan->rx_bulk && k < CDT_ARGS_MAX; k++) {
		size_t len = msg_bulkf_want(chan->rx_bulk);
		cdt_msg *msg = NULL;
		dgram[0] = FRAME_VERSION;
		dgram[1] = FRAME_BULK;
		dgram[2] = 0;
		dgram[3] = 0;
		le32_put(dgram + 4, (uint32_t)(len - FRAME_HEADER_SIZE));
		for (size_t i = FRAME_HEADER_SIZE; i < len; i++)
			dgram[i] = plen ? plain[i % plen] : 0;
		/* A BULK frame takes a counter value like any frame. */
		ctr++;
		if (!fz_inject(raw, dgram, len, 0))
			goto out;
		int r = cdt_chan_recv(chan, &msg);
		if (r == 0) {
			/* Bytes from the input are not what the value's key sealed. */
			if (msg_bulk_resolve(msg) != -CDT_E_AUTH)
				abort();
			cdt_msg_free(msg);
		} else if (r != -EAGAIN) {
			abort();
		}
	}
	if (opt & 0x40) {
		size_t len = frame_seal(key, ctr++, FRAME_FIN, 0, 0, dgram + FRAME_HEADER_SIZE, 0,
					dgram);
		if (fz_inject(raw, dgram, len, 0)) {
			cdt_msg *msg = NULL;
			int r = cdt_chan_recv(chan, &msg);
			if (r == 0)
				cdt_msg_free(msg);
		}
	}
out:
	cdt_chan_free(chan);
	close(raw);
	free(plain);
	fz_check_fds();
	return 0;
}
