"""The error hierarchy of the ledger core.

Every error carries a machine-readable ``code``; the node maps each class
once, at the edge, to an HTTP problem response (see ``node/errors.py``).

    LedgerError
    ├── MalformedRecord      input does not follow the wire format (field, rule)
    ├── VerificationError    a signature, hash or proof does not check
    │   └── ChainBroken      the stored chain is not a valid history (height)
    ├── PermissionDenied     the author may not do this
    ├── Conflict             the request clashes with existing state
    ├── NotFound             no such record (or not visible to the caller)
    └── Rejected             a contract refused a transaction (code, message)
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error TradeLedger raises on purpose."""

    default_code = "ledger_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code

    def to_problem(self) -> dict[str, object]:
        """A JSON-ready description: ``{"code", "message", ...}``."""
        return {"code": self.code, "message": self.message}


class MalformedRecord(LedgerError):
    """Input that breaks the wire format; names the field and the rule."""

    default_code = "malformed"

    def __init__(self, message: str, *, field: str, rule: str, code: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message, code=code)
        self.field = field
        self.rule = rule

    def to_problem(self) -> dict[str, object]:
        return {**super().to_problem(), "field": self.field, "rule": self.rule}


class VerificationError(LedgerError):
    """A signature, hash, proof or certificate does not verify."""

    default_code = "verification_failed"


class ChainBroken(VerificationError):
    """The stored chain is not a valid history; ``height`` is the first bad block."""

    default_code = "chain_broken"

    def __init__(self, message: str, *, height: int, code: str | None = None) -> None:
        super().__init__(f"height {height}: {message}", code=code)
        self.height = height

    def to_problem(self) -> dict[str, object]:
        return {**super().to_problem(), "height": self.height}


class PermissionDenied(LedgerError):
    """The author or caller is not allowed to do this."""

    default_code = "permission_denied"


class Conflict(LedgerError):
    """The request clashes with what the ledger already holds."""

    default_code = "conflict"


class NotFound(LedgerError):
    """No such record, or none the caller may see."""

    default_code = "not_found"


class Rejected(LedgerError):
    """A contract refused a transaction; ``code`` says why in one word."""

    default_code = "rejected"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)
