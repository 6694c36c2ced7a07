#!/usr/bin/env bash
# test-at.sh: run the whole test suite at a chosen time of day (IST), to show that no test
# depends on when it runs. Example: scripts/test-at.sh 03:10   (just before the daily expiry)
#
# Builds the tests first, then runs each test binary under libfaketime (Debian: faketime)
# with the clock shifted so that it reads that time of day; every process the tests start
# inherits the shift. The monotonic clock is left alone: faked, it stalls waits that have a
# deadline. cargo and rustc are not run under faketime (they can stall there).
set -euo pipefail
cd "$(dirname "$0")/.."
at=${1:?usage: scripts/test-at.sh HH:MM (IST)}
command -v faketime >/dev/null || { echo "test-at: needs faketime (apt-get install faketime)" >&2; exit 2; }
bins=$(cargo test --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m.get("profile", {}).get("test"):
        print(m["executable"])')
# The next moment that reads HH:MM in IST, as Unix seconds.
target=$(TZ=Asia/Kolkata date -d "$at" +%s)
now=$(date +%s)
((target > now)) || target=$((target + 86400))
offset=$((target - now))
echo "test-at: clock shifted by ${offset}s to $(TZ=Asia/Kolkata date -d "@$target" '+%a %H:%M IST')"
failed=0
for b in $bins; do
    CARGO_MANIFEST_DIR=$PWD FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "+${offset}s" "$b" || failed=1
done
exit $failed
