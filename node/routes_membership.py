"""Membership reads: organisations with their keys, governance proposals with votes.

Membership and governance records are public to every member (specs/read-policy.md):
every route needs a signed member request, none filters by organisation.
Statuses that depend on time (a key in its overlap window, a proposal past its
deadline) are judged at the node's head block time.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Depends, FastAPI

from ledger.contracts import Keys
from ledger.contracts.membership import (
    ORG_ID,
    PROPOSAL_ID,
    key_state,
    proposal_key,
    proposal_state,
)
from ledger.errors import MalformedRecord, NotFound
from ledger.timefmt import format_time
from node.auth import Caller, member
from node.service import LedgerNode


def install(app: FastAPI, node: LedgerNode) -> None:
    """Register ``/v1/orgs`` and ``/v1/governance`` routes on ``app``."""

    def check(value: str, pattern: str, field: str) -> None:
        if not re.fullmatch(pattern, value):
            raise MalformedRecord(f"must match {pattern}", field=field, rule="pattern")

    def enrolled_at(height: int) -> str | None:
        header = node.store.header(height)
        return None if header is None else format_time(header.time)

    @app.get("/v1/orgs", tags=["membership"])
    def orgs(_caller: Caller = Depends(member)) -> dict[str, Any]:
        """Every organisation of the consortium, removed ones included."""
        consortium = node.store.get(Keys.CONSORTIUM)
        return {"organisations": [v for _k, v in node.store.state_prefix("org/")],
                "quorum": consortium["quorum"], "policy": consortium.get("policy", {})}

    @app.get("/v1/orgs/{org_id}", tags=["membership"])
    def org(org_id: str, _caller: Caller = Depends(member)) -> dict[str, Any]:
        """One organisation and each of its keys, with its status at the head."""
        check(org_id, ORG_ID, "org_id")
        record = node.store.get(Keys.org(org_id))
        if record is None:
            raise NotFound(f"no organisation {org_id!r}", code="unknown_org")
        head = node.head
        keys = []
        for key, _kind in node.store.state_prefix(f"orgkey/{org_id}/", limit=10_000):
            found = node.store.get(Keys.key(key.rsplit("/", 1)[-1]))
            if found is not None:
                keys.append({**found, "state": key_state(found, head.time),
                             "enrolled_at": enrolled_at(found["since"])})
        consortium = node.store.get(Keys.CONSORTIUM)
        return {"organisation": record, "keys": keys, "height": head.height,
                "time": format_time(head.time), "policy": consortium.get("policy", {})}

    @app.get("/v1/governance/proposals", tags=["governance"])
    def proposals(_caller: Caller = Depends(member)) -> dict[str, Any]:
        """Every proposal, newest first, with its status at the head."""
        head = node.head
        found = [{**v, "state": proposal_state(v, head.time)}
                 for _k, v in node.store.state_prefix("gov/proposal/", limit=10_000)]
        found.sort(key=lambda p: (-p["created_height"], p["proposal_id"]))
        return {"proposals": found, "height": head.height, "time": format_time(head.time)}

    @app.get("/v1/governance/proposals/{proposal_id}", tags=["governance"])
    def proposal(proposal_id: str, _caller: Caller = Depends(member)) -> dict[str, Any]:
        """One proposal with each organisation's vote."""
        check(proposal_id, PROPOSAL_ID, "proposal_id")
        record = node.store.get(proposal_key(proposal_id))
        if record is None:
            raise NotFound(f"no proposal {proposal_id!r}", code="unknown_proposal")
        head = node.head
        votes = {k.rsplit("/", 1)[-1]: v
                 for k, v in node.store.state_prefix(f"gov/vote/{proposal_id}/")}
        return {"proposal": {**record, "state": proposal_state(record, head.time)},
                "votes": votes, "height": head.height, "time": format_time(head.time)}
