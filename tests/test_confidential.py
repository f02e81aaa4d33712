"""Sealed trade details: the commitment scheme, its vectors, key files and SDK builders.

specs/trade.md#confidential-details; vectors in specs/vectors/confidential.json.
"""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import nacl.public
import pytest

from client.confidential import encryption_keys, lines_total, sealed_invoice, sealed_order
from ledger.confidential import (
    COMMITMENT_DOMAIN,
    ConfidentialError,
    check_opening,
    check_sealed_copy,
    commitment_of,
    open_sealed,
    seal,
)
from ledger.encoding import canonical
from ledger.errors import MalformedRecord
from ledger.hashing import sha256
from ledger.keys import (
    EncryptionKey,
    KeyFileError,
    load_encryption_key,
    load_key,
    save_encryption_key,
)

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "specs" / "vectors"
                      / "confidential.json").read_text(encoding="utf-8"))
KEYS = {r["org"]: EncryptionKey(bytes.fromhex(r["secret_key"])) for r in VECTORS["recipients"]}
KEYS["platform"] = EncryptionKey(bytes.fromhex(VECTORS["outsider"]["secret_key"]))

DETAILS = {"line_items": [
    {"sku": "AX-100", "description": "Anodised aluminium housing", "quantity": 250,
     "unit": "EA", "unit_price": 1_840},
    {"sku": "AX-220", "description": "Gasket set, EPDM", "quantity": 250, "unit": "EA",
     "unit_price": 160}],
    "bank_terms": {"bank": "Harbour Bank Asia", "account": "HK-55-0192"}}


def _pair() -> tuple[dict[str, EncryptionKey], dict[str, bytes]]:
    secrets = {"buyer-a": EncryptionKey.generate(), "supplier-a": EncryptionKey.generate()}
    return secrets, {org: k.public_key for org, k in secrets.items()}


# -- the vectors ---------------------------------------------------------------------------


def test_vector_plaintext_and_commitment() -> None:
    plaintext = VECTORS["plaintext"].encode("utf-8")
    assert plaintext == canonical({"details": VECTORS["details"], "salt": VECTORS["salt"]})
    assert bytes.fromhex(VECTORS["commitment_domain_hex"]) == COMMITMENT_DOMAIN
    assert VECTORS["commitment"] == sha256(COMMITMENT_DOMAIN + plaintext).hex()
    # The reference's seal reproduces the commitment from the same salt.
    publics = {org: key.public_key for org, key in KEYS.items() if org != "platform"}
    assert seal(VECTORS["details"], publics, salt=bytes.fromhex(VECTORS["salt"]))[
        "commitment"] == VECTORS["commitment"]


@pytest.mark.parametrize("entry", VECTORS["recipients"], ids=lambda e: e["org"])
def test_vector_sealed_box_is_libsodiums(entry: dict[str, Any]) -> None:
    key = KEYS[entry["org"]]
    assert key.public_key_hex == entry["public_key"]
    box = base64.b64decode(entry["sealed"], validate=True)
    assert box[:32].hex() == entry["ephemeral_public_key"]
    assert bytes(nacl.public.SealedBox(key.private_key).decrypt(box)) == (
        VECTORS["plaintext"].encode("utf-8"))
    assert open_sealed(VECTORS["confidential"], entry["org"], key) == VECTORS["details"]


@pytest.mark.parametrize("case", VECTORS["bad"], ids=lambda c: c["desc"])
def test_vector_bad_case_is_refused(case: dict[str, Any]) -> None:
    expected = case["expected"]
    if expected["stage"] == "shape":
        with pytest.raises(MalformedRecord) as shape:
            open_sealed(case["confidential"], case["org"], KEYS[case["key"]])
        assert (shape.value.field, shape.value.rule) == (expected["field"], expected["rule"])
        return
    with pytest.raises(ConfidentialError) as refused:
        open_sealed(case["confidential"], case["org"], KEYS[case["key"]])
    assert refused.value.code == expected["code"]
    named = ("confidential.commitment" if expected["code"] == "commitment_mismatch"
             else "confidential.sealed")
    assert named in refused.value.message


# -- round trips and refusals --------------------------------------------------------------


def test_round_trip_for_every_party() -> None:
    secrets, publics = _pair()
    confidential = seal(DETAILS, publics)
    assert sorted(confidential["sealed"]) == ["buyer-a", "supplier-a"]
    for org, key in secrets.items():
        assert open_sealed(confidential, org, key) == DETAILS
        assert check_sealed_copy(confidential, org, key).outcome == "verified"


def test_the_salt_hides_the_details_behind_the_commitment() -> None:
    _secrets, publics = _pair()
    first, second = seal(DETAILS, publics), seal(DETAILS, publics)
    assert first["commitment"] != second["commitment"]
    guesses = {sha256(canonical(DETAILS)).hex(),
               sha256(COMMITMENT_DOMAIN + canonical(DETAILS)).hex()}
    assert first["commitment"] not in guesses
    # Each box has its own ephemeral key, so even two copies of one plaintext differ.
    assert first["sealed"]["buyer-a"] != second["sealed"]["buyer-a"]


def test_tampered_ciphertext_is_refused() -> None:
    secrets, publics = _pair()
    confidential = seal(DETAILS, publics)
    raw = bytearray(base64.b64decode(confidential["sealed"]["buyer-a"]))
    raw[60] ^= 0x80
    tampered = {**confidential, "sealed": {**confidential["sealed"],
                                           "buyer-a": base64.b64encode(raw).decode()}}
    with pytest.raises(ConfidentialError) as refused:
        open_sealed(tampered, "buyer-a", secrets["buyer-a"])
    assert refused.value.code == "unreadable"
    assert "buyer-a's encryption key" in refused.value.message
    # The other party's untouched copy still opens.
    assert open_sealed(tampered, "supplier-a", secrets["supplier-a"]) == DETAILS


def test_a_wrong_commitment_is_refused_and_named() -> None:
    secrets, publics = _pair()
    confidential = seal(DETAILS, publics)
    other = seal({**DETAILS, "notes": "price revised"}, publics)
    swapped = {**confidential, "commitment": other["commitment"]}
    with pytest.raises(ConfidentialError) as refused:
        open_sealed(swapped, "supplier-a", secrets["supplier-a"])
    assert refused.value.code == "commitment_mismatch"
    assert other["commitment"] in refused.value.message
    assert confidential["commitment"] in refused.value.message  # what the copy hashes to
    result = check_sealed_copy(swapped, "supplier-a", secrets["supplier-a"])
    assert result.outcome == "mismatch" and "commitment" in result.detail


def test_a_non_party_cannot_open_and_is_told_so() -> None:
    _secrets, publics = _pair()
    confidential = seal(DETAILS, publics)
    outsider = EncryptionKey.generate()
    with pytest.raises(ConfidentialError) as refused:
        open_sealed(confidential, "supplier-b", outsider)
    assert refused.value.code == "not_addressed"
    assert check_sealed_copy(confidential, "buyer-a", outsider).outcome == "unreadable"


@pytest.mark.parametrize(("details", "recipients", "field"), [
    ([1, 2], None, "details"),
    ({"price": float("nan")}, None, "details"),
    (DETAILS, {}, "recipients"),
    (DETAILS, {"Buyer A": bytes(32)}, "recipients['Buyer A']"),
    (DETAILS, {"buyer-a": b"short"}, "recipients[buyer-a]"),
    ({"blob": "x" * 60_000}, None, "details"),
], ids=["not-an-object", "nan", "no-recipient", "bad-org-id", "short-key", "too-large"])
def test_seal_refuses_bad_input_by_field(details: Any, recipients: Any, field: str) -> None:
    _secrets, publics = _pair()
    with pytest.raises(MalformedRecord) as refused:
        seal(details, publics if recipients is None else recipients)
    assert refused.value.field == field


def test_a_third_party_checks_disclosed_details_against_the_commitment() -> None:
    salt = bytes(range(32))
    confidential = seal(DETAILS, _pair()[1], salt=salt)
    check_opening(confidential["commitment"], DETAILS, salt)  # what the seller discloses
    altered = {**DETAILS, "bank_terms": {"bank": "Harbour Bank Asia", "account": "HK-00"}}
    for details, given in ((altered, salt), (DETAILS, bytes(32))):
        with pytest.raises(ConfidentialError) as refused:
            check_opening(confidential["commitment"], details, given)
        assert refused.value.code == "commitment_mismatch"


def test_commitment_is_over_the_exact_plaintext_bytes() -> None:
    plaintext = canonical({"details": DETAILS, "salt": "00" * 32})
    assert commitment_of(plaintext) == sha256(COMMITMENT_DOMAIN + plaintext).hex()
    assert commitment_of(plaintext + b" ") != commitment_of(plaintext)


# -- key files -----------------------------------------------------------------------------


def test_encryption_key_file_round_trip_mode_and_refusals(tmp_path: Path) -> None:
    key = EncryptionKey.generate()
    path = tmp_path / "keys" / "buyer-a" / "encryption.key"
    save_encryption_key(path, key, "pass phrase", label="buyer-a encryption")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document["version"] == "tradeledger-encryption-key/1"
    assert document["public_key"] == key.public_key_hex
    assert key.secret.hex() not in path.read_text()
    assert load_encryption_key(path, "pass phrase").secret == key.secret
    with pytest.raises(KeyFileError) as wrong:
        load_encryption_key(path, "another")
    assert wrong.value.code == "bad_passphrase"
    with pytest.raises(KeyFileError, match="not a tradeledger-key/1 key file"):
        load_key(path, "pass phrase")
    assert key.secret.hex() not in repr(key)


def test_init_gives_every_organisation_an_encryption_key(demo_consortium: Any) -> None:
    from tests.conftest import PASSPHRASE

    consortium, genesis, _orgs = demo_consortium
    published = encryption_keys(genesis)
    organisations = genesis.tx.body.payload["organisations"]
    assert sorted(published) == sorted(o["id"] for o in organisations)
    for org in ("buyer-rotterdam", "supplier-sz"):
        path = consortium.encryption_key_path(org)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert load_encryption_key(path, PASSPHRASE).public_key == published[org]
    assert len(set(published.values())) == len(published)


# -- SDK builders --------------------------------------------------------------------------


def test_sealed_order_and_invoice_keep_validator_fields_clear() -> None:
    secrets, publics = _pair()
    order = sealed_order(order_id="PO-1", buyer="buyer-a", seller="supplier-a",
                         currency="EUR", details=DETAILS, keys=publics, incoterms="FOB")
    assert order["total"] == lines_total(DETAILS) == 250 * 1_840 + 250 * 160
    assert order["incoterms"] == "FOB"
    assert "AX-100" not in json.dumps(order)
    invoice = sealed_invoice(invoice_id="INV-1", order_id="PO-1", buyer="buyer-a",
                             seller="supplier-a", currency="EUR", issue_date="2026-03-01",
                             due_date="2026-03-31", payment_terms="NET30", details=DETAILS,
                             keys=publics)
    assert invoice["amount"] == order["total"]
    assert open_sealed(invoice["confidential"], "buyer-a", secrets["buyer-a"]) == DETAILS


def test_builders_refuse_a_total_that_disagrees_with_the_lines() -> None:
    _secrets, publics = _pair()
    with pytest.raises(MalformedRecord) as refused:
        sealed_order(order_id="PO-1", buyer="buyer-a", seller="supplier-a", currency="EUR",
                     details=DETAILS, keys=publics, total=1)
    assert (refused.value.field, refused.value.rule) == ("total", "lines_total")
    with pytest.raises(MalformedRecord) as no_key:
        sealed_order(order_id="PO-1", buyer="buyer-a", seller="supplier-b", currency="EUR",
                     details=DETAILS, keys=publics)
    assert no_key.value.field == "keys" and "supplier-b" in no_key.value.message
    with pytest.raises(MalformedRecord) as bad_line:
        lines_total({"line_items": [{"sku": "A", "description": "d", "quantity": 0,
                                     "unit_price": 5}]})
    assert bad_line.value.field == "details.line_items[0].quantity"


def test_cli_seals_details_that_only_the_named_parties_open(demo_consortium: Any,
                                                            tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from client.cli import app
    from tests.conftest import PASSPHRASE

    consortium, _genesis, _orgs = demo_consortium
    details = tmp_path / "details.json"
    details.write_text(json.dumps(DETAILS), encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["confidential", "seal", str(details), "--to", "buyer-lyon",
                                 "--to", "supplier-hcm", "--genesis",
                                 str(consortium.genesis_path)])
    assert result.exit_code == 0, result.output
    confidential = json.loads(result.stdout)
    assert sorted(confidential["sealed"]) == ["buyer-lyon", "supplier-hcm"]
    assert "AX-100" not in result.stdout
    buyer = load_encryption_key(consortium.encryption_key_path("buyer-lyon"), PASSPHRASE)
    assert open_sealed(confidential, "buyer-lyon", buyer) == DETAILS
    refused = runner.invoke(app, ["confidential", "seal", str(details), "--to", "nobody-x",
                                  "--genesis", str(consortium.genesis_path)])
    assert refused.exit_code == 1 and "no encryption key for nobody-x" in refused.output
