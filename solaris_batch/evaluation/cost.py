"""What precomputing costs against running the FM online, over the test horizon's scored rows.

Coverage counts every logged (request, ad) row of the horizon, not only impressions: those are
the lookups a ranker makes. Device-seconds of precompute come from the inference runner's measured
batch throughput; those of the online FM from timing it one request at a time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from solaris_batch.evaluation import rounded
from solaris_batch.evaluation.serve import Served
from solaris_batch.evaluation.split import Rows
from solaris_batch.model.checkpoint import LoadedModel
from solaris_batch.model.features import AdFeatures, Events
from solaris_batch.speculate.metrics import pair_keys
from solaris_batch.timeutil import Window


@dataclass(frozen=True)
class Horizon:
    """The test horizon's scored rows as the test snapshot served them.

    Attributes:
        rows: every logged row of the horizon, time-ordered.
        rank: (rows,) each row's rank in the test window's plan; -1 if unplanned.
        budget_pairs: budget -> pairs it keeps in the test window's plan.
    """

    rows: Rows
    rank: np.ndarray
    budget_pairs: dict[str, int]

    @classmethod
    def of(cls, rows: Rows, served: Served, test: Window) -> Horizon:
        """The rows of ``rows`` (the span's) inside ``test`` with what ``served`` gave them."""
        sel = rows.within(test.start, test.end)
        return cls(rows.take(sel), served.rank[sel], {b: int(v[sel][0]) for b, v in served.budget_pairs.items()})

    @property
    def requests(self) -> np.ndarray:
        """The horizon's distinct request ids, sorted."""
        return np.unique(self.rows.request_id)

    @property
    def pairs(self) -> int:
        """Distinct (user, ad) pairs the horizon asked for."""
        return len(np.unique(pair_keys(self.rows.user_id, self.rows.ad_id)[0]))


@dataclass(frozen=True)
class BudgetCost:
    """Coverage and precompute cost of one budget over the horizon.

    Attributes:
        budget: the budget, as given (``2x``, ``50000``).
        budget_pairs: pairs it keeps in the test window's plan (the FM computes each once).
        hit_rate: share of the horizon's rows whose pair it keeps.
        fm_pairs_per_hit: ``budget_pairs`` per hit row (4 places); None without hits.
        wasted_pairs: kept pairs that no row of the horizon asked for.
        wasted_share: ``wasted_pairs / budget_pairs``.
        batch_device_s_per_1k_requests: device-seconds to precompute the pairs at the measured batch
            throughput, per 1000 requests of the horizon (timing: varies run to run).
        hits: the horizon's rows it served; rows: the horizon's scored rows; requests: its requests;
        device_s: the precompute device-seconds (what pooling several horizons sums).
    """

    budget: str
    budget_pairs: int
    hit_rate: float
    fm_pairs_per_hit: float | None
    wasted_pairs: int
    wasted_share: float
    batch_device_s_per_1k_requests: float
    hits: int
    rows: int
    requests: int
    device_s: float

    @classmethod
    def of(cls, budget: str, pairs: int, hits: int, wasted: int, rows: int, requests: int,
           device_s: float) -> BudgetCost:
        """The entry from its counts (ratios rounded as reported)."""
        return cls(budget, pairs, round(hits / max(rows, 1), 6), round(pairs / hits, 4) if hits else None, wasted,
                   round(wasted / max(pairs, 1), 6), round(device_s / max(requests, 1) * 1000, 6), hits, rows,
                   requests, device_s)


def pool_costs(runs: list[list[BudgetCost]]) -> list[BudgetCost]:
    """Several horizons' sweeps (same budgets, same order) as one: counts summed, then ratios."""
    return [BudgetCost.of(b[0].budget, *(sum(getattr(c, f) for c in b)
                                         for f in ("budget_pairs", "hits", "wasted_pairs", "rows", "requests",
                                                   "device_s")))
            for b in zip(*runs, strict=True)]


def auc_gain_per_million_pairs(auc: float | None, base: float | None, pairs: int) -> float | None:
    """AUC points gained over ``base`` per million FM pairs computed (None when undefined)."""
    if auc is None or base is None or pairs <= 0:
        return None
    return round((auc - base) / (pairs / 1e6), 6)


def knee(pairs: list[int], aucs: list[float | None], base: float | None) -> int | None:
    """Index of the first budget whose marginal AUC gain per FM pair (over the previous budget, the
    first over ``base`` at 0 pairs) is at most half the first budget's; None if it never halves or
    the first budget gains nothing. ``pairs`` ascending, ``aucs`` their AUCs."""
    if base is None or not pairs or any(a is None for a in aucs):
        return None
    marginal = [(a - a0) / max(p - p0, 1) for a, a0, p, p0 in zip(aucs, [base, *aucs], pairs, [0, *pairs], strict=False)]
    if marginal[0] <= 0:
        return None
    return next((i for i, m in enumerate(marginal) if i and m <= marginal[0] / 2), None)


def budget_costs(rank: np.ndarray, budget_pairs: dict[str, int], n_requests: int,
                 batch_pairs_per_s: float) -> list[BudgetCost]:
    """One ``BudgetCost`` per budget (in ``budget_pairs``' order) for rows of plan ranks ``rank``
    (-1: unplanned) from ``n_requests`` requests; a budget of N pairs keeps the ranks below N."""
    distinct_ranks = np.unique(rank[rank >= 0])
    out = []
    for b, n in budget_pairs.items():
        hits = int(((rank >= 0) & (rank < n)).sum())
        used = int((distinct_ranks < n).sum())  # planned pairs that some request asked for
        out.append(BudgetCost.of(b, n, hits, n - used, len(rank), n_requests, n / batch_pairs_per_s))
    return out


def online_fm_seconds(lm: LoadedModel, ev: Events, ads: AdFeatures, rows: Rows, requests: np.ndarray,
                      lookback: timedelta) -> np.ndarray:
    """Wall seconds to run the FM for each request alone (encode the user once, score all of its
    candidates): what running the FM in the online path would cost per request."""
    import torch

    from solaris_batch.model.train import example_tokens

    dev = next(lm.model.parameters()).device
    order = np.argsort(rows.request_id, kind="stable")
    rid = rows.request_id[order]
    out = []
    with torch.inference_mode():
        for j, r in enumerate(np.concatenate([requests[:5], requests])):  # 5 warm-up requests, not kept
            lo, hi = np.searchsorted(rid, r), np.searchsorted(rid, r, side="right")
            idx = order[lo:hi]
            x = example_tokens(ev, ads, rows.user_id[idx], rows.ts_us[idx], rows.ad_id[idx], lm.config, lookback)
            t = {k: torch.as_tensor(v).to(dev) for k, v in x.items()}
            t0 = time.perf_counter()
            memory, pad = lm.model.encode_users(t["seq_ad"][:1], t["seq_cat"][:1], t["seq_event"][:1])
            lm.model.score(memory, pad, torch.zeros(len(idx), dtype=torch.int64, device=dev), t["cand_ad"], t["cand_cat"])
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            if j >= 5:
                out.append(time.perf_counter() - t0)
    return np.asarray(out)


@dataclass(frozen=True)
class Cost:
    """The report's ``cost`` block: precompute at the headline budget vs the FM online.

    Timing fields (vary run to run): ``batch_pairs_per_s``, ``online_*``, ``batch_device_s_per_1k_requests``
    and ``online_over_batch``.

    Attributes:
        device: the torch device both ran on.
        batch_pairs_per_s: the inference runner's median FM pairs per second.
        horizon_requests: requests in the horizon.
        horizon_rows: scored rows in the horizon.
        horizon_pairs: distinct (user, ad) pairs in the horizon.
        online_fm_ms_per_request_p50: median milliseconds to run the FM for one request alone.
        online_fm_ms_per_request_p99: its 99th percentile.
        online_device_s_per_1k_requests: mean device-seconds of the online FM per 1000 requests.
        batch_device_s_per_1k_requests: the headline budget's precompute device-seconds per 1000 requests.
        online_over_batch: how many times the precompute cost the online FM costs.
    """

    device: str
    batch_pairs_per_s: float
    horizon_requests: int
    horizon_rows: int
    horizon_pairs: int
    online_fm_ms_per_request_p50: float | None
    online_fm_ms_per_request_p99: float | None
    online_device_s_per_1k_requests: float | None
    batch_device_s_per_1k_requests: float
    online_over_batch: float | None

    @classmethod
    def of(cls, served: Served, horizon: Horizon, online: np.ndarray, head: BudgetCost) -> Cost:
        """The cost block from the serving run, the horizon, the online timings (seconds per request)
        and the headline budget's ``BudgetCost``."""
        online_s_1k = float(online.mean() * 1000) if len(online) else None
        batch = head.batch_device_s_per_1k_requests
        return cls(served.device, round(served.batch_pairs_per_s, 1), len(horizon.requests), len(horizon.rank),
                   horizon.pairs, rounded(np.percentile(online, 50) * 1e3 if len(online) else None),
                   rounded(np.percentile(online, 99) * 1e3 if len(online) else None), rounded(online_s_1k), batch,
                   rounded(online_s_1k / batch if online_s_1k and batch else None))
