"""Validator-set changes: the node, the audit and the offline verifier follow them.

A consortium founded with validators {platform, bank-a} (threshold 1) votes a new
quorum {platform, bank-b} (threshold 2). Blocks after the change are certified by
the new set; proof bundles carry the certified chain of changes, so
``client.verify`` checks a head against the new set from the genesis file alone,
and a certificate signed only by the removed validator is refused.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from client.verify import BundleError, verify_consistency_bundle, verify_inclusion_bundle
from ledger.audit import audit, rebuild_derived
from ledger.block import sign_checkpoint
from ledger.chain import make_genesis
from ledger.errors import VerificationError
from ledger.keys import SigningKey
from ledger.store import Store
from ledger.timefmt import format_time
from ledger.tx import make_body, sign_tx
from node.service import LedgerNode
from tests.helpers import OPEN_STORES, FixedClock

CHAIN = "valset-test"
T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
ORGS = ["platform", "bank-a", "bank-b", "supplier-a", "buyer-a"]
ADMIN = {org: SigningKey(bytes([40 + i]) * 32) for i, org in enumerate(ORGS)}
NODE = {org: SigningKey(bytes([60 + i]) * 32) for i, org in enumerate(ORGS)}
ROLES = {"platform": ["platform"], "bank-a": ["bank"], "bank-b": ["bank"],
         "supplier-a": ["supplier"], "buyer-a": ["buyer"]}
GENESIS = make_genesis({
    "chain_id": CHAIN, "name": "Validator changes",
    "organisations": [
        {"id": org, "name": org, "roles": ROLES[org], "admin_keys": [ADMIN[org].public_key_hex],
         "node_keys": [NODE[org].public_key_hex] if org in ("platform", "bank-a") else []}
        for org in ORGS],
    "quorum": {"validators": ["platform", "bank-a"], "threshold": 1},
}, founder=ADMIN["platform"], time=T0)
GENESIS_BYTES = GENESIS.to_bytes()


class Chain:
    def __init__(self, url: str) -> None:
        self.clock = FixedClock(T0 + timedelta(minutes=1))
        store = Store(url)
        OPEN_STORES.append(store)
        self.node = LedgerNode(store, GENESIS, node_key=NODE["platform"], node_org="platform",
                               clock=self.clock)
        self.nonce = 0
        self.change_height = 0

    def submit(self, org: str, tx_type: str, payload: dict[str, Any]) -> str:
        self.nonce += 1
        self.clock.advance(minutes=1)
        body = make_body(tx_type=tx_type, chain_id=CHAIN, author=ADMIN[org], payload=payload,
                         nonce=f"valset-{self.nonce:04d}", created_at=self.clock.now())
        tx = sign_tx(body, [ADMIN[org]])
        self.node.submit(tx.to_wire())
        self.node.cut_block()
        status = self.node.status(tx.tx_id_hex)
        assert status is not None and status.status == "committed", status
        return tx.tx_id_hex

    def cosign(self, org: str, height: int) -> None:
        """A second validator's node signs block ``height`` (as its own node would)."""
        header = self.node.store.header(height)
        assert header is not None
        self.node.add_checkpoint(height, sign_checkpoint(header, NODE[org], org))


def enrol(org: str) -> dict[str, Any]:
    return {"org": org, "public_key": SigningKey.generate().public_key_hex, "kind": "member"}


def changed_chain(url: str) -> Chain:
    """A chain whose last block executed the quorum change (``change_height``)."""
    c = Chain(url)
    c.submit("bank-b", "membership.key_enrol",
             {"org": "bank-b", "public_key": NODE["bank-b"].public_key_hex, "kind": "node"})
    c.submit("platform", "membership.proposal", {
        "proposal_id": "new-quorum", "deadline": format_time(T0 + timedelta(days=2)),
        "action": {"kind": "quorum", "validators": ["platform", "bank-b"], "threshold": 2}})
    # Five organisations: the third approval executes the change.
    for org in ("bank-b", "supplier-a"):
        c.submit(org, "membership.vote", {"proposal_id": "new-quorum", "decision": "approve"})
    c.change_height = c.node.head.height
    return c


@pytest.fixture
def chain(db_url: str) -> Chain:
    return changed_chain(db_url)


def test_blocks_after_a_quorum_change_need_the_new_validators(chain: Chain) -> None:
    changed = chain.change_height
    assert chain.node.store.get("validators")["height"] == changed
    late = chain.submit("buyer-a", "membership.key_enrol", enrol("buyer-a"))
    head = chain.node.head.height
    # The platform's checkpoint alone no longer makes block changed+1 final.
    report = audit(chain.node.store, workers=0)
    assert not report.ok and report.finding is not None
    assert report.finding.height == changed + 1 and "1/2" in report.finding.message
    with pytest.raises(BundleError, match="1/2"):
        verify_inclusion_bundle(GENESIS_BYTES, chain.node.inclusion_bundle(late, reader="buyer-a"))
    # The node takes checkpoints only from validators in force at each height.
    header = chain.node.store.header(head)
    assert header is not None
    with pytest.raises(VerificationError, match="does not count"):
        chain.node.add_checkpoint(head, sign_checkpoint(header, NODE["bank-a"], "bank-a"))
    early = chain.node.store.header(changed)
    assert early is not None
    assert chain.node.add_checkpoint(changed, sign_checkpoint(early, NODE["bank-a"],
                                                              "bank-a")).final
    for height in range(changed + 1, head + 1):
        chain.cosign("bank-b", height)
    assert audit(chain.node.store, workers=0).ok
    record = verify_inclusion_bundle(GENESIS_BYTES, chain.node.inclusion_bundle(late, reader="buyer-a"))
    assert record.validator_epoch == 1
    assert set(record.signed_by) == {"platform", "bank-b"}
    # The derived index of changes rebuilds identically.
    rebuild_derived(chain.node.store, workers=0)
    assert audit(chain.node.store, workers=0).ok


def _bundle_after_change(chain: Chain) -> dict[str, Any]:
    tx_id = chain.submit("buyer-a", "membership.key_enrol", enrol("buyer-a"))
    for height in range(chain.change_height + 1, chain.node.head.height + 1):
        chain.cosign("bank-b", height)
    bundle = chain.node.inclusion_bundle(tx_id, reader="buyer-a")
    assert len(bundle["validator_changes"]) == 1
    verify_inclusion_bundle(GENESIS_BYTES, bundle)
    return bundle


def _forged_by_bank_a(bundle: dict[str, Any]) -> dict[str, Any]:
    from ledger.block import BlockHeader

    forged = copy.deepcopy(bundle)
    header = BlockHeader.from_wire(forged["header"])
    forged["certificate"]["signatures"] = [
        sign_checkpoint(header, NODE["bank-a"], "bank-a").to_wire()]
    return forged


def test_a_certificate_signed_only_by_a_removed_validator_is_refused(chain: Chain) -> None:
    bundle = _bundle_after_change(chain)
    forged = _forged_by_bank_a(bundle)
    with pytest.raises(BundleError, match="0/2"):
        verify_inclusion_bundle(GENESIS_BYTES, forged)
    # Without the chain of changes the genesis set would accept bank-a alone: a
    # verifier that remembers the epoch it saw refuses the truncated bundle.
    del forged["validator_changes"]
    assert verify_inclusion_bundle(GENESIS_BYTES, forged).validator_epoch == 0
    with pytest.raises(BundleError, match="epoch 0"):
        verify_inclusion_bundle(GENESIS_BYTES, forged, min_epoch=1)
    consistency = chain.node.consistency_bundle(1)
    verify_consistency_bundle(GENESIS_BYTES, consistency, min_epoch=1)
    consistency["certificate"] = forged["certificate"]
    with pytest.raises(BundleError, match="0/2"):
        verify_consistency_bundle(GENESIS_BYTES, consistency)


def _threshold_one(change: dict[str, Any]) -> None:
    for item in change["changes"]:
        if item[0] == "validators":
            item[1] = item[1].replace('"threshold":2', '"threshold":1')


def _uncertified(change: dict[str, Any]) -> None:
    change["certificate"]["signatures"] = []


def _prev_header(change: dict[str, Any]) -> None:
    change["prev_header"]["time"] = "2026-07-01T09:00:01Z"


def _dropped_write(change: dict[str, Any]) -> None:
    change["changes"].pop(0)


@pytest.mark.parametrize("mutate", [_threshold_one, _uncertified, _prev_header,
                                    _dropped_write])
def test_a_tampered_chain_of_changes_is_refused(chain: Chain, mutate: Any) -> None:
    bundle = _bundle_after_change(chain)
    mutate(bundle["validator_changes"][0])
    with pytest.raises(BundleError, match=r"validator_changes\[0\]"):
        verify_inclusion_bundle(GENESIS_BYTES, bundle)
