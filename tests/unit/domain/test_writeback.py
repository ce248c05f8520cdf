"""The write-back planner (shared/domain/writeback.py): what each SIGNL4 event writes into the Halo
ticket (the private note an engineer reads there, word for word), what it ignores and why, and
the Halo API bodies (Halo's OpenAPI document, covenanttechnologysolutions/halopsa-rest,
generator/spec/swagger.json: `POST /Actions` takes an array of `Actions`, `POST /Tickets` an
array of `Faults`)."""

from __future__ import annotations

import html
import itertools
import json
import os
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as settings_of
from hypothesis import strategies as st

from shared.domain import writeback
from shared.domain.alert import AlertStatus, clean_text
from shared.domain.notification import Signl4Notification, parse_notification
from shared.entry.queues import deliver_halo_outbox_message
from shared.entry.signl4_webhook import handle_signl4_request
from shared.settings import RelaySettings
from testkit.halo_fake import CLIENT_ID, CLIENT_SECRET, HaloFake, halo_fixture  # noqa: F401
from tests.conftest import SPEED_PROOF
from tests.suites.two_way import event_id_of, paged

ON = {
    "HALO_BASE_URL": "https://contoso.halopsa.com",
    "HALO_CLIENT_ID": "id",
    "HALO_CLIENT_SECRET": "sec-ret-value",
}
RAISED = "2026-09-25T06:41:08Z"
AT = " at 2026-09-25 06:41:08 UTC"


def settings(**values: str) -> RelaySettings:
    return RelaySettings.from_env({**ON, **values})


def notification(event_type: int = 201, **overrides: Any) -> Signl4Notification:
    value: dict[str, Any] = {
        "eventType": event_type,
        "eventRaisedUtc": RAISED,
        "id": "n-1",
        "user": {"username": "Ann", "mailaddress": "ann@contoso.example"},
        "alert": {"statusCode": 2, "externalEventId": "HaloPSA-4242", "id": "a-1"},
    }
    value.update(overrides)
    return parse_notification(value)


def alert(status_code: int | None = 2, **extra: Any) -> dict[str, Any]:
    return {"statusCode": status_code, "externalEventId": "HaloPSA-4242", **extra}


def written(planned: writeback.Plan) -> writeback.Write:
    assert isinstance(planned, writeback.Write), planned
    return planned


def test_conversation_keys() -> None:
    assert writeback.conversation_key(4242) == "halo:HaloPSA-4242"
    assert writeback.signl4_key(4242) == "HaloPSA-4242"


# --- the note each event writes: what the engineer reads in the ticket ---


@pytest.mark.parametrize(
    ("user", "who"),
    [
        (
            {"username": "Ann", "mailaddress": "ann@contoso.example"},
            " by Ann (ann@contoso.example)",
        ),
        ({"username": "Ann"}, " by Ann"),
        ({"mailaddress": "ann@contoso.example"}, " by ann@contoso.example"),
        (
            {"username": "Ann@Contoso.example", "mailaddress": "ann@contoso.example"},
            " by Ann@Contoso.example",
        ),
        (None, ""),
    ],
)
def test_the_note_names_who_did_it(user: dict[str, str] | None, who: str) -> None:
    acked = written(writeback.plan(notification(user=user), settings()))
    assert acked.payload["note"] == f"Acknowledged in SIGNL4{who}{AT}."
    closed = written(writeback.plan(notification(user=user, alert=alert(4)), settings()))
    assert closed.payload["note"] == f"Closed in SIGNL4{who}{AT}."
    annotated = written(
        writeback.plan(notification(203, user=user, annotation={"message": "on it"}), settings())
    )
    assert annotated.payload["note"] == f"Annotation in SIGNL4{who}{AT}:\non it"


@pytest.mark.parametrize(
    ("raised", "when"),
    [
        (None, ""),
        ("2026-09-25T08:41:08+02:00", AT),  # SIGNL4's time in UTC, whatever offset it came with
        ("2026-09-24T23:00:00-07:00", " at 2026-09-25 06:00:00 UTC"),
        ("2026-09-25T06:41:08.7895915Z", AT),  # to the second
    ],
)
def test_the_note_says_when_in_utc(raised: str | None, when: str) -> None:
    acked = written(writeback.plan(notification(user=None, eventRaisedUtc=raised), settings()))
    assert acked.payload["note"] == f"Acknowledged in SIGNL4{when}."


@pytest.fixture
def host_in_kathmandu(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local zone is UTC+05:45 (a developer's machine, not Azure's UTC)."""
    monkeypatch.setenv("TZ", "Asia/Kathmandu")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("host_in_kathmandu")
def test_the_notes_time_is_utc_whatever_zone_the_host_runs_in() -> None:
    naive = Signl4Notification(
        id="n", event_type=202, raised=datetime(2026, 9, 25, 6, 41, 8), external_id="HaloPSA-1"
    )
    aware = naive.model_copy(
        update={"raised": datetime(2026, 9, 25, 8, 41, 8, tzinfo=timezone(timedelta(hours=2)))}
    )
    for parsed in (naive, aware, notification(202)):
        assert written(writeback.plan(parsed, settings())).payload["note"] == (
            f"Escalated in SIGNL4{AT}."
        )


@pytest.mark.parametrize(
    ("status_code", "kind", "note", "status"),
    [
        (2, "acknowledged", "Acknowledged", AlertStatus.ACKNOWLEDGED),
        (4, "closed", "Closed", AlertStatus.RESOLVED),
    ],
)
def test_without_status_settings_the_write_is_the_note_alone(
    status_code: int, kind: str, note: str, status: AlertStatus
) -> None:
    planned = writeback.plan(notification(alert=alert(status_code)), settings())
    assert planned == writeback.Write(
        4242,
        kind,
        {
            "ticketId": 4242,
            "note": f"{note} in SIGNL4 by Ann (ann@contoso.example){AT}.",
            "notificationId": "n-1",
        },
        status,
    )


def test_an_acknowledgement_with_its_status_and_assignment() -> None:
    planned = writeback.plan(
        notification(), settings(HALO_ACK_STATUS_ID="22", HALO_ASSIGN_ON_ACK="true")
    )
    assert planned == writeback.Write(
        4242,
        "acknowledged",
        {
            "ticketId": 4242,
            "note": f"Acknowledged in SIGNL4 by Ann (ann@contoso.example){AT}.",
            "notificationId": "n-1",
            "statusId": 22,
            "assignEmail": "ann@contoso.example",
        },
        AlertStatus.ACKNOWLEDGED,
    )


def test_assignment_needs_the_setting_and_an_email() -> None:
    off = written(writeback.plan(notification(), settings(HALO_ACK_STATUS_ID="22")))
    assert "assignEmail" not in off.payload and off.payload["statusId"] == 22
    nameless = written(
        writeback.plan(notification(user={"username": "Ann"}), settings(HALO_ASSIGN_ON_ACK="true"))
    )
    assert "assignEmail" not in nameless.payload and "statusId" not in nameless.payload


def test_a_close_with_its_status_never_assigns() -> None:
    planned = writeback.plan(
        notification(alert=alert(4)),
        settings(HALO_CLOSE_STATUS_ID="9", HALO_ACK_STATUS_ID="22", HALO_ASSIGN_ON_ACK="true"),
    )
    assert planned == writeback.Write(
        4242,
        "closed",
        {
            "ticketId": 4242,
            "note": f"Closed in SIGNL4 by Ann (ann@contoso.example){AT}.",
            "notificationId": "n-1",
            "statusId": 9,
        },
        AlertStatus.RESOLVED,
    )


@pytest.mark.parametrize("escalation", [None, "Tier 2", {"level": 2}])
def test_an_escalation_note_says_when_and_nothing_else(escalation: Any) -> None:
    """SIGNL4's 202 names no escalation and no user: the note invents neither, whatever an
    `escalation` key in the body says."""
    planned = writeback.plan(
        notification(202, escalation=escalation), settings(HALO_ACK_STATUS_ID="22")
    )
    note = f"Escalated in SIGNL4{AT}."
    assert planned == writeback.Write(
        4242, "escalated", {"ticketId": 4242, "note": note, "notificationId": "n-1"}, None
    )


def test_an_annotation_is_a_note_without_status() -> None:
    planned = writeback.plan(
        notification(203, annotation={"message": "Switch rebooted"}),
        settings(HALO_ACK_STATUS_ID="22", HALO_ASSIGN_ON_ACK="true"),
    )
    assert planned == writeback.Write(
        4242,
        "annotated",
        {
            "ticketId": 4242,
            "note": f"Annotation in SIGNL4 by Ann (ann@contoso.example){AT}:\nSwitch rebooted",
            "notificationId": "n-1",
        },
        None,
    )


def test_alert_created_records_the_alert_id_even_without_one() -> None:
    assert writeback.plan(notification(200), settings()) == writeback.RecordAlert(4242, "a-1")
    bare = notification(200, alert={"externalEventId": "HaloPSA-7"})
    assert writeback.plan(bare, settings()) == writeback.RecordAlert(7, None)


# --- ignored, with the reason Halo's side never sees but the operator's log does ---


@pytest.mark.parametrize(
    ("event_type", "overrides", "reason"),
    [
        (1, {}, "a SIGNL4 test notification"),
        (300, {}, "a SIGNL4 duty notification (eventType 300)"),
        (301, {}, "a SIGNL4 duty notification (eventType 301)"),
        (302, {}, "a SIGNL4 duty notification (eventType 302)"),
        (303, {}, "a SIGNL4 duty notification (eventType 303)"),
        (204, {}, "eventType 204 is not one the relay writes back"),
        (0, {}, "eventType 0 is not one the relay writes back"),
        (999, {}, "eventType 999 is not one the relay writes back"),
        (
            201,
            {"alert": {"statusCode": 2, "externalEventId": "Zabbix-1"}},
            "not an alert raised by the relay (its externalEventId is not HaloPSA-<ticket id>)",
        ),
        (
            200,
            {"alert": {"id": "a-1"}},
            "not an alert raised by the relay (its externalEventId is not HaloPSA-<ticket id>)",
        ),
        (
            201,
            {"alert": alert(1)},
            "alert status 1 is neither acknowledged (2) nor closed (4)",
        ),
        (
            201,
            {"alert": alert(None)},
            "alert status None is neither acknowledged (2) nor closed (4)",
        ),
        (203, {}, "an annotation without text"),
        (203, {"annotation": {"message": "  "}}, "an annotation without text"),
    ],
)
def test_ignored_with_the_reason(event_type: int, overrides: dict[str, Any], reason: str) -> None:
    planned = writeback.plan(notification(event_type, **overrides), settings())
    assert planned == writeback.Ignore(reason)


# --- the mailbox payload ---


def test_a_note_is_cut_to_what_halo_takes() -> None:
    parsed = notification()
    payload = writeback.halo_payload(7, "n" * 6000, parsed, status_id=3, assign_email="")
    assert payload == {"ticketId": 7, "note": "n" * 5000, "notificationId": "n-1", "statusId": 3}


# --- Halo API bodies ---


@pytest.mark.parametrize(
    ("agent", "note"),
    [
        (None, "Acked.\nNot assigned: no Halo agent has the e-mail address ann@x."),
        ({"id": 3, "name": "Ann Agent"}, "Acked.\nAssigned to Ann Agent (matched by e-mail)."),
        ({"id": 3, "name": ""}, "Acked.\nAssigned to agent 3 (matched by e-mail)."),
        ({"id": 3}, "Acked.\nAssigned to agent 3 (matched by e-mail)."),
    ],
)
def test_the_note_says_what_became_of_the_assignment(agent: dict | None, note: str) -> None:
    assert writeback.assignment_note("Acked.", "ann@x", agent) == note


@pytest.mark.parametrize(
    ("agents", "found"),
    [
        ([{"id": 4, "email": " ann@x "}], 4),
        ({"agents": [{"id": 4, "email": "ann@x"}]}, 4),
        ({"records": [{"id": 4, "email": "ann@x"}]}, 4),
        ({"agents": [], "records": [{"id": 5, "email": "ann@x"}]}, 5),
        ({"agents": None}, None),
        ({"agents": "ann@x"}, None),
        ({}, None),
        (None, None),
        ([{"id": "4", "email": "ann@x"}, {"id": 6, "email": "ANN@X"}], 6),  # an id must be a number
        (["ann@x", {"id": 6, "email": "ann@x"}], 6),
        ([{"id": 4, "email": None}, {"id": 5}], None),
        ([{"id": 4, "email": "bob@x"}, {"id": 5, "email": "ann@x"}], 5),
        ([{"id": 4, "email": "ann@x"}, {"id": 5, "email": "ann@x"}], 4),  # the first
    ],
)
def test_agents_are_matched_by_email(agents: Any, found: int | None) -> None:
    match = writeback.match_agent(agents, " Ann@X")
    assert (match or {}).get("id") == found


def test_no_agent_matches_an_empty_email() -> None:
    assert writeback.match_agent([{"id": 4, "email": ""}, {"id": 5}], "ann@x") is None
    assert writeback.match_agent([{"id": 4, "email": "ann@x"}], "") is None


def test_action_body_with_outcome_by_name_and_no_status() -> None:
    payload = {"ticketId": 5, "note": "n", "statusId": None}
    body = writeback.action_body(payload, "text", settings(HALO_NOTE_OUTCOME="SIGNL4 note"))
    assert body == [
        {"ticket_id": 5, "note_html": "text", "hiddenfromuser": True, "outcome": "SIGNL4 note"}
    ]


def test_action_body_with_outcome_id_and_status() -> None:
    body = writeback.action_body(
        {"ticketId": 5, "statusId": 22}, "t", settings(HALO_NOTE_OUTCOME_ID="7")
    )
    assert body == [
        {
            "ticket_id": 5,
            "note_html": "t",
            "hiddenfromuser": True,
            "outcome_id": 7,
            "new_status": 22,
        }
    ]


def test_action_body_carries_the_resolved_outcome_id_and_the_new_agent() -> None:
    """Assignment rides on the action (`new_agent`, Halo's Actions model), not a second call;
    Halo's id for the outcome name wins over the name, HALO_NOTE_OUTCOME_ID over both."""
    body = writeback.action_body({"ticketId": 4242}, "t", settings(), outcome_id=12, agent_id=3)
    assert body == [
        {
            "ticket_id": 4242,
            "note_html": "t",
            "hiddenfromuser": True,
            "outcome_id": 12,
            "new_agent": 3,
        }
    ]
    by_id = writeback.action_body({"ticketId": 1}, "t", settings(HALO_NOTE_OUTCOME_ID="7"))
    assert by_id[0]["outcome_id"] == 7 and "new_agent" not in by_id[0]


# --- the note Halo gets: note_html, escaped when the body is built ---


def test_each_events_note_as_halo_gets_it_word_for_word() -> None:
    """The golden notes of test_the_note_names_who_did_it and the rest, as note_html."""
    acked = written(writeback.plan(notification(), settings(HALO_ASSIGN_ON_ACK="true")))
    note = writeback.assignment_note(
        acked.payload["note"], "ann@contoso.example", {"id": 3, "name": "Ann O'Neil & Co"}
    )
    (action,) = writeback.action_body(acked.payload, note, settings())
    assert action["note_html"] == (
        f"Acknowledged in SIGNL4 by Ann (ann@contoso.example){AT}.<br>"
        "Assigned to Ann O&#x27;Neil &amp; Co (matched by e-mail)."
    )
    assert "note" not in action  # only note_html: a plain note would carry the text unescaped
    annotated = written(
        writeback.plan(notification(203, annotation={"message": "a < b\n\nfix"}), settings())
    )
    (action,) = writeback.action_body(annotated.payload, annotated.payload["note"], settings())
    assert action["note_html"] == (
        f"Annotation in SIGNL4 by Ann (ann@contoso.example){AT}:<br>a &lt; b<br><br>fix"
    )


def test_the_stored_payload_keeps_the_text_and_the_body_escapes_it_once() -> None:
    """A write-back queued before note_html (the same payload shape) goes out escaped once;
    a note whose text holds an entity is shown as typed, not decoded."""
    planned = written(
        writeback.plan(notification(203, annotation={"message": "<b>&amp;</b>"}), settings())
    )
    assert planned.payload["note"].endswith(":\n<b>&amp;</b>")
    (action,) = writeback.action_body(planned.payload, planned.payload["note"], settings())
    assert action["note_html"].endswith(":<br>&lt;b&gt;&amp;amp;&lt;/b&gt;")


@pytest.mark.parametrize(
    ("note", "expected"),
    [
        ("a&b", "a&amp;b"),
        ("\"q\" 's' <x> &lt;", "&quot;q&quot; &#x27;s&#x27; &lt;x&gt; &amp;lt;"),
        ("one\ntwo\r\nthree\rfour", "one<br>two<br>three<br>four"),
        ("line\u2028para\u2029end", "line<br>para<br>end"),
        ("Pay \u202eexe.fdp\u202c invoice", "Pay exe.fdp invoice"),
        ("\ufeffzero\u200bwidth\u2060joined\u2066iso\u2069", "zerowidthjoinediso"),
        ("\x1b[31mred\x00\x85\x7f", "[31mred"),
        (
            "family \U0001f468\u200d\U0001f469\u200d\U0001f467",
            "family \U0001f468\u200d\U0001f469\u200d\U0001f467",
        ),
        ("\u0646\u200c\u0645", "\u0646\u200c\u0645"),  # ZWNJ stays: Persian needs it
    ],
)
def test_note_html_is_clean_escaped_text(note: str, expected: str) -> None:
    assert writeback.note_html(note) == expected


@pytest.mark.parametrize("limit", range(1, 16))
def test_the_cap_counts_escaped_characters_and_never_cuts_an_entity(limit: int) -> None:
    # "a&b\nc" escapes to a(1) &amp;(5) b(1) <br>(4) c(1): cut only between those pieces.
    cut = writeback.note_html('a&b\nc"', limit)
    pieces = ["a", "&amp;", "b", "<br>", "c", "&quot;"]
    whole = [pieces[:n] for n in range(len(pieces) + 1)]
    assert cut in ["".join(prefix) for prefix in whole]
    assert len(cut) <= limit
    longest = max(("".join(p) for p in whole if len("".join(p)) <= limit), key=len)
    assert cut == longest


SEEDED = settings_of(
    settings_of.get_profile(SPEED_PROOF), derandomize=True, database=None, max_examples=300
)


@SEEDED
@given(
    text=st.lists(st.sampled_from([*"ab&<>\"'\n", "\u202e", "\u00e9", "\U0001f600"])).map("".join),
    limit=st.integers(0, 40),
)
def test_the_cut_is_the_longest_run_of_whole_pieces_that_fits(text: str, limit: int) -> None:
    """Against the plain definition: each character escaped on its own, whole pieces only."""
    pieces = ["<br>" if c == "\n" else html.escape(c, quote=True) for c in clean_text(text)]
    expected, used = "", 0
    for piece in pieces:
        used += len(piece)
        if used > limit:
            break
        expected += piece
    assert writeback.note_html(text, limit) == expected


def test_the_default_cap_is_note_max_chars_after_escaping() -> None:
    assert writeback.note_html("&" * 4000) == "&amp;" * 1000  # 5000 characters
    assert writeback.note_html("x" * 4999 + "&") == "x" * 4999
    assert writeback.note_html("x" * 4995 + "&") == "x" * 4995 + "&amp;"


# --- through the handler, to the loopback Halo: nothing from outside arrives as live markup ---

MARKUP = "<img src=x onerror=alert(1)> <script>alert(2)</script> <a href=\"javascript:alert(3)\">x</a> & 'q'"
# Every character that would end text or an attribute value in HTML, or start markup.
_LIVE = re.compile(r"[<>\"']")
_ENTITY = re.compile(r"&(?:amp|lt|gt|quot|#x27);")


class _Tags(HTMLParser):
    """What an HTML renderer would make of note_html: its tags, attributes and comments."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))

    def handle_endtag(self, tag: str) -> None:
        self.found.append(("/" + tag, []))

    def handle_comment(self, data: str) -> None:
        self.found.append(("!--", []))

    def handle_decl(self, decl: str) -> None:
        self.found.append(("!", []))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def assert_inert(action: dict[str, Any]) -> None:
    """Halo got note_html only, whose only markup is <br> (no attribute, no other tag, no
    comment); every <, >, quote and & of the text is an entity."""
    assert "note" not in action
    html_note = action["note_html"]
    parser = _Tags()
    parser.feed(html_note)
    parser.close()
    assert {tag for tag, _ in parser.found} <= {"br"}, parser.found
    assert all(attrs == [] for _, attrs in parser.found)
    bare = html_note.replace("<br>", "")
    assert not _LIVE.search(bare), bare
    assert "&" not in _ENTITY.sub("", bare), bare


@pytest.fixture
def halo_env(
    halo: HaloFake, live_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Halo and SIGNL4 on loopback, storage in memory: each ticket is paged first (paged), so
    SIGNL4's notifications about it verify."""
    env = {
        **live_env,
        "HALO_BASE_URL": halo.base_url,
        "HALO_CLIENT_ID": CLIENT_ID,
        "HALO_CLIENT_SECRET": CLIENT_SECRET,
        "HALO_ASSIGN_ON_ACK": "true",
        "SIGNL4_BACKOFF_SECONDS": "0",
        "AzureWebJobsStorage": "memory",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


_ids = itertools.count(1)


def signl4_says(
    tid: int, event_type: int, *, status_code: int | None = None, **extra: Any
) -> bytes:
    body: dict[str, Any] = {
        "eventType": event_type,
        "eventRaisedUtc": RAISED,
        "id": f"n-{tid}-{next(_ids)}",
        "alert": {
            "eventId": event_id_of(tid),
            "externalEventId": f"HaloPSA-{tid}",
            "id": "a-1",
            "statusCode": status_code,
        },
        **extra,
    }
    return json.dumps(body).encode()


def test_markup_in_every_field_that_reaches_a_note_arrives_inert(
    halo: HaloFake, halo_env: dict[str, str]
) -> None:
    email = "x\"'<svg onload=alert(4)>@contoso.example"
    user = {"username": MARKUP, "mailaddress": email}
    halo.agents = [{"id": 9, "name": f"{MARKUP} agent", "email": email}]
    tid = paged(halo_env)
    bodies = [
        signl4_says(tid, 201, status_code=2, user=user),  # name, e-mail, Halo's agent name
        signl4_says(tid, 203, user=user, annotation={"message": f"{MARKUP}\nline 2"}),
        signl4_says(tid, 202, escalation={"name": MARKUP}),
        signl4_says(tid, 202, escalation=MARKUP),
    ]
    answers = [handle_signl4_request(body, os.environ, outbox=[]) for body in bodies]
    assert [a.body["result"] for a in answers] == ["written"] * 4
    halo.agents = []  # the same e-mail, but no agent has it now: the note says so
    handle_signl4_request(signl4_says(tid, 201, status_code=2, user=user), os.environ)
    assert len(halo.actions) == 5
    for action in halo.actions:
        assert_inert(action)
    # Nothing is lost either: what an agent reads is the text as SIGNL4 and Halo sent it.
    by = f" by {MARKUP} ({email}) at 2026-09-25 06:41:08 UTC"
    assert halo.notes(tid) == [
        f"Acknowledged in SIGNL4{by}.\nAssigned to {MARKUP} agent (matched by e-mail).",
        f"Annotation in SIGNL4{by}:\n{MARKUP}\nline 2",
        # SIGNL4's 202 carries no escalation object: a guessed one never reaches the note.
        "Escalated in SIGNL4 at 2026-09-25 06:41:08 UTC.",
        "Escalated in SIGNL4 at 2026-09-25 06:41:08 UTC.",
        f"Acknowledged in SIGNL4{by}.\nNot assigned: no Halo agent has the e-mail address {email}.",
    ]


def test_format_characters_never_reach_the_note_and_zwj_emoji_stay(
    halo: HaloFake, halo_env: dict[str, str]
) -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    user = {"username": "Ann\u202e\u200b", "mailaddress": "ann@contoso.example"}
    halo.agents = [
        {"id": 9, "name": "Bob\ufeff\u2066 Agent\u2069\x1b", "email": "ann@contoso.example"}
    ]
    message = f"Pay \u202eexe.fdp\u202c invoice\u2028next\u2029{family}\u2060\x07\x9b"
    tid = paged(halo_env)
    for body in (
        signl4_says(tid, 203, user=user, annotation={"message": message}),
        signl4_says(tid, 201, status_code=2, user=user),
    ):
        assert handle_signl4_request(body, os.environ, outbox=[]).body["result"] == "written"
    annotated, acked = (action["note_html"] for action in halo.actions)
    assert annotated == (
        f"Annotation in SIGNL4 by Ann (ann@contoso.example) at 2026-09-25 06:41:08 UTC:"
        f"<br>Pay exe.fdp invoice<br>next<br>{family}"
    )
    assert acked.endswith("<br>Assigned to Bob Agent (matched by e-mail).")


def test_a_queued_write_back_is_stored_as_text_and_escaped_once_when_sent(
    halo: HaloFake, halo_env: dict[str, str]
) -> None:
    """The mailbox keeps the note as text (what an older relay queued looks the same), and the
    Halo body escapes it when it is finally sent."""
    halo.script("/api/Actions", 503, 503, 503)
    tid = paged(halo_env)
    outbox: list[str] = []
    body = signl4_says(tid, 203, annotation={"message": "<b>R&D</b>"})
    assert handle_signl4_request(body, os.environ, outbox=outbox).status_code == 202
    (message,) = outbox
    assert "<b>R&D</b>" in json.loads(message)["payload"]["note"]
    assert deliver_halo_outbox_message(message, os.environ) is None
    (action,) = halo.actions
    assert action["note_html"].endswith(":<br>&lt;b&gt;R&amp;D&lt;/b&gt;")
    assert_inert(action)
