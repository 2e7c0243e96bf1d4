"""The event-log timeline tool: stages ordered by start, idle gaps, job descriptions."""

from __future__ import annotations

import json
import os

from bench.stage_timeline import log_file, read_stages, timeline


def _job(stages, description=None):
    props = {"spark.job.description": description} if description else {}
    return json.dumps({"Event": "SparkListenerJobStart", "Stage IDs": stages, "Properties": props})


def _stage(stage_id, start, end, tasks=2, name="save at x"):
    info = {"Stage ID": stage_id, "Number of Tasks": tasks, "Stage Name": name}
    if start is not None:
        info |= {"Submission Time": start, "Completion Time": end}
    return json.dumps({"Event": "SparkListenerStageCompleted", "Stage Info": info})


def test_stages_in_start_order_with_gaps_and_descriptions():
    log = [
        _job([1, 2], "replace_where"),
        _job([3]),
        _stage(2, 10_000, 12_500, tasks=8),
        _stage(1, 1_000, 4_000),
        _stage(3, 12_000, 13_000),  # overlaps stage 2: no gap
        _stage(4, None, None),  # skipped stage: left out
        json.dumps({"Event": "SparkListenerTaskEnd"}),
    ]
    stages = read_stages(log)
    assert [s.stage_id for s in stages] == [1, 2, 3]
    assert [s.job for s in stages] == ["replace_where", "replace_where", ""]
    lines = timeline(stages)
    assert lines[0] == "     0.0 +  0.0     3.0s tasks=2     stage 1     save at x | replace_where"
    assert "+  6.0     2.5s tasks=8" in lines[1]  # idle from 4.0 s to 10.0 s
    assert "+  0.0     1.0s" in lines[2]
    assert lines[-1] == "span 12.0 s over 3 stages"


def test_empty_log():
    assert timeline(read_stages([])) == ["no completed stages"]


def test_a_folder_gives_its_newest_event_log_not_the_status_marker(tmp_path):
    app = tmp_path / "eventlog_v2_local-1"
    app.mkdir()
    old, new = app / "events_1_local-1", app / "events_2_local-1"
    marker = app / "appstatus_local-1.inprogress"
    for i, path in enumerate((old, new, marker)):
        path.write_text("")
        os.utime(path, (1000 + i, 1000 + i))  # the marker is the newest file
    assert log_file(tmp_path) == new
    assert log_file(old) == old
