"""Posting to SIGNL4's inbound webhook (edge): one requests Session per worker, urllib3's Retry
taught SIGNL4's rate-limit header and a wall-clock budget, and SIGNL4's answers mapped to the
relay's errors. The payload itself is built in shared/domain/alert.py.

The secret is the last path segment of the webhook URL and is the only credential, so the
whole URL is treated as a secret: it is never logged, echoed or put in an exception.
requests (and urllib3 under it) load on the first send, not on cold start.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from shared.entry.health import record_delivery
from shared.errors import Signl4Rejected, Signl4Unavailable
from shared.redaction import RedactSecrets, redact_echo
from shared.settings import RelaySettings

if TYPE_CHECKING:  # requests (and urllib3 under it) load on the first send, not on cold start.
    import requests

RETRY_STATUSES = frozenset([429, *range(500, 600)])
SIGNL4_ERROR_MAX_CHARS = 200  # of SIGNL4's own error text, in the message we pass on
EVENT_ID_MAX_CHARS = 100

logger = logging.getLogger(__name__)


def webhook_url(settings: RelaySettings) -> str:
    """Join base and secret whether or not the base ends with a slash."""
    if settings.signl4_team_secret is None:
        raise ValueError("no SIGNL4 team secret: the relay is in dry-run")
    secret = quote(settings.signl4_team_secret.get_secret_value().strip(), safe="")
    return f"{settings.signl4_webhook_url.rstrip('/')}/{secret}"


class SendResult(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)  # built on the first send

    status_code: int
    event_id: str | None = None
    attempts: int = 1


class _RetryBudgetSpent(Exception):
    def __init__(self, wait: float, status: int | None) -> None:
        super().__init__(f"next retry in {wait:.1f}s would pass the retry budget")
        self.wait = wait
        self.status = status


RetryBudgetSpent = _RetryBudgetSpent


_session: requests.Session | None = None
_session_lock = threading.Lock()
_retry_class: type | None = None
# The retry of the send in progress (per thread and per task): the adapter reads it as its
# max_retries, so one shared pool serves calls that each have their own deadline.
_call_retry: ContextVar[Any] = ContextVar("signl4_call_retry", default=None)


def _http() -> requests.Session:
    """One session for the life of the worker: warm invocations reuse connections and TLS
    sessions. Stateless across calls like a bare pool: no cookies kept, no environment
    proxies or .netrc credentials (trust_env off), redirects never followed."""
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                from http.cookiejar import DefaultCookiePolicy

                import requests

                _install_log_redaction()
                session = requests.Session()
                session.trust_env = False
                session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
                adapter = _per_call_retry_adapter()(pool_connections=4, pool_maxsize=8)
                session.mount("https://", adapter)
                session.mount("http://", adapter)  # loopback only (settings refuse the rest)
                _session = session
    return _session


def _per_call_retry_adapter() -> type:
    """requests' HTTPAdapter whose max_retries is the current send's BudgetedRetry.

    HTTPAdapter hands self.max_retries to urllib3 on every send; reading it from a context
    variable gives each call its own attempts and wall-clock deadline without an adapter (and
    a pool) per call, and without copying requests' send()."""
    from requests.adapters import HTTPAdapter

    class PerCallRetryAdapter(HTTPAdapter):
        @property  # type: ignore[override]
        def max_retries(self) -> Any:
            return _call_retry.get() or self._fallback_retries

        @max_retries.setter
        def max_retries(self, value: Any) -> None:  # HTTPAdapter.__init__ sets its default
            self._fallback_retries = value

    return PerCallRetryAdapter


def _budgeted_retry_class() -> type:
    """urllib3's Retry, taught SIGNL4's X-RateLimit-Reset and a wall-clock budget."""
    global _retry_class
    if _retry_class is not None:
        return _retry_class
    from urllib3.exceptions import InvalidHeader
    from urllib3.util.retry import Retry

    class BudgetedRetry(Retry):
        deadline: float = float("inf")

        def new(self, **kw: Any) -> BudgetedRetry:
            fresh = super().new(**kw)
            fresh.deadline = self.deadline
            return fresh

        def get_retry_after(self, response: Any) -> float | None:
            try:
                retry_after = super().get_retry_after(response)
            except InvalidHeader:
                retry_after = None
            if retry_after is None:
                reset = str(response.headers.get("X-RateLimit-Reset", "")).strip()
                if reset.isdigit():
                    retry_after = max(0.0, int(reset) - time.time())
            return retry_after

        def sleep(self, response: Any = None) -> None:
            wait = self.get_retry_after(response) if response is not None else None
            if wait is None:
                wait = self.get_backoff_time()
            if time.monotonic() + wait > self.deadline:
                raise _RetryBudgetSpent(wait, getattr(response, "status", None))
            if wait > 0:
                time.sleep(wait)

    _retry_class = BudgetedRetry
    return BudgetedRetry


def budgeted_retry(settings: RelaySettings) -> Any:
    """A fresh retry for one call: its own attempts and wall-clock deadline (the Halo
    write-back client uses the same policy)."""
    retry = _budgeted_retry_class()(
        total=settings.signl4_max_attempts - 1,
        allowed_methods=None,  # POST is not idempotent, but a repeated page beats a lost one
        status_forcelist=RETRY_STATUSES,
        backoff_factor=settings.signl4_backoff_seconds,
        backoff_max=settings.signl4_retry_budget_seconds,
        raise_on_status=False,
        raise_on_redirect=False,
        respect_retry_after_header=True,
    )
    retry.deadline = time.monotonic() + settings.signl4_retry_budget_seconds
    return retry


def request_timeout(settings: RelaySettings) -> tuple[float, float]:
    """(connect, read) timeout of one attempt."""
    return (min(3.0, settings.signl4_timeout_seconds), settings.signl4_timeout_seconds)


@contextmanager
def retrying(settings: RelaySettings) -> Iterator[requests.Session]:
    """The worker's session, with a fresh budgeted retry for the calls made inside. Raises
    RetryBudgetSpent when a wait would pass the budget."""
    session = _http()
    token = _call_retry.set(budgeted_retry(settings))
    try:
        yield session
    finally:
        _call_retry.reset(token)


def describe_request_failure(error: BaseException) -> str:
    """What went wrong with a request, without its URL (which may hold a secret)."""
    return _describe_failure(_cause(error))


def send_event(payload: dict[str, Any], settings: RelaySettings) -> SendResult:
    """POST one event to SIGNL4, retrying transient failures within the settings' budget.

    Raises Signl4Rejected for a 4xx other than 429 (never retried: SIGNL4 throttles erroneous
    calls to 10/min) and Signl4Unavailable when the budget or the attempts run out.
    """
    from requests import RequestException

    timeout = request_timeout(settings)
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8", "replace")
    _register_secret(settings)
    session = _http()
    token = _call_retry.set(budgeted_retry(settings))
    try:
        with session.post(
            webhook_url(settings),
            data=body,
            headers={"Content-Type": "application/json", "User-Agent": "halopsa-signl4-relay"},
            timeout=timeout,
            allow_redirects=False,  # SIGNL4 answering 3xx is not a success
        ) as response:
            data = response.content  # read whole: the connection goes back to the pool
    except _RetryBudgetSpent as spent:
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
            f"{_describe_failure(_cause(error))}"
        ) from None
    finally:
        _call_retry.reset(token)

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


def _cause(error: BaseException) -> BaseException:
    """The urllib3 error under a requests error: ConnectionError(MaxRetryError(reason=...)),
    ReadTimeout(ReadTimeoutError), ConnectionError(ReadTimeoutError) while reading the body."""
    wrapped = error.args[0] if error.args and isinstance(error.args[0], BaseException) else error
    return getattr(wrapped, "reason", None) or wrapped


def _describe_failure(cause: BaseException) -> str:
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError

    # NewConnectionError subclasses ConnectTimeoutError, so it is asked first.
    if isinstance(cause, NewConnectionError):
        return "connection failed"
    if isinstance(cause, ReadTimeoutError):
        return "timed out waiting for the answer"
    if isinstance(cause, ConnectTimeoutError):
        return "timed out connecting"
    return type(cause).__name__


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


_redactor = RedactSecrets()


# requests logs nothing itself; urllib3 under it logs request URLs (connectionpool, retry,
# poolmanager) and, on a malformed answer, the URL again (connection). A filter on a logger
# does not apply to its children, so each is named.
URLLIB3_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.util.retry",
    "urllib3.poolmanager",
    "urllib3.connection",
)


def _install_log_redaction() -> None:
    for name in URLLIB3_LOGGERS:
        logging.getLogger(name).addFilter(_redactor)


def _register_secret(settings: RelaySettings) -> None:
    if settings.signl4_team_secret is not None:
        raw = settings.signl4_team_secret.get_secret_value().strip()
        if raw:
            _redactor.secrets.add(raw)  # scrub() knows its encoded forms
