"""The static check: only targets declare a lookahead, and no family reads targets, even through its inputs."""

from __future__ import annotations

from typing import Mapping

from bqx.core.declaration import Family
from bqx.core.registry import REGISTRY, UnknownFamilyError
from bqx.validate.report import CheckResult, Failure

TARGET_STAGE = "targets"


def is_target(fam: Family) -> bool:
    """Targets are the families of the targets stage (1.7): they look ahead by definition."""
    return fam.stage == TARGET_STAGE


def target_path(fam: Family) -> list[str] | None:
    """The chain of inputs by which `fam` reaches a target family (None when it does not)."""
    seen: set[str] = set()

    def visit(f: Family, path: list[str]) -> list[str] | None:
        for name in f.inputs:
            if name == "bars" or name in seen:
                continue
            seen.add(name)
            dep = REGISTRY.get(name)
            if is_target(dep):
                return path + [name]
            found = visit(dep, path + [name])
            if found:
                return found
        return None

    return visit(fam, [fam.name])


def check_static(fam: Family, params: Mapping[str, object]) -> CheckResult:
    """Lookahead 0 unless the family is a target; no target among its inputs, transitively."""
    result = CheckResult("static", samples=1, compared=2)
    try:
        look = fam.lookahead(params)
    except Exception as exc:  # noqa: BLE001 - a broken declaration is reported, not raised
        result.error(f"its lookahead declaration raised {type(exc).__name__}: {exc}")
        return result
    if look != 0 and not is_target(fam):
        result.fail(Failure(None, None, None, 0.0, float(look),
                            f"declares lookahead {look}; only targets (stage {TARGET_STAGE}) may look ahead"))
    if look < 0:
        result.fail(Failure(None, None, None, 0.0, float(look), f"declares a negative lookahead {look}"))
    try:
        path = target_path(fam)
    except UnknownFamilyError as exc:
        result.error(f"an input is not registered: {exc}")
        return result
    if path:
        result.fail(Failure(None, None, None, None, None, "reads targets: " + " -> ".join(path)))
    return result
