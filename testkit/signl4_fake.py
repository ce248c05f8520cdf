"""SIGNL4's inbound webhook on loopback: records what it receives, answers from a script.

One implementation for both users:
- the tests attach it to pytest-httpserver's server in their own process (tests/conftest.py,
  fixture `signl4`) and script its answers;
- the benchmark runs it in a process of its own, `python -m testkit.signl4_fake`, so its work
  shares no interpreter (GIL) with the relay or the client being measured, and controls it over
  HTTP.

    python -m testkit.signl4_fake [--host 127.0.0.1] [--port 0] [--delay-ms 20]

prints `PORT <n>` on stdout once listening. Endpoints of that process:
- POST /webhook/<secret>: records the body, waits the current delay, answers 201
  `{"eventId": "evt-<n>"}` (what SIGNL4 answers);
- GET /stats: `{"count": n, "distinct": d, "ids": [...], "delay_ms": ..., "violations": [...]}`
  (ids are the bodies' X-S4-ExternalID);
- POST /control `{"delay_ms": x, "reset": true}`: change the delay and/or forget what arrived.

Every body is checked against SIGNL4's inbound-event contract
(testkit/contracts/signl4_inbound_event.json): one that breaks it (not JSON, not an object, a
wrong X-S4-* field) is recorded, then answered 400 with the violations, whatever the script
says. `watch` keeps the violations; the tests' fixture fails a test that had any it did not
expect (`watch.expect_violations()`).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug import Request, Response
from werkzeug.serving import WSGIRequestHandler, make_server

from testkit.contract import Watch

CONTRACT = "signl4_inbound_event"

# A scripted step: an int status (2xx answers with an eventId), a (status, headers) tuple,
# "hang" (holds the answer until `released` is set, then answers 201), or a
# callable(Request) -> Response.
Step = Any


class Signl4Fake:
    """The fake's behaviour, independent of the server that carries it.

    When the script runs out, every request gets `default` (201 with an eventId unless set).
    `delay_seconds` is waited before every answer (the benchmark's SIGNL4 latency; 0 in tests).
    """

    def __init__(self, delay_seconds: float = 0.0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.delay_seconds = delay_seconds
        self._steps: list[Step] = []
        self._lock = threading.Lock()
        # A hung answer waits for this (set at teardown); the cap only keeps a forgotten hang
        # from holding a server thread for ever.
        self.released = threading.Event()
        self.hang_cap_seconds = 120.0
        # Answers every request once the script has run out (default: 201 with an eventId).
        self.default: Callable[[Request], Response] | None = None
        self.watch = Watch()

    def expect_violations(self) -> None:
        """This test sends a body that breaks SIGNL4's contract on purpose."""
        self.watch.expect_violations()

    def script(self, *steps: Step) -> None:
        with self._lock:
            self._steps = list(steps)

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.requests)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            ids = [
                str(body.get("X-S4-ExternalID") if isinstance(body, dict) else None)
                for body in self.requests
            ]
            return {
                "count": len(ids),
                "distinct": len(set(ids)),
                "ids": ids,
                "delay_ms": self.delay_seconds * 1000,
                "violations": list(self.watch.violations),
            }

    def control(self, command: dict[str, Any]) -> None:
        with self._lock:
            if "delay_ms" in command:
                self.delay_seconds = float(command["delay_ms"]) / 1000
            if command.get("reset"):
                self.requests = []
                self.paths = []
                self.watch.clear()

    def handle(self, request: Request) -> Response:
        """One POST to the webhook: record it, check it against the contract, then answer the
        next scripted step (a body that breaks the contract gets 400, the script waits)."""
        try:
            body = json.loads(request.get_data())
        except ValueError:
            self.watch.record("POST /webhook: $: not JSON")
            return _json({"code": 3004, "message": "not JSON"}, 400)
        broken = self.watch.check(CONTRACT, body, "POST /webhook")
        with self._lock:
            self.requests.append(body)
            self.paths.append(request.path)
            number = len(self.requests)
            # A refused body leaves the script for the next request.
            steps = [] if broken else self._steps
            step = steps.pop(0) if steps else (self.default or 201)
            delay = self.delay_seconds
        if broken:
            return _json({"code": 3004, "message": "; ".join(broken)}, 400)
        if delay > 0:
            time.sleep(delay)  # SIGNL4's latency in the benchmark; never a test's verdict
        if callable(step):
            return step(request)
        if step == "hang":
            self.released.wait(self.hang_cap_seconds)
            step = 201
        headers: dict[str, str] = {}
        if isinstance(step, tuple):
            step, headers = step
        if 200 <= step < 300:
            body = {"eventId": f"evt-{number}"}
        else:
            body = {"code": 3004, "message": "Error raising event.", "details": "scripted"}
        return _json(body, step, headers)

    def wsgi_app(self) -> Callable[..., Iterable[bytes]]:
        """The fake as a process of its own serves: the webhook, /stats and /control."""

        @Request.application  # type: ignore[arg-type]
        def app(request: Request) -> Response:
            if request.method == "POST" and request.path.startswith("/webhook/"):
                return self.handle(request)
            if request.method == "GET" and request.path == "/stats":
                return _json(self.stats())
            if request.method == "POST" and request.path == "/control":
                self.control(json.loads(request.get_data() or b"{}"))
                return _json({"ok": True})
            return _json({"message": "not found"}, 404)

        return app  # type: ignore[no-any-return]


def _json(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")


class _QuietNoDelayHandler(WSGIRequestHandler):
    # The server writes the head and the body separately: with Nagle's algorithm on, the body
    # would wait ~40 ms for the client's delayed ACK (bench/README.md, "the 40 ms stall").
    disable_nagle_algorithm = True

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass  # the path holds the team secret, and logging would cost the fake time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SIGNL4's inbound webhook on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args(argv)
    fake = Signl4Fake(args.delay_ms / 1000)
    server = make_server(
        args.host, args.port, fake.wsgi_app(), threaded=True, request_handler=_QuietNoDelayHandler
    )
    server.socket.listen(128)  # a burst opens many connections at once
    print(f"PORT {server.server_port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
