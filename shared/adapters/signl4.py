"""Posting to SIGNL4's inbound webhook (edge): SIGNL4's answers mapped to the relay's errors,
through the process's HTTP session and retry policy (shared/adapters/http.py). The payload
itself is built in shared/domain/alert.py.

The secret is the last path segment of the webhook URL and is the only credential, so the
whole URL is treated as a secret: it is never logged, echoed or put in an exception.
requests (and urllib3 under it) load on the first send, not on cold start.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

from shared.adapters import http
from shared.adapters.http import RETRY_STATUSES, RetryBudgetSpent
from shared.adapters.remote_state import record_delivery
from shared.adapters.sender import SendResult
from shared.errors import Signl4Rejected, Signl4Unavailable
from shared.redaction import redact_echo
from shared.settings import RelaySettings

SIGNL4_ERROR_MAX_CHARS = 200  # of SIGNL4's own error text, in the message we pass on
EVENT_ID_MAX_CHARS = 100

logger = logging.getLogger(__name__)


def webhook_url(settings: RelaySettings) -> str:
    """Join base and secret whether or not the base ends with a slash."""
    if settings.signl4_team_secret is None:
        raise ValueError("no SIGNL4 team secret: the relay is in dry-run")
    secret = quote(settings.signl4_team_secret.get_secret_value().strip(), safe="")
    return f"{settings.signl4_webhook_url.rstrip('/')}/{secret}"


def send_event(payload: dict[str, Any], settings: RelaySettings) -> SendResult:
    """POST one event to SIGNL4, retrying transient failures within the settings' budget.

    Raises Signl4Rejected for a 4xx other than 429 (never retried: SIGNL4 throttles erroneous
    calls to 10/min) and Signl4Unavailable when the budget or the attempts run out.
    """
    from requests import RequestException

    timeout = http.request_timeout(settings)
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8", "replace")
    _register_secret(settings)
    try:
        with (
            http.retrying(settings) as session,
            session.post(
                webhook_url(settings),
                data=body,
                headers={"Content-Type": "application/json", "User-Agent": "halopsa-signl4-relay"},
                timeout=timeout,
                allow_redirects=False,  # SIGNL4 answering 3xx is not a success
            ) as response,
        ):
            data = response.content  # read whole: the connection goes back to the pool
    except RetryBudgetSpent as spent:
        raise Signl4Unavailable(
            f"SIGNL4 asked to wait {spent.wait:.1f}s (HTTP {spent.status}), past the relay's "
            f"{settings.signl4_retry_budget_seconds:g}s retry budget",
            signl4_status=spent.status,
        ) from None
    except RequestException as error:
        # requests' errors (and the urllib3 errors they wrap) carry the URL, i.e. the secret:
        # report the cause's kind only.
        raise Signl4Unavailable(
            f"could not reach SIGNL4 after {settings.signl4_max_attempts} attempt(s): "
            f"{http.describe_request_failure(error)}"
        ) from None

    retries = getattr(response.raw, "retries", None)
    attempts = len(retries.history) + 1 if retries else 1
    result = read_answer(response.status_code, data, attempts, settings)
    record_delivery()
    return result


def read_answer(status: int, data: bytes, attempts: int, settings: RelaySettings) -> SendResult:
    """SIGNL4's last answer as the relay's outcome: a 2xx is a SendResult with SIGNL4's event
    id; 429 and 5xx (retried up to here) are Signl4Unavailable; anything else, a 3xx (never
    followed) included, is Signl4Rejected with SIGNL4's own error text, scrubbed."""
    if 200 <= status < 300:
        return SendResult(status_code=status, event_id=_event_id(data), attempts=attempts)
    if status in RETRY_STATUSES:
        raise Signl4Unavailable(
            f"SIGNL4 answered HTTP {status} after {attempts} attempt(s)", signl4_status=status
        )
    raise Signl4Rejected(
        f"SIGNL4 rejected the event with HTTP {status}{_signl4_error(data, settings)}",
        signl4_status=status,
    )


def _event_id(data: bytes) -> str | None:
    try:
        parsed = json.loads(data or b"null")
    except ValueError:
        return None
    if isinstance(parsed, dict) and parsed.get("eventId") is not None:
        # Kept in the ledger and the answer: a SIGNL4 event id is a short GUID.
        return str(parsed["eventId"])[:EVENT_ID_MAX_CHARS]
    return None


def _signl4_error(data: bytes, settings: RelaySettings) -> str:
    """SIGNL4's own error text helps the engineer. It is scrubbed of the secret in every form
    SIGNL4 could echo (shared.redaction), dropped whole if a piece of the secret survives
    that, and only then cut short: a cut first could split the secret past recognition."""
    try:
        parsed = json.loads(data or b"null")
    except ValueError:
        return ""
    if not isinstance(parsed, dict) or not parsed.get("message"):
        return ""
    code = parsed.get("code")
    code_text = f" {code}" if isinstance(code, int) and not isinstance(code, bool) else ""
    text = redact_echo(str(parsed["message"]), _secrets(settings), SIGNL4_ERROR_MAX_CHARS)
    if text is None:
        return f" (SIGNL4 error{code_text}; SIGNL4's error text withheld: it echoed the secret)"
    return f" (SIGNL4 error{code_text}: {text})"


def _secrets(settings: RelaySettings) -> set[str]:
    """The secret this request was sent with (scrub() also tries it stripped, as sent)."""
    if settings.signl4_team_secret is None:
        return set()
    return {settings.signl4_team_secret.get_secret_value()}


def _register_secret(settings: RelaySettings) -> None:
    """urllib3 logs the URL it calls: the team secret in it is scrubbed from those lines."""
    if settings.signl4_team_secret is not None:
        http.register_secret(settings.signl4_team_secret.get_secret_value().strip())
