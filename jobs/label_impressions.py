"""Label the impressions of whole hours [start, end) into silver/impressions_labeled.

    spark-submit --jars "$(ls jars/*.jar | paste -sd,)" jobs/label_impressions.py \
        --start 2026-11-20T00:00Z --end 2026-11-20T03:00Z [--chunk-hours 168]

Each chunk of hours (default: the whole interval) is one set-based labeling and one commit;
every impression hour gets a label-log record, an hour without impressions too.
Also runs as `python jobs/label_impressions.py --start ... --end ...`. Prints a one-line JSON
summary; exits 3 when the hours are not final yet (their actions may still arrive), 1 on
other failures.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

try:
    import reclake  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

from reclake.jobrun import EXIT_NOT_FINAL, positive_int, summed


def main(argv: list[str] | None = None) -> int:
    """Run the job; returns the process exit code."""
    from reclake.features.labels import LabelsNotFinal, label_impressions
    from reclake.jobrun import chunked, interval_parser, parse_interval, run_spark_job

    parser = interval_parser(__doc__)
    parser.add_argument("--chunk-hours", type=positive_int, help="impression hours per commit")
    args = parse_interval(parser, argv)

    def work(spark, settings) -> dict:
        reports = chunked(
            "label_impressions",
            args,
            lambda s, e: asdict(label_impressions(spark, settings, s, e)),
        )
        return summed(reports, args)

    return run_spark_job("label_impressions", work, {LabelsNotFinal: EXIT_NOT_FINAL})


if __name__ == "__main__":
    sys.exit(main())
