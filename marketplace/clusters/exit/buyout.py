"""The buy-out of a leaving co-owner's share of a machine, to the cent.

The price is the leaver's share of the machine's agreed value at the agreement's
`buyout_value_bp`, rounded once (half to even, like every fee).  The remaining
co-owners pay it in proportion to their own shares, and take over the leaver's
share in the same proportion, both split by the largest-remainder rule with a
stable tie-break (lower member id first): the parts always sum to the price, the
new shares always to 10 000 basis points, and no share can go negative.  Pure
functions: the exit service writes what they compute.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from marketplace.money import BASIS_POINTS_WHOLE, split_by_weights

#: The largest agreed value a machine can have (minor units): ten million in major
#: units, far more than any machine a small firm co-owns, far inside 64 bits.
MAX_AGREED_VALUE_MINOR = 10_000_000_00


@dataclass(frozen=True)
class Buyout:
    """What one machine's buy-out moves: the price, who pays what, the new shares."""

    leaver_share_bp: int
    price_minor: int
    #: remaining co-owner -> what it pays the leaver (sums to `price_minor`)
    parts: dict[int, int]
    #: remaining co-owner -> its share afterwards (sums to 10 000)
    new_shares: dict[int, int]


def buyout_price(agreed_value_minor: int | None, leaver_share_bp: int,
                 buyout_value_bp: int) -> int:
    """The leaver's share of the agreed value at the agreement's fraction, rounded half
    to even once; 0 when the machine has no agreed value."""
    if not agreed_value_minor:
        return 0
    whole = BASIS_POINTS_WHOLE * BASIS_POINTS_WHOLE
    quotient, remainder = divmod(agreed_value_minor * leaver_share_bp * buyout_value_bp, whole)
    twice = 2 * remainder
    if twice > whole or (twice == whole and quotient % 2 == 1):
        quotient += 1
    return quotient


def buy_out(shares: Mapping[int, int], leaver: int, agreed_value_minor: int | None,
            buyout_value_bp: int) -> Buyout:
    """The buy-out of `leaver`'s share among the other owners in `shares` (basis points
    summing to 10 000, at least one other owner with a positive share)."""
    leaver_share = shares[leaver]
    remaining = sorted(m for m in shares if m != leaver)
    weights = [shares[m] for m in remaining]
    price = buyout_price(agreed_value_minor, leaver_share, buyout_value_bp)
    parts = split_by_weights(price, weights) if price else [0] * len(remaining)
    taken = split_by_weights(leaver_share, weights)
    return Buyout(
        leaver_share_bp=leaver_share, price_minor=price,
        parts=dict(zip(remaining, parts, strict=True)),
        new_shares={m: shares[m] + extra for m, extra in zip(remaining, taken, strict=True)})
