"""Configuration: validation and precedence flag > environment > file > default."""

from __future__ import annotations

import pytest

from bqx.config import describe, load_config
from bqx.errors import ConfigError


def test_defaults(tmp_path):
    cfg, origins = load_config(environ={}, cwd=tmp_path)
    assert cfg.source == "sample" and cfg.executor == "process" and cfg.export.embargo == 1440
    assert origins == {}


def test_precedence_flag_over_env_over_file(tmp_path):
    (tmp_path / "bqx.toml").write_text('workers = 1\nstart = "2024-07"\n[export]\nembargo = 10\n')
    cfg, origins = load_config(environ={}, cwd=tmp_path)
    assert (cfg.workers, cfg.start, cfg.export.embargo) == (1, "2024-07", 10)
    assert origins["workers"].endswith("bqx.toml")
    cfg, origins = load_config(environ={"BQX_WORKERS": "2", "BQX_EXPORT__EMBARGO": "20"}, cwd=tmp_path)
    assert (cfg.workers, cfg.export.embargo, cfg.start) == (2, 20, "2024-07")
    assert origins["workers"] == "environment" and origins["export.embargo"] == "environment"
    cfg, origins = load_config(flags={"workers": 3}, environ={"BQX_WORKERS": "2"}, cwd=tmp_path)
    assert cfg.workers == 3 and origins["workers"] == "flag"
    rows = {k: (v, s) for k, v, s in describe(cfg, origins)}
    assert rows["workers"] == (3, "flag") and rows["export.embargo"][0] == 10


def test_family_parameters_are_checked(tmp_path):
    (tmp_path / "bqx.toml").write_text("[families.bqx]\nwindows = [15, 30]\n")
    cfg, _ = load_config(environ={}, cwd=tmp_path)
    assert cfg.family_params() == {"bqx": {"windows": [15, 30]}}
    (tmp_path / "bqx.toml").write_text("[families.bqx]\nwindow = [15]\n")
    with pytest.raises(ConfigError, match="unknown parameter 'window'.*known: windows"):
        load_config(environ={}, cwd=tmp_path)
    (tmp_path / "bqx.toml").write_text("[families.bqz]\nwindows = [15]\n")
    with pytest.raises(ConfigError, match="Did you mean bqx"):
        load_config(environ={}, cwd=tmp_path)


@pytest.mark.parametrize("text, where", [
    ("workers = 0", "workers"),
    ('start = "2024-7"', "start"),
    ('executor = "threads"', "executor"),
    ("[export]\nsplit = [0.5, 0.5, 0.5]", "export.split"),
    ('pairs = ["USDEUR"]', "pairs"),
    ("bogus = 1", "bogus"),
])
def test_invalid_values_name_the_setting_and_its_source(tmp_path, text, where):
    (tmp_path / "bqx.toml").write_text(text + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(environ={}, cwd=tmp_path)
    assert where.split(".")[0] in str(err.value)


def test_broken_toml_and_missing_file(tmp_path):
    (tmp_path / "bqx.toml").write_text("workers = = 2\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(environ={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", environ={})


def test_env_pairs_list(tmp_path):
    cfg, _ = load_config(environ={"BQX_PAIRS": "eurusd,USDJPY"}, cwd=tmp_path)
    assert cfg.pairs == ("EURUSD", "USDJPY")


def test_unknown_environment_variables_are_ignored_with_one_warning(tmp_path, capsys):
    from bqx import config as config_module

    config_module._warned.clear()
    env = {"BQX_PY": "/usr/bin/python3", "BQX_SOMETHING": "1", "BQX_WORKERS": "2", "BQX_EXTRAS": "test"}
    cfg, origins = load_config(environ=env, cwd=tmp_path)
    assert cfg.workers == 2 and origins == {"workers": "environment"}
    load_config(environ=env, cwd=tmp_path)
    err = capsys.readouterr().err
    assert err == "bqx: warning: ignoring BQX_PY, BQX_SOMETHING (not bqx settings)\n"
    config_module._warned.clear()
    load_config(environ={"BQX_SOMETHING": "1"}, cwd=tmp_path)
    assert capsys.readouterr().err == "bqx: warning: ignoring BQX_SOMETHING (not a bqx setting)\n"


@pytest.mark.parametrize("key, suggestion", [
    ("BQX_WORKRES", "BQX_WORKERS"),
    ("BQX_STOR", "BQX_STORE"),
    ("BQX_EXPORT__EMBARGOO", "BQX_EXPORT__EMBARGO"),
    ("BQX_VALIDAT__SEED", "BQX_VALIDATE__SEED"),
])
def test_misspelt_environment_setting_is_an_error_with_a_suggestion(tmp_path, key, suggestion):
    with pytest.raises(ConfigError, match=f"{key} is not a setting; did you mean {suggestion}\\?"):
        load_config(environ={key: "1"}, cwd=tmp_path)


def test_unknown_key_in_a_known_section_of_the_environment_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="BQX_EXPORT__BOGUS is not a setting; BQX_EXPORT__ takes SPLIT, PURGE"):
        load_config(environ={"BQX_EXPORT__BOGUS": "1"}, cwd=tmp_path)


def test_unknown_keys_in_the_file_stay_errors(tmp_path):
    (tmp_path / "bqx.toml").write_text("something = 1\n")
    with pytest.raises(ConfigError, match="something"):
        load_config(environ={}, cwd=tmp_path)


def test_every_bqx_variable_the_code_reads_is_a_setting_or_known_not_to_be_one(tmp_path, capsys):
    # a knob read with os.environ somewhere in bqx/ must not draw "ignoring BQX_... (not a bqx setting)"
    import re
    from pathlib import Path

    import bqx
    from bqx import config as config_module

    names = set()
    for path in Path(bqx.__file__).parent.rglob("*.py"):
        names |= set(re.findall(r"[\"'](BQX_[A-Z0-9_]+)[\"']", path.read_text()))
    assert {"BQX_LEASE_TTL", "BQX_MANIFEST_SYNC_SECONDS", "BQX_DASK_NO_WORKERS_TIMEOUT"} <= names
    config_module._warned.clear()
    load_config(environ={n: "1" for n in names}, cwd=tmp_path)
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("read, name", [("bqx.store.lease:lease_ttl", "BQX_LEASE_TTL"),
                                        ("bqx.store.manifest:sync_seconds", "BQX_MANIFEST_SYNC_SECONDS")])
def test_seconds_knobs_are_read_when_used_and_a_bad_value_is_a_usage_error(monkeypatch, read, name):
    import importlib

    from bqx.errors import UsageError

    module, func = read.split(":")
    knob = getattr(importlib.import_module(module), func)
    monkeypatch.setenv(name, "7.5")
    assert knob() == 7.5  # read at use, not frozen at import
    monkeypatch.setenv(name, "a minute")
    with pytest.raises(UsageError, match=f"{name}='a minute' is not a number of seconds"):
        knob()
    monkeypatch.setenv(name, "-1")
    with pytest.raises(UsageError, match=f"{name}='-1' is negative"):
        knob()
