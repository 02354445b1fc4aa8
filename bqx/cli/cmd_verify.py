"""`bqx verify`: re-hash the store's files and name any whose content is not what was written."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bqx.store.backend import store_exists
from bqx.cli.common import ConfigOpt, JsonOpt, StoreOpt, config_from, emit_json, info, out, split_list


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify_cmd(
        store: Optional[str] = StoreOpt,
        config: Optional[Path] = ConfigOpt,
        pairs: Optional[list[str]] = typer.Option(None, "--pairs", help="Only these pairs' files (and every cross-pair file)."),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Hashing threads (default: up to 4)."),
        json_: bool = JsonOpt,
    ) -> None:
        """Re-hash every file the manifest records (CRC-32 per task file, SHA-256 per bars month) and name each one whose content changed (exit 1)."""
        from bqx.errors import UsageError
        from bqx.store.checksum import StoreIntegrityError
        from bqx.engine.verify import verify_store

        cfg, _ = config_from(config, store=store, pairs=split_list(pairs))
        if not store_exists(cfg.store):
            raise UsageError(f"no store at {cfg.store}", hint="Run `bqx run` first, or pass --store DIR.")
        result = verify_store(cfg.store, pairs=list(cfg.pairs) if cfg.pairs else None, workers=workers)
        if json_:
            emit_json(result.to_dict())
        else:
            for f in result.findings:
                out.print(f"  {f.line()}", markup=False)
        if result.ok:
            if not json_:
                info(f"{result.files} files ({result.bytes / 1e6:,.0f} MB) match their recorded checksums "
                     f"({result.seconds:.1f} s)")
            return
        derived = [f for f in result.findings if f.owner[0] != "bars"]
        todo = ["`bqx run --verify` recomputes the derived files"] if derived else []
        if len(derived) < len(result.findings):
            todo.append("bars files must be restored or re-ingested (bqx ingest)")
        raise StoreIntegrityError(
            f"{len(result.findings)} of {result.files} files in store {cfg.store} fail verification, e.g. "
            f"{result.findings[0].line()}", hint="; ".join(todo) + ".")
