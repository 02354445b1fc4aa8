"""The URL schemes bqx knows, in one place, and the registry that maps a scheme to what serves it.

`scheme_of(target)` names a target's scheme: "postgresql" for `postgresql://` and `postgres://`
URLs, "s3" for `s3://`, "stdio" for "-" (standard input or output), "file" for a local path (or a
`file://` URL), else the URL's own scheme in lower case. A `Registry` maps schemes to factories;
looking up a scheme nothing is registered for is a UsageError naming the scheme and the known ones.
"""

from __future__ import annotations

import importlib
import os
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from typing import Any, Callable, Generic, TypeVar

from bqx.errors import UsageError

_ALIASES = {"postgres": "postgresql"}  # libpq's alias
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

T = TypeVar("T")


def scheme_of(target: object) -> str:
    """The scheme of a source, sink or store target (a URL, a path, or "-")."""
    if isinstance(target, os.PathLike):
        return "file"
    text = str(target)
    if text == "-":
        return "stdio"
    m = _URL.match(text)
    if m is None:
        return "file"
    scheme = m.group(1).lower()
    return _ALIASES.get(scheme, scheme)


def is_database_url(target: object) -> bool:
    """Whether `target` is a `postgresql://` (or `postgres://`) URL."""
    return isinstance(target, str) and scheme_of(target) == "postgresql"


def is_s3_url(target: object) -> bool:
    return isinstance(target, str) and scheme_of(target) == "s3"


def local_path(target: str | os.PathLike[str]) -> str:
    """A "file" target as a path: `file://` stripped."""
    text = os.fspath(target)
    return text[len("file://"):] if text[:7].lower() == "file://" else text


#: URL query keys that carry a secret (libpq takes connection keywords as query parameters).
SECRET_KEYS = ("password", "sslpassword")


def secret_query(query: str) -> bool:
    return any(k.lower() in SECRET_KEYS for k, _ in parse_qsl(query, keep_blank_values=True))


def mask_url(url: str) -> str:
    """The URL without a password (user:***@host:port/db, password=*** in the query), for messages and records."""
    parts = urlsplit(url)
    netloc, query = parts.netloc, parts.query
    if parts.password is not None:
        host = parts.hostname or ""
        netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    if secret_query(query):
        query = urlencode([(k, "***" if k.lower() in SECRET_KEYS else v)
                           for k, v in parse_qsl(query, keep_blank_values=True)], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def shown(target: object) -> str:
    """A target as a message may print it: a URL's password masked."""
    text = str(target)
    return mask_url(text) if _URL.match(text) else text


def _key(scheme: str) -> str:
    bare = scheme.lower().rstrip(":/")
    return _ALIASES.get(bare, bare)


class Registry(Generic[T]):
    """Scheme -> factory of one kind of thing (bar sources, feature sinks, ...).

    A factory is a callable `factory(target, *args)` or a "module:attribute" string, imported on
    first use (so registering the built-ins imports none of their dependencies).
    """

    def __init__(self, kind: str, hint: str) -> None:
        self.kind, self.hint = kind, hint
        self._factories: dict[str, Callable[..., T] | str] = {}

    def register(self, scheme: str, factory: Callable[..., T] | str, *, replace: bool = False) -> None:
        """Serve `scheme` (lower case, without "://") with `factory`; a taken scheme needs `replace=True`."""
        key = _key(scheme)
        if not re.fullmatch(r"[a-z][a-z0-9+.-]*", key):
            raise UsageError(f"{scheme!r} is not a URL scheme", hint="Give the part before ://, e.g. s3 or postgresql.")
        if key in self._factories and not replace:
            raise UsageError(f"the {self.kind} scheme {key} is registered already",
                             hint="Pass replace=True to serve it with another factory.")
        self._factories[key] = factory

    def unregister(self, scheme: str) -> None:
        self._factories.pop(_key(scheme), None)

    def schemes(self) -> list[str]:
        return sorted(self._factories)

    def factory(self, scheme: str, target: object = None) -> Callable[..., T]:
        found = self._factories.get(scheme)
        if found is None:
            what = f" ({shown(target)})" if target is not None else ""
            raise UsageError(f"no {self.kind} for the scheme {scheme}{what}; known schemes: {', '.join(self.schemes())}",
                             hint=self.hint)
        if isinstance(found, str):
            module, _, attr = found.partition(":")
            found = importlib.import_module(module)
            for name in attr.split("."):  # "module:Class.classmethod" allowed
                found = getattr(found, name)
        return found

    def open(self, target: Any, *args: Any, **kwargs: Any) -> T:
        """What serves `target`, made by the factory registered for its scheme."""
        return self.factory(scheme_of(target), target)(target, *args, **kwargs)


__all__ = ["SECRET_KEYS", "Registry", "is_database_url", "is_s3_url", "local_path", "mask_url",
           "scheme_of", "secret_query", "shown"]
