import numpy as np
import pytest

from solaris_batch.serving import index as ix
from solaris_batch.serving.index import PairIndex, UserSegments, gather_rows


def _pairs(rng, n, users=60):
    u = rng.integers(0, users, n)
    a = rng.integers(0, 1 << 20, n)
    _, first = np.unique(u * (1 << 21) + a, return_index=True)
    return u[first].astype(np.int64), a[first].astype(np.int64)


def test_the_compiled_probe_is_built():
    assert ix._probe is not None, "solaris_batch.serving._probe was not compiled: pip install -e . with a C compiler"


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("n", [0, 1, 7, 5000, 200_000])
def test_pair_index_is_exact(n, compiled):
    rng = np.random.default_rng(n)
    u, a = _pairs(rng, n)
    index = PairIndex(np.stack([u, a], 1) if len(u) else np.zeros((0, 2), np.int64))
    assert (index.find(u, a, compiled=compiled) == np.arange(len(u))).all()
    assert (index.find(u, a + (1 << 21), compiled=compiled) == -1).all()  # absent pairs
    qu, qa = rng.integers(0, 80, 3000), rng.integers(0, 1 << 20, 3000)
    ref = {(x, y): i for i, (x, y) in enumerate(zip(u.tolist(), a.tolist(), strict=True))}
    expected = [ref.get(k, -1) for k in zip(qu.tolist(), qa.tolist(), strict=True)]
    assert index.find(qu, qa, compiled=compiled).tolist() == expected


def test_gather_rows_paths_agree():
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((50, 8)).astype(np.float16)
    rows = np.array([3, -1, 49, 0, -1, 3])
    out, hits = gather_rows(emb, rows)
    assert hits == 4 and (out[[1, 4]] == 0).all() and np.array_equal(out[[0, 2, 3, 5]], emb[[3, 49, 0, 3]])
    saved, ix._probe = ix._probe, None
    try:
        out2, hits2 = gather_rows(emb, rows)
    finally:
        ix._probe = saved
    assert hits2 == hits and np.array_equal(out, out2)


def test_user_segments_fallback_path():
    u = np.array([5, 5, 5, 2, 2, 9], dtype=np.int64)
    a = np.array([1, 4, 8, 3, 7, 1], dtype=np.int64)
    seg = UserSegments(u, a)
    assert seg.ok
    assert seg.find_one_user(5, np.array([8, 2, 1])).tolist() == [2, -1, 0]
    assert seg.find_one_user(2, np.array([7])).tolist() == [4]
    assert seg.find_one_user(6, np.array([1])).tolist() == [-1]
    assert not UserSegments(np.array([1, 2, 1]), np.array([1, 1, 2])).ok  # user 1 split: not grouped
