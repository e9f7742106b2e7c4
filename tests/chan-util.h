/* SPDX-License-Identifier: MIT */
/* Helpers shared by the channel tests: channel pairs with fixed or fresh
 * keys, a raw peer end, raw frame injection, fd counting. */
#ifndef CONDUIT_TEST_CHAN_UTIL_H
#define CONDUIT_TEST_CHAN_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "aead.h"
#include "conduit/conduit.h"
#include "frame.h"

extern const enum cdt_suite test_suites[2];

bool suite_ok(enum cdt_suite s);
/* Keys from secret 00..1f. */
cdt_keys *keys_fixed(enum cdt_suite suite);
/* Broker and layer channels over one socketpair. */
void pair_new(const cdt_keys *keys, cdt_chan **ret_broker, cdt_chan **ret_layer);
/* A layer channel and the raw broker end of its socketpair. */
void raw_new(const cdt_keys *keys, cdt_chan **ret_layer, int *ret_raw);
/* CALL "t.x" (call_id id) with a bytes argument "b" of n pattern bytes
 * (no argument when n == SIZE_MAX). */
cdt_msg *msg_bytes(uint64_t id, size_t n);
/* Encoded size of msg_bytes(id, 0). */
size_t msg_bytes_overhead(void);
/* Check that msg is msg_bytes(id, n). */
void msg_check_bytes(const cdt_msg *msg, uint64_t id, size_t n);
/* Seal a message's frames as cdt_chan_send would, into a malloc'ed buffer
 * (*ret_len bytes), identities taken from ids_of (fds to fstat; may be the
 * message's own fds or others to fake a swap). */
uint8_t *seal_msg(const struct aead_key *key, uint64_t ctr, const cdt_msg *msg, const int *ids_of,
		  size_t *ret_len, size_t *ret_frames);
/* One datagram with fds attached. */
void inject(int raw, const uint8_t *p, size_t len, const int *fds, size_t nfds);
/* Number of open fds of this process. */
size_t fd_count(void);
/* Move frames between two channels until want is received (or error). */
int pump(cdt_chan *tx, cdt_chan *rx, cdt_msg **ret_msg);

#endif
