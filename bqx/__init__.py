"""bqx: one-minute bars of the 28 major FX pairs into a validated, ML-ready feature set.

The curated public API:

- `sample_market(pairs=None, start="2024-07", months=2, seed=0)`: the built-in sample bars.
- `read_bars(path, ...)`: bars from a file or directory, validated.
- `compute(bars, families=None)`: features on an in-memory bar frame, no store.
- `run(store, ...)`, `load(store, ...)`, `status(store)`: the pipeline over a store.
- `validate(store, ...)`: the causality validation.
- `Live(store, pairs=...)`: live features; `live.update(bars)` returns the new bars' features.
- `family`, `Column`, `Ctx`, `register`: declare and register your own family.

`bqx.universe` (pairs, triangles) and `bqx.catalog` (the feature catalog) are modules.
"""

from __future__ import annotations

from typing import Any

from bqx.core.declaration import Column, Ctx, Family, PairInfo
from bqx.core.registry import family, register
from bqx.core.runner import compute

# `bqx.validate` and `bqx.export` are both subpackages and functions: bind the functions eagerly so
# that importing the subpackage later cannot shadow them.
from bqx.export import export  # noqa: E402
from bqx.validate import validate  # noqa: E402

__version__ = "0.1.0"

_LAZY: dict[str, tuple[str, str]] = {
    "sample_market": ("bqx.bars.sample", "sample_market"),
    "read_bars": ("bqx.bars.readers", "read_bars"),
    "ingest": ("bqx.bars.ingest", "ingest"),
    "run": ("bqx.engine.run", "run"),
    "status": ("bqx.engine.status", "status"),
    "plan": ("bqx.engine.run", "plan"),
    "load": ("bqx.engine.load", "load"),
    "Live": ("bqx.live", "Live"),
}


def __getattr__(name: str) -> Any:
    """Heavier parts load on first use, so `import bqx` stays fast."""
    if name not in _LAZY:
        raise AttributeError(f"module 'bqx' has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name]
    mod = importlib.import_module(module)
    return getattr(mod, attr)


__all__ = ["Column", "Ctx", "Family", "PairInfo", "family", "register", "compute", "validate", "export", *_LAZY]
