"""Validate embedding shards and publish them as an immutable, versioned snapshot.

    <root>/<model>/snapshots/<snapshot_id>/part-*.parquet
    <root>/<model>/snapshots/<snapshot_id>/_index.bin        the pair index, built once here
    <root>/<model>/snapshots/<snapshot_id>/_manifest.json    (its presence marks a complete snapshot)
    <root>/<model>/CURRENT                                   {"snapshot_id", "manifest_sha256", "generation"}
    <root>/<model>/BAD                                       ids rolled back; never promoted again
    <root>/<model>/.lock                                     one writer at a time (local roots)

Write new, validate, flip a pointer. On a local root files are written under a temporary folder,
fsynced and renamed into place; on object stores (no rename) files go straight into the new folder
and the CURRENT write is the commit. Publish, rollback and gc each hold the model's writer lock
for their whole run, so gc never sees a live publisher's folder and two publishes never interleave;
right before CURRENT moves, the committed files are read back and checked against the manifest.
A process killed at any instant leaves CURRENT naming a complete, verified snapshot. Ids are
``<window end %Y%m%dT%H%MZ>-<content hash>``: they sort by time, republishing identical embeddings
is a no-op, and CURRENT never moves back to an older window (backfills keep their version).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from solaris_batch.errors import ConfigError, InputNotFound, SnapshotNotFound, ValidationFailed
from solaris_batch.snapshots.manifest import (
    BAD,
    CURRENT,
    DTYPE,
    ENCODING,
    FORMAT,
    INDEX,
    MANIFEST,
    Manifest,
    Pointer,
    checksums,
    parse_bad,
    verify_bytes,
)
from solaris_batch.snapshots.shards import (
    ShardMeta,
    decode_embeddings,
    has_shard_schema,
    list_shards,
)
from solaris_batch.storage import Root, safe_name
from solaris_batch.storage.staging import fetched
from solaris_batch.timeutil import stamp


@dataclass(frozen=True)
class PublishResult:
    snapshot_id: str
    path: str
    rows: int
    current: str
    created: bool
    drift: dict | None = None
    note: str = ""


def _read_shard(p: Path, dim: int) -> tuple[bytes, pa.Table]:
    """One shard's bytes and table, refused unless it has exactly the documented schema."""
    data = p.read_bytes()  # read once: hashed and decoded from the same bytes
    try:
        t = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as e:
        raise ValidationFailed(f"{p} is not readable Parquet ({str(e)[:100]}): re-run inference for it") from None
    if not has_shard_schema(t.schema, dim):
        raise ValidationFailed(f"{p} has schema {t.schema.remove_metadata()}, not the embedding shard schema for"
                               f" dim {dim} (user_id int64, ad_id int64, embedding fixed_size_binary[{2 * dim}],"
                               " logit float32)")
    nulls = {c: t.column(c).null_count for c in t.column_names if t.column(c).null_count}
    if nulls:
        raise ValidationFailed(f"{p} holds null values {nulls}: every row needs ids, an embedding and a logit;"
                               " CURRENT left untouched")
    return data, t


def validate_shards(emb_dir: Path | str, require_plan: bool = True) -> tuple[np.ndarray, dict]:
    """Run every publish gate over the shards in ``emb_dir``; return ``(keys, manifest body)``
    where ``keys`` holds every (user_id, ad_id) in file order.

    Gates: at least one shard, each named ``part-NNNNN.parquet`` with the documented schema; one
    checkpoint version, one plan and one width across shards; plan metadata present (unless
    ``require_plan=False``); every plan shard present; rows equal to the plan's pairs minus the
    failures shards list (``failed_pairs``); no nulls, NaN or Inf. ``emb_dir`` may be a URI.
    """
    with fetched(emb_dir) as local:
        return _validate_shards(local, emb_dir, require_plan)


def _validate_shards(emb_dir: Path, name: Path | str, require_plan: bool) -> tuple[np.ndarray, dict]:
    paths = list_shards(emb_dir)
    if not paths:
        raise InputNotFound(f"no embedding shards (part-*.parquet) in {name}: run 'solaris infer' first")
    metas = [ShardMeta.read(p) for p in paths]
    for key in ("checkpoint_version", "plan_fingerprint", "dim", "plan_at", "plan_pairs", "plan_shards"):
        values = {getattr(m, key) for m in metas}
        if len(values) > 1:
            raise ValidationFailed(f"shards in {name} mix {key} values {sorted(map(str, values))}:"
                                   " re-run inference for all shards")
    meta0 = metas[0]
    if require_plan and not all(m.has_plan for m in metas):
        raise ValidationFailed(f"shards in {name} lack plan metadata (plan_fingerprint, plan_pairs, plan_shards,"
                               " shard), so the row-count gates cannot run: write them from a plan, or pass"
                               " --no-plan to publish without those gates")
    dim = meta0.dim
    if meta0.plan_shards is not None:
        got = sorted(m.shard for m in metas if m.shard is not None)
        if got != sorted(meta0.plan_shards):
            missing = sorted(set(meta0.plan_shards) - set(got))
            raise ValidationFailed(f"embedding shards {missing or got} of the plan are missing or repeated in"
                                   f" {name}: infer them first")
    files, rows, norms, keys = [], 0, [], []
    for p in paths:
        data, t = _read_shard(p, dim)
        keys.append(np.stack([t.column("user_id").to_numpy(), t.column("ad_id").to_numpy()], axis=1))
        e = decode_embeddings(t.column("embedding"), dim).astype(np.float32)
        bad = int((~np.isfinite(e).all(1)).sum()) + int((~np.isfinite(t.column("logit").to_numpy())).sum())
        if bad:
            raise ValidationFailed(f"{p}: {bad} rows hold NaN/Inf embeddings or logits; CURRENT left untouched")
        norms.append(np.linalg.norm(e, axis=1))
        rows += t.num_rows
        files.append({"name": p.name, "rows": t.num_rows, "bytes": len(data), **checksums(data)})
    failed = sum(m.failed_pairs for m in metas)
    if meta0.plan_pairs is not None and rows + failed != meta0.plan_pairs:
        raise ValidationFailed(f"shards hold {rows} rows (+{failed} listed failures) but the plan has"
                               f" {meta0.plan_pairs} pairs: re-run inference")
    if rows == 0:
        raise ValidationFailed(f"shards in {name} hold no rows: nothing to publish; CURRENT left untouched")
    n = np.concatenate(norms)
    content = hashlib.sha256("".join(f["name"] + f["sha256"] for f in files).encode()).hexdigest()
    return np.concatenate(keys), {
        "format": FORMAT,
        "checkpoint_version": meta0.checkpoint_version,
        "plan_at": meta0.plan_at,
        "plan_fingerprint": meta0.plan_fingerprint,
        "rows": rows, "failed_pairs": failed, "dim": dim, "dtype": DTYPE, "encoding": ENCODING,
        "files": files,
        "stats": {"norm_mean": float(n.mean()), "norm_std": float(n.std()), "norm_min": float(n.min()),
                  "norm_max": float(n.max())},
        "content_hash": content,
    }


def write_index(keys: np.ndarray, path: Path) -> dict:
    """Build the serving ``PairIndex`` over ``keys`` and write its table (raw little-endian int64).
    Refuses repeated pairs: a lookup could only ever return one of their embeddings."""
    from solaris_batch.snapshots.index import PairIndex

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


def _root(root: str | Path | Root) -> Root:
    return root if isinstance(root, Root) else Root.open(root)


def snapshot_dir(model: str, snapshot_id: str) -> str:
    """The one place a snapshot's folder (relative to its root) is spelled."""
    return f"{_model(model)}/snapshots/{safe_name(snapshot_id, 'snapshot id')}"


def snapshot_time(snapshot_id: str) -> str:
    return snapshot_id.split("-")[0]


def read_pointer(root: str | Path | Root, model_name: str) -> Pointer | None:
    """The parsed CURRENT pointer, None when there is none; ``ValidationFailed`` when unreadable."""
    r, model = _root(root), _model(model_name)
    data = r.read_optional(f"{model}/{CURRENT}")
    return None if data is None else Pointer.parse(data, f"{r}/{model}/{CURRENT}")


def read_current(root: str | Path | Root, model_name: str) -> str | None:
    p = read_pointer(root, model_name)
    return p.snapshot_id if p else None


def read_bad(root: str | Path | Root, model_name: str) -> list[str]:
    r, model = _root(root), _model(model_name)
    return parse_bad(r.read_optional(f"{model}/{BAD}"), f"{r}/{model}/{BAD}")


def load_manifest(root: str | Path | Root, model_name: str, snapshot_id: str,
                  expect_sha256: str | None = None) -> Manifest:
    """The snapshot's validated manifest; ``expect_sha256`` (CURRENT's digest) when loading CURRENT."""
    r, model = _root(root), _model(model_name)
    data = r.read_optional(f"{snapshot_dir(model, snapshot_id)}/{MANIFEST}")
    if data is None:
        raise SnapshotNotFound(f"snapshot {snapshot_id} of model {model!r} has no manifest under {r}:"
                               " it does not exist or was not completely published")
    return Manifest.parse(data, model, snapshot_id, expect_sha256)


def read_manifest(root: str | Path | Root, model_name: str, snapshot_id: str) -> dict:
    """The validated manifest as its JSON object (for reports and ``snapshots show``)."""
    return load_manifest(root, model_name, snapshot_id).body


def list_snapshots(root: str | Path | Root, model_name: str) -> list[str]:
    """Complete snapshots (with a manifest), oldest first."""
    r = _root(root)
    base = f"{_model(model_name)}/snapshots"
    return [s for s in r.listdir(base) if not s.startswith(".") and r.exists(f"{base}/{s}/{MANIFEST}")]


def verify_files(r: Root, m: Manifest, verify: str = "fast") -> None:
    """Read every file of a committed snapshot back and check it against its manifest."""
    base = snapshot_dir(m.model_name, m.snapshot_id)
    for f in [*m.files, *([m.index] if m.index else [])]:
        rel = f"{base}/{getattr(f, 'name', INDEX)}"
        try:
            data = r.read_bytes(rel)
        except FileNotFoundError:
            raise ValidationFailed(f"{r}/{rel} is missing: the snapshot is incomplete") from None
        verify_bytes(data, f, verify, rel)


def _drift(r: Root, model: str, current: Pointer | None, manifest: dict) -> dict | None:
    if current is None or current.snapshot_id == manifest.get("snapshot_id"):
        return None
    try:
        prev = load_manifest(r, model, current.snapshot_id, current.manifest_sha256).body
    except (SnapshotNotFound, ValidationFailed):
        return None
    pm, nm = prev["stats"]["norm_mean"], manifest["stats"]["norm_mean"]
    return {"previous": current.snapshot_id, "rows_previous": prev["rows"],
            "rows_ratio": manifest["rows"] / max(prev["rows"], 1), "norm_mean_delta": nm - pm,
            "norm_mean_rel": (nm - pm) / pm if pm else None,
            "checkpoint_changed": prev["checkpoint_version"] != manifest["checkpoint_version"]}


def _complete(r: Root, model: str, snap_id: str) -> bool:
    """Whether ``snap_id`` is already published intact (a damaged copy is published again)."""
    if not r.exists(f"{snapshot_dir(model, snap_id)}/{MANIFEST}"):
        return False
    try:
        verify_files(r, load_manifest(r, model, snap_id))
    except ValidationFailed:
        return False
    return True


@dataclass(frozen=True)
class _Seen:
    """CURRENT as a writer found it: the raw bytes (for the compare-and-swap), the pointer when
    they parse, else why not (a writer may replace an unreadable CURRENT: that is the repair)."""

    raw: bytes | None
    pointer: Pointer | None
    problem: str = ""

    @classmethod
    def read(cls, r: Root, model: str) -> _Seen:
        raw = r.read_optional(f"{model}/{CURRENT}")
        try:
            return cls(raw, None if raw is None else Pointer.parse(raw, f"{r}/{model}/{CURRENT}"))
        except ValidationFailed as e:
            return cls(raw, None, str(e))


def _flip(r: Root, model: str, m: Manifest, seen: _Seen) -> None:
    """Point CURRENT at ``m``, a compare-and-swap against what the caller ``seen`` when it decided:
    under the writer lock nothing else can have moved it; on lockless object stores this narrows
    the race to the last read."""
    if r.read_optional(f"{model}/{CURRENT}") != seen.raw:
        raise ValidationFailed(f"CURRENT of {model!r} changed while this writer held it: another writer runs"
                               " without the lock; retry")
    verify_files(r, m)  # the committed files, read back right before they go live
    gen = seen.pointer.generation + 1 if seen.pointer else 1
    r.write_text(f"{model}/{CURRENT}", Pointer(m.snapshot_id, m.sha256, gen).encode())


def _schema_gate(r: Root, model: str, current: Pointer | None, body: dict) -> None:
    if current is None:
        return
    try:
        cur = load_manifest(r, model, current.snapshot_id, current.manifest_sha256)
    except (SnapshotNotFound, ValidationFailed):
        return  # a broken CURRENT must not block the publish that replaces it
    if (cur.dim, cur.dtype) != (body["dim"], body["dtype"]):
        raise ValidationFailed(f"the new snapshot has dim {body['dim']} {body['dtype']} but CURRENT {current.snapshot_id}"
                               f" has dim {cur.dim} {cur.dtype}: serving processes expect one width; pass"
                               " --allow-schema-change to publish it anyway")


def publish(emb_dir: Path | str, root: str | Path | Root, model_name: str, extra: dict | None = None, *,
            no_plan: bool = False, allow_schema_change: bool = False) -> PublishResult:
    """Validate ``emb_dir`` and publish it as a snapshot; flip CURRENT unless a newer one is live
    or this id was rolled back as bad.

    Args:
        no_plan: publish shards written without plan metadata (skips the row-count gates).
        allow_schema_change: allow a dim or dtype different from CURRENT's.
    """
    with fetched(emb_dir) as local:  # shards on an object store are read from a local copy
        return _publish(local, emb_dir, root, model_name, extra, no_plan, allow_schema_change)


def _publish(emb_dir: Path, name: Path | str, root: str | Path | Root, model_name: str, extra: dict | None, no_plan: bool,
             allow_schema_change: bool) -> PublishResult:
    r, model = _root(root), _model(model_name)
    keys, body = _validate_shards(emb_dir, name, require_plan=not no_plan)
    at = body["plan_at"]
    snap_id = f"{stamp(at) if at else '00000000T0000Z'}-{body['content_hash'][:8]}"
    body.update({"model_name": model, "snapshot_id": snap_id, **(extra or {})})
    final = snapshot_dir(model, snap_id)
    with tempfile.TemporaryDirectory() as td, r.lock(model):
        index_path = Path(td) / INDEX  # the lookup index, built once here, not per load
        body["index"] = write_index(keys, index_path)
        seen = _Seen.read(r, model)
        current = seen.pointer
        if not allow_schema_change:
            _schema_gate(r, model, current, body)
        body["drift"] = _drift(r, model, current, body)
        created = not _complete(r, model, snap_id)
        if created:
            tmp = r.new_dir(final)
            try:
                for f in body["files"]:
                    r.put_file(Path(emb_dir) / f["name"], f"{tmp}/{f['name']}")
                r.put_file(index_path, f"{tmp}/{INDEX}")
                r.write_text(f"{tmp}/{MANIFEST}", Manifest.encode(body))
                r.commit_dir(tmp, final)
            finally:
                if tmp != final:
                    r.delete_dir(tmp)
        m = load_manifest(r, model, snap_id)
        note = "" if created else "already published: no-op"
        live = current.snapshot_id if current else None
        if snap_id in read_bad(r, model):
            note = f"{snap_id} was rolled back as bad and is never promoted again; CURRENT stays {live}"
        elif live is None or snapshot_time(live) <= snapshot_time(snap_id):
            if live != snap_id or current.manifest_sha256 != m.sha256:
                _flip(r, model, m, seen)
                note = f"replaced an unreadable CURRENT ({seen.problem})" if seen.problem else note
            live = snap_id
        else:
            note = f"CURRENT stays on newer {live}"
    return PublishResult(snap_id, f"{r}/{final}", m.rows, live, created, m.body.get("drift"), note)


def rollback(root: str | Path | Root, model_name: str) -> tuple[str, str]:
    """Mark CURRENT bad and repoint CURRENT at the newest earlier good snapshot (verified first).
    Returns ``(bad_id, new_current)``."""
    r, model = _root(root), _model(model_name)
    with r.lock(model):
        seen = _Seen.read(r, model)
        current = seen.pointer
        if current is None:
            raise SnapshotNotFound(f"model {model!r} has no readable CURRENT snapshot under {r}"
                                   f"{f' ({seen.problem})' if seen.problem else ''}: nothing to roll back;"
                                   " publish a snapshot to replace it")
        bad = read_bad(r, model)
        target = rollback_target(r, model, current.snapshot_id, bad)
        if target is None:
            raise SnapshotNotFound(f"no earlier good snapshot of {model!r} than {current.snapshot_id}: cannot roll back")
        m = load_manifest(r, model, target)
        if current.snapshot_id not in bad:
            r.write_text(f"{model}/{BAD}", _bad_text(sorted(set(bad) | {current.snapshot_id})))
        _flip(r, model, m, seen)
    return current.snapshot_id, target


def _bad_text(ids: list[str]) -> str:
    import json

    return json.dumps(ids) + "\n"


def rollback_target(r: Root, model: str, current: str | None, bad: list[str] | None = None) -> str | None:
    """The snapshot a rollback from ``current`` would go to: newest earlier, complete, not bad."""
    bad = set(read_bad(r, model) if bad is None else bad)
    earlier = [s for s in list_snapshots(r, model) if s not in bad and s != current
               and (current is None or snapshot_time(s) <= snapshot_time(current))]
    return earlier[-1] if earlier else None


def gc(root: str | Path | Root, model_name: str, keep: int) -> list[str]:
    """Delete all but the ``keep`` newest good snapshots; never CURRENT or its rollback target.
    Also removes leftovers of interrupted publishes: under the writer lock no publisher is live,
    so every ``.tmp-*`` folder is one. Returns the deleted ids."""
    if keep < 1:
        raise ConfigError("gc --keep must be >= 1")
    r, model = _root(root), _model(model_name)
    with r.lock(model):
        current = read_current(r, model)
        bad = set(read_bad(r, model))
        snaps = list_snapshots(r, model)
        good = [s for s in snaps if s not in bad]
        protect = set(good[-keep:]) | {current, rollback_target(r, model, current, list(bad))}
        deleted = [s for s in snaps if s not in protect]
        for s in deleted:
            r.delete_dir(snapshot_dir(model, s))
        base = f"{model}/snapshots"
        if r.atomic_rename:  # object stores stage nothing outside the final folder
            for s in r.listdir(base):
                if s.startswith(".tmp-"):
                    r.delete_dir(f"{base}/{s}")
    return deleted
