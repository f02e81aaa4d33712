"""The node: intake of transactions, solo ordering, statuses and proof bundles.

Intake runs the checks that need no ordering (format, payload model, time
window, nonce, signatures against committed keys) so that a bad transaction
gets its 4xx at once. The orderer then executes each block through the
contracts (ledger.executor): ordering fixes the sequence, the contracts
decide validity (ARCHITECTURE decision 5).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from ledger import merkle
from ledger.block import (
    BlockHeader,
    Certificate,
    CheckpointSignature,
    FinalityResult,
    ValidatorSet,
    finality_result,
    sign_checkpoint,
)
from ledger.chain import Genesis, build_block
from ledger.contracts import PUBLIC_PARTY, REGISTRY, Keys, parse_payload
from ledger.contracts.membership import VALIDATORS, validator_set
from ledger.contracts.trade import CONFIDENTIAL_TYPES
from ledger.encoding import canonical, loads, loads_trusted
from ledger.errors import (
    Conflict,
    LedgerError,
    MalformedRecord,
    NotFound,
    Rejected,
    VerificationError,
)
from ledger.executor import GENESIS_TYPE, MAX_CLOCK_SKEW, VerifiedSignatures
from ledger.keys import Domain, EncryptionKey, SigningKey, is_valid, verify
from ledger.state import CachedState, MemoryState, StateReader
from ledger.store import Store, StoredTx, StoreNodes
from ledger.timefmt import format_time, parse_time
from ledger.tx import SignedTx
from node.confidential import ConfidentialChecker

log = logging.getLogger("tradeledger.node")
T = TypeVar("T")

BUNDLE_VERSION = "tradeledger-proof/1"
# GIL switch interval while the orderer runs (seconds).
SWITCH_INTERVAL = 0.0005
# Batches with at least this many signatures are verified in a worker process.
PARALLEL_VERIFY_MIN = 64
# Batch request bodies of at least this many bytes are parsed in the worker
# process too (parse_batch): about 30 us of CPU per transaction that the node
# process, bound by one interpreter lock, no longer spends.
PARALLEL_PARSE_BYTES = 32 * 1024
# A batch waits at most this long (seconds) for the queue to fall below the
# high-water mark before it is taken in anyway (submit_body_async).
INTAKE_WAIT = 10.0
# Seconds between the checkpointer thread's copies of SQLite's write-ahead log
# into the database file, while blocks are being committed (Store.checkpoint).
# Each copy writes a page once however many blocks rewrote it since the last.
CHECKPOINT_INTERVAL = 1.0
# Bytes the pipes to and from the signature worker hold (see enlarge_pipes).
WORKER_PIPE_BYTES = 1 << 20
# Cyclic garbage collector thresholds while the node runs (see tune_gc).
GC_THRESHOLDS = (200_000, 20, 100)


def tune_gc() -> None:
    """Make the cyclic garbage collector run rarely in the node process.

    Intake and ordering allocate many small containers (wire dicts, payload
    models, overlays) that live until their block commits. Under the default
    thresholds (700, 10, 10) the collector ran about once per 20 transactions
    and rescanned every queued one: some 35 us of CPU per transaction on the
    batch path, ~18 % of the node's work. Reference counting frees nearly all
    of these objects, and cycles are rare: in process, 0.09 tracked objects per
    transaction outlive their block. What fills the youngest generation is the
    queue itself, so it is collected only past 200,000 live young objects, far
    more than a full queue holds. At 50,000, a queue in full flow reached the
    threshold every 6,000 transactions or so, and each collection scanned it for
    35 ms: 6 us per transaction, gone at 200,000 with the same peak memory
    (bench/node.py batch run, 62,000 transactions). Objects alive at start-up
    (modules, genesis, caches) are frozen out of the scans.
    """
    if gc.get_threshold()[0] < GC_THRESHOLDS[0]:
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)


def enlarge_pipes(pool: ProcessPoolExecutor, size: int = WORKER_PIPE_BYTES) -> int:
    """Give the pipes between this process and ``pool``'s worker ``size`` bytes
    each, or as much as the system allows (Linux ``F_SETPIPE_SZ``); returns the
    smallest capacity they have, 0 where it cannot be read.

    A batch travels to the worker as its request body (some 300 KB for 500
    transactions) and comes back parsed (some 500 KB). Through the default
    64 KiB pipe each chunk is a system call on either side, and in this process
    each one waits for the interpreter lock, which the orderer holds: the
    worker sat idle for 7 ms between batches of 45 ms, against 4 ms with
    pipes that hold a whole batch. The queues are the executor's own
    (``_call_queue``, ``_result_queue``); where they are not found, or on
    another system, the pipes keep their size.
    """
    set_size, get_size = getattr(fcntl, "F_SETPIPE_SZ", None), getattr(fcntl, "F_GETPIPE_SZ", None)
    if set_size is None or get_size is None:  # pragma: no cover - not on Linux
        return 0
    try:
        limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    except (OSError, ValueError):
        limit = size
    ends = [getattr(getattr(pool, name, None), end, None)
            for name in ("_call_queue", "_result_queue") for end in ("_reader", "_writer")]
    sizes: list[int] = []
    for conn in ends:
        try:
            fd = conn.fileno()  # type: ignore[union-attr]
            with contextlib.suppress(OSError):  # over the user's pipe quota: keep it
                fcntl.fcntl(fd, set_size, min(size, limit))
            sizes.append(fcntl.fcntl(fd, get_size))
        except (AttributeError, OSError):
            return 0
    return min(sizes)


def verify_all(jobs: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    """Check (public key, tx_id, signature) triples; runs in a worker process."""
    return [is_valid(public, Domain.TX, tx_id, sig) for public, tx_id, sig in jobs]


def batch_items(wire: object, max_batch: int) -> list[object]:
    """The transactions of a batch request body ``{"transactions": [...]}``."""
    if not isinstance(wire, dict) or set(wire) != {"transactions"}:
        raise MalformedRecord('body must be {"transactions": [...]}', field="transactions",
                              rule="required")
    txs = wire["transactions"]
    if not isinstance(txs, list) or not txs:
        raise MalformedRecord("must be a non-empty list", field="transactions", rule="list")
    if len(txs) > max_batch:
        raise MalformedRecord(f"at most {max_batch} transactions per batch",
                              field="transactions", rule="max_items")
    return txs


def refusal(i: int, exc: LedgerError) -> dict[str, Any]:
    """The result of batch item ``i`` refused by ``exc``."""
    problem = exc.to_problem()
    if isinstance(exc, MalformedRecord):
        problem["field"] = f"transactions[{i}].{exc.field}".rstrip(".")
    return {"status": "refused", **problem}


# A worker's verdicts on one transaction's signatures, aligned with them; None
# where it does not know the key.
Verdicts = tuple[bool | None, ...]
# Public keys by key id, in the worker process: the node hands over each key it
# has had to check there once, and from then on the worker checks a batch's
# signatures while it parses the batch, which saves the batch a second round
# trip. A key id is the hash of its public key, so an entry never goes stale;
# the node still checks each key's status, and a worker that lacks a key (a new
# key, or a restarted worker) only sends that signature back the slow way.
_WORKER_KEYS: dict[str, bytes] = {}


def parse_batch(body: bytes, max_batch: int, keys: Mapping[str, bytes] | None = None
                ) -> tuple[list[SignedTx | dict[str, Any]], list[Verdicts]] | None:
    """Parse a batch request body and check the signatures it can; runs in a
    worker process.

    Each item becomes its :class:`SignedTx` or its refusal, with the verdict on
    each of its signatures (aligned with them): ``None`` where the worker does not
    know the key. ``keys`` (key id to public key) are added to those it knows.
    ``None`` when the body itself is malformed: the caller parses it again to
    raise that error (errors do not cross the process boundary).
    """
    if keys:
        _WORKER_KEYS.update(keys)
    try:
        wires = batch_items(loads(body), max_batch)
    except LedgerError:
        return None
    items = parse_items(wires)
    return items, [_check_known(item) for item in items]


def _check_known(item: SignedTx | dict[str, Any]) -> Verdicts:
    if not isinstance(item, SignedTx):
        return ()
    out: list[bool | None] = []
    for sig in item.signatures:
        public = _WORKER_KEYS.get(sig.key_id)
        out.append(None if public is None
                   else is_valid(public, Domain.TX, item.tx_id, sig.signature))
    return tuple(out)


def parse_items(wires: Sequence[object]) -> list[SignedTx | dict[str, Any]]:
    """Each batch item as its :class:`SignedTx`, or its refusal."""
    out: list[SignedTx | dict[str, Any]] = []
    for i, wire in enumerate(wires):
        try:
            out.append(SignedTx.from_wire(wire).precompute())
        except LedgerError as exc:
            out.append(refusal(i, exc))
    return out


class CommitSignal:
    """Wakes coroutines waiting on a transaction, on whatever event loop they
    wait, when the orderer has finished the block that took it (its status,
    committed or rejected, is then readable).

    A waiter registers *before* it reads the status it waits on, so a block
    finished between the read and the wait still wakes it. Only the waiters on
    a block's own transactions are woken: many long polls cost a block nothing
    but their own answers.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[bytes, dict[asyncio.Event, asyncio.AbstractEventLoop]] = {}

    def waiter(self, tx_id: bytes) -> asyncio.Event:
        event = asyncio.Event()
        with self._lock:
            self._waiters.setdefault(tx_id, {})[event] = asyncio.get_running_loop()
        return event

    def discard(self, tx_id: bytes, event: asyncio.Event) -> None:
        with self._lock:
            group = self._waiters.get(tx_id)
            if group is not None:
                group.pop(event, None)
                if not group:
                    del self._waiters[tx_id]

    def fire(self, tx_ids: Iterable[bytes] | None = None) -> None:
        """Wake the waiters on ``tx_ids``; on every transaction when None."""
        with self._lock:
            if tx_ids is None:
                woken = list(self._waiters.values())
                self._waiters = {}
            else:
                woken = [g for t in tx_ids if (g := self._waiters.pop(t, None)) is not None]
        for group in woken:
            for event, loop in group.items():
                # A closed loop raises RuntimeError: nobody is waiting there.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(event.set)


@dataclass
class StageCpu:
    """CPU seconds this node's threads spent per stage (``time.thread_time``).

    ``intake`` covers parsing and checking submitted transactions (not the
    signature checks a worker process makes), ``execute`` the contracts, the
    Merkle log and the header, ``commit`` the database write and the
    checkpoint. Benchmarks divide them by the transaction counts.
    """

    intake: float = 0.0
    intake_txs: int = 0
    execute: float = 0.0
    commit: float = 0.0
    ordered_txs: int = 0
    blocks: int = 0


@dataclass(frozen=True)
class TxStatus:
    tx_id: str
    status: str  # pending | committed | rejected
    height: int | None = None
    seq: int | None = None
    code: str | None = None
    message: str | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tx_id": self.tx_id, "status": self.status}
        if self.status == "committed":
            out.update(height=self.height, seq=self.seq)
        if self.status == "rejected":
            out.update(code=self.code, message=self.message)
        return out


@dataclass
class _Intake:
    """A batch between its prechecks and its signature verdicts."""

    results: list[dict[str, Any] | None]
    # (item index, transaction, signatures to check as (public key, key id,
    # signature), verdicts known already (aligned with them; None: still to
    # check), validated payload, organisations of the signer keys found)
    checked: list[tuple[int, SignedTx, list[tuple[bytes, str, bytes]], list[bool | None],
                        object, list[str]]] = field(default_factory=list)
    jobs: list[tuple[bytes, bytes, bytes]] = field(default_factory=list)

    def refuse(self, i: int, exc: LedgerError) -> None:
        self.results[i] = refusal(i, exc)


class Clock:
    """Wall-clock time for the node edge (the core never reads a clock)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class LedgerNode:
    """One node's ledger: its store, its genesis, its node key and its orderer."""

    def __init__(
        self,
        store: Store,
        genesis: Genesis,
        *,
        node_key: SigningKey,
        node_org: str,
        block_max_txs: int = 2000,
        block_interval: float = 0.05,
        max_pending: int = 50_000,
        intake_high_water: int | None = None,
        clock: Clock | None = None,
        encryption_key: EncryptionKey | None = None,
    ) -> None:
        """``encryption_key`` is the node organisation's X25519 secret; with it the
        node checks the sealed details addressed to its organisation."""
        self.store = store
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.node_key = node_key
        self.node_org = node_org
        self.block_max_txs = block_max_txs
        self.block_interval = block_interval
        self.max_pending = max_pending
        # Queue depth above which batch intake waits: one block's worth keeps
        # the orderer busy while intake refills it.
        self.intake_high_water = intake_high_water or block_max_txs
        self.clock = clock or Clock()
        self._lock = threading.Condition()
        self._pending: OrderedDict[bytes, SignedTx] = OrderedDict()
        self._pending_nonces: set[tuple[str, str]] = set()
        # Transactions taken for the block being cut: still "pending" to callers.
        self._inflight: set[bytes] = set()
        # Who may see a queued transaction's status: its signers' organisations,
        # or everyone when the type is public (PUBLIC_PARTY).
        self._readers: dict[bytes, frozenset[str]] = {}
        # One frozenset per combination of signer organisations (and public or
        # not), shared by every queued transaction with that combination.
        self._reader_sets: dict[tuple[object, ...], frozenset[str]] = {}
        self._verified = VerifiedSignatures()
        self._stop = threading.Event()
        self._commits = CommitSignal()
        self._pool: ProcessPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._checkpointer: threading.Thread | None = None
        self._checkpoint_due = threading.Event()
        self._nodes = StoreNodes(store)
        self._state = CachedState(store)
        self._key_records: dict[bytes, tuple[str, bytes, str, str | None]] = {}
        # Keys to hand to the worker with the next batch it parses (parse_batch).
        self._keys_for_worker: dict[str, bytes] = {}
        self.cpu = StageCpu()
        # Odd while a block's state and head are being committed (a seqlock):
        # :meth:`read_at_head` retries a read that overlapped a commit.
        self._commit_seq = 0
        self.head: BlockHeader
        self.confidential: ConfidentialChecker | None = None
        self._open()
        if encryption_key is not None:
            self.confidential = ConfidentialChecker(store, node_org, encryption_key)
            self.confidential.catch_up(now=self.clock.now())

    # -- start-up -----------------------------------------------------------

    def _open(self) -> None:
        self.store.create()
        head = self.store.head()
        if head is None:
            self.store.commit_genesis(self.genesis)
            head = self.genesis.header
        elif self.store.header(0) != self.genesis.header:
            raise Conflict("the database holds a different chain than this genesis file",
                           code="wrong_genesis")
        self.head = head
        self._tree = merkle.MerkleTree(self._nodes, head.log_size)
        record = self.store.get(Keys.key(self.node_key.key_id))
        if record is None or record["kind"] != "node" or record["org"] != self.node_org:
            raise Conflict(f"key {self.node_key.key_id} is not a node key of {self.node_org}",
                           code="not_a_node_key")

    def start(self) -> None:
        # The orderer thread is CPU-bound; with the default 5 ms GIL switch
        # interval every request the event loop serves meanwhile waits up to
        # 5 ms at each step. A shorter interval keeps intake responsive.
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
        tune_gc()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="orderer", daemon=True)
            self._thread.start()
        if self._checkpointer is None and self.store.checkpoints:
            self._checkpointer = threading.Thread(target=self._checkpoints, name="checkpointer",
                                                  daemon=True)
            self._checkpointer.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        self._commits.fire()  # long polls answer now rather than at their timeout
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._checkpoint_due.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=10)
            self._checkpointer = None
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    # -- intake -------------------------------------------------------------

    def submit(self, wire: object) -> TxStatus:
        """Check and queue one transaction; returns its status (idempotent)."""
        tx = SignedTx.from_wire(wire)
        known = self._known(tx)
        if known is not None:
            return known
        todo, payload, orgs = self._precheck(tx, self.clock.now())
        for public, _kid, signature in todo:
            verify(public, Domain.TX, tx.tx_id, signature)
        tx.precompute()
        return self._enqueue(tx, [kid for _p, kid, _s in todo], payload, orgs)

    def _known(self, tx: SignedTx) -> TxStatus | None:
        """The status of a transaction seen before, or None for a new one."""
        known = self._known_many([tx])[0]
        if isinstance(known, LedgerError):
            raise known
        return known

    def _known_many(self, txs: Sequence[SignedTx]) -> list[TxStatus | LedgerError | None]:
        """For each of ``txs``: its status if seen before, the error that refuses
        it (a reused nonce), or None for a new one. State and receipts are read
        in one query each for the whole list."""
        out: list[TxStatus | LedgerError | None] = [None] * len(txs)
        with self._lock:
            for i, tx in enumerate(txs):
                if tx.tx_id in self._pending or tx.tx_id in self._inflight:
                    out[i] = TxStatus(tx.tx_id_hex, "pending")
        fresh = [i for i, known in enumerate(out) if known is None]
        nonce_keys = {i: Keys.nonce(txs[i].body.author, txs[i].body.nonce) for i in fresh}
        used = self._state.get_many(nonce_keys.values())
        unseen: list[int] = []
        for i in fresh:
            tx = txs[i]
            if used[nonce_keys[i]] is None:
                unseen.append(i)
                continue
            # A committed transaction has used its nonce; only then can it be known.
            location = self.store.tx_location(tx.tx_id_hex)
            if location is not None:
                out[i] = TxStatus(tx.tx_id_hex, "committed", seq=location[0],
                                  height=location[1])
            else:
                out[i] = Conflict(f"nonce {tx.body.nonce!r} was used before by this author",
                                  code="nonce_reused")
        receipts = self.store.receipts_of([txs[i].tx_id_hex for i in unseen])
        for i in unseen:
            receipt = receipts.get(txs[i].tx_id_hex)
            if receipt is not None:
                out[i] = TxStatus(txs[i].tx_id_hex, "rejected", code=receipt[0],
                                  message=receipt[1])
        return out

    def _enqueue(self, tx: SignedTx, verified_keys: Sequence[str], payload: object,
                 orgs: Sequence[str]) -> TxStatus:
        """Queue ``tx``; ``verified_keys`` are the signers whose signature was checked,
        ``orgs`` the organisations of the signer keys the state knew at the checks.

        Signatures by keys not yet enrolled at intake are left to the executor.
        """
        queued = self._enqueue_many([(tx, verified_keys, payload, orgs)])[0]
        if isinstance(queued, LedgerError):
            raise queued
        return queued

    def _enqueue_many(self, items: Sequence[tuple[SignedTx, Sequence[str], object,
                                                  Sequence[str]]]
                      ) -> list[TxStatus | LedgerError]:
        """:meth:`_enqueue` for each of ``items``, under one hold of the queue's lock
        (and one wake-up of the orderer): each gets its status or the error that
        refused it."""
        readers: list[frozenset[str]] = []
        shared = self._reader_sets
        for tx, _keys, _payload, orgs in items:
            spec = REGISTRY.get(tx.body.type)
            if len(orgs) < len(tx.signatures):  # a signer key unknown at the checks
                orgs = self.signer_orgs(tx)
            public = spec is not None and spec.public
            combination = (public, *orgs)
            who = shared.get(combination)
            if who is None:
                who = frozenset(orgs) | ({PUBLIC_PARTY} if public else set())
                if len(shared) >= 4096:
                    shared.clear()
                shared[combination] = who
            readers.append(who)
        out: list[TxStatus | LedgerError] = []
        with self._lock:
            for (tx, verified_keys, payload, _orgs), who in zip(items, readers, strict=True):
                if tx.tx_id in self._pending or tx.tx_id in self._inflight:
                    out.append(TxStatus(tx.tx_id_hex, "pending"))
                    continue
                nonce = (tx.body.author, tx.body.nonce)
                if nonce in self._pending_nonces:
                    out.append(Conflict(f"nonce {tx.body.nonce!r} is already pending for "
                                        "this author", code="nonce_reused"))
                    continue
                if len(self._pending) >= self.max_pending:
                    out.append(Conflict("the node's queue is full; retry shortly",
                                        code="busy"))
                    continue
                self._pending[tx.tx_id] = tx
                self._readers[tx.tx_id] = who
                self._pending_nonces.add(nonce)
                for kid in verified_keys:
                    self._verified.pairs.add((tx.tx_id, kid))
                self._verified.payloads[tx.tx_id] = payload
                out.append(TxStatus(tx.tx_id_hex, "pending"))
            self._lock.notify()
        return out

    def submit_many(self, wires: Sequence[object]) -> list[dict[str, Any]]:
        """Submit a batch; each item gets its own status or error.

        Signatures of a large batch are verified in a worker process while
        this process goes on parsing and ordering (specs/api.md#batches).
        """
        intake = self._intake_start(wires)
        if len(intake.jobs) >= PARALLEL_VERIFY_MIN:
            verdicts = self._verifier().submit(verify_all, intake.jobs).result()
        else:
            verdicts = verify_all(intake.jobs)
        return self._intake_finish(intake, verdicts)

    async def submit_body_async(self, body: bytes, max_batch: int) -> list[dict[str, Any]]:
        """:meth:`submit_many` for a batch request body (``{"transactions": [...]}``,
        at most ``max_batch``) on the event loop: it serves other requests (and
        parses the next batch) while the worker process checks signatures.

        A large body is parsed in the worker process too; each item's result,
        and the error of a malformed body, are those of parsing it here.

        While the orderer runs and a block's worth of transactions is already
        queued, a batch waits (up to ``INTAKE_WAIT`` seconds) before it is
        taken in: queueing more would not commit anything sooner, only make
        every later transaction wait longer for its commit.
        """
        await self._intake_wait()
        if len(body) < PARALLEL_PARSE_BYTES:
            return await self._verify_and_queue(
                self._intake_start(batch_items(loads(body), max_batch)))
        keys, self._keys_for_worker = self._keys_for_worker, {}
        parsed = await asyncio.wrap_future(
            self._verifier().submit(parse_batch, body, max_batch, keys))
        if parsed is None:  # the body is malformed: raise its error
            batch_items(loads(body), max_batch)
            raise AssertionError("parse_batch refused a body that parses here")
        items, verdicts = parsed
        return await self._verify_and_queue(self._intake_parsed(items, verdicts))

    async def _intake_wait(self) -> None:
        deadline = time.monotonic() + INTAKE_WAIT
        while (self._thread is not None and len(self._pending) >= self.intake_high_water
               and time.monotonic() < deadline):
            await asyncio.sleep(0.005)

    async def _verify_and_queue(self, intake: _Intake) -> list[dict[str, Any]]:
        if len(intake.jobs) >= PARALLEL_VERIFY_MIN:
            verdicts = await asyncio.wrap_future(self._verifier().submit(verify_all, intake.jobs))
        else:
            verdicts = verify_all(intake.jobs)
        return self._intake_finish(intake, verdicts)

    def _intake_start(self, wires: Sequence[object]) -> _Intake:
        """Parse and precheck a batch; collect the signatures left to verify."""
        started = time.thread_time()
        items = parse_items(wires)
        self.cpu.intake += time.thread_time() - started
        return self._intake_parsed(items)

    def _intake_parsed(self, items: Sequence[SignedTx | dict[str, Any]],
                       verdicts: Sequence[Verdicts] | None = None) -> _Intake:
        """Precheck a parsed batch (each item a transaction or its refusal); collect
        the signatures left to verify. ``verdicts`` are the worker's on each item's
        signatures (see :func:`parse_batch`), used for the keys the checks find
        active."""
        started = time.thread_time()
        intake = _Intake([None] * len(items))
        parsed: list[tuple[int, SignedTx]] = []
        for i, item in enumerate(items):
            if isinstance(item, SignedTx):
                parsed.append((i, item))
            else:
                intake.results[i] = item
        now = self.clock.now()
        for (i, tx), known in zip(parsed, self._known_many([tx for _i, tx in parsed]),
                                  strict=True):
            if isinstance(known, LedgerError):
                intake.refuse(i, known)
            elif known is not None:
                intake.results[i] = known.to_wire()
            else:
                try:
                    todo, payload, orgs = self._precheck(tx, now)
                except LedgerError as exc:
                    intake.refuse(i, exc)
                    continue
                given: list[bool | None] = [None] * len(todo)
                if verdicts is not None and todo:
                    if len(todo) == len(tx.signatures):  # every key found: aligned
                        given = list(verdicts[i])
                    else:
                        by_key = dict(zip((s.key_id for s in tx.signatures), verdicts[i],
                                          strict=True))
                        given = [by_key[kid] for _p, kid, _s in todo]
                for (public, kid, sig), verdict in zip(todo, given, strict=True):
                    if verdict is None:
                        intake.jobs.append((public, tx.tx_id, sig))
                        if verdicts is not None:  # the worker lacks this key
                            self._keys_for_worker[kid] = public
                intake.checked.append((i, tx, todo, given, payload, orgs))
        self.cpu.intake += time.thread_time() - started
        return intake

    def _intake_finish(self, intake: _Intake, verdicts: Sequence[bool]) -> list[dict[str, Any]]:
        """Queue the batch's transactions whose signatures verified."""
        started = time.thread_time()
        answers = iter(verdicts)
        verified: list[int] = []
        items: list[tuple[SignedTx, Sequence[str], object, Sequence[str]]] = []
        for i, tx, todo, given, payload, orgs in intake.checked:
            ok = [next(answers) if verdict is None else verdict for verdict in given]
            if all(ok):
                verified.append(i)
                items.append((tx, [kid for _p, kid, _s in todo], payload, orgs))
            else:
                intake.refuse(i, VerificationError(
                    f"transaction signature by key {todo[ok.index(False)][1]} does not verify",
                    code="bad_signature"))
        for i, queued in zip(verified, self._enqueue_many(items), strict=True):
            if isinstance(queued, LedgerError):
                intake.refuse(i, queued)
            else:
                intake.results[i] = queued.to_wire()
        self.cpu.intake += time.thread_time() - started
        self.cpu.intake_txs += len(intake.results)
        return [r for r in intake.results if r is not None]

    def _verifier(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1)
            enlarge_pipes(self._pool)
        return self._pool

    def _precheck(self, tx: SignedTx, now: datetime
                  ) -> tuple[list[tuple[bytes, str, bytes]], object, list[str]]:
        """Checks that need no ordering, at time ``now``; returns the signatures left
        to verify, the validated payload and the organisations of the signer keys
        the state knows."""
        body = tx.body
        todo: list[tuple[bytes, str, bytes]] = []
        orgs: list[str] = []
        if body.chain_id != self.chain_id:
            raise Rejected("wrong_chain", f"transaction is for chain {body.chain_id!r}, "
                                          f"this node serves {self.chain_id!r}")
        spec = REGISTRY.get(body.type)
        if spec is None or body.type == GENESIS_TYPE:
            raise MalformedRecord(f"unknown transaction type {body.type!r}", field="body.type",
                                  rule="known_type")
        payload = parse_payload(spec.payload, body.payload, path="body.payload")
        if now > body.expires_at:
            raise Rejected("expired", f"expired at {format_time(body.expires_at)}")
        if body.created_at - MAX_CLOCK_SKEW > now:
            raise Rejected("from_the_future",
                           "created_at is more than 5 minutes ahead of the node's clock")
        for i, sig in enumerate(tx.signatures):
            raw = self._state.get_raw(Keys.key(sig.key_id))
            if raw is None:
                # The key may be enrolled by a transaction still pending; the
                # executor decides when the block is cut.
                continue
            status, public, org, valid_until = self._key_record(raw)
            if status != "active":
                raise Rejected("key_revoked", f"signatures[{i}]: key {sig.key_id} is {status}")
            if valid_until is not None and now > parse_time(valid_until, field="valid_until"):
                raise Rejected("key_rotated", f"signatures[{i}]: key {sig.key_id} was rotated; "
                                              f"it signed until {valid_until}")
            todo.append((public, sig.key_id, sig.signature))
            orgs.append(org)
        return todo, payload, orgs

    def _key_record(self, raw: bytes) -> tuple[str, bytes, str, str | None]:
        """(status, public key, organisation, end of a rotation's overlap or None) of a
        stored key record, parsed once per record value."""
        try:
            return self._key_records[raw]
        except KeyError:
            pass
        record = loads_trusted(raw)
        until = record.get("valid_until")
        parsed = (str(record["status"]), bytes.fromhex(record["public_key"]), str(record["org"]),
                  None if until is None else str(until))
        if len(self._key_records) >= 10_000:
            self._key_records.clear()
        self._key_records[raw] = parsed
        return parsed

    # -- ordering -----------------------------------------------------------

    def _checkpoints(self) -> None:
        """Checkpoint the database's write-ahead log at most every
        ``CHECKPOINT_INTERVAL`` seconds while blocks are committed.

        Left to SQLite, the checkpoint runs inside the commit that fills the log:
        about 0.2 s of the orderer's time every few blocks under load. Here it
        runs beside the orderer, mostly outside the interpreter lock, and a
        failed one is only logged: the log waits for the next.
        """
        while not self._stop.is_set():
            self._checkpoint_due.wait()
            if self._stop.is_set():
                return
            self._checkpoint_due.clear()
            try:
                self.store.checkpoint()
            except Exception:
                log.exception("checkpointing the database log failed")
            self._stop.wait(CHECKPOINT_INTERVAL)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if not self._pending:
                    self._lock.wait(timeout=0.5)
                    continue
            # A short window lets a burst fill the block.
            deadline = time.monotonic() + self.block_interval
            while time.monotonic() < deadline and len(self._pending) < self.block_max_txs:
                time.sleep(min(0.005, self.block_interval))
            try:
                self.cut_block()
            except Exception:  # keep ordering alive; the block was not committed
                log.exception("cutting a block failed")
                time.sleep(0.2)

    def cut_block(self) -> BlockHeader | None:
        """Take pending transactions, execute, commit and sign one block."""
        with self._lock:
            batch: list[SignedTx] = []
            while self._pending and len(batch) < self.block_max_txs:
                _, tx = self._pending.popitem(last=False)
                batch.append(tx)
                self._inflight.add(tx.tx_id)
        if not batch:
            return None
        started = time.thread_time()
        try:
            self._prefetch(batch)
            built = build_block(prev=self.head, state=self._state, tree=self._tree, txs=batch,
                                time=self.clock.now(), proposer=self.node_key.key_id,
                                verified=self._verified)
            executed = time.thread_time()
            self.cpu.execute += executed - started
            started = executed
            if built.accepted:
                sig = sign_checkpoint(built.header, self.node_key, self.node_org)
                self._commit_seq += 1
                self.store.commit_block(built, [sig])
        except BaseException:
            if self._commit_seq & 1:
                self._commit_seq += 1
            self._nodes.discard_pending()
            self._tree = merkle.MerkleTree(self._nodes, self.head.log_size)
            with self._lock:  # put the batch back, in order, for the next attempt
                self._inflight.difference_update(t.tx_id for t in batch)
                for tx in reversed(batch):
                    self._pending[tx.tx_id] = tx
                    self._pending.move_to_end(tx.tx_id, last=False)
            raise
        self._nodes.take_pending()
        if built.accepted:
            self._checkpoint_due.set()
            self._state.committed(built.state_writes)
            self.head = built.header
            self._commit_seq += 1
            self._check_confidential(built.header, [a.tx for a in built.accepted])
        when = format_time(self.clock.now())
        self.store.add_receipts((r.tx.tx_id_hex, r.error.code, r.error.message, when,
                                 self.signer_orgs(r.tx)) for r in built.refused)
        ids = [tx.tx_id for tx in batch]
        with self._lock:
            self._inflight.difference_update(ids)
            readers, payloads = self._readers, self._verified.payloads
            for tx_id in ids:
                readers.pop(tx_id, None)
                payloads.pop(tx_id, None)
            self._pending_nonces.difference_update([(tx.body.author, tx.body.nonce)
                                                    for tx in batch])
            self._verified.pairs.difference_update([(tx.tx_id, s.key_id) for tx in batch
                                                    for s in tx.signatures])
        self.cpu.commit += time.thread_time() - started
        self.cpu.ordered_txs += len(batch)
        self.cpu.blocks += 1
        self._commits.fire(ids)
        return built.header if built.accepted else None

    def _prefetch(self, batch: Sequence[SignedTx]) -> None:
        """Read the state keys the block's contracts name (ContractSpec.prefetch) in
        one query per few hundred keys, into the cache the executor reads through.

        One point read per transaction, each releasing the GIL and then waiting
        to win it back from the intake threads, cost the orderer more wall time
        than the rest of the execution. Only payloads intake validated are used.
        """
        keys: list[str] = []
        for tx in batch:
            spec = REGISTRY.get(tx.body.type)
            if spec is None or spec.prefetch is None:
                continue
            payload = self._verified.payloads.get(tx.tx_id)
            if type(payload) is spec.payload:
                keys.extend(spec.prefetch(payload))
        if keys:
            self._state.get_many(keys)

    def _check_confidential(self, header: BlockHeader, txs: Sequence[SignedTx]) -> None:
        """Check the committed block's sealed details for this node's organisation.

        The block is final whatever this finds: a failure here is logged, and
        the next start catches up from the last checked transaction.
        """
        if self.confidential is None:
            return
        first = header.log_size - len(txs)
        # Only the types that can carry sealed details are looked at (check()
        # passes over the others): the rest of a block needs no record built.
        sealed = [StoredTx(first + i, header.height, tx.tx_id_hex, tx.body.type,
                           tx.body.author, tx.body_bytes, tx.signatures)
                  for i, tx in enumerate(txs) if tx.body.type in CONFIDENTIAL_TYPES]
        if not sealed:
            return
        try:
            self.confidential.check(sealed, now=self.clock.now())
        except Exception:
            log.exception("checking sealed details of block %d failed", header.height)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued transaction's block is finished (tests and the demo
        use it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending and not self._inflight:
                    return
            if self._thread is None:
                self.cut_block()
            else:
                time.sleep(0.01)
        raise TimeoutError("pending transactions were not ordered in time")

    # -- reads --------------------------------------------------------------
    #
    # Need-to-know (specs/read-policy.md): a member reads a committed record
    # when its organisation is one of the record's parties or the record is
    # public; a pending transaction's status when its organisation signed it
    # or its type is public; a refused one's only when its organisation signed
    # it. Anything else is answered as unknown, so that a record's existence
    # does not leak.

    def state_raw(self, key: str) -> bytes | None:
        """Committed state, through the orderer's cache."""
        return self._state.get_raw(key)

    def signer_orgs(self, tx: SignedTx) -> list[str]:
        """The organisations whose keys signed ``tx``, as far as the state knows them."""
        orgs = []
        for sig in tx.signatures:
            raw = self._state.get_raw(Keys.key(sig.key_id))
            if raw is not None:
                orgs.append(self._key_record(raw)[2])
        return orgs

    def status_for(self, org: str, tx_id: str) -> TxStatus:
        """``tx_id``'s status as ``org`` may see it; unknown to it otherwise."""
        unknown = NotFound(f"no transaction {tx_id} is known to this node", code="unknown_tx")
        status = self.status(tx_id)
        assert status is not None
        if status.status == "committed":
            assert status.seq is not None
            if not self.store.readable(org, [status.seq]):
                raise unknown
        elif status.status == "pending":
            with self._lock:
                readers = self._readers.get(bytes.fromhex(tx_id))
            if readers is None:  # committed or refused since the first read
                return self.status_for(org, tx_id)
            if org not in readers and PUBLIC_PARTY not in readers:
                raise unknown
        elif org not in self.store.receipt_orgs(tx_id):
            raise unknown
        return status

    async def wait_status(self, org: str, tx_id: str, wait: float) -> TxStatus:
        """:meth:`status_for`, once the transaction is no longer pending or after
        ``wait`` seconds, whichever comes first (a long poll): the caller learns
        of the commit as soon as its block is finished, with one request."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        raw_id = bytes.fromhex(tx_id)
        while True:
            event = self._commits.waiter(raw_id)
            try:
                status = self.status_for(org, tx_id)
                remaining = deadline - loop.time()
                if status.status != "pending" or remaining <= 0 or self._stop.is_set():
                    return status
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
            finally:
                self._commits.discard(raw_id, event)

    def readable_txs(self, org: str, txs: Sequence[StoredTx]) -> list[StoredTx]:
        """The subset of ``txs`` that ``org`` may read, in order."""
        allowed = self.store.readable(org, [t.seq for t in txs])
        return [t for t in txs if t.seq in allowed]

    def readable_tx(self, org: str, tx_id: str) -> StoredTx:
        """The committed transaction, if ``org`` may read it; unknown otherwise."""
        stored = self.store.tx_by_id(tx_id)
        if stored is None or not self.store.readable(org, [stored.seq]):
            raise NotFound(f"transaction {tx_id} is not committed", code="unknown_tx")
        return stored

    def status(self, tx_id: str, *, missing_ok: bool = False) -> TxStatus | None:
        location = self.store.tx_location(tx_id)
        if location is not None:
            return TxStatus(tx_id, "committed", seq=location[0], height=location[1])
        try:
            raw_id = bytes.fromhex(tx_id)
        except ValueError:
            raw_id = b""
        with self._lock:
            if raw_id in self._pending or raw_id in self._inflight:
                return TxStatus(tx_id, "pending")
        # The block may have committed between the two reads above.
        location = self.store.tx_location(tx_id)
        if location is not None:
            return TxStatus(tx_id, "committed", seq=location[0], height=location[1])
        receipt = self.store.receipt_of(tx_id)
        if receipt is not None:
            return TxStatus(tx_id, "rejected", code=receipt[0], message=receipt[1])
        if missing_ok:
            return None
        raise NotFound(f"no transaction {tx_id} is known to this node", code="unknown_tx")

    def read_at_head(self, read: Callable[[StateReader, BlockHeader], T]) -> T:
        """``read(state, head)`` over the state of exactly ``head``.

        A read that overlapped a block commit (the state may already hold the
        next block while ``head`` does not) is retried; reads never block the
        orderer. Errors of a clean read are raised as they are.
        """
        for _attempt in range(200):
            seq = self._commit_seq
            if seq & 1:
                time.sleep(0.001)
                continue
            head = self.head
            try:
                out = read(self._state, head)
            except LedgerError:
                if self._commit_seq != seq:
                    continue
                raise
            if self._commit_seq == seq:
                return out
        raise Conflict("the node is committing blocks faster than this read completes; "
                       "retry", code="busy")

    def certified_head(self) -> tuple[BlockHeader, Certificate]:
        head = self.head
        cert = self.store.certificate(head.height)
        if cert is None:  # genesis: the trust anchor needs no certificate
            cert = Certificate(head.height, head.hash, ())
        return head, cert

    def validator_set_at(self, height: int) -> ValidatorSet:
        """The validator set that certifies block ``height``: the genesis set, or the
        ``validators`` record of the last change below ``height``."""
        changes = self.store.validator_changes(below=height)
        if not changes:
            return validator_set(MemoryState({k: v for k, v in self.genesis.state_writes.items()
                                              if v is not None}))
        written = dict(loads_trusted(changes[-1][1]))
        return validator_set(MemoryState({VALIDATORS: canonical(written[VALIDATORS])}))

    def add_checkpoint(self, height: int, sig: CheckpointSignature) -> FinalityResult:
        """Record another validator's checkpoint on block ``height`` if it counts under
        the validator set in force there; return the block's finality."""
        header = self.store.header(height)
        if header is None:
            raise NotFound(f"no block at height {height}", code="unknown_block")
        validators = self.validator_set_at(height)
        single = finality_result(header, Certificate(height, header.hash, (sig,)),
                                 ValidatorSet(validators.node_keys, 1))
        if not single.signed:
            raise VerificationError(
                f"checkpoint by {sig.org} key {sig.key_id} does not count at height {height}: "
                "not a node key of a validator in force there, or a bad signature",
                code="not_a_validator")
        self.store.add_checkpoint_signature(height, header.hash, sig)
        cert = self.store.certificate(height)
        assert cert is not None
        return finality_result(header, cert, validators)

    def validator_changes(self, height: int) -> list[dict[str, Any]]:
        """The chain of validator-set changes below ``height``, for offline verifiers
        (specs/protocol.md#validator-set-changes): each block's header, certificate,
        previous header and every state change, values as canonical JSON text."""
        chain: list[dict[str, Any]] = []
        for h, blob in self.store.validator_changes(below=height):
            header, prev = self.store.header(h), self.store.header(h - 1)
            assert header is not None and prev is not None
            cert = self.store.certificate(h) or Certificate(h, header.hash, ())
            changes = [[key, None if value is None else canonical(value).decode("utf-8")]
                       for key, value in loads_trusted(blob)]
            chain.append({"header": header.to_wire(), "certificate": cert.to_wire(),
                          "prev_header": prev.to_wire(), "changes": changes})
        return chain

    def _with_changes(self, bundle: dict[str, Any], height: int) -> dict[str, Any]:
        changes = self.validator_changes(height)
        if changes:
            bundle["validator_changes"] = changes
        return bundle

    def inclusion_bundle(self, tx_id: str, *, reader: str) -> dict[str, Any]:
        """A self-contained proof that ``tx_id`` is in the certified log.

        Only for an organisation that may read the record; the bundle holds the
        record, the hashes of its Merkle path and the certified header, and
        nothing of any other record.
        """
        return self.inclusion_bundle_of(self.readable_tx(reader, tx_id))

    def inclusion_bundle_of(self, stored: StoredTx) -> dict[str, Any]:
        """The inclusion bundle of a record the caller was already found to may read."""
        head, cert = self.certified_head()
        tree = merkle.MerkleTree(StoreNodes(self.store), head.log_size)
        proof = tree.inclusion_proof(stored.seq, head.log_size)
        return self._with_changes({
            "version": BUNDLE_VERSION,
            "kind": "inclusion",
            "chain_id": self.chain_id,
            "genesis_hash": self.genesis.hash.hex(),
            "tx_id": stored.tx_id,
            "height": stored.height,
            "leaf_index": stored.seq,
            "leaf": stored.leaf_bytes().decode("utf-8"),
            "inclusion_proof": [h.hex() for h in proof],
            "header": head.to_wire(),
            "certificate": cert.to_wire(),
        }, head.height)

    def consistency_bundle(self, old_size: int, new_size: int | None = None) -> dict[str, Any]:
        head, cert = self.certified_head()
        new = head.log_size if new_size is None else new_size
        if not 1 <= old_size <= new <= head.log_size:
            raise MalformedRecord(
                f"need 1 <= old ({old_size}) <= new ({new}) <= log size ({head.log_size})",
                field="old_size", rule="range")
        if new != head.log_size:
            raise MalformedRecord("new must be the certified log size (omit it)",
                                  field="new_size", rule="certified_size")
        tree = merkle.MerkleTree(StoreNodes(self.store), head.log_size)
        return self._with_changes({
            "version": BUNDLE_VERSION,
            "kind": "consistency",
            "chain_id": self.chain_id,
            "genesis_hash": self.genesis.hash.hex(),
            "old_size": old_size,
            "old_root": tree.root(old_size).hex(),
            "new_size": new,
            "consistency_proof": [h.hex() for h in tree.consistency_proof(old_size, new)],
            "header": head.to_wire(),
            "certificate": cert.to_wire(),
        }, head.height)

    def stored_tx(self, tx_id: str) -> StoredTx:
        stored = self.store.tx_by_id(tx_id)
        if stored is None:
            raise NotFound(f"transaction {tx_id} is not committed", code="unknown_tx")
        return stored
