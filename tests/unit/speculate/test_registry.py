"""The speculator registry and the typed speculator choice (``solaris_batch.speculate.registry``)."""

import json
from pathlib import Path

import pytest

from solaris_batch.errors import ConfigError
from solaris_batch.speculate import registry
from solaris_batch.speculate.registry import SpeculatorChoice, SpeculatorKind


def test_registry_commit_latest_and_rerun(tmp_path):
    assert registry.latest(tmp_path / "reg") is None
    for v in ("v1", "v2"):
        staging = registry.new_version(tmp_path / "reg")
        (staging / "model").mkdir()
        registry.commit(staging, registry.SpeculatorMeta(v, ["f"], ["t"], "24h", "1h", 10, 2))
    assert registry.latest(tmp_path / "reg").name == "v2" and registry.list_versions(tmp_path / "reg") == ["v1", "v2"]
    staging = registry.new_version(tmp_path / "reg")
    registry.commit(staging, registry.SpeculatorMeta("v1", ["f"], ["t"], "24h", "1h", 99, 2))  # identical rerun
    assert json.loads((tmp_path / "reg" / "v1" / "_meta.json").read_text())["examples"] == 10
    assert registry.latest(tmp_path / "reg").name == "v1"
    assert not [p for p in (tmp_path / "reg").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("text,kind,folder", [
    (None, SpeculatorKind.LATEST, None), ("", SpeculatorKind.LATEST, None), ("latest", SpeculatorKind.LATEST, None),
    ("heuristic", SpeculatorKind.HEURISTIC, None), (Path("heuristic"), SpeculatorKind.HEURISTIC, None),
    ("train", SpeculatorKind.TRAIN, None), ("models/speculator/v1", SpeculatorKind.VERSION, Path("models/speculator/v1")),
])
def test_choice_parses_once_and_prints_back(text, kind, folder):
    c = SpeculatorChoice.parse(text)
    assert (c.kind, c.version_dir) == (kind, folder)
    assert SpeculatorChoice.parse(str(c)) == c and SpeculatorChoice.parse(c) is c


def test_choice_resolves_the_folder_to_load(tmp_path):
    reg = tmp_path / "reg"
    assert SpeculatorChoice.parse("latest").model_dir(reg) is None  # nothing registered: the heuristic
    assert SpeculatorChoice.parse("latest").model_dir(None) is None
    staging = registry.new_version(reg)
    registry.commit(staging, registry.SpeculatorMeta("v1", ["f"], ["t"], "24h", "1h", 10, 2))
    assert SpeculatorChoice.parse("latest").model_dir(reg) == reg / "v1"
    assert SpeculatorChoice.parse("heuristic").model_dir(reg) is None
    assert SpeculatorChoice.version(reg / "v0").model_dir(reg) == reg / "v0"
    with pytest.raises(ConfigError, match="'train' is for backtest and evaluate"):
        SpeculatorChoice.parse("train").model_dir(reg)
    with pytest.raises(ValueError):
        SpeculatorChoice(SpeculatorKind.LATEST, reg / "v1")
