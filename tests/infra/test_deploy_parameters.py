"""infra/main.parameters.json: every template parameter is reachable from the azd environment
(`${NAME=default}`), with the template's own default, so `azd env set NAME value` sets it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

INFRA = Path(__file__).resolve().parents[2] / "infra"
PLACEHOLDER = re.compile(r"\$\{(?P<name>[A-Z][A-Z0-9_]*)(?:=(?P<default>[^}]*))?\}")
# Set by azd itself, or required: no default in the parameters file.
AZD_OWN = {"environmentName": "AZURE_ENV_NAME", "location": "AZURE_LOCATION"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return BicepParser().parse(text=(INFRA / "main.bicep").read_text())


@pytest.fixture(scope="module")
def mapped() -> dict[str, re.Match[str]]:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    matches = {}
    for name, entry in parameters.items():
        match = PLACEHOLDER.fullmatch(str(entry["value"]))
        assert match, f"{name}: value must be ${{AZD_ENV_NAME}} or ${{AZD_ENV_NAME=default}}"
        matches[name] = match
    return matches


def env_name(parameter: str) -> str:
    """relayMaxBatch -> RELAY_MAX_BATCH, instanceMemoryMB -> INSTANCE_MEMORY_MB."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", parameter).upper()


def test_every_template_parameter_comes_from_the_azd_environment(template, mapped) -> None:
    missing = sorted(set(template["parameters"]) - set(mapped))
    assert not missing, f"add to infra/main.parameters.json: {missing}"
    assert not set(mapped) - set(template["parameters"])


def test_names_follow_the_settings_and_defaults_are_the_templates(template, mapped) -> None:
    for name, match in mapped.items():
        expected = AZD_OWN.get(name, env_name(name))
        assert match.group("name") == expected, name
        default = template["parameters"][name]["default"]
        if default is None or name in AZD_OWN:
            continue  # required (azd asks: the team secret), or azd's own (name, location)
        if isinstance(default, bool):
            default = str(default).lower()
        assert match.group("default") == str(default), (name, match.group("default"), default)


def test_relay_settings_keep_their_app_setting_names(mapped) -> None:
    # `azd env set RELAY_MAX_BATCH 50` sets the app setting of the same name.
    from shared.settings import RelaySettings

    by_env = {m.group("name") for m in mapped.values()}
    for setting in RelaySettings.setting_names(include_local_only=False):
        if setting.startswith("AzureWebJobsStorage"):
            continue  # the template's own storage account
        assert setting in by_env, setting
