"""`python -m shared send-test` against the loopback SIGNL4: one labelled alert raised and
resolved (RELAY_TEST_RESOLVE_SECONDS=0: no wall-clock wait decides anything), --keep, and the
confirmation."""

from __future__ import annotations

import io

from shared import __version__
from shared.__main__ import main
from tests.conftest import TEAM_SECRET, Signl4Fake


def run(
    argv: list[str], env: dict[str, str], answer: str = "", waits: list[float] | None = None
) -> tuple[int, str]:
    out = io.StringIO()
    asked: list[str] = []

    def confirm(prompt: str) -> str:
        asked.append(prompt)
        return answer

    code = main(
        argv,
        environ=env,
        stdout=out,
        confirm=confirm,
        sleep=(waits.append if waits is not None else None),
    )
    return code, out.getvalue() + "".join(asked)


def test_raises_then_resolves_one_labelled_alert(live_env: dict, signl4: Signl4Fake) -> None:
    env = {**live_env, "RELAY_TEST_RESOLVE_SECONDS": "0"}
    code, text = run(["send-test", "--yes"], env)
    assert code == 0, text
    raised, resolved = signl4.events
    assert "test" in raised["Title"].lower() and __version__ in raised["Title"]
    assert "UTC" in raised["Title"] and raised["SentUtc"].endswith("Z")
    assert (raised["X-S4-Status"], resolved["X-S4-Status"]) == ("new", "resolved")
    assert raised["X-S4-ExternalID"] == resolved["X-S4-ExternalID"]
    assert raised["X-S4-ExternalID"].startswith("relay-test-")  # never a Halo ticket's id
    assert "send-test ok" in text and TEAM_SECRET not in text


def test_waits_the_configured_seconds_before_resolving(live_env: dict, signl4: Signl4Fake) -> None:
    waits: list[float] = []
    code, _ = run(
        ["send-test", "--yes"], {**live_env, "RELAY_TEST_RESOLVE_SECONDS": "42"}, waits=waits
    )
    assert code == 0
    assert waits == [42.0]
    assert [e["X-S4-Status"] for e in signl4.events] == ["new", "resolved"]


def test_the_default_wait_is_60_seconds(live_env: dict, signl4: Signl4Fake) -> None:
    waits: list[float] = []
    run(["send-test", "--yes"], dict(live_env), waits=waits)
    assert waits == [60.0]


def test_keep_leaves_the_alert_open(live_env: dict, signl4: Signl4Fake) -> None:
    waits: list[float] = []
    code, text = run(["send-test", "--yes", "--keep"], dict(live_env), waits=waits)
    assert code == 0 and "kept open" in text
    assert [e["X-S4-Status"] for e in signl4.events] == ["new"] and waits == []


def test_asks_first_and_a_no_sends_nothing(live_env: dict, signl4: Signl4Fake) -> None:
    code, text = run(["send-test"], dict(live_env), answer="n")
    assert code == 1 and "[y/N]" in text and "nothing sent" in text
    assert signl4.events == []
    code, _ = run(["send-test"], {**live_env, "RELAY_TEST_RESOLVE_SECONDS": "0"}, answer="y")
    assert code == 0 and len(signl4.events) == 2


def test_a_dry_run_refuses_to_send(signl4: Signl4Fake) -> None:
    code, _ = run(["send-test", "--yes"], {})
    assert code == 1 and signl4.events == []


def test_a_refusal_by_signl4_fails_without_the_secret(live_env: dict, signl4: Signl4Fake) -> None:
    signl4.script(404)
    code, text = run(["send-test", "--yes"], {**live_env, "RELAY_TEST_RESOLVE_SECONDS": "0"})
    assert code == 1 and TEAM_SECRET not in text
    assert len(signl4.events) == 1  # 404 is never retried, and nothing to resolve
