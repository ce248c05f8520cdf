"""A tiny FunctionApp for tests/unit/test_local_host.py (not the relay)."""
