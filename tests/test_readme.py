"""The README's user-family example works as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from bqx.core.registry import REGISTRY

README = Path(__file__).parents[1] / "README.md"


def test_user_family_example_registers_and_computes(sample):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(b for b in blocks if "@family(" in b)
    namespace: dict = {}
    try:
        exec(compile(example, "README.md", "exec"), namespace)
        import bqx

        bars = sample(("EURUSD",), "2024-07", 1).head(500)
        out = bqx.compute(bars, ["my_range"])
        want = (bars["high"] - bars["low"]).to_numpy()
        assert out["my_range_30"][28] is None
        np.testing.assert_allclose(out["my_range_30"][29], want[:30].mean(), rtol=1e-12)
    finally:
        REGISTRY.remove("my_range")
