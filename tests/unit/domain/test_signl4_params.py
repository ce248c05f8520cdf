"""SIGNL4's inbound query parameters (ExtIDParam, ExtStatusParam, ResolvedStatus, AckStatus,
NewStatus): parsed into SignalParams, then honoured by halo (which fields) and policy (which
values), with SIGNL4's meaning. Pure: no I/O."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from shared.domain.alert import AlertStatus
from shared.domain.halo import parse_event
from shared.domain.policy import decide
from shared.domain.signl4_params import NO_PARAMS, SignalParams, parse_signal_params
from shared.errors import MissingTicketId
from shared.settings import RelaySettings

# SIGNL4's own export: the method path's query string.
EXPORT_QUERY = {
    "ExtIDParam": "X-S4-ExternalID",
    "ExtStatusParam": "Status",
    "ResolvedStatus": "Closed",
}


def unset() -> RelaySettings:
    """No settings (built per test: a module-level call would turn a broken from_env into an
    import error that hides which test it breaks)."""
    return RelaySettings.from_env({})


def guide(status: Any, **extra: Any) -> dict[str, Any]:
    return {"Title": "Printer on fire", "Status": status, "X-S4-ExternalID": "HaloPSA-42", **extra}


# --- parsing the query string ---


def test_no_query_means_no_params() -> None:
    assert parse_signal_params(None) == NO_PARAMS
    assert parse_signal_params({}) == NO_PARAMS


def test_the_exports_query_string() -> None:
    params = parse_signal_params(EXPORT_QUERY)
    assert params == SignalParams(
        ext_id_param="x-s4-externalid",
        ext_status_param="status",
        resolved_statuses=frozenset({"closed"}),
    )


def test_names_and_values_are_matched_case_insensitively() -> None:
    params = parse_signal_params(
        {"extidparam": "Ticket_ID", "EXTSTATUSPARAM": " State ", "resolvedStatus": " DONE ",
         "ackstatus": "Working", "NewStatus": "Open"}
    )  # fmt: skip
    assert params.ext_id_param == "ticket_id"
    assert params.ext_status_param == "state"
    assert params.resolved_statuses == {"done"}
    assert params.ack_statuses == {"working"}
    assert params.new_statuses == {"open"}
    assert params.unknown == ()


@pytest.mark.parametrize(
    "name", ["ExtIDParam", "ExtStatusParam", "ResolvedStatus", "AckStatus", "NewStatus"]
)
def test_an_empty_value_counts_as_not_given(name: str) -> None:
    assert parse_signal_params({name: "  "}) == NO_PARAMS


def test_unknown_parameters_are_named_and_the_function_key_is_not() -> None:
    params = parse_signal_params({"code": "k3y", "Foo": "bar", "ResolvedStatus": "Done", "x": ""})
    assert params.unknown == ("Foo", "x")
    assert "k3y" not in repr(params) and "bar" not in repr(params)


# --- which fields (halo) ---


def test_without_params_the_guide_fields_are_read_as_before() -> None:
    event = parse_event(guide("Closed"))
    assert event.ticket.id == 42 and event.ticket.status_name == "Closed"


@pytest.mark.parametrize("value", ["HaloPSA-77", "halopsa-77", "77", 77])
def test_ext_id_param_names_the_external_id_field(value: Any) -> None:
    body = {"Subject": "Disk full", "Trigger_Id": value, "Trigger_Status": "RESOLVED"}
    params = parse_signal_params({"ExtIDParam": "trigger_id", "ExtStatusParam": "Trigger_Status"})
    event = parse_event(body, params)
    assert event.shape == "guide"
    assert event.ticket.external_id == "HaloPSA-77"
    assert event.ticket.status_name == "RESOLVED"


def test_ext_id_param_field_wins_over_x_s4_external_id() -> None:
    body = guide("New", Ticket_Ref="HaloPSA-5")
    event = parse_event(body, parse_signal_params({"ExtIDParam": "Ticket_Ref"}))
    assert event.ticket.id == 5


def test_ext_id_param_falls_back_to_x_s4_external_id_when_its_field_is_absent() -> None:
    event = parse_event(guide("New"), parse_signal_params({"ExtIDParam": "Ticket_Ref"}))
    assert event.ticket.id == 42


def test_an_ext_id_that_is_not_a_ticket_number_is_refused_naming_the_field() -> None:
    params = parse_signal_params({"ExtIDParam": "Trigger_Id"})
    with pytest.raises(MissingTicketId, match="trigger_id 'INC-9'"):
        parse_event({"Title": "x", "Trigger_Id": "INC-9"}, params)


def test_ext_status_param_names_the_status_field() -> None:
    body = guide("New", State="Done")
    assert parse_event(body).ticket.status_name == "New"
    assert parse_event(
        body, parse_signal_params({"ExtStatusParam": "state"})
    ).ticket.status_name == ("Done")


def test_the_body_link_is_kept() -> None:
    event = parse_event(guide("New", Link="https://acme.halopsa.com/ticket?id=42"))
    assert event.link == "https://acme.halopsa.com/ticket?id=42"


# --- which values (policy) ---


def test_resolved_status_done_resolves_a_done_ticket() -> None:
    """The issue's case: ResolvedStatus=Done, Status Done. Without the parameter, new."""
    event = parse_event(guide("Done"))
    assert decide(event, unset()).status is AlertStatus.NEW
    params = parse_signal_params({"ResolvedStatus": "done"})
    decision = decide(parse_event(guide("DONE"), params), unset(), params=params)
    assert decision.status is AlertStatus.RESOLVED


def test_params_add_to_the_settings_lists_never_replace_them() -> None:
    params = parse_signal_params({"ResolvedStatus": "Done"})
    for status in ("Closed", "9", "Resolved", "Done"):
        decision = decide(parse_event(guide(status)), unset(), params=params)
        assert decision.status is AlertStatus.RESOLVED, status


def test_ack_status_acknowledges() -> None:
    params = parse_signal_params({"AckStatus": "In Progress"})
    assert decide(parse_event(guide("In Progress")), unset()).status is AlertStatus.NEW
    decision = decide(parse_event(guide("in progress")), unset(), params=params)
    assert decision.status is AlertStatus.ACKNOWLEDGED


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("Open", AlertStatus.NEW),
        ("Closed", AlertStatus.RESOLVED),
        ("Working", AlertStatus.ACKNOWLEDGED),
    ],
)
def test_new_status_opens_and_the_listed_values_keep_their_meaning(
    status: str, expected: AlertStatus
) -> None:
    params = parse_signal_params({"NewStatus": "Open", "AckStatus": "Working"})
    assert decide(parse_event(guide(status)), unset(), params=params).status is expected


def test_with_new_status_any_other_value_is_discarded_as_signl4_does() -> None:
    params = parse_signal_params({"NewStatus": "Open", "ResolvedStatus": "Done"})
    decision = decide(parse_event(guide("Waiting on customer")), unset(), params=params)
    assert decision.action == "skip"
    assert "neither NewStatus, ResolvedStatus nor AckStatus" in decision.reason
    # Without NewStatus, SIGNL4 opens an alert for such a value; so does the relay.
    without = parse_signal_params({"ResolvedStatus": "Done"})
    assert decide(parse_event(guide("Waiting")), unset(), params=without).status is AlertStatus.NEW


def test_new_status_does_not_discard_an_event_whose_status_is_unknown() -> None:
    params = parse_signal_params({"NewStatus": "Open"})
    event = parse_event({"event": "new ticket logged", "object_id": 3}, params)
    assert decide(event, unset(), params=params).status is AlertStatus.NEW


def test_new_status_still_obeys_the_paging_filters() -> None:
    params = parse_signal_params({"NewStatus": "Open"})
    only_p1 = RelaySettings.from_env({"RELAY_PAGE_PRIORITIES": "P1"})
    decision = decide(parse_event(guide("Open", Priority="P3")), only_p1, params=params)
    assert decision.action == "skip" and "RELAY_PAGE_PRIORITIES" in decision.reason


@pytest.mark.parametrize(
    ("requested", "query"),
    list(
        itertools.product(
            ["new", "acknowledged", "resolved"],
            [
                {"ResolvedStatus": "Closed"},
                {"AckStatus": "Closed"},
                {"NewStatus": "Closed"},
                {"NewStatus": "Other", "ResolvedStatus": "x", "AckStatus": "y"},
            ],
        )
    ),
)
def test_an_explicit_x_s4_status_is_never_overridden(requested: str, query: dict) -> None:
    params = parse_signal_params(query)
    event = parse_event(guide("Closed", **{"X-S4-Status": requested}), params)
    assert decide(event, unset(), params=params).status is AlertStatus(requested)


def test_webhook_events_honour_resolved_status_too() -> None:
    params = parse_signal_params({"ResolvedStatus": "Done"})
    body = {"event": "ticket status changed", "object_id": 8, "ticket": {"status_name": "Done"}}
    assert decide(parse_event(body), unset()).action == "skip"
    assert decide(parse_event(body, params), unset(), params=params).status is AlertStatus.RESOLVED


def test_a_halo_webhook_stays_a_webhook_whatever_ext_id_param_names() -> None:
    """ExtIDParam=id must not turn a webhook envelope (whose `id` is a delivery GUID) into a
    guide body: the envelope's object_id is the ticket."""
    params = parse_signal_params({"ExtIDParam": "id"})
    body = {"id": "4f1c-guid", "event": "closed", "object_id": 4242}
    event = parse_event(body, params)
    assert (event.shape, event.ticket.id) == ("webhook", 4242)
