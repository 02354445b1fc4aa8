"""Where an export goes: a local directory or an s3:// prefix, written one atomic file at a time.

Local files are written to a temporary name in the same directory, fsynced and renamed; S3
objects are atomic per put (an object appears only when its upload completes). Endpoint and
credentials for S3 come from arguments or the usual environment variables (AWS_ENDPOINT_URL,
AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION,
AWS_DEFAULT_REGION).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

import pyarrow as pa

from bqx.errors import UsageError
from bqx.io import TEMP_SUFFIX, atomic_write, clean_temp_files, write_parquet_to



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


class Destination:
    """Files under one root, addressed by relative POSIX paths."""

    url: str

    def write_bytes(self, rel: str, data: bytes) -> None:
        raise NotImplementedError

    def read_bytes(self, rel: str) -> bytes:
        raise NotImplementedError

    def exists(self, rel: str) -> bool:
        raise NotImplementedError

    def list_files(self, prefix: str = "") -> list[str]:
        """Relative paths of every file under `prefix` (temporary files excluded), sorted."""
        raise NotImplementedError

    def delete(self, rel: str) -> None:
        raise NotImplementedError

    def arrow(self) -> tuple[Any, str]:
        """(pyarrow filesystem, root path within it) for dataset readers."""
        raise NotImplementedError

    def join(self, rel: str) -> str:
        return f"{self.url.rstrip('/')}/{rel}"


class LocalDestination(Destination):
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser().absolute()
        self.url = str(self.root)

    def write_bytes(self, rel: str, data: bytes) -> None:
        atomic_write(self.root / rel, lambda fh: fh.write(data))

    def read_bytes(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def exists(self, rel: str) -> bool:
        return (self.root / rel).is_file()

    def list_files(self, prefix: str = "") -> list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in base.rglob("*")
                      if p.is_file() and not (p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX)))

    def delete(self, rel: str) -> None:
        path = self.root / rel
        path.unlink(missing_ok=True)
        parent = path.parent
        while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def clean_temp_files(self) -> int:
        """Remove temporary files a killed export left behind."""
        return clean_temp_files(self.root) if self.root.is_dir() else 0

    def arrow(self) -> tuple[Any, str]:
        from pyarrow import fs

        return fs.LocalFileSystem(), str(self.root)


class S3Destination(Destination):
    def __init__(self, url: str, options: S3Options | None = None):
        from pyarrow import fs

        parsed = urlparse(url)
        if not parsed.netloc:
            raise UsageError(f"{url!r} names no bucket", hint="Write s3://BUCKET/PREFIX.")
        self.url = url.rstrip("/")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.options = (options or S3Options()).resolved()
        kwargs: dict[str, Any] = {"region": self.options.region}
        if self.options.endpoint:
            ep = urlparse(self.options.endpoint if "://" in self.options.endpoint else f"https://{self.options.endpoint}")
            kwargs.update(endpoint_override=ep.netloc + ep.path.rstrip("/"), scheme=ep.scheme or "https")
        if self.options.access_key and self.options.secret_key:
            kwargs.update(access_key=self.options.access_key, secret_key=self.options.secret_key,
                          session_token=self.options.session_token)
        self.fs = fs.S3FileSystem(**kwargs)
        info = self.fs.get_file_info(self.bucket)
        if info.type == fs.FileType.NotFound:
            raise UsageError(f"S3 bucket {self.bucket!r} does not exist at {self.options.endpoint or 'AWS'}",
                             hint="Create the bucket first, or check --s3-endpoint / AWS_ENDPOINT_URL.")

    def _key(self, rel: str) -> str:
        return "/".join(p for p in (self.bucket, self.prefix, rel) if p)

    def write_bytes(self, rel: str, data: bytes) -> None:
        with self.fs.open_output_stream(self._key(rel)) as out:
            out.write(data)

    def read_bytes(self, rel: str) -> bytes:
        with self.fs.open_input_stream(self._key(rel)) as inp:
            return inp.read()

    def exists(self, rel: str) -> bool:
        from pyarrow import fs

        return self.fs.get_file_info(self._key(rel)).type == fs.FileType.File

    def list_files(self, prefix: str = "") -> list[str]:
        from pyarrow import fs

        base = self._key(prefix).rstrip("/")
        root = self._key("").rstrip("/")
        infos = self.fs.get_file_info(fs.FileSelector(base, recursive=True, allow_not_found=True))
        return sorted(i.path[len(root) + 1:] for i in infos if i.type == fs.FileType.File)

    def delete(self, rel: str) -> None:
        from pyarrow import fs

        key = self._key(rel)
        if self.fs.get_file_info(key).type == fs.FileType.File:
            self.fs.delete_file(key)

    def arrow(self) -> tuple[Any, str]:
        return self.fs, self._key("").rstrip("/")


def open_destination(to: str | os.PathLike[str], s3: S3Options | None = None) -> Destination:
    """A local directory or an s3:// prefix."""
    from bqx.connect.schemes import local_path, scheme_of

    text = str(to)
    if scheme_of(text) == "s3":
        return S3Destination(text, s3)
    if scheme_of(text) != "file":
        raise UsageError(f"unsupported destination {text!r}", hint="Give a local path or an s3:// URL.")
    return LocalDestination(local_path(text))
