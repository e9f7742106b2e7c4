/* SPDX-License-Identifier: MIT */
/*
 * Conduit's own rows.  The broker does not exist yet, so these have a name
 * and nothing else, and every table prints "not built yet" for them rather
 * than a number.  Filling a row in is filling in its ops:
 *  - serve: start conduit-broker with a bench policy whose echo layer
 *    provides `bench.echo` (routed row), or whose broker service answers it
 *    (service row); write the ready byte once the broker has said hello;
 *  - open/send/recv/close: a layer-side channel (libconduit) on which to call
 *    `bench.echo` with one `bytes` argument of env->size bytes.
 * The harness then pins, times and prints them like every other row.
 */
#include "peers.h"

const struct peers_ops peers_conduit_routed_ops = {
	.name = "conduit routed (layer->broker->layer)",
};

const struct peers_ops peers_conduit_service_ops = {
	.name = "conduit broker service",
};
