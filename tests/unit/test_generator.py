"""The landing data generator: determinism, composition, exact fault accounting and realism.

The files are parsed and checked here against the landing contract independently of the
generator's own bookkeeping, then compared with its report."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from reclake import contract
from reclake.cli import main
from reclake.config import Settings
from reclake.generator import GenerationReport, GeneratorConfig, generate
from reclake.generator_events import simulate_hour
from reclake.generator_lines import event_lines, event_records, record_line
from reclake.lakefs import local_path

START = datetime(2026, 11, 20, tzinfo=UTC)
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
INTEGER_FIELDS = {f.name for f in contract.EVENT_FIELDS if f.json_type == "integer"}
MAX_SKEW = timedelta(minutes=Settings().max_future_skew_minutes)


def _hours(n: int, offset: int = 0) -> tuple[datetime, datetime]:
    return START + timedelta(hours=offset), START + timedelta(hours=offset + n)


def _read_lines(uri: str) -> list[str]:
    return gzip.decompress(Path(local_path(uri)).read_bytes()).decode().splitlines()


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not TIME_RE.match(text):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _problem(record: dict, arrival: datetime) -> str | None:
    """The contract violation of a parsed record (None when valid), checked field by field."""
    required = [f.name for f in contract.EVENT_FIELDS if f.required == "always"]
    if record.get("event_type") in contract.EVENT_TYPES:
        required += [f.name for f in contract.EVENT_FIELDS if f.required == record["event_type"]]
    if any(name not in record for name in required):
        return "missing_field"
    for name in INTEGER_FIELDS & record.keys():
        if type(record[name]) is not int:
            return "wrong_type"
    limits = {"user_id": (1, 2**63), "item_id": (1, 2**63), "position": (0, contract.MAX_POSITION)}
    limits["watch_ms"] = (0, contract.MAX_WATCH_MS)
    if any(not lo <= record[name] <= hi for name, (lo, hi) in limits.items() if name in record):
        return "out_of_range"
    if not 1 <= len(record["event_id"]) <= contract.MAX_ID_LENGTH:
        return "out_of_range"
    if record["event_type"] not in contract.EVENT_TYPES:
        return "unknown_event_type"
    event_time = _parse_time(record["event_time"])
    if event_time is None:
        return "bad_timestamp"
    if event_time > arrival + timedelta(hours=1) + MAX_SKEW:
        return "future_timestamp"
    return None


def _audit(report: GenerationReport) -> tuple[dict[str, Counter], list[dict]]:
    """Classify every line of every drop, in arrival order, like a strict ingest would."""
    seen: dict[str, datetime] = {}  # event_id -> arrival hour of its first copy
    per_drop: dict[str, Counter] = {}
    valid: list[dict] = []
    for drop in report.hours:
        arrival = datetime.fromisoformat(drop.arrival_hour.replace("Z", "+00:00"))
        counts: Counter = Counter()
        for uri in sorted(u for u in report.files if u.startswith(drop.uri + "/")):
            counts["files"] += 1
            for line in _read_lines(uri):
                counts["lines"] += 1
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if not isinstance(record, dict):
                    counts["malformed"] += 1
                    continue
                problem = _problem(record, arrival)
                if problem:
                    counts["bad"] += 1
                    counts["bad:" + problem] += 1
                elif record["event_id"] in seen:
                    counts["duplicates"] += 1
                    counts["duplicates_of_earlier_drop"] += seen[record["event_id"]] < arrival
                else:
                    seen[record["event_id"]] = arrival
                    event_time = _parse_time(record["event_time"])
                    lateness = arrival - event_time.replace(minute=0, second=0, microsecond=0)
                    late_hours = int(lateness / timedelta(hours=1))
                    counts["valid"] += 1
                    counts["late"] += 1 <= late_hours <= 2
                    counts["too_late"] += late_hours > 2
                    valid.append({**record, "_time": event_time, "_late_hours": late_hours})
        per_drop[drop.arrival_hour] = counts
    return per_drop, valid


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    """12 arrival hours with three times the default fault rates (enough faults to count)."""
    settings = Settings(lake_root=(tmp_path_factory.mktemp("faulty") / "lake").as_uri())
    config = GeneratorConfig(events_per_hour=3_000).with_fault_scale(3)
    report = generate(settings, *_hours(12), config)
    return config, report, *_audit(report)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """6 arrival hours with every fault rate at 0."""
    settings = Settings(lake_root=(tmp_path_factory.mktemp("clean") / "lake").as_uri())
    config = GeneratorConfig(events_per_hour=3_000).with_fault_scale(0)
    report = generate(settings, *_hours(6), config)
    return settings, report, *_audit(report)


def _file_bytes(settings: Settings) -> dict[str, bytes]:
    root = Path(local_path(settings.landing_uri))
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_report_counts_match_the_files_exactly(faulty):
    _, report, per_drop, _ = faulty
    assert len(report.hours) == 12
    for drop in report.hours:
        seen, claimed = per_drop[drop.arrival_hour], drop.counts
        assert seen["lines"] == claimed.lines
        assert seen["valid"] == claimed.valid_events
        assert seen["duplicates"] == claimed.duplicate_lines
        assert seen["late"] == claimed.late_events
        assert seen["too_late"] == claimed.too_late_events
        assert seen["malformed"] == claimed.malformed_lines
        assert seen["bad"] == claimed.bad_field_lines
        assert {k: seen["bad:" + k] for k in claimed.bad_field_by_kind} == (
            claimed.bad_field_by_kind
        )
        assert seen["files"] == claimed.files == 2
        assert claimed.lines == (
            claimed.valid_events
            + claimed.duplicate_lines
            + claimed.malformed_lines
            + claimed.bad_field_lines
        )
    total = sum(per_drop.values(), Counter())
    assert total["lines"] == report.total.lines
    assert total["valid"] == report.total.valid_events == sum(report.total.events_by_type.values())
    assert json.loads(json.dumps(asdict(report)))["total"]["lines"] == report.total.lines


def test_every_fault_kind_appears_near_its_rate(faulty):
    config, report, _, valid = faulty
    total = report.total
    assert total.malformed_lines == pytest.approx(config.malformed_rate * total.lines, rel=0.35)
    assert total.bad_field_lines == pytest.approx(config.bad_field_rate * total.lines, rel=0.25)
    assert min(total.bad_field_by_kind.values()) > 0
    assert total.duplicate_lines == pytest.approx(config.duplicate_rate * total.lines, rel=0.2)
    # Lateness is unbiased only for event hours whose every possible arrival is in the window.
    complete = [v for v in valid if START <= v["_time"] < START + timedelta(hours=6)]
    late = sum(1 <= v["_late_hours"] <= 2 for v in complete)
    too_late = sum(v["_late_hours"] > 2 for v in complete)
    assert late == pytest.approx(config.late_rate * len(complete), rel=0.2)
    assert too_late == pytest.approx(config.too_late_rate * len(complete), rel=0.4)


def test_late_events_land_within_their_bounds(faulty):
    _, report, _, valid = faulty
    lateness = Counter(v["_late_hours"] for v in valid)
    assert set(lateness) <= set(range(7))
    assert all(lateness[h] > 0 for h in range(7))
    assert report.total.late_events == lateness[1] + lateness[2]
    assert report.total.too_late_events == sum(lateness[h] for h in range(3, 7))


def test_some_duplicates_arrive_in_a_later_drop(faulty):
    _, report, per_drop, _ = faulty
    later = sum(c["duplicates_of_earlier_drop"] for c in per_drop.values())
    assert 0 < later < report.total.duplicate_lines


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        settings = Settings(lake_root=(tmp_path / name).as_uri())
        generate(settings, *_hours(2), GeneratorConfig(seed=seed, events_per_hour=600))
        runs[name] = _file_bytes(settings)
    assert runs["a"] == runs["b"]
    assert runs["a"].keys() == runs["c"].keys()
    assert all(runs["a"][k] != runs["c"][k] for k in runs["a"] if k.startswith("events/"))


def test_intervals_compose(tmp_path):
    config = GeneratorConfig(events_per_hour=800, files_per_hour=3)
    whole = Settings(lake_root=(tmp_path / "whole").as_uri())
    split = Settings(lake_root=(tmp_path / "split").as_uri())
    generate(whole, *_hours(8), config)
    first = generate(split, *_hours(4), config)
    second = generate(split, *_hours(4, offset=4), config)
    assert _file_bytes(split) == _file_bytes(whole)
    assert len(first.drops) == len(second.drops) == 4
    assert first.drops[0].endswith("events/date=2026-11-20/hour=00")


def test_rerun_with_fewer_part_files_leaves_no_stale_parts(tmp_path):
    settings = Settings(lake_root=(tmp_path / "lake").as_uri())
    generate(settings, *_hours(1), GeneratorConfig(events_per_hour=500, files_per_hour=4))
    report = generate(settings, *_hours(1), GeneratorConfig(events_per_hour=500))
    folder = Path(local_path(report.drops[0]))
    assert sorted(p.name for p in folder.iterdir()) == [
        "part-00000.jsonl.gz",
        "part-00001.jsonl.gz",
    ]


def test_clean_data_has_no_faults(clean):
    _, report, per_drop, valid = clean
    total = sum(per_drop.values(), Counter())
    assert total["lines"] == total["valid"] == report.total.valid_events > 10_000
    assert report.total.lines == report.total.valid_events
    for name in ("duplicate_lines", "late_events", "too_late_events", "malformed_lines"):
        assert getattr(report.total, name) == 0
    assert sum(report.total.bad_field_by_kind.values()) == 0
    assert all(v["_late_hours"] == 0 for v in valid)


def test_records_are_well_formed(clean):
    _, _, _, valid = clean
    assert all(re.fullmatch(r"[0-9a-f]{32}", v["event_id"]) for v in valid)
    assert all(re.fullmatch(r"[0-9a-f]{16}", v["request_id"]) for v in valid)
    assert len({v["event_id"] for v in valid}) == len(valid)
    assert all(("position" in v) == (v["event_type"] == "impression") for v in valid)
    assert all(("watch_ms" in v) == (v["event_type"] == "play") for v in valid)
    assert set(Counter(v["event_type"] for v in valid)) == set(contract.EVENT_TYPES)


def _dimension(settings: Settings, drop: str, key: str) -> dict[int, dict]:
    folder = Path(local_path(f"{settings.landing_uri}/{drop}"))
    rows = [json.loads(line) for f in folder.glob("*.jsonl.gz") for line in _read_lines(f.as_uri())]
    return {r[key]: r for r in rows}


def test_dimensions_cover_every_event_and_watch_fits_the_item(clean):
    settings, _, _, valid = clean
    users = _dimension(settings, contract.USERS_DROP, "user_id")
    items = _dimension(settings, contract.ITEMS_DROP, "item_id")
    assert all(set(u) == {f.name for f in contract.USER_FIELDS} for u in users.values())
    assert all(set(i) == {f.name for f in contract.ITEM_FIELDS} for i in items.values())
    assert {v["user_id"] for v in valid} <= users.keys()
    assert {v["item_id"] for v in valid} <= items.keys()
    # New items appear over time and are only shown after they are published.
    shown = [v for v in valid if v["item_id"] > GeneratorConfig().n_items]
    assert shown and all(_parse_time(items[v["item_id"]]["created_at"]) < v["_time"] for v in shown)
    plays = [v for v in valid if v["event_type"] == "play"]
    assert plays and all(v["watch_ms"] <= items[v["item_id"]]["duration_ms"] for v in plays)
    durations = np.array([i["duration_ms"] for i in items.values()])
    assert durations.min() >= 5_000 and durations.max() <= 180_000
    assert len({i["category"] for i in items.values()}) == 12


def test_actions_follow_an_impression_of_their_request(clean):
    _, _, _, valid = clean
    impressions = {
        (v["request_id"], v["item_id"]): v for v in valid if v["event_type"] == "impression"
    }
    # Actions of the first hour may follow impressions shown before the window.
    actions = [
        v
        for v in valid
        if v["event_type"] != "impression" and v["_time"] >= START + timedelta(hours=1)
    ]
    assert len(actions) > 1_000
    delays = []
    for action in actions:
        shown = impressions[(action["request_id"], action["item_id"])]
        assert shown["user_id"] == action["user_id"]
        delays.append((action["_time"] - shown["_time"]).total_seconds())
    delays = np.array(delays)
    assert delays.min() >= 0
    beyond_window = np.mean(delays > 30 * 60)
    assert 0.005 < beyond_window < 0.05
    assert np.median(delays) < 60


def test_engagement_decays_with_position(clean):
    _, _, _, valid = clean
    position = {
        (v["request_id"], v["item_id"]): v["position"]
        for v in valid
        if v["event_type"] == "impression"
    }
    shown = Counter(min(p, 9) // 5 for p in position.values())
    played = Counter(
        min(position[(v["request_id"], v["item_id"])], 9) // 5
        for v in valid
        if v["event_type"] == "play" and (v["request_id"], v["item_id"]) in position
    )
    assert played[0] / shown[0] > 1.3 * played[1] / shown[1]


def test_item_popularity_is_heavy_tailed(clean):
    _, _, _, valid = clean
    per_item = Counter(v["item_id"] for v in valid if v["event_type"] == "impression")
    counts = sorted(per_item.values(), reverse=True)
    top = max(1, GeneratorConfig().n_items // 100)
    assert sum(counts[:top]) / sum(counts) > 0.15  # uniform popularity would give ~1%


def test_traffic_follows_the_daily_curve(tmp_path):
    settings = Settings(lake_root=(tmp_path / "lake").as_uri())
    config = GeneratorConfig(events_per_hour=1_000).with_fault_scale(0)
    day = generate(settings, *_hours(24), config)
    lines = {datetime.fromisoformat(h.arrival_hour[:-1]).hour: h.counts.lines for h in day.hours}
    assert lines[18] > 2 * lines[6]
    assert max(lines, key=lines.get) in range(15, 22)
    # events_per_hour is the mean over a day
    assert day.total.lines == pytest.approx(24 * config.events_per_hour, rel=0.1)


def test_column_renderer_matches_json_of_the_record():
    batch = simulate_hour(GeneratorConfig(events_per_hour=3_000), 493_000)
    rows = np.arange(len(batch.time_ms))
    rendered = sorted(event_lines(batch, rows).to_pylist())
    expected = sorted(record_line(r) + "\n" for r in event_records(batch, rows))
    assert rendered == expected


def test_interval_before_the_events_epoch_is_rejected(tmp_path):
    settings = Settings(lake_root=(tmp_path / "lake").as_uri())
    with pytest.raises(ValueError, match="from 2026-01-01"):
        generate(settings, "2025-12-31T00:00Z", "2025-12-31T01:00Z")
    with pytest.raises(ValueError, match="whole hours"):
        generate(settings, "2026-11-20T00:30Z", "2026-11-20T01:00Z")


def test_cli_prints_the_report_as_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECLAKE_LAKE_ROOT", str(tmp_path / "lake"))
    argv = ["generate", "--start", "2026-11-20T00:00Z", "--end", "2026-11-20T02:00Z"]
    argv += ["--events-per-hour", "800", "--seed", "11", "--fault-scale", "0", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert [h["arrival_hour"] for h in out["hours"]] == [
        "2026-11-20T00:00:00Z",
        "2026-11-20T01:00:00Z",
    ]
    written = sum(len(_read_lines(u)) for u in out["files"] if "/events/" in u)
    assert written == out["total"]["lines"] == out["total"]["valid_events"]
    assert out["seed"] == 11 and out["seconds"] >= 0


def test_cli_text_output_has_a_total_row(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECLAKE_LAKE_ROOT", str(tmp_path / "lake"))
    argv = ["generate", "--start", "2026-11-20T05:00Z", "--end", "2026-11-20T06:00Z"]
    assert main([*argv, "--events-per-hour", "500"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["arrival_hour", "lines"]
    assert lines[1].startswith("2026-11-20T05:00:00Z") and lines[2].startswith("total")


def test_config_rejects_impossible_rates():
    with pytest.raises(ValueError):
        GeneratorConfig(late_rate=0.8, too_late_rate=0.5)
    with pytest.raises(ValueError):
        GeneratorConfig().with_fault_scale(-1)
    scaled = GeneratorConfig().with_fault_scale(2)
    assert scaled.bad_field_rate == 2 * GeneratorConfig().bad_field_rate
