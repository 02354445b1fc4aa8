"""The family registry, loud about duplicates and unknown names, and `@family`, which declares a family into it."""

from __future__ import annotations

import difflib
import importlib
import inspect
from types import MappingProxyType
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import polars as pl

from bqx.core.declaration import Column, ComputeFn, Ctx, Family, IntOrFn, _freeze

#: Built-in family modules, imported on first use. Adding a family = adding its module here.
BUILTIN_MODULES: tuple[str, ...] = (
    "bqx.families.rate_index",
    "bqx.families.bqx",
    "bqx.families.targets",
    "bqx.families.labels",
    "bqx.families.lags",
    "bqx.families.bollinger_bqx",
    "bqx.families.regression",
    "bqx.families.derived",
    "bqx.families.fit_quality",
    "bqx.families.bollinger_rate",
    "bqx.families.statistics",
    "bqx.families.volume",
    "bqx.families.spread",
    "bqx.families.time_features",
    "bqx.families.currency_indices",
    "bqx.families.arbitrage",
    "bqx.families.advanced",
    "bqx.families.technical",
    "bqx.families.quick_win",
    "bqx.families.regimes",
)


class UnknownFamilyError(KeyError):
    def __init__(self, name: str, known: Iterable[str]):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        super().__init__(f"unknown family {name!r}.{hint} Known families: {', '.join(known)}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateError(ValueError):
    pass


class Registry:
    """Families by name, refusing a second family of one name or a column defined twice."""

    def __init__(self) -> None:
        self._families: dict[str, Family] = {}
        self._loaded = False

    def add(self, fam: Family) -> Family:
        old = self._families.get(fam.name)
        if old is not None:
            if old.module == fam.module and old.compute.__qualname__ == fam.compute.__qualname__:
                self._families[fam.name] = fam  # the same module imported again (reload)
                return fam
            raise DuplicateError(
                f"a family named {fam.name!r} is already registered (from {old.module}); choose another name"
            )
        owners = self.column_owners()
        for col in fam.column_names():
            if col in owners:
                raise DuplicateError(
                    f"family {fam.name!r} declares column {col!r}, which family {owners[col]!r} already declares"
                )
        self._families[fam.name] = fam
        return fam

    def remove(self, name: str) -> None:
        self._families.pop(name, None)

    def load_builtins(self) -> None:
        if not self._loaded:
            self._loaded = True
            for mod in BUILTIN_MODULES:
                importlib.import_module(mod)

    def get(self, name: str) -> Family:
        self.load_builtins()
        try:
            return self._families[name]
        except KeyError:
            raise UnknownFamilyError(name, self._families) from None

    def _ordered(self) -> list[Family]:
        """Built-in families in BUILTIN_MODULES order (whatever imported them first), then users' in registration order."""
        self.load_builtins()
        rank = {m: i for i, m in enumerate(BUILTIN_MODULES)}
        fams = list(self._families.values())
        return sorted(fams, key=lambda f: (rank.get(f.module, len(rank)), fams.index(f)))

    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self._ordered())

    def __iter__(self) -> Iterator[Family]:
        return iter(self._ordered())

    def __contains__(self, name: str) -> bool:
        self.load_builtins()
        return name in self._families

    def builtin_names(self) -> tuple[str, ...]:
        """The families bqx ships (declared in BUILTIN_MODULES), in registration order."""
        return tuple(f.name for f in self._ordered() if f.module in BUILTIN_MODULES)

    def column_owners(self) -> dict[str, str]:
        return {c: f.name for f in self._families.values() for c in f.column_names()}


REGISTRY = Registry()


def family(
    *,
    name: str,
    stage: str,
    inputs: Sequence[str],
    columns: Callable[[Mapping[str, Any]], Sequence[Column]],
    context: IntOrFn,
    lookahead: IntOrFn = 0,
    params: Mapping[str, Any] | None = None,
    view: bool = False,
    cross_pair: bool = False,
    tables: Sequence[str] = (),
    anchor: Callable[[pl.DataFrame, Ctx], Mapping[str, Any]] | None = None,
    description: str = "",
    register: bool = True,
) -> Callable[[ComputeFn], Family]:
    """Declare the decorated function as a feature family (and register it unless told not to)."""

    def wrap(fn: ComputeFn) -> Family:
        fam = Family(
            name=name,
            stage=stage,
            inputs=tuple(inputs),
            compute=fn,
            columns_fn=columns,
            context_fn=context,
            lookahead_fn=lookahead,
            params=MappingProxyType({k: _freeze(v) for k, v in (params or {}).items()}),
            view=view,
            cross_pair=cross_pair,
            tables=tuple(tables),
            anchor=anchor,
            description=description or (inspect.getdoc(fn) or "").split("\n")[0],
            module=fn.__module__,
        )
        if register:
            REGISTRY.add(fam)
        return fam

    return wrap


def register(fam: Family) -> Family:
    """Register a family built with `family(..., register=False)` (or re-register one)."""
    return REGISTRY.add(fam)


def get(name: str) -> Family:
    return REGISTRY.get(name)


def all_families() -> tuple[Family, ...]:
    return tuple(REGISTRY)
