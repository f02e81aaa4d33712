"""The write-permission table (specs/permissions.md): the spec, and every cell enforced.

The table, the cells and the counter-signature cases are all read from
``ledger.contracts.REGISTRY``, so record families added later are covered
without editing this file (a counter-signed type needs one case below).
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

try:
    import re._parser as re_parser  # Python 3.11+
except ImportError:  # pragma: no cover
    import sre_parse as re_parser  # type: ignore[no-redef]

from ledger.chain import make_genesis
from ledger.contracts import REGISTRY, ROLES, parse_payload
from ledger.errors import MalformedRecord, VerificationError
from ledger.executor import BlockContext, BlockExecution, execute_block
from ledger.keys import SigningKey
from ledger.state import MemoryState
from ledger.tx import make_body, sign_tx

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("permissions_table",
                                               ROOT / "specs" / "permissions_table.py")
assert _spec is not None and _spec.loader is not None
table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(table)

CHAIN = "permissions-test"
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
ROLE_LIST = sorted(ROLES)
ORGS = {f"only-{role}": [role] for role in ROLE_LIST}
ADMIN = {org: SigningKey(bytes([10 + i]) * 32) for i, org in enumerate(ORGS)}
NODE = SigningKey(b"\x7f" * 32)


def description(founder_org: str = "only-platform") -> dict[str, Any]:
    return {
        "chain_id": CHAIN, "name": "Permission tests",
        "organisations": [
            {"id": org, "name": org, "roles": roles, "admin_keys": [ADMIN[org].public_key_hex],
             "node_keys": [NODE.public_key_hex] if org == founder_org else []}
            for org, roles in ORGS.items()],
        "quorum": {"validators": [founder_org], "threshold": 1},
    }


GENESIS = make_genesis(description(), founder=ADMIN["only-platform"], time=T0)


# -- the spec --------------------------------------------------------------------------


def test_the_spec_table_is_the_registry() -> None:
    text = (ROOT / "specs" / "permissions.md").read_text(encoding="utf-8")
    assert table.table_in_spec(text) == table.render(), (
        "specs/permissions.md is out of date: run python specs/permissions_table.py --write")


def test_the_table_has_a_row_per_type_and_a_column_per_role() -> None:
    rows = table.render().splitlines()[2:]
    assert len(rows) == len(REGISTRY)
    assert all(row.count("|") == len(ROLES) + 3 for row in rows)


# -- payloads that pass each type's model ---------------------------------------------

# Types whose model has rules beyond its JSON schema (ISO 4217 codes, known roles, key
# formats) need a hand-made payload; a model may also carry JSON-schema ``examples``.
EXAMPLES: dict[str, dict[str, Any]] = {
    "membership.genesis": description(),
    "membership.proposal": {
        "proposal_id": "p-1", "deadline": "2026-06-05T09:00:00Z",
        "action": {"kind": "org_roles", "org_id": "only-bank", "roles": ["bank", "buyer"]}},
    "trade.order": {"order_id": "PO-1", "buyer": "only-buyer", "seller": "only-supplier",
                    "currency": "EUR", "total": 1000},
    "trade.invoice": {"invoice_id": "INV-1", "order_id": "PO-1", "amount": 1000,
                      "currency": "EUR", "issue_date": "2026-06-01",
                      "due_date": "2026-07-01", "payment_terms": "net 30"},
    "trade.payment": {"payment_id": "PAY-1", "invoice_id": "INV-1", "amount": 10,
                      "currency": "EUR", "value_date": "2026-06-01"},
    "shipments.capture": {"epcis": {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument", "schemaVersion": "2.0",
        "creationDate": "2026-06-01T10:00:00Z",
        "epcisBody": {"eventList": [{
            "type": "ObjectEvent", "eventTime": "2026-06-01T09:00:00.000Z",
            "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "bizStep": "shipping",
            "epcList": ["urn:epc:id:sgtin:6901234.012345.1"],
            "readPoint": {"id": "urn:epc:id:sgln:6901234.00001.0"}}]}}},
}


def _from_schema(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Any:
    """A small value satisfying a JSON schema as pydantic writes them."""
    if "$ref" in schema:
        return _from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for union in ("oneOf", "anyOf"):
        if union in schema:
            options = [o for o in schema[union] if o.get("type") != "null"]
            return _from_schema(options[0], defs)
    kind = schema.get("type")
    if kind == "object":
        if "patternProperties" in schema:
            pattern, value = next(iter(schema["patternProperties"].items()))
            return {_matching(pattern): _from_schema(value, defs)}
        props = schema.get("properties", {})
        return {name: _from_schema(props[name], defs) for name in schema.get("required", [])}
    if kind == "array":
        return [_from_schema(schema.get("items", {}), defs)
                for _ in range(schema.get("minItems", 0))]
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
        return max(1, low)
    if kind == "boolean":
        return False
    if kind == "string":
        if schema.get("format") == "date":
            return "2026-06-01"
        if schema.get("format") == "date-time":
            return "2026-06-02T09:00:00Z"
        if "pattern" in schema:
            return _matching(schema["pattern"])
        return "x" * max(1, schema.get("minLength", 1))
    raise AssertionError(f"no example for schema {schema}")


@functools.cache
def _matching(pattern: str) -> str:
    """The shortest string of two or more characters that ``pattern`` fully matches.

    Walks the parsed pattern, taking each repeat's minimum and each class's
    first member; enough for the anchored, flat patterns payload models use.
    """
    def walk(items: Any) -> str:
        out = ""
        for op, arg in items:
            name = str(op)
            if name == "LITERAL":
                out += chr(arg)
            elif name == "IN":
                out += first_of(arg)
            elif name in ("MAX_REPEAT", "MIN_REPEAT"):
                low, _high, sub = arg
                out += walk(sub) * max(low, 1 if not out else low)
            elif name == "SUBPATTERN":
                out += walk(arg[-1])
            elif name == "BRANCH":
                out += walk(arg[1][0])
            elif name == "ANY":
                out += "a"
            elif name != "AT":
                raise AssertionError(f"pattern {pattern!r}: no example for {name}")
        return out

    def first_of(members: Any) -> str:
        for op, arg in members:
            if str(op) == "LITERAL":
                return chr(arg)
            if str(op) == "RANGE":
                return chr(arg[0])
        raise AssertionError(f"pattern {pattern!r}: empty class")

    found = walk(re_parser.parse(pattern))
    assert re.fullmatch(pattern, found), (pattern, found)
    return found


@functools.cache
def _example(tx_type: str) -> dict[str, Any]:
    return _find_example(tx_type)


def example_payload(tx_type: str) -> dict[str, Any]:
    return dict(_example(tx_type))


def _find_example(tx_type: str) -> dict[str, Any]:
    """A payload of ``tx_type`` that passes its model, or a failure saying what to add."""
    model = REGISTRY[tx_type].payload
    schema = model.model_json_schema()
    candidates = [EXAMPLES[tx_type]] if tx_type in EXAMPLES else []
    candidates += list(schema.get("examples", []))
    candidates.append(_from_schema(schema, schema.get("$defs", {})))
    problems = []
    for candidate in candidates:
        try:
            parse_payload(model, candidate)
        except MalformedRecord as exc:
            problems.append(exc.message)
            continue
        return dict(candidate)
    pytest.fail(f"{tx_type}: no payload passes its model ({problems}); give the model "
                "JSON-schema examples or add one to EXAMPLES in tests/test_permissions.py")


# -- every cell ------------------------------------------------------------------------


def run(tx_type: str, payload: Mapping[str, Any], signers: Sequence[SigningKey],
        state: MemoryState | None = None, height: int = 1) -> BlockExecution:
    body = make_body(tx_type=tx_type, chain_id=CHAIN, author=signers[0], payload=payload,
                     nonce=f"nonce-{height:08d}", created_at=T0 + timedelta(hours=height))
    base = state if state is not None else MemoryState(
        {k: v for k, v in GENESIS.state_writes.items() if v is not None})
    return execute_block(base, [sign_tx(body, list(signers))],
                         BlockContext(CHAIN, height, T0 + timedelta(hours=height)))


BEFORE_CONTRACT = {"wrong_chain", "expired", "from_the_future", "unknown_type", "malformed",
                   "unknown_key", "key_revoked", "key_rotated", "node_key", "org_inactive",
                   "bad_signature", "nonce_reused", "role_not_allowed"}
CELLS = [(t, r) for t in sorted(REGISTRY) for r in ROLE_LIST]


@pytest.mark.parametrize(("tx_type", "role"), CELLS, ids=[f"{t}-{r}" for t, r in CELLS])
def test_each_cell_of_the_table_is_enforced(tx_type: str, role: str) -> None:
    spec = REGISTRY[tx_type]
    org = f"only-{role}"
    payload = example_payload(tx_type)
    if tx_type == "membership.genesis":
        # Height 0 only; the genesis contract is the role check (genesis_author).
        desc = description(founder_org=org)
        if table.allowed(spec, role):
            make_genesis(desc, founder=ADMIN[org], time=T0)
        else:
            with pytest.raises(VerificationError, match="genesis_author"):
                make_genesis(desc, founder=ADMIN[org], time=T0)
        return
    execution = run(tx_type, payload, [ADMIN[org]])
    codes = [r.error.code for r in execution.refused]
    if table.allowed(spec, role):
        # Past step 10: accepted, or refused by the contract itself (step 11).
        # (A contract may reuse a code of the earlier steps, naming a payload field.)
        for refused in execution.refused:
            early = refused.error.code in BEFORE_CONTRACT and (
                refused.error.code == "malformed"
                or not refused.error.message.startswith("payload."))
            assert not early, refused.error.to_problem()
    else:
        assert codes == ["role_not_allowed"], codes
        message = execution.refused[0].error.message
        assert tx_type in message and org in message


# -- the counter-signature column --------------------------------------------------------


class Trade:
    """An order between only-buyer and only-supplier, invoiced, for the cases below."""

    def __init__(self) -> None:
        self.state = MemoryState({k: v for k, v in GENESIS.state_writes.items()
                                  if v is not None})
        self.height = 0

    def submit(self, tx_type: str, payload: Mapping[str, Any], *orgs: str) -> BlockExecution:
        self.height += 1
        execution = run(tx_type, payload, [ADMIN[o] for o in orgs], self.state, self.height)
        self.state.apply(execution.state.writes)
        return execution

    def code(self, tx_type: str, payload: Mapping[str, Any], *orgs: str) -> str | None:
        execution = self.submit(tx_type, payload, *orgs)
        return execution.refused[0].error.code if execution.refused else None


BUYER, SELLER, PLATFORM = "only-buyer", "only-supplier", "only-platform"


def _order(trade: Trade, order_id: str = "PO-1") -> None:
    assert trade.code("trade.order", {**EXAMPLES["trade.order"], "order_id": order_id},
                      SELLER, BUYER) is None


def _dispute(trade: Trade) -> None:
    _order(trade)
    assert trade.code("trade.invoice", EXAMPLES["trade.invoice"], SELLER) is None
    assert trade.code("trade.dispute_open", {"dispute_id": "D-1", "invoice_id": "INV-1",
                                             "reason": "short shipment"}, BUYER) is None


def case_order(trade: Trade) -> None:
    order = EXAMPLES["trade.order"]
    assert trade.code("trade.order", order, SELLER) == "missing_signature"
    assert trade.code("trade.order", order, BUYER) == "missing_signature"
    assert trade.code("trade.order", order, BUYER, SELLER) is None


def case_invoice(trade: Trade) -> None:
    _order(trade)
    over = {**EXAMPLES["trade.invoice"], "amount": 1001}
    assert trade.code("trade.invoice", over, SELLER) == "exceeds_order"
    assert trade.code("trade.invoice", over, SELLER, BUYER) is None


def case_dispute_resolve(trade: Trade) -> None:
    _dispute(trade)
    resolve = {"dispute_id": "D-1", "outcome": "rejected"}
    assert trade.code("trade.dispute_resolve", resolve, BUYER) == "missing_signature"
    assert trade.code("trade.dispute_resolve", resolve, SELLER) == "missing_signature"
    assert trade.code("trade.dispute_resolve", resolve, BUYER, SELLER) is None
    other = Trade()
    _dispute(other)
    assert other.code("trade.dispute_resolve", resolve, PLATFORM) is None


COUNTERSIGN_CASES: dict[str, Callable[[Trade], None]] = {
    "trade.order": case_order,
    "trade.invoice": case_invoice,
    "trade.dispute_resolve": case_dispute_resolve,
}
COUNTERSIGNED = sorted(t for t, s in REGISTRY.items() if s.countersigned_by)


@pytest.mark.parametrize("tx_type", COUNTERSIGNED)
def test_each_counter_signature_in_the_table_is_required(tx_type: str) -> None:
    case = COUNTERSIGN_CASES.get(tx_type)
    needs = REGISTRY[tx_type].countersigned_by
    assert case is not None, (f"{tx_type} needs a counter-signature ({needs}); add a case "
                              "to COUNTERSIGN_CASES")
    case(Trade())


def test_a_signature_from_an_organisation_that_is_no_party_is_refused() -> None:
    trade = Trade()
    order = EXAMPLES["trade.order"]
    assert trade.code("trade.order", order, SELLER, BUYER, "only-bank") == "foreign_signer"
