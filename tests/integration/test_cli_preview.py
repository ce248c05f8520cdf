"""`python -m shared preview`: every body shape /api/halopsa takes, previewed without a call, and
the preview's payload is exactly what the relay then sends to (the loopback) SIGNL4."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from shared.__main__ import main
from shared.entry.halo_webhook import handle_halo_request
from shared.entry.responses import MAX_BODY_BYTES
from shared.ops.preview import parse_query, preview_body
from shared.settings import RelaySettings
from tests.conftest import FIXTURES, TEAM_SECRET, Signl4Fake, answer, fixture_bytes

REPO_ROOT = Path(__file__).resolve().parents[2]
SINGLE_SHAPES = [
    ("webhook_new_small.json", "HaloPSA-4242", "new"),
    ("webhook_new_full.json", "HaloPSA-4243", "new"),
    ("webhook_status_changed.json", None, None),
    ("webhook_closed_event_only.json", None, "resolved"),
    ("guide_new.json", "HaloPSA-4242", "new"),
    ("guide_close.json", "HaloPSA-4242", "resolved"),
    ("ticket_bare.json", None, None),
    ("ticket_wrapped.json", "HaloPSA-4245", "resolved"),
    ("guide_empty_values.txt", None, "new"),
]
GUIDE_QUERY = "ExtIDParam=X-S4-ExternalID&ExtStatusParam=Status&ResolvedStatus=Closed"


def run(argv: list[str], env: dict[str, str], stdin: bytes = b"") -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, environ=env, stdin=io.TextIOWrapper(io.BytesIO(stdin)), stdout=out)
    return code, out.getvalue()


def relay_sends(functions: dict, body: bytes, query: dict[str, str]) -> tuple[int, Any]:
    request = func.HttpRequest(
        method="POST", url="http://localhost/api/halopsa", body=body, headers={}, params=query
    )
    return answer(functions["halopsa"](request, queued=None))


@pytest.mark.parametrize(("fixture", "external_id", "decision"), SINGLE_SHAPES)
def test_preview_shows_what_the_relay_then_sends(
    fixture: str,
    external_id: str | None,
    decision: str | None,
    live_env: dict[str, str],
    signl4: Signl4Fake,
    functions: dict,
) -> None:
    body = fixture_bytes(fixture)
    code, text = run(["preview", "--json", str(FIXTURES / fixture)], dict(live_env))
    assert code == 0
    assert signl4.events == []  # no network call
    [event] = json.loads(text)["events"]
    if external_id:
        assert event["external_id"] == external_id
    if decision:
        assert event["decision"] == decision
    assert event["reason"]
    status, sent = relay_sends(functions, body, {})
    if event["decision"] == "skip":
        assert (status, sent["result"]) == (200, "skipped")
        assert sent["reason"] == event["reason"]
        assert signl4.events == []
    else:
        assert (status, sent["result"]) == (200, "sent")
        assert signl4.events == [event["payload"]]
    assert TEAM_SECRET not in text


def test_preview_takes_a_batch_from_stdin_and_answers_per_element(live_env: dict) -> None:
    code, text = run(
        ["preview", "--json", "-"], dict(live_env), fixture_bytes("webhook_batch.json")
    )
    assert code == 0
    report = json.loads(text)
    assert [e["index"] for e in report["events"]] == [0, 1, 2]
    assert [e["decision"] for e in report["events"]] == ["new", "skip", "resolved"]


def test_preview_applies_signl4_query_parameters(live_env: dict, signl4: Signl4Fake) -> None:
    guide = json.loads(fixture_bytes("guide_new.json"))
    guide.pop("X-S4-Status", None)
    guide["Status"] = "Closed"
    path_body = json.dumps(guide).encode()
    without = preview_body(path_body, RelaySettings.from_env({"RELAY_RESOLVED_STATUSES": "x"}))
    with_query = preview_body(
        path_body,
        RelaySettings.from_env({"RELAY_RESOLVED_STATUSES": "x"}),
        parse_query("?" + GUIDE_QUERY + "&Unknown=1"),
    )
    assert without.events[0].decision == "new"
    assert with_query.events[0].decision == "resolved"
    assert with_query.ignored_query == ("Unknown",)
    code, text = run(["preview", "--query", GUIDE_QUERY, "-"], dict(live_env), path_body)
    assert code == 0 and "Decision: resolved" in text and "ResolvedStatus" not in text


def test_preview_reports_errors_as_the_relay_answers_them(live_env: dict) -> None:
    code, text = run(["preview", "-"], dict(live_env), b"{oops")
    assert code == 0 and "Refused whole: invalid_json" in text
    code, text = run(["preview", "-"], dict(live_env), b'[{"ticket": 1}]')
    assert code == 0 and "unsupported_payload" in text
    big = json.dumps([json.loads(fixture_bytes("webhook_new_small.json"))] * 3).encode()
    code, text = run(["preview", "-"], {**live_env, "RELAY_MAX_BATCH": "2"}, big)
    assert code == 0 and "batch_too_large" in text
    # One limit for both: the largest body the relay reads is the largest the preview reads.
    settings = RelaySettings.from_env(dict(live_env))
    for size, refused in ((MAX_BODY_BYTES, False), (MAX_BODY_BYTES + 1, True)):
        body = b" " * size
        answered = handle_halo_request(body, {}, dict(live_env)).body["error"]
        previewed = preview_body(body, settings).error
        assert (answered == "payload_too_large") is refused and previewed == answered


def test_preview_shows_the_target_without_the_secret_and_says_dry_run(live_env: dict) -> None:
    code, text = run(["preview", str(FIXTURES / "guide_new.json")], dict(live_env))
    assert "SIGNL4 webhook" in text and "***" in text and TEAM_SECRET not in text
    assert "SIGNL4 payload:" in text and '"X-S4-ExternalID": "HaloPSA-4242"' in text
    code, text = run(["preview", str(FIXTURES / "guide_new.json")], {})
    assert code == 0 and "dry-run" in text


def test_preview_of_an_emergency_priority_names_the_scenario(live_env: dict) -> None:
    env = {**live_env, "RELAY_EMERGENCY_PRIORITIES": "P1 - Critical"}
    code, text = run(["preview", str(FIXTURES / "webhook_new_full.json")], env)
    assert code == 0 and "Scenario: emergency" in text
    assert '"X-S4-AlertingScenario": "emergency"' in text


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    code, _ = run(["preview", str(tmp_path / "nope.json")], {})
    assert code == 2


def test_python_m_shared_help_lists_the_verbs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shared", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    for verb in ("preview", "check", "send-test", "halo-setup", "heartbeat"):
        assert verb in result.stdout


# --- --previous: the escalation decision for an update body (issue 22 item 5) ---

ESCALATED = "Escalated: priority 4 \u2192 1"


def preview_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m shared preview ...` as the operator runs it: a process of its own, in a folder
    without local.settings.json, the settings in its environment (one team secret, P1 pages)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO_ROOT),
        "SIGNL4_TEAM_SECRET": TEAM_SECRET,
        "RELAY_PAGE_PRIORITIES": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "shared", "preview", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def ticket_files(tmp_path: Path, **bodies: dict[str, Any]) -> dict[str, str]:
    """Each body written to <name>.json in tmp_path; the paths by name."""
    paths = {}
    for name, body in bodies.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(body), encoding="utf-8")
        paths[name] = str(tmp_path / f"{name}.json")
    return paths


@pytest.fixture
def tickets(tmp_path: Path) -> dict[str, str]:
    """Ticket 555 logged at priority 4 (held back by RELAY_PAGE_PRIORITIES=1), raised to 1, or
    updated at 4 again."""
    ticket = {"id": 555, "summary": "Disk full", "status_id": 1, "team": "Servers"}
    return ticket_files(
        tmp_path,
        logged={
            "event": "new ticket logged",
            "object_id": 555,
            "ticket": {**ticket, "priority_id": 4},
        },
        raised={
            "event": "ticket updated",
            "object_id": 555,
            "ticket": {**ticket, "priority_id": 1},
        },
        same={"event": "ticket updated", "object_id": 555, "ticket": {**ticket, "priority_id": 4}},
    )


def test_preview_previous_shows_the_escalation_of_a_ticket_raised_to_1(
    tmp_path: Path, tickets: dict[str, str]
) -> None:
    done = preview_cli(tmp_path, tickets["raised"], "--previous", tickets["logged"])
    assert (done.returncode, done.stderr) == (0, "")
    assert "Previous: priority 4, team Servers, not paged (filtered)" in done.stdout
    assert "  Decision: new\n" in done.stdout
    assert f"  Escalation: {ESCALATED}\n" in done.stdout
    assert "--previous" in done.stdout.split("Note: ")[1]  # the note says what was assumed
    assert TEAM_SECRET not in done.stdout
    done = preview_cli(tmp_path, "--json", tickets["raised"], "--previous", tickets["logged"])
    report = json.loads(done.stdout)
    [event] = report["events"]
    assert (event["decision"], event["escalation"]) == ("new", ESCALATED)
    assert event["payload"]["Escalation"] == ESCALATED
    assert report["previous"]["triage"]["priority"] == "4"


def test_preview_previous_at_the_same_priority_is_a_skip_without_escalation(
    tmp_path: Path, tickets: dict[str, str]
) -> None:
    done = preview_cli(tmp_path, "--json", tickets["same"], "--previous", tickets["logged"])
    [event] = json.loads(done.stdout)["events"]
    assert done.returncode == 0
    assert event["decision"] == "skip" and "escalation" not in event


def test_preview_previous_with_the_alert_closed_in_signl4_pages_nothing(
    tmp_path: Path, tickets: dict[str, str]
) -> None:
    args = (tickets["raised"], "--previous", tickets["logged"], "--alert", "closed-in-signl4")
    done = preview_cli(tmp_path, *args)
    assert done.returncode == 0
    assert "  Decision: skip\n" in done.stdout and "Escalation:" not in done.stdout
    assert "Previous: alert closed in SIGNL4" in done.stdout
    assert "SIGNL4 payload:" not in done.stdout


def test_preview_without_previous_judges_the_update_as_never_seen(
    tmp_path: Path, tickets: dict[str, str]
) -> None:
    done = preview_cli(tmp_path, tickets["raised"])
    assert done.returncode == 0
    assert "  Decision: skip\n" in done.stdout
    assert "changes nothing SIGNL4 tracks" in done.stdout
    assert "Escalation:" not in done.stdout and "Previous:" not in done.stdout
    # The note says what that leaves out: a ticket held back before, and how to see it.
    assert "escalates (give its previous body with --previous" in done.stdout


def test_a_bad_previous_file_is_a_usage_error_without_a_traceback(
    tmp_path: Path, tickets: dict[str, str]
) -> None:
    (tmp_path / "bad.json").write_text("{oops", encoding="utf-8")
    cases = {
        str(tmp_path / "bad.json"): "the relay would refuse it (invalid_json)",
        str(tmp_path / "none.json"): "cannot read --previous",
        "-": "--previous takes a file",
    }
    for previous, message in cases.items():
        done = preview_cli(tmp_path, tickets["raised"], "--previous", previous)
        assert (done.returncode, done.stdout) == (2, ""), previous
        assert message in done.stderr and "Traceback" not in done.stderr
    done = preview_cli(tmp_path, tickets["raised"], "--alert", "open")
    assert done.returncode == 2 and "--alert needs --previous" in done.stderr
