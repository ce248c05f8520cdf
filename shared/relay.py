"""The HTTP shell around the core: request in, JSON answer out.

Order of work for POST /api/halopsa: size, auth, JSON, then per event (one, or each element of a
Halo batch): normalise (halo) -> decide (policy) -> build (signl4) -> send or dry-run.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared import __version__
from shared.errors import (
    ConfigurationError,
    PayloadTooLarge,
    RelayError,
    Unauthorized,
    UnsupportedPayload,
)
from shared.halo import parse_event, parse_json_body
from shared.policy import decide
from shared.settings import RelaySettings, SettingsError
from shared.signl4 import build_payload, send_event

MAX_BODY_BYTES = 1024 * 1024
BASIC_REALM = 'Basic realm="halopsa-signl4-relay", charset="UTF-8"'

logger = logging.getLogger("shared.relay")


@dataclass(frozen=True)
class RelayResponse:
    status_code: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def json_bytes(self) -> bytes:
        return json.dumps(self.body, ensure_ascii=False, default=str).encode("utf-8")


def load_settings(environ: Mapping[str, str]) -> RelaySettings:
    try:
        return RelaySettings.from_env(environ)
    except SettingsError as error:
        raise ConfigurationError(str(error)) from None


def handle_halo_request(
    body: bytes, headers: Mapping[str, str], environ: Mapping[str, str]
) -> RelayResponse:
    """POST /api/halopsa. Never raises: every outcome is a JSON answer."""
    try:
        settings = load_settings(environ)
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(
                f"the body is {len(body)} bytes; the relay takes at most {MAX_BODY_BYTES} (1 MiB)"
            )
        _check_basic_auth(headers, settings)
        parsed = parse_json_body(body)
    except RelayError as error:
        return _error_response(error)
    except Exception:
        logger.exception("relay: unexpected fault before reading events")
        return RelayResponse(500, {"error": "internal", "message": "unexpected fault; see the log"})

    if isinstance(parsed, list):
        if not parsed:
            return _error_response(UnsupportedPayload("the body is an empty JSON array"))
        outcomes = [relay_event(element, settings) for element in parsed]
        worst = max(outcome.status_code for outcome in outcomes)
        return RelayResponse(worst, {"results": [outcome.body for outcome in outcomes]})
    return relay_event(parsed, settings)


def relay_event(obj: Any, settings: RelaySettings) -> RelayResponse:
    """One event, start to finish. Errors are answered, not raised, so a batch answers per element."""
    started = time.perf_counter()
    external_id: str | None = None
    halo_event: str | None = None
    decision_text = "error"
    signl4_status: int | None = None
    try:
        event = parse_event(obj)
        external_id = event.ticket.external_id
        halo_event = event.event
        decision = decide(event, settings)
        if decision.action == "skip" or decision.status is None:
            decision_text = "skip"
            return RelayResponse(
                200, {"result": "skipped", "externalId": external_id, "reason": decision.reason}
            )
        decision_text = decision.status.value
        payload = build_payload(event, decision, settings)
        if settings.dry_run:
            decision_text += " (dry-run)"
            return RelayResponse(
                200,
                {
                    "result": "dry-run",
                    "externalId": external_id,
                    "status": decision.status.value,
                    "payload": payload,
                },
            )
        result = send_event(payload, settings)
        signl4_status = result.status_code
        return RelayResponse(
            200,
            {
                "result": "sent",
                "externalId": external_id,
                "status": decision.status.value,
                "eventId": result.event_id,
            },
        )
    except RelayError as error:
        signl4_status = getattr(error, "signl4_status", None)
        decision_text += f" -> {error.code}"
        return _error_response(error, external_id)
    except Exception:
        logger.exception("relay: unexpected fault for %s", external_id or "an event")
        return RelayResponse(500, {"error": "internal", "message": "unexpected fault; see the log"})
    finally:
        logger.info(
            "relay externalId=%s haloEvent=%s decision=%s signl4Status=%s elapsedMs=%.1f",
            external_id or "-",
            repr(halo_event) if halo_event else "-",
            decision_text,
            signl4_status if signl4_status is not None else "-",
            (time.perf_counter() - started) * 1000,
        )


def _error_response(error: RelayError, external_id: str | None = None) -> RelayResponse:
    body: dict[str, Any] = error.to_body()
    if external_id:
        body["externalId"] = external_id
    headers = {"WWW-Authenticate": BASIC_REALM} if isinstance(error, Unauthorized) else {}
    return RelayResponse(error.status_code, body, headers)


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
    return RelayResponse(
        200,
        {
            "status": "ok",
            "signl4": "dry-run" if settings.dry_run else "configured",
            "version": __version__,
        },
    )


def describe_mode(environ: Mapping[str, str]) -> str:
    try:
        settings = load_settings(environ)
    except ConfigurationError as error:
        return f"Relay is MISCONFIGURED: {error.message}"
    if settings.dry_run:
        why = "RELAY_DRY_RUN is set" if settings.relay_dry_run else "SIGNL4_TEAM_SECRET is not set"
        return f"Relay is in DRY-RUN ({why}): events are answered with the payload, nothing is sent."
    return "Relay is LIVE: events are sent to SIGNL4."
