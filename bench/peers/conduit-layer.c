/* SPDX-License-Identifier: MIT */
/*
 * conduit-bench-peers-layer: the layers of the benchmark's policy, one
 * program whose role is its one argument (from the policy's exec line).
 *
 *  - "echo" provides `bench.echo` and answers each call with its `payload`
 *    bytes argument; it writes "BENCH ready" on stderr (which the broker logs
 *    under the layer's name) once it serves.
 *  - "caller" (layers c0 .. c15) are the benchmark's callers.  Each hands its channel end
 *    (fd 3) and its unread key pipe (fd 4) to the harness through the unix
 *    socket PEERS_HANDOFF_DIR/<broker pid>.sock and then waits to be killed
 *    with the broker.  The harness opens the session on those fds with
 *    libconduit, so every caller row of the tables is timed by the same code,
 *    in the same processes and with the same pinning as the other rows; the
 *    broker sees an ordinary sandboxed layer.  Handing a session over is
 *    something only this benchmark does: the policy lets these layers call
 *    socket() and connect(), which a production layer never gets.
 *
 * Linked statically (no loader, no shared objects to reach under a dynamic
 * uid) and without sanitizers (their run-time needs system calls the
 * layers' seccomp profile does not allow).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <conduit/conduit.h>

#include "handoff.h"

static _Noreturn void die(const char *what, int err)
{
	fprintf(stderr, "BENCH fatal %s: %s\n", what, cdt_strerror(err));
	exit(2);
}

static void on_echo(cdt_layer *layer, cdt_msg *call, void *userdata)
{
	const uint8_t *p = NULL;
	cdt_msg *reply = NULL;
	size_t n = 0;
	int r;

	(void)userdata;
	r = cdt_msg_get_bytes(call, "payload", &p, &n);
	if (r == 0)
		r = cdt_msg_new(CDT_KIND_REPLY, cdt_msg_call_id(call), NULL, &reply);
	if (r == 0)
		r = cdt_msg_add_bytes(reply, "payload", p, n);
	if (r == 0)
		r = cdt_layer_reply(layer, call, reply);
	/* The harness keeps at most a few calls in flight per caller, far
	 * below the send queue's cap: a failure here is a fault to see. */
	if (r < 0)
		die("echo reply", r);
	cdt_msg_free(reply);
	cdt_msg_free(call);
}

static int run_echo(void)
{
	const struct cdt_layer_options opts = {.provide = "bench.echo"};
	cdt_layer *layer = NULL;
	int r = cdt_layer_open(&opts, &layer);

	if (r == 0)
		r = cdt_layer_serve(layer, "bench.echo", on_echo, NULL);
	if (r < 0)
		die("echo open", r);
	fprintf(stderr, "%s\n", PEERS_READY_LINE);
	r = cdt_layer_run(layer);
	cdt_layer_free(layer);
	/* The broker ends the benchmark with SIGKILL; any return is a fault. */
	die("echo run", r < 0 ? r : -EPIPE);
}

static int run_caller(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fds[2] = {PEERS_HANDOFF_CHAN_FD, PEERS_HANDOFF_KEY_FD};
	union {
		char buf[CMSG_SPACE(sizeof(fds))];
		struct cmsghdr align;
	} u;
	char byte = 1;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cm;
	int s, n;

	/* The harness bound the socket under the broker's pid, which is our
	 * parent's: nothing else names it. */
	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%ld.sock", PEERS_HANDOFF_DIR,
		     (long)getppid());
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		die("handoff path", -ENAMETOOLONG);
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("handoff connect", -errno);
	memset(u.buf, 0, sizeof(u.buf));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	if (sendmsg(s, &mh, MSG_NOSIGNAL) != 1)
		die("handoff send", -errno);
	/* Our copies must go, so that the broker sees the harness's end of
	 * the session and nothing else. */
	close(PEERS_HANDOFF_CHAN_FD);
	close(PEERS_HANDOFF_KEY_FD);
	close(s);
	/* Exiting would make the broker restart us; the parent-death signal
	 * ends us with the broker. */
	for (;;)
		(void)poll(NULL, 0, -1);
}

int main(int argc, char **argv)
{
	int r;

	if (argc != 2) {
		fprintf(stderr, "conduit-bench-peers-layer: run by conduit-broker only\n");
		return 2;
	}
	r = cdt_init();
	if (r < 0)
		die("init", r);
	if (strcmp(argv[1], PEERS_ECHO_LAYER) == 0)
		return run_echo();
	if (strcmp(argv[1], PEERS_CALLER_ARG) == 0)
		return run_caller();
	fprintf(stderr, "conduit-bench-peers-layer: unknown role %s\n", argv[1]);
	return 2;
}
