"""A believable ads marketplace that writes canonical request logs, deterministic per seed.

What it models, and why each part matters to SOLARIS:

* **Users** have heavy-tailed activity (log-normal request rates) with a daily cycle shifted per
  user, a latent taste vector, and category preferences derived from it.
* **Ads** belong to campaigns (hence advertisers and categories), have a popularity, a quality, and
  a lifetime: some are live at the start, others launch during the run, and many expire.
* **Candidates**: each request carries a few tens of final-stage candidates. Most come from the
  user's *interest pool* (ads retrieved for that user, with a skewed slot preference, refreshed as
  ads expire and interests churn), so (user, ad) pairs recur across requests as in real ranking;
  the rest are exploration drawn from all live ads by popularity.
* **Ground truth**: the click logit has an ad quality term, a saturating user x ad affinity, a
  *product of two partial affinities* (a second-order interaction a dot-product model cannot
  express), and a *session term* (the ad's category equals the user's last clicked category) that
  only a model reading the user's recent sequence can learn. The ranker orders candidates by the
  true logit plus noise; the top slots are impressed; clicks follow the true probability.

The ``feed`` regime (``SimConfig.regime``) is a news feed instead: items live a few hours and are
launched continuously; each request's candidates are drawn from every live item by popularity and
freshness (mostly within the user's tastes), and an item already delivered to a user is rarely a
candidate for them again. Each item reaches many users, and pairs rarely repeat. Users, the click
model and the ranker are the marketplace's. The default regime's draws are untouched, so its seeds
reproduce the same logs.

Everything is vectorized numpy: each hour is generated with a handful of array operations.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from solaris_batch import schemas
from solaris_batch.errors import ConfigError
from solaris_batch.logs.layout import write_partition
from solaris_batch.progress import bar as progress_bar
from solaris_batch.storage import write_table_atomic
from solaris_batch.timeutil import HOUR_US, parse_time, to_us

SURFACES = np.array(["feed", "stories", "marketplace"], dtype=object)
SURFACE_P = np.array([0.6, 0.3, 0.1])
SURFACE_SLOTS = np.array([4, 2, 3])
REGIMES = ("market", "feed")
FEED_LIFE_H = 4.0
"""Median item lifetime of the feed regime, hours (log-normal, sigma 0.5: most live 2-10 h)."""
FEED_DECAY_H = 3.0
"""e-folding time of a feed item's draw weight with its age, hours (news goes stale)."""
FEED_RESHOW = 0.05
"""Chance that an item already delivered to a user is kept as their candidate again."""


@dataclass(frozen=True)
class SimConfig:
    """Simulator knobs. Defaults give ~60k log rows per hour."""

    start: datetime
    hours: int
    users: int = 5000
    ads: int = 2000
    seed: int = 0
    categories: int = 32
    candidates: int = 30
    """Mean final-stage candidates per request."""
    requests_per_user_hour: float = 0.4
    """Mean requests per user per hour (before the daily cycle)."""
    explore: float = 0.15
    """Share of candidates drawn from all live ads rather than the user's interest pool."""
    pool: int = 48
    """Ads in each user's interest pool."""
    churn: float = 0.02
    """Per-hour probability that a pool slot is re-drawn (interest drift)."""
    latent_dim: int = 8
    regime: str = "market"
    """``market`` (ads with interest pools, pairs recur) or ``feed`` (short-lived items shown to many
    users, pairs rarely repeat; ``explore`` is then the share drawn outside the user's tastes)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", parse_time(self.start).replace(minute=0, second=0, microsecond=0))
        for name in ("hours", "users", "ads", "categories", "candidates", "pool", "latent_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"simulate: --{name} must be >= 1")
        if not 0 <= self.explore <= 1 or not 0 <= self.churn <= 1:
            raise ConfigError("simulate: explore and churn must be in [0, 1]")
        if self.regime not in REGIMES:
            raise ConfigError(f"simulate: --regime must be one of {', '.join(REGIMES)}, got {self.regime!r}")


def user_ids(n: int) -> np.ndarray:
    """Sparse, unique int64 user ids (a bijection of 1..n onto [0, 2^40))."""
    return ((np.arange(1, n + 1, dtype=np.int64) * 2654435761) % (1 << 40)).astype(np.int64)


def ad_ids(m: int) -> np.ndarray:
    """Sparse, unique int64 ad ids."""
    return 100_000 + np.arange(m, dtype=np.int64) * 7


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class _World:
    """Hidden state of the marketplace; only what is logged ever leaves it."""

    def __init__(self, cfg: SimConfig):
        self.cfg = cfg
        rng = self.rng = np.random.default_rng(cfg.seed)
        C, M, N, k = cfg.categories, cfg.ads, cfg.users, cfg.latent_dim
        cat_vec = rng.normal(size=(C, k))
        n_campaigns = max(1, M // 4)
        campaign_cat = rng.integers(0, C, n_campaigns)
        self.campaign_adv = rng.integers(0, max(1, n_campaigns // 3), n_campaigns)
        self.ad_campaign = rng.integers(0, n_campaigns, M)
        self.ad_cat = campaign_cat[self.ad_campaign].astype(np.int32)
        self.ad_vec = (0.8 * cat_vec[self.ad_cat] + rng.normal(scale=0.6, size=(M, k))).astype(np.float32)
        self.ad_quality = rng.normal(0.0, 0.4, M).astype(np.float32)
        self.ad_pop = rng.lognormal(0.0, 1.0, M)
        live_at_start = rng.random(M) < 0.6
        self.ad_start_h = np.where(live_at_start, -rng.uniform(0, 72, M), rng.uniform(0, cfg.hours, M))
        self.ad_end_h = self.ad_start_h + rng.lognormal(np.log(72.0), 0.7, M)

        self.user_vec = rng.normal(size=(N, k)).astype(np.float32)
        act = rng.lognormal(0.0, 1.1, N)
        self.activity = act * (cfg.requests_per_user_hour / act.mean())
        self.phase = rng.normal(0.0, 3.0, N)
        logits = self.user_vec @ cat_vec.T
        pref = np.exp(logits - logits.max(1, keepdims=True))
        self.cat_cum = np.cumsum(pref / pref.sum(1, keepdims=True), axis=1)
        slot_w = 1.0 / np.arange(1, cfg.pool + 1) ** 0.9
        self.slot_cum = np.cumsum(slot_w)
        self.last_click_cat = np.full(N, -1, dtype=np.int32)
        if cfg.regime == "feed":  # drawn after the marketplace's draws, which stay as they were
            self.ad_start_h = rng.uniform(-2 * FEED_LIFE_H, cfg.hours, M)
            self.ad_end_h = self.ad_start_h + rng.lognormal(np.log(FEED_LIFE_H), 0.5, M)
            self.delivered = np.empty(0, dtype=np.int64)  # user * ads + ad of every candidate so far
            return
        self.pool = np.zeros((N, cfg.pool), dtype=np.int64)
        live = self.live(0)
        users = np.repeat(np.arange(N), cfg.pool)
        self.pool[:] = self._draw_in_categories(self._draw_categories(users), live).reshape(N, cfg.pool)

    def live(self, h: int) -> np.ndarray:
        return (self.ad_start_h <= h) & (self.ad_end_h > h)

    def _draw_categories(self, users: np.ndarray) -> np.ndarray:
        out = np.empty(len(users), dtype=np.int32)
        u = self.rng.random(len(users))
        for lo in range(0, len(users), 1 << 16):  # bounded memory: chunk x categories booleans
            sl = slice(lo, lo + (1 << 16))
            out[sl] = (self.cat_cum[users[sl]] < u[sl, None]).sum(1)
        return np.minimum(out, self.cfg.categories - 1)

    def _draw_popular(self, n: int, candidates: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
        cum = np.cumsum((self.ad_pop if weight is None else weight)[candidates])
        return candidates[np.searchsorted(cum, self.rng.random(n) * cum[-1], side="right").clip(0, len(candidates) - 1)]

    def _draw_in_categories(self, cats: np.ndarray, live: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
        """One live ad per requested category, by ``weight`` (default popularity; any live ad if the
        category has none)."""
        out = np.empty(len(cats), dtype=np.int64)
        live_idx = np.flatnonzero(live)
        if len(live_idx) == 0:
            raise ConfigError("simulate: no live ads; raise --ads")
        order = np.argsort(cats, kind="stable")
        bounds = np.searchsorted(cats[order], np.arange(self.cfg.categories + 1))
        for c in range(self.cfg.categories):
            pos = order[bounds[c] : bounds[c + 1]]
            if len(pos):
                in_cat = live_idx[self.ad_cat[live_idx] == c]
                out[pos] = self._draw_popular(len(pos), in_cat if len(in_cat) else live_idx, weight)
        return out

    def hour(self, h: int, hour_start_us: int) -> pa.Table:
        cfg, rng = self.cfg, self.rng
        live = self.live(h)
        if cfg.regime == "market":
            # Expired ads leave the pools; a few slots churn. Replacements follow the user's tastes.
            dead = ~live[self.pool] | (rng.random(self.pool.shape) < cfg.churn)
            du, ds = np.nonzero(dead)
            if len(du):
                self.pool[du, ds] = self._draw_in_categories(self._draw_categories(du), live)

        hour_of_day = ((hour_start_us // HOUR_US) % 24 + self.phase) % 24
        rate = self.activity * (1.0 + 0.6 * np.sin(2 * np.pi * (hour_of_day - 8.0) / 24.0))
        n_req = rng.poisson(rate)
        req_user = np.repeat(np.arange(cfg.users), n_req)
        offset = rng.integers(0, HOUR_US, len(req_user))
        o = np.argsort(offset, kind="stable")
        req_user, offset = req_user[o], offset[o]
        R = len(req_user)
        surface = rng.choice(len(SURFACES), R, p=SURFACE_P)
        k = np.clip(rng.poisson(cfg.candidates, R), 5, 100)

        # Draw 1.6x the candidates (3x in a feed, where many draws are items already delivered and
        # dropped), drop repeated (request, ad) draws (a ranker scores an ad once per request), then
        # keep k distinct ones per request, chosen at random.
        row_req = np.repeat(np.arange(R), np.ceil((3.0 if cfg.regime == "feed" else 1.6) * k).astype(np.int64))
        row_user = req_user[row_req]
        if cfg.regime == "feed":
            ad = self._feed_draw(h, row_user, live)
            keep = self._not_delivered(row_user, ad)
            row_req, row_user, ad = row_req[keep], row_user[keep], ad[keep]
        else:
            ad = self._pool_draw(row_user, live)
        _, first = np.unique(row_req * cfg.ads + ad, return_index=True)
        row_req, row_user, ad = row_req[first], row_user[first], ad[first]
        o = np.argsort(row_req + rng.random(len(row_req)) * 0.999, kind="stable")
        row_req, row_user, ad = row_req[o], row_user[o], ad[o]
        keep = (np.arange(len(row_req)) - np.searchsorted(row_req, np.arange(R))[row_req]) < k[row_req]
        row_req, row_user, ad = row_req[keep], row_user[keep], ad[keep]
        if cfg.regime == "feed":
            row_req, row_user, ad = self._deliver(h, row_req, row_user, ad)
        return self._rank_and_log(hour_start_us, R, surface, offset, row_req, row_user, ad)

    def _pool_draw(self, row_user: np.ndarray, live: np.ndarray) -> np.ndarray:
        """Market candidates: a pool slot of the user (skewed to the first slots), or exploration."""
        cfg, rng = self.cfg, self.rng
        n = len(row_user)
        slot = np.searchsorted(self.slot_cum, rng.random(n) * self.slot_cum[-1], side="right")
        ad = self.pool[row_user, np.minimum(slot, cfg.pool - 1)]
        explore = rng.random(n) < cfg.explore
        ad[explore] = self._draw_popular(int(explore.sum()), np.flatnonzero(live))
        return ad

    def _feed_draw(self, h: int, row_user: np.ndarray, live: np.ndarray) -> np.ndarray:
        """Feed candidates: live items by popularity x freshness, within a category of the user's
        tastes except for an ``explore`` share drawn from all live items."""
        weight = self.ad_pop * np.exp(-np.maximum(h + 0.5 - self.ad_start_h, 0.0) / FEED_DECAY_H)
        ad = self._draw_in_categories(self._draw_categories(row_user), live, weight)
        explore = self.rng.random(len(row_user)) < self.cfg.explore
        ad[explore] = self._draw_popular(int(explore.sum()), np.flatnonzero(live), weight)
        return ad

    def _not_delivered(self, row_user: np.ndarray, ad: np.ndarray) -> np.ndarray:
        """Mask of the draws the user was not delivered before (and a ``FEED_RESHOW`` share of the rest)."""
        seen = np.isin(row_user * self.cfg.ads + ad, self.delivered)
        return ~seen | (self.rng.random(len(ad)) < FEED_RESHOW)

    def _deliver(self, h: int, row_req: np.ndarray, row_user: np.ndarray, ad: np.ndarray):
        """Drop an item already delivered to the user by an earlier request of this hour (but a
        ``FEED_RESHOW`` share), remember the hour's pairs, and forget items that have ended (which
        bounds the memory). Rows are in request (time) order; returns the rows kept."""
        keys = row_user * self.cfg.ads + ad
        _, first = np.unique(keys, return_index=True)
        keep = np.zeros(len(keys), dtype=bool)
        keep[first] = True
        keep |= self.rng.random(len(keys)) < FEED_RESHOW
        keys = np.union1d(self.delivered, keys)
        self.delivered = keys[self.ad_end_h[keys % self.cfg.ads] > h]
        return row_req[keep], row_user[keep], ad[keep]

    def _rank_and_log(self, hour_start_us: int, R: int, surface: np.ndarray, offset: np.ndarray,
                      row_req: np.ndarray, row_user: np.ndarray, ad: np.ndarray) -> pa.Table:
        """Rank each request's candidates by the noisy true logit, impress the top slots, draw clicks."""
        cfg, rng = self.cfg, self.rng
        u, a = self.user_vec[row_user], self.ad_vec[ad]
        half = cfg.latent_dim // 2
        aff = (u * a).sum(1)
        part1 = (u[:, :half] * a[:, :half]).sum(1)
        part2 = (u[:, half:] * a[:, half:]).sum(1)
        session = self.ad_cat[ad] == self.last_click_cat[row_user]
        logit = -5.6 + self.ad_quality[ad] + 0.8 * np.tanh(aff / 3.0) + 0.12 * part1 * part2 + 1.4 * session
        noisy = logit + rng.normal(0.0, 0.8, len(ad))
        # Rank candidates within each request by the noisy ranker score (best first).
        o = np.argsort(row_req + 0.999 * _sigmoid(-noisy), kind="stable")
        row_req, row_user, ad, logit = row_req[o], row_user[o], ad[o], logit[o]
        starts = np.searchsorted(row_req, np.arange(R))
        rank = np.arange(len(ad)) - starts[row_req]
        impressed = rank < SURFACE_SLOTS[surface[row_req]]
        clicked = impressed & (rng.random(len(ad)) < _sigmoid(logit))

        cu = row_user[clicked][::-1]
        last_users, last = np.unique(cu, return_index=True)
        self.last_click_cat[last_users] = self.ad_cat[ad[clicked][::-1][last]]

        request_id = ((hour_start_us // HOUR_US) << 24) + row_req
        return pa.table(
            {
                "request_id": pa.array(request_id, pa.int64()),
                "ts": pa.array(hour_start_us + offset[row_req], schemas.TS),
                "user_id": pa.array(user_ids(cfg.users)[row_user], pa.int64()),
                "ad_id": pa.array(ad_ids(cfg.ads)[ad], pa.int64()),
                "position": pa.array(rank.astype(np.int32), pa.int32(), mask=~impressed),
                "impressed": pa.array(impressed, pa.bool_()),
                "clicked": pa.array(clicked, pa.bool_()),
                "surface": pa.array(SURFACES[surface[row_req]], pa.string()),
            },
            schema=schemas.REQUEST_LOG,
        )

    def ads_table(self, start_us: int) -> pa.Table:
        M = self.cfg.ads
        return pa.table(
            {
                "ad_id": ad_ids(M),
                "campaign_id": 5_000_000 + self.ad_campaign.astype(np.int64),
                "advertiser_id": 9_000_000 + self.campaign_adv[self.ad_campaign].astype(np.int64),
                "category_id": self.ad_cat,
                "start_ts": pa.array(start_us + (self.ad_start_h * HOUR_US).astype(np.int64), schemas.TS),
                "end_ts": pa.array(start_us + (self.ad_end_h * HOUR_US).astype(np.int64), schemas.TS),
            },
            schema=schemas.ADS,
        )

    def users_table(self) -> pa.Table:
        N = self.cfg.users
        region = (np.argmax(self.user_vec[:, :4], axis=1) + 4 * (self.user_vec[:, 4] > 0)).astype(np.int32)
        age = self.rng.integers(0, 7, N).astype(np.int32)
        return pa.table({"user_id": user_ids(N), "region": region, "age_bucket": age}, schema=schemas.USERS)


@dataclass(frozen=True)
class SimStats:
    rows: int
    requests: int
    impressions: int
    clicks: int
    hours: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / max(self.seconds, 1e-9)


def simulate(cfg: SimConfig, out: Path, progress: bool = True) -> SimStats:
    """Write ``cfg.hours`` hour partitions plus the ads/users dimension tables under ``out``."""
    out = Path(out)
    world = _World(cfg)
    start_us = to_us(cfg.start)
    rows = reqs = imps = clicks = 0
    gen_s = 0.0
    bar = progress_bar(cfg.hours, "simulate", "h", progress)
    for h in range(cfg.hours):
        g = time.perf_counter()
        table = world.hour(h, start_us + h * HOUR_US)
        gen_s += time.perf_counter() - g
        write_partition(out, cfg.start + timedelta(hours=h), table)
        rows += table.num_rows
        reqs += len(np.unique(table.column("request_id").to_numpy()))
        imps += int(np.sum(table.column("impressed").to_numpy(zero_copy_only=False)))
        clicks += int(np.sum(table.column("clicked").to_numpy(zero_copy_only=False)))
        bar.update(1)
    bar.close()
    write_table_atomic(world.ads_table(start_us), out / "ads" / "ads.parquet")
    write_table_atomic(world.users_table(), out / "users" / "users.parquet")
    meta = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(cfg).items()}
    (out / "_simulator.json").write_text(json.dumps(meta, indent=2) + "\n")
    # rows/s counts generation only (the documented >= 1M rows/s target); writing is I/O.
    return SimStats(rows, reqs, imps, clicks, cfg.hours, gen_s)
