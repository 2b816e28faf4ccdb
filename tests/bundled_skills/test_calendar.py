"""calendar: ICS files and feeds, CalDAV REPORT/PROPFIND/PUT against a fake CalDAV server,
through the real SkillRunner and through the gateway (adding waits for the user)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bundled_support import call_skill, failure, refusal, run_skill, skill_gateway, tool_json
from fakes_tools import CalDAVServer

from nexflow.skills import SkillInputInvalid
from nexflow.skills.isolation import IsolationLevel

ICS = "\r\n".join(
    [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Example//EN",
        "BEGIN:VTIMEZONE",
        "TZID:Europe/Paris",
        "BEGIN:STANDARD",
        "DTSTART:19701025T030000",
        "TZOFFSETFROM:+0200",
        "TZOFFSETTO:+0100",
        "END:STANDARD",
        "END:VTIMEZONE",
        "BEGIN:VEVENT",
        "UID:review@example.org",
        "DTSTART:20261208T150000Z",
        "DTEND:20261208T160000Z",
        "SUMMARY:Design review\\, round 2",
        "LOCATION:Room 4",
        "DESCRIPTION:Bring the slides.\\nAnd the n",
        " otes.",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "TRIGGER:-PT15M",
        "DESCRIPTION:not the event's",
        "END:VALARM",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:standup@example.org",
        "DTSTART;TZID=Europe/Paris:20261130T093000",
        "DURATION:PT15M",
        "RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=6",
        "SUMMARY:Standup",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:offsite@example.org",
        "DTSTART;VALUE=DATE:20261210",
        "DTEND;VALUE=DATE:20261212",
        "SUMMARY:Team offsite",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:gym@example.org",
        "DTSTART:20261206T070000",
        "DTEND:20261206T080000",
        "RRULE:FREQ=DAILY;INTERVAL=2;UNTIL=20261212T235959Z",
        "EXDATE:20261208T070000",
        "SUMMARY:Gym",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:gym@example.org",
        "RECURRENCE-ID:20261210T070000",
        "DTSTART:20261210T183000",
        "DTEND:20261210T193000",
        "SUMMARY:Gym (evening)",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:old@example.org",
        "DTSTART:20261101T100000Z",
        "DTEND:20261101T110000Z",
        "SUMMARY:Long ago",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
)

WEEK = {"from": "2026-12-07", "to": "2026-12-13", "tz": "Europe/Paris"}


def brief(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(e["start"], e["end"], e["summary"]) for e in events]


EXPECTED_WEEK = [
    ("2026-12-07T09:30:00+01:00", "2026-12-07T09:45:00+01:00", "Standup"),
    ("2026-12-08T16:00:00+01:00", "2026-12-08T17:00:00+01:00", "Design review, round 2"),
    ("2026-12-09T09:30:00+01:00", "2026-12-09T09:45:00+01:00", "Standup"),
    ("2026-12-10", "2026-12-11", "Team offsite"),  # DTEND 12th: the last day is the 11th
    ("2026-12-10T18:30:00+01:00", "2026-12-10T19:30:00+01:00", "Gym (evening)"),
    ("2026-12-11T09:30:00+01:00", "2026-12-11T09:45:00+01:00", "Standup"),
    ("2026-12-12T07:00:00+01:00", "2026-12-12T08:00:00+01:00", "Gym"),
]


@pytest.fixture
def workspace(workspace: Path) -> Path:
    (workspace / "cal").mkdir()
    (workspace / "cal" / "team.ics").write_text(ICS, newline="")
    return workspace


@pytest.fixture
def dav() -> Iterator[CalDAVServer]:
    server = CalDAVServer().start()
    yield server
    server.stop()


def dav_env(dav: CalDAVServer, password: str = "pw") -> dict[str, str]:
    return {"CALDAV_URL": dav.url, "CALDAV_USER": "ada", "CALDAV_PASSWORD": password}


async def test_agenda_from_a_workspace_file(workspace: Path, level: IsolationLevel) -> None:
    r = await run_skill("calendar", {"file": "cal/team.ics", **WEEK}, workspace, level=level)
    assert r.ok, r.stderr_tail
    assert r.data["source"] == "file cal/team.ics" and r.data["tz"] == "Europe/Paris"
    assert brief(r.data["events"]) == EXPECTED_WEEK
    review = r.data["events"][1]
    assert review["location"] == "Room 4" and review["recurring"] is False
    assert review["description"] == "Bring the slides.\nAnd the notes."
    assert r.data["events"][3]["all_day"] is True
    assert r.data["events"][0]["recurring"] is True and r.data["count"] == 7


async def test_count_and_display_zone(workspace: Path) -> None:
    # The standup has COUNT=6 from Mon 30 Nov: Nov 30, Dec 2, 4, 7, 9, 11.
    payload = {"file": "cal/team.ics", "from": "2026-11-30", "days": 21, "tz": "UTC"}
    r = await run_skill("calendar", payload, workspace)
    standups = [e["start"] for e in r.data["events"] if e["summary"] == "Standup"]
    assert standups == [
        f"2026-{day}T08:30:00+00:00"
        for day in ("11-30", "12-02", "12-04", "12-07", "12-09", "12-11")
    ]


async def test_partly_understood_rules_say_so(workspace: Path) -> None:
    ics = ICS.replace("SUMMARY:Long ago", "SUMMARY:Monthly\r\nRRULE:FREQ=MONTHLY;BYDAY=1MO")
    ics = ics.replace("DTSTART;TZID=Europe/Paris", "DTSTART;TZID=W. Europe Standard Time")
    (workspace / "odd.ics").write_text(ics, newline="")
    r = await run_skill(
        "calendar", {"file": "odd.ics", "from": "2026-12-01", "days": 31}, workspace
    )
    assert r.ok, r.stderr_tail
    by_name = {e["summary"]: e for e in r.data["events"]}
    assert "only partly understood" in by_name["Monthly"]["notes"][0]
    assert by_name["Monthly"]["start"] == "2026-12-01T10:00:00+00:00"
    assert "is unknown here; its times are read as UTC" in by_name["Standup"]["notes"][0]


async def test_agenda_from_a_named_feed(workspace: Path, dav: CalDAVServer) -> None:
    dav.feeds["team.ics"] = ICS
    env = {"CALENDAR_FEEDS": f"team=http://127.0.0.1:{dav.port}/feeds/team.ics"}
    r = await run_skill("calendar", {"feed": "team", **WEEK}, workspace, secrets=env)
    assert r.ok, r.stderr_tail
    assert brief(r.data["events"]) == EXPECTED_WEEK
    r = await run_skill("calendar", {"feed": "work", **WEEK}, workspace, secrets=env)
    assert r.exit_code == 2
    assert "feed 'work' is not configured in CALENDAR_FEEDS (configured: team)" in r.stderr_tail


async def test_agenda_over_caldav(
    workspace: Path, dav: CalDAVServer, level: IsolationLevel
) -> None:
    for index, block in enumerate(ICS.split("BEGIN:VEVENT")[1:]):
        dav.add(
            f"e{index}.ics",
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT"
            + block.split("END:VCALENDAR")[0]
            + "END:VCALENDAR\r\n",
        )
    r = await run_skill("calendar", WEEK, workspace, secrets=dav_env(dav), level=level)
    assert r.ok, r.stderr_tail
    assert r.data["source"] == "caldav"
    assert brief(r.data["events"]) == EXPECTED_WEEK
    [(method, path, headers, body)] = dav.requests
    assert (method, path, headers["Depth"]) == ("REPORT", "/cal/", "1")
    # Monday 00:00 to the next Monday 00:00 in Paris, in UTC.
    assert b'<C:time-range start="20261206T230000Z" end="20261213T230000Z"/>' in body
    assert b"Long ago" not in body and "e5.ics" in dav.objects


async def test_wrong_caldav_password(workspace: Path, dav: CalDAVServer) -> None:
    r = await run_skill("calendar", WEEK, workspace, secrets=dav_env(dav, "nope"))
    assert r.exit_code == 1
    assert "CalDAV REPORT: the server refused the login (401" in r.stderr_tail


async def test_add_event_then_see_it(workspace: Path, dav: CalDAVServer) -> None:
    payload = {
        "action": "add_event",
        "summary": "Dentist, then lunch; bring card\nBEGIN:VEVENT",
        "start": "2026-12-10T14:00",
        "duration_min": 45,
        "location": "Rue de Rivoli 12",
        "tz": "Europe/Paris",
    }
    r = await run_skill("calendar", payload, workspace, secrets=dav_env(dav))
    assert r.ok, r.stderr_tail
    assert r.data["added"] is True and r.data["calendar"] == "Personal"
    assert r.data["start"] == "2026-12-10T14:00:00+01:00"
    assert r.data["end"] == "2026-12-10T14:45:00+01:00" and r.data["etag"] == '"1"'
    methods = [(m, h.get("If-None-Match")) for m, _, h, _ in dav.requests]
    assert methods == [("PROPFIND", None), ("PUT", "*")]
    [(name, text)] = dav.objects.items()
    assert r.data["href"] == f"/cal/{name}"
    assert "DTSTART:20261210T130000Z\r\n" in text and "DTEND:20261210T134500Z\r\n" in text
    assert "SUMMARY:Dentist\\, then lunch\\; bring card\\nBEGIN:VEVENT\r\n" in text
    assert text.split("\r\n").count("BEGIN:VEVENT") == 1  # the summary opens no event
    assert f"UID:{r.data['uid']}\r\n" in text
    dav.requests.clear()
    seen = await run_skill(
        "calendar",
        {"from": "2026-12-10", "tz": "Europe/Paris", "days": 1},
        workspace,
        secrets=dav_env(dav),
    )
    assert brief(seen.data["events"]) == [
        ("2026-12-10T14:00:00+01:00", "2026-12-10T14:45:00+01:00", payload["summary"])
    ]


async def test_add_all_day_event(workspace: Path, dav: CalDAVServer) -> None:
    payload = {
        "action": "add_event",
        "summary": "Holiday",
        "start": "2026-12-24",
        "end": "2026-12-26",
    }
    r = await run_skill("calendar", payload, workspace, secrets=dav_env(dav))
    assert r.ok, r.stderr_tail
    assert (r.data["start"], r.data["end"], r.data["all_day"]) == ("2026-12-24", "2026-12-26", True)
    [text] = dav.objects.values()
    assert "DTSTART;VALUE=DATE:20261224\r\n" in text and "DTEND;VALUE=DATE:20261227\r\n" in text


async def test_add_event_needs_caldav(workspace: Path) -> None:
    payload = {"action": "add_event", "summary": "x", "start": "2026-12-24"}
    r = await run_skill("calendar", payload, workspace)
    assert "adding events needs CALDAV_URL" in refusal(r)


async def test_put_never_overwrites(workspace: Path, dav: CalDAVServer) -> None:
    dav.taken = True  # every name is in use: If-None-Match: * must make the server say 412
    payload = {"action": "add_event", "summary": "x", "start": "2026-12-24"}
    r = await run_skill("calendar", payload, workspace, secrets=dav_env(dav))
    assert "already exists (412)" in failure(r)
    assert dav.objects == {}


async def test_unknown_action_is_rejected_by_the_schema(workspace: Path) -> None:
    with pytest.raises(SkillInputInvalid, match="'delete' is not one of"):
        await run_skill("calendar", {"action": "delete"}, workspace)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"file": "../outside.ics"}, "is outside the workspace"),
        ({"file": "/etc/hostname"}, "is outside the workspace"),
        ({"file": "missing.ics"}, "does not exist in the workspace"),
        ({"file": "cal/team.ics", "from": "2026-13-01"}, "is not a date YYYY-MM-DD"),
        ({"file": "cal/team.ics", "from": "2026-01-01", "to": "2027-06-01"}, "limited to 366"),
        ({"file": "cal/team.ics", "tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"file": "cal/team.ics", "days": 0}, "'days' must be a positive integer"),
        ({}, "no CALDAV_URL is set"),
    ],
)
async def test_bad_input(workspace: Path, payload: dict[str, object], why: str) -> None:
    (workspace.parent / "outside.ics").write_text(ICS)
    r = await run_skill("calendar", payload, workspace)
    assert r.exit_code in (1, 2) and why in r.stderr_tail, r.stderr_tail
    assert "Traceback" not in r.stderr_tail


async def test_not_a_calendar_file(workspace: Path) -> None:
    (workspace / "notes.ics").write_text("hello\n")
    r = await run_skill("calendar", {"file": "notes.ics"}, workspace)
    assert "not an iCalendar file" in failure(r)


async def test_agenda_through_the_gateway(home: Path) -> None:
    (home / "workspace").mkdir(parents=True)
    (home / "workspace" / "team.ics").write_text(ICS, newline="")
    async with skill_gateway(home, {"calendar": {}}) as gw:
        _, tool_msg, _ = await call_skill(gw, "calendar", {"file": "team.ics", **WEEK})
    assert brief(tool_json(tool_msg)["events"]) == EXPECTED_WEEK
    assert 'trust="untrusted"' in tool_msg


async def test_add_event_through_the_gateway_waits_for_the_user(
    home: Path, dav: CalDAVServer
) -> None:
    payload = {"action": "add_event", "summary": "Dentist", "start": "2026-12-10T14:00Z"}
    async with skill_gateway(home, {"calendar": dav_env(dav)}) as gw:
        _, tool_msg, card = await call_skill(gw, "calendar", payload, approve=False)
        assert card is not None and "Dentist" in card["detail"]
        assert "declined" in tool_msg
        assert dav.objects == {} and dav.requests == []
        _, tool_msg, _ = await call_skill(gw, "calendar", payload, approve=True)
    assert tool_json(tool_msg)["added"] is True
    [text] = dav.objects.values()
    assert "SUMMARY:Dentist\r\n" in text and "DTSTART:20261210T140000Z\r\n" in text
