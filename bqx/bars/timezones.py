"""Time zones of bar files: named vendor conventions, per-pair choices, and localizing naive times.

A zone is an IANA name (Europe/London, Etc/GMT-3), UTC, a fixed offset (+03:00, UTC-5), or a named
convention:

- `ny-close`: New York time + 7 h, so 17:00 New York (the FX day's close) is midnight: UTC+2 while
  New York keeps standard time, UTC+3 on US daylight-saving dates. MetaTrader brokers use it.
- `est-fixed`: Eastern Standard Time without daylight saving, a fixed UTC-5 (HistData's clock).

`ZoneMap` holds a default zone and per-pair zones, from `--tz ZONE`, `--tz PAIR=ZONE` (repeatable)
or the `[ingest.tz]` table of bqx.toml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from bqx.bar_schema import TS_DTYPE
from bqx.errors import UsageError

NEW_YORK = "America/New_York"
NY_CLOSE = "ny-close"
EST_FIXED = "est-fixed"
#: Named conventions -> what they mean, for messages and docs.
NAMED = {
    NY_CLOSE: "New York time + 7 h (17:00 New York = 00:00; UTC+2 in US winter, UTC+3 on US daylight-saving dates)",
    EST_FIXED: "EST without daylight saving (fixed UTC-5, as HistData writes)",
}
_NY_CLOSE_SHIFT = 7 * 60  # minutes ahead of New York
_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
_ZONE_HINT = ("Give an IANA zone (e.g. Europe/London, America/New_York, Etc/GMT-3), UTC, an offset like +02:00, "
              f"or a named convention: {', '.join(NAMED)}.")


def check_zone(tz: str | None) -> str | None:
    """A declared zone, checked and stripped (named conventions in lower case); None passes."""
    if tz is None:
        return None
    tz = str(tz).strip()
    if tz.lower() in NAMED:
        return tz.lower()
    if tz.upper() in ("UTC", "GMT", "Z") or _OFFSET.match(tz):
        return tz
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown time zone {tz!r}", hint=_ZONE_HINT) from None
    return tz


def fixed_offset_minutes(tz: str) -> int | None:
    """Minutes east of UTC for UTC, offsets and est-fixed; None for zones with daylight saving."""
    if tz.upper() in ("UTC", "GMT", "Z"):
        return 0
    if tz == EST_FIXED:
        return -5 * 60
    m = _OFFSET.match(tz)
    if not m:
        return None
    sign = -1 if m.group(1) == "-" else 1
    return sign * (int(m.group(2)) * 60 + int(m.group(3) or 0))


def utc_offset_minutes(tz: str, at: datetime) -> int:
    """Minutes east of UTC of zone `tz` at the UTC instant `at`."""
    fixed = fixed_offset_minutes(tz)
    if fixed is not None:
        return fixed
    if tz == NY_CLOSE:
        return utc_offset_minutes(NEW_YORK, at) + _NY_CLOSE_SHIFT
    off = at.astimezone(ZoneInfo(tz)).utcoffset() or timedelta(0)
    return int(off.total_seconds() // 60)


def localize(frame: pl.DataFrame, naive: str, tz: str) -> pl.DataFrame:
    """Turn the naive local datetime column `naive` in zone `tz` into ts (UTC) and flag DST gaps/overlaps.

    Adds ts, _ambiguous and _nonexistent (booleans). `ny-close` is New York time shifted by 7 h, so its
    local times are skipped or repeated exactly where New York's are (Sunday 09:00, while FX is closed).
    """
    minutes = fixed_offset_minutes(tz)
    if minutes is not None:
        return frame.with_columns(
            (pl.col(naive) - pl.duration(minutes=minutes)).dt.replace_time_zone("UTC").cast(TS_DTYPE).alias("ts"),
            pl.lit(False).alias("_ambiguous"), pl.lit(False).alias("_nonexistent"),
        )
    local, zone = pl.col(naive), tz
    if tz == NY_CLOSE:
        local, zone = local - pl.duration(minutes=_NY_CLOSE_SHIFT), NEW_YORK
    strict = local.dt.replace_time_zone(zone, ambiguous="null", non_existent="null")
    early = local.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
    return frame.with_columns(
        strict.dt.convert_time_zone("UTC").cast(TS_DTYPE).alias("ts"),
        (early.is_null() & pl.col(naive).is_not_null()).alias("_nonexistent"),
        (early.is_not_null() & strict.is_null()).alias("_ambiguous"),
    )


def localize_by_pair(frame: pl.DataFrame, naive: str, pair: str, zones: "ZoneMap") -> pl.DataFrame:
    """`localize` for rows carrying a pair column: each pair's rows in its own zone (the default for the rest)."""
    default = zones.default or "UTC"
    specific = {p: z for p, z in zones.pairs.items() if z != default}
    if not specific:
        return localize(frame, naive, default)
    frame = frame.with_row_index("_order")
    parts = [localize(frame.filter(pl.col(pair) == p), naive, z) for p, z in specific.items()]
    parts.append(localize(frame.filter(~pl.col(pair).is_in(list(specific))), naive, default))
    return pl.concat(parts, how="diagonal").sort("_order").drop("_order")


@dataclass(frozen=True)
class ZoneMap:
    """The zone of each pair's naive times: `pairs[PAIR]` when given, else `default` (None: not declared)."""

    default: str | None = None
    pairs: Mapping[str, str] = field(default_factory=dict)

    def for_pair(self, pair: str | None) -> str | None:
        return self.pairs.get(pair, self.default) if pair is not None else self.default

    def explicit(self, pair: str | None) -> bool:
        """Whether `pair` has a zone of its own (not the default)."""
        return pair is not None and pair in self.pairs

    @property
    def declared(self) -> bool:
        return self.default is not None or bool(self.pairs)

    def over(self, base: "ZoneMap") -> "ZoneMap":
        """This map laid over `base`: its default and pairs win, `base` fills the rest (flags over bqx.toml)."""
        return ZoneMap(self.default or base.default, {**base.pairs, **self.pairs})

    def to_dict(self) -> dict[str, str]:
        return ({"default": self.default} if self.default else {}) | dict(sorted(self.pairs.items()))

    def describe(self) -> str:
        parts = ([self.default] if self.default else []) + [f"{p}={z}" for p, z in sorted(self.pairs.items())]
        return " ".join(f"--tz {p}" for p in parts) or "no --tz"

    @classmethod
    def of(cls, spec: "ZoneMap | str | Mapping[str, str] | Iterable[str] | None") -> "ZoneMap":
        """A ZoneMap from a bare zone, `PAIR=ZONE` items (a list, or one comma-separated string), or a
        mapping {PAIR: ZONE, "default": ZONE}; every zone and pair is checked."""
        if spec is None or isinstance(spec, ZoneMap):
            return spec or cls()
        if isinstance(spec, Mapping):
            items = [(None if str(k).lower() == "default" else str(k), str(v)) for k, v in spec.items()]
        else:
            texts = [spec] if isinstance(spec, str) else list(spec)
            items = [_split_item(t) for text in texts for t in str(text).split(",") if t.strip()]
        default: str | None = None
        pairs: dict[str, str] = {}
        for key, zone in items:
            zone = check_zone(zone)
            if key is None:
                if default is not None and default != zone:
                    raise UsageError(f"two default time zones: {default} and {zone}",
                                     hint="Give one bare --tz ZONE; name the others per pair, e.g. --tz EURUSD=ny-close.")
                default = zone
            else:
                pairs[_pair_name(key)] = zone  # type: ignore[assignment]
        return cls(default, pairs)


def _split_item(text: str) -> tuple[str | None, str]:
    text = text.strip()
    if "=" not in text:
        return None, text
    key, zone = (s.strip() for s in text.split("=", 1))
    if not key or not zone:
        raise UsageError(f"--tz {text!r} should be ZONE or PAIR=ZONE", hint="e.g. --tz UTC --tz EURUSD=ny-close")
    return (None if key.lower() == "default" else key), zone


def _pair_name(key: str) -> str:
    from bqx.universe import UnknownPairError, pair

    try:
        return pair(key).name
    except UnknownPairError as exc:
        raise UsageError(f"time zone given for {key!r}: {exc}", hint="Write --tz PAIR=ZONE with one of the 28 pairs.") from None


def suggest_zones(offsets: Mapping[str, int]) -> list[str]:
    """Zones whose UTC offset in hours matches `offsets` in each US season seen ("winter", "summer"), named
    conventions first."""
    w, s = offsets.get("winter"), offsets.get("summer")
    if w is None and s is None:
        return []
    out = []
    if w in (None, 2) and s in (None, 3):
        out.append(NY_CLOSE)
    if w in (None, -5) and s in (None, -4):
        out.append(NEW_YORK)
    if w is None or s is None or w == s:
        k = w if w is not None else s
        out.append("UTC" if k == 0 else EST_FIXED if k == -5 else f"Etc/GMT{-k:+d}")  # Etc/GMT-3 is UTC+3
    return out


__all__ = ["NAMED", "NY_CLOSE", "EST_FIXED", "ZoneMap", "check_zone", "fixed_offset_minutes", "utc_offset_minutes",
           "localize", "localize_by_pair", "suggest_zones"]
