"""DAG integrity (parse fast, no heavy imports, owners/retries/tags/docs) and a real DAG run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))

PROBE = r"""
import importlib.util, json, sys, time
t = time.perf_counter()
spec = importlib.util.spec_from_file_location("dagfile", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
from airflow.sdk import DAG
dags = [v for v in vars(mod).values() if isinstance(v, DAG)]
print(json.dumps({"seconds": time.perf_counter() - t, "heavy": [m for m in ("torch", "pyspark", "faiss") if m in sys.modules],
  "dags": [{"id": d.dag_id, "tags": sorted(d.tags), "doc": bool(d.doc_md),
            "tasks": [{"id": t.task_id, "owner": t.owner, "retries": t.retries, "timeout": t.execution_timeout is not None,
                       "doc": bool(getattr(t, "doc_md", None) or getattr(t, "partial_kwargs", {}).get("doc_md"))} for t in d.tasks]} for d in dags]}))
"""


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_integrity(path):
    r = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["heavy"] == [], "torch/pyspark must be imported inside tasks, not at parse time"
    assert info["seconds"] < 2.0
    assert info["dags"], "file defines no DAG"
    for d in info["dags"]:
        assert d["tags"] and d["doc"]
        for t in d["tasks"]:
            assert t["owner"] == "solaris" and t["retries"] >= 1 and t["timeout"] and t["doc"], t


def test_precompute_dag_shape():
    r = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / "dags" / "solaris_precompute.py")],
                       capture_output=True, text=True)
    d = json.loads(r.stdout.strip().splitlines()[-1])["dags"][0]
    assert d["id"] == "solaris_precompute"
    assert sorted(t["id"] for t in d["tasks"]) == ["infer", "publish", "speculate", "wait_for_logs"]


@pytest.mark.integration
@pytest.mark.slow
def test_airflow_dags_test_publishes_snapshot(tmp_path):
    """Real Airflow (SQLite, `airflow dags test`) runs solaris_precompute for one hour end to end."""
    from solaris_batch.logs.simulator import SimConfig, simulate
    from solaris_batch.model.train import train_fm
    from solaris_batch.pipeline import replay
    from solaris_batch.snapshots.publish import read_current

    data = tmp_path / "data"
    simulate(SimConfig(start="2026-11-20T00:00", hours=6, users=500, ads=200, seed=9), data / "logs", progress=False)
    train_fm(data / "logs", "2026-11-20T05:00", data / "models" / "fm", window="4h", epochs=1, progress=False)
    home = tmp_path / "airflow"
    env = {**os.environ, "SOLARIS_DATA": str(data), "SOLARIS_SHARDS": "2", "AIRFLOW_HOME": str(home),
           "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "SOLARIS_DAG_RETRIES": "0"}
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    r = subprocess.run([airflow, "dags", "test", "solaris_precompute", "2026-11-20T05:00:00+00:00",
                        "--conf", json.dumps({"lookback": "5h"})], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    snap = read_current(data / "snapshots", "fm")
    assert snap and snap.startswith("20261120T0500Z-")
    rep = replay(data / "logs", str(data / "snapshots"), "fm", "2026-11-20T05:00")
    assert rep["snapshot_id"] == snap and rep["request_hit_rate"] > 0.1
