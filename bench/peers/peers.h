/* SPDX-License-Identifier: MIT */
/*
 * conduit-bench-peers: one request/response echo workload run through
 * Conduit itself (a real conduit-broker) and through its peers (raw
 * socketpairs, D-Bus via a private dbus-daemon, ZeroMQ).
 *
 * A workload is one `struct peers_ops`: a server that runs in a forked,
 * pinned process, and a client side (open, send, recv, close).  The harness
 * does the forking, pinning, timing, statistics and printing, so adding a
 * row to every table is one ops definition and one line in the table in
 * main.c.  A workload whose `serve` is NULL prints "not built yet".
 */
#ifndef CONDUIT_BENCH_PEERS_H
#define CONDUIT_BENCH_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PEERS_MAX_CLIENTS 16
#define PEERS_CHUNK	  (64u * 1024) /* SEQPACKET datagram size for large payloads */
#define PEERS_NAME_MAX	  128
#define PEERS_KEY_Z85	  41 /* ZeroMQ CURVE key, Z85 text with its NUL */

/* Everything a workload needs for one measurement cell.  Filled by the
 * harness before the server is forked; read-only afterwards. */
struct peers_env {
	size_t size;			   /* payload bytes per call, each way (>= 64) */
	unsigned nclients;		   /* concurrent clients (1 for the latency table) */
	bool pipelined;			   /* clients keep several calls in flight */
	int sock_type;			   /* SOCK_SEQPACKET / SOCK_STREAM for socketpair rows */
	int server_fds[PEERS_MAX_CLIENTS]; /* socketpair ends of the server */
	int client_fds[PEERS_MAX_CLIENTS]; /* socketpair ends of the clients */
	const char *dbus_address;	   /* the private dbus-daemon, or NULL */
	char dbus_name[PEERS_NAME_MAX];	   /* well-known name, fresh per cell */
	char zmq_endpoint[PEERS_NAME_MAX]; /* ipc:// endpoint, fresh per cell */
	bool curve;			   /* ZeroMQ CURVE on */
	char curve_public[PEERS_KEY_Z85];  /* server key pair (bench keys only) */
	char curve_secret[PEERS_KEY_Z85];
	const char *tmpdir; /* the run's private temporary directory */
	int listen_fd;	    /* Conduit rows: where caller layers hand over, or -1 */
};

struct peers_ops {
	const char *name;
	/* Needs the private dbus-daemon (skipped with a message without it). */
	bool needs_dbus;
	/* Socket type for socketpair rows (the harness makes the pairs), 0 if none. */
	int sock_type;
	/* Optional: runs in the harness before the server is forked, to fill
	 * per-cell fields of env (keys, ...). */
	int (*prepare)(struct peers_env *env);
	/* Optional: CPU time of the serving side when it is more than the
	 * server process (a broker and the layer it routes to); ret_daemon_ns
	 * gets the broker's or daemon's share.  Without it the harness counts
	 * the server process and, with needs_dbus, the dbus-daemon. */
	int (*server_cpu)(pid_t server, uint64_t *ret_total_ns, uint64_t *ret_daemon_ns);
	/* Runs in the forked, already pinned server process.  Writes one byte to
	 * ready_fd once calls can be served, then serves until killed.  Returns
	 * only on failure, with a negative errno. */
	int (*serve)(const struct peers_env *env, int ready_fd);
	/* Client side for client number idx; *ret_client is owned by the caller
	 * and released with close(). */
	int (*open)(const struct peers_env *env, unsigned idx, void **ret_client);
	/* Optional one-shot round trip (the peer's idiomatic blocking call); when
	 * NULL the harness uses send then recv. */
	int (*call)(void *client, const void *req, void *ret_reply, size_t len);
	/* Pipelined halves: send one request; receive the oldest reply into buf
	 * (exactly len bytes, or a negative errno). */
	int (*send)(void *client, const void *req, size_t len);
	int (*recv)(void *client, void *buf, size_t len);
	void (*close)(void *client);
};

/* Timing and pinning parameters shared by all cells. */
struct peers_config {
	unsigned runs;	  /* runs per cell; the median is reported */
	uint64_t run_ns;  /* target length of one latency run */
	uint64_t tput_ns; /* length of one throughput run */
	unsigned depth;	  /* calls in flight per client when pipelined */
	pid_t dbus_pid;	  /* the private dbus-daemon, pinned with the rest */
	const char *dbus_address;
	const char *tmpdir; /* for ipc:// endpoints */
};

#define PEERS_RUNS_MAX 31

struct peers_latency {
	double rtt_ns[PEERS_RUNS_MAX]; /* mean round trip of each run */
	unsigned runs;
	double median_ns;
};

struct peers_tput {
	double calls_per_s;    /* medians over the runs */
	double p50_ns, p99_ns; /* call latency with `depth` calls in flight */
	double server_cpu_ns;  /* server (and daemon) CPU time per call */
	double daemon_cpu_ns;  /* dbus-daemon's share, 0 without a daemon */
	uint64_t calls;	       /* totals over the runs, for summing across calls */
	uint64_t cpu_total_ns, daemon_total_ns;
};

/* harness.c, tput.c */
int peers_pin(pid_t pid, bool pinned);
uint64_t peers_now_ns(void);
int peers_measure_latency(const struct peers_ops *ops, const struct peers_config *cfg, size_t size,
			  bool pinned, struct peers_latency *ret);
int peers_measure_tput(const struct peers_ops *ops, const struct peers_config *cfg, size_t size,
		       unsigned nclients, bool pinned, struct peers_tput *ret);
double peers_median(double *v, unsigned n);

/* Cell plumbing shared by the latency (harness.c) and throughput (tput.c)
 * measurements. */
int peers_env_init(const struct peers_ops *ops, const struct peers_config *cfg, size_t size,
		   unsigned nclients, bool pipelined, struct peers_env *env);
void peers_env_close(struct peers_env *env);
/* Forks the server, pinned like the client; returns once it is ready. */
int peers_server_start(const struct peers_ops *ops, struct peers_env *env, bool pinned,
		       pid_t *ret_pid);
/* Kills the server; -ECHILD if it had died on its own. */
int peers_server_stop(pid_t pid);
/* In a freshly forked child: die with the harness, pin. */
void peers_child_setup(pid_t parent, bool pinned);
int peers_wait_ready(int fd, unsigned count);
/* utime + stime of a process in ns, from /proc (10 ms ticks). */
int peers_proc_cpu_ns(pid_t pid, uint64_t *ret_ns);
void peers_payload_fill(unsigned char *buf, size_t size);
void peers_seq_put(unsigned char *buf, uint64_t seq);
uint64_t peers_seq_get(const unsigned char *buf);

/* aead.c */
struct peers_aead {
	double xchacha_mbps; /* encryption of 1 MiB buffers, one core, MB/s */
	double aesgcm_mbps;  /* 0 when the CPU lacks AES-NI (libsodium hides it) */
};
int peers_measure_aead(const struct peers_config *cfg, struct peers_aead *ret);

/* Read and write exactly len bytes (blocking). */
int peers_read_full(int fd, void *buf, size_t len);
int peers_write_full(int fd, const void *buf, size_t len);

/* The workloads, one file each. */
extern const struct peers_ops peers_seqpacket_ops;
extern const struct peers_ops peers_stream_ops;
extern const struct peers_ops peers_sdbus_ops;
extern const struct peers_ops peers_libdbus_ops;
extern const struct peers_ops peers_zmq_ops;
extern const struct peers_ops peers_zmq_curve_ops;
extern const struct peers_ops peers_conduit_routed_ops;
extern const struct peers_ops peers_conduit_service_ops;

#endif
