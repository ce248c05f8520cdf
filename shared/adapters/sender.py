"""The sender port: what the delivery service needs from a remote (SIGNL4 for pages, Halo for
write-backs): one call with a payload and the settings to send with, answered by a SendResult or
an error of the DeliveryRejected/DeliveryUnavailable kind. The entry layer picks the adapter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.settings import RelaySettings


class SendResult(BaseModel):
    """A remote accepted the call: its status, the id it gave (SIGNL4's eventId, Halo's action
    id) and how many attempts it took."""

    model_config = ConfigDict(frozen=True, defer_build=True)  # built on the first send

    status_code: int
    event_id: str | None = None
    attempts: int = 1


Sender = Callable[[dict[str, Any], RelaySettings], SendResult]
