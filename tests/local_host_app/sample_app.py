"""Test app: one function per behaviour the local host must reproduce."""

from __future__ import annotations

import json
import os

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="ping", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def ping(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        "pong", status_code=203, headers={"X-Sample": "yes"}, mimetype="text/x-pong"
    )


@app.route(route="items/{id}", methods=["POST", "PUT"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    """Echo what the function saw, body as hex so any bytes survive the trip."""
    seen = {
        "method": req.method,
        "url": req.url,
        "route_params": dict(req.route_params),
        "params": dict(req.params),
        "headers": dict(req.headers),
        "body_hex": req.get_body().hex(),
    }
    return func.HttpResponse(json.dumps(seen), mimetype="application/json")


@app.route(route="items/special", methods=["POST"])
def special(req: func.HttpRequest) -> func.HttpResponse:
    """A literal route that must win over items/{id} whatever the declaration order."""
    return func.HttpResponse("special")


@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret-detail-that-must-not-leak")


@app.route(route="nothing")
def nothing(req: func.HttpRequest) -> None:
    """No route methods: GET and POST by default; None means 204."""
    return None


@app.route(route="env/{name}", methods=["GET"])
def env(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(os.environ.get(req.route_params["name"], "<unset>"))


@app.route(route="enqueue", methods=["POST"])
@app.queue_output(arg_name="outbox", queue_name="sample-outbox", connection="AzureWebJobsStorage")
def enqueue(req: func.HttpRequest, outbox: func.Out[str]) -> func.HttpResponse:
    if req.params.get("skip") != "1":
        outbox.set(req.get_body().decode())
    return func.HttpResponse("queued", status_code=202)


@app.queue_trigger(arg_name="msg", queue_name="sample-outbox", connection="AzureWebJobsStorage")
def drain(msg: func.QueueMessage) -> None:
    raise AssertionError("the local host must never call a queue trigger")


@app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer")
def tick(timer: func.TimerRequest) -> None:
    raise AssertionError("the local host must never call a timer trigger")


def local_host_banner() -> str:
    return "sample app banner"


def local_host_secrets() -> list[str]:
    """Values `serve` must scrub from its access log (tests/unit/test_local_host.py sets it)."""
    return [os.environ.get("LH_SECRET", "")]
