"""RFC 3339 UTC timestamps, the only time format on the wire.

Form: ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``. Offsets other than ``Z`` are refused
so that equal instants have equal spellings in signed data.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from ledger.errors import MalformedRecord

# re.ASCII: \d must not match other scripts' digits (e.g. full-width ones).
_RFC3339_UTC = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z",
                          re.ASCII)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)


def parse_time(value: object, *, field: str) -> datetime:
    """Parse an RFC 3339 UTC timestamp; the error names ``field``."""
    if not isinstance(value, str):
        raise MalformedRecord("must be an RFC 3339 UTC timestamp string", field=field,
                              rule="rfc3339")
    try:
        return _parsed[value]
    except KeyError:
        pass
    moment = _parse_time(value, field)
    if len(_parsed) >= _PARSED_MAX:
        _parsed.clear()
    _parsed[value] = moment
    return moment


# Transactions sent together carry the same few creation and expiry times; a
# datetime is immutable, so a parsed spelling can be handed out again.
_parsed: dict[str, datetime] = {}
_PARSED_MAX = 4096


def time_or_none(value: object) -> datetime | None:
    """:func:`parse_time` of ``value``, or None where it would raise (for a fast
    path that leaves the error, and the field it names, to the exact path)."""
    if type(value) is not str:
        return None
    try:
        return parse_time(value, field="")
    except MalformedRecord:
        return None


def _parse_time(value: str, field: str) -> datetime:
    match = _RFC3339_UTC.fullmatch(value)
    if not match:
        raise MalformedRecord(
            f"{value!r} is not an RFC 3339 UTC timestamp like 2026-01-31T12:00:00Z",
            field=field,
            rule="rfc3339",
        )
    y, mo, d, h, mi, s, frac = match.groups()
    micro = int((frac or "0").ljust(6, "0"))
    try:
        return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro, tzinfo=UTC)
    except ValueError as exc:
        raise MalformedRecord(f"{value!r}: {exc}", field=field, rule="rfc3339") from exc


def format_time(moment: datetime) -> str:
    """Format an aware datetime as RFC 3339 UTC; microseconds only when non-zero."""
    if moment.tzinfo is None:
        raise ValueError("format_time needs an aware datetime")
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_date(value: object, *, field: str) -> date:
    """Parse an ISO 8601 calendar date ``YYYY-MM-DD`` (due dates, value dates)."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise MalformedRecord(f"{value!r} is not a date like 2026-01-31", field=field,
                              rule="date")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise MalformedRecord(f"{value!r}: {exc}", field=field, rule="date") from exc
