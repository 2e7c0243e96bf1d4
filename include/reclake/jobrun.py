"""What every spark-submit entry point in jobs/ shares: argument parsing for a data interval,
the session, the one-line JSON summary and the exit code."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from reclake.config import Settings, load_settings
from reclake.timeutil import parse_utc

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def interval_parser(doc: str | None, what: str = "hour") -> argparse.ArgumentParser:
    """A parser with --start/--end: the data interval [start, end) in whole UTC hours."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    parser.add_argument("--start", required=True, type=parse_utc, help=f"first {what} (UTC)")
    parser.add_argument("--end", required=True, type=parse_utc, help="interval end, exclusive")
    return parser


def run_spark_job(
    name: str,
    work: Callable[[SparkSession, Settings], dict[str, Any]],
    expected_errors: Sequence[type[BaseException]] = (ValueError,),
) -> int:
    """Run `work` with a session; print its summary as one JSON line and return the exit code.

    Errors a user can act on (data not final yet, bad interval, missing input) exit 1 with
    a one-line message; anything else propagates with its traceback.
    """
    from reclake.spark import get_spark

    settings = load_settings()
    spark = get_spark(name, settings)
    try:
        summary = work(spark, settings)
    except tuple(expected_errors) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, sort_keys=True, default=str))
    return 0
