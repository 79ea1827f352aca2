"""`read_ahead`: the next stream read while this one is, each handed over when read whole, failed, or far enough
ahead; never more than a few batches in memory."""
from __future__ import annotations

import time

import pyarrow as pa
import pytest

from jira_assets.extract import read_ahead
from jira_assets.parquet.stream import RecordBatchStream

SCHEMA = pa.schema([("n", pa.int64())])


def _stream(batches: int, fail_at: int | None = None, produced: list | None = None,
            delay: float = 0.0) -> RecordBatchStream:
    def pages():
        for i in range(batches):
            if i == fail_at:
                raise RuntimeError(f"page {i} was refused")
            time.sleep(delay)
            if produced is not None:
                produced.append(i)
            yield pa.RecordBatch.from_pydict({"n": [i]}, schema=SCHEMA)

    return RecordBatchStream(SCHEMA, pages())


def _read(stream: RecordBatchStream) -> list[int]:
    return [v for batch in stream for v in batch.column(0).to_pylist()]


def test_a_big_stream_is_handed_over_after_max_batches_and_never_runs_further_ahead_of_its_reader():
    produced: list[int] = []
    days = read_ahead(["big"], lambda _: _stream(50, produced=produced), max_batches=4)
    _, stream = next(days)
    time.sleep(0.3)  # the producer has had time to run ahead if it could
    assert len(produced) <= 4 + 1  # the queue's batches, plus the one waiting for room
    assert _read(stream) == list(range(50))


def test_a_failure_after_the_hand_over_reaches_the_reader():
    days = read_ahead(["big"], lambda _: _stream(20, fail_at=12), max_batches=2)
    _, stream = next(days)
    with pytest.raises(RuntimeError, match="page 12 was refused"):
        _read(stream)


def test_a_reader_that_stops_early_does_not_leave_the_next_producer_waiting_forever():
    produced: list[int] = []
    days = read_ahead(["d1", "d2"], lambda day: _stream(100, produced=produced), max_batches=2)
    next(days)
    time.sleep(0.2)
    days.close()  # the step failed while writing d1: the generator is closed
    time.sleep(1.0)
    stopped_at = len(produced)
    time.sleep(0.5)
    assert len(produced) == stopped_at < 200  # both producers gave up instead of running on or waiting


def test_read_ahead_keeps_the_order_and_reads_the_next_stream_while_this_one_is_read():
    produced: dict[str, list] = {"d1": [], "d2": [], "d3": []}
    days = read_ahead(list(produced), lambda day: _stream(3, produced=produced[day], delay=0.05), max_batches=4)
    day, stream = next(days)
    assert day == "d1"
    time.sleep(0.5)  # while d1 is still unread, d2 is being fetched already, d3 not yet
    assert produced["d2"] == [0, 1, 2] and produced["d3"] == []
    assert _read(stream) == [0, 1, 2]
    assert [(d, _read(s)) for d, s in days] == [("d2", [0, 1, 2]), ("d3", [0, 1, 2])]


def test_read_ahead_reports_a_day_that_failed_in_its_turn_and_the_days_before_it_are_whole():
    days = read_ahead(["d1", "d2"], lambda day: _stream(3, fail_at=1 if day == "d2" else None))
    assert _read(next(days)[1]) == [0, 1, 2]
    day, outcome = next(days)
    assert day == "d2" and isinstance(outcome, RuntimeError)
