"""infra/main.bicep for routing (RELAY_ROUTES): the routing targets' secrets arrive as one
secure JSON object, stored as one Key Vault secret and handed to the app as the Key Vault
reference SIGNL4_TEAM_SECRETS; the rules themselves are a plain parameter."""

from __future__ import annotations

import json
from typing import Any

from shared.settings import RelaySettings
from tests.infra.test_infra import (
    app_settings,
    body,
    is_secure,
    key_vault_reference_target,
    only_resource,
    template,  # noqa: F401 (the parsed template fixture)
)


def test_team_secrets_are_one_key_vault_secret_behind_a_reference(template: dict[str, Any]) -> None:  # noqa: F811
    vault_name, _ = only_resource(template, "Microsoft.KeyVault/vaults")
    target = key_vault_reference_target(app_settings(template)["SIGNL4_TEAM_SECRETS"])
    assert target is not None, "SIGNL4_TEAM_SECRETS must be a Key Vault reference"
    secret = template["resources"][target]
    assert secret["type"] == "Microsoft.KeyVault/vaults/secrets"
    assert "condition" not in secret["config"], "always stored: its reference always resolves"
    assert body(secret)["parent"] == vault_name
    assert body(secret)["properties"]["value"] == "signl4TeamSecretsValue"
    stored = json.dumps(template["variables"]["signl4TeamSecretsValue"]["value"])
    assert "signl4TeamSecrets" in stored and "{}" in stored
    parameter = template["parameters"]["signl4TeamSecrets"]
    assert is_secure(parameter) and parameter["default"] == ""


def test_the_stored_object_is_what_the_relay_reads() -> None:
    rules = json.dumps([{"name": "net", "when": {"team": ["Network"]}, "target": "network"}])
    settings = RelaySettings.from_env(
        {"RELAY_ROUTES": rules, "SIGNL4_TEAM_SECRETS": json.dumps({"network": "x" * 20})}
    )
    assert settings.for_target("network").signl4_team_secret is not None
    assert RelaySettings.from_env({"SIGNL4_TEAM_SECRETS": "{}"}).signl4_team_secrets == {}


def test_the_rules_are_a_plain_parameter(template: dict[str, Any]) -> None:  # noqa: F811
    assert app_settings(template)["RELAY_ROUTES"] == "relayRoutes"
    assert not is_secure(template["parameters"]["relayRoutes"])
