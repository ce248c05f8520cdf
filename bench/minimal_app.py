"""The smallest v2 `azure.functions` app: one HTTP route, nothing else.

The cold-start baseline. Importing it costs what every Python function app pays (the
interpreter aside); `function_app` minus this is what the relay adds to each cold start.
"""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="ping", methods=["POST"])
def ping(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.get_body(), status_code=200, mimetype="application/json")
