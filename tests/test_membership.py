"""Governance and key lifecycle (specs/membership.md).

Each test founds a five-organisation consortium and applies one transaction per
block through the real executor; the last tests run a node over SQLite and
PostgreSQL and audit the chain after rotations, revocations and a removal.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.block import sign_checkpoint
from ledger.chain import make_genesis
from ledger.contracts.membership import proposal_key, validator_set
from ledger.encoding import loads
from ledger.errors import VerificationError
from ledger.executor import BlockContext, BlockExecution, execute_block
from ledger.keys import SigningKey
from ledger.state import MemoryState
from ledger.timefmt import format_time
from ledger.tx import make_body, sign_tx

CHAIN = "gov-test"
T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
ROLES = {"platform": ["platform"], "bank-a": ["bank"], "bank-b": ["bank"],
         "supplier-a": ["supplier"], "buyer-a": ["buyer"]}
ADMIN = {org: SigningKey(bytes([3 * i + 1]) * 32) for i, org in enumerate(ROLES)}
MEMBER = {org: SigningKey(bytes([3 * i + 2]) * 32) for i, org in enumerate(ROLES)}
NODE = {org: SigningKey(bytes([3 * i + 3]) * 32) for i, org in enumerate(ROLES)}
VALIDATORS = ("platform", "bank-a")


def description(policy: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {
        "chain_id": CHAIN, "name": "Governance tests",
        "organisations": [
            {"id": org, "name": org.title(), "roles": roles,
             "admin_keys": [ADMIN[org].public_key_hex],
             "member_keys": [MEMBER[org].public_key_hex],
             "node_keys": [NODE[org].public_key_hex] if org in VALIDATORS else []}
            for org, roles in ROLES.items()],
        "quorum": {"validators": list(VALIDATORS), "threshold": 2},
        "policy": dict(policy or {}),
    }


class Ledger:
    """One consortium's state; each ``submit`` is one block of one transaction."""

    def __init__(self, policy: Mapping[str, Any] | None = None) -> None:
        genesis = make_genesis(description(policy), founder=ADMIN["platform"], time=T0)
        self.state = MemoryState({k: v for k, v in genesis.state_writes.items()
                                  if v is not None})
        self.height = 0
        self.time = T0
        self.nonce = 0

    def submit(self, tx_type: str, payload: Mapping[str, Any], key: SigningKey,
               at: datetime | None = None) -> BlockExecution:
        self.height += 1
        self.time = at or self.time + timedelta(hours=1)
        self.nonce += 1
        body = make_body(tx_type=tx_type, chain_id=CHAIN, author=key, payload=payload,
                         nonce=f"nonce-{self.nonce:06d}", created_at=self.time)
        execution = execute_block(self.state, [sign_tx(body, [key])],
                                  BlockContext(CHAIN, self.height, self.time))
        self.state.apply(execution.state.writes)
        return execution

    def ok(self, tx_type: str, payload: Mapping[str, Any], key: SigningKey,
           at: datetime | None = None) -> None:
        execution = self.submit(tx_type, payload, key, at)
        assert not execution.refused, execution.refused[0].error.to_problem()

    def refused(self, code: str, tx_type: str, payload: Mapping[str, Any], key: SigningKey,
                at: datetime | None = None) -> str:
        before = dict(self.state.items)
        execution = self.submit(tx_type, payload, key, at)
        assert not execution.accepted, f"{tx_type} was accepted; expected {code}"
        error = execution.refused[0].error
        assert error.code == code, error.to_problem()
        assert self.state.items == before
        return error.message

    def get(self, key: str) -> Any:
        raw = self.state.get_raw(key)
        return None if raw is None else loads(raw)

    def propose(self, pid: str, action: Mapping[str, Any], org: str = "platform",
                days: int = 7) -> None:
        self.ok("membership.proposal", {"proposal_id": pid, "action": dict(action),
                                        "deadline": format_time(self.time + timedelta(days=days))},
                ADMIN[org])

    def vote(self, pid: str, org: str, decision: str = "approve") -> None:
        self.ok("membership.vote", {"proposal_id": pid, "decision": decision}, ADMIN[org])

    def proposal(self, pid: str) -> dict[str, Any]:
        found: dict[str, Any] = self.get(proposal_key(pid))
        return found


NEW_ADMIN, NEW_MEMBER = SigningKey(b"\x61" * 32), SigningKey(b"\x62" * 32)
ADMIN["bank-new"] = NEW_ADMIN
ADD_BANK = {"kind": "org_add", "org": {
    "id": "bank-new", "name": "New Bank", "country": "SG", "roles": ["bank"],
    "admin_keys": [NEW_ADMIN.public_key_hex], "member_keys": [NEW_MEMBER.public_key_hex]}}


def enrol(org: str, key: SigningKey | None = None, kind: str = "member") -> dict[str, Any]:
    return {"org": org, "public_key": (key or SigningKey.generate()).public_key_hex,
            "kind": kind}


# -- governance ----------------------------------------------------------------------


def test_an_organisation_joins_in_the_vote_that_reaches_a_majority() -> None:
    ledger = Ledger()
    # Five active organisations: more than half is three approvals.
    ledger.propose("add-bank-new", ADD_BANK)
    assert ledger.proposal("add-bank-new")["status"] == "open"
    ledger.refused("unknown_key", "membership.key_enrol",
                   enrol("bank-new"), NEW_ADMIN)
    ledger.vote("add-bank-new", "bank-a")
    assert ledger.proposal("add-bank-new")["status"] == "open"
    assert ledger.get("org/bank-new") is None
    ledger.vote("add-bank-new", "supplier-a")
    proposal = ledger.proposal("add-bank-new")
    assert proposal["status"] == "executed" and proposal["decided_height"] == ledger.height
    assert proposal["approvals"] == ["platform", "bank-a", "supplier-a"]
    org = ledger.get("org/bank-new")
    assert org["status"] == "active" and org["roles"] == ["bank"]
    # The new bank signs at once, and counts towards the next majority (six: four).
    ledger.ok("membership.key_enrol", enrol("bank-new"), NEW_ADMIN)
    ledger.propose("bank-b-also-buys", {"kind": "org_roles", "org_id": "bank-b",
                                        "roles": ["bank", "buyer"]}, org="bank-new")
    for org_id in ("bank-a", "platform"):
        ledger.vote("bank-b-also-buys", org_id)
    assert ledger.proposal("bank-b-also-buys")["status"] == "open"
    ledger.vote("bank-b-also-buys", "bank-b")
    assert ledger.get("org/bank-b")["roles"] == ["bank", "buyer"]


def test_votes_are_refused_once_decided_past_the_deadline_twice_or_by_non_admins() -> None:
    ledger = Ledger()
    ledger.propose("p1", ADD_BANK, days=2)
    vote = {"proposal_id": "p1", "decision": "approve"}
    ledger.refused("already_voted", "membership.vote", vote, ADMIN["platform"])
    ledger.refused("not_org_admin", "membership.vote", vote, MEMBER["bank-a"])
    ledger.refused("unknown_proposal", "membership.vote", {**vote, "proposal_id": "p9"},
                   ADMIN["bank-a"])
    late = ledger.refused("proposal_expired", "membership.vote", vote, ADMIN["bank-a"],
                          at=ledger.time + timedelta(days=3))
    assert "closed at" in late
    ledger.propose("p2", {"kind": "org_roles", "org_id": "buyer-a",
                          "roles": ["buyer", "supplier"]})
    ledger.vote("p2", "bank-a")
    ledger.vote("p2", "bank-b")
    decided = ledger.refused("proposal_decided", "membership.vote", {**vote, "proposal_id": "p2"},
                             ADMIN["buyer-a"])
    assert "executed" in decided
    ledger.refused("duplicate_proposal", "membership.proposal",
                   {"proposal_id": "p2", "action": ADD_BANK,
                    "deadline": format_time(ledger.time + timedelta(days=1))},
                   ADMIN["bank-a"])
    ledger.refused("bad_deadline", "membership.proposal",
                   {"proposal_id": "p3", "action": ADD_BANK,
                    "deadline": format_time(ledger.time + timedelta(days=31))},
                   ADMIN["bank-a"])
    ledger.refused("not_org_admin", "membership.proposal",
                   {"proposal_id": "p3", "action": ADD_BANK,
                    "deadline": format_time(ledger.time + timedelta(days=1))},
                   MEMBER["bank-a"])


def test_a_proposal_fails_its_rejections_make_a_majority_impossible() -> None:
    ledger = Ledger()
    ledger.propose("p1", ADD_BANK)
    ledger.vote("p1", "bank-a", "reject")
    ledger.vote("p1", "bank-b", "reject")
    assert ledger.proposal("p1")["status"] == "open"  # 2 more approvals could still pass it
    ledger.vote("p1", "buyer-a", "reject")
    assert ledger.proposal("p1")["status"] == "rejected"
    assert ledger.get("org/bank-new") is None


def test_an_action_that_no_longer_applies_fails_but_the_vote_is_recorded() -> None:
    ledger = Ledger()
    ledger.propose("first", ADD_BANK)
    ledger.propose("second", ADD_BANK, org="bank-a")
    for org in ("bank-a", "bank-b"):
        ledger.vote("first", org)
    # Six active organisations now: four approvals.
    for org in ("platform", "bank-b", "buyer-a"):
        ledger.vote("second", org)
    second = ledger.proposal("second")
    assert second["status"] == "failed" and second["failure"]["code"] == "duplicate_org"
    # A proposal that cannot apply now is refused outright.
    message = ledger.refused("duplicate_org", "membership.proposal",
                             {"proposal_id": "third", "action": ADD_BANK,
                              "deadline": format_time(ledger.time + timedelta(days=1))},
                             ADMIN["bank-a"])
    assert "never reused" in message


def test_a_removed_organisation_can_no_longer_sign_and_its_votes_stop_counting() -> None:
    ledger = Ledger()
    ledger.propose("p-vote", ADD_BANK, org="buyer-a")  # buyer-a approves
    ledger.propose("rm-buyer", {"kind": "org_remove", "org_id": "buyer-a"})
    ledger.vote("rm-buyer", "bank-a")
    ledger.vote("rm-buyer", "bank-b")
    assert ledger.get("org/buyer-a")["status"] == "removed"
    ledger.refused("org_inactive", "membership.key_enrol", enrol("buyer-a"), ADMIN["buyer-a"])
    # Four active organisations now: three approvals needed; buyer-a's does not count.
    ledger.vote("p-vote", "platform")
    assert ledger.proposal("p-vote")["status"] == "open"
    ledger.vote("p-vote", "bank-a")
    assert ledger.proposal("p-vote")["status"] == "open"
    ledger.vote("p-vote", "bank-b")
    assert ledger.proposal("p-vote")["status"] == "executed"
    ledger.refused("validator_in_quorum", "membership.proposal",
                   {"proposal_id": "rm-bank-a", "action": {"kind": "org_remove",
                                                           "org_id": "bank-a"},
                    "deadline": format_time(ledger.time + timedelta(days=1))},
                   ADMIN["platform"])


def test_a_quorum_change_freezes_the_new_validator_set() -> None:
    ledger = Ledger()
    before = validator_set(ledger.state)
    assert set(before.node_keys) == {"platform", "bank-a"} and before.threshold == 2
    ledger.refused("validator_without_node_key", "membership.proposal",
                   {"proposal_id": "q0", "action": {"kind": "quorum",
                                                    "validators": ["platform", "bank-b"],
                                                    "threshold": 2},
                    "deadline": format_time(ledger.time + timedelta(days=1))},
                   ADMIN["platform"])
    bank_b_node = SigningKey(b"\x71" * 32)
    ledger.ok("membership.key_enrol", enrol("bank-b", bank_b_node, "node"), ADMIN["bank-b"])
    # Enrolling a node key does not make it a validator key.
    assert validator_set(ledger.state) == before
    ledger.propose("q1", {"kind": "quorum", "validators": ["platform", "bank-b"],
                          "threshold": 1})
    ledger.vote("q1", "bank-b")
    ledger.vote("q1", "supplier-a")
    after = validator_set(ledger.state)
    assert set(after.node_keys) == {"platform", "bank-b"} and after.threshold == 1
    assert after.node_keys["bank-b"] == {bank_b_node.key_id: bank_b_node.public_key}
    record = ledger.get("validators")
    assert record["epoch"] == 1 and record["height"] == ledger.height
    # bank-a is no longer a validator: it may now be removed, and its node key revoked.
    ledger.ok("membership.key_revoke", {"key_id": NODE["bank-a"].key_id, "reason": "retired"},
              ADMIN["bank-a"])
    ledger.refused("node_key_in_validator_set", "membership.key_revoke",
                   {"key_id": bank_b_node.key_id, "reason": "x"}, ADMIN["bank-b"])


def test_a_certificate_signed_only_by_a_removed_validator_does_not_count() -> None:
    from ledger.block import BlockHeader, Certificate, verify_certificate

    ledger = Ledger()
    ledger.propose("q1", {"kind": "quorum", "validators": ["platform"], "threshold": 1})
    ledger.vote("q1", "bank-b")
    ledger.vote("q1", "supplier-a")
    header = BlockHeader(CHAIN, ledger.height + 1, b"\x01" * 32, 9, b"\x02" * 32, b"\x03" * 32,
                         ledger.time, NODE["bank-a"].key_id)
    forged = Certificate(header.height, header.hash,
                         (sign_checkpoint(header, NODE["bank-a"], "bank-a"),))
    with pytest.raises(VerificationError, match="1 required"):
        verify_certificate(header, forged, validator_set(ledger.state))
    good = Certificate(header.height, header.hash,
                       (sign_checkpoint(header, NODE["platform"], "platform"),))
    verify_certificate(header, good, validator_set(ledger.state))


def test_a_consortium_policy_sets_the_approval_threshold() -> None:
    ledger = Ledger({"governance": {"approval": {"numerator": 2, "denominator": 3}}})
    # 5 * 2 // 3 + 1 = 4 approvals.
    ledger.propose("p1", ADD_BANK)
    for org in ("bank-a", "bank-b"):
        ledger.vote("p1", org)
    assert ledger.proposal("p1")["status"] == "open"
    ledger.vote("p1", "buyer-a")
    assert ledger.proposal("p1")["status"] == "executed"
    assert ledger.proposal("p1")["needed"] == 4


@pytest.mark.parametrize("policy", [
    {"governance": {"approval": {"numerator": 2, "denominator": 2}}},
    {"governance": {"approval": {"numerator": 0, "denominator": 2}}},
    {"governance": {"quorum": 3}},
    {"keys": {"max_overlap_days": 0}},
    {"governance": []},
], ids=["fraction-one", "zero", "unknown-rule", "zero-days", "not-an-object"])
def test_a_malformed_governance_policy_is_refused_at_genesis(policy: dict[str, Any]) -> None:
    with pytest.raises(VerificationError, match="bad_policy"):
        make_genesis(description(policy), founder=ADMIN["platform"], time=T0)


# -- key lifecycle ---------------------------------------------------------------------


def test_a_rotated_key_signs_until_the_overlap_ends_then_is_refused() -> None:
    ledger = Ledger()
    new_member = SigningKey(b"\x81" * 32)
    until = ledger.time + timedelta(days=2)
    ledger.ok("membership.key_rotate", {"key_id": MEMBER["supplier-a"].key_id,
                                        "new_public_key": new_member.public_key_hex,
                                        "overlap_until": format_time(until)},
              ADMIN["supplier-a"])
    old = ledger.get(f"key/{MEMBER['supplier-a'].key_id}")
    assert old["rotated_to"] == new_member.key_id and old["valid_until"] == format_time(until)
    assert ledger.get(f"key/{new_member.key_id}")["kind"] == "member"
    # Both keys sign inside the window, the old one up to its last instant.
    order = {"order_id": "PO-1", "buyer": "buyer-a", "seller": "supplier-a",
             "currency": "EUR", "total": 100}
    body = make_body(tx_type="trade.order", chain_id=CHAIN, author=MEMBER["supplier-a"],
                     payload=order, nonce="order-0001", created_at=until - timedelta(minutes=1))
    tx = sign_tx(body, [MEMBER["supplier-a"], MEMBER["buyer-a"]])
    execution = execute_block(ledger.state, [tx], BlockContext(CHAIN, ledger.height + 1, until))
    assert not execution.refused
    late = execute_block(ledger.state, [tx],
                         BlockContext(CHAIN, ledger.height + 1, until + timedelta(seconds=1)))
    assert late.refused[0].error.code == "key_rotated"
    assert new_member.key_id in late.refused[0].error.message
    ledger.refused("already_rotated", "membership.key_rotate",
                   {"key_id": MEMBER["supplier-a"].key_id,
                    "new_public_key": SigningKey(b"\x82" * 32).public_key_hex,
                    "overlap_until": format_time(ledger.time + timedelta(days=1))},
                   ADMIN["supplier-a"])


def test_rotation_rules_overlap_bounds_admin_keys_and_validator_node_keys() -> None:
    ledger = Ledger()
    rotate = {"key_id": ADMIN["bank-b"].key_id,
              "new_public_key": SigningKey(b"\x91" * 32).public_key_hex}
    ledger.refused("bad_overlap", "membership.key_rotate",
                   {**rotate, "overlap_until": format_time(ledger.time)}, ADMIN["bank-b"])
    ledger.refused("bad_overlap", "membership.key_rotate",
                   {**rotate, "overlap_until": format_time(ledger.time + timedelta(days=40))},
                   ADMIN["bank-b"])
    ledger.refused("not_org_admin", "membership.key_rotate",
                   {**rotate, "overlap_until": format_time(ledger.time + timedelta(days=2))},
                   ADMIN["bank-a"])
    ledger.refused("node_key_in_validator_set", "membership.key_rotate",
                   {"key_id": NODE["bank-a"].key_id,
                    "new_public_key": SigningKey(b"\x92" * 32).public_key_hex,
                    "overlap_until": format_time(ledger.time + timedelta(days=2))},
                   ADMIN["bank-a"])
    # An admin key rotates like any other; the successor may not be revoked while the
    # old key's window is the only other admin authority.
    ledger.ok("membership.key_rotate",
              {**rotate, "overlap_until": format_time(ledger.time + timedelta(days=2))},
              ADMIN["bank-b"])
    successor = SigningKey(b"\x91" * 32)
    ledger.refused("last_admin_key", "membership.key_revoke",
                   {"key_id": successor.key_id, "reason": "oops"}, ADMIN["bank-b"])
    ledger.ok("membership.key_enrol", enrol("bank-b"), successor)


def test_a_revoked_key_is_refused_from_its_block_on() -> None:
    ledger = Ledger()
    ledger.ok("membership.key_revoke", {"key_id": MEMBER["bank-a"].key_id,
                                        "reason": "laptop lost"}, ADMIN["bank-a"])
    ledger.refused("key_revoked", "membership.key_enrol", enrol("bank-a"), MEMBER["bank-a"])
    ledger.refused("already_revoked", "membership.key_revoke",
                   {"key_id": MEMBER["bank-a"].key_id, "reason": "again"}, ADMIN["bank-a"])
    ledger.refused("last_admin_key", "membership.key_revoke",
                   {"key_id": ADMIN["bank-a"].key_id, "reason": "x"}, ADMIN["bank-a"])


# -- on a node, audited ------------------------------------------------------------------


def test_the_audit_replays_clean_after_rotations_revocations_and_a_removal(
        demo_consortium: Any, db_url: str) -> None:
    from client.sdk import TxBuilder
    from ledger.audit import audit
    from ledger.errors import Rejected
    from tests.helpers import FixedClock, make_node

    _consortium, genesis, orgs = demo_consortium
    clock = FixedClock(datetime(2026, 2, 1, 9, 0, tzinfo=UTC))
    node = make_node(demo_consortium, db_url, clock=clock)

    def submit(key: SigningKey, tx_type: str, payload: Mapping[str, Any],
               *cosigners: SigningKey) -> str:
        tx = TxBuilder(key, chain_id=genesis.chain_id).build(
            tx_type, payload, cosigners=cosigners, created_at=clock.now())
        node.submit(tx.to_wire())
        node.cut_block()
        status = node.status(tx.tx_id_hex)
        assert status is not None and status.status == "committed", status
        return tx.tx_id_hex

    def order(order_id: str) -> dict[str, Any]:
        return {"order_id": order_id, "buyer": "buyer-lyon", "seller": "supplier-sz",
                "currency": "EUR", "total": 1000}

    sz, lyon = orgs["supplier-sz"], orgs["buyer-lyon"]
    successor = SigningKey.generate()
    submit(sz.admin, "membership.key_rotate", {
        "key_id": sz.member.key_id, "new_public_key": successor.public_key_hex,
        "overlap_until": format_time(clock.now() + timedelta(hours=1))})
    # Inside the window both keys sign; after it the old one is refused at intake.
    clock.advance(minutes=30)
    submit(sz.member, "trade.order", order("PO-ROT-1"), lyon.member)
    submit(successor, "trade.order", order("PO-ROT-2"), lyon.member)
    clock.advance(hours=1)
    late = TxBuilder(sz.member, chain_id=genesis.chain_id).build(
        "trade.order", order("PO-ROT-3"), cosigners=[lyon.member], created_at=clock.now())
    with pytest.raises(Rejected) as refused:
        node.submit(late.to_wire())
    assert refused.value.code == "key_rotated"
    # A buyer member key signs, then is revoked: its order stays valid history.
    extra = SigningKey.generate()
    submit(lyon.admin, "membership.key_enrol", enrol("buyer-lyon", extra))
    submit(successor, "trade.order", order("PO-REV-1"), extra)
    submit(lyon.admin, "membership.key_revoke", {"key_id": extra.key_id, "reason": "left"})
    revoked = TxBuilder(successor, chain_id=genesis.chain_id).build(
        "trade.order", order("PO-REV-2"), cosigners=[extra], created_at=clock.now())
    with pytest.raises(Rejected) as refused:
        node.submit(revoked.to_wire())
    assert refused.value.code == "key_revoked"
    # Governance removes the inspector after it wrote a record.
    inspector = orgs["inspector"]
    submit(inspector.admin, "membership.key_enrol", enrol("inspector"))
    deadline = format_time(clock.now() + timedelta(days=3))
    submit(orgs["platform"].admin, "membership.proposal", {
        "proposal_id": "remove-inspector", "deadline": deadline,
        "action": {"kind": "org_remove", "org_id": "inspector"}})
    for org in ("bank-asia", "bank-eu", "supplier-sz", "supplier-hcm", "buyer-lyon"):
        submit(orgs[org].admin, "membership.vote",
               {"proposal_id": "remove-inspector", "decision": "approve"})
    assert node.store.get("org/inspector")["status"] == "removed"
    report = audit(node.store, workers=0)
    assert report.ok, report.finding
    assert report.blocks == node.head.height + 1


def test_keys_status_warns_ahead_of_overlap_ends_and_rotation_age() -> None:
    from client.cli_membership import key_warnings
    from ledger.contracts.membership import key_state, proposal_state

    now = datetime(2026, 5, 1, tzinfo=UTC)
    keys = [
        {"key_id": "a" * 32, "kind": "member", "status": "active", "since": 3,
         "valid_until": "2026-05-05T00:00:00Z", "rotated_to": "b" * 32,
         "enrolled_at": "2026-04-01T00:00:00Z"},
        {"key_id": "b" * 32, "kind": "member", "status": "active", "since": 9,
         "enrolled_at": "2026-04-30T00:00:00Z"},
        {"key_id": "c" * 32, "kind": "admin", "status": "active", "since": 0,
         "enrolled_at": "2025-05-10T00:00:00Z"},
        {"key_id": "d" * 32, "kind": "member", "status": "revoked", "since": 0,
         "enrolled_at": "2024-01-01T00:00:00Z"},
    ]
    policy = {"keys": {"rotate_after_days": 365}}
    warnings = key_warnings(keys, policy, now, warn_days=14)
    assert len(warnings) == 2
    assert "stops signing at 2026-05-05T00:00:00Z" in warnings[0] and "b" * 32 in warnings[0]
    assert "c" * 32 in warnings[1] and "due for rotation on 2026-05-10" in warnings[1]
    assert key_warnings(keys, {}, now, warn_days=3) == []
    assert "stopped signing" in key_warnings(keys, {}, now + timedelta(days=5), 3)[0]
    assert [key_state(k, now) for k in keys] == ["rotating", "active", "active", "revoked"]
    assert key_state(keys[0], now + timedelta(days=5)) == "rotated"
    proposal = {"status": "open", "deadline": "2026-05-02T00:00:00Z"}
    assert proposal_state(proposal, now) == "open"
    assert proposal_state(proposal, now + timedelta(days=2)) == "expired"


def test_membership_reads_need_a_member_and_name_bad_ids(demo_consortium: Any) -> None:
    from fastapi.testclient import TestClient

    from client.sdk import Client, NodeError, TxBuilder
    from node.app import create_app
    from tests.helpers import make_node

    _c, genesis, orgs = demo_consortium
    node = make_node(demo_consortium, "sqlite://", block_interval=0.01)
    with TestClient(create_app(node)) as http:
        assert http.get("/v1/orgs").status_code == 401
        assert http.get("/v1/governance/proposals").status_code == 401
        lyon = Client(http=http, genesis=genesis.to_bytes(), key=orgs["buyer-lyon"].member)
        listed = lyon.organisations()
        assert {o["id"] for o in listed["organisations"]} >= {"platform", "inspector"}
        assert listed["quorum"] == {"validators": ["platform"], "threshold": 1}
        # Another organisation's keys and its rotation are visible to every member.
        sz = orgs["supplier-sz"]
        proposal = TxBuilder(sz.admin, chain_id=genesis.chain_id).build(
            "membership.proposal", {
                "proposal_id": "drop-inspector",
                "deadline": format_time(datetime.now(UTC) + timedelta(days=1)),
                "action": {"kind": "org_remove", "org_id": "inspector"}})
        assert lyon.with_key(sz.admin).submit(proposal)["status"] == "pending"
        assert lyon.wait(proposal.tx_id_hex)["status"] == "committed"
        shown = lyon.proposal("drop-inspector")
        assert shown["proposal"]["state"] == "open"
        assert shown["votes"] == {"supplier-sz": {"decision": "approve",
                                                  "height": shown["proposal"]["created_height"],
                                                  "tx_id": proposal.tx_id_hex}}
        assert [p["proposal_id"] for p in lyon.proposals()] == ["drop-inspector"]
        keys = lyon.organisation("supplier-sz")["keys"]
        assert {k["kind"] for k in keys} == {"admin", "member"}
        assert all(k["state"] == "active" and k["enrolled_at"] for k in keys)
        for path, code, status in (("/v1/orgs/NOPE", "malformed", 400),
                                   ("/v1/orgs/nobody", "unknown_org", 404),
                                   ("/v1/governance/proposals/none-such", "unknown_proposal",
                                    404)):
            with pytest.raises(NodeError) as failed:
                lyon.get(path)
            assert (failed.value.status, failed.value.code) == (status, code), path


def test_gov_propose_builds_each_kind_of_action(tmp_path: Any) -> None:
    import typer

    from client.cli_membership import _action
    from ledger.keys import save_key

    admin = SigningKey.generate()
    save_key(tmp_path / "admin.key", admin, "pw")
    added = _action("bank-sg", "Straits Bank", ["bank"], "SG", [f"admin={tmp_path}/admin.key"],
                    None, None, None, None, "cd" * 32)
    assert added == {"kind": "org_add", "org": {
        "id": "bank-sg", "name": "Straits Bank", "roles": ["bank"], "country": "SG",
        "admin_keys": [admin.public_key_hex], "member_keys": [], "node_keys": [],
        "encryption_key": "cd" * 32}}
    assert _action(None, "", [], "", [], "bank-a", None, None, None) == {
        "kind": "org_remove", "org_id": "bank-a"}
    assert _action(None, "", [], "", [], None, "bank-a=bank,buyer", None, None) == {
        "kind": "org_roles", "org_id": "bank-a", "roles": ["bank", "buyer"]}
    assert _action(None, "", [], "", [], None, None, "platform,bank-a:2", None) == {
        "kind": "quorum", "validators": ["platform", "bank-a"], "threshold": 2}
    with pytest.raises(typer.Exit):
        _action("x", "", [], "", [], "y", None, None, None)
    with pytest.raises(typer.Exit):
        _action("x", "", [], "", ["signing=/nowhere"], None, None, None, None)
