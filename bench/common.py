"""Helpers shared by the benchmarks: a consortium in a temp dir, timing, output."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from client.consortium import DEMO_DESCRIPTION, Consortium, init_consortium  # noqa: E402
from ledger.keys import SigningKey, load_key  # noqa: E402

PASSPHRASE = "bench"


def consortium(root: Path) -> tuple[Consortium, Any, dict[str, dict[str, SigningKey]]]:
    c, genesis = init_consortium(DEMO_DESCRIPTION, root, passphrase=PASSPHRASE,
                                 time=datetime.now(UTC).replace(microsecond=0))
    keys: dict[str, dict[str, SigningKey]] = {}
    for org in DEMO_DESCRIPTION["organisations"]:
        keys[org["id"]] = {}
        for name in ("admin", "member1", "node"):
            path = c.key_path(org["id"], name)
            if path.exists():
                keys[org["id"]][name] = load_key(path, PASSPHRASE)
    return c, genesis, keys


def rate(n: int, fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def raw_verify_rate(n: int = 20_000) -> float:
    """Single-core PyNaCl verify of 32-byte messages: the ceiling everything is held to."""
    import hashlib

    import nacl.bindings
    import nacl.signing

    key = nacl.signing.SigningKey(bytes(32))
    public = bytes(key.verify_key)
    messages = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(n)]
    signed = [key.sign(m).signature + m for m in messages]

    def run() -> None:
        for sm in signed:
            nacl.bindings.crypto_sign_open(sm, public)

    return rate(n, run)


def _verify_worker(n: int) -> float:
    return raw_verify_rate(n)


def parallel_raw_verify_rate(processes: int, n: int = 20_000) -> float:
    """Total raw verify rate of ``processes`` processes verifying at once.

    The machine's own parallel ceiling: what any parallel audit could reach.
    """
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=processes) as pool:
        list(pool.map(_verify_worker, [100] * processes))  # start them first
        return float(sum(pool.map(_verify_worker, [n] * processes)))


def steal_ms() -> float:
    """CPU time the hypervisor took from this virtual machine so far (all CPUs,
    ms; /proc/stat ``steal``): a rise during a timed loop marks figures other
    guests inflated."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) * 1000 / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def busy_cpu_s() -> float:
    """CPU seconds the machine's processors have been busy so far, all processes and
    the host's steal included (/proc/stat: user, nice, system, irq, softirq,
    steal); 0.0 where /proc/stat cannot be read."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        busy = sum(int(fields[i]) for i in (1, 2, 3, 6, 7, 8))
        return busy / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def report(title: str, rows: list[tuple[str, str, str]], data: dict[str, Any]) -> None:
    width = max(len(r[0]) for r in rows) + 2
    print(f"\n== {title}")
    for name, value, note in rows:
        print(f"  {name:<{width}} {value:>14}   {note}")
    print("JSON " + json.dumps(data, sort_keys=True))
