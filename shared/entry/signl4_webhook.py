"""POST /api/signl4: SIGNL4's outbound webhook -> notes, status and assignment in Halo.

Order of work: size, two-way on, JSON, then parse (domain.notification) -> plan
(domain.writeback) -> verify, write or queue (delivery.pages, with the Halo client bootstrap
wires). Never raises: every outcome is an answer, and each request logs one line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared.delivery.pages import EventTrace, Outcome
from shared.delivery.writebacks import deliver_signl4_notification
from shared.domain.halo import parse_json_body
from shared.entry.bootstrap import load_settings, writeback_delivery
from shared.entry.responses import RelayResponse, check_body_size, error_response, internal_error
from shared.errors import HaloRejected, RelayError
from shared.redaction import log_safe
from shared.settings import RelaySettings

if TYPE_CHECKING:
    from shared.domain.notification import Signl4Notification

TWO_WAY_OFF = "two-way sync is off (set HALO_CLIENT_ID and HALO_CLIENT_SECRET)"

logger = logging.getLogger("shared.relay")


def handle_signl4_request(
    body: bytes, environ: Mapping[str, str], *, outbox: list[str] | None = None
) -> RelayResponse:
    """POST /api/signl4: one SIGNL4 outbound notification. Never raises.

    Answers `written` (Halo's action id), `duplicate` (the notification id was taken before),
    `ignored` with the reason (two-way off, not one of our alerts, test and duty events),
    `recorded` (alert created: SIGNL4's alert id kept), 202 `queued` (Halo could not take it
    now; `outbox` collects the halo-outbox messages), or an error as on /api/halopsa."""
    started = time.perf_counter()
    trace = EventTrace()
    event = "-"
    try:
        settings = load_settings(environ)
        check_body_size(body)
        if not settings.two_way:
            trace.decision = "ignored (two-way off)"
            return RelayResponse(200, {"result": "ignored", "reason": TWO_WAY_OFF})
        notification = _parse(body)
        event = str(notification.event_type)
        if notification.status_code is not None:
            event += f"/{notification.status_code}"
        return _write_back(notification, settings, trace, outbox=outbox)
    except RelayError as error:
        trace.signl4_status = getattr(error, "remote_status", None)
        trace.decision += f" -> {error.code}"
        if isinstance(error, HaloRejected):
            # Never retried: the alertable line, as the poison function writes it. The alert
            # counts this request's 502 (requests are never sampled; the line may be).
            logger.error(
                "poison externalId=%s reason=%s: never reached Halo",
                log_safe(trace.external_id or "-"),
                log_safe(error.message),
            )
        return error_response(error, trace.external_id)
    except Exception:
        logger.exception("relay: unexpected fault for a SIGNL4 notification")
        return internal_error()
    finally:
        logger.info(
            "relay externalId=%s signl4Event=%s decision=%s haloStatus=%s elapsedMs=%.1f",
            log_safe(trace.external_id or "-"),
            log_safe(event),
            log_safe(trace.decision),
            trace.signl4_status if trace.signl4_status is not None else "-",
            (time.perf_counter() - started) * 1000,
        )


def _parse(body: bytes) -> Signl4Notification:
    """The notification in the body, or the RelayError saying why not. The parser loads on the
    first notification (two-way is optional: cold start does not pay for it)."""
    from shared.domain.notification import parse_notification

    return parse_notification(parse_json_body(body))


def _write_back(
    notification: Signl4Notification,
    settings: RelaySettings,
    trace: EventTrace,
    *,
    outbox: list[str] | None,
) -> RelayResponse:
    """Plan and deliver one notification; raises the RelayError to answer."""
    from shared.domain import writeback

    planned = writeback.plan(notification, settings)
    if isinstance(planned, writeback.Ignore):
        trace.decision = "ignored"
        return RelayResponse(
            200,
            {"result": "ignored", "notificationId": notification.id, "reason": planned.reason},
        )
    external_id = writeback.signl4_key(planned.ticket_id)
    trace.external_id = writeback.conversation_key(planned.ticket_id)
    delivery = writeback_delivery(settings, outbox)
    outcome = deliver_signl4_notification(notification, planned, delivery, trace)
    return writeback_answer(outcome, external_id, notification.id)


def writeback_answer(outcome: Outcome, external_id: str, notification_id: str) -> RelayResponse:
    """A write-back's outcome as the JSON answer SIGNL4 gets."""
    if outcome.result == "ignored":
        return RelayResponse(
            200, {"result": "ignored", "notificationId": notification_id, "reason": outcome.reason}
        )
    if outcome.result == "recorded":
        return RelayResponse(
            200, {"result": "recorded", "externalId": external_id, "alertId": outcome.event_id}
        )
    body: dict[str, Any] = {"externalId": external_id, "notificationId": notification_id}
    if outcome.result == "queued":
        return RelayResponse(202, {"result": "queued", **body, "reason": outcome.reason})
    if outcome.result == "duplicate":
        return RelayResponse(200, {"result": "duplicate", **body})
    if outcome.result == "skipped":  # superseded: cannot happen for notes (each is new)
        return RelayResponse(200, {"result": "ignored", **body, "reason": outcome.reason})
    return RelayResponse(200, {"result": "written", **body, "haloActionId": outcome.event_id})
