"""The test harness itself, against the real thing: PostgreSQL, Chromium, etcd, processes.

Each server is started, used and stopped here, and the test checks that its PID is gone
and its directory removed afterwards. Start-up times are printed (``pytest -s``).
"""

from __future__ import annotations

import base64
import os
import signal
import sys
import time
import urllib.parse
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.harness import HarnessError, skip_or_fail
from tests.harness.browser import chromium_available, launch_chromium
from tests.harness.etcd import EtcdCluster, etcd_available
from tests.harness.ports import free_port, free_ports
from tests.harness.postgres import PostgresServer, postgres_available
from tests.harness.process import ServiceProcess


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_free_ports_are_distinct_and_bindable() -> None:
    import socket

    ports = free_ports(8)
    assert len(set(ports)) == 8
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))


def test_service_process_waits_for_http_and_stops_by_pid(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "index.html").write_text("ok")
    args = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with ServiceProcess(args, cwd=tmp_path, ready_url=f"http://127.0.0.1:{port}/",
                        ready_timeout=20) as svc:
        pid = svc.pid
        assert svc.running and _alive(pid)
        assert httpx.get(f"http://127.0.0.1:{port}/index.html").text == "ok"
        svc.kill(signal.SIGKILL)
        assert svc.wait(5) == -signal.SIGKILL
        assert not svc.running
        svc.start()  # a stopped service starts again, appending to its log
        assert svc.pid != pid
        assert "starting" in svc.log_tail()
        log = svc.log_path
    assert not svc.running and not _alive(svc.pid)
    assert not log.exists()


def test_service_process_reports_early_exit_with_log_tail() -> None:
    args = [sys.executable, "-c", "import sys; print('boom: bad config'); sys.exit(3)"]
    with pytest.raises(HarnessError, match=r"status 3[\s\S]*boom: bad config"), \
            ServiceProcess(args, ready_url=f"http://127.0.0.1:{free_port()}/", ready_timeout=10):
        pass


@pytest.mark.postgres
def test_postgres_server_roundtrip_via_sqlalchemy() -> None:
    skip_or_fail(postgres_available())
    started = time.monotonic()
    with PostgresServer() as pg:
        elapsed = time.monotonic() - started
        print(f"\npostgres: ready in {elapsed:.2f}s (initdb {pg.initdb_seconds:.2f}s), "
              f"pid {pg.pid}, {pg.url}")
        assert pg.url.startswith(f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/")
        pid, base = pg.pid, pg.base_dir
        assert base is not None and _alive(pid)

        url = pg.create_database("harness_roundtrip")
        assert url == pg.url_for("harness_roundtrip")
        metadata = sa.MetaData()
        trades = sa.Table("trades", metadata,
                          sa.Column("id", sa.Integer, primary_key=True),
                          sa.Column("ref", sa.String(40), nullable=False, unique=True),
                          sa.Column("amount", sa.Numeric(18, 2), nullable=False))
        engine = sa.create_engine(url)
        try:
            metadata.create_all(engine)
            with engine.begin() as conn:
                conn.execute(trades.insert(), [{"ref": "LC-001", "amount": "1250.50"},
                                               {"ref": "LC-002", "amount": "99.99"}])
            with engine.connect() as conn:
                rows = conn.execute(sa.select(trades.c.ref, trades.c.amount)
                                    .order_by(trades.c.ref)).all()
                encoding = conn.execute(sa.text("SHOW server_encoding")).scalar_one()
        finally:
            engine.dispose()
        assert [(r, str(a)) for r, a in rows] == [("LC-001", "1250.50"), ("LC-002", "99.99")]
        assert encoding == "UTF8"

        other = sa.create_engine(pg.create_database("harness_other"))
        try:
            with other.connect() as conn:
                assert not sa.inspect(conn).has_table("trades")
        finally:
            other.dispose()
        with pytest.raises(ValueError):
            pg.create_database("bad name; DROP")
    assert not _alive(pid)
    assert not base.exists()


@pytest.mark.browser
def test_chromium_clicks_a_button() -> None:
    skip_or_fail(chromium_available())
    from playwright.sync_api import expect, sync_playwright

    html = ("<!doctype html><title>harness</title>"
            "<button id='go'>Go</button><p id='out'>waiting</p>"
            "<script>document.getElementById('go').addEventListener('click', () => {"
            "document.getElementById('out').textContent = 'clicked ' + (1 + 1);});</script>")
    with sync_playwright() as playwright:
        started = time.monotonic()
        browser = launch_chromium(playwright)
        try:
            print(f"\nchromium: launched in {time.monotonic() - started:.2f}s, "
                  f"version {browser.version}")
            page = browser.new_page()
            page.goto("data:text/html," + urllib.parse.quote(html))
            expect(page.locator("#out")).to_have_text("waiting")
            page.click("#go")
            expect(page.locator("#out")).to_have_text("clicked 2")
            assert page.title() == "harness"
        finally:
            browser.close()


@pytest.mark.etcd
def test_etcd_cluster_survives_losing_a_member() -> None:
    skip_or_fail(etcd_available())
    with EtcdCluster(3) as etcd, httpx.Client(trust_env=False, timeout=5.0) as http:
        print(f"\netcd: 3 members healthy in {etcd.startup_seconds:.2f}s, {etcd.endpoints}")
        assert len(etcd.endpoints) == 3 and all(e.startswith("http://127.0.0.1:")
                                                for e in etcd.endpoints)
        pids = [pid for pid in etcd.pids if pid is not None]
        assert len(pids) == 3
        base = etcd.base_dir
        assert base is not None

        def put(endpoint: str, key: str, value: str) -> None:
            response = http.post(endpoint + "/v3/kv/put",
                                 json={"key": _b64(key), "value": _b64(value)})
            response.raise_for_status()

        def get(endpoint: str, key: str) -> str | None:
            response = http.post(endpoint + "/v3/kv/range", json={"key": _b64(key)})
            response.raise_for_status()
            kvs = response.json().get("kvs", [])
            return base64.b64decode(kvs[0]["value"]).decode() if kvs else None

        put(etcd.endpoints[0], "trade/LC-001", "issued")
        assert get(etcd.endpoints[1], "trade/LC-001") == "issued"
        assert get(etcd.endpoints[2], "trade/LC-001") == "issued"

        # Lose the leader: the other two still form a quorum and elect a new one.
        leader = etcd.leader_index()
        assert leader is not None
        stopped_at = time.monotonic()
        etcd.stop_member(leader)
        assert not _alive(pids[leader])
        assert etcd.endpoints[leader] not in etcd.live_endpoints
        survivor = etcd.live_endpoints[0]
        deadline = time.monotonic() + 15
        while True:
            try:
                put(survivor, "trade/LC-001", "accepted")
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        print(f"etcd: put served {time.monotonic() - stopped_at:.2f}s after stopping "
              f"leader m{leader}; new leader m{etcd.leader_index()}")
        assert get(etcd.live_endpoints[-1], "trade/LC-001") == "accepted"

        # The stopped member rejoins and catches up.
        etcd.start_member(leader)
        assert get(etcd.endpoints[leader], "trade/LC-001") == "accepted"
        pids = [pid for pid in etcd.pids if pid is not None]
    assert not any(_alive(pid) for pid in pids)
    assert not base.exists()
