"""`python -m devhost serve` with AzureWebJobsStorage pointing where nothing listens: it says
where it connects, gives up with one clear line naming the fix, and serves (lines counted, no
timing asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from testkit.azurite import ACCOUNT_KEY as AZURITE_KEY
from tests.conftest import fixture_bytes
from tests.integration.conftest import start_serve, stop_serve


def test_unreachable_storage_is_named_with_the_fix(tmp_path: Path, unused_port: int) -> None:
    endpoint = f"http://127.0.0.1:{unused_port}/devstoreaccount1"
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={endpoint};QueueEndpoint={endpoint};TableEndpoint={endpoint};"
    )
    (tmp_path / "local.settings.json").write_text(
        json.dumps({"Values": {"AzureWebJobsStorage": connection}})
    )
    served = start_serve(tmp_path, {})
    try:
        answer = requests.post(
            served.base_url + "/api/halopsa", data=fixture_bytes("guide_new.json"), timeout=10
        ).json()
        health = requests.get(served.base_url + "/api/health", timeout=10).json()
    finally:
        output = stop_serve(served)
    lines = output.splitlines()
    connecting = [line for line in lines if line.startswith("connecting to storage at ")]
    assert connecting == [f"connecting to storage at {endpoint}/ ..."]
    [gave_up] = [line for line in lines if "did not answer" in line]
    assert gave_up.startswith(f"storage at {endpoint}/ did not answer")
    assert "npx azurite --inMemoryPersistence --silent" in gave_up and "npm ci" in gave_up
    assert "blank AzureWebJobsStorage" in gave_up
    assert lines.index(connecting[0]) < lines.index(gave_up)
    # It then runs on memory, and says so: no "may be paged twice" per event.
    assert answer["result"] == "dry-run" and health["storage"] == "memory"
    assert "may be paged twice" not in output
    assert AZURITE_KEY not in output
