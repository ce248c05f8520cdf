"""shared/adapters/table_rest.py over Azurite: the storage port's conditional semantics through the REST
calls (409/412/404 -> Conflict), atomic batches, continuation, types and keys as the SDK adapter
reads them, and failures described without the key."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone

import pytest

from shared.adapters.store import Conflict, Op, Unavailable
from shared.adapters.table_rest import RestTableStore, parse_connection_string
from shared.adapters.table_sdk import TableStore, open_table_store
from shared.delivery.schema import TABLE_NAME
from shared.settings import RelaySettings

_partitions = itertools.count(1)


@pytest.fixture
def store(azurite: str) -> RestTableStore:
    account = parse_connection_string(azurite)
    assert account is not None
    return RestTableStore(account, create_table=True)


@pytest.fixture
def sdk(azurite: str) -> TableStore:
    opened = open_table_store(RelaySettings.from_env({"AzureWebJobsStorage": azurite}), TABLE_NAME)
    assert opened is not None
    return opened


@pytest.fixture
def partition() -> str:
    return f"rest-test-{next(_partitions)}-{datetime.now(timezone.utc).timestamp()}"


def test_create_is_create_if_absent(store: RestTableStore, partition: str) -> None:
    etags = store.commit(partition, [Op("create", "alert", {"Seq": 1})])
    assert etags["alert"]
    with pytest.raises(Conflict):  # 409
        store.commit(partition, [Op("create", "alert", {"Seq": 2})])
    assert store.read(partition, "alert")["alert"].entity["Seq"] == 1


def test_replace_and_delete_need_the_current_etag(store: RestTableStore, partition: str) -> None:
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


def test_a_batch_is_all_or_nothing(store: RestTableStore, partition: str) -> None:
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


def test_reading_a_partition_follows_continuation(store: RestTableStore, partition: str) -> None:
    # Azure Table (and Azurite) answer a query with at most 1,000 entities per page.
    for n in range(1005):
        store.commit(partition, [Op("create", f"row-{n:05d}", {"N": n})])
    rows = store.read(partition)
    assert list(rows) == [f"row-{n:05d}" for n in range(1005)]
    assert rows["row-01004"].entity["N"] == 1004
    assert all(row.etag for row in rows.values())


def test_rows_read_the_same_through_either_adapter(
    store: RestTableStore, sdk: TableStore, partition: str
) -> None:
    """Rows the SDK adapter wrote read the same through REST and the other way round, and a
    REST ETag is good for an SDK write (existing ledger rows keep working)."""
    moment = datetime(2026, 11, 29, 23, 20, 1, 123456, tzinfo=timezone.utc)
    entity = {"Status": "new", "Seq": 3, "Payload": '{"a": "é\\u2028"}', "UpdatedUtc": moment}
    sdk.commit(partition, [Op("create", "alert", entity)])
    store.commit(partition, [Op("create", "pending-0000000001", entity)])
    by_rest, by_sdk = store.read(partition), sdk.read(partition)
    assert list(by_rest) == list(by_sdk) == ["alert", "pending-0000000001"]
    for key in by_rest:
        assert by_rest[key].entity == dict(by_sdk[key].entity)
        assert by_rest[key].etag == by_sdk[key].etag
        assert by_rest[key].entity["UpdatedUtc"] == moment
        assert by_rest[key].entity["UpdatedUtc"].tzinfo is not None
    etag = sdk.commit(
        partition, [Op("replace", "alert", {**entity, "Seq": 4}, by_rest["alert"].etag)]
    )
    assert store.read(partition, "alert")["alert"].etag == etag["alert"]


def test_keys_with_quotes_and_unicode(store: RestTableStore, partition: str) -> None:
    odd = partition + " o'brien ''é 𝄞"
    store.commit(odd, [Op("create", "it's", {"Seq": 1})])
    assert store.read(odd, "it's")["it's"].entity["PartitionKey"] == odd
    assert list(store.read(odd)) == ["it's"]
    assert store.read(partition) == {}  # a prefix of it is another partition


def test_a_wrong_key_is_unavailable_and_never_named(azurite: str, partition: str) -> None:
    account = parse_connection_string(azurite)
    assert account is not None
    wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk="
    bad = RestTableStore(type(account)(account.name, account.endpoint, wrong))
    with pytest.raises(Unavailable) as raised:
        bad.read(partition, "alert")
    assert "403" in str(raised.value)
    assert wrong not in str(raised.value) and account.endpoint not in str(raised.value)
