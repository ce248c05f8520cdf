"""Dev-only parts shared by tests/ and bench/: the loopback SIGNL4 (signl4_fake) and the Azurite
launcher (azurite). One implementation each. Not deployed (.funcignore); nothing in shared/ or
function_app.py imports it (tests/unit/test_package_boundaries.py checks)."""
