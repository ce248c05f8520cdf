"""shared/adapters/table_sdk.py over Azurite: the storage port's conditional semantics
(409/412/404 -> Conflict), atomic batches, continuation, types and keys, failures described
without the key; and what is made once per process: the client per configuration, the
transport (one connection pool for every table client) and the managed-identity credential."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone
from typing import Any

import pytest

from shared.adapters import table_sdk
from shared.adapters.store import Conflict, Op, Unavailable
from shared.adapters.table_sdk import TableStore
from shared.adapters.table_sdk import open_table_store as open_in
from shared.delivery.schema import TABLE_NAME
from shared.settings import RelaySettings
from testkit.azurite import ACCOUNT_KEY


def open_table(settings: RelaySettings) -> TableStore | None:
    """The adapter on the relay's table (the composition root names it: shared/entry/storage.py)."""
    return open_in(settings, TABLE_NAME)

_partitions = itertools.count(1)


@pytest.fixture
def store(azurite: str) -> TableStore:
    opened = open_table(RelaySettings.from_env({"AzureWebJobsStorage": azurite}))
    assert opened is not None
    return opened


def spelt_out(azurite: str, key: str = ACCOUNT_KEY) -> str:
    """The same Azurite account as another connection string: only its table endpoint."""
    parts = dict(p.split("=", 1) for p in azurite.split(";") if "=" in p)
    endpoint = parts.get("TableEndpoint", "http://127.0.0.1:10002/devstoreaccount1")
    return f"AccountName=devstoreaccount1;AccountKey={key};TableEndpoint={endpoint}"


@pytest.fixture
def partition() -> str:
    return f"sdk-test-{next(_partitions)}-{datetime.now(timezone.utc).timestamp()}"


def test_create_is_create_if_absent(store: TableStore, partition: str) -> None:
    etags = store.commit(partition, [Op("create", "alert", {"Seq": 1})])
    assert etags["alert"]
    with pytest.raises(Conflict):  # 409
        store.commit(partition, [Op("create", "alert", {"Seq": 2})])
    assert store.read(partition, "alert")["alert"].entity["Seq"] == 1


def test_replace_and_delete_need_the_current_etag(store: TableStore, partition: str) -> None:
    first = store.commit(partition, [Op("create", "alert", {"Seq": 1})])["alert"]
    second = store.commit(partition, [Op("replace", "alert", {"Seq": 2}, first)])["alert"]
    assert second != first
    row = store.read(partition, "alert")["alert"]
    assert (row.entity["Seq"], row.etag) == (2, second)
    with pytest.raises(Conflict):  # 412: stale ETag
        store.commit(partition, [Op("replace", "alert", {"Seq": 3}, first)])
    with pytest.raises(Conflict):  # 412
        store.commit(partition, [Op("delete", "alert", etag=first)])
    store.commit(partition, [Op("delete", "alert", etag=second)])
    assert store.read(partition, "alert") == {}
    with pytest.raises(Conflict):  # 404: gone
        store.commit(partition, [Op("replace", "alert", {"Seq": 4}, second)])
    with pytest.raises(Conflict):  # 404: delete-if-present of an absent row
        store.commit(partition, [Op("delete", "alert", etag=None)])
    with pytest.raises(Conflict):  # 404: replace-if-present of an absent row
        store.commit(partition, [Op("replace", "alert", {"Seq": 5})])


def test_a_batch_is_all_or_nothing(store: TableStore, partition: str) -> None:
    etag = store.commit(partition, [Op("create", "alert", {"Seq": 1})])["alert"]
    store.commit(partition, [Op("create", "pending-0000000002", {"Seq": 2})])
    with pytest.raises(Conflict):  # the second op's create fails: the replace must not land
        store.commit(
            partition,
            [
                Op("replace", "alert", {"Seq": 2}, etag),
                Op("create", "pending-0000000002", {"Seq": 9}),
            ],
        )
    rows = store.read(partition)
    assert rows["alert"].entity["Seq"] == 1 and rows["alert"].etag == etag
    assert rows["pending-0000000002"].entity["Seq"] == 2
    # A winning batch: replace, create and delete at once, with the new ETags.
    etags = store.commit(
        partition,
        [
            Op("replace", "alert", {"Seq": 3}, etag),
            Op("create", "pending-0000000003", {"Seq": 3}),
            Op("delete", "pending-0000000002", etag=rows["pending-0000000002"].etag),
        ],
    )
    assert set(etags) == {"alert", "pending-0000000003"}
    after = store.read(partition)
    assert sorted(after) == ["alert", "pending-0000000003"]
    assert after["alert"].etag == etags["alert"]
    assert after["pending-0000000003"].etag == etags["pending-0000000003"]
    with pytest.raises(Conflict):  # stale ETag inside a batch: 412
        store.commit(
            partition,
            [Op("replace", "alert", {"Seq": 4}, etag), Op("create", "pending-4", {"Seq": 4})],
        )
    assert "pending-4" not in store.read(partition)


def test_reading_a_partition_follows_continuation(store: TableStore, partition: str) -> None:
    # Azure Table (and Azurite) answer a query with at most 1,000 entities per page.
    for n in range(1005):
        store.commit(partition, [Op("create", f"row-{n:05d}", {"N": n})])
    rows = store.read(partition)
    assert list(rows) == [f"row-{n:05d}" for n in range(1005)]
    assert rows["row-01004"].entity["N"] == 1004
    assert all(row.etag for row in rows.values())


def test_types_read_back_as_written(store: TableStore, partition: str) -> None:
    """Strings with JSON and line separators, ints and tz-aware datetimes come back equal, and
    a read's ETag is good for a conditional write (existing ledger rows keep working)."""
    moment = datetime(2026, 11, 29, 23, 20, 1, 123456, tzinfo=timezone.utc)
    entity = {"Status": "new", "Seq": 3, "Payload": '{"a": "é\\u2028"}', "UpdatedUtc": moment}
    store.commit(partition, [Op("create", "alert", entity)])
    row = store.read(partition)["alert"]
    assert {k: row.entity[k] for k in entity} == entity
    assert row.entity["UpdatedUtc"].tzinfo is not None
    etag = store.commit(partition, [Op("replace", "alert", {**entity, "Seq": 4}, row.etag)])
    assert store.read_rows(partition, ["alert", "absent"])["alert"].etag == etag["alert"]


def test_keys_with_quotes_and_unicode(store: TableStore, partition: str) -> None:
    odd = partition + " o'brien ''é 𝄞"
    store.commit(odd, [Op("create", "it's", {"Seq": 1})])
    assert store.read(odd, "it's")["it's"].entity["PartitionKey"] == odd
    assert list(store.read(odd)) == ["it's"]
    assert store.read(partition) == {}  # a prefix of it is another partition


def test_a_wrong_key_is_unavailable_and_never_named(azurite: str, partition: str) -> None:
    wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk="
    bad = open_table(
        RelaySettings.from_env({"AzureWebJobsStorage": spelt_out(azurite, wrong)})
    )
    assert bad is not None
    with pytest.raises(Unavailable) as raised:
        bad.read(partition, "alert")
    assert "403" in str(raised.value)
    assert wrong not in str(raised.value) and "127.0.0.1" not in str(raised.value)


# --- made once per process ---


def test_one_client_per_configuration_and_one_connection_pool_for_all(
    azurite: str, partition: str
) -> None:
    """Two storage configurations (the same Azurite, spelt two ways) are two clients on one
    transport: forty calls through both open one connection, not one per client or per call."""
    first = open_table(RelaySettings.from_env({"AzureWebJobsStorage": azurite}))
    again = open_table(RelaySettings.from_env({"AzureWebJobsStorage": azurite}))
    other = open_table(RelaySettings.from_env({"AzureWebJobsStorage": spelt_out(azurite)}))
    assert first is again and first is not None and other is not None and other is not first
    pools = table_sdk.storage_transport().session.adapters["http://"].poolmanager.pools

    def connections_opened() -> int:
        keys = pools.keys()  # urllib3's pool container is not iterable itself
        return sum(pools[key].num_connections for key in keys)

    opened_before = connections_opened()
    for n in range(20):
        first.commit(partition, [Op("create", f"a-{n}", {"N": n})])
        assert other.read(partition, f"a-{n}")[f"a-{n}"].entity["N"] == n
    assert (
        connections_opened() - opened_before <= 1
    )  # 0 when an earlier test left the connection open


class CountingCredential:
    """Stands for azure-identity's DefaultAzureCredential (the managed identity in Azure): counts
    how many are made, and refuses a token as it does where no identity is available."""

    made = 0
    asked = 0

    def __init__(self, **_: Any) -> None:
        type(self).made += 1

    def get_token(self, *scopes: str, **_: Any) -> Any:
        from azure.core.exceptions import ClientAuthenticationError

        type(self).asked += 1
        raise ClientAuthenticationError("no identity here: http://169.254.169.254 token=x")

    def get_token_info(self, *scopes: str, **_: Any) -> Any:
        return self.get_token(*scopes)


def test_identity_connections_share_one_credential_and_fail_cleanly(
    monkeypatch: pytest.MonkeyPatch, partition: str
) -> None:
    """AzureWebJobsStorage__accountName: one credential per process for every account and
    call; no token is an Unavailable named by kind, without the SDK's text."""
    import azure.identity

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", CountingCredential)
    monkeypatch.setattr(table_sdk, "_credential", None)
    monkeypatch.setattr(table_sdk, "_stores", {})
    stores = [
        open_table(RelaySettings.from_env({"AzureWebJobsStorage__accountName": name}))
        for name in ("relayone", "relaytwo", "relayone")
    ]
    assert stores[0] is stores[2] and stores[0] is not stores[1]
    for store in stores:
        assert store is not None
        with pytest.raises(Unavailable) as raised:
            store.read(partition, "alert")
        assert str(raised.value) == "ClientAuthenticationError"
    assert CountingCredential.made == 1 and CountingCredential.asked >= 3


def test_storage_calls_ignore_proxy_settings_in_the_environment(
    store: TableStore, partition: str, monkeypatch: pytest.MonkeyPatch, unused_port: int
) -> None:
    """Like the relay's other HTTP (shared/adapters/http.py), storage takes no proxy from the
    environment: a proxy variable pointing nowhere changes nothing (and no call scans it)."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{unused_port}")
    store.commit(partition, [Op("create", "alert", {"Seq": 1})])
    assert store.read(partition, "alert")["alert"].entity["Seq"] == 1
