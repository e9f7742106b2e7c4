/* SPDX-License-Identifier: MIT */
/*
 * Secure channel, receive side (docs/protocol.md section 3): every check
 * happens in the documented order, and any failure closes every fd that
 * came with the frame and leaves the channel unusable.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sodium.h>

#include "chan.h"
#include "msg.h"

static void chan_dgram_close(struct chan_dgram *d)
{
	for (size_t i = 0; i < d->nfds; i++)
		close(d->fds[i]);
	d->nfds = 0;
}

static void chan_reasm_free(cdt_chan *chan)
{
	if (chan->reasm) {
		sodium_memzero(chan->reasm, chan->reasm_cap);
		free(chan->reasm);
	}
	chan->reasm = NULL;
	chan->reasm_len = 0;
	chan->reasm_off = 0;
	chan->reasm_cap = 0;
}

/* Make room for need bytes (need <= reasm_len): double, at most msg_len.
 * Not realloc(): the old block holds plaintext and is wiped first. */
static int chan_reasm_grow(cdt_chan *chan, size_t need)
{
	size_t cap = chan->reasm_cap;
	if (need <= cap)
		return 0;
	cap = cap > chan->reasm_len / 2 ? chan->reasm_len : cap * 2;
	if (cap < need)
		cap = need;
	uint8_t *p = malloc(cap);
	if (!p)
		return -ENOMEM;
	memcpy(p, chan->reasm, chan->reasm_off);
	sodium_memzero(chan->reasm, chan->reasm_cap);
	free(chan->reasm);
	chan->reasm = p;
	chan->reasm_cap = cap;
	return 0;
}

static void chan_rx_reset(cdt_chan *chan)
{
	for (size_t i = 0; i < chan->rx_nfds; i++)
		close(chan->rx_fds[i]);
	chan->rx_nfds = 0;
	chan_reasm_free(chan);
	cdt_msg_free(chan->rx_bulk);
	chan->rx_bulk = NULL;
}

/* Read one datagram into rxbuf and collect its fds.  Control-message
 * problems are reported after the fds are collected, so the caller can
 * close them all. */
static int chan_sock_read(cdt_chan *chan, struct chan_dgram *d, bool block)
{
	union {
		struct cmsghdr align;
		uint8_t buf[CHAN_CMSG_SPACE];
	} cbuf;
	struct iovec iov = {.iov_base = chan->rxbuf, .iov_len = FRAME_MAX};
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf.buf,
		.msg_controllen = sizeof(cbuf.buf),
	};
	bool foreign = false;
	ssize_t n;

	d->nfds = 0;
	do
		n = recvmsg(chan->fd, &mh, MSG_CMSG_CLOEXEC | (block ? 0 : MSG_DONTWAIT));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -EAGAIN;
		return errno == ECONNRESET ? -CDT_E_EOF : -errno;
	}
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
			foreign = true;
			continue;
		}
		size_t cnt = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < cnt; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			/* The buffer bounds cnt; close anyway should that change. */
			if (d->nfds < CHAN_RX_FDS_MAX)
				d->fds[d->nfds++] = fd;
			else
				close(fd);
		}
	}
	d->len = (size_t)n;
	if (mh.msg_flags & MSG_TRUNC)
		return -CDT_E_TOO_BIG;
	if ((mh.msg_flags & MSG_CTRUNC) || foreign)
		return -CDT_E_FD;
	/* 0 bytes: the peer closed (an empty record is no frame either). */
	if (n == 0)
		return -CDT_E_EOF;
	return 0;
}

/* Take one announcement: a layer's sleep waits for one, every other take
 * returns at once.  A layer
 * reads one byte of its pipe from the broker (end of file: the broker is
 * gone).  The broker reads the layer's eventfd, an open file the layer
 * shares and whose O_NONBLOCK it may clear: RWF_NOWAIT does not depend on
 * that flag.  Kernels before 5.12 refuse it for eventfds, and the flag set
 * at creation is all there is then.  Layers keep read(): their sandbox
 * allows nothing else. */
static ssize_t chan_kick_take(cdt_chan *chan, uint64_t *ret_n, bool sleep)
{
	struct chan_ring *ring = chan->ring;
	int fd = ring->kick_in;
	ssize_t k = -1;

	if (chan->role == CDT_ROLE_LAYER) {
		/* From the broker: one byte per frame through a pipe.  The
		 * read end is ours alone, so its O_NONBLOCK follows the last
		 * kind of read: a layer that keeps waiting in read() (one
		 * system call per wait instead of poll() and read()) or keeps
		 * polling pays no fcntl() per frame.  The BULK frames a
		 * message waits for were announced with it: their
		 * announcements are taken with one read, and the frames within
		 * this same receive (chan_recv() goes on while a message is
		 * incomplete), so no credit outlives it. */
		uint8_t b[CDT_ARGS_MAX];
		size_t want = chan->rx_bulk ? msg_bulkf_missing(chan->rx_bulk) : 1;
		if (ring->kick_block != sleep) {
			if (fcntl(fd, F_SETFL, sleep ? 0 : O_NONBLOCK) < 0)
				return -1;
			ring->kick_block = sleep;
		}
		k = read(fd, b, want);
		if (k > 0) {
			*ret_n = (uint64_t)k;
			k = sizeof(*ret_n);
		} else if (k == 0) {
			/* The broker's end is closed: nothing more can come. */
			errno = EPIPE;
			k = -1;
		}
		return k;
	}
	struct iovec iov = {.iov_base = ret_n, .iov_len = sizeof(*ret_n)};
	k = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
	if (k < 0 && errno == EOPNOTSUPP)
		k = read(fd, ret_n, sizeof(*ret_n));
	return k;
}

/* Copy the ring's next record (len bytes, the expected counter) out: a
 * BULK frame the waiting message wants goes straight to its store
 * (chan_bulk() checks it there), anything else to rxbuf. */
static int chan_ring_take(cdt_chan *chan, struct chan_dgram *d, size_t len)
{
	if (chan->rx_bulk && len == msg_bulkf_want(chan->rx_bulk)) {
		d->buf = msg_bulkf_slot(chan->rx_bulk, len);
		if (!d->buf)
			return -ENOMEM;
	}
	ring_take(&chan->ring->rx, d->buf);
	d->len = len;
	return 0;
}

/* The broker's loop (chan_ring_edge): the next frame is the ring's next
 * record if it carries the expected counter; otherwise it went over the
 * socket, where it must be if the ring already holds a later one.  An
 * empty ring and an empty socket are "nothing yet", whatever the layer
 * announced: announcements are never read here, so nothing a layer does to
 * its eventfd (flags, counter) reaches this side. */
static int chan_edge_read(cdt_chan *chan, struct chan_dgram *d)
{
	uint64_t ctr;
	size_t len;
	int r = ring_peek(&chan->ring->rx, &ctr, &len);

	if (r < 0)
		return r;
	if (r == 1 && ctr == chan->rx_ctr)
		return chan_ring_take(chan, d, len);
	int s = chan_sock_read(chan, d, false);
	return s == -EAGAIN && r == 1 ? -CDT_E_PROTO : s;
}

/* The next announced frame, from the ring or, when the ring's next record
 * is a later frame (or there is none), from the socket. */
static int chan_ring_read(cdt_chan *chan, struct chan_dgram *d, bool block)
{
	struct chan_ring *ring = chan->ring;
	uint64_t ctr;
	size_t len;
	int r;

	d->nfds = 0;
	if (ring->rx_edge)
		return chan_edge_read(chan, d);
	while (ring->credit == 0) {
		/* A layer that may block sleeps in read() on its pipe: every
		 * frame is announced there, and the pipe reads as end of file
		 * once the broker is gone, so nothing else can wake it. */
		bool sleep = block && chan->role == CDT_ROLE_LAYER;
		uint64_t n;
		ssize_t k;

		if (chan->wait_first && !sleep) {
			chan->wait_first = false;
			r = chan_wait(chan, false, -1);
			if (r < 0)
				return r;
		}
		k = chan_kick_take(chan, &n, sleep);
		if (k == sizeof(n)) {
			ring->credit = n;
			break;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EPIPE)
			return -CDT_E_EOF;
		if (k >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return k < 0 ? -errno : -EIO;
		/* Nothing announced: a hang-up is the only news left.  A
		 * blocking wait hears of one from poll(); a receive loop that
		 * already took a message this turn (chan_recv_more) leaves
		 * the check to its next turn. */
		if (!block)
			return chan->rx_more ? -EAGAIN : chan_ring_hup(chan);
		r = chan_wait(chan, false, -1);
		if (r < 0)
			return r;
		if (r > 0) {
			r = chan_ring_hup(chan);
			if (r != -EAGAIN)
				return r;
		}
	}
	r = ring_peek(&ring->rx, &ctr, &len);
	if (r < 0)
		return r;
	ring->credit--;
	if (r == 1 && ctr == chan->rx_ctr)
		return chan_ring_take(chan, d, len);
	/* Announced after it was sent: it must be there already. */
	r = chan_sock_read(chan, d, false);
	return r == -EAGAIN ? -CDT_E_PROTO : r;
}

static int chan_read(cdt_chan *chan, struct chan_dgram *d, bool block)
{
	if (chan->ring && chan->ring->rx_on)
		return chan_ring_read(chan, d, block);
	return chan_sock_read(chan, d, block);
}

/* Compare each received fd with the identity the sender authenticated. */
static int chan_check_fds(const cdt_chan *chan)
{
	for (size_t i = 0; i < chan->rx_nfds; i++) {
		uint8_t id[FRAME_ID_SIZE];
		struct stat st;
		if (fstat(chan->rx_fds[i], &st) < 0)
			return -CDT_E_FD;
		frame_id_write(&st, id);
		if (memcmp(id, chan->rx_ids + i * FRAME_ID_SIZE, FRAME_ID_SIZE) != 0)
			return -CDT_E_FD;
	}
	return 0;
}

static int chan_deliver(cdt_chan *chan, const uint8_t *buf, size_t len, cdt_msg **ret_msg)
{
	int r = chan_check_fds(chan);
	if (r < 0)
		return r;
	/* cdt_msg_decode() owns the fds from here on, also on failure. */
	size_t nfds = chan->rx_nfds;
	cdt_msg *msg;
	chan->rx_nfds = 0;
	r = cdt_msg_decode(buf, len, chan->rx_fds, nfds, &msg);
	if (r < 0)
		return r;
	if (msg->nbulkf) {
		/* Opened, its values must still make a message: a sender
		 * that hangs more on it would make every forwarded copy
		 * too big for the receiver's queue. */
		if (msg_bulkf_resolved_size(msg) > CDT_MSG_MAX) {
			cdt_msg_free(msg);
			return -CDT_E_TOO_BIG;
		}
		/* Its BULK frames come next. */
		chan->rx_bulk = msg;
		return -EAGAIN;
	}
	*ret_msg = msg;
	return 0;
}

/* A BULK frame: only right behind a message that announced one, exactly
 * as long as the value announced, never opened here (the value is sealed
 * end to end; docs/protocol.md section 4.2).  It takes a counter value
 * like every frame, which keeps the ring and the socket in order. */
static int chan_bulk(cdt_chan *chan, const struct frame_header *h, const struct chan_dgram *d,
		     cdt_msg **ret_msg)
{
	int r;

	if (!chan->rx_bulk || h->type != FRAME_BULK || h->flags || h->nfds ||
	    d->len != msg_bulkf_want(chan->rx_bulk))
		return -CDT_E_PROTO;
	if (d->buf == chan->rxbuf) {
		r = msg_bulkf_attach(chan->rx_bulk, chan->rxbuf, d->len);
		if (r < 0)
			return r;
	} else {
		msg_bulkf_commit(chan->rx_bulk, d->len);
	}
	chan->rx_ctr++;
	if (msg_bulkf_want(chan->rx_bulk))
		return -EAGAIN;
	*ret_msg = chan->rx_bulk;
	chan->rx_bulk = NULL;
	return 0;
}

/* The first DATA frame of a message, already opened in rxbuf. */
static int chan_first(cdt_chan *chan, const struct frame_header *h, struct chan_dgram *d,
		      cdt_msg **ret_msg)
{
	const uint8_t *plain = chan->rxbuf + FRAME_HEADER_SIZE;
	size_t plen = h->clen - AEAD_TAG_SIZE;
	size_t prefix = FRAME_LEN_SIZE + (size_t)h->nfds * FRAME_ID_SIZE;
	size_t body, msg_len;

	if (plen < prefix)
		return -CDT_E_TRUNCATED;
	msg_len = le32_get(plain);
	if (msg_len == 0)
		return -CDT_E_PROTO;
	if (msg_len > CDT_MSG_MAX)
		return -CDT_E_TOO_BIG;
	body = plen - prefix;
	if (h->flags & FRAME_F_MORE) {
		/* Only full frames may be followed: one framing per message. */
		if (plen != CDT_FRAME_PLAIN_MAX || body >= msg_len)
			return -CDT_E_PROTO;
	} else if (body != msg_len) {
		return body < msg_len ? -CDT_E_TRUNCATED : -CDT_E_TRAILING;
	}
	/* The frame is authentic: its fds now belong to the message. */
	memcpy(chan->rx_fds, d->fds, d->nfds * sizeof(int));
	chan->rx_nfds = d->nfds;
	d->nfds = 0;
	memcpy(chan->rx_ids, plain + FRAME_LEN_SIZE, (size_t)h->nfds * FRAME_ID_SIZE);
	if (!(h->flags & FRAME_F_MORE))
		return chan_deliver(chan, plain + prefix, body, ret_msg);
	/* msg_len was bounded above; the buffer starts small and grows with
	 * the frames that actually arrive. */
	size_t cap = msg_len < CHAN_REASM_FIRST ? msg_len : CHAN_REASM_FIRST;
	chan->reasm = malloc(cap);
	if (!chan->reasm)
		return -ENOMEM;
	chan->reasm_len = msg_len;
	chan->reasm_cap = cap;
	memcpy(chan->reasm, plain + prefix, body);
	chan->reasm_off = body;
	return -EAGAIN;
}

/* A continuation frame: checked against the remaining length, then opened
 * straight into the reassembly buffer. */
static int chan_next(cdt_chan *chan, const struct frame_header *h, const struct chan_dgram *d,
		     cdt_msg **ret_msg)
{
	size_t plen = h->clen - AEAD_TAG_SIZE;
	size_t left = chan->reasm_len - chan->reasm_off;
	int r;

	if (h->flags & FRAME_F_MORE) {
		if (plen != CDT_FRAME_PLAIN_MAX || plen >= left)
			return -CDT_E_PROTO;
	} else if (plen != left) {
		return plen < left ? -CDT_E_TRUNCATED : -CDT_E_TRAILING;
	}
	r = chan_reasm_grow(chan, chan->reasm_off + plen);
	if (r < 0)
		return r;
	r = frame_open(chan->rx, chan->rx_ctr, chan->rxbuf, d->len, chan->reasm + chan->reasm_off);
	if (r < 0)
		return r;
	chan->rx_ctr++;
	chan->reasm_off += plen;
	if (h->flags & FRAME_F_MORE)
		return -EAGAIN;
	r = chan_deliver(chan, chan->reasm, chan->reasm_len, ret_msg);
	chan_reasm_free(chan);
	return r;
}

/* Take one datagram: 0 with *ret_msg when a message completed, -EAGAIN
 * when the frame was consumed but the message is not complete (or nothing
 * was there: *more is false then), any other error is fatal. */
static int chan_step(cdt_chan *chan, cdt_msg **ret_msg, bool *more, bool block)
{
	struct chan_dgram d = {.buf = chan->rxbuf, .len = 0};
	struct frame_header h;
	int r;

	*more = false;
	r = chan_read(chan, &d, block);
	if (r == -EAGAIN)
		return r;
	if (r < 0)
		goto out;
	r = frame_header_parse(d.buf, d.len, &h);
	if (r < 0)
		goto out;
	if (d.nfds != h.nfds) {
		r = -CDT_E_FD;
		goto out;
	}
	/* A message's frames are contiguous: no FIN and no fds inside one. */
	if (chan->reasm && (h.type != FRAME_DATA || h.nfds)) {
		r = -CDT_E_PROTO;
		goto out;
	}
	if (chan->rx_ctr == UINT64_MAX) {
		r = -CDT_E_PROTO;
		goto out;
	}
	if (chan->rx_bulk || h.type == FRAME_BULK) {
		r = chan_bulk(chan, &h, &d, ret_msg);
		*more = r == -EAGAIN;
		goto out;
	}
	if (chan->reasm) {
		r = chan_next(chan, &h, &d, ret_msg);
		*more = r == -EAGAIN;
		goto out;
	}
	r = frame_open(chan->rx, chan->rx_ctr, chan->rxbuf, d.len, chan->rxbuf + FRAME_HEADER_SIZE);
	if (r < 0)
		goto out;
	chan->rx_ctr++;
	if (h.type == FRAME_FIN) {
		chan->rx_fin = true;
		r = -CDT_E_CLOSED;
		goto out;
	}
	if (h.type == FRAME_RING) {
		/* Only over the socket: a ring cannot offer itself. */
		if (chan->ring && chan->ring->rx_on) {
			r = -CDT_E_PROTO;
			goto out;
		}
		r = chan_ring_frame(chan, chan->rxbuf + FRAME_HEADER_SIZE, h.clen - AEAD_TAG_SIZE,
				    d.fds, d.nfds);
		d.nfds = 0;
		*more = r == 0;
		if (r == 0)
			r = -EAGAIN;
		goto out;
	}
	r = chan_first(chan, &h, &d, ret_msg);
	*more = r == -EAGAIN;
out:
	chan_dgram_close(&d);
	return r;
}

int cdt_chan_recv(cdt_chan *chan, cdt_msg **ret_msg)
{
	return chan_recv(chan, ret_msg, false);
}

int chan_recv_more(cdt_chan *chan, cdt_msg **ret_msg)
{
	int r;

	if (!chan)
		return -EINVAL;
	chan->rx_more = true;
	r = chan_recv(chan, ret_msg, false);
	chan->rx_more = false;
	return r;
}

int chan_recv(cdt_chan *chan, cdt_msg **ret_msg, bool block)
{
	bool more;
	int r;

	if (!chan || !ret_msg)
		return -EINVAL;
	if (chan->err)
		return chan->err;
	if (chan->rx_fin)
		return -CDT_E_CLOSED;
	/* Blocking right after a request: over the ring, wait before the
	 * read that would only say EAGAIN. */
	chan->wait_first = block && chan->sent_last;
	chan->sent_last = false;
	if (!chan->rxbuf) {
		chan->rxbuf = malloc(FRAME_MAX);
		if (!chan->rxbuf)
			return -ENOMEM;
	}
	do
		r = chan_step(chan, ret_msg, &more, block);
	while (r == -EAGAIN && more);
	if (r == -EAGAIN)
		return r;
	if (r == -CDT_E_CLOSED && chan->rx_fin)
		return r;
	if (r < 0) {
		chan_rx_reset(chan);
		return chan_fail(chan, r);
	}
	return 0;
}
