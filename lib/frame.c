/* SPDX-License-Identifier: MIT */
/* Frame header parsing and sealing (docs/protocol.md section 3). */
#include "frame.h"

int frame_header_parse(const uint8_t *dgram, size_t len, struct frame_header *ret_hdr)
{
	struct frame_header h;

	if (len < FRAME_HEADER_SIZE)
		return -CDT_E_TRUNCATED;
	if (dgram[0] != FRAME_VERSION)
		return -CDT_E_VERSION;
	h.type = dgram[1];
	h.flags = dgram[2];
	h.nfds = dgram[3];
	h.clen = le32_get(dgram + 4);
	if (h.type != FRAME_DATA && h.type != FRAME_FIN && h.type != FRAME_BULK &&
	    h.type != FRAME_RING)
		return -CDT_E_KIND;
	if (h.flags & ~FRAME_F_MORE)
		return -CDT_E_PROTO;
	if (h.nfds > CDT_FDS_MAX)
		return -CDT_E_LIMIT;
	/* FIN carries nothing: no flags, no fds, an empty plaintext. */
	if (h.type == FRAME_FIN && (h.flags || h.nfds || h.clen != AEAD_TAG_SIZE))
		return -CDT_E_PROTO;
	/* A ring offer or acknowledgement is one frame, never continued. */
	if (h.type == FRAME_RING && h.flags)
		return -CDT_E_PROTO;
	/* Subtract on the trusted side: len >= FRAME_HEADER_SIZE here. */
	if (h.clen != len - FRAME_HEADER_SIZE || h.clen < AEAD_TAG_SIZE)
		return -CDT_E_PROTO;
	if (h.clen - AEAD_TAG_SIZE > CDT_FRAME_PLAIN_MAX)
		return -CDT_E_TOO_BIG;
	*ret_hdr = h;
	return 0;
}

size_t frame_seal(const struct aead_key *key, uint64_t counter, uint8_t type, uint8_t flags,
		  uint8_t nfds, const uint8_t *plain, size_t plen, uint8_t *out)
{
	out[0] = FRAME_VERSION;
	out[1] = type;
	out[2] = flags;
	out[3] = nfds;
	le32_put(out + 4, (uint32_t)(plen + AEAD_TAG_SIZE));
	aead_seal(key, counter, out, FRAME_HEADER_SIZE, plain, plen, out + FRAME_HEADER_SIZE);
	return plen + FRAME_OVERHEAD;
}

int frame_open(const struct aead_key *key, uint64_t counter, const uint8_t *dgram, size_t len,
	       uint8_t *plain)
{
	if (len < FRAME_OVERHEAD)
		return -CDT_E_PROTO;
	return aead_open(key, counter, dgram, FRAME_HEADER_SIZE, dgram + FRAME_HEADER_SIZE,
			 len - FRAME_HEADER_SIZE, plain);
}

void frame_id_write(const struct stat *st, uint8_t out[FRAME_ID_SIZE])
{
	le64_put(out, (uint64_t)st->st_dev);
	le64_put(out + 8, (uint64_t)st->st_ino);
	le32_put(out + 16, (uint32_t)(st->st_mode & S_IFMT));
}
