/* SPDX-License-Identifier: MIT */
/* conduit-plcsim: the demo plant's simulated PLC.  A Modbus TCP server over
 * the register map in tags.c, with the physics of physics.c stepped every
 * 100 ms.  It serves several clients from one poll() loop, checks every
 * request (mbreq.c) before libmodbus answers it, and logs one line per
 * significant event on stderr.  It needs no privilege: the default port is
 * 1502, and it listens on loopback only unless told --any. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <fcntl.h>

#include <modbus.h>

#include "config.h"
#include "mbreq.h"
#include "physics.h"
#include "tags.h"

#define PLCSIM_TICK_MS	       100
#define PLCSIM_MAX_CLIENTS     16
/* A client that stops mid-frame holds the single-threaded loop at most this
 * long per byte before it is dropped. */
#define PLCSIM_BYTE_TIMEOUT_US 100000
/* A client that stops reading its answers makes send() fail after this
 * long instead of blocking the loop; it is then dropped. */
#define PLCSIM_SEND_TIMEOUT_US 500000
/* After a stall, catch up at most this many ticks at once. */
#define PLCSIM_MAX_CATCHUP     10

enum { PFD_SIGNAL, PFD_TIMER, PFD_LISTEN, PFD_FIXED };

struct client {
	int fd;
	unsigned id;
};

struct plc {
	modbus_t *ctx;
	modbus_mapping_t *map;
	uint16_t area_size[TAG_AREA_COUNT];
	int listen_fd, timer_fd, signal_fd;
	struct client clients[PLCSIM_MAX_CLIENTS];
	size_t nclients;
	unsigned next_id;
	struct physics_state phys;
	bool stop;
};

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("conduit-plcsim: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: conduit-plcsim [--host ADDR] [--port PORT] [--any]\n"
		"Simulated PLC of the Conduit demo plant: a Modbus TCP server with a\n"
		"water-treatment dosing skid behind it (register map: examples/plant/README.md).\n"
		"\n"
		"  --host ADDR  IPv4 address to listen on (default 127.0.0.1; loopback only)\n"
		"  --port PORT  TCP port (default 1502; 0 picks a free port and logs it)\n"
		"  --any        allow a non-loopback --host such as 0.0.0.0\n"
		"  -h, --help   this text\n"
		"  -V, --version\n"
		"\n"
		"Exit status: 0 after SIGINT/SIGTERM, 1 on a runtime error, 2 on bad usage.\n");
}

static bool is_loopback(const char *host)
{
	struct in_addr a;
	if (inet_pton(AF_INET, host, &a) != 1)
		return false;
	return (ntohl(a.s_addr) >> 24) == 127;
}

static uint8_t *area_ptr8(modbus_mapping_t *m, enum tag_area area)
{
	return area == TAG_AREA_COIL ? m->tab_bits : m->tab_input_bits;
}

static uint16_t *area_ptr16(modbus_mapping_t *m, enum tag_area area)
{
	return area == TAG_AREA_HR ? m->tab_registers : m->tab_input_registers;
}

static uint16_t tag_raw(struct plc *p, enum tag_id id)
{
	const struct tag_def *t = tags_get(id);
	if (t->type == TAG_TYPE_BOOL)
		return area_ptr8(p->map, t->area)[t->addr] ? 1 : 0;
	return area_ptr16(p->map, t->area)[t->addr];
}

static void tag_set(struct plc *p, enum tag_id id, uint16_t v)
{
	const struct tag_def *t = tags_get(id);
	if (t->type == TAG_TYPE_BOOL)
		area_ptr8(p->map, t->area)[t->addr] = v ? 1 : 0;
	else
		area_ptr16(p->map, t->area)[t->addr] = v;
}

static void publish(struct plc *p)
{
	struct physics_outputs o;
	physics_outputs(&p->phys, &o);
	tag_set(p, TAG_TANK_LEVEL, o.level_mm);
	tag_set(p, TAG_PH, o.ph_x100);
	tag_set(p, TAG_NAOH_CONC, o.naoh_conc_ppm);
	tag_set(p, TAG_PUMP_SPEED_FB, o.pump_speed_fb);
	tag_set(p, TAG_INFLOW, o.inflow_lps_x10);
	tag_set(p, TAG_HIGH_LEVEL, o.high_level);
}

static void tick(struct plc *p)
{
	bool estop = tag_raw(p, TAG_SIM_ESTOP_BUTTON) != 0;
	struct physics_inputs in = {
		.naoh_sp_ppm = tag_raw(p, TAG_NAOH_SP),
		.pump_speed_pct = tag_raw(p, TAG_PUMP_SPEED),
		.pump_run = tag_raw(p, TAG_PUMP_RUN) != 0,
		.valve_open = tag_raw(p, TAG_INLET_VALVE) != 0,
		.estop_bypass = tag_raw(p, TAG_ESTOP_BYPASS) != 0,
		.estop = estop,
	};
	bool hls = p->phys.high_level;
	if (estop != (tag_raw(p, TAG_ESTOP) != 0)) {
		say("E-stop %s", estop ? "PRESSED: P-101 stops unless bypassed" : "released");
		tag_set(p, TAG_ESTOP, estop);
	}
	/* dt is the fixed tick: the values only depend on the tick count. */
	if (physics_step(&p->phys, &in, PLCSIM_TICK_MS / 1000.0) < 0)
		return;
	if (p->phys.high_level != hls)
		say("high-level switch %s (level %.0f mm): V-201 %s",
		    p->phys.high_level ? "ON" : "off", p->phys.level_mm,
		    p->phys.high_level ? "interlocked closed" : "released");
	publish(p);
}

/* Writable tags before a request, to log what it changed. */
struct snapshot {
	uint16_t v[TAG_COUNT];
};

static void snap(struct plc *p, struct snapshot *s)
{
	for (size_t i = 0; i < TAG_COUNT; i++)
		s->v[i] = tags_get(i)->readonly ? 0 : tag_raw(p, (enum tag_id)i);
}

static void log_writes(struct plc *p, const struct snapshot *before, unsigned client)
{
	for (size_t i = 0; i < TAG_COUNT; i++) {
		const struct tag_def *t = tags_get(i);
		if (t->readonly)
			continue;
		uint16_t now = tag_raw(p, (enum tag_id)i);
		if (now == before->v[i])
			continue;
		double eng = tags_raw_to_eng(t, now);
		say("client %u: %s %s %g -> %g%s%s%s", client,
		    i == TAG_NAOH_SP ? "setpoint" : "write", t->name,
		    tags_raw_to_eng(t, before->v[i]), eng, t->unit[0] ? " " : "", t->unit,
		    tags_in_range(t, eng) ? ""
					  : " (outside the engineering range: accepted, the "
					    "physics clamps what the plant can do)");
	}
}

static void client_drop(struct plc *p, size_t i, const char *why)
{
	say("client %u disconnected%s%s", p->clients[i].id, why ? ": " : "", why ? why : "");
	close(p->clients[i].fd);
	p->clients[i] = p->clients[--p->nclients];
}

static void client_accept(struct plc *p)
{
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	int fd = accept4(p->listen_fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			say("accept: %s", strerror(errno));
		return;
	}
	char addr[INET_ADDRSTRLEN] = "?";
	if (plen >= sizeof(peer) && peer.sin_family == AF_INET)
		inet_ntop(AF_INET, &peer.sin_addr, addr, sizeof(addr));
	if (p->nclients >= PLCSIM_MAX_CLIENTS) {
		say("refused %s:%u: already %d clients", addr, ntohs(peer.sin_port),
		    PLCSIM_MAX_CLIENTS);
		close(fd);
		return;
	}
	struct timeval snd = {.tv_usec = PLCSIM_SEND_TIMEOUT_US};
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd)) < 0) {
		say("refused %s:%u: SO_SNDTIMEO: %s", addr, ntohs(peer.sin_port), strerror(errno));
		close(fd);
		return;
	}
	unsigned id = ++p->next_id;
	p->clients[p->nclients++] = (struct client){.fd = fd, .id = id};
	say("client %u connected from %s:%u", id, addr, ntohs(peer.sin_port));
}

/* Serve one request from client @i: false if the client was dropped. */
static bool client_serve(struct plc *p, size_t i)
{
	uint8_t req[MODBUS_TCP_MAX_ADU_LENGTH];
	struct client *c = &p->clients[i];

	modbus_set_socket(p->ctx, c->fd);
	int n = modbus_receive(p->ctx, req);
	if (n < 0) {
		client_drop(p, i, errno == ECONNRESET ? NULL : modbus_strerror(errno));
		return false;
	}
	if (n == 0)
		return true; /* addressed to another unit: no answer */

	int rc = mbreq_check(req, (size_t)n, p->area_size);
	if (rc < 0) {
		client_drop(p, i, "malformed request");
		return false;
	}
	if (rc > 0) {
		if (modbus_reply_exception(p->ctx, req, (unsigned)rc) < 0) {
			client_drop(p, i, modbus_strerror(errno));
			return false;
		}
		return true;
	}
	struct snapshot before;
	snap(p, &before);
	if (modbus_reply(p->ctx, req, n, p->map) < 0) {
		/* SO_SNDTIMEO expired: with nothing sent send() fails with
		 * EAGAIN, with part sent libmodbus reports the short write as
		 * EMBBADDATA.  Either way the client stopped reading. */
		bool stalled = errno == EAGAIN || errno == EWOULDBLOCK || errno == EMBBADDATA;
		client_drop(p, i, stalled ? "not reading its answers" : modbus_strerror(errno));
		return false;
	}
	log_writes(p, &before, c->id);
	return true;
}

static int handle_signal(struct plc *p)
{
	struct signalfd_siginfo si;
	ssize_t n = read(p->signal_fd, &si, sizeof(si));
	if (n != (ssize_t)sizeof(si))
		return 0;
	say("stopping on %s", si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
	p->stop = true;
	return 0;
}

static int handle_timer(struct plc *p)
{
	uint64_t expirations;
	ssize_t n = read(p->timer_fd, &expirations, sizeof(expirations));
	if (n != (ssize_t)sizeof(expirations))
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (expirations > PLCSIM_MAX_CATCHUP)
		expirations = PLCSIM_MAX_CATCHUP;
	for (uint64_t k = 0; k < expirations; k++)
		tick(p);
	return 0;
}

static int run(struct plc *p)
{
	struct pollfd pfd[PFD_FIXED + PLCSIM_MAX_CLIENTS];
	while (!p->stop) {
		pfd[PFD_SIGNAL] = (struct pollfd){.fd = p->signal_fd, .events = POLLIN};
		pfd[PFD_TIMER] = (struct pollfd){.fd = p->timer_fd, .events = POLLIN};
		pfd[PFD_LISTEN] = (struct pollfd){.fd = p->listen_fd, .events = POLLIN};
		size_t n = p->nclients;
		for (size_t i = 0; i < n; i++)
			pfd[PFD_FIXED + i] =
				(struct pollfd){.fd = p->clients[i].fd, .events = POLLIN};
		if (poll(pfd, PFD_FIXED + n, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (pfd[PFD_SIGNAL].revents)
			handle_signal(p);
		if (pfd[PFD_TIMER].revents) {
			int r = handle_timer(p);
			if (r < 0)
				return r;
		}
		/* Back to front: dropping client i moves the last one into its
		 * slot, which has then already been served. */
		for (size_t i = n; i-- > 0;) {
			short ev = pfd[PFD_FIXED + i].revents;
			if (ev & (POLLERR | POLLNVAL))
				client_drop(p, i, "socket error");
			else if (ev & (POLLIN | POLLHUP))
				client_serve(p, i);
		}
		if (pfd[PFD_LISTEN].revents & POLLIN)
			client_accept(p);
	}
	return 0;
}

static int setup(struct plc *p, const char *host, unsigned port)
{
	for (int a = 0; a < TAG_AREA_COUNT; a++)
		p->area_size[a] = tags_area_size((enum tag_area)a);
	p->map = modbus_mapping_new(p->area_size[TAG_AREA_COIL], p->area_size[TAG_AREA_DI],
				    p->area_size[TAG_AREA_HR], p->area_size[TAG_AREA_IR]);
	if (!p->map)
		return -errno;
	p->ctx = modbus_new_tcp(host, (int)port);
	if (!p->ctx)
		return -errno;
	modbus_set_byte_timeout(p->ctx, 0, PLCSIM_BYTE_TIMEOUT_US);
	modbus_set_indication_timeout(p->ctx, 0, PLCSIM_BYTE_TIMEOUT_US);

	p->listen_fd = modbus_tcp_listen(p->ctx, 8);
	if (p->listen_fd < 0)
		return -errno;
	/* Whatever libmodbus' build did, the listening socket must not leak
	 * into a child and accept() must never block the loop. */
	if (fcntl(p->listen_fd, F_SETFD, FD_CLOEXEC) < 0 ||
	    fcntl(p->listen_fd, F_SETFL, O_NONBLOCK) < 0)
		return -errno;

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	p->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (p->signal_fd < 0)
		return -errno;
	/* A writer to a client that went away must get EPIPE, not die. */
	signal(SIGPIPE, SIG_IGN);

	p->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (p->timer_fd < 0)
		return -errno;
	struct itimerspec its = {
		.it_interval = {.tv_nsec = PLCSIM_TICK_MS * 1000000L},
		.it_value = {.tv_nsec = PLCSIM_TICK_MS * 1000000L},
	};
	if (timerfd_settime(p->timer_fd, 0, &its, NULL) < 0)
		return -errno;

	physics_init(&p->phys);
	tag_set(p, TAG_NAOH_SP, 100);
	tag_set(p, TAG_PUMP_SPEED, 50);
	tag_set(p, TAG_PUMP_RUN, 1);
	tag_set(p, TAG_INLET_VALVE, 1);
	publish(p);

	struct sockaddr_in sa;
	socklen_t slen = sizeof(sa);
	if (getsockname(p->listen_fd, (struct sockaddr *)&sa, &slen) < 0)
		return -errno;
	char addr[INET_ADDRSTRLEN] = "?";
	inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof(addr));
	/* The test harness reads the port from this line: keep its shape. */
	say("listening on %s:%u (tick %d ms)", addr, ntohs(sa.sin_port), PLCSIM_TICK_MS);
	return 0;
}

static void teardown(struct plc *p)
{
	while (p->nclients > 0)
		client_drop(p, p->nclients - 1, "server stopping");
	if (p->timer_fd >= 0)
		close(p->timer_fd);
	if (p->signal_fd >= 0)
		close(p->signal_fd);
	if (p->ctx) {
		/* modbus_close() closes the socket last set on the context:
		 * point it at the listener so each fd is closed once. */
		if (p->listen_fd >= 0)
			modbus_set_socket(p->ctx, p->listen_fd);
		modbus_close(p->ctx);
		modbus_free(p->ctx);
	} else if (p->listen_fd >= 0) {
		close(p->listen_fd);
	}
	modbus_mapping_free(p->map);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"host", required_argument, NULL, 'H'}, {"port", required_argument, NULL, 'p'},
		{"any", no_argument, NULL, 'a'},	{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},	{NULL, 0, NULL, 0},
	};
	const char *host = "127.0.0.1";
	unsigned port = 1502;
	bool any = false;
	int c;

	while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			host = optarg;
			break;
		case 'p': {
			char *end;
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' || v > 65535) {
				say("--port: not a port number: %s", optarg);
				return 2;
			}
			port = (unsigned)v;
			break;
		}
		case 'a':
			any = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("conduit-plcsim %s\n", CONDUIT_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		say("unexpected argument: %s", argv[optind]);
		return 2;
	}
	struct in_addr tmp;
	if (inet_pton(AF_INET, host, &tmp) != 1) {
		say("--host: not an IPv4 address: %s", host);
		return 2;
	}
	/* An unauthenticated Modbus server on a real interface is an open
	 * door to the plant: off by default. */
	if (!any && !is_loopback(host)) {
		say("--host %s is not a loopback address; add --any to listen on it", host);
		return 2;
	}

	struct plc p = {.listen_fd = -1, .timer_fd = -1, .signal_fd = -1};
	int r = setup(&p, host, port);
	if (r < 0)
		say("cannot start on %s:%u: %s", host, port, strerror(-r));
	else if ((r = run(&p)) < 0)
		say("%s", strerror(-r));
	teardown(&p);
	if (r < 0)
		return 1;
	say("stopped");
	return 0;
}
