/* SPDX-License-Identifier: MIT */
/*
 * libconduit: the public API of Conduit's wire (message codec, secure
 * channel, fd passing).  One header, opaque handles.
 *
 * Conventions (docs/protocol.md has the details):
 *  - Functions return 0 (or a count) on success and a negative number on
 *    failure: either -errno for a local fault (-ENOMEM, -EAGAIN, -EINVAL,
 *    -ENOBUFS for backpressure, ...) or -CDT_E_* for input from a peer that
 *    breaks the protocol.  cdt_err_is_peer() tells the two apart;
 *    cdt_strerror() names both.
 *  - Out-parameters are named ret_*, come last and are written only on
 *    success.
 *  - Destructors accept NULL.
 *  - The library never logs, never exits and never raises signals
 *    (MSG_NOSIGNAL on every send).
 */
#ifndef CONDUIT_CONDUIT_H
#define CONDUIT_CONDUIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CDT_BUILDING_LIB)
#define CDT_EXPORT __attribute__((visibility("default")))
#else
#define CDT_EXPORT
#endif
#define CDT_WUR __attribute__((warn_unused_result))

/* ---- Limits (part of the protocol; checked before any allocation) ---- */

#define CDT_PROTOCOL_VERSION 1
#define CDT_MSG_MAX (16u * 1024 * 1024) /* encoded message, bytes */
#define CDT_NAME_MAX 64                 /* method / argument name, bytes */
#define CDT_ARGS_MAX 64                 /* arguments per message */
#define CDT_FDS_MAX 4                   /* passed fds per message */
#define CDT_FRAME_PLAIN_MAX (64u * 1024) /* plaintext bytes per frame */

/* ---- Errors caused by a peer (returned negated) ---- */

enum cdt_error {
	CDT_E_BASE = 4096, /* above every errno value */
	CDT_E_TOO_BIG,     /* a length over its hard limit */
	CDT_E_TRUNCATED,   /* input ends inside a field */
	CDT_E_TRAILING,    /* bytes left after a complete item */
	CDT_E_KIND,        /* unknown message kind or frame type */
	CDT_E_NAME,        /* empty, over-long or ill-formed name */
	CDT_E_DUPLICATE,   /* argument names not strictly ascending */
	CDT_E_TYPE,        /* unknown argument type */
	CDT_E_UTF8,        /* invalid UTF-8 or NUL in a string */
	CDT_E_VALUE,       /* non-canonical value (bool not 0/1, ...) */
	CDT_E_LIMIT,       /* too many arguments or fds */
	CDT_E_FD,          /* fds missing, extra, swapped, MSG_CTRUNC, ... */
	CDT_E_AUTH,        /* authentication failed: tamper, replay, reorder, drop */
	CDT_E_PROTO,       /* frame sequence or header breaks the protocol */
	CDT_E_VERSION,     /* unsupported protocol or key-blob version */
	CDT_E_EOF,         /* peer closed without an orderly FIN (truncation) */
	CDT_E_CLOSED,      /* channel closed (FIN received) or unusable after an error */
	CDT_E_MAX
};

/* Human-readable name of a negative return value (-errno or -CDT_E_*). */
CDT_EXPORT const char *cdt_strerror(int err);
/* True when err (negative) was caused by the peer's input, i.e. -CDT_E_*. */
CDT_EXPORT bool cdt_err_is_peer(int err);

/* ---- Messages ---- */

enum cdt_kind {
	CDT_KIND_HELLO = 1,     /* version, provided services; call_id 0 */
	CDT_KIND_CALL = 2,      /* method call; call_id != 0, name = method */
	CDT_KIND_REPLY = 3,     /* result; call_id of the call, name empty */
	CDT_KIND_ERROR = 4,     /* failure; call_id of the call, name = error name */
	CDT_KIND_EVENT = 5,     /* published event; call_id 0, name = event */
	CDT_KIND_SUBSCRIBE = 6, /* subscribe to an event; call_id 0, name = event */
};

enum cdt_type {
	CDT_TYPE_BOOL = 1,
	CDT_TYPE_I64 = 2,
	CDT_TYPE_U64 = 3,
	CDT_TYPE_DOUBLE = 4,
	CDT_TYPE_STRING = 5, /* valid UTF-8, no NUL */
	CDT_TYPE_BYTES = 6,
	CDT_TYPE_FD = 7,
};

/* A read-only view of one decoded argument.  Pointers stay valid while the
 * message that produced the view lives.  str.ptr is NUL-terminated. */
struct cdt_arg {
	const char *name;
	enum cdt_type type;
	union {
		bool b;
		int64_t i64;
		uint64_t u64;
		double d;
		struct {
			const char *ptr;
			size_t len;
		} str;
		struct {
			const uint8_t *ptr;
			size_t len;
		} bytes;
		int fd; /* still owned by the message; see cdt_msg_take_fd() */
	} v;
};

typedef struct cdt_msg cdt_msg;

/* New empty message.  name: method, event or error name as the kind needs
 * (NULL or "" for REPLY and HELLO).  Errors: -EINVAL (bad name or call_id
 * for this kind), -ENOMEM. */
CDT_EXPORT CDT_WUR int cdt_msg_new(enum cdt_kind kind, uint64_t call_id, const char *name,
				   cdt_msg **ret_msg);
/* Frees the message and closes every fd it still owns. */
CDT_EXPORT void cdt_msg_free(cdt_msg *msg);

/* Add a named argument; the message copies name and data.  Arguments may be
 * added in any order; encoding sorts them.  Errors: -EINVAL (bad name,
 * invalid UTF-8), -EEXIST (name already present), -E2BIG (CDT_ARGS_MAX,
 * CDT_FDS_MAX or CDT_MSG_MAX reached), -ENOMEM. */
CDT_EXPORT CDT_WUR int cdt_msg_add_bool(cdt_msg *msg, const char *name, bool v);
CDT_EXPORT CDT_WUR int cdt_msg_add_i64(cdt_msg *msg, const char *name, int64_t v);
CDT_EXPORT CDT_WUR int cdt_msg_add_u64(cdt_msg *msg, const char *name, uint64_t v);
CDT_EXPORT CDT_WUR int cdt_msg_add_double(cdt_msg *msg, const char *name, double v);
CDT_EXPORT CDT_WUR int cdt_msg_add_string(cdt_msg *msg, const char *name, const char *s, size_t len);
CDT_EXPORT CDT_WUR int cdt_msg_add_bytes(cdt_msg *msg, const char *name, const void *p, size_t len);
/* Duplicates fd (close-on-exec); the caller keeps its own fd. */
CDT_EXPORT CDT_WUR int cdt_msg_add_fd(cdt_msg *msg, const char *name, int fd);

CDT_EXPORT enum cdt_kind cdt_msg_kind(const cdt_msg *msg);
CDT_EXPORT uint64_t cdt_msg_call_id(const cdt_msg *msg);
CDT_EXPORT const char *cdt_msg_name(const cdt_msg *msg); /* "" when none */
CDT_EXPORT size_t cdt_msg_nargs(const cdt_msg *msg);
/* The i-th argument in canonical (ascending name) order.  -ERANGE past the end. */
CDT_EXPORT CDT_WUR int cdt_msg_arg(const cdt_msg *msg, size_t i, struct cdt_arg *ret_arg);
/* Exact, case-sensitive lookup.  -ENOENT when absent. */
CDT_EXPORT CDT_WUR int cdt_msg_find(const cdt_msg *msg, const char *name, struct cdt_arg *ret_arg);
/* Typed getters: -ENOENT when absent, -EMEDIUMTYPE when of another type. */
CDT_EXPORT CDT_WUR int cdt_msg_get_bool(const cdt_msg *msg, const char *name, bool *ret);
CDT_EXPORT CDT_WUR int cdt_msg_get_i64(const cdt_msg *msg, const char *name, int64_t *ret);
CDT_EXPORT CDT_WUR int cdt_msg_get_u64(const cdt_msg *msg, const char *name, uint64_t *ret);
CDT_EXPORT CDT_WUR int cdt_msg_get_double(const cdt_msg *msg, const char *name, double *ret);
/* *ret points into the message (NUL-terminated); *ret_len may be NULL. */
CDT_EXPORT CDT_WUR int cdt_msg_get_string(const cdt_msg *msg, const char *name, const char **ret,
					  size_t *ret_len);
CDT_EXPORT CDT_WUR int cdt_msg_get_bytes(const cdt_msg *msg, const char *name, const uint8_t **ret,
					 size_t *ret_len);
/* Moves the fd out of the message: the caller owns and must close it.  The
 * argument stays, reading fd -1; taking it again is -EBADF, and the message
 * can no longer be encoded (cdt_msg_encode() returns -EBADF). */
CDT_EXPORT CDT_WUR int cdt_msg_take_fd(cdt_msg *msg, const char *name, int *ret_fd);

/* Number of fds the message carries (and will pass when sent). */
CDT_EXPORT size_t cdt_msg_nfds(const cdt_msg *msg);

/* Canonical encoding into a caller buffer.  Returns the encoded length
 * (which may exceed cap: call again with a buffer that large), or -E2BIG
 * when over CDT_MSG_MAX.  fds are not part of the bytes; an fd argument
 * encodes its index into the message's fd array (cdt_msg_fds()). */
CDT_EXPORT CDT_WUR long cdt_msg_encode(const cdt_msg *msg, uint8_t *buf, size_t cap);
/* The message's fds in encoding order (valid until the message changes). */
CDT_EXPORT const int *cdt_msg_fds(const cdt_msg *msg);

/* Decode exactly len bytes.  Takes ownership of the nfds fds in every case:
 * on failure they are closed.  Errors: -CDT_E_* for malformed input,
 * -ENOMEM. */
CDT_EXPORT CDT_WUR int cdt_msg_decode(const uint8_t *buf, size_t len, const int *fds, size_t nfds,
				      cdt_msg **ret_msg);

/* ---- Keys ---- */

enum cdt_suite {
	CDT_SUITE_AUTO = 0,     /* AES-256-GCM when the CPU has it, else XChaCha20 */
	CDT_SUITE_XCHACHA20POLY1305 = 1,
	CDT_SUITE_AES256GCM = 2,
};

typedef struct cdt_keys cdt_keys;

/* Initialise libsodium; call once before anything else (idempotent). */
CDT_EXPORT CDT_WUR int cdt_init(void);

/* A fresh per-spawn secret in guarded memory (sodium_malloc).  -ENOTSUP when
 * AES256GCM is asked for and the CPU lacks it. */
CDT_EXPORT CDT_WUR int cdt_keys_new(enum cdt_suite suite, cdt_keys **ret_keys);
/* Wipes and frees. */
CDT_EXPORT void cdt_keys_free(cdt_keys *keys);
CDT_EXPORT enum cdt_suite cdt_keys_suite(const cdt_keys *keys);
/* Write the key blob to fd (a pipe or socket inherited by the layer); the
 * caller closes fd afterwards.  Blocking; retries on EINTR and short writes. */
CDT_EXPORT CDT_WUR int cdt_keys_send(const cdt_keys *keys, int fd);
/* Read exactly one key blob from fd.  Errors: -CDT_E_TRUNCATED,
 * -CDT_E_VERSION, -CDT_E_TRAILING (more bytes follow), -errno. */
CDT_EXPORT CDT_WUR int cdt_keys_recv(int fd, cdt_keys **ret_keys);

/* ---- Secure channel over an AF_UNIX SOCK_SEQPACKET socket ---- */

enum cdt_role {
	CDT_ROLE_BROKER = 1,
	CDT_ROLE_LAYER = 2,
};

typedef struct cdt_chan cdt_chan;

/* Channel over sock (made close-on-exec; the channel owns it from now on,
 * also on failure).  Every call uses MSG_DONTWAIT whatever the socket's
 * O_NONBLOCK flag; only cdt_chan_recv_wait() without a timeout blocks in
 * recvmsg() itself when that flag is clear.  Per-direction keys are derived
 * from keys; keys may be freed right after.  -EPROTOTYPE unless sock is
 * SOCK_SEQPACKET. */
CDT_EXPORT CDT_WUR int cdt_chan_new(int sock, const cdt_keys *keys, enum cdt_role role,
				    cdt_chan **ret_chan);
/* Wipes keys, closes the socket and every queued or received fd. */
CDT_EXPORT void cdt_chan_free(cdt_chan *chan);
/* The fd to poll: POLLIN always, POLLOUT while cdt_chan_want_write(). */
CDT_EXPORT int cdt_chan_fd(const cdt_chan *chan);
CDT_EXPORT bool cdt_chan_want_write(const cdt_chan *chan);
/* True while part of a message has arrived but not all of it. */
CDT_EXPORT bool cdt_chan_rx_partial(const cdt_chan *chan);
/* Outbound queue cap in bytes (default: one maximal message). */
CDT_EXPORT void cdt_chan_set_queue_cap(cdt_chan *chan, size_t cap);
CDT_EXPORT size_t cdt_chan_queued(const cdt_chan *chan);

/* Encode, seal and queue msg (its fds are duplicated), then try to send.
 * -ENOBUFS when the queue cap would be exceeded (nothing queued). */
CDT_EXPORT CDT_WUR int cdt_chan_send(cdt_chan *chan, const cdt_msg *msg);
/* Send queued frames: 0 when the queue is empty, -EAGAIN when the socket
 * is full, another error when the channel is unusable. */
CDT_EXPORT CDT_WUR int cdt_chan_flush(cdt_chan *chan);
/* Receive, open and decode the next message: 0 and *ret_msg, -EAGAIN when
 * no complete message is there yet, -CDT_E_CLOSED after the peer's FIN,
 * other errors for a broken channel.  Any error but -EAGAIN leaves the
 * channel unusable; every fd received with a bad frame is closed. */
CDT_EXPORT CDT_WUR int cdt_chan_recv(cdt_chan *chan, cdt_msg **ret_msg);
/* Queue an orderly FIN and flush; later sends fail with -CDT_E_CLOSED.
 * -EAGAIN: the FIN is queued behind frames the socket has not taken yet
 * (the queue cap does not apply to it); cdt_chan_flush() sends it. */
CDT_EXPORT CDT_WUR int cdt_chan_close(cdt_chan *chan);

/* Blocking helpers for simple programs: wait up to timeout_ms (-1 forever);
 * -ETIMEDOUT when it runs out. */
CDT_EXPORT CDT_WUR int cdt_chan_send_wait(cdt_chan *chan, const cdt_msg *msg, int timeout_ms);
CDT_EXPORT CDT_WUR int cdt_chan_recv_wait(cdt_chan *chan, cdt_msg **ret_msg, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
