"""`python -m shared check --live`'s Halo part against a loopback Halo (testkit/halo_fake.py):
off without two-way settings; with them, a fresh token is fetched (nothing written into Halo),
and a refusal is named without the client secret; a scope Halo refuses and an outcome name it
does not offer are named."""

from __future__ import annotations

from shared.ops.check import (
    check_halo_outcome,
    check_halo_token,
    check_halo_webhooks,
    check_live,
    failed,
    render,
)
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


# --- Halo's webhooks aimed at the relay (GET /api/Webhook): a disabled one is a silent outage ---

RELAY_URL = "https://relay.example.net"


def webhook(**fields: object) -> dict[str, object]:
    return {
        "id": "0b6f2b8e-3c1d-4a57-9e0f-2d7c5a1b9e44",
        "name": "SIGNL4 relay",
        "url": f"{RELAY_URL}/api/halopsa",
        "active": True,
        "disabled": False,
        "events": [{"id": 1, "name": "New Ticket"}, {"id": 2, "name": "Status Changed"}],
        "last_status": 200,
        **fields,
    }


def test_an_active_webhook_aimed_at_the_relay_passes(halo: HaloFake) -> None:
    other = webhook(id="7a0c1f52-5b9e-4c1d-8f3e-0d2a6b4c8e11", url="https://elsewhere.example/x")
    halo.webhooks = [other, webhook()]
    settings = two_way(halo, RELAY_PUBLIC_URL=RELAY_URL)
    findings = check_live(settings, [check_halo_token, check_halo_webhooks])
    (hook,) = [f for f in findings if f.subject == "haloWebhook"]
    assert hook.level == "ok"
    assert "'SIGNL4 relay'" in hook.message and "active" in hook.message
    assert "'New Ticket', 'Status Changed'" in hook.message and "last status 200" in hook.message
    assert not failed(findings) and halo.calls("/api/Actions") == []


def test_a_disabled_webhook_fails_the_check_naming_it_and_how_to_re_enable(
    halo: HaloFake,
) -> None:
    halo.webhooks = [webhook(disabled=True, last_status=503)]
    findings = check_live(
        two_way(halo, WEBSITE_HOSTNAME="RELAY.example.net"), [check_halo_webhooks]
    )
    (hook,) = findings
    assert hook.level == "error" and failed(findings)
    assert "'SIGNL4 relay'" in hook.message and "disabled" in hook.message
    assert "last status 503" in hook.message and "re-enable it in Halo" in hook.message


def test_an_inactive_webhook_is_off_too(halo: HaloFake) -> None:
    halo.webhooks = [webhook(active=False)]
    (hook,) = check_halo_webhooks(two_way(halo, RELAY_PUBLIC_URL=RELAY_URL)) or []
    assert hook.level == "error" and "inactive" in hook.message


def test_no_webhook_aimed_at_the_relay_fails_the_check(halo: HaloFake) -> None:
    halo.webhooks = [webhook(url="https://elsewhere.example/api/halopsa")]
    (hook,) = check_halo_webhooks(two_way(halo, RELAY_PUBLIC_URL=RELAY_URL)) or []
    assert hook.level == "error"
    assert "no webhook in Halo is aimed at relay.example.net" in hook.message


def test_a_refused_webhook_read_is_a_warning_and_the_rest_still_passes(halo: HaloFake) -> None:
    halo.script("/api/Webhook", 403)
    settings = two_way(halo, RELAY_PUBLIC_URL=RELAY_URL, HALO_NOTE_OUTCOME="private note")
    findings = check_live(settings, [check_halo_token, check_halo_webhooks, check_halo_outcome])
    levels = {f.subject: f.level for f in findings}
    assert levels == {"halo": "ok", "haloWebhook": "warning", "haloOutcome": "ok"}
    (hook,) = [f for f in findings if f.subject == "haloWebhook"]
    assert "Halo refused to list its webhooks" in hook.message and "HTTP 403" in hook.message
    assert "check by hand in Halo" in hook.message and not failed(findings)
    assert CLIENT_SECRET not in render(findings)


def test_without_a_known_host_the_webhooks_are_not_judged(halo: HaloFake) -> None:
    halo.webhooks = [webhook(disabled=True)]
    (hook,) = check_halo_webhooks(two_way(halo)) or []
    assert hook.level == "warning" and "RELAY_PUBLIC_URL" in hook.message
    assert halo.calls("/api/Webhook") == []


def test_without_api_credentials_nothing_is_asked(halo: HaloFake) -> None:
    settings = RelaySettings.from_env({"RELAY_PUBLIC_URL": RELAY_URL})
    assert check_halo_webhooks(settings) is None
    assert halo.requests == []


def test_halos_names_are_made_inert_in_the_finding(halo: HaloFake) -> None:
    halo.webhooks = [webhook(name="relay\x1b[2J\nerror fake line", disabled=True)]
    (hook,) = check_halo_webhooks(two_way(halo, RELAY_PUBLIC_URL=RELAY_URL)) or []
    assert "\n" not in hook.message and "\x1b" not in hook.message


def cli(halo: HaloFake, **extra: str) -> tuple[int, str]:
    """`python -m shared check --live` in-process, with the ledger in memory."""
    import io

    from shared.__main__ import main

    env = {
        "HALO_BASE_URL": halo.base_url,
        "HALO_CLIENT_ID": CLIENT_ID,
        "HALO_CLIENT_SECRET": CLIENT_SECRET,
        "SIGNL4_BACKOFF_SECONDS": "0",
        "AzureWebJobsStorage": "memory",
        "RELAY_PUBLIC_URL": RELAY_URL,
        **extra,
    }
    out = io.StringIO()
    return main(["check", "--live"], environ=env, stdout=out), out.getvalue()


def test_check_live_exits_1_naming_a_disabled_webhook_and_0_for_an_active_one(
    halo: HaloFake,
) -> None:
    halo.webhooks = [webhook(disabled=True, last_status=401)]
    code, text = cli(halo)
    assert code == 1, text
    (line,) = [line for line in text.splitlines() if line.startswith("error")]
    assert "haloWebhook" in line and "'SIGNL4 relay'" in line and "disabled" in line
    assert CLIENT_SECRET not in text
    halo.webhooks = [webhook()]
    code, text = cli(halo)
    assert code == 0, text
    assert "configuration ok" in text


def test_check_live_passes_when_halo_refuses_the_webhook_read(halo: HaloFake) -> None:
    halo.script("/api/Webhook", 403)
    code, text = cli(halo)
    assert code == 0, text
    assert "Halo refused to list its webhooks" in text and "configuration ok" in text


def test_a_disabled_webhook_shows_the_last_failures_halo_logged(halo: HaloFake) -> None:
    hook = webhook(disabled=True, last_status=503)
    halo.webhooks = [hook]
    halo.webhook_events = [
        {"webhook_id": hook["id"], "timestamp": "2026-12-03T10:05:00Z", "responsestatus": 503},
        {"webhook_id": hook["id"], "timestamp": "2026-12-03T10:04:00Z", "responsestatus": 200},
        {"webhook_id": hook["id"], "timestamp": "2026-12-03T10:03:00Z", "error": True},
        {"webhook_id": "7a0c1f52-5b9e-4c1d-8f3e-0d2a6b4c8e11", "responsestatus": 401},
    ]
    (finding,) = check_halo_webhooks(two_way(halo, RELAY_PUBLIC_URL=RELAY_URL)) or []
    assert finding.level == "error"
    assert (
        "Halo's last failures: 2026-12-03T10:05:00Z HTTP 503, 2026-12-03T10:03:00Z no answer:"
        in finding.message
    )
    (asked,) = halo.calls("/api/WebhookEvent")
    assert asked["query"]["webhook_id"] == hook["id"]


def test_a_refused_delivery_log_still_names_the_disabled_webhook(halo: HaloFake) -> None:
    halo.webhooks = [webhook(disabled=True)]
    halo.script("/api/WebhookEvent", 403)
    (finding,) = check_halo_webhooks(two_way(halo, RELAY_PUBLIC_URL=RELAY_URL)) or []
    assert finding.level == "error" and "last failures" not in finding.message
    assert "re-enable it in Halo" in finding.message
