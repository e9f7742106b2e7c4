#!/bin/sh
# conduit-broker's command line: help, version, usage errors and the exit
# status for a refused policy or an unusable audit log (none of these
# starts a layer).
set -u
B=$1
dir=$(mktemp -d /tmp/conduit-bcli.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fails=0 n=0

check() { # check NAME WANT_RC GOT_RC [pattern file]
	n=$((n + 1))
	if [ "$2" != "$3" ]; then
		echo "not ok $n - $1: exit $3, want $2"; sed 's/^/# /' "$dir/out" "$dir/err"
		fails=$((fails + 1)); return
	fi
	if [ $# -ge 5 ] && ! grep -q -- "$4" "$5"; then
		echo "not ok $n - $1: no '$4' in $5"; sed 's/^/# /' "$dir/out" "$dir/err"
		fails=$((fails + 1)); return
	fi
	echo "ok $n - $1"
}
run() { "$@" >"$dir/out" 2>"$dir/err"; echo $?; }

printf 'version 1\nlayer a {\n    exec "/bin/true"\n}\n' >"$dir/good.policy"
printf 'version 1\nlayer a {\n' >"$dir/bad.policy"
chmod 644 "$dir/good.policy" "$dir/bad.policy"
cp "$dir/good.policy" "$dir/writable.policy"; chmod 666 "$dir/writable.policy"

rc=$(run "$B" --help); check "--help" 0 "$rc" "Usage:" "$dir/out"
rc=$(run "$B" --version); check "--version" 0 "$rc" "conduit-broker" "$dir/out"
rc=$(run "$B"); check "no --policy" 2 "$rc" "required" "$dir/err"
rc=$(run "$B" --policy "$dir/good.policy" extra); check "operand" 2 "$rc"
rc=$(run "$B" --bogus); check "unknown option" 2 "$rc"
rc=$(run "$B" --policy "$dir/good.policy" --heartbeat -1); check "negative heartbeat" 2 "$rc"
rc=$(run "$B" --policy "$dir/good.policy" --heartbeat 86400001); check "heartbeat over a day" 2 "$rc"
rc=$(run "$B" --policy "$dir/good.policy" --heartbeat 5x); check "heartbeat not a number" 2 "$rc"
rc=$(run "$B" --policy "$dir/good.policy" --call-timeout 0); check "call timeout 0" 2 "$rc"
rc=$(run "$B" --policy "$dir/bad.policy" --audit "$dir/a.log")
check "policy with errors" 3 "$rc" "bad.policy:2" "$dir/err"
[ ! -e "$dir/a.log" ] || { echo "not ok - audit log created for a refused policy"; fails=$((fails + 1)); }
rc=$(run "$B" --policy "$dir/writable.policy" --audit "$dir/a.log")
check "world-writable policy" 3 "$rc"
rc=$(run "$B" --policy "$dir/missing.policy" --audit "$dir/a.log")
check "missing policy" 3 "$rc"
rc=$(run "$B" --policy "$dir/good.policy"); check "no audit log anywhere" 4 "$rc" "audit" "$dir/err"
rc=$(run "$B" --policy "$dir/good.policy" --audit "$dir/nodir/a.log")
check "audit log cannot be opened" 4 "$rc" "audit log" "$dir/err"

echo "1..$n"
[ "$fails" -eq 0 ]
