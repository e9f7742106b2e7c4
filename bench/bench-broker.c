/* SPDX-License-Identifier: MIT */
/*
 * conduit-bench-broker: round trips through a real conduit-broker against a
 * raw socketpair measured in the same run.
 *
 *   conduit-bench-broker BROKER     (as root: layers run under dynamic uids)
 *   conduit-bench-broker BROKER --sixteen N   (only the 16-layer figure, N runs)
 *
 * The program is its own layers: started by the broker with "client" or
 * "echo" it speaks the protocol on fd 3/4.  The driver writes a policy, runs
 * the broker twice (pinned: the broker and so every layer on CPU 0; then
 * free), reads the client's "BENCH" lines from the broker's stderr, and
 * measures a forked echo over a raw SOCK_SEQPACKET socketpair with the same
 * placement.  Every call through the broker is decided and audited, as in
 * production.  The layers send and receive as the layer API does, so long
 * bytes values travel as sealed memfds (docs/protocol.md section 4.1).
 * Figures are medians of single round trips in microseconds.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <conduit/conduit.h>

#include "msg.h"

#define ITER   2000
#define WARMUP 200

#define BIG	 65536 /* above this: fewer calls, and raw datagrams of this size */
#define BIG_ITER 100
#define BIG_WARM 4

static const size_t sizes[] = {64, 16384, 1048576};

static int iters_of(size_t size)
{
	return size > BIG ? BIG_ITER : ITER;
}

static int warm_of(size_t size)
{
	return size > BIG ? BIG_WARM : WARMUP;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Insertion sort: glibc's qsort asks sysinfo() for the memory size, a
 * system call the layers' seccomp profile does not allow. */
static double median_us(uint64_t *v, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		uint64_t x = v[i];
		size_t j = i;
		for (; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
	return (double)v[n / 2] / 1000.0;
}

static _Noreturn void die(const char *what, int r)
{
	fprintf(stderr, "BENCH fatal %s: %s\n", what, cdt_strerror(r));
	exit(2);
}

/* ---- the layers ---- */

static cdt_chan *chan;

/* Send as the layer API does: long bytes values go as sealed memfds
 * (docs/protocol.md section 4.1). */
static int bulk_send(cdt_msg *m)
{
	cdt_msg *b = NULL;
	int e = msg_bulk_seal(m, &b);

	if (e == 0)
		e = cdt_chan_send_wait(chan, b ? b : m, 5000);
	cdt_msg_free(b);
	return e;
}

/* Receive as the layer API does: bulk values opened before use. */
static int bulk_recv(cdt_msg **ret, int timeout_ms)
{
	cdt_msg *m;
	int e = cdt_chan_recv_wait(chan, &m, timeout_ms);

	if (e == 0 && (e = msg_bulk_resolve(m)) < 0)
		cdt_msg_free(m);
	if (e == 0)
		*ret = m;
	return e;
}

static cdt_msg *rt(cdt_msg *m, uint64_t id)
{
	cdt_msg *r;
	int e = bulk_send(m);

	if (e < 0)
		die("send", e);
	for (;;) {
		e = bulk_recv(&r, 5000);
		if (e < 0)
			die("recv", e);
		if (cdt_msg_call_id(r) == id && cdt_msg_kind(r) != CDT_KIND_CALL)
			return r;
		if (cdt_msg_kind(r) == CDT_KIND_CALL) { /* the broker's heartbeat */
			cdt_msg *p;
			if (cdt_msg_new(CDT_KIND_REPLY, cdt_msg_call_id(r), NULL, &p) < 0 ||
			    cdt_chan_send_wait(chan, p, 5000) < 0)
				die("heartbeat", -EIO);
			cdt_msg_free(p);
		}
		cdt_msg_free(r);
	}
}

static void layer_client(void)
{
	static uint8_t blob[1048576];
	static uint64_t t[ITER];
	const char *methods[] = {"conduit.ping", "bench.echo"};
	uint64_t id = 1;

	for (size_t k = 0; k < 2; k++)
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			/* Quiet while the driver reads the broker's CPU time. */
			const struct timespec quiet = {0, 200 * 1000 * 1000};
			fprintf(stderr, "BENCH mark\n");
			nanosleep(&quiet, NULL);
			int n = iters_of(sizes[s]);
			for (int i = -warm_of(sizes[s]); i < n; i++) {
				cdt_msg *m, *r;
				uint64_t t0;
				if (cdt_msg_new(CDT_KIND_CALL, id, methods[k], &m) < 0 ||
				    cdt_msg_add_bytes(m, "x", blob, sizes[s]) < 0)
					die("msg", -ENOMEM);
				t0 = now_ns();
				r = rt(m, id++);
				if (i >= 0)
					t[i] = now_ns() - t0;
				if (cdt_msg_kind(r) != CDT_KIND_REPLY)
					die(cdt_msg_name(r), -EPROTO);
				cdt_msg_free(m);
				cdt_msg_free(r);
			}
			fprintf(stderr, "BENCH %s %zu %.1f\n", methods[k], sizes[s],
				median_us(t, (size_t)n));
		}
	fprintf(stderr, "BENCH mark\n");
	nanosleep(&(struct timespec){0, 200 * 1000 * 1000}, NULL);
	fprintf(stderr, "BENCH done\n");
}

static void layer_echo(void)
{
	for (;;) {
		cdt_msg *m, *r;
		const uint8_t *p = NULL;
		size_t n = 0;
		int e = bulk_recv(&m, -1);
		if (e < 0)
			exit(e == -CDT_E_CLOSED ? 0 : 2);
		if (cdt_msg_kind(m) != CDT_KIND_CALL) {
			cdt_msg_free(m);
			continue;
		}
		if (cdt_msg_new(CDT_KIND_REPLY, cdt_msg_call_id(m), NULL, &r) < 0)
			die("reply", -ENOMEM);
		if (cdt_msg_get_bytes(m, "x", &p, &n) == 0 && cdt_msg_add_bytes(r, "x", p, n) < 0)
			die("reply", -ENOMEM);
		e = bulk_send(r);
		if (e < 0)
			die("send", e);
		cdt_msg_free(m);
		cdt_msg_free(r);
	}
}

static int run_layer(const char *mode)
{
	const char *provide = strcmp(mode, "echo") == 0 ? "bench.echo" : "";
	cdt_keys *keys;
	cdt_msg *m;
	int r = cdt_init();

	if (r == 0)
		r = cdt_keys_recv(4, &keys);
	if (r < 0)
		die("keys", r);
	close(4);
	r = cdt_chan_new(3, keys, CDT_ROLE_LAYER, &chan);
	cdt_keys_free(keys);
	if (r < 0)
		die("chan", r);
	if (cdt_msg_new(CDT_KIND_HELLO, 0, NULL, &m) < 0 || cdt_msg_add_u64(m, "version", 1) < 0 ||
	    cdt_msg_add_string(m, "provide", provide, strlen(provide)) < 0 ||
	    cdt_msg_add_string(m, "publish", "", 0) < 0)
		die("hello", -ENOMEM);
	r = cdt_chan_send_wait(chan, m, 5000);
	cdt_msg_free(m);
	if (r == 0)
		r = cdt_chan_recv_wait(chan, &m, 5000);
	if (r < 0)
		die("hello", r);
	cdt_msg_free(m);
	if (strcmp(mode, "echo") == 0)
		layer_echo();
	if (strcmp(mode, "idle") == 0)
		fprintf(stderr, "BENCH ready\n");
	else
		layer_client();
	/* Stay until the driver stops the broker, answering heartbeats. */
	while (cdt_chan_recv_wait(chan, &m, -1) == 0) {
		cdt_msg *p = NULL;
		if (cdt_msg_kind(m) == CDT_KIND_CALL) {
			if (cdt_msg_new(CDT_KIND_REPLY, cdt_msg_call_id(m), NULL, &p) < 0 ||
			    cdt_chan_send_wait(chan, p, 5000) < 0)
				die("heartbeat", -EIO);
		}
		cdt_msg_free(p);
		cdt_msg_free(m);
	}
	return 0;
}

/* ---- the driver ---- */

static void set_cpus(bool pinned)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	if (pinned)
		CPU_SET(0, &set);
	else
		for (int c = 0; c < CPU_SETSIZE && c < 1024; c++)
			CPU_SET(c, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0 && pinned)
		die("sched_setaffinity", -errno);
}

/* size bytes as datagrams of at most BIG bytes (the default socket buffer
 * cannot hold one 1 MiB datagram). */
static int raw_send(int fd, const uint8_t *buf, size_t size)
{
	for (size_t off = 0; off < size;) {
		size_t n = size - off > BIG ? BIG : size - off;
		if (send(fd, buf + off, n, MSG_NOSIGNAL) != (ssize_t)n)
			return -1;
		off += n;
	}
	return 0;
}

static int raw_recv(int fd, uint8_t *buf, size_t size)
{
	for (size_t off = 0; off < size;) {
		ssize_t n = recv(fd, buf + off, BIG, 0);
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

static double raw_rt(size_t size)
{
	static uint8_t buf[1048576 + BIG];
	static uint64_t t[ITER];
	int n = iters_of(size), sp[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		die("socketpair", -errno);
	pid = fork();
	if (pid < 0)
		die("fork", -errno);
	if (pid == 0) {
		/* The whole request, then the whole answer. */
		close(sp[0]);
		while (raw_recv(sp[1], buf, size) == 0)
			if (raw_send(sp[1], buf, size) < 0)
				_exit(1);
		_exit(0);
	}
	close(sp[1]);
	for (int i = -warm_of(size); i < n; i++) {
		uint64_t t0 = now_ns();
		if (raw_send(sp[0], buf, size) < 0 || raw_recv(sp[0], buf, size) < 0)
			die("raw", -EIO);
		if (i >= 0)
			t[i] = now_ns() - t0;
	}
	close(sp[0]);
	waitpid(pid, NULL, 0);
	return median_us(t, (size_t)n);
}

/* CPU time the broker process (all threads: it has one) has used, in ns. */
static uint64_t cpu_ns(pid_t pid)
{
	char path[64];
	unsigned long long ns = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%llu", &ns) != 1)
			ns = 0;
		fclose(f);
	}
	return ns;
}

static int broker_run(const char *broker, const char *dir, bool pinned)
{
	char policy[256], log[256], audit[256], line[256];
	uint64_t cpu[8];
	size_t marks = 0;
	int waited;
	pid_t pid;
	FILE *f;

	snprintf(policy, sizeof(policy), "%s/bench.policy", dir);
	snprintf(log, sizeof(log), "%s/broker-%d.err", dir, pinned);
	snprintf(audit, sizeof(audit), "%s/audit-%d.log", dir, pinned);
	pid = fork();
	if (pid < 0)
		die("fork", -errno);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execl(broker, broker, "--policy", policy, "--audit", audit, (char *)NULL);
		_exit(127);
	}
	for (waited = 0; waited < 120000; waited += 20) {
		bool done = false;
		size_t seen = 0;
		struct timespec tick = {0, 20 * 1000 * 1000};
		f = fopen(log, "r");
		while (f && fgets(line, sizeof(line), f)) {
			done |= strstr(line, "BENCH done") || strstr(line, "BENCH fatal") ||
				strstr(line, "killed by") || strstr(line, "exited with");
			seen += strstr(line, "BENCH mark") != NULL;
		}
		/* The client is quiet for 200 ms after a mark: the broker's
		 * CPU time between two marks is the cell's. */
		while (marks < seen && marks < sizeof(cpu) / sizeof(cpu[0]))
			cpu[marks++] = cpu_ns(pid);
		if (f)
			fclose(f);
		if (done)
			break;
		nanosleep(&tick, NULL);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	f = fopen(log, "r");
	for (size_t cell = 0; f && fgets(line, sizeof(line), f);) {
		char method[32];
		size_t size;
		double us, raw;
		char *b = strstr(line, "BENCH ");
		if (!b || strstr(b, "BENCH mark"))
			continue;
		if (sscanf(b, "BENCH %31s %zu %lf", method, &size, &us) == 3) {
			raw = raw_rt(size);
			printf("%-8s %-14s %6zu B %8.1f us = %4.2fx raw (%.1f us)",
			       pinned ? "pinned" : "free", method, size, us, us / raw, raw);
			if (cell + 1 < marks)
				printf("   broker CPU %.1f us/call",
				       (double)(cpu[cell + 1] - cpu[cell]) / 1000.0 /
					       (iters_of(size) + warm_of(size)));
			if (size > BIG)
				printf("   %.0f MB/s one way", (double)size / us);
			printf("\n");
			cell++;
		} else {
			printf("%s", b);
		}
	}
	rewind(f);
	while (f && fgets(line, sizeof(line), f)) {
		if (strstr(line, "killed by") || strstr(line, "exited with"))
			printf("%s", line);
	}
	if (f)
		fclose(f);
	return 0;
}

static size_t count_in(const char *path, const char *needle)
{
	char line[1024];
	size_t n = 0;
	FILE *f = fopen(path, "r");

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return n;
}

/* Time from exec of the broker to 16 spawned (keyed) and 16 ready layers,
 * and the broker's RSS with them running. */
static void sixteen(const char *broker, const char *dir, const char *self)
{
	char policy[256], log[256], audit[256], status[64], line[256];
	uint64_t t0, t_spawn = 0, t_ready = 0;
	long rss = -1, anon = -1, file = -1, shmem = -1;
	pid_t pid;
	FILE *f;

	snprintf(policy, sizeof(policy), "%s/sixteen.policy", dir);
	snprintf(log, sizeof(log), "%s/sixteen.err", dir);
	snprintf(audit, sizeof(audit), "%s/sixteen.log", dir);
	f = fopen(policy, "w");
	if (!f)
		die("policy", -errno);
	fprintf(f, "version 1\n");
	for (int i = 0; i < 16; i++)
		fprintf(f,
			"layer l%d {\n    exec \"%s\" \"idle\"\n    user dynamic\n"
			"    syscalls stdio recvfd time\n"
			"    syscalls allow mlock munlock getsockopt\n}\n",
			i, self);
	fclose(f);
	chmod(policy, 0644);
	/* A previous run's files would count as this run's layers. */
	unlink(log);
	unlink(audit);
	t0 = now_ns();
	pid = fork();
	if (pid < 0)
		die("fork", -errno);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execl(broker, broker, "--policy", policy, "--audit", audit, (char *)NULL);
		_exit(127);
	}
	while (now_ns() - t0 < 30ull * 1000000000 && !t_ready) {
		if (!t_spawn && count_in(audit, "\"event\":\"spawn\"") >= 16)
			t_spawn = now_ns();
		if (count_in(log, "BENCH ready") >= 16)
			t_ready = now_ns();
	}
	snprintf(status, sizeof(status), "/proc/%d/status", (int)pid);
	f = fopen(status, "r");
	while (f && fgets(line, sizeof(line), f)) {
		(void)(sscanf(line, "VmRSS: %ld kB", &rss) == 1 ||
		       sscanf(line, "RssAnon: %ld kB", &anon) == 1 ||
		       sscanf(line, "RssFile: %ld kB", &file) == 1 ||
		       sscanf(line, "RssShmem: %ld kB", &shmem) == 1);
	}
	if (f)
		fclose(f);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	printf("\n16 sandboxed layers: spawned (key written) %.1f ms, all ready %.1f ms after the\n"
	       "broker's fork (policy compile included); broker RSS with 16 ready layers %ld kB\n"
	       "(anonymous %ld kB, file %ld kB, shared memory of the rings %ld kB)\n",
	       t_spawn ? (double)(t_spawn - t0) / 1e6 : -1.0,
	       t_ready ? (double)(t_ready - t0) / 1e6 : -1.0, rss, anon, file, shmem);
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/conduit-bench-broker.XXXXXX", self[4096], path[256];
	ssize_t n;
	FILE *f;

	if (argc == 2 && (strcmp(argv[1], "client") == 0 || strcmp(argv[1], "echo") == 0 ||
			  strcmp(argv[1], "idle") == 0))
		return run_layer(argv[1]);
	/* --sixteen N: only the 16-layer spawn and RSS figure, N times (its
	 * spread between runs is the machine's load and the page cache). */
	int only16 = argc == 4 && strcmp(argv[2], "--sixteen") == 0 ? atoi(argv[3]) : 0;
	if (argc != 2 && (only16 < 1 || only16 > 100)) {
		fprintf(stderr, "usage: %s BROKER [--sixteen N]   (as root)\n", argv[0]);
		return 2;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0 || !mkdtemp(dir) || chmod(dir, 0755) < 0)
		die("setup", -errno);
	self[n] = 0;
	for (int i = 0; i < only16; i++)
		sixteen(argv[1], dir, self);
	if (only16)
		goto out;
	snprintf(path, sizeof(path), "%s/bench.policy", dir);
	f = fopen(path, "w");
	if (!f)
		die("policy", -errno);
	for (int i = 0; i < 2; i++)
		fprintf(f,
			"%slayer %s {\n    exec \"%s\" \"%s\"\n    user dynamic\n"
			"    syscalls stdio recvfd time\n"
			"    syscalls allow mlock munlock getsockopt\n%s}\n",
			i ? "" : "version 1\n", i ? "client" : "echo", self, i ? "client" : "echo",
			i ? "    allow conduit.ping\n    allow bench.echo\n"
			  : "    provide bench.echo\n");
	fclose(f);
	chmod(path, 0644);
	printf("conduit-bench-broker: median round trip of one call, %d calls each (%d at\n"
	       "1 MiB); conduit.ping is answered by the broker (empty reply), bench.echo is\n"
	       "routed to a layer that returns the bytes; raw = the same bytes both ways over\n"
	       "a socketpair between two processes (1 MiB as 64 KiB datagrams, the whole\n"
	       "request before the answer)\n\n",
	       ITER, BIG_ITER);
	for (int pinned = 1; pinned >= 0; pinned--) {
		set_cpus(pinned);
		broker_run(argv[1], dir, pinned);
	}
	set_cpus(false);
	sixteen(argv[1], dir, self);
out:
	if (getenv("BENCH_KEEP"))
		return 0;
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	return system(path) == 0 ? 0 : 1;
}
