"""Normalising every Halo shape into one ticket."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timezone

import pytest

from shared.domain.alert import AlertStatus
from shared.domain.halo import (
    Ticket,
    html_to_text,
    parse_event,
    parse_halo_date,
    parse_json_body,
)
from shared.domain.html_text import Token, html_to_plain, strip_tags
from shared.domain.html_text import tokens as html_tokens
from shared.domain.policy import decide
from shared.domain.signl4_params import parse_signal_params
from shared.errors import (
    InvalidField,
    InvalidJson,
    InvalidStatus,
    MissingTicketId,
    UnsupportedPayload,
)
from shared.settings import RelaySettings
from tests.conftest import Signl4Fake, answer, call_halopsa, fixture_bytes, fixture_json, http_post


def test_webhook_small_object() -> None:
    event = parse_event(fixture_json("webhook_new_small.json"))
    assert event.shape == "webhook"
    assert event.event == "new ticket logged"  # case-folded from "New Ticket Logged"
    assert event.delivery_id == "6f1c2a7e-3b0d-4c55-9a43-1d2e3f4a5b6c"
    ticket = event.ticket
    assert ticket.id == 4242
    assert ticket.external_id == "HaloPSA-4242"
    assert ticket.summary == "Exchange server down at Contoso HQ"
    assert (ticket.status_id, ticket.status_name) == (1, None)
    assert ticket.priority_id == 1 and ticket.team_id == 2 and ticket.agent_id == 3
    assert ticket.closed is False


def test_webhook_full_object_normalises_strings_html_and_dates() -> None:
    ticket = parse_event(fixture_json("webhook_new_full.json")).ticket
    assert ticket.id == 4243  # object_id came as the string "4243"
    assert ticket.summary == "Backups failing for Fabrikam"
    assert ticket.status_id == 1 and ticket.status_name == "New"
    assert ticket.priority == "P1 - Critical" and ticket.priority_id == 2
    assert ticket.ticket_type == "Incident"
    assert (ticket.client, ticket.site, ticket.user) == ("Fabrikam Ltd", "Main Office", "Sam Smith")
    assert (ticket.team, ticket.agent, ticket.reference) == (
        "1st Line Support",
        "Alex Agent",
        "IN-0009499",
    )
    assert ticket.date_occurred == datetime(2026, 9, 25, 7, 1, 59, 123456, tzinfo=timezone.utc)
    assert ticket.date_closed is None  # 1900-01-01 is Halo's "no date"
    assert ticket.closed is False  # "false" as a string
    assert ticket.details is not None
    assert "<" not in ticket.details and "alert(1)" not in ticket.details
    assert "The nightly backup job failed three times." in ticket.details
    assert "Error: disk full & retention exceeded" in ticket.details
    assert "NAS01\n" in ticket.details


def test_event_information_only_envelope() -> None:
    event = parse_event(fixture_json("webhook_closed_event_only.json"))
    assert event.event == "closed"
    assert event.ticket.id == 4242
    assert event.ticket.summary is None
    assert event.message == "Ticket 4242 closed"


def test_guide_body() -> None:
    event = parse_event(fixture_json("guide_new.json"))
    assert event.shape == "guide" and event.event is None
    ticket = event.ticket
    assert ticket.id == 4242
    assert ticket.summary == "Exchange server down at Contoso HQ"
    assert ticket.details == "Users cannot send mail.\nStarted 06:40."
    assert (ticket.priority, ticket.client, ticket.site) == ("P1 - Critical", "Contoso", "HQ")
    assert ticket.status_name == "New" and ticket.status_id is None
    assert ticket.date_closed is None  # 1899-12-30 sentinel
    assert event.requested_status is None


def test_guide_close_body() -> None:
    event = parse_event(fixture_json("guide_close.json"))
    assert event.ticket.id == 4242
    assert event.requested_status is AlertStatus.RESOLVED


@pytest.mark.parametrize("name", ["ticket_bare.json", "ticket_wrapped.json"])
def test_bare_and_wrapped_ticket(name: str) -> None:
    event = parse_event(fixture_json(name))
    assert event.shape == "ticket" and event.event is None
    assert event.ticket.id in (4244, 4245)


def test_wrapped_closed_ticket_keeps_its_close_date() -> None:
    ticket = parse_event(fixture_json("ticket_wrapped.json")).ticket
    assert ticket.closed is True
    assert ticket.date_closed == datetime(2026, 9, 25, 10, 0, 0, 123456, tzinfo=timezone.utc)


def test_keys_are_read_case_insensitively() -> None:
    event = parse_event({"x-s4-externalid": "halopsa-77", "x-s4-status": "Acknowledged"})
    assert event.ticket.id == 77
    assert event.requested_status is AlertStatus.ACKNOWLEDGED


def test_nulls_and_empty_strings_are_tolerated() -> None:
    event = parse_event(
        {
            "event": "new ticket logged",
            "object_id": 9,
            "ticket": {
                "summary": "",
                "details": None,
                "status_id": "",
                "priority": None,
                "team": {},
            },
        }
    )
    ticket = event.ticket
    assert ticket.id == 9
    assert ticket.summary is None and ticket.details is None and ticket.status_id is None
    assert ticket.priority is None and ticket.team is None


def test_ticket_id_falls_back_from_object_id_to_ticket_id() -> None:
    assert parse_event({"event": "x", "ticket": {"id": "31"}}).ticket.id == 31
    assert parse_event({"event": "x", "ticket_id": 32}).ticket.id == 32


@pytest.mark.parametrize(
    "body",
    [
        {"event": "new ticket logged"},
        {"event": "new ticket logged", "object_id": None, "ticket": {"summary": "no id"}},
        {"X-S4-ExternalID": "HaloPSA-", "Title": "empty placeholder"},
        {"Title": "guide body without an external id"},
        {"ticket": {"summary": "no id", "status_id": 1}},
    ],
)
def test_missing_ticket_id_is_an_error_not_a_guess(body: dict) -> None:
    with pytest.raises(MissingTicketId):
        parse_event(body)


@pytest.mark.parametrize(
    "body",
    [
        {"event": "new ticket logged", "object_id": "abc"},
        {"X-S4-ExternalID": "Zendesk-12", "Title": "x"},
        {"event": "x", "object_id": -4},
        {"event": "x", "object_id": "\u00b2"},  # a superscript two is a digit to str.isdigit
        {"event": "x", "object_id": "--5"},
        {"event": "x", "object_id": 1e300},
        {"event": "x", "object_id": 10**20},
        {"event": "x", "object_id": True},
    ],
)
def test_a_ticket_id_that_is_not_a_number_is_rejected(body: dict) -> None:
    with pytest.raises(MissingTicketId, match="not a HaloPSA ticket number"):
        parse_event(body)


def test_unknown_x_s4_status_is_rejected() -> None:
    with pytest.raises(InvalidStatus, match="closed"):
        parse_event({"X-S4-ExternalID": "HaloPSA-1", "X-S4-Status": "closed"})


@pytest.mark.parametrize("value", [["resolved"], {"name": "resolved"}, 4, True])
def test_a_non_string_x_s4_status_is_rejected_not_ignored(value: object) -> None:
    with pytest.raises(InvalidStatus, match="must be a string"):
        parse_event({"X-S4-ExternalID": "HaloPSA-1", "X-S4-Status": value})


@pytest.mark.parametrize(
    ("value", "closed"),
    [
        (True, True),
        ("TRUE", True),
        (1, True),
        (1.0, True),
        (" yes ", True),
        ("1", True),
        ("Y", True),
        ("on", True),
        (False, False),
        (0, False),
        (0.0, False),
        ("false", False),
        ("0", False),
        ("No", False),
        ("n", False),
        ("OFF", False),
        ("", False),
        ("  ", False),
        (None, False),
    ],
)
def test_only_a_clear_yes_closes(value: object, closed: bool) -> None:
    ticket = parse_event({"event": "x", "object_id": 1, "ticket": {"hasbeenclosed": value}}).ticket
    assert ticket.closed is closed


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), 2, -1, 0.5, "maybe", "tru", "yes please", [1], {"a": 1}],
)
def test_a_flag_neither_clearly_true_nor_false_is_invalid_not_open(value: object) -> None:
    # Before, these were read as open: a garbled "closed" must not be guessed either way.
    for body in (
        {"event": "x", "object_id": 1, "ticket": {"hasbeenclosed": value}},
        {"X-S4-ExternalID": "HaloPSA-1", "Title": "t", "HasBeenClosed": value},
    ):
        with pytest.raises(InvalidField, match=r"^hasbeenclosed must be true or false") as caught:
            parse_event(body)
        assert caught.value.code == "invalid_field" and caught.value.status_code == 422


def test_an_invalid_flag_message_does_not_echo_a_long_value() -> None:
    value = "closed-" + "x" * 500
    with pytest.raises(InvalidField) as caught:
        parse_event({"event": "x", "object_id": 1, "ticket": {"hasbeenclosed": value}})
    assert "xxxxxxxxxx" not in caught.value.message
    assert "a string of 507 characters" in caught.value.message


def test_a_lone_surrogate_is_replaced_not_fatal() -> None:
    ticket = parse_event(
        {"event": "x", "object_id": 1, "ticket": {"summary": "Server down \ud83d"}}
    ).ticket
    assert ticket.summary == "Server down ?"
    assert ticket.summary.encode("utf-8")


@pytest.mark.parametrize("body", [[1, 2], "text", 42, None, {"hello": "world"}, {"id": 5}])
def test_unsupported_shapes(body: object) -> None:
    with pytest.raises(UnsupportedPayload):
        parse_event(body)


def test_json_python_cannot_hold_is_invalid_json_not_a_crash() -> None:
    with pytest.raises(InvalidJson, match="RecursionError"):
        parse_json_body(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(InvalidJson, match="ValueError"):
        parse_json_body(b'{"object_id": ' + b"9" * 5000 + b"}")


def test_invalid_json_names_the_position() -> None:
    with pytest.raises(InvalidJson, match="line 1"):
        parse_json_body(b'{"event": ')
    with pytest.raises(InvalidJson, match="empty"):
        parse_json_body(b"  ")
    with pytest.raises(InvalidJson, match="UTF-8"):
        parse_json_body(b'{"a": "\xff"}')


def test_empty_placeholders_from_a_halo_template_are_read_as_null() -> None:
    body = parse_json_body(fixture_bytes("guide_empty_values.txt"))
    assert body["Site"] is None and body["Agent"] is None
    assert parse_event(body).ticket.id == 4246


def test_a_byte_order_mark_is_accepted() -> None:
    assert parse_json_body(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "2026-09-25T06:41:08.7895915Z",
            datetime(2026, 9, 25, 6, 41, 8, 789591, tzinfo=timezone.utc),
        ),
        ("2026-09-25T06:41:08", datetime(2026, 9, 25, 6, 41, 8, tzinfo=timezone.utc)),
        ("2026-09-25T06:41:08+02:00", datetime(2026, 9, 25, 4, 41, 8, tzinfo=timezone.utc)),
        ("1900-01-01T00:00:00", None),
        ("1899-12-30T00:00:00", None),
        ("0001-01-01T00:00:00", None),
        ("", None),
        ("yesterday", None),
        (None, None),
        (20260925, None),
    ],
)
def test_halo_dates(value: object, expected: datetime | None) -> None:
    assert parse_halo_date(value) == expected


def test_html_to_text_keeps_text_and_structure() -> None:
    assert html_to_text("a<br/>b<p>c</p>") == "a\nb\nc"
    assert html_to_text("<p>one</p>\n\n\n<p>two</p>") == "one\n\ntwo"
    assert html_to_text("plain &lt;tag&gt;") == "plain <tag>"
    assert html_to_text("<style>p{}</style>   ") is None
    assert html_to_text(None) is None


# --- hostile ticket text: what end users can put into a ticket (e-mail to ticket) ---


def _repeat(pattern: str, length: int = 10_000) -> str:
    return (pattern * (length // len(pattern) + 1))[:length]


@pytest.mark.parametrize(
    ("pattern", "expected_start"),
    [
        ("<x ", "<x <x <x"),
        ("<a\t", "<a <a <a"),
        ('<a b="', '<a b="<a b="'),
        ("<!--", "<!--<!--"),
    ],
)
def test_unterminated_markup_is_kept_as_text(pattern: str, expected_start: str) -> None:
    # These took ~1 s CPU each in HTMLParser (quadratic); bench/html_worst.py has the figures.
    text = html_to_text(_repeat(pattern))
    assert text is not None and text.startswith(expected_start)
    assert len(text) > 5_000  # the text is shown, not swallowed


def test_markup_html_parser_raised_on_is_dropped_and_the_rest_kept() -> None:
    assert html_to_text("Log says <![foo]> then stops") == "Log says then stops"
    assert html_to_text("x<![CDATA[y]]>z <!DOCTYPE html><?php echo 1 ?>w") == "xz w"
    assert html_to_text("a</ b>c</>d") == "acd"


def test_html_edge_cases_read_as_a_person_would() -> None:
    assert html_to_text("a < b and c<5") == "a < b and c<5"
    assert html_to_text("Log says <x then stops") == "Log says <x then stops"
    assert html_to_text('<a title="x > y">link</a> after') == "link after"
    assert html_to_text('<p>Server down</p><img src="x') == 'Server down\n<img src="x'
    # An unclosed quote: the rest is read with tags stripped, its text is kept.
    assert html_to_text('a <b title="open>bold</b> and <i>more</i>') == "a bold and more"
    assert html_to_text("x<SCRIPT>alert(1)</script >y<style>p{}</STYLE>z") == "xyz"
    assert html_to_text("<head><title>t</title></head>body<br>next") == "body\nnext"
    assert html_to_text("<p>unclosed comment <!-- here") == "unclosed comment <!-- here"
    assert html_to_text("before<script>never closed") == "before"


def test_entities_that_would_crash_or_smuggle_controls_are_defused() -> None:
    assert html_to_text("&#" + "1" * 5000 + ";") == "\ufffd"  # html.unescape raised here
    assert html_to_text("&#x" + "f" * 5000) == "\ufffd"
    assert html_to_text("<b>a</b>&#0;b&#x7f;c") == "a\ufffdbc"
    assert html_to_text("<p>line&#13;&#10;next&#12;word&#1;</p>") == "line\nnext word"


def test_strip_tags_is_the_plain_fallback() -> None:
    assert strip_tags("<b>x</b> &amp; <y") == "x & <y"
    assert strip_tags("a <b c='>' d> e") == "a ' d> e"  # crude, but text is never lost


def test_html_tokens_tile_the_input_once() -> None:
    for text in (
        _repeat("<x "),
        _repeat('<a b="'),
        "a<p>b</p><!--c--><script>d</script>e<![f]><g h='>'>i<j",
    ):
        spans = [(token.start, token.end) for token in html_tokens(text)]
        assert spans[0][0] == 0 and spans[-1][1] == len(text)
        assert all(end > start for start, end in spans)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))


def test_control_characters_never_reach_a_text_field() -> None:
    event = parse_event(
        {
            "event": "New Ticket Logged\x00",
            "object_id": 1,
            "message": "m\x1b[31mred",
            "ticket": {
                "summary": "Server\x00 down\x07\r\nnow\x85\x9f\x7f",
                "details": "<p>a\x08b\rc\x0bd</p>",
                "client_name": "Con\u0000toso\u009b",
                "status_name": "\tNew\x0c",
            },
        }
    )
    assert event.event == "new ticket logged"
    assert event.message == "m[31mred"
    ticket = event.ticket
    assert ticket.summary == "Server down\nnow"
    assert ticket.details == "ab\nc d"
    assert ticket.client == "Contoso"
    assert ticket.status_name == "New"


def test_format_characters_that_hide_or_reorder_text_never_reach_a_text_field() -> None:
    """The same cleaner as the SIGNL4 payload's (shared/domain/alert.clean_text): raw, or decoded from
    an entity in HTML details."""
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    ticket = parse_event(
        {
            "id": 1,
            "summary": "Pay \u202eexe.fdp\u202c invoice\u2028now",
            "details": "<p>&#x202E;rev&#8236; zero&#x200B;width&#xFEFF;&#8288; a&#x2028;b</p>"
            f"<p>\u2066{family}\u2069</p>",
            "client_name": "\ufeff\u200bContoso\u2060",
        }
    ).ticket
    assert ticket.summary == "Pay exe.fdp invoice\nnow"
    assert ticket.details == f"rev zerowidth a\nb\n\n{family}"  # ZWJ kept: one emoji
    assert ticket.client == "Contoso"


@pytest.mark.parametrize(
    "body",
    [
        {"event": "new ticket logged", "Event": "closed", "object_id": 1},
        {"event": "x", "object_id": 1, "ticket": {"hasbeenclosed": False, "HasBeenClosed": True}},
        {"X-S4-ExternalID": "HaloPSA-1", "x-s4-status": "resolved", "X-S4-Status": "new"},
        {"ticket": {"id": 3, "ID": 4, "summary": "s"}},
    ],
)
def test_keys_that_differ_only_in_case_are_ambiguous(body: dict) -> None:
    with pytest.raises(UnsupportedPayload, match="differ only in case"):
        parse_event(body)


def test_a_key_given_twice_is_ambiguous_and_named_without_its_value() -> None:
    body = parse_json_body(
        b'{"event": "closed", "object_id": 1, "event": "new ticket logged SECRET-ish"}'
    )
    with pytest.raises(UnsupportedPayload, match="'event' appears more than once") as caught:
        parse_event(body)
    assert "SECRET-ish" not in caught.value.message
    ticket = b'{"event": "x", "object_id": 1, "ticket": {"summary": "a", "summary": "b"}}'
    with pytest.raises(UnsupportedPayload, match="'summary' appears more than once"):
        parse_event(parse_json_body(ticket))


def test_a_duplicate_in_an_object_the_relay_does_not_read_costs_nothing() -> None:
    body = parse_json_body(
        b'{"event": "new ticket logged", "object_id": 5, "ticket": {"summary": "s",'
        b' "customfields": [{"name": "a", "name": "b", "Name": "c"}]}}'
    )
    assert parse_event(body).ticket.summary == "s"


def test_the_placeholder_repair_leaves_strings_alone() -> None:
    body = parse_json_body(
        b'{"Title": "Disk C: , D: ]", "Message": "say \\"x: }\\" ok: ,", "Site": , "Agent":\n}'
    )
    assert body == {
        "Title": "Disk C: , D: ]",
        "Message": 'say "x: }" ok: ,',
        "Site": None,
        "Agent": None,
    }
    with pytest.raises(InvalidJson, match="line 1"):
        parse_json_body(b'{"Title": "never closed: , "Site": ,')
    with pytest.raises(InvalidJson):
        parse_json_body(b'"' + b'\\"' * 200_000 + b"\\")


# --- through the real HTTP function, SIGNL4 on loopback ---


def _post(functions: dict, body: object) -> tuple[int, dict]:
    response, queued = call_halopsa(functions, http_post(body))
    assert queued == []
    return answer(response)


def test_markup_that_crashed_html_parser_still_pages(
    functions: dict, signl4: Signl4Fake, live_env: dict
) -> None:
    ticket = {"summary": "Disk\x07 full", "details": "Log says <![foo]> then stops\x00\r\n!"}
    code, body = _post(
        functions, {"event": "New Ticket Logged", "object_id": 4250, "ticket": ticket}
    )
    assert (code, body["result"]) == (200, "sent")
    [sent] = signl4.events
    assert sent["Message"] == "Log says then stops\n!"
    assert sent["Title"] == "Disk full"
    assert not any(
        0 <= ord(char) < 32 and char not in "\n\t" for char in json.dumps(sent, ensure_ascii=False)
    )


@pytest.mark.parametrize(
    ("body", "status", "code", "names"),
    [
        (
            {"event": "x", "object_id": 1, "ticket": {"hasbeenclosed": "Y-ish"}},
            422,
            "invalid_field",
            "hasbeenclosed",
        ),
        (
            b'{"event": "closed", "Event": "new ticket logged", "object_id": 1}',
            400,
            "unsupported_payload",
            "'Event'",
        ),
        (
            b'{"event": "closed", "object_id": 1, "object_id": 2}',
            400,
            "unsupported_payload",
            "'object_id'",
        ),
    ],
)
def test_ambiguous_input_is_answered_not_read(
    functions: dict,
    signl4: Signl4Fake,
    live_env: dict,
    body: object,
    status: int,
    code: str,
    names: str,
) -> None:
    answered_status, answered = _post(functions, body)
    assert answered_status == status and answered["error"] == code and names in answered["message"]
    assert signl4.events == []


# --- rules pinned one by one (issue #11: each of these could break with no test noticing) ---


def _webhook_ticket(**ticket: object) -> Ticket:
    return parse_event({"event": "x", "object_id": 1, "ticket": ticket}).ticket


@pytest.mark.parametrize(
    ("fields", "closed", "status_id", "status_name"),
    [
        ({"HasBeenClosed": "true"}, True, None, "New"),
        ({"HasBeenClosed": "False"}, False, None, "New"),
        ({"Status": "9"}, False, 9, None),
        ({"Status": 9}, False, 9, None),
        ({"Status": " Closed "}, False, None, "Closed"),
    ],
)
def test_guide_body_closed_flag_and_numeric_status(
    fields: dict, closed: bool, status_id: int | None, status_name: str | None
) -> None:
    body = {"X-S4-ExternalID": "HaloPSA-4242", "Title": "t", "Status": "New", **fields}
    ticket = parse_event(body).ticket
    assert (ticket.closed, ticket.status_id, ticket.status_name) == (closed, status_id, status_name)


@pytest.mark.parametrize("fields", [{"HasBeenClosed": "true"}, {"Status": "9"}])
def test_a_closed_guide_body_resolves(fields: dict) -> None:
    body = {"X-S4-ExternalID": "HaloPSA-4242", "Title": "t", "Status": "New", **fields}
    decision = decide(parse_event(body), RelaySettings.from_env({}))
    assert (decision.action, decision.status) == ("send", AlertStatus.RESOLVED)


def test_x_s4_status_inside_a_webhook_envelope() -> None:
    body = {"event": "ticket updated", "object_id": 5, "X-S4-Status": "Resolved"}
    event = parse_event(body)
    assert (event.shape, event.requested_status) == ("webhook", AlertStatus.RESOLVED)
    with pytest.raises(InvalidStatus) as caught:
        parse_event({**body, "X-S4-Status": "closed"})
    assert caught.value.status_code == 422
    assert caught.value.message == "X-S4-Status must be new, acknowledged or resolved, not 'closed'"


def test_a_webhook_with_object_id_and_no_event_is_an_open_ticket_without_event_information() -> (
    None
):
    event = parse_event({"object_id": 77, "message": "m", "id": "guid-1"})
    assert (event.shape, event.event, event.ticket.id) == ("webhook", None, 77)
    assert (event.message, event.delivery_id, event.requested_status) == ("m", "guid-1", None)
    decision = decide(event, RelaySettings.from_env({}))
    assert decision.status is AlertStatus.NEW
    assert decision.reason == "an open ticket in a webhook body without event information"


@pytest.mark.parametrize(
    ("ticket", "expected"),
    [
        ({"status": {"name": "In Progress", "id": 2}}, (None, "In Progress")),
        ({"status": {"Name": "Waiting"}}, (None, "Waiting")),
        ({"status": 2}, (2, None)),
        ({"status": "3"}, (3, None)),
        ({"status": "Open"}, (None, "Open")),
        ({"status_id": 4, "status": 5}, (4, None)),
        ({"status_id": 4, "status_name": "Pending", "status": "Other"}, (4, "Pending")),
    ],
)
def test_halo_status_as_object_number_or_name(ticket: dict, expected: tuple) -> None:
    parsed = _webhook_ticket(**ticket)
    assert (parsed.status_id, parsed.status_name) == expected


@pytest.mark.parametrize(
    ("ticket", "expected"),
    [
        ({"priority": {"name": "P1 - Critical", "priorityid": 4}}, (4, "P1 - Critical")),
        ({"priority": 3}, (3, None)),
        ({"priority": "2"}, (2, None)),
        ({"priority": "P2"}, (None, "P2")),
        ({"priority_id": 1, "priority": {"name": "P1", "priorityid": 4}}, (1, "P1")),
        ({"priority_name": "Urgent", "priority": "P2"}, (None, "Urgent")),
        ({"priority_id": 0}, (0, None)),
    ],
)
def test_halo_priority_as_object_number_or_name(ticket: dict, expected: tuple) -> None:
    parsed = _webhook_ticket(**ticket)
    assert (parsed.priority_id, parsed.priority) == expected


@pytest.mark.parametrize(
    ("ticket", "field", "expected"),
    [
        ({"details_html": "<p>from html</p>"}, "details", "from html"),
        ({"details": "plain", "details_html": "<p>html</p>"}, "details", "plain"),
        ({"details": "", "details_html": "<p>html</p>"}, "details", None),
        (
            {"tickettype_name": "Incident", "tickettype": "T", "type": "X"},
            "ticket_type",
            "Incident",
        ),
        ({"tickettype": "Problem", "type": "X"}, "ticket_type", "Problem"),
        ({"type": "Change"}, "ticket_type", "Change"),
        ({"client_name": "Contoso", "client": "C"}, "client", "Contoso"),
        ({"client": "Fabrikam"}, "client", "Fabrikam"),
        ({"client": {"name": "Northwind"}}, "client", "Northwind"),
        ({"site_name": "HQ", "site": "S"}, "site", "HQ"),
        ({"site": "Branch"}, "site", "Branch"),
        ({"agent_name": "Alex", "agent": "A"}, "agent", "Alex"),
        ({"agent": "Bo"}, "agent", "Bo"),
        ({"user_name": "Sam", "user": "U"}, "user", "Sam"),
        ({"user": "Kim"}, "user", "Kim"),
        ({"team": "NOC", "team_name": "T"}, "team", "NOC"),
        ({"team_name": "Service Desk"}, "team", "Service Desk"),
        ({"team_id": "12"}, "team_id", 12),
        ({"agent_id": 7}, "agent_id", 7),
        ({"reference": " IN-1 "}, "reference", "IN-1"),
        ({"summary": ["not", "text"]}, "summary", None),
    ],
)
def test_webhook_ticket_fields_and_their_fallbacks(
    ticket: dict, field: str, expected: object
) -> None:
    assert getattr(_webhook_ticket(**ticket), field) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"Client": "Contoso", "Organisation": "O", "OppCompanyName": "P"}, "Contoso"),
        ({"Organisation": "Org", "OppCompanyName": "P"}, "Org"),
        ({"OppCompanyName": "Prospect"}, "Prospect"),
        ({"Client": "", "Organisation": None, "OppCompanyName": "Prospect"}, "Prospect"),
    ],
)
def test_guide_body_client_falls_back_to_organisation(fields: dict, expected: str) -> None:
    body = {"X-S4-ExternalID": "HaloPSA-1", "Title": "t", **fields}
    assert parse_event(body).ticket.client == expected


def test_guide_body_fields() -> None:
    body = {
        "X-S4-ExternalID": "HaloPSA-1",
        "Title": "Disk full",
        "Message": "<p>msg</p>",
        "Priority": "3",
        "Type": "Incident",
        "Site": "HQ",
        "Team": "NOC",
        "Agent": "Alex",
        "Reference": "IN-7",
        "DateOccurred": "2026-09-25T06:40:00Z",
        "DateClosed": "2026-09-25T07:40:00Z",
    }
    ticket = parse_event(body).ticket
    assert (ticket.summary, ticket.details, ticket.priority_id, ticket.priority) == (
        "Disk full",
        "msg",
        3,
        "3",
    )
    assert (ticket.ticket_type, ticket.site, ticket.team, ticket.agent, ticket.reference) == (
        "Incident",
        "HQ",
        "NOC",
        "Alex",
        "IN-7",
    )
    assert ticket.date_occurred == datetime(2026, 9, 25, 6, 40, tzinfo=timezone.utc)
    assert ticket.date_closed == datetime(2026, 9, 25, 7, 40, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"Title": "t", "ticket_id": 5}, 5),
        ({"Title": "t", "id": "6"}, 6),
        ({"Title": "t", "X-S4-ExternalID": " HALOPSA-7 ", "id": 8}, 7),
        ({"Title": "t", "X-S4-ExternalID": "12", "id": 8}, 12),
        ({"Title": "t", "X-S4-ExternalID": "", "ticket_id": 9}, 9),
        ({"Title": "t", "X-S4-ExternalID": None, "ticket_id": 10, "id": 11}, 10),
    ],
)
def test_guide_body_ticket_id_candidates(body: dict, expected: int) -> None:
    assert parse_event(body).ticket.id == expected


@pytest.mark.parametrize(
    ("object_id", "expected"),
    [
        (1, 1),
        (2**53, 2**53),
        ("9007199254740992", 2**53),
        (123.0, 123),
        (" 42 ", 42),
        ("0042", 42),
    ],
)
def test_ticket_id_boundaries_accepted(object_id: object, expected: int) -> None:
    assert parse_event({"event": "x", "object_id": object_id}).ticket.id == expected


@pytest.mark.parametrize(
    "object_id",
    [0, "0", -1, 2**53 + 1, "9007199254740993", "12345678901234567", 123.5, "1.0", "1e3", "+5"],
)
def test_ticket_id_boundaries_refused(object_id: object) -> None:
    with pytest.raises(MissingTicketId) as caught:
        parse_event({"event": "x", "object_id": object_id})
    assert caught.value.message == (
        f"object_id {str(object_id)[:40]!r} is not a HaloPSA ticket number"
    )


def test_missing_ticket_id_names_where_it_looked() -> None:
    with pytest.raises(MissingTicketId) as webhook:
        parse_event({"event": "x", "object_id": "  ", "ticket": {"summary": "s"}})
    assert (
        webhook.value.message
        == "no ticket id in the body (looked at object_id, ticket.id, ticket_id)"
    )
    with pytest.raises(MissingTicketId) as guide:
        parse_event({"Title": "t"})
    assert (
        guide.value.message == "no ticket id in the body (looked at X-S4-ExternalID, ticket_id, id)"
    )
    with pytest.raises(MissingTicketId) as ticket:
        parse_event({"ticket": {"summary": "s"}})
    assert ticket.value.message == "no ticket id in the body (looked at ticket.id, ticket_id)"


def test_a_ticket_id_over_40_characters_is_cut_in_the_message() -> None:
    with pytest.raises(MissingTicketId) as caught:
        parse_event({"event": "x", "object_id": "x" * 100})
    assert caught.value.message == f"object_id {'x' * 40!r} is not a HaloPSA ticket number"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-09-25T06:41:08z", datetime(2026, 9, 25, 6, 41, 8, tzinfo=timezone.utc)),
        (" 2026-09-25T06:41:08Z ", datetime(2026, 9, 25, 6, 41, 8, tzinfo=timezone.utc)),
        (
            "2026-09-25T06:41:08.1234567",
            datetime(2026, 9, 25, 6, 41, 8, 123456, tzinfo=timezone.utc),
        ),
        ("   ", None),
    ],
)
def test_more_halo_dates(value: object, expected: datetime | None) -> None:
    assert parse_halo_date(value) == expected


def test_html_with_two_script_blocks_drops_both() -> None:
    text = "a<script>x()</script>b<script type='t'>y()</script>c<style>s</style>d"
    assert html_to_text(text) == "abcd"
    assert html_to_plain(text) == "abcd"


def test_html_to_text_folds_spaces_and_blank_lines() -> None:
    assert html_to_text("a \t\u00a0 b\r\nc\n \n\n\nd") == "a b\nc\n\nd"
    assert html_to_text("  x  ") == "x"
    assert html_to_text("x\ry") == "x\ny"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("maybe", "'maybe'"),
        ("m" * 20, repr("m" * 20)),
        ("m" * 21, "a string of 21 characters"),
        (2, "2"),
        (0.5, "0.5"),
        (1.2345678901234567e300, "a JSON number"),
        ([1], "a JSON array"),
        ({"a": 1}, "a JSON object"),
    ],
)
def test_an_invalid_flag_is_named_with_a_short_preview(value: object, shown: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_event({"event": "x", "object_id": 1, "ticket": {"hasbeenclosed": value}})
    assert caught.value.message == (
        f"hasbeenclosed must be true or false (or 1/0, yes/no), not {shown}"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            [1],
            "expected a JSON object (a Halo webhook, the SIGNL4 guide body or a ticket), got list",
        ),
        (
            None,
            "expected a JSON object (a Halo webhook, the SIGNL4 guide body or a ticket), got null",
        ),
        (
            {"hello": "world"},
            "the body is neither a Halo webhook (event/object_id), the SIGNL4 guide body "
            "(Title/X-S4-ExternalID) nor a Halo ticket (id with summary/status_id)",
        ),
    ],
)
def test_unsupported_payload_messages(body: object, message: str) -> None:
    with pytest.raises(UnsupportedPayload) as caught:
        parse_event(body)
    assert caught.value.message == message and caught.value.status_code == 400


def test_key_messages_name_the_keys_cut_at_40_characters() -> None:
    long_key = "k" * 50
    with pytest.raises(UnsupportedPayload) as caught:
        parse_event({long_key: 1, long_key.upper(): 2, "object_id": 1})
    assert caught.value.message == (
        f"the keys {'k' * 40 + '...'!r} and {'K' * 40 + '...'!r} differ only in case; "
        "the relay does not guess which value HaloPSA meant"
    )
    with pytest.raises(UnsupportedPayload) as twice:
        parse_event(parse_json_body(b'{"object_id": 1, "object_id": 2}'))
    assert twice.value.message == (
        "the key 'object_id' appears more than once in one object; "
        "the relay does not guess which value HaloPSA meant"
    )


@pytest.mark.parametrize(
    "key", ["event", "object_id", "webhook_id", "notification_id", "escmsg_id"]
)
def test_each_webhook_key_makes_a_webhook(key: str) -> None:
    event = parse_event({key: "7" if key == "object_id" else "x", "ticket_id": 7})
    assert (event.shape, event.ticket.id) == ("webhook", 7)


@pytest.mark.parametrize(
    "key",
    [
        "summary",
        "details",
        "status_id",
        "hasbeenclosed",
        "tickettype_id",
        "client_id",
        "dateoccurred",
    ],
)
def test_each_ticket_key_with_an_id_makes_a_bare_ticket(key: str) -> None:
    event = parse_event({"id": 7, key: None})
    assert (event.shape, event.ticket.id) == ("ticket", 7)


def test_a_wrapped_ticket_must_be_alone() -> None:
    with pytest.raises(UnsupportedPayload):
        parse_event({"ticket": {"id": 7, "summary": "s"}, "extra": 1})
    assert parse_event({"Ticket": {"ID": 7}}).ticket.id == 7


def test_invalid_json_messages() -> None:
    with pytest.raises(InvalidJson) as caught:
        parse_json_body(b'{"event": ')
    assert caught.value.message == (
        "the request body is not valid JSON (line 1, column 11: Expecting value)"
    )
    with pytest.raises(InvalidJson) as empty:
        parse_json_body(b"")
    assert empty.value.message == "the request body is empty; HaloPSA must send a JSON body"
    with pytest.raises(InvalidJson) as binary:
        parse_json_body(b"\xff")
    assert binary.value.message == "the request body is not UTF-8 text"
    with pytest.raises(InvalidJson) as deep:
        parse_json_body(b"[" * 100_000 + b"]" * 100_000)
    assert deep.value.message == "the request body is not usable JSON (RecursionError)"
    # The error position is the original body's, not the repaired one's.
    with pytest.raises(InvalidJson) as repaired:
        parse_json_body(b'{"Site": , "x": }}')
    assert repaired.value.message.startswith(
        "the request body is not valid JSON (line 1, column 10:"
    )


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<a href=x>link</a><br>next", "link\nnext"),  # an unquoted value
        ("<a b=>x<br>y", "x\ny"),  # an empty one
        ("<img src=a b=c>t<p>u", "t\nu"),
        ('<a b = "q>r">s</a><br>t', "s\nt"),  # spaces around "=", ">" inside the quotes
        ("<a b='it>s'>c</a><br>d", "c\nd"),
    ],
)
def test_attribute_values_quoted_or_not_end_the_tag_where_html_does(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_keys_for_the_settings_lists_are_ids_and_case_folded_names() -> None:
    ticket = Ticket(id=1, status_id=0, status_name="New", priority_id=3, team="NOC", team_id=None)
    assert ticket.status_keys() == {"0", "new"}
    assert ticket.priority_keys() == {"3"}
    assert ticket.team_keys() == {"noc"}
    assert Ticket(id=1).status_keys() == frozenset()
    assert ticket.external_id == "HaloPSA-1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", None),
        ("  ", None),
        (None, None),
        (" Resolved ", AlertStatus.RESOLVED),
        ("NEW", AlertStatus.NEW),
    ],
)
def test_x_s4_status_blank_is_not_given_and_any_case_is_read(
    value: object, expected: AlertStatus | None
) -> None:
    body = {"X-S4-ExternalID": "HaloPSA-1", "X-S4-Status": value}
    assert parse_event(body).requested_status is expected


def test_an_unknown_x_s4_status_is_named_cut_at_40_characters() -> None:
    with pytest.raises(InvalidStatus) as caught:
        parse_event({"X-S4-ExternalID": "HaloPSA-1", "X-S4-Status": "s" * 100})
    assert (
        caught.value.message
        == f"X-S4-Status must be new, acknowledged or resolved, not {'s' * 40!r}"
    )
    with pytest.raises(InvalidStatus) as kind:
        parse_event({"X-S4-ExternalID": "HaloPSA-1", "X-S4-Status": 3})
    assert kind.value.message == "X-S4-Status must be a string, not int"


@pytest.mark.parametrize(
    ("external_id", "expected"),
    [(12, 12), ("HaloPSA-13", 13), ("halopsa-14", 14), (" 15 ", 15), (16.0, 16)],
)
def test_the_external_id_is_prefixed_or_a_bare_number(external_id: object, expected: int) -> None:
    assert parse_event({"X-S4-ExternalID": external_id, "Title": "t"}).ticket.id == expected


def test_entities_alone_are_decoded_and_text_without_markup_is_kept() -> None:
    assert html_to_text("fish &amp; chips") == "fish & chips"
    assert html_to_text("a > b") == "a > b"
    assert html_to_text("x &lt;y") == "x <y"


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<head><head>x</head>y</head>z", "z"),  # head inside head: hidden until the last one
        ('<a b="x">one</a> <i c="y">two</i>', "one two"),  # each value ends at its own quote
        ('<a b="x>">t', "t"),  # a value ending in ">"
        ('<a b="x=">t', "t"),  # a value ending in "="
    ],
)
def test_nesting_and_quoted_values(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_tokens_of_text_that_ends_in_a_tag_or_in_text() -> None:
    assert list(html_tokens("a<p>")) == [Token("text", 0, 1), Token("start", 1, 4, "p")]
    assert list(html_tokens("a<p>b")) == [
        Token("text", 0, 1),
        Token("start", 1, 4, "p"),
        Token("text", 4, 5),
    ]
    assert list(html_tokens("")) == []


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("a<!--b-->c", [("text", 0, 1), ("markup", 1, 9), ("text", 9, 10)]),
        (
            "<!---->x<!--y-->z",
            [("markup", 0, 7), ("text", 7, 8), ("markup", 8, 16), ("text", 16, 17)],
        ),
        ("a<!--b", [("text", 0, 1), ("tail", 1, 6)]),
        ("<script></script>", [("start", 0, 8, "script"), ("end", 8, 17, "script")]),
        (
            "a<script>x</script>b",
            [
                ("text", 0, 1),
                ("start", 1, 9, "script"),
                ("raw", 9, 10),
                ("end", 10, 19, "script"),
                ("text", 19, 20),
            ],
        ),
        (
            "a<?php x?>b</ c>d",
            [
                ("text", 0, 1),
                ("markup", 1, 10),
                ("text", 10, 11),
                ("markup", 11, 16),
                ("text", 16, 17),
            ],
        ),
        ("a<script/>b", [("text", 0, 1), ("start", 1, 10, "script"), ("text", 10, 11)]),
        ("<!>x", [("markup", 0, 3), ("text", 3, 4)]),
        ("a<!x", [("text", 0, 1), ("tail", 1, 4)]),
        ("a</ x", [("text", 0, 1), ("tail", 1, 5)]),
    ],
)
def test_tokens_name_each_kind(html: str, expected: list[tuple]) -> None:
    assert list(html_tokens(html)) == [Token(*token) for token in expected]


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("a<!-- x > y -->c", "ac"),  # a comment ends at "-->", not at the first ">"
        ("x-->y<!--z-->w", "x-->yw"),  # a "-->" before the comment is text
        ("a<script/>b<br>c", "ab\nc"),  # a self-closed script hides nothing
    ],
)
def test_comments_and_self_closed_scripts(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_a_field_is_cut_at_10000_characters_and_ids_are_json_safe_both_ways() -> None:
    assert _webhook_ticket(summary="s" * 10_001).summary == "s" * 10_000
    assert _webhook_ticket(status_id=-(2**53)).status_id == -(2**53)
    assert _webhook_ticket(status_id=-(2**53) - 1).status_id is None
    assert _webhook_ticket(status_id=2**53 + 1).status_id is None


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (12345678901234567890, "12345678901234567890"),  # 20 characters: shown
        (123456789012345678901, "a JSON number"),  # 21: only its kind
    ],
)
def test_a_number_is_previewed_up_to_20_characters(value: int, shown: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_event({"event": "x", "object_id": 1, "ticket": {"hasbeenclosed": value}})
    assert caught.value.message.endswith(f", not {shown}")


@pytest.mark.parametrize(
    ("length", "shown"),
    [(40, "k" * 40), (41, "k" * 40 + "...")],
)
def test_a_key_is_named_up_to_40_characters(length: int, shown: str) -> None:
    key = "k" * length
    with pytest.raises(UnsupportedPayload) as caught:
        parse_event({key: 1, key.upper(): 2, "object_id": 1})
    assert caught.value.message.startswith(f"the keys {shown!r} and ")


@pytest.mark.parametrize(
    "body",
    [
        {"ticket": {"ticket_id": 5, "summary": "s"}},
        {"id": "", "ticket_id": "5", "summary": "s"},
    ],
)
def test_a_ticket_without_its_id_falls_back_to_ticket_id(body: dict) -> None:
    assert parse_event(body).ticket.id == 5


def test_spaces_around_a_line_break_are_dropped() -> None:
    assert html_to_text("a  \n  b") == "a\nb"


@pytest.mark.parametrize(
    ("body", "query", "shape", "ticket_id"),
    [
        ({"X-S4-ExternalID": "HaloPSA-5", "event": "closed"}, {}, "guide", 5),
        ({"X-S4-Status": "resolved", "ticket_id": 5}, {}, "guide", 5),
        ({"Title": "t", "object_id": 9, "id": 5}, {}, "guide", 5),
        ({"X-S4-Status": "resolved", "object_id": 5, "id": "guid"}, {}, "webhook", 5),
        ({"id": 5, "summary": "s"}, {"ExtIDParam": "trigger_id"}, "ticket", 5),
        ({"trigger_id": "HaloPSA-5", "summary": "s"}, {"ExtIDParam": "trigger_id"}, "guide", 5),
    ],
)
def test_which_shape_a_body_is_read_as(body: dict, query: dict, shape: str, ticket_id: int) -> None:
    event = parse_event(body, parse_signal_params(query))
    assert (event.shape, event.ticket.id) == (shape, ticket_id)


@pytest.mark.parametrize(
    ("body", "ids"),
    [
        (fixture_json("webhook_new_full.json"), (1, 15, 20)),
        ({"id": 7, "tickettype_id": "3", "client_id": 4.0, "site_id": 5}, (3, 4, 5)),
        ({"id": 7, "summary": "s"}, (None, None, None)),
    ],
)
def test_type_client_and_site_ids_are_read_for_routing(body: dict, ids: tuple) -> None:
    """RELAY_ROUTES rules match a ticket's type, client and site by id (shared/domain/routing.py)."""
    ticket = parse_event(body).ticket
    assert (ticket.ticket_type_id, ticket.client_id, ticket.site_id) == ids
