#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser that reads outside input (cargo fuzz, libFuzzer).
#   scripts/fuzz.sh smoke [SECONDS]  one quick build, then SECONDS per target (default 3; CI)
#   scripts/fuzz.sh run [SECONDS]    a campaign per target (default 600 s)
#   scripts/fuzz.sh run SECONDS T... only the named targets
# Every run first replays fuzz/regressions/<target>/ (kept crash inputs) and fails if one crashes.
# Seeds are read from fuzz/corpus/<target>/ and never written: what a run discovers goes to
# fuzz/target/corpus/<target>/ (ignored by git, reused by the next run). Crashes land in
# fuzz/artifacts/<target>/; fix them, then move the input to fuzz/regressions/<target>/ so
# `cargo test --test fuzz_corpus` replays it in every CI run.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-smoke}"
case "$mode" in
  smoke) seconds="${2:-3}" ;;
  run) seconds="${2:-600}" ;;
  *) echo "usage: scripts/fuzz.sh smoke|run [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac
shift $(($# > 2 ? 2 : $#))

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi
# cargo fuzz passes -Z flags (sanitizers, coverage); the machine has one stable toolchain.
export RUSTC_BOOTSTRAP=1

# Campaigns: optimised, with AddressSanitizer. The smoke only proves the targets build and run, so
# it takes the unoptimised build without a sanitizer: a fraction of the cold build time in CI.
if [[ "$mode" == smoke ]]; then
  build=(--dev --sanitizer none)
  profile=debug
else
  build=()
  profile=release
fi

cd fuzz
# One build of every target (they share the linkguard build), then the binaries run directly:
# `cargo fuzz run` would check the build again before each target.
targets="${*:-$(cargo fuzz list)}"
cargo fuzz build "${build[@]}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="target/$triple/$profile"

failed=()
for t in $targets; do
  mkdir -p "corpus/$t" "regressions/$t" "target/corpus/$t" "artifacts/$t"
  mapfile -t regressions < <(find "regressions/$t" -type f ! -name README.md | sort)
  if ((${#regressions[@]})); then
    echo "== $t: replaying ${#regressions[@]} input(s) of fuzz/regressions/$t"
    "$bin_dir/$t" -runs=0 "${regressions[@]}"
  fi
  echo "== $t: fuzzing ${seconds}s"
  # A crash ends this target's run; the others still run, and the script fails at the end.
  if ! "$bin_dir/$t" "target/corpus/$t" "corpus/$t" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" >"target/fuzz-$t.log" 2>&1; then
    failed+=("$t")
    tail -n 60 "target/fuzz-$t.log"
  else
    tail -n 12 "target/fuzz-$t.log"
  fi
done

if ((${#failed[@]})); then
  echo "fuzz: crashes in ${failed[*]}; inputs in fuzz/artifacts/<target>/, logs in fuzz/target/fuzz-<target>.log" >&2
  exit 1
fi
