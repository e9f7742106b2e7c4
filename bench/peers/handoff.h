/* SPDX-License-Identifier: MIT */
/*
 * What the Conduit rows' harness side (wl-conduit.c) and the benchmark's
 * layers (conduit-layer.c) agree on.
 */
#ifndef CONDUIT_BENCH_PEERS_HANDOFF_H
#define CONDUIT_BENCH_PEERS_HANDOFF_H

/* Where the harness listens for callers handing over their sessions, one
 * socket per broker named <broker pid>.sock.  Under /run, which only root
 * can write, so the fixed name cannot be planted by someone else; the
 * directory is 0711 so that the layers' dynamic uids can reach a socket
 * they know the name of and list nothing. */
#define PEERS_HANDOFF_DIR "/run/conduit-bench-peers"

/* The fds conduit-broker gives every layer. */
#define PEERS_HANDOFF_CHAN_FD 3
#define PEERS_HANDOFF_KEY_FD  4

/* The echo layer's line on stderr once it serves; the broker logs it as
 * "layer echo: BENCH ready". */
#define PEERS_READY_LINE "BENCH ready"
#define PEERS_ECHO_LAYER "echo"
/* The layer program's argument: its role (the echo layer's is its name). */
#define PEERS_CALLER_ARG "caller"

#endif
