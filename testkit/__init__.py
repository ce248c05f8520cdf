"""Dev-only parts shared by tests/ and bench/: one fake per counterparty - the loopback SIGNL4
(signl4_fake), the loopback Halo (halo_fake) - the Azurite launcher (azurite) and the contracts
the fakes check bodies against (contract, contracts/). One implementation each. Not deployed
(.funcignore); nothing in shared/ or function_app.py imports it (tests/unit/test_package_boundaries.py
checks)."""
