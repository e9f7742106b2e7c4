/* SPDX-License-Identifier: MIT */
/*
 * Throughput: several client processes keep calls in flight through one
 * server (and the dbus-daemon where there is one); calls per second, call
 * latency quantiles and the server's CPU time per call.
 */
#include "peers.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* Latency histogram: exact below 64 ns, then 32 buckets per power of two
 * (under 3.2 % error), up to 2^40 ns. */
#define HIST_SUB     32
#define HIST_LINEAR  64
#define HIST_TOP_BIT 40
#define HIST_BUCKETS (HIST_LINEAR + (HIST_TOP_BIT - 6 + 1) * HIST_SUB)

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
	peers_payload_fill(req, size);
	slot->start_ns = peers_now_ns();
	end = slot->start_ns + cfg->tput_ns;
	for (; inflight < depth; inflight++, seq++) {
		peers_seq_put(req, seq);
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
		if (peers_seq_get(rep) != expect || memcmp(rep + 8, req + 8, size - 8) != 0)
			goto out;
		slot->hist[hist_index(t - sent_at[expect % depth])]++;
		slot->calls++;
		expect++;
		inflight--;
		if (t < end) {
			peers_seq_put(req, seq);
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
int peers_proc_cpu_ns(pid_t pid, uint64_t *ret_ns)
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

/* CPU of the serving side: ret_total_ns includes ret_daemon_ns. */
static int server_cpu(const struct peers_ops *ops, const struct peers_config *cfg, pid_t server,
		      uint64_t *ret_total_ns, uint64_t *ret_daemon_ns)
{
	uint64_t srv, dmn = 0;
	int r;

	if (ops->server_cpu)
		return ops->server_cpu(server, ret_total_ns, ret_daemon_ns);
	r = peers_proc_cpu_ns(server, &srv);
	if (r == 0 && ops->needs_dbus)
		r = peers_proc_cpu_ns(cfg->dbus_pid, &dmn);
	if (r < 0)
		return r;
	*ret_total_ns = srv + dmn;
	*ret_daemon_ns = dmn;
	return 0;
}

struct tput_run {
	double calls_per_s, p50, p99;
	uint64_t calls, cpu_ns, daemon_ns; /* server CPU includes the daemon's */
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
			peers_child_setup(parent, pinned);
			close(ready[0]);
			close(go[1]);
			tput_client(ops, cfg, env, started, ready[1], go[0], &slots[started]);
		}
		pids[started] = pid;
	}
	close(ready[1]);
	close(go[0]);
	r = started == env->nclients ? peers_wait_ready(ready[0], started) : -EAGAIN;
	if (r == 0)
		r = server_cpu(ops, cfg, server, &srv0, &dmn0);
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
		r = server_cpu(ops, cfg, server, &srv1, &dmn1);
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
	ret->calls = calls;
	ret->daemon_ns = dmn1 - dmn0;
	ret->cpu_ns = srv1 - srv0;
	return 0;
}

int peers_measure_tput(const struct peers_ops *ops, const struct peers_config *cfg, size_t size,
		       unsigned nclients, bool pinned, struct peers_tput *ret)
{
	struct peers_env env;
	struct tput_slot *slots = MAP_FAILED;
	size_t map_len = sizeof(*slots) * PEERS_MAX_CLIENTS;
	double cps[PEERS_RUNS_MAX], p50[PEERS_RUNS_MAX], p99[PEERS_RUNS_MAX];
	uint64_t calls = 0, cpu = 0, dmn = 0;
	pid_t server = 0;
	int r;

	if (nclients == 0 || nclients > PEERS_MAX_CLIENTS || cfg->runs == 0 ||
	    cfg->runs > PEERS_RUNS_MAX || size < sizeof(uint64_t))
		return -EINVAL;
	r = peers_env_init(ops, cfg, size, nclients, true, &env);
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
		r = peers_server_start(ops, &env, pinned, &server);
	for (unsigned run = 0; r == 0 && run < cfg->runs; run++) {
		struct tput_run one = {0};

		r = tput_one_run(ops, cfg, &env, pinned, server, slots, &one);
		cps[run] = one.calls_per_s;
		p50[run] = one.p50;
		p99[run] = one.p99;
		/* CPU time comes in clock ticks (10 ms): summed over all runs, not a
		 * median of per-run figures that are a few ticks each. */
		calls += one.calls;
		cpu += one.cpu_ns;
		dmn += one.daemon_ns;
	}
out:
	if (server > 0) {
		int rs = peers_server_stop(server);

		if (r == 0)
			r = rs;
	}
	peers_env_close(&env);
	if (slots != MAP_FAILED)
		munmap(slots, map_len);
	if (r < 0)
		return r;
	ret->calls_per_s = peers_median(cps, cfg->runs);
	ret->p50_ns = peers_median(p50, cfg->runs);
	ret->p99_ns = peers_median(p99, cfg->runs);
	ret->calls = calls;
	ret->cpu_total_ns = cpu;
	ret->daemon_total_ns = dmn;
	ret->server_cpu_ns = (double)cpu / (double)calls;
	ret->daemon_cpu_ns = (double)dmn / (double)calls;
	return 0;
}
