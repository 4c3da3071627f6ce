#!/usr/bin/env bash
# Static checks of the infrastructure code (infra/): checkov over the Bicep and the SAM template,
# cfn-lint over the SAM template. Both tools come from .venv-infra, pinned in requirements/infra.txt.
#
# Fails (non-zero) on any cfn-lint finding, any failed checkov check, any checkov parsing error, a
# checkov skip without a written reason, or a framework that scanned nothing (a scanner that parsed
# no file "passes" silently, so zero passed checks is a failure here).
#
# Runs offline: no Prisma/Bridgecrew API key, no policy download, no version check, no SCA.
# There is no Bicep compiler here (az bicep / the bicep CLI download their binary from GitHub), so the
# Bicep is checked by checkov's own parser only; see infra/README.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv-infra"
requirements="$root/requirements/infra.txt"

if [[ ! -x "$venv/bin/checkov" || ! -x "$venv/bin/cfn-lint" ]]; then
  echo "check-infra: creating $venv from $requirements" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
fi

# The venv must hold exactly the pinned versions (a stale venv would check with other rules).
"$venv/bin/python" - "$requirements" <<'EOF'
import importlib.metadata as md, re, sys
bad = []
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    m = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line)
    if not m:
        continue
    name, want = m.groups()
    try:
        have = md.version(name)
    except md.PackageNotFoundError:
        have = None
    if have != want:
        bad.append(f"{name}: pinned {want}, installed {have}")
if bad:
    sys.exit("check-infra: .venv-infra does not match requirements/infra.txt (" + "; ".join(bad)
             + "); fix: rm -rf .venv-infra and rerun")
EOF

status=0

echo "== cfn-lint infra/aws/template.yaml"
if "$venv/bin/cfn-lint" --format parseable infra/aws/template.yaml; then
  echo "cfn-lint: no findings"
else
  echo "cfn-lint: findings above (exit $?)" >&2
  status=1
fi

echo "== checkov (bicep, cloudformation) over infra/"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
export BC_SKIP_MAPPING=TRUE                 # no Bridgecrew/Prisma id mapping download
export CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false # no package (SCA) scan
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true    # no PyPI version check
export CKV_PARSE_ERROR_FAIL=true             # a file checkov cannot parse fails the run
unset BC_API_KEY PRISMA_API_URL || true
set +e
# No --quiet: it drops passed and skipped checks from the JSON, which the summary below needs.
"$venv/bin/checkov" --directory infra --framework bicep cloudformation \
  --compact --skip-download --output json > "$out/checkov.json" 2> "$out/checkov.err"
checkov_rc=$?
set -e

if "$venv/bin/python" - "$out/checkov.json" "$out/checkov.err" "$checkov_rc" <<'EOF'
import json, sys
path, err_path, rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    data = json.load(open(path))
except ValueError:
    sys.stderr.write(open(err_path).read())
    sys.exit(f"checkov: no JSON report (exit {rc})")
reports = data if isinstance(data, list) else [data]
by_type = {r.get("check_type"): r for r in reports}
problems = []
for framework in ("bicep", "cloudformation"):
    r = by_type.get(framework)
    if r is None:
        problems.append(f"{framework}: no report (nothing scanned)")
        continue
    s, res = r["summary"], r["results"]
    print(f"{framework}: passed {s['passed']}, failed {s['failed']}, skipped {s['skipped']}, "
          f"parsing errors {s['parsing_errors']}, resources {s['resource_count']}")
    for c in res.get("failed_checks", []):
        lines = c.get("file_line_range") or ["?", "?"]
        problems.append(f"{framework}: FAILED {c['check_id']} {c['check_name']} - {c['resource']} "
                        f"({c['file_path']}:{lines[0]}-{lines[1]})")
    for c in res.get("skipped_checks", []):
        reason = (c.get("check_result") or {}).get("suppress_comment", "")
        print(f"  skipped {c['check_id']} {c['resource']}: {reason}")
        if not reason or reason == "No comment provided" or len(reason.strip()) < 20:
            problems.append(f"{framework}: skip of {c['check_id']} on {c['resource']} has no written reason")
    for f in res.get("parsing_errors", []):
        problems.append(f"{framework}: could not parse {f}")
    if s["parsing_errors"]:
        problems.append(f"{framework}: {s['parsing_errors']} parsing error(s)")
    if s["passed"] == 0 or s["resource_count"] == 0:
        problems.append(f"{framework}: scanned nothing (passed {s['passed']}, resources {s['resource_count']})")
if rc != 0 and not problems:
    problems.append(f"checkov exited {rc}")
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
then
  echo "checkov: no failed checks"
else
  status=1
fi

if [[ $status -ne 0 ]]; then
  echo "check-infra: FAILED" >&2
else
  echo "check-infra: OK"
fi
exit "$status"
