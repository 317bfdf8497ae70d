"""``solaris evaluate``: what the precomputed embeddings are worth to the online ranker, and at what cost.

The split is strictly by time around the evaluation point T (``k = train_windows``, ``h = horizon``):

    [.. FM training ..)[ VM training: k serving windows )[ test: h )[ staleness windows .. )
                       T - k*h                          T         T+h

* The FM is trained on data before ``T - k*h`` (unless ``--model`` is given), so it has never seen a
  label of the rows its features are used on.
* Each serving window ``[a, a+h)`` (the k training windows and the test window) is served the way
  production serves it: the speculator plans pairs at ``a`` from logs before ``a``, the FM runs on
  the plan, the embeddings are published as a snapshot, and every impression of the window is looked
  up in that snapshot through ``EmbeddingStore`` (hit: its embedding; miss: nothing).
* The VM variants are trained on the training windows' impressions and scored on the test window's.
* Smaller budgets are prefixes of the largest budget's plan in the plan's own order (score, then
  ids): what the speculate job keeps at that budget, so one speculation per window serves the sweep.
* Staleness: the test snapshot keeps serving ``staleness_windows`` windows past T without refresh,
  and the VM fed by it is compared with the VM fed by a fresh FM at each delay.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from solaris_batch.config import Settings
from solaris_batch.errors import ConfigError, InputNotFound
from solaris_batch.evaluation.metrics import (
    auc,
    normalized_entropy,
    paired_auc_diff_ci,
    recovered_gain,
)
from solaris_batch.evaluation.vm import VMConfig, VMTraining, predict_vm, train_vm, vm_features
from solaris_batch.logs.layout import hour_complete
from solaris_batch.logs.reader import read_ads, read_window
from solaris_batch.model.features import AdFeatures, Events
from solaris_batch.speculate.budget import Budget
from solaris_batch.speculate.metrics import pair_keys
from solaris_batch.speculate.plan import PLAN_ORDER
from solaris_batch.timeutil import Window, format_duration, parse_duration, parse_time, stamp, to_us

ROW_COLUMNS = ["request_id", "ts", "user_id", "ad_id", "impressed", "clicked", "surface"]


@dataclass(frozen=True)
class EvalOptions:
    """Knobs of ``solaris evaluate`` (CLI flags of the same names)."""

    horizon: str = "1h"
    budget: str = "2x"
    """The budget whose numbers are the headline (``vm_solaris``, ``hit_rate``...)."""
    budgets: tuple[str, ...] = ("0.5x", "1x", "2x", "4x")
    """The sweep for recovered gain vs hit rate (``budget`` is added if missing)."""
    train_windows: int = 4
    """Serving windows before T whose impressions train the VMs."""
    staleness_windows: int = 4
    """Windows after T that the test snapshot serves without refresh (clipped to the logs)."""
    lookback: str = "24h"
    fm_window: str = "24h"
    fm_epochs: int = 1
    speculator: str = "train"
    """``train`` (fresh, on windows before the first serving window), ``latest``, ``heuristic`` or a folder."""
    distill_label_weight: float = 0.5
    """Distilled VM target: ``w * click + (1 - w) * sigmoid(FM logit)``."""
    device: str = "auto"
    online_requests: int = 200
    """Test requests timed through the FM one at a time (the online-FM cost)."""
    vm_training: VMTraining = field(default_factory=VMTraining)


def _log(msg: str) -> None:
    print(f"evaluate: {msg}", file=sys.stderr, flush=True)


@dataclass
class Rows:
    """Every logged (request, ad) row of the evaluated span, time-ordered, as numpy arrays."""

    request_id: np.ndarray
    ts_us: np.ndarray
    user_id: np.ndarray
    ad_id: np.ndarray
    impressed: np.ndarray
    clicked: np.ndarray
    surface: np.ndarray

    @classmethod
    def from_table(cls, t) -> Rows:
        col = {c: t.column(c) for c in ROW_COLUMNS}
        r = cls(col["request_id"].to_numpy(), col["ts"].cast("int64").to_numpy(), col["user_id"].to_numpy(),
                col["ad_id"].to_numpy(), col["impressed"].to_numpy(zero_copy_only=False).astype(bool),
                col["clicked"].to_numpy(zero_copy_only=False).astype(bool),
                np.asarray(col["surface"].fill_null("").to_numpy(zero_copy_only=False), dtype=object))
        return r.take(np.argsort(r.ts_us, kind="stable"))

    def take(self, sel) -> Rows:
        return Rows(*(getattr(self, f)[sel] for f in self.__dataclass_fields__))

    def within(self, start: datetime, end: datetime) -> np.ndarray:
        return (self.ts_us >= to_us(start)) & (self.ts_us < to_us(end))

    def __len__(self) -> int:
        return len(self.ts_us)


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


def available_windows(logs: Path, at: datetime, horizon: timedelta, wanted: int) -> int:
    """How many consecutive horizon windows from ``at`` have every hour's ``_SUCCESS`` (<= wanted)."""
    n = 0
    while n < wanted and all(hour_complete(logs, h) for h in Window.after(at + n * horizon, horizon).hours()):
        n += 1
    return n


def _fm(settings: Settings, logs: Path, first_serving: datetime, at: datetime, model: Path | None,
        out: Path, opts: EvalOptions):
    """The FM checkpoint to evaluate (path, loaded model): ``model``, or one trained on data before
    ``first_serving``."""
    import warnings

    from solaris_batch.model.checkpoint import load_checkpoint
    from solaris_batch.model.train import train_fm

    if model is None:
        model = out / "fm"
        _log(f"train the FM on the {opts.fm_window} before {first_serving:%Y-%m-%dT%H:%MZ} -> {model}")
        train_fm(logs, first_serving, model, window=opts.fm_window, lookback=opts.lookback, epochs=opts.fm_epochs,
                 model_class=settings.fm_class, progress=False)
    lm = load_checkpoint(model)
    until = lm.meta.get("trained_until")
    if until and parse_time(until) > at:
        raise ConfigError(f"FM {model} was trained until {until}, after the test start {at.isoformat()}: it has seen"
                          " the test horizon's clicks; pass a model trained before --at, or omit --model")
    if until and parse_time(until) > first_serving:
        warnings.warn(f"FM {model} was trained until {until}, inside the VM training windows (from"
                      f" {first_serving.isoformat()}): the FM-fed VMs may over-trust its features", stacklevel=2)
    return model, lm


def _speculator(settings: Settings, logs: Path, first_serving: datetime, out: Path, opts: EvalOptions) -> Path | str:
    from solaris_batch.pipeline import train_speculator
    from solaris_batch.speculate import registry

    if opts.speculator == "train":
        reg = out / "speculator"
        _log(f"train the speculator on windows before {first_serving:%Y-%m-%dT%H:%MZ} -> {reg}")
        m = train_speculator(settings.with_overrides(speculator=reg), logs, first_serving.isoformat(),
                             opts.lookback, opts.horizon)
        return reg / m["version"]
    if opts.speculator == "latest":
        v = registry.latest(settings.speculator_path)
        return v if v is not None else "heuristic"
    if opts.speculator == "heuristic":
        return "heuristic"
    if not Path(opts.speculator).is_dir():
        raise InputNotFound(f"speculator {opts.speculator!r} is neither train, latest, heuristic nor a folder")
    return Path(opts.speculator)


@dataclass
class Served:
    """What the snapshots served, per row of the span (rank for every row; embeddings for impressions)."""

    rank: np.ndarray
    emb: np.ndarray | None  # (impressions, dim), allocated once the first snapshot gives the dim
    budget_pairs: dict[str, np.ndarray]  # budget -> pairs allowed, per row (its window's plan)
    windows: list[dict] = field(default_factory=list)
    batch_pairs_per_s: float = 0.0
    device: str = "cpu"


def serve_windows(settings: Settings, logs: Path, rows: Rows, imp: np.ndarray, ats: list[datetime], ends: list[datetime],
                  fm: Path, spec, budgets: list[str], out: Path, opts: EvalOptions) -> Served:
    """For each window: speculate at its start (at the largest of ``budgets``, sorted ascending),
    infer, publish, and look its rows up in the snapshot."""
    from solaris_batch.inference.runner import infer_plan, resolve_device
    from solaris_batch.pipeline import plan_extra, speculate
    from solaris_batch.serving import EmbeddingStore
    from solaris_batch.snapshots.publish import publish

    root = str(out / "snapshots")
    imp_pos = np.full(len(rows), -1, dtype=np.int64)
    imp_pos[imp] = np.arange(int(imp.sum()))
    served = Served(np.full(len(rows), -1, np.int64), None,
                    {b: np.zeros(len(rows), np.int64) for b in budgets}, device=str(resolve_device(opts.device)))
    rates = []  # FM pairs/s of each window's shard (median reported: one window is a short sample)
    for i, (a, end) in enumerate(zip(ats, ends, strict=True)):
        t0 = time.perf_counter()
        plan, emb_dir = out / "work" / "plans" / stamp(a), out / "work" / "embeddings" / stamp(a)
        info = speculate(settings, logs, a.isoformat(), plan, opts.lookback, opts.horizon, budgets[-1], shards=1,
                         model=spec if isinstance(spec, Path) else Path(spec))
        (res,) = infer_plan(plan, fm, emb_dir, device=opts.device, progress=False)
        pub = publish(emb_dir, root, settings.model_name, extra=plan_extra(info))
        store = EmbeddingStore.open(root, settings.model_name, snapshot_id=pub.snapshot_id, fallback="none",
                                    dtype="float32")
        sel = np.flatnonzero(rows.within(a, end))
        served.rank[sel] = plan_ranks(plan, rows.user_id[sel], rows.ad_id[sel])
        isel = sel[imp[sel]]
        look = store.lookup(rows.user_id[isel], rows.ad_id[isel])
        if not np.array_equal(look.hit, served.rank[isel] >= 0):
            raise RuntimeError(f"snapshot {pub.snapshot_id} and plan {plan} disagree on which pairs exist")
        if served.emb is None:
            served.emb = np.zeros((int(imp.sum()), store.dim), np.float32)
        served.emb[imp_pos[isel]] = np.nan_to_num(look.embeddings)
        sizes = {b: min(Budget.parse(b).resolve(info.recent_pairs), info.pairs) for b in budgets}
        for b, n in sizes.items():
            served.budget_pairs[b][sel] = n
        rates.append(res.pairs / max(res.seconds, 1e-9))
        served.windows.append({"at": a.isoformat(), "snapshot_id": pub.snapshot_id, "plan_pairs": info.pairs,
                               "speculator": info.speculator, "budget_pairs": sizes,
                               "seconds": round(time.perf_counter() - t0, 1)})
        _log(f"window {i + 1}/{len(ats)} {a:%Y-%m-%dT%H:%MZ}: {info.pairs:,} pairs planned by {info.speculator},"
             f" snapshot {pub.snapshot_id}, {np.mean(served.rank[sel] >= 0):.1%} of its rows hit"
             f" ({time.perf_counter() - t0:.0f}s)")
    served.batch_pairs_per_s = float(np.median(rates))
    return served


def online_fm_seconds(lm, ev: Events, ads: AdFeatures, rows: Rows, requests: np.ndarray, lookback: timedelta) -> np.ndarray:
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


def _metrics(y: np.ndarray, p: np.ndarray, base_rate: float) -> dict:
    a, ne = auc(y, p), normalized_entropy(y, p, base_rate)
    return {"auc": None if a is None else round(a, 6), "ne": None if ne is None else round(ne, 6)}


def evaluate(settings: Settings, logs: Path, at: str, out: Path, model: Path | None = None,
             opts: EvalOptions = EvalOptions()) -> dict:
    """Run speculation, inference and snapshots around ``at``, train and score the VM variants, and
    write ``out/report.json``, ``out/report.md`` and plots. Returns the report."""
    from solaris_batch.evaluation.report import write_report
    from solaris_batch.model.train import example_tokens, predict

    t_start = time.perf_counter()
    T, hz, lb = parse_time(at), parse_duration(opts.horizon), parse_duration(opts.lookback)
    if opts.train_windows < 1 or opts.staleness_windows < 1:
        raise ConfigError("--train-windows and --staleness-windows must be >= 1")
    if not 0.0 <= opts.distill_label_weight <= 1.0:
        raise ConfigError("--distill-label-weight must be in [0, 1]")
    budgets = list(dict.fromkeys([*opts.budgets, opts.budget]))
    budgets.sort(key=lambda b: Budget.parse(b).multiple or float(Budget.parse(b).pairs))
    first = T - opts.train_windows * hz
    n_after = available_windows(logs, T, hz, opts.staleness_windows)
    if n_after == 0:
        raise InputNotFound(f"the test horizon {Window.after(T, hz)} has no complete log partitions under {logs}:"
                            " evaluate needs the horizon's logs (pick an earlier --at)")
    if n_after < opts.staleness_windows:
        _log(f"logs cover {n_after} of {opts.staleness_windows} staleness windows after T: reporting those")
    span = Window(first, T + n_after * hz)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = settings.with_overrides(work=out / "work", snapshots=str(out / "snapshots"))

    fm_path, lm = _fm(settings, logs, first, T, model, out, opts)
    spec = _speculator(settings, logs, first, out, opts)

    _log(f"read {span} and {opts.lookback} of history before it")
    table = read_window(logs, Window(first - lb, span.end), columns=ROW_COLUMNS)
    rows_all = Rows.from_table(table)
    ev = Events.from_table(table.filter(pc.field("impressed")))
    del table
    rows = rows_all.take(rows_all.within(span.start, span.end))
    imp = rows.impressed
    ads = AdFeatures.from_table(read_ads(logs))

    ats = [first + k * hz for k in range(opts.train_windows)] + [T]
    ends = [a + hz for a in ats[:-1]] + [span.end]
    served = serve_windows(settings, logs, rows, imp, ats, ends, fm_path, spec, budgets, out, opts)

    # The impressions: VM rows. train = [first, T), test = [T, T+h), stale k = [T+k*h, T+(k+1)*h).
    ir = rows.take(imp)
    role_train = ir.within(first, T)
    role_test = ir.within(T, T + hz)
    lm.model.to(served.device)
    _log(f"fresh FM over {len(ir):,} impressions (history up to each request)")
    X = example_tokens(ev, ads, ir.user_id, ir.ts_us, ir.ad_id, lm.config, lb)
    fresh_emb, fresh_logit = (t.numpy() for t in predict(lm.model, X))
    fresh_emb = fresh_emb.astype(np.float16).astype(np.float32)  # the precision snapshots store
    vocab = np.unique(ir.surface[role_train])
    spos = np.searchsorted(vocab, ir.surface).clip(0, max(len(vocab) - 1, 0))
    surface = np.where(vocab[spos] == ir.surface, spos + 1, 0) if len(vocab) else np.zeros(len(ir), np.int64)
    x = vm_features(ir.user_id, ir.ad_id, ads.category(ir.ad_id), surface, ir.ts_us, VMConfig())
    y = ir.clicked
    irank = served.rank[imp]
    ihit = {b: (irank >= 0) & (irank < served.budget_pairs[b][imp]) for b in budgets}

    def part(d, sel):
        return {k: v[sel] for k, v in d.items()}

    xtr, ytr = part(x, role_train), y[role_train]
    if ytr.sum() == 0 or y[role_test].sum() == 0:
        raise InputNotFound("no clicks in the VM training windows or the test horizon: widen --train-windows or"
                            " --horizon")
    base = float(ytr.mean())
    cfg0, cfg_fm = VMConfig(), VMConfig(fm_dim=fresh_emb.shape[1])
    tr, w = opts.vm_training, opts.distill_label_weight
    _log(f"train the VM variants on {int(role_train.sum()):,} impressions ({int(ytr.sum()):,} clicks)")
    models = {
        "vm": (train_vm(cfg0, xtr, ytr, training=tr), None),
        "vm_distilled": (train_vm(cfg0, xtr, w * ytr + (1 - w) / (1 + np.exp(-fresh_logit[role_train])), training=tr),
                         None),
        "vm_fm_all": (train_vm(cfg_fm, xtr, ytr, fresh_emb[role_train], np.ones(int(role_train.sum()), bool),
                               training=tr), "fresh"),
    }
    for b in budgets:
        models[f"vm_solaris@{b}"] = (train_vm(cfg_fm, xtr, ytr, served.emb[role_train], ihit[b][role_train],
                                              training=tr), b)

    def score(name: str, sel: np.ndarray) -> np.ndarray:
        m, src = models[name]
        if src is None:
            return predict_vm(m, part(x, sel))
        if src == "fresh":
            return predict_vm(m, part(x, sel), fresh_emb[sel], np.ones(int(sel.sum()), bool))
        return predict_vm(m, part(x, sel), served.emb[sel], ihit[src][sel])

    test_scores = {name: score(name, role_test) for name in models}
    test = {name: _metrics(y[role_test], sc, base) for name, sc in test_scores.items()}
    head_name = f"vm_solaris@{opts.budget}"
    ci = {f"vm_solaris-{other}": paired_auc_diff_ci(y[role_test], test_scores[head_name], test_scores[other],
                                                     ir.request_id[role_test])
          for other in ("vm", "vm_distilled", "vm_fm_all")}
    fm_fresh = _metrics(y[role_test], 1 / (1 + np.exp(-fresh_logit[role_test])), base)

    # Coverage and cost over every scored row of the test horizon (not only impressions).
    hsel = rows.within(T, T + hz)
    hrank, hsize = served.rank[hsel], {b: served.budget_pairs[b][hsel][0] for b in budgets}
    requests = np.unique(rows.request_id[hsel])
    hk = pair_keys(rows.user_id[hsel], rows.ad_id[hsel])[0]
    horizon_pairs = len(np.unique(hk))
    distinct_ranks = np.unique(hrank[hrank >= 0])
    online = online_fm_seconds(lm, ev, ads, rows.take(hsel),
                               np.random.default_rng(0).permutation(requests)[: opts.online_requests], lb)
    online_s_1k = float(online.mean() * 1000) if len(online) else None
    sweep = []
    for b in budgets:
        n = int(hsize[b])
        hits = int(((hrank >= 0) & (hrank < n)).sum())
        used = int((distinct_ranks < n).sum())  # planned pairs that some request asked for
        batch_s = n / served.batch_pairs_per_s
        sweep.append({
            "budget": b, "budget_pairs": n,
            "hit_rate": round(hits / max(len(hrank), 1), 6),
            "impression_hit_rate": round(float(ihit[b][role_test].mean()), 6),
            "vm_solaris": test[f"vm_solaris@{b}"],
            "recovered_gain": _round(recovered_gain(test["vm"]["auc"], test[f"vm_solaris@{b}"]["auc"],
                                                    test["vm_fm_all"]["auc"])),
            "fm_pairs_per_hit": round(n / hits, 4) if hits else None,
            "wasted_pairs": n - used, "wasted_share": round((n - used) / max(n, 1), 6),
            "batch_device_s_per_1k_requests": round(batch_s / len(requests) * 1000, 6),
        })
    head = next(s for s in sweep if s["budget"] == opts.budget)

    # Staleness: the test snapshot keeps serving; compare with the fresh-FM VM at each delay.
    stale = []
    for k in range(n_after):
        a = T + k * hz
        sel = ir.within(a, a + hz)
        if not sel.any():
            continue
        yk = y[sel]
        stale.append({"window": k, "hours_after": round(k * hz.total_seconds() / 3600, 3), "start": a.isoformat(),
                      "impressions": int(sel.sum()), "clicks": int(yk.sum()),
                      "hit_rate": round(float(ihit[opts.budget][sel].mean()), 6),
                      "vm": _metrics(yk, score("vm", sel), base),
                      "vm_solaris": _metrics(yk, score(f"vm_solaris@{opts.budget}", sel), base),
                      "vm_fm_all": _metrics(yk, score("vm_fm_all", sel), base)})

    report = {
        "at": T.isoformat(), "horizon": format_duration(hz), "budget": opts.budget,
        **{v: test[v] for v in ("vm", "vm_fm_all", "vm_distilled")},
        "vm_solaris": test[f"vm_solaris@{opts.budget}"],
        "hit_rate": head["hit_rate"], "recovered_gain": head["recovered_gain"],
        "fm_pairs_per_hit": head["fm_pairs_per_hit"],
        "fm_fresh": fm_fresh,
        "auc_diff_ci95": {k: None if v is None else [round(v[0], 6), round(v[1], 6)] for k, v in ci.items()},
        "budgets": sweep,
        "staleness": stale,
        "cost": {
            "device": served.device,
            "batch_pairs_per_s": round(served.batch_pairs_per_s, 1),
            "horizon_requests": int(len(requests)), "horizon_rows": int(len(hrank)),
            "horizon_pairs": int(horizon_pairs),
            "online_fm_ms_per_request_p50": _round(np.percentile(online, 50) * 1e3 if len(online) else None),
            "online_fm_ms_per_request_p99": _round(np.percentile(online, 99) * 1e3 if len(online) else None),
            "online_device_s_per_1k_requests": _round(online_s_1k),
            "batch_device_s_per_1k_requests": head["batch_device_s_per_1k_requests"],
            "online_over_batch": _round(online_s_1k / head["batch_device_s_per_1k_requests"]
                                        if online_s_1k and head["batch_device_s_per_1k_requests"] else None),
        },
        "split": {
            "fm_trained_until": lm.meta.get("trained_until"), "fm_version": lm.version,
            "vm_train": [first.isoformat(), T.isoformat()], "test": [T.isoformat(), (T + hz).isoformat()],
            "train_impressions": int(role_train.sum()), "train_clicks": int(ytr.sum()),
            "test_impressions": int(role_test.sum()), "test_clicks": int(y[role_test].sum()),
            "base_rate": round(base, 6), "latest_train_ts": _iso(ir.ts_us[role_train].max()),
            "earliest_test_ts": _iso(ir.ts_us[role_test].min()),
        },
        "windows": served.windows,
        "options": {"train_windows": opts.train_windows, "staleness_windows": opts.staleness_windows,
                    "lookback": opts.lookback, "fm_window": opts.fm_window, "speculator": str(spec),
                    "distill_label_weight": w, "vm_epochs": tr.epochs, "seed": tr.seed},
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    write_report(report, out)
    return report


def _round(v, nd: int = 6):
    return None if v is None else round(float(v), nd)


def _iso(us) -> str:
    from datetime import UTC

    return datetime.fromtimestamp(int(us) / 1e6, UTC).isoformat()
