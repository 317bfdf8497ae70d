"""``solaris evaluate``: what the precomputed embeddings are worth to the online ranker, and at what cost.

``evaluate`` composes the package's concerns: the strict time split around T (``split``), serving
each window as production does and the features the VMs read (``serve``), the VM variants and their
scores (``variants``), coverage and device-seconds (``cost``), and the typed report with its
renderings (``report``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from solaris_batch.config import Settings
from solaris_batch.evaluation import log
from solaris_batch.evaluation.cost import Cost, Horizon, budget_costs, online_fm_seconds
from solaris_batch.evaluation.options import EvalOptions
from solaris_batch.evaluation.report import BudgetResult, Report, RunOptions, write_report
from solaris_batch.evaluation.serve import load_fm, resolve_speculator, serve_windows, vm_inputs
from solaris_batch.evaluation.split import EvalSplit, Roles, SplitSummary, read_span
from solaris_batch.evaluation.variants import budget_quality, score_test, staleness, train_variants
from solaris_batch.timeutil import format_duration, parse_duration, parse_time


def evaluate(settings: Settings, logs: Path, at: str, out: Path, model: Path | None = None,
             opts: EvalOptions | None = None) -> Report:
    """Evaluate SOLARIS at ``at`` (T, ISO UTC) on the request logs under ``logs``.

    Serves the training and test windows through speculation, inference and snapshots, trains and
    scores the VM variants, measures coverage and cost, and writes ``out/report.json``,
    ``out/report.md`` and plots; ``out`` also receives the run's FM, speculator, plans and snapshots.

    Args:
        settings: base settings; ``work`` and ``snapshots`` are redirected under ``out``.
        logs: request-log root.
        at: T, the test horizon's start.
        out: report folder (created).
        model: an FM checkpoint trained before T; None trains one before the VM windows.
        opts: the knobs (None: the defaults).

    Returns:
        The report, as written to ``out/report.json``.

    Raises:
        ConfigError: bad knobs, or an FM that has seen the test horizon.
        InputNotFound: no complete logs for the test horizon, or no clicks to train or test on.
    """
    t_start = time.perf_counter()
    opts = EvalOptions() if opts is None else opts
    T, hz, lb = parse_time(at), parse_duration(opts.horizon), parse_duration(opts.lookback)
    opts.check()
    budgets = opts.sweep()
    split = EvalSplit.around(logs, T, hz, opts.train_windows, opts.staleness_windows)
    if split.after_windows < opts.staleness_windows:
        log(f"logs cover {split.after_windows} of {opts.staleness_windows} staleness windows after T: reporting those")
    out = Path(out)
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
    variants = train_variants(inputs, roles.train, budgets, opts.distill_label_weight, opts.vm_training)
    scores = score_test(variants, inputs, roles.test, roles.base_rate, imps.request_id, opts.budget)

    horizon = Horizon.of(data.rows, served, split.test)
    online = online_fm_seconds(lm, data.events, data.ads, horizon.rows,
                               np.random.default_rng(0).permutation(horizon.requests)[: opts.online_requests], lb)
    costs = budget_costs(horizon.rank, horizon.budget_pairs, len(horizon.requests), served.batch_pairs_per_s)
    sweep = tuple(BudgetResult(c, budget_quality(scores, inputs, roles.test, c.budget)) for c in costs)

    m = scores.metrics
    report = Report(
        at=T.isoformat(), horizon=format_duration(hz), budget=opts.budget,
        vm=m["vm"], vm_fm_all=m["vm_fm_all"], vm_distilled=m["vm_distilled"], fm_fresh=scores.fm_fresh,
        auc_diff_ci95=scores.auc_diff_ci95, budgets=sweep,
        staleness=tuple(staleness(variants, inputs, imps, split, opts.budget, roles.base_rate)),
        cost=Cost.of(served, horizon, online, {c.budget: c for c in costs}[opts.budget]),
        split=SplitSummary.of(split, imps, roles, lm.meta.get("trained_until"), lm.version),
        windows=served.windows, options=RunOptions.of(opts, spec),
        seconds=round(time.perf_counter() - t_start, 1),
    )
    write_report(report, out)
    return report
