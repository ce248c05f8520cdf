"""GET /api/health's backlog counts need a right on the queues they read: the template grants it.

The counts come from Get Queue Metadata (shared/entry/health.py, `get_queue_properties`), which needs
the action `Microsoft.Storage/storageAccounts/queueServices/queues/read` ("Permissions for
calling data operations", learn.microsoft.com/rest/api/storageservices/
authorize-with-azure-active-directory). The built-in roles' permissions below are Azure's
(learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage).
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.entry import health
from tests.infra.bicep_template import load_template
from tests.infra.test_infra import body, resource_named, resources_of_type

GET_QUEUE_METADATA = "Microsoft.Storage/storageAccounts/queueServices/queues/read"
QUEUE_TYPE = "Microsoft.Storage/storageAccounts/queueServices/queues"
_QUEUES = "Microsoft.Storage/storageAccounts/queueServices/queues"
# role id: (name, actions, dataActions)
QUEUE_ROLES: dict[str, tuple[str, set[str], set[str]]] = {
    "19e7f393-937e-4f77-808e-94535e297925": (
        "Storage Queue Data Reader",
        {f"{_QUEUES}/read"},
        {f"{_QUEUES}/messages/read"},
    ),
    "8a0f0c08-91a1-4084-bc3d-661d67233fed": (
        "Storage Queue Data Message Processor",
        set(),
        {f"{_QUEUES}/messages/read", f"{_QUEUES}/messages/process/action"},
    ),
    "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a": (
        "Storage Queue Data Message Sender",
        set(),
        {f"{_QUEUES}/messages/add/action"},
    ),
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": (
        "Storage Queue Data Contributor",
        {f"{_QUEUES}/delete", f"{_QUEUES}/read", f"{_QUEUES}/write"},
        {
            f"{_QUEUES}/messages/delete",
            f"{_QUEUES}/messages/read",
            f"{_QUEUES}/messages/write",
            f"{_QUEUES}/messages/process/action",
        },
    ),
}
READER = "19e7f393-937e-4f77-808e-94535e297925"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def roles_on(template: dict[str, Any], scope: str) -> set[str]:
    """The role ids the app's identity holds with exactly this resource as the scope."""
    found = set()
    for resource in resources_of_type(template, "Microsoft.Authorization/roleAssignments").values():
        assignment = body(resource)
        if assignment.get("scope") != scope:
            continue
        role = assignment["properties"]["roleDefinitionId"]["function"]["parameters"][
            "resource_name_1"
        ]
        found.add(template["variables"][role]["value"] if role in template["variables"] else role)
    return found


def test_the_least_queue_role_with_get_queue_metadata_is_the_reader() -> None:
    having = [rid for rid, (_, actions, _) in QUEUE_ROLES.items() if GET_QUEUE_METADATA in actions]
    least = min(having, key=lambda rid: len(QUEUE_ROLES[rid][1]) + len(QUEUE_ROLES[rid][2]))
    assert least == READER
    # The message roles the triggers could do with have no right to the count at all.
    assert GET_QUEUE_METADATA not in QUEUE_ROLES["8a0f0c08-91a1-4084-bc3d-661d67233fed"][1]


@pytest.mark.parametrize("queue", [health.OUTBOX_QUEUE, health.POISON_QUEUE])
def test_each_queue_health_counts_grants_get_queue_metadata_on_that_queue(
    template: dict[str, Any], queue: str
) -> None:
    scope = resource_named(template, QUEUE_TYPE, queue)
    roles = roles_on(template, scope)
    granting = {rid for rid in roles if GET_QUEUE_METADATA in QUEUE_ROLES[rid][1]}
    assert granting, f"nothing lets the app read {queue}'s message count"
    # Reader is least for the count alone; the Contributor the triggers need already has all of
    # Reader's rights, so a Reader assignment there would grant nothing.
    _, reader_actions, reader_data = QUEUE_ROLES[READER]
    for rid in granting:
        _, actions, data = QUEUE_ROLES[rid]
        assert reader_actions <= actions and reader_data <= data
    assert READER not in roles or roles == {READER}, "a Reader beside a Contributor adds nothing"
