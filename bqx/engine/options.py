"""`RunOptions`: the arguments of `bqx.run`, checked once and handed to the plan, the source and the executor.

`RunOptions.build(...)` takes `run()`'s keyword arguments as given and refuses bad ones (unknown
pairs, months out of order, a scheduler without the dask executor, --verify on a dry run);
`for_store(root)` then settles the source against the store: "auto" becomes the sample market or
the store's bars, the sample's default months are filled in, and a path or URL becomes the bar
source registered for its scheme (bqx.connect.sources).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from bqx.engine.partitions import add_months, parse_month
from bqx.errors import UsageError
from bqx.universe import PAIR_NAMES


@dataclass(frozen=True)
class RunOptions:
    """What a run computes and how; `source` is, once settled by `for_store`, None, "sample", a frame or a BarSource."""

    source: Any = "auto"
    pairs: list[str] | None = None  # sorted, checked names
    start: str | None = None  # first month "YYYY-MM"
    end: str | None = None  # last month, included
    stages: Sequence[str] | None = None
    workers: int | None = None  # as given (a Dask cluster's size comes from its scheduler)
    n_workers: int = 1  # the workers the plan assumes: `workers`, else the executor's, else one per core
    executor: Any = "process"  # "process", "serial", "dask" or an Executor
    scheduler: str | None = None
    dry_run: bool = False
    force: bool = False
    retry_failed: bool = False
    params: Mapping[str, Mapping[str, Any]] | None = None
    seed: int = 0
    chain: bool = True
    task_retries: int = 2
    verify: bool = False
    forget_missing_bars: bool = False

    @classmethod
    def build(cls, *, source: Any = "auto", pairs: Sequence[str] | None = None, start: str | None = None,
              end: str | None = None, stages: Sequence[str] | None = None, workers: int | None = None,
              executor: Any = "process", scheduler: str | None = None, dry_run: bool = False, force: bool = False,
              retry_failed: bool = False, params: Mapping[str, Mapping[str, Any]] | None = None, seed: int = 0,
              chain: bool = True, task_retries: int = 2, verify: bool = False,
              forget_missing_bars: bool = False) -> "RunOptions":
        """The options of `run(...)`'s keyword arguments, refused with a UsageError when they contradict."""
        sel_pairs = check_pairs(pairs)
        start_m = parse_month(start) if start else None
        end_m = parse_month(end) if end else None
        if start_m and end_m and end_m < start_m:
            raise UsageError(f"end {end_m} is before start {start_m}")
        n_workers = workers or (executor.workers if not isinstance(executor, str) else (os.cpu_count() or 1))
        if executor == "serial":
            n_workers = 1
        if scheduler and executor != "dask":
            raise UsageError(f"a scheduler ({scheduler}) needs the dask executor, not {executor!r}")
        if verify and dry_run:
            raise UsageError("--verify re-hashes the store, which a dry run does not do",
                             hint="Run `bqx verify` to list the files that fail, then `bqx run --verify`.")
        return cls(source=source, pairs=sel_pairs, start=start_m, end=end_m, stages=stages, workers=workers,
                   n_workers=n_workers, executor=executor, scheduler=scheduler, dry_run=dry_run, force=force,
                   retry_failed=retry_failed, params=params, seed=seed, chain=chain, task_retries=task_retries,
                   verify=verify, forget_missing_bars=forget_missing_bars)

    @property
    def sample(self) -> bool:
        """Whether the run computes the built-in sample market."""
        return isinstance(self.source, str) and self.source == "sample"

    def for_store(self, root: Path) -> "RunOptions":
        """The source settled against the store (see the module's docstring)."""
        from bqx.connect.sources import open_source
        from bqx.engine.source import SAMPLE_START, refuse_mixing, resolve_source

        source = resolve_source(root, self.source)
        opts = replace(self, source=source)
        if opts.sample:
            refuse_mixing(root)
            if opts.start is None and opts.end is None:
                opts = replace(opts, start=SAMPLE_START, end=add_months(SAMPLE_START, 1))
        elif isinstance(source, (str, os.PathLike)):  # a path or URL: the source registered for its scheme
            opts = replace(opts, source=open_source(source))
        return opts

    def source_label(self) -> str:
        """The source as the run's log records it."""
        if isinstance(self.source, str):
            return self.source
        describe = getattr(self.source, "describe", None)
        return describe() if callable(describe) else type(self.source).__name__


def check_pairs(pairs: Sequence[str] | None) -> list[str] | None:
    if pairs is None:
        return None
    pairs = [pairs] if isinstance(pairs, str) else list(pairs)
    unknown = [p for p in pairs if p not in PAIR_NAMES]
    if unknown:
        raise UsageError(f"unknown pairs {unknown}; pairs are: {' '.join(PAIR_NAMES)}")
    return sorted(set(pairs))


__all__ = ["RunOptions", "check_pairs"]
