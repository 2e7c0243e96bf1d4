"""io.replace_where: the rows and version it reports come from the commit it made."""

from __future__ import annotations

from reclake import io
from reclake.tables import TableSpec

SPEC = TableSpec("t", "t", keys=("id",), partition_by=("day",))


def _frame(spark, rows):
    return spark.createDataFrame(rows, "id INT, day STRING, hour INT")


def _ids(spark, settings) -> list[int]:
    return sorted(r.id for r in io.read_table(spark, SPEC, settings).collect())


def test_replace_where_reports_the_rows_it_wrote(spark, settings):
    first = io.replace_where(
        _frame(spark, [(1, "a", 0), (2, "a", 1), (3, "b", 0)]), SPEC, settings, "true"
    )
    assert (first.rows, first.version) == (3, 0)  # the write created the table

    # A predicate on a non-partition column rewrites day a's file: the kept row (id 1) is
    # copied into the new file and must not count as written.
    second = io.replace_where(
        _frame(spark, [(4, "a", 1)]), SPEC, settings, "day = 'a' AND hour = 1"
    )
    assert (second.rows, second.version) == (1, 1)
    assert _ids(spark, settings) == [1, 3, 4]

    # Nothing to add and nothing matched: no commit, so nothing written and the same version.
    third = io.replace_where(_frame(spark, []), SPEC, settings, "day = 'z'")
    assert (third.rows, third.version) == (0, 1)
    assert _ids(spark, settings) == [1, 3, 4]
