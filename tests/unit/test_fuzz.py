"""Fuzzing POST /api/halopsa: whatever arrives, the answer is JSON with a result or a documented
caller error, never a 500. Everything is seeded (hypothesis derandomized, a fixed-seed mutator),
so a run is the same on every machine; no verdict depends on time. Dry run: nothing is sent,
no storage is needed."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.halo import html_to_text
from shared.domain.html_text import tokens as html_tokens
from tests.conftest import FIXTURES, SPEED_PROOF, call_halopsa, http_post

FUZZ = settings(
    settings.get_profile(SPEED_PROOF),  # no deadline: timing never fails a test
    derandomize=True,  # the same examples on every run and machine
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SEED = 8  # the byte mutator's seed (issue #8)

_ERROR_ROW = re.compile(r"^\| `([a-z0-9_]+)` \| (\d{3}) \|", re.MULTILINE)
DOCUMENTED: dict[str, int] = {
    code: int(status)
    for code, status in _ERROR_ROW.findall(
        (Path(__file__).resolve().parents[2] / "docs" / "answers.md").read_text(encoding="utf-8")
    )
}
# What bad input may be answered with: the 4xx codes of docs/answers.md (not 401: no auth configured).
CALLER_ERRORS = {code for code, status in DOCUMENTED.items() if 400 <= status < 500} - {
    "unauthorized"
}
# Results in a dry run: nothing is sent, so nothing is duplicate or queued either.
RESULTS = {"dry-run", "skipped"}
# What must never reach SIGNL4: C0 controls but tab and line feed, DEL, C1, and the format
# characters that hide or reorder text (bidi controls, zero-width space, word joiner, BOM,
# line/paragraph separators: shared/domain/alert.clean_text).
_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200b\u2060\ufeff\u2028\u2029]"
)

Functions = dict[str, Callable[..., Any]]


class Counter:
    def __init__(self) -> None:
        self.cases = 0
        self.answers: dict[str, int] = {}

    def summary(self, what: str) -> str:
        top = ", ".join(f"{key} {n}" for key, n in sorted(self.answers.items()))
        return f"fuzz: {self.cases} {what} cases, none answered 5xx ({top})"


@pytest.fixture
def dry_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_DRY_RUN", "true")
    monkeypatch.setenv("HALO_BASE_URL", "https://contoso.halopsa.com")


def post_and_check(functions: Functions, body: bytes, counter: Counter) -> None:
    """One case through the real HTTP function; the answer must be JSON and documented."""
    response, queued = call_halopsa(functions, http_post(body))
    counter.cases += 1
    assert queued == []
    assert response.mimetype == "application/json"
    answer = json.loads(response.get_body())
    assert response.status_code < 500, answer
    elements = answer.get("results", [answer])
    assert elements, answer
    for element in elements:
        if "error" in element:
            assert element["error"] in CALLER_ERRORS, element
            assert isinstance(element["message"], str) and element["message"]
            key = element["error"]
        else:
            assert element["result"] in RESULTS, element
            key = element["result"]
        if element.get("result") == "dry-run":
            rendered = json.dumps(element["payload"], ensure_ascii=False)
            assert not _CONTROL.search(rendered), rendered
        counter.answers[key] = counter.answers.get(key, 0) + 1
    statuses = {DOCUMENTED[e["error"]] if "error" in e else 200 for e in elements}
    assert response.status_code == max(statuses), answer


def report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\n{line}")


# --- structured: Halo-shaped JSON with hostile values and case-shuffled keys ---

_KEYS = [
    "event",
    "object_id",
    "ticket",
    "id",
    "ticket_id",
    "message",
    "X-S4-ExternalID",
    "X-S4-Status",
    "Title",
    "Message",
    "Status",
    "Priority",
    "Client",
    "Site",
    "Link",
    "hasbeenclosed",
    "webhook_id",
    "dateoccurred",
    "dateclosed",
]
_TICKET_KEYS = [
    "id",
    "summary",
    "details",
    "details_html",
    "status_id",
    "status",
    "status_name",
    "hasbeenclosed",
    "priority",
    "priority_id",
    "team",
    "team_id",
    "agent_id",
    "client_name",
    "reference",
    "dateoccurred",
    "customfields",
]
_HOSTILE_TEXT = [
    "<x " * 50,
    '<a b="' * 30,
    "<!--" * 30,
    "Log says <![foo]> then stops",
    "&#" + "9" * 5000 + ";",
    "<script>alert(1)",
    "\x00\x07\x1b[31m\r\n\x85\x9f\x7f\ud83d",
    "Disk C: , D: ]",
    "new ticket logged",
    "closed",
    "resolved",
    "HaloPSA-4242",
    "HaloPSA-",
    "1900-01-01T00:00:00",
    "2026-09-25T06:41:08.7895915Z",
    "Y",
    "on",
    "maybe",
    "",
]


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(_HOSTILE_TEXT),
)
_values = st.one_of(
    _scalars,
    st.lists(_scalars, max_size=3),
    st.dictionaries(st.sampled_from(["name", "Name", "id", "priorityid"]), _scalars, max_size=3),
)
_ticket_ids = st.one_of(st.integers(min_value=1, max_value=2**53), _scalars)


def _variants(keys: list[str]) -> list[str]:
    """Each key as Halo writes it and in other cases, so objects get keys that fold alike."""
    return sorted({variant for key in keys for variant in (key, key.lower(), key.upper())})


def _with_extras(
    base: st.SearchStrategy[dict[str, Any]], keys: list[str]
) -> st.SearchStrategy[dict[str, Any]]:
    """A mostly well-formed object plus a few keys in any case with any value."""
    extras = st.dictionaries(st.sampled_from(_variants(keys)), _values, max_size=3)
    return st.builds(lambda obj, more: {**obj, **more}, base, extras)


_tickets = _with_extras(
    st.fixed_dictionaries(
        {}, optional={key: _values for key in _TICKET_KEYS if key != "id"} | {"id": _ticket_ids}
    ),
    _TICKET_KEYS,
)
_webhooks = _with_extras(
    st.fixed_dictionaries(
        {
            "event": st.sampled_from(["New Ticket Logged", "closed", "ticket status changed", "x"])
            | _scalars,
            "object_id": _ticket_ids,
        },
        optional={"ticket": _tickets, "message": _values, "X-S4-Status": _values},
    ),
    _KEYS,
)
_guide_bodies = _with_extras(
    st.fixed_dictionaries(
        {
            "X-S4-ExternalID": st.integers(min_value=1, max_value=10**9).map("HaloPSA-{}".format)
            | _scalars,
            "Title": _values,
        },
        optional={
            key: _values
            for key in ("Message", "Status", "Priority", "Client", "Site", "X-S4-Status")
        },
    ),
    _KEYS,
)
_events = st.one_of(
    _webhooks, _guide_bodies, _tickets, st.builds(lambda t: {"ticket": t}, _tickets)
)
_bodies = st.one_of(_events, st.lists(_events, min_size=1, max_size=4), _values)


def test_structured_bodies_are_answered_with_documented_json(
    functions: Functions, dry_run: None, capsys: pytest.CaptureFixture[str]
) -> None:
    counter = Counter()

    @settings(FUZZ, max_examples=1500)
    @given(body=_bodies)
    def check(body: Any) -> None:
        post_and_check(functions, json.dumps(body).encode("utf-8"), counter)

    check()
    report(capsys, counter.summary("structured"))
    assert counter.cases >= 1500
    # The fuzz reaches the interesting answers, not only invalid_json.
    assert {
        "dry-run",
        "skipped",
        "missing_ticket_id",
        "unsupported_payload",
        "invalid_status",
        "invalid_field",
    } <= counter.answers.keys()


def test_arbitrary_bytes_are_answered_with_documented_json(
    functions: Functions, dry_run: None, capsys: pytest.CaptureFixture[str]
) -> None:
    counter = Counter()

    @settings(FUZZ, max_examples=300)
    @given(body=st.binary(max_size=300))
    def check(body: bytes) -> None:
        post_and_check(functions, body, counter)

    check()
    report(capsys, counter.summary("random-bytes"))
    assert counter.cases >= 300


# --- a seeded byte mutator over the real fixtures ---

_INSERTS = [
    b": ,",
    b'"',
    b"\\",
    b"<![foo]>",
    b"<x <x <x ",
    b'<a b="',
    b"\\u0000",
    b"\\ud83d",
    b"\x00",
    b"\xff",
    b"\xef\xbb\xbf",
    b"NaN",
    b"1e999",
    b"-0",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b'"Event": "closed", ',
    b'"event": "new ticket logged", ',
    b'"hasbeenclosed": "maybe", ',
    b'"HasBeenClosed": 1.0, ',
    b'"X-S4-Status": "resolved", ',
    b'"object_id": 99, ',
    b"&#99999999999;",
]


def _mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(out) + 1)
        action = rng.randrange(6)
        if action == 0 and out:  # flip a byte
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif action == 1:  # delete a span
            del out[at : at + rng.randint(1, 12)]
        elif action == 2:  # duplicate a span (a key twice, an object twice)
            span = out[at : at + rng.randint(1, 40)]
            out[at:at] = span
        elif action == 3:  # truncate
            del out[at:]
        elif action == 4:  # swap the case of a span (keys that differ only in case)
            out[at : at + 12] = bytes(out[at : at + 12]).swapcase()
        else:
            out[at:at] = rng.choice(_INSERTS)
    return bytes(out)


def _fixture_mutants(per_fixture: int) -> Iterator[bytes]:
    rng = random.Random(SEED)
    for path in sorted(path for path in FIXTURES.glob("*") if path.is_file()):
        data = path.read_bytes()
        yield data
        for _ in range(per_fixture):
            yield _mutate(data, rng)


def test_mutated_fixtures_are_answered_with_documented_json(
    functions: Functions, dry_run: None, capsys: pytest.CaptureFixture[str]
) -> None:
    counter = Counter()
    for body in _fixture_mutants(per_fixture=300):
        post_and_check(functions, body, counter)
    report(capsys, counter.summary("mutated-fixture"))
    assert counter.cases >= 3000
    assert {"dry-run", "invalid_json", "unsupported_payload"} <= counter.answers.keys()


# --- the HTML converter on markup-heavy text: never raises, reads each character once ---

_HTML_ALPHABET = st.sampled_from(
    [
        *"<>/!-?=\"' \t\n&#;x0a9[]",
        *("<p>", "</p>", "<br/>", "<script>", "</script", "&amp;"),
        *("\u202e", "\u2028", "\ufeff", "&#x202E;", "&#8203;"),  # hiding characters, raw or not
    ]
)


def test_html_to_text_never_raises_and_reads_each_character_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cases = 0

    @settings(FUZZ, max_examples=1000)
    @given(text=st.lists(_HTML_ALPHABET, max_size=300).map("".join) | st.text(max_size=200))
    def check(text: str) -> None:
        nonlocal cases
        cases += 1
        result = html_to_text(text)
        assert result is None or (result and not _CONTROL.search(result))
        # Count the work instead of timing it: the tokens tile the input, in order, once.
        position = 0
        for token in html_tokens(text):
            assert token.start == position and token.end > token.start
            position = token.end
        assert position == len(text)

    check()
    report(capsys, f"fuzz: {cases} html cases, none raised, every input read once")
    assert cases >= 1000


# --- the token route: SIGNL4's query parameters with hostile names and values ---

FUZZ_TOKEN = "fuzz-token-7Qe9"
_PARAM_NAMES = st.sampled_from(
    ["ExtIDParam", "extidparam", "ExtStatusParam", "ResolvedStatus", "AckStatus", "NewStatus"]
)
_OTHER_PARAMS = st.sampled_from(["code", "x", "EXTSTATUSPARAM"])
_queries = st.dictionaries(_PARAM_NAMES | _OTHER_PARAMS, st.one_of(st.sampled_from(_KEYS), _scalars.map(str)))


def test_the_token_route_with_any_query_is_answered_with_documented_json(
    functions: Functions,
    dry_run: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same guarantees on /api/webhook/{token}, whatever SIGNL4 parameters the method path
    carries; a wrong token is the route-not-found 404, and the token is never echoed."""
    import azure.functions as func

    from devhost.functions import OutValue

    monkeypatch.setenv("RELAY_INBOUND_TOKEN", FUZZ_TOKEN)
    counter = Counter()

    @settings(FUZZ, max_examples=600)
    # The guide body is what this route gets; other shapes and junk now and then.
    @given(body=_guide_bodies | _bodies, query=_queries, right_token=st.booleans())
    def check(body: Any, query: dict[str, str], right_token: bool) -> None:
        token = FUZZ_TOKEN if right_token else FUZZ_TOKEN[:-1]
        request = func.HttpRequest(
            method="POST",
            url=f"http://localhost:7071/api/webhook/{token}",
            headers={"Content-Type": "application/json"},
            params=query,
            route_params={"token": token},
            body=json.dumps(body).encode("utf-8"),
        )
        queued = OutValue()
        response = functions["webhook"](request, queued=queued)
        text = response.get_body().decode("utf-8")
        assert FUZZ_TOKEN[:-1] not in text, text
        answer = json.loads(text)
        counter.cases += 1
        if not right_token:
            assert response.status_code == 404, answer
            counter.answers["404"] = counter.answers.get("404", 0) + 1
            return
        assert response.status_code < 500, answer
        for element in answer.get("results", [answer]):
            key = element.get("error") or element.get("result")
            assert key in CALLER_ERRORS | RESULTS, element
            counter.answers[key] = counter.answers.get(key, 0) + 1

    check()
    report(capsys, counter.summary("token-route"))
    assert counter.cases >= 600
    assert {"404", "dry-run", "missing_ticket_id"} <= counter.answers.keys()
