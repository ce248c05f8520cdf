"""The relay on Azurite: what tests/unit/entry/test_relay.py checks in memory, through the storage
queues and the Table ledger."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import (
    TEAM_SECRET,
    Harness,
    Signl4Fake,
    fixture_json,
    new_ticket_id,
)
from tests.unit.entry.test_relay import (
    CONTROL,
    FORGED,
    all_log_lines,
    rejecting,
)


def test_poison_line_through_the_mailbox_on_azurite_stays_one_line(
    harness: Harness, signl4: Signl4Fake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    signl4.script(503, 503, 503, lambda request: rejecting(lambda url: FORGED)(request))
    tid = new_ticket_id()
    guide = dict(fixture_json("guide_new.json"), **{"X-S4-ExternalID": f"HaloPSA-{tid}"})
    assert harness.post(guide)[0] == 202
    harness.drain()
    lines = all_log_lines(caplog)
    for line in lines:
        assert not CONTROL.search(line), line
    [line] = [m for m in lines if m.startswith("poison ")]
    assert f"externalId=HaloPSA-{tid}" in line and "HTTP 400" in line
    assert TEAM_SECRET not in caplog.text
