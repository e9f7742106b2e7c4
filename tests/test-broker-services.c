/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of the broker's privileged services with a real broker
 * and sandboxed layers (tests/broker-layer.c): a TCP `connect` to an echo
 * server this test runs on loopback, a TCP `listen` socket this test
 * connects to, and an `open` in append mode written through; with the
 * denials of a name or path the policy does not list and of a resource call
 * over its rate.  Every audit record of the run is checked.
 *
 * Usage: test-broker-services BROKER LAYER
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker-harness.h"

#define WAIT 10000 /* ms: generous, a shared 2-core machine */

#define LAYER_HEAD                                                                                 \
	"    user dynamic\n"                                                                       \
	"    syscalls stdio recvfd time net-client\n"

/* A loopback TCP echo server for one connection: "echo " + what it got. */
struct echo_server {
	int lfd;
	uint16_t port;
	pthread_t thread;
	char got[64];
};

static bool ready_within(int fd, short events, int ms)
{
	struct pollfd p = {.fd = fd, .events = events};

	return poll(&p, 1, ms) == 1 && (p.revents & events);
}

static void *echo_main(void *arg)
{
	struct echo_server *e = arg;
	char buf[64] = {0}, out[80];
	int fd = -1;
	ssize_t n = -1;

	if (ready_within(e->lfd, POLLIN, WAIT))
		fd = accept4(e->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0 && ready_within(fd, POLLIN, WAIT))
		n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n > 0) {
		memcpy(e->got, buf, (size_t)n);
		snprintf(out, sizeof(out), "echo %s", buf);
		if (send(fd, out, strlen(out), MSG_NOSIGNAL) < 0)
			e->got[0] = 0;
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void echo_start(struct echo_server *e)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);

	memset(e->got, 0, sizeof(e->got));
	e->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(e->lfd >= 0);
	assert_int_equal(bind(e->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(e->lfd, 4), 0);
	assert_int_equal(getsockname(e->lfd, (struct sockaddr *)&sa, &len), 0);
	e->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&e->thread, NULL, echo_main, e), 0);
}

static void echo_join(struct echo_server *e)
{
	assert_int_equal(pthread_join(e->thread, NULL), 0);
	close(e->lfd);
}

/* A loopback port nobody listens on now.  The policy language wants a
 * port of 1..65535, so the listen resource cannot ask for an ephemeral one;
 * another process taking this port before the broker binds it fails the
 * test loudly (EADDRINUSE), never silently. */
static uint16_t free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* Connect to the layer's listening socket, say "hi", read the answer. */
static void talk_to_listener(struct bk *bk, char *answer, size_t cap)
{
	char port[16];
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd;
	ssize_t n = -1;

	assert_true(bk_log_after(bk, "RESULT listen-port ", port, sizeof(port)));
	sa.sin_port = htons((uint16_t)atoi(port));
	assert_true(sa.sin_port != 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(send(fd, "hi\n", 3, MSG_NOSIGNAL), 3);
	if (ready_within(fd, POLLIN, WAIT))
		n = recv(fd, answer, cap - 1, 0);
	answer[n > 0 ? n : 0] = 0;
	close(fd);
}

static void expect_decision(const struct bk *bk, const char *layer, const char *method, size_t nth,
			    enum audit_verdict v, const char *rule)
{
	const struct bk_record *r = bk_find(bk, AUDIT_EV_DECISION, layer, method, nth);

	assert_non_null(r);
	assert_int_equal(r->verdict, v);
	assert_string_equal(r->rule, rule);
	if (strstr(rule, "#default") == NULL)
		assert_true(r->line > 0);
}

static void test_resources(void **state)
{
	struct echo_server echo;
	struct bk bk;
	char policy[4096], path[192], answer[64], content[256], port[16];
	uint16_t listen_port;
	FILE *f;
	size_t n;

	(void)state;
	bk_init(&bk);
	echo_start(&echo);
	listen_port = free_port();
	bk_write_file(&bk, "app.log", "first line\n");
	snprintf(path, sizeof(path), "%s/app.log", bk.dir);
	setenv("TEST_OPEN", path, 1);
	snprintf(policy, sizeof(policy),
		 "version 1\n"
		 "layer tcpc {\n"
		 "    exec \"@LAYER@\" \"tcpclient\"\n" LAYER_HEAD
		 "    connect echo tcp \"127.0.0.1:%u\"\n"
		 "    allow conduit.connect name \"echo\" rate 1/1m burst 1\n"
		 "}\n"
		 "layer tcps {\n"
		 "    exec \"@LAYER@\" \"tcpserver\"\n" LAYER_HEAD "    syscalls allow accept4\n"
		 "    listen srv tcp \"127.0.0.1:%u\"\n"
		 "    allow conduit.listen name \"srv\"\n"
		 "}\n"
		 "layer app {\n"
		 "    exec \"@LAYER@\" \"appender\"\n" LAYER_HEAD "    env TEST_OPEN\n"
		 "    open \"@DIR@/app.log\" append\n"
		 "    allow conduit.open path \"@DIR@/app.log\" rate 1/1m burst 1\n"
		 "}\n",
		 (unsigned)echo.port, (unsigned)listen_port);
	bk_write_policy(&bk, policy);
	bk_start(&bk);

	/* TCP connect: the line went to our echo server and came back. */
	assert_true(bk_wait_log(&bk, "RESULT tcpclient-done", 1, WAIT));
	echo_join(&echo);
	assert_string_equal(echo.got, "ping\n");
	assert_int_equal(bk_log_count(&bk, "RESULT tcp-echo echo ping"), 1);
	assert_int_equal(bk_log_count(&bk, "layer tcpc: RESULT unlisted error conduit.denied"), 1);
	assert_int_equal(bk_log_count(&bk, "layer tcpc: RESULT again error conduit.rate_limited"),
			 1);

	/* TCP listen: we connect to the socket the layer was passed. */
	assert_true(bk_wait_log(&bk, "RESULT listen-port ", 1, WAIT));
	assert_true(bk_log_after(&bk, "RESULT listen-port ", port, sizeof(port)));
	assert_int_equal(atoi(port), listen_port);
	talk_to_listener(&bk, answer, sizeof(answer));
	assert_string_equal(answer, "pong hi\n");
	assert_true(bk_wait_log(&bk, "RESULT tcpserver-done", 1, WAIT));
	assert_int_equal(bk_log_count(&bk, "layer tcps: RESULT accepted hi"), 1);
	assert_int_equal(bk_log_count(&bk, "layer tcps: RESULT unlisted error conduit.denied"), 1);

	/* open append: write-only, O_APPEND, the line after what was there. */
	assert_true(bk_wait_log(&bk, "RESULT appender-done", 1, WAIT));
	assert_int_equal(bk_log_count(&bk, "RESULT open-flags wronly append"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT read-refused"), 1);
	assert_int_equal(bk_log_count(&bk, "RESULT append-failed"), 0);
	assert_int_equal(bk_log_count(&bk, "layer app: RESULT unlisted error conduit.denied"), 1);
	assert_int_equal(bk_log_count(&bk, "layer app: RESULT again error conduit.rate_limited"),
			 1);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(content, 1, sizeof(content) - 1, f);
	fclose(f);
	content[n] = 0;
	assert_string_equal(content, "first line\nappended by the layer\n");

	bk_stop_clean(&bk);
	expect_decision(&bk, "tcpc", "conduit.connect", 0, AUDIT_VERDICT_ALLOW, "tcpc#1");
	expect_decision(&bk, "tcpc", "conduit.connect", 1, AUDIT_VERDICT_DENY, "tcpc#default");
	expect_decision(&bk, "tcpc", "conduit.connect", 2, AUDIT_VERDICT_RATE_LIMITED, "tcpc#1");
	expect_decision(&bk, "tcps", "conduit.listen", 0, AUDIT_VERDICT_ALLOW, "tcps#1");
	expect_decision(&bk, "tcps", "conduit.listen", 1, AUDIT_VERDICT_DENY, "tcps#default");
	expect_decision(&bk, "app", "conduit.open", 0, AUDIT_VERDICT_ALLOW, "app#1");
	expect_decision(&bk, "app", "conduit.open", 1, AUDIT_VERDICT_DENY, "app#default");
	expect_decision(&bk, "app", "conduit.open", 2, AUDIT_VERDICT_RATE_LIMITED, "app#1");
	assert_int_equal(bk_count(&bk, AUDIT_EV_DECISION, NULL, NULL, NULL), 8);
	{
		const struct bk_record *r =
			bk_find(&bk, AUDIT_EV_DECISION, "app", "conduit.open", 0);
		assert_int_equal(r->nargs, 1); /* the path the layer asked for */
	}
	static const char *const layers[] = {"tcpc", "tcps", "app"};
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(bk_count(&bk, AUDIT_EV_SPAWN, layers[i], NULL, NULL), 1);
		assert_int_equal(bk_count(&bk, AUDIT_EV_EXIT, layers[i], NULL, NULL), 1);
		bk_expect_stopped(&bk, layers[i]);
	}
	assert_int_equal(bk_count(&bk, AUDIT_EV_VIOLATION, NULL, NULL, NULL), 0);
	assert_int_equal(bk_count(&bk, AUDIT_EV_ALARM, NULL, NULL, NULL), 0);
	/* start, 3 spawns, 8 decisions, 3 exits, stop: nothing else. */
	assert_int_equal(bk.nrec, 1 + 3 + 8 + 3 + 1);
	bk_cleanup(&bk);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resources),
	};

	char *path[2];
	int r = bk_main_paths(argc, argv, 2, "BROKER LAYER", path);

	if (r != 0)
		return r;
	bk_broker_path = path[0];
	bk_layer_path = path[1];
	return cmocka_run_group_tests_name("broker-services", tests, NULL, NULL);
}
