"""The contract framework: typed payloads, the registry, the per-tx context.

A contract is a deterministic function of (state, transaction, block context)
that writes state or raises :class:`~ledger.errors.Rejected`
(ARCHITECTURE decision 6). It never reads the wall clock: ``ctx.time`` is the
block's time. One module per record family registers its contracts here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from ledger.errors import MalformedRecord, Rejected
from ledger.state import Overlay
from ledger.timefmt import parse_date, parse_time
from ledger.tx import SignedTx

ROLES = frozenset(
    {"platform", "bank", "supplier", "buyer", "logistics", "warehouse", "inspector", "oracle"}
)

# The party a record has when every member may read it (specs/read-policy.md).
PUBLIC_PARTY = "*"


class Payload(BaseModel):
    """Base of every typed payload: strict types, unknown fields refused, frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _date(value: object) -> object:
    # Raise ValueError so pydantic reports the field's own path.
    if not isinstance(value, str):
        return value
    try:
        return parse_date(value, field="date")
    except MalformedRecord as exc:
        raise ValueError(exc.message.split(": ", 1)[-1]) from None


def _datetime(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return parse_time(value, field="time")
    except MalformedRecord as exc:
        raise ValueError(exc.message.split(": ", 1)[-1]) from None


WireDate = Annotated[date, BeforeValidator(_date)]
WireTime = Annotated[datetime, BeforeValidator(_datetime)]

P = TypeVar("P", bound=Payload)


def parse_payload(model: type[P], payload: Mapping[str, Any], *, path: str = "payload") -> P:
    """Validate ``payload`` against ``model``; errors name the field and the rule."""
    try:
        return model.model_validate(dict(payload))
    except MalformedRecord as exc:
        # A model's own validator (e.g. EPCIS validation) names the field inside
        # the payload; prefix the payload's path.
        message = exc.message.removeprefix(f"{exc.field}: ")
        raise MalformedRecord(message, field=f"{path}.{exc.field}", rule=exc.rule,
                              code=exc.code) from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in first["loc"])
        loc = loc.replace(".[", "[")
        field_path = f"{path}.{loc}" if loc else path
        message = str(first["msg"]).removeprefix("Value error, ")
        raise MalformedRecord(message, field=field_path, rule=str(first["type"])) from exc


@dataclass
class TxContext:
    """What a contract sees while applying one transaction."""

    state: Overlay
    tx: SignedTx
    height: int
    time: datetime
    chain_id: str
    author_org: str
    signer_orgs: tuple[str, ...]
    parties: set[str] = field(default_factory=set)

    def reject(self, code: str, message: str) -> Rejected:
        return Rejected(code, message)


Apply = Callable[[TxContext, Any], None]
# The state keys a contract will read for a payload, beyond the signers' key
# and organisation records: a hint that lets an orderer read a whole block's
# worth in one query before it runs. It never changes what the contract does.
Prefetch = Callable[[Any], Iterable[str]]


@dataclass(frozen=True)
class ContractSpec:
    """One transaction type: its payload model, who may submit it, its rules."""

    tx_type: str
    payload: type[Payload]
    roles: frozenset[str]
    apply: Apply
    summary: str
    countersigned_by: str = ""
    # Every member may read records of this type (specs/read-policy.md); the
    # executor then adds PUBLIC_PARTY to the record's parties.
    public: bool = False
    prefetch: Prefetch | None = None


REGISTRY: dict[str, ContractSpec] = {}


def contract(
    tx_type: str, *, payload: type[Payload], roles: set[str] | frozenset[str], summary: str,
    countersigned_by: str = "", public: bool = False, prefetch: Prefetch | None = None,
) -> Callable[[Apply], Apply]:
    """Register ``apply`` as the contract for ``tx_type``."""
    unknown = set(roles) - ROLES - {"*"}
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)} for {tx_type}")

    def register(fn: Apply) -> Apply:
        if tx_type in REGISTRY:
            raise ValueError(f"{tx_type} is registered twice")
        REGISTRY[tx_type] = ContractSpec(tx_type, payload, frozenset(roles), fn, summary,
                                         countersigned_by, public, prefetch)
        return fn

    return register


# Indexers run after a type's contract, inside the same transaction, and keep
# derived aggregates of another family (e.g. ratings over trade records) in
# state. They are deterministic like contracts; a rejection from one rejects
# the transaction.
INDEXERS: dict[str, list[Apply]] = {}


def indexer(*tx_types: str) -> Callable[[Apply], Apply]:
    """Register ``fn(ctx, payload)`` to run after each of ``tx_types`` applies."""

    def register(fn: Apply) -> Apply:
        for tx_type in tx_types:
            INDEXERS.setdefault(tx_type, []).append(fn)
        return fn

    return register


class Keys:
    """State key spellings, in one place so every module agrees."""

    CONSORTIUM: ClassVar[str] = "consortium"

    @staticmethod
    def org(org_id: str) -> str:
        return f"org/{org_id}"

    @staticmethod
    def key(key_id: str) -> str:
        return f"key/{key_id}"

    @staticmethod
    def org_key(org_id: str, key_id: str) -> str:
        return f"orgkey/{org_id}/{key_id}"

    @staticmethod
    def nonce(author: str, nonce: str) -> str:
        return f"nonce/{author}/{nonce}"
