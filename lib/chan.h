/* SPDX-License-Identifier: MIT */
/* Internal state of a secure channel, shared by chan.c, chan-recv.c and
 * chan-wait.c (docs/protocol.md sections 1 and 3). */
#ifndef CONDUIT_CHAN_H
#define CONDUIT_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aead.h"
#include "conduit/conduit.h"
#include "frame.h"

/* Sealed frames waiting for the socket.  buf holds whole frames back to
 * back; fds travel with the frame at buf + 0 and are closed once sent. */
struct chan_qmsg {
	struct chan_qmsg *next;
	uint8_t *buf;
	size_t len;
	size_t off; /* bytes already sent, always at a frame boundary */
	int fds[CDT_FDS_MAX];
	size_t nfds; /* 0 once the first frame left */
};

struct cdt_chan {
	int fd;
	int err;	/* sticky: once set, every call returns it */
	bool tx_closed; /* our FIN is queued or sent */
	bool rx_fin;	/* the peer's FIN arrived */
	bool sent_last; /* the last call sent a message whole; no receive since */
	struct aead_key *tx;
	struct aead_key *rx;
	uint64_t tx_ctr;
	uint64_t rx_ctr;

	/* send side */
	uint8_t *txbuf; /* FRAME_MAX (lazily): a one-frame message is sealed in place */
	struct chan_qmsg *qhead;
	struct chan_qmsg *qtail;
	size_t queued; /* bytes in the queue not yet sent */
	size_t qcap;

	/* receive side */
	uint8_t *rxbuf; /* FRAME_MAX (lazily): one datagram, opened in place */
	/* A multi-frame message being received: reasm_len (msg_len) bytes
	 * announced, reasm_off arrived, reasm_cap allocated.  The buffer
	 * grows with what arrives, so a peer that announces 16 MiB and stops
	 * holds at most twice what it actually sent. */
	uint8_t *reasm;
	size_t reasm_len;
	size_t reasm_off;
	size_t reasm_cap;
	int rx_fds[CDT_FDS_MAX];
	size_t rx_nfds;
	uint8_t rx_ids[CDT_FDS_MAX * FRAME_ID_SIZE];
};

/* First allocation of a reassembly buffer, before it doubles. */
#define CHAN_REASM_FIRST (4 * CDT_FRAME_PLAIN_MAX)

/* Wire bytes of a message of len encoded bytes carrying nfds fds. */
size_t chan_wire_size(size_t len, size_t nfds);

/* cdt_chan_recv(); block: let recvmsg() wait (without MSG_DONTWAIT). */
int chan_recv(cdt_chan *chan, cdt_msg **ret_msg, bool block);

/* Mark the channel unusable with err and return err. */
int chan_fail(cdt_chan *chan, int err);

#endif
