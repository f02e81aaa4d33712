"""Membership: the consortium, its organisations, roles, keys and governance.

Genesis seeds the consortium (specs/protocol.md#genesis). Afterwards adding,
removing or re-roling an organisation and changing the validator quorum need
the approval of a quorum of active organisations: a ``membership.proposal``
and ``membership.vote`` transactions, the action executing in the transaction
that reaches the approval threshold (specs/membership.md). Admin keys enrol,
rotate and revoke their organisation's keys; validity is judged at the block
that commits a transaction, so history stays valid after any change.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from ledger.block import ValidatorSet
from ledger.contracts.base import ROLES, Keys, Payload, TxContext, WireTime, contract
from ledger.encoding import loads
from ledger.errors import Rejected
from ledger.keys import key_id
from ledger.state import Overlay, StateReader
from ledger.timefmt import format_time, parse_time

ORG_ID = r"^[a-z0-9][a-z0-9-]{1,31}$"
HEX_KEY = r"^[0-9a-f]{64}$"


def _check_roles(roles: list[str]) -> list[str]:
    for role in roles:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles are {', '.join(sorted(ROLES))}")
    if len(set(roles)) != len(roles):
        raise ValueError("a role is listed twice")
    return roles


class OrgSpec(Payload):
    id: str = Field(pattern=ORG_ID)
    name: str = Field(min_length=1, max_length=200)
    country: str = Field(default="", pattern=r"^([A-Z]{2})?$")
    roles: list[str] = Field(min_length=1)
    admin_keys: list[str] = Field(min_length=1)
    member_keys: list[str] = Field(default_factory=list)
    node_keys: list[str] = Field(default_factory=list)
    encryption_key: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, roles: list[str]) -> list[str]:
        return _check_roles(roles)

    @field_validator("admin_keys", "member_keys", "node_keys")
    @classmethod
    def _hex_keys(cls, keys: list[str]) -> list[str]:
        for k in keys:
            if not re.fullmatch(HEX_KEY, k):
                raise ValueError("each key is a 32-byte Ed25519 public key in lower-case hex")
        return keys


class QuorumSpec(Payload):
    validators: list[str] = Field(min_length=1)
    threshold: int = Field(ge=1)


class GenesisPayload(Payload):
    chain_id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    organisations: list[OrgSpec] = Field(min_length=1)
    quorum: QuorumSpec
    policy: dict[str, Any] = Field(default_factory=dict)


@contract(
    "membership.genesis",
    payload=GenesisPayload,
    roles={"platform"},
    summary="Found the consortium: organisations, roles, keys, quorum (height 0 only).",
    public=True,
)
def apply_genesis(ctx: TxContext, p: GenesisPayload) -> None:
    # The executor admits this type only at height 0, with an empty state.
    if p.chain_id != ctx.chain_id:
        raise Rejected("wrong_chain", "payload.chain_id differs from the transaction's chain_id")
    seen_orgs: set[str] = set()
    for org in p.organisations:
        if org.id in seen_orgs:
            raise Rejected("duplicate_org", f"organisation {org.id} is listed twice")
        seen_orgs.add(org.id)
        _enrol_org(ctx.state, org, ctx.height)
    for validator in p.quorum.validators:
        if validator not in seen_orgs:
            raise Rejected("unknown_validator", f"quorum names unknown organisation {validator}")
        if not kinds_of(ctx.state, validator)["node"]:
            raise Rejected("validator_without_node_key",
                           f"validator {validator} has no node key to sign checkpoints")
    if len(set(p.quorum.validators)) != len(p.quorum.validators):
        raise Rejected("duplicate_validator", "a validator is listed twice in the quorum")
    if p.quorum.threshold > len(p.quorum.validators):
        raise Rejected("bad_quorum", "threshold exceeds the number of validators")
    check_policy(p.policy)
    author = ctx.state.get(Keys.key(ctx.tx.body.author))
    if author is None or author["kind"] != "admin":
        raise Rejected("genesis_author", "genesis must be signed by an organisation's admin key")
    org = ctx.state.get(Keys.org(author["org"]))
    if "platform" not in org["roles"]:
        raise Rejected("genesis_author", "genesis must be signed by the platform's admin key")
    ctx.state.put(Keys.CONSORTIUM, {
        "chain_id": p.chain_id, "name": p.name,
        "quorum": {"validators": p.quorum.validators, "threshold": p.quorum.threshold},
        "policy": p.policy,
    })
    ctx.parties.update(seen_orgs)


def _enrol_org(state: Overlay, org: OrgSpec, height: int) -> None:
    """Write an organisation and its keys (genesis step 3; ``org_add``)."""
    kinds = {"admin": org.admin_keys, "member": org.member_keys, "node": org.node_keys}
    ids: dict[str, list[str]] = {}
    for kind, keys in kinds.items():
        ids[kind] = []
        for public in keys:
            kid = key_id(bytes.fromhex(public))
            if state.exists(Keys.key(kid)):
                raise Rejected("duplicate_key", f"key {kid} is listed twice")
            ids[kind].append(kid)
            state.put(Keys.key(kid), {
                "key_id": kid, "org": org.id, "kind": kind, "public_key": public,
                "status": "active", "since": height, "revoked_at": None,
            })
            state.put(Keys.org_key(org.id, kid), kind)
    # The organisation record lists only its admin and node keys, which stay
    # few; member keys are indexed under orgkey/<org>/ so the record keeps a
    # bounded size however many members enrol.
    state.put(Keys.org(org.id), {
        "id": org.id, "name": org.name, "country": org.country, "roles": org.roles,
        "status": "active", "since": height,
        "keys": {"admin": ids["admin"], "node": ids["node"]},
        "encryption_key": org.encryption_key,
    })


def kinds_of(state: Overlay | StateReader, org_id: str) -> dict[str, list[str]]:
    raw = state.get_raw(Keys.org(org_id))
    if raw is None:
        return {"admin": [], "node": []}
    keys: dict[str, list[str]] = loads(raw)["keys"]
    return keys


VALIDATORS = "validators"


def validator_set(state: StateReader) -> ValidatorSet:
    """The validator set in force: who signs checkpoints, and the quorum.

    Until governance first changes the quorum it is the genesis one: the
    genesis node keys of the genesis validators, which is exactly what an
    offline verifier reads from the genesis file. Afterwards it is the
    ``validators`` record the executing vote wrote, with the node keys frozen
    at that height (specs/membership.md#validator-set). Enrolling a node key
    never changes the set; a key in the set cannot be revoked or rotated.
    """
    raw = state.get_raw(VALIDATORS)
    if raw is not None:
        record = loads(raw)
        return ValidatorSet(
            node_keys={org: {kid: bytes.fromhex(pub) for kid, pub in keys.items()}
                       for org, keys in record["validators"].items()},
            threshold=int(record["threshold"]))
    raw = state.get_raw(Keys.CONSORTIUM)
    if raw is None:
        raise Rejected("no_consortium", "the state holds no consortium (no genesis applied)")
    quorum = loads(raw)["quorum"]
    node_keys: dict[str, dict[str, bytes]] = {}
    for org_id in quorum["validators"]:
        keys: dict[str, bytes] = {}
        for kid in kinds_of(state, org_id)["node"]:
            key_raw = state.get_raw(Keys.key(kid))
            if key_raw is None:
                continue
            record = loads(key_raw)
            if record["status"] == "active" and record["since"] == 0:
                keys[kid] = bytes.fromhex(record["public_key"])
        node_keys[org_id] = keys
    return ValidatorSet(node_keys=node_keys, threshold=int(quorum["threshold"]))


def _in_validator_set(state: Overlay, kid: str) -> bool:
    return any(kid in keys for keys in validator_set(state).node_keys.values())


# -- consortium policy ------------------------------------------------------------

DEFAULT_APPROVAL = (1, 2)  # more than half of the active organisations
DEFAULT_MAX_VOTING = timedelta(days=30)
DEFAULT_MAX_OVERLAP = timedelta(days=30)


def check_policy(policy: dict[str, Any]) -> None:
    """Refuse a malformed ``policy.governance`` or ``policy.keys`` (``bad_policy``).

    Checked at genesis: governance cannot repair a rule it depends on.
    """
    governance = policy.get("governance", {})
    keys = policy.get("keys", {})
    if not isinstance(governance, dict) or not isinstance(keys, dict):
        raise Rejected("bad_policy", "payload.policy.governance and policy.keys are objects")
    unknown = set(governance) - {"approval", "max_voting_days"}
    unknown |= set(keys) - {"max_overlap_days", "rotate_after_days"}
    if unknown:
        raise Rejected("bad_policy", f"payload.policy: unknown rule {sorted(unknown)[0]!r}")
    if "approval" in governance:
        approval = governance["approval"]
        if (not isinstance(approval, dict) or set(approval) != {"numerator", "denominator"}
                or not all(_pos_int(approval[k]) for k in approval)
                or not approval["numerator"] < approval["denominator"]):
            raise Rejected("bad_policy", "payload.policy.governance.approval: "
                                         "{numerator, denominator}, 1 <= numerator < "
                                         "denominator")
    for name, value in (("governance.max_voting_days", governance.get("max_voting_days", 1)),
                        ("keys.max_overlap_days", keys.get("max_overlap_days", 1)),
                        ("keys.rotate_after_days", keys.get("rotate_after_days", 1))):
        if not _pos_int(value):
            raise Rejected("bad_policy", f"payload.policy.{name}: a positive integer of days")


def _pos_int(value: object) -> bool:
    return type(value) is int and value >= 1


def _policy(state: Overlay, section: str) -> dict[str, Any]:
    consortium: dict[str, Any] = state.get(Keys.CONSORTIUM)
    found: dict[str, Any] = consortium.get("policy", {}).get(section, {})
    return found


def approvals_needed(state: Overlay, active: int) -> int:
    """Approvals that decide a proposal among ``active`` organisations.

    A proposal passes with strictly more than ``numerator/denominator`` of the
    active organisations approving (default 1/2: a simple majority).
    """
    rule = _policy(state, "governance").get("approval")
    num, den = (rule["numerator"], rule["denominator"]) if rule else DEFAULT_APPROVAL
    return active * num // den + 1


def active_orgs(state: Overlay) -> list[str]:
    """Ids of the active organisations, sorted."""
    return [record["id"] for _key, record in state.scan("org/")
            if record["status"] == "active"]


# -- key lifecycle --------------------------------------------------------------


class KeyEnrolPayload(Payload):
    org: str = Field(pattern=ORG_ID)
    public_key: str = Field(pattern=HEX_KEY)
    kind: str = Field(pattern=r"^(member|admin|node)$")
    label: str = Field(default="", max_length=100)


class KeyRevokePayload(Payload):
    key_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    reason: str = Field(min_length=1, max_length=200)


class KeyRotatePayload(Payload):
    key_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    new_public_key: str = Field(pattern=HEX_KEY)
    overlap_until: WireTime
    label: str = Field(default="", max_length=100)


def _require_admin_of(ctx: TxContext, org_id: str) -> None:
    author = ctx.state.view(Keys.key(ctx.tx.body.author))
    if author is None or author["kind"] != "admin" or author["org"] != org_id:
        raise Rejected("not_org_admin",
                       f"only an admin key of {org_id} may change its keys")


def key_usable(record: dict[str, Any], at: datetime) -> bool:
    """Whether a key may sign a transaction committed at block time ``at``."""
    if record["status"] != "active":
        return False
    until = record.get("valid_until")
    return until is None or at <= parse_time(until, field="valid_until")


def _check_key_change(ctx: TxContext, kid: str, record: dict[str, Any], *,
                      replaced: bool) -> None:
    """Common rules of revoking or rotating out (``replaced``) the key ``kid``."""
    _require_admin_of(ctx, record["org"])
    if record["status"] != "active":
        raise Rejected("already_revoked", f"payload.key_id: key {kid} is already revoked")
    if replaced and record.get("rotated_to"):
        raise Rejected("already_rotated", f"payload.key_id: key {kid} was rotated to "
                                          f"{record['rotated_to']} already")
    if record["kind"] == "node" and _in_validator_set(ctx.state, kid):
        raise Rejected("node_key_in_validator_set",
                       f"payload.key_id: node key {kid} signs checkpoints in the validator "
                       "set in force; change the quorum by a governance vote first")
    org: dict[str, Any] = ctx.state.get(Keys.org(record["org"]))
    if record["kind"] == "admin" and not replaced:
        lasting = [k for k in org["keys"]["admin"] if k != kid
                   and _lasting(ctx.state.get(Keys.key(k)))]
        if not lasting:
            raise Rejected("last_admin_key",
                           "payload.key_id: enrol another admin key before revoking the last")


def _lasting(record: dict[str, Any]) -> bool:
    return record["status"] == "active" and not record.get("valid_until")


def _new_key(ctx: TxContext, org_id: str, public: str, kind: str) -> str:
    kid = key_id(bytes.fromhex(public))
    if ctx.state.exists(Keys.key(kid)):
        raise Rejected("duplicate_key", f"key {kid} is already enrolled")
    ctx.state.put(Keys.key(kid), {
        "key_id": kid, "org": org_id, "kind": kind, "public_key": public,
        "status": "active", "since": ctx.height, "revoked_at": None,
    })
    ctx.state.put(Keys.org_key(org_id, kid), kind)
    if kind in ("admin", "node"):
        org: dict[str, Any] = ctx.state.get(Keys.org(org_id))
        org["keys"][kind].append(kid)
        ctx.state.put(Keys.org(org_id), org)
    return kid


@contract(
    "membership.key_enrol",
    payload=KeyEnrolPayload,
    roles={"*"},
    summary="An organisation's admin enrols a member, admin or node key of its own.",
    public=True,
    # The new key's record, read to refuse a duplicate.
    prefetch=lambda p: [Keys.key(key_id(bytes.fromhex(p.public_key)))],
)
def apply_key_enrol(ctx: TxContext, p: KeyEnrolPayload) -> None:
    _require_admin_of(ctx, p.org)
    _new_key(ctx, p.org, p.public_key, p.kind)
    ctx.parties.add(p.org)


@contract(
    "membership.key_revoke",
    payload=KeyRevokePayload,
    roles={"*"},
    summary="An organisation's admin revokes one of its keys; earlier signatures stay valid.",
    public=True,
)
def apply_key_revoke(ctx: TxContext, p: KeyRevokePayload) -> None:
    record: dict[str, Any] | None = ctx.state.get(Keys.key(p.key_id))
    if record is None:
        raise Rejected("unknown_key", f"payload.key_id: no key {p.key_id} is enrolled")
    _check_key_change(ctx, p.key_id, record, replaced=False)
    record["status"] = "revoked"
    record["revoked_at"] = ctx.height
    record["reason"] = p.reason
    ctx.state.put(Keys.key(p.key_id), record)
    ctx.parties.add(record["org"])


@contract(
    "membership.key_rotate",
    payload=KeyRotatePayload,
    roles={"*"},
    public=True,
    summary="An organisation's admin replaces a key: the new one is active at once, the "
            "old one signs until overlap_until.",
)
def apply_key_rotate(ctx: TxContext, p: KeyRotatePayload) -> None:
    record: dict[str, Any] | None = ctx.state.get(Keys.key(p.key_id))
    if record is None:
        raise Rejected("unknown_key", f"payload.key_id: no key {p.key_id} is enrolled")
    _check_key_change(ctx, p.key_id, record, replaced=True)
    if p.overlap_until < ctx.time:
        raise Rejected("bad_overlap", f"payload.overlap_until: {format_time(p.overlap_until)} "
                                      f"is before the block time {format_time(ctx.time)}")
    days = _policy(ctx.state, "keys").get("max_overlap_days")
    longest = timedelta(days=days) if days else DEFAULT_MAX_OVERLAP
    if p.overlap_until > ctx.time + longest:
        raise Rejected("bad_overlap", f"payload.overlap_until: the overlap may last at most "
                                      f"{longest.days} days")
    new_kid = _new_key(ctx, record["org"], p.new_public_key, record["kind"])
    record["valid_until"] = format_time(p.overlap_until)
    record["rotated_to"] = new_kid
    ctx.state.put(Keys.key(p.key_id), record)
    ctx.parties.add(record["org"])


# -- governance -------------------------------------------------------------------

PROPOSAL_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def proposal_key(proposal_id: str) -> str:
    return f"gov/proposal/{proposal_id}"


def vote_key(proposal_id: str, org_id: str) -> str:
    return f"gov/vote/{proposal_id}/{org_id}"


class OrgAdd(Payload):
    kind: Literal["org_add"]
    org: OrgSpec


class OrgRemove(Payload):
    kind: Literal["org_remove"]
    org_id: str = Field(pattern=ORG_ID)


class OrgRoles(Payload):
    kind: Literal["org_roles"]
    org_id: str = Field(pattern=ORG_ID)
    roles: list[str] = Field(min_length=1)

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, roles: list[str]) -> list[str]:
        return _check_roles(roles)


class QuorumChange(Payload):
    kind: Literal["quorum"]
    validators: list[str] = Field(min_length=1)
    threshold: int = Field(ge=1)


Action = Annotated[OrgAdd | OrgRemove | OrgRoles | QuorumChange, Field(discriminator="kind")]


class ProposalPayload(Payload):
    proposal_id: str = Field(pattern=PROPOSAL_ID)
    action: Action
    deadline: WireTime
    reason: str = Field(default="", max_length=500)


class VotePayload(Payload):
    proposal_id: str = Field(pattern=PROPOSAL_ID)
    decision: Literal["approve", "reject"]
    reason: str = Field(default="", max_length=500)


def _admin_org(ctx: TxContext) -> str:
    """The author's organisation, if the author key is one of its admin keys."""
    author = ctx.state.get(Keys.key(ctx.tx.body.author))
    if author is None or author["kind"] != "admin":
        raise Rejected("not_org_admin",
                       f"{ctx.tx.body.type} is signed by an organisation's admin key")
    org: str = author["org"]
    return org


def _active_org(state: Overlay, org_id: str, field: str) -> dict[str, Any]:
    record: dict[str, Any] | None = state.get(Keys.org(org_id))
    if record is None:
        raise Rejected("unknown_org", f"{field}: no organisation {org_id!r}")
    if record["status"] != "active":
        raise Rejected("org_inactive", f"{field}: organisation {org_id} is {record['status']}")
    return record


def execute_action(state: Overlay, action: OrgAdd | OrgRemove | OrgRoles | QuorumChange,
                   height: int) -> list[str]:
    """Apply an approved action (specs/membership.md#actions); returns affected orgs."""
    where = "payload.action"
    if isinstance(action, OrgAdd):
        if state.exists(Keys.org(action.org.id)):
            raise Rejected("duplicate_org", f"{where}.org.id: organisation {action.org.id} "
                                            "exists (ids are never reused)")
        _enrol_org(state, action.org, height)
        return [action.org.id]
    consortium: dict[str, Any] = state.get(Keys.CONSORTIUM)
    if isinstance(action, OrgRemove):
        record = _active_org(state, action.org_id, f"{where}.org_id")
        if action.org_id in consortium["quorum"]["validators"]:
            raise Rejected("validator_in_quorum",
                           f"{where}.org_id: {action.org_id} is a validator; change the "
                           "quorum first")
        if len(active_orgs(state)) == 1:
            raise Rejected("last_org", f"{where}.org_id: the last active organisation stays")
        record["status"] = "removed"
        record["removed_at"] = height
        state.put(Keys.org(action.org_id), record)
        return [action.org_id]
    if isinstance(action, OrgRoles):
        record = _active_org(state, action.org_id, f"{where}.org_id")
        record["roles"] = action.roles
        state.put(Keys.org(action.org_id), record)
        return [action.org_id]
    # A quorum change: freeze the validators' active node keys into the set.
    if len(set(action.validators)) != len(action.validators):
        raise Rejected("duplicate_validator", f"{where}.validators: a validator is listed twice")
    if action.threshold > len(action.validators):
        raise Rejected("bad_quorum", f"{where}.threshold exceeds the number of validators")
    frozen: dict[str, dict[str, str]] = {}
    for org_id in action.validators:
        record = _active_org(state, org_id, f"{where}.validators")
        keys = {}
        for kid in record["keys"]["node"]:
            key = state.get(Keys.key(kid))
            if key["status"] == "active" and not key.get("valid_until"):
                keys[kid] = key["public_key"]
        if not keys:
            raise Rejected("validator_without_node_key",
                           f"{where}.validators: {org_id} has no active node key")
        frozen[org_id] = keys
    previous = state.get(VALIDATORS)
    state.put(VALIDATORS, {
        "epoch": 1 if previous is None else previous["epoch"] + 1,
        "height": height,
        "threshold": action.threshold,
        "validators": frozen,
    })
    consortium["quorum"] = {"validators": action.validators, "threshold": action.threshold}
    state.put(Keys.CONSORTIUM, consortium)
    return list(action.validators)


def _tally(ctx: TxContext, proposal: dict[str, Any], action: Any) -> None:
    """Decide the proposal if the votes of active organisations allow it (step 6)."""
    active = set(active_orgs(ctx.state))
    approvals = [o for o in proposal["approvals"] if o in active]
    rejections = [o for o in proposal["rejections"] if o in active]
    needed = approvals_needed(ctx.state, len(active))
    proposal["needed"] = needed
    proposal["active"] = len(active)
    if len(approvals) >= needed:
        trial = ctx.state.child()
        try:
            ctx.parties.update(execute_action(trial, action, ctx.height))
        except Rejected as exc:
            # The vote stands; the action could not apply to today's state.
            proposal.update(status="failed", failure={"code": exc.code, "message": exc.message})
        else:
            trial.merge_into(ctx.state)
            proposal["status"] = "executed"
        proposal.update(decided_height=ctx.height, decided_at=format_time(ctx.time),
                        decided_by_tx=ctx.tx.tx_id_hex)
    elif len(active) - len(rejections) < needed:
        proposal.update(status="rejected", decided_height=ctx.height,
                        decided_at=format_time(ctx.time), decided_by_tx=ctx.tx.tx_id_hex)


@contract(
    "membership.proposal",
    payload=ProposalPayload,
    roles={"*"},
    public=True,
    summary="An organisation's admin proposes a membership or quorum change, approving it; "
            "it executes once more than half the active organisations approve.",
)
def apply_proposal(ctx: TxContext, p: ProposalPayload) -> None:
    # 1. An admin key of an active organisation proposes.
    org = _admin_org(ctx)
    # 2. The id is new.
    if ctx.state.exists(proposal_key(p.proposal_id)):
        raise Rejected("duplicate_proposal",
                       f"payload.proposal_id: {p.proposal_id!r} is already used")
    # 3. The deadline lies ahead, within the longest voting period.
    days = _policy(ctx.state, "governance").get("max_voting_days")
    longest = timedelta(days=days) if days else DEFAULT_MAX_VOTING
    if p.deadline <= ctx.time:
        raise Rejected("bad_deadline", f"payload.deadline: {format_time(p.deadline)} is not "
                                       f"after the block time {format_time(ctx.time)}")
    if p.deadline > ctx.time + longest:
        raise Rejected("bad_deadline",
                       f"payload.deadline: voting may last at most {longest.days} days")
    # 4. The action would apply to the state as it is now.
    execute_action(ctx.state.child(), p.action, ctx.height)
    # 5. Record the proposal with the proposer's approval.
    proposal: dict[str, Any] = {
        "proposal_id": p.proposal_id, "action": p.action.model_dump(), "reason": p.reason,
        "proposer": org, "deadline": format_time(p.deadline), "status": "open",
        "created_height": ctx.height, "created_at": format_time(ctx.time),
        "tx_id": ctx.tx.tx_id_hex, "approvals": [org], "rejections": [],
    }
    ctx.state.put(vote_key(p.proposal_id, org), {
        "decision": "approve", "height": ctx.height, "tx_id": ctx.tx.tx_id_hex})
    # 6. Decide at once if the proposer's approval is enough.
    _tally(ctx, proposal, p.action)
    ctx.state.put(proposal_key(p.proposal_id), proposal)


@contract(
    "membership.vote",
    payload=VotePayload,
    roles={"*"},
    public=True,
    summary="An organisation's admin approves or rejects an open proposal (one vote per "
            "organisation, before the deadline).",
)
def apply_vote(ctx: TxContext, p: VotePayload) -> None:
    # 1. An admin key of an active organisation votes.
    org = _admin_org(ctx)
    # 2. The proposal exists, is open and its deadline has not passed.
    proposal: dict[str, Any] | None = ctx.state.get(proposal_key(p.proposal_id))
    if proposal is None:
        raise Rejected("unknown_proposal", f"payload.proposal_id: no proposal "
                                           f"{p.proposal_id!r}")
    if proposal["status"] != "open":
        raise Rejected("proposal_decided",
                       f"payload.proposal_id: {p.proposal_id} was {proposal['status']} at "
                       f"height {proposal['decided_height']}")
    if ctx.time > parse_time(proposal["deadline"], field="deadline"):
        raise Rejected("proposal_expired", f"payload.proposal_id: voting on {p.proposal_id} "
                                           f"closed at {proposal['deadline']}")
    # 3. One vote per organisation.
    if ctx.state.exists(vote_key(p.proposal_id, org)):
        raise Rejected("already_voted", f"payload.proposal_id: {org} has voted on "
                                        f"{p.proposal_id}")
    # 4. Record the vote; 5. decide if it settles the proposal.
    ctx.state.put(vote_key(p.proposal_id, org), {
        "decision": p.decision, "height": ctx.height, "tx_id": ctx.tx.tx_id_hex})
    proposal["approvals" if p.decision == "approve" else "rejections"].append(org)
    _tally(ctx, proposal, ProposalPayload.model_validate(
        {"proposal_id": p.proposal_id, "action": proposal["action"],
         "deadline": proposal["deadline"]}).action)
    ctx.state.put(proposal_key(p.proposal_id), proposal)
    ctx.parties.add(proposal["proposer"])


# -- views for readers ----------------------------------------------------------------


def key_state(record: dict[str, Any], at: datetime) -> str:
    """``active``, ``rotating`` (in its overlap window), ``rotated`` or ``revoked`` at ``at``."""
    if record["status"] != "active":
        return "revoked"
    if record.get("valid_until"):
        return "rotating" if key_usable(record, at) else "rotated"
    return "active"


def proposal_state(proposal: dict[str, Any], at: datetime) -> str:
    """The proposal's status, reporting an open proposal past its deadline as ``expired``."""
    status: str = proposal["status"]
    if status == "open" and at > parse_time(proposal["deadline"], field="deadline"):
        return "expired"
    return status
