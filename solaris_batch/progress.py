"""Progress bars that stay readable in Airflow task logs (not a TTY: one update every 10 s)."""

from __future__ import annotations

import sys


def bar(total: int | None, desc: str, unit: str, enabled: bool = True):
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, mininterval=0.2 if tty else 10.0,
                dynamic_ncols=tty, ascii=not tty)
