"""Where a store's (or an export's) files live: one backend per URL scheme, addressed by relative POSIX paths.

`backend_for(root)` gives the backend of a local directory (a path or `file://`) or an `s3://bucket/prefix`
URL; `register_backend(scheme, factory)` adds one. Every store file is read and written through it, so
the engine, validate, export, live and the report work the same on either.

A backend writes every file atomically: a local file through a temporary name, fsync and rename
(bqx.io); an S3 object with one PUT (an object appears only when its upload completes; no multipart).
A file's *stamp* tells whether it changed since it was recorded: the local file's mtime in ns, the S3
object's ETag. With its size it is what the manifest records per output (the contents: the CRC-32).

S3 connection settings come only from the environment or the usual AWS files (AWS_ENDPOINT_URL[_S3],
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION / AWS_DEFAULT_REGION,
~/.aws/credentials, AWS_PROFILE); nothing about them is ever written into a store.
"""

from __future__ import annotations

import io
import os
import threading
import zlib
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Mapping
from urllib.parse import urlparse

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from bqx.connect.schemes import Registry, local_path, scheme_of
from bqx.errors import UsageError
from bqx.io import TEMP_SUFFIX, atomic_write, write_parquet_to

Stamp = tuple[int, Any]  # (size in bytes, mtime_ns for a local file / ETag for an S3 object)
CRC = "crc32:"  # the prefix of a recorded checksum


class Backend:
    """Files under one root, addressed by relative POSIX paths; every write is atomic."""

    url: str
    scheme: str = ""
    is_local: bool = False

    # -- bytes -------------------------------------------------------------------------------------
    def read_bytes(self, rel: str) -> bytes:
        raise NotImplementedError

    def write_bytes(self, rel: str, data: bytes) -> Stamp:
        raise NotImplementedError

    def write_with(self, rel: str, write: Callable[[IO[bytes]], Any]) -> Stamp:
        """Write through `write(fh)` (a binary file object), atomically; returns (size, stamp)."""
        buf = io.BytesIO()
        write(buf)
        return self.write_bytes(rel, buf.getvalue())

    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode()

    def write_text(self, rel: str, text: str) -> Stamp:
        return self.write_bytes(rel, text.encode())

    # -- what is there -----------------------------------------------------------------------------
    def stat(self, rel: str) -> Stamp | None:
        """(size, stamp) of one file, None when it does not exist."""
        raise NotImplementedError

    def stats(self, prefix: str = "") -> dict[str, Stamp]:
        """rel -> (size, stamp) of every file under `prefix` (temporary files excluded), in one listing."""
        raise NotImplementedError

    def exists(self, rel: str) -> bool:
        return self.stat(rel) is not None

    def is_there(self) -> bool:
        """Whether the root holds anything (a store or an export has been written here)."""
        raise NotImplementedError

    def list_files(self, prefix: str = "") -> list[str]:
        """Relative paths of every file under `prefix` (temporary files excluded), sorted."""
        return sorted(self.stats(prefix))

    def delete(self, rel: str) -> None:
        raise NotImplementedError

    # -- Parquet -----------------------------------------------------------------------------------
    def write_parquet(self, rel: str, frame: pl.DataFrame | pa.Table) -> tuple[int, Any, str]:
        """Write Parquet with the pinned options (bqx.io) atomically; returns (size, stamp, "crc32:…").

        The CRC-32 is taken from the bytes on their way out, so it costs no second read.
        """
        box: list[_Checksummed] = []

        def write(fh: Any) -> None:
            box.append(_Checksummed(fh))
            write_parquet_to(frame, box[0])

        size, stamp = self.write_with(rel, write)
        return size, stamp, f"{CRC}{box[0].crc:08x}"

    def read_parquet(self, rel: str, columns: list[str] | None = None) -> pl.DataFrame:
        return pl.read_parquet(io.BytesIO(self.read_bytes(rel)), columns=columns)

    def read_rows(self, rel: str, first: int, stop: int, columns: list[str] | None = None) -> pl.DataFrame:
        """Rows [first, stop) of a Parquet file (the columns given, or all)."""
        return self.read_parquet(rel, columns).slice(first, stop - first)

    def parquet_metadata(self, rel: str) -> pq.FileMetaData:
        return pq.read_metadata(io.BytesIO(self.read_bytes(rel)))

    def scan_parquet(self, rel: str) -> pl.LazyFrame:
        """A lazy frame over one Parquet file: only the columns and row groups a query needs are fetched
        (through the pyarrow filesystem of `arrow()`)."""
        from pyarrow import dataset as ds

        fs, root = self.arrow()
        return pl.scan_pyarrow_dataset(ds.dataset(f"{root}/{rel}", filesystem=fs, format="parquet"))

    def crc32(self, rel: str) -> str:
        """The CRC-32 of a file's bytes as recorded ("crc32:xxxxxxxx")."""
        return f"{CRC}{zlib.crc32(self.read_bytes(rel)):08x}"

    # -- for dataset readers -----------------------------------------------------------------------
    def arrow(self) -> tuple[Any, str]:
        """(pyarrow filesystem, root path within it)."""
        raise NotImplementedError

    def join(self, rel: str) -> str:
        """The file's full name (a local path or an s3:// URL), for messages and outside readers."""
        return f"{self.url.rstrip('/')}/{rel}" if rel else self.url

    def local_path(self, rel: str = "") -> Path:
        """The local file (local backends only)."""
        raise UsageError(f"{self.url} is not a local directory")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class _Checksummed(io.RawIOBase):
    """A write-only file that passes every byte on to `fh` and keeps their CRC-32."""

    def __init__(self, fh: Any):
        self.fh, self.crc, self.size = fh, 0, 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data) if not isinstance(data, memoryview) else data.nbytes
        return self.fh.write(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.fh.flush()


class LocalBackend(Backend):
    """A local directory."""

    scheme = "file"
    is_local = True

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser().absolute()
        self.url = str(self.root)

    def local_path(self, rel: str = "") -> Path:
        return self.root / rel if rel else self.root

    def is_there(self) -> bool:
        return self.root.exists()

    def read_bytes(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def write_bytes(self, rel: str, data: bytes) -> Stamp:
        return atomic_write(self.root / rel, lambda fh: fh.write(data))

    def write_with(self, rel: str, write: Callable[[IO[bytes]], Any]) -> Stamp:
        return atomic_write(self.root / rel, write)

    def stat(self, rel: str) -> Stamp | None:
        try:
            st = os.stat(self.root / rel)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return (st.st_size, st.st_mtime_ns) if not _is_dir(st) else None

    def stats(self, prefix: str = "") -> dict[str, Stamp]:
        base = self.root / prefix if prefix else self.root
        out: dict[str, Stamp] = {}
        if not base.is_dir():
            return out
        for path, st in _walk(base):
            if not (path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)):
                out[path.relative_to(self.root).as_posix()] = (st.st_size, st.st_mtime_ns)
        return out

    def exists(self, rel: str) -> bool:
        return (self.root / rel).is_file()

    def delete(self, rel: str) -> None:
        path = self.root / rel
        path.unlink(missing_ok=True)
        parent = path.parent
        while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def read_parquet(self, rel: str, columns: list[str] | None = None) -> pl.DataFrame:
        return pl.read_parquet(self.root / rel, columns=columns)

    def read_rows(self, rel: str, first: int, stop: int, columns: list[str] | None = None) -> pl.DataFrame:
        return pl.scan_parquet(self.root / rel).select(columns or pl.all()).slice(first, stop - first).collect()

    def parquet_metadata(self, rel: str) -> pq.FileMetaData:
        return pq.read_metadata(self.root / rel)

    def scan_parquet(self, rel: str) -> pl.LazyFrame:
        return pl.scan_parquet(self.root / rel)

    def crc32(self, rel: str) -> str:
        crc = 0
        with open(self.root / rel, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                crc = zlib.crc32(chunk, crc)
        return f"{CRC}{crc:08x}"

    def arrow(self) -> tuple[Any, str]:
        from pyarrow import fs

        return fs.LocalFileSystem(), str(self.root)


def _is_dir(st: os.stat_result) -> bool:
    import stat

    return stat.S_ISDIR(st.st_mode)


def _walk(base: Path) -> Iterator[tuple[Path, os.stat_result]]:
    stack = [base]
    while stack:
        d = stack.pop()
        with os.scandir(d) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    stack.append(Path(e.path))
                elif e.is_file(follow_symlinks=False):
                    yield Path(e.path), e.stat(follow_symlinks=False)


class PreconditionFailed(Exception):
    """A conditional write found the object other than expected (exists, or another ETag)."""


class S3Backend(Backend):
    """Objects under `s3://bucket/prefix`, through one boto3 client per process (thread-safe)."""

    scheme = "s3"

    def __init__(self, url: str, *, endpoint: str | None = None, region: str | None = None,
                 credentials: tuple[str, str, str | None] | None = None):
        """`endpoint`, `region`, `credentials` (key id, secret, session token): given explicitly (the export's
        --s3-endpoint / --s3-region), else from the environment and the usual AWS files."""
        parsed = urlparse(url)
        if not parsed.netloc:
            raise UsageError(f"{url!r} names no bucket", hint="Write s3://BUCKET/PREFIX.")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.endpoint, self.region, self.credentials = endpoint or s3_endpoint(), region or s3_region(), credentials
        self.client = s3_client(self.endpoint, self.region, credentials)
        self._checked = False
        self._fs: Any = None
        self._polars: dict[str, str] | None = None

    def check_bucket(self) -> None:
        """Refuse at once, with what to do, when the bucket does not exist or cannot be reached."""
        if self._checked:
            return
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            where = self.client.meta.endpoint_url
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise UsageError(f"S3 bucket {self.bucket!r} does not exist at {where}",
                                 hint="Create the bucket first, or check AWS_ENDPOINT_URL.") from None
            raise UsageError(f"cannot reach S3 bucket {self.bucket!r} at {where}: {code or exc}",
                             hint="Check the credentials (AWS_ACCESS_KEY_ID / AWS_PROFILE) and AWS_ENDPOINT_URL.") from None
        except BotoCoreError as exc:
            raise UsageError(f"cannot reach S3 at {self.client.meta.endpoint_url}: {exc}",
                             hint="Check AWS_ENDPOINT_URL and that the server is running.") from None
        self._checked = True

    def key(self, rel: str) -> str:
        return "/".join(p for p in (self.prefix, rel) if p)

    def _refuse_missing_bucket(self, exc: Any) -> None:
        """A request that found no bucket is the user's setting, not bqx's fault: say what to do."""
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            raise UsageError(f"S3 bucket {self.bucket!r} does not exist at {self.client.meta.endpoint_url}",
                             hint="Create the bucket first, or check AWS_ENDPOINT_URL.") from None

    def _rel(self, key: str) -> str:
        return key[len(self.prefix) + 1:] if self.prefix else key

    def read_bytes(self, rel: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key(rel))["Body"].read()
        except ClientError as exc:
            self._refuse_missing_bucket(exc)
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(2, "no such object", self.join(rel)) from None
            raise

    def write_bytes(self, rel: str, data: bytes) -> Stamp:
        resp = self.client.put_object(Bucket=self.bucket, Key=self.key(rel), Body=data)
        return len(data), resp["ETag"]

    def put_if(self, rel: str, data: bytes, *, etag: str | None) -> str:
        """Write only if the object is absent (`etag` None) or still has `etag`; its new ETag, or
        PreconditionFailed. The S3 conditional writes (If-None-Match / If-Match) make this atomic."""
        from botocore.exceptions import ClientError

        extra = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            return self.client.put_object(Bucket=self.bucket, Key=self.key(rel), Body=data, **extra)["ETag"]
        except ClientError as exc:
            self._refuse_missing_bucket(exc)
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409", "NoSuchKey"):
                raise PreconditionFailed(f"{self.join(rel)}: {code}") from None
            raise

    def read_with_etag(self, rel: str) -> tuple[bytes, str] | None:
        from botocore.exceptions import ClientError

        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self.key(rel))
        except ClientError as exc:
            self._refuse_missing_bucket(exc)
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return resp["Body"].read(), resp["ETag"]

    def stat(self, rel: str) -> Stamp | None:
        from botocore.exceptions import ClientError

        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=self.key(rel))
        except ClientError as exc:
            self._refuse_missing_bucket(exc)
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(resp["ContentLength"]), resp["ETag"]

    def stats(self, prefix: str = "") -> dict[str, Stamp]:
        base = self.key(prefix)
        if base and prefix and not base.endswith("/"):
            base += "/"
        elif not prefix and self.prefix:
            base = self.prefix + "/"
        from botocore.exceptions import ClientError

        out: dict[str, Stamp] = {}
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
                for obj in page.get("Contents", ()):
                    out[self._rel(obj["Key"])] = (int(obj["Size"]), obj["ETag"])
        except ClientError as exc:
            self._refuse_missing_bucket(exc)
            raise
        return out

    def delete(self, rel: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(rel))

    def is_there(self) -> bool:
        self.check_bucket()
        prefix = f"{self.prefix}/" if self.prefix else ""
        return bool(self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0))

    def arrow(self) -> tuple[Any, str]:
        if self._fs is None:  # one pyarrow filesystem per backend (its connections are reused)
            self._fs = arrow_s3(self.endpoint, self.region, self.credentials)
        return self._fs, "/".join(p for p in (self.bucket, self.prefix) if p)

    def scan_parquet(self, rel: str) -> pl.LazyFrame:
        """polars' own cloud reader (ranged GETs of the footer and the column chunks a query needs), with this
        backend's endpoint, region and credentials."""
        if self._polars is None:
            opts = polars_storage_options()
            opts["aws_region"] = self.region
            if self.endpoint:
                opts["aws_endpoint_url"] = self.endpoint
                if self.endpoint.startswith("http://"):
                    opts["aws_allow_http"] = "true"
            if self.credentials:
                opts.update(aws_access_key_id=self.credentials[0], aws_secret_access_key=self.credentials[1])
                if self.credentials[2]:
                    opts["aws_session_token"] = self.credentials[2]
            self._polars = opts
        return pl.scan_parquet(self.join(rel), storage_options=self._polars)

    def parquet_metadata(self, rel: str) -> pq.FileMetaData:
        """The footer only (ranged reads), not the whole object."""
        fs, root = self.arrow()
        with fs.open_input_file(f"{root}/{rel}") as fh:
            return pq.ParquetFile(fh).metadata


# -- connections from the environment ----------------------------------------------------------------

_LOCAL = threading.local()


def s3_endpoint(environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    return env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None


def s3_region(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"


def s3_client(endpoint: str | None = None, region: str | None = None,
              credentials: tuple[str, str, str | None] | None = None) -> Any:
    """One boto3 S3 client per process and settings (endpoint, region: given, else the environment's);
    credentials given explicitly, else by boto3's usual chain (environment, AWS files)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:  # pragma: no cover - the `s3` extra is not installed
        raise UsageError("an s3:// store needs boto3", hint="pip install 'bqx[s3]'") from None
    endpoint, region = endpoint or s3_endpoint(), region or s3_region()
    key = (os.getpid(), endpoint, region, credentials)
    cache = _LOCAL.__dict__.setdefault("clients", {})
    if key not in cache:
        session = boto3.session.Session()
        keys = dict(zip(("aws_access_key_id", "aws_secret_access_key", "aws_session_token"), credentials or ()))
        cache[key] = session.client("s3", endpoint_url=endpoint, region_name=region, **keys,
                                    config=Config(retries={"mode": "standard", "max_attempts": 5},
                                                  max_pool_connections=32))
    return cache[key]


def arrow_s3(endpoint: str | None = None, region: str | None = None,
             credentials: tuple[str, str, str | None] | None = None) -> Any:
    """A pyarrow S3 filesystem with the same settings as `s3_client` (for dataset readers)."""
    from pyarrow import fs

    kwargs: dict[str, Any] = {"region": region or s3_region()}
    if credentials:
        kwargs.update(access_key=credentials[0], secret_key=credentials[1], session_token=credentials[2])
    ep = endpoint or s3_endpoint()
    if ep:
        parsed = urlparse(ep if "://" in ep else f"https://{ep}")
        kwargs.update(endpoint_override=parsed.netloc + parsed.path.rstrip("/"), scheme=parsed.scheme or "https")
    return fs.S3FileSystem(**kwargs)


def polars_storage_options() -> dict[str, str]:
    """Options for polars' cloud reader (`pl.scan_parquet("s3://...", storage_options=...)`) from the same
    environment and AWS files as boto3: endpoint, region and the credentials boto3's chain resolves (kept in
    memory, never written anywhere)."""
    import boto3

    opts = {"aws_region": s3_region()}
    ep = s3_endpoint()
    if ep:
        opts["aws_endpoint_url"] = ep
        if ep.startswith("http://"):
            opts["aws_allow_http"] = "true"
    creds = boto3.session.Session().get_credentials()
    if creds is not None:
        frozen = creds.get_frozen_credentials()
        opts.update(aws_access_key_id=frozen.access_key, aws_secret_access_key=frozen.secret_key)
        if frozen.token:
            opts["aws_session_token"] = frozen.token
    return opts


# -- lookup by scheme ---------------------------------------------------------------------------------

BACKENDS: Registry[Backend] = Registry("store location", "Give a local path or an s3://BUCKET/PREFIX URL.")
BACKENDS.register("s3", S3Backend)
_CACHE: dict[tuple[int, str], Backend] = {}


def register_backend(scheme: str, factory: Callable[[str], Backend]) -> None:
    """Make `scheme://...` roots open with `factory(url)` (the one scheme registry, bqx.connect.schemes)."""
    BACKENDS.register(scheme, factory, replace=True)


def is_url(root: str | os.PathLike[str]) -> bool:
    """True for a `scheme://` root other than file:// (a store that is not a local directory)."""
    return scheme_of(root) not in ("file", "stdio")  # "-" is a directory name here


def backend_for(root: str | os.PathLike[str] | Backend) -> Backend:
    """The backend of a store or export root: a local path / file:// URL, or a registered scheme (s3://)."""
    if isinstance(root, Backend):
        return root
    text = os.fspath(root)
    if not is_url(text):
        return LocalBackend(local_path(text))
    key = (os.getpid(), text.rstrip("/"))
    if key not in _CACHE:
        _CACHE[key] = BACKENDS.factory(scheme_of(text), text)(text)
    return _CACHE[key]


def store_exists(root: str | os.PathLike[str]) -> bool:
    """Whether anything is at `root` (a local directory that exists, or a prefix holding objects)."""
    return backend_for(root).is_there()


def root_name(root: str | os.PathLike[str]) -> str:
    """A root as users write it: an absolute local path, or the URL as given (never wrapped in Path)."""
    return backend_for(root).url


__all__ = ["Backend", "LocalBackend", "S3Backend", "Stamp", "PreconditionFailed", "backend_for",
           "register_backend", "is_url", "root_name", "store_exists", "s3_client", "arrow_s3"]
