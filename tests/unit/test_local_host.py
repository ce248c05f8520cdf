"""The local host in-process (devhost/http_host.py, config.py) over real HTTP, against
tests/local_host_app (as a subprocess from the command line: tests/integration/test_local_host.py)."""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import azure.functions as func
import pytest
import requests

from devhost.config import load_local_settings, read_route_prefix
from devhost.errors import LocalHostError
from devhost.http_host import LocalHost, compile_route
from tests.local_host_app import sample_app

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_MODULE = "tests.local_host_app.sample_app"
# A cap on each request and subprocess: a hang guard, never reached when it works, so a loaded
# machine cannot turn a slow answer into a failure.
HANG_GUARD_SECONDS = 60


@pytest.fixture(scope="module")
def host() -> LocalHost:
    return LocalHost(sample_app.app)


@pytest.fixture(scope="module")
def base_url(host: LocalHost) -> Iterator[str]:
    with host.running() as url:
        yield url


# --- routing ---------------------------------------------------------------------------------


def test_get_route_returns_status_headers_and_mimetype(base_url: str) -> None:
    response = requests.get(f"{base_url}/api/ping", timeout=HANG_GUARD_SECONDS)
    assert response.status_code == 203
    assert response.text == "pong"
    assert response.headers["X-Sample"] == "yes"
    assert response.headers["Content-Type"] == "text/x-pong; charset=utf-8"


def test_paths_match_case_insensitively_with_optional_trailing_slash(base_url: str) -> None:
    assert requests.get(f"{base_url}/API/Ping", timeout=HANG_GUARD_SECONDS).text == "pong"
    assert requests.get(f"{base_url}/api/ping/", timeout=HANG_GUARD_SECONDS).text == "pong"


@pytest.mark.parametrize("path", ["/api/nope", "/ping", "/api", "/api/ping/extra", "/"])
def test_unknown_path_is_404_json(base_url: str, path: str) -> None:
    response = requests.get(f"{base_url}{path}", timeout=HANG_GUARD_SECONDS)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"] == "not_found"
    assert path in response.json()["message"]


def test_wrong_method_is_405_json_with_allow(base_url: str) -> None:
    response = requests.delete(f"{base_url}/api/items/7", timeout=HANG_GUARD_SECONDS)
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert response.headers["Allow"] == "POST, PUT"


def test_routes_without_methods_take_get_and_post_only(base_url: str) -> None:
    assert requests.get(f"{base_url}/api/nothing", timeout=HANG_GUARD_SECONDS).status_code == 204
    post = requests.post(f"{base_url}/api/nothing", timeout=HANG_GUARD_SECONDS)
    assert post.status_code == 204
    assert post.content == b""
    assert requests.put(f"{base_url}/api/nothing", timeout=HANG_GUARD_SECONDS).status_code == 405


def test_literal_route_wins_over_parameter(base_url: str) -> None:
    assert (
        requests.post(f"{base_url}/api/items/special", timeout=HANG_GUARD_SECONDS).text == "special"
    )
    assert requests.post(f"{base_url}/api/items/other", timeout=HANG_GUARD_SECONDS).json()[
        "route_params"
    ] == {"id": "other"}


def test_request_reaches_function_intact(base_url: str) -> None:
    body = bytes(range(256)) + b"\r\n\x00end"
    response = requests.put(
        f"{base_url}/api/items/a%20b?x=1&empty=&x=2",
        data=body,
        headers={"X-Custom": "Value", "Content-Type": "application/octet-stream"},
        timeout=HANG_GUARD_SECONDS,
    )
    assert response.status_code == 200
    seen = response.json()
    assert seen["method"] == "PUT"
    assert seen["url"].endswith("/api/items/a%20b?x=1&empty=&x=2")
    assert seen["url"].startswith(base_url)
    assert seen["route_params"] == {"id": "a b"}
    assert seen["params"] == {"x": "2", "empty": ""}
    assert seen["headers"]["x-custom"] == "Value"
    assert seen["headers"]["content-type"] == "application/octet-stream"
    assert bytes.fromhex(seen["body_hex"]) == body


def test_function_exception_is_500_json_without_details(
    base_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    response = requests.get(f"{base_url}/api/boom", timeout=HANG_GUARD_SECONDS)
    assert response.status_code == 500
    assert response.json() == {"error": "internal"}
    assert "secret-detail" not in response.text
    assert "secret-detail-that-must-not-leak" in capfd.readouterr().err


def test_server_keeps_serving_after_a_failure(base_url: str) -> None:
    assert requests.get(f"{base_url}/api/boom", timeout=HANG_GUARD_SECONDS).status_code == 500
    assert requests.get(f"{base_url}/api/ping", timeout=HANG_GUARD_SECONDS).status_code == 203


def test_chunked_request_is_refused_with_411(base_url: str) -> None:
    response = requests.post(
        f"{base_url}/api/nothing", data=iter([b"a", b"b"]), timeout=HANG_GUARD_SECONDS
    )
    assert response.status_code == 411


@pytest.mark.parametrize(
    ("template", "path", "params"),
    [
        ("items/{id}", "/ITEMS/42", {"id": "42"}),
        ("items/{id}", "/items", None),
        ("items/{id?}", "/items", {}),
        ("files/{*rest}", "/files/a/b/c", {"rest": "a/b/c"}),
        ("v{version:int}/x", "/v2/x", {"version": "2"}),
    ],
)
def test_compile_route(template: str, path: str, params: dict[str, str] | None) -> None:
    match = compile_route(template)[0].match(path)
    if params is None:
        assert match is None
    else:
        assert match is not None
        assert {k: v for k, v in match.groupdict().items() if v is not None} == params


def test_custom_route_prefix_and_empty_prefix() -> None:
    for prefix, path in [("local", "/local/ping"), ("", "/ping")]:
        with LocalHost(sample_app.app, route_prefix=prefix).running() as url:
            assert requests.get(f"{url}{path}", timeout=HANG_GUARD_SECONDS).text == "pong"
            assert requests.get(f"{url}/api/ping", timeout=HANG_GUARD_SECONDS).status_code == 404


# --- output bindings -------------------------------------------------------------------------


def test_output_binding_value_reaches_custom_sink() -> None:
    delivered: list[tuple[str, Any, Any]] = []
    local = LocalHost(
        sample_app.app,
        output_sink=lambda kind, binding, value: delivered.append((kind, binding, value)),
    )
    with local.running() as url:
        response = requests.post(f"{url}/api/enqueue", data=b'{"n": 1}', timeout=HANG_GUARD_SECONDS)
        assert response.status_code == 202
        assert (
            requests.post(
                f"{url}/api/enqueue?skip=1", data=b"x", timeout=HANG_GUARD_SECONDS
            ).status_code
            == 202
        )
    assert len(delivered) == 1, "an unset output must not reach the sink"
    kind, binding, value = delivered[0]
    assert kind == "queue"
    assert binding.queue_name == "sample-outbox"
    assert binding.get_dict_repr()["connection"] == "AzureWebJobsStorage"
    assert value == '{"n": 1}'


def test_default_sink_keeps_value_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    local = LocalHost(sample_app.app)
    with local.running() as url:
        requests.post(f"{url}/api/enqueue", data=b"hello", timeout=HANG_GUARD_SECONDS)
    assert [(r.function, r.binding_type, r.value) for r in local.outputs] == [
        ("enqueue", "queue", "hello")
    ]
    assert "output binding queue outbox has no local delivery" in caplog.text


def test_failing_sink_is_a_500() -> None:
    def broken_sink(kind: str, binding: Any, value: Any) -> None:
        raise ConnectionError("queue down")

    with LocalHost(sample_app.app, output_sink=broken_sink).running() as url:
        response = requests.post(f"{url}/api/enqueue", data=b"x", timeout=HANG_GUARD_SECONDS)
    assert response.status_code == 500
    assert response.json() == {"error": "internal"}


# --- index -----------------------------------------------------------------------------------


def test_non_http_functions_are_listed_not_served(host: LocalHost) -> None:
    lines = host.describe("http://h:1")
    assert "ping: GET http://h:1/api/ping" in lines
    assert "echo: POST,PUT http://h:1/api/items/{id}" in lines
    assert "drain: not served by the local host (queueTrigger)" in lines
    assert "tick: not served by the local host (timerTrigger)" in lines
    assert {route.name for route in host.routes} == {
        "ping",
        "echo",
        "special",
        "boom",
        "nothing",
        "env",
        "enqueue",
    }


def test_app_can_be_hosted_twice_despite_single_get_functions() -> None:
    first = LocalHost(sample_app.app)
    second = LocalHost(sample_app.app)
    assert [r.name for r in first.routes] == [r.name for r in second.routes]


def test_functions_needing_unsupported_parameters_are_not_served() -> None:
    app = func.FunctionApp()

    @app.route(route="ctx")
    def with_context(req: func.HttpRequest, context: func.Context) -> str:
        return "unreachable"

    local = LocalHost(app)
    assert local.routes == []
    assert "context" in local.unserved[0].reason


def test_str_return_and_async_function() -> None:
    app = func.FunctionApp()

    @app.route(route="text", methods=["GET"])
    async def text(req: func.HttpRequest) -> str:
        return "plain"

    with LocalHost(app).running() as url:
        response = requests.get(f"{url}/api/text", timeout=HANG_GUARD_SECONDS)
    assert (response.status_code, response.text) == (200, "plain")


# --- settings --------------------------------------------------------------------------------


def test_local_settings_fill_missing_values_only(tmp_path: Path) -> None:
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": {"A": "file", "B": "file"}}))
    environ = {"B": "env"}
    applied = load_local_settings(settings, environ)
    assert applied == ["A"]
    assert environ == {"A": "file", "B": "env"}


def test_missing_local_settings_apply_nothing(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    assert load_local_settings(tmp_path / "local.settings.json", environ) == []
    assert environ == {}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"Values": {"SECRET": "hunter2",}}', "not valid JSON (line 1"),
        ('["Values"]', "JSON object"),
        ('{"Values": "SECRET=hunter2"}', '"Values" must be an object'),
        ('{"Values": {"PORT": 7071, "SECRET": "hunter2"}}', "must be strings: PORT"),
    ],
)
def test_malformed_local_settings_are_reported_without_values(
    tmp_path: Path, content: str, expected: str
) -> None:
    settings = tmp_path / "local.settings.json"
    settings.write_text(content)
    with pytest.raises(LocalHostError) as error:
        load_local_settings(settings, {})
    assert expected in str(error.value)
    assert "hunter2" not in str(error.value)


def test_route_prefix_from_host_json(tmp_path: Path) -> None:
    host_json = tmp_path / "host.json"
    assert read_route_prefix(host_json) == "api"
    host_json.write_text('{"version": "2.0"}')
    assert read_route_prefix(host_json) == "api"
    host_json.write_text('{"extensions": {"http": {"routePrefix": "/hooks/"}}}')
    assert read_route_prefix(host_json) == "hooks"


# --- CLI as a subprocess ---------------------------------------------------------------------


def test_app_indexed_elsewhere_needs_its_function_list() -> None:
    app = func.FunctionApp()

    @app.route(route="mine", methods=["GET"])
    def mine(req: func.HttpRequest) -> str:
        return "mine"

    functions = app.get_functions()  # as a conftest might, before any LocalHost
    with pytest.raises(LocalHostError, match="functions="):
        LocalHost(app)
    with LocalHost(app, functions=functions).running() as url:
        assert requests.get(f"{url}/api/mine", timeout=HANG_GUARD_SECONDS).text == "mine"


# --- access log: no function key, no known secret, no raw control character -------------------

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
KEY = "fUnCtIoN-KeY-0123456789=="


def _raw_request(base_url: str, request_line: bytes) -> bytes:
    """What requests/urllib3 refuse to send: a request line with control characters."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=HANG_GUARD_SECONDS) as sock:
        sock.sendall(request_line + b"\r\nHost: h\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _access_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "devhost.http_host"]


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        (f"GET /api/ping\x1b[31m\x07\x7f?code={KEY}&x=1 HTTP/1.1".encode(), b" 404 "),
        (f"GET /api/ping?x=1&Code={KEY}&t=\x1b]0;pwned\x07 HTTP/1.1".encode(), b" 203 "),
        (f"GET /api/a?code={KEY} b\x1b[2J c HTTP/1.1".encode(), b" 400 "),  # bad request line
    ],
)
def test_access_log_hides_the_function_key_and_escapes_control_characters(
    base_url: str, caplog: pytest.LogCaptureFixture, request_line: bytes, status: bytes
) -> None:
    caplog.set_level(logging.INFO, logger="devhost.http_host")
    answer = _raw_request(base_url, request_line)
    assert status in answer.split(b"\r\n", 1)[0]
    lines = _access_log(caplog)  # logged before the answer was written
    assert lines
    for line in lines:
        assert KEY.lower() not in line.lower()
        assert "=***" in line
        assert not CONTROL.search(line), line
        assert "\\x1b" in line  # escaped visibly, not dropped


def test_access_log_hides_a_secret_path_segment_in_any_encoding(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="devhost.http_host")
    token = "T0ken/With Spaces"
    local = LocalHost(sample_app.app, secrets={token})
    with local.running() as url:
        for path in (quote(token, safe=""), quote(token, safe="").lower(), quote_plus(token)):
            requests.post(
                f"{url}/api/items/{path}?code={KEY}", data=b"", timeout=HANG_GUARD_SECONDS
            )
    lines = _access_log(caplog)
    assert len(lines) == 3
    for line in lines:
        assert "/api/items/***?code=*** HTTP/1.1" in line
        assert "T0ken" not in line and KEY not in line


def test_a_logged_traceback_holds_no_function_key_or_known_secret(
    capfd: pytest.CaptureFixture[str],
) -> None:
    app = func.FunctionApp()

    @app.route(route="crash/{thing}", methods=["GET"])
    def crash(req: func.HttpRequest) -> str:
        raise RuntimeError(f"cannot handle {req.url} ({req.route_params['thing']})")

    local = LocalHost(app, secrets={"path-S3cret"})
    with local.running() as url:
        response = requests.get(
            f"{url}/api/crash/path-S3cret?code={KEY}", timeout=HANG_GUARD_SECONDS
        )
    assert response.status_code == 500
    err = capfd.readouterr().err
    assert "RuntimeError: cannot handle" in err  # the traceback is still there...
    assert KEY not in err and "path-S3cret" not in err  # ...without the secrets
    assert "/api/crash/***?code=*** (***)" in err


# --- framing: the local host's own limits, before and while the body is read -----------------


def _exchange(url: str, head: bytes, body: bytes = b"", *, shut: bool = False) -> bytes:
    """Send `head` (request line and headers, without the blank line) and `body` as they are,
    then read until the host closes the connection; the hang guard is a guard only."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=HANG_GUARD_SECONDS) as sock:
        sock.sendall(head + b"\r\nHost: h\r\n\r\n" + body)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _status_and_json(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(re.search(rb"(?im)^content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    return status, json.loads(body[:length])


@pytest.mark.parametrize(
    "values",
    [
        [b"abc"],
        [b"-5"],
        [b"+5"],
        [b" 5_0"],
        [b"1e3"],
        ["\u0665".encode()],  # an Arabic-Indic five: int() takes it, HTTP does not
        [b"5, 6"],
        [b"5", b"6"],
        [b""],
    ],
)
def test_an_invalid_content_length_is_400_json_at_once(values: list[bytes]) -> None:
    # The read timeout is longer than the hang guard: a host that waited for a body would fail
    # the guard, not pass slowly.
    local = LocalHost(sample_app.app, read_timeout=HANG_GUARD_SECONDS * 2)
    head = b"POST /api/items/x HTTP/1.1\r\n" + b"\r\n".join(
        b"Content-Length: " + value for value in values
    )
    with local.running() as url:
        status, answer = _status_and_json(_exchange(url, head))
    assert (status, answer) == (400, {"error": "bad_request", "message": "invalid Content-Length"})


def test_repeated_equal_content_lengths_are_one_length() -> None:
    local = LocalHost(sample_app.app)
    head = b"POST /api/items/x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\nConnection: close"
    with local.running() as url:
        status, answer = _status_and_json(_exchange(url, head, b"abc"))
    assert status == 200 and bytes.fromhex(answer["body_hex"]) == b"abc"


def test_a_body_over_the_hosts_limit_is_413_before_it_is_read() -> None:
    """50 MB announced, 1000 bytes sent and nothing more: the answer comes anyway. A host that
    read first would wait for the rest (the read timeout is past the hang guard)."""
    local = LocalHost(sample_app.app, read_timeout=HANG_GUARD_SECONDS * 2)
    head = b"POST /api/items/x HTTP/1.1\r\nContent-Length: 50000000"
    with local.running() as url:
        status, answer = _status_and_json(_exchange(url, head, b"x" * 1000))
    assert status == 413
    assert answer["error"] == "payload_too_large"
    assert str(local.max_request_bytes) in answer["message"]
    assert local.max_request_bytes < 50_000_000


@pytest.mark.parametrize("length", [str(10**30), "9" * 5000, "1" + "0" * 4000])
def test_a_huge_content_length_is_413_without_a_traceback(
    length: str, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devhost.http_host")
    local = LocalHost(sample_app.app, read_timeout=HANG_GUARD_SECONDS * 2)
    head = f"POST /api/items/x HTTP/1.1\r\nContent-Length: {length}".encode()
    with local.running() as url:
        status, answer = _status_and_json(_exchange(url, head))
    assert (status, answer["error"]) == (413, "payload_too_large")
    assert length not in answer["message"]  # the caller's value is not echoed
    captured = capfd.readouterr()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for text in (captured.err, captured.out, logged):
        assert "Traceback" not in text and "OverflowError" not in text


def test_a_body_that_ends_before_its_length_is_400() -> None:
    """Leading zeros are still a number (7); three bytes come, then the client stops sending."""
    local = LocalHost(sample_app.app, read_timeout=HANG_GUARD_SECONDS * 2)
    head = b"POST /api/items/x HTTP/1.1\r\nContent-Length: " + b"0" * 4000 + b"7"
    with local.running() as url:
        status, answer = _status_and_json(_exchange(url, head, b"abc", shut=True))
    assert (status, answer) == (
        400,
        {"error": "bad_request", "message": "the body ended before its length"},
    )


def test_a_short_body_is_answered_408_and_closed_after_the_read_timeout() -> None:
    """Content-Length 100, ten bytes sent, then silence: whatever the machine's speed, the host
    answers 408 once the (tiny) read timeout has passed, and closes the connection."""
    local = LocalHost(sample_app.app, read_timeout=0.2)
    head = b"POST /api/items/x HTTP/1.1\r\nContent-Length: 100"
    with local.running() as url:
        status, answer = _status_and_json(_exchange(url, head, b"0123456789"))
    assert status == 408
    assert answer == {"error": "request_timeout", "message": "the body did not arrive within 0.2 s"}


def test_half_a_request_is_dropped_after_the_read_timeout() -> None:
    local = LocalHost(sample_app.app, read_timeout=0.2)
    with local.running() as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=HANG_GUARD_SECONDS) as sock:
            sock.sendall(b"POST /api/items/x HTTP/1.1\r\nContent-Le")
            assert sock.recv(65536) == b""  # closed by the host, nothing answered


def test_a_large_body_in_many_pieces_arrives_whole(base_url: str) -> None:
    body = bytes(range(256)) * (6 * 1024)  # 1.5 MiB: many reads, under the host's limit
    response = requests.post(f"{base_url}/api/items/x", data=body, timeout=HANG_GUARD_SECONDS)
    assert response.status_code == 200
    assert bytes.fromhex(response.json()["body_hex"]) == body
