"""Operator commands behind `python -m shared`: check, preview, send-test, halo-setup."""
