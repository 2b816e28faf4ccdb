"""Loopback fakes of Prometheus' HTTP API and Alertmanager's API v2 (see
:mod:`fakes_devops` for the server they share)."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from fakes_devops import Answer, FakeService, Seen, first_param

# -- Prometheus --------------------------------------------------------------------------

_SELECTOR = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{([^}]*)\})?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_]\w*)\s*(=|!=)\s*"([^"]*)"\s*,?')


class FakePrometheus(FakeService):
    """Prometheus' HTTP API. Queries are plain selectors (``up``, ``up{job="api"}``) over
    seeded series whose value at time ``t`` is ``base + t % 7``; anything else is a
    ``bad_data`` parse error, as Prometheus answers."""

    def __init__(self, basic: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.basic = basic
        self.series: list[tuple[dict[str, str], float]] = [
            ({"__name__": "up", "job": "api", "instance": "api-1:9100"}, 1.0),
            ({"__name__": "up", "job": "api", "instance": "api-2:9100"}, 0.0),
            ({"__name__": "up", "job": "db", "instance": "db-1:9187"}, 1.0),
        ]
        self.series += [
            ({"__name__": "http_requests_total", "code": str(200 + i % 3), "pod": f"web-{i}"}, i)
            for i in range(40)
        ]
        self.route("GET", r"/api/v1/query", self._query)
        self.route("POST", r"/api/v1/query", self._query)
        self.route("GET", r"/api/v1/query_range", self._range)
        self.route("POST", r"/api/v1/query_range", self._range)
        self.route("GET", r"/api/v1/targets", self._targets)
        self.route("GET", r"/api/v1/alerts", self._alerts)

    def authorized(self, seen: Seen) -> Answer | None:
        if self.basic is None:
            return None
        want = "Basic " + base64.b64encode(":".join(self.basic).encode()).decode()
        if seen.headers.get("authorization") != want:
            return Answer(401, text="Unauthorized\n")
        return None

    def error(self, status: int, message: str) -> Answer:
        kind = {400: "bad_data", 422: "execution", 503: "timeout"}.get(status, "internal")
        return Answer(status, {"status": "error", "errorType": kind, "error": message})

    def _select(self, query: str) -> list[tuple[dict[str, str], float]] | Answer:
        m = _SELECTOR.match(query)
        if not m:
            return self.error(400, f'1:1: parse error: unexpected character in "{query}"')
        wanted = _LABEL.findall(m[2] or "")
        found = []
        for labels, base in self.series:
            if labels["__name__"] != m[1]:
                continue
            if all((labels.get(k) == v) == (op == "=") for k, op, v in wanted):
                found.append((labels, base))
        return found

    @staticmethod
    def _params(seen: Seen) -> dict[str, str]:
        params = {k: v[0] for k, v in seen.query.items()}
        if isinstance(seen.body, str):  # form-encoded POST
            params.update({k: v[0] for k, v in parse_qs(seen.body).items()})
        return params

    def _query(self, seen: Seen, m: re.Match[str]) -> Answer:
        params = self._params(seen)
        if "query" not in params:
            return self.error(400, 'invalid parameter "query": missing')
        at = float(params.get("time") or 1796126400.0)
        found = self._select(params["query"])
        if isinstance(found, Answer):
            return found
        result = [{"metric": lb, "value": [at, _num(base + at % 7)]} for lb, base in found]
        return _success({"resultType": "vector", "result": result})

    def _range(self, seen: Seen, m: re.Match[str]) -> Answer:
        params = self._params(seen)
        try:
            start, end = float(params["start"]), float(params["end"])
            step = float(params["step"])
        except (KeyError, ValueError):
            return self.error(400, 'invalid parameter "start": cannot parse to a timestamp')
        if end < start:
            return self.error(400, "end timestamp must not be before start time")
        if (end - start) / step > 11000:
            return self.error(
                400,
                "exceeded maximum resolution of 11,000 points per timeseries. "
                "Try decreasing the query resolution (?step=XX)",
            )
        found = self._select(params.get("query", ""))
        if isinstance(found, Answer):
            return found
        result = []
        for labels, base in found:
            values, t = [], start
            while t <= end:
                values.append([t, _num(base + t % 7)])
                t += step
            result.append({"metric": labels, "values": values})
        return _success({"resultType": "matrix", "result": result})

    def _targets(self, seen: Seen, m: re.Match[str]) -> Answer:
        active = []
        for labels, base in self.series[:3]:
            inst = labels["instance"]
            active.append(
                {
                    "discoveredLabels": {"__address__": inst},
                    "labels": {"instance": inst, "job": labels["job"]},
                    "scrapePool": labels["job"],
                    "scrapeUrl": f"http://{inst}/metrics",
                    "globalUrl": f"http://{inst}/metrics",
                    "lastError": "" if base else "connection refused",
                    "lastScrape": "2026-12-01T11:59:50Z",
                    "lastScrapeDuration": 0.012,
                    "health": "up" if base else "down",
                    "scrapeInterval": "15s",
                    "scrapeTimeout": "10s",
                }
            )
        state = first_param(seen, "state", "any")
        data: dict[str, Any] = {"activeTargets": active, "droppedTargets": []}
        if state == "dropped":
            data["activeTargets"] = []
        return Answer(200, {"status": "success", "data": data})

    def _alerts(self, seen: Seen, m: re.Match[str]) -> Answer:
        alerts = [
            {
                "labels": {
                    "alertname": "InstanceDown",
                    "instance": "api-2:9100",
                    "severity": "page",
                },
                "annotations": {"summary": "api-2:9100 is down"},
                "state": "firing",
                "activeAt": "2026-12-01T11:40:00Z",
                "value": "0e+00",
            }
        ]
        return Answer(200, {"status": "success", "data": {"alerts": alerts}})


def _num(value: float) -> str:
    return f"{value:g}"


def _success(data: dict[str, Any]) -> Answer:
    return Answer(200, {"status": "success", "data": data})


# -- Alertmanager ------------------------------------------------------------------------

_MATCHER = re.compile(r'^\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')


def am_matches(labels: dict[str, str], matchers: list[dict[str, Any]]) -> bool:
    for mt in matchers:
        value = labels.get(mt["name"], "")
        if mt["isRegex"]:
            hit = re.fullmatch(mt["value"], value) is not None
        else:
            hit = value == mt["value"]
        if hit != mt.get("isEqual", True):
            return False
    return True


class FakeAlertmanager(FakeService):
    """Alertmanager's API v2: alerts with ``filter`` matchers, silences (list, create,
    expire), and silencing: a new silence marks the alerts it matches ``suppressed``."""

    def __init__(self) -> None:
        super().__init__()
        self.alerts = [
            self._alert("HighLatency", "api", "warning", "p99 above 2s on api"),
            self._alert("InstanceDown", "db", "page", "db-1 is down"),
            self._alert("DiskFull", "db", "page", "disk 95% on db-1"),
        ]
        self.silences: dict[str, dict[str, Any]] = {
            "0d1e7c5e-0000-4000-8000-000000000001": {
                "id": "0d1e7c5e-0000-4000-8000-000000000001",
                "status": {"state": "active"},
                "matchers": [
                    {"name": "alertname", "value": "HighLatency", "isRegex": False, "isEqual": True}
                ],
                "startsAt": "2026-12-01T10:00:00.000Z",
                "endsAt": "2099-12-01T14:00:00.000Z",
                "updatedAt": "2026-12-01T10:00:00.000Z",
                "createdBy": "alice",
                "comment": "known issue, deploy in progress",
            }
        }
        self._apply()
        self.route("GET", r"/api/v2/alerts", self._list_alerts)
        self.route("GET", r"/api/v2/silences", self._list_silences)
        self.route("POST", r"/api/v2/silences", self._create)
        self.route("GET", r"/api/v2/silence/(?P<id>[^/]+)", self._get_silence)
        self.route("DELETE", r"/api/v2/silence/(?P<id>[^/]+)", self._expire)
        self.route("GET", r"/api/v2/status", self._status)

    @staticmethod
    def _alert(name: str, service: str, severity: str, summary: str) -> dict[str, Any]:
        labels = {"alertname": name, "service": service, "severity": severity}
        return {
            "labels": labels,
            "annotations": {"summary": summary},
            "startsAt": "2026-12-01T11:00:00.000Z",
            "endsAt": "2026-12-01T12:30:00.000Z",
            "updatedAt": "2026-12-01T11:59:00.000Z",
            "fingerprint": f"{abs(hash(name)) % 16**16:016x}",
            "receivers": [{"name": "team-" + service}],
            "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
            "generatorURL": f"http://prometheus:9090/graph?g0.expr={name}",
        }

    def error(self, status: int, message: str) -> Answer:
        return Answer(status, message)  # Alertmanager answers errors as a JSON string

    def _apply(self) -> None:
        for alert in self.alerts:
            by = [
                s["id"]
                for s in self.silences.values()
                if s["status"]["state"] == "active" and am_matches(alert["labels"], s["matchers"])
            ]
            alert["status"] = {
                "state": "suppressed" if by else "active",
                "silencedBy": by,
                "inhibitedBy": [],
            }

    @staticmethod
    def _filter(seen: Seen) -> list[dict[str, Any]] | Answer:
        matchers = []
        for raw in seen.query.get("filter", []):
            m = _MATCHER.match(raw.strip("{}"))
            if not m:
                return Answer(400, f"bad matcher format: {raw}")
            op = m[2]
            matchers.append(
                {"name": m[1], "value": m[3], "isRegex": "~" in op, "isEqual": "!" not in op}
            )
        return matchers

    def _list_alerts(self, seen: Seen, m: re.Match[str]) -> Answer:
        matchers = self._filter(seen)
        if isinstance(matchers, Answer):
            return matchers
        silenced = first_param(seen, "silenced", "true") == "true"
        active = first_param(seen, "active", "true") == "true"
        found = [
            a
            for a in self.alerts
            if am_matches(a["labels"], matchers)
            and (silenced or a["status"]["state"] != "suppressed")
            and (active or a["status"]["state"] != "active")
        ]
        return Answer(200, found)

    def _list_silences(self, seen: Seen, m: re.Match[str]) -> Answer:
        matchers = self._filter(seen)
        if isinstance(matchers, Answer):
            return matchers
        found = [
            s
            for s in self.silences.values()
            if all(
                any(x["name"] == mt["name"] and x["value"] == mt["value"] for x in s["matchers"])
                for mt in matchers
            )
        ]
        return Answer(200, found)

    def _create(self, seen: Seen, m: re.Match[str]) -> Answer:
        body = seen.body if isinstance(seen.body, dict) else {}
        for key in ("matchers", "startsAt", "endsAt", "createdBy", "comment"):
            if not body.get(key):
                return Answer(400, f"{key} in body is required")
        try:
            starts = datetime.fromisoformat(body["startsAt"].replace("Z", "+00:00"))
            ends = datetime.fromisoformat(body["endsAt"].replace("Z", "+00:00"))
        except ValueError:
            return Answer(400, "startsAt in body must be of type date-time")
        if ends <= starts:
            return Answer(400, "silence invalid: end time must not be before start time")
        for mt in body["matchers"]:
            if not isinstance(mt, dict) or not {"name", "value", "isRegex"} <= mt.keys():
                return Answer(400, "matchers in body: name, value and isRegex are required")
        sid = body.get("id") or str(uuid.uuid4())
        if body.get("id") and sid not in self.silences:
            return Answer(404, f"silence {sid} not found")
        now = datetime.now(UTC).isoformat()
        self.silences[sid] = {
            "id": sid,
            "status": {"state": "active"},
            "matchers": [{"isEqual": True, **mt} for mt in body["matchers"]],
            "startsAt": body["startsAt"],
            "endsAt": body["endsAt"],
            "updatedAt": now,
            "createdBy": body["createdBy"],
            "comment": body["comment"],
        }
        self._apply()
        return Answer(200, {"silenceID": sid})

    def _get_silence(self, seen: Seen, m: re.Match[str]) -> Answer:
        silence = self.silences.get(m["id"])
        return Answer(200, silence) if silence else Answer(404, f"silence {m['id']} not found")

    def _expire(self, seen: Seen, m: re.Match[str]) -> Answer:
        silence = self.silences.get(m["id"])
        if silence is None:
            return Answer(404, f"silence {m['id']} not found")
        if silence["status"]["state"] == "expired":
            return Answer(500, f"silence {m['id']} already expired")
        silence["status"] = {"state": "expired"}
        silence["endsAt"] = datetime.now(UTC).isoformat()
        self._apply()
        return Answer(200, None)

    def _status(self, seen: Seen, m: re.Match[str]) -> Answer:
        return Answer(200, {"versionInfo": {"version": "0.27.0"}, "cluster": {"status": "ready"}})
