"""GET /api/Tickets/{id} (shared/adapters/halo.py `read_ticket`) against the loopback Halo: the
record, Halo's refusals, and the bounds on what is read (size, nesting, one retry)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from werkzeug import Request, Response

from shared.adapters.halo import TICKET_MAX_BYTES, read_ticket
from shared.errors import HaloRejected, HaloUnavailable
from shared.settings import RelaySettings
from testkit.halo_fake import CLIENT_ID, CLIENT_SECRET, HaloFake, halo_fixture  # noqa: F401


def settings(halo: HaloFake) -> RelaySettings:
    return RelaySettings.from_env(
        {
            "HALO_BASE_URL": halo.base_url,
            "HALO_CLIENT_ID": CLIENT_ID,
            "HALO_CLIENT_SECRET": CLIENT_SECRET,
            "SIGNL4_BACKOFF_SECONDS": "0",
            "SIGNL4_MAX_ATTEMPTS": "5",
        }
    )


def raw(text: bytes) -> Callable[[Request], Response]:
    return lambda _request: Response(text, status=200, mimetype="application/json")


def reads(halo: HaloFake) -> int:
    return sum(1 for r in halo.requests if r["path"].startswith("/api/Tickets/"))


def test_the_record_is_halos_answer(halo: HaloFake) -> None:
    halo.ticket_records[42] = {"id": 42, "status_id": 9, "hasbeenclosed": True}
    assert read_ticket(42, settings(halo)) == {"id": 42, "status_id": 9, "hasbeenclosed": True}


def test_an_unknown_ticket_is_refused_with_halos_text(halo: HaloFake) -> None:
    with pytest.raises(HaloRejected, match="HTTP 404: That Ticket does not exist"):
        read_ticket(41, settings(halo))


def test_a_failing_halo_is_tried_twice_not_five_times(halo: HaloFake) -> None:
    halo.script("/api/Tickets/42", 503, 503, 503, 503, 503)
    with pytest.raises(HaloUnavailable, match="HTTP 503"):
        read_ticket(42, settings(halo))
    assert reads(halo) == 2  # SIGNL4_MAX_ATTEMPTS=5 is for write-backs, not for Halo's wait


@pytest.mark.parametrize(
    "answer",
    [
        b"[1, 2]",
        b"not json",
        b"[" * 100_000 + b"]" * 100_000,  # nested past what Python parses
    ],
)
def test_an_answer_that_is_no_ticket_is_refused(halo: HaloFake, answer: bytes) -> None:
    halo.script("/api/Tickets/42", raw(answer))
    with pytest.raises(HaloRejected, match="without a ticket"):
        read_ticket(42, settings(halo))


def test_an_answer_past_the_limit_is_not_read_whole(halo: HaloFake) -> None:
    huge = json.dumps({"id": 42, "details": "x" * TICKET_MAX_BYTES}).encode()
    halo.script("/api/Tickets/42", raw(huge))
    with pytest.raises(HaloRejected, match=f"larger than {TICKET_MAX_BYTES} bytes"):
        read_ticket(42, settings(halo))
