#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Seed corpora for the demo plant's harnesses (fuzz-hist, fuzz-mbreq).

Written independently of the C code from the formats in
examples/plant/hist-store.h and the Modbus application protocol.  Files are
named by their SHA-1, as libFuzzer names what it adds.  Run from fuzz/."""
import hashlib
import os
import struct


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def record(tag, t_ms, value, version=1, flags=0):
    body = struct.pack('<BBBBIqd', 0xC7, version, 28, flags, tag, t_ms, value)
    return body + struct.pack('<I', crc32c(body))


def later_version(length):
    body = bytes([0xC7, 2, length]) + bytes(length - 7)
    return body + struct.pack('<I', crc32c(body))


def query(tag, t0, span, points):
    # fuzz-hist.c's header: tag u8, t0 i64, span i64, span shift u8, points u16.
    return struct.pack('<BqqBH', tag, t0, span, 0, points)


def mbap(pdu, unit=1, tid=1):
    return struct.pack('>HHHB', tid, 0, len(pdu) + 1, unit) + pdu


def write(name, blobs):
    d = os.path.join('corpus', name)
    os.makedirs(d, exist_ok=True)
    for b in blobs:
        with open(os.path.join(d, hashlib.sha1(b).hexdigest()), 'wb') as f:
            f.write(b)


recs = b''.join(record(i % 3, 1000 * i, i * 1.5) for i in range(8))
hist = [
    query(0, 0, 10000, 10) + recs,
    query(1, 0, 10000, 1) + recs + record(1, 5, 2.0)[:13],  # torn tail
    query(2, -5000, 1 << 40, 4096) + recs[:40] + recs,  # torn in the middle
    query(0, 0, 100, 3) + record(0, 1, 1.0) + later_version(40) + record(0, 2, 2.0),
    query(0, 0, 100, 0) + record(0, 1, 1.0, flags=1),
    query(3, 2**62, 2**62 - 1, 7) + record(3, 2**62 + 1, -1e300),
    query(0, 0, 1, 1),
]
write('hist', hist)

mb = [
    mbap(bytes([0x03, 0, 0, 0, 2])),
    mbap(bytes([0x04, 0, 0, 0, 5])),
    mbap(bytes([0x01, 0, 0, 0, 4])),
    mbap(bytes([0x02, 0, 0, 0, 2])),
    mbap(bytes([0x05, 0, 1, 0xFF, 0])),
    mbap(bytes([0x06, 0, 0, 0x2B, 0x5C])),
    mbap(bytes([0x0F, 0, 0, 0, 4, 1, 0x0B])),
    mbap(bytes([0x10, 0, 0, 0, 2, 4, 0, 100, 0, 50])),
    mbap(bytes([0x10, 0, 0, 0, 2, 3, 0, 100, 0])),  # byte count short
    mbap(bytes([0x17, 0, 0, 0, 1, 0, 0, 0, 1, 2, 0, 1])),  # read/write multiple
    mbap(bytes([0x16, 0, 0, 0xFF, 0xFF, 0, 0])),
    struct.pack('>HHHB', 1, 0, 20, 1) + bytes([0x10, 0, 0, 0, 2, 4, 0, 1, 0, 2]),
]
write('mbreq', mb)


def resp(fc_sel, addr, arg, pdu, unit=1, tid=1):
    # fuzz-mbresp.c's header: fc selector u8 (fc = 1 + sel % 6; bit 7 takes
    # the tid from the answer), address u16, quantity or value u16, unit u8.
    return struct.pack('>BHHB', fc_sel, addr, arg, unit) + mbap(pdu, unit, tid)


mbresp = [
    resp(2, 0, 2, bytes([0x03, 4, 0, 110, 0, 50])),  # setpoint and speed
    resp(3, 0, 5, bytes([0x04, 10, 0x09, 0xC4, 0x03, 0x04, 0, 100, 0, 50, 0, 200])),
    resp(0, 0, 4, bytes([0x01, 1, 0x03])),  # coils: run, valve
    resp(1, 0, 2, bytes([0x02, 1, 0x02])),  # discrete inputs: E-stop
    resp(1, 0, 2, bytes([0x02, 1, 0x06])),  # padding bit set
    resp(4, 1, 1, bytes([0x05, 0, 1, 0xFF, 0])),
    resp(5, 0, 110, bytes([0x06, 0, 0, 0, 110])),
    resp(5, 0, 110, bytes([0x06, 0, 0, 0x2B, 0x5C])),  # echo differs
    resp(2, 0, 1, bytes([0x83, 2])),  # exception
    resp(2, 0, 1, bytes([0x83, 0])),  # exception code 0
    resp(2, 0, 125, bytes([0x03, 250]) + bytes(250)),  # largest register answer
    resp(0, 0, 2000, bytes([0x01, 250]) + bytes(250)),  # largest bit answer
    resp(0x82, 0, 2, bytes([0x03, 4, 0, 1, 0, 2]), tid=0x1234),
    resp(2, 0, 2, bytes([0x03, 4, 0, 1])),  # truncated
    resp(2, 0, 2, bytes([0x03, 4, 0, 1, 0, 2, 9])),  # trailing
]
write('mbresp', mbresp)
