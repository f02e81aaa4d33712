"""Executing transactions and blocks against state (specs/protocol.md#execution).

The steps every node runs, in order, for each transaction of a block:

1. the chain id is this chain's;
2. the block time lies within the transaction's validity window
   (``created_at - MAX_CLOCK_SKEW <= time <= expires_at``), and the type has a
   contract (``membership.genesis`` only at height 0, and only there);
3. the payload validates against the type's model;
4. every signer key is an active, non-node key of an active organisation, not
   past the end of a rotation's overlap window, and its signature verifies (skipped when already verified for this ``tx_id``);
5. the nonce is unused for this author;
6. the author's organisation holds a role allowed to submit the type;
7. the contract applies, then the type's indexers, writing state or rejecting.

For the genesis transaction the contract runs before step 4, since the keys
it checks are the ones the genesis payload brings.

Same blocks in, same state out: nothing here reads a clock or the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ledger.contracts import INDEXERS, PUBLIC_PARTY, REGISTRY, Keys, TxContext, parse_payload
from ledger.contracts.membership import key_usable
from ledger.errors import MalformedRecord, Rejected, VerificationError
from ledger.keys import Domain, verify
from ledger.state import Overlay, StateReader
from ledger.tx import SignedTx

MAX_CLOCK_SKEW = timedelta(minutes=5)
GENESIS_TYPE = "membership.genesis"


@dataclass(frozen=True)
class BlockContext:
    chain_id: str
    height: int
    time: datetime


@dataclass
class VerifiedSignatures:
    """What intake checked already: verified (tx_id, key_id) signature pairs, and
    payloads validated against their model (by tx_id), so execution need not
    repeat the work. Both are only ever filled by this process's own checks."""

    pairs: set[tuple[bytes, str]] = field(default_factory=set)
    payloads: dict[bytes, Any] = field(default_factory=dict)

    def add_tx(self, tx: SignedTx) -> None:
        for sig in tx.signatures:
            self.pairs.add((tx.tx_id, sig.key_id))

    def __contains__(self, item: tuple[bytes, str]) -> bool:
        return item in self.pairs


@dataclass(frozen=True)
class Accepted:
    tx: SignedTx
    parties: frozenset[str]


@dataclass(frozen=True)
class Refused:
    tx: SignedTx
    error: Rejected


@dataclass
class BlockExecution:
    state: Overlay
    accepted: list[Accepted]
    refused: list[Refused]


def apply_tx(
    state: Overlay,
    tx: SignedTx,
    ctx: BlockContext,
    verified: VerifiedSignatures | None = None,
) -> frozenset[str]:
    """Apply one transaction to ``state`` (a fresh child overlay); raise Rejected."""
    body = tx.body
    # Step 1.
    if body.chain_id != ctx.chain_id:
        raise Rejected("wrong_chain", f"transaction is for chain {body.chain_id!r}, "
                                      f"this is {ctx.chain_id!r}")
    # Step 2.
    if ctx.time > body.expires_at:
        raise Rejected("expired", "the transaction expired before it could be ordered")
    if body.created_at - MAX_CLOCK_SKEW > ctx.time:
        raise Rejected("from_the_future", "created_at is more than 5 minutes ahead of the ledger")
    spec = REGISTRY.get(body.type)
    if spec is None:
        raise Rejected("unknown_type", f"no contract handles type {body.type!r}")
    genesis = body.type == GENESIS_TYPE
    if genesis != (ctx.height == 0):
        raise Rejected("genesis_only_at_zero",
                       "membership.genesis is the only transaction of block 0")
    # Step 3.
    payload = verified.payloads.get(tx.tx_id) if verified is not None else None
    if payload is None or type(payload) is not spec.payload:
        try:
            payload = parse_payload(spec.payload, body.payload)
        except MalformedRecord as exc:
            raise Rejected("malformed", exc.message) from exc
    tx_ctx: TxContext
    if genesis:
        tx_ctx = TxContext(state, tx, ctx.height, ctx.time, ctx.chain_id, "", ())
        spec.apply(tx_ctx, payload)
        _check_signers(state, tx, verified, ctx.time)
        author = state.get(Keys.key(body.author))
        tx_ctx.author_org = author["org"]
    else:
        # Step 4.
        signer_orgs = _check_signers(state, tx, verified, ctx.time)
        # Step 5.
        nonce_key = Keys.nonce(body.author, body.nonce)
        if state.exists(nonce_key):
            raise Rejected("nonce_reused", f"nonce {body.nonce!r} was used before by this author")
        state.put(nonce_key, ctx.height)
        # Step 6.
        org = state.view(Keys.org(signer_orgs[0]))
        if "*" not in spec.roles and not spec.roles.intersection(org["roles"]):
            raise Rejected(
                "role_not_allowed",
                f"{body.type} may be submitted by {', '.join(sorted(spec.roles))}; "
                f"{org['id']} holds {', '.join(org['roles'])}",
            )
        # Step 7.
        tx_ctx = TxContext(state, tx, ctx.height, ctx.time, ctx.chain_id, signer_orgs[0],
                           signer_orgs)
        tx_ctx.parties.add(signer_orgs[0])
        spec.apply(tx_ctx, payload)
        for index in INDEXERS.get(body.type, ()):
            index(tx_ctx, payload)
    if spec.public:
        tx_ctx.parties.add(PUBLIC_PARTY)
    return frozenset(tx_ctx.parties)


def _check_signers(
    state: Overlay, tx: SignedTx, verified: VerifiedSignatures | None, at: datetime
) -> tuple[str, ...]:
    orgs: list[str] = []
    for i, sig in enumerate(tx.signatures):
        record: Any = state.view(Keys.key(sig.key_id))
        if record is None:
            raise Rejected("unknown_key", f"signatures[{i}]: key {sig.key_id} is not enrolled")
        if record["status"] != "active":
            raise Rejected("key_revoked", f"signatures[{i}]: key {sig.key_id} is {record['status']}")
        if not key_usable(record, at):
            raise Rejected("key_rotated", f"signatures[{i}]: key {sig.key_id} was rotated to "
                                          f"{record.get('rotated_to')}; it signed until "
                                          f"{record['valid_until']}")
        if record["kind"] == "node":
            raise Rejected("node_key", f"signatures[{i}]: a node key signs checkpoints only")
        org = state.view(Keys.org(record["org"]))
        if org is None or org["status"] != "active":
            raise Rejected("org_inactive", f"signatures[{i}]: organisation {record['org']} "
                                           "is not active")
        if verified is None or (tx.tx_id, sig.key_id) not in verified:
            try:
                verify(bytes.fromhex(record["public_key"]), Domain.TX, tx.tx_id, sig.signature)
            except VerificationError as exc:
                raise Rejected("bad_signature", f"signatures[{i}]: {exc.message}") from exc
        orgs.append(record["org"])
    return tuple(orgs)


def execute_block(
    base: StateReader,
    txs: Iterable[SignedTx],
    ctx: BlockContext,
    *,
    verified: VerifiedSignatures | None = None,
) -> BlockExecution:
    """Apply ``txs`` in order; a refused transaction leaves no trace in the state."""
    block_state = Overlay(base)
    accepted: list[Accepted] = []
    refused: list[Refused] = []
    for tx in txs:
        tx_state = block_state.child()
        try:
            parties = apply_tx(tx_state, tx, ctx, verified)
        except Rejected as exc:
            refused.append(Refused(tx, exc))
            continue
        tx_state.merge_into(block_state)
        accepted.append(Accepted(tx, parties))
    return BlockExecution(block_state, accepted, refused)


def replay_block(
    base: StateReader,
    txs: Sequence[SignedTx],
    ctx: BlockContext,
    *,
    verified: VerifiedSignatures | None = None,
) -> BlockExecution:
    """Re-apply a committed block; any refusal means the block is invalid."""
    result = execute_block(base, txs, ctx, verified=verified)
    if result.refused:
        first = result.refused[0]
        raise VerificationError(
            f"transaction {first.tx.tx_id_hex} is refused on replay: "
            f"{first.error.code}: {first.error.message}",
            code="invalid_block",
        )
    return result
