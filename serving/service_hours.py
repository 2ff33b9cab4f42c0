"""Service hours of a team: open or closed at an instant, the next opening, SLA deadlines counted
in service time, and the hours written out in Italian for the out-of-hours auto-reply.

Arithmetic across intervals is done in UTC: Python subtracts two datetimes of the same zone as
naive wall-clock times, which is an hour off across a daylight-saving change.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from serving.routing_config import WEEKDAYS, HolidaysConfig, OpenInterval, TeamConfig

ITALIAN_WEEKDAYS_SHORT = ("lun", "mar", "mer", "gio", "ven", "sab", "dom")
ITALIAN_WEEKDAYS = ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica")
ITALIAN_MONTHS = (
    "gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno",
    "luglio", "agosto", "settembre", "ottobre", "novembre", "dicembre",
)
# A team with hours is open at least once a week; a year without any opening means a config that
# closes every open day (e.g. hours only on a holiday), which we refuse instead of looping forever.
SEARCH_HORIZON_DAYS = 400


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm, Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7  # noqa: E741 - the algorithm's own name
    m = (a + 11 * h + 22 * l) // 451
    month, day = divmod(h + l - 7 * m + 114, 31)
    return date(year, month, day + 1)


class HolidayCalendar:
    """The holidays of `holidays` in the config, year by year."""

    def __init__(self, config: HolidaysConfig):
        self._config = config
        self._by_year: dict[int, dict[date, str]] = {}

    def holiday_name(self, day: date) -> str | None:
        return self._holidays_of(day.year).get(day)

    def is_holiday(self, day: date) -> bool:
        return self.holiday_name(day) is not None

    def _holidays_of(self, year: int) -> dict[date, str]:
        if year not in self._by_year:
            self._by_year[year] = self._compute_year(year)
        return self._by_year[year]

    def _compute_year(self, year: int) -> dict[date, str]:
        days: dict[date, str] = {}
        for holiday in self._config.fixed:
            if holiday.since is not None and year < holiday.since:
                continue
            month, day = (int(part) for part in holiday.date.split("-"))
            if month == 2 and day == 29 and not _is_leap(year):
                continue
            days[date(year, month, day)] = holiday.name
        easter = easter_sunday(year)
        if self._config.easter_sunday:
            days[easter] = "Pasqua"
        if self._config.easter_monday:
            days[easter + timedelta(days=1)] = "Lunedì dell'Angelo"
        for extra in self._config.extra:
            if extra.year == year:
                days.setdefault(extra, "chiusura aziendale")
        return days


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


class TeamHours:
    """When one team is staffed, in the config's time zone."""

    def __init__(self, team_id: str, team: TeamConfig, holidays: HolidayCalendar, zone: ZoneInfo):
        self.team_id = team_id
        self.display_name = team.display_name
        self.always_open = team.always_open
        self._team = team
        self._holidays = holidays
        self._zone = zone

    def is_open(self, at: datetime) -> bool:
        _require_aware(at)
        if self.always_open:
            return True
        local = at.astimezone(self._zone)
        for start, end in self._intervals_of(local.date()):
            if start <= at < end:
                return True
        return False

    def next_opening(self, at: datetime) -> datetime:
        """`at` itself when open, else the start of the next open interval (in the local zone)."""
        _require_aware(at)
        if self.always_open or self.is_open(at):
            return at.astimezone(self._zone)
        for start, _ in self._open_intervals_from(at):
            return start.astimezone(self._zone)
        raise ValueError(
            f"team {self.team_id!r} is never open in the {SEARCH_HORIZON_DAYS} days after {at.isoformat()}: "
            "check its hours and holidays"
        )

    def add_service_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant when `duration` of open time has passed since `start`."""
        _require_aware(start)
        if self.always_open:
            return (start.astimezone(timezone.utc) + duration).astimezone(self._zone)
        remaining = duration
        for interval_start, interval_end in self._open_intervals_from(start):
            available = interval_end.astimezone(timezone.utc) - interval_start.astimezone(timezone.utc)
            if remaining <= available:
                return (interval_start.astimezone(timezone.utc) + remaining).astimezone(self._zone)
            remaining -= available
        raise ValueError(
            f"team {self.team_id!r}: {duration} of service time does not fit in the {SEARCH_HORIZON_DAYS} days "
            f"after {start.isoformat()}; its hours are too few for this SLA target"
        )

    def describe(self) -> str:
        """Italian text of the weekly hours, e.g. 'lun–ven 9:00–18:00, sab 9:00–13:00 (festivi esclusi)'."""
        if self.always_open:
            return "24 ore su 24, tutti i giorni"
        groups: list[tuple[int, int, str]] = []
        for index, day in enumerate(WEEKDAYS):
            intervals = sorted(self._team.hours.get(day, []), key=OpenInterval.start_minutes)
            text = " e ".join(interval.label() for interval in intervals)
            if groups and groups[-1][2] == text and groups[-1][1] == index - 1:
                groups[-1] = (groups[-1][0], index, text)
            else:
                groups.append((index, index, text))
        parts = []
        for first, last, text in groups:
            if not text:
                continue
            days = ITALIAN_WEEKDAYS_SHORT[first] if first == last else (
                f"{ITALIAN_WEEKDAYS_SHORT[first]}–{ITALIAN_WEEKDAYS_SHORT[last]}"
            )
            parts.append(f"{days} {text}")
        suffix = " (festivi esclusi)" if self._team.closed_on_holidays else ""
        return ", ".join(parts) + suffix

    def _intervals_of(self, day: date) -> list[tuple[datetime, datetime]]:
        if self._team.closed_on_holidays and self._holidays.is_holiday(day):
            return []
        intervals = []
        for interval in self._team.hours.get(WEEKDAYS[day.weekday()], []):
            start = datetime.combine(day, interval.start, tzinfo=self._zone)
            end = (
                datetime.combine(day + timedelta(days=1), time(0), tzinfo=self._zone)
                if interval.end is None else datetime.combine(day, interval.end, tzinfo=self._zone)
            )
            intervals.append((start, end))
        return sorted(intervals)

    def _open_intervals_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals that end after `at`, the first one clipped to start at `at`, up to the horizon."""
        day = at.astimezone(self._zone).date()
        for offset in range(SEARCH_HORIZON_DAYS):
            for start, end in self._intervals_of(day + timedelta(days=offset)):
                if end <= at:
                    continue
                yield (max(start, at.astimezone(self._zone)), end)


def format_italian_moment(moment: datetime, now: datetime) -> str:
    """'oggi alle 14:30', 'domani alle 8:00' or 'lunedì 6 aprile alle 9:00', in the moment's zone."""
    local_now = now.astimezone(moment.tzinfo)
    clock = f"{moment.hour}:{moment.minute:02d}"
    days_ahead = (moment.date() - local_now.date()).days
    if days_ahead == 0:
        return f"oggi alle {clock}"
    if days_ahead == 1:
        return f"domani alle {clock}"
    weekday = ITALIAN_WEEKDAYS[moment.weekday()]
    return f"{weekday} {moment.day} {ITALIAN_MONTHS[moment.month - 1]} alle {clock}"


def _require_aware(moment: datetime) -> None:
    if moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone: service hours need an aware datetime")
