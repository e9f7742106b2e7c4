#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpus of fuzz-msg from an encoder written from
docs/protocol.md section 4 alone, so the corpus also cross-checks the C codec
(the replay test asserts that every valid seed re-encodes byte for byte).

Each file: one byte giving the number of fds to pass (0..4), then a message.
Usage: fuzz/gen-msg-corpus.py [OUTDIR]   (default fuzz/corpus/msg)"""
import os
import struct
import sys

BOOL, I64, U64, DOUBLE, STRING, BYTES, FD, BULK = range(1, 9)
BULK_MIN = 16 * 1024
MSG_MAX = 16 * 1024 * 1024
HELLO, CALL, REPLY, ERROR, EVENT, SUBSCRIBE = range(1, 7)


def value(t, v):
    if t == BOOL:
        return bytes([v])
    if t == I64:
        return struct.pack("<q", v)
    if t == U64:
        return struct.pack("<Q", v)
    if t == DOUBLE:
        return struct.pack("<d", v) if not isinstance(v, int) else struct.pack("<Q", v)
    if t in (STRING, BYTES):
        b = v.encode() if isinstance(v, str) else v
        return struct.pack("<I", len(b)) + b
    if t == FD:
        return bytes([v])
    if t == BULK:
        # (plaintext length, fd index): u64 length, key, id, u8 index
        length, index = v
        return struct.pack("<Q", length) + bytes(range(32)) + bytes(range(16)) + bytes([index])
    raise ValueError(t)


def encode(kind, call_id, name, args, sort=True, version=1):
    if sort:
        args = sorted(args, key=lambda a: a[0].encode())
    out = struct.pack("<BBHQB", version, kind, len(args), call_id, len(name)) + name.encode()
    for n, t, v in args:
        out += bytes([len(n)]) + n.encode() + bytes([t]) + value(t, v)
    return out


def seeds():
    yield "hello", 0, encode(HELLO, 0, "", [("services", STRING, "tag.read tag.write")])
    yield "hello-empty", 0, encode(HELLO, 0, "", [])
    yield "call-bool", 0, encode(CALL, 1, "tag.write", [("force", BOOL, 1), ("off", BOOL, 0)])
    yield "call-i64", 0, encode(CALL, 2, "valve.set", [("min", I64, -(2**63)), ("max", I64, 2**63 - 1)])
    yield "call-u64", 0, encode(CALL, 3, "counter.add", [("n", U64, 2**64 - 1)])
    yield "call-double", 0, encode(CALL, 4, "tag.write", [("value", DOUBLE, 42.5), ("neg_zero", DOUBLE, -0.0),
                                                          ("inf", DOUBLE, float("inf"))])
    yield "call-nan", 0, encode(CALL, 5, "tag.write", [("value", DOUBLE, 0x7ff8000000000000)])
    yield "call-string", 0, encode(CALL, 6, "tag.read", [("tag", STRING, "tank1.level"),
                                                         ("unit", STRING, "\u00b0C \u2103 \U0001f321")])
    yield "call-empty-string", 0, encode(CALL, 7, "a", [("s", STRING, ""), ("b", BYTES, b"")])
    yield "call-bytes", 0, encode(CALL, 8, "blob.put", [("data", BYTES, bytes(range(256)))])
    yield "call-fd", 1, encode(CALL, 9, "file.open", [("file", FD, 0)])
    yield "call-4fds", 4, encode(CALL, 10, "file.many", [("a", FD, 0), ("b", FD, 1), ("c", FD, 2), ("d", FD, 3)])
    yield "call-mixed", 2, encode(CALL, 11, "tag.write", [("force", BOOL, 1), ("log", FD, 0), ("n", I64, -2),
                                                          ("raw", BYTES, b"\xde\xad"), ("tag", STRING, "tank1"),
                                                          ("u", U64, 7), ("z_fd", FD, 1), ("value", DOUBLE, 1.5)])
    yield "reply", 0, encode(REPLY, 11, "", [("ok", BOOL, 1)])
    yield "reply-empty", 0, encode(REPLY, 2**64 - 1, "", [])
    yield "error", 0, encode(ERROR, 12, "policy.denied", [("reason", STRING, "tag not allowed")])
    yield "event", 0, encode(EVENT, 0, "alarm.raised", [("tag", STRING, "pump-2.temp"), ("level", U64, 3)])
    yield "subscribe", 0, encode(SUBSCRIBE, 0, "alarm.raised", [])
    yield "names-max", 0, encode(CALL, 13, "a" * 64, [("b" * 64, BOOL, 0), ("_" + "9" * 63, BOOL, 1)])
    yield "prefix-order", 0, encode(CALL, 14, "x.y-z_0", [("tank1", U64, 1), ("tank10", U64, 2)])
    yield "many-args", 0, encode(EVENT, 0, "e", [("a%02d" % i, U64, i) for i in range(64)])
    yield "bulk-min", 1, encode(CALL, 15, "blob.put", [("data", BULK, (BULK_MIN, 0))])
    yield "bulk-max", 1, encode(REPLY, 15, "", [("data", BULK, (MSG_MAX, 0))])
    yield "bulk-fd-mixed", 3, encode(EVENT, 0, "e", [("a", FD, 0), ("b", BULK, (BULK_MIN, 1)),
                                                     ("c", BYTES, b"x"), ("d", BULK, (2**20, 2))])
    # Near misses: each breaks exactly one rule.
    yield "bad-bulk-short", 1, encode(CALL, 1, "m", [("a", BULK, (BULK_MIN - 1, 0))])
    yield "bad-bulk-long", 1, encode(CALL, 1, "m", [("a", BULK, (MSG_MAX + 1, 0))])
    yield "bad-bulk-shared", 1, encode(CALL, 1, "m", [("a", BULK, (BULK_MIN, 0)), ("b", BULK, (BULK_MIN, 0))])
    yield "bad-bulk-index", 1, encode(CALL, 1, "m", [("a", BULK, (BULK_MIN, 1))])
    yield "bad-bulk-truncated", 1, encode(CALL, 1, "m", [("a", BULK, (BULK_MIN, 0))])[:-1]
    yield "bad-unsorted", 0, encode(CALL, 1, "m", [("b", BOOL, 0), ("a", BOOL, 0)], sort=False)
    yield "bad-duplicate", 0, encode(CALL, 1, "m", [("a", BOOL, 0), ("a", BOOL, 0)], sort=False)
    yield "bad-bool", 0, encode(CALL, 1, "m", [("a", BOOL, 2)])
    yield "bad-nan", 0, encode(CALL, 1, "m", [("a", DOUBLE, 0x7ff8000000000001)])
    yield "bad-utf8", 0, encode(CALL, 1, "m", [("a", STRING, b"\xc0\xaf")])
    yield "bad-fd-index", 2, encode(CALL, 1, "m", [("a", FD, 1), ("b", FD, 0)])
    yield "bad-trailing", 0, encode(CALL, 1, "m", []) + b"\0"
    yield "bad-version", 0, encode(CALL, 1, "m", [], version=2)
    yield "bad-upper", 0, encode(CALL, 1, "Tag.write", [])
    yield "bad-callid", 0, encode(EVENT, 5, "e", [])


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "msg")
    os.makedirs(out, exist_ok=True)
    for name, nfds, msg in seeds():
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes([nfds]) + msg)


if __name__ == "__main__":
    main()
