"""Node settings, read from the environment (``TRADELEDGER_*``) or passed in."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class NodeConfig:
    """Where the node keeps its data and how it orders.

    ``database_url`` defaults to SQLite in ``data_dir``; set ``DATABASE_URL``
    for PostgreSQL. Limits are documented in specs/api.md#limits.
    """

    data_dir: Path
    genesis_path: Path
    node_key_path: Path
    node_org: str
    passphrase: str = field(repr=False)
    database_url: str = ""
    # The organisation's X25519 secret (a tradeledger-encryption-key/1 file):
    # with it the node checks the sealed details addressed to its organisation.
    encryption_key_path: Path | None = None
    block_max_txs: int = 2000
    block_interval: float = 0.05
    max_request_bytes: int = 4 * 1024 * 1024
    max_batch: int = 1000
    max_pending: int = 50_000

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'ledger.db'}"

    @classmethod
    def from_env(cls, **overrides: object) -> NodeConfig:
        env = os.environ
        data_dir = Path(str(overrides.pop("data_dir", env.get("TRADELEDGER_DATA", "var/node"))))
        values: dict[str, object] = {
            "data_dir": data_dir,
            "genesis_path": Path(env.get("TRADELEDGER_GENESIS", str(data_dir / "genesis.json"))),
            "node_key_path": Path(env.get("TRADELEDGER_NODE_KEY", str(data_dir / "node.key"))),
            "node_org": env.get("TRADELEDGER_ORG", ""),
            "passphrase": env.get("TRADELEDGER_PASSPHRASE", ""),
            "database_url": env.get("DATABASE_URL", ""),
        }
        if env.get("TRADELEDGER_ENCRYPTION_KEY"):
            values["encryption_key_path"] = Path(env["TRADELEDGER_ENCRYPTION_KEY"])
        if "TRADELEDGER_BLOCK_MAX_TXS" in env:
            values["block_max_txs"] = int(env["TRADELEDGER_BLOCK_MAX_TXS"])
        if "TRADELEDGER_BLOCK_INTERVAL" in env:
            values["block_interval"] = float(env["TRADELEDGER_BLOCK_INTERVAL"])
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
