"""The contract files (testkit/contracts/) and the loopback fakes that enforce them.

Every test that makes the relay write to Halo or SIGNL4 is a contract test: the fakes refuse a
body that breaks its contract with a 400, and their fixtures fail the test at teardown. Here:
the files themselves (sources, fields), each fake refusing wrong bodies and taking every
documented field, and the teardown verdict, run in a pytest of its own (pytester)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator

from testkit import contract
from testkit.halo_fake import CLIENT_ID, CLIENT_SECRET, HaloFake, halo_fixture  # noqa: F401
from tests.conftest import FIXTURES, TEAM_SECRET, Signl4Fake

pytest_plugins = ["pytester"]

EXPECTED = {
    "halo_actions_request",
    "halo_agent_answer",
    "halo_authinfo_answer",
    "halo_outcome_answer",
    "halo_ticket_answer",
    "halo_tickets_request",
    "halo_token_answer",
    "halo_webhook_answer",
    "halo_webhook_event_answer",
    "halo_token_request",
    "signl4_inbound_answer",
    "signl4_inbound_event",
    "signl4_outbound_notification",
}
WEBHOOK = {
    "id": "0b6f2b8e-3c1d-4a57-9e0f-2d7c5a1b9e44",
    "name": "SIGNL4 relay",
    "url": "https://relay.example.net/api/halopsa",
    "active": True,
    "disabled": False,
    "events": [{"id": 1, "name": "New Ticket"}],
    "last_status": 200,
}
REPOSITORY_SOURCE = re.compile(r"[\w.-]+/[\w.-]+.*commit [0-9a-f]{40}, sha256 [0-9a-f]{64}")
PAGE_SOURCE = re.compile(r"read 2026-12-03: https://")


def _schema(name: str) -> dict[str, Any]:
    return json.loads((contract.CONTRACTS / f"{name}.json").read_text(encoding="utf-8"))


def _fields(schema: dict[str, Any]) -> set[str]:
    """Field names a schema defines: at its top, in its array's items, in its $defs."""
    found = set(schema.get("properties", {}))
    for part in (schema.get("items", {}), *schema.get("$defs", {}).values()):
        found |= set(part.get("properties", {})) | set(part.get("items", {}).get("properties", {}))
    return found


# --- the files ---


def test_one_contract_per_body_each_a_2020_12_schema_naming_its_source_and_fields() -> None:
    assert set(contract.names()) == EXPECTED
    for name in EXPECTED:
        schema = _schema(name)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", name
        Draft202012Validator.check_schema(schema)
        source = schema["$comment"]
        assert REPOSITORY_SOURCE.search(source) or PAGE_SOURCE.search(source), name
        missing = {field for field in _fields(schema) if field not in schema["description"]}
        assert missing == set(), (name, missing)


def test_halo_request_bodies_are_closed_so_a_misspelt_field_fails() -> None:
    for name in ("halo_actions_request", "halo_tickets_request", "halo_token_request"):
        schema = _schema(name)
        item = schema.get("items", schema)
        assert item["additionalProperties"] is False, name
        assert item["required"], name
    action = {"ticket_id": 42, "note": "n", "outcome": "Private Note"}
    assert contract.violations("halo_actions_request", [action]) == []
    assert contract.violations("halo_actions_request", [{**action, "ticketid": 42}]) == [
        "$[0]: unknown field(s) ['ticketid']"
    ]


def test_signl4s_outbound_notifications_have_a_contract_too() -> None:
    folder = FIXTURES / "signl4_outbound"
    acknowledged = json.loads((folder / "acknowledged.json").read_text(encoding="utf-8"))
    assert contract.violations("signl4_outbound_notification", acknowledged) == []
    annotated = {**acknowledged, "eventType": 203}
    assert contract.violations("signl4_outbound_notification", annotated) == [
        "$: missing field(s) ['annotation']"
    ]
    annotated["annotation"] = {"message": "Switch rebooted", "id": "annotation-1"}
    assert contract.violations("signl4_outbound_notification", annotated) == []
    # A 202 sample has no user and no escalation object.
    escalated = {"eventType": 202, "eventRaisedUtc": "2026-12-03T10:00:00Z", "id": "n-1"}
    escalated["alert"] = {"id": "a-1", "externalEventId": "HaloPSA-4242"}
    assert contract.violations("signl4_outbound_notification", escalated) == []
    # The PascalCase fixture is the relay's tolerance (tests/unit/domain/test_notification.py), not
    # SIGNL4's documented spelling.
    pascal = json.loads((folder / "annotated.json").read_text(encoding="utf-8"))
    assert "$: missing field(s) ['eventType', 'eventRaisedUtc', 'id']" in contract.violations(
        "signl4_outbound_notification", pascal
    )


def test_the_bench_notification_is_shaped_like_signl4s() -> None:
    import bench.writeback

    body = json.loads(bench.writeback.notification(4242))
    assert contract.violations("signl4_outbound_notification", body) == []


def test_the_benchs_halo_is_the_tests_fake_and_refuses_what_breaks_the_contract() -> None:
    import bench.writeback

    fake = bench.writeback.make_fake(0)
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "scope": "all"}
    try:
        assert isinstance(fake, HaloFake)
        token = requests.post(
            f"{fake.base_url}/auth/token", data={**form, "client_secret": CLIENT_SECRET}, timeout=30
        )
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        action = {"ticket_id": 1, "note": "x", "outcome": "Private Note"}
        url = f"{fake.base_url}/api/Actions"
        taken = requests.post(url, json=[action], headers=headers, timeout=30)
        refused = requests.post(url, json=[{**action, "ticketid": 1}], headers=headers, timeout=30)
    finally:
        assert bench.writeback.refused(fake) == 1
    assert (token.status_code, taken.status_code, refused.status_code) == (200, 201, 400)
    assert fake.watch.violations == ["POST /api/Actions: $[0]: unknown field(s) ['ticketid']"]


# --- the loopback Halo ---


def _token(halo: HaloFake, **form: str) -> requests.Response:
    sent = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scope": "read:tickets edit:tickets",
        **form,
    }
    return requests.post(f"{halo.base_url}/auth/token", data=sent, timeout=30)


def _post(halo: HaloFake, path: str, body: Any) -> requests.Response:
    token = _token(halo).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    return requests.post(f"{halo.base_url}{path}", json=body, headers=headers, timeout=30)


def _post_garbled(halo: HaloFake, path: str) -> requests.Response:
    token = _token(halo).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return requests.post(f"{halo.base_url}{path}", data=b"[{", headers=headers, timeout=30)


def test_the_halo_fake_takes_every_documented_action_field(halo: HaloFake) -> None:
    action = {
        "ticket_id": 4242,
        "note": "Acknowledged in SIGNL4 by Ann <ann@contoso.example>.",
        "note_html": "Acknowledged in SIGNL4 by Ann &lt;ann@contoso.example&gt;.",
        "outcome": "Private Note",
        "outcome_id": 7,
        "hiddenfromuser": True,
        "new_status": 22,
        "new_agent": 7,
        "who_agentid": 7,
    }
    assert _post(halo, "/api/Actions", [action]).status_code == 201
    assert _post(halo, "/api/Tickets", [{"id": 4242, "agent_id": 7, "status_id": 22}]).ok
    assert halo.watch.violations == []


@pytest.mark.parametrize(
    ("path", "body", "violation"),
    [
        (
            "/api/Actions",
            [{"ticketid": 4242, "note": "n", "outcome": "Private Note"}],
            "$[0]: unknown field(s) ['ticketid']",
        ),
        (
            "/api/Actions",
            [{"ticket_id": "4242", "note": "n", "outcome": "Private Note"}],
            '$[0].ticket_id: must satisfy type "integer"',
        ),
        ("/api/Actions", [{"ticket_id": 4242, "note": "n"}], "$[0]: anyOf: missing field(s)"),
        ("/api/Actions", {"ticket_id": 4242, "note": "n"}, '$: must satisfy type "array"'),
        ("/api/Tickets", [{"id": 4242, "agentid": 7}], "$[0]: unknown field(s) ['agentid']"),
        ("/api/Tickets", [{"id": 4242}], "$[0]: fails minProperties"),
        ("/api/Actions", None, '$: must satisfy type "array"'),
    ],
)
def test_the_halo_fake_refuses_a_wrong_body_with_400(
    halo: HaloFake, path: str, body: Any, violation: str
) -> None:
    halo.expect_violations()
    refused = _post(halo, path, body) if body is not None else _post_garbled(halo, path)
    assert refused.status_code == 400
    assert violation in refused.json()["message"]
    assert any(violation in line for line in halo.watch.violations)
    assert halo.actions == [] and halo.tickets == []


def test_the_halo_fake_refuses_a_wrong_token_form_without_echoing_the_secret(
    halo: HaloFake,
) -> None:
    halo.expect_violations()
    scope = _token(halo, scope='read:tickets  edit:"tickets"')  # not scope tokens (RFC 6749 3.3)
    assert (scope.status_code, scope.json()["error"]) == (400, "invalid_request")
    assert scope.json()["error_description"] == "$.scope: fails pattern"
    grant = _token(halo, grant_type="password")
    assert (
        grant.json()["error_description"] == '$.grant_type: must satisfy const "client_credentials"'
    )
    # A JSON body instead of a form: every field is missing.
    wrong = requests.post(
        f"{halo.base_url}/auth/token", json={"client_secret": CLIENT_SECRET}, timeout=30
    )
    assert wrong.status_code == 400 and "missing field(s)" in wrong.text
    assert halo.issued == []
    assert CLIENT_SECRET not in "".join(halo.watch.violations) + scope.text + wrong.text


def test_the_halo_fakes_own_answers_keep_halos_contracts(halo: HaloFake) -> None:
    halo.ticket_records[4242] = {"id": 4242, "summary": "Printer on fire", "status_id": 1}
    halo.webhooks = [WEBHOOK]
    halo.webhook_events = [
        {"webhook_id": WEBHOOK["id"], "timestamp": "2026-12-03T10:00:00Z", "responsestatus": 503}
    ]
    token = _token(halo)
    assert contract.violations("halo_token_answer", token.json()) == []
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    answers = {
        "halo_authinfo_answer": "/api/authinfo",
        "halo_agent_answer": "/api/Agent?search=ann@contoso.example",
        "halo_outcome_answer": "/api/Outcome",
        "halo_ticket_answer": "/api/Tickets/4242",
        "halo_webhook_answer": "/api/Webhook",
        "halo_webhook_event_answer": f"/api/WebhookEvent?webhook_id={WEBHOOK['id']}",
    }
    for name, path in answers.items():
        got = requests.get(f"{halo.base_url}{path}", headers=headers, timeout=30)
        assert got.status_code == 200, path
        assert contract.violations(name, got.json()) == [], path
    assert (
        requests.get(f"{halo.base_url}/api/Tickets/1", headers=headers, timeout=30).status_code
        == 404
    )
    # The answer contracts have teeth: an agent without an id is not Halo's.
    assert contract.violations("halo_agent_answer", [{"email": "ann@contoso.example"}])
    # A webhook's id is Halo's uuid, its state booleans: a number or a text is not Halo's.
    assert contract.violations("halo_webhook_answer", [{**WEBHOOK, "id": 3}])
    assert contract.violations("halo_webhook_answer", {"webhooks": [{**WEBHOOK, "active": "y"}]})
    assert contract.violations("halo_webhook_event_answer", [{"responsestatus": "503"}])


# --- the loopback SIGNL4 ---


def _webhook(signl4: Signl4Fake) -> str:
    return signl4.base_url + TEAM_SECRET


def _event(**fields: Any) -> dict[str, Any]:
    return {"Title": "Printer on fire", "X-S4-ExternalID": "HaloPSA-4242", **fields}


def test_the_signl4_fake_takes_any_parameter_and_every_documented_control_field(
    signl4: Signl4Fake,
) -> None:
    event = _event(
        **{
            "X-S4-Status": "acknowledged",
            "X-S4-Service": "Network",
            "X-S4-AlertingScenario": "emergency",
            "X-S4-Filtering": True,
            "X-S4-Location": "40.6413111,-73.7781391",
            "X-S4-SourceSystem": "HaloPSA",
            "Gate Id": 7,
            "Anything": ["at", "all"],
        }
    )
    assert requests.post(_webhook(signl4), json=event, timeout=30).status_code == 201
    filtering = _event(**{"X-S4-Filtering": "false"})
    answered = requests.post(_webhook(signl4), json=filtering, timeout=30)
    assert answered.status_code == 201
    assert contract.violations("signl4_inbound_answer", answered.json()) == []
    assert signl4.watch.violations == []


@pytest.mark.parametrize(
    ("fields", "violation"),
    [
        ({"X-S4-Status": "acknowledge"}, "$.X-S4-Status: must satisfy enum"),
        ({"X-S4-Stauts": "resolved"}, 'field name "X-S4-Stauts" is not allowed'),
        ({"x-s4-externalid": "HaloPSA-1"}, 'field name "x-s4-externalid" is not allowed'),
        ({"X-S4-AlertingScenario": "multi"}, "$.X-S4-AlertingScenario: must satisfy enum"),
        ({"X-S4-Filtering": "yes"}, "$.X-S4-Filtering: must satisfy enum"),
        ({"X-S4-Location": "Gate 7"}, "$.X-S4-Location: fails pattern"),
        ({"X-S4-ExternalID": 4242}, '$.X-S4-ExternalID: must satisfy type "string"'),
    ],
)
def test_the_signl4_fake_refuses_a_wrong_control_field_with_400(
    signl4: Signl4Fake, fields: dict[str, Any], violation: str
) -> None:
    signl4.expect_violations()
    signl4.script(201)
    refused = requests.post(_webhook(signl4), json=_event(**fields), timeout=30)
    assert refused.status_code == 400
    assert violation in refused.json()["message"]
    assert len(signl4.events) == 1  # recorded: the tests count what reached SIGNL4
    # The script waits for a body SIGNL4 takes.
    assert requests.post(_webhook(signl4), json=_event(), timeout=30).status_code == 201


def test_the_signl4_fake_refuses_a_body_that_is_no_object(signl4: Signl4Fake) -> None:
    signl4.expect_violations()
    listed = requests.post(_webhook(signl4), json=[_event()], timeout=30)
    assert listed.status_code == 400
    garbled = requests.post(_webhook(signl4), data=b"{not json", timeout=30)
    assert garbled.status_code == 400
    assert signl4.watch.violations == [
        'POST /webhook: $: must satisfy type "object"',
        "POST /webhook: $: not JSON",
    ]


# --- the verdict at teardown, in a pytest of its own ---

TEARDOWN_TESTS = """
import requests
from tests.conftest import TEAM_SECRET, make_httpserver, signl4  # noqa: F401
from testkit.halo_fake import halo_fixture  # noqa: F401

WRONG_ACTION = [{"ticketid": 1, "note": "n", "outcome": "Private Note"}]


def test_halo_unannounced(halo):
    assert requests.post(halo.base_url + "/api/Actions", json=WRONG_ACTION).status_code == 400


def test_halo_announced(halo):
    halo.expect_violations()
    assert requests.post(halo.base_url + "/api/Actions", json=WRONG_ACTION).status_code == 400


def test_halo_announced_but_none_came(halo):
    halo.expect_violations()


def test_signl4_unannounced(signl4):
    body = {"X-S4-Status": "closed"}
    assert requests.post(signl4.base_url + TEAM_SECRET, json=body).status_code == 400


def test_signl4_clean(signl4):
    assert requests.post(signl4.base_url + TEAM_SECRET, json={"Title": "t"}).status_code == 201
"""


def test_a_violation_fails_the_test_at_teardown_unless_announced(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_teardown=TEARDOWN_TESTS)
    recorded = pytester.inline_run("-p", "no:cacheprovider", "-q")
    reports = recorded.getreports("pytest_runtest_logreport")
    calls = {r.nodeid.split("::")[-1] for r in reports if r.when == "call" and r.passed}
    assert len(calls) == 5
    failed = {r.nodeid.split("::")[-1]: str(r.longrepr) for r in reports if r.failed}
    assert set(failed) == {
        "test_halo_unannounced",
        "test_halo_announced_but_none_came",
        "test_signl4_unannounced",
    }
    assert all(r.when == "teardown" for r in reports if r.failed)
    assert (
        "the loopback Halo refused a body that breaks its contract"
        in (failed["test_halo_unannounced"])
    )
    assert (
        "POST /api/Actions: $[0]: unknown field(s) ['ticketid']"
        in (failed["test_halo_unannounced"])
    )
    assert failed["test_halo_announced_but_none_came"].endswith(
        "the test expected the loopback Halo to refuse a body, and none was refused"
    )
    assert "POST /webhook: $.X-S4-Status: must satisfy enum" in failed["test_signl4_unannounced"]


def test_contracts_dir_is_the_one_docs_calls_names() -> None:
    calls = (Path(__file__).parents[2] / "docs" / "calls.md").read_text(encoding="utf-8")
    for name in EXPECTED:
        assert f"testkit/contracts/{name}.json" in calls, name
