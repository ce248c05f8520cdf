"""shared/adapters/table_rest.py's pure parts: SharedKey signing, connection strings, the entity wire
format, key escaping and $batch answers. The calls themselves run over Azurite
(tests/integration/test_table_rest.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from shared.adapters.store import Op
from shared.adapters.table_rest import (
    DEV_ACCOUNT_KEY,
    STORAGE_SCOPE,
    TOKEN_REFRESH_MARGIN_SECONDS,
    RestTableStore,
    TableAccount,
    TokenSource,
    _url_path,
    batch_body,
    batch_results,
    describe_status,
    entity_path,
    from_wire,
    http_date,
    key_literal,
    odata_string,
    open_rest_store,
    parse_connection_string,
    shared_key,
    single_request,
    string_to_sign,
    to_wire,
)
from shared.settings import RelaySettings

KEY = base64.b64encode(b"a test account key, 32+ bytes long!").decode()


def test_shared_key_signs_the_table_service_string_to_sign() -> None:
    # The Table service's SharedKey string-to-sign (Authorize with Shared Key, "Table service
    # (Shared Key authorization)"): VERB, Content-MD5, Content-Type, Date, CanonicalizedResource,
    # each on its own line; the resource is /account followed by the encoded URI path.
    date = "Sun, 11 Oct 2009 21:49:13 GMT"
    expected_text = (
        "PUT\n\napplication/json\nSun, 11 Oct 2009 21:49:13 GMT\n"
        "/myaccount/mytable(PartitionKey='p%20''1',RowKey='alert')"
    )
    path = "/mytable(PartitionKey='p%20''1',RowKey='alert')"
    text = string_to_sign("PUT", "application/json", date, "myaccount", path)
    assert text == expected_text
    digest = hmac.new(base64.b64decode(KEY), expected_text.encode(), hashlib.sha256).digest()
    assert shared_key("myaccount", KEY, text) == (
        "SharedKey myaccount:" + base64.b64encode(digest).decode()
    )
    # A GET has no Content-Type: its line stays empty.
    assert string_to_sign("GET", "", date, "a", "/t()") == f"GET\n\n\n{date}\n/a/t()"


def test_http_date_is_rfc1123_in_gmt() -> None:
    moment = datetime(2009, 10, 11, 23, 49, 13, tzinfo=timezone(timedelta(hours=2)))
    assert http_date(moment) == "Sun, 11 Oct 2009 21:49:13 GMT"


def test_http_date_is_gmt_whatever_the_machines_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    # Storage refuses a request whose x-ms-date is more than 15 minutes off: a local time
    # labelled GMT would fail every call on a machine outside UTC.
    moment = datetime(2009, 10, 11, 23, 49, 13, tzinfo=timezone(timedelta(hours=2)))
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        date = http_date(moment)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert date == "Sun, 11 Oct 2009 21:49:13 GMT"


def test_connection_strings_the_tests_and_azure_use() -> None:
    dev = parse_connection_string("UseDevelopmentStorage=true")
    assert dev == TableAccount(
        "devstoreaccount1", "http://127.0.0.1:10002/devstoreaccount1", DEV_ACCOUNT_KEY
    )
    explicit = parse_connection_string(
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
        "BlobEndpoint=http://127.0.0.1:21800/devstoreaccount1;"
        "TableEndpoint=http://127.0.0.1:21802/devstoreaccount1/;"
    )
    assert explicit == TableAccount(
        "devstoreaccount1", "http://127.0.0.1:21802/devstoreaccount1", KEY
    )
    # Only the trailing slashes go, from the endpoint and from the path that is signed.
    ends_in_x = parse_connection_string(
        f"AccountName=acctx;AccountKey={KEY};TableEndpoint=http://127.0.0.1:21802/acctX/"
    )
    assert ends_in_x is not None and ends_in_x.endpoint == "http://127.0.0.1:21802/acctX"
    assert _url_path("http://127.0.0.1:21802/acctX/") == "/acctX"
    azure = parse_connection_string(
        f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};"
        "EndpointSuffix=core.chinacloudapi.cn"
    )
    assert azure == TableAccount("acct", "https://acct.table.core.chinacloudapi.cn", KEY)
    plain = parse_connection_string(f"AccountName=acct;AccountKey={KEY}")
    assert plain is not None and plain.endpoint == "https://acct.table.core.windows.net"
    # No key (a SAS): left to the SDK adapter.
    assert (
        parse_connection_string(
            "TableEndpoint=https://a.table.core.windows.net;SharedAccessSignature=sv=2020&sig=abc"
        )
        is None
    )
    assert parse_connection_string("memory") is None


def test_the_account_key_never_shows_in_its_repr() -> None:
    account = parse_connection_string(f"AccountName=acct;AccountKey={KEY}")
    assert KEY not in repr(account) and KEY not in str(account)


def test_keys_are_odata_literals_url_encoded() -> None:
    assert entity_path("HaloPSA-1", "alert") == (
        "/relayledger(PartitionKey=%27HaloPSA-1%27,RowKey=%27alert%27)"
    )
    # A quote is doubled, then everything outside the unreserved set is percent-encoded.
    assert entity_path("o'brien é", "r") == (
        "/relayledger(PartitionKey=%27o%27%27brien%20%C3%A9%27,RowKey=%27r%27)"
    )


def test_entities_round_trip_with_the_sdk_adapters_types() -> None:
    moment = datetime(2026, 11, 29, 23, 20, 1, 123456, tzinfo=timezone.utc)
    entity = {
        "Status": "new",
        "Seq": 7,
        "Big": 2**40,
        "Ratio": 0.5,
        "Flag": True,
        "UpdatedUtc": moment,
        "Skipped": None,
    }
    wire = to_wire(entity)
    assert wire == {
        "Status": "new",
        "Seq": 7,
        "Big": str(2**40),
        "Big@odata.type": "Edm.Int64",
        "Ratio": 0.5,
        "Ratio@odata.type": "Edm.Double",
        "Flag": True,
        "UpdatedUtc": "2026-11-29T23:20:01.123456Z",
        "UpdatedUtc@odata.type": "Edm.DateTime",
    }
    # As the service answers (minimal metadata): seven fraction digits, a Timestamp, an etag.
    answer = {
        **wire,
        "UpdatedUtc": "2026-11-29T23:20:01.1234567Z",
        "odata.etag": "W/\"datetime'2026-11-29T23%3A20%3A01.2Z'\"",
        "Timestamp": "2026-11-29T23:20:01.2Z",
        "PartitionKey": "HaloPSA-1",
        "RowKey": "alert",
    }
    read, etag = from_wire(answer)
    assert etag == answer["odata.etag"]
    assert read == {
        **{k: v for k, v in entity.items() if v is not None},
        "PartitionKey": "HaloPSA-1",
        "RowKey": "alert",
    }
    assert read["UpdatedUtc"].tzinfo is not None
    assert from_wire({"At": "2026-01-02T03:04:05Z", "At@odata.type": "Edm.DateTime"})[0] == {
        "At": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    }
    with pytest.raises(TypeError):
        to_wire({"Odd": object()})


def test_conditional_writes_become_the_right_calls() -> None:
    create = single_request("p", Op("create", "alert", {"Seq": 1}))
    assert (create.method, create.path, create.if_match) == ("POST", "/relayledger", None)
    assert create.body == {"Seq": 1, "PartitionKey": "p", "RowKey": "alert"}
    replace = single_request("p", Op("replace", "alert", {"Seq": 2}, 'W/"1"'))
    assert (replace.method, replace.if_match) == ("PUT", 'W/"1"')
    assert single_request("p", Op("replace", "alert", {"Seq": 2})).if_match == "*"
    delete = single_request("p", Op("delete", "pending-1", etag=None))
    assert (delete.method, delete.body, delete.if_match) == ("DELETE", None, "*")


def test_batch_body_is_one_changeset_and_answers_parse_in_order() -> None:
    calls = [
        single_request("p", Op("replace", "alert", {"Seq": 2}, 'W/"1"')),
        single_request("p", Op("create", "pending-0000000002", {"Seq": 2})),
    ]
    body = batch_body("http://h/acct", calls, "B")
    assert body.startswith("--batch_B\r\nContent-Type: multipart/mixed; boundary=changeset_B\r\n")
    assert body.count("--changeset_B\r\n") == 2 and body.endswith(
        "--changeset_B--\r\n--batch_B--\r\n"
    )
    assert "PUT http://h/acct/relayledger(PartitionKey=%27p%27,RowKey=%27alert%27) HTTP/1.1" in body
    assert 'If-Match: W/"1"' in body and "POST http://h/acct/relayledger HTTP/1.1" in body
    answer = (
        "--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_1\r\n\r\n"
        "--changesetresponse_1\r\nContent-Type: application/http\r\n\r\n"
        'HTTP/1.1 204 No Content\r\nETag: W/"2"\r\nDataServiceVersion: 3.0;\r\n\r\n\r\n'
        "--changesetresponse_1\r\nContent-Type: application/http\r\n\r\n"
        'HTTP/1.1 204 No Content\r\nETag: W/"3"\r\n\r\n\r\n'
        "--changesetresponse_1--\r\n--batchresponse_1--\r\n"
    )
    assert batch_results(answer) == [(204, 'W/"2"'), (204, 'W/"3"')]
    failed = (
        "--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_1\r\n\r\n"
        "--changesetresponse_1\r\nContent-Type: application/http\r\n\r\n"
        "HTTP/1.1 412 Precondition Failed\r\nContent-Type: application/json\r\n\r\n"
        '{"odata.error":{"code":"UpdateConditionNotSatisfied"}}\r\n'
        "--changesetresponse_1--\r\n--batchresponse_1--\r\n"
    )
    assert batch_results(failed) == [(412, "")]


class _FakeCredential:
    """azure-identity's get_token contract: a token and its expiry (epoch seconds)."""

    def __init__(self, lifetimes: list[float]) -> None:
        self.lifetimes = lifetimes
        self.scopes: list[str] = []

    def get_token(self, scope: str) -> SimpleNamespace:
        self.scopes.append(scope)
        lifetime = self.lifetimes[len(self.scopes) - 1]
        return SimpleNamespace(token=f"token-{len(self.scopes)}", expires_on=time.time() + lifetime)


def test_a_managed_identity_sends_a_cached_bearer_token(httpserver: HTTPServer) -> None:
    seen: list[str] = []

    def answer(request: Request) -> Response:
        seen.append(request.headers.get("Authorization", ""))
        assert request.headers["x-ms-version"] >= "2019-02-02"
        return Response(
            json.dumps({"PartitionKey": "p", "RowKey": "alert", "Seq": 1}),
            headers={"ETag": 'W/"1"', "Content-Type": "application/json"},
        )

    httpserver.expect_request(re.compile(r"^/relayledger")).respond_with_handler(answer)
    # Two tokens: the first expires inside the refresh margin once, the second lives an hour.
    credential = _FakeCredential([TOKEN_REFRESH_MARGIN_SECONDS + 3600, 3600])
    tokens = TokenSource(credential)
    store = RestTableStore(TableAccount("acct", httpserver.url_for("").rstrip("/")), tokens=tokens)
    for _ in range(3):
        assert store.read("p", "alert")["alert"].entity["Seq"] == 1
    assert seen == ["Bearer token-1"] * 3  # fetched once, reused
    assert credential.scopes == [STORAGE_SCOPE]
    stale = TokenSource(_FakeCredential([TOKEN_REFRESH_MARGIN_SECONDS - 1, 3600]))
    assert stale.token() == "token-1" and stale.token() == "token-2"  # renewed before expiry


def test_an_account_name_setting_opens_the_account_endpoint() -> None:
    settings = RelaySettings.from_env({"AzureWebJobsStorage__accountName": "relaystore"})
    store = open_rest_store(settings)
    assert store is not None
    assert store.account == TableAccount("relaystore", "https://relaystore.table.core.windows.net")
    # A connection string without an account key is the SDK adapter's.
    sas = "TableEndpoint=https://a.table.core.windows.net;SharedAccessSignature=sv=1&sig=x"
    assert open_rest_store(RelaySettings.from_env({"AzureWebJobsStorage": sas})) is None


# --- the rules one by one (tables): what the service and the SDK adapter expect ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Keys are case-insensitive, pieces may be padded, a piece without "=" is ignored.
        (
            f" accountname = acct ; ACCOUNTKEY = {KEY} ; junk ;",
            TableAccount("acct", "https://acct.table.core.windows.net", KEY),
        ),
        # A value keeps its own "=" (base64 padding): the first "=" splits name from value.
        (
            "AccountName=acct;AccountKey=a2V5==",
            TableAccount("acct", "https://acct.table.core.windows.net", "a2V5=="),
        ),
        (
            "usedevelopmentstorage=TRUE",
            TableAccount(
                "devstoreaccount1", "http://127.0.0.1:10002/devstoreaccount1", DEV_ACCOUNT_KEY
            ),
        ),
        # Development storage off: the account named is used.
        (
            f"UseDevelopmentStorage=false;AccountName=acct;AccountKey={KEY}",
            TableAccount("acct", "https://acct.table.core.windows.net", KEY),
        ),
        # Empty protocol and suffix fall back to https and the public cloud.
        (
            f"AccountName=acct;AccountKey={KEY};DefaultEndpointsProtocol=;EndpointSuffix=",
            TableAccount("acct", "https://acct.table.core.windows.net", KEY),
        ),
        (
            f"AccountName=acct;AccountKey={KEY};DefaultEndpointsProtocol=http",
            TableAccount("acct", "http://acct.table.core.windows.net", KEY),
        ),
        # An empty TableEndpoint is no endpoint; trailing slashes go.
        (
            f"AccountName=acct;AccountKey={KEY};TableEndpoint=",
            TableAccount("acct", "https://acct.table.core.windows.net", KEY),
        ),
        (
            f"AccountName=acct;AccountKey={KEY};TableEndpoint=https://t.example//",
            TableAccount("acct", "https://t.example", KEY),
        ),
        ("AccountName=acct;AccountKey=", None),
        (f"AccountName=;AccountKey={KEY}", None),
        (f"AccountKey={KEY}", None),
        ("AccountName=acct", None),
        ("", None),
    ],
)
def test_connection_string_rules(text: str, expected: TableAccount | None) -> None:
    assert parse_connection_string(text) == expected


def test_the_account_repr_names_account_and_endpoint() -> None:
    account = TableAccount("acct", "https://acct.table.core.windows.net", KEY)
    assert (
        repr(account) == "TableAccount(name='acct', endpoint='https://acct.table.core.windows.net')"
    )


def test_odata_string_literals_double_their_quotes() -> None:
    assert odata_string("plain") == "'plain'"
    assert odata_string("o'brien''s") == "'o''brien''''s'"
    assert odata_string("") == "''"
    # Everything outside the unreserved set is encoded in an address, "/" too.
    assert key_literal("a/b c") == "%27a%2Fb%20c%27"


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (2**31 - 1, {"N": 2**31 - 1}),
        (-(2**31), {"N": -(2**31)}),
        (2**31, {"N": str(2**31), "N@odata.type": "Edm.Int64"}),
        (-(2**31) - 1, {"N": str(-(2**31) - 1), "N@odata.type": "Edm.Int64"}),
        (0, {"N": 0}),
        (False, {"N": False}),  # a bool is no int here
        ("", {"N": ""}),
        (1.0, {"N": 1.0, "N@odata.type": "Edm.Double"}),
        # Naive datetimes are UTC; aware ones are converted to it.
        (
            datetime(2026, 1, 2, 3, 4, 5),
            {"N": "2026-01-02T03:04:05.000000Z", "N@odata.type": "Edm.DateTime"},
        ),
        (
            datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=timezone(timedelta(hours=-5))),
            {"N": "2026-01-02T08:04:05.000007Z", "N@odata.type": "Edm.DateTime"},
        ),
    ],
)
def test_each_type_goes_on_the_wire_as_the_sdk_sends_it(value: object, wire: dict) -> None:
    assert to_wire({"N": value}) == wire


def test_none_properties_are_left_out_wherever_they_are() -> None:
    assert to_wire({"A": None, "B": 1, "C": None, "D": "d"}) == {"B": 1, "D": "d"}


def test_a_naive_datetime_is_utc_whatever_the_machines_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        wire = to_wire({"At": datetime(2026, 1, 2, 3, 4, 5)})
    finally:
        monkeypatch.undo()
        time.tzset()
    assert wire["At"] == "2026-01-02T03:04:05.000000Z"


def test_an_unstorable_property_is_named_in_the_error() -> None:
    with pytest.raises(TypeError, match=r"^property Odd: bytes is not stored$"):
        to_wire({"Fine": 1, "Odd": b"x"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        ("2026-01-02T03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        ("2026-01-02T03:04:05.5Z", datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=timezone.utc)),
        ("2026-01-02T03:04:05.000001Z", datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=timezone.utc)),
        (
            "2026-01-02T03:04:05.1234567Z",
            datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc),
        ),
    ],
)
def test_service_datetimes_read_back_in_utc(text: str, expected: datetime) -> None:
    read = from_wire({"At": text, "At@odata.type": "Edm.DateTime"})[0]["At"]
    assert read == expected and read.utcoffset() == timedelta(0)


def test_annotations_and_the_timestamp_are_left_out_and_typed_values_read() -> None:
    body = {
        "odata.metadata": "http://h/acct/$metadata#relayledger/@Element",
        "odata.etag": 'W/"7"',
        "Timestamp": "2026-01-02T03:04:05Z",
        "Big": "9007199254740993",
        "Big@odata.type": "Edm.Int64",
        "Ratio": "0.25",
        "Ratio@odata.type": "Edm.Double",
        "Count": 3,
        "Name": "x",
    }
    assert from_wire(body) == (
        {"Big": 9007199254740993, "Ratio": 0.25, "Count": 3, "Name": "x"},
        'W/"7"',
    )
    # No etag (or null): empty, never "None".
    assert from_wire({"Name": "x"}) == ({"Name": "x"}, "")
    assert from_wire({"Name": "x", "odata.etag": None}) == ({"Name": "x"}, "")


def test_a_create_replace_delete_changeset_is_exactly_what_the_service_reads() -> None:
    calls = [
        single_request("p", Op("create", "a", {"Seq": 1})),
        single_request("p", Op("replace", "b", {"Seq": 2}, 'W/"1"')),
        single_request("p", Op("delete", "c", etag='W/"2"')),
    ]
    assert batch_body("http://h/acct", calls, "B").split("\r\n") == [
        "--batch_B",
        "Content-Type: multipart/mixed; boundary=changeset_B",
        "",
        "--changeset_B",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "",
        "POST http://h/acct/relayledger HTTP/1.1",
        "Accept: application/json;odata=minimalmetadata",
        "DataServiceVersion: 3.0",
        "Prefer: return-no-content",
        "Content-Type: application/json",
        "",
        '{"Seq": 1, "PartitionKey": "p", "RowKey": "a"}',
        "--changeset_B",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "",
        "PUT http://h/acct/relayledger(PartitionKey=%27p%27,RowKey=%27b%27) HTTP/1.1",
        "Accept: application/json;odata=minimalmetadata",
        "DataServiceVersion: 3.0",
        'If-Match: W/"1"',
        "Content-Type: application/json",
        "",
        '{"Seq": 2, "PartitionKey": "p", "RowKey": "b"}',
        "--changeset_B",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "",
        "DELETE http://h/acct/relayledger(PartitionKey=%27p%27,RowKey=%27c%27) HTTP/1.1",
        "Accept: application/json;odata=minimalmetadata",
        "DataServiceVersion: 3.0",
        'If-Match: W/"2"',
        "",
        "--changeset_B--",
        "--batch_B--",
        "",
    ]


def test_a_create_overrides_keys_in_the_entity_with_its_own() -> None:
    create = single_request("p", Op("create", "a", {"PartitionKey": "q", "RowKey": "z", "N": 1}))
    assert create.body == {"PartitionKey": "p", "RowKey": "a", "N": 1}
    replace = single_request("p", Op("replace", "a", {"PartitionKey": "q", "RowKey": "z"}))
    assert (replace.path, replace.body) == (
        "/relayledger(PartitionKey=%27p%27,RowKey=%27a%27)",
        {"PartitionKey": "p", "RowKey": "a"},
    )
    # An entity-less create or replace still carries its keys.
    assert single_request("p", Op("create", "a")).body == {"PartitionKey": "p", "RowKey": "a"}
    assert single_request("p", Op("replace", "a")).body == {"PartitionKey": "p", "RowKey": "a"}
    assert single_request("p", Op("delete", "a")).path == (
        "/relayledger(PartitionKey=%27p%27,RowKey=%27a%27)"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Bare LF line ends and any case of the header name.
        ('HTTP/1.1 201 Created\nEtag:  W/"5" \n\n{}', [(201, 'W/"5"')]),
        ("HTTP/1.1 204 No Content\r\nETAG: x\r\nContent-Type: a:b\r\n\r\n", [(204, "x")]),
        # A colon in the value stays in it.
        ("HTTP/1.1 204 No Content\r\nETag: W/\"t'00:00'\"\r\n\r\n", [(204, "W/\"t'00:00'\"")]),
        # The ETag of the headers only, never a body line that looks like one.
        ('HTTP/1.1 412 Precondition Failed\r\n\r\nETag: W/"body"\r\n\r\n', [(412, "")]),
        ("HTTP/1.1 204 No Content\r\nETag-Like: y\r\n\r\n", [(204, "")]),
        ("--batchresponse_1--\r\n", []),
        ("", []),
    ],
)
def test_batch_answers_read_status_and_etag(text: str, expected: list[tuple[int, str]]) -> None:
    assert batch_results(text) == expected


def test_a_failed_status_is_described_by_what_and_the_status_only() -> None:
    assert describe_status(503, "write") == "table write answered HTTP 503"


@pytest.mark.parametrize(
    ("endpoint", "resource"),
    [
        # Path-style (Azurite): the account's path is part of the signed resource, once.
        ("/devstoreaccount1", "/devstoreaccount1/devstoreaccount1/relayledger()"),
        ("", "/devstoreaccount1/relayledger()"),
    ],
)
def test_a_keyed_request_signs_method_date_and_the_full_resource_path(
    httpserver: HTTPServer, endpoint: str, resource: str
) -> None:
    seen: list[Request] = []

    def answer(request: Request) -> Response:
        seen.append(request)
        return Response(json.dumps({"value": []}), headers={"Content-Type": "application/json"})

    httpserver.expect_request(re.compile(r".*relayledger\(\)$")).respond_with_handler(answer)
    account = TableAccount("devstoreaccount1", httpserver.url_for("").rstrip("/") + endpoint, KEY)
    assert RestTableStore(account).read("p") == {}
    (request,) = seen
    date = request.headers["x-ms-date"]
    assert request.headers["Authorization"] == shared_key(
        "devstoreaccount1", KEY, f"GET\n\n\n{date}\n{resource}"
    )
    assert request.args["$filter"] == "PartitionKey eq 'p'"
