"""The FX universe: currencies, pairs, related pairs and triangles, derived from the currency list."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

#: The eight currencies in market priority order: the higher-priority currency is the base.
CURRENCIES: tuple[str, ...] = ("EUR", "GBP", "AUD", "NZD", "USD", "CAD", "CHF", "JPY")


@dataclass(frozen=True)
class Pair:
    """A currency pair in market orientation (base = the higher-priority currency)."""

    base: str
    quote: str

    @property
    def name(self) -> str:
        return self.base + self.quote

    @property
    def pip(self) -> float:
        """Size of one pip: 0.01 for JPY-quoted pairs, 0.0001 otherwise."""
        return 0.01 if self.quote == "JPY" else 0.0001

    def side(self, currency: str) -> int:
        """+1 when `currency` is the base, -1 when it is the quote."""
        if currency == self.base:
            return 1
        if currency == self.quote:
            return -1
        raise ValueError(f"{currency} is not in {self.name}")

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Related:
    """Another pair sharing exactly one currency with a pair."""

    pair: str
    shared: str
    same_side: bool  # the shared currency is the base of both pairs or the quote of both


@dataclass(frozen=True)
class Triangle:
    """Three currencies c1 < c2 < c3 (priority order) and the pairs c1c2, c2c3, c1c3."""

    c1: str
    c2: str
    c3: str

    @property
    def name(self) -> str:
        return self.c1 + self.c2 + self.c3

    @property
    def pairs(self) -> tuple[str, str, str]:
        """(c1c2, c2c3, c1c3): ln c1c2 + ln c2c3 - ln c1c3 = 0 when prices are consistent."""
        return (self.c1 + self.c2, self.c2 + self.c3, self.c1 + self.c3)

    def omega(self, pair: str) -> int:
        """+1 for c1c2 and c2c3, -1 for c1c3: omega * residual is the pair's price minus the implied one."""
        p12, p23, p13 = self.pairs
        if pair in (p12, p23):
            return 1
        if pair == p13:
            return -1
        raise ValueError(f"{pair} is not in triangle {self.name}")


def _priority(currency: str) -> int:
    return CURRENCIES.index(currency)


@lru_cache(maxsize=None)
def _pairs() -> tuple[Pair, ...]:
    made = [Pair(a, b) for a, b in combinations(CURRENCIES, 2)]
    return tuple(sorted(made, key=lambda p: p.name))


#: All 28 pairs, sorted by name.
PAIRS: tuple[Pair, ...] = _pairs()
PAIR_NAMES: tuple[str, ...] = tuple(p.name for p in PAIRS)
_BY_NAME = {p.name: p for p in PAIRS}

#: All 56 triangles.
TRIANGLES: tuple[Triangle, ...] = tuple(Triangle(*c) for c in combinations(CURRENCIES, 3))


def pair(name: str) -> Pair:
    """The pair called `name` (e.g. "EURUSD"); a clear error lists the known names otherwise."""
    key = name.strip().upper().replace("/", "").replace("_", "")
    try:
        return _BY_NAME[key]
    except KeyError:
        raise UnknownPairError(name) from None


class UnknownPairError(ValueError):
    def __init__(self, name: str):
        super().__init__(
            f"unknown pair {name!r}: bqx knows the 28 pairs {', '.join(PAIR_NAMES)} "
            "(market orientation, e.g. EURUSD not USDEUR)"
        )
        self.name = name


def is_pair(name: str) -> bool:
    try:
        pair(name)
    except UnknownPairError:
        return False
    return True


def pairs_of(currency: str) -> tuple[str, ...]:
    """The 7 pairs that contain `currency`."""
    return tuple(p.name for p in PAIRS if currency in (p.base, p.quote))


@lru_cache(maxsize=None)
def related(name: str) -> tuple[Related, ...]:
    """The 12 pairs sharing one currency with `name`, with the shared currency and its side."""
    p = pair(name)
    out = []
    for q in PAIRS:
        if q.name == p.name:
            continue
        shared = {p.base, p.quote} & {q.base, q.quote}
        if len(shared) == 1:
            c = shared.pop()
            out.append(Related(q.name, c, p.side(c) == q.side(c)))
    return tuple(out)


def base_peers(name: str) -> tuple[str, ...]:
    """The 6 other pairs containing the base of `name`."""
    p = pair(name)
    return tuple(r.pair for r in related(name) if r.shared == p.base)


def quote_peers(name: str) -> tuple[str, ...]:
    """The 6 other pairs containing the quote of `name`."""
    p = pair(name)
    return tuple(r.pair for r in related(name) if r.shared == p.quote)


@lru_cache(maxsize=None)
def triangles_of(name: str) -> tuple[Triangle, ...]:
    """The 6 triangles that contain pair `name`."""
    p = pair(name)
    return tuple(t for t in TRIANGLES if p.name in t.pairs)


def triangles_of_currency(currency: str) -> tuple[Triangle, ...]:
    """The 21 triangles that contain `currency`."""
    return tuple(t for t in TRIANGLES if currency in (t.c1, t.c2, t.c3))
