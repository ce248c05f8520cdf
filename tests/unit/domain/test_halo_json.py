"""Reading a Halo body (shared/domain/halo.parse_json_body, then parse_event's key lookup): the
JSON a Halo template writes, the bodies Python cannot hold, and keys given twice or differing
only in case, which the relay refuses rather than guess (a clear 4xx, never a traceback)."""

from __future__ import annotations

import pytest

from shared.domain.halo import parse_event, parse_json_body
from shared.errors import InvalidJson, UnsupportedPayload
from tests.conftest import Signl4Fake, answer, call_halopsa, fixture_bytes, http_post

NOT_JSON = "the request body is not valid JSON"
EMPTY = "the request body is empty; HaloPSA must send a JSON body"
NOT_UTF8 = "the request body is not UTF-8 text"
UNUSABLE = "the request body is not usable JSON"


# --- JSON the relay cannot read: named, never a crash ---


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"event": ', f"{NOT_JSON} (line 1, column 11: Expecting value)"),
        (b"", EMPTY),
        (b"  ", EMPTY),
        (b"\xff", NOT_UTF8),
        (b'{"a": "\xff"}', NOT_UTF8),
        # JSON Python cannot hold: too deep for its parser, a number too long to convert
        (b"[" * 100_000 + b"]" * 100_000, f"{UNUSABLE} (RecursionError)"),
        (b'{"object_id": ' + b"9" * 5000 + b"}", f"{UNUSABLE} (ValueError)"),
    ],
    ids=["position", "empty", "blank", "binary", "not-utf8", "too-deep", "long-number"],
)
def test_a_body_that_is_not_json_is_named(body: bytes, message: str) -> None:
    with pytest.raises(InvalidJson) as caught:
        parse_json_body(body)
    assert caught.value.message == message
    assert (caught.value.code, caught.value.status_code) == ("invalid_json", 400)


def test_the_error_position_is_the_original_bodys_not_the_repaired_ones() -> None:
    with pytest.raises(InvalidJson) as repaired:
        parse_json_body(b'{"Site": , "x": }}')
    assert repaired.value.message.startswith(f"{NOT_JSON} (line 1, column 10:")


# --- what a Halo template writes ---


def test_empty_placeholders_from_a_halo_template_are_read_as_null() -> None:
    body = parse_json_body(fixture_bytes("guide_empty_values.txt"))
    assert body["Site"] is None and body["Agent"] is None
    assert parse_event(body).ticket.id == 4246


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


def test_a_byte_order_mark_is_accepted() -> None:
    assert parse_json_body(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}


# --- ambiguous keys: refused, named without their values ---


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
    with pytest.raises(UnsupportedPayload) as twice:
        parse_event(parse_json_body(b'{"object_id": 1, "object_id": 2}'))
    assert twice.value.message == (
        "the key 'object_id' appears more than once in one object; "
        "the relay does not guess which value HaloPSA meant"
    )


def test_a_duplicate_in_an_object_the_relay_does_not_read_costs_nothing() -> None:
    body = parse_json_body(
        b'{"event": "new ticket logged", "object_id": 5, "ticket": {"summary": "s",'
        b' "customfields": [{"name": "a", "name": "b", "Name": "c"}]}}'
    )
    assert parse_event(body).ticket.summary == "s"


@pytest.mark.parametrize(
    ("length", "shown"),
    [(40, "k" * 40), (41, "k" * 40 + "..."), (50, "k" * 40 + "...")],
)
def test_keys_differing_in_case_are_named_up_to_40_characters(length: int, shown: str) -> None:
    key = "k" * length
    with pytest.raises(UnsupportedPayload) as caught:
        parse_event({key: 1, key.upper(): 2, "object_id": 1})
    assert caught.value.message == (
        f"the keys {shown!r} and {shown.upper()!r} differ only in case; "
        "the relay does not guess which value HaloPSA meant"
    )


# --- through the real HTTP function, SIGNL4 on loopback ---


def _post(functions: dict, body: object) -> tuple[int, dict]:
    response, queued = call_halopsa(functions, http_post(body))
    assert queued == []
    return answer(response)


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
