"""kubectl: read a Kubernetes cluster and restart deployments through the REST API.

No kubectl binary: the program calls the API server at KUBE_API_URL with the bearer token
KUBE_TOKEN (TLS verified against KUBE_CA_FILE when set, else the system CAs; skipping
verification needs KUBE_INSECURE_SKIP_TLS_VERIFY=1). Read actions: ``get`` (pods,
deployments, services, nodes, events), ``describe``, ``logs``; one write:
``rollout-restart``, the same patch ``kubectl rollout restart`` sends.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import re
import ssl
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
import prockit
import skillkit

ACTIONS = ("get", "describe", "logs", "rollout-restart")
KINDS = ("pods", "deployments", "services", "nodes", "events")
ALIASES = {
    "pod": "pods",
    "po": "pods",
    "deployment": "deployments",
    "deploy": "deployments",
    "service": "services",
    "svc": "services",
    "node": "nodes",
    "no": "nodes",
    "event": "events",
    "ev": "events",
}
OBJECT = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
SELECTOR = re.compile(r"[A-Za-z0-9_./=!, ()-]{1,256}")
CONTAINER = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
OBJECT_HINT = "lower-case letters, digits, '-' and '.'"
MAX_JSON = 8 * 1024 * 1024
MAX_LOG_BYTES = 256 * 1024
TIMEOUT = 20.0
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


class Cluster:
    """The API server from KUBE_API_URL / KUBE_TOKEN."""

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise skillkit.Refused(
                f"KUBE_API_URL must be an https:// (or http://) URL, not {url!r}"
            )
        self.url = url.rstrip("/")
        self.parts = parts
        self.token = token

    def connection(self) -> http.client.HTTPConnection:
        host, port = self.parts.hostname or "", self.parts.port
        if self.parts.scheme == "http":
            return http.client.HTTPConnection(host, port or 80, timeout=TIMEOUT)
        ca = os.environ.get("KUBE_CA_FILE", "").strip()
        ctx = ssl.create_default_context(cafile=ca or None)
        if os.environ.get("KUBE_INSECURE_SKIP_TLS_VERIFY", "") == "1":
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(host, port or 443, timeout=TIMEOUT, context=ctx)

    def call(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        *,
        body: object = None,
        content_type: str = "application/json",
        max_bytes: int = MAX_JSON,
    ) -> prockit.Answer:
        target = self.parts.path.rstrip("/") + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        with prockit.deadline(TIMEOUT + 2):
            try:
                answer = prockit.http_call(
                    self.connection(),
                    method,
                    target,
                    body=data,
                    headers=headers,
                    max_bytes=max_bytes,
                )
            except ssl.SSLError as e:
                raise skillkit.Failed(
                    f"TLS with {self.url} failed ({e.reason}); set KUBE_CA_FILE to the cluster's CA"
                ) from None
        if answer.status >= 400:
            raise skillkit.Failed(kube_message(answer))
        return answer

    def json(self, path: str, query: dict[str, str] | None = None) -> Any:
        return self.call("GET", path, query).json("the API server", MAX_JSON, "; use 'limit'")


def kube_message(answer: prockit.Answer) -> str:
    text = prockit.clip(answer.said(), 500)
    if answer.status == 401:
        return f"kubernetes: unauthorized (HTTP 401): KUBE_TOKEN was not accepted ({text})"
    if answer.status == 403:
        return f"kubernetes: forbidden (HTTP 403): the token's RBAC role does not allow it: {text}"
    return f"kubernetes: {text} (HTTP {answer.status})"


def kind_of(args: dict[str, Any]) -> str:
    raw = str(args.get("kind", "")).lower()
    kind = ALIASES.get(raw, raw)
    if kind not in KINDS:
        raise skillkit.Refused(
            f"'kind' must be one of {', '.join(KINDS)}; got {args.get('kind')!r}"
        )
    return kind


def namespace_of(args: dict[str, Any]) -> str:
    value = args.get("namespace", "default")
    return prockit.check_name(value, "namespace", NAMESPACE, "a DNS label: a-z, 0-9, '-'")


def name_of(args: dict[str, Any], field: str = "name") -> str:
    return prockit.check_name(args.get(field), field, OBJECT, OBJECT_HINT)


def collection(kind: str, ns: str | None) -> str:
    group = "/apis/apps/v1" if kind == "deployments" else "/api/v1"
    if kind == "nodes" or ns is None:
        return f"{group}/{kind}"
    return f"{group}/namespaces/{quote(ns)}/{kind}"


def age(stamp: object) -> str | None:
    if not isinstance(stamp, str):
        return None
    try:
        then = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    secs = int((dt.datetime.now(dt.UTC) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{max(secs, 0)}s"


def pod_row(p: dict[str, Any]) -> dict[str, Any]:
    meta, status = p.get("metadata") or {}, p.get("status") or {}
    statuses = status.get("containerStatuses") or []
    shown = status.get("phase")
    for cs in statuses:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        term = (cs.get("state") or {}).get("terminated") or {}
        if waiting.get("reason") or term.get("reason"):
            shown = waiting.get("reason") or term.get("reason")
            break
    if meta.get("deletionTimestamp"):
        shown = "Terminating"
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "ready": f"{sum(1 for c in statuses if c.get('ready'))}/{len(statuses)}",
        "status": shown,
        "restarts": sum(int(c.get("restartCount", 0)) for c in statuses),
        "age": age(meta.get("creationTimestamp")),
        "node": (p.get("spec") or {}).get("nodeName"),
        "ip": status.get("podIP"),
    }


def deployment_row(d: dict[str, Any]) -> dict[str, Any]:
    meta, spec, status = d.get("metadata") or {}, d.get("spec") or {}, d.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "ready": f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
        "up_to_date": status.get("updatedReplicas", 0),
        "available": status.get("availableReplicas", 0),
        "age": age(meta.get("creationTimestamp")),
        "images": [c.get("image") for c in containers],
    }


def service_row(s: dict[str, Any]) -> dict[str, Any]:
    meta, spec = s.get("metadata") or {}, s.get("spec") or {}
    ingress = ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    external = [i.get("ip") or i.get("hostname") for i in ingress] + list(
        spec.get("externalIPs") or []
    )
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "type": spec.get("type"),
        "cluster_ip": spec.get("clusterIP"),
        "external_ip": ",".join(str(e) for e in external) or None,
        "ports": [port_text(p) for p in spec.get("ports") or []],
        "age": age(meta.get("creationTimestamp")),
    }


def port_text(port: dict[str, Any]) -> str:
    node = f":{port['nodePort']}" if port.get("nodePort") else ""
    return f"{port.get('port')}{node}/{port.get('protocol', 'TCP')}"


def node_row(n: dict[str, Any]) -> dict[str, Any]:
    meta, status = n.get("metadata") or {}, n.get("status") or {}
    conds: list[dict[str, Any]] = status.get("conditions") or []
    ready = next((c for c in conds if c.get("type") == "Ready"), {})
    roles = [
        key.split("/", 1)[1]
        for key in (meta.get("labels") or {})
        if key.startswith("node-role.kubernetes.io/")
    ]
    return {
        "name": meta.get("name"),
        "status": "Ready" if ready.get("status") == "True" else "NotReady",
        "roles": roles or ["<none>"],
        "age": age(meta.get("creationTimestamp")),
        "version": (status.get("nodeInfo") or {}).get("kubeletVersion"),
    }


def event_row(e: dict[str, Any]) -> dict[str, Any]:
    obj = e.get("involvedObject") or {}
    return {
        "last_seen": e.get("lastTimestamp") or e.get("eventTime"),
        "type": e.get("type"),
        "reason": e.get("reason"),
        "object": f"{str(obj.get('kind', '')).lower()}/{obj.get('name')}",
        "count": e.get("count"),
        "message": prockit.clip(str(e.get("message") or ""), 1000),
    }


ROWS = {
    "pods": pod_row,
    "deployments": deployment_row,
    "services": service_row,
    "nodes": node_row,
    "events": event_row,
}


def get(cluster: Cluster, args: dict[str, Any]) -> dict[str, Any]:
    kind = kind_of(args)
    every = bool(args.get("all_namespaces"))
    ns = None if every or kind == "nodes" else namespace_of(args)
    limit = prockit.int_in(args, "limit", 100, 1, 500)
    row = ROWS[kind]
    if args.get("name") is not None:
        if every:
            raise skillkit.Refused("'name' needs a namespace, not all_namespaces")
        obj = cluster.json(f"{collection(kind, ns)}/{quote(name_of(args))}")
        return {"kind": kind, "namespace": ns, "items": [row(obj)]}
    query = {"limit": str(limit)}
    if args.get("label_selector") is not None:
        query["labelSelector"] = prockit.check_name(
            args.get("label_selector"), "label_selector", SELECTOR, "like app=web,tier!=db"
        )
    found = cluster.json(collection(kind, ns), query)
    items = [row(o) for o in (found.get("items") or [])[:limit]]
    more = bool((found.get("metadata") or {}).get("continue"))
    return {"kind": kind, "namespace": ns, "items": items, "count": len(items), "more": more}


def conditions(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {k: c.get(k) for k in ("type", "status", "reason", "message") if c.get(k) is not None}
        for c in (obj.get("status") or {}).get("conditions") or []
    ]


def meta_summary(meta: dict[str, Any]) -> dict[str, Any]:
    notes = meta.get("annotations") or {}
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "created": meta.get("creationTimestamp"),
        "age": age(meta.get("creationTimestamp")),
        "labels": meta.get("labels") or {},
        "annotations": {k: prockit.clip(str(v), 300) for k, v in list(notes.items())[:30]},
    }


def describe(cluster: Cluster, args: dict[str, Any]) -> dict[str, Any]:
    kind = kind_of(args)
    if kind == "events":
        raise skillkit.Refused("describe works on pods, deployments, services and nodes")
    ns = None if kind == "nodes" else namespace_of(args)
    name = name_of(args)
    obj = cluster.json(f"{collection(kind, ns)}/{quote(name)}")
    out: dict[str, Any] = {"kind": kind, **meta_summary(obj.get("metadata") or {})}
    out["summary"] = ROWS[kind](obj)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if kind == "pods":
        out["containers"] = [
            {
                "name": c.get("name"),
                "image": c.get("image"),
                "ready": c.get("ready"),
                "restart_count": c.get("restartCount"),
                "state": c.get("state"),
                "last_state": c.get("lastState") or None,
            }
            for c in status.get("containerStatuses") or []
        ]
    elif kind == "deployments":
        out["replicas"] = spec.get("replicas")
        out["strategy"] = (spec.get("strategy") or {}).get("type")
        out["selector"] = (spec.get("selector") or {}).get("matchLabels")
        template = (spec.get("template") or {}).get("metadata") or {}
        out["restarted_at"] = (template.get("annotations") or {}).get(RESTARTED_AT)
    elif kind == "services":
        out["selector"] = spec.get("selector")
    else:
        out["capacity"] = status.get("capacity")
        out["allocatable"] = status.get("allocatable")
        out["node_info"] = status.get("nodeInfo")
    out["conditions"] = conditions(obj)
    query = {"fieldSelector": f"involvedObject.name={name}", "limit": "20"}
    events = cluster.json(collection("events", ns or "default"), query)
    out["events"] = [event_row(e) for e in (events.get("items") or [])[-20:]]
    return out


def logs(cluster: Cluster, args: dict[str, Any]) -> dict[str, Any]:
    ns = namespace_of(args)
    pod = name_of(args)
    tail = prockit.int_in(args, "tail", 100, 1, 5000)
    query = {"tailLines": str(tail), "limitBytes": str(MAX_LOG_BYTES)}
    if args.get("container") is not None:
        query["container"] = prockit.check_name(
            args.get("container"), "container", CONTAINER, "a DNS label"
        )
    if args.get("previous"):
        query["previous"] = "true"
    if args.get("since_seconds") is not None:
        query["sinceSeconds"] = str(prockit.int_in(args, "since_seconds", 0, 1, 30 * 86400))
    answer = cluster.call(
        "GET",
        f"/api/v1/namespaces/{quote(ns)}/pods/{quote(pod)}/log",
        query,
        max_bytes=MAX_LOG_BYTES,
    )
    text = answer.body.decode(errors="replace")
    lines = [prockit.clip(ln, 4000) for ln in text.splitlines()][-tail:]
    lines, dropped = prockit.keep_last(lines, 400 * 1024)
    truncated = answer.truncated or dropped or len(answer.body) >= MAX_LOG_BYTES
    return {
        "pod": pod,
        "namespace": ns,
        "container": query.get("container"),
        "lines": lines,
        "truncated": truncated,
    }


def rollout_restart(cluster: Cluster, args: dict[str, Any]) -> dict[str, Any]:
    ns = namespace_of(args)
    name = name_of(args)
    current = cluster.json(f"/apis/apps/v1/namespaces/{quote(ns)}/deployments/{quote(name)}")
    if (current.get("spec") or {}).get("paused"):
        raise skillkit.Refused(
            f"deployment {name!r} is paused; resume the rollout first (kubectl rollout resume)"
        )
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
    answer = cluster.call(
        "PATCH",
        f"/apis/apps/v1/namespaces/{quote(ns)}/deployments/{quote(name)}",
        {"fieldManager": "nexflow"},
        body=patch,
        content_type="application/strategic-merge-patch+json",
    )
    try:
        meta = (json.loads(answer.body) or {}).get("metadata") or {}
    except ValueError:
        meta = {}
    return {
        "deployment": name,
        "namespace": ns,
        "restarted_at": now,
        "generation": meta.get("generation"),
    }


HANDLERS = {"get": get, "describe": describe, "logs": logs, "rollout-restart": rollout_restart}


def run(args: dict[str, Any]) -> Any:
    action = prockit.choice(args, "action", ACTIONS)
    cluster = Cluster(skillkit.env("KUBE_API_URL"), skillkit.env("KUBE_TOKEN"))
    return HANDLERS[action](cluster, args)


if __name__ == "__main__":
    skillkit.main("kubectl", run)
