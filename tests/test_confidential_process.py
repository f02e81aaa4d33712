"""End to end through the CLI: a supplier's node process, run with its encryption key,
checks the details sealed to it; the buyer opens them with ``tradeledger confidential``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.confidential import encryption_keys, seal, sealed_order
from client.sdk import Client, TxBuilder
from ledger.keys import load_key
from tests.harness.ports import free_port
from tests.harness.process import ServiceProcess

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "client.cli"]
PASSPHRASE = "sealed-e2e"
DESCRIPTION = """\
chain_id: sealed-e2e
name: Sealed details end to end
quorum: {validators: [supplier-one], threshold: 1}
organisations:
  - {id: platform, name: Platform, roles: [platform]}
  - {id: supplier-one, name: Supplier One, roles: [supplier], node: true}
  - {id: buyer-one, name: Buyer One, roles: [buyer]}
"""
LINES = {"line_items": [{"sku": "S1-VALVE", "description": "Brass ball valve DN25",
                         "quantity": 120, "unit": "EA", "unit_price": 1_375}]}


def _env() -> dict[str, str]:
    env = {**os.environ, "TRADELEDGER_PASSPHRASE": PASSPHRASE, "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    env.pop("TRADELEDGER_ENCRYPTION_KEY", None)
    return env


def _cli(args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=_env(), cwd=ROOT, capture_output=True,
                          text=True, timeout=120, **kw)


@pytest.fixture
def supplier_node(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    (tmp_path / "consortium.yaml").write_text(DESCRIPTION, encoding="utf-8")
    home = tmp_path / "consortium"
    made = _cli(["init", str(tmp_path / "consortium.yaml"), "--out", str(home)])
    assert made.returncode == 0, made.stderr
    base = f"http://127.0.0.1:{free_port()}"
    node = ServiceProcess(
        [*CLI, "node", "run", "--data", str(tmp_path / "data"),
         "--genesis", str(home / "genesis.json"),
         "--node-key", str(home / "keys/supplier-one/node.key"),
         "--org", "supplier-one", "--port", base.rsplit(":", 1)[1]],
        ready_url=f"{base}/ready", cwd=ROOT, log_path=tmp_path / "node.log", ready_timeout=60,
        env={**_env(), "TRADELEDGER_ENCRYPTION_KEY":
             str(home / "keys/supplier-one/encryption.key")}, inherit_env=False)
    with node:
        yield base, home


def test_party_node_process_checks_and_the_cli_opens(supplier_node: tuple[str, Path]) -> None:
    base, home = supplier_node
    genesis = (home / "genesis.json").read_bytes()
    keys = encryption_keys(genesis)
    buyer = load_key(home / "keys/buyer-one/member1.key", PASSPHRASE)
    seller = load_key(home / "keys/supplier-one/member1.key", PASSPHRASE)
    chain = TxBuilder(buyer, chain_id="sealed-e2e")
    honest = chain.build("trade.order", sealed_order(
        order_id="PO-1", buyer="buyer-one", seller="supplier-one", currency="EUR",
        details=LINES, keys=keys), cosigners=[seller])
    lying_payload = sealed_order(order_id="PO-2", buyer="buyer-one", seller="supplier-one",
                                 currency="EUR", details=LINES, keys=keys)
    lying_payload["confidential"]["commitment"] = seal(
        {"line_items": []}, {"buyer-one": keys["buyer-one"]})["commitment"]
    lying = chain.build("trade.order", lying_payload, cosigners=[seller])
    with Client(base, key=buyer) as client:
        for tx in (honest, lying):
            client.submit(tx)
            assert client.wait(tx.tx_id_hex)["status"] == "committed"

    supplier_key = str(home / "keys/supplier-one/member1.key")
    checked = _cli(["confidential", "check", honest.tx_id_hex, "--key", supplier_key,
                    "--node", base, "--json"])
    assert checked.returncode == 0, checked.stderr
    assert '"checked_by_node": "verified"' in checked.stdout
    flagged = _cli(["confidential", "check", lying.tx_id_hex, "--key", supplier_key,
                    "--node", base, "--json"])
    assert flagged.returncode == 1 and '"checked_by_node": "mismatch"' in flagged.stdout

    opened = _cli(["confidential", "open", honest.tx_id_hex, "--org", "buyer-one",
                   "--key", str(home / "keys/buyer-one/member1.key"),
                   "--encryption-key", str(home / "keys/buyer-one/encryption.key"),
                   "--node", base, "--json"])
    assert opened.returncode == 0, opened.stderr
    assert "Brass ball valve DN25" in opened.stdout and "1375" in opened.stdout
    # The platform is no party: the node does not even show it the record.
    outsider = _cli(["confidential", "open", honest.tx_id_hex, "--org", "platform",
                     "--key", str(home / "keys/platform/member1.key"),
                     "--encryption-key", str(home / "keys/platform/encryption.key"),
                     "--node", base])
    assert outsider.returncode == 1 and "unknown_tx" in outsider.stderr
