"""Azure Functions entry point (Python v2 programming model): wires triggers to `shared`.

Imported on every cold start: keep it to wiring. The relay's logic lives in the package.
"""

from __future__ import annotations

import os

import azure.functions as func

from shared import relay

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def _http(response: relay.RelayResponse) -> func.HttpResponse:
    return func.HttpResponse(
        body=response.json_bytes(),
        status_code=response.status_code,
        headers=response.headers,
        mimetype="application/json",
        charset="utf-8",
    )


@app.route(route="halopsa", methods=["POST"])
def halopsa(req: func.HttpRequest) -> func.HttpResponse:
    """HaloPSA webhook / integration method target."""
    return _http(relay.handle_halo_request(req.get_body(), req.headers, os.environ))


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return _http(relay.health(os.environ))


def local_host_banner() -> str:
    """Printed by `python -m shared serve`: say plainly whether SIGNL4 will really be paged."""
    return relay.describe_mode(os.environ)
