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
from solaris_batch.evaluation.vm import VMConfig, vm_features
from solaris_batch.model.checkpoint import LoadedModel
from solaris_batch.speculate.budget import Budget
from solaris_batch.speculate.metrics import pair_keys
from solaris_batch.speculate.plan import PLAN_ORDER
from solaris_batch.timeutil import Window, parse_time, stamp

FRESH = "fresh"
"""FM source of a VM fed the fresh FM embedding of every row (the ceiling), as opposed to a budget's snapshot."""


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
    pk, qk = pair_keys(pu, pa_, (users, ads))
    o = np.argsort(pk)
    pos = np.searchsorted(pk[o], qk).clip(0, max(len(pk) - 1, 0))
    found = (pk[o][pos] == qk) if len(pk) else np.zeros(len(qk), bool)
    return np.where(found, rank[o][pos] if len(pk) else -1, -1)


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
        emb: (impressions, dim) float32, each impression's snapshot embedding; zeros on a miss.
        budget_pairs: budget -> (rows,) int64, the pairs that budget keeps in the row's window's plan.
        windows: one record per serving window.
        batch_pairs_per_s: median FM pairs per second over the windows' inference runs.
        device: the torch device the FM ran on.
    """

    rank: np.ndarray
    emb: np.ndarray
    budget_pairs: dict[str, np.ndarray]
    windows: tuple[ServedWindow, ...]
    batch_pairs_per_s: float
    device: str


def serve_windows(settings: Settings, logs: Path, rows: Rows, windows: list[Window], fm: Path, spec: Path | str,
                  budgets: list[str], out: Path, opts: EvalOptions) -> Served:
    """For each window: speculate at its start (at the largest of ``budgets``, sorted ascending),
    infer, publish under ``out/snapshots``, and look its rows up in the snapshot."""
    from solaris_batch.inference.runner import infer_plan, resolve_device
    from solaris_batch.jobs import SpeculateJob, launch
    from solaris_batch.serving import EmbeddingStore
    from solaris_batch.snapshots.publish import publish

    device = str(resolve_device(opts.device))
    root = str(out / "snapshots")
    imp = rows.impressed
    imp_pos = np.full(len(rows), -1, dtype=np.int64)
    imp_pos[imp] = np.arange(int(imp.sum()))
    rank = np.full(len(rows), -1, np.int64)
    emb = None  # allocated once the first snapshot gives the dim
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
        rank[sel] = plan_ranks(plan, rows.user_id[sel], rows.ad_id[sel])
        isel = sel[imp[sel]]
        look = store.lookup(rows.user_id[isel], rows.ad_id[isel])
        if not np.array_equal(look.hit, rank[isel] >= 0):
            raise RuntimeError(f"snapshot {pub.snapshot_id} and plan {plan} disagree on which pairs exist")
        if emb is None:
            emb = np.zeros((int(imp.sum()), store.dim), np.float32)
        emb[imp_pos[isel]] = np.nan_to_num(look.embeddings)
        sizes = {b: min(Budget.parse(b).resolve(info.recent_pairs), info.pairs) for b in budgets}
        for b, n in sizes.items():
            budget_pairs[b][sel] = n
        rates.append(res.pairs / max(res.seconds, 1e-9))
        records.append(ServedWindow(a.isoformat(), pub.snapshot_id, info.pairs, info.speculator, sizes,
                                    round(time.perf_counter() - t0, 1)))
        log(f"window {i + 1}/{len(windows)} {a:%Y-%m-%dT%H:%MZ}: {info.pairs:,} pairs planned by {info.speculator},"
            f" snapshot {pub.snapshot_id}, {np.mean(rank[sel] >= 0):.1%} of its rows hit"
            f" ({time.perf_counter() - t0:.0f}s)")
    return Served(rank, emb, budget_pairs, tuple(records), float(np.median(rates)), device)


@dataclass(frozen=True)
class VMInputs:
    """What the VM variants read, per impression of the span (time-ordered).

    Attributes:
        x: ``vm_features`` of the impressions (int64 arrays).
        clicked: (n,) bool labels.
        snapshot_emb: (n, dim) float32 snapshot embeddings as served; zeros on a miss.
        hit: budget -> (n,) bool, whether that budget's snapshot held the impression's pair.
        fresh_emb: (n, dim) float32 fresh FM embeddings (history up to the request), rounded through
            float16 as snapshots store them.
        fresh_logit: (n,) float32 the fresh FM's click logits.
    """

    x: dict[str, np.ndarray]
    clicked: np.ndarray
    snapshot_emb: np.ndarray
    hit: dict[str, np.ndarray]
    fresh_emb: np.ndarray
    fresh_logit: np.ndarray

    def features(self, sel: np.ndarray) -> dict[str, np.ndarray]:
        """The ID features of the rows ``sel``."""
        return {k: v[sel] for k, v in self.x.items()}

    def fm_input(self, source: str | None, sel: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(FM embedding, hit) of the rows ``sel`` (a boolean mask) for a VM fed by ``source``: None
        (no FM input), ``FRESH`` (the fresh FM, every row a hit) or a budget (its snapshot as served)."""
        if source is None:
            return None, None
        if source == FRESH:
            return self.fresh_emb[sel], np.ones(int(sel.sum()), bool)
        return self.snapshot_emb[sel], self.hit[source][sel]


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
    return VMInputs(x, ir.clicked, served.emb, hit, fresh_emb, fresh_logit)
