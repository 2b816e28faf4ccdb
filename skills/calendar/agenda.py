"""calendar: an agenda from an ICS feed or a CalDAV calendar, and adding an event by CalDAV.

Sources: an ``.ics`` file in the workspace (``file``), a feed the admin named in
CALENDAR_FEEDS (``feed``), or the CalDAV calendar collection at CALDAV_URL (the default
when it is set; a REPORT calendar-query for the range). ``add_event`` PUTs a new
VCALENDAR into that collection with ``If-None-Match: *``.
"""

import base64
import datetime as dt
import http.client
import os
import re
import ssl
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urljoin, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
import calkit
import skillkit

MAX_BYTES = 4 * 1024 * 1024
MAX_EVENTS = 500
MAX_DAYS = 366
TIMEOUT = 15.0
DAV, CAL = "DAV:", "urn:ietf:params:xml:ns:caldav"
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


# -- inputs ----------------------------------------------------------------------------


def display_zone(args):
    name = args.get("tz") or os.environ.get("CALENDAR_TZ", "").strip() or "UTC"
    if not isinstance(name, str):
        raise skillkit.Refused("'tz' must be an IANA time zone name such as Europe/Paris")
    try:
        return calkit.ZoneInfo(name)
    except (calkit.ZoneInfoNotFoundError, ValueError):
        raise skillkit.Refused(f"unknown time zone {name!r} (use an IANA name)") from None


def parse_date(value, what):
    if not isinstance(value, str):
        raise skillkit.Refused(f"'{what}' must be a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise skillkit.Refused(f"'{what}' {value!r} is not a date YYYY-MM-DD") from None


def date_range(args, tz):
    today = dt.datetime.now(tz).date()
    first = parse_date(args["from"], "from") if "from" in args else today
    if "to" in args:
        last = parse_date(args["to"], "to")
    else:
        days = args.get("days", 7)
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise skillkit.Refused("'days' must be a positive integer")
        last = first + dt.timedelta(days=days - 1)
    if last < first:
        raise skillkit.Refused("'to' is before 'from'")
    if (last - first).days >= MAX_DAYS:
        raise skillkit.Refused(f"the range is limited to {MAX_DAYS} days")
    start = dt.datetime.combine(first, dt.time(), tzinfo=tz)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return start, end


def parse_moment(value, what, tz):
    """A date (all-day) or a date-time (with an offset, or local to ``tz``)."""
    if not isinstance(value, str) or not value.strip():
        raise skillkit.Refused(f"'{what}' must be YYYY-MM-DD or YYYY-MM-DDTHH:MM")
    text = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return parse_date(text, what)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise skillkit.Refused(f"'{what}' {value!r} is not YYYY-MM-DDTHH:MM") from None
    return when if when.tzinfo else when.replace(tzinfo=tz)


# -- HTTP ------------------------------------------------------------------------------


def request(method, url, *, body=None, headers=None, auth=None, redirects=3):
    """``(status, headers, body)``; follows a few redirects on GET only."""
    for _ in range(redirects + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise skillkit.Refused(f"{url!r} is not an http(s) URL")
        conn_type = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        kwargs = {"timeout": TIMEOUT}
        if parts.scheme == "https":
            kwargs["context"] = ssl.create_default_context()
        conn = conn_type(parts.hostname, parts.port, **kwargs)
        sent = dict(headers or {})
        if auth:
            sent["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            length = resp.getheader("Content-Length")
            if length and length.isdigit() and int(length) > MAX_BYTES:
                raise skillkit.Failed(
                    f"{url} answered {int(length)} bytes; the limit is {MAX_BYTES}"
                )
            data = resp.read(MAX_BYTES + 1)
        except (OSError, http.client.HTTPException) as e:
            raise skillkit.Failed(f"cannot reach {parts.hostname}: {e}") from None
        finally:
            conn.close()
        if len(data) > MAX_BYTES:
            raise skillkit.Failed(f"{url} answered more than {MAX_BYTES} bytes")
        location = resp.getheader("Location")
        if method == "GET" and resp.status in (301, 302, 303, 307, 308) and location:
            url = urljoin(url, location)
            auth = auth if urlsplit(url).hostname == parts.hostname else None
            continue
        return resp.status, resp, data
    raise skillkit.Failed(f"more than {redirects} redirects")


def caldav():
    url = os.environ.get("CALDAV_URL", "").strip()
    if not url:
        return None, None
    user = os.environ.get("CALDAV_USER", "")
    password = os.environ.get("CALDAV_PASSWORD", "")
    auth = f"{user}:{password}" if user else None
    return (url if url.endswith("/") else url + "/"), auth


def http_failure(status, what):
    if status == 401:
        return skillkit.Failed(
            f"{what}: the server refused the login (401; check CALDAV_USER/CALDAV_PASSWORD)"
        )
    if status == 403:
        return skillkit.Failed(f"{what}: forbidden (403)")
    if status == 404:
        return skillkit.Failed(f"{what}: not found (404; check the URL)")
    return skillkit.Failed(f"{what}: the server answered HTTP {status}")


# -- sources ---------------------------------------------------------------------------


def workspace_file(raw):
    if not isinstance(raw, str) or not raw or "\0" in raw:
        raise skillkit.Refused("'file' must be a path inside the workspace")
    root = Path.cwd().resolve()
    path = (root / raw).resolve()
    if raw.startswith(("/", "~")) or not path.is_relative_to(root):
        raise skillkit.Refused(f"'file' {raw!r} is outside the workspace")
    if not path.is_file():
        raise skillkit.Failed(f"{raw!r} does not exist in the workspace")
    if path.stat().st_size > MAX_BYTES:
        raise skillkit.Refused(f"{raw!r} is larger than {MAX_BYTES} bytes")
    return path.read_bytes()


def feeds():
    found = {}
    for entry in re.split(r"[\s,;]+", os.environ.get("CALENDAR_FEEDS", "")):
        if not entry:
            continue
        name, sep, url = entry.partition("=")
        if not sep or not NAME.match(name) or not url.startswith(("http://", "https://")):
            raise skillkit.Refused(
                f"CALENDAR_FEEDS entry {entry.split('=')[0]!r} is not name=https://..."
            )
        found[name] = url
    return found


def feed_text(name):
    known = feeds()
    if name not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise skillkit.Refused(
            f"feed {name!r} is not configured in CALENDAR_FEEDS (configured: {listed})"
        )
    status, _, data = request("GET", known[name], headers={"Accept": "text/calendar"})
    if status != 200:
        raise http_failure(status, f"feed {name!r}")
    return data


def utc_stamp(when):
    return when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def report_texts(url, auth, start, end):
    """The calendar-data of every event the server has in ``[start, end)``."""
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<C:calendar-query xmlns:D="{DAV}" xmlns:C="{CAL}">'
        "<D:prop><D:getetag/><C:calendar-data/></D:prop>"
        '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        f'<C:time-range start="{utc_stamp(start)}" end="{utc_stamp(end)}"/>'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    )
    texts = []
    for response in dav("REPORT", url, auth, body, depth="1"):
        for propstat in response.findall(f"{{{DAV}}}propstat"):
            if " 200 " not in (propstat.findtext(f"{{{DAV}}}status") or "") + " ":
                continue
            cal = propstat.find(f"{{{DAV}}}prop/{{{CAL}}}calendar-data")
            if cal is not None and cal.text:
                texts.append(cal.text)
    return texts


def dav(method, url, auth, body, *, depth):
    """Send a CalDAV ``method`` with an XML ``body``; the responses of its multistatus."""
    headers = {"Depth": depth, "Content-Type": "application/xml; charset=utf-8"}
    status, _, data = request(method, url, body=body.encode(), headers=headers, auth=auth)
    if status != 207:
        raise http_failure(status, f"CalDAV {method}")
    return multistatus(data)


def multistatus(data):
    if b"<!DOCTYPE" in data[:2000] or b"<!ENTITY" in data:
        raise skillkit.Failed("the CalDAV answer holds a DTD, which is not accepted")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise skillkit.Failed(f"the CalDAV answer is not XML: {e}") from None
    if root.tag != f"{{{DAV}}}multistatus":
        raise skillkit.Failed("the CalDAV answer is not a DAV multistatus")
    return root.findall(f"{{{DAV}}}response")


# -- actions ---------------------------------------------------------------------------


def agenda(args):
    tz = display_zone(args)
    start, end = date_range(args, tz)
    url, auth = caldav()
    if "file" in args:
        texts, source = (
            [workspace_file(args["file"]).decode("utf-8", "replace")],
            f"file {args['file']}",
        )
    elif "feed" in args:
        texts, source = [feed_text(args["feed"]).decode("utf-8", "replace")], f"feed {args['feed']}"
    elif url:
        texts, source = report_texts(url, auth, start, end), "caldav"
    else:
        raise skillkit.Refused(
            "give 'file' (an .ics in the workspace) or 'feed' (a name from CALENDAR_FEEDS); "
            "no CALDAV_URL is set"
        )
    events = []
    try:
        for text in texts:
            events += calkit.read_events(text, floating=tz)
    except calkit.ICSError as e:
        raise skillkit.Failed(f"{source}: {e}") from None
    rows = calkit.expand(events, start, end, tz)
    out = {
        "source": source,
        "from": start.date().isoformat(),
        "to": (end - dt.timedelta(days=1)).date().isoformat(),
        "tz": str(tz),
        "events": rows[:MAX_EVENTS],
        "count": len(rows[:MAX_EVENTS]),
        "truncated": len(rows) > MAX_EVENTS,
    }
    return out


def check_collection(url, auth):
    body = (
        f'<?xml version="1.0" encoding="utf-8"?>\n<D:propfind xmlns:D="{DAV}" xmlns:C="{CAL}">'
        "<D:prop><D:resourcetype/><D:displayname/></D:prop></D:propfind>"
    )
    for response in dav("PROPFIND", url, auth, body, depth="0"):
        kind = response.find(f"{{{DAV}}}propstat/{{{DAV}}}prop/{{{DAV}}}resourcetype")
        if kind is not None and kind.find(f"{{{CAL}}}calendar") is not None:
            return response.findtext(f"{{{DAV}}}propstat/{{{DAV}}}prop/{{{DAV}}}displayname") or ""
    raise skillkit.Failed(f"{url} is not a CalDAV calendar collection (CALDAV_URL)")


def text_field(args, key, limit, required=False):
    value = args.get(key, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise skillkit.Refused(f"'{key}' must be {'non-empty ' if required else ''}text")
    if len(value) > limit or "\0" in value:
        raise skillkit.Refused(f"'{key}' must be at most {limit} characters")
    return value.strip()


def add_event(args):
    url, auth = caldav()
    if not url:
        raise skillkit.Refused(
            "adding events needs CALDAV_URL (a CalDAV calendar the admin configured)"
        )
    tz = display_zone(args)
    summary = text_field(args, "summary", 300, required=True)
    location = text_field(args, "location", 500)
    description = text_field(args, "description", 5000)
    start = parse_moment(args.get("start"), "start", tz)
    all_day = not isinstance(start, dt.datetime)
    if "end" in args:
        end = parse_moment(args["end"], "end", tz)
        if isinstance(end, dt.datetime) == all_day:
            raise skillkit.Refused("'start' and 'end' must both be dates or both date-times")
        if all_day:
            end = end + dt.timedelta(days=1)  # the last day is included; DTEND is exclusive
    else:
        minutes = args.get("duration_min", 60)
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 < minutes <= 10080:
            raise skillkit.Refused("'duration_min' must be 1 to 10080")
        end = start + (dt.timedelta(days=1) if all_day else dt.timedelta(minutes=minutes))
    if end <= start:
        raise skillkit.Refused("'end' must be after 'start'")
    name = check_collection(url, auth)
    uid, text = calkit.write_event(summary, start, end, location=location, description=description)
    href = url + uid.replace("@", "-") + ".ics"
    headers = {"Content-Type": "text/calendar; charset=utf-8", "If-None-Match": "*"}
    status, resp, _ = request("PUT", href, body=text.encode(), headers=headers, auth=auth)
    if status == 412:
        raise skillkit.Failed("an event with this UID already exists (412)")
    if status not in (200, 201, 204):
        raise http_failure(status, "CalDAV PUT")
    shown = (lambda w: w.isoformat()) if all_day else (lambda w: w.astimezone(tz).isoformat())
    return {
        "added": True,
        "uid": uid,
        "href": urlsplit(href).path,
        "etag": resp.getheader("ETag"),
        "calendar": name,
        "summary": summary,
        "start": shown(start),
        "end": shown(end - dt.timedelta(days=1)) if all_day else shown(end),
        "all_day": all_day,
    }


def run(args):
    action = args.get("action", "agenda")
    if action == "agenda":
        return agenda(args)
    if action == "add_event":
        return add_event(args)
    raise skillkit.Refused("'action' must be agenda or add_event")


if __name__ == "__main__":
    skillkit.main("calendar", run)
