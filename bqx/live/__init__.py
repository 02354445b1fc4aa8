"""Live features: the newest bars' features, computed by the batch's own family functions on cached tails."""

from bqx.live.session import Live

__all__ = ["Live"]
