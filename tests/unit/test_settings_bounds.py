"""Settings never crash (issue 18 item 6): a setting nested 1,000 deep, a time zone of 256
characters or a JSON setting of megabytes is a configuration_error naming the setting, on
every route, in `check`, `preview` and the start-up banner; never a traceback or `internal`."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest

from shared.__main__ import main
from shared.domain.routing import MAX_ZONE_CHARS, parse_routes
from shared.entry.bootstrap import describe_mode, secret_values
from shared.entry.halo_webhook import NOT_FOUND, handle_halo_request, handle_webhook_request
from shared.entry.health import handle_health_request
from shared.entry.signl4_webhook import handle_signl4_request
from shared.setting_json import (
    MAX_SETTING_BYTES,
    MAX_SETTING_DEPTH,
    OutOfBounds,
    nesting_depth,
    read_json_setting,
)
from shared.settings import RelaySettings, SettingsError
from tests.conftest import TEAM_SECRET, fixture_bytes

INBOUND_TOKEN = "inbound-T0ken-9c1e"
DEEP_ARRAY = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + '"x"' + "}" * 1000
HOURS = [{"days": ["sat", "sun"], "from": "00:00", "until": "24:00"}]


def quiet_route(zone: str) -> str:
    return json.dumps([{"name": "quiet", "quiet": {"zone": zone, "hours": HOURS}}])


def huge_routes() -> str:
    """A valid RELAY_ROUTES padded past the size limit (whitespace JSON allows anywhere)."""
    return '[{"name": "all"}]' + " " * MAX_SETTING_BYTES


# (setting, value, what the message says): each crashed check, preview, serve and every route
# with a RecursionError or an OSError before.
UNREADABLE = {
    "routes-1000-deep": ("RELAY_ROUTES", DEEP_ARRAY, "more than 20 levels deep"),
    "routes-rule-1000-deep": (
        "RELAY_ROUTES",
        '[{"name": "x", "when": ' + DEEP_OBJECT + "}]",
        "more than 20 levels deep",
    ),
    "secrets-1000-deep": ("SIGNL4_TEAM_SECRETS", DEEP_OBJECT, "more than 20 levels deep"),
    "secrets-array-1000-deep": ("SIGNL4_TEAM_SECRETS", DEEP_ARRAY, "more than 20 levels deep"),
    "zone-256-chars": ("RELAY_ROUTES", quiet_route("A" * 256), "at most 64 characters"),
    "routes-huge": ("RELAY_ROUTES", huge_routes(), "at most 65536"),
    "secrets-huge": (
        "SIGNL4_TEAM_SECRETS",
        json.dumps({"network": "x" * MAX_SETTING_BYTES}),
        "at most 65536",
    ),
}


@pytest.fixture(params=sorted(UNREADABLE))
def unreadable(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    return UNREADABLE[request.param]


def bad_env(setting: str, value: str) -> dict[str, str]:
    return {
        "SIGNL4_TEAM_SECRET": TEAM_SECRET,
        "RELAY_INBOUND_TOKEN": INBOUND_TOKEN,
        "HALO_BASE_URL": "https://contoso.halopsa.com",
        "HALO_CLIENT_ID": "relay",
        "HALO_CLIENT_SECRET": "client-s3cret-77",
        setting: value,
    }


def assert_names_the_setting(message: str, setting: str, value: str, says: str) -> None:
    assert setting in message and says in message
    assert value not in message and "Traceback" not in message


# --- through the HTTP handlers ---


def test_halopsa_answers_a_configuration_error(unreadable: tuple[str, str, str]) -> None:
    setting, value, says = unreadable
    response = handle_halo_request(
        fixture_bytes("guide_new.json"), {}, bad_env(*unreadable[:2])
    )
    assert (response.status_code, response.body["error"]) == (500, "configuration_error")
    assert_names_the_setting(response.body["message"], setting, value, says)


def test_signl4_route_answers_a_configuration_error(unreadable: tuple[str, str, str]) -> None:
    setting, value, says = unreadable
    response = handle_signl4_request(b'{"eventType": 200}', bad_env(setting, value))
    assert (response.status_code, response.body["error"]) == (500, "configuration_error")
    assert_names_the_setting(response.body["message"], setting, value, says)


def test_webhook_route_keeps_its_uniform_404(unreadable: tuple[str, str, str]) -> None:
    setting, value, _ = unreadable
    response = handle_webhook_request(
        INBOUND_TOKEN, fixture_bytes("guide_new.json"), {}, bad_env(setting, value)
    )
    assert (response.status_code, response.body) == (404, NOT_FOUND)


def test_health_is_503_naming_the_setting(unreadable: tuple[str, str, str]) -> None:
    setting, value, says = unreadable
    response = handle_health_request(bad_env(setting, value))
    assert response.status_code == 503
    assert (response.body["status"], response.body["error"]) == (
        "misconfigured",
        "configuration_error",
    )
    assert_names_the_setting(response.body["message"], setting, value, says)


def test_the_start_up_banner_says_what_is_wrong(unreadable: tuple[str, str, str]) -> None:
    setting, value, says = unreadable
    env = bad_env(setting, value)
    banner = describe_mode(env)
    assert banner.startswith("Relay is MISCONFIGURED: ")
    assert_names_the_setting(banner, setting, value, says)
    # serve's access log scrubs what it can read: the plain secret settings.
    assert TEAM_SECRET in secret_values(env)


# --- through the operator commands ---


def run(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    out = io.StringIO()
    return main(argv, environ=env, stdout=out), out.getvalue()


def test_check_exits_1_naming_the_setting(unreadable: tuple[str, str, str]) -> None:
    setting, value, says = unreadable
    code, text = run(["check"], bad_env(setting, value))
    assert code == 1
    errors = [line for line in text.splitlines() if line.startswith("error")]
    assert any(setting in line and says in line for line in errors), text
    assert value not in text and TEAM_SECRET not in text


def test_preview_exits_with_the_message(unreadable: tuple[str, str, str], tmp_path: Any) -> None:
    setting, value, says = unreadable
    body = tmp_path / "body.json"
    body.write_bytes(fixture_bytes("guide_new.json"))
    with pytest.raises(SystemExit) as raised:
        run(
            ["--settings", str(tmp_path / "none.json"), "preview", str(body)],
            bad_env(setting, value),
        )
    message = str(raised.value.code)
    assert message.startswith("error: invalid setting ")
    assert_names_the_setting(message, setting, value, says)


# --- the bounds themselves ---


def test_depth_up_to_the_limit_is_read_one_more_is_refused() -> None:
    deepest = "[" * MAX_SETTING_DEPTH + "]" * MAX_SETTING_DEPTH
    assert nesting_depth(deepest) == MAX_SETTING_DEPTH
    assert read_json_setting(deepest) is not None
    with pytest.raises(OutOfBounds, match="more than 20 levels deep"):
        read_json_setting("[" + deepest + "]")


def test_brackets_inside_strings_are_text_not_nesting() -> None:
    name = '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ \\" {{{{{{{{{{{{{{{{{{{{{{{{{'
    routes = parse_routes('[{"name": "' + name + '"}]')
    assert routes.rules[0].name == name.replace('\\"', '"')


def test_size_up_to_the_limit_is_read_one_byte_more_is_refused() -> None:
    rules = '[{"name": "all"}]'
    exactly = rules + " " * (MAX_SETTING_BYTES - len(rules))
    assert parse_routes(exactly).rules[0].name == "all"
    with pytest.raises(OutOfBounds, match=f"is {MAX_SETTING_BYTES + 1} bytes long"):
        read_json_setting(exactly + " ")
    # Bytes, not characters: 16,385 euro signs are 49,155 bytes... and 21,846 are 65,538.
    with pytest.raises(OutOfBounds):
        read_json_setting('"' + "\u20ac" * 21_846 + '"')


def test_a_number_past_pythons_digit_limit_is_a_settings_error() -> None:
    env = {"RELAY_ROUTES": '[{"name": "x", "when": {"team": [' + "7" * 5000 + "]}}]"}
    with pytest.raises(SettingsError, match="RELAY_ROUTES: is not usable JSON"):
        RelaySettings.from_env(env)


# --- time zones ---


def test_the_longest_iana_name_is_a_zone() -> None:
    zone = "America/Argentina/ComodRivadavia"
    routes = parse_routes(quiet_route(zone))
    assert routes.rules[0].quiet is not None and routes.rules[0].quiet.zone == zone


@pytest.mark.parametrize(
    ("zone", "says"),
    [
        ("A" * 256, "at most 64 characters"),
        ("Europe/" + "B" * (MAX_ZONE_CHARS - 7 + 1), "at most 64 characters"),
        ("Europe/" + "B" * (MAX_ZONE_CHARS - 7), "such as Europe/Berlin"),  # not found
        ("Europe", "such as Europe/Berlin"),  # a folder of tzdata, not a zone
        ("../../../../etc/passwd", "such as Europe/Berlin"),
        ("/etc/localtime", "such as Europe/Berlin"),
        ("Europe/Berlin\x00", "such as Europe/Berlin"),
        ("Mars/Olympus_Mons", "such as Europe/Berlin"),
    ],
)
def test_a_zone_that_is_no_iana_name_is_a_configuration_error(zone: str, says: str) -> None:
    response = handle_health_request({"RELAY_ROUTES": quiet_route(zone)})
    assert (response.status_code, response.body["error"]) == (503, "configuration_error")
    assert "quiet.zone" in response.body["message"] and says in response.body["message"]
    code, text = run(["check"], {"RELAY_ROUTES": quiet_route(zone)})
    assert code == 1 and "quiet.zone" in text


def test_a_library_failing_unforeseen_still_names_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The last guard: an exception no rule expects (here ZoneInfo's) is a configuration
    error naming the setting that raises it, and a check finding; never `internal`."""

    def broken(name: str) -> Any:
        raise RuntimeError("tzdata is broken")

    monkeypatch.setattr("shared.domain.routing.ZoneInfo", broken)
    env = {"RELAY_ROUTES": quiet_route("Europe/Unforeseen"), "SIGNL4_MAX_ATTEMPTS": "2"}
    response = handle_halo_request(fixture_bytes("guide_new.json"), {}, env)
    assert (response.status_code, response.body["error"]) == (500, "configuration_error")
    assert response.body["message"] == (
        "invalid setting RELAY_ROUTES: could not be read (RuntimeError)"
    )
    code, text = run(["check"], env)
    assert code == 1
    assert re.search(r"^error +RELAY_ROUTES +could not be read \(RuntimeError\)$", text, re.M)
