"""Hex helpers and SHA-256, so every module spells digests the same way."""

from __future__ import annotations

import hashlib
import re

from ledger.errors import MalformedRecord

HASH_SIZE = 32
ZERO_HASH = bytes(HASH_SIZE)
_HEX64 = re.compile(r"[0-9a-f]{64}")


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def parse_hex(value: object, *, field: str, size: int | None = None) -> bytes:
    """Decode lower-case hex, naming ``field`` in the error when it is not."""
    if not isinstance(value, str):
        raise MalformedRecord("must be a lower-case hex string", field=field, rule="hex")
    # bytes.fromhex would skip white space and take upper case; a signed hex
    # string has exactly one spelling, pairs of lower-case digits and nothing
    # else, which is what .hex() gives back (cheaper than a regular expression
    # over every signature of every batch).
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = None
    if raw is None or raw.hex() != value:
        raise MalformedRecord("must be lower-case hex digits in pairs, nothing else",
                              field=field, rule="hex")
    if size is not None and len(raw) != size:
        raise MalformedRecord(
            f"must be {size} bytes ({2 * size} hex digits), got {len(raw)}",
            field=field,
            rule="length",
        )
    return raw


def parse_hash(value: object, *, field: str) -> bytes:
    if isinstance(value, str) and _HEX64.fullmatch(value):
        return bytes.fromhex(value)
    return parse_hex(value, field=field, size=HASH_SIZE)
