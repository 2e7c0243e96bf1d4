"""Read-ahead: run an iterator in a background thread, a bounded number of items ahead.

The reader's producer (Parquet decode + conversion to window arrays) is pyarrow and numpy
work that releases the GIL, so it overlaps with the consumer cutting batches and with the
training step. Items arrive in the producer's order, so determinism is unaffected."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()
_POLL_SECONDS = 0.1  # how often a blocked producer checks whether the consumer went away


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetch(items: Iterable[T], ahead: int = 1) -> Iterator[T]:
    """Yield `items` while a daemon thread produces up to `ahead` more; the producer's
    exceptions are re-raised here, and closing this generator stops the producer."""
    buffer: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as error:  # handed to the consumer and re-raised there
            put(_Failure(error))

    thread = threading.Thread(target=produce, name="reclake-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join(timeout=5 * _POLL_SECONDS)
