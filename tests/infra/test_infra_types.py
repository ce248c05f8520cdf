"""infra/main.bicep and its modules (flattened, tests/infra/bicep_template.py) against the Bicep compiler's own resource type data (tests/infra/bicep_types.py over
the files vendored in tests/infra/infra_types/): no unknown property, wrong type, read-only property
or missing required property in any resource. Offline: no Bicep CLI, no Azure.

The checker is shown not to be blind on a small template that is clean as written, and wrong in
exactly one planted way per case below.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from pycep import BicepParser

from tests.infra.bicep_template import load_template
from tests.infra.bicep_types import (
    TYPES_ROOT,
    Finding,
    TypeLibrary,
    check_template,
    load_library,
    resource_types,
)

PARSER = BicepParser()


@pytest.fixture(scope="module")
def library() -> TypeLibrary:
    return load_library()


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


# --------------------------------------------------------------------------------------------
# The deployed template
# --------------------------------------------------------------------------------------------


def test_every_resource_type_in_the_template_has_vendored_type_data(template, library):
    missing = resource_types(template) - set(library.resources)
    assert not missing, (
        f"vendor types.json for {sorted(missing)} (tests/infra/infra_types/SOURCES.txt)"
    )


def test_every_resource_in_the_template_matches_its_type(template, library):
    findings = check_template(template, library)
    assert findings == [], "\n".join(
        f"{f.resource} {f.path}: {f.kind}: {f.detail}" for f in findings
    )


def test_every_vendored_file_is_used_by_the_template(template, library):
    """Vendored data stays what infra/ deploys (an unused file is a stale API version)."""
    used = {library.files[key] for key in resource_types(template)}
    vendored = set(TYPES_ROOT.rglob("types.json"))
    assert vendored == used, sorted(str(p.relative_to(TYPES_ROOT)) for p in vendored - used)


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_vendored_files_are_the_upstream_blobs_sources_names():
    """Each file is byte-identical to the Azure/bicep-types-az blob SOURCES.txt records."""
    sources = (TYPES_ROOT / "SOURCES.txt").read_text()
    assert re.search(r"^Commit:\s+[0-9a-f]{40}\b", sources, flags=re.M)
    recorded = dict(re.findall(r"^(generated/\S+/types\.json)\s+([0-9a-f]{40})\b", sources, re.M))
    vendored = {
        str(path.relative_to(TYPES_ROOT)): git_blob_id(path.read_bytes())
        for path in TYPES_ROOT.rglob("types.json")
    }
    assert vendored == recorded


# --------------------------------------------------------------------------------------------
# The checker is not blind: one planted error per case
# --------------------------------------------------------------------------------------------

CLEAN = """
param on bool = true
param retention int = 30
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
])
param skuName string = 'Standard_LRS'
var tags = {
  app: 'planted'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'stplanted'
  location: 'westeurope'
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    allowSharedKeyAccess: false
    minimumTlsVersion: 'TLS1_2'
  }
}

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-planted'
  location: 'westeurope'
  properties: {
    retentionInDays: retention
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = if (on) {
  name: 'func-planted'
  location: 'westeurope'
  kind: 'functionapp,linux'
  properties: {
    httpsOnly: on ? true : false
    functionAppConfig: {
      scaleAndConcurrency: {
        instanceMemoryMB: 2048
        maximumInstanceCount: 40
      }
    }
  }
}

resource ftp 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource group 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-planted'
  location: 'Global'
  properties: {
    enabled: true
    groupShortName: 'planted'
    emailReceivers: [
      {
        name: 'email'
        emailAddress: 'ops@example.com'
        useCommonAlertSchema: true
      }
    ]
  }
}

resource rule 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-planted'
  location: 'westeurope'
  properties: {
    severity: 1
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    scopes: [
      workspace.id
    ]
    criteria: {
      allOf: [
        {
          query: 'traces | where message startswith "poison "'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
        }
      ]
    }
    actions: {
      actionGroups: [
        group.id
      ]
    }
  }
}
"""

# (what is planted, text replaced, replacement, the one finding expected)
PLANTED = [
    (
        "unknown property (a typo)",
        "    allowSharedKeyAccess: false\n",
        "    allowSharedKeyAcess: false\n",
        Finding(
            "storage",
            "properties.allowSharedKeyAcess",
            "unknown-property",
            "not a property of StorageAccountPropertiesCreateParametersOrStorageAccountProperties",
        ),
    ),
    (
        "unknown top-level property",
        "  kind: 'functionapp,linux'\n",
        "  kind: 'functionapp,linux'\n  flavour: 'flex'\n",
        Finding("site", "flavour", "unknown-property", "not a property of Microsoft.Web/sites"),
    ),
    (
        "wrong type: a string where a bool goes",
        "    allowSharedKeyAccess: false\n",
        "    allowSharedKeyAccess: 'false'\n",
        Finding(
            "storage",
            "properties.allowSharedKeyAccess",
            "wrong-type",
            "'false' is string, expected boolean",
        ),
    ),
    (
        "wrong type: a string parameter where an int goes",
        "param retention int = 30\n",
        "param retention string = '30'\n",
        Finding(
            "workspace",
            "properties.retentionInDays",
            "wrong-type",
            "parameter retention is string, expected integer",
        ),
    ),
    (
        "wrong type: one branch of a condition",
        "    httpsOnly: on ? true : false\n",
        "    httpsOnly: on ? true : 'no'\n",
        Finding("site", "properties.httpsOnly", "wrong-type", "'no' is string, expected boolean"),
    ),
    (
        "wrong type: an object where an array goes (inside an array item)",
        "          operator: 'GreaterThan'\n",
        "          operator: 'GreaterThan'\n          dimensions: {}\n",
        Finding(
            "rule",
            "properties.criteria.allOf[0].dimensions",
            "wrong-type",
            "{} is object, expected Dimension[]",
        ),
    ),
    (
        "wrong type: a value outside a closed enum",
        "  name: 'ftp'\n",
        "  name: 'sftp'\n",
        Finding("ftp", "name", "wrong-type", "'sftp', expected one of 'ftp', 'scm'"),
    ),
    (
        "read-only property set",
        "    minimumTlsVersion: 'TLS1_2'\n",
        "    minimumTlsVersion: 'TLS1_2'\n    provisioningState: 'Succeeded'\n",
        Finding(
            "storage",
            "properties.provisioningState",
            "read-only",
            "StorageAccountPropertiesCreateParametersOrStorageAccountProperties"
            ".provisioningState is read-only",
        ),
    ),
    (
        "read-only property set inside an array item",
        "        useCommonAlertSchema: true\n",
        "        useCommonAlertSchema: true\n        status: 'Enabled'\n",
        Finding(
            "group",
            "properties.emailReceivers[0].status",
            "read-only",
            "EmailReceiver.status is read-only",
        ),
    ),
    (
        "missing required property",
        "    groupShortName: 'planted'\n",
        "",
        Finding(
            "group",
            "properties.groupShortName",
            "missing-required",
            "ActionGroup requires groupShortName",
        ),
    ),
    (
        "missing required property inside an array item",
        "        emailAddress: 'ops@example.com'\n",
        "",
        Finding(
            "group",
            "properties.emailReceivers[0].emailAddress",
            "missing-required",
            "EmailReceiver requires emailAddress",
        ),
    ),
    (
        "missing required top-level property (location)",
        "  name: 'alert-planted'\n  location: 'westeurope'\n",
        "  name: 'alert-planted'\n",
        Finding(
            "rule",
            "location",
            "missing-required",
            "Microsoft.Insights/scheduledQueryRules requires location",
        ),
    ),
    (
        "literal outside the type's bounds",
        "        maximumInstanceCount: 40\n",
        "        maximumInstanceCount: 'forty'\n",
        Finding(
            "site",
            "properties.functionAppConfig.scaleAndConcurrency.maximumInstanceCount",
            "wrong-type",
            "'forty' is string, expected integer",
        ),
    ),
    (
        "resource type with no type data (a mistyped API version)",
        "'Microsoft.Insights/actionGroups@2023-01-01'",
        "'Microsoft.Insights/actionGroups@2023-01-02'",
        Finding(
            "group",
            "",
            "unknown-resource-type",
            "no vendored type data for Microsoft.Insights/actionGroups@2023-01-02",
        ),
    ),
]


def test_the_planted_template_is_clean_as_written(library):
    assert check_template(PARSER.parse(text=CLEAN), library) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [(old, new, expected) for _, old, new, expected in PLANTED],
    ids=[case for case, *_ in PLANTED],
)
def test_a_planted_error_is_found_and_nothing_else(library, old, new, expected):
    assert CLEAN.count(old) == 1, "the planted case no longer matches the clean template"
    broken = PARSER.parse(text=CLEAN.replace(old, new))
    assert check_template(broken, library) == [expected]


def test_an_allowed_value_outside_a_closed_enum_is_found(library):
    """A parameter is checked by each of its @allowed values where the type is a closed set."""
    text = CLEAN.replace(
        "  kind: 'functionapp,linux'\n",
        "  kind: 'functionapp,linux'\n  identity: {\n    type: identityType\n  }\n",
    ).replace(
        "param on bool = true\n",
        "param on bool = true\n@allowed([\n  'SystemAssigned'\n  'Managed'\n])\n"
        "param identityType string = 'SystemAssigned'\n",
    )
    (finding,) = check_template(PARSER.parse(text=text), library)
    assert (finding.resource, finding.path, finding.kind) == (
        "site",
        "identity.type (@allowed 'Managed' of parameter identityType)",
        "wrong-type",
    )
    assert finding.detail.startswith("'Managed', expected 'SystemAssigned' | ")
