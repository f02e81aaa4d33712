"""The async SDK against the real app (ASGI transport, orderer thread running)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from client.sdk import AsyncClient
from node.app import create_app
from tests.helpers import enrol_tx, make_node


def test_async_client_submits_waits_and_verifies(demo_consortium: Any, tmp_path: Any) -> None:
    node = make_node(demo_consortium, f"sqlite:///{tmp_path / 'a.db'}", block_interval=0.01)
    app = create_app(node, start_orderer=False)
    _c, genesis, orgs = demo_consortium
    node.start()

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient(http=httpx.AsyncClient(transport=transport,
                                                      base_url="http://node"),
                               genesis=genesis.to_bytes(), key=orgs["warehouse"].member
                               ) as client:
            txs = [enrol_tx(demo_consortium, "warehouse") for _ in range(3)]
            results = await client.submit_batch(txs[:2])
            assert [r["status"] for r in results] == ["pending", "pending"]
            assert (await client.submit(txs[2]))["status"] == "pending"
            statuses = await asyncio.gather(*(client.wait(t.tx_id_hex, timeout=10)
                                              for t in txs))
            assert {s["status"] for s in statuses} == {"committed"}
            record = await client.verified_record(txs[1].tx_id_hex)
            assert record.body["payload"]["org"] == "warehouse"

    try:
        asyncio.run(scenario())
    finally:
        node.stop()
