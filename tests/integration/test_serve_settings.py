"""Settings that cannot be read, or should not be, as a user meets them: `python -m devhost
serve` starts and says what is wrong; `python -m shared check` and `preview` exit with the
message, never a traceback (real processes; no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import requests

from tests.conftest import TEAM_SECRET, fixture_bytes
from tests.integration.conftest import start_serve, stop_serve

REPO_ROOT = Path(__file__).resolve().parents[2]
DEEP_ROUTES = "[" * 1000 + "]" * 1000
PASSWORD = "Pa55w0rd-in-url"


def write_settings(folder: Path, values: dict[str, str]) -> None:
    (folder / "local.settings.json").write_text(json.dumps({"Values": values}))


def test_serve_starts_and_names_a_setting_nested_1000_deep(tmp_path: Path) -> None:
    write_settings(tmp_path, {"SIGNL4_TEAM_SECRET": TEAM_SECRET, "RELAY_ROUTES": DEEP_ROUTES})
    served = start_serve(tmp_path, {})
    try:
        health = requests.get(served.base_url + "/api/health", timeout=10)
        halo = requests.post(
            served.base_url + "/api/halopsa", data=fixture_bytes("guide_new.json"), timeout=10
        )
    finally:
        output = stop_serve(served)
    assert (health.status_code, health.json()["error"]) == (503, "configuration_error")
    assert (halo.status_code, halo.json()["error"]) == (500, "configuration_error")
    assert (
        "Relay is MISCONFIGURED: invalid setting RELAY_ROUTES: nests arrays and objects more "
        "than 20 levels deep"
    ) in output.splitlines()
    assert "Traceback" not in output and "RecursionError" not in output


def test_serve_warns_once_at_start_up_and_keeps_paging(tmp_path: Path) -> None:
    write_settings(
        tmp_path,
        {
            "HALO_BASE_URL": f"https://relay:{PASSWORD}@contoso.halopsa.com",
            "SIGNL4_TEAM_SECRETS": '{"Network": "first-s3cret", "network": "later-s3cret"}',
        },
    )
    served = start_serve(tmp_path, {})
    try:
        answers = [
            requests.post(
                served.base_url + "/api/halopsa", data=fixture_bytes("guide_new.json"), timeout=10
            ).json()
            for _ in range(2)
        ]
    finally:
        output = stop_serve(served)
    assert [a["result"] for a in answers] == ["dry-run", "dry-run"]
    assert answers[0]["payload"]["Link"] == "https://contoso.halopsa.com/ticket?id=4242"
    lines = output.splitlines()
    warnings = [line for line in lines if line.startswith("WARNING shared.settings: ")]
    assert len(warnings) == 2  # one per setting, once: not per request
    assert "HALO_BASE_URL: the URL holds a user name or password" in warnings[0]
    assert "SIGNL4_TEAM_SECRETS: the names 'Network' and 'network'" in warnings[1]
    # At start-up: before the banner, which comes before any request.
    banner = next(i for i, line in enumerate(lines) if line.startswith("Relay is "))
    assert all(lines.index(line) < banner for line in warnings)
    assert PASSWORD not in output and "s3cret" not in output


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared", *args],
        cwd=cwd,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_and_preview_exit_with_the_message_not_a_traceback(tmp_path: Path) -> None:
    zone = json.dumps(
        [
            {
                "name": "q",
                "quiet": {
                    "zone": "A" * 256,
                    "hours": [{"days": ["sat"], "from": "00:00", "until": "24:00"}],
                },
            }
        ]
    )
    (tmp_path / "body.json").write_bytes(fixture_bytes("guide_new.json"))
    for routes, says in [
        (DEEP_ROUTES, "nests arrays and objects more than 20 levels deep"),
        (zone, "key quiet.zone: must be an IANA time zone name"),
    ]:
        write_settings(tmp_path, {"RELAY_ROUTES": routes})
        check = run_cli(["check"], tmp_path)
        assert check.returncode == 1
        assert says in check.stdout and "Traceback" not in check.stdout + check.stderr
        preview = run_cli(["preview", "body.json"], tmp_path)
        assert preview.returncode == 1
        assert preview.stderr.startswith("error: invalid setting RELAY_ROUTES")
        assert says in preview.stderr and "Traceback" not in preview.stderr
