"""``GET /v1/tx/{tx_id}/confidential``: what this node found in its sealed copy.

The answer names the commitment, the organisations the details are sealed
to, and this node's check of its own organisation's copy
(specs/api.md#confidential). Like every record read it needs a signed member
request from a party of the record (node.auth). It never returns the details themselves: a party
opens its copy with its own encryption key (``client.confidential``).
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from ledger.errors import NotFound
from ledger.hashing import parse_hash
from node.auth import Caller, member
from node.confidential import status_of
from node.service import LedgerNode


def install(app: FastAPI, node: LedgerNode) -> None:
    @app.get("/v1/tx/{tx_id}/confidential", tags=["transactions"])
    def confidential(tx_id: str, caller: Caller = Depends(member)) -> dict[str, Any]:
        """This node's check of the sealed details of a committed order or invoice.

        ``checked_by_node``: ``verified`` (the copy sealed to this node's
        organisation opens and matches the commitment), ``mismatch``,
        ``unreadable``, ``not_addressed`` (no copy for this organisation) or
        ``unchecked`` (this node holds no encryption key for it). Only for a
        party of the record; others get the 404 of an unknown transaction.
        """
        parse_hash(tx_id, field="tx_id")
        stored = node.readable_tx(caller.org, tx_id)
        status = status_of(node.store, node.node_org, stored)
        if status is None:
            raise NotFound(f"transaction {tx_id} carries no sealed details",
                           code="no_confidential_details")
        return {"tx_id": tx_id, **status}
