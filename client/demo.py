"""``tradeledger demo``: the demonstration consortium on one machine.

Creates the consortium (a platform, two banks, three suppliers, two buyers, a
logistics firm, a bonded warehouse, an inspection agency) if it does not
exist, starts the platform's node (SQLite, solo ordering), seeds a scenario
through the SDK, and prints where to look.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from client.consortium import DEMO_DESCRIPTION, Consortium, init_consortium
from client.scenario import seed_scenario
from client.sdk import Client, wait_ready
from ledger.keys import load_key

DEMO_PASSPHRASE_ENV = "TRADELEDGER_PASSPHRASE"


def ensure_consortium(data: Path, passphrase: str) -> Consortium:
    consortium = Consortium(data)
    if not consortium.genesis_path.exists():
        init_consortium(DEMO_DESCRIPTION, data, passphrase=passphrase,
                        time=datetime.now(UTC).replace(microsecond=0))
    return consortium


def run_demo(data: Path, *, port: int, serve: bool, console: Console) -> None:
    import uvicorn

    from ledger.chain import Genesis
    from ledger.store import Store
    from node.app import create_app
    from node.service import LedgerNode

    passphrase = os.environ.get(DEMO_PASSPHRASE_ENV, "demo-only-passphrase")
    consortium = ensure_consortium(data, passphrase)
    genesis_bytes = consortium.genesis_path.read_bytes()
    genesis = Genesis.from_bytes(genesis_bytes)
    store = Store(os.environ.get("DATABASE_URL") or f"sqlite:///{data / 'ledger.db'}")
    node = LedgerNode(store, genesis,
                      node_key=load_key(consortium.key_path("platform", "node"), passphrase),
                      node_org="platform")
    app = create_app(node)
    if port == 0:  # any free port
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
    base = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    if not wait_ready(base, timeout=30):
        server.should_exit = True
        raise SystemExit(f"the demo node did not start on {base}")
    with Client(base, genesis=genesis_bytes) as client:
        summary = seed_scenario(client, consortium, passphrase, genesis.chain_id)
    console.rule("[bold]TradeLedger demo")
    console.print(f"chain [bold]{genesis.chain_id}[/bold], genesis {genesis.hash.hex()[:16]}...")
    console.print(f"node API      {base}/v1   (OpenAPI {base}/docs, {base}/openapi.json)")
    console.print(f"explorer      {base}/")
    console.print(f"consortium    {data}/  (keys under {data}/keys, passphrase from "
                  f"${DEMO_PASSPHRASE_ENV}, default 'demo-only-passphrase')")
    console.print(f"seeded        {summary}")
    console.print("try:")
    tl = ".venv/bin/tradeledger"
    reader = consortium.key_path("buyer-rotterdam", "member1")
    console.print(f"  {tl} explorer login --key {reader}   (open the printed link)")
    console.print(f"  {tl} tx list --key {reader}")
    console.print(f"  {tl} epcis events --key {reader} "
                  "--biz-transaction urn:tradeledger:order:PO-NL-0001")
    console.print(f"  then, signed in: {base}/explorer/orders/PO-NL-0001 (the order's timeline)")
    console.print(f"  {tl} tx show {summary.get('last_tx', '<tx id>')} --key {reader}")
    console.print(f"  {tl} proof get {summary.get('last_tx', '<tx id>')} --key {reader} "
                  "--out proof.json")
    console.print(f"  {tl} proof verify proof.json --genesis {consortium.genesis_path}")
    console.print(f"  {tl} gov show add-bank-sg --key {reader}")
    console.print(f"  {tl} gov vote add-bank-sg approve --admin-key "
                  f"{consortium.key_path('bank-eu', 'admin').parent.parent}/<org>/admin.key")
    console.print(f"  {tl} keys status --org inspector --key {reader}")
    console.print(f"  {tl} audit --db sqlite:///{data / 'ledger.db'}")
    if "sealed_order_tx" in summary:  # the buyer opens the order's sealed line items
        console.print(f"  {tl} confidential open {summary['sealed_order_tx']} "
                      f"--org buyer-rotterdam --key {reader} --encryption-key "
                      f"{consortium.encryption_key_path('buyer-rotterdam')}")
    if not serve:
        server.should_exit = True
        thread.join(timeout=10)
        return
    console.print("press Ctrl-C to stop")
    try:
        while thread.is_alive():
            thread.join(timeout=0.5)
    except KeyboardInterrupt:
        server.should_exit = True
        thread.join(timeout=10)
