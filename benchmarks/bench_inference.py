"""Naive per-pair vs user-batched FM inference, K = 10, 50, 200 candidates per user (L = 128).

    python benchmarks/bench_inference.py [--quick] [--preset small|large] [--device auto|cpu|cuda]

Both paths run the same model under the same token budget per call; naive re-encodes the user's
sequence for every pair, batched encodes it once per user. FLOPs come from torch's FlopCounterMode
on the batched path. The last line printed is one JSON object (see shared/OUTPUTS.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solaris_batch.inference.runner import resolve_device, run_model, run_model_naive  # noqa: E402
from solaris_batch.model.fm import FMConfig, SolarisFM  # noqa: E402

# Dense bf16 tensor-core peaks (TFLOP/s) by device name.
BF16_PEAK = {"H100 SXM": 989.0, "H100 80GB HBM3": 989.0, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H200": 989.0,
             "A100": 312.0, "L40S": 362.0, "L4": 121.0}


def bf16_peak(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in BF16_PEAK.items() if k in name), None)


def make_inputs(users: int, k: int, cfg: FMConfig, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    L = cfg.seq_len
    t = {"ad": torch.randint(1, cfg.ad_buckets, (users, L), generator=g),
         "cat": torch.randint(1, cfg.cat_buckets, (users, L), generator=g),
         "event": torch.randint(1, 3, (users, L), generator=g),
         "user_index": torch.arange(users).repeat_interleave(k),
         "cand_ad": torch.randint(1, cfg.ad_buckets, (users * k,), generator=g),
         "cand_cat": torch.randint(1, cfg.cat_buckets, (users * k,), generator=g)}
    return {n: v.to(device) for n, v in t.items()}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats: int) -> tuple[float, tuple]:
    out = fn()  # warm-up
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best, out


def batched(model, t, device, users_per_call):
    embs, logits = [], []
    k = len(t["cand_ad"]) // len(t["ad"])
    for u0 in range(0, len(t["ad"]), users_per_call):
        u1 = min(u0 + users_per_call, len(t["ad"]))
        part = {n: t[n][u0:u1] for n in ("ad", "cat", "event")}
        part.update({"user_index": t["user_index"][u0 * k : u1 * k] - u0,
                     "cand_ad": t["cand_ad"][u0 * k : u1 * k], "cand_cat": t["cand_cat"][u0 * k : u1 * k]})
        e, lg = run_model(model, part, device)
        embs.append(e)
        logits.append(lg)
    return torch.cat(embs), torch.cat(logits)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="under a minute, same keys")
    p.add_argument("--preset", help="FM preset (default: small on CPU, large on CUDA)")
    p.add_argument("--device", default="auto")
    p.add_argument("--pairs", type=int, help="pairs per K (default 6000 CPU, 200000 CUDA; quick: /4)")
    p.add_argument("--token-budget", type=int, default=1 << 16)
    a = p.parse_args()
    device = resolve_device(a.device)
    torch.manual_seed(0)
    preset = a.preset or ("large" if device.type == "cuda" else "small")
    cfg = replace(FMConfig.preset(preset), seq_len=128)
    model = SolarisFM(cfg).to(device).eval()
    pairs = a.pairs or (200_000 if device.type == "cuda" else 6000)
    if a.quick:
        pairs //= 4
    repeats = 2 if a.quick else 3
    rows, out = [], {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                     "preset": preset, "seq_len": cfg.seq_len, "params": sum(x.numel() for x in model.parameters())}
    max_diff = 0.0
    for k in (10, 50, 200):
        users = max(1, pairs // k)
        t = make_inputs(users, k, cfg, device, seed=k)
        upc = max(1, a.token_budget // (cfg.seq_len + k))
        naive_chunk = max(1, a.token_budget // (cfg.seq_len + 1))
        tb, (eb, _) = timed(lambda: batched(model, t, device, upc), device, repeats)  # noqa: B023
        tn, (en, _) = timed(lambda: run_model_naive(model, t, device, naive_chunk), device, repeats)  # noqa: B023
        diff = float((eb.float() - en.float()).abs().max())
        max_diff = max(max_diff, diff)
        n = users * k
        rows.append((k, n / tn, n / tb, tn / tb, diff))
        out[f"pairs_per_s_naive_k{k}"] = round(n / tn, 1)
        out[f"pairs_per_s_batched_k{k}"] = round(n / tb, 1)
        out[f"speedup_k{k}"] = round(tn / tb, 2)
    from torch.utils.flop_counter import FlopCounterMode

    t = make_inputs(max(1, 2000 // 50), 50, cfg, device, seed=1)
    with FlopCounterMode(display=False) as fc:
        batched(model, t, device, 10**9)
    flops_per_pair = fc.get_total_flops() / len(t["cand_ad"])
    achieved = flops_per_pair * out["pairs_per_s_batched_k50"] / 1e12
    peak = bf16_peak(device)
    out.update({"max_abs_diff": max_diff, "flops_per_pair": round(flops_per_pair),
                "achieved_tflops": round(achieved, 4),
                "peak_fraction": None if peak is None else round(achieved / peak, 4)})
    print(f"device={out['device']} preset={preset} L={cfg.seq_len} params={out['params']:,}")
    print(f"{'K':>4} {'naive pairs/s':>14} {'batched pairs/s':>16} {'speedup':>8} {'max|diff|':>10}")
    for k, n, b, s, d in rows:
        print(f"{k:>4} {n:>14,.0f} {b:>16,.0f} {s:>7.1f}x {d:>10.2e}")
    print(f"FLOPs/pair {flops_per_pair:,.0f}; achieved {achieved:.4f} TFLOP/s"
          + (f" = {out['peak_fraction']:.1%} of bf16 peak" if peak else ""))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
