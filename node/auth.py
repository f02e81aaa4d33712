"""Who is asking: the ``Caller`` of a request (interface of specs/api.md#signed-requests).

Provisional on this branch: signed member requests (issue 4) are being built on
``main`` and replace this module when merged. Until then no request can prove
its caller, so ``member`` refuses every request with 401 and ``optional_member``
treats every caller as anonymous; nothing is readable without a Caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from ledger.errors import LedgerError


@dataclass(frozen=True)
class Caller:
    """An authenticated member: its organisation, the key it signed with, its roles."""

    org: str
    key_id: str
    roles: frozenset[str]


class Unauthenticated(LedgerError):
    default_code = "unauthenticated"


def member(request: Request) -> Caller:
    """The signed caller of ``request``; 401 ``unauthenticated`` without one."""
    raise Unauthenticated("this route needs a signed member request")


def optional_member(request: Request) -> Caller | None:
    return None
