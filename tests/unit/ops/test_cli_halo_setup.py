"""`python -m shared halo-setup`: the text to configure Halo, and import files that round-trip
as JSON in the format of SIGNL4's own export, aimed at the relay, with placeholders for secrets."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from shared.__main__ import main
from shared.ops.halo_setup import QUERY, TOKEN_PLACEHOLDER, SetupError, relay_base
from tests.conftest import FIXTURES

BASE = "https://func-halo-signl4-abc123.azurewebsites.net"


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    return main(argv, environ={}, stdout=out), out.getvalue()


def export(kind: str) -> dict[str, Any]:
    [path] = (FIXTURES / "halo-export").glob(f"halo-{kind}-signl4-*.json")
    return json.loads(path.read_text(encoding="utf-8"))


def written(directory: Path, kind: str) -> dict[str, Any]:
    [path] = directory.glob(f"halo-{kind}-signl4-relay-*.json")
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_text_names_every_url_to_configure() -> None:
    code, text = run(["halo-setup", "--url", BASE + "/"])
    assert code == 0
    assert f"{BASE}/api/halopsa?code=<function key>" in text
    assert "New Ticket Logged, Ticket Status Changed, Closed" in text
    assert "Payload:  full object" in text and "HALO_CLIENT_ID/SECRET" in text
    assert f"Base URL:    {BASE}/api/webhook/" in text
    assert f"{TOKEN_PLACEHOLDER}?{QUERY}" in text
    assert '"X-S4-ExternalID" : "HaloPSA-<<ticket^id>>"' in text
    assert f"{BASE}/api/signl4?code=<function key>" in text
    # A webhook Halo turns off pages nobody: the admin is told to hear of failures, not that.
    assert 'tick "notify on failure"' in text
    assert 'set "auto disable attempts" to 0 (never)' in text


def test_import_files_round_trip_aimed_at_the_relay(tmp_path: Path) -> None:
    code, text = run(["halo-setup", "--url", BASE + "/api", "--import-file", str(tmp_path)])
    assert code == 0 and text.count("wrote ") == 2
    integration, runbook = (
        written(tmp_path, "customintergration"),
        written(tmp_path, "integrationrunbook"),
    )
    original, original_runbook = export("customintergration"), export("integrationrunbook")
    # The same format: the same keys at every level SIGNL4's export has.
    assert set(integration) == set(original)
    assert set(integration["methods"][0]) == set(original["methods"][0])
    assert set(runbook) <= set(original_runbook)
    [method] = integration["methods"]
    assert integration["resourcebaseurl"] == f"{BASE}/api/webhook/"
    assert method["resource"] == method["integration_baseurl"] == f"{BASE}/api/webhook/"
    assert (
        method["path"]
        == f"{TOKEN_PLACEHOLDER}?ExtIDParam=X-S4-ExternalID&ExtStatusParam=Status&ResolvedStatus=Closed"
    )
    assert method["requestbody"] == original["methods"][0]["requestbody"]
    assert method["method"] == original["methods"][0]["method"]  # POST
    # The runbook calls this method on both events, and overwrites nothing of SIGNL4's own.
    assert {e["name"] for e in runbook["events"]} == {"New Ticket Logged", "Closed"}
    [step] = [s for s in runbook["steps"] if s.get("auto_action_type_guid")]
    assert step["auto_action_type_guid"] == method["guid"] != original["methods"][0]["guid"]
    assert {e["webhook_id"] for e in runbook["events"]} != {
        e["webhook_id"] for e in original_runbook["events"]
    }
    assert "signl4-team-secret" not in json.dumps(integration)


def test_the_same_url_gives_the_same_files(tmp_path: Path) -> None:
    run(["halo-setup", "--url", BASE, "--import-file", str(tmp_path / "a")])
    run(["halo-setup", "--url", BASE, "--import-file", str(tmp_path / "b")])
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_given_token_goes_into_the_method_path_only(tmp_path: Path) -> None:
    token = "inb-9f8e7d6c5b4a"
    code, text = run(
        ["halo-setup", "--url", BASE, "--token", token, "--import-file", str(tmp_path)]
    )
    assert code == 0 and f"{token}?ExtIDParam=" in text
    [method] = written(tmp_path, "customintergration")["methods"]
    assert method["path"].startswith(token + "?")
    assert token not in json.dumps(written(tmp_path, "integrationrunbook"))


@pytest.mark.parametrize(
    "url",
    ["http://func.azurewebsites.net", "ftp://x", "func.azurewebsites.net", "https://x/?code=1"],
)
def test_a_url_halo_should_not_call_is_refused(url: str) -> None:
    with pytest.raises(SetupError):
        relay_base(url)
    assert run(["halo-setup", "--url", url])[0] == 2


def test_loopback_http_is_fine_for_a_local_try() -> None:
    assert relay_base("http://127.0.0.1:7071/api/") == "http://127.0.0.1:7071"


def test_the_text_sends_each_route_to_its_own_function_key() -> None:
    """Halo's key must not open /api/signl4: each URL's key comes from its function's own
    command, and no host key (which opens every function) is named."""
    _, text = run(["halo-setup", "--url", BASE])
    assert "HALO_WEBHOOK_URL_COMMAND" in text and "halopsa function's" in text
    assert "SIGNL4_WEBHOOK_URL_COMMAND" in text and "signl4 function's" in text
    assert "functionKeys" not in text and "az functionapp keys" not in text
