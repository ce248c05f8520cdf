"""SIGNL4's outbound webhook (SIGNL4 -> relay): one notification, read into a typed model (pure).

Shape (signl4.com/outbound-webhooks): `{"eventType": 201, "eventRaisedUtc": "...", "id": "...",
"team": {...}, "user": {"username", "mailaddress", "id"}, "alert": {"statusCode": 2, "id",
"eventId", "externalEventId": "HaloPSA-4242", ...}, "annotation": {"message", "id"}}`. Keys are
read case-insensitively (older senders use `userName`); keys that differ only in case are
ambiguous: unsupported_payload, as on /api/halopsa. A `202` (escalated) carries only the alert
and the time.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.domain.halo import EXTERNAL_ID_PREFIX, MAX_ID, _fold_keys, _text, parse_halo_date
from shared.errors import InvalidField, UnsupportedPayload

# eventType values SIGNL4 documents.
ALERT_CREATED = 200
ALERT_STATUS_CHANGED = 201
ALERT_ESCALATED = 202
ALERT_ANNOTATED = 203
TEST_EVENT = 1
DUTY_EVENTS = frozenset({300, 301, 302, 303})  # duty started/ended, punched in/out
# alert.statusCode on eventType 201 (SIGNL4's docs table says 2 for closed: a typo).
STATUS_ACKNOWLEDGED = 2
STATUS_CLOSED = 4

NOTIFICATION_ID_MAX_CHARS = 200
ANNOTATION_MAX_CHARS = 4000
_OUR_EXTERNAL_ID = re.compile(re.escape(EXTERNAL_ID_PREFIX) + r"([0-9]{1,16})", re.IGNORECASE)


class Signl4Notification(BaseModel):
    """What the relay reads from one outbound notification."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    id: str
    event_type: int
    raised: datetime | None = None
    status_code: int | None = None
    alert_id: str | None = None
    alert_event_id: str | None = None
    external_id: str | None = None  # alert.externalEventId as sent
    user_name: str | None = None
    user_email: str | None = None
    annotation: str | None = None

    @property
    def ticket_id(self) -> int | None:
        """The Halo ticket id when the alert is one of ours (`HaloPSA-<id>`), else None."""
        match = _OUR_EXTERNAL_ID.fullmatch((self.external_id or "").strip())
        if match is None:
            return None
        number = int(match.group(1))
        return number if 0 < number <= MAX_ID else None


def _object(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidField(f"{name} must be a JSON object")
    return _fold_keys(value, "SIGNL4")


def _int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidField(f"{name} must be a number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,9}", value.strip()):
        return int(value.strip())
    raise InvalidField(f"{name} must be a number")


def _short(value: Any, limit: int = 200) -> str | None:
    text = _text(value)
    return text[:limit] if text else None


def parse_notification(obj: Any) -> Signl4Notification:
    """One notification. Raises UnsupportedPayload (not an object, ambiguous keys, no id or
    eventType) or InvalidField (a field the relay acts on cannot be read)."""
    if not isinstance(obj, dict):
        raise UnsupportedPayload("a SIGNL4 outbound webhook sends one JSON object per notification")
    body = _fold_keys(obj, "SIGNL4")
    notification_id = _short(body.get("id"), NOTIFICATION_ID_MAX_CHARS)
    if notification_id is None:
        raise UnsupportedPayload("not a SIGNL4 notification: it has no id")
    event_type = _int(body.get("eventtype"), "eventType")
    if event_type is None:
        raise UnsupportedPayload("not a SIGNL4 notification: it has no eventType")
    alert = _object(body.get("alert"), "alert")
    user = _object(body.get("user"), "user")
    annotation = _object(body.get("annotation"), "annotation")
    message = _text(annotation.get("message"))
    return Signl4Notification(
        id=notification_id,
        event_type=event_type,
        raised=parse_halo_date(body.get("eventraisedutc")),
        status_code=_int(alert.get("statuscode"), "alert.statusCode"),
        alert_id=_short(alert.get("id")),
        alert_event_id=_short(alert.get("eventid")),
        external_id=_short(alert.get("externaleventid")),
        user_name=_short(user.get("username")),
        user_email=_short(user.get("mailaddress")),
        annotation=message[:ANNOTATION_MAX_CHARS] if message else None,
    )
