"""The one error the local host shows its user: a problem to fix before serving."""

from __future__ import annotations


class LocalHostError(Exception):
    """A problem the user must fix before serving; the CLI prints the message, no traceback."""
