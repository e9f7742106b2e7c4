#!/bin/bash
# SPDX-License-Identifier: MIT
# The demo plant's Oldsmar scenario end to end, checked independently of the
# launcher's own summary: a PLC simulator this test starts, the launcher run
# non-interactively against it, then
#  - mbpoll (a Modbus client nobody on the project wrote) reads the NaOH
#    setpoint register: 110, not 11,100; the E-stop bypass coil: 0;
#  - the audit log: allow for 110, deny for 11100 by the setpoint's range
#    rule (its id and line), deny for the E-stop bypass coil, the ui's exit
#    by SIGSYS followed by a new spawn of it, rate-limited writes from the
#    flood (all 50 decided, some rate-limited), io, alarm and hist spawned
#    once and ended only by the stop;
#  - conduit-policy audit exits 0 (chain intact, every verdict replayed);
#  - every layer ran under a uid of its own, not root, with CapEff 0 (and
#    every other capability set empty, NoNewPrivs 1, Seccomp 2).
# Every wait is bounded; the trap stops the simulator whatever happens.
#   usage: test-plant-scenario.sh LAUNCHER BUILD_ROOT PLCSIM MBPOLL CONDUIT_POLICY
set -euo pipefail
LAUNCHER=$1
BUILD=$2
PLCSIM=$3
MBPOLL=$4
POLICY_CLI=$5

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: the plant scenario needs root (layers get uids of their own)"
	exit 77
fi

tmp=$(mktemp -d /tmp/test-plant-scenario.XXXXXX)
run=$tmp/run
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	for f in scenario.out run/broker.log run/audit.log; do
		[ -f "$tmp/$f" ] && { echo "--- $f:" >&2; tail -n 60 "$tmp/$f" >&2; }
	done
	exit 1
}
ok() { echo "ok: $*"; }

: >"$tmp/plcsim.log" # exists before the loop below reads it
"$PLCSIM" --port 0 2>"$tmp/plcsim.log" &
pid=$!
for ((i = 0; i < 100; i++)); do
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$tmp/plcsim.log" | head -1)
	[ -z "$port" ] || break
	sleep 0.1
done
[ -n "$port" ] || fail "conduit-plcsim did not start"

mb() { # TYPE ADDR -> the value
	timeout 15 "$MBPOLL" -m tcp -p "$port" -0 -1 -q -o 2 -t "$1" -r "$2" 127.0.0.1 |
		awk -F'\t' '/^\[[0-9]+\]:/ {print $2}'
}

# --- the scenario, non-interactively (stdin is not a terminal) -----------------
rc=0
timeout 150 "$LAUNCHER" --build "$BUILD" --run-dir "$run" --plc "127.0.0.1:$port" \
	</dev/null >"$tmp/scenario.out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "the scenario exited $rc"
grep -q '^RESULT: PASS' "$tmp/scenario.out" || fail "no RESULT: PASS line"
for s in "normal operation" "operator: setpoint 110" "attack: setpoint 11100" \
	"attack: E-stop bypass coil" "attack: socket() to the PLC" "attack: flood of 50 writes" \
	"plant keeps running" "layer identities" "audit log"; do
	grep -F "  $s " "$tmp/scenario.out" | grep -q ' PASS ' || fail "summary row '$s' is not PASS"
done
grep -q '^mbpoll, holding register 0 (NaOH setpoint) after the run: 110 ppm' "$tmp/scenario.out" ||
	fail "the summary's mbpoll line"
ok "the scenario exits 0 with every summary row PASS"

# --- the PLC, read from outside ------------------------------------------------
[ "$(mb 4 0)" = 110 ] || fail "HR0 (NaOH setpoint) is $(mb 4 0), want 110"
[ "$(mb 0 2)" = 0 ] || fail "coil 2 (E-stop bypass) is $(mb 0 2), want 0"
ok "mbpoll: HR0 = 110 (not 11100), E-stop bypass coil = 0"

# --- the audit log --------------------------------------------------------------
log=$run/audit.log
pol=$run/plant.policy
W='"event":"decision","layer":"ui","pid":'
SP='"method":"tag.write","args":[{"n":"tag","t":"str","v":"plant.dosing.naoh_sp"}'
n() { # PATTERN...: matching records
	local out p
	out=$(cat "$log")
	for p; do out=$(grep -F -- "$p" <<<"$out" || true); done
	[ -z "$out" ] || printf '%s\n' "$out"
}
count() { n "$@" | grep -c . || true; }

[ "$(count "$W" "$SP" '{"n":"value","t":"i64","v":110}]' '"verdict":"allow"')" -ge 1 ] ||
	fail "no allow for setpoint 110"
range_line=$(grep -n '^ *deny  *tag.write  *tag "plant.dosing.naoh_sp" *#' "$pol" | cut -d: -f1)
[ -n "$range_line" ] || fail "no range rule in the rendered policy"
rec=$(n "$W" "$SP" '{"n":"value","t":"i64","v":11100}]' '"verdict":"deny"')
[ "$(grep -c . <<<"$rec")" -eq 1 ] || fail "want exactly one deny for 11100"
grep -q "\"rule\":\"ui#5\",\"policy\":\"$pol\",\"line\":$range_line," <<<"$rec" ||
	fail "the 11100 deny does not name the range rule ui#5 at line $range_line: $rec"
[ "$(count "$W" '{"n":"tag","t":"str","v":"plant.safety.estop_bypass"}' '"verdict":"deny"')" -eq 1 ] ||
	fail "no deny for the E-stop bypass coil"
[ "$(count "$W" '"method":"tag.write"' '"verdict":"allow"' 'plant.safety.')" -eq 0 ] || fail "a safety tag write allowed"
sigsys=$(n '"event":"exit","layer":"ui"' '"signal":"SIGSYS"' | sed -n 's/^{"seq":\([0-9]*\),.*/\1/p')
[ "$(grep -c . <<<"$sigsys")" -eq 1 ] || fail "want one ui exit by SIGSYS"
respawn=$(n '"event":"spawn","layer":"ui"' | sed -n 's/^{"seq":\([0-9]*\),.*/\1/p' | tail -1)
[ "$respawn" -gt "$sigsys" ] || fail "no spawn of ui after its SIGSYS exit"
# The operator's write and the flood's 50: every one decided, none denied,
# some rate-limited (how many depends on how fast the broker ran: not asserted).
[ "$(count "$W" "$SP" '{"n":"value","t":"i64","v":110}]')" -eq 51 ] || fail "want 51 decisions on 110"
[ "$(count "$W" "$SP" '{"n":"value","t":"i64","v":110}]' '"verdict":"deny"')" -eq 0 ] ||
	fail "a write of 110 denied"
[ "$(count "$W" "$SP" '"verdict":"rate-limited"')" -ge 1 ] || fail "the flood was not rate-limited"
seq_of() { sed -n 's/^{"seq":\([0-9]*\),.*/\1/p'; }
last_decision=$(n '"event":"decision"' | seq_of | tail -1)
[ "$(count '"event":"stop"')" -eq 1 ] || fail "no stop record"
for l in io alarm hist; do
	[ "$(count "\"event\":\"spawn\",\"layer\":\"$l\"")" -eq 1 ] || fail "$l was spawned more than once"
	# Only the broker's stop may end them: after the scenario's last decision.
	for e in $(n "\"event\":\"exit\",\"layer\":\"$l\"" | seq_of); do
		[ "$e" -gt "$last_decision" ] || fail "$l exited during the scenario (seq $e)"
	done
done
ok "audit: allow 110; deny 11100 by ui#5 (line $range_line); deny E-stop coil; SIGSYS then respawn; flood rate-limited; io, alarm, hist spawned once"

rc=0
"$POLICY_CLI" audit "$pol" "$log" >"$tmp/audit.out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || { cat "$tmp/audit.out" >&2; fail "conduit-policy audit exited $rc"; }
grep -q ': clean$' "$tmp/audit.out" || fail "conduit-policy audit did not say clean"
grep -q ' 0 verdict mismatches' "$tmp/audit.out" || fail "verdict mismatches"
ok "conduit-policy audit: clean, exit 0"

# --- identities ------------------------------------------------------------------
[ "$(grep -c . "$run/layers.txt")" -eq 4 ] || fail "layers.txt should list 4 layers"
uids=()
while read -r layer lpid uid cap caps nnp sec; do
	uid=${uid#uid=}
	cap=${cap#capeff=}
	[ "$caps" = nonzero_capsets=0 ] || fail "$layer: a capability set is not empty ($caps)"
	[ "$nnp" = nnp=1 ] || fail "$layer: no_new_privs not set ($nnp)"
	[ "$sec" = seccomp=2 ] || fail "$layer: no seccomp filter ($sec)"
	u=${uid%%/*}
	[ "$uid" = "$u/$u/$u" ] || fail "$layer: real/effective/saved uids differ: $uid"
	[ "$u" -gt 0 ] || fail "$layer runs as root"
	[ "$cap" = 0000000000000000 ] || fail "$layer: CapEff $cap"
	uids+=("$u")
	echo "  $layer $lpid uid $u CapEff $cap"
done <"$run/layers.txt"
[ "$(printf '%s\n' "${uids[@]}" | sort -u | grep -c .)" -eq 4 ] || fail "layers share a uid"
ok "io, alarm, hist and ui each ran under a uid of its own, every capability set empty, no_new_privs, seccomp"
