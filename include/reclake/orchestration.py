"""What the reclake DAGs share: schedules, the label lag rule, Spark job wiring, JSON-result
capture for spark-submit, default_args and the failure callback.

Import-light on purpose (the DAG processor imports it on every parse): stdlib, pendulum, the
Spark provider and reclake.config / reclake.spark, which import no pyspark at module level.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pendulum
from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from reclake.config import PROJECT_ROOT, Settings
from reclake.contract import EVENTS_DROP
from reclake.objectstore import ACCESS_KEY_ENV, SECRET_KEY_ENV
from reclake.spark import job_jars
from reclake.spark import spark_conf as reclake_spark_conf

log = logging.getLogger(__name__)

JOBS_DIR = PROJECT_ROOT / "jobs"
EXAMPLES_DIR = PROJECT_ROOT / "examples"
SPARK_CONN_ID = "spark_default"
SPARK_POOL = "spark"
TRAINING_POOL = "training"
# Fixed UTC start: catchup from here; older hours are loaded with `airflow backfill create`.
START_DATE = pendulum.datetime(2026, 11, 1, tz="UTC")
# The hourly DAG waits this long for an arrival hour's landing drop.
LANDING_WAIT = timedelta(hours=6)
# A manual snapshot run of hours not built yet fails after this wait, saying what they lack.
MANUAL_WAIT = timedelta(minutes=10)
ALLOWED_TAGS = frozenset(
    {"reclake", "hourly", "daily", "maintenance", "snapshot", "training", "backfill"}
)
# Asset the training snapshot DAG updates (with snapshot metadata) and training consumes.
TRAINING_SAMPLES_ASSET_URI = "reclake://gold/training_samples"
# The daily vacuum runs in the maintenance run whose interval ends at this UTC hour.
VACUUM_HOUR_UTC = 0

# Jinja for the data interval bounds, ISO-8601 with offset (the jobs parse it as UTC).
START = "{{ data_interval_start | ts }}"
END = "{{ data_interval_end | ts }}"
# Environment passed through to spark-submit (and to the driver on YARN / Kubernetes).
PASSTHROUGH_ENV = ("SPARK_LOCAL_IP", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "JAVA_HOME")
CREDENTIAL_ENV = frozenset(ACCESS_KEY_ENV + SECRET_KEY_ENV)


def label_lag_hours(settings: Settings) -> int:
    """Hours between an arrival hour and the impression hour its run can label for good.

    The labels job (reclake.features.labels.required_arrival_hour) calls impression hour H
    final once bronze holds arrival hour floor(H + 1h + window) + allowed_lateness: the window
    end counts, so a 60-minute window reaches into hour H + 2. The hourly run for arrival hour
    S ingests S first, so it can label H = S - lag with lag = 1 + window // 60 + lateness.
    """
    return 1 + settings.attribution_window_minutes // 60 + settings.allowed_lateness_hours


def labeled_hour_in_lake(
    arrival_hour: datetime, lag_hours: int, ingested: Sequence[datetime]
) -> bool:
    """Whether the hour an hourly run labels (arrival hour - lag) lies inside the lake's data.

    A lake starts at its first ingested arrival hour: earlier hours have no events at all, so
    their labels, samples and validation are skipped rather than failed for ever.
    """
    if not ingested:
        return False
    # Compare instants: pendulum and stdlib UTC datetimes do not always compare directly.
    first = min(hour.timestamp() for hour in ingested)
    return arrival_hour.timestamp() - lag_hours * 3600 >= first


def shifted(bound: str, hours: int) -> str:
    """Jinja for a data interval bound ('data_interval_start'/'..._end') moved back `hours`."""
    if hours == 0:
        return f"{{{{ {bound} | ts }}}}"
    return f"{{{{ ({bound} - macros.timedelta(hours={hours})) | ts }}}}"


def jars_csv(settings: Settings) -> str:
    """Comma list of the jobs' JARs for --jars; empty (with a warning) when not fetched yet."""
    try:
        jars = job_jars(settings)
    except FileNotFoundError as exc:
        # Parse time must not fail on a fresh clone; the spark-submit fails clearly instead.
        log.warning("%s", exc)
        return ""
    if not jars:
        log.warning("no Delta JARs in %s: run `make setup`", settings.jars_dir)
    return ",".join(jars)


def spark_conf(settings: Settings) -> dict[str, str]:
    """Spark properties for every job: reclake's own (Delta, UTC, local binding) as strings."""
    conf = dict(reclake_spark_conf(settings))
    # The driver's memory is fixed when its JVM starts: spark-submit passes it, not the session.
    conf.pop("spark.driver.memory", None)
    return conf


def spark_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """RECLAKE_* settings and Spark's own variables from this process, for the job's env."""
    environ = os.environ if environ is None else environ
    return {
        k: v
        for k, v in sorted(environ.items())
        if (k.startswith("RECLAKE_") or k in PASSTHROUGH_ENV)
        and v != ""
        # env_vars are rendered and stored with the task instance: credentials reach the
        # job through the inherited environment or ReclakeSparkSubmitOperator instead.
        and k not in CREDENTIAL_ENV
    }


def job_path(name: str) -> str:
    """Absolute path of a spark-submit entry point under jobs/."""
    return str(JOBS_DIR / name)


def spark_job(
    task_id: str,
    job: str,
    args: Sequence[str],
    settings: Settings,
    *,
    capture_result: bool = False,
    **kwargs: Any,
) -> SparkSubmitOperator:
    """A SparkSubmitOperator for jobs/<job> wired the reclake way (conn, pool, JARs, conf, env).

    With capture_result=True the job's final JSON stdout line becomes the task's XCom.
    """
    operator_cls = JsonResultSparkSubmitOperator if capture_result else ReclakeSparkSubmitOperator
    return operator_cls(
        task_id=task_id,
        conn_id=SPARK_CONN_ID,
        application=job_path(job),
        application_args=list(args),
        name=f"reclake-{task_id}",
        jars=jars_csv(settings),
        conf=spark_conf(settings),
        driver_memory=settings.spark_driver_memory,
        env_vars=spark_env(),
        pool=SPARK_POOL,
        **kwargs,
    )


def last_json_line(lines: Sequence[str]) -> dict[str, Any] | None:
    """The last line of output that parses as a JSON object, or None."""
    for line in reversed(lines):
        text = line.strip()
        if not (text.startswith("{") and text.endswith("}")):
            continue
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


class _CapturingSparkSubmitHook(SparkSubmitHook):
    """SparkSubmitHook that also keeps the spark-submit output lines it logs."""

    output_lines: list[str]

    def _process_spark_submit_log(self, itr: Iterator[Any]) -> None:
        self.output_lines = []

        def tee() -> Iterator[Any]:
            for line in itr:
                self.output_lines.append(line)
                yield line

        super()._process_spark_submit_log(tee())


class ReclakeSparkSubmitOperator(SparkSubmitOperator):
    """SparkSubmitOperator whose spark-submit gets the object store's credentials when the task
    read them from an Airflow connection: added to its environment as it starts, never to the
    rendered (stored) env_vars or the command line."""

    def _get_hook(self) -> SparkSubmitHook:
        from reclake.config import load_settings
        from reclake.objectstore import child_env

        hook = super()._get_hook()
        secrets = child_env(load_settings())
        if secrets:
            hook._env_vars = {**(hook._env_vars or {}), **secrets}
        return hook


class JsonResultSparkSubmitOperator(ReclakeSparkSubmitOperator):
    """SparkSubmitOperator that returns the job's final JSON stdout line (pushed to XCom).

    The line is read from spark-submit's own output, so it needs client deploy mode (the
    default). A result with "success": false is a verdict, not an accident: the task fails
    without retries, so a failed validation gate blocks publish at once.
    """

    def _get_hook(self) -> SparkSubmitHook:
        hook = super()._get_hook()
        # Same hook state (connection, conf, args), with the output tee added.
        hook.__class__ = _CapturingSparkSubmitHook
        return hook

    def execute(self, context: Any) -> dict[str, Any]:
        """Run spark-submit and return its final JSON line; a failed gate fails for good."""
        from airflow.sdk.exceptions import AirflowFailException

        try:
            super().execute(context)
        except Exception as exc:
            result = self._result()
            if result is not None and result.get("success") is False:
                raise AirflowFailException(f"{self.task_id} failed its gate: {result}") from exc
            raise
        result = self._result()
        if result is None:
            raise RuntimeError(f"{self.application} printed no final JSON line")
        if result.get("success") is False:
            raise AirflowFailException(f"{self.task_id} failed its gate: {result}")
        return result

    def _result(self) -> dict[str, Any] | None:
        lines = getattr(self._hook, "output_lines", [])
        return last_json_line(lines)


def run_job(
    job: str,
    args: Sequence[str],
    *,
    fail_fast_codes: Sequence[int] = (),
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run jobs/<job> with this Python (for jobs that need no JVM), streaming its output to
    the task log; returns its final JSON line. Exit codes in fail_fast_codes fail for good."""
    import subprocess
    import sys

    from airflow.sdk.exceptions import AirflowFailException

    from reclake.config import load_settings
    from reclake.objectstore import child_env

    cmd = [sys.executable, job_path(job), *args]
    log.info("running %s", " ".join(cmd))
    lines: list[str] = []
    env = {**os.environ, **child_env(load_settings())}
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=PROJECT_ROOT, env=env
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            log.info(line.rstrip())
        code = proc.wait(timeout=timeout)
    result = last_json_line(lines)
    if code in fail_fast_codes or (result is not None and result.get("success") is False):
        raise AirflowFailException(f"{job} refused (exit {code}): {result}")
    if code != 0:
        raise RuntimeError(f"{job} exited {code}; last output: {''.join(lines[-20:])}")
    if result is None:
        raise RuntimeError(f"{job} printed no final JSON line")
    return result


def failure_summary(context: Mapping[str, Any]) -> str:
    """One readable paragraph about a failed task instance: what, which interval, why, where."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    map_index = getattr(ti, "map_index", -1)
    if map_index is not None and map_index >= 0:
        task_id = f"{task_id}[{map_index}]"
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    exc = context.get("exception")
    try:
        url = getattr(ti, "log_url", None)
    except Exception as url_exc:  # a missing API base URL must not hide the real failure
        url = f"<unavailable: {url_exc}>"
    return (
        f"reclake task failed: dag={dag_id} task={task_id} run_id={context.get('run_id')} "
        f"interval=[{start}, {end}) try={getattr(ti, 'try_number', '?')} "
        f"exception={type(exc).__name__ if exc else None}: {exc} log={url}"
    )


def on_failure(context: Mapping[str, Any]) -> None:
    """on_failure_callback: log the failure summary at ERROR (alerting hooks in here)."""
    log.error(failure_summary(context))


def default_args(**overrides: Any) -> dict[str, Any]:
    """default_args every reclake DAG uses: retries with backoff, timeout, failure callback."""
    args: dict[str, Any] = {
        "owner": "reclake",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        # Delay doubles per retry (2, 4 min), capped.
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=1),
        "on_failure_callback": on_failure,
    }
    args.update(overrides)
    return args


def landing_drop_uri(settings: Settings, arrival_hour: datetime) -> str:
    """URI of the landing folder holding the raw event drop of one arrival hour."""
    hour = arrival_hour.astimezone(UTC)
    relative = EVENTS_DROP.format(date=hour.strftime("%Y-%m-%d"), hour=hour.hour)
    return f"{settings.landing_uri}/{relative}"


def run_interval(
    params: Mapping[str, Any] | None,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    run_after: datetime | None = None,
) -> tuple[datetime, datetime]:
    """The interval a snapshot run covers: params start/end when given, else its data
    interval; a manual run without a logical date has none (Airflow 3), so it covers the last
    whole UTC day before it was triggered."""
    from reclake.timeutil import parse_utc

    params = params or {}
    if bool(params.get("start")) != bool(params.get("end")):
        raise ValueError(f"params start and end go together, got {dict(params)}")
    if params.get("start"):
        return parse_utc(params["start"]), parse_utc(params["end"])
    if data_interval_start is not None and data_interval_end is not None:
        return parse_utc(data_interval_start), parse_utc(data_interval_end)
    if run_after is None:
        raise ValueError("a run without params, data interval or trigger time has no interval")
    end = parse_utc(run_after).replace(hour=0, minute=0, second=0, microsecond=0)
    return end - timedelta(days=1), end


def interval_of(xcom: Mapping[str, str], key: str = "") -> tuple[datetime, datetime]:
    """(start, end) of an interval a planning task returned as {"<key>start", "<key>end"}."""
    from reclake.timeutil import parse_utc

    return parse_utc(xcom[f"{key}start"]), parse_utc(xcom[f"{key}end"])


def xcom_field(task_id: str, key: str) -> str:
    """Jinja for one field of a task's returned dict (rendered into spark-submit arguments)."""
    return f"{{{{ ti.xcom_pull(task_ids='{task_id}')['{key}'] }}}}"


def samples_deadline(
    first_poke: datetime,
    interval_end: datetime,
    run_type: str,
    lag_hours: int,
    wait_minutes: float | None = None,
) -> datetime:
    """When a snapshot run stops waiting for its samples and fails with what is missing.

    A manual run asks for hours the user believes are built: it waits `wait_minutes`
    (default MANUAL_WAIT) at most. A scheduled run waits as long as its day's last hour can
    legitimately take: the label lag, the hourly DAG's wait for a late drop, an hour to process.
    """
    if wait_minutes is not None:
        return first_poke + timedelta(minutes=wait_minutes)
    if run_type == "manual":
        return first_poke + MANUAL_WAIT
    due = interval_end + timedelta(hours=lag_hours) + LANDING_WAIT + timedelta(hours=1)
    return max(first_poke + MANUAL_WAIT, due)


def write_audit_publish(settings: Settings, interval_task: str, asset: Any) -> tuple[Any, Any]:
    """pin -> (validate | audit) -> publish -> announce of gold/training_samples for the
    interval the task `interval_task` returned ({"start", "end"}); returns the first and last
    tasks.

    The version is pinned first, so the gate (a Spark job) and the point-in-time audit (plain
    Python) check the very same rows side by side: on a cluster the audit runs on the Airflow
    worker while validation runs on the executors, and on one machine it fills the cores the
    gate leaves idle. Both fail without retries and publish needs both, so nothing unproven
    publishes; the announce task emits the asset event (snapshot id, version, rows, interval).
    """
    from airflow.sdk import Metadata, task

    @task(task_id="pin_version")
    def pin() -> dict[str, Any]:
        """The training_samples version the gate and the audit check: its newest now."""
        from reclake.config import load_settings
        from reclake.maintenance.deltalog import latest_version
        from reclake.tables import table

        return {"version": latest_version(table("training_samples").uri(load_settings()))}

    args = ["--table", "training_samples", "--version", xcom_field("pin_version", "version")]
    args += ["--start", xcom_field(interval_task, "start")]
    args += ["--end", xcom_field(interval_task, "end")]
    validate = spark_job(
        "validate_training_samples",
        "validate.py",
        args,
        settings,
        capture_result=True,
    )

    @task(task_id="audit_training_samples")
    def audit(pinned: dict[str, Any], ti=None) -> dict[str, Any]:
        """Recompute a sample of the pinned version's rows in the interval from bronze (plain
        Python: no JVM, so outside the spark pool, beside the gate)."""
        start, end = interval_of(ti.xcom_pull(task_ids=interval_task))
        args = ["--table", "training_samples", "--version", str(pinned["version"])]
        args += ["--start", start.isoformat(), "--end", end.isoformat()]
        # Exit 1 is mismatches: no retry helps.
        return run_job("audit.py", args, fail_fast_codes=(1,))

    @task(
        task_id="publish_snapshot",
        execution_timeout=timedelta(minutes=30),
        max_active_tis_per_dag=1,
    )
    def publish(validation: dict[str, Any], audited: dict[str, Any], ti=None) -> dict[str, Any]:
        """Publish the validated, audited version (plain Python: the registry needs no JVM)."""
        start, end = interval_of(ti.xcom_pull(task_ids=interval_task))
        args = [*publish_args(validation, start, end), "--audit-id", str(audited["id"])]
        # Exit 1 is the gate refusing (failed or mismatched validation or audit): no retry helps.
        return run_job("publish_snapshot.py", args, fail_fast_codes=(1,))

    @task(task_id="announce_snapshot", outlets=[asset])
    def announce(published: dict[str, Any], validation: dict[str, Any], ti=None):
        """Emit the asset event that names the new snapshot."""
        start, end = interval_of(ti.xcom_pull(task_ids=interval_task))
        yield Metadata(asset, snapshot_event_extra(published, validation, start, end))

    pinned = pin()
    pinned >> validate
    published = publish(validate.output, audit(pinned))
    announced = announce(published, validate.output)
    return pinned, announced


# Stages of reclake_backfill in pipeline order: stage name -> its task id.
BACKFILL_STAGES = {
    "ingest": "ingest_events",
    "dims": "load_dims",
    "tiles": "build_tiles",
    "labels": "label_impressions",
    "samples": "build_training_samples",
}


def backfill_plan(params: Mapping[str, Any], lag_hours: int) -> dict[str, Any]:
    """Ranges of a backfill from its params: arrival hours [start, end) to ingest and fold
    into tiles; impression hours [start, end - lag) to label, sample and publish."""
    from reclake.timeutil import hours_between, iso, parse_utc

    start, end = parse_utc(str(params.get("start", ""))), parse_utc(str(params.get("end", "")))
    if not list(hours_between(start, end)):
        raise ValueError(f"end {iso(end)} must be after start {iso(start)}")
    chunk_hours = int(params.get("chunk_hours") or 168)
    if chunk_hours < 1:
        raise ValueError(f"chunk_hours must be >= 1, got {chunk_hours}")
    stages = list(params.get("stages") or BACKFILL_STAGES)
    unknown = sorted(set(stages) - set(BACKFILL_STAGES))
    if unknown:
        raise ValueError(f"unknown stages {unknown}; known: {', '.join(BACKFILL_STAGES)}")
    sampled_end = end - timedelta(hours=lag_hours)
    labeled = {"labels", "samples"} & set(stages) or params.get("publish")
    if labeled and sampled_end <= start:
        raise ValueError(
            f"[{iso(start)}, {iso(end)}) is too short to label: impressions are final "
            f"{lag_hours} hour(s) after they arrive, so give at least {lag_hours + 1} hours"
        )
    return {
        "arrival_start": iso(start),
        "arrival_end": iso(end),
        "start": iso(start),
        "end": iso(max(sampled_end, start)),
        "chunk_hours": chunk_hours,
        "stages": [s for s in BACKFILL_STAGES if s in stages],
        "publish": bool(params.get("publish")),
    }


def backfill_wants(plan: Mapping[str, Any], step: str) -> bool:
    """Whether a backfill plan runs a stage (or, for "publish", the publish chain)."""
    return bool(plan["publish"]) if step == "publish" else step in plan["stages"]


def snapshot_from_events(events: Mapping[Any, Sequence[Any]] | None) -> dict[str, Any]:
    """The extra of the newest training_samples asset event that triggered this run."""
    candidates = []
    for key, asset_events in (events or {}).items():
        if getattr(key, "uri", key) != TRAINING_SAMPLES_ASSET_URI:
            continue
        candidates.extend(asset_events)
    if not candidates:
        raise ValueError(f"no {TRAINING_SAMPLES_ASSET_URI} asset event triggered this run")
    newest = max(candidates, key=lambda event: event.timestamp)
    extra = dict(newest.extra or {})
    if not extra.get("snapshot_id"):
        raise ValueError(f"asset event {newest} carries no snapshot_id: {extra}")
    return extra


def vacuum_due(data_interval_end: datetime) -> bool:
    """True for the maintenance run that closes a UTC day (its interval ends at VACUUM_HOUR)."""
    return data_interval_end.astimezone(UTC).hour == VACUUM_HOUR_UTC


def publish_args(validation: Mapping[str, Any], start: datetime, end: datetime) -> list[str]:
    """Arguments of jobs/publish_snapshot.py for a passed validation result and interval."""
    return [
        "--table",
        validation.get("table", "training_samples"),
        "--validation-id",
        str(validation["id"]),
        "--start",
        start.isoformat(),
        "--end",
        end.isoformat(),
    ]


def snapshot_event_extra(
    published: Mapping[str, Any],
    validation: Mapping[str, Any],
    start: datetime | None,
    end: datetime | None,
) -> dict[str, Any]:
    """Asset event extra for a published snapshot (JSON-safe)."""
    return {
        "snapshot_id": published["id"],
        "version": published["version"],
        "row_count": published["row_count"],
        "table": validation.get("table", "training_samples"),
        "validation_id": validation["id"],
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
    }
