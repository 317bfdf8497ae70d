"""The time split around T, its windows, and the roles of the impressions (hand-computed)."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from solaris_batch.errors import InputNotFound
from solaris_batch.evaluation.split import EvalSplit, Roles, Rows, SplitSummary, available_windows
from solaris_batch.logs.layout import SUCCESS, partition_dir
from solaris_batch.timeutil import Window

H = timedelta(hours=1)
T = datetime(2026, 11, 21, 10, tzinfo=UTC)
US = 3_600_000_000


def test_available_windows_counts_consecutive_complete_hours(tmp_path):
    t0 = datetime(2026, 11, 21, 10, tzinfo=UTC)
    for h in (0, 1, 2, 4):
        d = partition_dir(tmp_path, t0 + timedelta(hours=h))
        d.mkdir(parents=True)
        (d / SUCCESS).touch()
    assert available_windows(tmp_path, t0, timedelta(hours=1), 9) == 3
    assert available_windows(tmp_path, t0, timedelta(hours=2), 9) == 1
    assert available_windows(tmp_path, t0, timedelta(hours=1), 2) == 2
    assert available_windows(tmp_path, t0 + timedelta(hours=3), timedelta(hours=1), 9) == 0


def test_rows_within_is_half_open():
    us = 3_600_000_000
    rows = Rows(*(np.arange(4) for _ in range(2)), np.arange(4), np.arange(4), np.ones(4, bool),
                np.zeros(4, bool), np.array(["feed"] * 4, dtype=object))
    rows.ts_us = np.array([0, us - 1, us, 2 * us])
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert rows.within(epoch, epoch + timedelta(hours=1)).tolist() == [True, True, False, False]


def test_split_windows_around_t():
    # k = 2 training windows, 3 windows after T covered by the logs
    s = EvalSplit(T, H, train_windows=2, after_windows=3)
    assert s.first == datetime(2026, 11, 21, 8, tzinfo=UTC)
    assert s.span == Window(datetime(2026, 11, 21, 8, tzinfo=UTC), datetime(2026, 11, 21, 13, tzinfo=UTC))
    assert s.train == Window(s.first, T) and s.test == Window(T, T + H)
    # one snapshot per training window, then T's, which keeps serving to the span's end (staleness)
    assert [(w.start.hour, w.end.hour) for w in s.serving_windows()] == [(8, 9), (9, 10), (10, 13)]
    assert [(w.start.hour, w.end.hour) for w in s.stale_windows()] == [(10, 11), (11, 12), (12, 13)]


def test_split_around_clips_to_the_logs_and_needs_the_test_horizon(tmp_path):
    for h in (10, 11):
        d = partition_dir(tmp_path, T.replace(hour=h))
        d.mkdir(parents=True)
        (d / SUCCESS).touch()
    assert EvalSplit.around(tmp_path, T, H, 4, 5) == EvalSplit(T, H, 4, 2)
    with pytest.raises(InputNotFound, match="pick an earlier --at"):
        EvalSplit.around(tmp_path, T + 2 * H, H, 4, 5)


def _impressions(hours_after_epoch, clicked):
    n = len(clicked)
    return Rows(np.arange(n), np.asarray(hours_after_epoch) * US, np.zeros(n, np.int64), np.zeros(n, np.int64),
                np.ones(n, bool), np.asarray(clicked, bool), np.array(["feed"] * n, dtype=object))


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def test_roles_split_train_and_test_with_the_training_base_rate():
    s = EvalSplit(EPOCH + 2 * H, H, train_windows=2, after_windows=2)  # train [0h, 2h), test [2h, 3h)
    imps = _impressions([0, 0.5, 1, 1.5, 2, 2.5, 3], [1, 0, 0, 0, 1, 0, 1])
    r = Roles.of(s, imps)
    assert r.train.tolist() == [True, True, True, True, False, False, False]
    assert r.test.tolist() == [False, False, False, False, True, True, False]  # 3h is the staleness window
    assert r.base_rate == 0.25  # 1 click in 4 training impressions
    summary = SplitSummary.of(s, imps, r, "1970-01-01T00:00:00+00:00", "v1")
    assert (summary.train_impressions, summary.train_clicks, summary.test_impressions, summary.test_clicks) == (
        4, 1, 2, 1)
    assert summary.vm_train == ("1970-01-01T00:00:00+00:00", "1970-01-01T02:00:00+00:00")
    assert summary.test == ("1970-01-01T02:00:00+00:00", "1970-01-01T03:00:00+00:00")
    assert summary.latest_train_ts == "1970-01-01T01:30:00+00:00"
    assert summary.earliest_test_ts == "1970-01-01T02:00:00+00:00"


def test_roles_need_clicks_on_both_sides():
    s = EvalSplit(EPOCH + 2 * H, H, train_windows=2, after_windows=1)
    with pytest.raises(InputNotFound, match="no clicks"):
        Roles.of(s, _impressions([0, 1, 2], [0, 0, 1]))
    with pytest.raises(InputNotFound, match="no clicks"):
        Roles.of(s, _impressions([0, 1, 2], [1, 0, 0]))
