"""Small builders shared by tests: nodes over a store, signed transactions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from client.sdk import TxBuilder
from ledger.keys import SigningKey
from ledger.store import Store
from node.service import Clock, LedgerNode


class FixedClock(Clock):
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


OPEN_STORES: list[Store] = []


def make_node(demo_consortium: Any, url: str, **kwargs: Any) -> LedgerNode:
    """A node over a fresh store; the store is closed after the test (conftest)."""
    _consortium, genesis, orgs = demo_consortium
    store = Store(url)
    OPEN_STORES.append(store)
    return LedgerNode(store, genesis, node_key=orgs["platform"].node, node_org="platform",
                      **kwargs)


def enrol_tx(demo_consortium: Any, org: str, *, kind: str = "member",
             key: SigningKey | None = None, author: SigningKey | None = None,
             created_at: datetime | None = None) -> Any:
    _consortium, genesis, orgs = demo_consortium
    new = key or SigningKey.generate()
    builder = TxBuilder(author or orgs[org].admin, chain_id=genesis.chain_id)
    return builder.build("membership.key_enrol",
                         {"org": org, "public_key": new.public_key_hex, "kind": kind},
                         created_at=created_at)


def fill_blocks(node: LedgerNode, demo_consortium: Any, blocks: int, per_block: int) -> list[str]:
    ids: list[str] = []
    orgs = ["bank-asia", "supplier-sz", "buyer-lyon", "warehouse"]
    for b in range(blocks):
        for i in range(per_block):
            tx = enrol_tx(demo_consortium, orgs[(b + i) % len(orgs)])
            node.submit(tx.to_wire())
            ids.append(tx.tx_id_hex)
        node.cut_block()
    return ids
