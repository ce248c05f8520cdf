"""Azurite (Azure Storage's emulator) from node_modules, for the tests and the benchmark.

One launcher for both: the tests' session fixture (tests/integration/conftest.py) reuses an
Azurite already listening on its ports, the benchmark (`bench/run.py --ledger`) always starts a
private one on free ports. Either way it runs in memory from a scratch folder and is stopped
when the `with` block ends.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BINARY = REPO_ROOT / "node_modules" / ".bin" / "azurite"
SERVICES = ("blob", "queue", "table")
DEFAULT_PORTS = (10000, 10001, 10002)
# Azurite's published development account key (the same for every Azurite; not a secret).
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
DEV_STORAGE = "UseDevelopmentStorage=true"

Ports = tuple[int, int, int]  # blob, queue, table


class AzuriteError(Exception):
    """Azurite is not installed, or did not start (the message says which, with its output)."""


def connection_string(ports: Ports) -> str:
    """What the relay's AzureWebJobsStorage holds for an Azurite on these ports."""
    if tuple(ports) == DEFAULT_PORTS:
        return DEV_STORAGE
    blob, queue, table = (f"http://127.0.0.1:{port}/devstoreaccount1" for port in ports)
    return (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={blob};QueueEndpoint={queue};TableEndpoint={table};"
    )


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@contextlib.contextmanager
def azurite(
    ports: Ports,
    scratch: Path,
    *,
    reuse: bool = True,
    log_path: Path | None = None,
    hang_guard_seconds: float = 90,
) -> Iterator[str]:
    """Yield the connection string of an Azurite on `ports`.

    With `reuse`, one already listening on all three ports is used as it is (and left running).
    Otherwise it is started in memory from node_modules with `scratch` as its working folder
    (--inMemoryPersistence refuses --location), and stopped when the block ends. The wait for
    it is on its ports; the clock only guards against a hang (Node starts slowly on a loaded
    machine). Raises AzuriteError."""
    connection = connection_string(ports)
    if reuse and all(listening(port) for port in ports):
        yield connection
        return
    if not BINARY.exists():
        raise AzuriteError(f"Azurite is not installed ({BINARY}): run `npm ci` in the repo root")
    scratch.mkdir(parents=True, exist_ok=True)
    command = [str(BINARY), "--inMemoryPersistence", "--disableTelemetry"]
    command += ["--skipApiVersionCheck", "--silent"]
    for service, port in zip(SERVICES, ports, strict=True):
        command += [f"--{service}Host", "127.0.0.1", f"--{service}Port", str(port)]
    log = log_path.open("wb") if log_path else None
    proc = subprocess.Popen(
        command,
        cwd=scratch,
        stdout=log or subprocess.DEVNULL,
        stderr=log or subprocess.PIPE,
    )
    if log:
        log.close()
    try:
        deadline = time.monotonic() + hang_guard_seconds
        while not all(listening(port) for port in ports):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                said = (proc.communicate()[1] or b"").decode(errors="replace")[-500:]
                where = f"; see {log_path}" if log_path else ""
                raise AzuriteError(f"Azurite did not start{where}: {said}")
            time.sleep(0.1)
        yield connection
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
