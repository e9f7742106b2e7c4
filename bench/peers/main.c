/* SPDX-License-Identifier: MIT */
/*
 * conduit-bench-peers: runs every workload of the table below through the
 * same echo, pinned to CPU 0 and unpinned, and prints Markdown tables on
 * stdout (progress on stderr).  Exits 1 if any measurement failed.
 * bench/peers/run sets up the private dbus-daemon and calls this.
 */
#include "peers.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The rows of every table, in order.  A new workload is one line here. */
static const struct peers_ops *const workloads[] = {
	&peers_seqpacket_ops, /* first: the floor every ratio refers to */
	&peers_stream_ops,    &peers_conduit_routed_ops, &peers_conduit_service_ops,
	&peers_sdbus_ops,     &peers_libdbus_ops,	 &peers_zmq_ops,
	&peers_zmq_curve_ops,
};
#define NW (sizeof(workloads) / sizeof(workloads[0]))

static const size_t sizes[] = {64, 1024, 16 * 1024, 1024 * 1024};
static const char *const size_names[] = {"64 B", "1 KiB", "16 KiB", "1 MiB"};
#define NS	  (sizeof(sizes) / sizeof(sizes[0]))
#define SIZE_1MIB 3

static const unsigned client_counts[] = {1, 4, 16};
#define NC (sizeof(client_counts) / sizeof(client_counts[0]))

enum { PINNED, UNPINNED, NPIN };
static const char *const pin_names[] = {"pinned to CPU 0", "unpinned"};

struct cell {
	int err;      /* 0, or the negative errno of the failed measurement */
	bool skipped; /* filtered out by --only */
	double value; /* median RTT in ns */
};

struct tput_cell {
	int err;
	bool skipped;
	struct peers_tput t;
};

static struct cell lat[NW][NS][NPIN];
static struct tput_cell tput[NW][NC][NPIN];

struct tput_samples {
	double cps[PEERS_RUNS_MAX], p50[PEERS_RUNS_MAX], p99[PEERS_RUNS_MAX];
	uint64_t calls, cpu_ns, daemon_ns;
};

/* 1 MiB calls pipelined: one caller keeps BULK_DEPTH of them in flight, so
 * that unpinned the caller's seal of the next value can overlap the
 * callee's work on the last one.  The raw socketpair rows are left out:
 * their echo servers write 1 MiB back while the client is still writing,
 * and once both sockets' buffers are full neither side reads. */
#define BULK_DEPTH 4
static struct tput_cell pbulk[NW][NPIN];
static struct tput_samples pbulk_samples[NW][NPIN];
static int status;

static bool built(const struct peers_ops *ops)
{
	return ops->serve != NULL;
}

/* --size: the one payload size of the round-trip cells (0: all). */
static size_t size_only;

/* --only: comma-separated parts of workload names; one match is enough. */
static bool wanted(const struct peers_ops *ops, const char *only)
{
	if (!only)
		return true;
	for (const char *p = only; *p;) {
		size_t n = strcspn(p, ",");
		for (const char *h = ops->name; n > 0 && *h; h++)
			if (strncmp(h, p, n) == 0)
				return true;
		p += n + (p[n] == ',');
	}
	return false;
}

static void cell_print(const struct cell *c, const struct cell *floor, const struct peers_ops *ops)
{
	if (!built(ops))
		printf(" not built yet |");
	else if (c->skipped)
		printf(" skipped |");
	else if (c->err)
		printf(" FAILED (%s) |", strerror(-c->err));
	else if (floor->err || floor->skipped)
		printf(" %.1f |", c->value / 1e3);
	else
		printf(" %.1f (%.2fx) |", c->value / 1e3, c->value / floor->value);
}

static void print_latency(int pin, const struct peers_config *cfg)
{
	printf("\n### Round trip, %s (median of %u runs of %.0f ms, taken in rounds; us, and "
	       "ratio to the floor)\n\n",
	       pin_names[pin], cfg->runs, (double)cfg->run_ns / 1e6);
	printf("| workload |");
	for (unsigned s = 0; s < NS; s++)
		printf(" %s |", size_names[s]);
	printf("\n|---|");
	for (unsigned s = 0; s < NS; s++)
		printf("---:|");
	printf("\n");
	for (unsigned w = 0; w < NW; w++) {
		printf("| %s |", workloads[w]->name);
		for (unsigned s = 0; s < NS; s++)
			cell_print(&lat[w][s][pin], &lat[0][s][pin], workloads[w]);
		printf("\n");
	}
}

/* Ratio of each row's RTT to each column's: the "N x faster than" figures
 * of the targets are read off the pinned ones. */
static void print_matrix(unsigned s, int pin)
{
	printf("\n### Ratio of round trips at %s, %s (row / column; < 1 means the row is "
	       "faster)\n\n| row / column |",
	       size_names[s], pin == PINNED ? "pinned" : "unpinned");
	for (unsigned w = 0; w < NW; w++)
		printf(" %u |", w + 1);
	printf("\n|---|");
	for (unsigned w = 0; w < NW; w++)
		printf("---:|");
	printf("\n");
	for (unsigned a = 0; a < NW; a++) {
		printf("| %u. %s |", a + 1, workloads[a]->name);
		for (unsigned b = 0; b < NW; b++) {
			const struct cell *x = &lat[a][s][pin], *y = &lat[b][s][pin];

			if (!built(workloads[a]) || !built(workloads[b]))
				printf(" - |");
			else if (x->err || y->err || x->skipped || y->skipped)
				printf(" n/a |");
			else
				printf(" %.2f |", x->value / y->value);
		}
		printf("\n");
	}
}

static void print_bulk(const struct peers_aead *aead, int aead_err)
{
	printf("\n### 1 MiB echo as bulk transfer (MB/s = 10^6 payload bytes delivered per "
	       "second one way, 1 MiB / RTT)\n\n");
	if (aead_err)
		printf("One-core AEAD: FAILED (%s)\n\n", strerror(-aead_err));
	else
		printf("One-core AEAD sealing of 1 MiB buffers, same run: XChaCha20-Poly1305 "
		       "%.0f MB/s, AES-256-GCM %s%.0f MB/s.\n\n",
		       aead->xchacha_mbps, aead->aesgcm_mbps > 0 ? "" : "(not available) ",
		       aead->aesgcm_mbps);
	printf("| workload | pinned MB/s | unpinned MB/s | pinned / XChaCha20 | "
	       "pinned / AES-GCM |\n|---|---:|---:|---:|---:|\n");
	for (unsigned w = 0; w < NW; w++) {
		const struct cell *p = &lat[w][SIZE_1MIB][PINNED];
		const struct cell *u = &lat[w][SIZE_1MIB][UNPINNED];
		double mb = (double)sizes[SIZE_1MIB] / 1e6;

		printf("| %s |", workloads[w]->name);
		if (!built(workloads[w])) {
			printf(" not built yet | | | |\n");
			continue;
		}
		if (p->err || p->skipped)
			printf(" n/a |");
		else
			printf(" %.0f |", mb / (p->value / 1e9));
		if (u->err || u->skipped)
			printf(" n/a |");
		else
			printf(" %.0f |", mb / (u->value / 1e9));
		if (p->err || p->skipped || aead_err) {
			printf(" n/a | n/a |\n");
			continue;
		}
		double rate = mb / (p->value / 1e9);
		printf(" %.0f %% |", 100 * rate / aead->xchacha_mbps);
		if (aead->aesgcm_mbps > 0)
			printf(" %.0f %% |\n", 100 * rate / aead->aesgcm_mbps);
		else
			printf(" n/a |\n");
	}
}

/* The one-core AEAD figure the channel's bytes compare with: Conduit seals
 * with AES-256-GCM where the CPU has it, else with XChaCha20-Poly1305. */
static double aead_ref(const struct peers_aead *aead, int aead_err, const char **ret_name)
{
	bool aes = !aead_err && aead->aesgcm_mbps > 0;

	*ret_name = aes ? "AES-256-GCM" : "XChaCha20-Poly1305";
	return aead_err ? 0 : aes ? aead->aesgcm_mbps : aead->xchacha_mbps;
}

/* MB/s of a pipelined 1 MiB cell, bytes carried both ways (an echo carries
 * 1 MiB each way per call), or false when it has none. */
static bool pbulk_get(unsigned w, int pin, double *ret_mbps)
{
	const struct tput_cell *t = &pbulk[w][pin];

	if (!built(workloads[w]) || t->err || t->skipped || t->t.calls_per_s <= 0)
		return false;
	*ret_mbps = t->t.calls_per_s * 2.0 * (double)sizes[SIZE_1MIB] / 1e6;
	return true;
}

static void print_pbulk(const struct peers_config *cfg, const struct peers_aead *aead,
			int aead_err)
{
	const char *name;
	double ref = aead_ref(aead, aead_err, &name);

	printf("\n### 1 MiB calls pipelined: one caller, %u in flight (median of %u runs of %.0f "
	       "ms, taken in rounds; MB/s = 10^6 bytes carried per second both ways, 2 MiB per "
	       "call)\n\n",
	       BULK_DEPTH, cfg->runs, (double)cfg->tput_ns / 1e6);
	printf("Percentages are of the one-core %s figure above. The raw socketpair rows are "
	       "left out: their echo servers write 1 MiB back while the client is still "
	       "writing, and with both sockets' buffers full neither side reads.\n\n",
	       name);
	printf("| workload | pinned MB/s | unpinned MB/s | pinned / %s | unpinned / %s | "
	       "pinned p50 ms | unpinned p50 ms |\n|---|---:|---:|---:|---:|---:|---:|\n",
	       name, name);
	for (unsigned w = 0; w < NW; w++) {
		double mb[NPIN];
		bool ok[NPIN];

		if (workloads[w]->sock_type != 0)
			continue;
		printf("| %s |", workloads[w]->name);
		if (!built(workloads[w])) {
			printf(" not built yet | | | | | |\n");
			continue;
		}
		for (int pin = 0; pin < NPIN; pin++) {
			const struct tput_cell *t = &pbulk[w][pin];

			ok[pin] = pbulk_get(w, pin, &mb[pin]);
			if (ok[pin])
				printf(" %.0f |", mb[pin]);
			else if (t->err)
				printf(" FAILED (%s) |", strerror(-t->err));
			else
				printf(" skipped |");
		}
		for (int pin = 0; pin < NPIN; pin++) {
			if (ok[pin] && ref > 0)
				printf(" %.0f %% |", 100 * mb[pin] / ref);
			else
				printf(" n/a |");
		}
		for (int pin = 0; pin < NPIN; pin++) {
			if (ok[pin])
				printf(" %.1f |", pbulk[w][pin].t.p50_ns / 1e6);
			else
				printf(" n/a |");
		}
		printf("\n");
	}
}

/* ---- DESIGN.md section 8, read off this run ---- */

static int row_of(const struct peers_ops *ops)
{
	for (unsigned w = 0; w < NW; w++)
		if (workloads[w] == ops)
			return (int)w;
	return -1;
}

/* The pinned and unpinned median of a cell, or false when it has none. */
static bool cell_get(const struct peers_ops *ops, unsigned s, int pin, double *ret_ns)
{
	int w = row_of(ops);
	const struct cell *c;

	if (w < 0 || !built(ops))
		return false;
	c = &lat[w][s][pin];
	if (c->err || c->skipped || c->value <= 0)
		return false;
	*ret_ns = c->value;
	return true;
}

/* One target: "value <= limit" on round trips (us), both read pinned; the
 * unpinned pair is shown beside it. */
static void target_rtt(const char *what, const struct peers_ops *row, unsigned s,
		       const struct peers_ops *ref, double factor)
{
	double v[NPIN], r[NPIN];
	bool ok[NPIN];

	for (int pin = 0; pin < NPIN; pin++)
		ok[pin] = cell_get(row, s, pin, &v[pin]) && cell_get(ref, s, pin, &r[pin]);
	printf("| %s |", what);
	for (int pin = 0; pin < NPIN; pin++) {
		if (ok[pin])
			printf(" %.1f us <= %.1f us (%.2fx) |", v[pin] / 1e3, factor * r[pin] / 1e3,
			       v[pin] / r[pin]);
		else
			printf(" n/a |");
	}
	if (!ok[PINNED])
		printf(" not measured |\n");
	else
		printf(" %s |\n", v[PINNED] <= factor * r[PINNED] ? "met" : "**not met**");
}

static void print_targets(const struct peers_aead *aead, int aead_err)
{
	const struct peers_ops *routed = &peers_conduit_routed_ops;
	double v[NPIN];
	bool ok[NPIN];

	printf("\n### Targets of DESIGN.md section 8 in this run (verdict on the pinned figures; "
	       "floor = raw SEQPACKET socketpair)\n\n");
	printf("| target | pinned | unpinned | verdict |\n|---|---|---|---|\n");
	target_rtt("broker service call, 64 B, <= 1.3x the floor", &peers_conduit_service_ops, 0,
		   &peers_seqpacket_ops, 1.3);
	target_rtt("routed call, 64 B, <= 2.6x the floor", routed, 0, &peers_seqpacket_ops, 2.6);
	target_rtt("routed call, 64 B, >= 2x faster than sd-bus via dbus-daemon", routed, 0,
		   &peers_sdbus_ops, 0.5);
	target_rtt("routed call, 64 B, >= 2x faster than ZeroMQ CURVE", routed, 0,
		   &peers_zmq_curve_ops, 0.5);
	target_rtt("routed call, 16 KiB, faster than sd-bus via dbus-daemon", routed, 2,
		   &peers_sdbus_ops, 1.0);

	/* Compare with the cipher the channel uses.  Bytes are counted both
	 * ways (the echo carries 1 MiB each way per round trip): every byte
	 * carried needs a seal and an open, so on one CPU the ceiling is half
	 * the one-core AEAD figure, which is the bound the target names. */
	const char *name;
	double ref = aead_ref(aead, aead_err, &name);
	double mb = 2.0 * (double)sizes[SIZE_1MIB] / 1e6;

	printf("| routed call, 1 MiB, bytes carried both ways >= 50 %% of one-core AEAD (%s, "
	       "%.0f MB/s) |",
	       name, ref);
	for (int pin = 0; pin < NPIN; pin++) {
		ok[pin] = ref > 0 && cell_get(routed, SIZE_1MIB, pin, &v[pin]);
		if (ok[pin])
			printf(" %.0f MB/s = %.0f %% |", mb / (v[pin] / 1e9),
			       100 * mb / (v[pin] / 1e9) / ref);
		else
			printf(" n/a |");
	}
	if (!ok[PINNED])
		printf(" not measured |\n");
	else
		printf(" %s |\n", mb / (v[PINNED] / 1e9) >= 0.5 * ref ? "met" : "**not met**");

	/* The same target with BULK_DEPTH calls in flight, where unpinned the
	 * two layers' AEAD passes can overlap; the verdict stays pinned. */
	int w = row_of(routed);
	printf("| routed call, 1 MiB, %d calls in flight, bytes carried both ways >= 50 %% of "
	       "one-core AEAD |",
	       BULK_DEPTH);
	for (int pin = 0; pin < NPIN; pin++) {
		ok[pin] = ref > 0 && w >= 0 && pbulk_get((unsigned)w, pin, &v[pin]);
		if (ok[pin])
			printf(" %.0f MB/s = %.0f %% |", v[pin], 100 * v[pin] / ref);
		else
			printf(" n/a |");
	}
	if (!ok[PINNED])
		printf(" not measured |\n");
	else
		printf(" %s |\n", v[PINNED] >= 0.5 * ref ? "met" : "**not met**");
}

static void print_tput(const struct peers_config *cfg)
{
	printf("\n### Throughput: 64 B echo, %u calls in flight per client, one server "
	       "(median of %u runs of %.0f ms, taken in rounds)\n\n",
	       cfg->depth, cfg->runs, (double)cfg->tput_ns / 1e6);
	printf("Server CPU per call counts the serving process and, for D-Bus, the "
	       "dbus-daemon, for Conduit the broker and its echo layer (the daemon or broker "
	       "also shown alone), from utime+stime in /proc, summed over all "
	       "runs.  ZeroMQ rows pipeline with DEALER clients against a ROUTER server: REQ "
	       "allows one call in flight.\n\n");
	printf("| workload | clients | pinning | calls/s | p50 us | p99 us | server CPU/call us | "
	       "dbus-daemon or broker CPU/call us |\n|---|---:|---|---:|---:|---:|---:|---:|\n");
	for (unsigned w = 0; w < NW; w++) {
		for (int pin = 0; pin < NPIN; pin++) {
			for (unsigned c = 0; c < NC; c++) {
				const struct tput_cell *t = &tput[w][c][pin];

				printf("| %s | %u | %s |", workloads[w]->name, client_counts[c],
				       pin == PINNED ? "CPU 0" : "none");
				if (!built(workloads[w]))
					printf(" not built yet | | | | |\n");
				else if (t->skipped)
					printf(" skipped | | | | |\n");
				else if (t->err)
					printf(" FAILED (%s) | | | | |\n", strerror(-t->err));
				else if (workloads[w]->needs_dbus || workloads[w]->server_cpu)
					printf(" %.0f | %.1f | %.1f | %.2f | %.2f |\n",
					       t->t.calls_per_s, t->t.p50_ns / 1e3,
					       t->t.p99_ns / 1e3, t->t.server_cpu_ns / 1e3,
					       t->t.daemon_cpu_ns / 1e3);
				else
					printf(" %.0f | %.1f | %.1f | %.2f | - |\n",
					       t->t.calls_per_s, t->t.p50_ns / 1e3,
					       t->t.p99_ns / 1e3, t->t.server_cpu_ns / 1e3);
			}
			if (!built(workloads[w]))
				break; /* one placeholder line set is enough */
		}
	}
}

static bool usable(const struct peers_ops *ops, const struct peers_config *cfg, int *ret_err)
{
	if (ops->needs_dbus && (!cfg->dbus_address || cfg->dbus_pid <= 0)) {
		*ret_err = -ENOTCONN;
		return false;
	}
	return true;
}

/* Rounds: every cell gets one run (with a fresh server) per round, and the
 * rounds repeat.  On a shared machine a burst of someone else's work then
 * spoils one sample of several cells, which the median drops, instead of
 * every sample of one cell. */
static double lat_samples[NW][NS][NPIN][PEERS_RUNS_MAX];

static void run_latency(const struct peers_config *cfg, const char *only)
{
	struct peers_config one = *cfg;

	one.runs = 1;
	for (unsigned round = 0; round < cfg->runs; round++) {
		fprintf(stderr, "round trips, round %u of %u\n", round + 1, cfg->runs);
		for (int pin = 0; pin < NPIN; pin++) {
			for (unsigned w = 0; w < NW; w++) {
				const struct peers_ops *ops = workloads[w];

				for (unsigned s = 0; s < NS; s++) {
					struct cell *c = &lat[w][s][pin];
					struct peers_latency res;

					if (!built(ops) || c->err)
						continue;
					if (!wanted(ops, only) ||
					    (size_only && sizes[s] != size_only)) {
						c->skipped = true;
						continue;
					}
					if (!usable(ops, cfg, &c->err)) {
						status = 1;
						continue;
					}
					c->err = peers_measure_latency(ops, &one, sizes[s],
								       pin == PINNED, &res);
					if (c->err) {
						fprintf(stderr, "  %s, %s, %s: FAILED: %s\n",
							ops->name, size_names[s], pin_names[pin],
							strerror(-c->err));
						status = 1;
						continue;
					}
					lat_samples[w][s][pin][round] = res.median_ns;
				}
			}
		}
	}
	for (unsigned w = 0; w < NW; w++)
		for (unsigned s = 0; s < NS; s++)
			for (int pin = 0; pin < NPIN; pin++)
				if (!lat[w][s][pin].err && !lat[w][s][pin].skipped)
					lat[w][s][pin].value =
						peers_median(lat_samples[w][s][pin], cfg->runs);
}

static struct tput_samples tput_samples[NW][NC][NPIN];


/* One run of one throughput cell, into round's sample. */
static void tput_take(const struct peers_ops *ops, const struct peers_config *one, size_t size,
		      unsigned nclients, int pin, unsigned round, struct tput_cell *t,
		      struct tput_samples *ts)
{
	struct peers_tput res;

	if (!usable(ops, one, &t->err)) {
		status = 1;
		return;
	}
	t->err = peers_measure_tput(ops, one, size, nclients, pin == PINNED, &res);
	if (t->err) {
		fprintf(stderr, "  %s, %zu bytes, %u clients, %s: FAILED: %s\n", ops->name, size,
			nclients, pin_names[pin], strerror(-t->err));
		status = 1;
		return;
	}
	ts->cps[round] = res.calls_per_s;
	ts->p50[round] = res.p50_ns;
	ts->p99[round] = res.p99_ns;
	/* CPU time comes in 10 ms ticks: sum it over the rounds rather than
	 * take a median of a few ticks. */
	ts->calls += res.calls;
	ts->cpu_ns += res.cpu_total_ns;
	ts->daemon_ns += res.daemon_total_ns;
}

static void tput_finish(struct tput_cell *t, const struct tput_samples *ts, unsigned runs)
{
	double v[PEERS_RUNS_MAX];

	if (t->err || t->skipped || ts->calls == 0)
		return;
	memcpy(v, ts->cps, sizeof(v));
	t->t.calls_per_s = peers_median(v, runs);
	memcpy(v, ts->p50, sizeof(v));
	t->t.p50_ns = peers_median(v, runs);
	memcpy(v, ts->p99, sizeof(v));
	t->t.p99_ns = peers_median(v, runs);
	t->t.server_cpu_ns = (double)ts->cpu_ns / (double)ts->calls;
	t->t.daemon_cpu_ns = (double)ts->daemon_ns / (double)ts->calls;
}

static void run_tput(const struct peers_config *cfg, const char *only)
{
	struct peers_config one = *cfg, bulk = *cfg;

	one.runs = 1;
	bulk.runs = 1;
	bulk.depth = BULK_DEPTH;
	for (unsigned round = 0; round < cfg->runs; round++) {
		fprintf(stderr, "throughput, round %u of %u\n", round + 1, cfg->runs);
		for (unsigned w = 0; w < NW; w++) {
			const struct peers_ops *ops = workloads[w];

			for (int pin = 0; pin < NPIN; pin++) {
				for (unsigned c = 0; c < NC; c++) {
					struct tput_cell *t = &tput[w][c][pin];

					if (!built(ops) || t->err)
						continue;
					if (!wanted(ops, only)) {
						t->skipped = true;
						continue;
					}
					tput_take(ops, &one, 64, client_counts[c], pin, round, t,
						  &tput_samples[w][c][pin]);
				}
				struct tput_cell *b = &pbulk[w][pin];

				if (!built(ops) || b->err)
					continue;
				if (!wanted(ops, only) || ops->sock_type != 0 ||
				    (size_only && size_only != sizes[SIZE_1MIB])) {
					b->skipped = true;
					continue;
				}
				tput_take(ops, &bulk, sizes[SIZE_1MIB], 1, pin, round, b,
					  &pbulk_samples[w][pin]);
			}
		}
	}
	for (unsigned w = 0; w < NW; w++) {
		for (int pin = 0; pin < NPIN; pin++) {
			for (unsigned c = 0; c < NC; c++)
				tput_finish(&tput[w][c][pin], &tput_samples[w][c][pin], cfg->runs);
			tput_finish(&pbulk[w][pin], &pbulk_samples[w][pin], cfg->runs);
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: conduit-bench-peers [--dbus-address ADDR --dbus-pid PID] "
		   "[--tmpdir DIR]\n"
		   "         [--runs N] [--run-ms MS] [--tput-ms MS] [--depth N] [--only TEXT[,TEXT...]]\n"
		   "         [--size 64|1024|16384|1048576]\n"
		   "Use bench/peers/run, which starts the private dbus-daemon.\n");
}

static int parse_uint(const char *s, unsigned long max, unsigned long *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return -EINVAL;
	*ret = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dbus-address", required_argument, NULL, 'a'},
		{"dbus-pid", required_argument, NULL, 'p'},
		{"tmpdir", required_argument, NULL, 't'},
		{"runs", required_argument, NULL, 'r'},
		{"run-ms", required_argument, NULL, 'm'},
		{"tput-ms", required_argument, NULL, 'T'},
		{"depth", required_argument, NULL, 'd'},
		{"only", required_argument, NULL, 'o'},
		{"size", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct peers_config cfg = {
		.runs = 5, .run_ns = 200000000, .tput_ns = 400000000, .depth = 8, .tmpdir = "/tmp"};
	const char *only = NULL;
	struct peers_aead aead = {0};
	unsigned long v;
	int opt, aead_err;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		int bad = 0;

		switch (opt) {
		case 'a':
			cfg.dbus_address = optarg;
			break;
		case 'p':
			bad = parse_uint(optarg, INT_MAX, &v);
			cfg.dbus_pid = (pid_t)v;
			break;
		case 't':
			cfg.tmpdir = optarg;
			break;
		case 'r':
			bad = parse_uint(optarg, PEERS_RUNS_MAX, &v) || v == 0;
			cfg.runs = (unsigned)v;
			break;
		case 'm':
			bad = parse_uint(optarg, 60000, &v) || v == 0;
			cfg.run_ns = v * 1000000u;
			break;
		case 'T':
			bad = parse_uint(optarg, 60000, &v) || v == 0;
			cfg.tput_ns = v * 1000000u;
			break;
		case 'd':
			bad = parse_uint(optarg, 64, &v) || v == 0;
			cfg.depth = (unsigned)v;
			break;
		case 'o':
			only = optarg;
			break;
		case 's':
			bad = parse_uint(optarg, SIZE_MAX, &v);
			size_only = v;
			for (unsigned k = 0; !bad && k < NS && sizes[k] != size_only; k++)
				bad = k == NS - 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			bad = 1;
		}
		if (bad) {
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	run_latency(&cfg, only);
	fprintf(stderr, "one-core AEAD\n");
	aead_err = peers_measure_aead(&cfg, &aead);
	if (aead_err)
		status = 1;
	run_tput(&cfg, only);

	for (int pin = 0; pin < NPIN; pin++)
		print_latency(pin, &cfg);
	for (int pin = 0; pin < NPIN; pin++) {
		print_matrix(0, pin);
		print_matrix(2, pin);
	}
	print_bulk(&aead, aead_err);
	print_pbulk(&cfg, &aead, aead_err);
	print_tput(&cfg);
	print_targets(&aead, aead_err);
	fflush(stdout);
	if (status)
		fprintf(stderr, "conduit-bench-peers: some measurements FAILED\n");
	return status;
}
