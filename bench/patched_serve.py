"""`python -m shared serve` with named monkeypatches, to measure a change without editing the app.

    python bench/patched_serve.py --patch quiet [--patch ...] serve --port P

Patches (each one the smallest change the named idea would make):
- quiet: the relay process logs at WARNING instead of INFO (no per-request log lines), to show
  what per-request logging costs.

(A `nodelay` patch used to set TCP_NODELAY on the local host's handler to measure the fix for
the 40 ms stall; that fix is now in shared/local_host.py, so the patch is gone. See README.)
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any


def patch_quiet() -> None:
    original = logging.basicConfig

    def basic_config(**kwargs: Any) -> None:
        kwargs["level"] = logging.WARNING
        original(**kwargs)

    logging.basicConfig = basic_config  # type: ignore[assignment]


PATCHES: dict[str, Callable[[], None]] = {"quiet": patch_quiet}


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
