"""A loopback stand-in for SIGNL4's inbound webhook, run in its own process by the benchmark.

Why its own process: the relay under test and the benchmark client are separate processes, and
real SIGNL4 runs on someone else's machine. A fake living in the client's (or the relay's)
interpreter would share that interpreter's GIL, so its JSON parsing and bookkeeping would be
charged to whichever side we host it in: in the client it slows the "direct" baseline and the
client's own timing, in the relay it inflates the relay's cost. In its own process it takes
only CPU time (2 cores here, so it can still steal a core: that noise hits direct and relay
runs alike, which is why the report quotes medians and ratios).

    python bench/signl4_fake.py [--port 0] [--delay-ms 20]

prints `PORT <n>` on stdout once listening. Endpoints:
- POST /webhook/<secret>: records the body's X-S4-ExternalID, waits the current delay, and
  answers 201 `{"eventId": "evt-<n>"}` (what SIGNL4 answers);
- GET /stats: `{"count": n, "distinct": d, "ids": [...], "delay_ms": ...}`;
- POST /control `{"delay_ms": x, "reset": true}`: change the delay and/or forget what arrived.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeState:
    def __init__(self, delay_ms: float) -> None:
        self.lock = threading.Lock()
        self.delay_s = delay_ms / 1000
        self.count = 0
        self.ids: list[str] = []

    def record(self, external_id: str) -> int:
        with self.lock:
            self.count += 1
            self.ids.append(external_id)
            return self.count

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "count": self.count,
                "distinct": len(set(self.ids)),
                "ids": list(self.ids),
                "delay_ms": self.delay_s * 1000,
            }

    def control(self, command: dict[str, Any]) -> None:
        with self.lock:
            if "delay_ms" in command:
                self.delay_s = float(command["delay_ms"]) / 1000
            if command.get("reset"):
                self.count = 0
                self.ids = []


def make_handler(state: FakeState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like SIGNL4 behind its load balancer
        # Header and body go out in one write below; NODELAY as well so no Nagle/delayed-ACK
        # stall can be blamed on the fake.
        disable_nagle_algorithm = True

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            head = (
                f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\n"
                "Content-Type: application/json; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            self.wfile.write(head + body)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length > 0 else b""

        def do_POST(self) -> None:
            body = self._body()
            if self.path.startswith("/webhook/"):
                delay = state.delay_s
                try:
                    external_id = str(json.loads(body).get("X-S4-ExternalID"))
                except (ValueError, AttributeError):
                    self._reply(400, {"code": 3004, "message": "not JSON"})
                    return
                number = state.record(external_id)
                if delay > 0:
                    time.sleep(delay)
                self._reply(201, {"eventId": f"evt-{number}"})
            elif self.path == "/control":
                state.control(json.loads(body or b"{}"))
                self._reply(200, {"ok": True})
            else:
                self._reply(404, {"message": "not found"})

        def do_GET(self) -> None:
            if self.path == "/stats":
                self._reply(200, state.stats())
            else:
                self._reply(404, {"message": "not found"})

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the path holds the team secret, and logging would cost the fake time

    return Handler


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst opens many connections at once


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args(argv)
    state = FakeState(args.delay_ms)
    server = FakeServer((args.host, args.port), make_handler(state))
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
