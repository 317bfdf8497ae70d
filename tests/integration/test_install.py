"""The package installs like a library: a serving process gets EmbeddingStore without torch,
Spark or Airflow (a real `pip install .[serving]` into a fresh virtualenv)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from solaris_batch.snapshots.publish import publish
from tests.snapshot_fixtures import make_emb

REPO = Path(__file__).resolve().parents[2]

SERVE = r"""
import sys
import numpy as np
from solaris_batch.serving import EmbeddingStore
store = EmbeddingStore.open(sys.argv[1], "fm")
r = store.lookup(np.array([11, 12, 99]), np.array([100, 102, 100]))
assert r.hit.tolist() == [True, True, False] and (r.embeddings[:2] == 3).all(), r
heavy = [m for m in ("torch", "pyspark", "airflow", "pandas") if m in sys.modules]
assert not heavy, heavy
from solaris_batch.snapshots import index
assert index._probe is not None, "the compiled probe was not built"
print("served", store.snapshot_id)
"""


@pytest.mark.slow
@pytest.mark.integration
def test_serving_install_has_no_torch_spark_or_airflow(tmp_path):
    root = tmp_path / "snap"
    sid = publish(make_emb(tmp_path / "e", 3), root, "fm").snapshot_id
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    p = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{REPO}[serving]"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    listed = subprocess.run([str(py), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True,
                            env=env).stdout.lower()
    assert not any(f"{m}==" in listed for m in ("torch", "pyspark", "apache-airflow", "pandas")), listed
    out = subprocess.run([str(py), "-c", SERVE, str(root)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0 and f"served {sid}" in out.stdout, out.stderr[-3000:]
    cli = subprocess.run([str(venv / "bin" / "solaris"), "lookup", "--root", str(root), "--user", "11", "--ads", "100"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert cli.returncode == 0 and '"hit": true' in cli.stdout, cli.stderr[-3000:]
    v = subprocess.run([str(venv / "bin" / "solaris"), "--version"], capture_output=True, text=True, env=env)
    assert v.stdout.strip().startswith("solaris-batch ")
    # the wheel carries no top-level test or script packages
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert not (site / "tests").exists() and not (site / "spark_jobs").exists() and np.__version__
    assert (site / "solaris_batch" / "sql" / "channel_repeats.sql").exists()  # the SQL ships as package data
