"""Serve the split's windows the way production does, and build the features the VMs read.

Each serving window ``[a, b)`` is served as in production: the speculator plans pairs at ``a`` from
logs before ``a``, the FM runs on the plan, the embeddings are published as a snapshot, and every
row of the window is looked up in that snapshot through ``EmbeddingStore`` (hit: its embedding;
miss: nothing). Smaller budgets are prefixes of the largest budget's plan in the plan's own order
(score, then ids): what the speculate job keeps at that budget, so one speculation per window
serves the whole sweep.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np

from solaris_batch.config import Settings
from solaris_batch.errors import ConfigError, InputNotFound
from solaris_batch.evaluation import log
from solaris_batch.evaluation.options import EvalOptions
from solaris_batch.evaluation.split import EvalSplit, Rows, SpanData
from solaris_batch.evaluation.vm import FMInput, VMConfig, vm_features
from solaris_batch.model.checkpoint import LoadedModel
from solaris_batch.serving.store import find_users, user_means
from solaris_batch.speculate.budget import Budget
from solaris_batch.speculate.metrics import pair_keys
from solaris_batch.speculate.plan import PLAN_ORDER
from solaris_batch.timeutil import Window, parse_time, stamp, to_us


@dataclass(frozen=True)
class FMSource:
    """Where a VM's FM input comes from.

    Attributes:
        budget: the budget whose snapshot feeds it; None for the fresh FM on every row (the ceiling).
        miss: what a snapshot miss reads: ``default`` (the VM's learned default vector) or
            ``user_mean`` (the store's fallback: the mean of the user's embeddings in the snapshot,
            the learned default for users it does not hold).
    """

    budget: str | None
    miss: str = "default"


FRESH = FMSource(None)
"""The fresh FM's embedding and logit for every row (the ceiling), as opposed to a budget's snapshot."""


def load_fm(settings: Settings, logs: Path, split: EvalSplit, model: Path | None, out: Path,
            opts: EvalOptions) -> tuple[Path, LoadedModel]:
    """The FM checkpoint to evaluate and the loaded model: ``model``, or one trained into ``out/fm``
    on the ``opts.fm_window`` before ``split.first``.

    Raises:
        ConfigError: the FM was trained until after T (it has seen the test horizon's clicks).
    """
    from solaris_batch.model.checkpoint import load_checkpoint
    from solaris_batch.model.train import train_fm

    first, at = split.first, split.at
    if model is None:
        model = out / "fm"
        log(f"train the FM on the {opts.fm_window} before {first:%Y-%m-%dT%H:%MZ} -> {model}")
        train_fm(logs, first, model, window=opts.fm_window, lookback=opts.lookback, epochs=opts.fm_epochs,
                 model_class=settings.fm_class, progress=False)
    lm = load_checkpoint(model)
    until = lm.meta.get("trained_until")
    if until and parse_time(until) > at:
        raise ConfigError(f"FM {model} was trained until {until}, after the test start {at.isoformat()}: it has seen"
                          " the test horizon's clicks; pass a model trained before --at, or omit --model")
    if until and parse_time(until) > first:
        warnings.warn(f"FM {model} was trained until {until}, inside the VM training windows (from"
                      f" {first.isoformat()}): the FM-fed VMs may over-trust its features", stacklevel=2)
    return model, lm


def resolve_speculator(settings: Settings, logs: Path, split: EvalSplit, out: Path, opts: EvalOptions) -> Path | str:
    """The speculator that plans every window: a version folder, or ``"heuristic"``.

    ``opts.speculator`` ``train`` trains one into ``out/speculator`` on windows before ``split.first``;
    ``latest`` takes the registry's newest (the heuristic when it is empty).
    """
    from solaris_batch.jobs import TrainSpeculatorJob, launch
    from solaris_batch.speculate import registry

    if opts.speculator == "train":
        reg = out / "speculator"
        log(f"train the speculator on windows before {split.first:%Y-%m-%dT%H:%MZ} -> {reg}")
        m = launch(settings.with_overrides(speculator=reg), TrainSpeculatorJob(
            logs=logs, at=split.first.isoformat(), lookback=opts.lookback, horizon=opts.horizon))
        return reg / m.version
    if opts.speculator == "latest":
        v = registry.latest(settings.speculator_path)
        return v if v is not None else "heuristic"
    if opts.speculator == "heuristic":
        return "heuristic"
    if not Path(opts.speculator).is_dir():
        raise InputNotFound(f"speculator {opts.speculator!r} is neither train, latest, heuristic nor a folder")
    return Path(opts.speculator)


def plan_ranks(plan: Path, users: np.ndarray, ads: np.ndarray) -> np.ndarray:
    """``pair_ranks`` of the query pairs in the plan at ``plan``."""
    from solaris_batch.speculate.plan import read_pairs

    p = read_pairs(plan)
    return pair_ranks(*(p.column(c).to_numpy() for c in ("user_id", "ad_id", "score")), users, ads)


def pair_ranks(pu: np.ndarray, pa_: np.ndarray, score: np.ndarray, users: np.ndarray, ads: np.ndarray) -> np.ndarray:
    """Rank of each query (user, ad) in the plan's order (score desc, then user, then ad); -1 if
    unplanned. A budget of N pairs keeps exactly the pairs of rank < N."""
    rank = np.empty(len(pu), dtype=np.int64)
    rank[PLAN_ORDER.argsort(score=score, user_id=pu, ad_id=pa_)] = np.arange(len(pu))
    pos = find_pairs(pu, pa_, users, ads)
    return np.where(pos >= 0, rank[pos.clip(0)] if len(pu) else -1, -1)


def find_pairs(pu: np.ndarray, pa_: np.ndarray, users: np.ndarray, ads: np.ndarray) -> np.ndarray:
    """Index of each query (user, ad) among the distinct pairs ``(pu, pa_)``; -1 where absent."""
    pk, qk = pair_keys(pu, pa_, (users, ads))
    o = np.argsort(pk)
    pos = np.searchsorted(pk[o], qk).clip(0, max(len(pk) - 1, 0))
    found = (pk[o][pos] == qk) if len(pk) else np.zeros(len(qk), bool)
    return np.where(found, o[pos] if len(pk) else -1, -1)


@dataclass(frozen=True)
class ServedWindow:
    """One serving window's snapshot (an entry of the report's ``windows``).

    Attributes:
        at: the window's start, UTC ISO.
        snapshot_id: the snapshot published for it.
        plan_pairs: pairs planned at the largest budget.
        speculator: the speculator that planned them.
        budget_pairs: pairs each budget of the sweep keeps.
        seconds: wall seconds to speculate, infer, publish and look up (timing: varies run to run).
    """

    at: str
    snapshot_id: str
    plan_pairs: int
    speculator: str
    budget_pairs: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class Served:
    """What the snapshots served, per row of the span.

    Attributes:
        rank: (rows,) int64, each row's rank in its window's plan; -1 if unplanned.
        at_us: (rows,) int64, the start (UTC microseconds) of the window whose snapshot served the row.
        emb: (impressions, dim) float32, each impression's snapshot embedding; zeros on a miss.
        logit: (impressions,) float32, the FM's logit the snapshot stores for the pair; 0 on a miss.
        user_mean: (impressions, dim) float32, the ``user_mean`` fallback of the headline budget's
            snapshot: the mean embedding of the user's pairs it keeps; zeros for a user it lacks.
        user_known: (impressions,) bool, whether that snapshot holds any pair of the user.
        budget_pairs: budget -> (rows,) int64, the pairs that budget keeps in the row's window's plan.
        windows: one record per serving window.
        batch_pairs_per_s: median FM pairs per second over the windows' inference runs.
        device: the torch device the FM ran on.
    """

    rank: np.ndarray
    at_us: np.ndarray
    emb: np.ndarray
    logit: np.ndarray
    user_mean: np.ndarray
    user_known: np.ndarray
    budget_pairs: dict[str, np.ndarray]
    windows: tuple[ServedWindow, ...]
    batch_pairs_per_s: float
    device: str


def serve_windows(settings: Settings, logs: Path, rows: Rows, windows: list[Window], fm: Path, spec: Path | str,
                  budgets: list[str], out: Path, opts: EvalOptions) -> Served:
    """For each window: speculate at its start (at the largest of ``budgets``, sorted ascending),
    infer, publish under ``out/snapshots``, and look its rows up in the snapshot. The logits and the
    headline budget's (``opts.budget``) user means come from the embedding shards published."""
    from solaris_batch.inference.runner import infer_plan, resolve_device
    from solaris_batch.jobs import SpeculateJob, launch
    from solaris_batch.serving import EmbeddingStore
    from solaris_batch.snapshots.publish import publish

    device = str(resolve_device(opts.device))
    root = str(out / "snapshots")
    imp = rows.impressed
    imp_pos = np.full(len(rows), -1, dtype=np.int64)
    imp_pos[imp] = np.arange(int(imp.sum()))
    rank, at_us = np.full(len(rows), -1, np.int64), np.zeros(len(rows), np.int64)
    n_imp = int(imp.sum())
    logit, known = np.zeros(n_imp, np.float32), np.zeros(n_imp, bool)
    emb = mean = None  # allocated once the first snapshot gives the dim
    budget_pairs = {b: np.zeros(len(rows), np.int64) for b in budgets}
    records = []
    rates = []  # FM pairs/s of each window's shard (median reported: one window is a short sample)
    for i, w in enumerate(windows):
        a = w.start
        t0 = time.perf_counter()
        plan, emb_dir = out / "work" / "plans" / stamp(a), out / "work" / "embeddings" / stamp(a)
        info = launch(settings, SpeculateJob(logs=logs, at=a.isoformat(), out=plan, lookback=opts.lookback,
                                             horizon=opts.horizon, budget=budgets[-1], shards=1, speculator=spec))
        (res,) = infer_plan(plan, fm, emb_dir, device=opts.device, progress=False)
        pub = publish(emb_dir, root, settings.model_name, extra=info.provenance())
        store = EmbeddingStore.open(root, settings.model_name, snapshot_id=pub.snapshot_id, fallback="none",
                                    dtype="float32")
        sel = np.flatnonzero(rows.within(w.start, w.end))
        rank[sel], at_us[sel] = plan_ranks(plan, rows.user_id[sel], rows.ad_id[sel]), to_us(w.start)
        isel = sel[imp[sel]]
        iu, ia, ipos = rows.user_id[isel], rows.ad_id[isel], imp_pos[isel]
        look = store.lookup(iu, ia)
        if not np.array_equal(look.hit, rank[isel] >= 0):
            raise RuntimeError(f"snapshot {pub.snapshot_id} and plan {plan} disagree on which pairs exist")
        if emb is None:
            emb, mean = np.zeros((n_imp, store.dim), np.float32), np.zeros((n_imp, store.dim), np.float32)
        emb[ipos] = np.nan_to_num(look.embeddings)
        sizes = {b: min(Budget.parse(b).resolve(info.recent_pairs), info.pairs) for b in budgets}
        su, sa, semb, slogit = read_snapshot_rows(emb_dir, store.dim)
        pos = find_pairs(su, sa, iu, ia)
        logit[ipos] = np.where(pos >= 0, slogit[pos.clip(0)] if len(su) else 0, 0)
        keep = plan_ranks(plan, su, sa) < sizes[opts.budget]  # the headline budget's snapshot
        ids, means = user_means(su[keep], semb[keep])
        k, upos = find_users(ids, iu)
        known[ipos], mean[ipos[k]] = k, means[upos[k]]
        for b, n in sizes.items():
            budget_pairs[b][sel] = n
        rates.append(res.pairs / max(res.seconds, 1e-9))
        records.append(ServedWindow(a.isoformat(), pub.snapshot_id, info.pairs, info.speculator, sizes,
                                    round(time.perf_counter() - t0, 1)))
        log(f"window {i + 1}/{len(windows)} {a:%Y-%m-%dT%H:%MZ}: {info.pairs:,} pairs planned by {info.speculator},"
            f" snapshot {pub.snapshot_id}, {np.mean(rank[sel] >= 0):.1%} of its rows hit"
            f" ({time.perf_counter() - t0:.0f}s)")
    return Served(rank, at_us, emb, logit, mean, known, budget_pairs, tuple(records), float(np.median(rates)),
                  device)


def read_snapshot_rows(emb_dir: Path, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(user_id, ad_id, embedding (n, dim) float32, logit)`` of every embedding shard in ``emb_dir``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from solaris_batch.snapshots.shards import decode_embeddings, list_shards

    t = pa.concat_tables([pq.read_table(f) for f in list_shards(emb_dir)])
    return (t.column("user_id").to_numpy(), t.column("ad_id").to_numpy(),
            decode_embeddings(t.column("embedding"), dim).astype(np.float32), t.column("logit").to_numpy())


@dataclass(frozen=True)
class VMInputs:
    """What the VM variants read, per impression of the span (time-ordered).

    Attributes:
        x: ``vm_features`` of the impressions (int64 arrays).
        clicked: (n,) bool labels.
        snapshot_emb: (n, dim) float32 snapshot embeddings as served; zeros on a miss.
        snapshot_logit: (n,) float32 the FM logits the snapshot stores for the pairs; 0 on a miss.
        age_h: (n,) float32 hours from the serving snapshot's T to the impression (its age at lookup).
        hit: budget -> (n,) bool, whether that budget's snapshot held the impression's pair.
        fresh_emb: (n, dim) float32 fresh FM embeddings (history up to the request), rounded through
            float16 as snapshots store them.
        fresh_logit: (n,) float32 the fresh FM's click logits.
        user_mean: (n, dim) float32 the headline budget's ``user_mean`` fallback; zeros where unknown.
        user_known: (n,) bool, whether the headline budget's snapshot holds a pair of the user.
    """

    x: dict[str, np.ndarray]
    clicked: np.ndarray
    snapshot_emb: np.ndarray
    snapshot_logit: np.ndarray
    age_h: np.ndarray
    hit: dict[str, np.ndarray]
    fresh_emb: np.ndarray
    fresh_logit: np.ndarray
    user_mean: np.ndarray
    user_known: np.ndarray

    def features(self, sel: np.ndarray) -> dict[str, np.ndarray]:
        """The ID features of the rows ``sel``."""
        return {k: v[sel] for k, v in self.x.items()}

    def fm_input(self, source: FMSource | None, sel: np.ndarray) -> FMInput | None:
        """What a VM fed by ``source`` reads for the rows ``sel`` (a boolean mask); None: no FM input.

        ``FRESH``: the fresh embedding on every row, side columns (fresh logit, age 0). A budget: the
        snapshot's embedding on a hit, side columns (its logit, its age), both 0 on a miss; with
        ``miss="user_mean"`` a miss of a user the snapshot holds reads the user's mean embedding
        instead of the learned default, and a third side column flags it.
        """
        if source is None:
            return None
        if source == FRESH:
            n = int(sel.sum())
            return FMInput(self.fresh_emb[sel], np.ones(n, bool),
                           np.column_stack([self.fresh_logit[sel], np.zeros(n, np.float32)]))
        hit = self.hit[source.budget][sel]
        side = [np.where(hit, self.snapshot_logit[sel], 0), np.where(hit, self.age_h[sel], 0)]
        if source.miss == "default":
            return FMInput(self.snapshot_emb[sel], hit, np.column_stack(side).astype(np.float32))
        filled = ~hit & self.user_known[sel]
        emb = np.where(filled[:, None], self.user_mean[sel], self.snapshot_emb[sel])
        return FMInput(emb, hit | filled, np.column_stack([*side, filled]).astype(np.float32))


def surface_codes(surface: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Small integer codes of ``surface``: 1 + its index among the surfaces seen on the ``train``
    rows (sorted), 0 for a surface training never saw."""
    vocab = np.unique(surface[train])
    spos = np.searchsorted(vocab, surface).clip(0, max(len(vocab) - 1, 0))
    return np.where(vocab[spos] == surface, spos + 1, 0) if len(vocab) else np.zeros(len(surface), np.int64)


def vm_inputs(data: SpanData, served: Served, lm: LoadedModel, train: np.ndarray, budgets: list[str],
              lookback: timedelta) -> VMInputs:
    """The VMs' inputs for the span's impressions: ID features (surfaces coded on the ``train``
    impressions), the snapshots' embeddings and hits per budget, and the fresh FM (``lm``, on its
    device) over each impression with ``lookback`` of history up to its request."""
    from solaris_batch.model.train import example_tokens, predict

    rows, imp = data.rows, data.rows.impressed
    ir = rows.take(imp)
    log(f"fresh FM over {len(ir):,} impressions (history up to each request)")
    X = example_tokens(data.events, data.ads, ir.user_id, ir.ts_us, ir.ad_id, lm.config, lookback)
    fresh_emb, fresh_logit = (t.numpy() for t in predict(lm.model, X))
    fresh_emb = fresh_emb.astype(np.float16).astype(np.float32)  # the precision snapshots store
    x = vm_features(ir.user_id, ir.ad_id, data.ads.category(ir.ad_id), surface_codes(ir.surface, train), ir.ts_us,
                    VMConfig())
    irank = served.rank[imp]
    hit = {b: (irank >= 0) & (irank < served.budget_pairs[b][imp]) for b in budgets}
    age_h = ((ir.ts_us - served.at_us[imp]) / 3_600_000_000).astype(np.float32)
    return VMInputs(x, ir.clicked, served.emb, served.logit, age_h, hit, fresh_emb, fresh_logit, served.user_mean,
                    served.user_known)
