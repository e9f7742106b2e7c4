#!/bin/sh
# conduit-sandbox end to end: exit codes, the seccomp kill report, policy
# errors, commissioning mode, the environment allowlist, and the rootless
# path as an unprivileged user.
# Usage: test-conduit-sandbox.sh CONDUIT_SANDBOX PROBE
set -u
CS=$1 PROBE=$2
[ "$(id -u)" -eq 0 ] || { echo "needs root (CI runs as root)"; exit 77; }
dir=$(mktemp -d /tmp/conduit-cs.XXXXXX)
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"
fails=0 n=0

check() { # check NAME WANT_RC GOT_RC [grep-pattern file]
	n=$((n + 1))
	if [ "$2" != "$3" ]; then
		echo "not ok $n - $1: exit $3, want $2"; sed 's/^/# /' "$dir/err" "$dir/out"
		fails=$((fails + 1)); return
	fi
	if [ $# -ge 5 ] && ! grep -q -- "$4" "$5"; then
		echo "not ok $n - $1: no '$4' in $5"; sed 's/^/# /' "$dir/err" "$dir/out"
		fails=$((fails + 1)); return
	fi
	echo "ok $n - $1"
}

policy() { # policy FILE EXTRA-LINES...
	f=$1; shift
	{
		echo 'version 1'
		echo 'layer probe {'
		echo '    exec "/bin/true"'
		echo '    user dynamic'
		echo '    syscalls stdio'
		echo '    syscalls allow getdents64'
		echo '    landlock read "/proc"'
		echo '    env CONDUIT_CS_VISIBLE'
		echo '    limit memory 256M files 32 procs 0'
		for l in "$@"; do echo "    $l"; done
		echo '}'
	} >"$f"
	chmod 644 "$f"
}

run() { "$@" >"$dir/out" 2>"$dir/err"; echo $?; }

policy "$dir/p.policy"
"$CS" --help >"$dir/out" 2>"$dir/err"; check "--help" 0 $? "Usage:" "$dir/out"
"$CS" --version >"$dir/out" 2>"$dir/err"; check "--version" 0 $? "conduit-sandbox" "$dir/out"
rc=$(run "$CS" --policy "$dir/p.policy"); check "missing command" 125 "$rc" "required" "$dir/err"

export CONDUIT_CS_VISIBLE=yes CONDUIT_CS_HIDDEN=no
rc=$(run "$CS" --policy "$dir/p.policy" --layer probe -- "$PROBE" status)
check "probe runs confined" 0 "$rc" "^Seccomp:	2" "$dir/out"
check "no_new_privs" 0 "$rc" "^NoNewPrivs:	1" "$dir/out"
check "only stdio open" 0 "$rc" "^fds 0 1 2$" "$dir/out"
check "env allowlist passes" 0 "$rc" "^env CONDUIT_CS_VISIBLE=yes$" "$dir/out"
if grep -q HIDDEN "$dir/out"; then check "env allowlist filters" 0 1; else check "env allowlist filters" 0 0; fi
check "env default as under the broker" 0 "$rc" "^env GLIBC_TUNABLES=glibc.pthread.rseq=0$" "$dir/out"

rc=$(run "$CS" -p "$dir/p.policy" -l probe "$PROBE" no-such-command)
check "child exit status passed through" 2 "$rc"

rc=$(run "$CS" -p "$dir/p.policy" -l probe "$PROBE" ptrace-parent)
check "seccomp kill -> 159" 159 "$rc" "killed by seccomp" "$dir/err"
if [ -r /dev/kmsg ]; then
	check "seccomp kill names the syscall" 159 "$rc" "syscall ptrace (101)" "$dir/err"
fi

rc=$(run "$CS" -p "$dir/p.policy" -l nosuch "$PROBE" status)
check "unknown layer" 125 "$rc" "no layer 'nosuch'" "$dir/err"
printf 'version 1\nlayer {\n' >"$dir/bad.policy"; chmod 644 "$dir/bad.policy"
rc=$(run "$CS" -p "$dir/bad.policy" -l probe "$PROBE" status)
check "policy with errors" 125 "$rc" "error" "$dir/err"
rc=$(run "$CS" -p "$dir/p.policy" -l probe no-such-program-conduit)
check "command not found" 127 "$rc"
rc=$(run "$CS" -p "$dir/p.policy" -l probe /etc/passwd)
check "command not executable" 126 "$rc" "step exec failed" "$dir/err"

policy "$dir/abi.policy" 'landlock abi 64'
rc=$(run "$CS" -p "$dir/abi.policy" -l probe "$PROBE" status)
check "required Landlock ABI missing fails closed" 125 "$rc" "cannot prepare" "$dir/err"

policy "$dir/log.policy" 'syscalls log'
rc=$(run "$CS" -p "$dir/log.policy" -l probe "$PROBE" setuid0)
check "commissioning mode runs and says so" 0 "$rc" "SECCOMP LOG MODE" "$dir/err"

# Rootless: the same command as nobody.  One warning line, the rest applies.
# Copies, because nobody may not reach the build tree (CI builds under /root).
cp "$CS" "$dir/conduit-sandbox" && cp "$PROBE" "$dir/sandbox-probe" &&
	chmod 755 "$dir" "$dir/conduit-sandbox" "$dir/sandbox-probe"
if setpriv --reuid=65534 --regid=65534 --clear-groups -- "$dir/conduit-sandbox" \
	-p "$dir/p.policy" -l probe "$dir/sandbox-probe" status >"$dir/out" 2>"$dir/err"; then
	rc=0
else
	rc=$?
fi
check "rootless runs" 0 "$rc" "not root" "$dir/err"
check "rootless: seccomp" 0 "$rc" "^Seccomp:	2" "$dir/out"
check "rootless: ids unchanged" 0 "$rc" "^Uid:	65534	65534	65534	65534" "$dir/out"
lines=$(grep -c warning "$dir/err")
check "rootless: exactly one warning line" 1 "$lines"

echo "1..$n"
[ "$fails" -eq 0 ]
