"""Relay settings: read from the environment (Azure app settings, or local.settings.json Values).

Every field's alias is the app setting name. `infra/main.bicep` must provide each one that is
not marked `local_only` (a test over the parsed template enforces it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from shared.domain.routing import (
    NO_ROUTES,
    TEAM_SECRET_PREFIX,
    Routes,
    missing_secrets,
    parse_routes,
)
from shared.redaction import has_userinfo, log_safe
from shared.setting_json import OutOfBounds, read_json_setting

DEFAULT_SIGNL4_WEBHOOK_URL = "https://connect.signl4.com/webhook/"
DEFAULT_RESOLVED_STATUSES = "9,Closed,Resolved,Cancelled"
# 100 events per request: below SIGNL4's throttle (150 events per 15 s), and 100 inline sends at
# SIGNL4's usual fraction of a second stay well inside host.json's functionTimeout (120 s).
DEFAULT_MAX_BATCH = 100
# Halo API scopes for write-back: read and edit tickets (notes are ticket actions).
DEFAULT_HALO_SCOPE = "read:tickets edit:tickets"
# The outcome of the relay's notes, by name ("Private Note" on default tenants).
DEFAULT_HALO_NOTE_OUTCOME = "Private Note"
# The settings that hold a URL: a user name or password in one (user:pass@host) is never shown.
URL_SETTINGS = (
    "SIGNL4_WEBHOOK_URL",
    "HALO_BASE_URL",
    "HALO_AUTH_URL",
    "SIGNL4_HEARTBEAT_URL",
    "RELAY_PUBLIC_URL",
)
TEAM_SECRETS_SETTING = "SIGNL4_TEAM_SECRETS"

logger = logging.getLogger("shared.settings")


class SettingsError(Exception):
    """A setting is present but unusable. The message names the setting, never its value."""


def _parse_list(value: Any) -> frozenset[str]:
    """Comma-separated list -> case-folded set; Halo status ids and names are matched alike."""
    if value is None:
        return frozenset()
    items = value.split(",") if isinstance(value, str) else list(value)
    return frozenset(str(item).strip().casefold() for item in items if str(item).strip())


CaseFoldedSet = Annotated[frozenset[str], BeforeValidator(_parse_list)]

# Plain http is allowed only to this machine: the tests' fake SIGNL4 listens on loopback.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def https_url(value: str) -> str:
    """https://, or http:// to a loopback host. The SIGNL4 URL carries the team secret in its
    path, and a Halo link is opened by on-call staff with a Halo session: neither goes in clear.
    The messages never repeat the value (it may hold the secret)."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        raise ValueError("must be an https:// URL") from None
    if not host or any(char.isspace() for char in value):
        raise ValueError("must be an https:// URL")
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        return value
    raise ValueError("must be an https:// URL (plain http only to 127.0.0.1, localhost or [::1])")


HttpsUrl = Annotated[str, AfterValidator(https_url)]

# Every 5 minutes, on the minute (NCRONTAB: second minute hour day month day-of-week).
DEFAULT_HEARTBEAT_SCHEDULE = "0 */5 * * * *"
_NCRONTAB_FIELD = re.compile(r"[0-9*/,\-A-Za-z]+")


def _ncrontab(value: str) -> str:
    """Six NCRONTAB fields as the Functions timer trigger reads them (a TimeSpan such as
    00:05:00 is for App Service plans only, not Flex Consumption)."""
    fields = value.split()
    if len(fields) != 6 or not all(_NCRONTAB_FIELD.fullmatch(field) for field in fields):
        raise ValueError(
            "must be an NCRONTAB expression of six fields: second minute hour day month "
            "day-of-week (e.g. 0 */5 * * * *)"
        )
    return " ".join(fields)


Ncrontab = Annotated[str, AfterValidator(_ncrontab)]
RouteRules = Annotated[Routes, BeforeValidator(parse_routes)]
# Not an app setting itself: the settings SIGNL4_TEAM_SECRET_<NAME>, one per routing target,
# gathered by name (keys: the target names, case-folded).
DERIVED = {"derived": True}


class RelaySettings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    signl4_team_secret: SecretStr | None = Field(None, alias="SIGNL4_TEAM_SECRET")
    signl4_webhook_url: HttpsUrl = Field(DEFAULT_SIGNL4_WEBHOOK_URL, alias="SIGNL4_WEBHOOK_URL")
    signl4_timeout_seconds: float = Field(4.0, gt=0, le=60, alias="SIGNL4_TIMEOUT_SECONDS")
    signl4_max_attempts: int = Field(3, ge=1, le=10, alias="SIGNL4_MAX_ATTEMPTS")
    signl4_retry_budget_seconds: float = Field(
        10.0, gt=0, le=120, alias="SIGNL4_RETRY_BUDGET_SECONDS"
    )
    signl4_backoff_seconds: float = Field(0.5, ge=0, le=30, alias="SIGNL4_BACKOFF_SECONDS")

    halo_base_url: HttpsUrl | None = Field(None, alias="HALO_BASE_URL")
    halo_webhook_username: str | None = Field(None, alias="HALO_WEBHOOK_USERNAME")
    halo_webhook_password: SecretStr | None = Field(None, alias="HALO_WEBHOOK_PASSWORD")
    # Where Halo calls this relay: its host finds the relay's webhook among Halo's. Unset, the
    # platform's WEBSITE_HOSTNAME (set by Azure) is used.
    relay_public_url: HttpsUrl | None = Field(None, alias="RELAY_PUBLIC_URL")
    website_hostname: str | None = Field(
        None, max_length=253, alias="WEBSITE_HOSTNAME", json_schema_extra={"local_only": True}
    )  # set by the platform, never by the template
    # The credential of POST /api/webhook/{token} (SIGNL4's URL shape); unset: the route is off.
    relay_inbound_token: SecretStr | None = Field(None, alias="RELAY_INBOUND_TOKEN")

    # Two-way sync (SIGNL4 -> Halo write-back): off until the client id and secret are set.
    halo_client_id: str | None = Field(None, alias="HALO_CLIENT_ID")
    halo_client_secret: SecretStr | None = Field(None, alias="HALO_CLIENT_SECRET")
    # Default {HALO_BASE_URL}/auth (or what Halo's /api/authinfo names); the token is at /token.
    halo_auth_url: HttpsUrl | None = Field(None, alias="HALO_AUTH_URL")
    halo_tenant: str | None = Field(None, alias="HALO_TENANT")
    # Least privilege for notes, status and assignment; HALO_ASSIGN_ON_ACK adds read:agents.
    halo_scope: str = Field(DEFAULT_HALO_SCOPE, min_length=1, alias="HALO_SCOPE")
    halo_note_outcome: str = Field(
        DEFAULT_HALO_NOTE_OUTCOME, min_length=1, alias="HALO_NOTE_OUTCOME"
    )
    halo_note_outcome_id: int | None = Field(None, ge=1, alias="HALO_NOTE_OUTCOME_ID")
    halo_ack_status_id: int | None = Field(None, ge=1, alias="HALO_ACK_STATUS_ID")
    halo_close_status_id: int | None = Field(None, ge=1, alias="HALO_CLOSE_STATUS_ID")
    halo_assign_on_ack: bool = Field(False, alias="HALO_ASSIGN_ON_ACK")
    # Halo's own retry policy (shared/adapters/halo.py); unset, each takes its SIGNL4_* value.
    halo_timeout_seconds: float | None = Field(None, gt=0, le=60, alias="HALO_TIMEOUT_SECONDS")
    halo_max_attempts: int | None = Field(None, ge=1, le=10, alias="HALO_MAX_ATTEMPTS")
    halo_retry_budget_seconds: float | None = Field(
        None, gt=0, le=120, alias="HALO_RETRY_BUDGET_SECONDS"
    )
    halo_backoff_seconds: float | None = Field(None, ge=0, le=30, alias="HALO_BACKOFF_SECONDS")

    relay_resolved_statuses: CaseFoldedSet = Field(
        _parse_list(DEFAULT_RESOLVED_STATUSES), alias="RELAY_RESOLVED_STATUSES"
    )
    relay_ack_statuses: CaseFoldedSet = Field(frozenset(), alias="RELAY_ACK_STATUSES")
    # Paging filters: empty means "page for every ticket". They only hold back `new`;
    # acknowledged/resolved always go through so an alert can always be closed.
    relay_page_priorities: CaseFoldedSet = Field(frozenset(), alias="RELAY_PAGE_PRIORITIES")
    relay_page_teams: CaseFoldedSet = Field(frozenset(), alias="RELAY_PAGE_TEAMS")
    relay_emergency_priorities: CaseFoldedSet = Field(
        frozenset(), alias="RELAY_EMERGENCY_PRIORITIES"
    )
    # Halo event names (SLA warnings) that page an open ticket without an open alert, past the
    # paging filters; routing and windows still apply.
    relay_page_on_events: CaseFoldedSet = Field(frozenset(), alias="RELAY_PAGE_ON_EVENTS")
    # A paged ticket whose priority or team changes so the paging filters skip it resolves its
    # alert (issue 22 item 4); off: only a close resolves.
    relay_resolve_on_downgrade: bool = Field(False, alias="RELAY_RESOLVE_ON_DOWNGRADE")
    relay_dry_run: bool = Field(False, alias="RELAY_DRY_RUN")
    # Routing to several SIGNL4 teams (shared/domain/routing.py): rules, each target's secret in
    # SIGNL4_TEAM_SECRET_<NAME>. Unset: every ticket goes to SIGNL4_TEAM_SECRET's team.
    relay_routes: RouteRules = Field(NO_ROUTES, alias="RELAY_ROUTES")
    # The same secrets in one setting, a JSON object {"<name>": "<secret>"}: what the template
    # deploys (one Key Vault secret and reference). SIGNL4_TEAM_SECRET_<NAME> wins over it.
    signl4_team_secrets_json: SecretStr | None = Field(None, alias="SIGNL4_TEAM_SECRETS")
    signl4_team_secrets: dict[str, SecretStr] = Field(
        default_factory=dict, json_schema_extra=DERIVED
    )
    # How long an unfinished send counts as alive (a worker still retrying) rather than dead
    # (crashed). Longer than host.json's functionTimeout, since no invocation outlives it.
    relay_inflight_seconds: float = Field(150.0, gt=0, le=3600, alias="RELAY_INFLIGHT_SECONDS")
    # Most events one request may carry (a Halo batch); a longer array is refused whole, before
    # anything is sent. At most 150: SIGNL4 throttles at 150 events per 15 s, so a bigger batch
    # sent inline would be throttled by SIGNL4 itself.
    relay_max_batch: int = Field(DEFAULT_MAX_BATCH, ge=1, le=150, alias="RELAY_MAX_BATCH")
    # `python -m shared send-test` resolves its test alert after this long (0: at once).
    relay_test_resolve_seconds: float = Field(
        60.0, ge=0, le=3600, alias="RELAY_TEST_RESOLVE_SECONDS"
    )
    # SIGNL4 heartbeat monitoring (Integrations > Gallery > Heartbeat): the URL the heartbeat
    # timer calls while the relay is healthy; unset: no heartbeat. The schedule is NCRONTAB
    # (six fields, seconds first), read by the Functions host from the app setting itself.
    signl4_heartbeat_url: HttpsUrl | None = Field(None, alias="SIGNL4_HEARTBEAT_URL")
    relay_heartbeat_schedule: Ncrontab = Field(
        DEFAULT_HEARTBEAT_SCHEDULE, alias="RELAY_HEARTBEAT_SCHEDULE"
    )

    # Storage for the delivery ledger (and, in the host, the outbox queue). Locally a connection
    # string (Azurite: UseDevelopmentStorage=true); in Azure the managed identity reaches the
    # account by name, so the connection string is never deployed.
    storage_connection: SecretStr | None = Field(
        None, alias="AzureWebJobsStorage", json_schema_extra={"local_only": True}
    )
    storage_account_name: str | None = Field(None, alias="AzureWebJobsStorage__accountName")

    @model_validator(mode="before")
    @classmethod
    def _gather_team_secrets(cls, data: Any) -> Any:
        """SIGNL4_TEAM_SECRET_<NAME> settings -> signl4_team_secrets by target name."""
        if not isinstance(data, Mapping):
            return data
        found = _team_secrets_json(data.get("SIGNL4_TEAM_SECRETS"))
        found |= {
            name[len(TEAM_SECRET_PREFIX) :].casefold(): value
            for name, value in data.items()
            if isinstance(name, str)
            and name.startswith(TEAM_SECRET_PREFIX)
            and isinstance(value, str)
            and value.strip()
        }
        if not found:
            return data
        return {**data, "signl4_team_secrets": found}

    @model_validator(mode="after")
    def _complete(self) -> RelaySettings:
        # A target without its secret would page nobody, or the wrong team: rejected.
        missing = missing_secrets(self.relay_routes, set(self.signl4_team_secrets))
        if missing:
            raise ValueError(missing)
        # Half a credential would silently turn authentication off.
        if bool(self.halo_webhook_username) != bool(self.halo_webhook_password):
            raise ValueError("HALO_WEBHOOK_USERNAME and HALO_WEBHOOK_PASSWORD must be set together")
        # Half a Halo API credential would silently leave two-way sync off.
        if bool(self.halo_client_id) != bool(self.halo_client_secret):
            raise ValueError(
                "HALO_CLIENT_ID and HALO_CLIENT_SECRET must be set together (two-way sync)"
            )
        if self.halo_client_id and not self.halo_base_url:
            raise ValueError(
                "HALO_BASE_URL is required when HALO_CLIENT_ID and HALO_CLIENT_SECRET are set "
                "(two-way sync writes to {HALO_BASE_URL}/api)"
            )
        return self

    @property
    def two_way(self) -> bool:
        """SIGNL4 -> Halo write-back is on: the Halo API client credentials are set."""
        return bool(self.halo_client_id and self.halo_client_secret and self.halo_base_url)

    @property
    def relay_host(self) -> str | None:
        """The host Halo's webhook for this relay is aimed at (lower case), if known."""
        if self.relay_public_url:
            return (urlsplit(self.relay_public_url).hostname or "").lower() or None
        host = (self.website_hostname or "").strip().lower()
        return host or None

    @property
    def halo_token_scope(self) -> str:
        """The scope asked for: HALO_SCOPE, plus read:agents when assignment needs the lookup."""
        scopes = self.halo_scope.split()
        if self.halo_assign_on_ack and self.halo_scope == DEFAULT_HALO_SCOPE:
            scopes.append("read:agents")
        return " ".join(scopes)

    @property
    def dry_run(self) -> bool:
        """No secret means nothing can be sent: build the payload and say so."""
        return self.relay_dry_run or self.signl4_team_secret is None

    def for_target(self, target: str) -> RelaySettings:
        """These settings, sending to routing target `target` (`default`: SIGNL4_TEAM_SECRET).
        Raises SettingsError (naming the setting, never a value) when its secret is not set."""
        from shared.domain.routing import DEFAULT_TARGET, secret_setting

        if not target or target == DEFAULT_TARGET:
            return self
        secret = self.signl4_team_secrets.get(target.casefold())
        if secret is None:
            raise SettingsError(
                f"invalid setting {secret_setting(target)}: not set, but the alert of this "
                f"ticket went to routing target {target!r}"
            )
        return self.model_copy(update={"signl4_team_secret": secret})

    @property
    def basic_auth_required(self) -> bool:
        return bool(self.halo_webhook_username and self.halo_webhook_password)

    @classmethod
    def setting_names(cls, *, include_local_only: bool = True) -> list[str]:
        names = []
        for field in cls.model_fields.values():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            if extra.get("derived") or (extra.get("local_only") and not include_local_only):
                continue
            names.append(field.alias or "")
        return names

    @classmethod
    def secret_setting_names(cls) -> list[str]:
        """The settings whose values are secrets (typed SecretStr)."""
        return [
            field.alias or ""
            for field in cls.model_fields.values()
            if SecretStr in getattr(field.annotation, "__args__", (field.annotation,))
            and field.json_schema_extra != DERIVED
        ]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RelaySettings:
        # Azure app settings and local.settings.json often hold "" for "not set".
        relevant = tuple(
            (name, environ[name]) for name in _env_names() if environ.get(name, "").strip()
        ) + team_secret_items(environ)
        unresolved = [name for name, value in relevant if value.startswith("@Microsoft.KeyVault(")]
        if unresolved:
            # App Service passes the reference through as text when it cannot resolve it.
            raise SettingsError(
                "invalid setting " + ", ".join(unresolved) + ": the Key Vault reference did not "
                "resolve (check the app's identity has Key Vault Secrets User on the vault)"
            )
        return _settings_from_items(relevant)


def _team_secrets_json(value: Any) -> dict[str, str]:
    """SIGNL4_TEAM_SECRETS -> {target: secret}. The message never holds the value."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str) or not value.strip():
        return {}
    problem = ValueError(
        "SIGNL4_TEAM_SECRETS must be a JSON object of routing target name -> SIGNL4 team secret "
        '(e.g. {"network": "<secret>"})'
    )
    try:
        parsed = read_json_setting(value)
    except OutOfBounds as error:
        raise ValueError(f"SIGNL4_TEAM_SECRETS: {error}") from None
    except ValueError:
        raise problem from None
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
    ):
        raise problem
    return {name.casefold(): secret for name, secret in parsed.items() if secret.strip()}


def team_secret_items(environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The SIGNL4_TEAM_SECRET_<NAME> settings that are set (routing targets' secrets)."""
    return tuple(
        sorted(
            (name, value)
            for name, value in environ.items()
            if name.startswith(TEAM_SECRET_PREFIX) and value.strip()
        )
    )


@cache
def _env_names() -> tuple[str, ...]:
    # Read on every request: the field list never changes, so walk it once.
    return tuple(RelaySettings.setting_names())


@lru_cache(maxsize=8)
def _settings_from_items(items: tuple[tuple[str, str], ...]) -> RelaySettings:
    """Cached per distinct environment: settings are read on every request but rarely change.
    So the notices below are logged once per environment and worker, not per request."""
    try:
        settings = RelaySettings.model_validate(dict(items))
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            name = ".".join(str(part) for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {message}" if name else message)
        raise SettingsError("invalid setting " + "; ".join(problems)) from None
    except Exception as exc:  # a library failing where no rule foresaw it: still a setting
        raise SettingsError(unreadable(items, exc)) from None
    for name, message in setting_notices(dict(items)):
        logger.warning(
            "settings: %s: %s (python -m shared check fails on this)",
            log_safe(name),
            log_safe(message),
        )
    return settings


def unreadable(items: tuple[tuple[str, str], ...], error: BaseException) -> str:
    """The message for settings that raised `error` (not a validation error) when read: the
    setting that raises it on its own is named; its kind only, never a value."""
    kind = type(error).__name__
    for name, value in items:
        try:
            RelaySettings.model_validate({name: value})
        except ValidationError:
            continue
        except Exception:
            return f"invalid setting {name}: could not be read ({kind})"
    return f"invalid setting: the settings could not be read together ({kind})"


# --- settings that still work, but should not (check fails; the relay logs them once) ---


def setting_notices(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """(setting, message) for each setting read the same as before but ambiguous or unsafe:
    a user name or password in a URL, and team secret names that name one target twice. They
    stay accepted (an upgrade must not stop paging); `python -m shared check` fails on them."""
    found = [
        (
            name,
            "the URL holds a user name or password before the host (user:pass@): remove it. "
            "The relay never shows it (not in the alert's Link, the log or any output)",
        )
        for name in URL_SETTINGS
        if has_userinfo(environ.get(name, "").strip())
    ]
    return found + _team_secret_notices(environ)


def _team_secret_notices(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """Team secret names that fold to one target. Today's winners stay: in the JSON setting the
    later entry, among SIGNL4_TEAM_SECRET_<NAME> settings the name sorting last, and any of
    those over the JSON entry."""
    found: list[tuple[str, str]] = []
    own: dict[str, str] = {}
    for name, _ in team_secret_items(environ):  # sorted: the later one wins
        target = name[len(TEAM_SECRET_PREFIX) :].casefold()
        if target in own:
            found.append(
                (
                    name,
                    f"names the same target as {own[target]} (names are "
                    f"case-insensitive): remove one; {name} wins",
                )
            )
        own[target] = name
    entries = _json_secret_names(environ.get(TEAM_SECRETS_SETTING, ""))
    seen: dict[str, str] = {}
    for entry in entries:
        target = entry.casefold()
        if target in seen:
            found.append(
                (
                    TEAM_SECRETS_SETTING,
                    f"the names {_shown(seen[target])} and "
                    f"{_shown(entry)} name the same target (names are case-insensitive): "
                    "remove one; the later one wins",
                )
            )
        elif target in own:
            found.append(
                (
                    TEAM_SECRETS_SETTING,
                    f"the name {_shown(entry)} names the same "
                    f"target as the setting {own[target]}: remove one; {own[target]} wins",
                )
            )
        seen[target] = entry
    return found


def _json_secret_names(value: str) -> list[str]:
    """The names of SIGNL4_TEAM_SECRETS' entries that hold a secret, in order, repeats kept.
    Unreadable: none (the setting's own error says why)."""
    if not value.strip():
        return []
    try:
        pairs = read_json_setting(value, object_pairs_hook=_Pairs)
    except ValueError:
        return []
    if not isinstance(pairs, _Pairs):
        return []
    return [k for k, v in pairs if isinstance(k, str) and isinstance(v, str) and v.strip()]


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its (name, value) pairs, repeated names kept."""


def _shown(name: str) -> str:
    """A name from a setting, quoted and cut short for a message."""
    return repr(name if len(name) <= 40 else name[:40] + "...")
