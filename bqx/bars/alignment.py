"""Whether each pair's bars sit in the FX week at the right UTC times: a wrong time zone, found at ingest.

FX trades from Sunday 17:00 to Friday 17:00 New York time, whatever the season. Bars read in the
wrong zone keep the 48-hour weekend gap but put it hours away from there. The check finds each
pair's weekend gaps (36 to 60 hours between bars) and pairs each with the nearest FX weekend:

- close offset = (last bar before the gap + one bar) - Friday 17:00 New York; open offset = first bar
  after the gap - Sunday 17:00 New York (both in UTC);
- a weekend is *clean* when the gap is as long as the FX weekend (within 30 minutes): its offset is
  then the mean of the two, rounded to whole hours when within 20 minutes of one.

Missing minutes can only end a week early or start it late, which lengthens the gap: weeks of a quiet
pair that lose more than 30 minutes are set aside, the others round to 0. Activity per hour plays no
part. A pair is misaligned in a US daylight-saving season when the most frequent clean-week offset
of that season is not 0 and holds for at least two thirds of its clean weeks (a robust vote over
weeks: one outage or holiday cannot swing it). The offsets per season, with the zone the bars were
read in, give the zone they were written in, hence the --tz that fixes them (bqx.bars.timezones).

The pairs of one ingest and the pairs already in the store are compared the same way: a whole set of
files in one wrong zone is named as a set (comparing pairs with each other cannot see it, the FX week
can), and store pairs off the FX week are named too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

import polars as pl

from bqx.bars.timezones import NEW_YORK, suggest_zones, utc_offset_minutes

GAP_MIN_H, GAP_MAX_H = 36, 60  # a weekend gap, with room for quiet ends and a whole-day holiday next to it
MAX_SHIFT_MIN = 15 * 60  # offsets beyond this are not a zone's
CLEAN_TOL_MIN = 30  # a clean weekend's gap is the FX weekend's length within this
WHOLE_TOL_MIN = 20  # a clean weekend's offset is a whole number of hours within this
MIN_SUPPORT = 2 / 3  # share of a season's clean weekends that must agree on a non-zero offset
SEASONS = ("winter", "summer")  # New York on standard time / on daylight-saving time
RULE = "misaligned-time"


@dataclass
class PairAlignment:
    """One pair's weekends against the FX week, per US season: clean weeks, the voted offset, its support."""

    pair: str
    origin: str  # "ingest" (being ingested) or "store" (already stored)
    zone: str | None  # the zone its naive times were read in; None when the times carried their own
    weekends: int = 0  # gaps matched to an FX weekend
    seasons: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def offsets(self) -> dict[str, int]:
        """Voted offset in hours per season with clean weeks (0 where the season is aligned or undecided)."""
        return {s: (v["offset_h"] if v["misaligned"] else 0) for s, v in self.seasons.items() if v["clean"]}

    @property
    def misaligned(self) -> bool:
        return any(v["misaligned"] for v in self.seasons.values())

    @property
    def checked(self) -> bool:
        return any(v["clean"] for v in self.seasons.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Finding:
    """A pair or a set of pairs off the FX week by whole hours: what, and the flag that fixes it."""

    pairs: list[str]
    origin: str
    message: str
    hint: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AlignmentResult:
    pairs: dict[str, PairAlignment]
    findings: list[Finding]

    def to_dict(self) -> dict[str, Any]:
        return {"pairs": {p: a.to_dict() for p, a in self.pairs.items()}, "findings": [f.to_dict() for f in self.findings]}


# --------------------------------------------------------------------------------------------- weekends


def fx_weekends(start: datetime, end: datetime) -> pl.DataFrame:
    """(exp_close, exp_open, season) in UTC of every FX weekend near [start, end]: Friday and Sunday 17:00 New York."""
    days = pl.DataFrame({"d": pl.date_range(start.date() - timedelta(days=9), end.date() + timedelta(days=9), "1d", eager=True)})
    fri = days.filter(pl.col("d").dt.weekday() == 5)

    def at_17(d: pl.Expr) -> pl.Expr:
        return (d.cast(pl.Datetime("us")) + pl.duration(hours=17)).dt.replace_time_zone(NEW_YORK).dt.convert_time_zone("UTC")

    out = fri.select(at_17(pl.col("d")).alias("exp_close"), at_17(pl.col("d") + pl.duration(days=2)).alias("exp_open"))
    season = pl.when(pl.col("exp_open").dt.convert_time_zone(NEW_YORK).dt.dst_offset() != pl.duration(seconds=0))
    return out.with_columns(season.then(pl.lit("summer")).otherwise(pl.lit("winter")).alias("season"))


def weekend_offsets(ts: pl.DataFrame) -> pl.DataFrame:
    """Each pair's weekend gaps matched to the FX weekends: pair, close, open, exp_close, exp_open, season,
    e_close/e_open (minutes), clean, offset_h (NULL unless clean and whole). `ts` holds pair and ts (UTC)."""
    schema = {"pair": pl.String, "close": pl.Datetime("us", "UTC"), "open": pl.Datetime("us", "UTC"),
              "exp_close": pl.Datetime("us", "UTC"), "exp_open": pl.Datetime("us", "UTC"), "season": pl.String,
              "e_close": pl.Int64, "e_open": pl.Int64, "clean": pl.Boolean, "offset_h": pl.Int64}
    if ts.height < 2:
        return pl.DataFrame(schema=schema)
    f = ts.select("pair", pl.col("ts").cast(pl.Datetime("us", "UTC")))
    same = pl.col("pair") == pl.col("pair").shift(1)
    if f.select((pl.col("pair") < pl.col("pair").shift(1)).any() | (same & (pl.col("ts") < pl.col("ts").shift(1))).any()).item():
        f = f.sort("pair", "ts")  # readers and the store give bars sorted by pair and ts: usually skipped
    f = f.with_columns(pl.when(same).then(pl.col("ts").diff()).alias("_step"))
    step = f.group_by("pair").agg(pl.col("_step").filter(pl.col("_step") > pl.duration(seconds=0)).median().alias("_bar"))
    gaps = (f.filter(pl.col("_step").is_between(pl.duration(hours=GAP_MIN_H), pl.duration(hours=GAP_MAX_H)))
            .join(step, on="pair")
            .select("pair", (pl.col("ts") - pl.col("_step") + pl.col("_bar")).alias("close"), pl.col("ts").alias("open")))
    if gaps.height == 0:
        return pl.DataFrame(schema=schema)
    weeks = fx_weekends(gaps["close"].min(), gaps["open"].max()).sort("exp_close")  # type: ignore[arg-type]
    minutes = pl.duration(minutes=1)
    m = (gaps.sort("close").join_asof(weeks, left_on="close", right_on="exp_close", strategy="nearest")
         .with_columns(((pl.col("close") - pl.col("exp_close")) / minutes).round().cast(pl.Int64).alias("e_close"),
                       ((pl.col("open") - pl.col("exp_open")) / minutes).round().cast(pl.Int64).alias("e_open"))
         .filter((pl.col("e_close").abs() <= MAX_SHIFT_MIN) & (pl.col("e_open").abs() <= MAX_SHIFT_MIN)))
    mean = (pl.col("e_close") + pl.col("e_open")) / 2
    hours = (mean / 60).round().cast(pl.Int64)
    m = m.with_columns(((pl.col("e_open") - pl.col("e_close")).abs() <= CLEAN_TOL_MIN).alias("clean")).with_columns(
        pl.when(pl.col("clean") & ((mean - hours * 60).abs() <= WHOLE_TOL_MIN)).then(hours).otherwise(None).alias("offset_h"))
    return m.select(list(schema)).sort("pair", "close")


def _vote(weekends: pl.DataFrame) -> pl.DataFrame:
    """Per pair and season: weekends, clean weeks, the most frequent clean offset (ties: 0, then the smallest) and its support."""
    clean = weekends.filter(pl.col("clean"))
    counts = (clean.filter(pl.col("offset_h").is_not_null()).group_by("pair", "season", "offset_h").len("votes")
              .sort(["pair", "season", "votes", pl.col("offset_h").abs()], descending=[False, False, True, False])
              .group_by("pair", "season", maintain_order=True).first())
    n = weekends.group_by("pair", "season").agg(pl.len().alias("weekends"), pl.col("clean").sum().alias("clean"))
    zero = clean.group_by("pair", "season").agg((pl.col("offset_h") == 0).sum().alias("zero_votes"))
    out = n.join(counts, on=["pair", "season"], how="left").join(zero, on=["pair", "season"], how="left")
    out = out.with_columns(pl.col("votes").fill_null(0), pl.col("zero_votes").fill_null(0))
    # a tie between 0 and another offset keeps 0 (no evidence against the declared zone)
    out = out.with_columns(pl.when(pl.col("zero_votes") >= pl.col("votes")).then(0).otherwise(pl.col("offset_h")).alias("offset_h"))
    support = pl.when(pl.col("clean") > 0).then(
        pl.when(pl.col("offset_h") == 0).then(pl.col("zero_votes")).otherwise(pl.col("votes")) / pl.col("clean")).otherwise(0.0)
    out = out.with_columns(support.alias("support"))
    return out.with_columns(((pl.col("offset_h") != 0) & (pl.col("support") >= MIN_SUPPORT - 1e-9)).fill_null(False).alias("misaligned"))


# --------------------------------------------------------------------------------------------- check


def check_alignment(bars: pl.DataFrame, zones: Mapping[str, str | None] | None = None,
                    stored: pl.DataFrame | None = None) -> AlignmentResult:
    """The alignment of `bars` (pair, ts: being ingested, read in `zones[pair]`) and of `stored` (pair, ts:
    already in the store, UTC) against the FX week, with a finding per misaligned pair or set of pairs."""
    zones = dict(zones or {})
    origin = {p: "ingest" for p in bars["pair"].unique()}
    parts = [weekend_offsets(bars.select("pair", "ts"))]
    if stored is not None and stored.height:
        stored = stored.filter(~pl.col("pair").is_in(list(origin)))
        origin.update({p: "store" for p in stored["pair"].unique()})
        parts.append(weekend_offsets(stored.select("pair", "ts")))
    weekends = pl.concat(parts)
    votes = _vote(weekends) if weekends.height else None
    result: dict[str, PairAlignment] = {p: PairAlignment(p, origin[p], zones.get(p) if origin[p] == "ingest" else "UTC")
                                        for p in sorted(origin)}
    if votes is not None:
        for row in votes.iter_rows(named=True):
            a = result[row["pair"]]
            a.weekends += row["weekends"]
            example = _example(weekends, row["pair"], row["season"], row["offset_h"] if row["misaligned"] else 0)
            n_votes = row["zero_votes"] if row["offset_h"] == 0 else row["votes"]
            a.seasons[row["season"]] = {"weekends": row["weekends"], "clean": row["clean"], "offset_h": row["offset_h"],
                                        "votes": n_votes, "support": round(row["support"], 3), "misaligned": row["misaligned"],
                                        "declared_h": _declared_hours(a.zone, example), "example": example}
    return AlignmentResult(result, _findings(result))


def _example(weekends: pl.DataFrame, pair: str, season: str, offset: int | None) -> dict[str, str] | None:
    """A clean weekend of the season with the voted offset: its observed and expected close and open (ISO, UTC)."""
    w = weekends.filter((pl.col("pair") == pair) & (pl.col("season") == season) & (pl.col("offset_h") == (offset or 0)))
    if w.height == 0:
        return None
    r = w.row(w.height // 2, named=True)
    return {k: r[k].isoformat() for k in ("close", "open", "exp_close", "exp_open")}


def _declared_hours(zone: str | None, example: dict[str, str] | None) -> int:
    """Hours east of UTC of the zone the bars were read in, at the example weekend (0 for times with their own zone)."""
    if zone is None or example is None:
        return 0
    return round(utc_offset_minutes(zone, datetime.fromisoformat(example["exp_open"]).astimezone(timezone.utc)) / 60)


def _written_in(a: PairAlignment) -> dict[str, int]:
    """The UTC offset (hours) per season of the zone the pair's times were written in."""
    return {s: a.offsets[s] + v["declared_h"] for s, v in a.seasons.items() if s in a.offsets}


def _ahead(a: PairAlignment) -> str:
    offs = {s: h for s, h in a.offsets.items() if h}
    if len(set(offs.values())) == 1:
        h = next(iter(offs.values()))
        return f"{abs(h)} h {'ahead of' if h > 0 else 'behind'}"
    return " and ".join(f"{abs(h)} h {'ahead' if h > 0 else 'behind'} (US {s})" for s, h in sorted(offs.items(), key=lambda x: SEASONS.index(x[0]))) + " of"


def _read_as(zone: str | None) -> str:
    if zone is None:
        return "the zone its timestamps state"
    return "UTC" if zone.upper() in ("UTC", "GMT", "Z") else f"{zone} (the zone it was read in)"


def _when(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%A %H:%M")


def _evidence(a: PairAlignment) -> str:
    season = next(s for s in SEASONS if s in a.seasons and a.seasons[s]["misaligned"])
    v = a.seasons[season]
    ex = v["example"]
    weeks = f"{v['votes']} of {v['clean']} clean weekend(s)"
    if ex is None:
        return weeks
    return (f"bars stop {_when(ex['close'])} and resume {_when(ex['open'])} UTC ({weeks}, US {season}), where the FX "
            f"week closes {_when(ex['exp_close'])} and opens {_when(ex['exp_open'])} UTC (17:00 New York)")


def _fix(pairs: list[str], written: dict[str, int], zone: str | None, per_pair: bool, verb: str = "Ingest it") -> str:
    """The flag(s) that read the bars right: zones matching `written` (UTC offsets per season), best first."""
    zones = suggest_zones(written)
    if zone is None:
        return "The timestamps carry their own zone, so --tz cannot fix them: check how the source wrote them."
    if not zones:
        return f"No common zone has UTC offsets {written}: check the zone the source writes."
    target = pairs[0] + "=" if per_pair else ""
    return f"{verb} with " + " or ".join(f"--tz {target}{z}" for z in zones[:2]) + "."


def _findings(pairs: dict[str, PairAlignment]) -> list[Finding]:
    out: list[Finding] = []
    new = [a for a in pairs.values() if a.origin == "ingest" and a.checked]
    bad = [a for a in new if a.misaligned]
    good = [a for a in pairs.values() if a.checked and not a.misaligned]
    same = bad and len(bad) == len(new) >= 2 and len({(tuple(sorted(_written_in(a).items())), a.zone) for a in bad}) == 1
    if same:
        a = bad[0]
        names = [b.pair for b in bad]
        msg = (f"all {len(bad)} pairs being ingested ({', '.join(names[:6])}{' ...' if len(names) > 6 else ''}) look "
               f"{_ahead(a)} {_read_as(a.zone)}: {a.pair}'s {_evidence(a)}; they agree with each other, so their files "
               "share one wrong zone")
        out.append(Finding(names, "ingest", msg, _fix(names, _written_in(a), a.zone, per_pair=False, verb="Ingest them")))
    else:
        for a in bad:
            others = f"; the other {len(good)} checked pair(s) follow the FX week" if good else ""
            msg = f"{a.pair} looks {_ahead(a)} {_read_as(a.zone)}: its {_evidence(a)}{others}"
            out.append(Finding([a.pair], "ingest", msg, _fix([a.pair], _written_in(a), a.zone, per_pair=True)))
    stored = [a for a in pairs.values() if a.origin == "store" and a.misaligned]
    for a in stored:
        msg = (f"{a.pair}, already in the store, looks {_ahead(a)} UTC: its {_evidence(a)}; the pairs being ingested "
               "would not line up with it")
        fix = _fix([a.pair], _written_in(a), "UTC", per_pair=True, verb=f"Re-ingest {a.pair}'s source")
        out.append(Finding([a.pair], "store", msg, fix))
    return out


def stored_timestamps(store: str | Path, pairs: list[str]) -> pl.DataFrame | None:
    """pair, ts of the given pairs' bars already in `<store>/bars/` (only the ts column is read)."""
    from bqx.store.backend import is_url

    if is_url(store):  # object storage: one listing, then the ts column of each month
        from bqx.store.layout import bars_stats, read_partition

        stats = bars_stats(store)
        got = [read_partition(store, rel, ["ts"]).select(pl.lit(p).alias("pair"), "ts")
               for (p, _m), (rel, _s, _t) in stats.items() if p in set(pairs)]
        return pl.concat(got) if got else None
    frames = []
    for p in pairs:
        d = Path(store) / "bars" / f"pair={p}"
        files = sorted(d.glob("year_month=*/data.parquet"))
        if files:
            frames.append(pl.scan_parquet(files).select(pl.lit(p).alias("pair"), "ts"))
    return pl.concat(frames).collect() if frames else None


__all__ = ["check_alignment", "weekend_offsets", "stored_timestamps", "AlignmentResult", "PairAlignment", "Finding", "RULE"]
