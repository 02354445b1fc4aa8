"""The FX-week alignment check at ingest: a file in a wrong zone is refused (strict) or warned about (repair)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from bqx.bars.alignment import check_alignment, weekend_offsets
from bqx.bars.ingest import ingest
from bqx.bars.readers import read_source
from bqx.errors import InputError

from fx_files import fx_minutes, with_prices, write_dukascopy, write_histdata, write_metatrader

SUMMER = ("2024-07-01", "2024-07-27")  # three weekends, all on US daylight-saving time
DST_SPAN = ("2024-02-19", "2024-03-23")  # weekends on both sides of 2024-03-10


def three_vendor_dir(root, eurusd_zone=3):
    """EURUSD from a MetaTrader broker in `eurusd_zone`, GBPUSD from Dukascopy (UTC), USDJPY from HistData."""
    ts = fx_minutes(*SUMMER)
    write_metatrader(root / "EURUSD.csv", with_prices(ts, 1), eurusd_zone)
    write_dukascopy(root / "GBPUSD_Candlestick_1_M_BID_01.07.2024-27.07.2024.csv", with_prices(ts, 2, 1.27))
    write_histdata(root / "DAT_ASCII_USDJPY_M1_202407.csv", with_prices(ts, 3, 160.0))
    return ts


def test_broker_time_file_ingested_as_utc_is_refused_with_its_offset(tmp_path):
    three_vendor_dir(tmp_path / "src")
    with pytest.raises(InputError) as err:
        ingest(tmp_path / "src", tmp_path / "s", tz="UTC")
    e = err.value
    assert e.rule == "misaligned-time" and e.pair == "EURUSD" and e.exit_code == 2
    msg = str(e)
    assert "EURUSD looks 3 h ahead of UTC" in msg
    assert "stop Saturday 00:00 and resume Monday 00:00 UTC" in msg and "closes Friday 21:00 and opens Sunday 21:00" in msg
    assert "the other 2 checked pair(s) follow the FX week" in msg
    assert "--tz EURUSD=ny-close or --tz EURUSD=Etc/GMT-3" in msg
    assert not (tmp_path / "s/bars").exists()  # nothing written
    rep = ingest(tmp_path / "src", tmp_path / "s", tz=["UTC", "EURUSD=ny-close"])  # the fix it names works
    assert rep.alignment["findings"] == [] and sorted(rep.pairs) == ["EURUSD", "GBPUSD", "USDJPY"]
    assert {s["offset_h"] for a in rep.alignment["pairs"].values() for s in a["seasons"].values()} == {0}


def test_the_cli_exits_2_with_the_offset_and_the_flag(tmp_path):
    three_vendor_dir(tmp_path / "src")
    env = {**os.environ, "COLUMNS": "200"}
    res = subprocess.run([sys.executable, "-m", "bqx", "ingest", str(tmp_path / "src"), "--store", str(tmp_path / "s"),
                          "--tz", "UTC"], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "EURUSD looks 3 h ahead of UTC" in res.stderr and "--tz EURUSD=Etc/GMT-3" in res.stderr
    res = subprocess.run([sys.executable, "-m", "bqx", "ingest", str(tmp_path / "src"), "--store", str(tmp_path / "s"),
                          "--tz", "UTC", "--policy", "repair"], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0 and "warning: EURUSD looks 3 h ahead of UTC" in res.stderr
    assert "(rule misaligned-time). Ingest it with --tz EURUSD=ny-close" in res.stderr.replace("\n", "")
    (tmp_path / "bqx.toml").write_text('[ingest.tz]\ndefault = "UTC"\nEURUSD = "Etc/GMT-3"\n')  # the fix, in bqx.toml
    res = subprocess.run([sys.executable, "-m", "bqx", "ingest", str(tmp_path / "src"), "--store", str(tmp_path / "s")],
                         capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "ingested" in res.stderr and "3 pair(s)" in res.stderr


def test_repair_warns_and_stores_the_bars_as_read(tmp_path):
    ts = three_vendor_dir(tmp_path / "src")
    rep = ingest(tmp_path / "src", tmp_path / "s", tz="UTC", policy="repair")
    warning = next(n for n in rep.lines() if n.startswith("warning:"))
    assert "EURUSD looks 3 h ahead of UTC" in warning and "(rule misaligned-time)" in warning and "--tz EURUSD=" in warning
    back = pl.read_parquet(tmp_path / "s/bars/pair=EURUSD/*/data.parquet")
    assert back["ts"][0] == ts["ts"][0] + timedelta(hours=3)  # stored as read
    assert rep.alignment["findings"][0]["pairs"] == ["EURUSD"]


def test_a_whole_directory_in_one_wrong_zone_is_named_as_a_set(tmp_path):
    ts = fx_minutes(*DST_SPAN)
    for i, p in enumerate(("EURUSD", "GBPUSD", "AUDUSD")):
        write_metatrader(tmp_path / f"src/{p}.csv", with_prices(ts, i), "ny-close")
    with pytest.raises(InputError) as err:
        ingest(tmp_path / "src", tmp_path / "s", tz="UTC")
    msg = str(err.value)
    assert "all 3 pairs being ingested (AUDUSD, EURUSD, GBPUSD)" in msg
    assert "2 h ahead (US winter) and 3 h ahead (US summer) of UTC" in msg
    assert "share one wrong zone" in msg and "Ingest them with --tz ny-close." in msg
    # compared with each other the pairs agree: only the FX week shows the offset
    res = check_alignment(read_source(tmp_path / "src", tz="UTC").bars, {p: "UTC" for p in ("EURUSD", "GBPUSD", "AUDUSD")})
    offsets = {p: a.offsets for p, a in res.pairs.items()}
    assert offsets["EURUSD"] == offsets["GBPUSD"] == offsets["AUDUSD"] == {"winter": 2, "summer": 3}
    assert ingest(tmp_path / "src", tmp_path / "s", tz="ny-close").alignment["findings"] == []


def test_est_fixed_histdata_across_dst_is_aligned(tmp_path):
    ts = fx_minutes(*DST_SPAN)
    write_histdata(tmp_path / "src/DAT_ASCII_EURGBP_M1_202403.csv", with_prices(ts, 4, 0.85))
    rep = ingest(tmp_path / "src", tmp_path / "s")
    seasons = rep.alignment["pairs"]["EURGBP"]["seasons"]
    assert seasons["winter"]["clean"] == 2 and seasons["summer"]["clean"] == 2
    assert {s["offset_h"] for s in seasons.values()} == {0} and rep.alignment["findings"] == []
    back = pl.read_parquet(tmp_path / "s/bars/pair=EURGBP/*/data.parquet")
    assert back["ts"].to_list() == ts["ts"].to_list()


def quiet(ts: pl.DataFrame, seed: int = 7) -> pl.DataFrame:
    """An illiquid pair: 85 % of the minutes gone from 21:00 to 03:00 UTC (the weekly open falls there), 3 % of
    the rest gone, and a six-hour outage before one Friday close."""
    rng = np.random.default_rng(seed)
    hour = ts["ts"].dt.hour().to_numpy()
    night = (hour >= 21) | (hour < 3)
    keep = np.where(night, rng.random(ts.height) > 0.85, rng.random(ts.height) > 0.03)
    out = ts.filter(pl.Series(keep))
    return out.filter(~pl.col("ts").is_between(pl.datetime(2024, 7, 12, 15, time_zone="UTC"),
                                               pl.datetime(2024, 7, 12, 21, time_zone="UTC"), closed="left"))


def test_a_quiet_pair_is_not_flagged(tmp_path):
    ts = fx_minutes(*SUMMER)
    thin = quiet(ts)
    assert 0.6 < thin.height / ts.height < 0.9
    write_dukascopy(tmp_path / "src/NZDCAD.csv", with_prices(thin, 5, 0.83))
    write_dukascopy(tmp_path / "src/EURUSD.csv", with_prices(ts, 6))
    rep = ingest(tmp_path / "src", tmp_path / "s")
    assert rep.alignment["findings"] == []
    w = weekend_offsets(thin.with_columns(pl.lit("NZDCAD").alias("pair")))
    assert w.height == 3 and w.filter(pl.col("clean"))["offset_h"].to_list() == [0] * w["clean"].sum()
    assert w["e_open"].max() > 0  # its weeks do open late: the check is not blind to its gaps...
    # ...and the same quiet pair three hours off is still caught
    write_metatrader(tmp_path / "src2/NZDCAD.csv", with_prices(thin, 5, 0.83), 3)
    with pytest.raises(InputError, match="NZDCAD looks 3 h ahead of UTC"):
        ingest(tmp_path / "src2", tmp_path / "s2", tz="UTC")


def test_a_store_pair_off_the_fx_week_is_named(tmp_path):
    ts = fx_minutes(*SUMMER)
    write_metatrader(tmp_path / "a/EURUSD.csv", with_prices(ts, 1), 3)
    ingest(tmp_path / "a", tmp_path / "s", tz="UTC", policy="repair")  # stored 3 h off, with a warning
    write_dukascopy(tmp_path / "b/GBPUSD.csv", with_prices(ts, 2, 1.27))
    with pytest.raises(InputError) as err:
        ingest(tmp_path / "b", tmp_path / "s")
    msg = str(err.value)
    assert "EURUSD, already in the store, looks 3 h ahead of UTC" in msg and "Re-ingest EURUSD's source with --tz EURUSD=" in msg
    rep = ingest(tmp_path / "a", tmp_path / "s", tz="EURUSD=Etc/GMT-3")  # re-ingesting it fixes the store
    assert rep.alignment["findings"] == []
    assert ingest(tmp_path / "b", tmp_path / "s").alignment["pairs"]["EURUSD"]["origin"] == "store"


def test_three_months_of_four_aligned_pairs_have_no_finding(sample):
    # its cost is measured by bench/alignment_cost.py, not here (docs/INGEST.md)
    bars = sample(("EURUSD", "GBPUSD", "USDJPY", "AUDUSD"), "2024-01", 3)
    res = check_alignment(bars, {p: "UTC" for p in bars["pair"].unique()})
    assert res.findings == [] and all(a.checked for a in res.pairs.values())
