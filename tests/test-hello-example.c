/* SPDX-License-Identifier: MIT */
/* examples/hello's two layer programs, each spawned the way the broker
 * will (channel on fd 3, key pipe on fd 4) and driven by a fake broker in
 * this process.  argv: hello-server hello-client. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "conduit/conduit.h"

#define WAIT_MS 10000 /* only a hang reaches it */

static const char *server_path;
static const char *client_path;

struct spawned {
	pid_t pid;
	cdt_chan *broker;
	int out; /* the child's stdout */
};

static void spawn(struct spawned *s, char *const argv[])
{
	cdt_keys *keys = NULL;
	int sv[2], kp[2], op[2];

	assert_int_equal(cdt_keys_new(CDT_SUITE_AUTO, &keys), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pipe2(kp, O_CLOEXEC), 0);
	assert_int_equal(pipe2(op, O_CLOEXEC), 0);
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		/* dup2() clears close-on-exec on the targets only. */
		if (dup2(op[1], 1) < 0 || dup2(sv[1], 3) < 0 || dup2(kp[0], 4) < 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	close(sv[1]);
	close(kp[0]);
	close(op[1]);
	/* The real broker writes the blob only after exec; a pipe holds it
	 * until the child reads, so the order does not matter here. */
	assert_int_equal(cdt_keys_send(keys, kp[1]), 0);
	close(kp[1]);
	assert_int_equal(cdt_chan_new(sv[0], keys, CDT_ROLE_BROKER, &s->broker), 0);
	cdt_keys_free(keys);
	s->out = op[0];
}

static int reap(struct spawned *s)
{
	int status;
	cdt_chan_free(s->broker);
	assert_int_equal(waitpid(s->pid, &status, 0), s->pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static cdt_msg *recv_msg(struct spawned *s)
{
	cdt_msg *m = NULL;
	assert_int_equal(cdt_chan_recv_wait(s->broker, &m, WAIT_MS), 0);
	return m;
}

static void send_msg(struct spawned *s, cdt_msg *m)
{
	assert_int_equal(cdt_chan_send_wait(s->broker, m, WAIT_MS), 0);
	cdt_msg_free(m);
}

static cdt_msg *msg_new(enum cdt_kind kind, uint64_t id, const char *name)
{
	cdt_msg *m = NULL;
	assert_int_equal(cdt_msg_new(kind, id, name, &m), 0);
	return m;
}

static void add_str(cdt_msg *m, const char *name, const char *v)
{
	assert_int_equal(cdt_msg_add_string(m, name, v, strlen(v)), 0);
}

/* Check the layer's HELLO and answer with ours. */
static void hello(struct spawned *s, const char *provide, const char *publish, const char *name)
{
	const char *v;
	cdt_msg *h = recv_msg(s);
	assert_int_equal(cdt_msg_kind(h), CDT_KIND_HELLO);
	assert_int_equal(cdt_msg_get_string(h, "provide", &v, NULL), 0);
	assert_string_equal(v, provide);
	assert_int_equal(cdt_msg_get_string(h, "publish", &v, NULL), 0);
	assert_string_equal(v, publish);
	cdt_msg_free(h);
	h = msg_new(CDT_KIND_HELLO, 0, NULL);
	assert_int_equal(cdt_msg_add_u64(h, "version", 1), 0);
	add_str(h, "layer", name);
	send_msg(s, h);
}

static void end_session(struct spawned *s)
{
	cdt_msg *m = NULL;
	int r = cdt_chan_close(s->broker);
	assert_true(r == 0 || r == -EAGAIN);
	/* A looping client may send another call before it sees our FIN. */
	while ((r = cdt_chan_recv_wait(s->broker, &m, WAIT_MS)) == 0) {
		assert_int_equal(cdt_msg_kind(m), CDT_KIND_CALL);
		cdt_msg_free(m);
		m = NULL;
	}
	assert_int_equal(r, -CDT_E_CLOSED);
}

static void test_server(void **state)
{
	(void)state;
	char *argv[] = {(char *)server_path, NULL};
	struct spawned s;
	const char *v;
	uint64_t n;

	spawn(&s, argv);
	hello(&s, "hello.greet", "hello.greeted", "greeter");

	cdt_msg *c = msg_new(CDT_KIND_CALL, 10, "hello.greet");
	add_str(c, "name", "world");
	add_str(c, "_caller", "client");
	send_msg(&s, c);
	cdt_msg *r = recv_msg(&s);
	assert_int_equal(cdt_msg_kind(r), CDT_KIND_REPLY);
	assert_int_equal(cdt_msg_call_id(r), 10);
	assert_int_equal(cdt_msg_get_string(r, "greeting", &v, NULL), 0);
	assert_string_equal(v, "hello, world");
	cdt_msg_free(r);
	cdt_msg *e = recv_msg(&s);
	assert_int_equal(cdt_msg_kind(e), CDT_KIND_EVENT);
	assert_string_equal(cdt_msg_name(e), "hello.greeted");
	assert_int_equal(cdt_msg_get_u64(e, "count", &n), 0);
	assert_int_equal(n, 1);
	cdt_msg_free(e);

	/* The server checks the name too, the policy is not its only guard. */
	c = msg_new(CDT_KIND_CALL, 11, "hello.greet");
	add_str(c, "name", "");
	send_msg(&s, c);
	r = recv_msg(&s);
	assert_int_equal(cdt_msg_kind(r), CDT_KIND_ERROR);
	assert_string_equal(cdt_msg_name(r), "hello.bad_name");
	cdt_msg_free(r);

	send_msg(&s, msg_new(CDT_KIND_CALL, 12, "conduit.ping"));
	r = recv_msg(&s);
	assert_int_equal(cdt_msg_kind(r), CDT_KIND_REPLY);
	assert_int_equal(cdt_msg_call_id(r), 12);
	cdt_msg_free(r);

	end_session(&s);
	assert_int_equal(reap(&s), 0);
	close(s.out);
}

static void test_client_once(void **state)
{
	(void)state;
	char *argv[] = {(char *)client_path, "--once", "plant", NULL};
	struct spawned s;
	const char *v;
	char out[256];
	size_t len = 0;
	ssize_t n;

	spawn(&s, argv);
	hello(&s, "", "", "client");
	cdt_msg *sub = recv_msg(&s);
	assert_int_equal(cdt_msg_kind(sub), CDT_KIND_SUBSCRIBE);
	assert_string_equal(cdt_msg_name(sub), "hello.greeted");
	cdt_msg_free(sub);
	cdt_msg *c = recv_msg(&s);
	assert_int_equal(cdt_msg_kind(c), CDT_KIND_CALL);
	assert_string_equal(cdt_msg_name(c), "hello.greet");
	assert_int_equal(cdt_msg_get_string(c, "name", &v, NULL), 0);
	assert_string_equal(v, "plant");
	/* The event first: the client's blocking call queues it. */
	cdt_msg *e = msg_new(CDT_KIND_EVENT, 0, "hello.greeted");
	add_str(e, "name", "plant");
	add_str(e, "_publisher", "greeter");
	assert_int_equal(cdt_msg_add_u64(e, "count", 7), 0);
	send_msg(&s, e);
	cdt_msg *r = msg_new(CDT_KIND_REPLY, cdt_msg_call_id(c), NULL);
	add_str(r, "greeting", "hello, plant");
	send_msg(&s, r);
	cdt_msg_free(c);

	/* --once: the client stops first; we answer its FIN with ours. */
	cdt_msg *m = NULL;
	assert_int_equal(cdt_chan_recv_wait(s.broker, &m, WAIT_MS), -CDT_E_CLOSED);
	int cr = cdt_chan_close(s.broker);
	assert_true(cr == 0 || cr == -EAGAIN);
	assert_int_equal(reap(&s), 0);
	while ((n = read(s.out, out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(s.out);
	assert_string_equal(out, "hello, plant\nevent: greeter greeted plant (#7)\n");
}

/* Without --once: asynchronous calls from the client's own loop, one a
 * second, until the broker's FIN. */
static void test_client_loop(void **state)
{
	(void)state;
	char *argv[] = {(char *)client_path, NULL};
	struct spawned s;
	const char *v;
	char out[256];
	size_t len = 0;
	ssize_t n;

	spawn(&s, argv);
	hello(&s, "", "", "client");
	cdt_msg_free(recv_msg(&s)); /* SUBSCRIBE */
	for (int i = 0; i < 2; i++) {
		cdt_msg *c = recv_msg(&s);
		assert_string_equal(cdt_msg_name(c), "hello.greet");
		assert_int_equal(cdt_msg_get_string(c, "name", &v, NULL), 0);
		assert_string_equal(v, "world");
		cdt_msg *r = i == 0 ? msg_new(CDT_KIND_REPLY, cdt_msg_call_id(c), NULL)
				    : msg_new(CDT_KIND_ERROR, cdt_msg_call_id(c), "conduit.denied");
		if (i == 0)
			add_str(r, "greeting", "hello, world");
		send_msg(&s, r);
		cdt_msg_free(c);
	}
	end_session(&s);
	assert_int_equal(reap(&s), 0);
	while ((n = read(s.out, out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(s.out);
	assert_string_equal(out, "hello, world\n");
}

/* A broker that breaks the protocol: the client says so and fails. */
static void test_client_bogus_broker(void **state)
{
	(void)state;
	char *argv[] = {(char *)client_path, "--once", NULL};
	struct spawned s;

	spawn(&s, argv);
	hello(&s, "", "", "client");
	cdt_msg_free(recv_msg(&s)); /* SUBSCRIBE */
	cdt_msg_free(recv_msg(&s)); /* CALL */
	send_msg(&s, msg_new(CDT_KIND_REPLY, 424242, NULL));
	assert_int_equal(reap(&s), 1);
	close(s.out);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server),
		cmocka_unit_test(test_client_once),
		cmocka_unit_test(test_client_loop),
		cmocka_unit_test(test_client_bogus_broker),
	};
	if (argc != 3 || cdt_init() < 0) {
		fprintf(stderr, "usage: %s HELLO-SERVER HELLO-CLIENT\n", argv[0]);
		return 2;
	}
	server_path = argv[1];
	client_path = argv[2];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
