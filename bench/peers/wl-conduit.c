/* SPDX-License-Identifier: MIT */
/*
 * Conduit's own rows: the same echo through a real conduit-broker.
 *
 * Server: the forked, pinned server process binds the hand-over socket and
 * execs conduit-broker (so the server pid the harness reads CPU time from is
 * the broker's, and the broker and every layer it spawns inherit the
 * pinning).  The policy, written per cell, has an `echo` layer providing
 * `bench.echo` and one caller layer per client (c0, c1, ...), all of them
 * sandboxed under dynamic uids like production layers.  A small grandchild
 * drains the broker's stderr into a log and writes the ready byte once the
 * echo layer serves.
 *
 * Client: each caller layer hands its channel and key pipe to the harness
 * (conduit-layer.c says how), and the harness's client process opens the
 * session with cdt_layer_open_fds(): the calls are then made by libconduit's
 * layer API in the harness's own (timed, pinned) client processes.
 *
 *  - routed: `bench.echo` with a `payload` bytes argument, decided, audited
 *    and routed by the broker to the echo layer and back (two channel hops
 *    each way, as a D-Bus call through its daemon);
 *  - broker service: `conduit.ping` with the same argument, decided, audited
 *    and answered by the broker, which echoes `payload` (one hop each way).
 *
 * Needs root (dynamic uids).  Every call is audited to a file in the run's
 * temporary directory, as in production.
 */
#include "peers.h"
#include "handoff.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <conduit/conduit.h>

#define OPEN_TIMEOUT_MS 20000
#define CALL_TIMEOUT_MS 20000
#define RING_MAX	64 /* replies waiting for recv(); >= the pipelining depth */
#define POLICY_NAME	"conduit-bench.policy"
#define AUDIT_NAME	"conduit-bench-audit.log"
#define BROKER_LOG_NAME "conduit-broker.log"

/* ---- server: conduit-broker ---- */

static int path_in(const char *dir, const char *name, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* One caller layer per client; the echo layer for both rows, so that the
 * broker serves the same set of layers whichever row runs. */
static int policy_write(const char *path, unsigned nclients)
{
	FILE *f = fopen(path, "we");
	int r = 0;

	if (!f)
		return -errno;
	fprintf(f,
		"version 1\n"
		"layer %s {\n"
		"    exec \"%s\" \"%s\"\n"
		"    user dynamic\n"
		"    syscalls stdio recvfd\n"
		"    provide bench.echo\n"
		"}\n",
		PEERS_ECHO_LAYER, PEERS_LAYER_PATH, PEERS_ECHO_LAYER);
	for (unsigned i = 0; i < nclients; i++)
		/* socket and connect: only to hand the session over, see
		 * conduit-layer.c.  Never restarted: a session is handed over
		 * once, and a restart inside a measurement would cost broker
		 * CPU that belongs to no call. */
		fprintf(f,
			"layer c%u {\n"
			"    exec \"%s\" \"%s\"\n"
			"    user dynamic\n"
			"    syscalls stdio recvfd\n"
			"    syscalls allow socket connect\n"
			"    restart never\n"
			"    allow bench.echo\n"
			"    allow conduit.ping\n"
			"}\n",
			i, PEERS_LAYER_PATH, PEERS_CALLER_ARG);
	if (ferror(f))
		r = -EIO;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	return r;
}

static int handoff_dir(void)
{
	struct stat st;

	if (mkdir(PEERS_HANDOFF_DIR, 0700) == 0) {
		/* Widened after creation, whatever the umask. */
		if (chmod(PEERS_HANDOFF_DIR, 0711) < 0)
			return -errno;
	} else if (errno != EEXIST) {
		return -errno;
	}
	if (lstat(PEERS_HANDOFF_DIR, &st) < 0)
		return -errno;
	/* Refuse a directory we did not make ourselves. */
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 07777) != 0711)
		return -EPERM;
	return 0;
}

static int conduit_prepare(struct peers_env *env)
{
	char path[PATH_MAX];
	int r;

	if (geteuid() != 0)
		return -EPERM; /* layers run under dynamic uids */
	r = handoff_dir();
	if (r == 0)
		r = path_in(env->tmpdir, POLICY_NAME, path, sizeof(path));
	if (r == 0)
		r = policy_write(path, env->nclients);
	if (r == 0)
		r = path_in(env->tmpdir, AUDIT_NAME, path, sizeof(path));
	/* A fresh log per cell: only the disk space of one cell is kept. */
	if (r == 0 && unlink(path) < 0 && errno != ENOENT)
		r = -errno;
	if (r < 0)
		return r;
	/* Bound and listening only in the server, under the broker's pid. */
	env->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (env->listen_fd < 0)
		return -errno;
	return 0;
}

/* Whether a broker log line goes to the harness's stderr too: everything
 * until the echo layer serves (why a broker did not start), and later a
 * layer's fatal error or seccomp kill.  The rest (sessions ending when a
 * cell stops) only goes to the log. */
static bool watch_loud(const char *line, size_t len, bool ready)
{
	return !ready || memmem(line, len, "BENCH fatal", 11) || memmem(line, len, "SIGSYS", 6);
}

/* The grandchild: copies the broker's stderr into the log and says ready
 * once the echo layer's line passes.  Ends at end-of-file, i.e. when the
 * broker (which holds the only write end) is gone. */
static _Noreturn void watch_broker(int err_fd, int ready_fd, const char *log_path)
{
	static const char ready[] = "conduit-broker: layer " PEERS_ECHO_LAYER ": " PEERS_READY_LINE;
	char buf[4096], line[1024];
	size_t have = 0;
	int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	for (;;) {
		ssize_t n = read(err_fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);
		for (ssize_t i = 0; i < n; i++) {
			/* Longer lines are cut: the broker's own are short. */
			if (have < sizeof(line))
				line[have++] = buf[i];
			if (buf[i] != '\n' && have < sizeof(line))
				continue;
			if (log >= 0)
				(void)!write(log, line, have);
			if (ready_fd >= 0 && have == sizeof(ready) &&
			    memcmp(line, ready, sizeof(ready) - 1) == 0) {
				char byte = 1;

				(void)!write(ready_fd, &byte, 1);
				close(ready_fd);
				ready_fd = -1;
			} else if (watch_loud(line, have, ready_fd < 0)) {
				(void)!write(STDERR_FILENO, line, have);
			}
			have = 0;
		}
	}
}

static int conduit_serve(const struct peers_env *env, int ready_fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char policy[PATH_MAX], audit[PATH_MAX], log[PATH_MAX];
	int errp[2], n, r;
	pid_t mid;

	r = path_in(env->tmpdir, POLICY_NAME, policy, sizeof(policy));
	if (r == 0)
		r = path_in(env->tmpdir, AUDIT_NAME, audit, sizeof(audit));
	if (r == 0)
		r = path_in(env->tmpdir, BROKER_LOG_NAME, log, sizeof(log));
	if (r < 0)
		return r;
	/* This process becomes the broker: its pid names the socket. */
	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%ld.sock", PEERS_HANDOFF_DIR,
		     (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	if (unlink(sa.sun_path) < 0 && errno != ENOENT)
		return -errno;
	if (bind(env->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(sa.sun_path, 0666) < 0 || listen(env->listen_fd, PEERS_MAX_CLIENTS) < 0)
		return -errno;
	if (pipe2(errp, O_CLOEXEC) < 0)
		return -errno;
	/* Double fork: the watcher must not be the broker's child (the broker
	 * owns its children), and must not die with this short-lived parent. */
	mid = fork();
	if (mid < 0)
		return -errno;
	if (mid == 0) {
		if (fork() != 0)
			_exit(0);
		close(errp[1]);
		close(env->listen_fd);
		watch_broker(errp[0], ready_fd, log);
	}
	while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
		;
	close(errp[0]);
	close(ready_fd);
	if (dup2(errp[1], STDOUT_FILENO) < 0 || dup2(errp[1], STDERR_FILENO) < 0)
		return -errno;
	close(errp[1]);
	execl(PEERS_BROKER_PATH, "conduit-broker", "--policy", policy, "--audit", audit,
	      (char *)NULL);
	return -errno;
}

/* The broker and its echo layer, so that a routed call's two ends of
 * serving are counted like a D-Bus service plus its daemon. */
static int conduit_server_cpu(pid_t server, uint64_t *ret_total_ns, uint64_t *ret_broker_ns)
{
	char path[64], buf[512];
	uint64_t broker, total;
	FILE *f;
	int r = peers_proc_cpu_ns(server, &broker);

	if (r < 0)
		return r;
	total = broker;
	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", (long)server, (long)server);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	for (long child; fscanf(f, "%ld", &child) == 1;) {
		uint64_t ns;
		size_t n;
		FILE *c;

		snprintf(path, sizeof(path), "/proc/%ld/cmdline", child);
		c = fopen(path, "re");
		if (!c)
			continue; /* gone meanwhile */
		n = fread(buf, 1, sizeof(buf) - 1, c);
		fclose(c);
		buf[n] = '\0';
		/* argv is the program and its role, NUL-separated. */
		size_t arg1 = strnlen(buf, n) + 1;
		if (arg1 < n && strcmp(buf + arg1, PEERS_ECHO_LAYER) == 0 &&
		    peers_proc_cpu_ns((pid_t)child, &ns) == 0)
			total += ns;
	}
	fclose(f);
	*ret_total_ns = total;
	*ret_broker_ns = broker;
	return 0;
}

/* ---- client: a caller layer's session, opened in the harness ---- */

struct conduit_client {
	cdt_layer *layer;
	const char *method;
	size_t size;
	int err;	     /* first failure of an asynchronous call */
	unsigned char *ring; /* RING_MAX replies of size bytes, pipelined only */
	unsigned head, count;
};

/* Takes the caller layer's channel and key pipe from the socket. */
static int handoff_take(int listen_fd, int ret_fds[2])
{
	struct pollfd pfd = {.fd = listen_fd, .events = POLLIN};
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	char byte;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cm;
	int s, n, r;

	do
		n = poll(&pfd, 1, OPEN_TIMEOUT_MS);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ETIMEDOUT;
	s = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		return -errno;
	/* Blocking: the layer sends right after connecting. */
	do
		n = (int)recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	r = n < 0 ? -errno : 0;
	close(s);
	if (r < 0)
		return r;
	cm = CMSG_FIRSTHDR(&mh);
	if (n != 1 || (mh.msg_flags & MSG_CTRUNC) || !cm || cm->cmsg_level != SOL_SOCKET ||
	    cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(2 * sizeof(int))) {
		/* Close whatever did arrive. */
		for (; cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
				close(fd);
			}
		}
		return -EPROTO;
	}
	memcpy(ret_fds, CMSG_DATA(cm), 2 * sizeof(int));
	return 0;
}

static int conduit_open(const struct peers_env *env, const char *method, void **ret_client)
{
	const struct cdt_layer_options opts = {.hello_timeout_ms = OPEN_TIMEOUT_MS};
	struct conduit_client *c;
	int fds[2], r;

	if (env->listen_fd < 0)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->method = method;
	c->size = env->size;
	r = -ENOMEM;
	if (env->pipelined && !(c->ring = calloc(RING_MAX, env->size)))
		goto out;
	r = cdt_init();
	if (r == 0)
		r = handoff_take(env->listen_fd, fds);
	/* Takes both fds, also on failure. */
	if (r == 0)
		r = cdt_layer_open_fds(fds[0], fds[1], &opts, &c->layer);
out:
	if (r < 0) {
		free(c->ring);
		free(c);
		return r;
	}
	*ret_client = c;
	return 0;
}

static int routed_open(const struct peers_env *env, unsigned idx, void **ret_client)
{
	(void)idx;
	return conduit_open(env, "bench.echo", ret_client);
}

static int service_open(const struct peers_env *env, unsigned idx, void **ret_client)
{
	(void)idx;
	return conduit_open(env, "conduit.ping", ret_client);
}

static int call_new(const struct conduit_client *c, const void *req, size_t len, cdt_msg **ret)
{
	cdt_msg *m = NULL;
	/* The library replaces the call id with its own. */
	int r = cdt_msg_new(CDT_KIND_CALL, 1, c->method, &m);

	if (r == 0)
		r = cdt_msg_add_bytes(m, "payload", req, len);
	if (r < 0) {
		cdt_msg_free(m);
		return r;
	}
	*ret = m;
	return 0;
}

/* The reply's payload, exactly len bytes. */
static int reply_payload(const cdt_msg *reply, size_t len, const uint8_t **ret)
{
	const uint8_t *p;
	size_t n;
	int r = cdt_msg_get_bytes(reply, "payload", &p, &n);

	if (r < 0)
		return -EBADMSG;
	if (n != len)
		return -EBADMSG;
	*ret = p;
	return 0;
}

static int conduit_call(void *client, const void *req, void *ret_reply, size_t len)
{
	struct conduit_client *c = client;
	cdt_msg *m = NULL, *reply = NULL;
	const uint8_t *p;
	int r = call_new(c, req, len, &m);

	if (r == 0)
		r = cdt_layer_call(c->layer, m, CALL_TIMEOUT_MS, &reply);
	if (r == 0)
		r = reply_payload(reply, len, &p);
	if (r == 0)
		memcpy(ret_reply, p, len);
	cdt_msg_free(m);
	cdt_msg_free(reply);
	return r;
}

static void on_reply(cdt_layer *layer, int result, cdt_msg *reply, void *userdata)
{
	struct conduit_client *c = userdata;
	const uint8_t *p;
	int r = result;

	(void)layer;
	if (c->err)
		return;
	if (r == 0)
		r = reply_payload(reply, c->size, &p);
	if (r == 0 && c->count == RING_MAX)
		r = -EOVERFLOW;
	if (r < 0) {
		c->err = r;
		return;
	}
	memcpy(c->ring + (size_t)((c->head + c->count) % RING_MAX) * c->size, p, c->size);
	c->count++;
}

static int conduit_send(void *client, const void *req, size_t len)
{
	struct conduit_client *c = client;
	cdt_msg *m = NULL;
	int r;

	if (len != c->size || !c->ring)
		return -EINVAL;
	r = call_new(c, req, len, &m);
	if (r == 0)
		r = cdt_layer_call_async(c->layer, m, on_reply, c);
	cdt_msg_free(m);
	return r;
}

static int conduit_recv(void *client, void *buf, size_t len)
{
	struct conduit_client *c = client;

	if (len != c->size || !c->ring)
		return -EINVAL;
	while (c->count == 0 && c->err == 0) {
		int r;

		if (!cdt_layer_want_dispatch(c->layer)) {
			struct pollfd pfd = {
				.fd = cdt_layer_fd(c->layer),
				.events = POLLIN | (cdt_layer_want_write(c->layer) ? POLLOUT : 0),
			};

			r = poll(&pfd, 1, CALL_TIMEOUT_MS);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return -errno;
			if (r == 0)
				return -ETIMEDOUT;
		}
		r = cdt_layer_dispatch(c->layer);
		if (r < 0)
			return r;
	}
	if (c->err)
		return c->err;
	memcpy(buf, c->ring + (size_t)c->head * c->size, len);
	c->head = (c->head + 1) % RING_MAX;
	c->count--;
	return 0;
}

static void conduit_close(void *client)
{
	struct conduit_client *c = client;

	if (!c)
		return;
	/* An orderly FIN where the socket takes it at once; either way the
	 * broker is killed right after, with the cell. */
	int r = cdt_layer_close(c->layer);
	(void)r;
	cdt_layer_free(c->layer);
	free(c->ring);
	free(c);
}

const struct peers_ops peers_conduit_routed_ops = {
	.name = "conduit routed (layer->broker->layer)",
	.prepare = conduit_prepare,
	.serve = conduit_serve,
	.server_cpu = conduit_server_cpu,
	.open = routed_open,
	.call = conduit_call,
	.send = conduit_send,
	.recv = conduit_recv,
	.close = conduit_close,
};

const struct peers_ops peers_conduit_service_ops = {
	.name = "conduit broker service",
	.prepare = conduit_prepare,
	.serve = conduit_serve,
	.server_cpu = conduit_server_cpu,
	.open = service_open,
	.call = conduit_call,
	.send = conduit_send,
	.recv = conduit_recv,
	.close = conduit_close,
};
