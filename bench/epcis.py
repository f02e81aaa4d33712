"""EPCIS benchmark: shipment events ingested per second and EPC history query latency.

Starts a real node (uvicorn, SQLite, solo ordering) in a child process on
127.0.0.1 and submits pre-signed ``shipments.capture`` transactions over HTTP in
batches (``--events-per-tx`` events per transaction, ``--txs-per-request``
transactions per request, two client threads). Events carry no eventID, so the
node computes each CBV 2.0 event hash. Every event names two EPCs out of
``events / 5``, so each EPC has a history of ten events at 10^5 events.

Then it reads random EPC histories from the same node over HTTP with signed
requests (``GET /v1/epcis/events?epc=``, one client) and prints p50/p99 latency,
next to the validator's own events/s measured in the same run.

Target: >= 2,000 events/s ingested. Run: ``.venv/bin/python bench/epcis.py [--quick]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench import node as node_bench
from bench.common import consortium, rate, report
from bench.node import TIME_LIMIT, batch_lanes, post_batches, start_node, wait_all
from client.sdk import RequestSigner
from ledger.epcis import validate_document
from ledger.tx import SignedTx, make_body, sign_tx

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
STEPS = ("departing", "arriving", "storing", "loading", "unloading")


def epc(i: int) -> str:
    return f"urn:epc:id:sgtin:4012345.012345.{i}"


def make_events(n: int, base: datetime) -> list[dict[str, Any]]:
    epcs = max(2, n // 5)
    return [{
        "type": "ObjectEvent", "eventTime": (base + timedelta(milliseconds=k)).isoformat(),
        "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "bizStep": STEPS[k % len(STEPS)],
        "disposition": "in_progress",
        "epcList": [epc(k % epcs), epc((k + epcs // 2) % epcs)],
        "readPoint": {"id": f"urn:epc:id:sgln:4012345.{k % 50:05d}.0"},
        "bizTransactionList": [{"type": "po",
                                "bizTransaction": f"urn:tradeledger:order:PO-{k // 1000}"}],
    } for k in range(n)]


def document(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {"@context": [CONTEXT], "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": "2026-01-01T00:00:00Z", "epcisBody": {"eventList": events}}


def make_txs(genesis: Any, key: Any, events: list[dict[str, Any]], per_tx: int
             ) -> list[SignedTx]:
    now = datetime.now(UTC).replace(microsecond=0)
    out = []
    for i in range(0, len(events), per_tx):
        body = make_body(tx_type="shipments.capture", chain_id=genesis.chain_id, author=key,
                         payload={"epcis": document(events[i:i + per_tx])},
                         nonce=f"epcis-{i:010d}", created_at=now, ttl=timedelta(hours=2))
        out.append(sign_tx(body, [key]))
    return out


def ingest(base: str, txs: list[SignedTx], per_request: int, threads: int) -> float:
    """Seconds from the first request until the last transaction is committed."""
    errors: list[str] = []
    start = time.monotonic()
    pool = [threading.Thread(target=post_batches, args=(base, lane, errors),
                             kwargs={"timeout": 120})
            for lane in batch_lanes(txs, per_request, threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=TIME_LIMIT)
    if errors:
        raise RuntimeError(errors[0])
    return wait_all(base, txs, start) - start


def query_latencies(base: str, signer: Any, epcs: int, samples: int
                    ) -> tuple[list[float], int]:
    """Latencies (s) of signed EPC history queries to the live node; and the number of
    events the last answer held."""
    rng = random.Random(7)
    out: list[float] = []
    found = 0
    with httpx.Client(base_url=base, timeout=30, auth=signer) as http:
        for _ in range(samples):
            target = epc(rng.randrange(epcs))
            t0 = time.perf_counter()
            r = http.get("/v1/epcis/events", params={"epc": target})
            out.append(time.perf_counter() - t0)
            if r.status_code != 200:
                raise RuntimeError(r.text[:300])
            found = len(r.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"])
    return out, found


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10^4 events instead of 10^5")
    parser.add_argument("--events", type=int, default=0)
    parser.add_argument("--events-per-tx", type=int, default=100)
    parser.add_argument("--txs-per-request", type=int, default=10)
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    n = args.events or (10_000 if args.quick else 100_000)
    base_time = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    events = make_events(n, base_time)
    sample = document(events[:5000])
    validate_rate = rate(len(sample["epcisBody"]["eventList"]),
                         lambda: validate_document(sample))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        c, genesis, keys = consortium(root / "consortium")
        member = keys["logistics"]["member1"]
        txs = make_txs(genesis, member, events, args.events_per_tx)
        # Requests are signed by the recording organisation (specs/api.md#signed-requests).
        node_bench.SIGNER = RequestSigner(member, chain_id=genesis.chain_id)
        with start_node(root, c) as base:
            seconds = ingest(base, txs, args.txs_per_request, threads=2)
            latencies, found = query_latencies(base, node_bench.SIGNER, max(2, n // 5),
                                               args.queries)
    ingested = n / seconds
    p50 = statistics.median(latencies) * 1000
    p99 = pct(latencies, 0.99)
    data = {"events": n, "events_per_tx": args.events_per_tx,
            "txs_per_request": args.txs_per_request, "ingest_seconds": seconds,
            "ingested_events_per_s": ingested, "validate_events_per_s": validate_rate,
            "query_p50_ms": p50, "query_p99_ms": p99, "queries": len(latencies),
            "events_per_history": found, "database": "sqlite"}
    rows = [
        ("validator alone (1 core)", f"{validate_rate:,.0f} ev/s",
         "validate + CBV 2.0 hash, same run"),
        (f"ingested over HTTP ({n:,} events)", f"{ingested:,.0f} ev/s",
         f"{ingested / validate_rate:.2f} x validator  (target >= 2,000 ev/s)"),
        ("EPC history query p50", f"{p50:.2f} ms",
         f"{len(latencies)} queries, {found} events each, at {n:,} events"),
        ("EPC history query p99", f"{p99:.2f} ms", ""),
    ]
    report("TradeLedger EPCIS benchmark (sqlite, solo ordering)", rows, data)


if __name__ == "__main__":
    main()
