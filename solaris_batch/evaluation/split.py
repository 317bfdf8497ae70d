"""The strict time split around the evaluation point T, and the logged rows of its windows.

With ``k = train_windows`` and ``h = horizon``::

    [.. FM training ..)[ VM training: k serving windows )[ test: h )[ staleness windows .. )
                       T - k*h                          T         T+h

* The FM is trained on data before ``T - k*h`` (unless a model is given), so it has never seen a
  label of the rows its features are used on.
* The VMs train on the impressions of ``[T - k*h, T)`` and are tested on those of ``[T, T+h)``.
* The test window's snapshot keeps serving the staleness windows ``[T + j*h, T + (j+1)*h)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from solaris_batch.errors import InputNotFound
from solaris_batch.logs.layout import hour_complete
from solaris_batch.logs.reader import read_ads, read_window
from solaris_batch.model.features import AdFeatures, Events
from solaris_batch.timeutil import Window, to_us

ROW_COLUMNS = ["request_id", "ts", "user_id", "ad_id", "impressed", "clicked", "surface"]


def available_windows(logs: Path, at: datetime, horizon: timedelta, wanted: int) -> int:
    """How many consecutive horizon windows from ``at`` have every hour's ``_SUCCESS`` (<= wanted)."""
    n = 0
    while n < wanted and all(hour_complete(logs, h) for h in Window.after(at + n * horizon, horizon).hours()):
        n += 1
    return n


@dataclass(frozen=True)
class EvalSplit:
    """The windows of one evaluation: all are ``horizon`` long and UTC.

    Attributes:
        at: T, the start of the test horizon.
        horizon: length of every serving window (and of the test horizon).
        train_windows: k >= 1 serving windows before T whose impressions train the VMs.
        after_windows: windows from T on that the logs cover (>= 1, the first is the test horizon).
    """

    at: datetime
    horizon: timedelta
    train_windows: int
    after_windows: int

    @classmethod
    def around(cls, logs: Path, at: datetime, horizon: timedelta, train_windows: int,
               staleness_windows: int) -> EvalSplit:
        """The split at ``at`` with up to ``staleness_windows`` windows after it, as far as the logs
        under ``logs`` are complete. Raises ``InputNotFound`` when the test horizon itself is not."""
        n_after = available_windows(logs, at, horizon, staleness_windows)
        if n_after == 0:
            raise InputNotFound(f"the test horizon {Window.after(at, horizon)} has no complete log partitions under"
                                f" {logs}: evaluate needs the horizon's logs (pick an earlier --at)")
        return cls(at, horizon, train_windows, n_after)

    @property
    def first(self) -> datetime:
        """Start of the first VM training window, ``T - k*h``; the FM trains on data before it."""
        return self.at - self.train_windows * self.horizon

    @property
    def span(self) -> Window:
        """Every row the evaluation serves: the training windows to the last covered window after T."""
        return Window(self.first, self.at + self.after_windows * self.horizon)

    @property
    def train(self) -> Window:
        """``[T - k*h, T)``: the VM training rows."""
        return Window(self.first, self.at)

    @property
    def test(self) -> Window:
        """``[T, T + h)``: the test horizon."""
        return Window.after(self.at, self.horizon)

    def serving_windows(self) -> list[Window]:
        """One window per snapshot: the k training windows, then T's, which serves to the span's end."""
        ats = [self.first + j * self.horizon for j in range(self.train_windows)]
        return [Window.after(a, self.horizon) for a in ats] + [Window(self.at, self.span.end)]

    def stale_windows(self) -> list[Window]:
        """``[T + j*h, T + (j+1)*h)`` for each covered window after T (j = 0 is the test horizon)."""
        return [Window.after(self.at + j * self.horizon, self.horizon) for j in range(self.after_windows)]


@dataclass
class Rows:
    """Every logged (request, ad) row of the evaluated span, time-ordered, as numpy arrays."""

    request_id: np.ndarray
    ts_us: np.ndarray
    user_id: np.ndarray
    ad_id: np.ndarray
    impressed: np.ndarray
    clicked: np.ndarray
    surface: np.ndarray

    @classmethod
    def from_table(cls, t: pa.Table) -> Rows:
        """The rows of a request-log table with ``ROW_COLUMNS``, stably sorted by time."""
        col = {c: t.column(c) for c in ROW_COLUMNS}
        r = cls(col["request_id"].to_numpy(), col["ts"].cast("int64").to_numpy(), col["user_id"].to_numpy(),
                col["ad_id"].to_numpy(), col["impressed"].to_numpy(zero_copy_only=False).astype(bool),
                col["clicked"].to_numpy(zero_copy_only=False).astype(bool),
                np.asarray(col["surface"].fill_null("").to_numpy(zero_copy_only=False), dtype=object))
        return r.take(np.argsort(r.ts_us, kind="stable"))

    def take(self, sel: np.ndarray) -> Rows:
        """The rows at ``sel`` (a boolean mask or indices)."""
        return Rows(*(getattr(self, f)[sel] for f in self.__dataclass_fields__))

    def within(self, start: datetime, end: datetime) -> np.ndarray:
        """Boolean mask of the rows with ``start <= ts < end``."""
        return (self.ts_us >= to_us(start)) & (self.ts_us < to_us(end))

    def __len__(self) -> int:
        return len(self.ts_us)


@dataclass(frozen=True)
class SpanData:
    """What the evaluation reads from the logs.

    Attributes:
        rows: every logged row of ``split.span``, time-ordered.
        events: the impressions from ``lookback`` before the span to its end: the FM's history.
        ads: the ads' features.
    """

    rows: Rows
    events: Events
    ads: AdFeatures


def read_span(logs: Path, split: EvalSplit, lookback: timedelta) -> SpanData:
    """Read the span of ``split`` and ``lookback`` of history before it."""
    table = read_window(logs, Window(split.first - lookback, split.span.end), columns=ROW_COLUMNS)
    rows_all = Rows.from_table(table)
    events = Events.from_table(table.filter(pc.field("impressed")))
    del table
    span = split.span
    return SpanData(rows_all.take(rows_all.within(span.start, span.end)), events,
                    AdFeatures.from_table(read_ads(logs)))


@dataclass(frozen=True)
class Roles:
    """Which of the span's impressions train the VMs and which test them.

    Attributes:
        train: boolean mask over the impressions, ``[T - k*h, T)``.
        test: boolean mask over the impressions, ``[T, T + h)``.
        base_rate: the training impressions' click-through rate (what normalized entropy divides by).
    """

    train: np.ndarray
    test: np.ndarray
    base_rate: float

    @classmethod
    def of(cls, split: EvalSplit, impressions: Rows) -> Roles:
        """The roles of ``impressions`` (the span's, time-ordered). Raises ``InputNotFound`` when the
        training windows or the test horizon hold no click."""
        train = impressions.within(split.first, split.at)
        test = impressions.within(split.at, split.at + split.horizon)
        y = impressions.clicked
        if y[train].sum() == 0 or y[test].sum() == 0:
            raise InputNotFound("no clicks in the VM training windows or the test horizon: widen --train-windows or"
                                " --horizon")
        return cls(train, test, float(y[train].mean()))


@dataclass(frozen=True)
class SplitSummary:
    """The ``split`` block of the report: where the FM, VM-training and test data came from (UTC ISO)."""

    fm_trained_until: str | None
    fm_version: str
    vm_train: tuple[str, str]
    test: tuple[str, str]
    train_impressions: int
    train_clicks: int
    test_impressions: int
    test_clicks: int
    base_rate: float
    latest_train_ts: str
    earliest_test_ts: str

    @classmethod
    def of(cls, split: EvalSplit, impressions: Rows, roles: Roles, fm_trained_until: str | None,
           fm_version: str) -> SplitSummary:
        """Summarize ``split`` over ``impressions`` with their ``roles`` and the FM's provenance."""
        y = impressions.clicked
        return cls(fm_trained_until, fm_version, (split.first.isoformat(), split.at.isoformat()),
                   (split.at.isoformat(), (split.at + split.horizon).isoformat()),
                   int(roles.train.sum()), int(y[roles.train].sum()), int(roles.test.sum()), int(y[roles.test].sum()),
                   round(roles.base_rate, 6), _iso(impressions.ts_us[roles.train].max()),
                   _iso(impressions.ts_us[roles.test].min()))


def _iso(us: int) -> str:
    """UTC ISO time of epoch microseconds."""
    return datetime.fromtimestamp(int(us) / 1e6, UTC).isoformat()
