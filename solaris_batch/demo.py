"""``make demo``: simulate two days, train the FM and the speculator, run ``solaris_precompute`` for the last hour
through Airflow (``airflow dags test``), then replay the next hour against the published snapshot.

Everything lands under ``./demo-data`` (git-ignored); rerunning starts from scratch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

START = "2026-11-20T00:00"
HOURS = 48


def _step(msg: str) -> float:
    print(f"\n== {msg}", flush=True)
    return time.perf_counter()


def main() -> int:
    from solaris_batch.config import load_settings
    from solaris_batch.logs.simulator import SimConfig, simulate
    from solaris_batch.model.train import train_fm
    from solaris_batch.pipeline import replay
    from solaris_batch.speculate.plan import read_plan_info
    from solaris_batch.timeutil import parse_time

    root = Path(os.environ.get("SOLARIS_DEMO_DIR", Path.cwd() / "demo-data"))
    shutil.rmtree(root, ignore_errors=True)
    os.environ["SOLARIS_DATA"] = str(root)
    st = load_settings()
    t_all = time.perf_counter()
    at = parse_time(START) + timedelta(hours=HOURS - 1)  # horizon = the last simulated hour

    t = _step(f"simulate {HOURS} h of an ads marketplace -> {st.logs_root}")
    s = simulate(SimConfig(start=START, hours=HOURS, users=5000, ads=2000, seed=7), st.logs_root)
    print(f"   {s.rows:,} log rows, {s.requests:,} requests, {s.clicks:,} clicks ({time.perf_counter() - t:.1f}s)")

    t = _step(f"train the FM on the 24 h before {at:%Y-%m-%dT%H:%MZ}")
    r = train_fm(st.logs_root, at, st.model_path, epochs=1)
    print(f"   {r.examples:,} examples, held-out AUC {r.val_auc:.3f}, version {r.version} ({time.perf_counter() - t:.1f}s)")

    t = _step(f"train the speculator on the 2 horizons before {at:%Y-%m-%dT%H:%MZ} (Spark)")
    from solaris_batch.pipeline import train_speculator

    m = train_speculator(st, st.logs_root, at.isoformat(), windows=2)
    print(f"   {m['examples']:,} examples, train AUC {m['train_auc']:.3f}, version {m['version']}"
          f" ({time.perf_counter() - t:.1f}s)")

    t = _step(f"airflow dags test solaris_precompute {at.isoformat()} (interval [{at - timedelta(hours=1):%H:%M}, {at:%H:%M}))")
    log = root / "airflow-dags-test.log"
    with open(log, "w") as f:
        proc = subprocess.run([str(Path(sys.executable).parent / "airflow"), "dags", "test", "solaris_precompute",
                               at.isoformat()], stdout=f, stderr=subprocess.STDOUT, env=dict(os.environ))
    if proc.returncode != 0:
        print(subprocess.run(["tail", "-30", str(log)], capture_output=True, text=True).stdout)
        print(f"demo: airflow dags test failed (full log: {log})", file=sys.stderr)
        return 1
    print(f"   DAG run succeeded ({time.perf_counter() - t:.1f}s, log: {log})")

    t = _step(f"replay the requests of [{at:%H:%M}, {at + timedelta(hours=1):%H:%M}) against the snapshot")
    info = read_plan_info(st.interval_paths(at).plan)
    rep = replay(st.logs_root, st.snapshots_root, st.model_name, at.isoformat(), "1h")
    summary = {
        "snapshot_id": rep["snapshot_id"],
        "pairs_planned": info.pairs,
        "budget": info.budget,
        "speculator": info.speculator,
        "horizon_rows": rep["horizon_rows"],
        "request_hit_rate": round(rep["request_hit_rate"], 4),
        "sample_lookup": rep["sample"],
        "demo_seconds": round(time.perf_counter() - t_all, 1),
    }
    print(f"   snapshot {summary['snapshot_id']}: {info.pairs:,} pairs planned (budget {info.budget}),"
          f" hit rate {summary['request_hit_rate']:.1%} of {rep['horizon_rows']:,} next-hour (request, ad) rows")
    print(f"   sample lookup: {json.dumps(rep['sample'])}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
