"""Co-visitation vectors and faiss top-k (``solaris_batch.speculate.embed``)."""

import numpy as np

from solaris_batch.speculate.embed import cooccurrence_vectors, group_mean, normalize, top_k


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
