/* SPDX-License-Identifier: MIT */
/*
 * The measurement harness: forks the server of a workload, pins every
 * process of a cell to the same CPU (or none), times round trips, runs the
 * pipelined throughput clients and reads server CPU time from /proc.
 */
#include "peers.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_TIMEOUT_MS 20000
#define WARMUP_CALLS	 64
#define WARMUP_CALLS_BIG 4

uint64_t peers_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int peers_pin(pid_t pid, bool pinned)
{
	cpu_set_t set;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	CPU_ZERO(&set);
	if (pinned || ncpu < 1)
		CPU_SET(0, &set);
	else
		for (long i = 0; i < ncpu && i < CPU_SETSIZE; i++)
			CPU_SET((int)i, &set);
	if (sched_setaffinity(pid, sizeof(set), &set) < 0)
		return -errno;
	return 0;
}

int peers_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int peers_write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double peers_median(double *v, unsigned n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- cells: environment and server process ---- */

void peers_env_close(struct peers_env *env)
{
	for (unsigned i = 0; i < PEERS_MAX_CLIENTS; i++) {
		if (env->server_fds[i] >= 0)
			close(env->server_fds[i]);
		if (env->client_fds[i] >= 0)
			close(env->client_fds[i]);
		env->server_fds[i] = env->client_fds[i] = -1;
	}
	if (env->listen_fd >= 0) {
		struct sockaddr_un sa;
		socklen_t len = sizeof(sa);

		/* A unix socket the server bound: its name goes with it. */
		if (getsockname(env->listen_fd, (struct sockaddr *)&sa, &len) == 0 &&
		    sa.sun_family == AF_UNIX && len > offsetof(struct sockaddr_un, sun_path) &&
		    sa.sun_path[0] == '/')
			(void)unlink(sa.sun_path);
		close(env->listen_fd);
		env->listen_fd = -1;
	}
}

int peers_env_init(const struct peers_ops *ops, const struct peers_config *cfg, size_t size,
		   unsigned nclients, bool pipelined, struct peers_env *env)
{
	/* Fresh names per cell: a killed server's name or socket file may still
	 * be held by the daemon or the kernel when the next server starts. */
	static unsigned cell;
	int fds[2];

	memset(env, 0, sizeof(*env));
	for (unsigned i = 0; i < PEERS_MAX_CLIENTS; i++)
		env->server_fds[i] = env->client_fds[i] = -1;
	env->size = size;
	env->nclients = nclients;
	env->pipelined = pipelined;
	env->sock_type = ops->sock_type;
	env->dbus_address = cfg->dbus_address;
	env->tmpdir = cfg->tmpdir;
	env->listen_fd = -1;
	cell++;
	snprintf(env->dbus_name, sizeof(env->dbus_name), "org.conduit.Bench.P%ld.C%u",
		 (long)getpid(), cell);
	snprintf(env->zmq_endpoint, sizeof(env->zmq_endpoint), "ipc://%s/zmq-%u.sock", cfg->tmpdir,
		 cell);
	if (ops->sock_type) {
		for (unsigned i = 0; i < nclients; i++) {
			if (socketpair(AF_UNIX, ops->sock_type | SOCK_CLOEXEC, 0, fds) < 0) {
				int r = -errno;

				peers_env_close(env);
				return r;
			}
			env->server_fds[i] = fds[0];
			env->client_fds[i] = fds[1];
		}
	}
	if (ops->prepare) {
		int r = ops->prepare(env);

		if (r < 0) {
			peers_env_close(env);
			return r;
		}
	}
	return 0;
}

/* Waits up to READY_TIMEOUT_MS for one byte per process on fd. */
int peers_wait_ready(int fd, unsigned count)
{
	char byte;

	while (count > 0) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int n = poll(&pfd, 1, READY_TIMEOUT_MS);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
		ssize_t r = read(fd, &byte, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -EPIPE; /* a process died before it was ready */
		count--;
	}
	return 0;
}

void peers_child_setup(pid_t parent, bool pinned)
{
	/* A crashed or killed harness must not leave servers behind. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1);
	if (peers_pin(0, pinned) < 0)
		_exit(1);
}

int peers_server_start(const struct peers_ops *ops, struct peers_env *env, bool pinned,
		       pid_t *ret_pid)
{
	int p[2], r;
	pid_t parent = getpid(), pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		return r;
	}
	if (pid == 0) {
		peers_child_setup(parent, pinned);
		close(p[0]);
		for (unsigned i = 0; i < PEERS_MAX_CLIENTS; i++)
			if (env->client_fds[i] >= 0)
				close(env->client_fds[i]);
		r = ops->serve(env, p[1]);
		fprintf(stderr, "bench-peers: %s server: %s\n", ops->name, strerror(-r));
		_exit(1);
	}
	close(p[1]);
	for (unsigned i = 0; i < PEERS_MAX_CLIENTS; i++) {
		if (env->server_fds[i] >= 0)
			close(env->server_fds[i]);
		env->server_fds[i] = -1;
	}
	r = peers_wait_ready(p[0], 1);
	close(p[0]);
	if (r < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return r;
	}
	*ret_pid = pid;
	return 0;
}

/* Stops the server; fails if it had died on its own. */
int peers_server_stop(pid_t pid)
{
	int status;
	bool alive = waitpid(pid, &status, WNOHANG) == 0;

	if (!alive)
		return -ECHILD;
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return 0;
}

void peers_payload_fill(unsigned char *buf, size_t size)
{
	for (size_t i = 0; i < size; i++)
		buf[i] = (unsigned char)(i * 131u + 7u);
}

/* The first 8 bytes of every request carry its sequence number, so a reply
 * that belongs to another call is caught even when the rest is not compared. */
void peers_seq_put(unsigned char *buf, uint64_t seq)
{
	memcpy(buf, &seq, sizeof(seq));
}

uint64_t peers_seq_get(const unsigned char *buf)
{
	uint64_t seq;

	memcpy(&seq, buf, sizeof(seq));
	return seq;
}

static int one_call(const struct peers_ops *ops, void *cl, const void *req, void *rep, size_t len)
{
	int r;

	if (ops->call)
		return ops->call(cl, req, rep, len);
	r = ops->send(cl, req, len);
	if (r < 0)
		return r;
	return ops->recv(cl, rep, len);
}

static int latency_runs(const struct peers_ops *ops, const struct peers_config *cfg, void *cl,
			size_t size, struct peers_latency *ret)
{
	unsigned char *req = malloc(size), *rep = malloc(size);
	unsigned warm = size >= PEERS_CHUNK ? WARMUP_CALLS_BIG : WARMUP_CALLS;
	uint64_t seq = 1;
	int r = -ENOMEM;

	if (!req || !rep)
		goto out;
	peers_payload_fill(req, size);
	for (unsigned i = 0; i < warm; i++, seq++) {
		peers_seq_put(req, seq);
		r = one_call(ops, cl, req, rep, size);
		if (r < 0)
			goto out;
		r = -EBADMSG;
		if (memcmp(req, rep, size) != 0)
			goto out;
	}
	for (unsigned run = 0; run < cfg->runs; run++) {
		uint64_t t0 = peers_now_ns(), t1, iters = 0;

		do {
			peers_seq_put(req, seq);
			r = one_call(ops, cl, req, rep, size);
			if (r < 0)
				goto out;
			r = -EBADMSG;
			if (peers_seq_get(rep) != seq)
				goto out;
			seq++;
			iters++;
			t1 = peers_now_ns();
		} while (t1 - t0 < cfg->run_ns);
		if (memcmp(req, rep, size) != 0)
			goto out;
		ret->rtt_ns[run] = (double)(t1 - t0) / (double)iters;
	}
	ret->runs = cfg->runs;
	double sorted[PEERS_RUNS_MAX];
	memcpy(sorted, ret->rtt_ns, sizeof(sorted));
	ret->median_ns = peers_median(sorted, ret->runs);
	r = 0;
out:
	free(req);
	free(rep);
	return r;
}

int peers_measure_latency(const struct peers_ops *ops, const struct peers_config *cfg, size_t size,
			  bool pinned, struct peers_latency *ret)
{
	struct peers_env env;
	struct peers_latency res = {0};
	void *cl = NULL;
	pid_t server = 0;
	int r;

	if (cfg->runs == 0 || cfg->runs > PEERS_RUNS_MAX || size < sizeof(uint64_t))
		return -EINVAL;
	r = peers_env_init(ops, cfg, size, 1, false, &env);
	if (r < 0)
		return r;
	r = peers_pin(0, pinned);
	if (r < 0)
		goto out;
	if (ops->needs_dbus) {
		r = peers_pin(cfg->dbus_pid, pinned);
		if (r < 0)
			goto out;
	}
	r = peers_server_start(ops, &env, pinned, &server);
	if (r < 0)
		goto out;
	r = ops->open(&env, 0, &cl);
	if (r < 0)
		goto out;
	r = latency_runs(ops, cfg, cl, size, &res);
out:
	if (cl)
		ops->close(cl);
	/* Before peers_env_close(): the server must not see its peers go away first. */
	if (server > 0) {
		int rs = peers_server_stop(server);

		if (r == 0)
			r = rs;
	}
	peers_env_close(&env);
	if (r == 0)
		*ret = res;
	return r;
}
