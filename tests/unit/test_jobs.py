"""Typed Spark job arguments and the launcher's command lines (``solaris_batch.jobs``), no Spark."""

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from solaris_batch.config import Settings
from solaris_batch.errors import ConfigError
from solaris_batch.jobs import (
    SPARK_JOBS_DIR,
    BacktestJob,
    SpeculateJob,
    TrainSpeculatorJob,
    submit_command,
    submit_spec,
)
from solaris_batch.speculate.budget import Budget
from solaris_batch.speculate.registry import SpeculatorChoice, SpeculatorKind

T = datetime(2026, 11, 21, 23, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path):
    return Settings(data=tmp_path, shards=3)


def test_text_is_parsed_once_into_typed_fields():
    job = SpeculateJob(at="2026-11-21T23:00", out="plan", budget="2x", lookback="90m", speculator="heuristic",
                       per_user_cap=None)
    assert job.at == T and job.out == Path("plan") and job.budget == Budget(multiple=2.0)
    assert job.lookback == timedelta(minutes=90) and job.horizon == timedelta(hours=1)  # the default, typed
    assert job.speculator.kind is SpeculatorKind.HEURISTIC and job.per_user_cap is None
    assert job == SpeculateJob(at=T, out=Path("plan"), budget=Budget(multiple=2.0), lookback=timedelta(minutes=90),
                               speculator=SpeculatorChoice.parse("heuristic"))
    assert SpeculateJob(at=T, out="p", speculator=None).speculator.kind is SpeculatorKind.LATEST  # None: default


def test_bad_values_fail_at_construction_with_the_fix():
    with pytest.raises(ConfigError, match="e.g. 2x"):
        SpeculateJob(at=T, out="p", budget="lots")
    with pytest.raises(ConfigError, match="bad duration"):
        TrainSpeculatorJob(at=T, lookback="a day")
    with pytest.raises(ConfigError, match="bad time"):
        BacktestJob(at="yesterday", out="bt")


@pytest.mark.parametrize("job", [
    SpeculateJob(at=T, out="plan", per_user_cap=7, speculator="models/v1"),
    TrainSpeculatorJob(at=T, every="2h", windows=2, seed=3),
    BacktestJob(at="2026-11-21T21:00, 2026-11-21T22:00", out="bt", budgets="1x,500", strategies="repeat,popular"),
    BacktestJob(at=T, out="bt", speculator="latest"),
], ids=lambda j: type(j).__name__)
def test_argv_round_trips(job, settings):
    resolved = job.resolve(settings)
    assert type(job).from_argv(resolved.to_argv()) == resolved
    assert type(job).from_argv(job.to_argv()) == job  # unresolved fields are left out


def test_resolve_fills_only_unset_fields_from_settings(settings, tmp_path):
    job = SpeculateJob(at=T, out="p").resolve(settings)
    assert (job.logs, job.shards, job.registry) == (settings.logs_root, 3, settings.speculator_path)
    given = SpeculateJob(at=T, out="p", logs=tmp_path / "l", shards=1, registry=tmp_path / "r").resolve(settings)
    assert (given.logs, given.shards, given.registry) == (tmp_path / "l", 1, tmp_path / "r")
    # the backtest trains into DIR/speculator unless told otherwise; other choices read the registry
    assert BacktestJob(at=T, out="bt").resolve(settings).registry is None
    assert BacktestJob(at=T, out="bt", speculator="latest").resolve(settings).registry == settings.speculator_path


def test_speculate_argv_keeps_the_flags_of_the_entry_point(settings):
    argv = SpeculateJob(at=T, out="plan", speculator="heuristic").resolve(settings).to_argv()
    flags = dict(zip(argv[::2], argv[1::2], strict=True))
    assert flags == {"--logs": str(settings.logs_root), "--at": "2026-11-21T23:00:00+00:00", "--lookback": "1d",
                     "--horizon": "1h", "--budget": "2x", "--out": str(Path("plan").absolute()), "--shards": "3",
                     "--seq-len": "128",
                     "--model": "heuristic", "--registry": str(settings.speculator_path)}


def test_missing_required_argument_is_refused(capsys):
    with pytest.raises(SystemExit):
        SpeculateJob.from_argv(["--at", "2026-11-21T23:00"])
    assert "--out" in capsys.readouterr().err


def test_submit_command_and_spec_run_the_entry_point_script(settings):
    job = TrainSpeculatorJob(at=T)
    cmd = submit_command(settings, job)
    script = str(SPARK_JOBS_DIR / "train_speculator.py")
    assert cmd[1:3] == ["--master", "local[*]"] and cmd[cmd.index(script) + 1:] == job.resolve(settings).to_argv()
    assert "spark.pyspark.python=" + sys.executable in cmd
    spec = submit_spec(settings, job, "yarn", driver_here=False)
    assert spec["application"] == script and spec["application_args"] == job.resolve(settings).to_argv()
    assert "spark.pyspark.python" not in spec["conf"] and "spark.driver.extraJavaOptions" not in spec["conf"]


def test_separate_executors_get_the_package_zip_and_local_ones_do_not(settings):
    from solaris_batch.speculate.spark import package_zip

    job = SpeculateJob(at=T, out="plan")
    for master in ("local-cluster[2,1,1024]", "spark://127.0.0.1:7077", "yarn"):
        assert submit_spec(settings, job, master)["conf"]["spark.submit.pyFiles"] == str(package_zip())
    assert "spark.submit.pyFiles" not in submit_spec(settings, job, "local[2]")["conf"]
    assert not [a for a in submit_command(settings, job) if "pyFiles" in a]


def test_resolved_paths_are_absolute_for_a_driver_elsewhere(settings, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    job = SpeculateJob(at=T, out="plan", logs="logs", registry="reg").resolve(settings)
    assert (job.out, job.logs, job.registry) == (tmp_path / "plan", tmp_path / "logs", tmp_path / "reg")
    assert SpeculateJob(at=T, out="p", logs="s3://b/logs").resolve(settings).logs == "s3://b/logs"


def test_every_job_has_its_entry_point_script():
    for job in (SpeculateJob, TrainSpeculatorJob, BacktestJob):
        text = (SPARK_JOBS_DIR / f"{job.script}.py").read_text()
        assert f"entry_point({job.__name__}, sys.argv[1:])" in text
        assert len(text.splitlines()) < 20  # entry points stay thin: argv -> typed job -> library


def test_a_plan_folder_on_an_object_store_is_refused_not_made_a_local_folder(tmp_path):
    from solaris_batch.tasks import interval_speculate_job

    with pytest.raises(ConfigError, match="object-store URI"):
        SpeculateJob(at=T, out="s3://bucket/work/plans/x")
    st = Settings(data=tmp_path, work="s3://bucket/work")
    with pytest.raises(ConfigError, match="shared filesystem"):
        interval_speculate_job(st, T, "1d", "1h", "2x", 2)
    assert SpeculateJob(at=T, out=f"file://{tmp_path}/p").out == tmp_path / "p"
    assert not (Path.cwd() / "s3:").exists()
