"""The node's HTTP API: submission, statuses, errors, proofs (in-process)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from client.sdk import Client, NodeError, RequestSigner, TxBuilder
from client.verify import BundleError, verify_inclusion_bundle
from ledger.keys import SigningKey
from node.app import create_app
from tests.helpers import enrol_tx, make_node


@pytest.fixture
def api(demo_consortium: Any, db_url: str) -> Iterator[tuple[TestClient, Client, Any]]:
    node = make_node(demo_consortium, db_url, block_interval=0.01)
    app = create_app(node, max_request_bytes=64 * 1024, max_batch=50)
    _c, genesis, orgs = demo_consortium
    with TestClient(app) as http:
        # Raw requests of these tests are signed as a platform member, like the SDK's.
        http.auth = RequestSigner(orgs["platform"].member, chain_id=genesis.chain_id)
        yield http, Client(http=http, genesis=genesis.to_bytes(),
                           key=orgs["platform"].member), node
    node.store.close()


def _tx_count(node: Any) -> int:
    return int(node.store.tx_count())


def test_health_ready_and_openapi(api: Any) -> None:
    http, _client, _node = api
    assert http.get("/health").json() == {"status": "ok"}
    ready = http.get("/ready").json()
    assert ready["ready"] and ready["chain_id"] == "tradeledger-demo"
    paths = http.get("/openapi.json").json()["paths"]
    for path in ("/v1/tx", "/v1/tx/batch", "/v1/tx/{tx_id}", "/v1/proof/tx/{tx_id}",
                 "/v1/proof/consistency", "/v1/blocks", "/v1/certificate/latest"):
        assert path in paths


def test_submit_commit_and_idempotent_resubmit(api: Any, demo_consortium: Any) -> None:
    http, client, _node = api
    tx = enrol_tx(demo_consortium, "bank-eu")
    first = http.post("/v1/tx", json=tx.to_wire())
    assert first.status_code == 202 and first.json()["status"] == "pending"
    done = client.wait(tx.tx_id_hex, timeout=10)
    assert done["status"] == "committed" and done["height"] >= 1
    again = http.post("/v1/tx", json=tx.to_wire())
    done.pop("transaction")
    assert again.status_code == 200 and again.json() == done
    shown = client.tx(tx.tx_id_hex)
    assert shown["transaction"]["body"]["type"] == "membership.key_enrol"


def test_batch_submission_reports_each_item(api: Any, demo_consortium: Any) -> None:
    _http, client, _node = api
    good = [enrol_tx(demo_consortium, "supplier-hcm") for _ in range(5)]
    bad = good[0].to_wire()
    bad["body"]["payload"]["kind"] = "superuser"
    results = client.submit_batch([*good, bad])
    assert [r["status"] for r in results[:5]] == ["pending"] * 5
    assert results[5]["status"] == "refused" and results[5]["code"] == "malformed"
    for tx in good:
        assert client.wait(tx.tx_id_hex, timeout=10)["status"] == "committed"


def test_a_batch_parsed_in_the_worker_process_gets_the_same_answers(
        api: Any, demo_consortium: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Large batch bodies are parsed in the worker process (node.service.parse_batch):
    # each item's result and each malformed body's error are those of the node's
    # own parse. Run the same requests both ways and compare.
    import node.service as service

    http, client, _node = api
    good = [enrol_tx(demo_consortium, "supplier-hcm") for _ in range(3)]
    bad_kind = enrol_tx(demo_consortium, "supplier-hcm").to_wire()  # never queued
    bad_kind["body"]["payload"]["kind"] = "superuser"
    bad_sig = good[1].to_wire()
    bad_sig["signatures"][0]["signature"] = "zz"
    items = [t.to_wire() for t in good] + [bad_kind, bad_sig, {"body": 1}]
    bodies = [json.dumps({"transactions": items}), "[1, 2", "[]",
              json.dumps({"transactions": []}), json.dumps({"transactions": [1] * 51}),
              json.dumps({"transactions": items, "more": 1})]
    answers = []
    for threshold in (10**9, 0):  # in process, then in the worker
        monkeypatch.setattr(service, "PARALLEL_PARSE_BYTES", threshold)
        answers.append([http.post("/v1/tx/batch", content=b,
                                  headers={"content-type": "application/json"})
                        for b in bodies])
        for tx in good:
            assert client.wait(tx.tx_id_hex, timeout=10)["status"] == "committed"
    here, worker = answers
    # The good ones were queued the first time, and are known the second.
    assert here[0].json()["results"][3:] == worker[0].json()["results"][3:]
    for a, b in zip(here[1:], worker[1:], strict=True):
        assert (a.status_code, a.json()) == (b.status_code, b.json())
    first = here[0].json()["results"]
    assert [r["status"] for r in first[:3]] == ["pending"] * 3
    assert [r.get("field") for r in first[3:]] == [
        "transactions[3].body.payload.kind", "transactions[4].signatures[0].signature",
        "transactions[5].signatures"]
    assert [r["status"] for r in worker[0].json()["results"][:3]] == ["committed"] * 3
    assert [a.status_code for a in here[1:]] == [400] * 5


def test_the_worker_checks_signatures_by_keys_it_knows_and_the_node_their_status(
        api: Any, demo_consortium: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch parsed in the worker process has its signatures checked there too,
    by the keys the node handed over earlier: the answers are the same as when the
    node checks them, and a key revoked since is still refused by the node."""
    import node.service as service

    http, client, node = api
    _c, genesis, orgs = demo_consortium
    monkeypatch.setattr(service, "PARALLEL_PARSE_BYTES", 0)  # every body to the worker
    checked_here: list[int] = []  # signatures left for the node (small batches)
    real_verify_all = service.verify_all

    def counting(jobs: Any) -> list[bool]:
        checked_here.append(len(jobs))
        return real_verify_all(jobs)

    monkeypatch.setattr(service, "verify_all", counting)
    second = SigningKey.generate()
    enrolled = enrol_tx(demo_consortium, "supplier-hcm", kind="admin", key=second)
    assert client.submit(enrolled)["status"] == "pending"
    assert client.wait(enrolled.tx_id_hex, timeout=10)["status"] == "committed"

    def batch() -> list[dict[str, Any]]:
        good = [enrol_tx(demo_consortium, "supplier-hcm", author=second) for _ in range(3)]
        forged = enrol_tx(demo_consortium, "supplier-hcm", author=second).to_wire()
        sig = forged["signatures"][0]["signature"]
        forged["signatures"][0]["signature"] = ("0" if sig[0] != "0" else "1") + sig[1:]
        r = http.post("/v1/tx/batch", content=json.dumps(
            {"transactions": [t.to_wire() for t in good] + [forged]}),
            headers={"content-type": "application/json"})
        assert r.status_code == 202, r.text
        return [{k: v for k, v in x.items() if k != "tx_id"} for x in r.json()["results"]]

    first = batch()
    assert sum(checked_here) == 4  # the worker did not know the key yet
    again = batch()
    assert sum(checked_here) == 4  # now it checked all four itself
    assert first == again
    assert [r["status"] for r in first] == ["pending"] * 3 + ["refused"]
    assert first[3]["code"] == "bad_signature" and second.key_id in first[3]["message"]
    # A new worker process knows no keys: it gets them back from the node.
    node._verifier().shutdown()
    node._pool = None
    assert batch() == first and sum(checked_here) == 8
    assert batch() == first and sum(checked_here) == 8

    revoke = TxBuilder(orgs["supplier-hcm"].admin, chain_id=genesis.chain_id).build(
        "membership.key_revoke", {"key_id": second.key_id, "reason": "left the firm"})
    client.submit(revoke)
    assert client.wait(revoke.tx_id_hex, timeout=10)["status"] == "committed"
    after = batch()
    assert [r["code"] for r in after] == ["key_revoked"] * 4
    assert node.flush() is None


def test_reused_nonce_is_refused_with_a_clear_code(api: Any, demo_consortium: Any) -> None:
    _http, client, _node = api
    _c, genesis, orgs = demo_consortium
    builder = TxBuilder(orgs["bank-asia"].admin, chain_id=genesis.chain_id)
    payload = {"org": "bank-asia", "kind": "member"}
    first = builder.build("membership.key_enrol",
                          {**payload, "public_key": SigningKey.generate().public_key_hex},
                          nonce="same-nonce-1")
    client.submit(first)
    client.wait(first.tx_id_hex, timeout=10)
    second = builder.build("membership.key_enrol",
                           {**payload, "public_key": SigningKey.generate().public_key_hex},
                           nonce="same-nonce-1")
    with pytest.raises(NodeError) as info:
        client.submit(second)
    assert info.value.status == 409 and info.value.code == "nonce_reused"


def test_expired_transaction_is_refused(api: Any, demo_consortium: Any) -> None:
    _http, client, node = api
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    tx = enrol_tx(demo_consortium, "inspector", created_at=old)
    before = _tx_count(node)
    with pytest.raises(NodeError) as info:
        client.submit(tx)
    assert info.value.status == 422 and info.value.code == "expired"
    assert _tx_count(node) == before


BAD_REQUESTS = [
    ("not-json", b"{not json", 400, "malformed", "$"),
    ("empty-body", b"", 400, "malformed", "body"),
    ("json-array", b"[]", 400, "malformed", "$"),
    ("duplicate-member", b'{"body": {}, "body": {}}', 400, "malformed", "body"),
]


@pytest.mark.parametrize(("desc", "raw", "status", "code", "field"), BAD_REQUESTS,
                         ids=[b[0] for b in BAD_REQUESTS])
def test_malformed_requests_get_a_4xx_naming_the_field(api: Any, desc: str, raw: bytes,
                                                      status: int, code: str,
                                                      field: str) -> None:
    http, _client, node = api
    before = _tx_count(node)
    response = http.post("/v1/tx", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == status, desc
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == code and problem["field"] == field
    assert _tx_count(node) == before


def test_invalid_transactions_never_change_state(api: Any, demo_consortium: Any) -> None:
    http, _client, node = api
    good = enrol_tx(demo_consortium, "logistics").to_wire()
    cases: list[tuple[str, dict[str, Any], int, str]] = []
    unknown_field = json.loads(json.dumps(good))
    unknown_field["body"]["payload"]["colour"] = "red"
    cases.append(("payload-unknown-field", unknown_field, 400, "body.payload.colour"))
    unknown_type = json.loads(json.dumps(good))
    unknown_type["body"]["type"] = "trade.teleport"
    cases.append(("unknown-type", unknown_type, 400, "body.type"))
    bad_sig = json.loads(json.dumps(good))
    sig = bad_sig["signatures"][0]["signature"]
    bad_sig["signatures"][0]["signature"] = ("0" if sig[0] != "0" else "1") + sig[1:]
    cases.append(("bad-signature", bad_sig, 400, ""))
    wrong_chain = json.loads(json.dumps(good))
    wrong_chain["body"]["chain_id"] = "another-chain"
    cases.append(("wrong-chain", wrong_chain, 422, ""))
    before = list(node.store.state_items())
    count = _tx_count(node)
    for desc, wire, status, field in cases:
        response = http.post("/v1/tx", json=wire)
        assert response.status_code == status, (desc, response.json())
        if field:
            assert response.json()["field"] == field, desc
    node.flush(timeout=5)
    assert _tx_count(node) == count
    assert list(node.store.state_items()) == before


def test_oversized_request_and_batch_limits(api: Any, demo_consortium: Any) -> None:
    http, _client, _node = api
    huge = http.post("/v1/tx", content=b"x" * (65 * 1024),
                     headers={"content-type": "application/json"})
    assert huge.status_code == 413 and huge.json()["code"] == "too_large"
    wires = [enrol_tx(demo_consortium, "warehouse").to_wire() for _ in range(51)]
    too_many = http.post("/v1/tx/batch", json={"transactions": wires[:51]})
    # 51 transactions exceed both limits; either way it is a 4xx naming the rule.
    assert too_many.status_code in (400, 413)
    assert too_many.json()["code"] in ("malformed", "too_large")


def test_a_status_long_poll_answers_when_the_block_is_finished(
        demo_consortium: Any, db_url: str) -> None:
    """``GET /v1/tx/{id}?wait=S`` holds a pending status until the block that
    takes it is cut (here by hand: the orderer is not running, and a block takes
    one transaction), and no longer than ``S``."""
    node = make_node(demo_consortium, db_url, block_max_txs=1)
    app = create_app(node, start_orderer=False)
    _c, genesis, orgs = demo_consortium
    first, tx = enrol_tx(demo_consortium, "bank-asia"), enrol_tx(demo_consortium, "bank-eu")
    with TestClient(app) as http:
        http.auth = RequestSigner(orgs["platform"].member, chain_id=genesis.chain_id)
        for queued in (first, tx):
            assert http.post("/v1/tx", json=queued.to_wire()).json()["status"] == "pending"
        path = f"/v1/tx/{tx.tx_id_hex}"
        started = time.monotonic()
        held = http.get(path, params={"wait": 0.3})
        assert held.json()["status"] == "pending" and time.monotonic() - started >= 0.3
        answers: list[Any] = []
        poll = threading.Thread(target=lambda: answers.append(
            http.get(path, params={"wait": 20})))
        poll.start()
        time.sleep(0.2)  # let the poll register before the blocks are cut
        assert not answers  # still held: the transaction is pending
        node.cut_block()  # takes the other transaction only
        time.sleep(0.2)
        assert not answers and node.status(first.tx_id_hex).status == "committed"
        node.cut_block()
        poll.join(timeout=15)
        assert not poll.is_alive(), "the poll was not woken by the block"
        done = answers[0].json()
        assert done["status"] == "committed" and done["transaction"]["body"]["nonce"] == \
            tx.body.nonce
        # A finished transaction is answered at once, and the hold is checked.
        assert http.get(path, params={"wait": 20}).json()["status"] == "committed"
        for wait in ("-1", "31", "nan", "soon"):
            bad = http.get(path, params={"wait": wait})
            assert bad.status_code == 400 and bad.json()["field"] == "wait", wait
    node.store.close()


def test_sdk_wait_long_polls(api: Any, demo_consortium: Any) -> None:
    """Client.wait asks the node to hold the status (one request per block,
    not a poll every few milliseconds)."""
    http, client, _node = api
    tx = enrol_tx(demo_consortium, "bank-eu")
    seen: list[str] = []
    http.event_hooks["request"].append(lambda request: seen.append(str(request.url)))
    client.submit(tx)
    assert client.wait(tx.tx_id_hex, timeout=10, interval=5)["status"] == "committed"
    polls = [u for u in seen if f"/v1/tx/{tx.tx_id_hex}" in u]
    assert polls and all("wait=" in u for u in polls)


def test_unknown_and_malformed_ids(api: Any) -> None:
    http, _client, _node = api
    missing = http.get("/v1/tx/" + "ab" * 32)
    assert missing.status_code == 404 and missing.json()["code"] == "unknown_tx"
    bad = http.get("/v1/tx/not-an-id")
    assert bad.status_code == 400 and bad.json()["field"] == "tx_id"
    assert http.get("/v1/blocks/999999").status_code == 404
    assert http.get("/v1/proof/consistency", params={"old_size": 0}).status_code == 400


def test_blocks_headers_certificate_and_genesis(api: Any, demo_consortium: Any) -> None:
    http, client, _node = api
    tx = enrol_tx(demo_consortium, "buyer-rotterdam")
    client.submit(tx)
    status = client.wait(tx.tx_id_hex, timeout=10)
    block = http.get(f"/v1/blocks/{status['height']}").json()
    assert tx.tx_id_hex in [t["tx_id"] for t in block["transactions"]]
    assert block["certificate"]["signatures"][0]["org"] == "platform"
    header = http.get(f"/v1/headers/{status['height']}").json()
    assert header == block["header"]
    latest = client.head()
    assert latest["header"]["height"] >= status["height"]
    _c, genesis, _orgs = demo_consortium
    assert client.fetch_genesis() == genesis.to_bytes()


def test_proof_bundle_verifies_offline_and_any_changed_byte_is_caught(
        api: Any, demo_consortium: Any) -> None:
    _http, client, _node = api
    txs = [enrol_tx(demo_consortium, "supplier-izmir") for _ in range(7)]
    for tx in txs:
        client.submit(tx)
    for tx in txs:
        client.wait(tx.tx_id_hex, timeout=10)
    record = client.verified_record(txs[3].tx_id_hex)
    assert record.tx_id == txs[3].tx_id_hex and record.signed_by == ("platform",)
    assert record.body["payload"]["org"] == "supplier-izmir"
    bundle = client.proof(txs[3].tx_id_hex)
    _c, genesis, _orgs = demo_consortium
    text = json.dumps(bundle)
    # Change every hex digit position of the bundle's hashes and leaf, one at a time.
    flips = 0
    for field in ("leaf", "tx_id"):
        value = bundle[field]
        for pos in range(0, len(value), max(1, len(value) // 40)):
            changed = json.loads(text)
            c = value[pos]
            changed[field] = value[:pos] + ("1" if c != "1" else "2") + value[pos + 1:]
            with pytest.raises(BundleError):
                verify_inclusion_bundle(genesis.to_bytes(), changed)
            flips += 1
    for i in range(len(bundle["inclusion_proof"])):
        changed = json.loads(text)
        h = changed["inclusion_proof"][i]
        changed["inclusion_proof"][i] = ("0" if h[0] != "0" else "f") + h[1:]
        with pytest.raises(BundleError):
            verify_inclusion_bundle(genesis.to_bytes(), changed)
        flips += 1
    for key in ("log_root", "state_root", "prev_hash"):
        changed = json.loads(text)
        changed["header"][key] = "00" * 32
        with pytest.raises(BundleError):
            verify_inclusion_bundle(genesis.to_bytes(), changed)
    changed = json.loads(text)
    changed["leaf_index"] += 1
    with pytest.raises(BundleError):
        verify_inclusion_bundle(genesis.to_bytes(), changed)
    assert flips > 20


def test_consistency_between_log_sizes(api: Any, demo_consortium: Any) -> None:
    _http, client, _node = api
    head_before = client.head()["header"]
    old_size, old_root = head_before["log_size"], bytes.fromhex(head_before["log_root"])
    txs = [enrol_tx(demo_consortium, "bank-eu") for _ in range(4)]
    for tx in txs:
        client.submit(tx)
    for tx in txs:
        client.wait(tx.tx_id_hex, timeout=10)
    client.verify_extends(old_size, old_root)
    with pytest.raises(BundleError):
        client.verify_extends(old_size, b"\x00" * 32)


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_signature_by_a_key_enrolled_in_the_same_block_is_still_verified(
        demo_consortium: Any, tmp_path: Any, batch: bool) -> None:
    """Intake cannot check a key that is not enrolled yet; the executor must."""
    node = make_node(demo_consortium, f"sqlite:///{tmp_path / 'l.db'}")
    _c, genesis, _orgs = demo_consortium
    new_key = SigningKey.generate()
    enrol = enrol_tx(demo_consortium, "bank-eu", key=new_key, kind="admin")
    builder = TxBuilder(new_key, chain_id=genesis.chain_id)
    good = builder.build("membership.key_enrol", {
        "org": "bank-eu", "kind": "member",
        "public_key": SigningKey.generate().public_key_hex})
    forged_wire = builder.build("membership.key_enrol", {
        "org": "bank-eu", "kind": "member",
        "public_key": SigningKey.generate().public_key_hex}).to_wire()
    sig = forged_wire["signatures"][0]["signature"]
    forged_wire["signatures"][0]["signature"] = ("1" if sig[0] == "0" else "0") + sig[1:]
    wires = [enrol.to_wire(), good.to_wire(), forged_wire]
    if batch:
        results = node.submit_many(wires)
        assert [r["status"] for r in results] == ["pending"] * 3
    else:
        for wire in wires:
            assert node.submit(wire).status == "pending"
    node.cut_block()
    assert node.status(enrol.tx_id_hex).status == "committed"  # type: ignore[union-attr]
    assert node.status(good.tx_id_hex).status == "committed"  # type: ignore[union-attr]
    from ledger.tx import SignedTx

    forged_id = SignedTx.from_wire(forged_wire).tx_id_hex
    status = node.status(forged_id)
    assert status is not None and status.status == "rejected"
    assert status.code == "bad_signature"
