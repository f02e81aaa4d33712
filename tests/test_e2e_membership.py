"""End to end through the CLI only: key rotation, revocation, a governance vote adding a bank.

A real ``tradeledger node run`` process serves a four-organisation consortium; every
step is a ``tradeledger`` command, as an operator would type it. The chain audits clean
at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.timefmt import format_time
from tests.harness.ports import free_port
from tests.harness.process import ServiceProcess

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "client.cli"]
PASSPHRASE = "e2e-membership"
DESCRIPTION = """\
chain_id: gov-e2e
name: Governance end to end
quorum: {validators: [platform], threshold: 1}
organisations:
  - {id: platform, name: Platform, roles: [platform], node: true}
  - {id: bank-one, name: Bank One, roles: [bank]}
  - {id: supplier-one, name: Supplier One, roles: [supplier]}
  - {id: buyer-one, name: Buyer One, roles: [buyer]}
"""


def _env() -> dict[str, str]:
    env = {**os.environ, "TRADELEDGER_PASSPHRASE": PASSPHRASE, "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    return env


class Operator:
    """Runs ``tradeledger`` commands against one node."""

    def __init__(self, home: Path, node: str) -> None:
        self.home = home
        self.node = node

    def key(self, org: str, name: str) -> str:
        return str(self.home / "consortium" / "keys" / org / f"{name}.key")

    def run(self, *args: str, node: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [*CLI, *args, *(["--node", self.node] if node else [])]
        return subprocess.run(argv, env=_env(), cwd=ROOT, capture_output=True, text=True,
                              timeout=120)

    def ok(self, *args: str, node: bool = True) -> Any:
        done = self.run(*args, "--json", node=node)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return json.loads(done.stdout)

    def new_key(self, name: str) -> tuple[str, str]:
        path = str(self.home / "keys" / f"{name}.key")
        made = self.ok("keys", "new", path, "--label", name, node=False)
        return path, made["key_id"]

    def order(self, author: str, cosigner: str, order_id: str) -> subprocess.CompletedProcess[str]:
        payload = self.home / f"{order_id}.json"
        payload.write_text(json.dumps({"order_id": order_id, "buyer": "buyer-one",
                                       "seller": "supplier-one", "currency": "EUR",
                                       "total": 5000}))
        return self.run("tx", "submit", "trade.order", str(payload), "--key", author,
                        "--cosign", cosigner, "--json")


@pytest.fixture
def operator(tmp_path: Path) -> Any:
    (tmp_path / "consortium.yaml").write_text(DESCRIPTION)
    (tmp_path / "keys").mkdir()
    made = subprocess.run([*CLI, "init", str(tmp_path / "consortium.yaml"), "--out",
                           str(tmp_path / "consortium")], env=_env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    port = free_port()
    service = ServiceProcess(
        [*CLI, "node", "run", "--data", str(tmp_path / "data"),
         "--genesis", str(tmp_path / "consortium/genesis.json"),
         "--node-key", str(tmp_path / "consortium/keys/platform/node.key"),
         "--org", "platform", "--port", str(port)],
        ready_url=f"http://127.0.0.1:{port}/ready", env=_env(), cwd=ROOT, name="node",
        ready_timeout=60)
    with service:
        yield Operator(tmp_path, f"http://127.0.0.1:{port}")


def test_rotation_revocation_and_a_vote_adding_a_bank_through_the_cli(operator: Any) -> None:
    op = operator
    supplier_member = op.key("supplier-one", "member1")
    buyer_member = op.key("buyer-one", "member1")
    old_id = op.ok("keys", "show", supplier_member, node=False)["key_id"]

    # 1. Rotation: the successor signs at once; the old key until the window ends.
    successor, successor_id = op.new_key("supplier-two")
    ends = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=25)
    rotated = op.ok("keys", "rotate", old_id, "--new-key", successor,
                    "--admin-key", op.key("supplier-one", "admin"), "--until", format_time(ends))
    assert rotated["status"] == "committed"
    assert json.loads(op.order(supplier_member, buyer_member, "PO-OLD-KEY").stdout)[
        "status"] == "committed"
    assert json.loads(op.order(successor, buyer_member, "PO-NEW-KEY").stdout)[
        "status"] == "committed"
    status = op.ok("keys", "status", "--org", "supplier-one", "--key", successor)
    states = {k["key_id"]: k["state"] for k in status["keys"]}
    assert states[old_id] == "rotating" and states[successor_id] == "active"
    assert any("stops signing" in w and successor_id in w for w in status["warnings"]), status
    while datetime.now(UTC) <= ends + timedelta(seconds=1):
        time.sleep(0.25)
    late = op.order(supplier_member, buyer_member, "PO-LATE")
    assert late.returncode == 1 and "key_rotated" in late.stderr
    human = op.run("keys", "status", "--org", "supplier-one", "--key", successor)
    assert human.returncode == 0 and "stopped signing" in human.stderr

    # 2. Revocation: the bank enrols a key, revokes it, and its next transaction fails.
    temp, temp_id = op.new_key("bank-temp")
    op.ok("keys", "enrol", "--org", "bank-one", "--key-file", temp,
          "--admin-key", op.key("bank-one", "admin"))
    _spare, _ = op.new_key("bank-spare")
    signed_before = op.ok("keys", "enrol", "--org", "bank-one", "--key-file", _spare,
                          "--admin-key", op.key("bank-one", "admin"))
    assert signed_before["status"] == "committed"
    op.ok("keys", "revoke", temp_id, "--reason", "contractor left",
          "--admin-key", op.key("bank-one", "admin"))
    payload = op.home / "enrol.json"
    payload.write_text(json.dumps({"org": "bank-one", "kind": "member",
                                   "public_key": "ab" * 32}))
    refused = op.run("tx", "submit", "membership.key_enrol", str(payload), "--key", temp)
    assert refused.returncode == 1 and "key_revoked" in refused.stderr
    again = op.run("keys", "revoke", temp_id, "--reason", "twice", "--admin-key",
                   op.key("bank-one", "admin"), "--json")
    assert again.returncode == 3 and json.loads(again.stdout)["code"] == "already_revoked"

    # 3. Governance: four active organisations, three approvals add the new bank.
    new_admin, _ = op.new_key("bank-new-admin")
    new_member, _ = op.new_key("bank-new-member")
    proposed = op.ok("gov", "propose", "add-bank-new", "--add-org", "bank-new",
                     "--name", "New Bank", "--role", "bank", "--country", "SG",
                     "--with-key", f"admin={new_admin}", "--with-key", f"member={new_member}",
                     "--admin-key", op.key("platform", "admin"), "--days", "3")
    assert proposed["status"] == "committed"
    early = op.run("keys", "enrol", "--org", "bank-new", "--key-file", temp,
                   "--admin-key", new_admin, "--json")
    # Not yet a member: the node does not even take the bank's signed request.
    assert early.returncode == 1 and "401 unknown_key" in early.stderr
    op.ok("gov", "vote", "add-bank-new", "approve", "--admin-key", op.key("bank-one", "admin"))
    shown = op.ok("gov", "show", "add-bank-new", "--key", buyer_member)
    assert shown["proposal"]["state"] == "open" and shown["proposal"]["needed"] == 3
    op.ok("gov", "vote", "add-bank-new", "approve",
          "--admin-key", op.key("buyer-one", "admin"))
    shown = op.ok("gov", "show", "add-bank-new", "--key", buyer_member)
    assert shown["proposal"]["state"] == "executed"
    assert set(shown["votes"]) == {"platform", "bank-one", "buyer-one"}
    late_vote = op.run("gov", "vote", "add-bank-new", "reject",
                       "--admin-key", op.key("supplier-one", "admin"), "--json")
    assert late_vote.returncode == 3
    assert json.loads(late_vote.stdout)["code"] == "proposal_decided"
    listed = op.ok("gov", "show", "--key", buyer_member)["proposals"]
    assert [p["proposal_id"] for p in listed] == ["add-bank-new"]
    # The new bank writes at once with the keys the vote enrolled.
    fresh, _ = op.new_key("bank-new-member2")
    joined = op.ok("keys", "enrol", "--org", "bank-new", "--key-file", fresh,
                   "--admin-key", new_admin)
    assert joined["status"] == "committed"
    bank_keys = op.ok("keys", "status", "--org", "bank-new", "--key", fresh)
    assert bank_keys["organisation"]["status"] == "active"
    assert sorted(k["kind"] for k in bank_keys["keys"]) == ["admin", "member", "member"]

    # 4. The whole history replays clean from genesis.
    audited = op.ok("audit", "--db", f"sqlite:///{op.home / 'data' / 'ledger.db'}",
                    "--workers", "0", node=False)
    assert audited["ok"], audited
