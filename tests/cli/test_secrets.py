"""No secrets at rest: a PostgreSQL URL carrying a password (user:pw@host or ?password=) is refused with the
PGPASSWORD/.pgpass hint, and the password is never printed, logged or stored."""

from __future__ import annotations

import pytest

from bqx.bars.readers.postgres import check_url, mask_url
from bqx.errors import UsageError
from tests.cli.conftest import bqx, one_line_error

SECRET = "Sekr1tPw"
URLS = [f"postgresql://bqx@localhost:5432/bqx?password={SECRET}",
        f"postgresql://bqx@localhost/bqx?sslmode=disable&PASSWORD={SECRET}",
        f"postgres://bqx:{SECRET}@localhost/bqx"]


def _nowhere(root) -> None:
    """The secret is in no file under `root` (pairs.json, postgres_months.json, logs, manifest, reports...)."""
    for path in root.rglob("*") if root.exists() else []:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("url", URLS)
def test_mask_and_refuse(url):
    assert SECRET not in mask_url(url) and "***" in mask_url(url)
    with pytest.raises(UsageError, match="carries a password") as err:
        check_url(url)
    assert SECRET not in str(err.value) and "PGPASSWORD" in str(err.value) and ".pgpass" in str(err.value)


@pytest.mark.parametrize("url", URLS[:2])
def test_every_entry_refuses_a_password_and_stores_nothing(url, store_copy, tmp_path):
    attempts = [
        ["ingest", url, "--store", str(store_copy)],
        ["run", "--store", str(store_copy), "--source", url],
        ["live", "--store", str(store_copy), "--source", url],
        ["export", "--store", str(store_copy), "--to", url, "--no-validate"],
    ]
    for args in attempts:
        res = bqx(*args, cwd=tmp_path)
        assert res.returncode == 2, (args, res.stderr)
        line = one_line_error(res)
        assert "carries a password" in line and "PGPASSWORD" in line, line
        assert SECRET not in res.stdout + res.stderr
    (tmp_path / "bqx.toml").write_text(f'source = "{url}"\n')
    for args, env in ((["config", "show"], None), (["status"], None), (["config", "show"], {"BQX_SOURCE": url})):
        if env:
            (tmp_path / "bqx.toml").unlink()
        res = bqx(*args, cwd=tmp_path, env=env)
        assert res.returncode == 2 and SECRET not in res.stdout + res.stderr
        assert "PGPASSWORD" in one_line_error(res)
    report = bqx("report", "--store", str(store_copy), "--out", str(tmp_path / "report.html"))
    assert report.returncode == 0, report.stderr
    _nowhere(store_copy)
    _nowhere(tmp_path)
