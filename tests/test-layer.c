/* SPDX-License-Identifier: MIT */
/* The layer API against an in-process fake broker: the other end of the
 * socketpair as a BROKER channel, the key blob written into a pipe. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "chan-util.h"
#include "chan.h"
#include "conduit/conduit.h"
#include "layer.h"

#define WAIT_MS 10000 /* generous: only a hang would reach it */

struct fake {
	cdt_chan *broker;
	cdt_layer *layer;
	int chan_fd; /* the layer's end, before open */
	int key_fd;
	bool closed; /* the broker thread sent its FIN */
};

static cdt_msg *msg_new(enum cdt_kind kind, uint64_t id, const char *name)
{
	cdt_msg *m = NULL;
	assert_int_equal(cdt_msg_new(kind, id, name, &m), 0);
	return m;
}

static cdt_msg *broker_hello(const char *layer_name)
{
	cdt_msg *m = msg_new(CDT_KIND_HELLO, 0, NULL);
	assert_int_equal(cdt_msg_add_u64(m, "version", 1), 0);
	if (layer_name)
		assert_int_equal(cdt_msg_add_string(m, "layer", layer_name, strlen(layer_name)), 0);
	return m;
}

/* Socketpair, broker channel, key pipe holding one blob. */
static void fake_prepare(struct fake *f)
{
	cdt_keys *keys = NULL;
	int sv[2], kp[2];

	memset(f, 0, sizeof(*f));
	assert_int_equal(cdt_keys_new(CDT_SUITE_AUTO, &keys), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pipe2(kp, O_CLOEXEC), 0);
	assert_int_equal(cdt_keys_send(keys, kp[1]), 0);
	close(kp[1]);
	assert_int_equal(cdt_chan_new(sv[0], keys, CDT_ROLE_BROKER, &f->broker), 0);
	cdt_keys_free(keys);
	f->chan_fd = sv[1];
	f->key_fd = kp[0];
}

static void broker_send(struct fake *f, cdt_msg *m)
{
	assert_int_equal(cdt_chan_send_wait(f->broker, m, WAIT_MS), 0);
	cdt_msg_free(m);
}

static cdt_msg *broker_recv(struct fake *f)
{
	cdt_msg *m = NULL;
	assert_int_equal(cdt_chan_recv_wait(f->broker, &m, WAIT_MS), 0);
	return m;
}

/* The broker's HELLO is queued first; the layer reads it after sending its
 * own, which the broker then checks. */
static int fake_open(struct fake *f, const struct cdt_layer_options *opts, cdt_msg *hello)
{
	fake_prepare(f);
	if (hello)
		broker_send(f, hello);
	return cdt_layer_open_fds(f->chan_fd, f->key_fd, opts, &f->layer);
}

static const struct cdt_layer_options greeter_opts = {
	.provide = "hello.greet hello.slow",
	.publish = "hello.tick",
};

static void fake_up(struct fake *f)
{
	const char *s;
	uint64_t v;

	assert_int_equal(fake_open(f, &greeter_opts, broker_hello("greeter")), 0);
	cdt_msg *h = broker_recv(f);
	assert_int_equal(cdt_msg_kind(h), CDT_KIND_HELLO);
	assert_int_equal(cdt_msg_get_u64(h, "version", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(cdt_msg_get_string(h, "provide", &s, NULL), 0);
	assert_string_equal(s, "hello.greet hello.slow");
	assert_int_equal(cdt_msg_get_string(h, "publish", &s, NULL), 0);
	assert_string_equal(s, "hello.tick");
	assert_int_equal(cdt_msg_nargs(h), 3);
	cdt_msg_free(h);
	assert_string_equal(cdt_layer_name(f->layer), "greeter");
}

static void fake_down(struct fake *f)
{
	cdt_layer_free(f->layer);
	cdt_chan_free(f->broker);
}

static void test_open(void **state)
{
	(void)state;
	size_t before = fd_count();
	struct fake f;
	fake_up(&f);
	assert_int_equal(cdt_layer_error(f.layer), 0);
	assert_false(cdt_layer_want_dispatch(f.layer));
	assert_int_equal(cdt_layer_dispatch(f.layer), 0);
	fake_down(&f);
	assert_int_equal(fd_count(), before); /* key pipe closed, channel too */
}

static void test_open_empty_lists(void **state)
{
	(void)state;
	struct fake f;
	const char *s;
	assert_int_equal(fake_open(&f, NULL, broker_hello("x")), 0);
	cdt_msg *h = broker_recv(&f);
	assert_int_equal(cdt_msg_get_string(h, "provide", &s, NULL), 0);
	assert_string_equal(s, "");
	assert_int_equal(cdt_msg_get_string(h, "publish", &s, NULL), 0);
	assert_string_equal(s, "");
	cdt_msg_free(h);
	fake_down(&f);
}

/* Every way the broker's HELLO can be wrong; nothing leaks on failure. */
static void test_open_bad_hello(void **state)
{
	(void)state;
	char name[CDT_NAME_MAX + 2];
	size_t before = fd_count();
	struct fake f;

	assert_int_equal(fake_open(&f, NULL, msg_new(CDT_KIND_CALL, 1, "conduit.ping")),
			 -CDT_E_PROTO);
	cdt_chan_free(f.broker);
	assert_int_equal(fake_open(&f, NULL, msg_new(CDT_KIND_EVENT, 0, "a.b")), -CDT_E_PROTO);
	cdt_chan_free(f.broker);
	assert_int_equal(fake_open(&f, NULL, broker_hello(NULL)), -CDT_E_PROTO);
	cdt_chan_free(f.broker);
	assert_int_equal(fake_open(&f, NULL, broker_hello("")), -CDT_E_PROTO);
	cdt_chan_free(f.broker);
	cdt_msg *h = msg_new(CDT_KIND_HELLO, 0, NULL);
	assert_int_equal(cdt_msg_add_string(h, "layer", "x", 1), 0);
	assert_int_equal(fake_open(&f, NULL, h), -CDT_E_PROTO); /* no version */
	cdt_chan_free(f.broker);
	h = msg_new(CDT_KIND_HELLO, 0, NULL);
	assert_int_equal(cdt_msg_add_u64(h, "version", 2), 0);
	assert_int_equal(cdt_msg_add_string(h, "layer", "x", 1), 0);
	assert_int_equal(fake_open(&f, NULL, h), -CDT_E_VERSION);
	cdt_chan_free(f.broker);
	/* The name: exactly CDT_NAME_MAX bytes is fine, one more is not. */
	memset(name, 'n', sizeof(name) - 1);
	name[CDT_NAME_MAX] = '\0';
	assert_int_equal(fake_open(&f, NULL, broker_hello(name)), 0);
	assert_string_equal(cdt_layer_name(f.layer), name);
	fake_down(&f);
	name[CDT_NAME_MAX] = 'n';
	name[CDT_NAME_MAX + 1] = '\0';
	assert_int_equal(fake_open(&f, NULL, broker_hello(name)), -CDT_E_PROTO);
	cdt_chan_free(f.broker);
	/* The broker's FIN instead of a HELLO. */
	fake_prepare(&f);
	assert_int_equal(cdt_chan_close(f.broker), 0);
	assert_int_equal(cdt_layer_open_fds(f.chan_fd, f.key_fd, NULL, &f.layer), -CDT_E_CLOSED);
	cdt_chan_free(f.broker);
	assert_int_equal(fd_count(), before);
}

static void test_open_timeout(void **state)
{
	(void)state;
	struct cdt_layer_options o = {.hello_timeout_ms = 20};
	struct fake f;
	assert_int_equal(fake_open(&f, &o, NULL), -ETIMEDOUT);
	cdt_chan_free(f.broker);
}

static void test_open_bad_args(void **state)
{
	(void)state;
	static const char *const bad[] = {"b.x a.x", "a.x a.x", " a.x", "a.x ", "a.x  b.x", "a..x"};
	size_t before = fd_count();
	struct fake f;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cdt_layer_options o = {.provide = bad[i]};
		struct cdt_layer_options p = {.publish = bad[i]};
		assert_int_equal(fake_open(&f, &o, NULL), -EINVAL);
		cdt_chan_free(f.broker);
		assert_int_equal(fake_open(&f, &p, NULL), -EINVAL);
		cdt_chan_free(f.broker);
	}
	/* A key pipe closed without a blob. */
	int sv[2], kp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pipe2(kp, O_CLOEXEC), 0);
	close(kp[1]);
	assert_int_equal(cdt_layer_open_fds(sv[1], kp[0], NULL, &f.layer), -CDT_E_TRUNCATED);
	close(sv[0]);
	/* Bad fds: still owned (and closed) by the call. */
	assert_int_equal(pipe2(kp, O_CLOEXEC), 0);
	assert_int_equal(cdt_layer_open_fds(kp[0], kp[0], NULL, &f.layer), -EINVAL);
	assert_int_equal(cdt_layer_open_fds(kp[1], -1, NULL, &f.layer), -EINVAL);
	assert_int_equal(cdt_layer_open_fds(-1, -1, NULL, &f.layer), -EINVAL);
	assert_int_equal(fd_count(), before);
}

/* ---- calls ---- */

struct script {
	struct fake *f;
	const char *answer_error; /* ERROR name, or NULL for a REPLY */
	bool ping_first;	  /* a ping and an event before answering */
	uint64_t ping_reply_id;
	int ok;
};

/* The broker side of one blocking call, in a thread. */
static void *broker_answer(void *arg)
{
	struct script *s = arg;
	cdt_msg *call = NULL, *m = NULL;

	if (cdt_chan_recv_wait(s->f->broker, &call, WAIT_MS) < 0 ||
	    cdt_msg_kind(call) != CDT_KIND_CALL || strcmp(cdt_msg_name(call), "x.echo") != 0)
		goto out;
	if (s->ping_first) {
		if (cdt_msg_new(CDT_KIND_CALL, 77, "conduit.ping", &m) < 0 ||
		    cdt_chan_send_wait(s->f->broker, m, WAIT_MS) < 0)
			goto out;
		cdt_msg_free(m);
		m = NULL;
		if (cdt_msg_new(CDT_KIND_CALL, 78, "hello.greet", &m) < 0 ||
		    cdt_chan_send_wait(s->f->broker, m, WAIT_MS) < 0)
			goto out;
		cdt_msg_free(m);
		m = NULL;
		/* The ping is answered while the call still waits. */
		if (cdt_chan_recv_wait(s->f->broker, &m, WAIT_MS) < 0 ||
		    cdt_msg_kind(m) != CDT_KIND_REPLY)
			goto out;
		s->ping_reply_id = cdt_msg_call_id(m);
		cdt_msg_free(m);
		m = NULL;
	}
	if (s->answer_error) {
		if (cdt_msg_new(CDT_KIND_ERROR, cdt_msg_call_id(call), s->answer_error, &m) < 0)
			goto out;
	} else if (cdt_msg_new(CDT_KIND_REPLY, cdt_msg_call_id(call), NULL, &m) < 0 ||
		   cdt_msg_add_u64(m, "n", 42) < 0) {
		goto out;
	}
	if (cdt_chan_send_wait(s->f->broker, m, WAIT_MS) < 0)
		goto out;
	s->ok = 1;
out:
	cdt_msg_free(call);
	cdt_msg_free(m);
	return NULL;
}

static int call_blocking(struct script *s, cdt_msg **ret_reply)
{
	pthread_t t;
	cdt_msg *call = msg_new(CDT_KIND_CALL, 1, "x.echo");
	assert_int_equal(pthread_create(&t, NULL, broker_answer, s), 0);
	int r = cdt_layer_call(s->f->layer, call, WAIT_MS, ret_reply);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(s->ok, 1);
	cdt_msg_free(call);
	return r;
}

static void test_call_reply(void **state)
{
	(void)state;
	struct fake f;
	struct script s = {.f = &f};
	cdt_msg *reply = NULL;
	uint64_t n;
	fake_up(&f);
	assert_int_equal(call_blocking(&s, &reply), 0);
	assert_int_equal(cdt_msg_kind(reply), CDT_KIND_REPLY);
	assert_int_equal(cdt_msg_get_u64(reply, "n", &n), 0);
	assert_int_equal(n, 42);
	cdt_msg_free(reply);
	assert_string_equal(cdt_layer_error_name(f.layer), "");
	fake_down(&f);
}

static void test_call_error(void **state)
{
	(void)state;
	struct fake f;
	struct script s = {.f = &f, .answer_error = "conduit.denied"};
	cdt_msg *reply = NULL;
	fake_up(&f);
	assert_int_equal(call_blocking(&s, &reply), -EREMOTEIO);
	assert_null(reply);
	assert_string_equal(cdt_layer_error_name(f.layer), "conduit.denied");
	assert_int_equal(cdt_layer_error(f.layer), 0);
	fake_down(&f);
}

static int served;
static void on_greet(cdt_layer *layer, cdt_msg *call, void *userdata);

/* While the call waits, a ping is answered at once; a CALL is queued and
 * its handler runs only at the next dispatch. */
static void test_call_queues(void **state)
{
	(void)state;
	struct fake f;
	struct script s = {.f = &f, .ping_first = true};
	cdt_msg *reply = NULL;
	fake_up(&f);
	assert_int_equal(cdt_layer_serve(f.layer, "hello.greet", on_greet, NULL), 0);
	served = 0;
	assert_int_equal(call_blocking(&s, &reply), 0);
	cdt_msg_free(reply);
	assert_int_equal(s.ping_reply_id, 77);
	assert_int_equal(served, 0);
	assert_true(cdt_layer_want_dispatch(f.layer));
	assert_int_equal(cdt_layer_dispatch(f.layer), 1);
	assert_int_equal(served, 1);
	assert_false(cdt_layer_want_dispatch(f.layer));
	reply = broker_recv(&f);
	assert_int_equal(cdt_msg_call_id(reply), 78);
	cdt_msg_free(reply);
	fake_down(&f);
}

/* The broker side of the end of a session: a ping, then the FIN. */
static void *broker_ping_fin(void *arg)
{
	struct fake *f = arg;
	cdt_msg *m = NULL;

	if (cdt_msg_new(CDT_KIND_CALL, 79, "conduit.ping", &m) == 0 &&
	    cdt_chan_send_wait(f->broker, m, WAIT_MS) == 0 && cdt_chan_close(f->broker) == 0)
		f->closed = true;
	cdt_msg_free(m);
	return NULL;
}

/* Over the rings, a call without deadline and the serving loop with
 * nothing queued sleep in read() on the announcement pipe: the ping that
 * comes while the call waits is answered, the call that comes is queued
 * for the next dispatch, and cdt_layer_run() answers a ping and ends on
 * the broker's FIN. */
static void test_ring_sleeps(void **state)
{
	(void)state;
	struct fake f;
	struct script s = {.f = &f, .ping_first = true};
	cdt_msg *reply = NULL, *call = msg_new(CDT_KIND_CALL, 1, "x.echo");
	pthread_t t;

	fake_prepare(&f);
	assert_int_equal(chan_ring_offer(f.broker), 0);
	broker_send(&f, broker_hello("greeter"));
	assert_int_equal(cdt_layer_open_fds(f.chan_fd, f.key_fd, &greeter_opts, &f.layer), 0);
	cdt_msg_free(broker_recv(&f));
	assert_int_equal(cdt_layer_serve(f.layer, "hello.greet", on_greet, NULL), 0);
	served = 0;
	assert_int_equal(pthread_create(&t, NULL, broker_answer, &s), 0);
	assert_int_equal(cdt_layer_call(f.layer, call, -1, &reply), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(s.ok, 1);
	assert_int_equal(s.ping_reply_id, 77);
	assert_int_equal(cdt_msg_kind(reply), CDT_KIND_REPLY);
	cdt_msg_free(reply);
	cdt_msg_free(call);
	assert_true(f.layer->chan->ring && f.layer->chan->ring->rx_on);
	assert_true(f.layer->chan->ring->kick_block);
	assert_int_equal(cdt_layer_dispatch(f.layer), 1);
	assert_int_equal(served, 1);
	reply = broker_recv(&f);
	assert_int_equal(cdt_msg_call_id(reply), 78);
	cdt_msg_free(reply);

	assert_int_equal(pthread_create(&t, NULL, broker_ping_fin, &f), 0);
	assert_int_equal(cdt_layer_run(f.layer), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(f.closed);
	assert_true(f.layer->chan->ring->kick_block);
	reply = broker_recv(&f);
	assert_int_equal(cdt_msg_call_id(reply), 79);
	cdt_msg_free(reply);
	fake_down(&f);
}

static int async_results[4];
static int async_count;

static void on_async(cdt_layer *layer, int result, cdt_msg *reply, void *userdata)
{
	(void)layer;
	int i = (int)(intptr_t)userdata;
	async_results[i] = result;
	async_count++;
	if (result == 0)
		assert_int_equal(cdt_msg_kind(reply), CDT_KIND_REPLY);
	else if (result == -EREMOTEIO)
		assert_string_equal(cdt_msg_name(reply), "conduit.timeout");
	else
		assert_null(reply);
}

/* Three calls answered in reverse order, the middle one with an ERROR. */
static void test_call_async_out_of_order(void **state)
{
	(void)state;
	struct fake f;
	uint64_t ids[3];
	fake_up(&f);
	async_count = 0;
	for (int i = 0; i < 3; i++) {
		cdt_msg *c = msg_new(CDT_KIND_CALL, 1, "x.echo");
		assert_int_equal(cdt_layer_call_async(f.layer, c, on_async, (void *)(intptr_t)i),
				 0);
		cdt_msg_free(c);
	}
	for (int i = 0; i < 3; i++) {
		cdt_msg *c = broker_recv(&f);
		ids[i] = cdt_msg_call_id(c);
		for (int j = 0; j < i; j++)
			assert_true(ids[j] != ids[i]);
		cdt_msg_free(c);
	}
	for (int i = 2; i >= 0; i--)
		broker_send(&f, i == 1 ? msg_new(CDT_KIND_ERROR, ids[i], "conduit.timeout")
				       : msg_new(CDT_KIND_REPLY, ids[i], NULL));
	while (async_count < 3)
		assert_true(cdt_layer_dispatch(f.layer) >= 0);
	assert_int_equal(async_results[0], 0);
	assert_int_equal(async_results[1], -EREMOTEIO);
	assert_int_equal(async_results[2], 0);
	/* A second answer for a completed call is a bogus id. */
	broker_send(&f, msg_new(CDT_KIND_REPLY, ids[0], NULL));
	assert_int_equal(cdt_layer_dispatch(f.layer), -CDT_E_PROTO);
	fake_down(&f);
}

static void test_call_timeout(void **state)
{
	(void)state;
	struct fake f;
	cdt_msg *reply = NULL;
	fake_up(&f);
	cdt_msg *c = msg_new(CDT_KIND_CALL, 1, "x.echo");
	assert_int_equal(cdt_layer_call(f.layer, c, 20, &reply), -ETIMEDOUT);
	assert_null(reply);
	/* The late answer is dropped, not a violation. */
	cdt_msg *in = broker_recv(&f);
	broker_send(&f, msg_new(CDT_KIND_REPLY, cdt_msg_call_id(in), NULL));
	cdt_msg_free(in);
	assert_int_equal(cdt_layer_dispatch(f.layer), 1);
	assert_int_equal(cdt_layer_error(f.layer), 0);
	/* Bad arguments are local mistakes, the layer stays usable. */
	cdt_msg *e = msg_new(CDT_KIND_EVENT, 0, "x.y");
	assert_int_equal(cdt_layer_call(f.layer, e, 20, &reply), -EINVAL);
	cdt_msg_free(e);
	assert_int_equal(cdt_msg_add_string(c, "_caller", "me", 2), 0);
	assert_int_equal(cdt_layer_call_async(f.layer, c, on_async, NULL), -EINVAL);
	cdt_msg_free(c);
	assert_int_equal(cdt_layer_error(f.layer), 0);
	fake_down(&f);
}

/* ---- serving ---- */

static cdt_msg *kept;

static void on_greet(cdt_layer *layer, cdt_msg *call, void *userdata)
{
	(void)userdata;
	const char *who = "nobody";
	served++;
	if (cdt_msg_get_string(call, "_caller", &who, NULL) < 0)
		who = "nobody";
	cdt_msg *r = msg_new(CDT_KIND_REPLY, 1, NULL);
	assert_int_equal(cdt_msg_add_string(r, "greeting", who, strlen(who)), 0);
	assert_int_equal(cdt_layer_reply(layer, call, r), 0);
	assert_int_equal(cdt_layer_reply(layer, call, r), -ENOENT);
	cdt_msg_free(r);
	cdt_msg_free(call);
}

static void on_slow(cdt_layer *layer, cdt_msg *call, void *userdata)
{
	(void)layer;
	(void)userdata;
	kept = call;
}

static void test_serve(void **state)
{
	(void)state;
	struct fake f;
	const char *s;
	fake_up(&f);
	assert_int_equal(cdt_layer_serve(f.layer, "hello.greet", on_greet, NULL), 0);
	assert_int_equal(cdt_layer_serve(f.layer, "hello.greet", on_greet, NULL), -EEXIST);
	assert_int_equal(cdt_layer_serve(f.layer, "hello.other", on_greet, NULL), -ENOENT);

	/* Reply now. */
	cdt_msg *c = msg_new(CDT_KIND_CALL, 500, "hello.greet");
	assert_int_equal(cdt_msg_add_string(c, "_caller", "client", 6), 0);
	broker_send(&f, c);
	served = 0;
	assert_int_equal(cdt_layer_dispatch(f.layer), 1);
	assert_int_equal(served, 1);
	cdt_msg *r = broker_recv(&f);
	assert_int_equal(cdt_msg_kind(r), CDT_KIND_REPLY);
	assert_int_equal(cdt_msg_call_id(r), 500);
	assert_int_equal(cdt_msg_get_string(r, "greeting", &s, NULL), 0);
	assert_string_equal(s, "client");
	cdt_msg_free(r);

	/* Provided but not served yet: the library answers. */
	broker_send(&f, msg_new(CDT_KIND_CALL, 501, "hello.slow"));
	assert_int_equal(cdt_layer_dispatch(f.layer), 1);
	r = broker_recv(&f);
	assert_int_equal(cdt_msg_kind(r), CDT_KIND_ERROR);
	assert_string_equal(cdt_msg_name(r), "conduit.unavailable");
	cdt_msg_free(r);

	/* Reply later, with an ERROR. */
	assert_int_equal(cdt_layer_serve(f.layer, "hello.slow", on_slow, NULL), 0);
	broker_send(&f, msg_new(CDT_KIND_CALL, 502, "hello.slow"));
	kept = NULL;
	assert_int_equal(cdt_layer_dispatch(f.layer), 1);
	assert_non_null(kept);
	assert_int_equal(cdt_layer_reply_error(f.layer, kept, "hello.too_slow"), 0);
	assert_int_equal(cdt_layer_reply_error(f.layer, kept, "hello.too_slow"), -ENOENT);
	cdt_msg_free(kept);
	r = broker_recv(&f);
	assert_int_equal(cdt_msg_kind(r), CDT_KIND_ERROR);
	assert_int_equal(cdt_msg_call_id(r), 502);
	assert_string_equal(cdt_msg_name(r), "hello.too_slow");
	cdt_msg_free(r);

	/* Reply later, empty REPLY. */
	broker_send(&f, msg_new(CDT_KIND_CALL, 503, "hello.slow"));
	assert_int_equal(cdt_layer_dispatch(f.layer), 1);
	assert_int_equal(cdt_layer_reply(f.layer, kept, NULL), 0);
	cdt_msg_free(kept);
	r = broker_recv(&f);
	assert_int_equal(cdt_msg_kind(r), CDT_KIND_REPLY);
	assert_int_equal(cdt_msg_call_id(r), 503);
	assert_int_equal(cdt_msg_nargs(r), 0);
	cdt_msg_free(r);

	/* The broker reusing an id we still owe an answer breaks the session. */
	broker_send(&f, msg_new(CDT_KIND_CALL, 504, "hello.slow"));
	assert_int_equal(cdt_layer_dispatch(f.layer), 1);
	broker_send(&f, msg_new(CDT_KIND_CALL, 504, "hello.slow"));
	cdt_msg *first = kept;
	assert_int_equal(cdt_layer_dispatch(f.layer), -CDT_E_PROTO);
	assert_int_equal(cdt_layer_reply(f.layer, first, NULL), -CDT_E_PROTO);
	cdt_msg_free(first);
	fake_down(&f);
}

static void test_ping(void **state)
{
	(void)state;
	struct fake f;
	fake_up(&f);
	broker_send(&f, msg_new(CDT_KIND_CALL, 9, "conduit.ping"));
	assert_int_equal(cdt_layer_dispatch(f.layer), 1);
	cdt_msg *r = broker_recv(&f);
	assert_int_equal(cdt_msg_kind(r), CDT_KIND_REPLY);
	assert_int_equal(cdt_msg_call_id(r), 9);
	cdt_msg_free(r);
	fake_down(&f);
}

/* ---- events ---- */

static int events_seen;

static void on_tick(cdt_layer *layer, const cdt_msg *event, void *userdata)
{
	(void)layer;
	const char *pub;
	assert_ptr_equal(userdata, &events_seen);
	assert_int_equal(cdt_msg_get_string(event, "_publisher", &pub, NULL), 0);
	assert_string_equal(pub, "clock");
	events_seen++;
}

static void test_events(void **state)
{
	(void)state;
	struct fake f;
	fake_up(&f);
	cdt_msg *ev = msg_new(CDT_KIND_EVENT, 0, "hello.tick");
	assert_int_equal(cdt_msg_add_u64(ev, "n", 1), 0);
	assert_int_equal(cdt_layer_publish(f.layer, ev), 0);
	cdt_msg *r = broker_recv(&f);
	assert_int_equal(cdt_msg_kind(r), CDT_KIND_EVENT);
	assert_string_equal(cdt_msg_name(r), "hello.tick");
	cdt_msg_free(r);
	assert_int_equal(cdt_msg_add_u64(ev, "_n", 1), 0);
	assert_int_equal(cdt_layer_publish(f.layer, ev), -EINVAL);
	cdt_msg_free(ev);
	ev = msg_new(CDT_KIND_EVENT, 0, "hello.tock");
	assert_int_equal(cdt_layer_publish(f.layer, ev), -EPERM);
	cdt_msg_free(ev);

	assert_int_equal(cdt_layer_subscribe(f.layer, "clock.tick", on_tick, &events_seen), 0);
	assert_int_equal(cdt_layer_subscribe(f.layer, "clock.tick", on_tick, NULL), -EEXIST);
	r = broker_recv(&f);
	assert_int_equal(cdt_msg_kind(r), CDT_KIND_SUBSCRIBE);
	assert_string_equal(cdt_msg_name(r), "clock.tick");
	cdt_msg_free(r);
	events_seen = 0;
	for (int i = 0; i < 2; i++) {
		ev = msg_new(CDT_KIND_EVENT, 0, "clock.tick");
		assert_int_equal(cdt_msg_add_string(ev, "_publisher", "clock", 5), 0);
		broker_send(&f, ev);
	}
	assert_int_equal(cdt_layer_dispatch(f.layer), 2);
	assert_int_equal(events_seen, 2);
	/* An event nobody subscribed to is the broker's fault. */
	broker_send(&f, msg_new(CDT_KIND_EVENT, 0, "clock.tock"));
	assert_int_equal(cdt_layer_dispatch(f.layer), -CDT_E_PROTO);
	fake_down(&f);
}

/* ---- end of session ---- */

static void test_fin(void **state)
{
	(void)state;
	struct fake f;
	cdt_msg *m = NULL;
	fake_up(&f);
	cdt_msg *c = msg_new(CDT_KIND_CALL, 1, "x.echo");
	async_count = 0;
	assert_int_equal(cdt_layer_call_async(f.layer, c, on_async, (void *)(intptr_t)3), 0);
	cdt_msg_free(broker_recv(&f));
	broker_send(&f, msg_new(CDT_KIND_CALL, 5, "conduit.ping"));
	assert_int_equal(cdt_chan_close(f.broker), 0);
	/* The ping before the FIN is answered, then the session ends
	 * cleanly: the pending call fails, our FIN goes back. */
	assert_int_equal(cdt_layer_run(f.layer), 0);
	assert_int_equal(async_count, 1);
	assert_int_equal(async_results[3], -CDT_E_CLOSED);
	assert_int_equal(cdt_layer_error(f.layer), -CDT_E_CLOSED);
	assert_int_equal(cdt_layer_call_async(f.layer, c, on_async, NULL), -CDT_E_CLOSED);
	cdt_msg_free(c);
	m = broker_recv(&f);
	assert_int_equal(cdt_msg_call_id(m), 5);
	cdt_msg_free(m);
	assert_int_equal(cdt_chan_recv_wait(f.broker, &m, WAIT_MS), -CDT_E_CLOSED);
	fake_down(&f);
}

static void test_close_first(void **state)
{
	(void)state;
	struct fake f;
	cdt_msg *m = NULL;
	fake_up(&f);
	assert_int_equal(cdt_layer_close(f.layer), 0);
	assert_int_equal(cdt_chan_recv_wait(f.broker, &m, WAIT_MS), -CDT_E_CLOSED);
	assert_int_equal(cdt_chan_close(f.broker), 0);
	assert_int_equal(cdt_layer_run(f.layer), 0);
	fake_down(&f);
}

static void test_eof(void **state)
{
	(void)state;
	struct fake f;
	cdt_msg *reply = NULL;
	fake_up(&f);
	cdt_msg *c = msg_new(CDT_KIND_CALL, 1, "x.echo");
	async_count = 0;
	assert_int_equal(cdt_layer_call_async(f.layer, c, on_async, (void *)(intptr_t)3), 0);
	cdt_chan_free(f.broker);
	f.broker = NULL;
	assert_int_equal(cdt_layer_call(f.layer, c, WAIT_MS, &reply), -CDT_E_EOF);
	assert_int_equal(async_count, 0);
	assert_true(cdt_layer_want_dispatch(f.layer));
	assert_int_equal(cdt_layer_dispatch(f.layer), -CDT_E_EOF);
	assert_int_equal(async_results[3], -CDT_E_EOF);
	assert_int_equal(cdt_layer_run(f.layer), -CDT_E_EOF);
	cdt_msg_free(c);
	fake_down(&f);
}

static void test_bogus(void **state)
{
	(void)state;
	struct fake f;
	cdt_msg *reply = NULL;
	fake_up(&f);
	broker_send(&f, msg_new(CDT_KIND_REPLY, 12345, NULL));
	assert_int_equal(cdt_layer_dispatch(f.layer), -CDT_E_PROTO);
	cdt_msg *c = msg_new(CDT_KIND_CALL, 1, "x.echo");
	assert_int_equal(cdt_layer_call(f.layer, c, WAIT_MS, &reply), -CDT_E_PROTO);
	cdt_msg_free(c);
	fake_down(&f);

	/* A second HELLO, and a SUBSCRIBE (a layer's message). */
	fake_up(&f);
	broker_send(&f, broker_hello("again"));
	assert_int_equal(cdt_layer_dispatch(f.layer), -CDT_E_PROTO);
	fake_down(&f);
	fake_up(&f);
	broker_send(&f, msg_new(CDT_KIND_SUBSCRIBE, 0, "a.b"));
	assert_int_equal(cdt_layer_dispatch(f.layer), -CDT_E_PROTO);
	fake_down(&f);

	/* A bogus id arriving while a blocking call waits. */
	fake_up(&f);
	broker_send(&f, msg_new(CDT_KIND_ERROR, 999, "conduit.denied"));
	c = msg_new(CDT_KIND_CALL, 1, "x.echo");
	assert_int_equal(cdt_layer_call(f.layer, c, WAIT_MS, &reply), -CDT_E_PROTO);
	cdt_msg_free(c);
	fake_down(&f);
}

static void test_free_cancels(void **state)
{
	(void)state;
	struct fake f;
	fake_up(&f);
	cdt_msg *c = msg_new(CDT_KIND_CALL, 1, "x.echo");
	async_count = 0;
	assert_int_equal(cdt_layer_call_async(f.layer, c, on_async, (void *)(intptr_t)0), 0);
	assert_int_equal(cdt_layer_call_async(f.layer, c, on_async, (void *)(intptr_t)1), 0);
	cdt_msg_free(c);
	cdt_layer_free(f.layer);
	f.layer = NULL;
	assert_int_equal(async_count, 2);
	assert_int_equal(async_results[0], -ECANCELED);
	assert_int_equal(async_results[1], -ECANCELED);
	fake_down(&f);
	cdt_layer_free(NULL);
}

/* ---- limits, at max and max + 1 ---- */

static void test_limit_pending(void **state)
{
	(void)state;
	struct fake f;
	fake_up(&f);
	cdt_msg *c = msg_new(CDT_KIND_CALL, 1, "x.echo");
	async_count = 0;
	for (unsigned i = 0; i < LAYER_PENDING_MAX; i++) {
		assert_int_equal(cdt_layer_call_async(f.layer, c, on_async, (void *)(intptr_t)0),
				 0);
		cdt_msg_free(broker_recv(&f)); /* keep the socket from filling */
	}
	assert_int_equal(cdt_layer_call_async(f.layer, c, on_async, (void *)(intptr_t)0), -EBUSY);
	cdt_msg *reply = NULL;
	assert_int_equal(cdt_layer_call(f.layer, c, 0, &reply), -EBUSY);
	/* One answer frees one slot. */
	broker_send(&f, msg_new(CDT_KIND_REPLY, 1, NULL));
	assert_int_equal(cdt_layer_dispatch(f.layer), 1);
	assert_int_equal(async_count, 1);
	assert_int_equal(cdt_layer_call_async(f.layer, c, on_async, (void *)(intptr_t)0), 0);
	cdt_msg *in = broker_recv(&f);
	assert_int_equal(cdt_msg_call_id(in),
			 LAYER_PENDING_MAX + 1); /* 1 is free again, ids count on */
	cdt_msg_free(in);
	cdt_msg_free(c);
	fake_down(&f);
	assert_int_equal(async_count, 1 + LAYER_PENDING_MAX);
}

static cdt_msg *kept_calls[LAYER_INCOMING_MAX];
static size_t nkept_calls;

static void on_keep(cdt_layer *layer, cdt_msg *call, void *userdata)
{
	(void)layer;
	(void)userdata;
	kept_calls[nkept_calls++] = call;
}

static void test_limit_incoming(void **state)
{
	(void)state;
	struct fake f;
	fake_up(&f);
	assert_int_equal(cdt_layer_serve(f.layer, "hello.slow", on_keep, NULL), 0);
	nkept_calls = 0;
	for (unsigned i = 1; i <= LAYER_INCOMING_MAX + 1; i++) {
		broker_send(&f, msg_new(CDT_KIND_CALL, i, "hello.slow"));
		assert_int_equal(cdt_layer_dispatch(f.layer), 1);
	}
	/* The one past the limit is answered busy by the library. */
	assert_int_equal(nkept_calls, LAYER_INCOMING_MAX);
	cdt_msg *r = broker_recv(&f);
	assert_int_equal(cdt_msg_call_id(r), LAYER_INCOMING_MAX + 1);
	assert_string_equal(cdt_msg_name(r), "conduit.busy");
	cdt_msg_free(r);
	for (size_t i = 0; i < nkept_calls; i++) {
		assert_int_equal(cdt_layer_reply(f.layer, kept_calls[i], NULL), 0);
		cdt_msg_free(kept_calls[i]);
		cdt_msg_free(broker_recv(&f));
	}
	fake_down(&f);
}

struct flood {
	struct fake *f;
	unsigned events;
	int ok;
};

/* Answer the call only after `events` events. */
static void *broker_flood(void *arg)
{
	struct flood *fl = arg;
	cdt_msg *call = NULL, *m = NULL;

	if (cdt_chan_recv_wait(fl->f->broker, &call, WAIT_MS) < 0)
		goto out;
	for (unsigned i = 0; i < fl->events; i++) {
		if (cdt_msg_new(CDT_KIND_EVENT, 0, "clock.tick", &m) < 0 ||
		    cdt_msg_add_string(m, "_publisher", "clock", 5) < 0 ||
		    cdt_chan_send_wait(fl->f->broker, m, WAIT_MS) < 0)
			goto out;
		cdt_msg_free(m);
		m = NULL;
	}
	if (cdt_msg_new(CDT_KIND_REPLY, cdt_msg_call_id(call), NULL, &m) < 0)
		goto out;
	/* Past the limit the layer stops reading: the reply may not fit. */
	(void)!cdt_chan_send_wait(fl->f->broker, m, 200);
	fl->ok = 1;
out:
	cdt_msg_free(call);
	cdt_msg_free(m);
	return NULL;
}

static void test_limit_queue(void **state)
{
	(void)state;
	for (unsigned extra = 0; extra <= 1; extra++) {
		struct fake f;
		struct flood fl = {.f = &f, .events = LAYER_QUEUE_MAX + extra};
		cdt_msg *reply = NULL;
		pthread_t t;
		fake_up(&f);
		assert_int_equal(cdt_layer_subscribe(f.layer, "clock.tick", on_tick, &events_seen),
				 0);
		cdt_msg_free(broker_recv(&f));
		cdt_msg *c = msg_new(CDT_KIND_CALL, 1, "x.echo");
		assert_int_equal(pthread_create(&t, NULL, broker_flood, &fl), 0);
		int r = cdt_layer_call(f.layer, c, WAIT_MS, &reply);
		if (extra) {
			assert_int_equal(r, -ENOBUFS);
			assert_int_equal(cdt_layer_error(f.layer), -ENOBUFS);
		} else {
			assert_int_equal(r, 0);
			cdt_msg_free(reply);
		}
		/* Let the thread finish before the channel goes. */
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_int_equal(fl.ok, 1);
		events_seen = 0;
		while (cdt_layer_want_dispatch(f.layer))
			assert_true(cdt_layer_dispatch(f.layer) > 0);
		assert_int_equal(events_seen, extra ? 0 : LAYER_QUEUE_MAX);
		cdt_msg_free(c);
		fake_down(&f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_open_empty_lists),
		cmocka_unit_test(test_open_bad_hello),
		cmocka_unit_test(test_open_timeout),
		cmocka_unit_test(test_open_bad_args),
		cmocka_unit_test(test_call_reply),
		cmocka_unit_test(test_call_error),
		cmocka_unit_test(test_call_queues),
		cmocka_unit_test(test_call_async_out_of_order),
		cmocka_unit_test(test_call_timeout),
		cmocka_unit_test(test_ring_sleeps),
		cmocka_unit_test(test_serve),
		cmocka_unit_test(test_ping),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_fin),
		cmocka_unit_test(test_close_first),
		cmocka_unit_test(test_eof),
		cmocka_unit_test(test_bogus),
		cmocka_unit_test(test_free_cancels),
		cmocka_unit_test(test_limit_pending),
		cmocka_unit_test(test_limit_incoming),
		cmocka_unit_test(test_limit_queue),
	};
	if (cdt_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
