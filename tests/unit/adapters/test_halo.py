"""shared/adapters/halo.py's pure parts, called directly: Halo's answers mapped to the relay's
outcome, Halo's own error text (what the engineer reads in the poison queue) and how long a
token is used. The calls themselves, against a loopback Halo, are in tests/suites/two_way.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.adapters.halo import HaloClient, _action_id, _json, forget_tokens, fresh_for
from shared.errors import HaloRejected, HaloUnavailable
from shared.settings import RelaySettings
from testkit.halo_fake import CLIENT_ID, CLIENT_SECRET, HaloFake, halo_fixture  # noqa: F401

ENV = {
    "HALO_BASE_URL": "https://contoso.halopsa.com/",
    "HALO_CLIENT_ID": CLIENT_ID,
    "HALO_CLIENT_SECRET": CLIENT_SECRET,
}


def _client(**overrides: str) -> HaloClient:
    return HaloClient(RelaySettings.from_env({**ENV, **overrides}))


def _body(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_without_two_way_settings_there_is_no_client() -> None:
    with pytest.raises(HaloRejected) as raised:
        HaloClient(RelaySettings.from_env({"HALO_BASE_URL": ENV["HALO_BASE_URL"]}))
    assert raised.value.message == "two-way sync is off (HALO_CLIENT_ID/HALO_CLIENT_SECRET)"
    assert raised.value.remote_status is None


def test_the_base_url_loses_its_trailing_slash() -> None:
    client = _client()
    assert (client.base, client.calls) == ("https://contoso.halopsa.com", 0)
    # Only slashes go: a tenant path ending in a letter keeps it.
    assert _client(HALO_BASE_URL="https://halo.example.com/MSPX/").base == (
        "https://halo.example.com/MSPX"
    )


# --- Halo's answer to an API call ---


@pytest.mark.parametrize(
    ("status", "data", "expected"),
    [
        (200, _body([{"id": 7}]), [{"id": 7}]),
        (201, _body({"id": 1001}), {"id": 1001}),
        (299, _body(1), 1),
        (204, b"", None),
        (200, b"<html>ok</html>", None),  # not JSON: nothing to read, still a success
    ],
)
def test_a_2xx_gives_halos_json(status: int, data: bytes, expected: Any) -> None:
    assert _client()._answer("GET /api/Agent", status, data) == expected


@pytest.mark.parametrize("status", [429, 500, 503, 599])
def test_429_and_5xx_after_the_retries_are_unavailable(status: int) -> None:
    with pytest.raises(HaloUnavailable) as raised:
        _client()._answer("POST /api/Actions", status, _body({"message": "busy"}))
    assert raised.value.message == f"Halo answered HTTP {status} to POST /api/Actions"
    assert raised.value.remote_status == status and raised.value.status_code == 503


@pytest.mark.parametrize("status", [199, 300, 301, 400, 401, 403, 404, 600])
def test_any_other_answer_is_refused_with_halos_text(status: int) -> None:
    with pytest.raises(HaloRejected) as raised:
        _client()._answer("POST /api/Actions", status, _body({"message": "No access"}))
    assert raised.value.message == f"Halo refused POST /api/Actions with HTTP {status}: No access"
    assert raised.value.remote_status == status and raised.value.status_code == 502


@pytest.mark.parametrize(
    ("data", "suffix"),
    [
        # The first of these fields that has a value, in this order.
        (
            _body(
                {
                    "title": "t",
                    "error": "e",
                    "error_description": "d",
                    "Message": "M",
                    "message": "m",
                }
            ),
            ": m",
        ),
        (_body({"title": "t", "error": "e", "error_description": "d", "Message": "M"}), ": M"),
        (_body({"title": "t", "error": "e", "error_description": "d", "message": ""}), ": d"),
        (_body({"title": "t", "error": "invalid_client"}), ": invalid_client"),
        (_body({"title": "Not Found", "message": None}), ": Not Found"),
        (_body({"status": 400, "detail": "d"}), ""),
        (_body({"message": {"nested": "x"}}), ""),
        (_body({"message": 12}), ": 12"),
        (_body("plain JSON text"), ": plain JSON text"),
        (_body(404), ": 404"),
        (_body(["a list"]), ""),
        (b"  Access denied\n", ": Access denied"),  # not JSON: the text itself
        (b"Access \xff denied", ": Access \ufffd denied"),  # whatever its bytes
        (b"   ", ""),
        (b"", ""),
        (b"null", ": null"),  # as it came
    ],
)
def test_halos_error_text_is_read_from_its_usual_fields(data: bytes, suffix: str) -> None:
    with pytest.raises(HaloRejected) as raised:
        _client()._answer("GET /api/Agent", 400, data)
    assert raised.value.message == f"Halo refused GET /api/Agent with HTTP 400{suffix}"


def test_halos_error_text_is_cut_at_200_characters() -> None:
    with pytest.raises(HaloRejected) as raised:
        _client()._answer("GET /api/Agent", 400, _body({"message": "x" * 199 + "yz"}))
    assert raised.value.message.endswith(f"HTTP 400: {'x' * 199}y")


def test_halos_error_text_is_scrubbed_of_the_client_secret_then_cut() -> None:
    text = "x" * 190 + CLIENT_SECRET + " tail"
    with pytest.raises(HaloRejected) as raised:
        _client()._answer("POST /api/Actions", 400, _body({"error_description": text}))
    assert raised.value.message.endswith("HTTP 400: " + "x" * 190 + "*** tail")


def test_halos_error_text_is_withheld_when_a_piece_of_a_secret_survives() -> None:
    entities = "".join(f"&#x{ord(c):x};" for c in CLIENT_SECRET)  # scrub() does not know these
    with pytest.raises(HaloRejected) as raised:
        _client()._answer("POST /api/Actions", 400, _body({"message": f"bad {entities}"}))
    assert raised.value.message == (
        "Halo refused POST /api/Actions with HTTP 400: Halo's error text withheld "
        "(it echoed a secret)"
    )


def test_halos_error_text_is_scrubbed_of_the_access_token(halo: HaloFake) -> None:
    client = _client(HALO_BASE_URL=halo.base_url, HALO_AUTH_URL=f"{halo.base_url}/auth")
    token = client.fresh_token()
    try:
        with pytest.raises(HaloRejected) as raised:
            client._answer(
                "GET /api/Agent", 401, _body({"message": f"bearer {token} is not valid"})
            )
        assert (
            raised.value.message
            == "Halo refused GET /api/Agent with HTTP 401: bearer *** is not valid"
        )
    finally:
        forget_tokens()


# --- small rules ---


@pytest.mark.parametrize(
    ("expires_in", "seconds"),
    [
        (3600, 3540.0),  # at most a minute early
        (3600.0, 3540.0),
        (601, 541.0),
        (600, 540.0),  # a tenth and a minute meet
        (100, 90.0),  # a tenth early
        (1, 0.9),
        (0, 0.0),
        (-50, 0.0),  # never negative
        (None, 3540.0),  # Halo did not say: an hour
        ("3600", 3540.0),
        ("60", 3540.0),  # a string is not read
    ],
)
def test_a_token_is_renewed_a_tenth_of_its_life_early_at_most_a_minute(
    expires_in: Any, seconds: float
) -> None:
    assert fresh_for(expires_in) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("created", "action_id"),
    [
        ({"id": 1001, "note": "n"}, "1001"),
        ([{"id": 1001}, {"id": 1002}], "1001"),
        ({"id": "a" * 150}, "a" * 100),  # kept in the ledger: cut at 100
        ({"id": 0}, "0"),
        ({"id": None}, None),
        ({"note": "n"}, None),
        ([], None),
        ([1001], None),
        (None, None),
        ("1001", None),
    ],
)
def test_halos_action_id_is_the_created_actions_id(created: Any, action_id: str | None) -> None:
    assert _action_id(created) == action_id


@pytest.mark.parametrize(
    ("data", "parsed"),
    [(b'{"a": 1}', {"a": 1}), (b"[]", []), (b"", None), (b"{", None), (b"\xff", None)],
)
def test_halos_json_is_read_or_none(data: bytes, parsed: Any) -> None:
    assert _json(data) == parsed
