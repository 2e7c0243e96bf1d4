"""Paths inside a lake, stored relative so that a lake can move (pure: no I/O).

Everything reclake writes and reads back (snapshot manifests, the registry, result documents)
names a location relative to the lake root or to its table, as Delta's own log does, and is
resolved against the lake the reader is configured with. Moving a lake to another folder or
mount point, a renamed bucket or a disaster-recovery copy then keeps every reference valid.

Spellings of one place compare equal: s3a:// (and s3n://) is s3://, a plain absolute path,
file:/p, file:///p and file://localhost/p are the same file, trailing and doubled slashes do
not count, and percent-encoding is compared decoded. A stored path never leaves its root: an
absolute path or a `..` segment is refused where a relative path is expected.
"""

from __future__ import annotations

from urllib.parse import unquote

# Every document reclake keeps beside its tables lives under <lake>/_reclake/: the marker that
# places an old absolute document path in a moved lake.
RECLAKE_DIR = "_reclake"

_S3_ALIASES = ("s3a://", "s3n://")


class OutsideLake(ValueError):
    """A path that does not lie inside the root (lake or table) it must be relative to."""


def is_absolute(path: str) -> bool:
    """True for a URI (any scheme) or an absolute local path; False for a relative path."""
    return "://" in path or path.startswith(("/", "file:"))


def canonical(uri: str) -> str:
    """One spelling per place: s3a:// and s3n:// become s3://, local paths file:///..., no
    empty or trailing segments (percent-encoding is kept as written)."""
    base, segments = _split(uri)
    return base + "/".join(segments)


def relative_to(root: str, uri: str) -> str:
    """The path of `uri` under `root` (both absolute, any spelling), as `uri` spells it.

    Raises OutsideLake when `uri` is not `root` itself or below it.
    """
    root_base, root_segments = _split(root)
    base, segments = _split(uri)
    n = len(root_segments)
    if base != root_base or _decoded(segments[:n]) != _decoded(root_segments):
        raise OutsideLake(f"{uri} is not inside {root}")
    return checked("/".join(segments[n:]), allow_empty=True)


def join(root: str, relative: str) -> str:
    """The URI of a relative path under `root` (root spelt as given, e.g. s3a:// for Spark)."""
    relative = checked(relative, allow_empty=True)
    base = root.rstrip("/")
    return f"{base}/{relative}" if relative else base


def checked(relative: str, *, allow_empty: bool = False) -> str:
    """A relative path that stays inside its root: no scheme, not absolute, no `..` segment
    (also when percent-encoded); empty segments are dropped. Raises OutsideLake otherwise."""
    if is_absolute(relative):
        raise OutsideLake(f"{relative!r} is absolute; a relative path is expected here")
    segments = [s for s in relative.split("/") if s]
    # Decoding is needed only where an escape could spell "..": keeps this cheap per file.
    if ".." in segments or ("%" in relative and ".." in _decoded(segments)):
        raise OutsideLake(f"{relative!r} leaves its root ('..')")
    if not segments and not allow_empty:
        raise OutsideLake("an empty path names no file")
    return "/".join(segments)


def relocate(value: str, root: str, marker: str | None = None) -> str:
    """A stored path as a path relative to `root`, whichever form it was stored in.

    - relative: checked and returned;
    - absolute under `root` (any spelling): the part below it;
    - absolute under another root (the lake moved since it was written): the part from the
      last occurrence of `marker`, the lake-relative path it is known to start with (a
      table's catalog path, or RECLAKE_DIR for documents).
    Raises OutsideLake when none applies.
    """
    if not is_absolute(value):
        return checked(value)
    try:
        return relative_to(root, value)
    except OutsideLake:
        if not marker:
            raise
    _, segments = _split(value)
    wanted = _decoded(checked(marker).split("/"))
    for start in range(len(segments) - len(wanted), -1, -1):
        if _decoded(segments[start : start + len(wanted)]) == wanted:
            return checked("/".join(segments[start:]))
    raise OutsideLake(f"{value} is neither inside {root} nor under a folder named {marker!r}")


def _split(uri: str) -> tuple[str, list[str]]:
    """(scheme://authority/, non-empty path segments) of an absolute path or URI."""
    if not is_absolute(uri):
        raise OutsideLake(f"{uri!r} is relative; an absolute path or URI is expected here")
    for alias in _S3_ALIASES:
        if uri.startswith(alias):
            uri = "s3://" + uri[len(alias) :]
    if uri.startswith("file:"):
        path = uri[len("file:") :]
        if path.startswith("//"):
            # file://host/p: an empty host and localhost are this machine.
            host, _, path = path[2:].partition("/")
            if host not in ("", "localhost"):
                return f"file://{host}/", _segments(path)
        return "file:///", _segments(path)
    if uri.startswith("/"):
        return "file:///", _segments(uri)
    scheme, _, rest = uri.partition("://")
    authority, _, path = rest.partition("/")
    return f"{scheme.lower()}://{authority}/", _segments(path)


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def _decoded(segments: list[str]) -> list[str]:
    return [unquote(s) for s in segments]
