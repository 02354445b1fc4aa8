"""Where an export goes: a local directory or an s3:// prefix, written one atomic file at a time.

The files are written through the store's backends (bqx.store.backend), the one implementation of a
local directory and an s3:// prefix: local files go to a temporary name in the same directory, fsynced
and renamed; S3 objects are atomic per put (an object appears only when its upload completes).
Endpoint and credentials for S3 come from arguments (`S3Options`: --s3-endpoint, --s3-region) or the
usual environment variables and AWS files (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_DEFAULT_REGION, ~/.aws, AWS_PROFILE).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Mapping

import pyarrow as pa

from bqx.errors import UsageError
from bqx.io import clean_temp_files, write_parquet_to
from bqx.store.backend import Backend, LocalBackend, S3Backend


def parquet_bytes(table: pa.Table) -> bytes:
    """Parquet with the store's pinned options (bqx.io): zstd, no dictionary for floats, 100,000-row groups."""
    buf = io.BytesIO()
    write_parquet_to(table, buf)
    return buf.getvalue()


@dataclass(frozen=True)
class S3Options:
    """Connection settings for s3:// destinations; unset fields fall back to the environment."""

    endpoint: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None

    def resolved(self, environ: Mapping[str, str] | None = None) -> "S3Options":
        env = os.environ if environ is None else environ
        return S3Options(
            endpoint=self.endpoint or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"),
            region=self.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            access_key=self.access_key or env.get("AWS_ACCESS_KEY_ID"),
            secret_key=self.secret_key or env.get("AWS_SECRET_ACCESS_KEY"),
            session_token=self.session_token or env.get("AWS_SESSION_TOKEN"),
        )


# One implementation of files under a root: the store's backends (bqx.store.backend). A Destination is
# a Backend; the export's classes add only what is the export's own (its options, removing temporary files).
Destination = Backend


class LocalDestination(LocalBackend):
    """A local directory."""

    def clean_temp_files(self) -> int:
        """Remove temporary files a killed export left behind."""
        return clean_temp_files(self.root) if self.root.is_dir() else 0


class S3Destination(S3Backend):
    """An s3:// prefix; `options` (--s3-endpoint, --s3-region, keys) override the environment's settings."""

    def __init__(self, url: str, options: S3Options | None = None):
        self.options = (options or S3Options()).resolved()
        o = self.options
        keys = (o.access_key, o.secret_key, o.session_token) if o.access_key and o.secret_key else None
        super().__init__(url, endpoint=o.endpoint, region=o.region, credentials=keys)
        self.check_bucket()


def open_destination(to: str | os.PathLike[str], s3: S3Options | None = None) -> Destination:
    """A local directory or an s3:// prefix."""
    from bqx.connect.schemes import local_path, scheme_of

    text = str(to)
    if scheme_of(text) == "s3":
        return S3Destination(text, s3)
    if scheme_of(text) != "file":
        raise UsageError(f"unsupported destination {text!r}", hint="Give a local path or an s3:// URL.")
    return LocalDestination(local_path(text))
