"""The HaloPSA -> SIGNL4 relay: the package behind function_app.py."""

__version__ = "0.1.0"
