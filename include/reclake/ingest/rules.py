"""Validation rules of the landing contract as Spark column expressions (no Python UDFs).

Each line is parsed once into a VARIANT, which keeps the JSON token types, so a string "12"
is told apart from the integer 12 and a missing field from a wrong-typed one. The rules run in
a fixed order and the first failing rule gives the row its `reason` and `detail`.
"""

from __future__ import annotations

from datetime import timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from reclake.contract import (
    EVENT_FIELDS,
    EVENT_TYPES,
    MAX_ID_LENGTH,
    MAX_POSITION,
    MAX_WATCH_MS,
)
from reclake.timeutil import HOUR

# Reason codes, in the order their rules are checked (first failing rule wins).
INVALID_UTF8 = "invalid_utf8"
MALFORMED_JSON = "malformed_json"
NOT_OBJECT = "not_object"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
UNKNOWN_EVENT_TYPE = "unknown_event_type"
OUT_OF_RANGE = "out_of_range"
BAD_TIMESTAMP = "bad_timestamp"
FUTURE_TIMESTAMP = "future_timestamp"
REASONS = (
    INVALID_UTF8,
    MALFORMED_JSON,
    NOT_OBJECT,
    MISSING_FIELD,
    WRONG_TYPE,
    UNKNOWN_EVENT_TYPE,
    OUT_OF_RANGE,
    BAD_TIMESTAMP,
    FUTURE_TIMESTAMP,
)

# ISO-8601 with a mandatory zone (Z or +hh:mm); fractions beyond microseconds are truncated.
EVENT_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"

# Variant type names (schema_of_variant) that the contract's JSON types accept.
_VARIANT_TYPE = {"string": "STRING", "integer": "BIGINT"}
# Spark SQL type of each contract JSON type, as the typed fields are read.
SQL_TYPE = {"string": "string", "integer": "bigint"}
_RANGES = {
    "user_id": (1, None),
    "item_id": (1, None),
    "position": (0, MAX_POSITION),
    "watch_ms": (0, MAX_WATCH_MS),
}


def _kind(name: str) -> Column:
    """Variant type name of a field: null when absent, VOID when JSON null."""
    return F.col(f"_kind_{name}")


def _present(name: str) -> Column:
    """Field is there and not JSON null (null counts as missing)."""
    return _kind(name).isNotNull() & (_kind(name) != "VOID")


# A JSON string literal, escapes included: its braces are text, not structure.
_STRING_LITERAL = r'"(?:[^"\\]|\\.)*"'
_OPENERS, _CLOSERS, _BLANKS = ("{", "["), ("}", "]"), (" ", "\t", "\r", "\n")


def _text_after_value(line: Column) -> Column:
    """True when something other than whitespace follows the line's first JSON value.

    The parser stops after the first value and ignores the rest, so this walks the line's
    structure itself: string literals are blanked, then a fold over the characters tracks the
    bracket depth and flags any non-blank character after depth first returns to 0. Most lines
    hold a single `}`, their last character, and skip the walk.
    """
    only_close_at_end = F.instr(line, "}") == F.length(F.rtrim(line))
    chars = F.split(F.regexp_replace(line, _STRING_LITERAL, '""'), "")
    start = F.struct(
        F.lit(0).alias("depth"), F.lit(False).alias("closed"), F.lit(False).alias("after")
    )

    def step(acc: Column, c: Column) -> Column:
        depth = acc["depth"] + F.when(c.isin(*_OPENERS), 1).when(c.isin(*_CLOSERS), -1).otherwise(0)
        return F.struct(
            depth.alias("depth"),
            (acc["closed"] | ((depth == 0) & c.isin(*_CLOSERS))).alias("closed"),
            (acc["after"] | (acc["closed"] & ~c.isin(*_BLANKS))).alias("after"),
        )

    walked = F.aggregate(chars, start, step)["after"]
    return F.when(only_close_at_end, F.lit(False)).otherwise(walked)


def future_horizon(arrival_hour: Column, max_future_skew_minutes: int) -> Column:
    """The latest event_time a line may hold: the end of its arrival hour plus clock skew."""
    return arrival_hour + F.lit(HOUR + timedelta(minutes=max_future_skew_minutes))


def _rules(line: Column, max_future_skew_minutes: int):
    """(condition, reason, detail) triples in evaluation order, over the extracted columns."""
    rules: list[tuple[Column, str, Column]] = [
        # Spark's text reader keeps a line's bytes as they are: without this rule invalid
        # bytes would reach bronze inside strings (read back as U+FFFD, the data altered).
        (~F.is_valid_utf8(line), INVALID_UTF8, F.lit("line is not valid UTF-8")),
        (F.col("_v").isNull(), MALFORMED_JSON, F.lit("line is not valid JSON")),
        (~F.ltrim(line).startswith("{"), NOT_OBJECT, F.lit("line is not a JSON object")),
        # parse_json stops after the first value: refuse trailing text and glued records.
        (
            ~F.rtrim(line).endswith("}") | _text_after_value(line),
            MALFORMED_JSON,
            F.lit("text after the JSON object"),
        ),
    ]
    for f in EVENT_FIELDS:
        if f.required == "always":
            rules.append((~_present(f.name), MISSING_FIELD, F.lit(f.name)))
    for f in EVENT_FIELDS:
        rules.append(
            (
                _present(f.name) & (_kind(f.name) != _VARIANT_TYPE[f.json_type]),
                WRONG_TYPE,
                F.concat(F.lit(f"{f.name}: expected JSON {f.json_type}, got "), _kind(f.name)),
            )
        )
    event_type = F.col("event_type")
    rules.append(
        (
            ~event_type.isin(*EVENT_TYPES),
            UNKNOWN_EVENT_TYPE,
            F.concat(F.lit("event_type: "), event_type),
        )
    )
    for f in EVENT_FIELDS:
        if f.required in EVENT_TYPES:  # required only for one event type
            rules.append(
                (
                    (event_type == f.required) & ~_present(f.name),
                    MISSING_FIELD,
                    F.lit(f"{f.name} (required for {f.required})"),
                )
            )
    # event_type and event_time have rules of their own; these two strings are free text.
    for name, longest in (("event_id", MAX_ID_LENGTH), ("request_id", None)):
        size = F.length(F.trim(F.col(name)))
        bad = size < 1 if longest is None else (size < 1) | (size > longest)
        limit = "non-empty" if longest is None else f"1..{longest} characters"
        rules.append((bad, OUT_OF_RANGE, F.lit(f"{name}: must be {limit}")))
    for name, (low, high) in _RANGES.items():
        value = F.col(name)
        bad = value < low if high is None else (value < low) | (value > high)
        bounds = f">= {low}" if high is None else f"{low}..{high}"
        rules.append((bad, OUT_OF_RANGE, F.lit(f"{name}: must be {bounds}")))
    rules.append(
        (
            # Year 0 and before parse, but most readers (Python, pandas) cannot hold them.
            F.col("event_time").isNull() | (F.year("event_time") < 1),
            BAD_TIMESTAMP,
            F.when(F.col("event_time").isNotNull(), F.lit("event_time: before year 1")).otherwise(
                F.lit("event_time: not ISO-8601 with a zone (e.g. 2026-11-20T13:05:09Z)")
            ),
        )
    )
    # Each line's own arrival hour sets its horizon, so one pass validates many drops.
    horizon = future_horizon(F.col("arrival_hour"), max_future_skew_minutes)
    rules.append(
        (
            F.col("event_time") > horizon,
            FUTURE_TIMESTAMP,
            F.concat(
                F.lit("event_time: after "),
                F.date_format(horizon, "yyyy-MM-dd'T'HH:mm:ss'+00:00'"),
                F.lit(" (end of arrival hour + skew)"),
            ),
        )
    )
    return rules


def validate(lines: DataFrame, max_future_skew_minutes: int) -> DataFrame:
    """Add typed contract fields plus `reason`/`detail` (null when the line is valid).

    `lines` holds the raw text in `value` and the line's `arrival_hour` (TIMESTAMP); other
    columns pass through.
    """
    # One lookup pulls every contract field out as a variant (SQL null when absent); the
    # kinds and typed values then read those small variants, not the whole object again.
    fields = ", ".join(f"{f.name}: variant" for f in EVENT_FIELDS)
    parsed = lines.withColumn("_v", F.try_parse_json("value")).withColumn(
        "_f", F.try_variant_get("_v", "$", f"struct<{fields}>")
    )
    # Separate projections, so Spark does not inline the variant lookups into each rule.
    extracted = parsed.select(
        "*",
        *[F.schema_of_variant(f"_f.{f.name}").alias(f"_kind_{f.name}") for f in EVENT_FIELDS],
        *[
            F.try_variant_get(f"_f.{f.name}", "$", SQL_TYPE[f.json_type]).alias(
                "_event_time_text" if f.name == "event_time" else f.name
            )
            for f in EVENT_FIELDS
        ],
    ).withColumn(
        # Null unless the text is a contract time: a zone-less time is never read as UTC, so
        # event_time (which the bulk import places lines by) is trustworthy on every line.
        "event_time",
        F.when(
            F.col("_event_time_text").rlike(EVENT_TIME_PATTERN),
            F.col("_event_time_text").try_cast("timestamp"),
        ),
    )
    # The rules pick a rule number (a cheap int CASE); reason and detail are looked up from
    # it afterwards, so a valid row never builds a struct or a detail string.
    listed = _rules(F.col("value"), max_future_skew_minutes)
    rule = None
    for number, (condition, _, _) in enumerate(listed, start=1):
        # A null condition (e.g. comparing a missing value) means the rule does not fire.
        hit = F.coalesce(condition, F.lit(False))
        rule = F.when(hit, F.lit(number)) if rule is None else rule.when(hit, F.lit(number))
    reasons = F.array(*[F.lit(reason) for _, reason, _ in listed])
    # No branch matches a valid row (null rule), so its detail is null.
    detail = None
    for number, (_, _, text) in enumerate(listed, start=1):
        hit = F.col("_rule") == number
        detail = F.when(hit, text) if detail is None else detail.when(hit, text)
    temporary = [
        "_v",
        "_f",
        "_rule",
        "_event_time_text",
        *[f"_kind_{f.name}" for f in EVENT_FIELDS],
    ]
    return (
        extracted.withColumn("_rule", rule)
        .select(
            "*",
            # Guarded: element_at's generated code reads a null index as 0 and fails.
            F.when(F.col("_rule").isNotNull(), F.element_at(reasons, F.col("_rule"))).alias(
                "reason"
            ),
            detail.alias("detail"),
        )
        .drop(*temporary)
    )
