"""Audit: walk the chain from genesis and re-verify everything (specs/protocol.md#audit).

For every block, in height order:

1. the row's hash is SHA-256 of its header bytes, and heights run 0, 1, 2, ...;
2. the header links to the previous one (``prev_hash``), keeps the chain id,
   and its time does not go backwards;
3. its transactions are exactly the log entries ``[prev.log_size, log_size)``;
4. each transaction's id is SHA-256 of its body and every signature verifies
   (checked in parallel by worker processes);
5. replaying the transactions through the contracts refuses none of them and
   yields the header's ``state_root``;
6. the Merkle log over all transactions so far has the header's ``log_root``;
7. the block's certificate is signed by a quorum of validator organisations
   (the validators in force after the previous block). The genesis block is
   the trust anchor and carries none.

Then the derived tables (state, parties, validator changes) and the stored Merkle nodes must
equal what the replay produced, byte for byte. The first failure is reported
with its height; nothing after it is trusted.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import nacl.bindings
import nacl.exceptions
from sqlalchemy import select

from ledger import merkle
from ledger.block import BlockHeader, Certificate, state_root_step, verify_certificate
from ledger.chain import Genesis
from ledger.contracts.membership import validator_set
from ledger.encoding import canonical, loads, loads_trusted
from ledger.errors import ChainBroken, LedgerError, VerificationError
from ledger.executor import BlockContext, VerifiedSignatures, execute_block
from ledger.hashing import ZERO_HASH, sha256
from ledger.keys import Domain, key_id
from ledger.state import MemoryState
from ledger.store import (
    BlockRow,
    CheckpointSigRow,
    StateRow,
    Store,
    TxRow,
    id_key,
    validator_change,
)
from ledger.tx import SignedTx, TxBody, TxSignature, leaf_bytes

Progress = Callable[[int, int], None]  # (transactions done, transactions total)
CHUNK = 2000


@dataclass
class AuditReport:
    blocks: int = 0
    txs: int = 0
    seconds: float = 0.0
    finding: ChainBroken | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.finding is None

    @property
    def tx_per_second(self) -> float:
        return self.txs / self.seconds if self.seconds else 0.0


@dataclass
class Replay:
    """What replaying the chain produced: the derived state and parties."""

    state: MemoryState
    heights: dict[str, int]
    parties: list[tuple[int, str]]
    tree: merkle.MerkleTree
    nodes: merkle.MemoryNodeStore
    head: BlockHeader
    validator_changes: dict[int, bytes] = field(default_factory=dict)


# -- parallel signature checks --------------------------------------------

_WORKER_KEYS: dict[str, bytes] = {}


def _init_worker(keys: dict[str, bytes]) -> None:
    _WORKER_KEYS.clear()
    _WORKER_KEYS.update(keys)


def _verify_chunk(items: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, str]]:
    """Verify (body, signatures) pairs; return the (tx_id, key_id) pairs that hold."""
    good: list[tuple[bytes, str]] = []
    prefix = Domain.TX.value
    for body, sigs_raw in items:
        tx_id = sha256(body)
        try:
            sigs = loads_trusted(sigs_raw)
        except ValueError:
            continue
        for sig in sigs:
            public = _WORKER_KEYS.get(sig.get("key_id", ""))
            if public is None:
                continue
            try:
                nacl.bindings.crypto_sign_open(bytes.fromhex(sig["signature"]) + prefix + tx_id,
                                               public)
            except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError,
                    TypeError):
                continue
            good.append((tx_id, sig["key_id"]))
    return good


def _key_hints(store: Store) -> dict[str, bytes]:
    """Public keys named in the (untrusted) state table, kept only when they hash
    to their key id: a hint the replay re-checks, never a trust decision."""
    keys: dict[str, bytes] = {}
    with store.engine.connect() as conn:
        rows = conn.execute(select(StateRow.__table__.c.key, StateRow.__table__.c.value)  # type: ignore[attr-defined]
                            .where(StateRow.__table__.c.key.like("key/%"))).all()  # type: ignore[attr-defined]
    for key, value in rows:
        try:
            public = bytes.fromhex(loads(value)["public_key"])
            if key_id(public) == key[4:]:
                keys[key[4:]] = public
        except (LedgerError, KeyError, TypeError, ValueError):
            continue
    return keys


# -- reading rows fast ----------------------------------------------------


def _iter_blocks(store: Store) -> Iterator[tuple[int, str, bytes, int, int]]:
    table = BlockRow.__table__  # type: ignore[attr-defined]
    start = 0
    while True:
        with store.engine.connect() as conn:
            rows = conn.execute(select(table.c.height, table.c.hash, table.c.header,
                                       table.c.first_seq, table.c.tx_count)
                                .where(table.c.height >= start).order_by(table.c.height)
                                .limit(CHUNK)).all()
        if not rows:
            return
        for row in rows:
            yield row[0], row[1], bytes(row[2]), row[3], row[4]
        start = rows[-1][0] + 1


def _iter_txs(store: Store) -> Iterator[tuple[int, str, int, bytes, bytes, int]]:
    table = TxRow.__table__  # type: ignore[attr-defined]
    start = 0
    while True:
        with store.engine.connect() as conn:
            rows = conn.execute(select(table.c.seq, table.c.tx_id, table.c.height,
                                       table.c.body, table.c.signatures, table.c.id_key)
                                .where(table.c.seq >= start).order_by(table.c.seq)
                                .limit(CHUNK * 5)).all()
        if not rows:
            return
        for row in rows:
            yield row[0], row[1], row[2], bytes(row[3]), bytes(row[4]), int(row[5])
        start = rows[-1][0] + 1


def _certificates(store: Store, heights: Sequence[int]) -> dict[int, Certificate]:
    if not heights:
        return {}
    table = CheckpointSigRow.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        rows = conn.execute(select(table).where(table.c.height >= min(heights),
                                                table.c.height <= max(heights))
                            .order_by(table.c.height, table.c.org)).all()
    grouped: dict[int, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row.height, []).append(row)
    certs: dict[int, Certificate] = {}
    for height, sig_rows in grouped.items():
        certs[height] = Certificate.from_wire({
            "height": height,
            "block_hash": sig_rows[0].block_hash,
            "signatures": [{"org": r.org, "key_id": r.key_id, "signature": r.signature}
                           for r in sig_rows],
        })
    return certs


# -- the walk ----------------------------------------------------------------


def replay_chain(
    store: Store,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    check_certificates: bool = True,
) -> Replay:
    """Walk and re-verify the whole chain; raise :class:`ChainBroken` at the first fault."""
    total = max(store.tx_count(), 1)
    # ``workers`` processes check signatures while this one replays the
    # contracts; by default one core is left for the replay.
    workers = workers if workers is not None else max(1, (os.cpu_count() or 1) - 1)
    pool = (ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                                initargs=(_key_hints(store),)) if workers > 0 else None)
    if pool is None:
        _init_worker(_key_hints(store))
    try:
        with _rare_gc():
            return _walk(store, pool, progress, total, check_certificates)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


@contextlib.contextmanager
def _rare_gc() -> Iterator[None]:
    """Collect cycles rarely while replaying: the walk allocates many small
    containers that reference counting frees, and under the default
    thresholds the collector rescanned the growing replayed state about once
    per 20 transactions."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], 50_000), max(before[1], 20), max(before[2], 100))
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _walk(store: Store, pool: ProcessPoolExecutor | None, progress: Progress | None,
          total: int, check_certificates: bool) -> Replay:
    blocks = _iter_blocks(store)
    txs = _iter_txs(store)
    state = MemoryState()
    heights: dict[str, int] = {}
    parties: list[tuple[int, str]] = []
    nodes = merkle.MemoryNodeStore()
    tree = merkle.MerkleTree(nodes, 0)
    prev: BlockHeader | None = None
    validator_changes: dict[int, bytes] = {}
    done = 0
    # Transactions are read ahead in chunks whose signatures the pool checks
    # while the main process replays the blocks before them.
    pending_txs: list[tuple[int, str, int, bytes, bytes, int]] = []
    futures: list[tuple[int, Future[list[tuple[bytes, str]]]]] = []
    verified = VerifiedSignatures()
    tx_iter_done = False

    def refill(need_seq: int) -> None:
        """Read until ``need_seq`` is in hand and two chunks are in flight."""
        nonlocal tx_iter_done
        while not tx_iter_done and (not pending_txs or pending_txs[-1][0] < need_seq
                                    or len(futures) < 2):
            chunk = []
            for _ in range(CHUNK):
                item = next(txs, None)
                if item is None:
                    tx_iter_done = True
                    break
                chunk.append(item)
            if not chunk:
                break
            pending_txs.extend(chunk)
            work = [(c[3], c[4]) for c in chunk]
            if pool is not None:
                futures.append((chunk[0][0], pool.submit(_verify_chunk, work)))
            else:
                verified.pairs.update(_verify_chunk(work))

    cert_cache: dict[int, Certificate] = {}
    for height, stored_hash, header_bytes, first_seq, tx_count in blocks:
        # Step 1.
        expected_height = 0 if prev is None else prev.height + 1
        if height != expected_height:
            raise ChainBroken(f"block {expected_height} is missing (next stored is {height})",
                              height=expected_height)
        if sha256(header_bytes).hex() != stored_hash:
            raise ChainBroken("stored block hash is not the hash of the stored header",
                              height=height)
        try:
            header = BlockHeader.from_wire(loads(header_bytes))
        except LedgerError as exc:
            raise ChainBroken(f"header does not parse: {exc.message}", height=height) from exc
        if canonical(header.to_wire()) != header_bytes:
            raise ChainBroken("header bytes are not canonical", height=height)
        if header.height != height:
            raise ChainBroken(f"header says height {header.height}", height=height)
        # Step 2.
        if prev is None:
            if header.prev_hash != ZERO_HASH:
                raise ChainBroken("genesis must have a zero prev_hash", height=0)
        else:
            if header.prev_hash != prev.hash:
                raise ChainBroken("prev_hash does not match the previous block's hash",
                                  height=height)
            if header.chain_id != prev.chain_id:
                raise ChainBroken("chain id changed", height=height)
            if header.time < prev.time:
                raise ChainBroken("block time goes backwards", height=height)
        prev_size = 0 if prev is None else prev.log_size
        if first_seq != prev_size or header.log_size != prev_size + tx_count:
            raise ChainBroken(
                f"block claims log entries [{first_seq}, {first_seq + tx_count}) but the "
                f"log runs [{prev_size}, {header.log_size})", height=height)
        # Step 3.
        refill(header.log_size - 1)
        block_rows = pending_txs[:tx_count]
        del pending_txs[:tx_count]
        for offset, row in enumerate(block_rows):
            if row[0] != prev_size + offset:
                raise ChainBroken(f"log entry {prev_size + offset} is missing or out of order "
                                  f"(found entry {row[0]})", height=height)
            if row[2] != height:
                raise ChainBroken(f"log entry {row[0]} is recorded at height {row[2]}",
                                  height=height)
        if len(block_rows) != tx_count:
            raise ChainBroken(f"block should hold {tx_count} transactions, found "
                              f"{len(block_rows)}", height=height)
        # Step 4: collect the pool's answers for every chunk this block touches.
        while futures and futures[0][0] < header.log_size:
            verified.pairs.update(futures.pop(0)[1].result())
        signed: list[SignedTx] = []
        for seq, tx_id, _h, body, sigs_raw, stored_key in block_rows:
            computed = sha256(body)
            if computed.hex() != tx_id:
                raise ChainBroken(f"log entry {seq}: stored tx_id is not SHA-256 of its body",
                                  height=height)
            if stored_key != id_key(tx_id):
                raise ChainBroken(f"log entry {seq}: stored id_key does not match its tx_id "
                                  "(lookups by id would miss it)", height=height)
            # Stored bodies need no duplicate-member check: any byte that differs
            # from what the author signed already failed its signature above.
            try:
                signatures = tuple(TxSignature(s["key_id"], bytes.fromhex(s["signature"]))
                                   for s in loads_trusted(sigs_raw))
                tx_body = TxBody.from_wire(loads_trusted(body))
            except (LedgerError, KeyError, TypeError, ValueError) as exc:
                raise ChainBroken(f"log entry {seq} does not parse: {exc}",
                                  height=height) from exc
            signed.append(SignedTx(tx_body, signatures, body, computed))
        # Step 5. Signatures the pool could not check are checked by the executor.
        if height == 0:
            try:
                genesis = Genesis.from_wire({"version": "tradeledger-genesis/1",
                                             "header": header.to_wire(),
                                             "transaction": signed[0].to_wire()})
            except LedgerError as exc:
                raise ChainBroken(f"genesis does not verify: {exc.message}", height=0) from exc
            writes = genesis.state_writes
            block_parties = [(0, org) for org in genesis.parties]
        else:
            ctx = BlockContext(chain_id=header.chain_id, height=height, time=header.time)
            execution = execute_block(state, signed, ctx, verified=verified)
            if execution.refused:
                bad = execution.refused[0]
                raise ChainBroken(f"transaction {bad.tx.tx_id_hex} is refused on replay: "
                                  f"{bad.error.code}: {bad.error.message}", height=height)
            writes = execution.state.writes
            if state_root_step(prev.state_root if prev else ZERO_HASH,
                               execution.state.sorted_changes()) != header.state_root:
                raise ChainBroken("state_root does not match the replayed state changes",
                                  height=height)
            block_parties = [(prev_size + i, org) for i, a in enumerate(execution.accepted)
                             for org in sorted(a.parties)]
            # Step 7: the validators in force before this block sign it.
            if check_certificates:
                if height not in cert_cache:
                    cert_cache.update(_certificates(store, list(range(height, height + CHUNK))))
                cert = cert_cache.pop(height, None)
                if cert is None:
                    raise ChainBroken("block has no finality certificate", height=height)
                try:
                    verify_certificate(header, cert, validator_set(state))
                except VerificationError as exc:
                    raise ChainBroken(f"certificate: {exc.message}", height=height) from exc
        change = validator_change(writes)
        if change is not None:
            validator_changes[height] = change
        state.apply(writes)
        for key, value in writes.items():
            if value is not None:
                heights[key] = height
            else:
                heights.pop(key, None)
        parties.extend(block_parties)
        for tx in signed:
            for sig in tx.signatures:
                verified.pairs.discard((tx.tx_id, sig.key_id))
        # Step 6.
        if signed:
            tree.append_leaf_hashes([merkle.leaf_hash(leaf_bytes(t.body_bytes, t.signatures))
                                     for t in signed])
        if tree.root() != header.log_root:
            raise ChainBroken("log_root does not match the Merkle tree of the transactions",
                              height=height)
        prev = header
        done += len(signed)
        if progress is not None:
            progress(done, total)
    if prev is None:
        raise ChainBroken("the store holds no blocks", height=0)
    leftover = next(txs, None) if not pending_txs else pending_txs[0]
    if leftover is not None:
        raise ChainBroken(f"log entry {leftover[0]} lies beyond the last block",
                          height=prev.height + 1)
    return Replay(state, heights, parties, tree, nodes, prev, validator_changes)


def audit(store: Store, *, workers: int | None = None,
          progress: Progress | None = None) -> AuditReport:
    """Re-verify the whole chain and the derived tables; never raises on a finding."""
    started = time.perf_counter()
    report = AuditReport()
    try:
        replay = replay_chain(store, workers=workers, progress=progress)
        report.blocks = replay.head.height + 1
        report.txs = replay.head.log_size
        _compare_derived(store, replay)
    except ChainBroken as exc:
        report.finding = exc
    report.seconds = time.perf_counter() - started
    return report


def _compare_derived(store: Store, replay: Replay) -> None:
    """Derived tables must equal the replay; stored Merkle nodes must be the tree's."""
    head = replay.head.height
    stored_state = dict(store.state_items())
    expected = replay.state.items
    for key in sorted(set(stored_state) | set(expected)):
        if stored_state.get(key) != expected.get(key):
            what = ("is missing" if key not in stored_state else
                    "should not exist" if key not in expected else "differs")
            raise ChainBroken(f"derived state {key!r} {what} (replay of the chain disagrees)",
                              height=replay.heights.get(key, head))
    stored_parties = [(int(seq), str(org)) for seq, org in
                      store.scan("SELECT seq, org FROM tx_party ORDER BY seq, org")]
    if stored_parties != sorted(replay.parties):
        raise ChainBroken("derived party index differs from the replay", height=head)
    if dict(store.validator_changes()) != replay.validator_changes:
        raise ChainBroken("derived validator-change index differs from the replay", height=head)
    nodes = replay.nodes.nodes
    for level, idx, value in store.scan("SELECT level, idx, hash FROM merkle_node"):
        if nodes.get((level, idx)) != bytes(value):
            raise ChainBroken(f"stored Merkle node ({level}, {idx}) is wrong", height=head)


def rebuild_derived(store: Store, *, workers: int | None = None) -> Replay:
    """Re-derive state and party tables from the chain and write them."""
    replay = replay_chain(store, workers=workers)
    store.reset_derived()
    store.write_derived(replay.state.items, replay.heights, replay.parties,
                        replay.validator_changes)
    return replay
