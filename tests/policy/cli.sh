#!/bin/bash
# conduit-policy's documented exit codes and JSON output (conduit-policy(1)).
# usage: cli.sh path/to/conduit-policy path/to/source/tree
set -u
bin=$1 src=$2
tmp=$(mktemp -d /tmp/conduit-policy-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0

expect_rc() { # expect_rc WANT DESCRIPTION CMD...
	local want=$1 what=$2 rc
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		echo "FAIL: $what: exit $rc, want $want"; cat "$tmp/out" "$tmp/err"; fail=1
	else
		echo "ok: $what"
	fi
}

json_ok() { # the last output parses as JSON
	if ! python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/out"; then
		echo "FAIL: $1: output is not JSON"; cat "$tmp/out"; fail=1
	fi
}

plant=$src/policy/examples/plant.policy
bad=$(echo "$src"/tests/policy/invalid/*-range-reversed.policy)
cp "$plant" "$tmp/plant.policy"
chmod 644 "$tmp/plant.policy"

expect_rc 0 "check a clean policy" "$bin" check "$plant"
expect_rc 0 "check --format json" "$bin" --format json check "$plant"; json_ok check-json
grep -q '"valid":true' "$tmp/out" || { echo "FAIL: json check not valid"; fail=1; }
expect_rc 3 "check with warnings" "$bin" check "$src/tests/policy/lint/01-lints.policy"
grep -q '\[shadowed\]' "$tmp/err" || { echo "FAIL: no shadowed warning"; fail=1; }
expect_rc 1 "check an invalid policy" "$bin" check "$bad"
grep -q ':[0-9]*:[0-9]*: error: reversed range' "$tmp/err" || { echo "FAIL: no diagnostic"; fail=1; }
expect_rc 1 "check --format json, invalid" "$bin" --format json check "$bad"
json_ok check-invalid-json
grep -q '"severity":"error"' "$tmp/out" || { echo "FAIL: json has no error"; fail=1; }
expect_rc 0 "test passes" "$bin" test "$plant"
expect_rc 0 "test --format json" "$bin" --format=json test "$plant"; json_ok test-json
sed 's/^expect allow ui tag.write tag="plant.dosing.naoh_sp" value=100$/expect deny ui tag.write tag="plant.dosing.naoh_sp" value=100/' \
	"$plant" >"$tmp/wrong.policy"
chmod 644 "$tmp/wrong.policy"
expect_rc 4 "test with a failing expectation" "$bin" test "$tmp/wrong.policy"
grep -q 'wrong.policy:[0-9]*:1: error: expected deny, got allow' "$tmp/err" || { echo "FAIL: no failure line"; fail=1; }
expect_rc 0 "explain a layer" "$bin" explain "$plant" ui
grep -q 'may call tag.write' "$tmp/out" || { echo "FAIL: explain text"; fail=1; }
expect_rc 0 "explain a layer, json" "$bin" --format json explain "$plant" ui; json_ok explain-layer-json
expect_rc 0 "explain an allowed call" "$bin" explain "$plant" ui tag.write tag=plant.dosing.naoh_sp value=100
expect_rc 4 "explain a denied call" "$bin" explain "$plant" ui tag.write tag=plant.dosing.naoh_sp value=11100
grep -q '^deny' "$tmp/out" || { echo "FAIL: explain verdict"; fail=1; }
expect_rc 4 "explain: the string \"100\" is not the number 100" "$bin" explain "$plant" ui tag.write tag=plant.dosing.naoh_sp 'value="100"'
expect_rc 4 "explain a denied call, json" "$bin" --format json explain "$plant" ui tag.write tag=plant.safety.esd value=1
json_ok explain-call-json
grep -q '"rule":"ui#1"' "$tmp/out" || { echo "FAIL: deciding rule"; fail=1; }
expect_rc 2 "explain an unknown layer" "$bin" explain "$plant" nobody
expect_rc 2 "explain with a bad NAME=VALUE" "$bin" explain "$plant" ui tag.write novalue
expect_rc 2 "explain with a repeated argument" "$bin" explain "$plant" ui tag.write a=1 a=2
expect_rc 2 "no verb" "$bin"
expect_rc 2 "unknown verb" "$bin" frobnicate "$plant"
expect_rc 2 "unknown option" "$bin" --frobnicate check "$plant"
expect_rc 2 "bad --format" "$bin" --format xml check "$plant"
expect_rc 0 "--help" "$bin" --help
expect_rc 0 "--version" "$bin" --version
grep -q '^conduit-policy ' "$tmp/out" || { echo "FAIL: version text"; fail=1; }

# The file itself: symlinks and group/world-writable files are refused.
ln -s "$tmp/plant.policy" "$tmp/link.policy"
expect_rc 1 "a symlinked policy" "$bin" check "$tmp/link.policy"
grep -q 'symbolic link' "$tmp/err" || { echo "FAIL: symlink message"; fail=1; }
chmod 664 "$tmp/plant.policy"
expect_rc 1 "a group-writable policy" "$bin" check "$tmp/plant.policy"
chmod 646 "$tmp/plant.policy"
expect_rc 1 "a world-writable policy" "$bin" check "$tmp/plant.policy"
expect_rc 1 "a missing policy" "$bin" check "$tmp/missing.policy"

exit $fail
