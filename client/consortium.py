"""Creating a consortium: keys for every organisation and the genesis file.

A description (YAML or TOML) names the chain, the organisations and their
roles, and the quorum. ``init`` generates each organisation's admin key, its
member keys, its X25519 encryption key for sealed trade details and, for
validators, a node key, all encrypted at rest, and signs the genesis with the
platform's admin key.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from ledger.chain import Genesis, make_genesis
from ledger.errors import MalformedRecord
from ledger.keys import EncryptionKey, SigningKey, save_encryption_key, save_key

DESCRIPTION_KEYS = {"chain_id", "name", "organisations", "quorum", "policy"}
ORG_KEYS = {"id", "name", "country", "roles", "members", "node"}


@dataclass(frozen=True)
class Consortium:
    """Paths of a consortium directory made by :func:`init_consortium`."""

    root: Path

    @property
    def genesis_path(self) -> Path:
        return self.root / "genesis.json"

    def key_path(self, org: str, name: str) -> Path:
        return self.root / "keys" / org / f"{name}.key"

    def encryption_key_path(self, org: str) -> Path:
        """The organisation's X25519 secret for opening sealed details."""
        return self.key_path(org, "encryption")


def read_description(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise MalformedRecord(f"cannot parse {path.name}: {exc}", field="description",
                              rule="syntax") from exc
    if not isinstance(data, dict):
        raise MalformedRecord("must be a mapping", field="description", rule="object")
    return data


def init_consortium(description: Mapping[str, Any], out: Path, *, passphrase: str,
                    time: datetime) -> tuple[Consortium, Genesis]:
    """Generate keys under ``out/keys`` and write ``out/genesis.json``."""
    unknown = set(description) - DESCRIPTION_KEYS
    if unknown:
        raise MalformedRecord("is not a known member", field=sorted(unknown)[0],
                              rule="unknown_field")
    orgs = description.get("organisations")
    if not isinstance(orgs, list) or not orgs:
        raise MalformedRecord("must list at least one organisation", field="organisations",
                              rule="required")
    consortium = Consortium(out)
    validators = set((description.get("quorum") or {}).get("validators", []))
    founder: SigningKey | None = None
    payload_orgs: list[dict[str, Any]] = []
    for i, org in enumerate(orgs):
        if not isinstance(org, dict):
            raise MalformedRecord("must be a mapping", field=f"organisations[{i}]",
                                  rule="object")
        extra = set(org) - ORG_KEYS
        if extra:
            raise MalformedRecord("is not a known member",
                                  field=f"organisations[{i}].{sorted(extra)[0]}",
                                  rule="unknown_field")
        org_id = str(org.get("id", ""))
        admin = SigningKey.generate()
        save_key(consortium.key_path(org_id, "admin"), admin, passphrase,
                 label=f"{org_id} admin")
        members = []
        for m in range(int(org.get("members", 1))):
            key = SigningKey.generate()
            save_key(consortium.key_path(org_id, f"member{m + 1}"), key, passphrase,
                     label=f"{org_id} member {m + 1}")
            members.append(key.public_key_hex)
        node_keys = []
        if org.get("node", org_id in validators):
            node = SigningKey.generate()
            save_key(consortium.key_path(org_id, "node"), node, passphrase,
                     label=f"{org_id} node")
            node_keys.append(node.public_key_hex)
        encryption = EncryptionKey.generate()
        save_encryption_key(consortium.encryption_key_path(org_id), encryption, passphrase,
                            label=f"{org_id} encryption")
        roles = list(org.get("roles", []))
        if "platform" in roles and founder is None:
            founder = admin
        payload_orgs.append({
            "id": org_id, "name": str(org.get("name", org_id)),
            "country": str(org.get("country", "")), "roles": roles,
            "admin_keys": [admin.public_key_hex], "member_keys": members,
            "node_keys": node_keys, "encryption_key": encryption.public_key_hex,
        })
    if founder is None:
        raise MalformedRecord("one organisation must hold the platform role",
                              field="organisations", rule="platform_required")
    payload = {
        "chain_id": description.get("chain_id"),
        "name": description.get("name", description.get("chain_id")),
        "organisations": payload_orgs,
        "quorum": description.get("quorum"),
        "policy": description.get("policy", {}),
    }
    genesis = make_genesis(payload, founder=founder, time=time)
    out.mkdir(parents=True, exist_ok=True)
    consortium.genesis_path.write_bytes(genesis.to_bytes())
    (out / "consortium.json").write_text(json.dumps(description, indent=2, default=str) + "\n",
                                         encoding="utf-8")
    return consortium, genesis


DEMO_DESCRIPTION: dict[str, Any] = {
    "chain_id": "tradeledger-demo",
    "name": "TradeLedger demonstration consortium",
    "quorum": {"validators": ["platform"], "threshold": 1},
    "policy": {},
    "organisations": [
        {"id": "platform", "name": "TradeLedger Platform", "country": "SG",
         "roles": ["platform"], "node": True},
        {"id": "bank-asia", "name": "Harbour Bank Asia", "country": "HK", "roles": ["bank"]},
        {"id": "bank-eu", "name": "Rhine Trade Bank", "country": "DE", "roles": ["bank"]},
        {"id": "supplier-sz", "name": "Shenzhen Bright Electronics", "country": "CN",
         "roles": ["supplier"]},
        {"id": "supplier-hcm", "name": "Saigon Textile Works", "country": "VN",
         "roles": ["supplier"]},
        {"id": "supplier-izmir", "name": "Izmir Olive Cooperative", "country": "TR",
         "roles": ["supplier"]},
        {"id": "buyer-rotterdam", "name": "Lowlands Retail BV", "country": "NL",
         "roles": ["buyer"]},
        {"id": "buyer-lyon", "name": "Maison Rhone SARL", "country": "FR", "roles": ["buyer"]},
        {"id": "logistics", "name": "Blue Lane Forwarding", "country": "SG",
         "roles": ["logistics"]},
        {"id": "warehouse", "name": "Rotterdam Bonded Warehouse", "country": "NL",
         "roles": ["warehouse"]},
        {"id": "inspector", "name": "Global Inspection Agency", "country": "CH",
         "roles": ["inspector"]},
    ],
}
