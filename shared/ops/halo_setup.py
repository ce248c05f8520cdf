"""`python -m shared halo-setup`: what to configure in HaloPSA (and SIGNL4) for a relay (pure).

Two ways for Halo to call the relay (docs/setup-halo.md): a webhook to /api/halopsa, or
SIGNL4's own custom integration + runbook with its base URL moved to /api/webhook/. The import
files are SIGNL4's export (shared/ops/halo_export/) with base URL, method path, names and ids
changed: ids derived from the relay's URL, so importing never overwrites SIGNL4's own
integration. Secrets stay placeholders unless given (`<function key>`, TOKEN_PLACEHOLDER).
"""

from __future__ import annotations

import copy
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shared.settings import LOOPBACK_HOSTS

EXPORT_DIR = Path(__file__).parent / "halo_export"
TOKEN_PLACEHOLDER = "relay-inbound-token"
FUNCTION_KEY_PLACEHOLDER = "<function key>"
QUERY = "ExtIDParam=X-S4-ExternalID&ExtStatusParam=Status&ResolvedStatus=Closed"
INTEGRATION_NAME = "SIGNL4 Alerting via relay"
RUNBOOK_NAME = "SIGNL4 Runbook via relay"
WEBHOOK_EVENTS = ("New Ticket Logged", "Ticket Status Changed", "Closed")
# Namespace of the import files' ids (uuid5 of the relay's base URL).
_ID_NAMESPACE = uuid.UUID("5f0c7e1a-6b8e-4d7c-9f3a-2a4e8b1c0d11")


class SetupError(ValueError):
    """The base URL is not one Halo can call."""


def relay_base(url: str) -> str:
    """The function app's base URL, `https://<app>.azurewebsites.net` (a trailing `/` or `/api`
    is dropped). https only, but plain http to this machine for a local try."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        raise SetupError("--url must be the function app's https:// base URL") from None
    if not host or parts.query or parts.fragment or any(c.isspace() for c in text):
        raise SetupError("--url must be the function app's https:// base URL (no query)")
    if not (parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS)):
        raise SetupError("--url must start with https:// (plain http only to this machine)")
    base = text.rstrip("/")
    return base.removesuffix("/api") if base.endswith("/api") else base


def webhook_url(base: str) -> str:
    return f"{base}/api/halopsa?code={FUNCTION_KEY_PLACEHOLDER}"


def guide_base_url(base: str) -> str:
    return f"{base}/api/webhook/"


def method_path(token: str | None = None) -> str:
    return f"{token or TOKEN_PLACEHOLDER}?{QUERY}"


def signl4_outbound_url(base: str) -> str:
    return f"{base}/api/signl4?code={FUNCTION_KEY_PLACEHOLDER}"


@cache
def _export(name: str) -> dict[str, Any]:
    return json.loads((EXPORT_DIR / name).read_text(encoding="utf-8"))


def request_body() -> str:
    """The method's JSON template, exactly as SIGNL4's export has it (CRLF line ends)."""
    [method] = _export("signl4-integration.json")["methods"]
    return str(method["requestbody"])


def _id(base: str, what: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"{base}|{what}"))


def integration_export(base: str, token: str | None = None) -> dict[str, Any]:
    """The custom integration, aimed at the relay: base URL /api/webhook/, the token where the
    team secret was."""
    document = copy.deepcopy(_export("signl4-integration.json"))
    resource = guide_base_url(base)
    document["name"] = INTEGRATION_NAME
    document["resourcebaseurl"] = resource
    [method] = document["methods"]
    method.update(
        guid=_id(base, "method"),
        name=INTEGRATION_NAME,
        integration_baseurl=resource,
        resource=resource,
        path=method_path(token),
    )
    return document


def runbook_export(base: str) -> dict[str, Any]:
    """The runbook: events New Ticket Logged and Closed, one step calling the method above."""
    document = copy.deepcopy(_export("signl4-runbook.json"))
    runbook_id = _id(base, "runbook")
    document["name"] = RUNBOOK_NAME
    for event in document["events"]:
        event["guid"] = _id(base, "event " + event["name"])
        event["webhook_id"] = runbook_id
    for step in document["steps"]:
        if step.get("auto_action_type_guid"):
            step["auto_action_type_guid"] = _id(base, "method")
            step["message"] = f"{INTEGRATION_NAME}: {INTEGRATION_NAME}"
    document.pop("___loaded_at", None)
    return document


def import_files(base: str, token: str | None = None) -> dict[str, dict[str, Any]]:
    """File name -> document, named as Halo names its exports."""
    return {
        f"halo-customintergration-signl4-relay-{_id(base, 'integration')}.json": (
            integration_export(base, token)
        ),
        f"halo-integrationrunbook-signl4-relay-{_id(base, 'runbook')}.json": runbook_export(base),
    }


def setup_text(base: str, token: str | None = None) -> str:
    """What to configure, in the order a Halo administrator clicks through it."""
    body = "\n".join("       " + line for line in request_body().replace("\r\n", "\n").splitlines())
    token_line = (
        "(given with --token)"
        if token
        else f"replace {TOKEN_PLACEHOLDER} with the relay's inbound token "
        "(FETCH_RELAY_INBOUND_TOKEN_COMMAND in the deployment outputs)"
    )
    return f"""\
HaloPSA -> SIGNL4 relay at {base}

Function keys: one per route, each opening its own function only (never a host key).
HALO_WEBHOOK_URL_COMMAND in the deployment outputs prints A's URL with the halopsa function's
key, SIGNL4_WEBHOOK_URL_COMMAND the two-way URL with the signl4 function's key.
Use one of A or B, not both.

A. Webhook (Configuration > Integrations > Webhooks)
   URL:      {webhook_url(base)}
   Method:   POST
   Payload:  full object (small object has no priority, "event information only" no ticket:
             then priority filters and status changes need HALO_CLIENT_ID/SECRET, so the
             relay reads the ticket; see docs/setup-halo.md, Which payload)
   Events:   {", ".join(WEBHOOK_EVENTS)}
   Auth:     Basic with HALO_WEBHOOK_USERNAME / HALO_WEBHOOK_PASSWORD when set, else none
   Batching: off, or by Count with at most RELAY_MAX_BATCH (100) events
   Failures: tick "notify on failure" (and name who hears), so a failing webhook is seen;
             set "auto disable attempts" to 0 (never): N turns the webhook off after N
             failures in a row, and then no ticket pages (check --live names it)

B. SIGNL4's guide: custom integration + method + runbook (or import the files from --import-file)
   Base URL:    {guide_base_url(base)}
   Method path: {method_path(token)}
                {token_line}
   Method:      POST, authorization none, body:
{body}
   Runbook:     events New Ticket Logged and Closed, one step calling the method

SIGNL4 outbound webhook (two-way sync, SIGNL4 -> Halo; Teams > Integrations > Webhook):
   URL: {signl4_outbound_url(base)}
"""
