"""Two-way sync, the suite (each tier's test_two_way.py runs it over its own harness: MemoryStore
and in-process queues in tests/unit, TableStore and storage queues on Azurite in
tests/integration). Against real parts: SIGNL4's outbound webhook into the function app (host-less),
the write-back to a loopback Halo (testkit/halo_fake.py), the ledger and the halo-outbox queues on
Azurite or in memory (every case runs over both adapters), and SIGNL4 on loopback for the loop.

Each case asserts what Halo received, exactly, and the answers SIGNL4 got."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import azure.functions as func
import pytest

from devhost.functions import OutValue
from shared.entry.storage import open_ledger
from shared.settings import RelaySettings
from testkit.halo_fake import CLIENT_ID, CLIENT_SECRET, HALO_403, HaloFake, halo_fixture  # noqa: F401
from tests.conftest import (
    Harness,
    Signl4Fake,
    answer,
    call_halopsa,
    http_post,
    new_ticket_id,
)

HALO_OUTBOX, HALO_POISON = "halo-outbox", "halo-outbox-poison"
NO_ALERT = "no alert raised by this relay"  # the reason SIGNL4 reads for an alert not ours
RAISED = "2026-09-25T06:41:08.7895915Z"


@pytest.fixture
def two_way(live_env: dict, halo: HaloFake, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "HALO_BASE_URL": halo.base_url,
        "HALO_CLIENT_ID": CLIENT_ID,
        "HALO_CLIENT_SECRET": CLIENT_SECRET,
        "SIGNL4_BACKOFF_SECONDS": "0",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {**live_env, **env}


def notification(
    tid: int | str,
    event_type: int,
    status_code: int | None = None,
    *,
    event_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """SIGNL4's notification about ticket `tid`'s alert: by default the one the relay raised
    (alert.eventId: the id SIGNL4 answered to its `new`; see raise_alert)."""
    global _counter
    _counter += 1
    if event_id is None:
        event_id = _RAISED.get(tid, "evt-never-raised") if isinstance(tid, int) else "evt-x"
    body: dict[str, Any] = {
        "eventType": event_type,
        "eventRaisedUtc": RAISED,
        "id": f"n-{tid}-{_counter}",
        "team": {"id": "team-1"},
        "alert": {
            "eventId": event_id,
            "externalEventId": tid if isinstance(tid, str) else f"HaloPSA-{tid}",
            "id": f"alert-{tid}",
        },
    }
    if status_code is not None:
        body["alert"]["statusCode"] = status_code
    if event_type in (201, 203):
        body["user"] = {"username": "Ann Agent", "mailaddress": "ann@contoso.example", "id": "u1"}
    body.update(extra)
    return body


_counter = 0
_RAISED: dict[int, str] = {}  # ticket id -> the eventId SIGNL4 answered to the relay's `new`


def raise_alert(harness: Harness, tid: int | None = None) -> int:
    """Halo logs a ticket and the relay pages it: the alert SIGNL4's notifications are about."""
    tid = tid or new_ticket_id()
    code, body = harness.post(_halo_webhook(tid, 1, "new ticket logged"))
    assert (code, body["result"]) == (200, "sent"), body
    _RAISED[tid] = body["eventId"]
    return tid


def paged(environ: Mapping[str, str], tid: int | None = None) -> int:
    """`raise_alert` without a harness: Halo's *New Ticket Logged* through the handler to the
    loopback SIGNL4 (environ holds its URL, e.g. live_env), so SIGNL4's notifications about the
    ticket verify against the eventId it answered."""
    from shared.entry.halo_webhook import handle_halo_request

    tid = tid or new_ticket_id()
    body = json.dumps(_halo_webhook(tid, 1, "new ticket logged")).encode()
    response = handle_halo_request(body, {}, environ, outbox=[], query={})
    assert (response.status_code, response.body["result"]) == (200, "sent"), response.body
    _RAISED[tid] = response.body["eventId"]
    return tid


def event_id_of(tid: int) -> str:
    """The eventId SIGNL4 answered to the relay's `new` for ticket `tid` (paged/raise_alert)."""
    return _RAISED[tid]


def ack(tid: int) -> dict[str, Any]:
    return notification(tid, 201, 2)


def close(tid: int) -> dict[str, Any]:
    return notification(tid, 201, 4)


def annotate(tid: int, text: str) -> dict[str, Any]:
    return notification(tid, 203, annotation={"message": text, "id": "an-1"})


def post_signl4(harness: Harness, body: Any) -> tuple[int, dict[str, Any]]:
    """SIGNL4 calling the function, as the host would: the output binding onto halo-outbox."""
    queued = OutValue()
    response = harness.functions["signl4"](http_post(body, "/api/signl4"), queued=queued)
    for message in queued.get() or []:
        harness.queues.put(HALO_OUTBOX, message)
    return answer(response)


def drain(harness: Harness, hang_guard_seconds: float = 300) -> None:
    """The halo queues run until empty; waits on progress, the clock only guards a hang."""
    deadline = time.monotonic() + hang_guard_seconds
    while harness.depth(HALO_OUTBOX) or harness.depth(HALO_POISON):
        assert time.monotonic() < deadline, "the halo outbox did not drain"
        if not harness.runner.run_once():
            time.sleep(0.1)


# --- each SIGNL4 event once, in order, on the ticket ---


def test_ack_annotation_close_are_each_written_once_in_order(
    harness: Harness, two_way: dict, halo: HaloFake
) -> None:
    tid = raise_alert(harness)
    answers = [
        post_signl4(harness, ack(tid)),
        post_signl4(harness, annotate(tid, "Rebooting the switch")),
        post_signl4(harness, close(tid)),
    ]
    assert [code for code, _ in answers] == [200, 200, 200]
    assert [body["result"] for _, body in answers] == ["written"] * 3
    assert [body["haloActionId"] for _, body in answers] == [str(a["id"]) for a in halo.actions]
    assert answers[0][1]["externalId"] == f"HaloPSA-{tid}"
    assert halo.notes(tid) == [
        "Acknowledged in SIGNL4 by Ann Agent (ann@contoso.example) at 2026-09-25 06:41:08 UTC.",
        "Annotation in SIGNL4 by Ann Agent (ann@contoso.example) at 2026-09-25 06:41:08 UTC:\n"
        "Rebooting the switch",
        "Closed in SIGNL4 by Ann Agent (ann@contoso.example) at 2026-09-25 06:41:08 UTC.",
    ]
    for action in halo.actions:
        assert action["hiddenfromuser"] is True
        # HALO_NOTE_OUTCOME ("Private Note") sent as Halo's id for it, resolved once.
        assert action["outcome_id"] == 7 and "outcome" not in action
        assert "new_status" not in action  # no status ids configured
        assert "new_agent" not in action  # no assignment configured
    assert len(halo.calls("/api/Outcome")) == 1
    # One token for all three (cached), asked for with the least scope, at the default auth URL,
    # for the tenant authinfo names (HALO_TENANT is not set).
    (token_call,) = halo.calls("/auth/token")
    assert token_call["form"] == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scope": "read:tickets edit:tickets",
    }
    assert token_call["query"] == {"tenant": "contoso"}
    assert not halo.calls("/api/Tickets")


def test_escalation_writes_a_note_and_created_records_the_alert_id(
    harness: Harness, two_way: dict, halo: HaloFake
) -> None:
    tid = raise_alert(harness)
    created = post_signl4(harness, notification(tid, 200))
    assert created == (
        200,
        {"result": "recorded", "externalId": f"HaloPSA-{tid}", "alertId": f"alert-{tid}"},
    )
    assert not halo.requests  # nothing written to Halo for a created alert
    # SIGNL4's 202 names no escalation: a key that looks like one is not written to the note.
    code, body = post_signl4(harness, notification(tid, 202, escalation={"level": 2}))
    assert (code, body["result"]) == (200, "written")
    assert halo.notes(tid) == ["Escalated in SIGNL4 at 2026-09-25 06:41:08 UTC."]


def test_status_and_assignment_on_ack_and_status_on_close(
    harness: Harness, two_way: dict, halo: HaloFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HALO_ACK_STATUS_ID", "22")
    monkeypatch.setenv("HALO_CLOSE_STATUS_ID", "9")
    monkeypatch.setenv("HALO_ASSIGN_ON_ACK", "true")
    monkeypatch.setenv("HALO_NOTE_OUTCOME_ID", "7")
    tid = raise_alert(harness)
    assert post_signl4(harness, ack(tid))[1]["result"] == "written"
    assert post_signl4(harness, close(tid))[1]["result"] == "written"
    # The assignment rides on the ack's action (new_agent): no separate POST /api/Tickets.
    assert not halo.calls("/api/Tickets")
    assert [a.get("new_agent") for a in halo.actions] == [7, None]
    assert [(a["new_status"], a["outcome_id"]) for a in halo.actions] == [(22, 7), (9, 7)]
    assert "outcome" not in halo.actions[0]
    assert not halo.calls("/api/Outcome")  # HALO_NOTE_OUTCOME_ID needs no lookup
    assert halo.notes(tid)[0].endswith("\nAssigned to Ann Agent (matched by e-mail).")
    assert halo.calls("/api/Agent")[0]["query"] == {"search": "ann@contoso.example"}
    # Assignment asks for the optional read:agents (dropped if Halo refuses it).
    assert halo.calls("/auth/token")[0]["form"]["scope"] == "read:tickets edit:tickets read:agents"


def test_no_agent_with_the_responders_email_is_said_in_the_note(
    harness: Harness, two_way: dict, halo: HaloFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HALO_ASSIGN_ON_ACK", "true")
    halo.agents = []
    tid = raise_alert(harness)
    assert post_signl4(harness, ack(tid))[1]["result"] == "written"
    assert not halo.tickets and "new_agent" not in halo.actions[0]
    assert halo.notes(tid)[0].endswith(
        "\nNot assigned: no Halo agent has the e-mail address ann@contoso.example."
    )


# --- what is not ours, or not on ---


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (notification("Zabbix-77", 201, 2), "not an alert raised by the relay"),
        (notification("HaloPSA-abc", 201, 2), "not an alert raised by the relay"),
        (notification(12, 1), "a SIGNL4 test notification"),
        (notification(12, 300), "duty notification"),
        (notification(12, 303), "duty notification"),
        (notification(12, 201, 1), "neither acknowledged (2) nor closed (4)"),
    ],
)
def test_other_notifications_are_ignored_with_the_reason(
    harness: Harness, two_way: dict, halo: HaloFake, body: dict, reason: str
) -> None:
    code, answered = post_signl4(harness, body)
    assert (code, answered["result"]) == (200, "ignored")
    assert reason in answered["reason"]
    assert not halo.requests


def test_two_way_is_off_until_the_client_credentials_are_set(
    functions: dict, live_env: dict, halo: HaloFake
) -> None:
    response = functions["signl4"](http_post(ack(12), "/api/signl4"), queued=OutValue())
    assert answer(response) == (
        200,
        {
            "result": "ignored",
            "reason": "two-way sync is off (set HALO_CLIENT_ID and HALO_CLIENT_SECRET)",
        },
    )
    assert answer(functions["health"](_get("/api/health")))[1]["halo"] == "off"
    assert not halo.requests


def test_health_says_halo_configured(functions: dict, two_way: dict) -> None:
    assert answer(functions["health"](_get("/api/health")))[1]["halo"] == "configured"


def test_client_id_without_base_url_is_a_configuration_error_naming_it(
    functions: dict, live_env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HALO_BASE_URL")
    monkeypatch.setenv("HALO_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("HALO_CLIENT_SECRET", CLIENT_SECRET)
    code, body = answer(functions["signl4"](http_post(ack(12), "/api/signl4"), queued=OutValue()))
    assert (code, body["error"]) == (500, "configuration_error")
    assert "HALO_BASE_URL" in body["message"] and CLIENT_SECRET not in body["message"]


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"", "invalid_json"),
        (b"{not json", "invalid_json"),
        (b"[]", "unsupported_payload"),
        (b'{"eventType": 201}', "unsupported_payload"),
        (b'{"id": "x", "eventType": 201, "EventType": 202}', "unsupported_payload"),
        (b'{"id": "x", "eventType": "soon"}', "invalid_field"),
        (b'{"id": "x", "eventType": 201, "alert": [1]}', "invalid_field"),
    ],
)
def test_bad_bodies_get_a_json_error_not_a_500(
    functions: dict, two_way: dict, raw: bytes, error: str
) -> None:
    code, body = answer(functions["signl4"](http_post(raw, "/api/signl4"), queued=OutValue()))
    assert body["error"] == error and 400 <= code < 500


# --- exactly once ---


def test_a_redelivered_notification_is_written_once(
    harness: Harness, two_way: dict, halo: HaloFake
) -> None:
    tid = raise_alert(harness)
    body = ack(tid)
    first, again = post_signl4(harness, body), post_signl4(harness, body)
    assert first[1]["result"] == "written"
    assert again == (
        200,
        {"result": "duplicate", "externalId": f"HaloPSA-{tid}", "notificationId": body["id"]},
    )
    assert len(halo.notes(tid)) == 1


def test_a_redelivery_of_a_queued_notification_is_a_duplicate(
    harness: Harness, two_way: dict, halo: HaloFake
) -> None:
    tid = raise_alert(harness)
    body = ack(tid)
    halo.script("/api/Actions", 503, 503, 503)
    assert post_signl4(harness, body)[0] == 202
    assert post_signl4(harness, body)[1]["result"] == "duplicate"
    drain(harness)
    assert len(halo.notes(tid)) == 1


# --- the fault matrix ---


def test_an_expired_token_is_renewed_once(harness: Harness, two_way: dict, halo: HaloFake) -> None:
    tid = raise_alert(harness)
    assert post_signl4(harness, ack(tid))[1]["result"] == "written"
    halo.expire_tokens()
    assert post_signl4(harness, close(tid))[1]["result"] == "written"
    assert halo.issued == ["tok-1", "tok-2"]
    assert [c["authorization"] for c in halo.calls("/api/Actions")] == [
        "Bearer tok-1",
        "Bearer tok-1",  # 401: renewed once
        "Bearer tok-2",
    ]
    assert len(halo.notes(tid)) == 2


def test_a_token_refused_again_after_renewal_is_not_retried_for_ever(
    harness: Harness, two_way: dict, halo: HaloFake, caplog: pytest.LogCaptureFixture
) -> None:
    tid = raise_alert(harness)
    halo.script("/api/Actions", 401, 401, 401)
    caplog.set_level(logging.INFO)
    code, body = post_signl4(harness, ack(tid))
    assert (code, body["error"]) == (502, "halo_rejected")
    assert len(halo.calls("/api/Actions")) == 2  # the call, and once with a new token
    assert "poison externalId=halo:HaloPSA-" in caplog.text


def test_wrong_client_credentials_are_rejected_with_halos_error(
    harness: Harness, two_way: dict, halo: HaloFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HALO_CLIENT_SECRET", "not-the-secret-at-all")
    code, body = post_signl4(harness, ack(raise_alert(harness)))
    assert (code, body["error"]) == (502, "halo_rejected")
    assert "invalid_client" in body["message"] and "HALO_CLIENT_SECRET" in body["message"]
    assert "not-the-secret-at-all" not in json.dumps(body)


def test_403_inline_is_poison_with_halos_message_and_a_retry_is_tried_again(
    harness: Harness, two_way: dict, halo: HaloFake, caplog: pytest.LogCaptureFixture
) -> None:
    tid = raise_alert(harness)
    body = ack(tid)
    halo.script("/api/Actions", 403)
    caplog.set_level(logging.INFO)
    code, answered = post_signl4(harness, body)
    assert (code, answered["error"]) == (502, "halo_rejected")
    assert HALO_403 in answered["message"]
    assert len(halo.calls("/api/Actions")) == 1  # a 4xx is never retried
    poison = [r.getMessage() for r in caplog.records if r.getMessage().startswith("poison ")]
    assert poison == [
        f"poison externalId=halo:HaloPSA-{tid} reason=Halo refused POST /api/Actions with "
        f"HTTP 403: {HALO_403}: never reached Halo"
    ]
    # The permission fixed, SIGNL4's redelivery is written (not answered 'duplicate').
    assert post_signl4(harness, body)[1]["result"] == "written"
    assert len(halo.notes(tid)) == 1


@pytest.mark.parametrize("failure", [429, 500, 503])
def test_transient_failures_are_retried_inline(
    harness: Harness, two_way: dict, halo: HaloFake, failure: int
) -> None:
    tid = raise_alert(harness)
    halo.script("/api/Actions", failure, failure)
    assert post_signl4(harness, ack(tid))[1]["result"] == "written"
    assert len(halo.calls("/api/Actions")) == 3 and len(halo.notes(tid)) == 1


def test_still_failing_is_queued_then_written_by_the_outbox(
    harness: Harness, two_way: dict, halo: HaloFake
) -> None:
    tid = raise_alert(harness)
    halo.script("/api/Actions", 500, 500, 500)
    code, body = post_signl4(harness, ack(tid))
    assert (code, body["result"]) == (202, "queued")
    assert "HTTP 500" in body["reason"]
    assert not halo.notes(tid)
    drain(harness)
    assert len(halo.notes(tid)) == 1 and halo.notes(tid)[0].startswith("Acknowledged")


def test_a_timeout_is_queued_then_written(
    harness: Harness, two_way: dict, halo: HaloFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNL4_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("SIGNL4_MAX_ATTEMPTS", "1")
    tid = raise_alert(harness)
    halo.script("/api/Actions", "hang")
    code, body = post_signl4(harness, ack(tid))
    assert (code, body["result"]) == (202, "queued")
    assert "timed out" in body["reason"]
    halo.released.set()  # the held answer goes out (Halo did write it: the trade of a timeout)
    drain(harness)
    assert len(halo.calls("/api/Actions")) == 2


def test_exhausted_retries_end_in_one_poison_error_line(
    harness: Harness, two_way: dict, halo: HaloFake, caplog: pytest.LogCaptureFixture
) -> None:
    tid = raise_alert(harness)
    halo.script("/api/Actions", *[503] * 3 * 4)  # inline, then each of 3 queue deliveries
    assert post_signl4(harness, ack(tid))[0] == 202
    caplog.set_level(logging.INFO)
    drain(harness)
    assert not halo.notes(tid)
    poison = [r for r in caplog.records if r.getMessage().startswith("poison ")]
    assert len(poison) == 1 and poison[0].levelno == logging.ERROR
    line = poison[0].getMessage()
    assert line.startswith(f"poison externalId=halo:HaloPSA-{tid} reason=delivery attempts")
    assert line.endswith(": never reached Halo") and "events=#1 " in line


def test_a_403_in_the_queue_goes_to_the_poison_queue_with_halos_message(
    harness: Harness, two_way: dict, halo: HaloFake, caplog: pytest.LogCaptureFixture
) -> None:
    tid = raise_alert(harness)
    halo.script("/api/Actions", 500, 500, 500, 403)
    assert post_signl4(harness, ack(tid))[0] == 202
    caplog.set_level(logging.INFO)
    drain(harness)
    poison = [r.getMessage() for r in caplog.records if r.getMessage().startswith("poison ")]
    assert len(poison) == 1 and HALO_403 in poison[0] and "never reached Halo" in poison[0]
    assert len(halo.calls("/api/Actions")) == 4  # the 403 was not retried


# --- order per ticket ---


def test_a_close_never_lands_before_a_queued_ack(
    harness: Harness, two_way: dict, halo: HaloFake
) -> None:
    tid = raise_alert(harness)
    halo.script("/api/Actions", 503, 503, 503)
    assert post_signl4(harness, ack(tid))[0] == 202
    code, body = post_signl4(harness, close(tid))  # Halo is fine again, but the ack waits
    assert (code, body["result"]) == (202, "queued")
    assert "earlier event(s)" in body["reason"]
    assert len(halo.calls("/api/Actions")) == 3  # the close did not overtake
    drain(harness)
    assert [n.split(" ")[0] for n in halo.notes(tid)] == ["Acknowledged", "Closed"]


# --- no loops ---


def _halo_webhook(tid: int, status_id: int, event: str = "ticket status changed") -> dict:
    return {
        "event": event,
        "object_id": tid,
        "ticket": {
            "id": tid,
            "summary": "disk full",
            "status_id": status_id,
            "hasbeenclosed": status_id == 9,
        },
    }


def test_the_loop_through_signl4_halo_and_back_sends_signl4_nothing(
    harness: Harness,
    two_way: dict,
    halo: HaloFake,
    signl4: Signl4Fake,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGNL4 ack -> Halo action with the new status -> Halo's webhook back (sent by the fake
    Halo while the write-back is still in flight) -> answered duplicate, no SIGNL4 call. The
    same for the close."""
    monkeypatch.setenv("HALO_ACK_STATUS_ID", "22")
    monkeypatch.setenv("HALO_CLOSE_STATUS_ID", "9")
    monkeypatch.setenv("RELAY_ACK_STATUSES", "22")
    tid = new_ticket_id()
    echoes: list[tuple[int, dict]] = []

    def echo(action: dict[str, Any]) -> None:
        if "new_status" in action:
            status = action["new_status"]
            event = "closed" if status == 9 else "ticket status changed"
            echoes.append(harness.post(_halo_webhook(action["ticket_id"], status, event)))

    halo.on_action = echo
    raise_alert(harness, tid)
    assert post_signl4(harness, notification(tid, 200))[1]["result"] == "recorded"
    assert post_signl4(harness, ack(tid))[1]["result"] == "written"
    assert post_signl4(harness, close(tid))[1]["result"] == "written"
    assert [(code, body["result"], body["status"]) for code, body in echoes] == [
        (200, "duplicate", "acknowledged"),
        (200, "duplicate", "resolved"),
    ]
    assert [e["X-S4-Status"] for e in signl4.events] == ["new"]  # nothing more
    assert [a["new_status"] for a in halo.actions] == [22, 9]


def test_closing_the_ticket_after_signl4_closed_the_alert_sends_nothing(
    harness: Harness, two_way: dict, halo: HaloFake, signl4: Signl4Fake
) -> None:
    tid = raise_alert(harness)
    assert post_signl4(harness, close(tid))[1]["result"] == "written"  # no close status set
    assert "new_status" not in halo.actions[0]
    code, body = harness.post(_halo_webhook(tid, 9, "closed"))  # an engineer closes it later
    assert (code, body["result"], body["status"]) == (200, "duplicate", "resolved")
    assert [e["X-S4-Status"] for e in signl4.events] == ["new"]
    # Reopened in Halo afterwards: that is news for SIGNL4, a new alert.
    assert harness.post(_halo_webhook(tid, 2))[1]["status"] == "new"
    assert [e["X-S4-Status"] for e in signl4.events] == ["new", "new"]


def test_an_update_after_signl4_closed_the_alert_of_an_open_ticket_pages_nothing(
    harness: Harness, two_way: dict, halo: HaloFake, signl4: Signl4Fake
) -> None:
    """SIGNL4 closed the alert, the Halo ticket stays open (no close status set): its updates,
    even a status change, are not a reopen (issue 22). Halo closing it, then reopening: news."""
    tid = raise_alert(harness)
    assert post_signl4(harness, close(tid))[1]["result"] == "written"
    for update in (_halo_webhook(tid, 2), _halo_webhook(tid, 3, "ticket updated")):
        code, body = harness.post(update)
        assert (code, body["result"]) == (200, "skipped"), body
        assert "closed in SIGNL4" in body["reason"]
    assert [e["X-S4-Status"] for e in signl4.events] == ["new"]
    assert harness.post(_halo_webhook(tid, 9, "closed"))[1]["result"] == "duplicate"
    assert harness.post(_halo_webhook(tid, 2))[1]["status"] == "new"
    assert [e["X-S4-Status"] for e in signl4.events] == ["new", "new"]


def test_after_signl4_closed_the_alert_an_ack_status_or_newstatus_update_sends_nothing(
    harness: Harness,
    two_way: dict,
    halo: HaloFake,
    signl4: Signl4Fake,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by tests/unit/delivery/test_two_way_escalation_properties.py: acknowledged in
    SIGNL4 (Halo set to the ack status), then closed there, the Halo ticket open. Halo's late
    echo of the ack status, or any update at it, sent SIGNL4 `acknowledged` for the closed
    alert; with SIGNL4's NewStatus in the query, an update at that status paged it again."""
    monkeypatch.setenv("RELAY_ACK_STATUSES", "22")
    tid = raise_alert(harness)
    assert post_signl4(harness, ack(tid))[1]["result"] == "written"
    assert post_signl4(harness, close(tid))[1]["result"] == "written"
    for update in (_halo_webhook(tid, 22), _halo_webhook(tid, 22, "ticket updated")):
        code, body = harness.post(update)
        assert (code, body["result"]) == (200, "skipped"), body
        assert "closed in SIGNL4" in body["reason"]
    request = http_post(_halo_webhook(tid, 1, "ticket updated"), "/api/halopsa?NewStatus=1")
    request = func.HttpRequest(
        method="POST",
        url=request.url,
        headers=dict(request.headers),
        params={"NewStatus": "1"},
        body=request.get_body(),
    )
    response, queued = call_halopsa(harness.functions, request)
    code, body = answer(response)
    assert (code, body["result"], queued) == (200, "skipped", []), body
    assert [e["X-S4-Status"] for e in signl4.events] == ["new"]
    # Halo closing it is the close SIGNL4 made (nothing sent); reopened, it is news.
    assert harness.post(_halo_webhook(tid, 9, "closed"))[1]["result"] == "duplicate"
    assert harness.post(_halo_webhook(tid, 2))[1]["status"] == "new"


# --- only a verified notification acts (issue 18): alert.eventId is the id SIGNL4 answered to
# the relay's `new`; anyone can post anything else to /api/signl4 ---


def _forged(tid: int, event_type: int, status_code: int | None = None, **extra: Any) -> dict:
    """What an outsider can post: any notification id, alert id, event id or team."""
    return notification(tid, event_type, status_code, event_id="evt-guessed", **extra)


def _stored(partition: str, row: str | None) -> dict[str, Any] | None:
    """A ledger row as stored (whichever storage the tier runs on); row None: the partition's
    rows by key, None when it has none."""
    ledger = open_ledger(RelaySettings.from_env(os.environ))
    assert ledger is not None
    if row is None:
        rows = ledger.store.read(partition)
        return {k: r.entity for k, r in rows.items()} or None
    found = ledger.store.read(partition, row).get(row)
    return found.entity if found is not None else None


def _ignored(answered: tuple[int, dict[str, Any]], reason: str) -> None:
    code, body = answered
    assert (code, body["result"]) == (200, "ignored"), body
    assert reason in body["reason"], body["reason"]


def test_a_forged_ack_for_a_ticket_not_paged_yet_silences_nothing(
    harness: Harness, two_way: dict, halo: HaloFake, signl4: Signl4Fake
) -> None:
    tickets = [new_ticket_id() for _ in range(5)]
    for tid in tickets:
        _ignored(post_signl4(harness, _forged(tid, 201, 2)), NO_ALERT)
        _ignored(post_signl4(harness, _forged(tid, 201, 4)), NO_ALERT)
    for tid in tickets:  # each ticket's genuine opening is paged, and its close resolves
        assert harness.post(_halo_webhook(tid, 1, "new ticket logged"))[1]["result"] == "sent"
        assert harness.post(_halo_webhook(tid, 9, "closed"))[1]["result"] == "sent"
    assert [e["X-S4-Status"] for e in signl4.events] == ["new", "resolved"] * 5
    assert not halo.requests  # nothing written to Halo, not even a token asked for


def test_a_forged_close_leaves_the_genuine_close_to_resolve_the_alert(
    harness: Harness, two_way: dict, halo: HaloFake, signl4: Signl4Fake
) -> None:
    tid, other = raise_alert(harness), raise_alert(harness)
    forgeries = [
        (_forged(tid, 201, 4), "is not the alert this relay raised"),
        # another alert's real id
        (notification(tid, 201, 4, event_id=_RAISED[other]), "is not the alert this relay"),
        (notification(tid, 201, 4, event_id=_RAISED[tid].upper()), "is not the alert this"),
        (notification(tid, 201, 4, event_id=""), "has no alert.eventId"),
    ]
    for forged, reason in forgeries:
        _ignored(post_signl4(harness, forged), reason)
    code, body = harness.post(_halo_webhook(tid, 9, "closed"))
    assert (code, body["result"], body["status"]) == (200, "sent", "resolved")
    assert [e["X-S4-Status"] for e in signl4.events] == ["new", "new", "resolved"]
    assert not halo.requests


def test_a_forged_created_notification_overwrites_no_alert_id(
    harness: Harness, two_way: dict, halo: HaloFake
) -> None:
    tid = raise_alert(harness)
    assert post_signl4(harness, notification(tid, 200))[1] == {
        "result": "recorded",
        "externalId": f"HaloPSA-{tid}",
        "alertId": f"alert-{tid}",
    }
    forged = _forged(tid, 200)
    forged["alert"]["id"] = "alert-forged"
    _ignored(post_signl4(harness, forged), "is not the alert this relay raised")
    # Even with the right eventId, a different alert id for the same alert is not taken.
    other = notification(tid, 200)
    other["alert"]["id"] = "alert-other"
    _ignored(post_signl4(harness, other), "another alert id is recorded")
    row = _stored(f"halo:HaloPSA-{tid}", "signl4-alert")
    assert row is not None and row["AlertId"] == f"alert-{tid}"
    # A created notification for a ticket never paged records nothing.
    stranger = new_ticket_id()
    _ignored(post_signl4(harness, _forged(stranger, 200)), NO_ALERT)
    assert _stored(f"halo:HaloPSA-{stranger}", "signl4-alert") is None
    assert not halo.requests


def test_a_forged_ack_with_status_and_assignment_set_writes_nothing_even_replayed(
    harness: Harness, two_way: dict, halo: HaloFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HALO_ACK_STATUS_ID", "22")
    monkeypatch.setenv("HALO_CLOSE_STATUS_ID", "9")
    monkeypatch.setenv("HALO_ASSIGN_ON_ACK", "true")
    tid = raise_alert(harness)
    forged = _forged(tid, 201, 2)
    for attempt in range(3):  # replayed, each time with a new notification id
        replay = {**forged, "id": f"{forged['id']}-replay-{attempt}"}
        _ignored(post_signl4(harness, replay), "is not the alert this relay raised")
    _ignored(post_signl4(harness, _forged(tid, 201, 4)), "is not the alert this relay raised")
    assert not halo.requests
    assert _stored(f"halo:HaloPSA-{tid}", None) is None  # no row at all: no claim, no seen-
    assert _stored(f"HaloPSA-{tid}", "alert")["Status"] == "new"  # nothing learned


def test_a_notification_about_an_alert_the_relay_never_raised_is_ignored_by_name(
    harness: Harness, two_way: dict, halo: HaloFake
) -> None:
    """E.g. an alert SIGNL4's direct Halo setup raised before the move to the relay."""
    tid = new_ticket_id()
    code, body = post_signl4(harness, annotate(tid, "from before the move"))
    assert (code, body) == (
        200,
        {
            "result": "ignored",
            "notificationId": body["notificationId"],
            "reason": f"no alert raised by this relay for HaloPSA-{tid}",
        },
    )
    assert not halo.requests


def test_after_our_alert_closed_a_verified_note_is_written_and_nothing_learned(
    harness: Harness,
    two_way: dict,
    halo: HaloFake,
    signl4: Signl4Fake,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HALO_ACK_STATUS_ID", "22")
    monkeypatch.setenv("HALO_ASSIGN_ON_ACK", "true")
    tid = raise_alert(harness)
    assert harness.post(_halo_webhook(tid, 9, "closed"))[1]["result"] == "sent"
    assert post_signl4(harness, annotate(tid, "root cause: disk"))[1]["result"] == "written"
    assert post_signl4(harness, ack(tid))[1]["result"] == "written"  # a late ack
    assert [n.split(" ")[0] for n in halo.notes(tid)] == ["Annotation", "Acknowledged"]
    assert all("new_status" not in a for a in halo.actions)  # the closed ticket stays closed
    assert not halo.calls("/api/Tickets") and not halo.calls("/api/Agent")  # nobody assigned
    assert _stored(f"HaloPSA-{tid}", "alert")["Status"] == "resolved"
    assert [e["X-S4-Status"] for e in signl4.events] == ["new", "resolved"]


def test_a_reopened_ticket_is_a_new_alert_and_the_old_ones_id_no_longer_acts(
    harness: Harness, two_way: dict, halo: HaloFake, signl4: Signl4Fake
) -> None:
    tid = raise_alert(harness)
    first = _RAISED[tid]
    assert harness.post(_halo_webhook(tid, 9, "closed"))[1]["result"] == "sent"
    code, body = harness.post(_halo_webhook(tid, 2))  # reopened: a new alert
    assert (code, body["status"]) == (200, "new")
    assert body["eventId"] != first
    _ignored(post_signl4(harness, notification(tid, 201, 2, event_id=first)), "is not the alert")
    _RAISED[tid] = body["eventId"]
    assert post_signl4(harness, ack(tid))[1]["result"] == "written"
    assert _stored(f"HaloPSA-{tid}", "alert")["Status"] == "acknowledged"


# --- secrets ---


def test_secrets_reach_no_answer_log_or_queue_message(
    harness: Harness, two_way: dict, halo: HaloFake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tid = raise_alert(harness)
    answers = [post_signl4(harness, ack(tid))]
    halo.expire_tokens()
    halo.script("/api/Actions", 500, 500, 500)
    answers.append(post_signl4(harness, close(tid)))
    queued = _peek(harness)
    halo.script("/api/Actions", 403)
    answers.append(post_signl4(harness, annotate(tid, "x")))
    drain(harness)
    seen = json.dumps(answers) + caplog.text + "".join(queued)
    assert queued, "the close was queued"
    for secret in [CLIENT_SECRET, *halo.issued]:
        assert secret not in seen, secret


def _peek(harness: Harness) -> list[str]:
    if hasattr(harness.queues, "_items"):
        return [item.text for item in harness.queues._items.get(HALO_OUTBOX, [])]
    client = harness.queues._client(HALO_OUTBOX)
    return [m.content for m in client.peek_messages(max_messages=32)]


def _get(url: str) -> Any:
    import azure.functions as func

    return func.HttpRequest(method="GET", url=f"http://localhost:7071{url}", body=b"", params={})
