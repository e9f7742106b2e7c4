# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# The Oldsmar scenario, sourced by conduit-plant once the simulator runs and
# the run-time policy is rendered.  Each step writes one command into the
# ui's command file and waits (bounded) for its effect, read from outside
# the layers: the audit log the broker writes and the PLC's registers as
# mbpoll, a Modbus client nobody on the project wrote, reads them.
#
# Uses from conduit-plant: RUN LOG AUDIT HOST PORT BUILD POLICY_CLI start_broker
# stop_pid broker_pid.

MBPOLL=${MBPOLL:-$(command -v mbpoll || true)}
STEP_WAIT=${PLANT_STEP_WAIT:-20} # seconds one effect may take
ROWS=()
ALL_PASS=true

if [ -t 1 ]; then
	say() { printf '\033[1m== %s\033[0m\n' "$*"; }
else
	say() { printf '== %s\n' "$*"; }
fi

# row STEP EXPECTED OBSERVED PASS|FAIL
row() {
	ROWS+=("$1"$'\t'"$2"$'\t'"$3"$'\t'"$4")
	[ "$4" = PASS ] || ALL_PASS=false
	printf '   -> %s: %s\n' "$4" "$3"
}

# until_ok SECONDS COMMAND...: retry every 0.2 s; status 1 when time runs out.
until_ok() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.2
	done
}

# Audit records containing every one of the given fixed strings.
alines() {
	local out p
	out=$(cat "$AUDIT" 2>/dev/null || true)
	for p in "$@"; do
		out=$(grep -F -- "$p" <<<"$out" || true)
	done
	[ -z "$out" ] || printf '%s\n' "$out"
}
acount() { alines "$@" | grep -c . || true; }
has() { # MIN PATTERN...: at least MIN matching records
	local min=$1
	shift
	[ "$(acount "$@")" -ge "$min" ]
}
# "ui#5, line 52" from a decision record
rule_of() { sed -n 's/.*"rule":"\([^"]*\)".*"line":\([0-9]*\).*/\1, line \2/p' | tail -1; }

ui_lines() { sed -n 's/^conduit-broker: layer ui: //p' "$LOG"; }
# ui_has TEXT: a ui line starting with TEXT (grep on the file itself: with
# pipefail, an early-exiting grep -q would fail the pipeline by SIGPIPE).
ui_has() { grep -q -F -- "conduit-broker: layer ui: $1" "$LOG"; }
ui_count() { grep -c -F -- "conduit-broker: layer ui: $1" "$LOG" || true; }
ready_count() { ui_count 'ready: commands from offset'; }
# Re-evaluated on each retry of until_ok (an argument "$(...)" would not be).
ready_gt() { [ "$(ready_count)" -gt "$1" ]; }
values_gt() { [ "$(ui_count 'value ')" -gt "$1" ]; }

# need WHAT COMMAND...: a condition of the current step; a miss fails the
# step and says which condition it was.
need() {
	local what=$1
	shift
	"$@" && return 0
	ok=FAIL
	echo "   !! not met: $what"
}

# mb TYPE ADDR: one value read with mbpoll (types: 0 coil, 1 input bit, 3
# input register, 4 holding register; 0-based addresses).
mb() {
	timeout 10 "$MBPOLL" -m tcp -p "$PORT" -0 -1 -q -o 2 -t "$1" -r "$2" "$HOST" 2>/dev/null |
		awk -F'\t' '/^\[[0-9]+\]:/ {print $2}' | head -1
}
mb_is() { [ "$(mb "$1" "$2")" = "$3" ]; }

send() { # one command for the ui, the way an attacker's controller would
	printf '   ui <- %s\n' "$1"
	printf '%s\n' "$1" >>"$RUN/commands"
}

W='"event":"decision","layer":"ui"'
SP='{"n":"tag","t":"str","v":"plant.dosing.naoh_sp"}'
ESTOP='{"n":"tag","t":"str","v":"plant.safety.estop_bypass"}'

step_normal() {
	say "1. Normal operation: the layers start, values flow to the dashboard"
	local ok=PASS obs
	need "ui ready" until_ok "$STEP_WAIT" ready_gt 0
	need "a tank level on the dashboard" until_ok "$STEP_WAIT" ui_has 'value plant.tank.level '
	for l in io alarm hist; do
		need "$l spawned" until_ok "$STEP_WAIT" has 1 "\"event\":\"spawn\",\"layer\":\"$l\""
	done
	obs="ui shows $(ui_lines | grep -m1 '^value plant.tank.level ' | cut -d' ' -f2-); HR0 = $(mb 4 0)"
	row "normal operation" "4 layers up, live values" "$obs" $ok
}

step_operator() {
	say "2. The operator sets the NaOH setpoint to 110 ppm (allowed)"
	local ok=PASS pat='"n":"value","t":"i64","v":110}'
	send "sp 110"
	need "an allow record" until_ok "$STEP_WAIT" has 1 "$W" "$SP" "$pat" '"verdict":"allow"'
	need "HR0 = 110" until_ok "$STEP_WAIT" mb_is 4 0 110
	row "operator: setpoint 110" "allow; HR0 = 110" \
		"allow ($(alines "$W" "$SP" "$pat" '"verdict":"allow"' | rule_of)); HR0 = $(mb 4 0)" $ok
}

step_oldsmar() {
	say "3. The compromised ui writes 11,100 ppm (the Oldsmar attack)"
	local ok=PASS pat='"n":"value","t":"i64","v":11100}' want
	send "attack write plant.dosing.naoh_sp 11100"
	need "a deny record" until_ok "$STEP_WAIT" has 1 "$W" "$SP" "$pat" '"verdict":"deny"'
	# The deciding rule must be the setpoint's range rule, by its line.
	want=$(grep -n '^ *deny  *tag.write  *tag "plant.dosing.naoh_sp" *#' "$RUN/plant.policy" | cut -d: -f1)
	need "decided by the range rule (line $want)" \
		has 1 "$W" "$SP" "$pat" '"verdict":"deny"' "\"line\":$want,"
	sleep 1 # io polls every 250-500 ms: a write that got through would show by now
	need "HR0 still 110" mb_is 4 0 110
	row "attack: setpoint 11100" "deny by the range rule; HR0 = 110" \
		"deny ($(alines "$W" "$SP" "$pat" '"verdict":"deny"' | rule_of)); HR0 = $(mb 4 0)" $ok
}

step_estop() {
	say "4. The compromised ui writes the E-stop bypass coil (denied)"
	local ok=PASS
	send "attack write plant.safety.estop_bypass 1"
	need "a deny record" until_ok "$STEP_WAIT" has 1 "$W" "$ESTOP" '"verdict":"deny"'
	sleep 1
	need "coil 2 still 0" mb_is 0 2 0
	row "attack: E-stop bypass coil" "deny; coil 2 = 0" \
		"deny ($(alines "$W" "$ESTOP" '"verdict":"deny"' | rule_of)); coil 2 = $(mb 0 2)" $ok
}

step_socket() {
	say "5. The compromised ui opens a socket to the PLC itself (seccomp kills it)"
	local ok=PASS before spawns
	before=$(ready_count)
	spawns=$(acount '"event":"spawn","layer":"ui"')
	send "attack connect $HOST:$PORT"
	need "an exit record with SIGSYS" \
		until_ok "$STEP_WAIT" has 1 '"event":"exit","layer":"ui"' '"signal":"SIGSYS"'
	need "a new spawn of ui" until_ok "$STEP_WAIT" has $((spawns + 1)) '"event":"spawn","layer":"ui"'
	need "the new ui ready" until_ok "$STEP_WAIT" ready_gt "$before"
	row "attack: socket() to the PLC" "killed (SIGSYS), restarted" \
		"exit SIGSYS x$(acount '"event":"exit","layer":"ui"' '"signal":"SIGSYS"'), ui spawns $spawns -> $(acount '"event":"spawn","layer":"ui"')" $ok
}

step_flood() {
	say "6. The compromised ui floods 50 setpoint writes (rate-limited)"
	local ok=PASS rl allowed
	send "attack flood 50 plant.dosing.naoh_sp 110"
	need "the flood done" until_ok "$STEP_WAIT" ui_has 'attacker: flood of 50 writes done'
	rl=$(acount "$W" "$SP" '"verdict":"rate-limited"')
	allowed=$(ui_lines | sed -n 's/^attacker: flood of 50 writes done: \([0-9]*\) allowed.*/\1/p' | tail -1)
	# How many pass depends on how fast the broker decides (burst 2, then 2/s):
	# no count is asserted but that some were throttled and all were decided.
	need "some rate-limited" test "$rl" -ge 1
	need "all 50 decided: allowed or rate-limited" test "$((rl + ${allowed:-0}))" -eq 50
	need "HR0 still 110" mb_is 4 0 110
	row "attack: flood of 50 writes" "rate-limited (2/s); HR0 = 110" \
		"$rl rate-limited, ${allowed:-?} allowed; HR0 = $(mb 4 0)" $ok
}

step_alive() {
	say "7. The plant and the dashboard keep running"
	local ok=PASS n exits
	n=$(ui_count 'value ')
	need "new values on the dashboard" until_ok "$STEP_WAIT" values_gt "$n"
	exits=$(acount '"event":"exit"' '"layer":"')
	for l in io alarm hist; do
		need "$l never exited" test "$(acount "\"event\":\"exit\",\"layer\":\"$l\"")" -eq 0
	done
	[ -z "$plcsim_pid" ] || need "the PLC simulator running" kill -0 "$plcsim_pid"
	row "plant keeps running" "io, alarm, hist never exit; ui gets values" \
		"layer exits $exits (ui only); +$(($(ui_count 'value ') - n)) values on the dashboard; level $(mb 3 0) mm" $ok
}

# Each layer's pid from its latest spawn record; its /proc status while it
# runs: a uid of its own (not root), no capability, no_new_privs, seccomp.
step_identity() {
	say "8. Every layer runs under its own uid with no capabilities"
	local ok=PASS l pid uid cap caps nnp sec uids=() obs=
	: >"$RUN/layers.txt"
	for l in io alarm hist ui; do
		pid=$(alines "\"event\":\"spawn\",\"layer\":\"$l\"" | tail -1 | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
		uid=$(awk '/^Uid:/ {print $2 "/" $3 "/" $4}' "/proc/$pid/status" 2>/dev/null || true)
		cap=$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
		# Every capability set (inheritable, permitted, effective, bounding,
		# ambient) empty; no_new_privs; a seccomp filter.
		caps=$(awk '/^Cap(Inh|Prm|Eff|Bnd|Amb):/ && $2 != "0000000000000000" {n++} END {print n + 0}' \
			"/proc/$pid/status" 2>/dev/null || echo "?")
		nnp=$(awk '/^NoNewPrivs:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
		sec=$(awk '/^Seccomp:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
		echo "$l pid=$pid uid=$uid capeff=$cap nonzero_capsets=$caps nnp=$nnp seccomp=$sec" \
			>>"$RUN/layers.txt"
		need "$l no capability in any set" test "$caps" = 0
		need "$l no_new_privs" test "$nnp" = 1
		need "$l seccomp filter" test "$sec" = 2
		obs+="$l ${uid%%/*} "
		case $uid in "" | 0/* | */0/* | */0) need "$l not root" false ;; esac
		need "$l real, effective and saved uid equal" \
			test "$uid" = "${uid%%/*}/${uid%%/*}/${uid%%/*}"
		need "$l CapEff 0" test "$cap" = 0000000000000000
		uids+=("${uid%%/*}")
	done
	need "4 distinct uids" test "$(printf '%s\n' "${uids[@]}" | sort -u | grep -c .)" -eq 4
	row "layer identities" "4 distinct uids, CapEff 0" "uids: ${obs% }; all Cap* 0, NoNewPrivs, Seccomp 2" $ok
}

scenario_run() {
	local rc=0 hr0 audit_out audit_rc=0
	[ -n "$MBPOLL" ] || { echo "conduit-plant: mbpoll missing (apt-get install mbpoll)" >&2; exit 1; }
	say "Oldsmar scenario: PLC on $HOST:$PORT, run directory $RUN"
	start_broker
	# The dashboard in line mode: the ui's lines as the broker logs them.
	tail -n +1 -F --pid="$broker_pid" "$LOG" 2>/dev/null |
		sed -u -n -e 's/^conduit-broker: layer ui: /   ui | /p' \
			-e 's/^conduit-broker: \(layer [a-z]* (pid .*\)/   broker | \1/p' &
	tail_pid=$!
	step_normal
	step_operator
	step_oldsmar
	step_estop
	step_socket
	step_flood
	step_alive
	step_identity
	say "9. Stop the broker; verify the audit log"
	stop_pid "$broker_pid" 10
	broker_pid=
	wait "$tail_pid" 2>/dev/null || true
	tail_pid=
	has 1 '"event":"stop"' || ALL_PASS=false
	hr0=$(mb 4 0)
	audit_out=$("$POLICY_CLI" audit "$RUN/plant.policy" "$AUDIT" 2>&1) || audit_rc=$?
	row "audit log" "conduit-policy audit: clean (exit 0)" "$(head -1 <<<"$audit_out" | sed 's/^conduit-policy audit: //'), exit $audit_rc" \
		"$([ $audit_rc -eq 0 ] && echo PASS || echo FAIL)"
	[ "$hr0" = 110 ] || ALL_PASS=false

	echo
	echo "Scenario summary"
	printf '%s\n' "${ROWS[@]}" | awk -F'\t' 'BEGIN {
		printf "  %-28s %-42s %-6s %s\n", "step", "expected", "result", "observed" }
		{ printf "  %-28s %-42s %-6s %s\n", $1, $2, $4, $3 }'
	echo
	echo "mbpoll, holding register 0 (NaOH setpoint) after the run: $hr0 ppm (expected 110)"
	echo
	echo "$audit_out"
	echo
	if $ALL_PASS; then
		echo "RESULT: PASS (every step as expected)"
	else
		echo "RESULT: FAIL (see the rows above; logs in $RUN)"
		KEEP_RUN=true
		rc=1
	fi
	exit $rc
}
