"""Jira's timestamp formats and JQL date literals, evaluated in a user's time zone."""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Optional
from zoneinfo import ZoneInfo

MS_PER_MINUTE = 60_000
MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000


@lru_cache(maxsize=None)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=65536)
def _offset_at_hour(zone_name: str, hour_bucket: int) -> int:
    instant = datetime.fromtimestamp(hour_bucket * 3600, tz=timezone.utc)
    return int(instant.astimezone(zone(zone_name)).utcoffset().total_seconds())


@lru_cache(maxsize=65536)
def _steady_offset(zone_name: str, hour_bucket: int) -> Optional[int]:
    """The zone's offset during a whole UTC hour, or None when it changes inside that hour."""
    offset = _offset_at_hour(zone_name, hour_bucket)
    return offset if offset == _offset_at_hour(zone_name, hour_bucket + 1) else None


def offset_seconds(zone_name: str, epoch_ms: int) -> int:
    """UTC offset of a zone at an instant; one cached lookup per hour, exact around transitions."""
    offset = _steady_offset(zone_name, epoch_ms // MS_PER_HOUR)
    if offset is not None:
        return offset
    instant = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)  # a transition inside this hour
    return int(instant.astimezone(zone(zone_name)).utcoffset().total_seconds())


_MINUTES: dict[str, dict[int, tuple[str, str]]] = {}
_MINUTES_PER_ZONE = 500_000


def _minute_parts(zone_name: str, minute: int) -> tuple[str, str]:
    """("2026-11-06T04:30:", "-0800") for one minute in one zone, cached (timestamps cluster, so a pass over
    100 000 issues mostly hits the cache)."""
    cache = _MINUTES.setdefault(zone_name, {})
    if len(cache) >= _MINUTES_PER_ZONE:
        cache.clear()
    offset = _steady_offset(zone_name, minute // 60)
    if offset is None:  # an offset change inside this hour: this minute exactly
        offset = offset_seconds(zone_name, minute * MS_PER_MINUTE)
    parts = cache[minute] = _format_minute(minute, offset)
    return parts


def _format_minute(minute: int, offset: int) -> tuple[str, str]:
    local = time.gmtime(minute * 60 + offset)
    sign = "-" if offset < 0 else "+"
    return ("%04d-%02d-%02dT%02d:%02d:" % (local.tm_year, local.tm_mon, local.tm_mday, local.tm_hour, local.tm_min),
            "%s%02d%02d" % (sign, abs(offset) // 3600, abs(offset) % 3600 // 60))


def jira_datetime(epoch_ms: int, zone_name: str) -> str:
    """`2026-11-06T04:30:00.123-0800`: millisecond precision, numeric offset of the viewer's zone.

    Hot path (a page of 100 issues formats thousands of these): the minute's prefix and offset are cached.
    """
    minute, rest = divmod(epoch_ms, MS_PER_MINUTE)
    parts = _MINUTES.get(zone_name, {}).get(minute) or _minute_parts(zone_name, minute)
    return f"{parts[0]}{rest // 1000:02d}.{rest % 1000:03d}{parts[1]}"


def jira_date(epoch_ms: int, zone_name: str) -> str:
    """A date-only field value (`duedate`, date pickers): `2026-11-06` in the viewer's zone."""
    local = time.gmtime(epoch_ms // 1000 + offset_seconds(zone_name, epoch_ms))
    return "%04d-%02d-%02d" % (local.tm_year, local.tm_mon, local.tm_mday)


def utc_iso(epoch_ms: int) -> str:
    """`2022-05-17T11:25:59.072Z`: the form agile sprints use on Cloud."""
    t = time.gmtime(epoch_ms // 1000)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
        t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, epoch_ms % 1000)


def utc_plus0000(epoch_ms: int) -> str:
    """`2014-03-19T18:45:42.967+0000`: the form audit records use."""
    return jira_datetime(epoch_ms, "UTC")


def parse_jira_datetime(text: str) -> int:
    """Epoch ms from `2022-12-08T02:22:18.889-0800` (also accepts `Z` and `+00:00`)."""
    text = text.strip().replace("Z", "+0000")
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return int(datetime.strptime(text, fmt).timestamp() * 1000)
        except ValueError:
            continue
    return int(datetime.fromisoformat(text).timestamp() * 1000)


# --- JQL date values -------------------------------------------------------------------------------

_LITERAL = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:\s+(\d{1,2}):(\d{2}))?$")
_PERIOD_PART = re.compile(r"([+-]?)(\d+)\s*([wdhm])", re.I)
_PERIOD = re.compile(r"^\s*[+-]?\d+\s*[wdhm](\s*[+-]?\d+\s*[wdhm])*\s*$", re.I)
_UNIT_MS = {"w": 7 * MS_PER_DAY, "d": MS_PER_DAY, "h": MS_PER_HOUR, "m": MS_PER_MINUTE}


class BadDateValue(ValueError):
    pass


def jql_date_to_ms(value: str, zone_name: str, now_ms: int) -> int:
    """Resolve a JQL date value the way Jira does.

    - digits only: epoch milliseconds (no time-zone question at all);
    - `yyyy-MM-dd HH:mm`, `yyyy/MM/dd HH:mm`, `yyyy-MM-dd`, `yyyy/MM/dd`: wall time **in the calling
      user's time zone** (the `timeZone` of /myself), minute precision;
    - periods such as `-5m`, `-1d`, `4w 2d`: relative to now (sign applies to the whole period).
    """
    text = value.strip()
    if text.lstrip("-").isdigit() and not _PERIOD.match(text):
        return int(text)
    match = _LITERAL.match(text)
    if match:
        year, month, day, hour, minute = (int(g) if g else 0 for g in match.groups())
        try:
            local = datetime(year, month, day, hour, minute, tzinfo=zone(zone_name))
        except ValueError as exc:
            raise BadDateValue(value) from exc
        return int(local.timestamp() * 1000)
    if _PERIOD.match(text):
        total = 0
        negative = text.startswith("-")
        for _sign, amount, unit in _PERIOD_PART.findall(text):
            total += int(amount) * _UNIT_MS[unit.lower()]
        return now_ms - total if negative else now_ms + total
    raise BadDateValue(value)


def floor_minute(epoch_ms: int) -> int:
    return epoch_ms - epoch_ms % MS_PER_MINUTE


def rendered_datetime(epoch_ms: int, zone_name: str) -> str:
    """The `renderedFields` form of a date-time: `06/Nov/26 4:30 AM`."""
    local = datetime.fromtimestamp(epoch_ms / 1000, tz=zone(zone_name))
    return local.strftime("%d/%b/%y ") + local.strftime("%I:%M %p").lstrip("0")


def days(n: float) -> int:
    return int(timedelta(days=n).total_seconds() * 1000)
