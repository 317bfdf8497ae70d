"""What the wheel ships: every package, the SQL as package data, no top-level ``spark_jobs``."""

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_folder_is_listed():
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "solaris_batch").rglob("__init__.py")}
    listed = set(_setuptools()["packages"])
    assert on_disk <= listed, f"add {sorted(on_disk - listed)} to [tool.setuptools] packages in pyproject.toml"
    assert not any(p.split(".")[0] == "spark_jobs" for p in listed)


def test_sql_ships_as_package_data():
    st = _setuptools()
    assert st["package-dir"]["solaris_batch.sql"] == "sql" and st["package-data"]["solaris_batch.sql"] == ["*.sql"]
    from solaris_batch.speculate.channels import sql_text

    for f in (ROOT / "sql").glob("*.sql"):
        assert sql_text(f.name) == f.read_text()


def test_importing_the_speculator_does_not_import_pyspark():
    import subprocess

    code = ("import sys, solaris_batch.speculate, solaris_batch.speculate.planner, solaris_batch.jobs;"
            " assert 'pyspark' not in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
