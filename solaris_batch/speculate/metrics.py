"""Coverage of a plan (or snapshot) against what the horizon really scored."""

from __future__ import annotations

import numpy as np


def pair_keys(users: np.ndarray, ads: np.ndarray, *more: tuple[np.ndarray, np.ndarray]) -> list[np.ndarray]:
    """Exact int64 keys for several (user, ad) arrays over one shared dense id space."""
    groups = [(np.asarray(users), np.asarray(ads)), *more]
    uu, ui = np.unique(np.concatenate([g[0] for g in groups]), return_inverse=True)
    au, ai = np.unique(np.concatenate([g[1] for g in groups]), return_inverse=True)
    keys, lo = [], 0
    for g in groups:
        hi = lo + len(g[0])
        keys.append(ui[lo:hi].astype(np.int64) * len(au) + ai[lo:hi])
        lo = hi
    return keys


def coverage(planned_users, planned_ads, horizon_users, horizon_ads) -> dict:
    """``request_hit_rate``: share of horizon (request, ad) rows whose pair was planned;
    ``pair_recall``: share of distinct horizon pairs planned; ``precision``: share of planned
    pairs that appeared in the horizon."""
    pk, hk = pair_keys(planned_users, planned_ads, (horizon_users, horizon_ads))
    pk = np.unique(pk)
    hit = np.isin(hk, pk)
    hd = np.unique(hk)
    return {
        "planned_pairs": int(len(pk)),
        "horizon_rows": int(len(hk)),
        "horizon_pairs": int(len(hd)),
        "request_hit_rate": float(hit.mean()) if len(hk) else 0.0,
        "pair_recall": float(np.isin(hd, pk).mean()) if len(hd) else 0.0,
        "precision": float(np.isin(pk, hd).mean()) if len(pk) else 0.0,
    }
