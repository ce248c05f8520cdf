"""Settings: defaults, parsing, and errors that name the setting but never its value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.settings import RelaySettings, SettingsError

SAMPLE = Path(__file__).resolve().parents[2] / "local.settings.sample.json"


def test_defaults_are_a_dry_run_with_the_documented_statuses() -> None:
    settings = RelaySettings.from_env({})
    assert settings.dry_run and not settings.basic_auth_required
    assert settings.signl4_webhook_url == "https://connect.signl4.com/webhook/"
    assert settings.relay_resolved_statuses == {"9", "closed", "resolved", "cancelled"}
    assert settings.relay_ack_statuses == frozenset()


def test_empty_values_count_as_unset() -> None:
    settings = RelaySettings.from_env(
        {"SIGNL4_TEAM_SECRET": "  ", "HALO_BASE_URL": "", "SIGNL4_MAX_ATTEMPTS": ""}
    )
    assert settings.signl4_team_secret is None and settings.halo_base_url is None
    assert settings.signl4_max_attempts == 3


def test_a_secret_turns_dry_run_off_unless_asked_for() -> None:
    assert not RelaySettings.from_env({"SIGNL4_TEAM_SECRET": "x"}).dry_run
    assert RelaySettings.from_env({"SIGNL4_TEAM_SECRET": "x", "RELAY_DRY_RUN": "true"}).dry_run


def test_lists_are_trimmed_and_case_folded() -> None:
    settings = RelaySettings.from_env(
        {"RELAY_ACK_STATUSES": " 2, In Progress ,,", "RELAY_PAGE_TEAMS": "NOC"}
    )
    assert settings.relay_ack_statuses == {"2", "in progress"}
    assert settings.relay_page_teams == {"noc"}


def test_basic_auth_needs_both_halves_or_neither() -> None:
    both = {"HALO_WEBHOOK_USERNAME": "halo", "HALO_WEBHOOK_PASSWORD": "pw"}
    assert RelaySettings.from_env(both).basic_auth_required
    for half in ({"HALO_WEBHOOK_USERNAME": "halo"}, {"HALO_WEBHOOK_PASSWORD": "pw"}):
        # Half a credential must not silently turn authentication off.
        with pytest.raises(SettingsError, match="set together") as raised:
            RelaySettings.from_env(half)
        assert "pw" not in str(raised.value)


def test_an_unresolved_key_vault_reference_is_reported_not_used() -> None:
    reference = (
        "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/signl4-team-secret/)"
    )
    with pytest.raises(
        SettingsError, match="SIGNL4_TEAM_SECRET: the Key Vault reference did not resolve"
    ):
        RelaySettings.from_env({"SIGNL4_TEAM_SECRET": reference})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SIGNL4_MAX_ATTEMPTS", "0"),
        ("SIGNL4_TIMEOUT_SECONDS", "soon"),
        ("SIGNL4_WEBHOOK_URL", "connect.signl4.com/webhook/hunter2"),
        ("HALO_BASE_URL", "not a url"),
        ("RELAY_DRY_RUN", "perhaps"),
    ],
)
def test_a_bad_setting_is_named_without_its_value(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        RelaySettings.from_env({name: value, "SIGNL4_TEAM_SECRET": "hunter2"})
    assert name in str(raised.value)
    assert value not in str(raised.value) and "hunter2" not in str(raised.value)


URL_SETTINGS = ("SIGNL4_WEBHOOK_URL", "HALO_BASE_URL")


@pytest.mark.parametrize("name", URL_SETTINGS)
@pytest.mark.parametrize(
    "url",
    [
        "https://connect.signl4.com/webhook/",
        "HTTPS://yourcompany.halopsa.com",
        # the tests' fake SIGNL4 (and bench's) listens on loopback, without TLS
        "http://127.0.0.1:8080/webhook/",
        "http://localhost:8080/webhook/",
        "http://[::1]:8080/webhook/",
    ],
)
def test_urls_are_https_or_loopback_http(name: str, url: str) -> None:
    settings = RelaySettings.from_env({name: url})
    assert url in (settings.signl4_webhook_url, settings.halo_base_url)


@pytest.mark.parametrize("name", URL_SETTINGS)
@pytest.mark.parametrize(
    "url",
    [
        # the SIGNL4 URL carries the team secret in its path: never in clear over a network
        "http://connect.signl4.com/webhook/",
        "http://yourcompany.halopsa.com",
        "http://127.0.0.1.example.com/webhook/",
        "http://localhost.example.com/webhook/",
        "http://127.0.0.1@example.com/webhook/",
        "http://10.0.0.1/webhook/",
        "ftp://connect.signl4.com/webhook/",
        "https:///webhook/",
        "https://connect.signl4.com:port/webhook/",
        "https://connect signl4.com/webhook/",
    ],
)
def test_plain_http_off_this_machine_is_refused_without_echoing_the_url(
    name: str, url: str
) -> None:
    with pytest.raises(SettingsError, match=f"{name}: must be an https:// URL") as raised:
        RelaySettings.from_env({name: url, "SIGNL4_TEAM_SECRET": "hunter2"})
    assert url not in str(raised.value) and "hunter2" not in str(raised.value)


def test_the_sample_lists_every_setting() -> None:
    values = json.loads(SAMPLE.read_text())["Values"]
    missing = [name for name in RelaySettings.setting_names() if name not in values]
    # AzureWebJobsStorage__accountName is Azure's identity-based form; locally the sample
    # uses the AzureWebJobsStorage connection string instead.
    assert missing == ["AzureWebJobsStorage__accountName"]
    assert values["SIGNL4_TEAM_SECRET"] == ""  # the sample starts in dry-run


ALL_SETTINGS = [
    "SIGNL4_TEAM_SECRET",
    "SIGNL4_WEBHOOK_URL",
    "SIGNL4_TIMEOUT_SECONDS",
    "SIGNL4_MAX_ATTEMPTS",
    "SIGNL4_RETRY_BUDGET_SECONDS",
    "SIGNL4_BACKOFF_SECONDS",
    "HALO_BASE_URL",
    "HALO_WEBHOOK_USERNAME",
    "HALO_WEBHOOK_PASSWORD",
    "RELAY_PUBLIC_URL",
    "WEBSITE_HOSTNAME",
    "RELAY_INBOUND_TOKEN",
    "HALO_CLIENT_ID",
    "HALO_CLIENT_SECRET",
    "HALO_AUTH_URL",
    "HALO_TENANT",
    "HALO_SCOPE",
    "HALO_NOTE_OUTCOME",
    "HALO_NOTE_OUTCOME_ID",
    "HALO_ACK_STATUS_ID",
    "HALO_CLOSE_STATUS_ID",
    "HALO_ASSIGN_ON_ACK",
    "HALO_TIMEOUT_SECONDS",
    "HALO_MAX_ATTEMPTS",
    "HALO_RETRY_BUDGET_SECONDS",
    "HALO_BACKOFF_SECONDS",
    "RELAY_RESOLVED_STATUSES",
    "RELAY_ACK_STATUSES",
    "RELAY_PAGE_PRIORITIES",
    "RELAY_PAGE_TEAMS",
    "RELAY_EMERGENCY_PRIORITIES",
    "RELAY_PAGE_ON_EVENTS",
    "RELAY_RESOLVE_ON_DOWNGRADE",
    "RELAY_DRY_RUN",
    "RELAY_ROUTES",
    "SIGNL4_TEAM_SECRETS",
    "RELAY_INFLIGHT_SECONDS",
    "RELAY_MAX_BATCH",
    "RELAY_TEST_RESOLVE_SECONDS",
    "SIGNL4_HEARTBEAT_URL",
    "RELAY_HEARTBEAT_SCHEDULE",
    "AzureWebJobsStorage",
    "AzureWebJobsStorage__accountName",
]


def test_setting_names_and_which_are_local_only_or_secret() -> None:
    assert RelaySettings.setting_names() == ALL_SETTINGS
    deployed = RelaySettings.setting_names(include_local_only=False)
    local_only = {"AzureWebJobsStorage", "WEBSITE_HOSTNAME"}  # the platform's, not the template's
    assert deployed == [name for name in ALL_SETTINGS if name not in local_only]
    assert RelaySettings.secret_setting_names() == [
        "SIGNL4_TEAM_SECRET",
        "HALO_WEBHOOK_PASSWORD",
        "RELAY_INBOUND_TOKEN",
        "HALO_CLIENT_SECRET",
        "SIGNL4_TEAM_SECRETS",
        "AzureWebJobsStorage",
    ]


def test_lists_may_be_given_as_lists_too() -> None:
    settings = RelaySettings.model_validate({"RELAY_ACK_STATUSES": ["2", " In Progress ", " "]})
    assert settings.relay_ack_statuses == {"2", "in progress"}


def test_every_unresolved_key_vault_reference_is_named_in_one_message() -> None:
    reference = "@Microsoft.KeyVault(VaultName=kv;SecretName=s)"
    with pytest.raises(SettingsError) as raised:
        RelaySettings.from_env(
            {"RELAY_INBOUND_TOKEN": reference, "SIGNL4_TEAM_SECRET": reference, "RELAY_DRY_RUN": ""}
        )
    assert str(raised.value) == (
        "invalid setting SIGNL4_TEAM_SECRET, RELAY_INBOUND_TOKEN: the Key Vault reference did not "
        "resolve (check the app's identity has Key Vault Secrets User on the vault)"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"HALO_WEBHOOK_USERNAME": "halo"},
            "invalid setting HALO_WEBHOOK_USERNAME and HALO_WEBHOOK_PASSWORD must be set together",
        ),
        (
            {"SIGNL4_WEBHOOK_URL": "http://connect.signl4.com/webhook/"},
            "invalid setting SIGNL4_WEBHOOK_URL: must be an https:// URL (plain http only to "
            "127.0.0.1, localhost or [::1])",
        ),
        (
            {"HALO_BASE_URL": "https://contoso .halopsa.com"},
            "invalid setting HALO_BASE_URL: must be an https:// URL",
        ),
        (
            {"SIGNL4_MAX_ATTEMPTS": "0", "RELAY_MAX_BATCH": "151"},
            "invalid setting SIGNL4_MAX_ATTEMPTS: Input should be greater than or equal to 1; "
            "RELAY_MAX_BATCH: Input should be less than or equal to 150",
        ),
    ],
)
def test_the_configuration_error_an_operator_reads(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        RelaySettings.from_env(env)
    assert str(raised.value) == message


# --- the heartbeat schedule (NCRONTAB) ---


@pytest.mark.parametrize(
    ("schedule", "read"),
    [
        ("0 */5 * * * *", "0 */5 * * * *"),
        ("  0  */5 *\t* * *  ", "0 */5 * * * *"),  # the host reads single spaces
        ("0 0 8-18 * * MON-FRI", "0 0 8-18 * * MON-FRI"),
        ("0 0,30 * * * *", "0 0,30 * * * *"),
    ],
)
def test_a_six_field_ncrontab_schedule_is_read(schedule: str, read: str) -> None:
    settings = RelaySettings.from_env({"RELAY_HEARTBEAT_SCHEDULE": schedule})
    assert settings.relay_heartbeat_schedule == read


@pytest.mark.parametrize(
    "schedule",
    ["*/5 * * * *", "0 */5 * * * * *", "00:05:00", "0 */5 * * * ?", "0 */5 * * * #"],
)
def test_a_schedule_that_is_not_six_ncrontab_fields_is_refused(schedule: str) -> None:
    with pytest.raises(SettingsError) as raised:
        RelaySettings.from_env({"RELAY_HEARTBEAT_SCHEDULE": schedule})
    assert str(raised.value) == (
        "invalid setting RELAY_HEARTBEAT_SCHEDULE: must be an NCRONTAB expression of six fields: "
        "second minute hour day month day-of-week (e.g. 0 */5 * * * *)"
    )


# --- routing targets' team secrets ---

SECRETS_PROBLEM = (
    "invalid setting SIGNL4_TEAM_SECRETS must be a JSON object of routing target name -> SIGNL4 "
    'team secret (e.g. {"network": "<secret>"})'
)


def _team_secrets(settings: RelaySettings) -> dict[str, str]:
    return {
        name: secret.get_secret_value() for name, secret in settings.signl4_team_secrets.items()
    }


def test_team_secrets_come_from_one_json_setting_by_case_folded_target() -> None:
    env = {
        "SIGNL4_TEAM_SECRETS": json.dumps({"Network": "net-s3cret", "DB": "db-s3cret", "x": " "})
    }
    assert _team_secrets(RelaySettings.from_env(env)) == {
        "network": "net-s3cret",
        "db": "db-s3cret",
    }
    # Validated again from a SecretStr (a model's own value), it reads the same.
    from pydantic import SecretStr

    again = RelaySettings.model_validate(
        {"SIGNL4_TEAM_SECRETS": SecretStr(env["SIGNL4_TEAM_SECRETS"])}
    )
    assert _team_secrets(again) == {"network": "net-s3cret", "db": "db-s3cret"}


def test_a_team_secret_setting_of_its_own_wins_over_the_json_one() -> None:
    env = {
        "SIGNL4_TEAM_SECRETS": json.dumps({"network": "from-json", "db": "db-s3cret"}),
        "SIGNL4_TEAM_SECRET_NETWORK": "own-setting",
    }
    assert _team_secrets(RelaySettings.from_env(env)) == {
        "network": "own-setting",
        "db": "db-s3cret",
    }


@pytest.mark.parametrize("value", ["", "   ", "{}"])
def test_an_empty_team_secrets_setting_adds_no_target(value: str) -> None:
    assert RelaySettings.from_env({"SIGNL4_TEAM_SECRETS": value}).signl4_team_secrets == {}


@pytest.mark.parametrize(
    "value",
    [
        "network=s3cret-value",
        '["s3cret-value"]',
        '"s3cret-value"',
        '{"network": 12345678}',
        '{"network": {"secret": "s3cret-value"}}',
        '{"network": "s3cret-value", "db": null}',
    ],
)
def test_team_secrets_that_are_not_an_object_of_strings_are_refused_unechoed(value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        RelaySettings.from_env({"SIGNL4_TEAM_SECRETS": value})
    assert str(raised.value) == SECRETS_PROBLEM
    assert "s3cret" not in str(raised.value) and "12345678" not in str(raised.value)


def test_sending_to_a_target_uses_that_targets_secret() -> None:
    env = {"SIGNL4_TEAM_SECRET": "default-s3cret", "SIGNL4_TEAM_SECRET_NETWORK": "net-s3cret"}
    settings = RelaySettings.from_env(env)
    for target in ("network", "Network", "NETWORK"):
        chosen = settings.for_target(target)
        assert chosen.signl4_team_secret is not None
        assert chosen.signl4_team_secret.get_secret_value() == "net-s3cret"
        assert chosen.signl4_webhook_url == settings.signl4_webhook_url
    # The default target (or none) is these settings themselves.
    assert settings.for_target("default") is settings and settings.for_target("") is settings
    assert settings.signl4_team_secret is not None
    assert settings.signl4_team_secret.get_secret_value() == "default-s3cret"


def test_sending_to_a_target_without_a_secret_names_the_missing_setting() -> None:
    settings = RelaySettings.from_env({"SIGNL4_TEAM_SECRET_NETWORK": "net-s3cret"})
    with pytest.raises(SettingsError) as raised:
        settings.for_target("Ops")
    assert str(raised.value) == (
        "invalid setting SIGNL4_TEAM_SECRET_OPS: not set, but the alert of this ticket went to "
        "routing target 'Ops'"
    )
