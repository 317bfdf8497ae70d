from datetime import UTC, datetime, timedelta

import pytest

from solaris_batch.errors import ConfigError
from solaris_batch.timeutil import Window, format_duration, parse_duration, parse_time, stamp


@pytest.mark.parametrize("text,expected", [("90m", timedelta(minutes=90)), ("24h", timedelta(hours=24)),
                                           ("1440h", timedelta(days=60)), ("7d", timedelta(days=7))])
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "0h", "5", "1w", "-3h", "h"])
def test_parse_duration_rejects(bad):
    with pytest.raises(ConfigError):
        parse_duration(bad)


def test_format_duration_roundtrip():
    assert format_duration(timedelta(minutes=90)) == "90m"
    assert format_duration(timedelta(hours=24)) == "1d"
    assert format_duration(timedelta(hours=5)) == "5h"


def test_parse_time_is_utc():
    assert parse_time("2026-11-20T05:00") == datetime(2026, 11, 20, 5, tzinfo=UTC)
    assert parse_time("2026-11-20T06:00+01:00") == datetime(2026, 11, 20, 5, tzinfo=UTC)
    assert stamp("2026-11-20T05:00Z") == "20261120T0500Z"
    with pytest.raises(ConfigError):
        parse_time("yesterday")


def test_window_hours_cover_partial_hours():
    w = Window(datetime(2026, 11, 20, 1, 30, tzinfo=UTC), datetime(2026, 11, 20, 3, 0, tzinfo=UTC))
    assert [h.hour for h in w.hours()] == [1, 2]
    with pytest.raises(ConfigError):
        Window(w.end, w.start)
