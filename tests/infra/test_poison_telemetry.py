"""The poison alert cannot be sampled away: host.json, the alert query and the function app agree.

host.json samples Application Insights telemetry under load, except the types in
`samplingSettings.excludedTypes`. The Python worker sends every log record to the host as a
trace, `logger.exception` included: its RpcLog carries no exception
(Azure/azure-functions-python-worker, azure_functions_worker/dispatcher.py `on_logging`;
issue #866 "logging.exception does not create entry in exceptions table"). So the poison line is
a trace, and traces are sampled. What the host writes unsampled for the relay is request
telemetry, one row per function invocation: the poison alert counts those (an invocation of a
poison-queue function, or a POST /api/signl4 Halo refused for good, 502 halo_rejected) and
takes the ticket from the poison line on the same operation when sampling kept it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from devhost.functions import OutValue
from shared.delivery.outbox import HALO_POISON_QUEUE, POISON_QUEUE
from shared.errors import HaloRejected
from testkit.halo_fake import CLIENT_ID, CLIENT_SECRET, HaloFake, halo_fixture  # noqa: F401
from tests.conftest import answer, http_post
from tests.infra.bicep_template import load_template
from tests.suites.two_way import event_id_of, paged

ROOT = Path(__file__).resolve().parents[2]
POISON_PREFIX = "poison externalId="


@pytest.fixture(scope="module")
def poison_query() -> str:
    template = load_template()
    (criterion,) = template["resources"]["poisonAlert"]["config"]["config"]["properties"][
        "criteria"
    ]["allOf"]
    query = template["variables"][criterion["query"]]["value"]
    assert isinstance(query, str), "the poison query takes no parameters"
    return query


def excluded_from_sampling() -> set[str]:
    sampling = json.loads((ROOT / "host.json").read_text())["logging"]["applicationInsights"][
        "samplingSettings"
    ]
    assert sampling["isEnabled"] is True
    return {kind.strip() for kind in sampling["excludedTypes"].split(";") if kind.strip()}


def triggers(indexed_functions: list[Any]) -> dict[str, dict[str, Any]]:
    """Each function's trigger binding, by function name (the requests table's `name`)."""
    found = {}
    for function in indexed_functions:
        bindings = [b.get_dict_repr() for b in function.get_bindings()]
        (trigger,) = [b for b in bindings if b["type"].endswith("Trigger")]
        found[function.get_function_name()] = trigger
    return found


def test_requests_are_kept_whole_and_traces_still_sampled() -> None:
    excluded = excluded_from_sampling()
    assert "Request" in excluded
    # Every trace unsampled would raise ingestion cost: the alert must not need it.
    assert "Trace" not in excluded


def test_the_poison_alert_counts_requests_and_names_the_ticket_from_the_line(
    poison_query: str,
) -> None:
    tables = re.findall(r"^\s*(\w+)\s*$", poison_query, flags=re.M)
    assert tables[0] == "requests", "the rows the alert counts must be request telemetry"
    # The ticket comes from the poison line on the same invocation, when sampling kept it;
    # a left outer join keeps the request row when it did not.
    assert "join kind=leftouter" in poison_query and "on operation_Id" in poison_query
    assert f'message startswith "{POISON_PREFIX}"' in poison_query
    for writer in ("queues.py", "signl4_webhook.py"):  # the poison queues; Halo's refusal
        code = (ROOT / "shared" / "entry" / writer).read_text()
        assert f'"{POISON_PREFIX}%s ' in code, writer


def test_the_queried_functions_are_the_poison_queue_functions_and_halos_webhook(
    poison_query: str, indexed_functions: list[Any]
) -> None:
    found = triggers(indexed_functions)
    poison_functions = {
        name
        for name, trigger in found.items()
        if trigger["type"] == "queueTrigger"
        and trigger["queueName"] in (POISON_QUEUE, HALO_POISON_QUEUE)
    }
    assert len(poison_functions) == 2
    (listed,) = re.findall(r"name in \(([^)]*)\)", poison_query)
    assert set(re.findall(r'"(\w+)"', listed)) == poison_functions
    # Halo refusing a write-back inline: the HTTP function routed at signl4, answered 502.
    (http_leg,) = re.findall(r'name == "(\w+)" and resultCode == "(\d+)"', poison_query)
    assert found[http_leg[0]]["type"] == "httpTrigger"
    assert found[http_leg[0]]["route"] == "signl4"
    assert int(http_leg[1]) == HaloRejected.status_code


def test_a_poison_function_completes_and_logs_the_line(
    functions: dict, live_env: dict, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    """One successful invocation per poison message: raising would have the queue retry it
    (one alert row per retry) and finally move it to a poison queue of the poison queue."""
    monkeypatch.setenv("AzureWebJobsStorage", "memory")
    caplog.set_level(logging.INFO)
    record = {"externalId": "HaloPSA-7", "message": {"x": 1}, "reason": "refused for good"}
    for name in ("signl4_outbox_poison", "halo_outbox_poison"):
        body = json.dumps(record).encode("utf-8")
        assert functions[name](func.QueueMessage(id="m-1", body=body, pop_receipt="r")) is None
    lines = [r for r in caplog.records if r.getMessage().startswith(POISON_PREFIX)]
    assert [(r.levelno, r.getMessage()) for r in lines] == [
        (
            logging.ERROR,
            "poison externalId=HaloPSA-7 reason=refused for good: never reached SIGNL4",
        ),
        (logging.ERROR, "poison externalId=HaloPSA-7 reason=refused for good: never reached Halo"),
    ]


def test_halo_refusing_a_write_back_answers_the_502_the_alert_counts(
    functions: dict,
    live_env: dict,
    halo: HaloFake,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "AzureWebJobsStorage": "memory",
        "HALO_BASE_URL": halo.base_url,
        "HALO_CLIENT_ID": CLIENT_ID,
        "HALO_CLIENT_SECRET": CLIENT_SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.INFO)
    tid = paged(os.environ)  # SIGNL4 acts only on an alert the relay raised
    halo.script("/api/Actions", 403)
    notification = {
        "eventType": 201,
        "eventRaisedUtc": "2026-09-25T06:41:08Z",
        "id": f"n-{tid}",
        "alert": {
            "statusCode": 2,
            "eventId": event_id_of(tid),
            "externalEventId": f"HaloPSA-{tid}",
            "id": "a-1",
        },
    }
    queued = OutValue()
    response = functions["signl4"](http_post(notification, "/api/signl4"), queued=queued)
    code, body = answer(response)
    assert (code, body["error"]) == (HaloRejected.status_code, "halo_rejected")
    assert queued.get() is None
    [line] = [r for r in caplog.records if r.getMessage().startswith(POISON_PREFIX)]
    assert line.levelno == logging.ERROR
    assert line.getMessage().startswith(f"poison externalId=halo:HaloPSA-{tid} reason=")


def test_no_file_cites_the_folder_handed_to_developers() -> None:
    """Facts are cited from their public source, not from the folder handed to developers beside
    the repository (it is not part of it)."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    needles = ("../" + "shared/", "REFERENCE" + ".md")
    citing = []
    for name in tracked:
        path = ROOT / name
        if not path.is_file() or path.suffix in {".png", ".zip", ".gz"}:
            continue
        text = path.read_text(errors="ignore")
        citing += [f"{name}: {needle}" for needle in needles if needle in text]
    assert citing == []


# --- the silence alert (issue 23): Halo's calls, counted on request telemetry ---


def test_the_silence_alert_counts_the_requests_of_the_functions_halo_calls(
    indexed_functions: list[Any],
) -> None:
    """Its rows are request telemetry (never sampled) named after the HTTP functions that take
    Halo's webhook: exactly those routed at halopsa and webhook/{token}."""
    template = load_template()
    (criterion,) = template["resources"]["haloSilenceAlert"]["config"]["config"]["properties"][
        "criteria"
    ]["allOf"]
    query = template["variables"][criterion["query"]]["value"]["function"]["parameters"][
        "format_string"
    ]
    tables = re.findall(r"^\s*(\w+)\s*$", query, flags=re.M)
    assert tables[0] == "requests", "the rows the alert counts must be request telemetry"
    assert "Request" in excluded_from_sampling()
    (listed,) = re.findall(r"name in \(([^)]*)\)", query)
    halo_routes = {"halopsa", "webhook/{token?}"}
    called = {
        name
        for name, trigger in triggers(indexed_functions).items()
        if trigger["type"] == "httpTrigger" and trigger["route"] in halo_routes
    }
    assert set(re.findall(r'"(\w+)"', listed)) == called == {"halopsa", "webhook"}
