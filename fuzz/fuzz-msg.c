/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the message decoder.  Input: one byte choosing how many fds to pass
 * (0..4), then the message.  A decoded message must re-encode to exactly
 * the input (the encoding is canonical), must own exactly the fds passed,
 * and nothing may leak: every fd is a dup of one opened at start-up, and
 * the process's fd count is checked after every input.  The broker's copy
 * of the whole argument list (msg_copy_args) must encode to the input too,
 * with fds of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conduit/conduit.h"
#include "msg.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int base_fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	base_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (base_fd < 0)
		abort();
	return 0;
}

/* Whether fd is open: a leak or a double close shows up here. */
static int fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (base_fd < 0)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size < 1)
		return 0;
	size_t nfds = data[0] % (CDT_FDS_MAX + 1);
	data++;
	size--;

	int fds[CDT_FDS_MAX];
	for (size_t i = 0; i < nfds; i++) {
		fds[i] = fcntl(base_fd, F_DUPFD_CLOEXEC, 3);
		if (fds[i] < 0)
			abort();
	}
	cdt_msg *msg = NULL;
	int r = cdt_msg_decode(data, size, fds, nfds, &msg);
	if (r < 0) {
		if (!cdt_err_is_peer(r) && r != -ENOMEM)
			abort();
		for (size_t i = 0; i < nfds; i++)
			if (fd_open(fds[i]))
				abort(); /* a failed decode must close every fd */
		return 0;
	}
	if (cdt_msg_nfds(msg) != nfds)
		abort();
	const int *mfds = cdt_msg_fds(msg);
	for (size_t i = 0; i < nfds; i++)
		if (mfds[i] != fds[i])
			abort();
	long n = cdt_msg_encode(msg, NULL, 0);
	if (n < 0 || (size_t)n != size)
		abort();
	uint8_t *out = malloc(size ? size : 1);
	if (!out)
		abort();
	if (cdt_msg_encode(msg, out, size) != n || memcmp(out, data, size) != 0)
		abort();
	/* The copy the broker forwards: same header, same bytes. */
	cdt_msg *copy = NULL;
	if (cdt_msg_new(cdt_msg_kind(msg), cdt_msg_call_id(msg), cdt_msg_name(msg), &copy) < 0 ||
	    msg_copy_args(copy, msg) < 0 || cdt_msg_nfds(copy) != nfds ||
	    cdt_msg_encode(copy, out, size) != n || memcmp(out, data, size) != 0)
		abort();
	int copy_fds[CDT_FDS_MAX];
	for (size_t i = 0; i < nfds; i++) {
		copy_fds[i] = cdt_msg_fds(copy)[i];
		if (copy_fds[i] == fds[i] || !fd_open(copy_fds[i]))
			abort();
	}
	cdt_msg_free(copy);
	for (size_t i = 0; i < nfds; i++)
		if (fd_open(copy_fds[i]) || !fd_open(fds[i]))
			abort();
	free(out);
	/* Every argument is readable through the public view. */
	for (size_t i = 0; i < cdt_msg_nargs(msg); i++) {
		struct cdt_arg a;
		if (cdt_msg_arg(msg, i, &a) < 0 || cdt_msg_find(msg, a.name, &a) < 0)
			abort();
		if (a.type == CDT_TYPE_STRING && strlen(a.v.str.ptr) != a.v.str.len)
			abort();
		/* A bulk value shows its length and no data (protocol 4.1). */
		if (a.type == CDT_TYPE_BYTES && !a.v.bytes.ptr != msg_is_bulk(msg, a.name))
			abort();
	}
	/* The fds here are /dev/null, never a sealed memfd, and no BULK
	 * frame follows a message decoded alone: a message with a bulk
	 * value is refused by the broker's check and the receiver's alike,
	 * before anything is read; one without is left as it was.  The
	 * check reports the first bulk argument; resolving opens BULK frames
	 * before memfds. */
	int want_check = 0, want_resolve = 0;
	for (size_t i = 0; i < msg->nargs; i++) {
		uint8_t t = msg->args[i].type;
		int e = t == MSG_TYPE_BULKF ? -CDT_E_PROTO : t == MSG_TYPE_BULK ? -CDT_E_FD : 0;
		if (!want_check)
			want_check = e;
		if (e && want_resolve != -CDT_E_PROTO)
			want_resolve = e;
	}
	if (msg_bulk_check(msg) != want_check || msg_bulk_resolve(msg) != want_resolve)
		abort();
	if (cdt_msg_nfds(msg) != nfds)
		abort();
	cdt_msg_free(msg);
	for (size_t i = 0; i < nfds; i++)
		if (fd_open(fds[i]))
			abort();
	return 0;
}
