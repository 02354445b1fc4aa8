"""Feature families: one module per family, each a pure function with its declaration beside it."""

from bqx.core.declaration import Column, Ctx, Family, PairInfo
from bqx.core.registry import REGISTRY, all_families, family, get, register

__all__ = ["Column", "Ctx", "Family", "PairInfo", "family", "REGISTRY", "all_families", "get", "register"]
