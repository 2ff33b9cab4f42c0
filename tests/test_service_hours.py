"""Service hours, Italian holidays, SLA arithmetic in service time, and the Italian hour texts."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from serving.routing_config import HolidaysConfig, TeamConfig
from serving.service_hours import HolidayCalendar, TeamHours, easter_sunday, format_italian_moment
from tests.routing_helpers import ROME, default_rules, rome


@pytest.fixture(scope="module")
def hours(taxonomy):
    return default_rules(taxonomy).team_hours


@pytest.mark.parametrize(
    ("year", "easter"),
    [(2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)), (2026, date(2026, 4, 5)), (2027, date(2027, 3, 28)),
     (2038, date(2038, 4, 25))],
)
def test_easter_sunday(year, easter):
    assert easter_sunday(year) == easter


def test_italian_national_holidays(taxonomy):
    calendar = HolidayCalendar(default_rules(taxonomy).config.holidays)
    assert calendar.holiday_name(date(2026, 4, 25)) == "Festa della Liberazione"
    assert calendar.holiday_name(date(2026, 4, 6)) == "Lunedì dell'Angelo"
    assert calendar.holiday_name(date(2026, 12, 26)) == "Santo Stefano"
    assert calendar.is_holiday(date(2026, 6, 2)) and not calendar.is_holiday(date(2026, 6, 3))
    # San Francesco is a national holiday again from 2026 only.
    assert calendar.is_holiday(date(2026, 10, 4)) and not calendar.is_holiday(date(2025, 10, 4))


def test_extra_closures_count_as_holidays():
    calendar = HolidayCalendar(HolidaysConfig(fixed=[], easter_sunday=False, easter_monday=False,
                                              extra=[date(2026, 6, 29)]))
    assert calendar.holiday_name(date(2026, 6, 29)) == "chiusura aziendale"
    assert not calendar.is_holiday(date(2026, 4, 5))


def test_open_intervals_include_the_start_and_exclude_the_end(hours):
    care = hours["customer_care"]
    assert care.is_open(rome("2026-03-10 08:00"))
    assert care.is_open(rome("2026-03-10 21:59"))
    assert not care.is_open(rome("2026-03-10 22:00"))
    assert not care.is_open(rome("2026-03-10 07:59"))


def test_lunch_break_and_next_opening(hours):
    hr = hours["risorse_umane"]
    assert not hr.is_open(rome("2026-03-10 13:30"))
    assert hr.next_opening(rome("2026-03-10 13:30")) == rome("2026-03-10 14:00")
    # Friday evening -> Monday morning
    assert hr.next_opening(rome("2026-03-13 18:00")) == rome("2026-03-16 09:00")


def test_holiday_closure_is_per_team(hours):
    christmas = rome("2026-12-25 11:00")
    assert not hours["customer_care"].is_open(christmas)
    assert hours["social_media"].is_open(christmas)  # not closed on holidays
    assert hours["direzione"].is_open(christmas)


def test_service_time_skips_closed_hours_breaks_and_holidays(hours):
    hr = hours["risorse_umane"]
    # 12:00 + 3 h: one hour before lunch, two after it.
    assert hr.add_service_time(rome("2026-03-10 12:00"), timedelta(hours=3)) == rome("2026-03-10 16:00")
    # Friday 24 April 16:00 + 2 h: one hour on Friday; Saturday 25 April is a holiday and a closed day anyway;
    # Monday 27 April opens at 9:00.
    assert hr.add_service_time(rome("2026-04-24 16:00"), timedelta(hours=2)) == rome("2026-04-27 10:00")
    # Starting before opening counts from the opening.
    assert hr.add_service_time(rome("2026-03-10 06:00"), timedelta(minutes=30)) == rome("2026-03-10 09:30")


def test_service_time_is_exact_across_daylight_saving_changes(hours):
    # On 2026-03-29 clocks jump from 02:00 to 03:00: one real hour after 01:30 is 03:30 local.
    always = hours["direzione"]
    assert always.add_service_time(rome("2026-03-29 01:30"), timedelta(hours=1)) == rome("2026-03-29 03:30")
    night_team = TeamHours("notte", TeamConfig(display_name="Notte", hours={"sun": ["00:00-24:00"]},
                                               closed_on_holidays=False), HolidayCalendar(HolidaysConfig()), ROME)
    # That Sunday has only 23 hours: 23 h of service time from midnight end at the next midnight.
    assert night_team.add_service_time(rome("2026-03-29 00:00"), timedelta(hours=23)) == rome("2026-03-30 00:00")


def test_a_team_that_never_opens_is_reported():
    # Open on Mondays only, and every Monday for more than a year is a company closure.
    mondays = [date(2026, 3, 16) + timedelta(weeks=week) for week in range(-1, 60)]
    calendar = HolidayCalendar(HolidaysConfig(fixed=[], extra=mondays))
    team = TeamHours("chiuso", TeamConfig(display_name="Chiuso", hours={"mon": ["09:00-10:00"]}), calendar, ROME)
    with pytest.raises(ValueError, match="'chiuso' is never open in the 400 days"):
        team.next_opening(rome("2026-03-10 12:00"))


def test_a_target_longer_than_the_horizon_of_open_time_is_reported():
    team = TeamHours("rara", TeamConfig(display_name="Rara", hours={"mon": ["09:00-09:30"]}),
                     HolidayCalendar(HolidaysConfig()), ROME)
    with pytest.raises(ValueError, match="'rara': 2 days, 0:00:00 of service time does not fit in the 400 days"):
        team.add_service_time(rome("2026-03-10 12:00"), timedelta(hours=48))


def test_hours_are_described_in_italian(hours):
    assert hours["customer_care"].describe() == "lun–sab 8:00–22:00, dom 9:00–18:00 (festivi esclusi)"
    assert hours["risorse_umane"].describe() == "lun–ven 9:00–13:00 e 14:00–17:00 (festivi esclusi)"
    assert hours["social_media"].describe() == "lun–ven 9:00–20:00, sab–dom 10:00–18:00"
    assert hours["direzione"].describe() == "24 ore su 24, tutti i giorni"


def test_moments_are_written_in_italian():
    now = rome("2026-03-10 23:00")
    assert format_italian_moment(rome("2026-03-10 23:30"), now) == "oggi alle 23:30"
    assert format_italian_moment(rome("2026-03-11 08:00"), now) == "domani alle 8:00"
    assert format_italian_moment(rome("2026-03-16 09:05"), now) == "lunedì 16 marzo alle 9:05"


def test_naive_datetimes_are_refused(hours):
    with pytest.raises(ValueError, match="no time zone"):
        hours["customer_care"].is_open(rome("2026-03-10 10:00").replace(tzinfo=None))
