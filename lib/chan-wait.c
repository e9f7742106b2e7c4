/* SPDX-License-Identifier: MIT */
/* Blocking helpers over the non-blocking channel, for simple programs. */
#include <errno.h>

#include "chan.h"

static int64_t chan_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : chan_now_ms() + timeout_ms;
}

int cdt_chan_send_wait(cdt_chan *chan, const cdt_msg *msg, int timeout_ms)
{
	int64_t deadline = chan_deadline(timeout_ms);
	int r;

	if (!chan || !msg)
		return -EINVAL;
	/* A full queue drains as the peer reads; then the message fits. */
	while ((r = cdt_chan_send(chan, msg)) == -ENOBUFS && chan->qhead) {
		r = chan_wait(chan, true, deadline);
		if (r < 0)
			return r;
		r = cdt_chan_flush(chan);
		if (r < 0 && r != -EAGAIN)
			return r;
	}
	if (r < 0)
		return r;
	while ((r = cdt_chan_flush(chan)) == -EAGAIN) {
		r = chan_wait(chan, true, deadline);
		if (r < 0)
			return r;
	}
	return r;
}

int cdt_chan_recv_wait(cdt_chan *chan, cdt_msg **ret_msg, int timeout_ms)
{
	int64_t deadline = chan_deadline(timeout_ms);
	int r;

	if (!chan || !ret_msg)
		return -EINVAL;
	/* Nothing to send and no deadline: one blocking recvmsg() per frame
	 * instead of recvmsg(), poll(), recvmsg().  On an O_NONBLOCK socket
	 * this returns -EAGAIN and the poll loop below takes over. */
	if (timeout_ms < 0 && !chan->qhead) {
		r = chan_recv(chan, ret_msg, true);
		if (r != -EAGAIN)
			return r;
	}
	/* Right after a request the answer is rarely there yet (a peer on
	 * another CPU has not even woken up): wait first, and save the
	 * recvmsg() that would only say EAGAIN. */
	if (chan->sent_last && !chan->qhead && !chan->reasm) {
		r = chan_wait(chan, false, deadline);
		if (r < 0)
			return r;
	}
	while ((r = cdt_chan_recv(chan, ret_msg)) == -EAGAIN) {
		/* Keep our own frames moving so two blocking peers cannot
		 * wait on each other's full sockets. */
		if (chan->qhead) {
			r = cdt_chan_flush(chan);
			if (r < 0 && r != -EAGAIN)
				return r;
		}
		r = chan_wait(chan, chan->qhead != NULL, deadline);
		if (r < 0)
			return r;
	}
	return r;
}
