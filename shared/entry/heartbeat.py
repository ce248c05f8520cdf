"""Watching the watcher: a heartbeat to SIGNL4's heartbeat monitoring while the relay is healthy.

SIGNL4 (Integrations > Gallery > Heartbeat) gives a URL `https://connect.signl4.com/apps/<id>`
and raises an alert when no call arrives within the interval configured there; several checks
can share one URL by a keyword (`?param=relay`), kept in SIGNL4_HEARTBEAT_URL as given. The URL
is never logged (its id lets anyone suppress the alert); requests loads on the first beat.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shared import __version__
from shared.entry.health import storage_state
from shared.settings import RelaySettings, SettingsError

TIMEOUT_SECONDS = 10.0

logger = logging.getLogger("shared.heartbeat")

Poster = Callable[[str, dict[str, str]], int]


@dataclass(frozen=True)
class Beat:
    sent: bool
    reason: str
    status_code: int | None = None


def beat(environ: Mapping[str, str], post: Poster | None = None) -> Beat:
    """One heartbeat if the relay is healthy; logs one line either way. Never raises.

    The timer function (function_app.py, schedule RELAY_HEARTBEAT_SCHEDULE) calls it: it POSTs
    only when the settings are valid and storage answers, so a misconfigured or cut-off relay
    falls silent and SIGNL4 pages. A dead app (not started, scaled away by a fault) is silent too.
    """
    result = _beat(environ, post or _post)
    logger.log(
        logging.INFO if result.sent or result.reason == "off" else logging.WARNING,
        "heartbeat sent=%s reason=%s status=%s",
        str(result.sent).lower(),
        result.reason,
        result.status_code if result.status_code is not None else "-",
    )
    return result


def _beat(environ: Mapping[str, str], post: Poster) -> Beat:
    try:
        settings = RelaySettings.from_env(environ)
    except SettingsError:
        return Beat(False, "settings invalid (see GET /api/health)")
    if not settings.signl4_heartbeat_url:
        return Beat(False, "off")
    state = storage_state(settings)
    if state.storage == "unreachable":
        return Beat(False, "storage unreachable")
    try:
        status = post(
            settings.signl4_heartbeat_url, {"relay": __version__, "storage": state.storage}
        )
    except Exception as error:  # the kind only: requests' messages carry the URL
        return Beat(False, f"heartbeat URL not reached ({type(error).__name__})")
    if 200 <= status < 300:
        return Beat(True, "healthy", status)
    return Beat(False, "heartbeat URL refused the call", status)


def _post(url: str, body: dict[str, str]) -> int:
    import requests

    with requests.Session() as session:
        session.trust_env = False
        response = session.post(url, json=body, timeout=TIMEOUT_SECONDS, allow_redirects=False)
        return int(response.status_code)
