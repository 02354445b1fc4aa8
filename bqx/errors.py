"""The errors bqx raises on purpose: each says what, where and what to do, and carries its exit code.

Exit codes (PIPELINE.md §8): 0 success, 1 failed tasks or failed checks, 2 usage, configuration or
input errors. The CLI prints `str(error)` (no traceback unless --verbose) and exits `error.exit_code`.
"""

from __future__ import annotations

from typing import Any


class BqxError(Exception):
    """Base of every deliberate bqx error; `exit_code` is what the CLI exits with."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(message + (f" {hint}" if hint else ""))

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": str(self), "exit_code": self.exit_code}


class TaskError(BqxError):
    """A task or a check failed (exit 1)."""

    exit_code = 1


class UsageError(BqxError):
    """Bad command-line usage or argument (exit 2)."""

    exit_code = 2


class ConfigError(BqxError):
    """Invalid configuration (exit 2)."""

    exit_code = 2


class StoreLockedError(BqxError):
    """Another process holds the store's write lock (exit 2)."""

    exit_code = 2


class InputError(BqxError):
    """Input data that breaks a rule, located by file, line (1-based physical line), column and value (exit 2)."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: str | None = None,
        value: str | None = None,
        rule: str | None = None,
        pair: str | None = None,
        hint: str | None = None,
    ):
        self.file = file
        self.line = line
        self.column = column
        self.value = value
        self.rule = rule
        self.pair = pair
        where = []
        if file is not None:
            where.append(str(file))
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column}")
        if value is not None:
            where.append(f"value {_short(value)!r}")
        head = ", ".join(where)
        tail = f" [rule {rule}]" if rule else ""
        super().__init__(f"{head}: {message}{tail}" if head else f"{message}{tail}", hint=hint)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(file=self.file, line=self.line, column=self.column, value=self.value, rule=self.rule, pair=self.pair)
        return out


def _short(value: str, limit: int = 80) -> str:
    value = str(value)
    return value if len(value) <= limit else value[: limit - 3] + "..."


class ResourceError(BqxError):
    """The machine refused: a full disk, a read-only or unreadable file (exit 1; fix it and rerun)."""

    exit_code = 1


def friendly(exc: BaseException) -> BqxError | None:
    """An ordinary failure of the machine (a full disk, a read-only or unreadable file) as one clear error.

    None for anything else: a bug, which the CLI reports as an internal error.
    """
    import errno

    if isinstance(exc, BqxError):
        return exc
    storage = _object_storage_failure(exc)
    if storage is not None:
        return storage
    if not isinstance(exc, OSError) or exc.errno is None:
        return None
    where = exc.filename if exc.filename is not None else "a file"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ResourceError(f"no space left on the device while writing {where}",
                             hint="Free some space on that disk (or write to a larger one), then rerun the same command: finished work is kept "
                                  "and the rerun resumes.")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return ResourceError(f"cannot write or read {where}: {exc.strerror}",
                             hint="Check its permissions; a read-only store can still be inspected (status, plan), "
                                  "validated with --report FILE elsewhere and exported, but not run or ingested into.")
    if exc.errno in (errno.EIO, errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
        return ResourceError(f"{where}: {exc.strerror}", hint="Check that the path exists and is readable, then rerun.")
    return None


# S3 answers that mean the service or the credentials, not bqx, failed (a missing key is not among them)
_STORAGE_REFUSALS = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                               "SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"})


def _object_storage_failure(exc: BaseException) -> BqxError | None:
    """Object storage that cannot be reached, or that refuses the credentials (exit 1: fix it and rerun)."""
    import sys

    bc = sys.modules.get("botocore.exceptions")  # loaded only when an s3:// store or export was used
    if bc is None:
        return None
    code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, bc.ClientError) else ""
    if isinstance(exc, bc.BotoCoreError) or code in _STORAGE_REFUSALS:
        return ResourceError(f"object storage failed: {exc}",
                             hint="Check AWS_ENDPOINT_URL, the network and the credentials, then rerun the same command: "
                                  "what the store's manifest recorded is kept and the rerun resumes.")
    return None
