"""A team's own FM: mean-pooled sequence + candidate MLP, following FMProtocol."""

from __future__ import annotations

import torch
from torch import nn


class MeanPoolFM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.emb = nn.Embedding(config.ad_buckets, config.emb_dim, padding_idx=0)
        self.head = nn.Linear(config.emb_dim, 1)

    def encode_users(self, ad, cat, event):
        ad = ad[:, -self.config.seq_len :]
        mask = (ad > 0).unsqueeze(-1)
        pooled = (self.emb(ad) * mask).sum(1) / mask.sum(1).clamp(min=1)
        return pooled.unsqueeze(1), torch.zeros(ad.shape[0], 1, dtype=torch.bool, device=ad.device)

    def score(self, memory, pad, user_index, cand_ad, cand_cat):
        e = memory[user_index, 0] * self.emb(cand_ad)
        return e, self.head(e).squeeze(-1)

    def forward(self, seq_ad, seq_cat, seq_event, cand_ad, cand_cat):
        m, p = self.encode_users(seq_ad, seq_cat, seq_event)
        return self.score(m, p, torch.arange(seq_ad.shape[0], device=seq_ad.device), cand_ad, cand_cat)
