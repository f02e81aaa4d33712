"""End to end: the CLI creates a consortium, a real node process serves it.

Runs against SQLite and PostgreSQL. Covers offline proof verification with
``tradeledger proof verify``, and a SIGKILL during steady load: nothing that
was reported committed is lost, and ``tradeledger audit`` passes afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from client.sdk import Client, TxBuilder
from ledger.keys import SigningKey, load_key

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "client.cli"]
PASSPHRASE = "e2e-passphrase"
DESCRIPTION = """\
chain_id: e2e-chain
name: End-to-end consortium
quorum: {validators: [platform], threshold: 1}
organisations:
  - {id: platform, name: Platform, roles: [platform], node: true}
  - {id: bank-one, name: Bank One, roles: [bank]}
  - {id: supplier-one, name: Supplier One, roles: [supplier]}
"""


def _env(db_url: str) -> dict[str, str]:
    env = {**os.environ, "TRADELEDGER_PASSPHRASE": PASSPHRASE, "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    if db_url.startswith("postgresql"):
        env["DATABASE_URL"] = db_url
    return env


def _cli(args: list[str], db_url: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=_env(db_url), cwd=ROOT, capture_output=True,
                          text=True, timeout=120, **kw)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NodeProcess:
    """``tradeledger node run`` as a child process, stopped by its PID."""

    def __init__(self, home: Path, db_url: str) -> None:
        self.home = home
        self.db_url = db_url
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.home / "node.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [*CLI, "node", "run", "--data", str(self.home / "data"),
             "--genesis", str(self.home / "consortium/genesis.json"),
             "--node-key", str(self.home / "consortium/keys/platform/node.key"),
             "--org", "platform", "--port", str(self.port)],
            env=_env(self.db_url), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.home / "node.log").read_text()[-2000:])
            try:
                if httpx.get(f"{self.base}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError("node did not become ready")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def e2e(tmp_path: Path, db_url: str) -> Iterator[tuple[NodeProcess, Client, Any]]:
    (tmp_path / "consortium.yaml").write_text(DESCRIPTION)
    made = _cli(["init", str(tmp_path / "consortium.yaml"), "--out",
                 str(tmp_path / "consortium"), "--json"], db_url)
    assert made.returncode == 0, made.stderr
    info = json.loads(made.stdout)
    assert info["chain_id"] == "e2e-chain"
    node = NodeProcess(tmp_path, db_url)
    node.start()
    genesis = (tmp_path / "consortium/genesis.json").read_bytes()
    admins = {org: load_key(tmp_path / f"consortium/keys/{org}/admin.key", PASSPHRASE)
              for org in ("bank-one", "supplier-one")}
    client = Client(node.base, genesis=genesis, key=admins["bank-one"])
    try:
        yield node, client, admins
    finally:
        client.close()
        node.stop()


def _enrol(admins: dict[str, SigningKey], org: str) -> Any:
    builder = TxBuilder(admins[org], chain_id="e2e-chain")
    return builder.build("membership.key_enrol",
                         {"org": org, "public_key": SigningKey.generate().public_key_hex,
                          "kind": "member"})


def test_proofs_verify_offline_and_falsified_bundles_fail(e2e: Any, tmp_path: Path,
                                                          db_url: str) -> None:
    node, client, admins = e2e
    txs = [_enrol(admins, "bank-one" if i % 2 else "supplier-one") for i in range(12)]
    results = client.submit_batch(txs[:8])
    assert {r["status"] for r in results} == {"pending"}
    for tx in txs[8:]:
        client.submit(tx)
    for tx in txs:
        assert client.wait(tx.tx_id_hex, timeout=20)["status"] == "committed"
    record = client.verified_record(txs[5].tx_id_hex)
    assert record.tx_id == txs[5].tx_id_hex
    bundle_path = tmp_path / "bundle.json"
    reader = str(tmp_path / "consortium/keys/bank-one/member1.key")
    got = _cli(["proof", "get", txs[5].tx_id_hex, "--out", str(bundle_path), "--node",
                node.base, "--key", reader], db_url)
    assert got.returncode == 0, got.stderr
    genesis = str(tmp_path / "consortium/genesis.json")
    ok = _cli(["proof", "verify", str(bundle_path), "--genesis", genesis, "--json"], db_url)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["valid"] is True
    original = bundle_path.read_text()
    bundle = json.loads(original)
    # Change one byte in each part of the bundle: every change must fail.
    mutations = {
        "leaf": lambda b: b.__setitem__("leaf", b["leaf"].replace("member", "admin", 1)),
        "proof": lambda b: b["inclusion_proof"].__setitem__(
            0, ("0" if b["inclusion_proof"][0][0] != "0" else "1")
            + b["inclusion_proof"][0][1:]),
        "root": lambda b: b["header"].__setitem__("log_root", "00" * 32),
        "certificate": lambda b: b["certificate"]["signatures"][0].__setitem__(
            "signature", "00" * 64),
        "index": lambda b: b.__setitem__("leaf_index", b["leaf_index"] + 1),
    }
    for name, mutate in mutations.items():
        changed = json.loads(original)
        mutate(changed)
        bundle_path.write_text(json.dumps(changed))
        bad = _cli(["proof", "verify", str(bundle_path), "--genesis", genesis], db_url)
        assert bad.returncode == 1, f"{name}: falsified bundle accepted"
        assert "does NOT verify" in bad.stderr
    assert bundle["kind"] == "inclusion"
    shown = _cli(["tx", "show", txs[0].tx_id_hex, "--node", node.base, "--key", reader,
                  "--json"], db_url)
    assert json.loads(shown.stdout)["status"] == "committed"
    payload = tmp_path / "enrol.json"
    payload.write_text(json.dumps({"org": "bank-one", "kind": "member",
                                   "public_key": SigningKey.generate().public_key_hex}))
    admin_key = str(tmp_path / "consortium/keys/bank-one/admin.key")
    submitted = _cli(["tx", "submit", "membership.key_enrol", str(payload), "--key", admin_key,
                      "--node", node.base, "--json"], db_url)
    assert submitted.returncode == 0, submitted.stderr
    assert json.loads(submitted.stdout)["status"] == "committed"
    # The same payload from a supplier's admin is refused by the contract: exit 3.
    other = str(tmp_path / "consortium/keys/supplier-one/admin.key")
    payload.write_text(json.dumps({"org": "bank-one", "kind": "member",
                                   "public_key": SigningKey.generate().public_key_hex}))
    refused = _cli(["tx", "submit", "membership.key_enrol", str(payload), "--key", other,
                    "--node", node.base, "--json"], db_url)
    assert refused.returncode == 3
    assert json.loads(refused.stdout)["code"] == "not_org_admin"


def test_sigkill_under_load_loses_nothing_reported_committed(e2e: Any, tmp_path: Path,
                                                            db_url: str) -> None:
    node, client, admins = e2e
    committed: list[str] = []
    stop = threading.Event()

    def load() -> None:
        # A steady stream: submit, then record what the node reports committed.
        with Client(node.base, key=admins["bank-one"], chain_id="e2e-chain") as c:
            for i in range(5000):
                if stop.is_set():
                    return
                tx = _enrol(admins, "bank-one" if i % 2 else "supplier-one")
                try:
                    c.submit(tx)
                    status = c.wait(tx.tx_id_hex, timeout=5, interval=0.01)
                except (httpx.HTTPError, TimeoutError, Exception):
                    return  # the node died under us: expected
                if status["status"] == "committed":
                    committed.append(tx.tx_id_hex)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(committed) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    node.kill(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(committed) >= 40, "the load did not get going"
    node.start()
    for tx_id in committed:
        assert client.tx(tx_id)["status"] == "committed", tx_id
    db = db_url if db_url.startswith("postgresql") else \
        f"sqlite:///{tmp_path / 'data' / 'ledger.db'}"
    node.stop()
    audited = _cli(["audit", "--db", db, "--json"], db_url)
    assert audited.returncode == 0, audited.stdout + audited.stderr
    report = json.loads(audited.stdout)
    assert report["ok"] and report["txs"] > len(committed)
