"""`python -m shared check --live`'s Halo part against a loopback Halo (testkit/halo_fake.py):
off without two-way settings; with them, a fresh token is fetched (nothing written into Halo),
and a refusal is named without the client secret; a scope Halo refuses and an outcome name it
does not offer are named."""

from __future__ import annotations

from shared.ops.check import check_halo_outcome, check_halo_token, render
from shared.settings import RelaySettings
from testkit.halo_fake import CLIENT_ID, CLIENT_SECRET, HaloFake, halo_fixture  # noqa: F401


def two_way(halo: HaloFake, **extra: str) -> RelaySettings:
    return RelaySettings.from_env(
        {
            "HALO_BASE_URL": halo.base_url,
            "HALO_CLIENT_ID": CLIENT_ID,
            "HALO_CLIENT_SECRET": CLIENT_SECRET,
            "SIGNL4_BACKOFF_SECONDS": "0",
            **extra,
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


def test_a_refused_optional_scope_is_a_warning_naming_it(halo: HaloFake) -> None:
    halo.known_scopes = {"read:tickets", "edit:tickets"}
    finding = check_halo_token(two_way(halo, HALO_ASSIGN_ON_ACK="true"))
    assert finding is not None and (finding.level, finding.subject) == ("warning", "halo")
    assert "refused the scope read:agents" in finding.message
    assert "HALO_ASSIGN_ON_ACK" in finding.message
    scopes = [call["form"]["scope"] for call in halo.calls("/auth/token")]
    assert scopes == ["read:tickets edit:tickets read:agents", "read:tickets edit:tickets"]


def test_a_required_scope_refused_is_an_error(halo: HaloFake) -> None:
    halo.known_scopes = {"read:tickets"}  # edit:tickets (the notes) is not optional
    finding = check_halo_token(two_way(halo))
    assert finding is not None and finding.level == "error"
    assert "invalid_scope" in finding.message and "HALO_SCOPE" in finding.message
    assert len(halo.calls("/auth/token")) == 1


def test_the_outcome_name_is_resolved_to_halos_id(halo: HaloFake) -> None:
    finding = check_halo_outcome(two_way(halo, HALO_NOTE_OUTCOME="private note"))
    assert finding is not None and (finding.level, finding.subject) == ("ok", "haloOutcome")
    assert finding.message == "HALO_NOTE_OUTCOME is Halo's outcome id 7"
    assert halo.calls("/api/Actions") == []


def test_an_unknown_outcome_is_an_error_naming_it_and_what_halo_offers(halo: HaloFake) -> None:
    halo.outcomes = [{"id": 3, "outcome": "Internal Note"}, {"id": 4, "outcome": "Email User"}]
    finding = check_halo_outcome(two_way(halo))
    assert finding is not None and (finding.level, finding.subject) == ("error", "haloOutcome")
    assert finding.message == (
        "HALO_NOTE_OUTCOME 'Private Note' is not an outcome Halo offers (it offers: "
        "'Internal Note', 'Email User'); set HALO_NOTE_OUTCOME to one of them, or "
        "HALO_NOTE_OUTCOME_ID"
    )
    # Asked again on the next check, not answered from what the process learnt.
    halo.outcomes.append({"id": 5, "outcome": "Private Note"})
    again = check_halo_outcome(two_way(halo))
    assert again is not None and again.level == "ok"
    assert len(halo.calls("/api/Outcome")) == 2
    assert halo.calls("/api/Actions") == []


def test_an_outcome_id_needs_no_outcome_check(halo: HaloFake) -> None:
    assert check_halo_outcome(two_way(halo, HALO_NOTE_OUTCOME_ID="7")) is None
    assert check_halo_outcome(RelaySettings.from_env({})) is None
    assert halo.requests == []
