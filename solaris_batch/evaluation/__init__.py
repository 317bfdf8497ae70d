"""Knowledge-transfer evaluation: what the precomputed embeddings are worth to the online ranker.

One module per concern, composed by ``run.evaluate``:

* ``options``: the knobs (``EvalOptions``).
* ``split``: the strict time split around T and the rows of its windows.
* ``serve``: serving each window as production does (speculate, infer, publish, look up) and the
  features the VMs read from it.
* ``vm``: the vertical model; ``variants``: the VM variants compared, trained alike, and their scores.
* ``cost``: coverage and device-seconds of precompute vs running the FM online.
* ``report``: the typed ``Report`` and its renderings (``report.json``, ``report.md``, plots).
"""

from __future__ import annotations

import sys


def log(msg: str) -> None:
    """One progress line on stderr, prefixed ``evaluate:``."""
    print(f"evaluate: {msg}", file=sys.stderr, flush=True)


def rounded(v: float | None, nd: int = 6) -> float | None:
    """``v`` rounded to ``nd`` places as a Python float (None stays None): how report values are kept."""
    return None if v is None else round(float(v), nd)
