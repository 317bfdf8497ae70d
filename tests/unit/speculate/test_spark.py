"""What separate executors get (``solaris_batch.speculate.spark``): the package zip; no Spark started."""

import subprocess
import sys
import zipfile

import pytest

from solaris_batch.speculate.channels import sql_root
from solaris_batch.speculate.spark import PACKAGE, embedded, package_zip


@pytest.mark.parametrize(("master", "expected"), [
    ("local", True), ("local[*]", True), ("local[2]", True), ("local-cluster[2,1,1024]", False),
    ("spark://127.0.0.1:7077", False), ("yarn", False), ("k8s://https://host:443", False),
])
def test_only_local_masters_embed_their_executors(master, expected):
    assert embedded(master) is expected


def test_package_zip_holds_the_modules_and_the_sql_and_is_built_once():
    z = package_zip()
    assert package_zip() == z and z.name.startswith("solaris_batch-")
    with zipfile.ZipFile(z) as f:
        names = set(f.namelist())
        sql = {t.name: t.read_text() for t in sql_root().iterdir() if t.name.endswith(".sql")}
        assert sql and all(f.read(f"solaris_batch/sql/{n}").decode() == text for n, text in sql.items())
    modules = {f"solaris_batch/{p.relative_to(PACKAGE).as_posix()}" for p in PACKAGE.rglob("*.py")
               if "__pycache__" not in p.parts}
    assert modules <= names and "solaris_batch/speculate/log4j2.properties" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith((".so", ".pyc"))]


def test_an_interpreter_without_the_package_imports_it_and_reads_the_sql_from_the_zip(tmp_path):
    """``-I``: no site-packages, no editable install, no PYTHONPATH; only the zip on sys.path."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import solaris_batch; from importlib import resources;"
            "print(solaris_batch.__file__); print(resources.files('solaris_batch.sql')"
            ".joinpath('user_sequences.sql').read_text())")
    r = subprocess.run([sys.executable, "-I", "-c", code, str(package_zip())], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    origin, text = r.stdout.split("\n", 1)
    assert origin == f"{package_zip()}/solaris_batch/__init__.py"
    assert text.rstrip("\n") == sql_root().joinpath("user_sequences.sql").read_text().rstrip("\n")
