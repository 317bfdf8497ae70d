"""Seeded corruption fuzzer for the serving trust boundary, run as a subprocess by
``test_snapshot_fuzz.py`` so that a crash (SIGSEGV, abort) is caught as a failure of one case.

Two snapshots are published once: A (values 1.0) and B (values 2.0, other users). Each case copies
that root, applies one corruption to B (or to CURRENT, BAD or the lookup inputs), then either opens
a store on CURRENT (B) or reloads a store that serves A. The contract checked for every case:

* the store answers **exactly** like a dict built independently from the published Parquet
  files (hit flags and embedding bytes) for the snapshot it says it serves, or
* the corruption is refused with a ``SolarisError`` (on open) / ``reload() is False`` (the old
  snapshot keeps answering exactly).

Re-signed index corruption (checksums forged to match a garbage ``_index.bin``) can only lose
hits, never serve a wrong row: every candidate row is verified against the query's ids. That kind
is checked for "no wrong hit" instead of exact equality (see ``SOFT_KINDS``).

Prints one JSON line: ``{"cases": N, "served": .., "refused": .., "by_kind": {...}, "failures": [...]}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import xxhash

from solaris_batch.errors import SolarisError
from solaris_batch.hashing import shard_of
from solaris_batch.serving import EmbeddingStore
from solaris_batch.snapshots.publish import publish, read_pointer
from solaris_batch.snapshots.shards import decode_embeddings
from tests.snapshot_fixtures import make_emb, resign

MODEL, DIM = "fm", 8
SOFT_KINDS = {"index_resigned"}
EXTREMES = [0, 1, -1, 2**31 - 1, 2**31, 2**32, 2**63 - 1, -(2**63), 2**64 - 1, 2**64, 10**30]


def reference(root: Path, sid: str) -> dict:
    """(user, ad) -> embedding bytes, read back with pyarrow alone."""
    t = pq.read_table(root / MODEL / "snapshots" / sid)
    u, a = t.column("user_id").to_numpy(), t.column("ad_id").to_numpy()
    e = decode_embeddings(t.column("embedding"), DIM)
    return {(int(x), int(y)): e[i].tobytes() for i, (x, y) in enumerate(zip(u, a, strict=True))}


def queries(ref: dict, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    keys = np.array(sorted(ref), dtype=np.int64)
    absent_u = rng.choice(np.array([-5, 0, 7, 10**12, 2**63 - 1, -(2**63)], np.int64), 40)
    absent_a = rng.integers(-(2**62), 2**62, 40)
    mix_u = np.r_[keys[:, 0], absent_u, keys[:7, 0]]
    mix_a = np.r_[keys[:, 1], absent_a, keys[:7, 1] + 1]
    p = rng.permutation(len(mix_u))
    user = keys[0, 0]
    own = keys[keys[:, 0] == user, 1]
    one_a = np.r_[own[::-1], own + 1000, [-(2**63), 2**63 - 1]]
    return [(mix_u[p], mix_a[p]), (np.full(len(one_a), user, np.int64), one_a), (keys[:1, 0], keys[:1, 1] + 3)]


def check(store: EmbeddingStore, refs: dict, qs, shard, soft: bool) -> str | None:
    """None when every answer matches the reference of the snapshot the store serves."""
    ref = refs.get(store.snapshot_id)
    if ref is None:
        return f"serves unknown snapshot {store.snapshot_id}"
    for u, a in qs:
        r = store.lookup(u, a)
        for i, (x, y) in enumerate(zip(u.tolist(), a.tolist(), strict=True)):
            want = ref.get((x, y))
            if want is not None and shard is not None and shard_of(np.array([x]), shard[1])[0] != shard[0]:
                want = None
            got = r.embeddings[i].tobytes() if r.hit[i] else None
            if got != want and not (soft and got is None):
                return f"pair ({x}, {y}): hit={bool(r.hit[i])}, expected hit={want is not None} or other bytes"
            if not r.hit[i] and r.embeddings[i].any():
                return f"pair ({x}, {y}): a miss is not zero-filled"
    return None


# --- corruptions: each takes (rng, root, sid_b) and changes files under root -------------------------
def _snap(root, sid):
    return root / MODEL / "snapshots" / sid


def _flip(data: bytes, rng) -> bytes:
    b = bytearray(data)
    how = rng.integers(4)
    if how == 0 and b:
        for _ in range(rng.integers(1, 4)):
            b[rng.integers(len(b))] ^= 1 << int(rng.integers(8))
    elif how == 1:
        b = b[: rng.integers(len(b) + 1)]
    elif how == 2:
        b[rng.integers(len(b) + 1):rng.integers(len(b) + 1)] = rng.bytes(int(rng.integers(1, 64)))
    else:
        b = bytearray(rng.bytes(int(rng.integers(0, 300))))
    return bytes(b)


def manifest_bytes(rng, root, sid):
    p = _snap(root, sid) / "_manifest.json"
    text = p.read_bytes()
    if rng.random() < 0.5:  # edit a number in place, keeping valid JSON
        digits = [i for i, c in enumerate(text) if chr(c).isdigit()]
        i = digits[rng.integers(len(digits))]
        p.write_bytes(text[:i] + str(rng.integers(10)).encode() + text[i + 1:])
    else:
        p.write_bytes(_flip(text, rng))


FIELD_PATHS = ["format", "snapshot_id", "model_name", "rows", "dim", "dtype", "encoding", "checkpoint_version",
               "plan_at", "files", "index", "content_hash", "failed_pairs"] + [
    f"files.{i}.{k}" for i in (0, 1) for k in ("name", "rows", "bytes", "sha256", "xxh3_128")] + [
    f"index.{k}" for k in ("name", "format", "rows", "mask", "slots", "bytes", "sha256", "xxh3_128")]


def _value(rng, old):
    choices = [*EXTREMES, None, "", "x", True, False, 1.5, [], {}, "part-00000.parquet", "../x", "2026-13-45",
               "lp1", "float32", "a" * 300]
    if isinstance(old, int) and not isinstance(old, bool):
        choices += [old + 1, old - 1, old * 2, old // 2, -old]
    if isinstance(old, str):
        choices += [old[:-1], old + "0", old.upper()]
    return choices[rng.integers(len(choices))]


def manifest_field_resigned(rng, root, sid):
    path = FIELD_PATHS[rng.integers(len(FIELD_PATHS))].split(".")

    def mutate(body):
        obj = body
        for k in path[:-1]:
            obj = obj[int(k)] if isinstance(obj, list) else obj[k]
        last = path[-1]
        if rng.random() < 0.15:
            obj.pop(last, None)
        else:
            obj[last] = _value(rng, obj.get(last))

    resign(root, MODEL, sid, mutate)


def manifest_unsigned_edit(rng, root, sid):
    """A hand edit through a JSON tool: valid JSON, digest not recomputed."""
    p = _snap(root, sid) / "_manifest.json"
    body = json.loads(p.read_text())
    key = ["rows", "dim", "index", "plan_at"][rng.integers(4)]
    if key == "index":
        body["index"]["mask"] = _value(rng, body["index"]["mask"])
    else:
        body[key] = _value(rng, body.get(key))
    p.write_text(json.dumps(body, indent=2))


def index_bytes(rng, root, sid):
    p = _snap(root, sid) / "_index.bin"
    p.write_bytes(_flip(p.read_bytes(), rng))


def index_resigned(rng, root, sid):
    """Garbage index entries whose checksums were forged into the manifest."""
    p = _snap(root, sid) / "_index.bin"
    t = np.fromfile(p, dtype="<i8")
    k = int(rng.integers(1, 20))
    pos = rng.integers(0, len(t), k)
    t[pos] = rng.choice(np.array([-1, 0, 2**31 - 1, 2**32 - 1, 2**63 - 1, -(2**63)], np.int64), k) if rng.random() < .5 \
        else rng.integers(-(2**63), 2**63 - 1, k, dtype=np.int64)
    if rng.random() < 0.3:
        t = np.r_[t, rng.integers(-1, 100, int(rng.integers(1, 50)))]
    data = t.astype("<i8").tobytes()
    p.write_bytes(data)

    def forge(body):
        body["index"].update(bytes=len(data), slots=len(t), sha256=hashlib.sha256(data).hexdigest(),
                             xxh3_128=xxhash.xxh3_128_hexdigest(data))

    resign(root, MODEL, sid, forge)


def part_bytes(rng, root, sid):
    files = sorted(_snap(root, sid).glob("part-*.parquet"))
    p = files[rng.integers(len(files))]
    if rng.random() < 0.2:
        p.unlink()
    else:
        p.write_bytes(_flip(p.read_bytes(), rng))


def current_bytes(rng, root, sid):
    p = root / MODEL / "CURRENT"
    body = json.loads(p.read_text())
    how = rng.integers(6)
    if how == 0:
        p.write_bytes(_flip(p.read_bytes(), rng))
    elif how == 1:
        body["manifest_sha256"] = hashlib.sha256(rng.bytes(8)).hexdigest()
        p.write_text(json.dumps(body))
    elif how == 2:
        body[["snapshot_id", "manifest_sha256", "generation"][rng.integers(3)]] = _value(rng, None)
        p.write_text(json.dumps(body))
    elif how == 3:
        body["snapshot_id"] = ["20261120T0300Z-deadbeef", sid + "x", "CURRENT", "."][rng.integers(4)]
        p.write_text(json.dumps(body))
    elif how == 4:
        p.write_bytes(b"\xff\xfe" + rng.bytes(int(rng.integers(0, 40))))
    else:
        p.unlink()


def bad_bytes(rng, root, sid):
    p = root / MODEL / "BAD"
    p.write_bytes([b"[\"x\"", b"{}", b"[1, 2]", b"\xff", b"[\"../x\"]", b"null", b"[" * 5000][rng.integers(7)])


KINDS = {"manifest_bytes": manifest_bytes, "manifest_field_resigned": manifest_field_resigned,
         "manifest_unsigned_edit": manifest_unsigned_edit, "index_bytes": index_bytes,
         "index_resigned": index_resigned, "part_bytes": part_bytes, "current_bytes": current_bytes,
         "bad_bytes": bad_bytes}


def lookup_inputs(rng, store: EmbeddingStore, refs, qs) -> str | None:
    """Random ids of every dtype and shape: refused with a SolarisError, or answered exactly."""
    keys = np.array(sorted(refs[store.snapshot_id]), dtype=np.int64)
    n = int(rng.integers(0, 6))
    candidates = [
        (keys[:n, 0].astype(np.float64) + 0.9, keys[:n, 1]), (np.array([np.nan] * n), keys[:n, 1]),
        (keys[:n, 0].astype(np.int32), keys[:n, 1].astype(np.int32)), (keys[:n, 0].astype(bool), keys[:n, 1]),
        (np.array([2**64 - 1] * n, dtype=np.uint64), keys[:n, 1]), (keys[:n, 0].astype(np.uint64), keys[:n, 1]),
        (keys[:n, 0].tolist(), keys[:n, 1].tolist()), ([str(x) for x in keys[:n, 0]], keys[:n, 1]),
        (keys[:n, 0], keys[: n + 1, 1]), (keys[:n, 0].reshape(-1, 1), keys[:n, 1].reshape(-1, 1)),
        (np.array(keys[:n, 0], dtype=object), keys[:n, 1]), ([], []), (keys[:n, 0][::-1], keys[:n, 1][::-1]),
        (np.asfortranarray(keys[:n]).T[0], keys[:n, 1]),
    ]
    u, a = candidates[rng.integers(len(candidates))]
    try:
        r = store.lookup(u, a)
    except SolarisError:
        return None
    ref = refs[store.snapshot_id]
    uu, aa = np.asarray(u), np.asarray(a)
    if uu.dtype.kind not in "iu" and len(uu) or aa.dtype.kind not in "iu" and len(aa):
        return f"accepted non-integer ids of dtype {uu.dtype}/{aa.dtype}"
    for i, (x, y) in enumerate(zip(uu.tolist(), aa.tolist(), strict=True)):
        want = ref.get((int(x), int(y)))
        if (r.embeddings[i].tobytes() if r.hit[i] else None) != want:
            return f"lookup of ({x}, {y}) ({uu.dtype}) differs from the reference"
    return None


def probe_direct(rng, keys: np.ndarray, emb: np.ndarray) -> str | None:
    """The compiled probe, called with a wrong mask and garbage tables that bypass every Python
    check: it must bounds-check each slot and row itself (defence in depth). Only verified rows
    may come back as hits."""
    from solaris_batch.snapshots import index as ix

    n = len(keys)
    good = ix.PairIndex(keys)
    table = good.table.copy()
    if rng.random() < 0.5:
        pos = rng.integers(0, len(table), int(rng.integers(1, 30)))
        table[pos] = rng.integers(-(2**63), 2**63 - 1, len(pos), dtype=np.int64)
    table = table[: int(rng.integers(1, len(table) + 1))] if rng.random() < 0.3 else table
    bad = ix.PairIndex.__new__(ix.PairIndex)
    bad.keys, bad.table, bad._win = keys, table, np.arange(ix.W, dtype=np.int64)
    masks = [2**64 - 1, 2**63, 2**63 - 1, 2**40 - 1, len(table) * 4 - 1, 0]
    bad.mask = np.uint64(masks[int(rng.integers(len(masks)))])
    u = np.r_[keys[:, 0], rng.integers(-(2**63), 2**63 - 1, 50, dtype=np.int64)]
    a = np.r_[keys[:, 1], rng.integers(-(2**63), 2**63 - 1, 50, dtype=np.int64)]
    hit, out, _ = bad.bind(emb)(u, a)
    rows = bad.find(u, a)
    for i in np.flatnonzero(hit | (rows >= 0)):
        r = int(rows[i])
        if r < 0 or r >= n or (keys[r] != (u[i], a[i])).any() or out[i].tobytes() != emb[r].tobytes():
            return f"probe with mask {int(bad.mask)} returned an unverified row for query {i}"
    seg = ix.UserSegments(keys)
    seg.segments = seg.segments.copy()
    g = rng.integers(0, len(seg.segments), 3)
    seg.segments[g, 2:] = rng.choice(np.array([-1, 0, n, n + 1, 2**62, -(2**62)], np.int64), (3, 2))
    seg.users.mask = bad.mask
    for user in keys[:: max(1, n // 10), 0]:
        res = seg.bind(emb)(np.full(6, user, np.int64), np.r_[keys[keys[:, 0] == user, 1][:3], [-1, 0, 2**62]])
        if res is None:
            continue
        h, o, _ = res
        for i in np.flatnonzero(h):
            ad = int(np.r_[keys[keys[:, 0] == user, 1][:3], [-1, 0, 2**62]][i])
            r = np.flatnonzero((keys[:, 0] == user) & (keys[:, 1] == ad))
            if not len(r) or o[i].tobytes() != emb[r[0]].tobytes():
                return f"one-user probe returned a wrong row for ({user}, {ad})"
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=2400)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    work = Path(tempfile.mkdtemp(prefix="solaris-fuzz-"))
    base = work / "base"
    publish(make_emb(work / "ea", 1, hour=1, users=tuple(range(10, 40)), ads_per_user=4, files=2, dim=DIM), base, MODEL)
    pa_ = read_pointer(base, MODEL)
    publish(make_emb(work / "eb", 2, hour=2, users=tuple(range(25, 70)), ads_per_user=3, files=2, dim=DIM), base, MODEL)
    pb = read_pointer(base, MODEL)
    refs = {pa_.snapshot_id: reference(base, pa_.snapshot_id), pb.snapshot_id: reference(base, pb.snapshot_id)}
    qs = {sid: queries(ref, rng) for sid, ref in refs.items()}
    all_q = qs[pa_.snapshot_id] + qs[pb.snapshot_id]
    summary = {"cases": 0, "served": 0, "refused": 0, "by_kind": {}, "failures": []}
    names = [*KINDS, "lookup_inputs", "probe_direct"]
    pk = np.array(sorted(refs[pb.snapshot_id]), dtype=np.int64)
    pe = np.stack([np.frombuffer(refs[pb.snapshot_id][tuple(k)], "<f2") for k in pk.tolist()])
    for case in range(a.cases):
        kind = names[case % len(names)]
        mode = "reload" if case % 3 == 0 else "open"
        shard = (int(rng.integers(2)), 2) if case % 7 == 0 else None
        verify = "full" if case % 5 == 0 else "fast"
        root = work / f"c{case}"
        shutil.copytree(base, root)
        print(f"case {case} {kind} {mode}", file=sys.stderr, flush=True)  # the last line names a crash
        outcome = "served"
        try:
            if kind == "probe_direct":
                err = probe_direct(rng, pk, pe)
            elif kind == "lookup_inputs":
                store = EmbeddingStore.open(root, MODEL)
                err = lookup_inputs(rng, store, refs, qs)
            else:
                store = None
                if mode == "reload":
                    (root / MODEL / "CURRENT").write_text(pa_.encode())
                    store = EmbeddingStore.open(root, MODEL, shard=shard, verify=verify)
                    (root / MODEL / "CURRENT").write_text(pb.encode())
                KINDS[kind](rng, root, pb.snapshot_id)
                if store is None:
                    try:
                        store = EmbeddingStore.open(root, MODEL, shard=shard, verify=verify)
                    except SolarisError:
                        outcome = "refused"
                else:
                    if not store.reload():
                        outcome = "refused"
                err = None if store is None else check(store, refs, all_q, shard, kind in SOFT_KINDS)
            if kind == "bad_bytes" or kind == "current_bytes":
                from solaris_batch.cli import main as cli

                with open(os.devnull, "w") as devnull:
                    so, se = sys.stdout, sys.stderr
                    sys.stdout = sys.stderr = devnull
                    try:
                        rc = cli(["snapshots", "list", "--root", str(root), "--model-name", MODEL])
                    finally:
                        sys.stdout, sys.stderr = so, se
                if rc not in (0, 2):
                    err = f"'solaris snapshots list' exited {rc}"
        except Exception:  # anything but a SolarisError on open is a failure of the contract
            err = "".join(traceback.format_exc().splitlines(True)[-3:])
        summary["cases"] += 1
        summary[outcome] += 1
        k = summary["by_kind"].setdefault(kind, {"served": 0, "refused": 0})
        k[outcome] += 1
        if err:
            summary["failures"].append({"case": case, "kind": kind, "mode": mode, "error": err})
        shutil.rmtree(root)
    shutil.rmtree(work)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
