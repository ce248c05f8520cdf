"""The function app's wiring, checked the way the Python worker checks it at start-up."""

from __future__ import annotations

import inspect
import typing
from typing import Any

from azure.functions import meta

# What the host must find: route, auth level, methods, queues.
EXPECTED = {
    "halopsa": ("httpTrigger", {"route": "halopsa", "authLevel": "FUNCTION", "methods": ["POST"]}),
    "health": ("httpTrigger", {"route": "health", "authLevel": "ANONYMOUS", "methods": ["GET"]}),
    # SIGNL4's URL shape: anonymous for the host, the token in the path is the credential.
    "webhook": (
        "httpTrigger",
        {"route": "webhook/{token?}", "authLevel": "ANONYMOUS", "methods": ["POST"]},
    ),
    "signl4_outbox": (
        "queueTrigger",
        {"queueName": "signl4-outbox", "connection": "AzureWebJobsStorage"},
    ),
    "signl4_outbox_poison": (
        "queueTrigger",
        {"queueName": "signl4-outbox-poison", "connection": "AzureWebJobsStorage"},
    ),
    # Two-way sync: SIGNL4's outbound webhook (function key), its own outbox and poison queue.
    "signl4": ("httpTrigger", {"route": "signl4", "authLevel": "FUNCTION", "methods": ["POST"]}),
    "halo_outbox": (
        "queueTrigger",
        {"queueName": "halo-outbox", "connection": "AzureWebJobsStorage"},
    ),
    "halo_outbox_poison": (
        "queueTrigger",
        {"queueName": "halo-outbox-poison", "connection": "AzureWebJobsStorage"},
    ),
    # SIGNL4 heartbeat: the schedule is an app setting the template always sets.
    "heartbeat": ("timerTrigger", {"schedule": "%RELAY_HEARTBEAT_SCHEDULE%"}),
    # RELAY_ROUTES page_after_window: held pages go out when their window has ended.
    "held_pages": ("timerTrigger", {"schedule": "0 */5 * * * *"}),
}


def _dicts(function: Any) -> list[dict[str, Any]]:
    return [binding.get_dict_repr() for binding in function.get_bindings()]


def test_functions_and_triggers(indexed_functions: list[Any]) -> None:
    found = {f.get_function_name(): f for f in indexed_functions}
    assert set(found) == set(EXPECTED)
    for name, (trigger_type, expected) in EXPECTED.items():
        [trigger] = [b for b in _dicts(found[name]) if b["type"] == trigger_type]
        for key, value in expected.items():
            actual = trigger[key]
            if key == "authLevel":
                actual = str(actual).split(".")[-1].upper()
            if key == "methods":
                actual = [str(m).split(".")[-1].upper() for m in actual]
            assert actual == value, (name, key, actual)


def test_output_bindings_go_to_the_outbox_and_poison_queues(indexed_functions: list[Any]) -> None:
    outputs = {
        (f.get_function_name(), b["name"]): b["queueName"]
        for f in indexed_functions
        for b in _dicts(f)
        if b["type"] == "queue"
    }
    assert outputs == {
        ("halopsa", "queued"): "signl4-outbox",
        ("webhook", "queued"): "signl4-outbox",
        ("signl4_outbox", "poison"): "signl4-outbox-poison",
        ("signl4", "queued"): "halo-outbox",
        ("halo_outbox", "poison"): "halo-outbox-poison",
    }


def test_every_annotation_passes_the_workers_type_check(indexed_functions: list[Any]) -> None:
    """The worker refuses to load a function whose parameter annotation its converter does not
    accept (e.g. func.Out[list[str]] for a queue: only typing.List[str] passes)."""
    registry = meta.get_binding_registry()
    for function in indexed_functions:
        params = inspect.signature(function.get_user_function()).parameters
        for binding in _dicts(function):
            name = binding["name"]
            if name == "$return" or name not in params:
                continue
            converter = registry.get(binding["type"])
            assert converter is not None, binding["type"]
            annotation = params[name].annotation
            # The worker reads annotations as objects: no `from __future__ import annotations`.
            assert not isinstance(annotation, str), (function.get_function_name(), name)
            if (
                typing.get_origin(annotation) is not None
                and getattr(typing.get_origin(annotation), "__name__", "") == "Out"
            ):
                (inner,) = typing.get_args(annotation)
                assert converter.check_output_type_annotation(inner), (
                    function.get_function_name(),
                    name,
                    inner,
                )
            else:
                assert converter.check_input_type_annotation(annotation), (
                    function.get_function_name(),
                    name,
                    annotation,
                )


def test_halopsa_and_signl4_are_separate_function_key_routes(indexed_functions: list[Any]) -> None:
    """A function key opens its own function only, so Halo's key (halopsa) cannot post SIGNL4
    notifications (signl4) as long as these are two functions, each at FUNCTION level. The
    deployment's URL commands read each key by these names (tests/infra/test_infra.py)."""
    http = {
        f.get_function_name(): f.get_trigger().get_dict_repr()
        for f in indexed_functions
        if f.get_trigger().get_dict_repr()["type"] == "httpTrigger"
    }
    levels = {name: str(t["authLevel"]).split(".")[-1].upper() for name, t in http.items()}
    assert levels["halopsa"] == levels["signl4"] == "FUNCTION"
    assert http["halopsa"]["route"] != http["signl4"]["route"]
    # Every other HTTP route is anonymous with its own check (token, read-only health): no route
    # would take a function key, so no key handed out opens more than its own function.
    assert {name for name, level in levels.items() if level != "ANONYMOUS"} == {"halopsa", "signl4"}
