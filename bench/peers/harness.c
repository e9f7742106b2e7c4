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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_TIMEOUT_MS 20000
#define WARMUP_CALLS	 64
#define WARMUP_CALLS_BIG 4

/* Latency histogram: exact below 64 ns, then 32 buckets per power of two
 * (under 3.2 % error), up to 2^40 ns. */
#define HIST_SUB     32
#define HIST_LINEAR  64
#define HIST_TOP_BIT 40
#define HIST_BUCKETS (HIST_LINEAR + (HIST_TOP_BIT - 6 + 1) * HIST_SUB)

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

static void env_close(struct peers_env *env)
{
	for (unsigned i = 0; i < PEERS_MAX_CLIENTS; i++) {
		if (env->server_fds[i] >= 0)
			close(env->server_fds[i]);
		if (env->client_fds[i] >= 0)
			close(env->client_fds[i]);
		env->server_fds[i] = env->client_fds[i] = -1;
	}
}

static int env_init(const struct peers_ops *ops, const struct peers_config *cfg, size_t size,
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
	cell++;
	snprintf(env->dbus_name, sizeof(env->dbus_name), "org.conduit.Bench.P%ld.C%u",
		 (long)getpid(), cell);
	snprintf(env->zmq_endpoint, sizeof(env->zmq_endpoint), "ipc://%s/zmq-%u.sock", cfg->tmpdir,
		 cell);
	if (ops->sock_type) {
		for (unsigned i = 0; i < nclients; i++) {
			if (socketpair(AF_UNIX, ops->sock_type | SOCK_CLOEXEC, 0, fds) < 0) {
				int r = -errno;

				env_close(env);
				return r;
			}
			env->server_fds[i] = fds[0];
			env->client_fds[i] = fds[1];
		}
	}
	if (ops->prepare) {
		int r = ops->prepare(env);

		if (r < 0) {
			env_close(env);
			return r;
		}
	}
	return 0;
}

/* Waits up to READY_TIMEOUT_MS for one byte per process on fd. */
static int wait_ready(int fd, unsigned count)
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

static void child_setup(pid_t parent, bool pinned)
{
	/* A crashed or killed harness must not leave servers behind. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1);
	if (peers_pin(0, pinned) < 0)
		_exit(1);
}

static int server_start(const struct peers_ops *ops, struct peers_env *env, bool pinned,
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
		child_setup(parent, pinned);
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
	r = wait_ready(p[0], 1);
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
static int server_stop(pid_t pid)
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

static void payload_fill(unsigned char *buf, size_t size)
{
	for (size_t i = 0; i < size; i++)
		buf[i] = (unsigned char)(i * 131u + 7u);
}

/* The first 8 bytes of every request carry its sequence number, so a reply
 * that belongs to another call is caught even when the rest is not compared. */
static void seq_put(unsigned char *buf, uint64_t seq)
{
	memcpy(buf, &seq, sizeof(seq));
}

static uint64_t seq_get(const unsigned char *buf)
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
	payload_fill(req, size);
	for (unsigned i = 0; i < warm; i++, seq++) {
		seq_put(req, seq);
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
			seq_put(req, seq);
			r = one_call(ops, cl, req, rep, size);
			if (r < 0)
				goto out;
			r = -EBADMSG;
			if (seq_get(rep) != seq)
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
	r = env_init(ops, cfg, size, 1, false, &env);
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
	r = server_start(ops, &env, pinned, &server);
	if (r < 0)
		goto out;
	r = ops->open(&env, 0, &cl);
	if (r < 0)
		goto out;
	r = latency_runs(ops, cfg, cl, size, &res);
out:
	if (cl)
		ops->close(cl);
	/* Before env_close(): the server must not see its peers go away first. */
	if (server > 0) {
		int rs = server_stop(server);

		if (r == 0)
			r = rs;
	}
	env_close(&env);
	if (r == 0)
		*ret = res;
	return r;
}

/* ---- throughput: pipelined clients in their own processes ---- */

struct tput_slot {
	uint64_t calls;
	uint64_t start_ns, end_ns;
	int err;
	uint64_t hist[HIST_BUCKETS];
};

static unsigned hist_index(uint64_t v)
{
	if (v < HIST_LINEAR)
		return (unsigned)v;
	if (v >= (UINT64_C(1) << (HIST_TOP_BIT + 1)))
		return HIST_BUCKETS - 1;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	return HIST_LINEAR + (msb - 6) * HIST_SUB + (unsigned)((v >> (msb - 5)) & (HIST_SUB - 1));
}

static double hist_value(unsigned idx)
{
	if (idx < HIST_LINEAR)
		return idx;
	unsigned k = (idx - HIST_LINEAR) / HIST_SUB, s = (idx - HIST_LINEAR) % HIST_SUB;
	/* Middle of the bucket. */
	return ((double)(HIST_SUB + s) + 0.5) * (double)(UINT64_C(1) << (k + 1));
}

static double hist_quantile(const uint64_t *hist, uint64_t total, double q)
{
	uint64_t want = (uint64_t)((double)total * q), seen = 0;

	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += hist[i];
		if (seen > want)
			return hist_value(i);
	}
	return hist_value(HIST_BUCKETS - 1);
}

static int tput_client_loop(const struct peers_ops *ops, const struct peers_config *cfg, void *cl,
			    size_t size, struct tput_slot *slot)
{
	unsigned char *req = malloc(size), *rep = malloc(size);
	uint64_t sent_at[64], seq = 0, expect = 0, end;
	unsigned depth = cfg->depth, inflight = 0;
	int r = -ENOMEM;

	if (!req || !rep)
		goto out;
	r = -EINVAL;
	if (depth == 0 || depth > sizeof(sent_at) / sizeof(sent_at[0]))
		goto out;
	payload_fill(req, size);
	slot->start_ns = peers_now_ns();
	end = slot->start_ns + cfg->tput_ns;
	for (; inflight < depth; inflight++, seq++) {
		seq_put(req, seq);
		sent_at[seq % depth] = peers_now_ns();
		r = ops->send(cl, req, size);
		if (r < 0)
			goto out;
	}
	while (inflight > 0) {
		r = ops->recv(cl, rep, size);
		if (r < 0)
			goto out;
		uint64_t t = peers_now_ns();
		r = -EBADMSG;
		if (seq_get(rep) != expect || memcmp(rep + 8, req + 8, size - 8) != 0)
			goto out;
		slot->hist[hist_index(t - sent_at[expect % depth])]++;
		slot->calls++;
		expect++;
		inflight--;
		if (t < end) {
			seq_put(req, seq);
			sent_at[seq % depth] = peers_now_ns();
			r = ops->send(cl, req, size);
			if (r < 0)
				goto out;
			seq++;
			inflight++;
		}
	}
	slot->end_ns = peers_now_ns();
	r = 0;
out:
	free(req);
	free(rep);
	return r;
}

static void tput_client(const struct peers_ops *ops, const struct peers_config *cfg,
			struct peers_env *env, unsigned idx, int ready_fd, int go_fd,
			struct tput_slot *slot)
{
	void *cl = NULL;
	char byte = 1;
	int r = ops->open(env, idx, &cl);

	if (r == 0 && write(ready_fd, &byte, 1) != 1)
		r = -EPIPE;
	/* Every client starts at once: the harness closes the go pipe. */
	if (r == 0 && read(go_fd, &byte, 1) != 0)
		r = -EPROTO;
	if (r == 0)
		r = tput_client_loop(ops, cfg, cl, env->size, slot);
	if (cl)
		ops->close(cl);
	slot->err = r;
	_exit(r < 0 ? 1 : 0);
}

/* utime + stime of a process in ns, all its threads included. */
static int proc_cpu_ns(pid_t pid, uint64_t *ret_ns)
{
	char path[64], buf[1024];
	unsigned long long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: skip past the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -EBADMSG;
	long tck = sysconf(_SC_CLK_TCK);
	if (tck <= 0)
		return -EINVAL;
	*ret_ns = (uint64_t)((ut + st) * (1000000000.0 / (double)tck));
	return 0;
}

struct tput_run {
	double calls_per_s, p50, p99, cpu_ns, daemon_ns;
};

static int tput_one_run(const struct peers_ops *ops, const struct peers_config *cfg,
			struct peers_env *env, bool pinned, pid_t server, struct tput_slot *slots,
			struct tput_run *ret)
{
	int ready[2], go[2], r;
	pid_t pids[PEERS_MAX_CLIENTS] = {0}, parent = getpid();
	uint64_t srv0 = 0, srv1 = 0, dmn0 = 0, dmn1 = 0;
	unsigned started = 0;

	memset(slots, 0, sizeof(*slots) * env->nclients);
	if (pipe2(ready, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(go, O_CLOEXEC) < 0) {
		r = -errno;
		close(ready[0]);
		close(ready[1]);
		return r;
	}
	fflush(NULL);
	for (; started < env->nclients; started++) {
		pid_t pid = fork();

		if (pid < 0)
			break;
		if (pid == 0) {
			child_setup(parent, pinned);
			close(ready[0]);
			close(go[1]);
			tput_client(ops, cfg, env, started, ready[1], go[0], &slots[started]);
		}
		pids[started] = pid;
	}
	close(ready[1]);
	close(go[0]);
	r = started == env->nclients ? wait_ready(ready[0], started) : -EAGAIN;
	if (r == 0)
		r = proc_cpu_ns(server, &srv0);
	if (r == 0 && ops->needs_dbus)
		r = proc_cpu_ns(cfg->dbus_pid, &dmn0);
	close(go[1]); /* go, or with r < 0: EOF makes the clients fail and exit */
	close(ready[0]);
	for (unsigned i = 0; i < started; i++) {
		int status;

		if (r < 0)
			kill(pids[i], SIGKILL);
		while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
			;
		if (r == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
			r = slots[i].err < 0 ? slots[i].err : -ECHILD;
	}
	if (r == 0)
		r = proc_cpu_ns(server, &srv1);
	if (r == 0 && ops->needs_dbus)
		r = proc_cpu_ns(cfg->dbus_pid, &dmn1);
	if (r < 0)
		return r;

	uint64_t calls = 0, t0 = UINT64_MAX, t1 = 0;
	static uint64_t hist[HIST_BUCKETS];
	memset(hist, 0, sizeof(hist));
	for (unsigned i = 0; i < env->nclients; i++) {
		calls += slots[i].calls;
		t0 = slots[i].start_ns < t0 ? slots[i].start_ns : t0;
		t1 = slots[i].end_ns > t1 ? slots[i].end_ns : t1;
		for (unsigned b = 0; b < HIST_BUCKETS; b++)
			hist[b] += slots[i].hist[b];
	}
	if (calls == 0 || t1 <= t0)
		return -EIO;
	ret->calls_per_s = (double)calls * 1e9 / (double)(t1 - t0);
	ret->p50 = hist_quantile(hist, calls, 0.50);
	ret->p99 = hist_quantile(hist, calls, 0.99);
	ret->daemon_ns = (double)(dmn1 - dmn0) / (double)calls;
	ret->cpu_ns = (double)(srv1 - srv0) / (double)calls + ret->daemon_ns;
	return 0;
}

int peers_measure_tput(const struct peers_ops *ops, const struct peers_config *cfg, size_t size,
		       unsigned nclients, bool pinned, struct peers_tput *ret)
{
	struct peers_env env;
	struct tput_slot *slots = MAP_FAILED;
	size_t map_len = sizeof(*slots) * PEERS_MAX_CLIENTS;
	double cps[PEERS_RUNS_MAX], p50[PEERS_RUNS_MAX], p99[PEERS_RUNS_MAX];
	double cpu[PEERS_RUNS_MAX], dmn[PEERS_RUNS_MAX];
	pid_t server = 0;
	int r;

	if (nclients == 0 || nclients > PEERS_MAX_CLIENTS || cfg->runs == 0 ||
	    cfg->runs > PEERS_RUNS_MAX || size < sizeof(uint64_t))
		return -EINVAL;
	r = env_init(ops, cfg, size, nclients, true, &env);
	if (r < 0)
		return r;
	/* The clients write their counts and histograms here. */
	slots = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (slots == MAP_FAILED) {
		r = -errno;
		goto out;
	}
	r = peers_pin(0, pinned);
	if (r == 0 && ops->needs_dbus)
		r = peers_pin(cfg->dbus_pid, pinned);
	if (r == 0)
		r = server_start(ops, &env, pinned, &server);
	for (unsigned run = 0; r == 0 && run < cfg->runs; run++) {
		struct tput_run one = {0};

		r = tput_one_run(ops, cfg, &env, pinned, server, slots, &one);
		cps[run] = one.calls_per_s;
		p50[run] = one.p50;
		p99[run] = one.p99;
		cpu[run] = one.cpu_ns;
		dmn[run] = one.daemon_ns;
	}
out:
	if (server > 0) {
		int rs = server_stop(server);

		if (r == 0)
			r = rs;
	}
	env_close(&env);
	if (slots != MAP_FAILED)
		munmap(slots, map_len);
	if (r < 0)
		return r;
	ret->calls_per_s = peers_median(cps, cfg->runs);
	ret->p50_ns = peers_median(p50, cfg->runs);
	ret->p99_ns = peers_median(p99, cfg->runs);
	ret->server_cpu_ns = peers_median(cpu, cfg->runs);
	ret->daemon_cpu_ns = peers_median(dmn, cfg->runs);
	return 0;
}
