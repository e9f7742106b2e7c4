#!/bin/bash
# SPDX-License-Identifier: MIT
# Integration test of conduit-plcsim, checked from outside with mbpoll (a
# Modbus master nobody on the project wrote): it starts on a free loopback
# port, serves reads and writes, its physics moves (level, concentration
# following a setpoint), it accepts an out-of-range setpoint as a real PLC
# would, survives idle, stalled, malformed and non-reading clients, holds at
# most 16 clients, refuses non-loopback addresses, and stops cleanly on
# SIGTERM.  Every wait is bounded (PLCSIM_TEST_WAIT seconds, default 60);
# the trap kills the simulator whatever happens, so no process is left.
#   usage: test-plcsim.sh PATH/TO/conduit-plcsim PATH/TO/mbpoll
set -euo pipefail
PLCSIM=$1
MBPOLL=$2
WAIT=${PLCSIM_TEST_WAIT:-60} # seconds any one condition may take before the test fails

tmp=$(mktemp -d /tmp/test-plcsim.XXXXXX)
log=$tmp/plcsim.log
pid=

cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	exec 3<&- 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	echo "--- plcsim log:" >&2
	cat "$log" >&2 || true
	exit 1
}
ok() { echo "ok: $*"; }

# mb TYPE ADDR [COUNT] -> the values, one per line; mbw TYPE ADDR VALUE... writes.
mb() {
	timeout 15 "$MBPOLL" -m tcp -p "$port" -0 -1 -q -o 2 -t "$1" -r "$2" -c "${3:-1}" 127.0.0.1 |
		awk -F'\t' '/^\[[0-9]+\]:/ {print $2}'
}
mbw() {
	local type=$1 addr=$2
	shift 2
	timeout 15 "$MBPOLL" -m tcp -p "$port" -0 -1 -q -o 2 -t "$type" -r "$addr" 127.0.0.1 "$@" \
		>/dev/null || fail "write $type:$addr $*"
}

# until_true DESCRIPTION COMMAND...: retry until COMMAND succeeds or WAIT runs out.
until_true() {
	local what=$1
	shift
	local end=$((SECONDS + WAIT))
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || fail "timed out waiting for: $what"
		sleep 0.2
	done
}

# --- command line -------------------------------------------------------------
"$PLCSIM" --help | grep -q '^Usage: conduit-plcsim' || fail "--help"
"$PLCSIM" --version | grep -q '^conduit-plcsim [0-9]' || fail "--version"
for args in "--host 192.0.2.1" "--host 0.0.0.0" "--host localhost" "--port 65536" \
	"--port -1" "--port 12x" "extra" "--bogus"; do
	rc=0
	# shellcheck disable=SC2086
	timeout 10 "$PLCSIM" $args 2>/dev/null || rc=$?
	[ "$rc" -eq 2 ] || fail "conduit-plcsim $args: exit $rc, want 2"
done
ok "command line: --help, --version, loopback-only --host, bad ports refused"

# --- start on a free port -------------------------------------------------------
: >"$log"
"$PLCSIM" --port 0 2>"$log" &
pid=$!
has_port() { grep -q 'listening on 127\.0\.0\.1:[0-9]' "$log"; }
until_true "the listening line" has_port
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$log" | head -1)
if [ -z "$port" ] || [ "$port" -eq 0 ]; then fail "no port in the log"; fi
ok "listening on 127.0.0.1:$port"

# --- initial state ---------------------------------------------------------------
[ "$(mb 4 0 2 | tr '\n' ' ')" = "100 50 " ] || fail "holding registers: $(mb 4 0 2)"
[ "$(mb 0 0 4 | tr '\n' ' ')" = "1 1 0 0 " ] || fail "coils: $(mb 0 0 4)"
[ "$(mb 1 0 2 | tr '\n' ' ')" = "0 0 " ] || fail "discrete inputs: $(mb 1 0 2)"
mapfile -t ir < <(mb 3 0 5)
[ "${#ir[@]}" -eq 5 ] || fail "input registers: ${ir[*]}"
[ "${ir[2]}" -eq 100 ] || fail "concentration ${ir[2]}, want 100"
[ "${ir[3]}" -eq 50 ] || fail "pump speed feedback ${ir[3]}, want 50"
[ "${ir[4]}" -eq 200 ] || fail "inflow ${ir[4]}, want 200 (20.0 l/s)"
ph0=${ir[1]}
ok "initial registers: IR ${ir[*]}, HR 100 50"
# Reading past the map is refused by the PLC (mbpoll exits non-zero).
if timeout 15 "$MBPOLL" -m tcp -p "$port" -0 -1 -q -o 2 -t 3 -r 0 -c 6 127.0.0.1 >/dev/null 2>&1; then
	fail "a read past the input registers succeeded"
fi
ok "read past the map refused"

# --- the level moves ---------------------------------------------------------------
l0=$(mb 3 0)
rising() { [ "$(mb 3 0)" -gt "$l0" ]; }
until_true "level rising above $l0 with V-201 open" rising
mbw 0 1 0 # close V-201
l1=$(mb 3 0)
falling() { [ "$(mb 3 0)" -lt "$l1" ]; }
until_true "level falling below $l1 with V-201 closed" falling
[ "$(mb 3 4)" -eq 0 ] || fail "inflow not 0 with V-201 closed"
mbw 0 1 1
grep -q 'client [0-9]*: write plant.valve.v201.open 1 -> 0' "$log" || fail "valve write not logged"
ok "level rises with V-201 open ($l0 -> above) and falls when closed ($l1 -> below)"

# --- several clients: an idle one, a stalled one, a malformed one --------------------
exec 3<>"/dev/tcp/127.0.0.1/$port" # idle client holding a connection
[ "$(mb 4 0)" -eq 100 ] || fail "read with an idle client connected"
printf '\x00\x01\x00' >&3 # stalls mid-header: dropped after the byte timeout
stalled_dropped() { grep -q 'disconnected: Connection timed out' "$log"; }
until_true "the stalled client dropped" stalled_dropped
exec 3<&-
[ "$(mb 4 0)" -eq 100 ] || fail "read after a stalled client"
# Write multiple registers whose MBAP length (20) contradicts the frame (10).
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf '\x00\x02\x00\x00\x00\x14\x01\x10\x00\x00\x00\x02\x04\x00\x01\x00\x02' >&3
malformed_dropped() { grep -q 'disconnected: malformed request' "$log"; }
until_true "the malformed client dropped" malformed_dropped
exec 3<&-
[ "$(mb 4 0 2 | tr '\n' ' ')" = "100 50 " ] || fail "registers changed by a malformed request"
ok "idle, stalled and malformed clients do not stop the PLC"

# A client that sends requests and never reads the answers: once the
# socket buffers are full, the PLC's send times out and drops it.
printf '\x00\x01\x00\x00\x00\x06\x01\x03\x00\x00\x00\x01' >"$tmp/req"
for _ in $(seq 20); do # 2^20 requests, 12 MiB: more than the buffers hold
	cat "$tmp/req" "$tmp/req" >"$tmp/req2"
	mv "$tmp/req2" "$tmp/req"
done
exec 3<>"/dev/tcp/127.0.0.1/$port"
timeout "$WAIT" cat "$tmp/req" >&3 2>/dev/null || true # ends when the PLC drops us
exec 3<&-
rm -f "$tmp/req"
nonreader_dropped() { grep -q 'disconnected: not reading its answers' "$log"; }
until_true "the non-reading client dropped" nonreader_dropped
[ "$(mb 4 0)" -eq 100 ] || fail "read after a non-reading client"
ok "a client that never reads its answers is dropped"

# --- the client limit: exactly 16 held connections, the 17th refused ---------------------
connected() { grep -c 'connected from' "$log" || true; }
before=$(connected)
held=()
for _ in $(seq 16); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$port"
	held+=("$fd")
done
all_held() { [ "$(connected)" -eq $((before + 16)) ]; }
until_true "16 clients connected" all_held
if timeout 15 "$MBPOLL" -m tcp -p "$port" -0 -1 -q -o 2 -t 4 -r 0 127.0.0.1 >/dev/null 2>&1; then
	fail "a 17th client was served"
fi
grep -q 'refused 127.0.0.1:[0-9]*: already 16 clients' "$log" || fail "17th client not refused"
eval "exec ${held[0]}<&-"
one_left() { [ "$(mb 4 0)" = 100 ]; }
until_true "a client served once one of the 16 left" one_left
for fd in "${held[@]:1}"; do
	eval "exec $fd<&-"
done
ok "16 connections held at once, the 17th refused, served again when one leaves"

# --- concentration follows a setpoint change ---------------------------------------
mbw 4 0 150
[ "$(mb 4 0)" -eq 150 ] || fail "setpoint did not read back 150"
grep -q 'client [0-9]*: setpoint plant.dosing.naoh_sp 100 -> 150 ppm$' "$log" ||
	fail "setpoint change not logged"
conc_up() { [ "$(mb 3 2)" -ge 140 ]; }
until_true "concentration >= 140 after setpoint 150" conc_up
ph_up() { [ "$(mb 3 1)" -gt "$ph0" ]; }
until_true "pH above $ph0" ph_up
mbw 4 0 80
conc_down() { [ "$(mb 3 2)" -le 90 ]; }
until_true "concentration <= 90 after setpoint 80" conc_down
ok "concentration and pH follow the setpoint (100 -> 150 -> 80)"

# --- an out-of-range setpoint is accepted, as a real PLC would -------------------------
mbw 4 0 11100
[ "$(mb 4 0)" -eq 11100 ] || fail "setpoint 11100 not accepted"
grep -q 'setpoint plant.dosing.naoh_sp 80 -> 11100 ppm (outside the engineering range' "$log" ||
	fail "out-of-range setpoint not flagged in the log"
mbw 4 0 100
ok "setpoint 11100 accepted and flagged (only the policy can refuse it)"

# --- E-stop stops the pump ------------------------------------------------------------
mbw 0 3 1 # the simulator's E-stop button
estop_on() { [ "$(mb 1 1)" -eq 1 ] && [ "$(mb 3 3)" -eq 0 ]; }
until_true "E-stop input set and pump stopped" estop_on
mbw 0 3 0
estop_off() { [ "$(mb 1 1)" -eq 0 ] && [ "$(mb 3 3)" -eq 50 ]; }
until_true "E-stop released and pump back at 50 %" estop_off
grep -q 'E-stop PRESSED' "$log" || fail "E-stop not logged"
ok "E-stop stops P-101 and releases it"

# --- clean stop ------------------------------------------------------------------------
kill -TERM "$pid"
rc=0
end=$((SECONDS + WAIT))
while kill -0 "$pid" 2>/dev/null; do
	[ "$SECONDS" -lt "$end" ] || fail "no exit after SIGTERM"
	sleep 0.1
done
wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || fail "exit status $rc after SIGTERM"
grep -q 'stopping on SIGTERM' "$log" || fail "SIGTERM not logged"
tail -1 "$log" | grep -q 'stopped$' || fail "no clean stop"
ok "SIGTERM: clean stop, exit 0"
