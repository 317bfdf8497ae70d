"""Validate embedding shards and publish them as an immutable, versioned snapshot.

    <root>/<model>/snapshots/<snapshot_id>/part-*.parquet
    <root>/<model>/snapshots/<snapshot_id>/_manifest.json
    <root>/<model>/CURRENT            -> the live snapshot id

Write new, validate, flip a pointer: files are copied under a temporary folder name, fsynced,
renamed into place, and only then is CURRENT replaced (write temp + fsync + rename). A process
killed at any instant leaves CURRENT naming a complete snapshot. Snapshot ids are
``<window end, %Y%m%dT%H%MZ>-<content hash>``: they sort by time, and republishing the same
embeddings is a no-op. CURRENT never moves back to an older window (backfills keep their version).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from solaris_batch.errors import InputNotFound, SnapshotNotFound, ValidationFailed
from solaris_batch.snapshots.shards import decode_embeddings, list_shards, read_shard_meta
from solaris_batch.timeutil import stamp

MANIFEST = "_manifest.json"
CURRENT = "CURRENT"
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class PublishResult:
    snapshot_id: str
    path: str
    rows: int
    current: str
    created: bool


def model_dir(root: str | Path, model_name: str) -> Path:
    return Path(root) / model_name


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durable(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def validate_shards(emb_dir: Path) -> dict:
    """Run every publish gate over the shards in ``emb_dir``; return the manifest body.

    Gates: at least one shard; one checkpoint version and one plan across shards; every plan shard
    present and the row total equal to the plan's pair count; one embedding width; no NaN/Inf.
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
    files, rows, norms = [], 0, []
    for p in paths:
        t = pq.read_table(p)
        if t.schema.field("embedding").type.byte_width != 2 * dim:
            raise ValidationFailed(f"{p}: embedding width {t.schema.field('embedding').type.byte_width} != 2*{dim}")
        e = decode_embeddings(t.column("embedding"), dim).astype(np.float32)
        bad = int((~np.isfinite(e).all(1)).sum()) + int((~np.isfinite(t.column("logit").to_numpy())).sum())
        if bad:
            raise ValidationFailed(f"{p}: {bad} rows hold NaN/Inf embeddings or logits; CURRENT left untouched")
        norms.append(np.linalg.norm(e, axis=1))
        rows += t.num_rows
        files.append({"name": p.name, "rows": t.num_rows, "bytes": p.stat().st_size, "sha256": _sha256(p)})
    plan_pairs = int(meta0.get("plan_pairs", rows))
    if rows != plan_pairs:
        raise ValidationFailed(f"shards hold {rows} rows but the plan has {plan_pairs} pairs: re-run inference")
    n = np.concatenate(norms) if norms else np.zeros(0)
    content = hashlib.sha256("".join(f["name"] + f["sha256"] for f in files).encode()).hexdigest()
    return {
        "format": MANIFEST_FORMAT,
        "checkpoint_version": meta0["checkpoint_version"],
        "plan_at": meta0.get("plan_at"),
        "plan_fingerprint": meta0.get("plan_fingerprint"),
        "rows": rows, "dim": dim, "dtype": "float16", "encoding": "fixed_size_binary",
        "files": files,
        "stats": {"norm_mean": float(n.mean()) if len(n) else 0.0, "norm_min": float(n.min()) if len(n) else 0.0,
                  "norm_max": float(n.max()) if len(n) else 0.0},
        "content_hash": content,
    }


def read_current(root: str | Path, model_name: str) -> str | None:
    p = model_dir(root, model_name) / CURRENT
    return p.read_text().strip() if p.exists() else None


def read_manifest(root: str | Path, model_name: str, snapshot_id: str) -> dict:
    p = model_dir(root, model_name) / "snapshots" / snapshot_id / MANIFEST
    if not p.exists():
        raise SnapshotNotFound(f"snapshot {snapshot_id} of model {model_name!r} has no manifest at {p}")
    return json.loads(p.read_text())


def publish(emb_dir: Path, root: str | Path, model_name: str, extra: dict | None = None) -> PublishResult:
    """Validate ``emb_dir`` and publish it as a snapshot; flip CURRENT unless a newer one is live."""
    manifest = validate_shards(emb_dir)
    at = manifest["plan_at"]
    snap_id = f"{stamp(at) if at else 'unknown'}-{manifest['content_hash'][:8]}"
    manifest.update({"model_name": model_name, "snapshot_id": snap_id, **(extra or {})})
    snaps = model_dir(root, model_name) / "snapshots"
    dest = snaps / snap_id
    created = not (dest / MANIFEST).exists()
    if created:
        snaps.mkdir(parents=True, exist_ok=True)
        tmp = snaps / f".tmp-{snap_id}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            for f in manifest["files"]:
                shutil.copyfile(Path(emb_dir) / f["name"], tmp / f["name"])
                with open(tmp / f["name"], "rb") as fh:
                    os.fsync(fh.fileno())
            _write_durable(tmp / MANIFEST, json.dumps(manifest, indent=2) + "\n")
            if dest.exists():  # leftover without a manifest: an interrupted earlier attempt
                shutil.rmtree(dest)
            os.replace(tmp, dest)
            _fsync_dir(snaps)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    current = read_current(root, model_name)
    if current is None or current.split("-")[0] <= snap_id.split("-")[0]:
        if current != snap_id:
            _write_durable(model_dir(root, model_name) / CURRENT, snap_id + "\n")
        current = snap_id
    return PublishResult(snap_id, str(dest), manifest["rows"], current, created)
