"""The buyer payment index: a PAYDEX-style score kept up to date in state (specs/ratings.md).

Three layers, all deterministic and free of floats:

* the formula: :func:`v84` / :func:`v` (the value of paying ``d`` days after
  the due date), :func:`round_half_up`, :func:`band`, :func:`cap_factors`
  (the supplier cap) and :class:`RatingPolicy` (the consortium's switches);
* the aggregates: an :class:`Experience` (one invoice or certificate of an
  obligor, reduced to USD-weighted terms) becomes a :class:`Contribution`,
  and :func:`apply_experience` replaces an experience's previous contribution
  with its new one in the per-buyer aggregates (specs/ratings.md#state);
* the query: :func:`rating` reads those aggregates, at most 24 month
  summaries and a handful of day-level records, whatever the length of the
  history; a supplier's own records only where the policy needs them.

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
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from typing import Any, Final, Literal, Protocol

from ledger.encoding import MAX_SAFE_INTEGER, loads_trusted
from ledger.errors import Conflict, MalformedRecord
from ledger.state import StateReader, read_many

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


def _ratio_half_up(num: Fraction | int, den: Fraction | int) -> int:
    """``round_half_up(num / den)`` for ``den > 0``, in integers when both are."""
    if type(num) is int and type(den) is int:
        return (2 * num + den) // (2 * den)
    return round_half_up(Fraction(num) / Fraction(den))


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


def _cap(weights: Mapping[str, int], cap_percent: int, *, total: int | None = None,
         others: int = 0) -> tuple[Fraction, frozenset[str]] | None:
    """(level L, the capped suppliers) per :func:`cap_factors`; None if the cap cannot hold.

    ``weights`` may leave out suppliers that cannot be capped: ``total`` is then
    the weight of all of them and ``others`` how many were left out.
    """
    if cap_percent >= 100:
        return Fraction(0), frozenset()
    order = sorted(weights, key=lambda s: (-weights[s], s))
    rest = sum(weights.values()) if total is None else total
    for k, supplier in enumerate(order):
        if k * cap_percent >= 100:
            break
        level = Fraction(cap_percent * rest, 100 - k * cap_percent)
        if weights[supplier] <= level:
            return level, frozenset(order[:k])
        rest -= weights[supplier]
    else:
        # Every listed supplier passes its level: the first left out stops the filling.
        if others and len(order) * cap_percent < 100:
            return (Fraction(cap_percent * rest, 100 - len(order) * cap_percent),
                    frozenset(order))
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
    """The class summaries of the buyer's experiences due in ``month``."""
    return f"ratings/month/{buyer}/{month}"


def days_key(buyer: str, month: str) -> str:
    """Open amounts of ``month`` by due day, summed over the suppliers; read only
    where v bends inside the month."""
    return f"ratings/days/{buyer}/{month}"


def supplier_key(buyer: str, month: str, supplier: str) -> str:
    """One supplier's vectors, late-delay multisets and day maps in ``month``."""
    return f"ratings/supplier/{buyer}/{month}/{supplier}"


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


#: The aggregate classes (specs/ratings.md#state). A vector is one string of
#: ``_BLOCK`` space-separated decimal integers: exact at any size, and one
#: JSON node to encode. A supplier's vector per class is in its supplier
#: record; the month record holds per class the summary a query reads.
CLASSES: Final = ("i", "d", "c")
_BLOCK: Final = 10
W, OW, WORST, FIRST, VN, LATE, ONTIME, N, ON, OWD = range(_BLOCK)
#: The entries of a class ``agg``, in this order (w vn late ontime n ow on owd),
#: then ``top``, the largest w + ow of one supplier.
SUM_FIELDS: Final = (W, VN, LATE, ONTIME, N, OW, ON, OWD)


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
        for supplier in sorted({name for entry in record.values()
                                for name in entry["names"].split()}):
            batch.set(supplier_key(buyer, month, supplier), None)
        batch.set(month_key(buyer, month), None)
        batch.set(days_key(buyer, month), None)
    kept = [m for m in header["months"] if month_index(m) >= cutoff]
    if kept != header["months"]:
        batch.set(buyer_key(buyer), {**header, "months": kept} if kept else None)


def _add(batch: _Batch, c: Contribution, sign: int) -> None:
    """Add ``sign`` times contribution ``c`` to its supplier record, then follow
    the change in the month's class summary."""
    skey = supplier_key(c.buyer, c.month, c.supplier)
    record: dict[str, dict[str, str]] = batch.get(skey) or {}
    entry = record.setdefault(c.cls, {"vec": ""})
    before = _ints(entry["vec"]) or [0] * _BLOCK
    vec = list(before)
    if c.settled[0] or c.settled[4]:
        w, vn, late, ontime, n = c.settled
        vec[W] += sign * w
        vec[VN] += sign * vn
        vec[LATE] += sign * late
        vec[ONTIME] += sign * ontime
        vec[N] += sign * n
        if c.late_days:
            vec[WORST] = _late(entry, c.late_days, sign)
    if c.open is not None:
        vec[OW], vec[ON], vec[OWD], vec[FIRST] = _add_open(batch, entry, c, sign)
    if any(vec):
        entry["vec"] = " ".join(map(str, vec))
    else:  # nothing paid, nothing open: no delays and no day map either
        del record[c.cls]
    batch.set(skey, record or None)
    _summarise(batch, c, before, vec)


def _summarise(batch: _Batch, c: Contribution, before: list[int], vec: list[int]) -> None:
    """Follow a supplier vector's change from ``before`` to ``vec`` in the class
    summary: ``agg``, ``names`` and ``wow``, ``worst`` and ``first``."""
    mkey = month_key(c.buyer, c.month)
    record = batch.get(mkey) or {}
    entry = record.get(c.cls) or {"agg": "", "names": "", "wow": "", "worst": "", "first": ""}
    names = entry["names"].split()
    wow = _ints(entry["wow"])
    i = bisect.bisect_left(names, c.supplier)
    present = i < len(names) and names[i] == c.supplier
    if any(vec):
        if not present:
            names.insert(i, c.supplier)
            wow[2 * i:2 * i] = [0, 0]
        wow[2 * i:2 * i + 2] = [vec[W], vec[OW]]
    elif present:
        del names[i]
        del wow[2 * i:2 * i + 2]
    if not names:
        record.pop(c.cls, None)
        batch.set(mkey, record or None)
        return
    agg = _ints(entry["agg"]) or [0] * (len(SUM_FIELDS) + 1)
    for j, entry_index in enumerate(SUM_FIELDS):
        agg[j] += vec[entry_index] - before[entry_index]
    agg[-1] = max(map(operator.add, wow[0::2], wow[1::2]))
    entry = {**entry, "agg": " ".join(map(str, agg)), "names": " ".join(names),
             "wow": " ".join(map(str, wow))}
    if vec[WORST] != before[WORST]:
        entry["worst"] = _ranked(entry["worst"], c.supplier, vec[WORST], descending=True)
    if vec[FIRST] != before[FIRST]:
        entry["first"] = _ranked(entry["first"], c.supplier, vec[FIRST], descending=False)
    record[c.cls] = entry
    batch.set(mkey, record)


def _ranked(pairs: str, supplier: str, value: int, *, descending: bool) -> str:
    """The ranking ``"value supplier value supplier ..."`` with ``supplier``'s value
    replaced (0: removed), ordered by value (largest first if ``descending``),
    then supplier. Organisation ids hold no space."""
    tokens = pairs.split()
    ranked = [(int(v), s) for v, s in zip(tokens[0::2], tokens[1::2], strict=True)
              if s != supplier]
    if value:
        ranked.append((value, supplier))
    ranked.sort(key=(lambda p: (-p[0], p[1])) if descending else None)
    return " ".join(f"{v} {s}" for v, s in ranked)


def _late(entry: dict[str, str], late_days: tuple[int, ...], sign: int) -> int:
    """Update the late-delay multiset ``entry["late"]``; return its largest delay (0 if
    none)."""
    pairs = _ints(entry.get("late", ""))
    counts = Counter(dict(zip(pairs[0::2], pairs[1::2], strict=True)))
    for d in late_days:
        counts[d] += sign
    counts = +counts  # drop zero counts
    if counts:
        entry["late"] = " ".join(f"{d} {n}" for d, n in sorted(counts.items()))
    else:
        entry.pop("late", None)
    return max(counts) if counts else 0


def _add_open(batch: _Batch, entry: dict[str, str], c: Contribution, sign: int) -> list[int]:
    """Update the supplier's day map ``entry["days"]`` and the month's summed day map;
    return the supplier's open summary (w, n, wd, first day).

    A day map is the string ``"day w n day w n ..."`` (days ascending, only
    days with an open amount): compact to store, and parsed at C speed by the
    few queries that need it.
    """
    assert c.open is not None
    day, weight, n = c.open
    entries = _day_map(entry, "days", day, sign * weight, sign * n)
    dkey = days_key(c.buyer, c.month)
    summed: dict[str, str] = batch.get(dkey) or {}
    _day_map(summed, c.cls, day, sign * weight, sign * n)
    batch.set(dkey, summed or None)
    total = sum(w for w, _k in entries.values())
    return [total, sum(k for _w, k in entries.values()),
            sum(d * w for d, (w, _k) in entries.items()),
            min((d for d, (w, _k) in entries.items() if w > 0), default=0)]


def _day_map(maps: dict[str, str], name: str, day: int, weight: int, n: int
             ) -> dict[int, list[int]]:
    """Add (weight, n) at ``day`` to the day map ``maps[name]``; return its entries."""
    nums = _ints(maps.get(name, ""))
    entries = {nums[i]: [nums[i + 1], nums[i + 2]] for i in range(0, len(nums), 3)}
    w0, n0 = entries.get(day, (0, 0))
    if w0 + weight or n0 + n:
        entries[day] = [w0 + weight, n0 + n]
    else:
        entries.pop(day, None)
    if entries:
        maps[name] = " ".join(f"{d} {w} {k}" for d, (w, k) in sorted(entries.items()))
    else:
        maps.pop(name, None)
    return entries


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


#: Age bands of a month (as-of month minus due month): the trend windows are
#: unions of bands (3 months: band 0; 6: bands 0-1; 12: 0-2; 24: 0-3).
_BAND_LIMITS: Final = (3, 6, 12, 24)


def _piece(d: int) -> int:
    for i, (lo, hi, _a, _b) in enumerate(_PIECES):
        if lo <= d <= hi:
            return i
    raise AssertionError(d)


def _first_other(ranking: str, related: frozenset[str]) -> int | None:
    """The value of the first unrelated supplier in a ranking (None if none)."""
    if not ranking:
        return None
    tokens = ranking.split()
    if not related:
        return int(tokens[0])
    for value, supplier in zip(tokens[0::2], tokens[1::2], strict=True):
        if supplier not in related:
            return int(value)
    return None


def _geometry(month: str, as_of: date) -> tuple[int, int, tuple[int, int] | None, bool]:
    """(days in month, k, linear, needs the day map) of ``month`` as of ``as_of``.

    A term due on day-of-month t is ``d = k - t`` days late; ``linear`` is
    ``(A + B k, B)`` when every due day is past due and on one linear piece
    ``84 v(d) = A + B d``; otherwise a month with some day past due needs its
    day map.
    """
    year, mon = int(month[:4]), int(month[5:7])
    length = calendar.monthrange(year, mon)[1]
    k = as_of.toordinal() - date(year, mon, 1).toordinal() + 1
    d_hi, d_lo = k - 1, k - length
    if d_hi < 1:
        return length, k, None, False
    if d_lo >= 1 and _piece(d_lo) == _piece(d_hi):
        _first, _last, a, b = _PIECES[_piece(d_lo)]
        return length, k, (a + b * k, b), False
    return length, k, None, True


def _prefetch(state: StateReader, wanted: list[tuple[_Month, str]]) -> None:
    """Read the supplier records of ``wanted`` (month, supplier) in one go."""
    todo = [(m, s) for m, s in wanted if s in m.names and s not in m._records]
    values = read_many(state, [supplier_key(m.buyer, m.month, s) for m, s in todo])
    for m, s in todo:
        raw = values[supplier_key(m.buyer, m.month, s)]
        m._records[s] = {} if raw is None else loads_trusted(raw)


def _add_past_due(sums: list[int], open_days: list[int]) -> None:
    """Add past-due open days' (w, vn, late, n) to (w, vn, late, ontime, n) ``sums``."""
    w, vn, late, n = open_days
    sums[0] += w
    sums[1] += vn
    sums[2] += late
    sums[4] += n


class _Month:
    """One month of the window as the query reads it, as of ``as_of``.

    A term due on day-of-month t is ``d = k - t`` days late. ``linear`` is
    ``(A + B k, B)`` when every due day is past due and on one linear piece
    ``84 v(d) = A + B d`` (the open summaries then suffice); the summed day
    maps are read when some day is past due and the month is not linear.
    Supplier records are read only for the suppliers whose own sums are
    needed (related parties, capped suppliers) and, in day-map months, for
    the suppliers weighed exactly when the cap may bind.
    """

    def __init__(self, state: StateReader, buyer: str, month: str,
                 geometry: tuple[int, int, tuple[int, int] | None, bool],
                 classes: tuple[str, ...], values: Mapping[str, bytes | None]) -> None:
        """``geometry`` is :func:`_geometry` of the month; ``values`` holds the raw
        month record and, when the geometry needs it, the summed day map."""
        self.state, self.buyer, self.month = state, buyer, month
        self.length, self.k, self.linear, needs_days = geometry
        self.d_hi = self.k - 1
        self.fully_due = self.k - self.length >= 1
        raw = values[month_key(buyer, month)]
        record = {} if raw is None else loads_trusted(raw)
        self.days: dict[str, str] | None = None
        if needs_days:
            raw = values[days_key(buyer, month)]
            self.days = {} if raw is None else loads_trusted(raw)
        self.classes = tuple(cls for cls in classes if cls in record)
        self.entries = tuple(record[cls] for cls in self.classes)
        self.names = frozenset(name for entry in self.entries
                               for name in entry["names"].split())
        self._vtable: list[int] | None = None
        self._records: dict[str, dict[str, dict[str, str]]] = {}

    def _record(self, supplier: str) -> dict[str, dict[str, str]]:
        """The supplier's record of this month (read once; see :func:`_prefetch`)."""
        record = self._records.get(supplier)
        if record is None:
            key = supplier_key(self.buyer, self.month, supplier)
            record = self._records[supplier] = _get(self.state, key) or {}
        return record

    def _open_days(self, maps: Mapping[str, str | None]) -> list[int]:
        """(w, vn, late, n) of the past-due days of day maps ``maps`` (by class)."""
        out = [0, 0, 0, 0]
        k = self.k
        for cls in self.classes:
            text = maps.get(cls)
            if not text:
                continue
            nums = _ints(text)
            days, ws = nums[0::3], nums[1::3]
            due = bisect.bisect_right(days, self.d_hi)  # entries with day <= k - 1
            if not due:
                continue
            if self._vtable is None:
                self._vtable = [0, *(v84(k - day) for day in range(1, self.length + 1))]
            days, ws = days[:due], ws[:due]
            sw = sum(ws)
            out[0] += sw
            out[1] += sum(map(operator.mul, ws, map(self._vtable.__getitem__, days)))
            out[2] += k * sw - sum(map(operator.mul, ws, days))
            out[3] += sum(nums[2:3 * due:3])
        return out

    def add_totals(self, totals: list[int]) -> int:
        """Add every supplier's (w, vn, late, ontime, n) to ``totals``; return an
        upper bound of any one supplier's weight in this month."""
        bound = 0
        for entry in self.entries:
            t = _ints(entry["agg"])  # w vn late ontime n ow on owd top
            bound += t[8]
            totals[0] += t[0]
            totals[1] += t[1]
            totals[2] += t[2]
            totals[3] += t[3]
            totals[4] += t[4]
            if self.linear is not None:
                self._add_linear_open(totals, t[5], t[6], t[7])
        if self.days is not None:
            _add_past_due(totals, self._open_days(self.days))
        return bound

    def supplier(self, supplier: str) -> list[int]:
        """One supplier's (w, vn, late, ontime, n) in this month."""
        out = [0, 0, 0, 0, 0]
        if supplier not in self.names:
            return out
        record = self._record(supplier)
        for cls in self.classes:
            entry = record.get(cls)
            if entry is None:
                continue
            v = _ints(entry["vec"])
            out[0] += v[W]
            out[1] += v[VN]
            out[2] += v[LATE]
            out[3] += v[ONTIME]
            out[4] += v[N]
            if self.linear is not None:
                self._add_linear_open(out, v[OW], v[ON], v[OWD])
        if self.days is not None:
            _add_past_due(out, self._own_open_days(supplier))
        return out

    def _add_linear_open(self, sums: list[int], ow: int, on: int, owd: int) -> None:
        """Add open amounts of a linear month (weight ``ow``, count ``on``, weight
        times due day ``owd``), all past due and valued on one piece, to the
        (w, vn, late, ontime, n) ``sums``."""
        assert self.linear is not None
        c1, b = self.linear
        sums[0] += ow
        sums[1] += c1 * ow - b * owd
        sums[2] += self.k * ow - owd
        sums[4] += on

    def bounds(self, lo: dict[str, int], hi: dict[str, int], related: frozenset[str]
               ) -> None:
        """Add each unrelated supplier's counted weight to ``lo`` (paid, and open in a
        linear month) and an upper bound of it to ``hi`` (plus all its open weight in
        a day-map month)."""
        for entry in self.entries:
            wow = _ints(entry["wow"])
            for supplier, w, ow in zip(entry["names"].split(), wow[0::2], wow[1::2],
                                       strict=True):
                if supplier in related:
                    continue
                base = w + ow if self.linear is not None else w
                lo[supplier] = lo.get(supplier, 0) + base
                hi[supplier] = hi.get(supplier, 0) + (base + ow if self.days is not None
                                                      else base)

    def open_weight(self, supplier: str) -> int:
        """The past-due open weight of a supplier in a day-map month (0 elsewhere)."""
        if self.days is None or supplier not in self.names:
            return 0
        return self._own_open_days(supplier)[0]

    def _own_open_days(self, supplier: str) -> list[int]:
        """(w, vn, late, n) of the past-due days of the supplier's own day maps."""
        record = self._record(supplier)
        return self._open_days({cls: entry.get("days") for cls, entry in record.items()})

    def _open_before(self, day: int, related: frozenset[str]) -> set[str]:
        """The unrelated suppliers with an open amount due on or before ``day``."""
        out = set()
        for entry in self.entries:
            tokens = entry["first"].split()
            for first, supplier in zip(tokens[0::2], tokens[1::2], strict=True):
                if int(first) > day:
                    break
                if supplier not in related:
                    out.add(supplier)
        return out

    def counted(self, related: frozenset[str]) -> set[str]:
        """The unrelated suppliers with a counted weight in this month."""
        if self.fully_due:  # each listed supplier has a paid or a past-due open weight
            return set(self.names - related)
        out = self._open_before(self.d_hi, related)
        for entry in self.entries:
            wow = _ints(entry["wow"])
            out.update(s for s, w in zip(entry["names"].split(), wow[0::2], strict=True)
                       if w and s not in related)
        return out

    def worst(self, related: frozenset[str]) -> int:
        """The largest delay of an unrelated supplier's counted term."""
        worst = 0
        for entry in self.entries:
            settled = _first_other(entry["worst"], related)
            if settled is not None and settled > worst:
                worst = settled
            first = _first_other(entry["first"], related)  # earliest open due day
            if first is not None and first <= self.d_hi and self.k - first > worst:
                worst = self.k - first
        return worst


@dataclass
class _Band:
    """The sums of one age band of months, over the counted suppliers.

    ``totals`` is (w, vn, late, ontime, n); ``suppliers`` the suppliers with a
    counted weight; ``bound`` the sum of the months' bounds of one supplier's
    weight; ``worst`` the largest delay.
    """

    totals: list[int]
    suppliers: set[str]
    bound: int
    worst: int
    months: list[_Month]
    _bounds: tuple[dict[str, int], dict[str, int]] | None = None
    _own: dict[str, list[int]] = field(default_factory=dict)

    def bounds(self, related: frozenset[str]) -> tuple[dict[str, int], dict[str, int]]:
        """Each unrelated supplier's weight without the day-map months' open amounts,
        and with all of them: the bounds of its weight in the band (computed once)."""
        if self._bounds is None:
            lo: dict[str, int] = {}
            hi: dict[str, int] = {}
            for month in self.months:
                month.bounds(lo, hi, related)
            self._bounds = lo, hi
        return self._bounds

    def own(self, supplier: str) -> list[int]:
        """One supplier's (w, vn, late, ontime, n) in the band (computed once)."""
        sums = self._own.get(supplier)
        if sums is None:
            sums = self._own[supplier] = [0, 0, 0, 0, 0]
            for month in self.months:
                for i, x in enumerate(month.supplier(supplier)):
                    sums[i] += x
        return sums

    def add(self, month: _Month, related: frozenset[str]) -> None:
        self.bound += month.add_totals(self.totals)
        for supplier in sorted(related & month.names):  # in the sums: take them out
            for i, x in enumerate(month.supplier(supplier)):
                self.totals[i] -= x
        self.suppliers |= month.counted(related)
        self.worst = max(self.worst, month.worst(related))
        self.months.append(month)


def _weigh(state: StateReader, bands: list[_Band], cap_percent: int, total: int,
           suppliers: int, related: frozenset[str]) -> tuple[Fraction, frozenset[str]] | None:
    """The cap's (level, capped suppliers) over ``bands``, as :func:`_cap` gives it over
    every supplier's exact weight, weighing exactly only the suppliers that may be capped.

    At most ``m`` suppliers can be capped (``m * cap < 100``), and every level of
    the water-filling is at least ``cap * (total - the m largest upper bounds)``
    / 100. A supplier whose upper bound stays under that is never capped and
    never reached before the filling stops, so only the others are weighed
    (their open amounts in day-map months read from their own records).
    """
    lo: dict[str, int] = {}
    hi: dict[str, int] = {}
    for b in bands:
        b_lo, b_hi = b.bounds(related)
        for supplier, w in b_lo.items():
            lo[supplier] = lo.get(supplier, 0) + w
        for supplier, w in b_hi.items():
            hi[supplier] = hi.get(supplier, 0) + w
    most = -(-100 // cap_percent) - 1  # the largest m with m * cap < 100
    floor = cap_percent * (total - sum(sorted(hi.values(), reverse=True)[:most]))
    candidates = sorted(s for s, w in hi.items() if 100 * w > floor)
    months = [m for b in bands for m in b.months]
    _prefetch(state, [(m, s) for m in months if m.days is not None for s in candidates])
    exact = {s: lo[s] + sum(m.open_weight(s) for m in months) for s in candidates}
    exact = {s: w for s, w in exact.items() if w > 0}
    return _cap(exact, cap_percent, total=total, others=suppliers - len(exact))


@dataclass
class _Outcome:
    invoices: int
    suppliers: int
    score: int | None
    reason: str
    factors: Factors | None


def _evaluate(state: StateReader, bands: list[_Band], cap_percent: int,
              related: frozenset[str]) -> _Outcome:
    """Score the union of ``bands`` (a trend window or the whole window)."""
    totals = [sum(b.totals[i] for b in bands) for i in range(5)]
    invoices = totals[4]
    suppliers = len(set().union(*(b.suppliers for b in bands)))
    if invoices < MIN_INVOICES:
        return _Outcome(invoices, suppliers, None,
                        f"insufficient history: {invoices} of the {MIN_INVOICES} invoices "
                        "needed", None)
    level, names = Fraction(0), frozenset[str]()
    # No supplier can pass the cap when the bounds of its weight stay under it;
    # otherwise weigh every supplier (specs/ratings.md#query, step 4).
    if cap_percent < 100 and 100 * sum(b.bound for b in bands) > cap_percent * totals[0]:
        capped = _weigh(state, bands, cap_percent, totals[0], suppliers, related)
        if capped is None:
            return _Outcome(invoices, suppliers, None,
                            f"insufficient history: no supplier may carry more than "
                            f"{cap_percent}% of the weight, and {suppliers} supplier(s) "
                            "cannot meet that", None)
        level, names = capped
    own: dict[str, list[int]] = {}
    if names:
        _prefetch(state, [(m, s) for b in bands for m in b.months for s in sorted(names)])
    for supplier in names:
        own[supplier] = [sum(b.own(supplier)[i] for b in bands) for i in range(5)]

    def total(i: int) -> Fraction | int:
        # Uncapped suppliers count in full (integers); a capped one is scaled
        # to the level L: its share of sum i is L * X_i / W.
        if not own:
            return totals[i]
        whole = totals[i] - sum(x[i] for x in own.values())
        return whole + level * sum((Fraction(x[i], x[0]) for x in own.values()), Fraction(0))

    weight = total(0)
    score = _ratio_half_up(total(1), V_DENOMINATOR * weight)
    return _Outcome(invoices, suppliers, score, "", Factors(
        invoices=invoices,
        suppliers=suppliers,
        days_beyond_terms=_ratio_half_up(total(2), weight),
        within_terms_percent=_ratio_half_up(100 * total(3), weight),
        worst_delay_days=max(b.worst for b in bands),
        amount_usd_minor=totals[0],
        capped_suppliers=len(names),
    ))


def rating(state: StateReader, buyer: str, as_of: date, height: int, *,
           policy: RatingPolicy | None = None) -> Rating | Insufficient:
    """The buyer's payment index as of ``as_of`` over the state at ``height``.

    ``as_of`` is normally the block date of ``height``; it MUST NOT precede the
    last date the buyer's aggregates changed (:class:`Conflict`), since a
    payment recorded later may carry an earlier value date. ``policy``
    defaults to the consortium's. The cost is bounded by the window, not the
    history: one header, the consortium record, at most 24 month summaries
    (plus months due ahead) and at most 5 summed day maps are read, and a
    supplier's own record only for related parties and when the supplier cap
    may bind (specs/ratings.md#query).
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
    now = month_index(as_of)
    window = [m for m in (header["months"] if header else ())
              if now - month_index(m) < WINDOW_MONTHS]
    # The month records and summed day maps in one read, then the related
    # parties' own records in another.
    geometry = {m: _geometry(m, as_of) for m in window}
    values = read_many(state, [k for m in window for k in (
        (month_key(buyer, m), days_key(buyer, m)) if geometry[m][3] else (month_key(buyer, m),))])
    months = [_Month(state, buyer, m, geometry[m], included, values) for m in window]
    _prefetch(state, [(m, s) for m in months for s in sorted(related & m.names)])
    bands = [_Band([0, 0, 0, 0, 0], set(), 0, 0, []) for _ in _BAND_LIMITS]
    for month in months:
        age = now - month_index(month.month)
        bands[next(i for i, limit in enumerate(_BAND_LIMITS) if age < limit)].add(
            month, related)
    # Windows are cumulative unions of the bands: 3, 6, 12 then 24 months.
    cap = policy.supplier_cap_percent
    trend = tuple(TrendPoint(span, out.score, out.invoices)
                  for span, out in ((span, _evaluate(state, bands[:i + 1], cap, related))
                                    for i, span in enumerate(TREND_MONTHS)))
    main = _evaluate(state, bands, cap, related)
    if main.score is None or main.factors is None:
        return Insufficient(buyer, as_of, height, main.invoices, main.suppliers, main.reason,
                            trend, policy)
    return Rating(buyer, as_of, height, main.score, band(main.score), main.factors, trend,
                  policy)
