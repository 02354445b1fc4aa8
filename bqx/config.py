"""The configuration: one frozen, validated object, loaded at the edge and passed down.

Precedence: command-line flag > environment (`BQX_...`) > `bqx.toml` (or `--config FILE`) > default.
A `BQX_*` variable that names no setting is ignored with one warning (a near miss is an error);
an unknown key in `bqx.toml` is an error.
Family parameters live under `[families.<name>]`; they enter the family's fingerprint.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bqx.errors import ConfigError

CONFIG_FILE = "bqx.toml"
ENV_PREFIX = "BQX_"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExportConfig(_Frozen):
    """Export settings (PIPELINE.md §7)."""

    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    purge: int | None = Field(None, ge=0, description="bars before each boundary; default = largest target horizon")
    embargo: int = Field(1440, ge=0, description="bars after each boundary")
    precision: Literal["float32", "float64"] = "float32"
    scaler: Literal["global", "per-pair"] = "global"

    @field_validator("split")
    @classmethod
    def _sums_to_one(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(x < 0 for x in v) or abs(sum(v) - 1.0) > 1e-9:
            raise ValueError(f"split fractions must be >= 0 and sum to 1, got {v}")
        return v


class ValidateConfig(_Frozen):
    """Causality validation settings (PIPELINE.md §6)."""

    samples: int = Field(6, ge=1, description="sampled bar timestamps per checked partition")
    seed: int = 0


class PostgresConfig(_Frozen):
    """Where a `postgresql://` source keeps its bars (docs/POSTGRESQL.md)."""

    table: str = Field("m1_{pair}", description="table per pair (pattern with {pair}), or the long table with pair_column")
    pair_column: str | None = None
    columns: dict[str, str] | None = Field(None, description="bar column -> table column, as --column-map")
    tz: str | None = Field(None, description="zone of a `timestamp without time zone` column")


#: The named zone conventions of bqx.bars.timezones (config.py may not import bars/; tests keep them equal).
ZONE_NAMES = ("ny-close", "est-fixed")
_OFFSET_ZONE = r"^(?:UTC|GMT)?\s*[+-]\d{1,2}(?::?\d{2})?$"


def _check_zone(zone: Any) -> str:
    """A zone name as `bqx ingest --tz` takes it: IANA, UTC, an offset, or a named convention."""
    import re
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    text = str(zone).strip()
    if text.lower() in ZONE_NAMES:
        return text.lower()
    if text.upper() in ("UTC", "GMT", "Z") or re.match(_OFFSET_ZONE, text, re.IGNORECASE):
        return text
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {text!r} (give an IANA zone, UTC, +02:00, {' or '.join(ZONE_NAMES)})") from None
    return text


class IngestConfig(_Frozen):
    """`bqx ingest` settings (docs/INGEST.md)."""

    tz: dict[str, str] | None = Field(
        None, description="zone of naive timestamps: a zone, or a table {default = ZONE, PAIR = ZONE} "
                          "(IANA names, UTC, +02:00, ny-close, est-fixed)")

    @field_validator("tz", mode="before")
    @classmethod
    def _zones(cls, v: Any) -> dict[str, str] | None:
        if v is None:
            return None
        if isinstance(v, str):
            v = {"default": v}
        if not isinstance(v, Mapping):
            raise ValueError("give a zone or a table of PAIR = ZONE")
        from bqx.universe import UnknownPairError, pair

        out: dict[str, str] = {}
        for key, zone in v.items():
            try:
                name = "default" if str(key).lower() == "default" else pair(str(key)).name
            except UnknownPairError as exc:
                raise ValueError(f"{key!r} is neither default nor a pair: {exc}") from None
            out[name] = _check_zone(zone)
        return out


class Config(_Frozen):
    """Everything a bqx command may be told, validated."""

    store: str = Field("bqx-store", description="a local directory or an s3://BUCKET/PREFIX URL")
    source: str = Field("sample", description="'sample' or a path the readers understand")
    pairs: tuple[str, ...] | None = None
    start: str | None = Field(None, pattern=r"^\d{4}-\d{2}$")
    end: str | None = Field(None, pattern=r"^\d{4}-\d{2}$")
    months: int = Field(2, ge=1, description="sample months when no --end is given")
    seed: int = 0
    workers: int | None = Field(None, ge=1)
    executor: Literal["serial", "process", "dask"] = "process"
    scheduler: str | None = None
    task_retries: int = Field(2, ge=0, description="times the tasks in flight when a pool worker died run again")
    plugins: tuple[str, ...] = Field((), description="modules that register user families")
    families: dict[str, dict[str, Any]] = Field(default_factory=dict)
    export: ExportConfig = ExportConfig()
    validate_: ValidateConfig = Field(ValidateConfig(), alias="validate")
    postgres: PostgresConfig = PostgresConfig()
    ingest: IngestConfig = IngestConfig()

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @field_validator("store", mode="before")
    @classmethod
    def _store_text(cls, v: Any) -> str:
        return os.fspath(v) if isinstance(v, os.PathLike) else v

    @field_validator("source")
    @classmethod
    def _no_password(cls, v: str) -> str:
        if _has_password(v):
            raise ValueError("the PostgreSQL URL carries a password, which bqx never stores or prints; remove it "
                             "and set PGPASSWORD or add it to ~/.pgpass")
        return v

    @field_validator("start", "end")
    @classmethod
    def _real_month(cls, v: str | None) -> str | None:
        if v is not None and not 1 <= int(v[5:7]) <= 12:
            raise ValueError(f"month {v[5:7]} does not exist; write YYYY-MM with a month from 01 to 12")
        return v

    @field_validator("pairs")
    @classmethod
    def _known_pairs(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return None
        from bqx.universe import pair

        return tuple(pair(p).name for p in v)

    def family_params(self) -> dict[str, dict[str, Any]]:
        """Family parameters, checked against the registry (unknown family or parameter is an error)."""
        from bqx.core.registry import REGISTRY

        for module in self.plugins:
            _import_plugin(module)
        for name, params in self.families.items():
            fam = REGISTRY.get(name)
            for key, value in params.items():
                _check_length_param(name, key, value, fam.params.get(key))
            resolved = fam.resolve_params(params)
            try:  # what the family derives from them (column names, warm-ups, context) must be valid too
                fam.columns(resolved)
                fam.context(resolved)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"[families.{name}] {_short_params(params)}: {exc}") from None
        return {k: dict(v) for k, v in self.families.items()}


_LENGTHS = ("window", "horizon", "lag", "returns", "period", "lookback", "span")


def _check_length_param(family: str, key: str, value: Any, default: Any) -> None:
    """A parameter counted in bars (windows, horizons, lags...) takes whole numbers >= 1, as its default does."""
    if not any(word in key for word in _LENGTHS):
        return
    if isinstance(default, int) and not isinstance(default, bool):
        values, expected = [value], "a whole number of bars >= 1"
    elif isinstance(default, (tuple, list)) and default and all(isinstance(d, int) for d in default):
        values, expected = (list(value) if isinstance(value, (list, tuple)) else [value]), "a list of whole numbers of bars >= 1"
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"[families.{family}] {key} = {value!r}: must be {expected}, e.g. {list(default)}.")
    else:
        return
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int) or v < 1]
    if bad:
        raise ValueError(f"[families.{family}] {key} = {value!r}: must be {expected} "
                         f"({', '.join(repr(b) for b in bad)} {'is' if len(bad) == 1 else 'are'} not); "
                         f"the default is {default if isinstance(default, int) else list(default)}.")


def _short_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} = {v!r}" for k, v in params.items())


def _has_password(url: Any) -> bool:
    """Whether a postgresql:// URL carries a password (user:pw@host, or ?password= in its query)."""
    from urllib.parse import parse_qsl, urlsplit

    from bqx.connect.schemes import is_database_url

    if not is_database_url(url):
        return False
    parts = urlsplit(url)
    return parts.password is not None or any(k.lower() in ("password", "sslpassword") for k, _ in parse_qsl(parts.query))


def _shown(value: Any) -> Any:
    """A value as an error may print it: a URL with a password is replaced by a note."""
    return "<a URL with a password, not shown>" if _has_password(value) else value


def _import_plugin(module: str) -> None:
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"plugin module {module!r} cannot be imported: {exc}",
                          hint="Put it beside bqx.toml or in the working directory, on PYTHONPATH, or install it; "
                               "then rerun.") from exc


def plugin_path(*directories: Path) -> None:
    """Let plugin modules be found in these directories (bqx.toml's and the working directory), here and in workers.

    They go on `sys.path` (spawned pool workers start with the driver's) and on `PYTHONPATH` (any
    other process bqx starts, such as a local Dask cluster's workers), after what is already there.
    """
    for directory in directories:
        folder = str(Path(directory).resolve())
        if folder not in sys.path:
            sys.path.append(folder)
        current = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        if folder not in current:
            os.environ["PYTHONPATH"] = os.pathsep.join([*current, folder])


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any], origins: dict[str, str], source: str, prefix: str = "") -> None:
    for key, value in over.items():
        if value is None:
            continue
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value, origins, source, path + ".")
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value
            origins[path] = source


# BQX_* variables that are not configuration settings: bqx's own scripts and tests, and the tuning knobs
# read where they act (the S3 lease and manifest upload, the Dask executor's patience; docs/OBJECT_STORAGE.md
# and docs/SCALING.md). tests/test_config.py checks that every BQX_ name in bqx/ is a setting or listed here.
NOT_SETTINGS = frozenset({"BQX_VERBOSE", "BQX_TEST_KILL_AFTER_TASKS", "BQX_TEST_KILL_WORKER",
                          "BQX_TEST_WORKER_READY_DIR", "BQX_UPDATE_GOLDEN", "BQX_EXTRAS", "BQX_VENV",
                          "BQX_LEASE_TTL", "BQX_MANIFEST_SYNC_SECONDS", "BQX_DASK_NO_WORKERS_TIMEOUT"})
_warned: set[str] = set()



def _setting_names(model: type[BaseModel]) -> dict[str, Any]:
    """Environment name (alias if any) -> the field's annotation."""
    return {(f.alias or name): f.annotation for name, f in model.model_fields.items()}


def _is_setting(key: str, path: list[str]) -> bool:
    """Whether `path` names a setting. A near miss, or an unknown key in a known section, is an error."""
    model: Any = Config
    for depth, part in enumerate(path):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return True  # below a free mapping (families) or a scalar: the validation judges it
        names = _setting_names(model)
        if part in names:
            model = names[part]
            continue
        close = difflib.get_close_matches(part, list(names), n=1, cutoff=0.8)
        if close:
            suggestion = ENV_PREFIX + "__".join([*path[:depth], close[0], *path[depth + 1:]]).upper()
            raise ConfigError(f"environment variable {key} is not a setting; did you mean {suggestion}?",
                              hint="Rename or unset it; `bqx config show` lists every setting.")
        if depth:
            section = ENV_PREFIX + "__".join(path[:depth]).upper()
            raise ConfigError(f"environment variable {key} is not a setting; {section}__ takes "
                              + ", ".join(n.upper() for n in names), hint="Rename or unset it.")
        return False
    return True


def _warn_ignored(names: list[str]) -> None:
    fresh = [n for n in names if n not in _warned]
    if fresh:
        _warned.update(fresh)
        what = "not a bqx setting" if len(fresh) == 1 else "not bqx settings"
        print(f"bqx: warning: ignoring {', '.join(fresh)} ({what})", file=sys.stderr)


def _env_values(environ: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """`BQX_WORKERS=2` -> workers; `BQX_EXPORT__EMBARGO=0` -> export.embargo; values parsed as JSON when they can be.

    Also the sorted names of the `BQX_*` variables that are not settings (ignored).
    """
    out: dict[str, Any] = {}
    ignored: list[str] = []
    for key, raw in sorted(environ.items()):
        if not key.startswith(ENV_PREFIX) or key in NOT_SETTINGS:
            continue
        path = key[len(ENV_PREFIX):].lower().split("__")
        if not _is_setting(key, path):
            ignored.append(key)
            continue
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if path == ["pairs"] and isinstance(value, str):
            value = [p for p in value.replace(" ", ",").split(",") if p]
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out, ignored


def load_config(
    config_file: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[Config, dict[str, str]]:
    """The configuration and, per set key, where its value came from (file, environment or flag)."""
    origins: dict[str, str] = {}
    merged: dict[str, Any] = {}
    path = config_file or (cwd or Path.cwd()) / CONFIG_FILE
    if config_file is not None and not path.exists():
        raise ConfigError(f"configuration file {path} does not exist", hint="Check the --config path.")
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x})",
                              hint="Save the file as UTF-8 (TOML requires it), then rerun.") from None
        _deep_merge(merged, data, origins, str(path))
    env_values, ignored = _env_values(os.environ if environ is None else environ)
    _warn_ignored(ignored)
    _deep_merge(merged, env_values, origins, "environment")
    _deep_merge(merged, dict(flags or {}), origins, "flag")
    if merged.get("plugins"):  # plugins = ["my_features"] is found beside bqx.toml, as the README says
        plugin_path(*([path.parent] if path.exists() else []), cwd or Path.cwd())
    try:
        config = Config.model_validate(merged)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            lines.append(f"{where} ({origins.get(where, 'default')}): {err['msg'].removeprefix('Value error, ')} (got {_shown(err.get('input'))!r})")
        raise ConfigError("invalid configuration: " + "; ".join(lines)) from None
    except ValueError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None
    try:
        config.family_params()
    except KeyError as exc:  # an unknown family: its message names the known ones
        raise ConfigError(f"invalid [families] configuration: {exc.args[0] if exc.args else exc}") from None
    except ValueError as exc:
        raise ConfigError(f"invalid [families] configuration: {exc}",
                          hint=f"Fix it in {path if path.exists() else 'the configuration'}, then rerun.") from None
    return config, origins


def describe(config: Config, origins: Mapping[str, str]) -> list[tuple[str, Any, str]]:
    """(key, value, source) rows for `bqx config show`."""
    data = config.model_dump(mode="json", by_alias=True)
    rows: list[tuple[str, Any, str]] = []

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and value:
                walk(value, path + ".")
            else:
                rows.append((path, value, origins.get(path, "default")))

    walk(data, "")
    return rows
