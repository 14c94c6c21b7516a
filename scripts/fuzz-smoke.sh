#!/usr/bin/env bash
# Runs every fuzz target briefly (FUZZTIME, default 5s each) on top of its
# seed corpus, which plain `go test` already replays. Long fuzzing is
# `make fuzz FUZZTIME=10m`.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-5s}
status=0
while IFS= read -r line; do
  file=${line%%:*}
  name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"${line#*:}")
  pkg=./$(dirname "$file")
  echo "fuzz: $pkg $name ($fuzztime)"
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/fuzz-$$.log 2>&1; then
    # The Go fuzzer can report "context deadline exceeded" when -fuzztime ends
    # while it is still minimising a new interesting (not failing) input. That
    # is not a finding: no failing input is written.
    if grep -q 'context deadline exceeded' /tmp/fuzz-$$.log && ! grep -q 'Failing input written' /tmp/fuzz-$$.log; then
      echo "fuzz: $name stopped while minimising a new corpus entry (no failure)"
      continue
    fi
    cat /tmp/fuzz-$$.log
    echo "fuzz: $name FAILED (the failing input is in $pkg/testdata/fuzz/$name: commit it)" >&2
    status=1
  fi
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | grep -v '/.tools/' | sed -E 's/^([^:]*):[0-9]+:/\1:/')
rm -f /tmp/fuzz-$$.log
exit $status
