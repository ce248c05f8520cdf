"""`python -m shared check`: every setting judged, a bad one named without its value, and with
--live the ledger table read over Azurite (or found unreachable)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.__main__ import main
from shared.ops.check import (
    LIVE_CHECKS,
    check_halo_outcome,
    check_halo_token,
    check_halo_webhooks,
    check_settings,
    check_storage,
)
from shared.settings import RelaySettings
from tests.conftest import TEAM_SECRET

REPO_ROOT = Path(__file__).resolve().parents[2]
BAD_URL = "http://attacker.example/webhook/" + TEAM_SECRET


def run(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    out = io.StringIO()
    return main(argv, environ=env, stdout=out), out.getvalue()


def test_a_good_configuration_passes_and_every_setting_is_listed(live_env: dict) -> None:
    code, text = run(["check"], dict(live_env))
    assert code == 0
    for name in RelaySettings.setting_names():
        assert name in text
    assert "configuration ok" in text and "live: events are sent" in text
    assert TEAM_SECRET not in text


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SIGNL4_WEBHOOK_URL", BAD_URL),
        ("SIGNL4_TIMEOUT_SECONDS", "soon-" + TEAM_SECRET),
        ("RELAY_MAX_BATCH", "151"),
        ("RELAY_TEST_RESOLVE_SECONDS", "-1"),
        ("RELAY_HEARTBEAT_SCHEDULE", "00:05:00"),
        ("SIGNL4_HEARTBEAT_URL", "http://connect.signl4.com/apps/" + TEAM_SECRET),
        ("SIGNL4_TEAM_SECRET", "@Microsoft.KeyVault(SecretUri=https://kv/secrets/x/)"),
    ],
)
def test_a_bad_setting_fails_by_name_never_by_value(live_env: dict, name: str, value: str) -> None:
    code, text = run(["check"], {**live_env, name: value})
    assert code == 1
    [line] = [line for line in text.splitlines() if line.startswith("error")]
    assert name in line
    assert value not in text and TEAM_SECRET not in text


def test_every_bad_setting_is_reported_at_once(live_env: dict) -> None:
    findings = check_settings({**live_env, "RELAY_MAX_BATCH": "0", "SIGNL4_MAX_ATTEMPTS": "x"})
    assert {f.subject for f in findings if f.level == "error"} == {
        "RELAY_MAX_BATCH",
        "SIGNL4_MAX_ATTEMPTS",
    }


def test_half_a_basic_auth_credential_is_an_error(live_env: dict) -> None:
    code, text = run(["check"], {**live_env, "HALO_WEBHOOK_USERNAME": "halo"})
    assert code == 1
    assert "HALO_WEBHOOK_USERNAME and HALO_WEBHOOK_PASSWORD must be set together" in text


def test_live_reads_the_ledger_on_azurite(live_env: dict, storage_env: str) -> None:
    code, text = run(["check", "--live"], {**live_env, "AzureWebJobsStorage": storage_env})
    assert code == 0, text
    assert "the ledger table answered a read" in text
    assert "Eby8" not in text  # the account key of the connection string


def test_live_fails_on_storage_nobody_listens_on(live_env: dict, unused_port: int) -> None:
    connection = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"TableEndpoint=http://127.0.0.1:{unused_port}/devstoreaccount1;"
    )
    code, text = run(["check", "--live"], {**live_env, "AzureWebJobsStorage": connection})
    assert code == 1
    [line] = [line for line in text.splitlines() if line.startswith("error")]
    assert "storage" in line and str(unused_port) not in line


def test_the_live_checks_are_an_extension_point_that_sends_nothing(signl4, live_env) -> None:
    # Issue 23 added Halo's webhooks (GET /api/Webhook, a read) after the outcome check.
    assert [check_storage, check_halo_token, check_halo_outcome, check_halo_webhooks] == LIVE_CHECKS
    run(["check", "--live"], dict(live_env))
    assert signl4.events == []


def test_check_reads_local_settings_json_and_the_environment_wins(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text(
        json.dumps({"Values": {"RELAY_MAX_BATCH": "0", "RELAY_DRY_RUN": "true"}})
    )
    env = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"}
    bad = subprocess.run(
        [sys.executable, "-m", "shared", "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "RELAY_MAX_BATCH" in bad.stdout
    good = subprocess.run(
        [sys.executable, "-m", "shared", "check"],
        cwd=tmp_path,
        env={**env, "RELAY_MAX_BATCH": "5"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert good.returncode == 0, good.stdout
