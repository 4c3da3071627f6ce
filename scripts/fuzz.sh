#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser that reads outside input (cargo fuzz, libFuzzer).
#   scripts/fuzz.sh smoke          a few seconds per target (CI)
#   scripts/fuzz.sh run [SECONDS]  a campaign per target (default 600 s)
# Crashes land in fuzz/artifacts/<target>/; fix them and keep the input in fuzz/regressions/<target>/,
# which every run replays first.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-smoke}"
seconds="${2:-600}"
[[ "$mode" == smoke ]] && seconds=5

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi
# cargo fuzz passes -Z flags (sanitizers, coverage); the machine has one stable toolchain.
export RUSTC_BOOTSTRAP=1

targets=$(cd fuzz && cargo fuzz list)
for t in $targets; do
  mkdir -p "fuzz/corpus/$t" "fuzz/regressions/$t"
  if compgen -G "fuzz/regressions/$t/*" >/dev/null; then
    (cd fuzz && cargo fuzz run "$t" regressions/"$t"/* -- -runs=0)
  fi
  (cd fuzz && cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tail -n 12)
done
