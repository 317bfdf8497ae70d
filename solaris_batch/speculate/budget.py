"""Compute budgets: an absolute pair count, or ``Nx`` of the recent distinct pairs."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from solaris_batch.errors import ConfigError

_MULT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*x\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Budget:
    """Either ``pairs`` (absolute) or ``multiple`` (times the distinct pairs seen in the last
    horizon-length window before T, which is known at T)."""

    pairs: int | None = None
    multiple: float | None = None

    @classmethod
    def parse(cls, text: str | int) -> Budget:
        s = str(text).strip()
        if s.isdigit() and int(s) > 0:
            return cls(pairs=int(s))
        m = _MULT.match(s)
        if m and float(m.group(1)) > 0:
            return cls(multiple=float(m.group(1)))
        raise ConfigError(f"bad budget {text!r}: use a pair count (e.g. 50000) or a multiple (e.g. 2x)")

    @classmethod
    def parse_list(cls, text: str | Iterable[str | int | Budget]) -> tuple[Budget, ...]:
        """Comma-separated budgets (``0.5x,1x,2x``), or an iterable of budgets or their texts."""
        items = text.split(",") if isinstance(text, str) else text
        return tuple(cls.parse(b) for b in items)

    @property
    def needs_recent_pairs(self) -> bool:
        return self.multiple is not None

    def resolve(self, recent_distinct_pairs: int = 0) -> int:
        """Pairs allowed in the plan."""
        if self.pairs is not None:
            return self.pairs
        n = math.floor(self.multiple * recent_distinct_pairs)
        if n < 1:
            raise ConfigError(
                f"budget {self} resolves to 0 pairs: no pairs in the last horizon before T; use an absolute budget"
            )
        return n

    def __str__(self) -> str:
        return str(self.pairs) if self.pairs is not None else f"{self.multiple:g}x"
