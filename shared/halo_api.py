"""HaloPSA's REST API for the write-back (edge): a client-credentials token, then notes, status
and assignment on a ticket.

The token comes from `{auth url}/token` (HALO_AUTH_URL; else what `{HALO_BASE_URL}/api/authinfo`
names; else `{HALO_BASE_URL}/auth`) and is cached per worker until shortly before it expires;
an API call answered 401 fetches a new one once. Calls go through the SIGNL4 client's session
and retry policy (shared/signl4.py: 429, 5xx, timeouts retried within the budget), so a
write-back that still fails is HaloUnavailable (queued by the caller) and a 4xx is HaloRejected
(poison, with Halo's message). The client secret and the access token never reach a log, an
answer, an exception or a queue message: Halo's error text is scrubbed of both.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from shared import writeback
from shared.errors import HaloRejected, HaloUnavailable
from shared.redaction import redact_echo
from shared.settings import RelaySettings, _https_url
from shared.signl4_client import (
    RETRY_STATUSES,
    RetryBudgetSpent,
    SendResult,
    describe_request_failure,
    request_timeout,
    retrying,
)

HALO_ERROR_MAX_CHARS = 200
ACTION_ID_MAX_CHARS = 100
USER_AGENT = "halopsa-signl4-relay"


@dataclass(frozen=True)
class _Token:
    value: str
    fresh_until: float  # time.monotonic()


_tokens: dict[tuple[str, str, str, str], _Token] = {}
_auth_urls: dict[str, str] = {}
_lock = threading.Lock()


def write_back(payload: dict[str, Any], settings: RelaySettings) -> SendResult:
    """Write one mailbox payload (shared/writeback.halo_payload) into its ticket.

    Idempotent steps first (agent lookup, assignment), the note last: a retry after a failure
    repeats only what does no harm twice. Returns Halo's action id as the event id."""
    client = HaloClient(settings)
    ticket_id = int(payload["ticketId"])
    note = str(payload["note"])
    email = payload.get("assignEmail")
    if email:
        agents = client.call("GET", "/api/Agent", params={"search": email})
        agent = writeback.match_agent(agents, email)
        if agent is not None:
            client.call("POST", "/api/Tickets", body=writeback.assign_body(ticket_id, agent["id"]))
        note = writeback.assignment_note(note, email, agent)
    created = client.call(
        "POST", "/api/Actions", body=writeback.action_body(payload, note, settings)
    )
    return SendResult(status_code=200, event_id=_action_id(created), attempts=client.calls)


class HaloClient:
    """Calls to one Halo instance with the settings' credentials."""

    def __init__(self, settings: RelaySettings) -> None:
        if not settings.two_way or settings.halo_base_url is None:
            raise HaloRejected("two-way sync is off (HALO_CLIENT_ID/HALO_CLIENT_SECRET)", None)
        self.settings = settings
        self.base = settings.halo_base_url.rstrip("/")
        self.calls = 0

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """One API call; a 401 (an expired or revoked token) fetches a new token once."""
        for attempt in range(2):
            token = self._token(renew=attempt > 0)
            status, data = self._send(
                method,
                self.base + path,
                what=f"{method} {path}",
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                json_body=body,
                params=params,
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

    # -- the token --

    def fresh_token(self) -> str:
        """A new token, not the cached one (`python -m shared check --live`)."""
        return self._token(renew=True)

    def _token(self, *, renew: bool) -> str:
        settings = self.settings
        assert settings.halo_client_id and settings.halo_client_secret
        auth_url = self._auth_url()
        key = (
            auth_url,
            settings.halo_client_id,
            settings.halo_tenant or "",
            settings.halo_token_scope,
        )
        with _lock:
            cached = _tokens.get(key)
            if cached is not None and renew:
                del _tokens[key]
                cached = None
        if cached is not None and cached.fresh_until > time.monotonic():
            return cached.value
        url = f"{auth_url}/token"
        if settings.halo_tenant:
            url += f"?tenant={quote(settings.halo_tenant, safe='')}"
        form = {
            "grant_type": "client_credentials",
            "client_id": settings.halo_client_id,
            "client_secret": settings.halo_client_secret.get_secret_value(),
            "scope": settings.halo_token_scope,
        }
        status, data = self._send("POST", url, what="the token request", form=form)
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

    def _auth_url(self) -> str:
        if self.settings.halo_auth_url:
            return self.settings.halo_auth_url.rstrip("/")
        with _lock:
            known = _auth_urls.get(self.base)
        if known is not None:
            return known
        found = f"{self.base}/auth"
        try:
            status, data = self._send("GET", f"{self.base}/api/authinfo", what="authinfo")
        except HaloUnavailable:
            status, data = 0, b""
        info = _json(data) if 200 <= status < 300 else None
        named = info.get("auth_url") if isinstance(info, dict) else None
        if isinstance(named, str) and named.strip():
            # Not https: keep the default rather than send the secret in clear.
            with contextlib.suppress(ValueError):
                found = _https_url(named.strip()).rstrip("/")
        with _lock:
            _auth_urls[self.base] = found
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
    ) -> tuple[int, bytes]:
        from requests import RequestException

        self.calls += 1
        sent_headers = {"User-Agent": USER_AGENT, **(headers or {})}
        data: bytes | dict[str, str] | None = form
        if json_body is not None:
            data = json.dumps(json_body, ensure_ascii=False).encode("utf-8", "replace")
            sent_headers["Content-Type"] = "application/json"
        try:
            with (
                retrying(self.settings) as session,
                session.request(
                    method,
                    url,
                    data=data,
                    params=params,
                    headers=sent_headers,
                    timeout=request_timeout(self.settings),
                    allow_redirects=False,
                ) as response,
            ):
                return response.status_code, response.content
        except RetryBudgetSpent as spent:
            raise HaloUnavailable(
                f"Halo asked to wait {spent.wait:.1f}s (HTTP {spent.status}) for {what}, past "
                f"the relay's {self.settings.signl4_retry_budget_seconds:g}s retry budget",
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


def _json(data: bytes) -> Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        return None


def _action_id(created: Any) -> str | None:
    if isinstance(created, list) and created:
        created = created[0]
    if isinstance(created, dict) and created.get("id") is not None:
        return str(created["id"])[:ACTION_ID_MAX_CHARS]
    return None


def forget_tokens() -> None:
    """Drop cached tokens and auth URLs (tests; a rotated secret is picked up on a 401 anyway)."""
    with _lock:
        _tokens.clear()
        _auth_urls.clear()
