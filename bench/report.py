"""The report: each measure beside its target (PASS/MISS), as a table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    measured: str
    passed: bool | None  # None: not measured in this run


def targets(results: Mapping[str, Any]) -> list[Target]:
    found: list[Target] = []
    cold = results.get("cold_start")
    if cold:
        added = cold["added_ms_p50"]
        found.append(Target("cold start added (p50)", "<= 100 ms", f"{added:.1f} ms", added <= 100))
    cpu = results.get("cpu_per_event_us")
    if cpu:
        core = {k: v for k, v in cpu.items() if k.endswith("| core")}
        worst_p50 = max(v["p50"] for v in core.values())
        worst_p99 = max(v["p99"] for v in core.values())
        found.append(
            Target(
                "CPU/event median (worst shape)", "< 300 us", f"{worst_p50:.0f} us", worst_p50 < 300
            )
        )
        found.append(
            Target(
                "CPU/event p99 (worst shape)", "< 1000 us", f"{worst_p99:.0f} us", worst_p99 < 1000
            )
        )
    e2e = results.get("e2e")
    if e2e:
        ratio = e2e["ratio_p50"]
        found.append(
            Target("end-to-end relay/direct p50", "<= 1.10", f"{ratio:.3f}", ratio <= 1.10)
        )
    burst = results.get("burst")
    if burst:
        rate = burst["events_per_s"]
        found.append(Target("burst, one worker", ">= 500 ev/s", f"{rate:.0f} ev/s", rate >= 500))
        found.append(
            Target(
                "burst: every event arrived",
                "all",
                f"{burst['fake_distinct']}/{burst['events']}",
                bool(burst["all_arrived"]),
            )
        )
    memory = results.get("memory_mb")
    if memory and memory.get("peak_after_burst") is not None:
        peak = memory["peak_after_burst"]
        found.append(Target("relay peak RSS (VmHWM)", "< 120 MB", f"{peak:.1f} MB", peak < 120))
    return found


def render(results: Mapping[str, Any]) -> str:
    lines: list[str] = []
    cold = results.get("cold_start")
    if cold:
        lines += [
            "1. Cold start: import time in a fresh interpreter (ms, "
            f"n={cold['relay_ms']['n']} each, interleaved)",
            f"   function_app   p50 {cold['relay_ms']['p50']:7.1f}   p99 {cold['relay_ms']['p99']:7.1f}",
            f"   minimal_app    p50 {cold['minimal_ms']['p50']:7.1f}   p99 {cold['minimal_ms']['p99']:7.1f}",
            f"   added by the relay: {cold['added_ms_p50']:.1f} ms (p50 difference)",
            f"   by package (self time, one -X importtime run): {cold['added_by_package_ms']}",
            f"   not imported at cold start: {', '.join(cold['heavy_not_loaded']) or '-'}",
            f"   imported at cold start (should be none): {', '.join(cold['heavy_loaded']) or 'none'}",
            "",
        ]
    cpu = results.get("cpu_per_event_us")
    if cpu:
        lines.append(
            "2. CPU per event, in-process (us): core = parse_json_body+parse_event+decide+build_payload;"
        )
        lines.append(
            "   handler dry-run = halo_webhook.handle_halo_request with RELAY_DRY_RUN (info only)"
        )
        for name, row in cpu.items():
            lines.append(
                f"   {name:<36} {row['bytes']:5d} B  p50 {row['p50']:7.1f}  p99 {row['p99']:7.1f}"
            )
        lines.append("")
    e2e = results.get("e2e")
    if e2e:
        r, d = e2e["relay_ms"], e2e["direct_ms"]
        lines += [
            f"3. End to end, sequential keep-alive, SIGNL4 fake delay {e2e['fake_delay_ms']:g} ms "
            f"(ms, n={r['n']} each, alternating)",
            f"   direct to SIGNL4 fake   p50 {d['p50']:7.2f}   p99 {d['p99']:7.2f}",
            f"   through the relay       p50 {r['p50']:7.2f}   p99 {r['p99']:7.2f}",
            f"   relay/direct            p50 {e2e['ratio_p50']:7.3f}   p99 {e2e['ratio_p99']:7.3f}"
            f"   (added {e2e['added_ms_p50']:.2f} ms at p50)",
            f"   relayed requests stalled 30+ ms past direct p50: {e2e['relay_stalled_share']:.0%}",
            f"   first relayed event after start: {e2e['first_relayed_ms']:.1f} ms "
            "(imports requests, opens the pool)",
            f"   SIGNL4 fake received {e2e['fake_received']} of {e2e['fake_expected']} sent",
            "",
        ]
    burst = results.get("burst")
    if burst:
        lines += [
            f"4. Burst: {burst['events']} webhook events, {burst['clients']} keep-alive clients, "
            f"SIGNL4 fake delay {burst['fake_delay_ms']:g} ms",
            f"   {burst['events_per_s']:.0f} events/s ({burst['seconds']:.2f} s); relay errors "
            f"{burst['relay_errors']}; fake received {burst['fake_received']} "
            f"({burst['fake_distinct']} distinct), missing {burst['missing']}, "
            f"unexpected {burst['unexpected']}",
            "",
        ]
    phases = results.get("relay_phases_ms")
    if phases:
        lines.append("   inside the relay (--relay-patch phases; ms, e2e and burst together):")
        for name, row in phases.items():
            lines.append(
                f"   {name:<16} n={row['n']:<5} p50 {row['p50']:6.2f}   p99 {row['p99']:6.2f}"
            )
        lines.append("")
    ledger = results.get("ledger_calls")
    if ledger:
        lines.append(
            f"6. Ledger table calls of the delivery service, in-process against Azurite "
            f"({ledger['rounds']} new tickets, two events each; ms; client CPU = this thread's "
            "CPU time)"
        )
        for name, row in ledger["calls"].items():
            wall = row["wall_ms"]
            lines.append(
                f"   {name:<52} p50 {wall['p50']:6.2f}   p99 {wall['p99']:6.2f}   "
                f"client CPU p50 {row['client_cpu_ms_p50']:5.2f}"
            )
        bare = ledger["azurite_bare_round_trip_ms"]
        per_path = ledger["calls_per_path"]
        lines += [
            f"   Azurite bare round trip (unauthenticated GET, 403) p50 {bare['p50']:.2f}",
            *_idle_lines(ledger.get("create_back_to_back_vs_after_idle")),
            f"   a ticket's first event ({len(per_path['first event'])} calls) p50 "
            f"{ledger['new_ticket_path_ms_p50']:.2f} ms, of which client CPU "
            f"{ledger['new_ticket_path_client_cpu_ms_p50']:.2f} ms",
            f"   a status change ({len(per_path['status change'])} calls) p50 "
            f"{ledger['status_change_path_ms_p50']:.2f} ms, of which client CPU "
            f"{ledger['status_change_path_client_cpu_ms_p50']:.2f} ms",
            "",
        ]
    memory = results.get("memory_mb")
    if memory:

        def mb(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f}"

        lines += [
            "5. Relay process memory (MB): "
            f"RSS at start {mb(memory.get('rss_at_start'))}, "
            f"peak after end-to-end {mb(memory.get('peak_after_e2e'))}, "
            f"peak after burst {mb(memory.get('peak_after_burst'))}",
            "",
        ]
    found = targets(results)
    width = max((len(t.name) for t in found), default=10)
    lines.append("Targets")
    for target in found:
        verdict = "PASS" if target.passed else "MISS"
        lines.append(
            f"   {target.name:<{width}}  {target.goal:>12}  {target.measured:>12}  {verdict}"
        )
    return "\n".join(lines)


def _idle_lines(idle: dict[str, Any] | None) -> list[str]:
    """The same table call back to back and after an idle gap (the relay's case in serve)."""
    if not idle:
        return []
    rows = []
    for label, name in (("back_to_back", "back to back"), ("after_idle", "after idle")):
        row = idle[label]
        rows.append(
            f"{name} p50 {row['wall_ms']['p50']:.2f} ms (client CPU {row['client_cpu_ms_p50']:.2f})"
        )
    return [f"   one create, {rows[0]}; {idle['idle_ms']:.0f} ms {rows[1]}"]
