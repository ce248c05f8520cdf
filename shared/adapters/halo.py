"""HaloPSA's REST API for the write-back (edge): a client-credentials token (cached per process,
renewed once on a 401; the auth URL and tenant from the settings or /api/authinfo), then one
action per write-back: the note, its outcome (HALO_NOTE_OUTCOME resolved once to an id), the
new status and the assigned agent. An optional scope Halo refuses is dropped, not the notes.
Calls use the process's HTTP session and retry policy (shared/adapters/http.py) with Halo's own
HALO_* settings, within CALL_BUDGET calls per BUDGET_WINDOW_SECONDS. Failures: HaloUnavailable
(queued) or HaloRejected (poison); the client secret and tokens never reach a log or a message.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from shared.adapters.http import (
    RETRY_STATUSES,
    AnswerTooLarge,
    RetryBudgetSpent,
    capped_content,
    describe_request_failure,
    request_timeout,
    retrying,
)
from shared.adapters.remote_state import clear_halo_warnings, record_halo_warning
from shared.adapters.sender import SendResult
from shared.domain import writeback
from shared.errors import HaloRejected, HaloUnavailable
from shared.redaction import log_safe, redact_echo
from shared.settings import RelaySettings, https_url

HALO_ERROR_MAX_CHARS = 200
ACTION_ID_MAX_CHARS = 100
USER_AGENT = "halopsa-signl4-relay"
# Scopes only an optional feature needs: refused by Halo, they are dropped, not the notes.
OPTIONAL_SCOPES = frozenset({"read:agents"})
# Halo's own 429 text on hosted instances reads "300 Requests per rolling 5 minute window"; a
# wiki says 450. Each worker keeps to 240 per 5 minutes, leaving room for Halo's other clients.
CALL_BUDGET = 240
BUDGET_WINDOW_SECONDS = 300.0
# An outcome name Halo does not offer is asked about again after this long, not on every write.
OUTCOME_RECHECK_SECONDS = 300.0
OFFERED_MAX_NAMES, OFFERED_NAME_MAX_CHARS = 15, 40
TENANT_MAX_CHARS = 100
# Reading a ticket happens while Halo waits for the relay's answer: one short try and one retry
# within a small budget; a read that fails is decided without (shared/delivery/ticket_reads.py).
TICKET_READ_TIMEOUT_SECONDS = 5.0
TICKET_READ_ATTEMPTS = 2
TICKET_READ_BUDGET_SECONDS = 2.0
TICKET_MAX_BYTES = 1024 * 1024  # Halo's Fault has over 800 fields; an answer past this is refused

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Token:
    value: str
    fresh_until: float  # time.monotonic()


@dataclass(frozen=True)
class _AuthInfo:
    auth_url: str | None
    tenant: str | None


@dataclass(frozen=True)
class _NoOutcome:
    """HALO_NOTE_OUTCOME could not be resolved: why, and until when that answer is kept."""

    message: str
    until: float  # time.monotonic()
    by_name: bool  # GET /api/Outcome was refused: send the name, as before


_tokens: dict[tuple[str, str, str, str], _Token] = {}
_auth_infos: dict[str, _AuthInfo] = {}
_refused_scopes: dict[tuple[str, str, str, str], frozenset[str]] = {}
_outcomes: dict[tuple[str, str], int | _NoOutcome] = {}
_lock = threading.Lock()


class CallBudget:
    """At most `limit` Halo calls per `window` seconds in this worker (a sliding window)."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()

    def take(self, count: int = 1, *, force: bool = False) -> bool:
        """Count `count` calls; False (nothing counted) when they would pass the limit,
        unless `force` (retries already made are counted whatever the limit)."""
        with self._lock:
            now = self.clock()
            while self._calls and self._calls[0] <= now - self.window:
                self._calls.popleft()
            if not force and len(self._calls) + count > self.limit:
                return False
            self._calls.extend([now] * count)
            return True


_budget = CallBudget(CALL_BUDGET, BUDGET_WINDOW_SECONDS)


def reset_call_budget(
    limit: int = CALL_BUDGET, clock: Callable[[], float] = time.monotonic
) -> CallBudget:
    """A fresh budget for this worker (tests: a small limit, their own clock)."""
    global _budget
    _budget = CallBudget(limit, BUDGET_WINDOW_SECONDS, clock)
    return _budget


def write_back(payload: dict[str, Any], settings: RelaySettings) -> SendResult:
    """Write one mailbox payload (shared/domain/writeback.halo_payload) into its ticket: one action
    with the note, its outcome, the status and the agent. Lookups first (token, outcome id,
    agent), the action last: a retry after a failure repeats only what does no harm twice.
    Returns Halo's action id as the event id."""
    client = HaloClient(settings)
    note = str(payload["note"])
    outcome_id = client.outcome_id()
    agent_id = None
    email = payload.get("assignEmail")
    if email:
        agent_id, note = client.assignment(str(email), note, int(payload["ticketId"]))
    body = writeback.action_body(payload, note, settings, outcome_id=outcome_id, agent_id=agent_id)
    try:
        created = client.call("POST", "/api/Actions", body=body)
    except HaloRejected as error:
        if error.remote_status == 400:  # perhaps the outcome id went stale: ask again next time
            forget_outcomes(client.base)
        raise
    return SendResult(status_code=200, event_id=_action_id(created), attempts=client.calls)


def read_ticket(ticket_id: int, settings: RelaySettings) -> dict[str, Any]:
    """GET /api/Tickets/{id}: Halo's ticket as a JSON object (the ticket-reader port,
    shared/adapters/ticket_source.py). Short: Halo waits for the relay's answer meanwhile.
    HaloUnavailable or HaloRejected when it cannot be had; the caller decides without it."""
    client = HaloClient(settings)
    client.http = client.http.model_copy(
        update={
            "signl4_timeout_seconds": min(
                client.http.signl4_timeout_seconds, TICKET_READ_TIMEOUT_SECONDS
            ),
            "signl4_max_attempts": min(client.http.signl4_max_attempts, TICKET_READ_ATTEMPTS),
            "signl4_retry_budget_seconds": min(
                client.http.signl4_retry_budget_seconds, TICKET_READ_BUDGET_SECONDS
            ),
        }
    )
    record = client.call("GET", f"/api/Tickets/{int(ticket_id)}", limit=TICKET_MAX_BYTES)
    if not isinstance(record, dict):
        raise HaloRejected(f"Halo answered GET /api/Tickets/{ticket_id} without a ticket", 200)
    return record


def halo_http_settings(settings: RelaySettings) -> RelaySettings:
    """The settings the shared retry policy reads (SIGNL4_*), with Halo's own HALO_* values
    where they are set: unset, Halo is retried as SIGNL4 is."""
    own = {
        "signl4_timeout_seconds": settings.halo_timeout_seconds,
        "signl4_max_attempts": settings.halo_max_attempts,
        "signl4_retry_budget_seconds": settings.halo_retry_budget_seconds,
        "signl4_backoff_seconds": settings.halo_backoff_seconds,
    }
    update = {name: value for name, value in own.items() if value is not None}
    return settings.model_copy(update=update) if update else settings


class HaloClient:
    """Calls to one Halo instance with the settings' credentials."""

    def __init__(self, settings: RelaySettings) -> None:
        if not settings.two_way or settings.halo_base_url is None:
            raise HaloRejected("two-way sync is off (HALO_CLIENT_ID/HALO_CLIENT_SECRET)", None)
        self.settings = settings
        self.http = halo_http_settings(settings)
        self.base = settings.halo_base_url.rstrip("/")
        self.calls = 0

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        limit: int | None = None,
    ) -> Any:
        """One API call; a 401 (an expired or revoked token) fetches a new token once.
        `limit`: the most bytes of answer read (past it: HaloRejected)."""
        for attempt in range(2):
            token = self._token(renew=attempt > 0)
            status, data = self._send(
                method,
                self.base + path,
                what=f"{method} {path}",
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                json_body=body,
                params=params,
                limit=limit,
            )
            if status != 401:
                break
        return self._answer(f"{method} {path}", status, data)

    def _answer(self, call: str, status: int, data: bytes) -> Any:
        """Halo's last answer to an API call: its JSON on a 2xx; HaloUnavailable on 429/5xx
        (retried up to here); HaloRejected, with Halo's own error text, on anything else."""
        if 200 <= status < 300:
            return _json(data)
        if status in RETRY_STATUSES:
            raise HaloUnavailable(f"Halo answered HTTP {status} to {call}", status)
        raise HaloRejected(
            f"Halo refused {call} with HTTP {status}{self._halo_error(data)}", status
        )

    # -- what the action needs: the outcome id, the agent --

    def outcome_id(self) -> int | None:
        """HALO_NOTE_OUTCOME_ID; else HALO_NOTE_OUTCOME's id from GET /api/Outcome (cached);
        None when Halo refuses that lookup (the name is sent, as before). A name Halo does
        not offer is HaloRejected listing the names it does (kept OUTCOME_RECHECK_SECONDS)."""
        if self.settings.halo_note_outcome_id is not None:
            return self.settings.halo_note_outcome_id
        name = self.settings.halo_note_outcome.strip()
        key = (self.base, name.casefold())
        with _lock:
            known = _outcomes.get(key)
        if isinstance(known, int):
            return known
        if known is not None and known.until > time.monotonic():
            if known.by_name:
                return None
            raise HaloRejected(known.message, None)
        self._token(renew=False)  # a refused token is not a refused lookup
        try:
            listed = self.call("GET", "/api/Outcome")
        except HaloRejected as error:
            if error.remote_status == 401:
                raise
            message = f"{error.message}; the outcome is sent by name (HALO_NOTE_OUTCOME)"
            return self._no_outcome(key, message, by_name=True)
        found, offered = match_outcome(listed, name)
        if found is None:
            message = (
                f"HALO_NOTE_OUTCOME {log_safe(name[:OFFERED_NAME_MAX_CHARS], quoted=True)} is "
                f"not an outcome Halo offers (it offers: {offered}); set HALO_NOTE_OUTCOME to "
                "one of them, or HALO_NOTE_OUTCOME_ID"
            )
            self._no_outcome(key, message, by_name=False)
            raise HaloRejected(message, None)
        with _lock:
            _outcomes[key] = found
        record_halo_warning("outcome", None)
        return found

    def _no_outcome(self, key: tuple[str, str], message: str, *, by_name: bool) -> None:
        until = time.monotonic() + OUTCOME_RECHECK_SECONDS
        with _lock:
            _outcomes[key] = _NoOutcome(message, until, by_name)
        logger.warning("halo: %s", log_safe(message))
        record_halo_warning(
            "outcome",
            "GET /api/Outcome was refused: the note outcome is sent by name"
            if by_name
            else "HALO_NOTE_OUTCOME is not an outcome Halo offers: write-backs are refused "
            "(python -m shared check --live lists the ones it does)",
        )

    def assignment(self, email: str, note: str, ticket_id: int) -> tuple[int | None, str]:
        """The agent whose e-mail is `email`, and the note saying what became of it. A lookup
        the note does not depend on: refused (a scope, a 403, a 404), the note goes without."""
        self._token(renew=False)
        refused = sorted(self.refused_scopes())
        if refused:
            why = f"Halo refused the {' '.join(refused)} scope the agent lookup needs"
            return None, f"{note}\nNot assigned: {why}."
        try:
            agents = self.call("GET", "/api/Agent", params={"search": email})
        except HaloRejected as error:
            if error.remote_status == 401:
                raise
            logger.warning(
                "halo: the agent lookup for ticket %d was refused (HTTP %s): the note is "
                "written without the assignment",
                ticket_id,
                error.remote_status,
            )
            why = f"Halo refused the agent lookup (HTTP {error.remote_status})"
            return None, f"{note}\nNot assigned: {why}."
        agent = writeback.match_agent(agents, email)
        agent_id = agent["id"] if agent is not None else None
        return agent_id, writeback.assignment_note(note, email, agent)

    # -- the token --

    def fresh_token(self) -> str:
        """A new token, not the cached one (`python -m shared check --live`)."""
        return self._token(renew=True)

    def refused_scopes(self) -> frozenset[str]:
        """The optional scopes Halo refused to this client (known once a token was asked)."""
        key = self._token_key()
        with _lock:
            return _refused_scopes.get(key, frozenset())

    def _token_key(self) -> tuple[str, str, str, str]:
        auth_url, tenant = self._auth()
        assert self.settings.halo_client_id
        return (auth_url, self.settings.halo_client_id, tenant, self.settings.halo_token_scope)

    def _token(self, *, renew: bool) -> str:
        key = self._token_key()
        with _lock:
            cached = _tokens.get(key)
            if cached is not None and renew:
                del _tokens[key]
                cached = None
        if cached is not None and cached.fresh_until > time.monotonic():
            return cached.value
        status, data = self._ask_token(key)
        if _invalid_scope(status, data) and self._refuse_optional(key):
            status, data = self._ask_token(key)
        if status in RETRY_STATUSES:
            raise HaloUnavailable(f"Halo's token endpoint answered HTTP {status}", status)
        parsed = _json(data)
        value = parsed.get("access_token") if isinstance(parsed, dict) else None
        if not (200 <= status < 300) or not isinstance(value, str) or not value:
            raise HaloRejected(
                f"Halo refused the client credentials (HTTP {status}{self._halo_error(data)}); "
                "check HALO_CLIENT_ID, HALO_CLIENT_SECRET, HALO_TENANT and HALO_SCOPE",
                status,
            )
        fresh_until = time.monotonic() + fresh_for(parsed.get("expires_in"))
        with _lock:
            _tokens[key] = _Token(value, fresh_until)
        return value

    def _ask_token(self, key: tuple[str, str, str, str]) -> tuple[int, bytes]:
        """POST {auth url}/token for the key's tenant, without the scopes Halo refused."""
        auth_url, client_id, tenant, scope = key
        with _lock:
            refused = _refused_scopes.get(key, frozenset())
        url = f"{auth_url}/token"
        if tenant:
            url += f"?tenant={quote(tenant, safe='')}"
        assert self.settings.halo_client_secret is not None
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": self.settings.halo_client_secret.get_secret_value(),
            "scope": " ".join(s for s in scope.split() if s not in refused),
        }
        return self._send("POST", url, what="the token request", form=form)

    def _refuse_optional(self, key: tuple[str, str, str, str]) -> bool:
        """Halo said invalid_scope: drop the optional scopes still asked for (True), once per
        process, with one warning line; False when none is left to drop."""
        with _lock:
            refused = _refused_scopes.get(key, frozenset())
            dropped = (set(key[3].split()) & OPTIONAL_SCOPES) - refused
            if not dropped:
                return False
            _refused_scopes[key] = refused | dropped
        names = " ".join(sorted(dropped))
        logger.warning(
            "halo: Halo refused the scope %s (invalid_scope); the token is asked for without "
            "it and notes are written without the assignment (grant it to the API application "
            "in Halo, or set HALO_ASSIGN_ON_ACK=false)",
            names,
        )
        record_halo_warning("scope", f"Halo refused the scope {names}: notes go without assignment")
        return True

    def _auth(self) -> tuple[str, str]:
        """The authorisation server and the tenant: the settings', else authinfo's."""
        settings = self.settings
        if settings.halo_auth_url and settings.halo_tenant:
            return settings.halo_auth_url.rstrip("/"), settings.halo_tenant
        info = self._authinfo()
        if settings.halo_auth_url:
            auth_url = settings.halo_auth_url.rstrip("/")
        else:
            auth_url = info.auth_url or f"{self.base}/auth"
        return auth_url, settings.halo_tenant or info.tenant or ""

    def _authinfo(self) -> _AuthInfo:
        """GET /api/authinfo, once per worker: `auth_url` (https only, or it is not used)
        and `tenant_id`. Not answered (429/5xx, unreachable): HaloUnavailable, not kept;
        refused or unreadable: nothing learnt, kept."""
        with _lock:
            known = _auth_infos.get(self.base)
        if known is not None:
            return known
        status, data = self._send("GET", f"{self.base}/api/authinfo", what="authinfo")
        if status in RETRY_STATUSES:
            raise HaloUnavailable(f"Halo answered HTTP {status} to GET /api/authinfo", status)
        info = _json(data) if 200 <= status < 300 else None
        info = info if isinstance(info, dict) else {}
        auth_url, tenant = info.get("auth_url"), info.get("tenant_id")
        found = _AuthInfo(None, None)
        if isinstance(auth_url, str) and auth_url.strip():
            # Not https: keep the default rather than send the secret in clear.
            with contextlib.suppress(ValueError):
                found = _AuthInfo(https_url(auth_url.strip()).rstrip("/"), None)
        if isinstance(tenant, (str, int)) and not isinstance(tenant, bool):
            text = str(tenant).strip()
            if text and len(text) <= TENANT_MAX_CHARS and text.isprintable():
                found = _AuthInfo(found.auth_url, text)
        with _lock:
            _auth_infos[self.base] = found
        return found

    # -- HTTP --

    def _send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: dict[str, str] | None = None,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        limit: int | None = None,
    ) -> tuple[int, bytes]:
        from requests import RequestException

        if not _budget.take():
            raise HaloUnavailable(
                f"this worker's Halo call budget ({_budget.limit} calls per "
                f"{_budget.window / 60:g} minutes) is spent; {what} waits in the queue"
            )
        self.calls += 1
        sent_headers = {"User-Agent": USER_AGENT, **(headers or {})}
        data: bytes | dict[str, str] | None = form
        if json_body is not None:
            data = json.dumps(json_body, ensure_ascii=False).encode("utf-8", "replace")
            sent_headers["Content-Type"] = "application/json"
        try:
            with (
                retrying(self.http) as session,
                session.request(
                    method,
                    url,
                    data=data,
                    params=params,
                    headers=sent_headers,
                    timeout=request_timeout(self.http),
                    allow_redirects=False,
                    stream=limit is not None,
                ) as response,
            ):
                retries = getattr(response.raw, "retries", None)
                if retries is not None and retries.history:  # Halo counts retries too
                    _budget.take(len(retries.history), force=True)
                return response.status_code, _content(response, limit, what)
        except RetryBudgetSpent as spent:
            raise HaloUnavailable(
                f"Halo asked to wait {spent.wait:.1f}s (HTTP {spent.status}) for {what}, past "
                f"the relay's {self.http.signl4_retry_budget_seconds:g}s retry budget",
                spent.status,
            ) from None
        except RequestException as error:
            raise HaloUnavailable(
                f"could not reach Halo for {what}: {describe_request_failure(error)}"
            ) from None

    def _halo_error(self, data: bytes) -> str:
        """Halo's own error text (scrubbed of the client secret and tokens, then cut short)."""
        parsed = _json(data)
        text: Any = parsed
        if isinstance(parsed, dict):
            text = next(
                (
                    parsed[k]
                    for k in ("message", "Message", "error_description", "error", "title")
                    if parsed.get(k)
                ),
                None,
            )
        elif parsed is None:
            text = data.decode("utf-8", "replace").strip() if data else None
        if not text or not isinstance(text, (str, int, float)):
            return ""
        secrets = {t.value for t in _tokens.values()}
        if self.settings.halo_client_secret is not None:
            secrets.add(self.settings.halo_client_secret.get_secret_value())
        cleaned = redact_echo(str(text), secrets, HALO_ERROR_MAX_CHARS)
        if cleaned is None:
            return ": Halo's error text withheld (it echoed a secret)"
        return f": {cleaned}"


def fresh_for(expires_in: Any) -> float:
    """Seconds a token is used: renewed a little before Halo would refuse it (a tenth of its
    life early, at most a minute); an hour's life when Halo does not say."""
    lifetime = float(expires_in) if isinstance(expires_in, (int, float)) else 3600.0
    return max(0.0, lifetime - min(60.0, lifetime / 10))


def _content(response: Any, limit: int | None, what: str) -> bytes:
    """The answer's body; with a `limit`, read no further than it (HaloRejected past it)."""
    if limit is None:
        return response.content
    try:
        return capped_content(response, limit)
    except AnswerTooLarge:
        raise HaloRejected(f"Halo's answer to {what} is larger than {limit} bytes", None) from None


def _json(data: bytes) -> Any:
    try:
        return json.loads(data) if data else None
    except (ValueError, RecursionError):  # not JSON, or nested past what Python parses
        return None


def _action_id(created: Any) -> str | None:
    if isinstance(created, list) and created:
        created = created[0]
    if isinstance(created, dict) and created.get("id") is not None:
        return str(created["id"])[:ACTION_ID_MAX_CHARS]
    return None


def _invalid_scope(status: int, data: bytes) -> bool:
    """Halo's token endpoint refusing a scope: OAuth 2.0's `invalid_scope` (RFC 6749 5.2)."""
    parsed = _json(data)
    return status == 400 and isinstance(parsed, dict) and parsed.get("error") == "invalid_scope"


def match_outcome(listed: Any, name: str) -> tuple[int | None, str]:
    """The id of the outcome called `name` (case-insensitive) in GET /api/Outcome's answer,
    and the names Halo offers (for the message: made inert, cut to a few, each cut short)."""
    if isinstance(listed, dict):
        listed = listed.get("outcomes") or listed.get("records") or []
    wanted = name.strip().casefold()
    names: list[str] = []
    for outcome in listed if isinstance(listed, list) else []:
        if not isinstance(outcome, dict):
            continue
        ident = outcome.get("id")
        label = outcome.get("outcome") or outcome.get("name")
        if not isinstance(label, str) or not isinstance(ident, int) or isinstance(ident, bool):
            continue
        if label.strip().casefold() == wanted:
            return ident, ""
        names.append(log_safe(label.strip()[:OFFERED_NAME_MAX_CHARS], quoted=True))
    shown = ", ".join(names[:OFFERED_MAX_NAMES]) or "none"
    more = len(names) - OFFERED_MAX_NAMES
    return None, shown + (f" and {more} more" if more > 0 else "")


def forget_outcomes(base: str | None = None) -> None:
    """Drop the resolved outcome ids (of one Halo instance, or all)."""
    with _lock:
        for key in [k for k in _outcomes if base is None or k[0] == base]:
            del _outcomes[key]


def forget_tokens() -> None:
    """Drop what this worker learnt from Halo: tokens, authinfo, refused scopes, outcome ids
    (tests; a rotated secret is picked up on a 401 anyway)."""
    with _lock:
        _tokens.clear()
        _auth_infos.clear()
        _refused_scopes.clear()
        _outcomes.clear()
    clear_halo_warnings()
    reset_call_budget()
    from shared.adapters.halo_webhooks import forget_halo_side

    forget_halo_side()
