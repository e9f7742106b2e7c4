/* SPDX-License-Identifier: MIT */
/*
 * bulk-layer: the layer program of the bulk integration test
 * (tests/test-broker-bulk.c).  Honest modes use the layer API, so their
 * long bytes values go as sealed memfds; hostile modes speak the raw
 * channel and send bulk arguments whose memfd is wrong in one way each.
 * Results go to stderr as "RESULT ..." lines, which the broker logs.
 * Built static and without sanitizers, like broker-layer.
 *
 * Usage: bulk-layer callee | caller MAX | evil KIND (KIND tframe: a
 * tampered BULK frame)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <conduit/conduit.h>

#include "buf.h"
#include "msg.h"

#define WAIT_MS	  20000
#define SEALS_ALL (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

static _Noreturn void die(const char *what, int r)
{
	fprintf(stderr, "RESULT fatal %s %s\n", what, cdt_strerror(r));
	exit(2);
}

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 31u + 7u + (i >> 12));
}

/* test.bulk: answer with the same bytes, through the library's send path. */
static void serve_bulk(cdt_layer *layer, cdt_msg *call, void *userdata)
{
	const uint8_t *p;
	size_t n;
	cdt_msg *reply = NULL;
	int r;

	(void)userdata;
	r = cdt_msg_get_bytes(call, "data", &p, &n);
	if (r == 0)
		r = cdt_msg_new(CDT_KIND_REPLY, 1, NULL, &reply); /* id set on reply */
	if (r == 0)
		r = cdt_msg_add_bytes(reply, "data", p, n);
	if (r == 0)
		r = cdt_layer_reply(layer, call, reply);
	else
		r = cdt_layer_reply_error(layer, call, "test.failed");
	fprintf(stderr, "RESULT callee %zu %s\n", n, r == 0 ? "ok" : cdt_strerror(r));
	cdt_msg_free(reply);
	cdt_msg_free(call);
}

static void mode_callee(void)
{
	const struct cdt_layer_options o = {.provide = "test.bulk"};
	cdt_layer *layer;
	int r = cdt_layer_open(&o, &layer);

	if (r < 0)
		die("open", r);
	if ((r = cdt_layer_serve(layer, "test.bulk", serve_bulk, NULL)) < 0)
		die("serve", r);
	fprintf(stderr, "RESULT callee-ready\n");
	r = cdt_layer_run(layer);
	cdt_layer_free(layer);
	exit(r == 0 ? 0 : 2);
}

/* One call with n pattern bytes as `arg`; says whether the same came back. */
static void call_one(cdt_layer *layer, const char *label, const char *method, const char *arg,
		     size_t n)
{
	uint8_t *data = malloc(n ? n : 1);
	cdt_msg *call = NULL, *reply = NULL;
	const uint8_t *p;
	size_t got;
	int r;

	if (!data)
		die("malloc", -ENOMEM);
	for (size_t i = 0; i < n; i++)
		data[i] = pattern(i);
	r = cdt_msg_new(CDT_KIND_CALL, 1, method, &call);
	if (r == 0)
		r = cdt_msg_add_bytes(call, arg, data, n);
	if (r < 0)
		die("call", r);
	r = cdt_layer_call(layer, call, WAIT_MS, &reply);
	if (r == -EREMOTEIO)
		fprintf(stderr, "RESULT %s error %s\n", label, cdt_layer_error_name(layer));
	else if (r < 0)
		fprintf(stderr, "RESULT %s failed %s\n", label, cdt_strerror(r));
	else if (cdt_msg_get_bytes(reply, arg, &p, &got) == 0 && got == n &&
		 memcmp(p, data, n) == 0 && cdt_msg_nfds(reply) == 0)
		fprintf(stderr, "RESULT %s same\n", label);
	else
		fprintf(stderr, "RESULT %s differs\n", label);
	cdt_msg_free(reply);
	cdt_msg_free(call);
	free(data);
}

static void mode_caller(size_t max)
{
	cdt_layer *layer;
	int r = cdt_layer_open(NULL, &layer);

	if (r < 0)
		die("open", r);
	call_one(layer, "below", "test.bulk", "data", CDT_BULK_MIN - 1);
	call_one(layer, "min", "test.bulk", "data", CDT_BULK_MIN);
	/* The longest value of a BULK frame, and the shortest of a memfd. */
	call_one(layer, "fmax", "test.bulk", "data", MSG_BULKF_MAX);
	call_one(layer, "fover", "test.bulk", "data", MSG_BULKF_MAX + 1);
	call_one(layer, "mib", "test.bulk", "data", 1024 * 1024);
	call_one(layer, "max", "test.bulk", "data", max);
	call_one(layer, "over", "test.bulk", "data", max + 1);
	call_one(layer, "ping", "conduit.ping", "payload", 1024 * 1024);
	call_one(layer, "fping", "conduit.ping", "payload", 20000);
	fprintf(stderr, "RESULT caller-done\n");
	r = cdt_layer_run(layer);
	cdt_layer_free(layer);
	exit(r == 0 ? 0 : 2);
}

/* ---- hostile: the raw channel ---- */

static cdt_chan *chan;

static void send_msg(cdt_msg *m)
{
	int r = cdt_chan_send_wait(chan, m, WAIT_MS);

	if (r < 0)
		die("send", r);
	cdt_msg_free(m);
}

static cdt_msg *recv_msg(void)
{
	cdt_msg *m;
	int r = cdt_chan_recv_wait(chan, &m, WAIT_MS);

	if (r < 0)
		die("recv", r);
	return m;
}

static void raw_open(void)
{
	cdt_keys *keys;
	cdt_msg *m;
	int r = cdt_keys_recv(4, &keys);

	if (r < 0)
		die("keys", r);
	close(4);
	r = cdt_chan_new(3, keys, CDT_ROLE_LAYER, &chan);
	cdt_keys_free(keys);
	if (r < 0)
		die("chan", r);
	r = cdt_msg_new(CDT_KIND_HELLO, 0, NULL, &m);
	if (r == 0)
		r = cdt_msg_add_u64(m, "version", 1);
	if (r == 0)
		r = cdt_msg_add_string(m, "provide", "", 0);
	if (r == 0)
		r = cdt_msg_add_string(m, "publish", "", 0);
	if (r < 0)
		die("hello", r);
	send_msg(m);
	cdt_msg_free(recv_msg());
}

/* A memfd of size bytes of garbage with the given seals. */
static int evil_memfd(size_t size, int seals)
{
	int fd = memfd_create("evil", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	uint8_t block[4096];

	if (fd < 0)
		die("memfd", -errno);
	memset(block, 0x5a, sizeof(block));
	for (size_t off = 0; off < size; off += sizeof(block)) {
		size_t k = size - off < sizeof(block) ? size - off : sizeof(block);
		if (pwrite(fd, block, k, (off_t)off) != (ssize_t)k)
			die("pwrite", -errno);
	}
	if (seals && fcntl(fd, F_ADD_SEALS, seals) < 0)
		die("seal", -errno);
	return fd;
}

/* A CALL test.bulk whose `data` is a BULK argument of len on fd, built
 * through the decoder (the builder makes no BULK). */
static cdt_msg *bulk_call(uint64_t len, int fd)
{
	struct buf b;
	cdt_msg *m;
	int fds[1] = {fd};

	buf_init(&b, CDT_MSG_MAX);
	if (buf_put_u8(&b, 1) < 0 || buf_put_u8(&b, CDT_KIND_CALL) < 0 || buf_put_u16(&b, 1) < 0 ||
	    buf_put_u64(&b, 7) < 0 || buf_put_u8(&b, 9) < 0 || buf_append(&b, "test.bulk", 9) < 0 ||
	    buf_put_u8(&b, 4) < 0 || buf_append(&b, "data", 4) < 0 || buf_put_u8(&b, 8) < 0 ||
	    buf_put_u64(&b, len) < 0)
		die("build", -ENOMEM);
	for (size_t i = 0; i < 48; i++)
		if (buf_put_u8(&b, (uint8_t)i) < 0)
			die("build", -ENOMEM);
	if (buf_put_u8(&b, 0) < 0)
		die("build", -ENOMEM);
	int r = cdt_msg_decode(b.data, b.len, fds, 1, &m);
	buf_free(&b);
	if (r < 0)
		die("decode", r);
	return m;
}

static _Noreturn void mode_evil(const char *kind)
{
	const uint64_t len = CDT_BULK_MIN;
	int fd;

	raw_open();
	if (strcmp(kind, "notmemfd") == 0) {
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0)
			die("pipe", -errno);
		close(p[1]);
		fd = p[0];
	} else if (strcmp(kind, "nosealing") == 0) {
		/* Without MFD_ALLOW_SEALING: born with F_SEAL_SEAL only. */
		fd = memfd_create("evil", MFD_CLOEXEC);
		if (fd >= 0 && ftruncate(fd, (off_t)(len + 16)) < 0)
			die("ftruncate", -errno);
	} else if (strcmp(kind, "noseals") == 0)
		fd = evil_memfd(len + 16, 0);
	else if (strcmp(kind, "nowrite") == 0)
		fd = evil_memfd(len + 16, SEALS_ALL & ~F_SEAL_WRITE);
	else if (strcmp(kind, "noshrink") == 0)
		fd = evil_memfd(len + 16, SEALS_ALL & ~F_SEAL_SHRINK);
	else if (strcmp(kind, "nogrow") == 0)
		fd = evil_memfd(len + 16, SEALS_ALL & ~F_SEAL_GROW);
	else if (strcmp(kind, "noseal") == 0)
		fd = evil_memfd(len + 16, SEALS_ALL & ~F_SEAL_SEAL);
	else if (strcmp(kind, "short") == 0)
		fd = evil_memfd(len + 15, SEALS_ALL);
	else if (strcmp(kind, "long") == 0)
		fd = evil_memfd(len + 17, SEALS_ALL);
	else if (strcmp(kind, "tamper") == 0)
		fd = evil_memfd(len + 16, SEALS_ALL);
	else if (strcmp(kind, "tframe") == 0)
		fd = -1;
	else
		die("kind", -EINVAL);
	if (fd < 0 && strcmp(kind, "tframe") != 0)
		die("open", -errno);
	if (fd >= 0) {
		send_msg(bulk_call(len, fd));
		close(fd);
	} else {
		/* A value sealed for real into its BULK frame, one bit of
		 * which flips on the way: the broker forwards it unopened. */
		cdt_msg *m = NULL, *s = NULL;
		uint8_t *v = calloc(1, len);
		int r = v ? cdt_msg_new(CDT_KIND_CALL, 7, "test.bulk", &m) : -ENOMEM;
		if (r == 0)
			r = cdt_msg_add_bytes(m, "data", v, len);
		if (r == 0)
			r = msg_bulk_seal(m, &s);
		if (r < 0 || !s || s->nbulkf != 1)
			die("seal", r < 0 ? r : -EINVAL);
		const uint8_t *p;
		size_t n;
		msg_bulkf_frame(s, 0, &p, &n);
		((uint8_t *)p)[n / 2] ^= 1;
		send_msg(s);
		cdt_msg_free(m);
		free(v);
	}
	/* Only the tampered value passes the broker: the callee refuses it.
	 * Then keep answering heartbeats, a live layer like any other. */
	for (;;) {
		cdt_msg *m = recv_msg();
		if (cdt_msg_kind(m) == CDT_KIND_CALL) {
			cdt_msg *r = NULL;
			if (cdt_msg_new(CDT_KIND_REPLY, cdt_msg_call_id(m), NULL, &r) < 0)
				die("reply", -ENOMEM);
			send_msg(r);
		} else if (cdt_msg_call_id(m) == 7) {
			fprintf(stderr, "RESULT evil-%s %s %s\n", kind,
				cdt_msg_kind(m) == CDT_KIND_ERROR ? "error" : "reply",
				cdt_msg_name(m));
		}
		cdt_msg_free(m);
	}
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "callee") == 0)
		mode_callee();
	if (argc == 3 && strcmp(argv[1], "caller") == 0)
		mode_caller(strtoul(argv[2], NULL, 10));
	if (argc == 3 && strcmp(argv[1], "evil") == 0)
		mode_evil(argv[2]);
	fprintf(stderr, "usage: bulk-layer callee | caller MAX | evil KIND\n");
	return 2;
}
