#!/usr/bin/env bash
# The long soak (issue 8): linkguard's Functions handler against the ARM sandbox for minutes of
# random faults (429 storms, 5xx, latency, failing LROs, dropped connections), new Pending
# connections announced by duplicated and reordered Event Grid deliveries, timer and manual audits
# at the same time; then the faults stop and every invariant is checked (tests/soak_support/mod.rs).
#
#   scripts/soak.sh                        defaults of src/bin/soak.rs: 5 minutes, 300 governed and
#                                          30 out-of-scope registries, 10 new connections/s,
#                                          6 concurrent deliveries, a timer audit every 5 s, seed 1
#   scripts/soak.sh --minutes 30 --seed 7  any option of the soak binary (`--help` lists them)
#
# Progress on stderr; the summary as JSON on stdout, also kept in target/soak/summary-<time>.json.
# Exit 0: every invariant held; 1: one was broken (the summary lists them); 2: the soak could not
# start. A failure replays with the same --seed. The short version: `cargo test --test soak`.
set -euo pipefail
cd "$(dirname "$0")/.."

mkdir -p target/soak
summary="target/soak/summary-$(date -u +%Y%m%dT%H%M%SZ).json"
set +e
cargo run --release --locked --bin soak -- "$@" | tee "$summary"
status=${PIPESTATUS[0]}
set -e
echo "soak: exit $status; summary in $summary" >&2
exit "$status"
