"""The close follows the alert through `python -m devhost serve` on Azurite: the alert opens
under one rule set, serve restarts with another, and the acknowledge and close still reach the
team that got the alert (its target is read back from the `alert` row in Azure Table)."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from tests.conftest import Signl4Fake, new_ticket_id
from tests.integration.conftest import Served, start_serve, stop_serve
from tests.integration.test_serve_delivery import FAST_QUEUE, relay_env
from tests.suites.routing import NETWORK_SECRET, network_rules, teams


def post(served: Served, body: dict) -> requests.Response:
    return requests.post(served.base_url + "/api/halopsa", json=body, timeout=15)


def event(ticket_id: int, name: str, **ticket: object) -> dict:
    return {
        "event": name,
        "object_id": ticket_id,
        "ticket": {"id": ticket_id, "summary": "core switch down", "team": "Network", **ticket},
    }


def test_close_after_a_rule_change_reaches_the_team_that_got_the_alert(
    signl4: Signl4Fake, tmp_path: Path, storage_env: str
) -> None:
    signl4.server.expect_request(f"/webhook/{NETWORK_SECRET}", method="POST").respond_with_handler(
        signl4.handle
    )
    env = relay_env(signl4, storage_env)
    env.update(
        SIGNL4_TEAM_SECRET_NETWORK=NETWORK_SECRET,
        RELAY_ACK_STATUSES="In Progress",
        RELAY_ROUTES=json.dumps(network_rules()),
    )
    tid = new_ticket_id()
    served = start_serve(tmp_path, env, *FAST_QUEUE)
    try:
        opened = post(served, event(tid, "new ticket logged"))
    finally:
        first_output = stop_serve(served)
    assert opened.json()["result"] == "sent", opened.text
    assert f"relay externalId=HaloPSA-{tid} " in first_output
    assert "route=network" in first_output

    # The operator drops the network team's rule; serve starts again with the new rules.
    env["RELAY_ROUTES"] = json.dumps([{"name": "everything", "when": {}, "target": "default"}])
    served = start_serve(tmp_path, env, *FAST_QUEUE)
    try:
        ack = post(served, event(tid, "status changed", status_name="In Progress"))
        close = post(served, event(tid, "closed", hasbeenclosed=True, status_id=9))
    finally:
        output = stop_serve(served)
    assert (ack.json()["result"], close.json()["result"]) == ("sent", "sent"), output
    assert teams(signl4, f"HaloPSA-{tid}") == [
        ("new", "network"),
        ("acknowledged", "network"),
        ("resolved", "network"),
    ]
    assert NETWORK_SECRET not in first_output + output
