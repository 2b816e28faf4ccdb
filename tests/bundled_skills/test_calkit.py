"""skills/_lib/calkit.py on its own: the iCalendar reading, expansion and writing the
calendar skill relies on (edge cases that are slow to reach through a whole run)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "skills" / "_lib"))
import calkit

PARIS = ZoneInfo("Europe/Paris")


def cal(*lines: str) -> str:
    return "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", *lines, "END:VCALENDAR", ""])


def agenda(text: str, first: str, last: str, tz: dt.tzinfo = PARIS) -> list[tuple[str, str]]:
    start = dt.datetime.combine(dt.date.fromisoformat(first), dt.time(), tzinfo=tz)
    end = dt.datetime.combine(dt.date.fromisoformat(last), dt.time(), tzinfo=tz)
    rows = calkit.expand(calkit.read_events(text, floating=tz), start, end, tz)
    return [(str(r["start"]), str(r["summary"])) for r in rows]


def test_weekly_keeps_wall_time_across_dst() -> None:
    text = cal(
        "BEGIN:VEVENT",
        "UID:a",
        "DTSTART;TZID=Europe/Paris:20270320T090000",
        "DTEND;TZID=Europe/Paris:20270320T100000",
        "RRULE:FREQ=WEEKLY;COUNT=3",
        "SUMMARY:Yoga",
        "END:VEVENT",
    )
    assert agenda(text, "2027-03-01", "2027-04-30") == [
        ("2027-03-20T09:00:00+01:00", "Yoga"),
        ("2027-03-27T09:00:00+01:00", "Yoga"),
        ("2027-04-03T09:00:00+02:00", "Yoga"),  # summer time: still 09:00 local
    ]


def test_monthly_skips_months_without_the_day() -> None:
    text = cal(
        "BEGIN:VEVENT",
        "UID:m",
        "DTSTART;VALUE=DATE:20270131",
        "RRULE:FREQ=MONTHLY;UNTIL=20270531",
        "SUMMARY:Rent",
        "END:VEVENT",
    )
    assert agenda(text, "2027-01-01", "2027-12-31") == [
        ("2027-01-31", "Rent"),
        ("2027-03-31", "Rent"),
        ("2027-05-31", "Rent"),
    ]


def test_all_day_event_overlapping_the_range_start() -> None:
    text = cal(
        "BEGIN:VEVENT",
        "UID:t",
        "DTSTART;VALUE=DATE:20270101",
        "DTEND;VALUE=DATE:20270105",
        "SUMMARY:Trip",
        "END:VEVENT",
    )
    assert agenda(text, "2027-01-03", "2027-01-04") == [("2027-01-01", "Trip")]
    assert agenda(text, "2027-01-05", "2027-01-06") == []  # DTEND is exclusive


def test_duration_and_quoted_parameters() -> None:
    text = cal(
        "BEGIN:VEVENT",
        "UID:d",
        'DTSTART;TZID="America/New_York";X-NOTE="a:b;c":20270110T090000',
        "DURATION:PT1H30M",
        "SUMMARY:Call",
        "END:VEVENT",
    )
    [ev] = calkit.read_events(text)
    assert ev.start == dt.datetime(2027, 1, 10, 9, tzinfo=ZoneInfo("America/New_York"))
    assert ev.end - ev.start == dt.timedelta(hours=1, minutes=30)


def test_written_event_reads_back() -> None:
    summary = "Ünïcode, commas; semicolons\\ backslashes and a long line " + "x" * 120
    start = dt.datetime(2027, 2, 1, 14, 0, tzinfo=PARIS)
    uid, text = calkit.write_event(
        summary, start, start + dt.timedelta(minutes=30), location="Café\nfirst floor"
    )
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    [ev] = calkit.read_events(text)
    assert (ev.uid, ev.summary, ev.location) == (uid, summary, "Café\nfirst floor")
    assert ev.start == start and ev.end == start + dt.timedelta(minutes=30)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("BEGIN:VEVENT\r\nEND:VEVENT", "not an iCalendar file"),
        (cal("BEGIN:VEVENT", "SUMMARY:x", "END:VEVENT"), "has no DTSTART"),
        (cal("BEGIN:VEVENT", "DTSTART:tomorrow", "END:VEVENT"), "cannot read"),
        (cal("BEGIN:VEVENT", "DTSTART:20270101T000000Z", "DURATION:1h", "END:VEVENT"), "ISO"),
    ],
)
def test_bad_calendars(text: str, why: str) -> None:
    with pytest.raises(calkit.ICSError, match=why):
        calkit.read_events(text)
