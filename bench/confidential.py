"""Sealed details benchmark: sealing, opening, and what a party's node check costs.

Run: ``.venv/bin/python bench/confidential.py`` (add ``--quick`` for a smaller run).
Prints figures and one ratio: the rate at which a party's node checks sealed orders
(open + commitment, node-local row) against the rate at which the node orders and
commits them. The check runs after each commit, outside block execution.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import PASSPHRASE, consortium, rate, report
from client.confidential import encryption_keys, sealed_order
from client.sdk import TxBuilder
from ledger.confidential import open_sealed, seal
from ledger.keys import load_encryption_key
from ledger.store import Store
from node.confidential import ConfidentialChecker
from node.service import LedgerNode


def details(i: int, lines: int) -> dict[str, object]:
    return {"line_items": [{"sku": f"SKU-{i}-{j}", "description": f"Bench item {j} of {i}",
                            "quantity": 10 + j, "unit": "EA", "unit_price": 100 + i % 97}
                           for j in range(lines)],
            "bank_terms": {"bank": "Harbour Bank Asia", "account": f"HK-{i:08d}"}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 500 if args.quick else 4000
    lines = 5
    with tempfile.TemporaryDirectory() as tmp:
        c, genesis, keys = consortium(Path(tmp) / "c")
        public = encryption_keys(genesis)
        buyer_secret = load_encryption_key(c.encryption_key_path("buyer-rotterdam"),
                                           PASSPHRASE)
        seller_secret = load_encryption_key(c.encryption_key_path("supplier-sz"), PASSPHRASE)
        pair = {o: public[o] for o in ("buyer-rotterdam", "supplier-sz")}
        docs = [details(i, lines) for i in range(n)]
        sealed: list[dict[str, object]] = []
        seal_rate = rate(n, lambda: sealed.extend(seal(d, pair) for d in docs))
        open_rate = rate(n, lambda: [open_sealed(s, "buyer-rotterdam", buyer_secret)
                                     for s in sealed])

        builder = TxBuilder(keys["buyer-rotterdam"]["member1"], chain_id=genesis.chain_id)
        txs = [builder.build("trade.order", sealed_order(
            order_id=f"PO-B-{i}", buyer="buyer-rotterdam", seller="supplier-sz",
            currency="EUR", details=docs[i], keys=public),
            cosigners=[keys["supplier-sz"]["member1"]]) for i in range(n)]
        store = Store(f"sqlite:///{tmp}/ledger.db")
        node = LedgerNode(store, genesis, node_key=keys["platform"]["node"],
                          node_org="platform", block_max_txs=1000)
        start = time.perf_counter()
        node.submit_many([t.to_wire() for t in txs])
        while node.cut_block() is not None:
            pass
        commit_rate = n / (time.perf_counter() - start)
        # supplier-sz's node would check the same blocks with its key.
        checker = ConfidentialChecker(store, "supplier-sz", seller_secret)
        start = time.perf_counter()
        checked = checker.catch_up(now=node.clock.now())
        check_rate = checked / (time.perf_counter() - start)
        node.stop()
        store.close()
    ratio = check_rate / commit_rate
    report("sealed trade details", [
        ("seal, 2 recipients", f"{seal_rate:,.0f}/s", f"{lines} line items per record"),
        ("open + commitment", f"{open_rate:,.0f}/s", "one party's copy"),
        ("order + commit", f"{commit_rate:,.0f} tx/s", "sealed orders, SQLite, solo"),
        ("party node check", f"{check_rate:,.0f} tx/s", "open, check, node-local row"),
        ("check / commit", f"{ratio:.1f}x", "> 1: the check keeps up with ordering"),
    ], {"seal_per_s": seal_rate, "open_per_s": open_rate, "commit_tx_per_s": commit_rate,
        "check_tx_per_s": check_rate, "check_over_commit": ratio, "n": n})


if __name__ == "__main__":
    main()
