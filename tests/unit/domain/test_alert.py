"""The SIGNL4 payload, and the client against a real loopback SIGNL4 that fails on purpose."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from shared.adapters.signl4 import send_event, webhook_url
from shared.domain.alert import AlertStatus, build_payload, clean_text, encoded_size, fit_payload
from shared.domain.halo import parse_event
from shared.domain.policy import Decision, decide
from shared.entry.halo_webhook import handle_halo_request
from shared.errors import Signl4Rejected, Signl4Unavailable
from shared.settings import RelaySettings
from tests.conftest import (
    FIXTURES,
    SPEED_PROOF,
    TEAM_SECRET,
    Signl4Fake,
    fixture_bytes,
    fixture_json,
)


def _payload(fixture: str, **env: str) -> dict:
    settings = RelaySettings.from_env(env)
    event = parse_event(fixture_json(fixture))
    return build_payload(event, decide(event, settings), settings)


def test_payload_from_full_webhook() -> None:
    payload = _payload("webhook_new_full.json", HALO_BASE_URL="https://contoso.halopsa.com/")
    assert payload["Title"] == "IN-0009499: Backups failing for Fabrikam"
    assert payload["X-S4-ExternalID"] == "HaloPSA-4243"
    assert payload["X-S4-Status"] == "new"
    assert payload["X-S4-SourceSystem"] == "HaloPSA"
    assert "<" not in payload["Message"] and "failed three times" in payload["Message"]
    assert payload["TicketId"] == 4243
    assert payload["Client"] == "Fabrikam Ltd" and payload["Site"] == "Main Office"
    assert payload["Priority"] == "P1 - Critical" and payload["Type"] == "Incident"
    assert payload["Team"] == "1st Line Support" and payload["Agent"] == "Alex Agent"
    assert payload["Status"] == "New"
    assert payload["Link"] == "https://contoso.halopsa.com/ticket?id=4243"
    assert "X-S4-AlertingScenario" not in payload


def test_payload_leaves_out_empty_parameters_and_link_without_base_url() -> None:
    payload = _payload("webhook_closed_event_only.json")
    assert payload["X-S4-Status"] == "resolved"
    assert payload["Title"] == "HaloPSA ticket 4242"  # never empty
    assert payload["Message"] == "Ticket 4242 closed"
    assert "Link" not in payload and "Client" not in payload
    assert None not in payload.values()


def test_guide_body_link_is_kept_without_base_url_and_base_url_wins() -> None:
    """Moving from SIGNL4's guide must not lose the Link its body carries."""
    assert _payload("guide_new.json")["Link"] == "https://contoso.halopsa.com/ticket?id=4242"
    overridden = _payload("guide_new.json", HALO_BASE_URL="https://fabrikam.halopsa.com")
    assert overridden["Link"] == "https://fabrikam.halopsa.com/ticket?id=4242"


def test_guide_close_body_maps_to_the_same_external_id() -> None:
    assert _payload("guide_close.json")["X-S4-ExternalID"] == "HaloPSA-4242"


def test_message_and_title_are_bounded() -> None:
    settings = RelaySettings.from_env({})
    event = parse_event(
        {
            "event": "new ticket logged",
            "object_id": 1,
            "ticket": {"id": 1, "summary": "s" * 1000, "details": "<p>" + "x" * 20000 + "</p>"},
        }
    )
    payload = build_payload(event, decide(event, settings), settings)
    assert len(payload["Title"]) == 250 and payload["Title"].endswith("…")
    assert len(payload["Message"]) == 4000


def test_every_parameter_is_bounded() -> None:
    settings = RelaySettings.from_env({})
    body = {
        "event": "new ticket logged",
        "object_id": 1,
        "ticket": {"id": 1, "client_name": "c" * 9000, "site_name": "s" * 600},
    }
    event = parse_event(body)
    payload = build_payload(event, decide(event, settings), settings)
    assert len(payload["Client"]) == 500 and payload["Client"].endswith("…")
    assert len(payload["Site"]) == 500
    assert len(json.dumps(payload)) < 16_000


def test_emergency_scenario_reaches_the_payload() -> None:
    settings = RelaySettings.from_env({"RELAY_EMERGENCY_PRIORITIES": "1"})
    event = parse_event(fixture_json("webhook_new_small.json"))
    assert (
        build_payload(event, decide(event, settings), settings)["X-S4-AlertingScenario"]
        == "emergency"
    )


def test_skip_decision_has_no_payload() -> None:
    event = parse_event(fixture_json("webhook_status_changed.json"))
    with pytest.raises(ValueError):
        build_payload(event, Decision(action="skip", reason="r"), RelaySettings.from_env({}))


@pytest.mark.parametrize(
    "base", ["https://connect.signl4.com/webhook", "https://connect.signl4.com/webhook/"]
)
def test_webhook_url_joins_with_or_without_slash(base: str) -> None:
    settings = RelaySettings.from_env({"SIGNL4_WEBHOOK_URL": base, "SIGNL4_TEAM_SECRET": " ab/c "})
    assert webhook_url(settings) == "https://connect.signl4.com/webhook/ab%2Fc"


# --- client against the loopback SIGNL4 ---

PAYLOAD = {"Title": "t", "X-S4-ExternalID": "HaloPSA-1", "X-S4-Status": AlertStatus.NEW.value}


def _settings(live_env: dict[str, str], **overrides: str) -> RelaySettings:
    return RelaySettings.from_env({**live_env, **overrides})


def test_success_keeps_the_event_id(signl4: Signl4Fake, live_env: dict[str, str]) -> None:
    result = send_event(PAYLOAD, _settings(live_env))
    assert (result.status_code, result.event_id, result.attempts) == (201, "evt-1", 1)
    assert signl4.events == [PAYLOAD]
    assert signl4.paths == [f"/webhook/{TEAM_SECRET}"]


def test_5xx_is_retried_then_succeeds(signl4: Signl4Fake, live_env: dict[str, str]) -> None:
    signl4.script(500, 503)
    result = send_event(PAYLOAD, _settings(live_env))
    assert result.attempts == 3 and result.event_id == "evt-3"
    assert len(signl4.events) == 3


def test_5xx_until_attempts_run_out(signl4: Signl4Fake, live_env: dict[str, str]) -> None:
    signl4.script(502, 502, 502, 502)
    with pytest.raises(Signl4Unavailable) as raised:
        send_event(PAYLOAD, _settings(live_env))
    assert raised.value.signl4_status == 502 and raised.value.status_code == 503
    assert len(signl4.events) == 3


def test_429_honours_retry_after(signl4: Signl4Fake, live_env: dict[str, str]) -> None:
    signl4.script((429, {"Retry-After": "1"}))
    started = time.monotonic()
    result = send_event(PAYLOAD, _settings(live_env))
    assert time.monotonic() - started >= 0.9
    assert result.attempts == 2 and len(signl4.events) == 2


def test_429_honours_x_ratelimit_reset(signl4: Signl4Fake, live_env: dict[str, str]) -> None:
    reset = int(time.time()) + 2
    signl4.script((429, {"X-RateLimit-Reset": str(reset), "X-RateLimit-Remaining": "0"}))
    result = send_event(PAYLOAD, _settings(live_env))
    assert time.time() >= reset - 1  # waited for the window, not just the backoff
    assert result.attempts == 2


def test_retry_after_past_the_budget_gives_up_at_once(
    signl4: Signl4Fake, live_env: dict[str, str]
) -> None:
    signl4.script((429, {"Retry-After": "60"}))
    started = time.monotonic()
    with pytest.raises(Signl4Unavailable, match="retry budget") as raised:
        send_event(PAYLOAD, _settings(live_env))
    # It did not sleep the 60 s: the bound is half of them, not a bar a slow machine can miss.
    assert time.monotonic() - started < 30
    assert raised.value.signl4_status == 429
    assert len(signl4.events) == 1


@pytest.mark.parametrize("status", [400, 401, 404, 405, 413])
def test_other_4xx_is_never_retried(
    signl4: Signl4Fake, live_env: dict[str, str], status: int
) -> None:
    signl4.script(status)
    with pytest.raises(Signl4Rejected) as raised:
        send_event(PAYLOAD, _settings(live_env))
    assert raised.value.signl4_status == status
    assert (
        f"HTTP {status}" in raised.value.message and "Error raising event." in raised.value.message
    )
    assert len(signl4.events) == 1


@pytest.mark.parametrize("secret", ["Ab c/d%2F?#é&=+~x", "ünïcødé sëcret", " spaced\n"])
def test_signl4_echoing_the_secret_in_any_form_is_scrubbed(
    signl4: Signl4Fake, live_env: dict[str, str], secret: str
) -> None:
    from werkzeug import Response

    def echo_path(request):  # a SIGNL4 that quotes the request path back in its error
        body = {
            "code": 3001,
            "message": f"unknown team {request.path} / {secret} / {secret.strip()}",
        }
        return Response(json.dumps(body), status=404, mimetype="application/json")

    env = _settings(live_env, SIGNL4_TEAM_SECRET=secret)
    signl4.server.expect_request(re.compile(r"^/webhook/.*")).respond_with_handler(echo_path)
    with pytest.raises(Signl4Rejected) as raised:
        send_event(PAYLOAD, env)
    message = raised.value.message
    assert "SIGNL4 error 3001" in message
    for form in (secret, secret.strip(), quote(secret.strip(), safe=""), quote(secret.strip())):
        assert form not in message, form


def test_hang_past_the_timeout_is_retried(signl4: Signl4Fake, live_env: dict[str, str]) -> None:
    signl4.script("hang")  # held until teardown: the first attempt's timeout always fires
    # One timeout covers both attempts, so the retry's 201 must come within it: 1 s is the
    # one clock bar left (a loopback answer; far above what a loaded machine takes).
    result = send_event(PAYLOAD, _settings(live_env, SIGNL4_TIMEOUT_SECONDS="1"))
    assert result.attempts == 2
    assert len(signl4.events) == 2  # the hung call did reach SIGNL4: a possible duplicate


def test_hang_every_time_is_unavailable(signl4: Signl4Fake, live_env: dict[str, str]) -> None:
    signl4.script("hang", "hang")  # held until teardown: every attempt times out
    env = _settings(live_env, SIGNL4_TIMEOUT_SECONDS="0.2", SIGNL4_MAX_ATTEMPTS="2")
    with pytest.raises(Signl4Unavailable, match="timed out"):
        send_event(PAYLOAD, env)


def test_connection_refused(live_env: dict[str, str], unused_port: int) -> None:
    env = _settings(live_env, SIGNL4_WEBHOOK_URL=f"http://127.0.0.1:{unused_port}/webhook/")
    with pytest.raises(Signl4Unavailable, match="connection failed") as raised:
        send_event(PAYLOAD, env)
    assert TEAM_SECRET not in str(raised.value)


def test_urllib3_logs_never_show_the_secret(
    signl4: Signl4Fake, live_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    signl4.script(503)
    send_event(PAYLOAD, _settings(live_env))
    assert any("urllib3" in record.name for record in caplog.records)  # it did log the URL...
    assert TEAM_SECRET not in caplog.text  # ...without the secret


def test_every_urllib3_logger_is_scrubbed(
    signl4: Signl4Fake, live_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """urllib3.connection logs the URL on a malformed answer: it is covered like the rest."""
    from shared.adapters.http import URLLIB3_LOGGERS

    caplog.set_level(logging.DEBUG)
    send_event(PAYLOAD, _settings(live_env))  # installs the filters
    for name in URLLIB3_LOGGERS:
        logging.getLogger(name).warning("url=%s", f"{signl4.base_url}{TEAM_SECRET}")
    assert len([r for r in caplog.records if r.getMessage().startswith("url=")]) == 4
    assert TEAM_SECRET not in caplog.text


def test_transport_errors_carry_neither_url_nor_cause(
    live_env: dict[str, str], unused_port: int
) -> None:
    """requests' ConnectionError text holds the URL path, i.e. the secret: it must not be
    chained, printed or kept as the cause."""
    import traceback

    env = _settings(live_env, SIGNL4_WEBHOOK_URL=f"http://127.0.0.1:{unused_port}/webhook/")
    with pytest.raises(Signl4Unavailable) as raised:
        send_event(PAYLOAD, env)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    printed = "".join(traceback.format_exception(raised.value))
    assert TEAM_SECRET not in printed and "Max retries" not in printed
    assert raised.value.message == "could not reach SIGNL4 after 3 attempt(s): connection failed"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_neither_followed_nor_a_success(
    signl4: Signl4Fake, live_env: dict[str, str], status: int
) -> None:
    signl4.script((status, {"Location": signl4.server.url_for("/elsewhere")}))
    with pytest.raises(Signl4Rejected) as raised:
        send_event(PAYLOAD, _settings(live_env))
    assert raised.value.signl4_status == status
    assert f"HTTP {status}" in raised.value.message
    assert [request.path for request, _ in signl4.server.log] == [f"/webhook/{TEAM_SECRET}"]


class _KeepAliveSignl4(BaseHTTPRequestHandler):
    """A loopback SIGNL4 that keeps connections open (HTTP/1.1), as the real one does; the
    werkzeug fake closes each one. Notes the client port and Cookie header of each request and
    sets an affinity cookie, as a load balancer in front of SIGNL4 would."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[int, str | None]]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.seen.append((self.client_address[1], self.headers.get("Cookie")))
        body = json.dumps({"eventId": f"evt-{len(self.seen)}"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "ARRAffinity=abc; Path=/")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the path holds the team secret


def test_sends_reuse_one_connection_and_keep_no_cookie(live_env: dict[str, str]) -> None:
    """Warm invocations reuse the pooled connection; a cookie set by SIGNL4's side is not sent
    back: every call is as stateless as the first."""
    handler = type("Handler", (_KeepAliveSignl4,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/webhook/"
        env = _settings(live_env, SIGNL4_WEBHOOK_URL=url)
        results = [send_event(PAYLOAD, env) for _ in range(3)]
    finally:
        server.shutdown()
        server.server_close()
    assert [r.event_id for r in results] == ["evt-1", "evt-2", "evt-3"]
    assert [cookie for _, cookie in handler.seen] == [None, None, None]
    assert len({port for port, _ in handler.seen}) == 1  # one connection for the three


def test_concurrent_sends_each_keep_their_own_attempts(
    signl4: Signl4Fake, live_env: dict[str, str]
) -> None:
    """One shared session, yet each call retries by its own settings."""
    from concurrent.futures import ThreadPoolExecutor

    from werkzeug import Response

    hits: dict[str, int] = {}
    lock = threading.Lock()

    def always_503(request):
        with lock:
            hits[request.path] = hits.get(request.path, 0) + 1
        return Response("{}", status=503, mimetype="application/json")

    signl4.server.expect_request(re.compile(r"^/webhook/team-[0-9]$")).respond_with_handler(
        always_503
    )
    barrier = threading.Barrier(4)

    def send(attempts: int) -> str:
        env = _settings(
            live_env, SIGNL4_TEAM_SECRET=f"team-{attempts}", SIGNL4_MAX_ATTEMPTS=str(attempts)
        )
        barrier.wait()
        try:
            send_event(PAYLOAD, env)
        except Signl4Unavailable as unavailable:
            return unavailable.message
        return "sent"

    with ThreadPoolExecutor(4) as pool:
        messages = list(pool.map(send, [1, 2, 3, 4]))
    assert messages == [f"SIGNL4 answered HTTP 503 after {n} attempt(s)" for n in (1, 2, 3, 4)]
    assert hits == {f"/webhook/team-{n}": n for n in (1, 2, 3, 4)}


# --- SIGNL4's error text: scrubbed before it is cut, withheld when a piece survives ---

# Long enough to span the 200-char cut, with characters that get percent-encoded.
ECHO_SECRET = "Team/S3cret 4f9a1c+Long-Enough-To-Span/The-Cut"


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), text)


def _mixed_hex(text: str) -> str:
    flip = iter(range(10_000))
    return re.sub(
        r"%[0-9A-F]{2}", lambda m: m.group() if next(flip) % 2 else m.group().lower(), text
    )


def _partly(text: str) -> str:
    """Every other character percent-encoded (upper case), the rest raw."""
    return "".join(
        "".join(f"%{b:02X}" for b in char.encode()) if index % 2 else char
        for index, char in enumerate(text)
    )


def echo_forms(secret: str) -> dict[str, Callable[[str], str]]:
    """How SIGNL4 could echo the secret in its error text; each takes the full request URL."""
    encoded = quote(secret, safe="")
    return {
        "raw at the cut": lambda url: "x" * (200 - len(secret) // 2) + secret + " tail",
        "raw just past the cut": lambda url: "x" * 199 + secret,
        "long secret spanning the cut": lambda url: "y" * 170 + secret + " and more text",
        "lower-case %2f": lambda url: f"unknown team {_lower_hex(encoded)}",
        "mixed-case hex": lambda url: f"unknown team {_mixed_hex(encoded)}",
        "partly encoded": lambda url: f"unknown team {_partly(secret)}",
        "plus for space": lambda url: f"unknown team {quote_plus(secret)}",
        "encoded twice": lambda url: f"unknown team {quote(encoded, safe='')}",
        "upper-cased": lambda url: f"UNKNOWN TEAM {secret.upper()}",
        "full URL": lambda url: f"no webhook at {url}",
        "full URL near the cut": lambda url: "z" * 150 + url,
    }


def secret_pieces(secret: str) -> set[str]:
    """Every 6-char piece of the secret (half of it when shorter), case-folded."""
    folded = secret.strip().casefold()
    size = min(6, max(1, (len(folded) + 1) // 2))
    return {folded[i : i + size] for i in range(len(folded) - size + 1)}


def assert_no_piece_of(secret: str, text: str) -> None:
    """Independent of shared.redaction: decode the text every way SIGNL4 could encode and
    look for any piece of the secret."""
    copies = {text}
    for _ in range(3):
        copies |= {decode(c) for c in copies for decode in (unquote, unquote_plus)}
    for copy in copies:
        for piece in secret_pieces(secret):
            assert piece not in copy.casefold(), f"a piece of the secret ({piece!r}) leaked"


def signl4_echoing(make_message: Callable[[str], str], status: int = 400) -> Callable:
    from werkzeug import Response

    def handler(request):
        body = {"code": 3004, "message": make_message(request.url)}
        return Response(json.dumps(body), status=status, mimetype="application/json")

    return handler


@pytest.mark.parametrize("form", sorted(echo_forms(ECHO_SECRET)))
def test_signl4_error_text_never_carries_a_piece_of_the_secret(
    signl4: Signl4Fake, live_env: dict[str, str], form: str
) -> None:
    env = _settings(live_env, SIGNL4_TEAM_SECRET=ECHO_SECRET)
    handler = signl4_echoing(echo_forms(ECHO_SECRET)[form])
    signl4.server.expect_request(re.compile(r"^/webhook/.*")).respond_with_handler(handler)
    with pytest.raises(Signl4Rejected) as raised:
        send_event(PAYLOAD, env)
    message = raised.value.message
    assert message.startswith("SIGNL4 rejected the event with HTTP 400 (SIGNL4 error 3004")
    assert_no_piece_of(ECHO_SECRET, message)
    assert len(message) < 300  # still cut short


def test_signl4_error_text_is_scrubbed_then_cut_not_withheld(
    signl4: Signl4Fake, live_env: dict[str, str]
) -> None:
    env = _settings(live_env, SIGNL4_TEAM_SECRET=ECHO_SECRET)
    text = "x" * 190 + _lower_hex(quote(ECHO_SECRET, safe="")) + " tail"
    signl4.server.expect_request(re.compile(r"^/webhook/.*")).respond_with_handler(
        signl4_echoing(lambda url: text)
    )
    with pytest.raises(Signl4Rejected) as raised:
        send_event(PAYLOAD, env)
    # Scrubbed first, so the 200 chars kept are the x's, the *** and a bit of the tail.
    assert raised.value.message.endswith("(SIGNL4 error 3004: " + "x" * 190 + "*** tail)")


def test_signl4_error_text_with_an_unknown_encoding_of_the_secret_is_withheld(
    signl4: Signl4Fake, live_env: dict[str, str]
) -> None:
    entities = "".join(f"&#x{ord(c):x};" for c in TEAM_SECRET)  # scrub() does not know these
    signl4.script(lambda request: signl4_echoing(lambda url: f"team {entities}?")(request))
    with pytest.raises(Signl4Rejected) as raised:
        send_event(PAYLOAD, _settings(live_env))
    assert raised.value.message == (
        "SIGNL4 rejected the event with HTTP 400 "
        "(SIGNL4 error 3004; SIGNL4's error text withheld: it echoed the secret)"
    )


# --- the whole payload, one golden file per shape (UPDATE_GOLDEN=1 rewrites them; review the diff) ---

GOLDEN = FIXTURES / "golden"
GOLDEN_CASES = [
    # ids only: Priority/Team/Agent/Status fall back to the numbers; emergency by priority id
    ("webhook_new_small.json", {"RELAY_EMERGENCY_PRIORITIES": "1"}),
    # every parameter, the link built from HALO_BASE_URL
    ("webhook_new_full.json", {"HALO_BASE_URL": "https://contoso.halopsa.com/"}),
    ("webhook_closed_event_only.json", {}),
    ("webhook_status_changed.json", {"RELAY_ACK_STATUSES": "2"}),
    ("guide_new.json", {}),
    ("guide_close.json", {}),
    ("ticket_bare.json", {}),
    ("ticket_wrapped.json", {"HALO_BASE_URL": "https://contoso.halopsa.com"}),
    # bidi overrides and isolates, zero-width characters, BOM, U+2028/2029, raw and as entities
    ("webhook_hidden_characters.json", {}),
]


@pytest.mark.parametrize(("fixture", "env"), GOLDEN_CASES)
def test_the_whole_payload_matches_its_golden_file(fixture: str, env: dict[str, str]) -> None:
    payload = _payload(fixture, **env)
    golden = GOLDEN / fixture
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    assert payload == json.loads(golden.read_text())
    assert list(payload) == list(json.loads(golden.read_text()))  # key order too


# --- nothing that hides or reorders text reaches SIGNL4 (shared/domain/alert.clean_text) ---

# Bidi embeddings/overrides/isolates, zero-width space, word joiner, BOM, C0 (but tab and line
# feed), DEL, C1, and the line/paragraph separators (which become line feeds).
HIDDEN = re.compile(
    "[\u202a-\u202e\u2066-\u2069\u200b\u2060\ufeff\u2028\u2029\x00-\x08\x0b-\x1f\x7f-\x9f]"
)
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"


def test_format_characters_never_reach_signl4_through_the_handler(
    signl4: Signl4Fake, live_env: dict[str, str]
) -> None:
    body = fixture_bytes("webhook_hidden_characters.json")
    assert "\\u202e" in body.decode() and "&#x202E;" in body.decode()
    response = handle_halo_request(body, {}, os.environ)
    assert response.status_code == 200, response.body
    (sent,) = signl4.events
    assert sent["Title"] == "IN-9501: Pay exe.fdp invoice"
    for key, value in sent.items():
        assert not HIDDEN.search(key) and not HIDDEN.search(str(value)), (key, value)
    assert sent["Message"].startswith("Line one\nline two\nline three\n")
    assert f"Family {FAMILY} and \u0646\u200c\u0645 keep" in sent["Message"]  # ZWJ/ZWNJ kept
    assert sent["Status"] == "New\n(from e-mail)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Pay \u202eexe.fdp\u202c invoice", "Pay exe.fdp invoice"),
        ("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069", ""),
        ("a\u200bb\u2060c\ufeffd", "abcd"),
        ("one\u2028two\u2029three", "one\ntwo\nthree"),
        ("crlf\r\nlone\rcr", "crlf\nlone\ncr"),
        ("v\x0bf\x0c.", "v f ."),
        ("tab\tkept\x00\x1b\x7f\x85\x9f", "tab\tkept"),
        (FAMILY, FAMILY),
        ("\u0646\u200c\u0645", "\u0646\u200c\u0645"),
        ("\u200e\u200f\u00ad", "\u200e\u200f\u00ad"),  # marks and soft hyphen: not hiding
        ("half \ud83d", "half ?"),
    ],
)
def test_clean_text_drops_hiding_characters_and_keeps_joiners(text: str, expected: str) -> None:
    assert clean_text(text) == expected
    assert clean_text(expected) == expected  # idempotent


@hypothesis_settings(
    hypothesis_settings.get_profile(SPEED_PROOF), derandomize=True, database=None, max_examples=300
)
@given(text=st.text(st.characters(max_codepoint=0x2100) | st.sampled_from("\r\ufeff\ud83d")))
def test_clean_text_is_one_rule_whether_the_text_is_ascii_or_not(text: str) -> None:
    """ASCII text takes str.translate, other text a substitution: the same table either way."""
    cleaned = clean_text(text)
    assert not HIDDEN.search(cleaned) and "\r" not in cleaned
    assert clean_text(cleaned) == cleaned
    assert clean_text(text + "\u00e9") == cleaned + "\u00e9"  # forced off the ASCII path
    ascii_part = "".join(c for c in text if c.isascii())
    assert clean_text(ascii_part + "\u00e9") == clean_text(ascii_part) + "\u00e9"


def test_fit_payload_cleans_keys_as_well_as_values() -> None:
    fitted = fit_payload({"Ti\u202etle": "x\u200by", "Note\u2028": 3})
    assert fitted == {"Title": "xy", "Note\n": 3}


# --- payload rules, one by one ---


def _built(ticket: dict, env: dict[str, str] | None = None, **envelope: object) -> dict:
    settings = RelaySettings.from_env(env or {})
    body = {"event": "new ticket logged", "object_id": 7, "ticket": ticket, **envelope}
    event = parse_event(body)
    return build_payload(event, decide(event, settings), settings)


@pytest.mark.parametrize(
    ("ticket", "envelope", "title", "message"),
    [
        ({"summary": "Disk full"}, {}, "Disk full", "Disk full"),
        ({"summary": "Disk full", "reference": "IN-1"}, {}, "IN-1: Disk full", "Disk full"),
        (
            {"summary": "IN-1: Disk full", "reference": "IN-1"},
            {},
            "IN-1: Disk full",
            "IN-1: Disk full",
        ),
        ({"reference": "IN-1"}, {}, "IN-1: HaloPSA ticket 7", "HaloPSA ticket 7"),
        ({"summary": "\x00\x07 \x1b"}, {}, "HaloPSA ticket 7", "HaloPSA ticket 7"),
        ({"summary": "s", "details": "d"}, {"message": "m"}, "s", "d"),
        ({"summary": "s", "details": "<p> </p>"}, {"message": "m"}, "s", "m"),
        ({"summary": "s"}, {"message": " \x00 "}, "s", "s"),
        ({}, {"message": "m"}, "HaloPSA ticket 7", "m"),
        ({}, {}, "HaloPSA ticket 7", "HaloPSA ticket 7"),
    ],
)
def test_title_and_message_fall_back_and_are_never_empty(
    ticket: dict, envelope: dict, title: str, message: str
) -> None:
    payload = _built(ticket, **envelope)
    assert (payload["Title"], payload["Message"]) == (title, message)


@pytest.mark.parametrize(
    ("ticket", "parameter", "value"),
    [
        ({"reference": "IN-9"}, "Reference", "IN-9"),
        ({"user_name": "Sam"}, "User", "Sam"),
        ({"dateoccurred": "2026-09-25T07:01:59Z"}, "DateOccurred", "2026-09-25T07:01:59+00:00"),
        ({"priority_id": 3}, "Priority", "3"),
        ({"priority_id": 3, "priority_name": "P3"}, "Priority", "P3"),
        ({"team_id": 0}, "Team", "0"),
        ({"team_id": 5, "team": "NOC"}, "Team", "NOC"),
        ({"agent_id": 8}, "Agent", "8"),
        ({"agent_id": 8, "agent_name": "Alex"}, "Agent", "Alex"),
        ({"status_id": 2}, "Status", "2"),
        ({"status_id": 2, "status_name": "In Progress"}, "Status", "In Progress"),
        ({"tickettype_name": "Incident"}, "Type", "Incident"),
        ({"client_name": "Contoso"}, "Client", "Contoso"),
        ({"site_name": "HQ"}, "Site", "HQ"),
    ],
)
def test_each_parameter_and_its_numeric_fallback(ticket: dict, parameter: str, value: str) -> None:
    assert _built(ticket)[parameter] == value


def test_halo_event_is_passed_on_and_absent_without_one() -> None:
    assert _built({})["HaloEvent"] == "new ticket logged"
    event = parse_event({"X-S4-ExternalID": "HaloPSA-7", "Title": "t"})
    settings = RelaySettings.from_env({})
    assert "HaloEvent" not in build_payload(event, decide(event, settings), settings)


def test_parameters_are_cleaned_and_left_out_when_nothing_is_left() -> None:
    payload = _built({"client_name": "Con\x07toso\x85", "site_name": "\x00", "user_name": "  "})
    assert payload["Client"] == "Contoso"
    assert "Site" not in payload and "User" not in payload


@pytest.mark.parametrize(
    ("length", "expected"),
    [(499, "c" * 499), (500, "c" * 500), (501, "c" * 499 + "…")],
)
def test_a_parameter_is_cut_at_500_characters(length: int, expected: str) -> None:
    assert _built({"client_name": "c" * length})["Client"] == expected


def test_a_cut_drops_the_trailing_space_before_the_ellipsis() -> None:
    assert _built({"client_name": "c" * 498 + " d" + "e" * 5})["Client"] == "c" * 498 + "…"
    title = _built({"summary": "t" * 248 + " " + "u" * 10})["Title"]
    assert title == "t" * 248 + "…"
    assert _built({"summary": "t" * 250})["Title"] == "t" * 250


def test_the_message_is_cut_at_4000_characters() -> None:
    assert _built({"details": "m" * 4000})["Message"] == "m" * 4000
    assert _built({"details": "m" * 4001})["Message"] == "m" * 3999 + "…"


def test_the_link_joins_the_base_url_without_a_double_slash() -> None:
    env = {"HALO_BASE_URL": "https://contoso.halopsa.com//"}
    assert _built({}, env)["Link"] == "https://contoso.halopsa.com/ticket?id=7"


def test_fit_payload_cleans_text_and_leaves_numbers_and_small_payloads_alone() -> None:
    payload = {"Title": "a\r\nb\x00c\ud83d", "TicketId": 7, "X-S4-Status": "new"}
    assert fit_payload(payload) == {"Title": "a\nbc?", "TicketId": 7, "X-S4-Status": "new"}


def test_fit_payload_trims_message_first_then_the_longest_then_title_to_the_byte() -> None:
    payload = {
        "Title": "T" * 300,
        "Message": "M" * 3000,
        "X-S4-ExternalID": "HaloPSA-1",
        "Short": "S" * 200,
        "Long": "L" * 400,
        "TicketId": 1,
    }
    full = encoded_size(payload)
    # Over by 100 bytes: the message alone pays, to the byte.
    fitted = fit_payload(payload, max_bytes=full - 100)
    assert encoded_size(fitted) == full - 100
    assert fitted["Message"] == "M" * (3000 - 100 - 3) + "…"
    assert {k: v for k, v in fitted.items() if k != "Message"} == {
        k: v for k, v in payload.items() if k != "Message"
    }
    # Over by more than the message holds: the message keeps its ellipsis, then the longest
    # parameter pays, then the next, and the title last.
    budget = full - 3000 - 300
    fitted = fit_payload(payload, max_bytes=budget)
    assert encoded_size(fitted) == budget
    assert fitted["Message"] == "…"
    assert fitted["Long"] == "L" * (400 - (3300 - 2997) - 3) + "…"
    assert fitted["Short"] == "S" * 200 and fitted["Title"] == "T" * 300
    tight = fit_payload(payload, max_bytes=full - 3000 - 400 - 200 - 200)
    assert (tight["Message"], tight["Long"], tight["Short"]) == ("…", "…", "…")
    assert tight["Title"].startswith("T") and tight["Title"].endswith("…")
    assert tight["X-S4-ExternalID"] == "HaloPSA-1" and tight["TicketId"] == 1


def test_fit_payload_counts_escaped_and_multibyte_characters() -> None:
    for unit in ("X", " x", '"', "\\", "a\n", "a\t", "é", "€", "😀"):
        payload = {"Message": unit * 1000, "X-S4-Status": "new"}
        budget = encoded_size(payload) - 500
        fitted = fit_payload(payload, max_bytes=budget)
        # To the byte, but for the part of one unit (and a space stripped before the ellipsis).
        assert budget - 4 < encoded_size(fitted) <= budget, unit
        kept = fitted["Message"].removesuffix("…")
        assert len(kept) > 100 and (unit * 1000).startswith(kept), unit


def test_fixed_fields_that_alone_pass_the_budget_are_an_error() -> None:
    with pytest.raises(ValueError) as caught:
        fit_payload({"X-S4-ExternalID": "x" * 200, "Message": "m"}, max_bytes=100)
    assert str(caught.value) == "the payload's fixed fields alone exceed 100 bytes"


def test_a_skip_decision_is_refused_with_a_reason() -> None:
    event = parse_event(fixture_json("webhook_status_changed.json"))
    with pytest.raises(ValueError) as caught:
        build_payload(event, Decision(action="skip", reason="r"), RelaySettings.from_env({}))
    assert str(caught.value) == "a skip decision has no SIGNL4 payload"
