/* SPDX-License-Identifier: MIT */
/*
 * Secure channel over shared-memory rings (docs/protocol.md section 3.1):
 * the broker's offer, the layer's acceptance, and the wake-up plumbing.
 *
 * The rings only move frames.  Every frame is sealed, counted and opened
 * exactly as over the socket, and is copied out of shared memory before it
 * is parsed, so the ring changes how frames travel, not what is trusted.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chan.h"

/* Plaintext of an offer after the fd identities: u32 data size per
 * direction, u32 largest record; this version accepts only its own. */
#define RING_OFFER_GEOM 8
#define RING_OFFER_FDS	3 /* memfd, broker->layer eventfd, layer->broker eventfd */

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void chan_ring_free(struct chan_ring *ring)
{
	if (!ring)
		return;
	if (ring->shm)
		munmap(ring->shm, RING_SHM_SIZE);
	close_fd(&ring->kick_in);
	close_fd(&ring->kick_out);
	close_fd(&ring->pollfd);
	free(ring);
}

static struct chan_ring *chan_ring_alloc(void)
{
	struct chan_ring *ring = calloc(1, sizeof(*ring));
	if (ring) {
		ring->kick_in = -1;
		ring->kick_out = -1;
		ring->pollfd = -1;
	}
	return ring;
}

/* Broker->layer is direction 0, layer->broker direction 1. */
static void chan_ring_attach(cdt_chan *chan, struct chan_ring *ring, uint8_t *shm)
{
	bool broker = chan->role == CDT_ROLE_BROKER;
	ring->shm = shm;
	ring_init(&ring->tx, shm, broker ? 0 : 1);
	ring_init(&ring->rx, shm, broker ? 1 : 0);
}

int chan_ring_offer(cdt_chan *chan)
{
	uint8_t plain[RING_OFFER_FDS * FRAME_ID_SIZE + RING_OFFER_GEOM];
	uint8_t wire[sizeof(plain) + FRAME_OVERHEAD];
	int fds[RING_OFFER_FDS] = {-1, -1, -1};
	struct chan_ring *ring = NULL;
	uint8_t *shm = MAP_FAILED;
	int r;

	if (!chan || chan->role != CDT_ROLE_BROKER)
		return -EINVAL;
	if (chan->err)
		return chan->err;
	if (chan->ring || chan->qhead || chan->tx_closed)
		return -EBUSY;
	ring = chan_ring_alloc();
	if (!ring)
		return -ENOMEM;
	/* Sealed against shrinking: the layer cannot make our accesses fault. */
	fds[0] = memfd_create("conduit-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fds[0] < 0 || ftruncate(fds[0], RING_SHM_SIZE) < 0 ||
	    fcntl(fds[0], F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		r = -errno;
		goto out;
	}
	shm = mmap(NULL, RING_SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	if (shm == MAP_FAILED) {
		r = -errno;
		goto out;
	}
	/* Broker to layer: a pipe, one byte per frame.  Its write end is an
	 * open file of our own: the layer holds only the read end, so it
	 * can neither clear our O_NONBLOCK nor fill the pipe for us, and a
	 * pipe it does not drain is backpressure (EAGAIN), never a block.
	 * Layer to broker: an eventfd in semaphore mode; each read takes one
	 * announcement, so it stays readable while frames wait and a
	 * level-triggered poller that handles one frame per turn is woken
	 * for the next.  The layer shares that open file, so the broker's
	 * loop never reads it (chan_ring_edge), and a receive without that
	 * loop reads it with RWF_NOWAIT (chan-recv.c). */
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		r = -errno;
		goto out;
	}
	fds[1] = p[0];
	ring->kick_out = p[1];
	if (fcntl(ring->kick_out, F_SETFL, O_NONBLOCK) < 0) {
		r = -errno;
		goto out;
	}
	fds[2] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
	if (fds[2] < 0) {
		r = -errno;
		goto out;
	}
	ring->kick_in = fcntl(fds[2], F_DUPFD_CLOEXEC, 3);
	if (ring->kick_in < 0) {
		r = -errno;
		goto out;
	}
	for (size_t i = 0; i < RING_OFFER_FDS; i++) {
		struct stat st;
		if (fstat(fds[i], &st) < 0) {
			r = -errno;
			goto out;
		}
		frame_id_write(&st, plain + i * FRAME_ID_SIZE);
	}
	le32_put(plain + RING_OFFER_FDS * FRAME_ID_SIZE, RING_DATA_SIZE);
	le32_put(plain + RING_OFFER_FDS * FRAME_ID_SIZE + 4, RING_REC_MAX);
	if (chan->tx_ctr == UINT64_MAX) {
		r = -EOVERFLOW;
		goto out;
	}
	frame_seal(chan->tx, chan->tx_ctr, FRAME_RING, 0, RING_OFFER_FDS, plain, sizeof(plain),
		   wire);
	/* Nothing is queued, so the socket has room for it unless the
	 * layer is gone. */
	r = chan_sendmsg(chan, wire, sizeof(wire), fds, RING_OFFER_FDS);
	if (r < 0)
		goto out;
	chan->tx_ctr++;
	chan_ring_attach(chan, ring, shm);
	shm = MAP_FAILED;
	ring->tx_on = true;
	chan->ring = ring;
	ring = NULL;
out:
	if (shm != MAP_FAILED)
		munmap(shm, RING_SHM_SIZE);
	for (size_t i = 0; i < RING_OFFER_FDS; i++)
		close_fd(&fds[i]);
	chan_ring_free(ring);
	return r;
}

/* An fd of the offer is what it must be: the memfd sealed at the ring's
 * size, the read end of a pipe, and an eventfd. */
static int chan_ring_check_fd(int fd, size_t i)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -CDT_E_FD;
	if (i == 0) {
		int seals = fcntl(fd, F_GET_SEALS);
		int flags = fcntl(fd, F_GETFL);
		if (!S_ISREG(st.st_mode) || st.st_size != RING_SHM_SIZE || seals < 0 ||
		    (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
			return -CDT_E_FD;
		/* We write into it: a write seal or a read-only fd would fail
		 * the mapping with an errno that reads as a fault of ours. */
		if ((seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) || flags < 0 ||
		    (flags & O_ACCMODE) != O_RDWR)
			return -CDT_E_FD;
		return 0;
	}
	/* Broker to layer: the read end of a pipe. */
	if (i == 1) {
		int flags = fcntl(fd, F_GETFL);
		if (!S_ISFIFO(st.st_mode) || flags < 0 || (flags & O_ACCMODE) != O_RDONLY)
			return -CDT_E_FD;
		return fcntl(fd, F_SETFL, O_NONBLOCK) < 0 ? -CDT_E_FD : 0;
	}
	/* Layer to broker: an eventfd, an anonymous inode: no type bits (or,
	 * on kernels that give them one, an empty regular file), never a
	 * socket, a pipe or a device. */
	if ((st.st_mode & S_IFMT) != 0 && !(S_ISREG(st.st_mode) && st.st_size == 0))
		return -CDT_E_FD;
	return fcntl(fd, F_SETFL, O_NONBLOCK) < 0 ? -CDT_E_FD : 0;
}

/* The layer takes an offer. */
static int chan_ring_accept(cdt_chan *chan, const uint8_t *plain, size_t plen, int *fds,
			    size_t nfds)
{
	uint8_t ack[FRAME_OVERHEAD];
	struct chan_ring *ring = NULL;
	uint8_t *shm = MAP_FAILED;
	const uint8_t *geom = plain + RING_OFFER_FDS * FRAME_ID_SIZE;
	int r;

	if (chan->ring || nfds != RING_OFFER_FDS ||
	    plen != RING_OFFER_FDS * FRAME_ID_SIZE + RING_OFFER_GEOM)
		return -CDT_E_PROTO;
	if (le32_get(geom) != RING_DATA_SIZE || le32_get(geom + 4) != RING_REC_MAX)
		return -CDT_E_VERSION;
	for (size_t i = 0; i < RING_OFFER_FDS; i++) {
		uint8_t id[FRAME_ID_SIZE];
		struct stat st;
		if (fstat(fds[i], &st) < 0)
			return -CDT_E_FD;
		frame_id_write(&st, id);
		if (memcmp(id, plain + i * FRAME_ID_SIZE, FRAME_ID_SIZE) != 0)
			return -CDT_E_FD;
		r = chan_ring_check_fd(fds[i], i);
		if (r < 0)
			return r;
	}
	/* Our frames still queued for the socket would be overtaken by the
	 * ring; the broker offers before anything can be queued here. */
	if (chan->qhead || chan->tx_closed || chan->tx_ctr == UINT64_MAX)
		return -CDT_E_PROTO;
	ring = chan_ring_alloc();
	if (!ring)
		return -ENOMEM;
	shm = mmap(NULL, RING_SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	if (shm == MAP_FAILED) {
		r = -errno;
		goto out;
	}
	/* The acknowledgement is the last frame over the socket: the broker
	 * reads the socket up to it, and the rings after it. */
	frame_seal(chan->tx, chan->tx_ctr, FRAME_RING, 0, 0, NULL, 0, ack);
	r = chan_sendmsg(chan, ack, sizeof(ack), NULL, 0);
	if (r < 0)
		goto out;
	chan->tx_ctr++;
	ring->kick_in = fds[1];
	ring->kick_out = fds[2];
	fds[1] = fds[2] = -1;
	chan_ring_attach(chan, ring, shm);
	shm = MAP_FAILED;
	ring->tx_on = true;
	ring->rx_on = true;
	chan->ring = ring;
	ring = NULL;
out:
	if (shm != MAP_FAILED)
		munmap(shm, RING_SHM_SIZE);
	chan_ring_free(ring);
	return r;
}

int chan_ring_frame(cdt_chan *chan, const uint8_t *plain, size_t plen, int *fds, size_t nfds)
{
	int r;

	if (chan->role == CDT_ROLE_LAYER) {
		r = chan_ring_accept(chan, plain, plen, fds, nfds);
	} else {
		/* The broker hears only the acknowledgement of its offer. */
		r = -CDT_E_PROTO;
		if (chan->ring && !chan->ring->rx_on && nfds == 0 && plen == 0) {
			chan->ring->rx_on = true;
			r = 0;
		}
	}
	for (size_t i = 0; i < nfds; i++)
		close_fd(&fds[i]);
	return r;
}

int chan_ring_edge(cdt_chan *chan)
{
	if (!chan || chan->role != CDT_ROLE_BROKER || !chan->ring)
		return -EINVAL;
	/* Announcements taken already would be lost; none are before the
	 * first frame after the acknowledgement. */
	if (chan->ring->credit)
		return -EBUSY;
	chan->ring->rx_edge = true;
	return 0;
}

bool chan_ring_pending(cdt_chan *chan)
{
	uint64_t ctr;
	size_t len;

	/* Before the acknowledgement the ring is not read yet: whatever a
	 * layer wrote into it there is nothing to take (and a broker that
	 * took it for work would never sleep). */
	if (!chan || !chan->ring || !chan->ring->rx_edge || !chan->ring->rx_on || chan->err)
		return false;
	/* A record, or a head the next receive will refuse: either way that
	 * receive is due. */
	return ring_peek(&chan->ring->rx, &ctr, &len) != 0;
}

int chan_ring_hup(cdt_chan *chan)
{
	uint8_t b;
	ssize_t n;

	do
		n = recv(chan->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n == 0 || (n < 0 && errno == ECONNRESET))
		return -CDT_E_EOF;
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
		return -errno;
	if (n > 0) {
		/* A datagram with no announcement: a sender kicks after its
		 * sendmsg() and before it can close, so once the peer's end
		 * is shut this one will never be announced.  Saying EAGAIN
		 * would leave the hung-up socket waking its poller forever. */
		struct pollfd pfd = {.fd = chan->fd, .events = POLLRDHUP};
		int k;
		do
			k = poll(&pfd, 1, 0);
		while (k < 0 && errno == EINTR);
		if (k > 0 && (pfd.revents & (POLLHUP | POLLRDHUP)))
			return -CDT_E_EOF;
	}
	/* Nothing, or a frame whose announcement is on its way. */
	return -EAGAIN;
}

int chan_rx_fd(const cdt_chan *chan)
{
	return chan->ring && chan->ring->rx_on ? chan->ring->kick_in : chan->fd;
}

int chan_tx_fd(const cdt_chan *chan)
{
	return chan->fd;
}

void chan_ring_poll_update(cdt_chan *chan)
{
	struct chan_ring *ring = chan->ring;
	bool want = chan->qhead != NULL;

	if (!ring || ring->pollfd < 0 || ring->poll_out == want)
		return;
	struct epoll_event ev = {.events = want ? EPOLLOUT : 0};
	/* On failure the set keeps waking for input and hang-ups; the
	 * queue then moves with the next frame the peer sends. */
	if (epoll_ctl(ring->pollfd, EPOLL_CTL_MOD, chan->fd, &ev) == 0)
		ring->poll_out = want;
}

int cdt_chan_fd(const cdt_chan *chan)
{
	struct chan_ring *ring;

	if (!chan)
		return -EINVAL;
	ring = chan->ring;
	if (!ring || !ring->rx_on)
		return chan->fd;
	if (ring->pollfd < 0) {
		/* One fd for event loops: readable when a frame is announced,
		 * when the socket has room for a queue, or on a hang-up. */
		struct epoll_event in = {.events = EPOLLIN};
		struct epoll_event out = {.events = chan->qhead ? EPOLLOUT : 0};
		int efd = epoll_create1(EPOLL_CLOEXEC);
		if (efd < 0)
			return -errno;
		if (epoll_ctl(efd, EPOLL_CTL_ADD, ring->kick_in, &in) < 0 ||
		    epoll_ctl(efd, EPOLL_CTL_ADD, chan->fd, &out) < 0) {
			int r = -errno;
			close(efd);
			return r;
		}
		ring->pollfd = efd;
		ring->poll_out = chan->qhead != NULL;
	}
	return ring->pollfd;
}

int64_t chan_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int chan_wait(cdt_chan *chan, bool want_out, int64_t deadline)
{
	struct pollfd pfd[2] = {
		{.fd = chan->fd, .events = (short)(POLLIN | (want_out ? POLLOUT : 0))},
		{.fd = -1},
	};
	nfds_t n = 1;

	if (chan->ring && chan->ring->rx_on) {
		/* Announcements on the eventfd; room and hang-ups on the socket. */
		pfd[0].fd = chan->ring->kick_in;
		pfd[0].events = POLLIN;
		pfd[1].fd = chan->fd;
		pfd[1].events = want_out ? POLLOUT : 0;
		/* A layer's pipe says the broker hung up on its own (its write
		 * end closes with the socket): without room to wait for, one
		 * fd is enough. */
		n = want_out || chan->role != CDT_ROLE_LAYER ? 2 : 1;
	}
	for (;;) {
		int timeout = -1;
		if (deadline >= 0) {
			int64_t left = deadline - chan_now_ms();
			if (left <= 0)
				return -ETIMEDOUT;
			timeout = left > 0x7fffffff ? 0x7fffffff : (int)left;
		}
		int k = poll(pfd, n, timeout);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return -ETIMEDOUT;
		/* POLLHUP/POLLERR: the next send or receive reports it; over
		 * the ring, only the socket or a layer's pipe can say so,
		 * hence the 1. */
		if (chan->ring && chan->ring->rx_on)
			return (pfd[n - 1].revents & (POLLHUP | POLLERR)) ? 1 : 0;
		return 0;
	}
}
