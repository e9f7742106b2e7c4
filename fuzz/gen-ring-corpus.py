#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpus of fuzz-ring: small scripts of ring operations
(the format is described at the top of fuzz/fuzz-ring.c), honest ones that
fill, wrap and drain the ring, and hostile ones that write the control words
or a record header.  Files are named by their SHA-1.

Usage: fuzz/gen-ring-corpus.py [OUTDIR]   (default fuzz/corpus/ring)"""
import hashlib
import os
import struct
import sys

DATA_SIZE = 64 * 1024
REC_HDR = 16
REC_MAX = DATA_SIZE // 2 - REC_HDR
OPT = 8


def start(head, tail=None):
    return struct.pack("<II", head, head if tail is None else tail)


def take():
    return b"\x00"


def put(n, seed=0):
    return b"\x01" + struct.pack("<HB", n, seed)


def head(v, rel=False):
    return bytes([2 | (OPT if rel else 0)]) + struct.pack("<I", v & 0xFFFFFFFF)


def tail(v, rel=False):
    return bytes([3 | (OPT if rel else 0)]) + struct.pack("<I", v & 0xFFFFFFFF)


def poke(off, b, rel=True):
    return bytes([4 | (OPT if rel else 0)]) + struct.pack("<HB", off, len(b)) + b


def rec_header(n, rsvd=0, ctr=0):
    return struct.pack("<IIQ", n, rsvd, ctr)


def peek2():
    return b"\x05"


def reinit():
    return b"\x06"


def put_max(over=False):
    return bytes([7 | (OPT if over else 0)])


SEEDS = [
    start(0) + put(1) + put(100) + take() + take() + take(),
    start(0) + put_max() + put_max() + put(1) + take() + put_max() + take() + take(),
    start(0) + put_max(True) + put(REC_MAX + 1) + put(0) + peek2(),
    start(DATA_SIZE - 8) + put(40, 3) + put(200, 9) + peek2() + take() + take(),
    start(0xFFFFFFF8) + put(24) + reinit() + take() + put(8) + take(),
    start(0) + b"".join(put(16, i) for i in range(40)) + take() * 41,
    # hostile producer
    start(0) + head(DATA_SIZE + 1) + take(),
    start(0) + poke(0, rec_header(8)) + head(REC_HDR + 8) + take(),
    start(0) + poke(0, rec_header(0)) + head(DATA_SIZE) + take(),
    start(0) + poke(0, rec_header(REC_MAX + 1)) + head(DATA_SIZE) + take(),
    start(0) + poke(0, rec_header(8, 1)) + head(24) + take(),
    start(0) + poke(0, rec_header(100)) + head(116) + take(),
    start(DATA_SIZE - 8) + poke(0, rec_header(REC_MAX)) + head(REC_HDR + REC_MAX, True) + take(),
    start(0) + put(8) + put(8) + take() + head(24) + take(),
    # hostile consumer
    start(0) + put(8) + tail(48) + put(8),
    start(0) + put(8) + take() + put(8) + tail(0) + put(8),
    start(100, 0) + put(8) + take(),
]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "ring")
    os.makedirs(out, exist_ok=True)
    for s in SEEDS:
        with open(os.path.join(out, hashlib.sha1(s).hexdigest()), "wb") as f:
            f.write(s)


if __name__ == "__main__":
    main()
