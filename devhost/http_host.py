"""Serve the HTTP functions of a v2 `azure.functions.FunctionApp` without Core Tools.

Core Tools (`func start`) cannot be installed on our machines, so this module stands in for it
during manual runs, tests and benchmarks: `python -m devhost serve` imports `function_app.app`
and serves every HTTP-triggered function at the same `/<routePrefix>/<route>` path as the host.

What it does like the Functions host (settings and host.json: devhost/config.py):
- `Values` from `local.settings.json` become environment variables (the environment wins);
- routes come from the trigger (`route`, default the function name), matched case-insensitively,
  with `{name}`, `{name?}` (last segment) and `{*rest}` templates filled into `req.route_params`;
  a literal segment beats a parameter, as in ASP.NET routing;
- the route prefix is `extensions.http.routePrefix` from host.json, else "api";
- a function returning None answers 204; an exception answers 500 (traceback on stderr only).

The access log (one INFO line per request) shows `code=***` for the function key (and other
secret query parameters), `***` for each value in `LocalHost.secrets`, and control characters
escaped (`\x1b`); tracebacks are scrubbed the same way. `devhost.serve` fills `secrets` from the
app module's `local_host_secrets()` when it has one.

Framing, its own limits apart from the app's (the relay's 1 MiB MAX_BODY_BYTES):
- `Content-Length` must be one decimal number (400 `bad_request` otherwise) of at most
  `max_request_bytes` (MAX_REQUEST_BYTES, 4 MiB; more: 413 `payload_too_large`), both answered
  before any of the body is read; a chunked body is 411 `length_required`;
- every read (request line, headers, the idle wait between keep-alive requests) gives up after
  `read_timeout` (READ_TIMEOUT_SECONDS, 30 s), and the whole body must arrive within it: a
  client that sends fewer bytes than its Content-Length is answered 408 `request_timeout` and
  the connection closed, instead of holding a thread forever.

What it does not do: check function keys (`func start` does not either), run non-HTTP triggers
(they are listed as not served), input bindings, or `context` parameters. Route constraints
such as `{id:int}` are accepted but not enforced. Methods default to GET and POST.

Output bindings (the hook devhost/queues.py plugs into): every output binding of an HTTP
function (e.g. `@app.queue_output(arg_name="outbox", ...)`) is passed to the function as an
`OutValue` (a `func.Out`, devhost/functions.py). After the function returns, for each one whose
value was set the host calls

    output_sink(binding_type: str, binding: azure.functions.decorators.core.Binding, value)

e.g. `("queue", QueueOutput(queue_name="signl4-outbox", connection=...), '{"..."}')`; use
`binding.get_dict_repr()` for the function.json view. The call happens before the response is
sent, like the host flushing outputs at the end of an invocation, so a sink that raises turns
the response into a 500. The default sink, `LocalHost.keep_in_memory`, logs a warning and
appends an `OutputRecord` to `LocalHost.outputs`. Sinks run on the server's request threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import re
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func
from azure.functions.decorators.core import Binding, BindingDirection
from azure.functions.decorators.function_app import Function

from devhost.config import DEFAULT_ROUTE_PREFIX
from devhost.functions import OutputSink, OutValue, index_functions
from shared.redaction import SECRET_QUERY_PARAMS, log_safe, redact_url

log = logging.getLogger(__name__)

DEFAULT_METHODS: frozenset[str] = frozenset({"GET", "POST"})

# --- routes ----------------------------------------------------------------------------------

_PARAM = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::[^{}?]*)?(\??)\}")


@dataclass(frozen=True)
class HttpRoute:
    """One served HTTP function: its compiled route template and how to call it."""

    name: str
    template: str  # "items/{id}", without the prefix
    methods: frozenset[str]
    pattern: re.Pattern[str]
    precedence: tuple[int, ...]  # lower sorts first: literal < parameter < optional < catch-all
    trigger_arg: str
    outputs: tuple[Binding, ...]
    call: Callable[..., Any]

    def path(self, prefix: str) -> str:
        return "/" + "/".join(part for part in (prefix, self.template) if part)


@dataclass(frozen=True)
class UnservedFunction:
    name: str
    reason: str


@dataclass(frozen=True)
class OutputRecord:
    """An output binding value the default sink kept instead of delivering."""

    function: str
    binding_type: str
    binding: Binding
    value: Any


def compile_route(template: str) -> tuple[re.Pattern[str], tuple[int, ...]]:
    """Regex for a route template; `{x}` matches one segment, `{x?}` may be absent at the end,
    `{*x}` takes the rest. Matching is case-insensitive, as in the host."""
    segments = [segment for segment in template.strip("/").split("/") if segment]
    regex = ""
    precedence: list[int] = []
    for index, segment in enumerate(segments):
        pieces: list[str] = []
        rank = 0
        position = 0
        for match in _PARAM.finditer(segment):
            pieces.append(re.escape(segment[position : match.start()]))
            catch_all, name, optional = match.group(1), match.group(2), match.group(3)
            if catch_all:
                pieces.append(f"(?P<{name}>.*)")
                rank = max(rank, 3)
            else:
                pieces.append(f"(?P<{name}>[^/]+)")
                rank = max(rank, 2 if optional else 1)
            position = match.end()
        pieces.append(re.escape(segment[position:]))
        body = "".join(pieces)
        if rank >= 2 and index == len(segments) - 1:
            # Optional/catch-all last segment: "/items" must match "items/{*rest}" too.
            regex += f"(?:/{body})?"
        else:
            regex += f"/{body}"
        precedence.append(rank)
    return re.compile(f"^{regex}/?$", re.IGNORECASE), tuple(precedence)


def _methods(trigger: Binding) -> frozenset[str]:
    declared = getattr(trigger, "methods", None)
    if not declared:
        return DEFAULT_METHODS
    return frozenset(str(getattr(method, "value", method)).upper() for method in declared)


def _build_route(function: Function) -> HttpRoute | UnservedFunction:
    name = function.get_function_name() or function.get_user_function().__name__
    trigger = function.get_trigger()
    if trigger is None or trigger.type != "httpTrigger":
        kind = trigger.type if trigger is not None else "no trigger"
        return UnservedFunction(name, kind)
    inputs = [
        b
        for b in function.get_bindings()
        if b is not trigger and b.direction == BindingDirection.IN.value
    ]
    if inputs:
        kinds = ", ".join(f"{b.type} '{b.name}'" for b in inputs)
        return UnservedFunction(name, f"input bindings have no local support: {kinds}")
    outputs = tuple(
        b
        for b in function.get_bindings()
        if b.direction == BindingDirection.OUT.value and b.type != "http" and b.name != "$return"
    )
    user_function = function.get_user_function()
    bound = {trigger.name, *(b.name for b in outputs)}
    unbound = [
        parameter.name
        for parameter in inspect.signature(user_function).parameters.values()
        if parameter.name not in bound
        and parameter.default is inspect.Parameter.empty
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]
    if unbound:
        return UnservedFunction(name, f"parameters with no local binding: {', '.join(unbound)}")
    template = (getattr(trigger, "route", None) or name).strip("/")
    pattern, precedence = compile_route(template)
    return HttpRoute(
        name=name,
        template=template,
        methods=_methods(trigger),
        pattern=pattern,
        precedence=precedence,
        trigger_arg=trigger.name,
        outputs=outputs,
        call=user_function,
    )


# --- invocation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalResponse:
    """What goes back on the wire; kept apart from http.server so dispatch is testable alone."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _json_response(
    status: int, payload: Mapping[str, Any], extra: list[tuple[str, str]] | None = None
) -> LocalResponse:
    headers = [("Content-Type", "application/json; charset=utf-8"), *(extra or [])]
    return LocalResponse(status, headers, json.dumps(payload).encode())


def _to_local_response(result: Any) -> LocalResponse:
    """Convert what the function returned, as the Python worker does for `$return`."""
    if result is None:
        return LocalResponse(204, [], b"")
    if isinstance(result, str | bytes):
        result = func.HttpResponse(result)
    if not isinstance(result, func.HttpResponse):
        raise TypeError(f"HTTP function returned {type(result).__name__}, not HttpResponse")
    # Length and framing are ours to set: a stale Content-Length would corrupt the stream.
    skip = {"content-length", "transfer-encoding", "connection"}
    headers = [(k, v) for k, v in result.headers.items() if k.lower() not in skip]
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", f"{result.mimetype}; charset={result.charset}"))
    return LocalResponse(result.status_code, headers, result.get_body())


# --- framing ---------------------------------------------------------------------------------

# The local host's own limit on a request body. Above the app's 1 MiB, so the app's own 413
# stays what a caller sees for a body a little too big; a bound on what one request can make
# this process hold (a 50 MB body is refused before it is read).
MAX_REQUEST_BYTES = 4 * 1024 * 1024
# A client that stops sending (a short body, half a request line) is answered 408 or dropped
# after this long instead of holding a server thread forever.
READ_TIMEOUT_SECONDS = 30.0
# After refusing a body unread: drop at most this much of it, for at most this long, before
# closing, so the client's unsent rest does not turn our close into a reset that loses the answer.
_LINGER_BYTES = 256 * 1024
_LINGER_SECONDS = 1.0
_CHUNK = 64 * 1024
# ASCII digits only: int() would also take " 5", "+5", "5_0" and other scripts' digits.
_DIGITS = re.compile(r"[0-9]+")


class FramingRefused(Exception):
    """The request is answered without reading its body: `response` says why."""

    def __init__(self, response: LocalResponse) -> None:
        super().__init__(response.status)
        self.response = response


def body_length(values: Sequence[str], limit: int) -> int:
    """The length the Content-Length header(s) declare, 0 without one. Refused (FramingRefused)
    when not one decimal number (400) or over `limit` (413); the value is never echoed."""
    declared = {part.strip() for value in values for part in value.split(",")}
    if not declared:
        return 0
    text = declared.pop()
    if declared or not _DIGITS.fullmatch(text):
        raise FramingRefused(
            _json_response(400, {"error": "bad_request", "message": "invalid Content-Length"})
        )
    digits = text.lstrip("0") or "0"
    # Compared by length first: int() of thousands of digits raises, and needs no computing.
    if len(digits) > len(str(limit)) or int(digits) > limit:
        raise FramingRefused(
            _json_response(
                413,
                {
                    "error": "payload_too_large",
                    "message": f"Content-Length is over the local host's limit of {limit} bytes",
                },
            )
        )
    return int(digits)


class LocalHost:
    """Routes HTTP requests to the HTTP functions of one FunctionApp.

    `functions` is for callers that already ran `app.get_functions()` (it runs once per app);
    otherwise the index is built here and shared with later LocalHosts over the same app.
    """

    def __init__(
        self,
        app: func.FunctionApp,
        *,
        route_prefix: str = DEFAULT_ROUTE_PREFIX,
        output_sink: OutputSink | None = None,
        functions: Sequence[Function] | None = None,
        secrets: Iterable[str] = (),
        max_request_bytes: int = 0,
        read_timeout: float = 0.0,
    ) -> None:
        self.route_prefix = route_prefix.strip("/")
        # The framing limits (0: the defaults); tests pass a tiny read_timeout.
        self.max_request_bytes = max_request_bytes or MAX_REQUEST_BYTES
        self.read_timeout = read_timeout or READ_TIMEOUT_SECONDS
        # Values scrubbed from the access log and from logged tracebacks, besides secret query
        # parameters (`code=`), which are always redacted. Add a secret path segment (a
        # route's token) here: `local_host.secrets.add(token)`.
        self.secrets: set[str] = {secret for secret in secrets if secret}
        self.outputs: list[OutputRecord] = []
        self.output_sink: OutputSink = output_sink or self.keep_in_memory
        self.routes: list[HttpRoute] = []
        self.unserved: list[UnservedFunction] = []
        for function in index_functions(app) if functions is None else functions:
            built = _build_route(function)
            if isinstance(built, HttpRoute):
                self.routes.append(built)
            else:
                self.unserved.append(built)
        # Startup lines follow declaration order; matching needs literal-first precedence.
        self._declared = list(self.routes)
        self.routes.sort(key=lambda route: route.precedence)
        self._invoking = threading.local()

    def keep_in_memory(self, binding_type: str, binding: Binding, value: Any) -> None:
        """Default output sink: nothing delivers locally yet, so say so and keep the value."""
        function = getattr(self._invoking, "name", "?")
        log.warning(
            "output binding %s %s has no local delivery; value kept in memory",
            binding_type,
            binding.name,
        )
        self.outputs.append(OutputRecord(function, binding_type, binding, value))

    def describe(self, base_url: str) -> list[str]:
        """Startup lines: one per served function, then what is not served."""
        lines = [
            f"{route.name}: {','.join(sorted(route.methods))} "
            f"{base_url}{route.path(self.route_prefix)}"
            for route in self._declared
        ]
        lines += [
            f"{item.name}: not served by the local host ({item.reason})" for item in self.unserved
        ]
        return lines

    def dispatch(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> LocalResponse:
        """Find the function for `method url`, call it, and build the response."""
        parts = urlsplit(url)
        path = parts.path
        prefix = f"/{self.route_prefix}" if self.route_prefix else ""
        if prefix and not (
            path.lower() == prefix.lower() or path.lower().startswith(prefix.lower() + "/")
        ):
            return self._not_found(method, path)
        relative = path[len(prefix) :]
        allowed: set[str] = set()
        for route in self.routes:
            match = route.pattern.match(relative or "/")
            if match is None:
                continue
            if method.upper() not in route.methods:
                allowed |= route.methods
                continue
            route_params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
            request = func.HttpRequest(
                method=method.upper(),
                url=url,
                headers=dict(headers),
                # Repeated query keys: the last value wins.
                params=dict(parse_qsl(parts.query, keep_blank_values=True)),
                route_params=route_params,
                body=body,
            )
            return self._invoke(route, request)
        if allowed:
            listed = ", ".join(sorted(allowed))
            return _json_response(
                405,
                {
                    "error": "method_not_allowed",
                    "message": f"{method} {redact_path_secrets(path)} allows {listed}",
                },
                [("Allow", listed)],
            )
        return self._not_found(method, path)

    @staticmethod
    def _not_found(method: str, path: str) -> LocalResponse:
        return _json_response(
            404,
            {
                "error": "not_found",
                "message": f"No function serves {method} {redact_path_secrets(path)}",
            },
        )

    def _invoke(self, route: HttpRoute, request: func.HttpRequest) -> LocalResponse:
        outs = {binding.name: OutValue() for binding in route.outputs}
        self._invoking.name = route.name
        try:
            result = route.call(**{route.trigger_arg: request}, **outs)
            if inspect.isawaitable(result):
                result = asyncio.run(_await(result))
            response = _to_local_response(result)
            for binding in route.outputs:
                if outs[binding.name].is_set:
                    self.output_sink(binding.type, binding, outs[binding.name].get())
            return response
        except Exception:
            # Like the host: the caller learns only that it failed; details stay in the log,
            # without the request's function key or any other known secret.
            secrets = self.secrets | {
                value
                for name, value in request.params.items()
                if name.strip().casefold() in SECRET_QUERY_PARAMS
            }
            details = redact_url(traceback.format_exc(), secrets)
            sys.stderr.write(f"Function {route.name} failed:\n{details}")
            return _json_response(500, {"error": "internal"})
        finally:
            self._invoking.name = None

    # --- serving -----------------------------------------------------------------------------

    def make_server(self, host: str = "127.0.0.1", port: int = 7071) -> ThreadingHTTPServer:
        """A bound (not yet serving) server; port 0 picks a free port."""
        server = ThreadingHTTPServer((host, port), _handler_for(self))
        server.daemon_threads = True
        return server

    def start_in_thread(
        self, host: str = "127.0.0.1", port: int = 0
    ) -> tuple[str, Callable[[], None]]:
        """Serve in a background thread; returns the base URL and a stop function."""
        server = self.make_server(host, port)
        thread = threading.Thread(target=server.serve_forever, name="local-host", daemon=True)
        thread.start()
        bound_host, bound_port = server.server_address[:2]

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

        return f"http://{url_host(str(bound_host))}:{bound_port}", stop

    @contextlib.contextmanager
    def running(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """`with host.running() as base_url:` for tests and benchmarks."""
        base_url, stop = self.start_in_thread(host, port)
        try:
            yield base_url
        finally:
            stop()


async def _await(awaitable: Any) -> Any:
    return await awaitable


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _handler_for(local_host: LocalHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Headers and body go out in two writes; with Nagle on, the body waits ~40 ms for the
        # client's delayed ACK on every keep-alive request (found by bench/probe_stall.py).
        disable_nagle_algorithm = True
        # HTTP/1.1 keeps connections alive (benchmarks); every response sets Content-Length.
        protocol_version = "HTTP/1.1"
        server_version = "devhost"

        # Every read gives up after this long (socketserver sets it on the connection); the
        # body has one deadline for the whole of it on top (_read_body).
        timeout = local_host.read_timeout

        def _handle(self) -> None:
            try:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    raise FramingRefused(
                        _json_response(
                            411, {"error": "length_required", "message": "send Content-Length"}
                        )
                    )
                length = body_length(
                    self.headers.get_all("Content-Length") or [], local_host.max_request_bytes
                )
            except FramingRefused as refused:
                self._refuse_unread(refused.response)
                return
            try:
                body = self._read_body(length)
            except TimeoutError:
                timed_out = {
                    "error": "request_timeout",
                    "message": f"the body did not arrive within {local_host.read_timeout:g} s",
                }
                self._send_last(_json_response(408, timed_out))
                return
            except EOFError:
                short = {"error": "bad_request", "message": "the body ended before its length"}
                self._send_last(_json_response(400, short))
                return
            headers: dict[str, str] = {}
            for key, value in self.headers.items():
                key = key.lower()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
            url = f"http://{host}{self.path}"
            self._send(local_host.dispatch(self.command, url, headers, body))

        def _read_body(self, length: int) -> bytes:
            """`length` bytes against one deadline for the whole body, so a client that sends
            less, or trickles, is cut off: TimeoutError, or EOFError when it closed early."""
            deadline = time.monotonic() + local_host.read_timeout
            chunks: list[bytes] = []
            remaining = length
            try:
                while remaining:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError("request body")
                    self.connection.settimeout(left)
                    chunk = self.rfile.read1(min(remaining, _CHUNK))
                    if not chunk:
                        raise EOFError("request body")
                    chunks.append(chunk)
                    remaining -= len(chunk)
            finally:
                self.connection.settimeout(local_host.read_timeout)
            return b"".join(chunks)

        def _send_last(self, response: LocalResponse) -> None:
            """Answer and close; the client may be gone already, which is no error of ours."""
            with contextlib.suppress(OSError):
                self._send(response, close=True)

        def _refuse_unread(self, response: LocalResponse) -> None:
            """Answer before reading the body, then drop a bounded amount of what the client is
            still sending: closing with its bytes unread would reset the connection, and a
            reset can discard our answer before the client reads it."""
            self._send_last(response)
            deadline = time.monotonic() + _LINGER_SECONDS
            drained = 0
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_WR)
                while drained < _LINGER_BYTES and (left := deadline - time.monotonic()) > 0:
                    self.connection.settimeout(left)
                    chunk = self.rfile.read1(_CHUNK)
                    if not chunk:
                        break
                    drained += len(chunk)

        def _send(self, response: LocalResponse, close: bool = False) -> None:
            self.send_response(response.status)
            for key, value in response.headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(response.body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        def log_message(self, format: str, *args: Any) -> None:
            # The request line is the client's: no function key, no known secret, no
            # /webhook/<token> segment (right or wrong), and no raw control character (a
            # forged line, a terminal escape) reaches the log.
            line = redact_path_secrets(redact_url(format % args, local_host.secrets))
            log.info("%s %s", self.address_string(), log_safe(line))

    return Handler


_PATH_SECRET = re.compile(r"(/webhook/)[^/?#\s\"]+", re.IGNORECASE)


def redact_path_secrets(line: str) -> str:
    """An access-log line without the secret path segment of `/webhook/<token>` (the relay's
    inbound token, SIGNL4's URL shape)."""
    return _PATH_SECRET.sub(r"\1***", line)
