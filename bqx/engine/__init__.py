"""The pipeline engine: plan, run, status and load over a store of partitioned Parquet and a manifest."""

from bqx.engine.events import Event
from bqx.engine.load import load
from bqx.engine.partitions import Partition
from bqx.engine.run import RunResult, plan, run
from bqx.engine.status import status

__all__ = ["Event", "Partition", "RunResult", "load", "plan", "run", "status"]
