"""Rating benchmark: query latency at 10^3 and 10^6 invoices, and the indexers' cost per block.

Run: ``.venv/bin/python bench/rating.py`` (``--quick``: up to 10^5 invoices).

1. **Query.** One buyer, 20 suppliers, invoices spread over the 36 months up
   to 2026-06-30 (so two thirds fall in the 24-month window); 86 % paid in
   one part, 8 % in two parts, 6 % still open (some overdue, some not yet
   due), 2 % disputed; one supplier is a related party. The aggregates are
   built by :func:`ledger.ratings.apply_experience`, the function the
   indexers call, fed each invoice in its final form on the date of its last
   event, in date order: the sums, late-day multisets, open-day maps and
   pruning come out exactly as from the block-by-block indexers. Because each
   invoice is applied once, its ``ratings/exp/`` record is never read back
   and is not kept, which bounds memory. Then ``rating()`` runs 2,000 times
   at as-of dates spread over the 60 days after the last event, from memory
   and from a SQLite store holding the same keys, at 10^3, 10^4, 10^5 and
   10^6 invoices. Target: p99 <= 5 ms, flat in history length. A query reads
   the month summaries, the related supplier's records and at most 5 summed
   day maps (specs/ratings.md#query); a sparse history (10^3) fills fewer
   months and rankings, so the cost rises a little until they are full.
   **Cap case.** The same at 10^3 and 10^5 invoices for a buyer whose first
   supplier carries about 60 % of the weight: the supplier cap binds, so the
   query weighs every supplier and reads the capped supplier's records too
   (the slower path of specs/ratings.md#query, step 4).
2. **Update cost.** The real executor on a consortium whose buyer already
   holds the 10^6-invoice aggregates: blocks of 50 invoices and 50 payments,
   each block timed with the ratings indexers and again without them
   (signatures verified beforehand, as on a node after intake).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import report, steal_ms
from ledger import ratings as rt
from ledger.chain import make_genesis
from ledger.contracts import INDEXERS
from ledger.encoding import canonical, loads_trusted
from ledger.executor import BlockContext, VerifiedSignatures, execute_block
from ledger.keys import SigningKey
from ledger.state import MemoryState, StateReader
from ledger.store import Store
from ledger.tx import SignedTx, make_body, sign_tx

BUYER = "buyer-big"
SUPPLIERS = [f"supplier-{i:02d}" for i in range(20)]
RELATED = [[BUYER, SUPPLIERS[-1]]]
AS_OF = date(2026, 6, 30)
START = date(2023, 7, 1)
TIME_LIMIT = 600.0


class BenchState:
    """State written through ``apply_experience``; ``ratings/exp/`` records are not kept."""

    def __init__(self) -> None:
        self.items: dict[str, bytes] = {
            "consortium": canonical({"policy": {"related_parties": RELATED}}),
        }
        self.reads = 0

    def get_raw(self, key: str) -> bytes | None:
        self.reads += 1
        return self.items.get(key)

    def get(self, key: str) -> Any:
        raw = self.items.get(key)
        return None if raw is None else loads_trusted(raw)

    def put(self, key: str, value: object) -> None:
        if not key.startswith("ratings/exp/"):
            self.items[key] = canonical(value)

    def delete(self, key: str) -> None:
        self.items.pop(key, None)


def build(n: int, seed: int = 7, *, dominant: bool = False) -> tuple[BenchState, float]:
    """Apply ``n`` invoices of BUYER, day by day; return the state and seconds taken.

    ``dominant``: the first supplier issues 60 % of the invoices (the cap binds).
    """
    rng = random.Random(seed)
    state = BenchState()
    days = (AS_OF - START).days + 1
    seq = 0
    deadline = time.perf_counter() + TIME_LIMIT
    start = time.perf_counter()
    for offset in range(days):
        today = START + timedelta(days=offset)
        count = n * (offset + 1) // days - n * offset // days
        for _ in range(count):
            seq += 1
            if dominant and rng.random() < 0.6:
                supplier = SUPPLIERS[0]
            else:
                supplier = SUPPLIERS[rng.randrange(len(SUPPLIERS))]
            weight = rng.randint(10_000, 5_000_000)
            r = rng.random()
            settled: tuple[tuple[int, date], ...] = ()
            open_weight = 0
            if r < 0.06:
                # Issued today and never paid: overdue later, or not yet due.
                due = today + timedelta(days=rng.choice((0, 15, 30, 45, 60, 90)))
                open_weight = weight
            else:
                delay = rng.choice((rng.randint(-30, 0), rng.randint(0, 30),
                                    rng.randint(30, 150), 0))
                due = today - timedelta(days=delay)
                if r < 0.14:
                    part = weight // rng.randint(2, 5)
                    earlier = today - timedelta(days=rng.randint(0, 60))
                    settled = ((part, earlier), (weight - part, today))
                else:
                    settled = ((weight, today),)
            experience = rt.Experience(BUYER, supplier, "invoice", due, settled, open_weight,
                                       disputed=rng.random() < 0.02)
            rt.apply_experience(state, today, "invoice", f"INV-{seq:08d}", experience)
        if time.perf_counter() > deadline:
            raise SystemExit(f"building {n} invoices passed {TIME_LIMIT:.0f} s at {seq}")
    return state, time.perf_counter() - start


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return (statistics.median(ordered),
            ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))])


def time_queries(reader: StateReader, queries: int, seed: int = 11
                 ) -> tuple[float, float, rt.Rating | rt.Insufficient]:
    rng = random.Random(seed)
    as_ofs = [AS_OF + timedelta(days=rng.randint(0, 60)) for _ in range(queries)]
    for as_of in as_ofs[:50]:  # warm-up: caches, the first SQLite pages
        rt.rating(reader, BUYER, as_of, 1)
    gc.collect()
    samples = []
    result: rt.Rating | rt.Insufficient | None = None
    for as_of in as_ofs:
        t0 = time.perf_counter()
        result = rt.rating(reader, BUYER, as_of, 1)
        samples.append((time.perf_counter() - t0) * 1000)
    assert result is not None
    p50, p99 = percentiles(samples)
    return p50, p99, result


def query_bench(n: int, queries: int, *, dominant: bool = False
                ) -> tuple[dict[str, Any], BenchState]:
    state, build_s = build(n, dominant=dominant)
    mem_p50, mem_p99, result = time_queries(state, queries)
    state.reads = 0
    rt.rating(state, BUYER, AS_OF + timedelta(days=17), 1)
    reads = state.reads
    keys = sum(1 for k in state.items if k.startswith("ratings/"))
    size = sum(len(v) for k, v in state.items.items() if k.startswith("ratings/"))
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/rating.db")
        store.create()
        store.write_derived(state.items, {}, [])
        stolen = steal_ms()
        db_p50, db_p99, db_result = time_queries(store, queries)
        stolen = steal_ms() - stolen
        store.close()
    assert db_result == result
    assert isinstance(result, rt.Rating)
    return {
        "invoices": n, "build_s": round(build_s, 1),
        "build_us_per_invoice": round(build_s / n * 1e6, 1),
        "memory_p50_ms": round(mem_p50, 3), "memory_p99_ms": round(mem_p99, 3),
        "sqlite_p50_ms": round(db_p50, 3), "sqlite_p99_ms": round(db_p99, 3),
        "sqlite_steal_ms": round(stolen),
        "state_reads_per_query": reads, "ratings_keys": keys, "ratings_bytes": size,
        "score": result.score, "counted_invoices": result.factors.invoices,
        "capped_suppliers": result.factors.capped_suppliers,
    }, state


# -- the incremental cost per block -----------------------------------------------------


def block_bench(aggregates: BenchState, blocks: int, per_block: int) -> dict[str, Any]:
    keys = {org: SigningKey(bytes([i + 1]) * 32)
            for i, org in enumerate(["platform", BUYER, *SUPPLIERS])}
    node = SigningKey(bytes([250]) * 32)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    genesis = make_genesis({
        "chain_id": "rating-bench", "name": "Rating bench",
        "organisations": [
            {"id": org, "name": org, "roles": ["platform"] if org == "platform" else
             ["buyer"] if org == BUYER else ["supplier"],
             "admin_keys": [k.public_key_hex],
             "node_keys": [node.public_key_hex] if org == "platform" else []}
            for org, k in keys.items()],
        "quorum": {"validators": ["platform"], "threshold": 1},
        "policy": {"related_parties": RELATED},
    }, founder=keys["platform"], time=t0)
    state = MemoryState({k: v for k, v in genesis.state_writes.items() if v is not None})
    # The buyer's aggregates at 10^6 invoices (the consortium record stays genesis's).
    state.apply({k: v for k, v in aggregates.items.items() if k.startswith("ratings/")})
    verified = VerifiedSignatures()
    nonce = 0

    def signed(day: date, txs: Sequence[tuple[str, dict[str, Any], tuple[str, ...]]]
               ) -> tuple[list[SignedTx], BlockContext]:
        nonlocal nonce
        at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        out = []
        for tx_type, payload, orgs in txs:
            nonce += 1
            body = make_body(tx_type=tx_type, chain_id="rating-bench", author=keys[orgs[0]],
                             payload=payload, nonce=f"bench-{nonce:08d}", created_at=at)
            tx = sign_tx(body, [keys[o] for o in orgs])
            verified.add_tx(tx)
            out.append(tx)
        return out, BlockContext("rating-bench", height, at)

    def run(txs: list[SignedTx], ctx: BlockContext, *, indexers: bool) -> tuple[Any, float]:
        saved = {t: list(fns) for t, fns in INDEXERS.items()}
        if not indexers:
            for t in INDEXERS:
                INDEXERS[t] = [f for f in INDEXERS[t] if not f.__module__.endswith("ratings")]
        try:
            start = time.perf_counter()
            execution = execute_block(state, txs, ctx, verified=verified)
            return execution, (time.perf_counter() - start) * 1000
        finally:
            INDEXERS.clear()
            INDEXERS.update(saved)

    half = per_block // 2
    day = AS_OF
    height = 1
    orders: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [("trade.order", {"order_id": f"PO-{s}", "buyer": BUYER, "seller": s,
                               "currency": "USD", "total": 2**52}, (BUYER, s))
              for s in SUPPLIERS]
    txs, ctx = signed(day, orders)
    execution, _ = run(txs, ctx, indexers=True)
    state.apply(execution.state.writes)
    previous: list[str] = []
    on: list[float] = []
    off: list[float] = []
    rng = random.Random(5)
    for b in range(blocks + 1):
        height += 1
        day += timedelta(days=1)
        batch: list[tuple[str, dict[str, Any], tuple[str, ...]]] = []
        ids = [f"BINV-{b:04d}-{i:03d}" for i in range(half)]
        for invoice_id in ids:
            seller = SUPPLIERS[rng.randrange(len(SUPPLIERS))]
            batch.append(("trade.invoice", {
                "invoice_id": invoice_id, "order_id": f"PO-{seller}",
                "amount": rng.randint(10_000, 5_000_000), "currency": "USD",
                "issue_date": day.isoformat(),
                "due_date": (day + timedelta(days=rng.choice((0, 1)))).isoformat(),
                "payment_terms": "NET0"}, (seller,)))
        for invoice_id in previous:
            record = loads_trusted(state.get_raw(f"trade/invoice/{invoice_id}") or b"{}")
            batch.append(("trade.payment", {
                "payment_id": f"P-{invoice_id}", "invoice_id": invoice_id,
                "amount": record["open"], "currency": "USD",
                "value_date": day.isoformat()}, (BUYER,)))
        txs, ctx = signed(day, batch)
        execution, ms_on = run(txs, ctx, indexers=True)
        assert not execution.refused, execution.refused[0].error.to_problem()
        _, ms_off = run(txs, ctx, indexers=False)
        state.apply(execution.state.writes)
        previous = ids
        if b:  # block 0 has no payments yet
            on.append(ms_on)
            off.append(ms_off)
    with_idx, without = statistics.median(on), statistics.median(off)
    result = rt.rating(state, BUYER, day, height)
    assert isinstance(result, rt.Rating)
    return {"blocks": blocks, "txs_per_block": per_block,
            "block_ms_with_indexers": round(with_idx, 2),
            "block_ms_without_indexers": round(without, 2),
            "indexer_us_per_tx": round((with_idx - without) / per_block * 1000, 1),
            "indexer_share_percent": round(100 * (with_idx - without) / with_idx, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="up to 10^5 invoices only")
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    sizes = (1_000, 10_000, 100_000) if args.quick else (1_000, 10_000, 100_000, 1_000_000)
    results = []
    big: BenchState | None = None
    for n in sizes:
        big = None  # free the previous history before building the next
        figures, big = query_bench(n, args.queries)
        results.append(figures)
    assert big is not None
    blocks = block_bench(big, blocks=20, per_block=100)
    big = None
    capped = [query_bench(n, args.queries, dominant=True)[0] for n in (1_000, 100_000)]
    assert all(r["capped_suppliers"] for r in capped)
    small, large = results[0], results[-1]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ratio = large["sqlite_p99_ms"] / small["sqlite_p99_ms"]
    ratio_top = large["sqlite_p99_ms"] / results[-2]["sqlite_p99_ms"]
    rows: list[tuple[str, str, str]] = []
    for r in results:
        label = f"{r['invoices']:,} invoices"
        rows += [
            (f"query p50 / p99, memory, {label}",
             f"{r['memory_p50_ms']:.3f} / {r['memory_p99_ms']:.3f}", "ms"),
            (f"query p50 / p99, SQLite, {label}",
             f"{r['sqlite_p50_ms']:.3f} / {r['sqlite_p99_ms']:.3f}",
             f"ms (target p99 <= 5; {r['sqlite_steal_ms']} ms of CPU stolen by the host)"),
            (f"state reads per query, {label}", str(r["state_reads_per_query"]),
             f"{r['ratings_keys']} ratings keys, {r['ratings_bytes']:,} bytes"),
            (f"build, {label}", f"{r['build_s']:.1f}",
             f"s ({r['build_us_per_invoice']} us per invoice via apply_experience)"),
        ]
    for r in capped:
        rows.append((f"cap case: query p50 / p99, SQLite, {r['invoices']:,} invoices",
                     f"{r['sqlite_p50_ms']:.3f} / {r['sqlite_p99_ms']:.3f}",
                     f"ms ({r['capped_suppliers']} supplier capped; "
                     f"{r['state_reads_per_query']} reads; {r['sqlite_steal_ms']} ms stolen)"))
    rows += [
        (f"SQLite p99 ratio, {large['invoices']:,} / {small['invoices']:,}", f"{ratio:.2f}",
         "x"),
        (f"SQLite p99 ratio, {large['invoices']:,} / {results[-2]['invoices']:,}",
         f"{ratio_top:.2f}", "x (flat = about 1)"),
        ("block of 100 txs, with indexers", f"{blocks['block_ms_with_indexers']:.2f}", "ms"),
        ("block of 100 txs, without indexers", f"{blocks['block_ms_without_indexers']:.2f}",
         "ms"),
        ("ratings indexers per tx", f"{blocks['indexer_us_per_tx']:.1f}",
         f"us ({blocks['indexer_share_percent']}% of block execution)"),
        ("peak RSS", f"{rss_mb:.0f}", "MB"),
        ("load average at the end (2 cores)", f"{os.getloadavg()[0]:.2f}",
         "other processes inflate p99"),
    ]
    report("Buyer rating: query latency and incremental update cost", rows,
           {"query": results, "cap_case": capped, "blocks": blocks,
            "peak_rss_mb": round(rss_mb),
            "p99_ratio_largest_to_smallest": round(ratio, 2),
            "p99_ratio_largest_to_previous": round(ratio_top, 2)})


if __name__ == "__main__":
    main()
