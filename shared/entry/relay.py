"""The HTTP shell around the core: request in, JSON answer out.

Order of work for POST /api/halopsa: size, auth, JSON, then per event (one, or each element of a
Halo batch): normalise (halo) -> decide (policy) -> build (signl4) -> send or dry-run.
POST /api/webhook/{token} (SIGNL4's URL shape) checks the inbound token, then runs the same core.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared import TIMING, __version__
from shared.adapters.store import Conflict, Unavailable
from shared.delivery.ledger import MEMORY_STORAGE, Ledger, describe_ledger, open_ledger
from shared.delivery.mailbox import deliver_queued, give_up
from shared.delivery.outbox import describe_poison
from shared.delivery.pages import Delivery, EventTrace, Outcome, deliver_halo_event
from shared.domain.alert import AlertStatus
from shared.domain.halo import parse_event, parse_json_body
from shared.domain.signl4_params import parse_signal_params
from shared.entry.health import report as health_report
from shared.entry.health import storage_state
from shared.errors import (
    BatchTooLarge,
    ConfigurationError,
    HaloRejected,
    PayloadTooLarge,
    RelayError,
    Unauthorized,
    UnsupportedPayload,
)
from shared.redaction import log_safe
from shared.settings import RelaySettings, SettingsError

MAX_BODY_BYTES = 1024 * 1024
# A batch stops sending inline after this long and queues the rest: host.json's functionTimeout
# is 120 s, and the event being sent when the time runs out still needs its own retry budget.
BATCH_INLINE_SECONDS = 60.0
BASIC_REALM = 'Basic realm="halopsa-signl4-relay", charset="UTF-8"'
# The inbound token may come in this header instead of the path (keeps it out of request URLs).
TOKEN_HEADER = "X-Relay-Token"
# What POST /api/webhook answers without a usable token: the local host's answer for a route that
# does not exist, with nothing of the path echoed (the path holds the token).
NOT_FOUND = {"error": "not_found", "message": "No function serves POST /api/webhook/***"}

logger = logging.getLogger("shared.relay")


@dataclass(frozen=True)
class RelayResponse:
    status_code: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def json_bytes(self) -> bytes:
        return json.dumps(self.body, ensure_ascii=False, default=str).encode("utf-8", "replace")


def load_settings(environ: Mapping[str, str]) -> RelaySettings:
    try:
        return RelaySettings.from_env(environ)
    except SettingsError as error:
        raise ConfigurationError(str(error)) from None


def handle_halo_request(
    body: bytes,
    headers: Mapping[str, str],
    environ: Mapping[str, str],
    outbox: list[str] | None = None,
    query: Mapping[str, str] | None = None,
    *,
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
        settings = load_settings(environ)
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(
                f"the body is {len(body)} bytes; the relay takes at most {MAX_BODY_BYTES} (1 MiB)"
            )
        if not token_checked:
            _check_basic_auth(headers, settings)
        parsed = parse_json_body(body)
        _check_batch(parsed, settings)
    except RelayError as error:
        return _error_response(error)
    except Exception:
        logger.exception("relay: unexpected fault before reading events")
        return RelayResponse(500, {"error": "internal", "message": "unexpected fault; see the log"})

    delivery = Delivery(
        settings, _ledger_or_none(settings), outbox, params=params, confirm_after_answer=True
    )
    if isinstance(parsed, list):
        if not parsed:
            return _error_response(UnsupportedPayload("the body is an empty JSON array"))
        outcomes = []
        started = time.monotonic()
        for index, element in enumerate(parsed):
            if index and not delivery.park_reason:
                spent = time.monotonic() - started
                if spent >= BATCH_INLINE_SECONDS:
                    delivery.park_reason = (
                        f"the batch had spent {spent:.0f}s sending inline (at most "
                        f"{BATCH_INLINE_SECONDS:g}s per request)"
                    )
            outcomes.append(relay_event(element, delivery))
        worst = max(outcome.status_code for outcome in outcomes)
        return RelayResponse(worst, {"results": [outcome.body for outcome in outcomes]})
    return relay_event(parsed, delivery)


def _check_batch(parsed: Any, settings: RelaySettings) -> None:
    """A batch is refused whole when it holds more events than RELAY_MAX_BATCH, before any is
    sent: the answer, the log and the time spent grow with the count, and must stay bounded."""
    if isinstance(parsed, list) and len(parsed) > settings.relay_max_batch:
        raise BatchTooLarge(
            f"the batch holds {len(parsed)} events; the relay takes at most "
            f"{settings.relay_max_batch} per request (RELAY_MAX_BATCH). Nothing was sent: "
            f"set HaloPSA's webhook batching to Count with at most {settings.relay_max_batch}, "
            "or turn batching off"
        )


def _ledger_or_none(
    settings: RelaySettings, *, status_type: Callable[[str], Hashable] = AlertStatus
) -> Ledger | None:
    if settings.dry_run and status_type is AlertStatus:
        return None  # a dry run must not claim anything a live run would then call a duplicate
    try:
        return open_ledger(settings, status_type=status_type)
    except Exception:
        logger.exception("relay: the ledger could not be opened; delivering without it")
        return None


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
        response = _answer(outcome)
        if TIMING:
            phase("answer", mark)
            phase("event", first)
        return response
    except RelayError as error:
        trace.signl4_status = getattr(error, "signl4_status", None)
        trace.decision += f" -> {error.code}"
        return _error_response(error, trace.external_id)
    except Exception:
        logger.exception(
            "relay: unexpected fault for %s", log_safe(trace.external_id or "an event")
        )
        return RelayResponse(500, {"error": "internal", "message": "unexpected fault; see the log"})
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


def _answer(outcome: Outcome) -> RelayResponse:
    """An event's outcome as the JSON answer Halo gets."""
    body: dict[str, Any] = {"result": outcome.result, "externalId": outcome.external_id}
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
    if outcome.result == "queued":
        body["reason"] = outcome.reason
        return RelayResponse(202, body)
    if outcome.result == "dry-run":
        body["route"] = outcome.route
        body["payload"] = outcome.payload
    else:
        body["eventId"] = outcome.event_id
    return RelayResponse(200, body)


def deliver_outbox_message(raw: str, environ: Mapping[str, str]) -> list[str] | None:
    """The queue function's body. Returns JSON for the poison queue when SIGNL4 refused for good;
    raises (SIGNL4 unavailable, bad settings) so the queue extension redelivers the message."""
    return _deliver_outbox(raw, environ, halo=False)


def report_poison(raw: str, environ: Mapping[str, str], *, halo: bool = False) -> None:
    """The alertable ERROR line for a message in the poison queue. A mailbox nudge that ran out
    of attempts gives up the ticket's waiting events, so a re-send from Halo pages once.
    `halo`: a write-back (halo-outbox-poison): the same line, saying it never reached Halo.
    The poison alert counts this invocation's request row (host.json never samples requests;
    the line is a trace, which it may): the line names the ticket when sampling keeps it."""
    external_id, reason, seq = describe_poison(raw)
    try:
        settings = load_settings(environ)
    except ConfigurationError as error:
        # The line the alert rule watches for goes out whatever the settings; the mailbox is
        # given up when the host retries the message with usable settings.
        logger.error(
            "poison externalId=%s reason=%s: never reached %s (mailbox kept: %s)",
            log_safe(external_id),
            log_safe(reason),
            "Halo" if halo else "SIGNL4",
            log_safe(error.message),
        )
        raise
    ledger = _ledger_or_none(settings, status_type=str if halo else AlertStatus)
    given_up = give_up(external_id, reason, seq, ledger)
    logger.error(
        "poison externalId=%s reason=%s%s: never reached %s",
        log_safe(external_id),
        log_safe(reason),
        f" events={log_safe(given_up)}" if given_up else "",
        "Halo" if halo else "SIGNL4",
    )


def _error_response(error: RelayError, external_id: str | None = None) -> RelayResponse:
    body: dict[str, Any] = error.to_body()
    if external_id:
        body["externalId"] = external_id
    headers = {"WWW-Authenticate": BASIC_REALM} if isinstance(error, Unauthorized) else {}
    return RelayResponse(error.status_code, body, headers)


def handle_webhook_request(
    token: str,
    body: bytes,
    headers: Mapping[str, str],
    environ: Mapping[str, str],
    outbox: list[str] | None = None,
    query: Mapping[str, str] | None = None,
) -> RelayResponse:
    """POST /api/webhook/{token}: SIGNL4's URL shape, so Halo's SIGNL4 setup moves by changing
    the base URL. The route is anonymous at the Functions level: the token is the credential.

    The token comes in the path (`token`, as Halo puts the team secret there) or in the
    X-Relay-Token header; each one given must equal RELAY_INBOUND_TOKEN. Unset setting, no token,
    a wrong one, or settings that cannot be read: the same 404 as a route that does not exist.
    """
    if not _inbound_token_ok(token, headers, environ):
        return RelayResponse(404, dict(NOT_FOUND))
    return handle_halo_request(body, headers, environ, outbox, query, token_checked=True)


def _inbound_token_ok(token: str, headers: Mapping[str, str], environ: Mapping[str, str]) -> bool:
    try:
        settings = load_settings(environ)
    except ConfigurationError as error:
        logger.warning("relay: webhook route refused: %s", error.message)
        return False
    if settings.relay_inbound_token is None:
        return False
    expected = settings.relay_inbound_token.get_secret_value().strip().encode("utf-8")
    header = headers.get(TOKEN_HEADER) or headers.get(TOKEN_HEADER.lower()) or ""
    given = [value.encode("utf-8", "replace") for value in (token, header) if value]
    # Every presented token is compared in constant time, and all of them must match.
    results = [hmac.compare_digest(value, expected) for value in given]
    return bool(results) and all(results)


def _check_basic_auth(headers: Mapping[str, str], settings: RelaySettings) -> None:
    """Halo webhooks support HTTP Basic auth; when a username and password are set, require it."""
    if not settings.basic_auth_required:
        return
    assert settings.halo_webhook_username and settings.halo_webhook_password
    header = headers.get("Authorization") or headers.get("authorization") or ""
    scheme, _, encoded = header.partition(" ")
    if scheme.casefold() != "basic" or not encoded.strip():
        raise Unauthorized("this relay requires HTTP Basic authentication")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("the Basic credentials are not valid base64") from None
    username, sep, password = decoded.partition(b":")
    expected_user = settings.halo_webhook_username.encode("utf-8")
    expected_password = settings.halo_webhook_password.get_secret_value().encode("utf-8")
    # Both compared in constant time, and both always compared, so timing reveals neither.
    user_ok = hmac.compare_digest(username, expected_user)
    password_ok = hmac.compare_digest(password, expected_password)
    if not (sep and user_ok and password_ok):
        raise Unauthorized("wrong username or password")


def health(environ: Mapping[str, str]) -> RelayResponse:
    """GET /api/health: is the relay usable, and will it really page? Reveals no secret."""
    try:
        settings = load_settings(environ)
    except ConfigurationError as error:
        return RelayResponse(
            503,
            {"status": "misconfigured", **error.to_body(), "version": __version__},
        )
    state = storage_state(settings)
    return RelayResponse(
        200,
        {
            # degraded: storage unreachable; the relay still delivers (a duplicate beats a loss)
            "status": "degraded" if state.storage == "unreachable" else "ok",
            "signl4": "dry-run" if settings.dry_run else "configured",
            "webhookRoute": "off" if settings.relay_inbound_token is None else "on",
            "halo": "configured" if settings.two_way else "off",
            **health_report(state),
            "version": __version__,
        },
    )


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """The values of every secret setting that is set: `python -m devhost serve` scrubs them
    from its access log (a team secret pasted into a URL, say). `AzureWebJobsStorage=memory`
    names no account: scrubbing the word would only garble tracebacks."""
    from shared.settings import team_secret_items

    return (
        [
            environ[name].strip()
            for name in RelaySettings.secret_setting_names()
            if environ.get(name, "").strip() not in ("", MEMORY_STORAGE)
        ]
        + [value.strip() for _, value in team_secret_items(environ)]
        + _bundled_secrets(environ)
    )


def _bundled_secrets(environ: Mapping[str, str]) -> list[str]:
    """Each team secret inside SIGNL4_TEAM_SECRETS (scrubbed one by one, not only as a whole)."""
    try:
        settings = load_settings(environ)
    except ConfigurationError:
        return []
    return [secret.get_secret_value().strip() for secret in settings.signl4_team_secrets.values()]


def describe_mode(environ: Mapping[str, str]) -> str:
    try:
        settings = load_settings(environ)
    except ConfigurationError as error:
        return f"Relay is MISCONFIGURED: {error.message}"
    if settings.dry_run:
        why = "RELAY_DRY_RUN is set" if settings.relay_dry_run else "SIGNL4_TEAM_SECRET is not set"
        return (
            f"Relay is in DRY-RUN ({why}): events are answered with the payload, nothing is sent."
        )
    return f"Relay is LIVE: events are sent to SIGNL4.\n{describe_ledger(settings)}"


# --- two-way sync: SIGNL4's outbound webhook -> notes, status and assignment in Halo ---

TWO_WAY_OFF = "two-way sync is off (set HALO_CLIENT_ID and HALO_CLIENT_SECRET)"


def handle_signl4_request(
    body: bytes, environ: Mapping[str, str], outbox: list[str] | None = None
) -> RelayResponse:
    """POST /api/signl4: one SIGNL4 outbound notification. Never raises.

    Answers `written` (Halo's action id), `duplicate` (the notification id was taken before),
    `ignored` with the reason (two-way off, not one of our alerts, test and duty events),
    `recorded` (alert created: SIGNL4's alert id kept), 202 `queued` (Halo could not take it
    now; `outbox` collects the halo-outbox messages), or an error as on /api/halopsa."""
    from shared.delivery.writebacks import deliver_signl4_notification
    from shared.domain import notification as signl4_outbound
    from shared.domain import writeback

    started = time.perf_counter()
    trace = EventTrace()
    event = "-"
    try:
        settings = load_settings(environ)
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(
                f"the body is {len(body)} bytes; the relay takes at most {MAX_BODY_BYTES} (1 MiB)"
            )
        if not settings.two_way:
            trace.decision = "ignored (two-way off)"
            return RelayResponse(200, {"result": "ignored", "reason": TWO_WAY_OFF})
        notification = signl4_outbound.parse_notification(parse_json_body(body))
        event = str(notification.event_type)
        if notification.status_code is not None:
            event += f"/{notification.status_code}"
        planned = writeback.plan(notification, settings)
        if isinstance(planned, writeback.Ignore):
            trace.decision = "ignored"
            return RelayResponse(
                200,
                {"result": "ignored", "notificationId": notification.id, "reason": planned.reason},
            )
        external_id = writeback.signl4_key(planned.ticket_id)
        trace.external_id = writeback.conversation_key(planned.ticket_id)
        from shared.adapters.halo import write_back

        ledger = _ledger_or_none(settings, status_type=str)
        delivery = Delivery(settings, ledger, outbox, sender=write_back)
        outcome = deliver_signl4_notification(notification, planned, delivery, trace)
        return _writeback_answer(outcome, external_id, notification.id)
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
        return _error_response(error, trace.external_id)
    except Exception:
        logger.exception("relay: unexpected fault for a SIGNL4 notification")
        return RelayResponse(500, {"error": "internal", "message": "unexpected fault; see the log"})
    finally:
        logger.info(
            "relay externalId=%s signl4Event=%s decision=%s haloStatus=%s elapsedMs=%.1f",
            log_safe(trace.external_id or "-"),
            log_safe(event),
            log_safe(trace.decision),
            trace.signl4_status if trace.signl4_status is not None else "-",
            (time.perf_counter() - started) * 1000,
        )


def _writeback_answer(outcome: Outcome, external_id: str, notification_id: str) -> RelayResponse:
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


def deliver_halo_outbox_message(raw: str, environ: Mapping[str, str]) -> list[str] | None:
    """The halo-outbox function's body: the ticket's waiting write-backs, oldest first, with
    the same machinery as the SIGNL4 outbox. Raises (Halo unavailable) to be redelivered."""
    return _deliver_outbox(raw, environ, halo=True)


def _deliver_outbox(raw: str, environ: Mapping[str, str], *, halo: bool) -> list[str] | None:
    """Either outbox: the same machinery, with SIGNL4 or Halo as the sender; one log line."""
    started = time.perf_counter()
    settings = load_settings(environ)
    if halo:
        from shared.adapters.halo import write_back

        ledger = _ledger_or_none(settings, status_type=str)
        outcome = deliver_queued(raw, settings, ledger, sender=write_back)
    else:
        outcome = deliver_queued(raw, settings, _ledger_or_none(settings))
    logger.log(
        logging.ERROR if outcome.result == "poison" else logging.INFO,
        "outbox externalId=%s result=%s sent=%d %s=%s reason=%s elapsedMs=%.1f",
        log_safe(outcome.external_id or "-"),
        outcome.result,
        outcome.sent,
        "haloActionId" if halo else "eventId",
        log_safe(outcome.event_id or "-"),
        log_safe(outcome.reason or "-"),
        (time.perf_counter() - started) * 1000,
    )
    return outcome.poison or None


# --- held pages: the timer that pages tickets still open when their window ends ---


def release_held_pages(
    environ: Mapping[str, str],
    now: Callable[[], datetime] | None = None,
    sender: Callable[..., Any] | None = None,
) -> list[str]:
    """The `held_pages` timer's body: page every ticket a window held back (a rule with
    `page_after_window`) whose window has ended at `now()` and that is still open. One read of
    the `suppressed` partition; nothing at all when no rule holds pages back, or in dry-run.
    Returns one line per ticket looked at (also logged). `now` and `sender` are the tests'."""
    from shared.delivery import held
    from shared.delivery.pages import deliver_held

    settings = load_settings(environ)
    if not settings.relay_routes.holds_back_pages or settings.dry_run:
        return []
    ledger = _ledger_or_none(settings)
    if ledger is None:
        return []
    clock = now or ledger.clock
    at = clock()
    lines: list[str] = []
    for page in held.held_pages(ledger):
        rule = settings.relay_routes.named(page.rule)
        window = rule.window_at(at) if rule is not None else None
        if window is not None:
            continue  # still inside a window (the same one, or the next)
        trace = EventTrace(external_id=page.external_id, route=page.rule)
        delivery = Delivery(settings, ledger, None, sender=sender, clock=clock)
        try:
            outcome = deliver_held(page, delivery, trace)
        except RelayError as error:
            line = (
                f"held externalId={page.external_id} route={page.rule} result=kept ({error.code})"
            )
        except (Conflict, Unavailable) as error:
            line = f"held externalId={page.external_id} route={page.rule} result=kept ({error})"
        else:
            held.release(ledger, page.external_id, page.etag)
            line = (
                f"held externalId={page.external_id} route={page.rule} "
                f"window={page.window!r} result={outcome.result}"
            )
        logger.info("%s", log_safe(line))
        lines.append(line)
    return lines
