/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the channel's receive side with datagrams over a real socketpair,
 * fixed keys (docs/protocol.md section 3).
 *
 * Input: u8 options (bit 0: AES-256-GCM instead of XChaCha20), then
 * records of u8 mode | u16 LE length | bytes.  mode bit 0 set: the bytes
 * are "type flags nfds" + plaintext, sealed with the right key and the next
 * counter (so sequence and length rules are reachable); clear: the bytes
 * go out raw (header parser, AEAD failures).  mode bits 1-3: how many fds
 * to attach; bit 7 adds 65536 to the length (a full 64 KiB plaintext plus
 * its 3 header bytes does not fit 16 bits).  After every datagram the
 * channel is drained; the first error ends the input, and it must stick.
 */
#include <errno.h>

#include "fuzz-common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t dgram[FRAME_MAX + 8];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cdt_chan *chan;
	int raw;
	uint64_t ctr = 0;

	if (size < 1)
		return 0;
	unsigned opt = data[0];
	data++;
	size--;
	fz_pair(opt, &chan, &raw);
	while (size >= 3) {
		uint8_t mode = data[0];
		size_t len = (size_t)data[1] | (size_t)data[2] << 8 | (size_t)(mode >> 7) << 16;
		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		const uint8_t *p = data;
		size_t n = len;
		data += len;
		size -= len;
		if ((mode & 1) && len >= 3) {
			size_t plen = len - 3;
			if (plen > CDT_FRAME_PLAIN_MAX)
				plen = CDT_FRAME_PLAIN_MAX;
			n = frame_seal(fz.b2l[opt & 1], ctr++, p[0], p[1], p[2], p + 3, plen,
				       dgram);
			p = dgram;
		}
		if (!fz_inject(raw, p, n, (mode >> 1) & 7))
			break;
		if (!fz_drain(chan))
			break;
	}
	/* Whatever is left in the socket is closed with it. */
	cdt_chan_free(chan);
	close(raw);
	fz_check_fds();
	return 0;
}
