"""Azure Functions entry point (Python v2 programming model): wires triggers to `shared`.

Imported on every cold start: keep it to wiring. The relay's logic lives in the package.
"""

import os
from typing import List  # noqa: UP035

import azure.functions as func

from shared.delivery import outbox
from shared.entry import bootstrap, halo_webhook, queues, signl4_webhook
from shared.entry.health import handle_health_request
from shared.entry.responses import RelayResponse

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

# Identity-based in Azure (AzureWebJobsStorage__accountName), Azurite locally.
STORAGE = "AzureWebJobsStorage"
# Several queue messages from one invocation. typing.List on purpose: the worker's queue
# converter accepts List[str] but rejects list[str] (tests/unit/entry/test_function_app.py checks).
QueueMessages = List[str]  # noqa: UP006


def _http(response: RelayResponse) -> func.HttpResponse:
    return func.HttpResponse(
        body=response.json_bytes(),
        status_code=response.status_code,
        headers=response.headers,
        mimetype="application/json",
        charset="utf-8",
    )


@app.route(route="halopsa", methods=["POST"])
@app.queue_output(arg_name="queued", queue_name=outbox.OUTBOX_QUEUE, connection=STORAGE)
def halopsa(req: func.HttpRequest, queued: func.Out[QueueMessages]) -> func.HttpResponse:
    """HaloPSA webhook / integration method target. Events SIGNL4 cannot take now are queued."""
    messages: list[str] = []
    response = halo_webhook.handle_halo_request(
        req.get_body(), req.headers, os.environ, outbox=messages, query=req.params
    )
    if messages:
        queued.set(messages)
    return _http(response)


# SIGNL4's URL shape (`.../webhook/{team-secret}?ExtIDParam=...`): Halo's SIGNL4 setup moves here
# by changing the base URL. Anonymous for the host: the token in the path (or in the
# X-Relay-Token header, then the path ends at webhook/) is the credential, checked by the relay.
@app.route(route="webhook/{token?}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@app.queue_output(arg_name="queued", queue_name=outbox.OUTBOX_QUEUE, connection=STORAGE)
def webhook(req: func.HttpRequest, queued: func.Out[QueueMessages]) -> func.HttpResponse:
    """SIGNL4's inbound webhook, stood in for by the relay. Same pipeline as halopsa."""
    messages: list[str] = []
    response = halo_webhook.handle_webhook_request(
        req.route_params.get("token") or "",
        req.get_body(),
        req.headers,
        os.environ,
        outbox=messages,
        query=req.params,
    )
    if messages:
        queued.set(messages)
    return _http(response)


@app.queue_trigger(arg_name="msg", queue_name=outbox.OUTBOX_QUEUE, connection=STORAGE)
@app.queue_output(arg_name="poison", queue_name=outbox.POISON_QUEUE, connection=STORAGE)
def signl4_outbox(msg: func.QueueMessage, poison: func.Out[QueueMessages]) -> None:
    """Sends queued events; raising hands the message back to the queue for a later retry."""
    records = queues.deliver_outbox_message(msg.get_body().decode("utf-8"), os.environ)
    if records:
        poison.set(records)


@app.queue_trigger(arg_name="msg", queue_name=outbox.POISON_QUEUE, connection=STORAGE)
def signl4_outbox_poison(msg: func.QueueMessage) -> None:
    """Every event the relay gave up on ends here: one error line to alert on."""
    queues.report_poison(msg.get_body().decode("utf-8"), os.environ)


# Two-way sync: the target of a SIGNL4 outbound webhook (URL with ?code=<function key>).
@app.route(route="signl4", methods=["POST"])
@app.queue_output(arg_name="queued", queue_name=outbox.HALO_OUTBOX_QUEUE, connection=STORAGE)
def signl4(req: func.HttpRequest, queued: func.Out[QueueMessages]) -> func.HttpResponse:
    """SIGNL4 acknowledged, closed, escalated or annotated one of our alerts: note it in Halo.
    Write-backs Halo cannot take now are queued."""
    messages: list[str] = []
    response = signl4_webhook.handle_signl4_request(req.get_body(), os.environ, outbox=messages)
    if messages:
        queued.set(messages)
    return _http(response)


@app.queue_trigger(arg_name="msg", queue_name=outbox.HALO_OUTBOX_QUEUE, connection=STORAGE)
@app.queue_output(arg_name="poison", queue_name=outbox.HALO_POISON_QUEUE, connection=STORAGE)
def halo_outbox(msg: func.QueueMessage, poison: func.Out[QueueMessages]) -> None:
    """Writes queued write-backs into Halo, per ticket in order; raising retries later."""
    records = queues.deliver_halo_outbox_message(msg.get_body().decode("utf-8"), os.environ)
    if records:
        poison.set(records)


@app.queue_trigger(arg_name="msg", queue_name=outbox.HALO_POISON_QUEUE, connection=STORAGE)
def halo_outbox_poison(msg: func.QueueMessage) -> None:
    """Every write-back the relay gave up on ends here: one error line to alert on."""
    queues.report_poison(msg.get_body().decode("utf-8"), os.environ, halo=True)


# SIGNL4 heartbeat monitoring (SIGNL4_HEARTBEAT_URL; unset: the timer does nothing). The schedule
# is the app setting RELAY_HEARTBEAT_SCHEDULE (NCRONTAB), which the template always sets.
@app.timer_trigger(schedule="%RELAY_HEARTBEAT_SCHEDULE%", arg_name="timer", use_monitor=False)
def heartbeat(timer: func.TimerRequest) -> None:
    from shared.entry.timers import beat  # loaded on the first tick, not at cold start

    beat(os.environ)


# RELAY_ROUTES' `page_after_window`: tickets whose `new` a quiet-hours schedule or maintenance
# window held back, still open when it ends, page then. Every 5 minutes; one partition read, and
# nothing at all without such a rule.
HELD_PAGES_SCHEDULE = "0 */5 * * * *"


@app.timer_trigger(schedule=HELD_PAGES_SCHEDULE, arg_name="timer", use_monitor=False)
def held_pages(timer: func.TimerRequest) -> None:
    from shared.entry.timers import release_held_pages  # loaded on the first tick

    release_held_pages(os.environ)


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return _http(handle_health_request(os.environ))


def local_host_banner() -> str:
    """Printed by `python -m devhost serve`: say plainly whether SIGNL4 will really be paged."""
    return bootstrap.describe_mode(os.environ)


def local_host_secrets() -> list[str]:
    """Setting values `python -m devhost serve` scrubs from its access log and tracebacks."""
    return bootstrap.secret_values(os.environ)
