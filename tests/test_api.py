"""The curated public surface of `bqx`."""

from __future__ import annotations

import bqx


def test_public_names_are_the_documented_functions():
    import bqx.export  # noqa: F401 - importing the subpackages must not shadow the functions
    import bqx.validate  # noqa: F401

    for name in ("sample_market", "read_bars", "ingest", "compute", "run", "status", "plan", "load", "validate",
                 "export", "family", "register"):
        assert callable(getattr(bqx, name)), name
    assert bqx.validate.__module__ == "bqx.validate" and bqx.export.__module__.startswith("bqx.export")
    assert not isinstance(bqx.validate, type(bqx)) and not isinstance(bqx.export, type(bqx))


def test_compute_accepts_pandas(sample):
    bars = sample(("EURUSD",), "2024-07", 1).head(300)
    from_polars = bqx.compute(bars, ["bqx"])
    from_pandas = bqx.compute(bars.to_pandas(), ["bqx"])
    assert from_pandas.equals(from_polars)
    assert from_polars.columns[:2] == ["pair", "ts"] and from_polars.width == 2 + 37
