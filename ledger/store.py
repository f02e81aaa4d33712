"""Storage: append-only chain tables plus derived state, through SQLModel.

SQLite (WAL) by default; any SQLAlchemy URL, PostgreSQL included, through
``DATABASE_URL``. Tables (specs/protocol.md#storage):

* ``block``, ``tx``, ``merkle_node``, ``checkpoint_sig``: the chain. Rows are
  only ever inserted. ``tx`` keeps the signed bytes as they were signed.
* ``state``, ``tx_party``: derived state, rebuildable from the chain.
* ``receipt``, ``receipt_party``: this node's record of transactions it refused and
  who signed them (not chain data).
* ``confidential_check``: what this node found opening its organisation's
  sealed copies of trade details (node-local like ``receipt``; no plaintext).

A block is committed in one database transaction: all of its rows or none.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from sqlalchemy import BigInteger, Column, Index, LargeBinary, event, func, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

from ledger.block import BlockHeader, Certificate, CheckpointSignature
from ledger.chain import BuiltBlock, Genesis
from ledger.contracts import PUBLIC_PARTY
from ledger.encoding import canonical_pairs, loads
from ledger.executor import Accepted
from ledger.tx import SignedTx, TxSignature


class BlockRow(SQLModel, table=True):
    __tablename__ = "block"
    height: int = Field(primary_key=True)
    hash: str = Field(max_length=64, unique=True)
    header: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    first_seq: int
    tx_count: int


class TxRow(SQLModel, table=True):
    __tablename__ = "tx"
    __table_args__ = (Index("ix_tx_id_key", "id_key"),)
    seq: int = Field(primary_key=True)
    tx_id: str = Field(max_length=64)
    # The first 8 bytes of the id as a signed integer (id_key): lookups by id go
    # through an index on it. Ids are random, so every block's inserts land all
    # over the index; an 8-byte key keeps it about a quarter of the size of one
    # on the 64-character id, and with it the pages each block rewrites.
    id_key: int = Field(sa_column=Column(BigInteger, nullable=False))
    height: int = Field(index=True)
    type: str = Field(max_length=64, index=True)
    author: str = Field(max_length=32)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    signatures: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class MerkleNodeRow(SQLModel, table=True):
    __tablename__ = "merkle_node"
    level: int = Field(primary_key=True)
    idx: int = Field(primary_key=True)
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class CheckpointSigRow(SQLModel, table=True):
    __tablename__ = "checkpoint_sig"
    height: int = Field(primary_key=True)
    org: str = Field(primary_key=True, max_length=32)
    block_hash: str = Field(max_length=64)
    key_id: str = Field(max_length=32)
    signature: str = Field(max_length=128)


class StateRow(SQLModel, table=True):
    __tablename__ = "state"
    key: str = Field(primary_key=True, max_length=512)
    value: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    height: int


class TxPartyRow(SQLModel, table=True):
    __tablename__ = "tx_party"
    __table_args__ = (Index("ix_tx_party_org_seq", "org", "seq"),)
    seq: int = Field(primary_key=True)
    org: str = Field(primary_key=True, max_length=32)


class ReceiptRow(SQLModel, table=True):
    """A transaction this node refused. Node-local, not part of the chain."""

    __tablename__ = "receipt"
    tx_id: str = Field(primary_key=True, max_length=64)
    code: str = Field(max_length=64)
    message: str
    time: str = Field(max_length=40)


class ValidatorChangeRow(SQLModel, table=True):
    """A block that changed the validator set, with all its state changes.

    Derived from the chain: proof bundles carry these so that offline verifiers
    follow the validator set from genesis (specs/protocol.md#validator-set-changes).
    """

    __tablename__ = "validator_change"
    height: int = Field(primary_key=True)
    changes: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ConfidentialCheckRow(SQLModel, table=True):
    """The outcome of opening this node's organisation's sealed copy of a record.

    Node-local, like ``receipt``: neither chain data nor derived state, so audit
    and rebuild never read or write it. It holds outcomes, never plaintext.
    """

    __tablename__ = "confidential_check"
    tx_id: str = Field(primary_key=True, max_length=64)
    seq: int = Field(index=True)
    org: str = Field(max_length=32)
    outcome: str = Field(max_length=16)
    detail: str
    time: str = Field(max_length=40)


class ReceiptPartyRow(SQLModel, table=True):
    """An organisation that signed a refused transaction and may read its receipt.

    Node-local, like ``receipt``."""

    __tablename__ = "receipt_party"
    tx_id: str = Field(primary_key=True, max_length=64)
    org: str = Field(primary_key=True, max_length=32)


# Parameters per IN (...) query: well below every SQLite build's variable limit.
MANY_CHUNK = 500
# SQLite checkpoints its write-ahead log into the database file once the log holds
# this many pages (the default is 1,000, about 4 MB). A block rewrites many of the
# same index pages as the last one; with a larger log each is copied into the
# file once per checkpoint rather than once per block. A running node checkpoints
# from a thread of its own before the log gets there (Store.checkpoint), so that
# the copy stays off the path of the block commits; this is the backstop.
# bench/node.py exercises both.
WAL_CHECKPOINT_PAGES = 16_384
# Parameters one statement may carry: SQLite's default limit since 3.32
# (PostgreSQL allows 65,535). A SQLite build with a lower limit gets its own.
ROW_PARAMS = 32_766
# Rows per multi-row INSERT of a block commit (fewer where ROW_PARAMS binds).
# Every full chunk of a table is the same SQL text, which the driver keeps
# prepared from block to block; a statement sized to the whole block was new
# text each time, parsed and compiled for its thousands of parameters. At 256
# rows the node's in-process path took 588,746 instructions per transaction
# against 649,012, the orderer 52-54 us of CPU per transaction against 58-60
# over HTTP, and the node process 24 MB less memory at its peak.
ROWS_PER_INSERT = 256
CHAIN_TABLES = ("block", "tx", "merkle_node", "checkpoint_sig")
DERIVED_TABLES = ("state", "tx_party", "validator_change")


_HEX_DIGITS = frozenset("0123456789abcdef")


def id_key(tx_id: str) -> int:
    """``tx.id_key`` of a transaction id (64 lowercase hex digits). ValueError for
    anything else."""
    if len(tx_id) != 64 or not set(tx_id) <= _HEX_DIGITS:
        raise ValueError(f"not a transaction id: {tx_id!r}")
    return id_key_of(bytes.fromhex(tx_id[:16]))


def id_key_of(tx_id: bytes) -> int:
    """``tx.id_key`` of a raw transaction id: its first 8 bytes as a signed 64-bit
    integer."""
    return int.from_bytes(tx_id[:8], "big", signed=True)


def _stored_id_key(tx_id: object) -> int:
    """``id_key`` of a stored id, for filling the column of an older database; 0 for
    a stored id that is no transaction id at all. Such a row is tampered with or
    damaged: the database still opens, and its audit names the entry (its
    ``tx_id`` is not the SHA-256 of its body)."""
    try:
        return id_key(str(tx_id))
    except ValueError:
        return 0


def _in_memory(url: str) -> bool:
    return url in ("sqlite://", "sqlite:///:memory:")


def validator_change(writes: Mapping[str, bytes | None]) -> bytes | None:
    """The block's sorted changes as ``canonical_pairs`` if it changed the validator set."""
    from ledger.contracts.membership import VALIDATORS

    if VALIDATORS not in writes:
        return None
    return canonical_pairs(sorted(writes.items()))


@dataclass(frozen=True)
class StoredTx:
    seq: int
    height: int
    tx_id: str
    type: str
    author: str
    body: bytes
    signatures: tuple[TxSignature, ...]

    def to_signed(self) -> SignedTx:
        return SignedTx.from_wire({"body": loads(self.body),
                                   "signatures": [s.to_wire() for s in self.signatures]})

    def leaf_bytes(self) -> bytes:
        from ledger.tx import leaf_bytes

        return leaf_bytes(self.body, self.signatures)

    @staticmethod
    def parse_signatures(stored: bytes) -> tuple[TxSignature, ...]:
        return tuple(TxSignature(s["key_id"], bytes.fromhex(s["signature"]))
                     for s in loads(stored))

    @classmethod
    def from_row(cls, row: TxRow) -> StoredTx:
        return cls(row.seq, row.height, row.tx_id, row.type, row.author, row.body,
                   cls.parse_signatures(row.signatures))


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign-thread use."""
    if url.startswith("sqlite"):
        memory = _in_memory(url)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if memory else None,
            # Hot reads take a connection each while they run: room for the
            # server's worker threads (40), the orderer and the event loop.
            **({} if memory else {"pool_size": 10, "max_overflow": 50}),
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL" if not memory else "PRAGMA synchronous=OFF")
            if not memory:
                cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=40)


class Store:
    """The node's database. Thread-safe for reads; one writer commits blocks."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._write_lock = threading.Lock()
        # Idle DB-API connections for hot reads, taken and given back per read:
        # a connection held per thread would leak one for every worker thread
        # the server ever starts, and exhaust the pool.
        self._free: list[Any] = []
        self._raw_conns: list[Any] = []
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        self._mark = mark
        self._row_params = self._insert_params()
        self._get_sql = f"SELECT value FROM state WHERE key = {mark}"
        by_id = f"WHERE id_key = {mark} AND tx_id = {mark}"
        self._locate_sql = f"SELECT seq, height FROM tx {by_id}"
        self._receipt_sql = f"SELECT code, message FROM receipt WHERE tx_id = {mark}"
        self._body_sql = f"SELECT body FROM tx {by_id}"
        self._tx_sql = f"SELECT seq, height, tx_id, type, author, body, signatures FROM tx {by_id}"
        self._range_sql = (f"SELECT key, value FROM state WHERE key >= {mark} AND key < {mark} "
                           f"ORDER BY key LIMIT {mark}")

    def _insert_params(self) -> int:
        """Parameters one statement may carry here: ROW_PARAMS, or less where the
        SQLite library was built with a lower limit."""
        if self.engine.dialect.name != "sqlite":
            return ROW_PARAMS
        conn = self.engine.raw_connection()
        try:
            driver: Any = conn.driver_connection
            limit = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        finally:
            conn.close()
        return max(1, min(ROW_PARAMS, int(limit)))

    def create(self) -> None:
        SQLModel.metadata.create_all(self.engine)
        if "id_key" not in {c["name"] for c in inspect(self.engine).get_columns("tx")}:
            self._add_id_keys()

    def _add_id_keys(self) -> None:
        """Bring a database written before ``tx.id_key`` existed up to date: add the
        column, fill it from each stored id, and index it (one transaction)."""
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(text("ALTER TABLE tx ADD COLUMN id_key BIGINT NOT NULL DEFAULT 0"))
            rows = conn.execute(text("SELECT seq, tx_id FROM tx")).all()
            if rows:
                conn.execute(text("UPDATE tx SET id_key = :k WHERE seq = :s"),
                             [{"k": _stored_id_key(t), "s": int(q)} for q, t in rows])
            conn.execute(text("CREATE INDEX ix_tx_id_key ON tx (id_key)"))

    @property
    def checkpoints(self) -> bool:
        """Whether :meth:`checkpoint` has work to do here: a SQLite database in a file."""
        return self.engine.dialect.name == "sqlite" and not _in_memory(self.url)

    def checkpoint(self) -> None:
        """Copy what SQLite's write-ahead log holds into the database file, as far as
        readers allow, without waiting for them or for the writer (a passive
        checkpoint). Nothing to do on PostgreSQL or an in-memory SQLite."""
        if not self.checkpoints:
            return
        with self._cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            cursor.fetchall()

    def close(self) -> None:
        for conn in self._raw_conns:
            with contextlib.suppress(Exception):
                conn.close()
        self._raw_conns.clear()
        self._free.clear()
        self.engine.dispose()

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[Any]:
        """A cursor on an idle DB-API connection in autocommit mode, for hot reads."""
        try:
            conn = self._free.pop()
        except IndexError:
            conn = self.engine.raw_connection()
            driver: Any = conn.driver_connection
            if self.engine.dialect.name != "sqlite" and hasattr(driver, "autocommit"):
                driver.autocommit = True
            self._raw_conns.append(conn)
        cursor = conn.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
            self._free.append(conn)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # -- reading the chain ------------------------------------------------

    def head(self) -> BlockHeader | None:
        with self.session() as s:
            row = s.exec(select(BlockRow).order_by(col(BlockRow.height).desc()).limit(1)).first()
            return None if row is None else BlockHeader.from_wire(loads(row.header))

    def header(self, height: int) -> BlockHeader | None:
        with self.session() as s:
            row = s.get(BlockRow, height)
            return None if row is None else BlockHeader.from_wire(loads(row.header))

    def block_row(self, height: int) -> BlockRow | None:
        with self.session() as s:
            return s.get(BlockRow, height)

    def block_rows(self, start: int, stop: int) -> list[BlockRow]:
        with self.session() as s:
            rows = s.exec(select(BlockRow).where(col(BlockRow.height) >= start,
                                                 col(BlockRow.height) < stop)
                          .order_by(col(BlockRow.height))).all()
            return list(rows)

    def latest_blocks(self, limit: int) -> list[BlockRow]:
        with self.session() as s:
            rows = s.exec(select(BlockRow).order_by(col(BlockRow.height).desc()).limit(limit))
            return list(rows.all())

    def genesis(self) -> Genesis:
        with self.session() as s:
            row = s.get(BlockRow, 0)
            tx_row = s.get(TxRow, 0)
        if row is None or tx_row is None:
            raise LookupError("the store holds no genesis block")
        header = loads(row.header)
        stored = StoredTx.from_row(tx_row)
        return Genesis.from_wire({"version": "tradeledger-genesis/1", "header": header,
                                  "transaction": {"body": loads(stored.body),
                                                  "signatures": [s.to_wire() for s in
                                                                 stored.signatures]}})

    def tx_by_id(self, tx_id: str) -> StoredTx | None:
        """A committed transaction by its id, by a prepared point query (every read of
        a record and every status poll of a committed one comes here)."""
        row = self._point_by_id(self._tx_sql, tx_id)
        if row is None:
            return None
        seq, height, found, tx_type, author, body, signatures = row
        return StoredTx(int(seq), int(height), str(found), str(tx_type), str(author),
                        bytes(body), StoredTx.parse_signatures(bytes(signatures)))

    def tx_by_seq(self, seq: int) -> StoredTx | None:
        with self.session() as s:
            row = s.get(TxRow, seq)
            return None if row is None else StoredTx.from_row(row)

    def txs_in_block(self, height: int) -> list[StoredTx]:
        with self.session() as s:
            rows = s.exec(select(TxRow).where(TxRow.height == height).order_by(col(TxRow.seq)))
            return [StoredTx.from_row(r) for r in rows.all()]

    def iter_txs(self, start_seq: int = 0, *, batch: int = 5000) -> Iterator[StoredTx]:
        """All transactions in log order, read in batches."""
        seq = start_seq
        while True:
            with self.session() as s:
                rows = s.exec(select(TxRow).where(col(TxRow.seq) >= seq)
                              .order_by(col(TxRow.seq)).limit(batch)).all()
            if not rows:
                return
            for row in rows:
                yield StoredTx.from_row(row)
            seq = rows[-1].seq + 1

    def tx_count(self) -> int:
        with self.session() as s:
            return int(s.exec(select(func.count()).select_from(TxRow)).one())

    def parties(self, seq: int) -> list[str]:
        with self.session() as s:
            rows = s.exec(select(TxPartyRow.org).where(TxPartyRow.seq == seq)).all()
            return sorted(rows)

    def seqs_for_party(self, org: str, *, before: int | None, limit: int,
                       tx_type: str | None = None) -> list[StoredTx]:
        """Newest first: the transactions ``org`` is a party to, or that are public."""
        readers = [org, PUBLIC_PARTY]
        with self.session() as s:
            visible = select(TxPartyRow.seq).where(col(TxPartyRow.org).in_(readers))
            query = select(TxRow).where(col(TxRow.seq).in_(visible))
            if before is not None:
                query = query.where(col(TxRow.seq) < before)
            if tx_type:
                query = query.where(TxRow.type == tx_type)
            rows = s.exec(query.order_by(col(TxRow.seq).desc()).limit(limit)).all()
            return [StoredTx.from_row(r) for r in rows]

    def readable(self, org: str, seqs: Sequence[int]) -> set[int]:
        """Which of ``seqs`` ``org`` may read: it is a party, or the record is public."""
        if not seqs:
            return set()
        m = self._mark
        found: set[int] = set()
        # A plain cursor: this runs on every read of every member.
        with self._cursor() as cursor:
            for i in range(0, len(seqs), 500):
                chunk = list(seqs[i:i + 500])
                cursor.execute(f"SELECT seq FROM tx_party WHERE org IN ({m}, {m}) AND seq IN "
                               f"({', '.join([m] * len(chunk))})", (org, PUBLIC_PARTY, *chunk))
                found.update(int(r[0]) for r in cursor.fetchall())
        return found

    def certificate(self, height: int) -> Certificate | None:
        with self.session() as s:
            rows = s.exec(select(CheckpointSigRow).where(CheckpointSigRow.height == height)
                          .order_by(col(CheckpointSigRow.org))).all()
        if not rows:
            return None
        return Certificate(
            height=height,
            block_hash=bytes.fromhex(rows[0].block_hash),
            signatures=tuple(CheckpointSignature(r.org, r.key_id, bytes.fromhex(r.signature))
                             for r in rows),
        )

    # -- state ------------------------------------------------------------

    def _point(self, sql: str, param: str) -> Any:
        with self._cursor() as cursor:
            cursor.execute(sql, (param,))
            return cursor.fetchone()

    def _point_by_id(self, sql: str, tx_id: str) -> Any:
        """The row of ``sql`` (``WHERE id_key = ? AND tx_id = ?``) for ``tx_id``; None
        for an id that is not 64 lowercase hex digits (no stored id is)."""
        try:
            key = id_key(tx_id)
        except ValueError:
            return None
        with self._cursor() as cursor:
            cursor.execute(sql, (key, tx_id))
            return cursor.fetchone()

    def get_raw(self, key: str) -> bytes | None:
        row = self._point(self._get_sql, key)
        return None if row is None else bytes(row[0])

    def _many(self, sql: str, params: Sequence[str]) -> list[Any]:
        """Rows of ``sql`` (``... IN ({marks})``) for ``params``, in chunks."""
        rows: list[Any] = []
        with self._cursor() as cursor:
            for i in range(0, len(params), MANY_CHUNK):
                chunk = params[i:i + MANY_CHUNK]
                cursor.execute(sql.format(marks=", ".join([self._mark] * len(chunk))),
                               tuple(chunk))
                rows.extend(cursor.fetchall())
        return rows

    def get_raw_many(self, keys: Sequence[str]) -> dict[str, bytes | None]:
        """The state values of ``keys`` (``None`` where absent), in few queries."""
        found: dict[str, bytes | None] = dict.fromkeys(keys)
        for key, value in self._many("SELECT key, value FROM state WHERE key IN ({marks})",
                                     keys):
            found[key] = bytes(value)
        return found

    def receipts_of(self, tx_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """(code, message) of each of ``tx_ids`` that this node refused."""
        rows = self._many("SELECT tx_id, code, message FROM receipt WHERE tx_id IN ({marks})",
                          tx_ids)
        return {str(t): (str(c), str(m)) for t, c, m in rows}

    def tx_location(self, tx_id: str) -> tuple[int, int] | None:
        """(seq, height) of a committed transaction, by a prepared point query."""
        row = self._point_by_id(self._locate_sql, tx_id)
        return None if row is None else (int(row[0]), int(row[1]))

    def receipt_of(self, tx_id: str) -> tuple[str, str] | None:
        """(code, message) if this node refused the transaction."""
        row = self._point(self._receipt_sql, tx_id)
        return None if row is None else (str(row[0]), str(row[1]))

    def get(self, key: str) -> Any:
        raw = self.get_raw(key)
        return None if raw is None else loads(raw)

    def scan(self, sql: str) -> Iterator[tuple[Any, ...]]:
        """Every row of a fixed ``SELECT``, read through a plain DB-API cursor in
        large slices (whole-table reads of audits and rebuilds)."""
        conn = self.engine.raw_connection()
        try:
            cursor = conn.cursor()
            cursor.execute(sql)
            while rows := cursor.fetchmany(10_000):
                yield from rows
            cursor.close()
        finally:
            conn.close()

    def tx_body(self, tx_id: str) -> bytes | None:
        """The stored body bytes of a committed transaction, by a prepared point query."""
        row = self._point_by_id(self._body_sql, tx_id)
        return None if row is None else bytes(row[0])

    def state_prefix_raw(self, prefix: str, *, limit: int = 1000) -> list[tuple[str, bytes]]:
        """Like :meth:`state_prefix`, values as stored bytes, on the hot-read connection."""
        with self._cursor() as cursor:
            cursor.execute(self._range_sql, (prefix, prefix + "\U0010ffff", limit))
            rows = cursor.fetchall()
        return [(str(k), bytes(v)) for k, v in rows if str(k).startswith(prefix)]

    def state_items(self) -> Iterator[tuple[str, bytes]]:
        for key, value in self.scan("SELECT key, value FROM state ORDER BY key"):
            yield key, bytes(value)

    def scan_raw(self, prefix: str) -> dict[str, bytes]:
        """Every state entry whose key starts with ``prefix`` (for contracts)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        table = StateRow.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            rows = conn.execute(select(table.c.key, table.c.value)
                                .where(table.c.key.like(escaped + "%", escape="\\"))).all()
        return {str(k): bytes(v) for k, v in rows if str(k).startswith(prefix)}

    def state_prefix(self, prefix: str, *, limit: int = 1000) -> list[tuple[str, Any]]:
        """State entries whose key starts with ``prefix``, in key order."""
        upper = prefix + "\U0010ffff"
        with self.session() as s:
            rows = s.exec(select(StateRow).where(col(StateRow.key) >= prefix,
                                                 col(StateRow.key) < upper)
                          .order_by(col(StateRow.key)).limit(limit)).all()
        return [(r.key, loads(r.value)) for r in rows if r.key.startswith(prefix)]

    # -- Merkle nodes -------------------------------------------------------

    def merkle_get(self, level: int, index: int) -> bytes:
        with self.session() as s:
            row = s.get(MerkleNodeRow, (level, index))
        if row is None:
            raise KeyError((level, index))
        return bytes(row.hash)

    # -- receipts ---------------------------------------------------------

    def add_receipts(self, receipts: Iterable[tuple[str, str, str, str, Sequence[str]]]
                     ) -> None:
        """Record refused transactions, each with the organisations that signed it."""
        items = list(receipts)
        if not items:
            return
        with self.session() as s:
            for tx_id, code, message, when, orgs in items:
                s.merge(ReceiptRow(tx_id=tx_id, code=code, message=message, time=when))
                for org in sorted(set(orgs)):
                    s.merge(ReceiptPartyRow(tx_id=tx_id, org=org))
            s.commit()

    def receipt_orgs(self, tx_id: str) -> set[str]:
        with self.session() as s:
            rows = s.exec(select(ReceiptPartyRow.org).where(ReceiptPartyRow.tx_id == tx_id)).all()
        return set(rows)

    def receipt(self, tx_id: str) -> ReceiptRow | None:
        with self.session() as s:
            return s.get(ReceiptRow, tx_id)

    # -- confidential checks (node-local) -----------------------------------

    def add_confidential_checks(self, rows: Sequence[tuple[str, int, str, str, str, str]]
                                ) -> None:
        """Insert or replace ``(tx_id, seq, org, outcome, detail, time)`` check outcomes."""
        if not rows:
            return
        m = self._mark
        with self._write_lock, self.engine.begin() as conn:
            conn.exec_driver_sql(
                f"INSERT INTO confidential_check (tx_id, seq, org, outcome, detail, time) "
                f"VALUES ({m}, {m}, {m}, {m}, {m}, {m}) ON CONFLICT (tx_id) DO UPDATE SET "
                "seq = excluded.seq, org = excluded.org, outcome = excluded.outcome, "
                "detail = excluded.detail, time = excluded.time",
                list(rows))

    def confidential_check(self, tx_id: str) -> ConfidentialCheckRow | None:
        with self.session() as s:
            return s.get(ConfidentialCheckRow, tx_id)

    def confidential_checked_seq(self) -> int:
        """The highest log index checked so far, or -1."""
        with self.session() as s:
            found = s.exec(select(func.max(ConfidentialCheckRow.seq))).one()
        return -1 if found is None else int(found)

    def txs_of_types(self, types: Iterable[str], *, after_seq: int,
                     batch: int = 1000) -> Iterator[StoredTx]:
        """Committed transactions of ``types`` with log index above ``after_seq``."""
        wanted = sorted(types)
        seq = after_seq
        while True:
            with self.session() as s:
                rows = s.exec(select(TxRow).where(col(TxRow.seq) > seq,
                                                  col(TxRow.type).in_(wanted))
                              .order_by(col(TxRow.seq)).limit(batch)).all()
            if not rows:
                return
            for row in rows:
                yield StoredTx.from_row(row)
            seq = rows[-1].seq

    def nonce_used(self, author: str, nonce: str) -> bool:
        return self.get_raw(f"nonce/{author}/{nonce}") is not None

    # -- writing ----------------------------------------------------------

    def commit_genesis(self, genesis: Genesis) -> None:
        self._commit(genesis.header, [Accepted(genesis.tx, frozenset(self._genesis_parties(
            genesis)))], genesis.state_writes,
            _genesis_nodes(genesis), signatures=())

    @staticmethod
    def _genesis_parties(genesis: Genesis) -> list[str]:
        return genesis.parties

    def commit_block(self, block: BuiltBlock,
                     signatures: Sequence[CheckpointSignature] = ()) -> None:
        self._commit(block.header, block.accepted, block.state_writes, block.merkle_nodes,
                     signatures=signatures)

    def _commit(self, header: BlockHeader, accepted: Sequence[Accepted],
                writes: Mapping[str, bytes | None], nodes: Sequence[tuple[int, int, bytes]],
                *, signatures: Sequence[CheckpointSignature]) -> None:
        first_seq = header.log_size - len(accepted)
        block_hash = header.hash.hex()
        height = header.height
        tx_rows: list[tuple[Any, ...]] = []
        party_rows: list[tuple[int, str]] = []
        for seq, item in enumerate(accepted, first_seq):
            tx = item.tx
            body = tx.body
            tx_rows.append((seq, tx.tx_id_hex, id_key_of(tx.tx_id), height, body.type,
                            body.author, tx.body_bytes, tx.signatures_bytes))
            party_rows += [(seq, org) for org in item.parties]
        # In key order (a built block's writes are in key order already, see
        # build_block): each insert then lands next to the previous one in the
        # state table's index.
        upserts = [(k, v, height) for k, v in writes.items() if v is not None]
        deletes = [k for k, v in writes.items() if v is None]
        change = validator_change(writes)
        # Multi-row statements of ROWS_PER_INSERT rows: the database steps once
        # per few hundred rows rather than once per row. Each step releases the
        # GIL and must win it back from the intake threads, which made a per-row
        # executemany wait far longer than it ran. The same SQL on SQLite and
        # PostgreSQL; one database transaction holds the whole block.
        with self._write_lock, self.engine.begin() as conn:
            insert = self._inserter(conn)
            insert("block (height, hash, header, first_seq, tx_count)",
                   [(header.height, block_hash, header.canonical_bytes(), first_seq,
                     len(accepted))])
            insert("tx (seq, tx_id, id_key, height, type, author, body, signatures)", tx_rows)
            insert("tx_party (seq, org)", party_rows)
            insert("merkle_node (level, idx, hash)", nodes)
            for i in range(0, len(deletes), self._row_params):
                chunk = deletes[i:i + self._row_params]
                conn.exec_driver_sql(
                    f"DELETE FROM state WHERE key IN ({', '.join([self._mark] * len(chunk))})",
                    tuple(chunk))
            insert("state (key, value, height)", upserts,
                   " ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                   "height = excluded.height")
            if change is not None:
                insert("validator_change (height, changes)", [(header.height, change)])
            insert("checkpoint_sig (height, org, block_hash, key_id, signature)",
                   [(header.height, sg.org, block_hash, sg.key_id, sg.signature.hex())
                    for sg in signatures])

    def _inserter(self, conn: Any) -> Any:
        """``insert(target, rows, suffix="")`` on ``conn``: ``INSERT INTO target VALUES
        (...), (...) suffix`` in statements of ``ROWS_PER_INSERT`` rows (the last one
        fewer), or fewer where ``self._row_params`` parameters would not hold them."""
        mark = self._mark
        limit = self._row_params

        def insert(target: str, rows: Sequence[tuple[Any, ...]], suffix: str = "") -> None:
            if not rows:
                return
            row_marks = "(" + ", ".join([mark] * len(rows[0])) + ")"
            per = max(1, min(ROWS_PER_INSERT, limit // len(rows[0])))
            for i in range(0, len(rows), per):
                chunk = rows[i:i + per]
                conn.exec_driver_sql(
                    f"INSERT INTO {target} VALUES {', '.join([row_marks] * len(chunk))}{suffix}",
                    tuple(chain.from_iterable(chunk)))

        return insert

    def add_checkpoint_signature(self, height: int, block_hash: bytes,
                                 sig: CheckpointSignature) -> None:
        with self.session() as s:
            if s.get(CheckpointSigRow, (height, sig.org)) is None:
                s.add(CheckpointSigRow(height=height, org=sig.org, block_hash=block_hash.hex(),
                                       key_id=sig.key_id, signature=sig.signature.hex()))
                s.commit()

    def reset_derived(self) -> None:
        """Drop derived state (for a rebuild from the chain)."""
        with self._write_lock, self.engine.begin() as conn:
            for name in DERIVED_TABLES:
                conn.execute(text(f"DELETE FROM {name}"))

    def validator_changes(self, below: int | None = None) -> list[tuple[int, bytes]]:
        """(height, canonical sorted changes) of each block that changed the validator set."""
        table = ValidatorChangeRow.__table__  # type: ignore[attr-defined]
        query = select(table.c.height, table.c.changes).order_by(table.c.height)
        if below is not None:
            query = query.where(table.c.height < below)
        with self.engine.connect() as conn:
            return [(int(h), bytes(c)) for h, c in conn.execute(query)]

    def write_derived(self, state: Mapping[str, bytes], heights: Mapping[str, int],
                      parties: Sequence[tuple[int, str]],
                      validator_changes: Mapping[int, bytes] | None = None) -> None:
        with self._write_lock, self.engine.begin() as conn:
            for height, change in sorted((validator_changes or {}).items()):
                conn.execute(ValidatorChangeRow.__table__.insert(),  # type: ignore[attr-defined]
                             [{"height": height, "changes": change}])
            rows = [{"key": k, "value": v, "height": heights.get(k, 0)} for k, v in state.items()]
            for i in range(0, len(rows), 5000):
                conn.execute(StateRow.__table__.insert(), rows[i:i + 5000])  # type: ignore[attr-defined]
            party_rows = [{"seq": seq, "org": org} for seq, org in parties]
            for i in range(0, len(party_rows), 5000):
                conn.execute(TxPartyRow.__table__.insert(),  # type: ignore[attr-defined]
                             party_rows[i:i + 5000])


def _genesis_nodes(genesis: Genesis) -> list[tuple[int, int, bytes]]:
    from ledger import merkle

    return [(0, 0, merkle.leaf_hash(genesis.tx.leaf_bytes()))]


# Merkle nodes the orderer keeps in memory (StoreNodes): a few blocks' worth.
NODE_CACHE_MAX = 65_536


class StoreNodes:
    """The Merkle node store over the database, buffering writes until commit."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: dict[tuple[int, int], bytes] = {}
        self._cache: dict[tuple[int, int], bytes] = {}
        self._cache_max = NODE_CACHE_MAX

    def get(self, level: int, index: int) -> bytes:
        key = (level, index)
        found = self._pending.get(key) or self._cache.get(key)
        if found is not None:
            return found
        value = self._store.merkle_get(level, index)
        if len(self._cache) >= self._cache_max:
            self._cache.clear()
        self._cache[key] = value
        return value

    def put_many(self, items: Iterable[tuple[int, int, bytes]]) -> None:
        for level, index, value in items:
            self._pending[(level, index)] = value

    def take_pending(self) -> list[tuple[int, int, bytes]]:
        items = [(lv, ix, h) for (lv, ix), h in self._pending.items()]
        # The next appends read the right edge of the tree, which the newest
        # nodes hold; older entries go rather than grow the cache with the log.
        if len(self._cache) + len(self._pending) > self._cache_max:
            self._cache.clear()
        self._cache.update(self._pending)
        self._pending.clear()
        return items

    def discard_pending(self) -> None:
        self._pending.clear()
