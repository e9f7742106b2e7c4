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
/* A bytes argument this long or longer that a layer sends travels sealed
 * in a memfd, outside the message (docs/protocol.md section 4.1). */
#define CDT_BULK_MIN (16u * 1024)

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
 * recvmsg() itself when that flag is clear (over the rings it waits in
 * poll()).  A layer's channel takes the rings the broker offers.  Per-direction keys are derived
 * from keys; keys may be freed right after.  -EPROTOTYPE unless sock is
 * SOCK_SEQPACKET. */
CDT_EXPORT CDT_WUR int cdt_chan_new(int sock, const cdt_keys *keys, enum cdt_role role,
				    cdt_chan **ret_chan);
/* Wipes keys, closes the socket and every queued or received fd. */
CDT_EXPORT void cdt_chan_free(cdt_chan *chan);
/* The fd to poll: POLLIN always, POLLOUT while cdt_chan_want_write().
 * Once the broker's shared-memory rings are on (docs/protocol.md section
 * 3.1) it is an epoll fd that turns readable for input, for room while a
 * queue waits, and on a hang-up; poll it the same way (POLLOUT never
 * shows on it, readability stands for both).  A negative errno if that
 * set cannot be made. */
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


/* ---- Layer API: the layer side of a broker session (docs/layer-api.md) ----
 *
 * Single-threaded: one thread owns a cdt_layer; a callback must not free
 * the layer it is called for (end the session with cdt_layer_close() and
 * free it after cdt_layer_run()/dispatch returns).  Callbacks run only inside
 * cdt_layer_dispatch() / cdt_layer_run(), never inside cdt_layer_call() or
 * any other function: while a blocking call waits, incoming CALLs, EVENTs
 * and replies to asynchronous calls are queued in memory and dispatched
 * later (cdt_layer_want_dispatch() says so).  Only `conduit.ping` is
 * answered during the wait, by the library.  Once the broker breaks the
 * protocol (unknown reply id, second HELLO, unexpected kind, ...) or the
 * channel fails, every function returns that error (sticky). */

typedef struct cdt_layer cdt_layer;

struct cdt_layer_options {
	/* Space-separated, strictly ascending method / event names, exactly
	 * the policy's `provide` and `publish` lists.  NULL means "". */
	const char *provide;
	const char *publish;
	/* Bound on the HELLO exchange: 0 means 5000 ms, negative waits forever. */
	int hello_timeout_ms;
};

/* Completion of cdt_layer_call_async(): result 0 with the REPLY,
 * -EREMOTEIO with the ERROR (its name is the error name, e.g.
 * "conduit.denied"), or another negative value with reply NULL when the
 * call cannot complete (the layer failed, FIN, cdt_layer_free(): -ECANCELED).
 * reply is borrowed: it is freed when the callback returns (take fds with
 * cdt_msg_take_fd()). */
typedef void (*cdt_layer_reply_fn)(cdt_layer *layer, int result, cdt_msg *reply, void *userdata);
/* A CALL for a served method, with `_caller` (string) added by the broker.
 * The handler owns call: it answers with cdt_layer_reply() or
 * cdt_layer_reply_error(), now or later, and frees it. */
typedef void (*cdt_layer_handler_fn)(cdt_layer *layer, cdt_msg *call, void *userdata);
/* An EVENT for a subscription, with `_publisher` (string).  Borrowed. */
typedef void (*cdt_layer_event_fn)(cdt_layer *layer, const cdt_msg *event, void *userdata);

/* Open the session the broker prepared: read the key blob from fd 4 and
 * close it, build the channel on fd 3, make the process non-dumpable, send
 * HELLO and wait for the broker's.  opts may be NULL.  Errors: -EINVAL
 * (ill-formed provide/publish), -ETIMEDOUT, -CDT_E_PROTO (the broker's first
 * message is not a valid HELLO), -CDT_E_VERSION, -errno. */
CDT_EXPORT CDT_WUR int cdt_layer_open(const struct cdt_layer_options *opts, cdt_layer **ret_layer);
/* Same on explicit fds; takes ownership of both, also on failure. */
CDT_EXPORT CDT_WUR int cdt_layer_open_fds(int chan_fd, int key_fd,
					  const struct cdt_layer_options *opts,
					  cdt_layer **ret_layer);
/* Frees the layer and its channel without a FIN (cdt_layer_close() first
 * for a clean stop).  Pending asynchronous calls complete with
 * -ECANCELED, from inside this function. */
CDT_EXPORT void cdt_layer_free(cdt_layer *layer);
/* The layer's name as the broker's HELLO gave it. */
CDT_EXPORT const char *cdt_layer_name(const cdt_layer *layer);
/* The sticky error (negative) once the layer is unusable, else 0.
 * -CDT_E_CLOSED after the broker's FIN. */
CDT_EXPORT int cdt_layer_error(const cdt_layer *layer);

/* Blocking call.  The library sets call's call_id to one of its own; the
 * caller keeps call.  0 and *ret_reply (the REPLY; caller frees) on success;
 * -EREMOTEIO when the answer is an ERROR, whose name cdt_layer_error_name()
 * then returns; -ETIMEDOUT after timeout_ms (-1: no local limit; the broker's
 * deadline still answers with conduit.timeout), the late answer is then
 * dropped; -EBUSY with too many calls pending; -ENOBUFS when the send queue
 * is full; -EINVAL for a message that is not a CALL or carries a reserved
 * `_` argument. */
CDT_EXPORT CDT_WUR int cdt_layer_call(cdt_layer *layer, cdt_msg *call, int timeout_ms,
				      cdt_msg **ret_reply);
/* Name of the ERROR that made the last cdt_layer_call() return -EREMOTEIO
 * ("" before any). */
CDT_EXPORT const char *cdt_layer_error_name(const cdt_layer *layer);
/* Asynchronous call: queue it and return; cb runs from a later dispatch
 * (exactly once).  Same call_id rule and errors as cdt_layer_call(); on
 * error cb is never called. */
CDT_EXPORT CDT_WUR int cdt_layer_call_async(cdt_layer *layer, cdt_msg *call, cdt_layer_reply_fn cb,
					    void *userdata);

/* Serve method (one of opts->provide): copies the name.  -ENOENT when not
 * provided, -EEXIST when already served. */
CDT_EXPORT CDT_WUR int cdt_layer_serve(cdt_layer *layer, const char *method,
				       cdt_layer_handler_fn handler, void *userdata);
/* Answer call (from a handler, which still owns and frees it) with reply:
 * a REPLY message (its call_id is set to the call's; the caller keeps it),
 * or NULL for an empty REPLY.  -ENOENT when call was already answered or
 * is not a pending incoming call; -ENOBUFS when the send queue is full (call
 * stays pending: try again later). */
CDT_EXPORT CDT_WUR int cdt_layer_reply(cdt_layer *layer, const cdt_msg *call, cdt_msg *reply);
/* Answer call with an ERROR named error_name (a method-style name). */
CDT_EXPORT CDT_WUR int cdt_layer_reply_error(cdt_layer *layer, const cdt_msg *call,
					     const char *error_name);

/* Publish an EVENT (one of opts->publish; -EPERM otherwise).  Caller keeps it. */
CDT_EXPORT CDT_WUR int cdt_layer_publish(cdt_layer *layer, const cdt_msg *event);
/* Send SUBSCRIBE for event and dispatch its EVENTs to cb.  The broker
 * answers nothing: a subscription its policy denies just never delivers.
 * -EEXIST when already subscribed. */
CDT_EXPORT CDT_WUR int cdt_layer_subscribe(cdt_layer *layer, const char *event,
					   cdt_layer_event_fn cb, void *userdata);

/* Event-loop integration: poll cdt_layer_fd() for POLLIN, plus POLLOUT
 * while cdt_layer_want_write(); call cdt_layer_dispatch() when it is ready
 * and, without polling, while cdt_layer_want_dispatch() (messages that
 * arrived during a blocking call wait in memory where poll cannot see them). */
CDT_EXPORT int cdt_layer_fd(const cdt_layer *layer);
CDT_EXPORT bool cdt_layer_want_write(const cdt_layer *layer);
CDT_EXPORT bool cdt_layer_want_dispatch(const cdt_layer *layer);
/* Dispatch queued messages and what has arrived (a bounded batch), then
 * flush.  Returns the number of messages dispatched, or the sticky error:
 * -CDT_E_CLOSED after the broker's FIN (answered with ours), -CDT_E_EOF,
 * -CDT_E_PROTO, ... */
CDT_EXPORT CDT_WUR int cdt_layer_dispatch(cdt_layer *layer);
/* Poll and dispatch until the session ends: 0 after the broker's FIN, else
 * the error. */
CDT_EXPORT CDT_WUR int cdt_layer_run(cdt_layer *layer);
/* Queue our FIN and try to send it (-EAGAIN: cdt_layer_dispatch() finishes
 * it); later sends fail with -CDT_E_CLOSED. */
CDT_EXPORT CDT_WUR int cdt_layer_close(cdt_layer *layer);

#ifdef __cplusplus
}
#endif
#endif
