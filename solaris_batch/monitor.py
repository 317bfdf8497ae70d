"""Replay a published snapshot against the horizon it was computed for, once that horizon's logs
have landed, and record realized coverage to a queryable metrics table.

    <data>/metrics/monitor/snapshot_id=<id>.parquet     one row per snapshot (rewritten on rerun)
    <data>/metrics/monitor/hit_rate.png                 realized hit rate over time

Metrics come from ``speculate.metrics.coverage`` (the function ``solaris backtest`` uses too), so
the monitor and offline evaluation agree by construction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from solaris_batch.config import DEFAULT_HORIZON
from solaris_batch.errors import QualityAlert
from solaris_batch.logs.reader import read_window
from solaris_batch.snapshots.publish import read_manifest
from solaris_batch.speculate.metrics import coverage
from solaris_batch.storage import Root
from solaris_batch.timeutil import Window, parse_duration, parse_time, to_us


@dataclass(frozen=True)
class MonitorRecord:
    snapshot_id: str
    model_name: str
    at: str
    horizon: str
    planned_pairs: int
    horizon_rows: int
    horizon_pairs: int
    request_hit_rate: float
    pair_recall: float
    precision: float
    staleness_s: float
    threshold: float
    passed: bool


def served_window(manifest: dict) -> tuple[str, str]:
    """The ``(at, horizon)`` a snapshot was planned for, as its manifest says (ISO time, duration)."""
    window = manifest.get("window") or {}
    return window.get("at") or manifest["plan_at"], window.get("horizon", DEFAULT_HORIZON)


def snapshot_pairs(root: str, model: str, snapshot_id: str) -> tuple[np.ndarray, np.ndarray]:
    r = Root.open(root)
    m = read_manifest(r, model, snapshot_id)
    us, as_ = [], []
    for f in m["files"]:
        t = pq.read_table(pa.BufferReader(r.read_buffer(f"{model}/snapshots/{snapshot_id}/{f['name']}")),
                          columns=["user_id", "ad_id"])
        us.append(t.column(0).to_numpy())
        as_.append(t.column(1).to_numpy())
    return np.concatenate(us), np.concatenate(as_)


def monitor_snapshot(logs: str | Path, root: str, model: str, snapshot_id: str, out: str | Path,
                     threshold: float = 0.0) -> MonitorRecord:
    """Compute realized coverage of ``snapshot_id`` over its horizon and write it to ``out``.

    Raises ``QualityAlert`` (after writing) when ``request_hit_rate < threshold``.
    """
    m = read_manifest(root, model, snapshot_id)
    at, horizon = served_window(m)
    at = parse_time(at)
    t = read_window(logs, Window.after(at, parse_duration(horizon)), columns=["ts", "user_id", "ad_id"])
    pu, pa_ = snapshot_pairs(root, model, snapshot_id)
    cov = coverage(pu, pa_, t.column("user_id").to_numpy(), t.column("ad_id").to_numpy())
    ts = t.column("ts").cast(pa.int64()).to_numpy()
    rec = MonitorRecord(snapshot_id, model, at.isoformat(), horizon, cov["planned_pairs"], cov["horizon_rows"],
                        cov["horizon_pairs"], cov["request_hit_rate"], cov["pair_recall"], cov["precision"],
                        float((ts - to_us(at)).mean() / 1e6), threshold, cov["request_hit_rate"] >= threshold)
    _write(Root.open(out), f"snapshot_id={snapshot_id}.parquet", pa.Table.from_pylist([asdict(rec)]))
    plot_history(out)
    if not rec.passed:
        raise QualityAlert(f"realized hit rate {rec.request_hit_rate:.3f} of snapshot {snapshot_id} is below the"
                           f" threshold {threshold:.3f}: check the speculator budget and the log pipeline")
    return rec


def _write(root: Root, name: str, table: pa.Table) -> None:
    """One Parquet object, replaced whole (a single PUT on object stores, write + rename locally)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    root.write_bytes(name, sink.getvalue().to_pybytes())


def read_history(out: str | Path) -> pa.Table:
    """Every snapshot's record under ``out`` (a path or URI), oldest horizon first."""
    root = Root.open(out)
    names = sorted(n for n in root.listdir("") if n.startswith("snapshot_id=") and n.endswith(".parquet"))
    tables = [pq.read_table(pa.BufferReader(root.read_bytes(n))) for n in names]
    return pa.concat_tables(tables).sort_by("at") if tables else pa.table({})


def plot_history(out: str | Path) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = read_history(out)
    if t.num_rows == 0:
        return None
    x = [parse_time(a) for a in t.column("at").to_pylist()]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(x, t.column("request_hit_rate").to_pylist(), marker="o", label="request hit rate")
    ax.plot(x, t.column("precision").to_pylist(), marker=".", label="precision")
    thr = t.column("threshold").to_pylist()[-1]
    if thr:
        ax.axhline(thr, color="red", linestyle="--", label="threshold")
    ax.set_ylim(0, 1)
    from datetime import timedelta

    import matplotlib.dates as mdates

    ax.set_xlim(min(x) - timedelta(hours=1), max(x) + timedelta(hours=1))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
    ax.set_xlabel("horizon start (UTC)")
    ax.legend(loc="lower left")
    ax.set_title("SOLARIS realized coverage per snapshot")
    fig.autofmt_xdate()
    fig.tight_layout()
    import io

    png = io.BytesIO()
    fig.savefig(png, dpi=100, format="png")
    plt.close(fig)
    root = Root.open(out)
    root.write_bytes("hit_rate.png", png.getvalue())
    return root.uri("hit_rate.png")
