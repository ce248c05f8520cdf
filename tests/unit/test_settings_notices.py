"""No secret pieces, no userinfo (issue 18 item 7): remote error text holding a 6-character
piece of a secret is withheld; a user name or password in a URL setting is never copied into
an alert, an answer, a log line or anything printed; team secret names naming one target twice
are a `check` failure. Settings that worked before keep paging: a warning, logged once."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest

from shared.__main__ import main
from shared.entry.bootstrap import describe_mode, secret_values
from shared.entry.halo_webhook import handle_halo_request
from shared.entry.health import handle_health_request
from shared.redaction import has_userinfo, redact_echo, strip_userinfo
from shared.settings import URL_SETTINGS, RelaySettings, _settings_from_items, setting_notices
from tests.conftest import TEAM_SECRET, Signl4Fake, fixture_bytes

PASSWORD = "Pa55w0rd-in-url"
HALO_WITH_USERINFO = f"https://relay:{PASSWORD}@contoso.halopsa.com/"


@pytest.fixture(autouse=True)
def fresh_settings_cache() -> None:
    """Notices are logged on a settings cache miss: each test starts with none cached."""
    _settings_from_items.cache_clear()


def run(argv: list[str], env: dict[str, str], tmp_path: Path) -> tuple[int, str]:
    out = io.StringIO()
    args = ["--settings", str(tmp_path / "none.json"), *argv]
    return main(args, environ=env, stdout=out), out.getvalue()


def notice_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "shared.settings"]


# --- remote text: 6-character pieces ---


@pytest.mark.parametrize("size", [6, 7])
def test_remote_text_with_a_6_or_7_character_piece_is_withheld(size: int) -> None:
    secret = "Xq7Lm2Vb9Wc4Zr8T"
    for start in range(len(secret) - size + 1):
        piece = secret[start : start + size]
        assert redact_echo(f"unknown team {piece}.", [secret], 200) is None, piece


def test_remote_text_without_a_piece_still_shows() -> None:
    secret = "Xq7Lm2Vb9Wc4Zr8T"
    text = f"unknown team {secret[:5]}, {secret[5:10]} and {secret[10:15]}."  # 5-char bits
    assert redact_echo(text, [secret], 200) == text


@pytest.mark.parametrize(("size", "withheld"), [(5, False), (6, True), (7, True)])
def test_signl4s_error_text_with_a_piece_is_withheld_from_the_answer(
    signl4: Signl4Fake, live_env: dict, size: int, withheld: bool
) -> None:
    from werkzeug import Response

    piece = TEAM_SECRET[4 : 4 + size]
    body = {"code": 3004, "message": f"unknown team {piece}"}
    signl4.script(lambda request: Response(json.dumps(body), 400, mimetype="application/json"))
    response = handle_halo_request(fixture_bytes("guide_new.json"), {}, live_env)
    assert (response.status_code, response.body["error"]) == (502, "signl4_rejected")
    message = response.body["message"]
    assert ("SIGNL4's error text withheld" in message) is withheld
    assert (piece in message) is not withheld


# --- userinfo in URL settings ---


def test_userinfo_is_stripped_and_nothing_else() -> None:
    assert (
        strip_userinfo("https://u:p@host:8443/a@b?c=d@e#f@g") == "https://host:8443/a@b?c=d@e#f@g"
    )
    assert strip_userinfo("https://a@b@host/x") == "https://host/x"
    assert strip_userinfo("https://host/path@x") == "https://host/path@x"
    assert strip_userinfo("https://host") == "https://host"
    assert has_userinfo("https://u@host") and not has_userinfo("https://host/u@x")


def test_every_url_setting_is_watched_for_userinfo() -> None:
    urls = {name for name in RelaySettings.setting_names() if name.endswith("_URL")}
    assert urls == set(URL_SETTINGS)


def test_the_alerts_link_never_carries_halos_userinfo(
    signl4: Signl4Fake, live_env: dict, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env = {**live_env, "HALO_BASE_URL": HALO_WITH_USERINFO}
    first = handle_halo_request(fixture_bytes("guide_new.json"), {}, env)
    second = handle_halo_request(fixture_bytes("guide_close.json"), {}, env)
    # Still pages, as before the upgrade.
    assert [first.status_code, second.status_code] == [200, 200]
    assert [event["Link"] for event in signl4.events] == [
        "https://contoso.halopsa.com/ticket?id=4242"
    ] * 2
    for text in [json.dumps(signl4.events), str(first.body), str(second.body), caplog.text]:
        assert PASSWORD not in text and "@contoso" not in text
    # One warning naming the setting, not one per request.
    [line] = notice_lines(caplog)
    assert line.startswith("settings: HALO_BASE_URL: the URL holds a user name or password")


def test_preview_prints_no_userinfo_of_the_signl4_url(
    live_env: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    url = live_env["SIGNL4_WEBHOOK_URL"].replace("http://", f"http://ops:{PASSWORD}@")
    env = {**live_env, "SIGNL4_WEBHOOK_URL": url, "HALO_BASE_URL": HALO_WITH_USERINFO}
    body = tmp_path / "body.json"
    body.write_bytes(fixture_bytes("guide_new.json"))
    for argv in (["preview", str(body)], ["preview", "--json", str(body)]):
        code, text = run(argv, env, tmp_path)
        assert code == 0
        assert PASSWORD not in text and "ops:" not in text
        assert "https://contoso.halopsa.com/ticket?id=4242" in text
    assert (
        "Target: SIGNL4 webhook http://127.0.0.1:" in run(["preview", str(body)], env, tmp_path)[1]
    )
    assert PASSWORD not in describe_mode(env)
    assert PASSWORD not in capsys.readouterr().err


@pytest.mark.parametrize("name", URL_SETTINGS)
def test_check_fails_on_userinfo_in_any_url_setting(
    live_env: dict, tmp_path: Path, name: str
) -> None:
    env = {**live_env, "HALO_CLIENT_ID": "relay", "HALO_CLIENT_SECRET": "client-s3cret-77"}
    env[name] = f"https://ops:{PASSWORD}@example.com/x"
    assert RelaySettings.from_env(env)  # the relay itself keeps running
    code, text = run(["check"], env, tmp_path)
    assert code == 1
    [line] = [line for line in text.splitlines() if line.startswith("error")]
    assert re.match(rf"error +{name} +the URL holds a user name or password", line)
    assert PASSWORD not in text and "ops:" not in text


# --- team secret names that name one target twice ---


def secrets_of(env: dict[str, str]) -> dict[str, str]:
    settings = RelaySettings.from_env(env)
    return {name: value.get_secret_value() for name, value in settings.signl4_team_secrets.items()}


CLASHES = {
    # (environment, the winner for target `network`, the setting named, words of the message)
    "json names differing in case": (
        {"SIGNL4_TEAM_SECRETS": '{"Network": "first-s3cret", "network": "later-s3cret"}'},
        "later-s3cret",
        "SIGNL4_TEAM_SECRETS",
        "the names 'Network' and 'network' name the same target",
    ),
    "json name twice": (
        {"SIGNL4_TEAM_SECRETS": '{"network": "first-s3cret", "network": "later-s3cret"}'},
        "later-s3cret",
        "SIGNL4_TEAM_SECRETS",
        "the names 'network' and 'network' name the same target",
    ),
    "json name and own setting": (
        {
            "SIGNL4_TEAM_SECRETS": '{"network": "json-s3cret"}',
            "SIGNL4_TEAM_SECRET_NETWORK": "own-s3cret",
        },
        "own-s3cret",
        "SIGNL4_TEAM_SECRETS",
        "the name 'network' names the same target as the setting SIGNL4_TEAM_SECRET_NETWORK",
    ),
    "own settings differing in case": (
        {
            "SIGNL4_TEAM_SECRET_NETWORK": "upper-s3cret",
            "SIGNL4_TEAM_SECRET_network": "lower-s3cret",
        },
        "lower-s3cret",
        "SIGNL4_TEAM_SECRET_network",
        "names the same target as SIGNL4_TEAM_SECRET_NETWORK",
    ),
}


@pytest.mark.parametrize("case", sorted(CLASHES))
def test_one_target_named_twice_keeps_todays_winner_and_fails_check(
    case: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env, winner, setting, says = CLASHES[case]
    env = {**env, "RELAY_ROUTES": '[{"name": "net", "target": "network"}]'}
    assert secrets_of(env)["network"] == winner
    [line] = notice_lines(caplog)
    assert line.startswith(f"settings: {setting}: ") and says in line
    code, text = run(["check"], env, tmp_path)
    assert code == 1
    [error] = [line for line in text.splitlines() if line.startswith("error")]
    assert setting in error and says in error
    assert "s3cret" not in text + line


def test_distinct_names_are_no_notice() -> None:
    env = {
        "SIGNL4_TEAM_SECRETS": '{"network": "a-s3cret", "db": "b-s3cret", "blank": " "}',
        "SIGNL4_TEAM_SECRET_SERVERS": "c-s3cret",
        "SIGNL4_TEAM_SECRET_BLANK": "d-s3cret",  # the JSON entry is blank: no secret to clash
        "HALO_BASE_URL": "https://contoso.halopsa.com/path@x",
    }
    assert setting_notices(env) == []


def test_the_start_up_warning_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    env = {"HALO_BASE_URL": HALO_WITH_USERINFO, "SIGNL4_TEAM_SECRET": TEAM_SECRET}
    describe_mode(env)  # serve's banner reads the settings first
    secret_values(env)
    for _ in range(3):
        handle_health_request(env)
    assert len(notice_lines(caplog)) == 1


NOTICES = {
    # SIGNL4_TEAM_SECRETS as written -> the whole notices (name repeats only; values never show)
    "blank setting": ("  ", []),
    "unreadable": ('{"a": "x", "a": ', []),
    "not an object": ('[["a", "x"], ["a", "y"]]', []),
    "non-text and blank values hold no secret": ('{"a": 1, "A": null, "a": " ", "A": "x"}', []),
    "later repeat named": (
        '{"a": "x", "b": "y", "B": "z"}',
        [
            (
                "SIGNL4_TEAM_SECRETS",
                "the names 'b' and 'B' name the same target (names are case-insensitive): "
                "remove one; the later one wins",
            )
        ],
    ),
    "three of one target: each repeat against the one before": (
        '{"n": "1", "N": "2", "n": "3"}',
        [
            (
                "SIGNL4_TEAM_SECRETS",
                "the names 'n' and 'N' name the same target (names are case-insensitive): "
                "remove one; the later one wins",
            ),
            (
                "SIGNL4_TEAM_SECRETS",
                "the names 'N' and 'n' name the same target (names are case-insensitive): "
                "remove one; the later one wins",
            ),
        ],
    ),
    "a long name is cut at 40 characters": (
        json.dumps({"x" * 41: "1", "X" * 41: "2"}),
        [
            (
                "SIGNL4_TEAM_SECRETS",
                f"the names {'x' * 40 + '...'!r} and {'X' * 40 + '...'!r} name the same target "
                "(names are case-insensitive): remove one; the later one wins",
            )
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(NOTICES))
def test_team_secret_notices_word_for_word(case: str) -> None:
    value, expected = NOTICES[case]
    assert setting_notices({"SIGNL4_TEAM_SECRETS": value}) == expected


def test_a_name_of_40_characters_is_shown_whole_and_the_own_setting_named() -> None:
    name = "n" * 40
    env = {"SIGNL4_TEAM_SECRETS": json.dumps({name: "1"}), f"SIGNL4_TEAM_SECRET_{name}": "2"}
    assert setting_notices(env) == [
        (
            "SIGNL4_TEAM_SECRETS",
            f"the name {name!r} names the same target as the setting "
            f"SIGNL4_TEAM_SECRET_{name}: remove one; SIGNL4_TEAM_SECRET_{name} wins",
        )
    ]
