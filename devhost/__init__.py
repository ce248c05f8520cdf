"""The local Functions host for development: `python -m devhost serve` stands in for `func start`.

Not deployed (listed in .funcignore): it needs dev-only requirements (azure-storage-queue), and
nothing in `shared/` or function_app.py imports it (tests/unit/test_package_boundaries.py checks).

- `__main__`: the command line (`python -m devhost serve --host H --port P ...`);
- `serve`: loads settings, imports the app, starts the HTTP host and the queue runner;
- `config`: local.settings.json and host.json, read as the Functions host reads them;
- `functions`: the app's function index and the `OutValue` passed for output bindings;
- `http`: the HTTP host (routing, dispatch, access log);
- `queues`: queue triggers and queue outputs (Azurite/Storage, or in-process);
- `errors`: `LocalHostError`, a problem the user must fix before serving.
"""
