"""The reader's read-ahead thread: order kept, errors re-raised, stopped when abandoned."""

from __future__ import annotations

import threading
import time

import pytest

from reclake.reader.prefetch import prefetch


def test_items_arrive_in_order():
    assert list(prefetch(iter(range(50)), ahead=2)) == list(range(50))
    assert list(prefetch(iter([]))) == []


def test_producer_error_is_raised_in_the_consumer():
    def failing():
        yield 1
        raise OSError("disk gone")

    items = prefetch(failing())
    assert next(items) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(items)


def test_closing_stops_the_producer():
    produced = []

    def endless():
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    before = set(threading.enumerate())
    items = prefetch(endless(), ahead=1)
    assert next(items) == 0
    items.close()
    time.sleep(0.3)
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count <= 3  # bounded read-ahead, nothing after close
    assert not [t for t in set(threading.enumerate()) - before if t.is_alive()]
