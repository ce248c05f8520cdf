"""infra/main.bicep as a composition of modules (infra/modules/*.bicep).

The split must not change what a deployer sees: the same parameters (names, types, defaults,
decorators) and outputs (names, types, descriptions) as the single-file template had, recorded
in tests/infra/fixtures/main_interface.json from it (`azd up` and existing main.parameters.json
files keep working). And the helper that flattens main.bicep and its modules for the other infra
tests (tests/infra/bicep_template.py) is shown to refuse what it would misread.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra.bicep_template import (
    MAIN_BICEP,
    TemplateError,
    body,
    load_template,
    module_files,
    parse,
)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "main_interface.json"


@pytest.fixture(scope="module")
def before() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def main() -> dict[str, Any]:
    return parse(MAIN_BICEP)


def test_parameters_keep_their_names_types_defaults_and_decorators(before, main):
    now = {
        name: {"type": p["type"], "default": p["default"], "decorators": p["decorators"]}
        for name, p in main["parameters"].items()
    }
    assert list(now) == list(before["parameters"]), "names (and their order) changed"
    for name, parameter in before["parameters"].items():
        assert now[name] == parameter, name


def test_outputs_keep_their_names_types_and_descriptions(before, main):
    now = {
        name: {"type": o["type"], "decorators": o["decorators"]}
        for name, o in main["outputs"].items()
    }
    assert now == before["outputs"]


def test_main_composes_modules_and_declares_no_resource(main):
    assert not main.get("resources")
    assert set(main["modules"]) == {"monitoring", "storage", "vault", "app", "roles", "settings"}
    assert all(module["type"] == "local" for module in main["modules"].values())


def test_the_app_settings_wait_for_the_roles_and_the_roles_for_the_app(main):
    """ARM orders modules by dependsOn and by the outputs their parameters read."""
    flat = load_template()
    settings = set(body(flat["resources"]["appSettings"])["dependsOn"])
    assert {"blobOwnerAssignment", "keyVaultSecretsUserAssignment", "functionApp"} <= settings
    assert "functionApp" in body(flat["resources"]["blobOwnerAssignment"])["dependsOn"]
    assert "storage" in body(flat["resources"]["functionApp"])["dependsOn"]
    assert "dependsOn" not in body(flat["resources"]["storage"])


def test_every_module_file_is_one_checkov_reads():
    """checkov's parser (pycep) must accept each file: it skips, silently, one it cannot read."""
    for path in module_files():
        assert parse(path)["globals"] is not None, path


# The Bicep linter's name rules that bicepconfig.json makes errors (no Bicep CLI offline):
# secure-secrets-in-params and outputs-should-not-contain-secrets. A module parameter that
# carries a name between modules is a parameter, so these now apply to it too.
SECRET_LOOKING = re.compile(r"password|pwd|secret|accountkey|acctkey", flags=re.I)


def test_no_file_has_a_secret_looking_parameter_that_is_not_secure_or_such_an_output():
    for path in module_files():
        template = parse(path)
        for name, parameter in template["parameters"].items():
            secure = any(d["type"] == "secure" for d in parameter["decorators"])
            assert secure or not SECRET_LOOKING.search(name), f"{path.name}: param {name}"
        for name in template.get("outputs") or {}:
            assert not re.search("password", name, flags=re.I), f"{path.name}: output {name}"


# --------------------------------------------------------------------------------------------
# The flattening helper, on planted templates
# --------------------------------------------------------------------------------------------

CHILD = """
param name string
@secure()
param secret string
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
}
resource stored 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 's'
  properties: {
    value: secret
  }
}
output vaultName string = name
output uri string = vault.properties.vaultUri
"""

READER = """
param name string
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: name
}
resource lock 'Microsoft.Authorization/locks@2020-05-01' = {
  scope: vault
  name: 'lock'
  properties: {
    level: 'CanNotDelete'
  }
}
"""

MAIN = """
@secure()
param secret string
var name = 'kv'
module child './child.bicep' = {
  name: 'child'
  params: {
    name: name
    secret: secret
  }
}
module reader './reader.bicep' = {
  name: 'reader'
  params: {
    name: child.outputs.vaultName
  }
}
output uri string = 'see ${child.outputs.uri}'
"""


def plant(tmp_path: Path, main: str = MAIN, child: str = CHILD, reader: str = READER) -> Path:
    for name, text in (("main", main), ("child", child), ("reader", reader)):
        (tmp_path / f"{name}.bicep").write_text(text)
    return tmp_path / "main.bicep"


def test_the_planted_deployment_flattens(tmp_path):
    flat = load_template(plant(tmp_path))
    assert set(flat["resources"]) == {"vault", "stored", "lock"}
    assert not flat["resources"]["vault"].get("existing"), "the declaration wins"
    # reader reads child's output: its resources wait for all of child's.
    assert sorted(body(flat["resources"]["lock"])["dependsOn"]) == ["stored", "vault"]
    assert flat["outputs"]["uri"]["value"] == "see ${vault.properties.vaultUri}"
    assert set(flat["parameters"]) == {"secret"}


@pytest.mark.parametrize(
    "case",
    [
        ("main", "    name: name\n    secret", "    name: 'kv'\n    secret", "given 'kv'"),
        ("main", "    secret: secret\n", "", "needs parameter secret"),
        ("child", "@secure()\nparam secret", "param secret", "carries a secure value"),
        ("reader", "existing = {\n  name: name", "existing = {\n  name: 'other'", "name differs"),
        ("reader", "vaults@2023-07-01' existing", "vaults@2024-11-01' existing", "api_version"),
        ("reader", "resource lock", "resource stored", "declared twice"),
        ("main", "'./reader.bicep'", "'br/public:avm/res/key-vault/vault:0.1.0'", "only local"),
        ("main", "child.outputs.vaultName", "child.outputs.nope", "not an output"),
    ],
)
def test_the_helper_refuses_what_it_would_misread(tmp_path, case):
    where, old, new, message = case
    texts = {"main": MAIN, "child": CHILD, "reader": READER}
    assert texts[where].count(old) == 1
    texts[where] = texts[where].replace(old, new)
    with pytest.raises(TemplateError, match=message):
        load_template(plant(tmp_path, **texts))
