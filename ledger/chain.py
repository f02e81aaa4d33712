"""Building blocks: genesis and the next block (specs/protocol.md#blocks).

Pure functions: the caller passes the state, the Merkle tree, the time and the
keys. The node's orderer and the audit both call these, so a block is built
and checked by the same code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger import merkle
from ledger.block import BlockHeader, state_root_step
from ledger.contracts import PUBLIC_PARTY
from ledger.encoding import canonical, loads
from ledger.errors import MalformedRecord, VerificationError
from ledger.executor import (
    GENESIS_TYPE,
    Accepted,
    BlockContext,
    BlockExecution,
    Refused,
    VerifiedSignatures,
    execute_block,
)
from ledger.hashing import ZERO_HASH
from ledger.keys import SigningKey
from ledger.state import MemoryState, StateReader
from ledger.tx import SignedTx, make_body, sign_tx

GENESIS_VERSION = "tradeledger-genesis/1"


@dataclass(frozen=True)
class BuiltBlock:
    """A block ready to commit: header, accepted txs, state writes, Merkle nodes."""

    header: BlockHeader
    accepted: list[Accepted]
    refused: list[Refused]
    state_writes: Mapping[str, bytes | None]
    merkle_nodes: list[tuple[int, int, bytes]]


def build_block(
    *,
    prev: BlockHeader,
    state: StateReader,
    tree: merkle.MerkleTree,
    txs: Sequence[SignedTx],
    time: datetime,
    proposer: str,
    verified: VerifiedSignatures | None = None,
) -> BuiltBlock:
    """Execute ``txs`` on ``state`` and assemble block ``prev.height + 1``.

    ``tree`` must hold exactly ``prev.log_size`` leaves; it is extended with
    the accepted transactions (its store should buffer writes until commit).
    Block time never goes backwards: it is ``max(time, prev.time)``.
    """
    if tree.size != prev.log_size:
        raise VerificationError(
            f"Merkle tree holds {tree.size} leaves, previous header says {prev.log_size}",
            code="tree_out_of_step",
        )
    block_time = max(time, prev.time)
    height = prev.height + 1
    ctx = BlockContext(chain_id=prev.chain_id, height=height, time=block_time)
    execution: BlockExecution = execute_block(state, txs, ctx, verified=verified)
    leaf_hashes = [a.tx.leaf_hash for a in execution.accepted]
    # Sorted once: for the state root, and (as the block's writes, in key order)
    # for the commit, whose sort then has nothing left to move.
    changes = execution.state.sorted_changes()
    nodes = tree.append_leaf_hashes(leaf_hashes) if leaf_hashes else []
    header = BlockHeader(
        chain_id=prev.chain_id,
        height=height,
        prev_hash=prev.hash,
        log_size=tree.size,
        log_root=tree.root(),
        state_root=state_root_step(prev.state_root, changes),
        time=block_time,
        proposer=proposer,
    )
    return BuiltBlock(header, execution.accepted, execution.refused,
                      dict(changes), nodes)


@dataclass(frozen=True)
class Genesis:
    """Block 0: the consortium's founding transaction and its header.

    The genesis file is the trust anchor every verifier starts from.
    """

    header: BlockHeader
    tx: SignedTx
    state_writes: Mapping[str, bytes | None]

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def chain_id(self) -> str:
        return self.header.chain_id

    @property
    def parties(self) -> list[str]:
        """Every founding organisation, and every member (the genesis is public)."""
        return sorted({PUBLIC_PARTY, *(str(o["id"])
                                       for o in self.tx.body.payload["organisations"])})

    def to_wire(self) -> dict[str, Any]:
        return {
            "version": GENESIS_VERSION,
            "header": self.header.to_wire(),
            "transaction": self.tx.to_wire(),
        }

    def to_bytes(self) -> bytes:
        return canonical(self.to_wire())

    @classmethod
    def from_wire(cls, wire: object) -> Genesis:
        """Parse and fully re-check a genesis file (replays its transaction)."""
        if not isinstance(wire, dict) or wire.get("version") != GENESIS_VERSION:
            raise MalformedRecord(f"not a {GENESIS_VERSION} document", field="version",
                                  rule="version")
        extra = set(wire) - {"version", "header", "transaction"}
        if extra:
            raise MalformedRecord("is not a known member", field=sorted(extra)[0],
                                  rule="unknown_field")
        header = BlockHeader.from_wire(wire.get("header"))
        tx = SignedTx.from_wire(wire.get("transaction"))
        rebuilt = _genesis_from_tx(tx, header.time, header.proposer)
        if rebuilt.header != header:
            raise VerificationError("genesis header does not match its transaction",
                                    code="bad_genesis")
        return rebuilt

    @classmethod
    def from_bytes(cls, data: bytes) -> Genesis:
        return cls.from_wire(loads(data))


def make_genesis(
    description: Mapping[str, Any], *, founder: SigningKey, time: datetime
) -> Genesis:
    """Found a consortium from its description (the ``membership.genesis`` payload)."""
    chain_id = description.get("chain_id")
    if not isinstance(chain_id, str):
        raise MalformedRecord("is required", field="chain_id", rule="required")
    body = make_body(
        tx_type=GENESIS_TYPE, chain_id=chain_id, author=founder, payload=description,
        nonce="genesis-0", created_at=time,
    )
    return _genesis_from_tx(sign_tx(body, [founder]), time, founder.key_id)


def _genesis_from_tx(tx: SignedTx, time: datetime, proposer: str) -> Genesis:
    if tx.body.type != GENESIS_TYPE:
        raise MalformedRecord(f"genesis transaction must be {GENESIS_TYPE}", field="type",
                              rule="genesis")
    ctx = BlockContext(chain_id=tx.body.chain_id, height=0, time=time)
    execution = execute_block(MemoryState(), [tx], ctx)
    if execution.refused:
        error = execution.refused[0].error
        raise VerificationError(f"genesis is refused: {error.code}: {error.message}",
                                code="bad_genesis")
    header = BlockHeader(
        chain_id=tx.body.chain_id,
        height=0,
        prev_hash=ZERO_HASH,
        log_size=1,
        log_root=merkle.root([tx.leaf_bytes()]),
        state_root=state_root_step(ZERO_HASH, execution.state.sorted_changes()),
        time=time,
        proposer=proposer,
    )
    return Genesis(header, tx, dict(execution.state.writes))
