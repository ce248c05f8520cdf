"""2. CPU per event, in-process: the pure core and the whole handler in dry-run."""

from __future__ import annotations

import time
from typing import Any

from bench.config import FIXTURES, TEAM_SECRET, Counts
from bench.stats import summary

SHAPES = {
    "webhook small": "webhook_new_small.json",
    "webhook full ticket": "webhook_new_full.json",
    "guide body": "guide_new.json",
}


def bench_cpu(counts: Counts) -> dict[str, Any]:
    from shared.domain.alert import build_payload
    from shared.domain.halo import parse_event, parse_json_body
    from shared.domain.policy import decide
    from shared.entry.halo_webhook import handle_halo_request
    from shared.settings import RelaySettings

    settings = RelaySettings.from_env(
        {
            "SIGNL4_TEAM_SECRET": TEAM_SECRET,
            "SIGNL4_WEBHOOK_URL": "http://127.0.0.1:9/webhook/",
            "HALO_BASE_URL": "https://contoso.halopsa.com/",
        }
    )
    dry_env = {"RELAY_DRY_RUN": "true", "HALO_BASE_URL": "https://contoso.halopsa.com/"}
    headers = {"content-type": "application/json"}

    def core(body: bytes) -> None:
        event = parse_event(parse_json_body(body))
        decision = decide(event, settings)
        if decision.status is not None:
            build_payload(event, decision, settings)

    def handler(body: bytes) -> None:
        handle_halo_request(body, headers, dry_env)

    results: dict[str, Any] = {}
    for label, fixture in SHAPES.items():
        body = (FIXTURES / fixture).read_bytes()
        for kind, work in (("core", core), ("handler dry-run", handler)):
            for _ in range(max(200, counts.cpu_iterations // 10)):
                work(body)
            samples: list[float] = []
            clock = time.perf_counter_ns
            for _ in range(counts.cpu_iterations):
                started = clock()
                work(body)
                samples.append((clock() - started) / 1000)
            results[f"{label} | {kind}"] = {"bytes": len(body), **summary(samples)}
    return results
