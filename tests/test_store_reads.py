"""The store's hot reads share a few connections however many threads ask.

A server starts and retires worker threads all the time; a read connection kept
per thread would leak one for each and, after the pool's size, every read would
wait for a connection that never comes back.
"""

from __future__ import annotations

import threading
from typing import Any

from tests.helpers import make_node


def test_reads_from_many_short_lived_threads_reuse_connections(demo_consortium: Any,
                                                               db_url: str) -> None:
    node = make_node(demo_consortium, db_url)
    store = node.store
    errors: list[BaseException] = []

    def read() -> None:
        try:
            assert store.get_raw("consortium") is not None
            assert store.readable("platform", [0]) == {0}
        except BaseException as exc:
            errors.append(exc)

    for _ in range(80):  # more threads than the pool holds connections
        t = threading.Thread(target=read)
        t.start()
        t.join(timeout=20)
        assert not t.is_alive(), "a read waited for a connection"
    assert not errors, errors[0]
    assert len(store._raw_conns) <= 2


def test_concurrent_reads_each_get_a_connection(demo_consortium: Any, db_url: str) -> None:
    node = make_node(demo_consortium, db_url)
    store = node.store
    barrier = threading.Barrier(30)
    results: list[bool] = []

    def read() -> None:
        barrier.wait(timeout=20)
        results.append(store.get_raw("consortium") is not None)

    threads = [threading.Thread(target=read) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == [True] * 30
