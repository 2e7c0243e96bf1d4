"""Hourly tiles: exact aggregates, late events rebuild their hour, beyond-lateness excluded.

The input writers at the top are shared with the samples tests: they put rows straight into
bronze/events, silver/impressions_labeled and the dimensions, as those jobs would.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reclake.features.tiles import build_tiles, built_arrival_hours
from reclake.io import ensure_table, read_table, schema_from_ddl
from reclake.tables import BRONZE_EVENTS_DDL, IMPRESSIONS_LABELED_DDL, ITEMS_DDL, USERS_DDL, table
from reclake.timeutil import HOUR, floor_hour

A = datetime(2026, 11, 20, 10, tzinfo=UTC)  # the hour most cases are about
LATENESS = 2  # Settings default allowed_lateness_hours


def event(
    event_id: str,
    event_type: str,
    at: datetime,
    user_id: int = 1,
    item_id: int = 10,
    watch_ms: int | None = None,
    arrival: datetime | None = None,
    request_id: str = "r1",
) -> dict:
    """One bronze row; arrival defaults to the event's own hour."""
    hour = floor_hour(at)
    arrival = arrival or hour
    late = int((arrival - hour) / HOUR)
    return {
        "event_id": event_id,
        "event_type": event_type,
        "event_time": at,
        "user_id": user_id,
        "item_id": item_id,
        "request_id": request_id,
        "position": 0 if event_type == "impression" else None,
        "watch_ms": watch_ms if watch_ms is not None else (1000 if event_type == "play" else None),
        "event_hour": hour,
        "arrival_hour": arrival,
        "late_hours": late,
        "beyond_lateness": late > LATENESS,
        "source_file": f"test/{arrival:%Y%m%d%H}.jsonl.gz",
        "event_date": hour.date(),
    }


def impression(event_id: str, at: datetime, user_id: int = 1, item_id: int = 10, **labels) -> dict:
    """One silver labeled impression (labels default to false / 0)."""
    hour = floor_hour(at)
    row = {
        "event_id": event_id,
        "request_id": f"req-{event_id}",
        "user_id": user_id,
        "item_id": item_id,
        "position": 3,
        "event_time": at,
        "event_hour": hour,
        "played": False,
        "watch_ms": 0,
        "finished": False,
        "liked": False,
        "shared": False,
        "skipped": False,
        "event_date": hour.date(),
    }
    row.update(labels)
    return row


def _append(spark, settings, name: str, ddl: str, rows: list[dict]) -> None:
    spec = table(name)
    uri = ensure_table(spark, spec, ddl, settings)
    if rows:
        df = spark.createDataFrame(rows, schema=schema_from_ddl(spark, ddl))
        df.write.format("delta").mode("append").save(uri)


def write_bronze(spark, settings, rows: list[dict]) -> None:
    """Append events to bronze/events."""
    _append(spark, settings, "events", BRONZE_EVENTS_DDL, rows)


def write_labeled(spark, settings, rows: list[dict]) -> None:
    """Append labeled impressions to silver/impressions_labeled."""
    _append(spark, settings, "impressions_labeled", IMPRESSIONS_LABELED_DDL, rows)


def write_dims(spark, settings, users: list[tuple], items: list[tuple]) -> None:
    """Write dims/users (id, country, device, age_bucket, signup) and dims/items
    (id, category, duration_ms, creator_id, created_at)."""
    keys_u = ["user_id", "country", "device", "age_bucket", "signup_time"]
    keys_i = ["item_id", "category", "duration_ms", "creator_id", "created_at"]
    rows_u = [{**dict(zip(keys_u, u, strict=True)), "source_file": "test"} for u in users]
    rows_i = [{**dict(zip(keys_i, i, strict=True)), "source_file": "test"} for i in items]
    _append(spark, settings, "users", USERS_DDL, rows_u)
    _append(spark, settings, "items", ITEMS_DDL, rows_i)


def tile_rows(spark, settings, name: str) -> dict[tuple, dict]:
    """Tiles keyed by (entity id, hour as epoch seconds)."""
    df = read_table(spark, table(name), settings)
    key = df.columns[0]
    return {
        (r[key], int(r["hour"].replace(tzinfo=UTC).timestamp())): r.asDict() for r in df.collect()
    }


def ts(h: datetime) -> int:
    return int(h.timestamp())


DIM_ITEMS = [
    (10, "music", 60_000, 7, A - timedelta(days=30)),
    (11, "cooking-asmr", 30_000, 7, A - timedelta(days=30)),  # untracked -> "other"
]


@pytest.mark.integration
def test_tiles_hand_computed(spark, settings):
    write_dims(spark, settings, [], DIM_ITEMS)
    write_bronze(
        spark,
        settings,
        [
            event("i1", "impression", A + timedelta(minutes=1)),
            event("i2", "impression", A + timedelta(minutes=2), item_id=11),
            event("p1", "play", A + timedelta(minutes=3), watch_ms=1500),
            event("p2", "play", A + timedelta(minutes=9), item_id=11, watch_ms=500),
            event("p3", "play", A + timedelta(minutes=9), item_id=12, watch_ms=1),  # no dim row
            event("l1", "like", A + timedelta(minutes=4)),
            event("k1", "skip", A + timedelta(minutes=5), item_id=11),
            event("u2", "share", A + timedelta(minutes=6), user_id=2),
            event("n1", "impression", A + HOUR, user_id=2),  # next hour: its own tile
        ],
    )
    result = build_tiles(spark, settings, A, A + 2 * HOUR)
    assert result.rebuilt_hours == ["2026-11-20T10:00:00Z", "2026-11-20T11:00:00Z"]
    assert result.rows == {"user_tiles_hourly": 3, "item_tiles_hourly": 4}

    users = tile_rows(spark, settings, "user_tiles_hourly")
    u1 = users[(1, ts(A))]
    assert {k: u1[k] for k in ("impressions", "plays", "likes", "shares", "skips", "watch_ms")} == {
        "impressions": 2,
        "plays": 3,
        "likes": 1,
        "shares": 0,
        "skips": 1,
        "watch_ms": 2001,
    }
    # item 11's category is not tracked and item 12 has no dimension row: both count as other.
    assert (u1["plays_music"], u1["plays_other"], u1["plays_comedy"]) == (1, 2, 0)
    # Newest first; p2 and p3 tie on event_time, so the larger event_id comes first.
    assert [p["event_id"] for p in u1["recent_plays"]] == ["p3", "p2", "p1"]
    assert [p["item_id"] for p in u1["recent_plays"]] == [12, 11, 10]
    assert users[(2, ts(A))]["shares"] == 1
    assert users[(2, ts(A + HOUR))]["impressions"] == 1
    assert str(u1["date"]) == "2026-11-20"

    items = tile_rows(spark, settings, "item_tiles_hourly")
    assert sorted(items) == [(10, ts(A)), (10, ts(A + HOUR)), (11, ts(A)), (12, ts(A))]
    i11 = items[(11, ts(A))]
    assert (i11["impressions"], i11["plays"], i11["skips"], i11["watch_ms"]) == (1, 1, 1, 500)
    assert built_arrival_hours(settings, A - HOUR, A + 3 * HOUR) == {A, A + HOUR}


@pytest.mark.integration
def test_late_event_rebuilds_its_hour_and_beyond_lateness_is_excluded(spark, settings):
    write_dims(spark, settings, [], DIM_ITEMS)
    write_bronze(
        spark,
        settings,
        [
            event("a1", "play", A + timedelta(minutes=10)),
            event("b1", "play", A + HOUR + timedelta(minutes=10), arrival=A + HOUR),
        ],
    )
    build_tiles(spark, settings, A, A + 2 * HOUR)
    assert tile_rows(spark, settings, "user_tiles_hourly")[(1, ts(A))]["plays"] == 1

    # Hour A's event arrives 2 hours late (within lateness): arrival hour A+2 rebuilds hour A.
    write_bronze(
        spark, settings, [event("a2", "play", A + timedelta(minutes=50), arrival=A + 2 * HOUR)]
    )
    first = build_tiles(spark, settings, A + 2 * HOUR, A + 3 * HOUR)
    assert first.rebuilt_hours == ["2026-11-20T10:00:00Z", "2026-11-20T12:00:00Z"]
    after_late = tile_rows(spark, settings, "user_tiles_hourly")
    assert after_late[(1, ts(A))]["plays"] == 2
    assert after_late[(1, ts(A + HOUR))]["plays"] == 1  # untouched hour kept, not duplicated

    # Re-running the same interval gives the same content.
    build_tiles(spark, settings, A + 2 * HOUR, A + 3 * HOUR)
    assert tile_rows(spark, settings, "user_tiles_hourly") == after_late

    # 3 hours late is beyond lateness: flagged in bronze, never folded into hour A.
    write_bronze(
        spark, settings, [event("a3", "play", A + timedelta(minutes=55), arrival=A + 3 * HOUR)]
    )
    beyond = build_tiles(spark, settings, A + 3 * HOUR, A + 4 * HOUR)
    assert beyond.rebuilt_hours == ["2026-11-20T13:00:00Z"]
    assert tile_rows(spark, settings, "user_tiles_hourly") == after_late


def _plain(value):
    """A value comparable across Spark and delta-rs (aware UTC times become naive UTC)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _plain(v)) for k, v in value.items()))
    if hasattr(value, "asDict"):
        return _plain(value.asDict())
    return value


def assert_delta_rs_reads_same_rows(spark, settings, name: str) -> int:
    """delta-rs (no JVM) reads the same rows as Spark; returns the row count."""
    from deltalake import DeltaTable

    spec = table(name)
    via_rs = DeltaTable(spec.uri(settings)).to_pyarrow_table().to_pylist()
    via_spark = [r.asDict(recursive=True) for r in read_table(spark, spec, settings).collect()]
    assert sorted(map(_plain, via_rs)) == sorted(map(_plain, via_spark))
    return len(via_spark)


@pytest.mark.integration
def test_tiles_readable_by_delta_rs(spark, settings):
    write_dims(spark, settings, [], DIM_ITEMS)
    write_bronze(spark, settings, [event("p1", "play", A), event("i1", "impression", A, user_id=2)])
    build_tiles(spark, settings, A, A + HOUR)
    assert assert_delta_rs_reads_same_rows(spark, settings, "user_tiles_hourly") == 2
    assert assert_delta_rs_reads_same_rows(spark, settings, "item_tiles_hourly") == 1
