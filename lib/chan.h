/* SPDX-License-Identifier: MIT */
/* Internal state of a secure channel, shared by chan.c, chan-recv.c and
 * chan-wait.c (docs/protocol.md sections 1 and 3). */
#ifndef CONDUIT_CHAN_H
#define CONDUIT_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "aead.h"
#include "conduit/conduit.h"
#include "frame.h"
#include "ring.h"

/* Sealed frames waiting for the socket.  buf holds whole frames back to
 * back; fds travel with the frame at buf + 0 and are closed once sent. */
struct chan_qmsg {
	struct chan_qmsg *next;
	uint8_t *buf;
	size_t len;
	size_t off; /* bytes already sent, always at a frame boundary */
	int fds[CDT_FDS_MAX];
	size_t nfds;  /* 0 once the first frame left */
	uint64_t ctr; /* counter of the frame at buf + off */
};

/* Shared-memory transport (docs/protocol.md section 3.1).  Frames travel
 * in the rings and every one, wherever it went, is announced on the
 * receiver's announcement fd, one count per frame, once the message it
 * belongs to is out.  Frames with fds, frames over RING_REC_MAX and frames
 * that find the ring full take the socket; the socket stays the only way
 * to wait for room (POLLOUT) and to see the peer hang up. */
struct chan_ring {
	uint8_t *shm; /* RING_SHM_SIZE bytes, MAP_SHARED */
	struct ring tx;
	struct ring rx;
	int kick_in;	      /* announcements from the peer, one per frame: the
			       * broker's eventfd, or a layer's pipe (read end) */
	int kick_out;	      /* ours: the layer's pipe (write end), or the
			       * broker's eventfd */
	uint64_t credit;      /* frames announced and not taken yet (0 or 1: one
			       * byte of the pipe, or the eventfd in semaphore mode,
			       * per read, so the fd stays readable while frames
			       * wait, as pollers expect; more only for the BULK
			       * frames of the message being received, all taken
			       * by the same receive) */
	uint32_t unannounced; /* frames sent and not announced yet: at
			       * most CHAN_ANNOUNCE_MAX, 0 between calls */
	bool rx_edge;	      /* the broker's loop: announcements only wake it and
			       * are never read (chan_ring_edge) */
	bool kick_block;      /* a layer's pipe is in blocking mode: its last
			       * wait slept in read() */
	bool tx_on;	      /* our frames use the ring (after the offer or the ack) */
	bool rx_on;	      /* the peer's frames do */
	int pollfd;	      /* epoll set behind cdt_chan_fd(), -1 until asked for */
	bool poll_out;	      /* the set watches the socket for EPOLLOUT */
};

/* Most frames one announcement counts (a write to a pipe of at most
 * PIPE_BUF bytes is whole); a message has at most 257 DATA frames and 64
 * BULK frames. */
#define CHAN_ANNOUNCE_MAX 256

struct cdt_chan {
	int fd;
	int err;	 /* sticky: once set, every call returns it */
	bool tx_closed;	 /* our FIN is queued or sent */
	bool rx_fin;	 /* the peer's FIN arrived */
	bool sent_last;	 /* the last call sent a message whole; no receive since */
	bool wait_first; /* this blocking receive follows a send: poll first */
	bool rx_more;	 /* chan_recv_more() is receiving */
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

	/* A message whose BULK frames are still to come (docs/protocol.md
	 * section 4.2): they follow it, one per BULKF argument, in order. */
	cdt_msg *rx_bulk;

	struct chan_ring *ring; /* NULL: frames travel over the socket only */
	enum cdt_role role;
};

/* Room for the fds a frame may carry plus one credentials message, so that
 * an unexpected control message shows up as such instead of as MSG_CTRUNC. */
#define CHAN_CMSG_SPACE (CMSG_SPACE(sizeof(int) * CDT_FDS_MAX) + CMSG_SPACE(sizeof(struct ucred)))
#define CHAN_RX_FDS_MAX (CHAN_CMSG_SPACE / sizeof(int))

/* One frame as received: where it lies (rxbuf, or the store of the
 * message waiting for it when it is that message's BULK frame from the
 * ring), its length and the fds that came with it. */
struct chan_dgram {
	uint8_t *buf;
	size_t len;
	int fds[CHAN_RX_FDS_MAX];
	size_t nfds;
};

/* First allocation of a reassembly buffer, before it doubles. */
#define CHAN_REASM_FIRST (4 * CDT_FRAME_PLAIN_MAX)

/* Wire bytes of a message of len encoded bytes carrying nfds fds. */
size_t chan_wire_size(size_t len, size_t nfds);

/* cdt_chan_recv() for the second and later messages of one dispatch turn:
 * over the rings, finding nothing announced ends the turn without looking
 * for a hang-up (the first receive of the next turn does). */
int chan_recv_more(cdt_chan *chan, cdt_msg **ret_msg);

/* cdt_chan_recv(); block: let recvmsg() wait (without MSG_DONTWAIT). */
int chan_recv(cdt_chan *chan, cdt_msg **ret_msg, bool block);

/* Mark the channel unusable with err and return err. */
int chan_fail(cdt_chan *chan, int err);

/* One datagram on the socket, fds riding with it: -EAGAIN when the socket
 * is full, another negative errno when the peer is gone. */
int chan_sendmsg(cdt_chan *chan, const uint8_t *p, size_t len, const int *fds, size_t nfds);

/* Send one sealed frame (counter ctr) with its fds: through the ring when
 * it is on and the frame fits, else as one datagram.  -EAGAIN when neither
 * has room, another negative errno when the peer is gone. */
int chan_out(cdt_chan *chan, uint64_t ctr, const uint8_t *p, size_t len, const int *fds,
	     size_t nfds);

/* Broker: create the rings, send the offer (a RING frame with the memfd,
 * the read end of the broker-to-layer pipe and the layer-to-broker eventfd)
 * and switch our sending to the ring.  Must come before anything else is
 * sent or queued.  The caller ignores SIGPIPE: a layer that dies closes the
 * pipe, and the next announcement must fail with EPIPE, not kill us. */
int chan_ring_offer(cdt_chan *chan);

/* Layer: take the offer in rxbuf (opened; its fds in fds[0..2]): check
 * and map it, answer with the RING acknowledgement over the socket and
 * switch both directions.  The fds are consumed.  Broker: the
 * acknowledgement (nfds 0) switches receiving to the ring. */
int chan_ring_frame(cdt_chan *chan, const uint8_t *plain, size_t plen, int *fds, size_t nfds);

/* Broker: stop reading announcements.  The caller watches the announcement
 * fd edge-triggered and the socket for input (frames with fds, hang-ups);
 * a receive then takes the ring's next frame without a system call, reads
 * the socket only when the ring holds no frame or a later one, and says
 * -EAGAIN when neither has anything.  For a caller that never waits on the
 * channel itself (cdt_chan_fd(), the blocking receives): the broker's
 * loop.  Right after chan_ring_offer(), so that it holds from the first
 * frame through the ring.  -EINVAL unless we offered a ring. */
int chan_ring_edge(cdt_chan *chan);

/* Edge mode: a record waits in the ring, so another receive is due
 * without any new wake-up. */
bool chan_ring_pending(cdt_chan *chan);

/* After a wait that woke on POLLHUP, or when nothing is announced: is the
 * peer's socket end closed?  -CDT_E_EOF if so, else -EAGAIN. */
int chan_ring_hup(cdt_chan *chan);

/* Keep the epoll set of cdt_chan_fd() in line with cdt_chan_want_write(). */
void chan_ring_poll_update(cdt_chan *chan);

void chan_ring_free(struct chan_ring *ring);

/* The fd that signals frames to receive (the socket until the ring is on)
 * and the fd to wait on for room (always the socket). */
int chan_rx_fd(const cdt_chan *chan);
int chan_tx_fd(const cdt_chan *chan);

/* CLOCK_MONOTONIC in ms, the clock of every channel deadline. */
int64_t chan_now_ms(void);

/* Wait until a frame may be there, room may be (want_out), the peer hung
 * up, or the deadline (ms on CLOCK_MONOTONIC, -1: none) passes.  0, or 1
 * when the ring is on and the socket reported a hang-up or an error;
 * -ETIMEDOUT at the deadline. */
int chan_wait(cdt_chan *chan, bool want_out, int64_t deadline);

#endif
