"""The vertical model (VM): the small online ranker that SOLARIS feeds.

A cheap click model over ID and context features that could run on every request: hashed user
and ad ids, the ad's category, the surface and the hour of day, each embedded, concatenated and
passed through a two-layer MLP. Optionally it also reads an FM embedding: the row's embedding when
``hit`` is true, a *learned default* vector otherwise, plus the miss flag and a few scalar ``side``
inputs (the FM's own logit for the pair, the snapshot's age), which is what a ranker sees when it
looks pairs up in a SOLARIS snapshot.

Every variant the evaluation compares is this one model, trained the same way (same rows, seed,
epochs); only its FM input (none, snapshot, fresh) or its labels (clicks, or clicks blended with FM
probabilities for the distilled VM) differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from solaris_batch.hashing import bucket_of

VM_KEYS = ("user", "ad", "cat", "surface", "hour")
_USER_SEED, _AD_SEED = 101, 103


@dataclass(frozen=True)
class VMConfig:
    """Sizes of the VM. ``fm_dim`` 0 means no FM input; ``fm_side`` scalar columns come with it."""

    user_buckets: int = 1 << 16
    ad_buckets: int = 1 << 15
    cat_buckets: int = 1024
    surface_buckets: int = 64
    dim: int = 16
    hidden: int = 64
    fm_dim: int = 0
    fm_proj: int = 32
    fm_side: int = 0


def vm_features(user_id: np.ndarray, ad_id: np.ndarray, category: np.ndarray, surface: np.ndarray,
                ts_us: np.ndarray, config: VMConfig) -> dict[str, np.ndarray]:
    """Integer inputs of the VM (int64 arrays of one length). ``surface`` holds small codes
    (0 = unknown), ``ts_us`` UTC microseconds (only the hour of day is used)."""
    return {
        "user": bucket_of(np.asarray(user_id, np.int64), config.user_buckets, _USER_SEED),
        "ad": bucket_of(np.asarray(ad_id, np.int64), config.ad_buckets, _AD_SEED),
        "cat": np.asarray(category, np.int64) % config.cat_buckets,
        "surface": np.asarray(surface, np.int64) % config.surface_buckets,
        "hour": (np.asarray(ts_us, np.int64) // 3_600_000_000) % 24,
    }


class VerticalModel(nn.Module):
    def __init__(self, config: VMConfig):
        super().__init__()
        self.config = c = config
        self.user = nn.Embedding(c.user_buckets, c.dim)
        self.ad = nn.Embedding(c.ad_buckets, c.dim)
        self.cat = nn.Embedding(c.cat_buckets, c.dim)
        self.surface = nn.Embedding(c.surface_buckets, c.dim)
        self.hour = nn.Embedding(24, c.dim)
        width = len(VM_KEYS) * c.dim
        if c.fm_dim:
            self.fm_default = nn.Parameter(torch.zeros(c.fm_dim))
            self.fm_proj = nn.Linear(c.fm_dim, c.fm_proj)
            width += c.fm_proj + 1 + c.fm_side
        self.mlp = nn.Sequential(nn.Linear(width, c.hidden), nn.ReLU(), nn.Linear(c.hidden, 1))
        for e in (self.user, self.ad, self.cat, self.surface, self.hour):
            nn.init.normal_(e.weight, std=0.01)

    def forward(self, x: dict[str, torch.Tensor], fm: torch.Tensor | None = None, hit: torch.Tensor | None = None,
                side: torch.Tensor | None = None) -> torch.Tensor:
        """Click logits (n,). ``fm`` (n, fm_dim) float and ``hit`` (n,) bool when ``fm_dim`` > 0;
        ``side`` (n, fm_side) float when ``fm_side`` > 0."""
        parts = [self.user(x["user"]), self.ad(x["ad"]), self.cat(x["cat"]), self.surface(x["surface"]),
                 self.hour(x["hour"])]
        if self.config.fm_dim:
            e = torch.where(hit[:, None], fm, self.fm_default.expand_as(fm))
            parts += [self.fm_proj(e), (~hit).float()[:, None]]
            if self.config.fm_side:
                parts.append(side)
        return self.mlp(torch.cat(parts, dim=-1)).squeeze(-1)


@dataclass(frozen=True)
class VMTraining:
    """How every variant is trained (identical across variants, so only the inputs differ)."""

    epochs: int = 2
    batch_size: int = 512
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0


@dataclass(frozen=True)
class FMInput:
    """What a VM reads from the FM for some rows: ``emb`` (n, d) float32, ``hit`` (n,) bool (False:
    the learned default replaces ``emb``) and ``side`` (n, k) float32 scalar columns."""

    emb: np.ndarray
    hit: np.ndarray
    side: np.ndarray

    def config(self) -> VMConfig:
        """The VM config that reads this input."""
        return VMConfig(fm_dim=self.emb.shape[1], fm_side=self.side.shape[1])

    def take(self, sel: np.ndarray) -> FMInput:
        """The rows ``sel`` (a mask or indices)."""
        return FMInput(self.emb[sel], self.hit[sel], self.side[sel])


def _tensors(x: dict[str, np.ndarray], fm: FMInput | None):
    xt = {k: torch.as_tensor(x[k]) for k in VM_KEYS}
    if fm is None:
        return xt, ()
    return xt, (torch.as_tensor(np.asarray(fm.emb, np.float32)), torch.as_tensor(np.asarray(fm.hit, bool)),
                torch.as_tensor(np.asarray(fm.side, np.float32)))


def train_vm(x: dict[str, np.ndarray], target: np.ndarray, fm: FMInput | None = None,
             training: VMTraining = VMTraining()) -> VerticalModel:
    """Fit a VM by binary cross-entropy against ``target`` in [0, 1] (clicks, or soft labels); it
    reads ``fm`` when given."""
    torch.manual_seed(training.seed)
    model = VerticalModel(VMConfig() if fm is None else fm.config())
    xt, ft = _tensors(x, fm)
    y = torch.as_tensor(np.asarray(target, np.float32))
    opt = torch.optim.AdamW(model.parameters(), lr=training.lr, weight_decay=training.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(training.seed)
    model.train()
    for _ in range(training.epochs):
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), training.batch_size):
            b = perm[i : i + training.batch_size]
            logit = model({k: v[b] for k, v in xt.items()}, *(t[b] for t in ft))
            loss = loss_fn(logit, y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


def predict_vm(model: VerticalModel, x: dict[str, np.ndarray], fm: FMInput | None = None,
               batch_size: int = 8192) -> np.ndarray:
    """Click probabilities (n,) float64."""
    xt, ft = _tensors(x, fm)
    n = len(xt["user"])
    out = []
    with torch.inference_mode():
        for i in range(0, n, batch_size):
            sl = slice(i, i + batch_size)
            out.append(torch.sigmoid(model({k: v[sl] for k, v in xt.items()}, *(t[sl] for t in ft))))
    return torch.cat(out).double().numpy() if out else np.zeros(0)
