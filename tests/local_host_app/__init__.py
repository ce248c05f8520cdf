"""A tiny FunctionApp for tests/test_local_host.py (not the relay)."""
