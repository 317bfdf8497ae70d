"""``solaris evaluate``: what the precomputed embeddings are worth to the online ranker, and at what cost.

``evaluate`` composes the package's concerns: the strict time split around T (``split``), serving
each window as production does and the features the VMs read (``serve``), the VM variants and their
scores (``variants``), coverage and device-seconds (``cost``), and the typed report with its
renderings (``report``).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import numpy as np

from solaris_batch.config import Settings
from solaris_batch.errors import ConfigError
from solaris_batch.evaluation import log
from solaris_batch.evaluation.cost import (
    BudgetCost,
    Cost,
    Horizon,
    budget_costs,
    online_fm_seconds,
    pool_costs,
)
from solaris_batch.evaluation.options import EvalOptions
from solaris_batch.evaluation.report import (
    BudgetResult,
    Report,
    RunOptions,
    RunReport,
    write_report,
)
from solaris_batch.evaluation.serve import load_fm, resolve_speculator, serve_windows, vm_inputs
from solaris_batch.evaluation.split import EvalSplit, Roles, SplitSummary, read_span
from solaris_batch.evaluation.variants import (
    HorizonScores,
    VariantScores,
    budget_quality,
    headline_names,
    pool,
    score_test,
    staleness,
    train_variants,
)
from solaris_batch.timeutil import format_duration, parse_duration, parse_time, stamp


def evaluate(settings: Settings, logs: Path, at: str, out: Path, model: Path | None = None,
             opts: EvalOptions | None = None) -> Report:
    """Evaluate SOLARIS at the test horizon(s) ``at`` (T, or comma-separated T1,T2,...; ISO UTC) on
    the request logs under ``logs``, pooling the horizons.

    Each T is served, trained and scored on its own (``evaluate_at``); the report pools their test
    rows for the variants' metrics, the best SOLARIS-fed variant's paired-bootstrap intervals and
    the budget sweep, and keeps each T's own numbers under ``runs``. Writes ``out/report.json``,
    ``out/report.md`` and plots; ``out`` (one T) or ``out/at=<T>`` (several) also receives each
    run's FM, speculator, plans and snapshots.

    Args:
        settings: base settings; ``work`` and ``snapshots`` are redirected under the run's folder.
        logs: request-log root.
        at: T or T1,T2,...: the test horizons' starts.
        out: report folder (created).
        model: an FM checkpoint trained before every T; None trains one per T before its VM windows.
        opts: the knobs (None: the defaults).

    Returns:
        The report, as written to ``out/report.json``.

    Raises:
        ConfigError: bad knobs, or an FM that has seen a test horizon.
        InputNotFound: no complete logs for a test horizon, or no clicks to train or test on.
    """
    t_start = time.perf_counter()
    opts = EvalOptions() if opts is None else opts
    opts.check()
    ats = sorted({parse_time(a.strip()) for a in str(at).split(",") if a.strip()})
    if not ats:
        raise ConfigError("--at names no test horizon: give T or T1,T2,... in ISO UTC")
    out = Path(out)
    runs, parts, sweeps, spec = [], [], [], None
    for i, T in enumerate(ats):
        if len(ats) > 1:
            log(f"test horizon {i + 1}/{len(ats)}: {T.isoformat()}")
        run, scores, costs, spec = evaluate_at(settings, logs, T, out if len(ats) == 1 else out / f"at={stamp(T)}",
                                               model, opts)
        runs.append(run)
        parts.append(scores)
        sweeps.append(costs)
    pooled = pool(parts)
    vs = VariantScores.of(pooled, opts.budget)
    sweep = tuple(BudgetResult(c, budget_quality(vs.metrics, pooled, c.budget)) for c in pool_costs(sweeps))
    report = Report(tuple(T.isoformat() for T in ats), format_duration(parse_duration(opts.horizon)), opts.budget,
                    vs.headline(opts.budget), vs.fm_fresh, vs.best, sweep, tuple(runs), RunOptions.of(opts, spec),
                    round(time.perf_counter() - t_start, 1))
    write_report(report, out)
    return report


def evaluate_at(settings: Settings, logs: Path, T: datetime, out: Path, model: Path | None,
                opts: EvalOptions) -> tuple[RunReport, HorizonScores, list[BudgetCost], Path | str]:
    """One test horizon starting at ``T``: serve the training and test windows through speculation,
    inference and snapshots (work under ``out``), train and score the VM variants, and measure
    coverage and cost. Returns its ``runs`` entry, its test scores, its sweep's costs and the
    speculator used."""
    t_start = time.perf_counter()
    hz, lb = parse_duration(opts.horizon), parse_duration(opts.lookback)
    budgets = opts.sweep()
    split = EvalSplit.around(logs, T, hz, opts.train_windows, opts.staleness_windows)
    if split.after_windows < opts.staleness_windows:
        log(f"logs cover {split.after_windows} of {opts.staleness_windows} staleness windows after T: reporting those")
    out.mkdir(parents=True, exist_ok=True)
    settings = settings.with_overrides(work=out / "work", snapshots=str(out / "snapshots"))

    fm_path, lm = load_fm(settings, logs, split, model, out, opts)
    spec = resolve_speculator(settings, logs, split, out, opts)
    log(f"read {split.span} and {opts.lookback} of history before it")
    data = read_span(logs, split, lb)
    imps = data.rows.take(data.rows.impressed)
    roles = Roles.of(split, imps)
    served = serve_windows(settings, logs, data.rows, split.serving_windows(), fm_path, spec, budgets, out, opts)

    lm.model.to(served.device)  # the fresh FM and its online timing run where the batch FM ran
    inputs = vm_inputs(data, served, lm, roles.train, budgets, lb)
    variants = train_variants(inputs, roles.train, budgets, opts.budget, opts.distill_label_weight, opts.vm_training)
    scores = score_test(variants, inputs, roles.train, roles.test, imps.request_id)
    metrics = scores.metrics()

    horizon = Horizon.of(data.rows, served, split.test)
    online = online_fm_seconds(lm, data.events, data.ads, horizon.rows,
                               np.random.default_rng(0).permutation(horizon.requests)[: opts.online_requests], lb)
    costs = budget_costs(horizon.rank, horizon.budget_pairs, len(horizon.requests), served.batch_pairs_per_s)
    run = RunReport(
        T.isoformat(), {k: metrics[v] for k, v in headline_names(opts.budget).items()},
        tuple(BudgetResult(c, budget_quality(metrics, scores, c.budget)) for c in costs),
        tuple(staleness(variants, inputs, imps, split, opts.budget, roles.base_rate)),
        Cost.of(served, horizon, online, {c.budget: c for c in costs}[opts.budget]),
        SplitSummary.of(split, imps, roles, lm.meta.get("trained_until"), lm.version), served.windows, str(spec),
        round(time.perf_counter() - t_start, 1))
    return run, scores, costs, spec
