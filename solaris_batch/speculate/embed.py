"""Ad vectors from co-visitation, and nearest-neighbour search over them with faiss.

Pure numpy + faiss, used inside the Spark speculate job: the ad side (ads x dim floats) is small
enough to broadcast, the user side is searched partition by partition.
"""

from __future__ import annotations

import numpy as np


def _spmm(rows: np.ndarray, cols: np.ndarray, w: np.ndarray, x: np.ndarray, n: int) -> np.ndarray:
    """``A @ x`` for the sparse ``A`` given as (rows, cols, w), rows sorted ascending."""
    out = np.zeros((n, x.shape[1]), dtype=np.float64)
    if len(rows) == 0:
        return out
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    out[rows[starts]] = np.add.reduceat(w[:, None] * x[cols], starts, axis=0)
    return out


def cooccurrence_vectors(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, n: int, dim: int = 32,
                         iters: int = 6, seed: int = 0) -> np.ndarray:
    """Spectral embedding of the symmetrized co-visitation graph on ``n`` nodes.

    Args:
        src, dst: int node indices in ``[0, n)``; weight: positive link weights (same length).
    Returns:
        (n, dim) float32, rows L2-normalized (all-zero for isolated nodes), from the top
        eigenpairs of ``D^-1/2 W D^-1/2`` by randomized subspace iteration (deterministic per seed).
    """
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    w = np.asarray(weight, np.float64)
    r, c, w = np.concatenate([src, dst]), np.concatenate([dst, src]), np.concatenate([w, w]) / 2
    o = np.lexsort((c, r))
    r, c, w = r[o], c[o], w[o]
    deg = np.bincount(r, weights=w, minlength=n)
    inv = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0)
    w = w * inv[r] * inv[c]
    k = max(1, min(dim, n))
    x = np.random.default_rng(seed).normal(size=(n, k + 8))
    for _ in range(iters):
        x, _ = np.linalg.qr(_spmm(r, c, w, x, n))
    # Rayleigh-Ritz on the subspace: exact eigenpairs of the projected matrix.
    evals, evecs = np.linalg.eigh(x.T @ _spmm(r, c, w, x, n))
    # Largest eigenvalues, negative ones clipped: keep the positive semi-definite part, whose inner
    # products behave as similarities (a negative eigenvalue would push co-visited ads apart).
    top = np.argsort(-evals)[:k]
    v = (x @ evecs[:, top]) * np.sqrt(np.maximum(evals[top], 0.0))
    v = np.where(np.isfinite(v), v, 0.0)
    if v.shape[1] < dim:
        v = np.pad(v, ((0, 0), (0, dim - v.shape[1])))
    return normalize(v.astype(np.float32))


def normalize(v: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; zero rows stay zero."""
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)


def group_mean(groups: np.ndarray, v: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean row of ``v`` per group id in ``[0, n_groups)`` (zero for empty groups)."""
    s = np.zeros((n_groups, v.shape[1]), dtype=np.float64)
    np.add.at(s, groups, v)
    cnt = np.bincount(groups, minlength=n_groups)[:, None]
    return (s / np.maximum(cnt, 1)).astype(np.float32)


def top_k(queries: np.ndarray, items: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-``k`` of each query row over ``items`` (faiss ``IndexFlatIP``).

    Returns (similarities, item indices), both (len(queries), min(k, len(items))); best first.
    """
    import faiss

    k = min(k, len(items))
    index = faiss.IndexFlatIP(items.shape[1])
    index.add(np.ascontiguousarray(items, dtype=np.float32))
    sims, idx = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return sims, idx
