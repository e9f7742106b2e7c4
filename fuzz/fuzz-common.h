/* SPDX-License-Identifier: MIT */
/* Shared set-up of the channel harnesses: fixed keys, a fresh socketpair
 * per input, raw datagram injection and an fd-leak check. */
#ifndef CONDUIT_FUZZ_COMMON_H
#define CONDUIT_FUZZ_COMMON_H

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aead.h"
#include "conduit/conduit.h"
#include "frame.h"
#include "keys.h"

struct fz {
	cdt_keys *keys[2];
	struct aead_key *b2l[2];
	int devnull;
	int probe; /* the lowest free fd when the input started */
};

static struct fz fz;

static void fz_init(void)
{
	uint8_t secret[KEYS_SECRET_SIZE];
	if (cdt_init() < 0)
		abort();
	for (int i = 0; i < KEYS_SECRET_SIZE; i++)
		secret[i] = (uint8_t)i;
	for (int s = 0; s < 2; s++) {
		/* AUTO: AES-256-GCM where the CPU has it. */
		enum cdt_suite suite =
			s ? keys_suite_resolve(CDT_SUITE_AUTO) : CDT_SUITE_XCHACHA20POLY1305;
		if (keys_from_secret(secret, suite, &fz.keys[s]) < 0 ||
		    aead_key_new(fz.keys[s], AEAD_ID_BROKER_TO_LAYER, &fz.b2l[s]) < 0)
			abort();
	}
	fz.devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fz.devnull < 0)
		abort();
}

/* Note the lowest free fd at the start of an input; a leaked fd would take
 * that slot by the end of it. */
static void fz_mark_fds(void)
{
	fz.probe = dup(fz.devnull);
	if (fz.probe < 0)
		abort();
	close(fz.probe);
}

static void fz_check_fds(void)
{
	int fd = dup(fz.devnull);
	if (fd != fz.probe)
		abort();
	close(fd);
}

/* Layer channel plus raw broker end; the suite follows bit 0 of opt. */
static int fz_pair(unsigned opt, cdt_chan **ret_chan, int *ret_raw)
{
	int sv[2];
	fz_mark_fds();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	/* Room for the largest datagram and then some. */
	int sz = 1 << 20;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (cdt_chan_new(sv[1], fz.keys[opt & 1], CDT_ROLE_LAYER, ret_chan) < 0)
		abort();
	*ret_raw = sv[0];
	return 0;
}

/* Send one datagram with nfds copies of /dev/null; false when the socket
 * refuses it (then the input simply ends). */
static bool fz_inject(int raw, const uint8_t *p, size_t len, size_t nfds)
{
	union {
		struct cmsghdr align;
		uint8_t buf[CMSG_SPACE(sizeof(int) * 8)];
	} cbuf;
	struct iovec iov = {.iov_base = (void *)p, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (nfds > 8)
		nfds = 8;
	if (nfds) {
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		for (size_t i = 0; i < nfds; i++)
			memcpy(CMSG_DATA(cm) + i * sizeof(int), &fz.devnull, sizeof(int));
	}
	return sendmsg(raw, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len;
}

/* Drain the channel; true while it is still usable. */
static bool fz_drain(cdt_chan *chan)
{
	for (;;) {
		cdt_msg *msg = NULL;
		int r = cdt_chan_recv(chan, &msg);
		if (r == 0) {
			cdt_msg_free(msg);
			continue;
		}
		if (r == -EAGAIN)
			return true;
		/* Errors stick: asking again must give the same answer. */
		if (cdt_chan_recv(chan, &msg) != r)
			abort();
		return false;
	}
}

#endif
