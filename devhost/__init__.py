"""The local Functions host for development: `python -m devhost serve` stands in for `func start`.

Not deployed (listed in .funcignore): it needs dev-only requirements (azure-storage-queue) and
the relay in `shared/` never imports it.
"""
