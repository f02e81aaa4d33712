"""GS1 identifiers: EPC URNs and GS1 Digital Link URIs mapped to one canonical key.

The canonical key of a GS1-keyed identifier is the *constrained canonical GS1
Digital Link URI* that CBV 2.0 section 8.9 (rules 17 and 18) prescribes for
the event hash:

* the domain is ``https://id.gs1.org``, the query string and fragment are dropped;
* a GTIN is written with 14 digits;
* only the finest level of identification is kept: ``01/…/21/…`` wins over
  ``01/…/10/…``; a CPV (22) is dropped;
* EPC URNs (GS1 EPC Tag Data Standard, section 6) are translated with the GS1
  check digit computed, e.g. ``urn:epc:id:sgtin:0614141.107346.2017`` becomes
  ``https://id.gs1.org/01/10614141073464/21/2017``;
* serial components are percent-decoded and then percent-encoded the same way
  whichever spelling they came from.

Anything that is a URI but neither an EPC URN of a known scheme nor a GS1
Digital Link URI is its own key, unchanged.

Everything here is pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote

from ledger.errors import MalformedRecord

DL_ROOT = "https://id.gs1.org/"

# RFC 3986 absolute URI, loosely: a scheme, a colon, then no whitespace nor the
# characters RFC 3986 never allows unescaped.
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`\x00-\x1f\x7f]+", re.ASCII)

# Characters allowed in EPC URN components: GS1 TDS 2.0 section 5 (``%`` escapes
# for the rest of the GS1 AI encodable character set 82).
_URN_PART = re.compile(r"(?:[A-Za-z0-9!'()*+,\-.:;=_]|%[0-9A-Fa-f]{2})+", re.ASCII)
# GS1 AI encodable character set 82, checked on decoded values.
_CSET82 = re.compile(r"[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]+", re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)

# Characters written unescaped in canonical Digital Link path components.
_DL_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~';=")


def is_uri(value: str) -> bool:
    """True for an absolute URI (RFC 3986 ``scheme ":" rest``), e.g. a CURIE or a URN."""
    return _URI.fullmatch(value) is not None


def gs1_check_digit(body: str) -> str:
    """The GS1 mod-10 check digit for ``body`` (all digits, check digit excluded)."""
    if not _DIGITS.fullmatch(body):
        raise ValueError(f"{body!r} is not a string of digits")
    rev = body.encode("ascii")[::-1]
    odd, even = rev[0::2], rev[1::2]
    total = 3 * (sum(odd) - 48 * len(odd)) + sum(even) - 48 * len(even)
    return str(-total % 10)


def _with_check(body: str) -> str:
    return body + gs1_check_digit(body)


def _dl_encode(raw: str) -> str:
    return "".join(c if c in _DL_SAFE else "".join(f"%{b:02X}" for b in c.encode("utf-8"))
                   for c in raw)


class _Invalid(Exception):
    """Internal: an EPC URN of a known scheme that does not parse."""


def _split(body: str, count: int) -> list[str]:
    parts = body.split(".")
    if len(parts) != count:
        raise _Invalid(f"expected {count} dot-separated components")
    return parts


def _company(prefix: str, ref: str, total: int, *, ref_may_be_empty: bool = False) -> None:
    if not (_DIGITS.fullmatch(prefix) and 6 <= len(prefix) <= 12):
        raise _Invalid("the GS1 company prefix must have 6 to 12 digits")
    if (ref or not ref_may_be_empty) and not _DIGITS.fullmatch(ref):
        raise _Invalid("the reference must be digits")
    if len(prefix) + len(ref) != total:
        raise _Invalid(f"company prefix and reference must have {total} digits together")


def _text(part: str, max_len: int, what: str) -> str:
    if not _URN_PART.fullmatch(part):
        raise _Invalid(f"{what} has characters an EPC URI does not allow")
    raw = unquote(part)
    if not (1 <= len(raw) <= max_len) or not _CSET82.fullmatch(raw):
        raise _Invalid(f"{what} must be 1 to {max_len} GS1 characters")
    return raw


def _numeric(part: str, max_len: int, what: str) -> str:
    if not (_DIGITS.fullmatch(part) and 1 <= len(part) <= max_len):
        raise _Invalid(f"{what} must be 1 to {max_len} digits")
    return part


def _gtin(prefix: str, item: str) -> str:
    _company(prefix, item, 13)
    return _with_check(item[0] + prefix + item[1:])


def _epc_id(scheme: str, body: str) -> str:
    if scheme == "sgtin":
        cp, item, serial = _split(body, 3)
        return f"01/{_gtin(cp, item)}/21/{_dl_encode(_text(serial, 20, 'serial'))}"
    if scheme == "sscc":
        cp, ref = _split(body, 2)
        _company(cp, ref, 17)
        return f"00/{_with_check(ref[0] + cp + ref[1:])}"
    if scheme == "sgln":
        cp, loc, ext = _split(body, 3)
        _company(cp, loc, 12, ref_may_be_empty=True)
        gln = _with_check(cp + loc)
        ext_raw = _text(ext, 20, "extension")
        return f"414/{gln}" if ext_raw == "0" else f"414/{gln}/254/{_dl_encode(ext_raw)}"
    if scheme == "pgln":
        cp, ref = _split(body, 2)
        _company(cp, ref, 12, ref_may_be_empty=True)
        return f"417/{_with_check(cp + ref)}"
    if scheme == "grai":
        cp, asset, serial = _split(body, 3)
        _company(cp, asset, 12, ref_may_be_empty=True)
        return f"8003/{_with_check('0' + cp + asset)}{_dl_encode(_text(serial, 16, 'serial'))}"
    if scheme == "giai":
        cp, asset = _split(body, 2)
        _company(cp, "", len(cp), ref_may_be_empty=True)
        raw = _text(asset, 30 - len(cp), "asset reference")
        return f"8004/{cp}{_dl_encode(raw)}"
    if scheme in ("gsrn", "gsrnp"):
        cp, ref = _split(body, 2)
        _company(cp, ref, 17)
        return f"{'8018' if scheme == 'gsrn' else '8017'}/{_with_check(cp + ref)}"
    if scheme == "gdti":
        cp, doc, serial = _split(body, 3)
        _company(cp, doc, 12, ref_may_be_empty=True)
        return f"253/{_with_check(cp + doc)}{_dl_encode(_text(serial, 17, 'serial'))}"
    if scheme == "cpi":
        cp, ref, serial = _split(body, 3)
        _company(cp, "", len(cp), ref_may_be_empty=True)
        raw = _text(ref, 30 - len(cp), "component/part reference")
        return f"8010/{cp}{_dl_encode(raw)}/8011/{_numeric(serial, 12, 'serial')}"
    if scheme == "sgcn":
        cp, ref, serial = _split(body, 3)
        _company(cp, ref, 12, ref_may_be_empty=True)
        return f"255/{_with_check(cp + ref)}{_numeric(serial, 12, 'serial')}"
    if scheme == "ginc":
        cp, ref = _split(body, 2)
        _company(cp, "", len(cp), ref_may_be_empty=True)
        return f"401/{cp}{_dl_encode(_text(ref, 30 - len(cp), 'consignment reference'))}"
    if scheme == "gsin":
        cp, ref = _split(body, 2)
        _company(cp, ref, 16)
        return f"402/{_with_check(cp + ref)}"
    if scheme == "itip":
        cp, item, piece, total, serial = _split(body, 5)
        if not (len(piece) == len(total) == 2 and _DIGITS.fullmatch(piece + total)):
            raise _Invalid("piece and total must have two digits each")
        raw = _text(serial, 20, "serial")
        return f"8006/{_gtin(cp, item)}{piece}{total}/21/{_dl_encode(raw)}"
    if scheme == "upui":
        cp, item, tpx = _split(body, 3)
        return f"01/{_gtin(cp, item)}/235/{_dl_encode(_text(tpx, 28, 'TPX'))}"
    raise LookupError(scheme)


def _epc_class(scheme: str, body: str) -> str:
    if scheme == "lgtin":
        cp, item, lot = _split(body, 3)
        return f"01/{_gtin(cp, item)}/10/{_dl_encode(_text(lot, 20, 'lot'))}"
    raise LookupError(scheme)


def _epc_pattern(scheme: str, body: str) -> str | None:
    """Patterns naming a whole class (``CP.ref.*``); other patterns have no key."""
    parts = body.split(".")
    if not parts or parts[-1] != "*" or any("*" in p for p in parts[:-1]):
        return None
    try:
        if scheme in ("sgtin", "upui") and len(parts) == 3:
            return f"01/{_gtin(parts[0], parts[1])}"
        if scheme in ("grai", "gdti", "sgcn") and len(parts) == 3:
            _company(parts[0], parts[1], 12, ref_may_be_empty=True)
            body12 = parts[0] + parts[1]
            if scheme == "grai":
                return f"8003/{_with_check('0' + body12)}"
            return f"{'253' if scheme == 'gdti' else '255'}/{_with_check(body12)}"
        if scheme == "cpi" and len(parts) == 3:
            _company(parts[0], "", len(parts[0]), ref_may_be_empty=True)
            raw = _text(parts[1], 30 - len(parts[0]), "component/part reference")
            return f"8010/{parts[0]}{_dl_encode(raw)}"
        if scheme == "itip" and len(parts) == 5:
            piece, total = parts[2], parts[3]
            if len(piece) == len(total) == 2 and _DIGITS.fullmatch(piece + total):
                return f"8006/{_gtin(parts[0], parts[1])}{piece}{total}"
    except _Invalid:
        return None
    return None


_KNOWN_ID = frozenset({"sgtin", "sscc", "sgln", "pgln", "grai", "giai", "gsrn", "gsrnp",
                       "gdti", "cpi", "sgcn", "ginc", "gsin", "itip", "upui"})


def epc_urn_to_digital_link(value: str) -> str | None:
    """The canonical Digital Link of an EPC URN of a known scheme.

    Returns None for anything that is not an ``urn:epc:id:``, ``urn:epc:class:`` or
    ``urn:epc:idpat:`` URN of a scheme translated here; raises :class:`ValueError`
    for a URN of a known scheme that does not follow the Tag Data Standard.
    """
    if value.startswith("urn:epc:id:"):
        scheme, _, body = value[11:].partition(":")
        if scheme not in _KNOWN_ID:
            return None
        try:
            return DL_ROOT + _epc_id(scheme, body)
        except _Invalid as exc:
            raise ValueError(f"{value!r} is not a valid {scheme.upper()} EPC URI: {exc}") from None
    if value.startswith("urn:epc:class:"):
        scheme, _, body = value[14:].partition(":")
        if scheme != "lgtin":
            return None
        try:
            return DL_ROOT + _epc_class(scheme, body)
        except _Invalid as exc:
            raise ValueError(f"{value!r} is not a valid LGTIN EPC class URI: {exc}") from None
    if value.startswith("urn:epc:idpat:"):
        scheme, _, body = value[14:].partition(":")
        key = _epc_pattern(scheme, body)
        return None if key is None else DL_ROOT + key
    return None


# --- GS1 Digital Link -------------------------------------------------------------

_SHORT_NAMES = {
    "gtin": "01", "sscc": "00", "gln": "414", "party": "417", "grai": "8003", "giai": "8004",
    "itip": "8006", "cpid": "8010", "gsrnp": "8017", "gsrn": "8018", "gdti": "253",
    "gcn": "255", "ginc": "401", "gsin": "402", "ser": "21", "lot": "10", "cpv": "22",
    "glnx": "254",
}

# Primary key AI -> (validator of the decoded value, allowed key qualifiers).
_N = _DIGITS


def _key_ok(ai: str, raw: str) -> bool:
    n = len(raw)
    if ai == "01":
        return n in (8, 12, 13, 14) and bool(_N.fullmatch(raw))
    if ai in ("00", "8006", "8017", "8018"):
        return n == 18 and bool(_N.fullmatch(raw))
    if ai in ("414", "417"):
        return n == 13 and bool(_N.fullmatch(raw))
    if ai == "402":
        return n == 17 and bool(_N.fullmatch(raw))
    if ai == "253":
        return 14 <= n <= 30 and bool(_N.fullmatch(raw[:13])) and bool(_CSET82.fullmatch(raw))
    if ai == "255":
        return 14 <= n <= 25 and bool(_N.fullmatch(raw))
    if ai == "8003":
        return 15 <= n <= 30 and bool(_N.fullmatch(raw[:14])) and bool(_CSET82.fullmatch(raw))
    if ai in ("401", "8004", "8010"):
        return 1 <= n <= 30 and bool(_CSET82.fullmatch(raw))
    return False


_QUALIFIERS: dict[str, tuple[str, ...]] = {
    "01": ("22", "10", "21", "235"), "8006": ("22", "10", "21"), "414": ("254",),
    "8010": ("8011",), "8017": ("8019",), "8018": ("8019",),
}
# Which qualifier is kept, finest first (CBV 2.0 section 8.9 rule 18).
_KEEP: dict[str, tuple[str, ...]] = {
    "01": ("21", "235", "10"), "8006": ("21", "10"), "414": ("254",), "8010": ("8011",),
}
_QUALIFIER_MAX = {"22": 20, "10": 20, "21": 20, "235": 28, "254": 20, "8011": 12, "8019": 10}


def digital_link_canonical(value: str) -> str | None:
    """The constrained canonical form of a GS1 Digital Link URI; None if it is not one.

    Any ``http``/``https`` host is accepted (custom domains are replaced by
    ``id.gs1.org``), as is a path prefix before the primary key.
    """
    if value.startswith("https://"):
        rest = value[8:]
    elif value.startswith("http://"):
        rest = value[7:]
    else:
        return None
    for stop in ("#", "?"):
        rest = rest.split(stop, 1)[0]
    segments = rest.split("/")[1:]  # drop the authority
    while segments and segments[-1] == "":
        segments.pop()
    for start in range(len(segments) - 1):
        ai = _SHORT_NAMES.get(segments[start], segments[start])
        if ai not in _QUALIFIERS and ai not in ("00", "253", "255", "401", "402", "417",
                                                "8003", "8004"):
            continue
        pairs = segments[start:]
        if len(pairs) % 2:
            continue
        key = unquote(pairs[1])
        if not _key_ok(ai, key):
            continue
        qualifiers: dict[str, str] = {}
        allowed = _QUALIFIERS.get(ai, ())
        ok = True
        for i in range(2, len(pairs), 2):
            q = _SHORT_NAMES.get(pairs[i], pairs[i])
            raw = unquote(pairs[i + 1])
            if (q not in allowed or q in qualifiers or not raw
                    or len(raw) > _QUALIFIER_MAX[q] or not _CSET82.fullmatch(raw)
                    or (q in ("8011", "8019") and not _N.fullmatch(raw))):
                ok = False
                break
            qualifiers[q] = raw
        if not ok:
            continue
        if ai == "01":
            key = key.zfill(14)
        out = f"{DL_ROOT}{ai}/{_dl_encode(key)}"
        for q in _KEEP.get(ai, ()):
            if q in qualifiers:
                out += f"/{q}/{_dl_encode(qualifiers[q])}"
                break
        return out
    return None


@lru_cache(maxsize=65536)
def translate(value: str) -> tuple[str, str | None]:
    """(canonical key, error message for a malformed EPC URN of a known scheme)."""
    if value.startswith("urn:epc:"):
        try:
            return epc_urn_to_digital_link(value) or value, None
        except ValueError as exc:
            return value, str(exc)
    if value.startswith("http"):
        return digital_link_canonical(value) or value, None
    return value, None


def canonical_identifier(value: str) -> str:
    """The canonical key of an identifier that is already known to be a URI.

    EPC URNs of known schemes and GS1 Digital Link URIs become the constrained
    canonical Digital Link; anything else is returned unchanged. A malformed EPC URN
    of a known scheme is returned unchanged too (validation reports it separately).
    """
    return translate(value)[0]


def normalise_epc(value: object, *, field: str = "epc") -> str:
    """Map an identifier to its canonical key (see the module docstring).

    ``urn:epc:id:sgtin:0614141.107346.2017`` and
    ``https://id.gs1.org/01/10614141073464/21/2017`` both give the latter. Raises
    :class:`~ledger.errors.MalformedRecord` (``rule="uri"`` or ``"epc_uri"``) for a
    value that is not a URI or a malformed EPC URN of a known scheme.
    """
    if not isinstance(value, str) or not is_uri(value):
        raise MalformedRecord(f"{value!r} is not a URI", field=field, rule="uri")
    key, error = translate(value)
    if error is not None:
        raise MalformedRecord(error, field=field, rule="epc_uri")
    return key

