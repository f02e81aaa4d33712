"""Who is calling: the interface of signed member requests (issue 4, built on main).

This branch only needs the interface the lead fixed for every family:
``Caller`` and the FastAPI dependencies ``member`` and ``optional_member``.
Until the signed-request scheme lands from main, no request can prove a
member key, so ``member`` refuses every request with 401 ``unauthenticated``
(fail closed) and ``optional_member`` answers ``None``. Tests stand in for
an authenticated member with ``app.dependency_overrides[member]``. When main
is merged, its ``node/auth.py`` replaces this file as it stands.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, Request


@dataclass(frozen=True)
class Caller:
    """An authenticated member: its organisation, the key that signed, its roles."""

    org: str
    key_id: str
    roles: frozenset[str]


def member(request: Request) -> Caller:
    """The signed caller, or 401 ``unauthenticated``."""
    raise HTTPException(401, "a signed member request is required")


def optional_member(request: Request) -> Caller | None:
    """The signed caller if the request is signed, else ``None``."""
    return None
