#!/usr/bin/env bash
# The test command (README): prepares the real components the tests start themselves (Azurite from
# the pinned npm lockfile, the official Python SDK in a virtualenv), then runs every test.
# Tests that need a component fail loudly when it is missing; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -f package-lock.json ]]; then
  if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules ]]; then
    npm ci --no-audit --no-fund --loglevel=error
    touch node_modules
  fi
fi

# One virtualenv per requirements file: requirements/sdk.txt -> .venv-sdk
for req in requirements/*.txt; do
  [[ -e "$req" ]] || continue
  name="$(basename "$req" .txt)"
  venv=".venv-$name"
  if [[ ! -x "$venv/bin/python" ]] || [[ "$req" -nt "$venv/.installed" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    touch "$venv/.installed"
  fi
done

cargo test --locked --all-targets "$@"
# The certificate credential is an opt-in feature (it links OpenSSL): its tests run with it on.
cargo test --locked --features client-certificate --lib --test lambda_certificate "$@"
