"""Validate embedding shards and publish them as an immutable, versioned snapshot.

    <root>/<model>/snapshots/<snapshot_id>/part-*.parquet
    <root>/<model>/snapshots/<snapshot_id>/_manifest.json     (its presence marks a complete snapshot)
    <root>/<model>/CURRENT                                    the live snapshot id
    <root>/<model>/BAD                                        ids rolled back; never promoted again

Write new, validate, flip a pointer. On a local root files are written under a temporary folder,
fsynced and renamed into place before CURRENT is replaced (write temp + fsync + rename); on object
stores (no rename) files go straight into the new folder and the CURRENT write is the commit. A
process killed at any instant leaves CURRENT naming a complete, checksummed snapshot. Ids are
``<window end %Y%m%dT%H%MZ>-<content hash>``: they sort by time, republishing identical embeddings
is a no-op, and CURRENT never moves back to an older window (backfills keep their version).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from solaris_batch.errors import InputNotFound, SnapshotNotFound, ValidationFailed
from solaris_batch.snapshots.shards import decode_embeddings, list_shards, read_shard_meta
from solaris_batch.snapshots.storage import Root, safe_name
from solaris_batch.timeutil import stamp

MANIFEST = "_manifest.json"
INDEX = "_index.bin"
CURRENT = "CURRENT"
BAD = "BAD"
MANIFEST_FORMAT = 1
_PART = "part-{:05d}.parquet"


@dataclass(frozen=True)
class PublishResult:
    snapshot_id: str
    path: str
    rows: int
    current: str
    created: bool
    drift: dict | None = None
    note: str = ""


def checksums(data: bytes) -> dict:
    """``sha256`` (for full verification) and ``xxh3_128`` (fast, verified on every load)."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "xxh3_128": xxhash.xxh3_128_hexdigest(data)}


def validate_shards(emb_dir: Path) -> tuple[np.ndarray, dict]:
    """Run every publish gate over the shards in ``emb_dir``; return ``(keys, manifest body)``
    where ``keys`` holds every (user_id, ad_id) in file order.

    Gates: at least one shard; one checkpoint version, one plan and one width across shards;
    every plan shard present; rows equal to the plan's pairs minus failures the shards list
    explicitly (``failed_pairs`` metadata); no NaN/Inf embeddings or logits.
    """
    paths = list_shards(emb_dir)
    if not paths:
        raise InputNotFound(f"no embedding shards (part-*.parquet) in {emb_dir}: run 'solaris infer' first")
    metas = []
    for p in paths:
        m = read_shard_meta(p)
        if m is None or "checkpoint_version" not in m:
            raise ValidationFailed(f"{p} is not an embedding shard written by write_embedding_shard")
        metas.append(m)
    for key in ("checkpoint_version", "plan_fingerprint", "dim"):
        values = sorted({m.get(key) for m in metas})
        if len(values) > 1:
            raise ValidationFailed(f"shards in {emb_dir} mix {key} values {values}: re-run inference for all shards")
    meta0 = metas[0]
    dim = int(meta0["dim"])
    expected_shards = sorted(int(s) for s in meta0.get("plan_shards", "").split(",") if s)
    got_shards = sorted(int(m["shard"]) for m in metas if "shard" in m)
    if expected_shards and got_shards != expected_shards:
        missing = sorted(set(expected_shards) - set(got_shards))
        raise ValidationFailed(f"embedding shards {missing} of the plan are missing in {emb_dir}: infer them first")
    files, rows, norms, keys = [], 0, [], []
    for p in paths:
        data = p.read_bytes()  # read once: hashed and decoded from the same bytes
        t = pq.read_table(pa.BufferReader(data))
        keys.append(np.stack([t.column("user_id").to_numpy(), t.column("ad_id").to_numpy()], axis=1))
        width = t.schema.field("embedding").type.byte_width
        if width != 2 * dim:
            raise ValidationFailed(f"{p}: embedding width {width} bytes != 2 x dim {dim}")
        e = decode_embeddings(t.column("embedding"), dim).astype(np.float32)
        bad = int((~np.isfinite(e).all(1)).sum()) + int((~np.isfinite(t.column("logit").to_numpy())).sum())
        if bad:
            raise ValidationFailed(f"{p}: {bad} rows hold NaN/Inf embeddings or logits; CURRENT left untouched")
        norms.append(np.linalg.norm(e, axis=1))
        rows += t.num_rows
        files.append({"name": p.name, "rows": t.num_rows, "bytes": len(data), **checksums(data)})
    failed = sum(int(m.get("failed_pairs", 0)) for m in metas)
    plan_pairs = int(meta0.get("plan_pairs", rows + failed))
    if rows + failed != plan_pairs:
        raise ValidationFailed(f"shards hold {rows} rows (+{failed} listed failures) but the plan has {plan_pairs}"
                               " pairs: re-run inference")
    n = np.concatenate(norms) if norms else np.zeros(0)
    content = hashlib.sha256("".join(f["name"] + f["sha256"] for f in files).encode()).hexdigest()
    return np.concatenate(keys) if keys else np.zeros((0, 2), np.int64), {
        "format": MANIFEST_FORMAT,
        "checkpoint_version": meta0["checkpoint_version"],
        "plan_at": meta0.get("plan_at"),
        "plan_fingerprint": meta0.get("plan_fingerprint"),
        "rows": rows, "failed_pairs": failed, "dim": dim, "dtype": "float16", "encoding": "fixed_size_binary",
        "files": files,
        "stats": {"norm_mean": float(n.mean()) if len(n) else 0.0, "norm_std": float(n.std()) if len(n) else 0.0,
                  "norm_min": float(n.min()) if len(n) else 0.0, "norm_max": float(n.max()) if len(n) else 0.0},
        "content_hash": content,
    }


def write_index(keys: np.ndarray, path: Path) -> dict:
    """Build the serving ``PairIndex`` over ``keys`` and write its table (raw little-endian int64).
    Refuses repeated pairs: a lookup could only ever return one of their embeddings."""
    from solaris_batch.serving.index import PairIndex

    index = PairIndex(keys)
    dup = index.repeated()
    if len(dup):
        u, a = keys[dup[0]]
        raise ValidationFailed(f"{len(dup)} (user_id, ad_id) pairs appear more than once, e.g. ({u}, {a}):"
                               " the plan must hold distinct pairs; CURRENT left untouched")
    index.table.astype("<i8", copy=False).tofile(path)
    return {"name": INDEX, "format": PairIndex.FORMAT, "rows": len(keys), "mask": int(index.mask),
            "slots": len(index.table), "bytes": path.stat().st_size, **checksums(path.read_bytes())}


def _model(model_name: str) -> str:
    return safe_name(model_name, "model name")


def snapshot_time(snapshot_id: str) -> str:
    return snapshot_id.split("-")[0]


def read_current(root: str | Path | Root, model_name: str) -> str | None:
    r = root if isinstance(root, Root) else Root.open(root)
    text = r.read_text(f"{_model(model_name)}/{CURRENT}")
    return safe_name(text.strip(), "snapshot id in CURRENT") if text else None


def read_bad(r: Root, model_name: str) -> list[str]:
    text = r.read_text(f"{_model(model_name)}/{BAD}")
    return json.loads(text) if text else []


def read_manifest(root: str | Path | Root, model_name: str, snapshot_id: str) -> dict:
    r = root if isinstance(root, Root) else Root.open(root)
    rel = f"{_model(model_name)}/snapshots/{safe_name(snapshot_id, 'snapshot id')}/{MANIFEST}"
    text = r.read_text(rel)
    if text is None:
        raise SnapshotNotFound(f"snapshot {snapshot_id} of model {model_name!r} has no manifest under {r}:"
                               " it does not exist or was not completely published")
    m = json.loads(text)
    for f in m.get("files", []):
        safe_name(f.get("name", ""), "file name in manifest")
        if not f["name"].startswith("part-") or not f["name"].endswith(".parquet"):
            raise ValidationFailed(f"manifest of {snapshot_id} lists unexpected file {f['name']!r}")
    return m


def list_snapshots(root: str | Path | Root, model_name: str) -> list[str]:
    """Complete snapshots (with a manifest), oldest first."""
    r = root if isinstance(root, Root) else Root.open(root)
    base = f"{_model(model_name)}/snapshots"
    return [s for s in r.listdir(base) if not s.startswith(".") and r.exists(f"{base}/{s}/{MANIFEST}")]


def _drift(r: Root, model: str, current: str | None, manifest: dict) -> dict | None:
    if not current or current == manifest.get("snapshot_id"):
        return None
    try:
        prev = read_manifest(r, model, current)
    except SnapshotNotFound:
        return None
    pm, nm = prev["stats"]["norm_mean"], manifest["stats"]["norm_mean"]
    return {"previous": current, "rows_previous": prev["rows"], "rows_ratio": manifest["rows"] / max(prev["rows"], 1),
            "norm_mean_delta": nm - pm, "norm_mean_rel": (nm - pm) / pm if pm else None,
            "checkpoint_changed": prev["checkpoint_version"] != manifest["checkpoint_version"]}


def publish(emb_dir: Path, root: str | Path, model_name: str, extra: dict | None = None) -> PublishResult:
    """Validate ``emb_dir`` and publish it as a snapshot; flip CURRENT unless a newer one is live
    or this id was rolled back as bad."""
    r, model = Root.open(root), _model(model_name)
    keys, manifest = validate_shards(emb_dir)
    at = manifest["plan_at"]
    snap_id = f"{stamp(at) if at else '00000000T0000Z'}-{manifest['content_hash'][:8]}"
    current = read_current(r, model)
    manifest.update({"model_name": model, "snapshot_id": snap_id, **(extra or {})})
    manifest["drift"] = _drift(r, model, current, manifest)
    final = f"{model}/snapshots/{snap_id}"
    created = not r.exists(f"{final}/{MANIFEST}")
    if created:
        tmp = r.new_dir(final)
        try:
            for f in manifest["files"]:
                r.put_file(Path(emb_dir) / f["name"], f"{tmp}/{f['name']}")
            with tempfile.TemporaryDirectory() as td:  # the lookup index, built once here, not per load
                manifest["index"] = write_index(keys, Path(td) / INDEX)
                r.put_file(Path(td) / INDEX, f"{tmp}/{INDEX}")
            r.write_text(f"{tmp}/{MANIFEST}", json.dumps(manifest, indent=2) + "\n")
            r.commit_dir(tmp, final)
        finally:
            if tmp != final:
                r.delete_dir(tmp)
    note = "" if created else "already published: no-op"
    if snap_id in read_bad(r, model):
        note = f"{snap_id} was rolled back as bad and is never promoted again; CURRENT stays {current}"
    elif current is None or snapshot_time(current) <= snapshot_time(snap_id):
        if current != snap_id:
            r.write_text(f"{model}/{CURRENT}", snap_id + "\n")
        current = snap_id
    else:
        note = f"CURRENT stays on newer {current}"
    return PublishResult(snap_id, f"{r}/{final}", manifest["rows"], current, created, manifest["drift"], note)


def rollback(root: str | Path, model_name: str) -> tuple[str, str]:
    """Mark CURRENT bad and repoint CURRENT at the newest earlier good snapshot.
    Returns ``(bad_id, new_current)``."""
    r, model = Root.open(root), _model(model_name)
    current = read_current(r, model)
    if current is None:
        raise SnapshotNotFound(f"model {model!r} has no CURRENT snapshot under {r}: nothing to roll back")
    bad = read_bad(r, model)
    target = rollback_target(r, model, current, bad)
    if target is None:
        raise SnapshotNotFound(f"no earlier good snapshot of {model!r} than {current}: cannot roll back")
    if current not in bad:
        r.write_text(f"{model}/{BAD}", json.dumps(sorted(set(bad) | {current})) + "\n")
    r.write_text(f"{model}/{CURRENT}", target + "\n")
    return current, target


def rollback_target(r: Root, model: str, current: str | None, bad: list[str] | None = None) -> str | None:
    """The snapshot a rollback from ``current`` would go to: newest earlier, complete, not bad."""
    bad = set(read_bad(r, model) if bad is None else bad)
    earlier = [s for s in list_snapshots(r, model) if s not in bad and s != current
               and (current is None or snapshot_time(s) <= snapshot_time(current))]
    return earlier[-1] if earlier else None


def gc(root: str | Path, model_name: str, keep: int) -> list[str]:
    """Delete all but the ``keep`` newest good snapshots; never CURRENT or its rollback target.
    Also removes leftovers of interrupted publishes. Returns the deleted ids."""
    if keep < 1:
        from solaris_batch.errors import ConfigError

        raise ConfigError("gc --keep must be >= 1")
    r, model = Root.open(root), _model(model_name)
    current = read_current(r, model)
    bad = set(read_bad(r, model))
    snaps = list_snapshots(r, model)
    good = [s for s in snaps if s not in bad]
    protect = set(good[-keep:]) | {current, rollback_target(r, model, current, list(bad))}
    deleted = [s for s in snaps if s not in protect]
    for s in deleted:
        r.delete_dir(f"{model}/snapshots/{s}")
    base = f"{model}/snapshots"
    for s in r.listdir(base):
        if s.startswith(".tmp-"):
            r.delete_dir(f"{base}/{s}")
    return deleted
