"""`python -m shared check --live`'s Halo part against a loopback Halo (tests/halo_fake.py):
off without two-way settings; with them, a fresh token is fetched (nothing written into Halo),
and a refusal is named without the client secret."""

from __future__ import annotations

from shared.check import check_halo_token, render
from shared.settings import RelaySettings
from tests.halo_fake import CLIENT_ID, CLIENT_SECRET, HaloFake, halo_fixture  # noqa: F401


def two_way(halo: HaloFake) -> RelaySettings:
    return RelaySettings.from_env(
        {
            "HALO_BASE_URL": halo.base_url,
            "HALO_CLIENT_ID": CLIENT_ID,
            "HALO_CLIENT_SECRET": CLIENT_SECRET,
            "SIGNL4_BACKOFF_SECONDS": "0",
        }
    )


def test_two_way_off_is_not_checked(halo: HaloFake) -> None:
    assert check_halo_token(RelaySettings.from_env({})) is None
    assert halo.calls("/auth/token") == []


def test_a_token_is_fetched_fresh_and_nothing_is_written(halo: HaloFake) -> None:
    settings = two_way(halo)
    first = check_halo_token(settings)
    second = check_halo_token(settings)  # not the cached token: the check asks again
    assert first is not None and (first.level, first.subject) == ("ok", "halo")
    assert second == first
    tokens = halo.calls("/auth/token")
    assert len(tokens) == 2
    assert tokens[0]["form"]["grant_type"] == "client_credentials"
    assert tokens[0]["form"]["client_id"] == CLIENT_ID
    assert halo.calls("/api/Actions") == [] and halo.calls("/api/Tickets") == []


def test_refused_credentials_are_an_error_without_the_secret(halo: HaloFake) -> None:
    halo.script("/auth/token", 401)
    finding = check_halo_token(two_way(halo))
    assert finding is not None and (finding.level, finding.subject) == ("error", "halo")
    assert "HALO_CLIENT_ID" in finding.message and "HTTP 401" in finding.message
    report = render([finding])
    assert CLIENT_SECRET not in report and report.endswith("1 error(s)\n")
