/* SPDX-License-Identifier: MIT */
/*
 * Round-trip time of the secure channel against a raw SOCK_SEQPACKET
 * socketpair, measured in the same run and the same process tree.
 *
 * For each payload size and each placement (both processes pinned to CPU 0,
 * or free to run anywhere) a child is forked that answers two ping-pongs:
 *   raw      the payload as is, in datagrams of at most 64 KiB;
 *   channel  a CALL with one bytes argument of the payload size, encoded,
 *            sealed, sent, received, opened, decoded, and answered with a
 *            REPLY built the same way; once over the socket alone, once
 *            through the shared-memory rings the broker offers
 *            (docs/protocol.md section 3.1).
 * Batches of the two alternate, and the medians of the per-batch mean RTTs
 * are printed with their ratio.
 *
 * Usage: conduit-bench-chan [--quick]
 *
 * conduit-bench-chan --codec [N]: the user-space work of one 64 B call
 * without the channel, N times in this process: build it (cdt_msg_new,
 * one bytes argument), encode, free, decode, read the argument, free; ns
 * per call.  Deterministic under valgrind --tool=callgrind, where
 * instructions per call are the figure to compare.
 */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conduit/conduit.h"

#include "chan.h"

#define RAW_CHUNK (64u * 1024)

struct config {
	size_t size;
	bool pinned;
	bool ring;
	int iters;
	int reps;
};

static void die(const char *what, int err)
{
	fprintf(stderr, "conduit-bench-chan: %s: %s\n", what, cdt_strerror(err));
	exit(1);
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void set_cpus(bool pinned)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	if (pinned) {
		CPU_SET(0, &set);
	} else {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		for (long i = 0; i < n && i < CPU_SETSIZE; i++)
			CPU_SET((int)i, &set);
	}
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		die("sched_setaffinity", -errno);
}

/* The whole payload as datagrams of at most RAW_CHUNK bytes. */
static void raw_send(int fd, const uint8_t *p, size_t len)
{
	size_t off = 0;
	do {
		size_t n = len - off > RAW_CHUNK ? RAW_CHUNK : len - off;
		ssize_t w = send(fd, p + off, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w != (ssize_t)n)
			die("raw send", w < 0 ? -errno : -EIO);
		off += n;
	} while (off < len);
}

static void raw_recv(int fd, uint8_t *p, size_t len)
{
	size_t off = 0;
	do {
		ssize_t r = recv(fd, p + off, RAW_CHUNK, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("raw recv", r < 0 ? -errno : -EPIPE);
		off += (size_t)r;
	} while (off < len);
}

static cdt_msg *build(enum cdt_kind kind, const uint8_t *p, size_t len)
{
	cdt_msg *m;
	int r = cdt_msg_new(kind, 1, kind == CDT_KIND_CALL ? "bench.echo" : NULL, &m);
	if (r < 0)
		die("cdt_msg_new", r);
	r = cdt_msg_add_bytes(m, "data", p, len);
	if (r < 0)
		die("cdt_msg_add_bytes", r);
	return m;
}

/* Send msg_kind with the payload, wait for the answer, check its size. */
static void chan_hop(cdt_chan *chan, enum cdt_kind kind, const uint8_t *p, size_t len,
		     bool reply_first, uint8_t *copy)
{
	cdt_msg *m, *got;
	const uint8_t *b;
	size_t blen;
	int r;

	if (!reply_first) {
		m = build(kind, p, len);
		r = cdt_chan_send_wait(chan, m, -1);
		if (r < 0)
			die("cdt_chan_send_wait", r);
		cdt_msg_free(m);
	}
	r = cdt_chan_recv_wait(chan, &got, -1);
	if (r < 0)
		die("cdt_chan_recv_wait", r);
	r = cdt_msg_get_bytes(got, "data", &b, &blen);
	if (r < 0 || blen != len)
		die("reply", r < 0 ? r : -EBADMSG);
	if (reply_first) {
		/* The server answers with what it received. */
		m = build(CDT_KIND_REPLY, b, blen);
		r = cdt_chan_send_wait(chan, m, -1);
		if (r < 0)
			die("cdt_chan_send_wait", r);
		cdt_msg_free(m);
	} else if (copy) {
		memcpy(copy, b, blen);
	}
	cdt_msg_free(got);
}

static void serve(const struct config *c, int raw, int keyfd, int sock)
{
	uint8_t *buf = malloc(c->size);
	cdt_keys *keys;
	cdt_chan *chan;
	int r = cdt_keys_recv(keyfd, &keys);
	if (r < 0)
		die("cdt_keys_recv", r);
	close(keyfd);
	r = cdt_chan_new(sock, keys, CDT_ROLE_LAYER, &chan);
	cdt_keys_free(keys);
	if (r < 0)
		die("cdt_chan_new", r);
	for (int rep = 0; rep <= c->reps; rep++) {
		for (int i = 0; i < c->iters; i++) {
			raw_recv(raw, buf, c->size);
			raw_send(raw, buf, c->size);
		}
		for (int i = 0; i < c->iters; i++)
			chan_hop(chan, CDT_KIND_REPLY, NULL, c->size, true, NULL);
	}
	cdt_chan_free(chan);
	free(buf);
}

static void run(const struct config *c, double *ret_raw, double *ret_chan)
{
	int rawsv[2], chsv[2], kp[2];
	cdt_keys *keys;
	cdt_chan *chan;
	int r;

	set_cpus(c->pinned);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rawsv) < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chsv) < 0 ||
	    pipe2(kp, O_CLOEXEC) < 0)
		die("socketpair", -errno);
	pid_t pid = fork();
	if (pid < 0)
		die("fork", -errno);
	if (pid == 0) {
		close(rawsv[0]);
		close(chsv[0]);
		close(kp[1]);
		serve(c, rawsv[1], kp[0], chsv[1]);
		_exit(0);
	}
	close(rawsv[1]);
	close(chsv[1]);
	close(kp[0]);
	r = cdt_keys_new(CDT_SUITE_AUTO, &keys);
	if (r < 0)
		die("cdt_keys_new", r);
	r = cdt_keys_send(keys, kp[1]);
	if (r < 0)
		die("cdt_keys_send", r);
	close(kp[1]);
	r = cdt_chan_new(chsv[0], keys, CDT_ROLE_BROKER, &chan);
	cdt_keys_free(keys);
	if (r < 0)
		die("cdt_chan_new", r);
	if (c->ring) {
		r = chan_ring_offer(chan);
		if (r < 0)
			die("chan_ring_offer", r);
	}

	uint8_t *out = malloc(c->size), *in = malloc(c->size);
	double *raw = calloc((size_t)c->reps, sizeof(double));
	double *ch = calloc((size_t)c->reps, sizeof(double));
	if (!out || !in || !raw || !ch)
		die("malloc", -ENOMEM);
	for (size_t i = 0; i < c->size; i++)
		out[i] = (uint8_t)(i * 7);
	/* rep 0 warms caches, allocators and the scheduler; not counted */
	for (int rep = 0; rep <= c->reps; rep++) {
		double t0 = now_us();
		for (int i = 0; i < c->iters; i++) {
			raw_send(rawsv[0], out, c->size);
			raw_recv(rawsv[0], in, c->size);
		}
		double t1 = now_us();
		for (int i = 0; i < c->iters; i++)
			chan_hop(chan, CDT_KIND_CALL, out, c->size, false, in);
		double t2 = now_us();
		if (rep > 0) {
			raw[rep - 1] = (t1 - t0) / c->iters;
			ch[rep - 1] = (t2 - t1) / c->iters;
		}
	}
	if (memcmp(in, out, c->size) != 0)
		die("echo", -EBADMSG);
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("server", -ECHILD);
	*ret_raw = median(raw, c->reps);
	*ret_chan = median(ch, c->reps);
	cdt_chan_free(chan);
	close(rawsv[0]);
	free(out);
	free(in);
	free(raw);
	free(ch);
}

/* One call's codec work, n times: what the echo child does per message
 * besides the AEAD and the system calls. */
static void codec_loop(long n)
{
	uint8_t payload[64], wire[256];
	const uint8_t *b;
	size_t blen;
	cdt_msg *d;

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7);
	double t0 = now_us();
	for (long i = 0; i < n; i++) {
		cdt_msg *m = build(CDT_KIND_CALL, payload, sizeof(payload));
		long len = cdt_msg_encode(m, wire, sizeof(wire));
		if (len < 0)
			die("cdt_msg_encode", (int)len);
		cdt_msg_free(m);
		int r = cdt_msg_decode(wire, (size_t)len, NULL, 0, &d);
		if (r < 0)
			die("cdt_msg_decode", r);
		r = cdt_msg_get_bytes(d, "data", &b, &blen);
		if (r < 0 || blen != sizeof(payload))
			die("cdt_msg_get_bytes", r < 0 ? r : -EBADMSG);
		cdt_msg_free(d);
	}
	double t1 = now_us();
	printf("codec, 64 B call: build + encode + free + decode + get + free: %.1f ns per call "
	       "(%ld calls)\n",
	       (t1 - t0) * 1e3 / (double)n, n);
}

int main(int argc, char **argv)
{
	/* The broker side of a ring announces through a pipe (chan.h). */
	signal(SIGPIPE, SIG_IGN);
	static const size_t sizes[] = {64, 1024, 16 * 1024, 1024 * 1024};
	bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
	cdt_keys *probe;
	int r;

	if (argc > 1 && strcmp(argv[1], "--codec") == 0) {
		long n = argc > 2 ? atol(argv[2]) : 1000000;
		if (argc > 3 || n < 1) {
			fprintf(stderr, "usage: conduit-bench-chan --codec [N >= 1]\n");
			return 2;
		}
		codec_loop(n);
		return 0;
	}

	if (argc > 2 || (argc == 2 && !quick)) {
		fprintf(stderr, "usage: conduit-bench-chan [--quick | --codec [N]]\n");
		return 2;
	}
	r = cdt_init();
	if (r < 0)
		die("cdt_init", r);
	r = cdt_keys_new(CDT_SUITE_AUTO, &probe);
	if (r < 0)
		die("cdt_keys_new", r);
	printf("conduit-bench-chan: round trip, raw SOCK_SEQPACKET vs secure channel (%s)\n",
	       cdt_keys_suite(probe) == CDT_SUITE_AES256GCM ? "AES-256-GCM" : "XChaCha20-Poly1305");
	cdt_keys_free(probe);
	printf("median of per-batch means; pinned = both processes on CPU 0\n\n");
	printf("%10s  %-14s  %12s  %12s  %6s\n", "size", "mode", "raw RTT us", "chan RTT us",
	       "ratio");
	for (int pinned = 1; pinned >= 0; pinned--) {
		for (size_t j = 0; j < 2 * sizeof(sizes) / sizeof(sizes[0]); j++) {
			size_t i = j / 2;
			struct config c = {.size = sizes[i], .pinned = pinned, .ring = j % 2};
			/* Aim at similar wall time per size. */
			c.iters = sizes[i] >= 1024 * 1024 ? 30 : sizes[i] >= 16384 ? 500 : 2000;
			/* Many short batches: the median shrugs off the noise of
			 * a shared machine. */
			c.reps = quick ? 3 : 15;
			if (quick)
				c.iters = c.iters / 4 + 1;
			double raw, ch;
			run(&c, &raw, &ch);
			printf("%10zu  %-8s %-5s  %12.2f  %12.2f  %6.2f\n", sizes[i],
			       pinned ? "pinned" : "unpinned", c.ring ? "ring" : "sock", raw, ch,
			       ch / raw);
			fflush(stdout);
		}
	}
	return 0;
}
