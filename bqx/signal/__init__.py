"""`bqx signal`: which features carry information (PIPELINE.md §7 "Signal").

`compute_signal(store)` writes `<store>/signal/ic.parquet` (the Spearman IC of every feature against
every target per (pair, month), on training rows) and its summaries; `importance` ranks clusters of
correlated features by permutation importance under purged walk-forward folds.
"""

from bqx.signal.run import SignalResult, compute_signal

__all__ = ["compute_signal", "SignalResult"]
