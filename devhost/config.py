"""What the local host reads from the project folder, as the Functions host does.

- local.settings.json: its `Values` become environment variables (the environment wins);
- host.json: the HTTP route prefix and the queue retry options (visibilityTimeout,
  maxDequeueCount), with the host's defaults.
"""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping
from pathlib import Path

from devhost.errors import LocalHostError

DEFAULT_ROUTE_PREFIX = "api"


def load_local_settings(path: Path, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Copy `Values` from local.settings.json into `environ` where not already set.

    Returns the names applied (never values: they hold secrets). A missing file applies
    nothing; a malformed one raises LocalHostError naming the problem but not the content.
    """
    env = os.environ if environ is None else environ
    if not path.is_file():
        return []
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as exc:
        raise LocalHostError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        # The message is position only; the offending text is not echoed (it may be a secret).
        raise LocalHostError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(document, dict):
        raise LocalHostError(f"{path}: expected a JSON object at the top level")
    values = document.get("Values", {})
    if not isinstance(values, dict):
        raise LocalHostError(f'{path}: "Values" must be an object of name -> string')
    bad = sorted(name for name, value in values.items() if not isinstance(value, str))
    if bad:
        raise LocalHostError(f'{path}: "Values" entries must be strings: {", ".join(bad)}')
    applied = [name for name in values if name not in env]
    for name in applied:
        env[name] = values[name]
    return applied


def read_route_prefix(host_json: Path) -> str:
    """`extensions.http.routePrefix` from host.json (may be ""), else "api"."""
    if not host_json.is_file():
        return DEFAULT_ROUTE_PREFIX
    try:
        document = json.loads(host_json.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LocalHostError(f"{host_json}: not valid JSON: {exc}") from None
    http = (document.get("extensions") or {}).get("http") or {}
    prefix = http.get("routePrefix", DEFAULT_ROUTE_PREFIX)
    if not isinstance(prefix, str):
        raise LocalHostError(f"{host_json}: extensions.http.routePrefix must be a string")
    return prefix.strip("/")


def read_queue_options(host_json: Path) -> tuple[float, int]:
    """(visibilityTimeout seconds, maxDequeueCount) from host.json, with the host's defaults."""
    visibility, max_dequeue = 0.0, 5
    try:
        queues = json.loads(host_json.read_text()).get("extensions", {}).get("queues", {})
    except (OSError, ValueError, AttributeError):
        queues = {}
    text = str(queues.get("visibilityTimeout", "00:00:00"))
    try:
        hours, minutes, seconds = (float(part) for part in text.split(":"))
        visibility = hours * 3600 + minutes * 60 + seconds
    except ValueError:
        pass
    max_dequeue = int(queues.get("maxDequeueCount", max_dequeue))
    return visibility, max_dequeue
