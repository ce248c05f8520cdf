"""The write-back against Halo's own contract, through the SIGNL4 handler
(`shared.entry.signl4_webhook.handle_signl4_request`) and the loopback Halo (testkit/halo_fake.py), storage in
memory: optional scopes Halo refuses, the outcome by name, the tenant, the assignment in the one
action, 429 and Retry-After, the per-worker call budget, Halo's own retry settings and the most
calls one notification costs a failing Halo."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from shared.adapters import halo as halo_api
from shared.entry.health import handle_health_request
from shared.entry.queues import deliver_halo_outbox_message
from shared.entry.signl4_webhook import handle_signl4_request
from shared.settings import RelaySettings
from testkit.halo_fake import CLIENT_ID, CLIENT_SECRET, HaloFake, halo_fixture  # noqa: F401
from tests.suites.two_way import ack, close, paged

REFUSED_NOTE = "\nNot assigned: Halo refused the read:agents scope the agent lookup needs."


@pytest.fixture
def env(halo: HaloFake, live_env: dict[str, str]) -> dict[str, str]:
    """Halo on loopback, storage in memory, SIGNL4 on loopback (each ticket is paged first, so
    SIGNL4's notifications about it verify)."""
    return {
        **live_env,
        "AzureWebJobsStorage": "memory",
        "HALO_BASE_URL": halo.base_url,
        "HALO_CLIENT_ID": CLIENT_ID,
        "HALO_CLIENT_SECRET": CLIENT_SECRET,
        "SIGNL4_BACKOFF_SECONDS": "0",
        "SIGNL4_TIMEOUT_SECONDS": "30",
    }


def post(
    body: dict[str, Any], env: dict[str, str], outbox: list[str] | None = None
) -> tuple[int, dict[str, Any]]:
    """SIGNL4's notification into the handler; what it queues goes to `outbox` (as the
    function's output binding)."""
    response = handle_signl4_request(
        json.dumps(body).encode(), env, outbox=[] if outbox is None else outbox
    )
    return response.status_code, response.body


def warnings_logged(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


# --- scopes (item 3) ---


def test_a_refused_optional_scope_is_dropped_once_and_the_notes_go_on(
    halo: HaloFake, env: dict, caplog: pytest.LogCaptureFixture
) -> None:
    halo.known_scopes = {"read:tickets", "edit:tickets"}  # no read:agents on this Halo
    env["HALO_ASSIGN_ON_ACK"] = "true"
    caplog.set_level(logging.INFO)
    tids = [paged(env), paged(env)]
    assert [post(ack(tid), env)[1]["result"] for tid in tids] == ["written", "written"]
    scopes = [call["form"]["scope"] for call in halo.calls("/auth/token")]
    assert scopes == ["read:tickets edit:tickets read:agents", "read:tickets edit:tickets"]
    assert [halo.notes(tid)[0].endswith(REFUSED_NOTE) for tid in tids] == [True, True]
    assert not halo.calls("/api/Agent") and all("new_agent" not in a for a in halo.actions)
    # A renewed token is asked for without the refused scope at once.
    halo.expire_tokens()
    assert post(close(tids[0]), env)[1]["result"] == "written"
    assert halo.calls("/auth/token")[-1]["form"]["scope"] == "read:tickets edit:tickets"
    assert len(halo.calls("/auth/token")) == 3
    assert len(warnings_logged(caplog, "refused the scope read:agents")) == 1
    # Health reports the last known result without calling Halo.
    before = len(halo.requests)
    warned = handle_health_request(env).body["haloWarnings"]
    assert warned == ["Halo refused the scope read:agents: notes go without assignment"]
    assert len(halo.requests) == before


def test_a_refused_required_scope_is_rejected_naming_halo_scope(halo: HaloFake, env: dict) -> None:
    halo.known_scopes = {"read:tickets"}
    code, body = post(ack(paged(env)), env)
    assert (code, body["error"]) == (502, "halo_rejected")
    assert "invalid_scope" in body["message"] and "HALO_SCOPE" in body["message"]
    assert len(halo.calls("/auth/token")) == 1 and not halo.actions


@pytest.mark.parametrize("refusal", [403, 404])
def test_a_refused_agent_lookup_writes_the_note_without_the_assignment(
    halo: HaloFake, env: dict, caplog: pytest.LogCaptureFixture, refusal: int
) -> None:
    env["HALO_ASSIGN_ON_ACK"] = "true"
    halo.script("/api/Agent", refusal)
    caplog.set_level(logging.INFO)
    tid = paged(env)
    assert post(ack(tid), env)[1]["result"] == "written"
    assert halo.notes(tid)[0].endswith(
        f"\nNot assigned: Halo refused the agent lookup (HTTP {refusal})."
    )
    assert "new_agent" not in halo.actions[0]
    (line,) = warnings_logged(caplog, "agent lookup")
    assert f"ticket {tid} was refused (HTTP {refusal})" in line


# --- the outcome by name (item 5) ---


def test_the_outcome_name_is_resolved_once_and_sent_as_its_id(halo: HaloFake, env: dict) -> None:
    env["HALO_NOTE_OUTCOME"] = " email USER "
    tid = paged(env)
    assert post(ack(tid), env)[1]["result"] == "written"
    assert post(close(tid), env)[1]["result"] == "written"
    assert [a["outcome_id"] for a in halo.actions] == [9, 9]
    assert all("outcome" not in a for a in halo.actions)
    assert len(halo.calls("/api/Outcome")) == 1


def test_an_outcome_halo_does_not_offer_never_reaches_the_actions(
    halo: HaloFake, env: dict
) -> None:
    env["HALO_NOTE_OUTCOME"] = "Internal Note"
    halo.outcomes = [{"id": 1, "outcome": "Update"}, {"id": 2, "outcome": "Bad\nname"}] + [
        {"id": 10 + n, "outcome": f"Outcome {n} " + "x" * 60} for n in range(20)
    ]
    answers = [post(ack(paged(env)), env) for _ in range(3)]
    assert [(code, body["error"]) for code, body in answers] == [(502, "halo_rejected")] * 3
    message = answers[0][1]["message"]
    assert message.startswith(
        "HALO_NOTE_OUTCOME 'Internal Note' is not an outcome Halo offers (it offers: "
        "'Update', 'Bad\\nname', 'Outcome 0 xxx"
    )
    assert "and 7 more" in message and "x" * 40 not in message  # cut to a sane length
    assert all(body["message"] == message for _, body in answers)
    # Asked once, not per write; no write was sent to fail with a 400.
    assert len(halo.calls("/api/Outcome")) == 1 and not halo.calls("/api/Actions")
    warned = handle_health_request(env).body["haloWarnings"]
    assert warned == [
        "HALO_NOTE_OUTCOME is not an outcome Halo offers: write-backs are refused "
        "(python -m shared check --live lists the ones it does)"
    ]


def test_a_400_to_a_write_drops_the_cached_outcome(halo: HaloFake, env: dict) -> None:
    tid = paged(env)
    halo.script("/api/Actions", 400)
    assert post(ack(tid), env)[1]["error"] == "halo_rejected"
    halo.outcomes = [{"id": 12, "outcome": "Private Note"}]  # recreated in Halo: a new id
    assert post(close(tid), env)[1]["result"] == "written"
    assert len(halo.calls("/api/Outcome")) == 2
    assert halo.actions[-1]["outcome_id"] == 12


def test_a_refused_outcome_lookup_sends_the_name_as_before(halo: HaloFake, env: dict) -> None:
    halo.script("/api/Outcome", 403)
    tid = paged(env)
    assert post(ack(tid), env)[1]["result"] == "written"
    assert post(close(tid), env)[1]["result"] == "written"
    assert [a.get("outcome") for a in halo.actions] == ["Private Note", "Private Note"]
    assert len(halo.calls("/api/Outcome")) == 1  # not asked again on every write


def test_an_outcome_id_wins_and_needs_no_lookup(halo: HaloFake, env: dict) -> None:
    env["HALO_NOTE_OUTCOME_ID"] = "5"
    env["HALO_NOTE_OUTCOME"] = "Not offered at all"
    assert post(ack(paged(env)), env)[1]["result"] == "written"
    assert halo.actions[0]["outcome_id"] == 5 and not halo.calls("/api/Outcome")


# --- the tenant (item 6) ---


@pytest.mark.parametrize(
    ("settings", "tenant_id", "query", "authinfo_calls"),
    [
        ({}, "contoso", {"tenant": "contoso"}, 1),  # authinfo's tenant_id
        ({"HALO_TENANT": "fabrikam"}, "contoso", {"tenant": "fabrikam"}, 1),  # the setting wins
        ({}, None, {}, 1),  # neither: no tenant
        (
            {"HALO_TENANT": "fabrikam", "HALO_AUTH_URL": "{base}/auth"},
            "x",
            {"tenant": "fabrikam"},
            0,
        ),
    ],
)
def test_the_tenant_is_the_settings_else_authinfos(
    halo: HaloFake,
    env: dict,
    settings: dict,
    tenant_id: str | None,
    query: dict,
    authinfo_calls: int,
) -> None:
    halo.tenant_id = tenant_id  # type: ignore[assignment]
    env.update({name: value.format(base=halo.base_url) for name, value in settings.items()})
    assert post(ack(paged(env)), env)[1]["result"] == "written"
    (token_call,) = halo.calls("/auth/token")
    assert token_call["query"] == query
    assert len(halo.calls("/api/authinfo")) == authinfo_calls


def test_authinfo_not_answering_is_queued_and_asked_again(halo: HaloFake, env: dict) -> None:
    """A failing authinfo is not taken for 'no tenant': the write waits, nothing is learnt."""
    outbox: list[str] = []
    tid = paged(env)
    halo.script("/api/authinfo", 503, 503, 503)
    code, body = post(ack(tid), env, outbox)
    assert (code, body["result"]) == (202, "queued")
    assert "/api/authinfo" in body["reason"] and not halo.calls("/auth/token")
    for message in outbox:
        deliver_halo_outbox_message(message, env)
    assert halo.calls("/auth/token")[0]["query"] == {"tenant": "contoso"}
    assert len(halo.notes(tid)) == 1


# --- Halo's rate limit and its own retry settings (item 8) ---


def test_a_429_is_retried_after_halos_retry_after(halo: HaloFake, env: dict) -> None:
    tid = paged(env)
    halo.script("/api/Actions", (429, {"Retry-After": "0"}))
    assert post(ack(tid), env)[1]["result"] == "written"
    assert len(halo.calls("/api/Actions")) == 2 and len(halo.notes(tid)) == 1


def test_a_429_asking_past_the_retry_budget_is_queued_at_once(halo: HaloFake, env: dict) -> None:
    env["HALO_RETRY_BUDGET_SECONDS"] = "5"
    halo.script("/api/Actions", (429, {"Retry-After": "3600"}))
    code, body = post(ack(paged(env)), env)
    assert (code, body["result"]) == (202, "queued")
    assert "asked to wait 3600.0s (HTTP 429)" in body["reason"]
    assert "5s retry budget" in body["reason"]
    assert len(halo.calls("/api/Actions")) == 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_over_the_call_budget_is_queued_then_written_when_the_window_moves(
    halo: HaloFake, env: dict
) -> None:
    clock = Clock()
    halo_api.reset_call_budget(limit=5, clock=clock)
    outbox: list[str] = []
    first, second, third = paged(env), paged(env), paged(env)
    # authinfo, token, outcome and the action: 4 calls; then 1 action: the budget's 5.
    assert post(ack(first), env)[1]["result"] == "written"
    assert post(ack(second), env)[1]["result"] == "written"
    sent = len(halo.requests)
    code, body = post(ack(third), env, outbox)
    assert (code, body["result"]) == (202, "queued")
    assert "Halo call budget (5 calls per 5 minutes) is spent" in body["reason"]
    assert len(halo.requests) == sent  # nothing reached Halo
    with pytest.raises(Exception, match="call budget"):
        deliver_halo_outbox_message(outbox[0], env)  # still over: the queue tries again later
    assert not halo.notes(third)
    clock.now += halo_api.BUDGET_WINDOW_SECONDS
    deliver_halo_outbox_message(outbox[0], env)
    assert len(halo.notes(third)) == 1  # queued, never dropped


def test_halos_retry_settings_fall_back_to_signl4s() -> None:
    base = {"HALO_BASE_URL": "https://h.example", "HALO_CLIENT_ID": "c", "HALO_CLIENT_SECRET": "s"}
    signl4 = {
        "SIGNL4_TIMEOUT_SECONDS": "7",
        "SIGNL4_MAX_ATTEMPTS": "5",
        "SIGNL4_RETRY_BUDGET_SECONDS": "20",
        "SIGNL4_BACKOFF_SECONDS": "2",
    }
    unset = halo_api.halo_http_settings(RelaySettings.from_env({**base, **signl4}))
    assert (unset.signl4_timeout_seconds, unset.signl4_max_attempts) == (7.0, 5)
    assert (unset.signl4_retry_budget_seconds, unset.signl4_backoff_seconds) == (20.0, 2.0)
    own = {
        "HALO_TIMEOUT_SECONDS": "3",
        "HALO_MAX_ATTEMPTS": "2",
        "HALO_RETRY_BUDGET_SECONDS": "9",
        "HALO_BACKOFF_SECONDS": "0",
    }
    settings = RelaySettings.from_env({**base, **signl4, **own})
    halo = halo_api.halo_http_settings(settings)
    assert (halo.signl4_timeout_seconds, halo.signl4_max_attempts) == (3.0, 2)
    assert (halo.signl4_retry_budget_seconds, halo.signl4_backoff_seconds) == (9.0, 0.0)
    assert settings.signl4_max_attempts == 5  # SIGNL4 keeps its own


@pytest.mark.parametrize(
    ("settings", "calls"),
    [({}, 3), ({"SIGNL4_MAX_ATTEMPTS": "2"}, 2), ({"HALO_MAX_ATTEMPTS": "1"}, 1)],
)
def test_a_failing_halo_costs_one_notification_a_handful_of_calls(
    halo: HaloFake, env: dict, settings: dict, calls: int
) -> None:
    """Halo answering 503 to everything: the first step (authinfo) is tried HALO_MAX_ATTEMPTS
    times (unset: SIGNL4_MAX_ATTEMPTS), then the notification is queued (6 before: authinfo's
    failure was taken for 'none', then the token was tried 3 times)."""
    env.update(settings, HALO_ASSIGN_ON_ACK="true")
    halo.down = 503
    code, body = post(ack(paged(env)), env)
    assert (code, body["result"]) == (202, "queued")
    assert len(halo.requests) == calls


def test_every_step_but_the_last_failing_costs_the_steps_before_it_once(
    halo: HaloFake, env: dict
) -> None:
    """The worst inline case with the defaults: authinfo, token, outcome and agent lookup
    answered, the action failing 3 times: 7 calls, then queued."""
    env["HALO_ASSIGN_ON_ACK"] = "true"
    halo.script("/api/Actions", 503, 503, 503)
    code, _ = post(ack(paged(env)), env)
    assert code == 202
    assert [r["path"] for r in halo.requests] == [
        "/api/authinfo",
        "/auth/token",
        "/api/Outcome",
        "/api/Agent",
        "/api/Actions",
        "/api/Actions",
        "/api/Actions",
    ]
