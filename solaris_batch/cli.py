"""The ``solaris`` command: every stage callable without Airflow.

Expected failures (``SolarisError``) print one line, ``solaris: error: ...``, and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from solaris_batch.config import (
    DEFAULT_BUDGET,
    DEFAULT_BUDGETS,
    DEFAULT_FM_WINDOW,
    DEFAULT_HORIZON,
    DEFAULT_LOOKBACK,
    DEFAULT_SEQ_LEN,
    DEFAULT_SPECULATOR_WINDOWS,
)
from solaris_batch.errors import ConfigError, InputNotFound, SolarisError


def _settings(a: argparse.Namespace):
    from solaris_batch.config import load_settings

    return load_settings(spark_log_level="WARN" if getattr(a, "verbose", False) else None,
                         logs=getattr(a, "logs", None), work=getattr(a, "work", None),
                         snapshots=getattr(a, "root", None), model=getattr(a, "model", None),
                         model_name=getattr(a, "model_name", None), shards=getattr(a, "shards", None),
                         speculator=getattr(a, "registry", None))


def _need(path: Path | str | None, what: str, hint: str) -> Path | str:
    """``path`` as a ``Path`` (local) or URI; refused when it does not exist or, remote, is empty."""
    from solaris_batch.storage import Root
    from solaris_batch.storage.uri import local_path

    local = None if path is None else local_path(path)
    if local is not None:
        exists = local.exists()
    else:
        exists = path is not None and bool(Root.open(path).listdir(""))
    if not exists:
        raise InputNotFound(f"{what} {path} does not exist: {hint}")
    return local if local is not None else str(path)


def cmd_simulate(a):
    from solaris_batch.logs.simulator import SimConfig, simulate

    cfg = SimConfig(start=a.start, hours=a.hours, users=a.users, ads=a.ads, seed=a.seed,
                    candidates=a.candidates, explore=a.explore, churn=a.churn, regime=a.regime)
    s = simulate(cfg, a.out)
    print(f"simulate: {s.rows:,} rows, {s.requests:,} requests, {s.impressions:,} impressions,"
          f" {s.clicks:,} clicks over {s.hours} h -> {a.out} ({s.rows_per_s:,.0f} rows/s generated)")


def cmd_speculate(a):
    from solaris_batch.jobs import SpeculateJob, launch

    st = _settings(a)
    job = SpeculateJob(at=a.at, out=a.out, lookback=a.lookback, horizon=a.horizon, budget=a.budget, seq_len=a.seq_len,
                       per_user_cap=a.per_user_cap, speculator=a.speculator)
    info = launch(st, job, submit=a.submit)
    print(f"speculate: planned {info.pairs:,} pairs (budget {info.budget} = {info.budget_pairs:,}) for"
          f" {info.users:,} users in {len(info.shards)} shards from {info.rows_read:,} log rows"
          f" ({info.quarantined} quarantined), scored by {info.speculator} -> {a.out}")


def cmd_train_speculator(a):
    from solaris_batch.jobs import TrainSpeculatorJob, launch

    st = _settings(a)
    m = launch(st, TrainSpeculatorJob(at=a.at, lookback=a.lookback, horizon=a.horizon, windows=a.windows,
                                      every=a.every), submit=a.submit)
    print(f"train-speculator: {m.examples:,} examples ({m.positives:,} positive) from {len(m.train_at)}"
          f" windows, train AUC {m.train_auc:.4f} -> {st.speculator_path}/{m.version} (LATEST)")


def cmd_backtest(a):
    from solaris_batch.jobs import BacktestJob, launch
    from solaris_batch.speculate.report import lift

    st = _settings(a)
    rep = launch(st, BacktestJob(at=a.at, lookback=a.lookback, horizon=a.horizon, budgets=a.budgets,
                                 strategies=a.strategies, speculator=a.speculator, registry=a.registry,
                                 train_windows=a.train_windows, out=a.out))
    print(f"{'strategy':<9} {'budget':>6} {'pairs':>10} {'hit_rate':>9} {'recall':>7} {'precision':>9}")
    for r in rep["results"]:
        print(f"{r['strategy']:<9} {r['budget']:>6} {r['budget_pairs']:>10,} {r['request_hit_rate']:>9.4f}"
              f" {r['pair_recall']:>7.4f} {r['precision']:>9.4f}")
    for b in dict.fromkeys(r["budget"] for r in rep["results"]):
        x = lift(rep, b)
        if x is not None:
            print(f"learned vs best baseline at {b}: {x:+.1%}")
    print(f"backtest: {len(rep['at'])} horizon(s), {rep['horizon_rows']:,} rows -> {a.out}/backtest.json,"
          f" {a.out}/coverage.png")


def cmd_evaluate(a):
    from solaris_batch.evaluation.options import EvalOptions
    from solaris_batch.evaluation.run import evaluate
    from solaris_batch.evaluation.vm import VMTraining

    st = _settings(a)
    opts = EvalOptions(horizon=a.horizon, budget=a.budget, budgets=tuple(b.strip() for b in a.budgets.split(",")),
                       train_windows=a.train_windows, staleness_windows=a.staleness_windows, lookback=a.lookback,
                       fm_window=a.fm_window, fm_epochs=a.fm_epochs, speculator=a.speculator,
                       distill_label_weight=a.distill_label_weight, device=a.device or st.device,
                       online_requests=a.online_requests, vm_training=VMTraining(epochs=a.vm_epochs, seed=a.seed))
    fm = _need(a.fm_model, "FM checkpoint", "train one with 'solaris train-fm' or omit --model") if a.fm_model else None
    r = evaluate(st, st.logs_root, a.at, a.out, model=fm, opts=opts)
    print(f"{'variant':<22} {'AUC':>7} {'NE':>7}")
    for v, m in r.variants.items():
        print(f"{v:<22} {m.auc or float('nan'):>7.4f} {m.ne or float('nan'):>7.4f}")
    print(f"{'budget':>6} {'hit_rate':>9} {'AUC':>7} {'recovered':>10} {'pairs/hit':>10}")
    for b in r.budgets:
        rg = "n/a" if b.quality.recovered_gain is None else f"{b.quality.recovered_gain:.1%}"
        print(f"{b.budget:>6} {b.cost.hit_rate:>9.4f} {b.quality.vm_solaris.auc or float('nan'):>7.4f} {rg:>10}"
              f" {b.cost.fm_pairs_per_hit or float('nan'):>10.2f}")
    best = r.best
    cis = ", ".join(f"vs {k} [{v[0]:+.4f}, {v[1]:+.4f}]" for k, v in best.auc_diff_ci95.items() if v)
    print(f"evaluate: best SOLARIS-fed variant {best.variant} (AUC difference 95% intervals {cis});"
          f" {len(r.runs)} horizon(s) pooled, {r.seconds:.0f}s -> {a.out}/report.json, report.md, plots")


def cmd_ingest(a):
    from solaris_batch.logs.ingest import ingest

    s = ingest(a.format, a.src, a.out, min_ts=a.min_ts, max_ts=a.max_ts)
    print(f"ingest {s.format}: {s.lines:,} lines -> {s.rows:,} rows, {s.requests:,} requests over {s.hours:,} hours"
          f" ({s.first} .. {s.last}); {s.quarantined:,} malformed lines quarantined"
          + (f" -> {a.out}/_quarantine/ingest.parquet" if s.quarantined else "") + f"; log root {a.out}")


def cmd_train_fm(a):
    from solaris_batch.model.train import train_fm

    st = _settings(a)
    r = train_fm(st.logs_root, a.until, st.model_path, window=a.window, lookback=a.lookback, preset=a.preset,
                 epochs=a.epochs, max_steps=a.max_steps, seed=a.seed, model_class=a.model_class or st.fm_class)
    auc = "n/a" if r.val_auc is None else f"{r.val_auc:.4f}"
    print(f"train-fm: {r.examples:,} examples, {r.steps} steps, loss {r.train_loss:.4f}, held-out AUC {auc},"
          f" {r.seconds:.1f}s -> {st.model_path} (version {r.version})")


def cmd_infer(a):
    from solaris_batch.inference.runner import infer_plan

    st = _settings(a)
    _need(a.plan, "plan", "run 'solaris speculate --out PLAN' first")
    rs = infer_plan(a.plan, st.model_path, a.out, shard=a.shard, device=a.device or st.device,
                    token_budget=a.token_budget, compile=a.compile)
    print(f"infer: {sum(r.pairs for r in rs):,} pairs in {len(rs)} shards -> {a.out}")


def cmd_publish(a):
    from solaris_batch.snapshots.publish import publish

    st = _settings(a)
    _need(a.embeddings, "embeddings folder", "run 'solaris infer --out EMB' first")
    extra = {}
    if a.plan:
        from solaris_batch.speculate.plan import read_plan_info

        extra = read_plan_info(a.plan).provenance()
    r = publish(a.embeddings, st.snapshots_root, st.model_name, extra, no_plan=a.no_plan,
                allow_schema_change=a.allow_schema_change)
    note = f" ({r.note})" if r.note else ""
    print(f"publish: {r.rows:,} rows{note} -> CURRENT={r.current}", file=sys.stderr)
    if r.drift:
        d = r.drift
        print(f"publish: drift vs {d['previous']}: rows x{d['rows_ratio']:.3f}, mean norm"
              f" {d['norm_mean_delta']:+.4f}{', new checkpoint' if d['checkpoint_changed'] else ''}", file=sys.stderr)
    print(r.snapshot_id)


def cmd_snapshots(a):
    from solaris_batch.snapshots import publish as snaps
    from solaris_batch.storage import Root

    st = _settings(a)
    root, model = st.snapshots_root, st.model_name
    if a.action == "list":
        r = Root.open(root)
        current, bad = snaps.read_current(r, model), set(snaps.read_bad(r, model))
        for sid in snaps.list_snapshots(r, model):
            flag = "CURRENT" if sid == current else ("BAD" if sid in bad else "")
            try:
                m = snaps.load_manifest(r, model, sid)
            except SolarisError as e:  # one damaged snapshot must not hide the others
                print(f"{sid}  UNREADABLE: {e} {flag}".rstrip())
                continue
            print(f"{sid}  rows={m.rows:<10} dim={m.dim} checkpoint={m.checkpoint_version} {flag}".rstrip())
    elif a.action == "show":
        if not a.id:
            raise InputNotFound("snapshots show needs a snapshot id (see 'solaris snapshots list')")
        print(json.dumps(snaps.read_manifest(root, model, a.id), indent=2))
    elif a.action == "rollback":
        bad, now = snaps.rollback(root, model)
        print(f"rolled back: {bad} marked bad, CURRENT={now}")
    elif a.action == "gc":
        deleted = snaps.gc(root, model, a.keep)
        print(f"gc: deleted {len(deleted)} snapshots" + (f": {', '.join(deleted)}" if deleted else ""))
    elif a.action == "verify":
        from solaris_batch.serving.store import load_snapshot

        pointer = snaps.read_pointer(root, model)
        sid = a.id or (pointer and pointer.snapshot_id)
        if sid is None:
            raise InputNotFound(f"model {model!r} has no CURRENT snapshot under {root}")
        digest = pointer.manifest_sha256 if pointer and pointer.snapshot_id == sid else None
        snap = load_snapshot(Root.open(root), model, sid, verify="full", expect_sha256=digest)
        print(f"{sid}: {len(snap.keys):,} rows, every file matches its sha256")


def cmd_run(a):
    from solaris_batch import pipeline

    st = _settings(a)
    out = pipeline.run_all(st, st.logs_root, a.at, st.model_path, st.snapshots_root, a.lookback, a.horizon,
                           a.budget, st.shards, a.device or st.device)
    print(json.dumps(out["snapshot"]))


def cmd_replay(a):
    from solaris_batch import pipeline

    st = _settings(a)
    print(json.dumps(pipeline.replay(st.logs_root, st.snapshots_root, st.model_name, a.at, a.horizon)))


def cmd_lookup(a):
    import numpy as np

    from solaris_batch.serving import EmbeddingStore

    st = _settings(a)
    try:
        ads = np.array([int(x) for x in a.ads.split(",")], dtype=np.int64)
    except (ValueError, OverflowError):
        raise ConfigError(f"--ads {a.ads!r} must be comma-separated integer ad ids, e.g. --ads 100,101") from None
    store = EmbeddingStore.open(st.snapshots_root, st.model_name)
    res = store.lookup(np.full(len(ads), a.user, dtype=np.int64), ads)
    for ad, hit, e in zip(ads, res.hit, res.embeddings, strict=True):
        print(json.dumps({"user_id": a.user, "ad_id": int(ad), "hit": bool(hit),
                          "embedding": [round(float(x), 5) for x in e] if hit else None}))


def cmd_config(a):
    st = _settings(a)
    body = {k: str(v) for k, v in st.model_dump().items()}
    body.update(logs_root=str(st.logs_root), work_root=str(st.work_root), snapshots_root=st.snapshots_root,
                model_path=str(st.model_path))
    print(json.dumps(body, indent=2))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("solaris-batch")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from solaris_batch import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="solaris", description="SOLARIS-batch: precompute FM embeddings for the pairs"
                                " the next requests will score. Paths default to SOLARIS_* env vars, then ./data.")
    p.add_argument("--version", action="version", version=f"solaris-batch {_version()}")
    p.add_argument("--verbose", action="store_true",
                   help="show Spark's own warnings too (sets SOLARIS_SPARK_LOG_LEVEL=WARN for this command)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, fn, help_):
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        sp.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show Spark's own warnings too (SOLARIS_SPARK_LOG_LEVEL=WARN)")
        return sp

    def window_args(sp, budget=True):
        sp.add_argument("--at", required=True, help="horizon start T, ISO time in UTC (e.g. 2026-11-21T23:00)")
        sp.add_argument("--lookback", default=DEFAULT_LOOKBACK,
                        help=f"log window before T to mine (m/h/d suffix; default {DEFAULT_LOOKBACK})")
        sp.add_argument("--horizon", default=DEFAULT_HORIZON, help=f"horizon to plan for (default {DEFAULT_HORIZON})")
        if budget:
            sp.add_argument("--budget", default=DEFAULT_BUDGET, help="max pairs: a count (50000) or Nx of the last"
                            f" horizon's distinct pairs (default {DEFAULT_BUDGET})")

    sp = add("simulate", cmd_simulate, "write a simulated ads marketplace as canonical request logs")
    sp.add_argument("--out", type=Path, required=True, help="log root to write")
    sp.add_argument("--start", required=True, help="first hour, ISO time UTC")
    sp.add_argument("--hours", type=int, required=True)
    sp.add_argument("--users", type=int, default=5000)
    sp.add_argument("--ads", type=int, default=2000)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--candidates", type=int, default=30, help="mean final-stage candidates per request")
    sp.add_argument("--explore", type=float, default=0.15, help="share of candidates outside the user's pool")
    sp.add_argument("--churn", type=float, default=0.02, help="hourly interest-pool churn")
    sp.add_argument("--regime", default="market",
                    help="market: ads with interest pools, pairs recur (default); feed: short-lived items shown"
                         " to many users, pairs rarely repeat")

    sp = add("speculate", cmd_speculate, "Spark job: plan the pairs of the next horizon under a budget")
    sp.add_argument("--logs", help="request-log root (default SOLARIS_LOGS)")
    window_args(sp)
    sp.add_argument("--out", required=True, help="plan folder to write (replaced whole)")
    sp.add_argument("--shards", type=int, help="plan shards (default SOLARIS_SHARDS or 4)")
    sp.add_argument("--seq-len", type=int, default=DEFAULT_SEQ_LEN, help="events kept per user sequence")
    sp.add_argument("--submit", action="store_true", help="run through spark-submit in a child process")
    sp.add_argument("--per-user-cap", type=int, help="at most this many planned pairs per user")
    sp.add_argument("--speculator", help="speculator version folder, or 'heuristic' (default: LATEST in --registry)")
    sp.add_argument("--registry", type=Path, help="speculator registry (default SOLARIS_SPECULATOR)")

    sp = add("train-speculator", cmd_train_speculator,
             "Spark job: learn the speculator's scoring on past windows and register a new version")
    sp.add_argument("--logs", help="request-log root (default SOLARIS_LOGS)")
    window_args(sp, budget=False)
    sp.add_argument("--windows", type=int, default=DEFAULT_SPECULATOR_WINDOWS,
                    help="past windows (horizons ending by --at) to learn from")
    sp.add_argument("--every", help="spacing of the windows (default: the horizon)")
    sp.add_argument("--registry", type=Path, help="registry folder (default SOLARIS_SPECULATOR)")
    sp.add_argument("--submit", action="store_true", help="run through spark-submit in a child process")

    sp = add("backtest", cmd_backtest, "replay real horizons against learned / repeat / popular plans per budget")
    sp.add_argument("--logs", help="request-log root (default SOLARIS_LOGS)")
    sp.add_argument("--at", required=True, help="horizon start(s), comma-separated ISO times (UTC)")
    sp.add_argument("--lookback", default=DEFAULT_LOOKBACK)
    sp.add_argument("--horizon", default=DEFAULT_HORIZON)
    sp.add_argument("--budgets", default=DEFAULT_BUDGETS, help="comma-separated budgets (counts or Nx)")
    sp.add_argument("--strategies", help="comma-separated, default learned,repeat,popular")
    sp.add_argument("--speculator",
                    help="learned strategy's model: train (fresh at each --at on earlier windows; default),"
                         " latest (registry), heuristic, or a version folder")
    sp.add_argument("--train-windows", type=int, default=DEFAULT_SPECULATOR_WINDOWS)
    sp.add_argument("--registry", type=Path, help="registry for latest (default SOLARIS_SPECULATOR)")
    sp.add_argument("--out", required=True, help="report folder (backtest.json, coverage.png)")

    sp = add("evaluate", cmd_evaluate,
             "knowledge transfer: VM alone / + SOLARIS / + FM everywhere / distilled, with hit rate and cost")
    sp.add_argument("--logs", help="request-log root (default SOLARIS_LOGS)")
    sp.add_argument("--at", required=True, help="test horizon start T, or T1,T2,... to pool several (ISO UTC)")
    sp.add_argument("--horizon", default="1h", help="test horizon and serving-window length")
    sp.add_argument("--budget", default="2x", help="headline budget (count or Nx)")
    sp.add_argument("--budgets", default="0.5x,1x,2x,4x", help="budget sweep for recovered gain vs hit rate")
    sp.add_argument("--model", dest="fm_model", type=Path,
                    help="FM checkpoint trained before --at (default: train one on data before the VM windows)")
    sp.add_argument("--speculator", default="train", help="train (default), latest, heuristic, or a version folder")
    sp.add_argument("--registry", type=Path, help="registry for --speculator latest (default SOLARIS_SPECULATOR)")
    sp.add_argument("--train-windows", type=int, default=4, help="serving windows before T that train the VMs")
    sp.add_argument("--staleness-windows", type=int, default=4,
                    help="windows after T served by T's snapshot without refresh")
    sp.add_argument("--lookback", default=DEFAULT_LOOKBACK, help="history the speculator and the FM read")
    sp.add_argument("--fm-window", default=DEFAULT_FM_WINDOW, help="FM training window (when --model is not given)")
    sp.add_argument("--fm-epochs", type=int, default=1)
    sp.add_argument("--vm-epochs", type=int, default=2)
    sp.add_argument("--distill-label-weight", type=float, default=0.5,
                    help="distilled VM target: w * click + (1 - w) * FM probability")
    sp.add_argument("--online-requests", type=int, default=200, help="requests timed through the FM one by one")
    sp.add_argument("--device", help="torch device (default SOLARIS_DEVICE: auto)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--out", type=Path, required=True, help="report folder (report.json, report.md, plots)")

    sp = add("ingest", cmd_ingest, "convert a public dataset (MovieLens, Taobao, MIND) into a canonical log root")
    sp.add_argument("format", choices=["movielens", "taobao", "mind"])
    sp.add_argument("--src", type=Path, required=True, help="the dataset file or its folder")
    sp.add_argument("--out", required=True, help="log root to write, a path or URI (replaced whole)")
    sp.add_argument("--min-ts", help="quarantine rows before this UTC time (default 1995-01-01)")
    sp.add_argument("--max-ts", help="quarantine rows after this UTC time (default: one day after now)")

    sp = add("train-fm", cmd_train_fm, "train the reference FM on impressions before --until")
    sp.add_argument("--logs")
    sp.add_argument("--until", required=True, help="train on data strictly before this time (UTC)")
    sp.add_argument("--out", dest="model", help="checkpoint folder or URI (default SOLARIS_MODEL)")
    sp.add_argument("--window", default=DEFAULT_FM_WINDOW, help="training window before --until")
    sp.add_argument("--lookback", default=DEFAULT_LOOKBACK, help="history window for each example's sequence")
    sp.add_argument("--preset", default="small", help="model size preset: small or large")
    sp.add_argument("--model-class", help="FM implementation module:Class (default SOLARIS_FM_CLASS)")
    sp.add_argument("--epochs", type=int, default=2)
    sp.add_argument("--max-steps", type=int)
    sp.add_argument("--seed", type=int, default=0)

    sp = add("infer", cmd_infer, "run the FM over a plan and write embedding shards")
    sp.add_argument("--plan", required=True, help="plan folder or URI")
    sp.add_argument("--model", help="checkpoint folder or URI (default SOLARIS_MODEL)")
    sp.add_argument("--out", required=True, help="embedding shard folder or URI")
    sp.add_argument("--shard", type=int, help="only this shard (default: all)")
    sp.add_argument("--device", help="auto (default), cpu, cuda, cuda:1 ...")
    sp.add_argument("--token-budget", type=int, default=1 << 16,
                    help="batch size in tokens: users x seq_len + pairs (whole users per batch)")
    sp.add_argument("--compile", action="store_true", help="torch.compile the model first")

    sp = add("publish", cmd_publish, "validate embedding shards and publish a snapshot; prints its id")
    sp.add_argument("--embeddings", required=True, help="embedding shard folder or URI")
    sp.add_argument("--root", help="snapshot root (default SOLARIS_SNAPSHOTS)")
    sp.add_argument("--model-name", help="default SOLARIS_MODEL_NAME or fm")
    sp.add_argument("--plan", help="plan folder or URI, to record its window in the manifest")
    sp.add_argument("--no-plan", action="store_true",
                    help="publish shards written without plan metadata (skips the plan row-count gates)")
    sp.add_argument("--allow-schema-change", action="store_true",
                    help="allow an embedding dim/dtype different from CURRENT's (serving stores refuse to"
                         " reload across widths: restart them)")

    sp = add("snapshots", cmd_snapshots, "list, show, verify, roll back or garbage-collect published snapshots")
    sp.add_argument("action", choices=["list", "show", "rollback", "gc", "verify"])
    sp.add_argument("id", nargs="?", help="snapshot id (show, verify)")
    sp.add_argument("--root", help="snapshot root (default SOLARIS_SNAPSHOTS)")
    sp.add_argument("--model-name")
    sp.add_argument("--keep", type=int, default=5, help="gc: newest good snapshots to keep (default 5)")

    sp = add("run", cmd_run, "speculate -> infer -> publish for one horizon, without Airflow")
    sp.add_argument("--logs")
    window_args(sp)
    sp.add_argument("--model", help="checkpoint folder or URI (default SOLARIS_MODEL)")
    sp.add_argument("--root")
    sp.add_argument("--model-name")
    sp.add_argument("--work", help="plans/embeddings root, a path or URI (default SOLARIS_WORK)")
    sp.add_argument("--shards", type=int)
    sp.add_argument("--device")

    sp = add("replay", cmd_replay, "hit rate of a horizon's (request, ad) rows against the live snapshot")
    sp.add_argument("--logs")
    sp.add_argument("--at", required=True)
    sp.add_argument("--horizon", default=DEFAULT_HORIZON)
    sp.add_argument("--root")
    sp.add_argument("--model-name")

    sp = add("lookup", cmd_lookup, "look up one user's ads in the live snapshot (JSON lines)")
    sp.add_argument("--root")
    sp.add_argument("--model-name")
    sp.add_argument("--user", type=int, required=True)
    sp.add_argument("--ads", required=True, help="comma-separated ad ids")

    add("config", cmd_config, "print the effective settings")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a, rest = parser.parse_known_args(argv)
    if len(rest) == 1 and getattr(a, "id", "") is None and not rest[0].startswith("-"):
        a.id = rest[0]  # `snapshots show --root X ID`: the id after the options
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        a.fn(a)
    except SolarisError as e:
        print(f"solaris: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("solaris: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
