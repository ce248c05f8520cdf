"""The error catalogue (shared/errors.py): each code, its HTTP status, its body, and the status
the other side answered; and the error table (docs/answers.md) names every code a caller can see."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared import errors
from shared.errors import (
    DeliveryRejected,
    DeliveryUnavailable,
    HaloRejected,
    HaloUnavailable,
    RelayError,
    Signl4Rejected,
    Signl4Unavailable,
)

ANSWERS = Path(__file__).resolve().parents[2] / "docs" / "answers.md"

# Every error class a caller can be answered with, with its code and HTTP status.
CATALOGUE = [
    ("InvalidJson", "invalid_json", 400),
    ("UnsupportedPayload", "unsupported_payload", 400),
    ("Unauthorized", "unauthorized", 401),
    ("PayloadTooLarge", "payload_too_large", 413),
    ("BatchTooLarge", "batch_too_large", 413),
    ("MissingTicketId", "missing_ticket_id", 422),
    ("InvalidStatus", "invalid_status", 422),
    ("InvalidField", "invalid_field", 422),
    ("Signl4Rejected", "signl4_rejected", 502),
    ("Signl4Unavailable", "signl4_unavailable", 503),
    ("HaloRejected", "halo_rejected", 502),
    ("HaloUnavailable", "halo_unavailable", 503),
    ("ConfigurationError", "configuration_error", 500),
]


@pytest.mark.parametrize(("name", "code", "status"), CATALOGUE)
def test_each_error_has_its_code_and_status(name: str, code: str, status: int) -> None:
    cls = getattr(errors, name)
    assert (cls.code, cls.status_code) == (code, status)
    assert issubclass(cls, RelayError)


@pytest.mark.parametrize(("name", "code", "status"), CATALOGUE)
def test_the_docs_error_table_lists_each_code_with_its_status(
    name: str, code: str, status: int
) -> None:
    rows = dict(
        re.findall(
            r"^\| `([a-z0-9_]+)` \| (\d{3}) \|", ANSWERS.read_text(encoding="utf-8"), re.MULTILINE
        )
    )
    assert rows.get(code) == str(status), f"docs/answers.md's error table: `{code}` | {status}"


def test_the_body_is_the_code_and_the_message() -> None:
    error = errors.MissingTicketId("no ticket id in the body")
    assert error.to_body() == {"error": "missing_ticket_id", "message": "no ticket id in the body"}
    assert str(error) == error.message == "no ticket id in the body"
    assert RelayError("x").to_body() == {"error": "internal", "message": "x"}
    assert RelayError.status_code == 500


def test_the_other_sides_status_is_kept() -> None:
    rejected = Signl4Rejected("SIGNL4 rejected the event with HTTP 400", 400)
    unavailable = Signl4Unavailable("SIGNL4 answered HTTP 503 after 3 attempt(s)", 503)
    assert (rejected.signl4_status, rejected.remote_status) == (400, 400)
    assert (unavailable.signl4_status, unavailable.remote_status) == (503, 503)
    assert Signl4Unavailable("timed out").remote_status is None
    assert Signl4Unavailable("timed out").signl4_status is None
    halo_rejected = HaloRejected("Halo refused POST /api/Actions with HTTP 403", 403)
    halo_unavailable = HaloUnavailable("Halo answered HTTP 500", 500)
    assert (halo_rejected.remote_status, halo_rejected.message) == (
        403,
        "Halo refused POST /api/Actions with HTTP 403",
    )
    assert (halo_unavailable.remote_status, halo_unavailable.message) == (
        500,
        "Halo answered HTTP 500",
    )
    assert HaloUnavailable("timed out").remote_status is None
    # The delivery service handles both sides through the shared bases.
    assert isinstance(rejected, DeliveryRejected) and isinstance(halo_rejected, DeliveryRejected)
    assert isinstance(unavailable, DeliveryUnavailable)
    assert isinstance(halo_unavailable, DeliveryUnavailable)
    assert DeliveryRejected.remote_status is None and DeliveryUnavailable.remote_status is None


# --- one tree: storage errors are the errors module's too, and never a caller's answer ---


def test_storage_errors_are_one_family_outside_the_answered_ones() -> None:
    from shared.adapters import store

    assert store.Conflict is errors.Conflict and store.Unavailable is errors.Unavailable
    for cls in (errors.Conflict, errors.Unavailable):
        assert issubclass(cls, errors.StoreError) and not issubclass(cls, RelayError)
    assert not issubclass(errors.MailboxUnavailable, RelayError)
    assert issubclass(errors.StorageUnavailable, RelayError)  # answered: the ledger was needed
    assert (errors.StorageUnavailable.code, errors.StorageUnavailable.status_code) == (
        "storage_unavailable",
        503,
    )


def test_the_docstring_draws_every_error_class_of_the_module() -> None:
    tree = errors.__doc__ or ""
    classes = [
        name
        for name, value in vars(errors).items()
        if isinstance(value, type)
        and issubclass(value, Exception)
        and value.__module__ == errors.__name__
    ]
    assert len(classes) >= 20
    assert [name for name in classes if name not in tree] == []
