"""Core benchmark: signature envelope cost, Merkle log at 10^6 leaves, audit speed.

Run: ``.venv/bin/python bench/core.py`` (add ``--quick`` for a smaller run).
Prints figures and the ratios the targets are stated in:

* signed-tx verification >= 0.8 x raw PyNaCl verify (same run);
* proof size <= 1 KB at 10^6 leaves;
* audit >= 1.5 x the single-core raw verify rate, on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    consortium,
    parallel_raw_verify_rate,
    rate,
    raw_verify_rate,
    report,
)
from ledger import merkle
from ledger.audit import audit
from ledger.chain import build_block
from ledger.executor import VerifiedSignatures
from ledger.keys import Domain, SigningKey, verify
from ledger.state import CachedState
from ledger.store import Store, StoreNodes
from ledger.tx import SignedTx, make_body, sign_tx


def enrolments(genesis, keys, n: int, start) -> list[SignedTx]:  # type: ignore[no-untyped-def]
    orgs = sorted(keys)
    txs = []
    for i in range(n):
        org = orgs[i % len(orgs)]
        new = SigningKey((i + 1).to_bytes(32, "big"))
        body = make_body(tx_type="membership.key_enrol", chain_id=genesis.chain_id,
                         author=keys[org]["admin"],
                         payload={"org": org, "public_key": new.public_key_hex,
                                  "kind": "member"},
                         nonce=f"bench-{i:08d}", created_at=start, ttl=timedelta(hours=23))
        txs.append(sign_tx(body, [keys[org]["admin"]]))
    return txs


def bench_envelope(txs: list[SignedTx], keys) -> dict[str, float]:  # type: ignore[no-untyped-def]
    directory = {k.key_id: k.public_key for org in keys.values() for k in org.values()}
    stored = [(t.body_bytes, t.signatures) for t in txs]
    wires = [t.to_wire() for t in txs]
    raw = raw_verify_rate(len(txs))

    def from_stored() -> None:
        import hashlib

        for body, sigs in stored:
            tx_id = hashlib.sha256(body).digest()
            for s in sigs:
                verify(directory[s.key_id], Domain.TX, tx_id, s.signature)

    def from_wire() -> None:
        for w in wires:
            tx = SignedTx.from_wire(w)
            for s in tx.signatures:
                verify(directory[s.key_id], Domain.TX, tx.tx_id, s.signature)

    stored_rate = rate(len(stored), from_stored)
    wire_rate = rate(len(wires), from_wire)
    return {"raw_verify_per_s": raw, "signed_tx_verify_per_s": stored_rate,
            "intake_from_json_per_s": wire_rate}


def bench_encoding(txs: list[SignedTx]) -> dict[str, float]:
    """Canonical encodings per second of transaction bodies: ``canonical`` (its
    fast path) against the module's own RFC 8785 writer, which it must equal."""
    from ledger.encoding import canonical, canonical_exact, loads_trusted

    bodies = [loads_trusted(t.body_bytes) for t in txs]
    assert all(canonical(b) == canonical_exact(b) == t.body_bytes
               for b, t in zip(bodies, txs, strict=True))

    def fast() -> None:
        for b in bodies:
            canonical(b)

    def exact() -> None:
        for b in bodies:
            canonical_exact(b)

    def stdlib() -> None:  # the standard library's C encoder, which gives the same bytes here
        for b in bodies:
            json.dumps(b, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    assert json.dumps(bodies[0], sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode() == txs[0].body_bytes
    return {"canonical_per_s": rate(len(bodies), fast),
            "canonical_exact_per_s": rate(len(bodies), exact),
            "canonical_stdlib_per_s": rate(len(bodies), stdlib)}


def bench_merkle(leaves: int, ops: int) -> dict[str, float]:
    store = merkle.MemoryNodeStore()
    tree = merkle.MerkleTree(store, 0)
    batch = 65_536
    t0 = time.perf_counter()
    for start in range(0, leaves, batch):
        tree.append_leaf_hashes([merkle.leaf_hash(i.to_bytes(8, "big"))
                                 for i in range(start, min(start + batch, leaves))])
    fill = time.perf_counter() - t0
    rng = random.Random(7)
    sizes = []

    def append_and_prove() -> None:
        for i in range(ops):
            index = tree.append(b"op-%d" % i)
            proof = tree.inclusion_proof(rng.randrange(index + 1))
            sizes.append(len(proof))

    per_s = rate(ops, append_and_prove)
    # Check the last proof really verifies, so the figure is for correct work.
    n = tree.size
    idx = n // 3
    proof = tree.inclusion_proof(idx)
    merkle.verify_inclusion(merkle.leaf_hash(idx.to_bytes(8, "big")), idx, n, proof, tree.root())
    worst = max(len(tree.inclusion_proof(i)) for i in (0, n // 2, n - 1))
    return {"leaves": n, "fill_leaves_per_s": leaves / fill, "append_prove_per_s": per_s,
            "proof_bytes_max": 32 * max(worst, max(sizes)),
            "consistency_bytes": 32 * len(tree.consistency_proof(n // 2))}


def build_chain(root: Path, n: int, per_block: int) -> tuple[Store, float]:
    _c, genesis, keys = consortium(root / "consortium")
    store = Store(f"sqlite:///{root / 'chain.db'}")
    store.create()
    store.commit_genesis(genesis)
    txs = enrolments(genesis, keys, n, genesis.header.time)
    nodes = StoreNodes(store)
    state = CachedState(store)
    tree = merkle.MerkleTree(nodes, 1)
    head = genesis.header
    node_key = keys["platform"]["node"]
    from ledger.block import sign_checkpoint

    t0 = time.perf_counter()
    for start in range(0, n, per_block):
        verified = VerifiedSignatures()
        batch = txs[start:start + per_block]
        for t in batch:
            verified.add_tx(t)  # signatures were made here; audit re-checks them all
        built = build_block(prev=head, state=state, tree=tree, txs=batch,
                            time=head.time + timedelta(seconds=1), proposer=node_key.key_id,
                            verified=verified)
        assert not built.refused, built.refused[0].error
        store.commit_block(built, [sign_checkpoint(built.header, node_key, "platform")])
        nodes.take_pending()
        state.committed(built.state_writes)
        head = built.header
    return store, n / (time.perf_counter() - t0)


def signature_stage_rate(store: Store, workers: int) -> float:
    """The audit's parallel stage alone: tx ids and signatures of the whole chain,
    checked by ``workers`` processes with the audit's own worker function."""
    from concurrent.futures import ProcessPoolExecutor

    from ledger.audit import _init_worker, _iter_txs, _key_hints, _verify_chunk

    rows = [(body, sigs) for _seq, _tid, _h, body, sigs in _iter_txs(store)]
    chunks = [rows[i:i + 2000] for i in range(0, len(rows), 2000)]
    hints = _key_hints(store)
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                             initargs=(hints,)) as pool:
        list(pool.map(_verify_chunk, [[]] * workers))  # start the workers first
        start = time.perf_counter()
        checked = sum(len(r) for r in pool.map(_verify_chunk, chunks))
        elapsed = time.perf_counter() - start
    assert checked == len(rows), f"{len(rows) - checked} signatures failed"
    return len(rows) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes for a smoke run")
    args = parser.parse_args()
    chain_txs = 10_000 if args.quick else 100_000
    leaves = 100_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _c, genesis, keys = consortium(root / "envelope")
        sample = enrolments(genesis, keys, 20_000, genesis.header.time)
        env = bench_envelope(sample, keys)
        enc = bench_encoding(sample)
        mk = bench_merkle(leaves, 20_000)
        store, build_rate = build_chain(root, chain_txs, 1000)
        # Default: one signature-checking process per spare core, the main
        # process replaying contracts; then everything in one process.
        result = audit(store)
        assert result.ok, result.finding
        single = audit(store, workers=0)
        assert single.ok
        stage = signature_stage_rate(store, os.cpu_count() or 1)
        parallel_raw = parallel_raw_verify_rate(os.cpu_count() or 1)
        store.close()
    raw = env["raw_verify_per_s"]
    data = {**env, **enc, **{f"merkle_{k}": v for k, v in mk.items()},
            "chain_txs": chain_txs, "chain_build_tx_per_s": build_rate,
            "audit_tx_per_s": result.tx_per_second,
            "audit_one_process_tx_per_s": single.tx_per_second,
            "audit_signature_stage_per_s": stage,
            "raw_verify_all_cores_per_s": parallel_raw,
            "cores": os.cpu_count()}
    rows = [
        ("raw PyNaCl verify (1 core)", f"{raw:,.0f}/s", "the ceiling"),
        (f"raw verify, {os.cpu_count()} processes at once", f"{parallel_raw:,.0f}/s",
         f"{parallel_raw / raw:.2f} x 1 core: this machine's parallel ceiling"),
        ("signed-tx verify (stored bytes)", f"{env['signed_tx_verify_per_s']:,.0f}/s",
         f"{env['signed_tx_verify_per_s'] / raw:.2f} x raw  (target >= 0.80)"),
        ("intake from JSON (parse+verify)", f"{env['intake_from_json_per_s']:,.0f}/s",
         f"{env['intake_from_json_per_s'] / raw:.2f} x raw"),
        ("canonical encoding of a tx body", f"{enc['canonical_per_s']:,.0f}/s",
         f"{enc['canonical_per_s'] / enc['canonical_stdlib_per_s']:.1f} x the stdlib encoder "
         f"({enc['canonical_stdlib_per_s']:,.0f}/s), {enc['canonical_per_s'] / enc['canonical_exact_per_s']:.1f} x "
         f"the reference writer ({enc['canonical_exact_per_s']:,.0f}/s); same bytes"),
        (f"Merkle fill to {mk['leaves']:,} leaves", f"{mk['fill_leaves_per_s']:,.0f}/s", ""),
        ("Merkle append+prove", f"{mk['append_prove_per_s']:,.0f}/s",
         f"at {mk['leaves']:,} leaves"),
        ("inclusion proof size", f"{mk['proof_bytes_max']} B",
         "target <= 1024 B at 10^6"),
        ("consistency proof size", f"{mk['consistency_bytes']} B", "half the log"),
        (f"chain build ({chain_txs:,} tx)", f"{build_rate:,.0f} tx/s", "execute+commit, SQLite"),
        ("audit (replay + verify workers)", f"{result.tx_per_second:,.0f} tx/s",
         f"{result.tx_per_second / raw:.2f} x raw 1-core  (target >= 1.50)"),
        ("audit, all in one process", f"{single.tx_per_second:,.0f} tx/s",
         f"{single.tx_per_second / raw:.2f} x raw"),
        (f"audit signature stage, {os.cpu_count()} procs", f"{stage:,.0f} sig/s",
         f"{stage / raw:.2f} x raw 1-core (parallel part alone)"),
    ]
    report("TradeLedger core benchmark", rows, data)


if __name__ == "__main__":
    main()
