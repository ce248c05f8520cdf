"""`python -m shared check`: is this configuration usable? Each setting judged on its own
(pure), then the settings together, then, with `--live`, the services the relay depends on.

Findings name the setting and what is wrong with it, never its value (it may be a secret).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.settings import (
    RelaySettings,
    SettingsError,
    setting_notices,
    team_secret_items,
    unreadable,
)

if TYPE_CHECKING:
    from shared.adapters.halo_webhooks import Webhook

Level = Literal["ok", "warning", "error"]
KEY_VAULT_PREFIX = "@Microsoft.KeyVault("


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)

    level: Level
    subject: str  # a setting name, or what was checked ("storage", "settings")
    message: str


def check_settings(environ: Mapping[str, str]) -> list[Finding]:
    """One finding per setting (set or default), then the settings' combined verdict and
    warnings about what the configuration leaves off."""
    findings: list[Finding] = []
    for name in RelaySettings.setting_names():
        value = environ.get(name, "").strip()
        if not value:
            findings.append(Finding(level="ok", subject=name, message="not set (default)"))
            continue
        if value.startswith(KEY_VAULT_PREFIX):
            findings.append(
                Finding(
                    level="error",
                    subject=name,
                    message="the Key Vault reference did not resolve (check the app's "
                    "identity has Key Vault Secrets User on the vault)",
                )
            )
            continue
        findings.append(_check_one(name, value))
    findings += _check_together(environ)
    notices = setting_notices(environ)
    # Accepted by the relay (an upgrade keeps paging), but ambiguous or unsafe: check fails.
    named = {name for name, _ in notices}
    findings = [f for f in findings if not (f.level == "ok" and f.subject in named)]
    findings += [Finding(level="error", subject=name, message=text) for name, text in notices]
    if any(f.level == "error" for f in findings):
        return findings
    try:
        settings = RelaySettings.from_env(environ)
    except SettingsError as error:  # not reached: every rule is reported above
        return [*findings, Finding(level="error", subject="settings", message=str(error))]
    return findings + _warnings(settings)


def _check_together(environ: Mapping[str, str]) -> list[Finding]:
    """Rules over several settings (Basic auth's two halves): the model's own errors only."""
    names = RelaySettings.setting_names()
    values = {name: environ[name] for name in names if environ.get(name, "").strip()}
    values.update(team_secret_items(environ))  # RELAY_ROUTES' targets need their secrets
    try:
        RelaySettings.model_validate(values)
    except ValidationError as exc:
        return [
            Finding(
                level="error",
                subject="settings",
                message=error["msg"].removeprefix("Value error, "),
            )
            for error in exc.errors(include_input=False, include_url=False)
            if not error["loc"]
        ]
    except Exception as exc:  # a library failing where no rule foresaw it: named, never raised
        items = tuple(values.items())
        return [Finding(level="error", subject="settings", message=unreadable(items, exc))]
    return []


def _check_one(name: str, value: str) -> Finding:
    try:
        RelaySettings.model_validate({name: value})
    except ValidationError as exc:
        messages = [
            error["msg"].removeprefix("Value error, ")
            for error in exc.errors(include_input=False, include_url=False)
            if name in (str(part) for part in error["loc"])
        ]
        if messages:
            return Finding(level="error", subject=name, message="; ".join(messages))
    except Exception as exc:  # a library failing where no rule foresaw it: its kind only
        return Finding(
            level="error", subject=name, message=f"could not be read ({type(exc).__name__})"
        )
    return Finding(level="ok", subject=name, message="set")


def _warnings(settings: RelaySettings) -> list[Finding]:
    found: list[Finding] = []
    if settings.dry_run:
        why = "RELAY_DRY_RUN is true" if settings.relay_dry_run else "SIGNL4_TEAM_SECRET is not set"
        found.append(
            Finding(level="warning", subject="mode", message=f"dry-run ({why}): nothing is sent")
        )
    else:
        found.append(Finding(level="ok", subject="mode", message="live: events are sent to SIGNL4"))
    if settings.storage_connection is None and settings.storage_account_name is None:
        found.append(
            Finding(
                level="warning",
                subject="storage",
                message="AzureWebJobsStorage is not set: no ledger, so a redelivered event can "
                "page twice",
            )
        )
    if settings.relay_inbound_token is None:
        found.append(
            Finding(
                level="ok",
                subject="webhookRoute",
                message="off (RELAY_INBOUND_TOKEN is not set): POST /api/webhook answers 404",
            )
        )
    return found


# --- live checks (edge) ---

LiveCheck = Callable[[RelaySettings], "Finding | list[Finding] | None"]


def check_storage(settings: RelaySettings) -> Finding | None:
    """Open the ledger and read one row (absent): the table answers, with these credentials."""
    from shared.adapters.store import Unavailable
    from shared.entry.storage import open_ledger

    try:
        ledger = open_ledger(settings)
        if ledger is None:
            return Finding(level="warning", subject="storage", message="not configured: skipped")
        ledger.probe()
    except Unavailable as error:
        return Finding(
            level="error", subject="storage", message=f"the ledger table did not answer ({error})"
        )
    except Exception as error:  # the SDK or the credential: its kind only (messages carry URLs)
        return Finding(
            level="error",
            subject="storage",
            message=f"the ledger could not be opened ({type(error).__name__})",
        )
    return Finding(level="ok", subject="storage", message="the ledger table answered a read")


def check_halo_token(settings: RelaySettings) -> Finding | None:
    """Two-way on: fetch a Halo token with the client credentials (a fresh one, not a cached
    one). Off: nothing to check. Writes nothing into Halo."""
    if not settings.two_way:
        return None
    from shared.adapters.halo import HaloClient
    from shared.errors import RelayError

    try:
        client = HaloClient(settings)
        client.fresh_token()
        refused = sorted(client.refused_scopes())
    except RelayError as error:  # its message is scrubbed of the client secret and tokens
        return Finding(level="error", subject="halo", message=error.message)
    except Exception as error:  # anything else: its kind only
        return Finding(
            level="error",
            subject="halo",
            message=f"the Halo token could not be fetched ({type(error).__name__})",
        )
    if refused:
        return Finding(
            level="warning",
            subject="halo",
            message=f"Halo issued a token but refused the scope {' '.join(refused)} "
            "(invalid_scope): notes are written without the assignment (grant the scope to "
            "the API application in Halo, or set HALO_ASSIGN_ON_ACK=false)",
        )
    return Finding(level="ok", subject="halo", message="Halo issued a token for the client id")


def check_halo_outcome(settings: RelaySettings) -> Finding | None:
    """Two-way on and the outcome given by name: Halo offers it (GET /api/Outcome, nothing
    written). An unknown name is an error listing the names Halo offers."""
    if not settings.two_way or settings.halo_note_outcome_id is not None:
        return None
    from shared.adapters.halo import HaloClient, forget_outcomes
    from shared.errors import RelayError

    forget_outcomes()  # ask Halo now, not what this process learnt before
    try:
        found = HaloClient(settings).outcome_id()
    except RelayError as error:
        return Finding(level="error", subject="haloOutcome", message=error.message)
    except Exception as error:  # anything else: its kind only
        return Finding(
            level="error",
            subject="haloOutcome",
            message=f"Halo's outcomes could not be read ({type(error).__name__})",
        )
    if found is None:
        return Finding(
            level="warning",
            subject="haloOutcome",
            message="Halo refused GET /api/Outcome: HALO_NOTE_OUTCOME is sent by name, "
            "unchecked (or set HALO_NOTE_OUTCOME_ID)",
        )
    return Finding(
        level="ok",
        subject="haloOutcome",
        message=f"HALO_NOTE_OUTCOME is Halo's outcome id {found}",
    )


REENABLE = (
    "re-enable it in Halo (Configuration > Integrations > Webhooks: open it, set it active) "
    "once the cause of its failures is fixed, and set notify_on_failure so Halo tells you next time"
)


def check_halo_webhooks(settings: RelaySettings) -> list[Finding] | None:
    """With API credentials: Halo's webhooks aimed at this relay (GET /api/Webhook, nothing
    written). One off, or none aimed at the relay, is an error: Halo calls no one. Refused or
    unanswered: a warning saying how to look by hand; the rest of the check is unaffected."""
    from shared.adapters.halo_webhooks import read_halo_side

    side = read_halo_side(settings)
    if side is None:
        return None
    if side.unknown is not None:
        why = "Halo refused to list its webhooks" if side.refused else "not checked"
        return [
            Finding(
                level="warning",
                subject="haloWebhook",
                message=f"{why} ({side.unknown}): the webhook's state is unknown; reading it "
                "needs an API application allowed to read Halo's configuration (admin scope); "
                "check by hand in Halo: Configuration > Integrations > Webhooks",
            )
        ]
    if not side.webhooks:
        return [
            Finding(
                level="error",
                subject="haloWebhook",
                message=f"no webhook in Halo is aimed at {side.host}: Halo calls no one (create "
                "it: python -m shared halo-setup)",
            )
        ]
    return [_webhook_finding(settings, hook) for hook in side.webhooks]


def _webhook_finding(settings: RelaySettings, hook: Webhook) -> Finding:
    """One webhook aimed at the relay; an off one with the last failures Halo logged."""
    from shared.adapters.halo_webhooks import recent_failures

    if not hook.off:
        return Finding(level="ok", subject="haloWebhook", message=hook.describe())
    failures = recent_failures(settings, hook)
    seen = f"; Halo's last failures: {', '.join(failures)}" if failures else ""
    return Finding(
        level="error",
        subject="haloWebhook",
        message=f"{hook.describe()}{seen}: Halo does not call it; {REENABLE}",
    )


# The checks `--live` runs, in order: none raises an alert or writes into Halo. A check gives
# one finding, several, or none.
LIVE_CHECKS: list[LiveCheck] = [
    check_storage,
    check_halo_token,
    check_halo_outcome,
    check_halo_webhooks,
]


def check_live(settings: RelaySettings, checks: list[LiveCheck] | None = None) -> list[Finding]:
    """Run the live checks; none raises an alert (nothing is sent to SIGNL4)."""
    found: list[Finding] = []
    for check in LIVE_CHECKS if checks is None else checks:
        result = check(settings)
        if isinstance(result, list):
            found += result
        elif result is not None:
            found.append(result)
    return found


def render(findings: list[Finding]) -> str:
    width = max((len(f.subject) for f in findings), default=0)
    lines = [f"{f.level:<7} {f.subject:<{width}}  {f.message}" for f in findings]
    errors = sum(f.level == "error" for f in findings)
    lines.append(f"{errors} error(s)" if errors else "configuration ok")
    return "\n".join(lines) + "\n"


def failed(findings: list[Finding]) -> bool:
    return any(f.level == "error" for f in findings)
