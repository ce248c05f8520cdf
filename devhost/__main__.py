"""`python -m devhost <command>`: developer commands for the relay (today: `serve`)."""

from __future__ import annotations

import argparse
import logging
import sys

from devhost.errors import LocalHostError
from devhost.serve import serve


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devhost", description="Developer commands for the HaloPSA -> SIGNL4 relay."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    serve_parser = commands.add_parser(
        "serve",
        help="serve the app's HTTP functions locally (stands in for `func start`)",
        description="Serve every HTTP function of <app>.app at /api/<route>, like `func start`. "
        "Run from the repo root: local.settings.json and host.json are read from there.",
    )
    serve_parser.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    serve_parser.add_argument("--port", type=int, default=7071, help="default: %(default)s")
    serve_parser.add_argument(
        "--app", default="function_app", help="module defining `app` (default: %(default)s)"
    )
    serve_parser.add_argument(
        "--queue-visibility-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wait before a failed queue message is retried (default: host.json's)",
    )
    serve_parser.add_argument(
        "--max-dequeue-count",
        type=int,
        default=None,
        help="attempts before a queue message moves to <queue>-poison (default: host.json's)",
    )
    serve_parser.add_argument(
        "--queue-poll-seconds", type=float, default=1.0, help="default: %(default)s"
    )
    serve_parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="default: %(default)s (one line per request); WARNING leaves those out",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # INFO shows one line per request and output-binding warnings, as `func start` does.
    logging.basicConfig(
        level=getattr(logging, args.log_level), format="%(levelname)s %(name)s: %(message)s"
    )
    # The Azure SDK logs every storage request at INFO; the queue runner polls every second.
    logging.getLogger("azure").setLevel(logging.WARNING)
    try:
        return serve(
            args.app,
            args.host,
            args.port,
            visibility_timeout=args.queue_visibility_timeout,
            max_dequeue_count=args.max_dequeue_count,
            poll_seconds=args.queue_poll_seconds,
        )
    except LocalHostError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
