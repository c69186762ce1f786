#!/usr/bin/env bash
# Runs every fuzz target in the module for a bounded time each. Go fuzzes
# one target per `go test -fuzz` run, so the targets are found here (each
# `func FuzzX(f *testing.F)` in a _test.go file) rather than listed by hand.
#   scripts/fuzz.sh [TIME]     # TIME per target, as for -fuzztime (30s)
# Ends with a table: target, executions, new corpus entries, result. A
# failing input is written under the package's testdata/fuzz/ by go test;
# the script carries on with the other targets and exits 1 at the end.
set -uo pipefail
time=${1:-30s}
go=${GO:-go}
cd "$(dirname "$0")/.."
targets=$(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' --exclude-dir=testdata . |
	sed -E 's|^\./(.*)/[^/]*:func (Fuzz[A-Za-z0-9_]*)\($|\1 \2|' | sort)
if [ -z "$targets" ]; then
	echo "fuzz: no targets found" >&2
	exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
summary=()
status=0
while read -r dir name; do
	echo "fuzz: $dir $name for $time"
	if $go test -run '^$' -fuzz "^$name\$" -fuzztime "$time" "./$dir/" >"$log" 2>&1; then
		result=ok
	elif grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
		# Go's fuzz coordinator can report its own -fuzztime deadline as a
		# failure (go.dev/issue/75804, fixed in Go 1.27): no input failed.
		result='ok (deadline race)'
	else
		result=FAIL
		status=1
		cat "$log"
	fi
	execs=$(grep -Eo 'execs: [0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+')
	found=$(grep -Eo 'new interesting: [0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+')
	summary+=("$(printf '%-10s %-18s %10s %6s  %s' "$dir" "$name" "${execs:-0}" "${found:-0}" "$result")")
done <<<"$targets"
printf '%-10s %-18s %10s %6s  %s\n' package target execs new result
printf '%s\n' "${summary[@]}"
exit $status
