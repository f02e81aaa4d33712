"""A party's node checks the sealed details addressed to its organisation.

A node configured with its organisation's encryption secret opens, after each
committed block, every sealed copy addressed to that organisation and checks
it against the record's commitment (specs/trade.md#node-check). The outcome
is kept in the node-local ``confidential_check`` table: not chain data, not
derived state, never plaintext. A mismatch is logged. The contracts, which
run on every node, never see any of this.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ledger.confidential import check_sealed_copy, confidential_of
from ledger.contracts import Keys
from ledger.contracts.trade import CONFIDENTIAL_TYPES
from ledger.encoding import loads
from ledger.errors import Conflict
from ledger.keys import EncryptionKey
from ledger.store import Store, StoredTx
from ledger.timefmt import format_time

log = logging.getLogger("tradeledger.node.confidential")


class ConfidentialChecker:
    """Opens and checks ``org``'s sealed copies; records only the outcome."""

    def __init__(self, store: Store, org: str, key: EncryptionKey) -> None:
        record: Mapping[str, Any] | None = store.get(Keys.org(org))
        published = "" if record is None else str(record.get("encryption_key", ""))
        if published != key.public_key_hex:
            raise Conflict(
                f"the encryption key given to this node ({key.public_key_hex[:16]}...) is not "
                f"{org}'s encryption_key on the ledger ({published[:16] or 'none'}...)",
                code="wrong_encryption_key")
        self.store = store
        self.org = org
        self.key = key

    def check(self, txs: Iterable[StoredTx], *, now: datetime
              ) -> list[tuple[str, int, str, str, str, str]]:
        """Check every transaction of ``txs`` that carries sealed details; store the rows
        ``(tx_id, seq, org, outcome, detail, time)``."""
        when = format_time(now)
        rows: list[tuple[str, int, str, str, str, str]] = []
        for tx in txs:
            if tx.type not in CONFIDENTIAL_TYPES:
                continue
            payload = loads(tx.body)["payload"]
            confidential = confidential_of(tx.type, payload)
            if confidential is None:
                continue
            result = check_sealed_copy(confidential, self.org, self.key)
            if result.outcome in ("mismatch", "unreadable"):
                log.warning("tx %s (%s): the sealed details for %s do not check: %s",
                            tx.tx_id, tx.type, self.org, result.detail)
            rows.append((tx.tx_id, tx.seq, self.org, result.outcome, result.detail, when))
        self.store.add_confidential_checks(rows)
        return rows

    def catch_up(self, *, now: datetime) -> int:
        """Check what was committed since the last check (e.g. while the key was absent)."""
        batch: list[StoredTx] = []
        done = 0
        for tx in self.store.txs_of_types(CONFIDENTIAL_TYPES,
                                          after_seq=self.store.confidential_checked_seq()):
            batch.append(tx)
            if len(batch) >= 500:
                done += len(self.check(batch, now=now))
                batch.clear()
        return done + len(self.check(batch, now=now))


def status_of(store: Store, org: str, stored: StoredTx) -> dict[str, Any] | None:
    """``{"org", "commitment", "sealed_to", "checked_by_node", ...}`` or None.

    ``checked_by_node`` is ``verified``, ``mismatch`` or ``unreadable`` once
    checked; ``not_addressed`` when no copy is sealed to ``org``; ``unchecked``
    when this node holds no encryption key for ``org`` (or has not checked yet).
    """
    confidential = confidential_of(stored.type, loads(stored.body)["payload"])
    if confidential is None:
        return None
    sealed = confidential.get("sealed")
    sealed_to = sorted(sealed) if isinstance(sealed, Mapping) else []
    out: dict[str, Any] = {"org": org, "commitment": confidential.get("commitment"),
                           "sealed_to": sealed_to, "detail": "", "checked_at": None}
    row = store.confidential_check(stored.tx_id)
    if row is not None:
        out.update(checked_by_node=row.outcome, detail=row.detail, checked_at=row.time)
    elif org not in sealed_to:
        out["checked_by_node"] = "not_addressed"
    else:
        out["checked_by_node"] = "unchecked"
    return out
