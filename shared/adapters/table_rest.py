"""The storage port on Azure Table Storage over its REST API (edge), without the SDK.

The ledger's hot path is one or two single-row calls per event; through azure-data-tables each
cost ~2.2 ms of client CPU (pipeline, policies, signing, JSON) on top of Azurite's ~0.6 ms round
trip. Here a call is one signed request on a kept-alive `requests` Session: get an entity, query a
partition (following continuation headers), insert (POST), replace with If-Match (PUT), delete
with If-Match (DELETE), and an entity-group transaction ($batch, one changeset) for multi-row
commits. Same semantics as shared/adapters/table_sdk.py: 404/409/412 on a write is store.Conflict,
anything else store.Unavailable described by status and kind only (no URL, no key, no token).

Auth: SharedKey from a connection string (Azurite's `UseDevelopmentStorage=true`, or account
name/key with TableEndpoint or DefaultEndpointsProtocol/EndpointSuffix), or an Entra ID bearer
token for `AzureWebJobsStorage__accountName` (azure-identity, imported on first use, the token
cached until shortly before it expires). A connection string without an account key (a SAS) is
left to the SDK adapter: `open_rest_store` returns None for it.

requests, hmac and the rest load on the first call, not at cold start.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from shared.adapters.store import Conflict, Op, Row, Unavailable
from shared.delivery.schema import TABLE_NAME, TRANSACTION_MAX_ROWS  # this adapter goes (issue 20)
from shared.settings import RelaySettings

if TYPE_CHECKING:
    import requests

API_VERSION = "2019-02-02"
ACCEPT = "application/json;odata=minimalmetadata"
STORAGE_SCOPE = "https://storage.azure.com/.default"
TOKEN_REFRESH_MARGIN_SECONDS = 300
CONNECT_TIMEOUT_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 5.0
# Azurite's published development account (the same for every Azurite; not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
DEV_TABLE_ENDPOINT = "http://127.0.0.1:10002/devstoreaccount1"
INT32_RANGE = range(-(2**31), 2**31)
WRITE_CONFLICT_STATUSES = frozenset([404, 409, 412])


@dataclass(frozen=True)
class TableAccount:
    """Where the table service is and how to sign for it. `key` None: bearer tokens."""

    name: str
    endpoint: str  # scheme://host[:port][/account for path-style (Azurite)], no trailing slash
    key: str | None = None

    def __repr__(self) -> str:  # never the key
        return f"TableAccount(name={self.name!r}, endpoint={self.endpoint!r})"


# --- pure parts: connection strings, signing, entity wire format, $batch ---


def parse_connection_string(text: str) -> TableAccount | None:
    """The account a connection string names, or None when it has no account key (SAS-only or
    not a connection string at all)."""
    parts: dict[str, str] = {}
    for piece in text.split(";"):
        name, sep, value = piece.strip().partition("=")
        if sep:
            parts[name.strip().lower()] = value.strip()
    if parts.get("usedevelopmentstorage", "").lower() == "true":
        return TableAccount(DEV_ACCOUNT, DEV_TABLE_ENDPOINT, DEV_ACCOUNT_KEY)
    name, key = parts.get("accountname"), parts.get("accountkey")
    if not name or not key:
        return None
    endpoint = parts.get("tableendpoint")
    if not endpoint:
        protocol = parts.get("defaultendpointsprotocol") or "https"
        suffix = parts.get("endpointsuffix") or "core.windows.net"
        endpoint = f"{protocol}://{name}.table.{suffix}"
    return TableAccount(name, endpoint.rstrip("/"), key)


def http_date(moment: datetime) -> str:
    """RFC 1123, as x-ms-date wants it."""
    return moment.astimezone(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")


def string_to_sign(method: str, content_type: str, date: str, account: str, path: str) -> str:
    """SharedKey for the Table service: VERB, Content-MD5 (empty), Content-Type, Date and the
    canonicalized resource: /account + the request's encoded URI path (no query: the relay
    never sends `comp`)."""
    return f"{method}\n\n{content_type}\n{date}\n/{account}{path}"


def shared_key(account: str, key: str, to_sign: str) -> str:
    import base64
    import hashlib
    import hmac

    digest = hmac.new(base64.b64decode(key), to_sign.encode("utf-8"), hashlib.sha256).digest()
    return f"SharedKey {account}:{base64.b64encode(digest).decode('ascii')}"


def odata_string(value: str) -> str:
    """An OData string literal: in single quotes, single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def key_literal(value: str) -> str:
    """A key in an entity's address: an OData literal, URL-encoded."""
    return quote(odata_string(value), safe="")


def entity_path(partition: str, row: str) -> str:
    return f"/{TABLE_NAME}(PartitionKey={key_literal(partition)},RowKey={key_literal(row)})"


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_wire(entity: dict[str, Any]) -> dict[str, Any]:
    """An entity as the JSON body (the SDK's types: int32 plain, larger ints Edm.Int64, floats
    Edm.Double, datetimes Edm.DateTime in UTC; None properties left out)."""
    body: dict[str, Any] = {}
    for name, value in entity.items():
        if value is None:
            continue
        if isinstance(value, (bool, str)):
            body[name] = value
        elif isinstance(value, int):
            if value in INT32_RANGE:
                body[name] = value
            else:
                body[name], body[f"{name}@odata.type"] = str(value), "Edm.Int64"
        elif isinstance(value, float):
            body[name], body[f"{name}@odata.type"] = value, "Edm.Double"
        elif isinstance(value, datetime):
            body[name], body[f"{name}@odata.type"] = _iso(value), "Edm.DateTime"
        else:
            raise TypeError(f"property {name}: {type(value).__name__} is not stored")
    return body


def parse_datetime(text: str) -> datetime:
    """Edm.DateTime as the service writes it (up to 7 fraction digits), tz-aware UTC."""
    main, _, fraction = text.rstrip("Z").partition(".")
    moment = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    if fraction:
        moment = moment.replace(microsecond=int(fraction[:6].ljust(6, "0")))
    return moment


def from_wire(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A JSON entity (minimal metadata) as the SDK adapter yields it, and its ETag: keys
    included, Timestamp and odata annotations left out, datetimes tz-aware, Int64 as int."""
    entity: dict[str, Any] = {}
    for name, value in body.items():
        if name.startswith("odata.") or "@odata." in name or name == "Timestamp":
            continue
        kind = body.get(f"{name}@odata.type")
        if kind == "Edm.DateTime":
            entity[name] = parse_datetime(value)
        elif kind == "Edm.Int64":
            entity[name] = int(value)
        elif kind == "Edm.Double":
            entity[name] = float(value)
        else:
            entity[name] = value
    return entity, str(body.get("odata.etag") or "")


@dataclass(frozen=True)
class SubRequest:
    method: str
    path: str  # encoded, from the table on: /relayledger or /relayledger(PartitionKey=..)
    body: dict[str, Any] | None = None
    if_match: str | None = None


def single_request(partition: str, op: Op) -> SubRequest:
    """The REST call for one conditional write (delete/replace without an ETag: only if it
    exists, If-Match: *)."""
    if op.kind == "create":
        entity = {**(op.entity or {}), "PartitionKey": partition, "RowKey": op.key}
        return SubRequest("POST", f"/{TABLE_NAME}", to_wire(entity))
    path = entity_path(partition, op.key)
    if op.kind == "replace":
        entity = {**(op.entity or {}), "PartitionKey": partition, "RowKey": op.key}
        return SubRequest("PUT", path, to_wire(entity), op.etag or "*")
    return SubRequest("DELETE", path, None, op.etag or "*")


def batch_body(base_url: str, requests_: Sequence[SubRequest], boundary: str) -> str:
    """An entity-group transaction: one changeset in a multipart/mixed batch."""
    changeset = f"changeset_{boundary}"
    lines = [f"--batch_{boundary}", f"Content-Type: multipart/mixed; boundary={changeset}", ""]
    for request in requests_:
        lines += [
            f"--{changeset}",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            "",
            f"{request.method} {base_url}{request.path} HTTP/1.1",
            f"Accept: {ACCEPT}",
            "DataServiceVersion: 3.0",
        ]
        if request.if_match is not None:
            lines.append(f"If-Match: {request.if_match}")
        if request.method == "POST":
            lines.append("Prefer: return-no-content")
        if request.body is not None:
            lines += ["Content-Type: application/json", "", json.dumps(request.body)]
        else:
            lines.append("")
    lines += [f"--{changeset}--", f"--batch_{boundary}--", ""]
    return "\r\n".join(lines)


def batch_results(text: str) -> list[tuple[int, str]]:
    """(status, ETag) of each operation in a $batch answer, in order. A failed changeset
    answers with one response: the failing operation's status."""
    results: list[tuple[int, str]] = []
    for block in text.split("HTTP/1.1 ")[1:]:
        head = block.split("\r\n\r\n", 1)[0].replace("\r\n", "\n").split("\n")
        status = int(head[0].split(" ", 1)[0])
        etag = ""
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "etag":
                etag = value.strip()
        results.append((status, etag))
    return results


def describe_status(status: int, what: str) -> str:
    return f"table {what} answered HTTP {status}"


# --- the shell: one session, signed calls ---


class TokenSource:
    """Entra ID bearer tokens for storage, fetched lazily and kept until shortly before expiry."""

    def __init__(self, credential: Any = None) -> None:
        self._credential = credential
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.time() > self._expires - TOKEN_REFRESH_MARGIN_SECONDS:
                if self._credential is None:
                    from azure.identity import DefaultAzureCredential

                    from shared.adapters.table_sdk import quiet_azure_sdk

                    quiet_azure_sdk()
                    self._credential = DefaultAzureCredential()
                got = self._credential.get_token(STORAGE_SCOPE)
                self._token, self._expires = got.token, float(got.expires_on)
            return self._token


def new_session() -> requests.Session:
    """A kept-alive session for storage: no cookies, no environment proxies or .netrc
    (trust_env off), redirects refused, one retry (connect errors, and 5xx/timeouts of
    idempotent methods), like the SDK adapter's transport."""
    from http.cookiejar import DefaultCookiePolicy

    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    session = requests.Session()
    session.trust_env = False
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))

    class StorageRetry(Retry):
        def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
            # As azure-core: a POST answered 500/503/504 was not applied, so it may go again
            # (a POST that timed out may have been, so that one is not retried).
            if method.upper() == "POST" and status_code in (500, 503, 504):
                method = "GET"
            return bool(super().is_retry(method, status_code, has_retry_after))

    retry = StorageRetry(
        total=1,
        redirect=0,
        status_forcelist=(500, 502, 503, 504),
        backoff_factor=0.2,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class RestTableStore:
    """A PartitionStore on one Azure table over REST. Thread-safe (requests' pool is)."""

    def __init__(
        self,
        account: TableAccount,
        *,
        tokens: TokenSource | None = None,
        create_table: bool = False,
        session: requests.Session | None = None,
    ) -> None:
        if account.key is None and tokens is None:
            raise ValueError("an account key or a token source is needed")
        self.account = account
        self._tokens = tokens
        self._session = session
        self._session_lock = threading.Lock()
        self._path_prefix = _url_path(account.endpoint)
        self._table_missing = create_table

    # -- the port --

    def read(self, partition: str, row: str | None = None) -> dict[str, Row]:
        self._ensure_table()
        if row is not None:
            response = self._call("GET", entity_path(partition, row))
            if response.status_code == 404:
                return {}
            self._expect(response, 200, "read")
            entity, etag = from_wire(response.json())
            return {row: Row(row, entity, response.headers.get("ETag") or etag)}
        rows: dict[str, Row] = {}
        query = {"$filter": f"PartitionKey eq {odata_string(partition)}"}
        while True:
            response = self._call("GET", f"/{TABLE_NAME}()", params=query)
            self._expect(response, 200, "query")
            for body in response.json().get("value", []):
                entity, etag = from_wire(body)
                rows[entity["RowKey"]] = Row(entity["RowKey"], entity, etag)
            next_partition = response.headers.get("x-ms-continuation-NextPartitionKey")
            if not next_partition:
                break
            query = {
                **query,
                "NextPartitionKey": next_partition,
                "NextRowKey": response.headers.get("x-ms-continuation-NextRowKey") or "",
            }
        return dict(sorted(rows.items()))

    def read_rows(self, partition: str, rows: Sequence[str]) -> dict[str, Row]:
        """One GET per named row: a filter of ORed row keys would scan the partition."""
        found: dict[str, Row] = {}
        for row in sorted(set(rows)):
            found.update(self.read(partition, row))
        return found

    def commit(self, partition: str, ops: Sequence[Op]) -> dict[str, str]:
        if len(ops) > TRANSACTION_MAX_ROWS:
            raise ValueError(
                f"{len(ops)} rows in one transaction; sized for {TRANSACTION_MAX_ROWS}"
            )
        self._ensure_table()
        calls = [single_request(partition, op) for op in ops]
        if len(calls) == 1:
            call = calls[0]
            response = self._call(call.method, call.path, body=call.body, if_match=call.if_match)
            results = [(response.status_code, response.headers.get("ETag") or "")]
        else:
            results = self._batch(calls)
        for status, _ in results:
            if status in WRITE_CONFLICT_STATUSES:
                raise Conflict(partition)
            if status >= 300:
                raise Unavailable(describe_status(status, "write"))
        if len(results) != len(ops):
            raise Unavailable("table write answered an unreadable batch")
        return {
            op.key: etag
            for op, (_, etag) in zip(ops, results, strict=True)
            if op.kind != "delete" and etag
        }

    # -- requests --

    def _batch(self, calls: Sequence[SubRequest]) -> list[tuple[int, str]]:
        import uuid

        boundary = uuid.uuid4().hex
        body = batch_body(self.account.endpoint, calls, boundary)
        response = self._call(
            "POST",
            "/$batch",
            raw=body.encode("utf-8"),
            content_type=f"multipart/mixed; boundary=batch_{boundary}",
        )
        if response.status_code != 202:
            return [(response.status_code, "")]
        return batch_results(response.text)

    def _ensure_table(self) -> None:
        if not self._table_missing:
            return
        response = self._call("POST", "/Tables", body={"TableName": TABLE_NAME})
        if response.status_code not in (201, 204, 409):  # 409: it exists already
            raise Unavailable(describe_status(response.status_code, "create"))
        self._table_missing = False

    def _expect(self, response: requests.Response, status: int, what: str) -> None:
        if response.status_code != status:
            raise Unavailable(describe_status(response.status_code, what))

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        raw: bytes | None = None,
        content_type: str = "",
        if_match: str | None = None,
    ) -> requests.Response:
        import requests

        if body is not None:
            raw, content_type = json.dumps(body).encode("utf-8"), "application/json"
        date = http_date(datetime.now(timezone.utc))
        headers = {
            "x-ms-date": date,
            "x-ms-version": API_VERSION,
            "Accept": ACCEPT,
            "DataServiceVersion": "3.0",
            "MaxDataServiceVersion": "3.0;NetFx",
        }
        if content_type:
            headers["Content-Type"] = content_type
        if method == "POST" and body is not None:
            headers["Prefer"] = "return-no-content"
        if if_match is not None:
            headers["If-Match"] = if_match
        if self.account.key is not None:
            signed = string_to_sign(
                method, content_type, date, self.account.name, self._path_prefix + path
            )
            headers["Authorization"] = shared_key(self.account.name, self.account.key, signed)
        else:
            assert self._tokens is not None
            try:
                headers["Authorization"] = f"Bearer {self._tokens.token()}"
            except Exception as error:  # azure-identity's errors can be long: kind only
                raise Unavailable(f"no storage token ({type(error).__name__})") from None
        try:
            return self._http().request(
                method,
                self.account.endpoint + path,
                params=params,
                data=raw,
                headers=headers,
                timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
                allow_redirects=False,
            )
        except requests.RequestException as error:
            # The exception's text names the URL: keep the kind only.
            raise Unavailable(f"table {method} failed ({type(error).__name__})") from None

    def _http(self) -> requests.Session:
        if self._session is None:
            with self._session_lock:
                if self._session is None:
                    self._session = new_session()
        return self._session


def _url_path(endpoint: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(endpoint).path.rstrip("/")


# -- opening the table: once per worker, lazily --

_stores: dict[tuple[str | None, str | None], RestTableStore | None] = {}
_stores_lock = threading.Lock()


def open_rest_store(settings: RelaySettings) -> RestTableStore | None:
    """The table for these settings over REST; None when no storage is configured, or the
    connection string has no account key (the SDK adapter serves that)."""
    connection = (
        settings.storage_connection.get_secret_value() if settings.storage_connection else None
    )
    key = (connection, settings.storage_account_name)
    if key == (None, None):
        return None
    with _stores_lock:
        if key not in _stores:
            if connection is not None:
                account = parse_connection_string(connection)
                _stores[key] = (
                    RestTableStore(account, create_table=True) if account is not None else None
                )
            else:
                name = str(settings.storage_account_name)
                _stores[key] = RestTableStore(
                    TableAccount(name, f"https://{name}.table.core.windows.net"),
                    tokens=TokenSource(),
                )
        return _stores[key]
