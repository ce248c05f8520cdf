"""SIGNL4's inbound query parameters, read from the relay's own request URL (pure).

SIGNL4's webhook takes them for senders that cannot write X-S4 fields, and SIGNL4's own HaloPSA
export uses them (`?ExtIDParam=X-S4-ExternalID&ExtStatusParam=Status&ResolvedStatus=Closed`).
The relay honours them with that meaning on both HTTP routes (`parse_signal_params` lists them).
Other query parameters are ignored; their names (never their values: one may be a function key)
are reported so the shell can log them.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

# Query parameter names, case-folded (SIGNL4's own spelling in the comments' casing).
EXT_ID_PARAM = "extidparam"
EXT_STATUS_PARAM = "extstatusparam"
RESOLVED_STATUS = "resolvedstatus"
ACK_STATUS = "ackstatus"
NEW_STATUS = "newstatus"
# Query parameters of the Functions host itself: known, not SIGNL4's, not worth a log line.
HOST_PARAMS = frozenset({"code"})
FIELD_NAME_MAX_CHARS = 100


class SignalParams(BaseModel):
    """What the query string tells the relay about the body. Empty: nothing (the default)."""

    model_config = ConfigDict(frozen=True)

    # Body field names, case-folded (body keys are matched case-insensitively).
    ext_id_param: str | None = None
    ext_status_param: str | None = None
    # Status values, case-folded.
    resolved_statuses: frozenset[str] = frozenset()
    ack_statuses: frozenset[str] = frozenset()
    new_statuses: frozenset[str] = frozenset()
    # Names of query parameters the relay does not know, as sent (for a debug line).
    unknown: tuple[str, ...] = ()


NO_PARAMS = SignalParams()


def _field_name(value: str) -> str | None:
    name = value.strip()[:FIELD_NAME_MAX_CHARS].casefold()
    return name or None


def _status(value: str) -> frozenset[str]:
    status = value.strip().casefold()
    return frozenset({status}) if status else frozenset()


def parse_signal_params(query: Mapping[str, str] | None) -> SignalParams:
    """Read SIGNL4's parameters from a query mapping (names matched case-insensitively).

    - `ExtIDParam`: the name of the body field that holds the external id;
    - `ExtStatusParam`: the name of the body field that holds the status;
    - `ResolvedStatus` / `AckStatus` / `NewStatus`: the value of that field that resolves /
      acknowledges / opens the alert. With `NewStatus` set, a value that is none of them is
      discarded (SIGNL4: "useful if there are update events you would like to ignore").

    Status values add to the `RELAY_*_STATUSES` settings (compared case-insensitively) and never
    override an explicit `X-S4-Status` in the body. An empty value counts as not given:
    `ResolvedStatus=` must not make "" a resolved status.
    """
    if not query:
        return NO_PARAMS
    known: dict[str, str] = {}
    unknown: list[str] = []
    for name, value in query.items():
        folded = str(name).casefold()
        if folded in (EXT_ID_PARAM, EXT_STATUS_PARAM, RESOLVED_STATUS, ACK_STATUS, NEW_STATUS):
            known[folded] = str(value)
        elif folded not in HOST_PARAMS:
            unknown.append(str(name)[:FIELD_NAME_MAX_CHARS])
    return SignalParams(
        ext_id_param=_field_name(known.get(EXT_ID_PARAM, "")),
        ext_status_param=_field_name(known.get(EXT_STATUS_PARAM, "")),
        resolved_statuses=_status(known.get(RESOLVED_STATUS, "")),
        ack_statuses=_status(known.get(ACK_STATUS, "")),
        new_statuses=_status(known.get(NEW_STATUS, "")),
        unknown=tuple(unknown),
    )
