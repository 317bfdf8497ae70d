"""FM checkpoint registration: train a new version and make it the one precompute runs load."""

from __future__ import annotations

from datetime import datetime

from solaris_batch.config import DEFAULT_LOOKBACK, Settings


def train_and_register(settings: Settings, until: datetime, window: str = DEFAULT_LOOKBACK, epochs: int = 1) -> dict:
    """Train the FM on ``[until - window, until)`` and atomically make it the checkpoint that later
    precompute runs load; every version is also kept under ``<model>.versions/<version>``.

    The model root may be a local folder (swapped whole) or an object-store URI (``config.json``,
    the mark of a complete checkpoint, is uploaded after the weights)."""
    import tempfile
    from pathlib import Path

    from solaris_batch.model.train import train_fm
    from solaris_batch.storage import Root

    target = str(settings.model_path).rstrip("/")
    with tempfile.TemporaryDirectory(prefix="solaris-fm-") as td:
        staging = Path(td) / "fm"
        r = train_fm(settings.logs_root, until, staging, window=window, epochs=epochs, model_class=settings.fm_class)
        versions = Root.open(f"{target}.versions")
        if not versions.exists(f"{r.version}/config.json"):
            versions.put_tree(staging, r.version, last=("config.json",))
        Root.open(target).put_tree(staging, last=("config.json",))
    return {"version": r.version, "examples": r.examples, "val_auc": r.val_auc, "path": target}
