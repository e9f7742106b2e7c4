/* SPDX-License-Identifier: MIT */
/*
 * The demo plant's io, alarm and hist layers end to end: conduit-plcsim on a
 * free port, a real broker running a copy of examples/plant/plant.policy
 * rendered for the build tree (layer paths, a temporary history file and
 * audit log, the simulator's port), and tests/plant-ui-probe.c in place of
 * the ui layer.  The probe reads and writes tags, drives an alarm, acks it
 * and queries history; the test kills the simulator and starts it again on
 * the same port, and io must report stale tags and reconnect by itself.
 * Every layer must run under its own uid with no capability, a seccomp
 * filter and no_new_privs, and every audit record is checked at the end.
 *
 * The adversarial group puts the test itself in the PLC's place and answers
 * io's requests with what no PLC may send: io drops each connection and
 * reconnects, in the same process.
 *
 * Usage: test-plant-layers BROKER PROBE PLCSIM LAYER-DIR POLICY GROUP
 *        (GROUP: integration | adversarial)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker-harness.h"

#define WAIT 15000 /* ms: generous, a shared 2-core machine */

static const char *plcsim_path, *layer_dir, *policy_src;

/* The ui block of the test: tag.write open to everything but the safety
 * coils, so that io's own checks (range, readonly, unknown) are reached. */
#define UI_BODY                                                                                    \
	"    user dynamic\n"                                                                       \
	"    syscalls stdio recvfd\n"                                                              \
	"    limit memory 32M files 16 procs 0\n"                                                  \
	"    allow tag.read\n"                                                                     \
	"    deny  tag.write tag \"plant.safety.*\"\n"                                             \
	"    allow tag.write\n"                                                                    \
	"    allow alarm.list\n"                                                                   \
	"    allow alarm.ack\n"                                                                    \
	"    allow hist.query\n"                                                                   \
	"    subscribe tag.changed tag \"plant.*\"\n"                                              \
	"    subscribe alarm.raised\n"                                                             \
	"}\n"
static const char ui_block[] = "layer ui {\n"
			       "    exec \"@LAYER@\"\n" UI_BODY;
static const char ui_idle_block[] = "layer ui {\n"
				    "    exec \"@LAYER@\" \"idle\"\n" UI_BODY;
struct plc {
	pid_t pid;
	unsigned port;
	char log[192];
};

static struct bk bk; /* large: the audit records */
static struct plc plc = {.pid = -1};

static void plc_start(struct plc *p, const struct bk *b, unsigned port)
{
	char arg[16];
	int fd;

	snprintf(p->log, sizeof(p->log), "%s/plcsim.err", b->dir);
	snprintf(arg, sizeof(arg), "%u", port);
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execl(plcsim_path, plcsim_path, "--port", arg, (char *)NULL);
		_exit(127);
	}
	/* Wait (bounded) for "listening on 127.0.0.1:PORT". */
	for (int i = 0; i < WAIT / 20; i++) {
		char buf[512] = {0};
		const char *s;
		FILE *f = fopen(p->log, "r");
		if (f) {
			size_t n = fread(buf, 1, sizeof(buf) - 1, f);
			buf[n] = 0;
			fclose(f);
		}
		if ((s = strstr(buf, "listening on 127.0.0.1:"))) {
			p->port =
				(unsigned)strtoul(s + strlen("listening on 127.0.0.1:"), NULL, 10);
			assert_true(p->port > 0);
			return;
		}
		const struct timespec tick = {0, 20 * 1000 * 1000};
		nanosleep(&tick, NULL);
	}
	fail_msg("conduit-plcsim did not start");
}

static void plc_kill(struct plc *p)
{
	if (p->pid <= 0)
		return;
	kill(p->pid, SIGKILL);
	assert_int_equal(waitpid(p->pid, NULL, 0), p->pid);
	p->pid = -1;
}

static char *read_text(const char *path)
{
	static char buf[32768];
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	assert_true(feof(f));
	fclose(f);
	buf[n] = 0;
	return buf;
}

/* Replace every @from in @s (in place, bounded by cap). */
static void replace(char *s, size_t cap, const char *from, const char *to)
{
	static char out[32768];
	size_t o = 0, fl = strlen(from), tl = strlen(to);

	for (const char *p = s; *p;) {
		if (strncmp(p, from, fl) == 0) {
			assert_true(o + tl < sizeof(out));
			memcpy(out + o, to, tl);
			o += tl;
			p += fl;
		} else {
			assert_true(o + 1 < sizeof(out));
			out[o++] = *p++;
		}
	}
	out[o] = 0;
	assert_true(o < cap);
	memcpy(s, out, o + 1);
}

/* plant.policy for this run: layer paths into the build tree, files into
 * the test directory, the simulator's port, and the probe as ui. */
static void render_policy(struct bk *b, unsigned port, const char *ui, const char *fsize)
{
	static char text[32768];
	char prefix[512], addr[64];
	char *at, *end;

	snprintf(text, sizeof(text), "%s", read_text(policy_src));
	snprintf(prefix, sizeof(prefix), "\"%s/plant-", layer_dir);
	replace(text, sizeof(text), "\"/usr/libexec/conduit/plant-", prefix);
	replace(text, sizeof(text), "/var/lib/conduit/plant/", "@DIR@/");
	snprintf(addr, sizeof(addr), "\"127.0.0.1:%u\"", port);
	replace(text, sizeof(text), "\"127.0.0.1:1502\"", addr);
	if (fsize) {
		char lim[64];
		snprintf(lim, sizeof(lim), "fsize %s ", fsize);
		assert_non_null(strstr(text, "fsize 1G "));
		replace(text, sizeof(text), "fsize 1G ", lim);
	}
	at = strstr(text, "\nlayer ui {\n");
	assert_non_null(at);
	end = strstr(at, "\n}\n");
	assert_non_null(end);
	/* Splice the probe's block in place of the dashboard's. */
	assert_true(strlen(text) - (size_t)(end + 3 - at) + strlen(ui) + 1 < sizeof(text));
	memmove(at + 1 + strlen(ui), end + 3, strlen(end + 3) + 1);
	memcpy(at + 1, ui, strlen(ui));
	bk_write_policy(b, text);
}

static bool status_field(pid_t pid, const char *key, char *val, size_t cap)
{
	char path[64], line[256];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':') {
			const char *v = line + strlen(key) + 1;
			v += strspn(v, " \t");
			snprintf(val, cap, "%.*s", (int)strcspn(v, "\n"), v);
			found = true;
		}
	fclose(f);
	return found;
}

/* The broker's children by executable name: their pids in @ret. */
static pid_t find_layer(pid_t broker, const char *exe_suffix)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = -1;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[64], exe[512], ppid[32];
		pid_t pid = (pid_t)atoi(e->d_name);
		ssize_t n;
		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
		n = readlink(path, exe, sizeof(exe) - 1);
		if (n <= 0)
			continue;
		exe[n] = 0;
		if (!status_field(pid, "PPid", ppid, sizeof(ppid)) || atoi(ppid) != broker)
			continue;
		size_t el = strlen(exe), sl = strlen(exe_suffix);
		if (el >= sl && strcmp(exe + el - sl, exe_suffix) == 0)
			found = pid;
	}
	closedir(d);
	return found;
}

/* Own uid (not root, not another layer's), no capabilities, seccomp in
 * filter mode, no_new_privs. */
static void check_confined(pid_t broker, const char *const *exes, size_t n, pid_t *ret_pids)
{
	char uids[8][64];

	assert_true(n <= 8);

	for (size_t i = 0; i < n; i++) {
		char v[128];
		pid_t pid = find_layer(broker, exes[i]);
		if (pid <= 0)
			fail_msg("layer %s not found under the broker", exes[i]);
		ret_pids[i] = pid;
		assert_true(status_field(pid, "Uid", uids[i], sizeof(uids[i])));
		assert_true(strncmp(uids[i], "0\t", 2) != 0);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(uids[i], uids[j]);
		assert_true(status_field(pid, "CapEff", v, sizeof(v)));
		assert_string_equal(v, "0000000000000000");
		assert_true(status_field(pid, "CapPrm", v, sizeof(v)));
		assert_string_equal(v, "0000000000000000");
		assert_true(status_field(pid, "Seccomp", v, sizeof(v)));
		assert_string_equal(v, "2");
		assert_true(status_field(pid, "NoNewPrivs", v, sizeof(v)));
		assert_string_equal(v, "1");
		fprintf(stderr, "# %s: pid %d uid %s\n", exes[i], (int)pid, uids[i]);
	}
}

/* What the layers said, for whoever reads the test log. */
static void show_log(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "sed 's/^/#   /' %s >&2", bk.log);
	if (system(cmd) != 0)
		fprintf(stderr, "# (cannot show the log)\n");
}

static void expect_ui(struct bk *b, const char *what)
{
	char needle[256];

	snprintf(needle, sizeof(needle), "layer ui: RESULT %s\n", what);
	if (bk_log_count(b, needle) != 1) {
		bk_wait_log(b, "\x01never\x01", 1, 0); /* prints the log */
		fail_msg("expected once: %s", needle);
	}
}

/* Whatever an assertion left running goes with the test. */
static int teardown(void **state)
{
	(void)state;
	plc_kill(&plc);
	bk_cleanup(&bk);
	return 0;
}

static void test_plant_layers(void **state)
{
	const char *const exes[] = {"/plant-io", "/plant-alarm", "/plant-hist", "/plant-ui-probe"};
	pid_t pids[4], again[4];
	char hist[256];
	struct stat st;

	(void)state;
	bk_init(&bk);
	plc_start(&plc, &bk, 0);
	/* No history file yet: the policy's `create` has the broker make it. */
	snprintf(hist, sizeof(hist), "%s/history.log", bk.dir);
	assert_int_equal(access(hist, F_OK), -1);
	render_policy(&bk, plc.port, ui_block, NULL);
	bk_start(&bk);

	assert_true(bk_wait_log(&bk, "layer ui: RESULT phase1-done", 1, 40000));
	check_confined(bk.pid, exes, 4, pids);

	expect_ui(&bk, "level good in-range yes");
	expect_ui(&bk, "read plant.no.such error tag.unknown");
	expect_ui(&bk, "write plant.dosing.naoh_sp 110 -> 110");
	expect_ui(&bk, "write plant.dosing.naoh_sp 11100 error tag.range");
	expect_ui(&bk, "write plant.dosing.naoh_sp 11100(d) error tag.range");
	expect_ui(&bk, "write plant.tank.level 100 error tag.readonly");
	expect_ui(&bk, "write plant.no.such 1 error tag.unknown");
	expect_ui(&bk, "write plant.pump.p101.run 0.5(d) error tag.range");
	expect_ui(&bk, "write plant.safety.estop_bypass 1 error conduit.denied");
	/* 11100 never reached the PLC: the register still holds 110. */
	assert_int_equal(bk_log_count(&bk, "layer ui: RESULT read plant.dosing.naoh_sp 110 good\n"),
			 2);
	assert_int_equal(bk_log_count(&bk, "error tag.range\n"), 3);
	expect_ui(&bk, "alarm.raised plant.dosing.naoh_conc.hi unack-active medium "
		       "plant.dosing.naoh_conc");
	expect_ui(&bk, "hi alarm raised");
	expect_ui(&bk, "alarm.list count 8 lines 8 hi-listed yes");
	expect_ui(&bk, "alarm.ack plant.dosing.naoh_conc.hi ok");
	expect_ui(&bk, "alarm.raised plant.dosing.naoh_conc.hi ack-active medium "
		       "plant.dosing.naoh_conc");
	expect_ui(&bk, "hi alarm acked");
	expect_ui(&bk, "alarm.ack plant.no.such.hi error alarm.unknown");
	expect_ui(&bk, "hist.query plant.dosing.naoh_sp 60 count-ok yes ordered yes has110 yes");
	expect_ui(&bk, "hist.query plant.dosing.naoh_sp 3600 count-ok yes ordered yes has110 yes");
	expect_ui(&bk, "hist.query plant.dosing.naoh_sp 0 error hist.range");
	expect_ui(&bk, "hist.query plant.dosing.naoh_sp 3601 error hist.range");
	expect_ui(&bk, "hist.query plant.no.such 60 error hist.unknown");
	expect_ui(&bk, "tag.changed naoh_sp seen level seen");
	assert_int_equal(bk_log_count(&bk, "RESULT bad "), 0);
	assert_int_equal(bk_log_count(&bk, "malformed"), 0);

	/* The PLC dies: io notices, marks its tags stale, and reconnects by
	 * itself once the PLC is back on the same port. */
	unsigned port = plc.port;
	plc_kill(&plc);
	assert_true(bk_wait_log(&bk, "layer ui: RESULT quality stale", 1, WAIT));
	assert_true(bk_wait_log(&bk, "plant-io: PLC connection lost", 1, WAIT));
	plc_start(&plc, &bk, port);
	assert_int_equal(plc.port, port);
	assert_true(bk_wait_log(&bk, "layer ui: RESULT ui-done", 1, WAIT));
	expect_ui(&bk, "quality good-again");
	expect_ui(&bk, "republished 13 tags");
	expect_ui(&bk, "write plant.dosing.naoh_sp 100(u) -> 100");
	expect_ui(&bk, "ui-done ok");
	/* Reconnected inside the same processes: nothing was restarted. */
	check_confined(bk.pid, exes, 4, again);
	assert_memory_equal(pids, again, sizeof(pids));

	/* The history file got the samples, appended by the layer. */
	assert_int_equal(stat(hist, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600); /* created by the broker */
	assert_int_equal(st.st_uid, 0);
	assert_true(st.st_size >= 13 * 28);
	assert_int_equal(st.st_size % 28, 0);

	assert_int_equal(bk_stop(&bk), 0);
	plc_kill(&plc);
	show_log();
	bk_read_audit(&bk, true);
	fprintf(stderr, "# %zu audit records\n", bk.nrec);
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, NULL, NULL, NULL), 0);
	assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, NULL, NULL, NULL), 4);
	assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, NULL, NULL, NULL), 4);
	/* io asked for the PLC at least twice (start, reconnect), hist once
	 * for its file; each decision allowed. */
	assert_true(bk_count(&bk, AUDIT_EV_DECISION, "io", "conduit.connect", NULL) >= 2);
	for (size_t i = 0; bk_find(&bk, AUDIT_EV_DECISION, "io", "conduit.connect", i); i++)
		assert_int_equal(
			bk_find(&bk, AUDIT_EV_DECISION, "io", "conduit.connect", i)->verdict,
			AUDIT_VERDICT_ALLOW);
	assert_int_equal(bk_count(&bk, AUDIT_EV_DECISION, "hist", "conduit.open", NULL), 1);
	assert_int_equal(bk_find(&bk, AUDIT_EV_DECISION, "hist", "conduit.open", 0)->verdict,
			 AUDIT_VERDICT_ALLOW);
	/* The one call the policy denied: the bypass coil. */
	size_t denied = 0;
	for (size_t i = 0; i < bk.nrec; i++)
		denied += bk.rec[i].event == AUDIT_EV_DECISION &&
			  bk.rec[i].verdict == AUDIT_VERDICT_DENY;
	assert_int_equal(denied, 1);
}

/* The history file reaches the policy's fsize limit: 1036 bytes here, 37
 * whole records, so the 38th write fails with EFBIG (and SIGXFSZ, which
 * hist ignores).  hist says so once and keeps running. */
static void test_hist_full(void **state)
{
	char hist[256];
	struct stat st;
	int fd;

	(void)state;
	bk_init(&bk);
	plc_start(&plc, &bk, 0);
	snprintf(hist, sizeof(hist), "%s/history.log", bk.dir);
	fd = open(hist, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	render_policy(&bk, plc.port, ui_idle_block, "1036");
	bk_start(&bk);
	/* The level moves 10 mm/s, a new sample every poll: the file fills
	 * in seconds. */
	assert_true(bk_wait_log(&bk, "plant-hist: history file: File too large", 1, 30000));
	assert_int_equal(stat(hist, &st), 0);
	assert_int_equal(st.st_size, 1036);
	assert_int_equal(bk_stop(&bk), 0);
	plc_kill(&plc);
	show_log();
	assert_int_equal(bk_log_count(&bk, "plant-hist: history file: "), 1);
	bk_read_audit(&bk, true);
	assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, "hist", NULL, NULL), 1);
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, NULL, NULL, NULL), 0);
	/* Stopped by the broker, not killed by SIGXFSZ. */
	const struct bk_record *r = bk_find(&bk, AUDIT_EV_EXIT, "hist", NULL, 0);
	assert_non_null(r);
	if (!r->has_code)
		assert_string_equal(r->signal, "SIGTERM");
	else
		assert_int_equal(r->code, 0);
}

/* ---- A hostile PLC: the test itself answers io's requests ---- */

static int plc_listen(unsigned *ret_port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*ret_port = ntohs(a.sin_port);
	return fd;
}

static int accept_within(int lfd, int ms)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};

	if (poll(&p, 1, ms) != 1)
		fail_msg("io did not connect within %d ms", ms);
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

/* One whole request (every request io sends is 12 bytes). */
static void read_request(int fd, uint8_t req[12])
{
	size_t got = 0;

	while (got < 12) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, WAIT) != 1)
			fail_msg("io sent no request");
		ssize_t n = recv(fd, req + got, 12 - got, 0);
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_int_equal(req[2], 0); /* protocol id */
	assert_int_equal(req[3], 0);
	assert_int_equal(req[5], 6); /* length: unit + 5 bytes of PDU */
}

/* io must close the connection: EOF (or a reset) within @ms. */
static bool closed_within(int fd, int ms)
{
	int64_t end;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	end = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + ms;
	for (;;) {
		uint8_t buf[512];
		struct pollfd p = {.fd = fd, .events = POLLIN};
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t left = end - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			return false;
		ssize_t n = recv(fd, buf, sizeof(buf), 0); /* further requests are drained */
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
	}
}

static void send_all(int fd, const void *p, size_t n)
{
	/* A reset from io (it may close while we send) is fine. */
	(void)send(fd, p, n, MSG_NOSIGNAL);
}

/* Answers a PLC must never give, each in its own connection: io drops the
 * connection every time, stays the same process, and reconnects. */
static void test_hostile_plc(void **state)
{
	uint8_t req[12], bad[4096];
	unsigned port;
	int lfd, fd, r;

	(void)state;
	bk_init(&bk);
	lfd = plc_listen(&port);
	{
		char hist[256];
		snprintf(hist, sizeof(hist), "%s/history.log", bk.dir);
		int h = open(hist, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		assert_true(h >= 0);
		close(h);
	}
	render_policy(&bk, port, ui_idle_block, NULL);
	bk_start(&bk);

	/* 1. Another transaction id. */
	fd = accept_within(lfd, WAIT);
	read_request(fd, req);
	const uint8_t wrong_tid[] = {req[0], (uint8_t)(req[1] ^ 1), 0, 0, 0, 3, req[6], req[7], 0};
	send_all(fd, wrong_tid, sizeof(wrong_tid));
	assert_true(closed_within(fd, WAIT));
	close(fd);
	/* 2. A length field past the protocol's maximum. */
	fd = accept_within(lfd, WAIT);
	read_request(fd, req);
	const uint8_t huge[] = {req[0], req[1], 0, 0, 0xff, 0xff, req[6], req[7]};
	send_all(fd, huge, sizeof(huge));
	assert_true(closed_within(fd, WAIT));
	close(fd);
	/* 3. A flood of garbage. */
	fd = accept_within(lfd, WAIT);
	read_request(fd, req);
	memset(bad, 'A', sizeof(bad));
	send_all(fd, bad, sizeof(bad));
	assert_true(closed_within(fd, WAIT));
	close(fd);
	/* 4. A frame within the protocol's limits, the right transaction and
	 * function, and a byte count of 250: more than any request of io asks. */
	fd = accept_within(lfd, WAIT);
	read_request(fd, req);
	memset(bad, 0, sizeof(bad));
	memcpy(bad, req, 2);
	bad[5] = 3 + 250; /* unit, function, byte count, data */
	bad[6] = req[6];
	bad[7] = req[7];
	bad[8] = 250;
	send_all(fd, bad, 9 + 250);
	assert_true(closed_within(fd, WAIT));
	close(fd);
	/* 5. Silence: io gives up on the answer after a second. */
	fd = accept_within(lfd, WAIT);
	read_request(fd, req);
	assert_true(closed_within(fd, WAIT));
	close(fd);
	/* And it keeps coming back. */
	fd = accept_within(lfd, WAIT);
	close(fd);
	close(lfd);

	/* Five refused answers, and maybe already the sixth connection we
	 * closed at once. */
	assert_true(bk_log_count(&bk, "plant-io: PLC connection lost") >= 5);
	assert_int_equal(bk_log_count(&bk, "malformed"), 4);
	assert_int_equal(bk_log_count(&bk, "no answer"), 1);
	r = bk_stop(&bk);
	show_log(); /* the whole run, the stop included */
	assert_int_equal(r, 0);
	bk_read_audit(&bk, true);
	/* Nothing crashed or was restarted: one spawn and one exit per layer. */
	assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, NULL, NULL, NULL), 4);
	assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, NULL, NULL, NULL), 4);
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, NULL, NULL, NULL), 0);
	assert_true(bk_count(&bk, AUDIT_EV_DECISION, "io", "conduit.connect", NULL) >= 6);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest integration[] = {
		cmocka_unit_test_teardown(test_plant_layers, teardown),
		cmocka_unit_test_teardown(test_hist_full, teardown),
	};
	const struct CMUnitTest adversarial[] = {
		cmocka_unit_test_teardown(test_hostile_plc, teardown),
	};

	if (argc != 7 || (strcmp(argv[6], "integration") && strcmp(argv[6], "adversarial"))) {
		fprintf(stderr, "usage: %s BROKER PROBE PLCSIM LAYER-DIR POLICY GROUP\n", argv[0]);
		return 2;
	}
	if (geteuid() != 0) {
		/* Dynamic uids need root; CI runs as root. */
		fprintf(stderr, "test-plant-layers must run as root\n");
		return 1;
	}
	/* The policy wants absolute paths; meson passes them relative. */
	static char paths[5][4096];
	for (int i = 0; i < 5; i++)
		if (!realpath(argv[i + 1], paths[i])) {
			perror(argv[i + 1]);
			return 1;
		}
	bk_broker_path = paths[0];
	bk_layer_path = paths[1];
	plcsim_path = paths[2];
	layer_dir = paths[3];
	policy_src = paths[4];
	if (strcmp(argv[6], "adversarial") == 0)
		return cmocka_run_group_tests(adversarial, NULL, NULL);
	return cmocka_run_group_tests(integration, NULL, NULL);
}
