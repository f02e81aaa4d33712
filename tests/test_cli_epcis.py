"""``tradeledger epcis import`` against a node served over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from client.cli import app
from client.cli_epcis import split_document
from ledger.contracts import shipments as sh
from ledger.epcis import normalise_epc, validate_document
from node.app import create_app
from tests import epcis_scenario as sc
from tests.conftest import PASSPHRASE
from tests.harness.server import serve_app
from tests.helpers import make_node

runner = CliRunner()


@pytest.fixture
def served(demo_consortium: Any, tmp_path: Path) -> Iterator[tuple[str, Any, Path]]:
    consortium, _genesis, _orgs = demo_consortium
    node = make_node(demo_consortium, f"sqlite:///{tmp_path / 'ledger.db'}",
                     block_interval=0.01)
    with serve_app(create_app(node)) as url:
        yield url, node, consortium.key_path("logistics", "member1")


def _events(n: int, *, start: int = 0) -> list[dict[str, Any]]:
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    return [{"type": "ObjectEvent", "eventTime": (base + timedelta(seconds=i)).isoformat(),
             "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "bizStep": "departing",
             "epcList": [f"urn:epc:id:sgtin:8881234.000111.{start + i}"],
             "readPoint": {"id": sc.PORT_SZ}} for i in range(n)]


def _import(url: str, key: Path, path: Path, *extra: str) -> Any:
    return runner.invoke(app, ["epcis", "import", str(path), "--key", str(key), "--node", url,
                               "--json", *extra],
                         env={"TRADELEDGER_PASSPHRASE": PASSPHRASE})


def test_a_large_file_is_imported_in_batches_and_every_event_committed(
        served: Any, tmp_path: Path) -> None:
    url, node, key = served
    path = tmp_path / "scans.json"
    path.write_text(json.dumps(sc.epcis_doc(*_events(1_150))), encoding="utf-8")
    result = _import(url, key, path, "--events-per-tx", "200", "--txs-per-request", "4")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary == {"events": 1_150, "transactions": 6, "committed_events": 1_150,
                       "failed": []}
    last = normalise_epc("urn:epc:id:sgtin:8881234.000111.1149")
    record = sh.epc_record(node.store, last)
    assert record["count"] == 1 and record["read_point"] == normalise_epc(sc.PORT_SZ)
    assert node.store.get(sh.counter_key("loc", normalise_epc(sc.PORT_SZ)))["count"] == 1_150
    # Export: the first events at the port, as a query document the validator accepts.
    out = tmp_path / "export.json"
    exported = runner.invoke(app, ["epcis", "events", "--key", str(key), "--node", url,
                                   "--location", sc.PORT_SZ, "--limit", "5", "--out", str(out)],
                             env={"TRADELEDGER_PASSPHRASE": PASSPHRASE})
    assert exported.exit_code == 0, exported.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    events = validate_document(doc)
    assert doc["type"] == "EPCISQueryDocument" and len(events) == 5
    assert events[0].epc_list == (normalise_epc("urn:epc:id:sgtin:8881234.000111.0"),)
    # Another organisation's key sees none of them.
    buyer_key = key.parent.parent / "buyer-lyon" / "member1.key"
    other = runner.invoke(app, ["epcis", "events", "--key", str(buyer_key), "--node", url,
                                "--location", sc.PORT_SZ],
                          env={"TRADELEDGER_PASSPHRASE": PASSPHRASE})
    assert other.exit_code == 0, other.output
    assert json.loads(other.stdout)["epcisBody"]["queryResults"]["resultsBody"][
        "eventList"] == []


def test_an_invalid_file_is_refused_before_anything_is_sent(served: Any, tmp_path: Path
                                                            ) -> None:
    url, node, key = served
    events = _events(3)
    events[2]["bizStep"] = "teleporting"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(sc.epcis_doc(*events)), encoding="utf-8")
    height = node.head.height
    result = _import(url, key, path)
    assert result.exit_code == 1
    assert "epcisBody.eventList[2].bizStep" in result.output
    assert node.head.height == height


def test_rejected_transactions_are_reported_with_their_code(served: Any, tmp_path: Path
                                                           ) -> None:
    url, _node, key = served
    shipped, received = _events(2, start=500)
    shipped.update(bizStep="shipping", bizLocation={"id": sc.PORT_SZ},
                   destinationList=[{"type": "location", "destination": sc.PORT_RTM}])
    received.update(bizStep="receiving", bizLocation={"id": sc.WAREHOUSE},
                    epcList=shipped["epcList"])
    path = tmp_path / "custody.json"
    path.write_text(json.dumps(sc.epcis_doc(shipped, received)), encoding="utf-8")
    result = _import(url, key, path, "--events-per-tx", "1")
    assert result.exit_code == 3, result.output
    summary = json.loads(result.stdout)
    assert summary["committed_events"] == 1
    assert [f["code"] for f in summary["failed"]] == ["wrong_receiving_location"]


def test_split_keeps_the_header_and_every_event_in_order() -> None:
    doc = sc.epcis_doc(*_events(5))
    doc["epcisHeader"] = {"ex:note": "kept"}
    doc["@context"] = [sc.CONTEXT, {"ex": "https://example.com/ns/"}]
    parts = list(split_document(doc, 2))
    assert [len(p["epcisBody"]["eventList"]) for p in parts] == [2, 2, 1]
    assert all(p["epcisHeader"] == {"ex:note": "kept"} and p["@context"] == doc["@context"]
               for p in parts)
    assert [e for p in parts for e in p["epcisBody"]["eventList"]] == \
        doc["epcisBody"]["eventList"]
    for part in parts:
        validate_document(part)
    single = doc["epcisBody"]["eventList"][0] | {"@context": [sc.CONTEXT]}
    assert list(split_document(single, 2)) == [single]
