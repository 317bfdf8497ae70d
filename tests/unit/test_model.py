from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest
import torch

from solaris_batch.errors import CheckpointError
from solaris_batch.model.checkpoint import load_checkpoint, save_checkpoint
from solaris_batch.model.features import AdFeatures, Events, pack_lists, sequences_at
from solaris_batch.model.fm import FMConfig, SolarisFM
from tests.conftest import tiny_fm_config

TINY = tiny_fm_config()


def _naive_sequences(users, ts, ads, clicked, q_user, q_ts, L, lookback):
    out = []
    for qu, qt in zip(q_user, q_ts, strict=True):
        ev = sorted((t, a, c) for u, t, a, c in zip(users, ts, ads, clicked, strict=True)
                    if u == qu and qt - lookback <= t < qt)
        out.append(ev[-L:])
    return out


def test_sequences_at_matches_naive_reference():
    rng = np.random.default_rng(0)
    n = 300
    users, ts = rng.integers(0, 6, n), rng.integers(0, 1000, n)
    ads, clicked = rng.integers(100, 140, n), rng.random(n) < 0.3
    t = pa.table({"user_id": users, "ts": pa.array(ts, pa.timestamp("us", tz="UTC")), "ad_id": ads, "clicked": clicked})
    ev = Events.from_table(t)
    q_user, q_ts = rng.integers(0, 7, 40), rng.integers(0, 1100, 40)
    a, c, v = sequences_at(ev, q_user, q_ts, 5, 400)
    ref = _naive_sequences(users, ts, ads, clicked, q_user, q_ts, 5, 400)
    for i, r in enumerate(ref):
        assert v[i].sum() == len(r)
        got = list(zip(a[i][v[i]].tolist(), c[i][v[i]].tolist(), strict=True))
        assert got == [(x[1], bool(x[2])) for x in r]
        assert not v[i][: 5 - len(r)].any()  # right-aligned


def test_pack_lists_right_aligns_and_truncates():
    a, c, v = pack_lists(pa.array([[1, 2, 3], [], None, [4]]), pa.array([[True, False, True], [], None, [False]]), 2)
    assert a.tolist() == [[2, 3], [0, 0], [0, 0], [0, 4]]
    assert c.tolist() == [[False, True], [False, False], [False, False], [False, False]]
    assert v.tolist() == [[True, True], [False, False], [False, False], [False, True]]


def test_ad_features_unknown_is_zero():
    f = AdFeatures(np.array([30, 10]), np.array([5, None], dtype=object))
    assert f.category(np.array([10, 30, 99])).tolist() == [0, 6, 0]


def _tokens(seed, u, L):
    g = torch.Generator().manual_seed(seed)
    ad = torch.randint(1, TINY.ad_buckets, (u, L), generator=g)
    cat = torch.randint(1, TINY.cat_buckets, (u, L), generator=g)
    ev = torch.randint(1, 3, (u, L), generator=g)
    ev[0, :3] = 0  # padded start
    ev[1, :] = 0   # a user with no history at all
    return ad * (ev > 0), cat * (ev > 0), ev


def test_user_batched_scoring_equals_per_pair_forward():
    torch.manual_seed(0)
    m = SolarisFM(TINY).eval()
    ad, cat, ev = _tokens(1, 4, TINY.seq_len)
    user_index = torch.tensor([0, 0, 1, 2, 2, 2, 3])
    cand_ad = torch.randint(1, TINY.ad_buckets, (7,))
    cand_cat = torch.randint(1, TINY.cat_buckets, (7,))
    with torch.inference_mode():
        mem, pad = m.encode_users(ad, cat, ev)
        e_b, l_b = m.score(mem, pad, user_index, cand_ad, cand_cat)
        e_n, l_n = m(ad[user_index], cat[user_index], ev[user_index], cand_ad, cand_cat)
    assert torch.isfinite(e_b).all()
    assert (e_b - e_n).abs().max() <= 1e-5 and (l_b - l_n).abs().max() <= 1e-5


def test_checkpoint_roundtrip_and_refusals(tmp_path):
    m = SolarisFM(TINY)
    version = save_checkpoint(m, tmp_path / "ck", {"note": "t"})
    lm = load_checkpoint(tmp_path / "ck")
    assert lm.version == version and lm.config == TINY and not lm.model.training
    for k, v in m.state_dict().items():
        assert torch.equal(v, lm.model.state_dict()[k])
    with pytest.raises(CheckpointError, match="train-fm"):
        load_checkpoint(tmp_path / "missing")
    # corrupt weights: hash mismatch
    w = tmp_path / "ck" / "weights.pt"
    data = bytearray(w.read_bytes())
    data[len(data) // 2] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "ck")
    # weights that do not fit the config
    save_checkpoint(SolarisFM(replace(TINY, d_model=32)), tmp_path / "other")
    (tmp_path / "ck" / "weights.pt").write_bytes((tmp_path / "other" / "weights.pt").read_bytes())
    import json

    cfg = json.loads((tmp_path / "ck" / "config.json").read_text())
    cfg["version"] = json.loads((tmp_path / "other" / "config.json").read_text())["version"]
    (tmp_path / "ck" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="does not match its config"):
        load_checkpoint(tmp_path / "ck")



def test_checkpoint_class_and_config_are_checked_before_anything_runs(tmp_path, monkeypatch, capsys):
    import builtins
    import json
    import os

    ck = tmp_path / "ck"
    save_checkpoint(SolarisFM(FMConfig(ad_buckets=64, cat_buckets=8, d_model=8, seq_len=4, emb_dim=4)), ck)
    body = json.loads((ck / "config.json").read_text())
    called = []
    monkeypatch.setattr(builtins, "print", lambda *a, **k: called.append(a))
    for cls in ("builtins:print", "os:system", "collections:OrderedDict", "not a path", "x:y:z"):
        (ck / "config.json").write_text(json.dumps({**body, "model_class": cls}))
        with pytest.raises(CheckpointError):
            load_checkpoint(ck)
    assert called == []  # refused before being called
    monkeypatch.undo()
    for bad in ({"d_model": -8}, {"n_heads": 3}, {"seq_len": "4"}, {"dropout": 1.5}, {"emb_dim": 10**12},
                {"surprise": 1}, {"ad_buckets": True}):
        (ck / "config.json").write_text(json.dumps({**body, "config": {**body["config"], **bad}}))
        with pytest.raises(CheckpointError, match="unreadable"):
            load_checkpoint(ck)
    (ck / "config.json").write_text(json.dumps(body))
    (ck / "weights.pt").unlink()
    os.mkfifo(ck / "weights.pt")  # reading it would block forever
    with pytest.raises(CheckpointError, match="not a regular file"):
        load_checkpoint(ck)
