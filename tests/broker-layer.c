/* SPDX-License-Identifier: MIT */
/*
 * broker-layer: the layer program of the broker integration tests.  It
 * speaks the session protocol directly with cdt_chan + cdt_msg (fd 3 the
 * channel, fd 4 the key pipe) and reports what it saw as "RESULT ..." lines
 * on stderr, which the broker logs under the layer's name and the test reads
 * back.  Built static and without sanitizers: it runs under a dynamic uid
 * inside the sandbox and must load nothing at run time.
 *
 * Usage: broker-layer MODE [PROVIDE [PUBLISH [ARG...]]]
 * (lists with ',' for ' ', '-' for an empty list; ARG: the method the
 * ordercaller mode calls, ignored by the others)
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/rseq.h>
#include <sys/socket.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include <conduit/conduit.h>

#include "chan.h"

#define WAIT_MS 5000

static cdt_chan *chan;
static cdt_keys *keys;
static uint64_t next_id = 1;

static _Noreturn void idle(void)
{
	const struct timespec t = {60, 0};

	for (;;)
		nanosleep(&t, NULL);
}

static _Noreturn void die(const char *what, int r)
{
	fprintf(stderr, "RESULT fatal %s %s\n", what, cdt_strerror(r));
	exit(2);
}

static void commas(char *s)
{
	for (; *s; s++)
		if (*s == ',')
			*s = ' ';
}

static cdt_msg *hello_msg(const char *provide, const char *publish)
{
	cdt_msg *m;
	int r = cdt_msg_new(CDT_KIND_HELLO, 0, NULL, &m);

	if (r == 0)
		r = cdt_msg_add_u64(m, "version", 1);
	if (r == 0)
		r = cdt_msg_add_string(m, "provide", provide, strlen(provide));
	if (r == 0)
		r = cdt_msg_add_string(m, "publish", publish, strlen(publish));
	if (r < 0)
		die("hello", r);
	return m;
}

static void send_msg(cdt_msg *m)
{
	int r = cdt_chan_send_wait(chan, m, WAIT_MS);

	if (r < 0)
		die("send", r);
	cdt_msg_free(m);
}

static cdt_msg *recv_msg_within(int timeout_ms)
{
	cdt_msg *m;
	int r = cdt_chan_recv_wait(chan, &m, timeout_ms);

	if (r == -CDT_E_CLOSED)
		exit(0); /* the broker's FIN: an orderly stop */
	if (r < 0)
		die("recv", r);
	return m;
}

static cdt_msg *recv_msg(void)
{
	return recv_msg_within(WAIT_MS);
}

/* Answer broker pings while waiting for something else. */
static bool broker_ping(cdt_msg *m)
{
	cdt_msg *r;

	if (cdt_msg_kind(m) != CDT_KIND_CALL || strcmp(cdt_msg_name(m), "conduit.ping") != 0)
		return false;
	if (cdt_msg_new(CDT_KIND_REPLY, cdt_msg_call_id(m), NULL, &r) < 0)
		die("reply", -ENOMEM);
	send_msg(r);
	return true;
}

/* Call method with one string argument (or none); print the outcome. */
static cdt_msg *call(const char *label, const char *method, const char *arg, const char *val)
{
	uint64_t id = next_id++;
	cdt_msg *m;
	int r = cdt_msg_new(CDT_KIND_CALL, id, method, &m);

	if (r == 0 && arg)
		r = cdt_msg_add_string(m, arg, val, strlen(val));
	if (r < 0)
		die("call", r);
	send_msg(m);
	for (;;) {
		m = recv_msg();
		if (cdt_msg_call_id(m) == id &&
		    (cdt_msg_kind(m) == CDT_KIND_REPLY || cdt_msg_kind(m) == CDT_KIND_ERROR))
			break;
		if (!broker_ping(m))
			fprintf(stderr, "RESULT unexpected kind=%d\n", cdt_msg_kind(m));
		cdt_msg_free(m);
	}
	if (cdt_msg_kind(m) == CDT_KIND_ERROR)
		fprintf(stderr, "RESULT %s error %s\n", label, cdt_msg_name(m));
	else
		fprintf(stderr, "RESULT %s reply\n", label);
	return m;
}

static void mode_client(void)
{
	const char *s;
	int fd;
	cdt_msg *m;

	cdt_msg_free(call("ping", "conduit.ping", NULL, NULL));
	cdt_msg_free(call("denied", "test.echo", "x", "forbidden"));
	cdt_msg_free(call("rate1", "test.limited", NULL, NULL));
	cdt_msg_free(call("rate2", "test.limited", NULL, NULL));
	m = call("routed", "test.echo", "x", "hi");
	if (cdt_msg_get_string(m, "by", &s, NULL) == 0)
		fprintf(stderr, "RESULT routed-caller %s\n", s);
	if (cdt_msg_find(m, "_caller", &(struct cdt_arg){0}) == 0)
		fprintf(stderr, "RESULT routed-leak _caller\n");
	cdt_msg_free(m);
	m = call("open", "conduit.open", "path", getenv("TEST_OPEN") ? getenv("TEST_OPEN") : "");
	if (cdt_msg_take_fd(m, "fd", &fd) == 0) {
		char buf[64] = {0};
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		if (n > 0 && buf[n - 1] == '\n')
			buf[n - 1] = 0;
		fprintf(stderr, "RESULT open-content %s\n", n > 0 ? buf : "(none)");
		close(fd);
	}
	cdt_msg_free(m);
	cdt_msg_free(call("undeclared", "conduit.open", "path", "/etc/shadow"));
	fprintf(stderr, "RESULT client-done\n");
}

/* Many pings and opens: the audit-failure test fills the log's disk
 * while this runs. */
static void mode_pingopen(void)
{
	const char *path = getenv("TEST_OPEN") ? getenv("TEST_OPEN") : "";

	for (int i = 0; i < 40; i++) {
		int fd;
		cdt_msg_free(call("po ping", "conduit.ping", NULL, NULL));
		cdt_msg *m = call("po open", "conduit.open", "path", path);
		if (cdt_msg_take_fd(m, "fd", &fd) == 0)
			close(fd);
		cdt_msg_free(m);
	}
	fprintf(stderr, "RESULT po-done\n");
}

/* conduit.ping with a "payload": the reply must carry the same bytes.
 * Sizes at the policy's bound (1 MiB) and one past it. */
static void ping_echo(const char *label, size_t n, bool as_string)
{
	static uint8_t blob[(1u << 20) + 1];
	uint64_t id = next_id++;
	const uint8_t *p;
	size_t got;
	cdt_msg *m;
	int r;

	for (size_t i = 0; i < n; i++)
		blob[i] = (uint8_t)(i * 31u + n);
	r = cdt_msg_new(CDT_KIND_CALL, id, "conduit.ping", &m);
	if (r == 0)
		r = as_string ? cdt_msg_add_string(m, "payload", "text", 4)
			      : cdt_msg_add_bytes(m, "payload", blob, n);
	if (r < 0)
		die("pingecho", r);
	send_msg(m);
	for (;;) {
		m = recv_msg();
		if (cdt_msg_call_id(m) == id && cdt_msg_kind(m) != CDT_KIND_CALL)
			break;
		(void)broker_ping(m);
		cdt_msg_free(m);
	}
	if (cdt_msg_kind(m) == CDT_KIND_ERROR)
		fprintf(stderr, "RESULT %s error %s\n", label, cdt_msg_name(m));
	else if (cdt_msg_get_bytes(m, "payload", &p, &got) < 0)
		fprintf(stderr, "RESULT %s empty %zu\n", label, cdt_msg_nargs(m));
	else
		fprintf(stderr, "RESULT %s echo %s\n", label,
			got == n && (n == 0 || memcmp(p, blob, n) == 0) ? "same" : "differs");
	cdt_msg_free(m);
}

static void mode_pingecho(void)
{
	const char *path = getenv("TEST_OPEN") ? getenv("TEST_OPEN") : "";
	int fd;
	cdt_msg *m;

	ping_echo("pe-none", 0, false);
	ping_echo("pe-64", 64, false);
	ping_echo("pe-max", 1u << 20, false);
	ping_echo("pe-string", 0, true);
	cdt_msg_free(call("pe-plain", "conduit.ping", NULL, NULL));
	/* Last, so the test can read the log while we wait: an fd handed
	 * out and a denial are on disk before their reply. */
	m = call("pe-open", "conduit.open", "path", path);
	if (cdt_msg_take_fd(m, "fd", &fd) == 0)
		close(fd);
	cdt_msg_free(m);
	ping_echo("pe-over", (1u << 20) + 1, false);
	fprintf(stderr, "RESULT pe-done\n");
}

/* Routed calls that time out, then more calls: the broker reuses finished
 * entries and their timers (fired or not) for later calls.  The pauses
 * only make reuse likely (the late reply freed its entry first); the
 * outcomes are the same either way. */
static void mode_reuse(void)
{
	const struct timespec pause = {0, 500 * 1000 * 1000};

	for (int i = 0; i < 3; i++)
		cdt_msg_free(call("fast", "test.echo", "x", "a"));
	cdt_msg_free(call("slow1", "test.slow", NULL, NULL));
	nanosleep(&pause, NULL);
	cdt_msg_free(call("slow2", "test.slow", NULL, NULL));
	nanosleep(&pause, NULL);
	cdt_msg_free(call("fast2", "test.echo", "x", "b"));
	fprintf(stderr, "RESULT reuse-done\n");
}

/* conduit.listen and conduit.connect: the two fds the broker passes talk to
 * each other. */
static void mode_resources(void)
{
	int lfd = -1, cfd = -1, afd;
	char buf[8] = {0};
	cdt_msg *m = call("listen", "conduit.listen", "name", "srv");

	if (cdt_msg_take_fd(m, "fd", &lfd) < 0)
		lfd = -1;
	cdt_msg_free(m);
	m = call("connect", "conduit.connect", "name", "peer");
	if (cdt_msg_take_fd(m, "fd", &cfd) < 0)
		cfd = -1;
	cdt_msg_free(m);
	cdt_msg_free(call("undeclared", "conduit.connect", "name", "other"));
	/* Again: the broker hands out the socket it keeps, not a new bind. */
	cdt_msg_free(call("listen-again", "conduit.listen", "name", "srv"));
	if (lfd >= 0 && cfd >= 0 && send(cfd, "hi", 2, MSG_NOSIGNAL) == 2) {
		afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (afd >= 0 && recv(afd, buf, sizeof(buf) - 1, 0) == 2)
			fprintf(stderr, "RESULT resources-talk %s\n", buf);
	}
	fprintf(stderr, "RESULT resources-done\n");
}

/* Wait (bounded) until fd is ready for events; false on timeout. */
static bool wait_fd(int fd, short events)
{
	struct pollfd p = {.fd = fd, .events = events};

	return poll(&p, 1, WAIT_MS) == 1 && (p.revents & events);
}

/* Take the fd a resource call passed, or -1. */
static int call_fd(const char *label, const char *method, const char *arg, const char *val)
{
	cdt_msg *m = call(label, method, arg, val);
	int fd;

	if (cdt_msg_take_fd(m, "fd", &fd) < 0)
		fd = -1;
	cdt_msg_free(m);
	return fd;
}

/* conduit.connect to the test's TCP echo server: a line there and back;
 * then a name the policy does not list, and the same name over its rate. */
static void mode_tcpclient(void)
{
	char buf[64] = {0};
	int fd = call_fd("connect", "conduit.connect", "name", "echo");
	ssize_t n = -1;

	/* The socket comes non-blocking, its connect possibly in progress. */
	if (fd >= 0 && wait_fd(fd, POLLOUT) && send(fd, "ping\n", 5, MSG_NOSIGNAL) == 5 &&
	    wait_fd(fd, POLLIN))
		n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = 0;
	fprintf(stderr, "RESULT tcp-echo %s\n", n > 0 ? buf : "(none)");
	if (fd >= 0)
		close(fd);
	(void)call_fd("unlisted", "conduit.connect", "name", "elsewhere");
	fd = call_fd("again", "conduit.connect", "name", "echo");
	if (fd >= 0)
		close(fd);
	fprintf(stderr, "RESULT tcpclient-done\n");
}

/* conduit.listen on TCP: say the port, serve one connection of the test. */
static void mode_tcpserver(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	char buf[64] = {0}, out[80];
	int lfd = call_fd("listen", "conduit.listen", "name", "srv"), afd = -1;
	ssize_t n = -1;

	(void)call_fd("unlisted", "conduit.listen", "name", "other");
	if (lfd < 0 || getsockname(lfd, (struct sockaddr *)&sa, &len) < 0) {
		fprintf(stderr, "RESULT tcpserver-failed\n");
		return;
	}
	fprintf(stderr, "RESULT listen-port %u\n", (unsigned)ntohs(sa.sin_port));
	if (wait_fd(lfd, POLLIN))
		afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (afd >= 0 && wait_fd(afd, POLLIN))
		n = recv(afd, buf, sizeof(buf) - 1, 0);
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = 0;
	fprintf(stderr, "RESULT accepted %s\n", n > 0 ? buf : "(none)");
	snprintf(out, sizeof(out), "pong %s\n", n > 0 ? buf : "");
	if (afd >= 0 && send(afd, out, strlen(out), MSG_NOSIGNAL) < 0)
		fprintf(stderr, "RESULT tcpserver-send %s\n", strerror(errno));
	if (afd >= 0)
		close(afd);
	close(lfd);
	fprintf(stderr, "RESULT tcpserver-done\n");
}

/* conduit.open in append mode: a line appended through the passed fd; a
 * path the policy does not list; the same path over its rate. */
static void mode_appender(void)
{
	const char *path = getenv("TEST_OPEN") ? getenv("TEST_OPEN") : "";
	const char line[] = "appended by the layer\n";
	int fd = call_fd("open", "conduit.open", "path", path);

	if (fd >= 0) {
		int fl = fcntl(fd, F_GETFL);
		fprintf(stderr, "RESULT open-flags %s%s\n",
			(fl & O_ACCMODE) == O_WRONLY ? "wronly" : "other",
			fl & O_APPEND ? " append" : "");
		if (write(fd, line, sizeof(line) - 1) != (ssize_t)sizeof(line) - 1)
			fprintf(stderr, "RESULT append-failed %s\n", strerror(errno));
		/* Write-only: reading it back must fail. */
		if (read(fd, (char[4]){0}, 4) < 0)
			fprintf(stderr, "RESULT read-refused\n");
		close(fd);
	}
	(void)call_fd("unlisted", "conduit.open", "path", "/etc/passwd");
	fd = call_fd("again", "conduit.open", "path", path);
	if (fd >= 0)
		close(fd);
	fprintf(stderr, "RESULT appender-done\n");
}

/* The layer ends its channel and keeps running: FIN (finstay), EOF by
 * closing it (eofstay), or FIN and a clean exit after the broker's FIN
 * (finexit). */
static void mode_chan_end(const char *mode)
{
	if (strcmp(mode, "eofstay") == 0) {
		cdt_chan_free(chan);
		chan = NULL;
		fprintf(stderr, "RESULT channel-dropped\n");
		idle();
	}
	if (cdt_chan_close(chan) < 0)
		die("close", -EIO);
	fprintf(stderr, "RESULT fin-sent\n");
	if (strcmp(mode, "finstay") == 0)
		idle();
	for (;;)
		cdt_msg_free(recv_msg_within(-1)); /* exits 0 at the broker's FIN */
}

/* Holds the broker's first heartbeat ping unanswered until the broker's
 * FIN (a stop), then answers it: the answer reaches a broker that is
 * stopping this layer. */
static void mode_latepong(void)
{
	cdt_msg *m = NULL, *r = NULL;
	int rc;

	for (;;) {
		m = recv_msg();
		if (cdt_msg_kind(m) == CDT_KIND_CALL &&
		    strcmp(cdt_msg_name(m), "conduit.ping") == 0)
			break;
		cdt_msg_free(m);
	}
	fprintf(stderr, "RESULT ping-held\n");
	rc = cdt_chan_recv_wait(chan, &r, -1);
	if (rc != -CDT_E_CLOSED)
		die("wait for FIN", rc < 0 ? rc : -EPROTO);
	if (cdt_msg_new(CDT_KIND_REPLY, cdt_msg_call_id(m), NULL, &r) < 0)
		die("reply", -ENOMEM);
	send_msg(r);
	cdt_msg_free(m);
	fprintf(stderr, "RESULT late-pong-sent\n");
	exit(0);
}

/* A call past its deadline, then calls to a provider that is gone. */
static void mode_slowcaller(void)
{
	const struct timespec tick = {0, 20 * 1000 * 1000};
	bool unavailable = false;

	cdt_msg_free(call("slow", "test.slow", NULL, NULL));
	for (int i = 0; i < 250 && !unavailable; i++) {
		cdt_msg *m = call("gone", "test.gone", NULL, NULL);
		unavailable = cdt_msg_kind(m) == CDT_KIND_ERROR &&
			      strcmp(cdt_msg_name(m), "conduit.unavailable") == 0;
		cdt_msg_free(m);
		if (!unavailable)
			nanosleep(&tick, NULL);
	}
	fprintf(stderr, "RESULT slowcaller-done\n");
}

static void mode_provider(void)
{
	for (;;) {
		cdt_msg *m = recv_msg_within(-1), *r; /* serve until stopped */
		const char *caller = "";
		const uint8_t *blob;
		size_t blen;

		if (broker_ping(m)) {
			cdt_msg_free(m);
			continue;
		}
		if (cdt_msg_kind(m) != CDT_KIND_CALL) {
			cdt_msg_free(m);
			continue;
		}
		if (strcmp(cdt_msg_name(m), "test.slow") == 0) {
			/* Answer after the caller's deadline: a late reply. */
			const struct timespec late = {0, 600 * 1000 * 1000};
			nanosleep(&late, NULL);
		}
		if (cdt_msg_get_string(m, "_caller", &caller, NULL) < 0)
			caller = "(none)";
		if (cdt_msg_new(CDT_KIND_REPLY, cdt_msg_call_id(m), NULL, &r) < 0 ||
		    cdt_msg_add_string(r, "by", caller, strlen(caller)) < 0)
			die("reply", -ENOMEM);
		if (cdt_msg_get_bytes(m, "x", &blob, &blen) == 0) {
			if (cdt_msg_add_bytes(r, "x", blob, blen) < 0)
				die("reply", -ENOMEM);
		} else {
			fprintf(stderr, "RESULT served %s id=%llu\n", cdt_msg_name(m),
				(unsigned long long)cdt_msg_call_id(m));
		}
		cdt_msg_free(m);
		send_msg(r);
	}
}

static void mode_subscriber(void)
{
	cdt_msg *m;
	const char *pub = "";
	int64_t v = 0;

	if (cdt_msg_new(CDT_KIND_SUBSCRIBE, 0, "test.tick", &m) < 0)
		die("subscribe", -ENOMEM);
	send_msg(m);
	if (cdt_msg_new(CDT_KIND_SUBSCRIBE, 0, "test.secret", &m) < 0)
		die("subscribe", -ENOMEM);
	send_msg(m);
	fprintf(stderr, "RESULT subscribed\n");
	for (;;) {
		m = recv_msg_within(-1);
		if (cdt_msg_kind(m) == CDT_KIND_EVENT) {
			if (cdt_msg_get_string(m, "_publisher", &pub, NULL) < 0)
				pub = "(none)";
			if (cdt_msg_get_i64(m, "v", &v) < 0)
				v = -1;
			fprintf(stderr, "RESULT event %s from %s v=%lld\n", cdt_msg_name(m), pub,
				(long long)v);
		} else {
			(void)broker_ping(m);
		}
		cdt_msg_free(m);
	}
}

static void mode_publisher(void)
{
	const struct timespec tick = {0, 50 * 1000 * 1000};

	for (int64_t v = 0; v < 200; v++) {
		cdt_msg *m;
		if (cdt_msg_new(CDT_KIND_EVENT, 0, "test.tick", &m) < 0 ||
		    cdt_msg_add_i64(m, "v", v % 2 ? 1 : 2) < 0)
			die("event", -ENOMEM);
		send_msg(m);
		nanosleep(&tick, NULL);
	}
	idle();
}

/* A raw datagram on the channel socket, around the secure channel. */
/* Add one to the broker's eventfd: "a frame is there". */
static void raw_kick(void)
{
	uint64_t one = 1;
	if (!chan->ring || write(chan->ring->kick_out, &one, sizeof(one)) != sizeof(one))
		fprintf(stderr, "RESULT raw-kick failed\n");
}

static void raw_send(const void *p, size_t n)
{
	if (send(3, p, n, MSG_NOSIGNAL) < 0)
		fprintf(stderr, "RESULT raw-send %s\n", strerror(errno));
}

/* The first frame the layer would send, sealed by a twin channel with the
 * same keys over a private socketpair, captured as bytes. */
static ssize_t capture_hello(const char *provide, const char *publish, uint8_t *buf, size_t cap)
{
	int sp[2];
	cdt_chan *twin;
	ssize_t n;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		die("socketpair", -errno);
	if (cdt_chan_new(sp[0], keys, CDT_ROLE_LAYER, &twin) < 0)
		die("twin", -EINVAL);
	if (cdt_chan_send(twin, hello_msg(provide, publish)) < 0)
		die("twin send", -EIO);
	n = recv(sp[1], buf, cap, 0);
	cdt_chan_free(twin);
	close(sp[1]);
	return n;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "client";
	char provide[256] = "", publish[256] = "";
	int r;

	if (argc > 2)
		snprintf(provide, sizeof(provide), "%s", argv[2][0] == '-' ? "" : argv[2]);
	if (argc > 3)
		snprintf(publish, sizeof(publish), "%s", argv[3][0] == '-' ? "" : argv[3]);
	commas(provide);
	commas(publish);
	r = cdt_init();
	if (r == 0)
		r = cdt_keys_recv(4, &keys);
	if (r < 0)
		die("keys", r);
	close(4);
	r = cdt_chan_new(3, keys, CDT_ROLE_LAYER, &chan);
	if (r < 0)
		die("chan", r);
	if (strcmp(mode, "replay") == 0) {
		uint8_t frame[65560];
		ssize_t n = capture_hello(provide, publish, frame, sizeof(frame));
		raw_send(frame, (size_t)n);
		raw_send(frame, (size_t)n); /* the same counter again */
		fprintf(stderr, "RESULT replayed\n");
		idle();
	}
	if (strcmp(mode, "impostor") == 0) {
		/* Claims to provide what another layer provides. */
		send_msg(hello_msg("test.echo", ""));
		fprintf(stderr, "RESULT impostor-hello-sent\n");
		idle();
	}
	if (strcmp(mode, "latehello") == 0) {
		/* Says hello only after the broker's FIN (a stop came first),
		 * deaf to SIGTERM: the hello reaches a broker that is stopping
		 * this layer. */
		cdt_msg *m = NULL;

		signal(SIGTERM, SIG_IGN);
		fprintf(stderr, "RESULT latehello-waiting\n");
		r = cdt_chan_recv_wait(chan, &m, -1);
		if (r != -CDT_E_CLOSED)
			die("wait for FIN", r < 0 ? r : -EPROTO);
		send_msg(hello_msg(provide, publish));
		fprintf(stderr, "RESULT latehello-sent\n");
		exit(0);
	}
	if (strcmp(mode, "slowprovider") == 0) {
		/* A slow start: a layer that waits for this one and calls it
		 * at once finds it ready only if the broker waited. */
		const struct timespec slow = {0, 300 * 1000 * 1000};
		nanosleep(&slow, NULL);
		mode = "provider";
	}
	send_msg(hello_msg(provide, publish));
	cdt_msg *h = recv_msg();
	const char *name = "?";
	if (cdt_msg_get_string(h, "layer", &name, NULL) < 0)
		name = "(none)";
	fprintf(stderr, "RESULT ready as %s\n", name);
	cdt_msg_free(h);
	if (strcmp(mode, "env") == 0) {
		/* What the broker put in the environment, and whether glibc
		 * registered a restartable-sequence area; then serve. */
		const char *t = getenv("GLIBC_TUNABLES");
		fprintf(stderr, "RESULT env %s rseq %s\n", t ? t : "(unset)",
			__rseq_size ? "on" : "off");
		mode = "provider";
	}
	if (strcmp(mode, "client") == 0)
		mode_client();
	else if (strcmp(mode, "provider") == 0)
		mode_provider();
	else if (strcmp(mode, "subscriber") == 0)
		mode_subscriber();
	else if (strcmp(mode, "publisher") == 0)
		mode_publisher();
	else if (strcmp(mode, "resources") == 0)
		mode_resources();
	else if (strcmp(mode, "slowcaller") == 0)
		mode_slowcaller();
	else if (strcmp(mode, "pingopen") == 0)
		mode_pingopen();
	else if (strcmp(mode, "pingecho") == 0)
		mode_pingecho();
	else if (strcmp(mode, "latepong") == 0)
		mode_latepong();
	else if (strcmp(mode, "many") == 0) {
		/* A long audit log for measuring the checker: ARG calls of
		 * test.echo, every tenth one refused by a deny rule. */
		long n = argc > 4 ? strtol(argv[4], NULL, 10) : 1000;
		for (long i = 0; i < n; i++)
			cdt_msg_free(call("many", "test.echo", "x", i % 10 ? "hi" : "forbidden"));
		fprintf(stderr, "RESULT many-done\n");
	} else if (strcmp(mode, "burst") == 0) {
		/* Right after the hello: the rule's whole burst and one more. */
		for (int i = 0; i < 3; i++)
			cdt_msg_free(call("burst", "test.limited", NULL, NULL));
		fprintf(stderr, "RESULT burst-done\n");
	} else if (strcmp(mode, "ordercaller") == 0)
		cdt_msg_free(call("order-call", argc > 4 ? argv[4] : "test.echo", NULL, NULL));
	else if (strcmp(mode, "tcpclient") == 0)
		mode_tcpclient();
	else if (strcmp(mode, "tcpserver") == 0)
		mode_tcpserver();
	else if (strcmp(mode, "appender") == 0)
		mode_appender();
	else if (strcmp(mode, "finstay") == 0 || strcmp(mode, "eofstay") == 0 ||
		 strcmp(mode, "finexit") == 0)
		mode_chan_end(mode);
	else if (strcmp(mode, "reuse") == 0)
		mode_reuse();
	else if (strcmp(mode, "sigsys") == 0) {
		struct sysinfo si; /* a system call no profile allows */
		fprintf(stderr, "RESULT sysinfo %d\n", sysinfo(&si));
	} else if (strcmp(mode, "silent") == 0)
		idle(); /* never answers the broker's heartbeat */
	else if (strcmp(mode, "crash") == 0)
		exit(3);
	else if (strcmp(mode, "garbage") == 0) {
		/* Over the socket, announced as every frame is. */
		raw_send("\x01\x01\x00\x00\x20\x00\x00\x00garbage-garbage-garbage-garbage!", 40);
		raw_kick();
		fprintf(stderr, "RESULT garbage-sent\n");
	} else if (strcmp(mode, "ringjunk") == 0) {
		/* A well-formed header with the right counter, forged bytes. */
		static const uint8_t junk[] = "\x01\x01\x00\x00\x20\x00\x00\x00"
					      "ring-junk-ring-junk-ring-junk-!!";
		if (!chan->ring || ring_put(&chan->ring->tx, chan->tx_ctr, junk, 40) < 0)
			fprintf(stderr, "RESULT ring-put failed\n");
		raw_kick();
		fprintf(stderr, "RESULT ringjunk-sent\n");
		idle();
	} else if (strcmp(mode, "kickflood") == 0) {
		/* Announces 10^5 frames that are nowhere, on an eventfd it
		 * made blocking, then calls like an honest layer. */
		if (!chan->ring || fcntl(chan->ring->kick_out, F_SETFL, 0) < 0)
			fprintf(stderr, "RESULT kickflood-setup failed\n");
		for (int i = 0; i < 100000; i++)
			raw_kick();
		fprintf(stderr, "RESULT kickflood-sent\n");
		cdt_msg_free(call("ping", "conduit.ping", NULL, NULL));
		cdt_msg_free(call("routed", "test.echo", "x", "hi"));
		idle();
	} else if (strcmp(mode, "reserved") == 0) {
		cdt_msg *m;
		if (cdt_msg_new(CDT_KIND_CALL, 1, "conduit.ping", &m) < 0 ||
		    cdt_msg_add_string(m, "_caller", "io", 2) < 0)
			die("reserved", -ENOMEM);
		send_msg(m);
	} else if (strcmp(mode, "fdhog") == 0) {
		/* Ask for fds and never read the replies that carry them. */
		const char *path = getenv("TEST_OPEN") ? getenv("TEST_OPEN") : "";
		for (int i = 0; i < 100000; i++) {
			cdt_msg *m;
			if (cdt_msg_new(CDT_KIND_CALL, next_id++, "conduit.open", &m) < 0 ||
			    cdt_msg_add_string(m, "path", path, strlen(path)) < 0)
				die("fdhog", -ENOMEM);
			r = cdt_chan_send_wait(chan, m, WAIT_MS);
			cdt_msg_free(m);
			if (r < 0)
				break;
		}
		fprintf(stderr, "RESULT fdhog-stopped\n");
	} else if (strcmp(mode, "noread") == 0) {
		/* Ask for big replies and never read them. */
		static uint8_t blob[60000];
		for (int i = 0; i < 100000; i++) {
			cdt_msg *m;
			if (cdt_msg_new(CDT_KIND_CALL, next_id++, "test.echo", &m) < 0 ||
			    cdt_msg_add_bytes(m, "x", blob, sizeof(blob)) < 0)
				die("noread", -ENOMEM);
			r = cdt_chan_send_wait(chan, m, WAIT_MS);
			cdt_msg_free(m);
			if (r < 0)
				break;
		}
		fprintf(stderr, "RESULT noread-stopped\n");
	}
	idle();
	return 0;
}
