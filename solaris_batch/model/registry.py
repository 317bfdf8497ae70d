"""FM checkpoint registration: train a new version and make it the one precompute runs load."""

from __future__ import annotations

from datetime import datetime

from solaris_batch.config import DEFAULT_LOOKBACK, Settings


def train_and_register(settings: Settings, until: datetime, window: str = DEFAULT_LOOKBACK, epochs: int = 1) -> dict:
    """Train the FM on ``[until - window, until)`` and atomically make it the checkpoint that later
    precompute runs load; every version is also kept under ``<model>.versions/<version>``."""
    import shutil
    import uuid

    from solaris_batch.model.train import train_fm
    from solaris_batch.storage import replace_dir

    target = settings.model_path
    staging = target.with_name(f".{target.name}.staging-{uuid.uuid4().hex[:8]}")
    r = train_fm(settings.logs_root, until, staging, window=window, epochs=epochs, model_class=settings.fm_class)
    versions = target.with_name(f"{target.name}.versions")
    versions.mkdir(parents=True, exist_ok=True)
    if not (versions / r.version).exists():
        shutil.copytree(staging, versions / r.version)
    replace_dir(staging, target)
    return {"version": r.version, "examples": r.examples, "val_auc": r.val_auc, "path": str(target)}
