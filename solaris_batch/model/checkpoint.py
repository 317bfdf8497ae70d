"""Checkpoint IO: ``<ckpt>/config.json`` + ``<ckpt>/weights.pt`` (a plain state dict).

Weights load with ``torch.load(weights_only=True)``: no pickled code ever runs. The checkpoint's
``version`` is the sha256 of ``weights.pt`` (first 16 hex), recorded in every embedding shard and
snapshot manifest so mixed versions are caught.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from solaris_batch.errors import CheckpointError
from solaris_batch.model.fm import FMConfig
from solaris_batch.storage import Root, atomic_path, write_json_atomic

FORMAT = 1
DEFAULT_CLASS = "solaris_batch.model.fm:SolarisFM"


@dataclass(frozen=True)
class LoadedModel:
    model: torch.nn.Module
    config: FMConfig
    version: str
    meta: dict


def _sha(path: Path) -> str:
    if not path.is_file():  # a FIFO or device would block or never end
        raise CheckpointError(f"{path} is not a regular file: restore the checkpoint or retrain")
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def save_checkpoint(model: torch.nn.Module, out: Path, meta: dict | None = None,
                    model_class: str = DEFAULT_CLASS) -> str:
    """Write weights then config (config last: its presence marks a complete checkpoint)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").unlink(missing_ok=True)
    with atomic_path(out / "weights.pt") as tmp:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    version = _sha(out / "weights.pt")
    body = {"format": FORMAT, "model_class": model_class, "config": model.config.to_dict(),
            "version": version, "meta": meta or {}}
    write_json_atomic(body, out / "config.json")
    return version


def resolve_class(dotted: str):
    """Import ``module:Class`` (the FM implementation named in config or a checkpoint) and check,
    before anything is called, that it is an ``nn.Module`` subclass implementing ``FMProtocol``
    (``encode_users`` and ``score``): a checkpoint cannot make us call an arbitrary function."""
    if not isinstance(dotted, str) or not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", dotted):
        raise CheckpointError(f"model class {dotted!r:.80} must be spelled package.module:Class")
    mod, _, name = dotted.partition(":")
    try:
        cls = getattr(importlib.import_module(mod), name)
    except (ImportError, AttributeError):
        raise CheckpointError(f"model class {dotted!r} cannot be imported: install the package that provides it") from None
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)
            and all(callable(getattr(cls, m, None)) for m in ("encode_users", "score"))):
        raise CheckpointError(f"model class {dotted!r} is not an FM: it must be a torch.nn.Module subclass with"
                              " encode_users() and score() (see solaris_batch.model.fm.FMProtocol)")
    return cls


def require_checkpoint(path: Path | str) -> None:
    """Refuse a folder or URI that holds no complete checkpoint (config.json and weights.pt)."""
    root = Root.open(path)
    if not (root.exists("config.json") and root.exists("weights.pt")):
        raise CheckpointError(
            f"no checkpoint at {path} (need config.json and weights.pt): train one with"
            f" 'solaris train-fm --out {path}' or pass --model"
        )


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load and verify a checkpoint; the model is returned in ``eval()`` mode on ``device``."""
    require_checkpoint(path)
    path = Path(path)
    cfg_path, w_path = path / "config.json", path / "weights.pt"
    try:
        body = json.loads(cfg_path.read_text())
        config = FMConfig.from_dict(body["config"])
    except (ValueError, KeyError, TypeError, RecursionError, OSError) as e:
        raise CheckpointError(f"checkpoint config {cfg_path} is unreadable ({e}): retrain or restore it") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {body.get('format')}, expected {FORMAT}")
    version = _sha(w_path)
    if body.get("version") != version:
        raise CheckpointError(
            f"checkpoint {path} is corrupt: weights.pt hash {version} != recorded {body.get('version')}"
            " (partial copy?): restore it or retrain"
        )
    try:
        state = torch.load(w_path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated/unsafe files
        raise CheckpointError(f"checkpoint weights {w_path} cannot be loaded safely: {e}") from None
    model_cls = resolve_class(body.get("model_class", DEFAULT_CLASS))  # checked before weights are trusted
    model = model_cls(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise CheckpointError(f"checkpoint {path} does not match its config: {first}") from None
    model.to(device).eval()
    return LoadedModel(model, config, version, body.get("meta", {}))
