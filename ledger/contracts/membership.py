"""Membership: the consortium, its organisations, roles and keys.

Genesis seeds the consortium (specs/protocol.md#genesis). Later changes to
membership go through governance votes (specs/permissions.md).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from ledger.block import ValidatorSet
from ledger.contracts.base import ROLES, Keys, Payload, TxContext, contract
from ledger.errors import Rejected
from ledger.keys import key_id
from ledger.state import Overlay, StateReader

ORG_ID = r"^[a-z0-9][a-z0-9-]{1,31}$"
HEX_KEY = r"^[0-9a-f]{64}$"


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
        for role in roles:
            if role not in ROLES:
                raise ValueError(f"unknown role {role!r}; roles are {', '.join(sorted(ROLES))}")
        if len(set(roles)) != len(roles):
            raise ValueError("a role is listed twice")
        return roles

    @field_validator("admin_keys", "member_keys", "node_keys")
    @classmethod
    def _hex_keys(cls, keys: list[str]) -> list[str]:
        import re

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
    seen_keys: set[str] = set()
    for org in p.organisations:
        if org.id in seen_orgs:
            raise Rejected("duplicate_org", f"organisation {org.id} is listed twice")
        seen_orgs.add(org.id)
        kinds = {"admin": org.admin_keys, "member": org.member_keys, "node": org.node_keys}
        ids: dict[str, list[str]] = {}
        for kind, keys in kinds.items():
            ids[kind] = []
            for public in keys:
                kid = key_id(bytes.fromhex(public))
                if kid in seen_keys:
                    raise Rejected("duplicate_key", f"key {kid} is listed twice")
                seen_keys.add(kid)
                ids[kind].append(kid)
                ctx.state.put(Keys.key(kid), {
                    "key_id": kid, "org": org.id, "kind": kind, "public_key": public,
                    "status": "active", "since": ctx.height, "revoked_at": None,
                })
                ctx.state.put(Keys.org_key(org.id, kid), kind)
        # The organisation record lists only its admin and node keys, which stay
        # few; member keys are indexed under orgkey/<org>/ so the record keeps a
        # bounded size however many members enrol.
        ctx.state.put(Keys.org(org.id), {
            "id": org.id, "name": org.name, "country": org.country, "roles": org.roles,
            "status": "active", "since": ctx.height,
            "keys": {"admin": ids["admin"], "node": ids["node"]},
            "encryption_key": org.encryption_key,
        })
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


def kinds_of(state: Overlay | StateReader, org_id: str) -> dict[str, list[str]]:
    raw = state.get_raw(Keys.org(org_id))
    if raw is None:
        return {"admin": [], "node": []}
    from ledger.encoding import loads

    keys: dict[str, list[str]] = loads(raw)["keys"]
    return keys


def validator_set(state: StateReader) -> ValidatorSet:
    """The validator node keys and quorum, as the state holds them now."""
    from ledger.encoding import loads

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
            if record["status"] == "active":
                keys[kid] = bytes.fromhex(record["public_key"])
        node_keys[org_id] = keys
    return ValidatorSet(node_keys=node_keys, threshold=int(quorum["threshold"]))


# -- key lifecycle --------------------------------------------------------------


class KeyEnrolPayload(Payload):
    org: str = Field(pattern=ORG_ID)
    public_key: str = Field(pattern=HEX_KEY)
    kind: str = Field(pattern=r"^(member|admin|node)$")
    label: str = Field(default="", max_length=100)


class KeyRevokePayload(Payload):
    key_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    reason: str = Field(min_length=1, max_length=200)


def _require_admin_of(ctx: TxContext, org_id: str) -> None:
    author = ctx.state.view(Keys.key(ctx.tx.body.author))
    if author is None or author["kind"] != "admin" or author["org"] != org_id:
        raise Rejected("not_org_admin",
                       f"only an admin key of {org_id} may change its keys")


@contract(
    "membership.key_enrol",
    payload=KeyEnrolPayload,
    roles={"*"},
    summary="An organisation's admin enrols a member, admin or node key of its own.",
    public=True,
)
def apply_key_enrol(ctx: TxContext, p: KeyEnrolPayload) -> None:
    _require_admin_of(ctx, p.org)
    kid = key_id(bytes.fromhex(p.public_key))
    if ctx.state.exists(Keys.key(kid)):
        raise Rejected("duplicate_key", f"key {kid} is already enrolled")
    ctx.state.put(Keys.key(kid), {
        "key_id": kid, "org": p.org, "kind": p.kind, "public_key": p.public_key,
        "status": "active", "since": ctx.height, "revoked_at": None,
    })
    ctx.state.put(Keys.org_key(p.org, kid), p.kind)
    if p.kind in ("admin", "node"):
        org: dict[str, Any] = ctx.state.get(Keys.org(p.org))
        org["keys"][p.kind].append(kid)
        ctx.state.put(Keys.org(p.org), org)
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
    _require_admin_of(ctx, record["org"])
    if record["status"] != "active":
        raise Rejected("already_revoked", f"payload.key_id: key {p.key_id} is already revoked")
    org: dict[str, Any] = ctx.state.get(Keys.org(record["org"]))
    if record["kind"] == "admin":
        active_admins = [k for k in org["keys"]["admin"]
                         if ctx.state.get(Keys.key(k))["status"] == "active"]
        if active_admins == [p.key_id]:
            raise Rejected("last_admin_key",
                           "payload.key_id: enrol another admin key before revoking the last")
    record["status"] = "revoked"
    record["revoked_at"] = ctx.height
    record["reason"] = p.reason
    ctx.state.put(Keys.key(p.key_id), record)
    ctx.parties.add(record["org"])
