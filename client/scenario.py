"""The demo scenario, written through the SDK as members would write it.

Idempotent per consortium: a scenario already on the ledger is not repeated.
It grows with each record family: today, every organisation enrols a second
member key (the key lifecycle).
"""

from __future__ import annotations

from typing import Any

from client.consortium import DEMO_DESCRIPTION, Consortium
from client.sdk import Client, TxBuilder
from ledger.keys import SigningKey, load_key, save_key


def seed_scenario(client: Client, consortium: Consortium, passphrase: str,
                  chain_id: str) -> dict[str, Any]:
    marker = consortium.root / "scenario.done"
    if marker.exists():
        return {"already_seeded": True, "last_tx": marker.read_text(encoding="utf-8").strip()}
    submitted = []
    for org in DEMO_DESCRIPTION["organisations"]:
        org_id = org["id"]
        admin = load_key(consortium.key_path(org_id, "admin"), passphrase)
        new_key = SigningKey.generate()
        save_key(consortium.key_path(org_id, "member2"), new_key, passphrase,
                 label=f"{org_id} member 2")
        tx = TxBuilder(admin, chain_id=chain_id).build(
            "membership.key_enrol",
            {"org": org_id, "public_key": new_key.public_key_hex, "kind": "member",
             "label": "member 2"})
        client.submit(tx)
        submitted.append(tx.tx_id_hex)
    statuses = [client.wait(t) for t in submitted]
    committed = [s for s in statuses if s["status"] == "committed"]
    marker.write_text(submitted[-1] + "\n", encoding="utf-8")
    return {"key_enrolments": len(committed), "last_tx": submitted[-1]}
