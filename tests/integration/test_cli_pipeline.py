import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import T0, write_hours

pytestmark = pytest.mark.integration
SOLARIS = [sys.executable, "-m", "solaris_batch.cli"]


def run(args, tmp_path, **env):
    e = {**os.environ, "SOLARIS_DATA": str(tmp_path / "data"), **env}
    return subprocess.run(SOLARIS + args, capture_output=True, text=True, env=e, cwd=tmp_path)


@pytest.mark.parametrize("case", ["missing", "no_success", "bad_schema", "unknown_model", "bad_budget", "no_plan"])
def test_expected_errors_are_one_line(tmp_path, case):
    logs = tmp_path / "logs"
    write_hours(logs, {0: [(1, T0, 7, 70, 0, True, False)]})
    at = "2026-11-20T01:00"
    args = {
        "missing": ["speculate", "--logs", str(tmp_path / "nope"), "--at", at, "--out", "p"],
        "no_success": ["speculate", "--logs", str(logs), "--at", "2026-11-20T02:00", "--lookback", "2h", "--out", "p"],
        "bad_schema": ["train-fm", "--logs", str(logs), "--until", at, "--out", "m"],
        "unknown_model": ["lookup", "--root", str(tmp_path), "--model-name", "nosuch", "--user", "1", "--ads", "2"],
        "bad_budget": ["speculate", "--logs", str(logs), "--at", at, "--budget", "lots", "--out", "p"],
        "no_plan": ["infer", "--plan", str(tmp_path / "noplan"), "--out", "e"],
    }[case]
    if case == "no_success":
        write_hours(logs, {1: [(2, T0.replace(hour=1), 7, 70, 0, True, False)]})
        (logs / "requests" / "dt=2026-11-20" / "hour=01" / "_SUCCESS").unlink()
    if case == "bad_schema":
        f = next((logs / "requests" / "dt=2026-11-20" / "hour=00").glob("*.parquet"))
        pq.write_table(pq.read_table(f).drop_columns(["clicked"]), f)
    r = run(args, tmp_path)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.startswith("solaris: error:")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    hint = {"missing": "solaris simulate", "no_success": "_SUCCESS", "bad_schema": "missing column clicked",
            "unknown_model": "nosuch", "bad_budget": "2x", "no_plan": "solaris speculate"}[case]
    assert hint in lines[0]


def test_whole_pipeline_cli(tmp_path):
    """simulate -> train-fm -> run (speculate, infer, publish) -> replay, all through the CLI."""
    assert run(["simulate", "--out", "data/logs", "--start", "2026-11-20T00:00", "--hours", "8", "--users", "600",
                "--ads", "200", "--seed", "4"], tmp_path).returncode == 0
    r = run(["train-fm", "--until", "2026-11-20T07:00", "--window", "6h", "--epochs", "1"], tmp_path)
    assert r.returncode == 0, r.stderr
    r = run(["run", "--at", "2026-11-20T07:00", "--lookback", "6h", "--budget", "2x", "--shards", "2"], tmp_path)
    assert r.returncode == 0, r.stderr
    snap = json.loads(r.stdout.strip().splitlines()[-1])
    assert snap["rows"] > 0 and snap["current"] == snap["snapshot_id"]
    r = run(["replay", "--at", "2026-11-20T07:00"], tmp_path)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["snapshot_id"] == snap["snapshot_id"] and 0.1 < rep["request_hit_rate"] <= 1.0
    s = rep["sample"]
    r = run(["lookup", "--user", str(s["user_id"]), "--ads", f"{s['ad_id']},1"], tmp_path)
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert rows[0]["hit"] and len(rows[0]["embedding"]) == 64 and not rows[1]["hit"]
    # rerunning the same interval republishes nothing new
    r2 = run(["run", "--at", "2026-11-20T07:00", "--lookback", "6h", "--budget", "2x", "--shards", "2"], tmp_path)
    assert json.loads(r2.stdout.strip().splitlines()[-1])["snapshot_id"] == snap["snapshot_id"]
    assert len(list(Path(tmp_path / "data/snapshots/fm/snapshots").iterdir())) == 1
