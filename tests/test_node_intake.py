"""Batch intake and the orderer's state cache: what a resubmitting client sees."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from client.sdk import TxBuilder
from ledger.keys import SigningKey
from ledger.state import CachedState, MemoryState
from node.service import PARALLEL_PARSE_BYTES, WORKER_PIPE_BYTES, enlarge_pipes
from tests.helpers import enrol_tx, make_node


def test_batch_answers_each_known_transaction_as_a_single_submit_would(
        demo_consortium: Any, db_url: str) -> None:
    node = make_node(demo_consortium, db_url)
    _c, genesis, orgs = demo_consortium
    builder = TxBuilder(orgs["bank-asia"].admin, chain_id=genesis.chain_id)
    key = SigningKey.generate()
    committed = enrol_tx(demo_consortium, "supplier-sz")
    enrols_key = enrol_tx(demo_consortium, "bank-asia", key=key)
    refused = enrol_tx(demo_consortium, "bank-asia", key=key)  # same key: refused at execution
    used_nonce = builder.build("membership.key_enrol",
                               {"org": "bank-asia", "kind": "member",
                                "public_key": SigningKey.generate().public_key_hex},
                               nonce="nonce-taken-1")
    for tx in (committed, enrols_key, refused, used_nonce):
        node.submit(tx.to_wire())
    node.cut_block()
    assert node.status(refused.tx_id_hex).status == "rejected"  # type: ignore[union-attr]
    reuse = builder.build("membership.key_enrol",
                          {"org": "bank-asia", "kind": "member",
                           "public_key": SigningKey.generate().public_key_hex},
                          nonce="nonce-taken-1")
    pending = enrol_tx(demo_consortium, "buyer-lyon")
    node.submit(pending.to_wire())
    new = enrol_tx(demo_consortium, "warehouse")

    results = node.submit_many([committed.to_wire(), refused.to_wire(), reuse.to_wire(),
                                pending.to_wire(), new.to_wire(), new.to_wire()])

    assert [r["status"] for r in results] == ["committed", "rejected", "refused", "pending",
                                              "pending", "pending"]
    assert results[0]["height"] == 1
    assert results[1]["code"] == "duplicate_key"
    assert results[2]["code"] == "nonce_reused"
    for index, tx in ((0, committed), (1, refused), (3, pending), (4, new)):
        assert node.submit(tx.to_wire()).to_wire() == results[index]
    node.cut_block()
    assert node.status(new.tx_id_hex).status == "committed"  # type: ignore[union-attr]
    assert node.status(pending.tx_id_hex).status == "committed"  # type: ignore[union-attr]


class _RacingBase:
    """A database whose read returns the old value while a block commits meanwhile."""

    def __init__(self) -> None:
        self.values = MemoryState({"k": b'"old"'})
        self.during_read: Any = None

    def get_raw(self, key: str) -> bytes | None:
        value = self.values.get_raw(key)
        if self.during_read is not None:
            hook, self.during_read = self.during_read, None
            hook()
        return value


def test_a_read_racing_a_commit_never_leaves_the_old_value_cached() -> None:
    base = _RacingBase()
    cache = CachedState(base)

    def commit() -> None:
        base.values.apply({"k": b'"new"'})
        cache.committed({"k": b'"new"'})

    base.during_read = commit
    assert cache.get_raw("k") == b'"old"'  # what the database held when the read began
    assert cache.get_raw("k") == b'"new"'
    base.during_read = lambda: cache.committed({"other": b"1"})
    assert cache.get_many(["j", "k"]) == {"j": None, "k": b'"new"'}


def test_flush_returns_once_the_last_block_is_committed(demo_consortium: Any, db_url: str,
                                                       monkeypatch: Any) -> None:
    """flush() waits for the block being written, not only for the queue to empty:
    the orderer takes a block's transactions off the queue before it commits them."""
    node = make_node(demo_consortium, db_url, block_interval=0.01)
    commit = node.store.commit_block

    def slow_commit(*args: Any, **kwargs: Any) -> None:
        time.sleep(0.4)
        commit(*args, **kwargs)

    monkeypatch.setattr(node.store, "commit_block", slow_commit)
    txs = [enrol_tx(demo_consortium, "bank-asia") for _ in range(3)]
    node.start()
    try:
        for tx in txs:
            node.submit(tx.to_wire())
        node.flush(timeout=10)
        assert [node.status(tx.tx_id_hex).status for tx in txs] == ["committed"] * 3
    finally:
        node.stop()


def test_a_running_node_checkpoints_the_database_log_itself(demo_consortium: Any,
                                                             tmp_path: Any) -> None:
    """The node copies SQLite's write-ahead log into the database file from a thread
    of its own, long before SQLite's own checkpoint (at 16,384 pages) would."""
    db = tmp_path / "node.db"
    node = make_node(demo_consortium, f"sqlite:///{db}", block_interval=0.01)
    node.start()
    try:
        before = db.stat().st_size
        for _ in range(3):
            txs = [enrol_tx(demo_consortium, "bank-asia") for _ in range(40)]
            for tx in txs:
                node.submit(tx.to_wire())
            node.flush(timeout=10)
        deadline = time.monotonic() + 10
        while db.stat().st_size <= before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert db.stat().st_size > before, "the committed blocks never reached the file"
    finally:
        node.stop()
    assert node._checkpointer is None  # stopped with the node


def test_only_a_database_file_gets_a_checkpointer_thread(demo_consortium: Any,
                                                         db_url: str) -> None:
    """SQLite in a file has a write-ahead log to copy; PostgreSQL and an in-memory
    SQLite have none, and their nodes run without the thread, committing as ever."""
    for url, expected in ((db_url, db_url.startswith("sqlite")), ("sqlite://", False)):
        node = make_node(demo_consortium, url, block_interval=0.01)
        node.start()
        try:
            assert (node._checkpointer is not None) == expected
            tx = enrol_tx(demo_consortium, "bank-asia")
            node.submit(tx.to_wire())
            node.flush(timeout=10)
            assert node.status(tx.tx_id_hex).status == "committed"
        finally:
            node.stop()


def test_batches_cross_to_the_signature_worker_through_pipes_that_hold_them(
        demo_consortium: Any, db_url: str, monkeypatch: Any) -> None:
    """The pipes to and from the worker hold a whole batch (1 MiB, or the most the
    system allows), and batch bodies several times the old 64 KiB pipe come back
    parsed, checked and queued; also when they arrive with a block's worth already
    queued and wait for the orderer to take it."""
    node = make_node(demo_consortium, db_url, block_interval=0.01, intake_high_water=100)
    limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    assert enlarge_pipes(node._verifier()) >= min(WORKER_PIPE_BYTES, limit)
    commit = node.store.commit_block

    def slow_commit(*args: Any, **kwargs: Any) -> None:
        time.sleep(0.3)
        commit(*args, **kwargs)

    monkeypatch.setattr(node.store, "commit_block", slow_commit)
    batches = [[enrol_tx(demo_consortium, org) for _ in range(400)]
               for org in ("bank-asia", "supplier-hcm")]
    bodies = [json.dumps({"transactions": [t.to_wire() for t in txs]}).encode()
              for txs in batches]
    assert min(map(len, bodies)) > max(3 * 65536, PARALLEL_PARSE_BYTES)

    async def submit_both() -> list[list[dict[str, Any]]]:
        return list(await asyncio.gather(*(node.submit_body_async(b, 500) for b in bodies)))

    node.start()
    try:
        results = asyncio.run(submit_both())
        assert [[r["status"] for r in rs] for rs in results] == [["pending"] * 400] * 2
        node.flush(timeout=30)
        assert {node.status(tx.tx_id_hex).status for txs in batches for tx in txs} == {
            "committed"}
    finally:
        node.stop()
