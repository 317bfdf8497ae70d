"""UTC times, durations with ``m``/``h``/``d`` suffixes, and the ``Window`` unit of work."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from solaris_batch.errors import ConfigError

HOUR_US = 3_600_000_000
"""One hour in microseconds, the unit of log timestamps and of the hourly partitions."""

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str | timedelta) -> timedelta:
    """Parse ``90m``, ``24h``, ``7d`` (or ``30s``) into a timedelta."""
    if isinstance(text, timedelta):
        return text
    m = _DURATION.match(str(text))
    if not m or int(m.group(1)) == 0:
        raise ConfigError(f"bad duration {text!r}: use a positive number with m, h or d, e.g. 90m, 24h, 7d")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def format_duration(d: timedelta) -> str:
    """Shortest exact spelling of a duration: ``timedelta(hours=24)`` -> ``1d``."""
    s = int(d.total_seconds())
    for suffix, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s % size == 0:
            return f"{s // size}{suffix}"
    return f"{s}s"


def parse_time(text: str | datetime) -> datetime:
    """Parse an ISO time; naive values are taken as UTC. Returns an aware UTC datetime."""
    if isinstance(text, datetime):
        dt = text
    else:
        try:
            dt = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"bad time {text!r}: use ISO format, e.g. 2026-11-20T00:00 (UTC)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def stamp(t: datetime) -> str:
    """Compact sortable UTC stamp used in paths and ids: ``20261121T2300Z``."""
    return parse_time(t).strftime("%Y%m%dT%H%MZ")


def to_us(t: datetime) -> int:
    """Microseconds since the epoch (the unit of log timestamps)."""
    return int(round(parse_time(t).timestamp() * 1_000_000))


@dataclass(frozen=True)
class Window:
    """Half-open UTC time interval ``[start, end)``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", parse_time(self.start))
        object.__setattr__(self, "end", parse_time(self.end))
        if self.end <= self.start:
            raise ConfigError(f"empty window [{self.start}, {self.end}): end must be after start")

    @classmethod
    def before(cls, at: datetime, length: timedelta) -> Window:
        return cls(parse_time(at) - length, parse_time(at))

    @classmethod
    def after(cls, at: datetime, length: timedelta) -> Window:
        return cls(parse_time(at), parse_time(at) + length)

    def hours(self) -> list[datetime]:
        """Start of every hour that overlaps the window."""
        h = self.start.replace(minute=0, second=0, microsecond=0)
        out = []
        while h < self.end:
            out.append(h)
            h += timedelta(hours=1)
        return out

    def __str__(self) -> str:
        return f"[{self.start:%Y-%m-%dT%H:%MZ}, {self.end:%Y-%m-%dT%H:%MZ})"
