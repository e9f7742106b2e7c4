/* SPDX-License-Identifier: MIT */
/*
 * Frames: one SOCK_SEQPACKET datagram each, an 8-byte header that is also
 * the AEAD associated data, then ciphertext and tag (docs/protocol.md
 * section 3).
 */
#ifndef CONDUIT_FRAME_H
#define CONDUIT_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "aead.h"
#include "buf.h"
#include "conduit/conduit.h"

#define FRAME_VERSION	  1
#define FRAME_HEADER_SIZE 8
#define FRAME_OVERHEAD	  (FRAME_HEADER_SIZE + AEAD_TAG_SIZE)
#define FRAME_MAX	  (CDT_FRAME_PLAIN_MAX + FRAME_OVERHEAD)
/* u32 msg_len at the start of a message's first frame */
#define FRAME_LEN_SIZE	  4
/* u64 st_dev, u64 st_ino, u32 st_mode & S_IFMT per passed fd */
#define FRAME_ID_SIZE	  20
#define FRAME_PREFIX_MAX  (FRAME_LEN_SIZE + CDT_FDS_MAX * FRAME_ID_SIZE)

enum frame_type {
	FRAME_DATA = 1,
	FRAME_FIN = 2,
	FRAME_BULK = 3, /* a bulk value sealed by the message's sender (section 4.2) */
	FRAME_RING = 4, /* ring offer (broker) or its acknowledgement (section 3.1) */
};

#define FRAME_F_MORE 0x01

struct frame_header {
	uint8_t type;
	uint8_t flags;
	uint8_t nfds;
	uint32_t clen;
};

/* Checks everything a header says on its own against the datagram length:
 * version, type, flags, nfds, clen == len - 8, clen >= tag.  Errors:
 * -CDT_E_TRUNCATED, -CDT_E_VERSION, -CDT_E_KIND, -CDT_E_PROTO, -CDT_E_LIMIT. */
__attribute__((warn_unused_result)) int frame_header_parse(const uint8_t *dgram, size_t len,
							   struct frame_header *ret_hdr);

/* Seal plen (<= CDT_FRAME_PLAIN_MAX) bytes into out (plen + FRAME_OVERHEAD
 * bytes).  Returns the frame length. */
size_t frame_seal(const struct aead_key *key, uint64_t counter, uint8_t type, uint8_t flags,
		  uint8_t nfds, const uint8_t *plain, size_t plen, uint8_t *out);

/* Open a frame whose header frame_header_parse() accepted; plain receives
 * len - FRAME_OVERHEAD bytes.  -CDT_E_AUTH on any tamper. */
__attribute__((warn_unused_result)) int frame_open(const struct aead_key *key, uint64_t counter,
						   const uint8_t *dgram, size_t len,
						   uint8_t *plain);

/* The identity a frame carries for a passed fd. */
void frame_id_write(const struct stat *st, uint8_t out[FRAME_ID_SIZE]);

#endif
