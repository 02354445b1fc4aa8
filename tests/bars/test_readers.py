from __future__ import annotations

import importlib.resources
from datetime import datetime, timezone

import polars as pl
import pytest

from bqx.bars.readers import read_bars, read_source
from bqx.bars.readers._common import pair_from_name, side_from_name
from bqx.bar_schema import BAR_COLUMNS
from bqx.errors import InputError, UsageError

from bars_fixtures import sample_text

UTC = timezone.utc
GYM = importlib.resources.files("gym_anytrading") / "datasets/data/FOREX_EURUSD_1H_ASK.csv"


def test_histdata_is_bid_in_fixed_est(write):
    path = write("DAT_ASCII_EURUSD_M1_2024.csv", "20240701 000000;1.07123;1.07130;1.07100;1.07120;0\n"
                                                  "20240701 000100;1.07120;1.07140;1.07110;1.07135;0\n")
    res = read_source(path)
    bars = res.bars
    assert bars.columns == ["pair", *BAR_COLUMNS]
    # 00:00 EST (UTC-5, no DST even in July) = 05:00 UTC
    assert bars["ts"].to_list() == [datetime(2024, 7, 1, 5, 0, tzinfo=UTC), datetime(2024, 7, 1, 5, 1, tzinfo=UTC)]
    assert bars["bid_close"].to_list() == bars["close"].to_list() == [1.07120, 1.07135]
    assert bars["ask_close"].null_count() == 2
    src = res.sources["EURUSD"]
    assert (src.basis, src.has_volume, src.has_bidask) == ("bid", False, False)


def test_dukascopy_bid_and_ask_files_merge_into_mid(write, tmp_path):
    head = "Gmt time,Open,High,Low,Close,Volume\n"
    write("d/EURUSD_Candlestick_1_M_BID_01.07.2024-31.07.2024.csv",
          head + "01.07.2024 00:00:00.000,1.0710,1.0720,1.0700,1.0715,12.5\n01.07.2024 00:01:00.000,1.0715,1.0716,1.0714,1.0714,3\n")
    write("d/EURUSD_Candlestick_1_M_ASK_01.07.2024-31.07.2024.csv",
          head + "01.07.2024 00:00:00.000,1.0712,1.0722,1.0702,1.0717,11\n01.07.2024 00:01:00.000,1.0717,1.0718,1.0716,1.0716,3\n")
    res = read_source(tmp_path / "d")
    b = res.bars
    assert b["ts"][0] == datetime(2024, 7, 1, 0, 0, tzinfo=UTC)
    assert b["open"][0] == pytest.approx((1.0710 + 1.0712) / 2)
    assert b["high"][0] == pytest.approx((1.0720 + 1.0722) / 2)
    assert b["bid_low"][0] == 1.0700 and b["ask_low"][0] == 1.0702
    assert b["volume"][0] == 12.5  # the bid file's volume
    src = res.sources["EURUSD"]
    assert (src.basis, src.has_volume, src.has_bidask) == ("mid", True, True)


def test_dukascopy_local_time_with_offset(write):
    path = write("GBPUSD_BID.csv", "Local time,Open,High,Low,Close,Volume\n"
                                   "01.07.2024 02:00:00.000 GMT+0200,1.26,1.27,1.25,1.26,1\n")
    bars = read_bars(path)
    assert bars["ts"][0] == datetime(2024, 7, 1, 0, 0, tzinfo=UTC)  # 02:00 at +02:00


def test_gym_anytrading_hourly_ask_file():
    with pytest.raises(InputError) as err:
        read_bars(str(GYM))  # header "Time": the zone is not stated, so --tz is required
    assert err.value.rule == "naive-timestamp" and err.value.line == 2
    res = read_source(str(GYM), tz="UTC")
    b = res.bars
    assert b.height == 6225  # 6226 physical lines minus the header
    assert b["ts"][0] == datetime(2017, 1, 1, 22, 0, tzinfo=UTC)
    assert (b["ts"][1] - b["ts"][0]).total_seconds() == 3600  # hourly, read as it is
    assert b["open"][0] == 1.05236 and b["ask_open"][0] == 1.05236 and b["bid_open"].null_count() == b.height
    src = res.sources["EURUSD"]
    assert (src.basis, src.has_volume, src.has_bidask) == ("ask", True, False)
    assert res.quarantine.height == 0


@pytest.mark.parametrize("header", ["", "<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<TICKVOL>\n", "Date,Time,Open,High,Low,Close,Volume\n"])
def test_metatrader_with_declared_zone(write, header):
    path = write("USDJPY.csv", header + "2024.07.01,00:00,161.001,161.100,160.900,161.050,57\n"
                                        "2024.07.01,00:01,161.050,161.060,161.000,161.010,12\n")
    with pytest.raises(InputError) as err:
        read_bars(path)
    assert err.value.rule == "naive-timestamp"
    res = read_source(path, tz="Europe/London")
    # 00:00 BST (UTC+1 in July) = 23:00 UTC the day before
    assert res.bars["ts"][0] == datetime(2024, 6, 30, 23, 0, tzinfo=UTC)
    assert res.bars["volume"].to_list() == [57.0, 12.0]
    assert res.sources["USDJPY"].basis == "bid"
    assert read_bars(path, tz="+03:00")["ts"][0] == datetime(2024, 6, 30, 21, 0, tzinfo=UTC)


def test_metatrader_tab_separated_mt5(write):
    path = write("EURUSD.csv", "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
                               "2024.07.01\t00:00:00\t1.07123\t1.07130\t1.07100\t1.07120\t57\t0\t3\n")
    bars = read_bars(path, tz="UTC")
    assert bars["close"][0] == 1.07120 and bars["volume"][0] == 57


def test_generic_sample_dialect_needs_no_map(write):
    path = write("EURUSD.csv", sample_text(3))
    res = read_source(path)
    b = res.bars
    assert b.height == 3 and b["ts"][2] == datetime(2024, 7, 1, 0, 2, tzinfo=UTC)
    assert b["bid_open"][0] == 1.0999 and b["ask_open"][0] == 1.1001
    assert (res.sources["EURUSD"].basis, res.sources["EURUSD"].has_bidask) == ("mid", True)


def test_generic_with_column_map_and_parquet(write, tmp_path):
    path = write("x/AUDUSD.csv", "Time,O,Hi,Lo,Close\n2024-07-01 00:00:00+00:00,0.66,0.67,0.65,0.665\n")
    m = {"ts": "Time", "open": "O", "high": "Hi", "low": "Lo", "close": "Close"}
    bars = read_bars(path, column_map=m)
    assert bars["high"][0] == 0.67 and bars["volume"][0] == 0.0
    with pytest.raises(UsageError):
        read_bars(path, column_map={"closing": "Close"})
    pq = tmp_path / "EURUSD.parquet"
    read_bars(write("y/EURUSD.csv", sample_text(4))).drop("pair").write_parquet(pq)
    again = read_bars(pq)
    assert again.drop("pair").equals(read_bars(tmp_path / "y/EURUSD.csv").drop("pair"))


def test_directory_of_pairs_and_pair_column(write, tmp_path):
    write("d/EURUSD_2024.csv", sample_text(2))
    write("d/GBPUSD.csv", sample_text(2))
    write("d/readme.txt", "not data")
    long = sample_text(2).replace("ts,", "pair,ts,", 1).splitlines()
    long = [long[0]] + ["USDJPY," + long[1].replace("1.1", "150.1"), "NZDUSD," + long[2]]
    write("d/more/long.csv", "\n".join(long) + "\n")
    res = read_source(tmp_path / "d", policy="repair")
    assert sorted(res.bars["pair"].unique()) == ["EURUSD", "GBPUSD", "NZDUSD", "USDJPY"]
    assert res.ignored_files and res.ignored_files[0].endswith("readme.txt")
    only = read_source(tmp_path / "d", pairs=["eurusd", "NZD/USD"])
    assert sorted(only.bars["pair"].unique()) == ["EURUSD", "NZDUSD"]
    assert only.rows_in == only.rows_out + only.rows_skipped  # 2+2 in, 3 out, 1 skipped (the long file's USDJPY row)
    assert (only.rows_in, only.rows_skipped) == (4, 1) and [p.rsplit("/", 1)[1] for p in only.skipped_files] == ["GBPUSD.csv"]


def test_pair_and_side_from_file_names(tmp_path):
    from pathlib import Path
    assert pair_from_name(Path("DAT_ASCII_EURUSD_M1_2024.csv")) == "EURUSD"
    assert pair_from_name(Path("EURUSD_Candlestick_1_M_BID_01.07.2024-31.07.2024.csv")) == "EURUSD"
    assert pair_from_name(Path("eur_usd.csv")) == "EURUSD"
    assert pair_from_name(Path("USDEUR.csv")) is None
    assert side_from_name(Path("FOREX_EURUSD_1H_ASK.csv")) == "ask"


def test_unknown_format_and_unknown_tz(write):
    path = write("EURUSD.csv", "hello world\nfoo bar\n")
    with pytest.raises(InputError) as err:
        read_bars(path)
    assert err.value.rule == "unknown-format" and "--format" in str(err.value)
    with pytest.raises(UsageError):
        read_bars(path, tz="Mars/Olympus")
    with pytest.raises(UsageError):
        read_bars(path, fmt="excel")
