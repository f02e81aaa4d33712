"""The rating API, the signed attestation and ``tradeledger rating`` against a real node.

The history is tests/ratings_support.py's: hand-computed score 84 for buyer-lyon.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from client import cli_ratings
from client.cli import app as cli_app
from client.sdk import Client
from client.verify import BundleError, verify_rating_attestation
from ledger import ratings as rt
from ledger.audit import rebuild_derived
from ledger.encoding import canonical
from ledger.keys import Domain, SigningKey, load_key
from node.app import create_app
from node.routes_ratings import read_attestation, read_rating
from tests.conftest import PASSPHRASE
from tests.helpers import enrol_tx, make_node
from tests.ratings_support import EXPECTED, SUPPLIERS, As, module_node, seed_history, signed_app

runner = CliRunner()


@pytest.fixture(scope="module")
def rated(demo_consortium: Any, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[Any, As, TestClient]]:
    db = tmp_path_factory.mktemp("ratings-api") / "ledger.db"
    node = module_node(demo_consortium, f"sqlite:///{db}")
    seed_history(node, demo_consortium[2])
    who = As()
    with TestClient(signed_app(node, who)) as http:
        yield node, who, http
    node.store.close()


@pytest.fixture
def as_supplier(rated: Any) -> Iterator[tuple[Any, As, TestClient]]:
    node, who, http = rated
    who.who = "supplier-sz"
    yield node, who, http
    who.who = "supplier-sz"


def test_supplier_reads_the_hand_computed_rating_as_of_the_head(as_supplier: Any) -> None:
    node, _who, http = as_supplier
    response = http.get("/v1/ratings/buyer-lyon")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "rated"
    assert (body["score"], body["band"]) == (EXPECTED["score"], EXPECTED["band"])
    assert body["factors"] == {k: v for k, v in EXPECTED.items() if k not in ("score", "band")}
    assert body["trend"] == [{"months": m, "score": 84, "invoices": 3} for m in (3, 6, 12)]
    assert body["height"] == node.head.height
    assert body["as_of"] == node.head.time.date().isoformat()
    # Aggregates only: no supplier and no invoice is named.
    for name in (*SUPPLIERS, "INV-L-1", "INV-L-2", "INV-L-3", "PAY-"):
        assert name not in response.text


def test_one_invoice_is_insufficient_history(as_supplier: Any) -> None:
    _node, _who, http = as_supplier
    body = http.get("/v1/ratings/buyer-rotterdam").json()
    assert body["status"] == "insufficient" and "score" not in body
    assert body["reason"].startswith("insufficient history: 1 of the 3 invoices")
    assert (body["invoices"], body["suppliers"]) == (1, 1)


@pytest.mark.parametrize("org", ["supplier-hcm", "bank-eu", "bank-asia", "platform"])
def test_suppliers_banks_and_the_platform_may_read(rated: Any, org: str) -> None:
    _node, who, http = rated
    who.who = org
    try:
        assert http.get("/v1/ratings/buyer-lyon").json()["score"] == 84
    finally:
        who.who = "supplier-sz"


@pytest.mark.parametrize("org", ["buyer-rotterdam", "buyer-lyon", "logistics", "inspector"])
def test_other_roles_get_403_with_a_clear_code(rated: Any, org: str) -> None:
    _node, who, http = rated
    who.who = org
    try:
        for path in ("/v1/ratings/buyer-lyon", "/v1/ratings/buyer-lyon/attestation"):
            response = http.get(path)
            assert response.status_code == 403
            problem = response.json()
            assert problem["code"] == "rating_role_required"
            assert "supplier or bank role" in problem["message"] and org in problem["message"]
    finally:
        who.who = "supplier-sz"


def test_unsigned_requests_get_401(rated: Any) -> None:
    node, _who, _http = rated
    with TestClient(create_app(node, start_orderer=False)) as plain:
        for path in ("/v1/ratings/buyer-lyon", "/v1/ratings/buyer-lyon/attestation"):
            response = plain.get(path)
            assert response.status_code == 401
            assert response.json()["code"] == "unauthenticated"


def test_bad_and_unknown_buyers_are_4xx_naming_the_problem(as_supplier: Any) -> None:
    _node, _who, http = as_supplier
    bad = http.get("/v1/ratings/Not_An_Org")
    assert bad.status_code == 400
    assert (bad.json()["field"], bad.json()["rule"]) == ("buyer", "org_id")
    unknown = http.get("/v1/ratings/buyer-nowhere")
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_org"
    assert http.get("/v1/ratings/buyer-nowhere/attestation").status_code == 404


def test_the_api_is_listed_in_the_openapi_schema(as_supplier: Any) -> None:
    _node, _who, http = as_supplier
    paths = http.get("/openapi.json").json()["paths"]
    assert "/v1/ratings/{buyer}" in paths and "/v1/ratings/{buyer}/attestation" in paths


# -- the attestation ------------------------------------------------------------------


def _attestation(http: TestClient, buyer: str = "buyer-lyon") -> bytes:
    response = http.get(f"/v1/ratings/{buyer}/attestation")
    assert response.status_code == 200, response.text
    return response.content


def test_attestation_verifies_offline_against_the_genesis_alone(as_supplier: Any,
                                                                demo_consortium: Any) -> None:
    node, _who, http = as_supplier
    genesis = demo_consortium[1].to_bytes()
    raw = _attestation(http)
    assert raw == canonical(json.loads(raw))  # served as its RFC 8785 bytes
    verified = verify_rating_attestation(genesis, raw)
    assert (verified.buyer, verified.status, verified.score, verified.band) == \
        ("buyer-lyon", "rated", 84, "low")
    assert verified.factors == http.get("/v1/ratings/buyer-lyon").json()["factors"]
    assert verified.height == node.head.height
    assert verified.header_hash == node.head.hash.hex()
    assert verified.as_of == node.head.time.date().isoformat()
    assert (verified.org, verified.key_id) == ("platform", node.node_key.key_id)
    assert verified.certified_by == ("platform",)
    insufficient = verify_rating_attestation(genesis, _attestation(http, "buyer-rotterdam"))
    assert insufficient.status == "insufficient" and insufficient.score is None
    assert insufficient.reason.startswith("insufficient history")
    # The SDK fetches and verifies in one call.
    client = Client(http=http, genesis=genesis)
    assert client.verified_rating("buyer-lyon").score == 84


def test_any_changed_byte_of_an_attestation_is_refused(as_supplier: Any,
                                                       demo_consortium: Any) -> None:
    _node, _who, http = as_supplier
    genesis = demo_consortium[1].to_bytes()
    raw = _attestation(http)
    verify_rating_attestation(genesis, raw)
    for i in range(len(raw)):
        for flip in (0x01, 0x20):
            forged = raw[:i] + bytes([raw[i] ^ flip]) + raw[i + 1:]
            with pytest.raises(BundleError):
                verify_rating_attestation(genesis, forged)
    # Appending, cutting or re-indenting the file is refused too.
    for forged in (raw + b" ", raw[:-1], json.dumps(json.loads(raw), indent=2).encode()):
        with pytest.raises(BundleError):
            verify_rating_attestation(genesis, forged)


def _resigned(raw: bytes, key: SigningKey, **changes: Any) -> bytes:
    doc = json.loads(raw)
    doc["statement"].update(changes)
    doc["signature"] = key.sign(Domain.ATTESTATION, canonical(doc["statement"])).hex()
    return canonical(doc)


def test_a_statement_signed_by_anything_but_a_genesis_node_key_is_refused(
        as_supplier: Any, demo_consortium: Any) -> None:
    node, _who, http = as_supplier
    _c, genesis, orgs = demo_consortium
    raw = _attestation(http)
    # Re-signing with the node's own key reproduces the served bytes (Ed25519 is
    # deterministic), so the checks below fail for the reason given, not the encoding.
    assert _resigned(raw, node.node_key) == raw
    better = _resigned(raw, node.node_key, score=95)
    assert verify_rating_attestation(genesis.to_bytes(), better).score == 95  # the node's word
    with pytest.raises(BundleError, match="band"):
        verify_rating_attestation(genesis.to_bytes(), _resigned(raw, node.node_key, score=40))
    stranger = SigningKey.generate()
    with pytest.raises(BundleError, match="not a node key"):
        verify_rating_attestation(genesis.to_bytes(),
                                  _resigned(raw, stranger, key_id=stranger.key_id))
    member = orgs["supplier-sz"].member  # a member key of a genesis organisation
    with pytest.raises(BundleError, match="not a node key"):
        verify_rating_attestation(genesis.to_bytes(), _resigned(
            raw, member, key_id=member.key_id, org="supplier-sz"))
    with pytest.raises(BundleError, match="does not verify"):
        verify_rating_attestation(genesis.to_bytes(), _resigned(raw, stranger))
    with pytest.raises(BundleError, match="header"):
        verify_rating_attestation(genesis.to_bytes(), _resigned(
            raw, node.node_key, header_hash="00" * 32))
    with pytest.raises(BundleError, match="height"):
        verify_rating_attestation(genesis.to_bytes(), _resigned(
            raw, node.node_key, height=node.head.height - 1))


def test_an_attestation_is_refused_against_another_consortium(
        as_supplier: Any, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from client.consortium import DEMO_DESCRIPTION, init_consortium

    _node, _who, http = as_supplier
    _c, other = init_consortium(DEMO_DESCRIPTION, tmp_path, passphrase="pw",
                                time=datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    with pytest.raises(BundleError, match=r"genesis|chain"):
        verify_rating_attestation(other.to_bytes(), _attestation(http))


def test_the_same_rating_on_both_databases_and_after_a_rebuild(demo_consortium: Any,
                                                               db_url: str) -> None:
    node = make_node(demo_consortium, db_url)
    seed_history(node, demo_consortium[2])
    before = {b: read_rating(node, b) for b in ("buyer-lyon", "buyer-rotterdam")}
    attestation = read_attestation(node, "buyer-lyon")
    assert isinstance(before["buyer-lyon"], rt.Rating) and before["buyer-lyon"].score == 84
    ratings_state = {k: v for k, v in node.store.state_items() if k.startswith("ratings/")}
    assert any(k.startswith("ratings/month/buyer-lyon/") for k in ratings_state)
    rebuild_derived(node.store)
    again = make_node(demo_consortium, db_url)
    assert {k: v for k, v in again.store.state_items() if k.startswith("ratings/")} == \
        ratings_state
    assert {b: read_rating(again, b) for b in before} == before
    # Same state, same header, same key: the very same signed bytes.
    assert canonical(read_attestation(again, "buyer-lyon")) == canonical(attestation)


# -- the CLI ---------------------------------------------------------------------------


@pytest.fixture
def cli_node(as_supplier: Any, monkeypatch: pytest.MonkeyPatch,
             demo_consortium: Any) -> TestClient:
    _node, _who, http = as_supplier
    # The commands sign their requests with this member key file (--key).
    monkeypatch.setenv("TRADELEDGER_KEY",
                       str(demo_consortium[0].key_path("supplier-sz", "member1")))
    # Each command closes its client: give it its own TestClient over the same app.
    monkeypatch.setattr(cli_ratings, "_client",
                        lambda _url, key: Client(http=TestClient(http.app),
                                                 key=load_key(key, PASSPHRASE)))
    return http


def test_cli_rating_prints_a_table_and_json(cli_node: TestClient) -> None:
    table = runner.invoke(cli_app, ["rating", "buyer-lyon"])
    assert table.exit_code == 0, table.output
    for text in ("buyer-lyon", "84", "low risk", "days beyond terms", "67 %", "10 days",
                 "3,000.00 USD", "trend 3 months", "height"):
        assert text in table.output
    as_json = runner.invoke(cli_app, ["rating", "buyer-lyon", "--json"])
    assert json.loads(as_json.output)["score"] == 84
    short = runner.invoke(cli_app, ["rating", "buyer-rotterdam"])
    assert short.exit_code == 0 and "insufficient history" in short.output
    missing = runner.invoke(cli_app, ["rating", "buyer-nowhere"])
    assert missing.exit_code == 1 and "unknown_org" in missing.output


def test_cli_saves_verifies_and_refuses_attestations(cli_node: TestClient, tmp_path: Path,
                                                     demo_consortium: Any) -> None:
    genesis = tmp_path / "genesis.json"
    genesis.write_bytes(demo_consortium[1].to_bytes())
    evidence = tmp_path / "rating.json"
    saved = runner.invoke(cli_app, ["rating", "buyer-lyon", "--attest", str(evidence),
                                    "--genesis", str(genesis), "--json"])
    assert saved.exit_code == 0, saved.output
    assert verify_rating_attestation(genesis.read_bytes(), evidence.read_bytes()).score == 84
    again = runner.invoke(cli_app, ["rating", "buyer-lyon", "--attest", str(evidence)])
    assert again.exit_code == 1 and "refusing to overwrite" in again.output
    for command in (["attestation", "verify"], ["proof", "verify"]):
        ok = runner.invoke(cli_app, [*command, str(evidence), "--genesis", str(genesis),
                                     "--json"])
        assert ok.exit_code == 0, ok.output
        result = json.loads(ok.output)
        assert result["valid"] and result["score"] == 84 and result["buyer"] == "buyer-lyon"
        shown = runner.invoke(cli_app, [*command, str(evidence), "--genesis", str(genesis)])
        assert shown.exit_code == 0 and "valid" in shown.output and "84" in shown.output
    forged = tmp_path / "forged.json"
    forged.write_bytes(evidence.read_bytes().replace(b'"score":84', b'"score":94'))
    for command in (["attestation", "verify"], ["proof", "verify"]):
        bad = runner.invoke(cli_app, [*command, str(forged), "--genesis", str(genesis)])
        assert bad.exit_code == 1 and "does NOT verify" in bad.output


def test_a_read_overlapping_a_block_commit_is_retried_on_the_new_head(
        demo_consortium: Any, tmp_path: Path) -> None:
    node = make_node(demo_consortium, f"sqlite:///{tmp_path / 'ledger.db'}")
    seed_history(node, demo_consortium[2])
    start = node.head.height
    seen: list[int] = []

    def read(state: Any, head: Any) -> tuple[int, int]:
        seen.append(head.height)
        if len(seen) == 1:  # a block commits while this read runs
            node.submit(enrol_tx(demo_consortium, "bank-eu").to_wire())
            node.cut_block()
        result = rt.rating(state, "buyer-lyon", head.time.date(), head.height)
        return head.height, result.height

    assert node.read_at_head(read) == (start + 1, start + 1)
    assert seen == [start, start + 1]


def test_an_attestation_waits_for_the_quorum(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from client.consortium import DEMO_DESCRIPTION, init_consortium
    from ledger.block import sign_checkpoint
    from ledger.errors import Conflict
    from ledger.keys import load_key
    from ledger.store import Store
    from node.service import LedgerNode

    two = {**DEMO_DESCRIPTION, "quorum": {"validators": ["platform", "bank-eu"],
                                          "threshold": 2}}
    consortium, genesis = init_consortium(two, tmp_path / "c", passphrase="pw",
                                          time=datetime.now(UTC).replace(microsecond=0))
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        node = LedgerNode(store, genesis, node_org="platform",
                          node_key=load_key(consortium.key_path("platform", "node"), "pw"))
        orgs = {o["id"]: SimpleNamespace(member=load_key(
            consortium.key_path(o["id"], "member1"), "pw")) for o in two["organisations"]}
        seed_history(node, orgs)
        with pytest.raises(Conflict) as refused:
            read_attestation(node, "buyer-lyon")
        assert refused.value.code == "not_final" and "1/2" in refused.value.message
        head = node.head
        store.add_checkpoint_signature(head.height, head.hash, sign_checkpoint(
            head, load_key(consortium.key_path("bank-eu", "node"), "pw"), "bank-eu"))
        verified = verify_rating_attestation(genesis.to_bytes(),
                                             canonical(read_attestation(node, "buyer-lyon")))
        assert verified.score == 84 and set(verified.certified_by) == {"platform", "bank-eu"}
    finally:
        store.close()
