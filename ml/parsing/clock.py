"""Exporters' timestamps to aware datetimes, without per-message strptime.

WeChat exports write local wall-clock time ("2023-01-01 12:00:00") or epoch seconds. Local
times become epoch seconds through a cache of each hour's start (so DST stays right), and
epochs become datetimes with ``datetime.fromtimestamp``; both are cheap per message.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ml.parsing.errors import ParseError

# Zones without DST since WeChat exists, usable when the system has no tz database.
_FIXED_FALLBACK = {
    "Asia/Shanghai": 8,
    "Asia/Chongqing": 8,
    "Asia/Harbin": 8,
    "Asia/Urumqi": 6,
    "PRC": 8,
    "Asia/Hong_Kong": 8,
    "Asia/Macau": 8,
    "Asia/Taipei": 8,
    "Asia/Singapore": 8,
    "Asia/Kuala_Lumpur": 8,
    "Asia/Tokyo": 9,
    "Asia/Seoul": 9,
    "UTC": 0,
    "Etc/UTC": 0,
    "GMT": 0,
}
_OFFSET = re.compile(r"(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?")
_CACHE_MAX = 50_000


def resolve_tz(name: str) -> tzinfo:
    """A tz database name ("Asia/Shanghai") or a fixed offset ("+08:00", "UTC+8")."""
    offset = _OFFSET.fullmatch(name.strip())
    if offset:
        sign, hours, minutes = offset.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if delta > timedelta(hours=14):
            raise ParseError(f"time zone offset {name!r} is out of range")
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        if name in _FIXED_FALLBACK:
            return timezone(timedelta(hours=_FIXED_FALLBACK[name]))
        raise ParseError(
            f"unknown time zone {name!r}: give a tz database name such as Asia/Shanghai "
            "or an offset such as +08:00"
        ) from error


class Clock:
    """Converts local times and epochs to aware datetimes in one time zone."""

    __slots__ = ("hours", "tz")

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self.hours: dict[object, int] = {}

    def datetime(self, epoch: float) -> datetime:
        return datetime.fromtimestamp(epoch, self.tz)

    def epoch_iso(self, stamp: str) -> int:
        """Epoch of "YYYY-MM-DD HH:MM:SS" local time; ValueError if it is no real time."""
        base = self.hours.get(stamp[:13])
        if base is None:
            base = self.hour_start(stamp)
        minute, second = int(stamp[14:16]), int(stamp[17:19])
        if minute > 59 or second > 59:
            raise ValueError("minute or second out of range")
        return base + minute * 60 + second

    def hour_start(self, stamp: str) -> int:
        """Epoch of the hour of "YYYY-MM-DD HH..." local time, cached under stamp[:13]."""
        if stamp[4:5] != "-" or stamp[7:8] != "-" or stamp[10:11] not in (" ", "T"):
            raise ValueError(f"not a YYYY-MM-DD HH time: {stamp!r}")
        return self._hour_start(
            stamp[:13], int(stamp[0:4]), int(stamp[5:7]), int(stamp[8:10]), int(stamp[11:13])
        )

    def epoch_local(
        self, year: int, month: int, day: int, hour: int, minute: int, second: int
    ) -> int:
        """Epoch of a local wall-clock time; ValueError if it is no real time."""
        key = (year, month, day, hour)
        base = self.hours.get(key)
        if base is None:
            base = self._hour_start(key, year, month, day, hour)
        if not (0 <= minute < 60 and 0 <= second < 62):
            raise ValueError("minute or second out of range")
        return base + minute * 60 + min(second, 59)

    def second_pass(self, epoch: int) -> int | None:
        """The epoch of the second pass through the wall-clock time at ``epoch`` where a DST
        fall-back repeats it (``epoch`` being the first, as every local time is read here);
        None where that time happens once."""
        first = datetime.fromtimestamp(epoch, self.tz)
        if first.fold:
            return None
        second = int(first.replace(fold=1).timestamp())
        return second if second > epoch else None

    def _hour_start(self, key: object, year: int, month: int, day: int, hour: int) -> int:
        base = int(datetime(year, month, day, hour, tzinfo=self.tz).timestamp())
        if len(self.hours) >= _CACHE_MAX:
            self.hours.clear()
        self.hours[key] = base
        return base


SECOND_DELTAS = tuple(timedelta(seconds=second) for second in range(3600))
"""timedelta(seconds=n) for n < 3600, to step from an hour's datetime without fromtimestamp."""


def regular_hour(epoch: int, tz: tzinfo) -> datetime | None:
    """The datetime at ``epoch``, or None if the next hour holds a DST change or a fold.

    Inside a regular hour, ``start + SECOND_DELTAS[n]`` is the same aware datetime as
    ``fromtimestamp(epoch + n, tz)``, at a fraction of the cost.
    """
    start = datetime.fromtimestamp(epoch, tz)
    end = datetime.fromtimestamp(epoch + 3599, tz)
    if start.fold or end.fold or start.utcoffset() != end.utcoffset():
        return None
    return start


_TEXT_TIME = re.compile(
    r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?"
    r"(?:[ T]+(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?(?:[.,]\d+)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?"
)


# Epoch seconds whose datetime exists in every time zone (years 1 to 9999, a day inside).
_EPOCH_MIN = -62_135_596_800 + 86_400
_EPOCH_MAX = 253_402_300_799 - 86_400
# Larger epochs are milliseconds: in seconds they would be later than the year 5000.
_MILLIS_FROM = 100_000_000_000


def epoch_number(value: float) -> float | None:
    """Epoch seconds of a numeric timestamp in seconds or milliseconds (told apart by size),
    or None if it is NaN, infinite or outside the years a datetime can hold."""
    # Compared before any arithmetic: a huge int would overflow a float. NaN fails both.
    if not _EPOCH_MIN <= value <= _EPOCH_MAX * 1000:
        return None
    return value / 1000 if value > _MILLIS_FROM else value


def plain_epoch(text: str) -> int | None:
    """Whole epoch seconds of up to 15 ASCII digits (seconds or milliseconds, as
    `epoch_number`), None for any other text or a time out of range. The C CSV reader
    takes the same values itself."""
    if len(text) > 15 or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    if value > _EPOCH_MAX * 1000:
        return None
    return value // 1000 if value > _MILLIS_FROM else value


def _held(epoch: float) -> float | None:
    return epoch if _EPOCH_MIN <= epoch <= _EPOCH_MAX else None


def parse_time_text(clock: Clock, value: object) -> float | None:
    """Epoch seconds of a timestamp as exporters write it, or None if it is not one.

    Accepts epoch seconds or milliseconds (number or digits), local "2023-01-01 12:00:00" and
    its "/"-, "年月日"- and no-seconds variants, and ISO 8601 with an offset or "Z". Times
    outside the years 1 to 9999, NaN and infinities are not timestamps.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = epoch_number(value)
        return None if number is None else float(number)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return epoch_number(float(text))
    match = _TEXT_TIME.fullmatch(text)
    if match is None:
        try:
            return epoch_number(float(text))
        except ValueError:
            return None
    year, month, day, hour, minute, second, zone = match.groups()
    try:
        if zone:
            parsed = datetime.fromisoformat(
                f"{year}-{int(month):02d}-{int(day):02d}T{int(hour or 0):02d}:"
                f"{int(minute or 0):02d}:{int(second or 0):02d}"
                + ("+00:00" if zone == "Z" else zone)
            )
            return _held(parsed.astimezone(UTC).timestamp())
        return _held(
            clock.epoch_local(
                int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
            )
        )
    except (ValueError, OverflowError):
        return None
