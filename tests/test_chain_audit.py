"""The chain as truth: blocks commit whole, audits catch every edited row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from ledger.audit import audit, rebuild_derived
from ledger.store import Store, id_key
from tests.helpers import FixedClock, enrol_tx, fill_blocks, make_node


@pytest.fixture
def chain(demo_consortium: Any, db_url: str) -> Any:
    node = make_node(demo_consortium, db_url)
    ids = fill_blocks(node, demo_consortium, blocks=5, per_block=6)
    return node, ids


def _exec(store: Store, sql: str, **params: Any) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(sql), params)


def _finding(store: Store) -> tuple[int, str]:
    report = audit(store, workers=2)
    assert not report.ok, "tampering went unnoticed"
    assert report.finding is not None
    return report.finding.height, report.finding.message


def test_clean_chain_passes_audit(chain: Any) -> None:
    node, ids = chain
    report = audit(node.store, workers=2)
    assert report.ok, report.finding
    assert report.blocks == 6 and report.txs == len(ids) + 1


def test_edited_payload_byte_is_caught_with_its_height(chain: Any) -> None:
    node, _ids = chain
    store = node.store
    row = store.tx_by_seq(14)
    assert row is not None
    edited = row.body.replace(b'"member"', b'"admin"')
    _exec(store, "UPDATE tx SET body = :b WHERE seq = 14", b=edited)
    height, reason = _finding(store)
    assert height == row.height and "log entry 14" in reason


def test_edited_payload_with_recomputed_tx_id_fails_the_signature(chain: Any) -> None:
    import hashlib

    node, _ids = chain
    store = node.store
    row = store.tx_by_seq(9)
    assert row is not None
    edited = row.body.replace(b'"member"', b'"admin"')
    new_id = hashlib.sha256(edited).hexdigest()
    _exec(store, "UPDATE tx SET body = :b, tx_id = :t, id_key = :k WHERE seq = 9", b=edited,
          t=new_id, k=id_key(new_id))
    height, reason = _finding(store)
    assert height == row.height and "signature" in reason


def test_edited_id_key_is_caught(chain: Any) -> None:
    node, _ids = chain
    store = node.store
    row = store.tx_by_seq(12)
    assert row is not None
    assert store.tx_by_id(row.tx_id) is not None
    _exec(store, "UPDATE tx SET id_key = id_key + 1 WHERE seq = 12")
    assert store.tx_by_id(row.tx_id) is None  # the lookup by id misses it now
    height, reason = _finding(store)
    assert height == row.height and "log entry 12" in reason and "id_key" in reason


def test_deleted_transaction_is_caught(chain: Any) -> None:
    node, _ids = chain
    row = node.store.tx_by_seq(20)
    assert row is not None
    _exec(node.store, "DELETE FROM tx WHERE seq = 20")
    height, reason = _finding(node.store)
    assert height == row.height and "20" in reason


def test_swapped_blocks_are_caught(chain: Any) -> None:
    node, _ids = chain
    store = node.store
    a, b = store.block_row(2), store.block_row(3)
    assert a is not None and b is not None
    _exec(store, "UPDATE block SET height = -1 WHERE height = 2")
    _exec(store, "UPDATE block SET height = 2 WHERE height = 3")
    _exec(store, "UPDATE block SET height = 3 WHERE height = -1")
    height, _reason = _finding(store)
    assert height == 2


def test_inserted_block_row_is_caught(chain: Any) -> None:
    node, _ids = chain
    store = node.store
    _exec(store, "INSERT INTO block (height, hash, header, first_seq, tx_count) "
                 "SELECT 6, :h, header, first_seq, 0 FROM block WHERE height = 5", h="cd" * 32)
    height, _reason = _finding(store)
    assert height == 6


def test_inserted_log_entry_is_caught(chain: Any) -> None:
    node, _ids = chain
    store = node.store
    _exec(store, "INSERT INTO tx (seq, tx_id, id_key, height, type, author, body, signatures) "
                 "SELECT 31, :t, id_key, 5, type, author, body, signatures FROM tx WHERE seq = 30",
          t="ab" * 32)
    height, reason = _finding(store)
    assert height == 6 and "beyond the last block" in reason


def test_edited_derived_state_is_caught(chain: Any) -> None:
    node, _ids = chain
    _exec(node.store, "UPDATE state SET value = :v WHERE key = 'org/bank-asia'",
          v=b'{"id":"bank-asia","status":"suspended"}')
    _height, reason = _finding(node.store)
    assert "org/bank-asia" in reason


def test_removed_certificate_is_caught(chain: Any) -> None:
    node, _ids = chain
    _exec(node.store, "DELETE FROM checkpoint_sig WHERE height = 3")
    height, reason = _finding(node.store)
    assert height == 3 and "certificate" in reason


def test_forged_merkle_node_is_caught(chain: Any) -> None:
    node, _ids = chain
    _exec(node.store, "UPDATE merkle_node SET hash = :h WHERE level = 1 AND idx = 2",
          h=b"\x00" * 32)
    _height, reason = _finding(node.store)
    assert "Merkle node" in reason


def test_rebuild_reproduces_derived_state_byte_for_byte(chain: Any) -> None:
    node, _ids = chain
    store = node.store
    before = list(store.state_items())
    _exec(store, "DELETE FROM state WHERE key LIKE 'nonce/%'")
    rebuild_derived(store, workers=1)
    assert list(store.state_items()) == before
    assert audit(store, workers=1).ok


def test_a_refused_transaction_changes_no_state(demo_consortium: Any, db_url: str) -> None:
    node = make_node(demo_consortium, db_url)
    _c, _g, orgs = demo_consortium
    before = list(node.store.state_items())
    # A bank admin may not enrol keys for a supplier: refused by the contract.
    tx = enrol_tx(demo_consortium, "supplier-sz", author=orgs["bank-asia"].admin)
    assert node.submit(tx.to_wire()).status == "pending"
    node.cut_block()
    status = node.status(tx.tx_id_hex)
    assert status is not None and status.status == "rejected" and status.code == "not_org_admin"
    after = [(k, v) for k, v in node.store.state_items()]
    assert after == before
    assert audit(node.store, workers=1).ok


def test_a_block_split_over_many_insert_statements_is_stored_the_same(
        demo_consortium: Any, db_url: str, tmp_path: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows go in multi-row INSERTs of ``ROWS_PER_INSERT`` rows, fewer where
    ``ROW_PARAMS`` parameters would not hold them. A database allowing fewer
    parameters (here 10, a few rows per statement), and statements of 7 rows
    with a shorter last one, store the same chain and state as a statement per
    table for the whole block."""
    import ledger.store

    def stored(node: Any) -> tuple[Any, ...]:
        with node.store.engine.connect() as conn:
            rows = tuple(tuple(tuple(r) for r in conn.execute(text(
                f"SELECT * FROM {table} ORDER BY 1, 2"))) for table in (
                "tx_party", "merkle_node"))
        return list(node.store.state_items()), node.store.tx_count(), rows

    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    wide = make_node(demo_consortium, f"sqlite:///{tmp_path / 'wide.db'}", clock=clock)
    chunked = make_node(demo_consortium, f"sqlite:///{tmp_path / 'chunked.db'}", clock=clock)
    monkeypatch.setattr(ledger.store, "ROW_PARAMS", 10)
    narrow = make_node(demo_consortium, db_url, clock=clock)
    assert narrow.store._row_params == 10 and wide.store._row_params > 1000
    txs = [enrol_tx(demo_consortium, org, created_at=clock.now())
           for org in ("bank-asia", "supplier-sz") * 20]
    assert chunked.store._row_params > 1000
    for node, rows_per_insert in ((wide, 1000), (narrow, 1000), (chunked, 7)):
        monkeypatch.setattr(ledger.store, "ROWS_PER_INSERT", rows_per_insert)
        for tx in txs:
            node.submit(tx.to_wire())
        node.cut_block()
        assert audit(node.store, workers=1).ok
    assert narrow.head.log_size == len(txs) + 1
    assert wide.head == narrow.head == chunked.head
    assert stored(wide) == stored(narrow) == stored(chunked)


def test_a_small_merkle_node_cache_stays_bounded_and_builds_the_same_tree(
        demo_consortium: Any, db_url: str, tmp_path: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The orderer's in-memory Merkle nodes are capped (``NODE_CACHE_MAX``): past the
    cap it reads the nodes it needs from the database, and the log roots, proofs
    and audit come out the same as with every node in memory."""
    import ledger.store

    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    roomy = make_node(demo_consortium, f"sqlite:///{tmp_path / 'roomy.db'}", clock=clock)
    monkeypatch.setattr(ledger.store, "NODE_CACHE_MAX", 8)
    tight = make_node(demo_consortium, db_url, clock=clock)
    orgs = ("bank-asia", "supplier-sz", "buyer-lyon")
    ids: list[str] = []
    for block in range(6):
        txs = [enrol_tx(demo_consortium, orgs[(block + i) % 3], created_at=clock.now())
               for i in range(5)]
        ids += [tx.tx_id_hex for tx in txs]
        for node in (roomy, tight):
            for tx in txs:
                node.submit(tx.to_wire())
            node.cut_block()
        assert len(tight._nodes._cache) <= 8 + 5 * 2 + 6  # the cap, then one block's nodes
        assert tight.head == roomy.head
    assert tight.head.log_size == 31
    assert len(roomy._nodes._cache) > 8
    for tx_id in ids[::4]:
        assert (tight.inclusion_bundle(tx_id, reader="bank-asia")
                == roomy.inclusion_bundle(tx_id, reader="bank-asia"))
    for node in (roomy, tight):
        assert audit(node.store, workers=1).ok


def test_a_database_written_before_id_key_is_brought_up_to_date(chain: Any) -> None:
    """A node's database from before ``tx.id_key``: opening it adds and fills the
    column, and every committed transaction is found by its id again."""
    node, ids = chain
    store = node.store
    _exec(store, "DROP INDEX ix_tx_id_key")
    _exec(store, "ALTER TABLE tx DROP COLUMN id_key")
    reopened = Store(store.url)
    try:
        reopened.create()
        for tx_id in ids:
            found = reopened.tx_by_id(tx_id)
            assert found is not None and found.tx_id == tx_id
            assert reopened.tx_location(tx_id) == (found.seq, found.height)
        report = audit(reopened, workers=2)
        assert report.ok, report.finding
    finally:
        reopened.close()


def test_an_older_database_with_a_damaged_id_opens_and_its_audit_names_the_entry(
        chain: Any) -> None:
    """Filling ``id_key`` for an older database does not trip over a stored id that
    is no transaction id: the database opens, and its audit names the entry."""
    node, _ids = chain
    store = node.store
    row = store.tx_by_seq(7)
    assert row is not None
    _exec(store, "DROP INDEX ix_tx_id_key")
    _exec(store, "ALTER TABLE tx DROP COLUMN id_key")
    _exec(store, "UPDATE tx SET tx_id = 'not a transaction id' WHERE seq = 7")
    reopened = Store(store.url)
    try:
        reopened.create()
        report = audit(reopened, workers=2)
        assert not report.ok and report.finding is not None
        assert report.finding.height == row.height
        assert "log entry 7" in report.finding.message
        assert "tx_id" in report.finding.message
    finally:
        reopened.close()
