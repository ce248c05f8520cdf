"""POST /api/halopsa and POST /api/webhook/{token}: Halo's events in, JSON answers out.

Order of work: size, auth (Basic, or the inbound token), JSON, batch size, then per event (one,
or each element of a Halo batch): normalise (domain.halo) -> decide, build and send or dry-run
(delivery.pages, with what bootstrap wires). Never raises: every outcome is an answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from shared import TIMING
from shared.adapters.remote_state import record_halo_event
from shared.delivery.pages import Delivery, EventTrace, Outcome, deliver_halo_event
from shared.domain.halo import parse_event, parse_json_body
from shared.domain.signl4_params import parse_signal_params
from shared.entry import responses
from shared.entry.auth import check_basic_auth, inbound_token_ok
from shared.entry.bootstrap import load_settings, page_delivery
from shared.entry.responses import (
    RelayResponse,
    check_batch_size,
    check_body_size,
    error_response,
    internal_error,
)
from shared.errors import ConfigurationError, RelayError
from shared.redaction import log_safe
from shared.settings import RelaySettings

# What POST /api/webhook answers without a usable token: the local host's answer for a route that
# does not exist, with nothing of the path echoed (the path holds the token).
NOT_FOUND = {"error": "not_found", "message": "No function serves POST /api/webhook/***"}

logger = logging.getLogger("shared.relay")


def handle_halo_request(
    body: bytes,
    headers: Mapping[str, str],
    environ: Mapping[str, str],
    *,
    outbox: list[str] | None = None,
    query: Mapping[str, str] | None = None,
    token_checked: bool = False,
) -> RelayResponse:
    """POST /api/halopsa. Never raises: every outcome is a JSON answer.

    `outbox` collects messages for the `signl4-outbox` queue (the function's output binding):
    events SIGNL4 could not take inline. Without it such events are answered 503.
    `query` is the request's query string: SIGNL4's ExtIDParam, ExtStatusParam, ResolvedStatus,
    AckStatus and NewStatus are honoured (shared/domain/signl4_params.py).
    `token_checked`: the caller already authenticated the request with the inbound token
    (POST /api/webhook), so Basic auth is not asked for on top: SIGNL4's setup sends none.
    """
    params = parse_signal_params(query)
    if params.unknown:
        # Names only: a value may be a secret (a function key in `code` is skipped already).
        logger.debug("relay: ignoring query parameter(s) %s", ", ".join(map(repr, params.unknown)))
    try:
        settings, parsed = _read_request(body, headers, environ, token_checked=token_checked)
    except RelayError as error:
        return error_response(error)
    except Exception:
        logger.exception("relay: unexpected fault before reading events")
        return internal_error()
    delivery = page_delivery(settings, outbox, params=params, confirm_after_answer=True)
    if isinstance(parsed, list):
        return _relay_batch(parsed, delivery)
    return relay_event(parsed, delivery)


def _read_request(
    body: bytes, headers: Mapping[str, str], environ: Mapping[str, str], *, token_checked: bool
) -> tuple[RelaySettings, Any]:
    """The checks before any event is read, cheapest first; raises the RelayError to answer."""
    settings = load_settings(environ)
    check_body_size(body)
    if not token_checked:
        check_basic_auth(headers, settings)
    record_halo_event()  # authenticated: Halo still calls (even with a body it cannot take)
    parsed = parse_json_body(body)
    check_batch_size(parsed, settings.relay_max_batch)
    return settings, parsed


def _relay_batch(events: list[Any], delivery: Delivery) -> RelayResponse:
    """Each element in order; past BATCH_INLINE_SECONDS the rest are queued, not sent inline.
    The answer's status is the worst element's."""
    outcomes = []
    started = time.monotonic()
    for index, element in enumerate(events):
        if index and not delivery.park_reason:
            spent = time.monotonic() - started
            if spent >= responses.BATCH_INLINE_SECONDS:
                delivery.park_reason = (
                    f"the batch had spent {spent:.0f}s sending inline (at most "
                    f"{responses.BATCH_INLINE_SECONDS:g}s per request)"
                )
        outcomes.append(relay_event(element, delivery))
    worst = max(outcome.status_code for outcome in outcomes)
    return RelayResponse(worst, {"results": [outcome.body for outcome in outcomes]})


def relay_event(obj: Any, delivery: Delivery) -> RelayResponse:
    """One event, start to finish. Errors are answered, not raised, so a batch answers per element."""
    started = time.perf_counter()
    mark = first = time.perf_counter_ns() if TIMING else 0
    trace = EventTrace()
    try:
        event = parse_event(obj, delivery.params)
        if TIMING:
            from shared.timing import phase

            phase("parse", mark)
        trace.external_id = event.ticket.external_id
        trace.halo_event = event.event
        outcome = deliver_halo_event(event, delivery, trace)
        if TIMING:
            mark = time.perf_counter_ns()
        response = halo_answer(outcome)
        if TIMING:
            phase("answer", mark)
            phase("event", first)
        return response
    except RelayError as error:
        trace.signl4_status = getattr(error, "signl4_status", None)
        trace.decision += f" -> {error.code}"
        return error_response(error, trace.external_id)
    except Exception:
        logger.exception(
            "relay: unexpected fault for %s", log_safe(trace.external_id or "an event")
        )
        return internal_error()
    finally:
        logger.info(
            "relay externalId=%s haloEvent=%s decision=%s signl4Status=%s elapsedMs=%.1f route=%s",
            log_safe(trace.external_id or "-"),
            log_safe(trace.halo_event, quoted=True) if trace.halo_event else "-",
            log_safe(trace.decision),
            trace.signl4_status if trace.signl4_status is not None else "-",
            (time.perf_counter() - started) * 1000,
            log_safe(trace.route),
        )


def halo_answer(outcome: Outcome) -> RelayResponse:
    """An event's outcome as the JSON answer Halo gets."""
    body: dict[str, Any] = {"result": outcome.result, "externalId": outcome.external_id}
    if outcome.incomplete:
        body["incomplete"] = outcome.incomplete  # judged on a payload lacking a field it needs
    if outcome.result == "skipped":
        body["reason"] = outcome.reason
        return RelayResponse(200, body)
    if outcome.result == "suppressed":
        # Held back by a quiet-hours schedule or maintenance window (acknowledge and resolve
        # are never held).
        body.update(window=outcome.window, route=outcome.route)
        return RelayResponse(200, body)
    assert outcome.status is not None
    body["status"] = outcome.status.value
    if outcome.escalation:
        body["escalation"] = outcome.escalation  # why a ticket that did not page now does
    if outcome.result == "queued":
        body["reason"] = outcome.reason
        return RelayResponse(202, body)
    if outcome.result == "dry-run":
        body["route"] = outcome.route
        body["payload"] = outcome.payload
    else:
        body["eventId"] = outcome.event_id
    return RelayResponse(200, body)


def handle_webhook_request(
    token: str,
    body: bytes,
    headers: Mapping[str, str],
    environ: Mapping[str, str],
    *,
    outbox: list[str] | None = None,
    query: Mapping[str, str] | None = None,
) -> RelayResponse:
    """POST /api/webhook/{token}: SIGNL4's URL shape, so Halo's SIGNL4 setup moves by changing
    the base URL. The route is anonymous at the Functions level: the token is the credential.

    The token comes in the path (`token`, as Halo puts the team secret there) or in the
    X-Relay-Token header; each one given must equal RELAY_INBOUND_TOKEN. Unset setting, no token,
    a wrong one, or settings that cannot be read: the same 404 as a route that does not exist.
    """
    try:
        settings = load_settings(environ)
    except ConfigurationError as error:
        logger.warning("relay: webhook route refused: %s", error.message)
        return RelayResponse(404, dict(NOT_FOUND))
    if not inbound_token_ok(token, headers, settings):
        return RelayResponse(404, dict(NOT_FOUND))
    return handle_halo_request(
        body, headers, environ, outbox=outbox, query=query, token_checked=True
    )
