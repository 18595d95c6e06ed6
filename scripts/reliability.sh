#!/usr/bin/env bash
# The full reliability and security matrix (docs/reliability.md): every
# shipped playbook under injected faults, kill -9 trials with resume, journal
# on a full or read-only disk, fuzzing, hostile gateways, secret scans, TLS
# refusals, locks, and the 200-host load figures. The README's test command
# runs a bounded sample of the same tests; this runs all of it, in release
# mode, and collects every table into one figures file.
#
# Usage: scripts/reliability.sh [OUT_DIR]   (default target/reliability)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/reliability}"
mkdir -p "$out"
export RUNSHEET_RELIABILITY=full
export RUNSHEET_RELIABILITY_REPORT="$PWD/$out/figures.md"
printf '# Reliability matrix figures, %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$RUNSHEET_RELIABILITY_REPORT"
started=$(date +%s)

# The matrix: faults, crashes, hostile input, secrets, TLS, locks. A failing part
# does not stop the rest: every figure is still printed, and the script fails at the end.
status=0
cargo test --release --locked --test run reliability:: -- --nocapture --test-threads=1 || status=$?

# Load: a large estate (200 hosts x 10 steps at concurrency 1, 16 and 64, local and over SSH).
cargo bench --locked --bench estate | tee "$out/estate.txt" || status=$?

echo
echo "reliability matrix done in $(( $(date +%s) - started )) s; figures: $RUNSHEET_RELIABILITY_REPORT"
if [ "$status" -ne 0 ]; then
    echo "reliability matrix: a part FAILED (exit $status); its reason is above" >&2
fi
exit "$status"
