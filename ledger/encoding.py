"""The one canonical encoding: RFC 8785, the JSON Canonicalization Scheme (JCS).

Everything TradeLedger signs or hashes goes through :func:`canonical`; nothing
else calls ``json.dumps`` on signed data (specs/protocol.md#encoding).

RFC 8785 in brief, as implemented here:

* objects: members sorted by their names compared as UTF-16 code units
  (section 3.2.3), no whitespace, ``:`` and ``,`` separators;
* strings: UTF-8, escaping only ``"``, ``\\`` and the C0 controls, which use
  ``\\b \\t \\n \\f \\r`` or ``\\u00xx`` in lower case (section 3.2.2.2);
* numbers: the ECMAScript ``Number.prototype.toString`` form of an IEEE-754
  double (section 3.2.2.3); NaN and the infinities cannot be represented.

TradeLedger adds one rule for signed data: an integer must lie within the
IEEE-754 "safe" range ``[-(2**53 - 1), 2**53 - 1]``, because a verifier in any
other language would otherwise read a different number. Amounts are integers
in minor units, so the range (about 9 x 10**15) holds every real amount.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import orjson

from ledger.errors import MalformedRecord

MAX_SAFE_INTEGER = 2**53 - 1
_orjson_dumps = orjson.dumps
_orjson_loads = orjson.loads
_ORJSON_SORTED = orjson.OPT_SORT_KEYS
_ORJSON_SAFE_INTEGERS = orjson.OPT_STRICT_INTEGER  # refuses |n| > 2**53 - 1
_EMPTY = b""

# The C string encoder of the standard library escapes exactly as RFC 8785
# section 3.2.2.2 requires when ensure_ascii is off: '"', '\\', \b \f \n \r \t
# and the other C0 controls as \u00xx in lower-case hex, nothing else.
_encode_string: Any = json.encoder.encode_basestring


def canonical(obj: object) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON value.

    Accepts ``dict`` (string keys), ``list``/``tuple``, ``str``, ``int``,
    ``float``, ``bool`` and ``None``. Raises :class:`MalformedRecord` naming
    the JSON path of the first value that JCS cannot represent.
    """
    if _plain(obj):
        # Fast path: no floats, no keys outside the BMP, every integer safe.
        # Here orjson's sorted output is exactly the RFC 8785 form: code point
        # (and UTF-8 byte) order equals UTF-16 order within the BMP, integers
        # print as their decimal digits, and strings escape exactly '"', '\\'
        # and the C0 controls, as RFC 8785 3.2.2.2 spells them. What orjson
        # refuses (a lone surrogate, a str subclass as a key, deep nesting)
        # takes the standard library's encoder, which gives the exact error.
        #
        # orjson hands back its working buffer (4 KiB for a short value) as the
        # bytes object. State caches and queued transactions keep these values,
        # so each is copied into an object of its own length: 0.13 us, against
        # 4 KiB of memory per cached value.
        try:
            return _EMPTY.join((_orjson_dumps(obj, option=_ORJSON_SORTED), _EMPTY))
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            return _utf8(_dumps(obj))
    return canonical_exact(obj)


def canonical_exact(obj: object) -> bytes:
    """:func:`canonical` by this module's own writer, value by value, with no fast
    path: the reference the fast paths are tested against, and the path that
    names the first value JCS cannot represent."""
    parts: list[str] = []
    _write(obj, parts, "$")
    return _utf8("".join(parts))


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedRecord(
            "string holds a lone surrogate, which UTF-8 cannot encode",
            field="$",
            rule="utf8",
        ) from exc


_encoder = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
)
# JSONEncoder.encode builds a new C encoder on every call; for the small
# values state and transactions hold that costs as much as the encoding. One
# C encoder with the same settings, made once, gives the same text. Circular
# checks are off: _plain() walks every value first.
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_c_encode: Any = (None if _c_make_encoder is None else
                  _c_make_encoder(None, _encoder.default, _encode_string, None, ":", ",",
                                  True, False, False))


def _dumps(obj: object) -> str:
    if _c_encode is None:  # pragma: no cover - CPython has the C encoder
        return _encoder.encode(obj)
    return "".join(_c_encode(obj, 0))


def _plain(obj: object) -> bool:
    """True when ``obj`` holds only dicts, lists, strings, safe ints, bools, None.

    Also demands BMP-only keys. Anything else takes the slow, exact path,
    which also produces the precise error. The members of a container are
    looked at where they are met: only containers go on the stack.
    """
    kind = type(obj)
    if kind is str or obj is None or kind is bool:
        return True
    if kind is int:
        return -MAX_SAFE_INTEGER <= obj <= MAX_SAFE_INTEGER  # type: ignore[operator]
    stack = [obj]
    pop = stack.pop
    push = stack.append
    while stack:
        item = pop()
        kind = type(item)
        if kind is dict:
            # One C-level pass over the keys: join() refuses a key that is not
            # a str (a str subclass passes, and is encoded as a str).
            try:
                keys = "".join(item)  # type: ignore[arg-type]
            except TypeError:
                return False
            if not keys.isascii() and _non_bmp(keys):
                return False
            members: Any = item.values()  # type: ignore[attr-defined]
        elif kind is list or kind is tuple:
            members = item
        else:
            members = (item,)
        for member in members:
            kind = type(member)
            if kind is str or member is None or kind is bool:
                continue
            if kind is int:
                if not -MAX_SAFE_INTEGER <= member <= MAX_SAFE_INTEGER:
                    return False
            elif kind is dict or kind is list or kind is tuple:
                push(member)
            else:
                return False
    return True


def _non_bmp(key: str) -> bool:
    return any(ord(ch) > 0xFFFF for ch in key)


def canonical_str(obj: object) -> str:
    """The canonical form as text, for places that embed it in other text."""
    return canonical(obj).decode("utf-8")


def _utf16_key(name: str) -> bytes:
    return name.encode("utf-16-be", "surrogatepass")


def _write(obj: object, out: list[str], path: str) -> None:
    # bool is a subclass of int: test it first.
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, str):
        out.append(_encode_string(obj))
    elif isinstance(obj, int):
        if not -MAX_SAFE_INTEGER <= obj <= MAX_SAFE_INTEGER:
            raise MalformedRecord(
                f"integer {obj} is outside the IEEE-754 safe range +/-(2**53 - 1)",
                field=path,
                rule="safe_integer",
            )
        out.append(str(int(obj)))
    elif isinstance(obj, float):
        out.append(format_number(obj, path))
    elif isinstance(obj, dict):
        keys = list(obj.keys())
        for key in keys:
            if not isinstance(key, str):
                raise MalformedRecord(
                    f"object key {key!r} is not a string", field=path, rule="string_key"
                )
        # Plain str order equals UTF-16 order unless a key leaves the BMP.
        if any(len(k) != len(_utf16_key(k)) // 2 for k in keys):
            keys.sort(key=_utf16_key)
        else:
            keys.sort()
        out.append("{")
        first = True
        for key in keys:
            if not first:
                out.append(",")
            first = False
            out.append(_encode_string(key))
            out.append(":")
            _write(obj[key], out, f"{path}.{key}")
        out.append("}")
    elif isinstance(obj, list | tuple):
        out.append("[")
        for i, item in enumerate(obj):
            if i:
                out.append(",")
            _write(item, out, f"{path}[{i}]")
        out.append("]")
    else:
        raise MalformedRecord(
            f"{type(obj).__name__} has no JSON representation", field=path, rule="json_type"
        )


def format_number(value: float, path: str = "$") -> str:
    """ECMAScript ``Number.prototype.toString`` of a double (RFC 8785 3.2.2.3)."""
    if value != value or value in (float("inf"), float("-inf")):
        raise MalformedRecord(
            "NaN and infinities have no JSON representation", field=path, rule="finite_number"
        )
    if value == 0:
        return "0"  # also for -0.0, as ECMAScript prints it
    sign = "-" if value < 0 else ""
    # repr() gives the shortest digit string that round-trips, which is the
    # digit string ECMAScript uses (ECMA-262 Number::toString, steps 5-9).
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    assert isinstance(exponent, int)
    k = len(digits)
    # n is the position of the decimal point: value = 0.d1..dk x 10**n.
    n = exponent + len(digit_tuple)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    exp = f"e{'+' if e >= 0 else '-'}{abs(e)}"
    if k == 1:
        return sign + digits + exp
    return sign + digits[0] + "." + digits[1:] + exp


def loads_trusted(data: bytes) -> Any:
    """Parse bytes this process produced with :func:`canonical` (state values).

    Skips the duplicate-member check of :func:`loads`, which canonical bytes
    cannot fail; never use it on input from outside. Numbers are read as
    :func:`loads` reads them: an integer outside the safe range as the double
    it denotes (it can only be one that printed as 16 digits or more).
    """
    value = _orjson_loads(data)
    mask = data.translate(_DIGIT_MASK)
    start = mask.find(_SIXTEEN_DIGITS)
    while start >= 0:
        end = mask.find(b"0", start)
        end = len(mask) if end < 0 else end
        # A run inside a string only costs a needless walk.
        if int(data[start:end]) > MAX_SAFE_INTEGER:
            return _doubles_past_safe(value)
        start = mask.find(_SIXTEEN_DIGITS, end)
    return value


def _doubles_past_safe(value: Any) -> Any:
    """``value`` with each integer outside the safe range as the double it denotes."""
    kind = type(value)
    if kind is int:
        return _safe_or_double(value)
    if kind is dict:
        return {k: _doubles_past_safe(v) for k, v in value.items()}
    if kind is list:
        return [_doubles_past_safe(v) for v in value]
    return value


# Every integer of at most 15 digits is safe; a longer one may not be. The
# mask maps each digit byte to b"1" and every other byte to b"0": runs of 16
# digits or more are then substring searches, cheaper than a regular expression.
_DIGIT_MASK = bytes(0x31 if 0x30 <= i <= 0x39 else 0x30 for i in range(256))
_SIXTEEN_DIGITS = b"1" * 16


def _number(text: str) -> int | float:
    return _safe_or_double(int(text))


def _safe_or_double(value: int) -> int | float:
    # RFC 8785 numbers are IEEE-754 doubles. An integer outside the safe
    # range is read as the double it denotes (what every JCS verifier
    # reads); typed payloads then refuse it where an integer is required.
    return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else float(value)


def canonical_pairs(pairs: list[tuple[str, bytes | None]]) -> bytes:
    """``canonical([[k, v], ...])`` where each ``v`` is already canonical bytes.

    Equal to encoding the parsed values again, without parsing them.
    """
    parts = [b"[%b,%b]" % (_encode_string(k).encode("utf-8"), b"null" if v is None else v)
             for k, v in pairs]
    return b"[" + b",".join(parts) + b"]"


def loads(data: bytes | str) -> Any:
    """Parse JSON strictly: duplicate keys, NaN and infinities are refused.

    Canonical data never has duplicate members; a parser that silently keeps
    the last one would let two readers disagree on what was signed.

    orjson parses first, and writes the value back (together 2.7 us per
    transaction of a 500-transaction batch body, against 3.8 us for the
    standard library with the hooks below). It keeps the last of duplicate
    members, so they are found by counting colons. Outside strings a colon
    only ever separates a member from its name, so the colons of the text are
    its members plus the colons its strings spell out as they stand. orjson writes the parsed value back with
    every member and every string colon as one ``:``; the two counts agree
    exactly when no member was dropped, as long as no string spells a colon as
    the escape ``\\u003a`` (then, and for everything orjson refuses, the
    standard library parses with a hook on each object, which also gives the
    exact error). orjson's writer also refuses an integer outside the safe
    range, which the standard library's parser then reads as the double it
    denotes, as :func:`loads_trusted` reads it.
    """
    raw = data.encode("utf-8", "surrogatepass") if type(data) is str else data
    if type(raw) is bytes and _ESCAPED_COLON.search(raw) is None:
        try:
            value = _orjson_loads(raw)
            members = _orjson_dumps(value, option=_ORJSON_SAFE_INTEGERS).count(b":")
        except (orjson.JSONDecodeError, orjson.JSONEncodeError):
            pass  # refused, nested deeper than orjson writes, or an unsafe integer
        else:
            if raw.count(b":") == members:
                return value
    return _loads_exact(data)


# A colon spelt as an escape (any case of its hex digits) in the text.
_ESCAPED_COLON = re.compile(rb"\\u003[aA]")


def _loads_exact(data: bytes | str) -> Any:
    """:func:`loads` by the standard library's parser with a hook on each object:
    the reference the fast path is tested against, and the path that names the
    first thing wrong."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(items)
        if len(result) != len(items):
            seen: set[str] = set()
            for key, _ in items:
                if key in seen:
                    raise MalformedRecord(
                        f"duplicate member {key!r}", field=key, rule="duplicate_key"
                    )
                seen.add(key)
        return result

    def bad_constant(name: str) -> Any:
        raise MalformedRecord(f"{name} is not JSON", field="$", rule="finite_number")

    try:
        return json.loads(data, object_pairs_hook=pairs, parse_constant=bad_constant,
                          parse_int=_number)
    except MalformedRecord:
        raise
    except (ValueError, RecursionError) as exc:
        raise MalformedRecord(f"not valid JSON: {exc}", field="$", rule="json") from exc
