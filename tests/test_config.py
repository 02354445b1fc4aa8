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
