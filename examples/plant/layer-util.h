/* SPDX-License-Identifier: MIT */
/* Small helpers the plant's layers share: clocks, the number arguments of
 * the message contract, and building replies and events. */
#ifndef PLANT_LAYER_UTIL_H
#define PLANT_LAYER_UTIL_H

#include <stdint.h>

#include <conduit/conduit.h>

/* CLOCK_MONOTONIC in milliseconds: deadlines, backoff. */
int64_t lu_mono_ms(void);
/* CLOCK_REALTIME in milliseconds: the ts_ms of samples and events. */
uint64_t lu_real_ms(void);

/* The argument @name as a double, whichever number type the caller sent
 * (i64, u64 or double; the contract allows all three): 0, -ENOENT when
 * absent, -EMEDIUMTYPE for another type.  Large integers round to the
 * nearest double, which only matters far outside every tag's range. */
int lu_get_number(const cdt_msg *msg, const char *name, double *ret);

/* Log a failed answer or publication once, with the layer's prefix. */
void lu_warn(const char *prog, const char *what, int err);

#endif
