"""Time the sample market: 28 pairs x 12 months, printing bars and seconds."""

from __future__ import annotations

import sys
import time

from bqx.bars.sample import sample_market


def main(months: int = 12, seed: int = 0) -> None:
    t0 = time.perf_counter()
    frame = sample_market(None, start="2024-01", months=months, seed=seed)
    seconds = time.perf_counter() - t0
    print(f"sample_market: 28 pairs x {months} months: {frame.height:,} bars in {seconds:.2f} s "
          f"({frame.height / seconds / 1e6:.2f} M bars/s, {frame.estimated_size('mb'):.0f} MB)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
