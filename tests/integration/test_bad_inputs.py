"""Bad inputs through the ingest and the CLI (issue #23): each kind ends in a quarantine row with
a machine-readable reason, in bronze exactly as sent, or in a one-line error (exit 1 or 2),
never a stack trace for a user error; the counts reconcile. The line-level contract rules have
their own corpus in test_ingest.py (45 cases); this corpus is what arrives as files and bytes,
odd values that are valid data, and what users type."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reclake.ingest import IngestError, ingest_events, load_ingest_log
from reclake.ingest.layout import drop_uri
from reclake.lakefs import local_path
from reclake.timeutil import HOUR
from tests.integration.test_ingest import event

pytestmark = pytest.mark.integration

H0 = datetime(2026, 11, 20, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def raw(record: dict) -> bytes:
    return json.dumps(record).encode()


def put(settings, name: str, data: bytes) -> None:
    folder = Path(local_path(drop_uri(settings, H0)))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


# Lines of the good files: (kind, bytes, expected reason or None when bronze keeps it as sent).
LINES = [
    ("invalid_utf8", raw(event("u8")).replace(b'"r1"', b'"r\xff\xfe1"'), "invalid_utf8"),
    ("overlong_utf8_slash", raw(event("u9")).replace(b'"r1"', b'"r\xc0\xaf1"'), "invalid_utf8"),
    ("crlf_line_end", raw(event("crlf")) + b"\r", None),
    ("line_over_1mb", raw({**event("big"), "pad": "x" * 1_100_000}), None),
    ("event_id_over_1mb", raw(event("y" * 1_100_000)), "out_of_range"),
    ("duplicate_keys", b'{"event_id": "d1", "event_id": "d2"}', "malformed_json"),
    ("nested_object_id", raw(event("n1", user_id={"id": 7})), "wrong_type"),
    ("nan", raw(event("nan1")).replace(b'"position": 3', b'"position": NaN'), "malformed_json"),
    (
        "infinity",
        raw(event("inf1")).replace(b'"user_id": 7', b'"user_id": Infinity'),
        "malformed_json",
    ),
    ("number_as_string", raw(event("s1", item_id="9")), "wrong_type"),
    (
        "huge_int",
        raw(event("h1")).replace(b'"user_id": 7', b'"user_id": 123456789012345678901234567890'),
        "wrong_type",
    ),
    ("id_with_path_separators", raw(event("../../etc/passwd")), None),
    ("id_with_quotes", raw(event("q'\"`1")), None),
    ("id_with_sql", raw(event("x'; DROP TABLE events; --")), None),
    ("odd_zone_offset", raw(event("z1", event_time="2026-11-20T06:00:00+05:45")), None),
    ("far_past", raw(event("p1", event_time="1970-01-01T00:00:00Z")), None),
    ("far_future", raw(event("f1", event_time="2999-01-01T00:00:00Z")), "future_timestamp"),
    ("year_zero", raw(event("y0", event_time="0000-01-01T00:00:00Z")), "bad_timestamp"),
    ("nul_byte_in_id", raw(event("nul\u0000x")), None),
]
# Whole files: (kind, file name, bytes, expected reasons of their lines).
FILES = [
    ("bom", "bom.jsonl", b"\xef\xbb\xbf" + raw(event("bom1")) + b"\n", []),
    ("utf16", "utf16.jsonl", (json.dumps(event("w1")) + "\n").encode("utf-16"), None),
    ("binary", "binary.jsonl", bytes(range(256)) * 4, None),
    ("zero_byte_plain", "empty.jsonl", b"", []),
    ("zero_byte_gzip", "empty.jsonl.gz", gzip.compress(b"", mtime=0), []),
]


def test_odd_bytes_and_values_are_quarantined_with_a_reason_or_kept_exactly(spark, settings):
    put(settings, "lines.jsonl", b"".join(data + b"\n" for _, data, _ in LINES))
    put(settings, "lines2.jsonl.gz", gzip.compress(raw(event("gz1")) + b"\n"))
    for _, name, data, _ in FILES:
        put(settings, name, data)
    report = ingest_events(spark, settings, H0, H0 + HOUR)

    quarantine = spark.read.format("delta").load(settings.table_uri("quarantine/events"))
    bronze = spark.read.format("delta").load(settings.table_uri("bronze/events"))
    by_line = {
        r["line_number"]: r["reason"]
        for r in quarantine.where("source_file LIKE '%/lines.jsonl'").collect()
    }
    kept = {r["event_id"]: r for r in bronze.collect()}
    for number, (kind, data, reason) in enumerate(LINES, 1):
        assert by_line.get(number) == reason, kind
        if reason is None:
            sent = json.loads(data.decode())["event_id"]
            assert sent in kept, kind  # ids are data: stored verbatim, never used as paths
    assert kept["z1"]["event_time"] == datetime(2026, 11, 20, 0, 15)  # +05:45 read as UTC
    assert kept["p1"]["beyond_lateness"]  # far past: kept, flagged, out of the features
    # Invalid bytes stay readable in quarantine (as U+FFFD), so every reader can load it.
    bad = quarantine.where("reason = 'invalid_utf8'").collect()
    assert all("\ufffd" in r["raw_line"] for r in bad)

    reasons = {(r["source_file"].rsplit("/", 1)[1], r["reason"]) for r in quarantine.collect()}
    # UTF-16 and binary files are not UTF-8 JSON: every line of theirs is quarantined (lines
    # that happen to be valid UTF-8, such as the binary file's ASCII run, as not JSON).
    for name in ("utf16.jsonl", "binary.jsonl"):
        assert (name, "invalid_utf8") in reasons
        assert {r for f, r in reasons if f == name} <= {"invalid_utf8", "malformed_json"}
    assert "bom1" in kept and "gz1" in kept  # a leading BOM is skipped by the line reader
    # Counts reconcile: every line of every file is in bronze or in quarantine.
    (hour,) = report.hours
    assert hour.bronze_rows + hour.quarantined_rows + hour.duplicates_dropped == hour.input_lines
    assert hour.bronze_rows == bronze.count() and hour.quarantined_rows == quarantine.count()


@pytest.mark.parametrize(
    "kind, data, cause",
    [
        (
            "truncated_gzip",
            gzip.compress(raw(event("t1")) + b"\n" * 50, mtime=0)[:30],
            "EOFException",
        ),
        ("text_named_gz", raw(event("t2")) + b"\n", "not a gzip file"),
    ],
)
def test_a_damaged_file_fails_the_hour_with_one_line_naming_it(spark, settings, kind, data, cause):
    put(settings, "part-0.jsonl.gz", data)
    with pytest.raises(IngestError) as caught:
        ingest_events(spark, settings, H0, H0 + HOUR)
    message = str(caught.value)
    assert "\n" not in message and "part-0.jsonl.gz" in message and cause in message
    assert "deliver it again" in message
    with pytest.raises(KeyError):  # the hour has no log: nothing was committed for it
        load_ingest_log(settings, H0)


def cli(
    *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """The reclake CLI in a subprocess (as users run it), with RECLAKE_* overrides; `prefix`
    is a command that runs it (e.g. setpriv without some capabilities)."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "reclake.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "include"), **(env or {})},
        timeout=300,
    )


def one_line_error(done: subprocess.CompletedProcess, code: int) -> str:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines, "no error message"
    return lines[-1]


def test_a_damaged_file_through_the_cli_exits_1_without_a_traceback(settings):
    put(settings, "part-0.jsonl.gz", b"not gzip at all\n")
    env = {"RECLAKE_LAKE_ROOT": settings.lake_root, "RECLAKE_SPARK_MASTER": "local[1]"}
    done = cli(
        "ingest", "run", "--start", "2026-11-20T00:00Z", "--end", "2026-11-20T01:00Z", env=env
    )
    assert "part-0.jsonl.gz" in one_line_error(done, 1)


@pytest.mark.parametrize(
    "args, env, code, says",
    [
        (["ingest", "run", "--start", "yesterday", "--end", "x"], {}, 2, "--start"),
        (
            ["ingest", "run", "--start", "2026-11-20T00:30Z", "--end", "2026-11-20T02:00Z"],
            {},
            2,
            "hour",
        ),
        (["snapshots", "show", "../../etc/passwd"], {}, 1, "unknown snapshot"),
        (["audit", "training_samples@../x"], {}, 2, "unknown snapshot"),
        (["validate", "../events"], {}, 2, "unknown table"),
        (["tables"], {"RECLAKE_SPARK_SHUFFLE_PARTITIONS": "abc"}, 2, "not a valid int"),
        (["tables"], {"RECLAKE_ATTRIBUTION_WINDOW_MINUTES": "-5"}, 2, ">= 0"),
        (["tables"], {"RECLAKE_SPARK_CODEGEN": "maybe"}, 2, "not a valid bool"),
        (["no-such-command"], {}, 2, "invalid choice"),
    ],
    ids=[
        "bad_time",
        "not_whole_hours",
        "snapshot_path_traversal",
        "audit_path_traversal",
        "table_path_traversal",
        "env_not_int",
        "env_negative",
        "env_not_bool",
        "unknown_command",
    ],
)
def test_bad_cli_arguments_and_settings_give_one_line(settings, args, env, code, says):
    done = cli(*args, env={"RECLAKE_LAKE_ROOT": settings.lake_root, **env})
    assert says in one_line_error(done, code)


def dim_line(**record) -> str:
    return json.dumps(record)


def user(uid: int, country: str, signup: str = "2026-01-01T00:00:00Z") -> str:
    return dim_line(
        user_id=uid, country=country, device="ios", age_bucket="18-24", signup_time=signup
    )


def item(iid: int, category: str, created: str = "2026-01-01T00:00:00Z") -> str:
    return dim_line(
        item_id=iid, category=category, duration_ms=1000, creator_id=3, created_at=created
    )


# Dimension records that conflict (docs/labels.md, *Dedupe by key*): one row per key, the latest
# signup_time / created_at wins, ties go to the file whose name sorts last, then the later line.
# Losers are superseded, counted (not quarantined: they are valid records, just older).
DIM_FILES = {
    ("dims/users", "users-001.jsonl"): [
        user(1, "US"),  # loses to users-002 (same signup: the later file wins)
        user(2, "FR", signup="2026-03-01T00:00:00Z"),  # wins: the latest signup_time
    ],
    ("dims/users", "users-002.jsonl"): [
        user(1, "DE"),
        user(2, "IT", signup="2026-02-01T00:00:00Z"),  # later file, older record: loses
        user(3, "ES"),
        user(3, "ES"),  # the same record twice: superseded, no conflict
    ],
    ("dims/items", "items-001.jsonl"): [
        item(5, "music"),
        item(5, "news"),  # two categories, one time, one drop: the later line wins
        item(6, "sports", created="2025-01-01T00:00:00Z"),  # loses to the newer record
        item(6, "comedy", created="2026-06-01T00:00:00+02:00"),  # an offset, still newer
    ],
}


def test_conflicting_dimension_records_keep_one_deterministic_winner_and_are_counted(
    spark, settings
):
    from reclake.features.dims import load_dims, load_summary

    for (folder, name), lines in DIM_FILES.items():
        path = Path(local_path(f"{settings.landing_uri}/{folder}")) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    results = load_dims(spark, settings)

    def table_rows(name: str, columns: str) -> list[tuple]:
        df = spark.read.format("delta").load(settings.table_uri(f"dims/{name}"))
        return sorted(tuple(r) for r in df.selectExpr(*columns.split()).collect())

    assert table_rows("users", "user_id country source_file") == [
        (1, "DE", "dims/users/users-002.jsonl"),
        (2, "FR", "dims/users/users-001.jsonl"),
        (3, "ES", "dims/users/users-002.jsonl"),
    ]
    assert table_rows("items", "item_id category") == [(5, "news"), (6, "comedy")]
    assert results["quarantine_dims"].rows == 0  # valid records are never quarantined
    counts = load_summary(settings)["superseded"]
    assert counts == {
        "users": {"superseded": 3, "conflicting_keys": 2},
        "items": {"superseded": 2, "conflicting_keys": 2},
    }
    # Lines read = rows kept + superseded + quarantined, per dimension.
    for dim, kept in (("users", results["users"].rows), ("items", results["items"].rows)):
        lines = sum(len(v) for (folder, _), v in DIM_FILES.items() if folder == f"dims/{dim}")
        assert lines == kept + counts[dim]["superseded"]
