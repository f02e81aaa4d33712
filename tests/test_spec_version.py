"""``ledger.SPEC_VERSION`` is the version line of specs/protocol.md (STYLE habit 14)."""

from __future__ import annotations

import re
from pathlib import Path

import ledger

PROTOCOL = Path(__file__).resolve().parents[1] / "specs" / "protocol.md"
VERSION_LINE = re.compile(r"^Version: (\S+)$", re.MULTILINE)


def test_spec_version_matches_the_protocol_document() -> None:
    text = PROTOCOL.read_text(encoding="utf-8")
    found = VERSION_LINE.findall(text[:2000])
    assert len(found) == 1, "specs/protocol.md needs exactly one 'Version: X' line at the top"
    assert found[0] == ledger.SPEC_VERSION


def test_signing_domains_name_the_major_version() -> None:
    from ledger.keys import Domain

    major = ledger.SPEC_VERSION.split(".")[0]
    for domain in Domain:
        assert domain.value.startswith(f"tradeledger/v{major}/".encode("ascii"))
