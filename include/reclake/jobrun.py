"""What every spark-submit entry point in jobs/ shares: argument parsing for a data interval,
the session, the one-line JSON summary and the exit code."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from reclake.config import Settings, SettingsError, load_settings
from reclake.timeutil import chunks, hours_between, iso, parse_utc

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Exit codes shared by every job (argparse itself exits 2 on bad arguments).
EXIT_FAILED = 1
EXIT_USAGE = 2
# Asked too early: the inputs of the interval are not final yet; retrying later will work.
EXIT_NOT_FINAL = 3


def interval_parser(doc: str | None, what: str = "hour") -> argparse.ArgumentParser:
    """A parser with --start/--end: the data interval [start, end) in whole UTC hours."""
    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    parser.add_argument("--start", required=True, type=parse_utc, help=f"first {what} (UTC)")
    parser.add_argument("--end", required=True, type=parse_utc, help="interval end, exclusive")
    return parser


def positive_int(value: str) -> int:
    """argparse type for counts such as --chunk-hours: a whole number >= 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {number}")
    return number


def table_name(value: str) -> str:
    """argparse type for --table: a catalog table name, with the known names on error."""
    from reclake.tables import table

    try:
        return table(value).name
    except KeyError as exc:
        raise argparse.ArgumentTypeError(exc.args[0]) from None


def table_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser with an optional --table (default: every catalog table that exists)."""
    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    parser.add_argument("--table", type=table_name, help="catalog table (default: all)")
    return parser


def parse_interval(
    parser: argparse.ArgumentParser, argv: list[str] | None = None
) -> argparse.Namespace:
    """Parse arguments and check the interval is a non-empty run of whole hours."""
    args = parser.parse_args(argv)
    try:
        if not list(hours_between(args.start, args.end)):
            parser.error("--end must be after --start")
    except ValueError as exc:
        parser.error(str(exc))
    return args


def chunked(
    name: str, args: argparse.Namespace, work: Callable[[datetime, datetime], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Run `work(chunk_start, chunk_end)` over [args.start, args.end) in pieces of
    args.chunk_hours (the whole interval when unset), logging progress per piece."""
    hours = args.chunk_hours or len(list(hours_between(args.start, args.end)))
    pieces = chunks(args.start, args.end, hours)
    results = []
    for n, (lo, hi) in enumerate(pieces, start=1):
        began = time.monotonic()
        results.append(work(lo, hi))
        print(
            f"{name}: chunk {n}/{len(pieces)} [{iso(lo)}, {iso(hi)}) done in "
            f"{time.monotonic() - began:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    return results


def summed(results: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """One summary of chunk results: the whole interval, numbers added up (the version is the
    last chunk's), nested counts merged key by key."""
    out: dict[str, Any] = {"start": iso(args.start), "end": iso(args.end), "chunks": len(results)}
    for result in results:
        for key, value in result.items():
            if key in ("start", "end"):
                continue
            if key == "version" or isinstance(value, str | bool) or value is None:
                out[key] = value
            elif isinstance(value, int | float):
                out[key] = out.get(key, 0) + value
            elif isinstance(value, dict):
                merged = out.setdefault(key, {})
                for k, v in value.items():
                    merged[k] = merged.get(k, 0) + v
            else:
                out[key] = value
    return out


def run_spark_job(
    name: str,
    work: Callable[[SparkSession, Settings], dict[str, Any]],
    exit_codes: Mapping[type[BaseException], int] | None = None,
) -> int:
    """Run `work` with a session; print its summary as one JSON line and return the exit code.

    Errors a user can act on (inputs not final yet, bad interval, missing input) exit with
    their code from `exit_codes` (default: ValueError -> 1) and a one-line message, and so do
    storage faults (a full disk, a denied permission, a damaged table: storage_fault);
    anything else propagates with its traceback.
    """
    from reclake.spark import get_spark

    exit_codes = dict(exit_codes or {ValueError: EXIT_FAILED})
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    spark = get_spark(name, settings)
    try:
        summary = work(spark, settings)
    except tuple(exit_codes) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return next(code for kind, code in exit_codes.items() if isinstance(exc, kind))
    except Exception as exc:
        return storage_fault(name, exc, settings)
    print(json.dumps(summary, sort_keys=True, default=str))
    return 0


def storage_fault(name: str, exc: BaseException, settings: Settings) -> int:
    """Print a storage fault (reclake.storagefault) as one line and return EXIT_FAILED;
    re-raise any other error with its traceback."""
    from reclake.storagefault import describe

    fault = describe(exc, settings.lake_root)
    if fault is None:
        raise exc
    print(f"{name}: {fault}", file=sys.stderr)
    return EXIT_FAILED
