"""`reclake cache`: build, list and clear the training reader's local snapshot cache."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from reclake.cli.output import add_json_flag, emit, guard
from reclake.config import load_settings

LIST_COLUMNS = ["entry", "rows", "mb", "last_access", "options"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `cache` sub-command and its actions."""
    p = sub.add_parser("cache", help="the training reader's local snapshot cache")
    actions = p.add_subparsers(dest="action", required=True)

    a = actions.add_parser(
        "build",
        help="convert a snapshot into the cache now, for a reader with these options",
        description="Build the entry a SnapshotDataset with the same options (and no filter) "
        "reads; waits for a process already building it.",
    )
    a.add_argument("ref", help="<table>@latest, <table>@<id> or <id>")
    a.add_argument("--features", help="comma-separated dense columns (default: the reader's)")
    a.add_argument("--categorical", default="", help="comma-separated string columns to hash")
    a.add_argument("--label", default="played")
    a.add_argument("--id-columns", default="user_id,item_id")
    a.add_argument("--sequence", default="user_last_played", help="'' for none")
    a.add_argument("--seq-len", type=int, default=20)
    a.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    a.add_argument("--null-mask", action="store_true", help="also cache dense_null")
    _add_dir(a)
    add_json_flag(a).set_defaults(func=_guard(_build))

    a = actions.add_parser("list", help="cached entries, least recently used first")
    _add_dir(a)
    add_json_flag(a).set_defaults(func=_guard(_list))

    a = actions.add_parser(
        "clear", help="remove entries (all, or one snapshot's) and abandoned builds"
    )
    a.add_argument(
        "ref", nargs="?", help="only this snapshot: <table>@latest, <table>@<id>, <id> or an entry"
    )
    _add_dir(a)
    add_json_flag(a).set_defaults(func=_guard(_clear))


def _add_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", help="cache folder (default: RECLAKE_READER_CACHE_DIR)")


def _guard(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Errors a user can act on become a one-line message and exit code 1."""

    def run(args: argparse.Namespace) -> int:
        # Imported when the command runs: the reader pulls in torch, which every other
        # command's start-up (`reclake --help` included) would otherwise pay for (~2 s).
        from reclake.reader.cache import CacheError
        from reclake.snapshots import SnapshotExpired, SnapshotNotFound

        errors = (SnapshotNotFound, SnapshotExpired, CacheError, ValueError, OSError)
        return guard(command, errors)(args)

    return run


def _cache(args: argparse.Namespace) -> Any:
    from reclake.reader.cache import ReaderCache

    settings = load_settings()
    return ReaderCache(args.dir or settings.reader_cache_dir, settings.reader_cache_max_bytes)


def _list_of(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _build(args: argparse.Namespace) -> int:
    import torch

    from reclake.reader import SnapshotDataset

    settings = load_settings()
    started = time.perf_counter()
    dataset = SnapshotDataset(
        args.ref,
        settings=settings,
        features=None if args.features is None else _list_of(args.features),
        label=args.label,
        id_columns=_list_of(args.id_columns),
        sequence=args.sequence or None,
        seq_len=args.seq_len,
        dtype=getattr(torch, args.dtype),
        null_mask=args.null_mask,
        categorical=_list_of(args.categorical),
        cache=True,
        cache_dir=args.dir or settings.reader_cache_dir,
    )
    existed = not dataset.build_cache()
    entry = next(e for e in dataset.cache.entries() if e.name == dataset.cache_name)
    seconds = time.perf_counter() - started
    # An explicit build is worth keeping after a reboot too: flush it to disk now.
    dataset.cache.sync(entry.name)
    data = {**_row(entry), "snapshot_id": entry.snapshot_id, "built": not existed}
    data["seconds"] = round(seconds, 2)
    if args.json:
        emit(data, True)
    elif existed:
        sys.stdout.write(f"already cached: {entry.name} ({entry.rows} rows, {data['mb']} MB)\n")
    else:
        sys.stdout.write(
            f"built {entry.name}: {entry.rows} rows, {data['mb']} MB in {seconds:.1f} s\n"
        )
    return 0


def _row(entry: Any) -> dict[str, Any]:
    key = entry.key
    options = [f"{len(key['features'])} features", key["dtype"]]
    if key["sequence"]:
        options.append(f"{key['sequence']}[{key['seq_len']}]")
    if key["categorical"]:
        options.append("categorical " + ",".join(key["categorical"]))
    if key["null_mask"]:
        options.append("null mask")
    if key["keys"]:
        options.append("keys " + ",".join(key["keys"]))
    if key["filter_text"]:
        options.append(f"filter {key['filter_text']}")
    return {
        "entry": entry.name,
        "table": entry.table,
        "rows": entry.rows,
        "bytes": entry.bytes,
        "mb": round(entry.bytes / 1e6, 1),
        "created_at": entry.created_at,
        "last_access": entry.last_access_iso,
        "options": "; ".join(options),
    }


def _list(args: argparse.Namespace) -> int:
    cache = _cache(args)
    entries = cache.entries()
    rows = [_row(e) for e in entries]
    if args.json:
        emit({"dir": str(cache.root), "max_bytes": cache.max_bytes, "entries": rows}, True)
        return 0
    total = sum(e.bytes for e in entries)
    sys.stdout.write(
        f"{cache.root}: {len(rows)} entries, {total / 1e6:,.1f} MB "
        f"of {cache.max_bytes / 1e6:,.0f} MB\n"
    )
    if rows:
        emit(rows, False, LIST_COLUMNS)
    building = [name for name, running in cache.builds() if running]
    if building:
        sys.stdout.write("being built: " + ", ".join(building) + "\n")
    return 0


def _clear(args: argparse.Namespace) -> int:
    cache = _cache(args)
    snapshot_id = None
    if args.ref:
        names = {e.name for e in cache.entries()}
        if args.ref in names:
            removed = [e for e in cache.entries() if e.name == args.ref and cache.remove(e.name)]
            return _cleared(args, cache, removed)
        snapshot_id = _snapshot_id(args.ref)
    return _cleared(args, cache, cache.clear(snapshot_id))


def _snapshot_id(ref: str) -> str:
    """The id a ref names; a bare id is taken as is (its snapshot may have expired since)."""
    if "@" not in ref:
        return ref
    from reclake.snapshots import resolve

    return resolve(load_settings(), ref, allow_expired=True).id


def _cleared(args: argparse.Namespace, cache: Any, removed: list[Any]) -> int:
    freed = sum(e.bytes for e in removed)
    if args.json:
        emit({"removed": [e.name for e in removed], "bytes": freed}, True)
    else:
        sys.stdout.write(
            f"removed {len(removed)} entries ({freed / 1e6:,.1f} MB) from {cache.root}\n"
        )
        for entry in removed:
            sys.stdout.write(f"  {entry.name}\n")
    return 0
