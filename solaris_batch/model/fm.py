"""The reference foundation model: a target-aware sequence model.

A transformer encodes the user's recent engagement sequence once; each candidate ad attends to the
encoded sequence (cross attention) and an MLP turns ``[candidate, context, candidate*context,
user summary]`` into the interaction embedding (dimension ``emb_dim``) and a click logit.

The protocol any FM must follow (``FMProtocol``) is two calls, so that inference can encode each
user once and score all of that user's candidates in one batched step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import torch
from torch import nn


@dataclass(frozen=True)
class FMConfig:
    """Sizes of the reference FM. ``small`` suits CPU demos."""

    ad_buckets: int = 1 << 15
    cat_buckets: int = 1024
    d_model: int = 32
    n_heads: int = 2
    n_layers: int = 1
    ffn_mult: int = 2
    seq_len: int = 32
    emb_dim: int = 64
    dropout: float = 0.0

    @classmethod
    def preset(cls, name: str) -> FMConfig:
        presets = {
            "small": cls(),
            # ~82M parameters (67M of them in the hashed ad table): the GPU benchmark config.
            "large": cls(ad_buckets=1 << 17, cat_buckets=4096, d_model=512, n_heads=8, n_layers=4,
                         ffn_mult=4, seq_len=128, emb_dim=64),
        }
        if name not in presets:
            from solaris_batch.errors import ConfigError

            raise ConfigError(f"unknown FM preset {name!r}: choose one of {', '.join(presets)}")
        return presets[name]

    def to_dict(self) -> dict:
        return asdict(self)

    LIMITS = {"ad_buckets": (1, 1 << 30), "cat_buckets": (1, 1 << 24), "d_model": (1, 1 << 14), "n_heads": (1, 256),
              "n_layers": (1, 256), "ffn_mult": (1, 64), "seq_len": (1, 1 << 16), "emb_dim": (1, 1 << 14)}

    @classmethod
    def from_dict(cls, values: object) -> FMConfig:
        """A config read from storage: unknown keys, wrong types and out-of-range sizes are refused
        (``ValueError`` naming the key) before any tensor is allocated."""
        if not isinstance(values, dict):
            raise ValueError("config must be a JSON object")
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}")
        for k, v in values.items():
            if k == "dropout":
                if type(v) not in (int, float) or not 0.0 <= v < 1.0:
                    raise ValueError(f"dropout must be a number in [0, 1), got {v!r}")
            elif type(v) is not int or not cls.LIMITS[k][0] <= v <= cls.LIMITS[k][1]:
                raise ValueError(f"{k} must be an integer in {list(cls.LIMITS[k])}, got {v!r:.40}")
        cfg = cls(**values)
        if cfg.d_model % cfg.n_heads:
            raise ValueError(f"d_model {cfg.d_model} must be a multiple of n_heads {cfg.n_heads}")
        return cfg


class FMProtocol(Protocol):
    """What the inference runner needs from a foundation model (tensors in, tensors out)."""

    config: FMConfig

    def encode_users(self, ad: torch.Tensor, cat: torch.Tensor, event: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(U, L) int64 tokens -> (memory (U, L+1, D), padding mask (U, L+1) bool, True = pad)."""

    def score(self, memory: torch.Tensor, pad: torch.Tensor, user_index: torch.Tensor,
              cand_ad: torch.Tensor, cand_cat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Candidates (N,) of users ``user_index`` (N,) -> (embedding (N, emb_dim), logit (N,))."""


class SolarisFM(nn.Module):
    def __init__(self, config: FMConfig):
        super().__init__()
        self.config = c = config
        self.ad_emb = nn.Embedding(c.ad_buckets, c.d_model, padding_idx=0)
        self.cat_emb = nn.Embedding(c.cat_buckets, c.d_model, padding_idx=0)
        self.event_emb = nn.Embedding(3, c.d_model)
        self.pos_emb = nn.Embedding(c.seq_len + 1, c.d_model)
        self.cls = nn.Parameter(torch.zeros(1, 1, c.d_model))
        layer = nn.TransformerEncoderLayer(
            c.d_model, c.n_heads, c.d_model * c.ffn_mult, c.dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, c.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(c.d_model)
        self.cross = nn.MultiheadAttention(c.d_model, c.n_heads, dropout=c.dropout, batch_first=True)
        self.mlp = nn.Sequential(
            nn.Linear(4 * c.d_model, 2 * c.emb_dim), nn.GELU(), nn.Linear(2 * c.emb_dim, c.emb_dim)
        )
        self.head = nn.Linear(c.emb_dim, 1)
        nn.init.normal_(self.cls, std=0.02)

    def _ad_repr(self, ad: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
        return self.ad_emb(ad) + self.cat_emb(cat)

    def encode_users(self, ad, cat, event):
        L = self.config.seq_len
        ad, cat, event = ad[:, -L:], cat[:, -L:], event[:, -L:]
        x = self._ad_repr(ad, cat) + self.event_emb(event)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_emb.weight[: x.shape[1]].unsqueeze(0)
        pad = torch.cat([torch.zeros_like(event[:, :1], dtype=torch.bool), event == 0], dim=1)
        memory = self.norm(self.encoder(x, src_key_padding_mask=pad))
        return memory, pad

    def score(self, memory, pad, user_index, cand_ad, cand_cat):
        """Candidates are packed per user into a padded ``(U, Kmax, D)`` query block, so each
        user's encoded sequence is attended once by all of its candidates (never copied per pair).
        Attention queries are independent, so the result equals scoring each pair alone."""
        q = self._ad_repr(cand_ad, cand_cat)
        n, d = q.shape
        order = torch.argsort(user_index, stable=True)
        ui = user_index[order]
        counts = torch.bincount(ui, minlength=memory.shape[0])
        slot = torch.arange(n, device=q.device) - (torch.cumsum(counts, 0) - counts)[ui]
        block = q.new_zeros(memory.shape[0], int(counts.max()) if n else 0, d)
        block[ui, slot] = q[order]
        ctx_block, _ = self.cross(block, memory, memory, key_padding_mask=pad, need_weights=False)
        ctx = torch.empty_like(q)
        ctx[order] = ctx_block[ui, slot]
        emb = self.mlp(torch.cat([q, ctx, q * ctx, memory[user_index, 0]], dim=-1))
        return emb, self.head(emb).squeeze(-1)

    def forward(self, seq_ad, seq_cat, seq_event, cand_ad, cand_cat):
        """One candidate per sequence (training, and the naive per-pair reference path)."""
        memory, pad = self.encode_users(seq_ad, seq_cat, seq_event)
        idx = torch.arange(seq_ad.shape[0], device=seq_ad.device)
        return self.score(memory, pad, idx, cand_ad, cand_cat)
