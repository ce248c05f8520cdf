"""CPU per event for hostile ticket details, next to a normal ticket (issue #8).

    /work/main/.venv/bin/python bench/html_worst.py [--runs 15] [--length 10000] [--no-before]

Run from the repo root. Each row is one event: `parse_event` of a webhook whose ticket details
are the pattern repeated to --length characters (FIELD_MAX_CHARS is 10,000), so it includes the
HTML-to-text conversion and the control-character cleaning: "event" is its median CPU ms over
--runs events. "html" is `html_to_text` alone, and "html before" the stdlib HTMLParser extractor
the relay used until issue #8 (median of 3 runs, as it is slow), or "raises" where it crashed
the event (answered 500 internal).
Target: the worst "now" well under 50 ms. Nothing here fails on a timing; it only reports.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.domain.halo import html_to_text, parse_event

NORMAL = (
    "<p>Hi team,</p><p>The nightly backup job on <b>NAS01</b> failed three times.</p>"
    "<p>Error:&nbsp;disk&nbsp;full &amp; retention exceeded</p>"
    '<table><tr><td style="color: red">NAS01</td><td>95%</td></tr></table>'
    "<ul><li>NAS01</li><li>NAS02</li></ul><p>Regards,<br/>Sam</p>\n"
)

PATTERNS: dict[str, str] = {
    "normal ticket": NORMAL,
    "<x ": "<x ",
    "<a\\t": "<a\t",
    '<a b="': '<a b="',
    "<a b='": "<a b='",
    "<a b=c ": "<a b=c ",
    "<!--": "<!--",
    "<![": "<![",
    "</x ": "</x ",
    "<?": "<?",
    "<<<<": "<",
    "<p>": "<p>",
    "<script>": "<script>",
    "&amp;": "&amp;",
    "&#9999": "&#9999",
    "&#" + "1" * 20: "&#" + "1" * 20,
    "Log says <![foo]>": "Log says <![foo]> then stops ",
}


class _OldExtractor(HTMLParser):
    """The relay's converter before issue #8, for the "before" column."""

    _BLOCKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "hr"})
    _SKIPPED = frozenset({"script", "style", "head"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIPPED:
            self._skip_depth += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)


def _old_html_to_text(text: str) -> str:
    extractor = _OldExtractor()
    extractor.feed(text)
    extractor.close()
    return re.sub(r"\s+", " ", "".join(extractor.parts))


def _event(details: str) -> None:
    parse_event({"event": "new ticket logged", "object_id": 1, "ticket": {"details": details}})


def _median_cpu_ms(work: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.process_time_ns()
        work()
        samples.append((time.process_time_ns() - started) / 1e6)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--length", type=int, default=10_000)
    parser.add_argument("--no-before", action="store_true", help="skip the HTMLParser column")
    args = parser.parse_args()

    print(f"median CPU ms per event, details of {args.length} chars, {args.runs} runs")
    print(f"{'pattern':<26} {'event':>8} {'html':>8} {'html before':>18}")
    worst = ("", 0.0)
    for label, pattern in PATTERNS.items():
        details = (pattern * (args.length // len(pattern) + 1))[: args.length]
        _event(details)  # warm-up
        now = _median_cpu_ms(lambda d=details: _event(d), args.runs)
        html_now = _median_cpu_ms(lambda d=details: html_to_text(d), args.runs)
        worst = max(worst, (label, now), key=lambda row: row[1])
        before = "-"
        if not args.no_before:
            try:
                before = f"{_median_cpu_ms(lambda d=details: _old_html_to_text(d), 3):.2f}"
            except Exception as error:  # what answered 500 before
                before = f"raises {type(error).__name__}"
        print(f"{label!r:<26} {now:>8.2f} {html_now:>8.2f} {before:>18}")
    print(f"worst event: {worst[0]!r} {worst[1]:.2f} ms CPU (target: well under 50 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
