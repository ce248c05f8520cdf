"""`python -m shared preview`: what the relay would do with a Halo body, without doing it (pure).

The same steps as POST /api/halopsa (shared/entry/halo_webhook.py) up to the send: read the JSON (with the
empty-placeholder repair), check the batch size, then per event normalise (halo) and plan the
page with the relay's own pipeline (shared/domain/page.py), which sends nothing. No ledger: the
ticket's prior state is an input (never paged, unless given), and the ledger's part (a repeat
answered `duplicate`) is named in the report instead of guessed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict

from shared.domain.halo import parse_event, parse_json_body
from shared.domain.page import NEVER_PAGED, Prior, plan_page
from shared.domain.signl4_params import SignalParams, parse_signal_params
from shared.entry.responses import MAX_BODY_BYTES
from shared.errors import BatchTooLarge, PayloadTooLarge, RelayError, UnsupportedPayload
from shared.redaction import strip_userinfo
from shared.settings import RelaySettings

LEDGER_NOTE = (
    "the ledger is not read: a repeat of an event already sent is answered `duplicate`, and an "
    "open ticket whose alert was resolved pages again as `new`"
)


class EventPreview(BaseModel):
    """One event of the body: the decision, why, and what SIGNL4 would get."""

    model_config = ConfigDict(frozen=True)

    index: int | None = None  # position in a batch; None for a single event
    decision: Literal["new", "acknowledged", "resolved", "skip", "error"]
    reason: str
    external_id: str | None = None
    halo_event: str | None = None
    shape: str | None = None
    scenario: str | None = None
    route: str | None = None  # the RELAY_ROUTES rule that matched ("default": none did)
    target: str | None = None  # its routing target (the team's secret never shown)
    window: str | None = None  # `new` held back now by this quiet-hours schedule or window
    payload: dict[str, Any] | None = None
    error: str | None = None  # the relay's error code, as Halo would be answered


class Preview(BaseModel):
    model_config = ConfigDict(frozen=True)

    target: str  # where the payload would go (the team secret never shown)
    events: tuple[EventPreview, ...] = ()
    error: str | None = None  # a body-level error: nothing would be sent at all
    message: str | None = None
    ignored_query: tuple[str, ...] = ()


def parse_query(text: str | None) -> dict[str, str]:
    """`'ExtIDParam=X-S4-ExternalID&ResolvedStatus=Closed'` (a leading `?` is fine)."""
    if not text:
        return {}
    return dict(parse_qsl(text.lstrip("?"), keep_blank_values=True))


def describe_target(settings: RelaySettings) -> str:
    if settings.dry_run:
        why = "RELAY_DRY_RUN is set" if settings.relay_dry_run else "no SIGNL4_TEAM_SECRET"
        return f"nothing would be sent: the relay is in dry-run ({why})"
    url = strip_userinfo(settings.signl4_webhook_url).rstrip("/")
    return f"SIGNL4 webhook {url}/*** (team secret hidden)"


def preview_body(
    body: bytes,
    settings: RelaySettings,
    query: Mapping[str, str] | None = None,
    *,
    prior: Prior = NEVER_PAGED,
) -> Preview:
    """What POST /api/halopsa would decide and send for `body` with these settings, for a
    ticket with this prior state (what the relay last sent for it, where its alert went)."""
    params = parse_signal_params(query)
    target = describe_target(settings)
    try:
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(
                f"the body is {len(body)} bytes; the relay takes at most {MAX_BODY_BYTES} (1 MiB)"
            )
        parsed = parse_json_body(body)
        if isinstance(parsed, list) and len(parsed) > settings.relay_max_batch:
            raise BatchTooLarge(
                f"the batch holds {len(parsed)} events; the relay takes at most "
                f"{settings.relay_max_batch} per request (RELAY_MAX_BATCH): nothing would be sent"
            )
        if isinstance(parsed, list) and not parsed:
            raise UnsupportedPayload("the body is an empty JSON array")
    except RelayError as error:
        return Preview(
            target=target, error=error.code, message=error.message, ignored_query=params.unknown
        )
    if isinstance(parsed, list):
        events = tuple(
            preview_event(item, settings, params, index, prior=prior)
            for index, item in enumerate(parsed)
        )
    else:
        events = (preview_event(parsed, settings, params, None, prior=prior),)
    return Preview(target=target, events=events, ignored_query=params.unknown)


def preview_event(
    obj: Any,
    settings: RelaySettings,
    params: SignalParams,
    index: int | None,
    *,
    now: datetime | None = None,
    prior: Prior = NEVER_PAGED,
) -> EventPreview:
    """One event of the body, planned as the relay plans it; its error as Halo would read it."""
    try:
        event = parse_event(obj, params)
        page = plan_page(
            event, settings, prior, now=now or datetime.now(timezone.utc), params=params
        )
    except RelayError as error:
        return EventPreview(index=index, decision="error", reason=error.message, error=error.code)
    common = {
        "index": index,
        "reason": page.decision.reason,
        "external_id": event.ticket.external_id,
        "halo_event": event.event,
        "shape": event.shape,
    }
    if page.status is None or page.rule is None:
        return EventPreview(decision="skip", **common)
    return EventPreview(
        decision=page.status.value,
        scenario=page.decision.scenario,
        route=page.rule.name,
        target=page.target,
        window=page.window,
        payload=page.payload,
        **common,
    )


def render_text(preview: Preview) -> str:
    """The report a person reads: one block per event, the payload as indented JSON."""
    lines = [f"Target: {preview.target}"]
    if preview.ignored_query:
        lines.append("Ignored query parameters: " + ", ".join(preview.ignored_query))
    if preview.error:
        lines.append(f"Refused whole: {preview.error}: {preview.message}")
        return "\n".join(lines) + "\n"
    for event in preview.events:
        lines.append("")
        heading = "Event" if event.index is None else f"Event #{event.index}"
        lines.append(f"{heading}: {event.external_id or '(no ticket id)'}")
        if event.halo_event or event.shape:
            lines.append(f"  Halo: {event.shape or '-'} body, event {event.halo_event or '-'}")
        if event.decision == "error":
            lines.append(f"  Answer: {event.error}: {event.reason}")
            continue
        lines.append(f"  Decision: {event.decision}")
        lines.append(f"  Reason: {event.reason}")
        if event.scenario:
            lines.append(f"  Scenario: {event.scenario} (X-S4-AlertingScenario)")
        if event.route:
            lines.append(f"  Route: {event.route} (team: {event.target})")
        if event.window:
            lines.append(f"  Held back now: window {event.window!r} (answered `suppressed`)")
        if event.payload is not None:
            lines.append("  SIGNL4 payload:")
            text = json.dumps(event.payload, ensure_ascii=False, indent=2)
            lines += ["    " + line for line in text.splitlines()]
    lines += ["", "Note: " + LEDGER_NOTE]
    return "\n".join(lines) + "\n"


def render_json(preview: Preview) -> str:
    return json.dumps(preview.model_dump(mode="json", exclude_none=True), ensure_ascii=False)
