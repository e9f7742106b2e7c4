/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the layer session (lib/layer*.c) against a broker that sends any
 * sequence of well-formed messages, interleaved with what a layer program
 * does: dispatch, calls (blocking and asynchronous), late answers to the
 * calls it serves, events, FIN.  The codec and channel have their own
 * harnesses; this one looks for state bugs: use after free in callbacks,
 * leaks, double answers, a violation that does not stick.
 *
 * Input: a list of ops, one byte each plus operands.
 *   0 k i n   the broker sends a message: kind k % 6 + 1, call_id i, name
 *             names[n % N] (kinds without a name get none); bit 3 of the
 *             op byte adds a `_caller` argument, bit 4 a bulk value (in a
 *             memfd, or with bit 6 in a BULK frame), bit 5 makes that value
 *             fail to open
 *   1         cdt_layer_dispatch()
 *   2         cdt_layer_call_async()
 *   3         answer the oldest kept incoming call (REPLY)
 *   4         answer it with an ERROR
 *   5         cdt_layer_call() with a timeout of 0
 *   6         the broker's FIN
 *   7         publish an event, then subscribe to ev.b
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conduit/conduit.h"
#include "msg.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
	"conduit.ping", "x.serve", "x.keep", "ev.a", "ev.b", "x.other", "conduit.denied",
};
#define NNAMES	 (sizeof(names) / sizeof(names[0]))
#define KEEP_MAX 4

struct fl {
	cdt_msg *kept[KEEP_MAX];
	size_t nkept;
	size_t completions;
	int last_err;
};

static struct fl fl;
static cdt_keys *keys;
static int devnull;
static int probe; /* the lowest free fd when the input started */

/* Results the harness does not care about (the checks are elsewhere). */
static void ignore(int r)
{
	(void)r;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (cdt_init() < 0 || cdt_keys_new(CDT_SUITE_AUTO, &keys) < 0)
		abort();
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0)
		abort();
	return 0;
}

static void on_serve(cdt_layer *layer, cdt_msg *call, void *userdata)
{
	(void)userdata;
	/* Answer now, and check a second answer is refused. */
	if (cdt_layer_reply(layer, call, NULL) == 0 &&
	    cdt_layer_reply(layer, call, NULL) != -ENOENT)
		abort();
	cdt_msg_free(call);
}

static void on_keep(cdt_layer *layer, cdt_msg *call, void *userdata)
{
	(void)layer;
	(void)userdata;
	if (fl.nkept == KEEP_MAX) {
		cdt_msg_free(fl.kept[0]);
		memmove(fl.kept, fl.kept + 1, (KEEP_MAX - 1) * sizeof(fl.kept[0]));
		fl.nkept--;
	}
	fl.kept[fl.nkept++] = call;
}

static void on_event(cdt_layer *layer, const cdt_msg *event, void *userdata)
{
	(void)layer;
	(void)userdata;
	(void)cdt_msg_name(event);
}

static void on_reply(cdt_layer *layer, int result, cdt_msg *reply, void *userdata)
{
	(void)userdata;
	if ((result == 0 || result == -EREMOTEIO) != (reply != NULL))
		abort();
	fl.completions++;
	/* Calling back into the layer from a completion must be safe. */
	if (result < 0 && result != -EREMOTEIO && cdt_layer_error(layer) == 0 &&
	    result != -ECANCELED)
		abort();
}

/* Give m a bulk value (docs/protocol.md sections 4.1 and 4.2), in a BULK
 * frame (frame) or a memfd, sealed for real or, with tamper, announced
 * under an id that does not open it: the layer must resolve the first and
 * refuse the message of the second. */
static cdt_msg *with_bulk(cdt_msg *m, bool tamper, bool frame)
{
	/* One byte too long for a BULK frame: a memfd. */
	static uint8_t value[MSG_BULKF_MAX + 1];
	size_t len = frame ? CDT_BULK_MIN : sizeof(value);
	cdt_msg *s = NULL, *t = NULL;
	uint8_t enc[512];
	long n;
	int fd = -1;

	if (cdt_msg_add_bytes(m, "data", value, len) < 0 || msg_bulk_seal(m, &s) < 0 || !s ||
	    s->nbulkf != frame)
		abort();
	cdt_msg_free(m);
	if (!tamper)
		return s;
	n = cdt_msg_encode(s, enc, sizeof(enc));
	if (!frame)
		fd = fcntl(cdt_msg_fds(s)[0], F_DUPFD_CLOEXEC, 3);
	if (n <= 0 || (size_t)n > sizeof(enc) || (!frame && fd < 0))
		abort();
	/* The last byte of the id (memfd: before the fd index), bound by
	 * the AEAD. */
	enc[frame ? n - 1 : n - 2] ^= 1;
	if (cdt_msg_decode(enc, (size_t)n, &fd, frame ? 0 : 1, &t) < 0)
		abort();
	if (frame) {
		const uint8_t *p;
		size_t flen;
		msg_bulkf_frame(s, 0, &p, &flen);
		if (msg_bulkf_attach(t, p, flen) < 0)
			abort();
	}
	cdt_msg_free(s);
	return t;
}

static void broker_msg(cdt_chan *broker, const uint8_t *p, unsigned op)
{
	bool caller = op & 8;
	enum cdt_kind kind = (enum cdt_kind)(p[0] % 6 + 1);
	const char *name = names[p[2] % NNAMES];
	cdt_msg *m = NULL;

	if (kind == CDT_KIND_HELLO || kind == CDT_KIND_REPLY)
		name = NULL;
	if (cdt_msg_new(kind, p[1], name, &m) < 0)
		return;
	if (caller && cdt_msg_add_string(m, "_caller", "peer", 4) < 0)
		abort();
	if (kind == CDT_KIND_HELLO && (cdt_msg_add_u64(m, "version", 1) < 0 ||
				       cdt_msg_add_string(m, "layer", "again", 5) < 0))
		abort();
	if (op & 16)
		m = with_bulk(m, op & 32, op & 64);
	ignore(cdt_chan_send(broker, m));
	cdt_msg_free(m);
}

/* Read what the layer sent so its queue never fills. */
static void broker_drain(cdt_chan *broker)
{
	cdt_msg *m = NULL;
	while (cdt_chan_recv(broker, &m) == 0) {
		cdt_msg_free(m);
		m = NULL;
	}
}

static cdt_layer *layer_up(cdt_chan **ret_broker)
{
	const struct cdt_layer_options opts = {.provide = "x.keep x.serve", .publish = "ev.p"};
	cdt_layer *layer = NULL;
	cdt_msg *hello = NULL;
	int sv[2], kp[2];

	/* A leaked fd would take this slot by the end of the input. */
	probe = dup(devnull);
	if (probe < 0)
		abort();
	close(probe);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ||
	    pipe2(kp, O_CLOEXEC) < 0)
		abort();
	if (cdt_keys_send(keys, kp[1]) < 0)
		abort();
	close(kp[1]);
	if (cdt_chan_new(sv[0], keys, CDT_ROLE_BROKER, ret_broker) < 0)
		abort();
	if (cdt_msg_new(CDT_KIND_HELLO, 0, NULL, &hello) < 0 ||
	    cdt_msg_add_u64(hello, "version", 1) < 0 ||
	    cdt_msg_add_string(hello, "layer", "fuzz", 4) < 0 ||
	    cdt_chan_send(*ret_broker, hello) < 0)
		abort();
	cdt_msg_free(hello);
	if (cdt_layer_open_fds(sv[1], kp[0], &opts, &layer) < 0)
		abort();
	if (cdt_layer_serve(layer, "x.serve", on_serve, NULL) < 0 ||
	    cdt_layer_serve(layer, "x.keep", on_keep, NULL) < 0 ||
	    cdt_layer_subscribe(layer, "ev.a", on_event, NULL) < 0)
		abort();
	return layer;
}

static void answer_kept(cdt_layer *layer, bool error)
{
	if (!fl.nkept)
		return;
	cdt_msg *call = fl.kept[0];
	int r = error ? cdt_layer_reply_error(layer, call, "x.failed")
		      : cdt_layer_reply(layer, call, NULL);
	if (r == 0 && cdt_layer_reply(layer, call, NULL) != -ENOENT)
		abort();
	cdt_msg_free(call);
	memmove(fl.kept, fl.kept + 1, (KEEP_MAX - 1) * sizeof(fl.kept[0]));
	fl.nkept--;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cdt_chan *broker = NULL;
	cdt_layer *layer = layer_up(&broker);
	cdt_msg *call = NULL, *reply = NULL;
	size_t i = 0;

	memset(&fl, 0, sizeof(fl));
	if (cdt_msg_new(CDT_KIND_CALL, 1, "x.other", &call) < 0)
		abort();
	while (i < size) {
		unsigned op = data[i++];
		int before = cdt_layer_error(layer);
		switch (op & 7) {
		case 0:
			if (size - i < 3)
				goto done;
			broker_msg(broker, data + i, op);
			i += 3;
			break;
		case 1:
			ignore(cdt_layer_dispatch(layer));
			break;
		case 2:
			ignore(cdt_layer_call_async(layer, call, on_reply, NULL));
			break;
		case 3:
		case 4:
			answer_kept(layer, (op & 7) == 4);
			break;
		case 5:
			if (cdt_layer_call(layer, call, 0, &reply) == 0)
				cdt_msg_free(reply);
			reply = NULL;
			break;
		case 6:
			ignore(cdt_chan_close(broker));
			break;
		case 7: {
			cdt_msg *ev = NULL;
			if (cdt_msg_new(CDT_KIND_EVENT, 0, "ev.p", &ev) < 0)
				abort();
			ignore(cdt_layer_publish(layer, ev));
			cdt_msg_free(ev);
			ignore(cdt_layer_subscribe(layer, "ev.b", on_event, NULL));
			break;
		}
		}
		/* Once broken, always broken with the same error. */
		if (before && cdt_layer_error(layer) != before)
			abort();
		broker_drain(broker);
	}
done:
	ignore(cdt_layer_dispatch(layer));
	for (size_t k = 0; k < fl.nkept; k++)
		cdt_msg_free(fl.kept[k]);
	fl.nkept = 0;
	cdt_msg_free(call);
	cdt_layer_free(layer);
	cdt_chan_free(broker);
	int fd = dup(devnull);
	if (fd != probe)
		abort();
	close(fd);
	return 0;
}
