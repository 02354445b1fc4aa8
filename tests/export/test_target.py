"""Export targets are safe: a lock, no file deleted that no export wrote, --overwrite for a finished export
(local directories and s3:// on a moto server on loopback)."""

from __future__ import annotations

import json
import time

import pytest

from bqx.export import export, open_destination, read_export_metadata
from bqx.export.target import S3_LOCK, ExportTargetError, target_lock

SMALL = dict(families=["rate_index"], embargo=100, no_validate=True)


def test_a_users_features_and_metadata_folders_are_never_deleted(store, tmp_path):
    dest = tmp_path / "mine"
    for rel in ("features/notes.md", "metadata/own.json"):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text("keep me")
    with pytest.raises(ExportTargetError, match=r"holds 2 file\(s\) no bqx export recorded writing: features/notes.md"):
        export(store, str(dest), **SMALL)
    assert sorted(p.name for p in dest.rglob("*") if p.is_file() and p.name[0] != ".") == ["notes.md", "own.json"]


def test_overwrite_replaces_only_what_the_export_recorded(store, tmp_path):
    dest = tmp_path / "x"
    first = export(store, str(dest), **SMALL)
    with pytest.raises(ExportTargetError, match="holds a finished export") as err:
        export(store, str(dest), **SMALL)
    assert "--overwrite" in str(err.value)
    second = export(store, str(dest), pairs=["EURUSD"], overwrite=True, **SMALL)
    meta = read_export_metadata(str(dest))
    assert meta["export_id"] == second.export_id != first.export_id
    files = sorted(p.relative_to(dest).as_posix() for p in (dest / "features").rglob("*.parquet"))
    assert files == sorted(e["path"] for e in meta["file_list"]) and all("EURUSD" in f for f in files)
    assert not (dest / "metadata" / "claims.json").exists()


def test_a_second_export_to_a_locked_local_target_is_refused(store, tmp_path):
    dest = open_destination(str(tmp_path / "x"))
    with target_lock(dest):
        with pytest.raises(ExportTargetError, match=r"is being written by another export \(pid \d+"):
            export(store, str(tmp_path / "x"), **SMALL)
    export(store, str(tmp_path / "x"), **SMALL)  # released: it goes ahead
    assert read_export_metadata(str(tmp_path / "x"))["pairs"] == ["EURUSD", "USDJPY"]


def test_s3_lock_overwrite_and_foreign_objects(store, s3_env):
    url = "s3://bqx/target-safety"
    dest = open_destination(url)
    dest.write_bytes("features/README.txt", b"a user's object")
    with pytest.raises(ExportTargetError, match="no bqx export recorded writing: features/README.txt"):
        export(store, url, **SMALL)
    dest.delete("features/README.txt")
    export(store, url, **SMALL)
    assert not dest.exists(S3_LOCK), "the lock object is removed when the export ends"
    with pytest.raises(ExportTargetError, match="holds a finished export"):
        export(store, url, **SMALL)
    dest.write_bytes(S3_LOCK, json.dumps({"id": "other", "pid": 4242, "host": "elsewhere",
                                          "updated": time.time()}).encode())
    with pytest.raises(ExportTargetError, match="being written by another export .pid 4242 on elsewhere"):
        export(store, url, overwrite=True, **SMALL)
    dest.write_bytes(S3_LOCK, json.dumps({"id": "other", "pid": 4242, "updated": time.time() - 3600}).encode())
    again = export(store, url, overwrite=True, **SMALL)  # a lock not refreshed for an hour is taken over
    assert read_export_metadata(url)["export_id"] == again.export_id and not dest.exists(S3_LOCK)


def test_s3_lock_is_one_conditional_write_so_of_two_exports_exactly_one_gets_it(s3_env):
    """Both try at once (a barrier): If-None-Match lets one create the lock; the other stops naming it. Both
    taking over one stale lock: If-Match the stale lock's ETag lets one of them in."""
    import threading

    from bqx.export.target import _take_object_lock

    dest = open_destination("s3://bqx/lock-race")
    barrier = threading.Barrier(2)
    outcome: dict[str, str] = {}

    def take(name: str) -> None:
        barrier.wait()
        try:
            _take_object_lock(dest, {"id": name, "pid": 1, "host": name})
            outcome[name] = "got"
        except ExportTargetError as exc:
            outcome[name] = str(exc)

    for round_ in ("fresh", "stale"):
        if round_ == "stale":
            dest.write_bytes(S3_LOCK, json.dumps({"id": "dead", "pid": 9, "updated": time.time() - 3600}).encode())
        outcome.clear()
        threads = [threading.Thread(target=take, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(v == "got" for v in outcome.values()) == [False, True], (round_, outcome)
        winner = next(n for n, v in outcome.items() if v == "got")
        loser = next(v for v in outcome.values() if v != "got")
        assert "being written by another export" in loser and f"on {winner}" in loser
        assert json.loads(dest.read_bytes(S3_LOCK))["id"] == winner
        dest.delete(S3_LOCK)


def test_an_s3_lock_taken_over_is_known_to_its_old_holder(s3_env):
    from bqx.export.target import _ID, still_mine

    dest = open_destination("s3://bqx/lock-lost")
    with target_lock(dest):
        assert still_mine(dest)
        dest.write_bytes(S3_LOCK, json.dumps({"id": "other", "pid": 4242, "updated": time.time()}).encode())
        assert not still_mine(dest)  # the exporter checks this before its completion marker
    assert json.loads(dest.read_bytes(S3_LOCK))["id"] == "other" != _ID  # not deleted: it is the other export's
