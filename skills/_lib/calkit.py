"""iCalendar (RFC 5545) for the calendar skill: read VEVENTs, expand simple recurrences,
write one event. Standard library only.

Reading covers what real feeds use for an agenda: line unfolding, property parameters,
text escapes, ``DTSTART``/``DTEND``/``DURATION`` as UTC (``Z``), ``TZID`` (IANA names via
:mod:`zoneinfo`), floating times and all-day dates; ``RRULE`` with ``FREQ=DAILY``,
``WEEKLY`` (``BYDAY``), ``MONTHLY`` and ``YEARLY`` (same day), ``INTERVAL``, ``COUNT``
and ``UNTIL``; ``EXDATE``; and ``RECURRENCE-ID`` overrides. Other ``BY*`` parts are not
understood: such an event is listed on its rule's base dates with a note.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = dt.UTC
MAX_INSTANCES = 2000  # occurrences looked at per recurring event
DAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
_DURATION = re.compile(
    r"^(?P<sign>[+-])?P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$"
)


class ICSError(ValueError):
    """The text is not iCalendar this module can read."""


@dataclass(frozen=True)
class Prop:
    name: str
    params: dict[str, str]
    value: str


@dataclass
class Event:
    """One VEVENT as read: start/end are aware datetimes, or dates when ``all_day``."""

    uid: str
    summary: str
    start: dt.datetime | dt.date
    end: dt.datetime | dt.date
    all_day: bool
    location: str = ""
    description: str = ""
    rrule: dict[str, str] | None = None
    exdates: set[object] = field(default_factory=set)
    recurrence_id: dt.datetime | dt.date | None = None
    notes: list[str] = field(default_factory=list)


# -- reading ---------------------------------------------------------------------------


def unfold(text: str) -> list[str]:
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]
        elif raw:
            lines.append(raw)
    return lines


def parse_line(line: str) -> Prop:
    """``NAME;P=V;Q="x:y":value`` → Prop (colons inside quoted parameters are kept)."""
    in_quotes = False
    for i, ch in enumerate(line):
        if ch == '"':
            in_quotes = not in_quotes
        elif ch == ":" and not in_quotes:
            head, value = line[:i], line[i + 1 :]
            break
    else:
        raise ICSError(f"line without ':': {line[:60]!r}")
    name, *raw_params = re.split(r';(?=(?:[^"]*"[^"]*")*[^"]*$)', head)
    params = {}
    for p in raw_params:
        key, _, val = p.partition("=")
        params[key.upper()] = val.strip('"')
    return Prop(name.upper(), params, value)


def unescape(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def zone(name: str | None, fallback: dt.tzinfo, notes: list[str]) -> dt.tzinfo:
    if not name:
        return fallback
    try:
        return ZoneInfo(name.strip().strip("/"))
    except (ZoneInfoNotFoundError, ValueError):
        notes.append(f"time zone {name!r} is unknown here; its times are read as UTC")
        return UTC


def parse_when(prop: Prop, floating: dt.tzinfo, notes: list[str]) -> dt.datetime | dt.date:
    value = prop.value.strip()
    try:
        if prop.params.get("VALUE", "").upper() == "DATE" or re.fullmatch(r"\d{8}", value):
            return dt.datetime.strptime(value[:8], "%Y%m%d").date()
        if value.endswith("Z"):
            return dt.datetime.strptime(value[:-1], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        naive = dt.datetime.strptime(value[:15], "%Y%m%dT%H%M%S")
    except ValueError:
        raise ICSError(f"{prop.name} has a date-time this module cannot read: {value!r}") from None
    return naive.replace(tzinfo=zone(prop.params.get("TZID"), floating, notes))


def parse_duration(value: str) -> dt.timedelta:
    m = _DURATION.match(value.strip())
    if not m:
        raise ICSError(f"DURATION {value!r} is not an ISO 8601 duration")
    parts = {k: int(v) for k, v in m.groupdict().items() if v and k != "sign"}
    delta = dt.timedelta(
        weeks=parts.get("w", 0),
        days=parts.get("d", 0),
        hours=parts.get("h", 0),
        minutes=parts.get("m", 0),
        seconds=parts.get("s", 0),
    )
    return -delta if m.group("sign") == "-" else delta


def read_events(text: str, floating: dt.tzinfo = UTC) -> list[Event]:
    """Every VEVENT in ``text`` (nested VALARMs and VTIMEZONEs are skipped)."""
    lines = unfold(text)
    if not lines or lines[0].strip().upper() != "BEGIN:VCALENDAR":
        raise ICSError("not an iCalendar file (it does not start with BEGIN:VCALENDAR)")
    events: list[Event] = []
    props: list[Prop] | None = None
    depth = 0
    for line in lines:
        upper = line.strip().upper()
        if upper == "BEGIN:VEVENT":
            props, depth = [], 0
        elif props is not None and upper.startswith("BEGIN:"):
            depth += 1
        elif props is not None and upper.startswith("END:") and depth:
            depth -= 1
        elif upper == "END:VEVENT" and props is not None:
            events.append(build_event(props, floating))
            props = None
        elif props is not None and not depth:
            props.append(parse_line(line))
    return events


def build_event(props: list[Prop], floating: dt.tzinfo) -> Event:
    notes: list[str] = []
    first = {}
    exdates: set[object] = set()
    for p in props:
        first.setdefault(p.name, p)
        if p.name == "EXDATE":
            for part in p.value.split(","):
                exdates.add(parse_when(Prop(p.name, p.params, part), floating, notes))
    if "DTSTART" not in first:
        raise ICSError("a VEVENT has no DTSTART")
    start = parse_when(first["DTSTART"], floating, notes)
    all_day = not isinstance(start, dt.datetime)
    if "DTEND" in first:
        end = parse_when(first["DTEND"], floating, notes)
    elif "DURATION" in first:
        end = start + parse_duration(first["DURATION"].value)
    else:
        end = start + dt.timedelta(days=1) if all_day else start
    if all_day != (not isinstance(end, dt.datetime)):
        end = start + dt.timedelta(days=1) if all_day else start
    rrule = None
    if "RRULE" in first:
        rrule = {}
        for part in first["RRULE"].value.split(";"):
            key, _, value = part.partition("=")
            rrule[key.upper()] = value.upper()
    rid = first.get("RECURRENCE-ID")
    return Event(
        uid=first["UID"].value if "UID" in first else "",
        summary=unescape(first["SUMMARY"].value) if "SUMMARY" in first else "",
        start=start,
        end=end,
        all_day=all_day,
        location=unescape(first["LOCATION"].value) if "LOCATION" in first else "",
        description=unescape(first["DESCRIPTION"].value) if "DESCRIPTION" in first else "",
        rrule=rrule,
        exdates=exdates,
        recurrence_id=parse_when(rid, floating, notes) if rid else None,
        notes=notes,
    )


# -- expansion -------------------------------------------------------------------------


def _add_months(when: dt.date | dt.datetime, months: int) -> dt.date | dt.datetime | None:
    month0 = when.month - 1 + months
    year, month = when.year + month0 // 12, month0 % 12 + 1
    try:
        return when.replace(year=year, month=month)
    except ValueError:
        return None  # the 31st in a shorter month: RFC 5545 skips it


def _until(rule: dict[str, str], start: dt.date | dt.datetime, notes: list[str]) -> object:
    raw = rule.get("UNTIL")
    if not raw:
        return None
    return (
        parse_when(Prop("UNTIL", {}, raw), start.tzinfo or UTC, notes)
        if isinstance(start, dt.datetime)
        else dt.datetime.strptime(raw[:8], "%Y%m%d").date()
    )


def occurrences(ev: Event, range_end: dt.datetime) -> list[dt.date | dt.datetime]:
    """Start times of ``ev`` up to ``range_end`` (all of them for a single event)."""
    if ev.rrule is None:
        return [ev.start]
    rule = ev.rrule
    freq = rule.get("FREQ", "")
    interval = max(int(rule.get("INTERVAL", "1") or 1), 1)
    count = int(rule["COUNT"]) if rule.get("COUNT", "").isdigit() else None
    until = _until(rule, ev.start, ev.notes)
    ignored = sorted(
        k for k in rule if k.startswith("BY") and not (k == "BYDAY" and freq == "WEEKLY")
    )
    if ignored or freq not in ("DAILY", "WEEKLY", "MONTHLY", "YEARLY"):
        ev.notes.append(
            f"recurrence rule {';'.join(f'{k}={v}' for k, v in rule.items())} is only partly "
            "understood: listed on its base dates"
        )
        if freq not in ("DAILY", "WEEKLY", "MONTHLY", "YEARLY"):
            return [ev.start]
    starts: list[dt.date | dt.datetime] = []
    for index, when in enumerate(_candidates(ev.start, freq, interval, rule)):
        if index >= MAX_INSTANCES or (count is not None and len(starts) >= count):
            break
        if until is not None and _key(when) > _key(until):
            break
        if _as_datetime(when) > range_end:
            break
        if when < ev.start:
            continue
        starts.append(when)
    return starts


def _candidates(start, freq, interval, rule):
    """Candidate starts in order (unbounded; the caller stops)."""
    if freq == "WEEKLY" and rule.get("BYDAY"):
        days = sorted(DAYS[d[-2:]] for d in rule["BYDAY"].split(",") if d[-2:] in DAYS)
        week0 = start - dt.timedelta(days=start.weekday())
        n = 0
        while True:
            week = week0 + dt.timedelta(weeks=n * interval)
            for day in days:
                yield week + dt.timedelta(days=day)
            n += 1
    n = 0
    while True:
        if freq == "DAILY":
            yield start + dt.timedelta(days=n * interval)
        elif freq == "WEEKLY":
            yield start + dt.timedelta(weeks=n * interval)
        else:
            months = n * interval * (12 if freq == "YEARLY" else 1)
            when = _add_months(start, months)
            if when is not None:
                yield when
        n += 1


def _as_datetime(when: dt.date | dt.datetime, tz: dt.tzinfo = UTC) -> dt.datetime:
    if isinstance(when, dt.datetime):
        return when
    return dt.datetime.combine(when, dt.time(), tzinfo=tz)


def _key(when: object) -> object:
    return _as_datetime(when).astimezone(UTC) if isinstance(when, dt.date) else when


def expand(
    events: list[Event], start: dt.datetime, end: dt.datetime, tz: dt.tzinfo
) -> list[dict[str, object]]:
    """Instances overlapping ``[start, end)``, as output rows sorted by start."""
    overrides = {(e.uid, _key(e.recurrence_id)): e for e in events if e.recurrence_id}
    rows = []
    for ev in events:
        if ev.recurrence_id is not None:
            continue
        length = _as_datetime(ev.end) - _as_datetime(ev.start)
        excluded = {_key(x) for x in ev.exdates}
        for when in occurrences(ev, end):
            if _key(when) in excluded:
                continue
            instance = overrides.get((ev.uid, _key(when)), ev)
            first = instance.start if instance is not ev else when
            last = instance.end if instance is not ev else _shift(when, length)
            lo, hi = _as_datetime(first, tz), _as_datetime(last, tz)
            if lo >= end or (hi <= start and not hi == lo == start):
                continue
            rows.append(_row(instance, first, last, tz, ev.rrule is not None))
    rows.sort(key=lambda r: (r["sort"], r["summary"]))
    for row in rows:
        del row["sort"]
    return rows


def _shift(when, length):
    if isinstance(when, dt.datetime):
        return when + length
    return when + dt.timedelta(days=max(length.days, 1))


def _row(ev: Event, first, last, tz, recurring) -> dict[str, object]:
    if ev.all_day:  # the last day itself, not iCalendar's exclusive end
        begin, finish = first.isoformat(), max(first, last - dt.timedelta(days=1)).isoformat()
        sort = _as_datetime(first, tz)
    else:
        begin, finish = first.astimezone(tz).isoformat(), last.astimezone(tz).isoformat()
        sort = first
    row: dict[str, object] = {
        "summary": ev.summary,
        "start": begin,
        "end": finish,
        "all_day": ev.all_day,
        "location": ev.location,
        "description": ev.description[:500],
        "uid": ev.uid,
        "recurring": recurring,
        "sort": sort,
    }
    if ev.notes:
        row["notes"] = list(dict.fromkeys(ev.notes))
    return row


# -- writing ---------------------------------------------------------------------------


def escape(text: str) -> str:
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")


def fold(line: str) -> str:
    """Lines of at most 75 octets, continuation lines starting with a space."""
    out, current = [], b""
    for ch in line:
        enc = ch.encode()
        if len(current) + len(enc) > (75 if not out else 74):
            out.append(current.decode())
            current = b""
        current += enc
    out.append(current.decode())
    return "\r\n ".join(out)


def _stamp(when: dt.date | dt.datetime) -> str:
    if isinstance(when, dt.datetime):
        return ":" + when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return ";VALUE=DATE:" + when.strftime("%Y%m%d")


def write_event(
    summary: str,
    start: dt.date | dt.datetime,
    end: dt.date | dt.datetime,
    *,
    location: str = "",
    description: str = "",
    uid: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[str, str]:
    """``(uid, VCALENDAR text)`` for one event (times written in UTC)."""
    uid = uid or f"{uuid.uuid4()}@nexflow"
    stamp = (now or dt.datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Nexflow//calendar skill//EN",
        "CALSCALE:GREGORIAN",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{stamp}",
        f"DTSTART{_stamp(start)}",
        f"DTEND{_stamp(end)}",
        f"SUMMARY:{escape(summary)}",
    ]
    if location:
        lines.append(f"LOCATION:{escape(location)}")
    if description:
        lines.append(f"DESCRIPTION:{escape(description)}")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return uid, "".join(fold(line) + "\r\n" for line in lines)
