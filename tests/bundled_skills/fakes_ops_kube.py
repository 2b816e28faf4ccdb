"""A fake Kubernetes API server: the real paths (``/api/v1/...``, ``/apis/apps/v1/...``)
and object shapes on 127.0.0.1, bearer-token checked, ``Status`` objects for errors,
pod logs as text, and the strategic merge patch ``rollout restart`` sends."""

from __future__ import annotations

import copy
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fakes_loopback import LoopbackServer, QuietHandler, ServedFake

# -- Kubernetes API -------------------------------------------------------------------

CREATED = "2026-12-01T10:00:00Z"


def _meta(name: str, ns: str | None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "creationTimestamp": CREATED}
    if ns is not None:
        meta["namespace"] = ns
    meta.update(extra)
    return meta


def kube_objects() -> dict[str, list[dict[str, Any]]]:
    pods = [
        {
            "metadata": _meta("web-7d4b9c-abcde", "shop", labels={"app": "web"}),
            "spec": {
                "nodeName": "node-1",
                "containers": [{"name": "nginx", "image": "nginx:1.27"}],
            },
            "status": {
                "phase": "Running",
                "podIP": "10.1.0.5",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {
                        "name": "nginx",
                        "image": "nginx:1.27",
                        "ready": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": CREATED}},
                    }
                ],
            },
        },
        {
            "metadata": _meta("worker-5f6d8-xyz12", "shop", labels={"app": "worker"}),
            "spec": {
                "nodeName": "node-2",
                "containers": [{"name": "worker", "image": "shop/worker:2"}],
            },
            "status": {
                "phase": "Running",
                "podIP": "10.1.0.6",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [
                    {
                        "name": "worker",
                        "image": "shop/worker:2",
                        "ready": False,
                        "restartCount": 14,
                        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                        "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
                    }
                ],
            },
        },
    ]
    deployments = [
        {
            "metadata": _meta("web", "shop", generation=3, annotations={}),
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate"},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
                },
            },
            "status": {
                "replicas": 2,
                "readyReplicas": 2,
                "updatedReplicas": 2,
                "availableReplicas": 2,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}
                ],
            },
        }
    ]
    services = [
        {
            "metadata": _meta("web", "shop"),
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "10.96.0.10",
                "selector": {"app": "web"},
                "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}],
            },
            "status": {"loadBalancer": {}},
        }
    ]
    nodes = [
        {
            "metadata": _meta("node-1", None, labels={"node-role.kubernetes.io/control-plane": ""}),
            "status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                "nodeInfo": {"kubeletVersion": "v1.31.2", "osImage": "Debian GNU/Linux 12"},
                "capacity": {"cpu": "4", "memory": "16Gi"},
                "allocatable": {"cpu": "4", "memory": "15Gi"},
            },
        }
    ]
    events = [
        {
            "metadata": _meta("worker.1", "shop"),
            "type": "Warning",
            "reason": "BackOff",
            "message": "Back-off restarting failed container worker",
            "involvedObject": {"kind": "Pod", "name": "worker-5f6d8-xyz12", "namespace": "shop"},
            "count": 14,
            "lastTimestamp": "2026-12-05T09:59:00Z",
        }
    ]
    return {
        "pods": pods,
        "deployments": deployments,
        "services": services,
        "nodes": nodes,
        "events": events,
    }


_KINDS = {
    "pods": "Pod",
    "deployments": "Deployment",
    "services": "Service",
    "nodes": "Node",
    "events": "Event",
}
_PATHS = [
    (re.compile(r"^/api/v1/(nodes)(?:/([^/]+))?$"), False),
    (re.compile(r"^/api/v1/namespaces/([^/]+)/(pods|services|events)(?:/([^/]+))?(/log)?$"), True),
    (re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/(deployments)(?:/([^/]+))?$"), True),
    (re.compile(r"^/api/v1/(pods|services|events)$"), False),
    (re.compile(r"^/apis/apps/v1/(deployments)$"), False),
]


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class _KubeHandler(QuietHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, body: object) -> None:
        self._send(status, json.dumps(body).encode())

    def _authorised(self) -> bool:
        api = self.server.fake
        api.requests.append((self.command, self.path, dict(self.headers)))
        if self.headers.get("Authorization") != f"Bearer {api.token}":
            self._json(401, _status(401, "Unauthorized", "Unauthorized"))
            return False
        return True

    def _lookup(self) -> tuple[str | None, str, str | None, bool, dict[str, list[str]]] | None:
        parts = urlsplit(self.path)
        for pattern, namespaced in _PATHS:
            m = pattern.match(parts.path)
            if m is None:
                continue
            groups = m.groups()
            if namespaced:
                ns, kind, name, *log = groups
                return ns, kind, name, bool(log and log[0]), parse_qs(parts.query)
            kind, name = groups[0], (groups[1] if len(groups) > 1 else None)
            return None, kind, name, False, parse_qs(parts.query)
        return None

    def do_GET(self) -> None:
        if not self._authorised():
            return
        found = self._lookup()
        if found is None:
            self._json(
                404, _status(404, "NotFound", "the server could not find the requested resource")
            )
            return
        ns, kind, name, log, query = found
        items = [
            o
            for o in self.server.fake.objects[kind]
            if ns is None or o["metadata"].get("namespace") == ns
        ]
        selector = query.get("labelSelector", [""])[0]
        if selector:
            key, _, value = selector.partition("=")
            items = [o for o in items if o["metadata"].get("labels", {}).get(key) == value]
        field_sel = query.get("fieldSelector", [""])[0]
        if field_sel.startswith("involvedObject.name="):
            wanted = field_sel.split("=", 1)[1]
            items = [o for o in items if o.get("involvedObject", {}).get("name") == wanted]
        if name is None:
            self._json(
                200,
                {
                    "kind": _KINDS[kind] + "List",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": "1"},
                    "items": items,
                },
            )
            return
        match = [o for o in items if o["metadata"]["name"] == name]
        if not match:
            self._json(404, _status(404, "NotFound", f'{kind} "{name}" not found'))
            return
        if log:
            lines = self.server.fake.logs.get(name, [])
            tail = int(query.get("tailLines", ["1000"])[0])
            text = "".join(line + "\n" for line in lines[-tail:])
            self._send(200, text.encode(), "text/plain")
            return
        self._json(200, {"kind": _KINDS[kind], **match[0]})

    def do_PATCH(self) -> None:
        if not self._authorised():
            return
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        found = self._lookup()
        if found is None or found[1] != "deployments" or found[2] is None:
            self._json(
                405, _status(405, "MethodNotAllowed", "the server does not allow this method")
            )
            return
        ns, _, name, _, _ = found
        api = self.server.fake
        match = [
            o
            for o in api.objects["deployments"]
            if o["metadata"]["name"] == name and o["metadata"]["namespace"] == ns
        ]
        if not match:
            self._json(404, _status(404, "NotFound", f'deployments.apps "{name}" not found'))
            return
        api.patches.append((self.path, self.headers.get("Content-Type", ""), body))
        annotations = body["spec"]["template"]["metadata"]["annotations"]
        template = match[0]["spec"]["template"]["metadata"]
        template.setdefault("annotations", {}).update(annotations)
        match[0]["metadata"]["generation"] += 1
        self._json(200, {"kind": "Deployment", **match[0]})


class FakeKubeApi(ServedFake):
    """A Kubernetes API server on 127.0.0.1 over plain HTTP (as ``kubectl proxy`` serves)."""

    def __init__(self, token: str = "t0ken-abc") -> None:
        self.token = token
        self.objects = copy.deepcopy(kube_objects())
        self.logs = {
            "web-7d4b9c-abcde": [f"10.0.0.{i} GET /health 200" for i in range(1, 301)],
        }
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.patches: list[tuple[str, str, dict[str, Any]]] = []
        self.url = ""

    def _make_server(self) -> LoopbackServer:
        server = LoopbackServer(_KubeHandler, self)
        self.url = f"http://127.0.0.1:{server.port}"
        return server
