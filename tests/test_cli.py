"""The ``tradeledger`` CLI: keys, the demo consortium, audit and rebuild."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from client.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_keys_new_writes_an_encrypted_0600_file_and_show_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "alice.key"
    made = runner.invoke(app, ["keys", "new", str(path), "--label", "alice", "--json"],
                         env={"TRADELEDGER_PASSPHRASE": "pw"})
    assert made.exit_code == 0, made.output
    info = json.loads(made.output)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    shown = runner.invoke(app, ["keys", "show", str(path), "--json"])
    assert json.loads(shown.output)["key_id"] == info["key_id"]
    again = runner.invoke(app, ["keys", "new", str(path)], env={"TRADELEDGER_PASSPHRASE": "pw"})
    assert again.exit_code == 1 and "refusing to overwrite" in again.output


def test_init_refuses_a_bad_description_naming_the_field(tmp_path: Path) -> None:
    desc = tmp_path / "c.yaml"
    desc.write_text("chain_id: x1\norganisations:\n  - {id: p, roles: [platform], colour: red}\n")
    result = runner.invoke(app, ["init", str(desc), "--out", str(tmp_path / "out")],
                           env={"TRADELEDGER_PASSPHRASE": "pw"})
    assert result.exit_code == 1
    assert "organisations[0].colour" in result.output


@pytest.mark.slow
def test_demo_seeds_a_scenario_that_audits_clean_and_rebuilds(tmp_path: Path) -> None:
    env = {**os.environ, "TRADELEDGER_PASSPHRASE": "demo-test", "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    data = tmp_path / "demo"
    demo = subprocess.run([sys.executable, "-m", "client.cli", "demo", "--data", str(data),
                           "--port", "0", "--seed-only"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=180)
    assert demo.returncode == 0, demo.stderr
    assert "explorer" in demo.stdout and "orders" in demo.stdout
    db = f"sqlite:///{data / 'ledger.db'}"
    audited = runner.invoke(app, ["audit", "--db", db, "--json"])
    assert audited.exit_code == 0, audited.output
    report = json.loads(audited.output)
    assert report["ok"] and report["txs"] >= 23
    from ledger.store import Store

    store = Store(db)
    try:
        proposal = store.get("gov/proposal/add-bank-sg")
        assert proposal["status"] == "open" and len(proposal["approvals"]) == 3
        assert proposal["needed"] == 6
    finally:
        store.close()
    rebuilt = runner.invoke(app, ["rebuild", "--db", db])
    assert rebuilt.exit_code == 0 and "rebuilt" in rebuilt.output
    again = runner.invoke(app, ["audit", "--db", db, "--json"])
    assert json.loads(again.output)["ok"]
