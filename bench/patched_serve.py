"""`python -m shared serve` with named monkeypatches, to measure a fix without editing the app.

    python bench/patched_serve.py --patch nodelay [--patch ...] serve --port P

Patches (each one the smallest change a fix in the named file would make):
- nodelay: shared/local_host.py's request handler sets TCP_NODELAY
  (`disable_nagle_algorithm = True`), so the body written after the headers is not held back
  by Nagle's algorithm until the client's delayed ACK (40 ms on Linux) arrives.
- quiet: the relay process logs at WARNING instead of INFO (no per-request log lines).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any


def patch_nodelay() -> None:
    from shared import local_host

    original: Callable[[Any], type[BaseHTTPRequestHandler]] = local_host._handler_for

    def handler_for(host: Any) -> type[BaseHTTPRequestHandler]:
        handler = original(host)
        handler.disable_nagle_algorithm = True
        return handler

    local_host._handler_for = handler_for  # type: ignore[assignment]


def patch_quiet() -> None:
    original = logging.basicConfig

    def basic_config(**kwargs: Any) -> None:
        kwargs["level"] = logging.WARNING
        original(**kwargs)

    logging.basicConfig = basic_config  # type: ignore[assignment]


PATCHES: dict[str, Callable[[], None]] = {"nodelay": patch_nodelay, "quiet": patch_quiet}


def main(argv: list[str]) -> int:
    rest = list(argv)
    while len(rest) >= 2 and rest[0] == "--patch":
        name = rest[1]
        if name not in PATCHES:
            print(f"unknown patch {name!r}; known: {', '.join(PATCHES)}", file=sys.stderr)
            return 1
        PATCHES[name]()
        rest = rest[2:]
    from shared.__main__ import main as shared_main

    return shared_main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
