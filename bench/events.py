"""The events a run posts: the guide body and a small webhook, each with a ticket id of its own."""

from __future__ import annotations

import itertools
import json
import time

from bench.config import FIXTURES

# Distinct ticket ids across runs too (a persistent ledger would call a repeat a duplicate).
_ticket_ids = itertools.count((int(time.time()) % 10**6) * 10**4)
_GUIDE = json.loads((FIXTURES / "guide_new.json").read_bytes())
_WEBHOOK = json.loads((FIXTURES / "webhook_new_small.json").read_bytes())


def next_ticket_id() -> int:
    return next(_ticket_ids)


def guide_event() -> tuple[str, bytes]:
    ticket = next(_ticket_ids)
    body = dict(_GUIDE, **{"X-S4-ExternalID": f"HaloPSA-{ticket}"})
    body["Link"] = f"https://contoso.halopsa.com/ticket?id={ticket}"
    return f"HaloPSA-{ticket}", json.dumps(body).encode()


def webhook_event() -> tuple[str, bytes]:
    ticket = next(_ticket_ids)
    body = dict(_WEBHOOK, object_id=ticket, ticket=dict(_WEBHOOK["ticket"], id=ticket))
    return f"HaloPSA-{ticket}", json.dumps(body).encode()


def check_sent(status: int, body: bytes, external_id: str) -> None:
    answer = json.loads(body)
    if status != 200 or answer.get("result") != "sent" or answer.get("externalId") != external_id:
        raise SystemExit(f"relay did not send {external_id}: {status} {body[:300]!r}")
