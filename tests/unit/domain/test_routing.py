"""Routing's pure core (shared/domain/routing.py) and its configuration: every matcher, precedence, the
window edges (a DST change in the zone, windows that cross midnight), validation naming
RELAY_ROUTES, the rule and the key (never a secret), and the shell's answers to a bad rule set:
/api/health 503 configuration_error, every event the same error."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

import pytest

from shared.domain.halo import Ticket
from shared.domain.routing import (
    DEFAULT_ROUTE,
    NO_ROUTES,
    Routes,
    Rule,
    parse_routes,
    secret_setting,
    with_route,
)
from shared.entry.bootstrap import secret_values
from shared.entry.halo_webhook import handle_halo_request
from shared.entry.health import handle_health_request
from shared.ops import preview
from shared.ops.check import check_settings
from shared.settings import RelaySettings, SettingsError
from tests.conftest import Signl4Fake, answer, call_halopsa, http_post, new_ticket_id
from tests.suites.delivery import webhook

UTC = timezone.utc
SECRET = "do-not-leak-9b7e1c"


def ticket(**fields: Any) -> Ticket:
    return Ticket(id=1, **fields)


def rule(when: dict[str, Any], **extra: Any) -> Rule:
    return Rule.model_validate({"name": "r", "when": when, **extra})


# --- matchers: each key by id and by name, case-insensitive; all present keys must match ---

MATCHES = [
    # (when, ticket fields, matches)
    ({"client": ["Contoso"]}, {"client": "contoso"}, True),
    ({"client": [12]}, {"client_id": 12, "client": "Contoso"}, True),
    ({"client": ["12"]}, {"client_id": 12}, True),
    ({"client": ["Fabrikam"]}, {"client": "Contoso", "client_id": 12}, False),
    ({"client": ["Contoso"]}, {}, False),  # unknown client: a rule that needs one does not match
    ({"site": ["HQ "]}, {"site": "hq"}, True),
    ({"site": [3]}, {"site_id": 4, "site": "HQ"}, False),
    ({"site": [3]}, {"site_id": 3, "site": "HQ"}, True),
    ({"team": ["NETWORK"]}, {"team": "Network"}, True),
    ({"team": [7]}, {"team_id": 7}, True),
    ({"team": [7]}, {"team_id": 8, "team": "7x"}, False),
    ({"priority": ["P1", 1]}, {"priority_id": 1}, True),
    ({"priority": ["p1"]}, {"priority": "P1"}, True),
    ({"priority": [2]}, {"priority_id": 1, "priority": "P1"}, False),
    ({"type": ["Incident"]}, {"ticket_type": "incident"}, True),
    ({"type": [5]}, {"ticket_type_id": 5}, True),
    ({"type": ["Incident"]}, {"ticket_type": "Request"}, False),
    # every key present must match
    ({"team": ["Network"], "priority": [1]}, {"team": "Network", "priority_id": 1}, True),
    ({"team": ["Network"], "priority": [1]}, {"team": "Network", "priority_id": 2}, False),
    ({"team": ["Network"], "client": ["A"]}, {"team": "Servers", "client": "A"}, False),
    ({}, {}, True),  # an empty `when` matches everything
]


@pytest.mark.parametrize(("when", "fields", "expected"), MATCHES)
def test_every_matcher(when: dict[str, Any], fields: dict[str, Any], expected: bool) -> None:
    assert rule(when).matches(ticket(**fields)) is expected


def test_first_match_wins_and_no_match_is_the_default_route() -> None:
    routes = parse_routes(
        json.dumps(
            [
                {"name": "key-client", "when": {"client": ["Contoso"]}, "target": "contoso"},
                {"name": "network", "when": {"team": ["Network"]}, "target": "network"},
                {"name": "network-p1", "when": {"team": ["Network"], "priority": [1]}},
            ]
        )
    )
    both = ticket(client="Contoso", team="Network", priority_id=1)
    assert routes.route(both).name == "key-client"
    assert routes.route(ticket(team="Network", priority_id=1)).name == "network"  # not -p1
    fallback = routes.route(ticket(team="Servers"))
    assert (fallback.name, fallback.target) == (DEFAULT_ROUTE, "default")
    assert Routes().route(both).name == DEFAULT_ROUTE


# --- windows: weekly quiet hours in a zone, dated windows ---

BERLIN_NIGHTS = {
    "zone": "Europe/Berlin",
    "hours": [{"days": ["sat"], "from": "22:00", "until": "06:00"}],
    "name": "nights",
}

WINDOW_EDGES = [
    # (quiet, instant (UTC), held)
    # Crossing midnight: from Saturday 22:00 into Sunday 06:00 (CET = UTC+1 in January).
    (BERLIN_NIGHTS, "2026-01-10T20:59:59Z", False),  # Sat 21:59:59
    (BERLIN_NIGHTS, "2026-01-10T21:00:00Z", True),  # Sat 22:00 (from: inclusive)
    (BERLIN_NIGHTS, "2026-01-11T04:59:59Z", True),  # Sun 05:59:59
    (BERLIN_NIGHTS, "2026-01-11T05:00:00Z", False),  # Sun 06:00 (until: exclusive)
    (BERLIN_NIGHTS, "2026-01-11T21:30:00Z", False),  # Sun 22:30: Sunday is not listed
    (BERLIN_NIGHTS, "2026-01-10T01:00:00Z", False),  # Sat 02:00: Friday night is not listed
    # DST starts in Berlin on Sunday 2026-03-29 at 02:00 (CET -> CEST): the night ends at 06:00
    # wall-clock, which is 04:00 UTC that day, not 05:00.
    (BERLIN_NIGHTS, "2026-03-29T03:59:59Z", True),  # 05:59:59 CEST
    (BERLIN_NIGHTS, "2026-03-29T04:00:00Z", False),  # 06:00 CEST
    (BERLIN_NIGHTS, "2026-03-28T21:00:00Z", True),  # Sat 22:00 CET
    # DST ends on Sunday 2026-10-25 at 03:00 (CEST -> CET): starts 22:00 CEST = 20:00 UTC, and
    # ends 06:00 CET = 05:00 UTC: the night is an hour longer.
    (BERLIN_NIGHTS, "2026-10-24T19:59:59Z", False),
    (BERLIN_NIGHTS, "2026-10-24T20:00:00Z", True),
    (BERLIN_NIGHTS, "2026-10-25T00:30:00Z", True),  # 02:30 CEST, the first time
    (BERLIN_NIGHTS, "2026-10-25T01:30:00Z", True),  # 02:30 CET, the second time
    (BERLIN_NIGHTS, "2026-10-25T04:59:59Z", True),
    (BERLIN_NIGHTS, "2026-10-25T05:00:00Z", False),
    # A whole day, until 24:00, in New York (UTC-5 in January).
    (
        {
            "zone": "America/New_York",
            "hours": [{"days": ["sun"], "from": "00:00", "until": "24:00"}],
        },
        "2026-01-11T04:59:59Z",  # Sat 23:59:59
        False,
    ),
    (
        {
            "zone": "America/New_York",
            "hours": [{"days": ["sun"], "from": "00:00", "until": "24:00"}],
        },
        "2026-01-11T05:00:00Z",  # Sun 00:00
        True,
    ),
    (
        {
            "zone": "America/New_York",
            "hours": [{"days": ["sun"], "from": "00:00", "until": "24:00"}],
        },
        "2026-01-12T04:59:59Z",  # Sun 23:59:59
        True,
    ),
    # Within one day (no crossing), weekdays only.
    (
        {"zone": "UTC", "hours": [{"days": ["mon", "fri"], "from": "12:00", "until": "13:00"}]},
        "2026-01-16T12:30:00Z",  # Friday
        True,
    ),
    (
        {"zone": "UTC", "hours": [{"days": ["mon", "fri"], "from": "12:00", "until": "13:00"}]},
        "2026-01-15T12:30:00Z",  # Thursday
        False,
    ),
    (
        {"zone": "UTC", "hours": [{"days": ["mon", "fri"], "from": "12:00", "until": "13:00"}]},
        "2026-01-16T12:00:00Z",  # from: inclusive
        True,
    ),
    (
        {"zone": "UTC", "hours": [{"days": ["mon", "fri"], "from": "12:00", "until": "13:00"}]},
        "2026-01-16T13:00:00Z",  # until: exclusive
        False,
    ),
    # Crossing midnight from Sunday into Monday (the week wraps round).
    (
        {"zone": "UTC", "hours": [{"days": ["sun"], "from": "22:00", "until": "06:00"}]},
        "2026-01-12T05:59:59Z",  # Mon 05:59:59
        True,
    ),
    (
        {"zone": "UTC", "hours": [{"days": ["sun"], "from": "22:00", "until": "06:00"}]},
        "2026-01-12T06:00:00Z",  # Mon 06:00
        False,
    ),
    # `until` equal to `from`: a whole 24 hours, into the next day.
    (
        {"zone": "UTC", "hours": [{"days": ["mon"], "from": "12:00", "until": "12:00"}]},
        "2026-01-12T11:59:59Z",  # Mon, before
        False,
    ),
    (
        {"zone": "UTC", "hours": [{"days": ["mon"], "from": "12:00", "until": "12:00"}]},
        "2026-01-12T12:00:00Z",  # Mon 12:00
        True,
    ),
    (
        {"zone": "UTC", "hours": [{"days": ["mon"], "from": "12:00", "until": "12:00"}]},
        "2026-01-13T11:59:59Z",  # Tue 11:59:59
        True,
    ),
    (
        {"zone": "UTC", "hours": [{"days": ["mon"], "from": "12:00", "until": "12:00"}]},
        "2026-01-13T12:00:00Z",  # Tue 12:00
        False,
    ),
]


@pytest.mark.parametrize(("quiet", "instant", "held"), WINDOW_EDGES)
def test_quiet_hours_edges(quiet: dict[str, Any], instant: str, held: bool) -> None:
    now = datetime.fromisoformat(instant)
    expected = quiet.get("name", "quiet hours") if held else None
    assert rule({}, quiet=quiet).window_at(now) == expected


DATED = {"from": "2026-12-01T22:00:00+01:00", "until": "2026-12-02T02:00:00+01:00", "name": "swap"}


@pytest.mark.parametrize(
    ("instant", "held"),
    [
        ("2026-12-01T20:59:59Z", False),
        ("2026-12-01T21:00:00Z", True),  # from: inclusive, whatever the offset it was given in
        ("2026-12-02T00:59:59Z", True),  # across midnight
        ("2026-12-02T01:00:00Z", False),  # until: exclusive
    ],
)
def test_dated_window_edges(instant: str, held: bool) -> None:
    assert rule({}, windows=[DATED]).window_at(datetime.fromisoformat(instant)) == (
        "swap" if held else None
    )


def test_a_dated_window_is_named_before_the_quiet_hours_it_overlaps() -> None:
    both = rule(
        {},
        windows=[DATED],
        quiet={
            "zone": "UTC",
            "hours": [{"days": ["tue", "wed"], "from": "00:00", "until": "24:00"}],
        },
    )
    assert both.window_at(datetime(2026, 12, 1, 21, 30, tzinfo=UTC)) == "swap"
    assert both.window_at(datetime(2026, 12, 2, 3, 0, tzinfo=UTC)) == "quiet hours"


def test_the_rules_fields_become_signl4_control_fields() -> None:
    full = rule({}, service="Network", scenario="single_ack", filtering=False)
    assert full.headers() == {
        "X-S4-Service": "Network",
        "X-S4-AlertingScenario": "single_ack",
        "X-S4-Filtering": "false",
    }
    assert rule({}).headers() == {}
    assert rule({}, filtering=True).headers() == {"X-S4-Filtering": "true"}


def test_a_payloads_scenario_is_kept_and_the_rules_other_fields_still_apply() -> None:
    routed = rule({}, service="Network", scenario="single_ack", filtering=True)
    payload = {"Title": "t", "X-S4-AlertingScenario": "emergency"}
    assert with_route(payload, routed) == {
        "Title": "t",
        "X-S4-AlertingScenario": "emergency",
        "X-S4-Service": "Network",
        "X-S4-Filtering": "true",
    }
    assert with_route({"Title": "t"}, routed)["X-S4-AlertingScenario"] == "single_ack"
    assert payload == {"Title": "t", "X-S4-AlertingScenario": "emergency"}  # not changed


def test_rules_are_found_by_name() -> None:
    routes = parse_routes([{"name": "network"}, {"name": "servers", "target": "servers"}])
    named = routes.named("servers")
    assert named is not None and named.target == "servers"
    assert routes.named("Servers") is None and routes.named("other") is None


# --- validation: RELAY_ROUTES, the rule (index and name) and the key; never a value ---

BAD_RULES = [
    # (rules, words the message must hold)
    ("not json", ["is not valid JSON"]),
    ({"name": "x"}, ["must be a JSON array"]),
    (["x"], ["rule [0]", "must be a JSON object"]),
    ([{"when": {}}], ["rule [0]", "key name"]),
    ([{"name": "a"}, {"name": "b", "when": {"teem": ["x"]}}], ["rule [1] ('b')", "when.teem"]),
    ([{"name": "a", "when": {"team": []}}], ["rule [0] ('a')", "key when.team", "non-empty list"]),
    (
        [{"name": "a", "when": {"team": "Network"}}],
        ["rule [0] ('a')", "key when.team", "must be a JSON array"],
    ),
    ([{"name": "a", "target": "net-work"}], ["rule [0] ('a')", "key target"]),
    ([{"name": "a", "scenario": "everyone"}], ["rule [0] ('a')", "key scenario"]),
    ([{"name": "a", "colour": "red"}], ["rule [0] ('a')", "key colour", "not a known key"]),
    (
        [
            {
                "name": "a",
                "quiet": {
                    "zone": "Mars/Olympus",
                    "hours": [{"days": ["mon"], "from": "1:00", "until": "2:00"}],
                },
            }
        ],
        ["rule [0] ('a')", "key quiet.zone", "IANA"],
    ),
    (
        [
            {
                "name": "a",
                "quiet": {
                    "zone": "UTC",
                    "hours": [{"days": ["someday"], "from": "01:00", "until": "02:00"}],
                },
            }
        ],
        ["rule [0] ('a')", "key quiet.hours.0.days.0"],
    ),
    (
        [
            {
                "name": "a",
                "quiet": {
                    "zone": "UTC",
                    "hours": [{"days": ["mon"], "from": "01:00", "until": "25:00"}],
                },
            }
        ],
        ["rule [0] ('a')", "key quiet.hours.0.until"],
    ),
    (
        [
            {
                "name": "a",
                "windows": [
                    {"from": "2026-01-02T00:00:00", "until": "2026-01-03T00:00:00Z", "name": "w"}
                ],
            }
        ],
        ["rule [0] ('a')", "key windows.0.from"],  # no offset: ambiguous, refused
    ),
    (
        [
            {
                "name": "a",
                "windows": [
                    {"from": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z", "name": "w"}
                ],
            }
        ],
        ["rule [0] ('a')", "key windows.0", "until"],
    ),
    ([{"name": "a"}, {"name": "A"}], ["rule [1] ('A')", "key name", "taken by rule [0]"]),
]


@pytest.mark.parametrize(("rules", "words"), BAD_RULES)
def test_bad_rules_are_named_not_guessed(rules: Any, words: list[str]) -> None:
    text = rules if isinstance(rules, str) else json.dumps(rules)
    with pytest.raises(SettingsError) as caught:
        RelaySettings.from_env({"RELAY_ROUTES": text})
    message = str(caught.value)
    assert message.startswith("invalid setting RELAY_ROUTES: ")
    for word in words:
        assert word in message, message


def test_a_target_without_its_secret_is_an_error_that_names_the_setting() -> None:
    rules = json.dumps([{"name": "net", "target": "Network"}])
    with pytest.raises(SettingsError) as caught:
        RelaySettings.from_env({"RELAY_ROUTES": rules, "SIGNL4_TEAM_SECRET_OTHER": SECRET})
    assert str(caught.value) == (
        "invalid setting RELAY_ROUTES: rule [0] ('net'), key target: target 'network' has no "
        "secret: set SIGNL4_TEAM_SECRET_NETWORK"
    )
    settings = RelaySettings.from_env({"RELAY_ROUTES": rules, "SIGNL4_TEAM_SECRET_NETWORK": SECRET})
    assert settings.for_target("network").signl4_team_secret is not None
    assert settings.for_target("network").signl4_team_secret.get_secret_value() == SECRET
    assert settings.for_target("default") is settings
    assert secret_setting("network") == "SIGNL4_TEAM_SECRET_NETWORK"
    assert SECRET not in repr(settings)


def test_no_message_repeats_a_value() -> None:
    """A rule's values (ids, names, the zone) are not secrets, but the messages are kept to
    names and keys all the same: a secret pasted into the wrong place stays out."""
    for rules in (
        [{"name": "a", "target": SECRET}],
        [{"name": "a", "quiet": {"zone": SECRET, "hours": []}}],
        [{"name": "a", "scenario": SECRET}],
        [{"name": "a", "when": {"team": [SECRET], "site": SECRET}}],
    ):
        with pytest.raises(SettingsError) as caught:
            RelaySettings.from_env({"RELAY_ROUTES": json.dumps(rules)})
        assert SECRET not in str(caught.value)


# The whole message parse_routes raises (RelaySettings puts "invalid setting RELAY_ROUTES: "
# before it): what an operator reads in /api/health, every event's answer and `check`.
NAMED_61 = "n" * 61
EXACT_MESSAGES = [
    ("[\n  {name: 1}]", "is not valid JSON (line 2, column 4)"),
    ("{", "is not valid JSON (line 1, column 2)"),
    ("null", "must be a JSON array of rules"),
    ({"name": "a"}, "must be a JSON array of rules"),
    ([{"name": f"r{i}"} for i in range(101)], "holds 101 rules; at most 100"),
    ([{"name": "a", "colour": "red"}], "rule [0] ('a'), key colour: is not a known key"),
    ([{"name": "a", "when": {"team": "x"}}], "rule [0] ('a'), key when.team: must be a JSON array"),
    (
        [{"name": "a", "when": {"priority": [True]}}],  # not the priority id 1
        "rule [0] ('a'), key when.priority: must be a non-empty list of ids or names",
    ),
    (
        [{"name": "a", "when": {"site": ["HQ", " "]}}],
        "rule [0] ('a'), key when.site: must be a non-empty list of ids or names",
    ),
    (
        [{"name": "a", "quiet": {"zone": "Mars/Olympus", "hours": []}}],
        "rule [0] ('a'), key quiet.zone: must be an IANA time zone name such as Europe/Berlin",
    ),
    (
        [
            {
                "name": "a",
                "quiet": {
                    "zone": "UTC",
                    "hours": [{"days": ["mon"], "from": "01:00", "until": "1am"}],
                },
            }
        ],
        "rule [0] ('a'), key quiet.hours.0.until: must be a time HH:MM (or 24:00)",
    ),
    (
        [
            {
                "name": "a",
                "windows": [
                    {
                        "from": "2026-01-02T00:00:00Z",
                        "until": "2026-01-02T01:00:00+01:00",
                        "name": "w",
                    }
                ],
            }
        ],
        "rule [0] ('a'), key windows.0: `until` must be after `from`",  # the same instant
    ),
    (
        [{"name": "n" * 60, "target": "x-y"}],
        f"rule [0] ({'n' * 60!r}), key target: must be `default` or a name of letters, digits "
        "and _ (its secret is the setting SIGNL4_TEAM_SECRET_<NAME>)",
    ),
    (
        [{"name": NAMED_61, "scenario": "all"}],
        f"rule [0] ({'n' * 60 + '...'!r}), key scenario: "
        "Input should be 'single_ack', 'multi_ack' or 'emergency'",
    ),
    ([{"name": 5}], "rule [0], key name: Input should be a valid string"),
    ([{"name": " "}, {"name": " "}], "rule [1], key name: the name is taken by rule [0]"),
]


@pytest.mark.parametrize(("rules", "message"), EXACT_MESSAGES)
def test_the_whole_message_of_each_refusal(rules: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_routes(rules)
    assert str(caught.value) == message


def test_no_rules_and_the_most_rules() -> None:
    assert parse_routes(None) is NO_ROUTES
    assert parse_routes("  \n") is NO_ROUTES
    assert parse_routes("[]") == NO_ROUTES
    hundred = parse_routes([{"name": f"r{i}"} for i in range(100)])
    assert len(hundred.rules) == 100 and parse_routes(hundred) is hundred


def test_targets_are_case_folded_and_default_is_the_default_team() -> None:
    routes = parse_routes(
        [
            {"name": "a", "target": "Network_2"},
            {"name": "b", "target": "DEFAULT"},
            {"name": "c", "target": "n" * 64},
        ]
    )
    assert [r.target for r in routes.rules] == ["network_2", "default", "n" * 64]
    assert [(i, r.name) for i, r in routes.targets()] == [(0, "a"), (2, "c")]
    with pytest.raises(ValueError, match="key target"):
        parse_routes([{"name": "d", "target": "n" * 65}])


# --- the shell: health, events, check, preview, the log line, the dry-run answer ---

BROKEN = json.dumps([{"name": "ok"}, {"name": "servers", "when": {"priority": "P1"}}])


def test_health_answers_503_naming_the_setting_rule_and_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RELAY_ROUTES", BROKEN)
    response = handle_health_request({"RELAY_ROUTES": BROKEN, "SIGNL4_TEAM_SECRET": SECRET})
    assert response.status_code == 503
    assert response.body["error"] == "configuration_error"
    assert "RELAY_ROUTES" in response.body["message"]
    assert "rule [1] ('servers'), key when.priority" in response.body["message"]
    assert SECRET not in json.dumps(response.body)


def test_every_event_answers_the_same_configuration_error(
    functions: dict, live_env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_ROUTES", BROKEN)
    health = handle_health_request({"RELAY_ROUTES": BROKEN})
    for event in ("new ticket logged", "closed"):
        response, queued = call_halopsa(functions, http_post(webhook(new_ticket_id(), event)))
        status, body = answer(response)
        assert (status, body["error"]) == (500, "configuration_error")
        assert body["message"] == health.body["message"]
        assert queued == []


def test_check_names_the_bad_rule_and_the_missing_secret() -> None:
    findings = check_settings({"RELAY_ROUTES": BROKEN})
    [bad] = [f for f in findings if f.level == "error"]
    assert bad.subject == "RELAY_ROUTES" and "rule [1] ('servers')" in bad.message
    rules = json.dumps([{"name": "net", "target": "network"}])
    findings = check_settings({"RELAY_ROUTES": rules})
    assert any(
        f.level == "error" and "SIGNL4_TEAM_SECRET_NETWORK" in f.message for f in findings
    ), findings
    findings = check_settings({"RELAY_ROUTES": rules, "SIGNL4_TEAM_SECRET_NETWORK": SECRET})
    assert not [f for f in findings if f.level == "error"], findings


ROUTED = json.dumps([{"name": "network", "when": {"team": ["Network"]}, "service": "Network"}])


def test_the_dry_run_answer_and_the_log_line_name_the_route(
    functions: dict, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RELAY_ROUTES", ROUTED)
    tid, other = new_ticket_id(), new_ticket_id()
    caplog.set_level(logging.INFO, logger="shared.relay")
    _, body = answer(
        call_halopsa(functions, http_post(webhook(tid, "new ticket logged", team="Network")))[0]
    )
    assert (body["result"], body["route"], body["payload"]["X-S4-Service"]) == (
        "dry-run",
        "network",
        "Network",
    )
    _, body = answer(call_halopsa(functions, http_post(webhook(other, "new ticket logged")))[0])
    assert body["route"] == "default" and "X-S4-Service" not in body["payload"]
    lines = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("relay externalId=")
    ]
    assert any(
        line.startswith(f"relay externalId=HaloPSA-{tid} ") and line.endswith(" route=network")
        for line in lines
    ), lines
    assert any(
        line.startswith(f"relay externalId=HaloPSA-{other} ") and line.endswith(" route=default")
        for line in lines
    ), lines


def test_an_emergency_priority_is_never_downgraded_by_a_rules_scenario(
    functions: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_EMERGENCY_PRIORITIES", "1")
    monkeypatch.setenv("RELAY_ROUTES", json.dumps([{"name": "all", "scenario": "single_ack"}]))
    _, p1 = answer(
        call_halopsa(
            functions, http_post(webhook(new_ticket_id(), "new ticket logged", priority_id=1))
        )[0]
    )
    _, p3 = answer(
        call_halopsa(
            functions, http_post(webhook(new_ticket_id(), "new ticket logged", priority_id=3))
        )[0]
    )
    assert p1["payload"]["X-S4-AlertingScenario"] == "emergency"
    assert p3["payload"]["X-S4-AlertingScenario"] == "single_ack"


def test_page_filters_apply_before_the_routes(
    functions: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_PAGE_TEAMS", "Servers")
    monkeypatch.setenv("RELAY_ROUTES", ROUTED)
    _, body = answer(
        call_halopsa(
            functions, http_post(webhook(new_ticket_id(), "new ticket logged", team="Network"))
        )[0]
    )
    assert body["result"] == "skipped" and "RELAY_PAGE_TEAMS" in body["reason"]


def test_preview_shows_the_route() -> None:
    settings = RelaySettings.from_env({"RELAY_ROUTES": ROUTED})
    body = json.dumps(webhook(5, "new ticket logged", team="network")).encode()
    shown = preview.preview_body(body, settings)
    [event] = shown.events
    assert event.route == "network" and event.payload is not None
    assert event.payload["X-S4-Service"] == "Network"
    assert "  Route: network" in preview.render_text(shown)


def test_serve_scrubs_the_target_secrets() -> None:
    assert SECRET in secret_values({"SIGNL4_TEAM_SECRET_NETWORK": SECRET})


def test_old_alert_rows_without_a_target_read_as_the_default_team() -> None:
    from shared.adapters.store import Row
    from shared.delivery.ledger import load
    from shared.delivery.schema import STATE_ROW
    from shared.domain.alert import AlertStatus

    old = {STATE_ROW: Row(STATE_ROW, {"Status": "new", "Seq": 1, "DeliveredSeq": 1}, "e1")}
    assert load("HaloPSA-1", old, AlertStatus).target == ""


BIDI = json.dumps(
    [{"name": "net", "when": {"team": ["Network"]}, "service": "Net\u202ework\u200bs\u2066"}]
)


def test_a_routes_own_text_is_cleaned_before_an_inline_send(
    signl4: Signl4Fake, live_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rule's X-S4-Service is added after the payload is built: it is cleaned too, so a bidi
    override in RELAY_ROUTES never reaches SIGNL4 (the stored copy was always cleaned)."""
    monkeypatch.setenv("RELAY_ROUTES", BIDI)
    body = json.dumps(webhook(new_ticket_id(), "new ticket logged", team="Network")).encode()
    response = handle_halo_request(body, {}, {**live_env, "RELAY_ROUTES": BIDI})
    assert (response.status_code, response.body["result"]) == (200, "sent"), response.body
    (sent,) = signl4.events
    assert sent["X-S4-Service"] == "Networks"
    shown = preview.preview_body(body, RelaySettings.from_env({"RELAY_ROUTES": BIDI}))
    assert shown.events[0].payload is not None
    assert shown.events[0].payload["X-S4-Service"] == "Networks"
