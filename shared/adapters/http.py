"""The relay's HTTP policy for its remote clients (SIGNL4, Halo): one requests Session per
process, THE retry policy and the timeouts.

`BudgetedRetry` is urllib3's Retry taught Retry-After, SIGNL4's X-RateLimit-Reset (floored at
zero) and a wall-clock budget; each call gets a fresh one (`retrying`) on the shared pool. Failures
are described without their URL (a SIGNL4 URL holds the team secret), and urllib3's loggers are
scrubbed of registered secrets. requests and urllib3 load on the first call, not on cold start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from shared.redaction import RedactSecrets
from shared.settings import RelaySettings

if TYPE_CHECKING:  # requests (and urllib3 under it) load on the first call, not on cold start.
    import requests

RETRY_STATUSES = frozenset([429, *range(500, 600)])


class RetryBudgetSpent(Exception):
    """The next retry's wait would pass the call's wall-clock budget: the caller gives up."""

    def __init__(self, wait: float, status: int | None) -> None:
        super().__init__(f"next retry in {wait:.1f}s would pass the retry budget")
        self.wait = wait
        self.status = status


class AnswerTooLarge(Exception):
    """A remote's answer was longer than the caller reads (`capped_content`)."""


def capped_content(response: requests.Response, limit: int) -> bytes:
    """A streamed answer's body, read no further than `limit` bytes (AnswerTooLarge past it).
    A failure while reading is a requests ConnectionError, as an unstreamed read's would be."""
    import requests
    from urllib3.exceptions import HTTPError

    try:
        data = response.raw.read(limit + 1, decode_content=True)
    except HTTPError as error:
        raise requests.ConnectionError(error) from None
    if len(data) > limit:
        raise AnswerTooLarge(f"the answer is larger than {limit} bytes")
    return data


_session: requests.Session | None = None
_session_lock = threading.Lock()
_retry_class: type | None = None
# The retry of the call in progress (per thread and per task): the adapter reads it as its
# max_retries, so one shared pool serves calls that each have their own deadline.
_call_retry: ContextVar[Any] = ContextVar("call_retry", default=None)


def session() -> requests.Session:
    """One session for the life of the process: warm invocations reuse connections and TLS
    sessions. Stateless across calls like a bare pool: no cookies kept, no environment
    proxies or .netrc credentials (trust_env off), redirects never followed."""
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                from http.cookiejar import DefaultCookiePolicy

                import requests

                _install_log_redaction()
                made = requests.Session()
                made.trust_env = False
                made.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
                adapter = _per_call_retry_adapter()(pool_connections=4, pool_maxsize=8)
                made.mount("https://", adapter)
                made.mount("http://", adapter)  # loopback only (settings refuse the rest)
                _session = made
    return _session


def _per_call_retry_adapter() -> type:
    """requests' HTTPAdapter whose max_retries is the current call's BudgetedRetry.

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
                raise RetryBudgetSpent(wait, getattr(response, "status", None))
            if wait > 0:
                time.sleep(wait)

    _retry_class = BudgetedRetry
    return BudgetedRetry


def budgeted_retry(settings: RelaySettings) -> Any:
    """A fresh retry for one call: its own attempts and wall-clock deadline, from the SIGNL4_*
    retry settings (the Halo client passes its HALO_* values under those names)."""
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
    """The process's session, with a fresh budgeted retry for the calls made inside. Raises
    RetryBudgetSpent when a wait would pass the budget."""
    shared = session()
    token = _call_retry.set(budgeted_retry(settings))
    try:
        yield shared
    finally:
        _call_retry.reset(token)


def describe_request_failure(error: BaseException) -> str:
    """What went wrong with a request, without its URL (which may hold a secret)."""
    return _describe_failure(_cause(error))


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


# requests logs nothing itself; urllib3 under it logs request URLs (connectionpool, retry,
# poolmanager) and, on a malformed answer, the URL again (connection). A filter on a logger
# does not apply to its children, so each is named.
URLLIB3_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.util.retry",
    "urllib3.poolmanager",
    "urllib3.connection",
)

_redactor = RedactSecrets()


def _install_log_redaction() -> None:
    for name in URLLIB3_LOGGERS:
        logging.getLogger(name).addFilter(_redactor)


def register_secret(raw: str) -> None:
    """Scrub `raw` (and its encoded forms) from urllib3's log lines from now on."""
    if raw:
        _redactor.secrets.add(raw)
