"""Throughput and memory of the Spark speculate job as the lookback grows (1M -> 10M rows).

    python benchmarks/bench_speculate.py [--quick] [--rows 1000000,3000000,10000000] [--model DIR]

For each size it simulates a 24h lookback holding about that many log rows (users scale with it),
runs ``spark_jobs/speculate.py`` through ``spark-submit`` (local[*], as Airflow runs it) with the
heuristic score or a trained model (``--model``), and samples the resident memory of the driver's
process tree (JVM + Python workers) every 0.2 s. ``scaling_exponent`` = slope of log(time) against
log(rows) between the smallest and largest size (1.0 = linear). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROWS_PER_USER_HOUR = 9.4  # simulator defaults: 0.4 requests x ~23.5 candidates


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants (MiB)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(ln.split()[1]) for ln in f if ln.startswith("VmRSS")), 0)
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1024


def run_size(rows: int, work: Path, model: str | None, settings) -> dict:
    from solaris_batch.jobs import SpeculateJob, submit_command, submit_env
    from solaris_batch.logs.simulator import SimConfig, simulate

    users = max(200, int(rows / 24 / ROWS_PER_USER_HOUR))
    logs = work / f"logs-{rows}"
    s = simulate(SimConfig(start="2026-11-20T00:00", hours=24, users=users, ads=max(100, users // 2), seed=1),
                 logs, progress=False)
    job = SpeculateJob(logs=logs, at="2026-11-21T00:00", out=work / f"plan-{rows}", registry=work / "no-registry",
                       speculator=model)
    peak, stop = [0.0], threading.Event()
    t0 = time.perf_counter()
    proc = subprocess.Popen(submit_command(settings, job), env=submit_env(settings),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss_mb(proc.pid))
            time.sleep(0.2)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out = proc.communicate()[0]
    seconds = time.perf_counter() - t0
    stop.set()
    th.join()
    if proc.returncode != 0:
        raise SystemExit(f"speculate failed on {rows} rows:\n{out[-3000:]}")
    info = json.loads((work / f"plan-{rows}" / "_plan.json").read_text())
    shutil.rmtree(logs, ignore_errors=True)
    return {"rows": info["rows_read"], "log_rows_simulated": s.rows, "users": users, "seconds": seconds,
            "rows_per_s": info["rows_read"] / seconds, "peak_driver_rss_mb": peak[0], "pairs": info["pairs"],
            "speculator": info["speculator"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="200k and 1M rows, same keys")
    p.add_argument("--rows", help="comma-separated target lookback rows (default 1M,3M,10M)")
    p.add_argument("--model", help="trained speculator version folder (default: the heuristic score)")
    p.add_argument("--dir", type=Path, help="work folder (default: a temp dir, removed after)")
    a = p.parse_args()
    from solaris_batch.config import load_settings

    sizes = [int(x) for x in (a.rows or ("200000,1000000" if a.quick else "1000000,3000000,10000000")).split(",")]
    work = a.dir or Path(tempfile.mkdtemp(prefix="bench-speculate-"))
    work.mkdir(parents=True, exist_ok=True)
    settings = load_settings(spark_driver_memory=os.environ.get("SOLARIS_SPARK_DRIVER_MEMORY", "4g"))
    try:
        results = []
        for n in sizes:
            r = run_size(n, work, a.model, settings)
            results.append(r)
            print(f"{r['rows']:>11,} rows  {r['seconds']:7.1f} s  {r['rows_per_s']:>10,.0f} rows/s"
                  f"  peak driver RSS {r['peak_driver_rss_mb']:7,.0f} MiB  {r['pairs']:,} pairs planned", flush=True)
    finally:
        if a.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    lo, hi = results[0], results[-1]
    exponent = math.log(hi["seconds"] / lo["seconds"]) / math.log(hi["rows"] / lo["rows"])
    print(f"time grows as rows^{exponent:.2f} from {lo['rows']:,} to {hi['rows']:,} rows")
    print(json.dumps({"rows": hi["rows"], "seconds": round(hi["seconds"], 2), "rows_per_s": round(hi["rows_per_s"]),
                      "peak_driver_rss_mb": round(max(r["peak_driver_rss_mb"] for r in results)),
                      "scaling_exponent": round(exponent, 3), "speculator": hi["speculator"],
                      "sizes": [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()}
                                for r in results]}))


if __name__ == "__main__":
    main()
