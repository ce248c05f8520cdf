"""RELAY_TIMING: the per-phase timing hook (shared/timing.py) the benchmark reads. Off, no phase
line is written; on, every phase of an event writes one. Counted, never timed: the test checks
which lines appear, not their figures."""

from __future__ import annotations

import re

import pytest

from shared.delivery import ledger
from shared.delivery import pages as delivery
from shared.entry import halo_webhook
from tests.conftest import Harness, Signl4Fake, new_ticket_id

PHASE_LINE = re.compile(r"^PHASE (\S+) (\d+\.\d{3})$", re.MULTILINE)


def _new_ticket() -> dict:
    tid = new_ticket_id()
    return {"event": "new ticket logged", "object_id": tid, "ticket": {"id": tid, "summary": "x"}}


def test_off_by_default_writes_no_phase_line(
    memory_harness: Harness, signl4: Signl4Fake, capfd: pytest.CaptureFixture[str]
) -> None:
    assert halo_webhook.TIMING is False and delivery.TIMING is False and ledger.TIMING is False
    assert memory_harness.post(_new_ticket())[1]["result"] == "sent"
    assert PHASE_LINE.findall(capfd.readouterr().err) == []


def test_on_every_phase_of_an_event_writes_a_line(
    memory_harness: Harness,
    signl4: Signl4Fake,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for module in (halo_webhook, delivery, ledger):  # what RELAY_TIMING=1 sets at import
        monkeypatch.setattr(module, "TIMING", True)
    event = _new_ticket()
    assert memory_harness.post(event)[1]["result"] == "sent"
    assert memory_harness.post(event)[1]["result"] == "duplicate"
    phases = [name for name, _ in PHASE_LINE.findall(capfd.readouterr().err)]
    # The confirm is written after the answer, on a background thread: its line lands anywhere
    # after the send and before the next event of the ticket decides (that one waits for it).
    send = phases.index("signl4.send")
    second_decide = phases.index("decide", phases.index("event") + 1)
    confirm = phases.index("ledger.apply", send)
    assert confirm < second_decide
    del phases[confirm]
    first, second = phases[: phases.index("event") + 1], phases[phases.index("event") + 1 :]
    # The first event of a ticket claims without reading (create-if-absent), then sends and
    # answers.
    assert first == ["parse", "decide", "ledger.apply", "signl4.send", "answer", "event"]
    # A repeat: the process remembers the ticket (claimed), but "duplicate" writes nothing, so
    # it is never answered on that guess: it reads, decides again, and answers without sending.
    assert second == ["parse", "decide", "ledger.read", "decide", "answer", "event"]
