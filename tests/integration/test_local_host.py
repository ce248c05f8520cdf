"""The local host as a subprocess: `python -m devhost serve --app ...` from the command line, its
settings, its exit codes and its access log (the in-process host: tests/unit/test_local_host.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.unit.test_local_host import (
    APP_MODULE,
    HANG_GUARD_SECONDS,
    KEY,
    REPO_ROOT,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(cwd: Path, port: int, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "devhost", "serve", "--app", APP_MODULE, "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_until_up(proc: subprocess.Popen[str], url: str) -> None:
    # Waits until it answers; the clock only guards against a hang (a loaded machine may take
    # seconds to start Python, or to answer the first request once it listens).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited {proc.returncode}: {proc.communicate()[1]}")
        try:
            requests.get(url, timeout=HANG_GUARD_SECONDS)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.1)
    pytest.fail("server did not answer within 60 s")


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.terminate()
    try:
        return proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def test_cli_serves_the_app_from_repo_root() -> None:
    port = _free_port()
    proc = _serve(REPO_ROOT, port)
    try:
        _wait_until_up(proc, f"http://127.0.0.1:{port}/api/ping")
        response = requests.post(
            f"http://127.0.0.1:{port}/api/items/9?q=1", data=b"hi", timeout=HANG_GUARD_SECONDS
        )
        assert response.json()["route_params"] == {"id": "9"}
        assert response.json()["params"] == {"q": "1"}
    finally:
        out, _ = _stop(proc)
    assert f"ping: GET http://127.0.0.1:{port}/api/ping" in out
    assert "drain: queue sample-outbox on in-process queues" in out  # the queue runner has it
    assert "Function keys are not checked locally" in out
    assert "sample app banner" in out


def test_cli_loads_settings_and_host_json_from_cwd(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text(
        json.dumps({"Values": {"LH_FROM_FILE": "file-value", "LH_BOTH": "file-value"}})
    )
    (tmp_path / "host.json").write_text('{"extensions": {"http": {"routePrefix": "local"}}}')
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LH_BOTH": "env-value"}
    port = _free_port()
    proc = _serve(tmp_path, port, env)
    try:
        base = f"http://127.0.0.1:{port}/local"
        _wait_until_up(proc, f"{base}/ping")
        assert (
            requests.get(f"{base}/env/LH_FROM_FILE", timeout=HANG_GUARD_SECONDS).text
            == "file-value"
        )
        assert requests.get(f"{base}/env/LH_BOTH", timeout=HANG_GUARD_SECONDS).text == "env-value"
    finally:
        out, err = _stop(proc)
    assert "file-value" not in out + err


def test_cli_rejects_malformed_settings_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text('{"Values": {"SECRET": "hunter2"')
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "devhost", "serve", "--app", APP_MODULE, "--port", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
    )
    assert result.returncode == 1
    assert "local.settings.json: not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stdout + result.stderr


def test_cli_help_and_usage_errors() -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devhost", *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=HANG_GUARD_SECONDS,
        )

    helped = run("--help")
    assert helped.returncode == 0
    assert "serve" in helped.stdout
    assert run("bogus").returncode == 2
    assert run().returncode == 2


def test_cli_access_log_scrubs_the_apps_secrets(tmp_path: Path) -> None:
    secret = "pasted-T3am-Secret"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LH_SECRET": secret}
    port = _free_port()
    proc = _serve(tmp_path, port, env)
    try:
        _wait_until_up(proc, f"http://127.0.0.1:{port}/api/ping")
        response = requests.get(
            f"http://127.0.0.1:{port}/api/{secret}?code={KEY}", timeout=HANG_GUARD_SECONDS
        )
        assert response.status_code == 404
    finally:
        out, err = _stop(proc)
    assert "GET /api/***?code=*** HTTP/1.1" in err
    assert secret not in out + err and KEY not in out + err
