/* SPDX-License-Identifier: MIT */
/*
 * Frame rings in memory shared by the broker and one layer
 * (docs/protocol.md section 3.1).
 *
 * One ring per direction, a single producer and a single consumer.  Head
 * and tail are free-running byte counters; the producer alone writes head
 * and the record bytes, the consumer alone writes tail.  Either side may
 * be hostile: every value read from shared memory is read once into
 * private memory and checked there, and a frame is copied out before it is
 * parsed or opened.  A record is
 *
 *   u32 len | u32 reserved (0) | u64 counter | len frame bytes | pad to 8
 *
 * and may wrap around the end of the data area.  The counter is the
 * frame's AEAD counter in clear: it tells the receiver whether the next
 * frame is in the ring or came over the socket, and a lie only makes the
 * frame fail to open.
 */
#ifndef CONDUIT_RING_H
#define CONDUIT_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

/* The control words share their page with the first bytes of direction
 * 0: an idle session touches one page of the mapping, not two. */
#define RING_CTL_SIZE  256u
#define RING_DATA_SIZE (64u * 1024) /* per direction; a power of two */
#define RING_SHM_SIZE  (RING_CTL_SIZE + 2 * RING_DATA_SIZE)
#define RING_REC_HDR   16u
/* Frames above this go over the socket: a ring always has room for two. */
#define RING_REC_MAX   (RING_DATA_SIZE / 2 - RING_REC_HDR)

_Static_assert((RING_DATA_SIZE & (RING_DATA_SIZE - 1)) == 0, "ring size is a power of two");
_Static_assert(RING_REC_MAX >= FRAME_OVERHEAD, "a ring holds at least an empty frame");

/* The control words of one direction, each on its own cache line. */
struct ring_ctl {
	_Atomic uint32_t head;
	uint8_t pad0[60];
	_Atomic uint32_t tail;
	uint8_t pad1[60];
};

/* Direction 0 carries broker->layer, direction 1 layer->broker. */
#define RING_CTL_OFF(dir)  ((size_t)(dir) * sizeof(struct ring_ctl))
#define RING_DATA_OFF(dir) (RING_CTL_SIZE + (size_t)(dir)*RING_DATA_SIZE)

/* One direction as one side sees it. */
struct ring {
	struct ring_ctl *ctl;
	uint8_t *data;
	uint32_t head; /* producer: what it published; consumer: last head read */
	uint32_t tail; /* consumer: what it released; producer: last tail read */
	uint32_t len;  /* consumer: length of the record ring_peek() found */
};

/* Point r at direction dir of a mapping of RING_SHM_SIZE bytes; both
 * counters start at what the control words say (0 in a fresh memfd). */
void ring_init(struct ring *r, uint8_t *shm, unsigned dir);

/* Producer: append a record.  0, -EAGAIN when there is no room (the tail
 * has not moved far enough), -CDT_E_PROTO when the consumer's tail is
 * impossible, -EMSGSIZE when len > RING_REC_MAX, -EINVAL when len is 0
 * (ring_peek() would refuse the record). */
int ring_put(struct ring *r, uint64_t counter, const uint8_t *frame, size_t len);

/* Consumer: look at the next record.  1 with its counter and length, 0
 * when the ring is empty, -CDT_E_PROTO when head or the record header is
 * impossible. */
int ring_peek(struct ring *r, uint64_t *ret_counter, size_t *ret_len);

/* Consumer: copy the record ring_peek() found into out (ret_len bytes)
 * and release its room. */
void ring_take(struct ring *r, uint8_t *out);

#endif
