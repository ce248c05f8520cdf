#!/usr/bin/env bash
# Offline security/config check of infra/**/*.bicep (main.bicep and its modules) with checkov
# (no Azure, no Bicep CLI).
#
# checkov exits 0 when it cannot parse a Bicep file and silently skips what it cannot see,
# so this script gates on its JSON instead of its exit code:
#   - parsing_errors == 0
#   - every `resource` declared in infra/**/*.bicep is one checkov's parser produced (so none
#     escapes the checks; summary.resource_count is no measure of that: it counts only
#     entities with at least one applicable check, parameters included); an `existing`
#     reference (`resource x '<type>' existing = ...`) deploys nothing and is not counted
#   - failed == 0   (suppressions live inline: `// checkov:skip=CKV_AZURE_XX: reason`)
#
# Env: INFRA_VENV  virtualenv for checkov (default: <repo>/.venv-infra; created if missing)
#      PYTHON      interpreter used to create it (default: python3)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

venv="${INFRA_VENV:-$repo_root/.venv-infra}"
python="${PYTHON:-python3}"

if [[ ! -x "$venv/bin/python" ]]; then
  echo "checkov.sh: creating $venv" >&2
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt

shopt -s nullglob globstar
bicep_files=(infra/**/*.bicep)
if [[ ${#bicep_files[@]} -eq 0 ]]; then
  echo "checkov.sh: FAIL: no infra/**/*.bicep files" >&2
  exit 1
fi

report="$(mktemp)"
trap 'rm -f "$report"' EXIT

# checkov's exit code is 1 on failed checks but 0 on parse errors; the gate below decides.
"$venv/bin/checkov" -d infra --framework bicep --skip-download -o json >"$report" 2>/dev/null || true

"$venv/bin/python" - "$report" "${bicep_files[@]}" <<'PY'
import json
import re
import sys
from pathlib import Path

from checkov.bicep.parser import Parser

report_path, *bicep_files = sys.argv[1:]
problems = []

try:
    data = json.loads(Path(report_path).read_text() or "null")
except json.JSONDecodeError as exc:
    print(f"checkov.sh: FAIL: checkov did not produce JSON ({exc})", file=sys.stderr)
    sys.exit(1)
if isinstance(data, list):  # one report per framework; only bicep was asked for
    data = next((r for r in data if r.get("check_type") == "bicep"), None)
if not data or "summary" not in data:
    print("checkov.sh: FAIL: no bicep report in checkov output (nothing scanned?)", file=sys.stderr)
    sys.exit(1)

summary = data["summary"]
results = data.get("results", {})

if summary.get("parsing_errors", 0) != 0:
    problems.append(f"parsing errors in {results.get('parsing_errors')}")

# Declared resources: every `resource <name> '<type>@<api>' =` line (top level or nested); an
# `existing` reference (`'<type>@<api>' existing =`, how a module names another module's
# resource) deploys nothing.
declared = {}
for file in bicep_files:
    for line in Path(file).read_text().splitlines():
        match = re.match(r"\s*resource\s+(\w+)\s+'[^']*'\s*=", line)
        if match:
            declared[f"{file}:{match.group(1)}"] = line.strip()
# Resources checkov's Bicep parser produced (what its checks run over); pycep names a child
# declared inside its parent's body `parent__child`.
parsed = set()
for file in bicep_files:
    template, _ = Parser().parse(Path(file))
    if template is None:
        problems.append(f"{file}: checkov's parser rejects it")
        continue
    parsed.update(
        f"{file}:{name.split('__')[-1]}"
        for name, resource in (template.get("resources") or {}).items()
        if not resource.get("existing")
    )
unseen = sorted(set(declared) - parsed)
if unseen:
    problems.append("resources checkov does not see: " + ", ".join(unseen))
if summary.get("resource_count", 0) <= 0:
    problems.append("checkov scanned no resources")

failed = results.get("failed_checks", [])
for check in failed:
    problems.append(f"{check['check_id']} failed on {check['resource']}: {check['check_name']}")

# Every suppression must say why.
for check in results.get("skipped_checks", []):
    reason = (check.get("check_result") or {}).get("suppress_comment", "").strip()
    if not reason or reason.lower() == "no comment provided":
        problems.append(f"{check['check_id']} skipped on {check['resource']} without a reason")

print(
    "checkov: passed={passed} failed={failed} skipped={skipped} parsing_errors={parsing_errors}"
    " resources declared={declared} parsed={parsed} (checkov resource_count={resource_count})".format(
        declared=len(declared), parsed=len(parsed), **summary
    )
)
if problems:
    print("checkov.sh: FAIL", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    sys.exit(1)
PY
