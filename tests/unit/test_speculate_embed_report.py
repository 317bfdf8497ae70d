"""Co-visitation vectors, faiss top-k, backtest pooling, and the speculator registry."""

import json

import numpy as np
import pytest

from solaris_batch.speculate import registry
from solaris_batch.speculate.embed import cooccurrence_vectors, group_mean, normalize, top_k
from solaris_batch.speculate.report import lift, pool_results


def test_cooccurrence_vectors_separate_two_communities():
    # ads 0-3 co-visited only among themselves, 4-7 likewise; 8 isolated
    src, dst = [], []
    for block in (range(0, 4), range(4, 8)):
        for a in block:
            for b in block:
                if a < b:
                    src.append(a)
                    dst.append(b)
    v = cooccurrence_vectors(np.array(src), np.array(dst), np.ones(len(src)), 9, dim=4)
    assert v.shape == (9, 4) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v[:8], axis=1), 1, atol=1e-5) and not v[8].any()
    sim = v @ v.T
    assert sim[0, 1] > 0.9 and sim[4, 5] > 0.9 and abs(sim[0, 4]) < 0.1
    again = cooccurrence_vectors(np.array(src), np.array(dst), np.ones(len(src)), 9, dim=4)
    assert np.array_equal(v, again)  # deterministic per seed


def test_top_k_matches_brute_force():
    rng = np.random.default_rng(0)
    items, q = normalize(rng.normal(size=(50, 8)).astype(np.float32)), rng.normal(size=(5, 8)).astype(np.float32)
    sims, idx = top_k(q, items, 3)
    brute = np.argsort(-(q @ items.T), axis=1)[:, :3]
    assert np.array_equal(idx, brute) and np.allclose(sims, np.take_along_axis(q @ items.T, brute, 1), atol=1e-5)
    assert top_k(q, items[:2], 10)[1].shape == (5, 2)


def test_group_mean():
    v = np.array([[1, 0], [3, 0], [0, 2]], np.float32)
    assert np.array_equal(group_mean(np.array([0, 0, 2]), v, 3), [[2, 0], [0, 0], [0, 2]])


def test_pool_results_sums_before_ratios():
    per_at = [
        {"horizon_rows": 10, "horizon_pairs": 5, "results": [
            {"strategy": "learned", "budget": "1x", "budget_pairs": 4, "hit_rows": 6, "matched_pairs": 3,
             "planned_pairs": 4},
            {"strategy": "repeat", "budget": "1x", "budget_pairs": 4, "hit_rows": 5, "matched_pairs": 2,
             "planned_pairs": 4}]},
        {"horizon_rows": 30, "horizon_pairs": 15, "results": [
            {"strategy": "learned", "budget": "1x", "budget_pairs": 8, "hit_rows": 12, "matched_pairs": 5,
             "planned_pairs": 8},
            {"strategy": "repeat", "budget": "1x", "budget_pairs": 8, "hit_rows": 10, "matched_pairs": 4,
             "planned_pairs": 6}]},
    ]
    rows = {r["strategy"]: r for r in pool_results(per_at)}
    assert rows["learned"]["request_hit_rate"] == 18 / 40 and rows["learned"]["pair_recall"] == 8 / 20
    assert rows["learned"]["precision"] == 8 / 12 and rows["learned"]["budget_pairs"] == 12
    assert rows["repeat"]["precision"] == 6 / 10
    assert lift({"results": pool_results(per_at)}, "1x") == pytest.approx((18 / 40) / (15 / 40) - 1)


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
