"""The one local atomic writer and staged folders: old or new content, never a mix or a leftover."""

import pytest

from solaris_batch.storage import atomic_path, staged_dir, write_atomic, write_json_atomic


def test_write_atomic_replaces_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "a" / "CURRENT"
    write_atomic(p, "one\n")
    write_atomic(p, b"two\n")
    write_json_atomic({"k": 1}, tmp_path / "a" / "x.json")
    assert p.read_text() == "two\n" and (tmp_path / "a" / "x.json").read_text() == '{\n  "k": 1\n}\n'
    assert sorted(x.name for x in p.parent.iterdir()) == ["CURRENT", "x.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    p = tmp_path / "f"
    p.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(p) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert p.read_text() == "old" and [x.name for x in tmp_path.iterdir()] == ["f"]


def test_staged_dir_appears_whole_or_not_at_all(tmp_path):
    out = tmp_path / "log"
    with staged_dir(out) as d:
        (d / "a").write_text("1")
    assert (out / "a").read_text() == "1"
    with pytest.raises(RuntimeError), staged_dir(out) as d:
        (d / "b").write_text("2")
        raise RuntimeError("killed")
    assert sorted(x.name for x in out.iterdir()) == ["a"]  # the old folder, untouched
    with staged_dir(out) as d:
        (d / "c").write_text("3")
    assert sorted(x.name for x in out.iterdir()) == ["c"]  # replaced whole
    assert [x.name for x in tmp_path.iterdir()] == ["log"]  # no staging or old folders left
