"""The processes a run talks to: the SIGNL4 fake (testkit/signl4_fake.py in a process of its own),
the relay (`python -m devhost serve`), and a keep-alive HTTP client for both."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.config import PYTHON, REPO_ROOT, RESULTS_DIR


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running(proc: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def start_fake(delay_ms: float) -> tuple[subprocess.Popen[bytes], int]:
    """testkit/signl4_fake.py (the tests' fake too) in a process of its own: in the client's or
    the relay's interpreter its work would share that GIL and be charged to that side."""
    proc = subprocess.Popen(
        [PYTHON, "-m", "testkit.signl4_fake", "--delay-ms", str(delay_ms)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=None,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit(f"SIGNL4 fake did not start (said {line!r})")
    return proc, int(line.split()[1])


def start_relay(
    env: Mapping[str, str], log_path: Path, serve_args: Sequence[str] = ()
) -> tuple[subprocess.Popen[bytes], int]:
    """`python -m devhost serve` from a scratch directory holding only a copy of host.json.

    Not from the repo root: serve reads local.settings.json from its working directory, and a
    developer's copy (the sample sets AzureWebJobsStorage) would leak settings into the run.
    """
    workdir = RESULTS_DIR / "relay-cwd"
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "host.json", workdir / "host.json")
    port = free_port()
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [PYTHON, "-m", "devhost", "serve", "--port", str(port), *serve_args],
        cwd=workdir,
        env=dict(env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"relay exited {proc.returncode}; see {log_path}")
        try:
            status, body = Client("127.0.0.1", port).call("GET", "/api/health")
        except OSError:
            time.sleep(0.05)
            continue
        if status != 200 or json.loads(body).get("signl4") != "configured":
            proc.kill()
            raise SystemExit(f"relay is not live: /api/health answered {status} {body!r}")
        return proc, port
    proc.kill()
    raise SystemExit(f"relay did not answer within 30 s; see {log_path}")


def proc_status_mb(pid: int, field: str) -> float | None:
    """A memory field of a live process from /proc (VmHWM: peak resident set; VmRSS: now), MB."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


class Client:
    """One keep-alive HTTP/1.1 connection (http.client sends head and body in one write)."""

    def __init__(self, host: str, port: int) -> None:
        self.connection = http.client.HTTPConnection(host, port, timeout=30)

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.connection.close()


def fake_control(port: int, **command: Any) -> None:
    client = Client("127.0.0.1", port)
    client.call("POST", "/control", json.dumps(command).encode())
    client.close()


def fake_stats(port: int) -> dict[str, Any]:
    """What the SIGNL4 fake received. A body that broke SIGNL4's contract (the fake answered it
    400) ends the run: figures for bodies SIGNL4 would refuse measure nothing."""
    client = Client("127.0.0.1", port)
    _, body = client.call("GET", "/stats")
    client.close()
    stats: dict[str, Any] = json.loads(body)
    if stats.get("violations"):
        raise SystemExit(
            "the SIGNL4 fake refused bodies that break its contract (testkit/contracts/):\n"
            + "\n".join(stats["violations"][:10])
        )
    return stats
