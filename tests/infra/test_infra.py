"""infra/main.bicep and its modules, read with pycep (the parser checkov uses) and flattened into
one template (tests/infra/bicep_template.py): the security and wiring promises of the
deployment, checked offline. No Bicep CLI, no Azure.

The template is parsed into pycep's JSON: a bare string in a property is either a literal or
a parameter/variable/resource name (pycep does not keep quotes); `${...}` interpolations stay
as text; function calls and property access become nested dicts.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
from collections.abc import Mapping
from typing import Any

import pytest
from pycep import BicepParser

from shared.delivery.outbox import HALO_OUTBOX_QUEUE, HALO_POISON_QUEUE, OUTBOX_QUEUE, POISON_QUEUE
from shared.delivery.schema import TABLE_NAME
from shared.settings import RelaySettings
from tests.infra.bicep_template import MAIN_BICEP, ROOT, load_template, module_files

INFRA = ROOT / "infra"

ROLE_STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
ROLE_STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
ROLE_STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
ROLE_KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
ROLE_MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"

# Flex Consumption rejects these app settings (runtime and package live in functionAppConfig),
# and a plain AzureWebJobsStorage would be a connection string with an account key.
FORBIDDEN_APP_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "AzureWebJobsStorage",
}


# --------------------------------------------------------------------------------------------
# Parsed template and helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def body(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's object; a conditional resource (`= if (...) {...}`) nests it once more."""
    config = resource["config"]
    return config["config"] if "condition" in config else config


def resources_of_type(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["resources"].items() if res["type"] == type_}


def only_resource(template: dict[str, Any], type_: str) -> tuple[str, dict[str, Any]]:
    found = resources_of_type(template, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    name, resource = next(iter(found.items()))
    return name, body(resource)


def app_settings(template: dict[str, Any]) -> dict[str, Any]:
    configs = [
        body(res)
        for res in resources_of_type(template, "Microsoft.Web/sites/config").values()
        if body(res)["name"] == "appsettings"
    ]
    assert len(configs) == 1, "expected exactly one appsettings config resource"
    return configs[0]["properties"]


def property_path(node: Any) -> list[str]:
    """`a.b.c` (pycep's nested property_accessor) -> ['a', 'b', 'c']; a bare name -> [name]."""
    if isinstance(node, str):
        return [node]
    operator = node["operator"]
    assert operator["type"] == "property_accessor", node
    operands = operator["operands"]
    return [operands["operand_1"], *property_path(operands["operand_2"])]


def variable_value(template: dict[str, Any], name: str) -> Any:
    return template["variables"][name]["value"]


def is_secure(parameter: dict[str, Any]) -> bool:
    return any(d["type"] == "secure" for d in parameter["decorators"])


def allowed_values(parameter: dict[str, Any]) -> list[Any] | None:
    return decorator_argument(parameter, "allowed")


def decorator_argument(parameter: dict[str, Any], kind: str) -> Any:
    """The argument of a parameter's decorator, by pycep's name (allowed, min_value, ...)."""
    for decorator in parameter["decorators"]:
        if decorator["type"] == kind:
            return decorator["argument"]
    return None


class DeploymentFails(Exception):
    """ARM would stop the deployment here: a function was given a value it cannot convert."""


def evaluate(template: dict[str, Any], node: Any, values: Mapping[str, str]) -> Any:
    """Evaluates the few ARM functions the template's parameter checks use, as ARM does: a
    bare name is a parameter (from `values`, else its default) or a variable, anything else a
    literal; a condition evaluates only the branch it picks; startsWith ignores case."""

    def ev(item: Any) -> Any:
        return evaluate(template, item, values)

    if isinstance(node, str):
        if node in values:
            return values[node]
        if node in template["parameters"]:
            return template["parameters"][node]["default"]
        if node in template["variables"]:
            return ev(variable_value(template, node))
        return node
    if not isinstance(node, dict):
        return node
    if "operator" in node:
        kind, args = node["operator"]["type"], node["operator"]["operands"]
        if kind == "conditional":
            return ev(args["true_value"] if ev(args["condition"]) else args["false_value"])
        if kind == "or":
            return ev(args["operand_1"]) or ev(args["operand_2"])
        if kind == "and":
            return ev(args["operand_1"]) and ev(args["operand_2"])
        if kind == "not":
            return not ev(args["bool_value"])
        if kind == "greater_than":
            return ev(args["operand_1"]) > ev(args["operand_2"])
        raise NotImplementedError(kind)
    kind, args = node["function"]["type"], node["function"]["parameters"]
    if kind == "to_lower":
        return ev(args["string_to_change"]).lower()
    if kind == "starts_with":
        return ev(args["string_to_search"]).lower().startswith(ev(args["string_to_find"]).lower())
    if kind == "empty":
        return len(ev(args["item_to_test"])) == 0
    if kind == "string":
        return str(ev(args["value_to_convert"]))
    if kind == "int":
        value = ev(args["value_to_convert"])
        try:
            return int(value)
        except ValueError:
            raise DeploymentFails(value) from None
    raise NotImplementedError(kind)


def parameters_read(template: dict[str, Any], node: Any) -> set[str]:
    """The parameters an expression reads, directly or through variables."""
    if isinstance(node, str):
        if node in template["parameters"]:
            return {node}
        if node in template["variables"]:
            return parameters_read(template, variable_value(template, node))
        return set()
    items = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    return set().union(*(parameters_read(template, item) for item in items))


def key_vault_reference_target(value: Any) -> str | None:
    """'@Microsoft.KeyVault(SecretUri=${x.properties.secretUri})' -> 'x'."""
    if not isinstance(value, str):
        return None
    match = re.fullmatch(
        r"@Microsoft\.KeyVault\(SecretUri=\$\{(\w+)\.properties\.secretUri\}\)", value
    )
    return match.group(1) if match else None


# --------------------------------------------------------------------------------------------
# The template is whole and visible to the offline checks
# --------------------------------------------------------------------------------------------


# `resource x '<type>@<api>' = ...`; an `existing` reference has `existing` before the `=`.
DEPLOYED_RESOURCE = re.compile(r"^\s*resource\s+(\w+)\s+'[^']+'\s*=", flags=re.M)


def test_every_declared_resource_is_parsed_once_from_a_local_module(template):
    """main.bicep composes local modules only (checkov cannot see into a registry module);
    every resource a file deploys (not an `existing` reference) is in the flattened template."""
    files = module_files()
    assert files[0] == MAIN_BICEP
    assert {path.parent for path in files[1:]} == {INFRA / "modules"}
    assert sorted(path.name for path in (INFRA / "modules").glob("*.bicep")) == sorted(
        path.name for path in files[1:]
    ), "a module file main.bicep does not use"
    assert not DEPLOYED_RESOURCE.search(MAIN_BICEP.read_text()), "main.bicep only composes"
    declared = [name for path in files for name in DEPLOYED_RESOURCE.findall(path.read_text())]
    parsed = [name.split("__")[-1] for name in template["resources"]]  # pycep: parent__child
    assert sorted(parsed) == sorted(declared)
    assert not any(res.get("existing") for res in template["resources"].values())
    assert template["globals"]["scope"]["value"] == "resourceGroup"


# --------------------------------------------------------------------------------------------
# Function app on Flex Consumption
# --------------------------------------------------------------------------------------------


def test_plan_is_flex_consumption_on_linux(template):
    _, plan = only_resource(template, "Microsoft.Web/serverfarms")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True  # Linux


def test_function_app_identity_and_site_hardening(template):
    plan_name, _ = only_resource(template, "Microsoft.Web/serverfarms")
    _, site = only_resource(template, "Microsoft.Web/sites")
    assert site["kind"] == "functionapp,linux"
    assert site["identity"] == {"type": "SystemAssigned"}
    props = site["properties"]
    assert property_path(props["serverFarmId"]) == [plan_name, "id"]
    assert props["httpsOnly"] is True
    site_config = props["siteConfig"]
    assert site_config["minTlsVersion"] == "1.2"
    # Flex Consumption rejects ftpsState (ARM 51021) and has no FTP publishing; FTP stays off
    # through the basic-auth publishing policies (test_basic_auth_publishing_is_off).
    assert "ftpsState" not in site_config
    assert site_config["remoteDebuggingEnabled"] is False
    assert site_config["http20Enabled"] is True


def test_basic_auth_publishing_is_off(template):
    site_name, _ = only_resource(template, "Microsoft.Web/sites")
    policies = resources_of_type(template, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    by_name = {body(p)["name"]: body(p) for p in policies.values()}
    assert set(by_name) == {"ftp", "scm"}
    for policy in by_name.values():
        assert policy["parent"] == site_name
        assert policy["properties"]["allow"] is False


def test_function_app_config_runtime_scale_and_package(template):
    storage_name, _ = only_resource(template, "Microsoft.Storage/storageAccounts")
    _, site = only_resource(template, "Microsoft.Web/sites")
    config = site["properties"]["functionAppConfig"]
    params = template["parameters"]

    assert config["runtime"]["name"] == "python"
    version = params[config["runtime"]["version"]]
    assert version["default"] == "3.11"
    assert allowed_values(version) == ["3.11", "3.12"], "3.10 is end of life (October 2026)"

    scale = config["scaleAndConcurrency"]
    memory = params[scale["instanceMemoryMB"]]
    assert memory["type"] == "int"
    assert memory["default"] == 2048
    assert allowed_values(memory) == [512, 2048, 4096]
    count = params[scale["maximumInstanceCount"]]
    assert count["type"] == "int"
    # Flex Consumption's documented floor is 40 (lower is a regional preview).
    assert decorator_argument(count, "min_value") == 40
    assert decorator_argument(count, "max_value") == 1000
    assert 40 <= count["default"] <= 1000

    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {"type": "SystemAssignedIdentity"}
    containers = resources_of_type(
        template, "Microsoft.Storage/storageAccounts/blobServices/containers"
    )
    assert [body(c)["name"] for c in containers.values()] == ["deploymentContainerName"]
    assert body(next(iter(containers.values())))["properties"]["publicAccess"] == "None"
    assert (
        storage["value"]
        == f"${{{storage_name}.properties.primaryEndpoints.blob}}${{deploymentContainerName}}"
    )


def test_app_settings_resource_waits_for_the_role_assignments(template):
    """Settings go in after the identity can read storage and Key Vault, so the host's
    first start resolves the Key Vault references instead of caching a failure."""
    configs = resources_of_type(template, "Microsoft.Web/sites/config")
    (settings_resource,) = configs.values()
    assignments = set(resources_of_type(template, "Microsoft.Authorization/roleAssignments"))
    assert assignments <= set(body(settings_resource)["dependsOn"])


# --------------------------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------------------------


def test_storage_is_entra_only_and_tls12(template):
    _, storage = only_resource(template, "Microsoft.Storage/storageAccounts")
    props = storage["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True


def test_storage_account_name_is_valid(template):
    """checkov cannot evaluate uniqueString() (CKV_AZURE_43 is skipped), so check it here:
    'st' + uniqueString (13 lowercase alphanumerics) = 15 characters, within 3-24."""
    _, storage = only_resource(template, "Microsoft.Storage/storageAccounts")
    assert storage["name"] == "storageAccountName"
    assert variable_value(template, "storageAccountName") == "st${resourceToken}"
    token = variable_value(template, "resourceToken")["function"]
    assert token["type"] == "to_lower"
    assert token["parameters"]["string_to_change"]["function"]["type"] == "unique_string"


def test_outbox_queues_and_ledger_table_exist(template):
    storage_name, _ = only_resource(template, "Microsoft.Storage/storageAccounts")
    queue_service_name, queue_service = only_resource(
        template, "Microsoft.Storage/storageAccounts/queueServices"
    )
    table_service_name, table_service = only_resource(
        template, "Microsoft.Storage/storageAccounts/tableServices"
    )
    assert queue_service["parent"] == storage_name
    assert table_service["parent"] == storage_name

    queues = resources_of_type(template, "Microsoft.Storage/storageAccounts/queueServices/queues")
    assert sorted(body(q)["name"] for q in queues.values()) == [
        "halo-outbox",
        "halo-outbox-poison",
        "signl4-outbox",
        "signl4-outbox-poison",
    ]
    assert {body(q)["parent"] for q in queues.values()} == {queue_service_name}

    tables = resources_of_type(template, "Microsoft.Storage/storageAccounts/tableServices/tables")
    assert [body(t)["name"] for t in tables.values()] == ["relayledger"]
    assert {body(t)["parent"] for t in tables.values()} == {table_service_name}


def test_host_storage_is_reached_with_the_managed_identity(template):
    storage_name, _ = only_resource(template, "Microsoft.Storage/storageAccounts")
    settings = app_settings(template)
    assert property_path(settings["AzureWebJobsStorage__accountName"]) == [storage_name, "name"]
    present = FORBIDDEN_APP_SETTINGS & set(settings)
    assert not present, f"not allowed on Flex Consumption / key-based: {sorted(present)}"
    assert "listKeys" not in json.dumps(settings)
    assert "AccountKey" not in json.dumps(settings)


# --------------------------------------------------------------------------------------------
# Monitoring
# --------------------------------------------------------------------------------------------


def test_application_insights_takes_entra_auth_only(template):
    workspace_name, _ = only_resource(template, "Microsoft.OperationalInsights/workspaces")
    insights_name, insights = only_resource(template, "Microsoft.Insights/components")
    assert insights["properties"]["DisableLocalAuth"] is True
    assert property_path(insights["properties"]["WorkspaceResourceId"]) == [workspace_name, "id"]
    settings = app_settings(template)
    assert property_path(settings["APPLICATIONINSIGHTS_CONNECTION_STRING"]) == [
        insights_name,
        "properties",
        "ConnectionString",
    ]
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD"


# --------------------------------------------------------------------------------------------
# Key Vault and secrets
# --------------------------------------------------------------------------------------------


def test_key_vault_is_rbac_with_soft_delete_and_purge_protection(template):
    _, vault = only_resource(template, "Microsoft.KeyVault/vaults")
    props = vault["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enableSoftDelete"] is True
    assert props["enablePurgeProtection"] is True


def test_signl4_team_secret_is_a_key_vault_reference_to_the_stored_secret(template):
    vault_name, _ = only_resource(template, "Microsoft.KeyVault/vaults")
    target = key_vault_reference_target(app_settings(template)["SIGNL4_TEAM_SECRET"])
    assert target is not None, "SIGNL4_TEAM_SECRET must be a Key Vault reference"
    secret = template["resources"][target]
    assert secret["type"] == "Microsoft.KeyVault/vaults/secrets"
    assert "condition" not in secret["config"], "the team secret is always stored"
    assert body(secret)["parent"] == vault_name
    assert body(secret)["properties"]["value"] == "signl4TeamSecret"
    parameter = template["parameters"]["signl4TeamSecret"]
    assert is_secure(parameter)
    assert parameter["default"] is None, "a secret must not have a default"


@pytest.mark.parametrize(
    ("setting_name", "parameter_name", "secret_name"),
    [
        ("HALO_WEBHOOK_PASSWORD", "haloWebhookPassword", "halo-webhook-password"),
        ("HALO_CLIENT_SECRET", "haloClientSecret", "halo-client-secret"),
    ],
)
def test_halo_webhook_password_is_stored_only_when_given(
    template, setting_name, parameter_name, secret_name
):
    """The Basic auth password and (two-way sync) the Halo API client secret alike."""
    vault_name, _ = only_resource(template, "Microsoft.KeyVault/vaults")
    parameter = template["parameters"][parameter_name]
    assert is_secure(parameter)
    assert parameter["default"] == ""

    setting = app_settings(template)[setting_name]["operator"]
    assert setting["type"] == "conditional"
    condition = setting["operands"]["condition"]["function"]
    assert condition == {"type": "empty", "parameters": {"item_to_test": parameter_name}}
    assert setting["operands"]["true_value"] == ""
    # The reference is built from the vault's URI and the secret's name, not read from the
    # conditional secret (BCP318; see test_no_property_of_a_conditional_resource_is_read).
    reference = setting["operands"]["false_value"]
    match = re.fullmatch(
        r"@Microsoft\.KeyVault\(SecretUri=\$\{(\w+)\.properties\.vaultUri\}secrets/\$\{(\w+)\}/\)",
        reference,
    )
    assert match, reference
    assert match.group(1) == vault_name
    (target,) = (
        name
        for name, res in resources_of_type(template, "Microsoft.KeyVault/vaults/secrets").items()
        if body(res)["name"] == match.group(2)
    )
    assert variable_value(template, match.group(2)) == secret_name

    secret = template["resources"][target]
    assert secret["type"] == "Microsoft.KeyVault/vaults/secrets"
    assert secret["config"]["condition"] == {
        "operator": {"type": "not", "operands": {"bool_value": {"function": condition}}}
    }
    assert body(secret)["parent"] == vault_name
    assert body(secret)["properties"]["value"] == parameter_name
    # The settings wait for it explicitly (a read would have made the dependency implicit).
    (settings_resource,) = resources_of_type(template, "Microsoft.Web/sites/config").values()
    assert target in body(settings_resource)["dependsOn"]


# Secure parameters that cannot be Key Vault references, and why (each has its own test).
NOT_IN_KEY_VAULT = {
    "alertSignl4WebhookUrl": "an action group's webhook receiver takes a URL, not a reference",
}


def test_secure_parameters_reach_nothing_but_key_vault_secrets(template):
    secure = {name for name, p in template["parameters"].items() if is_secure(p)}
    assert {
        "signl4TeamSecret",
        "haloWebhookPassword",
        "relayInboundToken",
        "haloClientSecret",
    } <= secure
    assert set(NOT_IN_KEY_VAULT) <= secure
    stored = [
        body(r)["properties"]["value"]
        for r in resources_of_type(template, "Microsoft.KeyVault/vaults/secrets").values()
    ]
    # A stored value is a parameter, or a variable computed from parameters.
    stored_text = json.dumps(
        [variable_value(template, v) if v in template["variables"] else v for v in stored]
    )
    for param in secure - set(NOT_IN_KEY_VAULT):
        assert re.search(rf"\b{param}\b", stored_text), f"{param} is not stored in Key Vault"
    for name, variable in template["variables"].items():
        # A variable may test a secret for emptiness (alertReceiversGiven), never carry it.
        text = json.dumps(variable["value"])
        for param in secure:
            text = text.replace(json.dumps({"item_to_test": param}), "")
        used = [p for p in secure if re.search(rf"\b{p}\b", text)]
        assert not used or name in stored, f"variable {name} carries {used} outside Key Vault"
    for name, value in app_settings(template).items():
        if isinstance(value, str):
            assert value not in secure, f"app setting {name} holds a secure parameter in clear"
            for param in secure:
                assert f"${{{param}}}" not in value, f"app setting {name} interpolates {param}"
        else:
            # An expression may only test a secret for emptiness, never carry it.
            text = json.dumps(value)
            for param in secure:
                text = text.replace(json.dumps({"item_to_test": param}), "")
                assert not re.search(rf"\b{param}\b", text), f"{name} uses secure parameter {param}"


# Properties of a resource Bicep can name without deploying it (resourceId()-style): reading
# them off a conditional resource is fine; anything else is a runtime reference() to a resource
# that may not exist (Bicep >= 0.36: warning BCP318; ARM: the deployment fails).
RESOURCE_INFO_PROPERTIES = {"id", "name", "type", "apiVersion"}


def conditional_resource_reads(template: dict[str, Any]) -> list[str]:
    """Every `x.prop...` expression (or `${x.prop...}` interpolation) in the template that reads
    a property other than id/name/type/apiVersion of a conditional resource `x`."""
    conditional = {
        name for name, res in template["resources"].items() if "condition" in res["config"]
    }
    found: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, str):
            for inner in re.findall(r"\$\{([^}]*)\}", node):
                for symbol, prop in re.findall(r"\b(\w+)\.(\w+)", inner):
                    if symbol in conditional and prop not in RESOURCE_INFO_PROPERTIES:
                        found.append(f"{where}: {symbol}.{prop}")
        elif isinstance(node, dict):
            operator = node.get("operator")
            if isinstance(operator, dict) and operator.get("type") == "property_accessor":
                path = property_path(node)
                if path[0] in conditional and path[1] not in RESOURCE_INFO_PROPERTIES:
                    found.append(f"{where}: {'.'.join(map(str, path))}")
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{where}[{index}]")

    for section in ("resources", "variables", "outputs"):
        for name, entry in (template.get(section) or {}).items():
            walk(entry, f"{section}.{name}")
    return found


def test_no_property_of_a_conditional_resource_is_read(template):
    """A Key Vault reference to the optional Halo password secret is built from the vault and
    the secret's name; the alert rules name the optional action group only by id."""
    assert conditional_resource_reads(template) == []


def test_the_conditional_read_check_sees_a_planted_read():
    planted = BicepParser().parse(
        text="""
param on bool
resource kv 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: 'kv'
}
resource maybe 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (on) {
  parent: kv
  name: 's'
}
var byId = maybe.id
var interpolated = '@Microsoft.KeyVault(SecretUri=${maybe.properties.secretUri})'
output direct string = maybe.properties.secretUri
"""
    )
    assert sorted(conditional_resource_reads(planted)) == [
        "outputs.direct.value: maybe.properties.secretUri",
        "variables.interpolated.value: maybe.properties",
    ]


def test_relay_inbound_token_is_always_stored_and_stable_across_redeploys(template):
    """The webhook route's token: a Key Vault reference to a secret that always exists (the app
    would otherwise fail to read any setting), given by the deployer or derived from the team
    secret. Never newGuid(): a fresh token on every deployment would lock Halo out."""
    vault_name, _ = only_resource(template, "Microsoft.KeyVault/vaults")
    target = key_vault_reference_target(app_settings(template)["RELAY_INBOUND_TOKEN"])
    assert target is not None, "RELAY_INBOUND_TOKEN must be a Key Vault reference"
    secret = template["resources"][target]
    assert "condition" not in secret["config"], "the token is always stored"
    assert body(secret)["parent"] == vault_name
    assert body(secret)["name"] == "relay-inbound-token"

    parameter = template["parameters"]["relayInboundToken"]
    assert is_secure(parameter) and parameter["default"] == ""
    value = variable_value(template, body(secret)["properties"]["value"])["operator"]
    assert value["type"] == "conditional"
    assert value["operands"]["condition"]["function"] == {
        "type": "empty",
        "parameters": {"item_to_test": "relayInboundToken"},
    }
    assert value["operands"]["false_value"] == "relayInboundToken"
    derived = value["operands"]["true_value"]["function"]
    assert derived["type"] == "guid", "a name-based hash: the same value on every redeploy"
    assert derived["parameters"]["base_string"] == "signl4TeamSecret", "not computable without it"
    code = re.sub(r"//.*", "", "\n".join(path.read_text() for path in module_files()))
    assert "newGuid" not in code, "newGuid() would rotate the token on every deployment"


# --------------------------------------------------------------------------------------------
# Role assignments
# --------------------------------------------------------------------------------------------


def resource_named(template: dict[str, Any], type_: str, name: str) -> str:
    """The symbolic name of the one resource of this type whose `name` property is `name`."""
    (found,) = (
        symbol
        for symbol, resource in resources_of_type(template, type_).items()
        if body(resource)["name"] == name
    )
    return found


def test_role_assignments_are_least_privilege_on_the_narrowest_scope(template):
    """Blob data on the account (the host creates its own containers there); the relay's queue
    and table roles only on the queues and the table its code uses."""
    site_name, _ = only_resource(template, "Microsoft.Web/sites")
    storage_name, _ = only_resource(template, "Microsoft.Storage/storageAccounts")
    vault_name, _ = only_resource(template, "Microsoft.KeyVault/vaults")
    insights_name, _ = only_resource(template, "Microsoft.Insights/components")
    queue_type = "Microsoft.Storage/storageAccounts/queueServices/queues"
    outbox_queue = resource_named(template, queue_type, OUTBOX_QUEUE)
    poison_queue = resource_named(template, queue_type, POISON_QUEUE)
    halo_queue = resource_named(template, queue_type, HALO_OUTBOX_QUEUE)
    halo_poison_queue = resource_named(template, queue_type, HALO_POISON_QUEUE)
    table_type = "Microsoft.Storage/storageAccounts/tableServices/tables"
    ledger_table = resource_named(template, table_type, TABLE_NAME)

    granted = set()
    for name, resource in resources_of_type(
        template, "Microsoft.Authorization/roleAssignments"
    ).items():
        assignment = body(resource)
        props = assignment["properties"]
        role_id = props["roleDefinitionId"]["function"]
        assert role_id["type"] == "subscription_resource_id", name
        assert role_id["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
        role = role_id["parameters"]["resource_name_1"]
        guid = template["variables"][role]["value"] if role in template["variables"] else role
        assert property_path(props["principalId"]) == [site_name, "identity", "principalId"], name
        assert props["principalType"] == "ServicePrincipal"
        assert "scope" in assignment, f"{name} would apply to the whole resource group"
        scope = assignment["scope"]
        # The assignment's name is pinned to guid(scope.id, app.id, role): one per role and
        # scope, stable across redeployments (a new name for an existing assignment fails
        # with RoleAssignmentExists).
        assignment_name = assignment["name"]["function"]
        assert assignment_name["type"] == "guid", name
        parts = assignment_name["parameters"]
        assert property_path(parts["base_string"]) == [scope, "id"], name
        assert property_path(parts["extra_string_1"]) == [site_name, "id"], name
        assert parts["extra_string_2"] == role, name
        assert set(parts) == {"base_string", "extra_string_1", "extra_string_2"}, name
        assert (guid, scope) not in granted, f"role {guid} assigned twice on {scope}"
        granted.add((guid, scope))

    assert granted == {
        (ROLE_STORAGE_BLOB_DATA_OWNER, storage_name),
        (ROLE_STORAGE_QUEUE_DATA_CONTRIBUTOR, outbox_queue),
        (ROLE_STORAGE_QUEUE_DATA_CONTRIBUTOR, poison_queue),
        (ROLE_STORAGE_QUEUE_DATA_CONTRIBUTOR, halo_queue),
        (ROLE_STORAGE_QUEUE_DATA_CONTRIBUTOR, halo_poison_queue),
        (ROLE_STORAGE_TABLE_DATA_CONTRIBUTOR, ledger_table),
        (ROLE_KEY_VAULT_SECRETS_USER, vault_name),
        (ROLE_MONITORING_METRICS_PUBLISHER, insights_name),
    }


# --------------------------------------------------------------------------------------------
# Relay settings: every one the code reads is an app setting, with the code's default
# --------------------------------------------------------------------------------------------


def test_every_relay_setting_is_an_app_setting(template):
    expected = RelaySettings.setting_names(include_local_only=False)
    assert expected, "RelaySettings lists no settings"
    missing = [name for name in expected if name not in app_settings(template)]
    assert not missing, (
        f"add to infra/modules/appsettings.bicep (and a parameter in main.bicep): {missing}"
    )


# Settings whose value the template derives from what it deploys, not from a parameter.
COMPUTED_BY_TEMPLATE = {
    "SIGNL4_TEAM_SECRET": "Key Vault reference",
    "HALO_WEBHOOK_PASSWORD": "Key Vault reference when set",
    "HALO_CLIENT_SECRET": "Key Vault reference when set",
    "RELAY_INBOUND_TOKEN": "Key Vault reference (given, or derived from the team secret)",
    "SIGNL4_TEAM_SECRETS": "Key Vault reference (routing targets' secrets, one JSON object)",
    "AzureWebJobsStorage__accountName": "the storage account's name (identity-based connection)",
}


def test_relay_setting_parameters_default_to_the_codes_defaults(template):
    """Each non-secret relay setting is a template parameter whose default, read by the app,
    gives the same value as the code's own default."""
    settings = app_settings(template)
    params = template["parameters"]
    code_defaults = RelaySettings.from_env({})
    for name in RelaySettings.setting_names(include_local_only=False):
        value = settings.get(name)
        if value is None:
            continue  # reported by test_every_relay_setting_is_an_app_setting
        if key_vault_reference_target(value) or isinstance(value, dict):
            # secrets (Key Vault references, checked above) and names of deployed resources
            assert name in COMPUTED_BY_TEMPLATE, f"{name} is computed, not a parameter"
            continue
        read = parameters_read(template, value)
        assert len(read) == 1, f"{name} must be set from one template parameter, not {value!r}"
        (parameter,) = read
        assert isinstance(params[parameter]["default"], str), f"{parameter} needs a string default"
        default = evaluate(template, value, {})  # through its check, if it has one
        from_template = RelaySettings.from_env({name: default})
        field = next(f for f, info in RelaySettings.model_fields.items() if info.alias == name)
        assert getattr(from_template, field) == getattr(code_defaults, field), (
            f"parameter {parameter} default {default!r} differs from the code's default for {name}"
        )


@pytest.mark.parametrize(
    ("setting", "parameter"),
    [("SIGNL4_WEBHOOK_URL", "signl4WebhookUrl"), ("HALO_BASE_URL", "haloBaseUrl")],
)
def test_url_parameters_take_https_only(template, setting, parameter):
    """The SIGNL4 URL carries the team secret in its path, and the Halo link opens a Halo
    session: plain http fails the deployment, naming the parameter. (The app refuses it too,
    shared/settings.py, but only once it runs; it allows loopback http for the tests, which
    has no use in Azure.)"""
    value = app_settings(template)[setting]
    assert parameters_read(template, value) == {parameter}
    for url in ("https://connect.signl4.com/webhook/", "HTTPS://yourcompany.halopsa.com"):
        assert evaluate(template, value, {parameter: url}) == url
    for url in (
        "http://connect.signl4.com/webhook/",
        "http://127.0.0.1:8080/webhook/",
        "ftp://connect.signl4.com/webhook/",
        "connect.signl4.com/webhook/",
    ):
        with pytest.raises(DeploymentFails, match=rf"^{parameter} must "):
            evaluate(template, value, {parameter: url})


def test_halo_base_url_may_stay_empty(template):
    assert evaluate(template, app_settings(template)["HALO_BASE_URL"], {"haloBaseUrl": ""}) == ""


# --------------------------------------------------------------------------------------------
# Alerting: an action group and three log alert rules over the relay's own log lines
# --------------------------------------------------------------------------------------------

ALERT_RULE_TYPE = "Microsoft.Insights/scheduledQueryRules"
ACTION_GROUP_TYPE = "Microsoft.Insights/actionGroups"
SHARED_SOURCES = sorted((ROOT / "shared").rglob("*.py"))


def alert_query(template: dict[str, Any], rule: str) -> tuple[str, list[Any]]:
    """A rule's KQL as written (the format string, if any) and the values format() puts in."""
    (criterion,) = body(template["resources"][rule])["properties"]["criteria"]["allOf"]
    query = criterion["query"]
    query = variable_value(template, query) if query in template["variables"] else query
    if isinstance(query, str):
        return query, []
    call = query["function"]
    assert call["type"] == "format", query
    args = call["parameters"]
    return args["format_string"], [args[f"arg_{i}"] for i in range(1, len(args))]


def test_alert_parameters_are_infra_only_with_safe_defaults(template):
    """On by default, nobody notified until an address or URL is given; thresholds bounded."""
    params = template["parameters"]
    assert params["alertsEnabled"]["type"] == "bool" and params["alertsEnabled"]["default"] is True
    assert params["alertEmailAddress"]["default"] == ""
    url = params["alertSignl4WebhookUrl"]
    assert is_secure(url) and url["default"] == "", "the URL carries a SIGNL4 team secret"
    frequency = params["alertEvaluationFrequency"]
    assert frequency["default"] == "PT5M"
    assert frequency["default"] in allowed_values(frequency)
    assert all(re.fullmatch(r"PT\d+[MH]", v) for v in allowed_values(frequency))
    bounds = {
        name: (decorator_argument(params[name], "min_value"), params[name]["default"])
        for name in (
            "alertServerErrorPercent",
            "alertServerErrorMinRequests",
            "alertBacklogMinutes",
        )
    }
    assert bounds == {
        "alertServerErrorPercent": (1, 10),
        "alertServerErrorMinRequests": (1, 5),
        "alertBacklogMinutes": (5, 15),
    }
    assert decorator_argument(params["alertServerErrorPercent"], "max_value") == 100
    # Not relay settings: nothing of the alerting reaches the app.
    settings_text = json.dumps(app_settings(template))
    assert not re.search(r"\balert\w*", settings_text)


def test_action_group_exists_when_alerts_are_on_and_someone_is_to_be_told(template):
    name, group = only_resource(template, ACTION_GROUP_TYPE)
    condition = template["resources"][name]["config"]["condition"]
    given = "alertReceiversGiven"
    for email, url, expected in [
        ("", "", False),
        ("ops@example.com", "", True),
        ("", "https://connect.signl4.com/webhook/s3cret", True),
        ("ops@example.com", "https://connect.signl4.com/webhook/s3cret", True),
    ]:
        values = {"alertEmailAddress": email, "alertSignl4WebhookUrl": url}
        assert evaluate(template, given, values) is expected, (email, url)
        for enabled in (True, False):
            values["alertsEnabled"] = enabled
            assert evaluate(template, condition, values) is (enabled and expected)
    assert group["location"] == "Global"
    props = group["properties"]
    assert props["enabled"] is True
    assert 1 <= len(props["groupShortName"]) <= 12  # Azure's limit (it is the SMS sender name)

    values = {"alertEmailAddress": "ops@example.com", "alertSignl4WebhookUrl": ""}
    (email,) = evaluate(template, props["emailReceivers"], values)
    assert email["emailAddress"] == "alertEmailAddress" and email["useCommonAlertSchema"] is True
    assert evaluate(template, props["webhookReceivers"], values) == []
    assert evaluate(template, props["emailReceivers"], {"alertEmailAddress": ""}) == []


def test_the_signl4_alert_webhook_takes_https_only(template):
    _, group = only_resource(template, ACTION_GROUP_TYPE)
    receivers = group["properties"]["webhookReceivers"]
    good = "https://connect.signl4.com/webhook/s3cret"
    (receiver,) = evaluate(template, receivers, {"alertSignl4WebhookUrl": good})
    assert receiver["useCommonAlertSchema"] is True
    assert evaluate(template, receiver["serviceUri"], {"alertSignl4WebhookUrl": good}) == good
    for bad in ("http://connect.signl4.com/webhook/s3cret", "connect.signl4.com/webhook/s3cret"):
        with pytest.raises(DeploymentFails, match=r"^alertSignl4WebhookUrl must "):
            evaluate(template, receiver["serviceUri"], {"alertSignl4WebhookUrl": bad})


def test_the_signl4_alert_webhook_url_goes_to_the_action_group_only(template):
    """The one secure parameter outside Key Vault: only in the action group's webhook receiver
    (never a variable, an app setting, an output or another resource)."""
    group_name, group = only_resource(template, ACTION_GROUP_TYPE)
    param = "alertSignl4WebhookUrl"
    pattern = rf"\b{param}\b"
    for name, resource in template["resources"].items():
        text = json.dumps(body(resource))
        if name != group_name:
            assert not re.search(pattern, text), f"{name} uses {param}"
    outside = {k: v for k, v in group["properties"].items() if k != "webhookReceivers"}
    assert not re.search(pattern, json.dumps(outside))
    for name, variable in template["variables"].items():
        # tested for emptiness (alertReceiversGiven), never carried
        text = json.dumps(variable["value"]).replace(json.dumps({"item_to_test": param}), "")
        assert not re.search(pattern, text), name
    assert not re.search(pattern, json.dumps(template["outputs"]))


def test_alert_rules_watch_application_insights_and_notify_the_action_group(template):
    insights_name, _ = only_resource(template, "Microsoft.Insights/components")
    group_name, _ = only_resource(template, ACTION_GROUP_TYPE)
    rules = resources_of_type(template, ALERT_RULE_TYPE)
    # Issue 23 added the optional silence rule (on only with haloSilenceHours > 0).
    assert set(rules) == {"poisonAlert", "serverErrorAlert", "backlogAlert", "haloSilenceAlert"}
    for name, rule in rules.items():
        if name != "haloSilenceAlert":
            assert rule["config"]["condition"] == "alertsEnabled", name
        assert body(rule)["kind"] == "LogAlert"
        props = body(rule)["properties"]
        assert props["enabled"] is True
        assert props["severity"] in (1, 2), name
        assert [property_path(scope) for scope in props["scopes"]] == [[insights_name, "id"]]
        assert props["evaluationFrequency"] == "alertEvaluationFrequency"
        assert props["windowSize"] == "alertEvaluationFrequency"
        (criterion,) = props["criteria"]["allOf"]
        # Every query returns one row per problem: any row fires.
        assert (criterion["timeAggregation"], criterion["operator"], criterion["threshold"]) == (
            "Count",
            "GreaterThan",
            0,
        ), name
        actions = props["actions"]["actionGroups"]["operator"]
        assert actions["type"] == "conditional"
        assert actions["operands"]["condition"] == "alertReceiversGiven"
        assert [property_path(a) for a in actions["operands"]["true_value"]] == [[group_name, "id"]]
        assert actions["operands"]["false_value"] == []
    # A poison line is news each time; the rate and the backlog are states that clear.
    assert body(rules["poisonAlert"])["properties"]["autoMitigate"] is False
    assert body(rules["serverErrorAlert"])["properties"]["autoMitigate"] is True
    assert body(rules["backlogAlert"])["properties"]["autoMitigate"] is True
    assert body(rules["haloSilenceAlert"])["properties"]["autoMitigate"] is True


def test_the_halo_silence_alert_is_off_by_default_and_on_with_hours(template):
    """Optional: no rule unless haloSilenceHours > 0 (and alerts are on); bounded so its look
    back fits the rule's query range (two days)."""
    param = template["parameters"]["haloSilenceHours"]
    assert (param["type"], param["default"]) == ("int", 0)
    assert decorator_argument(param, "min_value") == 0
    longest = decorator_argument(param, "max_value")
    condition = template["resources"]["haloSilenceAlert"]["config"]["condition"]
    for enabled, hours, expected in [
        (True, 0, False),
        (True, 1, True),
        (False, 24, False),
        (True, longest, True),
    ]:
        values = {"alertsEnabled": enabled, "haloSilenceHours": hours}
        assert evaluate(template, condition, values) is expected, (enabled, hours)
    props = body(template["resources"]["haloSilenceAlert"])["properties"]
    assert props["overrideQueryTimeRange"] == "P2D" and longest <= 48
    query, args = alert_query(template, "haloSilenceAlert")
    assert args == ["haloSilenceHours"]
    assert query.split()[:4] == ["let", "silence", "=", "{0}h;"]
    assert "where timestamp > ago(silence)" in query
    # count() over no rows is one row of 0: silence returns a row, traffic returns none.
    assert "summarize calls = count()" in query and "where calls == 0" in query


def test_alert_queries_match_the_lines_the_relay_logs(template):
    """Each prefix a query filters on is the start of a log format string in shared/, so a
    renamed log line breaks this test instead of silencing the alert."""
    code = "\n".join(path.read_text() for path in SHARED_SOURCES)
    prefixes = set()
    for rule in ("poisonAlert", "serverErrorAlert", "backlogAlert"):
        query, _ = alert_query(template, rule)
        prefixes |= set(re.findall(r'startswith "([^"]+)"', query))
    assert prefixes == {"poison externalId=", "outbox externalId=", "relay externalId="}
    for prefix in prefixes:
        assert f'"{prefix}%s ' in code, f"no log line starts with {prefix!r}"
    # The poison rule counts requests (never sampled); tests/infra/test_poison_telemetry.py.
    poison, _ = alert_query(template, "poisonAlert")
    assert poison.split()[0] == "requests"
    # The queued marker the backlog query looks for is what the relay appends to its decision.
    backlog, _ = alert_query(template, "backlogAlert")
    assert 'contains "(queued)"' in backlog
    assert '" (queued)"' in code


def test_server_error_alert_fires_on_the_5xx_share_of_enough_http_requests(template):
    query, args = alert_query(template, "serverErrorAlert")
    assert args == ["alertServerErrorMinRequests", "alertServerErrorPercent"]
    assert "requests" in query.split()[0] and "isnotempty(url)" in query
    assert "countif(toint(resultCode) >= 500)" in query
    (where,) = re.findall(r"^\| where (total .*)$", query, flags=re.M)
    # The KQL predicate is integer arithmetic with `and`: read as Python with the defaults.
    predicate = where.format(5, 10)

    def fires(total: int, failed: int) -> bool:
        return bool(eval(predicate, {"__builtins__": {}}, {"total": total, "failed": failed}))

    assert fires(10, 1)  # 10 %
    assert not fires(11, 1)  # 9 %
    assert fires(5, 5)
    assert not fires(4, 4), "too few requests to count"
    assert not fires(100, 0)


def test_backlog_alert_looks_past_its_window_for_events_queued_and_never_handled(template):
    query, args = alert_query(template, "backlogAlert")
    assert args == ["alertBacklogMinutes"]
    assert "let overdue = {0}m;" in query
    assert "where timestamp < ago(overdue)" in query
    assert "join kind=leftouter handled on externalId" in query
    assert "where isnull(handledAt) or handledAt < queuedAt" in query
    props = body(template["resources"]["backlogAlert"])["properties"]
    # The query range (one day) must reach back past the longest overdue time allowed.
    assert props["overrideQueryTimeRange"] == "P1D"
    longest = decorator_argument(template["parameters"]["alertBacklogMinutes"], "max_value")
    assert longest * 60 < 24 * 3600
    # Poison and 5xx rules look at their window only.
    for rule in ("poisonAlert", "serverErrorAlert"):
        assert "overrideQueryTimeRange" not in body(template["resources"][rule])["properties"]


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------


def test_outputs_give_the_webhook_url_and_the_key_command_and_no_secret(template):
    site_name, site = only_resource(template, "Microsoft.Web/sites")
    outputs = template["outputs"]
    values = {name: output["value"] for name, output in outputs.items()}

    assert f"https://${{{site_name}.properties.defaultHostName}}/api/halopsa" in values.values()
    # SIGNL4 guide migration: the custom integration's base URL, with no token in it.
    assert (
        values["SIGNL4_GUIDE_BASE_URL"]
        == f"https://${{{site_name}.properties.defaultHostName}}/api/webhook/"
    )
    for name in ("HALO_WEBHOOK_URL_COMMAND", "SIGNL4_WEBHOOK_URL_COMMAND"):
        assert values[name].startswith("az functionapp function keys list "), name
        assert f"-n ${{{site['name']}}}" in values[name]
        assert "-g ${resourceGroup().name}" in values[name]
    assert values.get("AZURE_FUNCTION_APP_NAME") is not None

    secure = {name for name, p in template["parameters"].items() if is_secure(p)}
    secrets = {
        name
        for name in template["resources"]
        if template["resources"][name]["type"].endswith("/secrets")
    }
    for name, value in values.items():
        text = json.dumps(value)
        assert not re.search(r"password|secret", name, flags=re.I), name
        assert not re.search(r"\blist\w*\(|list_func|listKeys", text), f"{name} calls list*()"
        assert "ConnectionString" not in text, name
        # A URL command's `?code=` ends the literal its key is joined to at run time.
        assert not re.search(r"code=(?!\\\\')", text), f"{name} carries a function key"
        for param in secure:
            assert not re.search(rf"\b{param}\b", text), f"{name} exposes secure parameter {param}"
        for secret in secrets:
            assert not re.search(rf"\b{secret}\b", text), f"{name} references secret {secret}"


# --------------------------------------------------------------------------------------------
# Linter config, parameters file, azd
# --------------------------------------------------------------------------------------------


def test_bicepconfig_makes_the_secret_linter_rules_errors():
    rules = json.loads((INFRA / "bicepconfig.json").read_text())["analyzers"]["core"]["rules"]
    for rule in (
        "secure-parameter-default",
        "outputs-should-not-contain-secrets",
        "use-secure-value-for-secure-inputs",
    ):
        assert rules[rule]["level"] == "error", rule


def test_parameters_file_takes_secrets_from_the_environment(template):
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    unknown = set(parameters) - set(template["parameters"])
    assert not unknown, f"main.parameters.json sets parameters the template lacks: {unknown}"
    required = {n for n, p in template["parameters"].items() if p["default"] is None}
    assert required <= set(parameters), f"azd would prompt for {required - set(parameters)}"
    for name, entry in parameters.items():
        if is_secure(template["parameters"][name]):
            assert re.fullmatch(r"\$\{[A-Z0-9_]+=?\}", entry["value"]), (
                f"{name} must come from an azd environment variable, not a literal"
            )


def test_azure_yaml_deploys_this_directory_as_the_relay_function(template):
    text = (ROOT / "azure.yaml").read_text()
    service = re.search(r"^services:\n  relay:\n((?:    .*\n)+)", text, flags=re.M)
    assert service, "azure.yaml needs a `relay` service"
    fields = dict(re.findall(r"^    (\w+): (\S+)$", service.group(1), flags=re.M))
    assert fields == {"project": ".", "language": "python", "host": "function"}
    # azd finds the app to publish to by this tag on the site.
    _, site = only_resource(template, "Microsoft.Web/sites")
    tags = site["tags"]
    tags = variable_value(template, tags) if isinstance(tags, str) else tags
    tags = {key.strip("'"): value for key, value in tags.items()}  # pycep keeps key quotes
    assert tags.get("azd-service-name") == "relay"


# One key per route: each command reads the key of the function its URL names, never a host key.

URL_COMMANDS = {"HALO_WEBHOOK_URL_COMMAND": "halopsa", "SIGNL4_WEBHOOK_URL_COMMAND": "signl4"}
# What ARM puts in place of the interpolations, to read a command as a shell would get it.
DEPLOYED = {
    "${resourceGroup().name}": "rg-halo",
    "${functionAppName}": "func-halo",
    "${functionApp.properties.defaultHostName}": "func-halo.azurewebsites.net",
}
JOIN_QUERY = re.compile(r"join\('', \['(?P<prefix>[^']*)', (?P<key>\w+)\]\)")


def deployed_command(template: dict[str, Any], name: str) -> list[str]:
    """The output's command as a POSIX shell splits it, with deployed names filled in."""
    text = template["outputs"][name]["value"].replace("\\'", "'")
    for placeholder, value in DEPLOYED.items():
        text = text.replace(placeholder, value)
    assert "${" not in text, text
    return shlex.split(text)


def options(argv: list[str]) -> dict[str, str]:
    return {flag: value for flag, value in itertools.pairwise(argv) if flag[0] == "-"}


def printed_url(argv: list[str], keys: Mapping[str, str]) -> str:
    """What `az ... --query <join> -o tsv` prints for a function whose keys are `keys`."""
    match = JOIN_QUERY.fullmatch(options(argv)["--query"])
    assert match, options(argv)["--query"]
    return match["prefix"] + keys[match["key"]]


@pytest.mark.parametrize(("output", "function"), URL_COMMANDS.items())
def test_each_url_command_prints_its_routes_url_with_that_functions_own_key(
    template, indexed_functions, output, function
):
    argv = deployed_command(template, output)
    assert argv[:5] == ["az", "functionapp", "function", "keys", "list"]
    opts = options(argv)
    assert (opts["-g"], opts["-n"], opts["-o"]) == ("rg-halo", "func-halo", "tsv")
    assert opts["--function-name"] == function
    url = printed_url(argv, {"default": "KEY-of-" + function, "other": "x"})
    assert url == f"https://func-halo.azurewebsites.net/api/{function}?code=KEY-of-{function}"
    # The function the key belongs to serves that URL's route, behind a function key.
    [indexed] = [f for f in indexed_functions if f.get_function_name() == function]
    trigger = indexed.get_trigger().get_dict_repr()
    assert f"/api/{trigger['route']}?" in url
    assert str(trigger["authLevel"]).split(".")[-1].upper() == "FUNCTION"


def test_the_two_routes_get_two_different_keys(template):
    argvs = [deployed_command(template, name) for name in URL_COMMANDS]
    names = {options(argv)["--function-name"] for argv in argvs}
    urls = {printed_url(argv, {"default": "K"}).split("?")[0] for argv in argvs}
    assert len(names) == len(urls) == 2


def test_the_old_key_command_reads_the_halopsa_functions_key_not_the_host_key(template):
    """Kept for scripts that read FETCH_FUNCTION_CODE_COMMAND; it now prints a key that opens
    /api/halopsa only."""
    argv = deployed_command(template, "FETCH_FUNCTION_CODE_COMMAND")
    assert argv[:5] == ["az", "functionapp", "function", "keys", "list"]
    assert options(argv)["--function-name"] == "halopsa"
    assert options(argv)["--query"] == "default"
    assert "Deprecated" in decorator_argument(
        template["outputs"]["FETCH_FUNCTION_CODE_COMMAND"], "description"
    )


HOST_KEY = re.compile(
    r"functionKeys\.default|az functionapp keys (list|set)|--key-type functionKeys"
)


def test_no_output_or_instruction_hands_out_a_host_key(template):
    """A host key opens every function: with it, Halo's webhook key would post SIGNL4
    notifications too. Neither the deployment nor the README and docs/ nor halo-setup names one to use."""
    from shared.ops.halo_setup import setup_text

    for name, output in template["outputs"].items():
        assert not HOST_KEY.search(json.dumps(output["value"])), name
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    readme = "\n".join(page.read_text(encoding="utf-8") for page in pages)
    assert not HOST_KEY.search(readme), HOST_KEY.search(readme)
    text = setup_text("https://func-halo.azurewebsites.net")
    assert not HOST_KEY.search(text)
    for name in ("HALO_WEBHOOK_URL_COMMAND", "SIGNL4_WEBHOOK_URL_COMMAND"):
        assert name in readme and name in text
