#!/usr/bin/env bash
# Builds the Azure Functions deployment package: a zip with host.json, the function folders
# (function/* copied to the zip root) and the linkguard binary at the root, ready for
#   az functionapp deployment source config-zip -g <rg> -n <app> --src target/linkguard-functions.zip
#
# Usage: scripts/package-functions.sh [--binary PATH] [--out ZIP] [--policy FILE]
#   --binary PATH  package this binary instead of building one (`cargo build --release --locked`)
#   --out ZIP      where the zip goes (default target/linkguard-functions.zip)
#   --policy FILE  also ship FILE as linkguard.toml beside the binary (LINKGUARD_POLICY's default);
#                  without it, set LINKGUARD_POLICY in the app settings
# The binary must be built for the Functions host (Linux x86_64); the zip keeps its exec bit.
set -euo pipefail

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "error: $*" >&2; exit 2; }

binary="" out="" policy=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --binary) [[ $# -ge 2 ]] || die "--binary needs a path"; binary="$2"; shift 2 ;;
    --out) [[ $# -ge 2 ]] || die "--out needs a path"; out="$2"; shift 2 ;;
    --policy) [[ $# -ge 2 ]] || die "--policy needs a file"; policy="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done

# Resolve user paths before moving to the repository root.
abs() { [[ "$1" = /* ]] && printf '%s\n' "$1" || printf '%s\n' "$PWD/$1"; }
[[ -n "$binary" ]] && binary="$(abs "$binary")"
[[ -n "$out" ]] && out="$(abs "$out")"
[[ -n "$policy" ]] && policy="$(abs "$policy")"
cd "$(dirname "$0")/.."
root="$PWD"
out="${out:-$root/target/linkguard-functions.zip}"

command -v python3 >/dev/null || die "python3 is needed to write the zip (python3 -m zipfile)"
[[ -f host.json ]] || die "host.json is missing at $root"
exe="$(python3 -c 'import json,sys; print(json.load(open("host.json"))["customHandler"]["description"]["defaultExecutablePath"])')" \
  || die "host.json has no customHandler.description.defaultExecutablePath"
[[ "$exe" != */* ]] || die "host.json defaultExecutablePath \`$exe\` must be a file name at the app root"

shopt -s nullglob
functions=(function/*/)
[[ ${#functions[@]} -gt 0 ]] || die "no function folders under function/"
for dir in "${functions[@]}"; do
  [[ -f "$dir/function.json" ]] || die "$dir has no function.json"
done

if [[ -z "$binary" ]]; then
  cargo build --release --locked
  binary="$root/target/release/linkguard"
fi
[[ -f "$binary" && -x "$binary" ]] || die "$binary is not an executable file"
if [[ -n "$policy" ]]; then
  [[ -f "$policy" ]] || die "policy file $policy does not exist"
fi

staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
cp host.json "$staging/"
for dir in "${functions[@]}"; do
  name="$(basename "$dir")"
  mkdir "$staging/$name"
  cp "$dir/function.json" "$staging/$name/"
done
cp "$binary" "$staging/$exe"
chmod 0755 "$staging/$exe"
[[ -n "$policy" ]] && cp "$policy" "$staging/linkguard.toml"

mkdir -p "$(dirname "$out")"
rm -f "$out"
# python3 -m zipfile stores each file's mode, so the binary stays executable once unpacked.
(cd "$staging" && python3 -m zipfile -c "$out" ./*)
echo "wrote $out ($(du -h "$out" | cut -f1)): host.json, $exe, ${#functions[@]} functions${policy:+, linkguard.toml}"
