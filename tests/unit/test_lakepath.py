"""Paths stored relative to the lake: one spelling per place, nothing outside the root."""

from __future__ import annotations

import pytest

from reclake.lakepath import (
    OutsideLake,
    canonical,
    checked,
    is_absolute,
    join,
    relative_to,
    relocate,
)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        # Hadoop's s3a:// (and the older s3n://) name the same objects as s3://
        ("s3a://bucket/lake", "s3://bucket/lake"),
        ("s3n://bucket/lake", "s3://bucket/lake"),
        ("s3://bucket/lake", "s3://bucket/lake"),
        # a plain absolute path and every file: spelling are the same local folder
        ("/data/lake", "file:///data/lake"),
        ("file:/data/lake", "file:///data/lake"),
        ("file:///data/lake", "file:///data/lake"),
        ("file://localhost/data/lake", "file:///data/lake"),
        # trailing and doubled slashes do not count
        ("s3a://bucket/lake/", "s3://bucket/lake"),
        ("file:///data//lake///", "file:///data/lake"),
        # another host's file share stays another place
        ("file://nas/data/lake", "file://nas/data/lake"),
    ],
)
def test_canonical_spelling(uri, expected):
    assert canonical(uri) == expected


@pytest.mark.parametrize(
    ("root", "uri", "relative"),
    [
        # the lake root in one spelling, the file in another
        ("s3a://b/lake", "s3://b/lake/gold/t/x.parquet", "gold/t/x.parquet"),
        ("s3://b/lake/", "s3a://b/lake/gold/t/x.parquet", "gold/t/x.parquet"),
        ("file:///data/lake", "/data/lake/gold/t", "gold/t"),
        ("/data/lake/", "file:/data/lake/gold/t/", "gold/t"),
        # percent-encoding: compared decoded, the remainder kept as the path spells it
        ("file:///data/my%20lake", "/data/my lake/t/d=a%2520b/x.parquet", "t/d=a%2520b/x.parquet"),
        # the root itself
        ("s3a://b/lake", "s3://b/lake/", ""),
    ],
)
def test_relative_to_any_spelling(root, uri, relative):
    assert relative_to(root, uri) == relative


@pytest.mark.parametrize(
    ("root", "uri"),
    [
        ("s3://b/lake", "s3://other/lake/x"),  # another bucket
        ("s3://b/lake", "s3://b/lake2/x"),  # a sibling that shares the prefix
        ("file:///data/lake", "s3://b/data/lake/x"),  # another store
        ("file:///data/lake", "/data/lake/../secrets"),  # leaves the root
        ("file:///data/lake", "/data/lake/t/%2E%2E/%2E%2E/x"),  # ... also when encoded
        ("file:///data/lake", "relative/x"),  # not absolute
    ],
)
def test_relative_to_refuses_what_is_outside(root, uri):
    with pytest.raises(OutsideLake):
        relative_to(root, uri)


@pytest.mark.parametrize(
    "relative", ["../x", "a/../../x", "a/%2e%2e/x", "/abs/x", "s3://b/x", "file:x", ""]
)
def test_checked_refuses_paths_that_leave_the_root(relative):
    with pytest.raises(OutsideLake):
        checked(relative)


def test_checked_drops_empty_segments():
    assert checked("gold//t/") == "gold/t"
    assert checked("", allow_empty=True) == ""


def test_join_keeps_the_roots_spelling():
    # Spark needs s3a://, delta-rs and pyarrow take it too (reclake.lakefs): keep the root's.
    assert join("s3a://b/lake/", "gold/t") == "s3a://b/lake/gold/t"
    assert join("file:///data/lake", "") == "file:///data/lake"
    with pytest.raises(OutsideLake):
        join("file:///data/lake", "../other")


@pytest.mark.parametrize(
    ("value", "marker", "relative"),
    [
        # already relative
        ("gold/training_samples", None, "gold/training_samples"),
        # absolute in the reading lake, another spelling
        ("s3://b/lake/gold/training_samples", None, "gold/training_samples"),
        # absolute in the lake before it moved: placed by the path it is known to have
        (
            "s3a://old-bucket/lake/gold/training_samples",
            "gold/training_samples",
            "gold/training_samples",
        ),
        (
            "/mnt/old/lake/_reclake/data_docs/index.html",
            "_reclake",
            "_reclake/data_docs/index.html",
        ),
    ],
)
def test_relocate(value, marker, relative):
    assert relocate(value, "s3a://b/lake", marker) == relative


@pytest.mark.parametrize(
    ("value", "marker"),
    [
        ("s3://old/lake/gold/t", None),  # moved, and nothing says where it belongs
        ("s3://old/lake/silver/t", "gold/t"),  # the marker is not in it
        ("../gold/t", None),  # relative, but leaves the lake
    ],
)
def test_relocate_refuses(value, marker):
    with pytest.raises(OutsideLake):
        relocate(value, "s3a://b/lake", marker)


@pytest.mark.parametrize(
    ("path", "absolute"),
    [("s3://b/x", True), ("/x", True), ("file:/x", True), ("x/y", False), ("x:y", False)],
)
def test_is_absolute(path, absolute):
    assert is_absolute(path) is absolute
