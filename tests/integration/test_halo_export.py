"""SIGNL4's own HaloPSA export (custom integration + runbook, tests/fixtures/halo-export/),
end to end through the relay after the one-URL change: the method's request body rendered as
Halo renders it, for both runbook events, posted to the path the method builds, with the ledger
on Azurite and SIGNL4 played by the loopback fake. Host-less, and once through
`python -m devhost serve` over HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func
import pytest
import requests

from devhost.functions import OutValue
from tests.conftest import FIXTURES, Signl4Fake, answer, new_ticket_id
from tests.integration.conftest import Served, start_serve, stop_serve

EXPORT = FIXTURES / "halo-export"
# A cap on each request to the served relay (ledger calls on Azurite and a SIGNL4 send): a hang
# guard, never reached when it works, so a loaded machine cannot turn a slow answer into a failure.
HANG_GUARD_SECONDS = 60
TOKEN = "inb-7QmX2s9KpL4v-token"
SIGNL4_BASE = "https://connect.signl4.com/webhook/"
TEAM_SECRET_PLACEHOLDER = "signl4-team-secret"
_PLACEHOLDER = re.compile(r"<<([^<>]+)>>")


def _export(kind: str) -> dict[str, Any]:
    [path] = EXPORT.glob(f"halo-{kind}-signl4-*.json")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def integration() -> dict[str, Any]:
    return _export("customintergration")  # sic: Halo's own file name


@pytest.fixture(scope="module")
def runbook() -> dict[str, Any]:
    return _export("integrationrunbook")


def render(template: str, ticket: dict[str, Any]) -> str:
    """Halo's rendering of a method body: a bare placeholder becomes a JSON literal (string
    quoted and escaped, number bare, missing value null); one inside a string literal is
    inserted as escaped text."""
    out: list[str] = []
    in_string = False
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        text = template[position : match.start()]
        in_string ^= text.count('"') % 2 == 1  # the template's own strings have no \" in them
        found = ticket.get(match.group(1).removeprefix("ticket^"))
        if in_string:
            literal = "" if found is None else json.dumps(str(found), ensure_ascii=False)[1:-1]
        else:
            literal = json.dumps(found, ensure_ascii=False)
        out += [text, literal]
        position = match.end()
    return "".join([*out, template[position:]])


def halo_ticket(ticket_id: int, status: str) -> dict[str, Any]:
    """The placeholders of the export's body, as a tenant fills them for one ticket."""
    return {
        "id": ticket_id,
        "summary": 'Mail server "EX01" down',
        "details": "<p>Users cannot send mail.</p><p>Since 06:40 &amp; counting<br/>CEO affected</p>",
        "dateoccurred": "2026-11-29T06:40:00Z",
        "dateclosed": None if status != "Closed" else "2026-11-29T07:15:00Z",
        "tickettype^name": "Incident",
        "priority^name": "P1 - Critical",
        "client_name": "Contoso",
        "site_name": "HQ",
        "team": "1st Line Support",
        "agent^name": None,
        "organisation_id": 12,
        "oppcompanyname": "",
        "status^shortname": status,
    }


def method_url(integration: dict[str, Any], relay_base: str) -> str:
    """The URL Halo builds after the migration: base URL replaced, token for the team secret."""
    [method] = integration["methods"]
    assert integration["resourcebaseurl"] == SIGNL4_BASE == method["resource"]
    assert method["path"].startswith(TEAM_SECRET_PLACEHOLDER + "?")
    return relay_base + method["path"].replace(TEAM_SECRET_PLACEHOLDER, TOKEN, 1)


def runbook_events(runbook: dict[str, Any]) -> dict[str, str]:
    """Runbook event name -> the status shortname Halo's ticket has when it fires."""
    names = {event["name"] for event in runbook["events"]}
    assert names == {"New Ticket Logged", "Closed"}
    return {"New Ticket Logged": "New", "Closed": "Closed"}


def host_request(url: str, body: str) -> func.HttpRequest:
    """What the Functions host hands `webhook` for this URL (route template webhook/{token?})."""
    parts = urlsplit(url)
    match = re.fullmatch(r"/api/webhook/([^/]+)", parts.path)
    assert match, parts.path
    return func.HttpRequest(
        method="POST",
        url=url,
        headers={"Content-Type": "application/json"},
        params=dict(parse_qsl(parts.query, keep_blank_values=True)),
        route_params={"token": match.group(1)},
        body=body.encode("utf-8"),
    )


@pytest.fixture
def export_env(
    storage_env: str, live_env: dict, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    monkeypatch.setenv("RELAY_INBOUND_TOKEN", TOKEN)
    monkeypatch.delenv("HALO_BASE_URL")  # the migrated setup has none: the body's Link stays
    yield {**live_env, "RELAY_INBOUND_TOKEN": TOKEN}


def check_signl4_got_new_then_resolved(events: list[dict[str, Any]], ticket_id: int) -> None:
    assert [e["X-S4-Status"] for e in events] == ["new", "resolved"]
    assert {e["X-S4-ExternalID"] for e in events} == {f"HaloPSA-{ticket_id}"}
    for event in events:
        assert event["Link"] == f"https://signl4.halopsa.com/ticket?id={ticket_id}"
        assert event["Title"] == 'Mail server "EX01" down'
        assert event["Message"] == "Users cannot send mail.\n\nSince 06:40 & counting\nCEO affected"
        assert event["X-S4-SourceSystem"] == "HaloPSA"
    assert events[0]["Status"] == "New" and events[1]["Status"] == "Closed"
    assert events[0]["Client"] == "Contoso" and events[0]["Priority"] == "P1 - Critical"


@pytest.mark.parametrize("resolved_setting", [None, "Resolved"])
def test_the_official_export_opens_and_closes_through_the_relay(
    functions: dict[str, Callable[..., Any]],
    signl4: Signl4Fake,
    export_env: dict,
    integration: dict,
    runbook: dict,
    monkeypatch: pytest.MonkeyPatch,
    resolved_setting: str | None,
) -> None:
    """With RELAY_RESOLVED_STATUSES not naming Closed, only the method's ResolvedStatus=Closed
    can close the alert: the query string is honoured, not a coincidence of defaults."""
    if resolved_setting:
        monkeypatch.setenv("RELAY_RESOLVED_STATUSES", resolved_setting)
    ticket_id = new_ticket_id()
    [method] = integration["methods"]
    url = method_url(integration, "http://localhost:7071/api/webhook/")
    answers = []
    for event_name, status in runbook_events(runbook).items():
        body = render(method["requestbody"], halo_ticket(ticket_id, status))
        assert "<<" not in body and json.loads(body)["Status"] == status, event_name
        # Each step twice: Halo's "retry from start" must not page twice.
        for _ in range(2):
            queued = OutValue()
            response = functions["webhook"](host_request(url, body), queued=queued)
            answers.append(answer(response))
            assert queued.get() is None  # delivered inline, nothing parked
    assert [(code, a["result"], a["status"]) for code, a in answers] == [
        (200, "sent", "new"),
        (200, "duplicate", "new"),
        (200, "sent", "resolved"),
        (200, "duplicate", "resolved"),
    ]
    check_signl4_got_new_then_resolved(signl4.events, ticket_id)


def test_the_official_export_through_the_local_host_over_http(
    signl4: Signl4Fake, storage_env: str, integration: dict, runbook: dict, tmp_path: Path
) -> None:
    """As a user runs it: `python -m devhost serve`, real HTTP, the host's own routing of
    webhook/{token?}; its access log must not show the token."""
    settings = {
        "IsEncrypted": False,
        "Values": {
            "SIGNL4_TEAM_SECRET": "s3cr3t-TEAM-4f9a1c",
            "SIGNL4_WEBHOOK_URL": signl4.base_url,
            "SIGNL4_BACKOFF_SECONDS": "0.01",
            "RELAY_INBOUND_TOKEN": TOKEN,
        },
    }
    (tmp_path / "local.settings.json").write_text(json.dumps(settings))
    served: Served = start_serve(tmp_path, {"AzureWebJobsStorage": storage_env})
    ticket_id = new_ticket_id()
    [method] = integration["methods"]
    try:
        url = method_url(integration, served.base_url + "/api/webhook/")
        results = []
        for status in runbook_events(runbook).values():
            body = render(method["requestbody"], halo_ticket(ticket_id, status))
            response = requests.post(
                url,
                data=body.encode(),
                headers={"Content-Type": "application/json"},
                timeout=HANG_GUARD_SECONDS,
            )
            results.append((response.status_code, response.json()["status"]))
        wrong = requests.post(url.replace(TOKEN, "nope"), data=b"{}", timeout=HANG_GUARD_SECONDS)
        health = requests.get(served.base_url + "/api/health", timeout=HANG_GUARD_SECONDS).json()
    finally:
        output = stop_serve(served)
    assert results == [(200, "new"), (200, "resolved")]
    assert (wrong.status_code, wrong.json()["error"]) == (404, "not_found")
    assert health["webhookRoute"] == "on"
    check_signl4_got_new_then_resolved(signl4.events, ticket_id)
    assert "webhook: POST" in output  # the route is listed at start-up
    assert "/api/webhook/***?ExtIDParam=X-S4-ExternalID" in output  # the access log, masked
    assert TOKEN not in output and "nope" not in output
