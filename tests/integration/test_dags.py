"""DAG integrity (parse fast, no heavy imports, owners/retries/tags/docs) and a real DAG run."""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))

PROBE = r"""
import importlib.util, json, sys, time
import airflow.sdk  # Airflow's own import (about 2 s on a loaded 2-core runner) is not the DAG file's cost
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
    assert sorted(t["id"] for t in d["tasks"]) == ["gc", "infer", "plan_shards", "publish", "speculate", "validate",
                                                       "wait_for_logs"]


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    """Simulated logs (8 h), a trained FM, and a migrated Airflow home with the solaris_fm pool."""
    from solaris_batch.logs.simulator import SimConfig, simulate
    from solaris_batch.model.train import train_fm

    tmp = tmp_path_factory.mktemp("airflow")
    data = tmp / "data"
    simulate(SimConfig(start="2026-11-20T00:00", hours=8, users=500, ads=200, seed=9), data / "logs", progress=False)
    train_fm(data / "logs", "2026-11-20T04:00", data / "models" / "fm", window="4h", epochs=1, progress=False)
    env = {**os.environ, "SOLARIS_DATA": str(data), "SOLARIS_SHARDS": "2", "AIRFLOW_HOME": str(tmp / "home"),
           "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "SOLARIS_DAG_RETRIES": "0", "SOLARIS_SENSOR_TIMEOUT": "12", "SOLARIS_SENSOR_POKE": "3",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "solaris_batch.dag_defaults.DB_CONNECT_ARGS",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": "solaris_batch.dag_defaults.DB_CONNECT_ARGS"}
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([AIRFLOW, "pools", "set", "solaris_fm", "1", "fm"], env=env, check=True, capture_output=True)
    return data, env


AIRFLOW = str(Path(sys.executable).parent / "airflow")


def dags_test(env, dag_id, logical_date=None, conf=None):
    cmd = [AIRFLOW, "dags", "test", dag_id] + ([logical_date] if logical_date else [])
    if conf:
        cmd += ["--conf", json.dumps(conf)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True)


def _snapshots(data):
    d = data / "snapshots" / "fm" / "snapshots"
    return sorted(p.name for p in d.iterdir() if not p.name.startswith(".")) if d.exists() else []


@pytest.mark.integration
@pytest.mark.slow
def test_consecutive_hours_idempotent_rerun_and_monitor(airflow_env, spark, tmp_path):
    """Real Airflow (SQLite, `airflow dags test`): a fresh deployment's first hours, with the
    default 24h lookback reaching before the log's start (speculate reads from the log's start,
    says so in the task log, and the plan and manifest record it) and a registered speculator: two
    consecutive hours publish two snapshots with CURRENT on the later, planned by that speculator;
    re-running the first is idempotent; the monitor records the realized hit rate, equal to an
    independent replay through EmbeddingStore and to `solaris backtest` of the same plan. (The
    speculator is trained in this process: the solaris_train DAG has its own test, and a DAG run
    here would only add a JVM start to CI. A below-threshold monitor is
    `test_monitor_fails_at_once_...`.)"""
    from solaris_batch.config import Settings
    from solaris_batch.pipeline import replay
    from solaris_batch.snapshots.publish import read_current, read_manifest
    from solaris_batch.speculate import registry, scoring
    from solaris_batch.timeutil import parse_duration, parse_time

    data, env = airflow_env
    scoring.train(spark, data / "logs", parse_time("2026-11-20T05:00"), data / "models" / "speculator",
                  parse_duration("1d"), parse_duration("1h"), windows=1)
    version = registry.latest(data / "models" / "speculator").name
    assert version.startswith("20261120T0500Z-w1-1d")
    for hour in ("05", "06"):
        r = dags_test(env, "solaris_precompute", f"2026-11-20T{hour}:00:00+00:00")  # the DAG's default lookback
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-6000:]
        assert (f"lookback [2026-11-19T{hour}:00Z, 2026-11-20T{hour}:00Z) starts before the request log does:"
                f" reading [2026-11-20T00:00Z, 2026-11-20T{hour}:00Z)") in out
        assert [n for n in JVM_NOISE if n in out] == []
    snaps = _snapshots(data)
    assert [s[:14] for s in snaps] == ["20261120T0500Z", "20261120T0600Z"]
    assert read_current(data / "snapshots", "fm") == snaps[1]
    plan = json.loads((Settings(data=data).interval_paths(parse_time("2026-11-20T05:00")).plan / "_plan.json")
                      .read_text())
    assert plan["lookback"] == "1d" and plan["lookback_start"] == "2026-11-20T00:00:00+00:00"
    assert read_manifest(data / "snapshots", "fm", snaps[0])["window"]["lookback_start"] == plan["lookback_start"]
    r = dags_test(env, "solaris_precompute", "2026-11-20T05:00:00+00:00")  # clear + rerun hour 1
    assert r.returncode == 0, r.stdout[-3000:]
    assert _snapshots(data) == snaps and read_current(data / "snapshots", "fm") == snaps[1]

    r = dags_test(env, "solaris_monitor", conf={"snapshot_id": snaps[1], "min_hit_rate": 0.0})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    import pyarrow.parquet as pq

    row = pq.read_table(data / "metrics" / "monitor" / f"snapshot_id={snaps[1]}.parquet").to_pylist()[0]
    independent = replay(data / "logs", str(data / "snapshots"), "fm", "2026-11-20T06:00")
    assert row["request_hit_rate"] == pytest.approx(independent["request_hit_rate"], abs=1e-12)
    assert row["horizon_rows"] == independent["horizon_rows"] and 0 < row["precision"] <= 1
    assert (data / "metrics" / "monitor" / "hit_rate.png").exists()
    assert read_manifest(str(data / "snapshots"), "fm", snaps[1])["speculator"] == f"learned-{version}"
    from solaris_batch.speculate import backtest
    from solaris_batch.speculate.budget import Budget
    from solaris_batch.speculate.registry import SpeculatorChoice

    rep = backtest.run(spark, data / "logs", [parse_time("2026-11-20T06:00")], parse_duration("1d"), parse_duration("1h"),
                       [Budget.parse("2x")], tmp_path / "bt", strategies=["learned"],
                       speculator=SpeculatorChoice.parse("latest"), registry_root=data / "models" / "speculator")
    assert rep["results"][0]["request_hit_rate"] == pytest.approx(row["request_hit_rate"], abs=1e-12)
    assert rep["results"][0]["precision"] == pytest.approx(row["precision"], abs=1e-12)


@pytest.mark.integration
@pytest.mark.slow
def test_missing_partition_fails_sensor_and_publishes_nothing(airflow_env):
    data, env = airflow_env
    before = _snapshots(data)
    r = dags_test(env, "solaris_precompute", "2026-11-20T10:00:00+00:00", {"lookback": "4h"})  # hour 09 absent
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "wait_for_logs" in out and ("Sensor has timed out" in out or "AirflowSensorTimeout" in out), out[-3000:]
    assert _snapshots(data) == before


@pytest.fixture
def spark_standalone(tmp_path):
    """A Spark standalone master and one worker (1 core, 1 GB) on 127.0.0.1, started from the
    installed pyspark's ``bin/spark-class``; yields the master URL once the worker is registered,
    and always kills both."""
    from solaris_batch.jobs import spark_home

    home = spark_home("spark://")
    env = {**os.environ, "SPARK_HOME": home, "SPARK_LOCAL_IP": "127.0.0.1"}
    port, ui = _free_port(), _free_port()
    log = open(tmp_path / "spark-standalone.log", "w")

    def start(*args):
        return subprocess.Popen([f"{home}/bin/spark-class", *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    procs = [start("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                   "--webui-port", str(ui))]
    try:
        _wait_for_http(f"http://127.0.0.1:{ui}/json/", 120)
        procs.append(start("org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}", "--host", "127.0.0.1",
                           "--cores", "1", "--memory", "1g", "--webui-port", str(_free_port()),
                           "--work-dir", str(tmp_path / "spark-worker")))
        try:  # until the master lists the worker as ALIVE
            _wait_for_http(f"http://127.0.0.1:{ui}/json/", 120,
                           ready=lambda body: any(w["state"] == "ALIVE" for w in json.loads(body)["workers"]))
        except OSError:
            pytest.fail((tmp_path / "spark-standalone.log").read_text()[-3000:])
        yield f"spark://127.0.0.1:{port}"
    finally:
        _stop_groups(procs)
        log.close()


@pytest.mark.integration
@pytest.mark.slow
def test_speculate_on_a_standalone_master_through_the_connection_plans_as_local(airflow_env, spark_standalone,
                                                                               spark, tmp_path):
    """The precompute DAG's speculate task (``airflow tasks test``), a SparkSubmitOperator on a
    connection to a standalone master with one worker, writes under ``SOLARIS_WORK`` the plan a
    local in-process run writes. Its driver and executor Pythons cannot see this machine's
    ``solaris_batch`` (``python_without_solaris``): the package and the SQL come from the zip the
    submit spec ships (``spark.submit.pyFiles``)."""
    from solaris_batch.config import DEFAULT_BUDGET, DEFAULT_HORIZON, Settings
    from solaris_batch.speculate.plan import read_plan_info, read_table
    from solaris_batch.tasks import interval_speculate_job
    from tests.conftest import python_without_solaris

    data, base_env = airflow_env
    env = {**base_env, "SOLARIS_SPARK_CONN_ID": "solaris_spark",
           "AIRFLOW_CONN_SOLARIS_SPARK": json.dumps({"conn_type": "spark", "host": spark_standalone}),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYSPARK_PYTHON": str(python_without_solaris(tmp_path)), "SOLARIS_WORK": str(tmp_path / "work"),
           "SOLARIS_SPECULATOR": str(tmp_path / "no-speculator")}
    env.pop("PYSPARK_DRIVER_PYTHON", None)
    r = subprocess.run([AIRFLOW, "tasks", "test", "solaris_precompute", "speculate", "2026-11-20T07:00:00+00:00",
                        "-t", json.dumps({"lookback": "4h"})], env=env, capture_output=True, text=True)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert f"--master {spark_standalone}" in out and "spark.submit.pyFiles=" in out, out[-4000:]
    ran = (tmp_path / "python-without-solaris.log").read_text()
    assert "spark_jobs/speculate.py" in ran and "pyspark.daemon" in ran  # the driver and the executors
    (plan,) = (tmp_path / "work" / "plans").iterdir()
    info = read_plan_info(plan)
    st = Settings(data=data, work=tmp_path / "local", speculator=tmp_path / "no-speculator")
    job = interval_speculate_job(st, info.at, "4h", DEFAULT_HORIZON, DEFAULT_BUDGET, 2)  # the DAG's defaults
    with pytest.warns(UserWarning, match="no trained speculator"):
        local = job.resolve(st).run(spark)
    assert plan == Settings(data=data, work=tmp_path / "work").interval_paths(info.at).plan
    assert info.pairs > 0 and info.fingerprint == local.fingerprint
    for table in ("pairs", "users"):
        assert read_table(plan, table).equals(read_table(job.out, table)), table


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scheduler_backfill(env: dict, tmp_path: Path, max_active_runs: int) -> list[dict]:
    """Create `airflow backfill create` runs of solaris_precompute for 04:00..06:00, run them with a
    real scheduler, DAG processor and API server, and return the finished runs."""
    import time

    port = _free_port()
    env = {**env, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
           "AIRFLOW__API__PORT": str(port), "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port())}
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    # Serialize the DAGs and create the backfill before the services start writing to the DB.
    subprocess.run([AIRFLOW, "dags", "reserialize"], env=env, check=True, capture_output=True)
    # the scheduler only starts runs of unpaused DAGs, backfills included
    subprocess.run([AIRFLOW, "dags", "unpause", "solaris_precompute"], env=env, check=True, capture_output=True)
    r = subprocess.run([AIRFLOW, "backfill", "create", "--dag-id", "solaris_precompute",
                        "--from-date", "2026-11-20T04:00:00+00:00", "--to-date", "2026-11-20T06:00:00+00:00",
                        "--max-active-runs", str(max_active_runs), "--dag-run-conf", json.dumps({"lookback": "4h"})],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    logs = open(tmp_path / "services.log", "w")

    def start(*cmd):
        return subprocess.Popen([AIRFLOW, *cmd], env=env, stdout=logs, stderr=subprocess.STDOUT, start_new_session=True)

    procs = [start("api-server", "--port", str(port))]
    try:
        _wait_for_http(f"http://127.0.0.1:{port}/api/v2/monitor/health", 180)  # tasks report to it from the start
        procs += [start("scheduler"), start("dag-processor")]
        deadline = time.time() + 900
        runs = []
        while time.time() < deadline:
            r = subprocess.run([AIRFLOW, "dags", "list-runs", "solaris_precompute", "-o", "json"], env=env,
                               capture_output=True, text=True)
            # Airflow may log warnings to stdout before the JSON document
            runs = next((json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("[")), [])
            runs = [x for x in runs if x["run_id"].startswith("backfill__")]
            if len(runs) == 3 and all(x["state"] in ("success", "failed") for x in runs):
                break
            time.sleep(5)
        assert sorted(x["state"] for x in runs) == ["success"] * 3, (runs, (tmp_path / "services.log").read_text()[-3000:])
    finally:
        _stop_groups(procs)
        for p in procs:  # workers that left the process group (the API server's) still belong to the session
            subprocess.run(["pkill", "-KILL", "-s", str(p.pid)], capture_output=True)
        logs.close()
    return runs


def _stop_groups(procs: list[subprocess.Popen]) -> None:
    """SIGTERM the process group of each of ``procs`` (started with ``start_new_session``), then
    SIGKILL any still running after 30 s."""
    import signal

    for p in procs:
        os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _wait_for_http(url: str, seconds: float, ready: Callable[[bytes], bool] | None = None) -> None:
    """Poll ``url`` every second until it answers (and ``ready(body)`` holds, when given); after
    ``seconds``, raise the last connection error or a TimeoutError."""
    import time
    import urllib.request

    deadline = time.time() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if ready is None or ready(r.read()):
                    return
            error: OSError = TimeoutError(f"{url} not ready after {seconds} s")
        except OSError as e:
            error = e
        if time.time() > deadline:
            raise error
        time.sleep(1)


def _three_snapshots_current_on_the_latest(root: Path) -> None:
    from solaris_batch.snapshots.publish import read_current

    snaps = sorted(p.name[:14] for p in (root / "fm" / "snapshots").iterdir() if not p.name.startswith("."))
    assert snaps == ["20261120T0500Z", "20261120T0600Z", "20261120T0700Z"]
    assert read_current(root, "fm").startswith("20261120T0700Z")


def _pg_bin(name: str) -> str | None:
    import glob
    import shutil

    return shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL server on 127.0.0.1 (installed by .ci/run: apt-get install postgresql)."""
    import shutil
    import tempfile

    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        msg = "PostgreSQL server binaries not found: apt-get install postgresql (.ci/run does)"
        pytest.fail(msg) if os.environ.get("CI") else pytest.skip(msg)
    base = Path(tempfile.mkdtemp(prefix="solaris-pg-"))
    as_pg = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(base, "postgres", "postgres")
        as_pg = ["runuser", "-u", "postgres", "--"]
    base.chmod(0o755)
    port = _free_port()
    data = base / "data"
    subprocess.run([*as_pg, initdb, "-D", str(data), "-A", "trust", "-U", "airflow", "--no-sync"], check=True,
                   capture_output=True)
    subprocess.run([*as_pg, pg_ctl, "-D", str(data), "-l", str(base / "server.log"), "-w", "-o",
                    f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
                    "start"], check=True, capture_output=True)
    try:
        subprocess.run([*as_pg, _pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "airflow", "airflow"],
                       check=True, capture_output=True)
        yield f"postgresql+psycopg2://airflow@127.0.0.1:{port}/airflow"
    finally:
        subprocess.run([*as_pg, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.integration
@pytest.mark.slow
def test_backfill_on_postgres_runs_mapped_infer_concurrently(airflow_env, postgres, tmp_path):
    """`airflow backfill create` over 3 hours, executed by a real scheduler on PostgreSQL with
    LocalExecutor (parallelism 4, two runs at a time, two FM slots): mapped infer tasks overlap in
    time, and runs overlapping their publish and gc still publish all three snapshots with CURRENT
    on the latest. (SQLite DAG runs: the consecutive-hours and operator-experience tests.)"""
    import sqlalchemy

    data, base_env = airflow_env
    env = {**base_env, "AIRFLOW_HOME": str(tmp_path / "home"), "SOLARIS_SNAPSHOTS": str(tmp_path / "snapshots"),
           "SOLARIS_WORK": str(tmp_path / "work"), "SOLARIS_CATCHUP": "false",
           # the latest interval's run (unpausing schedules it; it has no logs) gives up after 60 s
           "SOLARIS_SENSOR_TIMEOUT": "60", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres, "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
           "AIRFLOW__CORE__PARALLELISM": "4", "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "8",
           "SOLARIS_SPARK_MASTER": "local[1]"}  # two runs' Spark drivers share 2 cores
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([AIRFLOW, "pools", "set", "solaris_fm", "2", "fm"], env=env, check=True, capture_output=True)
    _scheduler_backfill(env, tmp_path, max_active_runs=2)
    _three_snapshots_current_on_the_latest(tmp_path / "snapshots")
    with sqlalchemy.create_engine(postgres).connect() as c:
        rows = c.execute(sqlalchemy.text(
            "SELECT run_id, task_id, start_date, end_date FROM task_instance WHERE dag_id = 'solaris_precompute'"
            " AND task_id IN ('infer', 'publish', 'gc') AND state = 'success'")).all()
    infer = [(s, e) for _, t, s, e in rows if t == "infer"]
    assert len(infer) == 3 * 2  # two mapped shards per run
    overlap = any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(infer) for b in infer[i + 1:])
    assert overlap, "no two infer tasks ran at the same time"


@pytest.mark.parametrize("task_level,env_level,expected", [("INFO", None, "ERROR"), ("DEBUG", None, "WARN"),
                                                           ("DEBUG", "INFO", "INFO")])
def test_spark_log_level_follows_the_task_log_level(airflow_env, task_level, env_level, expected):
    """Tasks keep Spark quiet at Airflow's default log level; at DEBUG its warnings come back,
    unless SOLARIS_SPARK_LOG_LEVEL says otherwise."""
    _, base_env = airflow_env
    env = {k: v for k, v in base_env.items() if k != "SOLARIS_SPARK_LOG_LEVEL"}
    env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = task_level
    if env_level:
        env["SOLARIS_SPARK_LOG_LEVEL"] = env_level
    r = subprocess.run([sys.executable, "-c", "from solaris_batch import dag_defaults as d; "
                        "print('level', d.settings().spark_log_level)"], env=env, capture_output=True, text=True)
    assert f"level {expected}" in r.stdout.splitlines(), r.stdout[-2000:] + r.stderr[-2000:]

MONITOR_RUN = r"""
import importlib.util, json, sys
import solaris_batch.monitor as monitor
if sys.argv[2] == "transient":  # the snapshot store drops the first read, as a flaky object store does
    real, calls = monitor.snapshot_pairs, []
    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionResetError("injected: the snapshot store reset the connection")
        return real(*args, **kwargs)
    monitor.snapshot_pairs = flaky
spec = importlib.util.spec_from_file_location("solaris_monitor_dag", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
dr = mod.monitor_dag.test(run_conf=json.loads(sys.argv[3]))
ti = dr.get_task_instance("check")
value = lambda s: getattr(s, "value", s)
print(json.dumps({"run": value(dr.state), "check": value(ti.state), "tries": ti.try_number}))
"""


def _monitor_run(env, fault: str, conf: dict) -> dict:
    """One real run of solaris_monitor (``dag.test()``), with ``fault`` injected into this process."""
    r = subprocess.run([sys.executable, "-c", MONITOR_RUN, str(ROOT / "dags" / "solaris_monitor.py"), fault,
                        json.dumps(conf)], env=env, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads([ln for ln in r.stdout.splitlines() if ln.startswith("{")][-1])


def _half_horizon_snapshot(logs: Path, root: Path, work: Path) -> str:
    """Publish a snapshot of every other (user, ad) pair of the 06:00 horizon, by hand."""
    import numpy as np

    from solaris_batch.logs.reader import read_window
    from solaris_batch.snapshots.publish import publish
    from solaris_batch.snapshots.shards import shard_path, write_embedding_shard
    from solaris_batch.timeutil import Window, parse_time

    at = parse_time("2026-11-20T06:00")
    t = read_window(logs, Window.after(at, parse_time("2026-11-20T07:00") - at), columns=["user_id", "ad_id"])
    pairs = np.unique(np.stack([t.column(0).to_numpy(), t.column(1).to_numpy()], axis=1), axis=0)[::2]
    write_embedding_shard(shard_path(work, 0), pairs[:, 0], pairs[:, 1], np.ones((len(pairs), 8), np.float32),
                          checkpoint_version="monitor-test", plan_at=at.isoformat(), shard="0", plan_shards="0",
                          plan_pairs=str(len(pairs)), plan_fingerprint="monitor-test")
    return publish(work, str(root), "fm", extra={"window": {"at": at.isoformat(), "horizon": "1h"}}).snapshot_id


@pytest.mark.integration
def test_monitor_fails_at_once_below_threshold_and_retries_a_transient_error(airflow_env, tmp_path):
    """With retries on, a hit rate below `min_hit_rate` fails `check` on its first try (the metrics
    recorded), while an error of the store it reads is retried and the retry succeeds."""
    import pyarrow.parquet as pq

    data, base_env = airflow_env
    sid = _half_horizon_snapshot(data / "logs", tmp_path / "snapshots", tmp_path / "emb")
    env = {**base_env, "SOLARIS_SNAPSHOTS": str(tmp_path / "snapshots"), "SOLARIS_METRICS": str(tmp_path / "metrics"),
           "SOLARIS_DAG_RETRIES": "2", "SOLARIS_DAG_RETRY_DELAY": "1"}
    assert _monitor_run(env, "none", {"snapshot_id": sid, "min_hit_rate": 0.99}) == \
        {"run": "failed", "check": "failed", "tries": 1}
    row = pq.read_table(tmp_path / "metrics" / "monitor" / f"snapshot_id={sid}.parquet").to_pylist()[0]
    assert not row["passed"] and 0.2 < row["request_hit_rate"] < 0.99
    assert _monitor_run(env, "transient", {"snapshot_id": sid, "min_hit_rate": 0.0}) == \
        {"run": "success", "check": "success", "tries": 2}


JVM_NOISE = ("WARN NativeCodeLoader", "Using incubator modules", "netlib-blas", "log4j profile",
             "resolves to a loopback address", "Setting default log level")


@pytest.mark.integration
@pytest.mark.slow
def test_missing_partition_inside_the_log_fails_speculate_with_its_one_line_error(airflow_env, tmp_path):
    from solaris_batch.logs.layout import partition_dir
    from solaris_batch.timeutil import parse_time

    data, base_env = airflow_env
    logs = tmp_path / "logs"
    shutil.copytree(data / "logs", logs)
    shutil.rmtree(partition_dir(logs, parse_time("2026-11-20T02:00")))
    env = {**base_env, "SOLARIS_LOGS": str(logs), "SOLARIS_SNAPSHOTS": str(tmp_path / "snapshots"),
           "SOLARIS_WORK": str(tmp_path / "work")}
    r = dags_test(env, "solaris_precompute", "2026-11-20T05:00:00+00:00", {"lookback": "4h"})
    out = r.stdout + r.stderr
    assert r.returncode != 0
    msg = (f"log partition {partition_dir(logs, parse_time('2026-11-20T02:00'))} is missing for window"
           " [2026-11-20T01:00Z, 2026-11-20T05:00Z): backfill that hour or shorten --lookback")
    assert f"SolarisError: {msg}" in out, out[-4000:]
    assert "solaris: error:" not in out  # raised once by the task, not also echoed from the job
    assert not (tmp_path / "snapshots").exists()


EVENTS = r"""
import json
from airflow.models.asset import AssetEvent
from airflow.utils.session import create_session
with create_session() as s:
    print(json.dumps([[e.name, e.extra] for e in s.query(AssetEvent).order_by(AssetEvent.id)]))
"""


@pytest.mark.integration
@pytest.mark.slow
def test_train_submits_through_the_spark_connection_and_updates_its_assets(airflow_env, tmp_path):
    """With SOLARIS_SPARK_CONN_ID set, train_speculator is a SparkSubmitOperator on the connection;
    the new FM checkpoint and speculator version update their assets."""
    from solaris_batch.speculate import registry

    data, base_env = airflow_env
    env = {**base_env, "SOLARIS_SPARK_CONN_ID": "solaris_spark",
           "AIRFLOW_CONN_SOLARIS_SPARK": json.dumps({"conn_type": "spark", "host": "local[2]"}),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "SOLARIS_SPECULATOR": str(tmp_path / "speculator"), "SOLARIS_MODEL": str(tmp_path / "fm")}
    r = dags_test(env, "solaris_train", conf={"until": "2026-11-20T05:00:00+00:00", "speculator_windows": 1,
                                              "lookback": "4h", "window": "4h"})
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "--master local[2]" in out and "train_speculator.py" in out, out[-4000:]
    assert registry.latest(tmp_path / "speculator").name.startswith("20261120T0500Z-w1-4h")
    (fm_version,) = [p.name for p in (tmp_path / "fm.versions").iterdir()]
    r = subprocess.run([sys.executable, "-c", EVENTS], env=env, capture_output=True, text=True)
    events = json.loads([ln for ln in r.stdout.splitlines() if ln.startswith("[")][-1])
    fm = [extra for name, extra in events if name == "solaris_fm_checkpoint"]
    assert fm and fm[-1]["version"] == fm_version and fm[-1]["path"] == str(tmp_path / "fm")
    assert any(name == "solaris_speculator" for name, _ in events)
