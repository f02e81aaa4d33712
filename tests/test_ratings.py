"""The buyer payment index (specs/ratings.md): formula, hand-computed histories, and a
random history checked against a literal reference implementation.

Every history goes through the real executor: a consortium founded by
``make_genesis``, signed transactions, ``execute_block``; the ratings indexers
run inside those blocks exactly as on a node. The reference implementation at
the bottom recomputes each score from the raw ``trade/invoice/<id>`` records
with none of the aggregates.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import currency
from ledger import ratings as rt
from ledger.chain import make_genesis
from ledger.contracts import INDEXERS
from ledger.contracts.ratings import index_certificate
from ledger.encoding import canonical, loads
from ledger.errors import Conflict, MalformedRecord
from ledger.executor import BlockContext, execute_block
from ledger.keys import SigningKey
from ledger.state import MemoryState, Overlay
from ledger.tx import SignedTx, make_body, sign_tx

CHAIN = "ratings-test"
T0 = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
ORG_ROLES: dict[str, list[str]] = {
    "platform": ["platform"],
    "bank-a": ["bank"],
    "buyer-a": ["buyer"],
    "buyer-b": ["buyer"],
    "buyer-c": ["buyer"],
    "supplier-a": ["supplier"],
    "supplier-b": ["supplier"],
    "supplier-c": ["supplier"],
    "supplier-d": ["supplier"],
    "supplier-e": ["supplier"],
    "trader-x": ["buyer", "supplier"],
}
KEYS = {org: SigningKey(bytes([i + 1]) * 32) for i, org in enumerate(ORG_ROLES)}
NODE = SigningKey(bytes([200]) * 32)
RELATED = [["buyer-b", "supplier-b"], ["trader-x", "supplier-e"]]
NO_SWITCHES = rt.RatingPolicy(exclude_disputed=False, exclude_related_party=False,
                              supplier_cap_percent=100, count_overdue_certificates=False)


def description(policy: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "chain_id": CHAIN,
        "name": "Ratings tests",
        "organisations": [
            {"id": org, "name": org.title(), "roles": roles,
             "admin_keys": [KEYS[org].public_key_hex], "member_keys": [],
             "node_keys": [NODE.public_key_hex] if org == "platform" else []}
            for org, roles in ORG_ROLES.items()
        ],
        "quorum": {"validators": ["platform"], "threshold": 1},
        "policy": dict(policy),
    }


Tx = tuple[str, dict[str, Any], tuple[str, ...]]


class Chain:
    """A consortium's state; ``block`` executes signed transactions at a block date."""

    def __init__(self, policy: Mapping[str, Any] | None = None) -> None:
        genesis = make_genesis(description(policy if policy is not None
                                           else {"related_parties": RELATED}),
                               founder=KEYS["platform"], time=T0)
        self.genesis_writes = {k: v for k, v in genesis.state_writes.items() if v is not None}
        self.state = MemoryState(self.genesis_writes)
        self.height = 0
        self.today = T0.date()
        self.nonce = 0
        self.orders: dict[tuple[str, str, str], str] = {}
        self.payments = 0
        self.blocks: list[tuple[list[SignedTx], BlockContext]] = []

    def block(self, day: date, txs: Sequence[Tx]) -> None:
        assert day >= self.today, "block dates never go backwards"
        self.today = day
        self.height += 1
        time = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        signed = []
        for tx_type, payload, orgs in txs:
            self.nonce += 1
            body = make_body(tx_type=tx_type, chain_id=CHAIN, author=KEYS[orgs[0]],
                             payload=payload, nonce=f"nonce-{self.nonce:08d}", created_at=time)
            signed.append(sign_tx(body, [KEYS[o] for o in orgs]))
        ctx = BlockContext(CHAIN, self.height, time)
        execution = execute_block(self.state, signed, ctx)
        assert not execution.refused, execution.refused[0].error.to_problem()
        self.state.apply(execution.state.writes)
        self.blocks.append((signed, ctx))

    # -- shortcuts, one block each --------------------------------------------------

    def order_for(self, buyer: str, seller: str, cur: str = "USD") -> str:
        if (buyer, seller, cur) not in self.orders:
            order_id = f"PO-{buyer}-{seller}-{cur}"
            self.block(self.today, [order_tx(order_id, buyer, seller, cur)])
            self.orders[(buyer, seller, cur)] = order_id
        return self.orders[(buyer, seller, cur)]

    def invoice(self, invoice_id: str, buyer: str, seller: str, amount: int, due: str, *,
                cur: str = "USD", fx: tuple[int, int] | None = None,
                on: date | None = None) -> None:
        order_id = self.order_for(buyer, seller, cur)
        self.block(max(self.today, on or self.today), [invoice_tx(invoice_id, order_id, seller, amount, due,
                                                 cur=cur, fx=fx, issue=self.today)])

    def pay(self, invoice_id: str, amount: int, value_date: str, *, cur: str = "USD",
            on: date | None = None) -> None:
        invoice = self.get(f"trade/invoice/{invoice_id}")
        paid = date.fromisoformat(value_date)
        self.payments += 1
        self.block(on or max(self.today, paid), [(
            "trade.payment",
            {"payment_id": f"PAY-{self.payments}", "invoice_id": invoice_id,
             "amount": amount, "currency": cur, "value_date": value_date},
            (invoice["buyer"],))])

    def get(self, key: str) -> Any:
        raw = self.state.get_raw(key)
        return None if raw is None else loads(raw)

    def rate(self, buyer: str, as_of: str, policy: rt.RatingPolicy | None = None
             ) -> rt.Rating | rt.Insufficient:
        return rt.rating(self.state, buyer, date.fromisoformat(as_of), self.height,
                         policy=policy)

    def score(self, buyer: str, as_of: str, policy: rt.RatingPolicy | None = None
              ) -> int | None:
        result = self.rate(buyer, as_of, policy)
        return result.score if isinstance(result, rt.Rating) else None


def order_tx(order_id: str, buyer: str, seller: str, cur: str) -> Tx:
    return ("trade.order", {"order_id": order_id, "buyer": buyer, "seller": seller,
                            "currency": cur, "total": 2**52}, (buyer, seller))


def invoice_tx(invoice_id: str, order_id: str, seller: str, amount: int, due: str, *,
               cur: str, fx: tuple[int, int] | None, issue: date) -> Tx:
    payload: dict[str, Any] = {
        "invoice_id": invoice_id, "order_id": order_id, "amount": amount, "currency": cur,
        "issue_date": min(issue, date.fromisoformat(due)).isoformat(), "due_date": due,
        "payment_terms": "NET30"}
    if fx is not None:
        payload["fx_rate_to_usd"] = {"numerator": fx[0], "denominator": fx[1]}
    return ("trade.invoice", payload, (seller,))


def policy(**switches: Any) -> rt.RatingPolicy:
    return rt.RatingPolicy.from_consortium_policy({"related_parties": RELATED,
                                                   "ratings": switches})


# -- v(d) ---------------------------------------------------------------------------


@pytest.mark.parametrize(("days", "value"), rt.ANCHORS, ids=[f"d={d}" for d, _ in rt.ANCHORS])
def test_v_at_every_anchor(days: int, value: int) -> None:
    assert rt.v(days) == value
    assert rt.v84(days) == 84 * value


@pytest.mark.parametrize(("days", "value"), [
    (-10_000, Fraction(100)), (-31, Fraction(100)),   # flat before -30
    (-25, Fraction(95)),                               # 100 - (5/10) x 10
    (-21, Fraction(91)),
    (-10, Fraction(85)),                               # 90 - (10/20) x 10
    (-1, Fraction(161, 2)),                            # 80.5
    (1, Fraction(238, 3)),                             # 80 - 10/15 = 79.33
    (7, Fraction(226, 3)),                             # 80 - 7 x 2/3 = 75.33
    (16, Fraction(480, 7)),                            # 70 - 10/7 = 68.57
    (18, Fraction(460, 7)),                            # 70 - 3 x 10/7 = 65.71
    (21, Fraction(430, 7)),                            # 70 - 6 x 10/7 = 61.43
    (26, Fraction(55)),                                # 60 - 4 x 10/8
    (45, Fraction(45)),                                # 50 - 15/3
    (75, Fraction(35)),
    (100, Fraction(80, 3)),                            # 30 - 10/3 = 26.67
    (150, Fraction(10)),                               # 20 - 30/3
    (179, Fraction(1, 3)),
    (181, Fraction(0)), (10_000, Fraction(0)),         # flat after 180
])
def test_v_between_anchors(days: int, value: Fraction) -> None:
    assert rt.v(days) == value


def test_v_is_the_linear_interpolation_of_the_anchors_everywhere() -> None:
    for days in range(-60, 240):
        assert rt.v(days) == reference_v(days), days


def test_round_half_up_and_bands() -> None:
    assert rt.round_half_up(Fraction(165, 2)) == 83       # 82.5 -> 83
    assert rt.round_half_up(Fraction(8249, 100)) == 82
    assert rt.round_half_up(Fraction(7, 2)) == 4
    assert rt.round_half_up(Fraction(80)) == 80
    bands = {100: "low", 80: "low", 79: "medium", 50: "medium", 49: "high", 0: "high"}
    assert {s: rt.band(s) for s in bands} == bands
    with pytest.raises(ValueError):
        rt.band(101)


def test_cap_factors_by_hand() -> None:
    # 900 vs 100 at 50 %: the large one is cut to the rest (100), i.e. 1/9.
    assert rt.cap_factors({"a": 900, "b": 100}, 50) == {"a": Fraction(1, 9), "b": 1}
    # Exactly at the cap: untouched.
    assert rt.cap_factors({"a": 150, "b": 150}, 50) == {"a": 1, "b": 1}
    # 60 %: L = 60 x 100 / 40 = 150.
    assert rt.cap_factors({"a": 900, "b": 100}, 60) == {"a": Fraction(150, 900), "b": 1}
    # 30 % with two heavy suppliers: k = 2, L = 30 x 40 / 40 = 30 each.
    assert rt.cap_factors({"a": 100, "b": 90, "c": 20, "d": 20}, 30) == {
        "a": Fraction(30, 100), "b": Fraction(30, 90), "c": 1, "d": 1}
    # A lone supplier can never be under 50 %: no weight left.
    assert rt.cap_factors({"a": 10}, 50) == {"a": 0}
    assert rt.cap_factors({"a": 10}, 100) == {"a": 1}


@given(st.dictionaries(st.sampled_from("abcdefgh"), st.integers(1, 10**9), min_size=1),
       st.integers(1, 100))
def test_cap_factors_meet_the_cap_and_match_the_reference(weights: dict[str, int],
                                                          cap: int) -> None:
    factors = rt.cap_factors(weights, cap)
    assert factors == reference_cap(weights, cap)
    capped = {s: f * weights[s] for s, f in factors.items()}
    total = sum(capped.values())
    if total:
        assert all(w <= Fraction(cap, 100) * total for w in capped.values())
    assert all(0 <= f <= 1 for f in factors.values())


@given(st.dictionaries(st.sampled_from("abcdefghijkl"),
                       st.tuples(st.integers(1, 10**6), st.integers(0, 10**6)), min_size=1),
       st.integers(1, 100))
def test_weighing_only_the_suppliers_that_may_be_capped_gives_the_same_cap(
        bounds: dict[str, tuple[int, int]], cap: int) -> None:
    # Each supplier's exact weight w and an upper bound w + slack, as a query sees
    # them before reading day maps (specs/ratings.md#query, step 4).
    exact = {s: w for s, (w, _slack) in bounds.items()}
    total = sum(exact.values())
    most = -(-100 // cap) - 1
    floor = cap * (total - sum(sorted((w + d for w, d in bounds.values()), reverse=True)[:most]))
    candidates = {s: w for s, (w, d) in bounds.items() if 100 * (w + d) > floor}
    assert rt._cap(candidates, cap, total=total, others=len(exact) - len(candidates)) == \
        rt._cap(exact, cap)


# -- hand-computed histories ---------------------------------------------------------


def test_score_basic_history() -> None:
    chain = Chain()
    chain.invoice("A1", "buyer-a", "supplier-a", 100_000, "2026-03-31", on=date(2026, 1, 5))
    chain.invoice("A2", "buyer-a", "supplier-a", 50_000, "2026-04-15")
    chain.invoice("B1", "buyer-a", "supplier-b", 150_000, "2026-04-30")
    chain.pay("A1", 100_000, "2026-03-31")                  # d = 0    v = 80
    chain.pay("B1", 150_000, "2026-04-10")                  # d = -20  v = 90
    chain.pay("A2", 50_000, "2026-05-06")                   # d = 21   v = 70 - 6 x 10/7 = 430/7
    # Weights: supplier-a 150,000, supplier-b 150,000: 50 % each, the cap holds.
    # sum a v = 100,000 x 80 + 50,000 x 430/7 + 150,000 x 90 = 172,000,000/7
    # score = 172,000,000 / 7 / 300,000 = 81.90 -> 82, band low.
    result = chain.rate("buyer-a", "2026-06-30")
    assert isinstance(result, rt.Rating)
    assert (result.score, result.band, result.height) == (82, "low", chain.height)
    # Days beyond terms: 50,000 x 21 / 300,000 = 3.5 -> 4 (half up).
    # Within terms: (100,000 + 150,000) / 300,000 = 83.3 % -> 83.
    assert result.factors == rt.Factors(invoices=3, suppliers=2, days_beyond_terms=4,
                                        within_terms_percent=83, worst_delay_days=21,
                                        amount_usd_minor=300_000, capped_suppliers=0)
    # Trend: the last 3 months (April-June) hold A2 and B1 only: too few.
    assert result.trend == (rt.TrendPoint(3, None, 2), rt.TrendPoint(6, 82, 3),
                            rt.TrendPoint(12, 82, 3))
    assert result.to_wire()["factors"]["days_beyond_terms"] == 4
    canonical(result.to_wire())  # integers, strings, null: no float anywhere


def test_state_layout_matches_the_spec_example() -> None:
    # specs/ratings.md section 5: A1, A2, B1 of the basic history, then A3.
    chain = Chain()
    chain.invoice("A1", "buyer-a", "supplier-a", 100_000, "2026-03-31", on=date(2026, 1, 5))
    chain.invoice("A2", "buyer-a", "supplier-a", 50_000, "2026-04-15")
    chain.invoice("B1", "buyer-a", "supplier-b", 150_000, "2026-04-30")
    chain.pay("A1", 100_000, "2026-03-31")
    chain.pay("B1", 150_000, "2026-04-10")
    chain.pay("A2", 50_000, "2026-05-06")
    chain.invoice("A3", "buyer-a", "supplier-b", 70_000, "2026-05-05")
    chain.pay("A3", 20_000, "2026-05-07")
    assert chain.get("ratings/buyer/buyer-a") == {
        "buyer": "buyer-a", "months": ["2026-03", "2026-04", "2026-05"],
        "updated": "2026-05-07"}
    # Month records: per class the summary (agg: w vn late ontime n ow on owd summed,
    # then the largest w + ow of a supplier; names with their w and ow; rankings).
    assert chain.get("ratings/month/buyer-a/2026-04") == {"i": {
        "agg": "200000 1392000000 1050000 150000 2 0 0 0 150000",
        "names": "supplier-a supplier-b", "wow": "50000 0 150000 0",
        "worst": "21 supplier-a", "first": ""}}
    assert chain.get("ratings/month/buyer-a/2026-05") == {"i": {
        "agg": "20000 132160000 40000 0 1 50000 0 250000 70000",
        "names": "supplier-b", "wow": "20000 50000",
        "worst": "2 supplier-b", "first": "5 supplier-b"}}
    assert chain.get("ratings/days/buyer-a/2026-05") == {"i": "5 50000 0"}
    # Supplier records: vector w ow worst first vn late ontime n on owd, the late
    # delays and the day map.
    assert chain.get("ratings/supplier/buyer-a/2026-04/supplier-a") == {"i": {
        "vec": "50000 0 21 0 258000000 1050000 0 1 0 0", "late": "21 1"}}
    assert chain.get("ratings/supplier/buyer-a/2026-04/supplier-b") == {"i": {
        "vec": "150000 0 0 0 1134000000 0 150000 1 0 0"}}
    assert chain.get("ratings/supplier/buyer-a/2026-05/supplier-b") == {"i": {
        "vec": "20000 50000 2 5 132160000 40000 0 1 0 250000", "late": "2 1",
        "days": "5 50000 0"}}
    assert chain.get("ratings/exp/invoice/A3") == {
        "buyer": "buyer-a", "cls": "i", "late_days": [2], "month": "2026-05",
        "open": [5, 50_000, 0], "settled": [20_000, 132_160_000, 40_000, 0, 1],
        "supplier": "supplier-b"}


def test_partial_payments_open_amounts_and_fx() -> None:
    chain = Chain()
    chain.invoice("P1", "buyer-a", "supplier-a", 100_000, "2026-05-01", on=date(2026, 4, 1))
    chain.invoice("P2", "buyer-a", "supplier-b", 60_000, "2026-06-10", cur="EUR",
                  fx=(108, 100))                             # 600.00 EUR = 64,800 US cents
    chain.invoice("P3", "buyer-a", "supplier-b", 1_500_000, "2026-07-15", cur="JPY",
                  fx=(1, 150))                               # 1,500,000 yen = 1,000,000 cents
    chain.invoice("P4", "buyer-a", "supplier-c", 35_200, "2026-06-01")
    chain.pay("P1", 40_000, "2026-04-11")                   # d = -20  v = 90
    chain.pay("P4", 35_200, "2026-06-01")                   # d = 0    v = 80
    chain.pay("P1", 60_000, "2026-06-15")                   # d = 45   v = 45
    # As of 2026-06-30: P2 is 20 days overdue (v = 70 - 5 x 10/7 = 440/7); P3 is not
    # due yet and does not count.
    # weights a 100,000, b 64,800, c 35,200 = 200,000 (a exactly 50 %).
    # sum a v = 3,600,000 + 2,700,000 + 64,800 x 440/7 + 2,816,000 = 92,324,000/7
    # score = 92,324,000 / 7 / 200,000 = 65.95 -> 66, band medium.
    result = chain.rate("buyer-a", "2026-06-30")
    assert isinstance(result, rt.Rating)
    assert (result.score, result.band) == (66, "medium")
    # DBT: (60,000 x 45 + 64,800 x 20) / 200,000 = 19.98 -> 20.
    # Within terms: (40,000 + 35,200) / 200,000 = 37.6 % -> 38. Worst: 45 days.
    assert (result.factors.invoices, result.factors.suppliers) == (3, 3)
    assert (result.factors.days_beyond_terms, result.factors.within_terms_percent,
            result.factors.worst_delay_days) == (20, 38, 45)
    # As of 2026-07-20 P3 is 5 days overdue (v = 230/3) and P2 40 days (v = 140/3):
    # supplier-b weighs 1,064,800 of 1,200,000 and is capped to the rest, 135,200:
    # b's average value = (64,800 x 140/3 + 1,000,000 x 230/3) / 1,064,800
    #                   = 239,072,000 / 3,194,400 = 74.84
    # score = (6,300,000 + 2,816,000 + 135,200 x 74.84) / 270,400 = 71.14 -> 71.
    later = chain.rate("buyer-a", "2026-07-20")
    assert isinstance(later, rt.Rating)
    b_value = Fraction(239_072_000, 3 * 1_064_800)
    assert later.score == rt.round_half_up(
        (6_300_000 + 2_816_000 + 135_200 * b_value) / 270_400) == 71
    assert later.factors.capped_suppliers == 1
    assert later.factors.worst_delay_days == 45
    # Without the cap: (9,116,000 + 239,072,000/3) / 1,200,000 = 74.0 -> 74.
    assert chain.score("buyer-a", "2026-07-20", policy(supplier_cap_percent=100)) == 74


def test_not_yet_due_and_due_today_do_not_count() -> None:
    chain = Chain()
    for i, seller in enumerate(("supplier-a", "supplier-b", "supplier-c")):
        chain.invoice(f"N{i}", "buyer-a", seller, 10_000, "2026-03-10", on=date(2026, 3, 1))
    assert chain.rate("buyer-a", "2026-03-10").invoices == 0  # type: ignore[union-attr]
    # One day later all three are one day overdue: v(1) = 238/3 = 79.33 -> 79.
    assert chain.score("buyer-a", "2026-03-11") == 79


def test_disputes_are_left_out_until_resolved() -> None:
    chain = Chain()
    for seller in ("supplier-a", "supplier-b", "supplier-c"):
        chain.invoice(f"D-{seller}", "buyer-a", seller, 100_000, "2026-03-01",
                      on=date(2026, 2, 1))
    chain.invoice("D4", "buyer-a", "supplier-c", 100_000, "2026-03-01")
    for seller in ("supplier-a", "supplier-b", "supplier-c"):
        chain.pay(f"D-{seller}", 100_000, "2026-03-01")     # v = 80 each
    chain.block(date(2026, 3, 5), [("trade.dispute_open", {
        "dispute_id": "DSP-1", "invoice_id": "D4", "reason": "goods damaged"}, ("buyer-a",))])
    # As of 2026-04-30 D4 (60 days overdue, v = 40) is disputed: left out -> 80.
    assert chain.score("buyer-a", "2026-04-30") == 80
    # Switched off: c weighs 200,000 of 400,000 (50 %): (3 x 80 + 40) / 4 = 70.
    assert chain.score("buyer-a", "2026-04-30", policy(exclude_disputed=False)) == 70
    # Settled with an adjustment of 50,000: 50,000 stays open, back in the index.
    chain.block(date(2026, 5, 10), [("trade.dispute_resolve", {
        "dispute_id": "DSP-1", "outcome": "settled", "adjustment_amount": 50_000},
        ("buyer-a", "supplier-c"))])
    # d = 70, v = 60 - 70/3 = 110/3; weights 100k, 100k, 150k (c 42.9 %):
    # (24,000,000 + 50,000 x 110/3) / 350,000 = 73.81 -> 74.
    assert chain.score("buyer-a", "2026-05-10") == 74
    # A dispute on a paid invoice takes it out as well: a, b and c's D4 remain.
    chain.block(date(2026, 5, 11), [("trade.dispute_open", {
        "dispute_id": "DSP-2", "invoice_id": "D-supplier-c", "reason": "late claim"},
        ("supplier-c",))])
    # As of 2026-05-11 D4 is 71 days overdue: v = 60 - 71/3 = 109/3; weights 100k, 100k,
    # 50k: (16,000,000 + 50,000 x 109/3) / 250,000 = 17,816,666.67 / 250,000 = 71.27 -> 71.
    result = chain.rate("buyer-a", "2026-05-11")
    assert isinstance(result, rt.Rating)
    assert result.score == 71 and result.factors.invoices == 3
    assert result.factors.worst_delay_days == 71


def test_related_party_trades_are_excluded() -> None:
    chain = Chain()
    chain.invoice("R1", "buyer-b", "supplier-b", 100_000, "2026-03-01", on=date(2026, 2, 1))
    chain.invoice("R2", "buyer-b", "supplier-a", 100_000, "2026-03-01")
    chain.invoice("R3", "buyer-b", "supplier-c", 100_000, "2026-03-01")
    chain.invoice("R4", "buyer-b", "supplier-a", 100_000, "2026-03-01")
    chain.pay("R3", 100_000, "2026-02-09")                  # d = -20  v = 90
    chain.pay("R2", 100_000, "2026-03-01")                  # d = 0    v = 80
    chain.pay("R4", 100_000, "2026-03-16")                  # d = 15   v = 70
    chain.pay("R1", 100_000, "2026-06-29")                  # d = 120  v = 20 (related)
    assert chain.get("trade/invoice/R1")["related_party"] is True
    # R1 left out; a weighs 200,000 of 300,000 and is capped to 100,000 (its mean 75):
    # (75 x 100,000 + 90 x 100,000) / 200,000 = 82.5 -> 83 (half up).
    result = chain.rate("buyer-b", "2026-06-30")
    assert isinstance(result, rt.Rating)
    assert (result.score, result.factors.invoices, result.factors.suppliers) == (83, 3, 2)
    assert result.factors.capped_suppliers == 1
    # Related parties counted: 4 x 100,000, a at 50 %: (80 + 70 + 90 + 20) / 4 = 65.
    assert chain.score("buyer-b", "2026-06-30", policy(exclude_related_party=False)) == 65
    # No cap, related excluded: (80 + 70 + 90) / 3 = 80.
    assert chain.score("buyer-b", "2026-06-30", policy(supplier_cap_percent=100)) == 80


def test_supplier_cap() -> None:
    chain = Chain()
    chain.invoice("C1", "buyer-a", "supplier-a", 450_000, "2026-03-01", on=date(2026, 2, 1))
    chain.invoice("C2", "buyer-a", "supplier-a", 450_000, "2026-03-01")
    chain.invoice("C3", "buyer-a", "supplier-b", 100_000, "2026-03-01")
    chain.pay("C1", 450_000, "2026-03-01")                  # v = 80
    chain.pay("C2", 450_000, "2026-03-01")                  # v = 80
    chain.pay("C3", 100_000, "2026-05-30")                  # d = 90, v = 30
    # No cap: (900,000 x 80 + 100,000 x 30) / 1,000,000 = 75.
    assert chain.score("buyer-a", "2026-06-01", policy(supplier_cap_percent=100)) == 75
    # 50 %: a cut to 100,000: (100,000 x 80 + 100,000 x 30) / 200,000 = 55.
    assert chain.score("buyer-a", "2026-06-01") == 55
    # 60 %: a cut to 60 x 100,000 / 40 = 150,000: (12,000,000 + 3,000,000) / 250,000 = 60.
    assert chain.score("buyer-a", "2026-06-01", policy(supplier_cap_percent=60)) == 60


def test_a_single_supplier_cannot_make_a_score_under_the_cap() -> None:
    chain = Chain()
    for i in range(3):
        chain.invoice(f"S{i}", "buyer-a", "supplier-a", 10_000, "2026-03-01",
                      on=date(2026, 2, 1))
        chain.pay(f"S{i}", 10_000, "2026-03-01")
    result = chain.rate("buyer-a", "2026-04-01")
    assert isinstance(result, rt.Insufficient)
    assert (result.invoices, result.suppliers) == (3, 1)
    assert result.reason.startswith("insufficient history") and "50%" in result.reason
    assert chain.score("buyer-a", "2026-04-01", policy(supplier_cap_percent=100)) == 80


def test_fewer_than_three_invoices_is_insufficient_history() -> None:
    chain = Chain()
    assert chain.rate("buyer-a", "2026-04-01") == rt.Insufficient(
        "buyer-a", date(2026, 4, 1), 0, 0, 0,
        "insufficient history: 0 of the 3 invoices needed",
        (rt.TrendPoint(3, None, 0), rt.TrendPoint(6, None, 0), rt.TrendPoint(12, None, 0)),
        rt.RatingPolicy(related_parties=tuple(frozenset(g) for g in RELATED)))
    chain.invoice("I1", "buyer-a", "supplier-a", 10_000, "2026-03-01", on=date(2026, 2, 1))
    chain.invoice("I2", "buyer-a", "supplier-b", 10_000, "2026-03-01")
    chain.pay("I1", 10_000, "2026-03-01")
    result = chain.rate("buyer-a", "2026-04-01")
    assert isinstance(result, rt.Insufficient)
    assert result.invoices == 2 and result.to_wire()["status"] == "insufficient"
    assert result.reason == "insufficient history: 2 of the 3 invoices needed"
    # A credit note that clears an unpaid invoice leaves nothing to count.
    chain.invoice("I3", "buyer-a", "supplier-c", 10_000, "2026-03-01")
    assert chain.score("buyer-a", "2026-04-01", NO_SWITCHES) is not None
    chain.block(date(2026, 4, 1), [("trade.credit_note", {
        "credit_note_id": "CN-1", "invoice_id": "I3", "amount": 10_000,
        "reason": "returned"}, ("supplier-c",))])
    assert chain.rate("buyer-a", "2026-04-01").invoices == 2  # type: ignore[union-attr]


def test_window_is_the_as_of_month_and_the_23_before_by_due_date() -> None:
    chain = Chain()
    # As of 2026-03-15 the window holds invoices due from 2024-04-01 on.
    chain.invoice("W0", "buyer-a", "supplier-a", 10_000, "2024-03-31", on=date(2024, 1, 2))
    chain.invoice("W1", "buyer-a", "supplier-b", 10_000, "2024-04-01")
    chain.invoice("W2", "buyer-a", "supplier-c", 10_000, "2024-04-30")
    chain.invoice("W3", "buyer-a", "supplier-a", 10_000, "2026-03-14")
    chain.pay("W0", 10_000, "2024-05-30")                   # d = 60 v = 40 (out of window)
    chain.pay("W1", 10_000, "2024-05-31")                   # d = 60 v = 40
    chain.pay("W2", 10_000, "2024-04-30")                   # d = 0  v = 80
    chain.pay("W3", 10_000, "2026-03-14")                   # d = 0  v = 80
    result = chain.rate("buyer-a", "2026-03-15")
    assert isinstance(result, rt.Rating)
    # (40 + 80 + 80) / 3 = 66.67 -> 67 over W1, W2, W3.
    assert (result.score, result.factors.invoices) == (67, 3)
    # Next month W1 and W2 (April 2024) leave: one invoice left.
    assert chain.rate("buyer-a", "2026-04-01").invoices == 1  # type: ignore[union-attr]
    # An invoice due in the future but already paid counts (paid early).
    chain.invoice("W4", "buyer-a", "supplier-b", 10_000, "2026-06-30")
    chain.invoice("W5", "buyer-a", "supplier-c", 10_000, "2026-06-30")
    chain.pay("W4", 10_000, "2026-03-20")                   # d = -102 v = 100
    chain.pay("W5", 10_000, "2026-05-20")                   # d = -41  v = 100
    assert chain.score("buyer-a", "2026-05-20") == 93       # (80 + 100 + 100) / 3


def test_months_leaving_the_window_are_pruned_and_queries_cannot_go_back() -> None:
    chain = Chain()
    for i, seller in enumerate(("supplier-a", "supplier-b", "supplier-c")):
        chain.invoice(f"O{i}", "buyer-a", seller, 10_000, f"2024-0{i + 1}-15",
                      on=date(2024, 1, 1))
    chain.pay("O0", 10_000, "2024-03-01")                   # 46 days late
    assert month_keys(chain, "buyer-a") == ["2024-01", "2024-02", "2024-03"]
    assert chain.get("ratings/supplier/buyer-a/2024-01/supplier-a")["i"]["late"] == "46 1"
    # As of 2026-01-31 the window starts in 2024-02: O1 and O2 are open and more than
    # 180 days late (v = 0), two invoices: no score.
    assert chain.rate("buyer-a", "2026-01-31").invoices == 2  # type: ignore[union-attr]
    # The next change to buyer-a (2026-02-10, window from 2024-03) prunes 2024-01/02.
    chain.invoice("O3", "buyer-a", "supplier-d", 10_000, "2026-02-09", on=date(2026, 2, 10))
    assert month_keys(chain, "buyer-a") == ["2024-03", "2026-02"]
    assert chain.get("ratings/buyer/buyer-a")["months"] == ["2024-03", "2026-02"]
    assert chain.get("ratings/supplier/buyer-a/2024-01/supplier-a") is None
    # A late payment of O1 (due 2024-02) no longer writes anything for its month.
    chain.pay("O1", 10_000, "2026-02-10")
    assert month_keys(chain, "buyer-a") == ["2024-03", "2026-02"]
    assert chain.get("ratings/exp/invoice/O1") is None
    # O2 (v = 0) and O3 (1 day late): two invoices.
    assert chain.rate("buyer-a", "2026-02-10").invoices == 2  # type: ignore[union-attr]
    with pytest.raises(Conflict) as err:
        chain.rate("buyer-a", "2026-02-09")
    assert err.value.code == "as_of_before_state"


def assert_summaries_match_the_vectors(chain: Chain) -> None:
    """Every class summary and summed day map, kept incrementally, equals its
    recomputation from the supplier records (specs/ratings.md#state)."""
    records = {k: loads(v) for k, v in chain.state.items.items() if k.startswith("ratings/")}
    checked = 0
    for key, record in records.items():
        if not key.startswith("ratings/month/"):
            continue
        _, _, buyer, month = key.split("/")
        days: dict[str, dict[int, list[int]]] = {}
        for cls, entry in record.items():
            names = entry["names"].split()
            assert names == sorted(names) and names, key
            vectors = {s: [int(x) for x in
                           records[f"ratings/supplier/{buyer}/{month}/{s}"][cls]["vec"].split()]
                       for s in names}
            sums = [sum(v[i] for v in vectors.values()) for i in rt.SUM_FIELDS]
            top = max(v[rt.W] + v[rt.OW] for v in vectors.values())
            assert entry["agg"] == " ".join(map(str, [*sums, top])), key
            assert entry["wow"] == " ".join(f"{v[rt.W]} {v[rt.OW]}" for v in vectors.values())
            worst = sorted((-v[rt.WORST], s) for s, v in vectors.items() if v[rt.WORST])
            assert entry["worst"] == " ".join(f"{-d} {s}" for d, s in worst), key
            first = sorted((v[rt.FIRST], s) for s, v in vectors.items() if v[rt.FIRST])
            assert entry["first"] == " ".join(f"{t} {s}" for t, s in first), key
            for s in names:
                nums = [int(x) for x in records[f"ratings/supplier/{buyer}/{month}/{s}"][cls]
                        .get("days", "").split()]
                for day, w, n in zip(nums[0::3], nums[1::3], nums[2::3], strict=True):
                    acc = days.setdefault(cls, {}).setdefault(day, [0, 0])
                    acc[0] += w
                    acc[1] += n
            checked += 1
        summed = records.get(f"ratings/days/{buyer}/{month}", {})
        assert summed == {cls: " ".join(f"{d} {w} {n}" for d, (w, n) in sorted(m.items()))
                          for cls, m in days.items()}, key
    suppliers = {k for k in records if k.startswith("ratings/supplier/")}
    listed = {f"ratings/supplier/{k.split('/')[2]}/{k.split('/')[3]}/{s}"
              for k, r in records.items() if k.startswith("ratings/month/")
              for e in r.values() for s in e["names"].split()}
    assert suppliers == listed
    assert checked > 50


def month_keys(chain: Chain, buyer: str) -> list[str]:
    prefix = f"ratings/month/{buyer}/"
    return sorted(k[len(prefix):] for k in chain.state.items if k.startswith(prefix))


def test_trend_over_the_last_3_6_and_12_months() -> None:
    chain = Chain()
    # Three suppliers in each of four months, 100,000 each; as of 2026-06-30.
    plan = [("2024-09-15", 90, 30), ("2025-09-15", 60, 40), ("2026-02-15", 30, 50),
            ("2026-05-15", 0, 80)]
    chain.order_for("buyer-a", "supplier-a")
    for due, late, _value in plan:
        for seller in ("supplier-a", "supplier-b", "supplier-c"):
            chain.invoice(f"T-{due}-{seller}", "buyer-a", seller, 100_000, due,
                          on=max(chain.today, date.fromisoformat(due) - timedelta(days=30)))
        for seller in ("supplier-a", "supplier-b", "supplier-c"):
            paid = date.fromisoformat(due) + timedelta(days=late)
            chain.pay(f"T-{due}-{seller}", 100_000, paid.isoformat())
    result = chain.rate("buyer-a", "2026-06-30")
    assert isinstance(result, rt.Rating)
    # 24 months: (30 + 40 + 50 + 80) / 4 = 50; 12 months (from 2025-07): (40 + 50 + 80)/3
    # = 56.67 -> 57; 6 months (from 2026-01): (50 + 80) / 2 = 65; 3 months: 80.
    assert result.score == 50 and result.band == "medium"
    assert result.trend == (rt.TrendPoint(3, 80, 3), rt.TrendPoint(6, 65, 6),
                            rt.TrendPoint(12, 57, 9))
    assert result.factors.worst_delay_days == 90
    assert result.factors.within_terms_percent == 25


def test_overdue_certificates_count_through_the_hook() -> None:
    chain = Chain()
    chain.invoice("A1", "buyer-a", "supplier-a", 100_000, "2026-03-31", on=date(2026, 1, 5))
    chain.invoice("A2", "buyer-a", "supplier-a", 50_000, "2026-04-15")
    chain.invoice("B1", "buyer-a", "supplier-b", 150_000, "2026-04-30")
    chain.pay("A1", 100_000, "2026-03-31")
    chain.pay("B1", 150_000, "2026-04-10")
    chain.pay("A2", 50_000, "2026-05-06")
    assert chain.score("buyer-a", "2026-06-30") == 82       # test_score_basic_history
    overlay = Overlay(chain.state)

    def certificate(cert_id: str, *, settled: Sequence[tuple[int, date]], open_amount: int,
                    today: date = date(2026, 6, 30)) -> None:
        index_certificate(overlay, today, cert_id, obligor="buyer-a", creditor="supplier-c",
                          due_date=date(2026, 5, 31), currency="EUR",
                          fx_rate_to_usd={"numerator": 1, "denominator": 1},
                          settled=settled, open_amount=open_amount)

    # Unpaid, due 2026-05-31: 30 days late as of 2026-06-30, v = 50, weight 100,000:
    # (172,000,000/7 + 5,000,000) / 400,000 = 73.93 -> 74.
    certificate("CC-1", settled=(), open_amount=100_000)
    assert rt.rating(overlay, "buyer-a", date(2026, 6, 30), 9).score == 74  # type: ignore[union-attr]
    off = policy(count_overdue_certificates=False)
    assert rt.rating(overlay, "buyer-a", date(2026, 6, 30), 9, policy=off).score == 82  # type: ignore[union-attr]
    # Paid on its due date: not overdue, contributes nothing.
    certificate("CC-1", settled=((100_000, date(2026, 5, 31)),), open_amount=0)
    result = rt.rating(overlay, "buyer-a", date(2026, 6, 30), 9)
    assert isinstance(result, rt.Rating) and result.score == 82
    assert result.factors.invoices == 3
    assert overlay.get(rt.experience_key("certificate", "CC-1")) is None
    # Paid 60 days late: v = 40; (172,000,000/7 + 4,000,000) / 400,000 = 71.43 -> 71.
    certificate("CC-1", settled=((100_000, date(2026, 7, 30)),), open_amount=0,
                today=date(2026, 7, 30))
    result = rt.rating(overlay, "buyer-a", date(2026, 7, 30), 9)
    assert isinstance(result, rt.Rating) and result.score == 71
    assert result.factors.worst_delay_days == 60


def test_policy_is_read_from_the_consortium_and_checked() -> None:
    chain = Chain({"related_parties": RELATED,
                   "ratings": {"supplier_cap_percent": 100, "exclude_disputed": False}})
    read = rt.policy_from_state(chain.state)
    assert read.to_wire() == {"exclude_disputed": False, "exclude_related_party": True,
                              "supplier_cap_percent": 100, "count_overdue_certificates": True}
    assert read.related_to("buyer-b") == {"supplier-b"}
    assert read.classes() == {"i", "d", "c"}
    assert rt.policy_from_state(Chain({}).state) == rt.RatingPolicy()
    for bad, field_name in [({"supplier_cap_percent": 0}, "supplier_cap_percent"),
                            ({"supplier_cap_percent": True}, "supplier_cap_percent"),
                            ({"exclude_disputed": 1}, "exclude_disputed"),
                            ({"exclude_dispute": True}, "exclude_dispute")]:
        with pytest.raises(MalformedRecord) as err:
            rt.RatingPolicy.from_consortium_policy({"ratings": bad})
        assert err.value.field == f"policy.ratings.{field_name}"


def test_trade_types_that_change_an_invoice_are_indexed() -> None:
    indexed = {t for t, fns in INDEXERS.items() if any("ratings" in f.__module__ for f in fns)}
    assert indexed == {"trade.invoice", "trade.payment", "trade.credit_note",
                       "trade.dispute_open", "trade.dispute_resolve"}


def test_sums_beyond_two_to_the_53_are_exact() -> None:
    chain = Chain()
    big = 2**51                                              # 22.5 trillion USD each
    for seller in ("supplier-a", "supplier-b", "supplier-c"):
        chain.invoice(f"H-{seller}", "buyer-a", seller, big, "2026-03-01",
                      on=date(2026, 2, 1))
    for seller, paid in (("supplier-a", "2026-03-01"), ("supplier-b", "2026-03-01"),
                         ("supplier-c", "2026-03-16")):
        chain.pay(f"H-{seller}", big, paid)
    # 84 x v x 2**51 passes 2**53 - 1; aggregate vectors are decimal strings, exact.
    record = chain.get("ratings/month/buyer-a/2026-03")
    vector = chain.get("ratings/supplier/buyer-a/2026-03/supplier-a")["i"]["vec"].split()
    assert [vector[rt.W], vector[rt.VN]] == [str(big), str(big * 6720)]
    assert record["i"]["agg"].split()[:2] == [str(3 * big), str(big * (6720 * 2 + 5880))]
    # (80 + 80 + 70) / 3 = 76.67 -> 77.
    result = chain.rate("buyer-a", "2026-04-01")
    assert isinstance(result, rt.Rating) and result.score == 77
    assert result.to_wire()["factors"]["amount_usd_minor"] == 3 * big  # still under 2**53


# -- a random history against the reference ------------------------------------------


@dataclass
class Plan:
    """What the simulated buyer will do with one invoice."""

    invoice_id: str
    buyer: str
    seller: str
    cur: str
    issue: date
    due: date
    open: int
    payments: list[tuple[date, int | None]]  # (value date, amount or None for the rest)
    disputed: str | None = None
    extra: list[str] = field(default_factory=list)


PAIRS = [(b, s) for b in ("buyer-a", "buyer-b", "buyer-c", "trader-x")
         for s in ("supplier-a", "supplier-b", "supplier-c", "supplier-d", "supplier-e",
                   "trader-x") if b != s]
# buyer-c buys mostly from supplier-a, so the cap binds for it.
PAIR_WEIGHTS = [8 if (b, s) == ("buyer-c", "supplier-a") else 1 for b, s in PAIRS]
POLICIES = [
    rt.RatingPolicy(related_parties=tuple(frozenset(g) for g in RELATED)),
    NO_SWITCHES,
    rt.RatingPolicy(exclude_disputed=False, supplier_cap_percent=30,
                    related_parties=tuple(frozenset(g) for g in RELATED)),
    rt.RatingPolicy(exclude_related_party=False, supplier_cap_percent=70,
                    related_parties=tuple(frozenset(g) for g in RELATED)),
]


def simulate(chain: Chain, rng: random.Random, *, blocks: int,
             check: Any) -> int:
    """Random invoices, partial payments, credit notes and disputes over ~2.5 years."""
    currencies = {pair: rng.choice(["USD", "USD", "EUR", "JPY"]) for pair in PAIRS}
    orders = [order_tx(f"PO-{b}-{s}", b, s, currencies[(b, s)]) for b, s in PAIRS]
    chain.block(chain.today, orders)
    plans: dict[str, Plan] = {}
    day = date(2024, 1, 1)
    count = 0
    for step in range(blocks):
        day += timedelta(days=rng.choice([1, 2, 3, 4]))
        txs: list[Tx] = []
        touched: set[str] = set()
        for _ in range(rng.randint(4, 14)):
            count += 1
            buyer, seller = rng.choices(PAIRS, PAIR_WEIGHTS)[0]
            cur = currencies[(buyer, seller)]
            due = day + timedelta(days=rng.choice([0, 10, 30, 30, 45, 60, 90]))
            amount = rng.choice([rng.randint(1, 99), rng.randint(100, 10**6),
                                 rng.randint(10**6, 10**9)])
            fx = {"USD": (1, 1), "EUR": (rng.randint(95, 125), 100), "JPY": (1, 150)}[cur]
            no_rate = cur == "EUR" and rng.random() < 0.1
            plan = Plan(f"INV-{count:05d}", buyer, seller, cur, day, due, amount, [])
            behaviour = rng.random()
            if behaviour < 0.12:
                pass  # never paid
            else:
                delay = rng.choice([rng.randint(-45, 0), rng.randint(0, 30),
                                    rng.randint(30, 200), 0])
                first = max(day, due + timedelta(days=delay))
                if behaviour < 0.35:
                    second = first + timedelta(days=rng.randint(0, 120))
                    plan.payments = [(first, max(1, amount // rng.randint(2, 5))),
                                     (second, None)]
                else:
                    plan.payments = [(first, None)]
            plans[plan.invoice_id] = plan
            txs.append(invoice_tx(plan.invoice_id, f"PO-{buyer}-{seller}", seller, amount,
                                  due.isoformat(), cur=cur, fx=None if no_rate else fx,
                                  issue=day))
            touched.add(plan.invoice_id)
        for plan in list(plans.values()):
            if plan.invoice_id in touched or plan.open == 0:
                continue
            r = rng.random()
            if plan.payments and plan.payments[0][0] <= day:
                paid_on, amount_or_rest = plan.payments.pop(0)
                amount = plan.open if amount_or_rest is None else min(plan.open,
                                                                       amount_or_rest)
                plan.open -= amount
                txs.append(("trade.payment", {
                    "payment_id": f"PAY-{plan.invoice_id}-{len(plan.payments)}",
                    "invoice_id": plan.invoice_id, "amount": amount, "currency": plan.cur,
                    "value_date": paid_on.isoformat()},
                    (plan.buyer,) if r < 0.8 else ("bank-a", plan.buyer)))
            elif r < 0.004:
                amount = rng.randint(1, plan.open)
                plan.open -= amount
                txs.append(("trade.credit_note", {
                    "credit_note_id": f"CN-{plan.invoice_id}-{len(plan.extra)}",
                    "invoice_id": plan.invoice_id, "amount": amount, "reason": "returned"},
                    (plan.seller,)))
                plan.extra.append("credit")
            elif plan.disputed is None and r < 0.01:
                plan.disputed = f"DSP-{plan.invoice_id}-{len(plan.extra)}"
                plan.extra.append("dispute")
                txs.append(("trade.dispute_open", {
                    "dispute_id": plan.disputed, "invoice_id": plan.invoice_id,
                    "reason": "quality"}, (plan.buyer,)))
            elif plan.disputed is not None and r < 0.05:
                adjustment = rng.choice([0, rng.randint(1, plan.open)])
                plan.open -= adjustment
                txs.append(("trade.dispute_resolve", {
                    "dispute_id": plan.disputed, "outcome": "settled",
                    "adjustment_amount": adjustment}, ("platform",)))
                plan.disputed = None
            else:
                continue
            touched.add(plan.invoice_id)
        # Disputes on fully paid invoices, now and then.
        settled = [p for p in plans.values() if p.open == 0 and p.disputed is None
                   and p.invoice_id not in touched]
        if settled and rng.random() < 0.2:
            plan = rng.choice(settled)
            plan.disputed = f"DSP-{plan.invoice_id}-{len(plan.extra)}"
            plan.extra.append("dispute")
            txs.append(("trade.dispute_open", {"dispute_id": plan.disputed,
                                               "invoice_id": plan.invoice_id,
                                               "reason": "late claim"}, (plan.seller,)))
        for plan in plans.values():
            if plan.open == 0 and plan.disputed and plan.invoice_id not in touched \
                    and rng.random() < 0.05:
                txs.append(("trade.dispute_resolve", {"dispute_id": plan.disputed,
                                                      "outcome": "rejected"},
                            ("platform",)))
                plan.disputed = None
                touched.add(plan.invoice_id)
        plans = {k: p for k, p in plans.items() if p.open > 0 or p.disputed or
                 rng.random() < 0.9}
        chain.block(day, txs)
        if step % 80 == 79 or step == 4:
            check(day)
    return count


def test_random_history_matches_the_reference_implementation() -> None:
    chain = Chain()
    rng = random.Random(20260302)
    checked = rated = 0

    def check(day: date) -> None:
        nonlocal checked, rated
        records = [loads(v) for k, v in chain.state.items.items()
                   if k.startswith("trade/invoice/")]
        for buyer in ("buyer-a", "buyer-b", "buyer-c", "trader-x"):
            invoices = [r for r in records if r["obligor"] == buyer]
            for later in (0, 1, 29, 140, 400, 690):
                as_of = day + timedelta(days=later)
                for pol in POLICIES:
                    got = rt.rating(chain.state, buyer, as_of, chain.height, policy=pol)
                    assert summary(got) == reference(invoices, buyer, as_of, pol), (
                        buyer, as_of, pol)
                    checked += 1
                    rated += isinstance(got, rt.Rating)

    invoices = simulate(chain, rng, blocks=330, check=check)
    check(chain.today)
    assert invoices > 2500 and checked >= 500 and 300 < rated < checked - 20
    # Enough of every case was exercised.
    records = [loads(v) for k, v in chain.state.items.items() if k.startswith("trade/invoice/")]
    assert sum(1 for r in records if len(r["payments"]) > 1) > 300
    assert sum(1 for r in records if r["disputed"]) > 10
    assert sum(1 for r in records if r["dispute_ids"] and not r["disputed"]) > 10
    assert sum(1 for r in records if r["related_party"]) > 100
    assert sum(1 for r in records if r["credited"]) > 5
    final = [rt.rating(chain.state, b, chain.today, chain.height)
             for b in ("buyer-a", "buyer-b", "buyer-c", "trader-x")]
    assert all(isinstance(r, rt.Rating) for r in final)
    assert any(r.factors.capped_suppliers for r in final if isinstance(r, rt.Rating))
    # Bounded state: at most the 24 months of the window plus months due ahead.
    for buyer in ("buyer-a", "buyer-b", "buyer-c", "trader-x"):
        assert len(month_keys(chain, buyer)) <= 24 + 4
    assert_summaries_match_the_vectors(chain)
    # A rebuild from the blocks gives byte-identical ratings state.
    rebuilt = MemoryState(chain.genesis_writes)
    for txs, ctx in chain.blocks:
        execution = execute_block(rebuilt, txs, ctx)
        assert not execution.refused
        rebuilt.apply(execution.state.writes)
    assert {k: v for k, v in rebuilt.items.items() if k.startswith("ratings/")} == \
        {k: v for k, v in chain.state.items.items() if k.startswith("ratings/")}


@dataclass(frozen=True)
class Certificate:
    """A credit certificate as its family reports it to ``index_certificate``."""

    cert_id: str
    obligor: str
    creditor: str
    due: date
    currency: str
    fx: tuple[int, int]
    settled: tuple[tuple[int, date], ...]
    open: int

    def report(self, state: Overlay, today: date) -> None:
        index_certificate(state, today, self.cert_id, obligor=self.obligor,
                          creditor=self.creditor, due_date=self.due, currency=self.currency,
                          fx_rate_to_usd={"numerator": self.fx[0], "denominator": self.fx[1]},
                          settled=self.settled, open_amount=self.open)


def random_certificates(rng: random.Random, today: date, count: int) -> list[Certificate]:
    """Certificates due over the last 30 months and the next 2: open, paid on time,
    paid late in parts, in USD, EUR and JPY."""
    out = []
    for i in range(count):
        obligor = rng.choice(["buyer-a", "buyer-b", "buyer-c", "trader-x"])
        creditor = rng.choice([s for s in ("supplier-a", "supplier-b", "supplier-c",
                                           "supplier-d", "supplier-e") if s != obligor])
        cur = rng.choice(["USD", "EUR", "JPY"])
        fx = {"USD": (1, 1), "EUR": (rng.randint(95, 125), 100), "JPY": (1, 150)}[cur]
        due = today - timedelta(days=rng.randint(-60, 900))
        amount = rng.choice([rng.randint(1, 99), rng.randint(100, 10**8)])
        settled: list[tuple[int, date]] = []
        left = amount
        for _part in range(rng.choice([0, 0, 1, 1, 2])):
            paid = min(today, due + timedelta(days=rng.randint(-40, 200)))
            part = left if rng.random() < 0.5 else max(1, left // 2)
            settled.append((part, paid))
            left -= part
            if not left:
                break
        out.append(Certificate(f"CC-{i:04d}", obligor, creditor, due, cur, fx,
                               tuple(sorted(settled, key=lambda p: p[1])), left))
    return out


def test_random_certificates_match_the_reference_implementation() -> None:
    chain = Chain()
    rng = random.Random(20261201)
    simulate(chain, rng, blocks=120, check=lambda _day: None)
    overlay = Overlay(chain.state)
    certs = random_certificates(rng, chain.today, 400)
    # Each certificate is reported as its family would: first unpaid, then in its
    # final state (the hook swaps the earlier contribution for the new one).
    for cert in certs:
        Certificate(cert.cert_id, cert.obligor, cert.creditor, cert.due, cert.currency,
                    cert.fx, (), cert.open + sum(a for a, _d in cert.settled)
                    ).report(overlay, chain.today)
    for cert in certs:
        cert.report(overlay, chain.today)
    assert sum(1 for c in certs if c.settled and c.settled[-1][1] > c.due) > 50
    records = [loads(v) for k, v in chain.state.items.items() if k.startswith("trade/invoice/")]
    policies = [*POLICIES, rt.RatingPolicy(count_overdue_certificates=False,
                                           supplier_cap_percent=100)]
    compared = with_certificates = 0
    for buyer in ("buyer-a", "buyer-b", "buyer-c", "trader-x"):
        invoices = [r for r in records if r["obligor"] == buyer]
        for later in (0, 1, 29, 140, 400):
            as_of = chain.today + timedelta(days=later)
            for pol in policies:
                got = rt.rating(overlay, buyer, as_of, chain.height, policy=pol)
                want = reference(invoices, buyer, as_of, pol, certs)
                assert summary(got) == want, (buyer, as_of, pol)
                compared += 1
                with_certificates += want != reference(invoices, buyer, as_of, pol)
    assert compared == 4 * 5 * len(policies) and with_certificates > 40


SWITCHED = [
    ("exclude_disputed", False),
    ("exclude_related_party", False),
    ("supplier_cap_percent", 100),
    ("count_overdue_certificates", False),
]


@pytest.mark.parametrize(("switch", "value"), SWITCHED, ids=[s for s, _v in SWITCHED])
def test_each_extension_is_switched_by_the_consortium_policy(switch: str, value: Any) -> None:
    """The genesis policy alone (no ``policy=`` argument) decides every extension."""

    def history(chain: Chain) -> Overlay:
        chain.invoice("X1", "buyer-b", "supplier-b", 100_000, "2026-03-01", on=date(2026, 2, 1))
        chain.invoice("X2", "buyer-b", "supplier-a", 100_000, "2026-03-01")
        chain.invoice("X3", "buyer-b", "supplier-c", 100_000, "2026-03-01")
        chain.invoice("X4", "buyer-b", "supplier-a", 300_000, "2026-03-01")
        chain.invoice("X5", "buyer-b", "supplier-d", 100_000, "2026-03-01")
        chain.pay("X3", 100_000, "2026-02-09")              # d = -20  v = 90
        chain.pay("X2", 100_000, "2026-03-01")              # d = 0    v = 80
        chain.pay("X4", 300_000, "2026-03-16")              # d = 15   v = 70; a is capped
        chain.block(date(2026, 3, 20), [("trade.dispute_open", {
            "dispute_id": "DSP-X5", "invoice_id": "X5", "reason": "short shipment"},
            ("buyer-b",))])                                 # X5 unpaid and disputed
        chain.pay("X1", 100_000, "2026-06-29")              # d = 120  v = 20 (related)
        overlay = Overlay(chain.state)
        Certificate("CC-X", "buyer-b", "supplier-e", date(2026, 5, 31), "USD", (1, 1), (),
                    100_000).report(overlay, date(2026, 6, 30))   # 30 days overdue, v = 50
        return overlay

    default = history(Chain())
    switched_chain = Chain({"related_parties": RELATED, "ratings": {switch: value}})
    switched = history(switched_chain)
    as_of = date(2026, 6, 30)
    records = [loads(v) for k, v in switched_chain.state.items.items()
               if k.startswith("trade/invoice/")]
    cert = Certificate("CC-X", "buyer-b", "supplier-e", date(2026, 5, 31), "USD", (1, 1), (),
                       100_000)
    expected_policy = replace(rt.RatingPolicy(related_parties=tuple(
        frozenset(g) for g in RELATED)), **{switch: value})
    got = rt.rating(switched, "buyer-b", as_of, switched_chain.height)
    assert got.policy == expected_policy
    assert summary(got) == reference(records, "buyer-b", as_of, expected_policy, [cert])
    base = rt.rating(default, "buyer-b", as_of, switched_chain.height)
    assert summary(base) == reference(records, "buyer-b", as_of, rt.RatingPolicy(
        related_parties=tuple(frozenset(g) for g in RELATED)), [cert])
    assert isinstance(got, rt.Rating) and isinstance(base, rt.Rating)
    assert got.score != base.score  # the switch makes a difference a supplier sees


class CountingReader:
    """Counts the state reads of a query."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.keys: list[str] = []

    def get_raw(self, key: str) -> bytes | None:
        self.keys.append(key)
        raw: bytes | None = self.state.get_raw(key)
        return raw


def test_a_query_reads_a_bounded_number_of_records() -> None:
    chain = Chain()
    count = simulate(chain, random.Random(7), blocks=200, check=lambda _day: None)
    assert count > 1500
    policy = rt.policy_from_state(chain.state)
    for buyer in ("buyer-a", "buyer-b", "buyer-c", "trader-x"):
        related = policy.related_to(buyer)
        suppliers = {k.split("/")[4] for k in chain.state.items
                     if k.startswith(f"ratings/supplier/{buyer}/")}
        for later in (0, 3, 16, 45, 200):
            reader = CountingReader(chain.state)
            result = rt.rating(reader, buyer, chain.today + timedelta(days=later),
                               chain.height)
            capped = result.factors.capped_suppliers if isinstance(result, rt.Rating) else 0
            # Header, consortium, <= 24 months plus months due ahead, <= 5 day maps,
            # each read once; supplier records only of related parties, of capped
            # suppliers, and of suppliers open in the <= 5 day-map months.
            months = len(chain.get(rt.buyer_key(buyer))["months"])
            assert months <= 24 + 4
            assert len(reader.keys) == len(set(reader.keys))
            own = [k for k in reader.keys if k.startswith("ratings/supplier/")]
            assert len(reader.keys) - len(own) <= 2 + months + 5
            assert len(own) <= months * (len(related) + capped) + 5 * len(suppliers)


def summary(result: rt.Rating | rt.Insufficient) -> dict[str, Any]:
    trend = [(t.months, t.score, t.invoices) for t in result.trend]
    if isinstance(result, rt.Insufficient):
        return {"score": None, "invoices": result.invoices, "suppliers": result.suppliers,
                "trend": trend}
    f = result.factors
    return {"score": result.score, "band": result.band, "invoices": f.invoices,
            "suppliers": f.suppliers, "dbt": f.days_beyond_terms,
            "within": f.within_terms_percent, "worst": f.worst_delay_days,
            "amount": f.amount_usd_minor, "capped": f.capped_suppliers, "trend": trend}


# -- the reference implementation --------------------------------------------------
# Straight from the definition in specs/ratings.md, over the raw invoice records,
# with no aggregates, no 84ths and no piece table.


def reference_v(days: int) -> Fraction:
    anchors = [(-30, 100), (-20, 90), (0, 80), (15, 70), (22, 60), (30, 50), (60, 40),
               (90, 30), (120, 20), (180, 0)]
    if days <= anchors[0][0]:
        return Fraction(anchors[0][1])
    for (d0, v0), (d1, v1) in itertools.pairwise(anchors):
        if d0 <= days <= d1:
            return v0 + Fraction(v1 - v0, d1 - d0) * (days - d0)
    return Fraction(anchors[-1][1])


def reference_cap(weights: Mapping[str, int], cap: int) -> dict[str, Fraction]:
    """Cap by repeated clipping: clip every supplier above the level, recompute, repeat."""
    positive = {s: w for s, w in weights.items() if w > 0}
    if cap >= 100:
        return {s: Fraction(1) for s in positive}
    clipped: set[str] = set()
    while True:
        free = sum(w for s, w in positive.items() if s not in clipped)
        if len(clipped) * cap >= 100 or not free:
            return {s: Fraction(0) for s in positive}
        level = Fraction(cap * free, 100 - len(clipped) * cap)
        over = {s for s, w in positive.items() if s not in clipped and w > level}
        if not over:
            return {s: (level / w if s in clipped else Fraction(1))
                    for s, w in positive.items()}
        clipped |= over


def reference(invoices: list[dict[str, Any]], buyer: str, as_of: date,
              pol: rt.RatingPolicy, certificates: Sequence[Certificate] = ()
              ) -> dict[str, Any]:
    months_now = as_of.year * 12 + as_of.month - 1

    def window(span: int) -> dict[str, Any]:
        # supplier -> list of (weight, days late) terms, and invoice counts.
        terms: dict[str, list[tuple[int, int, bool]]] = {}
        counts: dict[str, int] = {}
        for inv in invoices:
            if inv["obligor"] != buyer:
                continue
            seller = inv["seller"]
            if pol.exclude_related_party and any(buyer in g and seller in g
                                                 for g in pol.related_parties):
                continue
            if pol.exclude_disputed and inv["disputed"]:
                continue
            due = date.fromisoformat(inv["due_date"])
            if months_now - (due.year * 12 + due.month - 1) >= span:
                continue
            rate = inv["fx_rate_to_usd"]
            if rate is None and inv["currency"] != "USD":
                continue
            num, den = (rate["numerator"], rate["denominator"]) if rate else (1, 1)

            def usd(amount: int, cur: str = inv["currency"], num: int = num,
                    den: int = den) -> int:
                return currency.to_usd_minor(amount, cur, num, den)

            mine: list[tuple[int, int, bool]] = []
            for part in inv["payments"]:
                weight = usd(part["amount"])
                if weight > 0:
                    mine.append((weight, (date.fromisoformat(part["value_date"]) - due).days,
                                 True))
            if inv["open"] > 0 and as_of > due and usd(inv["open"]) > 0:
                mine.append((usd(inv["open"]), (as_of - due).days, False))
            if mine:
                terms.setdefault(seller, []).extend(mine)
                counts[seller] = counts.get(seller, 0) + 1
        # An overdue certificate counts as an invoice of its obligor, with only its
        # overdue parts as terms; the creditor stands for the supplier.
        for cert in certificates if pol.count_overdue_certificates else ():
            creditor = cert.creditor
            if cert.obligor != buyer or (pol.exclude_related_party and any(
                    buyer in g and creditor in g for g in pol.related_parties)):
                continue
            if months_now - (cert.due.year * 12 + cert.due.month - 1) >= span:
                continue
            usd = [currency.to_usd_minor(a, cert.currency, *cert.fx)
                   for a, _d in cert.settled]
            mine = [(w, (paid - cert.due).days, True)
                    for w, (_a, paid) in zip(usd, cert.settled, strict=True)
                    if w > 0 and paid > cert.due]
            open_usd = currency.to_usd_minor(cert.open, cert.currency, *cert.fx)
            if cert.open > 0 and as_of > cert.due and open_usd > 0:
                mine.append((open_usd, (as_of - cert.due).days, False))
            if mine:
                terms.setdefault(creditor, []).extend(mine)
                counts[creditor] = counts.get(creditor, 0) + 1
        n = sum(counts.values())
        out: dict[str, Any] = {"invoices": n, "suppliers": len(counts), "score": None}
        if n < 3:
            return out
        weights = {s: sum(w for w, _d, _p in ts) for s, ts in terms.items()}
        factor = reference_cap(weights, pol.supplier_cap_percent)
        total = sum(factor[s] * weights[s] for s in weights)
        if total == 0:
            return out

        def avg(f: Any) -> Fraction:
            return sum((factor[s] * sum(w * f(d, p) for w, d, p in ts)
                        for s, ts in terms.items()), Fraction(0)) / total

        score = math.floor(avg(lambda d, p: reference_v(d)) + Fraction(1, 2))
        out.update({
            "score": score,
            "band": "low" if score >= 80 else "medium" if score >= 50 else "high",
            "dbt": math.floor(avg(lambda d, p: max(d, 0)) + Fraction(1, 2)),
            "within": math.floor(100 * avg(lambda d, p: 1 if p and d <= 0 else 0)
                                 + Fraction(1, 2)),
            "worst": max((max(d, 0) for ts in terms.values() for _w, d, _p in ts),
                         default=0),
            "amount": sum(weights.values()),
            "capped": sum(1 for f in factor.values() if f < 1),
        })
        return out

    main = window(24)
    trend = [(span, out["score"], out["invoices"])
             for span, out in ((span, window(span)) for span in (3, 6, 12))]
    if main["score"] is None:
        return {"score": None, "invoices": main["invoices"], "suppliers": main["suppliers"],
                "trend": trend}
    return {**main, "trend": trend}
