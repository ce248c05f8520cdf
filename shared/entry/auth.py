"""Who may call the relay's webhook routes: Halo's Basic auth on /api/halopsa and the inbound
token on /api/webhook/{token}. Every comparison runs in constant time, and none is skipped."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from shared.errors import Unauthorized
from shared.settings import RelaySettings

# The inbound token may come in this header instead of the path (keeps it out of request URLs).
TOKEN_HEADER = "X-Relay-Token"


def check_basic_auth(headers: Mapping[str, str], settings: RelaySettings) -> None:
    """Halo webhooks support HTTP Basic auth; when a username and password are set, require it."""
    if not settings.basic_auth_required:
        return
    assert settings.halo_webhook_username and settings.halo_webhook_password
    header = headers.get("Authorization") or headers.get("authorization") or ""
    scheme, _, encoded = header.partition(" ")
    if scheme.casefold() != "basic" or not encoded.strip():
        raise Unauthorized("this relay requires HTTP Basic authentication")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("the Basic credentials are not valid base64") from None
    username, sep, password = decoded.partition(b":")
    expected_user = settings.halo_webhook_username.encode("utf-8")
    expected_password = settings.halo_webhook_password.get_secret_value().encode("utf-8")
    # Both compared in constant time, and both always compared, so timing reveals neither.
    user_ok = hmac.compare_digest(username, expected_user)
    password_ok = hmac.compare_digest(password, expected_password)
    if not (sep and user_ok and password_ok):
        raise Unauthorized("wrong username or password")


def inbound_token_ok(token: str, headers: Mapping[str, str], settings: RelaySettings) -> bool:
    """The token in the path and the X-Relay-Token header: each one given must equal
    RELAY_INBOUND_TOKEN, and at least one must be given. Unset setting: the route is off."""
    if settings.relay_inbound_token is None:
        return False
    expected = settings.relay_inbound_token.get_secret_value().strip().encode("utf-8")
    header = headers.get(TOKEN_HEADER) or headers.get(TOKEN_HEADER.lower()) or ""
    given = [value.encode("utf-8", "replace") for value in (token, header) if value]
    # Every presented token is compared in constant time, and all of them must match.
    results = [hmac.compare_digest(value, expected) for value in given]
    return bool(results) and all(results)
