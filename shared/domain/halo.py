"""HaloPSA payloads (pure, no I/O): every shape Halo can send, normalised into one `HaloEvent`.

Three kinds of body reach the one route: a webhook envelope (`event`, `object_id`, `ticket`, ...)
with a small, full or no ticket object; the body of SIGNL4's own HaloPSA guide (`Title`,
`Message`, ..., `X-S4-ExternalID`) or its close body `{"X-S4-ExternalID": "HaloPSA-<id>",
"X-S4-Status": "resolved"}`; a bare ticket object, or `{"ticket": {...}}`. A missing field is
tolerated; a missing ticket id is not (we would page about nothing).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict

from shared.domain.alert import AlertStatus, clean_text
from shared.domain.html_text import html_to_plain
from shared.domain.signl4_params import NO_PARAMS, SignalParams
from shared.errors import (
    InvalidField,
    InvalidJson,
    InvalidStatus,
    MissingTicketId,
    UnsupportedPayload,
)

EXTERNAL_ID_PREFIX = "HaloPSA-"


# --- coercions: Halo sends nulls, "", numbers as strings, objects where names are expected ---

_NO_DATE_PREFIXES = ("1900-01-01", "1899-12-30", "0001-01-01")
_FRACTION = re.compile(r"(\.\d{6})\d+")


FIELD_MAX_CHARS = 10_000  # a Halo field longer than this is cut: the alert is not an archive
MAX_ID = 2**53  # JSON-safe integers; anything larger is not a Halo id
_INTEGER = re.compile(r"-?[0-9]{1,16}")


def _text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("name") or value.get("Name")
    if value is None or isinstance(value, (list, dict)):
        return None
    # clean_text (shared/domain/alert.py, the one cleaner both directions use): no control character,
    # bidi override or zero-width space from outside reaches SIGNL4, Halo, a log line, a queue
    # message or a ledger row; a lone surrogate (an emoji cut in half upstream) becomes '?'.
    return clean_text(str(value)[:FIELD_MAX_CHARS]).strip() or None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, int) and -MAX_ID <= value <= MAX_ID:
        return value
    return None


# A flag is read only when its meaning is clear; anything else is answered invalid_field rather
# than guessed (a garbled "closed" must neither close an alert nor silently count as open).
_TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "n", "off", ""})


def _flag(name: str, value: Any) -> bool:
    """true/false, 1/0 (also 1.0/0.0), "true"/"false", "yes"/"no", "y"/"n", "on"/"off",
    "1"/"0" (any case, spaces around ignored); null and "" are false."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return value == 1
    if isinstance(value, str):
        word = value.strip().casefold()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise InvalidField(f"{name} must be true or false (or 1/0, yes/no), not {_preview(value)}")


def _preview(value: Any) -> str:
    """A value for an error message: short strings and numbers as they are, else only their kind."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 20 else f"a string of {len(value)} characters"
    if isinstance(value, (int, float)) and len(repr(value)) <= 20:
        return repr(value)
    return f"a JSON {_json_kind(value)}"


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "number" if isinstance(value, (int, float)) else type(value).__name__


def parse_halo_date(value: Any) -> datetime | None:
    """Halo dates come with or without Z, with 7 fractional digits, or as "no date" sentinels."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.startswith(_NO_DATE_PREFIXES):
        return None
    # Python 3.10's fromisoformat takes at most 6 fractional digits and no "Z".
    text = _FRACTION.sub(r"\1", text.replace("Z", "+00:00").replace("z", "+00:00"))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def html_to_text(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    if "<" in text or "&" in text:
        # Entities can decode to control characters (&#13;, &#12;): clean the result again.
        text = clean_text(html_to_plain(text))
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    return text or None


Text = Annotated[str | None, BeforeValidator(_text)]
OptionalInt = Annotated[int | None, BeforeValidator(_int)]
HaloDate = Annotated[datetime | None, BeforeValidator(parse_halo_date)]
PlainText = Annotated[str | None, BeforeValidator(html_to_text)]


class Ticket(BaseModel):
    """One Halo ticket, whatever shape it arrived in."""

    model_config = ConfigDict(frozen=True)

    id: int
    summary: Text = None
    details: PlainText = None
    status_id: OptionalInt = None
    status_name: Text = None
    closed: bool = False  # read by _flag: only a clear yes or no is accepted
    priority_id: OptionalInt = None
    priority: Text = None
    ticket_type: Text = None
    client: Text = None
    site: Text = None
    # Ids RELAY_ROUTES may match by (shared/domain/routing.py), besides the names above.
    ticket_type_id: OptionalInt = None
    client_id: OptionalInt = None
    site_id: OptionalInt = None
    team_id: OptionalInt = None
    team: Text = None
    agent_id: OptionalInt = None
    agent: Text = None
    user: Text = None
    reference: Text = None
    date_occurred: HaloDate = None
    date_closed: HaloDate = None

    @property
    def external_id(self) -> str:
        return f"{EXTERNAL_ID_PREFIX}{self.id}"

    def status_keys(self) -> frozenset[str]:
        """The status as RELAY_*_STATUSES lists may name it: by id or by name."""
        return _keys(self.status_id, self.status_name)

    def priority_keys(self) -> frozenset[str]:
        return _keys(self.priority_id, self.priority)

    def team_keys(self) -> frozenset[str]:
        return _keys(self.team_id, self.team)


def _keys(number: int | None, name: str | None) -> frozenset[str]:
    keys = {name.casefold()} if name else set()
    if number is not None:
        keys.add(str(number))
    return frozenset(keys)


Shape = Literal["webhook", "guide", "ticket"]


class HaloEvent(BaseModel):
    """What Halo told us: which ticket, in what state, and which event (if it said)."""

    model_config = ConfigDict(frozen=True)

    shape: Shape
    # Lower-case Halo event name ("new ticket logged", "closed", ...); None when the body
    # carries no event information (guide body, bare ticket).
    event: str | None = None
    ticket: Ticket
    # X-S4-Status written into the body (the guide's close method); wins over inference.
    requested_status: AlertStatus | None = None
    # The webhook's own message text, used when the envelope carries no ticket.
    message: Text = None
    # Webhook delivery GUID, kept for logs (the ticket id is object_id, not this).
    delivery_id: Text = None
    # The guide body's own `Link` to the ticket; used when HALO_BASE_URL is not set.
    link: Text = None


# --- body -> events ---

# A JSON string (possibly unterminated: then it runs to the end) or an empty value after ":".
# The string branch has one way to match each character and always matches once it starts, so
# one substitution pass is linear and never looks inside a string for a placeholder.
_STRING_OR_EMPTY_VALUE = re.compile(
    r'"[^"\\]*(?:\\[\s\S][^"\\]*)*(?:"|\\?\Z)|(:[ \t\r\n]*)(?=[,}\]])'
)


# The same, strings or not: a cheap test whether the repair can change anything at all.
_EMPTY_VALUE_ANYWHERE = re.compile(r":[ \t\r\n]*[,}\]]")


def _null_empty_values(text: str) -> str:
    """`"Site": ,` -> `"Site": null`, outside JSON strings only (`"Disk C: , D: ]"` stays)."""
    return _STRING_OR_EMPTY_VALUE.sub(
        lambda match: match.group(0) if match.group(1) is None else match.group(1) + "null", text
    )


def parse_json_body(body: bytes) -> Any:
    """Decode the request body. Repairs one known Halo quirk, else raises InvalidJson.

    A Halo method template renders an empty placeholder as nothing (`"Site": ,`), which is not
    JSON. Rather than drop the page, such values are read as null.
    """
    if not body or not body.strip():
        raise InvalidJson("the request body is empty; HaloPSA must send a JSON body")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidJson("the request body is not UTF-8 text") from None
    try:
        return _loads(text)
    except json.JSONDecodeError as error:
        first_error = error
    repaired = _null_empty_values(text) if _EMPTY_VALUE_ANYWHERE.search(text) else text
    if repaired != text:
        try:
            return _loads(repaired)
        except json.JSONDecodeError:
            pass
    raise InvalidJson(
        f"the request body is not valid JSON (line {first_error.lineno}, "
        f"column {first_error.colno}: {first_error.msg})"
    )


class DuplicateKeysObject(dict[str, Any]):
    """A JSON object that held a key more than once (json.loads keeps the last without a word).

    The relay answers unsupported_payload for it, but only where it reads the object (see
    `_fold_keys`): a duplicate deep inside a linked object nobody reads must not cost the page.
    """

    __slots__ = ("duplicate_keys",)

    def __init__(self, obj: dict[str, Any], duplicate_keys: tuple[str, ...]) -> None:
        super().__init__(obj)
        self.duplicate_keys = duplicate_keys


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):  # the common case stays a plain dict: cheap on big bodies
        return obj
    seen: set[str] = set()
    duplicates: list[str] = []
    for key, _ in pairs:
        if key in seen:
            duplicates.append(key)
        seen.add(key)
    return DuplicateKeysObject(obj, tuple(duplicates))


def _loads(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_json_object)
    except json.JSONDecodeError:
        raise
    except (RecursionError, ValueError) as error:
        # Nesting past the recursion limit, or an integer past Python's digit limit.
        raise InvalidJson(f"the request body is not usable JSON ({type(error).__name__})") from None


def _fold_keys(obj: dict[str, Any], sender: str = "HaloPSA") -> dict[str, Any]:
    """Keys case-folded. Two keys that fold alike (`event`, `Event`), or one key twice, make the
    object ambiguous: answered unsupported_payload, naming the key (and the `sender` whose
    value it would be), rather than read silently."""
    if isinstance(obj, DuplicateKeysObject):
        raise UnsupportedPayload(
            f"the key {_key_preview(obj.duplicate_keys[0])} appears more than once in one object; "
            f"the relay does not guess which value {sender} meant"
        )
    folded: dict[str, Any] = {}
    originals: dict[str, str] = {}
    for key, value in obj.items():
        name = str(key)
        folded_name = name.casefold()
        if folded_name in folded:
            raise UnsupportedPayload(
                f"the keys {_key_preview(originals[folded_name])} and {_key_preview(name)} differ "
                f"only in case; the relay does not guess which value {sender} meant"
            )
        folded[folded_name] = value
        originals[folded_name] = name
    return folded


def _key_preview(key: str) -> str:
    return repr(key if len(key) <= 40 else key[:40] + "...")


_WEBHOOK_KEYS = frozenset({"event", "object_id", "webhook_id", "notification_id", "escmsg_id"})
_TICKET_KEYS = frozenset(
    {
        "summary",
        "details",
        "status_id",
        "hasbeenclosed",
        "tickettype_id",
        "client_id",
        "dateoccurred",
    }
)


def parse_event(obj: Any, params: SignalParams = NO_PARAMS) -> HaloEvent:
    """Normalise one JSON value (an object, not an array) into a HaloEvent.

    `params` are SIGNL4's query parameters: ExtIDParam / ExtStatusParam name the body fields
    that hold the external id and the status (a guide-style body)."""
    if not isinstance(obj, dict):
        raise UnsupportedPayload(
            f"expected a JSON object (a Halo webhook, the SIGNL4 guide body or a ticket), "
            f"got {type(obj).__name__ if obj is not None else 'null'}"
        )
    folded = _fold_keys(obj)
    # A webhook envelope may carry X-S4-Status too; without the guide's own Title or
    # X-S4-ExternalID, object_id (not the envelope's GUID `id`) is its ticket.
    if (
        "title" in folded
        or "x-s4-externalid" in folded
        or (any(key.startswith("x-s4-") for key in folded) and not folded.keys() & _WEBHOOK_KEYS)
    ):
        return _parse_guide_body(folded, params)
    if folded.keys() & _WEBHOOK_KEYS:
        return _parse_webhook(folded)
    if params.ext_id_param is not None and params.ext_id_param in folded:
        # A SIGNL4-style body whose external id is in a field of its own (ExtIDParam).
        return _parse_guide_body(folded, params)
    ticket = folded.get("ticket")
    if isinstance(ticket, dict) and len(folded) == 1:
        return HaloEvent(shape="ticket", ticket=_ticket_from_halo(_fold_keys(ticket), None))
    if "id" in folded and folded.keys() & _TICKET_KEYS:
        return HaloEvent(shape="ticket", ticket=_ticket_from_halo(folded, None))
    raise UnsupportedPayload(
        "the body is neither a Halo webhook (event/object_id), the SIGNL4 guide body "
        "(Title/X-S4-ExternalID) nor a Halo ticket (id with summary/status_id)"
    )


def _requested_status(value: Any) -> AlertStatus | None:
    if value is not None and not isinstance(value, str):
        raise InvalidStatus(f"X-S4-Status must be a string, not {type(value).__name__}")
    text = _text(value)
    if text is None:
        return None
    try:
        return AlertStatus(text.casefold())
    except ValueError:
        raise InvalidStatus(
            f"X-S4-Status must be new, acknowledged or resolved, not {text[:40]!r}"
        ) from None


def _ticket_id(candidates: list[tuple[str, Any]]) -> int:
    """First present candidate wins; a present but non-numeric id is an error, not a guess."""
    for name, value in candidates:
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        ticket_id = _int(value)
        if ticket_id is None or ticket_id <= 0:
            raise MissingTicketId(f"{name} {str(value)[:40]!r} is not a HaloPSA ticket number")
        return ticket_id
    names = ", ".join(name for name, _ in candidates)
    raise MissingTicketId(f"no ticket id in the body (looked at {names})")


def _parse_webhook(env: dict[str, Any]) -> HaloEvent:
    ticket_obj = env.get("ticket")
    ticket = _fold_keys(ticket_obj) if isinstance(ticket_obj, dict) else {}
    ticket_id = _ticket_id(
        [
            ("object_id", env.get("object_id")),
            ("ticket.id", ticket.get("id")),
            ("ticket_id", env.get("ticket_id")),
        ]
    )
    event = _text(env.get("event"))
    return HaloEvent(
        shape="webhook",
        event=event.casefold() if event else None,
        ticket=_ticket_from_halo(ticket, ticket_id),
        requested_status=_requested_status(env.get("x-s4-status")),
        message=env.get("message"),
        delivery_id=env.get("id"),
    )


def ticket_from_record(record: dict[str, Any], ticket_id: int) -> Ticket:
    """Halo's answer to GET /api/Tickets/{id} as a Ticket; UnsupportedPayload when it is the
    record of another ticket (never judge a ticket by another one's fields)."""
    folded = _fold_keys(record, "HaloPSA's ticket read")
    read_id = _int(folded.get("id"))
    if read_id != ticket_id:
        raise UnsupportedPayload(f"Halo answered with ticket {read_id}, not {ticket_id}")
    return _ticket_from_halo(folded, ticket_id)


def _ticket_from_halo(t: dict[str, Any], ticket_id: int | None) -> Ticket:
    """A Halo ticket object (small or full, keys already case-folded)."""
    if ticket_id is None:
        ticket_id = _ticket_id([("ticket.id", t.get("id")), ("ticket_id", t.get("ticket_id"))])
    status = t.get("status")
    priority = t.get("priority")
    return Ticket(
        id=ticket_id,
        summary=t.get("summary"),
        details=t.get("details") if t.get("details") is not None else t.get("details_html"),
        status_id=t.get("status_id") if t.get("status_id") is not None else _int(status),
        status_name=t.get("status_name") or (status if _int(status) is None else None),
        closed=_flag("hasbeenclosed", t.get("hasbeenclosed")),
        priority_id=t.get("priority_id")
        if t.get("priority_id") is not None
        else (priority.get("priorityid") if isinstance(priority, dict) else _int(priority)),
        priority=t.get("priority_name") or (priority if _int(priority) is None else None),
        ticket_type=t.get("tickettype_name") or t.get("tickettype") or t.get("type"),
        client=t.get("client_name") or t.get("client"),
        site=t.get("site_name") or t.get("site"),
        ticket_type_id=t.get("tickettype_id"),
        client_id=t.get("client_id"),
        site_id=t.get("site_id"),
        team_id=t.get("team_id"),
        team=t.get("team") or t.get("team_name"),
        agent_id=t.get("agent_id"),
        agent=t.get("agent_name") or t.get("agent"),
        user=t.get("user_name") or t.get("user"),
        reference=t.get("reference"),
        date_occurred=t.get("dateoccurred"),
        date_closed=t.get("dateclosed"),
    )


def _external_id_candidate(name: str, external_id: Any) -> tuple[str, Any]:
    """`HaloPSA-<id>` or a bare number; anything else is reported, not guessed."""
    if isinstance(external_id, str) and external_id.strip():
        raw = external_id.strip()
        number = raw[len(EXTERNAL_ID_PREFIX) :] if raw.lower().startswith("halopsa-") else raw
        return name, number or None
    return name, external_id


def _parse_guide_body(body: dict[str, Any], params: SignalParams = NO_PARAMS) -> HaloEvent:
    """SIGNL4's HaloPSA guide: capitalised keys rendered from a Halo method template.

    The external id is read from the field ExtIDParam names (default X-S4-ExternalID), the
    status from the field ExtStatusParam names (default Status)."""
    id_fields = dict.fromkeys([params.ext_id_param or "x-s4-externalid", "x-s4-externalid"])
    candidates = [
        _external_id_candidate(
            "X-S4-ExternalID" if name == "x-s4-externalid" else name, body.get(name)
        )
        for name in id_fields
    ]
    candidates += [("ticket_id", body.get("ticket_id")), ("id", body.get("id"))]
    ticket_id = _ticket_id(candidates)
    status = body.get(params.ext_status_param or "status")
    return HaloEvent(
        shape="guide",
        ticket=Ticket(
            id=ticket_id,
            summary=body.get("title"),
            details=body.get("message"),
            status_id=_int(status),
            status_name=status if _int(status) is None else None,
            closed=_flag("hasbeenclosed", body.get("hasbeenclosed")),
            priority=body.get("priority"),
            priority_id=_int(body.get("priority")),
            ticket_type=body.get("type"),
            client=body.get("client") or body.get("organisation") or body.get("oppcompanyname"),
            site=body.get("site"),
            team=body.get("team"),
            agent=body.get("agent"),
            reference=body.get("reference"),
            date_occurred=body.get("dateoccurred"),
            date_closed=body.get("dateclosed"),
        ),
        requested_status=_requested_status(body.get("x-s4-status")),
        link=body.get("link"),
    )
