import numpy as np
import pytest

from solaris_batch.snapshots import index as ix
from solaris_batch.snapshots.index import PairIndex, UserSegments


def _pairs(rng, n, users=60):
    u = rng.integers(0, users, n)
    a = rng.integers(0, 1 << 20, n)
    _, first = np.unique(u * (1 << 21) + a, return_index=True)
    return u[first].astype(np.int64), a[first].astype(np.int64)


def test_the_compiled_probe_is_built():
    assert ix._probe is not None, "solaris_batch.snapshots._probe was not compiled: pip install -e . with a C compiler"


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


def _reference(keys, emb, qu, qa):
    """Naive lookup: a dict over the pairs, zero rows for misses."""
    ref = {(x, y): i for i, (x, y) in enumerate(keys.tolist())}
    rows = np.array([ref.get(k, -1) for k in zip(qu.tolist(), qa.tolist(), strict=True)], dtype=np.int64)
    out = np.zeros((len(qu), emb.shape[1]), emb.dtype)
    out[rows >= 0] = emb[rows[rows >= 0]]
    return rows, out


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("dim", [64, 5])  # 128-byte rows take the inlined copy; others the general one
def test_pair_index_lookup_gathers_rows_and_zero_fills_misses(compiled, dim):
    rng = np.random.default_rng(dim)
    u, a = _pairs(rng, 20_000)
    keys = np.stack([u, a], 1)
    emb = rng.standard_normal((len(u), dim)).astype(np.float16)
    index = PairIndex(keys)
    pick = rng.integers(0, len(u), 1500)
    qu, qa = u[pick], a[pick].copy()
    qa[rng.random(1500) < 0.3] += 1 << 21  # absent
    hit, out, hits = index.lookup(emb, qu, qa, compiled=compiled)
    ref_rows, ref_out = _reference(keys, emb, qu, qa)
    assert np.array_equal(hit, ref_rows >= 0) and np.array_equal(out, ref_out) and hits == (ref_rows >= 0).sum()


def _grouped(rng, users, max_ads):
    """Rows grouped by user (shuffled user order), ads strictly increasing in each group."""
    lens = rng.integers(1, max_ads + 1, users)
    u = np.repeat(rng.permutation(users).astype(np.int64) * 7919, lens)
    a = np.concatenate([np.cumsum(rng.integers(1, 50, k)) for k in lens]).astype(np.int64)
    return np.stack([u, a], 1)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("max_ads", [100, 3000])  # groups hashed per request (<= 1024 rows), and bisected
def test_user_segments_answer_one_user_requests_like_a_dict(compiled, max_ads):
    rng = np.random.default_rng(3)
    keys = _grouped(rng, 300 if max_ads == 100 else 30, max_ads)
    emb = rng.standard_normal((len(keys), 64)).astype(np.float16)
    seg = UserSegments(keys)
    assert seg.ok
    for user in [*rng.choice(keys[:, 0], 40), 7919 * 1000 + 1]:  # the last user is absent
        mine = keys[keys[:, 0] == user, 1]
        # the user's ads (first, last, all), values between and around them, in random order
        qa = np.concatenate([mine, mine + 1, mine - 1, [0, -5, 10**12], rng.integers(0, 3000, 50)])
        qa = rng.permutation(qa).astype(np.int64)
        qu = np.full(len(qa), user, np.int64)
        hit, out, hits = seg.lookup(emb, qu, qa, compiled=compiled)
        ref_rows, ref_out = _reference(keys, emb, qu, qa)
        assert np.array_equal(hit, ref_rows >= 0) and np.array_equal(out, ref_out) and hits == (ref_rows >= 0).sum()
    mixed = keys[[0, -1]]
    assert seg.lookup(emb, mixed[:, 0].copy(), mixed[:, 1].copy(), compiled=compiled) is None  # two users


def test_user_segments_need_the_grouped_sorted_layout():
    assert UserSegments(np.array([[5, 1], [5, 4], [2, 3], [9, 1]], np.int64)).ok
    assert not UserSegments(np.array([[1, 1], [2, 1], [1, 2]], np.int64)).ok  # user 1 split in two groups
    assert not UserSegments(np.array([[1, 4], [1, 2]], np.int64)).ok  # ads not sorted
    assert not UserSegments(np.array([[1, 2], [1, 2]], np.int64)).ok  # duplicate pair
