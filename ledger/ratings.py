"""The buyer payment index: a PAYDEX-style score kept up to date in state (specs/ratings.md).

Three layers, all deterministic and free of floats:

* the formula: :func:`v84` / :func:`v` (the value of paying ``d`` days after
  the due date), :func:`round_half_up`, :func:`band`, :func:`cap_factors`
  (the supplier cap) and :class:`RatingPolicy` (the consortium's switches);
* the aggregates: an :class:`Experience` (one invoice or certificate of an
  obligor, reduced to USD-weighted terms) becomes a :class:`Contribution`,
  and :func:`apply_experience` replaces an experience's previous contribution
  with its new one in the per-buyer aggregates (specs/ratings.md#state);
* the query: :func:`rating` reads those aggregates, at most 24 month records
  and a handful of day-level records, whatever the length of the history.

Amounts are weights in US cents (``ledger.currency.to_usd_minor``); the value
of a term is held as the integer ``84 * v(d)`` (84 is the least common
denominator of the slopes), so every stored sum is an exact integer and the
only division is the final one, done on :class:`fractions.Fraction`.
"""

from __future__ import annotations

import bisect
import calendar
import operator
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from typing import Any, Final, Literal, Protocol

from ledger.encoding import MAX_SAFE_INTEGER, loads_trusted
from ledger.errors import Conflict, MalformedRecord

# -- the formula (specs/ratings.md#formula) -----------------------------------------

#: (days after the due date, value) through which v(d) is linear; flat outside.
ANCHORS: Final = (
    (-30, 100), (-20, 90), (0, 80), (15, 70), (22, 60), (30, 50), (60, 40), (90, 30),
    (120, 20), (180, 0),
)
#: 84 * v(d) is an integer for every integer d: the slopes are -1, -1/2, -2/3,
#: -10/7, -5/4 and -1/3 per day, whose denominators have the lcm 84.
V_DENOMINATOR: Final = 84
#: The months a rating looks back (the as-of month and the 23 before it) and the
#: trend windows, all counted the same way.
WINDOW_MONTHS: Final = 24
TREND_MONTHS: Final = (3, 6, 12)
MIN_INVOICES: Final = 3

# v84 on d >= 1 as linear pieces (first day, last day, a, b): 84 v(d) = a + b d.
# From d = 30 to d = 180 all the anchors lie on one line, v = 60 - d / 3.
_PIECES: Final = (
    (1, 15, 6720, -56),
    (16, 22, 7680, -120),
    (23, 30, 7350, -105),
    (31, 179, 5040, -28),
    (180, 1 << 62, 0, 0),
)


def v84(days: int) -> int:
    """``84 * v(days)`` as an exact integer (see :data:`ANCHORS`)."""
    if days <= -30:
        return 8400
    if days <= -20:
        return 5880 - 84 * days
    if days <= 0:
        return 6720 - 42 * days
    if days <= 15:
        return 6720 - 56 * days
    if days <= 22:
        return 7680 - 120 * days
    if days <= 30:
        return 7350 - 105 * days
    if days < 180:
        return 5040 - 28 * days
    return 0


def v(days: int) -> Fraction:
    """The value of a term paid ``days`` after its due date (negative: early), 0..100."""
    return Fraction(v84(days), V_DENOMINATOR)


def round_half_up(value: Fraction) -> int:
    """``floor(value + 1/2)``: the nearest integer, halves rounded up (78.5 -> 79)."""
    return (2 * value.numerator + value.denominator) // (2 * value.denominator)


Band = Literal["low", "medium", "high"]


def band(score: int) -> Band:
    """Risk band of a score: 80-100 low, 50-79 medium, 0-49 high."""
    if not 0 <= score <= 100:
        raise ValueError(f"a score lies in 0..100, not {score}")
    if score >= 80:
        return "low"
    return "medium" if score >= 50 else "high"


def cap_factors(weights: Mapping[str, int], cap_percent: int) -> dict[str, Fraction]:
    """The factor by which each supplier's weight is scaled so none exceeds the cap.

    Water-filling, in exact arithmetic (specs/ratings.md#supplier-cap):

    1. Order the suppliers by weight, largest first, ties by supplier id.
    2. For k = 0, 1, ...: let U be the total weight of all but the first k and
       L = cap * U / (100 - k * cap). Stop at the first k whose (k+1)-th
       supplier weighs at most L.
    3. The first k suppliers get the weight L each (factor L / W), the others
       keep theirs (factor 1). Each capped supplier then holds exactly cap %
       of the new total and every other at most that.

    When no such k exists with ``k * cap < 100`` the cap cannot be met (one
    supplier with the cap at 50 %): every factor is 0, leaving no weight.
    ``cap_percent = 100`` disables the cap.
    """
    positive = {s: w for s, w in weights.items() if w > 0}
    capped = _cap(positive, cap_percent)
    if capped is None:
        return {s: Fraction(0) for s in positive}
    level, names = capped
    return {s: (level / w if s in names else Fraction(1)) for s, w in positive.items()}


def _cap(weights: Mapping[str, int], cap_percent: int
         ) -> tuple[Fraction, frozenset[str]] | None:
    """(level L, the capped suppliers) per :func:`cap_factors`; None if the cap cannot hold."""
    if cap_percent >= 100:
        return Fraction(0), frozenset()
    order = sorted(weights, key=lambda s: (-weights[s], s))
    rest = sum(weights.values())
    for k, supplier in enumerate(order):
        if k * cap_percent >= 100:
            break
        level = Fraction(cap_percent * rest, 100 - k * cap_percent)
        if weights[supplier] <= level:
            return level, frozenset(order[:k])
        rest -= weights[supplier]
    return None


# -- policy (specs/ratings.md#policy) ---------------------------------------------

CONSORTIUM_KEY: Final = "consortium"  # ledger.contracts.Keys.CONSORTIUM
_SWITCHES: Final = ("exclude_disputed", "exclude_related_party", "count_overdue_certificates")


@dataclass(frozen=True)
class RatingPolicy:
    """The consortium's rating switches: ``policy.ratings`` in the consortium record.

    Every switch is applied when a rating is read, never when aggregates are
    written, so a policy change takes effect on the next query without a
    rebuild. ``related_parties`` is the consortium's ``policy.related_parties``
    (groups of organisation ids), the same list the trade contract uses.
    """

    exclude_disputed: bool = True
    exclude_related_party: bool = True
    supplier_cap_percent: int = 50
    count_overdue_certificates: bool = True
    related_parties: tuple[frozenset[str], ...] = ()

    @classmethod
    def from_consortium_policy(cls, policy: Mapping[str, Any] | None) -> RatingPolicy:
        """Read ``policy["ratings"]`` (absent members take their defaults).

        Raises :class:`MalformedRecord` naming the member for a value of the
        wrong type or an unknown member, so a misspelt switch is never
        silently ignored.
        """
        policy = policy or {}
        groups = policy.get("related_parties") or []
        related = tuple(frozenset(g) for g in groups if isinstance(g, list)) \
            if isinstance(groups, list) else ()
        raw = policy.get("ratings")
        if raw is None:
            return cls(related_parties=related)
        if not isinstance(raw, dict):
            raise MalformedRecord("must be an object", field="policy.ratings", rule="type")
        unknown = sorted(set(raw) - {*_SWITCHES, "supplier_cap_percent"})
        if unknown:
            raise MalformedRecord(
                f"is not a rating switch; switches are {', '.join((*_SWITCHES, 'supplier_cap_percent'))}",
                field=f"policy.ratings.{unknown[0]}", rule="unknown_field")
        values: dict[str, Any] = {}
        for name in _SWITCHES:
            if name in raw:
                if not isinstance(raw[name], bool):
                    raise MalformedRecord("must be true or false",
                                          field=f"policy.ratings.{name}", rule="type")
                values[name] = raw[name]
        if "supplier_cap_percent" in raw:
            cap = raw["supplier_cap_percent"]
            if isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= 100:
                raise MalformedRecord("must be an integer from 1 to 100 (100: no cap)",
                                      field="policy.ratings.supplier_cap_percent",
                                      rule="range")
            values["supplier_cap_percent"] = cap
        return cls(related_parties=related, **values)

    def classes(self) -> frozenset[str]:
        """The aggregate classes a rating includes (``i`` always, ``d``, ``c``)."""
        included = {"i"}
        if not self.exclude_disputed:
            included.add("d")
        if self.count_overdue_certificates:
            included.add("c")
        return frozenset(included)

    def related_to(self, buyer: str) -> frozenset[str]:
        """Organisations a related-party group links to ``buyer`` (empty if switched off)."""
        if not self.exclude_related_party:
            return frozenset()
        return frozenset(org for g in self.related_parties if buyer in g for org in g) - {buyer}

    def to_wire(self) -> dict[str, Any]:
        return {
            "exclude_disputed": self.exclude_disputed,
            "exclude_related_party": self.exclude_related_party,
            "supplier_cap_percent": self.supplier_cap_percent,
            "count_overdue_certificates": self.count_overdue_certificates,
        }


class StateReader(Protocol):
    def get_raw(self, key: str) -> bytes | None:
        """The canonical bytes under ``key``, or ``None`` (MemoryState, Overlay, Store)."""
        ...


def _get(state: StateReader, key: str) -> Any:
    raw = state.get_raw(key)
    return None if raw is None else loads_trusted(raw)


def policy_from_state(state: StateReader) -> RatingPolicy:
    """The rating policy in force: the consortium record's ``policy``."""
    consortium = _get(state, CONSORTIUM_KEY)
    return RatingPolicy.from_consortium_policy(consortium.get("policy") if consortium else None)


# -- state keys (specs/ratings.md#state) ------------------------------------------


def buyer_key(buyer: str) -> str:
    """Per-buyer header: ``{"buyer", "months", "updated"}``."""
    return f"ratings/buyer/{buyer}"


def month_key(buyer: str, month: str) -> str:
    """Settled sums and open summaries of the buyer's experiences due in ``month``."""
    return f"ratings/month/{buyer}/{month}"


def days_key(buyer: str, month: str) -> str:
    """Open amounts of ``month`` by due day, read only where v bends inside the month."""
    return f"ratings/days/{buyer}/{month}"


def late_key(buyer: str, month: str, supplier: str) -> str:
    """The multiset of late settlement delays (days) of one supplier in ``month``."""
    return f"ratings/late/{buyer}/{month}/{supplier}"


def experience_key(source: str, record_id: str) -> str:
    """The contribution last applied for one invoice or certificate."""
    return f"ratings/exp/{source}/{record_id}"


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def month_index(month: str | date) -> int:
    """Months since year 0: ``YYYY-MM`` or a date -> ``12 * year + month - 1``."""
    if isinstance(month, date):
        return 12 * month.year + month.month - 1
    return 12 * int(month[:4]) + int(month[5:7]) - 1


def _enc(n: int) -> int | str:
    # RFC 8785 carries integers safely only within 2**53 - 1; sums of cents
    # times 8400 can pass that, and are then written as decimal strings.
    return n if -MAX_SAFE_INTEGER <= n <= MAX_SAFE_INTEGER else str(n)


def _dec(x: int | str) -> int:
    return x if type(x) is int else int(x)


def _ints(text: str) -> list[int]:
    """Parse an aggregate vector: decimal integers separated by single spaces."""
    return list(map(int, text.split()))


# -- experiences and their contributions -------------------------------------------

Source = Literal["invoice", "certificate"]


@dataclass(frozen=True)
class Experience:
    """One payment experience of an obligor, weighted in US cents.

    ``settled`` holds each settled part as ``(weight, paid date)``; ``open``
    is the weight of the amount still unpaid. Credited or adjusted amounts are
    neither: they left the debt without a payment. A term of weight 0 (a tiny
    amount rounded to 0 cents) is dropped.
    """

    obligor: str
    supplier: str
    source: Source
    due: date
    settled: tuple[tuple[int, date], ...] = ()
    open: int = 0
    disputed: bool = False


@dataclass(frozen=True)
class Contribution:
    """What one experience adds to its buyer's aggregates (stored as the exp record).

    ``cls`` is ``i`` (invoice), ``d`` (invoice in open dispute) or ``c``
    (overdue certificate). ``settled`` is ``(w, vn, late, ontime, n)``: weight,
    sum of weight x 84 v(d), sum of weight x max(d, 0), weight paid within
    terms, and 1 if the experience has a settled term. ``late_days`` lists the
    delays of late settled terms; ``open`` is ``(day of month, weight, n)``
    with n = 1 when the experience has no settled term.
    """

    buyer: str
    supplier: str
    month: str
    cls: str
    settled: tuple[int, int, int, int, int]
    late_days: tuple[int, ...]
    open: tuple[int, int, int] | None

    @classmethod
    def of(cls, exp: Experience) -> Contribution | None:
        """The contribution of ``exp``, or ``None`` when it has no term."""
        w = vn = late = ontime = 0
        late_days: list[int] = []
        for weight, paid in exp.settled:
            d = (paid - exp.due).days
            if weight <= 0 or (exp.source == "certificate" and d <= 0):
                # Certificates count only when overdue (specs/ratings.md#certificates).
                continue
            w += weight
            vn += weight * v84(d)
            if d > 0:
                late += weight * d
                late_days.append(d)
            else:
                ontime += weight
        n = 1 if w else 0
        open_part = (exp.due.day, exp.open, 1 - n) if exp.open > 0 else None
        if not w and open_part is None:
            return None
        kind = "c" if exp.source == "certificate" else ("d" if exp.disputed else "i")
        return cls(exp.obligor, exp.supplier, month_of(exp.due), kind,
                   (w, vn, late, ontime, n), tuple(sorted(late_days)), open_part)

    def to_wire(self) -> dict[str, Any]:
        return {
            "buyer": self.buyer, "supplier": self.supplier, "month": self.month,
            "cls": self.cls, "settled": [_enc(x) for x in self.settled],
            "late_days": list(self.late_days),
            "open": None if self.open is None else [_enc(x) for x in self.open],
        }

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> Contribution:
        s = [_dec(x) for x in wire["settled"]]
        o = wire["open"]
        return cls(wire["buyer"], wire["supplier"], wire["month"], wire["cls"],
                   (s[0], s[1], s[2], s[3], s[4]), tuple(wire["late_days"]),
                   None if o is None else (_dec(o[0]), _dec(o[1]), _dec(o[2])))


# -- maintaining the aggregates (specs/ratings.md#maintenance) ----------------------


class StateWriter(Protocol):
    """What :func:`apply_experience` needs: an :class:`~ledger.state.Overlay`."""

    def get(self, key: str) -> Any:
        """The parsed value under ``key``, or ``None``."""
        ...

    def put(self, key: str, value: object) -> None:
        """Write ``value`` under ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``."""
        ...


class _Batch:
    """Reads once, writes once: the keys one :func:`apply_experience` call touches."""

    def __init__(self, state: StateWriter) -> None:
        self.state = state
        self.values: dict[str, Any] = {}
        self.dirty: set[str] = set()

    def get(self, key: str) -> Any:
        if key not in self.values:
            self.values[key] = self.state.get(key)
        return self.values[key]

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value
        self.dirty.add(key)

    def flush(self) -> None:
        for key in sorted(self.dirty):
            value = self.values[key]
            if value is None:
                self.state.delete(key)
            else:
                self.state.put(key, value)


#: The aggregate classes of a month record; each (class, supplier) holds a vector
#: of ``_BLOCK`` numbers: settled w, vn, late, ontime, n, worst delay, then open
#: w, n, wd, first day. A vector is stored as one string of space-separated
#: decimal integers: exact at any size, and one JSON node to encode.
CLASSES: Final = ("i", "d", "c")
_BLOCK: Final = 10


def apply_experience(state: StateWriter, today: date, source: Source, record_id: str,
                     experience: Experience | None) -> None:
    """Make ``experience`` the current contribution of ``source/record_id``.

    Subtracts the contribution recorded at ``ratings/exp/<source>/<id>``, adds
    the new one and records it; ``experience = None`` withdraws it. ``today``
    is the block date: month buckets older than the 24-month window of today
    are pruned and never written again, since no rating as of today or later
    reads them (specs/ratings.md#maintenance, steps 1-6).
    """
    batch = _Batch(state)
    exp_k = experience_key(source, record_id)
    old_wire = batch.get(exp_k)
    old = None if old_wire is None else Contribution.from_wire(old_wire)
    new = None if experience is None else Contribution.of(experience)
    cutoff = month_index(today) - (WINDOW_MONTHS - 1)
    # 1. A contribution to a month already outside today's window is never read.
    if new is not None and month_index(new.month) < cutoff:
        new = None
    # 2. Nothing changed: no write at all.
    if old == new:
        return
    buyers = sorted({c.buyer for c in (old, new) if c is not None})
    # 3. Prune the buyers' months that fell out of the window.
    for buyer in buyers:
        _prune(batch, buyer, cutoff)
    # 4. Take the old contribution out (if its month is still kept), put the new in.
    if old is not None and month_index(old.month) >= cutoff:
        _add(batch, old, -1)
    if new is not None:
        _add(batch, new, +1)
    # 5. Record what was applied.
    batch.set(exp_k, None if new is None else new.to_wire())
    # 6. Headers: the months kept and the last date the aggregates changed.
    for buyer in buyers:
        header = batch.get(buyer_key(buyer)) or {"buyer": buyer, "months": [], "updated": ""}
        touched = _touched(batch, buyer)
        months = sorted({m for m in header["months"] if m not in touched}
                        | {m for m, value in touched.items() if value is not None})
        updated = max(header["updated"], today.isoformat())
        if months != header["months"] or updated != header["updated"]:
            batch.set(buyer_key(buyer), {"buyer": buyer, "months": months, "updated": updated}
                      if months else None)
    batch.flush()


def _touched(batch: _Batch, buyer: str) -> dict[str, Any]:
    """The buyer's month records this call read or wrote (``None``: gone)."""
    prefix = f"ratings/month/{buyer}/"
    return {k[len(prefix):]: v for k, v in batch.values.items() if k.startswith(prefix)}


def _prune(batch: _Batch, buyer: str, cutoff: int) -> None:
    header = batch.get(buyer_key(buyer))
    if header is None or month_index(header["months"][0]) >= cutoff:
        return  # months are sorted: nothing to prune
    for month in header["months"]:
        if month_index(month) >= cutoff:
            continue
        record = batch.get(month_key(buyer, month)) or {}
        late = {supplier for vectors in record.values() for supplier, text in vectors.items()
                if _ints(text)[5]}
        for supplier in sorted(late):
            batch.set(late_key(buyer, month, supplier), None)
        batch.set(month_key(buyer, month), None)
        batch.set(days_key(buyer, month), None)
    kept = [m for m in header["months"] if month_index(m) >= cutoff]
    if kept != header["months"]:
        batch.set(buyer_key(buyer), {**header, "months": kept} if kept else None)


def _add(batch: _Batch, c: Contribution, sign: int) -> None:
    """Add ``sign`` times contribution ``c`` to its month record."""
    mkey = month_key(c.buyer, c.month)
    record = batch.get(mkey) or {}
    vectors = record.setdefault(c.cls, {})
    vec = _ints(vectors.get(c.supplier, "")) or [0] * _BLOCK
    if c.settled[0] or c.settled[4]:
        for i in range(5):
            vec[i] += sign * c.settled[i]
        if c.late_days:
            vec[5] = _late(batch, c, sign)
    if c.open is not None:
        vec[6:_BLOCK] = _add_open(batch, c, sign)
    if any(vec):
        vectors[c.supplier] = " ".join(map(str, vec))
    else:
        vectors.pop(c.supplier, None)
        if not vectors:
            del record[c.cls]
    batch.set(mkey, record or None)


def _late(batch: _Batch, c: Contribution, sign: int) -> int:
    """Update the late-delay multiset; return the largest delay left (0 if none)."""
    lkey = late_key(c.buyer, c.month, c.supplier)
    record: dict[str, str] = batch.get(lkey) or {}
    pairs = _ints(record.get(c.cls, ""))
    counts = Counter(dict(zip(pairs[0::2], pairs[1::2], strict=True)))
    for d in c.late_days:
        counts[d] += sign
    counts = +counts  # drop zero counts
    if counts:
        record[c.cls] = " ".join(f"{d} {n}" for d, n in sorted(counts.items()))
    else:
        record.pop(c.cls, None)
    batch.set(lkey, record or None)
    return max(counts) if counts else 0


def _add_open(batch: _Batch, c: Contribution, sign: int) -> list[int]:
    """Update the day map of open amounts; return the summary (w, n, wd, first day).

    The day map of a (supplier, class) is the string ``"day w n day w n ..."``
    (days ascending, only days with an open amount): compact to store, and
    parsed at C speed by the few queries that need it.
    """
    assert c.open is not None
    day, weight, n = c.open
    dkey = days_key(c.buyer, c.month)
    days_by_supplier: dict[str, dict[str, str]] = batch.get(dkey) or {}
    text = days_by_supplier.get(c.supplier, {}).get(c.cls, "")
    nums = _ints(text)
    entries = {nums[i]: [nums[i + 1], nums[i + 2]] for i in range(0, len(nums), 3)}
    w0, n0 = entries.get(day, (0, 0))
    if w0 + sign * weight or n0 + sign * n:
        entries[day] = [w0 + sign * weight, n0 + sign * n]
    else:
        entries.pop(day, None)
    if entries:
        days_by_supplier.setdefault(c.supplier, {})[c.cls] = " ".join(
            f"{d} {w} {k}" for d, (w, k) in sorted(entries.items()))
    else:
        by_cls = days_by_supplier.get(c.supplier, {})
        by_cls.pop(c.cls, None)
        if not by_cls:
            days_by_supplier.pop(c.supplier, None)
    batch.set(dkey, days_by_supplier or None)
    total = sum(w for w, _k in entries.values())
    return [total, sum(k for _w, k in entries.values()),
            sum(d * w for d, (w, _k) in entries.items()),
            min((d for d, (w, _k) in entries.items() if w > 0), default=0)]


# -- the query (specs/ratings.md#query) ---------------------------------------------


@dataclass(frozen=True)
class Factors:
    """What the score is made of, over the experiences it counts.

    ``days_beyond_terms`` (rounded half up) and ``within_terms_percent`` use
    the same weights as the score (after the supplier cap); ``worst_delay_days``
    is the largest number of days any counted term was or is late (0 if none);
    ``amount_usd_minor`` is the total weight in US cents before the cap.
    """

    invoices: int
    suppliers: int
    days_beyond_terms: int
    within_terms_percent: int
    worst_delay_days: int
    amount_usd_minor: int
    capped_suppliers: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "invoices": self.invoices, "suppliers": self.suppliers,
            "days_beyond_terms": self.days_beyond_terms,
            "within_terms_percent": self.within_terms_percent,
            "worst_delay_days": self.worst_delay_days,
            "amount_usd_minor": _enc(self.amount_usd_minor),
            "capped_suppliers": self.capped_suppliers,
        }


@dataclass(frozen=True)
class TrendPoint:
    """The score over experiences due in the last ``months`` months (None if too few)."""

    months: int
    score: int | None
    invoices: int

    def to_wire(self) -> dict[str, Any]:
        return {"months": self.months, "score": self.score, "invoices": self.invoices}


@dataclass(frozen=True)
class Rating:
    """A buyer's score as of a date and height, with its factors and trend."""

    buyer: str
    as_of: date
    height: int
    score: int
    band: Band
    factors: Factors
    trend: tuple[TrendPoint, ...]
    policy: RatingPolicy

    def to_wire(self) -> dict[str, Any]:
        return {
            "status": "rated", "buyer": self.buyer, "as_of": self.as_of.isoformat(),
            "height": self.height, "score": self.score, "band": self.band,
            "factors": self.factors.to_wire(), "trend": [t.to_wire() for t in self.trend],
            "policy": self.policy.to_wire(),
        }


@dataclass(frozen=True)
class Insufficient:
    """No score: fewer than 3 counted invoices, or the supplier cap leaves no weight."""

    buyer: str
    as_of: date
    height: int
    invoices: int
    suppliers: int
    reason: str
    trend: tuple[TrendPoint, ...]
    policy: RatingPolicy

    def to_wire(self) -> dict[str, Any]:
        return {
            "status": "insufficient", "buyer": self.buyer, "as_of": self.as_of.isoformat(),
            "height": self.height, "invoices": self.invoices, "suppliers": self.suppliers,
            "reason": self.reason, "trend": [t.to_wire() for t in self.trend],
            "policy": self.policy.to_wire(),
        }


# Per-supplier sums while reading: [w, vn, late, ontime, n, worst delay].
_Sums = list[int]
#: Age bands of a month (as-of month minus due month): the trend windows are
#: unions of bands (3 months: band 0; 6: bands 0-1; 12: 0-2; 24: 0-3).
_BAND_LIMITS: Final = (3, 6, 12, 24)


def _piece(d: int) -> int:
    for i, (lo, hi, _a, _b) in enumerate(_PIECES):
        if lo <= d <= hi:
            return i
    raise AssertionError(d)


def _add_month(into: dict[str, _Sums], state: StateReader, buyer: str, month: str,
               as_of: date, classes: tuple[str, ...], related: frozenset[str]) -> None:
    """Add one month's included classes to the per-supplier sums ``into``."""
    record = _get(state, month_key(buyer, month))
    if record is None:  # listed in the header, so never: state written elsewhere
        return
    year, mon = int(month[:4]), int(month[5:7])
    length = calendar.monthrange(year, mon)[1]
    # A term due on day-of-month t is d = k - t days late as of ``as_of``.
    k = as_of.toordinal() - date(year, mon, 1).toordinal() + 1
    d_hi, d_lo = k - 1, k - length
    # Open amounts: none due yet (future), all on one linear piece of v and past
    # due (the month summary suffices), or read the month's day map.
    linear: tuple[int, int] | None = None
    if d_hi >= 1 and d_lo >= 1 and _piece(d_lo) == _piece(d_hi):
        linear = _PIECES[_piece(d_lo)][2], _PIECES[_piece(d_lo)][3]
    vtable: list[int] = []
    day_maps: dict[str, dict[str, str]] = {}
    if d_hi >= 1 and linear is None:
        vtable = [0, *(v84(k - day) for day in range(1, length + 1))]
        day_maps = _get(state, days_key(buyer, month)) or {}
    for cls in classes:
        vectors = record.get(cls)
        if not vectors:
            continue
        # One C-level parse for the whole class: _BLOCK numbers per supplier.
        nums = list(map(int, " ".join(vectors.values()).split()))
        for index, supplier in enumerate(vectors):
            if supplier in related:
                continue
            o = _BLOCK * index
            w, vn, late, ontime, n, worst, ow, on, owd, first = nums[o:o + _BLOCK]
            if ow and d_hi >= 1:
                if linear is not None:
                    a, b = linear
                    w += ow
                    vn += (a + b * k) * ow - b * owd
                    late += k * ow - owd
                    n += on
                else:
                    days_nums = list(map(int, day_maps[supplier][cls].split()))
                    days, ws = days_nums[0::3], days_nums[1::3]
                    due = bisect.bisect_right(days, d_hi)  # entries with day <= k - 1
                    days, ws = days[:due], ws[:due]
                    sw = sum(ws)
                    w += sw
                    vn += sum(map(operator.mul, ws, map(vtable.__getitem__, days)))
                    late += k * sw - sum(map(operator.mul, ws, days))
                    n += sum(days_nums[2:3 * due:3])
                if 0 < first <= d_hi and k - first > worst:
                    worst = k - first
            acc = into.get(supplier)
            if acc is None:
                into[supplier] = [w, vn, late, ontime, n, worst]
                continue
            acc[0] += w
            acc[1] += vn
            acc[2] += late
            acc[3] += ontime
            acc[4] += n
            if worst > acc[5]:
                acc[5] = worst


@dataclass
class _Outcome:
    invoices: int
    suppliers: int
    score: int | None
    reason: str
    factors: Factors | None


def _evaluate(sums: Mapping[str, _Sums], cap_percent: int) -> _Outcome:
    invoices = sum(s[4] for s in sums.values())
    suppliers = sum(1 for s in sums.values() if s[4] > 0)
    if invoices < MIN_INVOICES:
        return _Outcome(invoices, suppliers, None,
                        f"insufficient history: {invoices} of the {MIN_INVOICES} invoices "
                        "needed", None)
    capped = _cap({s: v[0] for s, v in sums.items() if v[0] > 0}, cap_percent)
    if capped is None:
        return _Outcome(invoices, suppliers, None,
                        f"insufficient history: no supplier may carry more than {cap_percent}% "
                        f"of the weight, and {suppliers} supplier(s) cannot meet that", None)
    level, names = capped

    def total(i: int) -> Fraction:
        # Uncapped suppliers count in full (integers); a capped one is scaled
        # to the level L: its share of sum i is L * X_i / W.
        if not names:
            return Fraction(sum(v[i] for v in sums.values()))
        whole = sum(v[i] for s, v in sums.items() if s not in names)
        return whole + level * sum((Fraction(sums[s][i], sums[s][0]) for s in names),
                                   Fraction(0))

    weight = total(0)
    score = round_half_up(total(1) / (V_DENOMINATOR * weight))
    return _Outcome(invoices, suppliers, score, "", Factors(
        invoices=invoices,
        suppliers=suppliers,
        days_beyond_terms=round_half_up(total(2) / weight),
        within_terms_percent=round_half_up(100 * total(3) / weight),
        worst_delay_days=max((s[5] for s in sums.values()), default=0),
        amount_usd_minor=sum(s[0] for s in sums.values()),
        capped_suppliers=len(names),
    ))


def rating(state: StateReader, buyer: str, as_of: date, height: int, *,
           policy: RatingPolicy | None = None) -> Rating | Insufficient:
    """The buyer's payment index as of ``as_of`` over the state at ``height``.

    ``as_of`` is normally the block date of ``height``; it MUST NOT precede the
    last date the buyer's aggregates changed (:class:`Conflict`), since a
    payment recorded later may carry an earlier value date. ``policy``
    defaults to the consortium's. The cost is bounded by the window, not the
    history: one header, the consortium record, at most 24 month records (plus
    months due ahead) and at most 5 day maps are read (specs/ratings.md#query).
    """
    header = _get(state, buyer_key(buyer))
    if header is not None and as_of.isoformat() < header["updated"]:
        raise Conflict(f"as_of {as_of.isoformat()} precedes {header['updated']}, the last "
                       f"change to the ratings of {buyer}; query the state of that date",
                       code="as_of_before_state")
    if policy is None:
        policy = policy_from_state(state)
    classes, related = policy.classes(), policy.related_to(buyer)
    included = tuple(c for c in CLASSES if c in classes)
    bands: list[dict[str, _Sums]] = [{} for _ in _BAND_LIMITS]
    now = month_index(as_of)
    for month in header["months"] if header else ():
        age = now - month_index(month)
        if age >= WINDOW_MONTHS:
            continue
        band_index = next(i for i, limit in enumerate(_BAND_LIMITS) if age < limit)
        _add_month(bands[band_index], state, buyer, month, as_of, included, related)
    # Windows are cumulative unions of the bands: 3, 6, 12 then 24 months.
    windows: list[dict[str, _Sums]] = []
    running: dict[str, _Sums] = {}
    for band_sums in bands:
        running = _merged(running, band_sums)
        windows.append(running)
    cap = policy.supplier_cap_percent
    trend = tuple(TrendPoint(span, out.score, out.invoices)
                  for span, out in ((span, _evaluate(w, cap))
                                    for span, w in zip(TREND_MONTHS, windows[:3], strict=True)))
    main = _evaluate(windows[3], cap)
    if main.score is None or main.factors is None:
        return Insufficient(buyer, as_of, height, main.invoices, main.suppliers, main.reason,
                            trend, policy)
    return Rating(buyer, as_of, height, main.score, band(main.score), main.factors, trend,
                  policy)


def _merged(base: Mapping[str, _Sums], more: Mapping[str, _Sums]) -> dict[str, _Sums]:
    """A new per-supplier sum map: ``base`` plus ``more`` (neither is changed)."""
    out = {s: list(v) for s, v in base.items()}
    for supplier, vals in more.items():
        acc = out.get(supplier)
        if acc is None:
            out[supplier] = list(vals)
            continue
        for i in range(5):
            acc[i] += vals[i]
        acc[5] = max(acc[5], vals[5])
    return out
