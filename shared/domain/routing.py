"""Routing (pure): which SIGNL4 team a ticket's alert goes to, with which category, and whether
a quiet-hours schedule or a maintenance window holds its page back right now.

`RELAY_ROUTES` is a JSON array of rules (`Rule` shows one), validated at start-up
(shared/settings.py reads it). Error messages name the rule (index and name) and the key, never
a value that may be a secret. No I/O, no clock: `now` is always an argument.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from functools import cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from shared.setting_json import read_json_setting

SETTING = "RELAY_ROUTES"
DEFAULT_TARGET = "default"
DEFAULT_ROUTE = "default"
TEAM_SECRET_PREFIX = "SIGNL4_TEAM_SECRET_"
TARGET_PATTERN = re.compile(r"[A-Za-z0-9_]{1,64}")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_RULES = 100
# The longest IANA name is 32 characters (America/Argentina/ComodRivadavia): twice that is room.
MAX_ZONE_CHARS = 64

Scenario = Literal["single_ack", "multi_ack", "emergency"]


def secret_setting(target: str) -> str:
    """The app setting holding `target`'s SIGNL4 team secret."""
    return TEAM_SECRET_PREFIX + target.upper()


def _keys(values: list[str | int]) -> frozenset[str]:
    return frozenset(str(value).strip().casefold() for value in values)


class Match(BaseModel):
    """The `when` of a rule: each key present is a list of ids or names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client: tuple[str | int, ...] | None = None
    site: tuple[str | int, ...] | None = None
    team: tuple[str | int, ...] | None = None
    priority: tuple[str | int, ...] | None = None
    type: tuple[str | int, ...] | None = None

    # Before the type: pydantic reads `true` as the id 1, and a rule for team 1 is not what
    # `[true]` meant. Anything but a list is left to the type's "must be a JSON array".
    @field_validator("client", "site", "team", "priority", "type", mode="before")
    @classmethod
    def _not_empty(cls, values: Any) -> Any:
        if not isinstance(values, list | tuple):
            return values
        if not values or any(isinstance(v, bool) or not str(v).strip() for v in values):
            raise ValueError("must be a non-empty list of ids or names")
        return values


class QuietHours(BaseModel):
    """One weekly period: starts on each of `days` at `from` (zone time), ends at `until`."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = Field(min_length=1)
    start: time = Field(alias="from")
    end: str = Field(alias="until")  # HH:MM, or 24:00

    @field_validator("end")
    @classmethod
    def _end(cls, value: str) -> str:
        if value == "24:00":
            return value
        try:
            time.fromisoformat(value)
        except ValueError:
            raise ValueError("must be a time HH:MM (or 24:00)") from None
        return value

    @property
    def end_time(self) -> time | None:
        """None: midnight at the end of the day (24:00)."""
        return None if self.end == "24:00" else time.fromisoformat(self.end)

    def covers(self, local: datetime) -> bool:
        """Whether the wall-clock time `local` (in the schedule's zone) is inside."""
        day, now = DAYS[local.weekday()], local.time().replace(tzinfo=None)
        yesterday = DAYS[(local.weekday() - 1) % 7]
        end = self.end_time
        if end is None:
            return day in self.days and now >= self.start
        if end > self.start:
            return day in self.days and self.start <= now < end
        # Crosses midnight: from `start` on a listed day into the next day until `end`.
        return (day in self.days and now >= self.start) or (yesterday in self.days and now < end)


class Quiet(BaseModel):
    """A weekly schedule of quiet hours in a named IANA time zone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    zone: str
    hours: tuple[QuietHours, ...] = Field(min_length=1)
    name: str = Field("quiet hours", min_length=1, max_length=100)

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        _zone(value)
        return value

    def active(self, now: datetime) -> bool:
        local = now.astimezone(_zone(self.zone))
        return any(period.covers(local) for period in self.hours)


@cache
def _zone(name: str) -> ZoneInfo:
    """The zone, or ValueError. A name longer than any IANA name is refused before the lookup:
    ZoneInfo reads it as a file path (a long one is an OSError, not a missing zone)."""
    if len(name) > MAX_ZONE_CHARS:
        raise ValueError(
            f"must be an IANA time zone name such as Europe/Berlin (at most {MAX_ZONE_CHARS} "
            "characters)"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError("must be an IANA time zone name such as Europe/Berlin") from None


class Window(BaseModel):
    """A dated maintenance window: [from, until), ISO 8601 instants with an offset."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    start: AwareDatetime = Field(alias="from")
    end: AwareDatetime = Field(alias="until")
    name: str = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end <= self.start:
            raise ValueError("`until` must be after `from`")
        return self

    def active(self, now: datetime) -> bool:
        return self.start <= now < self.end


class Rule(BaseModel):
    """One route of RELAY_ROUTES, e.g.

        {"name": "network", "when": {"team": ["Network", 7]}, "target": "network",
         "service": "Network", "scenario": "multi_ack", "filtering": true,
         "quiet": {"zone": "Europe/Berlin", "hours": [{"days": ["sat", "sun"],
                                                      "from": "00:00", "until": "24:00"}]},
         "windows": [{"from": "2026-12-01T22:00:00+01:00", "until": "2026-12-02T02:00:00+01:00",
                      "name": "core switch upgrade"}],
         "page_after_window": true}

    - `when` matches any of client, site, team, priority, type (ticket type); each a list of ids
      or names, case-insensitive; every key present must match. An empty `when` matches all.
    - First match wins; no match is the route `default` (target `default`, SIGNL4_TEAM_SECRET).
    - `target` is `default` or a name whose secret is the setting SIGNL4_TEAM_SECRET_<NAME>.
    - Quiet hours are wall-clock times in the named IANA zone (so they follow its DST changes);
      `until` at or before `from` crosses midnight, into the next day. Dated windows are
      ISO 8601 instants with an offset. A window holds back `new`, never acknowledge or resolve.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    when: Match = Field(default_factory=Match)
    target: str = DEFAULT_TARGET
    service: str | None = Field(None, min_length=1, max_length=100)
    scenario: Scenario | None = None
    filtering: bool | None = None
    quiet: Quiet | None = None
    windows: tuple[Window, ...] = ()
    page_after_window: bool = False

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        if not TARGET_PATTERN.fullmatch(value):
            raise ValueError(
                "must be `default` or a name of letters, digits and _ (its secret is the "
                "setting SIGNL4_TEAM_SECRET_<NAME>)"
            )
        return DEFAULT_TARGET if value.casefold() == DEFAULT_TARGET else value.casefold()

    def matches(self, ticket: Any) -> bool:
        """Every key of `when` present matches the ticket (by id or by name)."""
        when = self.when
        checks = (
            (when.client, getattr(ticket, "client_id", None), ticket.client),
            (when.site, getattr(ticket, "site_id", None), ticket.site),
            (when.team, ticket.team_id, ticket.team),
            (when.priority, ticket.priority_id, ticket.priority),
            (when.type, getattr(ticket, "ticket_type_id", None), ticket.ticket_type),
        )
        for wanted, number, name in checks:
            if wanted is None:
                continue
            have = {name.strip().casefold()} if name and name.strip() else set()
            if number is not None:
                have.add(str(number))
            if not have & _keys(list(wanted)):
                return False
        return True

    def window_at(self, now: datetime) -> str | None:
        """The name of the window holding pages back at `now` (dated windows first), or None."""
        for window in self.windows:
            if window.active(now):
                return window.name
        if self.quiet is not None and self.quiet.active(now):
            return self.quiet.name
        return None

    def headers(self) -> dict[str, str]:
        """The rule's SIGNL4 control fields for the payload."""
        fields: dict[str, str] = {}
        if self.service:
            fields["X-S4-Service"] = self.service
        if self.scenario:
            fields["X-S4-AlertingScenario"] = self.scenario
        if self.filtering is not None:
            fields["X-S4-Filtering"] = "true" if self.filtering else "false"
        return fields


DEFAULT_RULE = Rule(name=DEFAULT_ROUTE)


class Routes(BaseModel):
    """The parsed RELAY_ROUTES (empty: every ticket takes the route `default`)."""

    model_config = ConfigDict(frozen=True)

    rules: tuple[Rule, ...] = ()

    def route(self, ticket: Any) -> Rule:
        """The first rule that matches, else the route `default`."""
        return next((rule for rule in self.rules if rule.matches(ticket)), DEFAULT_RULE)

    def named(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)

    def fields_matched(self) -> frozenset[str]:
        """The ticket fields some rule matches on (client, site, team, priority, type): what a
        payload must carry, or the ticket must be read for, to be routed as the rules say."""
        return frozenset(
            name
            for rule in self.rules
            for name in Match.model_fields
            if getattr(rule.when, name) is not None
        )

    def targets(self) -> list[tuple[int, Rule]]:
        """(index, rule) of every rule with a named target (one needing its own secret)."""
        return [(i, rule) for i, rule in enumerate(self.rules) if rule.target != DEFAULT_TARGET]

    @property
    def holds_back_pages(self) -> bool:
        """Some rule pages after its window ends (the timer has work to look for)."""
        return any(rule.page_after_window for rule in self.rules)


NO_ROUTES = Routes()


def parse_routes(value: Any) -> Routes:
    """RELAY_ROUTES (JSON text, or already a list) -> Routes. Raises ValueError whose message
    names the rule (index and name) and the key; never a value."""
    if isinstance(value, Routes):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        return NO_ROUTES
    if isinstance(value, str):
        value = read_json_setting(value)  # bounded: size and depth (ValueError names neither)
    if not isinstance(value, list):
        raise ValueError("must be a JSON array of rules")
    if len(value) > MAX_RULES:
        raise ValueError(f"holds {len(value)} rules; at most {MAX_RULES}")
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(value):
        label = describe_rule(index, raw)
        if not isinstance(raw, dict):
            raise ValueError(f"{label}: must be a JSON object")
        try:
            rule = Rule.model_validate(raw)
        except ValidationError as exc:
            error = exc.errors(include_input=False, include_url=False)[0]
            key = ".".join(str(part) for part in error["loc"]) or "(the rule)"
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "is not a known key"
            elif error["type"] == "tuple_type":
                message = "must be a JSON array"
            raise ValueError(f"{label}, key {key}: {message}") from None
        folded = rule.name.casefold()
        if folded in seen:
            raise ValueError(f"{label}, key name: the name is taken by rule [{seen[folded]}]")
        seen[folded] = index
        rules.append(rule)
    return Routes(rules=tuple(rules))


def with_route(payload: dict[str, Any], rule: Rule) -> dict[str, Any]:
    """The payload with the rule's SIGNL4 control fields (X-S4-Service, X-S4-AlertingScenario,
    X-S4-Filtering). RELAY_EMERGENCY_PRIORITIES' `emergency` is never downgraded by a rule."""
    fields = rule.headers()
    if not fields:
        return payload
    routed = dict(payload)
    for key, value in fields.items():
        if key == "X-S4-AlertingScenario" and key in routed:
            continue
        routed[key] = value
    return routed


def describe_rule(index: int, raw: Any) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    if isinstance(name, str) and name.strip():
        shown = name if len(name) <= 60 else name[:60] + "..."
        return f"rule [{index}] ({shown!r})"
    return f"rule [{index}]"


def missing_secrets(routes: Routes, secrets: set[str]) -> str | None:
    """The message for the first rule whose target has no secret among `secrets` (the
    targets' names, case-folded), or None when every target has one."""
    for index, rule in routes.targets():
        if rule.target not in secrets:
            return (
                f"{SETTING}: {describe_rule(index, {'name': rule.name})}, key target: "
                f"target {rule.target!r} has no secret: set {secret_setting(rule.target)}"
            )
    return None


__all__ = [
    "DEFAULT_RULE",
    "DEFAULT_TARGET",
    "NO_ROUTES",
    "Quiet",
    "QuietHours",
    "Routes",
    "Rule",
    "Window",
    "missing_secrets",
    "parse_routes",
    "secret_setting",
    "with_route",
]
