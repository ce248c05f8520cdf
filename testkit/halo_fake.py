"""HaloPSA's REST API on loopback (pytest-httpserver), for the two-way tests and bench/writeback.py
(`start()` runs one outside pytest; the tests take the `halo` fixture).

Serves `/auth/token` (client credentials), `/api/authinfo`, `POST /api/Actions`,
`POST /api/Tickets`, `GET /api/Agent`, `GET /api/Outcome`, `GET /api/Webhook` (`webhooks`), `GET /api/WebhookEvent`
(`webhook_events`, by `webhook_id`) and `GET /api/Tickets/<id>`; records
every request; answers API calls only with a token it issued and has not expired
(`expire_tokens()` makes the next call a 401). A script per path makes it fail on purpose: an
int status (4xx/5xx with a Halo-style error text), a (status, headers) tuple, "hang" (holds the
answer until the test ends, so the relay's read timeout fires however slow the machine is), or a
callable(Request) -> Response.
`on_action` is called with each note it accepts (the loop test sends Halo's webhook from there).

Halo's contract beyond that: `GET /api/Outcome` lists `outcomes`; `/api/authinfo` names the
tenant (`tenant_id`) and the token request's `?tenant=` is recorded; `known_scopes` (when set)
makes the token endpoint refuse any other scope with 400 `invalid_scope`, as Halo does; `down`
(a status) answers every request with it (a failing Halo, to count the calls it is sent).

Every request body is checked against its contract (testkit/contracts/halo_*_request.json): one
that breaks it is answered 400 with the violations, whatever the script says, and fails the test
at teardown unless the test called `expect_violations()`. The fake's own answers are checked
against the answer contracts the same way, so the fake cannot drift from Halo either.
"""

from __future__ import annotations

import html
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response
from werkzeug.serving import WSGIRequestHandler

from testkit.contract import Watch

CLIENT_ID = "relay-two-way"
CLIENT_SECRET = "cl13nt-SECRET-h4lo-7Qx"
HALO_403 = "You do not have access to this Action at the moment"
TICKET_PATH = re.compile(r"^/api/Tickets/(\d+)$")
# A body sent as JSON that does not parse: no contract takes it (a str is never an array).
NOT_JSON = "<not JSON>"
# The contract of each request body, and of each answer the fake makes up itself.
REQUEST_CONTRACTS = {
    "/auth/token": "halo_token_request",
    "/api/Actions": "halo_actions_request",
    "/api/Tickets": "halo_tickets_request",
}
ANSWER_CONTRACTS = {
    "/auth/token": "halo_token_answer",
    "/api/authinfo": "halo_authinfo_answer",
    "/api/Agent": "halo_agent_answer",
    "/api/Outcome": "halo_outcome_answer",
    "/api/Webhook": "halo_webhook_answer",
    "/api/WebhookEvent": "halo_webhook_event_answer",
    "/api/Tickets/<id>": "halo_ticket_answer",
}


class HaloFake:
    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.requests: list[dict[str, Any]] = []
        self.actions: list[dict[str, Any]] = []
        self.tickets: list[dict[str, Any]] = []
        self.agents: list[dict[str, Any]] = [
            {"id": 7, "name": "Ann Agent", "email": "ann@contoso.example"},
            {"id": 8, "name": "Bob Builder", "email": "bob@contoso.example"},
        ]
        # GET /api/Tickets/<id> answers these (by id); an unknown id is a 404.
        self.ticket_records: dict[int, dict[str, Any]] = {}
        self.watch = Watch()
        self.issued: list[str] = []
        self._valid: set[str] = set()
        self._scripts: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1001)
        self.released = threading.Event()
        self.hang_cap_seconds = 120.0
        self.on_action: Callable[[dict[str, Any]], None] | None = None
        self.expires_in = 3600
        self.outcomes: list[dict[str, Any]] = [
            {"id": 1, "outcome": "Update"},
            {"id": 7, "outcome": "Private Note"},
            {"id": 9, "outcome": "Email User"},
        ]
        self.tenant_id = "contoso"
        # GET /api/Webhook answers these (Halo's Webhook objects, a few of their fields).
        self.webhooks: list[dict[str, Any]] = []
        # GET /api/WebhookEvent?webhook_id= answers these, newest first as listed here.
        self.webhook_events: list[dict[str, Any]] = []
        self.known_scopes: set[str] | None = None
        self.down: int | None = None
        for path, method in (
            ("/auth/token", "POST"),
            ("/api/authinfo", "GET"),
            ("/api/Actions", "POST"),
            ("/api/Tickets", "POST"),
            ("/api/Agent", "GET"),
            ("/api/Outcome", "GET"),
            ("/api/Webhook", "GET"),
            ("/api/WebhookEvent", "GET"),
            (TICKET_PATH, "GET"),
        ):
            server.expect_request(path, method=method).respond_with_handler(self._handle)

    @property
    def base_url(self) -> str:
        return self.server.url_for("/").rstrip("/")

    def script(self, path: str, *steps: Any) -> None:
        with self._lock:
            self._scripts[path] = list(steps)

    def expect_violations(self) -> None:
        """This test sends a body that breaks Halo's contract on purpose."""
        self.watch.expect_violations()

    def expire_tokens(self) -> None:
        with self._lock:
            self._valid.clear()

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]

    def notes(self, ticket_id: int | None = None) -> list[str]:
        """Each note as an agent reads it in Halo (its text: see `shown`)."""
        return [shown(a) for a in self.actions if ticket_id is None or a["ticket_id"] == ticket_id]

    def _handle(self, request: Request) -> Response:
        body: Any = None
        if request.mimetype == "application/json":
            try:
                body = json.loads(request.get_data())
            except ValueError:
                body = NOT_JSON
        record = {
            "method": request.method,
            "path": request.path,
            "json": body,
            "form": dict(request.form) if request.path == "/auth/token" else None,
            "query": dict(request.args),
            "authorization": request.headers.get("Authorization", ""),
        }
        broken = self._check_request(request, record)
        with self._lock:
            self.requests.append(record)
            steps = self._scripts.get(request.path) or []
            step = steps.pop(0) if steps and not broken else None
        if broken:
            return _refusal(request.path, broken)
        if step is None and self.down is not None:
            step = self.down
        if callable(step):
            return step(request)
        if step == "hang":
            self.released.wait(self.hang_cap_seconds)
            step = None
        headers: dict[str, str] = {}
        if isinstance(step, tuple):
            step, headers = step
        if isinstance(step, int):
            text = HALO_403 if step == 403 else f"scripted HTTP {step}"
            return Response(
                json.dumps(text), status=step, headers=headers, mimetype="application/json"
            )
        return self._checked_answer(request, record)

    def _check_request(self, request: Request, record: dict[str, Any]) -> list[str]:
        """The request body's violations of its contract (none for a GET)."""
        contract = REQUEST_CONTRACTS.get(request.path)
        if contract is None:
            return []
        body = record["form"] if request.path == "/auth/token" else record["json"]
        return self.watch.check(contract, body, f"{request.method} {request.path}")

    def _checked_answer(self, request: Request, record: dict[str, Any]) -> Response:
        """The fake's own answer, checked against Halo's answer contract when it is a 2xx."""
        response = self._answer(request, record)
        key = "/api/Tickets/<id>" if TICKET_PATH.match(request.path) else request.path
        contract = ANSWER_CONTRACTS.get(key)
        if contract is not None and 200 <= response.status_code < 300:
            answer = json.loads(response.get_data())
            self.watch.check(contract, answer, f"the fake's answer to {request.method} {key}")
        return response

    def _answer(self, request: Request, record: dict[str, Any]) -> Response:
        if request.path == "/api/authinfo":
            return _json({"auth_url": self.base_url + "/auth", "tenant_id": self.tenant_id})
        if request.path == "/auth/token":
            return self._token(record["form"] or {})
        token = record["authorization"].removeprefix("Bearer ")
        with self._lock:
            valid = token in self._valid
        if not valid:
            return Response("", status=401)
        if request.method == "GET":
            return self._read(request)
        if request.path == "/api/Tickets":
            with self._lock:
                self.tickets.extend(record["json"])
            return _json(record["json"][0], 201)
        (action,) = record["json"]
        created = {"id": next(self._ids), **action}
        with self._lock:
            self.actions.append(created)
        if self.on_action is not None:
            self.on_action(created)
        return _json(created, 201)

    def _token(self, form: dict[str, str]) -> Response:
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return _json({"error": "invalid_client"}, 401)
        asked = set(str(form.get("scope") or "").split())
        if self.known_scopes is not None and not asked <= self.known_scopes:
            return _json({"error": "invalid_scope"}, 400)  # OAuth 2.0's code, as Halo answers
        with self._lock:
            token = f"tok-{len(self.issued) + 1}"
            self.issued.append(token)
            self._valid.add(token)
        return _json({"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"})

    def _read(self, request: Request) -> Response:
        """GET /api/Agent?search=, GET /api/Outcome, GET /api/Webhook[Event], GET /api/Tickets/<id>."""
        if request.path == "/api/Agent":
            search = (request.args.get("search") or "").casefold()
            return _json([a for a in self.agents if search in a["email"].casefold()])
        if request.path == "/api/Outcome":
            return _json(self.outcomes)
        if request.path == "/api/Webhook":
            return _json(self.webhooks)
        if request.path == "/api/WebhookEvent":
            wanted = request.args.get("webhook_id")
            return _json([e for e in self.webhook_events if e.get("webhook_id") == wanted])
        match = TICKET_PATH.match(request.path)
        ticket = self.ticket_records.get(int(match.group(1))) if match else None
        if ticket is None:
            return _json("That Ticket does not exist", 404)
        return _json(ticket)


def _refusal(path: str, broken: list[str]) -> Response:
    """Halo's 400 for a body it cannot take, naming the violations (never a value)."""
    text = "; ".join(broken)
    if path == "/auth/token":
        return _json({"error": "invalid_request", "error_description": text}, 400)
    return _json({"message": text}, 400)


def shown(action: dict[str, Any]) -> str:
    """An action's note as Halo's screen shows it: note_html read as HTML with <br> as the only
    markup (entities decoded; any other tag would stay as it is, for a test to find), or the
    plain `note` when no note_html came."""
    if "note_html" in action:
        return html.unescape(str(action["note_html"]).replace("<br>", "\n"))
    return str(action["note"])


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status=status, mimetype="application/json")


class _QuietNoDelayHandler(WSGIRequestHandler):
    # The server writes the head and the body separately: with Nagle's algorithm on, the body
    # would wait ~40 ms for the client's delayed ACK (bench/README.md, "the 40 ms stall").
    disable_nagle_algorithm = True

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass  # a line per request would cost the fake time and say nothing


def start() -> HaloFake:
    """A loopback Halo on its own started server, in or outside pytest; `stop(fake)` ends it."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    # Before anyone knows the port, so every request gets the handler without the stall.
    server.server.RequestHandlerClass = _QuietNoDelayHandler  # type: ignore[union-attr]
    return HaloFake(server)


def stop(fake: HaloFake) -> None:
    """Release held answers ("hang") and stop the server."""
    fake.released.set()
    fake.server.clear()
    if fake.server.is_running():
        fake.server.stop()


@pytest.fixture(name="halo")
def halo_fixture() -> Iterator[HaloFake]:
    """Its own loopback server (the SIGNL4 fake has pytest-httpserver's shared one)."""
    from shared.adapters import halo as halo_api

    fake = start()
    halo_api.forget_tokens()
    try:
        yield fake
    finally:
        halo_api.forget_tokens()
        stop(fake)
    # Every test that writes to Halo is a contract test (after the server is down, so a failed
    # verdict leaves nothing running).
    verdict = fake.watch.verdict("the loopback Halo")
    if verdict is not None:
        pytest.fail(verdict, pytrace=False)
