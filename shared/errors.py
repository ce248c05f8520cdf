"""The relay's errors, one tree. Those a caller can see (RelayError) have a stable code and an
HTTP status; the storage errors stay inside the relay (the service turns them into an answer).

Exception
 +-- RelayError                      answered as {"error": code, "message": ...}
 |    +-- InvalidJson, UnsupportedPayload, Unauthorized, PayloadTooLarge, BatchTooLarge,
 |    |   MissingTicketId, InvalidStatus, InvalidField   (the caller's fault: 4xx)
 |    +-- DeliveryRejected           the receiving side refused for good: never retried
 |    |    +-- Signl4Rejected
 |    |    +-- HaloRejected
 |    +-- DeliveryUnavailable        the receiving side could not take it now: retried
 |    |    +-- Signl4Unavailable
 |    |    +-- HaloUnavailable
 |    +-- ConfigurationError         a setting is unusable
 |    +-- StorageUnavailable         the ledger could not be read and the answer needs it
 +-- StoreError                      the storage port (shared/adapters/store.py)
 |    +-- Conflict                   a condition failed: someone else wrote first
 |    +-- Unavailable                the store could not be read or written
 +-- MailboxUnavailable              a ticket's mailbox cannot be sent now: the queue retries
"""

from __future__ import annotations


class RelayError(Exception):
    """An error answered to the caller as `{"error": code, "message": message}`.

    Messages are written for the MSP engineer reading Halo's webhook log; they never carry a
    secret or the request body.
    """

    code = "internal"
    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_body(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


class InvalidJson(RelayError):
    code = "invalid_json"
    status_code = 400


class UnsupportedPayload(RelayError):
    code = "unsupported_payload"
    status_code = 400


class Unauthorized(RelayError):
    code = "unauthorized"
    status_code = 401


class PayloadTooLarge(RelayError):
    code = "payload_too_large"
    status_code = 413


class BatchTooLarge(RelayError):
    """A JSON array with more events than RELAY_MAX_BATCH: refused whole, nothing is sent."""

    code = "batch_too_large"
    status_code = 413


class MissingTicketId(RelayError):
    code = "missing_ticket_id"
    status_code = 422


class InvalidStatus(RelayError):
    code = "invalid_status"
    status_code = 422


class InvalidField(RelayError):
    """A field the relay acts on holds a value it cannot read without guessing (e.g. a flag that
    is neither clearly true nor clearly false). The message names the field, never a long value."""

    code = "invalid_field"
    status_code = 422


class DeliveryRejected(RelayError):
    """The receiving side (SIGNL4, or Halo for write-backs) refused for good: never retried."""

    code = "rejected"
    status_code = 502
    remote_status: int | None = None


class DeliveryUnavailable(RelayError):
    """The receiving side could not take it now (5xx, 429, timeout): kept and retried later."""

    code = "unavailable"
    status_code = 503
    remote_status: int | None = None


class Signl4Rejected(DeliveryRejected):
    """SIGNL4 answered 4xx: retrying will not help (and SIGNL4 throttles erroneous calls)."""

    code = "signl4_rejected"
    status_code = 502

    def __init__(self, message: str, signl4_status: int) -> None:
        super().__init__(message)
        self.signl4_status = signl4_status
        self.remote_status = signl4_status


class Signl4Unavailable(DeliveryUnavailable):
    """Retries exhausted (5xx, 429, timeout, connection failure): the caller may retry later."""

    code = "signl4_unavailable"
    status_code = 503

    def __init__(self, message: str, signl4_status: int | None = None) -> None:
        super().__init__(message)
        self.signl4_status = signl4_status
        self.remote_status = signl4_status


class ConfigurationError(RelayError):
    """A setting is unusable. Not the caller's fault, hence a 5xx, but it names the setting."""

    code = "configuration_error"
    status_code = 500


class HaloRejected(DeliveryRejected):
    """Halo answered 4xx to a write-back (permission, unknown outcome, bad credentials): never
    retried; the event goes to the poison queue with Halo's message."""

    code = "halo_rejected"
    status_code = 502

    def __init__(self, message: str, halo_status: int | None) -> None:
        super().__init__(message)
        self.remote_status = halo_status


class HaloUnavailable(DeliveryUnavailable):
    """Halo answered 429/5xx or timed out through every retry: the write-back is queued."""

    code = "halo_unavailable"
    status_code = 503

    def __init__(self, message: str, halo_status: int | None = None) -> None:
        super().__init__(message)
        self.remote_status = halo_status


class StorageUnavailable(RelayError):
    """The ledger could not be read, and the answer depends on it (a SIGNL4 notification is
    verified against the alert the relay recorded): try again later."""

    code = "storage_unavailable"
    status_code = 503


class StoreError(Exception):
    """Storage, inside the relay: never answered as such (the text may name a partition)."""


class Unavailable(StoreError):
    """The store could not be read or written (network, auth, Azurite not running)."""


class Conflict(StoreError):
    """A condition failed: another writer changed the partition between our read and write."""


class MailboxUnavailable(Exception):
    """The ticket's mailbox cannot be read or is being sent by another worker: retry later."""
