#!/bin/bash
# The shared library exports exactly the cdt_ functions conduit.h declares.
set -eu
lib=$1 header=$2
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBR]$/ {print $3}' | sed 's/@.*//' | sort -u)
declared=$(grep -o 'cdt_[a-z0-9_]*(' "$header" | tr -d '(' | sort -u)
bad=$(printf '%s\n' "$exported" | grep -v '^cdt_' || true)
if [ -n "$bad" ]; then
	echo "exported but not cdt_: $bad"; exit 1
fi
if [ "$exported" != "$declared" ]; then
	echo "exported vs declared differ:"
	diff <(printf '%s\n' "$declared") <(printf '%s\n' "$exported") || true
	exit 1
fi
echo "ok: $(printf '%s\n' "$exported" | wc -l) symbols"
