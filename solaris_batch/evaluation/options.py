"""Knobs of ``solaris evaluate`` (CLI flags of the same names)."""

from __future__ import annotations

from dataclasses import dataclass, field

from solaris_batch.config import (
    DEFAULT_BUDGET,
    DEFAULT_BUDGETS,
    DEFAULT_FM_WINDOW,
    DEFAULT_HORIZON,
    DEFAULT_LOOKBACK,
)
from solaris_batch.errors import ConfigError
from solaris_batch.evaluation.vm import VMTraining
from solaris_batch.speculate.budget import Budget


@dataclass(frozen=True)
class EvalOptions:
    """Knobs of ``solaris evaluate`` (CLI flags of the same names)."""

    horizon: str = DEFAULT_HORIZON
    budget: str = DEFAULT_BUDGET
    """The budget whose numbers are the headline (``vm_solaris``, ``hit_rate``...)."""
    budgets: tuple[str, ...] = tuple(DEFAULT_BUDGETS.split(","))
    """The sweep for recovered gain vs hit rate (``budget`` is added if missing)."""
    train_windows: int = 4
    """Serving windows before T whose impressions train the VMs."""
    staleness_windows: int = 4
    """Windows after T that the test snapshot serves without refresh (clipped to the logs)."""
    lookback: str = DEFAULT_LOOKBACK
    fm_window: str = DEFAULT_FM_WINDOW
    fm_epochs: int = 1
    speculator: str = "train"
    """``train`` (fresh, on windows before the first serving window), ``latest``, ``heuristic`` or a folder."""
    distill_label_weight: float = 0.5
    """Distilled VM target: ``w * click + (1 - w) * sigmoid(FM logit)``."""
    device: str = "auto"
    online_requests: int = 200
    """Test requests timed through the FM one at a time (the online-FM cost)."""
    vm_training: VMTraining = field(default_factory=VMTraining)

    def check(self) -> None:
        """Raise ``ConfigError`` for knobs no evaluation can run with."""
        if self.train_windows < 1 or self.staleness_windows < 1:
            raise ConfigError("--train-windows and --staleness-windows must be >= 1")
        if not 0.0 <= self.distill_label_weight <= 1.0:
            raise ConfigError("--distill-label-weight must be in [0, 1]")

    def sweep(self) -> list[str]:
        """The budget sweep, ``budget`` included, once each, sorted by their number (``Nx`` by N, a count by itself)."""
        budgets = list(dict.fromkeys([*self.budgets, self.budget]))
        budgets.sort(key=lambda b: Budget.parse(b).multiple or float(Budget.parse(b).pairs))
        return budgets
