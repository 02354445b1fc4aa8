"""The store's state, read once: baseline, parameters, pair infos, anchors and the manifest's rows.

`open_state(root)` is the one reader of a store's state. It reads the manifest through
`bqx.store.manifest.open_reader` and `pairs.json` through `bqx.store.layout.read_pairs_json`, and
hands back a frozen `StoreState` that the engine, validate, export, live and the report pass
around instead of reopening the manifest. A run, which writes the baseline and the anchors, builds
the same view from its open manifest with `state_from`.

A pair's `PairInfo` is made in one place (`pair_infos`): its `pairs.json` entry (basis, volume,
bid/ask), or, for a pair whose bars came without one, what its first bars month shows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

from bqx.core.declaration import PairInfo
from bqx.errors import UsageError
from bqx.store.layout import read_bars, read_pairs_json
from bqx.store.manifest import Manifest, TaskRow, open_reader, params_from_meta

INFO_FIELDS = ("basis", "has_volume", "has_bidask")  # what a PairInfo holds besides the pair's name

TaskKey = tuple[str, "str | None", str]  # (stage, pair or None for a month task, month)


@dataclass(frozen=True)
class StoreState:
    """What a store records, as one read-only value (empty maps and no baseline for a store without manifest)."""

    root: str
    has_manifest: bool
    baseline: datetime | None  # fixed by the first run
    params: dict[str, dict[str, Any]]  # family -> the parameters the store was computed with
    pairs: dict[str, PairInfo]  # every pair with recorded bars or a pairs.json entry
    anchors: dict[tuple[str, str], dict[str, Any]]  # (family, pair or "") -> anchor
    tasks: dict[TaskKey, TaskRow]
    bars: dict[tuple[str, str], tuple[str, int, int, int]]  # (pair, month) -> (digest, rows, size, mtime_ns)
    runs: tuple[dict[str, Any], ...]
    catalog: dict[str, dict[str, Any]]  # pairs.json as recorded (source, sources, rows, start, end ...)

    def months_of(self, pair: str) -> list[str]:
        """The months the manifest records bars of `pair` in (rows > 0), sorted."""
        return sorted(m for (p, m), v in self.bars.items() if p == pair and v[1] > 0)

    @property
    def months_by_pair(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for (p, m), v in sorted(self.bars.items()):
            if v[1] > 0:
                out.setdefault(p, []).append(m)
        return out

    def task(self, stage: str, pair: str | None, month: str) -> TaskRow | None:
        return self.tasks.get((stage, pair, month))

    def stages(self) -> set[str]:
        """The stages the manifest has tasks of."""
        return {s for (s, _, _) in self.tasks}

    def pair_info(self, pair: str) -> PairInfo:
        """The pair's PairInfo; UsageError for a pair the store has no bars of."""
        info = self.pairs.get(pair)
        if info is None:
            raise UsageError(f"store {self.root} has no bars of {pair}",
                             hint="Ingest its bars and run `bqx run`, or leave the pair out.")
        return info

    def info_fields(self, pair: str) -> dict[str, Any]:
        """The pair's PairInfo as the plain fields a task spec and its fingerprint carry."""
        return fields_of(self.pair_info(pair))

    def anchor(self, family: str, pair: str | None) -> dict[str, Any] | None:
        return self.anchors.get((family, pair or ""))

    @property
    def baseline_iso(self) -> str | None:
        return self.baseline.isoformat() if self.baseline is not None else None


def info_of(pair: str, entry: Mapping[str, Any]) -> PairInfo:
    """A PairInfo from recorded fields (a pairs.json entry or a task spec's); absent fields take PairInfo's defaults."""
    return PairInfo(pair=pair, **{k: entry[k] for k in INFO_FIELDS if k in entry})


def fields_of(info: PairInfo) -> dict[str, Any]:
    return {k: getattr(info, k) for k in INFO_FIELDS}


def pair_infos(root: str | os.PathLike[str], months_by_pair: Mapping[str, Sequence[str]],
               catalog: Mapping[str, Mapping[str, Any]]) -> dict[str, PairInfo]:
    """The one rule: each pair's `pairs.json` entry, else what its first bars month shows (volume, bid/ask)."""
    from bqx.core.runner import pair_info

    out = {}
    for pair, months in months_by_pair.items():
        entry = catalog.get(pair)
        if entry is not None:
            out[pair] = info_of(pair, entry)
        elif months:
            out[pair] = pair_info(pair, read_bars(root, pair, [sorted(months)[0]]))
    return out


def state_from(root: str | os.PathLike[str], man: Manifest | None) -> StoreState:
    """The state of the store at `root` from its open manifest (a reader's, or the run's own writer)."""
    root = os.fspath(root)
    catalog = read_pairs_json(root)
    if man is None:
        return StoreState(root, False, None, {}, {p: info_of(p, e) for p, e in catalog.items()}, {}, {}, {}, (),
                          catalog)
    raw_baseline = man.get_meta("baseline_time")
    params = params_from_meta(man.get_meta("params"))
    bars = man.bars()
    months: dict[str, list[str]] = {p: [] for p in catalog}
    for (p, m), v in sorted(bars.items()):
        if v[1] > 0:
            months.setdefault(p, []).append(m)
    return StoreState(
        root=root,
        has_manifest=True,
        baseline=datetime.fromisoformat(raw_baseline) if raw_baseline else None,
        params=params,
        pairs=dict(sorted(pair_infos(root, months, catalog).items())),
        anchors=man.anchors(),
        tasks=man.tasks(),
        bars=bars,
        runs=tuple(man.runs()),
        catalog=catalog,
    )


def open_state(root: str | os.PathLike[str]) -> StoreState:
    """Read a store's state once (read-only; a store without manifest gives no baseline and empty maps)."""
    man = open_reader(root)
    if man is None:
        return state_from(root, None)
    with man:
        return state_from(root, man)


__all__ = ["StoreState", "open_state", "state_from", "pair_infos", "info_of", "fields_of", "INFO_FIELDS"]
