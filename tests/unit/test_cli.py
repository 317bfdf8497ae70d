"""The `solaris` command's one-line errors on bad input and damaged snapshot roots (in-process)."""

from pathlib import Path

import pytest

from solaris_batch.cli import main
from solaris_batch.snapshots.publish import publish
from tests.snapshot_fixtures import make_emb


def _run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "snap"
    for h in (1, 2):
        publish(make_emb(tmp_path / f"e{h}", h, hour=h), r, "fm")
    return r


def _one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("solaris: error: "), err
    return lines[0]


def test_bad_ids_and_garbage_files_give_one_line(root, capsys):
    rc, _, err = _run(capsys, "lookup", "--root", str(root), "--user", "11", "--ads", "100,abc")
    assert rc == 2 and "comma-separated integer ad ids" in _one_error_line(err)
    (root / "fm" / "BAD").write_bytes(b"\x89PNG garbage")
    rc, _, err = _run(capsys, "snapshots", "rollback", "--root", str(root))
    assert rc == 2 and "BAD" in _one_error_line(err)
    (root / "fm" / "CURRENT").write_bytes(b"\x00\xff")
    rc, _, err = _run(capsys, "lookup", "--root", str(root), "--user", "11", "--ads", "100")
    assert rc == 2 and "CURRENT" in _one_error_line(err)


def test_list_shows_every_snapshot_when_one_manifest_is_damaged(root, capsys):
    snaps = sorted(p.name for p in (root / "fm" / "snapshots").iterdir())
    (root / "fm" / "snapshots" / snaps[0] / "_manifest.json").write_text("{ not json")
    rc, out, _ = _run(capsys, "snapshots", "list", "--root", str(root))
    lines = out.strip().splitlines()
    assert rc == 0 and len(lines) == 2
    assert lines[0].startswith(f"{snaps[0]}  UNREADABLE") and lines[1].startswith(snaps[1]) and "CURRENT" in lines[1]


def test_snapshots_show_takes_options_before_the_id(root, capsys):
    sid = sorted(p.name for p in (root / "fm" / "snapshots").iterdir())[-1]
    rc, out, _ = _run(capsys, "snapshots", "show", "--root", str(root), sid)
    assert rc == 0 and f'"snapshot_id": "{sid}"' in out
    rc, out, _ = _run(capsys, "snapshots", "show", sid, "--root", str(root))
    assert rc == 0 and f'"snapshot_id": "{sid}"' in out


def test_every_subcommand_has_help(capsys):
    """Walks the parser itself, so a new subcommand is covered without editing this list."""
    import argparse

    from solaris_batch.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {"simulate", "speculate", "train-fm", "infer", "publish", "run", "replay", "lookup", "snapshots",
            "config", "evaluate", "backtest", "ingest", "train-speculator"} <= set(sub.choices)
    for name in sub.choices:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        out = capsys.readouterr().out
        assert e.value.code == 0 and out.startswith(f"usage: solaris {name}") and len(out) > 80, name
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("solaris-batch ")


def test_speculate_to_an_object_store_is_one_line_error(capsys, tmp_path):
    from solaris_batch.cli import main

    assert main(["speculate", "--logs", str(tmp_path), "--at", "2026-11-20T05:00", "--out", "s3://b/plan"]) != 0
    err = capsys.readouterr().err
    assert err.startswith("solaris: error: s3://b/plan is an object-store URI") and len(err.splitlines()) == 1
    assert not (Path.cwd() / "s3:").exists()


def test_simulate_takes_the_regime_and_refuses_an_unknown_one(capsys, tmp_path):
    import json

    argv = ["simulate", "--out", str(tmp_path / "logs"), "--start", "2026-11-20T00:00", "--hours", "1",
            "--users", "50", "--ads", "40"]
    assert _run(capsys, *argv, "--regime", "feed")[0] == 0
    assert json.loads((tmp_path / "logs" / "_simulator.json").read_text())["regime"] == "feed"
    rc, _, err = _run(capsys, *argv, "--regime", "news")
    assert rc == 2 and "--regime must be one of market, feed" in _one_error_line(err)
