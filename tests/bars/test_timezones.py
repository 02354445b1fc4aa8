"""Time zones per file and pair: named conventions, --tz PAIR=ZONE, [ingest.tz], and --pairs reading only its files."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
import pytest

from bqx.bars.ingest import ingest
from bqx.bars.readers import read_source
from bqx.bars.timezones import ZoneMap, suggest_zones, utc_offset_minutes
from bqx.config import load_config
from bqx.errors import ConfigError, InputError, UsageError

from fx_files import fx_minutes, with_prices, write_generic, write_histdata, write_metatrader

UTC = timezone.utc
DST_SPAN = ("2024-02-26", "2024-03-23")  # US daylight saving starts Sunday 2024-03-10


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_zone_map_from_flags_and_tables():
    z = ZoneMap.of(["UTC", "eur/usd=NY-Close", "GBPUSD=est-fixed,USDJPY=Etc/GMT-3"])
    assert z.default == "UTC" and dict(z.pairs) == {"EURUSD": "ny-close", "GBPUSD": "est-fixed", "USDJPY": "Etc/GMT-3"}
    assert (z.for_pair("EURUSD"), z.for_pair("AUDUSD"), z.for_pair(None)) == ("ny-close", "UTC", "UTC")
    assert ZoneMap.of({"default": "UTC", "EURUSD": "ny-close"}) == ZoneMap("UTC", {"EURUSD": "ny-close"})
    over = ZoneMap.of(["EURUSD=est-fixed"]).over(ZoneMap.of({"default": "UTC", "EURUSD": "ny-close", "GBPUSD": "UTC"}))
    assert over == ZoneMap("UTC", {"EURUSD": "est-fixed", "GBPUSD": "UTC"})
    with pytest.raises(UsageError, match="two default time zones"):
        ZoneMap.of(["UTC", "Europe/London"])
    with pytest.raises(UsageError, match="USDEUR"):
        ZoneMap.of(["USDEUR=UTC"])
    with pytest.raises(UsageError, match="unknown time zone 'ny_close'.*ny-close"):
        ZoneMap.of(["EURUSD=ny_close"])


def test_named_conventions_offsets_across_us_dst():
    winter, summer = utc(2024, 3, 8, 21, 0), utc(2024, 3, 15, 21, 0)
    assert (utc_offset_minutes("ny-close", winter), utc_offset_minutes("ny-close", summer)) == (120, 180)
    assert (utc_offset_minutes("est-fixed", winter), utc_offset_minutes("est-fixed", summer)) == (-300, -300)
    assert suggest_zones({"summer": 3}) == ["ny-close", "Etc/GMT-3"]
    assert suggest_zones({"winter": 2, "summer": 3}) == ["ny-close"]
    assert suggest_zones({"winter": 3, "summer": 3}) == ["Etc/GMT-3"]
    assert suggest_zones({"winter": -5, "summer": -5}) == ["est-fixed"]
    assert suggest_zones({"winter": -5, "summer": -4}) == ["America/New_York"]


def test_ny_close_metatrader_file_lands_at_the_right_utc(tmp_path):
    bars = with_prices(fx_minutes(*DST_SPAN))
    write_metatrader(tmp_path / "src/EURUSD.csv", bars, "ny-close")
    text = (tmp_path / "src/EURUSD.csv").read_text()
    # Friday 2024-03-08 16:59 New York (EST) is 23:59 broker time; Sunday 03-10 17:00 (EDT) is Monday 00:00
    assert "2024.03.08\t23:59:00" in text and "2024.03.11\t00:00:00" in text and "2024.03.09" not in text
    rep = ingest(tmp_path / "src", tmp_path / "s", tz=["UTC", "EURUSD=ny-close"])
    back = pl.read_parquet(tmp_path / "s/bars/pair=EURUSD/*/data.parquet")
    assert back["ts"].to_list() == bars["ts"].to_list()
    assert utc(2024, 3, 8, 21, 59) in back["ts"] and utc(2024, 3, 10, 21, 0) in back["ts"]  # 22:00 UTC close, 21:00 open
    assert rep.alignment["pairs"]["EURUSD"]["seasons"]["summer"]["offset_h"] == 0
    assert rep.alignment["findings"] == []


def test_est_fixed_is_utc_minus_5_on_both_sides_of_dst(tmp_path):
    bars = with_prices(fx_minutes(*DST_SPAN))
    write_metatrader(tmp_path / "mt/USDJPY.csv", bars.with_columns(pl.col("open", "high", "low", "close") * 140), "est-fixed")
    res = read_source(tmp_path / "mt", tz=["Europe/London", "USDJPY=est-fixed"])
    assert res.bars["ts"].to_list() == bars["ts"].to_list()
    assert res.zones == {"USDJPY": "est-fixed"}
    lines = (tmp_path / "mt/USDJPY.csv").read_text().splitlines()
    first_summer = next(ln for ln in lines if ln.startswith("2024.03.10\t"))
    assert first_summer.startswith("2024.03.10\t16:00:00")  # Sunday 17:00 New York (EDT) = 16:00 EST = 21:00 UTC
    # HistData files are est-fixed by definition: a bare --tz meant for other files leaves them alone
    write_histdata(tmp_path / "hd/DAT_ASCII_GBPUSD_M1_202403.csv", bars)
    hd = read_source(tmp_path / "hd", tz="Europe/London")
    assert hd.bars["ts"].to_list() == bars["ts"].to_list() and "not used" in hd.notes[0]
    # ...while a zone given for the pair itself overrides the format's
    shifted = read_source(tmp_path / "hd", tz="GBPUSD=UTC")
    assert shifted.bars["ts"][0] == bars["ts"][0] - (utc(2024, 1, 1, 5) - utc(2024, 1, 1))


def test_generic_file_with_a_pair_column_reads_each_pair_in_its_zone(tmp_path):
    bars = with_prices(fx_minutes("2024-07-01", "2024-07-03"))
    a = pl.read_csv(write_generic(tmp_path / "a.csv", bars, "ny-close", pair="EURUSD"), infer_schema=False)
    b = pl.read_csv(write_generic(tmp_path / "b.csv", bars, 0, pair="GBPUSD"), infer_schema=False)
    (tmp_path / "d").mkdir()
    pl.concat([a, b]).write_csv(tmp_path / "d/long.csv")
    res = read_source(tmp_path / "d", tz={"default": "UTC", "EURUSD": "ny-close"})
    for p in ("EURUSD", "GBPUSD"):
        assert res.bars.filter(pl.col("pair") == p)["ts"].to_list() == bars["ts"].to_list()
    with pytest.raises(InputError) as err:  # no default: GBPUSD's naive times have no zone
        read_source(tmp_path / "d", tz={"EURUSD": "ny-close"})
    assert err.value.rule == "naive-timestamp" and err.value.line == a.height + 2  # the first GBPUSD row


def test_pairs_reads_only_those_pairs_files(tmp_path):
    bars = with_prices(fx_minutes("2024-07-01", "2024-07-02"))
    write_metatrader(tmp_path / "src/EURUSD.csv", bars, 3)
    (tmp_path / "src/GBPUSD.csv").write_bytes(b"\x00\x01 not a bar file")
    write_metatrader(tmp_path / "src/sub/USDJPY_M1.csv", bars, 3).write_text("2024.07.01,xx:yy,1,2\n")
    rep = ingest(tmp_path / "src", tmp_path / "s", tz="Etc/GMT-3", pairs=["EURUSD"])
    assert sorted(rep.pairs) == ["EURUSD"] and rep.rows_in == rep.rows_out == bars.height
    assert sorted(p.rsplit("/", 1)[1] for p in rep.skipped_files) == ["GBPUSD.csv", "USDJPY_M1.csv"]
    assert "did not read 2 file(s) of pairs not asked for" in rep.lines()
    with pytest.raises(InputError, match="nothing to ingest.*3 files of other pairs not read"):
        ingest(tmp_path / "src", tmp_path / "s3", tz="Etc/GMT-3", pairs=["AUDUSD"])
    with pytest.raises(InputError) as err:  # without --pairs the broken file is read, and stops a strict ingest
        ingest(tmp_path / "src", tmp_path / "s2", tz="Etc/GMT-3")
    assert "GBPUSD.csv" in str(err.value)


def test_ingest_tz_table_in_bqx_toml_and_environment(tmp_path):
    (tmp_path / "bqx.toml").write_text('[ingest.tz]\ndefault = "UTC"\nEURUSD = "ny-close"\n"gbp/usd" = "est-fixed"\n')
    cfg, origins = load_config(environ={}, cwd=tmp_path)
    assert cfg.ingest.tz == {"default": "UTC", "EURUSD": "ny-close", "GBPUSD": "est-fixed"}
    assert origins["ingest"].endswith("bqx.toml")
    cfg, origins = load_config(environ={"BQX_INGEST__TZ__USDJPY": "Etc/GMT-3"}, cwd=tmp_path)
    assert cfg.ingest.tz["USDJPY"] == "Etc/GMT-3" and cfg.ingest.tz["EURUSD"] == "ny-close"
    assert origins["ingest.tz.usdjpy"] == "environment"
    cfg, _ = load_config(environ={}, cwd=tmp_path, flags={})
    assert ZoneMap.of(["EURUSD=UTC"]).over(ZoneMap.of(cfg.ingest.tz)).for_pair("EURUSD") == "UTC"  # the flag wins
    (tmp_path / "bqx.toml").write_text('[ingest]\ntz = "ny-close"\n')
    assert load_config(environ={}, cwd=tmp_path)[0].ingest.tz == {"default": "ny-close"}
    (tmp_path / "bqx.toml").write_text('[ingest.tz]\nEURUSD = "Mars/Olympus"\n')
    with pytest.raises(ConfigError, match=r"ingest.tz .*Mars/Olympus"):
        load_config(environ={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="BQX_INGEST__ takes TZ"):
        load_config(environ={"BQX_INGEST__TX": "UTC"}, cwd=tmp_path)


def test_config_and_readers_accept_the_same_zones(tmp_path):
    from bqx.bars.timezones import NAMED, check_zone
    from bqx.config import ZONE_NAMES, IngestConfig

    assert set(ZONE_NAMES) == set(NAMED)  # config.py may not import bars/: the two lists are kept equal here
    for zone in ["UTC", "gmt", "+03:00", "UTC-5", "Etc/GMT-3", "Europe/London", "NY-Close", "est-fixed"]:
        assert IngestConfig(tz={"EURUSD": zone}).tz == {"EURUSD": check_zone(zone)}
    for zone in ["Mars/Olympus", "ny_close", "+3h"]:
        with pytest.raises(UsageError):
            check_zone(zone)
        with pytest.raises(ValueError):
            IngestConfig(tz={"EURUSD": zone})
