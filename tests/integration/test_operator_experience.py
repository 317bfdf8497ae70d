"""Real Spark: a lookback before the log's start is clipped (and recorded), a hole inside the log
still fails, and a driver started by ``get_spark`` prints only our lines unless asked for more."""

import json
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from solaris_batch.errors import PartitionMissing
from solaris_batch.logs.layout import partition_dir
from solaris_batch.logs.reader import read_window
from solaris_batch.logs.simulator import SimConfig, simulate
from solaris_batch.speculate.budget import Budget
from solaris_batch.speculate.planner import write_plan
from solaris_batch.speculate.registry import SpeculatorChoice
from solaris_batch.timeutil import Window
from tests.conftest import T0

pytestmark = pytest.mark.integration
H = timedelta(hours=1)
ROOT = Path(__file__).resolve().parents[2]
HEURISTIC = SpeculatorChoice.parse("heuristic")


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    out = tmp_path_factory.mktemp("clip") / "logs"
    simulate(SimConfig(start=T0, hours=5, users=300, ads=100, seed=3), out, progress=False)
    return out


def test_lookback_before_the_log_is_read_from_its_start_and_recorded(spark, logs, tmp_path, capfd):
    info = write_plan(spark, logs, T0 + 4 * H, 24 * H, H, Budget.parse("2x"), tmp_path / "plan", shards=2,
                      speculator=HEURISTIC)
    assert info.lookback == "1d" and info.lookback_start == T0.isoformat()
    assert json.loads((tmp_path / "plan" / "_plan.json").read_text())["lookback_start"] == "2026-11-20T00:00:00+00:00"
    assert info.rows_read + info.quarantined == read_window(logs, Window(T0, T0 + 4 * H)).num_rows
    assert info.pairs > 0
    err = capfd.readouterr().err
    assert ("lookback [2026-11-19T04:00Z, 2026-11-20T04:00Z) starts before the request log does:"
            " reading [2026-11-20T00:00Z, 2026-11-20T04:00Z)") in err


def test_a_partition_missing_inside_the_log_still_fails(spark, logs, tmp_path):
    holed = tmp_path / "logs"
    shutil.copytree(logs, holed)
    shutil.rmtree(partition_dir(holed, T0 + 2 * H))
    with pytest.raises(PartitionMissing, match=r"hour=02 is missing for window \[2026-11-20T00:00Z, "
                                               r"2026-11-20T04:00Z\): backfill that hour or shorten --lookback"):
        write_plan(spark, holed, T0 + 4 * H, 24 * H, H, Budget.parse("2x"), tmp_path / "plan", shards=2,
                   speculator=HEURISTIC)
    assert not (tmp_path / "plan").exists()


DRIVER = r"""
import sys
from solaris_batch.config import Settings
from solaris_batch.speculate.spark import get_spark
spark = get_spark(Settings(spark_master="local[1]", spark_log_level=sys.argv[1]), "console-test")
print("ours: session up", flush=True)
wide = spark.range(10).selectExpr("id", *[f"id AS c{i}" for i in range(40)])
wide.explain()  # a plan string longer than spark.sql.debug.maxToStringFields: a WARN
from pyspark.ml.classification import LogisticRegression  # BLAS: netlib's native loader
from pyspark.ml.linalg import Vectors
rows = spark.createDataFrame([(Vectors.dense([float(i), 1.0]), float(i % 2)) for i in range(10)], ["features", "label"])
print("ours: fitted", LogisticRegression(maxIter=2).fit(rows).numFeatures, flush=True)
spark.stop()
"""


def _driver(level: str) -> list[str]:
    r = subprocess.run([sys.executable, "-c", DRIVER, level], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]


def test_a_driver_prints_only_our_lines_unless_warn_is_asked_for():
    lines = _driver("ERROR")
    ours = [ln for ln in lines if ln.startswith("ours: ")]
    assert len(ours) == 2, lines
    noise = [ln for ln in lines if not ln.startswith(("ours: ", "== Physical Plan ==", "*(1)", "+-"))]
    assert noise == [], noise  # explain() prints the plan itself, on purpose
    loud = "\n".join(_driver("WARN"))
    assert "WARN" in loud and "Using incubator modules" in loud and "netlib-blas" in loud, loud[-3000:]
