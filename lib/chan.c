/* SPDX-License-Identifier: MIT */
/*
 * Secure channel, send side: encode, seal in counter order, send or queue
 * (docs/protocol.md sections 1, 3 and 5).
 *
 * A message of one frame is encoded straight into txbuf behind its header
 * and sealed in place; it is copied only when the socket is full.  Larger
 * messages are sealed into one allocation that the queue adopts as is.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "chan.h"
#include "keys.h"
#include "msg.h"

_Static_assert(MSG_BULKF_MAX + MSG_BULKF_OVERHEAD == RING_REC_MAX, "a BULK frame fits a record");
_Static_assert(MSG_BULKF_OVERHEAD == FRAME_HEADER_SIZE + AEAD_TAG_SIZE, "BULK frame overhead");

size_t chan_wire_size(size_t len, size_t nfds)
{
	/* len <= CDT_MSG_MAX and nfds <= CDT_FDS_MAX: no overflow possible. */
	size_t plain = FRAME_LEN_SIZE + nfds * FRAME_ID_SIZE + len;
	size_t frames = (plain + CDT_FRAME_PLAIN_MAX - 1) / CDT_FRAME_PLAIN_MAX;
	return plain + frames * FRAME_OVERHEAD;
}

int chan_fail(cdt_chan *chan, int err)
{
	if (!chan->err)
		chan->err = err;
	return chan->err;
}

static void chan_close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static void chan_qmsg_free(struct chan_qmsg *q)
{
	if (!q)
		return;
	chan_close_fds(q->fds, q->nfds);
	free(q->buf);
	free(q);
}

int cdt_chan_new(int sock, const cdt_keys *keys, enum cdt_role role, cdt_chan **ret_chan)
{
	cdt_chan *chan = NULL;
	int type = 0, r;
	socklen_t tlen = sizeof(type);

	r = cdt_init();
	if (r < 0)
		goto out;
	if (sock < 0 || !keys || !ret_chan || (role != CDT_ROLE_BROKER && role != CDT_ROLE_LAYER)) {
		r = -EINVAL;
		goto out;
	}
	/* Record boundaries and per-record fds are what the framing relies on. */
	if (getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0) {
		r = -errno;
		goto out;
	}
	if (type != SOCK_SEQPACKET) {
		r = -EPROTOTYPE;
		goto out;
	}
	/* O_NONBLOCK is left as it is: every call passes MSG_DONTWAIT, and
	 * only cdt_chan_recv_wait() may block in recvmsg() when it is clear,
	 * which saves a poll() per message in request/response loops. */
	if (fcntl(sock, F_SETFD, FD_CLOEXEC) < 0) {
		r = -errno;
		goto out;
	}
	chan = calloc(1, sizeof(*chan));
	if (!chan) {
		r = -ENOMEM;
		goto out;
	}
	chan->fd = sock;
	chan->role = role;
	sock = -1;
	/* The largest message, and the few bytes more its BULK frames may
	 * take than the values inline. */
	chan->qcap = chan_wire_size(CDT_MSG_MAX, CDT_FDS_MAX) +
		     CDT_ARGS_MAX * (MSG_BULKF_OVERHEAD + MSG_BULKF_VALUE_SIZE);
	r = aead_key_new(
		keys, role == CDT_ROLE_BROKER ? AEAD_ID_BROKER_TO_LAYER : AEAD_ID_LAYER_TO_BROKER,
		&chan->tx);
	if (r < 0)
		goto out;
	r = aead_key_new(
		keys, role == CDT_ROLE_BROKER ? AEAD_ID_LAYER_TO_BROKER : AEAD_ID_BROKER_TO_LAYER,
		&chan->rx);
out:
	if (sock >= 0)
		close(sock);
	if (r < 0) {
		cdt_chan_free(chan);
		return r;
	}
	*ret_chan = chan;
	return 0;
}

void cdt_chan_free(cdt_chan *chan)
{
	if (!chan)
		return;
	while (chan->qhead) {
		struct chan_qmsg *q = chan->qhead;
		chan->qhead = q->next;
		chan_qmsg_free(q);
	}
	chan_close_fds(chan->rx_fds, chan->rx_nfds);
	cdt_msg_free(chan->rx_bulk);
	chan_ring_free(chan->ring);
	aead_key_free(chan->tx);
	aead_key_free(chan->rx);
	/* Plaintext passed through these buffers. */
	if (chan->txbuf)
		sodium_memzero(chan->txbuf, FRAME_MAX);
	if (chan->rxbuf)
		sodium_memzero(chan->rxbuf, FRAME_MAX);
	if (chan->reasm)
		sodium_memzero(chan->reasm, chan->reasm_cap);
	free(chan->txbuf);
	free(chan->rxbuf);
	free(chan->reasm);
	if (chan->fd >= 0)
		close(chan->fd);
	free(chan);
}

bool cdt_chan_want_write(const cdt_chan *chan)
{
	return chan->qhead != NULL;
}

bool cdt_chan_rx_partial(const cdt_chan *chan)
{
	return chan->reasm != NULL || chan->rx_bulk != NULL;
}

void cdt_chan_set_queue_cap(cdt_chan *chan, size_t cap)
{
	chan->qcap = cap;
}

size_t cdt_chan_queued(const cdt_chan *chan)
{
	return chan->queued;
}

/* One datagram; fds (if any) ride with it.  -EAGAIN when the socket is
 * full, another -errno when the peer is gone. */
int chan_sendmsg(cdt_chan *chan, const uint8_t *p, size_t len, const int *fds, size_t nfds)
{
	union {
		struct cmsghdr align;
		uint8_t buf[CMSG_SPACE(sizeof(int) * CDT_FDS_MAX)];
	} cbuf;
	struct iovec iov = {.iov_base = (void *)p, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (nfds > 0) {
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	/* send() skips the msghdr copy-in: measurable on small messages. */
	do
		n = nfds ? sendmsg(chan->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT)
			 : send(chan->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	/* SOCK_SEQPACKET sends a record whole or not at all. */
	return (size_t)n == len ? 0 : -EIO;
}

/* Announce the frames sent since the last announcement, all at once: as
 * many bytes into the layer's pipe (the broker; at most CHAN_ANNOUNCE_MAX,
 * under PIPE_BUF, so the write is whole or fails), or that much more on
 * the broker's eventfd (a layer).  Once per message, not per frame: a
 * receiver woken by a message's first frame would find the rest missing,
 * sleep again and cost two more context switches per message. */
static int chan_announce(cdt_chan *chan)
{
	static const uint8_t ones[CHAN_ANNOUNCE_MAX] = {0};
	struct chan_ring *ring = chan->ring;
	uint64_t n64;
	const void *p = ones;
	size_t len;
	ssize_t n;

	if (!ring || ring->unannounced == 0)
		return 0;
	if (chan->role == CDT_ROLE_BROKER) {
		len = ring->unannounced;
	} else {
		n64 = ring->unannounced;
		p = &n64;
		len = sizeof(n64);
	}
	do
		n = write(ring->kick_out, p, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		/* EAGAIN: a layer that leaves a pipe's worth of announcements
		 * unread (far more than its ring and socket hold), or 2^64 - 2
		 * frames on an eventfd: not reading, not a state to wait in. */
		return errno == EAGAIN ? -ENOBUFS : -errno;
	if ((size_t)n != len)
		return -EIO;
	ring->unannounced = 0;
	return 0;
}

int chan_out(cdt_chan *chan, uint64_t ctr, const uint8_t *p, size_t len, const int *fds,
	     size_t nfds)
{
	struct chan_ring *ring = chan->ring;
	int r;

	if (!ring || !ring->tx_on)
		return chan_sendmsg(chan, p, len, fds, nfds);
	/* fds need the socket; so do frames the ring cannot take now. */
	r = nfds ? -EAGAIN : ring_put(&ring->tx, ctr, p, len);
	if (r == -CDT_E_PROTO)
		return r;
	if (r < 0) {
		r = chan_sendmsg(chan, p, len, fds, nfds);
		if (r < 0)
			return r;
	}
	/* Announced by the caller once its message is out (chan_announce). */
	if (++ring->unannounced == CHAN_ANNOUNCE_MAX)
		return chan_announce(chan);
	return 0;
}

static size_t chan_frame_len(const uint8_t *frame)
{
	return FRAME_HEADER_SIZE + le32_get(frame + 4);
}

/* Announce what left; a failure ends the channel. */
static int chan_announced(cdt_chan *chan, int r)
{
	int a = chan_announce(chan);
	if (a < 0)
		return chan_fail(chan, a);
	return r;
}

int cdt_chan_flush(cdt_chan *chan)
{
	if (!chan)
		return -EINVAL;
	if (chan->err)
		return chan->err;
	while (chan->qhead) {
		struct chan_qmsg *q = chan->qhead;
		while (q->off < q->len) {
			size_t flen = chan_frame_len(q->buf + q->off);
			int r = chan_out(chan, q->ctr, q->buf + q->off, flen, q->fds, q->nfds);
			if (r == -EAGAIN)
				return chan_announced(chan, r);
			if (r < 0)
				return chan_fail(chan, r);
			q->ctr++;
			/* The kernel holds its own references now. */
			chan_close_fds(q->fds, q->nfds);
			q->nfds = 0;
			q->off += flen;
			chan->queued -= flen;
		}
		chan->qhead = q->next;
		if (!chan->qhead)
			chan->qtail = NULL;
		chan_qmsg_free(q);
	}
	chan_ring_poll_update(chan);
	return chan_announced(chan, 0);
}

static void chan_enqueue(cdt_chan *chan, struct chan_qmsg *q)
{
	q->next = NULL;
	if (chan->qtail)
		chan->qtail->next = q;
	else
		chan->qhead = q;
	chan->qtail = q;
	chan->queued += q->len - q->off;
}

/* Queue wire[off..len) (whole frames).  adopt: wire was malloc'ed for this
 * message and the queue takes it; otherwise the bytes are copied.  fds are
 * duplicated when the message's first frame is still among them. */
static int chan_queue(cdt_chan *chan, uint8_t *wire, size_t off, size_t len, bool adopt,
		      const int *fds, size_t nfds, uint64_t ctr)
{
	struct chan_qmsg *q = calloc(1, sizeof(*q));
	int r = 0;

	if (!q)
		return -ENOMEM;
	q->ctr = ctr;
	for (size_t i = 0; i < CDT_FDS_MAX; i++)
		q->fds[i] = -1;
	if (off == 0) {
		for (size_t i = 0; i < nfds; i++) {
			q->fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
			if (q->fds[i] < 0) {
				r = -errno;
				goto out;
			}
		}
		q->nfds = nfds;
	}
	if (adopt) {
		q->buf = wire;
		q->off = off;
		q->len = len;
	} else {
		q->buf = malloc(len - off);
		if (!q->buf) {
			r = -ENOMEM;
			goto out;
		}
		memcpy(q->buf, wire + off, len - off);
		q->len = len - off;
	}
out:
	if (r < 0) {
		chan_close_fds(q->fds, CDT_FDS_MAX);
		free(q);
		return r;
	}
	chan_enqueue(chan, q);
	return 0;
}

/* Seal in place the frames laid out in buf: frame i starts at
 * i * FRAME_MAX (every frame but the last is full), its plaintext right
 * behind its header.  Counters from chan->tx_ctr on; the first frame
 * carries nfds. */
static void chan_seal(cdt_chan *chan, uint8_t *buf, size_t plen, size_t nfds)
{
	for (size_t off = 0, i = 0; off < plen; off += CDT_FRAME_PLAIN_MAX, i++) {
		uint8_t *f = buf + i * FRAME_MAX;
		size_t n = plen - off;
		uint8_t flags = 0;
		if (n > CDT_FRAME_PLAIN_MAX) {
			n = CDT_FRAME_PLAIN_MAX;
			flags = FRAME_F_MORE;
		}
		frame_seal(chan->tx, chan->tx_ctr++, FRAME_DATA, flags, i == 0 ? (uint8_t)nfds : 0,
			   f + FRAME_HEADER_SIZE, n, f);
	}
}

/* Send sealed frames directly while the queue is empty; queue the rest.
 * Before the first frame leaves nothing is committed, so a failure rolls
 * the counter back and the caller sees a clean error. */
static int chan_push(cdt_chan *chan, uint8_t *wire, size_t len, bool adopt, const int *fds,
		     size_t nfds, uint64_t ctr0)
{
	uint64_t ctr = ctr0;
	size_t off = 0;
	int r = 0;

	if (!chan->qhead) {
		while (off < len) {
			size_t flen = chan_frame_len(wire + off);
			r = chan_out(chan, ctr, wire + off, flen, fds, off == 0 ? nfds : 0);
			if (r == -EAGAIN)
				break;
			if (r < 0) {
				r = chan_fail(chan, r);
				goto out;
			}
			off += flen;
			ctr++;
		}
		r = 0;
		if (off == len)
			goto out;
	}
	r = chan_queue(chan, wire, off, len, adopt, fds, nfds, ctr);
	if (r == 0)
		adopt = false; /* the queue owns wire now */
	else if (off == 0)
		chan->tx_ctr = ctr0;
	else
		r = chan_fail(chan, r);
	chan_ring_poll_update(chan);
out:
	/* Only ciphertext is left in wire by now: no wipe needed. */
	if (adopt)
		free(wire);
	return r;
}

/* The BULK frames of msg, right behind its DATA frames and in the same
 * order, from where they lie in its store: sent, or queued behind the
 * rest.  The message is out already, so a failure ends the channel. */
static int chan_push_bulk(cdt_chan *chan, const cdt_msg *msg)
{
	for (size_t k = 0; k < msg->nbulkf; k++) {
		const uint8_t *p;
		size_t len;
		msg_bulkf_frame(msg, k, &p, &len);
		int r = chan_push(chan, (uint8_t *)p, len, false, NULL, 0, chan->tx_ctr++);
		if (r < 0)
			return chan_fail(chan, r);
	}
	return 0;
}

int cdt_chan_send(cdt_chan *chan, const cdt_msg *msg)
{
	uint8_t *buf = NULL;
	const int *fds = NULL;
	size_t nfds, prefix, plen, wlen, frames, bulk = 0;
	uint64_t ctr0;
	long len;
	int r = 0;

	if (!chan || !msg)
		return -EINVAL;
	if (chan->err)
		return chan->err;
	if (chan->tx_closed)
		return -CDT_E_CLOSED;
	if (chan->qhead) {
		/* Older frames first; a full socket is fine, they stay queued. */
		r = cdt_chan_flush(chan);
		if (r < 0 && r != -EAGAIN)
			return r;
		r = 0;
	}
	nfds = cdt_msg_nfds(msg);
	if (nfds > CDT_FDS_MAX)
		return -E2BIG;
	/* A message decoded on its own lacks its BULK frames: nothing to send. */
	if (msg->nbulkf && msg_bulkf_want(msg))
		return -EINVAL;
	/* Allocated on first use: a channel that only listens never needs it. */
	if (!chan->txbuf) {
		chan->txbuf = malloc(FRAME_MAX);
		if (!chan->txbuf)
			return -ENOMEM;
	}
	if (nfds > 0)
		fds = cdt_msg_fds(msg);
	prefix = FRAME_LEN_SIZE + nfds * FRAME_ID_SIZE;

	/* Most messages fit one frame: encode right behind its header (the
	 * encoder writes nothing when the room is too small). */
	buf = chan->txbuf;
	len = cdt_msg_encode(msg, buf + FRAME_HEADER_SIZE + prefix, CDT_FRAME_PLAIN_MAX - prefix);
	if (len < 0)
		return (int)len;
	if (len == 0 || (unsigned long)len > CDT_MSG_MAX)
		return -E2BIG;
	plen = prefix + (size_t)len;
	frames = (plen + CDT_FRAME_PLAIN_MAX - 1) / CDT_FRAME_PLAIN_MAX;
	wlen = chan_wire_size((size_t)len, nfds);
	/* At most CDT_ARGS_MAX frames of at most RING_REC_MAX bytes. */
	for (size_t k = 0; k < msg->nbulkf; k++) {
		const uint8_t *p;
		size_t n;
		msg_bulkf_frame(msg, k, &p, &n);
		bulk += n;
	}
	if (chan->queued > chan->qcap || wlen + bulk > chan->qcap - chan->queued) {
		r = -ENOBUFS;
		goto out;
	}
	if ((uint64_t)frames + msg->nbulkf > UINT64_MAX - chan->tx_ctr) {
		r = -EOVERFLOW;
		goto out;
	}

	if (frames > 1) {
		/* One buffer for all frames, sealed in place: the plaintext is
		 * encoded contiguously behind the first header, then each
		 * 64 KiB chunk moves out to its frame, last first, opening the
		 * room for the headers and tags in between. */
		buf = malloc(wlen);
		if (!buf) {
			r = -ENOMEM;
			buf = chan->txbuf;
			goto out;
		}
		long again = cdt_msg_encode(msg, buf + FRAME_HEADER_SIZE + prefix, (size_t)len);
		if (again != len) {
			r = again < 0 ? (int)again : -EIO;
			goto out;
		}
		for (size_t i = frames - 1; i > 0; i--) {
			size_t off = i * CDT_FRAME_PLAIN_MAX;
			size_t n =
				plen - off < CDT_FRAME_PLAIN_MAX ? plen - off : CDT_FRAME_PLAIN_MAX;
			memmove(buf + i * FRAME_MAX + FRAME_HEADER_SIZE,
				buf + FRAME_HEADER_SIZE + off, n);
		}
	}
	le32_put(buf + FRAME_HEADER_SIZE, (uint32_t)len);
	for (size_t i = 0; i < nfds; i++) {
		struct stat st;
		if (fstat(fds[i], &st) < 0) {
			r = -errno;
			goto out;
		}
		frame_id_write(&st, buf + FRAME_HEADER_SIZE + FRAME_LEN_SIZE + i * FRAME_ID_SIZE);
	}

	ctr0 = chan->tx_ctr;
	chan_seal(chan, buf, plen, nfds);
	r = chan_push(chan, buf, wlen, frames > 1, fds, nfds, ctr0);
	/* chan_push() took the allocation (queued or freed); txbuf stays. */
	buf = NULL;
	if (r == 0 && msg->nbulkf)
		r = chan_push_bulk(chan, msg);
	if (!chan->err)
		r = chan_announced(chan, r);
	chan->sent_last = r == 0 && !chan->qhead;
out:
	if (buf && buf != chan->txbuf) {
		/* Failed before sealing: plaintext is still in there. */
		sodium_memzero(buf, wlen);
		free(buf);
	}
	if (r < 0 && buf)
		/* So is what was encoded into txbuf (bulk keys included). */
		sodium_memzero(chan->txbuf, FRAME_MAX);
	return r;
}

int cdt_chan_close(cdt_chan *chan)
{
	uint8_t fin[FRAME_OVERHEAD] = {0};

	if (!chan)
		return -EINVAL;
	if (chan->err)
		return chan->err;
	if (!chan->tx_closed) {
		if (chan->tx_ctr == UINT64_MAX)
			return -EOVERFLOW;
		/* FIN ignores the queue cap: it is tiny and comes once. */
		uint64_t ctr0 = chan->tx_ctr;
		frame_seal(chan->tx, chan->tx_ctr++, FRAME_FIN, 0, 0, fin + FRAME_HEADER_SIZE, 0,
			   fin);
		int r = chan_push(chan, fin, sizeof(fin), false, NULL, 0, ctr0);
		if (r < 0)
			return r;
		chan->tx_closed = true;
	}
	return cdt_chan_flush(chan);
}
